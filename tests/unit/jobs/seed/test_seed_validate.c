/* SPDX-License-Identifier: MIT */
/* test_seed_validate.c — payload validation of the seed kind: what is accepted, and that each
 * rejection names the offending field. No servers. */
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
    "{\"targets\": {\"shop\": {\"pg_dsn\": \"dbname=x\", \"seed\": {\"scale\": 2}},"
    " \"nodb\": {\"base_url\": \"http://127.0.0.1:1\"},"
    " \"badseed\": {\"pg_dsn\": \"dbname=x\", \"seed\": {\"scale\": 0}}}}";

/* Validate text against the kind; returns the code and leaves the message in err. */
static int check(const char *text, const struct osp_targets *t, struct osp_err *err)
{
    const struct job_kind *k = job_kind_find("seed");
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
    assert_int_equal(check("{\"target\": \"shop\", \"seed\": -5, \"scale\": 10000, \"mode\": "
                           "\"append\", \"zipf_s\": 1.2}", &t, &err), 0);
    assert_int_equal(check("{\"target\": \"any\", \"zipf_s\": 0}", NULL, &err), 0);
    assert_int_equal(check("{\"target\": \"any\", \"layout\": \"pgbench\"}", NULL, &err), 0);
    assert_int_equal(check("{\"target\": \"any\", \"layout\": \"workload\"}", NULL, &err), 0);
    assert_int_equal(check("{\"target\": \"any\", \"layout\": \"pgbench\", \"filler\": \"blank\"}",
                           NULL, &err), 0);
    assert_int_equal(check("{\"target\": \"any\", \"layout\": \"pgbench\", \"filler\": \"random\"}",
                           NULL, &err), 0);
    osp_targets_deinit(&t);
}

static void test_rejects(void **state)
{
    (void)state;
    struct osp_targets t;
    struct osp_err err;
    assert_int_equal(osp_targets_parse(&t, targets_json, &err), 0);
    expect_error("[]", &t, "payload: must be an object");
    expect_error("{}", &t, "payload.target: required");
    expect_error("{\"target\": \"nope\"}", &t, "unknown target \"nope\"");
    expect_error("{\"target\": \"nodb\"}", &t, "has no pg_dsn");
    expect_error("{\"target\": \"badseed\"}", &t, "target.seed.scale: must be an integer 1..10000");
    expect_error("{\"target\": \"shop\", \"scale\": 0}", &t, "payload.scale: must be an integer");
    expect_error("{\"target\": \"shop\", \"scale\": 10001}", &t, "payload.scale");
    expect_error("{\"target\": \"shop\", \"scale\": \"2\"}", &t, "payload.scale");
    expect_error("{\"target\": \"shop\", \"seed\": 1.5}", &t, "payload.seed: must be an integer");
    expect_error("{\"target\": \"shop\", \"mode\": \"merge\"}", &t,
                 "payload.mode: must be \"replace\" or \"append\"");
    expect_error("{\"target\": \"shop\", \"zipf_s\": -1}", &t, "payload.zipf_s");
    expect_error("{\"target\": \"shop\", \"zipf_s\": 9}", &t, "payload.zipf_s");
    expect_error("{\"target\": \"shop\", \"layout\": \"tpcc\"}", &t, "payload.layout");
    expect_error("{\"target\": \"shop\", \"layout\": 1}", &t, "payload.layout");
    expect_error("{\"target\": \"shop\", \"filler\": \"blank\"}", &t, "payload.filler");
    expect_error("{\"target\": \"shop\", \"layout\": \"workload\", \"filler\": \"blank\"}", &t,
                 "payload.filler");
    expect_error("{\"target\": \"shop\", \"layout\": \"pgbench\", \"filler\": \"none\"}", &t,
                 "payload.filler");
    expect_error("{\"target\": \"shop\", \"rows\": 5}", &t, "payload.rows: unknown field");
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
