/* SPDX-License-Identifier: MIT */
/* test_hist.c — the log-linear histogram against an exact sort of the same samples: every
 * percentile is the top of the bucket holding the exact nearest-rank value (so within 1/1024
 * above it), merging equals recording everything in one histogram, bucket bounds hold across
 * the whole range, and out-of-range values are clamped without losing the exact max. */
#include "jobs/benchmark/hist.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static uint64_t rng_state = 42;

static uint64_t next_rand(void)
{
    /* splitmix64: deterministic across machines */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Log-uniform values from 1 us to ~10 s: every bucket width gets exercised. */
static uint64_t sample(void)
{
    double e = (double)(next_rand() >> 11) * 0x1.0p-53 * 7.0;
    return (uint64_t)pow(10.0, e);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t exact_pctl(const uint64_t *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p / 100.0 * (double)n - 1e-9);
    if (rank < 1) {
        rank = 1;
    }
    return sorted[rank - 1];
}

static const double pcts[] = {1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};

static void check_against_sort(struct bench_hist *h, uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(v[0]), cmp_u64);
    assert_int_equal(bench_hist_count(h), n);
    assert_int_equal(bench_hist_max(h), v[n - 1]);
    assert_int_equal(bench_hist_min(h), v[0]);
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
        uint64_t exact = exact_pctl(v, n, pcts[i]);
        uint64_t got = bench_hist_percentile(h, pcts[i]);
        uint64_t want = bench_hist_highest_equiv(exact);
        if (want > v[n - 1]) {
            want = v[n - 1];
        }
        assert_int_equal(got, want);
        assert_true(got >= exact);
        assert_true((double)(got - exact) <= (double)exact / 1024.0);
    }
}

static void test_percentiles_match_sort(void **state)
{
    (void)state;
    size_t n = 200000;
    uint64_t *v = malloc(n * sizeof(*v));
    assert_non_null(v);
    struct bench_hist *h = bench_hist_new();
    for (size_t i = 0; i < n; i++) {
        v[i] = sample();
        bench_hist_record(h, v[i]);
    }
    check_against_sort(h, v, n);
    free(h);
    free(v);
}

static void test_small_counts(void **state)
{
    (void)state;
    /* 100 values 1..100: exact below 2048 us, and p99 is rank 99 despite 0.99*100 rounding. */
    struct bench_hist *h = bench_hist_new();
    for (uint64_t i = 1; i <= 100; i++) {
        bench_hist_record(h, i);
    }
    assert_int_equal(bench_hist_percentile(h, 50), 50);
    assert_int_equal(bench_hist_percentile(h, 99), 99);
    assert_int_equal(bench_hist_percentile(h, 100), 100);
    assert_int_equal(bench_hist_percentile(h, 0), 1);
    assert_true(fabs(bench_hist_mean(h) - 50.5) < 1e-9);
    free(h);
}

static void test_merge_equals_single(void **state)
{
    (void)state;
    size_t n = 50000;
    uint64_t *v = malloc(n * sizeof(*v));
    assert_non_null(v);
    struct bench_hist *a = bench_hist_new(), *b = bench_hist_new(), *all = bench_hist_new();
    for (size_t i = 0; i < n; i++) {
        v[i] = sample();
        bench_hist_record(i % 3 == 0 ? a : b, v[i]);
        bench_hist_record(all, v[i]);
    }
    bench_hist_merge(a, b);
    assert_memory_equal(a->counts, all->counts, sizeof(all->counts));
    assert_int_equal(a->total, all->total);
    assert_int_equal(a->max_us, all->max_us);
    assert_int_equal(a->min_us, all->min_us);
    check_against_sort(a, v, n);
    free(a);
    free(b);
    free(all);
    free(v);
}

static void test_bucket_bounds(void **state)
{
    (void)state;
    unsigned prev = 0;
    for (uint64_t v = 0; v <= BENCH_HIST_MAX_US; v = v < 5000 ? v + 1 : v + v / 997 + 1) {
        unsigned idx = bench_hist_index(v);
        assert_true(idx < BENCH_HIST_NCOUNTS);
        assert_true(idx >= prev); /* monotonic */
        prev = idx;
        uint64_t lo = bench_hist_lowest_equiv(v), hi = bench_hist_highest_equiv(v);
        assert_true(lo <= v && v <= hi);
        uint64_t width = hi - lo + 1;
        assert_true(width == 1 || (double)width <= (double)v / 1024.0 + 1.0);
        if (v < 2048) {
            assert_int_equal(width, 1);
        }
    }
}

static void test_empty_and_clamp(void **state)
{
    (void)state;
    struct bench_hist *h = bench_hist_new();
    assert_int_equal(bench_hist_percentile(h, 99), 0);
    assert_int_equal(bench_hist_max(h), 0);
    assert_int_equal(bench_hist_min(h), 0);
    uint64_t huge = BENCH_HIST_MAX_US * 3;
    bench_hist_record(h, huge);
    bench_hist_record(h, 5);
    assert_int_equal(bench_hist_max(h), huge);
    assert_int_equal(bench_hist_percentile(h, 100), bench_hist_highest_equiv(BENCH_HIST_MAX_US));
    assert_int_equal(bench_hist_percentile(h, 50), 5);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles_match_sort),
        cmocka_unit_test(test_small_counts),
        cmocka_unit_test(test_merge_equals_single),
        cmocka_unit_test(test_bucket_bounds),
        cmocka_unit_test(test_empty_and_clamp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
