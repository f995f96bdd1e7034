#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Schedulers SIGKILLed and restarted while cron ticks are due. Two replicas share a fast test
# clock (OSP_TEST_CLOCK_RATE=10 from a common anchor: a minute tick every 6 s) and an
# every-minute schedule (catchup_s 600) whose jobs are forked noop jobs run by one worker.
# For ~60 s (about 10 fake minutes), every 1–4 s (fixed seed) one replica, or now and then
# both, is SIGKILLed and restarted 0.3–1.5 s later (both: 0.3–0.8 s), so some replica is
# back well before the next tick is due (a restart under ASan on a loaded 2-core machine takes
# up to ~2 s; the tick period leaves room for that): no tick may be skipped. (When every
# replica is down across two ticks, only the latest is caught up, by design: see docs/api.md.)
# The schedulers run with OSP_LEASE_MS=3600000: their reaper reads the fast test clock, and
# with a real-time lease it would take every live worker for dead (see docs/reliability.md). Exactly-once firing: one firing row, one job and one idempotency key per tick,
# ticks consecutive (no gap = no lost tick), each job executed once. Interrupted = scheduler
# kills. Recovery time: the worst lateness (real ms) of a tick's job after its due time.
# Skips (77) only when opspool-scheduler is not built.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

[ -x "$SCHED" ] || { echo "opspool-scheduler not built" >&2; exit 77; }
DURATION_S=${OSP_CHAOS_CRON_S:-60}
RATE=10
cat >"$TMP/schedules.json" <<JSON
{"schedules": [
  {"name": "chaos-minute", "cron": "* * * * *", "timezone": "UTC", "kind": "noop",
   "payload": $(chaos_payload 50), "concurrency": "allow", "catchup_s": 600, "enabled": true}
]}
JSON
anchor=$(now_ms)
common=(OSP_SCHEDULES_FILE="$TMP/schedules.json" OSP_TEST_CLOCK_RATE=$RATE OSP_TEST_CLOCK_ANCHOR_MS="$anchor"
        OSP_RECONCILE_GRACE_S=3600 OSP_LEASE_MS=3600000)
declare -a SPID
spawn() { start_sched "s$1-$RANDOM" "${common[@]}"; SPID[$1]=$LAST_PID; }
spawn 0
spawn 1
start_worker w1 OSP_LEASE_MS=2000 OSP_WORKER_SLOTS=4 OSP_WORKER_ID=w1
wait_ge 30 1 q "SELECT count(*) FROM opspool.schedule_firings" || fail "no tick fired"

kills=0
end=$(( $(date +%s) + DURATION_S ))
while [ "$(date +%s)" -lt "$end" ]; do
    sleep "$(( 10 + RANDOM % 31 ))e-1"
    if [ $((RANDOM % 4)) = 0 ]; then victims=(0 1); else victims=($((RANDOM % 2))); fi
    for v in "${victims[@]}"; do
        kill -9 "${SPID[$v]}"; wait "${SPID[$v]}" 2>/dev/null || true
        kills=$((kills + 1))
    done
    say "SIGKILLed scheduler(s) ${victims[*]} at $(q "SELECT count(*) FROM opspool.schedule_firings") firings"
    if [ ${#victims[@]} = 2 ]; then sleep "$(( 3 + RANDOM % 6 ))e-1"; else sleep "$(( 3 + RANDOM % 13 ))e-1"; fi
    for v in "${victims[@]}"; do spawn "$v"; done
done
# Let the last due tick fire, then stop both replicas cleanly.
sleep 3
kill -TERM "${SPID[0]}" "${SPID[1]}"
wait_exit "${SPID[0]}" 20; wait_exit "${SPID[1]}" 20
ok "$kills scheduler kills during ~$((DURATION_S * RATE / 60)) fake minutes"

S=chaos-minute
ticks=$(q "SELECT count(*) FROM opspool.schedule_firings WHERE schedule = '$S'")
span=$(q "SELECT (extract(epoch FROM max(fire_at) - min(fire_at)) / 60)::int + 1 FROM opspool.schedule_firings WHERE schedule = '$S'")
jobs=$(q "SELECT count(*) FROM opspool.jobs WHERE schedule = '$S'")
keys=$(q "SELECT count(DISTINCT idempotency_key) FROM opspool.jobs WHERE schedule = '$S'")
notfired=$(q "SELECT count(*) FROM opspool.schedule_firings WHERE schedule = '$S' AND (status <> 'fired' OR job_id IS NULL)")
say "ticks $ticks over a span of $span minutes, $jobs jobs, $keys idempotency keys, $notfired firing rows not fired"
q "SELECT id FROM opspool.jobs WHERE schedule = '$S'" >"$TMP/ids"
CHECK_EXTRA_LOST=$(( (span - ticks) + notfired ))
CHECK_EXTRA_WHAT="cron ticks without a job"
CHECK_EXTRA_DUPS=$(( jobs - keys + keys - ticks > 0 ? jobs - ticks : 0 ))
INTERRUPTED=$kills
recovery=$(q "SELECT coalesce(max(floor(extract(epoch FROM f.claimed_at) * 1000)::bigint
                 - ($anchor + (floor(extract(epoch FROM f.fire_at) * 1000)::bigint - $anchor) / $RATE)), 0)
              FROM opspool.schedule_firings f WHERE f.schedule = '$S'")
chaos_check scheduler_kill_cron "$recovery" 60
assert_eq "$ticks" "$jobs" "exactly one job per tick"
assert_eq "$jobs" "$keys" "one idempotency key per job"
assert_eq "$span" "$ticks" "ticks consecutive: none lost"
finish
