#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Crash recovery: a worker SIGKILLed mid-job loses nothing (another worker's reaper hands
# the job back and completes it); a job whose lease is renewed is never reaped however
# long it runs; --once runs exactly one job.
. "$OSP_SRC_DIR/tests/support/lib.sh"

"$CTL" migrate >/dev/null
long=$("$CTL" submit noop --payload '{"sleep_ms": 4000}')
start_worker a OSP_LEASE_MS=1500 OSP_WORKER_ID=victim
A=$LAST_PID
wait_eq 20 running job_state "$long" || fail "job never started"
ok "job running on worker a"
child=$(pgrep -P "$A" | head -n1)
[ -n "$child" ] || fail "no child process for the running job"
kill -9 "$A"
start_worker b OSP_LEASE_MS=1500 OSP_WORKER_ID=rescuer
wait_eq 40 succeeded job_state "$long" || fail "job not recovered: $(q "SELECT state FROM opspool.jobs WHERE id = '$long'")"
ok "job of the SIGKILLed worker completed by another worker"
assert_eq 1 "$(rcli HGET "$P:job:$long" recoveries)" "the recovery is counted"
assert_eq rescuer "$(q "SELECT worker FROM opspool.job_attempts WHERE job_id = '$long' AND outcome = 'succeeded'")" "the rescuer ran it"
assert_eq 0 "$(rcli EXISTS "$P:worker:victim")" "the dead worker's keys are gone"
# No orphaned child of the killed worker keeps running (PR_SET_PDEATHSIG).
wait_until 5 sh -c "! kill -0 $child" || fail "child $child of the killed worker survived"
ok "children die with their worker"

# Lease renewal: a 3 s job with a 1.5 s lease, reaper running all along: never reaped.
renewed=$("$CTL" submit noop --payload '{"sleep_ms": 3000}')
wait_eq 30 succeeded job_state "$renewed" || fail "long job did not finish"
assert_eq "" "$(rcli HGET "$P:job:$renewed" recoveries)" "a job longer than the lease is not reaped while its worker lives"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.job_attempts WHERE job_id = '$renewed'")" "it ran exactly once"
kill -TERM "$LAST_PID"; wait_exit "$LAST_PID" 20

# --once: two jobs queued, one run, then exit 0.
"$CTL" submit noop --count 2 >/dev/null
before=$(count_state succeeded)
start_worker once -- --once
wait_exit "$LAST_PID" 30; assert_eq 0 "$EXIT_RC" "--once exits 0"
assert_eq $((before + 1)) "$(count_state succeeded)" "--once ran exactly one job"
assert_eq 1 "$(rcli LLEN "$P:queue:noop")" "the other job is still pending"
finish
