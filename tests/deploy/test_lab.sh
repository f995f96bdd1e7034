#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_lab.sh — `deploy/local/lab run` as the smoke test it promises to be, on this build (no
# release build of its own) and in a temporary state directory:
#   - an unknown flag is refused (exit 2) before anything starts;
#   - `run --keep` exits 0, every job ended as expected (the dead noop is marked on purpose),
#     both a restart and a latency drill passed on the lab's target;
#   - the env file it writes points opspoolctl, psql and curl at the running stack;
#   - the lab's scale-out presets run (instances of the shortener from local.instance);
#   - a benchmark that breaches a threshold, submitted to the kept stack, makes `lab check`
#     exit 1 and name it; `lab stop` stops everything.
# Bounded: the lab run has a timeout; the stack is stopped on exit.
set -euo pipefail
SRC=${OSP_SRC_DIR:?run via ctest}
BIN=${OSP_BIN_DIR:?run via ctest}
[ -x "$BIN/opspool-worker" ] && [ -x "$BIN/tools/opspool-shortener" ] || { echo "binaries missing" >&2; exit 77; }
command -v jq >/dev/null || { echo "jq missing" >&2; exit 77; }
T=$(mktemp -d)
LAB=(env OSP_LAB_STATE="$T/state" OSP_LAB_BUILD_DIR="$BIN" bash "$SRC/deploy/local/lab")
trap '"${LAB[@]}" stop >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() {
    echo "FAIL: $*" >&2
    for f in "$T"/*.out; do [ -f "$f" ] && { echo "--- $f" >&2; tail -40 "$f" >&2; }; done
    exit 1
}

rc=0
"${LAB[@]}" run --kep >"$T/flag.out" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "run --kep: exit $rc, want 2"
grep -q "unknown argument '--kep'" "$T/flag.out" || fail "run --kep: no message naming the flag"
[ ! -d "$T/state/stack" ] || fail "run --kep started something"
ok "an unknown flag is refused with exit 2, nothing started"

rc=0
timeout 600 "${LAB[@]}" run --keep >"$T/run.out" 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "lab run --keep: exit $rc"
grep -q "^lab run: every job ended as expected" "$T/run.out" || fail "no verdict line"
grep -q "all finished within" "$T/run.out" || fail "not all finished"
grep -q "yes (on purpose)" "$T/run.out" || fail "the dead noop is not marked as expected"
ok "lab run --keep exits 0: every job ended as expected"

[ -f "$T/state/env.sh" ] || fail "no env file"
grep -q "$T/state/env.sh" "$T/run.out" || fail "the summary does not name the env file"
(
    set -euo pipefail
    # shellcheck disable=SC1091
    . "$T/state/env.sh"
    [ "$(command -v opspoolctl)" = "$BIN/opspoolctl" ] || exit 11
    opspoolctl queues --json | jq -e 'map(.kind) | index("drill") != null' >/dev/null || exit 12
    drills=$(psql -qAtX -c "SELECT string_agg(fault || ':' || verdict, ' ' ORDER BY fault) FROM opspool.drill_results")
    [ "$drills" = "latency:pass restart:pass" ] || { echo "drills: $drills" >&2; exit 13; }
    curl -fsS -H "Authorization: Bearer $OPSPOOL_TOKEN" "$OPSPOOL_API/v1/queues" | jq -e '.queues | length > 0' >/dev/null || exit 14
    # The console the summary names: the lab's token logs in, the overview lists the drills.
    grep -q "^The web console (docs/console.md): $OPSPOOL_API/ui/ " "$T/run.out" || exit 16
    curl -fsS -o /dev/null -c "$T/ui.jar" --data-urlencode "token=$OPSPOOL_TOKEN" "$OPSPOOL_API/ui/login" || exit 17
    curl -fsS -b "$T/ui.jar" "$OPSPOOL_API/ui/" | grep -q ">drill<" || exit 18
    id=$(opspoolctl submit benchmark --max-attempts 3 \
        --payload '{"target": "shortener", "lanes": [{"name": "tiny", "connections": 1, "requests": 20,
                    "requests_mix": [{"path": "/health"}]}], "thresholds": ["p50<0.0001ms"]}')
    echo "$id" >"$T/bad.id"
    for _ in $(seq 1 600); do
        st=$(psql -qAtX -c "SELECT state FROM opspool.jobs WHERE id = '$id'")
        [ "$st" = failed ] && exit 0
        sleep 0.1
    done
    echo "breaching benchmark: state $st" >&2
    exit 15
) >"$T/env.out" 2>&1 || fail "the env file does not reach the stack (step $?)"
ok "the env file points opspoolctl, psql and curl at the stack; the console it names logs in; restart and latency drills passed"

# The lab's scale-out presets: its target starts shortener instances from local.instance.
(
    set -euo pipefail
    # shellcheck disable=SC1091
    . "$T/state/env.sh"
    id=$(opspoolctl submit benchmark --payload '{"target": "shortener", "lanes": ["scale-x1", "scale-x2"]}')
    for _ in $(seq 1 600); do
        st=$(psql -qAtX -c "SELECT state FROM opspool.jobs WHERE id = '$id'")
        case $st in succeeded) break ;; failed | dead | cancelled) echo "scale-out job: $st" >&2; exit 21 ;; esac
        sleep 0.1
    done
    [ "$st" = succeeded ] || { echo "scale-out job: state $st" >&2; exit 22; }
    rows=$(psql -qAtX -c "SELECT string_agg(lane || ':' || replicas, ' ' ORDER BY lane)
                          FROM opspool.benchmark_results WHERE job_id = '$id'")
    [ "$rows" = "scale-x1:1 scale-x2:2" ] || { echo "rows: $rows" >&2; exit 23; }
) >"$T/scale.out" 2>&1 || fail "the lab's scale-out presets (step $?)"
ok "the lab's target runs scale-out lanes (presets scale-x1, scale-x2)"

rc=0
"${LAB[@]}" check >"$T/check.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "lab check after a breached threshold: exit $rc, want 1"
grep -q "$(cat "$T/bad.id")" "$T/check.out" || fail "lab check does not name the failed job"
grep -q "1 unexpected" "$T/check.out" || fail "lab check: $(cat "$T/check.out")"
ok "a failed verdict makes lab check exit 1 and name the job"

"${LAB[@]}" stop >/dev/null 2>&1
[ ! -f "$T/state/pids" ] || fail "lab stop left its pid file"
ok "lab stop"
echo "$n passed, 0 failed"
