/* SPDX-License-Identifier: MIT */
/* engines.c — one lane on several load engines (loadgen.h bench_lg_run_engines): a thread per
 * engine, each running bench_lg_run on a private libev loop with its share of the
 * connections and of the schedule, then one merged result.
 *
 * The open model's schedule is split exactly: with N engines and rate R, engine i runs at R/N
 * with its schedule offset by i/R from one shared start, so the union of the engines' intended
 * times is the single-engine schedule k/R. Histograms are merged bucket by bucket
 * (bench_hist_merge): no percentile is averaged. _GNU_SOURCE for sched_getaffinity. */
#define _GNU_SOURCE
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/benchmark/loadgen.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENGINES_START_DELAY_NS (20 * 1000000LL) /* every thread is up before the schedule */

struct engine {
    pthread_t tid;
    struct bench_lg_config cfg;
    struct bench_lg_result res;
    struct osp_err err;
    int rc;
};

static void *engine_main(void *arg)
{
    struct engine *e = arg;
    e->rc = bench_lg_run(&e->cfg, &e->res, &e->err);
    return NULL;
}

unsigned bench_lg_default_engines(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        return n > 0 ? (unsigned)n : 1u;
    }
    return 1u;
}

static void merge(struct bench_lg_result *dst, const struct bench_lg_result *src, bool first)
{
    bench_hist_merge(dst->lat, src->lat);
    bench_hist_merge(dst->ulat, src->ulat);
    dst->requests += src->requests;
    dst->responses += src->responses;
    for (int i = 0; i < BENCH_ERR_N; i++) {
        dst->errors[i] += src->errors[i];
    }
    dst->cache_seen += src->cache_seen;
    dst->cache_hits += src->cache_hits;
    dst->late_sends += src->late_sends;
    if (src->max_send_lag_ms > dst->max_send_lag_ms) {
        dst->max_send_lag_ms = src->max_send_lag_ms;
    }
    dst->issued += src->issued;
    dst->dropped += src->dropped;
    dst->in_flight_at_end += src->in_flight_at_end;
    dst->body_bytes += src->body_bytes;
    dst->connects += src->connects;
    if (first || src->elapsed_s > dst->elapsed_s) {
        dst->elapsed_s = src->elapsed_s;
    }
    dst->cancelled = dst->cancelled || src->cancelled;
    if (src->aborted && !dst->aborted) {
        dst->aborted = true;
        memcpy(dst->abort_reason, src->abort_reason, sizeof(dst->abort_reason));
    }
}

int bench_lg_run_engines(const struct bench_lg_config *cfg, unsigned engines,
                         struct bench_lg_result *res, struct osp_err *err)
{
    if (engines > cfg->connections) {
        engines = cfg->connections;
    }
    if (engines > BENCH_MAX_ENGINES) {
        engines = BENCH_MAX_ENGINES;
    }
    if (engines <= 1) {
        return bench_lg_run(cfg, res, err);
    }
    memset(res, 0, sizeof(*res));
    res->lat = bench_hist_new();
    res->ulat = bench_hist_new();
    if (cfg->samples_path != NULL) {
        return osp_err_set(err, OSP_EINVAL, "samples need a single engine");
    }
    struct engine *e = osp_xcalloc(engines, sizeof(*e));
    int64_t start = osp_mono_ns() + ENGINES_START_DELAY_NS;
    double interval = cfg->model == BENCH_MODEL_OPEN ? 1e9 / cfg->rate : 0.0;
    unsigned started = 0;
    int rc = 0;
    for (unsigned i = 0; i < engines; i++) {
        struct bench_lg_config *c = &e[i].cfg;
        *c = *cfg;
        c->connections = cfg->connections / engines + (i < cfg->connections % engines ? 1u : 0u);
        if (cfg->max_requests > 0) {
            c->max_requests = cfg->max_requests / engines + (i < cfg->max_requests % engines);
            if (c->max_requests == 0) {
                c->max_requests = 1; /* fewer requests than engines: a few extra, never zero */
            }
        }
        c->seed = cfg->seed + 0x9E3779B97F4A7C15ULL * (i + 1);
        c->start_at_ns = start;
        if (cfg->model == BENCH_MODEL_OPEN) {
            c->rate = cfg->rate / engines;
            c->schedule_offset_ns = (int64_t)(interval * i);
        }
        int prc = pthread_create(&e[i].tid, NULL, engine_main, &e[i]);
        if (prc != 0) {
            rc = osp_err_set(err, -prc, "cannot start load engine %u: %s", i, strerror(prc));
            break;
        }
        started++;
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(e[i].tid, NULL);
    }
    for (unsigned i = 0; i < started; i++) {
        if (e[i].rc != 0 && rc == 0) {
            rc = e[i].rc;
            osp_err_set(err, e[i].rc, "engine %u: %s", i, e[i].err.msg);
        }
        if (e[i].res.lat != NULL) {
            merge(res, &e[i].res, i == 0);
        }
        bench_lg_result_deinit(&e[i].res);
    }
    free(e);
    return rc;
}
