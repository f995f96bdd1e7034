-- 0008_benchmark_verdicts.sql — every benchmark result records its verdict when it is written.
--
-- judge: what opspool.bench_judge (0007) said at insert time — the verdict, the baseline it
-- was compared to (runs, their job ids, a pin or reset) and every figure's value, baseline,
-- tolerance and verdict. Recorded, so a later pin, reset or pruned history never rewrites
-- what a night's run was told. Rows written before this migration have none (readers judge
-- them when read). A regressed result also leaves a 'benchmark.regressed' event on its job.
ALTER TABLE opspool.benchmark_results ADD COLUMN judge jsonb;

-- SECURITY DEFINER: workers may only INSERT result rows (deploy/sql/grants.sql); judging reads
-- the series' history and the operators' pins.
CREATE FUNCTION opspool.bench_record_judge() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, opspool
    AS $$
BEGIN
    NEW.judge := opspool.bench_judge(NEW);
    IF NEW.judge->>'verdict' = 'regressed' THEN
        INSERT INTO opspool.job_events (job_id, attempt, ts, type, data)
        VALUES (NEW.job_id, NEW.attempt, now(), 'benchmark.regressed',
                jsonb_build_object('target', NEW.target, 'lane', NEW.lane,
                    'figures', (SELECT jsonb_object_agg(f.k, f.v) FROM jsonb_each(NEW.judge->'figures') AS f(k, v)
                                WHERE f.v->>'verdict' = 'regressed'),
                    'baseline_runs', NEW.judge->'baseline'->'runs'));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER benchmark_results_judge BEFORE INSERT ON opspool.benchmark_results
    FOR EACH ROW WHEN (NEW.judge IS NULL) EXECUTE FUNCTION opspool.bench_record_judge();
