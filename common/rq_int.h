/* SPDX-License-Identifier: MIT */
/* rq_int.h — shared between rq.c (the clients and the pool's scripts) and rq_admin.c (the
 * control-plane operations on the sync client). Not for use outside those two files. */
#ifndef OSP_RQ_INT_H
#define OSP_RQ_INT_H

#include "common/rq.h"

#include "common/base.h"
#include "common/buf.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The Lua scripts (common/lua/<name>.lua), loaded with SCRIPT LOAD, called with EVALSHA. */
enum rq_script {
    RQ_SETTLE,
    RQ_FETCH,
    RQ_HEARTBEAT,
    RQ_FORGET,
    RQ_PROMOTE,
    RQ_RECLAIM,
    RQ_SWEEP,
    RQ_STATS,
    RQ_CANCEL, /* control-plane scripts (rq_admin.c) */
    RQ_REQUEUE,
    RQ_PURGE,
    RQ_NSCRIPTS
};

/* EVALSHA script (one of the control-plane scripts, RQ_CANCEL and after) on the sync client
 * with KEYS[1] = key and ARGV = args (lens may be NULL for text); NOSCRIPT reloads once. The
 * reply as JSON (owned), or NULL with err. */
json_t *rqs_script(struct osp_rqs *c, int script, const char *key, int nargs, const char **args,
                   const size_t *lens, struct osp_err *err);

/* ---- Internals shared by rq.c (tasks, the async client), rq_reap.c (the reaper) and rq_sync.c
 * (the sync client) ---- */

/* A command: binary-safe argv with owned copies. */
struct rq_cmd {
    int argc;
    int cap;
    char **own;        /* owned copies */
    const char **argv; /* the same pointers, in the type hiredis takes */
    size_t *lens;
    int script; /* enum rq_script for EVALSHA (argv[1] is the sha), -1 otherwise */
};

/* State shared by both clients. */
struct rq_base {
    char *prefix;              /* owned, e.g. "{opspool}" */
    char *worker_id;           /* owned, NULL for non-workers */
    char sha[RQ_NSCRIPTS][41]; /* from SCRIPT LOAD */
    int64_t last_sweep_ms;     /* last in-flight sweep of the reaper */
};

enum rq_task_type {
    RQ_T_LOAD,      /* SCRIPT LOAD every script (async connect) */
    RQ_T_APPLY,     /* settle.lua */
    RQ_T_FETCH,     /* fetch.lua */
    RQ_T_WAIT,      /* BLMOVE */
    RQ_T_HEARTBEAT, /* heartbeat.lua */
    RQ_T_FORGET,    /* forget.lua, unconditional (unregister) */
    RQ_T_PROMOTE,   /* promote.lua */
    RQ_T_REAP,      /* the reaper loop */
    RQ_T_STATS,     /* stats.lua */
    RQ_T_HELD,      /* LRANGE of this worker's processing list */
};

enum { RQ_DONE = 0, RQ_MORE = 1 };

struct rq_reap;
/* An operation as a small state machine: the command to send next, and what its replies
 * fill in. */
struct rq_task {
    enum rq_task_type type;
    struct rq_base *base; /* borrowed: prefix, worker id, script shas */
    struct rq_cmd cmd;    /* the command to send next */
    struct rq_cmd saved;  /* the EVALSHA waiting for its script to be reloaded */
    bool reloading;       /* cmd is the SCRIPT LOAD for `saved` */
    bool reloaded;        /* NOSCRIPT already handled for the current EVALSHA */
    int status;
    bool lost; /* failed because the connection went away */
    char errmsg[256];
    /* apply */
    size_t nops;
    int64_t *results; /* owned, nops entries */
    /* fetch / wait */
    char **kinds; /* owned copies */
    size_t nkinds;
    struct osp_rq_item *items; /* owned array; env borrowed from the reply being fed */
    size_t nitems;
    uint64_t paused;
    /* counts: heartbeat, forget, promote, reap */
    int64_t count;
    /* load */
    int load_next;
    /* reap */
    struct rq_reap *reap;
    /* stats */
    struct osp_rq_stats stats;
    struct osp_buf oldest; /* copy of the right-most pending envelope */
};

int rq_base_init(struct rq_base *b, const struct osp_rq_opts *o, struct osp_err *err);
void rq_base_deinit(struct rq_base *b);
bool rq_kind_ok(const char *k);
int rq_ops_check(const struct rq_base *b, const struct osp_rq_ops *ops, struct osp_err *err);
bool rq_store_sha(struct rq_base *b, enum rq_script s, const redisReply *r);
bool rq_is_noscript(const redisReply *r);
void rq_cmd_add(struct rq_cmd *c, const void *p, size_t n);
void rq_cmd_adds(struct rq_cmd *c, const char *s);
void rq_cmd_deinit(struct rq_cmd *c);
void rq_cmd_evalsha(struct rq_cmd *c, const struct rq_base *b, enum rq_script s);
void rq_cmd_script_load(struct rq_cmd *c, enum rq_script s);
void rq_task_init(struct rq_task *t, enum rq_task_type type, struct rq_base *b);
void rq_task_deinit(struct rq_task *t);
/* Feed one reply: RQ_MORE (t->cmd holds the next command) or RQ_DONE (t->status). */
int rq_task_feed(struct rq_task *t, const redisReply *r);
void rq_apply_build(struct rq_task *t, const struct osp_rq_ops *ops);
void rq_promote_build(struct rq_task *t, int64_t now_ms, int max);
void rq_stats_build(struct rq_task *t, const char *kind);

/* Helpers of the task machines (rq.c), shared with the reaper (rq_reap.c). */
/* An owned byte string (a copied reply element). */
struct rq_field {
    char *p; /* owned, NUL-terminated for convenience */
    size_t n;
};

void rq_field_set(struct rq_field *f, const void *p, size_t n);
void rq_cmd_clear(struct rq_cmd *c);
void rq_cmd_addf(struct rq_cmd *c, const char *fmt, ...) OSP_PRINTF(2, 3);
void rq_cmd_addi(struct rq_cmd *c, int64_t v);
bool rq_reply_int(const redisReply *r, int64_t *out);
/* Record a failure in t (status = code, errmsg) and return RQ_DONE. */
int rq_task_fail(struct rq_task *t, int code, const char *fmt, ...) OSP_PRINTF(3, 4);
/* A reply that is not what the task expected: a Redis error or a shape mismatch. */
int rq_task_bad_reply(struct rq_task *t, const char *what, const redisReply *r);
/* forget.lua for worker: cutoff "" = unconditional, else only if its heartbeat is older. */
void rq_forget_build(struct rq_task *t, const char *worker, const char *cutoff);

/* ---- The reaper (rq_reap.c) ---- */
/* Start the reaper: stale workers' envelopes back to their queues (or dead), their records
 * forgotten, and at most once a minute the in-flight sweep. */
void rq_reap_begin(struct rq_task *t, int lease_ms, int max_rec);
/* Start the reclaim of this worker's own processing list (osp_rq_reclaim_own). */
void rq_reap_begin_own(struct rq_task *t, int max_rec);
/* The reaper's reply step (RQ_T_REAP in rq_task_feed). */
int rq_reap_step(struct rq_task *t, const redisReply *rep);
/* The reaper's recovery records so far (borrowed: valid until the task is deinitialised). */
const struct osp_rq_recovery *rq_reap_recs(const struct rq_task *t, size_t *n);
/* Hand the reaper's recovery records to the caller (owned by it from then on). */
void rq_reap_take_recs(struct rq_task *t, struct osp_rq_recovery **recs, size_t *n);
void rq_reap_free(struct rq_reap *r);

#endif
