/* SPDX-License-Identifier: MIT */
/* balancer.c — the local adapter's load balancer for scale-out lanes (scale.h): a TCP proxy
 * on 127.0.0.1 that hands each accepted connection to the next instance in turn.
 *
 * Balancing is per connection, like kube-proxy in front of a Service: a keep-alive connection
 * stays with the instance it was given, which is why a scale-out lane needs at least as many
 * connections as replicas (spec.c). Bytes are relayed unchanged through one fixed buffer per
 * direction; a direction reads again only when its buffer has been written out (backpressure,
 * no queue). A half-close is passed on (shutdown(SHUT_WR)) and the pair is closed when both
 * directions are done; an upstream that refuses the connection closes the client's, as a
 * proxy in front of a dead backend does.
 *
 * Why in-process and not a helper binary: the worker image ships one program per role, and a
 * balancer that lives and dies with the job's child needs no path setting, no port handshake
 * and no reaping. It runs on a libev loop of its own in a thread of its own, so the load
 * engines (their own threads and loops) never wait for it; the only cross-thread calls are
 * ev_async_send (stop) and pthread_join, after which its counters are read. Signals are
 * blocked in its thread: the child's SIGTERM belongs to the main thread. */
#define _GNU_SOURCE /* accept4 */
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/benchmark/scale.h"

#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BB_BUF 16384

struct bb_conn;

/* One direction: bytes read from src wait in buf until written to dst. */
struct bb_pipe {
    ev_io rd; /* readable on src, while buf is empty */
    ev_io wr; /* writable on dst, while buf holds bytes (first: the upstream connect) */
    struct bb_conn *conn;
    int src, dst;
    size_t len, off;
    bool src_eof, dst_shut;
    uint8_t buf[BB_BUF];
};

struct bb_conn {
    struct bench_balancer *b;
    struct bb_conn *prev, *next;
    struct bb_pipe up;   /* client -> instance */
    struct bb_pipe down; /* instance -> client */
    int cfd, ufd;
};

struct bench_balancer {
    struct ev_loop *loop;
    pthread_t tid;
    bool started;
    ev_async stop_w;
    ev_io accept_w;
    ev_timer pause_w; /* accept paused after EMFILE and the like */
    int lfd;
    unsigned port;
    unsigned n, next;
    struct sockaddr_in ups[BENCH_MAX_REPLICAS];
    uint64_t conns[BENCH_MAX_REPLICAS]; /* connections handed to each instance */
    uint64_t upstream_failures;
    struct bb_conn *head;
};

static void bb_conn_close(struct bb_conn *c)
{
    struct bench_balancer *b = c->b;
    ev_io_stop(b->loop, &c->up.rd);
    ev_io_stop(b->loop, &c->up.wr);
    ev_io_stop(b->loop, &c->down.rd);
    ev_io_stop(b->loop, &c->down.wr);
    close(c->cfd);
    close(c->ufd);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        b->head = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    free(c);
}

/* Write what buf holds; when it is empty read again, or pass the EOF on. Returns false when
 * the connection was closed. */
static bool bb_pump(struct bb_pipe *p)
{
    struct bb_conn *c = p->conn;
    struct ev_loop *loop = c->b->loop;
    while (p->off < p->len) {
        ssize_t w = send(p->dst, p->buf + p->off, p->len - p->off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && errno == EAGAIN) {
            ev_io_start(loop, &p->wr);
            return true;
        }
        if (w < 0) {
            bb_conn_close(c);
            return false;
        }
        p->off += (size_t)w;
    }
    ev_io_stop(loop, &p->wr);
    p->len = p->off = 0;
    if (p->src_eof) {
        if (!p->dst_shut) {
            shutdown(p->dst, SHUT_WR);
            p->dst_shut = true;
        }
        if (c->up.dst_shut && c->down.dst_shut) {
            bb_conn_close(c);
            return false;
        }
        return true;
    }
    ev_io_start(loop, &p->rd);
    return true;
}

static void bb_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct bb_pipe *p = osp_container_of(w, struct bb_pipe, rd);
    ssize_t n = recv(p->src, p->buf, sizeof(p->buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n < 0) {
        bb_conn_close(p->conn);
        return;
    }
    ev_io_stop(loop, &p->rd);
    if (n == 0) {
        p->src_eof = true;
    } else {
        p->len = (size_t)n;
        p->off = 0;
    }
    bb_pump(p);
}

static void bb_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    bb_pump(osp_container_of(w, struct bb_pipe, wr));
}

static void bb_pipe_init(struct bb_pipe *p, struct bb_conn *c, int src, int dst)
{
    p->conn = c;
    p->src = src;
    p->dst = dst;
    ev_io_init(&p->rd, bb_on_read, src, EV_READ);
    ev_io_init(&p->wr, bb_on_write, dst, EV_WRITE);
}

/* The upstream connect finished (the up pipe's write watcher doubles as connect watcher). */
static void bb_on_connect(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct bb_pipe *p = osp_container_of(w, struct bb_pipe, wr);
    struct bb_conn *c = p->conn;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    ev_io_stop(loop, w);
    if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        c->b->upstream_failures++;
        bb_conn_close(c);
        return;
    }
    ev_set_cb(w, bb_on_write);
    ev_io_start(loop, &c->up.rd);
    ev_io_start(loop, &c->down.rd);
}

static void bb_on_pause_end(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct bench_balancer *b = osp_container_of(w, struct bench_balancer, pause_w);
    ev_io_start(loop, &b->accept_w);
}

static void bb_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct bench_balancer *b = osp_container_of(w, struct bench_balancer, accept_w);
    for (;;) {
        int cfd = accept4(b->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                /* Out of descriptors or memory: a level-triggered listener would spin;
                 * pause accepting for a moment (connections wait in the backlog). */
                ev_io_stop(loop, &b->accept_w);
                ev_timer_set(&b->pause_w, 0.1, 0.);
                ev_timer_start(loop, &b->pause_w);
            }
            return;
        }
        int ufd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (ufd < 0) {
            close(cfd);
            continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        unsigned i = b->next;
        b->next = (b->next + 1) % b->n;
        b->conns[i]++;
        struct bb_conn *c = osp_xcalloc(1, sizeof(*c));
        c->b = b;
        c->cfd = cfd;
        c->ufd = ufd;
        c->next = b->head;
        if (b->head != NULL) {
            b->head->prev = c;
        }
        b->head = c;
        bb_pipe_init(&c->up, c, cfd, ufd);
        bb_pipe_init(&c->down, c, ufd, cfd);
        if (connect(ufd, (const struct sockaddr *)&b->ups[i], sizeof(b->ups[i])) != 0 &&
            errno != EINPROGRESS) {
            b->upstream_failures++;
            bb_conn_close(c);
            continue;
        }
        ev_set_cb(&c->up.wr, bb_on_connect);
        ev_io_start(loop, &c->up.wr);
    }
}

static void bb_on_stop(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void *bb_main(void *arg)
{
    struct bench_balancer *b = arg;
    ev_run(b->loop, 0);
    return NULL;
}

struct bench_balancer *bench_balancer_start(const unsigned *ports, unsigned n, struct osp_err *err)
{
    OSP_ASSERT(n >= 1 && n <= BENCH_MAX_REPLICAS);
    struct bench_balancer *b = osp_xcalloc(1, sizeof(*b));
    b->lfd = -1;
    b->n = n;
    for (unsigned i = 0; i < n; i++) {
        b->ups[i].sin_family = AF_INET;
        b->ups[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        b->ups[i].sin_port = htons((uint16_t)ports[i]);
    }
    struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t ll = sizeof(la);
    b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (b->lfd < 0 || bind(b->lfd, (const struct sockaddr *)&la, sizeof(la)) != 0 ||
        listen(b->lfd, 1024) != 0 || getsockname(b->lfd, (struct sockaddr *)&la, &ll) != 0) {
        osp_err_set(err, -errno, "balancer: cannot listen on 127.0.0.1: %s", strerror(errno));
        goto fail;
    }
    b->port = ntohs(la.sin_port);
    b->loop = ev_loop_new(EVFLAG_AUTO);
    if (b->loop == NULL) {
        osp_err_set(err, OSP_EINVAL, "balancer: cannot create an event loop");
        goto fail;
    }
    ev_async_init(&b->stop_w, bb_on_stop);
    ev_async_start(b->loop, &b->stop_w);
    ev_io_init(&b->accept_w, bb_on_accept, b->lfd, EV_READ);
    ev_io_start(b->loop, &b->accept_w);
    ev_init(&b->pause_w, bb_on_pause_end);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits the mask */
    int prc = pthread_create(&b->tid, NULL, bb_main, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        osp_err_set(err, -prc, "balancer: cannot start its thread: %s", strerror(prc));
        goto fail;
    }
    b->started = true;
    return b;
fail:
    json_decref(bench_balancer_stop(b));
    return NULL;
}

unsigned bench_balancer_port(const struct bench_balancer *b)
{
    return b->port;
}

json_t *bench_balancer_stop(struct bench_balancer *b)
{
    if (b == NULL) {
        return NULL;
    }
    if (b->started) {
        ev_async_send(b->loop, &b->stop_w);
        pthread_join(b->tid, NULL);
    }
    /* The thread is gone: its loop and connections are ours now. */
    json_t *per = json_array();
    for (unsigned i = 0; i < b->n; i++) {
        json_array_append_new(per, json_integer((json_int_t)b->conns[i]));
    }
    json_t *stats = json_pack("{s:o, s:I}", "connections", per, "upstream_failures",
                              (json_int_t)b->upstream_failures);
    if (b->loop != NULL) {
        while (b->head != NULL) {
            bb_conn_close(b->head);
        }
        ev_io_stop(b->loop, &b->accept_w);
        ev_timer_stop(b->loop, &b->pause_w);
        ev_async_stop(b->loop, &b->stop_w);
        ev_loop_destroy(b->loop);
    }
    if (b->lfd >= 0) {
        close(b->lfd);
    }
    free(b);
    return stats;
}
