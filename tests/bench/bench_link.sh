#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_link.sh — the lean worker link (docs/decisions/0006-lean-worker-link.md) against the
# ordinary shared-library link of the same source: idle footprint (RSS, PSS, private, start to
# first fetch) and pool throughput (inline noop 1/2/4 workers, forked noop, end to end), in
# one run with the two builds alternating (odd rounds shared first, even rounds lean first)
# so the drift of a shared machine hits both. Prints medians (min–max) and the per-round
# lean/shared throughput ratios.
#
#   tests/bench/bench_link.sh [ROUNDS] [OUT_DIR]      (default 3 rounds)
#
# Lean build: OSP_BENCH_BUILD (the release tree tests/bench/run builds), else
# build-bench-release/. Shared build: build-bench-shared/ (-DOSP_LEAN_WORKER=OFF).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-3}
OUT=${2:-$(mktemp -d)}
LEAN=${OSP_BENCH_BUILD:-$ROOT/build-bench-release}
SHARED=$ROOT/build-bench-shared
for b in "$LEAN:ON" "$SHARED:OFF"; do
    cmake -S "$ROOT" -B "${b%:*}" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON \
        -DOSP_LEAN_WORKER="${b##*:}" >/dev/null
    cmake --build "${b%:*}" -j"$(nproc)" >/dev/null
done
for r in $(seq 1 "$ROUNDS"); do
    order="shared lean"
    [ $((r % 2)) -eq 0 ] && order="lean shared"
    for v in $order; do
        b=$LEAN
        [ "$v" = shared ] && b=$SHARED
        mkdir -p "$OUT/link-$v"
        echo "round $r: $v" >&2
        timeout 900 python3 "$ROOT/tests/bench/poolbench.py" --build "$b" --out "$OUT/link-$v" \
            --runs 1 ${BENCH_QUICK:+--quick} throughput footprint >"$OUT/link-$v.r$r.log" 2>&1
    done
done
python3 - "$OUT" <<'PY'
import csv, os, statistics as st, sys
out = sys.argv[1]

def rows(v, f):
    p = os.path.join(out, "link-" + v, f + ".csv")
    return list(csv.DictReader(open(p))) if os.path.exists(p) else []

def fmt(xs, d=0):
    if not xs:
        return "–"
    xs = sorted(xs)
    f = lambda x: f"{x:,.{d}f}"
    return f"{f(st.median(xs))} ({f(xs[0])}–{f(xs[-1])})"

print("| link | start→first fetch ms | VmRSS KiB | PSS KiB | private KiB | private dirty KiB |")
print("|---|---|---|---|---|---|")
for v in ("shared", "lean"):
    fp = rows(v, "footprint")
    col = lambda k, d=0: fmt([float(r[k]) for r in fp if r[k] != ""], d)
    print(f"| {v} | {col('start_to_first_fetch_ms', 1)} | {col('rss_kib')} | {col('pss_kib')} | "
          f"{col('private_kib')} | {col('private_dirty_kib')} |")
print()
print("| jobs | workers | shared jobs/s | lean jobs/s | lean/shared per round (median) | worker CPU µs/job shared / lean |")
print("|---|---|---|---|---|---|")
for mode, w in (("inline", "1"), ("inline", "2"), ("inline", "4"), ("forked", "1")):
    s = [r for r in rows("shared", "throughput") if r["mode"] == mode and r["workers"] == w]
    l = [r for r in rows("lean", "throughput") if r["mode"] == mode and r["workers"] == w]
    js = [float(r["jobs_per_s"]) for r in s]
    jl = [float(r["jobs_per_s"]) for r in l]
    ratios = [a / b for a, b in zip(jl, js)]
    rtxt = ", ".join(f"{x:.2f}" for x in ratios) + (f" ({st.median(ratios):.2f})" if ratios else "")
    cpu = lambda rr: fmt([float(r["worker_cpu_us_per_job"]) for r in rr], 1)
    print(f"| {mode} noop | {w} | {fmt(js)} | {fmt(jl)} | {rtxt} | {cpu(s)} / {cpu(l)} |")
for w in ("1", "2"):
    s = [float(r["jobs_per_s"]) for r in rows("shared", "throughput_e2e") if r["workers"] == w]
    l = [float(r["jobs_per_s"]) for r in rows("lean", "throughput_e2e") if r["workers"] == w]
    ratios = [a / b for a, b in zip(l, s)]
    rtxt = ", ".join(f"{x:.2f}" for x in ratios) + (f" ({st.median(ratios):.2f})" if ratios else "")
    print(f"| end to end | {w} | {fmt(s)} | {fmt(l)} | {rtxt} | |")
PY
