#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Workers SIGKILLed at random moments (fixed seed: OSP_CHAOS_SEED, default 42) during a steady
# load of forked noop jobs: 3 workers × 8 slots, every 1.5–4 s one of them, chosen at random,
# is SIGKILLed and replaced by a fresh worker. The envelopes it held (its processing list,
# read right after the kill) are the interrupted attempts; the reapers of the surviving
# workers hand them back. Checker: every submitted job finished exactly as the ledger says,
# duplicates <= interrupted. Recovery time: from a kill until the last job the victim was
# running (per the ledger) finished elsewhere; the worst kill is reported.
# OSP_CHAOS_JOBS (default 3000) and OSP_CHAOS_RATE (jobs/s, default 150) size it.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

N=${OSP_CHAOS_JOBS:-3000}
RATE=${OSP_CHAOS_RATE:-150}
"$CTL" migrate >/dev/null
common=(OSP_LEASE_MS=2000 OSP_WORKER_SLOTS=8)
declare -a WPID WID
gen=0
spawn() { # spawn INDEX
    gen=$((gen + 1))
    WID[$1]="w$1-g$gen"
    start_worker "${WID[$1]}" "${common[@]}" OSP_WORKER_ID="${WID[$1]}"
    WPID[$1]=$LAST_PID
}
for i in 0 1 2; do spawn "$i"; done
start_load "$N" "$RATE" 20
wait_ge 60 $((N / 10)) finished || fail "the load never got going: $WAIT_GOT finished"

kills=0
while kill -0 "$LOAD_PID" 2>/dev/null || [ "$(unfinished)" -gt $((N / 10)) ]; do
    sleep "$(( 15 + RANDOM % 26 ))e-1"
    v=$((RANDOM % 3))
    t=$(now_ms)
    kill -9 "${WPID[$v]}"
    wait "${WPID[$v]}" 2>/dev/null || true
    held=$(rcli LLEN "$P:processing:${WID[$v]}")
    INTERRUPTED=$((INTERRUPTED + held))
    note_victim "${WID[$v]}" "$t"
    kills=$((kills + 1))
    say "kill $kills: SIGKILLed ${WID[$v]} holding $held envelope(s) at $(finished) finished"
    spawn "$v"
    [ "$kills" -lt 50 ] || break
done
wait_load 120
[ "$kills" -ge 2 ] || fail "only $kills kills happened: make the load longer"
ok "$kills workers SIGKILLed at random during the load"
wait_eq 180 0 unfinished || true
recovery=$(victims_recovery_ms)
chaos_check workers_sigkill_random "$recovery" 20
chaos_redis_clean
finish
