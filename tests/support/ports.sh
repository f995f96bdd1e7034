#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ports.sh — loopback ports for tests and the lab (sourced).
#
# The rule: a server we start binds port 0 and says which port it got (OSP_HTTP_PORT_FILE for
# opspool-scheduler and opspool-worker, SHORTENER_PORT_FILE, osp-healthserver --port-file,
# --port-file for the Python stand-ins); the caller reads it with port_from_file. Nothing else
# can take a port between a pick and a bind that never happen apart.
#
# free_port is for what cannot report (redis-server, postgres, an address a config file must
# name before its server exists, such as a drill's proxy_listen). It returns a port that is
# not in use now and lies below the kernel's ephemeral range (ip_local_port_range), so no
# bind(0) and no outgoing connection elsewhere on the machine is ever given it; only another
# explicit pick could collide, and callers that start a server on it retry on failure.

# free_port — print such a port.
free_port() {
    python3 - <<'PY'
import random, socket
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except OSError:
    lo = 32768
lo = max(lo, 12000)
for _ in range(200):
    p = random.randint(10000, lo - 1)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    raise SystemExit("free_port: no free port below the ephemeral range")
PY
}

# port_from_file FILE SECONDS — wait (bounded) until FILE holds a port number; print it.
# Returns 1 on timeout.
port_from_file() {
    local f=$1 end=$((SECONDS + $2)) p
    while [ $SECONDS -le $end ]; do
        if [ -s "$f" ]; then
            read -r p <"$f" || true
            case $p in '' | *[!0-9]*) ;; *) echo "$p"; return 0 ;; esac
        fi
        sleep 0.05
    done
    return 1
}
