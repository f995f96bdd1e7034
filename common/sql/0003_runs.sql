-- SPDX-License-Identifier: MIT
-- 0003_runs.sql — every run of a job is an attempt row, including the runs that never got an
-- outcome of their own. Applied under the migration advisory lock, in one transaction.
--
-- An attempt (the envelope's `attempt`, what max_attempts counts) can run more than once: a
-- worker dies or stops past its lease and the reaper hands the job to another worker, or a
-- draining worker hands it back. Each such run is now a row with outcome 'interrupted' and
-- its end in `error` ("worker lost", "handed back", "lease expired", "predecessor of worker
-- X restarted"), and the run that follows is the next `run` of the same attempt:
--   (job, attempt 1, run 0)  interrupted   worker lost: w1
--   (job, attempt 1, run 1)  succeeded     w2
-- Rows are keyed by a sequence (seq), not by their run number: a reaper recording a lost run
-- and the worker recording the re-run's outcome write concurrently, and two numbers computed
-- from the same snapshot must never make one insert swallow the other. `run` is the row's
-- place among its attempt's rows when it was written (for people; ordering is by seq). A run
-- is known by (attempt, worker, started_at): a repeated finish of it inserts nothing, and a
-- worker whose run was declared interrupted and that finishes after all (stopped past its
-- lease, then resumed) writes into that row how the run ended; the job's state stays with the
-- run that owns it now.
ALTER TABLE opspool.job_attempts ADD COLUMN run int NOT NULL DEFAULT 0;
ALTER TABLE opspool.job_attempts ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE opspool.job_attempts DROP CONSTRAINT job_attempts_pkey;
ALTER TABLE opspool.job_attempts ADD PRIMARY KEY (job_id, seq);
CREATE INDEX job_attempts_attempt_idx ON opspool.job_attempts (job_id, attempt);
ALTER TABLE opspool.job_attempts DROP CONSTRAINT job_attempts_outcome_check;
ALTER TABLE opspool.job_attempts ADD CONSTRAINT job_attempts_outcome_check
    CHECK (outcome IN ('succeeded', 'failed', 'timeout', 'crashed', 'cancelled', 'rejected',
                       'interrupted'));
COMMENT ON COLUMN opspool.jobs.recoveries IS
    'runs lost with their worker (reaper, or a worker restarted under the same id); '
    'a job is dead once this exceeds OSP_MAX_RECOVERIES';

-- A job row the ledger lost after its submit was answered (a crash with synchronous_commit
-- off, a failover to a standby that had not received it), re-created by the worker that runs
-- the job, from the envelope it verified (ledger.h osp_lbatch_restore). Workers may not
-- insert into jobs themselves: this function is their only way, it makes queued rows only,
-- and it leaves a 'ledger.restored' event on each. Any conflict keeps what is there.
CREATE FUNCTION opspool.restore_jobs(rows jsonb) RETURNS int
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    WITH n_in AS (
        SELECT * FROM jsonb_to_recordset(rows) AS x(id uuid, kind text, payload jsonb,
            attempt int, max_attempts int, timeout_s int, idempotency_key text,
            submitted_by text, schedule text, trace_id text, enqueued_ms bigint, run_ms bigint,
            why text)
        WHERE x.kind ~ '^[a-z0-9_-]{1,32}$' AND x.attempt >= 0),
    n_ins AS (
        INSERT INTO opspool.jobs (id, kind, state, payload, attempt, max_attempts, timeout_s,
            idempotency_key, submitted_by, schedule, trace_id, created_at, run_at, updated_at)
        SELECT n.id, n.kind, 'queued', coalesce(n.payload, '{}'), n.attempt,
            greatest(n.max_attempts, 1), greatest(n.timeout_s, 0), nullif(n.idempotency_key, ''),
            nullif(n.submitted_by, ''), nullif(n.schedule, ''), nullif(n.trace_id, ''),
            coalesce(opspool.ms_ts(n.enqueued_ms), now()),
            coalesce(opspool.ms_ts(n.run_ms), opspool.ms_ts(n.enqueued_ms), now()), now()
        FROM n_in n ON CONFLICT DO NOTHING RETURNING id),
    n_ev AS (
        INSERT INTO opspool.job_events (job_id, attempt, type, data)
        SELECT n.id, n.attempt + 1, 'ledger.restored', jsonb_build_object('reason', n.why)
        FROM n_in n JOIN n_ins i ON i.id = n.id RETURNING 1)
    SELECT count(*)::int FROM n_ins
    $$;
REVOKE ALL ON FUNCTION opspool.restore_jobs(jsonb) FROM PUBLIC;
