#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark history and regression verdicts (docs/benchmark-jobs.md "History and
# regressions"), end to end: a worker runs real benchmark jobs against the reference
# shortener; ten unchanged runs build the series' baseline; then the shortener is slowed by
# 20 ms (its /admin/faults latency knob) and the next run is judged `regressed`, naming p50
# as worse (p99 and p99.9 of 400 requests are not judged: too few samples). Read through every front end: GET /v1/benchmarks, GET /v1/benchmarks/{id}
# (?against=), opspoolctl bench history|compare; operators pin a run (the slow run is then
# `ok` against the pinned slow run... and the fast runs compared with it `improved`) and reset
# (no baseline yet). Bad input is refused with a clear error and changes nothing.
# Verdicts are not asserted for the unchanged runs (their noise is this machine's): the
# false-positive rate is measured by tests/bench/bench_regress.sh instead.
. "$(dirname "$0")/../support/lib.sh"
# shellcheck source=sched_lib.sh
. "$(dirname "$0")/sched_lib.sh"

SHORT=$BIN/tools/opspool-shortener
[ -x "$SHORT" ] && [ -x "$SCHED" ] || { echo "binaries missing" >&2; exit 77; }
command -v curl >/dev/null && command -v jq >/dev/null || { echo "curl/jq missing" >&2; exit 77; }

SHORTENER_ADDR=127.0.0.1:0 SHORTENER_PORT_FILE=$TMP/shortener.port SHORTENER_PG_DSN=$OSP_PG_DSN \
SHORTENER_REDIS_URL=$OSP_REDIS_URL SHORTENER_REDIS_PREFIX="$OSP_PREFIX:bh:" \
SHORTENER_PIDFILE=$TMP/shortener.pid "$SHORT" >>"$TMP/shortener.log" 2>&1 &
PIDS+=("$!")
UP=$(port_from_file "$TMP/shortener.port" 30) || fail "shortener did not bind its port"
wait_until 30 curl -fsS "http://127.0.0.1:$UP/health" || fail "shortener did not become healthy"
for i in $(seq 1 10); do
    curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
        -d "{\"target\": \"https://example.com/$i\", \"user_id\": 1, \"code\": \"k$i\"}" "http://127.0.0.1:$UP/api/urls" || fail "create k$i"
done
export OSP_TARGETS_FILE=$TMP/targets.json
cat >"$OSP_TARGETS_FILE" <<EOT
{"targets": {"web": {"adapter": "local", "base_url": "http://127.0.0.1:$UP", "health_path": "/health"}}}
EOT
"$CTL" migrate >/dev/null
start_worker w OSP_WORKER_KINDS=benchmark OSP_WORKER_SLOTS=1 OSP_WORKER_ID=w
PAYLOAD='{"target": "web", "lanes": [{"name": "redirect", "connections": 2, "requests": 400,
          "requests_mix": [{"path": "/r/k{key}"}], "keys": {"count": 10}}]}'
# run_bench [failed] — one run; its id. An unchanged run may still be judged regressed by this
# machine's noise (then it ends failed, like any regression): that is allowed here and
# measured by tests/bench/bench_regress.sh; "failed" demands the regression.
run_bench() {
    local id st
    id=$("$CTL" submit benchmark --payload "$PAYLOAD") || fail "submit benchmark"
    wait_until 60 bench_done "$id" || fail "benchmark $id: $(job_state "$id")"
    st=$(q "SELECT state || ' ' || coalesce(error, '') FROM opspool.jobs WHERE id = '$id'")
    case "${1:-any} $st" in
    "any succeeded "* | "any failed benchmark regressed:"* | "failed failed benchmark regressed:"*) ;;
    *) fail "benchmark $id: $st" ;;
    esac
    [ "${1:-any} ${st%% *}" = "any failed" ] && say "noise: unchanged run $id was judged regressed: $st"
    echo "$id"
}
bench_done() { [[ $(job_state "$1") =~ ^(succeeded|failed|dead|cancelled)$ ]]; }
IDS=()
for i in $(seq 1 10); do IDS+=("$(run_bench)"); done
ok "ten unchanged benchmark runs recorded"
assert_eq 10 "$(q "SELECT count(DISTINCT shape) + count(*) - 1 FROM opspool.benchmark_results WHERE lane = 'redirect'")" \
    "one series: every run recorded the same shape"

# A webhook receiver that checks signatures and answers 500 to the first two attempts of
# each delivery (tests/support/hookrecv.py); the scheduler notifies it of regressions.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMP/hook.secret"
python3 "$SRC/tests/support/hookrecv.py" --port-file "$TMP/hook.port" --log "$TMP/hook.jsonl" \
    --secret-file "$TMP/hook.secret" --fail-first 2 >>"$TMP/hookrecv.log" 2>&1 &
PIDS+=("$!")
HOOK=$(port_from_file "$TMP/hook.port" 20) || fail "the webhook receiver did not start"
cat >"$TMP/notify.json" <<EOT
{"endpoints": {"lab": {"url": "http://127.0.0.1:$HOOK/hooks/opspool", "secret_file": "$TMP/hook.secret",
                       "events": ["benchmark.regressed"], "retry_base_ms": 300, "retry_max_ms": 1000}}}
EOT
start_scheduler s OSP_NOTIFY_FILE="$TMP/notify.json"
API=$LAST_URL
AUTH=(-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json')

# The first runs have no baseline yet (fewer than 5 earlier runs).
h=$(curl -fsS "${AUTH[@]}" "$API/v1/benchmarks?target=web&lane=redirect&limit=20") || fail "GET /v1/benchmarks"
assert_eq 10 "$(jq '.results | length' <<<"$h")" "GET /v1/benchmarks: ten results"
assert_eq "no baseline yet" "$(jq -r '.results[-1].judge.verdict' <<<"$h")" "the first run: no baseline yet"
assert_eq 5 "$(jq -r '.results[4].judge.baseline.runs' <<<"$h")" "the sixth run is compared with the five before it"
assert_eq 9 "$(jq -r '.results[0].judge.baseline.runs' <<<"$h")" "the tenth with nine"

# +20 ms on every redirect: the next run regressed.
curl -fsS -X POST "http://127.0.0.1:$UP/admin/faults" -d '{"latency_ms": 20}' >/dev/null || fail "set latency"
slow=$(run_bench failed)
curl -fsS -X POST "http://127.0.0.1:$UP/admin/faults" -d '{"latency_ms": 0}' >/dev/null || fail "reset latency"
j=$(curl -fsS "${AUTH[@]}" "$API/v1/benchmarks/$slow") || fail "GET /v1/benchmarks/$slow"
assert_eq regressed "$(jq -r '.a[0].judge.verdict' <<<"$j")" "the slowed run is regressed"
assert_eq "regressed too few requests" "$(jq -r '[.a[0].judge.figures.p50_ms.verdict, .a[0].judge.figures.p99_ms.verdict] | join(" ")' <<<"$j")" \
    "p50 regressed ($(jq -r '.a[0].judge.figures.p50_ms.value' <<<"$j") ms against $(jq -r '.a[0].judge.figures.p50_ms.baseline' <<<"$j") ms); p99 of 400 requests is not judged"
assert_eq 10 "$(jq -r '.a[0].judge.baseline.runs' <<<"$j")" "compared with the last ten passing runs"
assert_eq "${IDS[9]}" "$(jq -r '.a[0].judge.baseline.jobs[0]' <<<"$j")" "the baseline names its runs, newest first"

assert_eq 1 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$slow' AND type = 'benchmark.regressed'
                  AND data->'figures' ? 'p50_ms'")" "the job has a benchmark.regressed event naming p50"
assert_eq regressed "$(q "SELECT judge->>'verdict' FROM opspool.benchmark_results WHERE job_id = '$slow'")" \
    "the verdict is recorded with the result"
assert_eq "failed 1 failed" "$(q "SELECT j.state, j.attempt, a.outcome FROM opspool.jobs j JOIN opspool.job_attempts a
                                   ON a.job_id = j.id WHERE j.id = '$slow'" | tr '|' ' ')" \
    "a regression is the job's final verdict: failed, not retried ($(q "SELECT error FROM opspool.jobs WHERE id = '$slow'"))"

# The signed webhook: refused twice (500), the same delivery a third time, then never again.
# Only the slowed run's delivery counts (an unchanged run judged regressed by noise has its own).
hooks() { [ -f "$TMP/hook.jsonl" ] && jq -c --arg j "$slow" 'select(.body.subject == $j)' "$TMP/hook.jsonl"; }
hook_count() { hooks | wc -l; }
wait_ge 30 3 hook_count || fail "the receiver got $(hook_count) request(s): $(cat "$TMP/hook.jsonl" 2>/dev/null)"
sleep 3 # longer than the retry backoff: a fourth request would have come by now
assert_eq 3 "$(hook_count)" "three requests, no duplicate after the 200"
assert_eq "500 500 200" "$(hooks | jq -r .status | tr '\n' ' ' | sed 's/ $//')" "answers: 500, 500, 200"
assert_eq 1 "$(hooks | jq -r '.delivery, .idempotency_key' | sort -u | wc -l)" \
    "one delivery id (Opspool-Delivery = Idempotency-Key) for the three attempts"
assert_eq "true true" "$(jq -s -r '[all(.[]; .sig_ok), all(.[]; .fresh)] | map(tostring) | join(" ")' "$TMP/hook.jsonl")" \
    "every request is signed with the endpoint's secret, within the replay window"
body=$(hooks | tail -n 1)
assert_eq "benchmark.regressed opspool.notification/v1 $slow 3 $slow" \
    "$(jq -r '[.event, .body.schema, .body.subject, .body.attempt, .body.data.job_id] | join(" ")' <<<"$body")" \
    "the body: type, schema, the job, the attempt"
grep -q "p50_ms" <<<"$(jq -r .body.summary <<<"$body")" || fail "summary: $(jq -r .body.summary <<<"$body")"
ok "its summary names what regressed: $(jq -r .body.summary <<<"$body")"
d=$(jq -r .delivery <<<"$body")
assert_eq "delivered 3" "$(q "SELECT state, attempts FROM opspool.notify_deliveries WHERE id = '$d'" | tr '|' ' ')" \
    "the ledger: delivered after 3 attempts"
assert_eq "1:500 2:500 3:200" "$(q "SELECT string_agg(attempt || ':' || http_status, ' ' ORDER BY attempt)
                                  FROM opspool.notify_attempts WHERE delivery_id = '$d'")" "the delivery log has every attempt"
out=$("$CTL" notifications --state delivered --log) || fail "opspoolctl notifications"
printf '%s\n' "$out" | sed 's/^/# /' >&2
grep -q "benchmark.regressed" <<<"$out" && grep -q "HTTP 500" <<<"$out" || fail "opspoolctl notifications: $out"
ok "opspoolctl notifications --log shows the attempts"
! grep -q "$HOOK/hooks\|$(cat "$TMP/hook.secret")" "$TMP"/s.log || fail "the scheduler logged the URL or the secret"
ok "no URL or secret in the scheduler's log"

# The CLI says the same.
out=$("$CTL" bench history --target web --lane redirect --limit 12) || fail "bench history"
printf '%s\n' "$out" | sed 's/^/# /' >&2
grep -q "regressed" <<<"$out" && grep -q "p50_ms" <<<"$out" || fail "bench history: $out"
grep -q "▁\|█" <<<"$out" || fail "bench history: no trend line: $out"
ok "opspoolctl bench history shows the regression and the trend"
out=$("$CTL" bench compare "$slow" "${IDS[9]}") || fail "bench compare"
grep -E "^redirect +p50_ms .* worse" <<<"$out" >/dev/null || fail "bench compare: $out"
ok "opspoolctl bench compare A B: p50 worse"
c=$(curl -fsS "${AUTH[@]}" "$API/v1/benchmarks/$slow?against=${IDS[9]}")
[ "$(jq -r '.lanes[0].figures.p50_ms.direction' <<<"$c")" = worse ] || fail "against: $c"
ok "GET /v1/benchmarks/{id}?against=: p50 worse ($(jq -r '.lanes[0].figures.p50_ms.change' <<<"$c"))"

# The scheduler's gauges: the latest verdict per series (alert OpspoolBenchmarkRegressed).
has_metric() { [[ $(curl -fsS "$API/metrics") == *"$1"* ]]; }
wait_until 20 has_metric 'opspool_benchmark_verdict{target="web",lane="redirect",verdict="regressed"} 1' \
    || fail "no regressed verdict in /metrics: $(curl -fsS "$API/metrics" | grep opspool_benchmark_ || true)"
has_metric 'opspool_benchmark_verdict{target="web",lane="redirect",verdict="ok"} 0' || fail "ok verdict not exported as 0"
has_metric 'opspool_benchmark_last_latency_seconds{target="web",lane="redirect",quantile="0.5"} 0.02' \
    || fail "p50 of the slow run not exported: $(curl -fsS "$API/metrics" | grep opspool_benchmark_last_latency || true)"
ok "/metrics: opspool_benchmark_verdict regressed = 1, the latest p50 about 20 ms"

# Pin the slow run: a new fast run is `improved` against it; reset: no baseline yet.
"$CTL" bench pin web redirect "$slow" >/dev/null || fail "bench pin"
fast=$(run_bench)
j=$(curl -fsS "${AUTH[@]}" "$API/v1/benchmarks/$fast")
assert_eq "improved 1 $slow" "$(jq -r '.a[0].judge | "\(.verdict) \(.baseline.runs) \(.baseline.pinned)"' <<<"$j")" \
    "pinned: the next run is compared with the pinned run alone, and improved"
assert_eq 1 "$(q "SELECT count(*) FROM opspool.audit WHERE action = 'bench.pin' AND object = 'web/redirect'")" "the pin is audited"
curl -fsS "${AUTH[@]}" -X POST "$API/v1/benchmarks/baselines" -d '{"target": "web", "lane": "redirect"}' >/dev/null || fail "reset"
after=$(run_bench)
assert_eq "no baseline yet" "$(curl -fsS "${AUTH[@]}" "$API/v1/benchmarks/$after" | jq -r '.a[0].judge.verdict')" "reset: only runs after it count"

# Bad input: a clear 400 or 404, nothing changed.
expect() { # CODE PATTERN CURL-ARGS...
    local want=$1 pat=$2 body code; shift 2
    body=$(curl -sS -o - -w '\n%{http_code}' "${AUTH[@]}" "$@")
    code=${body##*$'\n'}
    [ "$code" = "$want" ] && grep -q -- "$pat" <<<"$body" || fail "$* -> $code: $body"
}
expect 400 "limit" "$API/v1/benchmarks?limit=0"
expect 400 "since" "$API/v1/benchmarks?since=abc"
expect 400 "target" "$API/v1/benchmarks?target=NOT%20A%20NAME"
expect 400 "unknown query parameter\|query" "$API/v1/benchmarks?tartget=web"
expect 400 "job id" "$API/v1/benchmarks/not-an-id"
expect 404 "no benchmark results" "$API/v1/benchmarks/0190f2a4-1b2c-7d3e-8f40-123456789abc"
expect 400 "against" "$API/v1/benchmarks/$slow?against=x"
expect 400 "required" -X POST "$API/v1/benchmarks/baselines" -d '{"target": "web"}'
expect 400 "body" -X POST "$API/v1/benchmarks/baselines" -d '[1'
expect 400 "nope" -X POST "$API/v1/benchmarks/baselines" -d '{"target": "web", "lane": "redirect", "nope": 1}'
expect 404 "has no result" -X POST "$API/v1/benchmarks/baselines" -d "{\"target\": \"web\", \"lane\": \"other\", \"pin\": \"$slow\"}"
assert_eq 0 "$(q "SELECT count(*) FROM opspool.benchmark_baselines WHERE lane <> 'redirect'")" "refused baselines changed nothing"
rc=0; "$CTL" bench pin web redirect not-an-id >/dev/null 2>"$TMP/e" || rc=$?
assert_eq 2 "$rc" "opspoolctl bench pin with a bad id: usage error ($(cat "$TMP/e"))"
rc=0; "$CTL" bench compare 0190f2a4-1b2c-7d3e-8f40-123456789abc >/dev/null 2>"$TMP/e" || rc=$?
assert_eq 4 "$rc" "opspoolctl bench compare of a job without results: not found"
ok "bad input refused; nothing changed"
finish
