#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Campaigns (docs/campaigns.md) through the API and opspoolctl, with a real scheduler (its
# campaign duty) and worker:
#   - bad plans (cycle, unknown `after`, duplicate names, unknown kind, invalid payload,
#     unknown field, no steps, too many) are refused with 400 / exit 2 and write nothing;
#   - dependencies, `always` and skipping: a failed step's dependants are skipped, independent
#     steps and `always` steps run, the campaign ends failed; one job per step that ran;
#   - fail-fast on and off, decided the same way every run;
#   - cancel: the running step's job is cancelled (its worker stops it), pending steps skipped;
#   - the same plan through opspoolctl campaign submit --wait ends the same way (exit 1);
#   - an idempotency key returns the first campaign;
#   - a schedule fires a campaign (fast test clock: a minute every 2 s) and, with concurrency
#     forbid, never starts one while the previous is still running.
# Bounded: every wait has a timeout; steps are noop jobs of at most a few seconds.
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"

"$CTL" migrate >/dev/null
start_scheduler s
URL=$LAST_URL
S1=$LAST_PID
start_worker w OSP_WORKER_SLOTS=4 OSP_RETRY_BASE_MS=50 OSP_RETRY_MAX_MS=100
W=$LAST_PID

campaign_state() { q "SELECT state FROM opspool.campaigns WHERE id = '$1'"; }
campaign_done() { [ -n "$(q "SELECT 1 FROM opspool.campaigns WHERE id = '$1' AND finished_at IS NOT NULL")" ]; }
steps() { q "SELECT string_agg(step || ':' || state, ' ' ORDER BY ord) FROM opspool.campaign_steps WHERE campaign_id = '$1'"; }
jobs_of() { q "SELECT count(*) FROM opspool.jobs WHERE submitted_by = 'campaign:$1'"; }

# ---- bad plans: 400, nothing written ----
bad() { # bad WHAT-IN-MESSAGE PLAN
    local code
    code=$(post_json /v1/campaigns "$2")
    [ "$code" = 400 ] || fail "bad plan ($1): HTTP $code $(body)"
    grep -q -- "$1" <<<"$(jbody .error.message)" || fail "bad plan: message '$(jbody .error.message)' lacks '$1'"
}
N='"kind": "noop", "payload": {}'
bad "cycle" "{\"name\": \"c\", \"steps\": [{\"name\": \"a\", $N, \"after\": [\"b\"]}, {\"name\": \"b\", $N, \"after\": [\"a\"]}]}"
bad "names no step" "{\"name\": \"c\", \"steps\": [{\"name\": \"a\", $N, \"after\": [\"nope\"]}]}"
bad "used twice" "{\"name\": \"c\", \"steps\": [{\"name\": \"a\", $N}, {\"name\": \"a\", $N}]}"
bad "unknown kind" "{\"name\": \"c\", \"steps\": [{\"name\": \"a\", \"kind\": \"nosuch\"}]}"
bad "step a: " "{\"name\": \"c\", \"steps\": [{\"name\": \"a\", \"kind\": \"noop\", \"payload\": {\"sleep_ms\": -1}}]}"
bad "unknown field" "{\"name\": \"c\", \"steps\": [{\"name\": \"a\", $N, \"affter\": []}]}"
bad "steps" '{"name": "c", "steps": []}'
many=$(python3 -c 'import json; print(json.dumps({"name": "c", "steps": [{"name": "s%d" % i, "kind": "noop"} for i in range(65)]}))')
bad "1..64" "$many"
bad "runs after itself" "{\"name\": \"c\", \"steps\": [{\"name\": \"a\", $N, \"after\": [\"a\"]}]}"
rc=0
printf '%s' "{\"name\": \"c\", \"steps\": [{\"name\": \"a\", $N, \"after\": [\"b\"]}, {\"name\": \"b\", $N, \"after\": [\"a\"]}]}" |
    "$CTL" campaign submit - >/dev/null 2>"$TMP/cli-bad.err" || rc=$?
assert_eq 2 "$rc" "opspoolctl campaign submit of a cyclic plan exits 2"
grep -q cycle "$TMP/cli-bad.err" || fail "CLI message: $(cat "$TMP/cli-bad.err")"
assert_eq "0 0" "$(q "SELECT (SELECT count(*) FROM opspool.campaigns) || ' ' || (SELECT count(*) FROM opspool.jobs)")" "bad plans wrote no campaign and no job"

# ---- dependencies, always, skipping ----
PLAN='{"name": "deps", "steps": [
  {"name": "a", "kind": "noop"},
  {"name": "b", "kind": "noop", "payload": {"fail": true}, "max_attempts": 1, "after": ["a"]},
  {"name": "c", "kind": "noop", "after": ["b"]},
  {"name": "d", "kind": "noop", "after": ["a"]},
  {"name": "e", "kind": "noop", "after": ["b"], "always": true}]}'
code=$(post_json /v1/campaigns "$PLAN")
assert_eq 201 "$code" "POST /v1/campaigns -> 201"
cid=$(jbody .id)
wait_until 60 campaign_done "$cid" || fail "campaign $cid did not finish: $(steps "$cid")"
assert_eq failed "$(campaign_state "$cid")" "a failed step fails the campaign"
assert_eq "a:succeeded b:dead c:skipped d:succeeded e:succeeded" "$(steps "$cid")" "dependants skipped; independent and always steps ran"
assert_eq 4 "$(jobs_of "$cid")" "one job per step that ran (the skipped one has none)"
assert_eq "step b did not succeed" "$(q "SELECT reason FROM opspool.campaign_steps WHERE campaign_id = '$cid' AND step = 'c'")" "the skip names the step"
code=$(api GET "/v1/campaigns/$cid")
assert_eq 200 "$code" "GET /v1/campaigns/{id}"
assert_eq "failed|5|dead" "$(jbody '[.state, (.steps | length), (.steps[] | select(.step == "b") | .job_state)] | join("|")')" "the API shows the steps with their jobs"
jbody '[.events[].type] | index("finished") != null' | grep -q true || fail "no finished event in the timeline"
ok "the timeline ends with finished"

# The same plan through opspoolctl: --wait follows it to the same end, exit 1.
rc=0
printf '%s' "$PLAN" | "$CTL" campaign submit - --wait --timeout 60 >"$TMP/cli.out" 2>"$TMP/cli.err" || rc=$?
assert_eq 1 "$rc" "opspoolctl campaign submit --wait exits 1 for a failed campaign"
cid2=$(head -1 "$TMP/cli.out")
assert_eq "$(steps "$cid")" "$(steps "$cid2")" "opspoolctl and the API leave the same step states"
grep -q "skipped" "$TMP/cli.out" || fail "the CLI's table does not show the skipped step"
"$CTL" campaign show "$cid2" >"$TMP/show.out" || fail "campaign show"
grep -q "step b did not succeed" "$TMP/show.out" || fail "campaign show lacks the reason"
ok "opspoolctl campaign show: steps, AFTER graph, reasons"

# ---- fail-fast on and off ----
ff() { # ff true|false — x fails at once, y runs after z (5 s): skipped only with fail-fast
    printf '{"name": "ff", "fail_fast": %s, "steps": [
      {"name": "x", "kind": "noop", "payload": {"fail": true}, "max_attempts": 1},
      {"name": "z", "kind": "noop", "payload": {"sleep_ms": 5000}},
      {"name": "y", "kind": "noop", "after": ["z"]}]}' "$1"
}
code=$(post_json /v1/campaigns "$(ff true)"); c_on=$(jbody .id)
code=$(post_json /v1/campaigns "$(ff false)"); c_off=$(jbody .id)
wait_until 60 campaign_done "$c_on" || fail "fail-fast campaign did not finish"
wait_until 60 campaign_done "$c_off" || fail "no-fail-fast campaign did not finish"
assert_eq "x:dead z:succeeded y:skipped" "$(steps "$c_on")" "fail-fast: y is skipped once x failed"
assert_eq "x:dead z:succeeded y:succeeded" "$(steps "$c_off")" "without fail-fast: y runs"
assert_eq "failed failed" "$(campaign_state "$c_on") $(campaign_state "$c_off")" "both campaigns failed (x)"

# ---- cancel: the running step is stopped, the rest skipped ----
code=$(post_json /v1/campaigns '{"name": "long", "steps": [
  {"name": "long", "kind": "noop", "payload": {"sleep_ms": 60000}},
  {"name": "next", "kind": "noop", "after": ["long"]},
  {"name": "cleanup", "kind": "noop", "after": ["long"], "always": true}]}')
cc=$(jbody .id)
job=$(q "SELECT job_id FROM opspool.campaign_steps WHERE campaign_id = '$cc' AND step = 'long'")
wait_eq 30 running job_state "$job" || fail "the long step did not start"
code=$(api POST "/v1/campaigns/$cc/cancel")
assert_eq 200 "$code" "POST /v1/campaigns/{id}/cancel -> 200"
wait_until 30 campaign_done "$cc" || fail "cancelled campaign did not finish: $(steps "$cc")"
assert_eq cancelled "$(campaign_state "$cc")" "the campaign is cancelled"
assert_eq "long:cancelled next:skipped cleanup:skipped" "$(steps "$cc")" "running step cancelled, the others skipped"
assert_eq cancelled "$(q "SELECT outcome FROM opspool.job_attempts WHERE job_id = '$job'")" "the worker stopped the running attempt"
code=$(api POST "/v1/campaigns/$cid/cancel")
assert_eq 409 "$code" "cancelling a finished campaign -> 409"

# ---- idempotency ----
code=$(post_json /v1/campaigns '{"name": "once", "idempotency_key": "nightly-1", "steps": [{"name": "a", "kind": "noop"}]}')
first=$(jbody .id)
code=$(post_json /v1/campaigns '{"name": "once", "idempotency_key": "nightly-1", "steps": [{"name": "a", "kind": "noop"}]}')
assert_eq 200 "$code" "the same idempotency key again -> 200"
assert_eq "$first true" "$(jbody '.id + " " + (.duplicate | tostring)')" "it names the first campaign"
wait_until 30 campaign_done "$first" || fail "idempotent campaign did not finish"
assert_eq 1 "$(jobs_of "$first")" "one campaign, one job"

code=$(api GET "/v1/campaigns?limit=2")
assert_eq "200 2" "$code $(jbody '.campaigns | length')" "GET /v1/campaigns?limit=2"
expect_error 400 invalid_request "bad campaign id" -- api GET /v1/campaigns/not-an-id

# ---- a schedule fires campaigns, one at a time ----
code=$(post_json /v1/schedules '{"name": "nightly", "cron": "* * * * *", "kind": "campaign", "concurrency": "forbid",
  "payload": {"name": "nightly", "steps": [{"name": "work", "kind": "noop", "payload": {"sleep_ms": 3000}},
                                           {"name": "after", "kind": "noop", "after": ["work"]}]}}')
assert_eq 201 "$code" "a schedule of kind campaign is accepted (its plan checked)"
code=$(post_json /v1/schedules '{"name": "broken", "cron": "* * * * *", "kind": "campaign",
  "payload": {"name": "b", "steps": [{"name": "a", "kind": "noop", "after": ["a"]}]}}')
assert_eq 400 "$code" "a schedule whose plan is invalid is refused"
# Triggered by hand: the API answers with the campaign; opspoolctl --wait follows it.
code=$(api POST /v1/schedules/nightly/trigger)
assert_eq "202 true running" "$code $(jbody '.campaign') $(jbody '.state')" "trigger of a campaign schedule answers with the campaign"
trig=$(jbody .id)
wait_until 60 campaign_done "$trig" || fail "triggered campaign did not finish"
assert_eq "succeeded nightly" "$(q "SELECT state || ' ' || schedule FROM opspool.campaigns WHERE id = '$trig'")" "the triggered campaign ran and names its schedule"
rc=0
"$CTL" schedules trigger nightly --wait --timeout 60 >"$TMP/trig.out" 2>"$TMP/trig.err" || rc=$?
assert_eq 0 "$rc" "opspoolctl schedules trigger --wait follows a campaign to its end"
grep -q "work .*succeeded" "$TMP/trig.out" || fail "trigger --wait did not print the campaign's steps: $(cat "$TMP/trig.out")"
kill -TERM "$S1"
wait_exit "$S1" 30
# A fake minute every 2 s from now on: ticks come faster than the 3 s campaign finishes. The
# fast clock would make the live worker's heartbeats look stale to this scheduler's reaper:
# its lease is set to an hour of fake time (two real minutes, longer than this phase).
T_FAST=$(q "SELECT now()")
start_scheduler fast OSP_TEST_CLOCK_RATE=30 OSP_TEST_CLOCK_ANCHOR_MS="$(date +%s%3N)" OSP_LEASE_MS=3600000
URL=$LAST_URL
wait_ge 60 3 q "SELECT count(*) FROM opspool.campaigns WHERE schedule = 'nightly' AND state = 'succeeded'" ||
    fail "fewer than 3 scheduled campaigns succeeded: $WAIT_GOT"
ok "the schedule fired campaigns that ran to the end ($(q "SELECT count(*) FROM opspool.campaigns WHERE schedule = 'nightly'"))"
# Only the fired ones: "forbid" governs ticks, and a trigger by hand runs now whatever runs (the
# real-clock scheduler above may have fired one at a minute boundary while a trigger ran).
assert_eq 0 "$(q "SELECT count(*) FROM opspool.campaigns a JOIN opspool.campaigns b ON a.schedule = 'nightly'
                  AND b.schedule = 'nightly' AND a.id < b.id AND a.created_at < coalesce(b.finished_at, now())
                  AND b.created_at < coalesce(a.finished_at, now())
                  AND a.created_at >= '$T_FAST' AND b.created_at >= '$T_FAST'")" "forbid: no two of the schedule's fired campaigns overlap"
n=$(q "SELECT count(*) FROM opspool.schedule_firings WHERE schedule = 'nightly' AND status = 'skipped' AND reason = 'previous still running'")
[ "$n" -gt 0 ] || fail "no tick was skipped while a campaign ran"
ok "ticks during a running campaign were skipped ($n)"
assert_eq "" "$(q "SELECT s.name FROM opspool.schedules s WHERE s.name = 'nightly' AND s.last_job_id IS NULL")" "the schedule records the campaign it fired"
code=$(api GET /v1/schedules/nightly)
[ "$(jbody .last_outcome)" != null ] || fail "the schedule shows no last outcome: $(body)"
ok "GET /v1/schedules/nightly: last outcome $(jbody .last_outcome), last success $(jbody .last_success_at)"
kill -0 "$W" || fail "worker died"
finish
