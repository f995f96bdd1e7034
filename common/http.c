/* SPDX-License-Identifier: MIT */
/* http.c — libmicrohttpd in external-poll epoll mode on a libev loop. The router and the
 * JSON body/reply helpers live in http_router.c (no libmicrohttpd there); the contract for both
 * is common/http.h.
 *
 * Loop glue. MHD_USE_EPOLL without MHD_USE_INTERNAL_POLLING_THREAD gives one epoll fd that
 * becomes readable whenever the listen socket or any connection has work. We watch it with an
 * ev_io (level-triggered, so nothing is lost when MHD leaves events unprocessed) and keep one
 * ev_timer armed at MHD_get_timeout(): MHD uses it for idle-connection timeouts and returns 0
 * when it already has ready connections on its internal list (edge-triggered epoll events it
 * has consumed but not yet served). After every io or timer event we call MHD_run() and
 * re-arm the timer. Handlers therefore run inside MHD_run(), on the loop thread.
 *
 * Request life cycle. MHD calls uri_cb once per request with the request target exactly as
 * sent (before it percent-decodes the path and query into C strings, where "%00" would end
 * them early): it allocates the per-request state and records whether the target passes
 * osp_http_target_check(). Then the access handler, several times per request:
 *   1st call: headers complete, no body yet. A target that failed its check (400/414), header
 *             fields above OSP_HTTP_HEADERS_MAX (431) or a Content-Length above the limit
 *             (413) is answered at once; MHD then closes the connection without reading the
 *             body.
 *   middle:   body chunks; appended while within the limit, counted and dropped beyond it.
 *   last:     *upload_data_size == 0: route, check auth and content type, run the handler,
 *             queue the response.
 * A handler that called osp_http_defer() queues nothing: the connection is suspended, and
 * osp_http_finish() stores the response and resumes it; MHD then calls the access handler
 * once more, which queues the stored response. After each MHD_run() the after-run hook
 * (osp_http_set_after_run) runs: the place where deferred work is done for every request the
 * run collected, in one go; when it resumed connections, MHD_run() goes again at once so the
 * answers leave in the same loop iteration.
 * The completion callback frees the per-request state. */
#include "common/http.h"
#include "common/alloc.h"
#include "common/base.h"

#include <microhttpd.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- Server ---- */

struct osp_http {
    struct ev_loop *loop;
    struct MHD_Daemon *d;
    ev_io io;       /* MHD's epoll fd */
    ev_timer timer; /* MHD_get_timeout() */
    struct osp_http_router *router;
    osp_http_auth_fn *auth;
    void *auth_arg;
    size_t max_body;
    unsigned port;
    uint64_t by_class[6];
    void (*after_run)(void *arg);
    void *after_run_arg;
    unsigned deferred; /* requests suspended and not yet finished */
    unsigned resumed;  /* finished since the last MHD_run() */
    bool in_run;       /* inside http_run() */
    char *prefix;      /* osp_http_set_prefix_headers(), or NULL */
    char prefix_headers[OSP_HTTP_RESP_HEADERS];
};

/* Per-request state, *con_cls in MHD terms. */
struct req_state {
    struct osp_buf body;
    size_t received;
    bool started;           /* the access handler has seen the complete head */
    bool answered;          /* a response was queued early (400, 414, 431, 413) */
    int target_status;      /* osp_http_target_check() of the raw target: 0, 400 or 414 */
    const char *target_why; /* its reason */
    uintptr_t raw_target;   /* where MHD's copy of the raw target starts ... */
    size_t raw_len;         /* ... and its length as a C string */
    struct osp_http *h;
    struct MHD_Connection *conn;
    bool defer_asked; /* the running handler called osp_http_defer() */
    bool suspended;   /* waiting for osp_http_finish() */
    bool finished;    /* resp holds the answer; queue it when MHD calls back */
    bool prefixed;    /* the path starts with the server's header prefix */
    struct osp_http_resp resp;
};

/* Add "Name: value\n" lines to r. */
static void add_header_lines(struct MHD_Response *r, const char *lines)
{
    while (*lines != '\0') {
        const char *nl = strchr(lines, '\n');
        size_t len = nl ? (size_t)(nl - lines) : strlen(lines);
        const char *colon = memchr(lines, ':', len);
        if (colon != NULL && len < 1024) {
            char name[128], value[1024];
            size_t nlen = (size_t)(colon - lines);
            const char *v = colon + 1;
            while (v < lines + len && *v == ' ') {
                v++;
            }
            if (nlen > 0 && nlen < sizeof(name)) {
                memcpy(name, lines, nlen);
                name[nlen] = '\0';
                memcpy(value, v, (size_t)(lines + len - v));
                value[lines + len - v] = '\0';
                MHD_add_response_header(r, name, value);
            }
        }
        lines += len + (nl ? 1 : 0);
    }
}

static void send_resp(struct osp_http *h, struct MHD_Connection *c, const struct req_state *st,
                      struct osp_http_resp *resp)
{
    if (resp->status == 0) {
        osp_http_reply_error(resp, 500, "internal", "handler produced no response");
    }
    static char empty[1];
    struct MHD_Response *r = MHD_create_response_from_buffer(
        resp->body.len, resp->body.len ? (void *)resp->body.data : empty, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : "application/json");
    if (resp->allow[0] != '\0') {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
    }
    if (resp->status == 401) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    }
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (st != NULL && st->prefixed) {
        add_header_lines(r, h->prefix_headers);
    }
    add_header_lines(r, resp->headers);
    (void)MHD_queue_response(c, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    int cls = resp->status / 100;
    if (cls >= 2 && cls <= 5) {
        h->by_class[cls]++;
    }
}

static void send_error(struct osp_http *h, struct MHD_Connection *c, const struct req_state *st,
                       int status, const char *code, const char *msg, const char *allow)
{
    struct osp_http_resp resp = OSP_HTTP_RESP_INIT;
    osp_http_reply_error(&resp, status, code, "%s", msg);
    if (allow != NULL) {
        snprintf(resp.allow, sizeof(resp.allow), "%s", allow);
    }
    send_resp(h, c, st, &resp);
    osp_buf_deinit(&resp.body);
}

static bool is_form_type(const char *ct)
{
    if (ct == NULL) {
        return false;
    }
    while (*ct == ' ') {
        ct++;
    }
    size_t n = strlen("application/x-www-form-urlencoded");
    return strncasecmp(ct, "application/x-www-form-urlencoded", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static bool is_json_type(const char *ct)
{
    if (ct == NULL) {
        return false;
    }
    while (*ct == ' ') {
        ct++;
    }
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void dispatch(struct osp_http *h, struct MHD_Connection *c, const char *url,
                     const char *method, struct req_state *st)
{
    struct osp_http_match *m = osp_xmalloc(sizeof(*m));
    osp_http_router_match(h->router, method, url, m);
    if (m->status == 404) {
        send_error(h, c, st, 404, "not_found", "no such endpoint", NULL);
        goto out;
    }
    if (m->status == 405) {
        char msg[128];
        snprintf(msg, sizeof(msg), "method %.16s not allowed here (allowed: %s)", method, m->allow);
        send_error(h, c, st, 405, "method_not_allowed", msg, m->allow);
        goto out;
    }
    if ((m->flags & OSP_HTTP_AUTH) != 0 &&
        (h->auth == NULL ||
         !h->auth(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                  h->auth_arg))) {
        send_error(h, c, st, 401, "unauthorized", "missing or invalid bearer token", NULL);
        goto out;
    }
    const char *ctype =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (st->body.len > 0 && !is_json_type(ctype) &&
        !((m->flags & OSP_HTTP_FORM) != 0 && is_form_type(ctype))) {
        send_error(h, c, st, 415, "unsupported_media_type",
                   "request bodies must be JSON (Content-Type: application/json)", NULL);
        goto out;
    }
    struct osp_http_req req;
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.path = url;
    osp_http_req_params(&req, m);
    req.body = st->body.len ? osp_buf_cstr(&st->body) : "";
    req.body_len = st->body.len;
    req.conn = c;
    req.state = st;
    struct osp_http_resp resp = OSP_HTTP_RESP_INIT;
    m->fn(&req, &resp, m->arg);
    if (st->defer_asked && resp.status == 0) {
        st->suspended = true;
        h->deferred++;
        MHD_suspend_connection(c);
    } else {
        send_resp(h, c, st, &resp);
    }
    osp_buf_deinit(&resp.body);
out:
    free(m);
}

/* MHD_OPTION_URI_LOG_CALLBACK: the raw request target; the result becomes *con_cls. */
static void *uri_cb(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    struct req_state *st = osp_xcalloc(1, sizeof(*st));
    st->raw_target = (uintptr_t)uri;
    st->raw_len = strlen(uri);
    st->target_status = osp_http_target_check(uri, st->raw_len, &st->target_why);
    return st;
}

static enum MHD_Result header_bytes(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    size_t *n = cls;
    *n += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct osp_http *h = cls;
    struct req_state *st = *con_cls;
    OSP_ASSERT(st != NULL); /* uri_cb made it */
    st->h = h;
    st->conn = c;
    if (!st->started) {
        /* First call: the head is complete, no body yet. */
        st->started = true;
        st->prefixed = h->prefix != NULL && strncmp(url, h->prefix, strlen(h->prefix)) == 0;
        int ts = st->target_status;
        /* A NUL byte sent raw ends the C string MHD hands over, not the request line: MHD
         * splits "METHOD SP target SP version" by lengths, so the version it found lies past
         * the target's first NUL. Both point into the request line MHD keeps for the
         * request; anything but "target SP version" back to back is refused. */
        uintptr_t v = (uintptr_t)version;
        if (ts == 0 && version != NULL && version[0] != '\0' && v > st->raw_target &&
            v - st->raw_target <= OSP_HTTP_HEAD_POOL && v - st->raw_target != st->raw_len + 1) {
            ts = 400;
            st->target_why = "control byte (NUL) or stray space in the request line";
        }
        size_t hbytes = 0;
        (void)MHD_get_connection_values(c, MHD_HEADER_KIND, header_bytes, &hbytes);
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (ts != 0) {
            send_error(h, c, st, ts, ts == 414 ? "uri_too_long" : "bad_request", st->target_why,
                       NULL);
            st->answered = true;
        } else if (hbytes > OSP_HTTP_HEADERS_MAX) {
            char msg[96];
            snprintf(msg, sizeof(msg), "header fields larger than %d bytes", OSP_HTTP_HEADERS_MAX);
            send_error(h, c, st, 431, "header_too_large", msg, NULL);
            st->answered = true;
        } else if (cl != NULL && strtoull(cl, NULL, 10) > h->max_body) {
            char msg[96];
            snprintf(msg, sizeof(msg), "request body larger than %zu bytes", h->max_body);
            send_error(h, c, st, 413, "too_large", msg, NULL);
            st->answered = true;
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        st->received += *upload_data_size;
        if (!st->answered && st->received <= h->max_body) {
            osp_buf_append(&st->body, upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (st->finished) {
        /* Resumed by osp_http_finish(): the deferred answer. */
        st->finished = false;
        send_resp(h, c, st, &st->resp);
        osp_buf_deinit(&st->resp.body);
        return MHD_YES;
    }
    if (st->answered) {
        return MHD_YES;
    }
    st->answered = true;
    if (st->received > h->max_body) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request body larger than %zu bytes", h->max_body);
        send_error(h, c, st, 413, "too_large", msg, NULL);
        return MHD_YES;
    }
    dispatch(h, c, url, method, st);
    return MHD_YES;
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req_state *st = *con_cls;
    if (st != NULL) {
        OSP_ASSERT(!st->suspended); /* MHD never ends a suspended request */
        osp_buf_deinit(&st->body);
        osp_buf_deinit(&st->resp.body);
        free(st);
        *con_cls = NULL;
    }
}

static void http_rearm(struct osp_http *h)
{
    MHD_UNSIGNED_LONG_LONG to_ms = 0;
    ev_timer_stop(h->loop, &h->timer);
    /* MHD_NO means "no timeout needed"; we still wake once a second as a safety net. */
    double after = MHD_get_timeout(h->d, &to_ms) == MHD_YES ? (double)to_ms / 1000.0 : 1.0;
    if (after > 1.0) {
        after = 1.0;
    }
    ev_timer_set(&h->timer, after, 0.0);
    ev_timer_start(h->loop, &h->timer);
}

/* MHD_run(), then the after-run hook; again while the hook resumed connections (bounded:
 * a resumed connection's next request waits for the next loop iteration). */
static void http_run(struct osp_http *h)
{
    h->in_run = true;
    for (int round = 0; round < 4; round++) {
        h->resumed = 0;
        (void)MHD_run(h->d);
        if (h->after_run != NULL && h->deferred > 0) {
            h->after_run(h->after_run_arg);
        }
        if (h->resumed == 0) {
            break;
        }
    }
    h->in_run = false;
    http_rearm(h);
}

static void http_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    http_run(osp_container_of(w, struct osp_http, io));
}

static void http_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    http_run(osp_container_of(w, struct osp_http, timer));
}

struct osp_http *osp_http_new(struct ev_loop *loop, const struct osp_http_opts *opts,
                              struct osp_err *err)
{
    char host[256];
    char port[16];
    if (opts->addr == NULL ||
        osp_http_split_addr(opts->addr, host, sizeof(host), port, sizeof(port)) != 0) {
        osp_err_set(err, OSP_EINVAL, "http address %.64s: expected host:port",
                    opts->addr ? opts->addr : "(null)");
        return NULL;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (gai != 0 || ai == NULL) {
        osp_err_set(err, OSP_EINVAL, "http address %.64s: %s", opts->addr, gai_strerror(gai));
        return NULL;
    }
    struct osp_http *h = osp_xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->router = osp_http_router_new();
    h->max_body = opts->max_body ? opts->max_body : OSP_HTTP_DEFAULT_BODY;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    /* The memory pool is well above OSP_HTTP_URI_MAX + OSP_HTTP_HEADERS_MAX, so that an
     * oversized head still reaches access_cb and gets our JSON 414/431 instead of MHD's own
     * page (MHD answers by itself only when the head does not fit the pool). Not larger:
     * MHD zeroes the whole pool between two requests of a keep-alive connection (a 1 MiB
     * pool took 72% of the scheduler's CPU under keep-alive submits). */
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, access_cb, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_URI_LOG_CALLBACK, uri_cb, h, MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)OSP_HTTP_HEAD_POOL, MHD_OPTION_CONNECTION_LIMIT,
        opts->conn_limit ? opts->conn_limit : 256u, MHD_OPTION_CONNECTION_TIMEOUT,
        opts->conn_timeout_s ? opts->conn_timeout_s : 30u, MHD_OPTION_END);
    int saved = errno;
    freeaddrinfo(ai);
    if (h->d == NULL) {
        osp_err_set(err, saved ? -saved : OSP_EINVAL, "http: cannot listen on %.64s: %s",
                    opts->addr, saved ? strerror(saved) : "libmicrohttpd refused the options");
        osp_http_router_free(h->router);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    OSP_ASSERT(info != NULL);
    int efd = info->epoll_fd;
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    ev_io_init(&h->io, http_io_cb, efd, EV_READ);
    ev_io_start(loop, &h->io);
    ev_timer_init(&h->timer, http_timer_cb, 0.0, 0.0);
    http_rearm(h);
    return h;
}

void osp_http_free(struct osp_http *h)
{
    if (h == NULL) {
        return;
    }
    /* Every deferred request is finished before the server goes (the owner settles its
     * work first); answers finished since the last run still leave. */
    OSP_ASSERT(h->deferred == 0);
    for (int i = 0; i < 2 && h->resumed > 0; i++) {
        h->resumed = 0;
        (void)MHD_run(h->d);
    }
    ev_io_stop(h->loop, &h->io);
    ev_timer_stop(h->loop, &h->timer);
    MHD_stop_daemon(h->d);
    osp_http_router_free(h->router);
    free(h->prefix);
    free(h);
}

void osp_http_set_prefix_headers(struct osp_http *h, const char *prefix, const char *lines)
{
    free(h->prefix);
    h->prefix = prefix != NULL ? osp_xstrdup(prefix) : NULL;
    snprintf(h->prefix_headers, sizeof(h->prefix_headers), "%s", lines != NULL ? lines : "");
}

struct osp_http_router *osp_http_router(struct osp_http *h)
{
    return h->router;
}

void osp_http_set_after_run(struct osp_http *h, void (*fn)(void *arg), void *arg)
{
    h->after_run = fn;
    h->after_run_arg = arg;
}

struct osp_http_pending *osp_http_defer(const struct osp_http_req *req)
{
    struct req_state *st = req->state;
    OSP_ASSERT(st != NULL && !st->defer_asked);
    st->defer_asked = true;
    return (struct osp_http_pending *)st;
}

void osp_http_finish(struct osp_http_pending *p, struct osp_http_resp *resp)
{
    struct req_state *st = (struct req_state *)p;
    OSP_ASSERT(st->suspended && !st->finished);
    if (resp->status == 0) {
        osp_http_reply_error(resp, 500, "internal", "handler produced no response");
    }
    osp_buf_deinit(&st->resp.body);
    st->resp = *resp;
    resp->body = (struct osp_buf)OSP_BUF_INIT; /* moved */
    st->suspended = false;
    st->finished = true;
    struct osp_http *h = st->h;
    h->deferred--;
    h->resumed++;
    MHD_resume_connection(st->conn);
    if (!h->in_run) {
        /* Finished from elsewhere on the loop (a database callback): MHD sends the answer on
         * its next run, which must not wait for the next socket event. */
        ev_timer_stop(h->loop, &h->timer);
        ev_timer_set(&h->timer, 0.0, 0.0);
        ev_timer_start(h->loop, &h->timer);
    }
}

void osp_http_set_auth(struct osp_http *h, osp_http_auth_fn *fn, void *arg)
{
    h->auth = fn;
    h->auth_arg = arg;
}

unsigned osp_http_port(const struct osp_http *h)
{
    return h->port;
}

uint64_t osp_http_requests(const struct osp_http *h, int status_class)
{
    return status_class >= 2 && status_class <= 5 ? h->by_class[status_class] : 0;
}

/* ---- Request helpers ---- */

const char *osp_http_query(const struct osp_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_walk {
    const char *const *allowed;
    const char *bad; /* first unknown or repeated name */
    bool repeated;
    unsigned seen; /* bit i: allowed[i] seen */
};

static enum MHD_Result query_name(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    (void)value;
    struct query_walk *q = cls;
    for (size_t i = 0; q->allowed != NULL && q->allowed[i] != NULL && i < 32; i++) {
        if (strcmp(key, q->allowed[i]) == 0) {
            if (q->seen & (1u << i)) {
                q->bad = key;
                q->repeated = true;
                return MHD_NO;
            }
            q->seen |= 1u << i;
            return MHD_YES;
        }
    }
    q->bad = key;
    return MHD_NO;
}

int osp_http_query_check(const struct osp_http_req *req, const char *const *allowed,
                         struct osp_http_resp *resp)
{
    if (req->conn == NULL) {
        return 0;
    }
    struct query_walk q = {allowed, NULL, false, 0};
    (void)MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_name, &q);
    if (q.bad == NULL) {
        return 0;
    }
    if (q.repeated) {
        osp_http_reply_error(resp, 400, "invalid_request", "query parameter \"%.64s\" given twice",
                             q.bad);
        return -1;
    }
    char list[256] = "none";
    size_t len = 0;
    for (size_t i = 0; allowed != NULL && allowed[i] != NULL && len < sizeof(list); i++) {
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", allowed[i]);
    }
    osp_http_reply_error(resp, 400, "invalid_request",
                         "unknown query parameter \"%.64s\" (accepted: %s)", q.bad, list);
    return -1;
}

const char *osp_http_header(const struct osp_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *osp_http_cookie(const struct osp_http_req *req, const char *name)
{
    return req->conn != NULL ? MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name) : NULL;
}
