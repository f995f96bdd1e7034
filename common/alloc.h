/* SPDX-License-Identifier: MIT */
/* alloc.h — allocation that never returns NULL: on OOM it logs and aborts (Redis zmalloc),
 * so callers never check. Recoverable failures are I/O and peer errors, not memory. */
#ifndef OSP_ALLOC_H
#define OSP_ALLOC_H

#include <stddef.h>

void *osp_xmalloc(size_t n);
void *osp_xcalloc(size_t nmemb, size_t size);
void *osp_xrealloc(void *p, size_t n);
char *osp_xstrdup(const char *s);
char *osp_xstrndup(const char *s, size_t n);
/* printf into a fresh heap string (owned by the caller). */
char *osp_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
