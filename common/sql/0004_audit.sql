-- SPDX-License-Identifier: MIT
-- 0004_audit.sql — an audit trail for operations that are not about one job: pause and
-- resume, bulk cancels and purges, dead-letter purges, schedule changes. Job-scoped actions
-- keep their 'audit' event in job_events, written in the same statement as the change; a bulk
-- operation writes one row here (with its counts and filter) and each job's 'cancelled' event
-- names the operation by this row's id. Applied under the migration advisory lock, in one
-- transaction. Written by common/ledger_ops.c only.
CREATE TABLE IF NOT EXISTS opspool.audit (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts      timestamptz NOT NULL DEFAULT now(),
    who     text NOT NULL,
    via     text NOT NULL,
    action  text NOT NULL,
    object  text,
    data    jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_ts_idx ON opspool.audit (ts);
