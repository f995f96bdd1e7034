/* SPDX-License-Identifier: MIT */
/* loadgen.c — the load engine (contract and models in loadgen.h).
 *
 * Design. Everything runs on one private libev loop (ev_loop_new, never EV_DEFAULT: the child
 * must not share the worker's loop). Each connection embeds one ev_io that normally watches
 * only EV_READ; EV_WRITE is added only while a connect is in progress or a request did not fit
 * into the socket buffer. A response that completes is followed, in the same callback, by the
 * next request's write(): no extra loop iteration and no epoll_ctl per request, which is where
 * the engine beats wrk's "register writable, then write" round trip.
 *
 * Timeouts are not per-request timers: one periodic "tick" sweeps all connections for passed
 * connect/read deadlines, polls should_stop() and retries connections that failed. That keeps
 * the per-request cost to two syscalls, a clock read and a histogram increment.
 *
 * Open model. Request k (k = 0, 1, ...) is intended at start + k/rate. A one-shot timer fires
 * at the next intended time; every due request is handed to an idle connection (a stack of
 * indices). When none is idle, due requests wait in an implicit backlog (they are just the
 * indices k not yet sent) and are sent, in order, as soon as a connection frees up; their
 * intended time does not move, so the wait is part of the corrected latency. */
#include "jobs/benchmark/loadgen.h"
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/benchmark/resp.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const char *const bench_err_names[BENCH_ERR_N] = {
    "connect", "timeout", "status_4xx", "status_5xx", "parse", "io",
};

#define LG_RBUF       65536
#define LG_TICK_S     0.02             /* sweep period: timeout precision and cancel latency */
#define LG_RETRY_NS   (10 * 1000000LL) /* closed model: wait before reconnecting after an error */
#define LG_DEAD_AFTER 8u /* failed first connects (with none succeeding) = dead target */

enum lg_state {
    LG_DOWN,       /* no socket */
    LG_CONNECTING, /* connect() in progress */
    LG_IDLE,       /* connected, nothing outstanding */
    LG_WRITING,    /* request partly written */
    LG_READING,    /* request written, response pending */
};

/* A request template split at its "{key}" placeholders: parts[0] KEY parts[1] ... KEY
 * parts[n-1]. With n == 1 the request is constant and sent straight from parts[0]. */
struct lg_tmpl {
    char **parts;
    size_t *part_len;
    size_t nparts;
    size_t total_len; /* sum of part lengths */
    bool head;        /* HEAD request: the response has no body */
    uint64_t cum_weight;
};

struct lg;

struct lg_conn {
    ev_io io; /* first member: the watcher's owner is recovered by container_of */
    struct lg *lg;
    int fd;
    int events; /* what io currently watches (0 when stopped) */
    enum lg_state st;
    bool measured;    /* the outstanding request counts */
    bool in_idle;     /* open model: on the idle stack */
    bool has_pending; /* open model: connecting with a request (intended_ns) to send */
    const char *wptr; /* bytes of the request being written */
    size_t wlen, woff;
    char *wbuf; /* owned: rendered requests with keys */
    size_t wcap;
    int64_t intended_ns, sent_ns, deadline_ns, retry_at_ns;
    struct bench_resp resp;
};

struct lg {
    const struct bench_lg_config *cfg;
    struct bench_lg_result *res;
    struct ev_loop *loop;
    ev_timer tick, sched, end;
    struct lg_conn *conns;
    struct lg_tmpl *tmpl;
    uint64_t total_weight;
    unsigned *idle; /* open model: stack of connection indices that can take a request */
    size_t nidle;
    int64_t start_ns, measure_ns, end_ns; /* end_ns = INT64_MAX when bounded by requests only */
    int64_t sched_origin_ns; /* open model: request k is intended at origin + k * interval */
    double interval_ns;      /* open model: 1e9 / rate */
    uint64_t next_k;         /* open model: next request index to send */
    uint64_t issued;         /* measured requests started */
    uint64_t in_flight_measured;
    bool issuing_done; /* max_requests reached: start nothing new */
    bool finished;
    uint64_t connects_ok;
    uint64_t connect_fail_first; /* failures before the first success */
    int first_errno;
    uint64_t rng[4];
    /* Zipf rejection-inversion constants (Hörmann & Derflinger 1996). */
    double z_hx1, z_hn, z_s;
    FILE *samples;
    char rbuf[LG_RBUF];
};

/* ---- Random numbers and keys ---- */

static uint64_t lg_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t lg_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256**: fast, and fully determined by the seed on every machine. */
static uint64_t lg_rand(struct lg *lg)
{
    uint64_t *s = lg->rng;
    uint64_t r = lg_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = lg_rotl(s[3], 45);
    return r;
}

static double lg_rand01(struct lg *lg)
{
    return (double)(lg_rand(lg) >> 11) * 0x1.0p-53;
}

static double lg_helper1(double x)
{
    return fabs(x) > 1e-8 ? log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

static double lg_helper2(double x)
{
    return fabs(x) > 1e-8 ? expm1(x) / x : 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x));
}

static double lg_zh(const struct lg *lg, double x)
{
    return exp(-lg->cfg->zipf_s * log(x));
}

static double lg_zhint(const struct lg *lg, double x)
{
    double lx = log(x);
    return lg_helper2((1.0 - lg->cfg->zipf_s) * lx) * lx;
}

static double lg_zhint_inv(const struct lg *lg, double x)
{
    double t = x * (1.0 - lg->cfg->zipf_s);
    if (t < -1.0) {
        t = -1.0; /* guard rounding at the edge of the domain */
    }
    return exp(lg_helper1(t) * x);
}

static void lg_zipf_init(struct lg *lg)
{
    lg->z_hx1 = lg_zhint(lg, 1.5) - 1.0;
    lg->z_hn = lg_zhint(lg, (double)lg->cfg->key_count + 0.5);
    lg->z_s = 2.0 - lg_zhint_inv(lg, lg_zhint(lg, 2.5) - lg_zh(lg, 2.0));
}

/* A key in 1..key_count: rank r has probability ~ 1/r^s under Zipf. O(1) time and memory
 * (rejection-inversion), so key ranges of any size cost nothing. */
static uint64_t lg_key(struct lg *lg)
{
    uint64_t n = lg->cfg->key_count;
    if (!lg->cfg->zipf) {
        return 1 + lg_rand(lg) % n;
    }
    for (int guard = 0; guard < 1000; guard++) {
        double u = lg->z_hn + lg_rand01(lg) * (lg->z_hx1 - lg->z_hn);
        double x = lg_zhint_inv(lg, u);
        double kd = floor(x + 0.5);
        uint64_t k = kd < 1.0 ? 1 : (kd > (double)n ? n : (uint64_t)kd);
        if ((double)k - x <= lg->z_s || u >= lg_zhint(lg, (double)k + 0.5) - lg_zh(lg, (double)k)) {
            return k;
        }
    }
    return 1;
}

/* ---- Request templates ---- */

static void lg_tmpl_build(struct lg *lg, struct lg_tmpl *t, const struct bench_mix_item *m)
{
    const struct bench_lg_config *cfg = lg->cfg;
    /* Split the path at "{key}". */
    size_t n = 1;
    for (const char *p = strstr(m->path, "{key}"); p != NULL; p = strstr(p + 5, "{key}")) {
        n++;
    }
    t->nparts = n;
    t->parts = osp_xcalloc(n, sizeof(char *));
    t->part_len = osp_xcalloc(n, sizeof(size_t));
    t->head = strcmp(m->method, "HEAD") == 0;
    const char *p = m->path;
    for (size_t i = 0; i < n; i++) {
        const char *q = i + 1 < n ? strstr(p, "{key}") : p + strlen(p);
        size_t seg = (size_t)(q - p);
        char *s;
        if (n == 1) {
            s = osp_xasprintf("%s %.*s", m->method, (int)seg, p);
        } else if (i == 0) {
            s = osp_xasprintf("%s %.*s", m->method, (int)seg, p);
        } else {
            s = osp_xasprintf("%.*s", (int)seg, p);
        }
        if (i + 1 == n) {
            /* The last part carries the rest of the request head and the body. */
            char clen[48] = "";
            if (m->body != NULL || strcmp(m->method, "POST") == 0 ||
                strcmp(m->method, "PUT") == 0 || strcmp(m->method, "PATCH") == 0) {
                snprintf(clen, sizeof(clen), "Content-Length: %zu\r\n",
                         m->body != NULL ? m->body_len : (size_t)0);
            }
            char *head = osp_xasprintf("%s HTTP/1.1\r\nHost: %s\r\n%s%s\r\n", s, cfg->host,
                                       m->headers != NULL ? m->headers : "", clen);
            free(s);
            size_t hl = strlen(head);
            size_t bl = m->body != NULL ? m->body_len : 0;
            s = osp_xmalloc(hl + bl + 1);
            memcpy(s, head, hl);
            if (bl > 0) {
                memcpy(s + hl, m->body, bl);
            }
            s[hl + bl] = '\0';
            free(head);
            t->part_len[i] = hl + bl;
        } else {
            t->part_len[i] = strlen(s);
        }
        t->parts[i] = s;
        t->total_len += t->part_len[i];
        p = q + 5;
    }
}

static void lg_tmpl_free(struct lg_tmpl *t)
{
    for (size_t i = 0; i < t->nparts; i++) {
        free(t->parts[i]);
    }
    free(t->parts);
    free(t->part_len);
}

static const struct lg_tmpl *lg_pick(struct lg *lg)
{
    if (lg->cfg->nmix == 1) {
        return &lg->tmpl[0];
    }
    uint64_t r = lg_rand(lg) % lg->total_weight;
    for (size_t i = 0; i < lg->cfg->nmix; i++) {
        if (r < lg->tmpl[i].cum_weight) {
            return &lg->tmpl[i];
        }
    }
    return &lg->tmpl[lg->cfg->nmix - 1];
}

/* Point c->wptr/wlen at the bytes of the next request. */
static void lg_render(struct lg *lg, struct lg_conn *c, const struct lg_tmpl *t)
{
    if (t->nparts == 1) {
        c->wptr = t->parts[0];
        c->wlen = t->part_len[0];
        return;
    }
    size_t need = t->total_len + (t->nparts - 1) * 20 + 1;
    if (c->wcap < need) {
        free(c->wbuf);
        c->wbuf = osp_xmalloc(need);
        c->wcap = need;
    }
    /* One key per request: every placeholder in the path gets the same value. */
    char key[24];
    int kl = snprintf(key, sizeof(key), "%llu", (unsigned long long)lg_key(lg));
    size_t off = 0;
    for (size_t i = 0; i < t->nparts; i++) {
        memcpy(c->wbuf + off, t->parts[i], t->part_len[i]);
        off += t->part_len[i];
        if (i + 1 < t->nparts) {
            memcpy(c->wbuf + off, key, (size_t)kl);
            off += (size_t)kl;
        }
    }
    c->wptr = c->wbuf;
    c->wlen = off;
}

/* ---- Connections ---- */

static int64_t lg_now(void)
{
    return osp_mono_ns();
}

static void lg_watch(struct lg_conn *c, int events)
{
    if (c->events == events) {
        return;
    }
    if (c->events != 0) {
        ev_io_stop(c->lg->loop, &c->io);
    }
    c->events = events;
    if (events != 0) {
        ev_io_set(&c->io, c->fd, events);
        ev_io_start(c->lg->loop, &c->io);
    }
}

static void lg_close(struct lg_conn *c)
{
    lg_watch(c, 0);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->st = LG_DOWN;
}

static bool lg_in_window(const struct lg *lg, int64_t start_ns)
{
    return start_ns >= lg->measure_ns;
}

static void lg_check_done(struct lg *lg)
{
    if (lg->issuing_done && lg->in_flight_measured == 0 && !lg->finished) {
        lg->finished = true;
        ev_break(lg->loop, EVBREAK_ALL);
    }
}

/* A measured request that had not finished when the window closed at end_ns: recorded at its
 * elapsed time then (a stall straddling the end stays in the percentiles), counted apart. */
static void lg_record_unfinished(struct lg *lg, const struct lg_conn *c, int64_t end_ns)
{
    struct bench_lg_result *res = lg->res;
    res->in_flight_at_end++;
    uint64_t corr = (uint64_t)(end_ns > c->intended_ns ? end_ns - c->intended_ns : 0) / 1000u;
    bench_hist_record(res->lat, corr);
    bool sent = lg->cfg->model == BENCH_MODEL_CLOSED || !c->has_pending;
    uint64_t unc = (uint64_t)(end_ns > c->sent_ns ? end_ns - c->sent_ns : 0) / 1000u;
    if (lg->cfg->model == BENCH_MODEL_OPEN && sent) {
        bench_hist_record(res->ulat, unc);
    }
    if (lg->samples != NULL) {
        if (sent) {
            fprintf(lg->samples, "%llu %llu\n", (unsigned long long)corr,
                    (unsigned long long)(lg->cfg->model == BENCH_MODEL_OPEN ? unc : corr));
        } else {
            fprintf(lg->samples, "%llu -\n", (unsigned long long)corr);
        }
    }
}

/* Count a finished measured attempt; true when recorded. */
static bool lg_account(struct lg *lg, struct lg_conn *c, int64_t now)
{
    if (!c->measured) {
        return false;
    }
    c->measured = false;
    OSP_ASSERT(lg->in_flight_measured > 0);
    lg->in_flight_measured--;
    if (now >= lg->end_ns) {
        /* Finished after the window closed (same loop iteration as the end timer). */
        lg_record_unfinished(lg, c, lg->end_ns);
        return false;
    }
    lg->res->requests++;
    return true;
}

static void lg_ready(struct lg_conn *c);
static void lg_connect(struct lg_conn *c);
static void lg_schedule(struct lg *lg);

/* Open model: offer c to the schedule (once). */
static void lg_make_idle(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    if (!c->in_idle) {
        c->in_idle = true;
        lg->idle[lg->nidle++] = (unsigned)(c - lg->conns);
    }
}

/* A request (or the connection it was waiting for) failed. */
static void lg_fail(struct lg_conn *c, enum bench_err_class cls)
{
    struct lg *lg = c->lg;
    int64_t now = lg_now();
    if (cls == BENCH_ERR_CONNECT && lg->connects_ok == 0) {
        lg->connect_fail_first++;
        unsigned need = lg->cfg->connections < LG_DEAD_AFTER ? lg->cfg->connections : LG_DEAD_AFTER;
        if (lg->connect_fail_first >= need && !lg->finished) {
            struct bench_lg_result *res = lg->res;
            res->aborted = true;
            snprintf(res->abort_reason, sizeof(res->abort_reason),
                     "cannot connect to %.80s: %.100s (%llu attempts, none succeeded)",
                     lg->cfg->host, lg->first_errno != 0 ? strerror(lg->first_errno) : "timed out",
                     (unsigned long long)lg->connect_fail_first);
            lg->finished = true;
            ev_break(lg->loop, EVBREAK_ALL);
        }
    }
    bool counted = lg_account(lg, c, now);
    if (!counted && cls == BENCH_ERR_CONNECT && lg->cfg->model == BENCH_MODEL_CLOSED &&
        now >= lg->measure_ns && now < lg->end_ns) {
        /* In the closed model a connection attempt stands for the request it would carry. */
        lg->res->requests++;
        counted = true;
    }
    if (counted) {
        lg->res->errors[cls]++;
    }
    c->has_pending = false;
    lg_close(c);
    c->retry_at_ns = now + LG_RETRY_NS;
    if (lg->cfg->model == BENCH_MODEL_OPEN && !lg->finished) {
        /* Back on the idle stack, but dispatched from the timer, not from here: a dead target
         * would otherwise recurse fail -> dispatch -> connect -> fail once per due request. */
        lg_make_idle(c);
        lg_schedule(lg);
    }
    lg_check_done(lg);
}

static void lg_write(struct lg_conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t w = write(c->fd, c->wptr + c->woff, c->wlen - c->woff);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                lg_watch(c, EV_READ | EV_WRITE);
                return;
            }
            lg_fail(c, BENCH_ERR_IO);
            return;
        }
        c->woff += (size_t)w;
    }
    c->st = LG_READING;
    lg_watch(c, EV_READ);
}

/* Start a request on an idle connection. intended_ns is the schedule time (open model) or 0. */
static void lg_send(struct lg_conn *c, int64_t intended_ns)
{
    struct lg *lg = c->lg;
    int64_t now = lg_now();
    const struct lg_tmpl *t = lg_pick(lg);
    lg_render(lg, c, t);
    bench_resp_reset(&c->resp, t->head);
    c->sent_ns = now;
    c->intended_ns = intended_ns != 0 ? intended_ns : now;
    c->deadline_ns = now + (int64_t)lg->cfg->read_timeout_ms * 1000000;
    c->woff = 0;
    c->measured = lg_in_window(lg, c->intended_ns);
    if (c->measured) {
        lg->issued++;
        lg->in_flight_measured++;
        if (lg->cfg->max_requests > 0 && lg->issued >= lg->cfg->max_requests) {
            lg->issuing_done = true;
        }
        if (lg->cfg->model == BENCH_MODEL_OPEN) {
            int64_t lag = now - c->intended_ns;
            if (lag > BENCH_LATE_NS) {
                lg->res->late_sends++;
            }
            if ((double)lag / 1e6 > lg->res->max_send_lag_ms) {
                lg->res->max_send_lag_ms = (double)lag / 1e6;
            }
        }
    }
    c->st = LG_WRITING;
    lg_write(c);
}

static bool lg_may_issue(const struct lg *lg)
{
    return !lg->issuing_done && !lg->finished;
}

/* ---- Open-model scheduling ---- */

static int64_t lg_intended(const struct lg *lg, uint64_t k)
{
    return lg->sched_origin_ns + (int64_t)((double)k * lg->interval_ns);
}

/* Hand every due request to an idle connection. */
static void lg_dispatch(struct lg *lg)
{
    int64_t now = lg_now();
    while (lg->nidle > 0 && lg_may_issue(lg)) {
        int64_t due = lg_intended(lg, lg->next_k);
        if (due > now || due >= lg->end_ns) {
            break;
        }
        struct lg_conn *c = &lg->conns[lg->idle[--lg->nidle]];
        c->in_idle = false;
        lg->next_k++;
        if (c->st == LG_IDLE) {
            lg_send(c, due);
        } else {
            /* A connection that is down takes the request and sends it once connected; the
             * connect time is part of the corrected latency, as a user would see it. */
            c->has_pending = true;
            c->intended_ns = due;
            if (lg_in_window(lg, due)) {
                c->measured = true;
                lg->issued++;
                lg->in_flight_measured++;
                if (lg->cfg->max_requests > 0 && lg->issued >= lg->cfg->max_requests) {
                    lg->issuing_done = true;
                }
            }
            lg_connect(c);
        }
    }
    lg_schedule(lg);
}

static void lg_schedule(struct lg *lg)
{
    ev_timer_stop(lg->loop, &lg->sched);
    if (lg->nidle == 0 || !lg_may_issue(lg) || lg->finished) {
        return; /* the next free connection calls lg_dispatch */
    }
    int64_t due = lg_intended(lg, lg->next_k);
    if (due >= lg->end_ns) {
        return;
    }
    double delay = (double)(due - lg_now()) / 1e9;
    ev_timer_set(&lg->sched, delay > 0 ? delay : 0.0, 0.0);
    ev_timer_start(lg->loop, &lg->sched);
}

static void lg_on_sched(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    lg_dispatch(osp_container_of(w, struct lg, sched));
}

/* A connection can take work: send now (closed) or offer it to the schedule (open). */
static void lg_ready(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    if (lg->finished) {
        return;
    }
    if (lg->cfg->model == BENCH_MODEL_CLOSED) {
        if (c->st == LG_DOWN) {
            if (lg_now() >= c->retry_at_ns) {
                lg_connect(c);
            }
            return; /* the tick retries it */
        }
        if (lg_may_issue(lg)) {
            lg_send(c, 0);
        }
        return;
    }
    lg_make_idle(c);
    lg_dispatch(lg);
}

static void lg_on_io(struct ev_loop *loop, ev_io *w, int revents);

static void lg_connect(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    const struct bench_lg_config *cfg = lg->cfg;
    int fd = socket(cfg->addr.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        lg->first_errno = lg->first_errno != 0 ? lg->first_errno : errno;
        lg_fail(c, BENCH_ERR_CONNECT);
        return;
    }
    int fl = fcntl(fd, F_GETFL);
    (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->st = LG_CONNECTING;
    c->deadline_ns = lg_now() + (int64_t)cfg->connect_timeout_ms * 1000000;
    if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen) != 0 &&
        errno != EINPROGRESS) {
        lg->first_errno = lg->first_errno != 0 ? lg->first_errno : errno;
        lg_fail(c, BENCH_ERR_CONNECT);
        return;
    }
    lg_watch(c, EV_WRITE);
}

static void lg_connected(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
        soerr = errno;
    }
    if (soerr != 0) {
        lg->first_errno = lg->first_errno != 0 ? lg->first_errno : soerr;
        lg_fail(c, BENCH_ERR_CONNECT);
        return;
    }
    lg->connects_ok++;
    lg->res->connects++;
    c->st = LG_IDLE;
    lg_watch(c, EV_READ);
    if (c->has_pending) {
        c->has_pending = false;
        bool was_measured = c->measured;
        if (was_measured) {
            /* lg_send counts it again. */
            c->measured = false;
            lg->issued--;
            lg->in_flight_measured--;
        }
        lg_send(c, c->intended_ns);
        return;
    }
    lg_ready(c);
}

/* A complete response arrived. */
static void lg_complete(struct lg_conn *c, bool closing)
{
    struct lg *lg = c->lg;
    struct bench_lg_result *res = lg->res;
    int64_t now = lg_now();
    if (lg_account(lg, c, now)) {
        res->responses++;
        int st = c->resp.status;
        if (st >= 500) {
            res->errors[BENCH_ERR_5XX]++;
        } else if (st >= 400) {
            res->errors[BENCH_ERR_4XX]++;
        }
        uint64_t corr = (uint64_t)(now - c->intended_ns) / 1000u;
        uint64_t unc = (uint64_t)(now - c->sent_ns) / 1000u;
        bench_hist_record(res->lat, corr);
        if (lg->cfg->model == BENCH_MODEL_OPEN) {
            bench_hist_record(res->ulat, unc);
        }
        if (c->resp.cache_seen) {
            res->cache_seen++;
            res->cache_hits += c->resp.cache_hit ? 1u : 0u;
        }
        res->body_bytes += c->resp.body_bytes;
        if (lg->samples != NULL) {
            fprintf(lg->samples, "%llu %llu\n", (unsigned long long)corr, (unsigned long long)unc);
        }
    }
    /* A response that arrived before the request was fully written leaves the rest of the
     * request unsent: the connection cannot be reused. */
    if (closing || !c->resp.keep_alive || c->woff < c->wlen) {
        lg_close(c);
        c->retry_at_ns = 0;
    } else {
        c->st = LG_IDLE;
    }
    lg_check_done(lg);
    lg_ready(c);
}

static void lg_readable(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    ssize_t n = read(c->fd, lg->rbuf, sizeof(lg->rbuf));
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return;
        }
        lg_fail(c, BENCH_ERR_IO);
        return;
    }
    if (n == 0) {
        if (c->st == LG_READING && bench_resp_eof(&c->resp)) {
            lg_complete(c, true);
        } else if (c->st == LG_READING || c->st == LG_WRITING) {
            lg_fail(c, BENCH_ERR_IO);
        } else {
            /* The server closed an idle keep-alive connection: not an error. */
            lg_close(c);
            c->retry_at_ns = 0;
            lg_ready(c);
        }
        return;
    }
    if (c->st != LG_READING && c->st != LG_WRITING) {
        lg_fail(c, BENCH_ERR_PARSE); /* bytes nobody asked for */
        return;
    }
    ssize_t used = bench_resp_feed(&c->resp, lg->rbuf, (size_t)n);
    if (used < 0 || (c->resp.state == BENCH_RESP_DONE && used != n)) {
        lg_fail(c, BENCH_ERR_PARSE);
        return;
    }
    if (c->resp.state == BENCH_RESP_DONE) {
        lg_complete(c, false);
    }
}

static void lg_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct lg_conn *c = osp_container_of(w, struct lg_conn, io);
    if (c->st == LG_CONNECTING) {
        if (revents & (EV_WRITE | EV_READ)) {
            lg_connected(c);
        }
        return;
    }
    if ((revents & EV_WRITE) && c->st == LG_WRITING) {
        lg_write(c);
        if (c->st == LG_DOWN) {
            return;
        }
    }
    if (revents & EV_READ) {
        lg_readable(c);
    }
}

/* ---- Timers ---- */

static void lg_on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct lg *lg = osp_container_of(w, struct lg, tick);
    const struct bench_lg_config *cfg = lg->cfg;
    if (cfg->should_stop != NULL && cfg->should_stop(cfg->stop_arg)) {
        lg->res->cancelled = true;
        lg->finished = true;
        ev_break(lg->loop, EVBREAK_ALL);
        return;
    }
    int64_t now = lg_now();
    for (unsigned i = 0; i < cfg->connections && !lg->finished; i++) {
        struct lg_conn *c = &lg->conns[i];
        switch (c->st) {
        case LG_CONNECTING:
            if (now >= c->deadline_ns) {
                lg_fail(c, BENCH_ERR_CONNECT);
            }
            break;
        case LG_WRITING:
        case LG_READING:
            if (now >= c->deadline_ns) {
                lg_fail(c, BENCH_ERR_TIMEOUT);
            }
            break;
        case LG_DOWN:
            if (cfg->model == BENCH_MODEL_CLOSED && now >= c->retry_at_ns) {
                lg_ready(c);
            }
            break;
        case LG_IDLE:
            if (cfg->model == BENCH_MODEL_CLOSED) {
                lg_ready(c);
            }
            break;
        }
    }
}

static void lg_on_end(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct lg *lg = osp_container_of(w, struct lg, end);
    lg->finished = true;
    ev_break(loop, EVBREAK_ALL);
}

/* ---- Setup ---- */

int bench_lg_resolve(struct bench_lg_config *cfg, const char *base_url, struct osp_err *err)
{
    const char *p = base_url;
    if (strncmp(p, "http://", 7) != 0) {
        return osp_err_set(err, OSP_EINVAL, "base_url must start with http:// (got \"%.64s\")",
                           base_url);
    }
    p += 7;
    char host[256];
    char port[8] = "80";
    const char *end;
    if (*p == '[') {
        end = strchr(p, ']');
        if (end == NULL || (size_t)(end - p - 1) >= sizeof(host) || end == p + 1) {
            return osp_err_set(err, OSP_EINVAL, "base_url: bad IPv6 literal");
        }
        memcpy(host, p + 1, (size_t)(end - p - 1));
        host[end - p - 1] = '\0';
        end++;
    } else {
        end = p + strcspn(p, ":/");
        if (end == p || (size_t)(end - p) >= sizeof(host)) {
            return osp_err_set(err, OSP_EINVAL, "base_url: missing or too long host");
        }
        memcpy(host, p, (size_t)(end - p));
        host[end - p] = '\0';
    }
    if (*end == ':') {
        size_t pl = strspn(end + 1, "0123456789");
        if (pl == 0 || pl > 5 || atoi(end + 1) < 1 || atoi(end + 1) > 65535) {
            return osp_err_set(err, OSP_EINVAL, "base_url: bad port");
        }
        memcpy(port, end + 1, pl);
        port[pl] = '\0';
        end += 1 + pl;
    }
    if (*end != '\0' && strcmp(end, "/") != 0) {
        return osp_err_set(err, OSP_EINVAL,
                           "base_url must be http://host[:port] without a path (got \"%.64s\")",
                           base_url);
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        return osp_err_set(err, OSP_EINVAL, "base_url: cannot resolve \"%s\": %s", host,
                           gai_strerror(rc));
    }
    memcpy(&cfg->addr, ai->ai_addr, ai->ai_addrlen);
    cfg->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    bool v6 = strchr(host, ':') != NULL;
    snprintf(cfg->host, sizeof(cfg->host), "%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
    return 0;
}

uint64_t bench_lg_error_total(const struct bench_lg_result *res)
{
    uint64_t n = 0;
    for (int i = 0; i < BENCH_ERR_N; i++) {
        n += res->errors[i];
    }
    return n;
}

void bench_lg_result_deinit(struct bench_lg_result *res)
{
    free(res->lat);
    free(res->ulat);
    memset(res, 0, sizeof(*res));
}

static int lg_check_config(const struct bench_lg_config *cfg, struct osp_err *err)
{
    if (cfg->connections < 1 || cfg->connections > BENCH_MAX_CONNECTIONS) {
        return osp_err_set(err, OSP_EINVAL, "connections must be 1..%u", BENCH_MAX_CONNECTIONS);
    }
    if (cfg->nmix < 1 || cfg->mix == NULL) {
        return osp_err_set(err, OSP_EINVAL, "the request mix is empty");
    }
    if (cfg->duration_s <= 0 && cfg->max_requests == 0) {
        return osp_err_set(err, OSP_EINVAL, "a lane needs a duration or a request count");
    }
    if (cfg->model == BENCH_MODEL_OPEN && !(cfg->rate > 0)) {
        return osp_err_set(err, OSP_EINVAL, "the open model needs a rate > 0");
    }
    if (cfg->key_count < 1 || (cfg->zipf && !(cfg->zipf_s > 0))) {
        return osp_err_set(err, OSP_EINVAL, "keys: count must be >= 1 and s > 0");
    }
    if (cfg->connect_timeout_ms < 1 || cfg->read_timeout_ms < 1) {
        return osp_err_set(err, OSP_EINVAL, "timeouts must be >= 1 ms");
    }
    return 0;
}

int bench_lg_run(const struct bench_lg_config *cfg, struct bench_lg_result *res,
                 struct osp_err *err)
{
    memset(res, 0, sizeof(*res));
    res->lat = bench_hist_new();
    res->ulat = bench_hist_new();
    int rc = lg_check_config(cfg, err);
    struct lg *lg = NULL;
    if (rc != 0) {
        goto out;
    }
    lg = osp_xcalloc(1, sizeof(*lg));
    lg->cfg = cfg;
    lg->res = res;
    lg->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (lg->loop == NULL) {
        rc = osp_err_set(err, -ENOMEM, "cannot create an event loop");
        goto out;
    }
    if (cfg->samples_path != NULL) {
        lg->samples = fopen(cfg->samples_path, "we");
        if (lg->samples == NULL) {
            rc = osp_err_set(err, -errno, "cannot open %s: %s", cfg->samples_path, strerror(errno));
            goto out;
        }
    }
    uint64_t seed = cfg->seed;
    for (int i = 0; i < 4; i++) {
        lg->rng[i] = lg_splitmix(&seed);
    }
    if (cfg->zipf) {
        lg_zipf_init(lg);
    }
    lg->tmpl = osp_xcalloc(cfg->nmix, sizeof(*lg->tmpl));
    for (size_t i = 0; i < cfg->nmix; i++) {
        lg_tmpl_build(lg, &lg->tmpl[i], &cfg->mix[i]);
        lg->total_weight += cfg->mix[i].weight > 0 ? cfg->mix[i].weight : 1u;
        lg->tmpl[i].cum_weight = lg->total_weight;
    }
    lg->conns = osp_xcalloc(cfg->connections, sizeof(*lg->conns));
    lg->idle = osp_xcalloc(cfg->connections, sizeof(*lg->idle));
    for (unsigned i = 0; i < cfg->connections; i++) {
        struct lg_conn *c = &lg->conns[i];
        c->lg = lg;
        c->fd = -1;
        ev_init(&c->io, lg_on_io);
        bench_resp_init(&c->resp, cfg->cache_header, cfg->cache_hit_value);
    }

    /* Engines share one start: nothing (not even a connect) happens before it. */
    for (int64_t wait = cfg->start_at_ns - lg_now(); wait > 0; wait = cfg->start_at_ns - lg_now()) {
        struct timespec ts = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
        nanosleep(&ts, NULL);
    }
    ev_now_update(lg->loop); /* the timers below count from now, not from the loop's creation */
    lg->start_ns = cfg->start_at_ns > 0 ? cfg->start_at_ns : lg_now();
    lg->sched_origin_ns = lg->start_ns + cfg->schedule_offset_ns;
    lg->measure_ns = lg->start_ns + (int64_t)(cfg->warmup_s * 1e9);
    lg->end_ns =
        cfg->duration_s > 0 ? lg->measure_ns + (int64_t)(cfg->duration_s * 1e9) : INT64_MAX;
    lg->interval_ns = cfg->model == BENCH_MODEL_OPEN ? 1e9 / cfg->rate : 0.0;

    ev_timer_init(&lg->tick, lg_on_tick, LG_TICK_S, LG_TICK_S);
    ev_timer_start(lg->loop, &lg->tick);
    ev_init(&lg->sched, lg_on_sched);
    if (lg->end_ns != INT64_MAX) {
        ev_timer_init(&lg->end, lg_on_end, (double)(lg->end_ns - lg_now()) / 1e9, 0.0);
        ev_timer_start(lg->loop, &lg->end);
    }
    for (unsigned i = 0; i < cfg->connections && !lg->finished; i++) {
        lg_connect(&lg->conns[i]);
    }
    if (!lg->finished) {
        ev_run(lg->loop, 0);
    }

    int64_t stop_ns = lg_now();
    if (stop_ns > lg->end_ns) {
        stop_ns = lg->end_ns;
    }
    res->elapsed_s = stop_ns > lg->measure_ns ? (double)(stop_ns - lg->measure_ns) / 1e9 : 0.0;
    for (unsigned i = 0; i < cfg->connections; i++) {
        if (lg->conns[i].measured) {
            lg_record_unfinished(lg, &lg->conns[i], stop_ns);
        }
    }
    res->issued = lg->issued;
    if (cfg->model == BENCH_MODEL_OPEN && !lg->issuing_done) {
        /* Intended requests in the window that never got a connection: indices k >= next_k
         * with measure_ns <= start + k * interval < stop_ns. Each is recorded (corrected) at
         * its wait so far: under overload the queue of unsent requests is the latency. */
        double lo = ceil((double)(lg->measure_ns - lg->sched_origin_ns) / lg->interval_ns);
        double hi = ceil((double)(stop_ns - lg->sched_origin_ns) / lg->interval_ns);
        if (lo < (double)lg->next_k) {
            lo = (double)lg->next_k;
        }
        res->dropped = hi > lo ? (uint64_t)(hi - lo) : 0;
        for (uint64_t k = (uint64_t)lo; k < (uint64_t)lo + res->dropped; k++) {
            int64_t intended = lg_intended(lg, k);
            uint64_t corr = (uint64_t)(stop_ns > intended ? stop_ns - intended : 0) / 1000u;
            bench_hist_record(res->lat, corr);
            if (lg->samples != NULL) {
                fprintf(lg->samples, "%llu -\n", (unsigned long long)corr); /* never sent */
            }
        }
    }
    if (cfg->model == BENCH_MODEL_CLOSED) {
        bench_hist_merge(res->ulat, res->lat);
    }
    rc = 0;
out:
    if (lg != NULL) {
        if (lg->conns != NULL) {
            for (unsigned i = 0; i < cfg->connections; i++) {
                lg_close(&lg->conns[i]);
                free(lg->conns[i].wbuf);
            }
        }
        if (lg->loop != NULL) {
            ev_timer_stop(lg->loop, &lg->tick);
            ev_timer_stop(lg->loop, &lg->sched);
            ev_timer_stop(lg->loop, &lg->end);
            ev_loop_destroy(lg->loop);
        }
        if (lg->tmpl != NULL) {
            for (size_t i = 0; i < cfg->nmix; i++) {
                lg_tmpl_free(&lg->tmpl[i]);
            }
        }
        if (lg->samples != NULL) {
            fclose(lg->samples);
        }
        free(lg->tmpl);
        free(lg->conns);
        free(lg->idle);
        free(lg);
    }
    return rc;
}
