/* SPDX-License-Identifier: MIT */
/* redis.c — Redis URLs, synchronous connect, and the self-healing async connection.
 *
 * Lifetime rules of hiredis 0.14 async that shape this file:
 *  - after onConnect(ac, REDIS_ERR) hiredis frees ac itself; onDisconnect is not called;
 *  - on a lost connection every pending callback runs with a NULL reply, then onDisconnect
 *    runs (only if the context had been connected), then hiredis frees ac;
 *  - redisAsyncFree inside a *reply* callback is deferred by hiredis until that callback
 *    returns; anywhere else inside hiredis (connect/disconnect callbacks) it is unsafe.
 * So the context is never freed from inside its own callbacks: the teardown inside a reply
 * callback is left to hiredis, and struct osp_redis itself is released only when no
 * callback of ours is on the stack (in_cb == 0) and hiredis no longer holds the context.
 * Contract: common/redis.h. */
#include "common/redis.h"
#include "common/alloc.h"
#include "common/base.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/async.h>

/* The adapter is header-only with static functions we do not all use. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wcast-qual"
#include <hiredis/adapters/libev.h>
#pragma GCC diagnostic pop

#define REDIS_BACKOFF_MIN_MS  100
#define REDIS_BACKOFF_MAX_MS  5000
#define REDIS_CONNECT_TIMEOUT 5.0 /* seconds for TCP connect plus handshake */
#define SENTINEL_PORT         26379
#define SENTINEL_MAX          16
#define SENTINEL_ANSWER_S     2.0  /* a sentinel that names no master by then: ask the next */
#define SENTINEL_SYNC_MAX_MS  1000 /* per sentinel, synchronous clients */
#define SENTINEL_SLICE_MS     500  /* synchronous clients: ask between slices of a wait */

/* ---- URLs ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Percent-decode s[0..n) into a fresh string; NULL when an escape is malformed or would
 * produce a NUL byte (credentials are C strings). */
static char *pct_decode(const char *s, size_t n)
{
    char *out = osp_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

static int parse_int(const char *s, size_t n, int lo, int hi, int *out)
{
    if (n == 0 || n > 9) {
        return -1;
    }
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static int url_unix(const char *rest, struct osp_redis_url *u, struct osp_err *err)
{
    const char *q = strchr(rest, '?');
    size_t plen = q != NULL ? (size_t)(q - rest) : strlen(rest);
    if (plen == 0 || rest[0] != '/') {
        return osp_err_set(err, OSP_EINVAL, "redis url: unix:// needs an absolute socket path");
    }
    if (q != NULL) {
        if (strncmp(q, "?db=", 4) != 0 || parse_int(q + 4, strlen(q + 4), 0, 1 << 20, &u->db)) {
            return osp_err_set(err, OSP_EINVAL, "redis url: the only unix:// option is ?db=N");
        }
    }
    u->path = osp_xstrndup(rest, plen);
    return 0;
}

static int url_tcp(const char *rest, struct osp_redis_url *u, struct osp_err *err)
{
    const char *slash = strchr(rest, '/');
    size_t alen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    /* The last '@' ends the userinfo: a password may itself contain '@' when not encoded. */
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++) {
        if (rest[i] == '@') {
            at = rest + i;
        }
    }
    const char *host = rest;
    if (at != NULL) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon == NULL) {
            /* redis://secret@host: a lone userinfo is a password (redis-cli does the same). */
            u->password = pct_decode(rest, (size_t)(at - rest));
        } else {
            if (colon > rest) {
                u->username = pct_decode(rest, (size_t)(colon - rest));
                if (u->username == NULL) {
                    return osp_err_set(err, OSP_EINVAL, "redis url: bad %%-escape in user");
                }
            }
            u->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
        }
        if (u->password == NULL) {
            return osp_err_set(err, OSP_EINVAL, "redis url: bad %%-escape in password");
        }
        if (u->password[0] == '\0') {
            free(u->password);
            u->password = NULL;
        }
        host = at + 1;
    }
    const char *hend = rest + alen;
    const char *portp = NULL;
    if (host < hend && host[0] == '[') {
        const char *rb = memchr(host, ']', (size_t)(hend - host));
        if (rb == NULL || rb == host + 1) {
            return osp_err_set(err, OSP_EINVAL, "redis url: bad [IPv6] host");
        }
        u->host = osp_xstrndup(host + 1, (size_t)(rb - host - 1));
        if (rb + 1 < hend) {
            if (rb[1] != ':') {
                return osp_err_set(err, OSP_EINVAL, "redis url: junk after [IPv6] host");
            }
            portp = rb + 2;
        }
    } else {
        if (hend < host) {
            return osp_err_set(err, OSP_EINVAL, "redis url: missing host");
        }
        const char *colon = memchr(host, ':', (size_t)(hend - host));
        const char *e = colon != NULL ? colon : hend;
        if (e == host) {
            return osp_err_set(err, OSP_EINVAL, "redis url: missing host");
        }
        u->host = osp_xstrndup(host, (size_t)(e - host));
        if (colon != NULL) {
            portp = colon + 1;
        }
    }
    u->port = 6379;
    if (portp != NULL && parse_int(portp, (size_t)(hend - portp), 1, 65535, &u->port) != 0) {
        return osp_err_set(err, OSP_EINVAL, "redis url: bad port");
    }
    if (slash != NULL && slash[1] != '\0' &&
        parse_int(slash + 1, strlen(slash + 1), 0, 1 << 20, &u->db) != 0) {
        return osp_err_set(err, OSP_EINVAL, "redis url: the path must be a database number");
    }
    return 0;
}

int osp_redis_url_parse(const char *s, struct osp_redis_url *u, struct osp_err *err)
{
    int rc;
    memset(u, 0, sizeof(*u));
    if (s == NULL || s[0] == '\0') {
        rc = osp_err_set(err, OSP_EINVAL, "redis url: empty");
    } else if (strncmp(s, "unix://", 7) == 0) {
        rc = url_unix(s + 7, u, err);
    } else if (strncmp(s, "redis://", 8) == 0) {
        rc = url_tcp(s + 8, u, err);
    } else if (strncmp(s, "rediss://", 9) == 0) {
        rc = osp_err_set(err, OSP_EINVAL, "redis url: TLS (rediss://) is not supported");
    } else {
        rc = osp_err_set(err, OSP_EINVAL, "redis url: expected redis:// or unix://");
    }
    if (rc != 0) {
        osp_redis_url_deinit(u);
    }
    return rc;
}

void osp_redis_url_set_auth(struct osp_redis_url *u, const char *username, const char *password)
{
    if (username != NULL && username[0] != '\0') {
        free(u->username);
        u->username = osp_xstrdup(username);
    }
    if (password != NULL && password[0] != '\0') {
        free(u->password);
        u->password = osp_xstrdup(password);
    }
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? osp_xstrdup(s) : NULL;
}

static char *dup_or_null_nonempty(const char *s)
{
    return s != NULL && s[0] != '\0' ? osp_xstrdup(s) : NULL;
}

/* One "host[:port]" or "[v6][:port]" of a sentinel list, s[0..n) already trimmed. */
static int parse_hostport(const char *s, size_t n, struct osp_redis_hostport *hp)
{
    const char *end = s + n;
    const char *portp = NULL;
    size_t hlen;
    const char *h = s;
    if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (rb == NULL || rb == s + 1 || (rb + 1 < end && rb[1] != ':')) {
            return -1;
        }
        h = s + 1;
        hlen = (size_t)(rb - h);
        portp = rb + 1 < end ? rb + 2 : NULL;
    } else {
        const char *colon = memchr(s, ':', n);
        hlen = colon != NULL ? (size_t)(colon - s) : n;
        portp = colon != NULL ? colon + 1 : NULL;
    }
    if (hlen == 0) {
        return -1;
    }
    for (size_t i = 0; i < hlen; i++) {
        if (isspace((unsigned char)h[i]) || h[i] == '/' || h[i] == '@') {
            return -1;
        }
    }
    hp->port = SENTINEL_PORT;
    if (portp != NULL && parse_int(portp, (size_t)(end - portp), 1, 65535, &hp->port) != 0) {
        return -1;
    }
    hp->host = osp_xstrndup(h, hlen);
    return 0;
}

static void hostports_free(struct osp_redis_hostport *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].host);
    }
    free(v);
}

static void free_secret(char *p)
{
    if (p != NULL) {
        /* Best effort: do not leave the secret in freed heap memory. */
        volatile char *q = p;
        while (*q != '\0') {
            *q++ = '\0';
        }
        free(p);
    }
}

int osp_redis_url_set_sentinels(struct osp_redis_url *u, const char *list, const char *master,
                                const char *username, const char *password, struct osp_err *err)
{
    if (list == NULL || list[0] == '\0') {
        return 0;
    }
    if (u->path != NULL) {
        return osp_err_set(err, OSP_EINVAL,
                           "redis sentinels: a unix:// Redis URL cannot be combined with "
                           "sentinels (the sentinels name the master's host and port)");
    }
    if (master == NULL || master[0] == '\0') {
        return osp_err_set(err, OSP_EINVAL, "redis sentinels: the master name is empty");
    }
    struct osp_redis_hostport *v = osp_xcalloc(SENTINEL_MAX, sizeof(*v));
    size_t n = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *e = comma != NULL ? comma : p + strlen(p);
        const char *b = p;
        while (b < e && isspace((unsigned char)*b)) {
            b++;
        }
        const char *t = e;
        while (t > b && isspace((unsigned char)t[-1])) {
            t--;
        }
        if (n == SENTINEL_MAX) {
            hostports_free(v, n);
            return osp_err_set(err, OSP_EINVAL, "redis sentinels: more than %d entries",
                               SENTINEL_MAX);
        }
        if (parse_hostport(b, (size_t)(t - b), &v[n]) != 0) {
            hostports_free(v, n);
            return osp_err_set(err, OSP_EINVAL,
                               "redis sentinels: entry %zu \"%.*s\" is not host[:port] or "
                               "[ipv6][:port]",
                               n + 1, (int)((t - b) > 64 ? 64 : (t - b)), b);
        }
        n++;
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    hostports_free(u->sentinels, u->n_sentinels);
    free(u->master_name);
    free(u->sentinel_username);
    free_secret(u->sentinel_password);
    u->sentinels = v;
    u->n_sentinels = n;
    u->master_name = osp_xstrdup(master);
    u->sentinel_username = dup_or_null_nonempty(username);
    u->sentinel_password = dup_or_null_nonempty(password);
    return 0;
}

void osp_redis_url_copy(struct osp_redis_url *dst, const struct osp_redis_url *src)
{
    dst->host = dup_or_null(src->host);
    dst->port = src->port;
    dst->path = dup_or_null(src->path);
    dst->db = src->db;
    dst->username = dup_or_null(src->username);
    dst->password = dup_or_null(src->password);
    dst->sentinels = NULL;
    dst->n_sentinels = src->n_sentinels;
    if (src->n_sentinels > 0) {
        dst->sentinels = osp_xcalloc(src->n_sentinels, sizeof(*dst->sentinels));
        for (size_t i = 0; i < src->n_sentinels; i++) {
            dst->sentinels[i].host = osp_xstrdup(src->sentinels[i].host);
            dst->sentinels[i].port = src->sentinels[i].port;
        }
    }
    dst->master_name = dup_or_null(src->master_name);
    dst->sentinel_username = dup_or_null(src->sentinel_username);
    dst->sentinel_password = dup_or_null(src->sentinel_password);
}

void osp_redis_url_deinit(struct osp_redis_url *u)
{
    free(u->host);
    free(u->path);
    free(u->username);
    free_secret(u->password);
    hostports_free(u->sentinels, u->n_sentinels);
    free(u->master_name);
    free(u->sentinel_username);
    free_secret(u->sentinel_password);
    memset(u, 0, sizeof(*u));
}

/* Handshake commands: AUTH [user] pass, then SELECT db, as argv arrays. n is set to 0 when
 * the command is not needed. */
static void auth_argv(const char *username, const char *password, const char *argv[3], int *n)
{
    *n = 0;
    if (password == NULL) {
        return;
    }
    argv[(*n)++] = "AUTH";
    if (username != NULL) {
        argv[(*n)++] = username;
    }
    argv[(*n)++] = password;
}

static const char *where(const struct osp_redis_url *u, char *buf, size_t cap)
{
    if (u->path != NULL) {
        snprintf(buf, cap, "%s", u->path);
    } else if (u->host == NULL) {
        snprintf(buf, cap, "master '%s', not known yet", u->master_name);
    } else {
        snprintf(buf, cap, "%s:%d", u->host, u->port);
    }
    return buf;
}

/* The reply to SENTINEL get-master-addr-by-name: 0 with *host (owned) and *port, 1 when the
 * sentinel knows no such master (nil), -1 for anything else. */
static int master_addr_reply(const redisReply *rep, char **host, int *port)
{
    if (rep->type == REDIS_REPLY_NIL) {
        return 1;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_STRING || rep->element[0]->len == 0 ||
        rep->element[0]->len > 255 ||
        parse_int(rep->element[1]->str, rep->element[1]->len, 1, 65535, port) != 0) {
        return -1;
    }
    *host = osp_xstrndup(rep->element[0]->str, rep->element[0]->len);
    return 0;
}

/* The reply to ROLE: true for a master. *role names what it is otherwise. */
static bool role_is_master(const redisReply *rep, char *role, size_t cap)
{
    snprintf(role, cap, "?");
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        if (rep->type == REDIS_REPLY_ERROR) {
            snprintf(role, cap, "error: %.*s", (int)rep->len > 80 ? 80 : (int)rep->len, rep->str);
        }
        return false;
    }
    snprintf(role, cap, "%.*s", (int)rep->element[0]->len > 40 ? 40 : (int)rep->element[0]->len,
             rep->element[0]->str);
    return strcmp(role, "master") == 0;
}

/* ---- Synchronous connect ---- */

static int sync_check(redisContext *c, redisReply *rep, const char *what, struct osp_err *err)
{
    if (rep == NULL) {
        return osp_err_set(err, OSP_EREDIS, "redis %s: %s", what, c->errstr);
    }
    int rc = 0;
    if (rep->type == REDIS_REPLY_ERROR) {
        rc = osp_err_set(err, OSP_EREDIS, "redis %s: %.*s", what, (int)rep->len, rep->str);
    }
    freeReplyObject(rep);
    return rc;
}

static redisContext *connect_direct(const struct osp_redis_url *u, int timeout_ms,
                                    struct osp_err *err)
{
    char wb[256];
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *c = u->path != NULL ? redisConnectUnixWithTimeout(u->path, tv)
                                      : redisConnectWithTimeout(u->host, u->port, tv);
    if (c == NULL) {
        osp_err_set(err, OSP_EREDIS, "redis connect %s: out of memory", where(u, wb, sizeof(wb)));
        goto fail;
    }
    if (c->err != 0) {
        osp_err_set(err, OSP_EREDIS, "redis connect %s: %s", where(u, wb, sizeof(wb)), c->errstr);
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        osp_err_set(err, OSP_EREDIS, "redis connect %s: cannot set timeout",
                    where(u, wb, sizeof(wb)));
        goto fail;
    }
    const char *argv[3];
    int n;
    auth_argv(u->username, u->password, argv, &n);
    if (n > 0 && sync_check(c, redisCommandArgv(c, n, argv, NULL), "AUTH", err) != 0) {
        goto fail;
    }
    if (u->db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", u->db);
        const char *sel[2] = {"SELECT", db};
        if (sync_check(c, redisCommandArgv(c, 2, sel, NULL), "SELECT", err) != 0) {
            goto fail;
        }
    }
    return c;
fail:
    if (c != NULL) {
        redisFree(c);
    }
    return NULL;
}

/* Ask sentinel i of u where the master is. */
static int sync_ask_sentinel(const struct osp_redis_url *u, size_t i, int timeout_ms, char **host,
                             int *port, struct osp_err *err)
{
    const struct osp_redis_hostport *hp = &u->sentinels[i];
    /* Connected without credentials: the AUTH is sent here, so that a refusal names the
     * sentinel and the settings that hold its credentials. */
    struct osp_redis_url su = {.host = hp->host, .port = hp->port};
    redisContext *c = connect_direct(&su, timeout_ms, err);
    if (c == NULL) {
        return OSP_EREDIS;
    }
    const char *auth[3];
    int n;
    auth_argv(u->sentinel_username, u->sentinel_password, auth, &n);
    redisReply *rep = n > 0 ? redisCommandArgv(c, n, auth, NULL) : NULL;
    if (n > 0 && (rep == NULL || rep->type == REDIS_REPLY_ERROR)) {
        int rc =
            osp_err_set(err, OSP_EREDIS,
                        "redis sentinel %s:%d: authentication failed "
                        "(OSP_REDIS_SENTINEL_USERNAME/OSP_REDIS_SENTINEL_PASSWORD): %.*s",
                        hp->host, hp->port, rep != NULL ? (int)rep->len : (int)strlen(c->errstr),
                        rep != NULL ? rep->str : c->errstr);
        if (rep != NULL) {
            freeReplyObject(rep);
        }
        redisFree(c);
        return rc;
    }
    if (rep != NULL) {
        freeReplyObject(rep);
    }
    const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", u->master_name};
    rep = redisCommandArgv(c, 3, argv, NULL);
    int rc = 0;
    if (rep == NULL) {
        rc =
            osp_err_set(err, OSP_EREDIS, "redis sentinel %s:%d: %s", hp->host, hp->port, c->errstr);
    } else if (rep->type == REDIS_REPLY_ERROR) {
        bool noauth = rep->len >= 6 && strncmp(rep->str, "NOAUTH", 6) == 0;
        rc = osp_err_set(err, OSP_EREDIS, "redis sentinel %s:%d: %.*s%s", hp->host, hp->port,
                         (int)rep->len > 160 ? 160 : (int)rep->len, rep->str,
                         noauth ? " (the sentinel requires OSP_REDIS_SENTINEL_PASSWORD)" : "");
    } else {
        int r = master_addr_reply(rep, host, port);
        if (r > 0) {
            rc = osp_err_set(err, OSP_EREDIS, "redis sentinel %s:%d knows no master named '%s'",
                             hp->host, hp->port, u->master_name);
        } else if (r < 0) {
            rc = osp_err_set(err, OSP_EREDIS,
                             "redis sentinel %s:%d: unexpected reply to "
                             "SENTINEL get-master-addr-by-name",
                             hp->host, hp->port);
        }
    }
    if (rep != NULL) {
        freeReplyObject(rep);
    }
    redisFree(c);
    return rc;
}

bool osp_redis_sentinel_moved(const struct osp_redis_url *u, int timeout_ms)
{
    int per = timeout_ms < SENTINEL_SYNC_MAX_MS ? timeout_ms : SENTINEL_SYNC_MAX_MS;
    for (size_t i = 0; i < u->n_sentinels; i++) {
        char *host = NULL;
        int port = 0;
        if (sync_ask_sentinel(u, i, per, &host, &port, NULL) != 0) {
            continue;
        }
        bool moved = u->host == NULL || strcmp(host, u->host) != 0 || port != u->port;
        free(host);
        return moved;
    }
    return false;
}

static void sync_fail(redisContext *c, const char *fmt, ...) OSP_PRINTF(2, 3);
static void sync_fail(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    c->err = REDIS_ERR_OTHER;
    vsnprintf(c->errstr, sizeof(c->errstr), fmt, ap);
    va_end(ap);
}

redisReply *osp_redis_sync_command(redisContext *c, const struct osp_redis_url *u, int argc,
                                   const char **argv, const size_t *lens, int timeout_ms)
{
    if (u->n_sentinels == 0) {
        return redisCommandArgv(c, argc, argv, lens);
    }
    if (redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK) {
        return NULL;
    }
    int done = 0;
    while (!done) {
        if (redisBufferWrite(c, &done) != REDIS_OK) {
            return NULL;
        }
    }
    int64_t deadline = osp_mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(c, &reply) != REDIS_OK) {
            return NULL;
        }
        if (reply != NULL) {
            return reply;
        }
        int64_t left_ms = (deadline - osp_mono_ns()) / 1000000;
        if (left_ms <= 0) {
            sync_fail(c, "no reply within %d ms", timeout_ms);
            return NULL;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)(left_ms < SENTINEL_SLICE_MS ? left_ms : SENTINEL_SLICE_MS));
        if (n < 0 && errno != EINTR) {
            sync_fail(c, "poll: %s", strerror(errno));
            return NULL;
        }
        if (n > 0) {
            if (redisBufferRead(c) != REDIS_OK) {
                return NULL;
            }
            continue;
        }
        if (n == 0 && osp_redis_sentinel_moved(u, SENTINEL_SYNC_MAX_MS)) {
            sync_fail(c, "master '%s' moved while waiting for a reply from %s:%d", u->master_name,
                      u->host, u->port);
            return NULL;
        }
    }
}

redisContext *osp_redis_connect_sync(struct osp_redis_url *u, int timeout_ms, struct osp_err *err)
{
    if (u->n_sentinels == 0) {
        return connect_direct(u, timeout_ms, err);
    }
    int per = timeout_ms < SENTINEL_SYNC_MAX_MS ? timeout_ms : SENTINEL_SYNC_MAX_MS;
    for (size_t i = 0; i < u->n_sentinels; i++) {
        char *host = NULL;
        int port = 0;
        if (sync_ask_sentinel(u, i, per, &host, &port, err) != 0) {
            continue;
        }
        free(u->host);
        u->host = host;
        u->port = port;
        redisContext *c = connect_direct(u, timeout_ms, err);
        if (c == NULL) {
            continue;
        }
        const char *role_argv[1] = {"ROLE"};
        redisReply *rep = redisCommandArgv(c, 1, role_argv, NULL);
        char role[128];
        if (rep != NULL && role_is_master(rep, role, sizeof(role))) {
            freeReplyObject(rep);
            return c;
        }
        osp_err_set(err, OSP_EREDIS,
                    "redis %s:%d, named master '%s' by sentinel %s:%d, is not a master (role "
                    "%s)",
                    u->host, u->port, u->master_name, u->sentinels[i].host, u->sentinels[i].port,
                    rep != NULL ? role : c->errstr);
        if (rep != NULL) {
            freeReplyObject(rep);
        }
        redisFree(c);
    }
    /* err holds the last sentinel's reason; say how many were tried. */
    char last[200];
    snprintf(last, sizeof(last), "%s", err != NULL ? err->msg : "");
    osp_err_set(err, OSP_EREDIS, "no usable master '%s' from %zu sentinel(s); last: %s",
                u->master_name, u->n_sentinels, last);
    return NULL;
}

/* ---- Asynchronous connection ---- */

enum redis_state {
    REDIS_ST_IDLE,       /* no context; a reconnect timer may be pending */
    REDIS_ST_CONNECTING, /* context exists, TCP/unix connect in progress */
    REDIS_ST_HANDSHAKE,  /* connected, AUTH/SELECT/PING replies pending */
    REDIS_ST_UP,         /* usable */
    REDIS_ST_CLOSING,    /* redisAsyncDisconnect requested; waiting for onDisconnect */
};

struct osp_redis {
    struct ev_loop *loop;
    struct osp_redis_url url; /* owned copy */
    char *name;               /* label for error messages */
    osp_redis_state_cb *state_cb;
    void *state_arg;
    redisAsyncContext *ac; /* NULL when hiredis holds no context for us */
    enum redis_state state;
    ev_timer retry;        /* reconnect after the backoff delay */
    ev_timer deadline;     /* bounds one connect + handshake */
    int backoff_ms;        /* delay before the next reconnect, before jitter */
    uint64_t rng;          /* xorshift state for jitter */
    int handshake_left;    /* handshake replies still expected */
    bool handshake_failed; /* a handshake command returned an error */
    int in_cb;             /* our callbacks currently on the stack */
    bool freeing;          /* osp_redis_free was called */
    uint64_t errors;
    char last_err[256];
    char endpoint[256];
    /* Sentinel mode (url.n_sentinels > 0): url.host/port hold the master's last address. */
    struct osp_redis *sent; /* plain connection to url.sentinels[sent_idx] */
    size_t sent_idx;
    ev_timer sent_timer; /* that sentinel named no master in time: ask the next one */
    bool addr_fresh;     /* url.host/port were just learnt: connect there without asking */
    uint64_t master_changes;
};

struct redis_pending {
    struct osp_redis *r;
    osp_redis_reply_cb *cb;
    void *arg;
    bool sub; /* a subscription: called for every message */
};

static void redis_connect(struct osp_redis *r);
static void sentinel_open(struct osp_redis *r);

static void set_err(struct osp_redis *r, const char *fmt, ...) OSP_PRINTF(2, 3);
static void set_err(struct osp_redis *r, const char *fmt, ...)
{
    char wb[200];
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(r->last_err, sizeof(r->last_err), "redis %.16s (%.60s): %.160s", r->name,
             where(&r->url, wb, sizeof(wb)), msg);
}

/* Release r once nothing of hiredis or of ours refers to it any more. */
static void redis_maybe_release(struct osp_redis *r)
{
    if (!r->freeing || r->in_cb > 0 || r->ac != NULL) {
        return;
    }
    OSP_ASSERT(r->sent == NULL);
    osp_redis_url_deinit(&r->url);
    free(r->name);
    free(r);
}

static uint64_t redis_rand(struct osp_redis *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng;
}

/* Schedule the next attempt: "equal jitter" over the current backoff, then double it. */
static void redis_schedule_retry(struct osp_redis *r)
{
    if (r->freeing) {
        return;
    }
    int half = r->backoff_ms / 2;
    int delay = half + (int)(redis_rand(r) % (uint64_t)(half + 1));
    r->backoff_ms =
        r->backoff_ms * 2 > REDIS_BACKOFF_MAX_MS ? REDIS_BACKOFF_MAX_MS : r->backoff_ms * 2;
    ev_timer_stop(r->loop, &r->retry);
    ev_timer_set(&r->retry, (double)delay / 1000.0, 0.0);
    ev_timer_start(r->loop, &r->retry);
}

/* Reconnect on the next loop iteration (an address worth trying at once). */
static void redis_retry_now(struct osp_redis *r)
{
    if (r->freeing) {
        return;
    }
    ev_timer_stop(r->loop, &r->retry);
    ev_timer_set(&r->retry, 0.0, 0.0);
    ev_timer_start(r->loop, &r->retry);
}

static void redis_on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    OSP_UNUSED(loop);
    OSP_UNUSED(revents);
    struct osp_redis *r = osp_container_of(w, struct osp_redis, retry);
    redis_connect(r);
}

static void redis_disconnect(struct osp_redis *r);

/* A command's callback runs once; a subscription's (p->sub) for every message, then one last
 * time with a NULL reply when the connection goes away, and only then is it released. */
static void redis_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    OSP_UNUSED(ac);
    struct redis_pending *p = priv;
    struct osp_redis *r = p->r;
    bool sub = p->sub;
    r->in_cb++;
    p->cb(r, reply, p->arg);
    r->in_cb--;
    if (!sub || reply == NULL) {
        free(p);
    }
    const redisReply *rep = reply;
    if (!sub && rep != NULL && rep->type == REDIS_REPLY_ERROR && r->url.n_sentinels > 0 &&
        !r->freeing && r->state == REDIS_ST_UP && strstr(rep->str, "READONLY") != NULL) {
        /* The master we were given has been demoted: never write to it again. The reconnect
         * asks the sentinels. */
        set_err(r, "the server is no longer a master (READONLY): asking the sentinels");
        r->errors++;
        redis_disconnect(r);
    }
    redis_maybe_release(r);
}

static int redis_send(struct osp_redis *r, int argc, const char **argv, const size_t *lens,
                      osp_redis_reply_cb *cb, void *arg)
{
    struct redis_pending *p = osp_xmalloc(sizeof(*p));
    p->r = r;
    p->cb = cb;
    p->arg = arg;
    p->sub = false;
    if (redisAsyncCommandArgv(r->ac, redis_on_reply, p, argc, argv, lens) != REDIS_OK) {
        free(p);
        return OSP_EREDIS;
    }
    return 0;
}

/* SUBSCRIBE to one channel; cb runs for the confirmation, each message, and a last time with
 * NULL when the connection goes away. */
static int redis_subscribe(struct osp_redis *r, const char *channel, osp_redis_reply_cb *cb,
                           void *arg)
{
    if (!osp_redis_is_up(r)) {
        return OSP_EREDIS;
    }
    struct redis_pending *p = osp_xmalloc(sizeof(*p));
    p->r = r;
    p->cb = cb;
    p->arg = arg;
    p->sub = true;
    const char *argv[2] = {"SUBSCRIBE", channel};
    if (redisAsyncCommandArgv(r->ac, redis_on_reply, p, 2, argv, NULL) != REDIS_OK) {
        free(p);
        return OSP_EREDIS;
    }
    return 0;
}

/* Ask hiredis to close the connection; onDisconnect finishes the job and schedules the
 * reconnect. Safe inside reply callbacks (hiredis defers it until pending replies are in). */
static void redis_disconnect(struct osp_redis *r)
{
    if (r->ac != NULL && (r->state == REDIS_ST_HANDSHAKE || r->state == REDIS_ST_UP)) {
        r->state = REDIS_ST_CLOSING;
        redisAsyncDisconnect(r->ac);
    }
}

static void redis_on_handshake(struct osp_redis *r, redisReply *reply, void *arg)
{
    const char *what = arg;
    if (reply == NULL || r->state != REDIS_ST_HANDSHAKE) {
        return; /* the connection is going away; onDisconnect handles the rest */
    }
    char role[128];
    if (reply->type == REDIS_REPLY_ERROR) {
        set_err(r, "%s: %.*s", what, (int)reply->len, reply->str);
        r->handshake_failed = true;
    } else if (strcmp(what, "ROLE") == 0 && !role_is_master(reply, role, sizeof(role))) {
        /* A stale answer (the sentinel has not seen the failover yet, or was cut off from
         * the others): never use a replica. Ask the next sentinel. */
        set_err(r, "named master '%s' by sentinel %s:%d but its role is %s", r->url.master_name,
                r->url.sentinels[r->sent_idx].host, r->url.sentinels[r->sent_idx].port, role);
        r->sent_idx = (r->sent_idx + 1) % r->url.n_sentinels;
        r->handshake_failed = true;
    }
    if (--r->handshake_left > 0) {
        return;
    }
    ev_timer_stop(r->loop, &r->deadline);
    if (r->handshake_failed) {
        r->errors++;
        redis_disconnect(r);
        return;
    }
    r->state = REDIS_ST_UP;
    r->backoff_ms = REDIS_BACKOFF_MIN_MS;
    r->last_err[0] = '\0';
    char wb[200];
    if (r->url.n_sentinels > 0) {
        const struct osp_redis_hostport *hp = &r->url.sentinels[r->sent_idx];
        snprintf(r->endpoint, sizeof(r->endpoint), "%.100s (master '%.60s' via sentinel %.60s:%d)",
                 where(&r->url, wb, sizeof(wb)), r->url.master_name, hp->host, hp->port);
    } else {
        snprintf(r->endpoint, sizeof(r->endpoint), "%s", where(&r->url, wb, sizeof(wb)));
    }
    if (r->state_cb != NULL) {
        r->state_cb(r, true, r->state_arg);
    }
}

static void redis_on_connect(const redisAsyncContext *ac, int status)
{
    struct osp_redis *r = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees the context as soon as we return. */
        set_err(r, "connect: %s", ac->errstr);
        r->errors++;
        r->ac = NULL;
        r->state = REDIS_ST_IDLE;
        ev_timer_stop(r->loop, &r->deadline);
        redis_schedule_retry(r);
        return;
    }
    if (r->url.path == NULL) {
        /* Detect a peer that vanished without a reset (partition, dead host) on TCP. */
        redisEnableKeepAlive(&r->ac->c);
    }
    r->state = REDIS_ST_HANDSHAKE;
    r->handshake_failed = false;
    r->handshake_left = 0;
    const char *argv[3];
    int n;
    auth_argv(r->url.username, r->url.password, argv, &n);
    if (n > 0 &&
        redis_send(r, n, argv, NULL, redis_on_handshake, (void *)(uintptr_t) "AUTH") == 0) {
        r->handshake_left++;
    }
    if (r->url.n_sentinels > 0) {
        const char *role[1] = {"ROLE"};
        if (redis_send(r, 1, role, NULL, redis_on_handshake, (void *)(uintptr_t) "ROLE") == 0) {
            r->handshake_left++;
        }
    }
    if (r->url.db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", r->url.db);
        const char *sel[2] = {"SELECT", db};
        if (redis_send(r, 2, sel, NULL, redis_on_handshake, (void *)(uintptr_t) "SELECT") == 0) {
            r->handshake_left++;
        }
    }
    /* Always end with a PING so "up" is declared from a reply callback (where user code may
     * free us safely), never from inside onConnect, and only once the server answers. */
    const char *ping[1] = {"PING"};
    if (redis_send(r, 1, ping, NULL, redis_on_handshake, (void *)(uintptr_t) "PING") == 0) {
        r->handshake_left++;
    }
}

static void redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct osp_redis *r = ac->data;
    bool was_up = r->state == REDIS_ST_UP || r->state == REDIS_ST_CLOSING;
    r->ac = NULL;
    r->state = REDIS_ST_IDLE;
    ev_timer_stop(r->loop, &r->deadline);
    if (r->freeing) {
        redis_maybe_release(r);
        return;
    }
    if (status != REDIS_OK || r->last_err[0] == '\0') {
        set_err(r, "connection lost: %s",
                ac->errstr != NULL && ac->err != 0 ? ac->errstr : "closed");
    }
    r->errors++;
    redis_schedule_retry(r);
    if (was_up && r->state_cb != NULL) {
        r->in_cb++;
        r->state_cb(r, false, r->state_arg);
        r->in_cb--;
        redis_maybe_release(r);
    }
}

/* Drop the context outright, without waiting for replies: pending commands get NULL
 * replies, onDisconnect runs if the context had connected (and schedules the retry itself).
 * Only from outside r's own hiredis callbacks (a timer, another connection's callback). */
static void redis_drop(struct osp_redis *r)
{
    redisAsyncContext *ac = r->ac;
    r->in_cb++;
    redisAsyncFree(ac);
    r->in_cb--;
    r->ac = NULL;
    if (r->state != REDIS_ST_IDLE) {
        r->state = REDIS_ST_IDLE;
        r->errors++;
        redis_schedule_retry(r);
    }
}

static void redis_on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    OSP_UNUSED(loop);
    OSP_UNUSED(revents);
    struct osp_redis *r = osp_container_of(w, struct osp_redis, deadline);
    if (r->ac == NULL) {
        return;
    }
    set_err(r, "connect: no answer within %.0f s", REDIS_CONNECT_TIMEOUT);
    /* A clean disconnect would wait for the handshake replies of a server that does not
     * answer, so free the context outright: we are in a timer callback, not inside hiredis. */
    redis_drop(r);
    redis_maybe_release(r);
}

/* ---- Sentinel mode ----
 *
 * r->sent is a plain connection (AUTH with the sentinel credentials, PING) to one sentinel.
 * Each time it comes up it asks SENTINEL get-master-addr-by-name and subscribes to
 * +switch-master. Every (re)connection of r opens it afresh, so each one starts from a
 * current answer; sent_timer moves to the next sentinel when no address comes in time. */

/* A master address arrived (how: "sentinel" answer or "+switch-master"). */
static void sentinel_learn(struct osp_redis *r, const char *host, int port, const char *how)
{
    bool same = r->url.host != NULL && strcmp(r->url.host, host) == 0 && r->url.port == port;
    if (!same) {
        if (r->url.host != NULL) {
            r->master_changes++;
            set_err(r, "master '%s' moved to %s:%d (%s)", r->url.master_name, host, port, how);
        }
        free(r->url.host);
        r->url.host = osp_xstrdup(host);
        r->url.port = port;
    }
    switch (r->state) {
    case REDIS_ST_IDLE:
        /* Waiting for an address, or for the backoff after a failed attempt: go now. */
        r->addr_fresh = true;
        redis_retry_now(r);
        break;
    case REDIS_ST_CONNECTING:
    case REDIS_ST_HANDSHAKE:
    case REDIS_ST_UP:
        if (!same) {
            /* Abandon the old master at once, pending commands included (a cut-off old
             * master may never answer them). */
            r->addr_fresh = true;
            redis_drop(r);
            redis_retry_now(r);
        }
        break;
    case REDIS_ST_CLOSING:
        r->addr_fresh = true; /* onDisconnect schedules the retry; it goes straight there */
        break;
    }
}

static void sentinel_on_addr(struct osp_redis *sent, redisReply *reply, void *arg)
{
    struct osp_redis *r = arg;
    if (reply == NULL || sent != r->sent) {
        return; /* connection lost: sent_timer moves on */
    }
    const struct osp_redis_hostport *hp = &r->url.sentinels[r->sent_idx];
    char *host = NULL;
    int port = 0;
    int rc = reply->type == REDIS_REPLY_ERROR ? -2 : master_addr_reply(reply, &host, &port);
    if (rc == -2) {
        set_err(r, "sentinel %s:%d: %.*s", hp->host, hp->port,
                (int)reply->len > 120 ? 120 : (int)reply->len, reply->str);
    } else if (rc > 0) {
        set_err(r, "sentinel %s:%d knows no master named '%s'", hp->host, hp->port,
                r->url.master_name);
    } else if (rc < 0) {
        set_err(r, "sentinel %s:%d: unexpected reply to SENTINEL get-master-addr-by-name", hp->host,
                hp->port);
    }
    if (rc != 0) {
        return; /* sent_timer moves on to the next sentinel */
    }
    ev_timer_stop(r->loop, &r->sent_timer);
    r->in_cb++;
    sentinel_learn(r, host, port, "sentinel answer");
    r->in_cb--;
    free(host);
    redis_maybe_release(r);
}

/* "+switch-master" messages: "<name> <old-ip> <old-port> <new-ip> <new-port>". */
static void sentinel_on_switch(struct osp_redis *sent, redisReply *reply, void *arg)
{
    struct osp_redis *r = arg;
    if (reply == NULL || sent != r->sent || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 3 || reply->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(reply->element[0]->str, "message") != 0 ||
        reply->element[2]->type != REDIS_REPLY_STRING || reply->element[2]->len > 600) {
        return;
    }
    char msg[608];
    memcpy(msg, reply->element[2]->str, reply->element[2]->len);
    msg[reply->element[2]->len] = '\0';
    char *save = NULL;
    char *name = strtok_r(msg, " ", &save);
    (void)strtok_r(NULL, " ", &save); /* old ip */
    (void)strtok_r(NULL, " ", &save); /* old port */
    char *ip = strtok_r(NULL, " ", &save);
    char *port_s = strtok_r(NULL, " ", &save);
    int port = 0;
    if (name == NULL || ip == NULL || port_s == NULL || strcmp(name, r->url.master_name) != 0 ||
        parse_int(port_s, strlen(port_s), 1, 65535, &port) != 0) {
        return;
    }
    r->in_cb++;
    sentinel_learn(r, ip, port, "+switch-master");
    r->in_cb--;
    redis_maybe_release(r);
}

static void sentinel_on_state(struct osp_redis *sent, bool up, void *arg)
{
    struct osp_redis *r = arg;
    if (sent != r->sent) {
        return;
    }
    if (!up) {
        /* The subscription is gone with it: unless it is back with an answer in time, the
         * next sentinel takes over. */
        if (!ev_is_active(&r->sent_timer)) {
            ev_timer_set(&r->sent_timer, SENTINEL_ANSWER_S, 0.0);
            ev_timer_start(r->loop, &r->sent_timer);
        }
        return;
    }
    const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", r->url.master_name};
    if (osp_redis_command(sent, 3, argv, NULL, sentinel_on_addr, r) != 0 ||
        redis_subscribe(sent, "+switch-master", sentinel_on_switch, r) != 0) {
        osp_redis_reset(sent, "cannot send to the sentinel");
    }
}

static void sentinel_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    OSP_UNUSED(loop);
    OSP_UNUSED(revents);
    struct osp_redis *r = osp_container_of(w, struct osp_redis, sent_timer);
    const struct osp_redis_hostport *hp = &r->url.sentinels[r->sent_idx];
    const char *why = osp_redis_last_error(r->sent);
    set_err(r, "sentinel %s:%d named no master within %.0f s%s%.120s", hp->host, hp->port,
            SENTINEL_ANSWER_S, why[0] != '\0' ? ": " : "", why);
    r->sent_idx = (r->sent_idx + 1) % r->url.n_sentinels;
    sentinel_open(r);
}

/* (Re)open the connection to sentinel sent_idx; it asks and subscribes once up. */
static void sentinel_open(struct osp_redis *r)
{
    struct osp_redis *old = r->sent;
    r->sent = NULL;
    osp_redis_free(old);
    const struct osp_redis_hostport *hp = &r->url.sentinels[r->sent_idx];
    struct osp_redis_url su = {.host = hp->host,
                               .port = hp->port,
                               .username = r->url.sentinel_username,
                               .password = r->url.sentinel_password};
    r->sent = osp_redis_new(r->loop, &su, "sentinel", sentinel_on_state, r);
    ev_timer_stop(r->loop, &r->sent_timer);
    ev_timer_set(&r->sent_timer, SENTINEL_ANSWER_S, 0.0);
    ev_timer_start(r->loop, &r->sent_timer);
}

static void redis_connect(struct osp_redis *r)
{
    OSP_ASSERT(r->ac == NULL);
    if (r->url.n_sentinels > 0) {
        if (!r->addr_fresh) {
            sentinel_open(r); /* its answer calls redis_retry_now with addr_fresh set */
            return;
        }
        r->addr_fresh = false; /* the next reconnect asks again */
    }
    redisAsyncContext *ac = r->url.path != NULL ? redisAsyncConnectUnix(r->url.path)
                                                : redisAsyncConnect(r->url.host, r->url.port);
    if (ac == NULL) {
        set_err(r, "connect: out of memory");
        r->errors++;
        redis_schedule_retry(r);
        return;
    }
    if (ac->err != 0) {
        set_err(r, "connect: %s", ac->errstr);
        r->errors++;
        redisAsyncFree(ac);
        redis_schedule_retry(r);
        return;
    }
    ac->data = r;
    if (redisLibevAttach(r->loop, ac) != REDIS_OK) {
        set_err(r, "connect: cannot attach to the event loop");
        r->errors++;
        redisAsyncFree(ac);
        redis_schedule_retry(r);
        return;
    }
    r->ac = ac;
    r->state = REDIS_ST_CONNECTING;
    redisAsyncSetConnectCallback(ac, redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, redis_on_disconnect);
    ev_timer_stop(r->loop, &r->deadline);
    ev_timer_set(&r->deadline, REDIS_CONNECT_TIMEOUT, 0.0);
    ev_timer_start(r->loop, &r->deadline);
}

struct osp_redis *osp_redis_new(struct ev_loop *loop, const struct osp_redis_url *url,
                                const char *name, osp_redis_state_cb *cb, void *arg)
{
    struct osp_redis *r = osp_xcalloc(1, sizeof(*r));
    r->loop = loop;
    osp_redis_url_copy(&r->url, url);
    r->name = osp_xstrdup(name != NULL ? name : "connection");
    r->state_cb = cb;
    r->state_arg = arg;
    r->backoff_ms = REDIS_BACKOFF_MIN_MS;
    r->rng = (uint64_t)(uintptr_t)r ^ (uint64_t)osp_mono_ns() ^ 0x9e3779b97f4a7c15ULL;
    if (r->rng == 0) {
        r->rng = 1;
    }
    ev_timer_init(&r->retry, redis_on_retry, 0.0, 0.0);
    ev_timer_init(&r->deadline, redis_on_deadline, 0.0, 0.0);
    ev_timer_init(&r->sent_timer, sentinel_on_timer, 0.0, 0.0);
    redis_connect(r);
    return r;
}

void osp_redis_free(struct osp_redis *r)
{
    if (r == NULL) {
        return;
    }
    r->freeing = true;
    r->state_cb = NULL;
    ev_timer_stop(r->loop, &r->retry);
    ev_timer_stop(r->loop, &r->deadline);
    ev_timer_stop(r->loop, &r->sent_timer);
    struct osp_redis *sent = r->sent;
    r->sent = NULL;
    osp_redis_free(sent); /* safe inside its callbacks too: it defers its own release */
    if (r->ac != NULL) {
        redisAsyncContext *ac = r->ac;
        if (r->in_cb > 0) {
            /* Inside one of our reply callbacks: hiredis defers the teardown until it
             * returns, then runs pending callbacks (NULL replies) and onDisconnect, which
             * releases r. */
            redisAsyncFree(ac);
            return;
        }
        /* Pending callbacks run now with NULL replies, then onDisconnect (only for a
         * context that had connected); holding in_cb keeps r alive through both. */
        r->in_cb++;
        redisAsyncFree(ac);
        r->in_cb--;
        r->ac = NULL;
    }
    redis_maybe_release(r);
}

bool osp_redis_is_up(const struct osp_redis *r)
{
    return r->state == REDIS_ST_UP && r->ac != NULL && !r->freeing;
}

int osp_redis_command(struct osp_redis *r, int argc, const char **argv, const size_t *lens,
                      osp_redis_reply_cb *cb, void *arg)
{
    if (!osp_redis_is_up(r)) {
        return OSP_EREDIS;
    }
    return redis_send(r, argc, argv, lens, cb, arg);
}

void osp_redis_reset(struct osp_redis *r, const char *why)
{
    if (why != NULL) {
        set_err(r, "%s", why);
    }
    redis_disconnect(r);
}

const char *osp_redis_last_error(const struct osp_redis *r)
{
    return r->last_err;
}

uint64_t osp_redis_error_count(const struct osp_redis *r)
{
    return r->errors;
}

const char *osp_redis_endpoint(const struct osp_redis *r)
{
    return r->endpoint;
}

uint64_t osp_redis_master_changes(const struct osp_redis *r)
{
    return r->master_changes;
}
