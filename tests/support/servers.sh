#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# servers.sh start|stop DIR — real redis-server and PostgreSQL for the test suite.
# Both listen only on unix sockets inside DIR (Redis also on a free loopback port for tools
# that need TCP). `start` writes DIR/env.sh with OSP_TEST_REDIS_URL, OSP_TEST_REDIS_SOCK,
# OSP_TEST_PG_HOST, OSP_TEST_PG_PORT. Exit 77 when the server binaries are missing.
# Externally supplied servers are reused: if OSP_TEST_REDIS_URL and OSP_TEST_PG_DSN are both
# set, start only records them.
#
# `start DIR --durable` keeps PostgreSQL's defaults (fsync, synchronous_commit and
# full_page_writes on): what the lab runs on, so that a crash loses no commit it answered.
# Without it the test suite's PostgreSQL trades durability for speed (fsync=off,
# synchronous_commit=off): tests start and stop their own servers and never outlive them.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?dir}
durable=false
[ "${3:-}" = --durable ] && durable=true
pg_speed="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
[ "$durable" = true ] && pg_speed=""
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

# shellcheck source=tests/support/ports.sh
. "$(dirname "$0")/ports.sh"

wait_for() { # wait_for SECONDS CMD...
    local t=$1; shift
    local end=$((SECONDS + t))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $end ]; then return 1; fi
        sleep 0.05
    done
}

case "$cmd" in
start)
    mkdir -p "$dir"
    if [ -n "${OSP_TEST_REDIS_URL:-}" ] && [ -n "${OSP_TEST_PG_DSN:-}" ]; then
        printf 'export OSP_TEST_REDIS_URL=%q\nexport OSP_TEST_PG_DSN=%q\n' \
            "$OSP_TEST_REDIS_URL" "$OSP_TEST_PG_DSN" >"$dir/env.sh"
        exit 0
    fi
    command -v redis-server >/dev/null || { echo "redis-server missing" >&2; exit 77; }
    [ -x "$PGBIN/initdb" ] || { echo "postgresql binaries missing in $PGBIN" >&2; exit 77; }
    "$0" stop "$dir" >/dev/null 2>&1 || true
    rm -rf "$dir/redis" "$dir/pg" && mkdir -p "$dir/redis"
    # Redis cannot report a port it picked: a free port below the ephemeral range, and
    # another one should somebody take it first (the start then fails to bind).
    for _ in 1 2 3 4 5; do
        rport=$(free_port)
        redis-server --port "$rport" --bind 127.0.0.1 --unixsocket "$dir/redis/redis.sock" \
            --unixsocketperm 700 --dir "$dir/redis" --daemonize yes \
            --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log" --save '' \
            --appendonly no --maxmemory-policy noeviction >/dev/null
        wait_for 10 redis-cli -s "$dir/redis/redis.sock" ping && break
        grep -q 'Address already in use' "$dir/redis/redis.log" 2>/dev/null ||
            { tail -5 "$dir/redis/redis.log" >&2; exit 1; }
    done
    pgdir=$dir/pg
    runas=()
    if [ "$(id -u)" = 0 ]; then
        # initdb refuses to run as root: run PostgreSQL as an unprivileged system user, in a
        # directory of its own (DIR's parents may not be traversable by that user).
        id osptest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin osptest
        pgdir=$(mktemp -d /tmp/osp-pg.XXXXXX)
        chown osptest "$pgdir"
        chmod 755 "$pgdir"
        runas=(runuser -u osptest --)
    fi
    echo "$pgdir" >"$dir/pgdir"
    "${runas[@]}" "$PGBIN/initdb" -D "$pgdir/data" -U postgres -A trust --no-sync -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    pport=$(free_port)
    "${runas[@]}" "$PGBIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/pg.log" -w -t 60 start \
        -o "-c listen_addresses='' -c unix_socket_directories=$pgdir -p $pport $pg_speed \
            -c max_connections=200" >/dev/null
    wait_for 30 redis-cli -s "$dir/redis/redis.sock" ping
    wait_for 30 "$PGBIN/pg_isready" -h "$pgdir" -p "$pport"
    cat >"$dir/env.sh" <<ENV
export OSP_TEST_REDIS_URL=unix://$dir/redis/redis.sock
export OSP_TEST_REDIS_TCP=redis://127.0.0.1:$rport
export OSP_TEST_PG_DSN="host=$pgdir port=$pport user=postgres dbname=postgres"
export OSP_TEST_PG_HOST=$pgdir
export OSP_TEST_PG_PORT=$pport
ENV
    ;;
stop)
    if [ -f "$dir/redis/redis.pid" ]; then
        kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
    fi
    pgdir=$(cat "$dir/pgdir" 2>/dev/null || echo "$dir/pg")
    if [ -f "$pgdir/data/postmaster.pid" ]; then
        runas=()
        [ "$(id -u)" = 0 ] && runas=(runuser -u osptest --)
        "${runas[@]}" "$PGBIN/pg_ctl" -D "$pgdir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    case "$pgdir" in /tmp/osp-pg.*) rm -rf "$pgdir" ;; esac
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
