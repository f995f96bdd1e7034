#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# sched_lib.sh — helpers for the scheduler's integration tests (sourced after
# tests/support/lib.sh): start schedulers on free loopback ports, call the API with curl,
# read JSON with jq. Every process started is registered in PIDS (killed on exit).
SCHED=$BIN/opspool-scheduler
TOKEN=tok-$RANDOM-$RANDOM
printf '# API tokens for this test\n%s\n\nsecond-%s\n' "$TOKEN" "$TOKEN" >"$TMP/tokens"
export OSP_API_TOKENS_FILE=$TMP/tokens


# start_scheduler NAME [ENV=VAL...] — background scheduler on a free port; sets LAST_PID and
# LAST_URL, waits until /healthz answers.
start_scheduler() {
    local name=$1; shift
    local port pf=$TMP/$name.$RANDOM.port
    env OSP_HTTP_ADDR=127.0.0.1:0 OSP_HTTP_PORT_FILE="$pf" "$@" "$SCHED" >>"$TMP/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    port=$(port_from_file "$pf" 40) || fail "scheduler $name did not bind its port"
    LAST_URL="http://127.0.0.1:$port"
    wait_until 40 curl -sf "$LAST_URL/healthz" || fail "scheduler $name did not start"
}

# api METHOD PATH [CURL ARGS...] — authenticated call; prints the status code, body in $TMP/body.
api() {
    local m=$1 p=$2; shift 2
    curl -s -o "$TMP/body" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $TOKEN" "$@" "$URL$p"
}
# post_json PATH JSON — authenticated POST of a JSON body; prints the status code.
post_json() {
    api POST "$1" -H 'Content-Type: application/json' --data-binary "$2"
}
body() { cat "$TMP/body"; }
jbody() { jq -r "$1" <"$TMP/body"; }

# expect_error STATUS CODE WHAT -- CURL CALL... — a call answers STATUS with error code CODE.
expect_error() {
    local want=$1 code=$2 what=$3; shift 4
    local got
    got=$("$@")
    [ "$got" = "$want" ] || fail "$what: status $got, want $want: $(body)"
    [ "$(jbody .error.code)" = "$code" ] || fail "$what: error code $(jbody .error.code), want $code"
    [ -n "$(jbody .error.message)" ] || fail "$what: empty error message"
    ok "$what -> $want $code"
}

# Every key of this test's prefix (the prefix is random per test), but P:epoch: the
# scheduler sets it once, on its own, at some point after it starts.
prefix_keys() { rcli --scan --pattern "$P:*" | { grep -v ':epoch$' || true; } | sort; }

