#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The worker's own endpoints: /healthz, /readyz (503 while draining), /metrics counting
# outcomes by kind; a bad address is refused at start with a clear error.
. "$OSP_SRC_DIR/tests/support/lib.sh"

"$CTL" migrate >/dev/null
start_worker w OSP_HTTP_ADDR=127.0.0.1:0 OSP_DRAIN_TIMEOUT_S=20
W=$LAST_PID
wait_until 20 grep -q '"msg":"serving /metrics' "$TMP/w.log" || fail "worker did not start its HTTP endpoints"
port=$(grep -o 'on port [0-9]*' "$TMP/w.log" | grep -o '[0-9]*$')
get() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$1"; }
assert_eq 200 "$(get /healthz)" "/healthz answers 200"
wait_eq 20 200 get /readyz || fail "/readyz never became ready"
ok "/readyz is 200 once Redis and PostgreSQL are connected"
assert_eq 404 "$(get /nope)" "unknown path is 404"

"$CTL" submit noop --count 7 >/dev/null
"$CTL" submit noop --payload '{"fail": true}' --max-attempts 1 >/dev/null
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
wait_eq 20 7 metric 'opspool_worker_jobs_total{kind="noop",outcome="succeeded"}' || fail "succeeded counter: $WAIT_GOT"
ok "metrics count succeeded attempts by kind"
assert_eq 1 "$(metric 'opspool_worker_jobs_total{kind="noop",outcome="failed"}')" "metrics count failed attempts"
assert_eq 4 "$(metric opspool_worker_slots)" "slots gauge"

long=$("$CTL" submit noop --payload '{"sleep_ms": 3000}')
wait_eq 20 running job_state "$long" || fail "long job never started"
kill -TERM "$W"
wait_eq 10 503 get /readyz || fail "/readyz stayed $WAIT_GOT while draining"
ok "/readyz is 503 while the worker drains"
assert_eq 1 "$(metric opspool_worker_draining)" "draining gauge is 1"
wait_exit "$W" 30; assert_eq 0 "$EXIT_RC" "worker drains and exits 0"

OSP_HTTP_ADDR=not-an-address "$WORKER" >"$TMP/bad.log" 2>&1 && fail "worker started with a bad OSP_HTTP_ADDR"
grep -q "OSP_HTTP_ADDR" "$TMP/bad.log" || fail "no clear error for a bad address: $(cat "$TMP/bad.log")"
ok "a bad OSP_HTTP_ADDR is refused with a clear error"
finish
