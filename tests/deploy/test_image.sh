#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The container image, built and run for real with Debian's podman (runc runtime, explicit
# ulimits: what this kind of machine allows).
#   1. A base image made locally (no registry is reachable): `debootstrap --variant=minbase
#      bookworm`, package caches removed, `podman import` as localhost/debian:bookworm-slim
#      (kept between runs: OSP_IMAGE_BASE_DIR, default /var/tmp/opspool-image-base).
#   2. `podman build --format docker` of deploy/docker/Dockerfile on it; the image's size is
#      printed and held to a budget (OSP_IMAGE_BUDGET_MB, default 125: the measured 100 MiB
#      plus a quarter, so that slimming stays enforced). Size: podman's image Size in MiB
#      (2^20 bytes; `podman images` prints the same figure in MB, 10^6 bytes: 105 MB).
#   3. The image runs as uid 10001 with a read-only root filesystem (every container below
#      runs --read-only with a tmpfs /tmp), and its HEALTHCHECK passes on a running scheduler.
#      The built image (not only the Dockerfile's text) carries the org.opencontainers.image.*
#      labels the Dockerfile sets; tzdata is installed and the scheduler in the image accepts a
#      schedule in Europe/Berlin (and refuses an unknown zone); no Perl beyond Debian's
#      Essential perl-base (the perl, perl-modules and libperl packages and pg_wrapper's
#      postgresql-common, ~46 MiB, are absent).
#   4. A stack from the image, host networking on 127.0.0.1, against the suite's Redis (TCP)
#      and PostgreSQL (its socket directory mounted): scheduler, two workers, the reference
#      shortener. Through the API: a seed, a latency drill, a benchmark and a backup of the
#      shortener succeed, and the backup's archive is on the host directory mounted as the
#      workers' backup volume.
#   5. `podman stop` sends SIGTERM through tini: the worker drains and exits 0.
# Skipped (77), saying why, where podman cannot run containers at all.
. "$OSP_SRC_DIR/tests/support/lib.sh"
# shellcheck source=tests/deploy/image_lib.sh
. "$SRC/tests/deploy/image_lib.sh" # PODMAN, RUNOPTS, BASE; exits 77 where podman cannot run
IMG=localhost/opspool:test
BUDGET=${OSP_IMAGE_BUDGET_MB:-125} # measured: 100 MiB (docs/deploy.md)
NAMES=()
CLEANUP_DB=
cleanup_containers() {
    local rc=$? n
    for n in "${NAMES[@]}"; do
        if [ "$rc" != 0 ]; then # a failure: the containers' last words
            echo "--- $n" >&2
            "${PODMAN[@]}" logs "$n" 2>&1 | tail -8 >&2 || true
        fi
        "${PODMAN[@]}" rm -f -v -t 2 "$n" >/dev/null 2>&1 || true # -v: the image's VOLUME too
    done
    # The workload database, on success and failure alike (the suite's server is shared).
    [ -z "$CLEANUP_DB" ] || psql "$OSP_TEST_PG_DSN" -qAtc "$CLEANUP_DB" >/dev/null 2>&1 || true
    cleanup_pids
}
trap cleanup_containers EXIT

# ---- 1. the base image ----
osp_base_image
ok "base image $BASE"

# ---- 2. build ----
osp_build_image "$IMG"
mb=$(osp_image_mb "$IMG")
say "image $IMG: $mb MiB (budget $BUDGET MiB)"
[ "$mb" -le "$BUDGET" ] || fail "image is $mb MiB, over its budget of $BUDGET MiB"
ok "image built: $mb MiB, within $BUDGET MiB"

# ---- 3. user, read-only root, health check ----
run() { "${PODMAN[@]}" run --rm "${RUNOPTS[@]}" --read-only --tmpfs /tmp "$@"; }
assert_eq "10001:10001" "$(run --entrypoint sh "$IMG" -c 'echo "$(id -u):$(id -g)"')" "runs as uid/gid 10001"
run "$IMG" opspoolctl --version >/dev/null || fail "opspoolctl does not run on a read-only root"
run --entrypoint sh "$IMG" -c 'touch /usr/local/bin/x' 2>/dev/null && fail "the root filesystem is writable"
ok "read-only root filesystem: the programs run, nothing can be written outside /tmp"
hc=$("${PODMAN[@]}" image inspect --format '{{.Config.Healthcheck.Test}}' "$IMG")
[[ "$hc" == *opspool-healthcheck* ]] || fail "no HEALTHCHECK in the image: $hc"
assert_eq "tini" "$("${PODMAN[@]}" image inspect --format '{{index .Config.Entrypoint 0}}' "$IMG" | xargs basename)" "tini is PID 1"

# The OCI labels on the built image: what the Dockerfile's LABEL and build arguments make.
label() { "${PODMAN[@]}" image inspect --format "{{index .Labels \"org.opencontainers.image.$1\"}}" "$IMG"; }
version=$(sed -n 's/^ARG OSP_VERSION=//p' "$SRC/deploy/docker/Dockerfile")
[ -n "$version" ] || fail "no default OSP_VERSION in the Dockerfile"
assert_eq opspool "$(label title)" "label org.opencontainers.image.title"
assert_eq "$version" "$(label version)" "label org.opencontainers.image.version (the Dockerfile's default)"
assert_eq test "$(label revision)" "label org.opencontainers.image.revision (--build-arg OSP_REVISION)"
assert_eq MIT "$(label licenses)" "label org.opencontainers.image.licenses"
assert_eq "$BASE" "$(label base.name)" "label org.opencontainers.image.base.name (--build-arg DEBIAN_IMAGE)"
[ -n "$(label description)" ] || fail "no org.opencontainers.image.description label"
ok "OCI labels on the built image: title, description, version, revision, licenses, base.name"

# tzdata, in the image (the scheduler's use of it is checked on the running stack below).
assert_eq "install ok installed" "$(run --entrypoint dpkg-query "$IMG" -W -f '${Status}' tzdata)" "tzdata is installed"
run --entrypoint test "$IMG" -s /usr/share/zoneinfo/Europe/Berlin || fail "no /usr/share/zoneinfo/Europe/Berlin in the image"
ok "tzdata in the image: /usr/share/zoneinfo/Europe/Berlin"

# No Perl but Debian's Essential perl-base (dpkg and debconf need it; ~10 MiB, /usr/bin/perl):
# neither the perl package nor its modules, nor pg_wrapper's postgresql-common that pulls them in.
pkgs=$(run --entrypoint dpkg-query "$IMG" -W -f '${db:Status-Abbrev} ${Package}\n') || fail "dpkg-query in the image: $pkgs"
perlish=$(awk '$1 == "ii" && ($2 == "perl" || $2 ~ /^perl-modules/ || $2 ~ /^libperl/ || $2 ~ /^postgresql-(client-)?common$/) {print $2}' <<<"$pkgs" | xargs)
assert_eq "" "$perlish" "no perl, perl-modules, libperl or postgresql-common package in the image"
run --entrypoint sh "$IMG" -c '! [ -e /usr/share/perl ] && ! [ -e /usr/share/postgresql-common ] && ! command -v pg_wrapper' >/dev/null ||
    fail "Perl's modules or pg_wrapper are in the image"
run "$IMG" pg_dump --version >/dev/null || fail "pg_dump does not run in the image (without pg_wrapper)"
ok "no Perl beyond perl-base: no perl package, modules or pg_wrapper; pg_dump runs without them"

# ---- 4. the stack ----
PGDIR=$OSP_TEST_PG_HOST
REDIS_TCP=$OSP_TEST_REDIS_TCP
[ -n "$PGDIR" ] && [ -n "$REDIS_TCP" ] || { say "the suite's servers do not say where they listen"; exit 77; }
"$CTL" migrate >/dev/null
db=${OSP_PG_DSN##*dbname=}
db=${db%% *}
wl_db="${db}_wl"
q "CREATE DATABASE $wl_db" >/dev/null 2>&1 || psql "$OSP_TEST_PG_DSN" -qAtc "CREATE DATABASE $wl_db" >/dev/null
CLEANUP_DB="DROP DATABASE IF EXISTS $wl_db WITH (FORCE)"
wl_dsn="host=$PGDIR port=$OSP_TEST_PG_PORT user=postgres dbname=$wl_db"
mkdir -p "$TMP/run" "$TMP/backups"
chown 10001:10001 "$TMP/backups" 2>/dev/null || chmod 777 "$TMP/backups"
chmod 755 "$TMP/run"
echo "tok-image-$RANDOM$RANDOM" >"$TMP/run/tokens"
TOKEN=$(cat "$TMP/run/tokens")
chmod 644 "$TMP/run/tokens"
sport=$(free_port); wport=$(free_port); wport2=$(free_port); aport=$(free_port); pport=$(free_port)
cat >"$TMP/run/targets.json" <<JSON
{"targets": {"shortener": {
  "adapter": "local", "base_url": "http://127.0.0.1:$sport", "health_path": "/health",
  "pg_dsn": "$wl_dsn", "backup_root": "/var/lib/opspool/backups",
  "local": {"proxy_listen": "127.0.0.1:$pport", "upstream": "127.0.0.1:$sport"},
  "limits": {"max_duration_s": 60, "allowed_faults": ["latency"]},
  "lanes": {"baseline": {"model": "closed", "connections": 4, "duration_s": 2,
                         "requests_mix": [{"path": "/health"}]}}}}}
JSON
chmod 644 "$TMP/run/targets.json"
common=(--network host "${RUNOPTS[@]}" --read-only --tmpfs /tmp -v "$PGDIR:$PGDIR" -v "$TMP/run:/run/opspool:ro"
        -e OSP_PG_DSN="$OSP_PG_DSN" -e OSP_REDIS_URL="$REDIS_TCP" -e OSP_PREFIX="$OSP_PREFIX"
        -e OSP_TARGETS_FILE=/run/opspool/targets.json -e OSP_LOG_LEVEL=info)
start_ctr() { # start_ctr NAME ARGS... — a detached container of the image
    local name="osp-test-$1-$$"; shift
    NAMES+=("$name")
    "${PODMAN[@]}" run -d --name "$name" "$@" >/dev/null || fail "container $name did not start"
    LAST_CTR=$name
}
start_ctr shortener "${common[@]}" -e SHORTENER_ADDR="127.0.0.1:$sport" -e SHORTENER_PG_DSN="$wl_dsn" \
    "$IMG" opspool-shortener
SHORT=$LAST_CTR
wait_until 30 curl -fs "http://127.0.0.1:$sport/health" || fail "shortener: $("${PODMAN[@]}" logs "$SHORT" 2>&1 | tail -5)"
start_ctr scheduler "${common[@]}" -e OSP_HTTP_ADDR="127.0.0.1:$aport" \
    -e OSP_API_TOKENS_FILE=/run/opspool/tokens -e OSP_RECONCILE_GRACE_S=3600 "$IMG" opspool-scheduler
SCHED_CTR=$LAST_CTR
URL=http://127.0.0.1:$aport
wait_until 30 curl -fs "$URL/healthz" || fail "scheduler: $("${PODMAN[@]}" logs "$SCHED_CTR" 2>&1 | tail -5)"
"${PODMAN[@]}" healthcheck run "$SCHED_CTR" >/dev/null || fail "the image's HEALTHCHECK fails on a running scheduler"
ok "HEALTHCHECK passes on the running scheduler"
# Schedules fire in their IANA zone, read from tzdata: the scheduler in the image takes one in
# Europe/Berlin (on 1 January, CET: 03:00 there is 02:00 UTC) and refuses an unknown zone.
put_schedule() { # put_schedule JSON — prints the HTTP status; the body in $TMP/schedule.json
    curl -sS -o "$TMP/schedule.json" -w '%{http_code}' -X POST "$URL/v1/schedules" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary "$1"
}
tzs="img-tz-$$"
code=$(put_schedule '{"name": "'"$tzs"'", "cron": "0 3 1 1 *", "timezone": "Europe/Berlin", "kind": "noop"}')
assert_eq 201 "$code" "a schedule in Europe/Berlin is accepted ($(head -c 200 "$TMP/schedule.json"))"
next=$(jq -r .next_fire_at "$TMP/schedule.json")
curl -fsS -o /dev/null -X DELETE "$URL/v1/schedules/$tzs" -H "Authorization: Bearer $TOKEN" ||
    fail "DELETE /v1/schedules/$tzs"
[[ "$next" == *-01-01T02:00:00.000Z ]] || fail "03:00 on 1 January in Europe/Berlin is not 02:00 UTC: next_fire_at $next"
code=$(put_schedule '{"name": "'"$tzs"'-bad", "cron": "0 3 1 1 *", "timezone": "Mars/Olympus_Mons", "kind": "noop"}')
assert_eq 400 "$code" "an unknown zone is refused ($(head -c 200 "$TMP/schedule.json"))"
ok "the scheduler in the image reads tzdata: 03:00 Europe/Berlin on 1 January fires at $next"
start_ctr worker1 "${common[@]}" -e OSP_HTTP_ADDR="127.0.0.1:$wport" -e OSP_WORKER_ID=img-w1 \
    -e OSP_WORKER_KINDS=noop,seed,backup,benchmark,drill \
    -v "$TMP/backups:/var/lib/opspool/backups" "$IMG" opspool-worker
W1=$LAST_CTR
start_ctr worker2 "${common[@]}" -e OSP_HTTP_ADDR="127.0.0.1:$wport2" -e OSP_WORKER_ID=img-w2 \
    -e OSP_WORKER_KINDS=noop,seed,backup,benchmark,drill \
    -v "$TMP/backups:/var/lib/opspool/backups" "$IMG" opspool-worker
W2=$LAST_CTR
wait_until 30 curl -fs "http://127.0.0.1:$wport/readyz" || fail "worker1 not ready: $("${PODMAN[@]}" logs "$W1" 2>&1 | tail -5)"
wait_until 30 curl -fs "http://127.0.0.1:$wport2/readyz" || fail "worker2 not ready"

submit() { # submit JSON — prints the job id
    curl -fsS -X POST "$URL/v1/jobs" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        --data-binary "$1" | jq -r .id
}
job_state_api() { curl -fsS "$URL/v1/jobs/$1" -H "Authorization: Bearer $TOKEN" | jq -r .state; }
seed=$(submit '{"kind": "seed", "payload": {"target": "shortener", "seed": 7, "scale": 1}}')
wait_until 120 sh -c "[ \"\$(curl -fsS '$URL/v1/jobs/$seed' -H 'Authorization: Bearer $TOKEN' | jq -r .state)\" = succeeded ]" ||
    fail "seed: $(job_state_api "$seed") $(curl -fsS "$URL/v1/jobs/$seed" -H "Authorization: Bearer $TOKEN" | jq -c .attempts)"
ok "seed succeeded"
drill=$(submit '{"kind": "drill", "max_attempts": 1, "payload": {"target": "shortener",
  "fault": {"type": "latency", "duration_s": 2, "latency_ms": 50},
  "probe": {"interval_ms": 100, "timeout_ms": 1000},
  "hypothesis": {"min_availability": 0.5, "max_time_to_recover_ms": 5000}}}')
bench=$(submit '{"kind": "benchmark", "max_attempts": 1, "payload": {"target": "shortener", "lanes": ["baseline"]}}')
backup=$(submit '{"kind": "backup", "payload": {"target": "shortener", "verify": "list"}}')
for j in "$drill:drill" "$bench:benchmark" "$backup:backup"; do
    id=${j%%:*}
    wait_until 180 sh -c "s=\$(curl -fsS '$URL/v1/jobs/$id' -H 'Authorization: Bearer $TOKEN' | jq -r .state); [ \"\$s\" = succeeded ] || [ \"\$s\" = failed ] || [ \"\$s\" = dead ]" ||
        fail "${j##*:} did not finish: $(job_state_api "$id")"
    assert_eq succeeded "$(job_state_api "$id")" "${j##*:} succeeded in the containers ($(curl -fsS "$URL/v1/jobs/$id" -H "Authorization: Bearer $TOKEN" | jq -c '.attempts[-1].error // empty'))"
done
archive=$(find "$TMP/backups/shortener" -name '*.dump' -size +0 2>/dev/null | head -1)
[ -n "$archive" ] || fail "no backup archive on the mounted volume: $(ls -R "$TMP/backups" | head)"
ok "the backup's archive is on the volume: ${archive#"$TMP"/}"

# ---- 5. SIGTERM through tini: the worker drains ----
"${PODMAN[@]}" stop -t 30 "$W1" >/dev/null
assert_eq 0 "$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$W1")" "worker1 exits 0 on SIGTERM (through tini)"
w1log=$("${PODMAN[@]}" logs "$W1" 2>&1)
grep -q '"msg":"drained: ' <<<"$w1log" || fail "worker1 did not log its drain: $(tail -3 <<<"$w1log")"
ok "worker1 drained on SIGTERM"
finish
