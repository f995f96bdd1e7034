/* SPDX-License-Identifier: MIT */
/* test_regressions.c — replays the fuzzers' regression inputs (tests/fuzz/regressions/<t>/)
 * and seed corpora (tests/fuzz/corpus/<t>/) through the fuzz targets' own entry points, in the
 * normal gcc build (with -DOSP_SANITIZE=address,undefined in CI), so a fixed crash stays fixed
 * even where clang/libFuzzer is not available. A target that finds a problem abort()s (its
 * invariants) or trips a sanitizer; both fail this test.
 *
 * Each target source is included with its entry points renamed (the targets declare their own
 * prototypes for that purpose). They run against osp_common here, with the real registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLVMFuzzerTestOneInput fuzz_envelope_one
#include "tests/fuzz/fuzz_envelope.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_mpjson_one
#include "tests/fuzz/fuzz_mpjson.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_validate_one
#define LLVMFuzzerInitialize   fuzz_validate_init
#include "tests/fuzz/fuzz_validate.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize

#define LLVMFuzzerTestOneInput fuzz_targets_one
#include "tests/fuzz/fuzz_targets.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_config_one
#define LLVMFuzzerInitialize   fuzz_config_init
#include "tests/fuzz/fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize

#define LLVMFuzzerTestOneInput fuzz_cron_one
#include "tests/fuzz/fuzz_cron.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_frames_one
#include "tests/fuzz/fuzz_frames.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_resp_one
#include "tests/fuzz/fuzz_resp.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_http_one
#define LLVMFuzzerInitialize   fuzz_http_init
#include "tests/fuzz/fuzz_http.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize

struct target {
    const char *name;
    int (*one)(const uint8_t *data, size_t size);
    int (*init)(int *argc, char ***argv);
};

static char src_dir[1024];

/* The repository root: $OSP_SRC_DIR (set by CTest), else derived from this file's path. */
static void find_src_dir(void)
{
    const char *env = getenv("OSP_SRC_DIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(src_dir, sizeof(src_dir), "%s", env);
        return;
    }
    snprintf(src_dir, sizeof(src_dir), "%s", __FILE__);
    char *p = strstr(src_dir, "tests/unit/fuzz/");
    if (p != NULL) {
        *p = '\0';
    } else {
        snprintf(src_dir, sizeof(src_dir), ".");
    }
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t n = fread(buf + *len, 1, cap - *len, f);
        if (n == 0) {
            break;
        }
        *len += n;
    }
    fclose(f);
    return buf;
}

/* Feed every regular file of <src>/tests/fuzz/<kind>/<target>/; returns how many. */
static int replay_dir(const struct target *t, const char *kind)
{
    char dir[1200];
    snprintf(dir, sizeof(dir), "%s/tests/fuzz/%s/%s", src_dir, kind, t->name);
    DIR *d = opendir(dir);
    if (d == NULL) {
        return 0; /* no regressions for this target (yet) */
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char path[1500];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t len;
        uint8_t *data = read_all(path, &len);
        print_message("  %s/%s/%s (%zu bytes)\n", kind, t->name, e->d_name, len);
        assert_int_equal(t->one(data, len), 0);
        free(data);
        n++;
    }
    closedir(d);
    return n;
}

static void replay(void **state)
{
    const struct target *t = *state;
    if (t->init != NULL) {
        int argc = 0;
        char **argv = NULL;
        t->init(&argc, &argv);
    }
    int seeds = replay_dir(t, "corpus");
    replay_dir(t, "regressions");
    assert_true(seeds > 0); /* every target ships a seed corpus */
}

static struct target all_targets[] = {
    {"envelope", fuzz_envelope_one, NULL},
    {"mpjson", fuzz_mpjson_one, NULL},
    {"validate", fuzz_validate_one, fuzz_validate_init},
    {"targets", fuzz_targets_one, NULL},
    {"config", fuzz_config_one, fuzz_config_init},
    {"cron", fuzz_cron_one, NULL},
    {"frames", fuzz_frames_one, NULL},
    {"resp", fuzz_resp_one, NULL},
    {"http", fuzz_http_one, fuzz_http_init},
};

#define NTARGETS (sizeof(all_targets) / sizeof(all_targets[0]))

int main(void)
{
    find_src_dir();
    struct CMUnitTest tests[NTARGETS];
    for (size_t i = 0; i < NTARGETS; i++) {
        tests[i] = (struct CMUnitTest){
            .name = all_targets[i].name, .test_func = replay, .initial_state = &all_targets[i]};
    }
    return _cmocka_run_group_tests("fuzz_regressions", tests, NTARGETS, NULL, NULL);
}
