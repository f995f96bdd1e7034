/* SPDX-License-Identifier: MIT */
/* ledger.h — the PostgreSQL ledger, source of truth (DESIGN.md §3). Schema "opspool",
 * versioned migrations (common/sql/NNNN_name.sql, embedded) applied under an advisory lock.
 *
 * Rules this module enforces in SQL:
 *  - a job row exists (state 'queued' or 'delayed') before its envelope is pushed;
 *  - terminal states (succeeded, failed, dead, cancelled) are sticky: a late or repeated write for
 * a finished job changes nothing;
 *  - attempt results are idempotent per run (job_id, attempt, worker, started_at): a repeated
 *    finish changes nothing; every run is a row, interrupted ones included (0003_runs.sql).
 *
 * Two clients:
 *  - struct osp_ledger: asynchronous libpq (PQconnectStart/PQsendQueryParams) on a libev
 *    loop, one connection, reconnect with capped backoff. Writes are accumulated in a batch
 *    and committed in ONE statement/round trip (CTEs over unnest() arrays), one transaction.
 *    Callback contract as in rq.h (exactly once, never before the call returns).
 *  - struct osp_pgs: synchronous libpq for migrations, submitters, the CLI and tests.
 */
#ifndef OSP_LEDGER_H
#define OSP_LEDGER_H

#include "common/envelope.h"
#include "common/err.h"

#include <ev.h>
#include <jansson.h>

struct osp_ledger;
struct osp_lbatch;
struct osp_pgs;

/* ---- Write batches ---- */
struct osp_lbatch *osp_lbatch_new(void);
void osp_lbatch_free(struct osp_lbatch *b);
size_t osp_lbatch_count(const struct osp_lbatch *b);
/* jobs: state='running', attempt, worker, started_at (unless terminal). */
void osp_lbatch_start(struct osp_lbatch *b, const char *id, unsigned attempt, const char *worker,
                      int64_t started_at_ms);
/* job_events row (job_id, attempt, ts, type, data). data is borrowed (serialized now), may be NULL.
 */
void osp_lbatch_event(struct osp_lbatch *b, const char *id, unsigned attempt, int64_t ts_ms,
                      const char *type, const json_t *data);
/* Attempt outcome. outcome: "succeeded" | "failed" | "timeout" | "crashed" | "cancelled" |
 * "rejected" (invalid before it ran). next_state is the job's new state: "succeeded",
 * "failed" (a verdict, final), "retrying", "dead", "cancelled". result borrowed, may be NULL; error
 * may be NULL. When next_state is "retrying", next_run_at_ms is when it will run again. Inserts
 * job_attempts (ON CONFLICT (job_id, attempt) DO NOTHING) and updates jobs (state, result, error,
 * finished_at, attempt) unless the job is already terminal. */
void osp_lbatch_finish(struct osp_lbatch *b, const char *id, unsigned attempt, const char *worker,
                       const char *outcome, const char *next_state, const json_t *result,
                       const char *error, int64_t started_at_ms, int64_t finished_at_ms,
                       int64_t next_run_at_ms);
/* A run that ended without an outcome of its own: an attempt row with outcome 'interrupted'
 * and `reason` as its error ("worker lost: w1", "handed back: worker draining", ...), on the
 * job's current attempt, as the next run of it (0003_runs.sql).
 * recoveries > 0: a crash recovery (reaper, restart under the same worker id); the job's
 * recoveries become this absolute count (so the op applies once, whoever repeats it) and its
 * state 'queued', or 'dead' with `reason` when dead is true (it exceeded OSP_MAX_RECOVERIES).
 * recoveries == 0: a hand-back (draining worker): the job goes back to 'queued', its count is
 * unchanged; started_at_ms names the run, so a repeated hand-back changes nothing.
 * started_at_ms 0 = the run's start as the ledger knows it (when `worker` holds the job). A job
 * another worker already runs keeps its state. Terminal jobs are left alone.
 * Commit it before, never with, a start or finish of the same job: in one statement the re-run
 * would take the lost run's row number and the start or finish would win the jobs row. */
void osp_lbatch_interrupted(struct osp_lbatch *b, const char *id, const char *worker,
                            const char *reason, int64_t recoveries, bool dead,
                            int64_t started_at_ms, int64_t ts_ms);
/* Re-create the jobs row of j from its envelope (state 'queued', the attempt before j's,
 * everything the submitter wrote) when it is missing, with a 'ledger.restored' event giving
 * `why`; nothing when the row exists. For a worker whose start or finish found no row
 * (osp_ledger_missing): a submit answered before PostgreSQL lost it (crash with
 * synchronous_commit off, failover with asynchronous replication). Commit it before the
 * start and finish it precedes, in a batch of its own. */
void osp_lbatch_restore(struct osp_lbatch *b, const struct osp_job *j, const char *why);
/* Typed per-kind result rows: table must be one of the kind tables created by migrations
 * (e.g. "benchmark_results"); row is a JSON object whose keys are column names (borrowed).
 * Inserted with json_populate_record so columns and types come from the table itself. */
void osp_lbatch_typed(struct osp_lbatch *b, const char *table, const json_t *row);

/* ---- Asynchronous client ---- */
typedef void osp_ledger_cb(struct osp_ledger *l, int status, void *arg);
typedef void osp_ledger_state_cb(struct osp_ledger *l, bool ready, void *arg);

struct osp_ledger *osp_ledger_new(struct ev_loop *loop, const char *dsn, struct osp_err *err);
/* Pending callbacks are called with OSP_ECANCELED before this returns. */
void osp_ledger_free(struct osp_ledger *l);
void osp_ledger_set_state_cb(struct osp_ledger *l, osp_ledger_state_cb *cb, void *arg);
bool osp_ledger_is_ready(const struct osp_ledger *l);
const char *osp_ledger_last_error(const struct osp_ledger *l);
uint64_t osp_ledger_error_count(const struct osp_ledger *l);
/* Commit every write in b in one transaction. The batch's contents are taken (b is left
 * empty and reusable). On OSP_EPG the transaction rolled back and nothing was written; the
 * caller keeps its own copy of the data if it wants to retry. Queued FIFO; one in flight. */
int osp_ledger_commit(struct osp_ledger *l, struct osp_lbatch *b, osp_ledger_cb *cb, void *arg);
/* Insert jobs rows (the statement osp_ledger_insert_jobs runs, one transaction), queued
 * FIFO with the commits. In the callback with status 0, osp_ledger_inserted() holds the ids
 * the statement inserted: a job missing from it conflicted on its id or its idempotency key
 * (resolve it with the synchronous osp_ledger_insert_jobs, which looks the holder up). On
 * OSP_EPG the outcome is unknown (the rows may be committed). OSP_EINVAL (nothing queued, the
 * callback never called) for a job without a valid id or kind or with a non-UTF-8 string. */
int osp_ledger_insert_jobs_async(struct osp_ledger *l, const struct osp_job *jobs, size_t n,
                                 osp_ledger_cb *cb, void *arg, struct osp_err *err);
/* Inside an insert's callback: the inserted ids as a JSON object (id -> true). Borrowed. */
const json_t *osp_ledger_inserted(const struct osp_ledger *l);
/* Inside a commit's callback (status 0): the ids, as a JSON array of strings, of jobs whose
 * start or finish in that batch found no jobs row and so changed nothing; NULL when there were
 * none. Borrowed: valid until the callback returns. */
const json_t *osp_ledger_missing(const struct osp_ledger *l);

/* ---- Synchronous client ---- */
struct osp_pgs *osp_pgs_connect(const char *dsn, struct osp_err *err);
void osp_pgs_free(struct osp_pgs *c);
/* Apply pending migrations under pg_advisory_lock; safe to call from many processes at once. */
int osp_ledger_migrate(struct osp_pgs *c, struct osp_err *err);
/* Insert job rows (state 'queued', or 'delayed' when run_at is in the future) in one statement.
 * For jobs with an idempotency_key already used, nothing is inserted and existing_ids[i] gets
 * the id of the existing job (else existing_ids[i][0] = '\0'); existing_ids may be NULL when
 * no job has a key. */
int osp_ledger_insert_jobs(struct osp_pgs *c, const struct osp_job *jobs, size_t n,
                           char (*existing_ids)[OSP_ID_LEN + 1], struct osp_err *err);
/* Commit a batch synchronously (same SQL as the async client). */
int osp_pgs_commit(struct osp_pgs *c, struct osp_lbatch *b, struct osp_err *err);
/* The job as JSON {id, kind, state, attempt, max_attempts, recoveries, payload, result, error,
 * created_at, started_at, finished_at, worker, attempts:[...], events:[...]}, or NULL with
 * OSP_ENOTFOUND. Owned by the caller. */
json_t *osp_ledger_get_job(struct osp_pgs *c, const char *id, struct osp_err *err);
/* ---- Benchmark history (ledger_bench.c; the rule: opspool.bench_judge in
 * common/sql/0007_benchmark_history.sql) ---- */

/* Results of benchmark lanes, newest first, each judged against its series' baseline:
 * [{job_id, attempt, target, lane, shape, created_at, model, requests, errors, rps, target_rps,
 * p50_ms ... max_ms, cache_hit_ratio, passed, judge: {verdict, baseline, figures}}]. Filter
 * fields may be unset (NULL / 0). Owned, NULL with err. */
struct osp_bench_filter {
    const char *target;
    const char *lane;
    int64_t since_ms; /* created within the last since_ms */
    int limit;        /* 0: 50 */
};
json_t *osp_ledger_bench_history(struct osp_pgs *c, const struct osp_bench_filter *f,
                                 struct osp_err *err);
/* The lanes of one job's latest attempt, judged the same way ([] when it has none). */
json_t *osp_ledger_bench_job(struct osp_pgs *c, const char *job_id, struct osp_err *err);
/* The latest run of every series that ran within the last 30 days, for the metrics: rows of
 * text values {target, lane, verdict, created (epoch s), rps, p50_ms, p99_ms}. Owned. */
json_t *osp_ledger_bench_latest(struct osp_pgs *c, struct osp_err *err);
/* Pin the baseline of (target, lane) to the run of job pin_job_id, or, with pin_job_id NULL,
 * reset it: only runs from now on count. OSP_ENOTFOUND when that job has no result for the
 * series. */
int osp_ledger_bench_baseline_set(struct osp_pgs *c, const char *target, const char *lane,
                                  const char *pin_job_id, const char *by, struct osp_err *err);

/* ---- Notifications (ledger_notify.c; the outbox: common/sql/0009_notifications.sql) ---- */

/* Fan out up to max new events to the endpoints of routes ({"<endpoint>": [types]}, see
 * osp_notify_routes): one delivery per (event, endpoint whose types include it), the events
 * marked dispatched, in one statement. *events and *deliveries get the counts. */
int osp_ledger_notify_fanout(struct osp_pgs *c, const json_t *routes, int max, int *events,
                             int *deliveries, struct osp_err *err);
/* Claim up to max due deliveries of the named endpoints (a JSON array of names) for lease_s:
 * each gets its next attempt number and an attempt row (started by replica); an earlier
 * attempt left unfinished (its replica stopped) is closed as interrupted. Rows of text values
 * {id, endpoint, attempt, budget (attempts counted against max_attempts, this one included),
 * age_s (since creation or the last manual retry), type, event_id, subject, occurred_at, data}.
 * Owned, NULL with err. */
json_t *osp_ledger_notify_claim(struct osp_pgs *c, const json_t *endpoints, int max,
                                const char *replica, int lease_s, struct osp_err *err);
/* Record how attempt `attempt` of delivery id ended (http_status 0: no answer; error NULL:
 * none) and the delivery's next state: "delivered", "failed", or "pending" (again after
 * next_in_ms). A delivery claimed since by another attempt is left to it. */
int osp_ledger_notify_done(struct osp_pgs *c, const char *id, int attempt, int http_status,
                           const char *error, int duration_ms, const char *state,
                           int64_t next_in_ms, struct osp_err *err);
/* Deliveries newest first, each with its attempts: [{id, endpoint, state, type, event_id,
 * subject, occurred_at, attempts, last_status, last_error, next_at, finished_at, summary data,
 * log: [{attempt, replica, started_at, finished_at, http_status, error, duration_ms}]}].
 * state / endpoint NULL: any. Owned, NULL with err. */
json_t *osp_ledger_notify_list(struct osp_pgs *c, const char *state, const char *endpoint,
                               int limit, struct osp_err *err);
/* Make a failed (or pending) delivery due now with a fresh budget of attempts; OSP_ENOTFOUND
 * when there is no such delivery, OSP_ECONFLICT when it was delivered. */
int osp_ledger_notify_retry(struct osp_pgs *c, const char *id, struct osp_err *err);
/* Delete up to batch events older than days whose deliveries are all finished (their
 * deliveries and attempts go with them); *n gets the count. */
int osp_ledger_retain_notify(struct osp_pgs *c, int days, int batch, int *n, struct osp_err *err);

/* ---- Campaigns (ledger_campaign.c; rules in common/ops_campaign.c) ---- */
/* Insert a campaign (state running), its steps ([{step, ord, kind, after, always}]) and its
 * first event in one statement. With idem set and a campaign of that key present, nothing is
 * written and existing gets its id ("" otherwise). */
int osp_ledger_campaign_insert(struct osp_pgs *c, const char *id, const char *name, bool fail_fast,
                               const json_t *plan, const json_t *steps, const char *idem,
                               const char *by, const char *schedule, char existing[OSP_ID_LEN + 1],
                               struct osp_err *err);
/* {id, name, state, fail_fast, submitted_by, schedule, idempotency_key, created_at,
 * finished_at, steps: [{step, kind, after, always, state, reason, job_id, plan, job_state,
 * attempt, max_attempts, error, started_at, finished_at}], events: [{ts, type, data}]}, or
 * NULL with OSP_ENOTFOUND. Owned by the caller. */
json_t *osp_ledger_campaign_get(struct osp_pgs *c, const char *id, struct osp_err *err);
/* Move step from state `from` to `to` (with its job id, or a reason), writing a timeline
 * event; *changed false when it was not in `from` any more (another process moved it). */
int osp_ledger_campaign_step(struct osp_pgs *c, const char *id, const char *step, const char *from,
                             const char *to, const char *job_id, const char *reason, bool *changed,
                             struct osp_err *err);
/* End the campaign (state, unless cancelled; finished_at) once; an event. */
int osp_ledger_campaign_finish(struct osp_pgs *c, const char *id, const char *state,
                               struct osp_err *err);
/* running -> cancelled (an event naming who); prev: the state found. OSP_ENOTFOUND. */
int osp_ledger_campaign_cancel(struct osp_pgs *c, const char *id, const char *who, char prev[16],
                               struct osp_err *err);
/* [{id}] of unfinished campaigns, oldest first, at most max. */
json_t *osp_ledger_campaigns_active(struct osp_pgs *c, int max, struct osp_err *err);
/* The latest campaigns with their step counts, newest first. */
json_t *osp_ledger_campaigns(struct osp_pgs *c, int limit, struct osp_err *err);
/* Delete finished campaigns older than days (steps and events cascade), at most batch. */
int osp_ledger_retain_campaigns(struct osp_pgs *c, int days, int batch, struct osp_err *err);

/* Run a parameterised read query, rows as an array of objects (text values, NULL -> null).
 * For tools, tests and summaries. Owned by the caller. */
json_t *osp_pgs_query(struct osp_pgs *c, const char *sql, int nparams, const char *const *params,
                      struct osp_err *err);

/* ---- Control-plane operations (ledger_ops.c) ----
 * What operators and the API do to jobs, each one statement (the change, its events and its
 * audit record commit together). Called by common/ops.c, which then brings Redis along. */

/* Who acts, for events and audit records: who = "token:<fp>" / "user:<login>", via = "api",
 * "opspoolctl" or "console". */
struct osp_actor {
    const char *who;
    const char *via;
};

/* Cancel job id: queued, delayed or retrying become cancelled (event 'cancelled'); a running
 * job gets a 'cancel_requested' event (its worker stops it); both with an 'audit' event.
 * prev receives the state before, kind the job's kind. OSP_ENOTFOUND when there is no such
 * job. A finished job is left alone (prev tells which). */
int osp_ledger_cancel(struct osp_pgs *c, const char *id, const struct osp_actor *a, char prev[16],
                      char kind[OSP_KIND_MAX + 1], struct osp_err *err);

/* The one loader from a ledger row (text values, as osp_pgs_query returns them: id, kind,
 * payload, attempt, max_attempts, timeout_s, created_ms, run_ms, idempotency_key,
 * submitted_by, schedule, trace_id; absent ones are left at their osp_job_init values) to a
 * job, for rebuilding an envelope from the ledger. j is osp_job_init'ed by the caller. The
 * attempt is the row's: callers decide the attempt the rebuilt envelope carries. OSP_EPROTO
 * for a row without a valid id or kind, or with an unreadable payload. */
int osp_ledger_job_from_row(const json_t *row, struct osp_job *j, struct osp_err *err);

/* The kind and state of job id; OSP_ENOTFOUND when there is no such job. */
int osp_ledger_job_brief(struct osp_pgs *c, const char *id, char kind[OSP_KIND_MAX + 1],
                         char state[16], struct osp_err *err);

/* What a retry needs: the row {state, kind, attempt, max_attempts, timeout_s, payload,
 * idempotency_key, submitted_by, schedule, trace_id, created_ms, last_attempt (the highest
 * attempt that started, 0 when none), budget (of the last retry, or null)}. Owned; NULL with
 * OSP_ENOTFOUND when there is no such job. */
json_t *osp_ledger_retry_info(struct osp_pgs *c, const char *id, struct osp_err *err);

/* Make job id queued again with a new attempt budget, when its state is one of from (a
 * PostgreSQL array literal, e.g. "{dead,cancelled}"): event (e.g. 'retried') with data, and
 * an 'audit' event with action. *updated false when the state did not match (nothing done). */
int osp_ledger_requeue(struct osp_pgs *c, const char *id, const char *from, unsigned max_attempts,
                       const char *event, const json_t *data, const struct osp_actor *a,
                       const char *action, bool *updated, struct osp_err *err);

/* Which jobs a bulk operation takes: unfinished jobs of kind in one of states (bits of
 * OSP_BULK_*), optionally only those submitted_by, of schedule, created before/after (ms;
 * 0 = no bound). */
enum { OSP_BULK_QUEUED = 1, OSP_BULK_DELAYED = 2, OSP_BULK_RETRYING = 4 };
struct osp_bulk_filter {
    const char *kind;
    unsigned states;
    const char *submitted_by;
    const char *schedule;
    int64_t created_before_ms;
    int64_t created_after_ms;
    int64_t limit; /* osp_op_bulk_cancel: at most this many jobs (0: all) */
};
int osp_ledger_bulk_count(struct osp_pgs *c, const struct osp_bulk_filter *f, int64_t *n,
                          struct osp_err *err);
/* Cancel up to limit matching jobs with ids after after_id ("" from the start), in id order:
 * each gets a 'cancelled' event naming the audit row audit_id. Returns their ids (array of
 * strings, owned; empty when none are left), NULL with err. Call it inside a transaction
 * (osp_pgs_tx_begin): it sets a planner option for itself with SET LOCAL. */
json_t *osp_ledger_bulk_cancel(struct osp_pgs *c, const struct osp_bulk_filter *f,
                               const char *after_id, int limit, int64_t audit_id,
                               const struct osp_actor *a, struct osp_err *err);

/* One 'audit' event per job of ids (array of id strings) with {who, action, via} and the
 * fields of data (may be NULL), in one statement. */
int osp_ledger_audit_jobs(struct osp_pgs *c, const json_t *ids, const struct osp_actor *a,
                          const char *action, const json_t *data, struct osp_err *err);
/* Reads for the front ends' job lists: newest first (id order: ids are time-ordered), rows
 * of text values {id, kind, state, attempt, max_attempts, recoveries, worker, error,
 * schedule, created_at, run_at, started_at, finished_at}. Any field of the filter may be
 * unset (NULL / 0). Owned, NULL with err. */
struct osp_job_filter {
    const char *kind;
    const char *states;    /* PostgreSQL array literal, e.g. "{queued,running}" */
    int64_t since_ms;      /* created within the last since_ms */
    const char *before_id; /* keyset: ids older than this one */
    int limit;
    const char *target;          /* payload->>'target' equals this */
    const char *idempotency_key; /* exact match */
};
json_t *osp_ledger_jobs(struct osp_pgs *c, const struct osp_job_filter *f, struct osp_err *err);
/* The evidence a seed or backup job recorded, per attempt, oldest first, as typed JSON:
 * {"seed_runs": [{attempt, target, seed, scale, mode, rows, bytes, duration_ms, rows_per_s,
 * digest, created_at}], "backups": [{attempt, target, path, bytes, sha256, server_version,
 * pg_dump_version, duration_ms, verified, restore_ms, expired_at, created_at}]} (empty arrays
 * when the job recorded none). Owned, NULL with err. */
json_t *osp_ledger_job_records(struct osp_pgs *c, const char *id, struct osp_err *err);
/* Jobs of each kind finished within the last window_s seconds: {"<kind>": n, ...}. Owned. */
json_t *osp_ledger_finished_counts(struct osp_pgs *c, int window_s, struct osp_err *err);

/* Schedules (opspool.schedules). A checked definition, upserted; *created tells whether the
 * name was new. */
struct osp_schedule_def {
    const char *name, *cron, *timezone, *kind, *payload_json, *concurrency;
    bool enabled;
    int64_t catchup_s;
    int64_t next_fire_s; /* the first tick from now */
};
int osp_ledger_schedule_upsert(struct osp_pgs *c, const struct osp_schedule_def *d, bool *created,
                               struct osp_err *err);
/* Delete; OSP_ENOTFOUND when there is no such schedule (its firings go by cascade). */
int osp_ledger_schedule_delete(struct osp_pgs *c, const char *name, struct osp_err *err);
/* Enable (next_fire_ms > 0 restarts it from that tick) or disable; next_iso receives the next
 * fire time (RFC 3339, "" when unknown). OSP_ENOTFOUND when absent. */
int osp_ledger_schedule_set_enabled(struct osp_pgs *c, const char *name, bool enabled,
                                    int64_t next_fire_ms, char next_iso[40], struct osp_err *err);
/* Every column of one schedule as typed JSON (to_jsonb: later migrations' columns too), owned;
 * NULL with OSP_ENOTFOUND when absent. */
json_t *osp_ledger_schedule_row(struct osp_pgs *c, const char *name, struct osp_err *err);
/* The schedules as rows of text values: name, cron, timezone, kind, payload, enabled,
 * concurrency, catchup_s, last_fire_at, next_fire_at, last_job_id, created_at, updated_at,
 * last_success_at, latest_job_id, last_outcome, latest_job_at, last_tick, last_tick_reason,
 * last_tick_at — all of them (name NULL) or one (then with "firings": its latest 20). Owned;
 * one schedule that does not exist: NULL with OSP_ENOTFOUND. */
json_t *osp_ledger_schedules(struct osp_pgs *c, const char *name, struct osp_err *err);

/* A transaction on the sync client, for operations that bring Redis along before their
 * commit (osp_op_bulk_cancel). A failed or lost connection rolls back by itself. */
int osp_pgs_tx_begin(struct osp_pgs *c, struct osp_err *err);
int osp_pgs_tx_commit(struct osp_pgs *c, struct osp_err *err);
void osp_pgs_tx_rollback(struct osp_pgs *c);

/* Append an audit row (opspool.audit) for an operation that is not about one job; *id (may be
 * NULL) receives its id. data may be NULL. */
int osp_ledger_audit(struct osp_pgs *c, const struct osp_actor *a, const char *action,
                     const char *object, const json_t *data, int64_t *id, struct osp_err *err);
/* Replace an audit row's data (a bulk operation's counts when it ends). */
int osp_ledger_audit_update(struct osp_pgs *c, int64_t id, const json_t *data, struct osp_err *err);

/* ---- Scheduler duties (ledger_sched.c) ---- */

/* Claim one cron tick (opspool.schedule_firings): status receives 'firing' (this caller fires
 * it), 'skipped' (concurrency forbid and a job of the schedule unfinished) or "" (another
 * replica owns the tick). */
int osp_ledger_cron_claim(struct osp_pgs *c, const char *name, int64_t tick,
                          const char *concurrency, const char *replica, char status[16],
                          struct osp_err *err);
/* Record a tick's outcome and advance the schedule's last/next fire times. */
int osp_ledger_cron_record(struct osp_pgs *c, const char *name, int64_t tick, int64_t next,
                           const char *status, const char *job_id, const char *reason,
                           struct osp_err *err);
/* Record that the ticks from first_missed on (up to the tick now firing) were never fired: a
 * 'missed' row of schedule_firings at first_missed (kept if one is there), its claimed_at the
 * time the miss was found. */
int osp_ledger_cron_missed(struct osp_pgs *c, const char *name, int64_t first_missed,
                           const char *replica, struct osp_err *err);
/* Enabled schedules as rows {name, cron, timezone, kind, payload, concurrency, catchup_s,
 * last_fire, created} (text). */
json_t *osp_ledger_cron_enabled(struct osp_pgs *c, struct osp_err *err);
/* Gauges: jobs per (kind, state) {kind, state, n} — every state, or (unfinished_only) the
 * unfinished ones, counted through their partial index (a full count reads the whole table:
 * about 0.5 s at 1,000,000 jobs); per schedule {name, cron, timezone, created, last_fire,
 * last_success, last_missed} (times as epoch seconds in text; last_missed is when the latest
 * miss was found; NULL when none). */
json_t *osp_ledger_job_counts(struct osp_pgs *c, bool unfinished_only, struct osp_err *err);
json_t *osp_ledger_schedule_times(struct osp_pgs *c, struct osp_err *err);
/* The reconciler's page: unfinished rows untouched for grace_s, ids after after_id, in id
 * order (one transaction with sorting ruled out). */
json_t *osp_ledger_reconcile_page(struct osp_pgs *c, int grace_s, const char *after_id, int limit,
                                  struct osp_err *err);
/* Jobs Redis holds as final while the ledger does not: finals = [[id, state, reason], ...]. */
int osp_ledger_reconcile_finals(struct osp_pgs *c, const json_t *finals, struct osp_err *err);
/* Retention: delete up to batch finished jobs older than days (with their events); firings
 * older than days. */
int osp_ledger_retain_jobs(struct osp_pgs *c, int days, int batch, int64_t *deleted,
                           struct osp_err *err);
int osp_ledger_retain_firings(struct osp_pgs *c, int days, int batch, struct osp_err *err);
/* Audit rows (opspool.audit) older than days, up to batch. */
int osp_ledger_retain_audit(struct osp_pgs *c, int days, int batch, struct osp_err *err);

#endif
