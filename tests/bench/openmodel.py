#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""openmodel.py — does the load generator's open model hold the requested rate?

    tests/bench/openmodel.py --build DIR --out DIR [--runs N] [--quick]

Target: osp-stallserver --stall-every-ms 0 (one thread, static 200 "ok", keep-alive) on
loopback, pinned to CPU 0; opspool-loadgen pinned to CPU 1 (when taskset is there). First the
server's capacity: the closed model's requests/s (50 connections, median of RUNS). Then the open
model (-R) at 10, 25, 50, 75, 90, 100 and 120 % of that capacity, 50 connections, RUNS runs per
rate in rotating order; each run records requested vs achieved rate (responses / elapsed), late
sends and dropped requests. Rows go to OUT/openmodel.csv. Bounded: every run has a duration
and a timeout; the server is killed on exit.
"""
import argparse, json, os, shutil, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from poolbench import append, med  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    dur = 2 if a.quick else 5
    conns = 50
    pin_s, pin_c = [], []
    if shutil.which("taskset") and os.cpu_count() >= 2:
        pin_s, pin_c = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    server = f"{a.build}/tests/support/osp-stallserver"
    loadgen = f"{a.build}/tools/opspool-loadgen"
    port_file = f"/tmp/osp-openmodel.{os.getpid()}"
    sp = subprocess.Popen(pin_s + [server, "--stall-every-ms", "0"], stdout=open(port_file, "w"))
    try:
        port = None
        for _ in range(100):
            for line in open(port_file):
                if line.startswith("port "):
                    port = line.split()[1]
            if port:
                break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/"

        def lg(*args):
            out = subprocess.run(pin_c + [loadgen, "-c", str(conns), "-d", str(dur), "--json",
                                          *args, url], capture_output=True, text=True,
                                 timeout=dur + 30).stdout
            return json.loads(out)

        caps = [lg()["rps"] for _ in range(a.runs)]
        cap = med(caps)
        print(f"capacity (closed model, {conns} conns): median {cap:.0f} req/s "
              f"({min(caps):.0f}-{max(caps):.0f})", flush=True)
        fracs = [0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.2]
        for r in range(a.runs):
            for f in (fracs if r % 2 == 0 else fracs[::-1]):
                rate = round(cap * f, -2)
                j = lg("-R", str(rate))
                got = j["responses"] / j["elapsed_s"]
                row = dict(run=r + 1, capacity_rps=round(cap), fraction=f, requested_rps=rate,
                           achieved_rps=round(got, 1),
                           error_pct=round((got - rate) * 100 / rate, 3),
                           late_sends=j["late_sends"], dropped=j["dropped"],
                           p99_ms=j["latency_ms"]["p99"])
                append(a.out, "openmodel", row)
                print(f" {row}", flush=True)
    finally:
        sp.kill()
        sp.wait()
        os.unlink(port_file)


if __name__ == "__main__":
    main()
