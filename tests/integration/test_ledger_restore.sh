#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A job row the ledger lost (the submit was answered, then PostgreSQL crashed with
# synchronous_commit off, or failed over to a standby that had not received it) while its
# envelope is on the queue. The worker runs the job anyway; its start or outcome matches no
# row; it re-creates the row from the envelope, then records the start and the outcome, and
# only then acks: logged, counted, and marked with a 'ledger.restored' event. Simulated by
# deleting the rows: before the worker sees the jobs, and while one of them runs.
. "$OSP_SRC_DIR/tests/support/lib.sh"

"$CTL" migrate >/dev/null
early=()
for i in 1 2 3; do
    early+=("$("$CTL" submit noop --payload '{"result": {"n": '"$i"'}}' --max-attempts 4)")
done
late=$("$CTL" submit noop --payload '{"sleep_ms": 1500}' --idempotency-key restore-me)
for id in "${early[@]}"; do q "DELETE FROM opspool.jobs WHERE id = '$id'" >/dev/null; done
assert_eq 1 "$(q "SELECT count(*) FROM opspool.jobs")" "three rows lost before any worker saw them"

start_worker w OSP_HTTP_ADDR=127.0.0.1:0 OSP_HTTP_PORT_FILE="$TMP/w.port"
port=$(port_from_file "$TMP/w.port" 30) || fail "worker did not bind its port"
wait_eq 30 running job_state "$late" || fail "the sleeping job never started: $(job_state "$late")"
q "DELETE FROM opspool.jobs WHERE id = '$late'" >/dev/null
ok "the running job's row deleted under it"

for id in "${early[@]}" "$late"; do
    wait_eq 30 succeeded job_state "$id" || fail "job $id: $(job_state "$id")"
done
ok "every job whose row was lost ends succeeded in the ledger"
for id in "${early[@]}"; do
    assert_eq "noop|1|4|1|succeeded|1" \
        "$(q "SELECT j.kind || '|' || j.attempt || '|' || j.max_attempts || '|' || (SELECT count(*) FROM opspool.job_events e WHERE e.job_id = j.id AND e.type = 'ledger.restored') || '|' || (SELECT string_agg(outcome, ',') FROM opspool.job_attempts a WHERE a.job_id = j.id) || '|' || (j.result IS NOT NULL)::int FROM opspool.jobs j WHERE j.id = '$id'")" \
        "job $id re-created from its envelope (kind, attempt, max_attempts), restored event, one attempt row, the result"
done
assert_eq "restore-me|1" "$(q "SELECT idempotency_key || '|' || (SELECT count(*) FROM opspool.job_events e WHERE e.job_id = j.id AND e.type = 'ledger.restored') FROM opspool.jobs j WHERE id = '$late'")" \
    "the running job's row comes back with its idempotency key"
assert_eq 4 "$(grep -c 'the ledger has no row for job' "$TMP/w.log")" "each loss is logged once"
curl -fsS "http://127.0.0.1:$port/metrics" | grep -qx 'opspool_worker_ledger_rows_restored_total 4' ||
    fail "metrics: $(curl -fsS "http://127.0.0.1:$port/metrics" | grep restored)"
ok "the worker counts the rows it re-created"
wait_eq 10 0 rcli LLEN "$P:queue:noop" || fail "queue not empty"
assert_eq 0 "$(rcli LLEN "$P:processing:$(q "SELECT worker FROM opspool.jobs WHERE id = '$late'")")" "nothing left in the worker's list"
finish
