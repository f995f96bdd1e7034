/* SPDX-License-Identifier: MIT */
/* ledger_notify.c — the SQL of notifications: fan-out of the outbox's events to endpoints,
 * claiming due deliveries, the delivery log, manual retries and retention. Contract:
 * common/ledger.h "Notifications"; tables and triggers: common/sql/0009_notifications.sql. */
#include "common/ledger.h"
#include "common/ledger_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first row's column as an int (0 when absent). */
static int row_int(const json_t *rows, const char *col)
{
    const char *v = json_string_value(json_object_get(json_array_get(rows, 0), col));
    return v != NULL ? atoi(v) : 0;
}

int osp_ledger_notify_fanout(struct osp_pgs *c, const json_t *routes, int max, int *events,
                             int *deliveries, struct osp_err *err)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", max);
    char *r = json_dumps(routes, JSON_COMPACT);
    const char *params[] = {r, lim};
    json_t *rows = osp_pgs_query(
        c,
        "WITH ev AS (SELECT id, type FROM opspool.notify_events WHERE dispatched_at IS NULL "
        "ORDER BY id LIMIT $2::int FOR UPDATE SKIP LOCKED), "
        "r AS (SELECT key AS endpoint, value AS types FROM json_each($1::json)), "
        "ins AS (INSERT INTO opspool.notify_deliveries (event_id, endpoint) "
        "SELECT ev.id, r.endpoint FROM ev JOIN r ON EXISTS (SELECT 1 FROM "
        "json_array_elements_text(r.types) t WHERE t = ev.type) "
        "ON CONFLICT (event_id, endpoint) DO NOTHING RETURNING 1), "
        "up AS (UPDATE opspool.notify_events e SET dispatched_at = now() FROM ev "
        "WHERE e.id = ev.id RETURNING 1) "
        "SELECT (SELECT count(*) FROM up) AS events, (SELECT count(*) FROM ins) AS deliveries",
        2, params, err);
    free(r);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    *events = row_int(rows, "events");
    *deliveries = row_int(rows, "deliveries");
    json_decref(rows);
    return 0;
}

json_t *osp_ledger_notify_claim(struct osp_pgs *c, const json_t *endpoints, int max,
                                const char *replica, int lease_s, struct osp_err *err)
{
    char lim[16], lease[16];
    snprintf(lim, sizeof(lim), "%d", max);
    snprintf(lease, sizeof(lease), "%d", lease_s);
    char *names = json_dumps(endpoints, JSON_COMPACT);
    const char *params[] = {names, lim, replica, lease};
    /* An attempt row without an end whose lease ran out belongs to a replica that stopped
     * mid-way (a crash, a kill): it is closed as interrupted before the next one starts. */
    json_t *rows = osp_pgs_query(
        c,
        "WITH d AS (SELECT id FROM opspool.notify_deliveries WHERE state = 'pending' "
        "AND next_at <= now() AND (lease_until IS NULL OR lease_until < now()) "
        "AND endpoint IN (SELECT json_array_elements_text($1::json)) "
        "ORDER BY next_at LIMIT $2::int FOR UPDATE SKIP LOCKED), "
        "lost AS (UPDATE opspool.notify_attempts a SET finished_at = now(), error = "
        "'interrupted: the scheduler making this attempt stopped before it ended' FROM d "
        "WHERE a.delivery_id = d.id AND a.finished_at IS NULL RETURNING 1), "
        "up AS (UPDATE opspool.notify_deliveries x SET attempts = x.attempts + 1, "
        "lease_until = now() + $4::int * interval '1 second' FROM d WHERE x.id = d.id "
        "RETURNING x.id, x.event_id, x.endpoint, x.attempts, x.budget_from, "
        "coalesce(x.budget_since, x.created_at) AS since), "
        "att AS (INSERT INTO opspool.notify_attempts (delivery_id, attempt, replica) "
        "SELECT id, attempts, $3 FROM up RETURNING 1) "
        "SELECT up.id::text AS id, up.endpoint, up.attempts AS attempt, "
        "up.attempts - up.budget_from AS budget, "
        "floor(extract(epoch FROM now() - up.since))::bigint AS age_s, e.type, "
        "e.id AS event_id, e.subject, opspool.ts_iso(e.created_at) AS occurred_at, "
        "e.data::text AS data FROM up JOIN opspool.notify_events e ON e.id = up.event_id "
        "ORDER BY e.id",
        4, params, err);
    free(names);
    return rows;
}

int osp_ledger_notify_done(struct osp_pgs *c, const char *id, int attempt, int http_status,
                           const char *error, int duration_ms, const char *state,
                           int64_t next_in_ms, struct osp_err *err)
{
    char att[16], st[16], dur[16], next[24];
    snprintf(att, sizeof(att), "%d", attempt);
    snprintf(st, sizeof(st), "%d", http_status);
    snprintf(dur, sizeof(dur), "%d", duration_ms);
    snprintf(next, sizeof(next), "%lld", (long long)next_in_ms);
    const char *params[] = {id, att, http_status > 0 ? st : NULL, error, dur, state, next};
    return ledger_exec(
        c,
        "WITH a AS (UPDATE opspool.notify_attempts SET finished_at = now(), "
        "http_status = $3::int, error = $4, duration_ms = $5::int "
        "WHERE delivery_id = $1::uuid AND attempt = $2::int AND finished_at IS NULL RETURNING 1) "
        "UPDATE opspool.notify_deliveries SET state = $6, lease_until = NULL, "
        "last_status = $3::int, last_error = $4, "
        "next_at = CASE WHEN $6 = 'pending' THEN now() + $7::bigint * interval '1 millisecond' "
        "ELSE next_at END, finished_at = CASE WHEN $6 <> 'pending' THEN now() END "
        "WHERE id = $1::uuid AND attempts = $2::int AND state = 'pending'",
        7, params, err);
}

json_t *osp_ledger_notify_list(struct osp_pgs *c, const char *state, const char *endpoint,
                               int limit, struct osp_err *err)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit > 0 ? limit : 50);
    const char *params[] = {state, endpoint, lim};
    json_t *rows = osp_pgs_query(
        c,
        "SELECT coalesce(json_agg(x.doc ORDER BY x.created_at DESC, x.id), '[]')::text AS doc "
        "FROM (SELECT d.id, d.created_at, json_build_object('id', d.id, 'endpoint', d.endpoint, "
        "'state', d.state, 'type', e.type, 'event_id', e.id, 'subject', e.subject, "
        "'occurred_at', opspool.ts_iso(e.created_at), 'attempts', d.attempts, "
        "'last_status', d.last_status, 'last_error', d.last_error, "
        "'next_at', CASE WHEN d.state = 'pending' THEN opspool.ts_iso(d.next_at) END, "
        "'finished_at', opspool.ts_iso(d.finished_at), 'data', e.data, "
        "'log', (SELECT coalesce(json_agg(json_build_object('attempt', a.attempt, "
        "'replica', a.replica, 'started_at', opspool.ts_iso(a.started_at), "
        "'finished_at', opspool.ts_iso(a.finished_at), 'http_status', a.http_status, "
        "'error', a.error, 'duration_ms', a.duration_ms) ORDER BY a.attempt), '[]') "
        "FROM opspool.notify_attempts a WHERE a.delivery_id = d.id)) AS doc "
        "FROM opspool.notify_deliveries d JOIN opspool.notify_events e ON e.id = d.event_id "
        "WHERE ($1::text IS NULL OR d.state = $1) AND ($2::text IS NULL OR d.endpoint = $2) "
        "ORDER BY d.created_at DESC, d.id LIMIT $3::int) x",
        3, params, err);
    json_t *doc = ledger_one_doc(rows, "doc");
    if (doc == NULL && err != NULL && err->code == 0) {
        osp_err_set(err, OSP_EPG, "notifications: unreadable answer");
    }
    return doc;
}

int osp_ledger_notify_retry(struct osp_pgs *c, const char *id, struct osp_err *err)
{
    const char *params[] = {id};
    json_t *rows = osp_pgs_query(
        c,
        "WITH cur AS (SELECT state FROM opspool.notify_deliveries WHERE id = $1::uuid), "
        "up AS (UPDATE opspool.notify_deliveries SET state = 'pending', next_at = now(), "
        "finished_at = NULL, budget_from = attempts, budget_since = now() "
        "WHERE id = $1::uuid AND state <> 'delivered' RETURNING 1) "
        "SELECT (SELECT state FROM cur) AS was",
        1, params, err);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    const char *was = json_string_value(json_object_get(json_array_get(rows, 0), "was"));
    int rc =
        was == NULL ? osp_err_set(err, OSP_ENOTFOUND, "no delivery %s", id)
        : strcmp(was, "delivered") == 0
            ? osp_err_set(err, OSP_ECONFLICT, "delivery %s was delivered: nothing to retry", id)
            : 0;
    json_decref(rows);
    return rc;
}

int osp_ledger_retain_notify(struct osp_pgs *c, int days, int batch, int *n, struct osp_err *err)
{
    char d[16], b[16];
    snprintf(d, sizeof(d), "%d", days);
    snprintf(b, sizeof(b), "%d", batch);
    const char *params[] = {d, b};
    json_t *rows = osp_pgs_query(
        c,
        "WITH old AS (SELECT e.id FROM opspool.notify_events e "
        "WHERE e.created_at < now() - make_interval(days => $1::int) "
        "AND NOT EXISTS (SELECT 1 FROM opspool.notify_deliveries x WHERE x.event_id = e.id "
        "AND x.state = 'pending') ORDER BY e.id LIMIT $2::int), "
        "del AS (DELETE FROM opspool.notify_events e USING old WHERE e.id = old.id RETURNING 1) "
        "SELECT count(*) AS n FROM del",
        2, params, err);
    if (rows == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    *n = row_int(rows, "n");
    json_decref(rows);
    return 0;
}
