#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# format.sh SRC_DIR — C sources follow .clang-format (clang-format 14, Debian). Every tracked
# .c/.h file must be formatted, except those in tests/lint/format-exempt.txt: files written
# before the check existed, left as they are so their history stays readable. A ratchet: a
# listed file that becomes clean must leave the list, and no file may join it. Format a file
# with `clang-format -i FILE` when you touch most of it anyway.
set -euo pipefail
SRC=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$SRC"
command -v clang-format >/dev/null || { echo "clang-format missing (deploy/local/deps.sh installs it)" >&2; exit 1; }
exempt=tests/lint/format-exempt.txt
fail=0
while read -r f; do
    listed=false
    grep -qxF "$f" "$exempt" && listed=true
    if clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        if $listed; then
            echo "format: $f is formatted now: remove it from $exempt" >&2
            fail=1
        fi
    elif ! $listed; then
        echo "format: $f is not formatted: clang-format -i $f" >&2
        clang-format --dry-run "$f" 2>&1 | head -6 | sed 's/^/    /' >&2
        fail=1
    fi
done < <(git ls-files '*.c' '*.h' 2>/dev/null)
while read -r f; do
    case "$f" in '#'* | '') continue ;; esac
    [ -f "$f" ] || { echo "format: $exempt names $f, which no longer exists" >&2; fail=1; }
done <"$exempt"
[ "$fail" = 0 ] && echo "format: every C file is formatted but the $(grep -cv '^#' "$exempt") listed in $exempt"
exit "$fail"
