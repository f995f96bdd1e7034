/* SPDX-License-Identifier: MIT */
/* test_bad_input.c — the bad-input list for the readers the envelope and mpjson tests
 * do not cover (those live in tests/unit/common/): the child -> parent frame parser, the
 * targets file parser's error messages, and the API's JSON body handling (socket-free part).
 * Each hostile input must end in a clear error, never a crash or a huge allocation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/http.h"
#include "jobs/runner.h"
#include "jobs/targets.h"

#include <string.h>

/* ---- frames ---- */

static void put_frame(struct osp_buf *b, const void *body, uint32_t n)
{
    uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    osp_buf_append(b, h, 4);
    osp_buf_append(b, body, n);
}

static int feed(const void *bytes, size_t n, struct job_report *r)
{
    struct osp_buf b = OSP_BUF_INIT;
    osp_buf_append(&b, bytes, n);
    int rc = job_report_feed(r, &b);
    osp_buf_deinit(&b);
    return rc;
}

static void test_frames_valid(void **state)
{
    (void)state;
    /* ["e", 5, "phase", nil] ["t", "tbl", {"a": 1}] ["r", 0, nil, nil] */
    static const uint8_t ev[] = {0x94, 0xa1, 'e', 0x05, 0xa5, 'p', 'h', 'a', 's', 'e', 0xc0};
    static const uint8_t row[] = {0x93, 0xa1, 't', 0xa3, 't', 'b', 'l', 0x81, 0xa1, 'a', 0x01};
    static const uint8_t fin[] = {0x94, 0xa1, 'r', 0x00, 0xc0, 0xc0};
    struct osp_buf b = OSP_BUF_INIT;
    put_frame(&b, ev, sizeof(ev));
    put_frame(&b, row, sizeof(row));
    put_frame(&b, fin, sizeof(fin));
    struct job_report r;
    job_report_init(&r);
    /* Byte by byte: reads may split frames anywhere. */
    struct osp_buf in = OSP_BUF_INIT;
    for (size_t i = 0; i < b.len; i++) {
        osp_buf_append(&in, b.data + i, 1);
        assert_int_equal(job_report_feed(&r, &in), 0);
    }
    assert_int_equal(in.len, 0);
    assert_true(r.finished);
    assert_int_equal(r.status, 0);
    assert_int_equal(json_array_size(r.events), 1);
    assert_int_equal(json_array_size(r.rows), 1);
    job_report_deinit(&r);
    osp_buf_deinit(&in);
    osp_buf_deinit(&b);
}

static void test_frames_oversize(void **state)
{
    (void)state;
    /* A length above JOB_FRAME_MAX is refused from the header alone, before any body. */
    uint32_t n = JOB_FRAME_MAX + 1;
    uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    struct job_report r;
    job_report_init(&r);
    assert_int_equal(feed(h, sizeof(h), &r), OSP_EPROTO);
    job_report_deinit(&r);
}

static void test_frames_lying_counts(void **state)
{
    (void)state;
    /* Found by fuzz_frames: containers whose header counts claim 2^32 - 1 elements made
     * msgpack-c ask for 64-128 GB before reading them. Now a clear EPROTO, no allocation. */
    static const uint8_t map32[] = {0x94, 0xa1, 'e', 0x01, 0xa1, 'x', 0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xa1, 'e'};
    static const uint8_t *const frames[] = {map32, arr32};
    static const size_t lens[] = {sizeof(map32), sizeof(arr32)};
    for (size_t i = 0; i < 2; i++) {
        struct osp_buf b = OSP_BUF_INIT;
        put_frame(&b, frames[i], (uint32_t)lens[i]);
        struct job_report r;
        job_report_init(&r);
        assert_int_equal(job_report_feed(&r, &b), OSP_EPROTO);
        assert_false(r.finished);
        job_report_deinit(&r);
        osp_buf_deinit(&b);
    }
}

static void test_frames_malformed(void **state)
{
    (void)state;
    static const uint8_t fin[] = {0x94, 0xa1, 'r', 0x00, 0xc0, 0xc0};
    static const uint8_t trailing[] = {0x90, 0x90}; /* two values in one frame */
    static const uint8_t bad_tag[] = {0x93, 0xa1, 'x', 0x01, 0x02};
    static const uint8_t row_array[] = {0x93, 0xa1, 't', 0xa1, 't', 0x91, 0x01};
    static const uint8_t never_byte[] = {0xc1};
    uint8_t deep[48];
    for (size_t i = 0; i < sizeof(deep) - 1; i++) {
        deep[i] = 0x91; /* [[[[...]]]] 47 levels */
    }
    deep[sizeof(deep) - 1] = 0x01;
    const struct {
        const uint8_t *p;
        size_t n;
    } cases[] = {{trailing, sizeof(trailing)},
                 {bad_tag, sizeof(bad_tag)},
                 {row_array, sizeof(row_array)},
                 {never_byte, sizeof(never_byte)},
                 {deep, sizeof(deep)}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct osp_buf b = OSP_BUF_INIT;
        put_frame(&b, cases[i].p, (uint32_t)cases[i].n);
        struct job_report r;
        job_report_init(&r);
        assert_int_equal(job_report_feed(&r, &b), OSP_EPROTO);
        job_report_deinit(&r);
        osp_buf_deinit(&b);
    }
    /* Anything after the final "r" frame is a protocol error. */
    struct osp_buf b = OSP_BUF_INIT;
    put_frame(&b, fin, sizeof(fin));
    put_frame(&b, fin, sizeof(fin));
    struct job_report r;
    job_report_init(&r);
    assert_int_equal(job_report_feed(&r, &b), OSP_EPROTO);
    assert_true(r.finished);
    job_report_deinit(&r);
    osp_buf_deinit(&b);
}

/* ---- targets file ---- */

static void expect_targets_error(const char *text, const char *msg)
{
    struct osp_targets t;
    struct osp_err err = {0, ""};
    assert_int_equal(osp_targets_parse(&t, text, &err), OSP_EINVAL);
    assert_null(t.root);
    assert_string_equal(err.msg, msg);
}

static void test_targets_errors(void **state)
{
    (void)state;
    /* Found by fuzz_targets: these messages used to read the target name after the parsed
     * document holding it was freed (heap-use-after-free in jobs/targets.c adopt()). */
    expect_targets_error("{\"targets\": {\"Bad Name\": {}}}",
                         "targets file: bad target name \"Bad Name\"");
    expect_targets_error("{\"targets\": {\"ok\": {}, \"web\": 1}}",
                         "targets file: target web must be an object");
    expect_targets_error("{\"targets\": {\"web\": {\"adapter\": \"ssh\"}}}",
                         "targets file: target web: adapter must be local or kubernetes");
    expect_targets_error("[]", "targets file: top level must be {\"targets\": {...}}");
    expect_targets_error("{\"targets\": {\"a\": {}, \"a\": {}}}",
                         "targets: line 1: duplicate object key near '\"a\"'");
    /* A name one character too long (65). */
    char text[160];
    snprintf(text, sizeof(text), "{\"targets\": {\"%065d\": {}}}", 0);
    struct osp_targets t;
    struct osp_err err = {0, ""};
    assert_int_equal(osp_targets_parse(&t, text, &err), OSP_EINVAL);
    assert_non_null(strstr(err.msg, "bad target name"));
}

/* ---- API JSON bodies (no socket: osp_http_body_object and the reply helpers) ---- */

static json_t *parse_reply(const struct osp_http_resp *resp)
{
    json_error_t je;
    json_t *v = json_loadb((const char *)resp->body.data, resp->body.len, 0, &je);
    assert_non_null(v);
    return v;
}

static void expect_bad_json_n(const char *body, size_t len, const char *needle)
{
    struct osp_http_req req;
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.path = "/v1/jobs";
    req.body = body;
    req.body_len = len;
    struct osp_http_resp resp = OSP_HTTP_RESP_INIT;
    assert_null(osp_http_body_object(&req, &resp));
    assert_int_equal(resp.status, 400);
    json_t *v = parse_reply(&resp);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "code")),
                        "bad_json");
    const char *msg = json_string_value(json_object_get(json_object_get(v, "error"), "message"));
    assert_non_null(msg);
    if (strstr(msg, needle) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
    }
    json_decref(v);
    osp_buf_deinit(&resp.body);
}

static void expect_bad_json(const char *body, const char *needle)
{
    expect_bad_json_n(body, strlen(body), needle);
}

static void test_api_bodies(void **state)
{
    (void)state;
    expect_bad_json("", "empty");
    expect_bad_json("{\"kind\": \"noop\", \"x\": \"\xff\xfe\"}", "invalid JSON");
    expect_bad_json("{\"a\": \"x\\u0000y\"}", "invalid JSON"); /* NUL escapes refused */
    expect_bad_json("[1, 2]", "must be a JSON object");
    expect_bad_json("{\"a\": 1, \"a\": 2}", "invalid JSON");
    expect_bad_json("{\"a\": 1} {", "invalid JSON"); /* trailing garbage */
    /* Far deeper than anything valid: jansson's own depth limit answers, no stack overflow. */
    size_t depth = 100000;
    char *deep = malloc(depth + 1);
    assert_non_null(deep);
    memset(deep, '[', depth);
    deep[depth] = '\0';
    expect_bad_json_n(deep, depth, "invalid JSON");
    free(deep);
}

static void test_error_reply_quotes_bad_utf8(void **state)
{
    (void)state;
    /* Handlers quote user input (paths, methods, names) in messages; invalid UTF-8 must still
     * give a JSON reply. */
    struct osp_http_resp resp = OSP_HTTP_RESP_INIT;
    osp_http_reply_error(&resp, 404, "not_found", "no job %s", "ab\xff\xc0z");
    json_t *v = parse_reply(&resp);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "message")),
                        "no job ab??z");
    json_decref(v);
    osp_buf_deinit(&resp.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_valid),
        cmocka_unit_test(test_frames_oversize),
        cmocka_unit_test(test_frames_lying_counts),
        cmocka_unit_test(test_frames_malformed),
        cmocka_unit_test(test_targets_errors),
        cmocka_unit_test(test_api_bodies),
        cmocka_unit_test(test_error_reply_quotes_bad_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
