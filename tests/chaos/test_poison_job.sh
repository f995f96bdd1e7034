#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A job that keeps killing its worker. Its worker is SIGKILLed each time it runs it, and
# restarted: first under a new worker id each time (the scheduler's reaper takes the job
# back once the lease expires), then under the same id each time (a StatefulSet pod, the
# lab's lab-worker-1: the restarted worker takes back its predecessor's list itself, as no
# reaper sees that id as dead). With OSP_MAX_RECOVERIES=3 the fourth loss dead-letters it.
# Expected, both ways: every lost run is an 'interrupted' attempt row naming the worker,
# `recoveries` counts them, the job is 'dead' in the ledger and in Redis with the reason,
# `opspoolctl dead retry` takes it back, and lost = stuck = 0.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

"$CTL" migrate >/dev/null
start_sched reaper OSP_LEASE_MS=2000 OSP_MAX_RECOVERIES=3
SCHED_PID=$LAST_PID
common=(OSP_LEASE_MS=2000 OSP_MAX_RECOVERIES=3 OSP_WORKER_SLOTS=2 OSP_WORKER_DUTIES=false)
inplay() { q "SELECT state IN ('queued', 'running') FROM opspool.jobs WHERE id = '$1'"; }

# started_since ID PREV — the job's started_at is set and differs from PREV (bounded wait).
started_since() {
    local end=$(( $(date +%s) + 30 )) cur
    while :; do
        cur=$(q "SELECT coalesce(started_at::text, 'none') FROM opspool.jobs WHERE id = '$1'")
        [ "$cur" != none ] && [ "$cur" != "$2" ] && return 0
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.05
    done
}

# poison ID_PREFIX SAME_ID — kill the worker running the job 4 times; prints nothing.
poison() {
    local tag=$1 same=$2 id k wid t0 prev=none
    id=$("$CTL" submit noop --payload '{"sleep_ms": 600000}' --max-attempts 3)
    for k in 1 2 3 4; do
        wid=$tag-$k
        [ "$same" = yes ] && wid=$tag
        start_worker "$tag-$k" "${common[@]}" OSP_WORKER_ID="$wid"
        local pid=$LAST_PID
        # Runs it: the envelope is in its list and the ledger says running on it.
        wait_until 30 sh -c "[ \"\$(redis-cli -s '${OSP_REDIS_URL#unix://}' LLEN '$P:processing:$wid')\" = 1 ]" ||
            fail "$tag: run $k never reached worker $wid (state $(job_state "$id"))"
        wait_eq 30 "running|$wid" q "SELECT state || '|' || worker FROM opspool.jobs WHERE id = '$id'" ||
            fail "$tag: the ledger never showed run $k on $wid: $WAIT_GOT"
        # Under the same id the two checks above still hold from the previous process: wait
        # for this process's own run (a new started_at), or it may die before taking the job.
        started_since "$id" "$prev" || fail "$tag: run $k never started on $wid (started_at $prev)"
        prev=$(q "SELECT started_at FROM opspool.jobs WHERE id = '$id'")
        kill -9 "$pid"
        wait "$pid" 2>/dev/null || true
        say "$tag: killed $wid while it ran the job (run $k)"
    done
    if [ "$same" = yes ]; then
        # The fourth loss is only seen when the id comes back.
        start_worker "$tag-5" "${common[@]}" OSP_WORKER_ID="$tag"
        LAST_SAME=$LAST_PID
    fi
    wait_eq 30 dead job_state "$id" || fail "$tag: not dead in the ledger: $(job_state "$id")"
    POISON=$id
}

check_dead() {
    local tag=$1 id=$2 wids=$3
    assert_eq "dead|4|killed its worker 4 times (max_recoveries 3)" \
        "$(q "SELECT state || '|' || recoveries || '|' || error FROM opspool.jobs WHERE id = '$id'")" \
        "$tag: dead in the ledger after 4 lost runs, with the reason"
    assert_eq "$wids" \
        "$(q "SELECT string_agg(attempt || '.' || run || ':' || outcome || ':' || worker, ' ' ORDER BY attempt, run) FROM opspool.job_attempts WHERE job_id = '$id'")" \
        "$tag: each lost run is an interrupted attempt row on its worker"
    assert_eq 4 "$(q "SELECT count(*) FROM opspool.job_attempts WHERE job_id = '$id' AND error LIKE 'worker lost: %' OR job_id = '$id' AND error LIKE 'killed its worker%'")" \
        "$tag: every row says why"
    rcli LRANGE "$P:dead:noop" 0 -1 | tr -d '\0' | grep -q "$id" || fail "$tag: not in Redis's dead list"
    rcli LRANGE "$P:dead:noop" 0 -1 | tr -d '\0' | grep -q "killed its worker 4 times" || fail "$tag: no reason in Redis"
    "$CTL" dead noop --json >"$TMP/dead.json" || fail "$tag: opspoolctl dead noop"
    grep -q "$id" "$TMP/dead.json" || fail "$tag: opspoolctl dead noop does not list it"
    rc=0
    "$CTL" dead retry noop "$id" >"$TMP/retry.out" 2>&1 || rc=$?
    assert_eq 0 "$rc" "$tag: opspoolctl dead retry takes it back ($(head -c 200 "$TMP/retry.out"))"
    wait_eq 10 t inplay "$id" || fail "$tag: not back in play after dead retry: $(job_state "$id")"
    "$CTL" cancel "$id" >/dev/null || fail "$tag: cancel after the retry"
    wait_eq 30 cancelled job_state "$id" || fail "$tag: not cancelled: $(job_state "$id")"
}

poison fresh no
check_dead "new id per restart" "$POISON" "1.0:interrupted:fresh-1 1.1:interrupted:fresh-2 1.2:interrupted:fresh-3 1.3:interrupted:fresh-4"
# The same id: no reaper runs now, so only the restarted worker itself can take back what
# its predecessor held.
kill -TERM "$SCHED_PID"
wait "$SCHED_PID" 2>/dev/null || true
poison lab-worker-1 yes
check_dead "same id per restart" "$POISON" "1.0:interrupted:lab-worker-1 1.1:interrupted:lab-worker-1 1.2:interrupted:lab-worker-1 1.3:interrupted:lab-worker-1"
grep -q "took back 1 job(s) of this worker id's previous process" "$TMP/lab-worker-1-2.log" ||
    fail "the restarted worker does not say it took its predecessor's job back"
ok "the restarted worker logs what it took back"

# Nothing lost or stuck: every ledger job is final, nothing left in flight.
assert_eq 0 "$(q "SELECT count(*) FROM opspool.jobs WHERE state NOT IN ('succeeded', 'failed', 'dead', 'cancelled')")" "stuck = 0"
wait_eq 30 0 rcli ZCARD "$P:inflight:noop" || fail "in-flight entries left: $WAIT_GOT"
printf 'CHAOS fault=poison_job runs=2 jobs=2 lost=0 duplicates=0 interrupted=8 recovery_ms=0 dup_source=ledger\n' |
    tee -a "${OSP_CHAOS_OUT:-/dev/null}"
kill -TERM "$LAST_SAME" 2>/dev/null || true
finish
