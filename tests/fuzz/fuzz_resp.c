/* SPDX-License-Identifier: MIT */
/* fuzz_resp.c — libFuzzer target for the benchmark's incremental HTTP/1.1 response parser
 * (jobs/benchmark/resp.h). The server under test is not trusted to speak HTTP well.
 *
 * Input: one flags byte (bit 0: HEAD request; bit 1: watch an X-Cache header; bits 4-7: seed of
 * the read sizes), then the bytes the server sends. The stream is parsed as consecutive
 * responses on a keep-alive connection (reset after each DONE), once fed whole and once in
 * reads of 1..16 bytes; both must agree on every response's status, flags, body size and on
 * where parsing stopped. Then the peer "closes" (bench_resp_eof). */
#include "jobs/benchmark/resp.h"
#include "tests/fuzz/fuzz_util.h"

#define MAX_RESPONSES 8

struct summary {
    int n; /* complete responses */
    int status[MAX_RESPONSES];
    uint64_t body[MAX_RESPONSES];
    unsigned flags[MAX_RESPONSES];
    bool failed;     /* the parser said -1 */
    size_t consumed; /* bytes used before stopping */
    bool eof_done;   /* closing completed the last response */
};

static unsigned flags_of(const struct bench_resp *r)
{
    return (unsigned)r->keep_alive | (unsigned)r->cache_seen << 1 | (unsigned)r->cache_hit << 2 |
           (unsigned)r->chunked << 3 | (unsigned)r->http10 << 4;
}

static void parse(const uint8_t *p, size_t n, bool head, bool cache, unsigned seed, bool split,
                  struct summary *s)
{
    struct bench_resp r;
    bench_resp_init(&r, cache ? "X-Cache" : NULL, cache ? "HIT" : NULL);
    bench_resp_reset(&r, head);
    memset(s, 0, sizeof(*s));
    size_t off = 0;
    unsigned k = seed;
    while (off < n && s->n < MAX_RESPONSES) {
        size_t len = n - off;
        if (split) {
            k = k * 1103515245u + 12345u;
            size_t piece = (k >> 16) % 16 + 1;
            len = piece < len ? piece : len;
        }
        ssize_t used = bench_resp_feed(&r, (const char *)p + off, len);
        if (used < 0) {
            s->failed = true;
            break;
        }
        FUZZ_ASSERT((size_t)used <= len);
        FUZZ_ASSERT(r.line_len <= sizeof(r.line));
        off += (size_t)used;
        if (r.state == BENCH_RESP_DONE) {
            FUZZ_ASSERT(r.status >= 200 && r.status <= 599);
            s->status[s->n] = r.status;
            s->body[s->n] = r.body_bytes;
            s->flags[s->n] = flags_of(&r);
            s->n++;
            bench_resp_reset(&r, head);
        } else {
            FUZZ_ASSERT((size_t)used == len); /* not done: everything offered was taken */
        }
    }
    s->consumed = off;
    if (!s->failed) {
        int st = r.status;
        s->eof_done = bench_resp_eof(&r);
        if (s->eof_done && s->n < MAX_RESPONSES && st != 0) {
            s->status[s->n] = st;
            s->body[s->n] = r.body_bytes;
            s->n++;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    bool head = data[0] & 1;
    bool cache = data[0] & 2;
    unsigned seed = data[0] >> 4;
    struct summary a, b;
    parse(data + 1, size - 1, head, cache, seed, false, &a);
    parse(data + 1, size - 1, head, cache, seed, true, &b);
    if (a.failed != b.failed || a.n != b.n || (!a.failed && a.consumed != b.consumed) ||
        a.eof_done != b.eof_done) {
        fprintf(stderr, "whole vs split: failed %d/%d responses %d/%d consumed %zu/%zu\n", a.failed,
                b.failed, a.n, b.n, a.consumed, b.consumed);
        abort();
    }
    for (int i = 0; i < a.n; i++) {
        FUZZ_ASSERT(a.status[i] == b.status[i] && a.body[i] == b.body[i]);
        FUZZ_ASSERT(a.flags[i] == b.flags[i]);
    }
    return 0;
}
