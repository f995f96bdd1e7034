/* SPDX-License-Identifier: MIT */
/* libm_lazy.c — loads libm on first use (contract in libm_lazy.h). The member types are
 * checked against <math.h> at compile time; the checks name the functions only inside
 * _Generic, which is not evaluated, so this object references no libm symbol. */
#include "common/libm_lazy.h"

#include <dlfcn.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OSP_LIBM_FUNCS(X) X(exp) X(expm1) X(log) X(log1p) X(pow)

#define OSP_LIBM_MEMBER(m) (((struct osp_libm *)0)->m)
#define OSP_LIBM_CHECK(m)                                                                          \
    _Static_assert(_Generic(&m, __typeof__(OSP_LIBM_MEMBER(m)) : 1, default : 0),                  \
                   "osp_libm." #m " must have the prototype of " #m);
OSP_LIBM_FUNCS(OSP_LIBM_CHECK)

#define OSP_LIBM_COUNT(m) +1
_Static_assert(sizeof(struct osp_libm) == (0 OSP_LIBM_FUNCS(OSP_LIBM_COUNT)) * sizeof(void *),
               "every member of struct osp_libm must be listed in OSP_LIBM_FUNCS");

#define OSP_LIBM_ROW(m) {#m, offsetof(struct osp_libm, m)},
static const struct {
    const char *name;
    size_t offset;
} osp_libm_syms[] = {OSP_LIBM_FUNCS(OSP_LIBM_ROW)};

static struct osp_libm osp_libm_table;
static int osp_libm_loaded;

const struct osp_libm *osp_libm(void)
{
    if (osp_libm_loaded) {
        return &osp_libm_table;
    }
    void *lib = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *why = dlerror();
        fprintf(stderr, "opspool: libm.so.6 could not be loaded (%s); the C library is broken\n",
                why != NULL ? why : "unknown error");
        abort();
    }
    for (size_t i = 0; i < sizeof(osp_libm_syms) / sizeof(osp_libm_syms[0]); i++) {
        void *sym = dlsym(lib, osp_libm_syms[i].name);
        if (sym == NULL) {
            fprintf(stderr, "opspool: libm.so.6 has no %s\n", osp_libm_syms[i].name);
            abort();
        }
        /* POSIX: a function's address converts through void *; memcpy avoids the cast
         * -Wpedantic rejects. */
        memcpy((char *)&osp_libm_table + osp_libm_syms[i].offset, &sym, sizeof(sym));
    }
    osp_libm_loaded = 1;
    return &osp_libm_table;
}
