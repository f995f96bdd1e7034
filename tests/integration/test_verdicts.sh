#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Verdicts are final, errors are retried, and every judged or interrupted attempt keeps its
# typed row — through the pool (opspoolctl submit, a real worker, Redis and the ledger):
#   - a latency drill whose hypothesis fails, a benchmark that breaches a threshold and a
#     backup whose archive does not verify end 'failed' after one attempt although three were
#     allowed, with their drill_results / benchmark_results / backups row;
#   - a benchmark against a port nobody listens on is an error: retried, then dead, one
#     benchmark_results row per attempt;
#   - nothing of the verdicts is on a dead list, and Redis holds the same final state;
#   - a drill cancelled while its fault is on keeps its drill_results row (interrupted).
# Bounded: every wait has a timeout; lanes have request counts; the shortener is stopped.
. "$OSP_SRC_DIR/tests/support/lib.sh"

SHORT=$BIN/tools/opspool-shortener
[ -x "$SHORT" ] || { echo "opspool-shortener not built" >&2; exit 77; }
command -v curl >/dev/null && command -v jq >/dev/null || { echo "curl/jq missing" >&2; exit 77; }

SHORTENER_ADDR=127.0.0.1:0 SHORTENER_PORT_FILE=$TMP/shortener.port SHORTENER_PG_DSN=$OSP_PG_DSN \
SHORTENER_REDIS_URL=$OSP_REDIS_URL SHORTENER_REDIS_PREFIX="$OSP_PREFIX:verdicts:" \
SHORTENER_PIDFILE=$TMP/shortener.pid "$SHORT" >>"$TMP/shortener.log" 2>&1 &
PIDS+=("$!")
UP=$(port_from_file "$TMP/shortener.port" 30) || fail "shortener did not bind its port"
wait_until 30 curl -fsS "http://127.0.0.1:$UP/health" || fail "shortener did not become healthy"
PX=$(free_port)   # the drill's latency proxy
GONE=$(free_port) # nobody listens here

# A small database to back up.
psql "$OSP_TEST_PG_DSN" -qAtX -c "DROP DATABASE IF EXISTS verdicts" -c "CREATE DATABASE verdicts" >/dev/null
DB_DSN="${OSP_TEST_PG_DSN/dbname=postgres/dbname=verdicts}"
[ "$DB_DSN" != "$OSP_TEST_PG_DSN" ] || DB_DSN="$OSP_TEST_PG_DSN dbname=verdicts"
psql "$DB_DSN" -qAtX -c "CREATE TABLE t (id int PRIMARY KEY)" -c "INSERT INTO t SELECT generate_series(1, 1000)" >/dev/null

export OSP_TARGETS_FILE=$TMP/targets.json
cat >"$OSP_TARGETS_FILE" <<EOF
{"targets": {
  "svc": {"adapter": "local", "base_url": "http://127.0.0.1:$PX", "health_path": "/health",
          "local": {"pidfile": "$TMP/shortener.pid", "proxy_listen": "127.0.0.1:$PX", "upstream": "127.0.0.1:$UP"},
          "limits": {"max_duration_s": 30, "allowed_faults": ["latency"]}},
  "web": {"adapter": "local", "base_url": "http://127.0.0.1:$UP", "health_path": "/health"},
  "gone": {"adapter": "local", "base_url": "http://127.0.0.1:$GONE", "health_path": "/health"},
  "db": {"pg_dsn": "$DB_DSN", "backup_root": "$TMP/backups",
         "backup": {"pg_bin": "${PGBIN:-/usr/lib/postgresql/15/bin}"}}}}
EOF

"$CTL" migrate >/dev/null
start_worker w OSP_WORKER_KINDS=drill,benchmark,backup OSP_WORKER_SLOTS=2 OSP_RETRY_BASE_MS=50 \
    OSP_RETRY_MAX_MS=200 OSP_BACKUP_ROOT="$TMP/backups"

attempts() { q "SELECT string_agg(attempt || ':' || outcome, ' ' ORDER BY attempt) FROM opspool.job_attempts WHERE job_id = '$1'"; }
redis_state() { rcli HGET "$P:job:$1" state; }
# The verdict jobs run one at a time: the drill must not share the machine with a benchmark.
await_final() { wait_eq "$2" "$3" job_state "$1" || fail "$1: $(job_state "$1") (want $3): $(q "SELECT error FROM opspool.jobs WHERE id = '$1'")"; }

# ---- a drill whose hypothesis fails: failed, once ----
drill=$("$CTL" submit drill --max-attempts 3 --payload '{"target": "svc",
    "fault": {"type": "latency", "duration_s": 1, "latency_ms": 200},
    "probe": {"interval_ms": 100, "max_latency_ms": 100},
    "hypothesis": {"min_availability": 0.9}}')
await_final "$drill" 90 failed
assert_eq "1:failed" "$(attempts "$drill")" "drill: one attempt of three, not retried"
assert_eq "fail" "$(q "SELECT verdict FROM opspool.drill_results WHERE job_id = '$drill' AND attempt = 1")" "drill: drill_results row with verdict fail"
assert_eq "fail" "$(q "SELECT result->>'verdict' FROM opspool.jobs WHERE id = '$drill'")" "drill: the result carries the verdict"
err=$(q "SELECT error FROM opspool.jobs WHERE id = '$drill'")
[[ $err == "drill verdict fail: availability under fault"* ]] || fail "drill error: $err"
ok "drill: error names the broken hypothesis"
assert_eq failed "$(redis_state "$drill")" "drill: Redis holds failed too"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$drill' AND type = 'retrying'")" "drill: no retry scheduled"

# ---- a drill interrupted by a cancel keeps its row ----
long=$("$CTL" submit drill --max-attempts 3 --payload '{"target": "svc",
    "fault": {"type": "latency", "duration_s": 20, "latency_ms": 50}, "probe": {"interval_ms": 100}}')
in_observe() { [ -n "$(q "SELECT 1 FROM opspool.job_events WHERE job_id = '$1' AND type = 'phase' AND data->>'phase' = 'observe'")" ]; }
wait_until 60 in_observe "$long" || fail "the long drill never reached its observe phase"
"$CTL" cancel "$long" >/dev/null || fail "cancel the running drill"
await_final "$long" 60 cancelled
assert_eq "1:cancelled" "$(attempts "$long")" "cancelled drill: its one attempt ended cancelled"
assert_eq "interrupted" "$(q "SELECT verdict FROM opspool.drill_results WHERE job_id = '$long' AND attempt = 1")" "cancelled drill: drill_results row with verdict interrupted"

# ---- a benchmark that breaches a threshold: failed, once ----
curl -fsS -X POST "http://127.0.0.1:$UP/admin/faults" -d '{"error_rate": 1}' >/dev/null || fail "set faults"
bench=$("$CTL" submit benchmark --max-attempts 3 --payload '{"target": "web",
    "lanes": [{"name": "errors", "connections": 2, "requests": 100, "requests_mix": [{"path": "/r/k{key}"}],
               "keys": {"count": 10}}], "thresholds": ["error_rate<1%"]}')
await_final "$bench" 60 failed
curl -fsS -X POST "http://127.0.0.1:$UP/admin/faults" -d '{"error_rate": 0}' >/dev/null || fail "reset faults"
assert_eq "1:failed" "$(attempts "$bench")" "benchmark: one attempt of three, not retried"
assert_eq "errors|false" "$(q "SELECT lane || '|' || passed FROM opspool.benchmark_results WHERE job_id = '$bench'")" "benchmark: benchmark_results row, passed = false"
err=$(q "SELECT error FROM opspool.jobs WHERE id = '$bench'")
[[ $err == "thresholds failed: errors: error_rate<1%"* ]] || fail "benchmark error: $err"
ok "benchmark: error names the breached threshold"
assert_eq failed "$(redis_state "$bench")" "benchmark: Redis holds failed too"

# ---- an unreachable target is an error: retried until dead, a row per attempt ----
gone=$("$CTL" submit benchmark --max-attempts 2 --payload '{"target": "gone",
    "lanes": [{"name": "base", "connections": 2, "requests": 10, "requests_mix": [{"path": "/"}]}]}')
await_final "$gone" 60 dead
assert_eq "1:failed 2:failed" "$(attempts "$gone")" "unreachable: retried, both attempts recorded"
assert_eq 2 "$(q "SELECT count(*) FROM opspool.benchmark_results WHERE job_id = '$gone' AND passed = false")" "unreachable: each interrupted attempt kept its benchmark_results row"
dead=$(rcli LRANGE "$P:dead:benchmark" 0 -1 | tr -d '\0')
grep -q "$gone" <<<"$dead" || fail "the unreachable benchmark is not on the dead list"
! grep -q "$bench" <<<"$dead" || fail "a failed verdict went to the dead list"
ok "dead list: the error, not the verdict"

# ---- a backup whose archive does not verify: failed, once, with its row ----
good=$("$CTL" submit backup --payload '{"target": "db"}')
await_final "$good" 60 succeeded
path=$(q "SELECT result->>'path' FROM opspool.jobs WHERE id = '$good'")
[ -f "$path" ] || fail "backup archive missing: $path"
printf 'x' >>"$path" # the sidecar's checksum no longer matches
bad=$("$CTL" submit backup --max-attempts 3 --payload "{\"target\": \"db\", \"verify_file\": \"$(basename "$path")\"}")
await_final "$bad" 60 failed
assert_eq "1:failed" "$(attempts "$bad")" "backup: one attempt of three, not retried"
assert_eq "mismatch" "$(q "SELECT verified FROM opspool.backups WHERE job_id = '$bad' AND attempt = 1")" "backup: backups row with verified = mismatch"
err=$(q "SELECT error FROM opspool.jobs WHERE id = '$bad'")
[[ $err == *"checksum mismatch"* ]] || fail "backup error: $err"
ok "backup: error names the mismatch"

# The CLI reads the same: failed is finished, and submit --wait exits non-zero for it.
"$CTL" jobs --state failed --json | jq -e --arg d "$drill" --arg b "$bench" --arg k "$bad" \
    '[.[].id] | (index($d) != null) and (index($b) != null) and (index($k) != null)' >/dev/null \
    || fail "opspoolctl jobs --state failed does not list the verdicts"
n=$("$CTL" jobs --state finished --json | jq --arg d "$drill" '[.[] | select(.id == $d)] | length')
assert_eq 1 "$n" "opspoolctl jobs --state finished includes failed"
kill -0 "$LAST_PID" || fail "worker died"
finish
