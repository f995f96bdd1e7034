/* SPDX-License-Identifier: MIT */
/* buf.h — a growable, binary-safe byte buffer that carries its length (like sds).
 * An embedded struct osp_buf owns `data`; osp_buf_deinit frees it. data may be NULL when cap==0. */
#ifndef OSP_BUF_H
#define OSP_BUF_H

#include <stddef.h>
#include <stdint.h>

struct osp_buf {
    uint8_t *data; /* owned; not NUL-terminated unless osp_buf_cstr was called */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
};

#define OSP_BUF_INIT {NULL, 0, 0}

void osp_buf_reserve(struct osp_buf *b, size_t extra);
void osp_buf_append(struct osp_buf *b, const void *p, size_t n);
void osp_buf_appendf(struct osp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ensure a NUL after the data (not counted in len) and return data as a C string. */
const char *osp_buf_cstr(struct osp_buf *b);
/* Drop the first n bytes. */
void osp_buf_consume(struct osp_buf *b, size_t n);
void osp_buf_reset(struct osp_buf *b);
void osp_buf_deinit(struct osp_buf *b);

#endif
