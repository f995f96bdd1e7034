/* SPDX-License-Identifier: MIT */
/* test_resp.c — the load generator's response parser: Content-Length, chunked (with
 * extensions and trailers), Connection handling, HTTP/1.0, HEAD/204, interim 100, the cache
 * header, malformed input; every response is also fed split at every byte position. */
#include "jobs/benchmark/resp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

struct expect {
    const char *text;
    bool head;
    int status;
    bool keep_alive;
    bool cache_seen, cache_hit;
    uint64_t body;
};

static const struct expect good[] = {
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Cache: HIT\r\n\r\nhello", false, 200, true, true,
     true, 5},
    {"HTTP/1.1 302 Found\r\nlocation: /x\r\nx-cache: miss\r\ncontent-length: 0\r\n\r\n", false,
     302, true, true, false, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n1;ext=1\r\n!\r\n"
     "0\r\nTrailer: x\r\n\r\n", false, 200, true, false, false, 3},
    {"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\nConnection: close\r\n\r\nerr",
     false, 500, false, false, false, 3},
    {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, 200, false, false, false, 2},
    {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok", false, 200, true,
     false, false, 2},
    {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true, 200, true, false, false, 0},
    {"HTTP/1.1 204 No Content\r\n\r\n", false, 204, true, false, false, 0},
    {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\n1", false, 201,
     true, false, false, 1},
    {"HTTP/1.1 200 OK\nContent-Length: 1\n\nx", false, 200, true, false, false, 1},
};

static void feed_split(const struct expect *e, size_t split)
{
    struct bench_resp r;
    bench_resp_init(&r, "X-Cache", "HIT");
    bench_resp_reset(&r, e->head);
    size_t n = strlen(e->text);
    ssize_t a = bench_resp_feed(&r, e->text, split);
    assert_int_equal(a, (ssize_t)split);
    ssize_t b = bench_resp_feed(&r, e->text + split, n - split);
    assert_int_equal(b, (ssize_t)(n - split));
    assert_int_equal(r.state, BENCH_RESP_DONE);
    assert_int_equal(r.status, e->status);
    assert_int_equal(r.keep_alive, e->keep_alive);
    assert_int_equal(r.cache_seen, e->cache_seen);
    assert_int_equal(r.cache_hit, e->cache_hit);
    assert_int_equal(r.body_bytes, e->body);
}

static void test_good_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        for (size_t split = 0; split <= strlen(good[i].text); split++) {
            feed_split(&good[i], split);
        }
    }
}

static void test_stops_after_response(void **state)
{
    (void)state;
    const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
    struct bench_resp r;
    bench_resp_init(&r, NULL, NULL);
    ssize_t used = bench_resp_feed(&r, two, strlen(two));
    assert_int_equal(r.state, BENCH_RESP_DONE);
    assert_int_equal(used, (ssize_t)strlen("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
}

static void test_body_until_close(void **state)
{
    (void)state;
    const char *t = "HTTP/1.1 200 OK\r\n\r\nsome body";
    struct bench_resp r;
    bench_resp_init(&r, NULL, NULL);
    assert_int_equal(bench_resp_feed(&r, t, strlen(t)), (ssize_t)strlen(t));
    assert_int_equal(r.state, BENCH_RESP_BODY_EOF);
    assert_false(r.keep_alive);
    assert_true(bench_resp_eof(&r));
    assert_int_equal(r.body_bytes, 9);

    /* EOF in the middle of a Content-Length body is not a complete response. */
    const char *cut = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    bench_resp_reset(&r, false);
    assert_int_equal(bench_resp_feed(&r, cut, strlen(cut)), (ssize_t)strlen(cut));
    assert_false(bench_resp_eof(&r));
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 999 What\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "garbage\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct bench_resp r;
        bench_resp_init(&r, NULL, NULL);
        if (bench_resp_feed(&r, bad[i], strlen(bad[i])) != -1) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
    /* A line longer than the limit. */
    static char big[BENCH_RESP_LINE_MAX + 64];
    memset(big, 'a', sizeof(big));
    memcpy(big, "HTTP/1.1 200 OK\r\nX-Long: ", 25);
    struct bench_resp r;
    bench_resp_init(&r, NULL, NULL);
    assert_int_equal(bench_resp_feed(&r, big, 100), 100);
    assert_int_equal(bench_resp_feed(&r, big + 100, sizeof(big) - 100), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_every_split),
        cmocka_unit_test(test_stops_after_response),
        cmocka_unit_test(test_body_until_close),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
