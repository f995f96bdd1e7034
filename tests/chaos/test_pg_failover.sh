#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# PostgreSQL failover to a streaming standby, mid-load. A private primary and a standby made
# with pg_basebackup (asynchronous streaming replication, as users run it); every program —
# submitter, scheduler, workers, opspoolctl — gets the same multi-host DSN:
#   host=<primary>,<standby> port=<p1>,<p2> target_session_attrs=read-write
# so libpq connects to whichever of the two accepts writes. Under load, the primary crashes
# (`pg_ctl stop -m immediate`: no shutdown, no last WAL sent — with asynchronous replication
# its newest commits may never reach the standby) and the standby is promoted (`pg_ctl
# promote`). Nobody is told: the workers keep their outcomes until a ledger accepts them, the
# submitter retries, the synchronous clients reconnect, and the DSN's second host is the only
# writable one now. OSP_CHAOS_PG_STOP=fast runs a planned switchover instead (`-m fast` sends
# the last WAL to the standby before the primary exits).
# Expected: lost = 0, duplicates within the attempts in flight, the promoted standby is the
# ledger; time to resume = promotion -> the next finished job. (docs/reliability.md
# "PostgreSQL failover" says what opspool brings back when the crash loses commits, and what
# it cannot yet.)
# Then the seed and backup kinds, whose target DSN is the same kind of two-host DSN (the dead
# old primary first, target_session_attrs=read-write): a seed and a backup verified by a
# restore both succeed, on the promoted server.
. "$OSP_SRC_DIR/tests/chaos/chaos_lib.sh"

STOP=${OSP_CHAOS_PG_STOP:-immediate}
N=${OSP_CHAOS_JOBS:-3000}
RATE=${OSP_CHAOS_RATE:-150}
start_pg
P1_DIR=$PG_DIR P1_PORT=$PG_PORT
psql "host=$P1_DIR port=$P1_PORT user=postgres dbname=chaos" -qAtc "SELECT 1" >/dev/null
# The seed and backup target's database, in the base backup with the rest.
psql "host=$P1_DIR port=$P1_PORT user=postgres dbname=postgres" -qAtc "CREATE DATABASE shop" >/dev/null

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
# The target: the same two servers, the old primary first.
TARGET_DSN="host=$P1_DIR,$SB_DIR port=$P1_PORT,$SB_PORT user=postgres dbname=shop target_session_attrs=read-write"
TARGETS=$TMP/targets.json
jq -n --arg dsn "$TARGET_DSN" --arg root "$TMP/backups" --arg bin "$PGBIN" \
    '{targets: {shop: {pg_dsn: $dsn, backup_root: $root, backup: {pg_bin: $bin}}}}' >"$TARGETS"
# A worker for those kinds only (the load stays on w1..w3); it lives through the failover too.
start_worker wt OSP_LEASE_MS=3000 OSP_WORKER_ID=wt OSP_WORKER_KINDS=seed,backup OSP_TARGETS_FILE="$TARGETS"
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

# Seed and backup through the target's two-host DSN: its first host is the dead old primary.
job_done() { [[ $(job_state "$1") =~ ^(succeeded|failed|dead|cancelled)$ ]]; }
job_err() { q "SELECT coalesce(string_agg(error, ' | ' ORDER BY attempt), '') FROM opspool.job_attempts WHERE job_id = '$1'"; }
seed_id=$(OSP_TARGETS_FILE="$TARGETS" "$CTL" submit seed --payload '{"target": "shop", "seed": 7, "scale": 1}' | awk '{print $NF}')
wait_until 180 job_done "$seed_id" || fail "the seed did not finish: $(job_state "$seed_id")"
[ "$(job_state "$seed_id")" = succeeded ] || fail "the seed: $(job_state "$seed_id"): $(job_err "$seed_id")"
ok "the seed through the two-host target DSN succeeded"
seeded=$(q "SELECT result->'rows'->>'users' FROM opspool.jobs WHERE id = '$seed_id'")
[ "${seeded:-0}" -gt 0 ] || fail "the seed's result names no users: $(q "SELECT result FROM opspool.jobs WHERE id = '$seed_id'")"
shopq() { psql "host=$SB_DIR port=$SB_PORT user=postgres dbname=shop" -qAtX -c "$1"; }
assert_eq "$seeded" "$(shopq "SELECT count(*) FROM users")" "the seed's $seeded users are on the promoted server"
backup_id=$(OSP_TARGETS_FILE="$TARGETS" "$CTL" submit backup --payload '{"target": "shop", "verify": "restore"}' | awk '{print $NF}')
wait_until 180 job_done "$backup_id" || fail "the backup did not finish: $(job_state "$backup_id")"
[ "$(job_state "$backup_id")" = succeeded ] || fail "the backup: $(job_state "$backup_id"): $(job_err "$backup_id")"
ok "the backup through the two-host target DSN succeeded"
read -r verified archive < <(q "SELECT result->>'verified', result->>'path' FROM opspool.jobs WHERE id = '$backup_id'" | tr '|' ' ')
assert_eq restore "$verified" "the backup was verified by a restore"
assert_eq "$seeded" "$(q "SELECT result->'row_counts'->>'public.users' FROM opspool.jobs WHERE id = '$backup_id'")" \
    "the backup (and its restore check) counted the seeded users"
[ -s "$archive" ] || fail "no backup archive at $archive"
ok "backup archive ${archive#"$TMP"/} holds the promoted server's data"
chaos_redis_clean
finish
