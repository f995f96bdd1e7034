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
#     nothing is written or queued;
#   - Redis silent while groups' pushes are in flight (a proxy that forwards nothing): answered
#     202 with the reconciler's warning after the push's bound, or at once when the scheduler
#     stops; every job queued exactly once in the end.
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

# ---- the scheduler's ledger sessions killed: the group insert is prepared again ----
# (The insert is a named prepared statement, prepared once per connection.)
q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'opspool' AND pid <> pg_backend_pid()" >/dev/null
wait_until 20 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $URL/readyz)\" = 200 ]" ||
    fail "the scheduler did not reconnect to PostgreSQL"
"$BIN/tools/opspool-loadgen" -c 8 -n 40 -m POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -b '{"kind":"noop"}' --json \
    "$URL/v1/jobs" >"$TMP/lg2.json" || fail "loadgen: $(cat "$TMP/lg2.json")"
assert_eq "40 0" "$(jq -r '"\(.responses) \([.errors[]] | add)"' "$TMP/lg2.json")" \
    "40 submits after the sessions were killed: all 2xx (the insert prepared on the new connection)"
assert_eq 447 "$(q "SELECT count(*) FROM opspool.jobs")" "40 more ledger rows"
assert_eq 447 "$(queued)" "40 more envelopes queued"

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
assert_eq 447 "$(q "SELECT count(*) FROM opspool.jobs")" "nothing written"
assert_eq 447 "$(queued)" "nothing queued"
assert_eq 202 "$(post_json /v1/jobs '{"kind":"noop"}')" "the next submit works"

# ---- the push on the asynchronous Redis client, with Redis silent ----
# A second scheduler reaches Redis only through a proxy that goes silent (connections stay
# open, nothing is forwarded): its groups commit, and their pushes wait. A push Redis does not
# confirm within OSP_SUBMIT_PUSH_MAX_S (10 s) is answered 202 with the reconciler's warning;
# so are the pushes in flight when the scheduler stops. Either way the job is in the ledger and
# ends up queued exactly once: delivered late by the proxy, or enqueued by the reconciler.
RU=${OSP_REDIS_URL#unix://}
[ "$RU" != "$OSP_REDIS_URL" ] && RT="unix:$RU" || RT=${OSP_REDIS_URL#redis://}
python3 "$OSP_SRC_DIR/tests/support/chaosproxy.py" serve --listen 127.0.0.1:0 --target "$RT" \
    --control "$TMP/rp.ctl" --port-file "$TMP/rp.port" >>"$TMP/rp.log" 2>&1 &
PIDS+=($!)
wait_until 20 test -S "$TMP/rp.ctl" || fail "redis proxy did not start"
rproxy() { python3 "$OSP_SRC_DIR/tests/support/chaosproxy.py" ctl "$TMP/rp.ctl" "$1" >/dev/null; }
start_scheduler s2 OSP_REDIS_URL="redis://127.0.0.1:$(cat "$TMP/rp.port")" OSP_RECONCILE_GRACE_S=3600
S2=$LAST_PID
URL2=$LAST_URL
silent_submits() { # TAG N: N submits to s2 in the background, answers in $TMP/TAG*.{code,json}
    for i in $(seq 1 "$2"); do
        curl -s -m 60 -o "$TMP/$1$i.json" -w '%{http_code}\n' -X POST -H "Authorization: Bearer $TOKEN" \
            -H 'Content-Type: application/json' --data-binary '{"kind":"noop"}' \
            "$URL2/v1/jobs" >"$TMP/$1$i.code" &
        PIDS+=($!)
    done
}
answered() { for f in "$TMP/$1"*.code; do [ -s "$f" ] || return 1; done; }
rows_ge() { [ "$(q "SELECT count(*) FROM opspool.jobs")" -ge "$1" ]; }
queued_ge() { [ "$(queued)" -ge "$1" ]; }
base=$(queued)
rows0=$(q "SELECT count(*) FROM opspool.jobs")
rproxy blackhole
silent_submits late 3
wait_until 20 rows_ge $((rows0 + 3)) ||
    fail "the silent-Redis group did not commit"
sleep 2
answered late && fail "answered before Redis confirmed the push: $(cat "$TMP"/late*.code)"
t0=$(date +%s)
wait_until 60 answered late || fail "a push Redis never confirmed was not answered within its bound"
assert_eq "202x3 " "$(cat "$TMP"/late*.code | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')" \
    "unconfirmed pushes answered 202"
jq -e '.warning | test("reconciler")' "$TMP"/late1.json >/dev/null ||
    fail "no reconciler warning: $(cat "$TMP/late1.json")"
rproxy pass
wait_until 20 queued_ge $((base + 3)) ||
    fail "the held pushes never arrived: queue $(queued), want $((base + 3))"
ok "3 pushes unconfirmed: answered 202 with a warning $(( $(date +%s) - t0 + 2 )) s after the commit, queued once when Redis answered"

rproxy blackhole
silent_submits stop 4
wait_until 20 rows_ge $((rows0 + 7)) ||
    fail "the second silent-Redis group did not commit"
kill -TERM "$S2"
wait_exit "$S2" 30
assert_eq 0 "$EXIT_RC" "the scheduler stops cleanly with pushes in flight"
wait_until 20 answered stop || fail "pushes in flight at the stop were not answered"
assert_eq "202x4 " "$(cat "$TMP"/stop*.code | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')" \
    "pushes in flight at the stop answered 202"
rproxy pass
# The held pushes may still reach Redis (the proxy forwards what it holds) or not (their
# connection closed with s2): a reconciling scheduler finds any row without an envelope and
# enqueues it, and leaves the others.
start_scheduler s3 OSP_RECONCILE_GRACE_S=1 OSP_RECONCILE_PERIOD_S=1
S3=$LAST_PID
wait_until 30 queued_ge $((base + 7)) ||
    fail "the reconciler did not enqueue the unconfirmed jobs: queue $(queued), want $((base + 7))"
sleep 3 # more reconciler rounds: none may enqueue a job twice
assert_eq $((base + 7)) "$(queued)" "every job queued exactly once"
assert_eq $((rows0 + 7)) "$(q "SELECT count(*) FROM opspool.jobs")" "every answered submit has its row"
kill -TERM "$S3"
wait_exit "$S3" 30
assert_eq 0 "$EXIT_RC" "reconciling scheduler exits cleanly"

kill -TERM "$S1"
wait_exit "$S1" 30
assert_eq 0 "$EXIT_RC" "scheduler exits cleanly"
finish
