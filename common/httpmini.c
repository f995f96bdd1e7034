/* SPDX-License-Identifier: MIT */
/* httpmini.c — a small HTTP/1.1 server for probe and metrics endpoints (contract: httpmini.h).
 *
 * Parsing. osp_httpmini_parse() makes one pass over the first OSP_HTTPMINI_HEAD_MAX bytes and
 * decides at the position where each decision becomes possible: a control byte or a CR that is
 * not followed by LF where it stands, the request line at its LF, each header field at its LF,
 * the body rule (413) at the empty line, 431 only when the whole window is used up. Because a
 * decision at byte i depends only on bytes up to i + 1, feeding the same stream in pieces gives
 * the same answer as feeding it whole (the fuzz target checks this), and a connection can simply
 * re-parse its buffer after every read: the head is at most 8 KiB, so that costs nothing worth
 * an incremental state machine. Lines end in CRLF or a bare LF (RFC 9112 §2.2 allows accepting
 * LF); empty lines before the request line are skipped (same section).
 *
 * Connections. Each struct conn embeds one ev_io (read, then write, then read again to drain)
 * and one ev_timer, and walks READ -> WRITE -> LINGER -> closed:
 *   READ    recv into a fixed 8 KiB buffer, osp_httpmini_handle() after every chunk; EOF or an
 *           error before the head is complete closes without a reply (nobody to read it).
 *   WRITE   send the reply with MSG_NOSIGNAL; on EAGAIN wait for EV_WRITE. Never blocks.
 *   LINGER  shutdown(SHUT_WR), then read and discard until EOF (or 64 KiB, or the linger
 *           deadline): closing a socket with unread input makes the kernel send RST, and a RST
 *           can destroy the reply in the peer's receive buffer before it was read.
 * The timer is armed once at accept with conn_timeout_s and not refreshed by activity, so a
 * slowloris client gets the same deadline as a silent one; LINGER re-arms it with at most 2 s.
 * A connection is freed only in conn_close(), after both watchers are stopped. */
#define _GNU_SOURCE /* accept4, SOCK_NONBLOCK, SOCK_CLOEXEC */
#include "common/httpmini.h"
#include "common/alloc.h"
#include "common/base.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_CONN_LIMIT 64u
#define DEFAULT_TIMEOUT_S  10u
#define LINGER_S           2.0         /* at most this long draining after the reply */
#define LINGER_MAX         (64 * 1024) /* bytes discarded while draining before giving up */
#define ACCEPT_RETRY_S     0.5         /* pause after EMFILE/ENFILE/ENOBUFS/ENOMEM */

/* ---- Parser ---- */

/* RFC 9110 tchar (token characters), without locale-dependent ctype. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}


static int bad(struct osp_httpmini_head *out, int status, const char *why)
{
    out->error = why;
    return status;
}

/* Decode the path of a request target (origin-form, or absolute-form reduced to its path)
 * into out->path, without the query string or fragment. */
static int parse_target(const unsigned char *t, size_t n, struct osp_httpmini_head *out)
{
    /* absolute-form (RFC 9112 §3.2.2): a server must accept it; keep only the path. */
    size_t skip = 0;
    if (n >= 7 && strncasecmp((const char *)t, "http://", 7) == 0) {
        skip = 7;
    } else if (n >= 8 && strncasecmp((const char *)t, "https://", 8) == 0) {
        skip = 8;
    }
    if (skip > 0) {
        const unsigned char *slash = memchr(t + skip, '/', n - skip);
        if (slash == NULL) {
            snprintf(out->path, sizeof(out->path), "/");
            return 0;
        }
        n -= (size_t)(slash - t);
        t = slash;
    }
    if (n == 0 || t[0] != '/') {
        return bad(out, 400, "request target must be an absolute path");
    }
    size_t o = 0;
    for (size_t i = 0; i < n && t[i] != '?' && t[i] != '#'; i++) {
        unsigned char c = t[i];
        if (c == '%') {
            int hi = i + 2 < n ? osp_http_hex_digit(t[i + 1]) : -1;
            int lo = i + 2 < n ? osp_http_hex_digit(t[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return bad(out, 400, "bad percent-escape in path");
            }
            c = (unsigned char)(hi * 16 + lo);
            if (c == '\0') {
                return bad(out, 400, "%00 in path");
            }
            i += 2;
        }
        /* The target is shorter than the head, and the head fits OSP_HTTPMINI_HEAD_MAX. */
        OSP_ASSERT(o + 1 < sizeof(out->path));
        out->path[o++] = (char)c;
    }
    out->path[o] = '\0';
    return 0;
}

/* method SP request-target SP HTTP-version, exactly (RFC 9112 §3). */
static int parse_request_line(const unsigned char *l, size_t n, struct osp_httpmini_head *out)
{
    size_t m = 0;
    while (m < n && is_tchar(l[m])) {
        m++;
    }
    if (m == 0 || m == n || l[m] != ' ') {
        return bad(out, 400, "malformed request line");
    }
    size_t keep = m < sizeof(out->method) ? m : sizeof(out->method) - 1;
    memcpy(out->method, l, keep);
    out->method[keep] = '\0';
    out->is_head = m == 4 && memcmp(l, "HEAD", 4) == 0;

    size_t ts = m + 1, te = ts;
    while (te < n && l[te] > ' ' && l[te] < 0x7f) {
        te++;
    }
    if (te == ts || te == n || l[te] != ' ') {
        return bad(out, 400, "malformed request line");
    }
    const unsigned char *v = l + te + 1;
    size_t vn = n - te - 1;
    if (vn != 8 || memcmp(v, "HTTP/1.", 7) != 0 || v[7] < '0' || v[7] > '9') {
        return bad(out, 400, "not an HTTP/1.x request");
    }
    out->version_minor = v[7] - '0';
    return parse_target(l + ts, te - ts, out);
}

/* field-name ":" OWS field-value OWS. Notes whether the request announces a body. */
static int parse_header(const unsigned char *l, size_t n, bool *has_body,
                        struct osp_httpmini_head *out)
{
    if (l[0] == ' ' || l[0] == '\t') {
        return bad(out, 400, "obsolete header line folding");
    }
    size_t k = 0;
    while (k < n && is_tchar(l[k])) {
        k++;
    }
    if (k == 0 || k == n || l[k] != ':') {
        return bad(out, 400, "malformed header line");
    }
    size_t vs = k + 1, ve = n;
    while (vs < ve && (l[vs] == ' ' || l[vs] == '\t')) {
        vs++;
    }
    while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t')) {
        ve--;
    }
    if (k == 14 && strncasecmp((const char *)l, "Content-Length", 14) == 0) {
        if (ve == vs) {
            return bad(out, 400, "bad Content-Length");
        }
        for (size_t i = vs; i < ve; i++) {
            if (l[i] < '0' || l[i] > '9') {
                return bad(out, 400, "bad Content-Length");
            }
            if (l[i] != '0') {
                *has_body = true;
            }
        }
    } else if (k == 17 && strncasecmp((const char *)l, "Transfer-Encoding", 17) == 0) {
        *has_body = true;
    }
    return 0;
}

int osp_httpmini_parse(const char *buf, size_t len, struct osp_httpmini_head *out)
{
    out->method[0] = '\0';
    out->is_head = false;
    out->version_minor = 0;
    out->head_len = 0;
    out->error = NULL;
    out->path[0] = '\0';

    const unsigned char *p = (const unsigned char *)buf;
    size_t limit = len < OSP_HTTPMINI_HEAD_MAX ? len : OSP_HTTPMINI_HEAD_MAX;
    size_t i = 0;
    /* Skip empty lines before the request line. */
    while (i < limit) {
        if (p[i] == '\n') {
            i++;
        } else if (p[i] == '\r' && i + 1 < limit && p[i + 1] == '\n') {
            i += 2;
        } else {
            break;
        }
    }
    size_t ls = i; /* start of the current line */
    bool first = true, has_body = false;
    for (; i < limit; i++) {
        unsigned char c = p[i];
        if (c == '\n') {
            size_t n = i - ls;
            if (n > 0 && p[i - 1] == '\r') {
                n--;
            }
            int rc;
            if (first) {
                rc = parse_request_line(p + ls, n, out);
                first = false;
            } else if (n == 0) {
                if (has_body) {
                    return bad(out, 413, "request bodies are not accepted");
                }
                out->head_len = i + 1;
                return OSP_HTTPMINI_DONE;
            } else {
                rc = parse_header(p + ls, n, &has_body, out);
            }
            if (rc != 0) {
                return rc;
            }
            ls = i + 1;
        } else if (c == '\r') {
            /* Only valid right before LF; undecided while it is the last byte we have. */
            if (i + 1 < limit && p[i + 1] != '\n') {
                return bad(out, 400, "control character in request head");
            }
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return bad(out, 400, "control character in request head");
        }
    }
    if (len >= OSP_HTTPMINI_HEAD_MAX) {
        return bad(out, 431, "request head larger than 8192 bytes");
    }
    return OSP_HTTPMINI_MORE;
}

/* ---- Replies ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return ""; /* the reason phrase is optional (RFC 9112 §4) */
    }
}

/* Serialize resp into out; a missing or impossible status becomes 500. Returns the status. */
static int write_reply(struct osp_buf *out, struct osp_http_resp *resp, bool head_only)
{
    if (resp->status == 0) {
        osp_http_reply_error(resp, 500, "internal", "handler produced no response");
    } else if (resp->status < 200 || resp->status > 599) {
        int bad_status = resp->status;
        resp->allow[0] = '\0';
        osp_http_reply_error(resp, 500, "internal", "handler produced status %d", bad_status);
    }
    int st = resp->status;
    bool no_body = st == 204 || st == 304;
    osp_buf_appendf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", st, reason(st),
                    resp->content_type ? resp->content_type : "application/json");
    if (!no_body) {
        osp_buf_appendf(out, "Content-Length: %zu\r\n", resp->body.len);
    }
    if (resp->allow[0] != '\0') {
        osp_buf_appendf(out, "Allow: %s\r\n", resp->allow);
    }
    osp_buf_appendf(out, "Cache-Control: no-store\r\nConnection: close\r\n\r\n");
    if (!head_only && !no_body) {
        osp_buf_append(out, resp->body.data, resp->body.len);
    }
    return st;
}

static void route(const struct osp_http_router *r, const struct osp_httpmini_head *h,
                  struct osp_http_resp *resp)
{
    struct osp_http_match *m = osp_xmalloc(sizeof(*m));
    osp_http_router_match(r, "GET", h->path, m);
    bool get = h->is_head || strcmp(h->method, "GET") == 0;
    if (m->status != 200) {
        osp_http_reply_error(resp, 404, "not_found", "no such endpoint");
    } else if (!get) {
        osp_http_reply_error(resp, 405, "method_not_allowed",
                             "method %.16s not allowed here (allowed: GET, HEAD)", h->method);
        snprintf(resp->allow, sizeof(resp->allow), "GET, HEAD");
    } else {
        struct osp_http_req req;
        memset(&req, 0, sizeof(req));
        req.method = h->method;
        req.path = h->path;
        osp_http_req_params(&req, m);
        req.body = "";
        req.body_len = 0;
        req.conn = NULL;
        m->fn(&req, resp, m->arg);
    }
    free(m);
}

int osp_httpmini_handle(const struct osp_http_router *r, const char *buf, size_t len,
                        struct osp_buf *out)
{
    struct osp_httpmini_head *h = osp_xmalloc(sizeof(*h));
    int rc = osp_httpmini_parse(buf, len, h);
    if (rc == OSP_HTTPMINI_MORE) {
        free(h);
        return 0;
    }
    struct osp_http_resp resp = {0, NULL, OSP_BUF_INIT, ""};
    if (rc == OSP_HTTPMINI_DONE) {
        route(r, h, &resp);
    } else {
        const char *code = rc == 413 ? "too_large" : rc == 431 ? "header_too_large" : "bad_request";
        osp_http_reply_error(&resp, rc, code, "%s", h->error);
    }
    int status = write_reply(out, &resp, h->is_head);
    osp_buf_deinit(&resp.body);
    free(h);
    return status;
}

/* ---- Server ---- */

enum conn_state { CONN_READ, CONN_WRITE, CONN_LINGER };

struct conn {
    struct osp_httpmini *h;
    struct conn *prev, *next; /* h->conns */
    int fd;
    enum conn_state state;
    ev_io io;       /* EV_READ in READ and LINGER, EV_WRITE in WRITE */
    ev_timer timer; /* exchange deadline, then the linger deadline */
    struct osp_buf out;
    size_t out_off; /* bytes of out already sent */
    size_t drained; /* bytes discarded in LINGER */
    size_t in_len;  /* bytes in in[] */
    char in[OSP_HTTPMINI_HEAD_MAX];
};

struct osp_httpmini {
    struct ev_loop *loop;
    int fd; /* listening socket */
    ev_io accept_w;
    ev_timer retry_w; /* accept paused after running out of fds or memory */
    struct osp_http_router *router;
    struct conn *conns; /* open connections, newest first */
    unsigned nconns;
    unsigned conn_limit;
    double timeout_s;
    unsigned port;
    struct osp_buf busy; /* the canned 503 for connections over the limit */
    uint64_t by_class[6];
};

static bool would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK;
}

static void conn_close(struct conn *c)
{
    struct osp_httpmini *h = c->h;
    ev_io_stop(h->loop, &c->io);
    ev_timer_stop(h->loop, &c->timer);
    close(c->fd);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        h->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    h->nconns--;
    osp_buf_deinit(&c->out);
    free(c);
}

static void conn_watch(struct conn *c, int events)
{
    ev_io_stop(c->h->loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(c->h->loop, &c->io);
}

/* The reply is out: stop sending, then drain what the peer still sends until it closes. */
static void conn_linger(struct conn *c)
{
    struct osp_httpmini *h = c->h;
    osp_buf_deinit(&c->out);
    (void)shutdown(c->fd, SHUT_WR);
    c->state = CONN_LINGER;
    conn_watch(c, EV_READ);
    ev_timer_stop(h->loop, &c->timer);
    ev_timer_set(&c->timer, h->timeout_s < LINGER_S ? h->timeout_s : LINGER_S, 0.0);
    ev_timer_start(h->loop, &c->timer);
}

static void conn_write(struct conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && would_block(errno)) {
            if (c->state != CONN_WRITE) {
                c->state = CONN_WRITE;
                conn_watch(c, EV_WRITE);
            }
            return;
        } else {
            conn_close(c); /* EPIPE, ECONNRESET: the peer is gone */
            return;
        }
    }
    conn_linger(c);
}

static void conn_read(struct conn *c)
{
    for (;;) {
        /* osp_httpmini_parse() never asks for more once OSP_HTTPMINI_HEAD_MAX bytes are in. */
        OSP_ASSERT(c->in_len < sizeof(c->in));
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && would_block(errno)) {
            return;
        }
        if (n <= 0) {
            conn_close(c); /* EOF or reset before a complete request: nobody to answer */
            return;
        }
        c->in_len += (size_t)n;
        int status = osp_httpmini_handle(c->h->router, c->in, c->in_len, &c->out);
        if (status != 0) {
            c->h->by_class[status / 100]++;
            conn_write(c); /* usually all of it fits the socket buffer at once */
            return;
        }
    }
}

static void conn_drain(struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in, sizeof(c->in), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && would_block(errno)) {
            return;
        }
        if (n <= 0) {
            conn_close(c); /* the peer closed (or reset): done */
            return;
        }
        c->drained += (size_t)n;
        if (c->drained > LINGER_MAX) {
            conn_close(c);
            return;
        }
    }
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *c = osp_container_of(w, struct conn, io);
    switch (c->state) {
    case CONN_READ:
        conn_read(c);
        break;
    case CONN_WRITE:
        conn_write(c);
        break;
    case CONN_LINGER:
        conn_drain(c);
        break;
    }
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_close(osp_container_of(w, struct conn, timer));
}

static void conn_new(struct osp_httpmini *h, int fd)
{
    struct conn *c = osp_xmalloc(sizeof(*c));
    c->h = h;
    c->prev = NULL;
    c->next = h->conns;
    if (h->conns != NULL) {
        h->conns->prev = c;
    }
    h->conns = c;
    h->nconns++;
    c->fd = fd;
    c->state = CONN_READ;
    c->out = (struct osp_buf)OSP_BUF_INIT;
    c->out_off = 0;
    c->drained = 0;
    c->in_len = 0;
    ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
    ev_io_start(h->loop, &c->io);
    ev_timer_init(&c->timer, conn_timer_cb, h->timeout_s, 0.0);
    ev_timer_start(h->loop, &c->timer);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct osp_httpmini *h = osp_container_of(w, struct osp_httpmini, accept_w);
    for (;;) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The listening socket stays readable: pause instead of spinning. */
                ev_io_stop(loop, &h->accept_w);
                ev_timer_set(&h->retry_w, ACCEPT_RETRY_S, 0.0);
                ev_timer_start(loop, &h->retry_w);
            }
            /* EAGAIN: all accepted. Anything else (network errors on a pending connection,
             * which Linux reports from accept): try again at the next readiness. */
            return;
        }
        if (h->nconns >= h->conn_limit) {
            (void)send(fd, h->busy.data, h->busy.len, MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            h->by_class[5]++;
            continue;
        }
        conn_new(h, fd);
    }
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct osp_httpmini *h = osp_container_of(w, struct osp_httpmini, retry_w);
    ev_io_start(loop, &h->accept_w);
}

static unsigned bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return 0;
}

struct osp_httpmini *osp_httpmini_new(struct ev_loop *loop, const struct osp_httpmini_opts *opts,
                                      struct osp_err *err)
{
    char host[256];
    char port[16];
    struct addrinfo *ai = NULL;
    int fd = -1;
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
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (gai != 0 || ai == NULL) {
        osp_err_set(err, OSP_EINVAL, "http address %.64s: %s", opts->addr, gai_strerror(gai));
        goto fail;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        osp_err_set(err, -e, "http: cannot listen on %.64s: %s", opts->addr, strerror(e));
        goto fail;
    }
    freeaddrinfo(ai);

    struct osp_httpmini *h = osp_xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->fd = fd;
    h->router = osp_http_router_new();
    h->conn_limit = opts->conn_limit ? opts->conn_limit : DEFAULT_CONN_LIMIT;
    h->timeout_s = opts->conn_timeout_s ? opts->conn_timeout_s : DEFAULT_TIMEOUT_S;
    h->port = bound_port(fd);
    struct osp_http_resp busy = {0, NULL, OSP_BUF_INIT, ""};
    osp_http_reply_error(&busy, 503, "busy", "too many connections; try again");
    write_reply(&h->busy, &busy, false);
    osp_buf_deinit(&busy.body);
    ev_io_init(&h->accept_w, accept_cb, fd, EV_READ);
    ev_io_start(loop, &h->accept_w);
    ev_timer_init(&h->retry_w, retry_cb, ACCEPT_RETRY_S, 0.0);
    return h;

fail:
    if (fd >= 0) {
        close(fd);
    }
    if (ai != NULL) {
        freeaddrinfo(ai);
    }
    return NULL;
}

void osp_httpmini_free(struct osp_httpmini *h)
{
    if (h == NULL) {
        return;
    }
    ev_io_stop(h->loop, &h->accept_w);
    ev_timer_stop(h->loop, &h->retry_w);
    while (h->conns != NULL) {
        conn_close(h->conns);
    }
    close(h->fd);
    osp_http_router_free(h->router);
    osp_buf_deinit(&h->busy);
    free(h);
}

struct osp_http_router *osp_httpmini_router(struct osp_httpmini *h)
{
    return h->router;
}

unsigned osp_httpmini_port(const struct osp_httpmini *h)
{
    return h->port;
}

uint64_t osp_httpmini_requests(const struct osp_httpmini *h, int status_class)
{
    return status_class >= 2 && status_class <= 5 ? h->by_class[status_class] : 0;
}

unsigned osp_httpmini_conns(const struct osp_httpmini *h)
{
    return h->nconns;
}
