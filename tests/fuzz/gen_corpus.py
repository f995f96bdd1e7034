#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""gen_corpus.py — (re)writes the seed corpora under tests/fuzz/corpus/ (except envelope/,
whose seeds were produced by the encoder itself). Seeds are small valid and near-valid inputs;
the fuzzers grow their own corpora from them (kept out of the repo: run.sh works on a copy).
Usage: tests/fuzz/gen_corpus.py   (no dependencies; a minimal msgpack encoder is inlined)"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def mp(v):
    """Encode v as msgpack. bytes -> bin, str -> str, ('ext', t, b) -> ext, float -> f64."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        v = v.encode("utf-8", "surrogateescape")
        return (bytes([0xA0 | len(v)]) if len(v) < 32 else b"\xd9" + bytes([len(v)])) + v
    if isinstance(v, RawStr):
        return (bytes([0xA0 | len(v.b)]) if len(v.b) < 32 else b"\xd9" + bytes([len(v.b)])) + v.b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, tuple) and v[0] == "ext":
        return b"\xc7" + bytes([len(v[2]), v[1]]) + v[2]
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


class RawStr:
    """A msgpack str with arbitrary (possibly invalid UTF-8) bytes."""

    def __init__(self, b):
        self.b = b


def nest(depth):
    v = 1
    for _ in range(depth):
        v = [v]
    return v


def frame(v):
    b = mp(v)
    return struct.pack(">I", len(b)) + b


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    # ---- mpjson: msgpack values and JSON texts (the target tries both readings) ----
    write("mpjson", "object.mp", mp({"target": "web", "n": 3, "ok": True, "x": None,
                                     "f": 1.5, "neg": -7, "list": [1, "a", {"b": []}]}))
    write("mpjson", "deep_ok.mp", mp(nest(32)))
    write("mpjson", "deep_bad.mp", mp(nest(33)))
    write("mpjson", "bad_utf8.mp", mp({"s": RawStr(b"\xff\xfe")}))
    write("mpjson", "nul.mp", mp({"s": RawStr(b"a\x00b")}))
    write("mpjson", "bin.mp", mp({"b": b"\x00\x01"}))
    write("mpjson", "ext.mp", mp([("ext", 1, b"\x01\x02")]))
    write("mpjson", "big_uint.mp", mp([2**64 - 1]))
    write("mpjson", "int_key.mp", b"\x81\x01\x02")
    write("mpjson", "dup_key.mp", b"\x82\xa1a\x01\xa1a\x02")
    write("mpjson", "nan.mp", b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00")
    write("mpjson", "f32.mp", b"\xca\x3f\xc0\x00\x00")
    write("mpjson", "object.json", '{"target": "web", "lanes": [{"name": "a", "n": 1e3}], "u": "\\u00e9"}')
    write("mpjson", "deep.json", "[" * 40 + "]" * 40)
    write("mpjson", "nul_escape.json", '{"a": "x\\u0000y"}')
    write("mpjson", "big.json", '[18446744073709551615, -9223372036854775808, 1e308]')

    # ---- validate: "<kind>\n<payload>" ----
    v = {
        "noop_empty": ("noop", {}),
        "noop_full": ("noop", {"sleep_ms": 10, "fail": False, "fail_attempts": 1, "crash": False,
                               "crash_attempts": 0, "emit": 3, "result": {"a": [1, 2]}}),
        "noop_bad": ("noop", {"sleep_ms": -1, "bogus": 1}),
        "seed_ok": ("seed", {"target": "shop", "seed": -5, "scale": 10, "mode": "replace"}),
        "seed_bad": ("seed", {"target": "shop", "scale": "2"}),
        "backup_ok": ("backup", {"target": "shop", "verify": "restore",
                                 "retention": {"keep_daily": 0, "keep_weekly": 4, "keep_monthly": 6}}),
        "backup_path": ("backup", {"target": "shop", "verify_file": "../../etc/passwd"}),
        "bench_preset": ("benchmark", {"target": "web", "lanes": ["baseline"],
                                       "thresholds": ["p95<300ms", "error_rate<1%"]}),
        "bench_full": ("benchmark", {"target": "web", "cache_header": "X-Cache", "seed": 7, "lanes": [
            {"name": "open-1", "model": "open", "rate": 500, "connections": 100, "duration_s": 5,
             "requests_mix": [{"method": "GET", "path": "/r/k{key}", "weight": 9},
                              {"method": "POST", "path": "/api/urls", "headers": {"X-Test": "1"},
                               "body": {"target": "https://example.com", "user_id": 1}}],
             "keys": {"count": 1000, "dist": "zipf", "s": 1.1}},
            {"name": "count", "requests": 1000}]}),
        "bench_bad": ("benchmark", {"target": "web", "lanes": [{"name": "A B", "duration_s": 0}]}),
        "drill_restart": ("drill", {"target": "svc", "fault": {"type": "restart"}}),
        "drill_latency": ("drill", {"target": "svc", "fault": {"type": "latency", "latency_ms": 10,
                                                                 "duration_s": 5},
                                    "probe": {"path": "/health", "interval_ms": 100,
                                              "expect_status": [200]},
                                    "abort": {"min_availability": 0.5},
                                    "hypothesis": {"max_ttr": 30}}),
        "drill_k8s": ("drill", {"target": "k8s", "fault": {"type": "cpu", "load": 50, "workers": 1}}),
    }
    for name, (kind, payload) in v.items():
        write("validate", name, kind + "\n" + json.dumps(payload))
    write("validate", "not_object", "noop\n[]")
    write("validate", "deep", "benchmark\n" + '{"target": "web", "lanes": ' + "[" * 30 + "]" * 30 + "}")

    # ---- targets ----
    write("targets", "mixed", json.dumps({"targets": {
        "web": {"adapter": "local", "base_url": "http://127.0.0.1:8080", "health_path": "/health",
                "lanes": {"baseline": {"model": "closed", "connections": 8, "duration_s": 10}}},
        "shop": {"pg_dsn": "dbname=x", "seed": {"scale": 2}, "backup": {"keep_daily": 7}},
        "svc": {"adapter": "local", "base_url": "http://127.0.0.1:18081",
                "local": {"pidfile": "/tmp/x.pid", "proxy_listen": "127.0.0.1:18081",
                          "upstream": "127.0.0.1:18080"},
                "limits": {"max_duration_s": 60, "allowed_faults": ["restart", "cpu"],
                           "max_cpu_workers": 2}},
        "k8s": {"adapter": "kubernetes", "base_url": "http://x:80",
                "kubernetes": {"namespace": "shop", "selector": "app=x"},
                "limits": {"max_pods": 2, "allowed_faults": ["restart"]}}}}))
    write("targets", "empty", '{"targets": {}}')
    write("targets", "bad_name", '{"targets": {"Bad Name": {}}}')
    write("targets", "bad_adapter", '{"targets": {"a": {"adapter": "ssh"}}}')
    write("targets", "wrong_types", '{"targets": {"a": {"base_url": 1, "pg_dsn": [], "limits": "x",'
          ' "backup": {"keep_daily": "7"}, "seed": {"scale": 1e9}, "lanes": 3}}}')
    write("targets", "dup", '{"targets": {"a": {}, "a": {}}}')

    # ---- config: the JSON file ----
    write("config", "full", json.dumps({
        "redis_url": "redis://127.0.0.1:6379/0", "pg_dsn": "dbname=opspool", "prefix": "{p}",
        "worker_slots": 8, "worker_kinds": "noop, benchmark,seed", "allow_unsigned": True,
        "log_level": "debug", "retry_base_ms": 10, "retry_max_ms": 100, "http_addr": "0.0.0.0:9090",
        "worker_id": "w-1", "env_max_bytes": 2048, "signing_key": "k", "backup_root": "/tmp/b"}))
    write("config", "empty", "{}")
    write("config", "unknown_key", '{"redis_urll": "redis://x"}')
    write("config", "env_only", '{"config_file": "/etc/x"}')
    write("config", "bad_types", '{"worker_slots": "4", "allow_unsigned": 1, "prefix": 3}')
    write("config", "ranges", '{"worker_slots": 0, "lease_ms": 99999999999, "retry_max_ms": 1}')
    write("config", "kinds", '{"worker_kinds": "a,,b,a,' + ",".join("k%d" % i for i in range(20)) + '"}')
    write("config", "nul", '{"prefix": "a\\u0000b"}')
    write("config", "not_object", "[1]")
    write("config", "sentinels", json.dumps({
        "redis_sentinels": " s1:26380 ,[::1]:5000,s3", "redis_sentinel_master": "opspool",
        "redis_sentinel_username": "u", "redis_sentinel_password": "p"}))
    write("config", "sentinels_bad", '{"redis_sentinels": "s1:0,[::1,a b,", "redis_url": "unix:///x"}')

    # ---- cron: "<expr>\n<tz>\n<rfc3339>" ----
    for name, text in {
        "every_15": "*/15 * * * *\nEurope/Berlin\n2026-03-29T01:30:00Z",
        "daily_230": "30 2 * * *\nEurope/Berlin\n2026-10-25T00:00:00+02:00",
        "names": "0 9 * jan-mar mon-fri\nAmerica/New_York\n2026-01-02T03:04:05.123Z",
        "both_days": "0 0 13 * fri\nUTC",
        "lists": "5,10-20/5,55 0-23/6 1,15 */3 0,7",
        "never": "0 0 30 2 *\nUTC",
        "macro": "@hourly\nAsia/Kolkata\n2026-06-01 12:00:00.5-03:30",
        "yearly": "@yearly\nAustralia/Lord_Howe",
        "bad_field": "61 * * * *",
        "bad_tz": "* * * * *\n../../etc/passwd",
        "bad_step": "*/0 * * * *",
        "few_fields": "* * *",
        "ts_only": "\n\n9999-12-31T23:59:59.999Z",
    }.items():
        write("cron", name, text)

    # ---- frames: the child's event pipe ----
    ev = frame(["e", 1767225600000, "phase", {"name": "warmup"}])
    row = frame(["t", "benchmark_lanes", {"lane": "a", "p95_ms": 12.5}])
    fin = frame(["r", 0, {"ok": True}, None])
    fail = frame(["r", -4010, None, "target unreachable"])
    write("frames", "full_run", ev + row + ev + fin)
    write("frames", "failed", ev + fail)
    write("frames", "event_nil", frame(["e", 1, "progress", None]))
    write("frames", "after_end", fin + ev)
    write("frames", "bad_tag", frame(["x", 1, 2]))
    write("frames", "row_not_object", frame(["t", "tbl", [1]]))
    write("frames", "bad_utf8_type", frame(["e", 1, RawStr(b"\xff"), None]))
    write("frames", "too_big", struct.pack(">I", 0x7FFFFFFF) + b"\x90")
    write("frames", "trailing", struct.pack(">I", 2) + b"\x90\x90")
    write("frames", "partial", ev[:7])
    write("frames", "deep", frame(["e", 1, "x", nest(40)]))

    # ---- resp: flags byte + the server's bytes ----
    for name, (flags, text) in {
        "length": (0x00, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Cache: HIT\r\n\r\nhello"),
        "chunked": (0x12, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Cache: hit\r\n\r\n"
                          "5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n"),
        "keepalive_two": (0x30, "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n"
                                "Content-Length: 2\r\nConnection: close\r\n\r\nok"),
        "http10_eof": (0x40, "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody until close"),
        "head": (0x01, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
        "continue": (0x00, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                           "Content-Length: 0\r\n\r\n"),
        "bad_status": (0x00, "HTTP/1.1 99 X\r\n\r\n"),
        "conflicting_len": (0x00, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        "huge_chunk": (0x00, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "ffffffffffffffff\r\nab"),
        "overflow_len": (0x00, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        "bare_lf": (0x50, "HTTP/1.1 304 Not Modified\nConnection: keep-alive\n\n"),
    }.items():
        write("resp", name, bytes([flags]) + text.encode())

    # ---- http: "<METHOD> <path>\n<body>" ----
    for name, text in {
        "submit_noop": 'POST /v1/jobs\n{"kind": "noop", "payload": {"sleep_ms": 5}, '
                       '"idempotency_key": "k-1", "trace_id": "t", "run_at": "2030-01-02T03:04:05Z"}',
        "submit_bench": 'POST /v1/jobs\n{"kind": "benchmark", "payload": {"target": "web", '
                        '"lanes": [{"name": "a", "duration_s": 5}]}}',
        "submit_bad_json": 'POST /v1/jobs\n{"kind": "noop", ',
        "submit_array": "POST /v1/jobs\n[]",
        "submit_empty": "POST /v1/jobs\n",
        "submit_unknown_kind": 'POST /v1/jobs\n{"kind": "rm -rf", "payload": {}}',
        "schedule": 'POST /v1/schedules\n{"name": "nightly", "cron": "30 2 * * *", '
                    '"tz": "Europe/Berlin", "kind": "backup", "payload": {"target": "shop"}}',
        "get_job": "GET /v1/jobs/0190a3f2-7c1e-7abc-8def-0123456789ab\n",
        "cancel": "POST /v1/jobs/abc/cancel\n",
        "method_405": "PUT /v1/jobs\n",
        "not_found": "GET /v1/jobs/\n",
        "pause": "POST /v1/queues/noop/pause\n",
        "dead_retry": 'POST /v1/dead/noop/retry\n{"ids": ["x"]}',
        "bad_utf8_method": b"G\xffT /v1/queues\n".decode("latin-1"),
    }.items():
        write("http", name, text.encode("latin-1"))



if __name__ == "__main__":
    main()
