#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# opspoolctl against real Redis and PostgreSQL with jobs in every state (queued, delayed,
# running, succeeded, dead, cancelled, retrying is transient): every command's --help, tables
# (columns present, no colour in a pipe), --json parsed with python3, exit codes, destructive
# commands refusing without --yes and changing nothing, dead retry / retry ID completing on a
# worker, cancel of a running job killing its child, pause/resume, workers busy 1/N, schedules.
. "$OSP_SRC_DIR/tests/support/lib.sh"

# js EXPR — evaluate a Python expression over the JSON document on stdin (bound to d).
js() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
# rc CMD... — run, keep stdout in $TMP/out and stderr in $TMP/err, print the exit status.
rc() { local r=0; "$@" >"$TMP/out" 2>"$TMP/err" || r=$?; echo "$r"; }
state() { q "SELECT state FROM opspool.jobs WHERE id = '$1'"; }
# is VALUE CMD... — CMD prints VALUE (for wait_until, which re-runs it on every poll).
is() { local want=$1; shift; [ "$("$@")" = "$want" ]; }
busy() { "$CTL" --json workers | js "d[0]['busy']"; }
attempts() { q "SELECT count(*) FROM opspool.job_attempts WHERE job_id = '$1'"; }
# has_cols TEXT COL... — the first line of TEXT names every column.
has_cols() {
    local head; head=$(printf '%s\n' "$1" | head -n 1); shift
    for col in "$@"; do
        grep -qw -- "$col" <<<"$head" || fail "column $col missing in: $head"
    done
}

assert_eq true "$("$CTL" migrate --json | js "str(d['migrated']).lower()")" "migrate --json"

# ---- help and usage ----
for cmd in queues jobs job cancel retry dead workers schedules pause resume submit migrate; do
    out=$("$CTL" "$cmd" --help) || fail "$cmd --help failed"
    grep -q "^usage: opspoolctl \[--json\] $cmd" <<<"$out" || fail "$cmd --help: $out"
    grep -q "exit codes" <<<"$out" || fail "$cmd --help lists no exit codes"
done
ok "every command has --help with its usage and the exit codes"
help=$("$CTL" --help)
grep -q "6  the job's state does not allow it" <<<"$help" || fail "global help: no exit codes"
ok "global --help documents the exit codes"
assert_eq 2 "$(rc "$CTL" frobnicate)" "unknown command exits 2"
assert_eq 2 "$(rc "$CTL" jobs --state bogus)" "jobs --state with an unknown state exits 2"
assert_eq 2 "$(rc "$CTL" jobs --since 1x)" "jobs --since with a bad duration exits 2"
assert_eq 2 "$(rc "$CTL" job not-an-id)" "job with a malformed id exits 2"
assert_eq 4 "$(rc "$CTL" job 01900000-0000-7000-8000-000000000000)" "job with an unknown id exits 4"

# ---- states without a worker: queued, delayed, cancelled ----
queued=$("$CTL" submit noop)
delayed=$("$CTL" submit noop --delay-ms 3600000)
tocancel=$("$CTL" submit noop)
out=$("$CTL" cancel "$tocancel")
grep -q "cancelled (it was queued)" <<<"$out" || fail "cancel queued: $out"
assert_eq cancelled "$(state "$tocancel")" "cancel of a queued job ends it cancelled in the ledger"
assert_eq 1 "$(rcli HGET "$P:job:$tocancel" cancel)" "cancel sets the job hash's cancel flag for workers"
assert_eq 0 "$(rc "$CTL" cancel "$tocancel")" "cancelling a cancelled job again succeeds"
grep -q "already cancelled" "$TMP/out" || fail "second cancel: $(cat "$TMP/out")"
ok "second cancel says already cancelled"

js_states=$("$CTL" --json jobs | js "' '.join(sorted(j['state'] for j in d))")
assert_eq "cancelled delayed queued" "$js_states" "jobs --json lists queued, delayed, cancelled"
out=$("$CTL" jobs --state active)
has_cols "$out" ID KIND STATE ATTEMPT AGE DURATION WORKER ERROR
grep -q "$queued" <<<"$out" || fail "jobs --state active misses the queued job"
grep -q "$tocancel" <<<"$out" && fail "jobs --state active lists a cancelled job"
ok "jobs table has its columns and --state active filters"
assert_eq "$delayed" "$("$CTL" --json jobs --state delayed | js "d[0]['id']")" "jobs --state delayed"
out=$("$CTL" --json queues noop)
assert_eq "1 1 0 False" "$(printf '%s' "$out" | js "d[0]['pending'], d[0]['delayed'], d[0]['workers'], d[0]['paused']" | tr -d '(),')" \
    "queues --json: 1 pending (cancel removed the cancelled envelope), 1 delayed, no workers"

# ---- a worker: succeeded, running, dead ----
start_worker w1 OSP_WORKER_SLOTS=2 OSP_LEASE_MS=3000 OSP_RETRY_BASE_MS=50 OSP_RETRY_MAX_MS=200
W=$LAST_PID
wait_until 30 is succeeded state "$queued" || fail "queued job did not run: $(state "$queued")"
ok "the queued job succeeded on the worker"
wait_until 10 is 0 rcli LLEN "$P:queue:noop" || fail "queue not drained"
assert_eq cancelled "$(state "$tocancel")" "the cancelled job stays cancelled after a worker took its envelope"

running=$("$CTL" submit noop --payload '{"sleep_ms": 30000}')
wait_until 20 is running state "$running" || fail "sleeping job not running: $(state "$running")"
fixable=$("$CTL" submit noop --payload '{"fail_attempts": 1}' --max-attempts 1)
doomed=$("$CTL" submit noop --payload '{"fail": true}' --max-attempts 1)
wait_until 30 is dead state "$fixable" || fail "fixable job not dead: $(state "$fixable")"
wait_until 30 is dead state "$doomed" || fail "doomed job not dead: $(state "$doomed")"
ok "jobs in every state: queued, delayed, running, succeeded, dead, cancelled"

# ---- workers ----
wait_until 10 is 1 busy || fail "worker not busy 1"
out=$("$CTL" workers)
has_cols "$out" ID HOST PID KINDS BUSY STATE HEARTBEAT UPTIME JOBS
grep -q " 1/2 " <<<"$out" || fail "workers table lacks busy 1/2: $out"
grep -q "$running" <<<"$out" || fail "workers table lacks the running job: $out"
ok "workers lists the worker with busy 1/2 and its current job"
wj=$("$CTL" --json workers)
assert_eq "$W 2 running noop" "$(printf '%s' "$wj" | js "d[0]['pid'], d[0]['slots'], d[0]['state'], ','.join(d[0]['kinds'])" | tr -d "(),'")" \
    "workers --json: pid, slots, state, kinds"
assert_eq "$running" "$(printf '%s' "$wj" | js "d[0]['jobs'][0]['id']")" "workers --json: current job from the processing list"

# ---- queues ----
out=$("$CTL" queues)
has_cols "$out" KIND PENDING RUNNING DELAYED DEAD PAUSED WORKERS OLDEST JOBS/MIN
grep -q $'\033' <<<"$out" && fail "colour escapes in a pipe"
ok "queues table has its columns and no colour in a pipe"
qj=$("$CTL" --json queues noop)
assert_eq "1 1 2 1" "$(printf '%s' "$qj" | js "d[0]['running'], d[0]['delayed'], d[0]['dead'], d[0]['workers']" | tr -d '(),')" \
    "queues --json: 1 running, 1 delayed, 2 dead, 1 worker"
printf '%s' "$qj" | js "d[0]['jobs_per_min'] > 0" | grep -q True || fail "jobs/min is not positive: $qj"
ok "queues --json: jobs/min from the ledger is positive"
out=$("$CTL" queues --watch --count 2 --interval 1 noop)
assert_eq 2 "$(printf '%s\n' "$out" | grep -c '^Every 1s: opspoolctl queues')" "queues --watch --count 2 redraws twice"
assert_eq 2 "$("$CTL" --json queues --watch --count 2 --interval 1 noop | wc -l)" "queues --watch --json prints one line per refresh"

# ---- job (describe) ----
out=$("$CTL" job "$doomed")
for f in "ID:" "Kind:" "State:" "Attempt:" "Payload:" "Error:" "Attempts:" "Events:" "Result:"; do
    grep -q "^$f" <<<"$out" || fail "job view lacks $f: $out"
done
grep -q "failed on request" <<<"$out" || fail "job view lacks the error"
ok "job shows envelope fields, attempts, events and result"
assert_eq "dead 1" "$("$CTL" job --json "$doomed" | js "d['state'], len(d['attempts'])" | tr -d "(),'")" "job --json is the ledger record"
out=$("$CTL" jobs --kind noop --since 1h --limit 2 --json)
assert_eq 2 "$(printf '%s' "$out" | js "len(d)")" "jobs --kind --since --limit"

# ---- dead letters ----
out=$("$CTL" dead noop)
has_cols "$(printf '%s\n' "$out" | sed -n 2p)" JOB AGE ATTEMPTS REASON
grep -q "$doomed.*failed on request" <<<"$out" || fail "dead list lacks the reason: $out"
ok "dead KIND lists records with reasons"
assert_eq 2 "$("$CTL" --json dead noop | js "d['total']")" "dead --json total"
assert_eq 2 "$(rc "$CTL" dead purge noop)" "dead purge without --yes exits 2"
grep -q -- "--yes" "$TMP/err" || fail "purge refusal does not mention --yes: $(cat "$TMP/err")"
assert_eq 2 "$(rcli LLEN "$P:dead:noop")" "refused purge changed nothing"
assert_eq 2 "$(rc "$CTL" dead retry noop --all)" "dead retry --all without --yes exits 2"
assert_eq 2 "$(rcli LLEN "$P:dead:noop")" "refused retry --all changed nothing"
assert_eq dead "$(state "$fixable")" "refused retry --all left the ledger alone"
assert_eq 6 "$(rc "$CTL" dead retry noop "$queued")" "dead retry of a queued job exits 6 (its state does not allow it)"
grep -q "only dead or cancelled" "$TMP/err" || fail "dead retry of a queued job does not say why: $(cat "$TMP/err")"

assert_eq 0 "$(rc "$CTL" dead retry noop "$fixable")" "dead retry KIND ID"
wait_until 30 is succeeded state "$fixable" || fail "retried job did not succeed: $(state "$fixable")"
ok "dead retry puts the job back and a worker completes it"
assert_eq "1:failed 2:succeeded" "$(q "SELECT string_agg(attempt || ':' || outcome, ' ' ORDER BY attempt) FROM opspool.job_attempts WHERE job_id = '$fixable'")" \
    "the retried job's attempts continue at 2"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$fixable' AND type = 'retried_from_dead'")" "ledger event retried_from_dead"
assert_eq 1 "$(rcli LLEN "$P:dead:noop")" "the dead record was removed"

assert_eq 6 "$(rc "$CTL" retry "$queued")" "retry of a succeeded job exits 6"
assert_eq 0 "$(rc "$CTL" retry "$doomed")" "retry ID of a dead job"
wait_until 30 is 2 attempts "$doomed" || fail "retry ID did not run"
wait_until 30 is dead state "$doomed" || fail "doomed job not dead again"
ok "retry ID re-ran the job (attempt 2) and it died again"
wait_until 10 is 1 rcli LLEN "$P:dead:noop" || fail "dead record not back"
assert_eq 0 "$(rc "$CTL" dead retry noop --all --yes)" "dead retry --all --yes"
grep -q "retried 1 dead noop" "$TMP/out" || fail "retry --all output: $(cat "$TMP/out")"
wait_until 30 is 3 attempts "$doomed" || fail "retry --all did not run"
wait_until 10 is 1 rcli LLEN "$P:dead:noop" || fail "dead record not back after --all"
assert_eq 0 "$(rc "$CTL" --json dead purge noop --yes)" "dead purge --yes"
assert_eq 1 "$(js "d['purged']" <"$TMP/out")" "purge reports one record"
assert_eq 0 "$(rcli LLEN "$P:dead:noop")" "dead list is empty after purge"
assert_eq dead "$(state "$doomed")" "the ledger keeps the purged job as dead"

# An earlier retry that stopped after its ledger write (state queued) but before Redis: the
# record is still on the dead list and the job hash still says dead. Running retry again
# finishes it; nothing was lost.
stuck=$("$CTL" submit noop --payload '{"fail_attempts": 1}' --max-attempts 1)
wait_until 30 is dead state "$stuck" || fail "stuck job not dead: $(state "$stuck")"
q "UPDATE opspool.jobs SET state = 'queued' WHERE id = '$stuck'"
assert_eq 0 "$(rc "$CTL" retry "$stuck")" "retry resumes a retry interrupted between the ledger and Redis"
wait_until 30 is succeeded state "$stuck" || fail "resumed retry did not succeed: $(state "$stuck")"
assert_eq 0 "$(rcli LLEN "$P:dead:noop")" "the resumed retry removed the dead record"
assert_eq 6 "$(rc "$CTL" retry "$delayed")" "retry of a delayed job exits 6"

# ---- cancel a running job ----
children=$(pgrep -P "$W" || true)
[ -n "$children" ] || fail "no child process for the running job"
assert_eq 0 "$(rc "$CTL" cancel "$running")" "cancel of a running job"
grep -q "cancel requested" "$TMP/out" || fail "cancel output: $(cat "$TMP/out")"
wait_until 15 is cancelled state "$running" || fail "running job not cancelled: $(state "$running")"
ok "cancel of a running job ends cancelled"
for p in $children; do
    wait_until 10 sh -c "! kill -0 $p" || fail "child $p still alive after cancel"
done
ok "the cancelled job's child process is gone"
assert_eq cancelled "$(q "SELECT outcome FROM opspool.job_attempts WHERE job_id = '$running'")" "attempt recorded as cancelled"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$running' AND type = 'cancel_requested'")" "event cancel_requested"
assert_eq 6 "$(rc "$CTL" cancel "$queued")" "cancel of a succeeded job exits 6"
wait_until 10 is 0 busy || fail "worker still busy"
ok "the worker is idle again"

# ---- pause / resume ----
assert_eq 0 "$(rc "$CTL" pause noop)" "pause noop"
assert_eq 1 "$(rcli SISMEMBER "$P:paused" noop)" "pause adds the kind to P:paused"
assert_eq 2 "$(rc "$CTL" pause no-such-kind)" "pause of an unknown kind exits 2"
sleep 1.5 # a blocking fetch already waiting when the pause landed ends within a second
held=$("$CTL" submit noop)
sleep 2
assert_eq queued "$(state "$held")" "submitted while paused: stays queued"
assert_eq 6 "$(rc "$CTL" retry "$held")" "retry of a job that is really queued exits 6"
assert_eq "1 True" "$("$CTL" --json queues noop | js "d[0]['pending'], d[0]['paused']" | tr -d '(),')" "queues shows it pending and paused"
"$CTL" queues noop | grep -q " yes " || fail "queues table does not say paused"
assert_eq 0 "$(rc "$CTL" resume noop)" "resume noop"
wait_until 20 is succeeded state "$held" || fail "job not run after resume: $(state "$held")"
ok "after resume the job runs"

# ---- submit --wait ----
assert_eq 0 "$(rc "$CTL" submit noop --payload '{"sleep_ms": 100}' --wait --timeout 30)" "submit --wait: exit 0 on success"
assert_eq 1 "$(rc "$CTL" submit noop --payload '{"fail": true}' --max-attempts 1 --wait --timeout 30)" "submit --wait: exit 1 when the job dies"
assert_eq 5 "$(rc "$CTL" submit noop --payload '{"sleep_ms": 5000}' --wait --timeout 1)" "submit --wait: exit 5 on timeout"

# ---- schedules ----
q "INSERT INTO opspool.schedules (name, cron, timezone, kind, payload, next_fire_at)
   VALUES ('nightly-noop', '0 3 * * *', 'UTC', 'noop', '{\"sleep_ms\": 10}', now() + interval '1 hour')"
out=$("$CTL" schedules)
has_cols "$out" NAME CRON TZ KIND ENABLED NEXT LAST LAST-OUTCOME LAST-SUCCESS
ok "schedules table has its columns"
assert_eq 0 "$(rc "$CTL" schedules trigger nightly-noop --wait --timeout 30)" "schedules trigger --wait succeeds"
assert_eq "succeeded nightly-noop" "$(q "SELECT state || ' ' || schedule FROM opspool.jobs WHERE schedule = 'nightly-noop'")" "the triggered job is in the ledger with its schedule"
assert_eq succeeded "$("$CTL" --json schedules | js "d[0]['last_outcome']")" "schedules --json: last outcome"
assert_eq 0 "$(rc "$CTL" schedules disable nightly-noop)" "schedules disable"
assert_eq f "$(q "SELECT enabled FROM opspool.schedules WHERE name = 'nightly-noop'")" "disabled in the ledger"
assert_eq False "$("$CTL" --json schedules | js "d[0]['enabled']")" "schedules --json shows disabled"
assert_eq 0 "$(rc "$CTL" schedules enable nightly-noop)" "schedules enable"
assert_eq "true true" "$(q "SELECT enabled || ' ' || (next_fire_at > now()) FROM opspool.schedules WHERE name = 'nightly-noop'")" "enabled again with the next tick in the future"
assert_eq 4 "$(rc "$CTL" schedules trigger no-such-schedule)" "trigger of an unknown schedule exits 4"

# ---- a backend down ----
assert_eq None "$(OSP_PG_DSN="host=$TMP/nopg dbname=x" "$CTL" --json queues noop 2>/dev/null | js "d[0]['jobs_per_min']")" \
    "queues works without PostgreSQL (jobs/min null)"
assert_eq 3 "$(OSP_PG_DSN="host=$TMP/nopg dbname=x" rc "$CTL" jobs)" "jobs without PostgreSQL exits 3"
assert_eq 3 "$(OSP_REDIS_URL="unix://$TMP/noredis.sock" rc "$CTL" queues)" "queues without Redis exits 3"
assert_eq 0 "$(OSP_REDIS_URL="unix://$TMP/noredis.sock" rc "$CTL" job "$queued")" "job works without Redis"
grep -q "Redis unreachable" "$TMP/out" || fail "job view does not say Redis is unreachable"
ok "job view says Redis is unreachable"

kill -TERM "$W"
wrc=0
wait "$W" || wrc=$? # bounded by the worker's drain deadline (25 s)
assert_eq 0 "$wrc" "worker drains and exits 0"
assert_eq "no workers registered" "$("$CTL" workers)" "workers is empty after the drain"
# ---- submit: the same checks as the API (common/ops.c osp_op_submit_check) ----
printf '{"targets": {"shop-db": {"adapter": "local", "pg_dsn": "dbname=x"}}}' >"$TMP/targets.json"
before=$(q "SELECT count(*) FROM opspool.jobs")
assert_eq 2 "$(rc env OSP_TARGETS_FILE="$TMP/targets.json" "$CTL" submit seed --payload '{"target": "nosuch", "scale": 1}')" "submit naming an unknown target exits 2"
grep -q "nosuch" "$TMP/err" || fail "the refusal does not name the target: $(cat "$TMP/err")"
assert_eq 2 "$(rc "$CTL" submit noop --max-attempts 101)" "max-attempts above 100 exits 2 (the API's bound)"
grep -q "1..100" "$TMP/err" || fail "the refusal does not give the bound: $(cat "$TMP/err")"
assert_eq 2 "$(rc "$CTL" submit noop --idempotency-key '')" "an empty idempotency key is refused, not dropped"
assert_eq 2 "$(rc env OSP_PG_DSN='host=/nonexistent port=1' "$CTL" submit noop --payload '{"sleep_ms": "x"}')" "bad input is refused even while PostgreSQL is unreachable"
assert_eq "$before" "$(q "SELECT count(*) FROM opspool.jobs")" "refused submits wrote nothing"

finish
