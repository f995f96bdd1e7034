/* SPDX-License-Identifier: MIT */
/* ledger_campaign.c — the SQL of campaigns (common/sql/0006_campaigns.sql): insert, read,
 * step transitions, finish, cancel, the active list and retention. Contract: common/ledger.h
 * "Campaigns"; the rules that drive them live in common/ops_campaign.c. */
#include "common/ledger.h"
#include "common/ledger_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int osp_ledger_campaign_insert(struct osp_pgs *c, const char *id, const char *name, bool fail_fast,
                               const json_t *plan, const json_t *steps, const char *idem,
                               const char *by, const char *schedule, char existing[OSP_ID_LEN + 1],
                               struct osp_err *err)
{
    existing[0] = '\0';
    char *plan_text = json_dumps(plan, JSON_COMPACT);
    char *steps_text = json_dumps(steps, JSON_COMPACT);
    const char *params[] = {id, name,    fail_fast ? "true" : "false", plan_text, steps_text, idem,
                            by, schedule};
    /* One statement: the campaign, its steps and the first event, or (same idempotency key)
     * nothing and the existing campaign's id. */
    json_t *rows = osp_pgs_query(
        c,
        "WITH c AS (INSERT INTO opspool.campaigns (id, name, state, fail_fast, plan, "
        "  idempotency_key, submitted_by, schedule) "
        "  VALUES ($1::uuid, $2, 'running', $3::boolean, $4::jsonb, $6, $7, $8) "
        "  ON CONFLICT (idempotency_key) DO NOTHING RETURNING id), "
        "s AS (INSERT INTO opspool.campaign_steps (campaign_id, step, ord, kind, after, always) "
        "  SELECT c.id, e->>'step', (e->>'ord')::int, e->>'kind', "
        "    ARRAY(SELECT jsonb_array_elements_text(e->'after')), (e->>'always')::boolean "
        "  FROM c, jsonb_array_elements($5::jsonb) AS e), "
        "ev AS (INSERT INTO opspool.campaign_events (campaign_id, type, data) "
        "  SELECT c.id, 'submitted', jsonb_build_object('by', $7::text, 'schedule', $8::text) "
        "  FROM c) "
        "SELECT (SELECT id::text FROM c) AS created, "
        "  (SELECT id::text FROM opspool.campaigns WHERE idempotency_key = $6) AS existing",
        8, params, err);
    free(plan_text);
    free(steps_text);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    const json_t *row = json_array_get(rows, 0);
    const char *created = json_string_value(json_object_get(row, "created"));
    const char *ex = json_string_value(json_object_get(row, "existing"));
    if (created == NULL && ex != NULL) {
        snprintf(existing, OSP_ID_LEN + 1, "%s", ex);
    }
    json_decref(rows);
    return 0;
}

json_t *osp_ledger_campaign_get(struct osp_pgs *c, const char *id, struct osp_err *err)
{
    const char *params[] = {id};
    json_t *rows = osp_pgs_query(
        c,
        "SELECT jsonb_build_object("
        "  'id', c.id, 'name', c.name, 'state', c.state, 'fail_fast', c.fail_fast, "
        "  'submitted_by', c.submitted_by, 'schedule', c.schedule, "
        "  'idempotency_key', c.idempotency_key, "
        "  'created_at', opspool.ts_iso(c.created_at), "
        "  'finished_at', opspool.ts_iso(c.finished_at), "
        "  'steps', (SELECT coalesce(jsonb_agg(jsonb_build_object("
        "      'step', s.step, 'kind', s.kind, 'after', to_jsonb(s.after), 'always', s.always, "
        "      'state', s.state, 'reason', s.reason, 'job_id', s.job_id, "
        "      'plan', (SELECT p FROM jsonb_array_elements(c.plan->'steps') p "
        "               WHERE p->>'name' = s.step), "
        "      'job_state', j.state, 'attempt', j.attempt, 'max_attempts', j.max_attempts, "
        "      'error', j.error, 'started_at', opspool.ts_iso(j.started_at), "
        "      'finished_at', opspool.ts_iso(j.finished_at)) ORDER BY s.ord), '[]'::jsonb) "
        "    FROM opspool.campaign_steps s LEFT JOIN opspool.jobs j ON j.id = s.job_id "
        "    WHERE s.campaign_id = c.id), "
        "  'events', (SELECT coalesce(jsonb_agg(jsonb_build_object('ts', opspool.ts_iso(e.ts), "
        "      'type', e.type, 'data', e.data) ORDER BY e.ts), '[]'::jsonb) "
        "    FROM opspool.campaign_events e WHERE e.campaign_id = c.id)"
        ")::text AS doc FROM opspool.campaigns c WHERE c.id = $1::uuid",
        1, params, err);
    if (rows == NULL) {
        return NULL;
    }
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        osp_err_set(err, OSP_ENOTFOUND, "no campaign %s", id);
        return NULL;
    }
    json_t *doc = ledger_one_doc(rows, "doc");
    if (doc == NULL) {
        osp_err_set(err, OSP_EPG, "campaign %s: unreadable row", id);
    }
    return doc;
}

int osp_ledger_campaign_step(struct osp_pgs *c, const char *id, const char *step, const char *from,
                             const char *to, const char *job_id, const char *reason, bool *changed,
                             struct osp_err *err)
{
    const char *params[] = {id, step, from, to, job_id, reason};
    json_t *rows = osp_pgs_query(
        c,
        "WITH u AS (UPDATE opspool.campaign_steps SET state = $4, "
        "  job_id = coalesce($5::uuid, job_id), reason = coalesce($6, reason), "
        "  updated_at = now() "
        "  WHERE campaign_id = $1::uuid AND step = $2 AND state = $3 RETURNING step), "
        "ev AS (INSERT INTO opspool.campaign_events (campaign_id, type, data) "
        "  SELECT $1::uuid, CASE $4 WHEN 'submitted' THEN 'step.submitted' "
        "    WHEN 'skipped' THEN 'step.skipped' ELSE 'step.finished' END, "
        "    jsonb_strip_nulls(jsonb_build_object('step', $2::text, 'state', $4::text, "
        "      'job_id', $5::text, 'reason', $6::text)) FROM u), "
        "t AS (UPDATE opspool.campaigns SET updated_at = now() WHERE id = $1::uuid "
        "  AND EXISTS (SELECT 1 FROM u)) "
        "SELECT count(*)::text AS n FROM u",
        6, params, err);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    const char *n = json_string_value(json_object_get(json_array_get(rows, 0), "n"));
    *changed = n != NULL && strcmp(n, "0") != 0;
    json_decref(rows);
    return 0;
}

int osp_ledger_campaign_finish(struct osp_pgs *c, const char *id, const char *state,
                               struct osp_err *err)
{
    const char *params[] = {id, state};
    return ledger_exec(
        c,
        "WITH u AS (UPDATE opspool.campaigns SET state = CASE WHEN state = 'cancelled' THEN "
        "  'cancelled' ELSE $2 END, finished_at = now(), updated_at = now() "
        "  WHERE id = $1::uuid AND finished_at IS NULL RETURNING state) "
        "INSERT INTO opspool.campaign_events (campaign_id, type, data) "
        "SELECT $1::uuid, 'finished', jsonb_build_object('state', u.state) FROM u RETURNING 1",
        2, params, err);
}

int osp_ledger_campaign_cancel(struct osp_pgs *c, const char *id, const char *who, char prev[16],
                               struct osp_err *err)
{
    const char *params[] = {id, who};
    json_t *rows = osp_pgs_query(
        c,
        "WITH p AS (SELECT state FROM opspool.campaigns WHERE id = $1::uuid FOR UPDATE), "
        "u AS (UPDATE opspool.campaigns SET state = 'cancelled', updated_at = now() "
        "  WHERE id = $1::uuid AND state = 'running' RETURNING id), "
        "ev AS (INSERT INTO opspool.campaign_events (campaign_id, type, data) "
        "  SELECT id, 'cancel', jsonb_build_object('by', $2::text) FROM u) "
        "SELECT state FROM p",
        2, params, err);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    const char *st = json_string_value(json_object_get(json_array_get(rows, 0), "state"));
    int rc = 0;
    if (st == NULL) {
        rc = osp_err_set(err, OSP_ENOTFOUND, "no campaign %s", id);
    } else {
        snprintf(prev, 16, "%s", st);
    }
    json_decref(rows);
    return rc;
}

json_t *osp_ledger_campaigns_active(struct osp_pgs *c, int max, struct osp_err *err)
{
    char m[16];
    snprintf(m, sizeof(m), "%d", max);
    const char *params[] = {m};
    return osp_pgs_query(c,
                         "SELECT id::text AS id FROM opspool.campaigns WHERE finished_at IS NULL "
                         "ORDER BY created_at LIMIT $1::int",
                         1, params, err);
}

json_t *osp_ledger_campaigns(struct osp_pgs *c, int limit, struct osp_err *err)
{
    char m[16];
    snprintf(m, sizeof(m), "%d", limit);
    const char *params[] = {m};
    return osp_pgs_query(
        c,
        "SELECT c.id::text AS id, c.name, c.state, c.schedule, c.submitted_by, "
        "opspool.ts_iso(c.created_at) AS created_at, opspool.ts_iso(c.finished_at) AS "
        "finished_at, (SELECT count(*) FROM opspool.campaign_steps s WHERE s.campaign_id = c.id) "
        "AS steps, (SELECT count(*) FROM opspool.campaign_steps s WHERE s.campaign_id = c.id "
        "AND s.state = 'succeeded') AS succeeded FROM opspool.campaigns c "
        "ORDER BY c.created_at DESC LIMIT $1::int",
        1, params, err);
}

int osp_ledger_retain_campaigns(struct osp_pgs *c, int days, int batch, struct osp_err *err)
{
    char d[16], b[16];
    snprintf(d, sizeof(d), "%d", days);
    snprintf(b, sizeof(b), "%d", batch);
    const char *params[] = {d, b};
    return ledger_exec(c,
                       "DELETE FROM opspool.campaigns WHERE id IN (SELECT id FROM "
                       "opspool.campaigns WHERE finished_at < now() - make_interval(days => "
                       "$1::int) ORDER BY finished_at LIMIT $2::int) RETURNING 1",
                       2, params, err);
}
