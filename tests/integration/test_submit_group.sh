#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# API submits committed together (docs/api.md "Submit: one commit per group"): every submit
# a loop iteration of the scheduler collected goes into one ledger transaction, and each
# request is answered only after that commit.
#   - submits held back together (the scheduler stopped with SIGSTOP while 12 clients send,
#     so their requests wait in the kernel), with one idempotency key shared by 6 of them:
#     one job for the key (one 202 created, the others 200 duplicate of the same id), the 6
#     unkeyed ones each their own job, a malformed one refused alone (400) without touching
#     its group;
#   - 400 concurrent keep-alive submits (opspool-loadgen as the client): 400 answers 202,
#     400 ledger rows, 400 envelopes queued, and the transaction metrics account for every
#     submit (sum of group sizes = submits, transactions <= submits);
#   - PostgreSQL refusing the group's transaction: every request of the group gets 503, and
#     nothing is written or queued.
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"

start_scheduler s1 OSP_RECONCILE_GRACE_S=3600
S1=$LAST_PID
URL=$LAST_URL
queued() { rcli LLEN "$P:queue:noop"; }
metric() { curl -s "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# ---- a held-back group: shared key, unkeyed jobs, one malformed request ----
kill -STOP "$S1"
for i in $(seq 1 6); do
    curl -s -o "$TMP/k$i.json" -w '%{http_code}\n' -X POST -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' \
        --data-binary '{"kind":"noop","payload":{"sleep_ms":'"$i"'},"idempotency_key":"group-key"}' \
        "$URL/v1/jobs" >"$TMP/k$i.code" &
    PIDS+=($!)
    curl -s -o "$TMP/u$i.json" -w '%{http_code}\n' -X POST -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' --data-binary '{"kind":"noop"}' \
        "$URL/v1/jobs" >"$TMP/u$i.code" &
    PIDS+=($!)
done
curl -s -o "$TMP/bad.json" -w '%{http_code}\n' -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary '{"kind":"noop","max_attempts":0}' \
    "$URL/v1/jobs" >"$TMP/bad.code" &
PIDS+=($!)
# The clients have connected (the kernel completes the handshake for a stopped listener) and
# sent their requests; then the scheduler reads them all.
wait_until 20 bash -c "[ \$(ss -Htn state established '( dport = :${URL##*:} )' | wc -l) -ge 13 ]" ||
    fail "the 13 clients did not connect"
kill -CONT "$S1"
wait_until 30 bash -c "for f in $TMP/k*.code $TMP/u*.code $TMP/bad.code; do [ -s \$f ] || exit 1; done" ||
    fail "not every held-back request was answered"
codes=$(cat "$TMP"/k*.code | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
assert_eq "200x5 202x1 " "$codes" "shared key: one job created, five duplicates"
ids=$(jq -r .id "$TMP"/k*.json | sort -u)
assert_eq 1 "$(wc -l <<<"$ids")" "every answer for the shared key names the same job"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.jobs WHERE idempotency_key = 'group-key'")" "one ledger row for the key"
assert_eq "202x6 " "$(cat "$TMP"/u*.code | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')" "six unkeyed submits accepted"
assert_eq 6 "$(jq -r .id "$TMP"/u*.json | sort -u | wc -l)" "six distinct unkeyed jobs"
assert_eq 400 "$(cat "$TMP/bad.code")" "the malformed submit is refused"
assert_eq invalid_request "$(jq -r .error.code "$TMP/bad.json")" "with its own error"
assert_eq 7 "$(q "SELECT count(*) FROM opspool.jobs")" "7 jobs in the ledger"
assert_eq 7 "$(queued)" "7 envelopes queued"
say "held-back group: $(metric opspool_api_submit_transactions_total) transaction(s) for 12 submits"

# ---- concurrent keep-alive submits ----
"$BIN/tools/opspool-loadgen" -c 16 -n 400 -m POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -b '{"kind":"noop","payload":{}}' --json \
    "$URL/v1/jobs" >"$TMP/lg.json" || fail "loadgen: $(cat "$TMP/lg.json")"
assert_eq "400 0" "$(jq -r '"\(.responses) \([.errors[]] | add)"' "$TMP/lg.json")" "400 submits answered 2xx, no errors"
assert_eq 407 "$(q "SELECT count(*) FROM opspool.jobs")" "400 more ledger rows"
assert_eq 407 "$(queued)" "400 more envelopes queued"
tx=$(metric opspool_api_submit_transactions_total)
sum=$(metric opspool_api_submit_group_size_sum)
assert_eq 412 "${sum%.*}" "group sizes add up to every submit that reached a transaction"
[ "$tx" -ge 1 ] && [ "$tx" -le 412 ] || fail "transactions $tx outside 1..412"
ok "412 submits in $tx transactions"

# ---- PostgreSQL refuses the transaction: the whole group gets 503, nothing written ----
q "CREATE OR REPLACE FUNCTION opspool.test_refuse() RETURNS trigger LANGUAGE plpgsql AS
   \$\$ BEGIN RAISE EXCEPTION 'refused by test'; END \$\$"
q "CREATE TRIGGER test_refuse BEFORE INSERT ON opspool.jobs FOR EACH ROW EXECUTE FUNCTION opspool.test_refuse()"
kill -STOP "$S1"
for i in 1 2 3; do
    curl -s -o /dev/null -w '%{http_code}\n' -X POST -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' --data-binary '{"kind":"noop"}' \
        "$URL/v1/jobs" >"$TMP/r$i.code" &
    PIDS+=($!)
done
wait_until 20 bash -c "[ \$(ss -Htn state established '( dport = :${URL##*:} )' | wc -l) -ge 3 ]" ||
    fail "the 3 clients did not connect"
kill -CONT "$S1"
wait_until 30 bash -c "for f in $TMP/r*.code; do [ -s \$f ] || exit 1; done" || fail "refused group not answered"
assert_eq "503 503 503" "$(cat "$TMP"/r*.code | tr '\n' ' ' | sed 's/ $//')" "every request of a refused group gets 503"
q "DROP TRIGGER test_refuse ON opspool.jobs"
assert_eq 407 "$(q "SELECT count(*) FROM opspool.jobs")" "nothing written"
assert_eq 407 "$(queued)" "nothing queued"
assert_eq 202 "$(post_json /v1/jobs '{"kind":"noop"}')" "the next submit works"

kill -TERM "$S1"
wait_exit "$S1" 30
assert_eq 0 "$EXIT_RC" "scheduler exits cleanly"
finish
