#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# TLS to PostgreSQL (docs/security.md): a private PostgreSQL with ssl=on, a self-signed CA and
# a server certificate for 127.0.0.1 made with openssl, listening on 127.0.0.1 only, and a
# pg_hba.conf with `hostssl` rules only (no plain `host`). The worker and the scheduler with
# OSP_PG_DSN="host=127.0.0.1 ... sslmode=verify-full sslrootcert=ca.crt" run a job end to
# end over TLS (pg_stat_ssl shows their sessions encrypted). With sslmode=disable the
# server refuses the connection (pg_hba) and the programs log a clear error; with a CA that
# did not sign the server's certificate, verify-full refuses it.
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"
. "$OSP_SRC_DIR/tests/integration/sec_lib.sh"
command -v openssl >/dev/null || { echo "SKIP: openssl missing"; exit 77; }

sec_pg_init
C=$SEC_PGDIR/certs
mkdir -p "$C" "$TMP/client"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=opspool test CA" \
    -keyout "$C/ca.key" -out "$C/ca.crt" >/dev/null 2>&1 || fail "CA"
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$C/server.key" \
    -out "$C/server.csr" >/dev/null 2>&1 || fail "server CSR"
printf 'subjectAltName=IP:127.0.0.1\n' >"$C/ext"
openssl x509 -req -in "$C/server.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial \
    -days 2 -extfile "$C/ext" -out "$C/server.crt" >/dev/null 2>&1 || fail "server cert"
# A second CA that signed nothing the server holds: verify-full must reject the server.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" \
    -keyout "$TMP/client/other.key" -out "$TMP/client/other.crt" >/dev/null 2>&1 || fail "other CA"
cp "$C/ca.crt" "$TMP/client/ca.crt"
chmod 600 "$C/server.key"
[ ${#RUNAS[@]} -gt 0 ] && chown -R osptest "$C"
ok "self-signed CA and server certificate (SAN IP:127.0.0.1)"

sed -i "s/^listen_addresses = ''/listen_addresses = '127.0.0.1'/" "$SEC_PGDIR/data/postgresql.conf"
cat >>"$SEC_PGDIR/data/postgresql.conf" <<EOF
ssl = on
ssl_cert_file = '$C/server.crt'
ssl_key_file = '$C/server.key'
ssl_min_protocol_version = 'TLSv1.2'
EOF
# TCP only over TLS; the local socket stays for the test's own superuser checks.
cat >"$SEC_PGDIR/data/pg_hba.conf" <<EOF
local   all  all                trust
hostssl all  all  127.0.0.1/32  trust
EOF
sec_pg_start
sec_psql postgres postgres -c "CREATE DATABASE opspool"
export OSP_PG_DSN="host=$SEC_PGDIR port=$SEC_PGPORT user=postgres dbname=opspool" # assertions (q)

TLS_DSN="host=127.0.0.1 port=$SEC_PGPORT dbname=opspool user=postgres sslmode=verify-full sslrootcert=$TMP/client/ca.crt connect_timeout=5"
PLAIN_DSN="host=127.0.0.1 port=$SEC_PGPORT dbname=opspool user=postgres sslmode=disable connect_timeout=5"
BADCA_DSN="host=127.0.0.1 port=$SEC_PGPORT dbname=opspool user=postgres sslmode=verify-full sslrootcert=$TMP/client/other.crt connect_timeout=5"

# psql sanity: the server's rules as configured.
assert_eq t "$(psql "$TLS_DSN" -qAtX -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')" "verify-full over TLS works (psql)"
out=$(psql "$PLAIN_DSN" -qAtX -c 'SELECT 1' 2>&1) && fail "plain TCP accepted: $out"
grep -q 'no pg_hba.conf entry.*no encryption' <<<"$out" || fail "plain TCP refusal: $out"
ok "plain TCP refused by pg_hba (no encryption)"

# ---- the programs over TLS ----
sec_redis_start
export OSP_REDIS_URL=unix://$SEC_REDIS_SOCK
rcli() { redis-cli -s "$SEC_REDIS_SOCK" "$@"; }
start_scheduler sched "OSP_PG_DSN=$TLS_DSN" OSP_RECONCILE_GRACE_S=3600
SCH=$LAST_PID
URL=$LAST_URL
wait_until 30 curl -sf "$URL/readyz" || fail "scheduler not ready over TLS: $(curl -s "$URL/readyz")"
ok "scheduler ready with sslmode=verify-full"
start_worker w1 "OSP_PG_DSN=$TLS_DSN" OSP_WORKER_KINDS=noop OSP_WORKER_SLOTS=1
W1=$LAST_PID
post_json /v1/jobs '{"kind":"noop","payload":{"result":{"tls":true}}}' >/dev/null
J=$(jbody .id)
wait_eq 30 succeeded job_state "$J" || fail "job over TLS: state $WAIT_GOT"
assert_eq 200 "$(api GET "/v1/jobs/$J")" "result read back through the scheduler"
assert_eq true "$(jbody .result.tls)" "job ran end to end with both programs on TLS"
n=$(q "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = 'opspool' AND a.client_addr IS NOT NULL AND s.ssl")
nplain=$(q "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = 'opspool' AND a.client_addr IS NOT NULL AND NOT s.ssl")
[ "$n" -ge 2 ] || fail "expected the scheduler's and the worker's sessions on TLS, got $n"
assert_eq 0 "$nplain" "no unencrypted TCP session ($n encrypted)"
kill -TERM "$W1" "$SCH"
wait_exit "$W1" 30; assert_eq 0 "$EXIT_RC" "worker exits cleanly"
wait_exit "$SCH" 30; assert_eq 0 "$EXIT_RC" "scheduler exits cleanly"

# ---- sslmode=disable: refused by the server, with a clear error in the logs ----
start_worker wplain "OSP_PG_DSN=$PLAIN_DSN" OSP_WORKER_KINDS=noop
WP=$LAST_PID
wait_until 20 grep -q 'no pg_hba.conf entry' "$TMP/wplain.log" || fail "worker log lacks the pg_hba refusal"
grep 'no pg_hba.conf entry' "$TMP/wplain.log" | head -1 | grep -q 'no encryption' || fail "the refusal does not say 'no encryption'"
ok "worker with sslmode=disable: the server refuses it; the log says why"
kill -TERM "$WP" 2>/dev/null; wait_exit "$WP" 40
[ "$EXIT_RC" != 0 ] || fail "worker without a ledger exited 0"
env OSP_HTTP_ADDR=127.0.0.1:0 "OSP_PG_DSN=$PLAIN_DSN" "$SCHED" >>"$TMP/splain.log" 2>&1 &
SP=$!; PIDS+=("$SP")
wait_until 20 grep -q 'no pg_hba.conf entry' "$TMP/splain.log" || fail "scheduler log lacks the pg_hba refusal"
ok "scheduler with sslmode=disable: refused, logged"
kill -TERM "$SP" 2>/dev/null; wait_exit "$SP" 40

# ---- verify-full with the wrong CA: the client refuses the server ----
start_worker wbadca "OSP_PG_DSN=$BADCA_DSN" OSP_WORKER_KINDS=noop
WB=$LAST_PID
wait_until 20 grep -q 'certificate verify failed' "$TMP/wbadca.log" || fail "worker log lacks the certificate failure: $(tail -3 "$TMP/wbadca.log")"
ok "verify-full against a CA that did not sign the server: refused (certificate verify failed)"
kill -TERM "$WB" 2>/dev/null; wait_exit "$WB" 40
finish
