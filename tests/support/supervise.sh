#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# supervise.sh DELAY_S CMD... — the "local supervisor" of drill tests: runs CMD, and whenever
# it exits starts it again after DELAY_S seconds. SIGTERM stops CMD and the supervisor.
set -u
delay=${1:?delay}; shift
child=
stop() { [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0; }
trap stop TERM INT
while :; do
    "$@" &
    child=$!
    wait "$child"
    sleep "$delay" &
    wait $!
done
