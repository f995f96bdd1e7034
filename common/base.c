/* SPDX-License-Identifier: MIT */
/* base.c — assertion failure, clocks, error strings and the aborting allocator. */
#include "common/alloc.h"
#include "common/base.h"
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t (*osp_now_ms_hook)(void) = NULL;

_Noreturn void osp_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"assertion failed: %s\",\"file\":\"%s\",\"line\":%d}\n",
            expr, file, line);
    abort();
}

int64_t osp_now_ms(void)
{
    if (osp_now_ms_hook != NULL) {
        return osp_now_ms_hook();
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t osp_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *osp_strerror(int code)
{
    switch (code) {
    case 0: return "success";
    case OSP_EREDIS: return "redis error";
    case OSP_EPG: return "postgresql error";
    case OSP_EPROTO: return "protocol error";
    case OSP_EINVAL: return "invalid argument";
    case OSP_ETIMEDOUT: return "timed out";
    case OSP_ECANCELED: return "cancelled";
    case OSP_EVERIFY: return "verification failed";
    case OSP_ETOOBIG: return "too big";
    case OSP_ENOTFOUND: return "not found";
    case OSP_EFAILED: return "failed";
    case OSP_ECONFLICT: return "conflict";
    case OSP_EVERDICT: return "verdict failed";
    default: break;
    }
    if (code < 0 && code > -4000) {
        return strerror(-code);
    }
    return "unknown error";
}

int osp_err_set(struct osp_err *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

static _Noreturn void oom(size_t n)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n", n);
    abort();
}

void *osp_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        oom(n);
    }
    return p;
}

void *osp_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL) {
        oom(nmemb * size);
    }
    return p;
}

void *osp_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        oom(n);
    }
    return q;
}

char *osp_xstrdup(const char *s)
{
    return osp_xstrndup(s, strlen(s));
}

char *osp_xstrndup(const char *s, size_t n)
{
    char *p = osp_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *osp_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    OSP_ASSERT(n >= 0);
    char *p = osp_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
