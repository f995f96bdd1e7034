#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""hookrecv.py — a webhook receiver for the notification tests, written the way a user's
receiver should be (docs/notifications.md "Receiving"): it checks the signature
(Opspool-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>) in constant
time, refuses a timestamp outside the replay window, and drops a repeated delivery by its id
(Opspool-Delivery) once it has accepted it.

    hookrecv.py --port-file F --log L [--secret-file S] [--fail-first N] [--window 300]

Every request is one JSON line in L: {"delivery", "event", "attempt", "sig_ok", "fresh",
"status", "duplicate", "body"}. --fail-first N answers 500 to the first N attempts of each
delivery (then 200); --stall-first N holds the first N requests 30 s (a receiver that hangs),
logging {"delivery", "stalled": true} when each arrives. Listens on 127.0.0.1 only; stops on SIGTERM.
"""
import argparse
import hashlib
import hmac
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--secret-file")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--window", type=int, default=300)
    ap.add_argument("--stall-first", type=int, default=0,
                    help="hold the first N requests 30 s before answering 500")
    a = ap.parse_args()
    secret = None
    if a.secret_file:
        with open(a.secret_file, "rb") as f:
            secret = f.read().rstrip(b"\r\n")
    lock = threading.Lock()
    seen = {}  # delivery id -> attempts received
    accepted = set()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(n)
            sig = self.headers.get("Opspool-Signature", "")
            parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
            sig_ok, fresh = False, False
            try:
                t = int(parts.get("t", ""))
                fresh = abs(time.time() - t) <= a.window
                if secret is not None and "v1" in parts:
                    want = hmac.new(secret, str(t).encode() + b"." + raw, hashlib.sha256).hexdigest()
                    sig_ok = hmac.compare_digest(want, parts["v1"])
            except ValueError:
                pass
            did = self.headers.get("Opspool-Delivery", "")
            with lock:
                seen[did] = seen.get(did, 0) + 1
                nth = seen[did]
                total = sum(seen.values())
            if total <= a.stall_first:
                with open(a.log, "a") as f:
                    f.write(json.dumps({"delivery": did, "stalled": True,
                                        "attempt": self.headers.get("Opspool-Attempt")}) + "\n")
                time.sleep(30)
            with lock:
                duplicate = did in accepted
                if secret is not None and not (sig_ok and fresh):
                    status = 401
                elif nth <= a.fail_first:
                    status = 500
                else:
                    status = 200
                    accepted.add(did)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                rec = {"delivery": did, "event": self.headers.get("Opspool-Event"),
                       "attempt": self.headers.get("Opspool-Attempt"),
                       "idempotency_key": self.headers.get("Idempotency-Key"),
                       "sig_ok": sig_ok, "fresh": fresh, "status": status,
                       "duplicate": duplicate, "body": body}
                with open(a.log, "a") as f:
                    f.write(json.dumps(rec, sort_keys=True) + "\n")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            msg = b"ok\n" if status == 200 else b"not now\n"
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
