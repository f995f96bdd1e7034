#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# PostgreSQL crashed (pg_ctl stop -m immediate) while configured for speed over durability:
# synchronous_commit=off as the server's default, and a WAL writer that waits 10 s, so commits
# made just before the crash are gone after it — what an asynchronous standby's promotion
# loses too. Two phases on one private server:
#
# A. A submitter that also commits asynchronously (its DSN sends options='', so it keeps the
#    server's default): the kind is paused, a batch is accepted and queued in Redis, then the
#    server crashes and comes back without the newest rows. The kind is resumed: each job
#    whose row vanished runs, its worker finds no row for the outcome, re-creates it from the
#    envelope ('ledger.restored') and records the outcome. Expected: every accepted id ends
#    succeeded, the restored rows are exactly the rows the crash took, lost = stuck = 0.
# B. opspool's own sessions (default DSN) under load, crashed mid-run: they ask for
#    synchronous_commit=on whatever the server's default, so no accepted row and no
#    acknowledged outcome is lost, and nothing needs restoring.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

NA=${OSP_CHAOS_JOBS_A:-400}
NB=${OSP_CHAOS_JOBS:-2000}
PG_EXTRA_OPTS="-c synchronous_commit=off -c wal_writer_delay=10000"
start_pg
export OSP_PG_DSN; OSP_PG_DSN=$(pg_dsn_unix)
"$CTL" migrate >/dev/null
restored() { q "SELECT count(DISTINCT job_id) FROM opspool.job_events WHERE type = 'ledger.restored'"; }
rows() { q "SELECT count(*) FROM opspool.jobs"; }

# ---- A: asynchronous submits lost by the crash ----
"$CTL" pause noop >/dev/null
for i in 1 2 3; do
    start_worker "w$i" OSP_LEASE_MS=2000 OSP_WORKER_SLOTS=8 OSP_WORKER_ID="w$i"
done
LOAD_ENV=(OSP_PG_DSN="$OSP_PG_DSN options=''")
start_load "$NA" 2000 5
wait_load 120
assert_eq "$NA" "$(rcli LLEN "$P:queue:noop")" "every accepted job is queued in Redis (the kind is paused)"
pg_crash
pg_start
after=$(rows)
gone=$((NA - after))
say "the crash took $gone of $NA accepted job rows (asynchronous commits)"
t_up=$(now_ms)
"$CTL" resume noop >/dev/null
wait_ge 120 "$NA" rows || fail "the workers did not re-create the lost rows: $WAIT_GOT of $NA"
wait_eq 120 "$NA" finished || fail "phase A did not finish: $WAIT_GOT of $NA"
assert_eq "$gone" "$(restored)" "each row the crash took was re-created from its envelope by its outcome"
if [ "$gone" -gt 0 ]; then
    assert_eq "$gone" "$(q "SELECT count(*) FROM opspool.jobs j WHERE state = 'succeeded' AND EXISTS
        (SELECT 1 FROM opspool.job_events e WHERE e.job_id = j.id AND e.type = 'ledger.restored')
        AND EXISTS (SELECT 1 FROM opspool.job_attempts a WHERE a.job_id = j.id AND a.outcome = 'succeeded')")" \
        "each restored job shows its succeeded attempt"
fi
logged=$(cat "$TMP"/w*.log | grep -c 'the ledger has no row for job' || true)
assert_eq "$gone" "$logged" "the workers logged each row they re-created"
restored_a=$(restored)
recovery_a=$(( $(now_ms) - t_up ))

# ---- B: opspool's own sessions, crashed mid-load ----
LOAD_ENV=()
mv "$TMP/ids" "$TMP/ids.a"
start_load "$NB" 150 20
wait_ge 60 $((NA + NB / 3)) finished || fail "phase B never got going: $WAIT_GOT finished"
INTERRUPTED=$(rcli ZCARD "$P:inflight:noop")
pg_crash
say "postgresql crashed mid-load, $INTERRUPTED job(s) in flight"
sleep 2
t_up=$(now_ms)
pg_start
recovery=$(wait_progress "$t_up")
wait_load 180
cat "$TMP/ids.a" >>"$TMP/ids"
chaos_check pg_crash_async "$recovery"
assert_eq "$restored_a" "$(restored)" "phase B lost no row: nothing needed re-creating (opspool's sessions commit synchronously)"
say "phase A: $gone rows lost and re-created, all $NA finished ${recovery_a} ms after the restart"
chaos_redis_clean
finish
