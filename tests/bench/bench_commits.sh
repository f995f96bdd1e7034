#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_commits.sh — this tree against an earlier commit, in one run: the worker's footprint
# (private dirty, USS, PSS, VmRSS, idle and busy; start to first fetch) and pool throughput
# (inline noop 1/2/4 workers, forked noop, end to end), with the two builds alternating
# (odd rounds BASE first, even rounds this tree first) so the drift of a shared machine hits
# both. Prints medians (min–max) and the per-round this/base throughput ratios. The measuring
# is poolbench.py's (this tree's copy, for both builds).
#
#   tests/bench/bench_commits.sh BASE [ROUNDS] [OUT_DIR]     (default 3 rounds)
#
# Example: tests/bench/bench_commits.sh 463a599 3 — the ordinary link (ADR 0009) against the
# last commit with the lean link (ADR 0006).
# Builds: BASE in a git worktree under build-bench-base/ (Release), this tree in
# OSP_BENCH_BUILD or build-bench-release/. Uncommitted changes count as "this tree".
# BENCH_QUICK=1 runs poolbench's smoke sizes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BASE=${1:?usage: tests/bench/bench_commits.sh BASE [ROUNDS] [OUT_DIR]}
ROUNDS=${2:-3}
OUT=${3:-$(mktemp -d)}
HERE=${OSP_BENCH_BUILD:-$ROOT/build-bench-release}
WT=$ROOT/build-bench-base/src
BB=$ROOT/build-bench-base/build
sha=$(git -C "$ROOT" rev-parse --verify "$BASE^{commit}")
if [ "$(git -C "$WT" rev-parse HEAD 2>/dev/null || true)" != "$sha" ]; then
    git -C "$ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || rm -rf "$WT"
    git -C "$ROOT" worktree prune
    git -C "$ROOT" worktree add --detach "$WT" "$sha" >/dev/null
    rm -rf "$BB"
fi
cmake -S "$WT" -B "$BB" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON >/dev/null
cmake --build "$BB" -j"$(nproc)" >/dev/null
cmake -S "$ROOT" -B "$HERE" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON >/dev/null
cmake --build "$HERE" -j"$(nproc)" >/dev/null
quick=()
[ -n "${BENCH_QUICK:-}" ] && quick=(--quick)
for r in $(seq 1 "$ROUNDS"); do
    order="base this"
    [ $((r % 2)) -eq 0 ] && order="this base"
    for v in $order; do
        b=$HERE
        [ "$v" = base ] && b=$BB
        mkdir -p "$OUT/$v"
        echo "round $r: $v" >&2
        timeout 1800 python3 "$ROOT/tests/bench/poolbench.py" --build "$b" --out "$OUT/$v" \
            --runs 1 "${quick[@]}" throughput footprint >"$OUT/$v.r$r.log" 2>&1
    done
done
python3 - "$OUT" "$(git -C "$ROOT" rev-parse --short "$sha")" \
    "$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD || echo +)" <<'PY'
import csv, os, statistics as st, sys
out, base, this = sys.argv[1:4]

def rows(v, f):
    p = os.path.join(out, v, f + ".csv")
    return list(csv.DictReader(open(p))) if os.path.exists(p) else []

def fmt(xs, d=0):
    if not xs:
        return "–"
    xs = sorted(xs)
    f = lambda x: f"{x:,.{d}f}"
    return f"{f(st.median(xs))} ({f(xs[0])}–{f(xs[-1])})"

names = {"base": f"base {base}", "this": f"this tree {this}"}
print("| build | state | private dirty KiB | USS KiB | PSS KiB | VmRSS KiB | start→first fetch ms |")
print("|---|---|---|---|---|---|---|")
for v in ("base", "this"):
    fp = rows(v, "footprint")
    col = lambda k, d=0: fmt([float(r[k]) for r in fp if r.get(k, "") != ""], d)
    for s in ("idle", "busy"):
        print(f"| {names[v]} | {s} | {col(s + '_private_dirty_kib')} | {col(s + '_uss_kib')} | "
              f"{col(s + '_pss_kib')} | {col(s + '_rss_kib')} | "
              f"{col('start_to_first_fetch_ms', 1) if s == 'idle' else ''} |")
print()
print("| jobs | workers | base jobs/s | this jobs/s | this/base per round (median) | worker CPU µs/job base / this |")
print("|---|---|---|---|---|---|")
for mode, w in (("inline", "1"), ("inline", "2"), ("inline", "4"), ("forked", "1")):
    b = [r for r in rows("base", "throughput") if r["mode"] == mode and r["workers"] == w]
    t = [r for r in rows("this", "throughput") if r["mode"] == mode and r["workers"] == w]
    jb = [float(r["jobs_per_s"]) for r in b]
    jt = [float(r["jobs_per_s"]) for r in t]
    ratios = [x / y for x, y in zip(jt, jb)]
    rtxt = ", ".join(f"{x:.2f}" for x in ratios) + (f" ({st.median(ratios):.2f})" if ratios else "")
    cpu = lambda rr: fmt([float(r["worker_cpu_us_per_job"]) for r in rr], 1)
    print(f"| {mode} noop | {w} | {fmt(jb)} | {fmt(jt)} | {rtxt} | {cpu(b)} / {cpu(t)} |")
for w in ("1", "2"):
    b = [float(r["jobs_per_s"]) for r in rows("base", "throughput_e2e") if r["workers"] == w]
    t = [float(r["jobs_per_s"]) for r in rows("this", "throughput_e2e") if r["workers"] == w]
    ratios = [x / y for x, y in zip(t, b)]
    rtxt = ", ".join(f"{x:.2f}" for x in ratios) + (f" ({st.median(ratios):.2f})" if ratios else "")
    print(f"| end to end | {w} | {fmt(b)} | {fmt(t)} | {rtxt} | |")
PY
