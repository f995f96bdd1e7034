#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""badsentinel.py — a Redis Sentinel that misbehaves, for tests of opspool's Sentinel client
(Python 3 stdlib only, loopback only).

  badsentinel.py --port-file FILE --mode stale --master HOST:PORT
  badsentinel.py --port-file FILE --mode garbage

Every connection gets +OK to AUTH, +PONG to PING, and to SENTINEL get-master-addr-by-name:
  stale    HOST:PORT — a real server that is NOT the master (a sentinel cut off from the
           others still names the old master): the client must check ROLE and move on;
  garbage  the next of a fixed list of malformed answers (wrong types, bad ports, an empty or
           1 MiB host, nested arrays, an error, nil, protocol garbage, a closed connection).
SUBSCRIBE +switch-master is confirmed, then followed by malformed +switch-master messages
(wrong field counts, ports, names; a 64 KiB message) that must change nothing. Each answer
is logged on stdout, one line per connection, so a test can see it was asked.
"""
import argparse
import socket
import sys
import threading

GARBAGE = [
    b":42\r\n",                                             # integer
    b"*3\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n$1\r\nx\r\n",  # three elements
    b"*2\r\n$9\r\n127.0.0.1\r\n$5\r\n99999\r\n",            # port out of range
    b"*2\r\n$9\r\n127.0.0.1\r\n$3\r\nabc\r\n",              # port not a number
    b"*2\r\n$0\r\n\r\n$4\r\n6379\r\n",                      # empty host
    b"*2\r\n$1048576\r\n" + b"h" * 1048576 + b"\r\n$4\r\n6379\r\n",  # 1 MiB host
    b"*2\r\n*1\r\n:1\r\n$4\r\n6379\r\n",                    # nested array
    b"-ERR No such master with that name\r\n",              # error
    b"*-1\r\n",                                             # nil
    b"\x00\xff\xfe garbage that is not RESP\r\n",           # protocol garbage
    None,                                                   # close the connection
]
SWITCH = [
    b"opspool",
    b"opspool 127.0.0.1 1",
    b"opspool 127.0.0.1 1 127.0.0.1",
    b"opspool 127.0.0.1 1 127.0.0.1 0",
    b"opspool 127.0.0.1 1 127.0.0.1 65536",
    b"opspool 127.0.0.1 1 127.0.0.1 12x",
    b"another 127.0.0.1 1 127.0.0.1 1",
    b"opspool " + b"x" * 65536,
    b"",
]
lock = threading.Lock()
counter = [0]


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def read_command(f):
    """One RESP array of bulk strings (what hiredis sends), or None at EOF."""
    line = f.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        return [line.strip()]
    n = int(line[1:])
    out = []
    for _ in range(n):
        hdr = f.readline()
        ln = int(hdr[1:])
        out.append(f.read(ln + 2)[:-2])
    return out


def serve_conn(conn, args):
    f = conn.makefile("rb")
    try:
        while True:
            cmd = read_command(f)
            if cmd is None:
                return
            name = cmd[0].upper() if cmd else b""
            if name == b"AUTH":
                conn.sendall(b"+OK\r\n")
            elif name == b"PING":
                conn.sendall(b"+PONG\r\n")
            elif name == b"SENTINEL" and len(cmd) == 3 and cmd[1].lower() == b"get-master-addr-by-name":
                if args.mode == "stale":
                    host, port = args.master.rsplit(":", 1)
                    conn.sendall(b"*2\r\n" + bulk(host.encode()) + bulk(port.encode()))
                    print("stale answer %s" % args.master, flush=True)
                else:
                    with lock:
                        i = counter[0] % len(GARBAGE)
                        counter[0] += 1
                    print("garbage answer %d" % i, flush=True)
                    if GARBAGE[i] is None:
                        return
                    conn.sendall(GARBAGE[i])
            elif name == b"SUBSCRIBE":
                ch = cmd[1] if len(cmd) > 1 else b""
                conn.sendall(b"*3\r\n" + bulk(b"subscribe") + bulk(ch) + b":1\r\n")
                for m in SWITCH:
                    conn.sendall(b"*3\r\n" + bulk(b"message") + bulk(ch) + bulk(m))
                # and a message of the wrong shape
                conn.sendall(b"*2\r\n" + bulk(b"message") + bulk(ch))
            else:
                conn.sendall(b"-ERR unknown command\r\n")
    except (OSError, ValueError):
        return
    finally:
        try:
            conn.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--mode", choices=["stale", "garbage"], required=True)
    ap.add_argument("--master", default="127.0.0.1:1")
    args = ap.parse_args()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    with open(args.port_file + ".tmp", "w") as pf:
        pf.write(str(srv.getsockname()[1]))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve_conn, args=(conn, args), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
