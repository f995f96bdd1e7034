#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Workers SIGTERMed (drain) at random moments (fixed seed) during a steady load: 3 workers ×
# 8 slots, jobs of 20–400 ms; each drain gets a random deadline of 0 or 1 s, so some running
# jobs finish during the drain and others are handed back to the queue at the deadline
# (attempt not consumed). Every drained worker must exit 0 by itself; a fresh one replaces it.
# Interrupted attempts = "handed_back" events in the ledger. Recovery time: from SIGTERM until
# the last job the worker was running finished (there, or elsewhere after the hand-back).
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

N=${OSP_CHAOS_JOBS:-2000}
RATE=${OSP_CHAOS_RATE:-100}
"$CTL" migrate >/dev/null
declare -a WPID WID
gen=0
spawn() { # spawn INDEX
    gen=$((gen + 1))
    WID[$1]="w$1-g$gen"
    start_worker "${WID[$1]}" OSP_LEASE_MS=2000 OSP_WORKER_SLOTS=8 OSP_WORKER_ID="${WID[$1]}" \
        OSP_DRAIN_TIMEOUT_S=$((RANDOM % 2))
    WPID[$1]=$LAST_PID
}
for i in 0 1 2; do spawn "$i"; done
# Two payloads: short jobs, and longer ones that outlive a 0–1 s drain deadline.
start_load $((N / 2)) $((RATE / 2)) 20
L1=$LOAD_PID
start_load $((N - N / 2)) $((RATE / 2)) 400
wait_ge 60 $((N / 10)) finished || fail "the load never got going: $WAIT_GOT finished"

drains=0
while kill -0 "$LOAD_PID" 2>/dev/null || kill -0 "$L1" 2>/dev/null || [ "$(unfinished)" -gt $((N / 10)) ]; do
    sleep "$(( 15 + RANDOM % 26 ))e-1"
    v=$((RANDOM % 3))
    t=$(now_ms)
    kill -TERM "${WPID[$v]}"
    wait_exit "${WPID[$v]}" 30
    assert_eq 0 "$EXIT_RC" "${WID[$v]} drained and exited 0" >/dev/null
    note_victim "${WID[$v]}" "$t"
    drains=$((drains + 1))
    say "drain $drains: ${WID[$v]} exited after $(( $(now_ms) - t )) ms at $(finished) finished"
    assert_eq 0 "$(rcli EXISTS "$P:processing:${WID[$v]}")" "the drained worker holds nothing" >/dev/null
    spawn "$v"
    [ "$drains" -lt 50 ] || break
done
wait_exit "$L1" 120; [ "$EXIT_RC" = 0 ] || fail "first submitter failed"
wait_load 120
[ "$drains" -ge 2 ] || fail "only $drains drains happened: make the load longer"
ok "$drains workers drained at random during the load, each exited 0 holding nothing"
wait_eq 180 0 unfinished || true
INTERRUPTED=$(q "SELECT count(*) FROM opspool.job_attempts WHERE outcome = 'interrupted' AND error LIKE 'handed back: %'")
recovery=$(victims_recovery_ms)
chaos_check workers_sigterm_drain "$recovery" 20
assert_eq 0 "$(q "SELECT count(*) FROM opspool.job_attempts WHERE outcome NOT IN ('succeeded', 'interrupted') OR attempt <> 1")" "a hand-back consumes no attempt"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.jobs WHERE recoveries <> 0")" "a hand-back is no recovery"
chaos_redis_clean
finish
