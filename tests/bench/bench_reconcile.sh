#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_reconcile.sh [N] — Redis lost with N jobs queued (default 1,000,000): the time from
# the scheduler's start until its reconciler has every envelope back on the queue. Runs the
# chaos row tests/chaos/test_redis_loss_backlog.sh at bench size against the release build
# (OSP_BENCH_BUILD, default build-bench-release) and its own servers; prints its CHAOS line.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${OSP_BENCH_BUILD:-$ROOT/build-bench-release}
N=${1:-1000000}
[ -x "$B/opspool-scheduler" ] || { echo "build $B first (tests/bench/run builds it)" >&2; exit 2; }
dir=$(mktemp -d)
trap 'bash "$ROOT/tests/support/servers.sh" stop "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
bash "$ROOT/tests/support/servers.sh" start "$dir" >/dev/null
OSP_BIN_DIR=$B OSP_SRC_DIR=$ROOT OSP_CHAOS_BACKLOG=$N OSP_CHAOS_RECONCILE_ONLY=1 ASAN_OPTIONS= \
    bash "$ROOT/tests/support/with-servers.sh" "$dir" reconcile_bench \
    bash "$ROOT/tests/chaos/test_redis_loss_backlog.sh" | grep -E '^(# all|CHAOS)'
