#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A worker frozen (SIGSTOP) past its lease while it runs a job: the reaper takes the job back
# and another worker runs it; then the frozen worker resumes (SIGCONT) and finishes its run
# after all. Expected: the ledger shows both runs — the first 'interrupted' ("worker lost")
# and, since it did finish, how it ended; the second with the job's outcome — recoveries 1,
# the job succeeded once in its state, nothing left in Redis, and the resumed worker goes on
# serving.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

"$CTL" migrate >/dev/null
start_sched reaper OSP_LEASE_MS=2000
common=(OSP_LEASE_MS=2000 OSP_WORKER_SLOTS=1 OSP_WORKER_DUTIES=false)
start_worker frozen "${common[@]}" OSP_WORKER_ID=frozen-1
F=$LAST_PID
id=$("$CTL" submit noop --payload '{"sleep_ms": 4000, "result": {"ok": true}}')
wait_eq 30 "running|frozen-1" q "SELECT state || '|' || worker FROM opspool.jobs WHERE id = '$id'" ||
    fail "the job never started on frozen-1: $WAIT_GOT"
kill -STOP "$F"
say "froze frozen-1 while it ran $id"
wait_eq 30 1 q "SELECT recoveries FROM opspool.jobs WHERE id = '$id'" || fail "the reaper never took the job back: $WAIT_GOT"
ok "the reaper took the job back from the frozen worker and the ledger counts the recovery"
start_worker rescuer "${common[@]}" OSP_WORKER_ID=rescuer-1
wait_eq 30 succeeded job_state "$id" || fail "the job never finished on the rescuer: $(job_state "$id")"
ok "another worker ran it to the end"
kill -CONT "$F"
say "thawed frozen-1"
# Its run goes on for the rest of its 4 s and finishes: the ledger says how it ended.
wait_eq 30 "interrupted|true" q "SELECT outcome || '|' || (error LIKE 'worker lost: frozen-1 %; the run went on and ended succeeded') FROM opspool.job_attempts WHERE job_id = '$id' AND run = 0" ||
    fail "the first run's row: $WAIT_GOT"
ok "the frozen worker's run is an interrupted row that says it went on and ended succeeded"
assert_eq "1:1:rescuer-1:succeeded" "$(q "SELECT attempt || ':' || run || ':' || worker || ':' || outcome FROM opspool.job_attempts WHERE job_id = '$id' AND run = 1")" \
    "the rescuer's run is the job's outcome"
assert_eq "succeeded|1|rescuer-1" "$(q "SELECT state || '|' || recoveries || '|' || worker FROM opspool.jobs WHERE id = '$id'")" \
    "the job stays with the run that took over"
# The thawed worker goes on serving.
id2=$("$CTL" submit noop)
id3=$("$CTL" submit noop)
wait_eq 30 succeeded job_state "$id2" || fail "job after the thaw: $(job_state "$id2")"
wait_eq 30 succeeded job_state "$id3" || fail "job after the thaw: $(job_state "$id3")"
kill -0 "$F" || fail "the thawed worker died"
ok "the thawed worker is alive and the pool goes on"
chaos_redis_clean
assert_eq 0 "$(q "SELECT count(*) FROM opspool.jobs WHERE state NOT IN ('succeeded', 'failed', 'dead', 'cancelled')")" "stuck = 0"
printf 'CHAOS fault=stop_past_lease runs=1 jobs=3 lost=0 duplicates=1 interrupted=1 recovery_ms=0 dup_source=ledger\n' |
    tee -a "${OSP_CHAOS_OUT:-/dev/null}"
finish
