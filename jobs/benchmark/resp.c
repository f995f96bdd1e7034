/* SPDX-License-Identifier: MIT */
/* resp.c — the incremental response parser (contract in resp.h). Lines are parsed in place
 * when a whole line is inside the read buffer (the common case: one read holds the response)
 * and only copied into r->line when a read ends mid-line. */
#include "jobs/benchmark/resp.h"

#include <string.h>
#include <strings.h>

void bench_resp_init(struct bench_resp *r, const char *cache_name, const char *hit_value)
{
    memset(r, 0, offsetof(struct bench_resp, line));
    r->cache_name = cache_name;
    r->cache_name_len = cache_name != NULL ? strlen(cache_name) : 0;
    r->hit_value = hit_value != NULL ? hit_value : "HIT";
    r->hit_value_len = strlen(r->hit_value);
    bench_resp_reset(r, false);
}

void bench_resp_reset(struct bench_resp *r, bool head_request)
{
    r->state = BENCH_RESP_STATUS;
    r->status = 0;
    r->keep_alive = true;
    r->cache_seen = false;
    r->cache_hit = false;
    r->head = head_request;
    r->chunked = false;
    r->has_length = false;
    r->http10 = false;
    r->remaining = 0;
    r->body_bytes = 0;
    r->line_len = 0;
}

static bool resp_name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* Case-insensitive search for a token in a comma-separated header value. */
static bool resp_value_has(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= n; i++) {
        if (strncasecmp(v + i, tok, tl) == 0) {
            return true;
        }
    }
    return false;
}

static int resp_status_line(struct bench_resp *r, const char *s, size_t n)
{
    /* "HTTP/1.x SSS reason" */
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ') {
        return -1;
    }
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        st = st * 10 + (s[i] - '0');
    }
    if (st < 100 || st > 599 || (n > 12 && s[12] != ' ')) {
        return -1;
    }
    r->status = st;
    r->http10 = s[7] == '0';
    r->keep_alive = !r->http10;
    r->state = BENCH_RESP_HEADERS;
    return 0;
}

static int resp_parse_u64(const char *v, size_t n, int base, uint64_t *out)
{
    uint64_t x = 0;
    size_t i = 0;
    for (; i < n; i++) {
        int d;
        char c = v[i];
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (base == 16 && c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else if (base == 16 && c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else {
            break;
        }
        if (x > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) {
            return -1;
        }
        x = x * (uint64_t)base + (uint64_t)d;
    }
    if (i == 0) {
        return -1;
    }
    /* Chunk extensions (";name=value") and trailing spaces are allowed after the number. */
    for (; i < n; i++) {
        if (v[i] == ';') {
            break;
        }
        if (v[i] != ' ' && v[i] != '\t') {
            return -1;
        }
    }
    *out = x;
    return 0;
}

/* The blank line ending the headers: decide how the body is delimited. */
static void resp_headers_done(struct bench_resp *r)
{
    if (r->status < 200) {
        /* An interim response (100 Continue): the real one follows. */
        bool head = r->head;
        bench_resp_reset(r, head);
        return;
    }
    if (r->head || r->status == 204 || r->status == 304) {
        r->state = BENCH_RESP_DONE;
    } else if (r->chunked) {
        r->state = BENCH_RESP_CHUNK_SIZE;
    } else if (r->has_length) {
        r->state = r->remaining == 0 ? BENCH_RESP_DONE : BENCH_RESP_BODY_LEN;
    } else {
        r->state = BENCH_RESP_BODY_EOF;
        r->keep_alive = false;
    }
}

static int resp_header_line(struct bench_resp *r, const char *s, size_t n)
{
    if (n == 0) {
        resp_headers_done(r);
        return 0;
    }
    const char *colon = memchr(s, ':', n);
    if (colon == NULL || colon == s) {
        return -1;
    }
    size_t nl = (size_t)(colon - s);
    const char *v = colon + 1;
    size_t vl = n - nl - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vl--;
    }
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) {
        vl--;
    }
    if (resp_name_is(s, nl, "content-length")) {
        uint64_t len;
        if (resp_parse_u64(v, vl, 10, &len) != 0 || memchr(v, ';', vl) != NULL ||
            (r->has_length && len != r->remaining)) {
            return -1;
        }
        r->has_length = true;
        r->remaining = len;
    } else if (resp_name_is(s, nl, "transfer-encoding")) {
        if (!resp_value_has(v, vl, "chunked")) {
            return -1; /* other codings (gzip alone, identity) cannot be delimited here */
        }
        r->chunked = true;
    } else if (resp_name_is(s, nl, "connection")) {
        if (resp_value_has(v, vl, "close")) {
            r->keep_alive = false;
        } else if (resp_value_has(v, vl, "keep-alive")) {
            r->keep_alive = true;
        }
    } else if (r->cache_name_len > 0 && nl == r->cache_name_len &&
               strncasecmp(s, r->cache_name, nl) == 0) {
        r->cache_seen = true;
        r->cache_hit = vl >= r->hit_value_len && strncasecmp(v, r->hit_value, r->hit_value_len) == 0;
    }
    return 0;
}

static int resp_chunk_size_line(struct bench_resp *r, const char *s, size_t n)
{
    uint64_t sz;
    if (resp_parse_u64(s, n, 16, &sz) != 0) {
        return -1;
    }
    r->remaining = sz;
    r->state = sz == 0 ? BENCH_RESP_TRAILERS : BENCH_RESP_CHUNK_DATA;
    return 0;
}

static int resp_line(struct bench_resp *r, const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '\r') {
        n--;
    }
    switch (r->state) {
    case BENCH_RESP_STATUS:
        return resp_status_line(r, s, n);
    case BENCH_RESP_HEADERS:
        return resp_header_line(r, s, n);
    case BENCH_RESP_CHUNK_SIZE:
        return resp_chunk_size_line(r, s, n);
    case BENCH_RESP_CHUNK_CRLF:
        if (n != 0) {
            return -1;
        }
        r->state = BENCH_RESP_CHUNK_SIZE;
        return 0;
    case BENCH_RESP_TRAILERS:
        if (n == 0) {
            r->state = BENCH_RESP_DONE;
        }
        return 0;
    default:
        return -1;
    }
}

ssize_t bench_resp_feed(struct bench_resp *r, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && r->state != BENCH_RESP_DONE) {
        if (r->state == BENCH_RESP_BODY_LEN || r->state == BENCH_RESP_CHUNK_DATA) {
            uint64_t take = n - i < r->remaining ? n - i : r->remaining;
            i += take;
            r->remaining -= take;
            r->body_bytes += take;
            if (r->remaining == 0) {
                r->state = r->state == BENCH_RESP_BODY_LEN ? BENCH_RESP_DONE : BENCH_RESP_CHUNK_CRLF;
            }
            continue;
        }
        if (r->state == BENCH_RESP_BODY_EOF) {
            r->body_bytes += n - i;
            i = n;
            continue;
        }
        const char *nl = memchr(p + i, '\n', n - i);
        if (nl == NULL) {
            size_t rest = n - i;
            if (r->line_len + rest > sizeof(r->line)) {
                return -1;
            }
            memcpy(r->line + r->line_len, p + i, rest);
            r->line_len += rest;
            i = n;
            break;
        }
        size_t ll = (size_t)(nl - (p + i));
        int rc;
        if (r->line_len > 0) {
            if (r->line_len + ll > sizeof(r->line)) {
                return -1;
            }
            memcpy(r->line + r->line_len, p + i, ll);
            rc = resp_line(r, r->line, r->line_len + ll);
            r->line_len = 0;
        } else {
            if (ll > sizeof(r->line)) {
                return -1;
            }
            rc = resp_line(r, p + i, ll);
        }
        if (rc != 0) {
            return -1;
        }
        i += ll + 1;
    }
    return (ssize_t)i;
}

bool bench_resp_eof(struct bench_resp *r)
{
    if (r->state == BENCH_RESP_BODY_EOF) {
        r->state = BENCH_RESP_DONE;
        return true;
    }
    return r->state == BENCH_RESP_DONE;
}
