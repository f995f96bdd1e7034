/* SPDX-License-Identifier: MIT */
/* ledger_sched.c — the statements of the scheduler's own duties: cron claims and records,
 * the reconciler's page reads and final states, retention, and the gauges' counts. Contract:
 * common/ledger.h ("Scheduler duties"). Kept apart from the pool's hot path (ledger.c) and the
 * operators' operations (ledger_ops.c). */
#include "common/alloc.h"
#include "common/ledger.h"
#include "common/ledger_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *row_str(const json_t *row, const char *f)
{
    return json_string_value(json_object_get(row, f));
}

int osp_ledger_cron_claim(struct osp_pgs *c, const char *name, int64_t tick,
                          const char *concurrency, const char *replica, char status[16],
                          struct osp_err *err)
{
    char ts[24];
    snprintf(ts, sizeof(ts), "%lld", (long long)tick);
    const char *params[] = {name, ts, concurrency, replica};
    status[0] = '\0';
    json_t *rows = osp_pgs_query(
        c,
        "WITH busy AS (SELECT $3 = 'forbid' AND EXISTS (SELECT 1 FROM " LEDGER_SCHEDULE_RUNS " r "
        "  WHERE r.schedule = $1 AND r.state IN ('queued', 'delayed', 'running', 'retrying')) "
        "  AS b) "
        "INSERT INTO opspool.schedule_firings (schedule, fire_at, status, reason, replica) "
        "SELECT $1, to_timestamp($2::bigint), CASE WHEN b THEN 'skipped' ELSE 'firing' END, "
        "       CASE WHEN b THEN 'previous still running' END, $4 FROM busy "
        "ON CONFLICT (schedule, fire_at) DO UPDATE SET replica = EXCLUDED.replica, claimed_at = "
        "now() "
        "WHERE opspool.schedule_firings.status = 'firing' "
        "  AND opspool.schedule_firings.claimed_at < now() - interval '30 seconds' "
        "RETURNING status",
        4, params, err);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    const char *st = row_str(json_array_get(rows, 0), "status");
    if (st != NULL) {
        snprintf(status, 16, "%s", st);
    }
    json_decref(rows);
    return 0;
}

int osp_ledger_cron_record(struct osp_pgs *c, const char *name, int64_t tick, int64_t next,
                           const char *status, const char *job_id, const char *reason,
                           struct osp_err *err)
{
    char ts[24], ns[24];
    snprintf(ts, sizeof(ts), "%lld", (long long)tick);
    snprintf(ns, sizeof(ns), "%lld", (long long)next);
    const char *params[] = {name, ts, status, job_id, reason, ns};
    return ledger_exec(
        c,
        "WITH f AS (UPDATE opspool.schedule_firings SET status = $3, job_id = $4::uuid, "
        "           reason = coalesce($5, reason) "
        "           WHERE schedule = $1 AND fire_at = to_timestamp($2::bigint) RETURNING 1) "
        "UPDATE opspool.schedules SET "
        "  last_fire_at = greatest(last_fire_at, to_timestamp($2::bigint)), "
        "  next_fire_at = to_timestamp($6::bigint), "
        "  last_job_id = coalesce($4::uuid, last_job_id) "
        "WHERE name = $1 RETURNING name",
        6, params, err);
}

int osp_ledger_cron_missed(struct osp_pgs *c, const char *name, int64_t first_missed,
                           const char *replica, struct osp_err *err)
{
    char ts[24];
    snprintf(ts, sizeof(ts), "%lld", (long long)first_missed);
    const char *params[] = {name, ts, replica};
    return ledger_exec(c,
                       "INSERT INTO opspool.schedule_firings (schedule, fire_at, status, reason, "
                       "replica) VALUES ($1, to_timestamp($2::bigint), 'missed', 'not fired: no "
                       "scheduler ran the tick within its catch-up allowance; later ticks up to "
                       "the next firing were missed too', $3) ON CONFLICT DO NOTHING",
                       3, params, err);
}

json_t *osp_ledger_cron_enabled(struct osp_pgs *c, struct osp_err *err)
{
    return osp_pgs_query(
        c,
        "SELECT name, cron, timezone, kind, payload::text AS payload, concurrency, catchup_s, "
        "floor(extract(epoch FROM last_fire_at))::bigint AS last_fire, "
        "floor(extract(epoch FROM created_at))::bigint AS created "
        "FROM opspool.schedules WHERE enabled ORDER BY name",
        0, NULL, err);
}

json_t *osp_ledger_job_counts(struct osp_pgs *c, bool unfinished_only, struct osp_err *err)
{
    if (unfinished_only) {
        /* The predicate of jobs_unfinished_idx, so the count reads that index. */
        return osp_pgs_query(c,
                             "SELECT kind, state, count(*) AS n FROM opspool.jobs "
                             "WHERE state IN ('queued', 'delayed', 'running', 'retrying') "
                             "GROUP BY 1, 2",
                             0, NULL, err);
    }
    return osp_pgs_query(c, "SELECT kind, state, count(*) AS n FROM opspool.jobs GROUP BY 1, 2", 0,
                         NULL, err);
}

json_t *osp_ledger_schedule_times(struct osp_pgs *c, struct osp_err *err)
{
    return osp_pgs_query(c,
                         "SELECT s.name, s.cron, s.timezone, "
                         "floor(extract(epoch FROM s.created_at))::bigint::text AS created, "
                         "extract(epoch FROM s.last_fire_at)::text AS last_fire, "
                         "(SELECT extract(epoch FROM max(j.finished_at)) FROM " LEDGER_SCHEDULE_RUNS
                         " j WHERE j.schedule = s.name AND j.state = 'succeeded')::text AS "
                         "last_success, (SELECT extract(epoch FROM max(f.claimed_at)) FROM "
                         "opspool.schedule_firings f WHERE f.schedule = s.name AND f.status = "
                         "'missed')::text AS last_missed FROM opspool.schedules s",
                         0, NULL, err);
}

json_t *osp_ledger_reconcile_page(struct osp_pgs *c, int grace_s, const char *after_id, int limit,
                                  struct osp_err *err)
{
    char grace[16], lim[16];
    snprintf(grace, sizeof(grace), "%d", grace_s);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *params[] = {grace, after_id != NULL && after_id[0] ? after_id : NULL, lim};
    /* The page must come off jobs_unfinished_idx in id order. Right after a bulk submit the
     * planner's statistics still see a small table and it would rather read every unfinished
     * row and sort them, on every page: a sweep quadratic in the backlog. Sorting is ruled
     * out for this one statement (SET LOCAL inside its own transaction). */
    if (osp_pgs_tx_begin(c, err) != 0) {
        return NULL;
    }
    json_t *tx = osp_pgs_query(c, "SET LOCAL enable_sort = off", 0, NULL, err);
    json_t *rows = NULL;
    if (tx != NULL) {
        json_decref(tx);
        rows = osp_pgs_query(
            c,
            "SELECT id, kind, state, payload::text AS payload, attempt, max_attempts, timeout_s, "
            "idempotency_key, submitted_by, schedule, trace_id, "
            "floor(extract(epoch FROM created_at) * 1000)::bigint AS created_ms, "
            "floor(extract(epoch FROM run_at) * 1000)::bigint AS run_ms "
            "FROM opspool.jobs WHERE state IN ('queued', 'delayed', 'running', 'retrying') "
            "AND updated_at < now() - make_interval(secs => $1::int) "
            "AND id > coalesce($2::uuid, '00000000-0000-0000-0000-000000000000'::uuid) "
            "ORDER BY id LIMIT $3::int",
            3, params, err);
    }
    if (rows == NULL) {
        osp_pgs_tx_rollback(c);
        return NULL;
    }
    if (osp_pgs_tx_commit(c, err) != 0) {
        json_decref(rows);
        return NULL;
    }
    return rows;
}

int osp_ledger_reconcile_finals(struct osp_pgs *c, const json_t *finals, struct osp_err *err)
{
    char *text = json_dumps(finals, JSON_COMPACT);
    const char *params[] = {text};
    json_t *r = osp_pgs_query(
        c,
        "UPDATE opspool.jobs j SET state = f.state, finished_at = coalesce(j.finished_at, "
        "now()), error = coalesce(j.error, f.reason), updated_at = now() "
        "FROM (SELECT x->>0 AS id, x->>1 AS state, x->>2 AS reason "
        "FROM json_array_elements($1::json) x) f WHERE j.id = f.id::uuid "
        "AND j.state NOT IN " OSP_JOB_FINAL_SQL " RETURNING j.id",
        1, params, err);
    free(text);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    json_decref(r);
    return 0;
}

int osp_ledger_retain_jobs(struct osp_pgs *c, int days, int batch, int64_t *deleted,
                           struct osp_err *err)
{
    char d[16], b[16];
    snprintf(d, sizeof(d), "%d", days);
    snprintf(b, sizeof(b), "%d", batch);
    const char *params[] = {d, b};
    json_t *r = osp_pgs_query(
        c,
        "WITH d AS (SELECT id FROM opspool.jobs "
        "  WHERE state IN " OSP_JOB_FINAL_SQL " "
        "  AND (finished_at < now() - make_interval(days => $1::int) "
        "       OR (finished_at IS NULL AND updated_at < now() - make_interval(days => "
        "$1::int))) "
        "  ORDER BY finished_at LIMIT $2::int FOR UPDATE SKIP LOCKED), "
        /* job_events has no foreign key (hot insert path): delete them explicitly. */
        "ev AS (DELETE FROM opspool.job_events e USING d WHERE e.job_id = d.id) "
        "DELETE FROM opspool.jobs j USING d WHERE j.id = d.id RETURNING j.id",
        2, params, err);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    *deleted = (int64_t)json_array_size(r);
    json_decref(r);
    return 0;
}

int osp_ledger_retain_firings(struct osp_pgs *c, int days, int batch, struct osp_err *err)
{
    char d[16], b[16];
    snprintf(d, sizeof(d), "%d", days);
    snprintf(b, sizeof(b), "%d", batch);
    const char *params[] = {d, b};
    return ledger_exec(
        c,
        "DELETE FROM opspool.schedule_firings WHERE ctid IN (SELECT ctid FROM "
        "opspool.schedule_firings WHERE claimed_at < now() - make_interval(days => $1::int) "
        "LIMIT $2::int) RETURNING 1",
        2, params, err);
}

int osp_ledger_retain_audit(struct osp_pgs *c, int days, int batch, struct osp_err *err)
{
    char d[16], b[16];
    snprintf(d, sizeof(d), "%d", days);
    snprintf(b, sizeof(b), "%d", batch);
    const char *params[] = {d, b};
    return ledger_exec(c,
                       "DELETE FROM opspool.audit WHERE id IN (SELECT id FROM opspool.audit "
                       "WHERE ts < now() - make_interval(days => $1::int) ORDER BY id "
                       "LIMIT $2::int) RETURNING 1",
                       2, params, err);
}
