#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The front ends are adapters: the same scenarios run once through the HTTP API and once
# through opspoolctl, each side on its own database and Redis prefix with its own worker,
# and must leave the same ledger rows, events, attempt rows and Redis state (ids, times and
# the actor's identity aside). Scenarios: cancel a queued, a delayed and a running job,
# cancel a finished one, retry a cancelled job (it never ran: attempt 1), retry a job twice
# dead (attempts continue), dead retry by id, bulk cancel with a filter (dry run first),
# dead purge, pause and resume.
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"

BASE_DSN=$OSP_PG_DSN
BASE_PREFIX=$OSP_PREFIX
for side in api cli; do
    db="${BASE_DSN##*dbname=}_$side"
    psql "$BASE_DSN" -qAtc "CREATE DATABASE $db" >/dev/null
done
cleanup_dbs() {
    cleanup_pids
    for side in api cli; do
        psql "$BASE_DSN" -qAtc "DROP DATABASE IF EXISTS ${BASE_DSN##*dbname=}_$side WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
trap cleanup_dbs EXIT

use_side() {
    SIDE=$1
    export OSP_PG_DSN="${BASE_DSN/dbname=${BASE_DSN##*dbname=}/dbname=${BASE_DSN##*dbname=}_$SIDE}"
    export OSP_PREFIX="${BASE_PREFIX%\}}-$SIDE}"
    P=$OSP_PREFIX
}

submit() { "$CTL" submit noop "$@"; }
# op NAME ARGS... — the operation through this side's front end; prints nothing, fails on an
# unexpected answer.
op() {
    local what=$1; shift
    if [ "$SIDE" = api ]; then
        local code
        case "$what" in
        cancel) code=$(api POST "/v1/jobs/$1/cancel") ;;
        retry) code=$(api POST "/v1/jobs/$1/retry") ;;
        dead-retry) code=$(post_json "/v1/dead/noop/retry" "{\"ids\": [\"$1\"]}") ;;
        bulk-dry) code=$(post_json "/v1/queues/noop/cancel" "{\"states\": [\"queued\"], \"created_after\": \"$1\", \"dry_run\": true}")
            echo "$(jbody .would_cancel)" >"$TMP/dry.$SIDE" ;;
        bulk) code=$(post_json "/v1/queues/noop/cancel" "{\"states\": [\"queued\"], \"created_after\": \"$1\"}") ;;
        purge) code=$(post_json "/v1/dead/noop/purge" '{}') ;;
        pause) code=$(api POST /v1/queues/noop/pause) ;;
        sched-put) code=$(post_json /v1/schedules "$1") ;;
        sched-disable) code=$(api POST "/v1/schedules/$1/disable") ;;
        sched-enable) code=$(api POST "/v1/schedules/$1/enable") ;;
        sched-trigger) code=$(api POST "/v1/schedules/$1/trigger"); jbody .id >"$TMP/trig.$SIDE" ;;
        sched-delete) code=$(api DELETE "/v1/schedules/$1") ;;
        resume) code=$(api POST /v1/queues/noop/resume) ;;
        *) fail "unknown op $what" ;;
        esac
        echo "$code" >"$TMP/code.$SIDE.$what"
        case "$code" in
        2??) ;;
        409) [ "$what" = cancel ] || { q "SELECT type, attempt, data FROM opspool.job_events WHERE job_id = '$1' ORDER BY id" >&2; fail "$SIDE $what: $code $(body)"; } ;;
        *) q "SELECT type, data FROM opspool.job_events WHERE job_id = '$1' ORDER BY id" >&2 || true; fail "$SIDE $what: $code $(body)" ;;
        esac
    else
        local r=0
        case "$what" in
        cancel) "$CTL" cancel "$1" >"$TMP/out" 2>&1 || r=$? ;;
        retry) "$CTL" retry "$1" >"$TMP/out" 2>&1 || r=$? ;;
        dead-retry) "$CTL" dead retry noop "$1" >"$TMP/out" 2>&1 || r=$? ;;
        bulk-dry) "$CTL" --json cancel --kind noop --state queued --created-after "$1" --dry-run >"$TMP/out" 2>&1 || r=$?
            jq -r .would_cancel <"$TMP/out" >"$TMP/dry.$SIDE" ;;
        bulk) "$CTL" cancel --kind noop --state queued --created-after "$1" --yes >"$TMP/out" 2>&1 || r=$? ;;
        purge) "$CTL" dead purge noop --yes >"$TMP/out" 2>&1 || r=$? ;;
        pause) "$CTL" pause noop >"$TMP/out" 2>&1 || r=$? ;;
        sched-put) printf '%s' "$1" | "$CTL" schedules put - >"$TMP/out" 2>&1 || r=$? ;;
        sched-disable) "$CTL" schedules disable "$1" >"$TMP/out" 2>&1 || r=$? ;;
        sched-enable) "$CTL" schedules enable "$1" >"$TMP/out" 2>&1 || r=$? ;;
        sched-trigger) "$CTL" --json schedules trigger "$1" >"$TMP/out" 2>&1 || r=$?
            jq -r .id <"$TMP/out" >"$TMP/trig.$SIDE" ;;
        sched-delete) "$CTL" schedules delete "$1" --yes >"$TMP/out" 2>&1 || r=$? ;;
        resume) "$CTL" resume noop >"$TMP/out" 2>&1 || r=$? ;;
        *) fail "unknown op $what" ;;
        esac
        echo "$r" >"$TMP/code.$SIDE.$what"
        case "$r" in
        0) ;;
        6) [ "$what" = cancel ] || fail "$SIDE $what: exit $r: $(cat "$TMP/out")" ;;
        *) fail "$SIDE $what: exit $r: $(cat "$TMP/out")" ;;
        esac
    fi
}

# dump ID LABEL — what the ledger and Redis say of one job, without ids, times and actor.
dump() {
    local id=$1 label=$2
    {
        echo "== $label"
        q "SELECT state, attempt, max_attempts, recoveries, error IS NOT NULL FROM opspool.jobs WHERE id = '$id'"
        q "SELECT attempt, outcome FROM opspool.job_attempts WHERE job_id = '$id' ORDER BY seq"
        q "SELECT type, coalesce(attempt::text, '-'), (data - 'who' - 'by' - 'via' - 'audit_id' - 'ts')::text
           FROM opspool.job_events WHERE job_id = '$id' AND type NOT IN ('started', 'progress', 'log')
           ORDER BY id"
        echo "redis: state=$(rcli HGET "$P:job:$id" state) cancel=$(rcli HGET "$P:job:$id" cancel) queue=$(rcli LLEN "$P:queue:noop") delayed=$(rcli ZCARD "$P:delayed")"
    } >>"$TMP/dump.$SIDE"
}

# The worker is stopped (SIGTERM, drained) while jobs must stay queued: a pause takes effect
# "within about a second" (an idle worker's blocking wait may still hand out one job), so
# the scenarios do not lean on it; pause and resume are exercised as operations.
worker_up() {
    start_worker "w-$SIDE" OSP_WORKER_SLOTS=2 OSP_LEASE_MS=2000 OSP_WORKER_ID="w-$SIDE"
    WPID=$LAST_PID
}
worker_down() {
    kill -TERM "$WPID"
    wait_exit "$WPID" 60
    [ "$EXIT_RC" = 0 ] || fail "$SIDE: the worker did not stop: $EXIT_RC"
}

scenario() {
    use_side "$1"
    "$CTL" migrate >/dev/null
    : >"$TMP/dump.$SIDE"
    if [ "$SIDE" = api ]; then
        start_scheduler "sched-$SIDE"
        URL=$LAST_URL
    fi
    worker_up

    # A finished job: cancel is refused, nothing changes.
    local done_id
    done_id=$(submit --payload '{}')
    wait_eq 30 succeeded job_state "$done_id" || fail "$SIDE: a noop job did not succeed"
    op cancel "$done_id"
    dump "$done_id" "cancel a succeeded job"

    # Queued and delayed, no worker running.
    worker_down
    op pause
    local qid did
    qid=$(submit --payload '{}')
    did=$(submit --payload '{}' --delay-ms 600000)
    op cancel "$qid"
    dump "$qid" "cancel queued"
    op cancel "$did"
    dump "$did" "cancel delayed"
    op cancel "$qid"
    dump "$qid" "cancel again"
    op retry "$qid"
    dump "$qid" "retry a cancelled job that never ran"
    op resume
    worker_up
    wait_eq 30 succeeded job_state "$qid" || fail "$SIDE: the retried job did not run"
    dump "$qid" "the retried job ran"

    # Running: the worker stops it.
    local rid
    rid=$(submit --payload '{"sleep_ms": 60000}')
    wait_eq 30 running job_state "$rid" || fail "$SIDE: the long job never started"
    op cancel "$rid"
    wait_eq 30 cancelled job_state "$rid" || fail "$SIDE: the running job was not stopped"
    wait_eq 30 cancelled rcli HGET "$P:job:$rid" state || fail "$SIDE: Redis never said cancelled"
    dump "$rid" "cancel running"

    # Dead twice, retried in between: attempt numbers continue.
    local xid
    xid=$(submit --payload '{"fail": true}' --max-attempts 1)
    wait_eq 30 dead job_state "$xid" || fail "$SIDE: the failing job did not die"
    op dead-retry "$xid"
    wait_eq 30 dead job_state "$xid" || fail "$SIDE: the retried failing job did not die again"
    wait_eq 30 1 rcli LLEN "$P:dead:noop" || fail "$SIDE: dead list"
    dump "$xid" "dead, dead retry, dead again"
    op retry "$xid"
    wait_eq 30 dead job_state "$xid" || fail "$SIDE: third run"
    dump "$xid" "retry of a dead job"
    op purge
    dump "$xid" "dead purge"

    # Bulk: one job before a cutoff, three after (a runaway submit), no worker; a dry run
    # first, then the cancel of everything queued after the cutoff.
    worker_down
    local b1 b2 b3 other cutoff
    other=$(submit --payload '{}')
    sleep 0.05
    cutoff=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
    sleep 0.05
    b1=$(submit --payload '{}')
    b2=$(submit --payload '{}')
    b3=$(submit --payload '{}')
    op bulk-dry "$cutoff"
    dump "$b1" "after a dry run"
    op bulk "$cutoff"
    for j in "$b1" "$b2" "$b3" "$other"; do dump "$j" "bulk cancel (created after the cutoff)"; done
    worker_up
    wait_eq 30 succeeded job_state "$other" || fail "$SIDE: the job the filter left did not run"
    dump "$other" "the job the filter left ran"
    # Schedules: define, disable, enable, trigger, redefine, delete.
    sdump() {
        {
            echo "== schedule: $1"
            q "SELECT name, cron, timezone, kind, payload::text, enabled, concurrency, catchup_s
               FROM opspool.schedules ORDER BY name"
        } >>"$TMP/dump.$SIDE"
    }
    op sched-put '{"name": "nightly-noop", "cron": "0 3 * * *", "timezone": "Europe/Berlin", "kind": "noop", "payload": {"sleep_ms": 1}}'
    sdump "defined"
    op sched-disable nightly-noop
    sdump "disabled"
    op sched-enable nightly-noop
    sdump "enabled"
    op sched-trigger nightly-noop
    local tid
    tid=$(cat "$TMP/trig.$SIDE")
    wait_eq 30 succeeded job_state "$tid" || fail "$SIDE: the triggered job did not run"
    dump "$tid" "the triggered job"
    echo "schedule of the triggered job: $(q "SELECT schedule FROM opspool.jobs WHERE id = '$tid'")" >>"$TMP/dump.$SIDE"
    op sched-put '{"name": "nightly-noop", "cron": "30 4 * * 1-5", "kind": "noop", "concurrency": "allow", "catchup_s": 600}'
    sdump "redefined"
    op sched-delete nightly-noop
    sdump "deleted"
    {
        echo "== audit rows"
        q "SELECT action, object, data - 'seconds' - 'seconds_in' - 'ids' - 'job_id' FROM opspool.audit ORDER BY id" |
            sed -E 's/"created_(before|after)_ms": [0-9]+/"created_\1_ms": T/g'
        echo "== redis keys"
        rcli --scan --pattern "$P:*" | while read -r k; do printf '%s\n' "${k#"$P"}"; done |
            { grep -v -E '^:(epoch|job:|worker|processing)' || true; } | sort
    } >>"$TMP/dump.$SIDE"
    cleanup_pids
    PIDS=()
}

command -v jq >/dev/null || { echo "jq missing" >&2; exit 77; }
scenario api
scenario cli
# OSP_CONTRACT_KEEP=DIR keeps both dumps for a look.
[ -n "${OSP_CONTRACT_KEEP:-}" ] && mkdir -p "$OSP_CONTRACT_KEEP" && cp "$TMP"/dump.* "$OSP_CONTRACT_KEEP/"

for what in cancel retry dead-retry bulk purge pause resume sched-put sched-trigger sched-delete; do
    a=$(cat "$TMP/code.api.$what"); c=$(cat "$TMP/code.cli.$what")
    say "last $what: API $a, opspoolctl exit $c"
done
assert_eq "$(cat "$TMP/dry.api")" "$(cat "$TMP/dry.cli")" "the dry runs count the same jobs"
assert_eq 3 "$(cat "$TMP/dry.api")" "the dry run counts the three jobs after the cutoff"
if ! diff -u "$TMP/dump.api" "$TMP/dump.cli" >"$TMP/diff"; then
    cat "$TMP/diff" >&2
    fail "the API and opspoolctl left different ledger rows, events or Redis state (diff above)"
fi
ok "API and opspoolctl left identical ledger rows, events, attempts and Redis state ($(grep -c '^==' "$TMP/dump.api") snapshots)"
# Sanity: the scenarios did what they say (so an empty dump cannot pass).
grep -q "^cancelled|" "$TMP/dump.api" || fail "no cancelled job in the dump"
grep -q "retried_from_dead" "$TMP/dump.api" || fail "no dead retry in the dump"
grep -q "cancel_requested" "$TMP/dump.api" || fail "no cancel of a running job in the dump"
grep -q "queue.cancel" "$TMP/dump.api" || fail "no bulk cancel audit row"
grep -q "schedule.trigger" "$TMP/dump.api" || fail "no schedule trigger audit row"
grep -q "^schedule of the triggered job: nightly-noop" "$TMP/dump.api" || fail "the triggered job does not name its schedule"
awk '/== retry a cancelled job that never ran/{getline; print; exit}' "$TMP/dump.api" | grep -q "^queued|0|" ||
    fail "a retried job that never ran should be queued with no attempt used yet: $(grep -A1 'never ran' "$TMP/dump.api")"
ok "the dump holds every scenario"
finish
