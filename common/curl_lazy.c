/* SPDX-License-Identifier: MIT */
/* curl_lazy.c — loads libcurl on first use and fills the function table (contract in
 * curl_lazy.h).
 *
 * OSP_CURL_FUNCS is the one list of what is resolved: each row names a table member and the
 * curl function it stands for. From it come the dlsym table and, at compile time, a check
 * that each member has the real prototype from <curl/curl.h> and that no member is left out
 * of the list. The checks only name the curl functions inside _Generic and sizeof, which are
 * not evaluated, so this object (and the programs linking it) references no curl_ symbol.
 *
 * ISO C has no conversion from void * (dlsym's result) to a function pointer; POSIX
 * guarantees the representations match, so the address is copied with memcpy instead of a
 * cast, which -Wpedantic would reject. */
#include "common/curl_lazy.h"

#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

#define OSP_CURL_SONAME_DEFAULT "libcurl.so.4"

#define OSP_CURL_FUNCS(X)                                                                          \
    X(global_init, curl_global_init)                                                               \
    X(easy_init, curl_easy_init)                                                                   \
    X(easy_reset, curl_easy_reset)                                                                 \
    X(easy_setopt, curl_easy_setopt)                                                               \
    X(easy_perform, curl_easy_perform)                                                             \
    X(easy_getinfo, curl_easy_getinfo)                                                             \
    X(easy_strerror, curl_easy_strerror)                                                           \
    X(easy_cleanup, curl_easy_cleanup)                                                             \
    X(easy_escape, curl_easy_escape)                                                               \
    X(free, curl_free)                                                                             \
    X(slist_append, curl_slist_append)                                                             \
    X(slist_free_all, curl_slist_free_all)

/* Compile-time checks, one pair per row. */
#define OSP_CURL_MEMBER(m) (((struct osp_curl *)0)->m)
#define OSP_CURL_CHECK(m, fn)                                                                      \
    _Static_assert(_Generic(&fn, __typeof__(OSP_CURL_MEMBER(m)) : 1, default : 0),                 \
                   "osp_curl." #m " must have the prototype of " #fn);                             \
    _Static_assert(sizeof(OSP_CURL_MEMBER(m)) == sizeof(void *),                                   \
                   "osp_curl." #m ": a function pointer must be as wide as void *");
OSP_CURL_FUNCS(OSP_CURL_CHECK)

#define OSP_CURL_COUNT(m, fn) +1
_Static_assert(sizeof(struct osp_curl) == (0 OSP_CURL_FUNCS(OSP_CURL_COUNT)) * sizeof(void *),
               "every member of struct osp_curl must have a row in OSP_CURL_FUNCS");

struct osp_curl_sym {
    const char *name; /* exported symbol */
    size_t offset;    /* of its member in struct osp_curl */
};

#define OSP_CURL_ROW(m, fn) {#fn, offsetof(struct osp_curl, m)},
static const struct osp_curl_sym osp_curl_syms[] = {OSP_CURL_FUNCS(OSP_CURL_ROW)};

const char *osp_curl_soname = OSP_CURL_SONAME_DEFAULT;

/* The cache: filled once, by the first osp_curl_get(). */
static struct osp_curl osp_curl_table;
static int osp_curl_state; /* 0 not tried yet, 1 loaded, -1 failed (osp_curl_failure says why) */
static struct osp_err osp_curl_failure;

static int osp_curl_load(struct osp_curl *t, struct osp_err *err)
{
    /* Not closed on failure either: the brief life of a failing child does not need the
     * pages back, and a half-initialised library is never unmapped under anyone. */
    void *lib = dlopen(osp_curl_soname, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *why = dlerror();
        return osp_err_set(err, OSP_ENOTFOUND, "%s could not be loaded: %.160s; install libcurl4",
                           osp_curl_soname, why != NULL ? why : "unknown dlopen error");
    }
    for (size_t i = 0; i < OSP_ARRAY_LEN(osp_curl_syms); i++) {
        (void)dlerror(); /* a NULL symbol is an error only when dlerror() says so */
        void *sym = dlsym(lib, osp_curl_syms[i].name);
        const char *why = dlerror();
        if (sym == NULL || why != NULL) {
            return osp_err_set(err, OSP_ENOTFOUND,
                               "%s could not be loaded: %.160s; install libcurl4", osp_curl_soname,
                               why != NULL ? why : osp_curl_syms[i].name);
        }
        memcpy((char *)t + osp_curl_syms[i].offset, &sym, sizeof(sym));
    }
    CURLcode cc = t->global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK) {
        return osp_err_set(err, OSP_EINVAL, "%s: curl_global_init failed: %s", osp_curl_soname,
                           t->easy_strerror(cc));
    }
    return 0;
}

const struct osp_curl *osp_curl_get(struct osp_err *err)
{
    if (osp_curl_state == 0) {
        struct osp_curl t;
        memset(&t, 0, sizeof(t));
        if (osp_curl_load(&t, &osp_curl_failure) == 0) {
            osp_curl_table = t;
            osp_curl_state = 1;
        } else {
            osp_curl_state = -1;
        }
    }
    if (osp_curl_state < 0) {
        if (err != NULL) {
            *err = osp_curl_failure;
        }
        return NULL;
    }
    return &osp_curl_table;
}
