#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The programs started the way the deployment files start them — same environment (read out
# of the rendered Kubernetes manifests and docker-compose.yml, secrets as files through the
# *_FILE variables), same arguments, same probes, under the Redis ACL users of
# deploy/keda/redis-users.acl — against the suite's Redis and PostgreSQL. Only endpoints
# (Redis URL, key prefix, listen port) and file locations are mapped to the test's.
# Checks: the scheduler passes its startup/readiness probes within the declared budget and
# the image's health check script; workers register; KEDA's exact scaler script under the
# keda ACL user counts pending and in-flight jobs and nothing else; workers and scheduler
# exit on SIGTERM within their declared grace; a ScaledJob-style `--once` worker exits after
# one job; the Downward API variables reach the worker (its pod-deletion-cost PATCH itself is
# tested against a stand-in API server in tests/integration/test_worker_podcost.sh); the
# workers pass their own startup/readiness/liveness probes and the image's health check.
. "$OSP_SRC_DIR/tests/support/lib.sh"
PY=python3
python3 -c 'import yaml' 2>/dev/null || PY=/usr/bin/python3
$PY -c 'import yaml' 2>/dev/null || { echo "SKIP: python3-yaml missing"; exit 77; }
DT=("$PY" "$SRC/tests/deploy/deploytool.py")

# ---- Secrets as files, and the ACL users ----
sfx="-t$$"
S=$TMP/secrets; C=$TMP/compose-secrets; mkdir -p "$S" "$C" "$TMP/etc"
rand() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
opw=$(rand); kpw=$(rand)
printf '%s\n' "$OSP_PG_DSN" >"$S/pg-dsn"
printf '%s\n' "$opw" >"$S/redis-password"
rand >"$S/signing-key"
TOKEN=$(rand); printf '# tokens\n%s\n' "$TOKEN" >"$S/api-tokens"
printf '{"targets": {"shortener": {"adapter": "local", "base_url": "http://127.0.0.1:9", "pg_dsn": "%s"}}}\n' \
    "$OSP_PG_DSN" >"$S/targets.json"
"${DT[@]}" schedules "$SRC" >"$TMP/etc/schedules.json"
cp "$S/pg-dsn" "$C/opspool_pg_dsn"; cp "$S/redis-password" "$C/opspool_redis_password"
cp "$S/signing-key" "$C/opspool_signing_key"; cp "$S/targets.json" "$C/opspool_targets"
while IFS= read -r line; do
    line=${line//OPSPOOL_REDIS_PASSWORD/$opw}
    line=${line//KEDA_REDIS_PASSWORD/$kpw}
    # shellcheck disable=SC2086
    [ "$(rcli ACL SETUSER $line)" = OK ] || fail "ACL SETUSER $line"
done < <("${DT[@]}" acl "$SRC" "$OSP_PREFIX" "$sfx")
cleanup_acl() { rcli ACL DELUSER "opspool$sfx" "keda$sfx" >/dev/null 2>&1 || true; cleanup_pids; }
trap cleanup_acl EXIT
ok "ACL users of deploy/keda/redis-users.acl loaded (prefix $OSP_PREFIX)"

# manifest_env KIND NAME PORT — the container's environment, endpoints and paths mapped.
manifest_env() {
    local kind=$1 name=$2 port=$3
    ENVS=()
    while IFS= read -r kv; do
        local k=${kv%%=*} v=${kv#*=}
        case $k in
        OSP_REDIS_URL) v=$OSP_REDIS_URL ;;
        OSP_PREFIX) v=$OSP_PREFIX ;;
        OSP_REDIS_USERNAME) v=opspool$sfx ;;
        OSP_HTTP_ADDR) v=127.0.0.1:$port ;;
        OSP_WORKER_ID) v=$name-$RANDOM ;;
        OSP_POD_NAME) v=$name-7f9c8d6b5-$RANDOM ;;
        OSP_POD_NAMESPACE) v=opspool ;;
        esac
        v=${v//\/run\/secrets\/opspool\//$S/}
        v=${v//\/etc\/opspool\//$TMP/etc/}
        v=${v//\/run\/secrets\//$C/}
        ENVS+=("$k=$v")
    done < <("${DT[@]}" env "$SRC" "$kind" "$name")
    ENVS+=("PATH=$PATH" "ASAN_OPTIONS=${ASAN_OPTIONS:-}" "UBSAN_OPTIONS=${UBSAN_OPTIONS:-}")
}
# start_as KIND NAME LOG [EXTRA_ENV...] — start the container's args with its env; LAST_PID.
start_as() {
    local kind=$1 name=$2 log=$3; shift 3
    local args=()
    mapfile -t args < <("${DT[@]}" args "$SRC" "$kind" "$name")
    env -i "${ENVS[@]}" "$@" "$BIN/${args[0]}" "${args[@]:1}" >>"$TMP/$log.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
# exit_within PID SECONDS WHAT — SIGTERM, then the process must exit 0 within SECONDS.
exit_within() {
    local t0; t0=$(date +%s)
    kill -TERM "$1"
    wait_exit "$1" "$2"
    [ "$EXIT_RC" = 0 ] || fail "$3: exit status $EXIT_RC within $2 s"
    ok "$3 exits 0 after SIGTERM in $(( $(date +%s) - t0 )) s (grace $2 s)"
}

# ---- Scheduler, as the Deployment runs it ----
manifest_env Deployment opspool-scheduler 0
SCHED_ENV=("${ENVS[@]}")
start_as Deployment opspool-scheduler scheduler OSP_HTTP_PORT_FILE="$TMP/scheduler.port"
SCHED=$LAST_PID
port=$(port_from_file "$TMP/scheduler.port" 60) || fail "scheduler did not bind its port"
read -r spath sport speriod sfail < <("${DT[@]}" probe "$SRC" opspool-scheduler startupProbe)
[ "$sport" = 8080 ] || fail "probe port $sport is not the container port"
budget=$((speriod * sfail))
wait_until "$budget" curl -sf "http://127.0.0.1:$port$spath" || fail "startup probe $spath not passing within $budget s"
ok "scheduler passes its startupProbe ($spath) within ${budget} s"
read -r rpath _ rperiod rfail < <("${DT[@]}" probe "$SRC" opspool-scheduler readinessProbe)
wait_until $((rperiod * rfail + 10)) curl -sf "http://127.0.0.1:$port$rpath" || fail "readiness $rpath"
ok "scheduler ready ($rpath: Redis and PostgreSQL reachable under the ACL user)"
read -r lpath _ _ _ < <("${DT[@]}" probe "$SRC" opspool-scheduler livenessProbe)
curl -sf "http://127.0.0.1:$port$lpath" >/dev/null || fail "liveness $lpath"
ok "scheduler liveness $lpath"
OSP_HTTP_ADDR=0.0.0.0:$port sh "$SRC/deploy/docker/healthcheck.sh" || fail "image HEALTHCHECK script"
ok "the image's HEALTHCHECK script passes against the scheduler"
curl -sf "http://127.0.0.1:$port/metrics" >"$TMP/metrics" || fail "/metrics"
grep -q '^opspool_queue_pending' "$TMP/metrics" || fail "/metrics lacks opspool_queue_pending"
ok "scheduler /metrics exports opspool_queue_pending"
api_schedules=$(curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/v1/schedules")
grep -q nightly-backup <<<"$api_schedules" || fail "schedules from the ConfigMap not loaded: $api_schedules"
ok "the ConfigMap's schedules are loaded"

# ---- Workers: one as the noop Deployment runs it, one as compose's worker-noop ----
manifest_env Deployment opspool-worker-noop 0
start_as Deployment opspool-worker-noop worker-k8s
WK=$LAST_PID
KGRACE=$("${DT[@]}" grace "$SRC" Deployment opspool-worker-noop)
manifest_env compose worker-noop 0
start_as compose worker-noop worker-compose
WC=$LAST_PID
CGRACE=$("${DT[@]}" grace "$SRC" compose worker-noop)
wait_eq 30 2 rcli ZCARD "$P:workers" || fail "workers did not register (got $WAIT_GOT)"
ok "both workers registered (heartbeat)"
# Their probes, on the port each logged (OSP_HTTP_ADDR is mapped to an ephemeral port).
wport() { grep -o 'on port [0-9]*' "$TMP/$1.log" | head -n1 | grep -o '[0-9]*$'; }
read -r wspath wsport wsperiod wsfail < <("${DT[@]}" probe "$SRC" opspool-worker-noop startupProbe)
[ "$wsport" = 9090 ] || fail "worker probe port $wsport is not the container port"
wait_until $((wsperiod * wsfail)) sh -c "grep -q 'on port' '$TMP/worker-k8s.log'" ||
    fail "the k8s-style worker never opened its probe port"
kp=$(wport worker-k8s)
curl -sf "http://127.0.0.1:$kp$wspath" >/dev/null || fail "worker startup probe $wspath"
read -r wrpath _ wrperiod wrfail < <("${DT[@]}" probe "$SRC" opspool-worker-noop readinessProbe)
wait_until $((wrperiod * wrfail + 10)) curl -sf "http://127.0.0.1:$kp$wrpath" || fail "worker readiness $wrpath"
read -r wlpath _ _ _ < <("${DT[@]}" probe "$SRC" opspool-worker-noop livenessProbe)
curl -sf "http://127.0.0.1:$kp$wlpath" >/dev/null || fail "worker liveness $wlpath"
curl -sf "http://127.0.0.1:$kp/metrics" | grep -q '^opspool_worker_slots' || fail "worker /metrics"
ok "k8s-style worker passes its startup ($wspath), readiness ($wrpath) and liveness probes; /metrics"
wait_until 20 sh -c "grep -q 'on port' '$TMP/worker-compose.log'" || fail "compose worker has no HTTP port"
OSP_HTTP_ADDR=0.0.0.0:$(wport worker-compose) sh "$SRC/deploy/docker/healthcheck.sh" ||
    fail "the image's HEALTHCHECK script fails against the compose worker"
ok "the image's HEALTHCHECK script passes against the compose-style worker"
# The manifest's Downward API variables reach the worker; outside a cluster (no
# KUBERNETES_SERVICE_HOST) it says so once and leaves the pod-deletion-cost feature off.
wait_until 10 grep -q 'pod deletion cost disabled: no API server' "$TMP/worker-k8s.log" ||
    fail "the k8s-style worker did not pick up OSP_POD_NAME/OSP_POD_NAMESPACE"
ok "k8s-style worker: OSP_POD_NAME/OSP_POD_NAMESPACE seen; off outside a cluster"

# ---- KEDA's scaler under the keda ACL user ----
KEDA_LUA="local listName = KEYS[1]
local listType = redis.call('type', listName).ok
local cmd = {zset = 'zcard', set = 'scard', list = 'llen', hash = 'hlen', none = 'llen'}
return redis.call(cmd[listType], listName)"
kcli() {
    local u=${OSP_REDIS_URL#unix://}
    if [ "$u" != "$OSP_REDIS_URL" ]; then redis-cli -s "$u" --user "keda$sfx" --pass "$kpw" --no-auth-warning "$@"
    else redis-cli -u "$OSP_REDIS_URL" --user "keda$sfx" --pass "$kpw" --no-auth-warning "$@"; fi
}
assert_eq PONG "$(kcli PING)" "keda user: PING"
CTL_RUN() { env -i "${SCHED_ENV[@]}" "$CTL" "$@"; }
long=$(CTL_RUN submit noop --payload '{"sleep_ms": 4000}') || fail "submit under the opspool ACL user"
wait_eq 20 running job_state "$long" || fail "job never started"
assert_eq 1 "$(kcli EVAL "$KEDA_LUA" 1 "$P:inflight:noop")" "keda script counts the running job (ZCARD of the in-flight ZSET)"
assert_eq "$(rcli LLEN "$P:queue:noop")" "$(kcli EVAL "$KEDA_LUA" 1 "$P:queue:noop")" "keda script counts the pending list (LLEN)"
assert_eq 0 "$(kcli EVAL "$KEDA_LUA" 1 "$P:queue:nosuchkind")" "keda script: a missing list counts 0"
kcli EVAL "$KEDA_LUA" 1 "$P:workers" 2>&1 | grep -q NOPERM || fail "keda user reads beyond its keys"
ok "keda user cannot read other keys (NOPERM)"
kcli EVALSHA 0000000000000000000000000000000000000000 1 "$P:queue:noop" 2>&1 | grep -q NOPERM || fail "keda user may EVALSHA"
ok "keda user may run nothing but its commands (EVALSHA refused)"

# ---- SIGTERM drains within the declared grace ----
holder=$(rcli HGET "$P:job:$long" worker)
if [[ $holder == opspool-worker-noop-* ]]; then first=$WK; fg=$KGRACE; other=$WC; og=$CGRACE
else first=$WC; fg=$CGRACE; other=$WK; og=$KGRACE; fi
exit_within "$first" "$fg" "the worker running a job (drains it)"
assert_eq succeeded "$(job_state "$long")" "the running job finished during the drain"
exit_within "$other" "$og" "the idle worker"

# ---- ScaledJob style: --once with the ScaledJob's env and args (kind switched to noop) ----
manifest_env ScaledJob opspool-once-drill 0
once=$(CTL_RUN submit noop --payload '{"sleep_ms": 200}')
start_as ScaledJob opspool-once-drill once OSP_WORKER_KINDS=noop
ONCE=$LAST_PID
wait_exit "$ONCE" 60
assert_eq 0 "$EXIT_RC" "the --once worker exits 0 after one job"
assert_eq succeeded "$(job_state "$once")" "its job succeeded"

# ---- The scheduler stops within its grace ----
exit_within "$SCHED" "$("${DT[@]}" grace "$SRC" Deployment opspool-scheduler)" "the scheduler"
finish
