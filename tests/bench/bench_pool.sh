#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_pool.sh — pool throughput end to end (ledger row, enqueue, fetch, run, result
# committed, ack) for 1, 2 and 4 worker processes, inline and forked noop, with where the time
# goes (commits and script calls per job, CPU per job in the worker, Redis and PostgreSQL);
# worker footprint (idle RSS/PSS/private) and start-to-first-fetch time. Also measures the two
# stores' own floor on this machine for the same work (redis-benchmark LPUSH+RPOP, and a
# pgbench script doing the ledger's INSERT + UPDATE per job, unbatched), so the pool's figure
# reads as a ratio of what its stores allow.
#
#   tests/bench/bench_pool.sh [RUNS] [OUT_DIR]     (default 3 runs; CSVs into OUT_DIR)
#
# The measuring is done by poolbench.py (throughput, footprint); see there for the method.
# Builds a release tree in build-bench-pool/ (OSP_BENCH_BUILD=dir reuses a release build with
# BUILD_TESTING=ON); starts its own Redis and PostgreSQL in a temp dir (unix sockets).
# BENCH_QUICK=1 runs the small smoke sizes. Bounded: every wait has a timeout.
#
# Fixed against the first version: the timed window included worker start-up and the submit
# (now: the queue is preloaded and the window is the ledger's first start to last commit; the
# submit-while-running figure is reported separately as "end to end"); completion was polled by
# a psql every 20 ms, a noticeable CPU share on 2 cores; footprint printed the last of 5 starts,
# not a median; and a killed worker's pid could be SIGKILLed again in cleanup after reuse.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${1:-3}
OUT=${2:-$(mktemp -d)}
B=${OSP_BENCH_BUILD:-$ROOT/build-bench-pool}
if [ -z "${OSP_BENCH_BUILD:-}" ]; then
    cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON >/dev/null
    cmake --build "$B" -j"$(nproc)" >/dev/null
fi
quick=()
[ -n "${BENCH_QUICK:-}" ] && quick=(--quick)
python3 "$ROOT/tests/bench/poolbench.py" --build "$B" --out "$OUT" --runs "$RUNS" "${quick[@]}" \
    throughput footprint

# The stores' floor for the same per-job work, on servers of the same configuration.
T=$(mktemp -d)
cleanup() {
    bash "$ROOT/tests/support/servers.sh" stop "$T/s" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT
env -u OSP_TEST_REDIS_URL -u OSP_TEST_PG_DSN bash "$ROOT/tests/support/servers.sh" start "$T/s" >/dev/null
. "$T/s/env.sh"
sock=${OSP_TEST_REDIS_URL#unix://}
rps=$(timeout 120 redis-benchmark -s "$sock" -n 200000 -P 64 --csv -t lpush,rpop 2>/dev/null |
    awk -F'"' 'NR > 1 {printf "%s%s %.0f", sep, $2, $4; sep=", "}')
rps1=$(timeout 120 redis-benchmark -s "$sock" -n 100000 -c 1 --csv -t lpush 2>/dev/null |
    awk -F'"' 'NR > 1 {printf "%.0f", $4}')
db=floor_$RANDOM
psql "$OSP_TEST_PG_DSN" -qAtc "CREATE DATABASE $db" >/dev/null
fl_dsn="${OSP_TEST_PG_DSN/dbname=postgres/dbname=$db}"
psql "$fl_dsn" -qAtc "CREATE TABLE j (id bigserial primary key, state text, payload jsonb, result jsonb, finished_at timestamptz)" >/dev/null
cat >"$T/floor.sql" <<'SQL'
INSERT INTO j (state, payload) VALUES ('queued', '{}') RETURNING id \gset
UPDATE j SET state = 'succeeded', result = '{"ok":true}', finished_at = now() WHERE id = :id;
SQL
tps=$(timeout 60 pgbench -n -h "$OSP_TEST_PG_HOST" -p "$OSP_TEST_PG_PORT" -U postgres -c 4 -j 2 -T 5 \
    -f "$T/floor.sql" "$db" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}')
echo "stores_floor,redis_lpush_rpop_pipelined64,\"$rps\"" >>"$OUT/floor.csv"
echo "stores_floor,redis_lpush_unpipelined_1client,$rps1" >>"$OUT/floor.csv"
echo "stores_floor,pgbench_insert_update_per_job_4clients,$tps" >>"$OUT/floor.csv"
echo
echo "Stores' floor on this machine: redis-benchmark LPUSH/RPOP (pipelined 64) = $rps req/s;"
echo "LPUSH one client, one round trip each = $rps1 req/s;"
echo "pgbench, one INSERT + one UPDATE per job, unbatched, 4 clients = $tps jobs/s."
