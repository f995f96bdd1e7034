-- SPDX-License-Identifier: MIT
-- 0002_scheduler.sql — cron firing records for opspool-scheduler (docs/api.md, schedules).
-- Applied under the migration advisory lock, in one transaction, like 0001.
--
-- One row per (schedule, tick). The primary key is the cross-replica guarantee that a tick
-- fires at most once: a replica claims a tick by inserting its row (status 'firing'), then
-- submits the job with the idempotency key "schedule:<name>:<tick epoch s>" and marks the row
-- 'fired' with the job id. 'skipped' records a tick not run because of the concurrency policy
-- (reason says why); 'missed' a tick found too late to run (outside catchup_s).

CREATE TABLE opspool.schedule_firings (
    schedule   text NOT NULL REFERENCES opspool.schedules (name) ON DELETE CASCADE,
    fire_at    timestamptz NOT NULL,           -- the cron tick, not when it ran
    status     text NOT NULL CHECK (status IN ('firing', 'fired', 'skipped', 'missed')),
    job_id     uuid,
    reason     text,
    replica    text,                           -- scheduler that claimed the tick
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, fire_at)
);
CREATE INDEX schedule_firings_claimed_idx ON opspool.schedule_firings (claimed_at);

-- The concurrency policy check ("is a job of this schedule still unfinished?") and the
-- per-schedule last-success metric read jobs by schedule.
CREATE INDEX jobs_schedule_state_idx ON opspool.jobs (schedule, state) WHERE schedule IS NOT NULL;

-- The reconciler scans unfinished jobs by id; retention scans finished ones by age.
CREATE INDEX jobs_unfinished_idx ON opspool.jobs (id)
    WHERE state IN ('queued', 'delayed', 'running', 'retrying');
CREATE INDEX jobs_finished_idx ON opspool.jobs (finished_at)
    WHERE state IN ('succeeded', 'dead', 'cancelled');
