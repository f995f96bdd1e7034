/* SPDX-License-Identifier: MIT */
/* ledger.c — the PostgreSQL ledger (contract in ledger.h, schema in common/sql/).
 *
 * Every write batch becomes ONE statement: data-modifying CTEs over json_to_recordset() of
 * one JSON-array parameter per op type. One statement is one implicit transaction and one
 * round trip, however many ops the batch holds, and no value is ever interpolated into SQL
 * text: the only variable parts of the statement are which CTEs are present and typed-table
 * names, and those come from the fixed allowlist below, never from the caller's strings.
 *
 * All CTEs see the same snapshot and a row may be updated only once per statement, so the
 * jobs row of each job is written by exactly one UPDATE, fed by the batch's "winning" op for
 * that job: the op with the highest attempt, a finish beating a start of the same attempt
 * (a noop job's start and finish often land in one batch). Terminal states are sticky: a
 * job that was succeeded/dead/cancelled when the statement began gets no attempt row, no
 * event and no jobs update. A finish updates the jobs row only when its attempt row was
 * really inserted, so a repeated finish changes nothing; a start is ignored once its attempt
 * has an outcome. Events carry no key: a batch replayed after an unknown outcome may repeat
 * the events of a job that is still live (never those of a finished one). A recovery bump
 * rides on its job's start/finish UPDATE when the batch holds both, and is dropped with a
 * stale one (reaper and worker never share a batch).
 *
 * Ops are checked when added (ids, outcome and state names, typed table and row shape) and
 * strings that are not UTF-8 are repaired (U+FFFD), so a batch never holds an op the server
 * would refuse on every retry: one kind's bug must not stall every other job's outcome
 * behind it. An op that cannot be written is dropped, counted (osp_ledger_error_count,
 * last_error) and, when it names a valid job, replaced by a 'ledger.op_rejected' event of
 * that job saying why. Typed rows the table refuses on the server (a string where a number
 * belongs) likewise become 'ledger.typed_rejected' events (opspool.insert_typed).
 *
 * The asynchronous client drives one nonblocking libpq connection from libev watchers:
 * connect (PQconnectPoll), send (PQsendQueryParams + PQflush), read (PQconsumeInput +
 * PQgetResult while not busy). Commits queue FIFO with one in flight. A lost connection
 * fails the in-flight commit with OSP_EPG (its outcome is unknown; the writes are idempotent
 * so the caller retries) and reconnects with capped exponential backoff and jitter; queued
 * commits wait for the new connection, for at most LEDGER_QUEUE_MAX_S.
 *
 * The synchronous client, migrations and the pool's reads are in ledger_pgs.c; the control
 * plane's statements in ledger_ops.c, the scheduler duties' in ledger_sched.c.
 */
#include "common/ledger.h"
#include "common/ledger_int.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "common/id.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define LEDGER_TERMINAL OSP_JOB_FINAL_SQL

#define LEDGER_BACKOFF_MIN_S 0.1  /* first reconnect delay */
#define LEDGER_BACKOFF_MAX_S 5.0  /* reconnect delay cap */
#define LEDGER_CONNECT_MAX_S 10.0 /* a connection attempt that takes longer is abandoned */
#define LEDGER_COMMIT_MAX_S  60.0 /* an in-flight commit without an answer: connection is dead */
#define LEDGER_QUEUE_MAX_S   30.0 /* a commit queued this long while disconnected fails */

/* Typed per-kind result tables (created by migrations). The index of a name here is the
 * slot of its rows in struct osp_lbatch; names are only ever interpolated from this list. */
enum { LEDGER_NTYPED = 4 };
static const char *const ledger_typed_tables[LEDGER_NTYPED] = {
    "benchmark_results",
    "drill_results",
    "seed_runs",
    "backups",
};

/* Connection parameters applied before the caller's DSN (which may override them): UTF-8
 * on the wire, TCP keepalives so a silently vanished server is noticed, and
 * synchronous_commit=on for opspool's own sessions. Ledger-then-ack and answer-after-commit
 * promise that a commit opspool acted on survives a server crash; a server whose default is
 * synchronous_commit=off (set for other applications, or to speed up a bulk load) would
 * break that promise silently. And jit=off: opspool's statements are short, and a planner cost
 * inflated on purpose (SET LOCAL enable_sort = off in the reconciler's and the bulk cancel's
 * page reads) would otherwise cross jit_above_cost and pay ~200 ms of LLVM compilation per
 * statement (measured: a 5,000-row bulk cancel batch took 363 ms with JIT, 128 ms without).
 * A DSN that sets options itself replaces these; `options=''` sends none, for poolers that
 * refuse the startup parameter (docs/deploy.md). */
static const char *const ledger_conn_keys[] = {
    "client_encoding",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "options",
    "dbname",
    NULL,
};

static bool ledger_str_in(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, list[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- Write batches ---- */

struct osp_lbatch {
    json_t *starts;               /* [{id, attempt, worker, started_ms}] */
    json_t *events;               /* [{id, attempt, ts_ms, type, data}] */
    json_t *finishes;             /* [{id, attempt, worker, outcome, next_state, ...}] */
    json_t *recovered;            /* interrupted runs: [{id, worker, reason, rec, dead, ...}] */
    json_t *restores;             /* job rows re-created from envelopes: [{id, kind, ...}] */
    json_t *typed[LEDGER_NTYPED]; /* rows per ledger_typed_tables[i] */
    size_t count;                 /* ops added, dropped ones included */
    size_t dropped;               /* ops that could not be written as given */
    char drop_msg[200];           /* why the first one was dropped */
};

static void lbatch_clear(struct osp_lbatch *b)
{
    json_array_clear(b->starts);
    json_array_clear(b->events);
    json_array_clear(b->finishes);
    json_array_clear(b->recovered);
    json_array_clear(b->restores);
    for (size_t i = 0; i < LEDGER_NTYPED; i++) {
        json_array_clear(b->typed[i]);
    }
    b->count = 0;
    b->dropped = 0;
    b->drop_msg[0] = '\0';
}

struct osp_lbatch *osp_lbatch_new(void)
{
    struct osp_lbatch *b = osp_xcalloc(1, sizeof(*b));

    b->starts = json_array();
    b->events = json_array();
    b->finishes = json_array();
    b->recovered = json_array();
    b->restores = json_array();
    for (size_t i = 0; i < LEDGER_NTYPED; i++) {
        b->typed[i] = json_array();
    }
    return b;
}

void osp_lbatch_free(struct osp_lbatch *b)
{
    if (b == NULL) {
        return;
    }
    json_decref(b->starts);
    json_decref(b->events);
    json_decref(b->finishes);
    json_decref(b->recovered);
    json_decref(b->restores);
    for (size_t i = 0; i < LEDGER_NTYPED; i++) {
        json_decref(b->typed[i]);
    }
    free(b);
}

size_t osp_lbatch_count(const struct osp_lbatch *b)
{
    return b->count;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when the bytes there are not one
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t ledger_utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80) {
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[0] == 0xe0 && s[1] < 0xa0) ||
            (s[0] == 0xed && s[1] > 0x9f)) {
            return 0;
        }
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80 ||
            (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f)) {
            return 0;
        }
        return 4;
    }
    return 0;
}

/* A JSON string for s, NULL -> null. Text such as an error message may come from a crashed
 * child's stderr: bytes that are not UTF-8 become U+FFFD instead of making the op (and so
 * the batch) unwritable. */
static json_t *ledger_jstr(const char *s)
{
    struct osp_buf clean = OSP_BUF_INIT;
    const unsigned char *p = (const unsigned char *)s;
    json_t *v;
    size_t n;

    if (s == NULL) {
        return json_null();
    }
    v = json_string(s);
    if (v != NULL) {
        return v;
    }
    while (*p != '\0') {
        n = ledger_utf8_len(p);
        if (n == 0) {
            osp_buf_append(&clean, "\xef\xbf\xbd", 3);
            p++;
        } else {
            osp_buf_append(&clean, p, n);
            p += n;
        }
    }
    v = json_string(osp_buf_cstr(&clean));
    osp_buf_deinit(&clean);
    OSP_ASSERT(v != NULL);
    return v;
}

/* Record that an op could not be written as given. Nothing is sent for it; when it names a
 * valid job, an evidence event of that job says what was dropped and why. The batch still
 * commits: a programming error in one kind must not stall every other job's outcome behind
 * a batch that fails on each retry. */
static void OSP_PRINTF(5, 6) lbatch_drop(struct osp_lbatch *b, const char *id, unsigned attempt,
                                         json_t *detail, const char *fmt, ...)
{
    char reason[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (b->dropped++ == 0) {
        snprintf(b->drop_msg, sizeof(b->drop_msg), "%s", reason);
    }
    if (id != NULL && osp_id_is_valid(id)) {
        if (detail == NULL) {
            detail = json_object();
        }
        json_object_set_new(detail, "error", ledger_jstr(reason));
        json_array_append_new(b->events,
                              json_pack("{s:s, s:I, s:I, s:s, s:o}", "id", id, "attempt",
                                        (json_int_t)attempt, "ts_ms", (json_int_t)osp_now_ms(),
                                        "type", "ledger.op_rejected", "data", detail));
    } else {
        json_decref(detail);
    }
    b->count++;
}

static void lbatch_add(struct osp_lbatch *b, json_t *arr, json_t *op)
{
    OSP_ASSERT(op != NULL); /* every string went through ledger_jstr or was validated */
    json_array_append_new(arr, op);
    b->count++;
}

void osp_lbatch_start(struct osp_lbatch *b, const char *id, unsigned attempt, const char *worker,
                      int64_t started_at_ms)
{
    if (id == NULL || !osp_id_is_valid(id)) {
        lbatch_drop(b, NULL, 0, NULL, "start: invalid job id");
        return;
    }
    lbatch_add(b, b->starts,
               json_pack("{s:s, s:I, s:o, s:I}", "id", id, "attempt", (json_int_t)attempt, "worker",
                         ledger_jstr(worker), "started_ms", (json_int_t)started_at_ms));
}

void osp_lbatch_event(struct osp_lbatch *b, const char *id, unsigned attempt, int64_t ts_ms,
                      const char *type, const json_t *data)
{
    if (id == NULL || !osp_id_is_valid(id)) {
        lbatch_drop(b, NULL, 0, NULL, "event: invalid job id");
        return;
    }
    if (type == NULL || type[0] == '\0') {
        lbatch_drop(b, id, attempt, json_pack("{s:O?}", "data", data), "event: empty type");
        return;
    }
    /* A deep copy is the "serialized now" of the contract: the caller may change data. */
    lbatch_add(b, b->events,
               json_pack("{s:s, s:I, s:I, s:o, s:o?}", "id", id, "attempt", (json_int_t)attempt,
                         "ts_ms", (json_int_t)ts_ms, "type", ledger_jstr(type), "data",
                         json_deep_copy(data)));
}

void osp_lbatch_finish(struct osp_lbatch *b, const char *id, unsigned attempt, const char *worker,
                       const char *outcome, const char *next_state, const json_t *result,
                       const char *error, int64_t started_at_ms, int64_t finished_at_ms,
                       int64_t next_run_at_ms)
{
    static const char *const outcomes[] = {"succeeded", "failed",    "timeout",
                                           "crashed",   "cancelled", "rejected"};
    static const char *const states[] = {"succeeded", "failed", "retrying", "dead", "cancelled"};

    if (id == NULL || !osp_id_is_valid(id)) {
        lbatch_drop(b, NULL, 0, NULL, "finish: invalid job id");
        return;
    }
    if (outcome == NULL || !ledger_str_in(outcome, outcomes, OSP_ARRAY_LEN(outcomes)) ||
        next_state == NULL || !ledger_str_in(next_state, states, OSP_ARRAY_LEN(states))) {
        lbatch_drop(b, id, attempt,
                    json_pack("{s:o, s:o, s:o}", "outcome", ledger_jstr(outcome), "next_state",
                              ledger_jstr(next_state), "worker", ledger_jstr(worker)),
                    "finish: invalid outcome or next state");
        return;
    }
    lbatch_add(b, b->finishes,
               json_pack("{s:s, s:I, s:o, s:s, s:s, s:o?, s:o, s:I, s:I, s:I}", "id", id, "attempt",
                         (json_int_t)attempt, "worker", ledger_jstr(worker), "outcome", outcome,
                         "next_state", next_state, "result", json_deep_copy(result), "error",
                         ledger_jstr(error), "started_ms", (json_int_t)started_at_ms, "finished_ms",
                         (json_int_t)finished_at_ms, "next_run_ms", (json_int_t)next_run_at_ms));
}

void osp_lbatch_interrupted(struct osp_lbatch *b, const char *id, const char *worker,
                            const char *reason, int64_t recoveries, bool dead,
                            int64_t started_at_ms, int64_t ts_ms)
{
    if (id == NULL || !osp_id_is_valid(id)) {
        lbatch_drop(b, NULL, 0, NULL, "interrupted: invalid job id");
        return;
    }
    if (recoveries < 0 || recoveries > INT32_MAX || (dead && recoveries == 0)) {
        lbatch_drop(b, id, 0, NULL, "interrupted: invalid recovery count");
        return;
    }
    lbatch_add(b, b->recovered,
               json_pack("{s:s, s:o, s:o, s:I, s:b, s:I, s:I}", "id", id, "worker",
                         ledger_jstr(worker), "reason", ledger_jstr(reason), "rec",
                         (json_int_t)recoveries, "dead", dead, "started_ms",
                         (json_int_t)started_at_ms, "ts_ms", (json_int_t)ts_ms));
}

void osp_lbatch_restore(struct osp_lbatch *b, const struct osp_job *j, const char *why)
{
    if (j == NULL || !osp_id_is_valid(j->id) || !osp_kind_name_is_valid(j->kind)) {
        lbatch_drop(b, NULL, 0, NULL, "restore: invalid job id or kind");
        return;
    }
    json_t *op = json_pack(
        "{s:s, s:s, s:O?, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:I, s:I, s:o}", "id", j->id, "kind",
        j->kind, "payload", j->payload, "attempt",
        (json_int_t)(j->attempt > 0 ? j->attempt - 1 : 0), "max_attempts",
        (json_int_t)j->max_attempts, "timeout_s", (json_int_t)j->timeout_s, "idempotency_key",
        ledger_jstr(j->idempotency_key), "submitted_by", ledger_jstr(j->submitted_by), "schedule",
        ledger_jstr(j->schedule), "trace_id", ledger_jstr(j->trace_id), "enqueued_ms",
        (json_int_t)j->enqueued_at, "run_ms", (json_int_t)j->run_at, "why", ledger_jstr(why));
    if (op == NULL) {
        lbatch_drop(b, j->id, j->attempt, NULL, "restore: payload not representable");
        return;
    }
    lbatch_add(b, b->restores, op);
}

void osp_lbatch_typed(struct osp_lbatch *b, const char *table, const json_t *row)
{
    const char *id = json_string_value(json_object_get(row, "job_id"));
    const json_t *attempt = json_object_get(row, "attempt");
    json_int_t a = json_integer_value(attempt);
    size_t t;

    if (id == NULL || !osp_id_is_valid(id)) {
        lbatch_drop(b, NULL, 0, NULL, "typed: row without a valid job_id");
        return;
    }
    /* job_id and attempt are NOT NULL in every typed table; the table name is only ever
     * compared here, the SQL names the table from ledger_typed_tables. */
    if (!json_is_integer(attempt) || a < 0 || a > INT32_MAX) {
        lbatch_drop(b, id, 0, json_pack("{s:o, s:O}", "table", ledger_jstr(table), "row", row),
                    "typed: attempt must be a non-negative integer");
        return;
    }
    for (t = 0; t < LEDGER_NTYPED; t++) {
        if (table != NULL && strcmp(table, ledger_typed_tables[t]) == 0) {
            break;
        }
    }
    if (t == LEDGER_NTYPED) {
        lbatch_drop(b, id, (unsigned)a,
                    json_pack("{s:o, s:O}", "table", ledger_jstr(table), "row", row),
                    "typed: not a result table");
        return;
    }
    lbatch_add(b, b->typed[t], json_deep_copy(row));
}

/* ---- Batch to SQL ---- */

void ledger_stmt_deinit(struct ledger_stmt *st)
{
    for (int i = 0; i < st->nparams; i++) {
        free(st->params[i]);
    }
    free(st->params);
    free(st->sql);
    memset(st, 0, sizeof(*st));
}

/* Add arr as the next parameter (JSON text) and return its number ($n). */
static int ledger_stmt_param(struct ledger_stmt *st, const json_t *arr)
{
    char *text = json_dumps(arr, JSON_COMPACT);

    OSP_ASSERT(text != NULL); /* arrays of values that were already valid JSON */
    st->params = osp_xrealloc(st->params, (size_t)(st->nparams + 1) * sizeof(*st->params));
    st->params[st->nparams++] = text;
    return st->nparams;
}

static void ledger_cte(struct osp_buf *q, bool *first, const char *fmt, ...) OSP_PRINTF(3, 4);

static void ledger_cte(struct osp_buf *q, bool *first, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    OSP_ASSERT(n >= 0);
    s = osp_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    osp_buf_append(q, *first ? "WITH " : ",\n", *first ? 5 : 2);
    osp_buf_append(q, s, (size_t)n);
    free(s);
    *first = false;
}

/* Take b's contents into st (b is left empty); st->sql stays NULL when nothing is left to
 * write. */
void lbatch_take(struct osp_lbatch *b, struct ledger_stmt *st)
{
    struct osp_buf q = OSP_BUF_INIT;
    bool first = true;
    bool has_f = json_array_size(b->finishes) > 0;
    bool has_s = json_array_size(b->starts) > 0;
    bool has_r = json_array_size(b->recovered) > 0;
    bool has_n = json_array_size(b->restores) > 0;
    bool has_e = json_array_size(b->events) > 0;
    bool has_w = has_f || has_s;
    bool has_t = false;
    int p;

    memset(st, 0, sizeof(*st));
    for (size_t t = 0; t < LEDGER_NTYPED; t++) {
        has_t = has_t || json_array_size(b->typed[t]) > 0;
    }
    if (!has_w && !has_r && !has_e && !has_t && !has_n) {
        goto out;
    }
    if (has_f) {
        p = ledger_stmt_param(st, b->finishes);
        ledger_cte(&q, &first,
                   "f_in AS (SELECT * FROM ROWS FROM (json_to_recordset($%d::json) AS (id uuid, "
                   "attempt int, worker text, outcome text, next_state text, result jsonb, "
                   "error text, started_ms bigint, finished_ms bigint, next_run_ms bigint)) "
                   "WITH ORDINALITY AS x(id, attempt, worker, outcome, next_state, result, "
                   "error, started_ms, finished_ms, next_run_ms, ord))",
                   p);
        /* Attempt rows only for live jobs. A run is known by (attempt, worker, started_at) and
         * an attempt has at most one outcome row besides its interrupted runs. A finish whose
         * run already has a row is a repeat and inserts nothing; when that row says
         * 'interrupted' (the reaper or a restart declared the run lost, and it ran on and
         * finished after all), f_late writes into it how the run ended, and the job stays
         * with the run that owns it now. A new run gets the next run number of its attempt.
         * RETURNING tells which finishes are new. */
        ledger_cte(
            &q, &first,
            "f_late AS (UPDATE opspool.job_attempts a SET result = f.result, "
            "finished_at = opspool.ms_ts(f.finished_ms), error = coalesce(a.error, '') "
            "|| '; the run went on and ended ' || f.outcome || coalesce(': ' || f.error, '') "
            "FROM f_in f WHERE a.job_id = f.id AND a.attempt = f.attempt "
            "AND a.outcome = 'interrupted' AND a.worker = f.worker "
            "AND a.started_at = opspool.ms_ts(f.started_ms) "
            "AND a.error NOT LIKE '%%; the run went on and ended %%' RETURNING 1)");
        ledger_cte(&q, &first,
                   "f_ins AS (INSERT INTO opspool.job_attempts (job_id, attempt, run, worker, "
                   "outcome, error, result, started_at, finished_at) "
                   "SELECT DISTINCT ON (f.id, f.attempt) f.id, f.attempt, "
                   "coalesce((SELECT max(a.run) + 1 FROM opspool.job_attempts a "
                   "WHERE a.job_id = f.id AND a.attempt = f.attempt), 0), f.worker, f.outcome, "
                   "f.error, f.result, opspool.ms_ts(f.started_ms), opspool.ms_ts(f.finished_ms) "
                   "FROM f_in f JOIN opspool.jobs j ON j.id = f.id "
                   "WHERE j.state NOT IN " LEDGER_TERMINAL " "
                   "AND NOT EXISTS (SELECT 1 FROM opspool.job_attempts a WHERE a.job_id = f.id "
                   "AND a.attempt = f.attempt AND (a.outcome <> 'interrupted' OR "
                   "(a.worker IS NOT DISTINCT FROM f.worker "
                   "AND a.started_at IS NOT DISTINCT FROM opspool.ms_ts(f.started_ms)))) "
                   "ORDER BY f.id, f.attempt, f.ord RETURNING job_id, attempt)");
        ledger_cte(&q, &first,
                   "f_win AS (SELECT DISTINCT ON (f.id) f.id, f.attempt, 2 AS prio, "
                   "f.next_state AS state, f.worker, f.result, f.error, f.started_ms, "
                   "f.finished_ms, f.next_run_ms "
                   "FROM f_in f JOIN f_ins i ON i.job_id = f.id AND i.attempt = f.attempt "
                   "ORDER BY f.id, f.attempt DESC, f.ord)");
    }
    if (has_s) {
        p = ledger_stmt_param(st, b->starts);
        ledger_cte(&q, &first,
                   "s_in AS (SELECT * FROM json_to_recordset($%d::json) AS x(id uuid, "
                   "attempt int, worker text, started_ms bigint))",
                   p);
        /* A start of an attempt that has its outcome (or a later one has), or of a run that
         * already has its row (a late or replayed start, or a run declared interrupted), must
         * not flip the job back to running. */
        ledger_cte(&q, &first,
                   "s_win AS (SELECT DISTINCT ON (s.id) s.id, s.attempt, 1 AS prio, "
                   "'running'::text AS state, s.worker, NULL::jsonb AS result, "
                   "NULL::text AS error, s.started_ms, NULL::bigint AS finished_ms, "
                   "NULL::bigint AS next_run_ms FROM s_in s "
                   "WHERE NOT EXISTS (SELECT 1 FROM opspool.job_attempts a "
                   "WHERE a.job_id = s.id AND ((a.attempt >= s.attempt AND "
                   "a.outcome <> 'interrupted') OR (a.attempt = s.attempt "
                   "AND a.worker IS NOT DISTINCT FROM s.worker "
                   "AND a.started_at IS NOT DISTINCT FROM opspool.ms_ts(s.started_ms)))) "
                   "ORDER BY s.id, s.attempt DESC)");
    }
    if (has_w) {
        ledger_cte(&q, &first,
                   "w AS (SELECT DISTINCT ON (u.id) u.* FROM (%s%s%s) u "
                   "ORDER BY u.id, u.attempt DESC, u.prio DESC)",
                   has_f ? "SELECT * FROM f_win" : "", has_f && has_s ? " UNION ALL " : "",
                   has_s ? "SELECT * FROM s_win" : "");
    }
    if (has_r) {
        /* Interrupted runs (osp_lbatch_interrupted): one per job and batch, the highest
         * recovery count winning. A counted recovery (rec > 0) applies once: only while the
         * ledger's count is below it. A hand-back (rec 0) applies once per run. */
        p = ledger_stmt_param(st, b->recovered);
        ledger_cte(&q, &first,
                   "r_in AS (SELECT DISTINCT ON (x.id) x.* FROM ROWS FROM (json_to_recordset("
                   "$%d::json) AS (id uuid, worker text, reason text, rec int, dead bool, "
                   "started_ms bigint, ts_ms bigint)) WITH ORDINALITY AS x(id, worker, reason, "
                   "rec, dead, started_ms, ts_ms, ord) ORDER BY x.id, x.rec DESC, x.ord)",
                   p);
        ledger_cte(&q, &first,
                   "r_run AS (SELECT r.*, greatest(j.attempt, 1) AS attempt, "
                   "CASE WHEN r.started_ms > 0 THEN opspool.ms_ts(r.started_ms) "
                   "WHEN j.worker = r.worker THEN j.started_at END AS started_at "
                   "FROM r_in r JOIN opspool.jobs j ON j.id = r.id "
                   "WHERE j.state NOT IN " LEDGER_TERMINAL " AND CASE WHEN r.rec > 0 "
                   "THEN j.recoveries < r.rec ELSE NOT EXISTS (SELECT 1 FROM "
                   "opspool.job_attempts a WHERE a.job_id = r.id AND a.worker = r.worker "
                   "AND a.started_at = opspool.ms_ts(r.started_ms)) END)");
        ledger_cte(&q, &first,
                   "r_ins AS (INSERT INTO opspool.job_attempts (job_id, attempt, run, worker, "
                   "outcome, error, started_at, finished_at) SELECT r.id, r.attempt, "
                   "coalesce((SELECT max(a.run) + 1 FROM opspool.job_attempts a "
                   "WHERE a.job_id = r.id AND a.attempt = r.attempt), 0), r.worker, "
                   "'interrupted', r.reason, r.started_at, "
                   "coalesce(opspool.ms_ts(r.ts_ms), now()) FROM r_run r RETURNING job_id)");
    }
    if (has_w) {
        /* The one UPDATE of each job touched by a start or finish (a row can be updated only
         * once per statement: an interrupted run of the same job in the same batch gets its
         * attempt row but leaves the jobs row to the start or finish). */
        ledger_cte(
            &q, &first,
            "w_upd AS (UPDATE opspool.jobs j SET state = w.state, attempt = w.attempt, "
            "worker = coalesce(w.worker, j.worker), "
            "started_at = CASE WHEN w.prio = 1 THEN coalesce(opspool.ms_ts(w.started_ms), now()) "
            "ELSE coalesce(opspool.ms_ts(w.started_ms), j.started_at) END, "
            "finished_at = CASE WHEN w.state IN " LEDGER_TERMINAL " "
            "THEN coalesce(opspool.ms_ts(w.finished_ms), now()) END, "
            "result = CASE WHEN w.prio = 2 THEN w.result ELSE j.result END, "
            "error = CASE WHEN w.prio = 2 THEN w.error ELSE j.error END, "
            "run_at = CASE WHEN w.state = 'retrying' "
            "THEN coalesce(opspool.ms_ts(w.next_run_ms), j.run_at) ELSE j.run_at END, "
            "updated_at = now() FROM w "
            "WHERE j.id = w.id AND j.state NOT IN " LEDGER_TERMINAL " AND j.attempt <= w.attempt "
            "RETURNING j.id)");
    }
    if (has_r) {
        /* The job goes back to 'queued' (its envelope is back on the queue), or to 'dead' with
         * the reason; a job another worker already runs keeps its state. The CASE and the
         * WHERE read j, not the snapshot: when a worker's start or finish commits first, the
         * UPDATE re-reads the row (READ COMMITTED) and must neither undo a start nor reopen a
         * finished job. */
        ledger_cte(
            &q, &first,
            "r_upd AS (UPDATE opspool.jobs j SET recoveries = greatest(j.recoveries, r.rec), "
            "state = CASE WHEN r.dead THEN 'dead' WHEN j.state = 'running' AND "
            "j.worker IS DISTINCT FROM r.worker THEN j.state ELSE 'queued' END, "
            "error = CASE WHEN r.dead THEN r.reason ELSE j.error END, "
            "finished_at = CASE WHEN r.dead THEN coalesce(opspool.ms_ts(r.ts_ms), now()) "
            "ELSE j.finished_at END, updated_at = now() FROM r_run r WHERE j.id = r.id "
            "AND j.state NOT IN " LEDGER_TERMINAL "%s RETURNING j.id)",
            has_w ? " AND NOT EXISTS (SELECT 1 FROM w WHERE w.id = r.id)" : "");
    }
    if (has_e) {
        p = ledger_stmt_param(st, b->events);
        ledger_cte(&q, &first,
                   "e_ins AS (INSERT INTO opspool.job_events (job_id, attempt, ts, type, data) "
                   "SELECT e.id, e.attempt, coalesce(opspool.ms_ts(e.ts_ms), now()), e.type, "
                   "e.data FROM ROWS FROM (json_to_recordset($%d::json) AS (id uuid, "
                   "attempt int, ts_ms bigint, type text, data jsonb)) WITH ORDINALITY "
                   "AS e(id, attempt, ts_ms, type, data, ord) "
                   "JOIN opspool.jobs j ON j.id = e.id "
                   "WHERE j.state NOT IN " LEDGER_TERMINAL " ORDER BY e.ord RETURNING 1)",
                   p);
    }
    /* Typed rows go through opspool.insert_typed (0001_init.sql), called from the final
     * SELECT so it runs (a plain SELECT in a CTE would not, unless referenced). */
    /* The first column names the jobs whose start or finish found no row (a submit lost
     * with a PostgreSQL crash or failover): osp_ledger_missing. */
    if (has_s || has_f) {
        osp_buf_appendf(&q,
                        "\nSELECT (SELECT json_agg(DISTINCT m.id)::text FROM (%s%s%s) m "
                        "WHERE NOT EXISTS (SELECT 1 FROM opspool.jobs j WHERE j.id = m.id))",
                        has_s ? "SELECT id FROM s_in" : "", has_s && has_f ? " UNION ALL " : "",
                        has_f ? "SELECT id FROM f_in" : "");
    } else {
        osp_buf_appendf(&q, "\nSELECT NULL::text");
    }
    if (has_n) {
        /* Job rows re-created from envelopes (osp_lbatch_restore): through the one function
         * workers may call for it (0003_runs.sql). */
        p = ledger_stmt_param(st, b->restores);
        osp_buf_appendf(&q, ", opspool.restore_jobs($%d::jsonb)", p);
    }
    for (size_t t = 0; t < LEDGER_NTYPED; t++) {
        if (json_array_size(b->typed[t]) == 0) {
            continue;
        }
        p = ledger_stmt_param(st, b->typed[t]);
        osp_buf_appendf(&q, ", opspool.insert_typed('opspool.%s'::regclass, $%d::jsonb)",
                        ledger_typed_tables[t], p);
    }
    st->sql = osp_xstrdup(osp_buf_cstr(&q));
out:
    osp_buf_deinit(&q);
    lbatch_clear(b);
}

/* Copy the first line of libpq's error text into dst (messages end with a newline). */
void ledger_pq_msg(char *dst, size_t cap, const char *msg)
{
    size_t n = 0;

    if (msg == NULL || msg[0] == '\0') {
        msg = "unknown libpq error";
    }
    while (msg[n] != '\0' && msg[n] != '\n' && n + 1 < cap) {
        n++;
    }
    memcpy(dst, msg, n);
    dst[n] = '\0';
}

/* Server notices (e.g. "schema already exists, skipping" from the migrator's IF NOT EXISTS)
 * are not errors; libpq would print them on stderr, and common/ modules do not log. */
static void ledger_ignore_notice(void *arg, const char *message)
{
    OSP_UNUSED(arg);
    OSP_UNUSED(message);
}

/* Open a PGconn with our defaults in front of the caller's DSN (nonblocking or not). */
PGconn *ledger_pq_open(const char *dsn, bool async)
{
    const char *vals[] = {
        "UTF8", "opspool", "1", "30", "10", "3", "-c synchronous_commit=on -c jit=off", dsn, NULL};
    PGconn *conn;

    _Static_assert(OSP_ARRAY_LEN(vals) == OSP_ARRAY_LEN(ledger_conn_keys), "key/value pairs");
    if (async) {
        conn = PQconnectStartParams(ledger_conn_keys, vals, 1);
    } else {
        conn = PQconnectdbParams(ledger_conn_keys, vals, 1);
    }
    if (conn != NULL) {
        PQsetNoticeProcessor(conn, ledger_ignore_notice, NULL);
    }
    return conn;
}

/* ---- Asynchronous client ---- */

enum ledger_state { LEDGER_DOWN, LEDGER_CONNECTING, LEDGER_READY };

struct ledger_req {
    struct ledger_req *next;
    struct ledger_stmt st;
    bool collect; /* the statement returns ids: gather them in l->inserted */
    bool named;   /* the jobs insert: sent as LEDGER_INSERT_STMT once it is prepared */
    bool prepare; /* internal: PREPARE LEDGER_INSERT_STMT, ahead of its first use */
    osp_ledger_cb *cb;
    void *arg;
    ev_tstamp queued_at;
};

/* The jobs insert, prepared once per connection (API submit groups, several per millisecond:
 * parsing and planning it each time was a quarter of its backend's CPU). */
#define LEDGER_INSERT_STMT "osp_insert_jobs"

struct osp_ledger {
    struct ev_loop *loop;
    char *dsn;
    PGconn *conn;
    enum ledger_state state;
    ev_io io;                /* PQsocket; events follow what libpq waits for */
    ev_timer retry;          /* reconnect after backoff */
    ev_timer deadline;       /* connect timeout, or in-flight commit timeout */
    ev_timer kick;           /* zero-delay: send the next commit outside the caller's stack */
    ev_timer expire;         /* 1 s tick while disconnected: fail commits queued too long */
    struct ledger_req *head; /* queued, FIFO */
    struct ledger_req *tail;
    struct ledger_req *inflight;
    bool inflight_failed; /* an error result arrived for the in-flight statement */
    double backoff_s;     /* next reconnect delay before jitter */
    uint64_t rng;         /* xorshift state for jitter */
    osp_ledger_state_cb *state_cb;
    void *state_arg;
    uint64_t errors;
    char last_error[256];
    int depth;        /* >0 while inside a watcher callback or osp_ledger_free */
    bool dead;        /* osp_ledger_free was called; memory goes when depth is 0 */
    json_t *missing;  /* ids of the completing commit's starts/finishes without a row */
    json_t *inserted; /* ids an insert statement returned (object id -> true) */
    bool prepared;    /* LEDGER_INSERT_STMT exists on this connection */
    bool prep_failed; /* its PREPARE failed here: send the insert unnamed */
};

static void ledger_lost(struct osp_ledger *l, const char *why);
static void ledger_enqueue(struct osp_ledger *l, struct ledger_req *req);
static void ledger_connect(struct osp_ledger *l);

static void ledger_error(struct osp_ledger *l, const char *prefix, const char *msg)
{
    char line[200];

    ledger_pq_msg(line, sizeof(line), msg);
    snprintf(l->last_error, sizeof(l->last_error), "%s: %s", prefix, line);
    l->errors++;
}

static void ledger_io_arm(struct osp_ledger *l, int fd, int events)
{
    if (ev_is_active(&l->io) && l->io.fd == fd && (l->io.events & (EV_READ | EV_WRITE)) == events) {
        return;
    }
    ev_io_stop(l->loop, &l->io);
    if (fd >= 0 && events != 0) {
        ev_io_set(&l->io, fd, events);
        ev_io_start(l->loop, &l->io);
    }
}

/* Enter/leave a callback frame: a user callback may free the ledger; the memory stays
 * valid until the outermost frame returns. */
static void ledger_enter(struct osp_ledger *l)
{
    l->depth++;
}

static void ledger_destroy(struct osp_ledger *l)
{
    json_decref(l->inserted);
    free(l->dsn);
    free(l);
}

static void ledger_leave(struct osp_ledger *l)
{
    if (--l->depth == 0 && l->dead) {
        ledger_destroy(l);
    }
}

/* Call back req and free it. Returns false when the callback freed the ledger. */
static bool ledger_complete(struct osp_ledger *l, struct ledger_req *req, int status)
{
    osp_ledger_cb *cb = req->cb;
    void *arg = req->arg;

    ledger_stmt_deinit(&req->st);
    free(req);
    if (status != 0) {
        json_decref(l->missing);
        l->missing = NULL;
    }
    if (status != 0) {
        json_object_clear(l->inserted);
    }
    cb(l, status, arg);
    json_decref(l->missing);
    l->missing = NULL;
    json_object_clear(l->inserted);
    return !l->dead;
}

const json_t *osp_ledger_missing(const struct osp_ledger *l)
{
    return l->missing;
}

/* Enter or leave LEDGER_READY, telling the state callback about real transitions only. */
static void ledger_set_ready(struct osp_ledger *l, bool ready)
{
    bool was = l->state == LEDGER_READY;

    if (ready) {
        l->state = LEDGER_READY;
    } else if (was) {
        l->state = LEDGER_DOWN;
    }
    if (ready != was && l->state_cb != NULL) {
        l->state_cb(l, ready, l->state_arg);
    }
}

static void ledger_kick(struct osp_ledger *l)
{
    if (!ev_is_active(&l->kick)) {
        ev_timer_set(&l->kick, 0., 0.);
        ev_timer_start(l->loop, &l->kick);
    }
}

static struct ledger_req *ledger_pop(struct osp_ledger *l)
{
    struct ledger_req *req = l->head;

    l->head = req->next;
    if (l->head == NULL) {
        l->tail = NULL;
    }
    req->next = NULL;
    return req;
}

/* Write what libpq has buffered; arm for writability while some remains. */
static void ledger_flush(struct osp_ledger *l)
{
    int r = PQflush(l->conn);

    if (r < 0) {
        ledger_lost(l, PQerrorMessage(l->conn));
        return;
    }
    ledger_io_arm(l, PQsocket(l->conn), r == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void ledger_prepared(struct osp_ledger *l, int status, void *arg)
{
    OSP_UNUSED(arg);
    if (status == 0) {
        l->prepared = true;
    } else {
        l->prep_failed = true; /* until the next connection */
    }
}

/* Queue the PREPARE of the named insert at the head (its first use on this connection). */
static void ledger_push_prepare(struct osp_ledger *l)
{
    struct ledger_req *p = osp_xcalloc(1, sizeof(*p));
    p->prepare = true;
    p->st.sql = osp_xstrdup(l->head->st.sql); /* no parameters: the PREPARE infers them */
    p->cb = ledger_prepared;
    p->queued_at = l->head->queued_at;
    p->next = l->head;
    l->head = p;
}

/* Send the next queued commit when the connection is idle. Empty commits complete here,
 * without a round trip, in their FIFO turn. */
static void ledger_pump(struct osp_ledger *l)
{
    struct ledger_req *req;

    while (l->inflight == NULL && l->head != NULL) {
        if (l->head->st.sql == NULL) {
            if (!ledger_complete(l, ledger_pop(l), 0)) {
                return;
            }
            continue;
        }
        if (l->state != LEDGER_READY) {
            if (!ev_is_active(&l->expire)) {
                ev_timer_again(l->loop, &l->expire);
            }
            return;
        }
        if (l->head->named && !l->prepared && !l->prep_failed) {
            ledger_push_prepare(l);
        }
        struct ledger_req *h = l->head;
        int sent;
        if (h->prepare) {
            sent = PQsendPrepare(l->conn, LEDGER_INSERT_STMT, h->st.sql, 0, NULL);
        } else if (h->named && l->prepared) {
            sent = PQsendQueryPrepared(l->conn, LEDGER_INSERT_STMT, h->st.nparams,
                                       (const char *const *)h->st.params, NULL, NULL, 0);
        } else {
            sent = PQsendQueryParams(l->conn, h->st.sql, h->st.nparams, NULL,
                                     (const char *const *)h->st.params, NULL, NULL, 0);
        }
        if (!sent) {
            if (PQstatus(l->conn) == CONNECTION_BAD) {
                /* Not sent: it stays first in the queue for the next connection. */
                ledger_lost(l, PQerrorMessage(l->conn));
                return;
            }
            ledger_error(l, "send", PQerrorMessage(l->conn));
            if (!ledger_complete(l, ledger_pop(l), OSP_EPG)) {
                return;
            }
            continue;
        }
        req = ledger_pop(l);
        l->inflight = req;
        l->inflight_failed = false;
        ev_timer_stop(l->loop, &l->deadline);
        ev_timer_set(&l->deadline, LEDGER_COMMIT_MAX_S, 0.);
        ev_timer_start(l->loop, &l->deadline);
        ledger_flush(l);
        return;
    }
}

static void ledger_schedule_retry(struct osp_ledger *l)
{
    double jitter;
    double delay;

    /* xorshift64: spreads reconnects of many workers after a PostgreSQL restart. */
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    jitter = (double)(l->rng >> 11) / 9007199254740992.0; /* [0, 1) */
    delay = l->backoff_s * (0.75 + 0.5 * jitter);
    if (delay > LEDGER_BACKOFF_MAX_S) {
        delay = LEDGER_BACKOFF_MAX_S;
    }
    l->backoff_s *= 2;
    if (l->backoff_s > LEDGER_BACKOFF_MAX_S) {
        l->backoff_s = LEDGER_BACKOFF_MAX_S;
    }
    ev_timer_stop(l->loop, &l->retry);
    ev_timer_set(&l->retry, delay, 0.);
    ev_timer_start(l->loop, &l->retry);
}

/* The connection is gone (or never came up): drop it, fail the in-flight commit, and come
 * back later. Queued commits stay queued. */
static void ledger_lost(struct osp_ledger *l, const char *why)
{
    struct ledger_req *req;

    ledger_error(l, l->state == LEDGER_CONNECTING ? "connect" : "connection lost", why);
    ledger_io_arm(l, -1, 0);
    ev_timer_stop(l->loop, &l->deadline);
    if (l->conn != NULL) {
        PQfinish(l->conn);
        l->conn = NULL;
    }
    ledger_schedule_retry(l);
    if (l->state == LEDGER_CONNECTING) {
        l->state = LEDGER_DOWN;
    }
    /* The in-flight commit stays attached during the state callback: if that callback
     * frees the ledger, osp_ledger_free cancels it like any other pending commit. */
    ledger_set_ready(l, false);
    if (l->dead) {
        return;
    }
    req = l->inflight;
    l->inflight = NULL;
    if (req != NULL && !ledger_complete(l, req, OSP_EPG)) {
        return;
    }
    if (l->head != NULL) {
        ledger_kick(l); /* starts the expiry tick for what waits */
    }
}

static void ledger_connected(struct osp_ledger *l)
{
    if (PQsetnonblocking(l->conn, 1) != 0) {
        ledger_lost(l, PQerrorMessage(l->conn));
        return;
    }
    ev_timer_stop(l->loop, &l->deadline);
    ev_timer_stop(l->loop, &l->expire);
    l->backoff_s = LEDGER_BACKOFF_MIN_S;
    l->prepared = l->prep_failed = false; /* a new session: nothing prepared yet */
    /* Readable while idle too: that is how a server-side disconnect is noticed. */
    ledger_io_arm(l, PQsocket(l->conn), EV_READ);
    ledger_set_ready(l, true);
    if (!l->dead) {
        ledger_kick(l);
    }
}

static void ledger_poll_connect(struct osp_ledger *l)
{
    switch (PQconnectPoll(l->conn)) {
    case PGRES_POLLING_READING:
        ledger_io_arm(l, PQsocket(l->conn), EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        ledger_io_arm(l, PQsocket(l->conn), EV_WRITE);
        break;
    case PGRES_POLLING_OK:
        ledger_connected(l);
        break;
    case PGRES_POLLING_FAILED:
    default:
        ledger_lost(l, PQerrorMessage(l->conn));
        break;
    }
}

static void ledger_connect(struct osp_ledger *l)
{
    l->conn = ledger_pq_open(l->dsn, true);
    l->state = LEDGER_CONNECTING;
    if (l->conn == NULL || PQstatus(l->conn) == CONNECTION_BAD) {
        ledger_lost(l, l->conn ? PQerrorMessage(l->conn) : "out of memory");
        return;
    }
    ev_timer_stop(l->loop, &l->deadline);
    ev_timer_set(&l->deadline, LEDGER_CONNECT_MAX_S, 0.);
    ev_timer_start(l->loop, &l->deadline);
    /* libpq: after PQconnectStart, behave as if PQconnectPoll had asked for writability. */
    ledger_io_arm(l, PQsocket(l->conn), EV_WRITE);
}

/* Readable while connected: collect results of the in-flight statement. */
static void ledger_read(struct osp_ledger *l)
{
    PGnotify *n;
    PGresult *res;
    ExecStatusType st;

    if (!PQconsumeInput(l->conn)) {
        ledger_lost(l, PQerrorMessage(l->conn));
        return;
    }
    while ((n = PQnotifies(l->conn)) != NULL) {
        PQfreemem(n);
    }
    if (l->inflight == NULL) {
        if (PQstatus(l->conn) == CONNECTION_BAD) {
            ledger_lost(l, PQerrorMessage(l->conn));
        }
        return;
    }
    while (!PQisBusy(l->conn)) {
        res = PQgetResult(l->conn);
        if (res == NULL) {
            struct ledger_req *req = l->inflight;

            if (PQstatus(l->conn) == CONNECTION_BAD) {
                ledger_lost(l, PQerrorMessage(l->conn));
                return;
            }
            l->inflight = NULL;
            ev_timer_stop(l->loop, &l->deadline);
            if (!ledger_complete(l, req, l->inflight_failed ? OSP_EPG : 0)) {
                return;
            }
            ledger_kick(l);
            return;
        }
        st = PQresultStatus(res);
        if (st == PGRES_FATAL_ERROR && l->inflight->named && l->prepared) {
            /* 26000: the named statement is gone (a pooler handed this session another
             * server connection, or DISCARD ALL ran): send it unnamed from now on. */
            const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            if (code != NULL && strcmp(code, "26000") == 0) {
                l->prep_failed = true;
                l->prepared = false;
            }
        }
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !l->inflight_failed) {
            l->inflight_failed = true;
            ledger_error(l, "commit", PQresultErrorMessage(res));
        }
        if (st == PGRES_TUPLES_OK && l->inflight->collect) {
            for (int r = 0; r < PQntuples(res); r++) {
                json_object_set_new(l->inserted, PQgetvalue(res, r, 0), json_true());
            }
        } else if (st == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) >= 1 &&
                   !PQgetisnull(res, 0, 0)) {
            json_decref(l->missing);
            l->missing = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
        }
        PQclear(res);
    }
}

static void ledger_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct osp_ledger *l = osp_container_of(w, struct osp_ledger, io);

    OSP_UNUSED(loop);
    ledger_enter(l);
    if (l->state == LEDGER_CONNECTING) {
        ledger_poll_connect(l);
    } else if (l->state == LEDGER_READY) {
        if (revents & EV_WRITE) {
            ledger_flush(l);
        }
        if ((revents & EV_READ) && !l->dead && l->state == LEDGER_READY) {
            ledger_read(l);
        }
    }
    ledger_leave(l);
}

static void ledger_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct osp_ledger *l = osp_container_of(w, struct osp_ledger, retry);

    OSP_UNUSED(loop);
    OSP_UNUSED(revents);
    ledger_enter(l);
    ledger_connect(l);
    ledger_leave(l);
}

static void ledger_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct osp_ledger *l = osp_container_of(w, struct osp_ledger, deadline);

    OSP_UNUSED(loop);
    OSP_UNUSED(revents);
    ledger_enter(l);
    ledger_lost(l, l->state == LEDGER_CONNECTING
                       ? "connect timed out"
                       : "no answer to a commit, connection presumed dead");
    ledger_leave(l);
}

static void ledger_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct osp_ledger *l = osp_container_of(w, struct osp_ledger, kick);

    OSP_UNUSED(loop);
    OSP_UNUSED(revents);
    ledger_enter(l);
    ledger_pump(l);
    ledger_leave(l);
}

/* While disconnected: fail commits that waited longer than LEDGER_QUEUE_MAX_S. The queue is
 * FIFO, so the expired ones are at its head. */
static void ledger_expire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct osp_ledger *l = osp_container_of(w, struct osp_ledger, expire);
    ev_tstamp now = ev_now(loop);

    OSP_UNUSED(revents);
    ledger_enter(l);
    while (l->head != NULL && l->state != LEDGER_READY &&
           now - l->head->queued_at >= LEDGER_QUEUE_MAX_S) {
        if (!ledger_complete(l, ledger_pop(l), OSP_EPG)) {
            goto out;
        }
    }
    if (l->head == NULL || l->state == LEDGER_READY) {
        ev_timer_stop(loop, &l->expire);
    }
out:
    ledger_leave(l);
}

struct osp_ledger *osp_ledger_new(struct ev_loop *loop, const char *dsn, struct osp_err *err)
{
    struct osp_ledger *l;
    PQconninfoOption *opts;
    char *msg = NULL;

    /* Reject a malformed DSN now rather than retrying it forever. */
    opts = PQconninfoParse(dsn ? dsn : "", &msg);
    if (opts == NULL) {
        char line[200];

        ledger_pq_msg(line, sizeof(line), msg ? msg : "out of memory");
        osp_err_set(err, OSP_EINVAL, "invalid PostgreSQL DSN: %s", line);
        PQfreemem(msg);
        return NULL;
    }
    PQconninfoFree(opts);

    l = osp_xcalloc(1, sizeof(*l));
    l->loop = loop;
    l->dsn = osp_xstrdup(dsn ? dsn : "");
    l->backoff_s = LEDGER_BACKOFF_MIN_S;
    l->inserted = json_object();
    l->rng = (uint64_t)osp_mono_ns() ^ (uint64_t)(uintptr_t)l ^ 0x9e3779b97f4a7c15ull;
    if (l->rng == 0) {
        l->rng = 1;
    }
    ev_io_init(&l->io, ledger_io_cb, -1, 0);
    ev_timer_init(&l->retry, ledger_retry_cb, 0., 0.);
    ev_timer_init(&l->deadline, ledger_deadline_cb, 0., 0.);
    ev_timer_init(&l->kick, ledger_kick_cb, 0., 0.);
    ev_timer_init(&l->expire, ledger_expire_cb, 0., 1.);
    ledger_connect(l);
    return l;
}

void osp_ledger_free(struct osp_ledger *l)
{
    struct ledger_req *req;

    if (l == NULL || l->dead) {
        return;
    }
    l->dead = true;
    ledger_enter(l);
    ev_io_stop(l->loop, &l->io);
    ev_timer_stop(l->loop, &l->retry);
    ev_timer_stop(l->loop, &l->deadline);
    ev_timer_stop(l->loop, &l->kick);
    ev_timer_stop(l->loop, &l->expire);
    if (l->conn != NULL) {
        PQfinish(l->conn);
        l->conn = NULL;
    }
    l->state = LEDGER_DOWN;
    if (l->inflight != NULL) {
        req = l->inflight;
        l->inflight = NULL;
        ledger_complete(l, req, OSP_ECANCELED);
    }
    while (l->head != NULL) {
        ledger_complete(l, ledger_pop(l), OSP_ECANCELED);
    }
    ledger_leave(l);
}

void osp_ledger_set_state_cb(struct osp_ledger *l, osp_ledger_state_cb *cb, void *arg)
{
    l->state_cb = cb;
    l->state_arg = arg;
}

bool osp_ledger_is_ready(const struct osp_ledger *l)
{
    return l->state == LEDGER_READY;
}

const char *osp_ledger_last_error(const struct osp_ledger *l)
{
    return l->last_error;
}

uint64_t osp_ledger_error_count(const struct osp_ledger *l)
{
    return l->errors;
}

int osp_ledger_commit(struct osp_ledger *l, struct osp_lbatch *b, osp_ledger_cb *cb, void *arg)
{
    struct ledger_req *req;

    if (l->dead) {
        lbatch_clear(b);
        return OSP_ECANCELED;
    }
    if (b->dropped > 0) {
        /* The rest of the batch is committed; the drop is counted and shown here. */
        snprintf(l->last_error, sizeof(l->last_error), "batch: %zu op(s) dropped, first: %s",
                 b->dropped, b->drop_msg);
        l->errors++;
    }
    req = osp_xcalloc(1, sizeof(*req));
    lbatch_take(b, &req->st);
    req->cb = cb;
    req->arg = arg;
    ledger_enqueue(l, req);
    return 0;
}

/* Queue req (taken) behind the others. */
static void ledger_enqueue(struct osp_ledger *l, struct ledger_req *req)
{
    req->queued_at = ev_now(l->loop);
    if (l->tail != NULL) {
        l->tail->next = req;
    } else {
        l->head = req;
    }
    l->tail = req;
    ledger_kick(l);
}

int osp_ledger_insert_jobs_async(struct osp_ledger *l, const struct osp_job *jobs, size_t n,
                                 osp_ledger_cb *cb, void *arg, struct osp_err *err)
{
    if (l->dead) {
        return osp_err_set(err, OSP_ECANCELED, "ledger client closed");
    }
    char *rows = ledger_insert_jobs_rows(jobs, n, NULL, err);
    if (rows == NULL) {
        return OSP_EINVAL;
    }
    struct ledger_req *req = osp_xcalloc(1, sizeof(*req));
    req->st.sql = osp_xstrdup(ledger_insert_jobs_sql);
    req->st.params = osp_xmalloc(sizeof(*req->st.params));
    req->st.params[0] = rows;
    req->st.nparams = 1;
    req->collect = true;
    req->named = true;
    req->cb = cb;
    req->arg = arg;
    ledger_enqueue(l, req);
    return 0;
}

const json_t *osp_ledger_inserted(const struct osp_ledger *l)
{
    return l->inserted;
}
