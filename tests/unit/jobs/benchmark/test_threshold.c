/* SPDX-License-Identifier: MIT */
/* test_threshold.c — the k6-style threshold grammar: accepted spellings with their canonical
 * values, rejected ones with a message, and evaluation (operators, units, NaN = fail). */
#include "jobs/benchmark/threshold.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_parse_valid(void **state)
{
    (void)state;
    static const struct {
        const char *expr;
        enum bench_metric m;
        double pctl;
        enum bench_op op;
        double value;
    } ok[] = {
        {"p95<300ms", BENCH_M_PCTL, 95, BENCH_OP_LT, 300},
        {"p(99) <= 1s", BENCH_M_PCTL, 99, BENCH_OP_LE, 1000},
        {"p99.9<250", BENCH_M_PCTL, 99.9, BENCH_OP_LT, 250},
        {"p999<2s", BENCH_M_PCTL, 99.9, BENCH_OP_LT, 2000},
        {"p50 < 500us", BENCH_M_PCTL, 50, BENCH_OP_LT, 0.5},
        {"med<10", BENCH_M_PCTL, 50, BENCH_OP_LT, 10},
        {"max<1.5s", BENCH_M_MAX, 0, BENCH_OP_LT, 1500},
        {"avg<20ms", BENCH_M_MEAN, 0, BENCH_OP_LT, 20},
        {"error_rate<1%", BENCH_M_ERROR_RATE, 0, BENCH_OP_LT, 0.01},
        {"error_rate<=0.05", BENCH_M_ERROR_RATE, 0, BENCH_OP_LE, 0.05},
        {"cache_hit_ratio>0.8", BENCH_M_CACHE_HIT_RATIO, 0, BENCH_OP_GT, 0.8},
        {"cache_hit_ratio>=80%", BENCH_M_CACHE_HIT_RATIO, 0, BENCH_OP_GE, 0.8},
        {"rps>100", BENCH_M_RPS, 0, BENCH_OP_GT, 100},
        {"requests>=1000", BENCH_M_REQUESTS, 0, BENCH_OP_GE, 1000},
        {"late_sends<1", BENCH_M_LATE_SENDS, 0, BENCH_OP_LT, 1},
        {" dropped <= 0 ", BENCH_M_DROPPED, 0, BENCH_OP_LE, 0},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct bench_threshold t;
        struct osp_err err = {0};
        int rc = bench_threshold_parse(ok[i].expr, &t, &err);
        if (rc != 0) {
            fail_msg("%s: %s", ok[i].expr, err.msg);
        }
        assert_int_equal(t.metric, ok[i].m);
        assert_int_equal(t.op, ok[i].op);
        assert_true(fabs(t.value - ok[i].value) < 1e-9);
        if (ok[i].m == BENCH_M_PCTL) {
            assert_true(fabs(t.pctl - ok[i].pctl) < 1e-9);
        }
        assert_string_equal(t.expr, ok[i].expr);
    }
}

static void test_parse_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *expr;
        const char *msg_part;
    } bad[] = {
        {"", "characters"},
        {"p95", "operator"},
        {"p95<", "number"},
        {"p0<1", "percentile"},
        {"p101<1", "percentile"},
        {"p(95<1", "unknown metric"},
        {"foo<1", "unknown metric"},
        {"error_rate<150%", "at most 100%"},
        {"error_rate<1ms", "ratio"},
        {"rps>100ms", "plain number"},
        {"p95<300 ms extra", "unexpected"},
        {"p95<-1", "number"},
        {"p95==1", "operator"},
        {"p95<300h", "latency unit"},
        {"p95<inf", "number"},
        {"p95<1e3", "unexpected"},
        {"p95<300ms.........................................................", "characters"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct bench_threshold t;
        struct osp_err err = {0};
        int rc = bench_threshold_parse(bad[i].expr, &t, &err);
        if (rc != OSP_EINVAL || strstr(err.msg, bad[i].msg_part) == NULL) {
            fail_msg("\"%s\": rc %d, message \"%s\" (wanted \"%s\")", bad[i].expr, rc, err.msg,
                     bad[i].msg_part);
        }
    }
}

static double fake_latency(const void *arg, enum bench_metric m, double pctl)
{
    (void)arg;
    if (m == BENCH_M_MAX) {
        return 900.0;
    }
    return m == BENCH_M_PCTL ? pctl * 2.0 : NAN; /* p95 = 190 ms; mean not measured */
}

static bool eval(const char *expr, const struct bench_observed *o, double *observed)
{
    struct bench_threshold t;
    struct osp_err err = {0};
    assert_int_equal(bench_threshold_parse(expr, &t, &err), 0);
    *observed = bench_threshold_observe(&t, o);
    return bench_threshold_holds(&t, *observed);
}

static void test_evaluate(void **state)
{
    (void)state;
    struct bench_observed o = {
        .latency_ms = fake_latency, .arg = NULL, .error_rate = 0.02, .cache_hit_ratio = NAN,
        .rps = 150, .requests = 1000, .errors = 20, .late_sends = 3, .dropped = 0,
    };
    double v;
    assert_true(eval("p95<300ms", &o, &v));
    assert_true(fabs(v - 190) < 1e-9);
    assert_false(eval("p95<190", &o, &v));
    assert_true(eval("p95<=190", &o, &v));
    assert_false(eval("p95<0.1s", &o, &v));
    assert_true(eval("max<1s", &o, &v));
    assert_false(eval("max<900ms", &o, &v));
    assert_false(eval("error_rate<1%", &o, &v));
    assert_true(eval("error_rate<5%", &o, &v));
    assert_true(eval("rps>100", &o, &v));
    assert_false(eval("rps>=151", &o, &v));
    assert_true(eval("errors<=20", &o, &v));
    assert_true(eval("late_sends<5", &o, &v));
    /* Not measured: fails whatever the comparison. */
    assert_false(eval("cache_hit_ratio>0", &o, &v));
    assert_true(isnan(v));
    assert_false(eval("cache_hit_ratio<1", &o, &v));
    assert_false(eval("avg<1000", &o, &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_evaluate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
