#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_regress.sh — the false-positive rate of the regression rule (opspool.bench_judge,
# docs/benchmark-jobs.md "History and regressions") on unchanged runs, next to the rule users
# often write first ("regressed when p99 is 10 % above the previous run's").
#
#   tests/bench/bench_regress.sh [RUNS] [SLOW_MS]     (defaults 20 and 20)
#
# One worker runs RUNS unchanged benchmark jobs of the reference shortener (its own Redis and
# PostgreSQL, tests/support/servers.sh, in a temp dir), two lanes each: `closed` (8
# connections, 2 s: enough requests for p99 and p99.9 to be judged) and `open` (2,000/s for
# 2 s: p99 judged, p99.9 not). Every run from the sixth on has a baseline; each such lane
# verdict that says `regressed` is a false positive. Then the shortener is slowed by SLOW_MS
# on every redirect and one more run must be `regressed` (the rule still sees a real change).
# Prints one summary line per rule (OSP_BENCH_OUT=FILE: every lane run's verdict and
# figures). Builds in build-bench-release/ (OSP_BENCH_BUILD=dir reuses
# an existing build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${1:-20}
SLOW_MS=${2:-20}
B=${OSP_BENCH_BUILD:-$ROOT/build-bench-release}
if [ -z "${OSP_BENCH_BUILD:-}" ]; then
    cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$B" --target opspool-worker opspoolctl opspool-shortener -j"$(nproc)" >/dev/null
fi
T=$(mktemp -d)
chmod 755 "$T"
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    bash "$ROOT/tests/support/servers.sh" stop "$T/s" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT
bash "$ROOT/tests/support/servers.sh" start "$T/s" >/dev/null
. "$T/s/env.sh"
. "$ROOT/tests/support/ports.sh"
export OSP_REDIS_URL=$OSP_TEST_REDIS_URL OSP_PG_DSN=$OSP_TEST_PG_DSN OSP_PREFIX="{bench-regress}"
CTL=$B/opspoolctl
q() { psql "$OSP_PG_DSN" -qAtX -c "$1"; }
wait_for() { # SECONDS CMD...
    local end=$(($(date +%s) + $1)); shift
    until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.1; done
}

SHORTENER_ADDR=127.0.0.1:0 SHORTENER_PORT_FILE=$T/shortener.port SHORTENER_PG_DSN=$OSP_PG_DSN \
SHORTENER_REDIS_URL=$OSP_REDIS_URL SHORTENER_REDIS_PREFIX="bench-regress:" \
    "$B/tools/opspool-shortener" >"$T/shortener.log" 2>&1 &
PIDS+=("$!")
UP=$(port_from_file "$T/shortener.port" 30)
wait_for 30 curl -fsS "http://127.0.0.1:$UP/health"
for i in $(seq 1 100); do
    curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
        -d "{\"target\": \"https://example.com/$i\", \"user_id\": 1, \"code\": \"k$i\"}" "http://127.0.0.1:$UP/api/urls"
done
export OSP_TARGETS_FILE=$T/targets.json
echo "{\"targets\": {\"web\": {\"adapter\": \"local\", \"base_url\": \"http://127.0.0.1:$UP\", \"health_path\": \"/health\"}}}" >"$OSP_TARGETS_FILE"
"$CTL" migrate >/dev/null
OSP_WORKER_KINDS=benchmark OSP_WORKER_SLOTS=1 "$B/opspool-worker" >"$T/worker.log" 2>&1 &
PIDS+=("$!")
PAYLOAD='{"target": "web", "lanes": [
  {"name": "closed", "connections": 8, "duration_s": 2, "requests_mix": [{"path": "/r/k{key}"}], "keys": {"count": 100}},
  {"name": "open", "model": "open", "rate": 2000, "connections": 64, "duration_s": 2, "requests_mix": [{"path": "/r/k{key}"}], "keys": {"count": 100}}]}'
state() { q "SELECT state FROM opspool.jobs WHERE id = '$1'"; }
succeeded() { [ "$(state "$1")" = succeeded ]; }
finished() { [[ "$(state "$1")" == @(succeeded|failed) ]]; }
run() {
    local id
    id=$("$CTL" submit benchmark --payload "$PAYLOAD")
    wait_for 120 succeeded "$id" || { echo "run $id: $(state "$id")" >&2; exit 1; }
}
for i in $(seq 1 "$RUNS"); do run; printf '.' >&2; done
echo >&2
curl -fsS -X POST "http://127.0.0.1:$UP/admin/faults" -d "{\"latency_ms\": $SLOW_MS}" >/dev/null
slow=$("$CTL" submit benchmark --payload "$PAYLOAD") # may also fail a threshold: judged all the same
wait_for 120 finished "$slow" || { echo "slowed run $slow: $(state "$slow")" >&2; exit 1; }
curl -fsS -X POST "http://127.0.0.1:$UP/admin/faults" -d '{"latency_ms": 0}' >/dev/null

# The rule's verdicts on every lane run, oldest first; the last run is the slowed one.
verdicts=$(q "SELECT r.lane, row_number() OVER (PARTITION BY r.lane ORDER BY r.created_at),
                     opspool.bench_judge(r)->>'verdict',
                     coalesce((SELECT string_agg(k, ',') FROM jsonb_each(opspool.bench_judge(r)->'figures') AS f(k, x)
                               WHERE x->>'verdict' = 'regressed'), '-'),
                     r.p99_ms,
                     lag(r.p99_ms) OVER (PARTITION BY r.lane ORDER BY r.created_at),
                     round(r.rps), round(r.p50_ms::numeric, 3), round(r.p999_ms::numeric, 3),
                     round(r.cache_hit_ratio::numeric, 4)
              FROM opspool.benchmark_results r ORDER BY r.lane, r.created_at")
{
    echo "lane run verdict worse_figures p99_ms previous_p99_ms rps p50_ms p999_ms cache_hit_ratio"
    tr '|' ' ' <<<"$verdicts"
} >"${OSP_BENCH_OUT:-/dev/null}"
awk -F'|' -v runs="$RUNS" -v slow="$SLOW_MS" '
    $2 <= runs && $3 != "no baseline yet" { judged++; if ($3 == "regressed") { fp++; which = which " " $1 "#" $2 "(" $4 ")" } }
    $2 <= runs && $6 != "" { naive_judged++; if ($5 > 1.1 * $6) naive_fp++ }
    $2 == runs + 1 { slow_v = slow_v " " $1 ":" $3 "(" $4 ")" }
    END {
        printf "opspool rule: %d false positive(s) in %d judged unchanged lane runs%s; +%d ms run:%s\n", fp, judged, which, slow, slow_v
        printf "naive rule (p99 > 1.1 x previous run): %d false positive(s) in %d unchanged lane runs\n", naive_fp, naive_judged
    }' <<<"$verdicts"
