#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# API token scopes and audit records (docs/security.md, docs/api.md "Authentication"):
# a tokens file mixing a legacy line (every scope) and scoped lines; each endpoint answers
# 403 forbidden to a token without its scope and changes nothing; cancel and dead retry write
# a job_events row of type 'audit' naming the token by fingerprint (never the token); every
# audited action writes an audit log line; a bad scopes= line is refused at start and on
# SIGHUP (the previous tokens stay).
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"

SUB=sub-$RANDOM$RANDOM; RD=rd-$RANDOM$RANDOM; OPR=op-$RANDOM$RANDOM; ALL=$TOKEN
fp() { printf '%s' "$1" | sha256sum | cut -c1-8; }
cat >"$TMP/tokens" <<EOF
# legacy line: every scope
$ALL
$SUB scopes=submit
$RD	scopes=read
$OPR scopes=read,operate
EOF

# ---- bad files are refused ----
printf 'abc scopes=submit,admin\n' >"$TMP/bad-tokens"
rc=0
env OSP_API_TOKENS_FILE="$TMP/bad-tokens" OSP_HTTP_ADDR=127.0.0.1:0 timeout 20 "$SCHED" \
    >"$TMP/badtok.log" 2>&1 || rc=$?
assert_eq 2 "$rc" "unknown scope: the scheduler refuses to start"
grep -q 'line 1' "$TMP/badtok.log" || fail "the error does not name the line"
grep -q 'abc' "$TMP/badtok.log" && fail "the error log shows the token"
ok "the error names the line, not the token"

start_scheduler s1 OSP_RECONCILE_GRACE_S=3600
S1=$LAST_PID
URL=$LAST_URL
grep -q 'without scopes= have every scope' "$TMP/s1.log" || fail "no deprecation warning for the legacy line"
ok "a legacy token line is accepted with a deprecation warning"

# call TOKEN METHOD PATH [CURL ARGS...] — prints the status, body in $TMP/body.
call() {
    local t=$1 m=$2 p=$3; shift 3
    curl -s -o "$TMP/body" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $t" "$@" "$URL$p"
}
jpost() { local t=$1 p=$2; shift 2; call "$t" POST "$p" -H 'Content-Type: application/json' --data-binary "$1"; }
forbidden() { # forbidden WHAT -- CALL...
    local what=$1; shift 2
    local got; got=$("$@")
    [ "$got" = 403 ] || fail "$what: status $got, want 403: $(body)"
    [ "$(jbody .error.code)" = forbidden ] || fail "$what: code $(jbody .error.code)"
    ok "$what -> 403 forbidden"
}

# ---- submit scope ----
assert_eq 202 "$(jpost "$SUB" /v1/jobs '{"kind":"noop","run_at":"2999-01-01T00:00:00Z"}')" "submit token: POST /v1/jobs"
JOB=$(jbody .id)
forbidden "submit token: GET /v1/jobs/{id}" -- call "$SUB" GET "/v1/jobs/$JOB"
forbidden "submit token: GET /v1/jobs" -- call "$SUB" GET /v1/jobs
forbidden "submit token: GET /v1/queues" -- call "$SUB" GET /v1/queues
forbidden "submit token: GET /v1/schedules" -- call "$SUB" GET /v1/schedules
forbidden "submit token: cancel" -- call "$SUB" POST "/v1/jobs/$JOB/cancel"
forbidden "submit token: GET /v1/benchmarks" -- call "$SUB" GET /v1/benchmarks
forbidden "submit token: GET /v1/notifications" -- call "$SUB" GET /v1/notifications
grep -q "\"who\":\"token:$(fp "$SUB")\"" "$TMP/s1.log" || fail "refusal not logged with the fingerprint"
grep -q "$SUB" "$TMP/s1.log" && fail "the log holds a token"
ok "refusals are logged with the token's fingerprint, never the token"

# ---- read scope ----
assert_eq 200 "$(call "$RD" GET "/v1/jobs/$JOB")" "read token: GET /v1/jobs/{id}"
assert_eq 200 "$(call "$RD" GET /v1/jobs)" "read token: GET /v1/jobs"
assert_eq 200 "$(call "$RD" GET /v1/queues)" "read token: GET /v1/queues"
assert_eq 200 "$(call "$RD" GET /v1/schedules)" "read token: GET /v1/schedules"
forbidden "read token: POST /v1/jobs" -- jpost "$RD" /v1/jobs '{"kind":"noop"}'
forbidden "read token: cancel" -- call "$RD" POST "/v1/jobs/$JOB/cancel"
forbidden "read token: pause" -- call "$RD" POST /v1/queues/noop/pause
forbidden "read token: resume" -- call "$RD" POST /v1/queues/noop/resume
forbidden "read token: create schedule" -- jpost "$RD" /v1/schedules '{"name":"x","cron":"0 3 * * *","kind":"noop"}'
forbidden "read token: delete schedule" -- call "$RD" DELETE /v1/schedules/x
forbidden "read token: dead retry" -- call "$RD" POST /v1/dead/noop/retry
assert_eq 200 "$(call "$RD" GET /v1/benchmarks)" "read token: GET /v1/benchmarks"
assert_eq 200 "$(call "$RD" GET /v1/notifications)" "read token: GET /v1/notifications"
forbidden "read token: notification retry" -- jpost "$RD" /v1/notifications/0190f2a4-1b2c-7d3e-8f40-123456789abc/retry '{}'
forbidden "read token: benchmark baseline reset" -- jpost "$RD" /v1/benchmarks/baselines '{"target":"web","lane":"base"}'
assert_eq 0 "$(q "SELECT count(*) FROM opspool.benchmark_baselines")" "forbidden baseline reset changed nothing"
assert_eq "delayed" "$(job_state "$JOB")" "forbidden calls changed nothing (job still delayed)"
assert_eq "" "$(rcli SMEMBERS "$P:paused")" "forbidden pause changed nothing"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.schedules")" "forbidden schedule create changed nothing"

# ---- operate scope (with read) ----
forbidden "operate token: POST /v1/jobs" -- jpost "$OPR" /v1/jobs '{"kind":"noop"}'
assert_eq 200 "$(call "$OPR" POST /v1/queues/noop/pause)" "operate token: pause"
assert_eq 200 "$(call "$OPR" POST /v1/queues/noop/resume)" "operate token: resume"
assert_eq 201 "$(jpost "$OPR" /v1/schedules '{"name":"nightly","cron":"0 3 * * *","kind":"noop"}')" "operate token: create schedule"
assert_eq 200 "$(call "$OPR" DELETE /v1/schedules/nightly)" "operate token: delete schedule"
assert_eq 200 "$(call "$OPR" POST "/v1/jobs/$JOB/cancel")" "operate token: cancel"
assert_eq 200 "$(jpost "$OPR" /v1/benchmarks/baselines '{"target":"web","lane":"base"}')" "operate token: benchmark baseline reset"
assert_eq 404 "$(jpost "$OPR" /v1/notifications/0190f2a4-1b2c-7d3e-8f40-123456789abc/retry '{}')" "operate token: notification retry (no such delivery: 404, not 403)"
# 401 still comes first for an unknown token
assert_eq 401 "$(call nope GET /v1/queues)" "unknown token: 401, not 403"

# ---- audit records ----
row=$(q "SELECT data->>'who', data->>'action', data->>'via' FROM opspool.job_events WHERE job_id = '$JOB' AND type = 'audit'")
assert_eq "token:$(fp "$OPR")|job.cancel|api" "$row" "cancel wrote an audit event (who = token fingerprint)"
[ -n "$(q "SELECT ts FROM opspool.job_events WHERE job_id = '$JOB' AND type = 'audit'")" ] || fail "audit event without ts"
for a in queue.pause queue.resume schedule.create schedule.delete job.cancel bench.reset; do
    grep "\"audit\":\"$a\"" "$TMP/s1.log" | grep -q "\"who\":\"token:$(fp "$OPR")\"" ||
        fail "no audit log line for $a"
done
ok "pause, resume, schedule create/delete, cancel and baseline reset wrote audit log lines"

# Dead retry: make a dead job the way a worker does (ledger dead + dead record).
assert_eq 202 "$(jpost "$ALL" /v1/jobs '{"kind":"noop","payload":{"fail":true},"max_attempts":1}')" "submit a job that will die"
DJ=$(jbody .id)
start_worker w1 OSP_WORKER_KINDS=noop OSP_WORKER_SLOTS=1
W1=$LAST_PID
wait_eq 30 dead job_state "$DJ" || fail "job did not die (state $WAIT_GOT)"
kill -TERM "$W1"; wait_exit "$W1" 30
assert_eq 200 "$(jpost "$ALL" /v1/dead/noop/retry '{}')" "legacy token: dead retry"
assert_eq 1 "$(jbody .retried)" "one job retried"
row=$(q "SELECT data->>'who', data->>'action' FROM opspool.job_events WHERE job_id = '$DJ' AND type = 'audit'")
assert_eq "token:$(fp "$ALL")|dead.retry" "$row" "dead retry wrote an audit event"
grep -q "$ALL" "$TMP/s1.log" && fail "the log holds a token"
ok "no token text in the scheduler's log"

# ---- SIGHUP: a bad file keeps the old tokens; a good one changes scopes ----
printf '%s scopes=submit,bogus\n' "$RD" >"$TMP/tokens"
kill -HUP "$S1"
wait_until 10 grep -q 'keeping the previous API tokens' "$TMP/s1.log" || fail "bad reload not reported"
assert_eq 200 "$(call "$RD" GET /v1/queues)" "after a bad reload the old scopes hold"
printf '%s scopes=submit\n' "$RD" >"$TMP/tokens"
kill -HUP "$S1"
wait_until 10 grep -q 'reloaded 1 API token' "$TMP/s1.log" || fail "reload not reported"
forbidden "after reload the read token lost read" -- call "$RD" GET /v1/queues
assert_eq 401 "$(call "$OPR" GET /v1/queues)" "after reload a removed token is unknown"

kill -TERM "$S1"
wait_exit "$S1" 20
assert_eq 0 "$EXIT_RC" "scheduler exits cleanly"
finish
