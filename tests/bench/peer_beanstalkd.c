/* SPDX-License-Identifier: MIT */
/* peer_beanstalkd.c — the peer a user would otherwise build: beanstalkd as the queue and
 * PostgreSQL as the record, one row per job, one commit per job (what beanstalkd users do
 * with a results table). Used by tests/bench/bench_peers.sh against opspool's own drain on the
 * same PostgreSQL.
 *
 *   osp-peer-beanstalkd put HOST PORT N
 *       puts N jobs on tube "noop"; job i's body is its row id i (1..N)
 *   osp-peer-beanstalkd work HOST PORT DSN
 *       reserve (1 s timeout) -> UPDATE peer_jobs SET state = 'succeeded', attempt = 1,
 *       started_at = now(), finished_at = now() WHERE id = $1 (a prepared statement,
 *       autocommit: one commit per job) -> delete; exits 0 when a reserve times out (the
 *       tube is empty), printing the number of jobs it ran. Any protocol or SQL error: exit 1.
 *
 * The beanstalkd protocol (protocol.txt in its source) is plain text over TCP: "put <pri>
 * <delay> <ttr> <bytes>\r\n<body>\r\n" -> "INSERTED <id>\r\n"; "reserve-with-timeout <s>\r\n"
 * -> "RESERVED <id> <bytes>\r\n<body>\r\n" or "TIMED_OUT\r\n"; "delete <id>\r\n" ->
 * "DELETED\r\n". Blocking sockets, no pipelining on the worker side (as client libraries do);
 * puts are pipelined in chunks so preloading is not what the bench measures. */
#define _GNU_SOURCE /* memmem */
#include <libpq-fe.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char rbuf[65536];
static size_t rlen;

static int bs_connect(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int bs_write(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One "\r\n"-terminated line into out (without the terminator); -1 on EOF or error. */
static int bs_line(int fd, char *out, size_t cap)
{
    for (;;) {
        char *e = memmem(rbuf, rlen, "\r\n", 2);
        if (e != NULL) {
            size_t n = (size_t)(e - rbuf);
            if (n + 1 > cap) {
                return -1;
            }
            memcpy(out, rbuf, n);
            out[n] = '\0';
            memmove(rbuf, e + 2, rlen - n - 2);
            rlen -= n + 2;
            return 0;
        }
        if (rlen == sizeof(rbuf)) {
            return -1;
        }
        ssize_t r = read(fd, rbuf + rlen, sizeof(rbuf) - rlen);
        if (r <= 0) {
            return -1;
        }
        rlen += (size_t)r;
    }
}

static int cmd_put(const char *host, const char *port, long n)
{
    int fd = bs_connect(host, port);
    char line[256], out[1 << 16];
    if (fd < 0 || bs_write(fd, "use noop\r\n", 10) != 0 || bs_line(fd, line, sizeof(line)) != 0 ||
        strncmp(line, "USING", 5) != 0) {
        fprintf(stderr, "put: cannot use tube noop\n");
        return 1;
    }
    for (long i = 1; i <= n;) {
        size_t len = 0;
        long first = i;
        while (i <= n && len + 64 < sizeof(out)) {
            char body[24];
            int bl = snprintf(body, sizeof(body), "%ld", i);
            len +=
                (size_t)snprintf(out + len, sizeof(out) - len, "put 0 0 60 %d\r\n%s\r\n", bl, body);
            i++;
        }
        if (bs_write(fd, out, len) != 0) {
            return 1;
        }
        for (long k = first; k < i; k++) {
            if (bs_line(fd, line, sizeof(line)) != 0 || strncmp(line, "INSERTED", 8) != 0) {
                fprintf(stderr, "put: %s\n", line);
                return 1;
            }
        }
    }
    close(fd);
    return 0;
}

static int cmd_work(const char *host, const char *port, const char *dsn)
{
    PGconn *pg = PQconnectdb(dsn);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "work: %s", PQerrorMessage(pg));
        return 1;
    }
    PGresult *res = PQprepare(pg, "done",
                              "UPDATE peer_jobs SET state = 'succeeded', attempt = 1, "
                              "started_at = now(), finished_at = now() WHERE id = $1",
                              1, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "work: prepare: %s", PQerrorMessage(pg));
        return 1;
    }
    PQclear(res);
    int fd = bs_connect(host, port);
    char line[256], body[64], cmd[64];
    if (fd < 0 || bs_write(fd, "watch noop\r\n", 12) != 0 || bs_line(fd, line, sizeof(line)) != 0) {
        fprintf(stderr, "work: cannot watch noop\n");
        return 1;
    }
    long done = 0;
    for (;;) {
        if (bs_write(fd, "reserve-with-timeout 1\r\n", 24) != 0 ||
            bs_line(fd, line, sizeof(line)) != 0) {
            return 1;
        }
        if (strcmp(line, "TIMED_OUT") == 0) {
            break;
        }
        unsigned long long id;
        unsigned bytes;
        if (sscanf(line, "RESERVED %llu %u", &id, &bytes) != 2 ||
            bs_line(fd, body, sizeof(body)) != 0) {
            fprintf(stderr, "work: %s\n", line);
            return 1;
        }
        const char *params[1] = {body};
        res = PQexecPrepared(pg, "done", 1, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdTuples(res), "1") != 0) {
            fprintf(stderr, "work: update %s: %s", body, PQerrorMessage(pg));
            return 1;
        }
        PQclear(res);
        int cl = snprintf(cmd, sizeof(cmd), "delete %llu\r\n", id);
        if (bs_write(fd, cmd, (size_t)cl) != 0 || bs_line(fd, line, sizeof(line)) != 0 ||
            strcmp(line, "DELETED") != 0) {
            return 1;
        }
        done++;
    }
    printf("%ld\n", done);
    PQfinish(pg);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "put") == 0) {
        return cmd_put(argv[2], argv[3], atol(argv[4]));
    }
    if (argc == 5 && strcmp(argv[1], "work") == 0) {
        return cmd_work(argv[2], argv[3], argv[4]);
    }
    fprintf(stderr, "usage: osp-peer-beanstalkd put HOST PORT N | work HOST PORT DSN\n");
    return 2;
}
