#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_bulk_cancel.sh [N] [--durable] — the runaway-submit runbook at scale: N noop jobs
# queued (default 1,000,000; opspoolctl submit --count, no worker), then
# `opspoolctl cancel --kind noop --yes` clears them: every job cancelled in the ledger and
# flagged in Redis, the queue swept. Prints the operation's own figures (its --json) and
# checks what it left: 0 queued rows, 0 envelopes. For comparison, the floor the stores
# allow for the same rows: one psql UPDATE of all N rows with their events (what an operator
# with SQL access would run, without Redis) — a ratio, not a goal.
# Release build (OSP_BENCH_BUILD, default build-bench-release); own servers; bounded waits.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${OSP_BENCH_BUILD:-$ROOT/build-bench-release}
N=${1:-1000000}
durable=
[ "${2:-}" = --durable ] && durable=--durable
[ -x "$B/opspoolctl" ] || { echo "build $B first (tests/bench/run builds it)" >&2; exit 2; }
dir=$(mktemp -d)
trap 'bash "$ROOT/tests/support/servers.sh" stop "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
env -u OSP_TEST_REDIS_URL -u OSP_TEST_PG_DSN bash "$ROOT/tests/support/servers.sh" start "$dir" $durable >/dev/null
. "$dir/env.sh"
db=bulk_$RANDOM
psql "$OSP_TEST_PG_DSN" -qAtc "CREATE DATABASE $db" >/dev/null
export OSP_PG_DSN="${OSP_TEST_PG_DSN/dbname=postgres/dbname=$db}" OSP_REDIS_URL=$OSP_TEST_REDIS_URL
export OSP_PREFIX="{bulk-$RANDOM}" OSP_LOG_LEVEL=warn
CTL=$B/opspoolctl
"$CTL" migrate >/dev/null
t0=$(date +%s%3N)
timeout 1800 "$CTL" submit noop --count "$N" >/dev/null
t1=$(date +%s%3N)
echo "# submitted $N noop jobs in $(( (t1 - t0) / 1000 )) s (no worker: all queued)"
timeout 600 "$CTL" --json cancel --kind noop --dry-run | tr -d '\n '; echo
t2=$(date +%s%3N)
out=$(timeout 1800 "$CTL" --json cancel --kind noop --yes)
t3=$(date +%s%3N)
echo "$out" | tr -d '\n '; echo
left_rows=$(psql "$OSP_PG_DSN" -qAtc "SELECT count(*) FROM opspool.jobs WHERE state <> 'cancelled'")
left_env=$(redis-cli -s "${OSP_REDIS_URL#unix://}" LLEN "$OSP_PREFIX:queue:noop")
echo "# opspoolctl cancel --kind noop --yes: $(( t3 - t2 )) ms wall; rows not cancelled: $left_rows; envelopes left: $left_env"
[ "$left_rows" = 0 ] && [ "$left_env" = 0 ] || { echo "FAIL: the bulk cancel left work behind" >&2; exit 1; }
# The floor: the same rows and events in one SQL statement, no Redis (rows back to queued first).
psql "$OSP_PG_DSN" -qAtc "UPDATE opspool.jobs SET state = 'queued', finished_at = NULL" >/dev/null
psql "$OSP_PG_DSN" -qAtc "VACUUM ANALYZE opspool.jobs" >/dev/null
t4=$(date +%s%3N)
psql "$OSP_PG_DSN" -qAtc "WITH u AS (UPDATE opspool.jobs SET state = 'cancelled', finished_at = now(), updated_at = now()
    WHERE state = 'queued' AND kind = 'noop' RETURNING id)
    INSERT INTO opspool.job_events (job_id, type, data) SELECT id, 'cancelled', '{}'::jsonb FROM u" >/dev/null
t5=$(date +%s%3N)
echo "# floor, one SQL statement for the same rows and events (no Redis): $(( t5 - t4 )) ms"
