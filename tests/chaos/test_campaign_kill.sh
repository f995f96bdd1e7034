#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Campaigns while their worker and their scheduler are SIGKILLed. Four campaigns, each a graph
# of five forked noop steps (a -> {b, c} -> d -> e always), are submitted through the API.
# For ~20 s, every 2-4 s (fixed seed) the worker is SIGKILLed and started again under the same
# id 0.3-1 s later (its reaper hands its own list back at start), and every third time the
# scheduler too (its campaign duty is what advances the campaigns). Then: every campaign
# succeeded, every step succeeded, exactly one job per step (one idempotency key each), no
# job lost, duplicate executions bounded by the attempts the kills interrupted. Skips (77)
# only when opspool-scheduler is not built.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

[ -x "$SCHED" ] || { echo "opspool-scheduler not built" >&2; exit 77; }
DURATION_S=${OSP_CHAOS_CAMPAIGN_S:-20}
NC=4
"$CTL" migrate >/dev/null
spawn_sched() { start_sched "s-$RANDOM" OSP_RECONCILE_GRACE_S=5; SP=$LAST_PID; URL=$LAST_URL; }
spawn_worker() { start_worker "w-$RANDOM" OSP_WORKER_ID=camp-w OSP_LEASE_MS=2000 OSP_WORKER_SLOTS=3; WP=$LAST_PID; }
spawn_sched
spawn_worker

plan() {
    local p
    p=$(chaos_payload 1200)
    printf '{"name": "chaos-%s", "steps": [
      {"name": "a", "kind": "noop", "payload": %s, "max_attempts": 10},
      {"name": "b", "kind": "noop", "payload": %s, "after": ["a"], "max_attempts": 10},
      {"name": "c", "kind": "noop", "payload": %s, "after": ["a"], "max_attempts": 10},
      {"name": "d", "kind": "noop", "payload": %s, "after": ["b", "c"], "max_attempts": 10},
      {"name": "e", "kind": "noop", "payload": %s, "after": ["d"], "always": true, "max_attempts": 10}]}' \
        "$1" "$p" "$p" "$p" "$p" "$p"
}
: >"$TMP/campaigns"
for i in $(seq 1 "$NC"); do
    out=$(curl -fsS -X POST -H 'Content-Type: application/json' --data-binary "$(plan "$i")" "$URL/v1/campaigns") ||
        fail "campaign $i not accepted"
    jq -r .id <<<"$out" >>"$TMP/campaigns"
done
ok "$NC campaigns submitted"

kills=0 skills=0 held=0 n=0
end=$(( $(date +%s) + DURATION_S ))
while [ "$(date +%s)" -lt "$end" ]; do
    sleep "$(( 20 + RANDOM % 21 ))e-1"
    n=$((n + 1))
    kill -9 "$WP"; wait "$WP" 2>/dev/null || true
    note_victim camp-w "$(now_ms)"
    kills=$((kills + 1))
    held=$((held + $(rcli LLEN "$P:processing:camp-w")))
    if [ $((n % 3)) = 0 ]; then
        kill -9 "$SP"; wait "$SP" 2>/dev/null || true
        skills=$((skills + 1))
    fi
    say "SIGKILLed the worker$([ $((n % 3)) = 0 ] && echo ' and the scheduler') at $(count_state succeeded) succeeded steps"
    sleep "$(( 3 + RANDOM % 8 ))e-1"
    [ $((n % 3)) = 0 ] && spawn_sched
    spawn_worker
done
ok "$kills worker kills, $skills scheduler kills"

done_all() { [ "$(q "SELECT count(*) FROM opspool.campaigns WHERE finished_at IS NULL")" = 0 ]; }
wait_until 240 done_all || fail "campaigns unfinished: $(q "SELECT c.name, s.step, s.state FROM opspool.campaign_steps s JOIN opspool.campaigns c ON c.id = s.campaign_id WHERE s.state <> 'succeeded'")"
assert_eq "succeeded|$NC" "$(q "SELECT string_agg(DISTINCT state, ','), count(*) FROM opspool.campaigns" | tr -d ' ')" "every campaign succeeded"
assert_eq "$((NC * 5))" "$(q "SELECT count(*) FROM opspool.campaign_steps WHERE state = 'succeeded'")" "every step succeeded"
assert_eq "$((NC * 5)) $((NC * 5))" "$(q "SELECT count(*) || ' ' || count(DISTINCT idempotency_key) FROM opspool.jobs WHERE submitted_by LIKE 'campaign:%'")" "exactly one job per step, one key each"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.campaign_steps s JOIN opspool.jobs j ON j.id = s.job_id
                  WHERE s.step = 'd' AND j.started_at < (SELECT max(j2.finished_at) FROM opspool.campaign_steps s2
                  JOIN opspool.jobs j2 ON j2.id = s2.job_id WHERE s2.campaign_id = s.campaign_id AND s2.step IN ('b', 'c'))")" \
    "no step started before the steps it runs after had finished"
q "SELECT id FROM opspool.jobs" >"$TMP/ids"
INTERRUPTED=$held
chaos_check campaign_kill "$(victims_recovery_ms)" 60
finish
