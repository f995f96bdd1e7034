#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The happy path end to end: submit -> fetch -> run (inline and forked) -> ledger -> ack,
# nothing left in flight, and a clean drain on SIGTERM.
. "$OSP_SRC_DIR/tests/support/lib.sh"

"$CTL" migrate >/dev/null
"$CTL" submit noop --count 50 >/dev/null
for i in 1 2 3 4 5; do "$CTL" submit noop --payload '{"sleep_ms": 50, "emit": 2}' >/dev/null; done
assert_eq 55 "$(count_state queued)" "55 jobs queued in the ledger before any worker runs"
assert_eq 55 "$(rcli LLEN "$P:queue:noop")" "55 envelopes on the noop queue"

start_worker w1 OSP_WORKER_SLOTS=2 OSP_LEASE_MS=3000
W=$LAST_PID
wait_eq 60 55 count_state succeeded || fail "jobs did not all succeed: $(q "SELECT state, count(*) FROM opspool.jobs GROUP BY 1")"
ok "all 55 jobs succeeded"
assert_eq 55 "$(q "SELECT count(*) FROM opspool.job_attempts WHERE outcome = 'succeeded'")" "one succeeded attempt row per job"
assert_eq 10 "$(q "SELECT count(*) FROM opspool.job_events WHERE type = 'progress'")" "forked jobs' events reached the ledger"
wid=$(rcli ZRANGE "$P:workers" 0 0)
wait_eq 10 0 rcli LLEN "$P:processing:$wid" || fail "processing list of $wid not empty"
assert_eq 0 "$(rcli LLEN "$P:queue:noop")" "queue drained"
assert_eq 0 "$(rcli ZCARD "$P:inflight:noop")" "no lease entries left"
id=$(q "SELECT id FROM opspool.jobs LIMIT 1")
assert_eq succeeded "$(rcli HGET "$P:job:$id" state)" "Redis job hash says succeeded"
ttl=$(rcli TTL "$P:job:$id")
[ "$ttl" -gt 0 ] || fail "finished job hash has no TTL ($ttl)"
ok "finished job hash expires (ttl $ttl)"

# The worker is visible while it runs, and unregisters on a clean drain.
assert_eq 1 "$(rcli ZCARD "$P:workers")" "worker registered"
kill -TERM "$W"
wait_exit "$W" 20; assert_eq 0 "$EXIT_RC" "SIGTERM drains and exits 0"
assert_eq 0 "$(rcli ZCARD "$P:workers")" "worker unregistered after drain"
"$CTL" --json job "$id" | grep -q '"state": "succeeded"' || fail "opspoolctl job does not show the result"
ok "opspoolctl job shows the job"
finish
