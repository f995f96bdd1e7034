/* SPDX-License-Identifier: MIT */
/* test_cron.c — cron parsing, next-fire times (exact, in UTC), DST gaps and overlaps in
 * Europe/Berlin and America/New_York, invalid expressions and zones, TZ restoration.
 * 2026 calendar used below: Jan 1 is a Thursday; Berlin springs forward on Sun Mar 29 at
 * 01:00Z and falls back on Sun Oct 25 at 01:00Z; New York springs forward on Sun Mar 8 at
 * 07:00Z and falls back on Sun Nov 1 at 06:00Z. */
#include "common/cron.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int64_t utc(int y, int m, int d, int h, int mi)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (era * 146097 + doe - 719468) * 86400 + h * 3600 + mi * 60;
}

static int64_t next_of(const char *expr, const char *tz, int64_t after)
{
    struct osp_cron c;
    struct osp_err err = {0, ""};
    int rc = osp_cron_parse(&c, expr, &err);
    if (rc != 0) {
        fail_msg("parse %s: %s", expr, err.msg);
    }
    int64_t n = 0;
    rc = osp_cron_next(&c, tz, after, &n, &err);
    if (rc != 0) {
        fail_msg("next %s: %s", expr, err.msg);
    }
    return n;
}

/* Assert the sequence of fire times after `after`. */
static void seq(const char *expr, const char *tz, int64_t after, const int64_t *want, size_t n)
{
    int64_t t = after;
    for (size_t i = 0; i < n; i++) {
        t = next_of(expr, tz, t);
        if (t != want[i]) {
            fail_msg("%s in %s: fire %zu is %lld, want %lld", expr, tz, i, (long long)t,
                     (long long)want[i]);
        }
    }
}

static void test_basic_utc(void **state)
{
    (void)state;
    assert_int_equal(next_of("*/15 * * * *", "UTC", utc(2026, 1, 1, 0, 7)), utc(2026, 1, 1, 0, 15));
    assert_int_equal(next_of("*/15 * * * *", "UTC", utc(2026, 1, 1, 0, 15)),
                     utc(2026, 1, 1, 0, 30));
    /* seconds inside a minute: strictly after, minute granularity */
    assert_int_equal(next_of("* * * * *", "UTC", utc(2026, 1, 1, 0, 0) + 59),
                     utc(2026, 1, 1, 0, 1));
    assert_int_equal(next_of("5/20 * * * *", "UTC", utc(2026, 1, 1, 0, 30)),
                     utc(2026, 1, 1, 0, 45));
    assert_int_equal(next_of("0 9 * * mon-fri", "UTC", utc(2026, 1, 2, 9, 0)),
                     utc(2026, 1, 5, 9, 0));
    assert_int_equal(next_of("0 0 29 2 *", "UTC", utc(2026, 1, 1, 0, 0)), utc(2028, 2, 29, 0, 0));
    assert_int_equal(next_of("0 0 31 * *", "UTC", utc(2026, 1, 31, 0, 0)), utc(2026, 3, 31, 0, 0));
    assert_int_equal(next_of("59 23 31 12 *", "UTC", utc(2026, 6, 1, 0, 0)),
                     utc(2026, 12, 31, 23, 59));
    assert_int_equal(next_of("0 0 1 1 *", "UTC", utc(2026, 12, 31, 23, 59)), utc(2027, 1, 1, 0, 0));
    assert_int_equal(next_of("10-20/5 3 * * *", "UTC", utc(2026, 1, 1, 3, 11)),
                     utc(2026, 1, 1, 3, 15));
    assert_int_equal(next_of("10-20/5 3 * * *", "UTC", utc(2026, 1, 1, 3, 20)),
                     utc(2026, 1, 2, 3, 10));
    assert_int_equal(next_of("0 0,12 * * *", "UTC", utc(2026, 1, 1, 0, 0)), utc(2026, 1, 1, 12, 0));
}

static void test_dom_dow(void **state)
{
    (void)state;
    /* both restricted: either matches (Vixie); Jan 5 2026 is the first Monday */
    assert_int_equal(next_of("0 0 1,15 * 1", "UTC", utc(2026, 1, 1, 0, 0)), utc(2026, 1, 5, 0, 0));
    /* dom restricted, dow '*': dom only */
    assert_int_equal(next_of("0 0 15 * *", "UTC", utc(2026, 1, 1, 0, 0)), utc(2026, 1, 15, 0, 0));
    /* dom '*'-stepped counts as '*': AND with dow. Odd days that are Sundays: Jan 11 2026 */
    assert_int_equal(next_of("0 0 */2 * sun", "UTC", utc(2026, 1, 1, 0, 0)),
                     utc(2026, 1, 11, 0, 0));
    /* Friday the 13th: Feb 13 2026 */
    assert_int_equal(next_of("0 0 13 * *", "UTC", utc(2026, 1, 14, 0, 0)), utc(2026, 2, 13, 0, 0));
}

static void test_names_and_macros(void **state)
{
    (void)state;
    assert_int_equal(next_of("0 12 * JAN,jul sun", "UTC", utc(2026, 1, 1, 0, 0)),
                     utc(2026, 1, 4, 12, 0));
    assert_int_equal(next_of("0 12 * jan,jul sun", "UTC", utc(2026, 1, 31, 0, 0)),
                     utc(2026, 7, 5, 12, 0));
    assert_int_equal(next_of("0 0 * * fri-sun", "UTC", utc(2026, 1, 1, 0, 0)),
                     utc(2026, 1, 2, 0, 0));
    assert_int_equal(next_of("0 0 * * 7", "UTC", utc(2026, 1, 1, 0, 0)), utc(2026, 1, 4, 0, 0));
    assert_int_equal(next_of("0 0 * * 5-7", "UTC", utc(2026, 1, 3, 0, 0)), utc(2026, 1, 4, 0, 0));
    assert_int_equal(next_of("@hourly", "UTC", utc(2026, 1, 1, 10, 30)), utc(2026, 1, 1, 11, 0));
    assert_int_equal(next_of("@daily", "UTC", utc(2026, 1, 1, 10, 30)), utc(2026, 1, 2, 0, 0));
    assert_int_equal(next_of("@midnight", "UTC", utc(2026, 1, 1, 10, 30)), utc(2026, 1, 2, 0, 0));
    assert_int_equal(next_of("@weekly", "UTC", utc(2026, 1, 1, 10, 30)), utc(2026, 1, 4, 0, 0));
    assert_int_equal(next_of("@monthly", "UTC", utc(2026, 1, 1, 10, 30)), utc(2026, 2, 1, 0, 0));
    assert_int_equal(next_of("@yearly", "UTC", utc(2026, 1, 1, 10, 30)), utc(2027, 1, 1, 0, 0));
    assert_int_equal(next_of("@annually", "UTC", utc(2026, 1, 1, 10, 30)), utc(2027, 1, 1, 0, 0));
    assert_int_equal(next_of("  0   6 * *  *  ", "UTC", utc(2026, 1, 1, 10, 30)),
                     utc(2026, 1, 2, 6, 0));
}

static void test_zones_plain(void **state)
{
    (void)state;
    /* 09:00 Berlin in winter is 08:00Z, in summer 07:00Z */
    assert_int_equal(next_of("0 9 * * *", "Europe/Berlin", utc(2026, 1, 1, 12, 0)),
                     utc(2026, 1, 2, 8, 0));
    assert_int_equal(next_of("0 9 * * *", "Europe/Berlin", utc(2026, 7, 1, 12, 0)),
                     utc(2026, 7, 2, 7, 0));
    assert_int_equal(next_of("0 9 * * *", "America/New_York", utc(2026, 1, 1, 12, 0)),
                     utc(2026, 1, 1, 14, 0));
    /* Kolkata, +05:30, no DST */
    assert_int_equal(next_of("0 0 * * *", "Asia/Kolkata", utc(2026, 1, 1, 12, 0)),
                     utc(2026, 1, 1, 18, 30));
}

static void test_berlin_spring_forward(void **state)
{
    (void)state;
    /* 02:30 does not exist on Mar 29: shifted past the gap to 03:30 CEST (01:30Z), once */
    int64_t fixed[] = {utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)};
    seq("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 12, 0), fixed, 2);
    /* hourly across the gap: 01:00 CET (00:00Z), then 03:00 CEST (01:00Z) exactly once */
    int64_t hourly[] = {utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0)};
    seq("0 * * * *", "Europe/Berlin", utc(2026, 3, 28, 23, 30), hourly, 3);
    /* every 30 minutes: real time keeps flowing, no duplicate at 01:00Z */
    int64_t half[] = {utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30)};
    seq("*/30 * * * *", "Europe/Berlin", utc(2026, 3, 29, 0, 15), half, 3);
    /* a fixed time inside the gap on a weekday schedule */
    assert_int_equal(next_of("15 2 * * sun", "Europe/Berlin", utc(2026, 3, 28, 0, 0)),
                     utc(2026, 3, 29, 1, 15));
}

static void test_berlin_fall_back(void **state)
{
    (void)state;
    /* 02:30 occurs twice on Oct 25: the first occurrence (CEST, 00:30Z) only */
    int64_t fixed[] = {utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)};
    seq("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12, 0), fixed, 2);
    /* interval-like (hour '*'): both occurrences */
    int64_t half[] = {utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 30),
                      utc(2026, 10, 25, 2, 0)};
    seq("*/30 * * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 15), half, 4);
    int64_t hourly[] = {utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 1, 0),
                        utc(2026, 10, 25, 2, 0)};
    seq("0 * * * *", "Europe/Berlin", utc(2026, 10, 24, 22, 30), hourly, 4);
    /* hour range (not '*') covering the repeated hour: first occurrence only */
    int64_t ranged[] = {utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 2, 0)};
    seq("0 2-3 * * *", "Europe/Berlin", utc(2026, 10, 24, 23, 30), ranged, 2);
}

static void test_new_york(void **state)
{
    (void)state;
    int64_t spring[] = {utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)};
    seq("30 2 * * *", "America/New_York", utc(2026, 3, 7, 12, 0), spring, 2);
    int64_t fall[] = {utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)};
    seq("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12, 0), fall, 2);
    int64_t half[] = {utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 6, 30),
                      utc(2026, 11, 1, 7, 0)};
    seq("*/30 * * * *", "America/New_York", utc(2026, 11, 1, 5, 15), half, 4);
    /* midnight is unaffected by the 02:00 transitions */
    int64_t mid[] = {utc(2026, 3, 8, 5, 0), utc(2026, 3, 9, 4, 0)};
    seq("0 0 * * *", "America/New_York", utc(2026, 3, 7, 12, 0), mid, 2);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * * 8",
        "* * *",
        "* * * * * *",
        "*/0 * * * *",
        "a * * * *",
        "5-1 * * * *",
        "@reboot",
        "",
        "1,,2 * * * *",
        "* * * foo *",
        "*/x * * * *",
        "1-* * * * *",
        "-1 * * * *",
        "0 0 * * mon-",
        "0 0 * jan-dex *",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct osp_cron c;
        struct osp_err err = {0, ""};
        if (osp_cron_parse(&c, bad[i], &err) != OSP_EINVAL) {
            fail_msg("\"%s\" parsed", bad[i]);
        }
        assert_true(strlen(err.msg) > 0);
    }
    struct osp_cron c;
    struct osp_err err = {0, ""};
    assert_int_equal(osp_cron_parse(&c, NULL, &err), OSP_EINVAL);
    assert_int_equal(osp_cron_parse(&c, "60 * * * *", &err), OSP_EINVAL);
    assert_non_null(strstr(err.msg, "minute"));
}

static void test_never_and_zones(void **state)
{
    (void)state;
    struct osp_cron c;
    struct osp_err err = {0, ""};
    int64_t n = 0;
    assert_int_equal(osp_cron_parse(&c, "0 0 30 2 *", &err), 0);
    assert_int_equal(osp_cron_next(&c, "UTC", utc(2026, 1, 1, 0, 0), &n, &err), OSP_ENOTFOUND);
    assert_int_equal(osp_cron_parse(&c, "* * * * *", &err), 0);
    assert_int_equal(osp_cron_next(&c, "Mars/Olympus_Mons", 0, &n, &err), OSP_EINVAL);
    assert_false(osp_tz_is_valid("../../etc/passwd"));
    assert_false(osp_tz_is_valid("/etc/localtime"));
    assert_false(osp_tz_is_valid(""));
    assert_false(osp_tz_is_valid(NULL));
    assert_false(osp_tz_is_valid("Europe"));
    assert_true(osp_tz_is_valid("UTC"));
    assert_true(osp_tz_is_valid("Europe/Berlin"));
    assert_true(osp_tz_is_valid("America/New_York"));
}

static void test_tz_restored(void **state)
{
    (void)state;
    setenv("TZ", "Asia/Tokyo", 1);
    (void)next_of("0 9 * * *", "Europe/Berlin", utc(2026, 1, 1, 0, 0));
    assert_string_equal(getenv("TZ"), "Asia/Tokyo");
    unsetenv("TZ");
    (void)next_of("0 9 * * *", "Europe/Berlin", utc(2026, 1, 1, 0, 0));
    assert_null(getenv("TZ"));
}

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(osp_time_parse_rfc3339("2026-01-02T03:04:05Z", &ms), 0);
    assert_int_equal(ms, utc(2026, 1, 2, 3, 4) * 1000 + 5000);
    assert_int_equal(osp_time_parse_rfc3339("2026-01-02t03:04:05.5z", &ms), 0);
    assert_int_equal(ms, utc(2026, 1, 2, 3, 4) * 1000 + 5500);
    assert_int_equal(osp_time_parse_rfc3339("2026-01-02 03:04:05.123456+01:30", &ms), 0);
    assert_int_equal(ms, (utc(2026, 1, 2, 3, 4) - 5400) * 1000 + 5123);
    assert_int_equal(osp_time_parse_rfc3339("2028-02-29T00:00:00-05:00", &ms), 0);
    assert_int_equal(ms, utc(2028, 2, 29, 5, 0) * 1000);
    static const char *const bad[] = {"2026-02-29T00:00:00Z",
                                      "2026-13-01T00:00:00Z",
                                      "2026-01-01T24:00:00Z",
                                      "2026-01-01T00:00:00",
                                      "2026-01-01",
                                      "2026-01-01T00:00:00.Z",
                                      "2026-01-01T00:00:00Zx",
                                      "tomorrow",
                                      "2026-01-01T00:00:00+1:00",
                                      ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (osp_time_parse_rfc3339(bad[i], &ms) != OSP_EINVAL) {
            fail_msg("\"%s\" parsed", bad[i]);
        }
    }
    assert_int_equal(osp_time_parse_rfc3339(NULL, &ms), OSP_EINVAL);
    char out[32];
    osp_time_format_rfc3339(utc(2026, 11, 23, 14, 4) * 1000 + 36285, out);
    assert_string_equal(out, "2026-11-23T14:04:36.285Z");
    osp_time_format_rfc3339(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
}

/* The accepted range, 1970..9999 (cron.h): every time inside formats to text that parses back
 * to it, and nothing outside gets in through the parser or out of cron. */
static void test_time_range(void **state)
{
    (void)state;
    int64_t ms = 0;
    /* The fuzzer's find: in range as text, in year 10000 once the offset is applied. */
    assert_int_equal(osp_time_parse_rfc3339("9999-12-31T23:59:59.929905-03:30", &ms), OSP_EINVAL);
    assert_int_equal(osp_time_parse_rfc3339("1970-01-01T00:00:00+00:01", &ms), OSP_EINVAL);
    assert_int_equal(osp_time_parse_rfc3339("1969-12-31T23:59:59.999Z", &ms), OSP_EINVAL);
    assert_int_equal(osp_time_parse_rfc3339("0000-01-01T00:00:00Z", &ms), OSP_EINVAL);
    static const char *const ends[] = {"1970-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z",
                                       "9999-12-31T20:29:59.999-03:30"};
    static const int64_t want[] = {OSP_TIME_MIN_MS, OSP_TIME_MAX_MS, OSP_TIME_MAX_MS};
    for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
        assert_int_equal(osp_time_parse_rfc3339(ends[i], &ms), 0);
        assert_int_equal(ms, want[i]);
        char out[32];
        osp_time_format_rfc3339(ms, out);
        int64_t back = -1;
        assert_int_equal(osp_time_parse_rfc3339(out, &back), 0);
        assert_int_equal(back, ms);
    }
    /* Formatting clamps: what is printed always parses. */
    char out[32];
    osp_time_format_rfc3339(OSP_TIME_MAX_MS + 1000000, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    osp_time_format_rfc3339(-5, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    assert_true(osp_time_in_range(0) && osp_time_in_range(OSP_TIME_MAX_MS));
    assert_false(osp_time_in_range(-1) || osp_time_in_range(OSP_TIME_MAX_MS + 1));
    /* Cron: no fire time past the range, no start outside it. */
    struct osp_cron c;
    struct osp_err err = {0, ""};
    assert_int_equal(osp_cron_parse(&c, "0 0 * * *", &err), 0);
    int64_t next = 0;
    assert_int_equal(osp_cron_next(&c, "UTC", OSP_TIME_MAX_MS / 1000 - 10, &next, &err),
                     OSP_ENOTFOUND);
    assert_int_equal(osp_cron_next(&c, "UTC", OSP_TIME_MAX_MS / 1000 + 1, &next, &err), OSP_EINVAL);
    assert_int_equal(osp_cron_next(&c, "UTC", -60, &next, &err), OSP_EINVAL);
    assert_int_equal(osp_cron_next(&c, "UTC", OSP_TIME_MAX_MS / 1000 - 86400 * 2, &next, &err), 0);
    assert_true(next * 1000 <= OSP_TIME_MAX_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_range),
        cmocka_unit_test(test_basic_utc),
        cmocka_unit_test(test_dom_dow),
        cmocka_unit_test(test_names_and_macros),
        cmocka_unit_test(test_zones_plain),
        cmocka_unit_test(test_berlin_spring_forward),
        cmocka_unit_test(test_berlin_fall_back),
        cmocka_unit_test(test_new_york),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_never_and_zones),
        cmocka_unit_test(test_tz_restored),
        cmocka_unit_test(test_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
