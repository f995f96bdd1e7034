/* SPDX-License-Identifier: MIT */
/* test_drill.c — the drill's pure parts: payload validation (one clear message per field,
 * target limits enforced), per-phase statistics, time to detect / recover and the verdict from
 * synthetic probe series, the HTTP response parser and URL splitting. */
#include "common/base.h"
#include "jobs/drill/drill.h"
#include "jobs/drill/k8s.h"
#include "jobs/job.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *const targets_json =
    "{\"targets\": {"
    " \"svc\": {\"adapter\": \"local\", \"base_url\": \"http://127.0.0.1:18081\","
    "   \"local\": {\"pidfile\": \"/tmp/x.pid\", \"proxy_listen\": \"127.0.0.1:18081\","
    "             \"upstream\": \"127.0.0.1:18080\"},"
    "   \"limits\": {\"max_duration_s\": 60, \"allowed_faults\": [\"restart\", \"latency\", "
    "\"cpu\"],"
    "              \"max_cpu_workers\": 2}},"
    " \"nolimits\": {\"adapter\": \"local\", \"base_url\": \"http://127.0.0.1:18080\","
    "   \"local\": {\"pidfile\": \"/tmp/x.pid\"}},"
    " \"direct\": {\"adapter\": \"local\", \"base_url\": \"http://127.0.0.1:18080\","
    "   \"local\": {\"proxy_listen\": \"127.0.0.1:18081\", \"upstream\": \"127.0.0.1:18080\"},"
    "   \"limits\": {\"allowed_faults\": [\"latency\"]}},"
    " \"k8s\": {\"adapter\": \"kubernetes\", \"base_url\": \"http://shortener.shop:8080\","
    "   \"kubernetes\": {\"namespace\": \"shop\", \"selector\": \"app=shortener\","
    "                  \"api_server\": \"https://10.0.0.1:443\"},"
    "   \"limits\": {\"max_pods\": 2, \"allowed_faults\": [\"restart\", \"cpu\", \"latency\"]}},"
    " \"k8s_all\": {\"adapter\": \"kubernetes\", \"base_url\": \"http://x:80\","
    "   \"kubernetes\": {\"namespace\": \"shop\", \"selector\": \"\"},"
    "   \"limits\": {\"allowed_faults\": [\"restart\"]}}"
    "}}";

static struct osp_targets g_targets;

static int setup(void **state)
{
    (void)state;
    struct osp_err err = {0};
    return osp_targets_parse(&g_targets, targets_json, &err);
}

static int teardown(void **state)
{
    (void)state;
    osp_targets_deinit(&g_targets);
    return 0;
}

/* Validate text against the targets (or none); returns the message ("" when valid). */
static const char *check(const char *text, bool with_targets)
{
    static struct osp_err err;
    memset(&err, 0, sizeof(err));
    json_t *p = json_loads(text, 0, NULL);
    assert_non_null(p);
    int rc = job_kind_find("drill")->validate(p, with_targets ? &g_targets : NULL, &err);
    json_decref(p);
    if (rc == 0) {
        return "";
    }
    assert_int_equal(rc, OSP_EINVAL);
    assert_true(err.msg[0] != '\0');
    return err.msg;
}

#define assert_msg(text, targets, needle)                                                          \
    do {                                                                                           \
        const char *m_ = check(text, targets);                                                     \
        if (strstr(m_, needle) == NULL) {                                                          \
            fail_msg("payload %s: expected message containing \"%s\", got \"%s\"", text, needle,   \
                     m_);                                                                          \
        }                                                                                          \
    } while (0)

static void test_validate_fields(void **state)
{
    (void)state;
    assert_string_equal(check("{\"target\": \"svc\", \"fault\": {\"type\": \"restart\"}}", true),
                        "");
    assert_string_equal(check("{\"target\": \"anything\", \"fault\": {\"type\": \"cpu\"}}", false),
                        "");
    assert_msg("[]", false, "payload: must be an object");
    assert_msg("{}", false, "payload.target: required");
    assert_msg("{\"target\": \"svc\"}", false, "payload.fault: required");
    assert_msg("{\"target\": \"svc\", \"fault\": {}}", false, "payload.fault.type: required");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"disk\"}}", false,
               "payload.fault.type: must be");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"restart\", \"bogus\": 1}}", false,
               "payload.fault.bogus: unknown field");
    assert_msg("{\"target\": \"svc\", \"x\": 1, \"fault\": {\"type\": \"restart\"}}", false,
               "payload.x: unknown field");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"latency\"}}", false,
               "payload.fault.latency_ms: required");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"latency\", \"latency_ms\": 10, "
               "\"jitter_ms\": 20}}",
               false, "payload.fault.jitter_ms");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"restart\", \"signal\": \"HUP\"}}",
               false, "payload.fault.signal: must be TERM or KILL");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"restart\", \"method\": \"drain\"}}",
               false, "payload.fault.method");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"cpu\", \"load\": 101}}", false,
               "payload.fault.load: must be an integer 1..100");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"restart\"}, \"probe\": "
               "{\"interval_ms\": 5}}",
               false, "payload.probe.interval_ms: must be an integer 50..5000");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"restart\"}, \"probe\": {\"path\": "
               "\"/a b\"}}",
               false, "payload.probe.path");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"restart\"}, \"probe\": "
               "{\"expect_status\": [500, 200]}}",
               false, "payload.probe.expect_status");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"restart\"}, \"abort\": "
               "{\"min_availability\": 2}}",
               false, "payload.abort.min_availability: must be a number 0..1");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"restart\"}, \"hypothesis\": "
               "{\"max_ttr\": 1}}",
               false, "payload.hypothesis.max_ttr: unknown field");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"restart\"}, \"recovery\": 3}", false,
               "payload.recovery: must be an object");
}

static void test_validate_limits(void **state)
{
    (void)state;
    assert_msg("{\"target\": \"nope\", \"fault\": {\"type\": \"restart\"}}", true,
               "payload.target: no target \"nope\"");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"restart\", \"duration_s\": 61}}",
               true, "exceeds target svc limits.max_duration_s 60");
    assert_string_equal(
        check("{\"target\": \"svc\", \"fault\": {\"type\": \"restart\", \"duration_s\": 61}}",
              false),
        "");
    assert_msg("{\"target\": \"svc\", \"fault\": {\"type\": \"cpu\", \"workers\": 3}}", true,
               "limits.max_cpu_workers 2");
    /* No allowed_faults list: the target allows no drill at all. */
    assert_msg("{\"target\": \"nolimits\", \"fault\": {\"type\": \"restart\"}}", true,
               "restart is not in target nolimits limits.allowed_faults");
    /* A latency fault is probed through the proxy, or it would measure nothing: a base_url
     * that names the service itself stays for other kinds, probes go to proxy_listen. */
    assert_string_equal(
        check("{\"target\": \"direct\", \"fault\": {\"type\": \"latency\", \"latency_ms\": 5}}",
              true),
        "");
    assert_msg("{\"target\": \"k8s\", \"fault\": {\"type\": \"restart\", \"pods\": 3}}", true,
               "limits.max_pods 2");
    assert_string_equal(
        check("{\"target\": \"k8s\", \"fault\": {\"type\": \"restart\", \"pods\": 2}}", true), "");
    assert_msg("{\"target\": \"k8s_all\", \"fault\": {\"type\": \"restart\"}}", true,
               "kubernetes.selector: required");

    struct drill_spec s;
    struct osp_err err = {0};
    json_t *p =
        json_loads("{\"target\": \"svc\", \"fault\": {\"type\": \"latency\", \"latency_ms\": 200,"
                   " \"jitter_ms\": 20, \"duration_s\": 5}}",
                   0, NULL);
    assert_int_equal(drill_spec_parse(p, &g_targets, &s, &err), 0);
    assert_int_equal(s.fault, DRILL_FAULT_LATENCY);
    assert_int_equal(s.latency_ms, 200);
    assert_int_equal(s.interval_ms, 200);
    assert_int_equal(s.recovery_consecutive, 3);
    assert_string_equal(s.health_path, "/health");
    assert_true(s.hyp_max_ttr_ms < 0 && s.abort_min_availability < 0);
    assert_true(drill_spec_budget_s(&s) >= 5 + 30);
    json_decref(p);

    /* Probes cross the proxy whatever base_url names. */
    p = json_loads(
        "{\"target\": \"direct\", \"fault\": {\"type\": \"latency\", \"latency_ms\": 5}}", 0, NULL);
    assert_int_equal(drill_spec_parse(p, &g_targets, &s, &err), 0);
    assert_string_equal(s.base_url, "http://127.0.0.1:18080");
    assert_string_equal(s.probe_url, "http://127.0.0.1:18081");
    json_decref(p);
    /* Without a proxy they call base_url. */
    p = json_loads("{\"target\": \"k8s\", \"fault\": {\"type\": \"restart\", \"pods\": 1}}", 0,
                   NULL);
    assert_int_equal(drill_spec_parse(p, &g_targets, &s, &err), 0);
    assert_string_equal(s.probe_url, "http://shortener.shop:8080");
    json_decref(p);
}

/* ---- Series ---- */

static void add(struct drill_series *s, int64_t t, int ph, bool ok, int lat_ms)
{
    struct drill_probe p = {.sched_ms = t,
                            .done_ms = t + lat_ms,
                            .latency_us = lat_ms * 1000,
                            .status = (int16_t)(ok ? 200 : 0),
                            .phase = (uint8_t)ph,
                            .err = (uint8_t)(ok ? DRILL_PERR_NONE : DRILL_PERR_CONNECT),
                            .ok = ok};
    drill_series_add(s, &p);
}

/* steady 0..900 ok; inject at 1000; observe: 1000..1400 failing, 1500.. ok; rollback at 3000;
 * recovery ok. */
static void restart_series(struct drill_series *s)
{
    for (int t = 0; t < 1000; t += 100) {
        add(s, t, DRILL_PH_STEADY, true, 2);
    }
    for (int t = 1000; t < 3000; t += 100) {
        add(s, t, DRILL_PH_OBSERVE, t >= 1500, t >= 1500 ? 3 : 0);
    }
    for (int t = 3000; t < 3500; t += 100) {
        add(s, t, DRILL_PH_RECOVERY, true, 1);
    }
}

static void test_stats_and_times(void **state)
{
    (void)state;
    struct drill_series s = {0};
    restart_series(&s);
    struct drill_phase_stats st;
    drill_phase_stats(&s, DRILL_PH_OBSERVE, &st);
    assert_int_equal(st.total, 20);
    assert_int_equal(st.ok, 15);
    assert_true(st.availability > 0.749 && st.availability < 0.751);
    assert_int_equal(st.errors[DRILL_PERR_CONNECT], 5);
    /* refused probes have no latency: percentiles describe answers only */
    assert_true(st.p50_ms > 2.99 && st.p50_ms < 3.01);
    drill_phase_stats(&s, DRILL_PH_INJECT, &st);
    assert_int_equal(st.total, 0);
    assert_true(st.availability < 0 && st.p95_ms < 0);

    assert_int_equal(drill_time_to_detect(&s, 1000), 0);
    assert_int_equal(drill_time_to_detect(&s, 1600), -1);
    /* recovery timed from the restart (an instantaneous fault): first of 3 passes at 1500 */
    assert_int_equal(drill_time_to_recover(&s, 1000, 3), 500);
    assert_int_equal(drill_time_to_recover(&s, 3000, 3), 0);
    assert_int_equal(drill_time_to_recover(&s, 3000, 6), -1);
    assert_int_equal(drill_tail_passes(&s, DRILL_PH_RECOVERY), 5);
    unsigned n = 0;
    double a = drill_availability_between(&s, 1000, 1500, &n);
    assert_int_equal(n, 5);
    assert_true(a == 0.0);
    drill_series_deinit(&s);

    /* A blip inside the K-run restarts it; unfinished probes are ignored. */
    struct drill_series b = {0};
    add(&b, 0, DRILL_PH_OBSERVE, true, 1);
    add(&b, 100, DRILL_PH_OBSERVE, true, 1);
    add(&b, 200, DRILL_PH_OBSERVE, false, 1);
    add(&b, 300, DRILL_PH_OBSERVE, true, 1);
    struct drill_probe inflight = {.sched_ms = 400, .done_ms = -1};
    drill_series_add(&b, &inflight);
    add(&b, 500, DRILL_PH_OBSERVE, true, 1);
    add(&b, 600, DRILL_PH_OBSERVE, true, 1);
    assert_int_equal(drill_time_to_recover(&b, 0, 3), 300);

    /* Percentiles by nearest rank over 1..100 ms */
    struct drill_series c = {0};
    for (int i = 100; i >= 1; i--) {
        add(&c, i, DRILL_PH_STEADY, true, i);
    }
    drill_phase_stats(&c, DRILL_PH_STEADY, &st);
    assert_true(st.p50_ms == 50 && st.p95_ms == 95 && st.p99_ms == 99 && st.max_ms == 100);
    drill_series_deinit(&b);
    drill_series_deinit(&c);
}

static void test_verdict(void **state)
{
    (void)state;
    struct drill_spec spec = {.recovery_consecutive = 3,
                              .recovery_timeout_s = 30,
                              .hyp_max_ttr_ms = 1000,
                              .hyp_max_ttd_ms = -1,
                              .hyp_min_availability = 0.7,
                              .hyp_max_p95_ms = -1};
    struct drill_outcome o = {.injected = true,
                              .recovered = true,
                              .ttd_ms = 0,
                              .ttr_ms = 500,
                              .availability_under_fault = 0.8,
                              .under_fault_probes = 25,
                              .observe_p95_ms = 3};
    json_t *r = json_array();
    assert_string_equal(drill_verdict(&spec, &o, r), "pass");
    assert_int_equal(json_array_size(r), 0);

    o.ttr_ms = 1500;
    o.availability_under_fault = 0.5;
    assert_string_equal(drill_verdict(&spec, &o, r), "fail");
    assert_int_equal(json_array_size(r), 2);
    assert_non_null(strstr(json_string_value(json_array_get(r, 0)), "time to recover 1500 ms"));
    json_array_clear(r);

    o.recovered = false;
    o.ttr_ms = -1;
    assert_string_equal(drill_verdict(&spec, &o, r), "fail");
    assert_non_null(strstr(json_string_value(json_array_get(r, 0)), "did not recover"));
    json_array_clear(r);

    struct drill_outcome few = {.injected = true, .recovered = true, .under_fault_probes = 2};
    assert_string_equal(drill_verdict(&spec, &few, r), "inconclusive");
    struct drill_outcome gate = {.steady_failed = true};
    assert_string_equal(drill_verdict(&spec, &gate, r), "aborted");
    struct drill_outcome ab = {.injected = true, .abort_fired = true, .under_fault_probes = 30};
    assert_string_equal(drill_verdict(&spec, &ab, r), "aborted");
    struct drill_outcome cx = {.injected = true, .cancelled = true, .abort_fired = true};
    assert_string_equal(drill_verdict(&spec, &cx, r), "interrupted");
    struct drill_outcome er = {.injected = true, .cancelled = true, .error = true};
    assert_string_equal(drill_verdict(&spec, &er, r), "error");
    json_decref(r);
}

/* ---- HTTP parsing ---- */

static int parse(const char *s, bool eof, struct drill_http_resp *r)
{
    return drill_http_parse(s, strlen(s), eof, r);
}

static void test_http_parse(void **state)
{
    (void)state;
    struct drill_http_resp r;
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", false, &r),
                     DRILL_HTTP_DONE);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.content_length, 3);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok", false, &r),
                     DRILL_HTTP_MORE);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok", true, &r),
                     DRILL_HTTP_BAD);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\ncontent-length:0\r\n\r\n", false, &r),
                     DRILL_HTTP_DONE);
    assert_int_equal(parse("HTTP/1.1 503 Service Unavailable\r\nX: y\r\n", false, &r),
                     DRILL_HTTP_MORE);
    assert_int_equal(parse("HTTP/1.1 503 Service Unavailable\r\n\r\nbody", true, &r),
                     DRILL_HTTP_DONE);
    assert_int_equal(r.status, 503);
    assert_int_equal(parse("HTTP/1.1 503 Service Unavailable\r\n\r\nbody", false, &r),
                     DRILL_HTTP_MORE);
    assert_int_equal(parse("HTTP/1.1 204 No Content\r\n\r\n", false, &r), DRILL_HTTP_DONE);
    assert_int_equal(
        parse("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n", false, &r),
        DRILL_HTTP_MORE);
    assert_int_equal(
        parse("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false,
              &r),
        DRILL_HTTP_DONE);
    assert_int_equal(parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, &r),
                     DRILL_HTTP_DONE);
    assert_int_equal(parse("SSH-2.0-OpenSSH", false, &r), DRILL_HTTP_BAD);
    assert_int_equal(parse("HTTP/1", false, &r), DRILL_HTTP_MORE);
    assert_int_equal(parse("HTTP/1.1 2x0 OK\r\n\r\n", false, &r), DRILL_HTTP_BAD);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", false, &r),
                     DRILL_HTTP_BAD);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", false, &r), DRILL_HTTP_BAD);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nX: y", true, &r), DRILL_HTTP_BAD);
}

static void test_urls(void **state)
{
    (void)state;
    char host[64];
    unsigned port = 0;
    assert_int_equal(drill_parse_base_url("http://127.0.0.1:8080", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(drill_parse_base_url("http://svc.shop/x", host, sizeof(host), &port), 0);
    assert_string_equal(host, "svc.shop");
    assert_int_equal(port, 80);
    assert_int_equal(drill_parse_base_url("https://x:1", host, sizeof(host), &port), OSP_EINVAL);
    assert_int_equal(drill_parse_base_url("http://u:p@x:1", host, sizeof(host), &port), OSP_EINVAL);
    assert_int_equal(drill_parse_base_url("http://x:99999", host, sizeof(host), &port), OSP_EINVAL);
    assert_int_equal(drill_parse_hostport("localhost:1", host, sizeof(host), &port), 0);
    assert_int_equal(drill_parse_hostport(":1", host, sizeof(host), &port), OSP_EINVAL);
    assert_int_equal(drill_parse_hostport("x:", host, sizeof(host), &port), OSP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_fields), cmocka_unit_test(test_validate_limits),
        cmocka_unit_test(test_stats_and_times), cmocka_unit_test(test_verdict),
        cmocka_unit_test(test_http_parse),      cmocka_unit_test(test_urls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
