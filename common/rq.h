/* SPDX-License-Identifier: MIT */
/* rq.h — the reliable Redis queue (DESIGN.md §2). All multi-step transitions are Lua scripts
 * (the files in common/lua, embedded at build time) loaded with SCRIPT LOAD and run with EVALSHA,
 * reloaded on NOSCRIPT. Keys all carry the prefix (default "{opspool}") so every script
 * touches one Redis Cluster slot.
 *
 * Two clients share the same scripts and the same operation batches:
 *  - struct osp_rq: asynchronous, hiredis async on a libev loop, for the worker and scheduler.
 *    Two connections: one for pipelined commands, one for blocking BLMOVE. Reconnects with
 *    capped exponential backoff and jitter. Callback contract: a function taking a callback
 *    either returns an error and never calls it, or returns 0 and calls it exactly once, later
 *    (never before it returns). While disconnected, calls return OSP_EREDIS immediately.
 *  - struct osp_rqs: synchronous hiredis, for opspoolctl, submitters and tests.
 *
 * Keys (P = prefix):
 *   P:queue:<kind> LIST        pending envelopes; LPUSH in, taken from the RIGHT
 *   P:processing:<worker> LIST envelopes a worker holds
 *   P:inflight:<kind> ZSET     job id -> lease deadline ms
 *   P:workers ZSET             worker id -> last heartbeat ms
 *   P:worker:<id> HASH         host pid kinds slots busy version started
 *   P:delayed ZSET             "<kind>|<envelope>" -> due ms (the kind prefix lets the promoter
 *                              route without decoding; see docs/decisions/0001)
 *   P:dead:<kind> LIST         dead records (envelope.h osp_dead_encode), newest at the LEFT
 *   P:job:<id> HASH            state kind attempt worker recoveries updated_at; TTL once finished
 *   P:paused SET               kinds whose fetching is paused
 */
#ifndef OSP_RQ_H
#define OSP_RQ_H

#include "common/buf.h"
#include "common/envelope.h"
#include "common/err.h"

#include <ev.h>

struct osp_rq;
struct osp_rqs;
struct osp_rq_ops;

struct osp_rq_opts {
    const char *url;       /* redis://host:port[/db] or unix:///path */
    const char *username;  /* ACL user or NULL/"" */
    const char *password;  /* NULL/"" = no AUTH */
    const char *prefix;    /* e.g. "{opspool}" */
    const char *worker_id; /* owner of P:processing:<worker_id>; may be NULL for non-workers */
    /* Redis Sentinel: "host[:port],..." (NULL/"" = connect to url's host); the master's name
     * and the sentinels' own credentials. url then gives only the database and the master's
     * credentials. */
    const char *sentinels;
    const char *sentinel_master;
    const char *sentinel_username;
    const char *sentinel_password;
};

/* ---- Operation batches (shared by both clients) ---- */

/* An ordered list of queue transitions applied atomically by one EVALSHA. Every op names
 * the job's kind and id. Envelope bytes are copied into the batch. */
struct osp_rq_ops *osp_rq_ops_new(void);
void osp_rq_ops_free(struct osp_rq_ops *ops);
size_t osp_rq_ops_count(const struct osp_rq_ops *ops);
void osp_rq_ops_clear(struct osp_rq_ops *ops);

/* LPUSH env on P:queue:<kind> (or ZADD P:delayed when run_at_ms is in the future) and set
 * P:job:<id> state=queued. Result 1. */
void osp_rq_op_enqueue(struct osp_rq_ops *ops, const char *kind, const char *id, const void *env,
                       size_t env_len, int64_t run_at_ms);
/* ZADD P:inflight:<kind> deadline id; P:job:<id> state=running worker=<w> attempt=<a>.
 * Result 1 when the envelope is still in this worker's processing list, else 0 (reaped). */
void osp_rq_op_start(struct osp_rq_ops *ops, const char *kind, const char *id, unsigned attempt,
                     const void *env, size_t env_len, int64_t lease_deadline_ms);
/* ZADD XX P:inflight:<kind> deadline id. Result 1 when renewed, 0 when the job is no longer
 * in flight. */
void osp_rq_op_renew(struct osp_rq_ops *ops, const char *kind, const char *id,
                     int64_t lease_deadline_ms);
/* Finish: LREM this worker's processing list env, ZREM inflight, P:job:<id> state=<state>,
 * EXPIRE ttl. state is "succeeded", "failed" or "cancelled". Result 1 when env was held, 0
 * when it was not (already reaped or acked: the caller must not treat that as an error). */
void osp_rq_op_ack(struct osp_rq_ops *ops, const char *kind, const char *id, const void *env,
                   size_t env_len, const char *state, int ttl_s);
/* Retry later: LREM old env, ZREM inflight, ZADD P:delayed "<kind>|<new_env>" due_ms,
 * state=retrying. Result as for ack. */
void osp_rq_op_retry(struct osp_rq_ops *ops, const char *kind, const char *id, const void *old_env,
                     size_t old_len, const void *new_env, size_t new_len, int64_t due_ms);
/* Dead-letter: LREM env from this worker's processing list, ZREM inflight, LPUSH the dead
 * record on P:dead:<kind>, state=dead, EXPIRE ttl. id may be "" for undecodable messages.
 * Result as for ack. */
void osp_rq_op_dead(struct osp_rq_ops *ops, const char *kind, const char *id, const void *env,
                    size_t env_len, const void *dead_rec, size_t dead_len, int ttl_s);
/* Hand back (drain): LREM env, ZREM inflight, RPUSH env on P:queue:<kind> so it is the next
 * one taken, state=queued. Result as for ack. ack, retry, dead and requeue also give back the
 * job's target lease and wake the jobs waiting for that target. */
void osp_rq_op_requeue(struct osp_rq_ops *ops, const char *kind, const char *id, const void *env,
                       size_t env_len);

/* Target leases (docs/decisions/0008). */
enum osp_lease_mode { OSP_LEASE_NONE = 0, OSP_LEASE_EXCLUSIVE = 1, OSP_LEASE_SHARED = 2 };
/* Take target's lease for a held envelope before its attempt starts: exclusive needs no other
 * holder; shared needs no exclusive holder or exclusive waiter and fewer than max_shared
 * holders (0 = no limit). Result 1 granted (or already held), 0 busy: the envelope left this
 * worker's processing list for P:waiting:<target> (state=waiting, waiting_for=<target>) and
 * returns to its queue when the lease is given back; -1 the envelope is not held here. */
void osp_rq_op_lease(struct osp_rq_ops *ops, const char *kind, const char *id, const void *env,
                     size_t env_len, const char *target, enum osp_lease_mode mode, int max_shared);

/* ---- Asynchronous client ---- */

struct osp_rq_item {
    const char *kind;   /* borrowed for the callback's duration */
    const uint8_t *env; /* borrowed for the callback's duration */
    size_t env_len;
};

/* status 0 or OSP_EREDIS (with rq's last error). paused_mask has bit i set when kinds[i] is
 * paused (fetch only; 0 for fetch_wait). n == 0 means nothing was available. */
typedef void osp_rq_items_cb(struct osp_rq *rq, int status, const struct osp_rq_item *items,
                             size_t n, uint64_t paused_mask, void *arg);
/* results[i] is the result of op i (see each op). */
typedef void osp_rq_apply_cb(struct osp_rq *rq, int status, const int64_t *results, size_t n,
                             void *arg);
typedef void osp_rq_count_cb(struct osp_rq *rq, int status, int64_t n, void *arg);
/* One envelope the reaper took back from a lost worker, for the ledger (ledger.h
 * osp_lbatch_interrupted): the job's recovery count after this recovery, and whether it was
 * dead-lettered for exceeding max_recoveries. */
#define OSP_RQ_WORKER_MAX 128
struct osp_rq_recovery {
    char id[OSP_ID_LEN + 1];
    char kind[OSP_KIND_MAX + 1];
    char worker[OSP_RQ_WORKER_MAX + 1]; /* the worker the run was lost with */
    int64_t recoveries;
    bool dead;
    int64_t at_ms;
    char reason[192]; /* "worker lost: w1 (...)", or the dead-letter reason */
};
/* recs: the recoveries done, in order (borrowed for the callback's duration). They happened
 * in Redis even when status is an error (the reaper stopped part-way): record them all. */
typedef void osp_rq_reap_cb(struct osp_rq *rq, int status, const struct osp_rq_recovery *recs,
                            size_t n, void *arg);
/* Connection state changes: ready == true once connected and scripts are loaded. */
typedef void osp_rq_state_cb(struct osp_rq *rq, bool ready, void *arg);

struct osp_rq *osp_rq_new(struct ev_loop *loop, const struct osp_rq_opts *opts,
                          struct osp_err *err);
/* Disconnect; callbacks still pending are called with OSP_ECANCELED before this returns
 * (the one exception to "never before it returns", as in hiredis). */
void osp_rq_free(struct osp_rq *rq);
void osp_rq_set_state_cb(struct osp_rq *rq, osp_rq_state_cb *cb, void *arg);
bool osp_rq_is_ready(const struct osp_rq *rq);
const char *osp_rq_last_error(const struct osp_rq *rq);
/* Counters since start, for metrics. */
uint64_t osp_rq_error_count(const struct osp_rq *rq);
/* Where the commands connection goes (osp_redis_endpoint: in sentinel mode the master and
 * the sentinel that named it); "" before the first connection. */
const char *osp_rq_endpoint(const struct osp_rq *rq);
/* Sentinel mode: how often the master's address changed since start (failovers followed). */
uint64_t osp_rq_master_changes(const struct osp_rq *rq);

/* Move up to max envelopes from the kinds' queues (RIGHT end) into this worker's processing
 * list, skipping paused kinds, rotating the starting kind between calls for fairness.
 * Never blocks. */
int osp_rq_fetch(struct osp_rq *rq, const char *const *kinds, size_t nkinds, size_t max,
                 osp_rq_items_cb *cb, void *arg);
/* BLMOVE P:queue:<kind> RIGHT -> processing LEFT with a timeout on the blocking connection;
 * at most one outstanding. n == 0 on timeout. */
int osp_rq_fetch_wait(struct osp_rq *rq, const char *kind, int timeout_ms, osp_rq_items_cb *cb,
                      void *arg);
/* Everything this worker's processing list holds (LRANGE 0 -1), oldest last; items' kind is
 * "" (the list mixes kinds). For a worker's consistency check after a reconnect: a fetch whose
 * reply was lost with the connection may have moved envelopes the worker never saw. */
int osp_rq_held(struct osp_rq *rq, osp_rq_items_cb *cb, void *arg);
/* Apply a batch of ops in one script call. The batch is copied; the caller may clear it. */
int osp_rq_apply(struct osp_rq *rq, const struct osp_rq_ops *ops, osp_rq_apply_cb *cb, void *arg);
/* ZADD P:workers id now; HSET P:worker:<id> fields (NULL-terminated name/value pairs);
 * EXPIRE P:worker:<id> to 10 leases. */
int osp_rq_heartbeat(struct osp_rq *rq, const char *const *fields, osp_rq_count_cb *cb, void *arg);
/* Clean exit: ZREM P:workers and DEL P:worker:<id>, only when the processing list is empty
 * (n = 1 when removed, 0 when jobs were still held). */
int osp_rq_unregister(struct osp_rq *rq, osp_rq_count_cb *cb, void *arg);
/* Promoter duty: move up to max delayed entries due at now_ms to their queues. n = moved. */
int osp_rq_promote(struct osp_rq *rq, int64_t now_ms, int max, osp_rq_count_cb *cb, void *arg);
/* Reaper duty (C decodes: Redis 7.0's Lua cmsgpack cannot read msgpack bin, so envelopes are
 * routed with osp_env_peek and each is moved by a small atomic script that first LREMs it from
 * the dead worker's list, so concurrent reapers never double-move an item):
 * for every worker whose heartbeat is older than lease_ms, hand each envelope of
 * its processing list back to its queue (front) after HINCRBY P:job:<id> recoveries; a job
 * whose recoveries exceed max_recoveries goes to P:dead:<kind> with reason "killed its worker
 * N times"; undecodable items go to P:dead:unknown. Then removes the worker's keys.
 * Also drops inflight entries whose lease expired more than lease_ms ago and whose worker no
 * longer exists. cb gets one osp_rq_recovery per job handed back or dead-lettered. */
int osp_rq_reap(struct osp_rq *rq, int lease_ms, int max_recoveries, osp_rq_reap_cb *cb, void *arg);
/* The same recovery for this worker's own processing list, whatever its heartbeat: for a
 * worker that starts under the id of a predecessor that died (a StatefulSet pod, a fixed
 * OSP_WORKER_ID), whose runs were lost with it and that no reaper sees as dead. Call it once,
 * before the first fetch. The worker's keys stay. */
int osp_rq_reclaim_own(struct osp_rq *rq, int max_recoveries, osp_rq_reap_cb *cb, void *arg);

/* ---- Synchronous client (CLI, submitters, tests) ---- */

struct osp_rqs *osp_rqs_connect(const struct osp_rq_opts *opts, struct osp_err *err);
void osp_rqs_free(struct osp_rqs *c);
/* Apply ops; results (may be NULL) receives osp_rq_ops_count(ops) values. */
int osp_rqs_apply(struct osp_rqs *c, const struct osp_rq_ops *ops, int64_t *results,
                  struct osp_err *err);
struct osp_rq_stats {
    int64_t pending; /* LLEN queue */
    int64_t running; /* ZCARD inflight */
    int64_t delayed; /* delayed entries of this kind (scan of the ZSET, bounded) */
    int64_t dead;    /* LLEN dead */
    int64_t waiting; /* fetched, but their target is leased to another job (ADR 0008) */
    bool paused;
    int64_t oldest_pending_ms; /* enqueued_at of the RIGHT-most item, 0 when empty */
};
int osp_rqs_stats(struct osp_rqs *c, const char *kind, struct osp_rq_stats *st,
                  struct osp_err *err);
/* Raw access for tools and tests: run a command given as argv, reply rendered as JSON
 * (arrays -> arrays, integers -> numbers, nil -> null, strings -> strings; binary-safe via
 * jansson's length-aware strings). Owned by caller. */
struct json_t;
struct json_t *osp_rqs_command(struct osp_rqs *c, int argc, const char **argv, const size_t *lens,
                               struct osp_err *err);
/* Duties, synchronously (same scripts as the async ones). */
int osp_rqs_promote(struct osp_rqs *c, int64_t now_ms, int max, int64_t *moved,
                    struct osp_err *err);
/* recs_out (may be NULL): the recoveries done, owned by the caller (free()), *nrecs_out many. */
int osp_rqs_reap(struct osp_rqs *c, int lease_ms, int max_recoveries, int64_t *handed_back,
                 struct osp_rq_recovery **recs_out, size_t *nrecs_out, struct osp_err *err);
const char *osp_rqs_prefix(const struct osp_rqs *c);
/* Redis's epoch: a random token under P:epoch, set once (SET NX) and kept for as long as
 * Redis keeps its data. A token that changes, or one that had to be created, means Redis lost
 * the pool's keys (restarted empty, failed over to an empty replica, flushed): the
 * reconciler's cue to sweep at once. out receives the token (a UUID); *created is true when
 * this call set it. 0, or OSP_EREDIS with err. */
int osp_rqs_epoch(struct osp_rqs *c, char out[OSP_ID_LEN + 1], bool *created, struct osp_err *err);

/* The reconciler's look at many jobs at once: states[i] receives P:job:<ids[i]>'s state
 * ("queued", "running", "succeeded", ...), or "" when Redis holds no such job. One pipelined
 * round trip for the lot. 0, or OSP_EREDIS with err (states then undefined). */
#define OSP_RQ_STATE_MAX 16
int osp_rqs_job_states(struct osp_rqs *c, const char *const *ids, size_t n,
                       char (*states)[OSP_RQ_STATE_MAX], struct osp_err *err);

/* ---- Control-plane operations (rq_admin.c, sync client) ----
 * Called by common/ops.c after the ledger recorded the change (the ledger first). */

enum osp_rq_cancel_mode {
    OSP_RQ_CANCEL_FINAL,   /* the ledger says cancelled: state cancelled, envelope dropped */
    OSP_RQ_CANCEL_RUNNING, /* cancel requested: the worker stops the attempt */
};
/* Flag n jobs (cancel.lua). An envelope of a job flagged final is never handed to a worker:
 * fetch.lua and osp_rqs_purge_step drop it, and the job hash expires after ttl_s from then. */
int osp_rqs_cancel(struct osp_rqs *c, const char *const *ids, const enum osp_rq_cancel_mode *modes,
                   size_t n, int ttl_s, struct osp_err *err);
/* Put a job back on P:queue:<kind> with env (requeue.lua): removes its dead record rec when
 * rec_len > 0 (*removed false when the record was already gone; the envelope is pushed
 * anyway) and resets P:job:<id> to queued without a cancel flag. */
int osp_rqs_requeue(struct osp_rqs *c, const char *kind, const char *id, const void *rec,
                    size_t rec_len, const void *env, size_t env_len, bool *removed,
                    struct osp_err *err);
/* One step of dropping cancelled envelopes (purge.lua): from P:queue:<kind> (delayed false:
 * up to max envelopes from the right end, survivors to the left end) or from P:delayed
 * (delayed true: up to max members from index *start, which is advanced). Adds to *looked
 * and *dropped. */
int osp_rqs_purge_step(struct osp_rqs *c, const char *kind, bool delayed, int64_t max,
                       int64_t *start, int64_t *looked, int64_t *dropped, struct osp_err *err);
/* Drop job id's envelope (cancelled and flagged final) when it is among the max newest or
 * oldest of P:queue:<kind> or the first max of P:delayed; *dropped true when it was. */
int osp_rqs_purge_one(struct osp_rqs *c, const char *kind, const char *id, int64_t max,
                      bool *dropped, struct osp_err *err);
/* Lengths of P:queue:<kind>, P:delayed and P:dead:<kind> (any may be NULL). */
int osp_rqs_lengths(struct osp_rqs *c, const char *kind, int64_t *queue, int64_t *delayed,
                    int64_t *dead, struct osp_err *err);
/* Dead records of kind from index start to stop (LRANGE: 0 is the newest), as an array of
 * binary strings (owned), or NULL with err. */
struct json_t *osp_rqs_dead_range(struct osp_rqs *c, const char *kind, int64_t start, int64_t stop,
                                  struct osp_err *err);
/* Remove one dead record (exact bytes); *removed tells whether it was there. */
int osp_rqs_dead_remove(struct osp_rqs *c, const char *kind, const void *rec, size_t len,
                        bool *removed, struct osp_err *err);
/* Add kind to (pause) or remove it from (resume) P:paused; *changed false when it already
 * was (may be NULL). */
int osp_rqs_pause(struct osp_rqs *c, const char *kind, bool pause, bool *changed,
                  struct osp_err *err);
/* Registered workers: [[id, heartbeat_ms], ...] from P:workers (owned), NULL with err. */
struct json_t *osp_rqs_worker_list(struct osp_rqs *c, struct osp_err *err);
/* P:worker:<id> as an object (owned; {} when absent), NULL with err. */
struct json_t *osp_rqs_worker_hash(struct osp_rqs *c, const char *id, struct osp_err *err);
/* The envelopes in P:processing:<id> (array of binary strings, owned), NULL with err. */
struct json_t *osp_rqs_worker_held(struct osp_rqs *c, const char *id, struct osp_err *err);
/* Number of registered workers (ZCARD P:workers). */
int osp_rqs_worker_count(struct osp_rqs *c, int64_t *n, struct osp_err *err);
/* The cron guard of one tick: SET P:cron:<name>:<tick> owner NX EX ttl_s (*won true when
 * this caller set it), and its release (DEL) when the tick is to be tried again. */
int osp_rqs_cron_claim(struct osp_rqs *c, const char *name, int64_t tick, const char *owner,
                       int64_t ttl_s, bool *won, struct osp_err *err);
int osp_rqs_cron_release(struct osp_rqs *c, const char *name, int64_t tick, struct osp_err *err);
/* PING. */
int osp_rqs_ping(struct osp_rqs *c, struct osp_err *err);
/* P:job:<id> as an object of its fields (owned), NULL when absent (err->code 0) or on error. */
struct json_t *osp_rqs_job_hash(struct osp_rqs *c, const char *id, struct osp_err *err);

#endif
