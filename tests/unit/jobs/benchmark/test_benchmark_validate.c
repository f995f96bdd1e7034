/* SPDX-License-Identifier: MIT */
/* test_benchmark_validate.c — the benchmark kind's payload validation: accepted payloads
 * (objects, presets from the target, defaults), and for each rejected one the field the
 * message must name. Pure: no network. */
#include "jobs/job.h"
#include "jobs/targets.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static const char *const targets_json =
    "{\"targets\": {"
    " \"web\": {\"adapter\": \"local\", \"base_url\": \"http://127.0.0.1:8080\","
    "          \"health_path\": \"/health\","
    "          \"lanes\": {\"baseline\": {\"model\": \"closed\", \"connections\": 8,"
    "                                    \"duration_s\": 10},"
    "                      \"broken\": {\"model\": \"open\", \"duration_s\": 10}}},"
    " \"nourl\": {\"adapter\": \"local\"},"
    " \"scl\": {\"adapter\": \"local\", \"base_url\": \"http://127.0.0.1:8080\","
    "          \"local\": {\"instance\": {\"argv\": [\"/usr/bin/svc\", \"--port\", \"{port}\"],"
    "                                   \"env\": {\"LOG\": \"/tmp/svc-{index}.log\"}}},"
    "          \"lanes\": {\"x3\": {\"connections\": 6, \"duration_s\": 1, \"replicas\": 3},"
    "                      \"x1\": {\"connections\": 6, \"duration_s\": 1}}},"
    " \"noport\": {\"adapter\": \"local\", \"base_url\": \"http://127.0.0.1:8080\","
    "          \"local\": {\"instance\": {\"argv\": [\"/usr/bin/svc\"]}}},"
    " \"relpath\": {\"adapter\": \"local\", \"base_url\": \"http://127.0.0.1:8080\","
    "          \"local\": {\"instance\": {\"argv\": [\"svc\", \"{port}\"]}}},"
    " \"kube\": {\"adapter\": \"kubernetes\", \"base_url\": \"http://shortener.shop:8080\","
    "          \"kubernetes\": {\"namespace\": \"shop\", \"deployment\": \"shortener\","
    "                          \"selector\": \"app=shortener\", \"scale_ready_timeout_s\": 60}},"
    " \"kube_nodep\": {\"adapter\": \"kubernetes\", \"base_url\": \"http://x.shop:8080\","
    "          \"kubernetes\": {\"namespace\": \"shop\", \"selector\": \"app=x\"}},"
    " \"kube_typo\": {\"adapter\": \"kubernetes\", \"base_url\": \"http://x.shop:8080\","
    "          \"kubernetes\": {\"namespace\": \"shop\", \"deployment\": \"x\","
    "                          \"scale_ready_timout_s\": 5}}}}";

static struct osp_targets targets;

static int setup(void **state)
{
    (void)state;
    struct osp_err err = {0};
    if (osp_targets_parse(&targets, targets_json, &err) != 0) {
        fail_msg("targets: %s", err.msg);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    osp_targets_deinit(&targets);
    return 0;
}

static int validate(const char *payload, const struct osp_targets *t, struct osp_err *err)
{
    const struct job_kind *k = job_kind_find("benchmark");
    assert_non_null(k);
    json_error_t jerr;
    json_t *p = json_loads(payload, 0, &jerr);
    if (p == NULL) {
        fail_msg("test payload is not JSON: %s: %s", jerr.text, payload);
    }
    memset(err, 0, sizeof(*err));
    int rc = k->validate(p, t, err);
    json_decref(p);
    return rc;
}

static void test_valid(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 5}]}",
        "{\"target\": \"web\", \"lanes\": [\"baseline\"], \"thresholds\": [\"p95<300ms\","
        " \"error_rate<1%\", \"p99<1s\", \"rps>100\", \"cache_hit_ratio>0.8\"]}",
        "{\"target\": \"web\", \"cache_header\": \"X-Cache\", \"seed\": 7, \"lanes\": ["
        " {\"name\": \"open-1\", \"model\": \"open\", \"rate\": 500, \"connections\": 100,"
        "  \"duration_s\": 60, \"warmup_s\": 5, \"read_timeout_ms\": 2000,"
        "  \"requests_mix\": [{\"method\": \"GET\", \"path\": \"/r/k{key}\", \"weight\": 9},"
        "   {\"method\": \"POST\", \"path\": \"/api/urls\", \"headers\": {\"X-Test\": \"1\"},"
        "    \"body\": {\"target\": \"https://example.com\", \"user_id\": 1}}],"
        "  \"keys\": {\"count\": 1000, \"dist\": \"zipf\", \"s\": 1.1},"
        "  \"thresholds\": [\"p99<2s\"]},"
        " {\"name\": \"count\", \"requests\": 1000}]}",
        "{\"target\": \"web\", \"lanes\": [{\"name\": \"o\", \"model\": \"open\", \"rate\": 10,"
        " \"duration_s\": 1, \"min_achieved_ratio\": 0}]}",
        /* scale-out lanes: objects and presets, both adapters, the bounds */
        "{\"target\": \"scl\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, \"replicas\": 1},"
        " {\"name\": \"b\", \"duration_s\": 1, \"connections\": 64, \"replicas\": 64}]}",
        "{\"target\": \"scl\", \"lanes\": [\"x1\", \"x3\"]}",
        "{\"target\": \"kube\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, \"replicas\": "
        "2}]}",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct osp_err err;
        if (validate(ok[i], &targets, &err) != 0) {
            fail_msg("rejected #%zu: %s", i, err.msg);
        }
    }
    /* Without a targets file (scheduler side) a preset name is only checked for its form. */
    struct osp_err err;
    assert_int_equal(
        validate("{\"target\": \"elsewhere\", \"lanes\": [\"any-preset\"]}", NULL, &err), 0);
}

static void test_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *payload;
        const char *msg_part;
    } bad[] = {
        {"[]", "payload: must be an object"},
        {"{\"lanes\": [{\"name\": \"a\", \"duration_s\": 1}]}", "payload.target: required"},
        {"{\"target\": \"nope\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1}]}",
         "unknown target \"nope\""},
        {"{\"target\": \"nourl\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1}]}", "base_url"},
        {"{\"target\": \"web\", \"url\": \"http://x\", \"lanes\": []}", "payload.url: unknown"},
        {"{\"target\": \"web\", \"lanes\": []}", "payload.lanes: required"},
        {"{\"target\": \"web\", \"lanes\": [{\"duration_s\": 1}]}", "payload.lanes[0].name"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"A B\", \"duration_s\": 1}]}",
         "payload.lanes[0].name"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, \"x\": 1}]}",
         "payload.lanes[0].x: unknown field"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"min_achieved_ratio\": 0.5}]}",
         "payload.lanes[0].min_achieved_ratio: only for the open model"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"model\": \"open\", \"rate\": 5, "
         "\"duration_s\": 1, \"min_achieved_ratio\": 1.5}]}",
         "payload.lanes[0].min_achieved_ratio"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"connections\": 0}]}",
         "payload.lanes[0].connections"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"connections\": 10001}]}",
         "payload.lanes[0].connections"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 3601}]}",
         "payload.lanes[0].duration_s"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 0}]}",
         "payload.lanes[0].duration_s"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\"}]}", "duration_s and/or requests"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"model\": \"open\", "
         "\"duration_s\": 1}]}",
         "payload.lanes[0].rate: required"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"rate\": 5, \"duration_s\": 1}]}",
         "payload.lanes[0].rate: only for the open model"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"model\": \"half\", "
         "\"duration_s\": 1}]}",
         "payload.lanes[0].model"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"requests_mix\": [{\"path\": \"/r/{key}\"}]}]}",
         "payload.lanes[0].keys: required"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"requests_mix\": [{\"path\": \"/r/{id}\"}]}]}",
         "payload.lanes[0].requests_mix[0].path"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"requests_mix\": [{\"path\": \"nope\"}]}]}",
         "payload.lanes[0].requests_mix[0].path"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"requests_mix\": [{\"path\": \"/\", \"method\": \"get\"}]}]}",
         "payload.lanes[0].requests_mix[0].method"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"requests_mix\": [{\"path\": \"/\", \"weight\": 0}]}]}",
         "payload.lanes[0].requests_mix[0].weight"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"requests_mix\": [{\"path\": \"/\", \"headers\": {\"Host\": \"evil\"}}]}]}",
         "payload.lanes[0].requests_mix[0].headers.Host"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"requests_mix\": [{\"path\": \"/\", \"headers\": {\"X-A\": \"a\\r\\nb\"}}]}]}",
         "payload.lanes[0].requests_mix[0].headers.X-A"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"requests_mix\": [{\"path\": \"/\", \"body\": 5}]}]}",
         "payload.lanes[0].requests_mix[0].body"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"requests_mix\": []}]}",
         "payload.lanes[0].requests_mix"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"keys\": {\"count\": 10, \"dist\": \"pareto\"}}]}",
         "payload.lanes[0].keys.dist"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"keys\": {\"dist\": \"zipf\"}}]}",
         "payload.lanes[0].keys.count"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"keys\": {\"count\": 10, \"s\": 0}}]}",
         "payload.lanes[0].keys.s"},
        {"{\"target\": \"web\", \"thresholds\": [\"p95<300ms\", \"p95 300\"], "
         "\"lanes\": [\"baseline\"]}",
         "payload.thresholds[1] \"p95 300\""},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"thresholds\": [\"bogus>1\"]}]}",
         "payload.lanes[0].thresholds[0]"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1},"
         " {\"name\": \"a\", \"duration_s\": 1}]}",
         "used twice"},
        {"{\"target\": \"web\", \"lanes\": [\"missing\"]}", "no lane preset \"missing\""},
        {"{\"target\": \"web\", \"lanes\": [\"broken\"]}", "lanes.broken.rate: required"},
        {"{\"target\": \"web\", \"lanes\": [\"Bad Name\"]}", "payload.lanes[0]: preset name"},
        {"{\"target\": \"web\", \"lanes\": [5]}", "payload.lanes[0]: must be an object"},
        {"{\"target\": \"web\", \"cache_header\": \"X Cache\", \"lanes\": [\"baseline\"]}",
         "payload.cache_header"},
        {"{\"target\": \"web\", \"seed\": -1, \"lanes\": [\"baseline\"]}", "payload.seed"},
        /* scale-out lanes */
        {"{\"target\": \"scl\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, \"replicas\": "
         "0}]}",
         "payload.lanes[0].replicas: must be an integer 1..64"},
        {"{\"target\": \"scl\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, \"replicas\": "
         "65}]}",
         "payload.lanes[0].replicas: must be an integer 1..64"},
        {"{\"target\": \"scl\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, \"replicas\": "
         "\"3\"}]}",
         "payload.lanes[0].replicas: must be an integer 1..64"},
        {"{\"target\": \"scl\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, \"replicas\": "
         "2.5}]}",
         "payload.lanes[0].replicas: must be an integer 1..64"},
        {"{\"target\": \"scl\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, \"connections\": "
         "2,"
         " \"replicas\": 3}]}",
         "payload.lanes[0].replicas: 3 replicas need at least 3 connections"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, \"replicas\": "
         "2}]}",
         "payload.lanes[0].replicas: target \"web\" cannot run scale-out lanes: the local adapter "
         "needs local.instance"},
        {"{\"target\": \"noport\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, \"replicas\": "
         "2}]}",
         "no {port} placeholder"},
        {"{\"target\": \"relpath\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, \"replicas\": "
         "2}]}",
         "local.instance.argv[0]: must be an absolute path"},
        {"{\"target\": \"kube_nodep\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"replicas\": 2}]}",
         "cannot run scale-out lanes: the kubernetes adapter needs kubernetes.deployment"},
        {"{\"target\": \"kube_typo\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, "
         "\"replicas\": 2}]}",
         "kubernetes.scale_ready_timout_s: unknown field"},
        {"{\"target\": \"web\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 3600},"
         " {\"name\": \"b\", \"duration_s\": 3600}, {\"name\": \"c\", \"duration_s\": 3600},"
         " {\"name\": \"d\", \"duration_s\": 3600}, {\"name\": \"e\", \"duration_s\": 1}]}",
         "add up to"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct osp_err err;
        int rc = validate(bad[i].payload, &targets, &err);
        if (rc != OSP_EINVAL || strstr(err.msg, bad[i].msg_part) == NULL) {
            fail_msg("#%zu: rc %d, message \"%s\" (wanted \"%s\")", i, rc, err.msg,
                     bad[i].msg_part);
        }
    }
}

static void test_body_limit(void **state)
{
    (void)state;
    json_t *p = json_pack("{s:s, s:[{s:s, s:i, s:[{s:s, s:s, s:s%}]}]}", "target", "web", "lanes",
                          "name", "a", "duration_s", 1, "requests_mix", "method", "POST", "path",
                          "/", "body", "", (size_t)0);
    assert_non_null(p);
    json_t *mix = json_array_get(
        json_object_get(json_array_get(json_object_get(p, "lanes"), 0), "requests_mix"), 0);
    static char big[65537 + 1];
    memset(big, 'x', sizeof(big) - 1);
    json_object_set_new(mix, "body", json_string(big));
    struct osp_err err = {0};
    assert_int_equal(job_kind_find("benchmark")->validate(p, &targets, &err), OSP_EINVAL);
    assert_non_null(strstr(err.msg, "payload.lanes[0].requests_mix[0].body"));
    json_decref(p);
}

/* Which payloads make the job hold its target alone (the kind's needs_exclusive). */
static void test_needs_exclusive(void **state)
{
    (void)state;
    const struct job_kind *k = job_kind_find("benchmark");
    assert_non_null(k->needs_exclusive);
    static const struct {
        const char *payload;
        bool exclusive;
    } cases[] = {
        {"{\"target\": \"scl\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1}]}", false},
        {"{\"target\": \"scl\", \"lanes\": [\"x1\"]}", false},
        {"{\"target\": \"scl\", \"lanes\": [\"x1\", \"x3\"]}", true},
        {"{\"target\": \"scl\", \"lanes\": [{\"name\": \"a\", \"duration_s\": 1, \"replicas\": "
         "1}]}",
         true},
        {"{\"target\": \"nope\", \"lanes\": [\"x3\"]}", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *p = json_loads(cases[i].payload, 0, NULL);
        assert_non_null(p);
        if (k->needs_exclusive(p, &targets) != cases[i].exclusive) {
            fail_msg("#%zu: needs_exclusive should be %d: %s", i, cases[i].exclusive,
                     cases[i].payload);
        }
        json_decref(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_needs_exclusive),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
