#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report.py — Markdown tables and SVG charts from one tests/bench/run results directory.

    tests/bench/report.py RESULTS_DIR [--img docs/img]

Reads the CSVs poolbench.py and openmodel.py wrote (throughput, throughput_e2e, latency,
footprint, scale_backlog, scale_workers, openmodel, peers), prints one Markdown table per benchmark
(median of the runs with min–max) to stdout, and draws the charts with gnuplot (SVG) into
--img: pool-throughput.svg, scale-backlog.svg, scale-workers.svg, openmodel.svg. A missing CSV
skips its table and chart.
"""
import argparse, csv, os, statistics, subprocess, tempfile


def load(d, name):
    p = f"{d}/{name}.csv"
    return list(csv.DictReader(open(p))) if os.path.exists(p) else []


def stat(rows, f):
    xs = [float(r[f]) for r in rows if r.get(f) not in (None, "")]
    return (statistics.median(xs), min(xs), max(xs)) if xs else (float("nan"),) * 3


def fmt(t, nd=0):
    m, lo, hi = t
    f = f"{{:,.{nd}f}}"
    return f"{f.format(m)} ({f.format(lo)}–{f.format(hi)})"


def group(rows, key):
    g = {}
    for r in rows:
        g.setdefault(r[key], []).append(r)
    return g


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--img", default="docs/img")
    a = ap.parse_args()
    os.makedirs(a.img, exist_ok=True)
    tmp = tempfile.mkdtemp()
    term = "set terminal svg size 640,400 dynamic font 'sans,11' background '#ffffff'"

    tp = load(a.results, "throughput")
    e2e = load(a.results, "throughput_e2e")
    if tp:
        print("### Pool throughput (queue preloaded, then drained; median (min–max))\n")
        print("| jobs | worker processes | jobs/s | commits per 1k jobs | script calls per 1k jobs "
              "| CPU µs/job: worker | Redis | PostgreSQL | start→committed p99 ms |")
        print("|---|---|---|---|---|---|---|---|---|")
        for mode in ("inline", "forked"):
            for w, rs in sorted(group([r for r in tp if r["mode"] == mode], "workers").items(),
                                key=lambda kv: int(kv[0])):
                print(f"| {mode} noop | {w} | {fmt(stat(rs, 'jobs_per_s'))} | "
                      f"{fmt(stat(rs, 'commits_per_1k'), 1)} | {fmt(stat(rs, 'scripts_per_1k'), 1)} | "
                      f"{fmt(stat(rs, 'worker_cpu_us_per_job'))} | {fmt(stat(rs, 'redis_cpu_us_per_job'))} | "
                      f"{fmt(stat(rs, 'pg_cpu_us_per_job'))} | {fmt(stat(rs, 'start_to_commit_p99_ms'), 1)} |")
        print()
        if e2e:
            print("| end to end (opspoolctl submit while the workers run) | worker processes | jobs/s |")
            print("|---|---|---|")
            for w, rs in sorted(group(e2e, "workers").items()):
                print(f"| inline noop | {w} | {fmt(stat(rs, 'jobs_per_s'))} |")
            print()
        with open(f"{tmp}/tp.dat", "w") as f:
            for w, rs in sorted(group([r for r in tp if r["mode"] == "inline"], "workers").items(),
                                key=lambda kv: int(kv[0])):
                m, lo, hi = stat(rs, "jobs_per_s")
                f.write(f"{w} {m} {lo} {hi}\n")
        gnuplot(f"""{term}
set output '{a.img}/pool-throughput.svg'
set title 'Inline noop jobs/s, queue drained (median, min-max)'
set xlabel 'worker processes'; set ylabel 'jobs/s'; set yrange [0:*]; set grid
set xtics (1, 2, 4); set logscale x 2; set xrange [0.8:5]
plot '{tmp}/tp.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'measured', \\
     15000 with lines dt 2 lc rgb '#aa0000' title 'target 15,000'
""")

    lat = load(a.results, "latency")
    if lat:
        print("### Latency at a steady 500 jobs/s (1 worker, 64 slots; median of runs (min–max))\n")
        print("| figure | p50 ms | p99 ms |")
        print("|---|---|---|")
        print(f"| enqueue→start (ledger: started_at − created_at, ms clocks) | "
              f"{fmt(stat(lat, 'enq_start_p50_ms'), 2)} | {fmt(stat(lat, 'enq_start_p99_ms'), 2)} |")
        print(f"| of which the submit call (ledger INSERT + commit + Redis push), µs→ms | "
              f"{fmt(tuple(x / 1000 for x in stat(lat, 'submit_call_p50_us')), 2)} | "
              f"{fmt(tuple(x / 1000 for x in stat(lat, 'submit_call_p99_us')), 2)} |")
        print(f"| push→start (envelope in Redis → worker's started_at) | "
              f"{fmt(stat(lat, 'push_start_p50_ms'), 2)} | {fmt(stat(lat, 'push_start_p99_ms'), 2)} |")
        print(f"| enqueue→result committed | – | {fmt(stat(lat, 'enq_committed_p99_ms'), 2)} |")
        print(f"\nachieved rate {fmt(stat(lat, 'achieved_rate'), 1)} jobs/s; "
              f"sends more than 1 ms late {fmt(stat(lat, 'late_sends'))} per run\n")

    fp = load(a.results, "footprint")
    if fp:
        print("### Worker footprint (release build, 4 slots, connected, /metrics on, signing key "
              "set; median of starts (min–max))\n")
        print("| state | private dirty KiB | USS KiB | PSS KiB | VmRSS KiB |")
        print("|---|---|---|---|---|")
        for st_, what in (("idle", "idle after one job"), ("busy", "4 slots busy (noop)")):
            print(f"| {what} | {fmt(stat(fp, st_ + '_private_dirty_kib'))} | "
                  f"{fmt(stat(fp, st_ + '_uss_kib'))} | {fmt(stat(fp, st_ + '_pss_kib'))} | "
                  f"{fmt(stat(fp, st_ + '_rss_kib'))} |")
        print(f"| 4 slots busy: the worker and its {fmt(stat(fp, 'busy_children'))} job children "
              f"together | {fmt(stat(fp, 'busy_group_private_dirty_kib'))} | – | "
              f"{fmt(stat(fp, 'busy_group_pss_kib'))} | – |")
        print(f"\nstart→first fetch {fmt(stat(fp, 'start_to_first_fetch_ms'), 1)} ms\n")

    pe = load(a.results, "peers")
    if pe:
        print("### Pool drain against beanstalkd + PostgreSQL (noop, queue preloaded; median of runs (min–max))\n")
        print("| workers | opspool jobs/s | beanstalkd + PG jobs/s | opspool/peer per round (median) | commits per 1,000 jobs opspool / peer |")
        print("|---|---|---|---|---|")
        for w in sorted({r["workers"] for r in pe}, key=int):
            o = [r for r in pe if r["system"] == "opspool" and r["workers"] == w]
            b_ = [r for r in pe if r["system"] == "beanstalkd" and r["workers"] == w]
            ratios = []
            for run in sorted({r["run"] for r in o}):
                x = [float(r["jobs_per_s"]) for r in o if r["run"] == run]
                y = [float(r["jobs_per_s"]) for r in b_ if r["run"] == run]
                if x and y and y[0] > 0:
                    ratios.append(x[0] / y[0])
            rt = ", ".join(f"{x:.2f}" for x in ratios) + (f" ({statistics.median(ratios):.2f})" if ratios else "")
            print(f"| {w} | {fmt(stat(o, 'jobs_per_s'))} | {fmt(stat(b_, 'jobs_per_s'))} | {rt} | "
                  f"{fmt(stat(o, 'commits_per_1k'), 1)} / {fmt(stat(b_, 'commits_per_1k'), 1)} |")
        print()

    om = load(a.results, "openmodel")
    if om:
        print(f"### Open model accuracy (capacity {fmt(stat(om, 'capacity_rps'))} req/s, "
              f"closed model, 50 connections)\n")
        print("| % of capacity | requested req/s | achieved req/s | error % | late sends | dropped | p99 ms |")
        print("|---|---|---|---|---|---|---|")
        with open(f"{tmp}/om.dat", "w") as f:
            for fr, rs in sorted(group(om, "fraction").items(), key=lambda kv: float(kv[0])):
                req = stat(rs, "requested_rps")
                print(f"| {float(fr) * 100:.0f} | {fmt(req)} | {fmt(stat(rs, 'achieved_rps'))} | "
                      f"{fmt(stat(rs, 'error_pct'), 2)} | {fmt(stat(rs, 'late_sends'))} | "
                      f"{fmt(stat(rs, 'dropped'))} | {fmt(stat(rs, 'p99_ms'), 1)} |")
                e = stat(rs, "error_pct")
                f.write(f"{req[0]} {e[0]} {e[1]} {e[2]}\n")
        print()
        gnuplot(f"""{term}
set output '{a.img}/openmodel.svg'
set title 'opspool-loadgen open model: achieved vs requested rate'
set xlabel 'requested req/s'; set ylabel 'error %'; set yrange [-2:2]; set grid
plot '{tmp}/om.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'median (min-max)', \\
     1 with lines dt 2 lc rgb '#aa0000' notitle, -1 with lines dt 2 lc rgb '#aa0000' title '±1 %'
""")

    sb = load(a.results, "scale_backlog")
    if sb:
        print("### Scale: backlog (2 workers × 512 slots; throughput over the first 20,000 jobs)\n")
        print("| pending jobs | Redis bytes per pending job | jobs/s | start→committed p50 ms | p99 ms |")
        print("|---|---|---|---|---|")
        with open(f"{tmp}/sb.dat", "w") as f:
            for b, rs in sorted(group(sb, "backlog").items(), key=lambda kv: int(kv[0])):
                t, p = stat(rs, "jobs_per_s"), stat(rs, "start_to_commit_p99_ms")
                print(f"| {int(b):,} | {fmt(stat(rs, 'redis_bytes_per_pending'))} | {fmt(t)} | "
                      f"{fmt(stat(rs, 'start_to_commit_p50_ms'), 1)} | {fmt(p, 1)} |")
                f.write(f"{b} {t[0]} {t[1]} {t[2]} {p[0]} {p[1]} {p[2]}\n")
        print()
        gnuplot(f"""{term}
set output '{a.img}/scale-backlog.svg'
set title 'Throughput and p99 as the backlog grows (median, min-max)'
set xlabel 'pending jobs'; set logscale x; set ylabel 'jobs/s'; set y2label 'p99 ms'
set ytics nomirror; set y2tics; set yrange [0:*]; set y2range [0:*]; set grid
plot '{tmp}/sb.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'jobs/s', \\
     '' using 1:5:6:7 axes x1y2 with yerrorlines lw 2 pt 5 title 'start->committed p99'
""")

    sw = load(a.results, "scale_workers")
    if sw:
        print("### Scale: worker processes (256 slots each; a fixed preloaded job count)\n")
        print("| worker processes | jobs/s | commits per 1k jobs | start→committed p99 ms |")
        print("|---|---|---|---|")
        with open(f"{tmp}/sw.dat", "w") as f:
            for w, rs in sorted(group(sw, "workers").items(), key=lambda kv: int(kv[0])):
                t, p = stat(rs, "jobs_per_s"), stat(rs, "start_to_commit_p99_ms")
                print(f"| {w} | {fmt(t)} | {fmt(stat(rs, 'commits_per_1k'), 1)} | {fmt(p, 1)} |")
                f.write(f"{w} {t[0]} {t[1]} {t[2]} {p[0]} {p[1]} {p[2]}\n")
        print()
        gnuplot(f"""{term}
set output '{a.img}/scale-workers.svg'
set title 'Throughput and p99 by worker processes (median, min-max)'
set xlabel 'worker processes'; set logscale x 2; set xtics (1, 2, 4, 8, 16); set xrange [0.8:20]
set ylabel 'jobs/s'; set y2label 'p99 ms'; set ytics nomirror; set y2tics
set yrange [0:*]; set y2range [0:*]; set grid
plot '{tmp}/sw.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'jobs/s', \\
     '' using 1:5:6:7 axes x1y2 with yerrorlines lw 2 pt 5 title 'start->committed p99'
""")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
