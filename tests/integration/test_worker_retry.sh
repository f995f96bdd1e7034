#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Failures: retry with backoff then success; retry exhaustion to the dead list with a reason;
# a crashing child and a job over its timeout are failures of that attempt, not of the worker.
. "$OSP_SRC_DIR/tests/support/lib.sh"

"$CTL" migrate >/dev/null
flaky=$("$CTL" submit noop --payload '{"fail_attempts": 1}' --max-attempts 3)
doomed=$("$CTL" submit noop --payload '{"fail": true}' --max-attempts 2)
crashy=$("$CTL" submit noop --payload '{"crash_attempts": 1}' --max-attempts 2)
slow=$("$CTL" submit noop --payload '{"sleep_ms": 20000}' --max-attempts 1 --job-timeout 1)
start_worker w OSP_WORKER_SLOTS=4 OSP_RETRY_BASE_MS=50 OSP_RETRY_MAX_MS=200

wait_eq 60 succeeded job_state "$flaky" || fail "flaky job: $(job_state "$flaky")"
assert_eq "1:failed 2:succeeded" "$(q "SELECT string_agg(attempt || ':' || outcome, ' ' ORDER BY attempt) FROM opspool.job_attempts WHERE job_id = '$flaky'")" "flaky job failed once then succeeded"

wait_eq 60 dead job_state "$doomed" || fail "doomed job: $(job_state "$doomed")"
ok "job that always fails ends dead after max_attempts"
assert_eq 2 "$(q "SELECT count(*) FROM opspool.job_attempts WHERE job_id = '$doomed'")" "two attempts recorded"
rec=$(rcli LRANGE "$P:dead:noop" 0 -1 | tr -d '\0')
grep -q "failed on request" <<<"$rec" || fail "dead record has no reason: $rec"
ok "dead record carries the failure reason"

wait_eq 60 succeeded job_state "$crashy" || fail "crashy job: $(job_state "$crashy")"
assert_eq crashed "$(q "SELECT outcome FROM opspool.job_attempts WHERE job_id = '$crashy' AND attempt = 1")" "a child killed by a signal is recorded as crashed"

wait_eq 30 dead job_state "$slow" || fail "slow job: $(job_state "$slow")"
assert_eq timeout "$(q "SELECT outcome FROM opspool.job_attempts WHERE job_id = '$slow'")" "job over its timeout is killed and recorded as timeout"
kill -0 "$LAST_PID" || fail "worker died"
ok "worker survived crashing and hanging jobs"
finish
