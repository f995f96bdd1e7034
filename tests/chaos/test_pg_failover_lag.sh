#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# PostgreSQL failover that loses the newest commits: the standby stops receiving WAL (its
# primary_conninfo is emptied and reloaded: an asynchronous standby that lags, made
# deterministic), a batch of jobs is accepted by the primary, then
# the primary crashes and the standby is promoted without those commits. Every program is on
# the multi-host DSN (host=<primary>,<standby> ... target_session_attrs=read-write). The kind
# is paused while the batch is accepted, so each lost row's job is still queued in Redis;
# after the promotion it runs, its worker finds no row for the outcome and re-creates it from
# the envelope ('ledger.restored'), then records the outcome.
# Expected: every accepted id ends succeeded on the promoted standby; the rows re-created are
# exactly the rows the promotion lost; lost = 0.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

NA=${OSP_CHAOS_JOBS_A:-300}
start_pg
P1_DIR=$PG_DIR P1_PORT=$PG_PORT
start_standby
export OSP_PG_DSN="host=$P1_DIR,$SB_DIR port=$P1_PORT,$SB_PORT user=postgres dbname=chaos target_session_attrs=read-write"
"$CTL" migrate >/dev/null
wait_eq 30 1 sbq "SELECT count(*) FROM pg_tables WHERE schemaname = 'opspool' AND tablename = 'jobs'" \
    || fail "the schema did not reach the standby"
restored() { q "SELECT count(DISTINCT job_id) FROM opspool.job_events WHERE type = 'ledger.restored'"; }
rows() { q "SELECT count(*) FROM opspool.jobs"; }

"$CTL" pause noop >/dev/null
# Cut the standby off: no primary_conninfo, so its WAL receiver stops (a reload is enough).
"${PG_RUNAS[@]}" sed -i '/^primary_conninfo/d' "$SB_DIR/data/postgresql.auto.conf"
"${PG_RUNAS[@]}" "$PGBIN/pg_ctl" -D "$SB_DIR/data" reload >/dev/null
wait_eq 30 0 sbq "SELECT count(*) FROM pg_stat_wal_receiver" || fail "the standby still receives WAL"
start_sched s1 OSP_RECONCILE_GRACE_S=3600
for i in 1 2; do
    start_worker "w$i" OSP_LEASE_MS=3000 OSP_WORKER_SLOTS=8 OSP_WORKER_ID="w$i"
done
start_load "$NA" 2000 5
wait_load 120
assert_eq "$NA" "$(rcli LLEN "$P:queue:noop")" "every accepted job is queued in Redis (the kind is paused)"
pg_crash
"${PG_RUNAS[@]}" "$PGBIN/pg_ctl" -D "$SB_DIR/data" -w -t 60 promote >/dev/null || fail "promotion failed"
t_up=$(now_ms)
assert_eq f "$(sbq "SELECT pg_is_in_recovery()")" "the lagging standby is promoted"
after=$(rows)
gone=$((NA - after))
say "the promotion lost $gone of $NA accepted job rows (the standby had stopped receiving)"
[ "$gone" -gt 0 ] || fail "the standby held every row: this test did not lose the commits it is about"
"$CTL" resume noop >/dev/null
wait_ge 120 "$NA" rows || fail "the workers did not re-create the lost rows: $WAIT_GOT of $NA"
wait_eq 120 "$NA" finished || fail "not every job finished: $WAIT_GOT of $NA"
recovery=$(( $(now_ms) - t_up ))
assert_eq "$gone" "$(restored)" "each row the promotion lost was re-created from its envelope by its outcome"
chaos_check pg_failover_lag "$recovery"
chaos_redis_clean
finish
