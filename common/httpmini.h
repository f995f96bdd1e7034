/* SPDX-License-Identifier: MIT */
/* httpmini.h — a dependency-free HTTP/1.1 server on a libev loop for probe and metrics
 * endpoints (the worker's /metrics /healthz /readyz). It serves the routes of a common/http.h
 * router with the same struct osp_http_req / osp_http_resp, so handlers written for osp_http run
 * unchanged, and it needs neither libmicrohttpd nor TLS libraries (the worker's RSS budget).
 *
 * What it speaks, deliberately little:
 *   - GET and HEAD only (HEAD: the GET route's status and headers, no body). Only GET routes
 *     of the router are served; a route added with another method is treated as absent.
 *   - One request per connection: the reply carries Content-Type, Content-Length,
 *     Cache-Control: no-store and Connection: close, and the connection closes after it.
 *     Bytes after the request head (pipelined requests) are read and discarded, never answered.
 *   - No request bodies, no keep-alive, no chunked encoding, no TLS, no Expect/100-continue.
 *   - The request head (request line + header fields) is at most OSP_HTTPMINI_HEAD_MAX bytes.
 * Error replies use http.h's JSON shape {"error": {"code", "message"}}; checks in this order:
 *   400 bad_request         malformed head, control bytes in it, not HTTP/1.x, bad or %00
 *                           percent-escape in the path, a target that is not an absolute path
 *   431 header_too_large    no complete head within OSP_HTTPMINI_HEAD_MAX bytes
 *   413 too_large           the request announces a body (Content-Length > 0, Transfer-Encoding)
 *   404 not_found           no GET route matches the path (query string stripped, decoded)
 *   405 method_not_allowed  the path has a GET route but the method is not GET/HEAD
 *                           (Allow: GET, HEAD)
 *   500 internal            the handler left status unset (or outside 200..599)
 * The Host header is not required (probes and scrapers send it; nothing here uses it).
 *
 * Handlers run synchronously on the loop thread, as with osp_http. In a request served here
 * req->conn is NULL and req->body is "": handlers must not call osp_http_query() or
 * osp_http_header() (they read libmicrohttpd's connection; the probe handlers need neither).
 *
 * Parsing and reply building are pure functions (osp_httpmini_parse, osp_httpmini_handle)
 * usable without sockets; the server is a thin shell around them. */
#ifndef OSP_HTTPMINI_H
#define OSP_HTTPMINI_H

#include "common/buf.h"
#include "common/err.h"
#include "common/http.h"

#include <ev.h>

#define OSP_HTTPMINI_HEAD_MAX 8192 /* bytes: request line + header fields + the empty line */

/* ---- Pure request handling (no sockets: unit tests and fuzzing) ---- */

/* osp_httpmini_parse() results; any other value is the HTTP error status to answer with. */
enum {
    OSP_HTTPMINI_MORE = 0, /* the head is not complete yet: append more bytes and call again */
    OSP_HTTPMINI_DONE = 1, /* a complete, acceptable request head */
};

struct osp_httpmini_head {
    char method[16];   /* request method, truncated to 15 bytes; "" until the line is seen */
    bool is_head;      /* the method is HEAD: the reply gets no body */
    int version_minor; /* HTTP/1.<version_minor> */
    size_t head_len;   /* bytes of the head including the empty line (DONE only) */
    const char *error; /* static reason when an error status is returned, else NULL */
    char path[OSP_HTTPMINI_HEAD_MAX]; /* percent-decoded, query string cut (DONE only) */
};

/* Parse the request head at the start of buf[0..len). buf is bytes as received (binary-safe,
 * need not be NUL-terminated). Returns OSP_HTTPMINI_MORE, OSP_HTTPMINI_DONE, or an error status
 * (400, 413, 431) with out->error set. Never returns MORE when len >= OSP_HTTPMINI_HEAD_MAX.
 * Decisions only depend on the head's bytes: bytes after the empty line are not looked at, and
 * once a prefix of the input gets an answer other than MORE, every longer input gets the same.
 * A bad request line is reported as soon as that line is complete. */
int osp_httpmini_parse(const char *buf, size_t len, struct osp_httpmini_head *out);

/* Handle the request at the start of buf[0..len) with router r: parse it, route it, run the
 * handler, and append the complete reply (status line, headers, body unless HEAD) to out.
 * Returns 0 when more bytes are needed (out untouched), else the status of the reply written.
 * Deterministic given deterministic handlers. */
int osp_httpmini_handle(const struct osp_http_router *r, const char *buf, size_t len,
                        struct osp_buf *out);

/* ---- Server ---- */

struct osp_httpmini;

struct osp_httpmini_opts {
    const char *addr;        /* "host:port" ("127.0.0.1:0", "[::1]:0", "0.0.0.0:9090") */
    unsigned conn_limit;     /* concurrent connections; 0 = 64 */
    unsigned conn_timeout_s; /* deadline for a whole exchange from accept; 0 = 10 */
};

/* Listen on opts->addr and serve on loop. Returns NULL with err: OSP_EINVAL for a bad address
 * (same syntax and messages as osp_http_new), -errno when socket/bind/listen failed.
 * The listening socket and every connection are non-blocking and close-on-exec.
 *
 * Connections over conn_limit are accepted, sent a best-effort 503 {"error":{"code":"busy"}}
 * and closed at once (so a flood cannot park probes in the kernel's backlog); they count as 5xx.
 * conn_timeout_s bounds reading the request and writing the reply together (slow or silent
 * clients are closed; it is not reset by activity). After the reply the server shuts down its
 * sending side and discards what the peer still sends, for at most 2 s (or conn_timeout_s if
 * smaller), so a peer that sent more than we read gets the reply instead of a reset. */
struct osp_httpmini *osp_httpmini_new(struct ev_loop *loop, const struct osp_httpmini_opts *opts,
                                      struct osp_err *err);
/* Stop watchers, close the listening socket and every connection, free the router. NULL is a
 * no-op. */
void osp_httpmini_free(struct osp_httpmini *h);
/* The router (borrowed; owned by the server). Add GET routes before the loop runs. */
struct osp_http_router *osp_httpmini_router(struct osp_httpmini *h);
/* The bound port (useful with port 0). */
unsigned osp_httpmini_port(const struct osp_httpmini *h);
/* Replies sent since start, by class (2..5; other values give 0). */
uint64_t osp_httpmini_requests(const struct osp_httpmini *h, int status_class);
/* Connections currently open (tests, metrics). */
unsigned osp_httpmini_conns(const struct osp_httpmini *h);

#endif
