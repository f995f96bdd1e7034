/* SPDX-License-Identifier: MIT */
/* rq_sync.c — the queue's synchronous client (contract: common/rq.h): one blocking hiredis
 * connection that reconnects by itself, running the same tasks as the async client
 * (common/rq.c) with redisCommandArgv; plus the plain reads the scheduler and tools need. */
#include "common/alloc.h"
#include "common/base.h"
#include "common/envelope.h"
#include "common/redis.h"
#include "common/rq.h"
#include "common/rq_int.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RQS_TIMEOUT_MS 10000 /* connect and per-command timeout */

/* ---- Synchronous client ---- */

/* Sentinel mode: how often a connection in use asks a sentinel whether the master moved (a
 * synchronous client has no subscription to hear +switch-master). */
#define RQS_SENTINEL_CHECK_NS (1000LL * 1000 * 1000)

struct osp_rqs {
    struct rq_base base;
    struct osp_redis_url url;
    redisContext *ctx;  /* NULL after an I/O error: the next call reconnects */
    int64_t checked_ns; /* sentinel mode: when the master's address was last confirmed */
};

static void rqs_drop(struct osp_rqs *c)
{
    if (c->ctx != NULL) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
}

/* One command; in sentinel mode the wait for its reply watches the sentinels
 * (osp_redis_sync_command), and a -READONLY reply (the master was demoted) drops the
 * connection, so the next call asks the sentinels again. The reply is returned as is. */
static redisReply *rqs_cmd(struct osp_rqs *c, int argc, const char **argv, const size_t *lens)
{
    redisReply *rep = osp_redis_sync_command(c->ctx, &c->url, argc, argv, lens, RQS_TIMEOUT_MS);
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && c->url.n_sentinels > 0 &&
        strstr(rep->str, "READONLY") != NULL) {
        rqs_drop(c);
    }
    return rep;
}

/* Sentinel mode: is the connection in use still to the master the sentinels name? Asked at
 * most once a second; a sentinel that cannot be asked keeps the connection. */
static bool rqs_master_moved(struct osp_rqs *c)
{
    int64_t now = osp_mono_ns();
    if (c->url.n_sentinels == 0 || now - c->checked_ns < RQS_SENTINEL_CHECK_NS) {
        return false;
    }
    c->checked_ns = now;
    return osp_redis_sentinel_moved(&c->url, RQS_TIMEOUT_MS);
}

/* Connect (again) when needed and load the scripts, pipelined. */
static int rqs_ensure(struct osp_rqs *c, struct osp_err *err)
{
    if (c->ctx != NULL && c->ctx->err == 0 && !rqs_master_moved(c)) {
        return 0;
    }
    rqs_drop(c);
    c->checked_ns = osp_mono_ns();
    c->ctx = osp_redis_connect_sync(&c->url, RQS_TIMEOUT_MS, err);
    if (c->ctx == NULL) {
        return OSP_EREDIS;
    }
    struct rq_cmd cmd = {.script = -1};
    int rc = 0;
    for (int s = 0; s < RQ_NSCRIPTS; s++) {
        rq_cmd_script_load(&cmd, (enum rq_script)s);
        redisAppendCommandArgv(c->ctx, cmd.argc, cmd.argv, cmd.lens);
    }
    for (int s = 0; s < RQ_NSCRIPTS; s++) {
        void *rep = NULL;
        if (redisGetReply(c->ctx, &rep) != REDIS_OK) {
            rc = osp_err_set(err, OSP_EREDIS, "redis SCRIPT LOAD: %s", c->ctx->errstr);
            break;
        }
        if (!rq_store_sha(&c->base, (enum rq_script)s, rep) && rc == 0) {
            const redisReply *r = rep;
            rc = osp_err_set(err, OSP_EREDIS, "redis SCRIPT LOAD: %.*s",
                             r->type == REDIS_REPLY_ERROR ? (int)r->len : 16,
                             r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        }
        freeReplyObject(rep);
    }
    rq_cmd_deinit(&cmd);
    if (rc != 0) {
        rqs_drop(c);
    }
    return rc;
}

/* Run a task to completion. */
static int rqs_run(struct osp_rqs *c, struct rq_task *t, struct osp_err *err)
{
    int st = RQ_MORE;
    while (st == RQ_MORE) {
        if (rqs_ensure(c, err) != 0) {
            return OSP_EREDIS;
        }
        redisReply *rep = rqs_cmd(c, t->cmd.argc, t->cmd.argv, t->cmd.lens);
        if (rep == NULL) {
            osp_err_set(err, OSP_EREDIS, "redis: %s", c->ctx->errstr);
            rqs_drop(c);
            return OSP_EREDIS;
        }
        st = rq_task_feed(t, rep);
        freeReplyObject(rep);
    }
    if (t->status != 0) {
        return osp_err_set(err, t->status, "%s", t->errmsg);
    }
    return 0;
}

struct osp_rqs *osp_rqs_connect(const struct osp_rq_opts *opts, struct osp_err *err)
{
    struct osp_rqs *c = osp_xcalloc(1, sizeof(*c));
    if (rq_base_init(&c->base, opts, err) != 0) {
        goto fail;
    }
    if (osp_redis_url_parse(opts->url, &c->url, err) != 0) {
        goto fail;
    }
    osp_redis_url_set_auth(&c->url, opts->username, opts->password);
    if (osp_redis_url_set_sentinels(&c->url, opts->sentinels, opts->sentinel_master,
                                    opts->sentinel_username, opts->sentinel_password, err) != 0) {
        goto fail;
    }
    if (rqs_ensure(c, err) != 0) {
        goto fail;
    }
    return c;
fail:
    osp_rqs_free(c);
    return NULL;
}

void osp_rqs_free(struct osp_rqs *c)
{
    if (c == NULL) {
        return;
    }
    rqs_drop(c);
    osp_redis_url_deinit(&c->url);
    rq_base_deinit(&c->base);
    free(c);
}

int osp_rqs_apply(struct osp_rqs *c, const struct osp_rq_ops *ops, int64_t *results,
                  struct osp_err *err)
{
    int rc = rq_ops_check(&c->base, ops, err);
    if (rc != 0) {
        return rc;
    }
    struct rq_task t;
    rq_task_init(&t, RQ_T_APPLY, &c->base);
    rq_apply_build(&t, ops);
    rc = rqs_run(c, &t, err);
    if (rc == 0 && results != NULL) {
        memcpy(results, t.results, t.nops * sizeof(*results));
    }
    rq_task_deinit(&t);
    return rc;
}

/* The right-most envelope's enqueued_at. Decoding needs no key: with nkeys == 0 the
 * signature is not checked (see oldest_pending_ms in rq.h and envelope.c). */
static int64_t rqs_enqueued_at(const struct osp_buf *env)
{
    if (env->len == 0) {
        return 0;
    }
    struct osp_env_keys keys = {.nkeys = 0, .allow_unsigned = true};
    struct osp_job j; /* an output only: decode overwrites it, deinit is always safe */
    int64_t at = 0;
    if (osp_env_decode(env->data, env->len, &keys, env->len, &j, NULL) == 0) {
        at = j.enqueued_at;
    }
    osp_job_deinit(&j);
    return at;
}

int osp_rqs_stats(struct osp_rqs *c, const char *kind, struct osp_rq_stats *st, struct osp_err *err)
{
    if (!rq_kind_ok(kind)) {
        return osp_err_set(err, OSP_EINVAL, "stats: invalid kind");
    }
    struct rq_task t;
    rq_task_init(&t, RQ_T_STATS, &c->base);
    rq_stats_build(&t, kind);
    int rc = rqs_run(c, &t, err);
    if (rc == 0) {
        *st = t.stats;
        st->oldest_pending_ms = rqs_enqueued_at(&t.oldest);
    }
    rq_task_deinit(&t);
    return rc;
}

static json_t *reply_to_json(const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        return json_stringn_nocheck(r->str, r->len);
    case REDIS_REPLY_INTEGER:
        return json_integer((json_int_t)r->integer);
    case REDIS_REPLY_NIL:
        return json_null();
    case REDIS_REPLY_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < r->elements; i++) {
            json_array_append_new(a, reply_to_json(r->element[i]));
        }
        return a;
    }
    default:
        return json_null();
    }
}

json_t *osp_rqs_command(struct osp_rqs *c, int argc, const char **argv, const size_t *lens,
                        struct osp_err *err)
{
    if (argc <= 0 || argv == NULL) {
        osp_err_set(err, OSP_EINVAL, "command: empty argv");
        return NULL;
    }
    if (rqs_ensure(c, err) != 0) {
        return NULL;
    }
    redisReply *rep = rqs_cmd(c, argc, argv, lens);
    if (rep == NULL) {
        osp_err_set(err, OSP_EREDIS, "redis: %s", c->ctx->errstr);
        rqs_drop(c);
        return NULL;
    }
    json_t *out = NULL;
    if (rep->type == REDIS_REPLY_ERROR) {
        osp_err_set(err, OSP_EREDIS, "redis %s: %.*s", argv[0], (int)rep->len, rep->str);
    } else {
        out = reply_to_json(rep);
    }
    freeReplyObject(rep);
    return out;
}

int osp_rqs_promote(struct osp_rqs *c, int64_t now_ms, int max, int64_t *moved, struct osp_err *err)
{
    if (max <= 0) {
        return osp_err_set(err, OSP_EINVAL, "promote: max must be positive");
    }
    struct rq_task t;
    rq_task_init(&t, RQ_T_PROMOTE, &c->base);
    rq_promote_build(&t, now_ms, max);
    int rc = rqs_run(c, &t, err);
    if (rc == 0 && moved != NULL) {
        *moved = t.count;
    }
    rq_task_deinit(&t);
    return rc;
}

int osp_rqs_reap(struct osp_rqs *c, int lease_ms, int max_recoveries, int64_t *handed_back,
                 struct osp_rq_recovery **recs_out, size_t *nrecs_out, struct osp_err *err)
{
    if (lease_ms <= 0 || max_recoveries < 0) {
        return osp_err_set(err, OSP_EINVAL, "reap: lease_ms must be positive");
    }
    struct rq_task t;
    rq_task_init(&t, RQ_T_REAP, &c->base);
    rq_reap_begin(&t, lease_ms, max_recoveries);
    int rc = rqs_run(c, &t, err);
    if (handed_back != NULL) {
        *handed_back = t.count;
    }
    if (recs_out != NULL) {
        rq_reap_take_recs(&t, recs_out, nrecs_out);
    }
    rq_task_deinit(&t);
    return rc;
}

int osp_rqs_epoch(struct osp_rqs *c, char out[OSP_ID_LEN + 1], bool *created, struct osp_err *err)
{
    int rc = rqs_ensure(c, err);
    if (rc != 0) {
        return rc;
    }
    char mine[OSP_ID_LEN + 1];
    osp_id_new(mine);
    /* SET NX, then GET: the first caller's token wins and everyone reads it (two plain
     * commands: the scheduler's ACL user needs no EVAL). */
    redisReply *set = redisCommand(c->ctx, "SET %s:epoch %s NX", c->base.prefix, mine);
    redisReply *get = set != NULL ? redisCommand(c->ctx, "GET %s:epoch", c->base.prefix) : NULL;
    if (set == NULL || get == NULL) {
        rc = osp_err_set(err, OSP_EREDIS, "redis: %s", c->ctx->errstr);
        rqs_drop(c);
    } else if (set->type == REDIS_REPLY_ERROR || get->type != REDIS_REPLY_STRING) {
        rc = osp_err_set(err, OSP_EREDIS, "redis epoch: %.*s",
                         set->type == REDIS_REPLY_ERROR ? (int)set->len : 0,
                         set->type == REDIS_REPLY_ERROR ? set->str : "");
    } else {
        *created = set->type == REDIS_REPLY_STATUS && get->len == strlen(mine) &&
                   memcmp(get->str, mine, get->len) == 0;
        snprintf(out, OSP_ID_LEN + 1, "%.*s", (int)get->len, get->str);
    }
    if (set != NULL) {
        freeReplyObject(set);
    }
    if (get != NULL) {
        freeReplyObject(get);
    }
    return rc;
}

int osp_rqs_job_states(struct osp_rqs *c, const char *const *ids, size_t n,
                       char (*states)[OSP_RQ_STATE_MAX], struct osp_err *err)
{
    if (n == 0) {
        return 0;
    }
    int rc = rqs_ensure(c, err);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (!osp_id_is_valid(ids[i])) {
            return osp_err_set(err, OSP_EINVAL, "job_states: invalid job id");
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (redisAppendCommand(c->ctx, "HGET %s:job:%s state", c->base.prefix, ids[i]) !=
            REDIS_OK) {
            rc = osp_err_set(err, OSP_EREDIS, "redis: %s", c->ctx->errstr);
            rqs_drop(c);
            return rc;
        }
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(c->ctx, (void **)&rep) != REDIS_OK || rep == NULL) {
            rc = osp_err_set(err, OSP_EREDIS, "redis: %s", c->ctx->errstr);
            rqs_drop(c);
            return rc;
        }
        states[i][0] = '\0';
        if (rep->type == REDIS_REPLY_STRING) {
            snprintf(states[i], OSP_RQ_STATE_MAX, "%.*s", (int)rep->len, rep->str);
        } else if (rep->type == REDIS_REPLY_ERROR && rc == 0) {
            rc = osp_err_set(err, OSP_EREDIS, "redis HGET: %.*s", (int)rep->len, rep->str);
        }
        freeReplyObject(rep);
    }
    return rc;
}

/* EVALSHA of a control-plane script on the sync client: KEYS[1] = key, then args. NOSCRIPT
 * (a restarted or flushed server) reloads the source and retries once. */
json_t *rqs_script(struct osp_rqs *c, int script, const char *key, int nargs, const char **args,
                   const size_t *lens, struct osp_err *err)
{
    enum rq_script s = (enum rq_script)script;
    OSP_ASSERT(script >= RQ_CANCEL && script < RQ_NSCRIPTS);
    for (int round = 0; round < 2; round++) {
        if (rqs_ensure(c, err) != 0) {
            return NULL;
        }
        struct rq_cmd cmd = {.script = -1};
        rq_cmd_evalsha(&cmd, &c->base, s);
        rq_cmd_adds(&cmd, key);
        for (int i = 0; i < nargs; i++) {
            rq_cmd_add(&cmd, args[i], lens != NULL ? lens[i] : strlen(args[i]));
        }
        redisReply *rep = rqs_cmd(c, cmd.argc, cmd.argv, cmd.lens);
        rq_cmd_deinit(&cmd);
        if (rep == NULL) {
            osp_err_set(err, OSP_EREDIS, "redis: %s", c->ctx->errstr);
            rqs_drop(c);
            return NULL;
        }
        if (rq_is_noscript(rep) && round == 0) {
            freeReplyObject(rep);
            struct rq_cmd load = {.script = -1};
            rq_cmd_script_load(&load, s);
            redisReply *lr = redisCommandArgv(c->ctx, load.argc, load.argv, load.lens);
            rq_cmd_deinit(&load);
            bool stored = lr != NULL && rq_store_sha(&c->base, s, lr);
            if (lr != NULL) {
                freeReplyObject(lr);
            } else {
                rqs_drop(c);
            }
            if (!stored) {
                osp_err_set(err, OSP_EREDIS, "redis SCRIPT LOAD failed");
                return NULL;
            }
            continue;
        }
        json_t *out = NULL;
        if (rep->type == REDIS_REPLY_ERROR) {
            osp_err_set(err, OSP_EREDIS, "redis script: %.*s", (int)rep->len, rep->str);
        } else {
            out = reply_to_json(rep);
        }
        freeReplyObject(rep);
        return out;
    }
    osp_err_set(err, OSP_EREDIS, "redis: script not loaded");
    return NULL;
}

const char *osp_rqs_prefix(const struct osp_rqs *c)
{
    return c->base.prefix;
}
