/* SPDX-License-Identifier: MIT */
/* test_id.c — UUIDv7 ids: canonical format, version/variant bits, embedded time, strict
 * monotonicity (also with a frozen or backwards clock), validation, and a forked child that
 * must not repeat its parent's ids. */
#include "common/base.h"
#include "common/id.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* The generator never goes back in time, so the tests that fake the clock run after the
 * real-clock ones, each further in the future (0x0fedcba98765 ms is in the year 2527). */
#define FUTURE_MS 0x0fedcba98765LL

static int64_t g_fake_ms;

static int64_t fake_now(void)
{
    return g_fake_ms;
}

static int64_t fake_now_backwards(void)
{
    return g_fake_ms--;
}

static int teardown_hook(void **state)
{
    (void)state;
    osp_now_ms_hook = NULL;
    return 0;
}

static int64_t id_ms(const char *id)
{
    char hex[13];
    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = '\0';
    return (int64_t)strtoll(hex, NULL, 16);
}

static void test_format(void **state)
{
    (void)state;
    char id[OSP_ID_LEN + 1];
    int64_t before = osp_now_ms();
    osp_id_new(id);
    int64_t after = osp_now_ms();
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[8], '-');
    assert_int_equal(id[13], '-');
    assert_int_equal(id[18], '-');
    assert_int_equal(id[23], '-');
    assert_int_equal(id[14], '7');           /* version */
    assert_non_null(strchr("89ab", id[19])); /* variant 10xx */
    for (size_t i = 0; i < 36; i++) {
        assert_non_null(strchr("0123456789abcdef-", id[i]));
    }
    assert_true(osp_id_is_valid(id));
    int64_t ms = id_ms(id);
    assert_true(ms >= before);
    assert_true(ms <= after + 1);
}

static void test_fixed_time_prefix(void **state)
{
    (void)state;
    char id[OSP_ID_LEN + 1];
    g_fake_ms = FUTURE_MS;
    osp_now_ms_hook = fake_now;
    osp_id_new(id);
    assert_int_equal(id_ms(id), FUTURE_MS);
    assert_memory_equal(id, "0fedcba9-8765-7", 15);
}

static void test_monotonic_100k(void **state)
{
    (void)state;
    char prev[OSP_ID_LEN + 1];
    char cur[OSP_ID_LEN + 1];
    osp_id_new(prev);
    for (int i = 0; i < 100000; i++) {
        osp_id_new(cur);
        if (strcmp(prev, cur) >= 0) {
            fail_msg("id %d not increasing: %s then %s", i, prev, cur);
        }
        memcpy(prev, cur, sizeof(cur));
    }
}

static void test_monotonic_frozen_clock(void **state)
{
    (void)state;
    char prev[OSP_ID_LEN + 1];
    char cur[OSP_ID_LEN + 1];
    g_fake_ms = FUTURE_MS + 1000;
    osp_now_ms_hook = fake_now;
    osp_id_new(prev);
    /* Far more than 4096 ids in one millisecond: the counter must borrow from the next ms. */
    for (int i = 0; i < 10000; i++) {
        osp_id_new(cur);
        if (strcmp(prev, cur) >= 0) {
            fail_msg("id %d not increasing: %s then %s", i, prev, cur);
        }
        memcpy(prev, cur, sizeof(cur));
    }
    assert_true(id_ms(cur) > g_fake_ms);
    assert_true(id_ms(cur) <= g_fake_ms + 6);
}

static void test_monotonic_backwards_clock(void **state)
{
    (void)state;
    char prev[OSP_ID_LEN + 1];
    char cur[OSP_ID_LEN + 1];
    g_fake_ms = FUTURE_MS + 100000;
    osp_now_ms_hook = fake_now_backwards;
    osp_id_new(prev);
    for (int i = 0; i < 1000; i++) {
        osp_id_new(cur);
        assert_true(strcmp(prev, cur) < 0);
        memcpy(prev, cur, sizeof(cur));
    }
}

#define FORK_IDS 200

static void test_fork_differs(void **state)
{
    (void)state;
    char parent_ids[FORK_IDS][OSP_ID_LEN + 1];
    char child_ids[FORK_IDS][OSP_ID_LEN + 1];
    int fds[2];
    /* Freeze the clock so parent and child share time and counter: only the reseeded random
     * bits can tell their ids apart. */
    g_fake_ms = FUTURE_MS + 200000;
    osp_now_ms_hook = fake_now;
    osp_id_new(parent_ids[0]);
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        for (int i = 0; i < FORK_IDS; i++) {
            char id[OSP_ID_LEN + 1];
            osp_id_new(id);
            if (write(fds[1], id, OSP_ID_LEN) != OSP_ID_LEN) {
                _exit(2);
            }
        }
        _exit(0);
    }
    close(fds[1]);
    for (int i = 0; i < FORK_IDS; i++) {
        osp_id_new(parent_ids[i]);
    }
    size_t got = 0;
    char *raw = (char *)child_ids;
    while (got < (size_t)FORK_IDS * OSP_ID_LEN) {
        ssize_t n = read(fds[0], raw + got, (size_t)FORK_IDS * OSP_ID_LEN - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The reads were packed 36 bytes apart; spread them into NUL-terminated slots. */
    char unpacked[FORK_IDS][OSP_ID_LEN + 1];
    for (int i = 0; i < FORK_IDS; i++) {
        memcpy(unpacked[i], raw + (size_t)i * OSP_ID_LEN, OSP_ID_LEN);
        unpacked[i][OSP_ID_LEN] = '\0';
    }
    for (int i = 0; i < FORK_IDS; i++) {
        assert_true(osp_id_is_valid(unpacked[i]));
        for (int k = 0; k < FORK_IDS; k++) {
            if (strcmp(unpacked[i], parent_ids[k]) == 0) {
                fail_msg("child repeated parent id %s", parent_ids[k]);
            }
        }
    }
    /* Both continue strictly increasing past the pre-fork id. */
    assert_true(strcmp(parent_ids[0], parent_ids[1]) < 0);
}

static void test_is_valid(void **state)
{
    (void)state;
    assert_true(osp_id_is_valid("0190a3f2-7c1e-7abc-8def-0123456789ab"));
    assert_true(osp_id_is_valid("0190A3F2-7C1E-7ABC-8DEF-0123456789AB"));
    assert_true(osp_id_is_valid("00000000-0000-0000-0000-000000000000"));
    assert_true(osp_id_is_valid("123e4567-e89b-42d3-a456-426614174000"));   /* v4 */
    assert_false(osp_id_is_valid("0190a3f2-7c1e-7abc-8def-0123456789AB"));  /* mixed case */
    assert_false(osp_id_is_valid("0190a3f2-7c1e-7abc-8def-0123456789a"));   /* short */
    assert_false(osp_id_is_valid("0190a3f2-7c1e-7abc-8def-0123456789abc")); /* long */
    assert_false(osp_id_is_valid("0190a3f27c1e-7abc-8def-0123456789ab0"));  /* dash moved */
    assert_false(osp_id_is_valid("0190a3f2-7c1e-7abc-8def-0123456789ag"));  /* non-hex */
    assert_false(osp_id_is_valid("{0190a3f2-7c1e-7abc-8def-0123456789a}"));
    assert_false(osp_id_is_valid(""));
    assert_false(osp_id_is_valid(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_format, teardown_hook),
        cmocka_unit_test_teardown(test_monotonic_100k, teardown_hook),
        cmocka_unit_test_teardown(test_fixed_time_prefix, teardown_hook),
        cmocka_unit_test_teardown(test_monotonic_frozen_clock, teardown_hook),
        cmocka_unit_test_teardown(test_monotonic_backwards_clock, teardown_hook),
        cmocka_unit_test_teardown(test_fork_differs, teardown_hook),
        cmocka_unit_test(test_is_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
