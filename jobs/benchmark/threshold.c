/* SPDX-License-Identifier: MIT */
/* threshold.c — parser and evaluator for k6-style thresholds (grammar in threshold.h). The
 * parser is a hand-written scanner over a bounded string: no regex, no locale-dependent
 * number parsing surprises beyond strtod's (the worker runs in the C locale). */
#include "jobs/benchmark/threshold.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *thr_skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    return s;
}

/* Parse an unsigned decimal number without sign or exponent ("99.9", "300"); returns the end
 * or NULL. strtod alone would also accept "inf", "0x1p3" and signs. */
static const char *thr_number(const char *s, double *out)
{
    const char *p = s;
    bool digits = false;
    while (isdigit((unsigned char)*p)) {
        p++;
        digits = true;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits = true;
        }
    }
    if (!digits || p - s > 24) {
        return NULL;
    }
    char tmp[32];
    memcpy(tmp, s, (size_t)(p - s));
    tmp[p - s] = '\0';
    *out = strtod(tmp, NULL);
    return p;
}

static bool thr_is_latency(enum bench_metric m)
{
    return m == BENCH_M_PCTL || m == BENCH_M_MIN || m == BENCH_M_MAX || m == BENCH_M_MEAN;
}

static bool thr_is_ratio(enum bench_metric m)
{
    return m == BENCH_M_ERROR_RATE || m == BENCH_M_CACHE_HIT_RATIO;
}

/* Parse the metric name at s; returns the end or NULL. */
static const char *thr_metric(const char *s, struct bench_threshold *t, struct osp_err *err)
{
    static const struct {
        const char *name;
        enum bench_metric m;
    } names[] = {
        {"error_rate", BENCH_M_ERROR_RATE}, {"cache_hit_ratio", BENCH_M_CACHE_HIT_RATIO},
        {"rps", BENCH_M_RPS},               {"requests", BENCH_M_REQUESTS},
        {"errors", BENCH_M_ERRORS},         {"late_sends", BENCH_M_LATE_SENDS},
        {"dropped", BENCH_M_DROPPED},       {"min", BENCH_M_MIN},
        {"max", BENCH_M_MAX},               {"mean", BENCH_M_MEAN},
        {"avg", BENCH_M_MEAN},
    };
    size_t n = 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '.' || s[n] == '(' ||
           s[n] == ')') {
        n++;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) == n && strncmp(s, names[i].name, n) == 0) {
            t->metric = names[i].m;
            return s + n;
        }
    }
    if (n == 3 && strncmp(s, "med", 3) == 0) {
        t->metric = BENCH_M_PCTL;
        t->pctl = 50.0;
        return s + n;
    }
    if (n >= 2 && s[0] == 'p') {
        bool paren = s[1] == '(';
        const char *p = s + (paren ? 2 : 1);
        double v = 0.0;
        const char *e = thr_number(p, &v);
        if (e != NULL && paren && *e == ')') {
            e++;
        } else if (paren) {
            e = NULL;
        }
        if (e == s + n) {
            /* "p999" is the customary spelling of p99.9 (wrk2, our result columns). */
            if (!paren && strncmp(p, "999", 3) == 0 && e == p + 3) {
                v = 99.9;
            }
            if (!(v > 0.0 && v <= 100.0)) {
                osp_err_set(err, OSP_EINVAL, "percentile must be in (0, 100]");
                return NULL;
            }
            t->metric = BENCH_M_PCTL;
            t->pctl = v;
            return e;
        }
    }
    osp_err_set(err, OSP_EINVAL,
                "unknown metric \"%.*s\" (use pN, p(N), med, min, max, mean, error_rate, "
                "cache_hit_ratio, rps, requests, errors, late_sends, dropped)",
                (int)(n > 32 ? 32 : n), s);
    return NULL;
}

int bench_threshold_parse(const char *expr, struct bench_threshold *t, struct osp_err *err)
{
    memset(t, 0, sizeof(*t));
    size_t len = strlen(expr);
    if (len == 0 || len > BENCH_THRESHOLD_EXPR_MAX) {
        return osp_err_set(err, OSP_EINVAL, "must be 1..%d characters",
                           BENCH_THRESHOLD_EXPR_MAX);
    }
    memcpy(t->expr, expr, len + 1);
    const char *s = thr_skip_ws(expr);
    s = thr_metric(s, t, err);
    if (s == NULL) {
        return OSP_EINVAL;
    }
    s = thr_skip_ws(s);
    if (s[0] == '<') {
        t->op = s[1] == '=' ? BENCH_OP_LE : BENCH_OP_LT;
    } else if (s[0] == '>') {
        t->op = s[1] == '=' ? BENCH_OP_GE : BENCH_OP_GT;
    } else {
        return osp_err_set(err, OSP_EINVAL, "expected an operator <, <=, > or >= after the metric");
    }
    s += s[1] == '=' ? 2 : 1;
    s = thr_skip_ws(s);
    double v = 0.0;
    const char *e = thr_number(s, &v);
    if (e == NULL) {
        return osp_err_set(err, OSP_EINVAL, "expected a non-negative number after the operator");
    }
    s = thr_skip_ws(e);
    const char *unit = s;
    while (isalpha((unsigned char)*s) || *s == '%') {
        s++;
    }
    size_t ulen = (size_t)(s - unit);
    if (*thr_skip_ws(s) != '\0') {
        return osp_err_set(err, OSP_EINVAL, "unexpected text after the value");
    }
    if (thr_is_latency(t->metric)) {
        if (ulen == 0 || (ulen == 2 && strncmp(unit, "ms", 2) == 0)) {
            t->value = v;
        } else if (ulen == 2 && strncmp(unit, "us", 2) == 0) {
            t->value = v / 1000.0;
        } else if (ulen == 1 && unit[0] == 's') {
            t->value = v * 1000.0;
        } else {
            return osp_err_set(err, OSP_EINVAL, "latency unit must be us, ms or s");
        }
    } else if (thr_is_ratio(t->metric)) {
        if (ulen == 1 && unit[0] == '%') {
            v /= 100.0;
        } else if (ulen != 0) {
            return osp_err_set(err, OSP_EINVAL, "a ratio is written 1%% or 0.01");
        }
        if (v > 1.0) {
            return osp_err_set(err, OSP_EINVAL, "a ratio must be at most 100%%");
        }
        t->value = v;
    } else {
        if (ulen != 0) {
            return osp_err_set(err, OSP_EINVAL, "this metric takes a plain number (no unit)");
        }
        t->value = v;
    }
    return 0;
}

double bench_threshold_observe(const struct bench_threshold *t, const struct bench_observed *o)
{
    switch (t->metric) {
    case BENCH_M_PCTL:
    case BENCH_M_MIN:
    case BENCH_M_MAX:
    case BENCH_M_MEAN:
        return o->latency_ms(o->arg, t->metric, t->pctl);
    case BENCH_M_ERROR_RATE:
        return o->error_rate;
    case BENCH_M_CACHE_HIT_RATIO:
        return o->cache_hit_ratio;
    case BENCH_M_RPS:
        return o->rps;
    case BENCH_M_REQUESTS:
        return o->requests;
    case BENCH_M_ERRORS:
        return o->errors;
    case BENCH_M_LATE_SENDS:
        return o->late_sends;
    case BENCH_M_DROPPED:
        return o->dropped;
    }
    return NAN;
}

bool bench_threshold_holds(const struct bench_threshold *t, double observed)
{
    if (isnan(observed)) {
        return false;
    }
    switch (t->op) {
    case BENCH_OP_LT:
        return observed < t->value;
    case BENCH_OP_LE:
        return observed <= t->value;
    case BENCH_OP_GT:
        return observed > t->value;
    case BENCH_OP_GE:
        return observed >= t->value;
    }
    return false;
}

const char *bench_threshold_unit(const struct bench_threshold *t)
{
    if (thr_is_latency(t->metric)) {
        return "ms";
    }
    return "";
}
