#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Scale-out lanes of the benchmark kind on the Kubernetes adapter, against the stand-in API
# server (tests/support/kubeapi_standin.py, HTTPS with a throwaway CA). The stand-in plays the
# Deployment's controller (observedGeneration lags a poll, ready pods come one per poll, zero
# counts left out) and checks every request against the API's shapes; each scenario ends by
# asserting it recorded no violation. The lanes' load goes to osp-healthserver (base_url, the
# "Service"). Scenarios:
#   1. lanes at 1 and 3 replicas: Deployment read through the scale subresource, PATCHed (merge
#      patch) to 1, awaited, restored to 2, awaited; the same for 3; the result shows replicas,
#      the scaling efficiency and the baseline lane; the rows carry them; the shape differs.
#   2. a breached threshold: the verdict fails and the Deployment is back at 2.
#   3. cancel (SIGTERM to the child, the worker's cancel and drain path) mid-lane: restored to
#      2 inside the kill grace, not awaited.
#   4. readiness never reached within scale_ready_timeout_s: a clear error, restored, no lane.
#   5. a Deployment the Role does not name (403): a clear error, nothing PATCHed.
#   6. bad specs refused before any API call: replicas 0, 65, "3", and a target without
#      kubernetes.deployment.
#   7. the stand-in refuses malformed scale PATCHes the way the API does (so 1-5 mean something).
# Runs in-process (osp-run-child --inline 1) where no signal is needed, so LeakSanitizer checks
# the adapter's memory. Bounded: every wait has a timeout, every lane a request count.
. "$OSP_SRC_DIR/tests/support/lib.sh"

RUN=$BIN/osp-run-child
HS=$BIN/osp-healthserver
[ -x "$RUN" ] && [ -x "$HS" ] || { echo "osp-run-child / osp-healthserver not built" >&2; exit 77; }
for t in jq curl openssl python3; do command -v $t >/dev/null || { echo "$t missing" >&2; exit 77; }; done

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/ca.crt" 2>/dev/null ||
    fail "openssl could not make a certificate"
TOKEN_FILE=$TMP/token
echo "tok-bench-$$" >"$TOKEN_FILE"
python3 "$SRC/tests/support/kubeapi_standin.py" --port-file "$TMP/api.port" --token-file "$TOKEN_FILE" \
    --cert "$TMP/ca.crt" --key "$TMP/key.pem" >>"$TMP/standin.log" 2>&1 &
PIDS+=("$!")
"$HS" --port 0 --port-file "$TMP/hs.port" >>"$TMP/hs.log" 2>&1 &
PIDS+=("$!")
HP=$(port_from_file "$TMP/hs.port" 10) || fail "health server did not start"
wait_until 10 test -s "$TMP/api.port" || fail "stand-in did not start"
API=https://127.0.0.1:$(cat "$TMP/api.port")
ok "stand-in API at $API, service on $HP"

T=$TMP/targets.json
K8S="\"namespace\": \"shop\", \"api_server\": \"$API\", \"token_file\": \"$TOKEN_FILE\", \"ca_file\": \"$TMP/ca.crt\", \"timeout_ms\": 3000"
cat >"$T" <<EOF
{"targets": {
  "shop": {"adapter": "kubernetes", "base_url": "http://127.0.0.1:$HP", "health_path": "/health",
           "kubernetes": {$K8S, "selector": "app=shortener", "deployment": "shortener", "scale_ready_timeout_s": 20}},
  "slow": {"adapter": "kubernetes", "base_url": "http://127.0.0.1:$HP", "health_path": "/health",
           "kubernetes": {$K8S, "deployment": "shortener", "scale_ready_timeout_s": 2}},
  "other": {"adapter": "kubernetes", "base_url": "http://127.0.0.1:$HP", "health_path": "/health",
            "kubernetes": {$K8S, "deployment": "billing"}},
  "nodeploy": {"adapter": "kubernetes", "base_url": "http://127.0.0.1:$HP", "health_path": "/health",
               "kubernetes": {$K8S, "selector": "app=shortener"}}}}
EOF

ctl() { curl -sS --cacert "$TMP/ca.crt" "$@"; }
reset() { ctl -X POST -H 'Content-Type: application/json' -d "$1" "$API/_standin/reset" >/dev/null || fail "stand-in reset"; }
log() { ctl "$API/_standin/log"; }
DEPLOY='"deployments": {"shortener": {"replicas": 2}, "billing": {"replicas": 1}}'
JOB=0190f2a4-1b2c-7d3e-8f40-0000000000b1
bench() { # bench NAME PAYLOAD [osp-run-child args...]
    local name=$1 payload=$2; shift 2
    "$RUN" --kind benchmark --targets "$T" --job-id "$JOB" --timeout-s 120 --inline 1 --payload "$payload" "$@" \
        >"$TMP/$name.json" 2>>"$TMP/$name.log" || fail "$name: the child did not finish its report"
    log >"$TMP/$name.api.json"
}
j() { jq -r "$2" "$TMP/$1.json"; }
a() { jq -r "$2" "$TMP/$1.api.json"; }
check() { [ "$(j "$1" "$2")" = true ] || fail "$1: $3 ($2) — report: $(j "$1" '{status, error, result, events: [.events[] | select(.type != "lane")]}' | head -c 3000)"; ok "$1: $3"; }
check_api() { [ "$(a "$1" "$2")" = true ] || fail "$1: $3 ($2) — requests: $(a "$1" '{requests: [.requests[] | {method, path, status, body}], violations, deployments, scale_history}' | head -c 3000)"; ok "$1: $3"; }
clean() { check_api "$1" '.violations == []' "no request-shape violations"; }
LANE='"connections": 3, "requests": 300, "engines": 1'

# ---- 1. lanes at 1 and 3 replicas ----
reset "{$DEPLOY}"
bench scale "{\"target\": \"shop\", \"lanes\": [{\"name\": \"x1\", $LANE, \"replicas\": 1}, {\"name\": \"x3\", $LANE, \"replicas\": 3}]}"
check scale '.status == 0 and .result.passed' "job passed"
check_api scale '.scale_history == [{"name": "shortener", "replicas": 1}, {"name": "shortener", "replicas": 2}, {"name": "shortener", "replicas": 3}, {"name": "shortener", "replicas": 2}]' "Deployment scaled 2 -> 1 -> 2 -> 3 -> 2"
check_api scale '.deployments.shortener == {"spec": 2, "replicas": 2, "ready": 2}' "Deployment back at its original 2 replicas, all ready"
check_api scale '[.requests[] | select(.method == "PATCH")] | length == 4 and all(.path == "/apis/apps/v1/namespaces/shop/deployments/shortener/scale" and .content_type == "application/merge-patch+json" and (.body | keys) == ["spec"] and (.body.spec | keys) == ["replicas"] and .status == 200)' "every change a merge patch of spec.replicas on the scale subresource"
check_api scale '[.requests[] | select(.method == "GET" and (.path | endswith("/scale")))] | length == 2' "the count read through the scale subresource before each lane"
check_api scale '[.requests[] | select(.method == "GET" and .path == "/apis/apps/v1/namespaces/shop/deployments/shortener")] | length >= 8' "readiness polled on the Deployment (controller lag, one pod per poll)"
check_api scale '[.requests[] | .path] | all(startswith("/apis/apps/v1/namespaces/shop/deployments/shortener"))' "no other resource touched"
clean scale
check scale '[.result.lanes[] | .replicas] == [1, 3]' "each lane reports its replicas"
check scale '.result.scaling_baseline == "x1" and .result.lanes[0].scaling_efficiency == 1' "x1 is the baseline (efficiency 1)"
check scale '(.result.lanes[1].scaling_efficiency | type) == "number" and .result.lanes[1].scaling_efficiency > 0' "x3 has a scaling efficiency ($(j scale '.result.lanes[1].scaling_efficiency'))"
x=$(j scale '(.result.lanes[1].rps / 3) / .result.lanes[0].rps - .result.lanes[1].scaling_efficiency | fabs < 1e-9')
assert_eq true "$x" "efficiency = (rps / replicas) / (baseline rps / 1)"
check scale '.result.lanes[1].scale | .adapter == "kubernetes" and .deployment == "shop/shortener" and .from == 2 and .to == 3 and .ready and .ready_replicas == 3 and .restore.restored and .restore.awaited and .restore.to == 2' "lane evidence: from 2 to 3, ready, restored to 2 and awaited"
check scale '[.events[] | select(.type == "scale" or .type == "restore") | "\(.type):\(.data.lane)"] == ["scale:x1", "restore:x1", "scale:x3", "restore:x3"]' "scale and restore events for every lane, in order"
check scale '[.rows[].row | {lane, replicas, e: (.scaling_efficiency | type)}] == [{"lane": "x1", "replicas": 1, "e": "number"}, {"lane": "x3", "replicas": 3, "e": "number"}]' "rows carry replicas and efficiency"
check scale '[.rows[].row.shape | fromjson | .replicas] == [1, 3]' "replicas are part of each lane's shape (separate series)"

# ---- 2. a breached threshold: verdict failed, Deployment restored ----
reset "{$DEPLOY}"
bench thr "{\"target\": \"shop\", \"thresholds\": [\"rps<1\"], \"lanes\": [{\"name\": \"x3\", $LANE, \"replicas\": 3}]}"
check thr '.status == -4012 and (.error | test("thresholds failed: x3: rps<1"))' "threshold breached: a final verdict"
check thr '.result.lanes[0].scale.restore.restored and .result.lanes[0].replicas == 3' "restored after the breached lane"
check_api thr '.scale_history == [{"name": "shortener", "replicas": 3}, {"name": "shortener", "replicas": 2}] and .deployments.shortener.spec == 2' "Deployment 2 -> 3 -> 2"
clean thr

# ---- 3. cancel mid-lane (a real child, SIGTERM to its group: cancel, timeout and drain) ----
reset "{$DEPLOY}"
bench cancel "{\"target\": \"shop\", \"lanes\": [{\"name\": \"x3\", \"connections\": 3, \"duration_s\": 60, \"replicas\": 3}]}" \
    --inline 0 --cancel-on-event scale+800
check cancel '.status == -4010 and (.error | test("cancelled during lane x3"))' "cancelled: the job fails as interrupted"
check cancel '.cancelled_at_ms > 0 and .result.lanes[0].cancelled' "the lane was running when cancelled"
check cancel '[.events[] | select(.type == "restore")][0].data | .restored and .cancelled and .awaited == false' "restore PATCHed inside the grace, not awaited"
check cancel '.exit == 0 and .group_leftovers == false' "the child exited by itself, nothing left in its group"
check_api cancel '.scale_history == [{"name": "shortener", "replicas": 3}, {"name": "shortener", "replicas": 2}] and .deployments.shortener.spec == 2' "Deployment 2 -> 3 -> 2"
clean cancel

# ---- 4. never ready within the bound: clear error, restored, no lane ----
reset "{$DEPLOY, \"ready_cap\": 2}"
bench notready "{\"target\": \"slow\", \"lanes\": [{\"name\": \"x3\", $LANE, \"replicas\": 3}]}"
check notready '.status == -4010 and (.error | test("lane x3: scaling to 3 replicas: deployment shop/shortener: 2 of 3 replicas ready .* after 2 s"))' "readiness timeout named: $(j notready .error)"
check notready '.rows == [] and .result.lanes == []' "no lane ran"
check notready '[.events[] | select(.type == "restore")][0].data | .restored and .to == 2' "restored to 2"
check_api notready '.deployments.shortener.spec == 2' "Deployment back at 2"
clean notready

# ---- 5. a Deployment outside the Role's resourceNames: 403, nothing patched ----
reset "{$DEPLOY, \"forbidden_deployments\": [\"billing\"]}"
bench forbidden "{\"target\": \"other\", \"lanes\": [{\"name\": \"x2\", $LANE, \"replicas\": 2}]}"
check forbidden '.status == -4010 and (.error | test("HTTP 403: deployments.apps \"billing\" is forbidden"))' "403 named in the error"
check_api forbidden '[.requests[] | select(.method == "PATCH")] == [] and .scale_history == []' "nothing patched"
check forbidden '[.events[] | select(.type == "restore")] == []' "nothing to restore"

# ---- 6. bad specs: refused before any API call ----
badspec() { # badspec NAME TARGET REPLICAS-JSON MESSAGE
    reset "{$DEPLOY}"
    bench "$1" "{\"target\": \"$2\", \"lanes\": [{\"name\": \"l\", $LANE, \"replicas\": $3}]}"
    check "$1" ".status != 0 and (.error | contains(\"$4\"))" "replicas $3 on $2 refused: $(j "$1" .error)"
    check_api "$1" '.requests == []' "no API call"
}
badspec zero shop 0 'payload.lanes[0].replicas: must be an integer 1..64'
badspec big shop 65 'payload.lanes[0].replicas: must be an integer 1..64'
badspec str shop '"3"' 'payload.lanes[0].replicas: must be an integer 1..64'
badspec nodeploy nodeploy 2 'cannot run scale-out lanes: the kubernetes adapter needs kubernetes.deployment'

# ---- 7. the stand-in refuses malformed scale PATCHes like the API ----
patch() { # patch NAME BODY WANT-CODE WANT-MESSAGE-PART
    reset "{$DEPLOY}"
    code=$(ctl -o "$TMP/$1.json" -w '%{http_code}' -X PATCH -H "Authorization: Bearer $(cat "$TOKEN_FILE")" \
        -H 'Content-Type: application/merge-patch+json' "$API/apis/apps/v1/namespaces/shop/deployments/shortener/scale" -d "$2")
    assert_eq "$3" "$code" "$1: HTTP $3"
    jq -r .message "$TMP/$1.json" | grep -qF "$4" || fail "$1: message $(jq -r .message "$TMP/$1.json")"
    log >"$TMP/$1.api.json"
    check_api "$1" '(.violations | length == 1) and .deployments.shortener.spec == 2' "recorded as a violation, nothing changed"
}
patch p_string '{"spec": {"replicas": "3"}}' 400 'cannot unmarshal string into Go struct field ScaleSpec.spec.replicas of type int32'
patch p_negative '{"spec": {"replicas": -1}}' 422 'spec.replicas: Invalid value: -1: must be greater than or equal to 0'
patch p_unknown '{"spec": {"replica": 3}}' 400 'strict decoding error: unknown field "spec.replica"'
reset "{$DEPLOY}"
code=$(ctl -o /dev/null -w '%{http_code}' -X PATCH -H "Authorization: Bearer $(cat "$TOKEN_FILE")" \
    -H 'Content-Type: application/json' "$API/apis/apps/v1/namespaces/shop/deployments/shortener/scale" -d '{"spec": {"replicas": 3}}')
assert_eq 415 "$code" "a PATCH without a patch content type: 415"
code=$(ctl -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $(cat "$TOKEN_FILE")" \
    -H 'Content-Type: application/json' "$API/apis/apps/v1/namespaces/shop/deployments/shortener/scale" \
    -d '{"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "shortener"}, "spec": {"replicas": 3}}')
assert_eq 403 "$code" "PUT (update) is not granted: 403"
code=$(ctl -o /dev/null -w '%{http_code}' -X PATCH -H "Authorization: Bearer $(cat "$TOKEN_FILE")" \
    -H 'Content-Type: application/merge-patch+json' "$API/apis/apps/v1/namespaces/shop/deployments/shortener/scale" -d '{"spec": {"replicas": 3}}')
assert_eq 200 "$code" "the well-formed merge patch is accepted"
log >"$TMP/good.api.json"
check_api good '.deployments.shortener.spec == 3' "and applied"

finish
