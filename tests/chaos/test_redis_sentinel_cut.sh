#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redis under Sentinel: the master cut off the network mid-load, then back as a replica
# (tests/chaos/sentinel_failover.sh).
FAULT=cut
. "$OSP_SRC_DIR/tests/chaos/sentinel_failover.sh"
