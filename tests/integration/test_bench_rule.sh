#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The regression rule itself (opspool.bench_judge, common/sql/0007_benchmark_history.sql) on
# result rows written directly into the ledger, so every case is exact: no baseline before 5
# runs; an unchanged run is ok; median and MAD per figure; the relative minimum and the
# absolute floor; throughput and error rate; tails need 1,000 / 10,000 requests and two runs
# in a row; a changed shape starts a new series; runs that failed their thresholds are not a
# baseline; pin and reset. Deterministic: no load, no timing.
. "$(dirname "$0")/../support/lib.sh"

"$CTL" migrate >/dev/null
# row LANE SHAPE REQUESTS ERRORS RPS P50 P99 P999 [PASSED] — one result, 1 s after the previous
# one; prints its job id.
row() {
    local id N
    N=$(($(q "SELECT count(*) FROM opspool.benchmark_results") + 1)) # row runs in $(...): no shell counter
    id=$(printf '00000000-0000-7000-8000-%012d' "$N")
    q "INSERT INTO opspool.benchmark_results (job_id, attempt, target, lane, shape, requests, errors,
         rps, p50_ms, p99_ms, p999_ms, cache_hit_ratio, passed, created_at)
       VALUES ('$id', 1, 'svc', '$1', '$2', $3, $4, $5, $6, $7, $8, 1.0, ${9:-true},
               timestamptz '2026-12-01 00:00:00+00' + $N * interval '1 second')" >/dev/null
    echo "$id"
}
judge() { q "SELECT opspool.bench_judge(r)::text FROM opspool.benchmark_results r WHERE job_id = '$1'"; }
verdict() { judge "$1" | jq -r "$2"; }
S='{"model":"closed"}'

# Ten steady runs: p50 1.00..1.04 ms, rps 1000..1040, p99 5.0..5.2, 20,000 requests.
for i in 0 1 2 3 4 5 6 7 8 9; do
    id=$(row base "$S" 20000 0 $((1000 + i % 5 * 10)) "1.0$((i % 5))" "5.$((i % 3))" "9.$((i % 4))")
    [ "$i" = 3 ] && first4=$id
done
assert_eq "no baseline yet" "$(verdict "$first4" .verdict)" "the 4th run: no baseline yet (5 needed)"
assert_eq "9 ok" "$(verdict "$id" '"\(.baseline.runs) \(.verdict)"')" "the 10th run: judged against the 9 before it, ok"
same=$(row base "$S" 20000 0 1020 1.02 5.1 9.1)
assert_eq "ok 10" "$(verdict "$same" '"\(.verdict) \(.baseline.runs)"')" "an unchanged run is ok against the last 10"
assert_eq "1.02 0.5" "$(verdict "$same" '"\(.figures.p50_ms.baseline) \(.figures.p50_ms.tolerance)"')" \
    "p50: median 1.02 ms, tolerance the 0.5 ms floor (MAD and 15 % are smaller)"
slow=$(row base "$S" 20000 0 1020 1.6 5.1 9.1)
assert_eq "regressed regressed" "$(verdict "$slow" '"\(.verdict) \(.figures.p50_ms.verdict)"')" "p50 +0.58 ms: regressed"
fast=$(row base "$S" 20000 0 1300 1.02 5.1 9.1)
assert_eq "improved improved" "$(verdict "$fast" '"\(.verdict) \(.figures.rps.verdict)"')" "rps +27 %: improved"
drop=$(row base "$S" 20000 0 780 1.02 5.1 9.1)
assert_eq "regressed" "$(verdict "$drop" .figures.rps.verdict)" "rps -24 %: regressed (20 % minimum)"
small=$(row base "$S" 20000 0 850 1.02 5.1 9.1)
assert_eq "ok" "$(verdict "$small" .figures.rps.verdict)" "rps -17 %: within the 20 % minimum"
errs=$(row base "$S" 20000 400 1020 1.02 5.1 9.1)
assert_eq "regressed" "$(verdict "$errs" .figures.error_rate.verdict)" "error rate 2 %: regressed (1 point floor)"
# Tails: one spike is unconfirmed, two in a row regressed.
spike=$(row base "$S" 20000 0 1020 1.02 12.0 9.1)
assert_eq "unconfirmed ok" "$(verdict "$spike" '"\(.figures.p99_ms.verdict) \(.verdict)"')" "one p99 spike: unconfirmed, the run ok"
again=$(row base "$S" 20000 0 1020 1.02 12.0 9.1)
assert_eq "regressed regressed" "$(verdict "$again" '"\(.figures.p99_ms.verdict) \(.verdict)"')" "the second in a row: regressed"
few=$(row base "$S" 500 0 1020 1.02 50 90)
assert_eq "too few requests too few requests" "$(verdict "$few" '"\(.figures.p99_ms.verdict) \(.figures.p999_ms.verdict)"')" \
    "p99 and p99.9 of 500 requests are not judged"
p999few=$(row base "$S" 5000 0 1020 1.02 5.1 90)
assert_eq "too few requests" "$(verdict "$p999few" .figures.p999_ms.verdict)" "p99.9 needs 10,000 requests"
# A changed shape starts its own series.
other=$(row base '{"model":"open"}' 20000 0 1 50 50 50)
assert_eq "no baseline yet 0" "$(verdict "$other" '"\(.verdict) \(.baseline.runs)"')" "another shape: a new series"
# Runs that failed their thresholds are never a baseline.
for i in 1 2 3 4 5; do row bad "$S" 20000 0 1000 1.0 5 9 false >/dev/null; done
b=$(row bad "$S" 20000 0 1000 1.0 5 9)
assert_eq "no baseline yet 0" "$(verdict "$b" '"\(.verdict) \(.baseline.runs)"')" "failed runs are not a baseline"
# Pin one run: the next is compared with it alone; reset: no baseline until 5 new runs.
"$CTL" bench pin svc base "$slow" >/dev/null || fail "bench pin"
p=$(row base "$S" 20000 0 1020 1.02 5.1 9.1)
assert_eq "1 $slow improved" "$(verdict "$p" '"\(.baseline.runs) \(.baseline.pinned) \(.figures.p50_ms.verdict)"')" \
    "pinned: compared with that run alone (p50 1.02 against 1.6: improved)"
assert_eq regressed "$(q "SELECT judge->>'verdict' FROM opspool.benchmark_results WHERE job_id = '$slow'")" \
    "a pin does not rewrite the verdicts already recorded"
"$CTL" bench reset svc base >/dev/null || fail "bench reset"
# The rows carry fixed 2026-12-01 times: move the reset to the last of them.
q "UPDATE opspool.benchmark_baselines SET reset_at = (SELECT max(created_at) FROM opspool.benchmark_results)" >/dev/null
r=$(row base "$S" 20000 0 1020 1.02 5.1 9.1)
assert_eq "no baseline yet" "$(verdict "$r" .verdict)" "reset: runs before it no longer count"
finish
