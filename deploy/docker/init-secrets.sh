#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# init-secrets.sh — create the random secrets docker-compose.yml mounts, in
# deploy/docker/secrets/ (git-ignored). Existing files are kept, so running it twice changes
# nothing; delete the directory (and the pg-data volume) to start over.
# The directory is 0700 and the files 0644: Compose (without Swarm) bind-mounts each file
# as it is, and the containers read them as their own non-root users (redis, postgres,
# uid 10001), so the directory's mode is what keeps other users of this host out.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/secrets
acl_src=$here/../keda/redis-users.acl
mkdir -p "$dir"
chmod 0700 "$dir"

rand() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }
put() { # put NAME CONTENT — write once
    local f=$dir/$1
    [ -e "$f" ] && return 0
    umask 022
    printf '%s\n' "$2" >"$f.tmp"
    mv "$f.tmp" "$f"
    echo "created $f" >&2
}
get() { head -n1 "$dir/$1"; }

put pg_superuser_password "$(rand)"
put opspool_pg_password "$(rand)"
put shortener_pg_password "$(rand)"
put opspool_redis_password "$(rand)"
put keda_redis_password "$(rand)"
put opspool_signing_key "$(rand)"
put opspool_api_tokens "# opspool API bearer tokens, one per line
$(rand)"
put opspool_pg_dsn "host=postgres port=5432 dbname=opspool user=opspool password=$(get opspool_pg_password) connect_timeout=5"
put shortener_pg_dsn "host=postgres port=5432 dbname=shortener user=shortener password=$(get shortener_pg_password) connect_timeout=5"
put redis_users.acl "$(grep -v '^#' "$acl_src" |
    sed -e "s/OPSPOOL_REDIS_PASSWORD/$(get opspool_redis_password)/" \
        -e "s/KEDA_REDIS_PASSWORD/$(get keda_redis_password)/")"
put targets.json "{
  \"targets\": {
    \"shortener\": {
      \"adapter\": \"local\",
      \"base_url\": \"http://shortener:8080\",
      \"health_path\": \"/health\",
      \"pg_dsn\": \"$(get shortener_pg_dsn)\",
      \"backup_root\": \"/var/lib/opspool/backups\",
      \"backup\": {\"keep_daily\": 7, \"keep_weekly\": 4, \"keep_monthly\": 6, \"restore_check\": true},
      \"seed\": {\"scale\": 1, \"seed\": 1}
    },
    \"shortener-drill\": {
      \"adapter\": \"local\",
      \"base_url\": \"http://127.0.0.1:18081\",
      \"health_path\": \"/health\",
      \"local\": {\"proxy_listen\": \"127.0.0.1:18081\", \"upstream\": \"shortener:8080\"},
      \"limits\": {\"allowed_faults\": [\"latency\"], \"max_duration_s\": 120}
    }
  }
}"
echo "secrets in $dir" >&2
