-- 0007_benchmark_history.sql — benchmark series, baselines and regression verdicts.
--
-- A series is (target, lane, shape). shape is the lane's workload as the benchmark kind
-- records it (model, connections, rate, duration or request count, request mix, keys): a lane
-- whose load changed starts a new series instead of being compared with runs of another load.
-- Rows recorded before this migration have no shape and form their own series.
ALTER TABLE opspool.benchmark_results ADD COLUMN shape text;
CREATE INDEX benchmark_results_series_idx ON opspool.benchmark_results (target, lane, created_at);

-- What operators set per (target, lane): a pinned run (a release: every later run is compared
-- with that run's figures alone) or a reset (the rolling baseline counts only runs after it).
CREATE TABLE opspool.benchmark_baselines (
    target        text NOT NULL,
    lane          text NOT NULL,          -- '' for a lane without a name
    pinned_job_id uuid,                   -- NULL: the rolling baseline
    reset_at      timestamptz,            -- NULL: no reset
    updated_by    text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, lane)
);

-- The regression rule (docs/benchmark-jobs.md "Regressions"). For one result row r:
--   baseline  the last 10 earlier passing runs of r's series (or the pinned run alone; only
--             runs after a reset), per figure the median;
--   tolerance per figure max(4 x 1.4826 x MAD of those runs, a minimum relative change, an
--             absolute floor): the runs' own spread, so a noisy series needs a bigger change,
--             and never less than 20 % (throughput), 15 % (p50), 25 % (p99, p99.9), 0.5 ms
--             (latencies), 1 percentage point (error rate), 0.05 (cache-hit ratio);
--   tails     p99 and p99.9 carry the host's hiccups (a stalled scheduler, a noisy
--             neighbour): one run beyond the tolerance is 'unconfirmed'; the second in a row
--             (the series' previous run beyond the same tolerance) is 'regressed';
--   verdict   per figure: 'regressed' (worse than baseline by more than the tolerance),
--             'improved' (better by more), 'unconfirmed' (tails, see above), 'ok',
--             'no baseline yet' (fewer than 5 runs, or no
--             pinned run), 'not measured' (the figure is missing in r), 'too few requests'
--             (p99 needs 1,000 requests in r, p99.9 10,000: a p99 of 400 requests is its
--             4th-largest sample, noise that would page someone);
--             overall: 'regressed' if any figure is, else 'no baseline yet' if no figure has
--             a baseline, else 'improved' if any figure is, else 'ok'.
-- Returns {"verdict", "baseline": {"runs", "jobs", "pinned", "reset_at"}, "figures": {...}}.
CREATE FUNCTION opspool.bench_judge(r opspool.benchmark_results) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
WITH pin AS (
    SELECT b.pinned_job_id, b.reset_at FROM opspool.benchmark_baselines b
    WHERE b.target = r.target AND b.lane = coalesce(r.lane, '')
),
hist AS (
    SELECT h.job_id,
           to_jsonb(h) || jsonb_build_object('error_rate',
               CASE WHEN h.requests > 0 THEN h.errors::float8 / h.requests END) AS j
    FROM opspool.benchmark_results h
    WHERE h.target = r.target AND coalesce(h.lane, '') = coalesce(r.lane, '')
      AND h.shape IS NOT DISTINCT FROM r.shape AND h.passed
      AND h.created_at < r.created_at AND h.job_id <> r.job_id
      AND h.created_at > coalesce((SELECT p.reset_at FROM pin p), '-infinity')
      AND ((SELECT p.pinned_job_id FROM pin p) IS NULL
           OR h.job_id = (SELECT p.pinned_job_id FROM pin p))
    ORDER BY h.created_at DESC
    LIMIT 10
),
cur AS (
    SELECT to_jsonb(r) || jsonb_build_object('error_rate',
               CASE WHEN r.requests > 0 THEN r.errors::float8 / r.requests END) AS j
),
prev AS (
    SELECT to_jsonb(h) AS j FROM opspool.benchmark_results h
    WHERE h.target = r.target AND coalesce(h.lane, '') = coalesce(r.lane, '')
      AND h.shape IS NOT DISTINCT FROM r.shape AND h.created_at < r.created_at
      AND h.job_id <> r.job_id
    ORDER BY h.created_at DESC LIMIT 1
),
figs (fig, better, rel, floor_abs, min_requests, tail) AS (VALUES
    ('rps', 1, 0.20, 0.0, 0, false), ('p50_ms', -1, 0.15, 0.5, 0, false),
    ('p99_ms', -1, 0.25, 0.5, 1000, true), ('p999_ms', -1, 0.25, 0.5, 10000, true),
    ('error_rate', -1, 0.0, 0.01, 0, false), ('cache_hit_ratio', 1, 0.0, 0.05, 0, false)
),
med AS (
    SELECT f.fig, f.better, f.rel, f.floor_abs, f.min_requests, f.tail,
           ((SELECT p.j FROM prev p) ->> f.fig)::float8 AS pv,
           ((SELECT c.j FROM cur c) ->> f.fig)::float8 AS v,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY (h.j ->> f.fig)::float8) AS m,
           count(h.j ->> f.fig) AS n
    FROM figs f LEFT JOIN hist h ON true
    GROUP BY f.fig, f.better, f.rel, f.floor_abs, f.min_requests, f.tail
),
judged AS (
    SELECT d.fig, d.v, d.m, d.n, d.better, t.tol,
           CASE WHEN d.v IS NULL THEN 'not measured'
                WHEN coalesce(r.requests, 0) < d.min_requests THEN 'too few requests'
                WHEN d.n < CASE WHEN (SELECT p.pinned_job_id FROM pin p) IS NULL THEN 5 ELSE 1 END
                    THEN 'no baseline yet'
                WHEN (d.v - d.m) * d.better < -t.tol AND d.tail
                     AND NOT coalesce((d.pv - d.m) * d.better < -t.tol, false) THEN 'unconfirmed'
                WHEN (d.v - d.m) * d.better < -t.tol THEN 'regressed'
                WHEN (d.v - d.m) * d.better > t.tol THEN 'improved'
                ELSE 'ok' END AS verdict
    FROM med d
    CROSS JOIN LATERAL (
        SELECT greatest(4 * 1.4826 * coalesce((
                   SELECT percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY abs((h.j ->> d.fig)::float8 - d.m)) FROM hist h), 0),
               d.rel * abs(coalesce(d.m, 0)), d.floor_abs) AS tol
    ) t
)
SELECT jsonb_build_object(
    'verdict', CASE WHEN bool_or(verdict = 'regressed') THEN 'regressed'
                    WHEN NOT bool_or(verdict IN ('ok', 'improved')) THEN 'no baseline yet'
                    WHEN bool_or(verdict = 'improved') THEN 'improved'
                    ELSE 'ok' END,
    'baseline', jsonb_build_object(
        'runs', (SELECT count(*) FROM hist),
        'jobs', coalesce((SELECT jsonb_agg(h.job_id) FROM hist h), '[]'::jsonb),
        'pinned', (SELECT p.pinned_job_id FROM pin p),
        'reset_at', (SELECT opspool.ts_iso(p.reset_at) FROM pin p)),
    'figures', jsonb_object_agg(fig, jsonb_build_object(
        'value', v, 'baseline', m, 'tolerance', CASE WHEN n > 0 THEN tol END,
        'verdict', verdict)))
FROM judged
$$;
