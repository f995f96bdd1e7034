-- SPDX-License-Identifier: MIT
-- 0001_init.sql — the opspool ledger schema (DESIGN.md §3), applied by osp_ledger_migrate
-- inside one transaction under the migration advisory lock. The schema itself and
-- opspool.schema_migrations are created by the migrator before this file runs.
--
-- Invariants the ledger SQL (common/ledger.c) relies on:
--  * terminal job states (succeeded, dead, cancelled) are never left once entered;
--  * job_attempts is keyed by (job_id, attempt), so a repeated finish inserts nothing;
--  * typed result tables are filled by opspool.insert_typed (below): every column is either
--    supplied by the caller or nullable, and created_at is supplied by the ledger. Their
--    unique keys make a repeated insert of the same result a no-op (ON CONFLICT DO NOTHING).

-- Milliseconds since the epoch (what the wire and the C code use) to timestamptz; 0 or NULL
-- mean "no time". Inlined by the planner.
CREATE FUNCTION opspool.ms_ts(ms bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN ms > 0 THEN to_timestamp(ms::float8 / 1000) END $$;

-- ISO 8601 UTC text with milliseconds, independent of the session's TimeZone and DateStyle.
CREATE FUNCTION opspool.ts_iso(ts timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

CREATE TABLE opspool.jobs (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL,
    state           text NOT NULL CHECK (state IN ('queued', 'delayed', 'running', 'retrying',
                                                   'succeeded', 'dead', 'cancelled')),
    payload         jsonb,
    attempt         int NOT NULL DEFAULT 0,      -- attempts started so far (0 = never ran)
    max_attempts    int NOT NULL DEFAULT 1,
    timeout_s       int NOT NULL DEFAULT 0,      -- 0 = the kind's default
    recoveries      int NOT NULL DEFAULT 0,      -- times the reaper took it back from a dead worker
    idempotency_key text UNIQUE,                 -- NULL when the submitter gave none
    submitted_by    text,
    schedule        text,                        -- schedule that fired it, NULL for ad hoc jobs
    trace_id        text,
    worker          text,                        -- worker of the latest attempt
    result          jsonb,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    run_at          timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_state_kind_idx ON opspool.jobs (state, kind);
CREATE INDEX jobs_kind_created_idx ON opspool.jobs (kind, created_at);

CREATE TABLE opspool.job_attempts (
    job_id      uuid NOT NULL REFERENCES opspool.jobs (id) ON DELETE CASCADE,
    attempt     int NOT NULL,
    worker      text,
    outcome     text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'timeout', 'crashed',
                                                 'cancelled', 'rejected')),
    error       text,
    result      jsonb,
    started_at  timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (job_id, attempt)
);

-- No foreign key on purpose: events are the hottest insert, and the ledger only inserts
-- events of jobs it finds live in the same statement. Deleting a job deletes its events
-- explicitly.
CREATE TABLE opspool.job_events (
    id      bigserial PRIMARY KEY,
    job_id  uuid NOT NULL,
    attempt int,
    ts      timestamptz NOT NULL DEFAULT now(),
    type    text NOT NULL,
    data    jsonb
);
CREATE INDEX job_events_job_idx ON opspool.job_events (job_id, id);

CREATE TABLE opspool.schedules (
    name         text PRIMARY KEY,
    cron         text NOT NULL,
    timezone     text NOT NULL DEFAULT 'UTC',
    kind         text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}',
    enabled      boolean NOT NULL DEFAULT true,
    concurrency  text NOT NULL DEFAULT 'allow', -- overlap policy, interpreted by the scheduler
    catchup_s    int NOT NULL DEFAULT 0,     -- how late a missed tick may still fire
    last_fire_at timestamptz,
    next_fire_at timestamptz,
    last_job_id  uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per benchmark lane and attempt.
CREATE TABLE opspool.benchmark_results (
    job_id          uuid NOT NULL,
    attempt         int NOT NULL,
    target          text,
    lane            text,
    model           text,               -- closed | open
    requests        bigint,
    errors          bigint,
    rps             double precision,
    target_rps      double precision,   -- open model arrival rate, NULL for closed
    p50_ms          double precision,
    p90_ms          double precision,
    p95_ms          double precision,
    p99_ms          double precision,
    p999_ms         double precision,
    max_ms          double precision,
    cache_hit_ratio double precision,
    passed          boolean,
    thresholds      jsonb,
    created_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX benchmark_results_key ON opspool.benchmark_results (job_id, attempt, coalesce(lane, ''));
CREATE INDEX benchmark_results_target_idx ON opspool.benchmark_results (target, created_at);

CREATE TABLE opspool.drill_results (
    job_id             uuid NOT NULL,
    attempt            int NOT NULL,
    target             text,
    fault              text,
    verdict            text,
    availability       double precision,   -- 0..1 over the probes of the whole drill
    time_to_detect_ms  bigint,
    time_to_recover_ms bigint,
    probes             jsonb,
    phases             jsonb,
    created_at         timestamptz NOT NULL,
    PRIMARY KEY (job_id, attempt)
);
CREATE INDEX drill_results_target_idx ON opspool.drill_results (target, created_at);

CREATE TABLE opspool.seed_runs (
    job_id      uuid NOT NULL,
    attempt     int NOT NULL,
    target      text,
    seed        bigint,
    scale       int,
    mode        text,                   -- replace | append
    rows        jsonb,                  -- table name -> rows written
    bytes       bigint,
    duration_ms bigint,
    rows_per_s  double precision,
    digest      text,                   -- content digest, equal for equal (seed, scale)
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (job_id, attempt)
);
CREATE INDEX seed_runs_target_idx ON opspool.seed_runs (target, created_at);

CREATE TABLE opspool.backups (
    job_id          uuid NOT NULL,
    attempt         int NOT NULL,
    target          text,
    path            text,
    bytes           bigint,
    sha256          text,
    server_version  text,
    pg_dump_version text,
    duration_ms     bigint,
    verified        text,               -- none | list | restore, NULL when not verified
    restore_ms      bigint,
    expired_at      timestamptz,        -- set when retention removed the file
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (job_id, attempt)
);
CREATE INDEX backups_target_idx ON opspool.backups (target, created_at);

-- Insert typed result rows (a JSON array of objects keyed by column name) into tbl, one row
-- at a time under its own savepoint. A row the table refuses (a string where a number
-- belongs, a missing NOT NULL column) must not fail the whole ledger batch: the batch also
-- carries job outcomes, and a worker would retry it forever. Such a row is recorded as a
-- 'ledger.typed_rejected' event of its job instead. tbl comes from the ledger's fixed
-- allowlist; %s on a regclass prints it schema-qualified and quoted.
CREATE FUNCTION opspool.insert_typed(tbl regclass, rows jsonb) RETURNS int
    LANGUAGE plpgsql VOLATILE
    AS $$
DECLARE
    r jsonb;
    n int := 0;
BEGIN
    FOR r IN SELECT e.v FROM jsonb_array_elements(rows) AS e(v) LOOP
        BEGIN
            EXECUTE format('INSERT INTO %s SELECT * FROM jsonb_populate_record(NULL::%s, $1) '
                           'ON CONFLICT DO NOTHING', tbl, tbl)
                USING jsonb_build_object('created_at', now()) || r;
            n := n + 1;
        EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
            INSERT INTO opspool.job_events (job_id, attempt, ts, type, data)
            VALUES ((r->>'job_id')::uuid, (r->>'attempt')::int, now(), 'ledger.typed_rejected',
                    jsonb_build_object('table', tbl::text, 'error', SQLERRM, 'row', r));
        END;
    END LOOP;
    RETURN n;
END
$$;
