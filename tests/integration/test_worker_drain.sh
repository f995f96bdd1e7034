#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SIGTERM drain: running jobs finish within the deadline; past it they are stopped and handed
# back to the queue without consuming an attempt, and run again elsewhere.
. "$OSP_SRC_DIR/tests/support/lib.sh"

"$CTL" migrate >/dev/null
short=$("$CTL" submit noop --payload '{"sleep_ms": 1500}')
start_worker a OSP_DRAIN_TIMEOUT_S=20
A=$LAST_PID
wait_eq 20 running job_state "$short" || fail "job never started"
kill -TERM "$A"
wait_exit "$A" 30; assert_eq 0 "$EXIT_RC" "worker exits 0 after draining"
assert_eq succeeded "$(q "SELECT state FROM opspool.jobs WHERE id = '$short'")" "the running job finished during the drain"

long=$("$CTL" submit noop --payload '{"sleep_ms": 60000}' --max-attempts 1)
start_worker b OSP_DRAIN_TIMEOUT_S=1
B=$LAST_PID
wait_eq 20 running job_state "$long" || fail "long job never started"
t0=$(date +%s)
kill -TERM "$B"
wait_exit "$B" 30; assert_eq 0 "$EXIT_RC" "worker exits 0 after handing back"
[ $(( $(date +%s) - t0 )) -lt 15 ] || fail "drain took too long"
ok "drain deadline respected"
assert_eq 1 "$(rcli LLEN "$P:queue:noop")" "the unfinished job is back on the queue"
assert_eq "1|0|interrupted|true" \
    "$(q "SELECT attempt || '|' || run || '|' || outcome || '|' || (error LIKE 'handed back: worker % was draining') FROM opspool.job_attempts WHERE job_id = '$long'")" \
    "the handed-back run is an attempt row: interrupted, and why"
assert_eq "queued|0" "$(q "SELECT state || '|' || recoveries FROM opspool.jobs WHERE id = '$long'")" \
    "the job is queued again; a hand-back is no recovery"
# Another worker picks it up (with max_attempts 1 it can still run: no attempt was used).
start_worker c OSP_DRAIN_TIMEOUT_S=1
wait_eq 20 running job_state "$long" || fail "handed-back job not picked up again"
ok "handed-back job runs again on another worker"
assert_eq 1 "$(q "SELECT attempt FROM opspool.jobs WHERE id = '$long'")" "still attempt 1 of 1: the hand-back consumed no attempt"
finish
