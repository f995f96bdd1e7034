#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The network to PostgreSQL cut mid-load, then restored: workers and the submitter reach a
# PRIVATE PostgreSQL (listen_addresses=127.0.0.1) only through chaosproxy.py. First a 5 s
# blackhole (commits hang: nothing forwarded), then "pass"; later a reset (every connection
# closed at once, commits in flight get no answer). Workers hold their outcomes and retry,
# acking in Redis only after a commit; leases stay alive through Redis. Expected: no loss, no
# duplicate (nothing is re-delivered); the bound reported is the jobs in flight at the two
# cuts. Recovery time: from the end of the blackhole until the next finished job.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

N=${OSP_CHAOS_JOBS:-3000}
RATE=${OSP_CHAOS_RATE:-150}
start_pg
export OSP_PG_DSN; OSP_PG_DSN=$(pg_dsn_unix)
start_proxy pgproxy "127.0.0.1:$PG_PORT"
VIA="host=127.0.0.1 port=$PROXY_PORT user=postgres dbname=chaos"
"$CTL" migrate >/dev/null
for i in 1 2 3; do
    start_worker "w$i" OSP_PG_DSN="$VIA" OSP_LEASE_MS=2000 OSP_WORKER_SLOTS=8 OSP_WORKER_ID="w$i"
done
LOAD_ENV=(OSP_PG_DSN="$VIA")
start_load "$N" "$RATE" 20
wait_ge 60 $((N / 4)) finished || fail "the load never got going: $WAIT_GOT finished"

INTERRUPTED=$(rcli ZCARD "$P:inflight:noop")
proxy "$PROXY_CTL" blackhole >/dev/null
say "postgresql blackholed at $(finished) finished, $INTERRUPTED in flight"
sleep 5
t_up=$(now_ms)
proxy "$PROXY_CTL" pass >/dev/null
recovery=$(wait_progress "$t_up")
say "network to postgresql restored; first job finished $recovery ms later"
wait_ge 60 $(( N * 2 / 3 )) finished || fail "no progress after the blackhole: $WAIT_GOT finished"
inflight=$(rcli ZCARD "$P:inflight:noop")
INTERRUPTED=$((INTERRUPTED + inflight))
say "resetting every postgresql connection at $(finished) finished, $inflight in flight: $(proxy "$PROXY_CTL" reset)"
wait_load 180
chaos_check net_cut_pg "$recovery"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.jobs WHERE recoveries > 0")" "no job was reaped"
chaos_redis_clean
finish
