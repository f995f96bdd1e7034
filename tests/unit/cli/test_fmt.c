/* SPDX-License-Identifier: MIT */
/* test_fmt.c — opspoolctl's pure presentation helpers: ages, durations given on the command
 * line, and table layout (alignment, right-aligned numbers, UTF-8 widths, no trailing blanks,
 * colour only on request). cli/fmt.c is included directly (STYLE.md §2.8: pure helpers); the
 * opspoolctl program itself is not linked. */
#include "cli/fmt.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void expect_age(int64_t ms, const char *want)
{
    char buf[32];
    ctl_fmt_age(ms, buf, sizeof(buf));
    assert_string_equal(buf, want);
}

static void test_age(void **state)
{
    (void)state;
    expect_age(-5, "0s");
    expect_age(0, "0s");
    expect_age(850, "850ms");
    expect_age(1000, "1s");
    expect_age(59999, "59s");
    expect_age(60000, "1m00s");
    expect_age(192000, "3m12s");
    expect_age(3599999, "59m59s");
    expect_age(3600000, "1h00m");
    expect_age(7500000, "2h05m");
    expect_age(86400000, "1d00h");
    expect_age(INT64_C(273600000), "3d04h");
}

static void test_age_truncates_safely(void **state)
{
    (void)state;
    char small[4];
    ctl_fmt_age(192000, small, sizeof(small));
    assert_string_equal(small, "3m1");
}

static void expect_duration(const char *s, int64_t want)
{
    int64_t ms = -1;
    assert_int_equal(ctl_parse_duration(s, &ms), 0);
    assert_int_equal(ms, want);
}

static void test_duration(void **state)
{
    (void)state;
    expect_duration("90", 90000);
    expect_duration("90s", 90000);
    expect_duration("15m", 900000);
    expect_duration("1h30m", 5400000);
    expect_duration("30m1h", 5400000);
    expect_duration("2d", 172800000);
    expect_duration("1w", 604800000);
    expect_duration("500ms", 500);
    expect_duration("1m500ms", 60500);
    expect_duration("1h2m3s", 3723000);
}

static void test_duration_rejects(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "h",
                         "1x",
                         "1h30",
                         "-5m",
                         "1.5h",
                         "1h1h",
                         "0",
                         "0s",
                         "1 h",
                         "99999999999999999999",
                         "5000000w",
                         "m5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        assert_int_equal(ctl_parse_duration(bad[i], &ms), -1);
        assert_int_equal(ms, 42); /* untouched on failure */
    }
    int64_t ms = 42;
    assert_int_equal(ctl_parse_duration(NULL, &ms), -1);
}

/* Print a table into a string (owned). */
static char *render(const struct ctl_table *t, bool color)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ctl_table_print(t, f, color);
    fclose(f);
    return buf;
}

static void test_table_layout(void **state)
{
    (void)state;
    static const char *const heads[] = {"KIND", ">PENDING", "STATE", NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    assert_int_equal(t.ncols, 3);
    const char *r1[] = {"noop", "12", "running"};
    const char *r2[] = {"benchmark", "3", NULL};
    ctl_table_add(&t, r1);
    ctl_table_add(&t, r2);
    char *out = render(&t, false);
    assert_string_equal(out, "KIND        PENDING   STATE\n"
                             "noop             12   running\n"
                             "benchmark         3   -\n");
    free(out);
    ctl_table_deinit(&t);
}

static void test_table_header_only_and_indent(void **state)
{
    (void)state;
    static const char *const heads[] = {">#", "OUTCOME", NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    t.indent = 2;
    char *out = render(&t, false);
    assert_string_equal(out, "  #   OUTCOME\n");
    free(out);
    const char *r[] = {"10", "failed"};
    ctl_table_add(&t, r);
    out = render(&t, false);
    assert_string_equal(out, "   #   OUTCOME\n"
                             "  10   failed\n");
    free(out);
    ctl_table_deinit(&t);
}

static void test_table_utf8_width(void **state)
{
    (void)state;
    static const char *const heads[] = {"A", "B", NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    const char *r1[] = {"\xc3\xa9t\xc3\xa9", "x"}; /* "été": 3 characters, 5 bytes */
    const char *r2[] = {"abcd", "y"};
    ctl_table_add(&t, r1);
    ctl_table_add(&t, r2);
    char *out = render(&t, false);
    assert_string_equal(out, "A      B\n"
                             "\xc3\xa9t\xc3\xa9    x\n"
                             "abcd   y\n");
    free(out);
    ctl_table_deinit(&t);
    assert_int_equal(ctl_text_width("\xc3\xa9t\xc3\xa9"), 3);
}

static void test_table_color(void **state)
{
    (void)state;
    static const char *const heads[] = {"STATE", "X", NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    const char *r[] = {"dead", "1"};
    size_t row = ctl_table_add(&t, r);
    ctl_table_color(&t, row, 0, ctl_state_color("dead"));
    ctl_table_color(&t, 99, 0, CTL_C_RED); /* out of range: ignored */
    char *plain = render(&t, false);
    assert_null(strchr(plain, '\033'));
    assert_string_equal(plain, "STATE   X\ndead    1\n");
    char *col = render(&t, true);
    /* colour codes do not count towards the width: padding follows the reset */
    assert_non_null(strstr(col, "\033[31mdead\033[0m    1\n"));
    assert_non_null(strstr(col, "\033[1mSTATE\033[0m   "));
    free(plain);
    free(col);
    ctl_table_deinit(&t);
}

static void test_table_grows(void **state)
{
    (void)state;
    static const char *const heads[] = {">N", NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    for (int i = 0; i < 100; i++) {
        char n[8];
        snprintf(n, sizeof(n), "%d", i);
        const char *r[] = {n};
        assert_int_equal(ctl_table_add(&t, r), (size_t)i);
    }
    char *out = render(&t, false);
    assert_non_null(strstr(out, " N\n 0\n"));
    assert_non_null(strstr(out, "\n99\n"));
    free(out);
    ctl_table_deinit(&t);
    assert_int_equal(t.nrows, 0);
}

static void test_state_colors(void **state)
{
    (void)state;
    assert_int_equal(ctl_state_color("succeeded"), CTL_C_GREEN);
    assert_int_equal(ctl_state_color("dead"), CTL_C_RED);
    assert_int_equal(ctl_state_color("queued"), CTL_C_NONE);
    assert_int_equal(ctl_state_color(NULL), CTL_C_NONE);
    assert_string_equal(ctl_sgr(CTL_C_NONE), "");
    assert_string_equal(ctl_sgr(CTL_C_RED), "\033[31m");
    assert_string_equal(ctl_sgr(CTL_C_BOLD), "\033[1m");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_age),
        cmocka_unit_test(test_age_truncates_safely),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_duration_rejects),
        cmocka_unit_test(test_table_layout),
        cmocka_unit_test(test_table_header_only_and_indent),
        cmocka_unit_test(test_table_utf8_width),
        cmocka_unit_test(test_table_color),
        cmocka_unit_test(test_table_grows),
        cmocka_unit_test(test_state_colors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
