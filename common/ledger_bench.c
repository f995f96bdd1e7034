/* SPDX-License-Identifier: MIT */
/* ledger_bench.c — the SQL of benchmark history (common/sql/0007_benchmark_history.sql):
 * results of a series judged against their baseline, the results of one job, and the
 * operators' pins and resets. Contract: common/ledger.h "Benchmark history"; the rule itself is
 * opspool.bench_judge. */
#include "common/ledger.h"
#include "common/ledger_int.h"

#include <stdio.h>
#include <string.h>

json_t *ledger_one_doc(json_t *rows, const char *col)
{
    const char *text = json_string_value(json_object_get(json_array_get(rows, 0), col));
    json_t *doc = text != NULL ? json_loads(text, 0, NULL) : NULL;
    json_decref(rows);
    return doc;
}

/* One result row as the API shows it, judged; r is the row alias. */
#define BENCH_ROW_JSON                                                                             \
    "json_build_object('job_id', r.job_id, 'attempt', r.attempt, 'target', r.target, "             \
    "'lane', r.lane, 'shape', r.shape::jsonb, 'created_at', opspool.ts_iso(r.created_at), "        \
    "'model', r.model, 'requests', r.requests, 'errors', r.errors, 'rps', r.rps, "                 \
    "'target_rps', r.target_rps, 'p50_ms', r.p50_ms, 'p90_ms', r.p90_ms, 'p95_ms', r.p95_ms, "     \
    "'p99_ms', r.p99_ms, 'p999_ms', r.p999_ms, 'max_ms', r.max_ms, "                               \
    "'cache_hit_ratio', r.cache_hit_ratio, 'passed', r.passed, 'replicas', r.replicas, "           \
    "'scaling_efficiency', r.scaling_efficiency, "                                                 \
    "'judge', coalesce(r.judge, opspool.bench_judge(r)))"

json_t *osp_ledger_bench_history(struct osp_pgs *c, const struct osp_bench_filter *f,
                                 struct osp_err *err)
{
    char since[24], lim[16];
    snprintf(since, sizeof(since), "%lld", (long long)f->since_ms);
    snprintf(lim, sizeof(lim), "%d", f->limit > 0 ? f->limit : 50);
    const char *params[] = {f->target, f->lane, f->since_ms > 0 ? since : NULL, lim};
    json_t *rows = osp_pgs_query(
        c,
        "SELECT coalesce(json_agg(x.doc ORDER BY x.created_at DESC, x.ord), '[]')::text AS doc "
        "FROM (SELECT " BENCH_ROW_JSON " AS doc, r.created_at, "
        "row_number() OVER (ORDER BY r.created_at DESC, r.lane) AS ord "
        "FROM opspool.benchmark_results r WHERE ($1::text IS NULL OR r.target = $1) "
        "AND ($2::text IS NULL OR coalesce(r.lane, '') = $2) "
        "AND ($3::bigint IS NULL OR r.created_at >= now() - $3::bigint * interval '1 millisecond') "
        "ORDER BY r.created_at DESC, r.lane LIMIT $4::int) x",
        4, params, err);
    json_t *doc = ledger_one_doc(rows, "doc");
    if (doc == NULL && err != NULL && err->code == 0) {
        osp_err_set(err, OSP_EPG, "benchmark history: unreadable answer");
    }
    return doc;
}

json_t *osp_ledger_bench_job(struct osp_pgs *c, const char *job_id, struct osp_err *err)
{
    const char *params[] = {job_id};
    json_t *rows =
        osp_pgs_query(c,
                      "SELECT coalesce(json_agg(x.doc ORDER BY x.lane), '[]')::text AS doc "
                      "FROM (SELECT " BENCH_ROW_JSON " AS doc, coalesce(r.lane, '') AS lane "
                      "FROM opspool.benchmark_results r WHERE r.job_id = $1::uuid "
                      "AND r.attempt = (SELECT max(a.attempt) FROM opspool.benchmark_results a "
                      "WHERE a.job_id = $1::uuid)) x",
                      1, params, err);
    json_t *doc = ledger_one_doc(rows, "doc");
    if (doc == NULL && err != NULL && err->code == 0) {
        osp_err_set(err, OSP_EPG, "benchmark results: unreadable answer");
    }
    return doc;
}

json_t *osp_ledger_bench_latest(struct osp_pgs *c, struct osp_err *err)
{
    return osp_pgs_query(
        c,
        "SELECT r.target, coalesce(r.lane, '') AS lane, "
        "coalesce(r.judge, opspool.bench_judge(r))->>'verdict' AS verdict, extract(epoch FROM "
        "r.created_at)::bigint AS created, r.rps, r.p50_ms, r.p99_ms "
        "FROM (SELECT DISTINCT ON (b.target, coalesce(b.lane, '')) b.* "
        "FROM opspool.benchmark_results b WHERE b.target IS NOT NULL "
        "AND b.created_at > now() - interval '30 days' "
        "ORDER BY b.target, coalesce(b.lane, ''), b.created_at DESC) r",
        0, NULL, err);
}

int osp_ledger_bench_baseline_set(struct osp_pgs *c, const char *target, const char *lane,
                                  const char *pin_job_id, const char *by, struct osp_err *err)
{
    const char *params[] = {target, lane, pin_job_id, by};
    /* A pin names a run of this series; a reset (no pin) starts the rolling baseline now. */
    json_t *rows = osp_pgs_query(
        c,
        "WITH ok AS (SELECT $3::uuid IS NULL OR EXISTS (SELECT 1 FROM opspool.benchmark_results "
        "WHERE job_id = $3::uuid AND target = $1 AND coalesce(lane, '') = $2) AS found), "
        "up AS (INSERT INTO opspool.benchmark_baselines (target, lane, pinned_job_id, reset_at, "
        "updated_by) SELECT $1, $2, $3::uuid, CASE WHEN $3::uuid IS NULL THEN now() END, $4 "
        "FROM ok WHERE found ON CONFLICT (target, lane) DO UPDATE SET "
        "pinned_job_id = EXCLUDED.pinned_job_id, reset_at = EXCLUDED.reset_at, "
        "updated_by = EXCLUDED.updated_by, updated_at = now() RETURNING 1) "
        "SELECT (SELECT found FROM ok)::text AS found",
        4, params, err);
    if (rows == NULL) {
        return err != NULL && err->code != 0 ? err->code : OSP_EPG;
    }
    const char *found = json_string_value(json_object_get(json_array_get(rows, 0), "found"));
    int rc =
        found != NULL && strcmp(found, "true") == 0
            ? 0
            : osp_err_set(err, OSP_ENOTFOUND, "job %s has no result for target \"%s\" lane \"%s\"",
                          pin_job_id != NULL ? pin_job_id : "-", target, lane);
    json_decref(rows);
    return rc;
}
