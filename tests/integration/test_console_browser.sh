#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The web console in a real browser: Debian's chromium, headless, driven by puppeteer-core
# (tests/browser/console.test.js; installed with npm ci from tests/browser/package-lock.json
# into the build folder, never downloading a browser). Every page loads without console
# errors, CSP violations or failed requests; the overview's DOM shows GET /v1/queues's
# figures; clicking Cancel on a running job and Retry on a dead one changes the ledger; the
# <script> payload stays inert (no dialog); a read-only token sees no action; screenshots of
# each page at 1280 and 390 px go to <build>/console-screenshots. Skips (77) when chromium,
# node or npm is missing or puppeteer-core cannot be installed (deploy/local/deps.sh installs
# them).
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"

skip() { echo "SKIP: $*" >&2; exit 77; }
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || skip "no chromium (apt-get install chromium, or deploy/local/deps.sh)"
command -v node >/dev/null || skip "no node (apt-get install nodejs, or deploy/local/deps.sh)"
command -v npm >/dev/null || skip "no npm (apt-get install npm, or deploy/local/deps.sh)"
NODE_DIR=$BIN/browser
export PUPPETEER_SKIP_DOWNLOAD=1 PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=1
mkdir -p "$NODE_DIR"
if ! cmp -s "$SRC/tests/browser/package-lock.json" "$NODE_DIR/package-lock.json" ||
    [ ! -d "$NODE_DIR/node_modules/puppeteer-core" ]; then
    cp "$SRC/tests/browser/package.json" "$SRC/tests/browser/package-lock.json" "$NODE_DIR/"
    (cd "$NODE_DIR" && timeout 300 npm ci --ignore-scripts --no-audit --no-fund) >"$TMP/npm.log" 2>&1 ||
        skip "npm ci of puppeteer-core failed (offline?): $(tail -3 "$TMP/npm.log")"
fi
cp "$SRC/tests/browser/console.test.js" "$NODE_DIR/"

RD=rd-$RANDOM$RANDOM
cat >"$TMP/tokens" <<EOF
$TOKEN scopes=submit,read,operate
$RD scopes=read
EOF
start_scheduler s1 OSP_RECONCILE_GRACE_S=3600
URL=$LAST_URL

# The stack's data: a <script> payload, a dead job, a running job.
assert_eq 202 "$(post_json /v1/jobs '{"kind":"noop","payload":{"result":{"note":"<script>alert(1)</script>"}},"run_at":"2999-01-01T00:00:00Z"}')" "a job with a <script> payload"
xss=$(jbody .id)
assert_eq 202 "$(post_json /v1/jobs '{"kind":"noop","payload":{"fail":true},"max_attempts":1}')" "a job that fails"
dead=$(jbody .id)
assert_eq 202 "$(post_json /v1/jobs '{"kind":"noop","payload":{"sleep_ms":120000}}')" "a long job"
run=$(jbody .id)
start_worker w1 OSP_WORKER_SLOTS=2 OSP_LEASE_MS=3000 OSP_WORKER_DUTIES=false
W=$LAST_PID
wait_eq 60 dead job_state "$dead" || fail "the failing job is not dead"
wait_eq 60 running job_state "$run" || fail "the long job is not running"
wait_eq 20 1 rcli LLEN "$P:dead:noop" || fail "no dead record"
ok "stack ready: a dead job, a running job, a <script> payload"

# Schedules, a campaign, a benchmark series (the last run regressed) and a drill's result.
assert_eq 201 "$(post_json /v1/schedules '{"name":"nightly","cron":"0 3 * * *","timezone":"Europe/Berlin","kind":"noop"}')" "a schedule"
assert_eq 201 "$(post_json /v1/campaigns '{"name":"lab","steps":[{"name":"seed","kind":"noop"},{"name":"bench","kind":"noop","after":["seed"]},{"name":"drill","kind":"noop","after":["seed"]},{"name":"report","kind":"noop","after":["bench","drill"]}]}')" "a campaign"
camp=$(jbody .id)
bench=$(q "INSERT INTO opspool.jobs (id, kind, state, payload, attempt, finished_at) VALUES (gen_random_uuid(), 'benchmark', 'succeeded', '{}', 1, now()) RETURNING id" | head -1)
q "INSERT INTO opspool.benchmark_results (job_id, attempt, target, lane, model, requests, errors, rps, p50_ms, p90_ms, p95_ms, p99_ms, p999_ms, max_ms, passed, created_at)
   SELECT gen_random_uuid(), 1, 'shortener', l, 'closed', 20000, 0, 1000 + g * 3, 2.0 + (g % 3) * 0.1, 4, 5, 9.0 + (g % 4) * 0.4, 12, 20, true, now() - (12 - g) * interval '1 hour'
   FROM generate_series(1, 11) g, unnest(ARRAY['closed', 'open']) l" >/dev/null
q "INSERT INTO opspool.benchmark_results (job_id, attempt, target, lane, model, requests, errors, rps, p50_ms, p90_ms, p95_ms, p99_ms, p999_ms, max_ms, passed, created_at)
   VALUES ('$bench', 1, 'shortener', 'closed', 'closed', 20000, 0, 1030, 2.1, 4, 5, 9.5, 12, 20, true, now()),
          ('$bench', 1, 'shortener', 'open', 'open', 20000, 0, 1010, 4.8, 9, 12, 24.0, 30, 41, true, now())" >/dev/null
DR='{"target":"svc","verdict":"pass","injected":true,"recovered":true,"time_to_detect_ms":99,"time_to_recover_ms":599,"availability":0.868,"availability_under_fault":0.848,"duration_ms":4500,"phases":{"steady":{"probes":5,"ok":5,"availability":1.0,"p50_ms":0.3,"p95_ms":0.4,"p99_ms":0.5,"start_ms":0,"end_ms":400},"inject":{"probes":0,"ok":0,"availability":null,"start_ms":400,"end_ms":401},"observe":{"probes":30,"ok":25,"availability":0.833,"p50_ms":0.363,"p95_ms":0.449,"p99_ms":0.544,"start_ms":401,"end_ms":3425},"rollback":{"probes":0,"ok":0,"start_ms":3425,"end_ms":3426},"recovery":{"probes":8,"ok":8,"availability":1.0,"p50_ms":0.31,"p95_ms":0.42,"p99_ms":0.47,"start_ms":3426,"end_ms":4500}},"timeline":{"inject_ms":401,"fault_end_ms":401,"rollback_done_ms":3425}}'
drill=$(q "INSERT INTO opspool.jobs (id, kind, state, payload, attempt, result, finished_at) VALUES (gen_random_uuid(), 'drill', 'succeeded', '{\"target\":\"svc\"}', 1, '$DR', now()) RETURNING id" | head -1)

SHOTS=$BIN/console-screenshots
rm -rf "$SHOTS"
rc=0
(cd "$NODE_DIR" && OSP_UI_URL=$URL OSP_UI_TOKEN=$TOKEN OSP_UI_RO_TOKEN=$RD OSP_UI_XSS_JOB=$xss \
    OSP_UI_DEAD_JOB=$dead OSP_UI_RUN_JOB=$run OSP_UI_SHOTS=$SHOTS CHROMIUM=$CHROMIUM \
    OSP_UI_CAMPAIGN=$camp OSP_UI_BENCH_JOB=$bench OSP_UI_DRILL_JOB=$drill \
    timeout 240 node console.test.js) || rc=$?
[ "$rc" = 0 ] || fail "the browser checks failed (exit $rc)"
ok "the browser checks passed"

# What the clicks did, in the ledger.
wait_eq 30 cancelled job_state "$run" || fail "clicking Cancel did not cancel the running job: $(job_state "$run")"
ok "clicking Cancel cancelled the running job"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$dead' AND type = 'retried_from_dead'")" "clicking Retry retried the dead job"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$dead' AND type = 'audit' AND data->>'via' = 'console'")" "the retry's audit event names the console"
for p in overview jobs job dead running-job schedules schedule campaigns campaign benchmarks \
    benchmark-job drill-job dead-after-retry read-only-job login; do
    for w in 1280 390; do
        [ -s "$SHOTS/$p-$w.png" ] || fail "no screenshot $p-$w.png"
    done
done
ok "screenshots at 1280 and 390 px in $SHOTS"
kill -TERM "$W"
wait_until 30 sh -c "! kill -0 $W 2>/dev/null" || fail "worker did not exit"
finish
