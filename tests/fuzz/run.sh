#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh [SECONDS] [TARGET...] — build the libFuzzer targets with clang and run each for a
# bounded time (default 30 s each), one at a time, single-process. Fails (exit 1) when any
# target crashes, leaks, times out or runs out of memory; the crashing input is left in
# $BUILD/artifacts/<target>/ — copy it to tests/fuzz/regressions/<target>/ once fixed.
#
# Before fuzzing, every file in tests/fuzz/regressions/<target>/ is replayed. Seeds come from
# tests/fuzz/corpus/<target>/ (read-only); what the fuzzer learns goes to $BUILD/corpus/<target>/
# and is reused by the next run on the same machine.
#
# Warnings are not errors here: clang flags things in modules GCC builds cleanly.
# Environment: OSP_FUZZ_CC (default clang), OSP_FUZZ_BUILD_DIR (default <repo>/build-fuzz),
# OSP_FUZZ_JOBS (parallel build jobs, default 2).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${OSP_FUZZ_BUILD_DIR:-$src/build-fuzz}
cc=${OSP_FUZZ_CC:-clang}
seconds=${1:-30}
[ $# -gt 0 ] && shift
all="envelope mpjson validate targets config cron frames resp http httpmini"
targets=${*:-$all}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run.sh: $cc not found; fuzzing needs clang (libFuzzer)" >&2
    exit 77
fi

echo "== configure and build ($build)"
cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER="$cc" -DOSP_FUZZ=ON -DOSP_WERROR=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.configure.log" 2>&1 ||
    { cat "$build.configure.log" >&2; exit 1; }
names=""
for t in $targets; do names="$names fuzz_$t"; done
# shellcheck disable=SC2086 # one word per target
cmake --build "$build" -j "${OSP_FUZZ_JOBS:-2}" --target $names >"$build.build.log" 2>&1 ||
    { grep -E "error|Error" "$build.build.log" | head -20 >&2;
      echo "run.sh: build failed (full log: $build.build.log)" >&2; exit 1; }

# Largest input per target: big enough for the structure, small enough to stay fast.
max_len() {
    case $1 in
    cron) echo 256 ;;
    config) echo 4096 ;;
    httpmini) echo 12288 ;; # past the 8 KiB head limit
    envelope | frames) echo 16384 ;;
    *) echo 8192 ;;
    esac
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=""
for t in $targets; do
    bin="$build/tests/fuzz/fuzz_$t"
    work="$build/corpus/$t"
    art="$build/artifacts/$t/"
    mkdir -p "$work" "$art"
    dict=""
    [ -f "$here/dict/$t.dict" ] && dict="-dict=$here/dict/$t.dict"
    log="$build/fuzz_$t.log"

    reg="$here/regressions/$t"
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg" 2>/dev/null)" ]; then
        echo "== fuzz_$t: replaying regressions"
        if ! "$bin" -runs=1 -timeout=5 -rss_limit_mb=2048 "$reg"/* >"$log.replay" 2>&1; then
            tail -30 "$log.replay" >&2
            failed="$failed $t(regression)"
            continue
        fi
    fi

    echo "== fuzz_$t: ${seconds}s, max_len $(max_len "$t")"
    # One in-process fuzzer, one thread: no -jobs/-workers (with them libFuzzer forks workers
    # that log to ./fuzz-N.log). The machine is shared; targets run one after another.
    # shellcheck disable=SC2086 # $dict is empty or one word
    if "$bin" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=5 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art" \
        $dict "$work" "$here/corpus/$t" >"$log" 2>&1; then
        grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$log" | tr '\n' ' '
        echo
    else
        grep -E "ERROR|SUMMARY|fuzz invariant|Test unit written" "$log" | head -8 >&2
        echo "   full log: $log" >&2
        failed="$failed $t"
    fi
done

if [ -n "$failed" ]; then
    echo "run.sh: FAILED:$failed" >&2
    exit 1
fi
echo "run.sh: all targets passed"
