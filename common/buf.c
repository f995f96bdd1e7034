/* SPDX-License-Identifier: MIT */
/* buf.c — growable byte buffer; doubling growth, binary-safe. */
#include "common/buf.h"
#include "common/alloc.h"
#include "common/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void osp_buf_reserve(struct osp_buf *b, size_t extra)
{
    OSP_ASSERT(b->len + extra >= b->len);
    size_t need = b->len + extra + 1; /* room for a NUL from osp_buf_cstr */
    if (need <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        cap *= 2;
    }
    b->data = osp_xrealloc(b->data, cap);
    b->cap = cap;
}

void osp_buf_append(struct osp_buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    osp_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void osp_buf_appendf(struct osp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    OSP_ASSERT(n >= 0);
    osp_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *osp_buf_cstr(struct osp_buf *b)
{
    osp_buf_reserve(b, 1);
    b->data[b->len] = '\0';
    return (const char *)b->data;
}

void osp_buf_consume(struct osp_buf *b, size_t n)
{
    OSP_ASSERT(n <= b->len);
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void osp_buf_reset(struct osp_buf *b)
{
    b->len = 0;
}

void osp_buf_deinit(struct osp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
