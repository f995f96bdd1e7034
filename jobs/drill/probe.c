/* SPDX-License-Identifier: MIT */
/* probe.c — HTTP/1.1 probes on a fixed cadence, on the drill's libev loop.
 *
 * Each tick sends one GET per probed path on a fresh connection (Connection: close), so a
 * restart is seen as refused connections rather than hidden behind a kept-alive socket.
 * Ticks follow the schedule t0 + i * interval regardless of slow answers, so several probes
 * may be in flight (coordinated-omission-free, like wrk2's intended start times); each one is
 * bounded by its own timeout. The series records intended send time, completion, latency,
 * status and an error class per probe. */
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/drill/drill.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define DRILL_HTTP_MAX_HEADER (16 * 1024)
#define DRILL_RESP_MAX        (256 * 1024) /* a health answer larger than this is cut short */

/* ---- Response parsing ---- */

static const char *drill_find(const char *buf, size_t len, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= len; i++) {
        if (memcmp(buf + i, needle, nl) == 0) {
            return buf + i;
        }
    }
    return NULL;
}

/* Parse one "Name: value" header line [p, end) into the response fields we use. */
static int drill_http_header(const char *p, const char *end, struct drill_http_resp *out)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (colon == NULL || colon == p) {
        return DRILL_HTTP_BAD;
    }
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    size_t vlen = (size_t)(end - v);
    if (nlen == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
        long long n = 0;
        if (vlen == 0) {
            return DRILL_HTTP_BAD;
        }
        for (size_t i = 0; i < vlen && v[i] != ' ' && v[i] != '\t'; i++) {
            if (v[i] < '0' || v[i] > '9' || n > (1LL << 40)) {
                return DRILL_HTTP_BAD;
            }
            n = n * 10 + (v[i] - '0');
        }
        out->content_length = n;
    } else if (nlen == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
        out->chunked = vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0;
    }
    return 0;
}

int drill_http_parse(const char *buf, size_t len, bool eof, struct drill_http_resp *out)
{
    memset(out, 0, sizeof(*out));
    out->content_length = -1;
    /* Status line: "HTTP/1.x NNN reason". Reject early on a wrong prefix so a non-HTTP peer
     * fails fast instead of waiting for the timeout. */
    size_t pre = len < 7 ? len : 7;
    if (memcmp(buf, "HTTP/1.", pre) != 0) {
        return DRILL_HTTP_BAD;
    }
    const char *eoh = drill_find(buf, len, "\r\n\r\n");
    if (eoh == NULL) {
        return (eof || len > DRILL_HTTP_MAX_HEADER) ? DRILL_HTTP_BAD : DRILL_HTTP_MORE;
    }
    out->header_len = (size_t)(eoh - buf) + 4;
    if (out->header_len < 16 || buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' ||
        buf[10] > '9' || buf[11] < '0' || buf[11] > '9' || (buf[12] != ' ' && buf[12] != '\r')) {
        return DRILL_HTTP_BAD;
    }
    out->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    const char *p = drill_find(buf, out->header_len, "\r\n") + 2;
    while (p < eoh + 2) {
        const char *e = drill_find(p, (size_t)(eoh + 2 - p), "\r\n");
        if (e == NULL || drill_http_header(p, e, out) != 0) {
            return DRILL_HTTP_BAD;
        }
        p = e + 2;
    }
    size_t body = len - out->header_len;
    /* 1xx, 204 and 304 carry no body whatever the headers say (RFC 9112 §6.3). */
    if (out->status < 200 || out->status == 204 || out->status == 304) {
        return DRILL_HTTP_DONE;
    }
    if (out->chunked) {
        if (drill_find(buf + out->header_len, body, "0\r\n\r\n") != NULL &&
            (body == 5 || drill_find(buf + out->header_len, body, "\r\n0\r\n\r\n") != NULL)) {
            return DRILL_HTTP_DONE;
        }
        return eof ? DRILL_HTTP_BAD : DRILL_HTTP_MORE;
    }
    if (out->content_length >= 0) {
        if ((long long)body >= out->content_length) {
            return DRILL_HTTP_DONE;
        }
        return eof ? DRILL_HTTP_BAD : DRILL_HTTP_MORE;
    }
    return eof ? DRILL_HTTP_DONE : DRILL_HTTP_MORE;
}

/* ---- Addresses ---- */

int drill_parse_hostport(const char *s, char *host, size_t host_cap, unsigned *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || (size_t)(colon - s) >= host_cap) {
        return OSP_EINVAL;
    }
    char *end = NULL;
    long v = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || v < 1 || v > 65535) {
        return OSP_EINVAL;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (unsigned)v;
    return 0;
}

int drill_parse_base_url(const char *url, char *host, size_t host_cap, unsigned *port)
{
    if (url == NULL || strncmp(url, "http://", 7) != 0) {
        return OSP_EINVAL;
    }
    const char *h = url + 7;
    size_t n = strcspn(h, "/?#");
    char hp[300];
    if (n == 0 || n >= sizeof(hp)) {
        return OSP_EINVAL;
    }
    memcpy(hp, h, n);
    hp[n] = '\0';
    if (strchr(hp, '@') != NULL || strchr(hp, '[') != NULL) {
        return OSP_EINVAL; /* no credentials in URLs; IPv6 literals are not supported */
    }
    if (strchr(hp, ':') == NULL) {
        if (n >= host_cap) {
            return OSP_EINVAL;
        }
        memcpy(host, hp, n + 1);
        *port = 80;
        return 0;
    }
    return drill_parse_hostport(hp, host, host_cap, port);
}

/* ---- The prober ---- */

struct drill_req {
    ev_io io;
    ev_timer timeout;
    struct drill_prober *pr;
    struct drill_req *next; /* in-flight list */
    int fd;
    size_t idx;      /* index in the series */
    const char *req; /* borrowed from the prober */
    size_t req_len, sent;
    int64_t start_ns;
    bool connected;
    struct osp_buf in;
};

struct drill_prober {
    struct ev_loop *loop;
    ev_timer tick;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *reqs[2]; /* rendered requests per path; owned */
    size_t req_lens[2];
    unsigned npaths;
    int64_t t0_ns, interval_ns;
    uint64_t ticks; /* ticks fired so far */
    unsigned timeout_ms, max_latency_ms, status_lo, status_hi;
    uint8_t phase;
    bool running;
    struct drill_req *inflight;
    unsigned ninflight;
    struct drill_series series;
};

static int64_t drill_rel_ms(const struct drill_prober *p, int64_t ns)
{
    return (ns - p->t0_ns) / 1000000;
}

static void drill_req_finish(struct drill_req *r, enum drill_perr err, int status)
{
    struct drill_prober *p = r->pr;
    int64_t now = osp_mono_ns();
    struct drill_probe *pb = &p->series.v[r->idx];
    pb->done_ms = drill_rel_ms(p, now);
    pb->latency_us = (int32_t)((now - r->start_ns) / 1000);
    pb->status = (int16_t)status;
    if (err == DRILL_PERR_NONE && (status < (int)p->status_lo || status > (int)p->status_hi)) {
        err = DRILL_PERR_STATUS;
    }
    if (err == DRILL_PERR_NONE && p->max_latency_ms > 0 &&
        pb->latency_us > (int32_t)p->max_latency_ms * 1000) {
        err = DRILL_PERR_SLOW;
    }
    pb->err = (uint8_t)err;
    pb->ok = err == DRILL_PERR_NONE;
    ev_io_stop(p->loop, &r->io);
    ev_timer_stop(p->loop, &r->timeout);
    if (r->fd >= 0) {
        close(r->fd);
    }
    for (struct drill_req **pp = &p->inflight; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    p->ninflight--;
    osp_buf_deinit(&r->in);
    free(r);
}

static void drill_req_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct drill_req *r = osp_container_of(w, struct drill_req, io);
    if (!r->connected) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            drill_req_finish(r, DRILL_PERR_CONNECT, 0);
            return;
        }
        r->connected = true;
    }
    if (r->sent < r->req_len) {
        ssize_t w2 = send(r->fd, r->req + r->sent, r->req_len - r->sent, MSG_NOSIGNAL);
        if (w2 < 0 && errno != EAGAIN && errno != EINTR) {
            drill_req_finish(r, DRILL_PERR_IO, 0);
            return;
        }
        if (w2 > 0) {
            r->sent += (size_t)w2;
        }
        if (r->sent == r->req_len) {
            ev_io_stop(r->pr->loop, &r->io);
            ev_io_set(&r->io, r->fd, EV_READ);
            ev_io_start(r->pr->loop, &r->io);
        }
        return;
    }
    char buf[4096];
    ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n < 0) {
        drill_req_finish(r, DRILL_PERR_IO, 0);
        return;
    }
    if (n > 0 && r->in.len < DRILL_RESP_MAX) {
        osp_buf_append(&r->in, buf, (size_t)n);
    }
    struct drill_http_resp resp;
    int st = r->in.len == 0 ? (n == 0 ? DRILL_HTTP_BAD : DRILL_HTTP_MORE)
                            : drill_http_parse((const char *)r->in.data, r->in.len, n == 0, &resp);
    if (st == DRILL_HTTP_MORE && r->in.len >= DRILL_RESP_MAX && resp.header_len > 0) {
        st = DRILL_HTTP_DONE; /* enough of a large body: the status is what we judge */
    }
    if (st == DRILL_HTTP_DONE) {
        drill_req_finish(r, DRILL_PERR_NONE, resp.status);
    } else if (st == DRILL_HTTP_BAD) {
        drill_req_finish(r, r->in.len == 0 ? DRILL_PERR_IO : DRILL_PERR_PROTO, 0);
    }
}

static void drill_req_on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct drill_req *r = osp_container_of(w, struct drill_req, timeout);
    drill_req_finish(r, DRILL_PERR_TIMEOUT, 0);
}

static void drill_send_probe(struct drill_prober *p, unsigned path, int64_t sched_ns)
{
    struct drill_probe pb = {.sched_ms = drill_rel_ms(p, sched_ns),
                             .done_ms = -1,
                             .phase = p->phase,
                             .path = (uint8_t)path};
    struct drill_req *r = osp_xcalloc(1, sizeof(*r));
    r->pr = p;
    r->idx = drill_series_add(&p->series, &pb);
    r->req = p->reqs[path];
    r->req_len = p->req_lens[path];
    r->start_ns = osp_mono_ns();
    r->next = p->inflight;
    p->inflight = r;
    p->ninflight++;
    ev_init(&r->io, drill_req_on_io);
    ev_timer_init(&r->timeout, drill_req_on_timeout, p->timeout_ms / 1000.0, 0.);
    r->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
        drill_req_finish(r, DRILL_PERR_CONNECT, 0);
        return;
    }
    int one = 1;
    setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(r->fd, (const struct sockaddr *)&p->addr, p->addr_len) != 0 &&
        errno != EINPROGRESS) {
        drill_req_finish(r, DRILL_PERR_CONNECT, 0);
        return;
    }
    ev_io_set(&r->io, r->fd, EV_WRITE);
    ev_io_start(p->loop, &r->io);
    ev_timer_start(p->loop, &r->timeout);
}

/* Fire every tick that is due (normally one), then arm the timer for the next one. A loop
 * stalled by a blocking adapter call catches up by sending the missed ticks now, each
 * recorded at its intended time, so a stall shows as latency instead of vanishing. */
static void drill_on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct drill_prober *p = osp_container_of(w, struct drill_prober, tick);
    int64_t now = osp_mono_ns();
    for (;;) {
        int64_t due = p->t0_ns + (int64_t)p->ticks * p->interval_ns;
        if (due > now) {
            ev_timer_set(&p->tick, (double)(due - now) / 1e9, 0.);
            ev_timer_start(loop, &p->tick);
            return;
        }
        p->ticks++;
        for (unsigned i = 0; i < p->npaths; i++) {
            drill_send_probe(p, i, due);
        }
    }
}

static char *drill_render(const char *host, unsigned port, const char *path, size_t *len)
{
    char *s = osp_xasprintf("GET %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: opspool-drill/1\r\n"
                            "Accept: */*\r\nConnection: close\r\n\r\n",
                            path, host, port);
    *len = strlen(s);
    return s;
}

struct drill_prober *drill_prober_new(struct ev_loop *loop, const struct drill_spec *spec,
                                      int64_t t0_ns, struct osp_err *err)
{
    char host[256];
    unsigned port = 0;
    struct addrinfo *ai = NULL;
    struct drill_prober *p = NULL;
    if (drill_parse_base_url(spec->probe_url, host, sizeof(host), &port) != 0) {
        osp_err_set(err, OSP_EINVAL, "probe address %.100s: not http://host[:port]",
                    spec->probe_url);
        goto out;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char ports[8];
    snprintf(ports, sizeof(ports), "%u", port);
    int gai = getaddrinfo(host, ports, &hints, &ai);
    if (gai != 0 || ai == NULL) {
        osp_err_set(err, OSP_EINVAL, "probe address: cannot resolve %.100s: %s", host,
                    gai_strerror(gai));
        goto out;
    }
    p = osp_xcalloc(1, sizeof(*p));
    p->loop = loop;
    memcpy(&p->addr, ai->ai_addr, ai->ai_addrlen);
    p->addr_len = ai->ai_addrlen;
    p->reqs[0] = drill_render(host, port, spec->health_path, &p->req_lens[0]);
    p->npaths = 1;
    if (spec->user_path != NULL) {
        p->reqs[1] = drill_render(host, port, spec->user_path, &p->req_lens[1]);
        p->npaths = 2;
    }
    p->t0_ns = t0_ns;
    p->interval_ns = (int64_t)spec->interval_ms * 1000000;
    p->timeout_ms = spec->timeout_ms;
    p->max_latency_ms = spec->max_latency_ms;
    p->status_lo = spec->status_lo;
    p->status_hi = spec->status_hi;
    ev_init(&p->tick, drill_on_tick);
out:
    if (ai != NULL) {
        freeaddrinfo(ai);
    }
    return p;
}

void drill_prober_start(struct drill_prober *p)
{
    if (p->running) {
        return;
    }
    p->running = true;
    /* Resume on the global schedule: skip ticks that fell in a stopped stretch (a tick due
     * less than half an interval ago still fires). */
    int64_t now = osp_mono_ns();
    int64_t late = now - p->t0_ns - p->interval_ns / 2;
    int64_t next = late <= 0 ? 0 : (late + p->interval_ns - 1) / p->interval_ns;
    if (next > 0 && (uint64_t)next > p->ticks) {
        p->ticks = (uint64_t)next;
    }
    ev_timer_set(&p->tick, 0., 0.);
    ev_timer_start(p->loop, &p->tick);
}

void drill_prober_stop(struct drill_prober *p)
{
    p->running = false;
    ev_timer_stop(p->loop, &p->tick);
}

void drill_prober_set_phase(struct drill_prober *p, enum drill_phase ph)
{
    p->phase = (uint8_t)ph;
}

unsigned drill_prober_inflight(const struct drill_prober *p)
{
    return p->ninflight;
}

uint64_t drill_prober_ticks(const struct drill_prober *p)
{
    return p->ticks;
}

const struct drill_series *drill_prober_series(const struct drill_prober *p)
{
    return &p->series;
}

void drill_prober_free(struct drill_prober *p)
{
    if (p == NULL) {
        return;
    }
    drill_prober_stop(p);
    while (p->inflight != NULL) {
        drill_req_finish(p->inflight, DRILL_PERR_TIMEOUT, 0);
    }
    free(p->reqs[0]);
    free(p->reqs[1]);
    drill_series_deinit(&p->series);
    free(p);
}
