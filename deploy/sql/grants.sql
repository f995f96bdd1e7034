-- SPDX-License-Identifier: MIT
-- grants.sql — least-privilege grants on schema opspool (docs/security.md). Run as
-- opspool_migrator (the owner) after `opspoolctl migrate`, and again after every upgrade
-- that adds a migration; it is idempotent. deploy/sql/roles.sql creates the roles.
-- Each grant names the code path that needs it; tests/integration/test_least_privilege.sh
-- runs the scheduler, a worker and opspoolctl under these roles (and checks refusals).
\set ON_ERROR_STOP on

-- Start from nothing: what is not granted below is refused.
REVOKE ALL ON ALL TABLES IN SCHEMA opspool FROM PUBLIC, opspool_scheduler, opspool_worker,
    opspool_operator, opspool_readonly;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA opspool FROM PUBLIC, opspool_scheduler, opspool_worker,
    opspool_operator, opspool_readonly;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA opspool FROM PUBLIC;

-- Every role resolves names in the schema (no CREATE: only the migrator creates objects).
GRANT USAGE ON SCHEMA opspool TO opspool_scheduler, opspool_worker, opspool_readonly;

-- Helpers used in SELECT lists and CTEs by every process (opspool.ts_iso, opspool.ms_ts).
GRANT EXECUTE ON FUNCTION opspool.ts_iso(timestamptz), opspool.ms_ts(bigint)
    TO opspool_scheduler, opspool_worker, opspool_readonly;

-- schema_migrations: osp_ledger_migrate's up-to-date check at every service start (it runs
-- no DDL when every migration is recorded).
GRANT SELECT ON opspool.schema_migrations TO opspool_scheduler, opspool_worker, opspool_readonly;

---------------------------------------------------------------------------------------------
-- opspool_worker: common/ledger.c osp_ledger_commit (worker/flush.c), nothing else.
---------------------------------------------------------------------------------------------
-- jobs: read by the commit CTEs (JOIN opspool.jobs j ... WHERE j.state NOT IN terminal);
-- updated by w_upd (attempt start/finish: state, attempt, worker, started_at, finished_at,
-- result, error, run_at, recoveries, updated_at) and r_upd (reaper duty: recoveries).
-- Column-level: a worker cannot rewrite payload, kind, max_attempts or idempotency keys.
GRANT SELECT ON opspool.jobs TO opspool_worker;
-- A job row the ledger lost, re-created from the envelope of a job the worker verified and
-- ran (osp_lbatch_restore): only through this SECURITY DEFINER function (queued rows only),
-- never by INSERT.
GRANT EXECUTE ON FUNCTION opspool.restore_jobs(jsonb) TO opspool_worker;
GRANT UPDATE (state, attempt, worker, started_at, finished_at, result, error, run_at,
              recoveries, updated_at) ON opspool.jobs TO opspool_worker;
-- job_attempts: f_ins / r_ins INSERT ... ON CONFLICT DO NOTHING RETURNING; s_win and the run
-- numbering read it; f_late UPDATEs an interrupted run's row when that run finished after all.
GRANT SELECT, INSERT ON opspool.job_attempts TO opspool_worker;
GRANT UPDATE (result, finished_at, error) ON opspool.job_attempts TO opspool_worker;
-- job_events: e_ins (the evidence timeline a job streams) and insert_typed's
-- 'ledger.typed_rejected' events; bigserial id needs the sequence.
GRANT INSERT ON opspool.job_events TO opspool_worker;
GRANT USAGE ON SEQUENCE opspool.job_events_id_seq TO opspool_worker;
-- Typed results: opspool.insert_typed (SECURITY INVOKER) inserts one row per result,
-- ON CONFLICT DO NOTHING (benchmark, drill, seed, backup kinds).
GRANT EXECUTE ON FUNCTION opspool.insert_typed(regclass, jsonb) TO opspool_worker;
GRANT INSERT ON opspool.benchmark_results, opspool.drill_results, opspool.seed_runs,
    opspool.backups TO opspool_worker;

---------------------------------------------------------------------------------------------
-- opspool_scheduler (and opspool_operator, its member): scheduler/*.c, common/submit.c,
-- and opspoolctl's write commands (cli/*.c).
---------------------------------------------------------------------------------------------
-- jobs: INSERT — submit (osp_ledger_insert_jobs: API POST /v1/jobs, cron firings,
--   opspoolctl submit / schedules trigger; ON CONFLICT DO NOTHING RETURNING id);
-- SELECT — GET /v1/jobs[/{id}], reconciler scan, gauges, cron 'forbid' check, idempotency
--   lookups, opspoolctl reads;
-- UPDATE — cancel (API, opspoolctl), dead retry (API, opspoolctl), SELECT ... FOR UPDATE in
--   cancel and retention;
-- DELETE — retention (reconciler.c: finished jobs older than OSP_LEDGER_RETENTION_DAYS; the
--   job_attempts rows go by ON DELETE CASCADE, which runs as the table owner).
GRANT SELECT, INSERT, UPDATE, DELETE ON opspool.jobs TO opspool_scheduler;
-- job_attempts: GET /v1/jobs/{id} (osp_ledger_get_job), opspoolctl job / dead retry (SELECT);
-- the reaper records each run lost with its worker (INSERT, osp_lbatch_interrupted).
GRANT SELECT, INSERT ON opspool.job_attempts TO opspool_scheduler;
-- job_events: INSERT — cancel / retried_from_dead / audit events (API and opspoolctl);
-- SELECT — GET /v1/jobs/{id}, opspoolctl job --watch, dead retry's budget lookup;
-- DELETE — retention deletes the events of pruned jobs (no foreign key on this table).
GRANT SELECT, INSERT, DELETE ON opspool.job_events TO opspool_scheduler;
GRANT USAGE ON SEQUENCE opspool.job_events_id_seq TO opspool_scheduler;
-- schedules: INSERT ... ON CONFLICT DO UPDATE (OSP_SCHEDULES_FILE seeding, POST
-- /v1/schedules), UPDATE (cron record(), opspoolctl schedules enable/disable), DELETE
-- (DELETE /v1/schedules/{name}; its firings go by ON DELETE CASCADE), SELECT (cron loop,
-- GET /v1/schedules, gauges).
GRANT SELECT, INSERT, UPDATE, DELETE ON opspool.schedules TO opspool_scheduler;
-- schedule_firings: cron claims a tick (INSERT ... ON CONFLICT DO UPDATE ... RETURNING),
-- records it (UPDATE), retention prunes old ones (DELETE), GET /v1/schedules/{name} reads.
GRANT SELECT, INSERT, UPDATE, DELETE ON opspool.schedule_firings TO opspool_scheduler;
-- Typed results: read-only for the scheduler side (dashboards, opspoolctl).
GRANT SELECT ON opspool.benchmark_results, opspool.drill_results, opspool.seed_runs,
    opspool.backups TO opspool_scheduler;

-- audit: one row per operation that is not about one job (pause/resume, bulk cancel, queue
-- and dead-letter purge, schedule changes: common/ledger_ops.c); INSERT ... RETURNING id, and
-- UPDATE of the row's counts when a bulk operation ends; retention prunes old rows.
GRANT SELECT, INSERT, UPDATE (data), DELETE ON opspool.audit TO opspool_scheduler;

-- campaigns, campaign_steps, campaign_events (common/ledger_campaign.c): POST /v1/campaigns
-- and opspoolctl campaign submit (INSERT), the campaign duty that advances them and cancel
-- (SELECT ... FOR UPDATE, UPDATE, INSERT events), reads (SELECT), retention (DELETE; steps
-- and events go by ON DELETE CASCADE).
GRANT SELECT, INSERT, UPDATE, DELETE ON opspool.campaigns TO opspool_scheduler;
GRANT SELECT, INSERT, UPDATE ON opspool.campaign_steps, opspool.campaign_events
    TO opspool_scheduler;

-- benchmark_baselines (common/ledger_bench.c): `opspoolctl bench pin|reset` upserts one
-- (target, lane); history reads judge every run with opspool.bench_judge
-- (0007_benchmark_history.sql).
GRANT SELECT, INSERT, UPDATE, DELETE ON opspool.benchmark_baselines TO opspool_scheduler;
GRANT EXECUTE ON FUNCTION opspool.bench_judge(opspool.benchmark_results)
    TO opspool_scheduler, opspool_readonly;

-- Notifications (common/ledger_notify.c, scheduler/notify.c; 0009_notifications.sql). The
-- events are written by SECURITY DEFINER triggers, whoever changes the job, firing or
-- campaign. The notification duty fans them out (UPDATE dispatched_at, INSERT deliveries),
-- claims and records deliveries and attempts; retention deletes old events (the deliveries
-- and attempts go by ON DELETE CASCADE); `opspoolctl notifications retry` updates one.
GRANT SELECT, UPDATE (dispatched_at), DELETE ON opspool.notify_events TO opspool_scheduler;
GRANT SELECT, INSERT, UPDATE ON opspool.notify_deliveries, opspool.notify_attempts
    TO opspool_scheduler;

---------------------------------------------------------------------------------------------
-- opspool_readonly: opspoolctl queues, jobs, job, schedules, dead (listing), campaigns,
-- dashboards.
---------------------------------------------------------------------------------------------
GRANT SELECT ON opspool.jobs, opspool.job_attempts, opspool.job_events, opspool.schedules,
    opspool.schedule_firings, opspool.benchmark_results, opspool.drill_results,
    opspool.seed_runs, opspool.backups, opspool.audit, opspool.campaigns,
    opspool.campaign_steps, opspool.campaign_events, opspool.benchmark_baselines,
    opspool.notify_events, opspool.notify_deliveries, opspool.notify_attempts
    TO opspool_readonly;
