/* SPDX-License-Identifier: MIT */
/* resp.h — an incremental HTTP/1.1 response parser for the load generator: status line,
 * Content-Length, Transfer-Encoding: chunked, Connection, and one configurable cache header
 * (e.g. "X-Cache: HIT"). Bodies are skipped, never stored. Bytes may arrive split anywhere.
 * Pipelining is off, so bytes after a complete response are a protocol error for the caller. */
#ifndef OSP_BENCH_RESP_H
#define OSP_BENCH_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_RESP_LINE_MAX 4096 /* longest status/header/chunk-size line accepted */

enum bench_resp_state {
    BENCH_RESP_STATUS,
    BENCH_RESP_HEADERS,
    BENCH_RESP_BODY_LEN,     /* Content-Length bytes left in `remaining` */
    BENCH_RESP_CHUNK_SIZE,
    BENCH_RESP_CHUNK_DATA,
    BENCH_RESP_CHUNK_CRLF,
    BENCH_RESP_TRAILERS,
    BENCH_RESP_BODY_EOF,     /* neither length nor chunked: body ends when the peer closes */
    BENCH_RESP_DONE,
};

struct bench_resp {
    enum bench_resp_state state;
    int status;               /* 100..599 once the status line is parsed */
    bool keep_alive;          /* after DONE: the connection may be reused */
    bool cache_seen;          /* the cache header was present */
    bool cache_hit;           /* ... and its value started with the hit value */
    bool head;                /* the request was HEAD: no body whatever the headers say */
    bool chunked;
    bool has_length;
    bool http10;
    uint64_t remaining;       /* body or chunk bytes left */
    uint64_t body_bytes;      /* body bytes seen (for throughput) */
    const char *cache_name;   /* borrowed: header name compared case-insensitively; may be NULL */
    size_t cache_name_len;
    const char *hit_value;    /* borrowed: e.g. "HIT" */
    size_t hit_value_len;
    size_t line_len;          /* bytes held in line[] while a line is split across reads */
    char line[BENCH_RESP_LINE_MAX];
};

/* cache_name/hit_value are borrowed and must outlive r. */
void bench_resp_init(struct bench_resp *r, const char *cache_name, const char *hit_value);
/* Prepare for the next response on the connection. */
void bench_resp_reset(struct bench_resp *r, bool head_request);
/* Consume bytes. Returns how many were used (stops right after a complete response, state
 * DONE), or -1 on a malformed response. */
ssize_t bench_resp_feed(struct bench_resp *r, const char *p, size_t n);
/* The peer closed: true when that completes the response (body delimited by close). */
bool bench_resp_eof(struct bench_resp *r);

#endif
