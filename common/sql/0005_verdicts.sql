-- 0005_verdicts.sql — 'failed', a final job state for verdicts.
--
-- A job whose run completed and judged the system (a drill's hypothesis failed, a benchmark
-- breached a threshold, a backup did not verify) ends 'failed' and is never retried; 'dead'
-- stays for errors that used up their attempts. Like the other final states it is sticky.
ALTER TABLE opspool.jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE opspool.jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('queued', 'delayed', 'running', 'retrying',
                     'succeeded', 'failed', 'dead', 'cancelled'));

-- Retention scans finished jobs by age: the partial index covers the new final state.
DROP INDEX opspool.jobs_finished_idx;
CREATE INDEX jobs_finished_idx ON opspool.jobs (finished_at)
    WHERE state IN ('succeeded', 'failed', 'dead', 'cancelled');
