#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_console.sh [N] [REQUESTS] — the web console with N jobs in the ledger (default
# 1,000,000: 90 % succeeded, the rest dead, failed, cancelled, queued and delayed, over five
# kinds and 30 days, ids time-ordered like opspool's), a scheduler of the release build
# (OSP_BENCH_BUILD, default build-bench-release) on its own servers, logged in through
# /ui/login. Each page is asked REQUESTS times (default 20) after one warm-up; the figure is
# the server's time to the first byte (curl's time_starttransfer - time_pretransfer), p50 and
# p95, against the issue's budget of 100 ms. For scale: the same page's main query alone in
# psql (EXPLAIN ANALYZE's execution time) where there is one. Bounded: counts and timeouts.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${OSP_BENCH_BUILD:-$ROOT/build-bench-release}
N=${1:-1000000}
REQ=${2:-20}
[ -x "$B/opspool-scheduler" ] || { echo "build $B first (tests/bench/run builds it)" >&2; exit 2; }
dir=$(mktemp -d)
trap 'kill "$spid" 2>/dev/null || true; bash "$ROOT/tests/support/servers.sh" stop "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
spid=
env -u OSP_TEST_REDIS_URL -u OSP_TEST_PG_DSN bash "$ROOT/tests/support/servers.sh" start "$dir" >/dev/null
. "$dir/env.sh"
db=console_$RANDOM
psql "$OSP_TEST_PG_DSN" -qAtc "CREATE DATABASE $db" >/dev/null
export OSP_PG_DSN="${OSP_TEST_PG_DSN/dbname=postgres/dbname=$db}" OSP_REDIS_URL=$OSP_TEST_REDIS_URL
export OSP_PREFIX="{console-$RANDOM}" OSP_LOG_LEVEL=warn
"$B/opspoolctl" migrate >/dev/null

t0=$(date +%s%3N)
# Ids as opspool makes them: 48 bits of milliseconds, version 7, random rest.
psql "$OSP_PG_DSN" -qAt >/dev/null <<SQL
INSERT INTO opspool.jobs (id, kind, state, payload, attempt, max_attempts, created_at,
                          updated_at, started_at, finished_at, run_at, error)
SELECT (lpad(to_hex(ms), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid,
       (ARRAY['noop', 'noop', 'noop', 'benchmark', 'drill', 'seed', 'backup'])[1 + g % 7],
       st, '{"target": "shortener"}'::jsonb, CASE WHEN st IN ('queued', 'delayed') THEN 0 ELSE 1 END, 3,
       to_timestamp(ms / 1000.0), to_timestamp(ms / 1000.0),
       CASE WHEN st NOT IN ('queued', 'delayed') THEN to_timestamp(ms / 1000.0) END,
       CASE WHEN st NOT IN ('queued', 'delayed') THEN to_timestamp(ms / 1000.0 + 1) END,
       CASE WHEN st = 'delayed' THEN now() + interval '1 day' ELSE to_timestamp(ms / 1000.0) END,
       CASE WHEN st IN ('dead', 'failed') THEN 'failed on request' END
FROM (SELECT g, md5(g::text) AS h,
             (extract(epoch FROM now() - interval '30 days') * 1000)::bigint + g::bigint * (2592000000 / $N) AS ms,
             CASE WHEN g % 100 < 90 THEN 'succeeded' WHEN g % 100 < 93 THEN 'dead'
                  WHEN g % 100 < 95 THEN 'failed' WHEN g % 100 < 97 THEN 'cancelled'
                  WHEN g % 100 < 99 THEN 'queued' ELSE 'delayed' END AS st
      FROM generate_series(1, $N) g) x;
VACUUM ANALYZE opspool.jobs;
SQL
t1=$(date +%s%3N)
echo "# $N jobs loaded in $(( (t1 - t0) / 1000 )) s: $(psql "$OSP_PG_DSN" -qAtc "SELECT string_agg(state || ' ' || n, ', ' ORDER BY n DESC) FROM (SELECT state, count(*) n FROM opspool.jobs GROUP BY 1) s")"

tok=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$tok scopes=read,operate" >"$dir/tokens"
OSP_API_TOKENS_FILE="$dir/tokens" OSP_HTTP_ADDR=127.0.0.1:0 OSP_HTTP_PORT_FILE="$dir/port" \
    OSP_RECONCILE_GRACE_S=86400 "$B/opspool-scheduler" >"$dir/scheduler.log" 2>&1 &
spid=$!
for _ in $(seq 1 300); do [ -s "$dir/port" ] && break; sleep 0.1; done
URL=http://127.0.0.1:$(cat "$dir/port")
for _ in $(seq 1 300); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null -c "$dir/jar" --data-urlencode "token=$tok" "$URL/ui/login"
# The ledger's unfinished jobs are not in this fresh Redis: the reconciler sweeps them in at
# start (rounds of 5,000 that hold the loop ~0.2 s each). Measure after it: no new round
# for 3 s (at most 120 s).
last=-1
for _ in $(seq 1 120); do
    n=$(grep -c reconciler "$dir/scheduler.log" || true)
    [ "$n" = "$last" ] && break
    last=$n
    sleep 3
done
echo "# the reconciler's start-up sweep: $last round(s) logged before measuring"
some=$(psql "$OSP_PG_DSN" -qAtc "SELECT id FROM opspool.jobs WHERE state = 'dead' ORDER BY id DESC LIMIT 1 OFFSET $((N / 200))")
older=$(psql "$OSP_PG_DSN" -qAtc "SELECT id FROM opspool.jobs ORDER BY id LIMIT 1 OFFSET $((N / 2))")

# page PATH — p50 and p95 of the server's time to first byte, ms; every answer must be a 200.
page() {
    local path=$1 i
    curl -fsS -o /dev/null -b "$dir/jar" "$URL$path" # warm-up
    for i in $(seq 1 "$REQ"); do
        curl -fsS -o /dev/null -b "$dir/jar" -w "%{time_pretransfer} %{time_starttransfer} %{http_code} %{size_download}\n" "$URL$path"
    done | awk '$3 != 200 { bad = $3 } { print ($2 - $1) * 1000, $4, bad }' | sort -n | awk -v p="$path" '
        { v[NR] = $1; size = $2; if ($3 != "") bad = $3 }
        END { if (bad != "") { printf "%s: HTTP %s\n", p, bad; exit 1 }
              printf "%-58s p50 %7.1f ms   p95 %7.1f ms   %6d bytes   (%d requests)\n", p, v[int(NR * 0.5 + 0.5)], v[int(NR * 0.95 + 0.5)], size, NR }'
}
echo "# server time to first byte, $N jobs in the ledger, budget 100 ms"
page /ui/
page /ui/jobs
page "/ui/jobs?kind=drill&state=dead"
page "/ui/jobs?state=queued"
page "/ui/jobs?kind=backup&state=running" # nothing matches: the worst case of a filter
page "/ui/jobs?before=$older"
page "/ui/jobs/$some"
page /ui/dead
page /ui/schedules
page /ui/benchmarks
page /ui/campaigns
echo "# scheduler log: $(grep -c '"level":"warn"' "$dir/scheduler.log" || true) warn line(s)"; grep '"level":"warn"' "$dir/scheduler.log" | cut -c1-200 | head -5
