#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Poison messages: garbage, a forged signature and an unknown version go to the dead list
# with a reason; the worker never crashes, a good job behind them still runs, and a forged
# envelope never changes the ledger.
. "$OSP_SRC_DIR/tests/support/lib.sh"

"$CTL" migrate >/dev/null
rcli LPUSH "$P:queue:noop" "this is not msgpack" >/dev/null
printf '\x93\x07\xc4\x00\xc4\x01\x80' | rcli -x LPUSH "$P:queue:noop" >/dev/null   # version 7
victim=$(OSP_SIGNING_KEY=wrong-key "$CTL" submit noop)                               # forged
good=$(OSP_SIGNING_KEY=right-key "$CTL" submit noop --payload '{"sleep_ms": 10}')
start_worker w OSP_SIGNING_KEY=right-key

wait_eq 30 succeeded job_state "$good" || fail "good job did not run"
ok "a valid job behind poison messages still runs"
wait_eq 10 3 rcli LLEN "$P:dead:noop" || fail "dead list has $(rcli LLEN "$P:dead:noop") items"
ok "three poison messages dead-lettered"
dead=$(rcli LRANGE "$P:dead:noop" 0 -1 | tr -d '\0')
grep -q "bad signature" <<<"$dead" || fail "no 'bad signature' reason: $dead"
ok "forged envelope dead-lettered as bad signature"
grep -qi "version" <<<"$dead" || fail "no version reason: $dead"
ok "unknown version dead-lettered with its reason"
assert_eq queued "$(q "SELECT state FROM opspool.jobs WHERE id = '$victim'")" "a forged envelope does not change the ledger row it names"
kill -0 "$LAST_PID" || fail "worker crashed"
ok "worker alive"
finish
