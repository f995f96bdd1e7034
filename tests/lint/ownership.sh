#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ownership.sh SRC_DIR — only common/rq*.c owns Redis keys and commands, only
# common/ledger*.c owns the ledger's SQL (docs/decisions/0007). Fails when:
#   - a product source outside common/rq*.c builds a pool key ("%s:queue:", ...), sends a raw
#     command (osp_rqs_command, redisCommand) — the reference workload
#     (tools/shortener.c) is not opspool's pool and is exempt;
#   - a product source outside common/ledger*.c carries SQL on opspool's schema in a string
#     literal, beyond the lines tests/lint/ownership-allow.txt still allows it (a ratchet: the
#     files not yet moved to ledger_ops.c, with their current count; a count may only fall).
# Tests (tests/) are exempt: they inspect the stores directly on purpose.
set -euo pipefail
SRC=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$SRC"
allow=tests/lint/ownership-allow.txt
fail=0
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -printf '%P\n')
keys='%s:(queue|processing|inflight|workers|worker|delayed|dead|job|paused|unique|cron|epoch)|osp_rqs_command\(|redisCommand'
sql='"[^"]*opspool\.(jobs|job_events|job_attempts|schedules|schedule_firings|audit|ts_iso|ms_ts|benchmark_results|drill_results|seed_runs|backups|restore_jobs|insert_typed|schema_migrations)\b'
for f in "${files[@]}"; do
    case "$f" in
    tests/* | build*/* | tools/shortener.c) continue ;;
    esac
    case "$f" in
    common/rq*.c | common/rq*.h | common/redis.c) ;;
    *)
        if grep -nE "$keys" "$f" | grep -vE '^[0-9]+:\s*(/?\*|//)' >/tmp/ownership.$$ 2>/dev/null; then
            echo "ownership: $f builds Redis keys or sends raw commands (only common/rq*.c may):" >&2
            sed 's/^/    /' /tmp/ownership.$$ >&2
            fail=1
        fi
        ;;
    esac
    case "$f" in
    common/ledger*.c | common/ledger*.h) continue ;;
    esac
    n=$(grep -cE "$sql" "$f" || true)
    [ "$n" -gt 0 ] || continue
    max=$(awk -v f="$f" '$1 == f {print $2}' "$allow")
    if [ -z "$max" ]; then
        echo "ownership: $f has $n line(s) of ledger SQL; SQL belongs in common/ledger_ops.c (named functions in ledger.h):" >&2
        grep -nE "$sql" "$f" | sed 's/^/    /' >&2
        fail=1
    elif [ "$n" -gt "$max" ]; then
        echo "ownership: $f has $n line(s) of ledger SQL, more than the $max still allowed (tests/lint/ownership-allow.txt): move the new SQL into common/ledger_ops.c" >&2
        fail=1
    elif [ "$n" -lt "$max" ]; then
        echo "ownership: $f is down to $n line(s) of ledger SQL (allowed $max): lower its line in $allow" >&2
        fail=1
    fi
done
rm -f /tmp/ownership.$$
while read -r f max; do
    case "$f" in '#'* | '') continue ;; esac
    if [ ! -f "$f" ]; then
        echo "ownership: $allow names $f, which no longer exists: remove the line" >&2
        fail=1
    elif [ "$(grep -cE "$sql" "$f" || true)" = 0 ]; then
        echo "ownership: $f has no ledger SQL left: remove its line from $allow" >&2
        fail=1
    fi
done <"$allow"
[ "$fail" = 0 ] && echo "ownership: Redis keys only in common/rq*.c; ledger SQL only in common/ledger*.c, plus the allowance of $allow ($(grep -cv '^#' "$allow") file(s) left to move)"
exit "$fail"
