#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redis SIGKILLed mid-load and restarted from its append-only file (appendonly yes,
# appendfsync everysec) after 2 s down. A PRIVATE redis-server on a unix socket in the test's
# directory (the suite's shared Redis is never disturbed); the shared PostgreSQL with this
# test's database. A scheduler runs the reconciler (grace 5 s): jobs written to the ledger
# while Redis was down are enqueued by it. everysec may lose the last ~1–2 s of writes: a
# lost fetch or ack means a job can be delivered again, so the interrupted attempts are the
# jobs held at the crash (processing lists) plus the jobs finished in the 2 s before it.
# Recovery time: from the restart until the ledger shows the next finished job.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

N=${OSP_CHAOS_JOBS:-3000}
RATE=${OSP_CHAOS_RATE:-150}
[ -x "$SCHED" ] || { echo "opspool-scheduler not built" >&2; exit 77; }
start_redis redis aof
export OSP_REDIS_URL=unix://$REDIS_SOCK
"$CTL" migrate >/dev/null
for i in 1 2 3; do
    start_worker "w$i" OSP_LEASE_MS=3000 OSP_WORKER_SLOTS=8 OSP_WORKER_ID="w$i"
done
start_sched s1 OSP_RECONCILE_GRACE_S=5 OSP_RECONCILE_PERIOD_S=1
start_load "$N" "$RATE" 20
wait_ge 60 $((N / 3)) finished || fail "the load never got going: $WAIT_GOT finished"

held=0
for k in $(rcli --scan --pattern "$P:processing:*"); do held=$((held + $(rcli LLEN "$k"))); done
t_kill=$(now_ms)
kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
say "redis SIGKILLed at $(finished) finished, $held envelope(s) held by workers"
sleep 2
t_up=$(now_ms)
start_redis redis aof
say "redis restarted from its AOF: $(rcli DBSIZE) keys"
recovery=$(wait_progress "$t_up")
say "first job finished $recovery ms after the restart"
wait_load 180
wait_eq 180 0 unfinished || true
window=$(q "SELECT count(*) FROM opspool.jobs WHERE finished_at BETWEEN to_timestamp(($t_kill - 2000) / 1000.0) AND to_timestamp($t_kill / 1000.0)")
INTERRUPTED=$((held + window))
chaos_check redis_restart_aof "$recovery" 20
chaos_redis_clean
finish
