#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# 10,000 noop jobs, 3 workers, one of them SIGKILLed twice during the run (and restarted):
# every job ends succeeded exactly once in the ledger, none missing, nothing left in Redis.
# OSP_CHAOS_JOBS overrides the count.
. "$OSP_SRC_DIR/tests/support/lib.sh"

N=${OSP_CHAOS_JOBS:-10000}
"$CTL" migrate >/dev/null
"$CTL" submit noop --count "$N" --max-attempts 3 >/dev/null
assert_eq "$N" "$(count_state queued)" "$N jobs queued"
common=(OSP_LEASE_MS=2000 OSP_WORKER_SLOTS=8)
start_worker w1 "${common[@]}" OSP_WORKER_ID=steady-1
start_worker w2 "${common[@]}" OSP_WORKER_ID=steady-2
start_worker victim1 "${common[@]}" OSP_WORKER_ID=victim-1
V=$LAST_PID
kills=0
held=0 # envelopes the victims held when killed: the interrupted attempts
for round in 1 2; do
    # Kill when the run is well under way (or after a bounded wait).
    target=$(( N * round / 3 ))
    wait_ge 120 "$target" count_state succeeded || true
    kill -9 "$V" && kills=$((kills + 1))
    wait "$V" 2>/dev/null || true
    held=$((held + $(rcli LLEN "$P:processing:victim-$round")))
    say "SIGKILLed the victim at $(count_state succeeded) succeeded"
    start_worker "victim$((round + 1))" "${common[@]}" OSP_WORKER_ID="victim-$((round + 1))"
    V=$LAST_PID
done
assert_eq 2 "$kills" "victim SIGKILLed twice"
wait_eq 300 "$N" count_state succeeded || fail "only $(count_state succeeded) of $N succeeded: $(q "SELECT state, count(*) FROM opspool.jobs GROUP BY 1")"
ok "all $N jobs succeeded"
assert_eq 0 "$(q "SELECT count(*) FROM (SELECT job_id FROM opspool.job_attempts WHERE outcome = 'succeeded' GROUP BY job_id HAVING count(*) > 1) d")" "no job has more than one succeeded attempt"
assert_eq "$N" "$(q "SELECT count(DISTINCT job_id) FROM opspool.job_attempts WHERE outcome = 'succeeded'")" "every job has its succeeded attempt"
wait_eq 30 0 rcli LLEN "$P:queue:noop" || fail "queue not empty"
for w in steady-1 steady-2 victim-3; do
    wait_eq 30 0 rcli LLEN "$P:processing:$w" || fail "processing list of $w not empty"
done
ok "no envelope left in any queue or processing list"
wait_eq 30 0 rcli EXISTS "$P:processing:victim-1" "$P:processing:victim-2" || fail "killed workers' lists not reaped"
ok "killed workers' processing lists reaped"
dups=$(q "SELECT count(*) - $N FROM opspool.job_attempts")
say "duplicate executions (attempt rows beyond one per job): $dups"
# Inline noop jobs leave no execution trace besides the ledger: duplicates here are the
# ledger-visible ones only (see tests/chaos/chaos_lib.sh for the execution log).
printf 'CHAOS fault=workers_sigkill_fixed runs=1 jobs=%s lost=0 duplicates=%s interrupted=%s recovery_ms=0 dup_source=ledger\n' \
    "$N" "$dups" "$held" | tee -a "${OSP_CHAOS_OUT:-/dev/null}"
finish
