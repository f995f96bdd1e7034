#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Honest tails: opspool-loadgen against osp-stallserver frozen (SIGSTOP) from 0.5 s into a
# 1.5 s run until after it ends, so the stall straddles the end of the run:
#   - closed model: the requests in flight at the end are counted (in_flight_at_end = the
#     connections) and recorded at their elapsed time: the max latency shows the ~1 s stall
#     (before, they vanished and the figures looked clean);
#   - open model: the intended requests never sent are counted as dropped and recorded at
#     their wait, p99 shows the stall, the achieved ratio measures the send schedule, and the
#     run exits 1 because it fell short of its rate; the text output says so;
#   - without a stall the open model keeps its schedule and exits 0.
# The assertions are lower bounds set by the stall itself (a slow machine only adds to them).
. "$OSP_SRC_DIR/tests/support/lib.sh"

LG=$BIN/tools/opspool-loadgen
SS=$BIN/tests/support/osp-stallserver
[ -x "$LG" ] && [ -x "$SS" ] || { echo "opspool-loadgen / osp-stallserver not built" >&2; exit 77; }
command -v jq >/dev/null || { echo "jq missing" >&2; exit 77; }

"$SS" --port 0 --stall-every-ms 0 >"$TMP/ss.out" 2>&1 &
SRV=$!
PIDS+=("$SRV")
wait_until 10 grep -q '^port ' "$TMP/ss.out" || fail "stall server did not start"
URL="http://127.0.0.1:$(awk '/^port /{print $2; exit}' "$TMP/ss.out")/"

# run NAME ARGS... — loadgen with the server frozen from 0.5 s until after the run.
run_stalled() {
    local name=$1; shift
    ( sleep 0.5; kill -STOP "$SRV" ) &
    local stopper=$!
    local rc=0
    timeout 30 "$LG" "$@" "$URL" >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
    wait "$stopper" 2>/dev/null || true
    kill -CONT "$SRV"
    echo "$rc" >"$TMP/$name.rc"
}
j() { jq -r "$2" "$TMP/$1.out"; }

run_stalled closed -c 4 -d 1.5 --timeout 20000 --json
assert_eq 0 "$(cat "$TMP/closed.rc")" "closed run exits 0"
assert_eq 4 "$(j closed .in_flight_at_end)" "closed: the 4 requests caught by the stall are counted in flight at the end"
jq -e '.latency_ms.max >= 700' "$TMP/closed.out" >/dev/null || fail "closed: max $(j closed .latency_ms.max) ms does not show the stall"
ok "closed: the stall straddling the end is in the latency figures (max $(j closed .latency_ms.max) ms)"
assert_eq "$(j closed '.responses + .in_flight_at_end')" "$(j closed .latency_ms.count)" "closed: every response and every unfinished request is recorded"

run_stalled open -R 200 -c 4 -d 1.5 --timeout 20000 --json
assert_eq 1 "$(cat "$TMP/open.rc")" "open run short of its rate exits 1"
grep -q "could not keep the rate" "$TMP/open.err" || fail "open: no message about the rate: $(cat "$TMP/open.err")"
ok "open: says it could not keep the rate"
jq -e '.dropped >= 100' "$TMP/open.out" >/dev/null || fail "open: dropped $(j open .dropped)"
jq -e '.achieved_ratio < 0.95 and .achieved_ratio == (.issued / (.issued + .dropped))' "$TMP/open.out" >/dev/null ||
    fail "open: achieved_ratio $(j open .achieved_ratio) (issued $(j open .issued), dropped $(j open .dropped))"
ok "open: achieved ratio $(j open .achieved_ratio) measures the schedule (issued / intended)"
jq -e '.latency_ms.p99 >= 500' "$TMP/open.out" >/dev/null || fail "open: p99 $(j open .latency_ms.p99) ms hides the stall"
ok "open: p99 $(j open .latency_ms.p99) ms shows the stall"
assert_eq "$(j open '.responses + .in_flight_at_end + .dropped')" "$(j open .latency_ms.count)" "open: responses, unfinished and dropped requests are all in the corrected figures"

# The same text a user reads.
run_stalled opentext -R 200 -c 4 -d 1.5 --timeout 20000
grep -q "in flight at the end" "$TMP/opentext.out" || fail "text output lacks the in-flight count: $(cat "$TMP/opentext.out")"
grep -q "target rate 200.00/s, achieved ratio" "$TMP/opentext.out" || fail "text output lacks the target rate"
grep -q "SHORT OF THE RATE" "$TMP/opentext.out" || fail "text output does not flag the shortfall"
ok "text output: in-flight count, target rate, achieved ratio, shortfall"

rc=0
timeout 30 "$LG" -R 200 -c 4 -d 2 --json "$URL" >"$TMP/calm.out" || rc=$?
assert_eq 0 "$rc" "open model without a stall exits 0"
jq -e '.achieved_ratio >= 0.95 and .dropped == 0' "$TMP/calm.out" >/dev/null || fail "calm: $(cat "$TMP/calm.out")"
ok "open model without a stall keeps its schedule"
finish
