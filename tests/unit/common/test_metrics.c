/* SPDX-License-Identifier: MIT */
/* test_metrics.c — the Prometheus registry: exact exposition text for counters, gauges and
 * histograms (cumulative buckets, +Inf, _sum/_count), label and HELP escaping, number
 * formatting, series lookup and clearing. */
#include "common/metrics.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char *render(const struct osp_metrics *m)
{
    struct osp_buf b = OSP_BUF_INIT;
    osp_metrics_render(m, &b);
    char *s = strdup(osp_buf_cstr(&b));
    osp_buf_deinit(&b);
    return s;
}

static void test_counter_and_gauge(void **state)
{
    (void)state;
    struct osp_metrics *m = osp_metrics_new();
    static const char *const kind[] = {"kind", "outcome", NULL};
    struct osp_metric *c = osp_metric_counter(m, "jobs_total", "jobs by kind", kind);
    struct osp_metric *g = osp_metric_gauge(m, "busy", "busy slots", NULL);
    const char *a[] = {"noop", "succeeded"};
    const char *b[] = {"backup", "failed"};
    osp_metric_add(c, a, 1);
    osp_metric_add(c, a, 2);
    osp_metric_add(c, b, 1);
    osp_metric_set(g, NULL, 0.25);
    assert_true(osp_metric_value(c, a) == 3.0);
    assert_true(osp_metric_value(c, b) == 1.0);
    const char *none[] = {"x", "y"};
    assert_true(osp_metric_value(c, none) == 0.0);
    char *s = render(m);
    assert_string_equal(s, "# HELP jobs_total jobs by kind\n"
                           "# TYPE jobs_total counter\n"
                           "jobs_total{kind=\"noop\",outcome=\"succeeded\"} 3\n"
                           "jobs_total{kind=\"backup\",outcome=\"failed\"} 1\n"
                           "# HELP busy busy slots\n"
                           "# TYPE busy gauge\n"
                           "busy 0.25\n");
    free(s);
    osp_metric_clear(c);
    s = render(m);
    assert_null(strstr(s, "noop"));
    assert_non_null(strstr(s, "# TYPE jobs_total counter\n"));
    free(s);
    osp_metrics_free(m);
}

/* A counter without labels is in every scrape from the start, at 0; a gauge nobody has set is
 * not (0 would be a claim). */
static void test_unlabelled_counter_at_zero(void **state)
{
    (void)state;
    struct osp_metrics *m = osp_metrics_new();
    struct osp_metric *c = osp_metric_counter(m, "errors_total", "errors", NULL);
    (void)osp_metric_gauge(m, "last_success", "unset until a success", NULL);
    char *s = render(m);
    assert_string_equal(s, "# HELP errors_total errors\n"
                           "# TYPE errors_total counter\n"
                           "errors_total 0\n"
                           "# HELP last_success unset until a success\n"
                           "# TYPE last_success gauge\n");
    free(s);
    osp_metric_add(c, NULL, 2);
    s = render(m);
    assert_non_null(strstr(s, "\nerrors_total 2\n"));
    assert_null(strstr(s, "errors_total 0"));
    free(s);
    osp_metrics_free(m);
}

static void test_histogram(void **state)
{
    (void)state;
    struct osp_metrics *m = osp_metrics_new();
    static const char *const kind[] = {"kind", NULL};
    static const double buckets[] = {0.1, 1, 10};
    struct osp_metric *h = osp_metric_histogram(m, "dur_seconds", "durations", kind, buckets, 3);
    const char *v[] = {"noop"};
    osp_metric_observe(h, v, 0.05);
    osp_metric_observe(h, v, 0.1); /* upper bounds are inclusive */
    osp_metric_observe(h, v, 5);
    osp_metric_observe(h, v, 100);
    assert_true(osp_metric_value(h, v) == 4.0);
    char *s = render(m);
    assert_string_equal(s, "# HELP dur_seconds durations\n"
                           "# TYPE dur_seconds histogram\n"
                           "dur_seconds_bucket{kind=\"noop\",le=\"0.1\"} 2\n"
                           "dur_seconds_bucket{kind=\"noop\",le=\"1\"} 2\n"
                           "dur_seconds_bucket{kind=\"noop\",le=\"10\"} 3\n"
                           "dur_seconds_bucket{kind=\"noop\",le=\"+Inf\"} 4\n"
                           "dur_seconds_sum{kind=\"noop\"} 105.15\n"
                           "dur_seconds_count{kind=\"noop\"} 4\n");
    free(s);
    osp_metrics_free(m);
}

static void test_unlabelled_histogram(void **state)
{
    (void)state;
    struct osp_metrics *m = osp_metrics_new();
    static const double buckets[] = {1, 2};
    struct osp_metric *h = osp_metric_histogram(m, "lat", "", NULL, buckets, 2);
    osp_metric_observe(h, NULL, 1.5);
    char *s = render(m);
    assert_string_equal(s, "# HELP lat \n"
                           "# TYPE lat histogram\n"
                           "lat_bucket{le=\"1\"} 0\n"
                           "lat_bucket{le=\"2\"} 1\n"
                           "lat_bucket{le=\"+Inf\"} 1\n"
                           "lat_sum 1.5\n"
                           "lat_count 1\n");
    free(s);
    osp_metrics_free(m);
}

static void test_escaping_and_numbers(void **state)
{
    (void)state;
    struct osp_metrics *m = osp_metrics_new();
    static const char *const l[] = {"name", NULL};
    struct osp_metric *g = osp_metric_gauge(m, "odd", "help with \\ and\nnewline", l);
    const char *v1[] = {"a\"b\\c\nd"};
    const char *v2[] = {"inf"};
    const char *v3[] = {"nan"};
    const char *v4[] = {"big"};
    const char *v5[] = {"neg"};
    osp_metric_set(g, v1, 1);
    osp_metric_set(g, v2, INFINITY);
    osp_metric_set(g, v3, NAN);
    osp_metric_set(g, v4, 1795442676.0);
    osp_metric_set(g, v5, -INFINITY);
    char *s = render(m);
    assert_string_equal(s, "# HELP odd help with \\\\ and\\nnewline\n"
                           "# TYPE odd gauge\n"
                           "odd{name=\"a\\\"b\\\\c\\nd\"} 1\n"
                           "odd{name=\"inf\"} +Inf\n"
                           "odd{name=\"nan\"} NaN\n"
                           "odd{name=\"big\"} 1795442676\n"
                           "odd{name=\"neg\"} -Inf\n");
    free(s);
    osp_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_gauge),
        cmocka_unit_test(test_unlabelled_counter_at_zero),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_unlabelled_histogram),
        cmocka_unit_test(test_escaping_and_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
