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

struct osp_redis_hostport {
    char *host;
    int port;
};

/* A parsed connection URL:
 *   redis://[[user]:pass@]host[:port][/db]   (host may be an [IPv6] literal; default port 6379)
 *   unix:///path/to/redis.sock[?db=N]
 * user and pass are percent-decoded. Every string is owned (NULL when absent).
 *
 * Sentinel mode (n_sentinels > 0, see osp_redis_url_set_sentinels): the master's address is
 * asked of the sentinels, in list order, and host/port only hold the last address learnt;
 * db, username and password still apply to the master. */
struct osp_redis_url {
    char *host;                           /* TCP host, NULL for unix sockets */
    int port;                             /* TCP port */
    char *path;                           /* unix socket path, NULL for TCP */
    int db;                               /* SELECT index, 0 = none */
    char *username;                       /* ACL user, NULL = default user */
    char *password;                       /* NULL = no AUTH */
    struct osp_redis_hostport *sentinels; /* owned array */
    size_t n_sentinels;
    char *master_name;       /* the name the sentinels monitor the master under */
    char *sentinel_username; /* AUTH to the sentinels, NULL = default user */
    char *sentinel_password; /* NULL = no AUTH to the sentinels */
};

/* Parse s into u (zeroed first). 0, or OSP_EINVAL with err saying why (never echoing the
 * password). On failure u holds nothing to free. */
int osp_redis_url_parse(const char *s, struct osp_redis_url *u, struct osp_err *err);
/* Replace u's credentials with username/password when those are non-empty (settings given
 * separately from the URL win over the URL's own). */
void osp_redis_url_set_auth(struct osp_redis_url *u, const char *username, const char *password);
/* Parse a sentinel list "host[:port][,host[:port]...]" (default port 26379; [IPv6] literals
 * allowed; at most 16) into u and switch u to sentinel mode with master name `master`
 * (non-empty) and the sentinels' own credentials (NULL or "" = none). An empty or NULL list
 * leaves u unchanged. 0, or OSP_EINVAL with err naming the bad entry (u unchanged). A unix://
 * URL cannot be combined with sentinels. */
int osp_redis_url_set_sentinels(struct osp_redis_url *u, const char *list, const char *master,
                                const char *username, const char *password, struct osp_err *err);
void osp_redis_url_copy(struct osp_redis_url *dst, const struct osp_redis_url *src);
void osp_redis_url_deinit(struct osp_redis_url *u);

/* Blocking connect + AUTH + SELECT, with timeout_ms on connect and on every later command.
 * In sentinel mode the sentinels are asked for the master in list order (each within
 * timeout_ms, capped at 1 s) and the server found must answer ROLE with "master"; u->host and
 * u->port are updated to it. Returns an owned context (redisFree) or NULL with err filled
 * (OSP_EREDIS). */
redisContext *osp_redis_connect_sync(struct osp_redis_url *u, int timeout_ms, struct osp_err *err);

/* Sentinel mode: ask the sentinels (in order, until one answers) where the master is; true
 * when that differs from u->host/port. A failure to ask counts as "not moved". */
bool osp_redis_sentinel_moved(const struct osp_redis_url *u, int timeout_ms);

/* One command on a connection from osp_redis_connect_sync. Plain mode: redisCommandArgv.
 * Sentinel mode: the reply is awaited in slices of 500 ms (timeout_ms in all), and between
 * slices the sentinels are asked whether the master moved; if it did, the command is
 * abandoned: NULL, with c->err set and c->errstr saying so (its outcome is unknown, as after
 * a timeout). */
redisReply *osp_redis_sync_command(redisContext *c, const struct osp_redis_url *u, int argc,
                                   const char **argv, const size_t *lens, int timeout_ms);

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
 * Never fails: an unreachable server only means "not up yet".
 *
 * Sentinel mode: the connection keeps one connection to a sentinel, which it asks for the
 * master (rotating through the list when a sentinel does not answer within 2 s) and on which
 * it subscribes to +switch-master. A switch of its master drops the data connection at once
 * (pending commands get NULL replies) and reconnects to the new master. Every (re)connection
 * asks a sentinel afresh, ends its handshake with ROLE and is refused unless the server is a
 * master; a -READONLY reply (a demoted master) also drops the connection. */
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
/* Where the connection goes: "host:port" or the socket path, and in sentinel mode
 * "host:port (master 'name' via sentinel host:port)"; "" before the first address. */
const char *osp_redis_endpoint(const struct osp_redis *r);
/* Sentinel mode: times the master's address changed after the first one (a +switch-master,
 * or a sentinel naming another master); 0 otherwise. */
uint64_t osp_redis_master_changes(const struct osp_redis *r);

#endif
