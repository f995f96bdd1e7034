-- SPDX-License-Identifier: MIT
-- 0009_notifications.sql — a regressed benchmark is a failed job, and the events people are
-- told about (docs/notifications.md, docs/decisions/0012-notifications-outbox.md).
--
-- 1. A benchmark result judged 'regressed' (0008) makes its job 'failed' at commit: a verdict
--    is a result, final and never retried. A constraint trigger deferred to the end of the
--    transaction, because the worker writes the finish and the typed rows in one statement:
--    the job row is 'succeeded' only once that statement is done.
-- 2. The outbox. Each event worth a notification is written by a trigger in the transaction
--    that made it happen (ledger first: nothing to lose between the fact and the outbox), to
--    opspool.notify_events. The scheduler fans each event out to the endpoints configured
--    for its type (one opspool.notify_deliveries row each: its id is the idempotency key the
--    receiver sees) and delivers them; every attempt that started is a row in
--    opspool.notify_attempts (the delivery log). Written by common/ledger_notify.c only.

-- ---- 1. regressed benchmark -> failed job ----
CREATE FUNCTION opspool.bench_fail_regressed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, opspool
    AS $$
DECLARE
    msg text;
BEGIN
    SELECT 'benchmark regressed: ' || string_agg(coalesce(r.lane, 'lane') || ' ' || f.k || ' '
               || round((f.v->>'value')::numeric, 3) || ' against baseline '
               || round((f.v->>'baseline')::numeric, 3), '; ' ORDER BY r.lane, f.k)
      INTO msg
      FROM opspool.benchmark_results r, jsonb_each(r.judge->'figures') AS f(k, v)
     WHERE r.job_id = NEW.job_id AND r.attempt = NEW.attempt AND f.v->>'verdict' = 'regressed';
    msg := coalesce(msg, 'benchmark regressed');
    UPDATE opspool.job_attempts SET outcome = 'failed', error = msg
     WHERE job_id = NEW.job_id AND attempt = NEW.attempt AND outcome = 'succeeded';
    UPDATE opspool.jobs SET state = 'failed', error = msg, updated_at = now()
     WHERE id = NEW.job_id AND attempt = NEW.attempt AND state = 'succeeded';
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER benchmark_results_fail_regressed AFTER INSERT ON opspool.benchmark_results
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.judge->>'verdict' = 'regressed') EXECUTE FUNCTION opspool.bench_fail_regressed();

-- ---- 2. the outbox ----
CREATE TABLE opspool.notify_events (
    id            bigserial PRIMARY KEY,
    type          text NOT NULL CHECK (type IN ('job.dead', 'drill.failed', 'benchmark.regressed',
                                                'backup.failed', 'backup.missed', 'schedule.missed',
                                                'campaign.finished')),
    subject       text NOT NULL,          -- a job or campaign id, a schedule name
    data          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz             -- fanned out to the endpoints configured then
);
CREATE INDEX notify_events_new_idx ON opspool.notify_events (id) WHERE dispatched_at IS NULL;
CREATE INDEX notify_events_created_idx ON opspool.notify_events (created_at);

-- state: pending (due at next_at; leased while an attempt runs), delivered (a 2xx answer),
-- failed (attempts or age exhausted; `opspoolctl notifications retry` makes it pending again).
CREATE TABLE opspool.notify_deliveries (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id     bigint NOT NULL REFERENCES opspool.notify_events (id) ON DELETE CASCADE,
    endpoint     text NOT NULL,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts     int NOT NULL DEFAULT 0,   -- attempts started
    budget_from  int NOT NULL DEFAULT 0,   -- attempts before the last manual retry
    budget_since timestamptz,              -- the last manual retry (max_age counts from it)
    next_at      timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz,              -- an attempt is running until then
    last_status  int,                      -- HTTP status of the last answered attempt
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    UNIQUE (event_id, endpoint)
);
CREATE INDEX notify_deliveries_due_idx ON opspool.notify_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX notify_deliveries_state_idx ON opspool.notify_deliveries (state, created_at);

CREATE TABLE opspool.notify_attempts (
    delivery_id  uuid NOT NULL REFERENCES opspool.notify_deliveries (id) ON DELETE CASCADE,
    attempt      int NOT NULL,
    replica      text,                     -- the scheduler replica that made it
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,              -- NULL: running, or its replica stopped mid-way
    http_status  int,
    error        text,
    duration_ms  int,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE FUNCTION opspool.notify_emit(etype text, subject text, data jsonb) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, opspool
    AS $$ INSERT INTO opspool.notify_events (type, subject, data) VALUES (etype, subject, data) $$;

-- Jobs: dead (any kind), a drill's failed verdict, a backup that failed or died.
CREATE FUNCTION opspool.notify_job_state() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, opspool
    AS $$
DECLARE
    d jsonb := jsonb_build_object('job_id', NEW.id, 'kind', NEW.kind, 'state', NEW.state,
                                  'attempt', NEW.attempt, 'max_attempts', NEW.max_attempts,
                                  'error', NEW.error, 'target', NEW.payload->>'target',
                                  'schedule', NEW.schedule,
                                  'finished_at', opspool.ts_iso(coalesce(NEW.finished_at, now())));
BEGIN
    IF NEW.state = 'dead' THEN
        PERFORM opspool.notify_emit('job.dead', NEW.id::text, d);
    END IF;
    IF NEW.kind = 'drill' AND NEW.state = 'failed' THEN
        PERFORM opspool.notify_emit('drill.failed', NEW.id::text, d);
    END IF;
    IF NEW.kind = 'backup' THEN
        PERFORM opspool.notify_emit('backup.failed', NEW.id::text, d);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_notify AFTER UPDATE OF state ON opspool.jobs FOR EACH ROW
    WHEN (NEW.state IN ('dead', 'failed') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION opspool.notify_job_state();

CREATE FUNCTION opspool.notify_job_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, opspool
    AS $$
BEGIN
    PERFORM opspool.notify_emit('benchmark.regressed', NEW.job_id::text,
        jsonb_build_object('job_id', NEW.job_id, 'attempt', NEW.attempt) || coalesce(NEW.data, '{}'));
    RETURN NULL;
END
$$;
CREATE TRIGGER job_events_notify AFTER INSERT ON opspool.job_events FOR EACH ROW
    WHEN (NEW.type = 'benchmark.regressed') EXECUTE FUNCTION opspool.notify_job_event();

-- Schedules: a missed tick (any schedule); a backup schedule's tick missed or skipped (the
-- nightly backup did not run).
CREATE FUNCTION opspool.notify_firing() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, opspool
    AS $$
DECLARE
    k text;
    d jsonb;
BEGIN
    SELECT s.kind INTO k FROM opspool.schedules s WHERE s.name = NEW.schedule;
    d := jsonb_build_object('schedule', NEW.schedule, 'kind', k, 'status', NEW.status,
                            'fire_at', opspool.ts_iso(NEW.fire_at), 'reason', NEW.reason);
    IF NEW.status = 'missed' THEN
        PERFORM opspool.notify_emit('schedule.missed', NEW.schedule, d);
    END IF;
    IF k = 'backup' THEN
        PERFORM opspool.notify_emit('backup.missed', NEW.schedule, d);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER schedule_firings_notify AFTER INSERT OR UPDATE OF status ON opspool.schedule_firings
    FOR EACH ROW WHEN (NEW.status IN ('missed', 'skipped'))
    EXECUTE FUNCTION opspool.notify_firing();

CREATE FUNCTION opspool.notify_campaign() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, opspool
    AS $$
BEGIN
    PERFORM opspool.notify_emit('campaign.finished', NEW.id::text,
        jsonb_build_object('campaign_id', NEW.id, 'name', NEW.name, 'state', NEW.state,
                           'schedule', NEW.schedule,
                           'steps', (SELECT jsonb_object_agg(st.step, st.state)
                                     FROM opspool.campaign_steps st WHERE st.campaign_id = NEW.id),
                           'finished_at', opspool.ts_iso(NEW.finished_at)));
    RETURN NULL;
END
$$;
CREATE TRIGGER campaigns_notify AFTER UPDATE OF finished_at ON opspool.campaigns FOR EACH ROW
    WHEN (OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL)
    EXECUTE FUNCTION opspool.notify_campaign();
