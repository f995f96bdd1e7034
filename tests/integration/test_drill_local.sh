#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every local drill fault against a stand-in service (osp-healthserver behind supervise.sh),
# each drill run as a real forked child (osp-run-child: job_child_main + frames, like the
# worker). Asserts the story: a restart shows failed probes then recovery with a measured
# time; latency shows in observe percentiles and not after rollback; CPU workers exist during
# the fault and are gone after; a failing steady state aborts with nothing injected; an abort
# condition ends the fault early; cancelling mid-fault still rolls back. The scenarios without
# a cancel also run once in-process (--inline 1) so LeakSanitizer checks those paths.
. "$OSP_SRC_DIR/tests/support/lib.sh"
pid_changed() { [ "$(cat "$PIDFILE" 2>/dev/null)" != "$1" ]; }  # re-read on every poll

RUN=$BIN/osp-run-child
HS=$BIN/osp-healthserver
[ -x "$RUN" ] && [ -x "$HS" ] || { echo "osp-run-child / osp-healthserver not built" >&2; exit 77; }
command -v jq >/dev/null || { echo "jq not installed" >&2; exit 77; }

# The service binds a free port and keeps it across the supervisor's restarts (--port-file);
# the drill's latency proxy needs its address in the targets file before it exists.
"$SRC/tests/support/supervise.sh" 0.5 "$HS" --port 0 --port-file "$TMP/svc.port" --pidfile "$TMP/svc.pid" \
    >>"$TMP/svc.log" 2>&1 &
PIDS+=("$!")
SUP=$!
trap 'kill -TERM $SUP 2>/dev/null; wait $SUP 2>/dev/null; cleanup_pids' EXIT
UP=$(port_from_file "$TMP/svc.port" 10) || fail "health server did not start"
PX=$(free_port)
PIDFILE=$TMP/svc.pid
T=$TMP/targets.json
cat >"$T" <<EOF
{"targets": {
  "svc": {"adapter": "local", "base_url": "http://127.0.0.1:$PX", "health_path": "/health",
          "local": {"pidfile": "$PIDFILE", "proxy_listen": "127.0.0.1:$PX", "upstream": "127.0.0.1:$UP"},
          "limits": {"max_duration_s": 30, "allowed_faults": ["restart", "latency", "cpu"], "max_cpu_workers": 2}},
  "broken": {"adapter": "local", "base_url": "http://127.0.0.1:$UP", "health_path": "/nope",
             "local": {"pidfile": "$PIDFILE"},
             "limits": {"allowed_faults": ["restart"]}},
  "readonly": {"adapter": "local", "base_url": "http://127.0.0.1:$UP", "health_path": "/health",
               "local": {"pidfile": "$PIDFILE"}, "limits": {"allowed_faults": ["latency"]}}
}}
EOF

wait_until 10 test -s "$PIDFILE" || fail "health server did not start"
ok "stand-in service up on $UP (supervised), proxy port $PX"

# drill NAME PAYLOAD [osp-run-child args...] — result in $TMP/NAME.json
drill() {
    local name=$1 payload=$2; shift 2
    "$RUN" --kind drill --targets "$T" --timeout-s 120 --payload "$payload" "$@" >"$TMP/$name.json" 2>>"$TMP/$name.log" ||
        fail "$name: the child did not finish its report"
}
j() { jq -r "$2" "$TMP/$1.json"; }
# check NAME JQ-BOOLEAN WHAT
check() { [ "$(j "$1" "$2")" = true ] || fail "$1: $3 ($2) — result: $(j "$1" '.result | del(.phases)' | head -c 1500)"; ok "$1: $3"; }

# ---- restart: failed probes, then recovery with a measured time ----
old_pid=$(cat "$PIDFILE")
drill restart '{"target": "svc", "fault": {"type": "restart", "duration_s": 3},
                "probe": {"interval_ms": 100, "timeout_ms": 500},
                "hypothesis": {"max_time_to_recover_ms": 3000}}'
check restart '.status == 0 and .result.verdict == "pass"' "verdict pass"
check restart ".result.inject.pid == $old_pid" "signalled the pid from the pidfile"
check restart '.result.phases.observe.failed > 0' "probes failed while the process was down"
check restart '.result.time_to_detect_ms != null and .result.time_to_detect_ms <= 500' "time to detect measured"
check restart '.result.time_to_recover_ms >= 300 and .result.time_to_recover_ms <= 3000' "time to recover measured ($(j restart .result.time_to_recover_ms) ms; supervisor waits 500 ms)"
check restart '.result.phases.recovery.ok >= 3 and .result.recovered' "K consecutive passes in recovery"
check restart '[.events[] | select(.type == "phase") | .data.phase] | unique | length == 5' "all five phases in the timeline"
check restart '.rows[0].table == "drill_results" and .rows[0].row.fault == "restart" and .rows[0].row.verdict == "pass" and (.rows[0].row.phases | has("observe"))' "drill_results row"
wait_until 5 pid_changed "$old_pid" || fail "the service was not restarted"
ok "supervisor brought the service back (pid $old_pid -> $(cat "$PIDFILE"))"

# ---- latency: visible in observe percentiles, gone after rollback ----
drill latency '{"target": "svc", "fault": {"type": "latency", "duration_s": 2, "latency_ms": 200, "jitter_ms": 10},
                "probe": {"interval_ms": 100, "timeout_ms": 1000}}'
check latency '.status == 0 and .result.verdict == "pass"' "verdict pass"
check latency '.result.phases.observe.p50_ms >= 180 and .result.phases.observe.p95_ms >= 190' "observe p50/p95 carry +200 ms ($(j latency .result.phases.observe.p50_ms) / $(j latency .result.phases.observe.p95_ms))"
check latency '.result.phases.steady.p95_ms < 100 and .result.phases.recovery.p95_ms < 100' "steady and recovery p95 undelayed ($(j latency .result.phases.recovery.p95_ms) ms)"
check latency '.result.rollback.proxy_delay_ms == 0 and .result.proxy.delayed_chunks > 0' "proxy delayed, then stopped delaying"

# A latency bound in the probe makes the fault detectable and the hypothesis falsifiable.
drill latency_fail '{"target": "svc", "fault": {"type": "latency", "duration_s": 1, "latency_ms": 200},
                     "probe": {"interval_ms": 100, "max_latency_ms": 100},
                     "hypothesis": {"min_availability": 0.9}}' --inline 1
check latency_fail '.status == -4012 and .result.verdict == "fail"' "hypothesis refuted -> verdict fail, final (OSP_EVERDICT)"
check latency_fail '.result.phases.observe.errors.slow > 0 and .result.time_to_detect_ms != null' "slow probes counted as failures"

# ---- CPU pressure: workers live during the fault, gone after ----
drill cpu '{"target": "svc", "fault": {"type": "cpu", "duration_s": 2, "workers": 2, "load": 50},
            "probe": {"interval_ms": 100}}'
check cpu '.status == 0 and .result.verdict == "pass"' "verdict pass"
check cpu '(.result.inject.stress_pids | length) == 2' "two stress workers started"
check cpu '[.events[] | select(.type == "phase" and .data.phase == "observe" and .data.status == "end") | .data.stress_alive_at_end][0] == 2' "both alive at the end of observe"
check cpu '.result.rollback.stress_alive_after == 0 and .group_leftovers == false' "none alive after rollback"
for p in $(j cpu '.result.inject.stress_pids[]'); do
    ! kill -0 "$p" 2>/dev/null || fail "stress worker $p still alive"
done
ok "kill -0 finds no stress worker"

# ---- failing steady state: aborted, nothing injected ----
before=$(cat "$PIDFILE")
drill steady '{"target": "broken", "fault": {"type": "restart"}, "probe": {"interval_ms": 50}}' --inline 1
check steady '.status == -4012 and .result.verdict == "aborted" and .result.injected == false' "aborted with nothing injected, final (OSP_EVERDICT)"
check steady '.result.inject == {} and .result.phases.steady.errors.status == 5' "no inject evidence; 5 failed steady checks (HTTP 404)"
check steady '[.events[] | select(.data.phase == "inject")] | length == 0' "no inject phase in the timeline"
assert_eq "$before" "$(cat "$PIDFILE")" "the service was not touched"

# ---- blast radius: a fault the target does not allow never runs ----
drill notallowed '{"target": "readonly", "fault": {"type": "restart"}}' --inline 1
check notallowed '.status != 0 and (.error | test("allowed_faults")) and .result == null' "fault outside allowed_faults refused"
assert_eq "$before" "$(cat "$PIDFILE")" "the service was not touched"

# ---- abort condition: availability under 90 % over 1 s ends the fault early ----
drill abort '{"target": "svc", "fault": {"type": "restart", "signal": "KILL", "duration_s": 10},
              "probe": {"interval_ms": 50, "timeout_ms": 300},
              "abort": {"min_availability": 0.9, "window_s": 1}}' --inline 1
check abort '.result.verdict == "aborted" and .result.abort.reason == "availability_below"' "abort condition fired"
check abort '(.result.phases.observe.end_ms - .result.phases.observe.start_ms) < 5000' "fault ended early ($(j abort '.result.phases.observe.end_ms - .result.phases.observe.start_ms') ms of 10 s)"
check abort '[.events[] | select(.type == "abort")] | length == 1' "abort event recorded"
check abort '.result.recovered' "still rolled back and recovered"

# ---- cancel mid-fault (SIGTERM to the child's group) still rolls back ----
drill cancel_latency '{"target": "svc", "fault": {"type": "latency", "duration_s": 20, "latency_ms": 300},
                       "probe": {"interval_ms": 100}}' --cancel-on observe+800
check cancel_latency '.finished and .exit == 0 and .status == -4006 and .result.verdict == "interrupted"' "cancelled: interrupted, child exited by itself"
check cancel_latency '.result.phases.observe.p50_ms >= 280' "latency was on before the cancel"
check cancel_latency '.result.rollback.proxy_delay_ms == 0 and .result.phases.recovery.probes >= 1 and .result.phases.recovery.p95_ms < 100' "proxy stopped delaying after the cancel ($(j cancel_latency .result.phases.recovery.p95_ms) ms)"
check cancel_latency '.result.duration_ms < 6000' "ended well before the fault's 20 s"

drill cancel_cpu '{"target": "svc", "fault": {"type": "cpu", "duration_s": 20, "workers": 2, "load": 100},
                   "probe": {"interval_ms": 100}}' --cancel-on observe+500
check cancel_cpu '.status == -4006 and .result.rollback.stress_alive_after == 0 and .group_leftovers == false' "stress workers stopped by the rollback"
for p in $(j cancel_cpu '.result.inject.stress_pids[]'); do
    ! kill -0 "$p" 2>/dev/null || fail "stress worker $p survived the cancel"
done
ok "kill -0 finds no stress worker after the cancel"

finish
