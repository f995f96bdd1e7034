#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_instr.sh — instructions one worker executes (valgrind callgrind, Ir) to drain N
# preloaded inline noop jobs, start-up included: a figure without the timing noise of a shared
# machine, for comparing two builds of the worker (docs/benchmarks.md, "Worker footprint").
#
#   tests/bench/bench_instr.sh BUILD_DIR [N]      (default N = 10000)
#
# Starts its own Redis and PostgreSQL (tests/support/servers.sh); bounded waits.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:?usage: bench_instr.sh BUILD_DIR [N]}
N=${2:-10000}
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
T=$(mktemp -d)
cleanup() {
    [ -n "${P:-}" ] && kill -9 "$P" 2>/dev/null || true
    bash "$ROOT/tests/support/servers.sh" stop "$T/s" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT
env -u OSP_TEST_REDIS_URL -u OSP_TEST_PG_DSN bash "$ROOT/tests/support/servers.sh" start "$T/s" >/dev/null
. "$T/s/env.sh"
export OSP_REDIS_URL=$OSP_TEST_REDIS_URL OSP_PG_DSN=$OSP_TEST_PG_DSN OSP_LOG_LEVEL=warn
"$B/opspoolctl" migrate >/dev/null
"$B/opspoolctl" submit noop --count "$N" >/dev/null
OSP_WORKER_SLOTS=512 valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" \
    "$B/opspool-worker" >"$T/w.log" 2>&1 &
P=$!
done_n=0
for _ in $(seq 1 3000); do # up to 300 s
    done_n=$(psql "$OSP_PG_DSN" -qAtX -c "SELECT count(*) FROM opspool.jobs WHERE state = 'succeeded'")
    [ "$done_n" = "$N" ] && break
    sleep 0.1
done
kill -TERM "$P"
for _ in $(seq 1 600); do kill -0 "$P" 2>/dev/null || break; sleep 0.1; done
wait "$P" || true
P=
[ "$done_n" = "$N" ] || { echo "only $done_n of $N jobs succeeded" >&2; exit 1; }
ir=$(awk '/^totals:/ {print $2}' "$T/cg.out")
echo "build=$B jobs=$N instructions=$ir per_job=$((ir / N))"
