#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The drill's Kubernetes adapter against a stand-in API server (tests/support/kubeapi_standin.py,
# HTTPS with a throwaway CA, so ca_file is exercised). The stand-in checks each request's
# method, path, headers and body against the Kubernetes / Chaos Mesh shapes; every scenario
# ends by asserting it recorded no violation. Scenarios: eviction, eviction blocked by a PDB
# (429, retried), blocked for good (nothing injected), DELETE with a grace period, StressChaos
# and NetworkChaos create -> status -> delete -> recovered, 409 on an existing object (own:
# adopted; foreign: refused, left alone, nothing injected), cancel mid-fault (object deleted), 401 after a token rotation (re-read, retried),
# blast radius (max_pods), and a shape violation that the stand-in must catch. Drills run
# in-process (osp-run-child --inline 1) so LeakSanitizer also checks the adapter's memory.
. "$OSP_SRC_DIR/tests/support/lib.sh"

RUN=$BIN/osp-run-child
HS=$BIN/osp-healthserver
[ -x "$RUN" ] && [ -x "$HS" ] || { echo "osp-run-child / osp-healthserver not built" >&2; exit 77; }
for t in jq curl openssl python3; do command -v $t >/dev/null || { echo "$t missing" >&2; exit 77; }; done

# A CA-less self-signed certificate for 127.0.0.1: it is its own CA for ca_file.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/ca.crt" 2>/dev/null ||
    fail "openssl could not make a certificate"
TOKEN_FILE=$TMP/token
echo "tok-initial-$$" >"$TOKEN_FILE"
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
cat >"$T" <<EOF
{"targets": {"shop": {"adapter": "kubernetes", "base_url": "http://127.0.0.1:$HP", "health_path": "/health",
  "kubernetes": {"namespace": "shop", "selector": "app=shortener", "api_server": "$API",
                 "token_file": "$TOKEN_FILE", "ca_file": "$TMP/ca.crt", "timeout_ms": 3000},
  "limits": {"max_pods": 2, "max_duration_s": 60, "allowed_faults": ["restart", "cpu", "latency"]}}}}
EOF

ctl() { curl -sS --cacert "$TMP/ca.crt" "$@"; }
reset() { ctl -X POST -H 'Content-Type: application/json' -d "${1:-{\}}" "$API/_standin/reset" >/dev/null || fail "stand-in reset"; }
log() { ctl "$API/_standin/log"; }
JOB=0190f2a4-1b2c-7d3e-8f40-123456789abc
drill() {
    local name=$1 payload=$2; shift 2
    "$RUN" --kind drill --targets "$T" --job-id "$JOB" --timeout-s 120 --inline 1 --payload "$payload" "$@" \
        >"$TMP/$name.json" 2>>"$TMP/$name.log" || fail "$name: the child did not finish its report"
    log >"$TMP/$name.api.json"
}
j() { jq -r "$2" "$TMP/$1.json"; }
a() { jq -r "$2" "$TMP/$1.api.json"; }
check() { [ "$(j "$1" "$2")" = true ] || fail "$1: $3 ($2) — result: $(j "$1" '{status, error, result: (.result | del(.phases))}' | head -c 2000)"; ok "$1: $3"; }
check_api() { [ "$(a "$1" "$2")" = true ] || fail "$1: $3 ($2) — requests: $(a "$1" '[.requests[] | {n, method, path, status}]' | head -c 2000)"; ok "$1: $3"; }
clean() { check_api "$1" '.violations == []' "no request-shape violations"; }
P='"probe": {"interval_ms": 100, "timeout_ms": 500}'

# ---- eviction ----
reset
drill evict "{\"target\": \"shop\", \"fault\": {\"type\": \"restart\", \"duration_s\": 1}, $P}"
check evict '.status == 0 and .result.verdict == "pass" and .result.inject.hit == 1' "one pod evicted, verdict pass"
check_api evict '[.requests[] | select(.method == "GET" and .path == "/api/v1/namespaces/shop/pods")][0].query == "labelSelector=app%3Dshortener"' "pods listed by the target's selector"
check_api evict '[.requests[] | select(.path | endswith("/eviction"))] | length == 1 and .[0].status == 201 and .[0].body.kind == "Eviction"' "one Eviction POST, 201"
clean evict

# ---- eviction blocked by a PDB twice, then allowed ----
reset '{"pdb_blocks": 2}'
drill pdb "{\"target\": \"shop\", \"fault\": {\"type\": \"restart\", \"duration_s\": 1, \"evict_timeout_s\": 10}, $P}"
check pdb '.result.verdict == "pass" and .result.inject.pods[0].attempts == 3' "429 retried within the budget, third attempt evicts"
check pdb '.result.inject.pods[0].pdb_message | test("disruption budget")' "the PDB's message is in the evidence"
check_api pdb '[.requests[] | select(.path | endswith("/eviction")) | .status] == [429, 429, 201]' "API saw 429, 429, 201"
clean pdb

# ---- blocked for good: nothing injected ----
reset '{"pdb_blocks": 100}'
drill pdb_block "{\"target\": \"shop\", \"fault\": {\"type\": \"restart\", \"evict_timeout_s\": 2}, $P}"
check pdb_block '.result.verdict == "aborted" and .result.injected == false and .result.abort.reason == "not_injected"' "aborted, nothing injected"
check pdb_block '.result.inject.pods[0].blocked_by_pdb == true and .result.inject.hit == 0' "reported as blocked by the PDB"
clean pdb_block

# ---- DELETE with a grace period, two pods (max_pods 2) ----
reset
drill delete "{\"target\": \"shop\", \"fault\": {\"type\": \"restart\", \"method\": \"delete\", \"grace_period_s\": 5, \"pods\": 2}, $P}"
check delete '.result.verdict == "pass" and .result.inject.hit == 2' "two pods deleted"
check_api delete '[.requests[] | select(.method == "DELETE")] | length == 2 and all(.body.gracePeriodSeconds == 5 and .body.kind == "DeleteOptions" and .status == 200)' "two DELETEs, each with gracePeriodSeconds 5"
check_api delete '[.requests[] | select(.method == "DELETE" and .path == "/api/v1/namespaces/shop/pods")] | length == 0' "never a collection delete"
clean delete

# ---- blast radius: more pods than the target allows is refused before any call ----
reset
drill toomany "{\"target\": \"shop\", \"fault\": {\"type\": \"restart\", \"pods\": 3}, $P}"
check toomany '.status != 0 and (.error | test("max_pods 2"))' "pods 3 > limits.max_pods 2 refused"
check_api toomany '.requests == []' "no API call made"

# ---- StressChaos: create -> AllInjected -> delete -> gone ----
reset '{"inject_after_gets": 2, "recover_gets": 0}'
drill stress "{\"target\": \"shop\", \"fault\": {\"type\": \"cpu\", \"duration_s\": 3, \"workers\": 2, \"load\": 60}, $P}"
check stress '.result.verdict == "pass" and .result.inject.created and .result.inject.confirmed' "StressChaos created and injection confirmed"
check stress '.result.rollback.deleted and .result.rollback.recovered_confirmed' "deleted on rollback, recovery confirmed"
check_api stress '[.requests[] | select(.method == "POST")][0] | .path == "/apis/chaos-mesh.org/v1alpha1/namespaces/shop/stresschaos" and .status == 201 and .body.spec.selector.namespaces == ["shop"] and .body.spec.duration == "3s" and .body.spec.stressors.cpu == {"workers": 2, "load": 60} and .body.metadata.labels["opspool.io/job-id"] == "'$JOB'"' "StressChaos body: namespaces, duration, stressors, job label"
check_api stress '[.requests[] | .method] | index("DELETE") > index("POST")' "DELETE after create"
check_api stress '[.requests[] | select(.method == "GET")] | last | .status == 404' "polled until the object was gone (404)"
clean stress

# ---- NetworkChaos ----
reset
drill net "{\"target\": \"shop\", \"fault\": {\"type\": \"latency\", \"duration_s\": 2, \"latency_ms\": 200, \"jitter_ms\": 20}, $P}"
check net '.result.verdict == "pass" and .result.inject.kind == "NetworkChaos" and .result.rollback.recovered_confirmed' "NetworkChaos created, deleted, recovered"
check_api net '[.requests[] | select(.method == "GET")] | last | .status == 200' "recovery confirmed by AllRecovered=True while the finalizer holds the object"
check_api net '[.requests[] | select(.method == "POST")][0].body.spec | .action == "delay" and .delay.latency == "200ms" and .delay.jitter == "20ms" and .selector.namespaces == ["shop"] and .selector.labelSelectors == {"app": "shortener"} and .mode == "one"' "NetworkChaos body: delay, selector, mode"
clean net

# ---- cancel mid-fault (real child, SIGTERM): the NetworkChaos is still deleted ----
reset
drill cancel "{\"target\": \"shop\", \"fault\": {\"type\": \"latency\", \"duration_s\": 30, \"latency_ms\": 100}, $P}" \
    --inline 0 --cancel-on observe+500
check cancel '.status == -4006 and .result.verdict == "interrupted" and .result.rollback.deleted' "cancelled: interrupted, NetworkChaos deleted"
check cancel '.result.duration_ms < 8000' "rolled back within the worker's grace"
check_api cancel '[.requests[] | select(.method == "DELETE")] | length == 1' "one DELETE of the chaos object"
clean cancel

# ---- 409: our own object from a previous attempt is adopted ----
reset '{"existing": [{"plural": "networkchaos", "name": "opspool-drill-'$JOB'", "job_id": "'$JOB'"}]}'
drill adopt "{\"target\": \"shop\", \"fault\": {\"type\": \"latency\", \"duration_s\": 1, \"latency_ms\": 50}, $P}"
check adopt '.result.verdict == "pass" and .result.inject.adopted and .result.rollback.deleted' "409 on our own object: adopted, then deleted"
check_api adopt '[.requests[] | select(.method == "POST")][0].status == 409' "API answered 409 AlreadyExists"
clean adopt

# ---- 409: somebody else's object is refused and left alone ----
reset '{"existing": [{"plural": "networkchaos", "name": "opspool-drill-'$JOB'", "job_id": "someone-else"}]}'
drill foreign "{\"target\": \"shop\", \"fault\": {\"type\": \"latency\", \"duration_s\": 1, \"latency_ms\": 50}, $P}"
check foreign '.status != 0 and .result.verdict == "aborted" and .result.injected == false and (.result.abort.detail | test("does not belong"))' "409 on a foreign object: aborted, nothing injected"
check_api foreign '[.requests[] | select(.method == "DELETE")] | length == 0' "the foreign object was not deleted"
clean foreign

# ---- 401 after token rotation: re-read the file, retry once, succeed ----
reset '{"rotate_at": 2}'
drill rotate "{\"target\": \"shop\", \"fault\": {\"type\": \"restart\", \"duration_s\": 1}, $P}"
check rotate '.result.verdict == "pass" and .result.inject.hit == 1' "drill passed across the rotation"
check_api rotate '.requests[1].status == 401 and .requests[1].rotated and .requests[2].path == .requests[1].path and .requests[2].token_ok and (.requests[2].status | . == 200 or . == 201)' "401, token re-read, same request retried and accepted"
grep -q "tok-initial-$$\|rotated-" "$TMP/rotate.json" && fail "a token leaked into the report"
ok "rotate: no token in the report"
clean rotate

# ---- the stand-in catches a request-shape violation (so the checks above mean something) ----
reset
code=$(ctl -o "$TMP/bad.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$TOKEN_FILE")" \
    -H 'Content-Type: application/json' "$API/apis/chaos-mesh.org/v1alpha1/namespaces/shop/networkchaos" \
    -d '{"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos", "metadata": {"name": "x"},
         "spec": {"action": "delay", "mode": "one", "selector": {"labelSelectors": {"app": "a"}},
                  "delay": {"latency": "10ms"}}}')
assert_eq 422 "$code" "NetworkChaos without selector.namespaces or duration -> 422"
assert_eq Invalid "$(jq -r .reason "$TMP/bad.json")" "answered with a Status object, reason Invalid"
log >"$TMP/bad.api.json"
check_api bad '.violations | length == 1 and (.[0].violation | test("selector.namespaces"))' "stand-in recorded the violation"

# ---- strict field validation: a misspelt field is refused, not ignored ----
strict() { # strict NAME PATH BODY WANT-FIELD
    reset
    code=$(ctl -o "$TMP/$1.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$TOKEN_FILE")" \
        -H 'Content-Type: application/json' "$API$2" -d "$3")
    assert_eq 400 "$code" "$1: unknown field -> 400"
    assert_eq "strict decoding error: unknown field \"$4\"" "$(jq -r .message "$TMP/$1.json")" "$1: names $4"
    log >"$TMP/$1.api.json"
    check_api "$1" '.violations | length == 1' "recorded as a violation"
}
NC='{"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos", "metadata": {"name": "x", "namespace": "shop"},
     "spec": {"action": "delay", "mode": "one", "selector": {"namespaces": ["shop"], "labelSelectors": {"app": "a"}},
              "duration": "10s", "direction": "to", "delay": {"latency": "10ms", "jitter": "1ms"}}}'
strict directon /apis/chaos-mesh.org/v1alpha1/namespaces/shop/networkchaos "${NC/\"direction\"/\"directon\"}" spec.directon
strict jiter /apis/chaos-mesh.org/v1alpha1/namespaces/shop/networkchaos "${NC/\"jitter\"/\"jiter\"}" spec.delay.jiter
strict stressor /apis/chaos-mesh.org/v1alpha1/namespaces/shop/stresschaos \
    '{"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "StressChaos", "metadata": {"name": "y"},
      "spec": {"mode": "one", "selector": {"namespaces": ["shop"], "pods": {"shop": ["p"]}}, "duration": "5s",
               "stressors": {"cpu": {"workers": 1, "loads": 50}}}}' spec.stressors.cpu.loads
strict eviction /api/v1/namespaces/shop/pods/shortener-7d9c-a/eviction \
    '{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "shortener-7d9c-a"},
      "deleteOption": {"gracePeriodSeconds": 1}}' deleteOption
# The same NetworkChaos spelt right is accepted: the schema is not simply closed.
reset
code=$(ctl -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$TOKEN_FILE")" \
    -H 'Content-Type: application/json' "$API/apis/chaos-mesh.org/v1alpha1/namespaces/shop/networkchaos" -d "$NC")
assert_eq 201 "$code" "the well-spelt NetworkChaos is created"

finish
