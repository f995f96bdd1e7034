#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# postgres-entrypoint.sh — entrypoint of the TEST STAND-IN for the official postgres image
# (Dockerfile.postgres; used only where Docker Hub is unreachable). It follows the official
# docker-entrypoint.sh for what docker-compose.yml and deploy/docker/postgres-init.sh use:
# POSTGRES_USER / POSTGRES_PASSWORD(_FILE) / POSTGRES_DB, initdb and
# /docker-entrypoint-initdb.d/* once on an empty data directory with a socket-only temporary
# server, then the server itself in the foreground.
set -Eeuo pipefail

# file_env VAR [DEFAULT] — VAR from VAR or from the file named by VAR_FILE (not both).
file_env() {
    local var=$1 fvar="${1}_FILE" def=${2:-} val
    if [ -n "${!var:-}" ] && [ -n "${!fvar:-}" ]; then
        echo "error: both $var and $fvar are set (but are exclusive)" >&2
        exit 1
    fi
    val=$def
    if [ -n "${!var:-}" ]; then
        val=${!var}
    elif [ -n "${!fvar:-}" ]; then
        val=$(<"${!fvar}")
    fi
    export "$var"="$val"
    unset "$fvar"
}

# psql_init — psql as the superuser on the temporary server (its socket), stops on error.
psql_init() {
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

init_files() {
    local f
    for f in /docker-entrypoint-initdb.d/*; do
        case $f in
        *.sh)
            if [ -x "$f" ]; then
                echo "$0: running $f"
                "$f"
            else
                echo "$0: sourcing $f"
                # shellcheck disable=SC1090
                . "$f"
            fi
            ;;
        *.sql) echo "$0: running $f"; psql_init --dbname "$POSTGRES_DB" -f "$f" ;;
        *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB" ;;
        *) [ -e "$f" ] && echo "$0: ignoring $f" ;;
        esac
    done
}

if [ "${1:0:1}" = - ]; then
    set -- postgres "$@"
fi
if [ "$1" = postgres ]; then
    : "${PGDATA:=/var/lib/postgresql/data}"
    export PGDATA
    if [ "$(id -u)" = 0 ]; then
        echo "error: this stand-in runs as the postgres user (USER postgres); do not run it as root" >&2
        exit 1
    fi
    if [ ! -w "$PGDATA" ]; then
        echo "error: $PGDATA is not writable by $(id -un) (uid $(id -u))" >&2
        exit 1
    fi
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        file_env POSTGRES_PASSWORD
        file_env POSTGRES_USER postgres
        file_env POSTGRES_DB "$POSTGRES_USER"
        file_env POSTGRES_INITDB_ARGS
        if [ -z "$POSTGRES_PASSWORD" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
            echo "error: the database is uninitialized and no superuser password is given" \
                "(POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE)" >&2
            exit 1
        fi
        # Local connections: trust (initdb's default, as in the official image); the
        # password is set for connections from elsewhere.
        eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
        auth=${POSTGRES_HOST_AUTH_METHOD:-$(postgres -C password_encryption)}
        printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

        export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
        PGUSER="${PGUSER:-$POSTGRES_USER}" \
            pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
        if [ "$POSTGRES_DB" != postgres ]; then
            psql_init --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
        fi
        init_files
        pg_ctl -D "$PGDATA" -m fast -w stop
        unset PGPASSWORD
        echo "$0: PostgreSQL init process complete; ready for start up."
    else
        echo "$0: $PGDATA holds a database already: initialization skipped"
    fi
fi
exec "$@"
