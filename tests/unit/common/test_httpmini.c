/* SPDX-License-Identifier: MIT */
/* test_httpmini.c — common/httpmini.h in two layers.
 * Pure: osp_httpmini_parse / osp_httpmini_handle on byte strings — GET, HEAD, query strings,
 * percent-decoding, absolute-form, 404/405/413/400/431, the 8 KiB head limit at its edge, input
 * arriving in pieces, pipelined bytes, garbage and NUL bytes.
 * Sockets: the server on 127.0.0.1:0 in a private libev loop, driven from this process with
 * plain sockets (the loop runs between client steps, every wait is bounded): a reply, a request
 * sent a byte at a time, pipelining, a slow and a silent client closed by the 1 s timeout, the
 * connection limit, hundreds of connections reset or abandoned mid-request without leaking
 * connections or descriptors, and address errors. */
#include "common/httpmini.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- Routes used by both layers ---- */

static int calls;            /* handler invocations */
static char last_path[256];  /* req->path of the last call */
static char last_method[16]; /* req->method of the last call */
static char last_param[256]; /* req->params[0] of the last call */

static void note(const struct osp_http_req *req)
{
    calls++;
    snprintf(last_path, sizeof(last_path), "%s", req->path);
    snprintf(last_method, sizeof(last_method), "%s", req->method);
    snprintf(last_param, sizeof(last_param), "%s", req->nparams ? req->params[0] : "");
    assert_null(req->conn);
    assert_string_equal(req->body, "");
    assert_int_equal(req->body_len, 0);
}

static void h_health(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)arg;
    note(req);
    osp_http_reply_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_text(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)arg;
    note(req);
    osp_http_reply_text(resp, 503, "text/plain; version=0.0.4", "not yet\n", 8);
}

static void h_item(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)arg;
    note(req);
    osp_http_reply_json(resp, 200, json_pack("{s:s}", "id", req->params[0]));
}

static void h_silent(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)arg;
    (void)resp;
    note(req);
}

static void h_big(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)arg;
    note(req);
    /* Larger than a loopback socket buffer takes at once: exercises EV_WRITE. */
    size_t n = 8u * 1024 * 1024;
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, 'x', n);
    osp_http_reply_text(resp, 200, "text/plain", s, n);
    free(s);
}

static void add_routes(struct osp_http_router *r)
{
    osp_http_router_add(r, "GET", "/healthz", 0, h_health, NULL);
    osp_http_router_add(r, "GET", "/metrics", 0, h_text, NULL);
    osp_http_router_add(r, "GET", "/v1/items/{id}", 0, h_item, NULL);
    osp_http_router_add(r, "GET", "/silent", 0, h_silent, NULL);
    osp_http_router_add(r, "GET", "/big", 0, h_big, NULL);
    osp_http_router_add(r, "POST", "/postonly", 0, h_health, NULL);
}

static struct osp_http_router *router;

static int setup_router(void **state)
{
    (void)state;
    router = osp_http_router_new();
    add_routes(router);
    return 0;
}

static int teardown_router(void **state)
{
    (void)state;
    osp_http_router_free(router);
    router = NULL;
    return 0;
}

/* ---- Pure layer ---- */

struct reply {
    int status;            /* osp_httpmini_handle's return */
    char text[16384];      /* the whole reply, NUL-terminated (truncated when larger) */
    size_t len;            /* bytes of the whole reply */
    const char *body;      /* into text, after the empty line */
    size_t content_length; /* parsed from the header; SIZE_MAX when absent */
};

static void parse_reply(struct reply *r, const struct osp_buf *out)
{
    r->len = out->len;
    size_t n = out->len < sizeof(r->text) - 1 ? out->len : sizeof(r->text) - 1;
    if (n > 0) {
        memcpy(r->text, out->data, n);
    }
    r->text[n] = '\0';
    const char *eoh = strstr(r->text, "\r\n\r\n");
    r->body = eoh ? eoh + 4 : NULL;
    const char *cl = strstr(r->text, "\r\nContent-Length: ");
    r->content_length = cl && (!eoh || cl < eoh) ? strtoul(cl + 18, NULL, 10) : SIZE_MAX;
}

/* Handle buf[0..len) and check what every reply must look like. */
static void handle(const char *buf, size_t len, struct reply *r)
{
    struct osp_buf out = OSP_BUF_INIT;
    memset(r, 0, sizeof(*r));
    r->status = osp_httpmini_handle(router, buf, len, &out);
    parse_reply(r, &out);
    if (r->status == 0) {
        assert_int_equal(out.len, 0);
        osp_buf_deinit(&out);
        return;
    }
    char line[32];
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", r->status);
    assert_memory_equal(r->text, line, strlen(line));
    assert_non_null(r->body);
    assert_non_null(strstr(r->text, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(r->text, "\r\nContent-Type: "));
    assert_non_null(strstr(r->text, "\r\nCache-Control: no-store\r\n"));
    osp_buf_deinit(&out);
}

static void handle_str(const char *s, struct reply *r)
{
    handle(s, strlen(s), r);
}

/* A GET reply: the body is exactly Content-Length bytes. */
static void assert_full_body(const struct reply *r)
{
    assert_int_not_equal(r->content_length, SIZE_MAX);
    assert_int_equal((size_t)(r->text + r->len - r->body), r->content_length);
}

/* An error reply {"error": {"code": code, "message": s}}. */
static void assert_error(const struct reply *r, int status, const char *code)
{
    assert_int_equal(r->status, status);
    assert_full_body(r);
    json_error_t je;
    json_t *v = json_loads(r->body, 0, &je);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "code")),
                        code);
    assert_true(json_is_string(json_object_get(json_object_get(v, "error"), "message")));
    json_decref(v);
}

static void test_get(void **state)
{
    (void)state;
    struct reply r;
    calls = 0;
    handle_str("GET /healthz HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(calls, 1);
    assert_string_equal(last_path, "/healthz");
    assert_string_equal(last_method, "GET");
    assert_memory_equal(r.text, "HTTP/1.1 200 OK\r\n", 17);
    assert_non_null(strstr(r.text, "\r\nContent-Type: application/json\r\n"));
    assert_full_body(&r);
    assert_string_equal(r.body, "{\"status\":\"ok\"}\n");

    /* HTTP/1.0, bare LF line ends, empty lines before the request line, no Host. */
    handle_str("\r\n\nGET /healthz HTTP/1.0\nAccept: */*\n\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}\n");

    /* A handler's own status and content type pass through. */
    handle_str("GET /metrics HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 503);
    assert_memory_equal(r.text, "HTTP/1.1 503 Service Unavailable\r\n", 34);
    assert_non_null(strstr(r.text, "\r\nContent-Type: text/plain; version=0.0.4\r\n"));
    assert_string_equal(r.body, "not yet\n");

    /* A handler that sets nothing gives 500 internal. */
    handle_str("GET /silent HTTP/1.1\r\n\r\n", &r);
    assert_error(&r, 500, "internal");

    /* Header values may carry tabs and obs-text; Content-Length: 0 is no body. */
    handle_str("GET /healthz HTTP/1.1\r\nX-A:\tv\xe9 \t\r\nContent-Length: 000\r\nX-Empty:\r\n\r\n",
               &r);
    assert_int_equal(r.status, 200);
}

static void test_head(void **state)
{
    (void)state;
    struct reply get, head;
    calls = 0;
    handle_str("GET /healthz HTTP/1.1\r\n\r\n", &get);
    handle_str("HEAD /healthz HTTP/1.1\r\n\r\n", &head);
    assert_int_equal(calls, 2);
    assert_string_equal(last_method, "HEAD");
    assert_int_equal(head.status, 200);
    assert_string_equal(head.body, "");
    /* Same status line and headers; Content-Length announces the GET body. */
    assert_int_equal(head.len, (size_t)(get.body - get.text));
    assert_memory_equal(head.text, get.text, head.len);
    assert_int_equal(head.content_length, strlen(get.body));

    /* Errors on HEAD have no body either. */
    handle_str("HEAD /nope HTTP/1.1\r\n\r\n", &head);
    assert_int_equal(head.status, 404);
    assert_string_equal(head.body, "");
    assert_true(head.content_length > 0);
}

static void test_query_and_decoding(void **state)
{
    (void)state;
    struct reply r;
    handle_str("GET /healthz?verbose=1&x=%zz HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(last_path, "/healthz");
    handle_str("GET /healthz#frag HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    handle_str("GET /heal%74h%7A HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(last_path, "/healthz");
    handle_str("GET /v1/items/a%20b%C3%A9? HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(last_param, "a b\xc3\xa9");
    assert_string_equal(last_path, "/v1/items/a b\xc3\xa9");
    /* %2F decodes to a separator before routing (as libmicrohttpd does). */
    handle_str("GET /v1/items/a%2Fb HTTP/1.1\r\n\r\n", &r);
    assert_error(&r, 404, "not_found");
    /* absolute-form keeps only the path. */
    handle_str("GET http://127.0.0.1:9090/healthz?x HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(last_path, "/healthz");
    handle_str("GET HTTPS://h HTTP/1.1\r\n\r\n", &r);
    assert_error(&r, 404, "not_found");

    static const char *const bad[] = {
        "GET /healthz%00 HTTP/1.1\r\n\r\n", "GET /a%0 HTTP/1.1\r\n\r\n", "GET /a% HTTP/1.1\r\n\r\n",
        "GET /%g0 HTTP/1.1\r\n\r\n",        "GET /%0g HTTP/1.1\r\n\r\n", "GET * HTTP/1.1\r\n\r\n",
        "GET healthz HTTP/1.1\r\n\r\n",     "GET ?a HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < OSP_ARRAY_LEN(bad); i++) {
        handle_str(bad[i], &r);
        assert_error(&r, 400, "bad_request");
    }
}

static void test_404_405(void **state)
{
    (void)state;
    struct reply r;
    calls = 0;
    handle_str("GET /nope HTTP/1.1\r\n\r\n", &r);
    assert_error(&r, 404, "not_found");
    handle_str("GET /healthz/ HTTP/1.1\r\n\r\n", &r);
    assert_error(&r, 404, "not_found");
    /* A non-GET route is not served: its path is unknown here. */
    handle_str("POST /postonly HTTP/1.1\r\n\r\n", &r);
    assert_error(&r, 404, "not_found");
    handle_str("GET /postonly HTTP/1.1\r\n\r\n", &r);
    assert_error(&r, 404, "not_found");

    static const char *const methods[] = {
        "POST", "PUT", "DELETE", "OPTIONS", "get", "PROPFIND", "A-VERY-LONG-METHOD-NAME-INDEED"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(methods); i++) {
        char req[128];
        snprintf(req, sizeof(req), "%s /healthz HTTP/1.1\r\n\r\n", methods[i]);
        handle_str(req, &r);
        assert_error(&r, 405, "method_not_allowed");
        assert_non_null(strstr(r.text, "\r\nAllow: GET, HEAD\r\n"));
    }
    assert_int_equal(calls, 0);
}

static void test_body_413(void **state)
{
    (void)state;
    struct reply r;
    static const char *const reqs[] = {
        "GET /healthz HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
        "GET /healthz HTTP/1.1\r\ncontent-length:  0001 \r\n\r\n",
        "GET /healthz HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /healthz HTTP/1.1\r\ntransfer-encoding: identity\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        "POST /nope HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    };
    calls = 0;
    for (size_t i = 0; i < OSP_ARRAY_LEN(reqs); i++) {
        handle_str(reqs[i], &r);
        assert_error(&r, 413, "too_large");
    }
    assert_int_equal(calls, 0);
    handle_str("HEAD /healthz HTTP/1.1\r\nContent-Length: 3\r\n\r\n", &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body, "");
}

static void test_bad_400(void **state)
{
    (void)state;
    struct reply r;
    static const char *const reqs[] = {
        "GET\r\n\r\n",
        "GET /healthz\r\n\r\n",          /* HTTP/0.9 */
        "GET /healthz HTTP/2.0\r\n\r\n", /* not HTTP/1.x */
        "GET /healthz HTTP/1.10\r\n\r\n",
        "GET /healthz HTTP/1.\r\n\r\n",
        "GET /healthz http/1.1\r\n\r\n",
        "GET /healthz HTTP/1.1 \r\n\r\n",
        "GET  /healthz HTTP/1.1\r\n\r\n",
        " GET /healthz HTTP/1.1\r\n\r\n",
        "GET /healthz  HTTP/1.1\r\n\r\n",
        "GET /hea lthz HTTP/1.1\r\n\r\n",
        "GET /hea\x80lthz HTTP/1.1\r\n\r\n",
        "G(T /healthz HTTP/1.1\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nName : v\r\n\r\n",
        "GET /healthz HTTP/1.1\r\n: v\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nContent-Length:\r\n\r\n",
        "GET /healthz HTTP/1.1\rX: y\r\n\r\n", /* bare CR */
        "GET /healthz HTTP/1.1\r\nX: a\x01z\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nX: a\x7fz\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",             /* HTTP/2 preface */
    };
    calls = 0;
    for (size_t i = 0; i < OSP_ARRAY_LEN(reqs); i++) {
        handle_str(reqs[i], &r);
        if (r.status != 400) {
            print_message("request %zu: %d\n", i, r.status);
        }
        assert_error(&r, 400, "bad_request");
    }
    assert_int_equal(calls, 0);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    struct reply r;
    static const char a[] = "GET /health\0z HTTP/1.1\r\n\r\n";
    static const char b[] = "GET /healthz HTTP/1.1\r\nX: a\0b\r\n\r\n";
    static const char c[] = "\0\0\0\0";
    handle(a, sizeof(a) - 1, &r);
    assert_error(&r, 400, "bad_request");
    handle(b, sizeof(b) - 1, &r);
    assert_error(&r, 400, "bad_request");
    handle(c, sizeof(c) - 1, &r);
    assert_error(&r, 400, "bad_request");
    /* A NUL arriving first is answered at once, without waiting for more. */
    handle(c, 1, &r);
    assert_error(&r, 400, "bad_request");
}

/* A head of exactly `total` bytes: request line, one padding header, the empty line. */
static char *head_of(size_t total)
{
    static const char start[] = "GET /healthz HTTP/1.1\r\nX-Pad: ";
    static const char end[] = "\r\n\r\n";
    size_t fixed = sizeof(start) - 1 + sizeof(end) - 1;
    assert_true(total > fixed);
    char *s = malloc(total + 1);
    assert_non_null(s);
    memcpy(s, start, sizeof(start) - 1);
    memset(s + sizeof(start) - 1, 'p', total - fixed);
    memcpy(s + total - (sizeof(end) - 1), end, sizeof(end));
    assert_int_equal(strlen(s), total);
    return s;
}

static void test_head_limit_431(void **state)
{
    (void)state;
    struct reply r;
    char *s = head_of(OSP_HTTPMINI_HEAD_MAX);
    handle_str(s, &r);
    assert_int_equal(r.status, 200);
    /* One byte short of the whole head is still "more", never 431. */
    handle(s, OSP_HTTPMINI_HEAD_MAX - 1, &r);
    assert_int_equal(r.status, 0);
    free(s);

    s = head_of(OSP_HTTPMINI_HEAD_MAX + 1);
    handle(s, OSP_HTTPMINI_HEAD_MAX - 1, &r);
    assert_int_equal(r.status, 0);
    handle(s, OSP_HTTPMINI_HEAD_MAX, &r);
    assert_error(&r, 431, "header_too_large");
    handle_str(s, &r);
    assert_error(&r, 431, "header_too_large");
    free(s);

    /* A request line that never ends, and endless empty lines. */
    size_t n = 3 * OSP_HTTPMINI_HEAD_MAX;
    s = malloc(n);
    assert_non_null(s);
    memcpy(s, "GET /", 5);
    memset(s + 5, 'a', n - 5);
    handle(s, n, &r);
    assert_error(&r, 431, "header_too_large");
    for (size_t i = 0; i < n; i += 2) {
        s[i] = '\r';
        s[i + 1] = '\n';
    }
    handle(s, n, &r);
    assert_error(&r, 431, "header_too_large");
    free(s);

    /* Header section of many small fields. */
    struct osp_buf big = OSP_BUF_INIT;
    osp_buf_appendf(&big, "GET /healthz HTTP/1.1\r\n");
    for (int i = 0; big.len < 2 * OSP_HTTPMINI_HEAD_MAX; i++) {
        osp_buf_appendf(&big, "X-%d: v\r\n", i);
    }
    osp_buf_appendf(&big, "\r\n");
    handle((const char *)big.data, big.len, &r);
    assert_error(&r, 431, "header_too_large");
    osp_buf_deinit(&big);
}

static void test_pieces(void **state)
{
    (void)state;
    static const char req[] = "GET /v1/items/abc?q=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n";
    size_t n = sizeof(req) - 1;
    struct reply whole, r;
    handle(req, n, &whole);
    assert_int_equal(whole.status, 200);
    /* Every proper prefix needs more and produces nothing; no handler runs. */
    calls = 0;
    for (size_t i = 0; i < n; i++) {
        handle(req, i, &r);
        assert_int_equal(r.status, 0);
    }
    assert_int_equal(calls, 0);

    /* The parser reports the head's size; bytes after it (pipelined) are not looked at. */
    struct osp_httpmini_head *h = malloc(sizeof(*h));
    assert_non_null(h);
    char two[256];
    snprintf(two, sizeof(two), "%s%s\x01\x02garbage", req, "GET /nope HTTP/1.1\r\n\r\n");
    assert_int_equal(osp_httpmini_parse(two, strlen(two), h), OSP_HTTPMINI_DONE);
    assert_int_equal(h->head_len, n);
    assert_string_equal(h->method, "GET");
    assert_false(h->is_head);
    assert_int_equal(h->version_minor, 1);
    assert_string_equal(h->path, "/v1/items/abc");
    assert_null(h->error);
    handle_str(two, &r);
    assert_int_equal(r.len, whole.len);
    assert_memory_equal(r.text, whole.text, r.len);

    /* A bad request line is answered when the line ends, before the head is complete. */
    assert_int_equal(osp_httpmini_parse("GET /x SPDY/3\r\n", 15, h), 400);
    assert_non_null(h->error);
    assert_int_equal(osp_httpmini_parse("GET /x HTTP/1.1\r\n", 17, h), OSP_HTTPMINI_MORE);
    /* A trailing CR is undecided until the next byte. */
    assert_int_equal(osp_httpmini_parse("GET /x HTTP/1.1\r", 16, h), OSP_HTTPMINI_MORE);
    assert_int_equal(osp_httpmini_parse("GET /x HTTP/1.1\rX", 17, h), 400);
    assert_int_equal(osp_httpmini_parse("", 0, h), OSP_HTTPMINI_MORE);
    assert_int_equal(osp_httpmini_parse("HEAD /x HTTP/1.0\r\n\r\n", 20, h), OSP_HTTPMINI_DONE);
    assert_true(h->is_head);
    assert_int_equal(h->version_minor, 0);
    free(h);
}

/* xorshift: reproducible garbage. */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_garbage(void **state)
{
    (void)state;
    static const char alphabet[] = "GETHAD /%?:\r\n\t0123456789abcfHTP.x\x80\xff\x00";
    uint32_t seed = 0x2545F491u;
    char buf[3 * OSP_HTTPMINI_HEAD_MAX];
    calls = 0;
    for (int round = 0; round < 3000; round++) {
        size_t n = rnd(&seed) % (round % 10 == 0 ? sizeof(buf) : 200);
        for (size_t i = 0; i < n; i++) {
            uint32_t x = rnd(&seed);
            buf[i] = round % 2 ? (char)x : alphabet[x % (sizeof(alphabet) - 1)];
        }
        /* Some rounds start like a real request, to get past the request line. */
        if (round % 3 == 0 && n > 24) {
            memcpy(buf, "GET /healthz HTTP/1.1\r\n", 23);
        }
        struct reply r;
        handle(buf, n, &r);
        assert_true(r.status == 0 || (r.status >= 200 && r.status <= 599));
        if (r.status == 0) {
            assert_true(n < OSP_HTTPMINI_HEAD_MAX);
        } else if (r.status >= 400) {
            assert_full_body(&r);
        }
    }
}

/* ---- Socket layer ---- */

struct srv {
    struct ev_loop *loop;
    struct osp_httpmini *h;
};

static void srv_start(struct srv *s, unsigned conn_limit, unsigned timeout_s)
{
    s->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(s->loop);
    struct osp_httpmini_opts o = {"127.0.0.1:0", conn_limit, timeout_s};
    struct osp_err err = {0, ""};
    s->h = osp_httpmini_new(s->loop, &o, &err);
    if (s->h == NULL) {
        fail_msg("osp_httpmini_new: %s", err.msg);
    }
    assert_true(osp_httpmini_port(s->h) > 0);
    add_routes(osp_httpmini_router(s->h));
}

static void srv_stop(struct srv *s)
{
    osp_httpmini_free(s->h);
    /* Nothing of the server may stay behind on the loop. */
    assert_int_equal(ev_run(s->loop, EVRUN_NOWAIT), 0);
    ev_loop_destroy(s->loop);
}

static double now_s(void)
{
    return (double)osp_mono_ns() / 1e9;
}

/* Run the loop for up to ms milliseconds, or until conns open connections remain (-1: no
 * condition). Returns whether the condition was met. */
static bool pump(struct srv *s, int ms, int conns)
{
    double end = now_s() + ms / 1000.0;
    do {
        ev_run(s->loop, EVRUN_NOWAIT);
        if (conns >= 0 && osp_httpmini_conns(s->h) == (unsigned)conns) {
            return true;
        }
        (void)poll(NULL, 0, 2);
    } while (now_s() < end);
    return false;
}

static int client(const struct srv *s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)osp_httpmini_port(s->h));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Loopback connects complete in the kernel's backlog; the server accepts later. */
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    return fd;
}

static void send_all(struct srv *s, int fd, const void *p, size_t n)
{
    const char *c = p;
    double end = now_s() + 10;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w > 0) {
            c += w;
            n -= (size_t)w;
        } else {
            assert_true(w < 0 && errno == EAGAIN);
            assert_true(now_s() < end);
            pump(s, 5, -1);
        }
    }
}

/* Run the loop and read from fd until EOF or reset, or ms pass. Returns 1 at EOF, -errno on
 * a reset, 0 on timeout. The bytes read are appended to out (may be NULL). */
static int read_to_eof(struct srv *s, int fd, struct osp_buf *out, int ms)
{
    double end = now_s() + ms / 1000.0;
    for (;;) {
        char b[65536];
        ssize_t n = recv(fd, b, sizeof(b), 0);
        if (n > 0) {
            if (out != NULL) {
                osp_buf_append(out, b, (size_t)n);
            }
            continue;
        }
        if (n == 0) {
            return 1;
        }
        if (errno != EAGAIN) {
            return -errno;
        }
        if (now_s() >= end) {
            return 0;
        }
        ev_run(s->loop, EVRUN_NOWAIT);
        struct pollfd p = {fd, POLLIN, 0};
        (void)poll(&p, 1, 2);
    }
}

static void close_with_reset(int fd)
{
    struct linger l = {1, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
    close(fd);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

static bool starts_with(const struct osp_buf *b, const char *s)
{
    return b->len >= strlen(s) && memcmp(b->data, s, strlen(s)) == 0;
}

static void test_socket_reply(void **state)
{
    (void)state;
    struct srv s;
    srv_start(&s, 0, 0);
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

    int fd = client(&s);
    send_all(&s, fd, req, sizeof(req) - 1);
    struct osp_buf out = OSP_BUF_INIT;
    assert_int_equal(read_to_eof(&s, fd, &out, 5000), 1);
    assert_true(starts_with(&out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(osp_buf_cstr(&out), "\r\n\r\n{\"status\":\"ok\"}\n"));
    close(fd);
    assert_true(pump(&s, 3000, 0));
    assert_int_equal(osp_httpmini_requests(s.h, 2), 1);

    /* The same request a byte at a time, the loop running in between. */
    fd = client(&s);
    for (size_t i = 0; i < sizeof(req) - 1; i++) {
        send_all(&s, fd, req + i, 1);
        pump(&s, 3, -1);
    }
    osp_buf_reset(&out);
    assert_int_equal(read_to_eof(&s, fd, &out, 5000), 1);
    assert_true(starts_with(&out, "HTTP/1.1 200 OK\r\n"));
    close(fd);

    /* Pipelined: one reply, then the connection closes. The second request is never run. */
    fd = client(&s);
    calls = 0;
    static const char two[] = "GET /healthz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n";
    send_all(&s, fd, two, sizeof(two) - 1);
    osp_buf_reset(&out);
    assert_int_equal(read_to_eof(&s, fd, &out, 5000), 1);
    assert_true(starts_with(&out, "HTTP/1.1 200 OK\r\n"));
    assert_null(strstr(osp_buf_cstr(&out) + 1, "HTTP/1.1"));
    assert_int_equal(calls, 1);
    close(fd);

    /* A request with a body gets 413 (the server drains what it did not read, so the reply
     * is not lost to a reset), and garbage gets 400. */
    fd = client(&s);
    char body[32768];
    memset(body, 'b', sizeof(body));
    char head[128];
    snprintf(head, sizeof(head), "POST /healthz HTTP/1.1\r\nContent-Length: %zu\r\n\r\n",
             sizeof(body));
    send_all(&s, fd, head, strlen(head));
    send_all(&s, fd, body, sizeof(body));
    osp_buf_reset(&out);
    assert_int_equal(read_to_eof(&s, fd, &out, 5000), 1);
    assert_true(starts_with(&out, "HTTP/1.1 413 "));
    close(fd);
    fd = client(&s);
    send_all(&s, fd, "\x16\x03\x01\x00\xa5\x01", 6);
    osp_buf_reset(&out);
    assert_int_equal(read_to_eof(&s, fd, &out, 5000), 1);
    assert_true(starts_with(&out, "HTTP/1.1 400 "));
    close(fd);

    /* A reply larger than the socket buffer goes out through EV_WRITE. */
    fd = client(&s);
    send_all(&s, fd, "GET /big HTTP/1.1\r\n\r\n", 21);
    osp_buf_reset(&out);
    assert_int_equal(read_to_eof(&s, fd, &out, 10000), 1);
    assert_true(starts_with(&out, "HTTP/1.1 200 OK\r\n"));
    assert_true(out.len > 8u * 1024 * 1024);
    close(fd);

    assert_true(pump(&s, 3000, 0));
    assert_int_equal(osp_httpmini_requests(s.h, 2), 4);
    assert_int_equal(osp_httpmini_requests(s.h, 4), 2);
    assert_int_equal(osp_httpmini_requests(s.h, 5), 0);
    assert_int_equal(osp_httpmini_requests(s.h, 7), 0);
    osp_buf_deinit(&out);
    srv_stop(&s);
}

static void test_socket_timeout(void **state)
{
    (void)state;
    struct srv s;
    srv_start(&s, 0, 1);
    /* Slowloris: a byte now and then, never the end of the head. */
    int slow = client(&s);
    int silent = client(&s);
    double t0 = now_s();
    send_all(&s, slow, "GET /healthz HTTP/1.1\r\n", 23);
    int rc = 0;
    for (int i = 0; i < 40 && rc == 0; i++) {
        (void)send(slow, "X", 1, MSG_NOSIGNAL);
        rc = read_to_eof(&s, slow, NULL, 100);
    }
    double took = now_s() - t0;
    assert_int_not_equal(rc, 0);
    assert_true(took >= 0.9 && took < 3.0);
    assert_int_not_equal(read_to_eof(&s, silent, NULL, 2000), 0);
    assert_true(pump(&s, 1000, 0));
    close(slow);
    close(silent);
    assert_int_equal(osp_httpmini_requests(s.h, 2) + osp_httpmini_requests(s.h, 4), 0);
    srv_stop(&s);
}

static void test_socket_conn_limit(void **state)
{
    (void)state;
    struct srv s;
    srv_start(&s, 2, 5);
    int a = client(&s), b = client(&s);
    assert_true(pump(&s, 2000, 2));
    /* Over the limit: an immediate 503 (or a reset) and EOF, well before any timeout. */
    int c = client(&s);
    struct osp_buf out = OSP_BUF_INIT;
    double t0 = now_s();
    int rc = read_to_eof(&s, c, &out, 2000);
    assert_int_not_equal(rc, 0);
    assert_true(now_s() - t0 < 1.0);
    if (rc == 1) {
        assert_true(starts_with(&out, "HTTP/1.1 503 "));
        assert_non_null(strstr(osp_buf_cstr(&out), "\"busy\""));
    } else {
        print_message("over the limit: reset (%s) instead of the 503\n", strerror(-rc));
    }
    close(c);
    assert_int_equal(osp_httpmini_conns(s.h), 2);
    assert_int_equal(osp_httpmini_requests(s.h, 5), 1);

    /* A slot frees when a client goes away; the next one is served. */
    close(a);
    assert_true(pump(&s, 2000, 1));
    int d = client(&s);
    send_all(&s, d, "GET /healthz HTTP/1.1\r\n\r\n", 25);
    osp_buf_reset(&out);
    assert_int_equal(read_to_eof(&s, d, &out, 5000), 1);
    assert_true(starts_with(&out, "HTTP/1.1 200 OK\r\n"));
    close(d);
    close(b);
    assert_true(pump(&s, 3000, 0));
    osp_buf_deinit(&out);
    srv_stop(&s);
}

static void test_socket_resets(void **state)
{
    (void)state;
    int fds_before = count_fds();
    struct srv s;
    srv_start(&s, 16, 30); /* a timeout far beyond the waits below: none may hide a leak */
    static const char *const sends[] = {
        "",
        "GET /heal",
        "GET /healthz HTTP/1.1\r\n",
        "GET /healthz HTTP/1.1\r\n\r\n",
        "GET /big HTTP/1.1\r\n\r\n",
        "\x00\xff\xfe garbage \r\n\r\n",
    };
    for (int round = 0; round < 300; round++) {
        int fd = client(&s);
        const char *m = sends[round % OSP_ARRAY_LEN(sends)];
        size_t n = round % OSP_ARRAY_LEN(sends) == 5 ? 16 : strlen(m);
        if (n > 0) {
            send_all(&s, fd, m, n);
        }
        /* Sometimes let the server get going (mid-reply, lingering), sometimes not. */
        if (round % 4 != 0) {
            pump(&s, 1, -1);
        }
        if (round % 2 == 0) {
            close_with_reset(fd);
        } else {
            close(fd);
        }
        if (round % 16 == 15) {
            pump(&s, 5, -1); /* stay below the limit */
        }
    }
    /* Every connection ends on the peer's EOF or reset, not on the timer. */
    assert_true(pump(&s, 1500, 0)); /* < the 2 s linger cap too */
    srv_stop(&s);
    if (fds_before >= 0) {
        assert_int_equal(count_fds(), fds_before);
    }
}

static void test_addresses(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct osp_err err = {0, ""};
    static const char *const bad[] = {"nocolon", "127.0.0.1:", "127.0.0.1:http",
                                      "[::1",    "[::1]",      "not-an-address"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(bad); i++) {
        struct osp_httpmini_opts o = {bad[i], 0, 0};
        err = (struct osp_err){0, ""};
        assert_null(osp_httpmini_new(loop, &o, &err));
        assert_int_equal(err.code, OSP_EINVAL);
        assert_non_null(strstr(err.msg, "http address"));
    }
    struct osp_httpmini_opts none = {NULL, 0, 0};
    assert_null(osp_httpmini_new(loop, &none, NULL));

    /* A port in use: -EADDRINUSE with the address in the message. */
    struct osp_httpmini_opts any = {"127.0.0.1:0", 0, 0};
    struct osp_httpmini *a = osp_httpmini_new(loop, &any, &err);
    assert_non_null(a);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", osp_httpmini_port(a));
    struct osp_httpmini_opts same = {addr, 0, 0};
    err = (struct osp_err){0, ""};
    assert_null(osp_httpmini_new(loop, &same, &err));
    assert_int_equal(err.code, -EADDRINUSE);
    assert_non_null(strstr(err.msg, addr));
    osp_httpmini_free(a);

    /* IPv6 loopback when the host has it. */
    struct osp_httpmini_opts v6 = {"[::1]:0", 0, 0};
    err = (struct osp_err){0, ""};
    struct osp_httpmini *b = osp_httpmini_new(loop, &v6, &err);
    if (b != NULL) {
        assert_true(osp_httpmini_port(b) > 0);
        osp_httpmini_free(b);
    } else {
        print_message("no IPv6 loopback here: %s\n", err.msg);
    }
    osp_httpmini_free(NULL);
    assert_int_equal(ev_run(loop, EVRUN_NOWAIT), 0);
    ev_loop_destroy(loop);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_query_and_decoding),
        cmocka_unit_test(test_404_405),
        cmocka_unit_test(test_body_413),
        cmocka_unit_test(test_bad_400),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_head_limit_431),
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_socket_reply),
        cmocka_unit_test(test_socket_timeout),
        cmocka_unit_test(test_socket_conn_limit),
        cmocka_unit_test(test_socket_resets),
        cmocka_unit_test(test_addresses),
    };
    return cmocka_run_group_tests(tests, setup_router, teardown_router);
}
