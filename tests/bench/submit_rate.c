/* SPDX-License-Identifier: MIT */
/* submit_rate.c — submit jobs one at a time at a fixed rate, for the latency benchmark:
 *
 *   osp-submit-rate KIND RATE COUNT [PAYLOAD_JSON]
 *
 * Reads the usual OSP_* settings (OSP_REDIS_URL, OSP_PG_DSN, OSP_PREFIX, signing keys), then
 * submits COUNT jobs of KIND through osp_submit (ledger row, then the Redis envelope: the path
 * every submitter takes), job i due at t0 + i/RATE on an absolute schedule, so a slow submit
 * does not shift the ones after it (open model; a late job is sent at once). Bounded: COUNT
 * jobs, at most 10,000,000. Prints one JSON line on stdout: the achieved rate, how many jobs
 * went out more than 1 ms late, and the submit call's own duration (ledger INSERT + commit +
 * Redis push) p50/p99 in microseconds, which is part of enqueue->start as the ledger sees it
 * (enqueued_at is taken before the INSERT). With OSP_BENCH_SAMPLES=FILE set, also writes one
 * line per job, "id pushed_at_us" (wall clock when osp_submit returned: the envelope is in
 * Redis), so push->start can be told apart from the submit path. */
#include "common/base.h"
#include "common/config.h"
#include "common/submit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s KIND RATE COUNT [PAYLOAD_JSON]\n", argv[0]);
        return 2;
    }
    double rate = strtod(argv[2], NULL);
    long count = strtol(argv[3], NULL, 10);
    if (rate <= 0 || rate > 1e6 || count < 1 || count > 10000000) {
        fprintf(stderr, "submit-rate: RATE in (0, 1e6], COUNT in [1, 1e7]\n");
        return 2;
    }
    struct osp_config cfg;
    struct osp_err err = {0};
    if (osp_config_load(&cfg, OSP_CFG_CLI, &err) != 0) {
        fprintf(stderr, "submit-rate: config: %s\n", err.msg);
        return 2;
    }
    json_error_t jerr;
    json_t *payload = json_loads(argc == 5 ? argv[4] : "{}", 0, &jerr);
    if (!json_is_object(payload)) {
        fprintf(stderr, "submit-rate: payload must be a JSON object\n");
        return 2;
    }
    struct osp_env_keys keys;
    osp_env_keys_from(&keys, cfg.signing_key, cfg.signing_key_old, cfg.allow_unsigned);
    struct osp_pgs *pg = osp_pgs_connect(cfg.pg_dsn, &err);
    struct osp_rq_opts o;
    osp_config_rq_opts(&cfg, &o);
    struct osp_rqs *rq = pg != NULL ? osp_rqs_connect(&o, &err) : NULL;
    if (pg == NULL || rq == NULL) {
        fprintf(stderr, "submit-rate: connect: %s\n", err.msg);
        return 1;
    }
    int64_t *call_us = calloc((size_t)count, sizeof(*call_us));
    if (call_us == NULL) {
        return 1;
    }
    long late = 0, failed = 0;
    const char *samples_path = getenv("OSP_BENCH_SAMPLES");
    FILE *samples = samples_path != NULL ? fopen(samples_path, "w") : NULL;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t base_ns = (int64_t)t0.tv_sec * 1000000000 + t0.tv_nsec;
    for (long i = 0; i < count; i++) {
        int64_t due = base_ns + (int64_t)((double)i * 1e9 / rate);
        struct timespec ts = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        int64_t a = osp_mono_ns();
        if (a - due > 1000000) {
            late++;
        }
        struct osp_job j;
        osp_job_init(&j);
        snprintf(j.kind, sizeof(j.kind), "%s", argv[1]);
        json_decref(j.payload);
        j.payload = json_incref(payload);
        j.max_attempts = 1;
        char id[1][OSP_ID_LEN + 1];
        if (osp_submit(pg, rq, &keys, &j, 1, id, NULL, &err) != 0) {
            failed++;
        }
        osp_job_deinit(&j);
        call_us[i] = (osp_mono_ns() - a) / 1000;
        if (samples != NULL) {
            struct timespec w;
            clock_gettime(CLOCK_REALTIME, &w);
            fprintf(samples, "%s %lld\n", id[0], (long long)w.tv_sec * 1000000 + w.tv_nsec / 1000);
        }
    }
    double secs = (double)(osp_mono_ns() - base_ns) / 1e9;
    qsort(call_us, (size_t)count, sizeof(*call_us), cmp_i64);
    printf("{\"submitted\": %ld, \"failed\": %ld, \"seconds\": %.3f, \"rate\": %.1f, "
           "\"late_over_1ms\": %ld, \"submit_call_p50_us\": %lld, \"submit_call_p99_us\": %lld}\n",
           count - failed, failed, secs, (double)count / secs, late,
           (long long)call_us[count / 2], (long long)call_us[(count * 99) / 100]);
    free(call_us);
    if (samples != NULL) {
        fclose(samples);
    }
    json_decref(payload);
    osp_rqs_free(rq);
    osp_pgs_free(pg);
    osp_config_deinit(&cfg);
    return failed == 0 ? 0 : 1;
}
