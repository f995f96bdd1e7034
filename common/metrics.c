/* SPDX-License-Identifier: MIT */
/* metrics.c — Prometheus registry and text exposition 0.0.4.
 * Series live in a per-family array searched linearly: families here have tens of series at
 * most (kinds x outcomes), and a scrape every few seconds renders them all anyway.
 * Escaping follows the format: HELP escapes backslash and newline; label values escape
 * backslash, double quote and newline. Values print as integers when integral, else in the
 * shortest of %.15g/%.17g that round-trips, with +Inf/-Inf/NaN spelled as Prometheus
 * expects. */
#include "common/metrics.h"
#include "common/alloc.h"
#include "common/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct series {
    char *values[OSP_METRIC_MAX_LABELS]; /* owned */
    double value;                        /* counter/gauge value, histogram sum */
    uint64_t count;                      /* histogram observations */
    uint64_t *buckets;                   /* histogram: per-bucket (non-cumulative) counts */
};

struct osp_metric {
    enum osp_metric_type type;
    char *name;
    char *help;
    char *labels[OSP_METRIC_MAX_LABELS];
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    struct series *series;
    size_t n, cap;
};

struct osp_metrics {
    struct osp_metric **fams;
    size_t n, cap;
};

struct osp_metrics *osp_metrics_new(void)
{
    return osp_xcalloc(1, sizeof(struct osp_metrics));
}

static void series_deinit(struct series *s, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++) {
        free(s->values[i]);
    }
    free(s->buckets);
}

void osp_metric_clear(struct osp_metric *f)
{
    for (size_t i = 0; i < f->n; i++) {
        series_deinit(&f->series[i], f->nlabels);
    }
    f->n = 0;
}

void osp_metrics_free(struct osp_metrics *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        struct osp_metric *f = m->fams[i];
        osp_metric_clear(f);
        free(f->series);
        for (size_t j = 0; j < f->nlabels; j++) {
            free(f->labels[j]);
        }
        free(f->bounds);
        free(f->name);
        free(f->help);
        free(f);
    }
    free(m->fams);
    free(m);
}

static bool name_ok(const char *s, bool colon_ok)
{
    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    for (; *s != '\0'; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || (colon_ok && c == ':');
        if (!ok) {
            return false;
        }
    }
    return true;
}

static struct series *get(struct osp_metric *f, const char *const *values);

static struct osp_metric *family_new(struct osp_metrics *m, enum osp_metric_type type,
                                     const char *name, const char *help, const char *const *labels)
{
    OSP_ASSERT(name_ok(name, true));
    struct osp_metric *f = osp_xcalloc(1, sizeof(*f));
    f->type = type;
    f->name = osp_xstrdup(name);
    f->help = osp_xstrdup(help ? help : "");
    for (size_t i = 0; labels != NULL && labels[i] != NULL; i++) {
        OSP_ASSERT(i < OSP_METRIC_MAX_LABELS && name_ok(labels[i], false));
        OSP_ASSERT(strcmp(labels[i], "le") != 0 || type != OSP_METRIC_HISTOGRAM);
        f->labels[i] = osp_xstrdup(labels[i]);
        f->nlabels = i + 1;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->fams = osp_xrealloc(m->fams, m->cap * sizeof(*m->fams));
    }
    m->fams[m->n++] = f;
    return f;
}

/* A counter or histogram without labels has exactly one series: it exists from the start, so
 * scrapes see 0 before the first event (rate() and increase() need the series to be there).
 * Gauges are left alone: a gauge nobody has set yet has no value, which 0 would misstate. */
static struct osp_metric *with_series(struct osp_metric *f)
{
    if (f->nlabels == 0) {
        (void)get(f, NULL);
    }
    return f;
}

struct osp_metric *osp_metric_counter(struct osp_metrics *m, const char *name, const char *help,
                                      const char *const *labels)
{
    return with_series(family_new(m, OSP_METRIC_COUNTER, name, help, labels));
}

struct osp_metric *osp_metric_gauge(struct osp_metrics *m, const char *name, const char *help,
                                    const char *const *labels)
{
    return family_new(m, OSP_METRIC_GAUGE, name, help, labels);
}

struct osp_metric *osp_metric_histogram(struct osp_metrics *m, const char *name, const char *help,
                                        const char *const *labels, const double *buckets,
                                        size_t nbuckets)
{
    OSP_ASSERT(nbuckets > 0 && nbuckets <= OSP_METRIC_MAX_BUCKETS);
    for (size_t i = 1; i < nbuckets; i++) {
        OSP_ASSERT(buckets[i] > buckets[i - 1]);
    }
    struct osp_metric *f = family_new(m, OSP_METRIC_HISTOGRAM, name, help, labels);
    f->bounds = osp_xmalloc(nbuckets * sizeof(double));
    memcpy(f->bounds, buckets, nbuckets * sizeof(double));
    f->nbounds = nbuckets;
    return with_series(f);
}

static struct series *find(const struct osp_metric *f, const char *const *values)
{
    for (size_t i = 0; i < f->n; i++) {
        bool eq = true;
        for (size_t j = 0; j < f->nlabels && eq; j++) {
            eq = strcmp(f->series[i].values[j], values[j] ? values[j] : "") == 0;
        }
        if (eq) {
            return &f->series[i];
        }
    }
    return NULL;
}

static struct series *get(struct osp_metric *f, const char *const *values)
{
    OSP_ASSERT(f->nlabels == 0 || values != NULL);
    struct series *s = find(f, values);
    if (s != NULL) {
        return s;
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->series = osp_xrealloc(f->series, f->cap * sizeof(*f->series));
    }
    s = &f->series[f->n++];
    memset(s, 0, sizeof(*s));
    for (size_t j = 0; j < f->nlabels; j++) {
        s->values[j] = osp_xstrdup(values[j] ? values[j] : "");
    }
    if (f->type == OSP_METRIC_HISTOGRAM) {
        s->buckets = osp_xcalloc(f->nbounds, sizeof(uint64_t));
    }
    return s;
}

void osp_metric_add(struct osp_metric *f, const char *const *values, double v)
{
    OSP_ASSERT(f->type == OSP_METRIC_COUNTER || f->type == OSP_METRIC_GAUGE);
    get(f, values)->value += v;
}

void osp_metric_set(struct osp_metric *f, const char *const *values, double v)
{
    OSP_ASSERT(f->type == OSP_METRIC_GAUGE);
    get(f, values)->value = v;
}

void osp_metric_observe(struct osp_metric *f, const char *const *values, double v)
{
    OSP_ASSERT(f->type == OSP_METRIC_HISTOGRAM);
    struct series *s = get(f, values);
    s->count++;
    s->value += v;
    for (size_t i = 0; i < f->nbounds; i++) {
        if (v <= f->bounds[i]) {
            s->buckets[i]++;
            break;
        }
    }
}

double osp_metric_value(const struct osp_metric *f, const char *const *values)
{
    const struct series *s = find(f, values);
    if (s == NULL) {
        return 0;
    }
    return f->type == OSP_METRIC_HISTOGRAM ? (double)s->count : s->value;
}

/* ---- Rendering ---- */

static void put_num(struct osp_buf *out, double v)
{
    if (isnan(v)) {
        osp_buf_append(out, "NaN", 3);
    } else if (isinf(v)) {
        osp_buf_appendf(out, "%sInf", v > 0 ? "+" : "-");
    } else if (fabs(v) < 9.007199254740992e15 && v == (double)(long long)v) {
        /* Integral (the range test first keeps the cast defined; no libm: ADR 0006). */
        osp_buf_appendf(out, "%lld", (long long)v);
    } else {
        /* The shortest of %.15g / %.17g that reads back as the same double. */
        char tmp[32];
        snprintf(tmp, sizeof(tmp), "%.15g", v);
        if (strtod(tmp, NULL) != v) {
            snprintf(tmp, sizeof(tmp), "%.17g", v);
        }
        osp_buf_append(out, tmp, strlen(tmp));
    }
}

static void put_escaped(struct osp_buf *out, const char *s, bool quotes)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\') {
            osp_buf_append(out, "\\\\", 2);
        } else if (*s == '\n') {
            osp_buf_append(out, "\\n", 2);
        } else if (quotes && *s == '"') {
            osp_buf_append(out, "\\\"", 2);
        } else {
            osp_buf_append(out, s, 1);
        }
    }
}

/* {a="x",b="y"[,le="..."]} or nothing when there are no labels at all. */
static void put_labels(struct osp_buf *out, const struct osp_metric *f, const struct series *s,
                       const char *le)
{
    if (f->nlabels == 0 && le == NULL) {
        return;
    }
    osp_buf_append(out, "{", 1);
    for (size_t j = 0; j < f->nlabels; j++) {
        osp_buf_appendf(out, "%s%s=\"", j ? "," : "", f->labels[j]);
        put_escaped(out, s->values[j], true);
        osp_buf_append(out, "\"", 1);
    }
    if (le != NULL) {
        osp_buf_appendf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    }
    osp_buf_append(out, "}", 1);
}

void osp_metrics_render(const struct osp_metrics *m, struct osp_buf *out)
{
    static const char *const tnames[] = {"counter", "gauge", "histogram"};
    for (size_t i = 0; i < m->n; i++) {
        const struct osp_metric *f = m->fams[i];
        osp_buf_appendf(out, "# HELP %s ", f->name);
        put_escaped(out, f->help, false);
        osp_buf_appendf(out, "\n# TYPE %s %s\n", f->name, tnames[f->type]);
        for (size_t k = 0; k < f->n; k++) {
            const struct series *s = &f->series[k];
            if (f->type != OSP_METRIC_HISTOGRAM) {
                osp_buf_append(out, f->name, strlen(f->name));
                put_labels(out, f, s, NULL);
                osp_buf_append(out, " ", 1);
                put_num(out, s->value);
                osp_buf_append(out, "\n", 1);
                continue;
            }
            uint64_t cum = 0;
            for (size_t b = 0; b <= f->nbounds; b++) {
                char le[40];
                if (b < f->nbounds) {
                    cum += s->buckets[b];
                    struct osp_buf tmp = OSP_BUF_INIT;
                    put_num(&tmp, f->bounds[b]);
                    snprintf(le, sizeof(le), "%s", osp_buf_cstr(&tmp));
                    osp_buf_deinit(&tmp);
                } else {
                    cum = s->count;
                    snprintf(le, sizeof(le), "+Inf");
                }
                osp_buf_appendf(out, "%s_bucket", f->name);
                put_labels(out, f, s, le);
                osp_buf_appendf(out, " %llu\n", (unsigned long long)cum);
            }
            osp_buf_appendf(out, "%s_sum", f->name);
            put_labels(out, f, s, NULL);
            osp_buf_append(out, " ", 1);
            put_num(out, s->value);
            osp_buf_appendf(out, "\n%s_count", f->name);
            put_labels(out, f, s, NULL);
            osp_buf_appendf(out, " %llu\n", (unsigned long long)s->count);
        }
    }
}
