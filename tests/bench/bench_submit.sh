#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_submit.sh — durable HTTP submits: opspool's POST /v1/jobs (ledger row committed, then
# the envelope pushed, then the answer) against PostgreSQL committing the same one row per
# request for the same number of clients, on one durable PostgreSQL (fsync and
# synchronous_commit on: tests/support/servers.sh --durable).
#
#   tests/bench/bench_submit.sh [CONNS] [SECONDS] [ROUNDS]     (defaults 64, 10, 3)
#
# Lanes, alternating in each round so drift hits both:
#   opspool : opspool-scheduler (release) on loopback; opspool-loadgen as the client, CONNS
#             keep-alive connections, closed model, POST {"kind":"noop"} with a bearer
#             token, for SECONDS. Submits/s = 2xx answers / elapsed; p50/p99 per request.
#   pgbench : pgbench -n -M prepared -c CONNS -j 2 -T SECONDS, one INSERT of a job row per
#             transaction into opspool.jobs itself (migrated: the same constraints and
#             indexes): what a pool that commits one row per job could do on this PostgreSQL
#             at best (no HTTP, no Redis), with PostgreSQL's own WAL flush grouping.
# Also, once: the commit latency floor — pgbench -c 1 -R 500 of the same INSERT (p99 of one
# commit at 500 per second, i.e. "fsync p99"), for poolbench.py's enqueue→start figure.
# Prints one table; the ratio is opspool/pgbench submits per second per round.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONNS=${1:-64}
SECS=${2:-10}
ROUNDS=${3:-3}
B=${OSP_BENCH_BUILD:-$ROOT/build-bench-release}
if [ -z "${OSP_BENCH_BUILD:-}" ]; then
    cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON >/dev/null
    cmake --build "$B" -j"$(nproc)" >/dev/null
fi
T=$(mktemp -d)
chmod 755 "$T"
SPID=
cleanup() {
    [ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    bash "$ROOT/tests/support/servers.sh" stop "$T/s" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT
env -u OSP_TEST_REDIS_URL -u OSP_TEST_PG_DSN \
    bash "$ROOT/tests/support/servers.sh" start "$T/s" --durable >/dev/null
. "$T/s/env.sh"
export PGHOST=$OSP_TEST_PG_HOST PGPORT=$OSP_TEST_PG_PORT PGUSER=postgres
psql -d postgres -qAtc "SHOW fsync" | grep -qx on || { echo "PostgreSQL is not durable" >&2; exit 1; }
# pgbench writes into opspool's own jobs table (migrated by opspoolctl: the same columns,
# constraints and indexes a submit maintains).
psql -d postgres -qAtc "CREATE DATABASE bench_pgbench" >/dev/null
OSP_PG_DSN="host=$PGHOST port=$PGPORT user=postgres dbname=bench_pgbench" "$B/opspoolctl" migrate >/dev/null
cat >"$T/insert.sql" <<'SQL'
INSERT INTO opspool.jobs (id, kind, state, payload, attempt, max_attempts, created_at, run_at, updated_at)
VALUES (gen_random_uuid(), 'noop', 'queued', '{}', 0, 3, now(), now(), now());
SQL
echo "tok-bench" >"$T/tokens"
now_ms() { date +%s%3N; }

lane_opspool() { # one round: a fresh database, a scheduler, loadgen against it
    local db=bench_op_$1 port
    psql -d postgres -qAtc "CREATE DATABASE $db" >/dev/null
    export OSP_PG_DSN="host=$PGHOST port=$PGPORT user=postgres dbname=$db"
    export OSP_REDIS_URL=$OSP_TEST_REDIS_URL OSP_PREFIX="{$db}" OSP_LOG_LEVEL=warn
    "$B/opspoolctl" migrate >/dev/null
    rm -f "$T/port"
    OSP_API_TOKENS_FILE=$T/tokens OSP_HTTP_ADDR=127.0.0.1:0 OSP_HTTP_PORT_FILE=$T/port \
        OSP_RECONCILE_GRACE_S=3600 "$B/opspool-scheduler" 2>>"$T/sched.log" &
    SPID=$!
    for _ in $(seq 1 200); do [ -s "$T/port" ] && break; sleep 0.05; done
    port=$(cat "$T/port")
    "$B/tools/opspool-loadgen" -c "$CONNS" -d "$SECS" -w 1 -m POST \
        -H 'Authorization: Bearer tok-bench' -H 'Content-Type: application/json' \
        -b '{"kind":"noop"}' --json "http://127.0.0.1:$port/v1/jobs" >"$T/lg.json"
    local tx sz cpu
    cpu=$(awk '{print $14 + $15}' "/proc/$SPID/stat")
    tx=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "opspool_api_submit_transactions_total" {print $2}')
    sz=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "opspool_api_submit_group_size_sum" {print $2}')
    kill -TERM "$SPID"
    wait "$SPID" || true
    SPID=
    python3 - "$T/lg.json" "$tx" "$sz" "$cpu" "$(getconf CLK_TCK)" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
errs = sum(j["errors"].values())
tx, sz = float(sys.argv[2] or 0), float(sys.argv[3] or 0)
cpu_us = float(sys.argv[4]) / float(sys.argv[5]) * 1e6 / sz if sz else 0
print(f'{j["rps"]:.0f} {j["latency_ms"]["p50"]:.2f} {j["latency_ms"]["p99"]:.2f} {errs} '
      f'{sz / tx if tx else 0:.1f} {cpu_us:.0f}')
PY
    psql -d postgres -qAtc "DROP DATABASE $db WITH (FORCE)" >/dev/null
}

lane_pgbench() {
    PGOPTIONS="-c client_min_messages=warning" psql -d bench_pgbench -qAtc "TRUNCATE opspool.jobs CASCADE" >/dev/null
    (cd "$T" && rm -f pgbench_log.* &&
        pgbench -n -M prepared -c "$CONNS" -j 2 -T "$SECS" -f insert.sql -l bench_pgbench \
            >"$T/pgb.txt" 2>&1)
    python3 - "$T" "$T/pgb.txt" <<'PY'
import glob, re, sys
lat = []
for f in glob.glob(sys.argv[1] + "/pgbench_log.*"):
    for line in open(f):
        lat.append(int(line.split()[2]) / 1000.0)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
tps = float(re.search(r"tps = ([0-9.]+)", open(sys.argv[2]).read()).group(1))
print(f"{tps:.0f} {q(0.5):.2f} {q(0.99):.2f} 0 1.0 -")
PY
}

: >"$T/rows"
for r in $(seq 1 "$ROUNDS"); do
    order="opspool pgbench"
    [ $((r % 2)) -eq 0 ] && order="pgbench opspool"
    for lane in $order; do
        echo "round $r: $lane" >&2
        echo "$r $lane $("lane_$lane" "$r")" >>"$T/rows"
    done
done

# The commit floor at 500 commits/s, one client.
PGOPTIONS="-c client_min_messages=warning" psql -d bench_pgbench -qAtc "TRUNCATE opspool.jobs CASCADE" >/dev/null
(cd "$T" && rm -f pgbench_log.* &&
    pgbench -n -M prepared -c 1 -R 500 -T "$SECS" -f insert.sql -l bench_pgbench >/dev/null 2>&1)
fsync=$(python3 - "$T" <<'PY'
import glob, sys
# With --rate the log's time counts from the scheduled start; the last field is the lag
# behind the schedule: subtract it for the commit's own latency.
lat = sorted((int(l.split()[2]) - int(l.split()[-1])) / 1000.0
             for f in glob.glob(sys.argv[1] + "/pgbench_log.*") for l in open(f))
print(f"{lat[len(lat) // 2]:.2f} {lat[min(len(lat) - 1, int(0.99 * len(lat)))]:.2f}")
PY
)

python3 - "$T/rows" "$CONNS" "$SECS" "$fsync" <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
conns, secs = sys.argv[2], sys.argv[3]
f50, f99 = sys.argv[4].split()
def fmt(xs, d=0):
    xs = sorted(xs)
    f = lambda x: f"{x:,.{d}f}"
    return f"{f(st.median(xs))} ({f(xs[0])}–{f(xs[-1])})"
print(f"Durable PostgreSQL (fsync=on, synchronous_commit=on); {conns} keep-alive clients, "
      f"{secs} s per lane; medians of {len(rows) // 2} rounds (min–max)\n")
print("| lane | commits | submits/s | p50 ms | p99 ms | errors | rows per commit | server CPU µs per submit |")
print("|---|---|---|---|---|---|---|---|")
lanes = {"opspool": "opspool POST /v1/jobs (opspool-loadgen)",
         "pgbench": "pgbench: one INSERT per transaction"}
for lane in ("opspool", "pgbench"):
    rs = [r for r in rows if r[1] == lane]
    col = lambda i, d=0: fmt([float(r[i]) for r in rs], d)
    print(f"| {lanes[lane]} | {'grouped' if lane == 'opspool' else 'one per row'} | {col(2)} | "
          f"{col(3, 2)} | {col(4, 2)} | {col(5)} | {col(6, 1)} | "
          f"{col(7) if lane == 'opspool' else '–'} |")
ratios = []
for r in sorted({r[0] for r in rows}):
    o = [float(x[2]) for x in rows if x[0] == r and x[1] == "opspool"]
    p = [float(x[2]) for x in rows if x[0] == r and x[1] == "pgbench"]
    if o and p:
        ratios.append(o[0] / p[0])
print(f"\nopspool/pgbench submits per second, per round: "
      f"{', '.join(f'{x:.2f}' for x in ratios)} (median {st.median(ratios):.2f})")
print(f"commit floor (pgbench -c 1 -R 500, one INSERT per commit): p50 {f50} ms, p99 {f99} ms")
PY
