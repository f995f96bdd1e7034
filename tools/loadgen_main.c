/* SPDX-License-Identifier: MIT */
/* loadgen_main.c — opspool-loadgen: the benchmark kind's engine outside the pool, for
 * benchmarks against wrk, debugging and tests. Two modes:
 *
 *   opspool-loadgen [-c conns] [-d secs] [-n requests] [-R rate] [-w warmup_s] [-m METHOD]
 *                   [-H 'Name: value']... [-b body] [--keys N] [--zipf S] [--seed N]
 *                   [--connect-timeout ms] [--timeout ms] [--cache-header NAME]
 *                   [--samples FILE] [--json] http://host:port/path
 *       One lane: closed model, or open model when -R is given. Prints a summary (or one JSON
 *       object with --json); --samples writes "corrected_us uncorrected_us" per response and
 *       per request unfinished at the end ("-" as uncorrected for one never sent).
 *
 *   opspool-loadgen --job PAYLOAD.json --targets TARGETS.json [--timeout-s N]
 *       Runs the benchmark kind in-process exactly as a worker would (job_run_inline) and
 *       prints {"status", "error", "result", "events", "rows"}. Exit 0 when the job passed.
 *
 *   opspool-loadgen --help            this usage, to stdout
 *   opspool-loadgen --print-config ARGS...
 *       Parses ARGS as above and prints the settings that run would use (name=value), then
 *       exits without sending a request: for checking a command line.
 *
 * Exit status: 0 ok, 1 the run failed (aborted, thresholds), 2 usage (a malformed number is a
 * usage error, never a silent 0). SIGINT/SIGTERM stop the run early and still print what was
 * measured. */
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/benchmark/loadgen.h"
#include "jobs/benchmark/spec.h"
#include "jobs/job.h"
#include "jobs/runner.h"
#include "jobs/targets.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t lgm_stop;

static void lgm_on_signal(int sig)
{
    (void)sig;
    lgm_stop = 1;
}

static bool lgm_should_stop(void *arg)
{
    (void)arg;
    return lgm_stop != 0;
}

static void lgm_usage_text(FILE *out)
{
    fprintf(out,
            "usage: opspool-loadgen [-t engines] [-c conns] [-d secs] [-n requests] [-R rate]\n"
            "         [-w warmup_s]\n"
            "         [-m METHOD] [-H 'Name: value']... [-b body] [--keys N] [--zipf S]\n"
            "         [--seed N] [--connect-timeout ms] [--timeout ms] [--cache-header NAME]\n"
            "         [--samples FILE] [--json] http://host:port/path\n"
            "       opspool-loadgen --job PAYLOAD.json --targets TARGETS.json [--timeout-s N]\n"
            "       opspool-loadgen --print-config ARGS...   (the settings ARGS give; no run)\n"
            "       opspool-loadgen --help\n"
            "\n"
            "  -t N   engines (threads, each with its own event loop; default: the cores this\n"
            "         process may use); connections and the open model's rate are split\n"
            "         between them, results merged\n"
            "  -c N   connections (default 10)        -d S   measured seconds (default 10)\n"
            "  -n N   stop after N measured requests  -R R   open model at R requests/s in total\n"
            "  -w S   warm-up seconds, not recorded   -m M   method (default GET)\n"
            "  -H 'Name: value'  extra header         -b B   request body\n"
            "  --keys N, --zipf S, --seed N           {key} in the path: 1..N, Zipf-skewed, seed\n"
            "  --connect-timeout MS (2000), --timeout MS (10000), --cache-header NAME (hit: HIT)\n"
            "  --samples FILE  per-response latencies; --json  one JSON object as the summary\n"
            "Settings come from these arguments only; the program reads no environment.\n");
}

static _Noreturn void lgm_usage(const char *why)
{
    if (why != NULL) {
        fprintf(stderr, "opspool-loadgen: %s\n", why);
    }
    lgm_usage_text(stderr);
    exit(2);
}

/* A number argument within [lo, hi], or a usage error naming the option. */
static double lgm_num(const char *opt, const char *v, double lo, double hi)
{
    char *end = NULL;
    double x = strtod(v, &end);
    if (v[0] == '\0' || *end != '\0' || !(x >= lo && x <= hi)) {
        fprintf(stderr, "opspool-loadgen: %s %s: expected a number %g..%g\n", opt, v, lo, hi);
        exit(2);
    }
    return x;
}

/* A whole-number argument within [lo, hi]. */
static unsigned long long lgm_uint(const char *opt, const char *v, unsigned long long lo,
                                   unsigned long long hi)
{
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || x < lo || x > hi) {
        fprintf(stderr, "opspool-loadgen: %s %s: expected a whole number %llu..%llu\n", opt, v,
                lo, hi);
        exit(2);
    }
    return x;
}

static void lgm_print_config(const struct bench_lg_config *cfg, const char *method,
                             const char *url, bool json, unsigned engines)
{
    printf("engines=%u\n", engines);
    printf("url=%s\nmethod=%s\nmodel=%s\nconnections=%u\nrate=%g\nduration_s=%g\n"
           "max_requests=%llu\nwarmup_s=%g\nkeys=%llu\nzipf=%g\nseed=%llu\n"
           "connect_timeout_ms=%u\ntimeout_ms=%u\ncache_header=%s\nsamples=%s\njson=%s\n",
           url, method, cfg->model == BENCH_MODEL_OPEN ? "open" : "closed", cfg->connections,
           cfg->rate, cfg->duration_s, (unsigned long long)cfg->max_requests, cfg->warmup_s,
           (unsigned long long)cfg->key_count, cfg->zipf ? cfg->zipf_s : 0.0,
           (unsigned long long)cfg->seed, cfg->connect_timeout_ms, cfg->read_timeout_ms,
           cfg->cache_header ? cfg->cache_header : "", cfg->samples_path ? cfg->samples_path : "",
           json ? "true" : "false");
}

static json_t *lgm_lat(const struct bench_hist *h)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I}",
                     "p50", (double)bench_hist_percentile(h, 50) / 1000.0,
                     "p90", (double)bench_hist_percentile(h, 90) / 1000.0,
                     "p95", (double)bench_hist_percentile(h, 95) / 1000.0,
                     "p99", (double)bench_hist_percentile(h, 99) / 1000.0,
                     "p999", (double)bench_hist_percentile(h, 99.9) / 1000.0,
                     "max", (double)bench_hist_max(h) / 1000.0,
                     "mean", bench_hist_mean(h) / 1000.0,
                     "count", (json_int_t)bench_hist_count(h));
}

static int lgm_run_job(const char *payload_path, const char *targets_path, long timeout_s)
{
    struct osp_targets targets = {0};
    struct osp_err err = {0};
    json_error_t jerr;
    json_t *payload = json_load_file(payload_path, 0, &jerr);
    if (payload == NULL) {
        fprintf(stderr, "opspool-loadgen: %s:%d: %s\n", payload_path, jerr.line, jerr.text);
        return 2;
    }
    if (osp_targets_load(&targets, targets_path, &err) != 0) {
        fprintf(stderr, "opspool-loadgen: %s: %s\n", targets_path, err.msg);
        json_decref(payload);
        return 2;
    }
    const struct job_kind *kind = job_kind_find("benchmark");
    OSP_ASSERT(kind != NULL);
    int rc = 2;
    if (kind->validate(payload, &targets, &err) != 0) {
        fprintf(stderr, "opspool-loadgen: invalid payload: %s\n", err.msg);
        goto out;
    }
    struct osp_job job;
    memset(&job, 0, sizeof(job));
    snprintf(job.id, sizeof(job.id), "00000000-0000-7000-8000-000000000000");
    snprintf(job.kind, sizeof(job.kind), "benchmark");
    job.payload = payload;
    job.attempt = 1;
    job.max_attempts = 1;
    job.idempotency_key = job.submitted_by = job.schedule = job.trace_id = (char *)(uintptr_t)"";
    struct job_report rep;
    job_report_init(&rep);
    struct osp_config cfg;
    osp_config_defaults(&cfg);
    job_run_inline(kind, &job, &targets, &cfg, osp_mono_ns() + (int64_t)timeout_s * 1000000000LL,
                   &rep);
    osp_config_deinit(&cfg);
    json_t *out = json_pack("{s:i, s:s?, s:O?, s:O, s:O}", "status", rep.status, "error",
                            rep.error, "result", rep.result, "events", rep.events, "rows",
                            rep.rows);
    char *text = json_dumps(out, JSON_INDENT(2));
    printf("%s\n", text);
    free(text);
    json_decref(out);
    rc = rep.status == 0 ? 0 : 1;
    job_report_deinit(&rep);
out:
    json_decref(payload);
    osp_targets_deinit(&targets);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"keys", required_argument, NULL, 'K'},
        {"zipf", required_argument, NULL, 'Z'},
        {"seed", required_argument, NULL, 'S'},
        {"connect-timeout", required_argument, NULL, 'C'},
        {"timeout", required_argument, NULL, 'T'},
        {"cache-header", required_argument, NULL, 'X'},
        {"samples", required_argument, NULL, 'F'},
        {"json", no_argument, NULL, 'J'},
        {"job", required_argument, NULL, 'j'},
        {"targets", required_argument, NULL, 'G'},
        {"timeout-s", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {"print-config", no_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    struct bench_lg_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.model = BENCH_MODEL_CLOSED;
    cfg.connections = 10;
    cfg.duration_s = 10;
    cfg.key_count = 1;
    cfg.seed = 1;
    cfg.connect_timeout_ms = 2000;
    cfg.read_timeout_ms = 10000;
    cfg.cache_hit_value = "HIT";
    const char *method = "GET";
    const char *body = NULL;
    const char *job_path = NULL, *targets_path = NULL;
    long timeout_s = 3600;
    bool json = false, duration_given = false, print_config = false;
    unsigned engines = 0; /* 0: the cores this process may use */
    char *headers = osp_xstrdup("");
    int opt;
    while ((opt = getopt_long(argc, argv, "c:d:n:R:w:m:H:b:t:", longopts, NULL)) != -1) {
        switch (opt) {
        case 't':
            engines = (unsigned)lgm_uint("-t", optarg, 1, BENCH_MAX_ENGINES);
            break;
        case 'c':
            cfg.connections = (unsigned)lgm_uint("-c", optarg, 1, BENCH_MAX_CONNECTIONS);
            break;
        case 'd':
            cfg.duration_s = lgm_num("-d", optarg, 0, 86400);
            duration_given = true;
            break;
        case 'n':
            cfg.max_requests = lgm_uint("-n", optarg, 0, 1000000000000ULL);
            break;
        case 'R':
            cfg.model = BENCH_MODEL_OPEN;
            cfg.rate = lgm_num("-R", optarg, 0.001, 10000000);
            break;
        case 'w':
            cfg.warmup_s = lgm_num("-w", optarg, 0, 3600);
            break;
        case 'm':
            method = optarg;
            break;
        case 'H': {
            if (strpbrk(optarg, "\r\n") != NULL || strchr(optarg, ':') == NULL) {
                lgm_usage("-H takes 'Name: value'");
            }
            char *h = osp_xasprintf("%s%s\r\n", headers, optarg);
            free(headers);
            headers = h;
            break;
        }
        case 'b':
            body = optarg;
            break;
        case 'K':
            cfg.key_count = lgm_uint("--keys", optarg, 1, 1000000000000ULL);
            break;
        case 'Z':
            cfg.zipf = true;
            cfg.zipf_s = lgm_num("--zipf", optarg, 0.001, 100);
            break;
        case 'S':
            cfg.seed = lgm_uint("--seed", optarg, 0, UINT64_MAX);
            break;
        case 'C':
            cfg.connect_timeout_ms = (unsigned)lgm_uint("--connect-timeout", optarg, 1, 600000);
            break;
        case 'T':
            cfg.read_timeout_ms = (unsigned)lgm_uint("--timeout", optarg, 1, 3600000);
            break;
        case 'X':
            cfg.cache_header = optarg;
            break;
        case 'F':
            cfg.samples_path = optarg;
            break;
        case 'J':
            json = true;
            break;
        case 'j':
            job_path = optarg;
            break;
        case 'G':
            targets_path = optarg;
            break;
        case 's':
            timeout_s = (long)lgm_uint("--timeout-s", optarg, 1, 604800);
            break;
        case 'h':
            lgm_usage_text(stdout);
            free(headers);
            return 0;
        case 'P':
            print_config = true;
            break;
        default:
            lgm_usage(NULL);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = lgm_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (job_path != NULL) {
        free(headers);
        if (targets_path == NULL) {
            lgm_usage("--job needs --targets");
        }
        if (print_config) {
            printf("job=%s\ntargets=%s\ntimeout_s=%ld\n", job_path, targets_path, timeout_s);
            return 0;
        }
        return lgm_run_job(job_path, targets_path, timeout_s);
    }
    if (print_config && optind == argc) {
        lgm_print_config(&cfg, method, "", json,
                         engines ? engines : bench_lg_default_engines()); /* no URL yet */
        free(headers);
        return 0;
    }
    if (optind != argc - 1) {
        free(headers);
        lgm_usage("one URL expected");
    }
    if (cfg.max_requests > 0 && !duration_given) {
        cfg.duration_s = 0;
    }
    if (print_config) {
        lgm_print_config(&cfg, method, argv[optind], json,
                         engines ? engines : cfg.samples_path ? 1u : bench_lg_default_engines());
        free(headers);
        return 0;
    }
    /* Split http://host:port/path into the target (resolved once) and the request path. */
    const char *url = argv[optind];
    const char *slash = strncmp(url, "http://", 7) == 0 ? strchr(url + 7, '/') : NULL;
    char *base = slash != NULL ? osp_xstrndup(url, (size_t)(slash - url)) : osp_xstrdup(url);
    struct osp_err err = {0};
    int rc = 2;
    struct bench_lg_result res;
    memset(&res, 0, sizeof(res));
    if (bench_lg_resolve(&cfg, base, &err) != 0) {
        fprintf(stderr, "opspool-loadgen: %s\n", err.msg);
        goto out;
    }
    struct bench_mix_item item = {
        .method = method, .path = slash != NULL ? slash : "/", .weight = 1, .headers = headers,
        .body = body, .body_len = body != NULL ? strlen(body) : 0,
    };
    cfg.mix = &item;
    cfg.nmix = 1;
    cfg.should_stop = lgm_should_stop;
    if (engines == 0) {
        engines = cfg.samples_path != NULL ? 1u : bench_lg_default_engines();
    }
    if (bench_lg_run_engines(&cfg, engines, &res, &err) != 0) {
        fprintf(stderr, "opspool-loadgen: %s\n", err.msg);
        goto out;
    }
    double rps = res.elapsed_s > 0 ? (double)res.responses / res.elapsed_s : 0.0;
    /* Open model: the share of the schedule that was sent (the rest was dropped). */
    bool open = cfg.model == BENCH_MODEL_OPEN;
    double achieved = res.issued + res.dropped > 0
                          ? (double)res.issued / (double)(res.issued + res.dropped)
                          : 1.0;
    bool short_of_rate = open && achieved < BENCH_MIN_ACHIEVED_RATIO;
    if (json) {
        json_t *errs = json_object();
        for (int i = 0; i < BENCH_ERR_N; i++) {
            json_object_set_new(errs, bench_err_names[i], json_integer((json_int_t)res.errors[i]));
        }
        json_t *o = json_pack("{s:s, s:i, s:f, s:I, s:I, s:f, s:o, s:o, s:o, s:I, s:I, s:I, "
                              "s:I, s:I, s:b, s:s?}",
                              "model", cfg.model == BENCH_MODEL_OPEN ? "open" : "closed",
                              "connections", (int)cfg.connections, "elapsed_s", res.elapsed_s,
                              "requests", (json_int_t)res.requests, "responses",
                              (json_int_t)res.responses, "rps", rps, "latency_ms",
                              lgm_lat(res.lat), "latency_uncorrected_ms", lgm_lat(res.ulat),
                              "errors", errs, "late_sends", (json_int_t)res.late_sends,
                              "dropped", (json_int_t)res.dropped, "cache_seen",
                              (json_int_t)res.cache_seen, "cache_hits",
                              (json_int_t)res.cache_hits, "in_flight_at_end",
                              (json_int_t)res.in_flight_at_end, "aborted", res.aborted,
                              "abort_reason", res.aborted ? res.abort_reason : NULL);
        json_object_set_new(o, "issued", json_integer((json_int_t)res.issued));
        json_object_set_new(o, "target_rps", open ? json_real(cfg.rate) : json_null());
        json_object_set_new(o, "achieved_ratio", open ? json_real(achieved) : json_null());
        char *text = json_dumps(o, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(o);
    } else {
        printf("%s model, %u connections, %.2f s measured\n",
               cfg.model == BENCH_MODEL_OPEN ? "open" : "closed", cfg.connections, res.elapsed_s);
        printf("  requests %llu, responses %llu, errors", (unsigned long long)res.requests,
               (unsigned long long)res.responses);
        for (int i = 0; i < BENCH_ERR_N; i++) {
            printf(" %s=%llu", bench_err_names[i], (unsigned long long)res.errors[i]);
        }
        printf("\n  latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
               (double)bench_hist_percentile(res.lat, 50) / 1e3,
               (double)bench_hist_percentile(res.lat, 90) / 1e3,
               (double)bench_hist_percentile(res.lat, 99) / 1e3,
               (double)bench_hist_percentile(res.lat, 99.9) / 1e3,
               (double)bench_hist_max(res.lat) / 1e3);
        if (cfg.model == BENCH_MODEL_OPEN) {
            printf("  uncorrected  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n"
                   "  late sends %llu, dropped %llu\n",
                   (double)bench_hist_percentile(res.ulat, 50) / 1e3,
                   (double)bench_hist_percentile(res.ulat, 90) / 1e3,
                   (double)bench_hist_percentile(res.ulat, 99) / 1e3,
                   (double)bench_hist_percentile(res.ulat, 99.9) / 1e3,
                   (double)bench_hist_max(res.ulat) / 1e3, (unsigned long long)res.late_sends,
                   (unsigned long long)res.dropped);
        }
        printf("  in flight at the end %llu%s\n", (unsigned long long)res.in_flight_at_end,
               res.in_flight_at_end + res.dropped > 0
                   ? " (in flight and dropped requests are in the percentiles at their "
                     "elapsed time at the end)"
                   : "");
        if (open) {
            printf("  target rate %.2f/s, achieved ratio %.4f (%llu of %llu intended sent)%s\n",
                   cfg.rate, achieved, (unsigned long long)res.issued,
                   (unsigned long long)(res.issued + res.dropped),
                   short_of_rate ? ": SHORT OF THE RATE" : "");
        }
        if (res.aborted) {
            printf("  aborted: %s\n", res.abort_reason);
        }
        printf("Requests/sec: %.2f\n", rps);
    }
    if (short_of_rate) {
        fprintf(stderr,
                "opspool-loadgen: open model sent %.1f%% of its schedule (below %.0f%%): the "
                "target or this generator could not keep the rate\n",
                achieved * 100, BENCH_MIN_ACHIEVED_RATIO * 100);
    }
    rc = res.aborted || short_of_rate ? 1 : 0;
out:
    bench_lg_result_deinit(&res);
    free(base);
    free(headers);
    return rc;
}
