/* SPDX-License-Identifier: MIT */
/* curl_lazy.h — libcurl, loaded on first use: dlopen("libcurl.so.4") and a table of the few
 * functions opspool calls. The worker never links libcurl (its ~15 shared libraries cost
 * megabytes of RSS in every worker); only the forked children that talk to the Kubernetes
 * API (the drill's k8s adapter, the pod-deletion-cost request) load it, and only when they
 * get there.
 *
 * <curl/curl.h> still provides the types and constants (CURL, CURLoption, CURLOPT_*...);
 * every call goes through the table instead of the curl_* symbols. The members have exactly
 * the prototypes of the functions they point to (checked at compile time in curl_lazy.c).
 * Note: calls through the table bypass curl's GCC type-checking macros for
 * easy_setopt/easy_getinfo, so pass exactly the type each option documents (long, a
 * pointer, curl_off_t, a callback of the documented type).
 *
 * Threading: none. The first call loads and caches; later calls return the cache. Callers
 * are single-threaded processes (forked children); do not call this from threads. */
#ifndef OSP_CURL_LAZY_H
#define OSP_CURL_LAZY_H

#include "common/err.h"

#include <curl/curl.h>

/* Named after the curl_* function each member points to, without the prefix. */
struct osp_curl {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_reset)(CURL *curl);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *curl);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode code);
    void (*easy_cleanup)(CURL *curl);
    char *(*easy_escape)(CURL *curl, const char *string, int length);
    void (*free)(void *p);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *data);
    void (*slist_free_all)(struct curl_slist *list);
};

/* The loaded table (borrowed, valid for the life of the process; never unloaded). The first
 * call dlopens the library (RTLD_NOW | RTLD_LOCAL), resolves every member and runs
 * curl_global_init(CURL_GLOBAL_DEFAULT). NULL with err (OSP_ENOTFOUND, "libcurl.so.4 could
 * not be loaded: <reason>; install libcurl4") when the library or one of the functions is
 * missing, or (OSP_EINVAL) when the global init fails. The outcome, failure included, is
 * cached: later calls return the same table, or NULL with the same error. */
const struct osp_curl *osp_curl_get(struct osp_err *err);

/* Seam for tests: the library osp_curl_get() loads, "libcurl.so.4" by default. Only read by
 * the first call. */
extern const char *osp_curl_soname;

#endif
