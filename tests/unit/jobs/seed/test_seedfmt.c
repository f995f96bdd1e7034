/* SPDX-License-Identifier: MIT */
/* test_seedfmt.c — the COPY field writers (jobs/seed/seedfmt.h): exact bytes for edge values
 * in text (0, negatives, INT64 extremes, COPY text escaping) and binary (big-endian lengths and
 * values, NULL, timestamps relative to 2000-01-01, the stream header and trailer). No servers. */
#include "jobs/seed/seedfmt.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Run a writer into a guarded buffer and compare what it wrote, byte for byte. */
#define EXPECT_BYTES(call_on_p, want, want_len)                                                   \
    do {                                                                                          \
        char buf_[64];                                                                            \
        memset(buf_, 0x5a, sizeof(buf_));                                                         \
        char *p = buf_;                                                                           \
        char *end_ = (call_on_p);                                                                 \
        assert_int_equal((size_t)(end_ - buf_), (size_t)(want_len));                             \
        assert_memory_equal(buf_, (want), (want_len));                                            \
        assert_int_equal((unsigned char)buf_[(want_len)], 0x5a); /* nothing past the end */       \
    } while (0)

#define EXPECT_STR(call_on_p, want) EXPECT_BYTES(call_on_p, want, strlen(want))

static void test_text_integers(void **state)
{
    (void)state;
    EXPECT_STR(seed_fmt_i64(p, 0), "0");
    EXPECT_STR(seed_fmt_i64(p, 7), "7");
    EXPECT_STR(seed_fmt_i64(p, -1), "-1");
    EXPECT_STR(seed_fmt_i64(p, -10), "-10");
    EXPECT_STR(seed_fmt_i64(p, 1000000), "1000000");
    EXPECT_STR(seed_fmt_i64(p, INT64_MAX), "9223372036854775807");
    EXPECT_STR(seed_fmt_i64(p, INT64_MIN), "-9223372036854775808");
    EXPECT_STR(seed_fmt_u64(p, 0), "0");
    EXPECT_STR(seed_fmt_u64(p, UINT64_MAX), "18446744073709551615");
}

static void test_text_escaping(void **state)
{
    (void)state;
    EXPECT_STR(seed_fmt_text(p, "", 0), "");
    EXPECT_STR(seed_fmt_text(p, "plain text", 10), "plain text");
    EXPECT_STR(seed_fmt_text(p, "a\\b", 3), "a\\\\b");
    EXPECT_STR(seed_fmt_text(p, "a\tb", 3), "a\\tb");
    EXPECT_STR(seed_fmt_text(p, "a\nb", 3), "a\\nb");
    EXPECT_STR(seed_fmt_text(p, "a\rb", 3), "a\\rb");
    EXPECT_STR(seed_fmt_text(p, "\\\t\n\r", 4), "\\\\\\t\\n\\r"); /* worst case: 2n bytes */
    EXPECT_STR(seed_fmt_text(p, "\\N", 2), "\\\\N"); /* a literal "\N" is not NULL */
    EXPECT_STR(seed_fmt_text(p, "caf\xc3\xa9", 5), "caf\xc3\xa9"); /* UTF-8 passes through */
}

static void test_binary_integers(void **state)
{
    (void)state;
    EXPECT_BYTES(seed_fmt_bin_tuple(p, 5), "\x00\x05", 2);
    EXPECT_BYTES(seed_fmt_bin_i32(p, 0), "\x00\x00\x00\x04\x00\x00\x00\x00", 8);
    EXPECT_BYTES(seed_fmt_bin_i32(p, -1), "\x00\x00\x00\x04\xff\xff\xff\xff", 8);
    EXPECT_BYTES(seed_fmt_bin_i32(p, INT32_MIN), "\x00\x00\x00\x04\x80\x00\x00\x00", 8);
    EXPECT_BYTES(seed_fmt_bin_i32(p, 0x01020304), "\x00\x00\x00\x04\x01\x02\x03\x04", 8);
    EXPECT_BYTES(seed_fmt_bin_i64(p, 0), "\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00", 12);
    EXPECT_BYTES(seed_fmt_bin_i64(p, -2), "\x00\x00\x00\x08\xff\xff\xff\xff\xff\xff\xff\xfe", 12);
    EXPECT_BYTES(seed_fmt_bin_i64(p, INT64_MAX),
                 "\x00\x00\x00\x08\x7f\xff\xff\xff\xff\xff\xff\xff", 12);
    EXPECT_BYTES(seed_fmt_bin_i64(p, INT64_MIN),
                 "\x00\x00\x00\x08\x80\x00\x00\x00\x00\x00\x00\x00", 12);
    EXPECT_BYTES(seed_fmt_bin_i64(p, 0x0102030405060708LL),
                 "\x00\x00\x00\x08\x01\x02\x03\x04\x05\x06\x07\x08", 12);
}

static void test_binary_text_null_ts(void **state)
{
    (void)state;
    EXPECT_BYTES(seed_fmt_bin_null(p), "\xff\xff\xff\xff", 4);
    EXPECT_BYTES(seed_fmt_bin_text(p, "", 0), "\x00\x00\x00\x00", 4);
    /* No escaping in binary: tabs, newlines and backslashes travel as they are. */
    EXPECT_BYTES(seed_fmt_bin_text(p, "a\t\\\n", 4), "\x00\x00\x00\x04" "a\t\\\n", 8);
    /* 2000-01-01 00:00:00 UTC is 0; one second before is -1,000,000 microseconds. */
    EXPECT_BYTES(seed_fmt_bin_ts(p, 946684800), "\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00",
                 12);
    EXPECT_BYTES(seed_fmt_bin_ts(p, 946684799),
                 "\x00\x00\x00\x08\xff\xff\xff\xff\xff\xf0\xbd\xc0", 12);
    /* 1970-01-01: -946,684,800,000,000 = 0xfffca2fec4c82000. */
    EXPECT_BYTES(seed_fmt_bin_ts(p, 0), "\x00\x00\x00\x08\xff\xfc\xa2\xfe\xc4\xc8\x20\x00", 12);
    /* A composite field: length patched in after the body. */
    char buf[32];
    char *body = seed_fmt_bin_text_begin(buf);
    memcpy(body, "abc", 3);
    char *end = seed_fmt_bin_text_end(body, body + 3);
    assert_int_equal(end - buf, 7);
    assert_memory_equal(buf, "\x00\x00\x00\x03" "abc", 7);
}

static void test_binary_stream_frame(void **state)
{
    (void)state;
    assert_memory_equal(seed_fmt_bin_header, "PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0", 19);
    assert_memory_equal(seed_fmt_bin_trailer, "\xff\xff", 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_integers),
        cmocka_unit_test(test_text_escaping),
        cmocka_unit_test(test_binary_integers),
        cmocka_unit_test(test_binary_text_null_ts),
        cmocka_unit_test(test_binary_stream_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
