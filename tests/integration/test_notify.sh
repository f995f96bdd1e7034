#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Notifications end to end (docs/notifications.md): events written by the ledger's triggers
# (job.dead, campaign.finished, schedule.missed, backup.missed) reach a receiver that checks
# every signature (tests/support/hookrecv.py); a Slack endpoint gets {"text": ...}; an endpoint
# that never answers fails for good after its attempts and is listed by opspoolctl, and a
# manual retry delivers it; deliveries survive the scheduler's SIGKILL, both between attempts
# and mid-request (the lease runs out, the interrupted attempt is recorded, the same delivery
# id is sent again). Bad endpoint files stop the scheduler with a clear message that quotes
# no URL or secret; SIGHUP with a bad file keeps the old one; bad API and CLI input gets a
# clear error and changes nothing. The regression webhook: test_bench_history.sh.
. "$(dirname "$0")/../support/lib.sh"
# shellcheck source=sched_lib.sh
. "$(dirname "$0")/sched_lib.sh"
[ -x "$SCHED" ] || { echo "opspool-scheduler not built" >&2; exit 77; }
command -v curl >/dev/null && command -v jq >/dev/null || { echo "curl/jq missing" >&2; exit 77; }
"$CTL" migrate >/dev/null

start_recv() { # NAME [hookrecv options] — sets RECV_PORT
    local name=$1; shift
    python3 "$SRC/tests/support/hookrecv.py" --port-file "$TMP/$name.port" --log "$TMP/$name.jsonl" \
        "$@" >>"$TMP/$name.log" 2>&1 &
    PIDS+=("$!")
    RECV_PID=$!
    RECV_PORT=$(port_from_file "$TMP/$name.port" 20) || fail "receiver $name did not start"
}
lines() { [ -f "$1" ] && jq -c "${2:-.}" "$1" | wc -l || echo 0; }
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMP/secret"
SECRET=$(cat "$TMP/secret")
start_recv ops --secret-file "$TMP/secret"
OPS=$RECV_PORT
start_recv slack
SLACK=$RECV_PORT
DOWN=$(free_port) # nothing listens there
echo "http://127.0.0.1:$SLACK/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX" >"$TMP/slack.url"

# ---- bad endpoint files: the scheduler refuses to start, naming the endpoint and field ----
refuse() { # PATTERN JSON
    local pat=$1 rc=0
    printf '%s\n' "$2" >"$TMP/bad.json"
    env OSP_HTTP_ADDR=127.0.0.1:0 OSP_NOTIFY_FILE="$TMP/bad.json" timeout 30 "$SCHED" >"$TMP/bad.raw" 2>&1 || rc=$?
    sed 's/\\"/"/g' "$TMP/bad.raw" >"$TMP/bad.out"
    [ "$rc" = 2 ] && grep -q -- "$pat" "$TMP/bad.out" || fail "expected exit 2 and '$pat', got $rc: $(cat "$TMP/bad.out")"
    ! grep -q "s3cr3t-url-token\|$SECRET" "$TMP/bad.out" || fail "the refusal quotes a URL or secret: $(cat "$TMP/bad.out")"
}
refuse "unknown key \"urll\"" '{"endpoints": {"a": {"urll": "http://x", "secret_file": "'"$TMP/secret"'", "events": ["job.dead"]}}}'
refuse "unknown event type \"job.died\"" '{"endpoints": {"a": {"url": "http://h/s3cr3t-url-token", "secret_file": "'"$TMP/secret"'", "events": ["job.died"]}}}'
refuse "secret_file: required" '{"endpoints": {"a": {"url": "http://h/s3cr3t-url-token", "events": ["*"]}}}'
refuse "an http:// or https:// URL" '{"endpoints": {"a": {"url": "ftp://h/s3cr3t-url-token", "secret_file": "'"$TMP/secret"'", "events": ["*"]}}}'
refuse "exactly one of url and url_file" '{"endpoints": {"a": {"url": "http://h/", "url_file": "'"$TMP/slack.url"'", "secret_file": "'"$TMP/secret"'", "events": ["*"]}}}'
refuse "max_attempts: an integer 1..100" '{"endpoints": {"a": {"url": "http://h/", "secret_file": "'"$TMP/secret"'", "events": ["*"], "max_attempts": 0}}}'
refuse "the name must match" '{"endpoints": {"Bad Name": {"url": "http://h/", "secret_file": "'"$TMP/secret"'", "events": ["*"]}}}'
printf 'short\n' >"$TMP/short.secret"
refuse "the secret must be 16" '{"endpoints": {"a": {"url": "http://h/", "secret_file": "'"$TMP/short.secret"'", "events": ["*"]}}}'
refuse "cannot open" '{"endpoints": {"a": {"url": "http://h/", "secret_file": "/nonexistent/secret", "events": ["*"]}}}'
refuse "bad.json:1:" '{"endpoints": '
ok "bad endpoint files: exit 2, the endpoint and field named, no URL or secret quoted"

# ---- a scheduler with three endpoints ----
cat >"$TMP/notify.json" <<EOT
{"endpoints": {
  "ops":   {"url": "http://127.0.0.1:$OPS/hook", "secret_file": "$TMP/secret", "events": ["*"],
            "retry_base_ms": 200, "retry_max_ms": 1000},
  "chat":  {"url_file": "$TMP/slack.url", "format": "slack", "events": ["job.dead", "campaign.finished"]},
  "down":  {"url": "http://127.0.0.1:$DOWN/hook", "secret_file": "$TMP/secret", "events": ["job.dead"],
            "max_attempts": 2, "retry_base_ms": 100, "retry_max_ms": 200, "timeout_ms": 1000}}}
EOT
cp "$TMP/notify.json" "$TMP/notify.good.json"
NOTIFY=(OSP_NOTIFY_FILE="$TMP/notify.json")
start_scheduler s1 "${NOTIFY[@]}"
API=$LAST_URL
S1=$LAST_PID
grep -q "notifications: 3 endpoint(s)" "$TMP/s1.log" || fail "no start-up line: $(cat "$TMP/s1.log")"
start_worker w OSP_WORKER_KINDS=noop OSP_WORKER_SLOTS=2 OSP_WORKER_ID=w

# job.dead: to "ops" (signed JSON), "chat" (Slack text) and "down" (never answers).
dead=$("$CTL" submit noop --payload '{"fail": true}' --max-attempts 1) || fail "submit"
wait_eq 30 dead job_state "$dead" || fail "job $dead: $(job_state "$dead")"
wait_ge 30 1 lines "$TMP/ops.jsonl" "select(.event == \"job.dead\")" || fail "ops got no job.dead"
r=$(jq -c 'select(.event == "job.dead")' "$TMP/ops.jsonl" | head -1)
assert_eq "true true 200 $dead noop dead" "$(jq -r '[.sig_ok, .fresh, .status, .body.subject, .body.data.kind, .body.data.state] | map(tostring) | join(" ")' <<<"$r")" \
    "job.dead: signed, fresh, accepted; the job, its kind and state"
grep -q "is dead after 1 attempt(s): failed on request" <<<"$(jq -r .body.summary <<<"$r")" || fail "summary: $r"
wait_ge 30 1 lines "$TMP/slack.jsonl" || fail "chat got nothing"
s=$(head -1 "$TMP/slack.jsonl")
assert_eq '["text"]' "$(jq -c '.body | keys' <<<"$s")" "the Slack endpoint gets {\"text\": ...} only"
grep -q "opspool job.dead: job $dead (noop) is dead" <<<"$(jq -r .body.text <<<"$s")" || fail "slack text: $s"
ok "the Slack text: $(jq -r .body.text <<<"$s")"

# "down" fails for good after 2 attempts: listed by opspoolctl (default: failed deliveries).
failed_down() { q "SELECT count(*) FROM opspool.notify_deliveries WHERE endpoint = 'down' AND state = 'failed'"; }
wait_eq 30 1 failed_down || fail "the delivery to 'down' did not fail: $(q "SELECT state, attempts, last_error FROM opspool.notify_deliveries WHERE endpoint = 'down'")"
out=$("$CTL" notifications) || fail "opspoolctl notifications"
printf '%s\n' "$out" | sed 's/^/# /' >&2
grep -q "job.dead .*down .*failed .* 2 .*gave up after 2 attempt(s): Couldn't connect to server" <<<"$out" || fail "opspoolctl notifications: $out"
ok "an endpoint that never answers: failed after max_attempts, listed with the reason"
m=$(curl -fsS "$API/metrics" | grep '^opspool_notifications_total')
grep -q 'endpoint="down",result="failed"} 1$' <<<"$m" && grep -q 'endpoint="down",result="retry"} 1$' <<<"$m" &&
    grep -q 'endpoint="chat",result="failed"} 0$' <<<"$m" || fail "metrics: $m"
ok "/metrics: opspool_notifications_total counts it (every series present from 0: alert OpspoolNotificationsFailing)"
DID=$(q "SELECT id FROM opspool.notify_deliveries WHERE endpoint = 'down'")
j=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$API/v1/notifications?state=failed&endpoint=down") || fail "GET /v1/notifications"
assert_eq "$DID 2 2" "$(jq -r '.deliveries[0] | "\(.id) \(.attempts) \(.log | length)"' <<<"$j")" "GET /v1/notifications: the delivery and its two attempts"

# Bad input: a clear error, nothing changed.
expect() { # CODE PATTERN CURL-ARGS...
    local want=$1 pat=$2 body code; shift 2
    body=$(curl -sS -o - -w '\n%{http_code}' -H "Authorization: Bearer $TOKEN" "$@")
    code=${body##*$'\n'}
    [ "$code" = "$want" ] && grep -q -- "$pat" <<<"$body" || fail "$* -> $code: $body"
}
expect 400 "state: pending, delivered or failed" "$API/v1/notifications?state=lost"
expect 400 "limit" "$API/v1/notifications?limit=0"
expect 400 "endpoint" "$API/v1/notifications?endpoint=Not%20A%20Name"
expect 400 "query" "$API/v1/notifications?stat=failed"
expect 400 "delivery id" -X POST "$API/v1/notifications/not-a-uuid/retry"
expect 404 "no delivery" -X POST "$API/v1/notifications/0190f2a4-1b2c-7d3e-8f40-123456789abc/retry"
rc=0; "$CTL" notifications --state lost >/dev/null 2>"$TMP/e" || rc=$?
assert_eq 2 "$rc" "opspoolctl notifications --state lost: usage error ($(cat "$TMP/e"))"
rc=0; "$CTL" notifications retry nope >/dev/null 2>"$TMP/e" || rc=$?
assert_eq 2 "$rc" "opspoolctl notifications retry with a bad id: usage error"
OPSD=$(q "SELECT id FROM opspool.notify_deliveries WHERE endpoint = 'ops' AND state = 'delivered' LIMIT 1")
rc=0; "$CTL" notifications retry "$OPSD" >/dev/null 2>"$TMP/e" || rc=$?
[ "$rc" != 0 ] && grep -q "was delivered" "$TMP/e" || fail "retry of a delivered one: rc $rc $(cat "$TMP/e")"
assert_eq "failed 2" "$(q "SELECT state, attempts FROM opspool.notify_deliveries WHERE id = '$DID'" | tr '|' ' ')" \
    "refused input changed nothing"

# A manual retry with the receiver up (the endpoint now points at it: SIGHUP reload).
sed "s|127.0.0.1:$DOWN/hook|127.0.0.1:$OPS/hook|" "$TMP/notify.good.json" >"$TMP/notify.json"
kill -HUP "$S1"
wait_until 10 grep -q "SIGHUP: reloaded the notification endpoints" "$TMP/s1.log" || fail "no reload"
"$CTL" notifications retry "$DID" >/dev/null || fail "notifications retry"
wait_eq 30 delivered q "SELECT state FROM opspool.notify_deliveries WHERE id = '$DID'" || fail "the retried delivery was not delivered"
assert_eq 3 "$(q "SELECT attempts FROM opspool.notify_deliveries WHERE id = '$DID'")" "retried: delivered at the third attempt, with a fresh budget"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.audit WHERE action = 'notification.retry' AND object = '$DID'")" "the retry is audited"
# A bad file on SIGHUP: the old endpoints stay.
echo '{"endpoints": {"x": {}}}' >"$TMP/notify.json"
kill -HUP "$S1"
wait_until 10 grep -q "SIGHUP: keeping the previous notification endpoints: .*exactly one of url and url_file" "$TMP/s1.log" || fail "bad reload not refused: $(tail -3 "$TMP/s1.log")"
cp "$TMP/notify.good.json" "$TMP/notify.json"
ok "SIGHUP with a bad endpoints file keeps the previous ones"

# campaign.finished (ops and chat), schedule.missed and backup.missed (written by the ledger's
# trigger on a missed firing of a backup schedule).
printf '{"name": "tiny", "steps": [{"name": "one", "kind": "noop", "payload": {}}]}\n' >"$TMP/plan.json"
"$CTL" campaign submit "$TMP/plan.json" --wait --timeout 60 >/dev/null 2>&1 || fail "campaign"
wait_ge 30 1 lines "$TMP/ops.jsonl" 'select(.event == "campaign.finished")' || fail "no campaign.finished"
assert_eq "tiny succeeded" "$(jq -r 'select(.event == "campaign.finished") | "\(.body.data.name) \(.body.data.state)"' "$TMP/ops.jsonl" | head -1)" \
    "campaign.finished names the campaign and its outcome"
q "INSERT INTO opspool.schedules (name, cron, kind, payload, enabled)
   VALUES ('nightly-backup', '0 3 * * *', 'backup', '{\"target\": \"db\"}', false)" >/dev/null
q "INSERT INTO opspool.schedule_firings (schedule, fire_at, status, reason, replica)
   VALUES ('nightly-backup', now() - interval '1 hour', 'missed', 'not fired: test', 'test')" >/dev/null
wait_ge 30 2 lines "$TMP/ops.jsonl" 'select(.event == "schedule.missed" or .event == "backup.missed")' \
    || fail "no schedule.missed/backup.missed: $(jq -c .event "$TMP/ops.jsonl" | sort | uniq -c)"
ok "a missed backup tick: schedule.missed and backup.missed"

# Deliveries survive the scheduler's SIGKILL, mid-request and between attempts. The receiver
# hangs on the first request and refuses the second (500).
start_recv flaky --secret-file "$TMP/secret" --fail-first 2 --stall-first 1
cat >"$TMP/notify.json" <<EOT
{"endpoints": {"flaky": {"url": "http://127.0.0.1:$RECV_PORT/hook", "secret_file": "$TMP/secret",
                         "events": ["job.dead"], "retry_base_ms": 3000, "retry_max_ms": 3000, "timeout_ms": 5000}}}
EOT
kill -KILL "$S1"
wait "$S1" 2>/dev/null || true
start_scheduler s2 "${NOTIFY[@]}"
S2=$LAST_PID
dead2=$("$CTL" submit noop --payload '{"fail": true}' --max-attempts 1) || fail "submit"
stalled() { grep -c '"stalled": true' "$TMP/flaky.jsonl" 2>/dev/null || echo 0; }
wait_ge 30 1 stalled || fail "the first request never reached the receiver"
kill -KILL "$S2" # mid-request: attempt 1 started and never ends
wait "$S2" 2>/dev/null || true
t_kill=$(date +%s)
start_scheduler s3 "${NOTIFY[@]}"
S3=$LAST_PID
FD=$(q "SELECT d.id FROM opspool.notify_deliveries d JOIN opspool.notify_events e ON e.id = d.event_id
        WHERE d.endpoint = 'flaky' AND e.subject = '$dead2'")
refused() { q "SELECT count(*) FROM opspool.notify_attempts WHERE delivery_id = '$FD' AND http_status = 500"; }
wait_eq 40 1 refused || fail "no second attempt after the lease ran out"
say "attempt 2 came $(( $(date +%s) - t_kill )) s after the mid-request kill (lease: the 5 s timeout + 5 s)"
kill -KILL "$S3" # between attempts: the retry is due in 1.5-3 s
wait "$S3" 2>/dev/null || true
start_scheduler s4 "${NOTIFY[@]}"
S3=$LAST_PID
wait_eq 40 delivered q "SELECT state FROM opspool.notify_deliveries WHERE id = '$FD'" \
    || fail "not delivered after the restarts: $(q "SELECT state, attempts, last_error FROM opspool.notify_deliveries WHERE id = '$FD'")"
log=$(q "SELECT string_agg(attempt || ':' || coalesce(http_status::text, '-') || ':' || coalesce(split_part(error, ':', 1), 'ok'), ' ' ORDER BY attempt)
         FROM opspool.notify_attempts WHERE delivery_id = '$FD'")
assert_eq "1:-:interrupted 2:500:HTTP 500 3:200:ok" "$log" \
    "the log: attempt 1 interrupted by the kill, 2 refused, 3 delivered (after a second kill)"
assert_eq "1 $FD" "$(jq -r --arg d "$FD" 'select(.delivery == $d and .status == 200) | .delivery' "$TMP/flaky.jsonl" | uniq -c | awk '{print $1, $2}')" \
    "one accepted request, with the delivery's id throughout"
kill -TERM "$S3"
rc=0; wait "$S3" 2>/dev/null || rc=$?
assert_eq 0 "$rc" "the scheduler stops cleanly on SIGTERM (leak-checked under ASan: $(grep -c LeakSanitizer "$TMP"/s4.log) reports)"
! grep -q "s3cr3t\|$SECRET\|XXXXXXXXXXXXXXXX\|127.0.0.1:$OPS/hook" "$TMP"/s*.log || fail "a URL or secret in a scheduler log"
ok "no URL or secret in any scheduler log"
finish
