/* SPDX-License-Identifier: MIT */
/* http_router.c — the parts of common/http.h that need no server: the router (method + path
 * pattern with {name} segments) and the JSON body/reply helpers. Split from http.c so that unit
 * tests and fuzzers can drive them without a server; this file never includes microhttpd.h.
 * Contract: common/http.h. */
#include "common/alloc.h"
#include "common/base.h"
#include "common/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

/* ---- Router ---- */

struct route {
    char *method;
    char *pattern;
    unsigned flags;
    osp_http_handler *fn;
    void *arg;
};

struct osp_http_router {
    struct route *routes;
    size_t n, cap;
};

struct osp_http_router *osp_http_router_new(void)
{
    return osp_xcalloc(1, sizeof(struct osp_http_router));
}

void osp_http_router_free(struct osp_http_router *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        free(r->routes[i].method);
        free(r->routes[i].pattern);
    }
    free(r->routes);
    free(r);
}

void osp_http_router_add(struct osp_http_router *r, const char *method, const char *pattern,
                         unsigned flags, osp_http_handler *fn, void *arg)
{
    OSP_ASSERT(pattern[0] == '/' && fn != NULL);
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->routes = osp_xrealloc(r->routes, r->cap * sizeof(*r->routes));
    }
    r->routes[r->n++] = (struct route){osp_xstrdup(method), osp_xstrdup(pattern), flags, fn, arg};
}

/* Match path against pattern segment by segment; fills params on success. */
static bool pattern_match(const char *pattern, const char *path, struct osp_http_match *m)
{
    size_t np = 0;
    const char *p = pattern;
    const char *s = path;
    while (*p != '\0' && *s != '\0') {
        if (*p != '/' || *s != '/') {
            return false;
        }
        p++;
        s++;
        const char *pe = strchr(p, '/');
        const char *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        size_t sl = se ? (size_t)(se - s) : strlen(s);
        if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (sl == 0 || sl > OSP_HTTP_PARAM_MAX || np == OSP_HTTP_MAX_PARAMS) {
                return false;
            }
            memcpy(m->params[np], s, sl);
            m->params[np][sl] = '\0';
            size_t nl = pl - 2 > OSP_HTTP_NAME_MAX ? OSP_HTTP_NAME_MAX : pl - 2;
            memcpy(m->names[np], p + 1, nl);
            m->names[np][nl] = '\0';
            np++;
        } else if (pl != sl || memcmp(p, s, pl) != 0) {
            return false;
        }
        p += pl;
        s += sl;
    }
    if (*p != '\0' || *s != '\0') {
        return false;
    }
    m->nparams = np;
    return true;
}

void osp_http_router_match(const struct osp_http_router *r, const char *method, const char *path,
                           struct osp_http_match *m)
{
    memset(m, 0, sizeof(*m));
    m->status = 404;
    for (size_t i = 0; i < r->n; i++) {
        const struct route *rt = &r->routes[i];
        struct osp_http_match tmp;
        memset(&tmp, 0, sizeof(tmp));
        if (!pattern_match(rt->pattern, path, &tmp)) {
            continue;
        }
        if (strcmp(rt->method, method) == 0) {
            char allow[sizeof(m->allow)];
            memcpy(allow, m->allow, sizeof(allow));
            *m = tmp;
            memcpy(m->allow, allow, sizeof(allow));
            m->fn = rt->fn;
            m->arg = rt->arg;
            m->flags = rt->flags;
            m->status = 200;
            return;
        }
        /* Path known, method not (yet): remember the method for the Allow header. */
        m->status = 405;
        if (strstr(m->allow, rt->method) == NULL) {
            size_t len = strlen(m->allow);
            snprintf(m->allow + len, sizeof(m->allow) - len, "%s%s", len ? ", " : "", rt->method);
        }
    }
}

void osp_http_req_params(struct osp_http_req *req, const struct osp_http_match *m)
{
    for (size_t i = 0; i < m->nparams; i++) {
        req->params[i] = m->params[i];
        req->param_names[i] = m->names[i];
    }
    req->nparams = m->nparams;
}

int osp_http_hex_digit(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int osp_http_target_check(const char *target, size_t len, const char **why)
{
    if (len > OSP_HTTP_URI_MAX) {
        *why = "request target longer than 8192 bytes";
        return 414;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c < 0x20 || c == 0x7f) {
            *why = "control byte in the request target";
            return 400;
        }
        if (c != '%') {
            continue;
        }
        int hi = i + 1 < len ? osp_http_hex_digit((unsigned char)target[i + 1]) : -1;
        int lo = i + 2 < len ? osp_http_hex_digit((unsigned char)target[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            *why = "malformed percent-escape in the request target (expected %XX)";
            return 400;
        }
        int v = hi * 16 + lo;
        if (v < 0x20 || v == 0x7f) {
            *why = "percent-encoded control byte (%00-%1F, %7F) in the request target";
            return 400;
        }
        i += 2;
    }
    *why = NULL;
    return 0;
}

/* ---- Request helpers ---- */

json_t *osp_http_body_object(const struct osp_http_req *req, struct osp_http_resp *resp)
{
    if (req->body_len == 0) {
        osp_http_reply_error(resp, 400, "bad_json",
                             "request body is empty; expected a JSON object");
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (v == NULL) {
        osp_http_reply_error(resp, 400, "bad_json", "invalid JSON at line %d column %d: %s",
                             je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        osp_http_reply_error(resp, 400, "bad_json", "request body must be a JSON object");
        return NULL;
    }
    return v;
}

/* ---- Reply helpers ---- */

void osp_http_reply_json(struct osp_http_resp *resp, int status, json_t *body)
{
    resp->status = status;
    resp->content_type = "application/json";
    osp_buf_reset(&resp->body);
    if (body != NULL) {
        char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12));
        json_decref(body);
        if (s != NULL) {
            osp_buf_append(&resp->body, s, strlen(s));
            osp_buf_append(&resp->body, "\n", 1);
            free(s);
        }
    }
}

void osp_http_reply_error(struct osp_http_resp *resp, int status, const char *code, const char *fmt,
                          ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* jansson rejects invalid UTF-8; messages may quote user input, so fall back to ASCII. */
    json_t *m = json_string(msg);
    if (m == NULL) {
        for (char *p = msg; *p != '\0'; p++) {
            if ((unsigned char)*p >= 0x80) {
                *p = '?';
            }
        }
        m = json_string(msg);
    }
    osp_http_reply_json(resp, status,
                        json_pack("{s:{s:s,s:o}}", "error", "code", code, "message", m));
}

void osp_http_reply_text(struct osp_http_resp *resp, int status, const char *content_type,
                         const char *text, size_t len)
{
    resp->status = status;
    resp->content_type = content_type;
    osp_buf_reset(&resp->body);
    osp_buf_append(&resp->body, text, len);
}

int osp_http_resp_header(struct osp_http_resp *resp, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL) {
        return -1;
    }
    size_t have = strlen(resp->headers);
    size_t need = strlen(name) + 2 + strlen(value) + 1;
    if (have + need >= sizeof(resp->headers)) {
        return -1;
    }
    snprintf(resp->headers + have, sizeof(resp->headers) - have, "%s: %s\n", name, value);
    return 0;
}

/* ---- Form bodies ---- */

/* Decode [s, s + n) of a form field into out: its length, or -2. */
static int form_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n) {
                return -2;
            }
            int a = osp_http_hex_digit((unsigned char)s[i + 1]);
            int b = osp_http_hex_digit((unsigned char)s[i + 2]);
            if (a < 0 || b < 0) {
                return -2;
            }
            c = a * 16 + b;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap) {
            return -2;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

int osp_http_form_value(const char *body, size_t len, const char *name, size_t index, char *out,
                        size_t cap)
{
    size_t nlen = strlen(name);
    size_t pos = 0;
    if (cap == 0) {
        return -2;
    }
    while (pos < len) {
        const char *f = body + pos;
        const char *amp = memchr(f, '&', len - pos);
        size_t flen = amp ? (size_t)(amp - f) : len - pos;
        const char *eq = memchr(f, '=', flen);
        size_t klen = eq ? (size_t)(eq - f) : flen;
        if (klen == nlen && memcmp(f, name, nlen) == 0) {
            if (index == 0) {
                return eq ? form_decode(eq + 1, flen - klen - 1, out, cap) : (out[0] = '\0', 0);
            }
            index--;
        }
        pos += flen + 1;
    }
    return -1;
}

int osp_http_write_port_file(const char *path, unsigned port, struct osp_err *err)
{
    if (path == NULL || path[0] == '\0') {
        return 0;
    }
    char *tmp = osp_xasprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (f == NULL || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        rc = -errno;
        osp_err_set(err, rc, "port file %.200s: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

int osp_http_split_addr(const char *addr, char *host, size_t hostcap, char *port, size_t portcap)
{
    const char *colon;
    const char *hs = addr;
    size_t hl;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (rb == NULL || rb[1] != ':') {
            return -1;
        }
        hs = addr + 1;
        hl = (size_t)(rb - hs);
        colon = rb + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL) {
            return -1;
        }
        hl = (size_t)(colon - addr);
    }
    size_t pl = strlen(colon + 1);
    if (hl >= hostcap || pl == 0 || pl > 5 || pl >= portcap ||
        strspn(colon + 1, "0123456789") != pl || strtol(colon + 1, NULL, 10) > 65535) {
        return -1;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, pl + 1);
    return 0;
}
