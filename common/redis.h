/* SPDX-License-Identifier: MIT */
/* redis.h — internal Redis connection helper for common/rq.c (and other common/ modules):
 * URL parsing, a synchronous connect with AUTH/SELECT, and an asynchronous connection on a
 * libev loop (hiredis 0.14 async) that performs the same handshake and reconnects by itself
 * with capped exponential backoff (100 ms doubling to 5 s) plus jitter.
 *
 * This header exposes hiredis types on purpose: it is the one place where hiredis meets the
 * rest of common/, and public contracts (rq.h) never include it. */
#ifndef OSP_REDIS_H
#define OSP_REDIS_H

#include "common/err.h"

#include <ev.h>
#include <hiredis/hiredis.h>

/* A parsed connection URL:
 *   redis://[[user]:pass@]host[:port][/db]   (host may be an [IPv6] literal; default port 6379)
 *   unix:///path/to/redis.sock[?db=N]
 * user and pass are percent-decoded. Every string is owned (NULL when absent). */
struct osp_redis_url {
    char *host;     /* TCP host, NULL for unix sockets */
    int port;       /* TCP port */
    char *path;     /* unix socket path, NULL for TCP */
    int db;         /* SELECT index, 0 = none */
    char *username; /* ACL user, NULL = default user */
    char *password; /* NULL = no AUTH */
};

/* Parse s into u (zeroed first). 0, or OSP_EINVAL with err saying why (never echoing the
 * password). On failure u holds nothing to free. */
int osp_redis_url_parse(const char *s, struct osp_redis_url *u, struct osp_err *err);
/* Replace u's credentials with username/password when those are non-empty (settings given
 * separately from the URL win over the URL's own). */
void osp_redis_url_set_auth(struct osp_redis_url *u, const char *username, const char *password);
void osp_redis_url_copy(struct osp_redis_url *dst, const struct osp_redis_url *src);
void osp_redis_url_deinit(struct osp_redis_url *u);

/* Blocking connect + AUTH + SELECT, with timeout_ms on connect and on every later command.
 * Returns an owned context (redisFree) or NULL with err filled (OSP_EREDIS). */
redisContext *osp_redis_connect_sync(const struct osp_redis_url *u, int timeout_ms,
                                     struct osp_err *err);

/* ---- Asynchronous connection ---- */

struct osp_redis;

/* The reply to one command: borrowed for the callback's duration; NULL when the connection
 * was lost (or closed by osp_redis_free) before the reply arrived. Every command's callback
 * runs exactly once. */
typedef void osp_redis_reply_cb(struct osp_redis *r, redisReply *reply, void *arg);
/* up == true once connected, authenticated and the database selected; false when that
 * connection is lost (a reconnect is then already scheduled). Never called by
 * osp_redis_new or osp_redis_free. */
typedef void osp_redis_state_cb(struct osp_redis *r, bool up, void *arg);

/* Start connecting at once (the URL is copied; name labels errors, e.g. "blocking").
 * Never fails: an unreachable server only means "not up yet". */
struct osp_redis *osp_redis_new(struct ev_loop *loop, const struct osp_redis_url *url,
                                const char *name, osp_redis_state_cb *cb, void *arg);
/* Close. Commands still pending get their callback with a NULL reply, either before this
 * returns or, when called from inside one of this connection's reply callbacks, right after
 * that callback returns (hiredis defers the teardown until then). No state callback
 * follows. free(NULL) is a no-op. */
void osp_redis_free(struct osp_redis *r);
bool osp_redis_is_up(const struct osp_redis *r);
/* Queue a command (binary-safe argv). 0, or OSP_EREDIS when the connection is not up (the
 * callback is then never called). The callback never runs before this returns. */
int osp_redis_command(struct osp_redis *r, int argc, const char **argv, const size_t *lens,
                      osp_redis_reply_cb *cb, void *arg);
/* Drop the current connection as if it had failed (pending commands get NULL replies) and
 * reconnect after the backoff delay. Used after a handshake-level failure of a layer above
 * (e.g. loading scripts). Must not be called from inside a reply callback of r. */
void osp_redis_reset(struct osp_redis *r, const char *why);
/* Latest connection or handshake error, "" when none. */
const char *osp_redis_last_error(const struct osp_redis *r);
/* Number of failed connection attempts and lost connections since creation. */
uint64_t osp_redis_error_count(const struct osp_redis *r);

#endif
