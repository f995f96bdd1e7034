#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bad input, table-driven, over the scheduler's API and opspoolctl: bytes no well-behaved
# client sends (NUL and control bytes, raw and percent-encoded; %ff; bad escapes), heads and
# bodies over every limit, unknown or repeated query parameters, unknown kinds, names and
# ids outside their grammar, times outside 1970..9999, bad listen addresses. Every answer
# must be the documented status with a JSON error body, and nothing may change: the ledger's
# jobs and schedules, the Redis keys, and the 5xx / PostgreSQL / Redis error counters.
. "$OSP_SRC_DIR/tests/support/lib.sh"
. "$OSP_SRC_DIR/tests/integration/sched_lib.sh"
RAW=$SRC/tests/support/rawhttp.py

start_scheduler s OSP_RECONCILE_GRACE_S=3600
S=$LAST_PID
URL=$LAST_URL
PORT=${URL##*:}

# What must not change: a schedule, a job, and the counters of server-side trouble.
assert_eq 201 "$(post_json /v1/schedules '{"name": "every-minute", "cron": "* * * * *", "kind": "noop", "payload": {}, "enabled": false}')" \
    "schedule every-minute created (disabled: it must not fire during the test)"
assert_eq 202 "$(post_json /v1/jobs '{"kind": "noop", "run_at": "2999-01-01T00:00:00Z"}')" "a delayed job submitted"
JOB=$(jbody .id)
ledger() { psql "$OSP_PG_DSN" -qAtc "SELECT (SELECT string_agg(id::text || state, ',' ORDER BY id) FROM opspool.jobs) || '|' || (SELECT string_agg(name || enabled::text || cron, ',' ORDER BY name) FROM opspool.schedules)"; }
trouble() { curl -s "$URL/metrics" | grep -E '^opspool_(pg_errors_total|redis_errors_total|http_requests_total\{class="5xx"\})' | sort; }
before_ledger=$(ledger)
before_keys=$(prefix_keys)
before_trouble=$(trouble)
grep -q '^opspool_pg_errors_total 0$' <<<"$before_trouble" ||
    fail "opspool_pg_errors_total is not exported at 0 before the first error: $before_trouble"
ok "label-less counters are exported at 0 from the start"

# The table. Fields ('|'-separated; rawhttp.py syntax: \xNN escapes, "c*N" pads to N bytes):
#   status  code  method  target  extra-headers  body  [message substring]
table=$(cat <<TABLE
400|bad_request|DELETE|/v1/schedules/every-minute%00zzz|||control byte
400|bad_request|GET|/v1/jobs/$JOB%00zz|||control byte
400|bad_request|GET|/v1/jobs/$JOB\x00zz|||control byte
400|bad_request|GET|/v1/schedules/every\x01minute|||control byte
400|bad_request|GET|/v1/schedules/every-minute%0a|||control byte
400|bad_request|GET|/v1/schedules/every-minute%7F|||control byte
400|bad_request|GET|/v1/jobs?kind=noop%00x|||control byte
400|bad_request|GET|/v1/jobs?kind=%1b[31m|||control byte
400|bad_request|GET|/v1/schedules/%zz|||percent-escape
400|bad_request|GET|/v1/schedules/abc%|||percent-escape
400|bad_request|GET|/v1/schedules/abc%4|||percent-escape
400|invalid_request|GET|/v1/schedules/%ff|||invalid schedule name
400|invalid_request|DELETE|/v1/schedules/%ff|||invalid schedule name
400|invalid_request|DELETE|/v1/schedules/%c3%a9t%c3%a9|||invalid schedule name
400|invalid_request|GET|/v1/schedules/a%20b|||invalid schedule name
400|invalid_request|GET|/v1/schedules/a*79|||invalid schedule name
400|invalid_request|GET|/v1/jobs/%ff|||invalid job id
400|invalid_request|POST|/v1/jobs/not-a-job/cancel|||invalid job id
400|invalid_request|POST|/v1/queues/%ff/pause|||invalid kind
400|invalid_request|POST|/v1/queues/NOOP/resume|||invalid kind
400|unknown_kind|POST|/v1/queues/nosuch/pause|||nosuch
400|invalid_request|POST|/v1/dead/%e2%80%8b/retry||{}|invalid kind
400|invalid_request|GET|/v1/jobs?knd=backup|||unknown query parameter "knd"
400|invalid_request|GET|/v1/queues?verbose=1|||unknown query parameter "verbose"
400|invalid_request|GET|/v1/schedules/every-minute?x|||unknown query parameter "x"
400|invalid_request|GET|/v1/jobs?kind=noop&kind=seed|||given twice
400|unknown_kind|GET|/v1/jobs?kind=nosuch|||nosuch
400|invalid_request|GET|/v1/jobs?state=%ff|||state
400|invalid_request|GET|/v1/jobs?before=%ff|||before
400|invalid_request|GET|/v1/jobs?limit=1e3|||limit
414|uri_too_long|GET|/v1/jobs/a*9000|||8192
414|uri_too_long|GET|/v1/jobs?kind=a*20000|||8192
431|header_too_large|GET|/v1/queues|X-Big: a*20000||16384
431|header_too_large|GET|/v1/queues|X-Big: a*26000||16384
413|too_large|POST|/v1/jobs||{"kind": "noop", "payload": {"x": "a*1100000|1048576
400|bad_json|POST|/v1/jobs||{"kind": "noop", "submitted_by": "\xff"}|
400|bad_json|POST|/v1/jobs||{"kind": "noop", "submitted_by": "a\\\\u0000b"}|
400|invalid_request|POST|/v1/jobs||{"kind": "noop", "run_at": "9999-12-31T23:59:59.929905-03:30"}|run_at
400|invalid_request|POST|/v1/jobs||{"kind": "noop", "run_at": "0000-01-01T00:00:00Z"}|run_at
400|invalid_request|POST|/v1/jobs||{"kind": "noop", "run_at": 253402300800000}|run_at
400|invalid_request|POST|/v1/schedules||{"name": "bad\\\\u0001name", "cron": "* * * * *", "kind": "noop"}|name
TABLE
)
n=0
while IFS='|' read -r want code method target extra body msg; do
    [ -n "$want" ] || continue
    n=$((n + 1))
    got=$(printf '%s\t%s\t%s\t%s\n' "$method" "$target" "$extra" "$body" | python3 "$RAW" "$PORT" "$TOKEN")
    IFS=$'\t' read -r st ct rbody <<<"$got"
    what="$method ${target:0:60}${extra:+ [${extra:0:20}]}${body:+ ${body:0:70}}"
    [ "$st" = "$want" ] || fail "$what: status $st, want $want: ${rbody:0:300}"
    case $ct in application/json*) ;; *) fail "$what: Content-Type $ct, not JSON: ${rbody:0:200}" ;; esac
    [ "$(jq -r .error.code <<<"$rbody")" = "$code" ] || fail "$what: code $(jq -r .error.code <<<"$rbody" 2>&1), want $code"
    m=$(jq -r .error.message <<<"$rbody")
    [ -n "$m" ] || fail "$what: empty message"
    [ -z "$msg" ] || grep -qF -- "$msg" <<<"$m" || fail "$what: message '$m' does not mention '$msg'"
    ok "$what -> $want $code"
done <<<"$table"
[ "$n" -ge 40 ] || fail "the table ran $n rows"

assert_eq "$before_ledger" "$(ledger)" "the ledger's jobs and schedules are unchanged"
assert_eq "$before_keys" "$(prefix_keys)" "Redis keys are unchanged"
assert_eq "$before_trouble" "$(trouble)" "no 5xx, PostgreSQL or Redis error was counted"
grep -q "API request answered 503" "$TMP/s.log" && fail "a bad request was answered 503"
assert_eq 200 "$(api GET /v1/schedules/every-minute)" "every-minute still answers"

# ---- listen addresses and every program's --help / --print-config ----
for addr in 127.0.0.1:99999 127.0.0.1:65536 127.0.0.1:http 8080; do
    rc=0
    env OSP_HTTP_ADDR=$addr timeout 20 "$SCHED" >"$TMP/addr.log" 2>&1 || rc=$?
    [ "$rc" = 2 ] || fail "OSP_HTTP_ADDR=$addr: exit $rc, want 2: $(cat "$TMP/addr.log")"
    grep -q 'port 0..65535' "$TMP/addr.log" || fail "OSP_HTTP_ADDR=$addr: unclear message: $(cat "$TMP/addr.log")"
    rc=0
    env OSP_HTTP_ADDR=$addr OSP_WORKER_KINDS=noop timeout 20 "$WORKER" >"$TMP/addr.log" 2>&1 || rc=$?
    [ "$rc" = 2 ] || fail "worker OSP_HTTP_ADDR=$addr: exit $rc, want 2"
done
ok "scheduler and worker refuse listen addresses outside host:0..65535 at start (exit 2, message names the range)"
rc=0
SHORTENER_ADDR=127.0.0.1:99999 SHORTENER_PG_DSN="$OSP_PG_DSN" timeout 20 "$BIN/tools/opspool-shortener" \
    >"$TMP/addr.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -q '0..65535' "$TMP/addr.log" || fail "shortener accepted port 99999: $(cat "$TMP/addr.log")"
ok "shortener refuses port 99999"
env -u OSP_HTTP_ADDR "$SCHED" --print-config | grep -qx 'OSP_HTTP_ADDR=127.0.0.1:8080' ||
    fail "--print-config does not show the address the scheduler listens on"
ok "scheduler --print-config shows the effective OSP_HTTP_ADDR"
for p in opspool-scheduler opspool-worker opspoolctl tools/opspool-loadgen tools/opspool-shortener; do
    "$BIN/$p" --help >"$TMP/help.out" 2>&1 || fail "$p --help exits non-zero"
    grep -qi usage "$TMP/help.out" || fail "$p --help prints no usage"
    "$BIN/$p" --print-config >"$TMP/pc.out" 2>&1 || fail "$p --print-config exits non-zero: $(cat "$TMP/pc.out")"
    grep -q '=' "$TMP/pc.out" || fail "$p --print-config prints no settings"
    grep -q 'password\|secret' "$TMP/pc.out" && ! grep -q redacted "$TMP/pc.out" && fail "$p prints a secret"
done
ok "every program answers --help and --print-config with exit 0"

# ---- opspoolctl: the same grammars, exit 2, nothing changed ----
ctl_table=$(cat <<'TABLE'
job	\x01
job	not-a-job
job	\xff
cancel	abc
retry	\xff\xfe
schedules	enable	\xff
schedules	disable	every-minute\x1b[2J
schedules	trigger	a b
pause	NOOP
resume	no\tkind
dead	\xff
dead	retry	noop	\xff
jobs	--kind	\xff
submit	noop	--payload	{"x": "\x07"}
TABLE
)
while IFS= read -r line; do
    [ -n "$line" ] || continue
    mapfile -t args < <(python3 -c 'import sys,ast
for f in sys.argv[1].split("\t"):
    sys.stdout.buffer.write(ast.literal_eval("b\x27" + f + "\x27") + b"\n")' "$line")
    rc=0
    "$CTL" "${args[@]}" >"$TMP/ctl.out" 2>"$TMP/ctl.err" </dev/null || rc=$?
    [ "$rc" = 2 ] || fail "opspoolctl $line: exit $rc, want 2: $(cat "$TMP/ctl.err")"
    [ -s "$TMP/ctl.err" ] || fail "opspoolctl $line: no message"
    ok "opspoolctl $line -> exit 2: $(head -c 100 "$TMP/ctl.err")"
done <<<"$ctl_table"
assert_eq "$before_ledger" "$(ledger)" "opspoolctl changed nothing in the ledger"
assert_eq "$before_keys" "$(prefix_keys)" "opspoolctl changed nothing in Redis"
kill -TERM "$S"
rc=0
wait "$S" || rc=$?
assert_eq 0 "$rc" "the scheduler exits 0 on SIGTERM after all of it (no leak under ASan)"
finish
