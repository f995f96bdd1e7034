/* SPDX-License-Identifier: MIT */
/* healthserver.c — a tiny HTTP/1.1 server for drill tests: stands in for a real service.
 *
 *   osp-healthserver --port N [--port-file FILE] [--pidfile FILE] [--delay-ms MS]
 * (--port 0: any free port, written to --port-file; a restart finding the file binds it again)
 *
 * GET /health → 200 "ok"; GET /slow → 200 after --delay-ms; anything else → 404. One process,
 * poll(), Connection: close. Writes its pid to --pidfile once listening (SO_REUSEADDR, so a
 * supervisor can restart it on the same port at once) and exits 0 on SIGTERM. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HS_MAX 256

struct hs_conn {
    int fd;
    size_t len;
    char buf[2048];
};

static volatile sig_atomic_t hs_stop;

static void hs_on_term(int sig)
{
    (void)sig;
    hs_stop = 1;
}

static void hs_answer(struct hs_conn *c, long delay_ms)
{
    const char *body = "not found\n";
    const char *status = "404 Not Found";
    if (strncmp(c->buf, "GET /health ", 12) == 0) {
        body = "ok\n";
        status = "200 OK";
    } else if (strncmp(c->buf, "GET /slow ", 10) == 0) {
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
        body = "slow ok\n";
        status = "200 OK";
    }
    char out[512];
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, strlen(body), body);
    ssize_t w = send(c->fd, out, (size_t)n, MSG_NOSIGNAL);
    (void)w;
}

int main(int argc, char **argv)
{
    int port = -1;
    long delay_ms = 100;
    const char *pidfile = NULL, *portfile = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) {
            port = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--port-file") == 0) {
            portfile = argv[i + 1];
        } else if (strcmp(argv[i], "--pidfile") == 0) {
            pidfile = argv[i + 1];
        } else if (strcmp(argv[i], "--delay-ms") == 0) {
            delay_ms = atol(argv[i + 1]);
        }
    }
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: osp-healthserver --port N [--port-file FILE] [--pidfile FILE] "
                        "[--delay-ms MS]\n");
        return 2;
    }
    /* --port 0: a free port, written to --port-file; when that file already names a port (a
     * restart under a supervisor), that port again. */
    FILE *pf = port == 0 && portfile != NULL ? fopen(portfile, "r") : NULL;
    if (pf != NULL) {
        int prev = 0;
        if (fscanf(pf, "%d", &prev) == 1 && prev > 0 && prev <= 65535) {
            port = prev;
        }
        fclose(pf);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = hs_on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 128) != 0) {
        fprintf(stderr, "osp-healthserver: cannot listen on %d: %s\n", port, strerror(errno));
        return 1;
    }
    socklen_t alen = sizeof(a);
    if (portfile != NULL && getsockname(lfd, (struct sockaddr *)&a, &alen) == 0) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", portfile);
        FILE *f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%u\n", (unsigned)ntohs(a.sin_port)) < 0 || fclose(f) != 0 ||
            rename(tmp, portfile) != 0) {
            fprintf(stderr, "osp-healthserver: cannot write %s\n", portfile);
            return 1;
        }
    }
    if (pidfile != NULL) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", pidfile);
        FILE *f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 ||
            rename(tmp, pidfile) != 0) {
            fprintf(stderr, "osp-healthserver: cannot write %s\n", pidfile);
            return 1;
        }
    }
    static struct hs_conn conns[HS_MAX];
    struct pollfd pfd[HS_MAX + 1];
    size_t nc = 0;
    while (!hs_stop) {
        pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (size_t i = 0; i < nc; i++) {
            pfd[i + 1] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
        }
        if (poll(pfd, nc + 1, 200) < 0) {
            continue;
        }
        for (size_t i = nc; i-- > 0;) {
            if (pfd[i + 1].revents == 0) {
                continue;
            }
            struct hs_conn *c = &conns[i];
            ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
            bool done = n <= 0;
            if (n > 0) {
                c->len += (size_t)n;
                c->buf[c->len] = '\0';
                if (strstr(c->buf, "\r\n\r\n") != NULL || c->len == sizeof(c->buf) - 1) {
                    hs_answer(c, delay_ms);
                    done = true;
                }
            }
            if (done) {
                close(c->fd);
                conns[i] = conns[--nc];
            }
        }
        if ((pfd[0].revents & POLLIN) && nc < HS_MAX) {
            int fd = accept(lfd, NULL, NULL);
            if (fd >= 0) {
                conns[nc].fd = fd;
                conns[nc].len = 0;
                nc++;
            }
        }
    }
    return 0;
}
