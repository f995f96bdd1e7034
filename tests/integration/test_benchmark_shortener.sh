#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_benchmark_shortener.sh — the reference workload end to end: opspool-shortener against
# the suite's PostgreSQL and Redis (its schema applied at start), its API (create, duplicate,
# read, redirect with X-Cache), then the benchmark kind run in-process by opspool-loadgen --job
# against it: repeated keys are served from the cache (cache_hit_ratio threshold passes), hit
# counters reach PostgreSQL, and an injected error rate makes the error_rate threshold fail.
# Bounded: every wait has a timeout, every lane a request count; the shortener is killed on exit.
# shellcheck source=../support/lib.sh
. "$(dirname "$0")/../support/lib.sh"

SHORT=$BIN/tools/opspool-shortener
LOADGEN=$BIN/tools/opspool-loadgen
[ -x "$SHORT" ] && [ -x "$LOADGEN" ] || { echo "binaries missing" >&2; exit 77; }
command -v curl >/dev/null && command -v jq >/dev/null || { echo "curl/jq missing" >&2; exit 77; }

SHORTENER_ADDR=127.0.0.1:0 SHORTENER_PORT_FILE=$TMP/shortener.port SHORTENER_PG_DSN=$OSP_PG_DSN SHORTENER_REDIS_URL=$OSP_REDIS_URL \
    SHORTENER_REDIS_PREFIX="$OSP_PREFIX:" SHORTENER_PIDFILE=$TMP/shortener.pid \
    "$SHORT" >>"$TMP/shortener.log" 2>&1 &
SPID=$!
PIDS+=("$SPID")
port=$(port_from_file "$TMP/shortener.port" 30) || fail "shortener did not bind its port"
URL=http://127.0.0.1:$port
wait_until 30 curl -fsS "$URL/health" || fail "shortener did not become healthy"
ok "shortener healthy on $URL"
assert_eq "$SPID" "$(cat "$TMP/shortener.pid")" "pidfile holds the pid"

# The API.
for i in $(seq 1 20); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$URL/api/urls" \
        -H 'Content-Type: application/json' \
        -d "{\"target\": \"https://example.com/$i\", \"user_id\": $((i % 3 + 1)), \"code\": \"k$i\"}")
    [ "$code" = 201 ] || fail "create k$i: HTTP $code"
done
ok "20 urls created"
assert_eq 409 "$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$URL/api/urls" \
    -d '{"target": "https://example.com/x", "user_id": 1, "code": "k1"}')" "duplicate code is 409"
assert_eq 400 "$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$URL/api/urls" \
    -d '{"target": "ftp://x", "user_id": 1}')" "bad target is 400"
gen=$(curl -sS -X POST "$URL/api/urls" -d '{"target": "https://example.com/gen", "user_id": 7}' | jq -r .code)
[ -n "$gen" ] && [ "$gen" != null ] || fail "generated code missing"
ok "generated code $gen"
assert_eq 404 "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/r/nope")" "unknown code is 404"
h1=$(curl -sS -o /dev/null -D - "$URL/r/k1" | tr -d '\r')
grep -q '^X-Cache: MISS' <<<"$h1" || fail "first redirect should miss: $h1"
grep -q '^Location: https://example.com/1$' <<<"$h1" || fail "location: $h1"
h2=$(curl -sS -o /dev/null -D - "$URL/r/k1" | tr -d '\r')
grep -q '^X-Cache: HIT' <<<"$h2" || fail "second redirect should hit: $h2"
ok "redirect misses, then hits the cache"

# The benchmark kind against it.
cat >"$TMP/targets.json" <<JSON
{"targets": {"shortener": {"adapter": "local", "base_url": "$URL", "health_path": "/health",
  "lanes": {"cache-burst": {"model": "closed", "connections": 4, "requests": 2000,
    "requests_mix": [{"method": "GET", "path": "/r/k{key}"}],
    "keys": {"count": 20, "dist": "zipf", "s": 1.1}}}}}}
JSON
cat >"$TMP/pass.json" <<'JSON'
{"target": "shortener", "lanes": ["cache-burst",
  {"name": "open", "model": "open", "rate": 200, "connections": 8, "requests": 300,
   "requests_mix": [{"method": "GET", "path": "/r/k{key}", "weight": 9},
                    {"method": "GET", "path": "/health", "weight": 1}],
   "keys": {"count": 20}}],
 "thresholds": ["cache_hit_ratio>0.9", "error_rate<1%", "p99<2s"]}
JSON
rc=0
timeout 120 "$LOADGEN" --job "$TMP/pass.json" --targets "$TMP/targets.json" >"$TMP/pass.out" \
    2>>"$TMP/loadgen.log" || rc=$?
[ "$rc" = 0 ] || fail "benchmark should pass (rc $rc): $(jq -c '.error, .result.failed_thresholds' "$TMP/pass.out")"
ratio=$(jq '.result.lanes[0].cache_hit_ratio' "$TMP/pass.out")
reqs=$(jq '.result.lanes[0].requests' "$TMP/pass.out")
say "cache-burst: $reqs requests, cache hit ratio $ratio"
assert_eq 2000 "$reqs" "request-count bound honoured"
jq -e '.result.lanes[0].cache_hit_ratio > 0.9' "$TMP/pass.out" >/dev/null || fail "hit ratio $ratio"
ok "repeated keys are served from the cache"
assert_eq 2 "$(jq '.rows | length' "$TMP/pass.out")" "one benchmark_results row per lane"
assert_eq "cache-burst" "$(jq -r '.rows[0].row.lane' "$TMP/pass.out")" "row names the lane"
jq -e '.result.lanes[1].latency_uncorrected_ms.p99 != null and .result.lanes[1].target_rps == 200' \
    "$TMP/pass.out" >/dev/null || fail "open lane summary incomplete"
ok "open lane reports corrected and uncorrected latency"
hits=$(curl -sS "$URL/api/urls/k1" | jq .hits)
[ "$hits" -gt 2 ] || fail "hits for k1: $hits"
ok "hit counters reach PostgreSQL ($hits for k1)"

# Injected errors make the error_rate threshold fail, with the threshold named.
curl -fsS -X POST "$URL/admin/faults" -d '{"error_rate": 1}' >/dev/null || fail "set faults"
cat >"$TMP/fail.json" <<'JSON'
{"target": "shortener", "lanes": [{"name": "errors", "connections": 2, "requests": 200,
  "requests_mix": [{"path": "/r/k{key}"}], "keys": {"count": 20}}],
 "thresholds": ["error_rate<1%"]}
JSON
rc=0
timeout 120 "$LOADGEN" --job "$TMP/fail.json" --targets "$TMP/targets.json" >"$TMP/fail.out" \
    2>>"$TMP/loadgen.log" || rc=$?
assert_eq 1 "$rc" "benchmark fails under injected errors"
jq -r .error "$TMP/fail.out" | grep -q 'errors: error_rate<1% (observed 1)' \
    || fail "error message: $(jq -r .error "$TMP/fail.out")"
assert_eq 200 "$(jq '.result.lanes[0].errors.status_5xx' "$TMP/fail.out")" "5xx counted by class"
curl -fsS -X POST "$URL/admin/faults" -d '{"error_rate": 0}' >/dev/null || fail "reset faults"
ok "failing threshold named in the job error"

kill -TERM "$SPID"
for _ in $(seq 1 200); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.05; done
src=0
wait "$SPID" || src=$?
assert_eq 0 "$src" "shortener stops on SIGTERM"
finish
