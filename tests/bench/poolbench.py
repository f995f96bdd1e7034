#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""poolbench.py — the pool's own benchmarks, against real Redis and PostgreSQL it starts itself.

    tests/bench/poolbench.py --build DIR --out DIR [--runs N] [--quick] WHAT...

WHAT: throughput | latency | footprint | scale-backlog | scale-workers | peers | all

Every figure is measured RUNS times (lanes alternate inside each round so drift on a shared
machine hits all of them); each run appends one row to OUT/<what>.csv; a summary with medians
and min-max is printed. Times come from the ledger (ms timestamps written by the worker and the
submitter), CPU from /proc (utime+stime of the worker, Redis and the PostgreSQL backends), and
per-job store work from Redis INFO commandstats and pg_stat_database.xact_commit deltas.
Bounded: every wait has a deadline; every process started here is stopped here.
"""
import argparse, csv, json, os, re, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TICK = os.sysconf("SC_CLK_TCK")


class Stack:
    """Redis + PostgreSQL from tests/support/servers.sh, in a temp dir, owned by this run."""

    def __init__(self, build):
        self.build = build
        self.dir = tempfile.mkdtemp(prefix="osp-poolbench.")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OSP_TEST_")}
        # OSP_BENCH_DURABLE=1: PostgreSQL with its defaults (fsync, synchronous_commit), as a
        # user runs it; otherwise the test servers' speed settings.
        durable = ["--durable"] if os.environ.get("OSP_BENCH_DURABLE") == "1" else []
        subprocess.run(["bash", f"{ROOT}/tests/support/servers.sh", "start", f"{self.dir}/s"] + durable,
                       env=env, check=True, stdout=subprocess.DEVNULL)
        self.env = {}
        for line in open(f"{self.dir}/s/env.sh"):
            m = re.match(r'export (\w+)="?([^"]*)"?$', line.strip())
            if m:
                self.env[m.group(1)] = m.group(2)
        self.sock = self.env["OSP_TEST_REDIS_URL"][len("unix://"):]
        self.pg_dsn = self.env["OSP_TEST_PG_DSN"]
        pgdir = open(f"{self.dir}/s/pgdir").read().strip()
        self.postmaster = int(open(f"{pgdir}/data/postmaster.pid").readline())
        self.redis_pid = int(open(f"{self.dir}/s/redis/redis.pid").read())
        self.procs = []
        self.seq = 0

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["bash", f"{ROOT}/tests/support/servers.sh", "stop", f"{self.dir}/s"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", self.dir])

    # ---- stores
    def redis(self, *args):
        return subprocess.run(["redis-cli", "-s", self.sock, *map(str, args)], check=True,
                              capture_output=True, text=True, timeout=60).stdout

    def redis_info(self, section):
        out = {}
        for line in self.redis("INFO", section).splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k] = v.strip()
        return out

    def redis_cmdstats(self):
        st = {}
        for k, v in self.redis_info("commandstats").items():
            d = dict(x.split("=") for x in v.split(","))
            st[k[len("cmdstat_"):]] = (int(d["calls"]), int(d["usec"]))
        return st

    def psql(self, sql, dsn=None):
        return subprocess.run(["psql", dsn or self.pg_dsn, "-qAtc", sql], check=True,
                              capture_output=True, text=True, timeout=600).stdout.strip()

    def fresh(self):
        """A new database (migrated) and a new key prefix; returns the env for pool processes."""
        self.seq += 1
        db = f"pb{os.getpid()}_{self.seq}"
        self.psql(f"CREATE DATABASE {db}")
        env = dict(os.environ)
        env.update(OSP_REDIS_URL=self.env["OSP_TEST_REDIS_URL"], OSP_PREFIX=f"{{{db}}}",
                   OSP_PG_DSN=self.pg_dsn.replace("dbname=postgres", f"dbname={db}"),
                   OSP_LOG_LEVEL="warn")
        subprocess.run([f"{self.build}/opspoolctl", "migrate"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        env["_DB"] = db
        return env

    def drop(self, env):
        self.psql(f"DROP DATABASE {env['_DB']} WITH (FORCE)")
        self.redis("FLUSHALL")  # our own server: nothing else lives in it

    def submit(self, env, n, payload="{}"):
        subprocess.run([f"{self.build}/opspoolctl", "submit", "noop", "--count", str(n),
                        "--payload", payload], env=env, check=True, stdout=subprocess.DEVNULL,
                       timeout=3600)

    def workers(self, env, n, slots, extra=None, log=subprocess.DEVNULL):
        ps = []
        for _ in range(n):
            e = dict(env, OSP_WORKER_SLOTS=str(slots), **(extra or {}))
            p = subprocess.Popen([f"{self.build}/opspool-worker"], env=e, stderr=log)
            self.procs.append(p)
            ps.append(p)
        return ps

    def stop_workers(self, ps):
        for p in ps:
            p.send_signal(signal.SIGTERM)
        for p in ps:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def count_done(self, env):
        return int(self.psql("SELECT count(*) FROM opspool.jobs WHERE state = 'succeeded'",
                             env["OSP_PG_DSN"]))

    def wait_done(self, env, n, deadline_s):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.count_done(env) >= n:
                return True
            time.sleep(0.1)
        return False

    def pg_cpu(self):
        """utime+stime (s) of the postmaster's children (backends, walwriter, ...)."""
        tot = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(f[1]) == self.postmaster or int(pid) == self.postmaster:
                tot += int(f[11]) + int(f[12])
        return tot / TICK

    def xact_commit(self, env):
        return int(self.psql(f"SELECT xact_commit FROM pg_stat_database WHERE datname = "
                             f"'{env['_DB']}'"))


def proc_cpu(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / TICK


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def append(out, name, row):
    path = f"{out}/{name}.csv"
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def ledger_window(st, env):
    """(jobs, seconds from the first start to the last result committed, p50/p99 ms of
    start -> result committed) over the succeeded jobs."""
    r = st.psql("SELECT count(*), extract(epoch FROM max(updated_at) - min(started_at)), "
                "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - started_at)), "
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - started_at)) "
                "FROM opspool.jobs WHERE state = 'succeeded'", env["OSP_PG_DSN"]).split("|")
    return int(r[0]), float(r[1]), float(r[2]) * 1000, float(r[3]) * 1000


def drain_once(st, nworkers, jobs, payload, slots, deadline_s=600):
    """Preload `jobs` noop jobs, then start the workers and let them drain the queue. Returns
    the row: throughput over the ledger window, per-job commits / script calls / CPU."""
    env = st.fresh()
    st.submit(env, jobs, payload)
    st.redis("CONFIG", "RESETSTAT")
    c0, pg0, r0 = st.xact_commit(env), st.pg_cpu(), proc_cpu(st.redis_pid)
    ps = st.workers(env, nworkers, slots)
    ok = st.wait_done(env, jobs, deadline_s)
    wcpu = sum(proc_cpu(p.pid) for p in ps)
    c1, pg1, r1 = st.xact_commit(env), st.pg_cpu(), proc_cpu(st.redis_pid)
    cs = st.redis_cmdstats()
    st.stop_workers(ps)
    n, secs, p50, p99 = ledger_window(st, env)
    st.drop(env)
    evalsha = cs.get("evalsha", (0, 0))
    blm = cs.get("blmove", (0, 0))
    return dict(workers=nworkers, jobs=n, complete=int(ok), seconds=round(secs, 3),
                jobs_per_s=round(n / secs) if secs > 0 else 0,
                commits_per_1k=round((c1 - c0) * 1000 / n, 1),
                scripts_per_1k=round((evalsha[0] + blm[0]) * 1000 / n, 1),
                redis_script_us_per_job=round(evalsha[1] / n, 2),
                worker_cpu_us_per_job=round(wcpu * 1e6 / n, 1),
                redis_cpu_us_per_job=round((r1 - r0) * 1e6 / n, 1),
                pg_cpu_us_per_job=round((pg1 - pg0) * 1e6 / n, 1),
                start_to_commit_p50_ms=round(p50, 2), start_to_commit_p99_ms=round(p99, 2))


def e2e_once(st, nworkers, jobs, slots, deadline_s=600):
    """Workers idle first, then opspoolctl submits `jobs` (ledger rows + envelopes, 2,000 a
    chunk) while they run: wall time from the submit's start to the last result committed."""
    env = st.fresh()
    ps = st.workers(env, nworkers, slots)
    time.sleep(0.5)
    t0 = time.time()
    st.submit(env, jobs)
    ok = st.wait_done(env, jobs, deadline_s)
    st.stop_workers(ps)
    end = float(st.psql("SELECT extract(epoch FROM max(updated_at)) FROM opspool.jobs",
                        env["OSP_PG_DSN"]))
    st.drop(env)
    return dict(workers=nworkers, jobs=jobs, complete=int(ok), seconds=round(end - t0, 3),
                jobs_per_s=round(jobs / (end - t0)))


def summarize(rows, key, fields):
    groups = {}
    for r in rows:
        groups.setdefault(r[key], []).append(r)
    for k, rs in groups.items():
        parts = []
        for f in fields:
            xs = [float(r[f]) for r in rs]
            parts.append(f"{f} {med(xs):g} ({min(xs):g}-{max(xs):g})")
        print(f"  {key}={k} [{len(rs)} runs]: " + "; ".join(parts), flush=True)


def bench_throughput(st, a):
    jobs = 5000 if a.quick else 40000
    rows = []
    for r in range(a.runs):
        order = [1, 2, 4] if r % 2 == 0 else [4, 2, 1]
        for nw in order:
            row = dict(mode="inline", **drain_once(st, nw, jobs, "{}", 512))
            append(a.out, "throughput", row)
            rows.append(row)
        row = dict(mode="forked", **drain_once(st, 1, jobs // 8, '{"sleep_ms": 0}', 64))
        append(a.out, "throughput", row)
        rows.append(row)
        for nw in (1, 2):
            row = dict(mode="e2e", **e2e_once(st, nw, jobs, 512))
            append(a.out, "throughput_e2e", row)
            rows.append(row)
    print("throughput (preloaded queue drained; e2e = submit while running):")
    for mode in ("inline", "forked", "e2e"):
        rs = [r for r in rows if r["mode"] == mode]
        print(f" {mode}:")
        summarize(rs, "workers", ["jobs_per_s"] + ([] if mode == "e2e" else [
            "commits_per_1k", "scripts_per_1k", "worker_cpu_us_per_job", "redis_cpu_us_per_job",
            "pg_cpu_us_per_job", "start_to_commit_p99_ms"]))


def bench_latency(st, a):
    rate, secs = 500, (4 if a.quick else 20)
    sub = f"{a.build}/tests/bench/osp-submit-rate"
    for r in range(a.runs):
        env = st.fresh()
        ps = st.workers(env, 1, 64)
        time.sleep(0.5)
        samples = f"{st.dir}/samples.txt"
        out = subprocess.run([sub, "noop", str(rate), str(rate * secs)],
                             env=dict(env, OSP_BENCH_SAMPLES=samples), check=True,
                             capture_output=True, text=True, timeout=secs * 3 + 60).stdout
        s = json.loads(out)
        st.wait_done(env, rate * secs, 60)
        st.stop_workers(ps)
        # push -> start: the envelope is in Redis (submit call returned, µs) until the worker
        # stamps started_at (ms): the pool's own share of enqueue -> start.
        started = dict(x.split("|") for x in st.psql(
            "SELECT id, (extract(epoch FROM started_at) * 1000)::bigint FROM opspool.jobs "
            "WHERE state = 'succeeded'", env["OSP_PG_DSN"]).splitlines())
        ps_ms = sorted(int(started[i]) - int(us) / 1000 for i, us in
                       (l.split() for l in open(samples)) if i in started)
        q99 = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]
        q = st.psql("SELECT count(*), "
                    "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)), "
                    "percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)), "
                    "max(extract(epoch FROM started_at - created_at)), "
                    "percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - created_at)) "
                    "FROM opspool.jobs WHERE state = 'succeeded'", env["OSP_PG_DSN"]).split("|")
        st.drop(env)
        row = dict(run=r + 1, rate=rate, achieved_rate=s["rate"], jobs=int(q[0]),
                   late_sends=s["late_over_1ms"], submit_call_p50_us=s["submit_call_p50_us"],
                   submit_call_p99_us=s["submit_call_p99_us"],
                   enq_start_p50_ms=round(float(q[1]) * 1000, 2),
                   enq_start_p99_ms=round(float(q[2]) * 1000, 2),
                   enq_start_max_ms=round(float(q[3]) * 1000, 2),
                   enq_committed_p99_ms=round(float(q[4]) * 1000, 2),
                   push_start_p50_ms=round(q99(ps_ms, 0.5), 2),
                   push_start_p99_ms=round(q99(ps_ms, 0.99), 2))
        append(a.out, "latency", row)
        print(f" latency run {r + 1}: {row}", flush=True)


def smaps(pid):
    """/proc/PID/smaps_rollup in KiB: VmRSS, PSS, USS (private clean + dirty), private dirty."""
    sm = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        f = line.split()
        if len(f) >= 2 and f[0].endswith(":") and f[1].isdigit():
            sm[f[0][:-1]] = int(f[1])
    return dict(rss_kib=sm["Rss"], pss_kib=sm["Pss"],
                uss_kib=sm["Private_Clean"] + sm["Private_Dirty"],
                private_dirty_kib=sm["Private_Dirty"])


def bench_footprint(st, a):
    """The worker as it runs in production: freshly exec'd, connected to both stores, its
    /metrics endpoint on, a signing key set, 4 slots. 'idle' is read after it has run one job
    and gone quiet; 'busy' while all 4 slots hold a sleeping noop (forked children: the
    figures are the worker process's own)."""
    env = st.fresh()
    env = dict(env, OSP_LOG_LEVEL="info", OSP_HTTP_ADDR="127.0.0.1:0",
               OSP_SIGNING_KEY="footprint-bench-signing-key-0123456789abcdef")
    slots = 4
    # smaps counts a page of a just-built binary or library that is still dirty in the page
    # cache as the process's Private_Dirty: write them back first (a fresh build read 1.8 MiB
    # instead of 1.4).
    os.sync()
    for r in range(max(a.runs, 5)):
        st.psql("TRUNCATE opspool.jobs CASCADE", env["OSP_PG_DSN"])
        log = open(f"{st.dir}/fp.log", "w")
        t0 = time.time() * 1000
        (p,) = st.workers(env, 1, slots, log=log)
        at = None
        for _ in range(300):
            m = re.search(r'"first_fetch_at_ms":"(\d+)"', open(f"{st.dir}/fp.log").read())
            if m:
                at = int(m.group(1))
                break
            time.sleep(0.01)
        st.submit(env, 1)
        if not st.wait_done(env, 1, 60):
            raise SystemExit("footprint: the first job did not finish in 60 s")
        time.sleep(1.0)
        idle = smaps(p.pid)
        st.submit(env, slots, json.dumps({"sleep_ms": 4000}))
        busy = None
        end = time.monotonic() + 30
        while time.monotonic() < end:
            n = int(st.psql("SELECT count(*) FROM opspool.jobs WHERE state = 'running'",
                            env["OSP_PG_DSN"]))
            if n == slots:
                time.sleep(0.3)
                busy = smaps(p.pid)
                # The slots' forked children share the worker's pages copy-on-write, so the
                # worker's own private figures drop while they live; the group's PSS and
                # private dirty are what the pod pays.
                kids = open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()
                group = [busy] + [smaps(k) for k in kids]
                busy["children"] = len(kids)
                busy["group_pss_kib"] = sum(g["pss_kib"] for g in group)
                busy["group_private_dirty_kib"] = sum(g["private_dirty_kib"] for g in group)
                break
            time.sleep(0.05)
        if busy is None:
            raise SystemExit(f"footprint: {slots} slots never all busy in 30 s")
        st.wait_done(env, 1 + slots, 60)
        st.stop_workers([p])
        log.close()
        row = dict(run=r + 1, start_to_first_fetch_ms=round(at - t0, 1) if at else "")
        row.update({"idle_" + k: v for k, v in idle.items()})
        row.update({"busy_" + k: v for k, v in busy.items()})
        append(a.out, "footprint", row)
        print(f" footprint run {r + 1}: {row}", flush=True)
    st.drop(env)


def bench_scale_backlog(st, a):
    sizes = [1000, 10000] if a.quick else [1000, 10000, 100000, 1000000]
    measure = 2000 if a.quick else 20000
    for r in range(a.runs):
        for b in (sizes if r % 2 == 0 else sizes[::-1]):
            env = st.fresh()
            m0 = int(st.redis_info("memory")["used_memory"])
            st.submit(env, b)
            m1 = int(st.redis_info("memory")["used_memory"])
            k = min(b, measure)
            ps = st.workers(env, 2, 512)
            ok = st.wait_done(env, k, 600)
            st.stop_workers(ps)
            n, secs, p50, p99 = ledger_window(st, env)
            st.drop(env)
            row = dict(run=r + 1, backlog=b, measured_jobs=n, complete=int(ok),
                       redis_bytes_per_pending=round((m1 - m0) / b),
                       jobs_per_s=round(n / secs) if secs > 0 else 0,
                       start_to_commit_p50_ms=round(p50, 2),
                       start_to_commit_p99_ms=round(p99, 2))
            append(a.out, "scale_backlog", row)
            print(f" backlog run {r + 1}: {row}", flush=True)


def bench_scale_workers(st, a):
    counts = [1, 2, 4, 8, 16]
    jobs = 5000 if a.quick else 20000
    for r in range(a.runs):
        for nw in (counts if r % 2 == 0 else counts[::-1]):
            row = dict(run=r + 1, **drain_once(st, nw, jobs, "{}", 256))
            append(a.out, "scale_workers", row)
            print(f" workers run {r + 1}: {row}", flush=True)


def free_port():
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def peer_drain_once(st, a, port, nworkers, jobs, deadline_s=600):
    """The beanstalkd peer (osp-peer-beanstalkd): `jobs` rows preloaded in a results table
    and `jobs` messages put on the tube, then `nworkers` workers reserve, commit the row's
    outcome (one commit per job) and delete. Throughput over the table's window, first start
    to last finish, as opspool's drain is measured over the ledger's."""
    env = st.fresh()
    dsn = env["OSP_PG_DSN"]
    st.psql("CREATE TABLE peer_jobs (id bigint PRIMARY KEY, kind text NOT NULL, state text NOT NULL, "
            "payload jsonb NOT NULL, attempt int NOT NULL, created_at timestamptz NOT NULL, "
            "started_at timestamptz, finished_at timestamptz); "
            f"INSERT INTO peer_jobs SELECT g, 'noop', 'queued', '{{}}', 0, now() FROM generate_series(1, {jobs}) g", dsn)
    peer = f"{a.build}/tests/bench/osp-peer-beanstalkd"
    subprocess.run([peer, "put", "127.0.0.1", str(port), str(jobs)], check=True, timeout=600)
    c0 = st.xact_commit(env)
    ps = [subprocess.Popen([peer, "work", "127.0.0.1", str(port), dsn], stdout=subprocess.PIPE, text=True)
          for _ in range(nworkers)]
    ran = 0
    for p in ps:
        out, _ = p.communicate(timeout=deadline_s)
        if p.returncode != 0:
            raise SystemExit(f"peer worker failed (rc {p.returncode})")
        ran += int(out.strip() or 0)
    c1 = st.xact_commit(env)
    r = st.psql("SELECT count(*), extract(epoch FROM max(finished_at) - min(started_at)) "
                "FROM peer_jobs WHERE state = 'succeeded'", dsn).split("|")
    st.drop(env)
    n, secs = int(r[0]), float(r[1])
    return dict(workers=nworkers, jobs=n, complete=int(n == jobs and ran == jobs),
                seconds=round(secs, 3), jobs_per_s=round(n / secs) if secs > 0 else 0,
                commits_per_1k=round((c1 - c0) * 1000 / n, 1))


def bench_peers(st, a):
    """opspool's drain (inline noop, queue preloaded) against beanstalkd + PostgreSQL (one
    commit per job) on the same PostgreSQL, 1 and 2 workers, lanes alternating each round."""
    jobs = 5000 if a.quick else 40000
    port = free_port()
    bs = subprocess.Popen(["beanstalkd", "-l", "127.0.0.1", "-p", str(port)])
    st.procs.append(bs)
    time.sleep(0.3)
    try:
        for r in range(a.runs):
            lanes = [("opspool", 1), ("beanstalkd", 1), ("opspool", 2), ("beanstalkd", 2)]
            for sysname, nw in (lanes if r % 2 == 0 else lanes[::-1]):
                if sysname == "opspool":
                    row = drain_once(st, nw, jobs, "{}", 512)
                else:
                    row = peer_drain_once(st, a, port, nw, jobs)
                keep = ("workers", "jobs", "complete", "seconds", "jobs_per_s", "commits_per_1k")
                row = dict(run=r + 1, system=sysname, **{k: row[k] for k in keep})
                append(a.out, "peers", row)
                print(f" peers run {r + 1}: {row}", flush=True)
    finally:
        bs.terminate()
        bs.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("what", nargs="+")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    os.makedirs(a.out, exist_ok=True)
    what = a.what
    if what == ["all"]:
        what = ["throughput", "latency", "footprint", "scale-backlog", "scale-workers"]
    st = Stack(a.build)
    try:
        for w in what:
            {"throughput": bench_throughput, "latency": bench_latency,
             "footprint": bench_footprint, "scale-backlog": bench_scale_backlog,
             "scale-workers": bench_scale_workers, "peers": bench_peers}[w](st, a)
    finally:
        st.stop()


if __name__ == "__main__":
    main()
