#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_backup.sh — backup job wall time against a plain `pg_dump -Fc` of the same database.
#
#   tests/bench/bench_backup.sh [SCALE]   (default 20: the seed data set, 2.22 M rows)
#
# Seeds a database with the seed job, then times (one run each): plain pg_dump -Fc to a file;
# the backup job with verify "list" (dump + fsync + SHA-256 + pg_restore --list + rename);
# the backup job with verify "restore" (adds the full restore into a scratch database and the
# row-count comparison). Builds osp-run-kind like bench_seed.sh (OSP_BENCH_BUILD reuses one).
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
psql -d postgres -qAtc "CREATE DATABASE bench_backup" >/dev/null
cat >"$T/targets.json" <<JSON
{"targets": {"bench": {"pg_dsn": "host=$PGHOST port=$PGPORT user=postgres dbname=bench_backup",
                       "backup_root": "$T/backups"}}}
JSON
timeout 1800 "$RUN" seed "$T/targets.json" "{\"target\": \"bench\", \"scale\": $SCALE}" >/dev/null 2>&1
psql -d bench_backup -qAtc "VACUUM ANALYZE" >/dev/null
size=$(psql -d bench_backup -qAtc "SELECT pg_size_pretty(pg_database_size('bench_backup'))")
now_ms() { date +%s%3N; }

t0=$(now_ms)
timeout 1800 pg_dump -Fc -d bench_backup -f "$T/plain.dump"
t1=$(now_ms)
plain_ms=$((t1 - t0))
plain_bytes=$(stat -c %s "$T/plain.dump")

t0=$(now_ms)
list_out=$(timeout 1800 "$RUN" backup "$T/targets.json" '{"target": "bench", "verify": "list"}' 2>/dev/null)
t1=$(now_ms)
list_ms=$((t1 - t0))

t0=$(now_ms)
rest_out=$(timeout 1800 "$RUN" backup "$T/targets.json" '{"target": "bench", "verify": "restore"}' 2>/dev/null)
t1=$(now_ms)
rest_ms=$((t1 - t0))

python3 - "$size" "$plain_ms" "$plain_bytes" "$list_ms" "$list_out" "$rest_ms" "$rest_out" <<'PY'
import json, sys
size, pm, pb, lm, lo, rm, ro = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5]), int(sys.argv[6]), json.loads(sys.argv[7])
print(f"database            : {size}")
print(f"pg_dump -Fc         : {pm} ms, {pb} bytes")
print(f"backup verify=list  : {lm} ms wall (dump {lo['dump_ms']} ms), {lo['bytes']} bytes; ratio to pg_dump {lm / pm:.2f}")
print(f"backup verify=restore: {rm} ms wall (dump {ro['dump_ms']} ms, restore {ro['restore_ms']} ms); ratio to pg_dump {rm / pm:.2f}")
PY
