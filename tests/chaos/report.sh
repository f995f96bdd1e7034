#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# report.sh — run the chaos suite and print the reliability table of docs/reliability.md.
#
#   OSP_BIN_DIR=build tests/chaos/report.sh [--runs N] [--only NAME] [--out FILE]
#   tests/chaos/report.sh --from FILE...      (just tabulate CHAOS lines already collected)
#
# Each test prints one machine-readable line:
#   CHAOS fault=<name> runs=1 jobs=N lost=L duplicates=D interrupted=I recovery_ms=R dup_source=S
# Lines of the same fault are summed (runs, jobs, lost, duplicates, interrupted); recovery is
# the worst run. Starts the test servers (tests/support/servers.sh) in a temporary directory
# and stops them at the end. OSP_CHAOS_JOBS / OSP_CHAOS_SEED are passed through. Exit status:
# 0 when every test passed and every row says lost = 0.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
runs=1 only="" out="" from=()
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --from) shift; from=("$@"); break ;;
    *) echo "usage: $0 [--runs N] [--only NAME] [--out FILE] | --from FILE..." >&2; exit 2 ;;
    esac
done

table() {
    awk '
    /^CHAOS / {
        delete f
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        k = f["fault"]
        if (!(k in runs)) order[++n] = k
        runs[k] += f["runs"]; jobs[k] += f["jobs"]; lost[k] += f["lost"]
        dup[k] += f["duplicates"]; intr[k] += f["interrupted"]
        if (f["recovery_ms"] + 0 > rec[k] + 0) rec[k] = f["recovery_ms"]
        if (!(k in seen)) { seen[k] = 1; src[k] = f["dup_source"] }
        else if (src[k] != f["dup_source"]) src[k] = "mixed"
    }
    END {
        print "| fault | runs | jobs | lost | duplicates | interrupted attempts (bound) | recovery (worst, ms) | executions counted from |"
        print "|---|---:|---:|---:|---:|---:|---:|---|"
        for (i = 1; i <= n; i++) {
            k = order[i]
            printf "| %s | %d | %d | %d | %d | %d | %d | %s |\n", k, runs[k], jobs[k], lost[k], dup[k], intr[k], rec[k], src[k]
            bad += lost[k]
        }
        exit bad > 0
    }' "$@"
}

if [ ${#from[@]} -gt 0 ]; then
    table "${from[@]}"
    exit $?
fi

: "${OSP_BIN_DIR:?OSP_BIN_DIR: the build directory holding opspool-worker, opspoolctl, osp-chaos-load}"
export OSP_BIN_DIR OSP_SRC_DIR=$src
work=$(mktemp -d /tmp/osp-chaos-report.XXXXXX)
lines=${out:-$work/chaos.lines}
: >"$lines"
trap '"$src/tests/support/servers.sh" stop "$work/servers" >/dev/null 2>&1 || true; rm -rf "$work/servers"' EXIT
"$src/tests/support/servers.sh" start "$work/servers"
failed=0
for t in "$here"/test_*.sh; do
    name=$(basename "$t" .sh)
    [ -z "$only" ] || [ "$name" = "$only" ] || continue
    for r in $(seq 1 "$runs"); do
        printf '%s run %d ... ' "$name" "$r" >&2
        rc=0
        OSP_CHAOS_OUT=$lines OSP_CHAOS_SEED=$(( ${OSP_CHAOS_SEED:-42} + r - 1 )) \
            "$src/tests/support/with-servers.sh" "$work/servers" "$name" bash "$t" >"$work/$name.$r.log" 2>&1 || rc=$?
        case $rc in
        0) echo ok >&2 ;;
        77) echo skipped >&2 ;;
        *) echo "FAILED (rc $rc; log: $work/$name.$r.log)" >&2; failed=1 ;;
        esac
    done
done
table "$lines" || failed=1
echo >&2 "CHAOS lines: $lines"
exit $failed
