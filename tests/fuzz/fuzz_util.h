/* SPDX-License-Identifier: MIT */
/* fuzz_util.h — small helpers shared by the libFuzzer targets (header-only). Each target
 * declares its own LLVMFuzzerTestOneInput/LLVMFuzzerInitialize prototypes, so that
 * tests/unit/fuzz/test_regressions.c can include every target under renamed entry points. */
#ifndef OSP_FUZZ_UTIL_H
#define OSP_FUZZ_UTIL_H

#include "common/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A NUL-terminated copy of the input (owned by the caller). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL) {
        abort();
    }
    if (size > 0) {
        memcpy(s, data, size);
    }
    s[size] = '\0';
    return s;
}

/* A failed call must say why: an error code and a non-empty message. */
static inline void fuzz_check_err(int rc, const struct osp_err *err, const char *what)
{
    if (rc < 0 && err->msg[0] == '\0') {
        fprintf(stderr, "%s failed (%d) without a message\n", what, rc);
        abort();
    }
    if (memchr(err->msg, '\0', sizeof(err->msg)) == NULL) {
        fprintf(stderr, "%s: unterminated error message\n", what);
        abort();
    }
}

#define FUZZ_ASSERT(x)                                                                             \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #x);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
