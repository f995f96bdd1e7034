/* SPDX-License-Identifier: MIT */
/* api_bench.c — benchmark history over HTTP: parse, call common/ops_bench.c, render.
 *   GET  /v1/benchmarks?target=&lane=&since=&limit=   judged results, newest first
 *   GET  /v1/benchmarks/{id}[?against=<id>]             one run's lanes (with their judge), or
 *                                                       compared lane by lane with another run
 *   POST /v1/benchmarks/baselines {target, lane, pin?}  pin a run as the baseline, or reset */
#include "common/id.h"
#include "common/ops.h"
#include "scheduler/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const api_bench_query[] = {"target", "lane", "since", "limit", NULL};
const char *const api_bench_job_query[] = {"against", NULL};

/* A positive integer query parameter within 1..max, or false after replying 400. */
static bool query_int(const char *v, const char *name, long max, long *out,
                      struct osp_http_resp *resp)
{
    char *end = NULL;
    long n = v != NULL ? strtol(v, &end, 10) : 0;
    if (v == NULL || v[0] == '\0' || *end != '\0' || n < 1 || n > max) {
        osp_http_reply_error(resp, 400, "invalid_request", "%s: an integer 1..%ld", name, max);
        return false;
    }
    *out = n;
    return true;
}

void api_h_bench_history(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    struct osp_bench_filter f = {osp_http_query(req, "target"), osp_http_query(req, "lane"), 0,
                                 API_LIST_DEFAULT};
    const char *since = osp_http_query(req, "since");
    const char *limit = osp_http_query(req, "limit");
    long n;
    if (since != NULL) {
        if (!query_int(since, "since (seconds)", 10L * 365 * 86400, &n, resp)) {
            return;
        }
        f.since_ms = (int64_t)n * 1000;
    }
    if (limit != NULL) {
        if (!query_int(limit, "limit", API_LIST_MAX, &n, resp)) {
            return;
        }
        f.limit = (int)n;
    }
    struct osp_ops o;
    if (!api_ops(s, &o, resp)) {
        return;
    }
    struct osp_err err = {0, ""};
    json_t *rows = osp_op_bench_history(&o, &f, &err);
    if (rows == NULL) {
        api_reply_op_error(s, resp, err.code != 0 ? err.code : OSP_EPG, &err);
        return;
    }
    osp_http_reply_json(resp, 200, json_pack("{s:o}", "results", rows));
}

void api_h_bench_job(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const char *against = osp_http_query(req, "against");
    if (against != NULL && !osp_id_is_valid(against)) {
        osp_http_reply_error(resp, 400, "invalid_request", "against: a job id");
        return;
    }
    struct osp_ops o;
    if (!api_ops(s, &o, resp)) {
        return;
    }
    struct osp_err err = {0, ""};
    json_t *out = osp_op_bench_compare(&o, req->params[0], against, &err);
    if (out == NULL) {
        api_reply_op_error(s, resp, err.code != 0 ? err.code : OSP_EPG, &err);
        return;
    }
    osp_http_reply_json(resp, 200, out);
}

void api_h_bench_baseline(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    json_error_t je;
    json_t *body = json_loadb(req->body, req->body_len, 0, &je);
    static const char *const allowed[] = {"target", "lane", "pin", NULL};
    const char *target = NULL, *lane = NULL, *pin = NULL;
    if (body == NULL || !json_is_object(body)) {
        osp_http_reply_error(resp, 400, "invalid_request", "body: a JSON object");
        goto out;
    }
    if (!api_fields_ok(body, allowed, resp) ||
        api_opt_str(body, "target", 64, &target, resp) != 0 ||
        api_opt_str(body, "lane", 64, &lane, resp) != 0 ||
        api_opt_str(body, "pin", 36, &pin, resp) != 0) {
        goto out;
    }
    if (target == NULL || lane == NULL) {
        osp_http_reply_error(resp, 400, "invalid_request", "target and lane: required");
        goto out;
    }
    struct osp_ops o;
    if (!api_ops(s, &o, resp)) {
        goto out;
    }
    struct osp_err err = {0, ""};
    int rc = osp_op_bench_baseline(&o, target, lane, pin, &err);
    if (rc != 0) {
        api_reply_op_error(s, resp, rc, &err);
        goto out;
    }
    char object[160];
    snprintf(object, sizeof(object), "%s/%s", target, lane);
    api_audit_log(s, pin != NULL ? "bench.pin" : "bench.reset", object, pin, NULL);
    osp_http_reply_json(resp, 200,
                        json_pack("{s:s, s:s, s:s?, s:b}", "target", target, "lane", lane,
                                  "pinned_job_id", pin, "reset", pin == NULL));
out:
    json_decref(body);
}
