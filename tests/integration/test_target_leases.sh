#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Target leases (docs/decisions/0008) through the pool: real workers, real drills and
# benchmarks against two stand-in services.
#   1. Two workers, 3 slots each, three drills and three benchmarks per target queued before
#      they start: from the ledger's attempt intervals, nothing overlaps a drill on its own
#      target, while the two targets' jobs do overlap; jobs that found their target busy
#      waited (no slot held) and all ran.
#   2. A benchmark queued while a drill holds its target shows as waiting — in Redis, in
#      opspoolctl queues and job — and starts only after the drill finished.
#   3. A worker holding a drill's lease is killed (SIGKILL): the reaper of another worker hands
#      the drill back and gives back its lease, so the benchmark waiting behind it runs.
# Bounded: every wait has a timeout; every lane a request count; drills last 1-8 s.
. "$OSP_SRC_DIR/tests/support/lib.sh"

HS=$BIN/osp-healthserver
[ -x "$HS" ] || { echo "osp-healthserver not built" >&2; exit 77; }
command -v jq >/dev/null || { echo "jq not installed" >&2; exit 77; }
for t in a b; do
    "$HS" --port 0 --port-file "$TMP/$t.port" >>"$TMP/hs-$t.log" 2>&1 &
    PIDS+=("$!")
done
PA=$(port_from_file "$TMP/a.port" 10) || fail "service a did not start"
PB=$(port_from_file "$TMP/b.port" 10) || fail "service b did not start"
export OSP_TARGETS_FILE=$TMP/targets.json
cat >"$OSP_TARGETS_FILE" <<EOF
{"targets": {
  "a": {"adapter": "local", "base_url": "http://127.0.0.1:$PA", "health_path": "/health",
        "limits": {"max_duration_s": 30, "allowed_faults": ["cpu"], "max_cpu_workers": 1}},
  "b": {"adapter": "local", "base_url": "http://127.0.0.1:$PB", "health_path": "/health",
        "limits": {"max_duration_s": 30, "allowed_faults": ["cpu"], "max_cpu_workers": 1}}}}
EOF
"$CTL" migrate >/dev/null

drill() { # drill TARGET SECONDS
    "$CTL" submit drill --max-attempts 3 --payload "{\"target\": \"$1\",
        \"fault\": {\"type\": \"cpu\", \"duration_s\": $2, \"workers\": 1, \"load\": 10},
        \"probe\": {\"interval_ms\": 100}, \"steady_state\": {\"checks\": 2}, \"recovery\": {\"consecutive\": 2}}"
}
bench() { # bench TARGET
    "$CTL" submit benchmark --max-attempts 3 --payload "{\"target\": \"$1\",
        \"lanes\": [{\"name\": \"l\", \"connections\": 1, \"requests\": 300, \"requests_mix\": [{\"path\": \"/health\"}]}]}"
}
all_succeeded() { [ "$(q "SELECT count(*) FILTER (WHERE state = 'succeeded') = count(*) FROM opspool.jobs")" = t ]; }
# Pairs of attempt intervals on one target where one is a drill and they overlap; and pairs of
# the two targets that overlap.
overlaps_same() {
    q "WITH a AS (SELECT j.id, j.kind, j.payload->>'target' AS t, x.started_at s, x.finished_at f
                  FROM opspool.job_attempts x JOIN opspool.jobs j ON j.id = x.job_id
                  WHERE x.started_at IS NOT NULL AND x.finished_at IS NOT NULL)
       SELECT count(*) FROM a a1 JOIN a a2 ON a1.t = a2.t AND a1.id < a2.id
       WHERE (a1.kind = 'drill' OR a2.kind = 'drill') AND a1.s < a2.f AND a2.s < a1.f"
}
overlaps_across() {
    q "WITH a AS (SELECT j.payload->>'target' AS t, x.started_at s, x.finished_at f
                  FROM opspool.job_attempts x JOIN opspool.jobs j ON j.id = x.job_id)
       SELECT count(*) FROM a a1 JOIN a a2 ON a1.t = 'a' AND a2.t = 'b' AND a1.s < a2.f AND a2.s < a1.f"
}

# ---- 1. many drills and benchmarks, two targets, two workers ----
for i in 1 2 3; do drill a 1 >/dev/null; drill b 1 >/dev/null; done
for i in 1 2 3; do bench a >/dev/null; bench b >/dev/null; done
start_worker w1 OSP_WORKER_KINDS=drill,benchmark OSP_WORKER_SLOTS=3 OSP_WORKER_ID=lease-w1
W1=$LAST_PID
start_worker w2 OSP_WORKER_KINDS=drill,benchmark OSP_WORKER_SLOTS=3 OSP_WORKER_ID=lease-w2
W2=$LAST_PID
wait_until 180 all_succeeded || fail "not all succeeded: $(q "SELECT kind, state, count(*) FROM opspool.jobs GROUP BY 1, 2")"
ok "12 drills and benchmarks on two targets all succeeded"
assert_eq 12 "$(q "SELECT count(*) FROM opspool.job_attempts")" "one attempt each: waiting for a target is not an attempt"
assert_eq 0 "$(overlaps_same)" "no job overlaps a drill on the same target"
n=$(overlaps_across)
[ "$n" -gt 0 ] || fail "the two targets' jobs never overlapped"
ok "the two targets' jobs overlap ($n pairs)"
waits=$(cat "$TMP/w1.log" "$TMP/w2.log" | grep -c "is leased to another job: waiting" || true)
[ "$waits" -gt 0 ] || fail "no job ever waited for its target"
ok "jobs that found their target busy waited ($waits times) and ran later"
assert_eq "" "$(rcli KEYS "$P:lease:*" | tr -d '\n')$(rcli KEYS "$P:waiting:*" | tr -d '\n')" "no lease and no waiting list left behind"

# ---- 2. waiting is visible, and ends when the drill does ----
d=$(drill a 6)
wait_eq 30 running job_state "$d" || fail "drill did not start"
bw=$(bench a)
wait_until 30 eval '[ "$(rcli HGET "$P:job:$bw" state)" = waiting ]' || fail "benchmark never waited: $(rcli HGETALL "$P:job:$bw" | tr '\n' ' ')"
assert_eq a "$(rcli HGET "$P:job:$bw" waiting_for)" "the job hash names the busy target"
assert_eq 1 "$("$CTL" queues --json | jq '.[] | select(.kind == "benchmark") | .waiting')" "opspoolctl queues: WAITING 1 for benchmark"
live=$("$CTL" job "$bw")
grep -q "waiting_for=a" <<<"$live" || fail "opspoolctl job does not show waiting_for: $live"
ok "opspoolctl job shows state=waiting waiting_for=a"
assert_eq queued "$(job_state "$bw")" "the ledger still says queued (nothing ran)"
wait_eq 60 succeeded job_state "$bw" || fail "the waiting benchmark never ran: $(job_state "$bw")"
assert_eq t "$(q "SELECT (SELECT min(started_at) FROM opspool.job_attempts WHERE job_id = '$bw') >=
                        (SELECT max(finished_at) FROM opspool.job_attempts WHERE job_id = '$d')")" "it started after the drill finished"
assert_eq 0 "$("$CTL" queues --json | jq '[.[] | .waiting] | add')" "nothing waiting any more"

# ---- 3. the holder crashes: the reaper gives the lease back ----
kill -TERM "$W1" "$W2"
for p in "$W1" "$W2"; do
    wait_exit "$p" 40
    assert_eq 0 "$EXIT_RC" "worker $p drained and exited 0"
done
start_worker w3 OSP_WORKER_KINDS=drill,benchmark OSP_WORKER_SLOTS=2 OSP_WORKER_ID=lease-w3 OSP_LEASE_MS=2000
W3=$LAST_PID
d2=$(drill b 8)
wait_eq 30 running job_state "$d2" || fail "drill on b did not start"
b2=$(bench b)
wait_until 30 eval '[ "$(rcli HGET "$P:job:$b2" state)" = waiting ]' || fail "benchmark on b never waited"
kill -KILL "$W3"
ok "worker holding b's lease killed (SIGKILL)"
start_worker w4 OSP_WORKER_KINDS=drill,benchmark OSP_WORKER_SLOTS=2 OSP_WORKER_ID=lease-w4 OSP_LEASE_MS=2000
wait_eq 90 succeeded job_state "$b2" || fail "the benchmark behind the dead worker's lease never ran: $(job_state "$b2")"
wait_eq 90 succeeded job_state "$d2" || fail "the recovered drill did not finish: $(job_state "$d2")"
grep -q "lease-w3" <<<"$(q "SELECT worker FROM opspool.job_attempts WHERE job_id = '$d2'")" || fail "no run of the drill on the killed worker"
ok "the reaper handed the drill back and released its lease; both ran"
assert_eq 0 "$(overlaps_same)" "still no overlap with a drill on one target (crash included)"
assert_eq "" "$(rcli KEYS "$P:lease:*" | tr -d '\n')" "no lease left behind"
finish
