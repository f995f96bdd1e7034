#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# PostgreSQL crashed mid-load (pg_ctl stop -m immediate: no shutdown checkpoint, crash
# recovery at start) and restarted 3 s later. A PRIVATE PostgreSQL 15 initdb'd for this test
# (the suite's shared one is never restarted), synchronous_commit on; the shared Redis with
# this test's prefix. While it is down, workers keep their finished outcomes in their slots
# and retry the commit, their heartbeats keep the leases alive, and nothing is acked in Redis
# before its commit; the submitter retries. Expected: no loss and no duplicate (no attempt is
# ever re-delivered); the bound reported is the jobs in flight at the crash.
# Recovery time: from the restart until the ledger shows the next finished job.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

N=${OSP_CHAOS_JOBS:-3000}
RATE=${OSP_CHAOS_RATE:-150}
start_pg
export OSP_PG_DSN; OSP_PG_DSN=$(pg_dsn_unix)
"$CTL" migrate >/dev/null
for i in 1 2 3; do
    start_worker "w$i" OSP_LEASE_MS=2000 OSP_WORKER_SLOTS=8 OSP_WORKER_ID="w$i"
done
start_load "$N" "$RATE" 20
wait_ge 60 $((N / 3)) finished || fail "the load never got going: $WAIT_GOT finished"

INTERRUPTED=$(rcli ZCARD "$P:inflight:noop")
before=$(finished)
pg_crash
say "postgresql crashed at $before finished, $INTERRUPTED job(s) in flight"
sleep 3
t_up=$(now_ms)
pg_start
recovery=$(wait_progress "$t_up")
say "first job finished $recovery ms after the restart"
wait_load 180
chaos_check pg_restart "$recovery"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.jobs WHERE recoveries > 0")" "no job was reaped (leases held through the outage)"
chaos_redis_clean
finish
