#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_seed.sh — seed job rows/s against `pgbench -i` on the same server, one run each.
#
#   tests/bench/bench_seed.sh [SCALE]     (default 20: seed 2.22 M rows, pgbench 2.0 M rows)
#
# Seed scale N writes 111,000 x N rows (90% of them clicks, ~100 bytes each as text);
# pgbench -i -s N writes 100,000 x N pgbench_accounts rows (~97 bytes stored with the
# char(84) filler). Both build their keys after the load in one run; pgbench also VACUUMs,
# the seed ANALYZEs. Builds osp-run-kind in build-bench-sb/ (release; OSP_BENCH_BUILD=dir
# reuses an existing build), starts its own PostgreSQL (tests/support/servers.sh) in a temp
# dir and prints both figures and the ratio.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SCALE=${1:-20}
B=${OSP_BENCH_BUILD:-$ROOT/build-bench-sb}
if [ -z "${OSP_BENCH_BUILD:-}" ]; then
    cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$B" --target osp-run-kind -j"$(nproc)" >/dev/null
fi
RUN=$B/tests/bench/osp-run-kind
T=$(mktemp -d)
chmod 755 "$T"
cleanup() {
    bash "$ROOT/tests/support/servers.sh" stop "$T/s" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT
bash "$ROOT/tests/support/servers.sh" start "$T/s" >/dev/null
. "$T/s/env.sh"
export PGHOST=$OSP_TEST_PG_HOST PGPORT=$OSP_TEST_PG_PORT PGUSER=postgres
psql -d postgres -qAtc "CREATE DATABASE bench_seed" >/dev/null
psql -d postgres -qAtc "CREATE DATABASE bench_pgbench" >/dev/null
cat >"$T/targets.json" <<JSON
{"targets": {"bench": {"pg_dsn": "host=$PGHOST port=$PGPORT user=postgres dbname=bench_seed"}}}
JSON
now_ms() { date +%s%3N; }

# Seed: the job's own figure (rows over its whole run, keys and ANALYZE included).
t0=$(now_ms)
out=$(timeout 1800 "$RUN" seed "$T/targets.json" \
    "{\"target\": \"bench\", \"seed\": 1, \"scale\": $SCALE, \"zipf_s\": 1.1}" 2>/dev/null)
t1=$(now_ms)
seed_rows=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["total_rows"])' "$out")
seed_ms=$((t1 - t0))

# pgbench -i: client-side generation (COPY), default steps dtgvp.
t0=$(now_ms)
timeout 1800 pgbench -i -q -s "$SCALE" bench_pgbench >/dev/null 2>&1
t1=$(now_ms)
pgb_rows=$((SCALE * 100000 + SCALE * 10 + SCALE))
pgb_ms=$((t1 - t0))

python3 - "$seed_rows" "$seed_ms" "$pgb_rows" "$pgb_ms" "$out" <<'PY'
import json, sys
sr, sm, pr, pm = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
res = json.loads(sys.argv[5])
s_rps, p_rps = sr * 1000 / sm, pr * 1000 / pm
print(f"seed    : {sr} rows in {sm} ms (wall, process start to exit) = {s_rps:,.0f} rows/s"
      f"  [job: {res['duration_ms']} ms, {res['rows_per_s']:,.0f} rows/s,"
      f" keys {res['timings'].get('keys_ms')} ms, analyze {res['timings'].get('analyze_ms')} ms,"
      f" {res['bytes']} bytes of COPY text]")
print(f"pgbench : {pr} rows in {pm} ms (pgbench -i -q -s N, steps dtgvp) = {p_rps:,.0f} rows/s")
print(f"ratio   : seed/pgbench = {s_rps / p_rps:.2f}")
PY
psql -d bench_seed -qAtc "SELECT 'seed on-disk bytes/row (clicks): ' || (pg_relation_size('clicks') / count(*)) FROM clicks"
psql -d bench_pgbench -qAtc "SELECT 'pgbench on-disk bytes/row (accounts): ' || (pg_relation_size('pgbench_accounts') / count(*)) FROM pgbench_accounts"
