/* SPDX-License-Identifier: MIT */
/* http.h — a small JSON-over-HTTP/1.1 server: libmicrohttpd driven from a libev loop, a
 * router (method + path pattern with {name} segments), a body size limit, bearer-token
 * authentication hook and JSON reply helpers. Used by the scheduler's API and the worker's
 * /metrics /healthz /readyz. The router and the body/reply helpers (http_router.c) need no
 * libmicrohttpd, so unit tests and fuzzers can drive them without a socket.
 *
 * A request head that does not fit OSP_HTTP_HEAD_POOL never reaches these rules: libmicrohttpd
 * itself answers it (414 or 431) with its own body, before any callback of ours runs. The pool
 * is sized so that this only happens far beyond the limits above (docs/api.md "Errors").
 *
 * Threading: none. libmicrohttpd runs in external-poll epoll mode; an ev_io watches its epoll
 * fd and an ev_timer follows MHD_get_timeout(); MHD_run() is called after each event, and
 * handlers run synchronously inside it on the loop's thread. A handler fills the response
 * struct it is given and returns; the server sends it after the handler returns.
 *
 * Rules applied before a handler runs (in this order), each with a JSON error body
 * {"error": {"code", "message"}}:
 *   414 uri_too_long        request target (path and query, as sent) above OSP_HTTP_URI_MAX
 *   400 bad_request         a control byte in the request target, raw or percent-encoded
 *                           (%00-%1F, %7F), or a malformed percent-escape ("%", "%zz"):
 *                           decoded, "/v1/schedules/a%00b" would act on "a"
 *   431 header_too_large    header fields (names and values) above OSP_HTTP_HEADERS_MAX
 *   413 too_large           body (Content-Length or received bytes) above max_body
 *   404 not_found           no route matches the path
 *   405 method_not_allowed  a route matches the path but not the method (Allow header set)
 *   401 unauthorized        the route has OSP_HTTP_AUTH and the auth hook said no
 *   415 unsupported_media_type  a non-empty body whose Content-Type is not application/json
 */
#ifndef OSP_HTTP_H
#define OSP_HTTP_H

#include "common/buf.h"
#include "common/err.h"

#include <ev.h>
#include <jansson.h>

#define OSP_HTTP_MAX_PARAMS   4   /* {name} segments per pattern */
#define OSP_HTTP_PARAM_MAX    128 /* longest accepted value of one {name} segment */
#define OSP_HTTP_DEFAULT_BODY (1024 * 1024)
#define OSP_HTTP_URI_MAX      8192        /* request target bytes, as sent: larger gets 414 */
#define OSP_HTTP_HEADERS_MAX  16384       /* header names + values: larger gets 431 */
#define OSP_HTTP_HEAD_POOL    (32 * 1024) /* libmicrohttpd memory per connection */
#define OSP_HTTP_NAME_MAX     31          /* longest {name} in a route pattern */
#define OSP_HTTP_RESP_HEADERS 1536        /* bytes of extra response header lines */

/* Route flags. */
enum {
    OSP_HTTP_AUTH = 1u, /* the auth hook must accept the request's Authorization header */
    OSP_HTTP_FORM = 2u, /* the body may also be application/x-www-form-urlencoded (HTML forms) */
};

struct osp_http;
struct osp_http_router;

/* One request, borrowed by the handler for the duration of the call. */
struct osp_http_req {
    const char *method;                           /* "GET", "POST", ... */
    const char *path;                             /* without the query string */
    const char *params[OSP_HTTP_MAX_PARAMS];      /* {name} values, in pattern order, decoded */
    const char *param_names[OSP_HTTP_MAX_PARAMS]; /* the names: "id" for {id} */
    size_t nparams;
    const char *body; /* NUL-terminated; "" when there is none */
    size_t body_len;
    void *conn;  /* the MHD connection (for query/header) */
    void *state; /* the server's per-request state (osp_http_defer) */
};

/* The reply a handler fills. status 0 means "not set" and is sent as 500 internal. */
struct osp_http_resp {
    int status;
    const char *content_type;            /* static string; default "application/json" */
    struct osp_buf body;                 /* owned by the server */
    char allow[64];                      /* Allow header for 405, "" = none */
    char headers[OSP_HTTP_RESP_HEADERS]; /* extra "Name: value\n" lines (osp_http_resp_header) */
};
#define OSP_HTTP_RESP_INIT                                                                         \
    {                                                                                              \
        0, NULL, OSP_BUF_INIT, "", ""                                                              \
    }

typedef void osp_http_handler(const struct osp_http_req *req, struct osp_http_resp *resp,
                              void *arg);
/* Return true when `authorization` (the raw header value, NULL when absent) is acceptable. */
typedef bool osp_http_auth_fn(const char *authorization, void *arg);

/* ---- Router (usable without a server: unit tests) ---- */

struct osp_http_router *osp_http_router_new(void);
void osp_http_router_free(struct osp_http_router *r);
/* Add a route. method and pattern are copied. Patterns are absolute paths whose segments are
 * literals or {name}; a {name} segment matches one non-empty segment. Routes are tried in the
 * order added, so add literal routes (/v1/queues/x) before patterns that shadow them. */
void osp_http_router_add(struct osp_http_router *r, const char *method, const char *pattern,
                         unsigned flags, osp_http_handler *fn, void *arg);
struct osp_http_match {
    osp_http_handler *fn; /* NULL when status is 404 or 405 */
    void *arg;
    unsigned flags;
    int status;     /* 200 when matched, else 404 or 405 */
    char allow[64]; /* methods allowed for the path (405), comma-separated */
    char params[OSP_HTTP_MAX_PARAMS][OSP_HTTP_PARAM_MAX + 1];
    char names[OSP_HTTP_MAX_PARAMS][OSP_HTTP_NAME_MAX + 1];
    size_t nparams;
};
/* Match method and path (no query string, already percent-decoded: libmicrohttpd decodes the
 * URL before the router sees it). A {name} segment longer than OSP_HTTP_PARAM_MAX does not
 * match. A trailing slash is not ignored ("/v1/jobs/" is not "/v1/jobs"). */
void osp_http_router_match(const struct osp_http_router *r, const char *method, const char *path,
                           struct osp_http_match *m);

/* Point req's params and param_names at m's (m must outlive req). */
void osp_http_req_params(struct osp_http_req *req, const struct osp_http_match *m);

/* The value of hex digit c (0..15), or -1: percent-escapes, for the server and the checks. */
int osp_http_hex_digit(int c);

/* Check a request target as it came off the wire (path and query, not yet decoded): 0 when
 * acceptable, else the status to answer (414 above OSP_HTTP_URI_MAX bytes; 400 for a raw
 * control byte, a percent-escape of one, or a malformed escape) with *why set to a static
 * reason. Pure: used by the server before routing, by tests and by the fuzzer. */
int osp_http_target_check(const char *target, size_t len, const char **why);

/* Split "host:port" or "[v6]:port" into host (without brackets) and a numeric port string.
 * -1 when malformed, when the port is not 0..65535 in decimal digits, or when a part does not
 * fit its buffer. Shared by the server and the configuration check. */
int osp_http_split_addr(const char *addr, char *host, size_t hostcap, char *port, size_t portcap);

/* Write "<port>\n" to path atomically (a temporary file renamed over it), so a reader sees
 * the whole number or no file. For servers started on port 0 by scripts and tests: they bind
 * first and say where, instead of racing for a port picked by someone else. path NULL or ""
 * does nothing. 0, or -errno with err set. */
int osp_http_write_port_file(const char *path, unsigned port, struct osp_err *err);

/* ---- Server ---- */

struct osp_http_opts {
    const char *addr;        /* "host:port" ("127.0.0.1:8080", "[::1]:0", "0.0.0.0:9090") */
    size_t max_body;         /* bytes; 0 = OSP_HTTP_DEFAULT_BODY */
    unsigned conn_limit;     /* concurrent connections; 0 = 256 */
    unsigned conn_timeout_s; /* idle connection timeout; 0 = 30 */
};

/* Start listening on loop. Returns NULL with err (OSP_EINVAL for a bad address, -errno or
 * OSP_EINVAL when binding failed). The router is owned by the server. */
struct osp_http *osp_http_new(struct ev_loop *loop, const struct osp_http_opts *opts,
                              struct osp_err *err);
/* Stop watchers, close every connection and free. NULL is a no-op. */
void osp_http_free(struct osp_http *h);
struct osp_http_router *osp_http_router(struct osp_http *h);
void osp_http_set_auth(struct osp_http *h, osp_http_auth_fn *fn, void *arg);
/* The bound port (useful with port 0). */
unsigned osp_http_port(const struct osp_http *h);
/* Deferred answers. A handler that needs work best done for many requests at once (one
 * commit for every submit that arrived meanwhile) calls osp_http_defer(req), keeps the
 * ticket, leaves resp unset and returns: the connection is suspended. The server then calls
 * the after-run hook once per MHD_run() that left requests deferred; the hook (or anything on
 * the loop thread later) must call osp_http_finish() for every ticket, which takes the
 * response (its body is moved) and resumes the connection; the answer leaves on the server's
 * next run (at once: a finish outside a run schedules one). A ticket is valid until finished;
 * a deferred request is never abandoned (osp_http_free asserts none is pending).
 * A handler that defers and also sets resp->status is answered at once (the ticket is
 * void). */
struct osp_http_pending;
struct osp_http_pending *osp_http_defer(const struct osp_http_req *req);
void osp_http_finish(struct osp_http_pending *p, struct osp_http_resp *resp);
void osp_http_set_after_run(struct osp_http *h, void (*fn)(void *arg), void *arg);

/* Headers added to every response whose path starts with prefix, the server's own error
 * answers included ("Name: value\n" lines, copied; at most OSP_HTTP_RESP_HEADERS bytes): the
 * web console's security headers cover its 404s too. One prefix per server; NULL clears. */
void osp_http_set_prefix_headers(struct osp_http *h, const char *prefix, const char *lines);

/* Requests answered since start, by class (metrics). */
uint64_t osp_http_requests(const struct osp_http *h, int status_class /* 2..5 */);

/* ---- Request helpers (handler context only) ---- */

/* Query-string argument (decoded) or NULL. "?a" gives "" for a. */
const char *osp_http_query(const struct osp_http_req *req, const char *name);
/* Check the query string against the names a route accepts (NULL-terminated; NULL = none):
 * 0 when every parameter is one of them and none is repeated; else replies 400
 * invalid_request naming the parameter (and what is accepted) and returns -1. Requests
 * built without a connection (req->conn NULL: tests, fuzzers) have no query: 0. */
int osp_http_query_check(const struct osp_http_req *req, const char *const *allowed,
                         struct osp_http_resp *resp);
/* Request header or NULL (case-insensitive name). */
const char *osp_http_header(const struct osp_http_req *req, const char *name);
/* Cookie value from the Cookie header, or NULL. */
const char *osp_http_cookie(const struct osp_http_req *req, const char *name);
/* The index-th value (0 first) of field name in an application/x-www-form-urlencoded body,
 * decoded ('+' is a space, %XX a byte) into out (cap bytes, NUL-terminated): its length, or
 * -1 when there is no such value, -2 when it does not fit or holds a malformed escape or a
 * NUL byte. Pure: no server needed. */
int osp_http_form_value(const char *body, size_t len, const char *name, size_t index, char *out,
                        size_t cap);
/* Parse the body as a JSON object. On failure replies 400 bad_json (empty body, syntax error
 * with line and column, not an object) and returns NULL. The result is owned by the caller. */
json_t *osp_http_body_object(const struct osp_http_req *req, struct osp_http_resp *resp);

/* ---- Reply helpers ---- */

/* Reply with body serialized compactly; body is stolen (may be NULL: no body). */
void osp_http_reply_json(struct osp_http_resp *resp, int status, json_t *body);
/* Reply {"error": {"code": code, "message": <formatted>}}. */
void osp_http_reply_error(struct osp_http_resp *resp, int status, const char *code, const char *fmt,
                          ...) OSP_PRINTF(4, 5);
/* Add a response header line (name and value must hold no CR or LF): 0, or -1 when it does
 * not fit resp->headers (nothing added). */
int osp_http_resp_header(struct osp_http_resp *resp, const char *name, const char *value);
/* Reply with raw text (copied). */
void osp_http_reply_text(struct osp_http_resp *resp, int status, const char *content_type,
                         const char *text, size_t len);

#endif
