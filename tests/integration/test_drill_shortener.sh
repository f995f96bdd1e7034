#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Drills against the reference workload (opspool-shortener on the suite's PostgreSQL and Redis,
# restarted by tests/support/supervise.sh): a restart drill probing /health and a redirect
# (/r/<code>) shows failed probes, then recovery with a measured time; a latency drill through
# the proxy shows +150 ms in observe and not after rollback.
. "$OSP_SRC_DIR/tests/support/lib.sh"
pid_changed() { [ "$(cat "$PIDFILE" 2>/dev/null)" != "$1" ]; }  # re-read on every poll

RUN=$BIN/osp-run-child
SHORT=$BIN/tools/opspool-shortener
[ -x "$RUN" ] && [ -x "$SHORT" ] || { echo "osp-run-child / opspool-shortener not built" >&2; exit 77; }
command -v jq >/dev/null || { echo "jq not installed" >&2; exit 77; }

PIDFILE=$TMP/shortener.pid
# Port 0 with a port file: the first start picks a free port, restarts keep it.
SHORTENER_ADDR=127.0.0.1:0 SHORTENER_PORT_FILE=$TMP/shortener.port SHORTENER_PG_DSN=$OSP_PG_DSN SHORTENER_REDIS_URL=$OSP_REDIS_URL \
SHORTENER_PIDFILE=$PIDFILE SHORTENER_REDIS_PREFIX="$OSP_PREFIX:short:" \
    "$SRC/tests/support/supervise.sh" 0.3 "$SHORT" >>"$TMP/shortener.log" 2>&1 &
SUP=$!
PIDS+=("$SUP")
trap 'kill -TERM $SUP 2>/dev/null; wait $SUP 2>/dev/null; cleanup_pids' EXIT
UP=$(port_from_file "$TMP/shortener.port" 20) || fail "shortener did not bind its port"
PX=$(free_port) # the drill's latency proxy: its address must be in the targets file first
wait_until 20 curl -sf "http://127.0.0.1:$UP/health" || fail "shortener did not become healthy"
code=$(curl -sf -X POST -H 'Content-Type: application/json' -d '{"target": "https://example.org/", "user_id": 1}' \
    "http://127.0.0.1:$UP/api/urls" | jq -r .code) || fail "cannot create a short URL"
ok "shortener healthy on $UP, short code $code"

T=$TMP/targets.json
cat >"$T" <<EOF
{"targets": {"shortener": {"adapter": "local", "base_url": "http://127.0.0.1:$PX", "health_path": "/health",
  "local": {"pidfile": "$PIDFILE", "proxy_listen": "127.0.0.1:$PX", "upstream": "127.0.0.1:$UP"},
  "limits": {"max_duration_s": 30, "allowed_faults": ["restart", "latency"]}}}}
EOF
drill() {
    local name=$1 payload=$2; shift 2
    "$RUN" --kind drill --targets "$T" --timeout-s 120 --payload "$payload" "$@" >"$TMP/$name.json" 2>>"$TMP/$name.log" ||
        fail "$name: the child did not finish its report"
}
j() { jq -r "$2" "$TMP/$1.json"; }
check() { [ "$(j "$1" "$2")" = true ] || fail "$1: $3 ($2) — result: $(j "$1" '.result | del(.phases)' | head -c 1500)"; ok "$1: $3"; }

old=$(cat "$PIDFILE")
drill restart '{"target": "shortener", "fault": {"type": "restart", "duration_s": 4},
                "probe": {"interval_ms": 100, "timeout_ms": 500, "path": "/r/'"$code"'"},
                "hypothesis": {"max_time_to_recover_ms": 4000}}'
check restart '.result.verdict == "pass" and .result.inject.pid == '"$old" "restart drill passes, the shortener's pid was signalled"
check restart '.result.phases.observe.failed > 0 and .result.time_to_detect_ms != null' "probes failed while it was down"
check restart '.result.time_to_recover_ms > 0 and .result.time_to_recover_ms <= 4000' "recovered in $(j restart .result.time_to_recover_ms) ms"
check restart '.result.probes.paths == ["/health", "/r/'"$code"'"] and .result.phases.recovery.ok >= 3' "health and redirect both probed"
wait_until 10 pid_changed "$old" || fail "shortener not restarted"

drill latency '{"target": "shortener", "fault": {"type": "latency", "duration_s": 2, "latency_ms": 150},
                "probe": {"interval_ms": 100, "path": "/r/'"$code"'"}}'
check latency '.result.verdict == "pass" and .result.phases.observe.p50_ms >= 140' "observe p50 $(j latency .result.phases.observe.p50_ms) ms under +150 ms"
check latency '.result.phases.recovery.p95_ms < 100' "recovery p95 $(j latency .result.phases.recovery.p95_ms) ms after rollback"
finish
