#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An interrupted bulk submit: `opspoolctl submit --count N` gets SIGINT part-way. It finishes
# the chunk in hand (ledger rows and envelopes), stops, says how many of N it submitted, and
# exits 3; the ledger and the queue then hold exactly those, every row with its envelope —
# no half-written chunk left for the reconciler.
. "$OSP_SRC_DIR/tests/support/lib.sh"

"$CTL" migrate >/dev/null
N=400000
"$CTL" submit noop --count "$N" >"$TMP/submit.out" 2>"$TMP/submit.err" &
S=$!
wait_ge 60 2000 q "SELECT count(*) FROM opspool.jobs" || fail "the submit never got going"
kill -INT "$S"
wait_exit "$S" 60
assert_eq 3 "$EXIT_RC" "exit 3: stopped part-way, stderr says what was done"
grep -E "^opspoolctl: interrupted: [0-9]+ of $N jobs submitted \([0-9]+ recorded in the ledger, [0-9]+ of them queued\); the other [0-9]+ were never written; first id [0-9a-f-]{36}$" "$TMP/submit.err" >/dev/null ||
    fail "unexpected report: $(cat "$TMP/submit.err")"
got=$(sed -E 's/^opspoolctl: interrupted: ([0-9]+) of.*/\1/' "$TMP/submit.err")
[ "$got" -lt "$N" ] || fail "it was not interrupted: $got"
assert_eq "$got" "$(q "SELECT count(*) FROM opspool.jobs")" "the ledger holds exactly the $got reported"
assert_eq "$got" "$(rcli LLEN "$P:queue:noop")" "every recorded job is queued: no chunk left half-written"
finish
