#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cron across replicas: two schedulers share a fast test clock (OSP_TEST_CLOCK_RATE=30, so a
# minute tick comes every 2 s) and a schedules file. Every tick of an every-minute schedule
# fires exactly once (one firing row, one job, one Redis guard key per tick, no gaps); with
# concurrency "forbid" and no worker, later ticks are recorded as skipped. Then catch-up:
# with the clock moved past several missed hourly ticks, only the latest one fires, and only
# for the schedule whose catchup_s covers it.
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"

cat >"$TMP/schedules.json" <<'JSON'
{"schedules": [
  {"name": "every-minute", "cron": "* * * * *", "timezone": "UTC", "kind": "noop",
   "payload": {"result": {"from": "cron"}}, "concurrency": "allow", "catchup_s": 0, "enabled": true},
  {"name": "forbid-minute", "cron": "* * * * *", "timezone": "Europe/Berlin", "kind": "noop",
   "payload": {}, "concurrency": "forbid"},
  {"name": "disabled", "cron": "* * * * *", "kind": "noop", "enabled": false}
]}
JSON

anchor=$(date +%s%3N)
common=(OSP_SCHEDULES_FILE="$TMP/schedules.json" OSP_TEST_CLOCK_RATE=30 OSP_TEST_CLOCK_ANCHOR_MS="$anchor"
        OSP_RECONCILE_GRACE_S=3600)
start_scheduler a "${common[@]}"
A=$LAST_PID
URL=$LAST_URL
start_scheduler b "${common[@]}"
B=$LAST_PID
assert_eq 3 "$(q 'SELECT count(*) FROM opspool.schedules')" "schedules seeded from the file by both replicas"

# ~12 fake minutes.
wait_ge 60 10 q "SELECT count(*) FROM opspool.schedule_firings WHERE schedule = 'every-minute'" \
    || fail "fewer than 10 ticks fired: $WAIT_GOT"
kill -TERM "$A" "$B"
wait_until 20 sh -c "! kill -0 $A 2>/dev/null && ! kill -0 $B 2>/dev/null" || fail "schedulers did not stop"

n=$(q "SELECT count(*) FROM opspool.schedule_firings WHERE schedule = 'every-minute'")
ok "$n ticks of every-minute handled by two replicas"
assert_eq "$n" "$(q "SELECT count(*) FROM opspool.schedule_firings WHERE schedule = 'every-minute' AND status = 'fired' AND job_id IS NOT NULL")" \
    "every tick fired with a job"
assert_eq "$n" "$(q "SELECT count(*) FROM opspool.jobs WHERE schedule = 'every-minute'")" "exactly one job per tick"
assert_eq "$n" "$(q "SELECT count(DISTINCT idempotency_key) FROM opspool.jobs WHERE schedule = 'every-minute'")" \
    "one idempotency key per tick"
assert_eq "$n" "$(q "SELECT (extract(epoch FROM max(fire_at) - min(fire_at)) / 60)::int + 1 FROM opspool.schedule_firings WHERE schedule = 'every-minute'")" \
    "ticks are consecutive minutes, none skipped"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.schedule_firings WHERE extract(second FROM fire_at) <> 0")" \
    "fire times are whole minutes"
assert_eq "$n" "$(rcli --scan --pattern "$P:cron:every-minute:*" | wc -l | tr -d ' ')" "one Redis guard key per tick"
ttl=$(rcli TTL "$(rcli --scan --pattern "$P:cron:every-minute:*" | head -1)")
[ "$ttl" -gt 0 ] || fail "cron guard key without TTL"
ok "cron guard keys expire (ttl $ttl)"
replicas=$(q "SELECT count(DISTINCT replica) FROM opspool.schedule_firings")
ok "firings claimed by $replicas replica(s)"
assert_eq '{"result": {"from": "cron"}}' "$(q "SELECT payload::text FROM opspool.jobs WHERE schedule = 'every-minute' LIMIT 1")" \
    "job carries the schedule's payload"

fired=$(q "SELECT count(*) FROM opspool.schedule_firings WHERE schedule = 'forbid-minute' AND status = 'fired'")
skipped=$(q "SELECT count(*) FROM opspool.schedule_firings WHERE schedule = 'forbid-minute' AND status = 'skipped' AND reason = 'previous still running'")
assert_eq 1 "$fired" "forbid: one job while the previous one is unfinished"
total=$(q "SELECT count(*) FROM opspool.schedule_firings WHERE schedule = 'forbid-minute'")
assert_eq "$total" "$((fired + skipped))" "forbid: every other tick skipped with a reason"
[ "$skipped" -ge 5 ] || fail "too few skipped ticks: $skipped"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.schedule_firings WHERE schedule = 'disabled'")" "disabled schedule never fires"

# ---- catch-up: missed hourly ticks, once, within catchup_s ----
q "DELETE FROM opspool.schedules" >/dev/null
now=$(date +%s)
target=$(( (now / 3600 + 1) * 3600 + 1200 )) # fake "now": 20 minutes past an hour
hour=$(( target / 3600 * 3600 ))
offset=$(( (target - now) * 1000 ))
for name in hourly-catchup hourly-nocatchup; do
    c=3600
    [ "$name" = hourly-nocatchup ] && c=0
    q "INSERT INTO opspool.schedules (name, cron, timezone, kind, payload, concurrency, catchup_s, last_fire_at, created_at)
       VALUES ('$name', '0 * * * *', 'UTC', 'noop', '{}', 'allow', $c, to_timestamp($hour - 5 * 3600), to_timestamp($hour - 86400))" >/dev/null
done
start_scheduler c OSP_TEST_CLOCK_OFFSET_MS="$offset" OSP_RECONCILE_GRACE_S=3600
C=$LAST_PID
start_scheduler d OSP_TEST_CLOCK_OFFSET_MS="$offset" OSP_RECONCILE_GRACE_S=3600
D=$LAST_PID
fired_q="SELECT count(*) FROM opspool.schedule_firings WHERE schedule = 'hourly-catchup' AND status <> 'missed'"
wait_eq 20 1 q "$fired_q" || fail "catch-up tick not fired: $WAIT_GOT"
sleep 3 # several more rounds of both replicas
assert_eq 1 "$(q "$fired_q")" "missed ticks caught up once, not replayed in bulk"
assert_eq "$hour" "$(q "SELECT extract(epoch FROM fire_at)::bigint FROM opspool.schedule_firings WHERE schedule = 'hourly-catchup' AND status <> 'missed'")" \
    "the caught-up tick is the latest missed one"
assert_eq "1 $((hour - 4 * 3600))" "$(q "SELECT count(*), min(extract(epoch FROM fire_at)::bigint) FROM opspool.schedule_firings WHERE schedule = 'hourly-catchup' AND status = 'missed'" | tr '|' ' ')" \
    "the miss is recorded once, at the first tick that never fired"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.jobs WHERE schedule = 'hourly-catchup'")" "one catch-up job"
reason=$(q "SELECT reason FROM opspool.schedule_firings WHERE schedule = 'hourly-catchup' AND status <> 'missed'")
[[ "$reason" == *"earlier ticks"* ]] \
    || fail "catch-up firing does not say earlier ticks were missed"
ok "catch-up firing records that earlier ticks were missed"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.schedule_firings WHERE schedule = 'hourly-nocatchup'")" \
    "without catchup_s a tick 20 minutes late is not fired"
# Gauges refresh from the ledger every 5 s (the other replica may have fired the tick).
wait_until 15 sh -c "curl -s '$LAST_URL/metrics' | grep -Eq '^opspool_schedule_last_fire_timestamp_seconds\\{schedule=\"hourly-catchup\"\\} $hour\$'" \
    || fail "last fire metric missing: $(curl -s "$LAST_URL/metrics" | grep schedule_last)"
curl -s "$LAST_URL/metrics" >"$TMP/metrics"
grep -Eq '^opspool_schedule_last_success_timestamp_seconds\{schedule="hourly-catchup"\} 0$' "$TMP/metrics" \
    || fail "last success metric missing"
# The miss is in the ledger, so every replica exports it from the first round on (a counter
# series appears only at its first increment, which an alert's delta() cannot see).
wait_until 15 sh -c "curl -s '$LAST_URL/metrics' | grep -Eq '^opspool_schedule_last_missed_timestamp_seconds\\{schedule=\"hourly-catchup\"\\} [1-9]'" \
    || fail "last missed metric missing: $(curl -s "$LAST_URL/metrics" | grep schedule_last_missed)"
curl -s "$LAST_URL/metrics" >"$TMP/metrics"
grep -Eq '^opspool_schedule_last_missed_timestamp_seconds\{schedule="hourly-nocatchup"\} 0$' "$TMP/metrics" \
    || fail "a schedule without a recorded miss does not export 0"
grep -Eq "^opspool_schedule_first_fire_timestamp_seconds\\{schedule=\"hourly-catchup\"\\} $((hour - 86400))\$" "$TMP/metrics" \
    || fail "first fire metric wrong: $(grep schedule_first_fire "$TMP/metrics")"
ok "schedule metrics exported (last fire, last success, last missed, first fire)"
kill -TERM "$C" "$D"
wait_until 20 sh -c "! kill -0 $C 2>/dev/null && ! kill -0 $D 2>/dev/null" || fail "schedulers did not stop"
finish
