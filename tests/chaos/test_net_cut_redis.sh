#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The network to Redis cut mid-load, then restored: every process of the pool (3 workers, the
# scheduler, the submitter) reaches a PRIVATE redis-server only through chaosproxy.py. First
# a 5 s blackhole (connections accepted but nothing forwarded, longer than the 2 s lease),
# then "pass"; later a reset (every connection closed at once). The test's own checks go to
# the Redis socket directly. A worker cut off longer than its lease may be reaped once the
# network returns (its heartbeat is stale): those re-deliveries are the interrupted attempts
# (the reapers' log lines), plus the jobs in flight at the reset (a reply lost with a closed
# connection), plus the jobs the reconciler re-enqueued: a submit whose push went unanswered
# (cut or reset mid-batch) is left to the reconciler, and when the push did reach Redis after
# all, that job is delivered twice ("reconciled" events, as in test_redis_restart_empty.sh).
# Recovery time: from the end of the blackhole until the next finished job.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

N=${OSP_CHAOS_JOBS:-3000}
RATE=${OSP_CHAOS_RATE:-150}
[ -x "$SCHED" ] || { echo "opspool-scheduler not built" >&2; exit 77; }
start_redis redis none
export OSP_REDIS_URL=unix://$REDIS_SOCK
start_proxy rproxy "unix:$REDIS_SOCK"
VIA=redis://127.0.0.1:$PROXY_PORT
"$CTL" migrate >/dev/null
for i in 1 2 3; do
    start_worker "w$i" OSP_REDIS_URL="$VIA" OSP_LEASE_MS=2000 OSP_WORKER_SLOTS=8 OSP_WORKER_ID="w$i"
done
start_sched s1 OSP_REDIS_URL="$VIA" OSP_RECONCILE_GRACE_S=5 OSP_RECONCILE_PERIOD_S=1
LOAD_ENV=(OSP_REDIS_URL="$VIA")
start_load "$N" "$RATE" 20
wait_ge 60 $((N / 4)) finished || fail "the load never got going: $WAIT_GOT finished"

proxy "$PROXY_CTL" blackhole >/dev/null
say "redis blackholed at $(finished) finished"
sleep 5
t_up=$(now_ms)
proxy "$PROXY_CTL" pass >/dev/null
recovery=$(wait_progress "$t_up")
say "network to redis restored; first job finished $recovery ms later"
wait_ge 60 $(( N * 2 / 3 )) finished || fail "no progress after the blackhole: $WAIT_GOT finished"
inflight=$(rcli ZCARD "$P:inflight:noop")
say "resetting every redis connection at $(finished) finished, $inflight in flight: $(proxy "$PROXY_CTL" reset)"
wait_load 180
wait_eq 180 0 unfinished || true
reconciled=$(q "SELECT count(*) FROM opspool.job_events WHERE type = 'reconciled'")
say "reaped $(reaped_count), in flight at the reset $inflight, re-enqueued by the reconciler $reconciled"
INTERRUPTED=$(( $(reaped_count) + inflight + reconciled ))
chaos_check net_cut_redis "$recovery" 20
chaos_redis_clean
finish
