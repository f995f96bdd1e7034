#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_loadgen.sh — the benchmark kind's closed model (opspool-loadgen) against wrk on the same
# target in one run: osp-stallserver with stalls off (a static 200 "ok" responder, one thread,
# keep-alive) on loopback; same connection count, one thread each, same duration; runs
# alternate (wrk, ours, wrk, ours, ...) so drift hits both; medians and the ratio are printed.
#
#   tests/bench/bench_loadgen.sh [CONNECTIONS] [SECONDS] [RUNS] [THREADS]   (default 50 10 5 1)
#
# THREADS is wrk's -t and opspool-loadgen's -t (engines) at once: equal threads. With one
# thread the server and the load generator are pinned to one core each; with more the load
# generator is not pinned (it gets what the server leaves).
#
# Printed per tool: median requests/s, median p99 latency (wrk's --latency distribution, ours'
# text output; both closed model, both counting from each request's send), and CPU time
# (user+sys, from /usr/bin/time) per request, which is the figure that survives a noisy shared
# machine; plus the median of the per-pair requests/s ratios.
#
# Builds a release tree in build-bench-loadgen/ (OSP_BENCH_BUILD=dir reuses a release build
# configured with BUILD_TESTING=ON). With taskset available the server is pinned to
# CPU 0 and the load generator to CPU 1 (a 2-core machine: one core each). Bounded: every run
# has a duration and a timeout; the server is killed on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
C=${1:-50}
D=${2:-10}
RUNS=${3:-5}
THREADS=${4:-1}
B=${OSP_BENCH_BUILD:-$ROOT/build-bench-loadgen}
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)" >&2; exit 77; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time missing (apt-get install time)" >&2; exit 77; }
T=$(mktemp -d)
if [ -z "${OSP_BENCH_BUILD:-}" ]; then
    cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON >"$T/build.log" 2>&1 &&
        cmake --build "$B" -j"$(nproc)" --target osp-stallserver opspool-loadgen >>"$T/build.log" 2>&1 ||
        { cat "$T/build.log" >&2; exit 1; }
fi
SERVER=$B/tests/support/osp-stallserver
LOADGEN=$B/tools/opspool-loadgen
SPID=
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
pin_server=() pin_client=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_server=(taskset -c 0)
    [ "$THREADS" = 1 ] && pin_client=(taskset -c 1)
fi
"${pin_server[@]}" "$SERVER" --stall-every-ms 0 >"$T/port" &
SPID=$!
for _ in $(seq 1 100); do grep -q '^port ' "$T/port" 2>/dev/null && break; sleep 0.05; done
PORT=$(awk '/^port /{print $2}' "$T/port")
[ -n "$PORT" ] || { echo "server did not start" >&2; exit 1; }
URL=http://127.0.0.1:$PORT/
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: >"$T/wrk" && : >"$T/ours" && : >"$T/ratio" && : >"$T/wrk_cpu" && : >"$T/ours_cpu"
: >"$T/wrk_p99" && : >"$T/ours_p99"
# run TOOL-NAME CMD... — prints requests/s; appends CPU microseconds per request to $T/NAME_cpu
# and the p99 in ms to $T/NAME_p99.
run() {
    local name=$1; shift
    local rps
    timeout $((D + 30)) /usr/bin/time -f '%U %S' -o "$T/time" "${pin_client[@]}" "$@" >"$T/out"
    rps=$(awk '/^Requests\/sec:/{print $2}' "$T/out")
    awk -v r="$rps" -v d="$D" '{ printf "%.3f\n", ($1 + $2) * 1e6 / (r * d) }' "$T/time" >>"$T/${name}_cpu"
    # wrk: "     99%    7.04ms" (us, ms or s); ours: "latency ms   p50 ...  p99 0.182 ..."
    awk '$1 == "99%" { v = $2; u = 1; if (v ~ /us$/) u = 0.001; else if (v ~ /ms$/) u = 1;
                       else if (v ~ /s$/) u = 1000; sub(/[a-z]+$/, "", v); printf "%.3f\n", v * u }
         $1 == "latency" && $2 == "ms" { for (i = 3; i < NF; i++) if ($i == "p99") printf "%.3f\n", $(i + 1) }' \
        "$T/out" >>"$T/${name}_p99"
    echo "$rps"
}
for r in $(seq 1 "$RUNS"); do
    w=$(run wrk wrk --latency -t"$THREADS" -c"$C" -d"${D}s" "$URL")
    o=$(run ours "$LOADGEN" -t "$THREADS" -c "$C" -d "$D" "$URL")
    printf 'run %d: wrk %s req/s (p99 %s ms, %s us CPU/req), opspool-loadgen %s req/s (p99 %s ms, %s us CPU/req)\n' \
        "$r" "$w" "$(tail -n1 "$T/wrk_p99")" "$(tail -n1 "$T/wrk_cpu")" "$o" "$(tail -n1 "$T/ours_p99")" "$(tail -n1 "$T/ours_cpu")"
    echo "$w" >>"$T/wrk"
    echo "$o" >>"$T/ours"
    awk -v o="$o" -v w="$w" 'BEGIN { printf "%.4f\n", o / w }' >>"$T/ratio"
done
W=$(median <"$T/wrk")
O=$(median <"$T/ours")
printf '\n| tool | connections | threads | duration | requests/s (median of %d) | p99 ms (median) | CPU us/request (median) |\n' "$RUNS"
printf '|---|---|---|---|---|---|---|\n'
printf '| wrk %s | %s | %s | %ss | %s | %s | %s |\n' "$(wrk -v 2>&1 | awk 'NR==1{print $2}')" "$C" "$THREADS" "$D" "$W" "$(median <"$T/wrk_p99")" "$(median <"$T/wrk_cpu")"
printf '| opspool-loadgen (closed) | %s | %s | %ss | %s | %s | %s |\n' "$C" "$THREADS" "$D" "$O" "$(median <"$T/ours_p99")" "$(median <"$T/ours_cpu")"
awk -v o="$O" -v w="$W" -v p="$(median <"$T/ratio")" 'BEGIN {
    printf "\nratio opspool-loadgen / wrk: %.3f of medians, %.3f median of per-run pairs (target >= 0.95)\n", o / w, p }'
