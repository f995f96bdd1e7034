/* SPDX-License-Identifier: MIT */
/* fuzz_http.c — libFuzzer target for the HTTP API's request handling, without a socket.
 *
 * The scheduler has no function that handles one request from method/path/headers/body (its
 * handlers need a live struct sched with Redis, PostgreSQL and an MHD connection), so this
 * target drives what runs before and inside a handler, with the scheduler's route table:
 *   router (common/http.h) -> 404/405 error replies quoting the method -> JSON body parsing
 *   (osp_http_body_object) -> for POST /v1/jobs the submit path's pure part: kind lookup,
 *   payload validation, RFC 3339 run_at, envelope encode -> decode round trip (what the API
 *   accepts, a worker must decode to the same job); for POST /v1/schedules the cron and
 *   time-zone checks.
 * Input: "<METHOD> <path>\n<body>". Every reply must be valid JSON; errors {"error":{code,...}}.
 * The route table below mirrors sched_api_routes() in scheduler/api.c. */
#include "common/alloc.h"
#include "common/cron.h"
#include "common/envelope.h"
#include "common/http.h"
#include "jobs/job.h"
#include "tests/fuzz/fuzz_util.h"

static struct osp_http_router *router;

static void h_submit(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg);
static void h_schedule(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg);
static void h_other(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    router = osp_http_router_new();
    struct osp_http_router *r = router;
    osp_http_router_add(r, "GET", "/healthz", 0, h_other, NULL);
    osp_http_router_add(r, "GET", "/readyz", 0, h_other, NULL);
    osp_http_router_add(r, "GET", "/metrics", 0, h_other, NULL);
    osp_http_router_add(r, "POST", "/v1/jobs", OSP_HTTP_AUTH, h_submit, NULL);
    osp_http_router_add(r, "GET", "/v1/jobs", OSP_HTTP_AUTH, h_other, NULL);
    osp_http_router_add(r, "GET", "/v1/jobs/{id}", OSP_HTTP_AUTH, h_other, NULL);
    osp_http_router_add(r, "POST", "/v1/jobs/{id}/cancel", OSP_HTTP_AUTH, h_other, NULL);
    osp_http_router_add(r, "GET", "/v1/queues", OSP_HTTP_AUTH, h_other, NULL);
    osp_http_router_add(r, "POST", "/v1/queues/{kind}/pause", OSP_HTTP_AUTH, h_other, NULL);
    osp_http_router_add(r, "POST", "/v1/queues/{kind}/resume", OSP_HTTP_AUTH, h_other, NULL);
    osp_http_router_add(r, "GET", "/v1/schedules", OSP_HTTP_AUTH, h_other, NULL);
    osp_http_router_add(r, "POST", "/v1/schedules", OSP_HTTP_AUTH, h_schedule, NULL);
    osp_http_router_add(r, "GET", "/v1/schedules/{name}", OSP_HTTP_AUTH, h_other, NULL);
    osp_http_router_add(r, "DELETE", "/v1/schedules/{name}", OSP_HTTP_AUTH, h_other, NULL);
    osp_http_router_add(r, "POST", "/v1/dead/{kind}/retry", OSP_HTTP_AUTH, h_other, NULL);
    return 0;
}

static void h_other(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)arg;
    /* Handlers quote path parameters in errors ("no job %s"). */
    osp_http_reply_error(resp, 404, "not_found", "no such thing: %s",
                         req->nparams ? req->params[0] : "");
}

static const char *opt_string(const json_t *body, const char *name)
{
    const json_t *v = json_object_get(body, name);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        json_string_length(v) > 200) {
        return NULL;
    }
    return json_string_value(v);
}

static void h_submit(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)arg;
    json_t *body = osp_http_body_object(req, resp);
    if (body == NULL) {
        FUZZ_ASSERT(resp->status == 400);
        return;
    }
    const struct job_kind *k = job_kind_find(json_string_value(json_object_get(body, "kind")));
    json_t *payload = json_object_get(body, "payload");
    struct osp_err err = {0, ""};
    if (k == NULL || (payload != NULL && !json_is_object(payload))) {
        osp_http_reply_error(resp, 400, "invalid_request", "kind or payload");
        json_decref(body);
        return;
    }
    payload = payload != NULL ? json_incref(payload) : json_object();
    int rc = k->validate(payload, NULL, &err);
    fuzz_check_err(rc, &err, k->name);
    if (rc != 0) {
        osp_http_reply_error(resp, 400, "invalid_payload", "%s", err.msg);
        json_decref(payload);
        json_decref(body);
        return;
    }
    struct osp_job j;
    osp_job_init(&j);
    json_decref(j.payload);
    j.payload = payload;
    snprintf(j.kind, sizeof(j.kind), "%s", k->name);
    osp_id_new(j.id);
    j.enqueued_at = 1767225600000;
    const char *ra = json_string_value(json_object_get(body, "run_at"));
    int64_t run_at = 0;
    if (ra != NULL && osp_time_parse_rfc3339(ra, &run_at) == 0 && run_at > 0 &&
        run_at <= 253402300799999LL) {
        j.run_at = run_at;
    }
    const char *idem = opt_string(body, "idempotency_key");
    if (idem != NULL) {
        free(j.idempotency_key);
        j.idempotency_key = osp_xstrdup(idem);
    }
    const char *trace = opt_string(body, "trace_id");
    if (trace != NULL) {
        free(j.trace_id);
        j.trace_id = osp_xstrdup(trace);
    }

    static const uint8_t env_key[] = "fuzz-key";
    struct osp_env_keys keys = {{env_key, NULL}, {sizeof(env_key) - 1, 0}, 1, false};
    struct osp_buf env = OSP_BUF_INIT;
    if (osp_env_encode(&j, &keys, &env, &err) != 0) {
        fuzz_check_err(OSP_EINVAL, &err, "osp_env_encode");
        osp_http_reply_error(resp, 400, "invalid_payload", "%s", err.msg);
    } else {
        struct osp_job w;
        rc = osp_env_decode(env.data, env.len, &keys, 64 * 1024 * 1024, &w, &err);
        if (rc != 0) {
            fprintf(stderr, "accepted job does not decode: %s\n", err.msg);
            abort();
        }
        FUZZ_ASSERT(strcmp(w.kind, j.kind) == 0 && strcmp(w.id, j.id) == 0);
        FUZZ_ASSERT(json_equal(w.payload, j.payload) && w.run_at == j.run_at);
        FUZZ_ASSERT(strcmp(w.idempotency_key, j.idempotency_key) == 0);
        FUZZ_ASSERT(strcmp(w.trace_id, j.trace_id) == 0);
        /* The worker validates again (with its targets: none here) and must agree. */
        struct osp_err err2 = {0, ""};
        FUZZ_ASSERT(k->validate(w.payload, NULL, &err2) == 0);
        osp_job_deinit(&w);
        osp_http_reply_json(resp, 202, json_pack("{s:s,s:s}", "id", j.id, "kind", j.kind));
    }
    osp_buf_deinit(&env);
    osp_job_deinit(&j);
    json_decref(body);
}

static void h_schedule(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)arg;
    json_t *body = osp_http_body_object(req, resp);
    if (body == NULL) {
        return;
    }
    const char *cron = json_string_value(json_object_get(body, "cron"));
    const char *tz = json_string_value(json_object_get(body, "tz"));
    struct osp_cron c;
    struct osp_err err = {0, ""};
    if (cron == NULL || osp_cron_parse(&c, cron, &err) != 0) {
        osp_http_reply_error(resp, 400, "invalid_request", "cron: %s", err.msg);
    } else if (tz != NULL && !osp_tz_is_valid(tz)) {
        osp_http_reply_error(resp, 400, "invalid_request", "tz: unknown time zone \"%s\"", tz);
    } else {
        int64_t next = 0;
        if (osp_cron_next(&c, tz ? tz : "UTC", 1767225600, &next, &err) == 0) {
            FUZZ_ASSERT(next > 1767225600);
        }
        osp_http_reply_json(resp, 200, json_pack("{s:I}", "next", (json_int_t)next));
    }
    json_decref(body);
}

/* Every reply is a JSON document; an error reply is {"error": {"code": s, "message": s}}. */
static void check_reply(const struct osp_http_resp *resp)
{
    FUZZ_ASSERT(resp->status >= 200 && resp->status <= 599);
    FUZZ_ASSERT(resp->body.len > 0);
    json_error_t je;
    json_t *v = json_loadb((const char *)resp->body.data, resp->body.len, 0, &je);
    if (v == NULL) {
        fprintf(stderr, "reply is not JSON (%s): %.*s\n", je.text, (int)resp->body.len,
                (const char *)resp->body.data);
        abort();
    }
    if (resp->status >= 400) {
        FUZZ_ASSERT(json_is_string(json_object_get(json_object_get(v, "error"), "code")));
        FUZZ_ASSERT(json_is_string(json_object_get(json_object_get(v, "error"), "message")));
    }
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t head = nl ? (size_t)(nl - data) : size;
    char *line = fuzz_cstr(data, head);
    if (strlen(line) != head) { /* MHD never hands over a URL with NUL in it */
        free(line);
        return 0;
    }
    char *sp = strchr(line, ' ');
    const char *method = line;
    const char *path = "/";
    if (sp != NULL) {
        *sp = '\0';
        path = sp + 1;
    }
    /* The body as the server keeps it: NUL-terminated, binary-safe length. */
    size_t body_len = nl ? size - head - 1 : 0;
    char *body = fuzz_cstr(nl ? nl + 1 : data + size, body_len);

    struct osp_http_match m;
    osp_http_router_match(router, method, path, &m);
    struct osp_http_resp resp = OSP_HTTP_RESP_INIT;
    FUZZ_ASSERT(memchr(m.allow, '\0', sizeof(m.allow)) != NULL);
    FUZZ_ASSERT(m.nparams <= OSP_HTTP_MAX_PARAMS);
    if (m.status == 404) {
        FUZZ_ASSERT(m.fn == NULL);
        osp_http_reply_error(&resp, 404, "not_found", "no such endpoint");
    } else if (m.status == 405) {
        FUZZ_ASSERT(m.fn == NULL && m.allow[0] != '\0');
        osp_http_reply_error(&resp, 405, "method_not_allowed",
                             "method %.16s not allowed here (allowed: %s)", method, m.allow);
    } else {
        FUZZ_ASSERT(m.status == 200 && m.fn != NULL);
        struct osp_http_req req;
        memset(&req, 0, sizeof(req));
        req.method = method;
        req.path = path;
        for (size_t i = 0; i < m.nparams; i++) {
            FUZZ_ASSERT(m.params[i][0] != '\0' && strlen(m.params[i]) <= OSP_HTTP_PARAM_MAX);
            FUZZ_ASSERT(strchr(m.params[i], '/') == NULL);
        }
        osp_http_req_params(&req, &m);
        req.body = body;
        req.body_len = body_len;
        m.fn(&req, &resp, m.arg);
    }
    check_reply(&resp);
    osp_buf_deinit(&resp.body);
    free(body);
    free(line);
    return 0;
}
