#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The scheduler's HTTP API against real Redis and PostgreSQL (docs/api.md): every documented
# error code, bad input changing nothing, submit -> read, idempotency, delayed jobs, list and
# pagination, cancel (queued, and running with a worker), pause/resume, queues, schedules
# CRUD, dead-letter retry, token reload on SIGHUP, health and metrics.
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"

# ---- start-up rules ----
rc=0
env -u OSP_API_TOKENS_FILE OSP_HTTP_ADDR=127.0.0.1:0 "$SCHED" >"$TMP/notoken.log" 2>&1 || rc=$?
assert_eq 2 "$rc" "refuses to start without OSP_API_TOKENS_FILE"
grep -q OSP_API_INSECURE "$TMP/notoken.log" || fail "start-up error does not name OSP_API_INSECURE"
"$SCHED" --help >"$TMP/help"
grep -q OSP_LEDGER_RETENTION_DAYS "$TMP/help" || fail "--help lacks scheduler settings"
ok "--help lists the scheduler's own settings"
# The scheduler's settings come from the common configuration table: bounds checked at start,
# shown by --print-config, settable in OSP_CONFIG_FILE like every other setting.
rc=0
OSP_RECONCILE_PERIOD_S=0 "$SCHED" --print-config >"$TMP/badcfg.log" 2>&1 || rc=$?
assert_eq 2 "$rc" "an out-of-range scheduler setting is refused at start"
grep -q "OSP_RECONCILE_PERIOD_S" "$TMP/badcfg.log" || fail "the refusal does not name the setting: $(cat "$TMP/badcfg.log")"
OSP_LEDGER_RETENTION_DAYS=9 "$SCHED" --print-config | grep -qx "OSP_LEDGER_RETENTION_DAYS=9" ||
    fail "--print-config does not show the scheduler's settings"
printf '{"default_max_attempts": 7}' >"$TMP/cfg.json"
OSP_CONFIG_FILE=$TMP/cfg.json "$SCHED" --print-config | grep -qx "OSP_DEFAULT_MAX_ATTEMPTS=7" ||
    fail "OSP_CONFIG_FILE does not set a scheduler setting"
ok "scheduler settings: checked, printed, settable from the config file"

# OSP_API_INSECURE=1 without a tokens file: no authentication (development).
start_scheduler insecure OSP_API_TOKENS_FILE= OSP_API_INSECURE=1 OSP_RECONCILE_GRACE_S=3600
assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "$LAST_URL/v1/queues")" "OSP_API_INSECURE=1 serves without a token"
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "insecure scheduler did not exit cleanly"

start_scheduler s1 OSP_RECONCILE_GRACE_S=3600
S1=$LAST_PID
URL=$LAST_URL

# ---- health and metrics (no token) ----
assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" "/healthz"
assert_eq 200 "$(curl -s -o "$TMP/body" -w '%{http_code}' "$URL/readyz")" "/readyz with both backends up"
assert_eq "ok/ok" "$(jbody .redis)/$(jbody .postgres)" "readyz reports both backends"

# ---- bad input: every error code, and nothing changes ----
before_keys=$(prefix_keys)
expect_error 401 unauthorized "no token" -- curl -s -o "$TMP/body" -w '%{http_code}' "$URL/v1/queues"
expect_error 401 unauthorized "wrong token" -- curl -s -o "$TMP/body" -w '%{http_code}' \
    -H 'Authorization: Bearer nope' "$URL/v1/queues"
expect_error 401 unauthorized "not a bearer scheme" -- curl -s -o "$TMP/body" -w '%{http_code}' \
    -H "Authorization: Basic $TOKEN" "$URL/v1/queues"
assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer second-$TOKEN" "$URL/v1/queues")" \
    "the second token of the file works"
expect_error 404 not_found "unknown path" -- api GET /v1/nothing
expect_error 404 not_found "unknown job" -- api GET /v1/jobs/01890000-0000-7000-8000-000000000000
expect_error 400 invalid_request "malformed job id" -- api GET /v1/jobs/not-a-uuid
expect_error 405 method_not_allowed "DELETE /v1/jobs" -- api DELETE /v1/jobs
curl -s -D "$TMP/headers" -o /dev/null -X DELETE -H "Authorization: Bearer $TOKEN" "$URL/v1/jobs"
grep -qi '^Allow: .*POST' "$TMP/headers" || fail "405 without Allow header"
ok "405 carries an Allow header"
expect_error 415 unsupported_media_type "form-encoded body" -- api POST /v1/jobs -d '{"kind":"noop"}'
expect_error 400 bad_json "syntax error" -- post_json /v1/jobs '{"kind": "noop",'
expect_error 400 bad_json "JSON array" -- post_json /v1/jobs '[{"kind": "noop"}]'
expect_error 400 bad_json "empty body" -- api POST /v1/jobs -H 'Content-Type: application/json'
expect_error 400 unknown_kind "unknown kind" -- post_json /v1/jobs '{"kind": "teleport"}'
expect_error 400 invalid_payload "payload rejected by the kind" -- post_json /v1/jobs '{"kind": "noop", "payload": {"sleep_ms": -1}}'
expect_error 400 invalid_payload "payload not an object" -- post_json /v1/jobs '{"kind": "noop", "payload": [1]}'
expect_error 400 invalid_request "missing kind" -- post_json /v1/jobs '{"payload": {}}'
expect_error 400 invalid_request "unknown field" -- post_json /v1/jobs '{"kind": "noop", "priority": 1}'
expect_error 400 invalid_request "max_attempts 0" -- post_json /v1/jobs '{"kind": "noop", "max_attempts": 0}'
expect_error 400 invalid_request "bad run_at" -- post_json /v1/jobs '{"kind": "noop", "run_at": "tomorrow"}'
expect_error 400 invalid_request "bad limit" -- api GET '/v1/jobs?limit=abc'
expect_error 400 invalid_request "bad state filter" -- api GET '/v1/jobs?state=sleeping'
head -c 1100000 /dev/zero | tr '\0' ' ' >"$TMP/big.json"
expect_error 413 too_large "1.1 MB body" -- api POST /v1/jobs -H 'Content-Type: application/json' --data-binary "@$TMP/big.json"
expect_error 400 unknown_kind "pause an unknown kind" -- api POST /v1/queues/teleport/pause
expect_error 400 invalid_request "schedule with a bad cron" -- post_json /v1/schedules '{"name": "x", "cron": "61 * * * *", "kind": "noop"}'
expect_error 400 invalid_request "schedule with a bad zone" -- post_json /v1/schedules '{"name": "x", "cron": "* * * * *", "timezone": "Mars/Base", "kind": "noop"}'
expect_error 400 unknown_kind "schedule with an unknown kind" -- post_json /v1/schedules '{"name": "x", "cron": "* * * * *", "kind": "teleport"}'
expect_error 400 invalid_payload "schedule with a bad payload" -- post_json /v1/schedules '{"name": "x", "cron": "* * * * *", "kind": "noop", "payload": {"bogus": 1}}'
expect_error 404 not_found "delete a missing schedule" -- api DELETE /v1/schedules/none
expect_error 404 not_found "cancel a missing job" -- api POST /v1/jobs/01890000-0000-7000-8000-000000000000/cancel
assert_eq 0 "$(q 'SELECT count(*) FROM opspool.jobs')" "rejected requests wrote no job"
assert_eq 0 "$(q 'SELECT count(*) FROM opspool.schedules')" "rejected requests wrote no schedule"
assert_eq "$before_keys" "$(prefix_keys)" "rejected requests changed no Redis key"

# ---- submit and read ----
assert_eq 202 "$(post_json /v1/jobs '{"kind": "noop", "payload": {"result": {"answer": 42}}, "max_attempts": 2, "timeout_s": 30, "trace_id": "t-1"}')" "submit"
id=$(jbody .id)
assert_eq queued "$(jbody .state)" "submitted job is queued"
assert_eq queued "$(q "SELECT state FROM opspool.jobs WHERE id = '$id'")" "ledger row written"
assert_eq 1 "$(rcli LLEN "$P:queue:noop")" "envelope pushed on the noop queue"
assert_eq 200 "$(api GET "/v1/jobs/$id")" "GET /v1/jobs/{id}"
assert_eq "$id queued 2 t-1 42" "$(jbody '"\(.id) \(.state) \(.max_attempts) \(.trace_id) \(.payload.result.answer)"')" "job read back"
assert_eq queued "$(jbody .live.state)" "live Redis state included"

# ---- idempotency ----
assert_eq 202 "$(post_json /v1/jobs '{"kind": "noop", "idempotency_key": "nightly-1"}')" "submit with a key"
kid=$(jbody .id)
assert_eq 200 "$(post_json /v1/jobs '{"kind": "noop", "idempotency_key": "nightly-1"}')" "same key again answers 200"
assert_eq "$kid true" "$(jbody '"\(.id) \(.duplicate)"')" "same key returns the same job"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.jobs WHERE idempotency_key = 'nightly-1'")" "one ledger row for the key"
assert_eq 2 "$(rcli LLEN "$P:queue:noop")" "no second envelope for the duplicate"
expect_error 409 conflict "same key, another kind" -- post_json /v1/jobs '{"kind": "backup", "payload": {"target": "db"}, "idempotency_key": "nightly-1"}'
assert_eq 0 "$(rcli LLEN "$P:queue:backup")" "the conflicting request enqueued nothing"
expect_error 400 invalid_request "run_at in seconds" -- post_json /v1/jobs '{"kind": "noop", "run_at": 1795442676}'

# ---- delayed ----
assert_eq 202 "$(post_json /v1/jobs '{"kind": "noop", "run_at": "2099-01-01T00:00:00Z"}')" "submit with run_at"
did=$(jbody .id)
assert_eq delayed "$(jbody .state)" "future run_at is delayed"
assert_eq 1 "$(rcli ZCARD "$P:delayed")" "delayed envelope in the delayed set"
assert_eq 202 "$(post_json /v1/jobs "{\"kind\": \"noop\", \"run_at\": $(( $(date +%s) * 1000 + 1500 ))}")" "submit with run_at in epoch ms"
wait_eq 10 1 rcli ZCARD "$P:delayed" || fail "promoter did not move the due job"
assert_eq 3 "$(rcli LLEN "$P:queue:noop")" "promoter moved the due job to the queue"

# ---- list and pagination ----
assert_eq 200 "$(api GET '/v1/jobs?kind=noop&limit=2')" "list jobs"
assert_eq 2 "$(jbody '.jobs | length')" "limit respected"
cursor=$(jbody .next_before)
assert_eq 200 "$(api GET "/v1/jobs?kind=noop&limit=10&before=$cursor")" "next page"
assert_eq 2 "$(jbody '.jobs | length')" "second page holds the rest"
assert_eq null "$(jbody .next_before)" "last page has no cursor"
assert_eq 200 "$(api GET '/v1/jobs?state=delayed')" "filter by state"
assert_eq true "$(jq --arg id "$did" 'any(.jobs[]; .id == $id) and all(.jobs[]; .state == "delayed")' <"$TMP/body")" \
    "state filter finds the delayed job, and only delayed ones"
assert_eq 200 "$(api GET '/v1/jobs?idempotency_key=nightly-1')" "filter by idempotency key"
assert_eq "$kid" "$(jbody '[.jobs[].id] | join(",")')" "the key finds its one job"
assert_eq 200 "$(api GET '/v1/jobs?target=db')" "filter by target"
assert_eq true "$(jq 'all(.jobs[]; .id != "'"$kid"'")' <"$TMP/body")" "a target filter leaves out jobs naming no target"
expect_error 400 invalid_request "bad target filter" -- api GET '/v1/jobs?target=NOT%20A%20NAME'
expect_error 400 invalid_request "empty idempotency key filter" -- api GET '/v1/jobs?idempotency_key='

# ---- queues, pause, resume ----
assert_eq 200 "$(api GET /v1/queues)" "GET /v1/queues"
assert_eq "3 1 false" "$(jbody '.queues[] | select(.kind == "noop") | "\(.pending) \(.delayed) \(.paused)"')" "noop queue counts"
assert_eq 200 "$(api POST /v1/queues/noop/pause)" "pause noop"
assert_eq 1 "$(rcli SISMEMBER "$P:paused" noop)" "noop in the paused set"
api GET /v1/queues >/dev/null
assert_eq true "$(jbody '.queues[] | select(.kind == "noop") | .paused')" "queues shows noop paused"
assert_eq 200 "$(api POST /v1/queues/noop/pause)" "pause is idempotent"
assert_eq 200 "$(api POST /v1/queues/noop/resume)" "resume noop"
assert_eq 0 "$(rcli SISMEMBER "$P:paused" noop)" "noop no longer paused"

# ---- cancel a queued job ----
assert_eq 200 "$(api POST "/v1/jobs/$id/cancel")" "cancel a queued job"
assert_eq cancelled "$(jbody .state)" "answer says cancelled"
assert_eq cancelled "$(q "SELECT state FROM opspool.jobs WHERE id = '$id'")" "ledger state cancelled"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$id' AND type = 'cancelled'")" "cancel event recorded"
assert_eq 1 "$(rcli HGET "$P:job:$id" cancel)" "cancel flag set for workers"
assert_eq 2 "$(rcli LLEN "$P:queue:noop")" "cancelled envelope removed from the queue"
assert_eq 200 "$(api POST "/v1/jobs/$id/cancel")" "cancel twice: idempotent"
assert_eq "cancelled true" "$(jbody '"\(.state) \(.already)"')" "a second cancel says already"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$id' AND type = 'cancelled'")" "a second cancel records no second cancel event"
assert_eq 200 "$(api POST "/v1/jobs/$did/cancel")" "cancel a delayed job"
assert_eq 0 "$(rcli ZCARD "$P:delayed")" "cancelled delayed envelope removed"

# ---- schedules CRUD ----
assert_eq 201 "$(post_json /v1/schedules '{"name": "nightly-noop", "cron": "30 2 * * *", "timezone": "Europe/Berlin", "kind": "noop", "payload": {"sleep_ms": 1}, "catchup_s": 3600}')" "create a schedule"
assert_eq "forbid true 3600" "$(jbody '"\(.concurrency) \(.enabled) \(.catchup_s)"')" "schedule defaults and fields"
[ "$(jbody .next_fire_at)" != null ] || fail "schedule has no next_fire_at"
assert_eq 200 "$(post_json /v1/schedules '{"name": "nightly-noop", "cron": "@daily", "kind": "noop", "enabled": false}')" "update the schedule"
assert_eq "@daily false" "$(jbody '"\(.cron) \(.enabled)"')" "update applied"
assert_eq 200 "$(api GET /v1/schedules)" "list schedules"
assert_eq nightly-noop "$(jbody '.schedules[0].name')" "schedule listed"
assert_eq 200 "$(api GET /v1/schedules/nightly-noop)" "get one schedule"
assert_eq 0 "$(jbody '.firings | length')" "no firings yet"
assert_eq 200 "$(api DELETE /v1/schedules/nightly-noop)" "delete the schedule"
expect_error 404 not_found "get a deleted schedule" -- api GET /v1/schedules/nightly-noop

# ---- token reload on SIGHUP ----
printf 'rotated-%s\n' "$TOKEN" >"$TMP/tokens"
kill -HUP "$S1"
wait_eq 5 200 curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer rotated-$TOKEN" "$URL/v1/queues" \
    || fail "new token not accepted after SIGHUP"
ok "SIGHUP: the new token is accepted"
expect_error 401 unauthorized "old token after SIGHUP" -- api GET /v1/queues
TOKEN=rotated-$TOKEN

# ---- PostgreSQL connection lost: 503, then reconnected on the next request ----
# A duty (campaigns runs every second) may use the dead connection first: it then reconnects
# before the request, and the request rightly succeeds. Up to 5 tries to see the request be
# the first to find it dead.
lost() {
    q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null
    [ "$(api GET /v1/jobs)" = 503 ]
}
for _ in 1 2 3 4 5; do lost && break; wait_eq 10 200 api GET /v1/jobs || fail "no reconnect"; done
expect_error 503 unavailable "ledger connection lost" -- echo 503
wait_eq 10 200 api GET /v1/jobs || fail "scheduler did not reconnect to PostgreSQL"
ok "next request reconnects"

# ---- worker-backed: run to completion, cancel running, dead-letter retry ----
assert_eq 202 "$(post_json /v1/jobs '{"kind": "noop", "payload": {"result": {"ok": true}}}')" "submit a job for the worker"
rid=$(jbody .id)
assert_eq 202 "$(post_json /v1/jobs '{"kind": "noop", "payload": {"fail": true}, "max_attempts": 1}')" "submit a job that fails"
fid=$(jbody .id)
start_worker w1 OSP_WORKER_SLOTS=2 OSP_LEASE_MS=3000 OSP_WORKER_DUTIES=false
W=$LAST_PID
wait_eq 60 succeeded job_state "$rid" || fail "job did not succeed"
api GET "/v1/jobs/$rid" >/dev/null
assert_eq "succeeded true" "$(jbody '"\(.state) \(.result.ok)"')" "result readable through the API"
wait_eq 60 dead job_state "$fid" || fail "failing job not dead"
ok "failing job dead-lettered"

assert_eq 202 "$(post_json /v1/jobs '{"kind": "noop", "payload": {"sleep_ms": 60000}}')" "submit a long job"
lid=$(jbody .id)
wait_eq 30 running job_state "$lid" || fail "long job not running"
wait_until 10 pgrep -P "$W" || fail "no child process for the long job"
child=$(pgrep -P "$W" | head -1)
assert_eq 202 "$(api POST "/v1/jobs/$lid/cancel")" "cancel a running job"
assert_eq true "$(jbody .cancel_requested)" "cancel requested"
wait_eq 30 cancelled job_state "$lid" || fail "running job not cancelled: $(job_state "$lid")"
ok "running job's state is cancelled"
wait_until 10 sh -c "! kill -0 $child 2>/dev/null" || fail "the cancelled job's child $child is still alive"
ok "the cancelled job's child is gone"

kill -TERM "$W"
wait_until 30 sh -c "! kill -0 $W 2>/dev/null" || fail "worker did not exit on SIGTERM"
ok "worker stopped"
assert_eq 1 "$(rcli LLEN "$P:dead:noop")" "one dead record"
expect_error 400 invalid_request "dead retry with bad ids" -- post_json /v1/dead/noop/retry '{"ids": ["x"]}'
assert_eq 200 "$(post_json /v1/dead/noop/retry '{"max_attempts": 2}')" "retry dead noop jobs"
assert_eq "1 $fid" "$(jbody '"\(.retried) \(.ids[0])"')" "the dead job was retried"
assert_eq "queued 3" "$(q "SELECT state || ' ' || max_attempts FROM opspool.jobs WHERE id = '$fid'")" "ledger: queued with a fresh budget"
assert_eq 0 "$(rcli LLEN "$P:dead:noop")" "dead record removed"
assert_eq 1 "$(rcli LLEN "$P:queue:noop")" "envelope back on the queue"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$fid' AND type = 'retried_from_dead'")" "retry event recorded"
assert_eq 200 "$(post_json /v1/dead/noop/retry '{}')" "retrying again finds nothing"
assert_eq 0 "$(jbody .retried)" "nothing retried twice"

# ---- metrics ----
curl -s "$URL/metrics" >"$TMP/metrics"
bad=$(grep -v '^#' "$TMP/metrics" | grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$' || true)
[ -z "$bad" ] || fail "unparseable metric lines: $bad"
ok "every metrics line parses"
grep -q '^# TYPE opspool_queue_pending gauge$' "$TMP/metrics" || fail "no queue gauge"
grep -Eq '^opspool_jobs_submitted_total\{kind="noop"\} [0-9]+$' "$TMP/metrics" || fail "no submitted counter"
grep -Eq '^opspool_http_requests_total\{class="4xx"\} [1-9][0-9]*$' "$TMP/metrics" || fail "no 4xx count"
grep -Eq '^opspool_duty_duration_seconds_bucket\{duty="promoter",le="\+Inf"\} [0-9]+$' "$TMP/metrics" || fail "no duty histogram"
ok "metrics expose queues, submissions, requests and duty durations"

kill -TERM "$S1"
rc=0
wait "$S1" || rc=$?
assert_eq 0 "$rc" "scheduler exits 0 on SIGTERM (no leaks under ASan)"
finish
