/* SPDX-License-Identifier: MIT */
/* threshold.h — k6-style pass/fail thresholds for a benchmark lane: `<metric> <op> <value>`.
 *
 *   metric  p50 p90 p95 p99 p99.9 p999 pN (0 < N <= 100) p(N) med min max mean avg
 *           (latency: the corrected histogram in the open model)
 *           error_rate  cache_hit_ratio  (ratios: `1%` or `0.01`)
 *           rps  requests  errors  late_sends  dropped  (plain numbers)
 *   op      <  <=  >  >=
 *   value   latency: a number with unit us, ms or s (no unit means ms, as k6)
 *
 * Spaces are allowed between the parts ("p95 < 300ms"). Parsing is pure; evaluation takes the
 * observed values of one lane. */
#ifndef OSP_BENCH_THRESHOLD_H
#define OSP_BENCH_THRESHOLD_H

#include "common/err.h"

#include <stdbool.h>

#define BENCH_THRESHOLD_EXPR_MAX 64

enum bench_metric {
    BENCH_M_PCTL,       /* latency percentile `pctl` */
    BENCH_M_MIN,
    BENCH_M_MAX,
    BENCH_M_MEAN,
    BENCH_M_ERROR_RATE,
    BENCH_M_CACHE_HIT_RATIO,
    BENCH_M_RPS,
    BENCH_M_REQUESTS,
    BENCH_M_ERRORS,
    BENCH_M_LATE_SENDS,
    BENCH_M_DROPPED,
};

enum bench_op { BENCH_OP_LT, BENCH_OP_LE, BENCH_OP_GT, BENCH_OP_GE };

struct bench_threshold {
    char expr[BENCH_THRESHOLD_EXPR_MAX + 1]; /* the text as given */
    enum bench_metric metric;
    double pctl;                             /* BENCH_M_PCTL: 0 < pctl <= 100 */
    enum bench_op op;
    double value;                            /* canonical unit: ms, fraction, or plain count */
};

/* What a lane observed, in the thresholds' canonical units. A NaN means "not measured" (no
 * response carried the cache header, no latency samples): any threshold on it fails. */
struct bench_observed {
    double (*latency_ms)(const void *arg, enum bench_metric m, double pctl);
    const void *arg;
    double error_rate, cache_hit_ratio, rps, requests, errors, late_sends, dropped;
};

/* Parse one expression into t. 0, or OSP_EINVAL with err saying what is wrong (the caller
 * prefixes the field name). */
int bench_threshold_parse(const char *expr, struct bench_threshold *t, struct osp_err *err);
/* The observed value for t's metric (NaN when not measured). */
double bench_threshold_observe(const struct bench_threshold *t, const struct bench_observed *o);
/* True when observed satisfies t (false for NaN). */
bool bench_threshold_holds(const struct bench_threshold *t, double observed);
/* "ms" for latency metrics, "" otherwise (ratios are fractions) — for messages. */
const char *bench_threshold_unit(const struct bench_threshold *t);

#endif
