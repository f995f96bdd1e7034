/* SPDX-License-Identifier: MIT */
/* metrics.h — a tiny Prometheus registry: counters, gauges and histograms with fixed buckets,
 * each a family with a fixed list of label names, rendered in the text exposition format
 * 0.0.4 (Content-Type OSP_METRICS_CONTENT_TYPE).
 *
 * Single-threaded by design (one libev loop per process). Families are created at startup
 * and live as long as the registry; series (one per distinct label-value tuple) are created
 * on first use, except the single series of a counter or histogram without labels, which
 * exists (at 0) from the family's creation. Label values are copied. Cardinality is the caller's business: label only by
 * bounded sets (kind, outcome, schedule name), never by job id. */
#ifndef OSP_METRICS_H
#define OSP_METRICS_H

#include "common/buf.h"

#include <stddef.h>

#define OSP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define OSP_METRIC_MAX_LABELS    4
#define OSP_METRIC_MAX_BUCKETS   32

enum osp_metric_type { OSP_METRIC_COUNTER, OSP_METRIC_GAUGE, OSP_METRIC_HISTOGRAM };

struct osp_metrics;
struct osp_metric;

struct osp_metrics *osp_metrics_new(void);
void osp_metrics_free(struct osp_metrics *m);

/* Create a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, labels is a NULL-terminated
 * list of at most OSP_METRIC_MAX_LABELS names (NULL = no labels). Counter names should end in
 * _total. The returned family is owned by the registry. Asserts on invalid names (a
 * programming error, never input). */
struct osp_metric *osp_metric_counter(struct osp_metrics *m, const char *name, const char *help,
                                      const char *const *labels);
struct osp_metric *osp_metric_gauge(struct osp_metrics *m, const char *name, const char *help,
                                    const char *const *labels);
/* buckets: strictly increasing upper bounds, at most OSP_METRIC_MAX_BUCKETS (+Inf is
 * implicit). Copied. */
struct osp_metric *osp_metric_histogram(struct osp_metrics *m, const char *name, const char *help,
                                        const char *const *labels, const double *buckets,
                                        size_t nbuckets);

/* values: one label value per label name, in order (NULL when the family has no labels).
 * Counter or gauge: add v (counters only ever grow: v >= 0). */
void osp_metric_add(struct osp_metric *f, const char *const *values, double v);
/* Gauge: set to v. */
void osp_metric_set(struct osp_metric *f, const char *const *values, double v);
/* Histogram: record one observation. */
void osp_metric_observe(struct osp_metric *f, const char *const *values, double v);
/* Current value of a counter or gauge series (0 when it does not exist), or the observation
 * count of a histogram series. */
double osp_metric_value(const struct osp_metric *f, const char *const *values);
/* Drop every series of a family (gauges rebuilt from a fresh snapshot, e.g. per-kind queue
 * depth after a kind disappears). */
void osp_metric_clear(struct osp_metric *f);

/* Append the whole registry in exposition format, families in creation order. */
void osp_metrics_render(const struct osp_metrics *m, struct osp_buf *out);

#endif
