/* SPDX-License-Identifier: MIT */
/* ledger_ops.c — the control-plane statements of the ledger: cancel, requeue (retry and dead
 * retry), bulk cancel, audit rows. Contract: common/ledger.h. Each change commits with its
 * events and its audit record in one statement, so no reader ever sees one without the
 * other. The order against Redis is common/ops.c's (the ledger first). */
#include "common/alloc.h"
#include "common/ledger.h"

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
        "SELECT j.state, j.kind, j.attempt, j.max_attempts, j.timeout_s, j.payload::text AS "
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
    "state NOT IN ('succeeded', 'dead', 'cancelled') AND kind = $1::text "                       \
    "AND state = ANY ($2::text[]) AND ($3::text IS NULL OR submitted_by = $3::text) "            \
    "AND ($4::text IS NULL OR schedule = $4::text) "                                               \
    "AND ($5::bigint IS NULL OR created_at < opspool.ms_ts($5::bigint)) "                         \
    "AND ($6::bigint IS NULL OR created_at >= opspool.ms_ts($6::bigint)) "

int osp_ledger_bulk_count(struct osp_pgs *c, const struct osp_bulk_filter *f, int64_t *n,
                          struct osp_err *err)
{
    struct bulk_params bp;
    bulk_params(f, &bp);
    json_t *rows = osp_pgs_query(c, "SELECT count(*) AS n FROM opspool.jobs WHERE " BULK_WHERE, 6,
                                 bp.p, err);
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
    const char *params[] = {bp.p[0], bp.p[1], bp.p[2], bp.p[3], bp.p[4], bp.p[5],
                            after_id != NULL && after_id[0] != '\0' ? after_id : NULL,
                            lim, a->via, a->who, aid};
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
    json_array_foreach(rows, i, row) {
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
    json_t *rows = osp_pgs_query(c, "UPDATE opspool.audit SET data = $2::jsonb WHERE id = $1::bigint",
                                 2, params, err);
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
    json_t *rows = osp_pgs_query(
        c,
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
