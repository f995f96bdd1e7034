/* SPDX-License-Identifier: MIT */
/* benchmark.c — the "benchmark" job kind: load a target's HTTP service lane by lane with the
 * engine in loadgen.c, summarise each lane from its histograms, evaluate k6-style thresholds
 * and record one typed row per lane (opspool.benchmark_results).
 *
 * Payload (reference with examples: docs/benchmark-jobs.md):
 *   {"target": "<name in the targets file>",
 *    "lanes": [<lane object> | "<preset name in the target's \"lanes\" object>", ...],
 *    "thresholds": ["p95<300ms", "error_rate<1%", ...],       applied to every lane
 *    "cache_header": "X-Cache", "cache_hit_value": "HIT", "seed": 1}
 *   lane: {"name", "model": "closed"|"open", "connections", "rate" (open only), "duration_s",
 *          "requests", "warmup_s", "requests_mix": [{"method", "path", "weight", "headers",
 *          "body"}], "keys": {"count", "dist": "uniform"|"zipf", "s"}, "connect_timeout_ms",
 *          "read_timeout_ms", "thresholds": [...] (added to the payload's), "replicas": N
 *          (a scale-out lane: the target at N replicas, scale.h)}
 *
 * Validation and the run share one parser (spec.c, bench_lane_parse), so what validates is
 * exactly what runs; presets from the targets file go through the same checks. The run fails when a
 * lane's target is unreachable, when a threshold fails or when the job is cancelled; the result
 * and the rows are recorded in every case, so a failed night is as readable as a good one.
 * A scaled target is restored after its lane on every one of those paths (bench_lane_run,
 * and bench_scaler_free as the last net), and each lane reports its replicas and its scaling
 * efficiency against the job's baseline lane (bench_eff_*). */
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/benchmark/loadgen.h"
#include "jobs/benchmark/scale.h"
#include "jobs/benchmark/spec.h"
#include "jobs/benchmark/threshold.h"
#include "jobs/job.h"
#include "jobs/targets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Results ---- */

static json_t *bench_num(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static double bench_latency_ms(const void *arg, enum bench_metric m, double pctl)
{
    const struct bench_hist *h = arg;
    if (bench_hist_count(h) == 0) {
        return NAN;
    }
    switch (m) {
    case BENCH_M_MIN:
        return (double)bench_hist_min(h) / 1000.0;
    case BENCH_M_MAX:
        return (double)bench_hist_max(h) / 1000.0;
    case BENCH_M_MEAN:
        return bench_hist_mean(h) / 1000.0;
    default:
        return (double)bench_hist_percentile(h, pctl) / 1000.0;
    }
}

static json_t *bench_latency_json(const struct bench_hist *h)
{
    static const struct {
        const char *key;
        double p;
    } ps[] = {{"p50", 50}, {"p90", 90}, {"p95", 95}, {"p99", 99}, {"p999", 99.9}};
    json_t *o = json_object();
    for (size_t i = 0; i < OSP_ARRAY_LEN(ps); i++) {
        json_object_set_new(o, ps[i].key, bench_num(bench_latency_ms(h, BENCH_M_PCTL, ps[i].p)));
    }
    json_object_set_new(o, "max", bench_num(bench_latency_ms(h, BENCH_M_MAX, 0)));
    json_object_set_new(o, "min", bench_num(bench_latency_ms(h, BENCH_M_MIN, 0)));
    json_object_set_new(o, "mean", bench_num(bench_latency_ms(h, BENCH_M_MEAN, 0)));
    json_object_set_new(o, "count", json_integer((json_int_t)bench_hist_count(h)));
    return o;
}

/* Build the lane summary; append "lane: expr (observed ...)" for each failed threshold. */
static json_t *bench_summarise(const struct bench_lane *l, const struct bench_common *cm,
                               const struct bench_lg_result *r, json_t *failed, bool *passed)
{
    uint64_t nerr = bench_lg_error_total(r);
    double rps = r->elapsed_s > 0 ? (double)r->responses / r->elapsed_s : NAN;
    double error_rate = r->requests > 0 ? (double)nerr / (double)r->requests : NAN;
    double hit_ratio = r->cache_seen > 0 ? (double)r->cache_hits / (double)r->cache_seen : NAN;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(l->name));
    json_object_set_new(o, "model", json_string(l->model == BENCH_MODEL_OPEN ? "open" : "closed"));
    json_object_set_new(o, "connections", json_integer(l->connections));
    json_object_set_new(o, "target_rps", l->model == BENCH_MODEL_OPEN ? json_real(l->rate)
                                                                       : json_null());
    json_object_set_new(o, "rps", bench_num(rps));
    /* How well the schedule was kept: requests handed out on schedule over those it intended
     * (a request that then failed was still sent; only the never-sent ones fall short). */
    double achieved = r->issued + r->dropped > 0
                          ? (double)r->issued / (double)(r->issued + r->dropped)
                          : NAN;
    json_object_set_new(o, "achieved_ratio",
                        l->model == BENCH_MODEL_OPEN ? bench_num(achieved) : json_null());
    json_object_set_new(o, "min_achieved_ratio", l->model == BENCH_MODEL_OPEN
                                                     ? json_real(l->min_achieved_ratio)
                                                     : json_null());
    json_object_set_new(o, "duration_s", json_real(r->elapsed_s));
    json_object_set_new(o, "warmup_s", json_real(l->warmup_s));
    json_object_set_new(o, "requests", json_integer((json_int_t)r->requests));
    json_object_set_new(o, "responses", json_integer((json_int_t)r->responses));
    json_object_set_new(o, "throughput", json_pack("{s:o, s:o}", "rps", bench_num(rps),
                                                   "body_bytes_per_s",
                                                   bench_num(r->elapsed_s > 0
                                                                 ? (double)r->body_bytes /
                                                                       r->elapsed_s
                                                                 : NAN)));
    json_object_set_new(o, "latency_ms", bench_latency_json(r->lat));
    json_object_set_new(o, "latency_uncorrected_ms", l->model == BENCH_MODEL_OPEN
                                                         ? bench_latency_json(r->ulat)
                                                         : json_null());
    json_t *errs = json_object();
    for (int i = 0; i < BENCH_ERR_N; i++) {
        json_object_set_new(errs, bench_err_names[i], json_integer((json_int_t)r->errors[i]));
    }
    json_object_set_new(errs, "total", json_integer((json_int_t)nerr));
    json_object_set_new(o, "errors", errs);
    json_object_set_new(o, "error_rate", bench_num(error_rate));
    json_object_set_new(o, "late_sends", json_integer((json_int_t)r->late_sends));
    json_object_set_new(o, "max_send_lag_ms", json_real(r->max_send_lag_ms));
    json_object_set_new(o, "dropped", json_integer((json_int_t)r->dropped));
    json_object_set_new(o, "in_flight_at_end", json_integer((json_int_t)r->in_flight_at_end));
    json_object_set_new(o, "connects", json_integer((json_int_t)r->connects));
    json_object_set_new(o, "cache", json_pack("{s:s, s:I, s:I, s:o}", "header", cm->cache_header,
                                              "seen", (json_int_t)r->cache_seen, "hits",
                                              (json_int_t)r->cache_hits, "ratio",
                                              bench_num(hit_ratio)));
    json_object_set_new(o, "cache_hit_ratio", bench_num(hit_ratio));

    struct bench_observed ob = {
        .latency_ms = bench_latency_ms, .arg = r->lat, .error_rate = error_rate,
        .cache_hit_ratio = hit_ratio, .rps = rps, .requests = (double)r->requests,
        .errors = (double)nerr, .late_sends = (double)r->late_sends, .dropped = (double)r->dropped,
    };
    bool ok = !r->aborted && !r->cancelled;
    if (l->model == BENCH_MODEL_OPEN && !r->aborted && !r->cancelled && isfinite(achieved) &&
        achieved < l->min_achieved_ratio) {
        /* An open-model lane that could not keep its rate measured a different load than the
         * one asked for: it fails unless the lane lowers min_achieved_ratio. */
        ok = false;
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "%s: achieved_ratio>=%.2f (observed %.4g: %llu of %llu intended requests sent)",
                 l->name, l->min_achieved_ratio, achieved, (unsigned long long)r->issued,
                 (unsigned long long)(r->issued + r->dropped));
        json_array_append_new(failed, json_string(msg));
    }
    json_t *thr = json_array();
    for (size_t i = 0; i < l->nthr; i++) {
        const struct bench_threshold *t = &l->thr[i];
        double v = bench_threshold_observe(t, &ob);
        bool holds = bench_threshold_holds(t, v);
        json_array_append_new(thr, json_pack("{s:s, s:o, s:s, s:b}", "expr", t->expr, "observed",
                                             bench_num(v), "unit", bench_threshold_unit(t),
                                             "passed", holds));
        if (!holds) {
            ok = false;
            char msg[200];
            if (isfinite(v)) {
                snprintf(msg, sizeof(msg), "%s: %s (observed %.4g%s%s)", l->name, t->expr, v,
                         bench_threshold_unit(t)[0] != '\0' ? " " : "", bench_threshold_unit(t));
            } else {
                snprintf(msg, sizeof(msg), "%s: %s (not measured)", l->name, t->expr);
            }
            json_array_append_new(failed, json_string(msg));
        }
    }
    json_object_set_new(o, "thresholds", thr);
    json_object_set_new(o, "cancelled", json_boolean(r->cancelled));
    json_object_set_new(o, "aborted", r->aborted ? json_string(r->abort_reason) : json_null());
    json_object_set_new(o, "passed", json_boolean(ok));
    *passed = ok;
    return o;
}

/* The lane's workload as one canonical JSON text (sorted keys, compact): the "shape" that
 * makes a series with (target, lane) in opspool.benchmark_results. Runs are compared with
 * their series only, so a changed load starts a new baseline instead of a false verdict. */
static char *bench_shape(const struct bench_lane *l, unsigned engines)
{
    json_t *mix = json_array();
    for (size_t i = 0; i < l->nmix; i++) {
        json_array_append_new(mix, json_pack("{s:s, s:s, s:i}", "method", l->mix[i].method,
                                             "path", l->mix[i].path, "weight",
                                             (json_int_t)l->mix[i].weight));
    }
    json_t *s = json_pack("{s:s, s:i, s:f, s:f, s:I, s:i, s:o, s:I, s:f}", "model",
                          l->model == BENCH_MODEL_OPEN ? "open" : "closed", "connections",
                          (json_int_t)l->connections, "rate", l->rate, "duration_s",
                          l->duration_s, "requests", (json_int_t)l->requests, "engines",
                          (json_int_t)engines, "mix", mix, "keys", (json_int_t)l->key_count,
                          "zipf_s", l->zipf ? l->zipf_s : 0.0);
    if (l->replicas > 0) {
        /* Only when asked: series recorded before scale-out lanes keep their shape. */
        json_object_set_new(s, "replicas", json_integer(l->replicas));
    }
    char *text = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(s);
    return text;
}

static json_t *bench_row(const json_t *lane, const char *target)
{
    const json_t *lat = json_object_get(lane, "latency_ms");
    json_t *row = json_object();
    json_object_set_new(row, "target", json_string(target));
    json_object_set_new(row, "lane", json_deep_copy(json_object_get(lane, "name")));
    json_object_set_new(row, "model", json_deep_copy(json_object_get(lane, "model")));
    json_object_set_new(row, "requests", json_deep_copy(json_object_get(lane, "requests")));
    json_object_set_new(row, "errors", json_deep_copy(json_object_get(json_object_get(lane,
                                                                                      "errors"),
                                                                      "total")));
    json_object_set_new(row, "rps", json_deep_copy(json_object_get(lane, "rps")));
    json_object_set_new(row, "target_rps", json_deep_copy(json_object_get(lane, "target_rps")));
    static const char *const cols[][2] = {{"p50_ms", "p50"}, {"p90_ms", "p90"},
                                          {"p95_ms", "p95"}, {"p99_ms", "p99"},
                                          {"p999_ms", "p999"}, {"max_ms", "max"}};
    for (size_t i = 0; i < OSP_ARRAY_LEN(cols); i++) {
        json_object_set_new(row, cols[i][0], json_deep_copy(json_object_get(lat, cols[i][1])));
    }
    json_object_set_new(row, "cache_hit_ratio",
                        json_deep_copy(json_object_get(lane, "cache_hit_ratio")));
    json_object_set_new(row, "passed", json_deep_copy(json_object_get(lane, "passed")));
    json_object_set_new(row, "thresholds", json_deep_copy(json_object_get(lane, "thresholds")));
    json_object_set_new(row, "replicas", json_deep_copy(json_object_get(lane, "replicas")));
    return row;
}

/* ---- Scaling efficiency ---- */

/* Throughput per replica against the baseline lane: the first lane of the job that did not
 * ask for more than one replica (no "replicas", or 1), taken as one replica. A lane without
 * "replicas" counts as one too. Only in jobs with at least one scale-out lane: elsewhere lanes
 * differ by their load, not their size, and a ratio between them would mislead. Lanes ended
 * before the baseline wait for it (their rows are held back until it is known, so a row never
 * carries a value its result does not); without a baseline, or without throughput on either
 * side, the efficiency is null. */
struct bench_eff {
    bool enabled; /* the job has a scale-out lane */
    bool have_baseline;
    double base_rps_per_replica;
    char baseline[65];
    json_t *held; /* [{"sum": lane summary, "row": row}] waiting for the baseline */
};

static double bench_lane_rps(const json_t *sum)
{
    const json_t *v = json_object_get(sum, "rps");
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void bench_eff_set(const struct bench_eff *e, json_t *sum, json_t *row)
{
    const json_t *rep = json_object_get(sum, "replicas");
    double n = json_is_integer(rep) ? (double)json_integer_value(rep) : 1.0;
    double eff = e->have_baseline && e->base_rps_per_replica > 0
                     ? bench_lane_rps(sum) / n / e->base_rps_per_replica
                     : NAN;
    json_object_set_new(sum, "scaling_efficiency", bench_num(eff));
    if (row != NULL) {
        json_object_set_new(row, "scaling_efficiency", bench_num(eff));
    }
}

/* Send the held rows (with their efficiency now known, or null at the end of the job). */
static void bench_eff_flush(struct bench_eff *e, struct job_ctx *ctx)
{
    size_t i;
    json_t *h;
    json_array_foreach(e->held, i, h)
    {
        json_t *row = json_incref(json_object_get(h, "row"));
        bench_eff_set(e, json_object_get(h, "sum"), row);
        job_add_row(ctx, "benchmark_results", row);
    }
    json_array_clear(e->held);
}

/* A lane ended: maybe it is the baseline; give it (and held lanes) their efficiency. */
static void bench_eff_lane(struct bench_eff *e, const struct bench_lane *l, json_t *sum,
                           json_t *row, struct job_ctx *ctx)
{
    if (e->enabled && !e->have_baseline && l->replicas <= 1) {
        e->have_baseline = true;
        e->base_rps_per_replica = bench_lane_rps(sum);
        snprintf(e->baseline, sizeof(e->baseline), "%s", l->name);
    }
    bench_eff_set(e, sum, NULL);
    json_array_append_new(e->held, json_pack("{s:O, s:o}", "sum", sum, "row", row));
    if (e->have_baseline || !e->enabled) {
        bench_eff_flush(e, ctx);
    }
}

/* ---- Run ---- */

static bool bench_should_stop(void *arg)
{
    return job_is_cancelled(arg);
}

static bool bench_sleep(void *arg, int64_t ms)
{
    return job_sleep_ms(arg, ms);
}

/* One job's run: what the lanes share. */
struct bench_job {
    struct job_ctx *ctx;
    struct bench_common cm;
    struct bench_lg_config base;
    struct bench_scaler *sc; /* created by the first scale-out lane */
    struct bench_eff eff;
    json_t *lanes_out, *failed;
    bool all_ok;
    char fatal[512];
};

/* Put the target back after lane l (or a failed scale-up), if anything is pending: the event
 * "restore" records it either way. Returns the lane's restore evidence (owned) or NULL. */
static json_t *bench_lane_restore(struct bench_job *j, const struct bench_lane *l)
{
    if (!bench_scale_pending(j->sc)) {
        return NULL;
    }
    struct osp_err err = {0};
    bool cancelled = job_is_cancelled(j->ctx);
    json_t *ev = json_pack("{s:s}", "lane", l->name);
    if (bench_scale_restore(j->sc, cancelled, ev, &err) != 0) {
        /* Said first: whatever else went wrong, an unrestored target needs a person. */
        char why[sizeof(j->fatal)];
        snprintf(why, sizeof(why), "%s", j->fatal);
        snprintf(j->fatal, sizeof(j->fatal), "lane %s: the target could not be restored: %s%s%s",
                 l->name, err.msg, why[0] != '\0' ? "; " : "", why);
    }
    job_emit(j->ctx, "restore", json_deep_copy(ev));
    return ev;
}

/* Scale the target for lane l and point cfg at it. 0, or -1 with j->fatal set (the caller
 * restores). *ev gets the scale evidence (owned). */
static int bench_lane_scale(struct bench_job *j, const struct bench_lane *l,
                            struct bench_lg_config *cfg, json_t **ev)
{
    struct osp_err err = {0};
    if (j->sc == NULL) {
        j->sc = bench_scaler_new(j->cm.target, j->cm.health_path, bench_sleep, j->ctx, &err);
        if (j->sc == NULL) {
            snprintf(j->fatal, sizeof(j->fatal), "lane %s: target \"%s\" cannot scale: %s", l->name,
                     j->cm.target_name, err.msg);
            return -1;
        }
    }
    char url[BENCH_HOST_MAX + 16];
    *ev = json_pack("{s:s, s:i}", "lane", l->name, "replicas", l->replicas);
    job_emit(
        j->ctx, "phase",
        json_pack("{s:s, s:s, s:i}", "lane", l->name, "state", "scale", "replicas", l->replicas));
    int rc = bench_scale_up(j->sc, l->replicas, *ev, url, sizeof(url), &err);
    job_emit(j->ctx, "scale", json_deep_copy(*ev));
    if (rc == OSP_ECANCELED) {
        snprintf(j->fatal, sizeof(j->fatal), "cancelled while scaling for lane %s", l->name);
        return -1;
    }
    if (rc != 0) {
        snprintf(j->fatal, sizeof(j->fatal), "lane %s: scaling to %u replicas: %s", l->name,
                 l->replicas, err.msg);
        return -1;
    }
    if (strcmp(url, osp_target_str(j->cm.target, "base_url")) != 0 &&
        bench_lg_resolve(cfg, url, &err) != 0) {
        snprintf(j->fatal, sizeof(j->fatal), "lane %s: %s", l->name, err.msg);
        return -1;
    }
    return 0;
}

/* Run lane i (parsed into l). Returns true when the job goes on with the next lane. */
static bool bench_lane_run(struct bench_job *j, size_t i, struct bench_lane *l)
{
    struct osp_err err = {0};
    struct bench_lg_config cfg = j->base;
    cfg.model = l->model;
    cfg.connections = l->connections;
    cfg.rate = l->rate;
    cfg.duration_s = l->duration_s;
    cfg.max_requests = (uint64_t)l->requests;
    cfg.warmup_s = l->warmup_s;
    cfg.mix = l->mix;
    cfg.nmix = l->nmix;
    cfg.key_count = (uint64_t)l->key_count;
    cfg.zipf = l->zipf;
    cfg.zipf_s = l->zipf_s;
    cfg.seed = (uint64_t)j->cm.seed + i; /* lanes differ, reruns repeat */
    cfg.connect_timeout_ms = l->connect_timeout_ms;
    cfg.read_timeout_ms = l->read_timeout_ms;
    cfg.cache_header = j->cm.cache_header;
    cfg.cache_hit_value = j->cm.cache_hit_value;
    cfg.should_stop = bench_should_stop;
    cfg.stop_arg = j->ctx;
    json_t *scale_ev = NULL;
    if (l->replicas > 0 && bench_lane_scale(j, l, &cfg, &scale_ev) != 0) {
        json_decref(bench_lane_restore(j, l));
        json_decref(scale_ev);
        return false;
    }
    job_emit(j->ctx, "phase",
             json_pack("{s:s, s:s, s:i}", "lane", l->name, "state", "start", "connections",
                       l->connections));
    struct bench_lg_result r;
    unsigned engines = l->engines ? l->engines : bench_lg_default_engines();
    if (engines > l->connections) {
        engines = l->connections;
    }
    int rc = bench_lg_run_engines(&cfg, engines, &r, &err);
    json_t *restore_ev = bench_lane_restore(j, l);
    if (rc != 0) {
        bench_lg_result_deinit(&r);
        if (j->fatal[0] == '\0') {
            snprintf(j->fatal, sizeof(j->fatal), "lane %s: %s", l->name, err.msg);
        }
        json_decref(scale_ev);
        json_decref(restore_ev);
        return false;
    }
    bool ok;
    json_t *sum = bench_summarise(l, &j->cm, &r, j->failed, &ok);
    json_object_set_new(sum, "engines", json_integer(engines));
    json_object_set_new(sum, "replicas", l->replicas > 0 ? json_integer(l->replicas) : json_null());
    if (scale_ev != NULL) {
        json_object_del(scale_ev, "lane");
        json_object_set_new(scale_ev, "restore", restore_ev != NULL ? restore_ev : json_null());
        restore_ev = NULL;
    }
    json_object_set_new(sum, "scale", scale_ev != NULL ? scale_ev : json_null());
    json_decref(restore_ev);
    j->all_ok = j->all_ok && ok;
    json_t *row = bench_row(sum, j->cm.target_name);
    char *shape = bench_shape(l, engines);
    json_object_set_new(row, "shape", json_string(shape));
    free(shape);
    bench_eff_lane(&j->eff, l, sum, row, j->ctx);
    job_emit(j->ctx, "lane", json_deep_copy(sum));
    json_array_append_new(j->lanes_out, sum);
    bool stop = r.aborted || r.cancelled || j->fatal[0] != '\0';
    if (r.aborted) {
        snprintf(j->fatal, sizeof(j->fatal), "lane %s: %s", l->name, r.abort_reason);
    } else if (r.cancelled) {
        snprintf(j->fatal, sizeof(j->fatal), "cancelled during lane %s", l->name);
    }
    bench_lg_result_deinit(&r);
    return !stop;
}

static int bench_run(struct job_ctx *ctx)
{
    const json_t *p = job_payload(ctx);
    struct osp_err err = {0};
    struct bench_lane *l = NULL;
    struct bench_job j;
    memset(&j, 0, sizeof(j));
    j.ctx = ctx;
    j.lanes_out = json_array();
    j.failed = json_array();
    j.eff.held = json_array();
    j.all_ok = true;
    int rc = bench_common_parse(p, job_targets(ctx), &j.cm, &err);
    if (rc == 0 && j.cm.target == NULL) {
        rc = osp_err_set(&err, OSP_EINVAL, "payload.target: no targets file loaded");
    }
    if (rc != 0) {
        snprintf(j.fatal, sizeof(j.fatal), "invalid payload: %s", err.msg);
        goto out;
    }
    if (bench_lg_resolve(&j.base, osp_target_str(j.cm.target, "base_url"), &err) != 0) {
        snprintf(j.fatal, sizeof(j.fatal), "target \"%s\": %s", j.cm.target_name, err.msg);
        goto out;
    }
    const json_t *lanes = json_object_get(p, "lanes");
    j.eff.enabled = bench_payload_scales(p, job_targets(ctx));
    l = osp_xcalloc(1, sizeof(*l));
    for (size_t i = 0; i < json_array_size(lanes); i++) {
        if (bench_lane_at(lanes, i, &j.cm, l, &err) != 0) {
            snprintf(j.fatal, sizeof(j.fatal), "invalid lane: %s", err.msg);
            goto out;
        }
        bool go_on = bench_lane_run(&j, i, l);
        bench_lane_deinit(l);
        if (!go_on) {
            break;
        }
    }
out:
    if (l != NULL) {
        bench_lane_deinit(l);
        free(l);
    }
    bench_eff_flush(&j.eff, ctx); /* lanes that never got a baseline: null */
    json_decref(j.eff.held);
    bench_scaler_free(j.sc); /* restores first if anything were still pending */
    bool all_ok = j.all_ok && j.fatal[0] == '\0';
    json_t *failed = j.failed;
    job_set_result(ctx, json_pack("{s:s?, s:b, s:o, s:O, s:o}", "target", j.cm.target_name,
                                  "passed", all_ok, "lanes", j.lanes_out, "failed_thresholds",
                                  failed, "scaling_baseline",
                                  j.eff.have_baseline ? json_string(j.eff.baseline) : json_null()));
    if (j.fatal[0] != '\0') {
        json_decref(failed);
        return job_fail(ctx, "%s", j.fatal);
    }
    if (!all_ok) {
        char msg[1024];
        size_t off = (size_t)snprintf(msg, sizeof(msg), "thresholds failed:");
        size_t i;
        json_t *s;
        json_array_foreach(failed, i, s) {
            if (off < sizeof(msg)) {
                off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%s %s", i > 0 ? ";" : "",
                                        json_string_value(s));
            }
        }
        json_decref(failed);
        return job_verdict_failed(ctx, "%s", msg); /* a breached threshold is a result */
    }
    json_decref(failed);
    return 0;
}

static bool bench_needs_exclusive(const json_t *payload, const struct osp_targets *targets)
{
    return bench_payload_scales(payload, targets);
}

const struct job_kind job_kind_benchmark = {
    .name = "benchmark",
    .abi = JOB_KIND_ABI,
    .validate = bench_validate,
    .run = bench_run,
    .cancel = NULL, /* the load stops when the loop polls the flag; run() restores a scaled
                     * target on every path before it returns */
    .is_inline = NULL,
    .needs_exclusive = bench_needs_exclusive,
    .default_timeout_s = (unsigned)BENCH_MAX_TOTAL_S + 600u,
};
