#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# opspool_ledger_jobs{kind,state} (docs/api.md): the unfinished states are counted every 5 s
# through their partial index; the finished ones, a full read of the table, at start and then
# every OSP_LEDGER_COUNT_PERIOD_S (kept in between). Rows are written straight into the
# ledger, so the counts are known exactly.
#   - at start, both kinds of state are counted;
#   - new queued rows show within a gauge round, new finished rows do not before the period;
#   - with the period at its minimum (5 s) the finished rows show within two rounds;
#   - a period out of bounds is refused at start, naming the setting.
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"

rc=0
OSP_LEDGER_COUNT_PERIOD_S=1 "$SCHED" --print-config >"$TMP/badcfg.log" 2>&1 || rc=$?
assert_eq 2 "$rc" "OSP_LEDGER_COUNT_PERIOD_S below 5 is refused"
grep -q OSP_LEDGER_COUNT_PERIOD_S "$TMP/badcfg.log" || fail "the refusal does not name the setting: $(cat "$TMP/badcfg.log")"

"$CTL" migrate >/dev/null

# KIND STATE N: N ledger rows of a kind in a state (finished ones with finished_at).
rows() {
    q "INSERT INTO opspool.jobs (id, kind, state, payload, attempt, max_attempts, created_at,
           run_at, updated_at, finished_at)
       SELECT gen_random_uuid(), '$1', '$2', '{}', 0, 3, now(), now(), now(),
              CASE WHEN '$2' IN ('succeeded', 'failed', 'dead', 'cancelled') THEN now() END
         FROM generate_series(1, $3)" >/dev/null
}
gauge() { # URL KIND STATE: the gauge's value as /metrics shows it
    curl -s "$1/metrics" | awk -v k="$2" -v s="$3" \
        '$1 == "opspool_ledger_jobs{kind=\"" k "\",state=\"" s "\"}" {print $2}'
}
# The reconciler must not enqueue the rows written here: a long grace keeps it away.
rows seed succeeded 2
rows seed dead 1
rows seed queued 1

# s1 recounts finished rows once an hour: the test never lasts that long, whatever the load.
start_scheduler s1 OSP_RECONCILE_GRACE_S=3600 OSP_LEDGER_COUNT_PERIOD_S=3600
S1=$LAST_PID
U1=$LAST_URL
assert_eq 2 "$(gauge "$U1" seed succeeded)" "finished rows counted at start"
assert_eq 1 "$(gauge "$U1" seed dead)" "dead rows counted at start"
assert_eq 1 "$(gauge "$U1" seed queued)" "queued rows counted at start"
assert_eq 0 "$(gauge "$U1" seed failed)" "a state without rows is exported at 0"

rows seed queued 4
rows seed succeeded 3
wait_eq 15 5 gauge "$U1" seed queued || fail "new queued rows not counted within a round: $WAIT_GOT"
assert_eq 2 "$(gauge "$U1" seed succeeded)" "finished rows wait for the full count (every OSP_LEDGER_COUNT_PERIOD_S)"
ok "unfinished states every round; finished ones kept between full counts"

start_scheduler s2 OSP_RECONCILE_GRACE_S=3600 OSP_LEDGER_COUNT_PERIOD_S=5
S2=$LAST_PID
U2=$LAST_URL
rows seed succeeded 4
wait_eq 20 9 gauge "$U2" seed succeeded || fail "finished rows not recounted within the period: $WAIT_GOT"
assert_eq 5 "$(gauge "$U2" seed queued)" "queued count on the second replica"
ok "OSP_LEDGER_COUNT_PERIOD_S=5: finished rows recounted"

for p in "$S1" "$S2"; do
    kill -TERM "$p"
    wait_exit "$p" 30
    assert_eq 0 "$EXIT_RC" "scheduler exits cleanly"
done
finish
