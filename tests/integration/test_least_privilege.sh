#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Least privilege, end to end (docs/security.md): a private PostgreSQL with the roles of
# deploy/sql/roles.sql + grants.sql, and a private redis-server (unix socket in $TMP) with
# the ACL users of deploy/keda/redis-users.acl. The scheduler, workers and opspoolctl run
# under those roles/users only (never superuser, never the default Redis user) and go
# through: submit via the API -> run -> result; a retry; a dead letter; cancel (API and
# opspoolctl); the promoter (run_at); the reaper (a SIGKILLed worker's job is recovered);
# opspoolctl retry/purge with audit records; opspoolctl read commands as opspool_readonly.
# Then forbidden actions are refused: DML/DDL outside each role's grants in PostgreSQL;
# FLUSHALL/KEYS/CONFIG/EVAL/foreign keys for the Redis users.
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"
. "$OSP_SRC_DIR/tests/integration/sec_lib.sh"

# ---- PostgreSQL: private cluster, roles, migrations as the migrator, grants ----
sec_pg_init
sec_pg_start
sec_psql postgres postgres -c "CREATE DATABASE opspool"
sec_psql postgres opspool -f "$SRC/deploy/sql/roles.sql" >/dev/null
ok "roles.sql applied as superuser"
# URI form (no spaces): it travels through word-split env assignments below.
dsn() { echo "postgresql://$1@/opspool?host=$SEC_PGDIR&port=$SEC_PGPORT"; }
OSP_PG_DSN=$(dsn opspool_migrator) OSP_REDIS_URL=unix:///nonexistent "$CTL" migrate >/dev/null ||
    fail "opspoolctl migrate as opspool_migrator"
sec_psql opspool_migrator opspool -f "$SRC/deploy/sql/grants.sql" >/dev/null
sec_psql opspool_migrator opspool -f "$SRC/deploy/sql/grants.sql" >/dev/null # idempotent
ok "migrations and grants.sql applied as opspool_migrator (twice: idempotent)"
assert_eq opspool_migrator "$(sec_psql postgres opspool -c "SELECT tableowner FROM pg_tables WHERE schemaname = 'opspool' AND tablename = 'jobs'")" "the migrator owns the schema's tables"
for r in opspool_scheduler opspool_worker opspool_operator opspool_readonly opspool_migrator; do
    [ "$(sec_psql postgres opspool -c "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls FROM pg_roles WHERE rolname = '$r'")" = f ] ||
        fail "$r has an elevated attribute"
done
ok "no role is superuser, createrole, createdb or bypassrls"
# Services run osp_ledger_migrate at start: it must be a no-op (no DDL) for roles without
# CREATE once the migrator has done the work.
if ! out=$(OSP_PG_DSN=$(dsn opspool_worker) OSP_REDIS_URL=unix:///nonexistent "$CTL" migrate 2>&1); then
    fail "osp_ledger_migrate as opspool_worker fails ($out): common/ledger.c needs the up-to-date fast path (no DDL when every migration is recorded)"
fi
ok "osp_ledger_migrate is a no-op for a least-privileged role once migrated"
# Assertions read the ledger as superuser; the programs never do.
export OSP_PG_DSN; OSP_PG_DSN=$(dsn postgres)

# ---- Redis: private server, admin user for the test, the file's users ----
sec_redis_start
ADMIN_PW=adm-$RANDOM$RANDOM
radmin() { redis-cli -s "$SEC_REDIS_SOCK" --user admin --pass "$ADMIN_PW" --no-auth-warning "$@"; }
redis-cli -s "$SEC_REDIS_SOCK" ACL SETUSER admin on ">$ADMIN_PW" '~*' '&*' +@all >/dev/null
rand() { od -An -tx1 -N12 /dev/urandom | tr -d ' \n'; }
declare -A PW
for u in opspool keda opspool-worker opspool-scheduler opspool-operator; do PW[$u]=$(rand); done
n=0
while IFS= read -r line; do
    case $line in user\ *) ;; *) continue ;; esac
    line=${line//\{opspool\}/$OSP_PREFIX}
    line=${line//OPSPOOL_REDIS_PASSWORD/${PW[opspool]}}
    line=${line//KEDA_REDIS_PASSWORD/${PW[keda]}}
    line=${line//WORKER_REDIS_PASSWORD/${PW[opspool-worker]}}
    line=${line//SCHEDULER_REDIS_PASSWORD/${PW[opspool-scheduler]}}
    line=${line//OPERATOR_REDIS_PASSWORD/${PW[opspool-operator]}}
    line=${line/ off / on }
    read -ra words <<<"${line#user }"
    [ "$(radmin ACL SETUSER "${words[@]}")" = OK ] || fail "ACL SETUSER ${words[0]}"
    n=$((n + 1))
done <"$SRC/deploy/keda/redis-users.acl"
[ "$n" -ge 6 ] || fail "expected at least 6 users in redis-users.acl, got $n"
ok "$n ACL users of deploy/keda/redis-users.acl loaded into a private redis-server"
as_user() { # as_user USER CMD... — redis-cli as that ACL user
    local u=$1; shift
    redis-cli -s "$SEC_REDIS_SOCK" --user "$u" --pass "${PW[$u]}" --no-auth-warning "$@"
}
assert_eq "NOPERM" "$(redis-cli -s "$SEC_REDIS_SOCK" GET x 2>&1 | grep -o NOPERM | head -1)" "the default user may only PING"

# Environment of each program: its PG role and its Redis user, nothing else.
export OSP_REDIS_URL=unix://$SEC_REDIS_SOCK
export OSP_SIGNING_KEY=sig-$RANDOM$RANDOM
penv() { # penv PGROLE REDISUSER — env assignments for a program
    echo "OSP_PG_DSN=$(dsn "$1")" "OSP_REDIS_USERNAME=$2" "OSP_REDIS_PASSWORD=${PW[$2]}"
}
rq() { radmin "$@"; }
ctl_as() { # ctl_as PGROLE REDISUSER ARGS...
    local r=$1 u=$2; shift 2
    # shellcheck disable=SC2046
    env $(penv "$r" "$u") "$CTL" "$@"
}

# ---- the programs ----
# shellcheck disable=SC2046
# Notifications too: a receiver for job.dead (the dead letter below), delivered under the role.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMP/hook.secret"
python3 "$SRC/tests/support/hookrecv.py" --port-file "$TMP/hook.port" --log "$TMP/hook.jsonl" \
    --secret-file "$TMP/hook.secret" >>"$TMP/hookrecv.log" 2>&1 &
PIDS+=("$!")
HOOK=$(port_from_file "$TMP/hook.port" 20) || fail "the webhook receiver did not start"
printf '{"endpoints": {"ops": {"url": "http://127.0.0.1:%s/", "secret_file": "%s", "events": ["job.dead"]}}}\n' \
    "$HOOK" "$TMP/hook.secret" >"$TMP/notify.json"
chmod a+r "$TMP/notify.json" "$TMP/hook.secret"
start_scheduler sched $(penv opspool_scheduler opspool-scheduler) OSP_LEASE_MS=3000 \
    OSP_RECONCILE_GRACE_S=3600 OSP_RETRY_BASE_MS=200 OSP_RETRY_MAX_MS=500 OSP_NOTIFY_FILE="$TMP/notify.json"
SCH=$LAST_PID
URL=$LAST_URL
wait_until 20 curl -sf "$URL/readyz" || fail "scheduler not ready under its role/user: $(curl -s "$URL/readyz")"
ok "scheduler ready as opspool_scheduler / opspool-scheduler"
WENV=$(penv opspool_worker opspool-worker)
# shellcheck disable=SC2086
start_worker w1 $WENV OSP_WORKER_KINDS=noop OSP_WORKER_SLOTS=2 OSP_LEASE_MS=3000 \
    OSP_RETRY_BASE_MS=200 OSP_RETRY_MAX_MS=500
W1=$LAST_PID
wait_eq 20 1 rq ZCARD "$P:workers" || fail "worker did not register under its ACL user"
ok "worker registered as opspool_worker / opspool-worker"

submit() { post_json /v1/jobs "$1" >/dev/null; jbody .id; }

# Round trip through the API.
J1=$(submit '{"kind":"noop","payload":{"sleep_ms":50,"result":{"hello":"least privilege"}}}')
wait_eq 30 succeeded job_state "$J1" || fail "round trip: state $WAIT_GOT"
assert_eq 200 "$(api GET "/v1/jobs/$J1")" "GET the job through the API"
assert_eq "least privilege" "$(jbody .result.hello)" "result read back through the API"

# A retry: fails its first attempt, succeeds the second.
J2=$(submit '{"kind":"noop","payload":{"fail_attempts":1},"max_attempts":3}')
wait_eq 30 succeeded job_state "$J2" || fail "retry: state $WAIT_GOT"
assert_eq 2 "$(q "SELECT attempt FROM opspool.jobs WHERE id = '$J2'")" "retried job succeeded on attempt 2"

# A dead letter.
J3=$(submit '{"kind":"noop","payload":{"fail":true},"max_attempts":1}')
wait_eq 30 dead job_state "$J3" || fail "dead letter: state $WAIT_GOT"
wait_eq 10 1 rq LLEN "$P:dead:noop" || fail "no dead record"
ok "dead job recorded in the ledger and on the dead list"
hook_dead() { [ -f "$TMP/hook.jsonl" ] && jq -r --arg j "$J3" 'select(.body.subject == $j and .status == 200) | .event' "$TMP/hook.jsonl"; }
wait_eq 30 job.dead hook_dead || fail "no job.dead webhook under opspool_scheduler: $(grep -i notif "$TMP/sched.log" | tail -3)"
ok "the job.dead webhook is delivered by a scheduler with opspool_scheduler's grants"

# Cancel through the API (a delayed job) — also exercises the scheduler's Redis commands.
J4=$(submit '{"kind":"noop","run_at":"2999-01-01T00:00:00Z"}')
assert_eq 200 "$(api POST "/v1/jobs/$J4/cancel")" "cancel a delayed job via the API"
assert_eq cancelled "$(job_state "$J4")" "cancelled in the ledger"
assert_eq "job.cancel" "$(q "SELECT data->>'action' FROM opspool.job_events WHERE job_id = '$J4' AND type = 'audit'")" "API cancel wrote its audit event"

# The promoter: run_at two seconds ahead.
due=$(( $(date +%s%3N) + 2000 ))
J5=$(submit "{\"kind\":\"noop\",\"run_at\":$due}")
assert_eq delayed "$(job_state "$J5")" "run_at job is delayed"
wait_eq 30 succeeded job_state "$J5" || fail "promoter: state $WAIT_GOT"
ok "delayed job promoted and run"

# Pause/resume and the queues view (scheduler: SADD/SREM + stats script).
assert_eq 200 "$(api POST /v1/queues/noop/pause)" "pause via the API"
assert_eq 200 "$(api GET /v1/queues)" "queues via the API"
assert_eq 200 "$(api POST /v1/queues/noop/resume)" "resume via the API"

# The reaper: SIGKILL the only worker while it runs a job; a new worker finishes it.
J6=$(submit '{"kind":"noop","payload":{"sleep_ms":3000}}')
wait_eq 20 running job_state "$J6" || fail "reaper: job never ran (state $WAIT_GOT)"
kill -KILL "$W1"
wait_exit "$W1" 10
# shellcheck disable=SC2086
start_worker w2 $WENV OSP_WORKER_KINDS=noop OSP_WORKER_SLOTS=2 OSP_LEASE_MS=3000
W2=$LAST_PID
wait_eq 60 succeeded job_state "$J6" || fail "reaper: state $WAIT_GOT"
assert_eq 1 "$(rq HGET "$P:job:$J6" recoveries)" "the reaper recovered the killed worker's job"

# ---- opspoolctl as operator / readonly ----
OP=(opspool_operator opspool-operator)
RO=(opspool_readonly opspool-operator)
ctl_as "${RO[@]}" queues >/dev/null || fail "opspoolctl queues as opspool_readonly"
ctl_as "${RO[@]}" jobs >/dev/null || fail "opspoolctl jobs as opspool_readonly"
ctl_as "${RO[@]}" job "$J1" >/dev/null || fail "opspoolctl job as opspool_readonly"
ctl_as "${RO[@]}" schedules >/dev/null || fail "opspoolctl schedules as opspool_readonly"
ctl_as "${RO[@]}" dead noop >/dev/null || fail "opspoolctl dead as opspool_readonly"
ctl_as "${RO[@]}" notifications --state all >/dev/null || fail "opspoolctl notifications as opspool_readonly"
ok "opspoolctl read commands work as opspool_readonly"
J7=$(submit '{"kind":"noop","run_at":"2999-01-01T00:00:00Z"}')
rc=0; ctl_as "${RO[@]}" cancel "$J7" >"$TMP/ro-cancel.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "opspoolctl cancel succeeded as opspool_readonly"
grep -q "permission denied" "$TMP/ro-cancel.out" || fail "readonly cancel: $(cat "$TMP/ro-cancel.out")"
assert_eq delayed "$(job_state "$J7")" "opspoolctl cancel as opspool_readonly: permission denied, nothing changed"
ctl_as "${OP[@]}" cancel "$J7" >/dev/null || fail "opspoolctl cancel as opspool_operator"
assert_eq cancelled "$(job_state "$J7")" "opspoolctl cancel as opspool_operator"
who="user:$(id -un)"
assert_eq "$who|job.cancel|opspoolctl" "$(q "SELECT data->>'who', data->>'action', data->>'via' FROM opspool.job_events WHERE job_id = '$J7' AND type = 'audit'")" "opspoolctl cancel wrote an audit event naming the OS user"
ctl_as "${OP[@]}" dead retry noop "$J3" >/dev/null || fail "opspoolctl dead retry as opspool_operator"
assert_eq "$who|dead.retry" "$(q "SELECT data->>'who', data->>'action' FROM opspool.job_events WHERE job_id = '$J3' AND type = 'audit'")" "opspoolctl dead retry wrote an audit event"
wait_eq 30 dead job_state "$J3" || fail "retried dead job: state $WAIT_GOT"
wait_eq 10 1 rq LLEN "$P:dead:noop" || fail "no dead record after the retry"
ctl_as "${OP[@]}" dead purge noop --yes >/dev/null || fail "opspoolctl dead purge as opspool_operator"
assert_eq 0 "$(rq LLEN "$P:dead:noop")" "dead list purged"
assert_eq "$who" "$(q "SELECT data->>'who' FROM opspool.job_events WHERE job_id = '$J3' AND type = 'audit' AND data->>'action' = 'dead.purge'")" "opspoolctl dead purge wrote an audit event per purged job"
# Bulk cancel as the operator: ledger batches, cancel.lua's flags, purge.lua's sweep (RPOP)
# and the opspool.audit row all within the operator's grants and ACL.
J8=$(submit '{"kind":"noop","run_at":"2999-01-01T00:00:00Z"}')
ctl_as "${OP[@]}" cancel --kind noop --state delayed --yes >"$TMP/bulk.out" 2>&1 || fail "opspoolctl cancel --kind as opspool_operator: $(cat "$TMP/bulk.out")"
assert_eq cancelled "$(job_state "$J8")" "opspoolctl bulk cancel as opspool_operator"
assert_eq "$who|done" "$(q "SELECT who || '|' || (data->>'status') FROM opspool.audit WHERE action = 'queue.cancel' ORDER BY id DESC LIMIT 1")" "the bulk cancel's audit row names the OS user"

# ---- forbidden: PostgreSQL ----
denied() { # denied ROLE SQL WHAT
    local out
    if out=$(sec_psql "$1" opspool -c "$2" 2>&1); then fail "$3: allowed ($out)"; fi
    grep -q "permission denied\|must be owner" <<<"$out" || fail "$3: $out"
    ok "$3: refused ($(echo "$out" | head -1 | cut -c1-60))"
}
denied opspool_worker "DELETE FROM opspool.jobs" "worker DELETE FROM opspool.jobs"
denied opspool_worker "UPDATE opspool.jobs SET payload = '{}'" "worker rewrites a job's payload"
denied opspool_worker "INSERT INTO opspool.jobs (id, kind, state) VALUES (gen_random_uuid(), 'noop', 'queued')" "worker inserts a job"
denied opspool_worker "SELECT * FROM opspool.schedules" "worker reads schedules"
denied opspool_worker "DELETE FROM opspool.job_events" "worker deletes events"
denied opspool_scheduler "TRUNCATE opspool.jobs" "scheduler TRUNCATE"
denied opspool_scheduler "DROP TABLE opspool.jobs" "scheduler DROP TABLE"
denied opspool_scheduler "CREATE TABLE opspool.evil (x int)" "scheduler CREATE TABLE in opspool"
denied opspool_scheduler "DELETE FROM opspool.job_attempts" "scheduler deletes attempts"
denied opspool_scheduler "INSERT INTO opspool.backups (job_id, attempt, created_at) VALUES (gen_random_uuid(), 1, now())" "scheduler writes typed results"
denied opspool_readonly "UPDATE opspool.jobs SET state = 'dead'" "readonly UPDATE"
denied opspool_readonly "INSERT INTO opspool.job_events (job_id, type) VALUES (gen_random_uuid(), 'x')" "readonly INSERT"
denied opspool_operator "DELETE FROM opspool.schema_migrations" "operator edits schema_migrations"
if sec_psql opspool_worker opspool -c "CREATE SCHEMA evil" >/dev/null 2>&1; then fail "worker created a schema"; fi
ok "worker cannot create a schema"

# ---- forbidden: Redis ----
noperm() { # noperm USER WHAT CMD...
    local u=$1 what=$2; shift 2
    local out; out=$(as_user "$u" "$@" 2>&1)
    grep -q NOPERM <<<"$out" || fail "$what: not refused ($out)"
    ok "$what: NOPERM"
}
noperm opspool-worker "worker FLUSHALL" FLUSHALL
noperm opspool-worker "worker KEYS" KEYS '*'
noperm opspool-worker "worker CONFIG GET" CONFIG GET '*'
noperm opspool-worker "worker EVAL (ad-hoc script)" EVAL "return 1" 0
noperm opspool-worker "worker SET a cron guard" SET "$P:cron:x:1" y
noperm opspool-worker "worker SCRIPT FLUSH" SCRIPT FLUSH
noperm opspool-worker "worker touches another prefix" LLEN "{other}:queue:noop"
noperm opspool-scheduler "scheduler FLUSHALL" FLUSHALL
noperm opspool-scheduler "scheduler ACL LIST" ACL LIST
noperm opspool-scheduler "scheduler BGSAVE" BGSAVE
noperm opspool-operator "operator FLUSHDB" FLUSHDB
noperm opspool-operator "operator SHUTDOWN" SHUTDOWN
noperm keda "keda reads a job hash" HGETALL "$P:job:$J1"
noperm keda "keda LPUSH" LPUSH "$P:queue:noop" x
assert_eq 0 "$(as_user keda EVAL "return redis.call('LLEN', KEYS[1])" 1 "$P:queue:noop")" "keda counts a queue with its scaler's EVAL"
# A script cannot launder a forbidden command: ACLs apply inside EVALSHA too.
sha=$(radmin SCRIPT LOAD "return redis.call('FLUSHALL')")
out=$(as_user opspool-worker EVALSHA "$sha" 0 2>&1)
grep -q "NOPERM\|can't run this command" <<<"$out" || fail "worker EVALSHA of a FLUSHALL script: $out"
ok "worker EVALSHA of a script calling FLUSHALL: refused inside the script"
assert_eq 1 "$(rq EXISTS "$P:workers")" "nothing was flushed"

# ---- the processes stayed healthy under their users ----
! grep -q NOPERM "$TMP/sched.log" || fail "scheduler hit NOPERM: $(grep NOPERM "$TMP/sched.log" | head -2)"
! grep -q NOPERM "$TMP"/w*.log || fail "a worker hit NOPERM: $(grep -h NOPERM "$TMP"/w*.log | head -2)"
! grep -qi "permission denied" "$TMP/sched.log" "$TMP"/w*.log || fail "permission denied in a program's log: $(grep -hi 'permission denied' "$TMP/sched.log" "$TMP"/w*.log | head -2)"
ok "no NOPERM / permission denied in the scheduler's or workers' logs"

kill -TERM "$W2" "$SCH"
wait_exit "$W2" 30; assert_eq 0 "$EXIT_RC" "worker exits cleanly"
wait_exit "$SCH" 30; assert_eq 0 "$EXIT_RC" "scheduler exits cleanly"
finish
