#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_pool.sh — pool throughput end to end (ledger row, enqueue, fetch, run, result
# committed, ack) for 1, 2 and 4 worker processes, plus worker footprint (idle RSS) and
# start-to-first-fetch time. Also measures the two stores' own floor on this machine for the
# same work (redis-benchmark LPUSH+RPOP, and a pgbench script doing the ledger's INSERT +
# UPDATE per job), so the pool's figure reads as a ratio of what its stores allow.
#
#   tests/bench/bench_pool.sh [JOBS] [RUNS]      (default 20000 jobs, 3 runs; median reported)
#
# Builds a release tree in build-bench-pool/, starts its own Redis and PostgreSQL in a temp
# dir (unix sockets), prints a Markdown table. Bounded: every wait has a timeout.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
JOBS=${1:-20000}
RUNS=${2:-3}
B=$ROOT/build-bench-pool
cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$B" -j"$(nproc)" >/dev/null
T=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    bash "$ROOT/tests/support/servers.sh" stop "$T/s" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT
bash "$ROOT/tests/support/servers.sh" start "$T/s" >/dev/null
. "$T/s/env.sh"
export OSP_REDIS_URL=$OSP_TEST_REDIS_URL OSP_LOG_LEVEL=warn
now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
spread() { sort -n | awk '{a[NR]=$1} END {printf "%s–%s", a[1], a[NR]}'; }

run_once() { # run_once WORKERS -> jobs/s
    local nw=$1 db=bench_$RANDOM$RANDOM
    psql "$OSP_TEST_PG_DSN" -qAtc "CREATE DATABASE $db" >/dev/null
    export OSP_PG_DSN="${OSP_TEST_PG_DSN/dbname=postgres/dbname=$db}" OSP_PREFIX="{b$RANDOM}"
    "$B/opspoolctl" migrate >/dev/null
    local pids=()
    for i in $(seq 1 "$nw"); do
        OSP_WORKER_SLOTS=${BENCH_SLOTS:-512} "$B/opspool-worker" 2>>"$T/worker.log" &
        pids+=($!); PIDS+=($!)
    done
    sleep 0.5
    local t0 t1
    t0=$(now_ns)
    "$B/opspoolctl" submit noop --count "$JOBS" >/dev/null
    for _ in $(seq 1 6000); do
        [ "$(psql "$OSP_PG_DSN" -qAtc "SELECT count(*) FROM opspool.jobs WHERE state='succeeded'")" = "$JOBS" ] && break
        sleep 0.02
    done
    t1=$(now_ns)
    for p in "${pids[@]}"; do kill -TERM "$p"; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    psql "$OSP_TEST_PG_DSN" -qAtc "DROP DATABASE $db WITH (FORCE)" >/dev/null
    awk -v n="$JOBS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n / ((b - a) / 1e9) }'
}

echo "## Pool throughput: $JOBS noop jobs end to end, median of $RUNS runs"
echo
echo "| worker processes | jobs/s (median) | spread |"
echo "|---|---|---|"
for nw in 1 2 4; do
    vals=$(for _ in $(seq 1 "$RUNS"); do run_once "$nw"; done)
    echo "| $nw | $(echo "$vals" | median) | $(echo "$vals" | spread) |"
done

# The stores' floor for the same per-job work.
sock=${OSP_TEST_REDIS_URL#unix://}
rps=$(redis-benchmark -s "$sock" -n 200000 -P 64 --csv -t lpush,rpop 2>/dev/null | awk -F'"' 'NR > 1 {printf "%s%s %.0f", sep, $2, $4; sep=", "}')
db=floor_$RANDOM
psql "$OSP_TEST_PG_DSN" -qAtc "CREATE DATABASE $db" >/dev/null
fl_dsn="${OSP_TEST_PG_DSN/dbname=postgres/dbname=$db}"
psql "$fl_dsn" -qAtc "CREATE TABLE j (id bigserial primary key, state text, payload jsonb, result jsonb, finished_at timestamptz)" >/dev/null
cat >"$T/floor.sql" <<'SQL'
INSERT INTO j (state, payload) VALUES ('queued', '{}') RETURNING id \gset
UPDATE j SET state = 'succeeded', result = '{"ok":true}', finished_at = now() WHERE id = :id;
SQL
tps=$(pgbench -n -h "$OSP_TEST_PG_HOST" -p "$OSP_TEST_PG_PORT" -U postgres -c 4 -j 2 -T 5 -f "$T/floor.sql" "$db" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}')
echo
echo "Stores' floor on this machine: redis-benchmark LPUSH/RPOP (pipelined 64) = $rps req/s;"
echo "pgbench, one INSERT + one UPDATE per job, unbatched, 4 clients = $tps jobs/s."

# Footprint: idle RSS and start-to-first-fetch.
db=fp_$RANDOM
psql "$OSP_TEST_PG_DSN" -qAtc "CREATE DATABASE $db" >/dev/null
export OSP_PG_DSN="${OSP_TEST_PG_DSN/dbname=postgres/dbname=$db}" OSP_PREFIX="{fp}"
"$B/opspoolctl" migrate >/dev/null
starts=()
for _ in $(seq 1 5); do
    t0=$(date +%s%3N)
    OSP_LOG_LEVEL=info OSP_WORKER_SLOTS=4 "$B/opspool-worker" 2>"$T/fp.log" &
    p=$!; PIDS+=($p)
    for _ in $(seq 1 200); do grep -q '"first fetch"' "$T/fp.log" 2>/dev/null && break; sleep 0.01; done
    at=$(grep -o '"first_fetch_at_ms":"[0-9]*"' "$T/fp.log" | grep -o '[0-9]*' | head -1)
    starts+=($((at - t0)))
    sleep 1
    rss=$(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup")
    pss=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")
    priv=$(awk '/^Private_Dirty:/ {print $2}' "/proc/$p/smaps_rollup")
    kill -TERM "$p"; wait "$p" 2>/dev/null || true
done
echo "Worker idle memory (release build, 4 slots, connected to Redis and PostgreSQL): RSS ${rss} KiB,"
echo "PSS ${pss} KiB, private dirty ${priv} KiB. RSS counts shared library pages (libpq's krb5/ldap/"
echo "gnutls chain, libc, libcrypto) that every process on the node shares; PSS is this worker's share."
echo "Start to first fetch (exec to the first queue fetch answered, 5 starts): median $(printf '%s\n' "${starts[@]}" | median) ms, spread $(printf '%s\n' "${starts[@]}" | spread) ms."
