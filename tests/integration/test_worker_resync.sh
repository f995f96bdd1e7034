#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A fetch whose reply is lost (connection reset after the server ran it) leaves envelopes in
# the worker's processing list that no slot holds. On every (re)connect the worker compares
# the list with its slots and hands such envelopes back; undecodable ones are dead-lettered.
# Simulated here as leftovers of an earlier life of the same worker id.
. "$OSP_SRC_DIR/tests/support/lib.sh"

"$CTL" migrate >/dev/null
a=$("$CTL" submit noop)
b=$("$CTL" submit noop --payload '{"sleep_ms": 10}')
rcli RPOPLPUSH "$P:queue:noop" "$P:processing:fixed-id" >/dev/null
rcli RPOPLPUSH "$P:queue:noop" "$P:processing:fixed-id" >/dev/null
rcli LPUSH "$P:processing:fixed-id" "not an envelope" >/dev/null
assert_eq 0 "$(rcli LLEN "$P:queue:noop")" "both envelopes sit in the stale processing list"

start_worker w OSP_WORKER_ID=fixed-id
wait_eq 30 succeeded job_state "$a" || fail "orphaned job a never ran: $(job_state "$a")"
wait_eq 30 succeeded job_state "$b" || fail "orphaned job b never ran: $(job_state "$b")"
ok "envelopes left in the processing list are handed back and run"
wait_eq 10 1 rcli LLEN "$P:dead:unknown" || fail "garbage item not dead-lettered"
rcli LRANGE "$P:dead:unknown" 0 -1 | tr -d '\0' | grep -q "processing list" || fail "no reason on the dead record"
ok "an undecodable leftover is dead-lettered with a reason"
assert_eq 0 "$(rcli LLEN "$P:processing:fixed-id")" "processing list empty afterwards"
grep -q "handed back 2 envelopes" "$TMP/w.log" || fail "the hand-back is not logged"
ok "the hand-back is logged"
finish
