#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""chaosproxy.py — a TCP proxy the chaos tests control, to cut the network to Redis or
PostgreSQL for a while and restore it (Python 3 stdlib only, loopback only).

  chaosproxy.py serve --listen 127.0.0.1:PORT --target HOST:PORT|unix:/PATH --control SOCK
                      [--port-file FILE]
  chaosproxy.py ctl SOCK pass|blackhole|reset|stats

Modes (set over the control socket, one command per connection, answered with one line):
  pass       forward bytes both ways (the default);
  blackhole  accept new connections but do not forward anything, and stop forwarding on the
             existing ones: bytes read meanwhile are held, not dropped, and flow again after
             "pass" (like a partition shorter than TCP's retransmission timeout). Connections
             accepted during the blackhole connect upstream only once it ends;
  reset      close every connection now (clients see ECONNRESET/EOF), then keep passing;
  stats      "mode=M conns=N accepted=A" .
--listen with port 0 picks a free port, written to --port-file once listening.
"""
import argparse
import os
import socket
import sys
import threading

lock = threading.Condition()
mode = "pass"
conns = set()  # open pairs
accepted = 0


def parse_addr(s):
    if s.startswith("unix:"):
        return socket.AF_UNIX, s[5:]
    host, port = s.rsplit(":", 1)
    return socket.AF_INET, (host, int(port))


def close_quietly(s):
    if s is None:
        return
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


class Pair:
    def __init__(self, client, target):
        self.client = client
        self.target = target
        self.upstream = None
        self.closed = False

    def close(self):
        with lock:
            if self.closed:
                return
            self.closed = True
            conns.discard(self)
            lock.notify_all()
        close_quietly(self.client)
        close_quietly(self.upstream)

    def wait_pass(self):
        """Block while blackholed; False when the pair was closed meanwhile."""
        with lock:
            while mode == "blackhole" and not self.closed:
                lock.wait()
            return not self.closed

    def pump(self, src, dst):
        try:
            while True:
                if not self.wait_pass():
                    return
                data = src.recv(65536)
                if not data:
                    return
                if not self.wait_pass():  # read during a blackhole: hold it
                    return
                dst.sendall(data)
        except OSError:
            return
        finally:
            self.close()

    def run(self):
        if not self.wait_pass():
            return
        fam, addr = parse_addr(self.target)
        try:
            up = socket.socket(fam, socket.SOCK_STREAM)
            up.connect(addr)
        except OSError:
            self.close()
            return
        with lock:
            self.upstream = up
            if self.closed:
                close_quietly(up)
                return
        threading.Thread(target=self.pump, args=(up, self.client), daemon=True).start()
        self.pump(self.client, up)


def serve_control(path):
    global mode
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    while True:
        c, _ = srv.accept()
        with c:
            cmd = c.recv(64).decode("ascii", "replace").strip()
            if cmd in ("pass", "blackhole"):
                with lock:
                    mode = cmd
                    lock.notify_all()
                reply = "ok " + cmd
            elif cmd == "reset":
                with lock:
                    victims = list(conns)
                for p in victims:
                    p.close()
                reply = "ok reset %d" % len(victims)
            elif cmd == "stats":
                with lock:
                    reply = "mode=%s conns=%d accepted=%d" % (mode, len(conns), accepted)
            else:
                reply = "error unknown command"
            try:
                c.sendall((reply + "\n").encode())
            except OSError:
                pass


def serve(args):
    global accepted
    fam, addr = parse_addr(args.listen)
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(addr)
    srv.listen(128)
    threading.Thread(target=serve_control, args=(args.control,), daemon=True).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.getsockname()[1])
        os.rename(tmp, args.port_file)
    while True:
        c, _ = srv.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        p = Pair(c, args.target)
        with lock:
            conns.add(p)
            accepted += 1
        threading.Thread(target=p.run, daemon=True).start()


def ctl(args):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(args.sock)
    s.sendall(args.cmd.encode())
    print(s.recv(256).decode().strip())
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    a = sub.add_parser("serve")
    a.add_argument("--listen", required=True)
    a.add_argument("--target", required=True)
    a.add_argument("--control", required=True)
    a.add_argument("--port-file")
    b = sub.add_parser("ctl")
    b.add_argument("sock")
    b.add_argument("cmd", choices=["pass", "blackhole", "reset", "stats"])
    args = ap.parse_args()
    if args.what == "serve":
        serve(args)
    else:
        sys.exit(ctl(args))


if __name__ == "__main__":
    main()
