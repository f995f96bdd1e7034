#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# chaos_lib.sh — shared by the chaos tests (sourced; not a test itself: CMake registers only
# test_*.sh). Adds to tests/support/lib.sh:
#   - a steady submitter (osp-chaos-load) that records every id the ledger accepted;
#   - private servers for faults that must not touch the suite's shared ones: redis-server on
#     a unix socket in $TMP (optionally with AOF), PostgreSQL initdb'd into its own directory
#     (listening on 127.0.0.1 so a proxy can sit in front of it), the TCP proxy
#     (tests/support/chaosproxy.py) and schedulers; all stopped on exit;
#   - the checker: every submitted id against the ledger (submitted = succeeded + dead +
#     cancelled, none missing, none unfinished), executions counted from an execution log,
#     duplicates bounded by the interrupted attempts the test counted; one machine-readable
#     line per test:
#       CHAOS fault=<name> runs=1 jobs=N lost=L duplicates=D interrupted=I recovery_ms=R dup_source=S
#     which tests/chaos/report.sh turns into the table of docs/reliability.md.
#
# Execution log: jobs are noop jobs that sleep (so they run in a forked child, like real
# kinds). When the noop kind accepts {"mark_dir": ...} (the change proposed with this suite:
# each execution that reaches its end appends "<id> <attempt>" to <mark_dir>/executions.log,
# allowed only beneath the worker's OSP_TEST_MARK_DIR), executions are counted from that file
# (dup_source=mark). Otherwise only what the ledger shows can be counted: attempt rows beyond
# one per job (dup_source=ledger) — a lower bound, since a repeated attempt with the same
# number leaves one row (rows are idempotent on (job, attempt)).
. "$OSP_SRC_DIR/tests/support/lib.sh"

LOAD=$BIN/osp-chaos-load
SCHED=$BIN/opspool-scheduler
PROXY=$SRC/tests/support/chaosproxy.py
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
CHAOS_SEED=${OSP_CHAOS_SEED:-42}
RANDOM=$CHAOS_SEED
CLEANUPS=()
INTERRUPTED=0
export OSP_TEST_MARK_DIR=$TMP/marks
mkdir -p "$OSP_TEST_MARK_DIR"

[ -x "$LOAD" ] || { echo "osp-chaos-load not built in $BIN" >&2; exit 77; }

chaos_cleanup() {
    local rc=$?
    cleanup_pids
    if [ -n "${OSP_CHAOS_KEEP:-}" ]; then # keep logs and the execution log for a post-mortem
        mkdir -p "$OSP_CHAOS_KEEP" && cp -r "$TMP" "$OSP_CHAOS_KEEP/" 2>/dev/null || true
        [ "${DUP_SOURCE:-}" = mark ] && q "SELECT id, state, attempt, recoveries, worker FROM opspool.jobs" >"$OSP_CHAOS_KEEP/jobs.txt" 2>/dev/null || true
        q "SELECT job_id, attempt, type, ts, data FROM opspool.job_events ORDER BY id" >"$OSP_CHAOS_KEEP/events.txt" 2>/dev/null || true
    fi
    local i
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUPS[$i]}" >/dev/null 2>&1 || true
    done
    return $rc
}
trap chaos_cleanup EXIT

now_ms() { date +%s%3N; }


# ---- load ----

# Does the noop kind keep an execution log ({"mark_dir": ...})? Probed once with the kind's
# own validator, through opspoolctl pointed at stores that do not exist: a valid payload
# fails on the connection (nothing is submitted), "invalid noop payload" means the kind
# rejected the field.
probe_out=$(env OSP_PG_DSN='host=/nonexistent-osp port=1 dbname=x' OSP_REDIS_URL='unix:///nonexistent-osp.sock' \
    "$CTL" submit noop --payload "{\"sleep_ms\": 1, \"mark_dir\": \"$OSP_TEST_MARK_DIR\"}" 2>&1 || true)
case "$probe_out" in
*"invalid noop payload"*) DUP_SOURCE=ledger ;;
*) DUP_SOURCE=mark ;;
esac

# chaos_payload [SLEEP_MS] — the job payload: a forked noop that sleeps, with the execution
# mark when the kind supports it.
chaos_payload() {
    if [ "$DUP_SOURCE" = mark ]; then
        printf '{"sleep_ms": %d, "mark_dir": "%s"}' "${1:-20}" "$OSP_TEST_MARK_DIR"
    else
        printf '{"sleep_ms": %d}' "${1:-20}"
    fi
}

# start_load COUNT RATE [SLEEP_MS] — background submitter; sets LOAD_PID. Ids go to $TMP/ids.
# LOAD_ENV (array of VAR=VALUE) is added to its environment (e.g. a proxied store address).
LOAD_ENV=()
start_load() {
    local payload
    payload=$(chaos_payload "${3:-20}")
    say "load: $1 jobs at $2/s, payload $payload (executions counted from: $DUP_SOURCE)"
    env "${LOAD_ENV[@]}" "$LOAD" --count "$1" --rate "$2" --batch 20 --ids "$TMP/ids" --payload "$payload" \
        --max-attempts 5 --deadline-s 600 >>"$TMP/load.log" 2>&1 &
    LOAD_PID=$!
    PIDS+=("$LOAD_PID")
}

# wait_load SECONDS — the submitter finished and accepted every job.
wait_load() {
    wait_exit "$LOAD_PID" "$1"
    [ "$EXIT_RC" = 0 ] || fail "submitter did not finish (rc $EXIT_RC): $(tail -3 "$TMP/load.log")"
}

submitted() { [ -f "$TMP/ids" ] && wc -l <"$TMP/ids" | tr -d ' ' || echo 0; }
finished() { q "SELECT count(*) FROM opspool.jobs WHERE state IN ('succeeded', 'failed', 'dead', 'cancelled')"; }
unfinished() { q "SELECT count(*) FROM opspool.jobs WHERE state NOT IN ('succeeded', 'failed', 'dead', 'cancelled')"; }

# wait_progress FROM_MS — block until the ledger's finished count moves past its value now;
# prints the milliseconds from FROM_MS until then (the pool's recovery time for this fault).
wait_progress() {
    local from=$1 base end
    base=$(finished 2>/dev/null || echo 0)
    end=$(( $(now_ms) + 120000 ))
    while :; do
        local f
        f=$(finished 2>/dev/null || echo "$base")
        [ "$f" -gt "$base" ] && break
        [ "$(now_ms)" -lt "$end" ] || { echo -1; return 0; }
        sleep 0.05
    done
    echo $(( $(now_ms) - from ))
}

# ---- private servers ----

# start_redis NAME aof|none — a private redis-server on $TMP/NAME/redis.sock (no TCP).
# Restarting with the same NAME reuses its directory (and so its AOF). Sets REDIS_PID.
start_redis() {
    local name=$1 persist=$2 dir=$TMP/$1
    mkdir -p "$dir"
    local p=(--save '' --appendonly no)
    [ "$persist" = aof ] && p=(--save '' --appendonly yes --appendfsync everysec)
    redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --dir "$dir" \
        --logfile "$dir/redis.log" --maxmemory-policy noeviction "${p[@]}" &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    wait_eq 30 PONG redis-cli -s "$dir/redis.sock" ping || fail "private redis $name did not start (or load)"
    REDIS_SOCK=$dir/redis.sock
}

# start_pg — a private PostgreSQL 15 (initdb as the unprivileged osptest user when root, in
# a /tmp directory of its own as tests/support/servers.sh does), on 127.0.0.1:PG_PORT and a
# unix socket in PG_DIR. synchronous_commit stays on: a commit the worker saw must survive a
# crash of the server (fsync is off: the machine itself does not crash in these tests).
# PG_EXTRA_OPTS (server -c options) is added to every start. Sets PG_DIR, PG_PORT, PG_RUNAS
# and exports nothing.
start_pg() {
    [ -x "$PGBIN/initdb" ] || { echo "postgresql binaries missing in $PGBIN" >&2; exit 77; }
    PG_RUNAS=()
    if [ "$(id -u)" = 0 ]; then
        id osptest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin osptest
        PG_DIR=$(mktemp -d /tmp/osp-chaos-pg.XXXXXX)
        chown osptest "$PG_DIR"
        chmod 755 "$PG_DIR"
        PG_RUNAS=(runuser -u osptest --)
    else
        PG_DIR=$TMP/pg
        mkdir -p "$PG_DIR"
    fi
    CLEANUPS+=("stop_pg; rm -rf '$PG_DIR'")
    "${PG_RUNAS[@]}" "$PGBIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync -E UTF8 \
        --locale=C.UTF-8 >"$TMP/initdb.log" 2>&1 || fail "initdb: $(tail -5 "$TMP/initdb.log")"
    PG_PORT=$(free_port)
    pg_start
    psql "host=$PG_DIR port=$PG_PORT user=postgres dbname=postgres" -qAtc "CREATE DATABASE chaos" >/dev/null
}
pg_start() {
    "${PG_RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/pg.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_DIR -p $PG_PORT \
            -c fsync=off -c full_page_writes=off -c max_connections=100 ${PG_EXTRA_OPTS:-}" >/dev/null \
        || fail "private postgresql did not start: $(tail -5 "$PG_DIR/pg.log")"
}
# pg_crash — stop PostgreSQL the hard way (immediate: no shutdown checkpoint, crash recovery
# at the next start).
pg_crash() { "${PG_RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 stop >/dev/null; }
stop_pg() {
    [ -n "${PG_DIR:-}" ] && [ -f "$PG_DIR/data/postmaster.pid" ] && pg_crash || true
}
pg_dsn_unix() { echo "host=$PG_DIR port=$PG_PORT user=postgres dbname=chaos"; }

# start_standby — a streaming standby of the private PostgreSQL (start_pg first): a base backup
# (pg_basebackup -R writes primary_conninfo and standby.signal), started on its own port and
# socket directory. Sets SB_DIR, SB_PORT; sbq SQL runs a query on it; stopped on exit.
start_standby() {
    if [ "$(id -u)" = 0 ]; then
        SB_DIR=$(mktemp -d /tmp/osp-chaos-sb.XXXXXX)
        chown osptest "$SB_DIR"
        chmod 755 "$SB_DIR"
    else
        SB_DIR=$TMP/sb
        mkdir -p "$SB_DIR"
    fi
    SB_PORT=$(free_port)
    CLEANUPS+=("sb_stop; rm -rf '$SB_DIR'")
    "${PG_RUNAS[@]}" "$PGBIN/pg_basebackup" -h "$PG_DIR" -p "$PG_PORT" -U postgres -D "$SB_DIR/data" \
        -R -X stream -c fast >"$TMP/basebackup.log" 2>&1 || fail "pg_basebackup: $(tail -3 "$TMP/basebackup.log")"
    "${PG_RUNAS[@]}" "$PGBIN/pg_ctl" -D "$SB_DIR/data" -l "$SB_DIR/pg.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -c unix_socket_directories=$SB_DIR -p $SB_PORT \
            -c fsync=off -c full_page_writes=off -c max_connections=100" >/dev/null \
        || fail "standby did not start: $(tail -5 "$SB_DIR/pg.log")"
}
sb_stop() { [ -f "$SB_DIR/data/postmaster.pid" ] && "${PG_RUNAS[@]}" "$PGBIN/pg_ctl" -D "$SB_DIR/data" -m immediate -w -t 30 stop; }
sbq() { psql "host=$SB_DIR port=$SB_PORT user=postgres dbname=chaos" -qAtX -c "$1"; }

# ---- Redis under Sentinel ----

# start_redis_tcp NAME PORT [ARGS...] — a private redis-server on 127.0.0.1:PORT (no
# persistence), directory $TMP/NAME; sets LAST_PID.
start_redis_tcp() {
    local name=$1 port=$2 dir=$TMP/$1; shift 2
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --logfile "$dir/redis.log" \
        --save '' --appendonly no --maxmemory-policy noeviction "$@" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    wait_eq 30 PONG redis-cli -p "$port" ping || fail "redis $name did not start on $port"
}

# sentinel_bin — redis-sentinel (Debian's package) when installed, else redis-server in
# sentinel mode (the same program).
sentinel_cmd() {
    if command -v redis-sentinel >/dev/null; then echo redis-sentinel; else echo "redis-server --sentinel"; fi
}

# start_redis_ha [proxy] [auth] — a private Redis master, one replica and three sentinels, all
# on 127.0.0.1, the sentinels monitoring the master as "opspool" (quorum 2, down after 1 s).
# With "proxy", everyone (replica, sentinels, clients told by the sentinels) reaches the master
# only through chaosproxy.py, so blackholing it cuts the master off the network while the test
# itself still reaches it on its own port. With "auth" (or OSP_CHAOS_SENTINEL_PASS=1), the
# sentinels require a password (requirepass in sentinel.conf; they use it with each other
# too): a random secret in SENT_PASS_FILE (mode 0600), exported as
# OSP_REDIS_SENTINEL_PASSWORD_FILE so every pool process started afterwards authenticates;
# the test's own calls to the sentinels go through scli. Sets RM_PID, RM_PORT (the master's
# own port), RM_ADDR_PORT (the port everyone knows it by), RR_PID, RR_PORT, SENT_PORTS
# (array), SENT_PASS_FILE ("" without auth) and exports OSP_REDIS_SENTINELS and
# OSP_REDIS_SENTINEL_MASTER.
SENT_AUTH=()
SENT_PASS_FILE=
start_redis_ha() {
    local via="" auth=${OSP_CHAOS_SENTINEL_PASS:-} a
    for a in "$@"; do
        case "$a" in
        proxy) via=proxy ;;
        auth) auth=1 ;;
        *) fail "start_redis_ha: unknown option $a" ;;
        esac
    done
    RM_PORT=$(free_port)
    start_redis_tcp rmaster "$RM_PORT"
    RM_PID=$LAST_PID
    RM_ADDR_PORT=$RM_PORT
    if [ "$via" = proxy ]; then
        start_proxy mproxy "127.0.0.1:$RM_PORT"
        RM_ADDR_PORT=$PROXY_PORT
    fi
    RR_PORT=$(free_port)
    start_redis_tcp rreplica "$RR_PORT" --replicaof 127.0.0.1 "$RM_ADDR_PORT"
    RR_PID=$LAST_PID
    wait_until 30 replica_synced "$RR_PORT" || fail "the replica does not sync"
    SENT_PORTS=()
    local i list="" sp dir cmd secret=""
    cmd=$(sentinel_cmd)
    if [ -n "$auth" ] && [ "$auth" != 0 ]; then
        secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
        SENT_PASS_FILE=$TMP/sentinel.pass
        (umask 077 && printf '%s' "$secret" >"$SENT_PASS_FILE")
        SENT_AUTH=(--no-auth-warning -a "$secret")
    fi
    for i in 1 2 3; do
        sp=$(free_port)
        dir=$TMP/sentinel$i
        mkdir -p "$dir"
        cat >"$dir/sentinel.conf" <<CONF
port $sp
bind 127.0.0.1
dir $dir
logfile $dir/sentinel.log
sentinel monitor opspool 127.0.0.1 $RM_ADDR_PORT 2
sentinel down-after-milliseconds opspool 1000
sentinel failover-timeout opspool 5000
sentinel parallel-syncs opspool 1
CONF
        [ -n "$secret" ] && echo "requirepass $secret" >>"$dir/sentinel.conf"
        $cmd "$dir/sentinel.conf" &
        PIDS+=("$!")
        SENT_PORTS+=("$sp")
        list="$list${list:+,}127.0.0.1:$sp"
    done
    for sp in "${SENT_PORTS[@]}"; do
        # Each sentinel found the replica and the two other sentinels: a failover can be voted.
        wait_until 60 sentinel_ready "$sp" \
            || fail "sentinel $sp is not ready: $(scli "$sp" SENTINEL ckquorum opspool)"
    done
    export OSP_REDIS_SENTINELS=$list OSP_REDIS_SENTINEL_MASTER=opspool
    if [ -n "$secret" ]; then
        # The password is really required: without it, a sentinel refuses.
        [[ $(redis-cli -p "${SENT_PORTS[0]}" SENTINEL ckquorum opspool 2>&1) == NOAUTH* ]] \
            || fail "sentinel ${SENT_PORTS[0]} answers without the password"
        export OSP_REDIS_SENTINEL_PASSWORD_FILE=$SENT_PASS_FILE
    fi
    say "redis master :$RM_PORT (known as :$RM_ADDR_PORT), replica :$RR_PORT, sentinels $list${secret:+ (password-protected)}"
}
# scli PORT ARGS... — redis-cli to a sentinel (with its password when start_redis_ha set one).
scli() { local port=$1; shift; redis-cli "${SENT_AUTH[@]}" -p "$port" "$@"; }

replica_synced() { [[ $(redis-cli -p "$1" INFO replication) == *master_link_status:up* ]]; }
# sentinel_ready PORT — that sentinel sees the other two (a failover can be voted) and the
# replica (it has someone to promote).
sentinel_ready() {
    [[ $(scli "$1" SENTINEL ckquorum opspool 2>&1) == OK* ]] &&
        [[ $'\n'$(scli "$1" SENTINEL replicas opspool)$'\n' == *$'\n'"127.0.0.1:$RR_PORT"$'\n'* ]]
}

# sentinel_master_port — the master's port as the first sentinel that answers names it.
sentinel_master_port() {
    local sp a
    for sp in "${SENT_PORTS[@]}"; do
        a=$(scli "$sp" SENTINEL get-master-addr-by-name opspool 2>/dev/null | sed -n 2p)
        [ -n "$a" ] && { echo "$a"; return 0; }
    done
    return 1
}

# start_proxy NAME TARGET — chaosproxy.py on a free loopback port; sets PROXY_PORT, PROXY_CTL.
start_proxy() {
    local name=$1 target=$2
    rm -f "$TMP/$name.port"
    python3 "$PROXY" serve --listen 127.0.0.1:0 --target "$target" --control "$TMP/$name.ctl" \
        --port-file "$TMP/$name.port" >>"$TMP/$name.log" 2>&1 &
    PIDS+=("$!")
    wait_until 20 test -s "$TMP/$name.port" || fail "proxy $name did not start"
    wait_until 20 test -S "$TMP/$name.ctl" || fail "proxy $name control socket missing"
    PROXY_PORT=$(cat "$TMP/$name.port")
    PROXY_CTL=$TMP/$name.ctl
}
proxy() { python3 "$PROXY" ctl "$1" "$2"; }

# start_sched NAME [ENV=VAL...] — opspool-scheduler on a free port (API open: tests only);
# sets LAST_PID and LAST_URL once /healthz answers.
start_sched() {
    local name=$1; shift
    local port pf=$TMP/$name.$RANDOM.port
    env OSP_HTTP_ADDR=127.0.0.1:0 OSP_HTTP_PORT_FILE="$pf" OSP_API_INSECURE=1 "$@" "$SCHED" \
        >>"$TMP/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    port=$(port_from_file "$pf" 40) || fail "scheduler $name did not bind its port"
    LAST_URL="http://127.0.0.1:$port"
    wait_until 40 curl -sf "$LAST_URL/healthz" || fail "scheduler $name did not start"
}

# ---- recovery of a stopped worker's jobs ----

# note_victim WORKER_ID T_MS — remember the jobs the ledger shows running on WORKER_ID (call
# right after stopping it at T_MS).
note_victim() {
    q "SELECT id FROM opspool.jobs WHERE worker = '$1' AND state = 'running'" | sed "s/\$/ $2/" >>"$TMP/victims"
}
# victims_recovery_ms — worst, over the noted stops, of (finish of the last job the victim was
# running) - (the stop). Call once every job finished.
victims_recovery_ms() {
    [ -s "$TMP/victims" ] || { echo 0; return; }
    q "CREATE TABLE IF NOT EXISTS public.chaos_victims (id uuid, stop_ms bigint)" >/dev/null
    psql "$OSP_PG_DSN" -qAtX -c "\\copy public.chaos_victims FROM '$TMP/victims' WITH (DELIMITER ' ')" >/dev/null
    q "SELECT coalesce(max(r), 0) FROM (SELECT max(floor(extract(epoch FROM j.finished_at) * 1000)::bigint) - v.stop_ms AS r
       FROM public.chaos_victims v JOIN opspool.jobs j USING (id) GROUP BY v.stop_ms) x"
}

# reaped_count — envelopes the reapers (workers' and schedulers') handed back, from their logs.
reaped_count() {
    { cat "$TMP"/*.log 2>/dev/null || true; } | awk '
        match($0, /"msg":"reaper: (recovered )?[0-9]+/) {
            m = substr($0, RSTART, RLENGTH); sub(/.* /, "", m); sub(/.*:/, "", m); s += m
        }
        END { print s + 0 }'
}

# ---- the checker ----

# chaos_check FAULT RECOVERY_MS [WAIT_S] — wait until every job is finished (bounded), then
# reconcile every submitted id against the ledger, count executions, print the CHAOS line and
# assert lost = 0 and duplicates <= INTERRUPTED.
chaos_check() {
    local fault=$1 recovery=$2 wait_s=${3:-180}
    local n
    n=$(submitted)
    # One bounded wait in all (tests that already waited for the pool to finish pass less).
    wait_ge "$wait_s" "$n" finished || true
    wait_eq 10 0 unfinished || true
    q "DROP TABLE IF EXISTS public.chaos_submitted, public.chaos_exec" >/dev/null 2>&1
    q "CREATE TABLE public.chaos_submitted (id uuid)" >/dev/null
    q "CREATE TABLE public.chaos_exec (id uuid, attempt int)" >/dev/null
    psql "$OSP_PG_DSN" -qAtX -v ON_ERROR_STOP=1 -c "\\copy public.chaos_submitted FROM '$TMP/ids'" >/dev/null
    local ndistinct succeeded dead cancelled missing unfin extra extra_unfin
    ndistinct=$(q "SELECT count(DISTINCT id) FROM public.chaos_submitted")
    [ "$ndistinct" = "$n" ] || fail "the submitter recorded an id twice ($n lines, $ndistinct ids)"
    read -r succeeded dead cancelled missing unfin < <(q "
        SELECT count(*) FILTER (WHERE j.state = 'succeeded'), count(*) FILTER (WHERE j.state = 'dead'),
               count(*) FILTER (WHERE j.state = 'cancelled'), count(*) FILTER (WHERE j.id IS NULL),
               count(*) FILTER (WHERE j.state NOT IN ('succeeded', 'failed', 'dead', 'cancelled'))
        FROM public.chaos_submitted s LEFT JOIN opspool.jobs j USING (id)" | tr '|' ' ')
    read -r extra extra_unfin < <(q "
        SELECT count(*), count(*) FILTER (WHERE state NOT IN ('succeeded', 'failed', 'dead', 'cancelled'))
        FROM opspool.jobs j WHERE NOT EXISTS (SELECT 1 FROM public.chaos_submitted s WHERE s.id = j.id)" | tr '|' ' ')
    local lost=$((missing + unfin + extra_unfin + ${CHECK_EXTRA_LOST:-0}))
    local execs dups
    if [ "${DUP_SOURCE:-ledger}" = mark ]; then
        local log=$OSP_TEST_MARK_DIR/executions.log
        touch "$log"
        psql "$OSP_PG_DSN" -qAtX -v ON_ERROR_STOP=1 -c "\\copy public.chaos_exec FROM '$log' WITH (DELIMITER ' ')" >/dev/null
        execs=$(q "SELECT count(*) FROM public.chaos_exec")
        dups=$(q "SELECT coalesce(sum(c - 1), 0) FROM (SELECT count(*) AS c FROM public.chaos_exec GROUP BY id) x")
        local never
        never=$(q "SELECT count(*) FROM public.chaos_submitted s JOIN opspool.jobs j USING (id)
                   WHERE j.state = 'succeeded' AND NOT EXISTS (SELECT 1 FROM public.chaos_exec e WHERE e.id = s.id)")
        [ "$never" = 0 ] || fail "$never jobs succeeded in the ledger without an execution in the log"
    else
        execs=$(q "SELECT count(*) FROM opspool.job_attempts")
        dups=$(q "SELECT coalesce(sum(c - 1), 0) FROM (SELECT count(*) AS c FROM opspool.job_attempts GROUP BY job_id) x")
    fi
    say "checker: submitted $n = succeeded $succeeded + dead $dead + cancelled $cancelled; missing $missing, unfinished $unfin; ledger jobs the submitter never heard of: $extra ($extra_unfin unfinished)"
    dups=$((dups + ${CHECK_EXTRA_DUPS:-0}))
    say "checker: $execs executions, $dups duplicate(s), $INTERRUPTED interrupted attempt(s)"
    printf 'CHAOS fault=%s runs=1 jobs=%s lost=%s duplicates=%s interrupted=%s recovery_ms=%s dup_source=%s\n' \
        "$fault" "$n" "$lost" "$dups" "$INTERRUPTED" "$recovery" "${DUP_SOURCE:-ledger}" | tee -a "${OSP_CHAOS_OUT:-/dev/null}"
    [ "$missing" = 0 ] || fail "$missing submitted jobs are missing from the ledger"
    [ "${CHECK_EXTRA_LOST:-0}" = 0 ] || fail "${CHECK_EXTRA_LOST} lost (${CHECK_EXTRA_WHAT:-extra})"
    [ "$unfin" = 0 ] || fail "$unfin submitted jobs never finished: $(q "SELECT state, count(*) FROM opspool.jobs GROUP BY 1")"
    [ "$extra_unfin" = 0 ] || fail "$extra_unfin unacknowledged ledger jobs never finished"
    assert_eq "$n" "$((succeeded + dead + cancelled))" "submitted = succeeded + dead + cancelled"
    assert_eq 0 "$dead" "no job dead-lettered"
    [ "$dups" -le "$INTERRUPTED" ] || fail "$dups duplicate executions exceed the $INTERRUPTED interrupted attempts"
    ok "duplicates ($dups) bounded by interrupted attempts ($INTERRUPTED)"
}

# chaos_redis_clean — nothing left behind in Redis: queue, delayed, processing lists.
chaos_redis_clean() {
    wait_eq 30 0 rcli LLEN "$P:queue:noop" || fail "queue not empty: $WAIT_GOT"
    wait_eq 30 0 rcli ZCARD "$P:inflight:noop" || fail "inflight not empty: $WAIT_GOT"
    local k left=0
    for k in $(rcli --scan --pattern "$P:processing:*"); do
        left=$((left + $(rcli LLEN "$k")))
    done
    assert_eq 0 "$left" "no envelope left in any processing list"
}
