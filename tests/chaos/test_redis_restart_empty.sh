#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redis SIGKILLed mid-load and restarted EMPTY (no persistence) after 2 s down: every queue,
# processing list, lease and job hash is gone. PostgreSQL (the shared server, this test's
# database) is intact, so the scheduler's reconciler (OSP_RECONCILE_GRACE_S=2,
# OSP_RECONCILE_PERIOD_S=1) enqueues again every job the ledger lists as unfinished whose
# Redis hash is missing. A PRIVATE redis-server is used, never the suite's shared one.
# Jobs still running on a worker at the wipe may be re-enqueued too: each "reconciled" event
# is one extra delivery, so interrupted attempts = reconciled events.
# Recovery time: from the restart until the last job that was unfinished at the wipe finished.
# Skips (77) only when opspool-scheduler is not built.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

N=${OSP_CHAOS_JOBS:-3000}
RATE=${OSP_CHAOS_RATE:-150}
[ -x "$SCHED" ] || { echo "opspool-scheduler not built: the reconciler is needed" >&2; exit 77; }
start_redis redis none
export OSP_REDIS_URL=unix://$REDIS_SOCK
"$CTL" migrate >/dev/null
for i in 1 2 3; do
    start_worker "w$i" OSP_LEASE_MS=3000 OSP_WORKER_SLOTS=8 OSP_WORKER_ID="w$i"
done
start_sched s1 OSP_RECONCILE_GRACE_S=2 OSP_RECONCILE_PERIOD_S=1
start_load "$N" "$RATE" 20
wait_ge 60 $((N / 3)) finished || fail "the load never got going: $WAIT_GOT finished"

kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
q "CREATE TABLE public.chaos_unfinished AS SELECT id FROM opspool.jobs WHERE state NOT IN ('succeeded', 'failed', 'dead', 'cancelled')" >/dev/null
say "redis SIGKILLed at $(finished) finished, $(q "SELECT count(*) FROM public.chaos_unfinished") unfinished in the ledger"
sleep 2
t_up=$(now_ms)
start_redis redis none # no AOF, no RDB: it comes back empty (workers re-register at once)
wait_load 180
wait_eq 180 0 unfinished || true
recovery=$(q "SELECT coalesce(max(floor(extract(epoch FROM j.finished_at) * 1000)::bigint) - $t_up, 0)
              FROM public.chaos_unfinished u JOIN opspool.jobs j USING (id)")
INTERRUPTED=$(q "SELECT count(*) FROM opspool.job_events WHERE type = 'reconciled'")
say "reconciler re-enqueued $INTERRUPTED job(s)"
[ "$INTERRUPTED" -gt 0 ] || fail "nothing was reconciled: the wipe did not hit queued jobs"
chaos_check redis_restart_empty "$recovery" 20
chaos_redis_clean
finish
