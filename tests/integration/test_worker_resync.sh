#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What a worker finds in its own processing list:
#  - at start, under an id a predecessor used (a StatefulSet pod, a fixed OSP_WORKER_ID): that
#    predecessor's runs, lost with it. Each is a recovery, in Redis and in the ledger (an
#    'interrupted' attempt row, the count), and a job over OSP_MAX_RECOVERIES is dead;
#  - after a reconnect: envelopes a fetch whose reply was lost moved there. They never ran:
#    handed back, no recovery.
# Undecodable items are dead-lettered with a reason either way.
. "$OSP_SRC_DIR/tests/support/lib.sh"

"$CTL" migrate >/dev/null
a=$("$CTL" submit noop)
b=$("$CTL" submit noop --payload '{"sleep_ms": 10}')
rcli RPOPLPUSH "$P:queue:noop" "$P:processing:fixed-id" >/dev/null
rcli RPOPLPUSH "$P:queue:noop" "$P:processing:fixed-id" >/dev/null
rcli LPUSH "$P:processing:fixed-id" "not an envelope" >/dev/null
assert_eq 0 "$(rcli LLEN "$P:queue:noop")" "both envelopes sit in the stale processing list"

# The worker connects as a Redis user of its own, so the reconnect below can drop exactly its
# connections (CLIENT KILL USER): the suite's Redis is shared with tests running in parallel.
RUSER=resync-$RANDOM$RANDOM
RPASS=pw-$RANDOM$RANDOM
rcli ACL SETUSER "$RUSER" reset on ">$RPASS" '~*' '&*' +@all >/dev/null
trap 'rcli ACL DELUSER "$RUSER" >/dev/null 2>&1; cleanup_pids' EXIT
start_worker w OSP_WORKER_ID=fixed-id OSP_REDIS_USERNAME="$RUSER" OSP_REDIS_PASSWORD="$RPASS"
wait_eq 30 succeeded job_state "$a" || fail "orphaned job a never ran: $(job_state "$a")"
wait_eq 30 succeeded job_state "$b" || fail "orphaned job b never ran: $(job_state "$b")"
ok "the predecessor's jobs are taken back and run"
for j in "$a" "$b"; do
    assert_eq "1|1|interrupted:true succeeded" "$(q "SELECT j.recoveries || '|' || j.attempt || '|' || string_agg(a.outcome || coalesce(':' || (a.error LIKE 'worker lost: fixed-id (restarted under the same id%')::text, ''), ' ' ORDER BY a.run) FROM opspool.jobs j JOIN opspool.job_attempts a ON a.job_id = j.id WHERE j.id = '$j' GROUP BY j.id")" \
        "job $j: one recovery; the lost run and the re-run are both attempt rows"
done
wait_eq 10 1 rcli LLEN "$P:dead:unknown" || fail "garbage item not dead-lettered"
rcli LRANGE "$P:dead:unknown" 0 -1 | tr -d '\0' | grep -q "undecodable" || fail "no reason on the dead record"
ok "an undecodable leftover is dead-lettered with a reason"
assert_eq 0 "$(rcli LLEN "$P:processing:fixed-id")" "processing list empty afterwards"
grep -q "took back 2 job(s) of this worker id's previous process" "$TMP/w.log" || fail "the take-back is not logged"
ok "the take-back is logged"

# A reconnect mid-life: an envelope moved by a fetch whose reply was lost never ran.
# The envelope of a delayed job (so no fetch can take it first) is put in the list directly.
c=$("$CTL" submit noop --delay-ms 3600000)
assert_eq 1 "$(rcli EVAL "local m = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
redis.call('ZREM', KEYS[1], m)
return redis.call('LPUSH', KEYS[2], string.sub(m, string.find(m, '|', 1, true) + 1))" 2 \
    "$P:delayed" "$P:processing:fixed-id")" "an envelope the worker never saw sits in its list"
killed=$(rcli CLIENT KILL USER "$RUSER")
[ "$killed" -ge 1 ] || fail "the worker's connections were not found ($killed)"
wait_eq 30 succeeded job_state "$c" || fail "job c never ran after the reconnect: $(job_state "$c")"
assert_eq "0|1" "$(q "SELECT recoveries || '|' || (SELECT count(*) FROM opspool.job_attempts WHERE job_id = '$c') FROM opspool.jobs WHERE id = '$c'")" \
    "after a reconnect: handed back without a recovery, one run"
grep -q "handed back 1 envelopes that a lost reply had left" "$TMP/w.log" || fail "the hand-back is not logged"
ok "the reconnect's hand-back is logged"
finish
