#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lua_shared.sh SRC_DIR — Redis scripts cannot share code, so the helpers that read a job id
# from an envelope and drop a cancelled one (env_id, cancelled) are carried by every script
# that needs them (common/lua/fetch.lua, purge.lua), and the one that gives back a target
# lease (unlease) by settle.lua and reclaim.lua. They must stay identical: a fix made in one
# copy only would let one path hand out a cancelled job or strand a waiting one. Fails on any
# difference.
set -euo pipefail
SRC=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$SRC/common/lua"
extract() { # FILE FUNC — the function's text, from its comment block to its closing "end"
    awk -v f="$2" '
        /^-- / && !in_fn { buf = buf $0 "\n"; next }
        $0 ~ "^local function " f "\\(" { in_fn = 1; out = buf }
        in_fn { out = out $0 "\n" }
        in_fn && /^end$/ { printf "%s", out; exit }
        !in_fn { buf = "" }' "$1"
}
fail=0
for spec in fetch.lua:env_id:purge.lua fetch.lua:cancelled:purge.lua settle.lua:unlease:reclaim.lua; do
    IFS=: read -r home fn copies <<<"$spec"
    ref=$(extract "$home" "$fn")
    [ -n "$ref" ] || { echo "lua_shared: $home has no $fn()" >&2; fail=1; continue; }
    for f in $copies; do
        got=$(extract "$f" "$fn")
        if [ "$got" != "$ref" ]; then
            echo "lua_shared: $fn() in $f differs from $home's:" >&2
            diff <(printf '%s\n' "$ref") <(printf '%s\n' "$got") >&2 || true
            fail=1
        fi
    done
done
[ "$fail" = 0 ] && echo "lua_shared: env_id(), cancelled() (fetch.lua, purge.lua) and unlease() (settle.lua, reclaim.lua) identical"
exit "$fail"
