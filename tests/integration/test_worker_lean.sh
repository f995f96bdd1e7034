#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The lean worker (docs/decisions/0006-lean-worker-link.md): opspool-worker links the static
# libpq, OpenSSL, hiredis, libev, msgpack-c and jansson, so its only shared library is libc;
# libcurl, libm, libldap and libgssapi_krb5 are opened the first time something needs them.
# Checked here:
#   - NEEDED lists libc only (and the sanitizer runtimes in a sanitizer build);
#   - a running, connected worker serving its endpoints has none of them mapped, and runs jobs;
#   - libpq's LDAP service lookup reaches the real libldap (opened on first use), fails
#     cleanly against a closed port, and the worker keeps running and reports it;
#   - libpq's GSSAPI path (gssencmode=require) reaches the real libgssapi_krb5 and fails with
#     libpq's own message instead of crashing.
# Skipped (77) when the build links the shared libraries (OSP_LEAN_WORKER=OFF).
. "$OSP_SRC_DIR/tests/support/lib.sh"

if ! grep -q '^OSP_LEAN_WORKER:BOOL=ON' "$OSP_BIN_DIR/CMakeCache.txt" 2>/dev/null; then
    say "this build links the worker with the shared libraries (OSP_LEAN_WORKER=OFF)"
    exit 77
fi
command -v objdump >/dev/null || { say "objdump missing"; exit 77; }

needed=$(objdump -p "$WORKER" | awk '$1 == "NEEDED" {print $2}' | sort | tr '\n' ' ')
say "NEEDED: $needed"
# Sanitizer builds add their runtimes, which bring libm along.
allowed='libc\.so\.6|ld-linux.*'
case " $needed" in *" libasan"* | *" libubsan"*) allowed="$allowed|libm\.so\.6|lib(asan|ubsan)\.so\.[0-9]+" ;; esac
bad=$(printf '%s\n' $needed | grep -Ev "^($allowed)\$" || true)
[ -z "$bad" ] || fail "the worker links shared libraries it should not: $bad"
ok "the worker's only shared library is libc (plus sanitizer runtimes)"

heavy='libpq\.so|libssl\.so|libcrypto\.so|libgnutls|libldap|libgssapi|libkrb5|libcurl|libmicrohttpd|libp11-kit'
"$CTL" migrate >/dev/null
start_worker w OSP_HTTP_ADDR=127.0.0.1:0 OSP_HTTP_PORT_FILE="$TMP/w.port"
w=$LAST_PID
port=$(port_from_file "$TMP/w.port" 30) || fail "worker never bound its port: $(tail -5 "$TMP/w.log")"
wait_until 30 curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" || fail "worker never ready: $(tail -5 "$TMP/w.log")"
id=$("$CTL" submit noop)
wait_eq 30 succeeded job_state "$id" || fail "noop job did not succeed: $(job_state "$id")"
curl -fsS "http://127.0.0.1:$port/metrics" | grep -q '^opspool_worker_jobs_total{kind="noop",outcome="succeeded"} 1' ||
    fail "metrics do not count the job"
mapped=$(grep -Eo "$heavy[^ ]*" "/proc/$w/maps" | sort -u | tr '\n' ' ' || true)
[ -z "$mapped" ] || fail "connected worker maps $mapped"
ok "a connected worker runs a job, answers /readyz and /metrics, and maps none of libpq.so, OpenSSL, GnuTLS, LDAP, GSSAPI, libcurl"
kill -TERM "$w"
wait_exit "$w" 30
[ "$EXIT_RC" != timeout ] || fail "worker did not stop"

# LDAP: a pg_service.conf entry resolved through an LDAP URL (libpq's ldapServiceLookup). A
# listener stands in for the LDAP server: it records the connection and closes it, so the
# lookup fails and libpq falls back to its defaults, as it does with libpq.so.
cat >"$TMP/ldap_listener.py" <<'EOF'
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
s.settimeout(60)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
c, _ = s.accept()
open(sys.argv[2], "w").write("connected\n")
c.close()
EOF
timeout 90 python3 "$TMP/ldap_listener.py" "$TMP/ldap.port" "$TMP/ldap.hit" &
PIDS+=("$!")
wait_until 10 test -s "$TMP/ldap.port" || fail "LDAP listener did not start"
cat >"$TMP/pg_service.conf" <<EOF
[osplab]
ldap://127.0.0.1:$(cat "$TMP/ldap.port")/dc=example,dc=org?uniqueMember?one?(cn=osplab)
EOF
start_worker ldap PGSERVICEFILE="$TMP/pg_service.conf" OSP_PG_DSN="service=osplab"
l=$LAST_PID
wait_until 30 test -s "$TMP/ldap.hit" || fail "the LDAP server was never contacted: $(tail -5 "$TMP/ldap.log")"
wait_until 30 grep -q "ledger not ready" "$TMP/ldap.log" || fail "no connection error logged: $(tail -5 "$TMP/ldap.log")"
kill -0 "$l" 2>/dev/null || fail "worker exited after the failed LDAP lookup"
grep -q "libldap" "/proc/$l/maps" || fail "libldap is not mapped"
if grep -q "could not be loaded" "$TMP/ldap.log"; then fail "libldap failed to load: $(grep -m1 'could not' "$TMP/ldap.log")"; fi
ok "an LDAP service lookup opens libldap on first use and contacts the server; its failure leaves the worker retrying"
kill -TERM "$l"
wait_exit "$l" 30
[ "$EXIT_RC" != timeout ] || fail "worker did not stop"

# GSSAPI: with gssencmode=require libpq asks libgssapi_krb5 for credentials as soon as its TCP
# connection is up, before it sends a byte; any listener will do (Redis's loopback port).
tcp=${OSP_TEST_REDIS_TCP#redis://}
dsn="host=${tcp%:*} port=${tcp##*:} dbname=x user=x gssencmode=require connect_timeout=5"
start_worker gss KRB5CCNAME="FILE:$TMP/no-such-ccache" OSP_PG_DSN="$dsn"
g=$LAST_PID
wait_until 30 grep -q "GSSAPI" "$TMP/gss.log" || fail "no GSSAPI error logged: $(tail -5 "$TMP/gss.log")"
kill -0 "$g" 2>/dev/null || fail "worker exited on a GSSAPI failure"
grep -q "libgssapi_krb5" "/proc/$g/maps" || fail "libgssapi_krb5 was not loaded"
if grep -q "could not be loaded" "$TMP/gss.log"; then fail "libgssapi_krb5 failed to load"; fi
say "$(grep -m1 -o 'GSSAPI[^"\\]*' "$TMP/gss.log")"
ok "gssencmode=require opens libgssapi_krb5 on first use and fails with libpq's message"
kill -TERM "$g"
wait_exit "$g" 30
[ "$EXIT_RC" != timeout ] || fail "worker did not stop"
finish
