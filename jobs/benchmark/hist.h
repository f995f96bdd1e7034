/* SPDX-License-Identifier: MIT */
/* hist.h — a log-linear (HDR-style) latency histogram with fixed memory.
 *
 * Values are microseconds in [0, BENCH_HIST_MAX_US] (one hour); larger values are clamped to
 * the top bucket but still update max exactly. Precision is 3 significant decimal digits:
 * every recorded value v lands in a bucket whose width is at most v/1024, so a percentile read
 * back is never below the exact nearest-rank value and never more than 1/1024 (~0.1 %) above
 * it (and exact below 2048 us). Percentiles are only ever computed from (merged) histograms,
 * never averaged across histograms.
 *
 * Layout (as in HdrHistogram with unit magnitude 0): "bucket" b covers [1024·2^b, 2048·2^b)
 * in 1024 sub-buckets of width 2^b; bucket 0 also covers [0, 1024) with width 1. */
#ifndef OSP_BENCH_HIST_H
#define OSP_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_MAX_US     3600000000ULL /* 1 hour */
#define BENCH_HIST_SUB_BITS   10u           /* 1024 half sub-buckets: 3 significant digits */
#define BENCH_HIST_BUCKETS    22u           /* 2048 << 21 > BENCH_HIST_MAX_US */
#define BENCH_HIST_NCOUNTS    ((BENCH_HIST_BUCKETS + 1u) << BENCH_HIST_SUB_BITS)

/* ~184 KiB: allocate with bench_hist_new(), or embed and bench_hist_reset(). */
struct bench_hist {
    uint64_t total;                       /* number of recorded values */
    uint64_t min_us;                      /* exact; UINT64_MAX when empty */
    uint64_t max_us;                      /* exact (also above BENCH_HIST_MAX_US); 0 when empty */
    double sum_us;                        /* for the mean */
    uint64_t counts[BENCH_HIST_NCOUNTS];  /* per-bucket counts */
};

/* A new, empty histogram (owned; free() it). Never NULL. */
struct bench_hist *bench_hist_new(void);
void bench_hist_reset(struct bench_hist *h);
void bench_hist_record(struct bench_hist *h, uint64_t us);
/* Add every value of src into dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* Nearest-rank percentile (p in [0, 100]) as the highest value equivalent to the bucket holding
 * that rank, capped at the exact max. 0 when empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);
uint64_t bench_hist_count(const struct bench_hist *h);
uint64_t bench_hist_max(const struct bench_hist *h);
uint64_t bench_hist_min(const struct bench_hist *h);
double bench_hist_mean(const struct bench_hist *h);
/* The bucket index of a value and the inclusive value range it stands for (tests). */
unsigned bench_hist_index(uint64_t us);
uint64_t bench_hist_lowest_equiv(uint64_t us);
uint64_t bench_hist_highest_equiv(uint64_t us);

#endif
