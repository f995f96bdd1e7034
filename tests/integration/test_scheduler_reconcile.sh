#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The reconciler: Redis loses every key of the pool (the prefix's keys deleted, as a restart
# without persistence would), and every job the ledger lists as unfinished is enqueued again
# from its ledger row — queued ones on their queue, delayed ones in the delayed set — exactly
# once, with a "reconciled" event. Then the same while a worker runs: Redis is wiped mid-run
# and every job still completes.
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"

wipe_prefix() {
    rcli --scan --pattern "$P:*" | xargs -r -n 100 sh -c 'for k; do printf "%s\n" "$k"; done' _ >"$TMP/keys"
    while read -r k; do rcli DEL "$k" >/dev/null; done <"$TMP/keys"
}

start_scheduler s1 OSP_RECONCILE_GRACE_S=1 OSP_RECONCILE_PERIOD_S=1 OSP_LEDGER_RETENTION_DAYS=7
S1=$LAST_PID
URL=$LAST_URL

# Retention (first round 5 s after start): finished jobs older than 7 days go, with their
# events; recent ones and unfinished ones stay.
q "INSERT INTO opspool.jobs (id, kind, state, finished_at, updated_at) VALUES
   ('01890000-0000-7000-8000-000000000001', 'noop', 'succeeded', now() - interval '8 days', now() - interval '8 days'),
   ('01890000-0000-7000-8000-000000000002', 'noop', 'dead', now() - interval '30 days', now() - interval '30 days'),
   ('01890000-0000-7000-8000-000000000003', 'noop', 'succeeded', now() - interval '6 days', now() - interval '6 days')" >/dev/null
q "INSERT INTO opspool.job_events (job_id, type) VALUES ('01890000-0000-7000-8000-000000000001', 'x')" >/dev/null
q "INSERT INTO opspool.audit (ts, who, via, action, object) VALUES
   (now() - interval '8 days', 'test', 'test', 'old.action', 'x'),
   (now() - interval '1 day', 'test', 'test', 'recent.action', 'x')" >/dev/null
wait_eq 75 1 q "SELECT count(*) FROM opspool.jobs WHERE id::text LIKE '01890000-%'" || fail "retention did not prune: $WAIT_GOT"
assert_eq 000000000003 "$(q "SELECT right(id::text, 12) FROM opspool.jobs WHERE id::text LIKE '01890000-%'")" \
    "retention kept the job younger than OSP_LEDGER_RETENTION_DAYS"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '01890000-0000-7000-8000-000000000001'")" \
    "pruned jobs' events went with them"
wait_eq 30 "recent.action" q "SELECT string_agg(action, ',') FROM opspool.audit WHERE who = 'test'" ||
    fail "retention did not prune the old audit row: $WAIT_GOT"
ok "retention pruned the audit row older than OSP_LEDGER_RETENTION_DAYS and kept the recent one"

for i in $(seq 1 12); do
    assert_eq 202 "$(post_json /v1/jobs "{\"kind\": \"noop\", \"payload\": {\"result\": {\"i\": $i}}}")" "submit queued job $i" >/dev/null
done
for i in 1 2 3; do
    assert_eq 202 "$(post_json /v1/jobs '{"kind": "noop", "run_at": "2099-01-01T00:00:00Z"}')" "submit delayed job $i" >/dev/null
done
assert_eq 202 "$(post_json /v1/jobs '{"kind": "noop"}')" "submit a job to cancel" >/dev/null
cid=$(jbody .id)
assert_eq 200 "$(api POST "/v1/jobs/$cid/cancel")" "cancel it (finished jobs are not reconciled)" >/dev/null
assert_eq 12 "$(rcli LLEN "$P:queue:noop")" "12 queued envelopes"
assert_eq 3 "$(rcli ZCARD "$P:delayed")" "3 delayed envelopes"

wipe_prefix
assert_eq 0 "$(rcli --scan --pattern "$P:*" | wc -l | tr -d ' ')" "Redis lost every key of the pool"
wait_eq 30 12 rcli LLEN "$P:queue:noop" || fail "queued jobs not re-enqueued: $WAIT_GOT"
ok "12 queued jobs back on their queue"
wait_eq 10 3 rcli ZCARD "$P:delayed" || fail "delayed jobs not back: $WAIT_GOT"
ok "3 delayed jobs back in the delayed set"
assert_eq 15 "$(q "SELECT count(*) FROM opspool.job_events WHERE type = 'reconciled'")" "one reconciled event per job"
sleep 3 # several more reconciler rounds
assert_eq 12 "$(rcli LLEN "$P:queue:noop")" "later rounds enqueue nothing twice"
assert_eq 15 "$(q "SELECT count(*) FROM opspool.job_events WHERE type = 'reconciled'")" "no further reconciled events"
assert_eq 0 "$(rcli EXISTS "$P:job:$cid")" "the cancelled job stays gone"
id=$(q "SELECT id FROM opspool.jobs WHERE state = 'queued' ORDER BY id LIMIT 1")
assert_eq queued "$(rcli HGET "$P:job:$id" state)" "live job hash rebuilt"
curl -s "$URL/metrics" >"$TMP/metrics"
grep -Eq '^opspool_reconciled_total 15$' "$TMP/metrics" || fail "reconciled counter is not 15: $(grep reconciled "$TMP/metrics")"
ok "reconciled counter exported"

# ---- the other way: Redis final, the ledger not (the ledger lost an outcome after the ack) ----
lost_ok=$(q "INSERT INTO opspool.jobs (id, kind, state, attempt, worker, started_at, updated_at) VALUES
   ('01890000-0000-7000-8000-0000000000a1', 'noop', 'running', 1, 'w-gone', now() - interval '1 hour', now() - interval '1 hour')
   RETURNING id")
lost_dead=$(q "INSERT INTO opspool.jobs (id, kind, state, attempt, updated_at) VALUES
   ('01890000-0000-7000-8000-0000000000a2', 'noop', 'queued', 0, now() - interval '1 hour')
   RETURNING id")
rcli HSET "$P:job:$lost_ok" state succeeded kind noop >/dev/null
rcli HSET "$P:job:$lost_dead" state dead kind noop >/dev/null
wait_eq 20 succeeded job_state "$lost_ok" || fail "Redis's final state not taken: $(job_state "$lost_ok")"
wait_eq 20 dead job_state "$lost_dead" || fail "Redis's dead not taken: $(job_state "$lost_dead")"
assert_eq "the ledger lost this job's outcome; redis recorded it as succeeded|1" \
    "$(q "SELECT error || '|' || (SELECT count(*) FROM opspool.job_events e WHERE e.job_id = j.id AND e.type = 'reconciled' AND e.data->>'redis_state' = 'succeeded') FROM opspool.jobs j WHERE id = '$lost_ok'")" \
    "the repair says what happened, with a reconciled event"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id IN ('$lost_ok', '$lost_dead') AND data->>'reason' = 'missing in redis'")" \
    "nothing was enqueued for them"

# ---- with a worker: Redis wiped mid-run, every job still completes ----
if [ ! -x "$WORKER" ]; then
    say "opspool-worker not built: skipping the end-to-end half"
    finish
    exit 0
fi
base=$(count_state succeeded) # the job kept by retention above
for i in $(seq 1 20); do
    post_json /v1/jobs '{"kind": "noop", "payload": {"sleep_ms": 300}}' >/dev/null
done
# The delayed ones would wait until 2099: run them now.
q "UPDATE opspool.jobs SET state = 'cancelled', finished_at = now() WHERE state = 'delayed'" >/dev/null
rcli DEL "$P:delayed" >/dev/null
start_worker w1 OSP_WORKER_SLOTS=4 OSP_LEASE_MS=3000 OSP_WORKER_DUTIES=false
W=$LAST_PID
wait_ge 60 $((base + 12)) count_state succeeded || fail "worker did not start: $WAIT_GOT"
say "wiping Redis with $(( $(count_state succeeded) - base )) of 32 done"
wipe_prefix
wait_eq 180 $((base + 32)) count_state succeeded || fail "not every job completed after the wipe: $(q "SELECT state, count(*) FROM opspool.jobs GROUP BY 1"); redis: $(prefix_keys | tr '\n' ' '); queue: $(rcli LLEN "$P:queue:noop")"
ok "all 32 jobs completed despite Redis losing its state mid-run"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.jobs WHERE state IN ('queued', 'running', 'retrying')")" "nothing left unfinished"
kill -TERM "$W" "$S1"
wait_until 30 sh -c "! kill -0 $W 2>/dev/null && ! kill -0 $S1 2>/dev/null" || fail "processes did not stop"
finish
