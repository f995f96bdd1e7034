#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sentinels that misbehave, in front of a real master, replica and three real sentinels
# (chaos_lib.sh start_redis_ha). tests/support/badsentinel.py plays two of them:
#   stale    names the replica as the master (a sentinel cut off from the failover);
#   garbage  answers with malformed replies (wrong types, bad ports, an empty or 1 MiB host,
#            nested arrays, errors, nil, protocol garbage, a closed connection) and sends
#            malformed +switch-master messages.
# Listed FIRST, before the real sentinels, every program must get past them: refuse the
# replica (ROLE), ignore the garbage, reach the real master and work — with no crash (the
# suite runs under ASan/UBSan). With only bad sentinels, a clear error and nothing done.
# Bad settings (a malformed list, a unix socket with sentinels) are refused at start-up.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

start_redis_ha
REAL=$OSP_REDIS_SENTINELS
bad_sentinel() { # NAME MODE [MASTER] — sets BAD_PORT
    local pf=$TMP/$1.port
    python3 "$SRC/tests/support/badsentinel.py" --port-file "$pf" --mode "$2" --master "${3:-127.0.0.1:1}" \
        >>"$TMP/$1.log" 2>&1 &
    PIDS+=("$!")
    BAD_PORT=$(port_from_file "$pf" 20) || fail "badsentinel $1 did not start"
}
bad_sentinel stale stale "127.0.0.1:$RR_PORT"
STALE=127.0.0.1:$BAD_PORT
bad_sentinel garbage garbage
GARBAGE=127.0.0.1:$BAD_PORT
export OSP_REDIS_URL=redis://127.0.0.1:1 # never used: the sentinels name the master
"$CTL" migrate >/dev/null

# opspoolctl (the synchronous client) asks the sentinels in order.
for i in 1 2 3; do
    OSP_REDIS_SENTINELS="$STALE,$GARBAGE,$REAL" "$CTL" queues >"$TMP/ctl.out" 2>&1 \
        || fail "opspoolctl queues past the bad sentinels: $(cat "$TMP/ctl.out")"
done
ok "opspoolctl gets past a stale and a garbage sentinel to the master"
grep -q "stale answer" "$TMP/stale.log" || fail "the stale sentinel was never asked"
grep -q "garbage answer" "$TMP/garbage.log" || fail "the garbage sentinel was never asked"

# Only bad sentinels: a clear error, exit status non-zero, nothing submitted.
for i in 1 2 3 4 5 6 7 8 9 10 11; do
    rc=0
    OSP_REDIS_SENTINELS="$GARBAGE,$STALE" "$CTL" submit noop --payload '{}' >"$TMP/ctl.out" 2>&1 || rc=$?
    [ "$rc" = 3 ] || fail "opspoolctl submit with no usable sentinel: exit $rc (want 3: Redis unreachable): $(cat "$TMP/ctl.out")"
    grep -q "no usable master 'opspool' from 2 sentinel(s)" "$TMP/ctl.out" \
        || fail "unclear error: $(cat "$TMP/ctl.out")"
done
assert_eq 0 "$(q "SELECT count(*) FROM opspool.jobs")" "nothing submitted without a master"
say "e.g. $(tail -1 "$TMP/ctl.out")"

# A worker (the asynchronous client) with the same list: ready, runs a job.
start_worker w1 OSP_REDIS_SENTINELS="$STALE,$GARBAGE,$REAL" OSP_WORKER_ID=w1
WPID=$LAST_PID
wait_until 30 grep -q "redis ready: 127.0.0.1:$RM_PORT (master 'opspool' via sentinel 127.0.0.1:${SENT_PORTS[0]})" "$TMP/w1.log" \
    || fail "the worker did not reach the master through the real sentinels"
ok "the worker refused the stale and garbage answers and reached the master"
id=$(OSP_REDIS_SENTINELS="$REAL" "$CTL" submit noop --payload '{}' | awk '{print $NF}')
wait_eq 30 succeeded job_state "$id" || fail "the job did not run: $WAIT_GOT"
ok "a job ran"
# It got there through the garbage sentinel's answer and its malformed +switch-master
# messages (the stale one sends it on at once; the garbage one after 2 s without a usable
# answer). Reconnects ask again, from the last sentinel that answered: kill the worker's
# connections a few times; it stays up, on the real master.
for i in 1 2 3; do
    redis-cli -p "$RM_PORT" CLIENT KILL TYPE normal >/dev/null
    sleep 1
done
wait_until 30 grep -c "redis ready: 127.0.0.1:$RM_PORT" "$TMP/w1.log" || true
kill -0 "$WPID" || fail "the worker died: $(tail -5 "$TMP/w1.log")"
id=$(OSP_REDIS_SENTINELS="$REAL" "$CTL" submit noop --payload '{}' | awk '{print $NF}')
wait_eq 30 succeeded job_state "$id" || fail "no job ran after the reconnects: $WAIT_GOT"
ok "the worker survived every bad answer and still runs jobs"
assert_eq "$RM_PORT" "$(sentinel_master_port)" "the master did not move: the bad messages changed nothing"
# A clean stop: the sentinel links and subscriptions are released (the sanitizer build's leak
# check runs at exit and fails the exit status).
kill -TERM "$WPID"
wait_exit "$WPID" 40
assert_eq 0 "$EXIT_RC" "the worker stops cleanly on SIGTERM, nothing leaked"

# Bad settings: refused at start-up with the setting's name.
expect_config_error() { # WHAT PATTERN ENV...
    local what=$1 pat=$2 rc=0; shift 2
    env "$@" "$CTL" queues >"$TMP/ctl.out" 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q -- "$pat" "$TMP/ctl.out" || fail "$what: exit $rc (want 2), $(cat "$TMP/ctl.out")"
    ok "$what: refused ($(head -1 "$TMP/ctl.out"))"
}
expect_config_error "a malformed sentinel list" "OSP_REDIS_SENTINELS: redis sentinels: entry 4" \
    OSP_REDIS_SENTINELS="$REAL,127.0.0.1:99999"
expect_config_error "sentinels with a unix socket URL" "OSP_REDIS_SENTINELS:.*unix://" \
    OSP_REDIS_SENTINELS="$REAL" OSP_REDIS_URL=unix:///tmp/x.sock
expect_config_error "an empty master name" "master name is empty" \
    OSP_REDIS_SENTINELS="$REAL" OSP_REDIS_SENTINEL_MASTER=
finish
