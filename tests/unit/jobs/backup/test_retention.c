/* SPDX-License-Identifier: MIT */
/* test_retention.c — GFS retention over backup names (jobs/backup/retention.h): name parsing,
 * stamps, and the exact set a policy keeps for a synthetic history. No servers, no files. */
#include "jobs/backup/retention.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define ID "-0192f0a0-0000-7000-8000-00000000000"

static void test_names(void **state)
{
    (void)state;
    int64_t ts = 0;
    char stamp[17];
    assert_true(backup_name_parse("20240229T030000Z" ID "1.dump", &ts));
    assert_int_equal(ts, 1709175600); /* 2024-02-29 03:00:00 UTC */
    backup_name_stamp(ts, stamp);
    assert_string_equal(stamp, "20240229T030000Z");
    backup_name_stamp(0, stamp);
    assert_string_equal(stamp, "19700101T000000Z");
    assert_false(backup_name_parse("20230229T030000Z" ID "1.dump", NULL)); /* not a leap year */
    assert_false(backup_name_parse("20240229T030000Z" ID "1.dump.sha256", NULL));
    assert_false(backup_name_parse(".tmp-0192f0a0", NULL));
    assert_false(backup_name_parse("20240229T250000Z" ID "1.dump", NULL));
    assert_false(backup_name_parse("20240229T030000Z-../x.dump", NULL));
    assert_false(backup_name_parse("20240229-030000Z" ID "1.dump", NULL));
    assert_false(backup_name_parse("notes.txt", NULL));
}

/* Nightly backups at 03:00 from 2024-01-01 to 2024-03-31 plus a second one on 2024-03-31
 * and on 2024-03-30, shuffled, with two foreign files. Policy: 3 daily, 2 weekly, 3 monthly.
 *   daily:   newest of 03-31 (the 15:00 one), 03-30 (the 12:00 one), 03-29
 *   weekly:  ISO week of Mon 03-25 -> 03-31 15:00 (already kept); week of 03-18 -> 03-24
 *   monthly: March -> 03-31 15:00 (kept); February -> 02-29; January -> 01-31 */
static void test_gfs_plan(void **state)
{
    (void)state;
    enum { NMAX = 120 };
    char *names[NMAX];
    size_t n = 0;
    static const int mdays[3] = {31, 29, 31};
    for (int m = 0; m < 3; m++) {
        for (int d = 1; d <= mdays[m]; d++) {
            names[n] = malloc(80);
            snprintf(names[n], 80, "2024%02d%02dT030000Z" ID "%d.dump", m + 1, d, (int)(n % 10));
            n++;
        }
    }
    names[n++] = strdup("20240331T150000Z" ID "a.dump");
    names[n++] = strdup("20240330T120000Z" ID "b.dump");
    names[n++] = strdup("README");
    names[n++] = strdup("20240101T030000Z" ID "0.dump.sha256");
    /* Deterministic shuffle: the plan must not depend on directory order. */
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (i * 7919u + 13u) % (i + 1);
        char *t = names[i];
        names[i] = names[j];
        names[j] = t;
    }
    bool expire[NMAX];
    struct backup_retention r = {.keep_daily = 3, .keep_weekly = 2, .keep_monthly = 3};
    backup_retention_plan((const char *const *)names, n, &r, expire);
    static const char *const want[] = {
        "20240131T030000Z", "20240229T030000Z", "20240324T030000Z", "20240329T030000Z",
        "20240330T120000Z", "20240331T150000Z", "README", "20240101T030000Z" ID "0.dump.sha256"};
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        bool wanted = false;
        for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
            wanted = wanted || strncmp(names[i], want[k], strlen(want[k])) == 0;
        }
        if (wanted == expire[i]) {
            fail_msg("%s: expected %s", names[i], wanted ? "kept" : "expired");
        }
        kept += !expire[i];
        free(names[i]);
    }
    assert_int_equal(kept, 8);
}

/* A zero policy keeps only the newest backup; an empty directory is fine. */
static void test_edges(void **state)
{
    (void)state;
    const char *names[] = {"20240101T000000Z" ID "1.dump", "20240102T000000Z" ID "2.dump",
                           "20231231T235959Z" ID "3.dump"};
    bool expire[3];
    struct backup_retention none = {0, 0, 0};
    backup_retention_plan(names, 3, &none, expire);
    assert_true(expire[0]);
    assert_false(expire[1]);
    assert_true(expire[2]);
    /* Weekly only: 2024-01-01 is a Monday, so 12-31 (Sunday) is the previous ISO week. */
    struct backup_retention weekly = {0, 2, 0};
    backup_retention_plan(names, 3, &weekly, expire);
    assert_true(expire[0]);
    assert_false(expire[1]);
    assert_false(expire[2]);
    backup_retention_plan(names, 0, &weekly, expire);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_gfs_plan),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
