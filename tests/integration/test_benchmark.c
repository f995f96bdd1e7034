/* SPDX-License-Identifier: MIT */
/* test_benchmark.c — the benchmark kind and its engine against osp-stallserver (loopback; a
 * 200 ms whole-process stall every second):
 *   - the stall shows up in the open model's corrected p99 and not in the closed model's;
 *   - percentiles agree with an independent computation on the raw samples the engine dumps;
 *   - thresholds pass and fail when they should, with the failing ones named;
 *   - a dead target (closed port) fails clearly and quickly, in both models;
 *   - cancellation (the job deadline) stops a long lane promptly; lanes from target presets.
 * Bounded: every lane has a duration, every wait a timeout; the server is killed at teardown.
 * No PostgreSQL or Redis is used here (the shortener test covers the cache path). */
#include "common/base.h"
#include "jobs/benchmark/hist.h"
#include "jobs/benchmark/loadgen.h"
#include "jobs/job.h"
#include "jobs/runner.h"
#include "jobs/targets.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static pid_t g_server = -1;
static int g_port;

/* Start osp-stallserver and read "port N" from its stdout (bounded wait). */
static int start_server(void **state)
{
    (void)state;
    const char *bin = getenv("OSP_BIN_DIR");
    if (bin == NULL) {
        fprintf(stderr, "OSP_BIN_DIR not set\n");
        return -1;
    }
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/support/osp-stallserver", bin);
    int pfd[2];
    if (pipe(pfd) != 0) {
        return -1;
    }
    g_server = fork();
    if (g_server == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(path, path, "--stall-every-ms", "1000", "--stall-ms", "200", "--cache-hit-every",
              "4", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char buf[64] = "";
    size_t got = 0;
    struct pollfd p = {.fd = pfd[0], .events = POLLIN};
    while (got < sizeof(buf) - 1 && strchr(buf, '\n') == NULL && poll(&p, 1, 10000) == 1) {
        ssize_t n = read(pfd[0], buf + got, sizeof(buf) - 1 - got);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
        buf[got] = '\0';
    }
    close(pfd[0]);
    if (sscanf(buf, "port %d", &g_port) != 1) {
        fprintf(stderr, "osp-stallserver did not start (%s)\n", path);
        return -1;
    }
    return 0;
}

static int stop_server(void **state)
{
    (void)state;
    if (g_server > 0) {
        kill(g_server, SIGTERM);
        waitpid(g_server, NULL, 0);
    }
    return 0;
}

/* A closed loopback port: bind to port 0, note the port, close. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Run the kind inline on payload (JSON text) against a target "t" at port. */
static void run_job(const char *payload_text, int port, double deadline_s, struct job_report *rep)
{
    char tj[512];
    snprintf(tj, sizeof(tj),
             "{\"targets\": {\"t\": {\"adapter\": \"local\", \"base_url\": "
             "\"http://127.0.0.1:%d\", \"health_path\": \"/health\", \"lanes\": {\"quick\": "
             "{\"connections\": 2, \"duration_s\": 0.5}}}}}",
             port);
    struct osp_targets targets;
    struct osp_err err = {0};
    assert_int_equal(osp_targets_parse(&targets, tj, &err), 0);
    const struct job_kind *kind = job_kind_find("benchmark");
    assert_non_null(kind);
    json_error_t jerr;
    json_t *payload = json_loads(payload_text, 0, &jerr);
    if (payload == NULL) {
        fail_msg("payload: %s", jerr.text);
    }
    if (kind->validate(payload, &targets, &err) != 0) {
        fail_msg("validate: %s", err.msg);
    }
    struct osp_job job;
    memset(&job, 0, sizeof(job));
    snprintf(job.kind, sizeof(job.kind), "benchmark");
    job.payload = payload;
    job.attempt = 1;
    job.max_attempts = 1;
    job_report_init(rep);
    struct osp_config cfg;
    osp_config_defaults(&cfg);
    job_run_inline(kind, &job, &targets, &cfg, osp_mono_ns() + (int64_t)(deadline_s * 1e9), rep);
    osp_config_deinit(&cfg);
    json_decref(payload);
    osp_targets_deinit(&targets);
}

static const json_t *lane(const struct job_report *rep, size_t i)
{
    const json_t *l = json_array_get(json_object_get(rep->result, "lanes"), i);
    assert_non_null(l);
    return l;
}

static double num(const json_t *o, const char *path1, const char *path2)
{
    const json_t *v = json_object_get(o, path1);
    if (path2 != NULL) {
        v = json_object_get(v, path2);
    }
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void test_stall_open_vs_closed(void **state)
{
    (void)state;
    struct job_report rep;
    run_job("{\"target\": \"t\", \"lanes\": ["
            " {\"name\": \"open\", \"model\": \"open\", \"rate\": 1000, \"connections\": 32,"
            "  \"duration_s\": 4, \"warmup_s\": 0.5},"
            " {\"name\": \"closed\", \"model\": \"closed\", \"connections\": 4,"
            "  \"duration_s\": 4, \"warmup_s\": 0.5}]}",
            g_port, 120, &rep);
    if (rep.status != 0) {
        fail_msg("run failed: %s", rep.error != NULL ? rep.error : "(no message)");
    }
    const json_t *open = lane(&rep, 0), *closed = lane(&rep, 1);
    double open_p99 = num(open, "latency_ms", "p99");
    double open_u_p99 = num(open, "latency_uncorrected_ms", "p99");
    double closed_p99 = num(closed, "latency_ms", "p99");
    double closed_max = num(closed, "latency_ms", "max");
    fprintf(stderr, "# open corrected p99 %.1f ms, uncorrected p99 %.1f ms; closed p99 %.2f ms, "
                    "max %.1f ms\n", open_p99, open_u_p99, closed_p99, closed_max);
    /* ~20 % of the open model's intended sends fall in a stall and wait up to 200 ms. */
    assert_true(open_p99 >= 150.0);
    /* The closed model sees a handful of stalled requests among tens of thousands: its p99
     * does not show the stall, though its max does. */
    assert_true(closed_p99 < 50.0);
    assert_true(closed_max >= 150.0);
    assert_true(open_p99 > 3.0 * closed_p99);
    /* Latency measured from the intended send time is never below the one measured from the
     * actual send, and on average it is above it: a stall of 200 ms at 1,000 requests/s
     * needs more than the lane's 32 connections, so sends wait. (The p99s may coincide when
     * both fall inside the stall, which a loaded machine makes likely: compare the means.) */
    assert_true(open_u_p99 <= open_p99);
    assert_true(num(open, "latency_uncorrected_ms", "mean") < num(open, "latency_ms", "mean"));
    /* Rows and events: one per lane. */
    assert_int_equal(json_array_size(rep.rows), 2);
    const json_t *row = json_object_get(json_array_get(rep.rows, 0), "row");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rep.rows, 0), "table")),
                        "benchmark_results");
    assert_string_equal(json_string_value(json_object_get(row, "lane")), "open");
    assert_true(json_is_number(json_object_get(row, "p99_ms")));
    assert_true(json_is_number(json_object_get(row, "target_rps")));
    size_t nlane_events = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(rep.events, i, ev) {
        nlane_events += strcmp(json_string_value(json_object_get(ev, "type")), "lane") == 0;
    }
    assert_int_equal(nlane_events, 2);
    job_report_deinit(&rep);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void check_pctls(const struct bench_hist *h, uint64_t *v, size_t n, const char *what)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    static const double ps[] = {50, 90, 95, 99, 99.9, 100};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        size_t rank = (size_t)ceil(ps[i] / 100.0 * (double)n - 1e-9);
        uint64_t exact = v[(rank < 1 ? 1 : rank) - 1];
        uint64_t got = bench_hist_percentile(h, ps[i]);
        fprintf(stderr, "# %s p%g: samples %llu us, histogram %llu us\n", what, ps[i],
                (unsigned long long)exact, (unsigned long long)got);
        /* The histogram's precision: never below, at most 1/1024 above. */
        assert_true(got >= exact);
        assert_true((double)(got - exact) <= (double)exact / 1024.0 + 1.0);
    }
}

static void test_percentiles_match_samples(void **state)
{
    (void)state;
    char path[] = "/tmp/osp-bench-samples-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct bench_lg_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", g_port);
    struct osp_err err = {0};
    assert_int_equal(bench_lg_resolve(&cfg, url, &err), 0);
    struct bench_mix_item mix = {.method = "GET", .path = "/k/{key}", .weight = 1, .headers = ""};
    cfg.model = BENCH_MODEL_OPEN;
    cfg.rate = 1500;
    cfg.connections = 16;
    cfg.duration_s = 3;
    cfg.mix = &mix;
    cfg.nmix = 1;
    cfg.key_count = 100;
    cfg.zipf = true;
    cfg.zipf_s = 1.1;
    cfg.seed = 7;
    cfg.connect_timeout_ms = 2000;
    cfg.read_timeout_ms = 5000;
    cfg.samples_path = path;
    struct bench_lg_result res;
    assert_int_equal(bench_lg_run(&cfg, &res, &err), 0);
    assert_false(res.aborted);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    /* One line per recorded latency: every response, and every request unfinished at the end
     * (in flight or never sent: "-" as its uncorrected figure), which the histograms hold too. */
    size_t cap = 16384, n = 0, nu = 0;
    uint64_t *corr = malloc(cap * sizeof(*corr)), *unc = malloc(cap * sizeof(*unc));
    unsigned long long a;
    char b[32];
    while (fscanf(f, "%llu %31s", &a, b) == 2) {
        if (n == cap) {
            cap *= 2;
            corr = realloc(corr, cap * sizeof(*corr));
            unc = realloc(unc, cap * sizeof(*unc));
        }
        corr[n++] = a;
        if (strcmp(b, "-") != 0) {
            unc[nu++] = strtoull(b, NULL, 10);
        }
    }
    fclose(f);
    unlink(path);
    assert_int_equal(n, bench_hist_count(res.lat));
    assert_int_equal(nu, bench_hist_count(res.ulat));
    assert_int_equal(n, res.responses + res.in_flight_at_end + res.dropped);
    assert_true(n > 1000);
    check_pctls(res.lat, corr, n, "corrected");
    check_pctls(res.ulat, unc, nu, "uncorrected");
    free(corr);
    free(unc);
    bench_lg_result_deinit(&res);
}

static void test_thresholds(void **state)
{
    (void)state;
    struct job_report rep;
    /* Fails: p50 cannot be below 1 us; the server marks 1 response in 4 as a hit. */
    run_job("{\"target\": \"t\", \"thresholds\": [\"rps>1\", \"p50<0.001ms\"],"
            " \"lanes\": [{\"name\": \"a\", \"connections\": 2, \"duration_s\": 1,"
            "  \"thresholds\": [\"cache_hit_ratio>0.5\", \"error_rate<1%\"]}]}",
            g_port, 60, &rep);
    assert_int_equal(rep.status, OSP_EVERDICT); /* a breached threshold is a final verdict */
    assert_non_null(rep.error);
    assert_non_null(strstr(rep.error, "thresholds failed"));
    assert_non_null(strstr(rep.error, "a: p50<0.001ms"));
    assert_non_null(strstr(rep.error, "a: cache_hit_ratio>0.5 (observed 0.25"));
    assert_null(strstr(rep.error, "rps>1"));
    assert_false(json_is_true(json_object_get(rep.result, "passed")));
    const json_t *thr = json_object_get(lane(&rep, 0), "thresholds");
    assert_int_equal(json_array_size(thr), 4);
    assert_true(json_is_true(json_object_get(json_array_get(thr, 0), "passed")));
    assert_false(json_is_true(json_object_get(json_array_get(thr, 1), "passed")));
    double ratio = num(lane(&rep, 0), "cache_hit_ratio", NULL);
    assert_true(fabs(ratio - 0.25) < 0.01);
    assert_false(json_is_true(json_object_get(json_object_get(json_array_get(rep.rows, 0), "row"),
                                              "passed")));
    job_report_deinit(&rep);

    /* Passes. */
    run_job("{\"target\": \"t\", \"thresholds\": [\"error_rate<1%\", \"rps>10\", \"p50<1s\","
            " \"cache_hit_ratio>0.2\"], \"lanes\": [\"quick\"]}",
            g_port, 60, &rep);
    if (rep.status != 0) {
        fail_msg("expected a pass: %s", rep.error != NULL ? rep.error : "");
    }
    assert_true(json_is_true(json_object_get(rep.result, "passed")));
    assert_string_equal(json_string_value(json_object_get(lane(&rep, 0), "name")), "quick");
    job_report_deinit(&rep);
}

static void test_dead_target(void **state)
{
    (void)state;
    int port = dead_port();
    static const char *const payloads[] = {
        "{\"target\": \"t\", \"lanes\": [{\"name\": \"dead\", \"connections\": 50,"
        " \"duration_s\": 60}]}",
        "{\"target\": \"t\", \"lanes\": [{\"name\": \"dead\", \"model\": \"open\","
        " \"rate\": 100, \"connections\": 4, \"duration_s\": 60}]}",
    };
    for (size_t i = 0; i < 2; i++) {
        struct job_report rep;
        int64_t t0 = osp_mono_ns();
        run_job(payloads[i], port, 120, &rep);
        double took_s = (double)(osp_mono_ns() - t0) / 1e9;
        fprintf(stderr, "# dead target failed after %.3f s: %s\n", took_s,
                rep.error != NULL ? rep.error : "");
        assert_int_equal(rep.status, OSP_EFAILED);
        assert_non_null(rep.error);
        assert_non_null(strstr(rep.error, "cannot connect to 127.0.0.1:"));
        assert_non_null(strstr(rep.error, "Connection refused"));
        /* Generous bound (the lane asked for 60 s): the point is "not a hang". */
        assert_true(took_s < 20.0);
        assert_true(json_is_string(json_object_get(lane(&rep, 0), "aborted")));
        if (i == 0) {
            /* Closed model: each failed connection stands for a request. (The open model's
             * failed attempts were pre-connects that carried no request yet.) */
            assert_true(num(lane(&rep, 0), "errors", "connect") >= 1);
        }
        job_report_deinit(&rep);
    }
}

/* Several engines make one result: connections and request counts split exactly, the open
 * model's one schedule shared out (intended requests = rate x duration, whatever the split),
 * histograms merged without loss. */
static void test_engines_split(void **state)
{
    (void)state;
    assert_true(bench_lg_default_engines() >= 1);
    struct bench_lg_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", g_port);
    struct osp_err err = {0};
    assert_int_equal(bench_lg_resolve(&cfg, url, &err), 0);
    struct bench_mix_item mix = {.method = "GET", .path = "/k/{key}", .weight = 1, .headers = ""};
    cfg.mix = &mix;
    cfg.nmix = 1;
    cfg.key_count = 100;
    cfg.seed = 3;
    cfg.connect_timeout_ms = 2000;
    cfg.read_timeout_ms = 5000;

    /* Closed model, a request count: 5 connections on 2 engines (3 + 2), 1,001 requests. */
    cfg.model = BENCH_MODEL_CLOSED;
    cfg.connections = 5;
    cfg.max_requests = 1001;
    struct bench_lg_result res;
    assert_int_equal(bench_lg_run_engines(&cfg, 2, &res, &err), 0);
    assert_int_equal(res.requests, 1001);
    assert_int_equal(res.responses + bench_lg_error_total(&res), 1001);
    assert_int_equal(bench_hist_count(res.lat), res.responses + res.in_flight_at_end);
    assert_true(res.connects >= 5);
    bench_lg_result_deinit(&res);

    /* Open model: 400/s for 2 s on 2 engines of 4 connections: 800 intended requests in all. */
    cfg.model = BENCH_MODEL_OPEN;
    cfg.connections = 8;
    cfg.max_requests = 0;
    cfg.rate = 400;
    cfg.duration_s = 2;
    assert_int_equal(bench_lg_run_engines(&cfg, 2, &res, &err), 0);
    uint64_t intended = res.issued + res.dropped;
    fprintf(stderr, "# 2 engines: intended %llu (issued %llu, dropped %llu), responses %llu\n",
            (unsigned long long)intended, (unsigned long long)res.issued,
            (unsigned long long)res.dropped, (unsigned long long)res.responses);
    assert_true(intended >= 798 && intended <= 802);
    assert_int_equal(bench_hist_count(res.lat), res.responses + res.in_flight_at_end + res.dropped);
    assert_true(res.connects >= 8);
    bench_lg_result_deinit(&res);

    /* More engines than connections: one engine per connection. Samples need one engine. */
    cfg.connections = 1;
    cfg.duration_s = 0.3;
    assert_int_equal(bench_lg_run_engines(&cfg, 8, &res, &err), 0);
    assert_true(res.issued > 0);
    bench_lg_result_deinit(&res);
    cfg.connections = 4;
    cfg.samples_path = "/dev/null";
    assert_int_not_equal(bench_lg_run_engines(&cfg, 2, &res, &err), 0);
    assert_non_null(strstr(err.msg, "single engine"));
    bench_lg_result_deinit(&res);
}

static void test_cancel_stops_promptly(void **state)
{
    (void)state;
    struct job_report rep;
    int64_t t0 = osp_mono_ns();
    /* The job deadline (1 s) makes job_is_cancelled() true long before the lane's 60 s. */
    run_job("{\"target\": \"t\", \"lanes\": [{\"name\": \"long\", \"connections\": 2,"
            " \"duration_s\": 60}, {\"name\": \"never\", \"connections\": 2, \"duration_s\": 60}]}",
            g_port, 1.0, &rep);
    double took_s = (double)(osp_mono_ns() - t0) / 1e9;
    assert_int_equal(rep.status, OSP_EFAILED);
    assert_non_null(strstr(rep.error, "cancelled during lane long"));
    assert_true(took_s < 20.0);
    assert_int_equal(json_array_size(json_object_get(rep.result, "lanes")), 1);
    assert_true(json_is_true(json_object_get(lane(&rep, 0), "cancelled")));
    job_report_deinit(&rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stall_open_vs_closed),
        cmocka_unit_test(test_percentiles_match_samples),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_dead_target),
        cmocka_unit_test(test_engines_split),
        cmocka_unit_test(test_cancel_stops_promptly),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
