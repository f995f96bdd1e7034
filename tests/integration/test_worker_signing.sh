#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Signing key rotation end to end (docs/security.md): during the overlap a worker with
# OSP_SIGNING_KEY=new and OSP_SIGNING_KEY_OLD=old runs envelopes signed with either key;
# unsigned and forged envelopes are dead-lettered and never run; after the overlap (old key
# removed) an envelope signed with the old key is dead-lettered as "bad signature".
. "$OSP_SRC_DIR/tests/support/lib.sh"
OLD=old-$RANDOM$RANDOM; NEW=new-$RANDOM$RANDOM
"$CTL" migrate >/dev/null || fail "migrate"
sub() { env "$@" "$CTL" submit noop --payload '{"sleep_ms": 10}'; }
a=$(sub OSP_SIGNING_KEY="$OLD")             # an old producer, mid-rollout
b=$(sub OSP_SIGNING_KEY="$NEW")             # an upgraded producer
c=$(sub OSP_SIGNING_KEY=)                   # unsigned
d=$(sub OSP_SIGNING_KEY=forged-$RANDOM)     # forged
start_worker w1 OSP_SIGNING_KEY="$NEW" OSP_SIGNING_KEY_OLD="$OLD" OSP_WORKER_KINDS=noop
W1=$LAST_PID
wait_eq 30 succeeded job_state "$a" || fail "old-key job during the overlap: $WAIT_GOT"
ok "overlap: an envelope signed with the old key runs"
wait_eq 30 succeeded job_state "$b" || fail "new-key job: $WAIT_GOT"
ok "overlap: an envelope signed with the new key runs"
wait_eq 30 2 rcli LLEN "$P:dead:noop" || fail "unsigned + forged not dead-lettered (dead list: $WAIT_GOT)"
dead=$(rcli LRANGE "$P:dead:noop" 0 -1 | tr -c '[:print:]\n' '.')
grep -q "bad signature" <<<"$dead" || fail "no 'bad signature' reason: $dead"
grep -qi "unsigned" <<<"$dead" || fail "no 'unsigned' reason: $dead"
[ "$(q "SELECT count(*) FROM opspool.job_attempts WHERE job_id IN ('$c', '$d')")" = 0 ] || fail "an unverified envelope reached the ledger"
ok "unsigned and forged envelopes were dead-lettered and never ran"
kill -TERM "$W1"; wait_exit "$W1" 30

# After the overlap: only the new key.
e=$(sub OSP_SIGNING_KEY="$OLD")
start_worker w2 OSP_SIGNING_KEY="$NEW" OSP_WORKER_KINDS=noop
W2=$LAST_PID
wait_eq 30 3 rcli LLEN "$P:dead:noop" || fail "old-key envelope not dead-lettered after the overlap"
rcli LINDEX "$P:dead:noop" 0 | tr -c '[:print:]\n' '.' | grep -q "bad signature" || fail "reason is not bad signature"
[ "$(q "SELECT count(*) FROM opspool.job_attempts WHERE job_id = '$e'")" = 0 ] || fail "old-key job ran after the overlap"
ok "after the overlap an old-key envelope is dead-lettered as bad signature"
kill -TERM "$W2"; wait_exit "$W2" 30; assert_eq 0 "$EXIT_RC" "worker exits cleanly"
finish
