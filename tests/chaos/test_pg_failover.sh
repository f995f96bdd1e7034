#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# PostgreSQL failover to a streaming standby, mid-load. A private primary and a standby made
# with pg_basebackup (asynchronous streaming replication, as users run it); every program —
# submitter, scheduler, workers, opspoolctl — gets the same multi-host DSN:
#   host=<primary>,<standby> port=<p1>,<p2> target_session_attrs=read-write
# so libpq connects to whichever of the two accepts writes. Under load, the primary is stopped
# (a planned switchover: `pg_ctl stop -m fast` sends its last WAL to the standby before it
# exits) and the standby is promoted (`pg_ctl promote`). Nobody is told: the workers keep their
# outcomes until a ledger accepts them, the submitter retries, the synchronous clients
# reconnect, and the DSN's second host is the only writable one now.
# Expected: lost = 0, duplicates within the attempts in flight, the promoted standby is the
# ledger; time to resume = promotion -> the next finished job.
# (A crash of the primary with asynchronous replication can lose its last commits on the way
# to the standby: docs/reliability.md "PostgreSQL failover" says what opspool brings back then
# and what it cannot yet.)
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

# OSP_CHAOS_PG_STOP=immediate crashes the primary instead (no shutdown: WAL not yet sent is
# lost with it).
STOP=${OSP_CHAOS_PG_STOP:-fast}
N=${OSP_CHAOS_JOBS:-3000}
RATE=${OSP_CHAOS_RATE:-150}
start_pg
P1_DIR=$PG_DIR P1_PORT=$PG_PORT
psql "host=$P1_DIR port=$P1_PORT user=postgres dbname=chaos" -qAtc "SELECT 1" >/dev/null

# The standby: a base backup of the primary, streaming from it.
start_standby
assert_eq t "$(sbq "SELECT pg_is_in_recovery()")" "the standby is in recovery, streaming"
wait_eq 30 1 psql "host=$P1_DIR port=$P1_PORT user=postgres dbname=postgres" -qAtX \
    -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" || fail "the standby does not stream"

export OSP_PG_DSN="host=$P1_DIR,$SB_DIR port=$P1_PORT,$SB_PORT user=postgres dbname=chaos target_session_attrs=read-write"
"$CTL" migrate >/dev/null
start_sched s1 OSP_RECONCILE_GRACE_S=10 OSP_LEASE_MS=3000
for i in 1 2 3; do
    start_worker "w$i" OSP_LEASE_MS=3000 OSP_WORKER_SLOTS=8 OSP_WORKER_ID="w$i"
done
start_load "$N" "$RATE" 20
wait_ge 60 $((N / 3)) finished || fail "the load never got going: $WAIT_GOT finished"

INTERRUPTED=$(rcli ZCARD "$P:inflight:noop")
before=$(finished)
lsn_sent=$(psql "host=$P1_DIR port=$P1_PORT user=postgres dbname=postgres" -qAtX -c "SELECT pg_current_wal_lsn()")
"${PG_RUNAS[@]}" "$PGBIN/pg_ctl" -D "$P1_DIR/data" -m "$STOP" -w -t 60 stop >/dev/null || fail "primary did not stop"
say "primary stopped ($STOP) at $before finished, $INTERRUPTED job(s) in flight; its WAL was at $lsn_sent just before"
"${PG_RUNAS[@]}" "$PGBIN/pg_ctl" -D "$SB_DIR/data" -w -t 60 promote >/dev/null || fail "promotion failed"
t_up=$(now_ms)
assert_eq f "$(sbq "SELECT pg_is_in_recovery()")" "the standby is promoted: it accepts writes"
recovery=$(wait_progress "$t_up")
[ "$recovery" -ge 0 ] || fail "no job finished within 120 s of the promotion"
say "first job finished $recovery ms after the promotion"
wait_load 180
chaos_check "pg_failover_$STOP" "$recovery"
say "rows re-created from envelopes after the failover: $(q "SELECT count(DISTINCT job_id) FROM opspool.job_events WHERE type = 'ledger.restored'")"
# Every process reconnected to the new primary on its own: the old one is down and stays down.
[ -f "$P1_DIR/data/postmaster.pid" ] && fail "the old primary runs again"
assert_eq "$(submitted)" "$(sbq "SELECT count(*) FROM opspool.jobs")" "the promoted standby holds every job"
"$CTL" queues >/dev/null || fail "opspoolctl does not reach the new primary through the same DSN"
ok "opspoolctl reaches the promoted standby through the multi-host DSN"
chaos_redis_clean
finish
