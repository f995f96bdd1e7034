/* SPDX-License-Identifier: MIT */
/* fuzz_config.c — libFuzzer target for the config loader's JSON file (common/config.h).
 * The input is written to a temporary file named by OSP_CONFIG_FILE, with no other OSP_*
 * variable set, and loaded for every scope. A load either succeeds with every setting filled
 * (strings non-NULL, kinds parsed) or fails with a message naming the problem; a successful
 * config must print and free cleanly. */
#include "common/config.h"
#include "tests/fuzz/fuzz_util.h"

#include <unistd.h>

extern char **environ;

static char config_path[64];
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Start from an environment without OSP_* so only the file matters. */
    for (;;) {
        char **e = environ;
        while (*e != NULL && strncmp(*e, "OSP_", 4) != 0) {
            e++;
        }
        if (*e == NULL) {
            break;
        }
        char name[128];
        size_t n = strcspn(*e, "=");
        snprintf(name, sizeof(name), "%.*s", (int)n, *e);
        unsetenv(name);
    }
    const char *dir = getenv("TMPDIR");
    snprintf(config_path, sizeof(config_path), "%.40s/osp-fuzz-config-XXXXXX", dir ? dir : "/tmp");
    int fd = mkstemp(config_path);
    if (fd < 0) {
        snprintf(config_path, sizeof(config_path), "/tmp/osp-fuzz-config-XXXXXX");
        fd = mkstemp(config_path);
    }
    if (fd < 0) {
        perror("mkstemp");
        abort();
    }
    close(fd);
    setenv("OSP_CONFIG_FILE", config_path, 1);
    devnull = fopen("/dev/null", "w");
    return 0;
}

static void check_loaded(const struct osp_config *cfg, unsigned scope)
{
    FUZZ_ASSERT(cfg->redis_url != NULL && cfg->pg_dsn != NULL && cfg->prefix != NULL);
    FUZZ_ASSERT(cfg->log_level != NULL && cfg->worker_id != NULL && cfg->worker_kinds != NULL);
    FUZZ_ASSERT(cfg->http_addr != NULL && cfg->backup_root != NULL);
    FUZZ_ASSERT(cfg->nkinds >= 1 && cfg->nkinds <= OSP_MAX_KINDS);
    for (int i = 0; i < cfg->nkinds; i++) {
        FUZZ_ASSERT(cfg->kinds[i] != NULL && cfg->kinds[i][0] != '\0');
    }
    FUZZ_ASSERT(cfg->retry_max_ms >= cfg->retry_base_ms || scope == OSP_CFG_CLI);
    osp_config_print(cfg, scope, devnull);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(config_path, "w");
    if (f == NULL) {
        abort();
    }
    if (size > 0 && fwrite(data, 1, size, f) != size) {
        abort();
    }
    fclose(f);

    static const unsigned scopes[] = {OSP_CFG_WORKER, OSP_CFG_SCHEDULER, OSP_CFG_CLI};
    for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++) {
        struct osp_config cfg;
        struct osp_err err = {0, ""};
        int rc = osp_config_load(&cfg, scopes[i], &err);
        fuzz_check_err(rc, &err, "osp_config_load");
        if (rc == 0) {
            check_loaded(&cfg, scopes[i]);
            osp_config_deinit(&cfg);
        } else {
            FUZZ_ASSERT(rc == OSP_EINVAL);
        }
    }
    return 0;
}
