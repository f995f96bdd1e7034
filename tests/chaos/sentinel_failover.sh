#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# sentinel_failover.sh — the body of test_redis_sentinel_kill.sh and test_redis_sentinel_cut.sh
# (sourced by them with FAULT=kill|cut; not a test itself).
#
# Redis under Sentinel, failed over mid-load. A private master, one replica (asynchronous
# replication, as users run it) and three sentinels on 127.0.0.1 (quorum 2, down after 1 s).
# Every program — workers, scheduler, submitter, opspoolctl — is given only the sentinels
# (OSP_REDIS_SENTINELS) and the master's name; OSP_REDIS_URL names a port nothing listens on,
# so a program that ignored the sentinels could not work at all. Nobody is told of the fault.
#   kill: the master is SIGKILLed; later it restarts (empty) and the sentinels make it a
#         replica of the new master: no pool process may write to it (its command statistics
#         show no script, push or move from a client). The sentinels require a password
#         (requirepass): every pool process reads it from OSP_REDIS_SENTINEL_PASSWORD_FILE (a
#         0600 file), and opspoolctl with a wrong password, or none, fails with an error that
#         names the sentinel's authentication.
#   cut:  the master sits behind chaosproxy.py for everyone (replica, sentinels, pool) and the
#         proxy blackholes it: a network cut; the master itself keeps running and believes it
#         is the master. After the failover the cut heals and the sentinels demote it.
# Writes the old master had not yet sent to the replica are lost with the failover: the
# ledger brings those jobs back (the scheduler's reconciler), so lost = 0. Duplicates are
# bounded by the envelopes held at the fault, the jobs finished in the 2 s before it (acks
# the replica may not have received), the reaped and the reconciled jobs.
# Time to resume: the fault -> the next finished job. The failover time (fault -> the
# sentinels name the new master) is printed beside it.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

N=${OSP_CHAOS_JOBS:-3000}
RATE=${OSP_CHAOS_RATE:-150}
[ -x "$SCHED" ] || { echo "opspool-scheduler not built" >&2; exit 77; }
if [ "$FAULT" = cut ]; then start_redis_ha proxy; else start_redis_ha auth; fi
# The pool's programs: sentinels only. The test's own redis-cli (rcli) talks to the master.
POOL=(OSP_REDIS_URL=redis://127.0.0.1:1)
export OSP_REDIS_URL=redis://127.0.0.1:$RM_PORT
"$CTL" migrate >/dev/null
if [ -n "$SENT_PASS_FILE" ]; then
    # Every pool process below inherits OSP_REDIS_SENTINEL_PASSWORD_FILE. A wrong password,
    # or none, is refused by the sentinels: a clear error naming their authentication, exit
    # status 3 (Redis unreachable), no crash.
    [ "$(stat -c %a "$SENT_PASS_FILE")" = 600 ] || fail "the sentinel password file is not 0600"
    (umask 077 && printf 'not-the-password' >"$TMP/sentinel.wrong")
    rc=0
    env "${POOL[@]}" OSP_REDIS_SENTINEL_PASSWORD_FILE="$TMP/sentinel.wrong" "$CTL" queues \
        >"$TMP/ctl.out" 2>&1 </dev/null || rc=$?
    [ "$rc" = 3 ] || fail "opspoolctl with a wrong sentinel password: exit $rc (want 3): $(cat "$TMP/ctl.out")"
    grep -q "redis sentinel 127.0.0.1:[0-9]*: authentication failed (OSP_REDIS_SENTINEL_USERNAME/OSP_REDIS_SENTINEL_PASSWORD): WRONGPASS" "$TMP/ctl.out" \
        || fail "unclear error for a wrong sentinel password: $(cat "$TMP/ctl.out")"
    say "e.g. $(tail -1 "$TMP/ctl.out")"
    rc=0
    env -u OSP_REDIS_SENTINEL_PASSWORD_FILE "${POOL[@]}" "$CTL" queues >"$TMP/ctl.out" 2>&1 </dev/null || rc=$?
    [ "$rc" = 3 ] || fail "opspoolctl without the sentinel password: exit $rc (want 3): $(cat "$TMP/ctl.out")"
    grep -q "NOAUTH.*(the sentinel requires OSP_REDIS_SENTINEL_PASSWORD)" "$TMP/ctl.out" \
        || fail "unclear error without the sentinel password: $(cat "$TMP/ctl.out")"
    env "${POOL[@]}" "$CTL" queues >"$TMP/ctl.out" 2>&1 </dev/null \
        || fail "opspoolctl with the sentinel password file: $(cat "$TMP/ctl.out")"
    ok "password-protected sentinels: refused with a wrong or no password (a clear error), accepted with the file"
fi
for i in 1 2 3; do
    start_worker "w$i" "${POOL[@]}" OSP_LEASE_MS=3000 OSP_WORKER_SLOTS=8 OSP_WORKER_ID="w$i"
done
start_sched s1 "${POOL[@]}" OSP_RECONCILE_GRACE_S=5 OSP_RECONCILE_PERIOD_S=1 OSP_LEASE_MS=3000
SCHED_URL=$LAST_URL
LOAD_ENV=("${POOL[@]}")
start_load "$N" "$RATE" 20
wait_ge 60 $((N / 3)) finished || fail "the load never got going: $WAIT_GOT finished"
wait_until 10 grep -q "redis ready: 127.0.0.1:$RM_ADDR_PORT (master 'opspool' via sentinel" "$TMP/w1.log" \
    || fail "worker w1 did not log the master it found through the sentinels"
ok "the pool found the master through the sentinels"

held=0
for k in $(rcli --scan --pattern "$P:processing:*"); do held=$((held + $(rcli LLEN "$k"))); done
t_fault=$(now_ms)
if [ "$FAULT" = cut ]; then
    proxy "$PROXY_CTL" blackhole >/dev/null
    say "master cut off the network at $(finished) finished, $held envelope(s) held by workers"
else
    kill -9 "$RM_PID"
    wait "$RM_PID" 2>/dev/null || true
    say "master SIGKILLed at $(finished) finished, $held envelope(s) held by workers"
fi
wait_eq 60 "$RR_PORT" sentinel_master_port || fail "no failover: the sentinels still name :$WAIT_GOT"
failover=$(( $(now_ms) - t_fault ))
say "the sentinels promoted the replica :$RR_PORT $failover ms after the fault"
export OSP_REDIS_URL=redis://127.0.0.1:$RR_PORT
recovery=$(wait_progress "$t_fault")
[ "$recovery" -ge 0 ] || fail "no job finished within 120 s of the fault"
say "first job finished $recovery ms after the fault ($failover ms of it the failover itself)"

if [ "$FAULT" = cut ]; then
    sleep 2
    proxy "$PROXY_CTL" pass >/dev/null
    say "the cut healed"
else
    start_redis_tcp rmaster "$RM_PORT"
    RM_PID=$LAST_PID
    say "the old master restarted (empty, a master until the sentinels reconfigure it)"
fi
# The sentinels demote the old master: a replica of the new one. Its command statistics are
# read the moment it is seen as a replica: what a pool process wrote to it while it was a
# stale master shows there, whatever the sentinels do next.
# On a loaded machine the sentinels may instead fail over a second time, before the restart
# is a replica: a sentinel judged the new master down (it missed pings for the 1 s
# down-after) while the old one was still dead, chose the old one from its list of replicas
# and sent it SLAVEOF NO ONE as it came back (seen in CI: it never reported "slave"). Then the
# sentinels name it the master; it had no stale period, and there is nothing to read.
demoted() {
    local role
    role=$(redis-cli -p "$RM_PORT" ROLE 2>/dev/null | head -1)
    if [ "$role" = slave ]; then
        redis-cli -p "$RM_PORT" INFO commandstats >"$TMP/demoted.stats"
        return 0
    fi
    [ "$role" = master ] && [ "$(sentinel_master_port)" = "$RM_PORT" ] || return 1
    : >"$TMP/reelected"
}
wait_until 60 demoted || fail "the old master was not made a replica: $(redis-cli -p "$RM_PORT" ROLE | head -1)"
if [ -e "$TMP/reelected" ]; then
    say "the sentinels elected the restarted old master itself (a second failover before it was a replica)"
else
    ok "the old master is now a replica of :$RR_PORT"
fi
# On a loaded machine the sentinels may fail over once more (the new master missed their
# pings for a second), to this very node: then it is the master they name, the other node its
# replica, and the ledger brings back what that failover lost. Either way the pool follows.
settled() {
    local m o
    m=$(sentinel_master_port) || return 1
    if [ "$m" = "$RR_PORT" ]; then o=$RM_PORT; else o=$RR_PORT; fi
    [ "$(redis-cli -p "$m" ROLE 2>/dev/null | head -1)" = master ] || return 1
    [[ $(redis-cli -p "$o" INFO replication 2>/dev/null) == *"master_port:$m"*master_link_status:up* ]] || return 1
    echo "$m"
}
wait_until 60 settled || fail "the sentinels' topology did not settle: they name :$(sentinel_master_port)"
master_now=$(settled)
if [ "$master_now" != "$RR_PORT" ]; then
    say "the sentinels failed over a second time, to :$master_now (the restarted node)"
fi
export OSP_REDIS_URL=redis://127.0.0.1:$master_now
wait_load 180
wait_eq 180 0 unfinished || true
if [ "$FAULT" = kill ] && [ ! -e "$TMP/reelected" ]; then
    # Until its demotion, no client wrote to the old master: replicated writes arrive as plain
    # commands (MULTI/EXEC of the scripts' effects), never as EVALSHA, BLMOVE or a submit.
    stats=$(cat "$TMP/demoted.stats")
    for c in evalsha evalsha_ro blmove lmove; do
        [[ $stats == *"cmdstat_$c:"* ]] && fail "a pool process ran $c on the demoted master: $(grep "cmdstat_$c:" <<<"$stats")"
    done
    ok "no pool process wrote to the restarted old master"
fi
window=$(q "SELECT count(*) FROM opspool.jobs WHERE finished_at BETWEEN to_timestamp(($t_fault - 2000) / 1000.0) AND to_timestamp($t_fault / 1000.0)")
reconciled=$(q "SELECT count(*) FROM opspool.job_events WHERE type = 'reconciled'")
say "interrupted: held $held, finished in the 2 s before the fault $window, reaped $(reaped_count), reconciled $reconciled"
INTERRUPTED=$((held + window + $(reaped_count) + reconciled))
for f in w1 w2 w3 s1; do
    grep -q "redis ready: 127.0.0.1:$RR_PORT (master 'opspool' via sentinel" "$TMP/$f.log" \
        || fail "$f did not log that it follows the new master"
done
ok "every worker and the scheduler logged the new master"
metric_changes() { curl -sf "$SCHED_URL/metrics" | awk '$1 == "opspool_redis_master_changes_total" { print $2 + 0 }'; }
wait_ge 20 1 metric_changes || fail "opspool_redis_master_changes_total stayed at ${WAIT_GOT:-nothing}"
ok "the scheduler counts the master change in opspool_redis_master_changes_total"
"$CTL" queues >/dev/null 2>"$TMP/ctl.err" </dev/null || fail "opspoolctl: $(cat "$TMP/ctl.err")"
env "${POOL[@]}" "$CTL" queues >/dev/null || fail "opspoolctl does not reach the new master through the sentinels"
ok "opspoolctl reaches the new master through the sentinels"
chaos_check "redis_sentinel_$FAULT" "$recovery"
chaos_redis_clean
finish
