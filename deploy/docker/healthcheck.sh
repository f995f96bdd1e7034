#!/bin/sh
# SPDX-License-Identifier: MIT
# opspool-healthcheck — the image's HEALTHCHECK: GET /healthz on the port of OSP_HTTP_ADDR
# (host:port or [v6]:port; default port 8080), on loopback, 2 s budget. Exit 0 = healthy.
# Liveness only: readiness (Redis and PostgreSQL reachable) is /readyz, used by Kubernetes
# readiness probes and by tests, not by Docker (an unhealthy Docker container is not
# restarted, and a backend outage must not look like a broken process).
addr=${OSP_HTTP_ADDR:-0.0.0.0:8080}
port=${addr##*:}
case $port in
'' | *[!0-9]*) port=8080 ;;
esac
exec curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${port}/healthz"
