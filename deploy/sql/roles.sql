-- SPDX-License-Identifier: MIT
-- roles.sql — the PostgreSQL roles of an opspool ledger (docs/security.md "PostgreSQL roles").
-- Run ONCE per cluster/database as a superuser (or a role with CREATEROLE that owns the
-- database), connected to the opspool database:
--     psql -v ON_ERROR_STOP=1 -d opspool -f deploy/sql/roles.sql
-- then, as opspool_migrator, apply the migrations and the table grants:
--     OSP_PG_DSN="... user=opspool_migrator" opspoolctl migrate
--     psql -v ON_ERROR_STOP=1 "... user=opspool_migrator" -f deploy/sql/grants.sql
-- Re-run grants.sql after every upgrade that adds a migration (new tables get no privileges
-- until then: a new table is never readable or writable by accident).
--
-- Roles (all LOGIN, no password here: set one with ALTER ROLE ... PASSWORD, or use
-- certificates / your platform's IAM; none is a superuser, none may create roles or DBs):
--   opspool_migrator   owns schema opspool and every object in it; runs migrations.
--   opspool_scheduler  opspool-scheduler: API, cron, reconciler, retention (grants.sql).
--   opspool_worker     opspool-worker: records attempts, events and typed results.
--   opspool_operator   opspoolctl's write commands (cancel, retry, dead retry/purge,
--                      schedules enable/disable/trigger, submit): the scheduler's grants.
--   opspool_readonly   opspoolctl's read commands (queues, jobs, job, schedules, dead):
--                      SELECT only.
\set ON_ERROR_STOP on

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['opspool_migrator', 'opspool_scheduler', 'opspool_worker',
                             'opspool_operator', 'opspool_readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                           'NOREPLICATION NOBYPASSRLS', r);
        END IF;
    END LOOP;
END
$$;

-- The operator role is the scheduler's privileges plus nothing: membership, not a copy.
GRANT opspool_scheduler TO opspool_operator;

DO $$
BEGIN
    -- Nobody but the listed roles may connect; PUBLIC may not create objects anywhere here.
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO opspool_migrator, '
                   'opspool_scheduler, opspool_worker, opspool_operator, opspool_readonly',
                   current_database());
    -- osp_ledger_migrate runs CREATE SCHEMA IF NOT EXISTS opspool: needs CREATE on the DB.
    EXECUTE format('GRANT CREATE ON DATABASE %I TO opspool_migrator', current_database());
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- The schema exists before the first migration so that its owner is the migrator (the
-- migration's CREATE SCHEMA IF NOT EXISTS then finds it).
CREATE SCHEMA IF NOT EXISTS opspool AUTHORIZATION opspool_migrator;
ALTER SCHEMA opspool OWNER TO opspool_migrator;
