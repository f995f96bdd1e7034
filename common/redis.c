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

void osp_redis_url_copy(struct osp_redis_url *dst, const struct osp_redis_url *src)
{
    dst->host = dup_or_null(src->host);
    dst->port = src->port;
    dst->path = dup_or_null(src->path);
    dst->db = src->db;
    dst->username = dup_or_null(src->username);
    dst->password = dup_or_null(src->password);
}

void osp_redis_url_deinit(struct osp_redis_url *u)
{
    free(u->host);
    free(u->path);
    free(u->username);
    if (u->password != NULL) {
        /* Best effort: do not leave the secret in freed heap memory. */
        volatile char *p = u->password;
        while (*p != '\0') {
            *p++ = '\0';
        }
        free(u->password);
    }
    memset(u, 0, sizeof(*u));
}

/* Handshake commands: AUTH [user] pass, then SELECT db, as argv arrays. n is set to 0 when
 * the command is not needed. */
static void auth_argv(const struct osp_redis_url *u, const char *argv[3], int *n)
{
    *n = 0;
    if (u->password == NULL) {
        return;
    }
    argv[(*n)++] = "AUTH";
    if (u->username != NULL) {
        argv[(*n)++] = u->username;
    }
    argv[(*n)++] = u->password;
}

static const char *where(const struct osp_redis_url *u, char *buf, size_t cap)
{
    if (u->path != NULL) {
        snprintf(buf, cap, "%s", u->path);
    } else {
        snprintf(buf, cap, "%s:%d", u->host, u->port);
    }
    return buf;
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

redisContext *osp_redis_connect_sync(const struct osp_redis_url *u, int timeout_ms,
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
    auth_argv(u, argv, &n);
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
};

struct redis_pending {
    struct osp_redis *r;
    osp_redis_reply_cb *cb;
    void *arg;
};

static void redis_connect(struct osp_redis *r);

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
    r->backoff_ms = r->backoff_ms * 2 > REDIS_BACKOFF_MAX_MS ? REDIS_BACKOFF_MAX_MS
                                                              : r->backoff_ms * 2;
    ev_timer_stop(r->loop, &r->retry);
    ev_timer_set(&r->retry, (double)delay / 1000.0, 0.0);
    ev_timer_start(r->loop, &r->retry);
}

static void redis_on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    OSP_UNUSED(loop);
    OSP_UNUSED(revents);
    struct osp_redis *r = osp_container_of(w, struct osp_redis, retry);
    redis_connect(r);
}

static void redis_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    OSP_UNUSED(ac);
    struct redis_pending *p = priv;
    struct osp_redis *r = p->r;
    r->in_cb++;
    p->cb(r, reply, p->arg);
    r->in_cb--;
    free(p);
    redis_maybe_release(r);
}

static int redis_send(struct osp_redis *r, int argc, const char **argv, const size_t *lens,
                      osp_redis_reply_cb *cb, void *arg)
{
    struct redis_pending *p = osp_xmalloc(sizeof(*p));
    p->r = r;
    p->cb = cb;
    p->arg = arg;
    if (redisAsyncCommandArgv(r->ac, redis_on_reply, p, argc, argv, lens) != REDIS_OK) {
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
    if (reply->type == REDIS_REPLY_ERROR) {
        set_err(r, "%s: %.*s", what, (int)reply->len, reply->str);
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
    auth_argv(&r->url, argv, &n);
    if (n > 0 && redis_send(r, n, argv, NULL, redis_on_handshake, (void *)(uintptr_t) "AUTH") == 0) {
        r->handshake_left++;
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
        set_err(r, "connection lost: %s", ac->errstr != NULL && ac->err != 0 ? ac->errstr
                                                                             : "closed");
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
     * answer, so free the context outright: we are in a timer callback, not inside hiredis.
     * Handshake callbacks get NULL replies (ignored); onDisconnect runs only if the context
     * had connected, and then schedules the retry itself. */
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

static void redis_connect(struct osp_redis *r)
{
    OSP_ASSERT(r->ac == NULL);
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
