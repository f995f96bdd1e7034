/* SPDX-License-Identifier: MIT */
/* hist.c — the log-linear latency histogram (contract in hist.h). The index arithmetic follows
 * HdrHistogram's: the bucket of v is found from the position of its highest set bit, so a
 * record is a couple of shifts and one increment with no search and no allocation. */
#include "jobs/benchmark/hist.h"
#include "common/alloc.h"

#include <math.h>
#include <string.h>

#define SUB_HALF  (1u << BENCH_HIST_SUB_BITS)       /* 1024 */
#define SUB_COUNT (2u << BENCH_HIST_SUB_BITS)       /* 2048 */
#define SUB_MASK  ((uint64_t)SUB_COUNT - 1u)

_Static_assert(((uint64_t)SUB_COUNT << (BENCH_HIST_BUCKETS - 1u)) > BENCH_HIST_MAX_US,
               "the histogram must reach BENCH_HIST_MAX_US");

static unsigned hist_bucket(uint64_t v)
{
    /* Bucket 0 holds [0, 2048); each further bucket doubles the range and the width. */
    unsigned pow2ceil = 64u - (unsigned)__builtin_clzll(v | SUB_MASK);
    return pow2ceil - (BENCH_HIST_SUB_BITS + 1u);
}

unsigned bench_hist_index(uint64_t us)
{
    if (us > BENCH_HIST_MAX_US) {
        us = BENCH_HIST_MAX_US;
    }
    unsigned b = hist_bucket(us);
    unsigned sub = (unsigned)(us >> b);
    return ((b + 1u) << BENCH_HIST_SUB_BITS) + (sub - SUB_HALF);
}

/* The lowest value of the slot at counts[idx]. */
static uint64_t hist_value_at(unsigned idx)
{
    unsigned b = (idx >> BENCH_HIST_SUB_BITS);
    unsigned sub = (idx & (SUB_HALF - 1u)) + SUB_HALF;
    if (b == 0) {
        /* Slots 0..1023 are the lower half of bucket 0: the values 0..1023 themselves. */
        return idx;
    }
    return (uint64_t)sub << (b - 1u);
}

static uint64_t hist_width_at(unsigned idx)
{
    unsigned b = idx >> BENCH_HIST_SUB_BITS;
    return b == 0 ? 1u : (uint64_t)1u << (b - 1u);
}

uint64_t bench_hist_lowest_equiv(uint64_t us)
{
    return hist_value_at(bench_hist_index(us));
}

uint64_t bench_hist_highest_equiv(uint64_t us)
{
    unsigned idx = bench_hist_index(us);
    return hist_value_at(idx) + hist_width_at(idx) - 1u;
}

struct bench_hist *bench_hist_new(void)
{
    struct bench_hist *h = osp_xmalloc(sizeof(*h));
    bench_hist_reset(h);
    return h;
}

void bench_hist_reset(struct bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min_us = UINT64_MAX;
}

void bench_hist_record(struct bench_hist *h, uint64_t us)
{
    h->counts[bench_hist_index(us)]++;
    h->total++;
    h->sum_us += (double)us;
    if (us < h->min_us) {
        h->min_us = us;
    }
    if (us > h->max_us) {
        h->max_us = us;
    }
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    for (unsigned i = 0; i < BENCH_HIST_NCOUNTS; i++) {
        dst->counts[i] += src->counts[i];
    }
    dst->total += src->total;
    dst->sum_us += src->sum_us;
    if (src->min_us < dst->min_us) {
        dst->min_us = src->min_us;
    }
    if (src->max_us > dst->max_us) {
        dst->max_us = src->max_us;
    }
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
    if (h->total == 0) {
        return 0;
    }
    if (!(p > 0.0)) {
        return h->min_us;
    }
    if (p > 100.0) {
        p = 100.0;
    }
    /* Nearest rank: the smallest value with at least ceil(p/100 * n) values at or below it. A
     * tiny epsilon keeps p99 of 100 values at rank 99 despite binary rounding of 0.99*100. */
    double exact = p / 100.0 * (double)h->total;
    uint64_t rank = (uint64_t)ceil(exact - 1e-9);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > h->total) {
        rank = h->total;
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_NCOUNTS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hist_value_at(i) + hist_width_at(i) - 1u;
            if (v > h->max_us) {
                v = h->max_us;
            }
            if (v < h->min_us) {
                v = h->min_us;
            }
            return v;
        }
    }
    return h->max_us;
}

uint64_t bench_hist_count(const struct bench_hist *h)
{
    return h->total;
}

uint64_t bench_hist_max(const struct bench_hist *h)
{
    return h->max_us;
}

uint64_t bench_hist_min(const struct bench_hist *h)
{
    return h->total == 0 ? 0 : h->min_us;
}

double bench_hist_mean(const struct bench_hist *h)
{
    return h->total == 0 ? 0.0 : h->sum_us / (double)h->total;
}
