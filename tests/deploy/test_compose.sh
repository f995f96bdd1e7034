#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_compose.sh — docker-compose.yml itself, run for real with docker-compose (1.29, Debian's)
# against podman's Docker-compatible API, on a machine without Docker Hub:
#   1. A private podman API socket in a temporary directory (`podman system service`), with its
#      own containers.conf (runc runtime, ulimits this kind of machine allows); stopped on exit.
#   2. Images: the opspool image from deploy/docker/Dockerfile on the locally made Debian base
#      (tests/deploy/image_lib.sh, shared with test_image.sh), and the TEST STAND-INS for the
#      official redis:7.2-bookworm and postgres:15-bookworm images
#      (deploy/docker/datastores/: Debian's redis-server and postgresql-15).
#   3. A temporary project directory: the files the compose file mounts, secrets generated
#      there by deploy/docker/init-secrets.sh (never in the source tree), and docker-compose.yml
#      copied by tests/deploy/compose_local.py with only the images (stand-ins, this run's
#      opspool image) and the published host ports (free loopback ports) changed; the test
#      proves with `docker-compose config` of both files that nothing else differs.
#   4. `docker-compose --compatibility up -d` (deploy.replicas and resources honoured) under a
#      unique project name: Redis, PostgreSQL (its init script creates the databases and roles),
#      two schedulers (the ledger migrations run at their start), the worker services (noop
#      twice), the shortener and its cache Redis; depends_on waits for the health checks.
#      There is no migrations service: once the stack is up, the ledger holds every migration
#      of common/sql/ and `opspoolctl migrate` in scheduler-a is a no-op (nothing pending).
#      Podman runs health checks from systemd timers, and this machine has no systemd: a loop
#      in this test runs `podman healthcheck run` for each container at its own interval
#      instead (what the timers would do; the checks themselves are the compose file's).
#   5. Through scheduler-a's published API port, with a token from the generated secrets: a
#      seed, a latency drill (target shortener-drill: the drill worker's own proxy), a
#      benchmark and a backup (verify: restore) of the compose stack's shortener succeed; the
#      ledger says so through scheduler-b's API and `opspoolctl job` in scheduler-a; the
#      backup's archive is on the `backups` volume.
#   6. `docker-compose stop worker-noop` while both replicas may hold sleeping noop jobs:
#      SIGTERM through tini, each worker drains (its jobs succeed) and exits 0.
#   7. Image sizes printed. On exit, always: failing containers' logs (on failure),
#      `docker-compose down -v` (containers, network, named and anonymous volumes), the API
#      service stopped, this run's images removed (OSP_COMPOSE_KEEP_IMAGES=1 keeps them: faster
#      reruns), the temporary directory removed. The base image is kept, as test_image.sh does.
# Needs no server of the suite. Skipped (77), saying why, where podman cannot run containers,
# or docker-compose, jq, curl or python3-yaml is missing.
set -euo pipefail
T=$(mktemp -d /tmp/osp-compose.XXXXXX)
# lib.sh's TMP is this directory (removed on exit); no key prefix: the stack has its own Redis.
export OSP_TEST_TMP=$T OSP_PREFIX=${OSP_PREFIX:-}
. "$OSP_SRC_DIR/tests/support/lib.sh"
trap 'rm -rf "$T"' EXIT
# shellcheck source=tests/deploy/image_lib.sh
. "$SRC/tests/deploy/image_lib.sh" # PODMAN, RUNOPTS, BASE; exits 77 where podman cannot run

command -v docker-compose >/dev/null || { say "docker-compose not installed (apt-get install docker-compose)"; exit 77; }
for t in jq curl; do command -v $t >/dev/null || { say "$t not installed"; exit 77; }; done
PY=python3
$PY -c 'import yaml' 2>/dev/null || PY=/usr/bin/python3
$PY -c 'import yaml' 2>/dev/null || { say "no python3 with PyYAML (apt-get install python3-yaml)"; exit 77; }

P=$T/project
PROJECT=ospcompose$$
# This run's tags (removed on exit; another run may be using its own), or fixed ones kept.
tag=test-$$
[ "${OSP_COMPOSE_KEEP_IMAGES:-0}" != 1 ] || tag="test"
IMG=localhost/opspool:compose-$tag
IMG_REDIS=localhost/opspool-standin-redis:$tag
IMG_PG=localhost/opspool-standin-postgres:$tag
SVC_PID=
HC_PID=
UP=
export DOCKER_HOST=unix://$T/api.sock
export COMPOSE_HTTP_TIMEOUT=700 # longer than any stop_grace_period of the file
DC=(docker-compose --compatibility --ansi never -p "$PROJECT" --project-directory "$P" -f "$P/docker-compose.yml")

ctrs() { "${PODMAN[@]}" ps -a --format '{{.Names}}' --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null | sort; }
cleanup() {
    local rc=$? n vols
    set +eu
    if [ -n "$UP" ]; then
        if [ "$rc" != 0 ]; then # a failure: every container's state, the failing ones' last words
            echo "--- containers of $PROJECT" >&2
            "${PODMAN[@]}" ps -a --filter "label=com.docker.compose.project=$PROJECT" \
                --format '{{.Names}}  {{.Status}}' >&2
            for n in $(ctrs); do
                local st
                st=$("${PODMAN[@]}" inspect --format '{{.State.Status}} {{.State.ExitCode}} {{.State.Health.Status}}' "$n" 2>/dev/null)
                case "$st" in "running 0 "*) [ "${st##* }" != unhealthy ] && continue ;; esac
                echo "--- $n ($st), last 25 lines" >&2
                "${PODMAN[@]}" logs "$n" 2>&1 | tail -25 >&2
            done
            for n in ${FOCUS:-}; do
                echo "--- ${PROJECT}_${n}_1, last 25 lines" >&2
                "${PODMAN[@]}" logs "${PROJECT}_${n}_1" 2>&1 | tail -25 >&2
            done
        fi
        # shellcheck disable=SC2046 # names without spaces, one word each
        vols=$("${PODMAN[@]}" inspect --format '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}' $(ctrs) 2>/dev/null)
        timeout 300 "${DC[@]}" down -v --remove-orphans -t 10 >"$T/down.out" 2>&1 ||
            { echo "docker-compose down failed:" >&2; tail -5 "$T/down.out" >&2; }
        # Whatever down left behind (it should be nothing): containers, volumes, the network.
        for n in $(ctrs); do "${PODMAN[@]}" rm -f -v -t 0 "$n" >/dev/null 2>&1; done
        for n in $vols; do
            "${PODMAN[@]}" volume exists "$n" || continue
            "${PODMAN[@]}" volume rm -f "$n" >/dev/null 2>&1
            echo "# removed a volume docker-compose down left: $n" >&2
        done
        "${PODMAN[@]}" network rm -f "${PROJECT}_default" >/dev/null 2>&1
    fi
    [ -z "$HC_PID" ] || kill "$HC_PID" 2>/dev/null
    [ -z "$SVC_PID" ] || { kill "$SVC_PID" 2>/dev/null; wait "$SVC_PID" 2>/dev/null; }
    if [ "${OSP_COMPOSE_KEEP_IMAGES:-0}" != 1 ]; then
        "${PODMAN[@]}" rmi "$IMG" "$IMG_REDIS" "$IMG_PG" >/dev/null 2>&1
    fi
    rm -rf "$T"
    cleanup_pids
    exit "$rc"
}
trap cleanup EXIT

# ---- 1. the API socket ----
# containers.conf of the service only: docker-compose cannot pass podman's --runtime/--ulimit.
# (CONTAINERS_CONF replaces the system's containers.conf for this process; none exists here.)
cat >"$T/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
[engine]
runtime = "runc"
EOF
CONTAINERS_CONF=$T/containers.conf "${PODMAN[@]}" system service --time=0 "unix://$T/api.sock" \
    >"$T/service.out" 2>&1 &
SVC_PID=$!
wait_until 30 curl -fsS --unix-socket "$T/api.sock" http://podman/_ping ||
    fail "podman system service did not answer: $(tail -3 "$T/service.out")"
ok "podman API service on $T/api.sock ($(curl -fsS --unix-socket "$T/api.sock" http://podman/version | jq -r .Version))"

# ---- 2. images ----
osp_base_image
osp_build_image "$IMG" "$T/opspool-build.out"
osp_podman_build "$T/redis-build.out" -f "$SRC/deploy/docker/datastores/Dockerfile.redis" \
    -t "$IMG_REDIS" "$SRC/deploy/docker/datastores"
osp_podman_build "$T/pg-build.out" -f "$SRC/deploy/docker/datastores/Dockerfile.postgres" \
    -t "$IMG_PG" "$SRC/deploy/docker/datastores"
ok "images built: $IMG, stand-ins $IMG_REDIS and $IMG_PG"

# ---- 3. the project directory ----
mkdir -p "$P/deploy/docker" "$P/deploy/keda" "$P/deploy/local"
cp -p "$SRC/deploy/docker/init-secrets.sh" "$SRC/deploy/docker/postgres-init.sh" "$P/deploy/docker/"
cp -p "$SRC/deploy/keda/redis-users.acl" "$P/deploy/keda/"
cp -p "$SRC/deploy/local/schedules.json" "$P/deploy/local/"
bash "$P/deploy/docker/init-secrets.sh" 2>"$T/init-secrets.out" || fail "init-secrets.sh: $(tail -3 "$T/init-secrets.out")"
TOKEN=$(grep -v '^#' "$P/deploy/docker/secrets/opspool_api_tokens" | head -n1)
[ -n "$TOKEN" ] || fail "no API token in the generated secrets"
PORT_A=$(free_port); PORT_B=$(free_port); PORT_S=$(free_port)
cat >"$T/map.json" <<EOF
{"images": {"redis:7.2-bookworm": "$IMG_REDIS", "postgres:15-bookworm": "$IMG_PG", "opspool:dev": "$IMG"},
 "ports": {"8080": $PORT_A, "8081": $PORT_B, "8090": $PORT_S}}
EOF
$PY "$SRC/tests/deploy/compose_local.py" write "$SRC/docker-compose.yml" "$P/docker-compose.yml" "$T/map.json" ||
    fail "compose_local.py write"
docker-compose --compatibility --project-directory "$P" -f "$SRC/docker-compose.yml" config >"$T/orig.cfg" 2>"$T/config.err" ||
    fail "docker-compose config of docker-compose.yml: $(tail -5 "$T/config.err")"
"${DC[@]}" config >"$T/local.cfg" 2>"$T/config.err" || fail "docker-compose config of the local copy: $(tail -5 "$T/config.err")"
$PY "$SRC/tests/deploy/compose_local.py" compare "$T/orig.cfg" "$T/local.cfg" "$T/map.json" >"$T/compare.out" ||
    fail "the local copy changes more than images and ports"
say "$(cat "$T/compare.out")"
ok "the compose file run is docker-compose.yml but for its images and published ports"

# ---- 4. up ----
# health_driver — what podman's systemd timers would do: `podman healthcheck run` for every
# running container of the project with a health check, every interval of its own (first
# check one interval after it is first seen, as Docker does).
health_driver() {
    set +e
    local now id iv m
    declare -A due every
    while :; do
        now=$(date +%s)
        for id in $("${PODMAN[@]}" ps -q --no-trunc --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null); do
            if [ -z "${every[$id]:-}" ]; then
                iv=$("${PODMAN[@]}" inspect --format '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Interval}}{{end}}' "$id" 2>/dev/null)
                case $iv in # a Go duration: 500ms, 5s, 1m30s
                *ms | *us | *µs | *ns) iv=1 ;;
                *m*s) m=${iv%%m*}; iv=${iv#*m}; iv=${iv%s}; iv=$((m * 60 + ${iv%%.*})) ;;
                *s) iv=${iv%s}; iv=${iv%%.*} ;;
                *) iv=0 ;; # no health check
                esac
                every[$id]=${iv:-0}
                due[$id]=$((now + ${iv:-0}))
            elif [ "${every[$id]}" -gt 0 ] && [ "$now" -ge "${due[$id]}" ]; then
                due[$id]=$((now + every[$id]))
                timeout 30 "${PODMAN[@]}" healthcheck run "$id" >/dev/null 2>&1 &
            fi
        done
        sleep 1
    done
}
health_driver &
HC_PID=$!

UP=1
t0=$SECONDS
timeout 600 "${DC[@]}" up -d >"$T/up.log" 2>&1 || fail "docker-compose up: $(tail -15 "$T/up.log")"
ok "docker-compose up -d: $(ctrs | wc -l) containers in $((SECONDS - t0)) s"
say "$("${PODMAN[@]}" ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}}  {{.Status}}')"
want="postgres redis redis-cache scheduler-a scheduler-b shortener worker-backup worker-benchmark worker-drill worker-noop worker-noop worker-seed"
got=$("${PODMAN[@]}" ps --filter "label=com.docker.compose.project=$PROJECT" \
    --format '{{index .Labels "com.docker.compose.service"}}' | sort | xargs)
assert_eq "$want" "$got" "every service runs (worker-noop twice: deploy.replicas through --compatibility)"
svc_ctr() { echo "${PROJECT}_$1_${2:-1}"; }
health() { "${PODMAN[@]}" inspect --format '{{.State.Health.Status}}' "$(svc_ctr "$@")"; }
for s in redis postgres scheduler-a; do
    assert_eq healthy "$(health "$s")" "$s is healthy (depends_on service_healthy held the rest back)"
done
assert_eq "10001:10001 true" "$("${PODMAN[@]}" inspect --format '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}' \
    "$(svc_ctr worker-backup)")" "workers run as 10001 on a read-only root"
assert_eq "536870912 2000000000" "$("${PODMAN[@]}" inspect --format '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}' \
    "$(svc_ctr worker-benchmark)")" "worker-benchmark's deploy.resources.limits applied (512M, 2 CPUs)"
# The stand-in's initialization, as the official image's: postgres-init.sh ran once, and other
# containers must give a password (the server's own loopback is trusted, as in the official image).
FOCUS=postgres
pglog=$("${PODMAN[@]}" logs "$(svc_ctr postgres)" 2>&1)
grep -q 'running /docker-entrypoint-initdb.d/10-opspool.sh' <<<"$pglog" ||
    fail "postgres did not run its init script: $(tail -n 5 <<<"$pglog")"
pgout=$("${DC[@]}" exec -T postgres psql "host=postgres user=shortener dbname=shortener password=wrong" -c 'SELECT 1' 2>&1) &&
    fail "a wrong password is accepted from the network: $pgout"
grep -q 'password authentication failed' <<<"$pgout" || fail "postgres over the network: $pgout"
ok "postgres: its init script ran on the empty data directory; password authentication over the network"
FOCUS=

# No migrations service: the schedulers migrate the ledger at their start. Once they are up,
# every migration of the source is applied, and `opspoolctl migrate` finds nothing pending.
FOCUS="scheduler-a scheduler-b"
ledger_versions() { # the applied versions and the latest applied_at
    "${DC[@]}" exec -T postgres psql -U postgres -d opspool -XAtc \
        "SELECT string_agg(version::text, ' ' ORDER BY version) || ' @ ' || max(applied_at)
           FROM opspool.schema_migrations" 2>&1 | tr -d '\r'
}
want_v=$(for f in "$SRC"/common/sql/[0-9]*.sql; do f=${f##*/}; f=${f%%_*}; echo $((10#$f)); done | sort -n | xargs)
before=$(ledger_versions) || fail "the ledger's schema_migrations: $before"
assert_eq "$want_v" "${before%% @ *}" "the schedulers applied every ledger migration (common/sql/) at their start"
# A process exec'd into the container asks the network's DNS for "postgres" afresh; on a
# loaded machine podman's resolver has answered "temporary failure" once (seen in CI), so a
# name-resolution failure is retried, boundedly; any other failure fails at once.
for try in 1 2 3 4 5 6 7 8 9 10; do
    rc=0
    mig=$("${DC[@]}" exec -T scheduler-a opspoolctl migrate 2>&1 | tr -d '\r') || rc=$?
    [ "$rc" -ne 0 ] && [[ $mig == *"could not translate host name"* ]] && [ "$try" -lt 10 ] || break
    sleep 1
done
[ "$rc" -eq 0 ] || fail "opspoolctl migrate in scheduler-a: $mig"
assert_eq "ledger schema is up to date" "$mig" "opspoolctl migrate in scheduler-a"
assert_eq "$before" "$(ledger_versions)" "opspoolctl migrate after up is a no-op (no migration pending, none re-applied)"
ok "no migrations service needed: the schedulers migrated at start; opspoolctl migrate has nothing to do"
FOCUS=

URL=http://127.0.0.1:$PORT_A
URL_B=http://127.0.0.1:$PORT_B
wait_until 60 curl -fsS "$URL_B/healthz" || fail "scheduler-b not answering on $URL_B"
wait_until 60 curl -fsS "http://127.0.0.1:$PORT_S/health" || fail "the shortener not answering on port $PORT_S"
ok "published ports: scheduler-a $PORT_A, scheduler-b $PORT_B, shortener $PORT_S"
api() { curl -fsS -H "Authorization: Bearer $TOKEN" "$@"; }
api "$URL/v1/queues" | jq -e . >/dev/null || fail "GET /v1/queues with the generated token"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/queues")
assert_eq 401 "$code" "the API refuses a request without the token"

# ---- 5. jobs through the API ----
submit() { # submit JSON — prints the job id
    local out id
    out=$(curl -sS -H "Authorization: Bearer $TOKEN" -X POST "$URL/v1/jobs" \
        -H 'Content-Type: application/json' --data-binary "$1" 2>&1) || fail "POST /v1/jobs: $out"
    id=$(jq -r '.id // empty' <<<"$out" 2>/dev/null) || true
    [ -n "$id" ] || fail "POST /v1/jobs refused $(jq -c .kind <<<"$1"): $out"
    echo "$id"
}
state() { api "$1/v1/jobs/$2" | jq -r .state; }
# wait_job ID WHAT SECONDS — until the job ends; it must have succeeded.
wait_job() {
    local end=$((SECONDS + $3)) s
    while :; do
        s=$(state "$URL" "$1" 2>/dev/null || true)
        case $s in succeeded | failed | dead | cancelled) break ;; esac
        [ $SECONDS -lt $end ] || fail "$2 did not finish within $3 s: $s"
        sleep 0.5
    done
    [ "$s" = succeeded ] || fail "$2 $1: $s: $(api "$URL/v1/jobs/$1" | jq -c '[.attempts[]? | .error]')"
    ok "$2 succeeded in the compose stack ($1)"
}
FOCUS="worker-seed"
seed=$(submit '{"kind": "seed", "payload": {"target": "shortener", "seed": 7, "scale": 1}}')
wait_job "$seed" seed 180
drill=$(submit '{"kind": "drill", "max_attempts": 1, "payload": {"target": "shortener-drill",
  "fault": {"type": "latency", "duration_s": 2, "latency_ms": 50},
  "probe": {"interval_ms": 100, "timeout_ms": 1000},
  "hypothesis": {"min_availability": 0.5, "max_time_to_recover_ms": 5000}}}')
bench=$(submit '{"kind": "benchmark", "max_attempts": 1, "payload": {"target": "shortener",
  "lanes": [{"name": "smoke", "model": "closed", "connections": 2, "duration_s": 2,
             "requests_mix": [{"path": "/health"}]}]}}')
backup=$(submit '{"kind": "backup", "payload": {"target": "shortener", "verify": "restore"}}')
FOCUS="worker-drill"; wait_job "$drill" "latency drill" 180
FOCUS="worker-benchmark"; wait_job "$bench" benchmark 180
FOCUS="worker-backup"; wait_job "$backup" "backup (verify: restore)" 240
FOCUS=
for id in "$seed" "$drill" "$bench" "$backup"; do
    [ "$(state "$URL_B" "$id")" = succeeded ] || fail "scheduler-b does not see $id succeeded"
done
ok "scheduler-b reads the same ledger: the four jobs succeeded"
ctl=$("${DC[@]}" exec -T scheduler-a opspoolctl --json job "$backup" 2>&1) || fail "opspoolctl job in scheduler-a: $ctl"
assert_eq succeeded "$(jq -r .state <<<"$ctl")" "opspoolctl job in scheduler-a (the ledger through its own secrets)"
archive=$("${DC[@]}" exec -T worker-backup find /var/lib/opspool/backups/shortener -name '*.dump' -size +0 2>&1 | tr -d '\r' | head -n1)
case $archive in /var/lib/opspool/backups/shortener/*.dump) ;; *) fail "no archive under the backups volume in worker-backup: $archive" ;; esac
vol=$("${PODMAN[@]}" volume inspect --format '{{.Mountpoint}}' "${PROJECT}_backups") || fail "no volume ${PROJECT}_backups"
[ -s "$vol/${archive#/var/lib/opspool/backups/}" ] || fail "the archive is not on the ${PROJECT}_backups volume ($vol)"
ok "the backup's archive is on the backups volume: ${archive#/var/lib/opspool/backups/}"

# ---- 6. SIGTERM: worker-noop drains ----
FOCUS="worker-noop"
n1=$(submit '{"kind": "noop", "max_attempts": 1, "payload": {"sleep_ms": 8000}}')
n2=$(submit '{"kind": "noop", "max_attempts": 1, "payload": {"sleep_ms": 8000}}')
both_running() { [ "$(state "$URL" "$n1")" = running ] && [ "$(state "$URL" "$n2")" = running ]; }
wait_until 30 both_running || fail "the noop jobs did not start: $(state "$URL" "$n1") $(state "$URL" "$n2")"
t0=$SECONDS
"${DC[@]}" stop worker-noop >"$T/stop.log" 2>&1 || fail "docker-compose stop worker-noop: $(tail -5 "$T/stop.log")"
took=$((SECONDS - t0))
drained=0
for i in 1 2; do
    c=$(svc_ctr worker-noop "$i")
    assert_eq "exited 0" "$("${PODMAN[@]}" inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$c")" \
        "worker-noop #$i exits 0 on SIGTERM (through tini)"
    line=$("${PODMAN[@]}" logs "$c" 2>&1 | grep '"msg":"drained: ' | tail -n1) || true
    [ -n "$line" ] || fail "worker-noop #$i did not log its drain: $("${PODMAN[@]}" logs "$c" 2>&1 | tail -3)"
    k=$(sed -E 's/.*"msg":"drained: ([0-9]+) succeeded.*/\1/' <<<"$line")
    drained=$((drained + k))
done
assert_eq "succeeded succeeded" "$(state "$URL" "$n1") $(state "$URL" "$n2")" \
    "the noop jobs running at SIGTERM finished before their workers exited"
assert_eq 2 "$drained" "the workers' drain lines count the two jobs"
ok "worker-noop drained and stopped in $took s (stop_grace_period 55 s)"
FOCUS=

# ---- 7. sizes ----
for i in "$IMG" "$IMG_REDIS" "$IMG_PG"; do
    say "image $i: $(osp_image_mb "$i") MiB"
done
finish
