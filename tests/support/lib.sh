#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lib.sh — helpers for process-level integration tests (sourced). Every wait is bounded,
# every process started is killed on exit. Expects the environment from with-servers.sh.
set -euo pipefail

BIN=${OSP_BIN_DIR:?OSP_BIN_DIR}
SRC=${OSP_SRC_DIR:?OSP_SRC_DIR}
TMP=${OSP_TEST_TMP:-$(mktemp -d)}
WORKER=$BIN/opspool-worker
CTL=$BIN/opspoolctl
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export OSP_LOG_LEVEL=${OSP_LOG_LEVEL:-info}
# shellcheck source=tests/support/ports.sh
. "$SRC/tests/support/ports.sh"
PIDS=()
NPASS=0
NFAIL=0

cleanup_pids() {
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
    done
}
trap cleanup_pids EXIT

say() { printf '# %s\n' "$*" >&2; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    for f in "$TMP"/*.log "$TMP"/*/*.log; do
        [ -f "$f" ] || continue
        printf -- '--- %s (last 30 lines)\n' "$f" >&2
        tail -n 30 "$f" >&2
    done
    exit 1
}
ok() { NPASS=$((NPASS + 1)); printf 'ok %d - %s\n' "$NPASS" "$*"; }
assert_eq() { # assert_eq EXPECTED ACTUAL WHAT
    [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
    ok "$3"
}
# wait_until SECONDS CMD... — poll every 50 ms; fail the test on timeout.
wait_until() {
    local t=$1; shift
    local end=$(( $(date +%s%N) + t * 1000000000 ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.05
    done
}
# wait_eq SECONDS EXPECTED CMD... — re-run CMD every 50 ms until its output equals EXPECTED.
wait_eq() {
    local t=$1 want=$2; shift 2
    local end=$(( $(date +%s%N) + t * 1000000000 )) got
    while :; do
        got=$("$@" 2>/dev/null || true)
        [ "$got" = "$want" ] && return 0
        [ "$(date +%s%N)" -lt "$end" ] || { WAIT_GOT=$got; return 1; }
        sleep 0.05
    done
}
# wait_ge SECONDS MIN CMD... — until CMD's numeric output is >= MIN.
wait_ge() {
    local t=$1 want=$2; shift 2
    local end=$(( $(date +%s%N) + t * 1000000000 )) got
    while :; do
        got=$("$@" 2>/dev/null || true)
        [ -n "$got" ] && [ "$got" -ge "$want" ] 2>/dev/null && return 0
        [ "$(date +%s%N)" -lt "$end" ] || { WAIT_GOT=$got; return 1; }
        sleep 0.05
    done
}
job_state() { q "SELECT state FROM opspool.jobs WHERE id = '$1'"; }

finish() {
    printf '%d passed, %d failed\n' "$NPASS" "$NFAIL"
}

q() { psql "$OSP_PG_DSN" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
rcli() {
    local u=${OSP_REDIS_URL#unix://}
    if [ "$u" != "$OSP_REDIS_URL" ]; then redis-cli -s "$u" "$@"; else redis-cli -u "$OSP_REDIS_URL" "$@"; fi
}
P=$OSP_PREFIX

# start_worker NAME [ENV=VAL...] [-- ARGS...] — background worker logging to $TMP/NAME.log;
# sets LAST_PID.
start_worker() {
    local name=$1; shift
    local envs=() args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
    [ "${1:-}" = "--" ] && { shift; args=("$@"); }
    env "${envs[@]}" "$WORKER" "${args[@]}" >>"$TMP/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
# wait_exit PID SECONDS — wait for a background process of this shell; sets EXIT_RC to its
# exit status, or "timeout". Not for use inside $(...): a subshell cannot wait for it.
wait_exit() {
    local pid=$1 end=$(( $(date +%s) + $2 ))
    EXIT_RC=timeout
    while kill -0 "$pid" 2>/dev/null; do
        [ "$(date +%s)" -lt "$end" ] || return 0
        sleep 0.05
    done
    EXIT_RC=0
    wait "$pid" || EXIT_RC=$?
}
count_state() { q "SELECT count(*) FROM opspool.jobs WHERE state = '$1'"; }
