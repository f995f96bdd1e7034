/* SPDX-License-Identifier: MIT */
/* stallserver.c — osp-stallserver: a tiny HTTP/1.1 server for load-generator tests and
 * benchmarks. Answers every request with 200 and a small body, keep-alive, and every
 * --stall-every-ms freezes the whole process for --stall-ms (a GC pause or a stop-the-world
 * lock as a user would suffer it). With --stall-every-ms 0 it is a plain static responder, the
 * common target for comparing opspool-loadgen with wrk.
 *
 *   osp-stallserver [--port N] [--stall-every-ms 1000] [--stall-ms 200] [--chunked]
 *                   [--close] [--status 200] [--cache-hit-every N]
 *
 * Binds 127.0.0.1 only; --port 0 (default) takes a free port. Prints "port N" on stdout once
 * listening. Request bodies are not supported (GET/HEAD only: what the tests send). Stops on
 * SIGTERM/SIGINT. */
#include "common/base.h"
#include "common/buf.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct ss_conn {
    ev_io io;
    int fd;
    struct osp_buf in, out;
};

static struct {
    int stall_every_ms, stall_ms, status, cache_hit_every;
    bool chunked, close_after;
    unsigned long long served;
} ss = {.stall_every_ms = 1000, .stall_ms = 200, .status = 200};

static void ss_conn_free(struct ev_loop *loop, struct ss_conn *c)
{
    ev_io_stop(loop, &c->io);
    close(c->fd);
    osp_buf_deinit(&c->in);
    osp_buf_deinit(&c->out);
    free(c);
}

static void ss_respond(struct ss_conn *c)
{
    ss.served++;
    const char *cache = "";
    if (ss.cache_hit_every > 0) {
        cache = ss.served % (unsigned long long)ss.cache_hit_every == 0 ? "X-Cache: HIT\r\n"
                                                                        : "X-Cache: MISS\r\n";
    }
    const char *conn = ss.close_after ? "Connection: close\r\n" : "";
    if (ss.chunked) {
        osp_buf_appendf(&c->out,
                        "HTTP/1.1 %d OK\r\nTransfer-Encoding: chunked\r\n%s%s\r\n"
                        "2\r\nok\r\n1;ext=1\r\n!\r\n0\r\nTrailer: x\r\n\r\n",
                        ss.status, cache, conn);
    } else {
        osp_buf_appendf(&c->out, "HTTP/1.1 %d OK\r\nContent-Length: 2\r\n%s%s\r\nok", ss.status,
                        cache, conn);
    }
}

/* Write what is pending; false when the connection must be closed. */
static bool ss_flush(struct ev_loop *loop, struct ss_conn *c)
{
    while (c->out.len > 0) {
        ssize_t w = write(c->fd, c->out.data, c->out.len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ev_io_stop(loop, &c->io);
                ev_io_set(&c->io, c->fd, EV_READ | EV_WRITE);
                ev_io_start(loop, &c->io);
                return true;
            }
            return false;
        }
        osp_buf_consume(&c->out, (size_t)w);
    }
    if (c->io.events & EV_WRITE) {
        ev_io_stop(loop, &c->io);
        ev_io_set(&c->io, c->fd, EV_READ);
        ev_io_start(loop, &c->io);
    }
    return !ss.close_after;
}

static void ss_on_conn(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ss_conn *c = osp_container_of(w, struct ss_conn, io);
    if (revents & EV_READ) {
        char buf[16384];
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            ss_conn_free(loop, c);
            return;
        }
        if (n > 0) {
            osp_buf_append(&c->in, buf, (size_t)n);
            if (c->in.len > 65536) {
                ss_conn_free(loop, c);
                return;
            }
        }
        for (;;) {
            const char *s = (const char *)c->in.data;
            const char *end = NULL;
            for (size_t i = 3; s != NULL && i < c->in.len; i++) {
                if (s[i] == '\n' && s[i - 1] == '\r' && s[i - 2] == '\n' && s[i - 3] == '\r') {
                    end = s + i + 1;
                    break;
                }
            }
            if (end == NULL) {
                break;
            }
            osp_buf_consume(&c->in, (size_t)(end - s));
            ss_respond(c);
        }
    }
    if (!ss_flush(loop, c)) {
        ss_conn_free(loop, c);
    }
}

static void ss_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    for (;;) {
        int fd = accept(w->fd, NULL, NULL);
        if (fd < 0) {
            return;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct ss_conn *c = calloc(1, sizeof(*c));
        OSP_ASSERT(c != NULL);
        c->fd = fd;
        ev_io_init(&c->io, ss_on_conn, fd, EV_READ);
        ev_io_start(loop, &c->io);
    }
}

static void ss_on_stall(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    /* The whole process freezes: nothing is accepted, read or written meanwhile. */
    struct timespec ts = {.tv_sec = ss.stall_ms / 1000, .tv_nsec = (ss.stall_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    ev_now_update(loop);
}

static void ss_on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"stall-every-ms", required_argument, NULL, 'e'},
        {"stall-ms", required_argument, NULL, 's'},
        {"status", required_argument, NULL, 'S'},
        {"cache-hit-every", required_argument, NULL, 'h'},
        {"chunked", no_argument, NULL, 'c'},
        {"close", no_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    int port = 0, opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'e':
            ss.stall_every_ms = atoi(optarg);
            break;
        case 's':
            ss.stall_ms = atoi(optarg);
            break;
        case 'S':
            ss.status = atoi(optarg);
            break;
        case 'h':
            ss.cache_hit_every = atoi(optarg);
            break;
        case 'c':
            ss.chunked = true;
            break;
        case 'C':
            ss.close_after = true;
            break;
        default:
            fprintf(stderr, "usage: osp-stallserver [--port N] [--stall-every-ms N] "
                            "[--stall-ms N] [--status N] [--cache-hit-every N] [--chunked] "
                            "[--close]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    socklen_t al = sizeof(a);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
        perror("osp-stallserver: listen");
        return 1;
    }
    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);

    struct ev_loop *loop = EV_DEFAULT;
    ev_io accept_w;
    ev_io_init(&accept_w, ss_on_accept, lfd, EV_READ);
    ev_io_start(loop, &accept_w);
    ev_timer stall;
    if (ss.stall_every_ms > 0 && ss.stall_ms > 0) {
        ev_timer_init(&stall, ss_on_stall, ss.stall_every_ms / 1000.0, ss.stall_every_ms / 1000.0);
        ev_timer_start(loop, &stall);
    }
    ev_signal sigterm, sigint;
    ev_signal_init(&sigterm, ss_on_signal, SIGTERM);
    ev_signal_init(&sigint, ss_on_signal, SIGINT);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);
    ev_run(loop, 0);
    close(lfd);
    return 0;
}
