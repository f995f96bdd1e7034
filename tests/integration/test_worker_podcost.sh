#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The worker keeps its pod's controller.kubernetes.io/pod-deletion-cost at busy slots x 100
# (worker/podcost.c), against the stand-in API server (tests/support/kubeapi_standin.py, HTTPS
# with a throwaway CA, which checks each PATCH's method, path, Content-Type
# application/merge-patch+json, bearer token and body, and records the values). Scenarios:
# off without OSP_POD_NAME (no request); start-up writes 0; positive while busy, "0" again once
# idle; debounced (a burst of 24 busy<->idle changes -> a handful of requests, requests at least
# ~3 s apart, none while the value is unchanged); a rotated token is re-read (401, retried with
# the new one); a 403 (missing RBAC) is logged once, not per attempt; with the API server down
# jobs run normally, the connection error is logged once, and the worker drains and exits 0.
. "$OSP_SRC_DIR/tests/support/lib.sh"

for t in jq curl openssl python3; do command -v $t >/dev/null || { echo "$t missing" >&2; exit 77; }; done

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/ca.crt" 2>/dev/null ||
    fail "openssl could not make a certificate"
TOKEN_FILE=$TMP/token
echo "tok-initial-$$" >"$TOKEN_FILE"
python3 "$SRC/tests/support/kubeapi_standin.py" --port-file "$TMP/api.port" --token-file "$TOKEN_FILE" \
    --cert "$TMP/ca.crt" --key "$TMP/key.pem" >>"$TMP/standin.log" 2>&1 &
STANDIN=$!
PIDS+=("$STANDIN")
wait_until 10 test -s "$TMP/api.port" || fail "stand-in did not start"
API=https://127.0.0.1:$(cat "$TMP/api.port")
ok "stand-in API at $API"

POD=opspool-worker-noop-5d8f7c9b6-x2k9q
PODPATH=/api/v1/namespaces/opspool/pods/$POD
ctl() { curl -sS --cacert "$TMP/ca.crt" "$@"; }
reset() { ctl -X POST -H 'Content-Type: application/json' -d "$1" "$API/_standin/reset" >/dev/null || fail "stand-in reset"; }
SCENARIO="{\"namespace\": \"opspool\", \"pods\": [\"$POD\"]"
reset "$SCENARIO}"
log() { ctl "$API/_standin/log"; }
lq() { log | jq -r "$1"; }
npatch() { lq '[.requests[] | select(.method == "PATCH")] | length'; }
last_cost() { lq '[.requests[] | select(.method == "PATCH" and .status == 200)] | last | .cost // ""'; }
check_api() { [ "$(lq "$1")" = true ] || fail "$2 ($1) — requests: $(lq '[.requests[] | {n, method, path, status, cost, token_ok}]' | head -c 3000)"; ok "$2"; }
clean() { check_api '.violations == []' "$1: no request-shape violations"; }
all_succeeded() { # all_succeeded ID... — prints true when every job succeeded
    local list; list=$(printf "'%s'," "$@"); list=${list%,}
    [ "$(q "SELECT count(*) FROM opspool.jobs WHERE state = 'succeeded' AND id IN ($list)")" = $# ] && echo true
}
submit() { "$CTL" submit noop --payload "$1"; }
# The worker starts at most one request per 3 s (worker/podcost.c); after this long without one,
# the next busy change goes out at once (leading edge) instead of coalescing with later ones.
past_window() { sleep 3.2; }
K8S=(OSP_K8S_API="$API" OSP_K8S_TOKEN_FILE="$TOKEN_FILE" OSP_K8S_CA_FILE="$TMP/ca.crt")
"$CTL" migrate >/dev/null

# ---- off: without OSP_POD_NAME the worker makes no API call ----
start_worker off OSP_WORKER_SLOTS=1 OSP_LEASE_MS=3000 "${K8S[@]}"
W=$LAST_PID
id=$(submit '{"sleep_ms": 300}')
wait_eq 30 succeeded job_state "$id" || fail "job under the worker without OSP_POD_NAME did not succeed"
sleep 1
assert_eq 0 "$(lq '.requests | length')" "no OSP_POD_NAME: no API request"
grep -q "pod deletion cost" "$TMP/off.log" && fail "the feature logged although it is off"
ok "no OSP_POD_NAME: nothing logged about the pod deletion cost"
kill -TERM "$W"; wait_exit "$W" 20; assert_eq 0 "$EXIT_RC" "that worker drains and exits 0"

# ---- on: start-up writes 0, busy -> positive, idle -> "0" ----
start_worker pc OSP_WORKER_SLOTS=2 OSP_LEASE_MS=3000 OSP_POD_NAME=$POD OSP_POD_NAMESPACE=opspool "${K8S[@]}"
W=$LAST_PID
wait_eq 30 0 last_cost || fail "no start-up PATCH to 0 (last cost '$WAIT_GOT')"
ok "start-up: the annotation is written once as \"0\" (a restarted container may find a stale value)"
past_window
a=$(submit '{"sleep_ms": 1500}'); b=$(submit '{"sleep_ms": 1500}')
wait_ge 15 100 last_cost || fail "cost never went positive while busy (last '$WAIT_GOT')"
ok "busy: pod-deletion-cost = $(last_cost) (busy slots x 100)"
wait_eq 30 true all_succeeded "$a" "$b" || fail "the two 1.5 s jobs did not succeed"
wait_eq 15 0 last_cost || fail "cost did not return to 0 after idle (last '$WAIT_GOT')"
ok "idle: pod-deletion-cost back to \"0\""
check_api "[.requests[] | select(.method == \"PATCH\")] | all(.path == \"$PODPATH\" and .content_type == \"application/merge-patch+json\" and .token_ok and .status == 200)" \
    "every PATCH: own pod's path, merge-patch+json, current bearer token, 200"
check_api '[.requests[] | select(.method == "PATCH") | .body] | all(keys == ["metadata"] and (.metadata | keys) == ["annotations"] and (.metadata.annotations | keys) == ["controller.kubernetes.io/pod-deletion-cost"] and (.metadata.annotations[] | test("^[0-9]+$")))' \
    "every body holds the annotation and nothing else"
clean busy_idle

# ---- debounced: a burst of short jobs, few requests, spaced, none while unchanged ----
past_window
n0=$(npatch)
ids=()
for i in $(seq 12); do ids+=("$(submit '{"sleep_ms": 200}')"); done
wait_eq 60 true all_succeeded "${ids[@]}" || fail "the burst's jobs did not all succeed"
wait_eq 15 0 last_cost || fail "cost did not settle at 0 after the burst (last '$WAIT_GOT')"
n1=$(npatch)
[ $((n1 - n0)) -ge 1 ] && [ $((n1 - n0)) -le 4 ] || fail "12 jobs (24 busy<->idle changes) made $((n1 - n0)) requests, want 1..4"
ok "debounced: 24 busy<->idle changes -> $((n1 - n0)) requests"
check_api '[.requests[] | select(.method == "PATCH") | .t] | [range(1; length) as $i | .[$i] - .[$i - 1]] | all(. >= 2.5)' \
    "requests start at least ~3 s apart"
sleep 4
assert_eq "$n1" "$(npatch)" "idle and unchanged: no request in 4 s"
[ -z "$(ps -o stat= --ppid "$W" | grep Z || true)" ] || fail "the worker left zombie request processes"
ok "request processes are reaped (no zombies)"
clean debounce

# ---- token rotation: the first request after the reset rotates it and is answered 401 ----
reset "$SCENARIO, \"rotate_at\": 1}"
c=$(submit '{"sleep_ms": 1500}')
wait_ge 15 100 last_cost || fail "no accepted PATCH after the rotation (last '$WAIT_GOT')"
check_api '.requests[0].method == "PATCH" and .requests[0].status == 401 and .requests[0].rotated' \
    "rotation: the request with the old token got 401"
check_api '.requests[1].method == "PATCH" and .requests[1].token_ok and .requests[1].status == 200 and .requests[1].body == .requests[0].body' \
    "the token file was re-read and the same update retried with the new token"
wait_eq 30 true all_succeeded "$c" || fail "job during the rotation did not succeed"
wait_eq 15 0 last_cost || fail "cost did not return to 0 after the rotation (last '$WAIT_GOT')"
check_api '[.requests[2:][] | .token_ok] | all' "later requests use the new token"
grep -q "tok-initial-$$\|rotated-" "$TMP/pc.log" && fail "a token leaked into the worker's log"
ok "no token in the worker's log"
clean rotation

# ---- 403 (the Role missing): logged once, not per attempt ----
reset "$SCENARIO, \"patch_forbidden\": true}"
past_window
d=$(submit '{"sleep_ms": 4500}')
wait_ge 15 2 npatch || fail "expected two attempts while busy (got '$WAIT_GOT')"
check_api '[.requests[] | .status] | all(. == 403)' "the API answered 403 Forbidden"
wait_eq 30 true all_succeeded "$d" || fail "job under a 403 did not succeed"
ok "403: the job ran normally"
assert_eq 1 "$(grep -c 'pod deletion cost not updated.*cannot patch resource' "$TMP/pc.log" || true)" \
    "403: logged once with the API's message, not per attempt"
clean forbidden

# ---- API server down: jobs run, the worker drains and exits normally ----
kill -9 "$STANDIN"; wait "$STANDIN" 2>/dev/null || true
ids=()
for i in $(seq 6); do ids+=("$(submit '{"sleep_ms": 300}')"); done
wait_eq 60 true all_succeeded "${ids[@]}" || fail "jobs did not run with the API server down"
kill -0 "$W" || fail "the worker died with the API server down"
ok "API server down: the running worker keeps running jobs"
kill -TERM "$W"; wait_exit "$W" 30; assert_eq 0 "$EXIT_RC" "it drains and exits 0 (a request in flight is no obstacle)"

DEAD=https://127.0.0.1:$(free_port) # nothing listens there
start_worker down OSP_WORKER_SLOTS=2 OSP_LEASE_MS=3000 OSP_POD_NAME=$POD OSP_POD_NAMESPACE=opspool \
    OSP_K8S_API="$DEAD" OSP_K8S_TOKEN_FILE="$TOKEN_FILE" OSP_K8S_CA_FILE="$TMP/ca.crt"
W=$LAST_PID
ids=()
for i in $(seq 6); do ids+=("$(submit '{"sleep_ms": 1000}')"); done
wait_eq 60 true all_succeeded "${ids[@]}" || fail "jobs did not run under a worker whose API server is down"
ok "API server down from the start: all 6 jobs succeeded"
assert_eq 1 "$(grep -c 'pod deletion cost not updated' "$TMP/down.log" || true)" \
    "the connection error is logged once, not per attempt"
kill -TERM "$W"; wait_exit "$W" 30; assert_eq 0 "$EXIT_RC" "that worker drains and exits 0"
finish
