-- 0006_campaigns.sql — campaigns: a plan of steps (any kind) with dependencies, run as one
-- unit (docs/campaigns.md). The campaign and its steps live here; each step that runs is an
-- ordinary job (opspool.jobs, idempotency key campaign:<id>:<step>), so it is queued, leased,
-- retried, recovered and reconciled like any other. Written by common/ledger_campaign.c only.
CREATE TABLE IF NOT EXISTS opspool.campaigns (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    state           text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    fail_fast       boolean NOT NULL DEFAULT true,
    plan            jsonb NOT NULL,              -- the plan as accepted
    idempotency_key text UNIQUE,
    submitted_by    text,
    schedule        text,                        -- the schedule that fired it
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz                  -- set once every step is final
);
CREATE INDEX IF NOT EXISTS campaigns_active_idx ON opspool.campaigns (id) WHERE finished_at IS NULL;
CREATE INDEX IF NOT EXISTS campaigns_created_idx ON opspool.campaigns (created_at);

-- One row per step. state: pending (not submitted yet), submitted (its job exists: job_id),
-- then the job's final state, or skipped (never submitted: a step it runs after failed, the
-- campaign failed fast, or was cancelled; reason says which).
CREATE TABLE IF NOT EXISTS opspool.campaign_steps (
    campaign_id uuid NOT NULL REFERENCES opspool.campaigns (id) ON DELETE CASCADE,
    step        text NOT NULL,
    ord         int NOT NULL,
    kind        text NOT NULL,
    after       text[] NOT NULL DEFAULT '{}',
    always      boolean NOT NULL DEFAULT false,
    job_id      uuid,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'submitted', 'succeeded', 'failed', 'dead',
                                 'cancelled', 'skipped')),
    reason      text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, step)
);

-- The campaign's timeline: submitted, step.submitted, step.finished, step.skipped, cancel
-- requested, finished.
CREATE TABLE IF NOT EXISTS opspool.campaign_events (
    campaign_id uuid NOT NULL REFERENCES opspool.campaigns (id) ON DELETE CASCADE,
    ts          timestamptz NOT NULL DEFAULT clock_timestamp(),
    type        text NOT NULL,
    data        jsonb
);
CREATE INDEX IF NOT EXISTS campaign_events_idx ON opspool.campaign_events (campaign_id, ts);
