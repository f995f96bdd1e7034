/* SPDX-License-Identifier: MIT */
/* stats.c — what a probe series says: per-phase counts, availability and latency percentiles,
 * time to detect, time to recover, and the verdict against the declared hypothesis.
 * Everything here is pure (no clock, no I/O) so a synthetic series can pin each definition in
 * a unit test. Probes are judged by their intended send time, which the cadence fixes, so a
 * slow answer never shifts when a failure is said to have started. */
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/drill/drill.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void drill_series_deinit(struct drill_series *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

size_t drill_series_add(struct drill_series *s, const struct drill_probe *p)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = osp_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n] = *p;
    return s->n++;
}

static int drill_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array: the smallest value with at least q of the
 * samples at or below it (no interpolation: every reported value was observed). */
static double drill_rank(const double *v, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank < 1) {
        rank = 1;
    }
    return v[rank - 1];
}

void drill_phase_stats(const struct drill_series *s, int ph, struct drill_phase_stats *out)
{
    memset(out, 0, sizeof(*out));
    double *lat = osp_xmalloc((s->n ? s->n : 1) * sizeof(*lat));
    size_t nl = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct drill_probe *p = &s->v[i];
        if (p->done_ms < 0 || (ph != DRILL_PH_COUNT && p->phase != ph)) {
            continue;
        }
        out->total++;
        out->ok += p->ok;
        out->errors[p->err < DRILL_PERR_COUNT ? p->err : DRILL_PERR_IO]++;
        /* Latency is the time to an answer; refused connections and timeouts have none,
         * and counting the timeout value would make percentiles describe the client. */
        if (p->status > 0) {
            lat[nl++] = (double)p->latency_us / 1000.0;
        }
    }
    out->availability = out->total ? (double)out->ok / (double)out->total : -1;
    out->p50_ms = out->p95_ms = out->p99_ms = out->max_ms = -1;
    if (nl > 0) {
        qsort(lat, nl, sizeof(*lat), drill_cmp_double);
        out->p50_ms = drill_rank(lat, nl, 0.50);
        out->p95_ms = drill_rank(lat, nl, 0.95);
        out->p99_ms = drill_rank(lat, nl, 0.99);
        out->max_ms = lat[nl - 1];
    }
    free(lat);
}

double drill_availability_between(const struct drill_series *s, int64_t from_ms, int64_t to_ms,
                                  unsigned *count)
{
    unsigned total = 0, ok = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct drill_probe *p = &s->v[i];
        if (p->done_ms >= 0 && p->sched_ms >= from_ms && p->sched_ms < to_ms) {
            total++;
            ok += p->ok;
        }
    }
    if (count != NULL) {
        *count = total;
    }
    return total ? (double)ok / (double)total : -1;
}

/* Indexes of completed probes sent at or after from_ms, ordered by intended send time. Probes
 * are appended in send order already; this only skips the unfinished and the earlier ones. */
static size_t drill_select(const struct drill_series *s, int64_t from_ms, size_t *idx)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].done_ms >= 0 && s->v[i].sched_ms >= from_ms) {
            idx[n++] = i;
        }
    }
    return n;
}

int64_t drill_time_to_detect(const struct drill_series *s, int64_t inject_ms)
{
    if (inject_ms < 0) {
        return -1;
    }
    int64_t best = -1;
    for (size_t i = 0; i < s->n; i++) {
        const struct drill_probe *p = &s->v[i];
        if (p->done_ms >= 0 && !p->ok && p->sched_ms >= inject_ms &&
            (best < 0 || p->sched_ms < best)) {
            best = p->sched_ms;
        }
    }
    return best < 0 ? -1 : best - inject_ms;
}

int64_t drill_time_to_recover(const struct drill_series *s, int64_t from_ms, unsigned k)
{
    if (from_ms < 0 || k == 0) {
        return -1;
    }
    size_t *idx = osp_xmalloc((s->n ? s->n : 1) * sizeof(*idx));
    size_t n = drill_select(s, from_ms, idx);
    int64_t out = -1;
    unsigned run = 0;
    for (size_t j = 0; j < n; j++) {
        if (!s->v[idx[j]].ok) {
            run = 0;
            continue;
        }
        if (++run == k) {
            int64_t first = s->v[idx[j + 1 - k]].sched_ms;
            out = first - from_ms;
            break;
        }
    }
    free(idx);
    return out;
}

unsigned drill_tail_passes(const struct drill_series *s, int ph)
{
    unsigned run = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct drill_probe *p = &s->v[i];
        if (p->phase != ph || p->done_ms < 0) {
            continue;
        }
        run = p->ok ? run + 1 : 0;
    }
    return run;
}

static void drill_reason(json_t *reasons, const char *fmt, ...) OSP_PRINTF(2, 3);

static void drill_reason(json_t *reasons, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_array_append_new(reasons, json_string(msg));
}

const char *drill_verdict(const struct drill_spec *spec, const struct drill_outcome *o,
                          json_t *reasons)
{
    /* The order matters: a tool failure or an interruption makes the measurement
     * untrustworthy, so it outranks whatever the probes happened to say. */
    if (o->steady_failed) {
        json_array_append_new(reasons, json_string("steady state not met: nothing injected"));
        return "aborted";
    }
    if (o->error) {
        json_array_append_new(reasons, json_string("the drill could not inject or roll back"));
        return "error";
    }
    if (o->cancelled) {
        json_array_append_new(reasons, json_string("cancelled, timed out or drained: rolled back"));
        return "interrupted";
    }
    if (o->abort_fired) {
        json_array_append_new(reasons, json_string("abort condition fired: fault ended early"));
        return "aborted";
    }
    if (o->under_fault_probes < 3) {
        json_array_append_new(reasons, json_string("fewer than 3 probes under the fault"));
        return "inconclusive";
    }
    bool failed = false;
    if (!o->recovered) {
        drill_reason(reasons, "did not recover: no %.0f consecutive passing probes within %.0f s",
                     (double)spec->recovery_consecutive, (double)spec->recovery_timeout_s);
        failed = true;
    }
    if (spec->hyp_max_ttr_ms >= 0 && (o->ttr_ms < 0 || o->ttr_ms > spec->hyp_max_ttr_ms)) {
        drill_reason(reasons, "time to recover %.0f ms > max_time_to_recover_ms %.0f",
                     (double)o->ttr_ms, (double)spec->hyp_max_ttr_ms);
        failed = true;
    }
    if (spec->hyp_max_ttd_ms >= 0 && o->ttd_ms > spec->hyp_max_ttd_ms) {
        drill_reason(reasons, "time to detect %.0f ms > max_time_to_detect_ms %.0f",
                     (double)o->ttd_ms, (double)spec->hyp_max_ttd_ms);
        failed = true;
    }
    if (spec->hyp_min_availability >= 0 &&
        o->availability_under_fault < spec->hyp_min_availability) {
        drill_reason(reasons, "availability under fault %.4f < min_availability %.4f",
                     o->availability_under_fault, spec->hyp_min_availability);
        failed = true;
    }
    if (spec->hyp_max_p95_ms >= 0 && o->observe_p95_ms > spec->hyp_max_p95_ms) {
        drill_reason(reasons, "observe p95 %.1f ms > max_p95_ms %.1f", o->observe_p95_ms,
                     spec->hyp_max_p95_ms);
        failed = true;
    }
    return failed ? "fail" : "pass";
}
