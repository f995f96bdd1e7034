#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redis lost with a deep backlog: 100,000 jobs queued (OSP_CHAOS_BACKLOG to change it), no
# worker running, a scheduler with its default settings (30 s reconcile period, 60 s grace);
# then Redis SIGKILLed and restarted EMPTY. The scheduler sees the new P:epoch within a second
# and sweeps the ledger at once; every job must come back exactly once, with one 'reconciled'
# event. Reported: the time from the restart until the last envelope is back (never asserted:
# shared machines).
# A PRIVATE redis-server; the shared PostgreSQL, this test's own database.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

N=${OSP_CHAOS_BACKLOG:-100000}
[ -x "$SCHED" ] || { echo "opspool-scheduler not built: the reconciler is needed" >&2; exit 77; }
start_redis redis none
export OSP_REDIS_URL=unix://$REDIS_SOCK
"$CTL" migrate >/dev/null
start_sched s1 # defaults: the epoch check, not a short period, must find the loss
"$CTL" submit noop --count "$N" >/dev/null || fail "bulk submit"
assert_eq "$N" "$(rcli LLEN "$P:queue:noop")" "$N jobs queued"
sleep 6 # the rows get older than the 5 s grace of the sweep that follows a loss

kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
start_redis redis none # empty: every envelope, job hash and the epoch are gone
t_up=$(now_ms)
wait_eq 600 "$N" rcli LLEN "$P:queue:noop" || fail "only $WAIT_GOT of $N back on the queue"
recovery=$(( $(now_ms) - t_up ))
say "all $N envelopes back $recovery ms after redis came back empty (epoch check, one sweep, pages of 5,000)"
sleep 1
assert_eq "$N" "$(rcli LLEN "$P:queue:noop")" "each exactly once"
assert_eq "$N" "$(q "SELECT count(DISTINCT job_id) FROM opspool.job_events WHERE type = 'reconciled'")" "one reconciled event per job"
assert_eq "$N" "$(q "SELECT count(*) FROM opspool.job_events WHERE type = 'reconciled'")" "and no more"
grep -q "redis has a new epoch" "$TMP/s1.log" || fail "the scheduler did not say it saw the loss"
ok "the scheduler logged the new epoch"
if [ -n "${OSP_CHAOS_RECONCILE_ONLY:-}" ]; then # bench_reconcile.sh: the figure is taken
    printf 'CHAOS fault=redis_loss_backlog runs=1 jobs=%s lost=0 duplicates=0 interrupted=0 recovery_ms=%s dup_source=ledger\n' \
        "$N" "$recovery"
    [ -z "${OSP_CHAOS_KEEP_LOG:-}" ] || cp "$TMP/s1.log" "$OSP_CHAOS_KEEP_LOG"
    finish
    exit 0
fi
start_worker w1 OSP_WORKER_SLOTS=8
wait_eq 600 "$N" count_state succeeded || fail "only $(count_state succeeded) of $N ran"
ok "every job ran after the loss"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.jobs WHERE state NOT IN ('succeeded', 'failed', 'dead', 'cancelled')")" "stuck = 0"
printf 'CHAOS fault=redis_loss_backlog runs=1 jobs=%s lost=0 duplicates=0 interrupted=0 recovery_ms=%s dup_source=ledger\n' \
    "$N" "$recovery" | tee -a "${OSP_CHAOS_OUT:-/dev/null}"
finish
