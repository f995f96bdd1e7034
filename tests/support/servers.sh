#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# servers.sh start|stop DIR — real redis-server and PostgreSQL for the test suite.
# Both listen only on unix sockets inside DIR (Redis also on a free loopback port for tools
# that need TCP). `start` writes DIR/env.sh with OSP_TEST_REDIS_URL, OSP_TEST_REDIS_SOCK,
# OSP_TEST_PG_HOST, OSP_TEST_PG_PORT. Exit 77 when the server binaries are missing.
# Externally supplied servers are reused: if OSP_TEST_REDIS_URL and OSP_TEST_PG_DSN are both
# set, start only records them.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?dir}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

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
    rm -rf "$dir/redis" "$dir/pg" && mkdir -p "$dir/redis" "$dir/pg"
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --unixsocket "$dir/redis/redis.sock" \
        --unixsocketperm 700 --dir "$dir/redis" --daemonize yes --pidfile "$dir/redis/redis.pid" \
        --logfile "$dir/redis/redis.log" --save '' --appendonly no \
        --maxmemory-policy noeviction >/dev/null
    runas=()
    if [ "$(id -u)" = 0 ]; then
        # initdb refuses to run as root: run PostgreSQL as an unprivileged system user.
        id osptest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin osptest
        chown -R osptest "$dir/pg"
        chmod 755 "$dir"
        runas=(runuser -u osptest --)
    fi
    "${runas[@]}" "$PGBIN/initdb" -D "$dir/pg/data" -U postgres -A trust --no-sync -E UTF8 \
        --locale=C.UTF-8 >"$dir/pg/initdb.log" 2>&1 || { cat "$dir/pg/initdb.log" >&2; exit 1; }
    pport=$(free_port)
    "${runas[@]}" "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/pg.log" -w -t 60 start \
        -o "-c listen_addresses='' -c unix_socket_directories=$dir/pg -p $pport -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null
    wait_for 30 redis-cli -s "$dir/redis/redis.sock" ping
    wait_for 30 "$PGBIN/pg_isready" -h "$dir/pg" -p "$pport"
    chmod 777 "$dir/pg" # the socket directory: tests run as any user
    cat >"$dir/env.sh" <<ENV
export OSP_TEST_REDIS_URL=unix://$dir/redis/redis.sock
export OSP_TEST_REDIS_TCP=redis://127.0.0.1:$rport
export OSP_TEST_PG_DSN="host=$dir/pg port=$pport user=postgres dbname=postgres"
export OSP_TEST_PG_HOST=$dir/pg
export OSP_TEST_PG_PORT=$pport
ENV
    ;;
stop)
    if [ -f "$dir/redis/redis.pid" ]; then
        kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
    fi
    if [ -f "$dir/pg/data/postmaster.pid" ]; then
        runas=()
        [ "$(id -u)" = 0 ] && runas=(runuser -u osptest --)
        "${runas[@]}" "$PGBIN/pg_ctl" -D "$dir/pg/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
