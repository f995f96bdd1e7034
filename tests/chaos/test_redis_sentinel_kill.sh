#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redis under Sentinel: the master SIGKILLed mid-load (tests/chaos/sentinel_failover.sh).
FAULT=kill
. "$OSP_SRC_DIR/tests/chaos/sentinel_failover.sh"
