/* SPDX-License-Identifier: MIT */
/* test_http_router.c — the router (literals, {name} captures, 404, 405 with Allow, order,
 * limits) and the server on a private libev loop over loopback: a forked client speaks raw
 * HTTP/1.1 while the parent runs the loop, so the epoll/timer glue, body limit (413 by
 * Content-Length and by chunked bytes), auth hook (401), content-type rule (415), JSON
 * helpers (400 bad_json) and query/header access are exercised end to end. No servers needed
 * beyond 127.0.0.1. */
#include "common/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static void h_noop(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    (void)resp;
    (void)arg;
}

/* ---- Router ---- */

static void test_router_match(void **state)
{
    (void)state;
    struct osp_http_router *r = osp_http_router_new();
    int a = 1, b = 2, c = 3, d = 4;
    osp_http_router_add(r, "GET", "/v1/jobs", 0, h_noop, &a);
    osp_http_router_add(r, "POST", "/v1/jobs", OSP_HTTP_AUTH, h_noop, &b);
    osp_http_router_add(r, "GET", "/v1/jobs/{id}", 0, h_noop, &c);
    osp_http_router_add(r, "POST", "/v1/queues/{kind}/pause", 0, h_noop, &d);
    struct osp_http_match m;

    osp_http_router_match(r, "GET", "/v1/jobs", &m);
    assert_int_equal(m.status, 200);
    assert_ptr_equal(m.arg, &a);
    assert_int_equal(m.nparams, 0);

    osp_http_router_match(r, "POST", "/v1/jobs", &m);
    assert_int_equal(m.status, 200);
    assert_ptr_equal(m.arg, &b);
    assert_int_equal(m.flags, OSP_HTTP_AUTH);

    osp_http_router_match(r, "GET", "/v1/jobs/abc-123", &m);
    assert_int_equal(m.status, 200);
    assert_ptr_equal(m.arg, &c);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0], "abc-123");

    osp_http_router_match(r, "POST", "/v1/queues/noop/pause", &m);
    assert_int_equal(m.status, 200);
    assert_string_equal(m.params[0], "noop");

    osp_http_router_match(r, "DELETE", "/v1/jobs", &m);
    assert_int_equal(m.status, 405);
    assert_null(m.fn);
    assert_string_equal(m.allow, "GET, POST");

    osp_http_router_match(r, "GET", "/v1/queues/noop/pause", &m);
    assert_int_equal(m.status, 405);
    assert_string_equal(m.allow, "POST");

    static const char *const missing[] = {
        "/",       "/v1",       "/v1/jobs/",         "/v1/jobs/x/y",
        "/v1/job", "/v1/jobsx", "/v1/queues//pause", "//v1/jobs",
        ""};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        osp_http_router_match(r, "GET", missing[i], &m);
        if (m.status != 404) {
            fail_msg("%s matched (status %d)", missing[i], m.status);
        }
    }
    char longid[OSP_HTTP_PARAM_MAX + 20];
    memset(longid, 'a', sizeof(longid));
    memcpy(longid, "/v1/jobs/", 9);
    longid[sizeof(longid) - 1] = '\0';
    osp_http_router_match(r, "GET", longid, &m);
    assert_int_equal(m.status, 404);
    osp_http_router_free(r);
}

static void test_router_order(void **state)
{
    (void)state;
    struct osp_http_router *r = osp_http_router_new();
    int lit = 1, pat = 2;
    osp_http_router_add(r, "GET", "/v1/schedules/special", 0, h_noop, &lit);
    osp_http_router_add(r, "GET", "/v1/schedules/{name}", 0, h_noop, &pat);
    struct osp_http_match m;
    osp_http_router_match(r, "GET", "/v1/schedules/special", &m);
    assert_ptr_equal(m.arg, &lit);
    osp_http_router_match(r, "GET", "/v1/schedules/other", &m);
    assert_ptr_equal(m.arg, &pat);
    assert_string_equal(m.params[0], "other");
    osp_http_router_free(r);
}

/* ---- Server over loopback ---- */

static void h_echo(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)arg;
    json_t *body = osp_http_body_object(req, resp);
    if (body == NULL) {
        return;
    }
    const char *q = osp_http_query(req, "q");
    const char *h = osp_http_header(req, "X-Test");
    json_object_set_new(body, "q", q ? json_string(q) : json_null());
    json_object_set_new(body, "h", h ? json_string(h) : json_null());
    osp_http_reply_json(resp, 201, body);
}

static void h_item(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)arg;
    if (strcmp(req->params[0], "missing") == 0) {
        osp_http_reply_error(resp, 404, "not_found", "no item %s", req->params[0]);
        return;
    }
    osp_http_reply_json(resp, 200, json_pack("{s:s}", "id", req->params[0]));
}

static void h_text(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    (void)arg;
    osp_http_reply_text(resp, 200, "text/plain; version=0.0.4", "m 1\n", 4);
}

static void h_silent(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    (void)resp;
    (void)arg;
}

static bool auth(const char *hdr, void *arg)
{
    (void)arg;
    return hdr != NULL && strcmp(hdr, "Bearer sesame") == 0;
}

/* Send one request, read the whole response (Connection: close). Child side. */
static void exchange(unsigned port, const char *req, size_t len, FILE *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(out, "CONNECT FAILED\n=====\n");
        close(fd);
        return;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) {
            break; /* the server may answer 413 and close before reading everything */
        }
        off += (size_t)n;
    }
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
        fwrite(buf, 1, (size_t)n, out);
    }
    fprintf(out, "\n=====\n");
    close(fd);
}

static void client(unsigned port, int wfd)
{
    FILE *out = fdopen(wfd, "w");
    char big[4096];
    static const char *const reqs[] = {
        /* 0 */ "GET /item/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        /* 1 */ "GET /item/missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        /* 2 */ "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        /* 3 */ "DELETE /item/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        /* 4 */
        "POST /echo?q=a%20b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Authorization: Bearer sesame\r\nContent-Type: application/json; charset=utf-8\r\n"
        "X-Test: yes\r\nContent-Length: 9\r\n\r\n{\"a\": 1}\n",
        /* 5 */
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        /* 6 */
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Authorization: Bearer sesame\r\nContent-Type: text/plain\r\n"
        "Content-Length: 2\r\n\r\n{}",
        /* 7 */
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Authorization: Bearer sesame\r\nContent-Type: application/json\r\n"
        "Content-Length: 5\r\n\r\n{\"a\":",
        /* 8 */
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Authorization: Bearer sesame\r\nContent-Type: application/json\r\n"
        "Content-Length: 3\r\n\r\n[1]",
        /* 9 */
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Authorization: Bearer sesame\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000\r\n\r\n",
        /* 10 */ NULL, /* chunked, over the limit: built below */
        /* 11 */ "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        /* 12 */ "GET /silent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        if (reqs[i] != NULL) {
            exchange(port, reqs[i], strlen(reqs[i]), out);
            continue;
        }
        int n = snprintf(big, sizeof(big),
                         "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Authorization: Bearer sesame\r\nContent-Type: application/json\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n");
        for (int k = 0; k < 3; k++) {
            n += snprintf(big + n, sizeof(big) - (size_t)n, "258\r\n");
            memset(big + n, ' ', 600);
            n += 600;
            n += snprintf(big + n, sizeof(big) - (size_t)n, "\r\n");
        }
        n += snprintf(big + n, sizeof(big) - (size_t)n, "0\r\n\r\n");
        exchange(port, big, (size_t)n, out);
    }
    fclose(out);
}

struct collect {
    ev_io io;
    ev_timer deadline;
    char buf[65536];
    size_t len;
    bool timed_out;
};

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct collect *c = (struct collect *)w;
    ssize_t n = read(w->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
    if (n <= 0) {
        ev_io_stop(loop, w);
        ev_timer_stop(loop, &c->deadline);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    c->len += (size_t)n;
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct collect *c = (struct collect *)(void *)((char *)w - offsetof(struct collect, deadline));
    c->timed_out = true;
    ev_io_stop(loop, &c->io);
    ev_break(loop, EVBREAK_ALL);
}

/* The i-th response of the transcript (static buffer), "" if absent. */
static const char *nth(const char *all, int i)
{
    static char one[16384];
    const char *p = all;
    for (int k = 0; k < i && p != NULL; k++) {
        p = strstr(p, "\n=====\n");
        p = p ? p + 7 : NULL;
    }
    if (p == NULL) {
        return "";
    }
    const char *e = strstr(p, "\n=====\n");
    size_t n = e ? (size_t)(e - p) : strlen(p);
    n = n < sizeof(one) - 1 ? n : sizeof(one) - 1;
    memcpy(one, p, n);
    one[n] = '\0';
    return one;
}

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL) {                                                     \
            fail_msg("expected \"%s\" in:\n%s", (needle), (hay));                                  \
        }                                                                                          \
    } while (0)

static void test_server_loopback(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct osp_http_opts opts = {"127.0.0.1:0", 1024, 0, 0};
    struct osp_err err = {0, ""};
    struct osp_http *h = osp_http_new(loop, &opts, &err);
    assert_non_null(h);
    unsigned port = osp_http_port(h);
    assert_true(port > 0);
    struct osp_http_router *r = osp_http_router(h);
    osp_http_set_auth(h, auth, NULL);
    osp_http_router_add(r, "GET", "/item/{id}", 0, h_item, NULL);
    osp_http_router_add(r, "POST", "/echo", OSP_HTTP_AUTH, h_echo, NULL);
    osp_http_router_add(r, "GET", "/metrics", 0, h_text, NULL);
    osp_http_router_add(r, "GET", "/silent", 0, h_silent, NULL);

    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        client(port, pfd[1]);
        _exit(0);
    }
    close(pfd[1]);
    struct collect *c = calloc(1, sizeof(*c));
    ev_io_init(&c->io, on_read, pfd[0], EV_READ);
    ev_io_start(loop, &c->io);
    ev_timer_init(&c->deadline, on_deadline, 20.0, 0.0);
    ev_timer_start(loop, &c->deadline);
    ev_run(loop, 0);
    int status = 0;
    waitpid(pid, &status, 0);
    close(pfd[0]);
    assert_false(c->timed_out);
    c->buf[c->len] = '\0';
    const char *all = c->buf;

    assert_contains(nth(all, 0), "HTTP/1.1 200");
    assert_contains(nth(all, 0), "{\"id\":\"abc\"}");
    assert_contains(nth(all, 0), "Content-Type: application/json");
    assert_contains(nth(all, 1), "HTTP/1.1 404");
    assert_contains(nth(all, 1),
                    "{\"error\":{\"code\":\"not_found\",\"message\":\"no item missing\"}}");
    assert_contains(nth(all, 2), "HTTP/1.1 404");
    assert_contains(nth(all, 2), "\"code\":\"not_found\"");
    assert_contains(nth(all, 3), "HTTP/1.1 405");
    assert_contains(nth(all, 3), "Allow: GET");
    assert_contains(nth(all, 3), "\"code\":\"method_not_allowed\"");
    assert_contains(nth(all, 4), "HTTP/1.1 201");
    assert_contains(nth(all, 4), "{\"a\":1,\"q\":\"a b\",\"h\":\"yes\"}");
    assert_contains(nth(all, 5), "HTTP/1.1 401");
    assert_contains(nth(all, 5), "WWW-Authenticate: Bearer");
    assert_contains(nth(all, 5), "\"code\":\"unauthorized\"");
    assert_contains(nth(all, 6), "HTTP/1.1 415");
    assert_contains(nth(all, 6), "\"code\":\"unsupported_media_type\"");
    assert_contains(nth(all, 7), "HTTP/1.1 400");
    assert_contains(nth(all, 7), "\"code\":\"bad_json\"");
    assert_contains(nth(all, 8), "HTTP/1.1 400");
    assert_contains(nth(all, 8), "must be a JSON object");
    assert_contains(nth(all, 9), "HTTP/1.1 413");
    assert_contains(nth(all, 9), "\"code\":\"too_large\"");
    assert_contains(nth(all, 10), "HTTP/1.1 413");
    assert_contains(nth(all, 10), "\"code\":\"too_large\"");
    assert_contains(nth(all, 11), "HTTP/1.1 200");
    assert_contains(nth(all, 11), "Content-Type: text/plain; version=0.0.4");
    assert_contains(nth(all, 11), "\r\n\r\nm 1\n");
    assert_contains(nth(all, 12), "HTTP/1.1 500");
    assert_contains(nth(all, 12), "\"code\":\"internal\"");
    assert_true(osp_http_requests(h, 2) == 3);
    assert_true(osp_http_requests(h, 4) == 9);
    assert_true(osp_http_requests(h, 5) == 1);

    free(c);
    osp_http_free(h);
    /* Every watcher of the server is gone. */
    assert_int_equal(ev_run(loop, EVRUN_NOWAIT), 0);
    ev_loop_destroy(loop);
}

static void test_bad_address(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct osp_err err = {0, ""};
    static const char *const bad[] = {"nocolon", "127.0.0.1:", "127.0.0.1:http", "[::1", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        struct osp_http_opts opts = {bad[i], 0, 0, 0};
        assert_null(osp_http_new(loop, &opts, &err));
        assert_int_equal(err.code, OSP_EINVAL);
    }
    struct osp_http_opts opts = {NULL, 0, 0, 0};
    assert_null(osp_http_new(loop, &opts, &err));
    ev_loop_destroy(loop);
}

/* The raw request target, before decoding: control bytes raw or escaped, bad escapes, length. */
static void test_target_check(void **state)
{
    (void)state;
    static const struct {
        const char *target;
        int status;
    } cases[] = {
        {"/v1/jobs", 0},
        {"/v1/jobs?kind=noop&state=dead", 0},
        {"/v1/schedules/%ff", 0},         /* a byte, not a control byte: the grammar judges it */
        {"/v1/schedules/a%20b", 0},
        {"/v1/schedules/every-minute%00zzz", 400},
        {"/v1/schedules/x%0A", 400},
        {"/v1/schedules/x%0d", 400},
        {"/v1/schedules/x%1F", 400},
        {"/v1/schedules/x%7f", 400},
        {"/v1/jobs?kind=noop%00", 400},
        {"/v1/jobs/\x01", 400},
        {"/v1/jobs/\x7f", 400},
        {"/v1/jobs/%", 400},
        {"/v1/jobs/%4", 400},
        {"/v1/jobs/%zz", 400},
        {"/v1/jobs/%g0", 400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = NULL;
        int st = osp_http_target_check(cases[i].target, strlen(cases[i].target), &why);
        if (st != cases[i].status) {
            fail_msg("%s: %d, want %d", cases[i].target, st, cases[i].status);
        }
        assert_true(st == 0 ? why == NULL : why != NULL && why[0] != '\0');
    }
    /* A NUL inside the bytes counts too (the length is what was received). */
    const char *why = NULL;
    assert_int_equal(osp_http_target_check("/v1/jobs/a\0b", 12, &why), 400);
    char *big = malloc(OSP_HTTP_URI_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', OSP_HTTP_URI_MAX + 1);
    big[0] = '/';
    assert_int_equal(osp_http_target_check(big, OSP_HTTP_URI_MAX, &why), 0);
    assert_int_equal(osp_http_target_check(big, OSP_HTTP_URI_MAX + 1, &why), 414);
    free(big);
}

/* Handlers learn each {name}'s name, so that grammars are applied by name. */
static void test_param_names(void **state)
{
    (void)state;
    struct osp_http_router *r = osp_http_router_new();
    osp_http_router_add(r, "POST", "/v1/dead/{kind}/retry/{id}", 0, h_echo, NULL);
    struct osp_http_match m;
    osp_http_router_match(r, "POST", "/v1/dead/noop/retry/abc", &m);
    assert_int_equal(m.status, 200);
    struct osp_http_req req;
    memset(&req, 0, sizeof(req));
    osp_http_req_params(&req, &m);
    assert_int_equal(req.nparams, 2);
    assert_string_equal(req.param_names[0], "kind");
    assert_string_equal(req.params[0], "noop");
    assert_string_equal(req.param_names[1], "id");
    assert_string_equal(req.params[1], "abc");
    osp_http_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_match),
        cmocka_unit_test(test_router_order),
        cmocka_unit_test(test_target_check),
        cmocka_unit_test(test_param_names),
        cmocka_unit_test(test_server_loopback),
        cmocka_unit_test(test_bad_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
