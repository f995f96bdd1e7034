/* SPDX-License-Identifier: MIT */
/* ledger_ops.c — the control-plane statements of the ledger: cancel, requeue (retry and dead
 * retry), bulk cancel, audit rows. Contract: common/ledger.h. Each change commits with its
 * events and its audit record in one statement, so no reader ever sees one without the
 * other. The order against Redis is common/ops.c's (the ledger first). */
#include "common/alloc.h"
#include "common/base.h"
#include "common/id.h"
#include "common/ledger.h"
#include "common/ledger_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *row_str(const json_t *row, const char *f)
{
    return json_string_value(json_object_get(row, f));
}

int osp_ledger_cancel(struct osp_pgs *c, const char *id, const struct osp_actor *a, char prev[16],
                      char kind[OSP_KIND_MAX + 1], struct osp_err *err)
{
    prev[0] = '\0';
    kind[0] = '\0';
    const char *params[] = {id, a->who, a->via};
    json_t *rows = osp_pgs_query(
        c,
        "WITH j AS (SELECT id, kind, state, attempt FROM opspool.jobs WHERE id = $1::uuid "
        "  FOR UPDATE), "
        "u AS (UPDATE opspool.jobs t SET state = 'cancelled', finished_at = now(), "
        "  updated_at = now(), error = coalesce(t.error, 'cancelled via ' || $3::text) "
        "  FROM j WHERE t.id = j.id AND j.state IN ('queued', 'delayed', 'retrying') "
        "  RETURNING t.id), "
        "e AS (INSERT INTO opspool.job_events (job_id, attempt, type, data) "
        "  SELECT id, nullif(attempt, 0), "
        "    CASE WHEN state = 'running' THEN 'cancel_requested' ELSE 'cancelled' END, "
        "    jsonb_build_object('by', $3::text, 'from', state) "
        "  FROM j WHERE state IN ('queued', 'delayed', 'retrying', 'running')), "
        /* The audit record commits with the change it records (docs/security.md). */
        "au AS (INSERT INTO opspool.job_events (job_id, type, data) "
        "  SELECT id, 'audit', jsonb_build_object('who', $2::text, 'action', 'job.cancel', "
        "    'via', $3::text, 'previous_state', state) "
        "  FROM j WHERE state IN ('queued', 'delayed', 'retrying', 'running')) "
        "SELECT kind, state FROM j",
        3, params, err);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    const json_t *row = json_array_get(rows, 0);
    int rc = 0;
    if (row == NULL) {
        rc = osp_err_set(err, OSP_ENOTFOUND, "no job %s", id);
    } else {
        snprintf(prev, 16, "%s", row_str(row, "state"));
        snprintf(kind, OSP_KIND_MAX + 1, "%s", row_str(row, "kind"));
    }
    json_decref(rows);
    return rc;
}

static int64_t row_int(const json_t *row, const char *f, int64_t dflt)
{
    const char *v = row_str(row, f);
    return v != NULL && v[0] != '\0' ? strtoll(v, NULL, 10) : dflt;
}

static void row_text(const json_t *row, const char *f, char **dst)
{
    const char *v = row_str(row, f);
    if (v != NULL) {
        free(*dst);
        *dst = osp_xstrdup(v);
    }
}

int osp_ledger_job_from_row(const json_t *row, struct osp_job *j, struct osp_err *err)
{
    const char *id = row_str(row, "id");
    const char *kind = row_str(row, "kind");
    if (id == NULL || !osp_id_is_valid(id) || kind == NULL || !osp_kind_name_is_valid(kind)) {
        return osp_err_set(err, OSP_EPROTO, "ledger row without a valid id or kind");
    }
    snprintf(j->id, sizeof(j->id), "%s", id);
    snprintf(j->kind, sizeof(j->kind), "%s", kind);
    const char *payload = row_str(row, "payload");
    json_error_t je;
    json_t *p = json_loads(payload != NULL ? payload : "{}", JSON_DECODE_ANY, &je);
    if (p == NULL || !json_is_object(p)) {
        json_decref(p);
        return osp_err_set(err, OSP_EPROTO, "job %s: the ledger's payload is unreadable", id);
    }
    json_decref(j->payload);
    j->payload = p;
    j->attempt = (uint32_t)row_int(row, "attempt", 0);
    j->max_attempts = (uint32_t)row_int(row, "max_attempts", 1);
    j->timeout_s = (uint32_t)row_int(row, "timeout_s", 0);
    j->enqueued_at = row_int(row, "created_ms", osp_now_ms());
    int64_t run_ms = row_int(row, "run_ms", 0);
    j->run_at = run_ms > osp_now_ms() ? run_ms : 0;
    row_text(row, "idempotency_key", &j->idempotency_key);
    row_text(row, "submitted_by", &j->submitted_by);
    row_text(row, "schedule", &j->schedule);
    row_text(row, "trace_id", &j->trace_id);
    return 0;
}

int osp_ledger_job_brief(struct osp_pgs *c, const char *id, char kind[OSP_KIND_MAX + 1],
                         char state[16], struct osp_err *err)
{
    const char *params[] = {id};
    json_t *rows = osp_pgs_query(c, "SELECT kind, state FROM opspool.jobs WHERE id = $1::uuid", 1,
                                 params, err);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    const json_t *row = json_array_get(rows, 0);
    int rc = 0;
    if (row == NULL) {
        rc = osp_err_set(err, OSP_ENOTFOUND, "no job %s", id);
    } else {
        snprintf(kind, OSP_KIND_MAX + 1, "%s", row_str(row, "kind"));
        snprintf(state, 16, "%s", row_str(row, "state"));
    }
    json_decref(rows);
    return rc;
}

json_t *osp_ledger_retry_info(struct osp_pgs *c, const char *id, struct osp_err *err)
{
    const char *params[] = {id};
    json_t *rows = osp_pgs_query(
        c,
        "SELECT j.id::text AS id, j.state, j.kind, j.attempt, j.max_attempts, j.timeout_s, "
        "j.payload::text AS "
        "payload, j.idempotency_key, j.submitted_by, j.schedule, j.trace_id, "
        "(extract(epoch FROM j.created_at) * 1000)::bigint AS created_ms, "
        "coalesce((SELECT max(a.attempt) FROM opspool.job_attempts a WHERE a.job_id = j.id), 0) "
        "AS last_attempt, (SELECT (e.data->>'budget')::int FROM opspool.job_events e "
        "WHERE e.job_id = j.id AND e.type IN ('retried', 'retried_from_dead') "
        "ORDER BY e.id DESC LIMIT 1) AS budget FROM opspool.jobs j WHERE j.id = $1::uuid",
        1, params, err);
    if (rows == NULL) {
        return NULL;
    }
    json_t *row = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    if (row == NULL) {
        osp_err_set(err, OSP_ENOTFOUND, "no job %s", id);
    }
    return row;
}

int osp_ledger_requeue(struct osp_pgs *c, const char *id, const char *from, unsigned max_attempts,
                       const char *event, const json_t *data, const struct osp_actor *a,
                       const char *action, bool *updated, struct osp_err *err)
{
    char maxs[16];
    snprintf(maxs, sizeof(maxs), "%u", max_attempts);
    char *d = json_dumps(data, JSON_COMPACT);
    const char *params[] = {id, maxs, from, event, d, a->who, action, a->via};
    json_t *rows = osp_pgs_query(
        c,
        "WITH u AS (UPDATE opspool.jobs SET state = 'queued', max_attempts = $2::int, "
        "  error = NULL, result = NULL, finished_at = NULL, run_at = NULL, worker = NULL, "
        "  updated_at = now() WHERE id = $1::uuid AND state = ANY ($3::text[]) RETURNING id), "
        "e AS (INSERT INTO opspool.job_events (job_id, type, data) "
        "  SELECT id, $4::text, $5::jsonb FROM u), "
        "au AS (INSERT INTO opspool.job_events (job_id, type, data) "
        "  SELECT id, 'audit', jsonb_build_object('who', $6::text, 'action', $7::text, "
        "    'via', $8::text) FROM u) "
        "SELECT count(*) AS n FROM u",
        8, params, err);
    free(d);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    *updated = strcmp(row_str(json_array_get(rows, 0), "n"), "1") == 0;
    json_decref(rows);
    return 0;
}

/* The filter as query parameters $1..$6: kind, states[], submitted_by, schedule,
 * created_before_ms, created_after_ms. */
struct bulk_params {
    char states[48];
    char before[24];
    char after[24];
    const char *p[6];
};

static void bulk_params(const struct osp_bulk_filter *f, struct bulk_params *bp)
{
    snprintf(bp->states, sizeof(bp->states), "{%s%s%s}",
             (f->states & OSP_BULK_QUEUED) ? "queued," : "",
             (f->states & OSP_BULK_DELAYED) ? "delayed," : "",
             (f->states & OSP_BULK_RETRYING) ? "retrying," : "");
    size_t n = strlen(bp->states);
    if (n > 2 && bp->states[n - 2] == ',') {
        bp->states[n - 2] = '}';
        bp->states[n - 1] = '\0';
    }
    snprintf(bp->before, sizeof(bp->before), "%lld", (long long)f->created_before_ms);
    snprintf(bp->after, sizeof(bp->after), "%lld", (long long)f->created_after_ms);
    bp->p[0] = f->kind;
    bp->p[1] = bp->states;
    bp->p[2] = f->submitted_by;
    bp->p[3] = f->schedule;
    bp->p[4] = f->created_before_ms > 0 ? bp->before : NULL;
    bp->p[5] = f->created_after_ms > 0 ? bp->after : NULL;
}

/* Matching rows, walked in id order on jobs_unfinished_idx (only unfinished rows are in it). */
#define BULK_WHERE                                                                                 \
    "state NOT IN " OSP_JOB_FINAL_SQL " AND kind = $1::text "                                      \
    "AND state = ANY ($2::text[]) AND ($3::text IS NULL OR submitted_by = $3::text) "              \
    "AND ($4::text IS NULL OR schedule = $4::text) "                                               \
    "AND ($5::bigint IS NULL OR created_at < opspool.ms_ts($5::bigint)) "                          \
    "AND ($6::bigint IS NULL OR created_at >= opspool.ms_ts($6::bigint)) "

int osp_ledger_bulk_count(struct osp_pgs *c, const struct osp_bulk_filter *f, int64_t *n,
                          struct osp_err *err)
{
    struct bulk_params bp;
    bulk_params(f, &bp);
    json_t *rows =
        osp_pgs_query(c, "SELECT count(*) AS n FROM opspool.jobs WHERE " BULK_WHERE, 6, bp.p, err);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    *n = strtoll(row_str(json_array_get(rows, 0), "n"), NULL, 10);
    json_decref(rows);
    return 0;
}

json_t *osp_ledger_bulk_cancel(struct osp_pgs *c, const struct osp_bulk_filter *f,
                               const char *after_id, int limit, int64_t audit_id,
                               const struct osp_actor *a, struct osp_err *err)
{
    struct bulk_params bp;
    bulk_params(f, &bp);
    char lim[16], aid[24];
    snprintf(lim, sizeof(lim), "%d", limit);
    snprintf(aid, sizeof(aid), "%lld", (long long)audit_id);
    const char *params[] = {bp.p[0],
                            bp.p[1],
                            bp.p[2],
                            bp.p[3],
                            bp.p[4],
                            bp.p[5],
                            after_id != NULL && after_id[0] != '\0' ? after_id : NULL,
                            lim,
                            a->via,
                            a->who,
                            aid};
    /* The batch must be read in id order from jobs_unfinished_idx, stopping at the limit. A
     * fresh backlog's statistics are stale (a million rows inserted a minute ago), and the
     * planner then prefers a bitmap scan of every matching row plus a sort, per batch: 12x
     * slower at 200,000 rows and worse as the backlog grows. Sorting is ruled out for this
     * statement (SET LOCAL: the caller's transaction, osp_pgs_tx_begin). */
    json_t *tx = osp_pgs_query(c, "SET LOCAL enable_sort = off", 0, NULL, err);
    if (tx == NULL) {
        return NULL;
    }
    json_decref(tx);
    json_t *rows = osp_pgs_query(
        c,
        "WITH t AS (SELECT id, state, attempt FROM opspool.jobs WHERE " BULK_WHERE
        "  AND ($7::uuid IS NULL OR id > $7::uuid) ORDER BY id LIMIT $8::int "
        "  FOR UPDATE SKIP LOCKED), "
        "u AS (UPDATE opspool.jobs j SET state = 'cancelled', finished_at = now(), "
        "  updated_at = now(), error = coalesce(j.error, 'cancelled via ' || $9::text) "
        "  FROM t WHERE j.id = t.id RETURNING j.id, t.state AS prev, t.attempt), "
        "e AS (INSERT INTO opspool.job_events (job_id, attempt, type, data) "
        "  SELECT id, nullif(attempt, 0), 'cancelled', jsonb_build_object('by', $9::text, "
        "    'from', prev, 'who', $10::text, 'audit_id', $11::bigint) FROM u) "
        "SELECT id FROM u ORDER BY id",
        11, params, err);
    if (rows == NULL) {
        return NULL;
    }
    json_t *ids = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_array_append(ids, json_object_get(row, "id"));
    }
    json_decref(rows);
    return ids;
}

int osp_ledger_audit(struct osp_pgs *c, const struct osp_actor *a, const char *action,
                     const char *object, const json_t *data, int64_t *id, struct osp_err *err)
{
    char *d = data != NULL ? json_dumps(data, JSON_COMPACT) : NULL;
    const char *params[] = {a->who, a->via, action, object, d != NULL ? d : "{}"};
    json_t *rows = osp_pgs_query(c,
                                 "INSERT INTO opspool.audit (who, via, action, object, data) "
                                 "VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id",
                                 5, params, err);
    free(d);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    if (id != NULL) {
        *id = strtoll(row_str(json_array_get(rows, 0), "id"), NULL, 10);
    }
    json_decref(rows);
    return 0;
}

int osp_ledger_audit_update(struct osp_pgs *c, int64_t id, const json_t *data, struct osp_err *err)
{
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    char *d = json_dumps(data, JSON_COMPACT);
    const char *params[] = {ids, d};
    json_t *rows = osp_pgs_query(
        c, "UPDATE opspool.audit SET data = $2::jsonb WHERE id = $1::bigint", 2, params, err);
    free(d);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    json_decref(rows);
    return 0;
}

int osp_ledger_audit_jobs(struct osp_pgs *c, const json_t *ids, const struct osp_actor *a,
                          const char *action, const json_t *data, struct osp_err *err)
{
    if (json_array_size(ids) == 0) {
        return 0;
    }
    char *idj = json_dumps(ids, JSON_COMPACT);
    char *d = data != NULL ? json_dumps(data, JSON_COMPACT) : NULL;
    const char *params[] = {idj, a->who, action, a->via, d != NULL ? d : "{}"};
    json_t *rows =
        osp_pgs_query(c,
                      "INSERT INTO opspool.job_events (job_id, type, data) "
                      "SELECT x::uuid, 'audit', $5::jsonb || jsonb_build_object('who', $2::text, "
                      "  'action', $3::text, 'via', $4::text) "
                      "FROM jsonb_array_elements_text($1::jsonb) AS x "
                      "WHERE EXISTS (SELECT 1 FROM opspool.jobs j WHERE j.id = x::uuid)",
                      5, params, err);
    free(idj);
    free(d);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    json_decref(rows);
    return 0;
}

/* ---- schedules ---- */

int osp_ledger_schedule_upsert(struct osp_pgs *c, const struct osp_schedule_def *d, bool *created,
                               struct osp_err *err)
{
    char catchup[24], next[24];
    snprintf(catchup, sizeof(catchup), "%lld", (long long)d->catchup_s);
    snprintf(next, sizeof(next), "%lld", (long long)d->next_fire_s);
    const char *params[] = {d->name,        d->cron,         d->timezone,
                            d->kind,        d->payload_json, d->enabled ? "true" : "false",
                            d->concurrency, catchup,         next};
    json_t *rows = osp_pgs_query(
        c,
        "INSERT INTO opspool.schedules (name, cron, timezone, kind, payload, enabled, concurrency, "
        "catchup_s, next_fire_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6::boolean, $7, $8::int, "
        "to_timestamp($9::bigint)) ON CONFLICT (name) DO UPDATE SET cron = EXCLUDED.cron, "
        "timezone = EXCLUDED.timezone, kind = EXCLUDED.kind, payload = EXCLUDED.payload, "
        "enabled = EXCLUDED.enabled, concurrency = EXCLUDED.concurrency, "
        "catchup_s = EXCLUDED.catchup_s, next_fire_at = EXCLUDED.next_fire_at, updated_at = now() "
        "RETURNING (xmax = 0)::text AS inserted",
        9, params, err);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    const char *ins = row_str(json_array_get(rows, 0), "inserted");
    *created = ins != NULL && strcmp(ins, "true") == 0;
    json_decref(rows);
    return 0;
}

int osp_ledger_schedule_delete(struct osp_pgs *c, const char *name, struct osp_err *err)
{
    const char *params[] = {name};
    json_t *rows = osp_pgs_query(c, "DELETE FROM opspool.schedules WHERE name = $1 RETURNING name",
                                 1, params, err);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    int rc =
        json_array_size(rows) == 0 ? osp_err_set(err, OSP_ENOTFOUND, "no schedule %.64s", name) : 0;
    json_decref(rows);
    return rc;
}

int osp_ledger_schedule_set_enabled(struct osp_pgs *c, const char *name, bool enabled,
                                    int64_t next_fire_ms, char next_iso[40], struct osp_err *err)
{
    char next[24];
    snprintf(next, sizeof(next), "%lld", (long long)next_fire_ms);
    const char *params[] = {name, enabled ? "true" : "false", next};
    json_t *rows = osp_pgs_query(
        c,
        "UPDATE opspool.schedules SET enabled = $2::boolean, updated_at = now(), "
        "next_fire_at = CASE WHEN $2::boolean AND $3::bigint > 0 THEN opspool.ms_ts($3::bigint) "
        "ELSE next_fire_at END WHERE name = $1 "
        "RETURNING name, opspool.ts_iso(next_fire_at) AS next_fire_at",
        3, params, err);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    const json_t *row = json_array_get(rows, 0);
    int rc = 0;
    next_iso[0] = '\0';
    if (row == NULL) {
        rc = osp_err_set(err, OSP_ENOTFOUND, "no schedule %.64s", name);
    } else if (row_str(row, "next_fire_at") != NULL) {
        snprintf(next_iso, 40, "%s", row_str(row, "next_fire_at"));
    }
    json_decref(rows);
    return rc;
}

json_t *osp_ledger_schedule_row(struct osp_pgs *c, const char *name, struct osp_err *err)
{
    const char *params[] = {name};
    json_t *rows = osp_pgs_query(
        c, "SELECT to_jsonb(s)::text AS row FROM opspool.schedules s WHERE s.name = $1", 1, params,
        err);
    if (rows == NULL) {
        return NULL;
    }
    const char *txt = row_str(json_array_get(rows, 0), "row");
    json_t *row = txt != NULL ? json_loads(txt, 0, NULL) : NULL;
    json_decref(rows);
    if (row == NULL) {
        osp_err_set(err, OSP_ENOTFOUND, "no schedule %.64s", name);
    }
    return row;
}

json_t *osp_ledger_schedules(struct osp_pgs *c, const char *name, struct osp_err *err)
{
    const char *params[] = {name};
    json_t *rows = osp_pgs_query(
        c,
        "SELECT s.name, s.cron, s.timezone, s.kind, s.payload::text AS payload, "
        "s.enabled::text AS enabled, s.concurrency, s.catchup_s, "
        "opspool.ts_iso(s.last_fire_at) AS last_fire_at, "
        "opspool.ts_iso(s.next_fire_at) AS next_fire_at, s.last_job_id::text AS last_job_id, "
        "opspool.ts_iso(s.created_at) AS created_at, opspool.ts_iso(s.updated_at) AS updated_at, "
        "(SELECT opspool.ts_iso(max(j.finished_at)) FROM " LEDGER_SCHEDULE_RUNS " j "
        " WHERE j.schedule = s.name AND j.state = 'succeeded') AS last_success_at, "
        "lj.id::text AS latest_job_id, lj.state AS last_outcome, "
        "opspool.ts_iso(lj.created_at) AS latest_job_at, f.status AS last_tick, "
        "f.reason AS last_tick_reason, opspool.ts_iso(f.fire_at) AS last_tick_at "
        "FROM opspool.schedules s "
        "LEFT JOIN LATERAL (SELECT j.id, j.state, j.created_at FROM " LEDGER_SCHEDULE_RUNS " j "
        "  WHERE j.schedule = s.name ORDER BY j.created_at DESC LIMIT 1) lj ON true "
        "LEFT JOIN LATERAL (SELECT status, reason, fire_at FROM opspool.schedule_firings x "
        "  WHERE x.schedule = s.name ORDER BY x.fire_at DESC LIMIT 1) f ON true "
        "WHERE ($1::text IS NULL OR s.name = $1) ORDER BY s.name",
        1, params, err);
    if (rows == NULL || name == NULL) {
        return rows;
    }
    json_t *row = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    if (row == NULL) {
        osp_err_set(err, OSP_ENOTFOUND, "no schedule %.64s", name);
        return NULL;
    }
    json_t *f = osp_pgs_query(c,
                              "SELECT opspool.ts_iso(x.fire_at) AS fire_at, x.status, x.job_id, "
                              "x.reason, x.replica, r.state AS outcome, "
                              "opspool.ts_iso(r.finished_at) AS finished_at "
                              "FROM opspool.schedule_firings x LEFT JOIN " LEDGER_SCHEDULE_RUNS
                              " r ON r.id = x.job_id WHERE x.schedule = $1 "
                              "ORDER BY x.fire_at DESC LIMIT 20",
                              1, params, err);
    if (f == NULL) {
        json_decref(row);
        return NULL;
    }
    json_object_set_new(row, "firings", f);
    return row;
}

/* ---- transactions ---- */

int ledger_exec(struct osp_pgs *c, const char *sql, int nparams, const char *const *params,
                struct osp_err *err)
{
    json_t *r = osp_pgs_query(c, sql, nparams, params, err);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    json_decref(r);
    return 0;
}

static int tx_stmt(struct osp_pgs *c, const char *sql, struct osp_err *err)
{
    return ledger_exec(c, sql, 0, NULL, err);
}

int osp_pgs_tx_begin(struct osp_pgs *c, struct osp_err *err)
{
    return tx_stmt(c, "BEGIN", err);
}

int osp_pgs_tx_commit(struct osp_pgs *c, struct osp_err *err)
{
    return tx_stmt(c, "COMMIT", err);
}

void osp_pgs_tx_rollback(struct osp_pgs *c)
{
    struct osp_err e = {0};
    tx_stmt(c, "ROLLBACK", &e); /* a broken connection rolls back by itself */
}

/* ---- reads ---- */

json_t *osp_ledger_jobs(struct osp_pgs *c, const struct osp_job_filter *f, struct osp_err *err)
{
    char since[24], lim[16];
    snprintf(since, sizeof(since), "%lld", (long long)f->since_ms);
    snprintf(lim, sizeof(lim), "%d", f->limit > 0 ? f->limit : 50);
    const char *params[] = {f->kind,           f->states, f->since_ms > 0 ? since : NULL,
                            f->before_id,      lim,       f->target,
                            f->idempotency_key};
    return osp_pgs_query(
        c,
        "SELECT id::text AS id, kind, state, attempt, max_attempts, recoveries, worker, error, "
        "schedule, opspool.ts_iso(created_at) AS created_at, opspool.ts_iso(run_at) AS run_at, "
        "opspool.ts_iso(started_at) AS started_at, opspool.ts_iso(finished_at) AS finished_at "
        "FROM opspool.jobs j WHERE ($1::text IS NULL OR kind = $1) "
        "AND ($2::text[] IS NULL OR state = ANY ($2::text[])) "
        "AND ($3::bigint IS NULL OR created_at >= now() - $3::bigint * interval '1 millisecond') "
        "AND ($6::text IS NULL OR j.payload->>'target' = $6::text) "
        "AND ($7::text IS NULL OR j.idempotency_key = $7::text) "
        /* j.id, not id: that is the output column (text), whose order no index has. */
        "AND ($4::uuid IS NULL OR j.id < $4::uuid) ORDER BY j.id DESC LIMIT $5::int",
        7, params, err);
}

json_t *osp_ledger_job_records(struct osp_pgs *c, const char *id, struct osp_err *err)
{
    const char *params[] = {id};
    json_t *rows = osp_pgs_query(
        c,
        "SELECT (SELECT coalesce(jsonb_agg(jsonb_build_object('attempt', s.attempt, "
        "  'target', s.target, 'seed', s.seed, 'scale', s.scale, 'mode', s.mode, "
        "  'rows', s.rows, 'bytes', s.bytes, 'duration_ms', s.duration_ms, "
        "  'rows_per_s', s.rows_per_s, 'digest', s.digest, "
        "  'created_at', opspool.ts_iso(s.created_at)) ORDER BY s.attempt), '[]'::jsonb) "
        "  FROM opspool.seed_runs s WHERE s.job_id = $1::uuid)::text AS seed_runs, "
        "(SELECT coalesce(jsonb_agg(jsonb_build_object('attempt', b.attempt, "
        "  'target', b.target, 'path', b.path, 'bytes', b.bytes, 'sha256', b.sha256, "
        "  'server_version', b.server_version, 'pg_dump_version', b.pg_dump_version, "
        "  'duration_ms', b.duration_ms, 'verified', b.verified, 'restore_ms', b.restore_ms, "
        "  'expired_at', opspool.ts_iso(b.expired_at), "
        "  'created_at', opspool.ts_iso(b.created_at)) ORDER BY b.attempt), '[]'::jsonb) "
        "  FROM opspool.backups b WHERE b.job_id = $1::uuid)::text AS backups",
        1, params, err);
    if (rows == NULL) {
        return NULL;
    }
    const json_t *row = json_array_get(rows, 0);
    json_t *out = json_object();
    static const char *const keys[] = {"seed_runs", "backups"};
    for (size_t i = 0; i < 2; i++) {
        const char *t = row_str(row, keys[i]);
        json_t *v = t != NULL ? json_loads(t, 0, NULL) : NULL;
        json_object_set_new(out, keys[i], json_is_array(v) ? v : json_array());
        if (!json_is_array(v)) {
            json_decref(v);
        }
    }
    json_decref(rows);
    return out;
}

json_t *osp_ledger_finished_counts(struct osp_pgs *c, int window_s, struct osp_err *err)
{
    char w[16];
    snprintf(w, sizeof(w), "%d", window_s);
    const char *params[] = {w};
    /* The state list matches jobs_finished_idx's predicate (0005_verdicts.sql): without it a
     * million-row ledger is read in full on every overview (only final jobs have finished_at). */
    json_t *rows = osp_pgs_query(c,
                                 "SELECT kind, count(*) AS n FROM opspool.jobs WHERE finished_at "
                                 ">= now() - $1::int * interval '1 second' AND state IN "
                                 "('succeeded', 'failed', 'dead', 'cancelled') GROUP BY kind",
                                 1, params, err);
    if (rows == NULL) {
        return NULL;
    }
    json_t *out = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        json_object_set_new(out, row_str(r, "kind"),
                            json_integer(strtoll(row_str(r, "n"), NULL, 10)));
    }
    json_decref(rows);
    return out;
}
