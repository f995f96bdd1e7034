#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Scale-out lanes of the benchmark kind on the local adapter, against the reference workload:
# N instances of opspool-shortener (the suite's PostgreSQL and Redis) started from the
# target's local.instance on loopback ports, behind the job's round-robin balancer.
#   1. lanes at 1 and 3 replicas (a real forked child, osp-run-child): the result shows each
#      lane's replicas and scaling efficiency, the balancer spread the connections over all
#      three instances, and every instance is stopped and gone afterwards; once more
#      in-process, so LeakSanitizer checks the code.
#   2. cancel mid-lane (SIGTERM to the child's group): instances stopped inside the grace.
#   3. an instance that cannot start: a clear error naming it, nothing left running.
#   4. through the pool: a scaling benchmark holds its target exclusively (it waits for a plain
#      benchmark sharing the target, and runs alone); its rows reach the ledger with replicas
#      and efficiency; then a worker drained by SIGTERM past its deadline stops a running
#      scale-out lane and its instances, and records the restore.
# Bounded: every wait has a timeout, every lane a request count or a cancel; no timing asserts.
. "$OSP_SRC_DIR/tests/support/lib.sh"

RUN=$BIN/osp-run-child
SHORT=$BIN/tools/opspool-shortener
[ -x "$RUN" ] && [ -x "$SHORT" ] && [ -x "$WORKER" ] || { echo "binaries missing" >&2; exit 77; }
command -v curl >/dev/null && command -v jq >/dev/null || { echo "curl/jq missing" >&2; exit 77; }

# The target's own service (lanes without replicas, and the pool's plain benchmark).
SHORTENER_ADDR=127.0.0.1:0 SHORTENER_PORT_FILE=$TMP/main.port SHORTENER_PG_DSN=$OSP_PG_DSN \
    SHORTENER_REDIS_URL=$OSP_REDIS_URL SHORTENER_REDIS_PREFIX="$OSP_PREFIX:" \
    "$SHORT" >>"$TMP/main-shortener.log" 2>&1 &
PIDS+=("$!")
MP=$(port_from_file "$TMP/main.port" 30) || fail "shortener did not bind its port"
wait_until 30 curl -fsS "http://127.0.0.1:$MP/health" || fail "shortener did not become healthy"
ok "the target's own shortener on $MP (schema applied)"

export OSP_TARGETS_FILE=$TMP/targets.json
INST="\"argv\": [\"$SHORT\"], \"log\": \"$TMP/inst-{index}.log\", \"ready_timeout_s\": 30,
      \"env\": {\"SHORTENER_ADDR\": \"127.0.0.1:{port}\", \"SHORTENER_PG_DSN\": \"$OSP_PG_DSN\",
               \"SHORTENER_REDIS_URL\": \"$OSP_REDIS_URL\", \"SHORTENER_REDIS_PREFIX\": \"$OSP_PREFIX:\",
               \"SHORTENER_PIDFILE\": \"$TMP/inst-{index}.pid\"}"
cat >"$OSP_TARGETS_FILE" <<EOF
{"targets": {
  "web": {"adapter": "local", "base_url": "http://127.0.0.1:$MP", "health_path": "/health",
          "local": {"instance": {$INST}}},
  "broken": {"adapter": "local", "base_url": "http://127.0.0.1:$MP", "health_path": "/health",
             "local": {"instance": {"argv": ["/bin/false", "--port={port}"], "ready_timeout_s": 5}}}}}
EOF

run() { # run NAME PAYLOAD [osp-run-child args...]
    local name=$1 payload=$2; shift 2
    "$RUN" --kind benchmark --targets "$OSP_TARGETS_FILE" --timeout-s 120 --payload "$payload" "$@" \
        >"$TMP/$name.json" 2>>"$TMP/$name.log" || fail "$name: the child did not finish its report"
}
j() { jq -r "$2" "$TMP/$1.json"; }
check() { [ "$(j "$1" "$2")" = true ] || fail "$1: $3 ($2) — report: $(j "$1" '{status, error, exit, result: (.result // {} | {passed, scaling_baseline, lanes: [.lanes[]? | {name, replicas, rps, scaling_efficiency, scale}]}), events: [.events[] | select(.type == "scale" or .type == "restore")]}' | head -c 3000)"; ok "$1: $3"; }
# gone PID... — none of them is alive (kill -0 fails).
gone() { for p in "$@"; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
inst_pids() { jq -r '[.events[] | select(.type == "scale") | .data.instances[]?.pid] | .[]' "$TMP/$1.json"; }
inst_ports() { jq -r '[.events[] | select(.type == "scale") | .data.instances[]?.port] | .[]' "$TMP/$1.json"; }
LANE='"connections": 6, "requests": 1500, "engines": 1'

# ---- 1. lanes at 1 and 3 replicas ----
run scale "{\"target\": \"web\", \"lanes\": [{\"name\": \"x1\", $LANE, \"replicas\": 1}, {\"name\": \"x3\", $LANE, \"replicas\": 3}], \"thresholds\": [\"error_rate<1%\"]}"
check scale '.status == 0 and .result.passed' "job passed, no errors through the balancer"
check scale '[.result.lanes[] | .replicas] == [1, 3]' "each lane reports its replicas"
check scale '.result.scaling_baseline == "x1" and .result.lanes[0].scaling_efficiency == 1' "x1 is the baseline"
check scale '(.result.lanes[1].scaling_efficiency | type) == "number" and .result.lanes[1].scaling_efficiency > 0' "x3's scaling efficiency: $(j scale .result.lanes[1].scaling_efficiency) (rps $(j scale .result.lanes[0].rps) -> $(j scale .result.lanes[1].rps))"
check scale '.result.lanes[1].scale | .adapter == "local" and (.instances | length) == 3 and ([.instances[].port] | unique | length) == 3 and .ready' "three instances on three ports, all ready"
check scale '.result.lanes[1].scale.restore.balancer.connections | length == 3 and all(. >= 1)' "the balancer gave every instance connections: $(jq -c '.result.lanes[1].scale.restore.balancer.connections' "$TMP/scale.json")"
check scale '.result.lanes[1].scale.restore | .restored and .stopped == 3 and .killed == 0 and .alive_after == 0' "all three stopped by SIGTERM, none left"
check scale '[.events[] | select(.type == "scale" or .type == "restore") | "\(.type):\(.data.lane)"] == ["scale:x1", "restore:x1", "scale:x3", "restore:x3"]' "scale and restore events per lane"
check scale '[.rows[].row | {lane, replicas, e: (.scaling_efficiency | type)}] == [{"lane": "x1", "replicas": 1, "e": "number"}, {"lane": "x3", "replicas": 3, "e": "number"}]' "rows carry replicas and efficiency"
check scale '.group_leftovers == false and .exit == 0' "nothing left in the job's process group"
mapfile -t pids < <(inst_pids scale)
assert_eq 4 "${#pids[@]}" "four instances were started (1 + 3)"
gone "${pids[@]}" || fail "an instance is still alive: ${pids[*]}"
ok "every instance process is gone"
for p in $(inst_ports scale); do
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$p/health" && fail "something still answers on instance port $p"
done
ok "nothing answers on the instances' ports"
[ -f "$TMP/inst-2.log" ] || fail "instance 2 has no log file"
ok "instances log to local.instance.log ({index} substituted)"

# The same path in-process (osp-run-child --inline 1): the process exits normally, so
# LeakSanitizer checks the scaler, the balancer's thread and the instances' bookkeeping.
run inline "{\"target\": \"web\", \"lanes\": [{\"name\": \"x2\", \"connections\": 4, \"requests\": 400, \"engines\": 1, \"replicas\": 2}]}" --inline 1
check inline '.status == 0 and .result.lanes[0].scale.restore.alive_after == 0' "in-process: passed, instances stopped, no leak"

# ---- 2. cancel mid-lane ----
run cancel "{\"target\": \"web\", \"lanes\": [{\"name\": \"x3\", \"connections\": 6, \"duration_s\": 60, \"engines\": 1, \"replicas\": 3}]}" \
    --cancel-on-event scale+800
check cancel '.status == -4010 and (.error | test("cancelled during lane x3")) and .result.lanes[0].cancelled' "cancelled while the lane ran"
check cancel '[.events[] | select(.type == "restore")][0].data | .cancelled and .restored and .alive_after == 0' "instances stopped on cancel"
check cancel '.exit == 0 and .group_leftovers == false' "the child exited by itself within the grace, nothing left in its group"
mapfile -t pids < <(inst_pids cancel)
assert_eq 3 "${#pids[@]}" "three instances were started"
gone "${pids[@]}" || fail "an instance survived the cancel: ${pids[*]}"
ok "no instance survived the cancel"

# ---- 3. an instance that cannot start ----
run broken "{\"target\": \"broken\", \"lanes\": [{\"name\": \"x2\", $LANE, \"replicas\": 2}]}"
check broken '.status == -4010 and (.error | test("lane x2: scaling to 2 replicas: instance 0 \\(port [0-9]+\\) exited before it was ready \\(status 1\\)"))' "named: $(j broken .error)"
check broken '[.events[] | select(.type == "restore")][0].data | .restored and .alive_after == 0' "the other instance was stopped"
check broken '.rows == [] and .group_leftovers == false' "no lane ran, nothing left"

# ---- 4. through the pool: the lease, the ledger, a drain ----
"$CTL" migrate >/dev/null
assert_eq "replicas|scaling_efficiency" "$(q "SELECT string_agg(column_name, '|' ORDER BY column_name) FROM information_schema.columns
    WHERE table_schema = 'opspool' AND table_name = 'benchmark_results' AND column_name IN ('replicas', 'scaling_efficiency')")" \
    "migration 0010: benchmark_results has replicas and scaling_efficiency"
start_worker w1 OSP_WORKER_KINDS=benchmark OSP_WORKER_SLOTS=2 OSP_WORKER_ID=scale-w1 OSP_DRAIN_TIMEOUT_S=1
W1=$LAST_PID
plain=$("$CTL" submit benchmark --payload '{"target": "web", "lanes": [{"name": "plain", "connections": 2, "duration_s": 3, "engines": 1}]}')
wait_eq 30 running job_state "$plain" || fail "the plain benchmark did not start"
scaled=$("$CTL" submit benchmark --payload "{\"target\": \"web\", \"lanes\": [{\"name\": \"x1\", $LANE, \"replicas\": 1}, {\"name\": \"x2\", $LANE, \"replicas\": 2}]}")
wait_until 30 eval '[ "$(rcli HGET "$P:job:$scaled" state)" = waiting ]' || fail "the scaling benchmark did not wait for the shared lease: $(rcli HGETALL "$P:job:$scaled" | tr '\n' ' ')"
ok "the scaling benchmark waits while a plain benchmark shares the target"
wait_until 60 eval '[ "$(rcli HGET "$P:lease:web" "$scaled")" = 1 ]' || fail "the scaling benchmark never held the lease exclusively"
ok "then it holds the target's lease exclusively"
wait_eq 90 succeeded job_state "$scaled" || fail "the scaling benchmark did not succeed: $(job_state "$scaled") $(q "SELECT error FROM opspool.jobs WHERE id = '$scaled'")"
assert_eq succeeded "$(job_state "$plain")" "the plain benchmark succeeded"
assert_eq t "$(q "SELECT (SELECT min(started_at) FROM opspool.job_attempts WHERE job_id = '$scaled') >=
                        (SELECT max(finished_at) FROM opspool.job_attempts WHERE job_id = '$plain')")" "it started after the plain one finished"
assert_eq "x1|1|true;x2|2|true" "$(q "SELECT string_agg(lane || '|' || replicas || '|' || (scaling_efficiency > 0), ';' ORDER BY lane)
    FROM opspool.benchmark_results WHERE job_id = '$scaled'")" "ledger rows: replicas and efficiency per lane"
assert_eq "1|2" "$(q "SELECT string_agg((shape::jsonb->>'replicas'), '|' ORDER BY lane) FROM opspool.benchmark_results WHERE job_id = '$scaled'")" \
    "replicas in the recorded shape"
assert_eq "" "$(q "SELECT replicas FROM opspool.benchmark_results WHERE job_id = '$plain'")" "a plain lane records no replicas"
assert_eq "" "$(q "SELECT shape::jsonb->>'replicas' FROM opspool.benchmark_results WHERE job_id = '$plain'")" "nor replicas in its shape"
assert_eq 2 "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$scaled' AND type = 'restore' AND (data->>'restored')::bool")" "two restore events in the job's timeline"

long=$("$CTL" submit benchmark --max-attempts 3 --payload "{\"target\": \"web\", \"lanes\": [{\"name\": \"long\", \"connections\": 4, \"duration_s\": 120, \"engines\": 1, \"replicas\": 2}]}")
scaled_once() { [ "$(q "SELECT count(*) FROM opspool.job_events WHERE job_id = '$long' AND type = 'scale'")" = 1 ]; }
wait_until 60 scaled_once || fail "the long scale-out lane never scaled: $(job_state "$long")"
mapfile -t lpids < <(q "SELECT e->>'pid' FROM opspool.job_events, jsonb_array_elements(data->'instances') e WHERE job_id = '$long' AND type = 'scale'")
assert_eq 2 "${#lpids[@]}" "two instances running for the long lane"
kill -0 "${lpids[0]}" 2>/dev/null || fail "instance ${lpids[0]} is not running"
kill -TERM "$W1"
wait_exit "$W1" 30
assert_eq 0 "$EXIT_RC" "the worker drained (deadline 1 s) and exited 0"
wait_until 10 gone "${lpids[@]}" || fail "an instance outlived the drain: ${lpids[*]}"
ok "the drained lane's instances are gone"
assert_eq "true|true" "$(q "SELECT (data->>'restored') || '|' || (data->>'cancelled') FROM opspool.job_events WHERE job_id = '$long' AND type = 'restore'")" \
    "the drained lane's restore is in the job's timeline"
assert_eq queued "$(job_state "$long")" "the job was handed back to the queue"
assert_eq "" "$(rcli KEYS "$P:lease:*" | tr -d '\n')" "no lease left behind"

finish
