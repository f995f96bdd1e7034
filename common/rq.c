/* SPDX-License-Identifier: MIT */
/* rq.c — the reliable Redis queue: operation batches, the task machines and the async client
 * (two hiredis connections on libev); the reaper's machine is in rq_reap.c, the sync client in
 * rq_sync.c, the control plane in rq_admin.c, and the Lua scripts that make every multi-step
 * transition atomic in common/lua/. Contract: common/rq.h; key layout and script routing:
 * docs/decisions/0001-redis-scripts-and-keys.md.
 *
 * Design. Every operation, async or sync, is a small state machine ("task") that produces
 * Redis commands and consumes their replies: most tasks are one EVALSHA, the reaper is a
 * loop of reads and per-envelope scripts. Two drivers run tasks: the sync one with
 * redisCommandArgv, the async one from hiredis reply callbacks. NOSCRIPT (a restarted or
 * flushed server) is handled once in the drivers' shared reply path: SCRIPT LOAD the source,
 * then retry the same EVALSHA once. So both clients share scripts, batches and logic.
 *
 * Async lifetime. A request (struct rq_req) lives from the call that starts it until the
 * hiredis callback of its last command; it is on rq->reqs while it can still call back.
 * osp_rq_free unlinks every request, calls it back with OSP_ECANCELED and orphans it
 * (req->rq = NULL); hiredis later delivers a NULL reply to each orphan, which only frees it. */
#include "common/rq.h"
#include "common/alloc.h"
#include "common/base.h"
#include "common/envelope.h"
#include "common/redis.h"
#include "common/rq_int.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Scripts, embedded at build time from the .lua files in common/lua/ (CMakeLists.txt). */
extern const char osp_lua_settle[];
extern const char osp_lua_fetch[];
extern const char osp_lua_heartbeat[];
extern const char osp_lua_forget[];
extern const char osp_lua_promote[];
extern const char osp_lua_reclaim[];
extern const char osp_lua_sweep[];
extern const char osp_lua_stats[];
extern const char osp_lua_cancel[];
extern const char osp_lua_requeue[];
extern const char osp_lua_purge[];

/* enum rq_script: common/rq_int.h */

static const char *rq_script_src(enum rq_script s)
{
    switch (s) {
    case RQ_SETTLE:
        return osp_lua_settle;
    case RQ_FETCH:
        return osp_lua_fetch;
    case RQ_HEARTBEAT:
        return osp_lua_heartbeat;
    case RQ_FORGET:
        return osp_lua_forget;
    case RQ_PROMOTE:
        return osp_lua_promote;
    case RQ_RECLAIM:
        return osp_lua_reclaim;
    case RQ_SWEEP:
        return osp_lua_sweep;
    case RQ_STATS:
        return osp_lua_stats;
    case RQ_CANCEL:
        return osp_lua_cancel;
    case RQ_REQUEUE:
        return osp_lua_requeue;
    case RQ_PURGE:
        return osp_lua_purge;
    case RQ_NSCRIPTS:
        break;
    }
    OSP_ASSERT(!"unknown script");
    return NULL;
}

#define RQ_OP_FIELDS       7     /* op kind id env data n1 n2, as settle.lua reads them */
#define RQ_MAX_FETCH_KINDS 64    /* paused_mask is a uint64_t */
#define RQ_WORKER_TTL_S    300   /* P:worker:<id> lifetime: 10 leases of the default 30 s */
#define RQ_STATS_SCAN      10000 /* delayed entries examined by osp_rqs_stats */

/* ---- Small helpers ---- */

/* Kinds become key names and the "<kind>|" prefix of delayed members: [a-z0-9_-]{1,32}. */
bool rq_kind_ok(const char *k)
{
    size_t n = k != NULL ? strlen(k) : 0;
    if (n == 0 || n > OSP_KIND_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

static bool reply_is_error(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR;
}

/* Integer value of an integer reply, or of a numeric string reply (HGET). */
bool rq_reply_int(const redisReply *r, int64_t *out)
{
    if (r == NULL) {
        return false;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = (int64_t)r->integer;
        return true;
    }
    if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < 24) {
        char tmp[24];
        memcpy(tmp, r->str, r->len);
        tmp[r->len] = '\0';
        char *end;
        long long v = strtoll(tmp, &end, 10);
        if (*end == '\0') {
            *out = v;
            return true;
        }
    }
    return false;
}

/* ---- Commands: binary-safe argv with owned copies ---- */

void rq_cmd_clear(struct rq_cmd *c)
{
    for (int i = 0; i < c->argc; i++) {
        free(c->own[i]);
    }
    c->argc = 0;
    c->script = -1;
}

void rq_cmd_deinit(struct rq_cmd *c)
{
    rq_cmd_clear(c);
    free(c->own);
    free(c->argv);
    free(c->lens);
    memset(c, 0, sizeof(*c));
    c->script = -1;
}

void rq_cmd_add(struct rq_cmd *c, const void *p, size_t n)
{
    if (c->argc == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->own = osp_xrealloc(c->own, (size_t)c->cap * sizeof(*c->own));
        c->argv = osp_xrealloc(c->argv, (size_t)c->cap * sizeof(*c->argv));
        c->lens = osp_xrealloc(c->lens, (size_t)c->cap * sizeof(*c->lens));
    }
    char *copy = osp_xmalloc(n + 1);
    if (n > 0) {
        memcpy(copy, p, n);
    }
    copy[n] = '\0';
    c->own[c->argc] = copy;
    c->argv[c->argc] = copy;
    c->lens[c->argc] = n;
    c->argc++;
}

void rq_cmd_adds(struct rq_cmd *c, const char *s)
{
    rq_cmd_add(c, s, strlen(s));
}

void rq_cmd_addf(struct rq_cmd *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    OSP_ASSERT(n >= 0);
    char *s = osp_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rq_cmd_add(c, s, (size_t)n);
    free(s);
}

void rq_cmd_addi(struct rq_cmd *c, int64_t v)
{
    rq_cmd_addf(c, "%lld", (long long)v);
}

static void cmd_swap(struct rq_cmd *a, struct rq_cmd *b)
{
    struct rq_cmd t = *a;
    *a = *b;
    *b = t;
}

/* ---- State shared by both clients ---- */

int rq_base_init(struct rq_base *b, const struct osp_rq_opts *o, struct osp_err *err)
{
    memset(b, 0, sizeof(*b));
    if (o->prefix == NULL || o->prefix[0] == '\0') {
        return osp_err_set(err, OSP_EINVAL, "rq: prefix must not be empty");
    }
    if (o->worker_id != NULL && o->worker_id[0] == '\0') {
        return osp_err_set(err, OSP_EINVAL, "rq: worker_id must be NULL or non-empty");
    }
    b->prefix = osp_xstrdup(o->prefix);
    b->worker_id = o->worker_id != NULL ? osp_xstrdup(o->worker_id) : NULL;
    return 0;
}

void rq_base_deinit(struct rq_base *b)
{
    free(b->prefix);
    free(b->worker_id);
    memset(b, 0, sizeof(*b));
}

/* EVALSHA <sha> 1 <key1>; the caller appends ARGV. */
void rq_cmd_evalsha(struct rq_cmd *c, const struct rq_base *b, enum rq_script s)
{
    rq_cmd_clear(c);
    c->script = (int)s;
    rq_cmd_adds(c, "EVALSHA");
    rq_cmd_adds(c, b->sha[s][0] != '\0' ? b->sha[s] : "0000000000000000000000000000000000000000");
    rq_cmd_adds(c, "1");
}

void rq_cmd_script_load(struct rq_cmd *c, enum rq_script s)
{
    rq_cmd_clear(c);
    rq_cmd_adds(c, "SCRIPT");
    rq_cmd_adds(c, "LOAD");
    rq_cmd_adds(c, rq_script_src(s));
}

/* Store the sha of a SCRIPT LOAD reply. */
bool rq_store_sha(struct rq_base *b, enum rq_script s, const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len != 40) {
        return false;
    }
    memcpy(b->sha[s], r->str, 40);
    b->sha[s][40] = '\0';
    return true;
}

/* ---- Operation batches ---- */

struct osp_rq_ops {
    struct rq_field *f; /* RQ_OP_FIELDS per op */
    size_t nops;
    size_t cap;        /* ops allocated */
    bool needs_worker; /* holds an op that works on the processing list */
    char bad[160];     /* first invalid op, "" when all are valid */
};

struct osp_rq_ops *osp_rq_ops_new(void)
{
    return osp_xcalloc(1, sizeof(struct osp_rq_ops));
}

void osp_rq_ops_clear(struct osp_rq_ops *ops)
{
    for (size_t i = 0; i < ops->nops * RQ_OP_FIELDS; i++) {
        free(ops->f[i].p);
    }
    ops->nops = 0;
    ops->needs_worker = false;
    ops->bad[0] = '\0';
}

void osp_rq_ops_free(struct osp_rq_ops *ops)
{
    if (ops == NULL) {
        return;
    }
    osp_rq_ops_clear(ops);
    free(ops->f);
    free(ops);
}

size_t osp_rq_ops_count(const struct osp_rq_ops *ops)
{
    return ops->nops;
}

void rq_field_set(struct rq_field *f, const void *p, size_t n)
{
    f->p = osp_xmalloc(n + 1);
    if (n > 0) {
        memcpy(f->p, p, n);
    }
    f->p[n] = '\0';
    f->n = n;
}

static void field_seti(struct rq_field *f, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    rq_field_set(f, tmp, (size_t)n);
}

/* Append one op. Fields, as settle.lua reads them:
 *   enqueue  env, n1 = run_at_ms          start   env, n1 = lease deadline, n2 = attempt
 *   renew    n1 = lease deadline          ack     env, data = state, n1 = ttl_s
 *   retry    env = old, data = new, n1 = due_ms
 *   dead     env, data = dead record, n1 = ttl_s
 *   requeue  env
 *   lease    env, data = target, n1 = mode, n2 = max shared holders
 * A ttl_s <= 0 deletes the job hash at once (Redis EXPIRE semantics). */
static void rq_ops_add(struct osp_rq_ops *ops, const char *op, const char *kind, const char *id,
                       const void *env, size_t env_len, const void *data, size_t data_len,
                       int64_t n1, int64_t n2)
{
    size_t idx = ops->nops;
    if (ops->bad[0] == '\0') {
        if (!rq_kind_ok(kind)) {
            snprintf(ops->bad, sizeof(ops->bad), "op %zu (%s): invalid kind", idx, op);
        } else if (id == NULL ||
                   (id[0] == '\0' && (strcmp(op, "start") == 0 || strcmp(op, "renew") == 0 ||
                                      strcmp(op, "lease") == 0))) {
            /* start and renew name an in-flight entry; the others move an envelope and
             * accept "" for one that could not be decoded (no job hash is touched then). */
            snprintf(ops->bad, sizeof(ops->bad), "op %zu (%s): empty job id", idx, op);
        } else if (env == NULL && env_len > 0) {
            snprintf(ops->bad, sizeof(ops->bad), "op %zu (%s): NULL envelope", idx, op);
        }
    }
    if (ops->nops == ops->cap) {
        ops->cap = ops->cap ? ops->cap * 2 : 8;
        ops->f = osp_xrealloc(ops->f, ops->cap * RQ_OP_FIELDS * sizeof(*ops->f));
    }
    struct rq_field *f = ops->f + idx * RQ_OP_FIELDS;
    rq_field_set(&f[0], op, strlen(op));
    rq_field_set(&f[1], kind != NULL ? kind : "", kind != NULL ? strlen(kind) : 0);
    rq_field_set(&f[2], id != NULL ? id : "", id != NULL ? strlen(id) : 0);
    rq_field_set(&f[3], env, env != NULL ? env_len : 0);
    rq_field_set(&f[4], data, data != NULL ? data_len : 0);
    field_seti(&f[5], n1);
    field_seti(&f[6], n2);
    ops->nops++;
    if (strcmp(op, "enqueue") != 0 && strcmp(op, "renew") != 0) {
        ops->needs_worker = true;
    }
}

void osp_rq_op_enqueue(struct osp_rq_ops *ops, const char *kind, const char *id, const void *env,
                       size_t env_len, int64_t run_at_ms)
{
    rq_ops_add(ops, "enqueue", kind, id, env, env_len, NULL, 0, run_at_ms, 0);
}

void osp_rq_op_start(struct osp_rq_ops *ops, const char *kind, const char *id, unsigned attempt,
                     const void *env, size_t env_len, int64_t lease_deadline_ms)
{
    rq_ops_add(ops, "start", kind, id, env, env_len, NULL, 0, lease_deadline_ms, attempt);
}

void osp_rq_op_renew(struct osp_rq_ops *ops, const char *kind, const char *id,
                     int64_t lease_deadline_ms)
{
    rq_ops_add(ops, "renew", kind, id, NULL, 0, NULL, 0, lease_deadline_ms, 0);
}

void osp_rq_op_ack(struct osp_rq_ops *ops, const char *kind, const char *id, const void *env,
                   size_t env_len, const char *state, int ttl_s)
{
    const char *st = state != NULL ? state : "";
    rq_ops_add(ops, "ack", kind, id, env, env_len, st, strlen(st), ttl_s, 0);
    if (strcmp(st, "succeeded") != 0 && strcmp(st, "failed") != 0 && strcmp(st, "cancelled") != 0 &&
        ops->bad[0] == '\0') {
        snprintf(ops->bad, sizeof(ops->bad),
                 "op %zu (ack): state must be succeeded, failed or cancelled", ops->nops - 1);
    }
}

void osp_rq_op_retry(struct osp_rq_ops *ops, const char *kind, const char *id, const void *old_env,
                     size_t old_len, const void *new_env, size_t new_len, int64_t due_ms)
{
    rq_ops_add(ops, "retry", kind, id, old_env, old_len, new_env, new_len, due_ms, 0);
}

void osp_rq_op_dead(struct osp_rq_ops *ops, const char *kind, const char *id, const void *env,
                    size_t env_len, const void *dead_rec, size_t dead_len, int ttl_s)
{
    rq_ops_add(ops, "dead", kind, id, env, env_len, dead_rec, dead_len, ttl_s, 0);
}

void osp_rq_op_requeue(struct osp_rq_ops *ops, const char *kind, const char *id, const void *env,
                       size_t env_len)
{
    rq_ops_add(ops, "requeue", kind, id, env, env_len, NULL, 0, 0, 0);
}

void osp_rq_op_lease(struct osp_rq_ops *ops, const char *kind, const char *id, const void *env,
                     size_t env_len, const char *target, enum osp_lease_mode mode, int max_shared)
{
    const char *t = target != NULL ? target : "";
    rq_ops_add(ops, "lease", kind, id, env, env_len, t, strlen(t), mode, max_shared);
    if (ops->bad[0] == '\0' &&
        ((mode != OSP_LEASE_EXCLUSIVE && mode != OSP_LEASE_SHARED) || t[0] == '\0' ||
         strlen(t) > 128 || strchr(t, '|') != NULL || max_shared < 0)) {
        snprintf(ops->bad, sizeof(ops->bad),
                 "op %zu (lease): a target name and the mode exclusive or shared required",
                 ops->nops - 1);
    }
}

/* Check a batch against the client before any command is built. */
int rq_ops_check(const struct rq_base *b, const struct osp_rq_ops *ops, struct osp_err *err)
{
    if (ops->nops == 0) {
        return osp_err_set(err, OSP_EINVAL, "rq apply: empty batch");
    }
    if (ops->bad[0] != '\0') {
        return osp_err_set(err, OSP_EINVAL, "rq apply: %s", ops->bad);
    }
    if (ops->needs_worker && b->worker_id == NULL) {
        return osp_err_set(err, OSP_EINVAL, "rq apply: ops on a processing list need a worker_id");
    }
    return 0;
}

/* ---- Tasks ---- */

void rq_task_init(struct rq_task *t, enum rq_task_type type, struct rq_base *b)
{
    memset(t, 0, sizeof(*t));
    t->type = type;
    t->base = b;
    t->cmd.script = -1;
    t->saved.script = -1;
}

void rq_task_deinit(struct rq_task *t)
{
    rq_cmd_deinit(&t->cmd);
    rq_cmd_deinit(&t->saved);
    free(t->results);
    for (size_t i = 0; i < t->nkinds; i++) {
        free(t->kinds[i]);
    }
    free(t->kinds);
    free(t->items);
    rq_reap_free(t->reap);
    osp_buf_deinit(&t->oldest);
    memset(t, 0, sizeof(*t));
}

int rq_task_fail(struct rq_task *t, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->errmsg, sizeof(t->errmsg), fmt, ap);
    va_end(ap);
    t->status = code;
    return RQ_DONE;
}

/* A reply that is not what the task expected: a Redis error or a shape mismatch. */
int rq_task_bad_reply(struct rq_task *t, const char *what, const redisReply *r)
{
    if (r == NULL) {
        return rq_task_fail(t, OSP_EREDIS, "%s: connection lost", what);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        return rq_task_fail(t, OSP_EREDIS, "%s: %.*s", what, (int)r->len, r->str);
    }
    return rq_task_fail(t, OSP_EPROTO, "%s: unexpected reply type %d", what, r->type);
}

static void task_set_kinds(struct rq_task *t, const char *const *kinds, size_t n)
{
    t->kinds = osp_xcalloc(n, sizeof(*t->kinds));
    for (size_t i = 0; i < n; i++) {
        t->kinds[i] = osp_xstrdup(kinds[i]);
    }
    t->nkinds = n;
}

/* -- load -- */

static int load_step(struct rq_task *t, const redisReply *r)
{
    if (r != NULL || t->load_next > 0) {
        if (!rq_store_sha(t->base, (enum rq_script)(t->load_next - 1), r)) {
            return rq_task_bad_reply(t, "SCRIPT LOAD", r);
        }
    }
    if (t->load_next == RQ_NSCRIPTS) {
        return RQ_DONE;
    }
    rq_cmd_script_load(&t->cmd, (enum rq_script)t->load_next);
    t->load_next++;
    return RQ_MORE;
}

/* -- apply -- */

void rq_apply_build(struct rq_task *t, const struct osp_rq_ops *ops)
{
    const struct rq_base *b = t->base;
    struct rq_cmd *c = &t->cmd;
    rq_cmd_evalsha(c, b, RQ_SETTLE);
    if (b->worker_id != NULL) {
        rq_cmd_addf(c, "%s:processing:%s", b->prefix, b->worker_id);
    } else {
        rq_cmd_addf(c, "%s:delayed", b->prefix);
    }
    rq_cmd_adds(c, b->prefix);
    rq_cmd_adds(c, b->worker_id != NULL ? b->worker_id : "");
    rq_cmd_addi(c, osp_now_ms());
    for (size_t i = 0; i < ops->nops * RQ_OP_FIELDS; i++) {
        rq_cmd_add(c, ops->f[i].p, ops->f[i].n);
    }
    t->nops = ops->nops;
}

static int apply_done(struct rq_task *t, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != t->nops) {
        return rq_task_bad_reply(t, "settle", r);
    }
    t->results = osp_xcalloc(t->nops, sizeof(*t->results));
    for (size_t i = 0; i < t->nops; i++) {
        if (!rq_reply_int(r->element[i], &t->results[i])) {
            return rq_task_bad_reply(t, "settle result", r->element[i]);
        }
    }
    return RQ_DONE;
}

/* -- fetch -- */

static void fetch_build(struct rq_task *t, size_t max, size_t start)
{
    const struct rq_base *b = t->base;
    struct rq_cmd *c = &t->cmd;
    rq_cmd_evalsha(c, b, RQ_FETCH);
    rq_cmd_addf(c, "%s:processing:%s", b->prefix, b->worker_id);
    rq_cmd_adds(c, b->prefix);
    rq_cmd_addi(c, (int64_t)max);
    rq_cmd_addi(c, (int64_t)start);
    for (size_t i = 0; i < t->nkinds; i++) {
        rq_cmd_adds(c, t->kinds[i]);
    }
}

static int fetch_done(struct rq_task *t, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->elements % 2 != 1 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len != t->nkinds) {
        return rq_task_bad_reply(t, "fetch", r);
    }
    for (size_t i = 0; i < t->nkinds; i++) {
        if (r->element[0]->str[i] == '1') {
            t->paused |= UINT64_C(1) << i;
        }
    }
    size_t n = (r->elements - 1) / 2;
    t->items = osp_xcalloc(n > 0 ? n : 1, sizeof(*t->items));
    for (size_t i = 0; i < n; i++) {
        const redisReply *ki = r->element[1 + 2 * i];
        const redisReply *env = r->element[2 + 2 * i];
        int64_t k;
        if (!rq_reply_int(ki, &k) || k < 0 || (size_t)k >= t->nkinds ||
            env->type != REDIS_REPLY_STRING) {
            return rq_task_bad_reply(t, "fetch item", env);
        }
        t->items[i].kind = t->kinds[k];
        t->items[i].env = (const uint8_t *)env->str;
        t->items[i].env_len = env->len;
    }
    t->nitems = n;
    return RQ_DONE;
}

/* -- fetch_wait -- */

static void wait_build(struct rq_task *t, int timeout_ms)
{
    const struct rq_base *b = t->base;
    struct rq_cmd *c = &t->cmd;
    rq_cmd_clear(c);
    rq_cmd_adds(c, "BLMOVE");
    rq_cmd_addf(c, "%s:queue:%s", b->prefix, t->kinds[0]);
    rq_cmd_addf(c, "%s:processing:%s", b->prefix, b->worker_id);
    rq_cmd_adds(c, "RIGHT");
    rq_cmd_adds(c, "LEFT");
    rq_cmd_addf(c, "%d.%03d", timeout_ms / 1000, timeout_ms % 1000);
}

static int wait_done(struct rq_task *t, const redisReply *r)
{
    if (r->type == REDIS_REPLY_NIL) {
        return RQ_DONE;
    }
    if (r->type != REDIS_REPLY_STRING) {
        return rq_task_bad_reply(t, "BLMOVE", r);
    }
    t->items = osp_xcalloc(1, sizeof(*t->items));
    t->items[0].kind = t->kinds[0];
    t->items[0].env = (const uint8_t *)r->str;
    t->items[0].env_len = r->len;
    t->nitems = 1;
    return RQ_DONE;
}

/* -- held: what this worker's processing list holds -- */

static void held_build(struct rq_task *t)
{
    const struct rq_base *b = t->base;
    struct rq_cmd *c = &t->cmd;
    rq_cmd_clear(c);
    rq_cmd_adds(c, "LRANGE");
    rq_cmd_addf(c, "%s:processing:%s", b->prefix, b->worker_id);
    rq_cmd_adds(c, "0");
    rq_cmd_adds(c, "-1");
}

static int held_done(struct rq_task *t, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY) {
        return rq_task_bad_reply(t, "LRANGE", r);
    }
    size_t n = r->elements;
    t->items = osp_xcalloc(n > 0 ? n : 1, sizeof(*t->items));
    for (size_t i = 0; i < n; i++) {
        const redisReply *env = r->element[i];
        if (env->type != REDIS_REPLY_STRING) {
            return rq_task_bad_reply(t, "LRANGE item", env);
        }
        t->items[i].kind = ""; /* the list mixes kinds; the caller peeks each envelope */
        t->items[i].env = (const uint8_t *)env->str;
        t->items[i].env_len = env->len;
    }
    t->nitems = n;
    return RQ_DONE;
}

/* -- heartbeat, forget, promote: one script, one integer -- */

static int heartbeat_build(struct rq_task *t, const char *const *fields)
{
    const struct rq_base *b = t->base;
    struct rq_cmd *c = &t->cmd;
    /* P:worker:<id> outlives 10 leases; the lease is the "lease_ms" field when the worker
     * reports one, else the default 30 s. */
    int64_t ttl_s = RQ_WORKER_TTL_S;
    size_t nf = 0;
    while (fields != NULL && fields[nf] != NULL) {
        if (fields[nf + 1] == NULL) {
            return rq_task_fail(t, OSP_EINVAL, "heartbeat: fields must be name/value pairs");
        }
        if (strcmp(fields[nf], "lease_ms") == 0) {
            long long lease = strtoll(fields[nf + 1], NULL, 10);
            if (lease > 0) {
                ttl_s = (lease * 10 + 999) / 1000;
            }
        }
        nf += 2;
    }
    rq_cmd_evalsha(c, b, RQ_HEARTBEAT);
    rq_cmd_addf(c, "%s:workers", b->prefix);
    rq_cmd_adds(c, b->prefix);
    rq_cmd_adds(c, b->worker_id);
    rq_cmd_addi(c, osp_now_ms());
    rq_cmd_addi(c, ttl_s);
    for (size_t i = 0; i < nf; i++) {
        rq_cmd_adds(c, fields[i]);
    }
    return RQ_MORE;
}

void rq_forget_build(struct rq_task *t, const char *worker, const char *cutoff)
{
    const struct rq_base *b = t->base;
    struct rq_cmd *c = &t->cmd;
    rq_cmd_evalsha(c, b, RQ_FORGET);
    rq_cmd_addf(c, "%s:processing:%s", b->prefix, worker);
    rq_cmd_adds(c, b->prefix);
    rq_cmd_adds(c, worker);
    rq_cmd_adds(c, cutoff);
}

void rq_promote_build(struct rq_task *t, int64_t now_ms, int max)
{
    const struct rq_base *b = t->base;
    struct rq_cmd *c = &t->cmd;
    rq_cmd_evalsha(c, b, RQ_PROMOTE);
    rq_cmd_addf(c, "%s:delayed", b->prefix);
    rq_cmd_adds(c, b->prefix);
    rq_cmd_addi(c, now_ms);
    rq_cmd_addi(c, max);
}

static int count_done(struct rq_task *t, const char *what, const redisReply *r)
{
    if (!rq_reply_int(r, &t->count)) {
        return rq_task_bad_reply(t, what, r);
    }
    return RQ_DONE;
}

/* -- stats -- */

void rq_stats_build(struct rq_task *t, const char *kind)
{
    const struct rq_base *b = t->base;
    struct rq_cmd *c = &t->cmd;
    rq_cmd_evalsha(c, b, RQ_STATS);
    rq_cmd_addf(c, "%s:queue:%s", b->prefix, kind);
    rq_cmd_adds(c, b->prefix);
    rq_cmd_adds(c, kind);
    rq_cmd_addi(c, RQ_STATS_SCAN);
}

static int stats_done(struct rq_task *t, const redisReply *r)
{
    int64_t v[5];
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 7) {
        return rq_task_bad_reply(t, "stats", r);
    }
    if (!rq_reply_int(r->element[6], &t->stats.waiting)) {
        return rq_task_bad_reply(t, "stats", r->element[6]);
    }
    for (size_t i = 0; i < 5; i++) {
        if (!rq_reply_int(r->element[i], &v[i])) {
            return rq_task_bad_reply(t, "stats", r->element[i]);
        }
    }
    t->stats.pending = v[0];
    t->stats.running = v[1];
    t->stats.delayed = v[2];
    t->stats.dead = v[3];
    t->stats.paused = v[4] != 0;
    if (r->element[5]->type == REDIS_REPLY_STRING) {
        osp_buf_append(&t->oldest, r->element[5]->str, r->element[5]->len);
    }
    return RQ_DONE;
}

/* -- the shared reply path -- */

bool rq_is_noscript(const redisReply *r)
{
    return reply_is_error(r) && r->len >= 8 && memcmp(r->str, "NOSCRIPT", 8) == 0;
}

/* Feed the reply to t->cmd. Returns RQ_MORE with t->cmd set to the next command, or
 * RQ_DONE with t->status set. */
int rq_task_feed(struct rq_task *t, const redisReply *r)
{
    if (r == NULL) {
        t->lost = true;
        return rq_task_fail(t, OSP_EREDIS, "connection lost");
    }
    if (t->reloading) {
        enum rq_script s = (enum rq_script)t->saved.script;
        t->reloading = false;
        if (!rq_store_sha(t->base, s, r)) {
            return rq_task_bad_reply(t, "SCRIPT LOAD", r);
        }
        cmd_swap(&t->cmd, &t->saved);
        rq_cmd_clear(&t->saved);
        /* The sha of a script never changes, but take the server's word for it. */
        free(t->cmd.own[1]);
        t->cmd.own[1] = osp_xstrdup(t->base->sha[s]);
        t->cmd.argv[1] = t->cmd.own[1];
        t->cmd.lens[1] = 40;
        return RQ_MORE;
    }
    if (rq_is_noscript(r) && t->cmd.script >= 0 && !t->reloaded) {
        t->reloaded = true;
        t->reloading = true;
        int s = t->cmd.script;
        cmd_swap(&t->cmd, &t->saved);
        rq_cmd_script_load(&t->cmd, (enum rq_script)s);
        return RQ_MORE;
    }
    t->reloaded = false;
    if (t->type == RQ_T_LOAD) {
        return load_step(t, r);
    }
    if (reply_is_error(r)) {
        return rq_task_bad_reply(t, t->cmd.argc > 0 ? t->cmd.argv[0] : "command", r);
    }
    switch (t->type) {
    case RQ_T_APPLY:
        return apply_done(t, r);
    case RQ_T_FETCH:
        return fetch_done(t, r);
    case RQ_T_WAIT:
        return wait_done(t, r);
    case RQ_T_HEARTBEAT:
        return count_done(t, "heartbeat", r);
    case RQ_T_FORGET:
        return count_done(t, "unregister", r);
    case RQ_T_PROMOTE:
        return count_done(t, "promote", r);
    case RQ_T_REAP:
        return rq_reap_step(t, r);
    case RQ_T_STATS:
        return stats_done(t, r);
    case RQ_T_HELD:
        return held_done(t, r);
    case RQ_T_LOAD:
        break;
    }
    return rq_task_fail(t, OSP_EPROTO, "unknown task");
}

/* ---- Asynchronous client ---- */

struct rq_req {
    struct rq_req *prev, *next; /* rq->reqs, while the request may still call back */
    struct osp_rq *rq;          /* NULL once cancelled by osp_rq_free */
    struct osp_redis *conn;     /* the connection its commands go to */
    struct rq_task task;
    osp_rq_items_cb *items_cb;
    osp_rq_apply_cb *apply_cb;
    osp_rq_count_cb *count_cb;
    osp_rq_reap_cb *reap_cb;
    void *arg;
};

struct osp_rq {
    struct rq_base base;
    struct ev_loop *loop;
    struct osp_redis *cmd; /* pipelined commands and scripts */
    struct osp_redis *blk; /* BLMOVE only */
    bool scripts_loaded;   /* on the current cmd connection */
    bool ready;            /* last state reported */
    bool closing;          /* inside osp_rq_free */
    osp_rq_state_cb *state_cb;
    void *state_arg;
    struct rq_req *reqs; /* requests that may still call back */
    struct rq_req *wait; /* the outstanding fetch_wait, if any */
    size_t rr;           /* fetch rotation */
    uint64_t errors;
    char last_err[256];
};

static void rq_update_ready(struct osp_rq *rq)
{
    bool ready =
        !rq->closing && rq->scripts_loaded && osp_redis_is_up(rq->cmd) && osp_redis_is_up(rq->blk);
    if (ready == rq->ready) {
        return;
    }
    rq->ready = ready;
    if (rq->state_cb != NULL) {
        rq->state_cb(rq, ready, rq->state_arg); /* last: the callback may free rq */
    }
}

static void rq_link(struct osp_rq *rq, struct rq_req *q)
{
    q->prev = NULL;
    q->next = rq->reqs;
    if (rq->reqs != NULL) {
        rq->reqs->prev = q;
    }
    rq->reqs = q;
}

static void rq_unlink(struct osp_rq *rq, struct rq_req *q)
{
    if (q->prev != NULL) {
        q->prev->next = q->next;
    } else if (rq->reqs == q) {
        rq->reqs = q->next;
    }
    if (q->next != NULL) {
        q->next->prev = q->prev;
    }
    q->prev = q->next = NULL;
    if (rq->wait == q) {
        rq->wait = NULL;
    }
}

static void req_free(struct rq_req *q)
{
    rq_task_deinit(&q->task);
    free(q);
}

/* Call the user back with the task's outcome (or `status` when non-zero). */
static void req_call(struct osp_rq *rq, struct rq_req *q, int status)
{
    struct rq_task *t = &q->task;
    if (status == 0) {
        status = t->status;
    }
    if (q->reap_cb != NULL) {
        size_t n = 0;
        const struct osp_rq_recovery *recs = rq_reap_recs(t, &n);
        q->reap_cb(rq, status, recs, n, q->arg);
        return;
    }
    if (status != 0) {
        if (q->items_cb != NULL) {
            q->items_cb(rq, status, NULL, 0, 0, q->arg);
        } else if (q->apply_cb != NULL) {
            q->apply_cb(rq, status, NULL, 0, q->arg);
        } else if (q->count_cb != NULL) {
            q->count_cb(rq, status, 0, q->arg);
        }
        return;
    }
    if (q->items_cb != NULL) {
        q->items_cb(rq, 0, t->items, t->nitems, t->paused, q->arg);
    } else if (q->apply_cb != NULL) {
        q->apply_cb(rq, 0, t->results, t->nops, q->arg);
    } else if (q->count_cb != NULL) {
        q->count_cb(rq, 0, t->count, q->arg);
    }
}

static void rq_note_error(struct osp_rq *rq, const char *msg)
{
    rq->errors++;
    snprintf(rq->last_err, sizeof(rq->last_err), "%s", msg);
}

static void rq_scripts_loaded(struct osp_rq *rq, struct rq_req *q);

static void req_on_reply(struct osp_redis *conn, redisReply *reply, void *arg)
{
    struct rq_req *q = arg;
    struct osp_rq *rq = q->rq;
    if (rq == NULL) {
        req_free(q); /* cancelled by osp_rq_free: its callback already ran */
        return;
    }
    struct rq_task *t = &q->task;
    if (rq_task_feed(t, reply) == RQ_MORE) {
        if (osp_redis_command(conn, t->cmd.argc, t->cmd.argv, t->cmd.lens, req_on_reply, q) == 0) {
            return;
        }
        rq_task_fail(t, OSP_EREDIS, "%s", osp_redis_last_error(conn));
    }
    rq_unlink(rq, q);
    if (t->status != 0) {
        rq_note_error(rq, t->errmsg);
    }
    if (t->type == RQ_T_LOAD) {
        rq_scripts_loaded(rq, q);
        req_free(q);
        return;
    }
    req_call(rq, q, 0);
    req_free(q);
}

/* Start a request on conn; returns 0 or OSP_EREDIS (nothing will call back). */
static int rq_start(struct osp_rq *rq, struct rq_req *q, struct osp_redis *conn)
{
    q->rq = rq;
    q->conn = conn;
    struct rq_task *t = &q->task;
    if (osp_redis_command(conn, t->cmd.argc, t->cmd.argv, t->cmd.lens, req_on_reply, q) != 0) {
        rq_note_error(rq, osp_redis_last_error(conn));
        req_free(q);
        return OSP_EREDIS;
    }
    rq_link(rq, q);
    return 0;
}

static void rq_scripts_loaded(struct osp_rq *rq, struct rq_req *q)
{
    if (q->task.status != 0) {
        if (q->task.lost) {
            return; /* the connection is already going; its reconnect loads them again */
        }
        /* Without scripts the client is useless: drop the connection and try again
         * after the backoff (e.g. an ACL that forbids SCRIPT, or a server still loading). */
        osp_redis_reset(rq->cmd, q->task.errmsg);
        return;
    }
    rq->scripts_loaded = true;
    rq_update_ready(rq);
}

static void rq_on_conn_state(struct osp_redis *conn, bool up, void *arg)
{
    struct osp_rq *rq = arg;
    if (conn == rq->cmd) {
        rq->scripts_loaded = false;
        if (up) {
            struct rq_req *q = osp_xcalloc(1, sizeof(*q));
            rq_task_init(&q->task, RQ_T_LOAD, &rq->base);
            load_step(&q->task, NULL);
            if (rq_start(rq, q, conn) != 0) {
                osp_redis_reset(conn, "cannot send SCRIPT LOAD");
            }
        }
    }
    rq_update_ready(rq);
}

struct osp_rq *osp_rq_new(struct ev_loop *loop, const struct osp_rq_opts *opts, struct osp_err *err)
{
    struct osp_rq *rq = osp_xcalloc(1, sizeof(*rq));
    struct osp_redis_url url;
    if (rq_base_init(&rq->base, opts, err) != 0) {
        goto fail;
    }
    if (osp_redis_url_parse(opts->url, &url, err) != 0) {
        goto fail;
    }
    osp_redis_url_set_auth(&url, opts->username, opts->password);
    if (osp_redis_url_set_sentinels(&url, opts->sentinels, opts->sentinel_master,
                                    opts->sentinel_username, opts->sentinel_password, err) != 0) {
        osp_redis_url_deinit(&url);
        goto fail;
    }
    rq->loop = loop;
    rq->cmd = osp_redis_new(loop, &url, "commands", rq_on_conn_state, rq);
    rq->blk = osp_redis_new(loop, &url, "blocking", rq_on_conn_state, rq);
    osp_redis_url_deinit(&url);
    return rq;
fail:
    rq_base_deinit(&rq->base);
    free(rq);
    return NULL;
}

void osp_rq_free(struct osp_rq *rq)
{
    if (rq == NULL) {
        return;
    }
    rq->closing = true;
    rq->state_cb = NULL;
    /* Cancel: every request still linked gets its callback now; its memory stays until
     * hiredis hands back its (NULL) reply below or later. */
    while (rq->reqs != NULL) {
        struct rq_req *q = rq->reqs;
        rq_unlink(rq, q);
        q->rq = NULL;
        req_call(rq, q, OSP_ECANCELED);
    }
    osp_redis_free(rq->cmd);
    osp_redis_free(rq->blk);
    rq_base_deinit(&rq->base);
    free(rq);
}

void osp_rq_set_state_cb(struct osp_rq *rq, osp_rq_state_cb *cb, void *arg)
{
    rq->state_cb = cb;
    rq->state_arg = arg;
}

bool osp_rq_is_ready(const struct osp_rq *rq)
{
    return !rq->closing && rq->scripts_loaded && osp_redis_is_up(rq->cmd) &&
           osp_redis_is_up(rq->blk);
}

const char *osp_rq_last_error(const struct osp_rq *rq)
{
    if (!osp_rq_is_ready(rq)) {
        const char *e = osp_redis_last_error(rq->cmd);
        if (e[0] == '\0') {
            e = osp_redis_last_error(rq->blk);
        }
        if (e[0] != '\0') {
            return e;
        }
    }
    return rq->last_err;
}

uint64_t osp_rq_error_count(const struct osp_rq *rq)
{
    return rq->errors + osp_redis_error_count(rq->cmd) + osp_redis_error_count(rq->blk);
}

const char *osp_rq_endpoint(const struct osp_rq *rq)
{
    return osp_redis_endpoint(rq->cmd);
}

uint64_t osp_rq_master_changes(const struct osp_rq *rq)
{
    return osp_redis_master_changes(rq->cmd);
}

/* Common entry checks; returns 0 or the code to return (no callback). */
static int rq_check(struct osp_rq *rq, const char *what, bool needs_worker)
{
    if (rq->closing) {
        return OSP_ECANCELED;
    }
    if (needs_worker && rq->base.worker_id == NULL) {
        snprintf(rq->last_err, sizeof(rq->last_err), "%s: needs a worker_id", what);
        return OSP_EINVAL;
    }
    if (!osp_rq_is_ready(rq)) {
        char why[sizeof(rq->last_err)];
        snprintf(why, sizeof(why), "%s", osp_rq_last_error(rq));
        rq->errors++;
        snprintf(rq->last_err, sizeof(rq->last_err), "%s: not connected (%.200s)", what, why);
        return OSP_EREDIS;
    }
    return 0;
}

static struct rq_req *rq_req_new(struct osp_rq *rq, enum rq_task_type type)
{
    struct rq_req *q = osp_xcalloc(1, sizeof(*q));
    rq_task_init(&q->task, type, &rq->base);
    return q;
}

int osp_rq_fetch(struct osp_rq *rq, const char *const *kinds, size_t nkinds, size_t max,
                 osp_rq_items_cb *cb, void *arg)
{
    if (cb == NULL || kinds == NULL || nkinds == 0 || nkinds > RQ_MAX_FETCH_KINDS || max == 0) {
        return OSP_EINVAL;
    }
    for (size_t i = 0; i < nkinds; i++) {
        if (!rq_kind_ok(kinds[i])) {
            return OSP_EINVAL;
        }
    }
    int rc = rq_check(rq, "fetch", true);
    if (rc != 0) {
        return rc;
    }
    struct rq_req *q = rq_req_new(rq, RQ_T_FETCH);
    task_set_kinds(&q->task, kinds, nkinds);
    fetch_build(&q->task, max, rq->rr++ % nkinds);
    q->items_cb = cb;
    q->arg = arg;
    return rq_start(rq, q, rq->cmd);
}

/* timeout_ms == 0 blocks until an envelope arrives (BLMOVE's own meaning of 0). */
int osp_rq_fetch_wait(struct osp_rq *rq, const char *kind, int timeout_ms, osp_rq_items_cb *cb,
                      void *arg)
{
    if (cb == NULL || !rq_kind_ok(kind) || timeout_ms < 0) {
        return OSP_EINVAL;
    }
    if (rq->wait != NULL) {
        return OSP_ECONFLICT;
    }
    int rc = rq_check(rq, "fetch_wait", true);
    if (rc != 0) {
        return rc;
    }
    struct rq_req *q = rq_req_new(rq, RQ_T_WAIT);
    task_set_kinds(&q->task, &kind, 1);
    wait_build(&q->task, timeout_ms);
    q->items_cb = cb;
    q->arg = arg;
    rc = rq_start(rq, q, rq->blk);
    if (rc == 0) {
        rq->wait = q;
    }
    return rc;
}

int osp_rq_held(struct osp_rq *rq, osp_rq_items_cb *cb, void *arg)
{
    if (cb == NULL) {
        return OSP_EINVAL;
    }
    int rc = rq_check(rq, "held", true);
    if (rc != 0) {
        return rc;
    }
    struct rq_req *q = rq_req_new(rq, RQ_T_HELD);
    held_build(&q->task);
    q->items_cb = cb;
    q->arg = arg;
    return rq_start(rq, q, rq->cmd);
}

int osp_rq_apply(struct osp_rq *rq, const struct osp_rq_ops *ops, osp_rq_apply_cb *cb, void *arg)
{
    struct osp_err err = {0};
    if (cb == NULL || ops == NULL) {
        return OSP_EINVAL;
    }
    if (rq_ops_check(&rq->base, ops, &err) != 0) {
        snprintf(rq->last_err, sizeof(rq->last_err), "%s", err.msg);
        return err.code;
    }
    int rc = rq_check(rq, "apply", false);
    if (rc != 0) {
        return rc;
    }
    struct rq_req *q = rq_req_new(rq, RQ_T_APPLY);
    rq_apply_build(&q->task, ops);
    q->apply_cb = cb;
    q->arg = arg;
    return rq_start(rq, q, rq->cmd);
}

int osp_rq_heartbeat(struct osp_rq *rq, const char *const *fields, osp_rq_count_cb *cb, void *arg)
{
    if (cb == NULL) {
        return OSP_EINVAL;
    }
    int rc = rq_check(rq, "heartbeat", true);
    if (rc != 0) {
        return rc;
    }
    struct rq_req *q = rq_req_new(rq, RQ_T_HEARTBEAT);
    if (heartbeat_build(&q->task, fields) != RQ_MORE) {
        snprintf(rq->last_err, sizeof(rq->last_err), "%s", q->task.errmsg);
        rc = q->task.status;
        req_free(q);
        return rc;
    }
    q->count_cb = cb;
    q->arg = arg;
    return rq_start(rq, q, rq->cmd);
}

int osp_rq_unregister(struct osp_rq *rq, osp_rq_count_cb *cb, void *arg)
{
    if (cb == NULL) {
        return OSP_EINVAL;
    }
    int rc = rq_check(rq, "unregister", true);
    if (rc != 0) {
        return rc;
    }
    struct rq_req *q = rq_req_new(rq, RQ_T_FORGET);
    rq_forget_build(&q->task, rq->base.worker_id, "");
    q->count_cb = cb;
    q->arg = arg;
    return rq_start(rq, q, rq->cmd);
}

int osp_rq_promote(struct osp_rq *rq, int64_t now_ms, int max, osp_rq_count_cb *cb, void *arg)
{
    if (cb == NULL || max <= 0) {
        return OSP_EINVAL;
    }
    int rc = rq_check(rq, "promote", false);
    if (rc != 0) {
        return rc;
    }
    struct rq_req *q = rq_req_new(rq, RQ_T_PROMOTE);
    rq_promote_build(&q->task, now_ms, max);
    q->count_cb = cb;
    q->arg = arg;
    return rq_start(rq, q, rq->cmd);
}

int osp_rq_reap(struct osp_rq *rq, int lease_ms, int max_recoveries, osp_rq_reap_cb *cb, void *arg)
{
    if (cb == NULL || lease_ms <= 0 || max_recoveries < 0) {
        return OSP_EINVAL;
    }
    int rc = rq_check(rq, "reap", false);
    if (rc != 0) {
        return rc;
    }
    struct rq_req *q = rq_req_new(rq, RQ_T_REAP);
    rq_reap_begin(&q->task, lease_ms, max_recoveries);
    q->reap_cb = cb;
    q->arg = arg;
    return rq_start(rq, q, rq->cmd);
}

int osp_rq_reclaim_own(struct osp_rq *rq, int max_recoveries, osp_rq_reap_cb *cb, void *arg)
{
    if (cb == NULL || max_recoveries < 0) {
        return OSP_EINVAL;
    }
    int rc = rq_check(rq, "reclaim", true);
    if (rc != 0) {
        return rc;
    }
    struct rq_req *q = rq_req_new(rq, RQ_T_REAP);
    rq_reap_begin_own(&q->task, max_recoveries);
    q->reap_cb = cb;
    q->arg = arg;
    return rq_start(rq, q, rq->cmd);
}
