/* SPDX-License-Identifier: MIT */
/* test_libm_lazy.c — libm loaded on first use: every function in the table gives bit for bit
 * what the same function linked directly gives (the seed generator's digests depend on it),
 * over a sweep of arguments including the edges the Zipf samplers use, and the table is
 * loaded once; osp_floor/osp_ceil agree with floor/ceil for every kind of double. This test
 * links libm itself (osp_common does); the worker does not. */
#include "common/base.h"
#include "common/libm_lazy.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* Bitwise equality, so NaN == NaN and -0.0 != 0.0 are judged like the digests would be. */
static void same(double want, double got)
{
    uint64_t a, b;
    memcpy(&a, &want, sizeof a);
    memcpy(&b, &got, sizeof b);
    assert_true(a == b);
}

static void test_matches_libm(void **state)
{
    (void)state;
    const struct osp_libm *m = osp_libm();
    assert_non_null(m);
    /* Volatile: keep the compiler from folding the direct calls at compile time. */
    static const double edges[] = {0.0,  -0.0, 1e-300, 1e-8,  0.5,   1.0,   1.5,
                                   2.0,  10.0, 1e6,    1e300, -1e-8, -0.5,  -1.0,
                                   -2.0, 1.07, 0.99,   1e-16, 700.0, -700.0};
    for (size_t i = 0; i < OSP_ARRAY_LEN(edges); i++) {
        volatile double x = edges[i];
        same(exp(x), m->exp(x));
        same(expm1(x), m->expm1(x));
        same(log(x), m->log(x));
        same(log1p(x), m->log1p(x));
        for (size_t j = 0; j < OSP_ARRAY_LEN(edges); j++) {
            volatile double y = edges[j];
            same(pow(x, y), m->pow(x, y));
        }
    }
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 100000; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        volatile double x = (double)(s >> 11) * 0x1.0p-53 * 40.0 - 20.0;
        volatile double y = (double)(s & 0xffff) / 4096.0 - 8.0;
        same(exp(x), m->exp(x));
        same(expm1(x), m->expm1(x));
        same(log(fabs(x)), m->log(fabs(x)));
        same(log1p(x), m->log1p(x));
        same(pow(fabs(x), y), m->pow(fabs(x), y));
    }
}

static void test_floor_ceil(void **state)
{
    (void)state;
    static const double xs[] = {0.0,
                                -0.0,
                                0.5,
                                -0.5,
                                1.0,
                                -1.0,
                                1.5,
                                -1.5,
                                2.5,
                                -2.5,
                                1e-300,
                                -1e-300,
                                4503599627370495.5,
                                -4503599627370495.5,
                                4503599627370496.0,
                                1e300,
                                -1e300,
                                0.9999999999999999,
                                -0.9999999999999999};
    for (size_t i = 0; i < OSP_ARRAY_LEN(xs); i++) {
        volatile double x = xs[i];
        same(floor(x), osp_floor(x));
        same(ceil(x), osp_ceil(x));
    }
    volatile double inf = INFINITY, nan = NAN;
    same(floor(inf), osp_floor(inf));
    same(ceil(-inf), osp_ceil(-inf));
    assert_true(isnan(osp_floor(nan)) && isnan(osp_ceil(nan)));
    uint64_t s = 0x2545f4914f6cdd1dULL;
    for (int i = 0; i < 100000; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        uint64_t bits = s;
        double x;
        memcpy(&x, &bits, sizeof x); /* any double, every exponent */
        if (isnan(x)) {
            continue;
        }
        volatile double vx = x;
        same(floor(vx), osp_floor(vx));
        same(ceil(vx), osp_ceil(vx));
        volatile double small = (double)(int64_t)(s % 2000001) / 1000.0 - 1000.0;
        same(floor(small), osp_floor(small));
        same(ceil(small), osp_ceil(small));
    }
}

static void test_loaded_once(void **state)
{
    (void)state;
    const struct osp_libm *a = osp_libm();
    const struct osp_libm *b = osp_libm();
    assert_ptr_equal(a, b);
    assert_true(a->pow(2.0, 10.0) == 1024.0);
    assert_true(a->exp(0.0) == 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_libm),
        cmocka_unit_test(test_floor_ceil),
        cmocka_unit_test(test_loaded_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
