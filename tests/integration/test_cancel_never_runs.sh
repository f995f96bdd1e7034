#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A cancelled job never runs, wherever its message sits (docs/decisions/0005, 0007). With
# signed envelopes (the signature changes the bytes before the job id that fetch.lua reads),
# 2,500 jobs are queued with no worker running; one deep in the middle (out of reach of the
# single cancel's 1,000-message look at each end) and one near the newest end are cancelled,
# and a delayed one. Then a worker drains the queue: the two cancelled messages are dropped
# inside Redis (no attempt row, no 'started' event, no execution mark), everything else runs
# once, and the queue, the processing list and the delayed set end empty. Also: a bulk cancel
# sweeps a list at once (LLEN right after it), and a job retried after its cancel runs once.
. "$OSP_SRC_DIR/tests/support/lib.sh"

export OSP_SIGNING_KEY=key-$RANDOM-$RANDOM
export OSP_TEST_MARK_DIR=$TMP/marks
mkdir -p "$OSP_TEST_MARK_DIR"
N=2500
"$CTL" migrate >/dev/null
payload="{\"mark_dir\": \"$OSP_TEST_MARK_DIR\"}"
"$CTL" submit noop --count $((N / 2)) --payload "$payload" >/dev/null
mid=$("$CTL" submit noop --payload "$payload")
"$CTL" submit noop --count $((N / 2 - 2)) --payload "$payload" >/dev/null
new=$("$CTL" submit noop --payload "$payload")
later=$("$CTL" submit noop --payload "$payload" --delay-ms 2000)
assert_eq "$N" "$(rcli LLEN "$P:queue:noop")" "$N messages queued"
assert_eq 0 "$(rc=0; "$CTL" cancel "$mid" >/dev/null || rc=$?; echo $rc)" "cancel the job in the middle"
assert_eq "$N" "$(rcli LLEN "$P:queue:noop")" "its message is out of the single cancel's reach: still counted"
"$CTL" cancel "$new" >/dev/null
assert_eq $((N - 1)) "$(rcli LLEN "$P:queue:noop")" "the newest one's message is removed at once"
"$CTL" cancel "$later" >/dev/null
assert_eq 0 "$(rcli ZCARD "$P:delayed")" "the delayed one's message is removed at once"
assert_eq "cancelled|1" "$(rcli HGET "$P:job:$mid" state)|$(rcli HGET "$P:job:$mid" cancel)" "the hash says cancelled, flagged"
assert_eq -1 "$(rcli TTL "$P:job:$mid")" "no TTL while its message may still be queued"

start_worker w1 OSP_WORKER_SLOTS=8 OSP_WORKER_ID=w1
wait_eq 120 $((N - 2)) count_state succeeded || fail "the queue did not drain: $WAIT_GOT succeeded"
wait_eq 30 0 rcli LLEN "$P:queue:noop" || fail "messages left on the queue: $WAIT_GOT"
assert_eq 0 "$(rcli LLEN "$P:processing:w1")" "nothing held by the worker"
for id in "$mid" "$new" "$later"; do
    assert_eq "cancelled|0|0" "$(job_state "$id")|$(q "SELECT count(*) FROM opspool.job_attempts WHERE job_id = '$id'")|$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$id' AND type = 'started'")" \
        "job ${id:0:8}: cancelled, no attempt, never started"
    grep -q "^$id " "$OSP_TEST_MARK_DIR/executions.log" && fail "cancelled job $id ran"
done
ok "no cancelled job ran"
ttl=$(rcli TTL "$P:job:$mid")
[ "$ttl" -gt 0 ] || fail "the dropped job's hash got no TTL: $ttl"
ok "the dropped message's hash got its TTL ($ttl s)"
assert_eq $((N - 2)) "$(sort -u "$OSP_TEST_MARK_DIR/executions.log" | wc -l | tr -d ' ')" "every other job ran"
assert_eq $((N - 2)) "$(wc -l <"$OSP_TEST_MARK_DIR/executions.log" | tr -d ' ')" "each once"

# Retried after its cancel: it runs, once.
"$CTL" retry "$mid" >/dev/null
wait_eq 30 succeeded job_state "$mid" || fail "the retried job did not run"
assert_eq 1 "$(grep -c "^$mid " "$OSP_TEST_MARK_DIR/executions.log")" "the retried job ran once"

# Bulk cancel sweeps the list at once.
kill -TERM "$LAST_PID"
wait_exit "$LAST_PID" 60
"$CTL" submit noop --count 3000 --payload "$payload" >/dev/null
assert_eq 3000 "$(rcli LLEN "$P:queue:noop")" "3000 queued, no worker"
out=$("$CTL" --json cancel --kind noop --yes)
assert_eq "3000 3000" "$(printf '%s' "$out" | jq -r '"\(.cancelled) \(.envelopes_dropped)"')" "bulk cancel: 3000 cancelled, 3000 messages dropped"
assert_eq 0 "$(rcli LLEN "$P:queue:noop")" "the queue is empty right after it"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.audit WHERE action = 'queue.cancel' AND data->>'status' = 'done' AND (data->>'cancelled')::int = 3000")" "one audit row with the counts"
assert_eq 3000 "$(q "SELECT count(*) FROM opspool.job_events e JOIN opspool.audit a ON a.id = (e.data->>'audit_id')::bigint WHERE e.type = 'cancelled'")" "each job's cancelled event names the audit row"
finish
