/* SPDX-License-Identifier: MIT */
/* test_curl_lazy.c — libcurl loaded on first use: the table works (escape, slist, a file://
 * transfer through setopt/perform/getinfo), the cache hands back the same table, and a
 * missing library or symbol gives NULL with the install hint, cached too, and makes the
 * drill's Kubernetes adapter fail before it does anything.
 *
 * The outcome of the first load is cached for the process, so the failure cases run in
 * forked children first, before this process loads the real library. A child reports a
 * failed check by its exit status (the failing step) and a line on stderr. */
#include "common/base.h"
#include "common/curl_lazy.h"
#include "jobs/drill/k8s.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define MISSING_SONAME "libosp-test-no-such-curl.so.4"

/* Run fn in a forked child with osp_curl_soname set to soname; assert it exited 0. */
static void in_child(int (*fn)(void), const char *soname)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        osp_curl_soname = soname;
        _exit(fn());
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static int child_fail(int step, const struct osp_err *err)
{
    fprintf(stderr, "child check %d failed (err %d: %s)\n", step, err->code, err->msg);
    return step;
}

/* ---- Failures (children) ---- */

/* Both calls NULL with the same error, naming the library, the reason and the fix. */
static int child_load_fails(const char *reason)
{
    struct osp_err err = {0}, again = {0};
    if (osp_curl_get(&err) != NULL) {
        return child_fail(1, &err);
    }
    if (err.code != OSP_ENOTFOUND || strstr(err.msg, osp_curl_soname) == NULL ||
        strstr(err.msg, "could not be loaded: ") == NULL || strstr(err.msg, reason) == NULL ||
        strstr(err.msg, "; install libcurl4") == NULL) {
        return child_fail(2, &err);
    }
    if (osp_curl_get(&again) != NULL || again.code != err.code || strcmp(again.msg, err.msg) != 0) {
        return child_fail(3, &again);
    }
    if (osp_curl_get(NULL) != NULL) { /* err is optional */
        return child_fail(4, &err);
    }
    return 0;
}

static int child_missing_library(void)
{
    return child_load_fails("cannot open shared object file");
}

static int child_missing_symbol(void)
{
    return child_load_fails("undefined symbol: curl_");
}

static void test_missing_library(void **state)
{
    (void)state;
    in_child(child_missing_library, MISSING_SONAME);
}

/* A library that loads but is not libcurl: the first dlsym fails. */
static void test_missing_symbol(void **state)
{
    (void)state;
    in_child(child_missing_symbol, "libc.so.6");
}

static bool idle_never(void *arg, int64_t ms, bool honour_cancel)
{
    (void)arg;
    (void)ms;
    (void)honour_cancel;
    return false;
}

/* drill_k8s_new() returns NULL with the loader's error: the drill fails with that message
 * before reading a token or sending a request. */
static int child_drill_fails(void)
{
    struct osp_err err = {0};
    json_t *cfg =
        json_pack("{s:s, s:s, s:s, s:s}", "namespace", "shop", "selector", "app=web", "api_server",
                  "http://127.0.0.1:9", "token_file", "/nonexistent/opspool-test-token");
    struct drill_k8s *k =
        drill_k8s_new(cfg, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", idle_never, NULL, &err);
    json_decref(cfg);
    if (k != NULL) {
        drill_k8s_free(k);
        return child_fail(1, &err);
    }
    if (err.code != OSP_ENOTFOUND ||
        strstr(err.msg, MISSING_SONAME " could not be loaded") == NULL ||
        strstr(err.msg, "install libcurl4") == NULL) {
        return child_fail(2, &err);
    }
    return 0;
}

static void test_drill_without_libcurl(void **state)
{
    (void)state;
    in_child(child_drill_fails, MISSING_SONAME);
}

/* ---- The real library (this process) ---- */

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf);
    if (have + size * n >= 64) {
        return 0;
    }
    memcpy(buf + have, p, size * n);
    buf[have + size * n] = '\0';
    return size * n;
}

static void test_loads_and_works(void **state)
{
    (void)state;
    assert_string_equal(osp_curl_soname, "libcurl.so.4");
    struct osp_err err = {0};
    const struct osp_curl *cu = osp_curl_get(&err);
    if (cu == NULL) {
        fail_msg("%s", err.msg);
    }
    assert_int_equal(err.code, 0);
    for (size_t off = 0; off < sizeof(*cu); off += sizeof(void *)) {
        void *fn = NULL; /* every member resolved (curl_lazy.c asserts they are pointer-wide) */
        memcpy(&fn, (const char *)cu + off, sizeof(fn));
        assert_non_null(fn);
    }

    CURL *c = cu->easy_init();
    assert_non_null(c);
    char *e = cu->easy_escape(c, "app=web,tier in/x y&z", 0);
    assert_non_null(e);
    assert_string_equal(e, "app%3Dweb%2Ctier%20in%2Fx%20y%26z");
    cu->free(e);
    e = cu->easy_escape(c, "abc", 2); /* explicit length */
    assert_string_equal(e, "ab");
    cu->free(e);

    /* A local transfer drives setopt (long, pointer and callback arguments), perform and
     * getinfo without a network. */
    char path[] = "/tmp/osp-curl-lazy-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello curl\n", 11), 11);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "file://%s", path);
    char got[64] = "";
    struct curl_slist *h = cu->slist_append(NULL, "X-Test: 1");
    h = cu->slist_append(h, "X-Test: 2");
    assert_non_null(h);
    assert_non_null(h->next);
    assert_string_equal(h->next->data, "X-Test: 2");
    cu->easy_reset(c);
    assert_int_equal(cu->easy_setopt(c, CURLOPT_URL, url), CURLE_OK);
    assert_int_equal(cu->easy_setopt(c, CURLOPT_HTTPHEADER, h), CURLE_OK);
    assert_int_equal(cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
    assert_int_equal(cu->easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L), CURLE_OK);
    assert_int_equal(cu->easy_setopt(c, CURLOPT_WRITEFUNCTION, collect), CURLE_OK);
    assert_int_equal(cu->easy_setopt(c, CURLOPT_WRITEDATA, got), CURLE_OK);
    assert_int_equal(cu->easy_perform(c), CURLE_OK);
    assert_string_equal(got, "hello curl\n");
    curl_off_t size = 0;
    long status = -1;
    assert_int_equal(cu->easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &size), CURLE_OK);
    assert_int_equal(size, 11);
    assert_int_equal(cu->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status), CURLE_OK);
    assert_int_equal(status, 0); /* file:// has none */
    unlink(path);
    assert_int_equal(cu->easy_perform(c), CURLE_FILE_COULDNT_READ_FILE);
    cu->slist_free_all(h);

    assert_string_equal(cu->easy_strerror(CURLE_OK), "No error");
    assert_non_null(strstr(cu->easy_strerror(CURLE_COULDNT_CONNECT), "connect"));
    cu->easy_cleanup(c);
}

static void test_cached(void **state)
{
    (void)state;
    struct osp_err err = {0};
    const struct osp_curl *a = osp_curl_get(&err);
    const struct osp_curl *b = osp_curl_get(NULL);
    assert_non_null(a);
    assert_ptr_equal(a, b);
    /* Changing the name after the first load changes nothing. */
    osp_curl_soname = MISSING_SONAME;
    assert_ptr_equal(osp_curl_get(&err), a);
    osp_curl_soname = "libcurl.so.4";
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* children first: this process must not have loaded libcurl yet */
        cmocka_unit_test(test_missing_library),
        cmocka_unit_test(test_missing_symbol),
        cmocka_unit_test(test_drill_without_libcurl),
        cmocka_unit_test(test_loads_and_works),
        cmocka_unit_test(test_cached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
