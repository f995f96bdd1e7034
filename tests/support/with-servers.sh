#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# with-servers.sh DIR NAME CMD... — run one integration test against the suite's servers with
# its own isolation: a fresh database (osp_<name>) and a random Redis key prefix.
# Sets OSP_REDIS_URL, OSP_PG_DSN, OSP_PREFIX for the command; drops the database afterwards.
set -euo pipefail
dir=${1:?dir}; name=${2:?name}; shift 2
[ -f "$dir/env.sh" ] || { echo "servers not started (no $dir/env.sh)" >&2; exit 77; }
# shellcheck disable=SC1091
. "$dir/env.sh"
db="osp_$(echo "$name" | tr -c 'a-z0-9_\n' '_')_$$"
psql "$OSP_TEST_PG_DSN" -qAtc "CREATE DATABASE $db" >/dev/null
cleanup() { psql "$OSP_TEST_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT
export OSP_REDIS_URL=$OSP_TEST_REDIS_URL
export OSP_PG_DSN="${OSP_TEST_PG_DSN/dbname=postgres/dbname=$db}"
export OSP_PREFIX="{osp-$name-$$-$RANDOM}"
export OSP_TEST_TMP; OSP_TEST_TMP=$(mktemp -d)
trap 'cleanup; rm -rf "$OSP_TEST_TMP"' EXIT
"$@"
