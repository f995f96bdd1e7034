/* SPDX-License-Identifier: MIT */
/* test_notify.c — the endpoints file (accepted and refused, with the field named and no URL
 * quoted), the signature against an independent HMAC-SHA256 (Python's hmac module), the
 * bodies (JSON schema, Slack text, a non-object event refused) and the backoff's bounds. */
#include "common/notify.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char secret_path[64];

static int setup(void **state)
{
    (void)state;
    snprintf(secret_path, sizeof(secret_path), "/tmp/osp-notify-secret-%d", (int)getpid());
    FILE *f = fopen(secret_path, "w");
    assert_non_null(f);
    fputs("0123456789abcdef0123456789abcdef\n", f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(secret_path);
    return 0;
}

/* The file's text with "%s" replaced by the secret file's path. */
static int parse(struct osp_notify_config *c, const char *tmpl, struct osp_err *err)
{
    char text[2048];
    const char *at = strstr(tmpl, "%s");
    if (at == NULL) {
        snprintf(text, sizeof(text), "%s", tmpl);
    } else {
        snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - tmpl), tmpl, secret_path, at + 2);
    }
    return osp_notify_parse(c, text, "notify.json", err);
}

static void test_parse_ok(void **state)
{
    (void)state;
    struct osp_notify_config c;
    struct osp_err err = {0, ""};
    assert_int_equal(parse(&c,
                           "{\"endpoints\": {\"ops\": {\"url\": \"https://h/x\", \"secret_file\": "
                           "\"%s\", \"events\": [\"job.dead\", \"campaign.finished\"]}, "
                           "\"chat\": {\"url\": \"http://h/s\", \"format\": \"slack\", "
                           "\"events\": [\"*\"], \"max_attempts\": 3}}}",
                           &err),
                     0);
    assert_int_equal(c.n, 2);
    const struct osp_notify_endpoint *ops = osp_notify_find(&c, "ops");
    assert_non_null(ops);
    assert_int_equal(ops->secret_len, 32); /* the trailing newline is not part of it */
    assert_int_equal(ops->max_attempts, 8);
    const struct osp_notify_endpoint *chat = osp_notify_find(&c, "chat");
    assert_null(chat->secret);
    assert_int_equal(chat->format, OSP_NOTIFY_SLACK);
    json_t *r = osp_notify_routes(&c);
    assert_int_equal(json_array_size(json_object_get(r, "ops")), 2);
    assert_int_equal(json_array_size(json_object_get(r, "chat")), osp_notify_nevent_types);
    json_decref(r);
    osp_notify_config_deinit(&c);
}

static void refused(const char *fmt, const char *want)
{
    struct osp_notify_config c;
    struct osp_err err = {0, ""};
    assert_int_equal(parse(&c, fmt, &err), OSP_EINVAL);
    if (strstr(err.msg, want) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
    }
    assert_null(strstr(err.msg, "TOKEN"));
    assert_int_equal(c.n, 0);
}

static void test_parse_refused(void **state)
{
    (void)state;
    refused("{\"endpoints\": {\"a\": {\"url\": \"http://h/TOKEN\", \"secret_file\": \"%s\", "
            "\"events\": [\"job.died\"]}}}",
            "unknown event type \"job.died\"");
    refused("{\"endpoints\": {\"a\": {\"url\": \"gopher://h/TOKEN\", \"secret_file\": \"%s\", "
            "\"events\": [\"*\"]}}}",
            "an http:// or https:// URL");
    refused("{\"endpoints\": {\"a\": {\"url\": \"http://h/TO KEN\", \"secret_file\": \"%s\", "
            "\"events\": [\"*\"]}}}",
            "without spaces");
    refused("{\"endpoints\": {\"a\": {\"url\": \"http://h/TOKEN\", \"events\": [\"*\"]}}}",
            "notify.json:");
    refused("{\"endpoints\": {\"a\": {\"url\": \"http://h/TOKEN\", \"events\": [\"*\"]}}}",
            "secret_file: required");
    refused("{\"endpoints\": {\"a\": {\"url\": \"http://h/\", \"secret_file\": \"%s\", "
            "\"events\": []}}}",
            "events: a non-empty list");
    refused("{\"endpoints\": {\"a\": {\"url\": \"http://h/\", \"secret_file\": \"%s\", "
            "\"events\": [\"*\"], \"retry_base_ms\": 100, \"retry_max_ms\": 50}}}",
            "retry_max_ms is below");
    refused("{\"endpoints\": {\"a\": {\"url\": \"http://h/\", \"secret_file\": \"%s\", "
            "\"events\": [\"*\"], \"format\": \"xml\"}}}",
            "format:");
    refused("{\"endpoints\": {}, \"extra\": 1}", "and nothing else");
    refused("{\"endpoints\": {\"a\": {\"url\": \"http://h/\", \"url\": \"http://h/\"}}}",
            "duplicate");
}

static void test_sign(void **state)
{
    (void)state;
    char key[] = "0123456789abcdef0123456789abcdef";
    struct osp_notify_endpoint e = {.secret = key, .secret_len = 32};
    char sig[OSP_NOTIFY_SIG_MAX];
    osp_notify_sign(&e, 1700000000, "{\"a\":1}", 7, sig);
    assert_string_equal(sig,
                        "t=1700000000,v1=f05f2539e3ae1c49aec5f8cfdad75ef6b06480b133973ffbb7ec9e"
                        "18827af177");
}

static void test_body(void **state)
{
    (void)state;
    struct osp_notify_endpoint e = {.format = OSP_NOTIFY_JSON};
    struct osp_notify_delivery d = {"5a5c69de-71ac-453f-a35f-3d130d38b33e",
                                    "job.dead",
                                    "42",
                                    "0190f2a4-1b2c-7d3e-8f40-123456789abc",
                                    "2026-12-06T17:00:00.000Z",
                                    "{\"kind\": \"drill\", \"attempt\": 3, \"error\": \"boom\", "
                                    "\"target\": \"shop\"}",
                                    2};
    char *b = osp_notify_body(&e, &d);
    json_t *j = json_loads(b, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "schema")), "opspool.notification/v1");
    assert_int_equal(json_integer_value(json_object_get(j, "event_id")), 42);
    assert_int_equal(json_integer_value(json_object_get(j, "attempt")), 2);
    assert_string_equal(json_string_value(json_object_get(j, "summary")),
                        "job 0190f2a4-1b2c-7d3e-8f40-123456789abc (drill, target shop) is dead "
                        "after 3 attempt(s): boom");
    json_decref(j);
    free(b);
    e.format = OSP_NOTIFY_SLACK;
    b = osp_notify_body(&e, &d);
    j = json_loads(b, 0, NULL);
    assert_int_equal(json_object_size(j), 1);
    assert_non_null(
        strstr(json_string_value(json_object_get(j, "text")), "opspool job.dead: job "));
    json_decref(j);
    free(b);
    d.data = "[1]";
    assert_null(osp_notify_body(&e, &d));
}

static void test_backoff(void **state)
{
    (void)state;
    struct osp_notify_endpoint e = {.retry_base_ms = 1000, .retry_max_ms = 60000};
    assert_int_equal(osp_notify_backoff_ms(&e, 1, 0.0), 500);
    assert_int_equal(osp_notify_backoff_ms(&e, 1, 0.999999), 999);
    assert_int_equal(osp_notify_backoff_ms(&e, 4, 0.0), 4000);
    assert_int_equal(osp_notify_backoff_ms(&e, 1000, 0.0), 30000); /* capped, no overflow */
    assert_true(osp_notify_backoff_ms(&e, 1000, 0.999999) <= 60000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok), cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_sign),     cmocka_unit_test(test_body),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
