/* SPDX-License-Identifier: MIT */
/* seedfmt.c — COPY field writers (contract: seedfmt.h). Pure functions, no allocation.
 *
 * Big-endian stores are written byte by byte: compilers fold them into one bswap + store, and
 * the code stays free of alignment and aliasing questions. */
#include "jobs/seed/seedfmt.h"

#include <string.h>

const char seed_fmt_bin_header[SEED_FMT_BIN_HEADER_LEN] = {
    'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0', /* signature */
    0,   0,   0,   0,                                             /* flags: no OIDs */
    0,   0,   0,   0};                                            /* header extension length */
const char seed_fmt_bin_trailer[SEED_FMT_BIN_TRAILER_LEN] = {'\377', '\377'};

static char *seed_fmt_be16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
    return p + 2;
}

static char *seed_fmt_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
    return p + 4;
}

static char *seed_fmt_be64(char *p, uint64_t v)
{
    p = seed_fmt_be32(p, (uint32_t)(v >> 32));
    return seed_fmt_be32(p, (uint32_t)v);
}

char *seed_fmt_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}

char *seed_fmt_i64(char *p, int64_t v)
{
    if (v >= 0) {
        return seed_fmt_u64(p, (uint64_t)v);
    }
    *p++ = '-';
    /* Negate in unsigned arithmetic: -INT64_MIN does not fit an int64. */
    return seed_fmt_u64(p, 0 - (uint64_t)v);
}

char *seed_fmt_text(char *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        switch (c) {
        case '\\':
            *p++ = '\\';
            *p++ = '\\';
            break;
        case '\t':
            *p++ = '\\';
            *p++ = 't';
            break;
        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;
        case '\r':
            *p++ = '\\';
            *p++ = 'r';
            break;
        default:
            *p++ = c;
            break;
        }
    }
    return p;
}

char *seed_fmt_bin_tuple(char *p, uint16_t nfields)
{
    return seed_fmt_be16(p, nfields);
}

char *seed_fmt_bin_i32(char *p, int32_t v)
{
    p = seed_fmt_be32(p, 4);
    return seed_fmt_be32(p, (uint32_t)v);
}

char *seed_fmt_bin_i64(char *p, int64_t v)
{
    p = seed_fmt_be32(p, 8);
    return seed_fmt_be64(p, (uint64_t)v);
}

char *seed_fmt_bin_ts(char *p, int64_t unix_s)
{
    /* timestamptz_send: int64 microseconds since 2000-01-01 00:00 UTC. */
    return seed_fmt_bin_i64(p, unix_s * 1000000LL - SEED_FMT_PG_EPOCH_US);
}

char *seed_fmt_bin_text(char *p, const char *s, size_t n)
{
    p = seed_fmt_be32(p, (uint32_t)n);
    memcpy(p, s, n);
    return p + n;
}

char *seed_fmt_bin_null(char *p)
{
    return seed_fmt_be32(p, UINT32_MAX); /* length -1 */
}

char *seed_fmt_bin_text_begin(char *p)
{
    return p + 4;
}

char *seed_fmt_bin_text_end(char *body, char *end)
{
    seed_fmt_be32(body - 4, (uint32_t)(end - body));
    return end;
}
