/* SPDX-License-Identifier: MIT */
/* fuzz_httpmini.c — libFuzzer target for the worker's HTTP server (common/httpmini.h) without a
 * socket: the input is the byte stream a peer sends, fed to osp_httpmini_parse() and
 * osp_httpmini_handle() with a small router shaped like the worker's (/healthz, /metrics) plus a
 * {name} route, a handler that sets nothing and one that sets an impossible status.
 * Checks beyond memory safety:
 *   - "need more" only below OSP_HTTPMINI_HEAD_MAX bytes; statuses stay within 200..599;
 *   - every reply is well formed: status line, Connection: close, Content-Length equal to the
 *     body sent (no body for HEAD), errors as {"error": {"code", "message"}} JSON;
 *   - parse and handle agree (same error status; a parsed head lies inside the input);
 *   - split input: once a prefix of the stream is answered, the whole stream gets the same
 *     reply byte for byte (what a connection sees when the request arrives in pieces), checked
 *     at every prefix for short inputs and at a few for long ones. */
#include "common/httpmini.h"
#include "tests/fuzz/fuzz_util.h"

static struct osp_http_router *mini_router;

static void mh_health(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    (void)arg;
    osp_http_reply_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static void mh_metrics(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    (void)arg;
    osp_http_reply_text(resp, 200, "text/plain; version=0.0.4", "up 1\n", 5);
}

static void mh_item(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)arg;
    FUZZ_ASSERT(req->nparams == 1 && req->params[0][0] != '\0');
    FUZZ_ASSERT(strchr(req->params[0], '/') == NULL);
    FUZZ_ASSERT(req->conn == NULL && req->body_len == 0 && req->body[0] == '\0');
    FUZZ_ASSERT(req->path[0] == '/');
    /* Params are decoded bytes: may be invalid UTF-8, which jansson refuses (NULL body). */
    osp_http_reply_json(resp, 200, json_pack("{s:s}", "id", req->params[0]));
}

static void mh_silent(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    (void)resp;
    (void)arg;
}

static void mh_weird(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    (void)arg;
    osp_http_reply_text(resp, 1000, "text/plain", "?", 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (mini_router != NULL) {
        return 0;
    }
    mini_router = osp_http_router_new();
    osp_http_router_add(mini_router, "GET", "/healthz", 0, mh_health, NULL);
    osp_http_router_add(mini_router, "GET", "/metrics", 0, mh_metrics, NULL);
    osp_http_router_add(mini_router, "GET", "/v1/items/{id}", 0, mh_item, NULL);
    osp_http_router_add(mini_router, "GET", "/silent", 0, mh_silent, NULL);
    osp_http_router_add(mini_router, "GET", "/weird", 0, mh_weird, NULL);
    osp_http_router_add(mini_router, "POST", "/postonly", 0, mh_health, NULL);
    return 0;
}

/* Check one reply's shape; head_only when the request was HEAD. */
static void check_mini_reply(int status, const struct osp_buf *out, bool head_only)
{
    FUZZ_ASSERT(status >= 200 && status <= 599);
    FUZZ_ASSERT(out->len > 0);
    char *s = fuzz_cstr(out->data, out->len);
    char line[32];
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    FUZZ_ASSERT(strncmp(s, line, strlen(line)) == 0);
    char *eoh = strstr(s, "\r\n\r\n");
    FUZZ_ASSERT(eoh != NULL);
    *eoh = '\0'; /* s is now the header block */
    const char *body = eoh + 4;
    size_t body_len = out->len - (size_t)(body - s);
    FUZZ_ASSERT(strstr(s, "\r\nConnection: close") != NULL);
    const char *cl = strstr(s, "\r\nContent-Length: ");
    FUZZ_ASSERT(cl != NULL);
    size_t announced = strtoul(cl + 18, NULL, 10);
    if (head_only) {
        FUZZ_ASSERT(body_len == 0);
    } else {
        FUZZ_ASSERT(body_len == announced);
    }
    if (status >= 400 && !head_only) {
        json_error_t je;
        json_t *v = json_loadb(body, body_len, 0, &je);
        FUZZ_ASSERT(v != NULL);
        json_t *e = json_object_get(v, "error");
        FUZZ_ASSERT(json_is_string(json_object_get(e, "code")));
        FUZZ_ASSERT(json_is_string(json_object_get(e, "message")));
        json_decref(v);
    }
    free(s);
}

/* Handle data[0..n); when answered, the reply must equal the whole stream's. */
static void check_mini_prefix(const uint8_t *data, size_t n, const struct osp_buf *whole)
{
    struct osp_buf out = OSP_BUF_INIT;
    int st = osp_httpmini_handle(mini_router, (const char *)data, n, &out);
    if (st == 0) {
        FUZZ_ASSERT(out.len == 0 && n < OSP_HTTPMINI_HEAD_MAX);
    } else {
        FUZZ_ASSERT(out.len == whole->len && memcmp(out.data, whole->data, out.len) == 0);
    }
    osp_buf_deinit(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (mini_router == NULL) {
        LLVMFuzzerInitialize(NULL, NULL);
    }
    const char *buf = (const char *)data;
    struct osp_httpmini_head *h = malloc(sizeof(*h));
    FUZZ_ASSERT(h != NULL);
    int prc = osp_httpmini_parse(buf, size, h);

    struct osp_buf whole = OSP_BUF_INIT;
    int status = osp_httpmini_handle(mini_router, buf, size, &whole);
    if (prc == OSP_HTTPMINI_MORE) {
        FUZZ_ASSERT(status == 0 && whole.len == 0);
        FUZZ_ASSERT(size < OSP_HTTPMINI_HEAD_MAX);
        FUZZ_ASSERT(h->error == NULL);
    } else if (prc == OSP_HTTPMINI_DONE) {
        FUZZ_ASSERT(h->head_len > 0 && h->head_len <= size);
        FUZZ_ASSERT(h->head_len <= OSP_HTTPMINI_HEAD_MAX);
        FUZZ_ASSERT(data[h->head_len - 1] == '\n');
        FUZZ_ASSERT(h->path[0] == '/' && strlen(h->path) < h->head_len);
        FUZZ_ASSERT(h->method[0] != '\0' && h->error == NULL);
        FUZZ_ASSERT(h->version_minor >= 0 && h->version_minor <= 9);
        check_mini_reply(status, &whole, h->is_head);
    } else {
        FUZZ_ASSERT(prc == 400 || prc == 413 || prc == 431);
        FUZZ_ASSERT(h->error != NULL && h->error[0] != '\0');
        FUZZ_ASSERT(status == prc);
        FUZZ_ASSERT(prc != 431 || size >= OSP_HTTPMINI_HEAD_MAX);
        check_mini_reply(status, &whole, h->is_head);
    }

    if (status != 0) {
        /* The same stream arriving in pieces. Every prefix for short inputs; for long ones,
         * a few cut points (the answer position, halves, one picked by the last byte). */
        if (size <= 256) {
            for (size_t k = 0; k < size; k++) {
                check_mini_prefix(data, k, &whole);
            }
        } else {
            size_t cuts[] = {size / 2, size - 1, (size_t)data[size - 1] * size / 256,
                             prc == OSP_HTTPMINI_DONE ? h->head_len : size / 3};
            for (size_t i = 0; i < OSP_ARRAY_LEN(cuts); i++) {
                check_mini_prefix(data, cuts[i], &whole);
            }
        }
    }
    osp_buf_deinit(&whole);
    free(h);
    return 0;
}
