#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deps.sh — install the Debian packages opspool builds, tests and runs with, when missing.
# As root it runs apt-get; otherwise through sudo when available, else it prints the line.
set -euo pipefail
PKGS=(build-essential cmake pkg-config python3 curl
      libhiredis-dev libev-dev libmsgpack-dev libjansson-dev libcmocka-dev libmicrohttpd-dev
      libpq-dev libssl-dev libcurl4-openssl-dev
      redis-server redis-sentinel postgresql-15 postgresql-client-15 wrk beanstalkd prometheus
      podman runc debootstrap
      python3-yaml yamllint docker-compose gnuplot-nox clang-format jq
      chromium)  # chromium, node and npm: the console's browser test (tests/browser)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm by command, not by package: a Node.js installed another way (NodeSource's
# nodejs bundles npm and conflicts with Debian's npm package) serves as well.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
SUDO=()
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then SUDO=(sudo); else
        echo "missing packages; run as root: apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages start system-wide servers where systemd runs; the lab starts its own.
