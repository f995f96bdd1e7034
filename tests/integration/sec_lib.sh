#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# sec_lib.sh — private servers for the security tests (sourced after tests/support/lib.sh):
# a PostgreSQL cluster and a redis-server of their own, so roles, ACL users and TLS settings
# never touch the suite's shared servers. Everything is started under $TMP (PostgreSQL in a
# /tmp directory owned by the unprivileged user, as tests/support/servers.sh does) and
# stopped by sec_stop (installed as the EXIT trap together with cleanup_pids).
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
SEC_PGDIR=
SEC_REDIS_PID=
RUNAS=()

sec_stop() {
    cleanup_pids
    if [ -n "$SEC_REDIS_PID" ]; then kill "$SEC_REDIS_PID" 2>/dev/null || true; fi
    if [ -n "$SEC_PGDIR" ] && [ -f "$SEC_PGDIR/data/postmaster.pid" ]; then
        "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$SEC_PGDIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    case "$SEC_PGDIR" in /tmp/osp-secpg.*) rm -rf "$SEC_PGDIR" ;; esac
}
trap sec_stop EXIT


# sec_pg_init — initdb a private cluster (superuser "postgres", no start). Sets SEC_PGDIR,
# SEC_PGPORT; config lines may be appended to $SEC_PGDIR/data/postgresql.conf, pg_hba.conf
# rewritten, files put in $SEC_PGDIR before sec_pg_start.
sec_pg_init() {
    [ -x "$PGBIN/initdb" ] || { echo "SKIP: postgresql binaries missing in $PGBIN"; exit 77; }
    SEC_PGDIR=$(mktemp -d /tmp/osp-secpg.XXXXXX)
    chmod 755 "$SEC_PGDIR"
    if [ "$(id -u)" = 0 ]; then
        id osptest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin osptest
        chown osptest "$SEC_PGDIR"
        RUNAS=(runuser -u osptest --)
    fi
    "${RUNAS[@]}" "$PGBIN/initdb" -D "$SEC_PGDIR/data" -U postgres -A trust --no-sync -E UTF8 \
        --locale=C.UTF-8 >"$TMP/initdb.out" 2>&1 || fail "initdb failed: $(tail -5 "$TMP/initdb.out")"
    SEC_PGPORT=$(free_port)
    cat >>"$SEC_PGDIR/data/postgresql.conf" <<EOF
port = $SEC_PGPORT
unix_socket_directories = '$SEC_PGDIR'
listen_addresses = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 60
EOF
}

# sec_pg_start — start the cluster initialised by sec_pg_init and wait until it answers.
sec_pg_start() {
    "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$SEC_PGDIR/data" -l "$SEC_PGDIR/pg.log" -w -t 60 start \
        >/dev/null || fail "private PostgreSQL did not start: $(tail -5 "$SEC_PGDIR/pg.log")"
    wait_until 30 "$PGBIN/pg_isready" -h "$SEC_PGDIR" -p "$SEC_PGPORT" || fail "private PostgreSQL not ready"
}

# sec_psql USER DB SQL... — psql over the private cluster's unix socket.
sec_psql() {
    local u=$1 d=$2; shift 2
    psql "host=$SEC_PGDIR port=$SEC_PGPORT user=$u dbname=$d" -qAtX -v ON_ERROR_STOP=1 "$@"
}

# sec_redis_start [ARGS...] — a private redis-server on a unix socket in $TMP (no TCP port).
# Sets SEC_REDIS_SOCK and SEC_REDIS_PID.
sec_redis_start() {
    command -v redis-server >/dev/null || { echo "SKIP: redis-server missing"; exit 77; }
    mkdir -p "$TMP/redis"
    SEC_REDIS_SOCK=$TMP/redis/redis.sock
    redis-server --port 0 --unixsocket "$SEC_REDIS_SOCK" --unixsocketperm 700 --dir "$TMP/redis" \
        --daemonize yes --pidfile "$TMP/redis/redis.pid" --logfile "$TMP/redis/redis.log" \
        --save '' --appendonly no "$@" >/dev/null || fail "private redis-server did not start"
    wait_until 20 test -s "$TMP/redis/redis.pid" || fail "private redis-server wrote no pid"
    SEC_REDIS_PID=$(cat "$TMP/redis/redis.pid")
}
