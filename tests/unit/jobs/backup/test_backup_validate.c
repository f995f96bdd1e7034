/* SPDX-License-Identifier: MIT */
/* test_backup_validate.c — payload validation of the backup kind: accepted forms and a clear,
 * field-naming message for each rejection. No servers. */
#include "jobs/job.h"
#include "jobs/targets.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char targets_json[] =
    "{\"targets\": {\"shop\": {\"pg_dsn\": \"dbname=x\", \"backup\": {\"keep_daily\": 7,"
    " \"restore_check\": true}}, \"nodb\": {\"base_url\": \"http://127.0.0.1:1\"},"
    " \"badkeep\": {\"pg_dsn\": \"dbname=x\", \"backup\": {\"keep_weekly\": -1}},"
    " \"badkey\": {\"pg_dsn\": \"dbname=x\", \"backup\": {\"keep_yearly\": 1}},"
    " \"badbin\": {\"pg_dsn\": \"dbname=x\", \"backup\": {\"pg_bin\": \"bin\"}}}}";

static int check(const char *text, const struct osp_targets *t, struct osp_err *err)
{
    const struct job_kind *k = job_kind_find("backup");
    json_error_t je;
    json_t *p = json_loads(text, JSON_DECODE_ANY, &je);
    assert_non_null(k);
    assert_non_null(p);
    memset(err, 0, sizeof(*err));
    int rc = k->validate(p, t, err);
    json_decref(p);
    return rc;
}

static void expect_error(const char *text, const struct osp_targets *t, const char *needle)
{
    struct osp_err err;
    assert_int_equal(check(text, t, &err), OSP_EINVAL);
    if (strstr(err.msg, needle) == NULL) {
        fail_msg("payload %s: message \"%s\" lacks \"%s\"", text, err.msg, needle);
    }
}

static void test_accepts(void **state)
{
    (void)state;
    struct osp_targets t;
    struct osp_err err;
    assert_int_equal(osp_targets_parse(&t, targets_json, &err), 0);
    assert_int_equal(check("{\"target\": \"shop\"}", &t, &err), 0);
    assert_int_equal(check("{\"target\": \"shop\", \"verify\": \"restore\", \"retention\": "
                           "{\"keep_daily\": 0, \"keep_weekly\": 4, \"keep_monthly\": 6}, "
                           "\"lock_wait_timeout_ms\": 100}", &t, &err), 0);
    assert_int_equal(check("{\"target\": \"shop\", \"verify_file\": "
                           "\"20240101T030000Z-0192f0a0-0000-7000-8000-000000000001.dump\"}",
                           &t, &err), 0);
    assert_int_equal(check("{\"target\": \"elsewhere\", \"verify\": \"list\"}", NULL, &err), 0);
    osp_targets_deinit(&t);
}

static void test_rejects(void **state)
{
    (void)state;
    struct osp_targets t;
    struct osp_err err;
    assert_int_equal(osp_targets_parse(&t, targets_json, &err), 0);
    expect_error("7", &t, "payload: must be an object");
    expect_error("{}", &t, "payload.target: required");
    expect_error("{\"target\": \"nope\"}", &t, "unknown target \"nope\"");
    expect_error("{\"target\": \"nodb\"}", &t, "has no pg_dsn");
    expect_error("{\"target\": \"badkeep\"}", &t, "target.backup.keep_weekly: must be an integer");
    expect_error("{\"target\": \"badkey\"}", &t, "target.backup.keep_yearly: unknown field");
    expect_error("{\"target\": \"badbin\"}", &t, "target.backup.pg_bin: must be an absolute");
    expect_error("{\"target\": \"shop\", \"verify\": \"full\"}", &t,
                 "payload.verify: must be \"list\" or \"restore\"");
    expect_error("{\"target\": \"shop\", \"retention\": 3}", &t,
                 "payload.retention: must be an object");
    expect_error("{\"target\": \"shop\", \"retention\": {\"keep_hourly\": 3}}", &t,
                 "payload.retention.keep_hourly: unknown field");
    expect_error("{\"target\": \"shop\", \"retention\": {\"keep_daily\": 10001}}", &t,
                 "payload.retention.keep_daily: must be an integer 0..10000");
    expect_error("{\"target\": \"shop\", \"lock_wait_timeout_ms\": 0}", &t,
                 "payload.lock_wait_timeout_ms");
    expect_error("{\"target\": \"shop\", \"verify_file\": \"../../etc/passwd\"}", &t,
                 "payload.verify_file: must be a backup file name");
    expect_error("{\"target\": \"shop\", \"path\": \"/tmp\"}", &t, "payload.path: unknown field");
    osp_targets_deinit(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
