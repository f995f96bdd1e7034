/* SPDX-License-Identifier: MIT */
/* proxy.c — the local latency fault: a TCP proxy on the drill's libev loop.
 *
 * The target's traffic (probes, benchmark lanes) goes to local.proxy_listen; each accepted
 * connection is paired with a fresh connection to local.upstream. Client-to-server bytes pass
 * straight through; server-to-client bytes are queued as chunks with a release time, like
 * toxiproxy's default "downstream" latency toxic, so each request/response exchange pays the
 * delay once. Release times never go backwards (a TCP stream cannot be reordered), and
 * turning the delay off releases everything queued at once: rollback is immediate.
 * The proxy lives exactly as long as the drill; it passes traffic undelayed outside the
 * fault window. A direction holding more than DRILL_PX_MAX_QUEUED bytes stops reading from
 * its source until it drains (backpressure instead of unbounded memory). */
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
#include <sys/socket.h>
#include <unistd.h>

#define DRILL_PX_MAX_QUEUED (1024 * 1024)
#define DRILL_PX_MAX_CONNS  512

struct drill_chunk {
    struct drill_chunk *next;
    int64_t release_ns;
    size_t len, off;
    uint8_t data[];
};

struct drill_pipe {
    ev_io rd;         /* readable on src */
    ev_io wr;         /* writable on dst, while chunks wait for room */
    ev_timer release; /* head chunk not yet due */
    struct drill_conn *conn;
    int src, dst;
    bool delayed; /* this direction pays the fault's latency */
    bool src_eof;
    bool dst_shut;
    struct drill_chunk *head, *tail;
    size_t queued;
    int64_t last_release_ns;
};

struct drill_conn {
    struct drill_proxy *px;
    struct drill_conn *next;
    struct drill_pipe up;   /* client -> server */
    struct drill_pipe down; /* server -> client */
    int cfd, ufd;
    bool connecting;
};

struct drill_proxy {
    struct ev_loop *loop;
    ev_io accept_io;
    int lfd;
    struct sockaddr_storage upstream;
    socklen_t upstream_len;
    unsigned latency_ms, jitter_ms;
    uint64_t rng;
    struct drill_conn *conns;
    unsigned nconns;
    uint64_t accepted, upstream_failures, delayed_chunks;
};

static uint64_t drill_px_rand(struct drill_proxy *px)
{
    /* splitmix64: jitter only needs to be spread, not unpredictable */
    uint64_t z = (px->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void drill_conn_close(struct drill_conn *c)
{
    struct drill_proxy *px = c->px;
    struct drill_pipe *pipes[2] = {&c->up, &c->down};
    for (int i = 0; i < 2; i++) {
        ev_io_stop(px->loop, &pipes[i]->rd);
        ev_io_stop(px->loop, &pipes[i]->wr);
        ev_timer_stop(px->loop, &pipes[i]->release);
        while (pipes[i]->head != NULL) {
            struct drill_chunk *k = pipes[i]->head;
            pipes[i]->head = k->next;
            free(k);
        }
    }
    close(c->cfd);
    close(c->ufd);
    for (struct drill_conn **pp = &px->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    px->nconns--;
    free(c);
}

/* Both directions finished: source closed and everything forwarded. */
static bool drill_conn_done(const struct drill_conn *c)
{
    return c->up.dst_shut && c->down.dst_shut;
}

static void drill_pipe_update_read(struct drill_pipe *p)
{
    struct ev_loop *loop = p->conn->px->loop;
    bool want = !p->src_eof && p->queued < DRILL_PX_MAX_QUEUED && !p->conn->connecting;
    if (want && !ev_is_active(&p->rd)) {
        ev_io_start(loop, &p->rd);
    } else if (!want && ev_is_active(&p->rd)) {
        ev_io_stop(loop, &p->rd);
    }
}

/* Write every chunk that is due; arm the write watcher or the release timer for the rest.
 * Returns false when the connection was closed. */
static bool drill_pipe_pump(struct drill_pipe *p)
{
    struct drill_conn *c = p->conn;
    struct ev_loop *loop = c->px->loop;
    int64_t now = osp_mono_ns();
    ev_io_stop(loop, &p->wr);
    ev_timer_stop(loop, &p->release);
    while (p->head != NULL) {
        struct drill_chunk *k = p->head;
        if (k->release_ns > now) {
            ev_timer_set(&p->release, (double)(k->release_ns - now) / 1e9, 0.);
            ev_timer_start(loop, &p->release);
            break;
        }
        ssize_t w = send(p->dst, k->data + k->off, k->len - k->off, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            ev_io_start(loop, &p->wr);
            break;
        }
        if (w < 0) {
            drill_conn_close(c);
            return false;
        }
        k->off += (size_t)w;
        p->queued -= (size_t)w;
        if (k->off == k->len) {
            p->head = k->next;
            if (p->head == NULL) {
                p->tail = NULL;
            }
            free(k);
        }
    }
    if (p->head == NULL && p->src_eof && !p->dst_shut) {
        shutdown(p->dst, SHUT_WR);
        p->dst_shut = true;
        if (drill_conn_done(c)) {
            drill_conn_close(c);
            return false;
        }
    }
    drill_pipe_update_read(p);
    return true;
}

static void drill_pipe_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct drill_pipe *p = osp_container_of(w, struct drill_pipe, rd);
    struct drill_proxy *px = p->conn->px;
    uint8_t buf[16384];
    ssize_t n = recv(p->src, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n < 0) {
        drill_conn_close(p->conn);
        return;
    }
    if (n == 0) {
        p->src_eof = true;
        drill_pipe_pump(p);
        return;
    }
    struct drill_chunk *k = osp_xmalloc(sizeof(*k) + (size_t)n);
    memcpy(k->data, buf, (size_t)n);
    k->len = (size_t)n;
    k->off = 0;
    k->next = NULL;
    int64_t rel = osp_mono_ns();
    if (p->delayed && px->latency_ms > 0) {
        int64_t d = (int64_t)px->latency_ms * 1000000;
        if (px->jitter_ms > 0) {
            int64_t j = (int64_t)px->jitter_ms * 1000000;
            d += (int64_t)(drill_px_rand(px) % (uint64_t)(2 * j + 1)) - j;
        }
        rel += d > 0 ? d : 0;
        px->delayed_chunks++;
    }
    if (rel < p->last_release_ns) {
        rel = p->last_release_ns; /* keep stream order under jitter */
    }
    p->last_release_ns = rel;
    k->release_ns = rel;
    if (p->tail != NULL) {
        p->tail->next = k;
    } else {
        p->head = k;
    }
    p->tail = k;
    p->queued += (size_t)n;
    drill_pipe_pump(p);
}

static void drill_pipe_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    drill_pipe_pump(osp_container_of(w, struct drill_pipe, wr));
}

static void drill_pipe_on_release(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    drill_pipe_pump(osp_container_of(w, struct drill_pipe, release));
}

static void drill_pipe_init(struct drill_pipe *p, struct drill_conn *c, int src, int dst,
                            bool delayed)
{
    p->conn = c;
    p->src = src;
    p->dst = dst;
    p->delayed = delayed;
    ev_io_init(&p->rd, drill_pipe_on_read, src, EV_READ);
    ev_io_init(&p->wr, drill_pipe_on_write, dst, EV_WRITE);
    ev_init(&p->release, drill_pipe_on_release);
}

/* The upstream connect finished (the up pipe's write watcher doubles as connect watcher). */
static void drill_conn_on_connect(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct drill_pipe *p = osp_container_of(w, struct drill_pipe, wr);
    struct drill_conn *c = p->conn;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    ev_io_stop(loop, w);
    if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        /* Like a dead backend behind a real proxy: the client sees its connection closed. */
        c->px->upstream_failures++;
        drill_conn_close(c);
        return;
    }
    c->connecting = false;
    ev_set_cb(w, drill_pipe_on_write);
    drill_pipe_update_read(&c->up);
    drill_pipe_update_read(&c->down);
}

static void drill_px_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct drill_proxy *px = osp_container_of(w, struct drill_proxy, accept_io);
    for (;;) {
        int cfd = accept(px->lfd, NULL, NULL);
        if (cfd < 0) {
            return; /* EAGAIN, or a transient error: the next readiness retries */
        }
        int fl = fcntl(cfd, F_GETFL);
        if (fl < 0 || fcntl(cfd, F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(cfd, F_SETFD, FD_CLOEXEC) != 0) {
            close(cfd);
            continue;
        }
        if (px->nconns >= DRILL_PX_MAX_CONNS) {
            close(cfd);
            continue;
        }
        int ufd = socket(px->upstream.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (ufd < 0) {
            close(cfd);
            continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct drill_conn *c = osp_xcalloc(1, sizeof(*c));
        c->px = px;
        c->cfd = cfd;
        c->ufd = ufd;
        c->connecting = true;
        c->next = px->conns;
        px->conns = c;
        px->nconns++;
        px->accepted++;
        drill_pipe_init(&c->up, c, cfd, ufd, false);
        drill_pipe_init(&c->down, c, ufd, cfd, true);
        if (connect(ufd, (const struct sockaddr *)&px->upstream, px->upstream_len) != 0 &&
            errno != EINPROGRESS) {
            px->upstream_failures++;
            drill_conn_close(c);
            continue;
        }
        ev_set_cb(&c->up.wr, drill_conn_on_connect);
        ev_io_start(loop, &c->up.wr);
    }
}

static int drill_resolve(const char *hostport, bool passive, struct sockaddr_storage *ss,
                         socklen_t *len)
{
    char host[256];
    unsigned port;
    if (drill_parse_hostport(hostport, host, sizeof(host), &port) != 0) {
        return OSP_EINVAL;
    }
    char ports[8];
    snprintf(ports, sizeof(ports), "%u", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, ports, &hints, &ai) != 0 || ai == NULL) {
        return OSP_EINVAL;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

struct drill_proxy *drill_proxy_new(struct ev_loop *loop, const char *listen_at,
                                    const char *upstream, struct osp_err *err)
{
    struct drill_proxy *px = osp_xcalloc(1, sizeof(*px));
    struct sockaddr_storage la;
    socklen_t la_len = 0;
    px->loop = loop;
    px->lfd = -1;
    px->rng = (uint64_t)osp_mono_ns() ^ (uint64_t)getpid();
    if (drill_resolve(upstream, false, &px->upstream, &px->upstream_len) != 0) {
        osp_err_set(err, OSP_EINVAL, "target local.upstream: cannot resolve \"%.100s\"", upstream);
        goto fail;
    }
    if (drill_resolve(listen_at, true, &la, &la_len) != 0) {
        osp_err_set(err, OSP_EINVAL, "target local.proxy_listen: cannot resolve \"%.100s\"",
                    listen_at);
        goto fail;
    }
    px->lfd = socket(la.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (px->lfd < 0 || setsockopt(px->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(px->lfd, (const struct sockaddr *)&la, la_len) != 0 || listen(px->lfd, 128) != 0) {
        osp_err_set(err, -errno, "latency proxy: cannot listen on %.100s: %s", listen_at,
                    strerror(errno));
        goto fail;
    }
    ev_io_init(&px->accept_io, drill_px_on_accept, px->lfd, EV_READ);
    ev_io_start(loop, &px->accept_io);
    return px;
fail:
    drill_proxy_free(px);
    return NULL;
}

void drill_proxy_set_delay(struct drill_proxy *px, unsigned latency_ms, unsigned jitter_ms)
{
    px->latency_ms = latency_ms;
    px->jitter_ms = jitter_ms;
    if (latency_ms != 0) {
        return;
    }
    /* Rollback: what is held back goes out now, in order. Pumping may close connections,
     * so walk a snapshot of the next pointers. */
    int64_t now = osp_mono_ns();
    struct drill_conn *c = px->conns;
    while (c != NULL) {
        struct drill_conn *next = c->next;
        for (struct drill_chunk *k = c->down.head; k != NULL; k = k->next) {
            k->release_ns = now;
        }
        c->down.last_release_ns = now;
        if (!c->connecting) {
            drill_pipe_pump(&c->down);
        }
        c = next;
    }
}

json_t *drill_proxy_stats(const struct drill_proxy *px)
{
    return json_pack("{s:I, s:I, s:I, s:i}", "connections", (json_int_t)px->accepted,
                     "upstream_failures", (json_int_t)px->upstream_failures, "delayed_chunks",
                     (json_int_t)px->delayed_chunks, "open", (int)px->nconns);
}

void drill_proxy_free(struct drill_proxy *px)
{
    if (px == NULL) {
        return;
    }
    while (px->conns != NULL) {
        drill_conn_close(px->conns);
    }
    if (px->lfd >= 0) {
        ev_io_stop(px->loop, &px->accept_io);
        close(px->lfd);
    }
    free(px);
}
