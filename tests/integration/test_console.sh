#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The web console (docs/console.md) with curl: login with a token gives a session cookie
# (HttpOnly, SameSite=Strict, Path=/ui, Secure behind TLS); pages answer 200 with the figures
# the ledger and Redis hold; a payload with <script> is rendered escaped; POSTs without or
# with a wrong CSRF token, or from another origin, get 403 and change nothing; cancel and
# retry (one job, dead letters) and purge (after its confirmation step) change the ledger; a
# read-only token sees no action and its POSTs get 403; logout ends the session; bad input is
# a clear 4xx; every /ui response carries the security headers; every page is under 150 KB.
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"

RD=rd-$RANDOM$RANDOM
SUB=sub-$RANDOM$RANDOM
cat >"$TMP/tokens" <<EOF
$TOKEN scopes=submit,read,operate
$RD scopes=read
$SUB scopes=submit
EOF
start_scheduler s1 OSP_RECONCILE_GRACE_S=3600
SP=$LAST_PID
URL=$LAST_URL
ADMIN_JAR=$TMP/admin.jar
RO_JAR=$TMP/ro.jar

# ui JAR METHOD PATH [CURL ARGS...] — prints the status; body in $TMP/page, headers in $TMP/hdr.
ui() {
    local jar=$1 m=$2 p=$3; shift 3
    curl -s -o "$TMP/page" -D "$TMP/hdr" -w '%{http_code}' -b "$jar" -c "$jar" -X "$m" "$@" "$URL$p"
}
hdr() { grep -i "^$1:" "$TMP/hdr" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
csrf_of() { grep -o 'name="csrf" value="[0-9a-f]*"' "$TMP/page" | head -1 | sed 's/.*value="\([0-9a-f]*\)"/\1/'; }
post_form() { local jar=$1 p=$2; shift 2; ui "$jar" POST "$p" -H 'Content-Type: application/x-www-form-urlencoded' "$@"; }
# Every /ui answer carries the security headers.
check_headers() {
    local what=$1
    hdr Content-Security-Policy | grep -q "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'" ||
        fail "$what: no strict Content-Security-Policy: $(cat "$TMP/hdr")"
    [ "$(hdr X-Content-Type-Options)" = nosniff ] || fail "$what: no X-Content-Type-Options"
    [ "$(hdr Referrer-Policy)" = no-referrer ] || fail "$what: no Referrer-Policy"
    [ "$(hdr Cache-Control)" = no-store ] || fail "$what: no Cache-Control: no-store"
}
check_size() {
    local n; n=$(stat -c %s "$TMP/page")
    [ "$n" -lt 153600 ] || fail "$1: page of $n bytes (limit 150 KB)"
}

# ---- login ----
assert_eq 303 "$(ui "$TMP/none.jar" GET /ui/)" "no session: GET /ui/ redirects"
assert_eq /ui/login "$(hdr Location)" "... to the login page"
check_headers "redirect"
assert_eq 200 "$(ui "$TMP/none.jar" GET /ui/login)" "login page"
check_headers "login page"
grep -q 'type="password"' "$TMP/page" || fail "no token field on the login page"
assert_eq 401 "$(post_form "$TMP/none.jar" /ui/login --data 'token=wrong')" "unknown token refused"
assert_eq 403 "$(post_form "$TMP/none.jar" /ui/login --data "token=$SUB")" "a submit-only token cannot log in"
grep -q 'lacks the' "$TMP/page" || fail "the refusal does not say why"
assert_eq 403 "$(post_form "$TMP/none.jar" /ui/login -H 'Origin: http://evil.example' --data "token=$TOKEN")" "cross-origin login refused"
[ -s "$TMP/none.jar" ] && grep -q osp_session "$TMP/none.jar" && fail "a refused login set a cookie"
assert_eq 303 "$(post_form "$ADMIN_JAR" /ui/login --data-urlencode "token=$TOKEN")" "login with the operate token"
cookie=$(hdr Set-Cookie)
for attr in 'osp_session=[0-9a-f]\{64\};' 'Path=/ui' 'HttpOnly' 'SameSite=Strict'; do
    echo "$cookie" | grep -q "$attr" || fail "cookie lacks $attr: $cookie"
done
echo "$cookie" | grep -q Secure && fail "Secure over plain HTTP without the setting: $cookie"
ok "session cookie: 256-bit id, Path=/ui, HttpOnly, SameSite=Strict"
assert_eq 303 "$(post_form "$TMP/tls.jar" /ui/login -H 'X-Forwarded-Proto: https' --data-urlencode "token=$TOKEN")" "login behind TLS"
hdr Set-Cookie | grep -q '; Secure' || fail "no Secure attribute behind TLS: $(hdr Set-Cookie)"
ok "behind TLS the cookie is Secure"
assert_eq 303 "$(post_form "$RO_JAR" /ui/login --data-urlencode "token=$RD")" "login with the read-only token"

# ---- data: queued jobs, one with an XSS payload ----
XSS='<script>alert(1)</script>'
assert_eq 202 "$(post_json /v1/jobs "{\"kind\":\"noop\",\"payload\":{\"result\":{\"note\":\"$XSS\"}},\"run_at\":\"2999-01-01T00:00:00Z\"}")" "submit a delayed job with a <script> payload"
xid=$(jbody .id)
for i in 1 2 3; do
    assert_eq 202 "$(post_json /v1/jobs '{"kind":"noop","payload":{"sleep_ms":1}}')" "submit queued job $i"
    qid=$(jbody .id)
done

# ---- overview ----
assert_eq 200 "$(ui "$ADMIN_JAR" GET /ui/)" "overview"
check_headers overview; check_size overview
assert_eq 200 "$(api GET /v1/queues)" "queues through the API"
for f in pending delayed dead running; do
    want=$(jbody ".queues[] | select(.kind == \"noop\") | .$f")
    got=$(grep -o "<tr data-kind=\"noop\">.*" "$TMP/page" | grep -o "data-f=\"$f\">[^<]*<\|data-f=\"$f\"><a[^>]*>[^<]*<" | head -1 | sed 's/.*>\([^<]*\)<$/\1/')
    assert_eq "$want" "$got" "overview: noop $f as GET /v1/queues says"
done
grep -q 'data-refresh="5"' "$TMP/page" || fail "overview does not refresh"
ok "overview refreshes every 5 s"

# ---- jobs list and detail ----
assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/jobs?kind=noop')" "jobs page filtered by kind"
check_headers jobs; check_size jobs
assert_eq "$(q "SELECT count(*) FROM opspool.jobs WHERE kind = 'noop'")" "$(grep -o 'href="/ui/jobs/[0-9a-f-]*"' "$TMP/page" | sort -u | wc -l)" "the jobs page lists the ledger's noop jobs"
assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/jobs?kind=noop&state=delayed')" "jobs page filtered by state"
grep -q "$xid" "$TMP/page" || fail "the delayed job is not listed"
grep -q "$qid" "$TMP/page" && fail "a queued job is listed under delayed"
ok "state filter"
assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/jobs?kind=noop&limit=2')" "paging: first page of 2"
older=$(grep -o 'id="older" href="[^"]*"' "$TMP/page" | sed 's/.*href="\([^"]*\)"/\1/; s/&amp;/\&/g')
[ -n "$older" ] || fail "no link to older jobs"
assert_eq 200 "$(ui "$ADMIN_JAR" GET "$older")" "paging: next page"
assert_eq 2 "$(grep -o 'href="/ui/jobs/[0-9a-f-]*"' "$TMP/page" | sort -u | wc -l)" "the next page holds the next 2"
assert_eq 303 "$(ui "$ADMIN_JAR" GET "/ui/jobs?id=$xid")" "find by id"
assert_eq "/ui/jobs/$xid" "$(hdr Location)" "find by id leads to the job"
assert_eq 200 "$(ui "$ADMIN_JAR" GET "/ui/jobs/$xid")" "job detail"
check_headers "job detail"; check_size "job detail"
grep -q '&lt;script&gt;alert(1)&lt;/script&gt;' "$TMP/page" || fail "the payload is not shown escaped"
grep -q '<script>alert' "$TMP/page" && fail "the payload's <script> reached the page raw"
ok "a <script> payload renders as text"
grep -q 'id="cancel"' "$TMP/page" || fail "no Cancel button for an operate session"
ok "operate session: Cancel button"

# ---- CSRF and origin ----
csrf=$(csrf_of)
[ ${#csrf} = 64 ] || fail "no CSRF token on the page"
if [ "${csrf: -1}" = 0 ]; then wrong=${csrf%?}1; else wrong=${csrf%?}0; fi
assert_eq 403 "$(post_form "$ADMIN_JAR" "/ui/jobs/$xid/cancel" --data '')" "cancel without a CSRF token"
assert_eq 403 "$(post_form "$ADMIN_JAR" "/ui/jobs/$xid/cancel" --data "csrf=$wrong")" "cancel with a wrong CSRF token"
assert_eq 403 "$(post_form "$ADMIN_JAR" "/ui/jobs/$xid/cancel" -H 'Origin: http://evil.example' --data "csrf=$csrf")" "cancel from another origin"
assert_eq 403 "$(post_form "$ADMIN_JAR" "/ui/jobs/$xid/cancel" -H 'Sec-Fetch-Site: cross-site' -H 'Origin: null' --data "csrf=$csrf")" "cancel from another site (Sec-Fetch-Site)"
assert_eq 403 "$(post_form "$TMP/none.jar" "/ui/jobs/$xid/cancel" --data "csrf=$csrf")" "cancel without a session"
assert_eq delayed "$(job_state "$xid")" "refused POSTs changed nothing"

# ---- cancel and retry through the console ----
assert_eq 303 "$(post_form "$ADMIN_JAR" "/ui/jobs/$xid/cancel" -H "Origin: $URL" --data "csrf=$csrf")" "cancel with the CSRF token"
assert_eq "/ui/jobs/$xid?done=cancel" "$(hdr Location)" "back to the job"
assert_eq cancelled "$(job_state "$xid")" "the ledger says cancelled"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$xid' AND type = 'audit' AND data->>'via' = 'console'")" "an audit event names the console"
assert_eq 200 "$(ui "$ADMIN_JAR" GET "/ui/jobs/$xid?done=cancel")" "job page after cancel"
grep -q 'id="retry"' "$TMP/page" || fail "no Retry button for a cancelled job"
grep -q 'id="cancel"' "$TMP/page" && fail "a Cancel button for a cancelled job"
assert_eq 303 "$(post_form "$ADMIN_JAR" "/ui/jobs/$xid/retry" --data "csrf=$csrf")" "retry with the CSRF token"
assert_eq queued "$(job_state "$xid")" "the ledger has the job back, queued"
assert_eq 409 "$(post_form "$ADMIN_JAR" "/ui/jobs/$qid/retry" --data "csrf=$csrf")" "retrying a job that never ended: 409"
grep -q 'class="error"' "$TMP/page" || fail "the 409 is not an HTML error page"

# ---- a running job and dead letters (a worker) ----
assert_eq 202 "$(post_json /v1/jobs '{"kind":"noop","payload":{"sleep_ms":60000}}')" "submit a long job"
lid=$(jbody .id)
for i in 1 2; do
    assert_eq 202 "$(post_json /v1/jobs '{"kind":"noop","payload":{"fail":true},"max_attempts":1}')" "submit a failing job $i"
    eval "d$i=\$(jbody .id)"
done
start_worker w1 OSP_WORKER_SLOTS=4 OSP_LEASE_MS=3000 OSP_WORKER_DUTIES=false
W=$LAST_PID
wait_eq 60 running job_state "$lid" || fail "long job not running"
wait_eq 60 dead job_state "$d1" || fail "failing job 1 not dead"
wait_eq 60 dead job_state "$d2" || fail "failing job 2 not dead"
wait_eq 20 2 rcli LLEN "$P:dead:noop" || fail "no dead records"
assert_eq 200 "$(ui "$ADMIN_JAR" GET /ui/)" "overview with a worker"
grep -q '<table id="workers">' "$TMP/page" || fail "no workers table"
ok "overview lists the worker"
assert_eq 200 "$(ui "$ADMIN_JAR" GET "/ui/jobs/$lid")" "the running job's page"
assert_eq 303 "$(post_form "$ADMIN_JAR" "/ui/jobs/$lid/cancel" --data "csrf=$csrf")" "cancel the running job"
assert_eq "/ui/jobs/$lid?done=cancel_requested" "$(hdr Location)" "cancel requested"
wait_eq 30 cancelled job_state "$lid" || fail "running job not cancelled: $(job_state "$lid")"
ok "the running job was cancelled through the console"
kill -TERM "$W"
wait_until 30 sh -c "! kill -0 $W 2>/dev/null" || fail "worker did not exit"

assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/dead?kind=noop')" "dead letters page"
check_headers dead; check_size dead
assert_eq "$(rcli LLEN "$P:dead:noop")" "$(grep -o 'name="ids" value=' "$TMP/page" | wc -l)" "the page lists every dead record"
grep -q "value=\"$d1\"" "$TMP/page" || fail "dead job 1 not listed"
grep -q 'fail' "$TMP/page" || fail "no reason shown"
assert_eq 403 "$(post_form "$ADMIN_JAR" /ui/dead/noop/retry --data "what=selected&ids=$d1")" "dead retry without CSRF"
assert_eq dead "$(job_state "$d1")" "nothing retried"
assert_eq 303 "$(post_form "$ADMIN_JAR" /ui/dead/noop/retry --data "csrf=$csrf&what=selected&ids=$d1")" "retry selected"
assert_eq "/ui/dead?kind=noop&done=retried&n=1" "$(hdr Location)" "one retried"
assert_eq queued "$(job_state "$d1")" "the ledger has the dead job queued"
assert_eq 1 "$(rcli LLEN "$P:dead:noop")" "its dead record is gone, the other stays"
assert_eq 200 "$(post_form "$ADMIN_JAR" /ui/dead/noop/purge --data "csrf=$csrf&what=all")" "purge all: a confirmation step"
grep -q 'id="would-purge">1 dead' "$TMP/page" || fail "the confirmation does not say how many"
assert_eq 1 "$(rcli LLEN "$P:dead:noop")" "nothing purged before confirming"
assert_eq 303 "$(post_form "$ADMIN_JAR" /ui/dead/noop/purge --data "csrf=$csrf&what=all&confirm=yes")" "purge confirmed"
assert_eq 0 "$(rcli LLEN "$P:dead:noop")" "the dead record is purged"
assert_eq dead "$(job_state "$d2")" "the ledger keeps the purged job as dead"

# ---- schedules ----
assert_eq 201 "$(post_json /v1/schedules "{\"name\":\"nightly.ui\",\"cron\":\"0 3 * * *\",\"timezone\":\"Europe/Berlin\",\"kind\":\"noop\",\"payload\":{\"result\":{\"note\":\"$XSS\"}}}")" "define a schedule with a <script> payload"
assert_eq 200 "$(ui "$ADMIN_JAR" GET /ui/schedules)" "schedules page"
check_headers schedules; check_size schedules
grep -q '<tr data-schedule="nightly.ui">' "$TMP/page" || fail "the schedule is not listed"
grep -q '<td class="mono">0 3 \* \* \*</td><td>Europe/Berlin</td><td>noop</td>' "$TMP/page" || fail "cron, zone and kind not shown"
n=$(grep -Eo '<time datetime="[^"]*">[0-9-]{10} 03:00\+0[12]:00</time>' "$TMP/page" | wc -l)
assert_eq 3 "$n" "three next fire times at 03:00 Berlin time"
first=$(grep -o '<time datetime="[^"]*"' "$TMP/page" | head -1 | sed 's/.*="\(.*\)"/\1/')
assert_eq "$(q "SELECT to_char(next_fire_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM opspool.schedules WHERE name = 'nightly.ui'")" "${first%.000Z}" "the first is the ledger's next tick"
grep -q 'data-action="trigger"' "$TMP/page" || fail "no Trigger button for an operate session"
assert_eq 200 "$(ui "$ADMIN_JAR" GET /ui/schedules/nightly.ui)" "a schedule's page"
check_headers schedule; check_size schedule
assert_eq 5 "$(grep -Eo '[0-9-]{10} 03:00\+0[12]:00</time>' "$TMP/page" | wc -l)" "its page shows five next fire times"
grep -q '&lt;script&gt;alert(1)&lt;/script&gt;' "$TMP/page" || fail "the schedule's payload is not shown escaped"
grep -q '<script>alert' "$TMP/page" && fail "the schedule's <script> reached the page raw"
csrf=$(csrf_of)
before=$(q "SELECT count(*) FROM opspool.jobs WHERE schedule = 'nightly.ui'")
assert_eq 403 "$(post_form "$ADMIN_JAR" /ui/schedules/nightly.ui/trigger --data '')" "trigger without a CSRF token"
assert_eq 403 "$(post_form "$ADMIN_JAR" /ui/schedules/nightly.ui/disable --data "csrf=$wrong")" "disable with a wrong CSRF token"
assert_eq "$before" "$(q "SELECT count(*) FROM opspool.jobs WHERE schedule = 'nightly.ui'")" "refused trigger submitted nothing"
assert_eq t "$(q "SELECT enabled FROM opspool.schedules WHERE name = 'nightly.ui'")" "refused disable changed nothing"
assert_eq 303 "$(post_form "$ADMIN_JAR" /ui/schedules/nightly.ui/trigger --data "csrf=$csrf")" "trigger now"
assert_eq "/ui/schedules/nightly.ui?done=triggered" "$(hdr Location)" "back to the schedule"
assert_eq $((before + 1)) "$(q "SELECT count(*) FROM opspool.jobs WHERE schedule = 'nightly.ui'")" "the trigger submitted one job of the schedule"
sj=$(q "SELECT id FROM opspool.jobs WHERE schedule = 'nightly.ui' ORDER BY created_at DESC LIMIT 1")
assert_eq 1 "$(q "SELECT count(*) FROM opspool.audit WHERE action = 'schedule.trigger' AND via = 'console' AND object = 'nightly.ui'")" "the trigger is audited via the console"
assert_eq 303 "$(post_form "$ADMIN_JAR" /ui/schedules/nightly.ui/disable --data "csrf=$csrf")" "disable"
assert_eq f "$(q "SELECT enabled FROM opspool.schedules WHERE name = 'nightly.ui'")" "the ledger says disabled"
assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/schedules/nightly.ui?done=disabled')" "the schedule's page after disable"
grep -q 'data-f="enabled">no<' "$TMP/page" || fail "the page does not say disabled"
grep -q 'data-action="enable"' "$TMP/page" || fail "no Enable button for a disabled schedule"
assert_eq 303 "$(post_form "$ADMIN_JAR" /ui/schedules/nightly.ui/enable --data "csrf=$csrf")" "enable"
assert_eq t "$(q "SELECT enabled FROM opspool.schedules WHERE name = 'nightly.ui'")" "the ledger says enabled"
assert_eq 2 "$(q "SELECT count(*) FROM opspool.audit WHERE action IN ('schedule.enable', 'schedule.disable') AND via = 'console'")" "enable and disable are audited via the console"
q "INSERT INTO opspool.schedule_firings (schedule, fire_at, status, job_id, replica) VALUES ('nightly.ui', now() - interval '1 day', 'fired', '$sj', 'r<b>1')" >/dev/null
q "UPDATE opspool.jobs SET state = 'succeeded', finished_at = now() WHERE id = '$sj'" >/dev/null
assert_eq 200 "$(ui "$ADMIN_JAR" GET /ui/schedules/nightly.ui)" "the schedule's page with a firing"
grep -q "href=\"/ui/jobs/$sj\"" "$TMP/page" || fail "the firing's job is not linked"
grep -q 'data-f="outcome"><span class="state state-succeeded">succeeded' "$TMP/page" || fail "the firing's outcome is not shown"
grep -q 'r&lt;b&gt;1' "$TMP/page" || fail "the replica name is not escaped"
ok "schedule: firings with their jobs' outcomes, values escaped"
assert_eq 404 "$(ui "$ADMIN_JAR" GET /ui/schedules/nosuch)" "unknown schedule"
assert_eq 400 "$(ui "$ADMIN_JAR" GET '/ui/schedules/bad%20name')" "bad schedule name"
assert_eq 404 "$(post_form "$ADMIN_JAR" /ui/schedules/nosuch/trigger --data "csrf=$csrf")" "trigger an unknown schedule"

# ---- campaigns (no worker runs now: the first step stays queued) ----
assert_eq 201 "$(post_json /v1/campaigns '{"name":"ui-camp","steps":[{"name":"prepare","kind":"noop"},{"name":"left","kind":"noop","after":["prepare"]},{"name":"right","kind":"noop","after":["prepare"]},{"name":"join","kind":"noop","after":["left","right"]}]}')" "submit a campaign"
cid=$(jbody .id)
assert_eq 200 "$(ui "$ADMIN_JAR" GET /ui/campaigns)" "campaigns page"
check_headers campaigns; check_size campaigns
grep -q "href=\"/ui/campaigns/$cid\"" "$TMP/page" || fail "the campaign is not listed"
assert_eq 200 "$(ui "$ADMIN_JAR" GET "/ui/campaigns/$cid")" "a campaign's page"
check_headers campaign; check_size campaign
grep -q '<svg class="chart" id="steps-graph"' "$TMP/page" || fail "no steps graph"
assert_eq 4 "$(grep -o '<g class="step">' "$TMP/page" | wc -l)" "the graph draws four steps"
assert_eq 4 "$(grep -o 'marker-end="url(#arrow)"' "$TMP/page" | wc -l)" "and four dependencies"
for st in prepare left right join; do
    want=$(q "SELECT state FROM opspool.campaign_steps WHERE campaign_id = '$cid' AND step = '$st'")
    grep -q "<tr data-step=\"$st\">.*data-f=\"state\"><span class=\"state state-$want\">" <(sed 's/<tr /\n<tr /g' "$TMP/page") || fail "step $st: not shown as $want"
done
ok "campaign steps with the ledger's states"
grep -q 'id="cancel"' "$TMP/page" || fail "no Cancel button on a running campaign"
assert_eq 403 "$(post_form "$ADMIN_JAR" "/ui/campaigns/$cid/cancel" --data "csrf=$wrong")" "campaign cancel with a wrong CSRF token"
assert_eq running "$(q "SELECT state FROM opspool.campaigns WHERE id = '$cid'")" "refused cancel changed nothing"
assert_eq 303 "$(post_form "$ADMIN_JAR" "/ui/campaigns/$cid/cancel" --data "csrf=$csrf")" "cancel the campaign"
assert_eq cancelled "$(q "SELECT state FROM opspool.campaigns WHERE id = '$cid'")" "the ledger says cancelled"
assert_eq 303 "$(post_form "$ADMIN_JAR" "/ui/campaigns/$cid/cancel" --data "csrf=$csrf")" "cancelling it again is idempotent (as the API's)"
assert_eq 200 "$(ui "$ADMIN_JAR" GET "/ui/campaigns/$cid?done=campaign_cancel")" "the campaign's page after cancel"
grep -q 'id="cancel"' "$TMP/page" && fail "a Cancel button on a cancelled campaign"
grep -q 'data-f="state"><span class="state state-cancelled">' "$TMP/page" || fail "the page does not say cancelled"
assert_eq 404 "$(ui "$ADMIN_JAR" GET /ui/campaigns/0190f2a4-1b2c-7d3e-8f40-123456789abc)" "unknown campaign"
assert_eq 400 "$(ui "$ADMIN_JAR" GET /ui/campaigns/x)" "bad campaign id"

# ---- benchmarks (rows written as a benchmark job records them) ----
bj=$(q "INSERT INTO opspool.jobs (id, kind, state, payload, attempt, finished_at) VALUES (gen_random_uuid(), 'benchmark', 'succeeded', '{}', 1, now()) RETURNING id" | head -1)
q "INSERT INTO opspool.benchmark_results (job_id, attempt, target, lane, model, requests, errors, rps, p50_ms, p90_ms, p95_ms, p99_ms, p999_ms, max_ms, passed, created_at)
   SELECT gen_random_uuid(), 1, 'svc', 'closed', 'closed', 5000, 0, 1000 + g, 2.0 + g * 0.01, 4, 5, 10.0 + g * 0.1, 12, 20, true, now() - (10 - g) * interval '1 hour'
   FROM generate_series(1, 8) g" >/dev/null
q "INSERT INTO opspool.benchmark_results (job_id, attempt, target, lane, model, requests, errors, rps, p50_ms, p90_ms, p95_ms, p99_ms, p999_ms, max_ms, passed, created_at)
   VALUES ('$bj', 1, 'svc', 'closed', 'closed', 5000, 0, 1005, 8.5, 12, 14, 41.25, 50, 60, true, now())" >/dev/null
assert_eq 200 "$(ui "$ADMIN_JAR" GET /ui/benchmarks)" "benchmarks page"
check_headers benchmarks; check_size benchmarks
grep -q '<section class="series" data-target="svc" data-lane="closed">' "$TMP/page" || fail "the series is not shown"
grep -q '<svg class="chart trend"' "$TMP/page" || fail "no trend chart"
grep -q 'class="baseline"' "$TMP/page" || fail "no baseline line"
grep -q '<circle class="regressed"' "$TMP/page" || fail "the regression is not marked on the chart"
assert_eq "$(q "SELECT opspool.bench_judge(r)->>'verdict' FROM opspool.benchmark_results r WHERE job_id = '$bj'")" regressed "the ledger judges the last run regressed"
grep -q '<tr class="regressed"><td>[^<]*</td><td><a class="mono" href="/ui/jobs/'"$bj"'">' "$TMP/page" || fail "the regressed run is not highlighted"
grep -q '<td class="num">41.25</td>' "$TMP/page" || fail "the run's p99 is not shown"
ok "benchmarks: history, verdicts, regressed highlighted"
assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/benchmarks?target=svc&lane=closed')" "benchmarks filtered"
assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/benchmarks?target=nosuch')" "benchmarks of an unknown target"
grep -q 'id="no-benchmarks"' "$TMP/page" || fail "no 'nothing matches' note"
assert_eq 400 "$(ui "$ADMIN_JAR" GET '/ui/benchmarks?target=%3Cscript%3E')" "bad target name"
grep -q '<script>' "$TMP/page" && fail "a bad target was echoed raw"
assert_eq 200 "$(ui "$ADMIN_JAR" GET "/ui/jobs/$bj")" "the benchmark job's page"
check_size "benchmark job"
grep -q '<table id="bench-lanes">' "$TMP/page" || fail "no lanes table on the benchmark job"
for v in 8.50 12.00 14.00 41.25 50.00; do grep -q "<td class=\"num\">$v</td>" "$TMP/page" || fail "lane figure $v missing"; done
grep -q 'data-f="verdict"><span class="verdict bad">regressed' "$TMP/page" || fail "the lane's judge is not shown"
grep -q '<svg class="chart trend"' "$TMP/page" || fail "no trend on the benchmark job"
ok "benchmark job: p50..p99.9 per lane, judge and trend"

# ---- a drill's chart (the result a drill records) ----
DR='{"target":"svc","verdict":"pass","injected":true,"recovered":true,"time_to_detect_ms":99,"time_to_recover_ms":599,"availability":0.868,"availability_under_fault":0.848,"duration_ms":4500,
 "phases":{"steady":{"probes":5,"ok":5,"availability":1.0,"p50_ms":0.3,"p95_ms":0.4,"p99_ms":0.5,"start_ms":0,"end_ms":400},
           "inject":{"probes":0,"ok":0,"availability":null,"start_ms":400,"end_ms":401},
           "observe":{"probes":30,"ok":25,"availability":0.833,"p50_ms":0.363,"p95_ms":0.449,"p99_ms":0.544,"start_ms":401,"end_ms":3425},
           "rollback":{"probes":0,"ok":0,"start_ms":3425,"end_ms":3426},
           "recovery":{"probes":8,"ok":8,"availability":1.0,"p50_ms":0.31,"p95_ms":0.42,"p99_ms":0.47,"start_ms":3426,"end_ms":4500}},
 "timeline":{"inject_ms":401,"fault_end_ms":401,"rollback_done_ms":3425}}'
dj=$(q "INSERT INTO opspool.jobs (id, kind, state, payload, attempt, result, finished_at) VALUES (gen_random_uuid(), 'drill', 'succeeded', '{\"target\":\"svc\"}', 1, '$DR', now()) RETURNING id" | head -1)
assert_eq 200 "$(ui "$ADMIN_JAR" GET "/ui/jobs/$dj")" "the drill job's page"
check_headers "drill job"; check_size "drill job"
grep -q '<svg class="chart" id="drill-chart"' "$TMP/page" || fail "no drill chart"
for ph in steady inject observe rollback recovery; do grep -q "data-phase=\"$ph\"" "$TMP/page" || fail "no band for phase $ph"; done
grep -q 'detect 99 ms' "$TMP/page" || fail "time to detect not marked"
grep -q 'recover 599 ms' "$TMP/page" || fail "time to recover not marked"
grep -q 'data-f="availability_under_fault">0.848' "$TMP/page" || fail "availability under fault not shown"
ok "drill job: phases as bands, detect and recover marked"

# ---- a seed's runs and a backup's files (rows as the jobs record them) ----
sj1=$(q "INSERT INTO opspool.jobs (id, kind, state, payload, attempt, finished_at) VALUES (gen_random_uuid(), 'seed', 'succeeded', '{\"target\":\"tgt-ui\"}', 2, now()) RETURNING id" | head -1)
q "INSERT INTO opspool.seed_runs (job_id, attempt, target, seed, scale, mode, rows, bytes, duration_ms, rows_per_s, digest, created_at)
   VALUES ('$sj1', 2, '<b>evil</b>', 424242, 7, 'replace', '{\"users\": 7000, \"urls\": 70000, \"clicks\": 700000}', 81234567, 4321, 179593.61, 'd1g3st0123456789abcdef', now())" >/dev/null
assert_eq 200 "$(ui "$ADMIN_JAR" GET "/ui/jobs/$sj1")" "the seed job's page"
check_headers "seed job"; check_size "seed job"
grep -q '<table id="seed-runs">' "$TMP/page" || fail "no seed runs table"
for fv in 'attempt">2' 'seed">424242' 'scale">7' 'mode">replace' 'bytes">81234567' 'duration_ms">4321' 'rows_per_s">179593.61' 'digest">d1g3st0123456789abcdef'; do
    grep -q "data-f=\"$fv<" "$TMP/page" || fail "seed run: $fv not shown"
done
grep -q 'clicks 700000' "$TMP/page" || fail "seed run: rows per table not shown"
grep -q 'data-f="target">&lt;b&gt;evil&lt;/b&gt;<' "$TMP/page" || fail "the seed run's target is not escaped"
grep -q '<b>evil' "$TMP/page" && fail "a hostile target name reached the page raw"
ok "seed job: the ledger's seed run, hostile target escaped"
bk=$(q "INSERT INTO opspool.jobs (id, kind, state, payload, attempt, finished_at) VALUES (gen_random_uuid(), 'backup', 'succeeded', '{\"target\":\"tgt-ui\"}', 1, now()) RETURNING id" | head -1)
q "INSERT INTO opspool.backups (job_id, attempt, target, path, bytes, sha256, server_version, pg_dump_version, duration_ms, verified, restore_ms, created_at)
   VALUES ('$bk', 1, 'tgt-ui', '/var/backups/tgt-ui/20250101T000000Z-$bk.dump', 987654, 'ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12', '16.4', '16.4', 2345, 'restore', 6789, now())" >/dev/null
assert_eq 200 "$(ui "$ADMIN_JAR" GET "/ui/jobs/$bk")" "the backup job's page"
check_headers "backup job"; check_size "backup job"
grep -q '<table id="backups">' "$TMP/page" || fail "no backups table"
for fv in "path\">/var/backups/tgt-ui/20250101T000000Z-$bk.dump" 'bytes">987654' 'sha256">ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12' 'verified">restore' 'restore_ms">6789' 'duration_ms">2345'; do
    grep -q "data-f=\"$fv<" "$TMP/page" || fail "backup: $fv not shown"
done
ok "backup job: file, size, sha256, verification, restore time, duration"
assert_eq 200 "$(ui "$ADMIN_JAR" GET "/ui/jobs/$dj")" "a job of another kind"
grep -q 'id="seed-runs"\|id="backups"' "$TMP/page" && fail "seed/backup tables on a drill"
nj=$(q "INSERT INTO opspool.jobs (id, kind, state, payload, attempt) VALUES (gen_random_uuid(), 'backup', 'queued', '{}', 0) RETURNING id" | head -1)
assert_eq 200 "$(ui "$ADMIN_JAR" GET "/ui/jobs/$nj")" "a backup without a record"
grep -q 'id="backup-none"' "$TMP/page" || fail "no 'nothing recorded' note"

# ---- jobs filters: target, idempotency key, since ----
IK="ik $RANDOM&<x>"
fa=$(q "INSERT INTO opspool.jobs (id, kind, state, payload, attempt, idempotency_key) VALUES (gen_random_uuid(), 'noop', 'queued', '{\"target\":\"flt-a\"}', 0, '$IK') RETURNING id" | head -1)
fb=$(q "INSERT INTO opspool.jobs (id, kind, state, payload, attempt) VALUES (gen_random_uuid(), 'noop', 'queued', '{\"target\":\"flt-b\"}', 0) RETURNING id" | head -1)
fo=$(q "INSERT INTO opspool.jobs (id, kind, state, payload, attempt, created_at) VALUES (gen_random_uuid(), 'noop', 'queued', '{\"target\":\"flt-b\"}', 0, now() - interval '3 days') RETURNING id" | head -1)
listed() { grep -o 'href="/ui/jobs/[0-9a-f-]*"' "$TMP/page" | sed 's|.*/||; s|"||' | sort -u | tr '\n' ' '; }
assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/jobs?target=flt-a')" "jobs filtered by target"
assert_eq "$fa " "$(listed)" "target filter: only the job of that target"
assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/jobs?target=flt-b')" "jobs of target flt-b"
assert_eq "$(printf '%s\n' "$fb" "$fo" | sort | tr '\n' ' ')" "$(listed)" "target filter: both jobs of flt-b"
assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/jobs?target=flt-b&since=1d')" "target and since"
assert_eq "$fb " "$(listed)" "since=1d leaves out the 3-day-old job"
assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/jobs?target=flt-b&since=7d&kind=noop')" "since=7d"
assert_eq 2 "$(listed | wc -w)" "since=7d takes both"
ike=$(jq -rn --arg v "$IK" '$v|@uri')
assert_eq 200 "$(ui "$ADMIN_JAR" GET "/ui/jobs?idempotency_key=$ike")" "jobs by idempotency key"
assert_eq "$fa " "$(listed)" "idempotency key filter: the one job"
grep -q 'value="ik [0-9]*&amp;&lt;x&gt;"' "$TMP/page" || fail "the key is not shown escaped in the form"
assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/jobs?idempotency_key=nosuchkey')" "unknown key"
grep -q 'id="no-jobs"' "$TMP/page" || fail "no 'no job matches' for an unknown key"
assert_eq 200 "$(ui "$ADMIN_JAR" GET '/ui/jobs?target=flt-b&since=7d&limit=1')" "filtered paging: first page"
p1=$(listed)
older=$(grep -o 'id="older" href="[^"]*"' "$TMP/page" | sed 's/.*href="\([^"]*\)"/\1/; s/&amp;/\&/g')
echo "$older" | grep -q 'target=flt-b&since=7d&' || fail "the older link drops the filters: $older"
assert_eq 200 "$(ui "$ADMIN_JAR" GET "$older")" "filtered paging: next page"
assert_eq "$(printf '%s\n' "$fb" "$fo" | sort | tr '\n' ' ')" "$(printf '%s\n' $p1 $(listed) | sort | tr '\n' ' ')" "filtered paging walks the filter's jobs"
ok "jobs filters: target, idempotency key, since, with paging"
assert_eq 400 "$(ui "$ADMIN_JAR" GET '/ui/jobs?target=%3Cb%3Eevil%3C%2Fb%3E')" "hostile target filter"
grep -q 'target: a target name' "$TMP/page" || fail "the 400 does not name the target"
grep -q '<b>evil' "$TMP/page" && fail "a hostile target was echoed raw"
assert_eq 400 "$(ui "$ADMIN_JAR" GET "/ui/jobs?target=$(head -c 65 /dev/zero | tr '\0' a)")" "target too long"
assert_eq 400 "$(ui "$ADMIN_JAR" GET "/ui/jobs?idempotency_key=$(head -c 201 /dev/zero | tr '\0' k)")" "key too long"
grep -q 'idempotency_key: at most 200' "$TMP/page" || fail "the 400 does not name the key"
for sv in 1 1w -1h 0h 367d 1h5 abc 99999999999d; do
    assert_eq 400 "$(ui "$ADMIN_JAR" GET "/ui/jobs?since=$sv")" "bad since $sv"
    grep -q 'since: a duration' "$TMP/page" || fail "the 400 for since=$sv does not say why"
done
check_headers "bad since"
ok "bad filters: a clear 400"

# ---- read-only session ----
assert_eq 202 "$(post_json /v1/jobs '{"kind":"noop","run_at":"2999-01-01T00:00:00Z"}')" "submit a delayed job"
rid=$(jbody .id)
assert_eq 200 "$(ui "$RO_JAR" GET "/ui/jobs/$rid")" "read-only: job page"
grep -q '(read-only)' "$TMP/page" || fail "the page does not say read-only"
grep -Eq 'id="(cancel|retry)"|/cancel"|/retry"' "$TMP/page" && fail "read-only session sees an action"
ro_csrf=$(csrf_of)
assert_eq 200 "$(ui "$RO_JAR" GET "/ui/jobs/$xid")" "read-only: cancelled-able job page"
grep -q '<button id=' "$TMP/page" && fail "read-only session sees a button"
assert_eq 200 "$(ui "$RO_JAR" GET /ui/dead?kind=noop)" "read-only: dead page"
grep -Eq 'retry-all|purge-all|name="ids"' "$TMP/page" && fail "read-only session sees dead-letter actions"
ok "read-only pages show no action"
assert_eq 403 "$(post_form "$RO_JAR" "/ui/jobs/$rid/cancel" --data "csrf=$ro_csrf")" "read-only: cancel refused"
assert_eq 403 "$(post_form "$RO_JAR" /ui/dead/noop/retry --data "csrf=$ro_csrf&what=all")" "read-only: dead retry refused"
assert_eq delayed "$(job_state "$rid")" "read-only POSTs changed nothing"
for p in /ui/schedules /ui/schedules/nightly.ui "/ui/campaigns/$cid" /ui/benchmarks "/ui/jobs/$bj"; do
    assert_eq 200 "$(ui "$RO_JAR" GET "$p")" "read-only: $p"
    grep -Eq '<button (id|class)=|data-action=|/trigger"|/disable"|/cancel"' "$TMP/page" && fail "read-only session sees an action on $p"
done
ok "read-only: no action on schedules, campaigns, benchmarks"
assert_eq 403 "$(post_form "$RO_JAR" /ui/schedules/nightly.ui/disable --data "csrf=$ro_csrf")" "read-only: disable refused"
assert_eq t "$(q "SELECT enabled FROM opspool.schedules WHERE name = 'nightly.ui'")" "read-only disable changed nothing"

# ---- bad input ----
bad() { # bad STATUS WHAT PATH
    local got; got=$(ui "$ADMIN_JAR" GET "$3") || got="curl failed ($?)"
    assert_eq "$1" "$got" "$2"
    check_headers "$2"
}
bad 400 "bad job id" /ui/jobs/not-a-uuid
bad 404 "unknown job id" /ui/jobs/0190f2a4-1b2c-7d3e-8f40-123456789abc
grep -q 'no job' "$TMP/page" || fail "the 404 does not say what is missing"
bad 400 "unknown kind" '/ui/jobs?kind=nosuchkind'
grep -q 'unknown kind' "$TMP/page" || fail "the 400 does not name the problem"
bad 400 "bad kind" '/ui/dead?kind=NO%20PE'
bad 400 "bad state" '/ui/jobs?state=bogus'
bad 400 "huge limit" '/ui/jobs?limit=999999999999999999999999'
bad 400 "bad before" '/ui/jobs?before=x'
bad 400 "bad find id" '/ui/jobs?id=%3Cscript%3E'
grep -q '<script>' "$TMP/page" && fail "a bad id was echoed raw"
bad 400 "unknown query parameter" '/ui/jobs?foo=1'
bad 400 "repeated query parameter" '/ui/jobs?kind=noop&kind=noop'
# (curl drops jar cookies from requests this long and then sends a broken one: the header.)
sess=$(awk '$6 == "osp_session" {print $7}' "$ADMIN_JAR")
assert_eq 414 "$(curl -s -o "$TMP/page" -D "$TMP/hdr" -w '%{http_code}' -H "Cookie: osp_session=$sess" \
    "$URL/ui/jobs?kind=$(head -c 9000 /dev/zero | tr '\0' a)")" "huge query value"
check_headers "huge query value"
bad 404 "unknown page" /ui/nope
dead_before=$(rcli LLEN "$P:dead:noop")
assert_eq 400 "$(post_form "$ADMIN_JAR" /ui/dead/nosuchkind/retry --data "csrf=$csrf&what=all")" "dead retry of an unknown kind"
assert_eq 400 "$(post_form "$ADMIN_JAR" /ui/dead/noop/retry --data "csrf=$csrf&what=selected&ids=x")" "dead retry with a bad id"
for act in retry purge; do
    assert_eq 400 "$(post_form "$ADMIN_JAR" /ui/dead/noop/$act --data "csrf=$csrf&what=selected")" "dead $act with nothing selected"
    assert_eq 400 "$(post_form "$ADMIN_JAR" /ui/dead/noop/$act --data "csrf=$csrf&what=some")" "dead $act with a bad what"
done
assert_eq 400 "$(post_form "$ADMIN_JAR" /ui/dead/nosuchkind/purge --data "csrf=$csrf&what=all")" "dead purge of an unknown kind"
assert_eq 400 "$(post_form "$ADMIN_JAR" /ui/dead/noop/retry --data "csrf=$csrf&what=selected")" "dead retry with nothing selected"
assert_eq "$dead_before" "$(rcli LLEN "$P:dead:noop")" "refused dead-letter forms change nothing"
assert_eq 415 "$(ui "$ADMIN_JAR" POST "/ui/jobs/$rid/cancel" -H 'Content-Type: text/plain' --data "csrf=$csrf")" "a non-form body"
assert_eq 200 "$(ui "$ADMIN_JAR" GET /ui/static/console.css)" "stylesheet"
check_headers stylesheet
assert_eq 200 "$(ui "$ADMIN_JAR" GET /ui/static/console.js)" "script"
check_headers script
kill -0 "$SP" || fail "the scheduler died"
ok "the scheduler survived the bad input"

# ---- the API is unchanged ----
assert_eq 200 "$(api GET /v1/queues -D "$TMP/hdr")" "the API answers as before"
grep -qi '^Content-Security-Policy' "$TMP/hdr" && fail "the console's headers leaked into the API"
ok "API responses carry no console headers"
assert_eq 401 "$(curl -s -o /dev/null -w '%{http_code}' -b "$ADMIN_JAR" "$URL/v1/queues")" "a console cookie is no API credential"

# ---- logout ----
assert_eq 200 "$(ui "$ADMIN_JAR" GET /ui/)" "overview before logout"
cp "$ADMIN_JAR" "$TMP/stolen.jar"
assert_eq 303 "$(post_form "$ADMIN_JAR" /ui/logout --data "csrf=$(csrf_of)")" "logout"
hdr Set-Cookie | grep -q 'Max-Age=0' || fail "logout does not clear the cookie"
assert_eq 303 "$(ui "$TMP/stolen.jar" GET /ui/)" "the old cookie no longer opens pages"
assert_eq 403 "$(post_form "$TMP/stolen.jar" "/ui/jobs/$rid/cancel" --data "csrf=$csrf")" "nor allows actions"
assert_eq delayed "$(job_state "$rid")" "nothing changed after logout"
finish
