/* SPDX-License-Identifier: MIT */
/* test_config.c — configuration loading: defaults, environment over JSON file over defaults,
 * OSP_X_FILE secrets, range and type errors with their exact text, scope rules, worker kinds
 * parsing, redacted printing and help. Every test starts from an environment with no OSP_*
 * variables and a fresh temporary directory for files. */
#include "common/config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

static char g_dir[64];

static void clear_osp_env(void)
{
    /* unsetenv edits environ, so collect names first. */
    char *names[256];
    size_t n = 0;
    for (char **e = environ; *e != NULL && n < 256; e++) {
        if (strncmp(*e, "OSP_", 4) == 0) {
            const char *eq = strchr(*e, '=');
            size_t len = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
            names[n] = strndup(*e, len);
            assert_non_null(names[n]);
            n++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsetenv(names[i]);
        free(names[i]);
    }
}

static int setup(void **state)
{
    (void)state;
    clear_osp_env();
    strcpy(g_dir, "/tmp/osp-config-XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clear_osp_env();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write content to <tmpdir>/name and return the path (static buffer per call site). */
static void write_file(const char *name, const char *content, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    assert_int_equal(fclose(f), 0);
}

static void load_ok(struct osp_config *cfg, unsigned scope)
{
    struct osp_err err = {0, ""};
    int rc = osp_config_load(cfg, scope, &err);
    if (rc != 0) {
        fail_msg("load failed: %s", err.msg);
    }
}

static void load_fail(unsigned scope, const char *msg)
{
    struct osp_config cfg;
    struct osp_err err = {0, ""};
    assert_int_equal(osp_config_load(&cfg, scope, &err), OSP_EINVAL);
    assert_int_equal(err.code, OSP_EINVAL);
    assert_string_equal(err.msg, msg);
    /* Deinitialised on failure: nothing owned, and deinit again is harmless. */
    assert_null(cfg.redis_url);
    assert_null(cfg.kinds[0]);
    osp_config_deinit(&cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    struct osp_config cfg;
    load_ok(&cfg, OSP_CFG_ALL);
    assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379");
    assert_string_equal(cfg.redis_password, "");
    assert_string_equal(cfg.redis_username, "");
    assert_string_equal(cfg.pg_dsn, "dbname=opspool");
    assert_string_equal(cfg.prefix, "{opspool}");
    assert_string_equal(cfg.signing_key, "");
    assert_string_equal(cfg.signing_key_old, "");
    assert_false(cfg.allow_unsigned);
    assert_int_equal(cfg.env_max_bytes, 1048576);
    assert_string_equal(cfg.log_level, "info");
    assert_string_equal(cfg.worker_id, "");
    assert_string_equal(cfg.worker_kinds, "noop");
    assert_int_equal(cfg.nkinds, 1);
    assert_string_equal(cfg.kinds[0], "noop");
    assert_int_equal(cfg.worker_slots, 4);
    assert_int_equal(cfg.lease_ms, 30000);
    assert_int_equal(cfg.drain_timeout_s, 25);
    assert_int_equal(cfg.max_recoveries, 3);
    assert_int_equal(cfg.retry_base_ms, 1000);
    assert_int_equal(cfg.retry_max_ms, 300000);
    assert_int_equal(cfg.job_timeout_s, 3600);
    assert_int_equal(cfg.job_ttl_s, 86400);
    assert_int_equal(cfg.child_mem_mb, 0);
    assert_int_equal(cfg.child_nofile, 1024);
    assert_int_equal(cfg.pg_batch_max, 512);
    assert_true(cfg.run_duties);
    assert_string_equal(cfg.http_addr, "");
    assert_string_equal(cfg.targets_file, "");
    assert_string_equal(cfg.config_file, "");
    assert_string_equal(cfg.api_tokens_file, "");
    assert_string_equal(cfg.backup_root, "/var/lib/opspool/backups");
    assert_string_equal(cfg.pod_name, "");
    assert_string_equal(cfg.k8s_api, "");
    assert_string_equal(cfg.k8s_token_file, OSP_K8S_SA_DIR "/token");
    assert_string_equal(cfg.k8s_ca_file, OSP_K8S_SA_DIR "/ca.crt");
    osp_config_deinit(&cfg);
    assert_null(cfg.redis_url);
    osp_config_deinit(&cfg);
}

/* osp_config_defaults: the table's defaults, whatever the environment says. */
static void test_defaults_ignore_environment(void **state)
{
    (void)state;
    setenv("OSP_BACKUP_ROOT", "/from/env", 1);
    setenv("OSP_WORKER_SLOTS", "not a number", 1);
    struct osp_config cfg;
    osp_config_defaults(&cfg);
    assert_string_equal(cfg.backup_root, "/var/lib/opspool/backups");
    assert_int_equal(cfg.worker_slots, 4);
    assert_int_equal(cfg.nkinds, 1);
    assert_string_equal(cfg.kinds[0], "noop");
    osp_config_deinit(&cfg);
    unsetenv("OSP_WORKER_SLOTS");
    /* A setting the environment sets is read by osp_config_load. */
    load_ok(&cfg, OSP_CFG_WORKER);
    assert_string_equal(cfg.backup_root, "/from/env");
    osp_config_deinit(&cfg);
    unsetenv("OSP_BACKUP_ROOT");
}

static void test_env_override(void **state)
{
    (void)state;
    struct osp_config cfg;
    setenv("OSP_REDIS_URL", "unix:///run/redis.sock", 1);
    setenv("OSP_WORKER_SLOTS", "16", 1);
    setenv("OSP_WORKER_DUTIES", "off", 1);
    setenv("OSP_LOG_LEVEL", "debug", 1);
    setenv("OSP_PREFIX", "{lab}", 1);
    setenv("OSP_RETRY_MAX_MS", "1000", 1); /* equal to the base is fine */
    setenv("OSP_WORKER_ID", "w-1", 1);
    setenv("OSP_HTTP_ADDR", "0.0.0.0:9100", 1);
    setenv("OSP_UNRELATED_THING", "ignored", 1);
    load_ok(&cfg, OSP_CFG_WORKER);
    assert_string_equal(cfg.redis_url, "unix:///run/redis.sock");
    assert_int_equal(cfg.worker_slots, 16);
    assert_false(cfg.run_duties);
    assert_string_equal(cfg.log_level, "debug");
    assert_string_equal(cfg.prefix, "{lab}");
    assert_int_equal(cfg.retry_max_ms, 1000);
    assert_string_equal(cfg.worker_id, "w-1");
    assert_string_equal(cfg.http_addr, "0.0.0.0:9100");
    osp_config_deinit(&cfg);
}

static void test_file_and_precedence(void **state)
{
    (void)state;
    char path[128];
    struct osp_config cfg;
    write_file("cfg.json",
               "{\"redis_url\": \"redis://file-host:6380/2\", \"worker_slots\": 8,"
               " \"worker_duties\": false, \"signing_key\": \"from-file\","
               " \"worker_kinds\": \"noop,seed\"}",
               path, sizeof(path));
    setenv("OSP_CONFIG_FILE", path, 1);
    setenv("OSP_WORKER_SLOTS", "12", 1);
    load_ok(&cfg, OSP_CFG_ALL);
    assert_string_equal(cfg.redis_url, "redis://file-host:6380/2"); /* file over default */
    assert_int_equal(cfg.worker_slots, 12);                         /* env over file */
    assert_false(cfg.run_duties);
    assert_string_equal(cfg.signing_key, "from-file");
    assert_string_equal(cfg.config_file, path);
    assert_int_equal(cfg.nkinds, 2);
    assert_string_equal(cfg.kinds[1], "seed");
    osp_config_deinit(&cfg);
}

static void test_file_errors(void **state)
{
    (void)state;
    char path[128];
    char want[256];

    write_file("typo.json", "{\"worker_slotz\": 4}", path, sizeof(path));
    setenv("OSP_CONFIG_FILE", path, 1);
    snprintf(want, sizeof(want), "OSP_CONFIG_FILE: %s: unknown key \"worker_slotz\"", path);
    load_fail(OSP_CFG_ALL, want);

    /* The file cannot name another file. */
    write_file("self.json", "{\"config_file\": \"/x\"}", path, sizeof(path));
    setenv("OSP_CONFIG_FILE", path, 1);
    snprintf(want, sizeof(want), "OSP_CONFIG_FILE: %s: unknown key \"config_file\"", path);
    load_fail(OSP_CFG_ALL, want);

    write_file("type.json", "{\"worker_slots\": \"8\"}", path, sizeof(path));
    setenv("OSP_CONFIG_FILE", path, 1);
    snprintf(want, sizeof(want), "worker_slots (from %s): not an integer", path);
    load_fail(OSP_CFG_WORKER, want);

    write_file("range.json", "{\"worker_slots\": 0}", path, sizeof(path));
    setenv("OSP_CONFIG_FILE", path, 1);
    snprintf(want, sizeof(want), "worker_slots (from %s): 0 is below the minimum 1", path);
    load_fail(OSP_CFG_WORKER, want);

    write_file("bool.json", "{\"allow_unsigned\": \"yes\"}", path, sizeof(path));
    setenv("OSP_CONFIG_FILE", path, 1);
    snprintf(want, sizeof(want), "allow_unsigned (from %s): not a boolean", path);
    load_fail(OSP_CFG_ALL, want);

    write_file("array.json", "[1, 2]", path, sizeof(path));
    setenv("OSP_CONFIG_FILE", path, 1);
    snprintf(want, sizeof(want), "OSP_CONFIG_FILE: %s: not a JSON object", path);
    load_fail(OSP_CFG_ALL, want);

    write_file("dup.json", "{\"prefix\": \"a\", \"prefix\": \"b\"}", path, sizeof(path));
    setenv("OSP_CONFIG_FILE", path, 1);
    struct osp_config cfg;
    struct osp_err err = {0, ""};
    assert_int_equal(osp_config_load(&cfg, OSP_CFG_ALL, &err), OSP_EINVAL);
    snprintf(want, sizeof(want), "OSP_CONFIG_FILE: %s:1:", path);
    assert_memory_equal(err.msg, want, strlen(want));
    assert_non_null(strstr(err.msg, "duplicate object key"));

    snprintf(path, sizeof(path), "%s/missing.json", g_dir);
    setenv("OSP_CONFIG_FILE", path, 1);
    assert_int_equal(osp_config_load(&cfg, OSP_CFG_ALL, &err), OSP_EINVAL);
    snprintf(want, sizeof(want), "OSP_CONFIG_FILE: %s:", path);
    assert_memory_equal(err.msg, want, strlen(want));
}

static void test_range_errors(void **state)
{
    (void)state;
    setenv("OSP_WORKER_SLOTS", "0", 1);
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_SLOTS: 0 is below the minimum 1");
    setenv("OSP_WORKER_SLOTS", "1025", 1);
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_SLOTS: 1025 is above the maximum 1024");
    setenv("OSP_WORKER_SLOTS", "abc", 1);
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_SLOTS: \"abc\" is not an integer");
    setenv("OSP_WORKER_SLOTS", "4 ", 1);
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_SLOTS: \"4 \" is not an integer");
    setenv("OSP_WORKER_SLOTS", "", 1);
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_SLOTS: \"\" is not an integer");
    setenv("OSP_WORKER_SLOTS", "99999999999999999999", 1);
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_SLOTS: \"99999999999999999999\" is out of range");
    unsetenv("OSP_WORKER_SLOTS");

    setenv("OSP_ENV_MAX_BYTES", "1023", 1);
    load_fail(OSP_CFG_ALL, "OSP_ENV_MAX_BYTES: 1023 is below the minimum 1024");
    setenv("OSP_ENV_MAX_BYTES", "67108865", 1);
    load_fail(OSP_CFG_ALL, "OSP_ENV_MAX_BYTES: 67108865 is above the maximum 67108864");
    unsetenv("OSP_ENV_MAX_BYTES");

    setenv("OSP_LEASE_MS", "999", 1);
    load_fail(OSP_CFG_SCHEDULER, "OSP_LEASE_MS: 999 is below the minimum 1000");
    unsetenv("OSP_LEASE_MS");

    setenv("OSP_RETRY_BASE_MS", "5000", 1);
    setenv("OSP_RETRY_MAX_MS", "4000", 1);
    load_fail(OSP_CFG_WORKER, "OSP_RETRY_MAX_MS: 4000 is below OSP_RETRY_BASE_MS (5000)");
    unsetenv("OSP_RETRY_BASE_MS");
    unsetenv("OSP_RETRY_MAX_MS");

    setenv("OSP_LOG_LEVEL", "verbose", 1);
    load_fail(OSP_CFG_CLI, "OSP_LOG_LEVEL: \"verbose\" is not one of debug, info, warn, error");
    unsetenv("OSP_LOG_LEVEL");

    setenv("OSP_REDIS_URL", "http://x", 1);
    load_fail(OSP_CFG_ALL,
              "OSP_REDIS_URL: \"http://x\" is not redis://host:port[/db] or unix:///path.sock");
    unsetenv("OSP_REDIS_URL");

    setenv("OSP_WORKER_ID", "has space", 1);
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_ID: must not contain spaces or control characters");
    unsetenv("OSP_WORKER_ID");

    /* An address is host:port with a decimal port 0..65535: nothing is bound modulo 65536. */
    static const char *const bad_addrs[] = {"9100", "127.0.0.1:99999", "127.0.0.1:65536",
                                            "127.0.0.1:", "127.0.0.1:80a", "127.0.0.1:-1",
                                            "[::1:80", "127.0.0.1:000080"};
    for (size_t i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
        char want[256];
        snprintf(want, sizeof(want),
                 "OSP_HTTP_ADDR: \"%s\" is not host:port with a port 0..65535 "
                 "(127.0.0.1:8080, [::1]:8080, 0.0.0.0:0)",
                 bad_addrs[i]);
        setenv("OSP_HTTP_ADDR", bad_addrs[i], 1);
        load_fail(OSP_CFG_WORKER, want);
        load_fail(OSP_CFG_SCHEDULER, want);
    }
    setenv("OSP_HTTP_ADDR", "127.0.0.1:65535", 1);
    struct osp_config ok_cfg;
    load_ok(&ok_cfg, OSP_CFG_WORKER);
    osp_config_deinit(&ok_cfg);
}

static void test_scope(void **state)
{
    (void)state;
    struct osp_config cfg;
    /* A worker-only setting with a bad value does not stop the scheduler. */
    setenv("OSP_WORKER_SLOTS", "0", 1);
    setenv("OSP_WORKER_KINDS", "Bad Kind", 1);
    setenv("OSP_WORKER_DUTIES", "perhaps", 1);
    load_ok(&cfg, OSP_CFG_SCHEDULER);
    assert_int_equal(cfg.worker_slots, 4);
    assert_true(cfg.run_duties);
    assert_int_equal(cfg.nkinds, 1);
    assert_string_equal(cfg.kinds[0], "noop");
    osp_config_deinit(&cfg);
    /* The worker does judge them. */
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_SLOTS: 0 is below the minimum 1");
    /* The scheduler always listens: unset, its OSP_HTTP_ADDR is the address it uses, and
     * that is what --print-config shows; the worker's stays off. */
    unsetenv("OSP_WORKER_SLOTS");
    unsetenv("OSP_WORKER_KINDS");
    unsetenv("OSP_WORKER_DUTIES");
    unsetenv("OSP_HTTP_ADDR");
    load_ok(&cfg, OSP_CFG_SCHEDULER);
    assert_string_equal(cfg.http_addr, OSP_SCHED_HTTP_ADDR);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    osp_config_print(&cfg, OSP_CFG_SCHEDULER, out);
    fclose(out);
    assert_non_null(strstr(text, "\nOSP_HTTP_ADDR=127.0.0.1:8080\n"));
    free(text);
    osp_config_deinit(&cfg);
    load_ok(&cfg, OSP_CFG_WORKER);
    assert_string_equal(cfg.http_addr, "");
    osp_config_deinit(&cfg);
}

static void test_bool_parsing(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool value;
    } cases[] = {{"1", true},    {"0", false},   {"true", true}, {"false", false},
                 {"yes", true},  {"no", false},  {"on", true},   {"off", false},
                 {"TRUE", true}, {"Off", false}, {"Yes", true},  {"NO", false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct osp_config cfg;
        setenv("OSP_ALLOW_UNSIGNED", cases[i].text, 1);
        load_ok(&cfg, OSP_CFG_ALL);
        if (cfg.allow_unsigned != cases[i].value) {
            fail_msg("\"%s\" parsed as %d", cases[i].text, cfg.allow_unsigned);
        }
        osp_config_deinit(&cfg);
    }
    setenv("OSP_ALLOW_UNSIGNED", "maybe", 1);
    load_fail(OSP_CFG_ALL, "OSP_ALLOW_UNSIGNED: \"maybe\" is not a boolean "
                           "(use true/false, 1/0, yes/no, on/off)");
    setenv("OSP_ALLOW_UNSIGNED", "", 1);
    load_fail(OSP_CFG_ALL, "OSP_ALLOW_UNSIGNED: \"\" is not a boolean "
                           "(use true/false, 1/0, yes/no, on/off)");
}

static void test_secret_files(void **state)
{
    (void)state;
    char path[128];
    char path2[128];
    char path3[128];
    struct osp_config cfg;
    write_file("key", "s3cret\n", path, sizeof(path));
    write_file("old", "older\r\n", path2, sizeof(path2));
    write_file("dsn", "host=db password=pw\n\n", path3, sizeof(path3));
    setenv("OSP_SIGNING_KEY_FILE", path, 1);
    setenv("OSP_SIGNING_KEY_OLD_FILE", path2, 1);
    setenv("OSP_PG_DSN_FILE", path3, 1);
    load_ok(&cfg, OSP_CFG_ALL);
    assert_string_equal(cfg.signing_key, "s3cret");
    assert_string_equal(cfg.signing_key_old, "older");
    assert_string_equal(cfg.pg_dsn, "host=db password=pw\n"); /* one newline only */
    osp_config_deinit(&cfg);

    /* Without a trailing newline the content is taken as is; an empty file is "". */
    write_file("pw", "pa ss", path, sizeof(path));
    setenv("OSP_REDIS_PASSWORD_FILE", path, 1);
    write_file("empty", "", path2, sizeof(path2));
    setenv("OSP_SIGNING_KEY_FILE", path2, 1);
    load_ok(&cfg, OSP_CFG_ALL);
    assert_string_equal(cfg.redis_password, "pa ss");
    assert_string_equal(cfg.signing_key, "");
    osp_config_deinit(&cfg);

    /* _FILE beats the JSON file. */
    write_file("cfg.json", "{\"redis_password\": \"from-json\"}", path3, sizeof(path3));
    setenv("OSP_CONFIG_FILE", path3, 1);
    load_ok(&cfg, OSP_CFG_ALL);
    assert_string_equal(cfg.redis_password, "pa ss");
    osp_config_deinit(&cfg);
    unsetenv("OSP_CONFIG_FILE");

    /* Only secret settings have a _FILE form. */
    setenv("OSP_PREFIX_FILE", path, 1);
    load_ok(&cfg, OSP_CFG_ALL);
    assert_string_equal(cfg.prefix, "{opspool}");
    osp_config_deinit(&cfg);

    char want[256];
    snprintf(path, sizeof(path), "%s/nope", g_dir);
    setenv("OSP_SIGNING_KEY_FILE", path, 1);
    snprintf(want, sizeof(want), "OSP_SIGNING_KEY_FILE: cannot open %s: No such file or directory",
             path);
    load_fail(OSP_CFG_ALL, want);
}

static void test_secret_both_set(void **state)
{
    (void)state;
    char path[128];
    write_file("dsn", "dbname=x\n", path, sizeof(path));
    setenv("OSP_PG_DSN", "dbname=y", 1);
    setenv("OSP_PG_DSN_FILE", path, 1);
    load_fail(OSP_CFG_ALL, "OSP_PG_DSN and OSP_PG_DSN_FILE are both set; use one");
    /* Even an empty variable counts as set. */
    setenv("OSP_PG_DSN", "", 1);
    load_fail(OSP_CFG_ALL, "OSP_PG_DSN and OSP_PG_DSN_FILE are both set; use one");
}

static char *print_to_string(const struct osp_config *cfg, unsigned scope, bool help)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    if (help) {
        osp_config_help(scope, f);
    } else {
        osp_config_print(cfg, scope, f);
    }
    assert_int_equal(fclose(f), 0);
    return text;
}

static void test_print_redacts(void **state)
{
    (void)state;
    struct osp_config cfg;
    setenv("OSP_SIGNING_KEY", "top-secret-key", 1);
    setenv("OSP_PG_DSN", "host=db password=hunter2", 1);
    setenv("OSP_WORKER_SLOTS", "7", 1);
    load_ok(&cfg, OSP_CFG_ALL);
    char *out = print_to_string(&cfg, OSP_CFG_WORKER, false);
    assert_null(strstr(out, "top-secret-key"));
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "OSP_SIGNING_KEY=<redacted>\n"));
    assert_non_null(strstr(out, "OSP_PG_DSN=<redacted>\n"));
    assert_non_null(strstr(out, "OSP_REDIS_PASSWORD=<unset>\n"));
    assert_non_null(strstr(out, "OSP_SIGNING_KEY_OLD=<unset>\n"));
    assert_non_null(strstr(out, "OSP_WORKER_SLOTS=7\n"));
    assert_non_null(strstr(out, "OSP_WORKER_DUTIES=true\n"));
    assert_non_null(strstr(out, "OSP_REDIS_URL=redis://127.0.0.1:6379\n"));
    assert_null(strstr(out, "OSP_API_TOKENS_FILE")); /* scheduler only */
    assert_int_equal(strncmp(out, "OSP_REDIS_URL=", 14), 0);
    free(out);

    out = print_to_string(&cfg, OSP_CFG_SCHEDULER, false);
    assert_non_null(strstr(out, "OSP_API_TOKENS_FILE=\n"));
    assert_null(strstr(out, "OSP_WORKER_SLOTS"));
    free(out);
    osp_config_deinit(&cfg);
}

static void test_help(void **state)
{
    (void)state;
    char *out = print_to_string(NULL, OSP_CFG_WORKER, true);
    assert_non_null(strstr(out, "OSP_WORKER_SLOTS"));
    assert_non_null(strstr(out, "[1..1024]"));
    assert_non_null(strstr(out, "OSP_PG_DSN_FILE"));
    assert_non_null(strstr(out, "(default: \"redis://127.0.0.1:6379\")"));
    assert_null(strstr(out, "OSP_API_TOKENS_FILE"));
    free(out);
    out = print_to_string(NULL, OSP_CFG_CLI, true);
    assert_null(strstr(out, "OSP_WORKER_SLOTS"));
    assert_non_null(strstr(out, "OSP_REDIS_URL"));
    free(out);
}

static void test_kinds(void **state)
{
    (void)state;
    struct osp_config cfg;
    setenv("OSP_WORKER_KINDS", " noop, benchmark ,\tdrill ", 1);
    load_ok(&cfg, OSP_CFG_WORKER);
    assert_int_equal(cfg.nkinds, 3);
    assert_string_equal(cfg.kinds[0], "noop");
    assert_string_equal(cfg.kinds[1], "benchmark");
    assert_string_equal(cfg.kinds[2], "drill");
    assert_null(cfg.kinds[3]);
    assert_string_equal(cfg.worker_kinds, " noop, benchmark ,\tdrill ");
    osp_config_deinit(&cfg);

    setenv("OSP_WORKER_KINDS", "k0,k1,k2,k3,k4,k5,k6,k7,k8,k9,k10,k11,k12,k13,k14,k15", 1);
    load_ok(&cfg, OSP_CFG_WORKER);
    assert_int_equal(cfg.nkinds, OSP_MAX_KINDS);
    assert_string_equal(cfg.kinds[15], "k15");
    osp_config_deinit(&cfg);

    setenv("OSP_WORKER_KINDS", "k0,k1,k2,k3,k4,k5,k6,k7,k8,k9,k10,k11,k12,k13,k14,k15,k16", 1);
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_KINDS: more than 16 kinds");
    setenv("OSP_WORKER_KINDS", "noop,,seed", 1);
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_KINDS: empty kind name in \"noop,,seed\"");
    setenv("OSP_WORKER_KINDS", "", 1);
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_KINDS: empty kind name in \"\"");
    setenv("OSP_WORKER_KINDS", "noop,", 1);
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_KINDS: empty kind name in \"noop,\"");
    setenv("OSP_WORKER_KINDS", "noop,Seed", 1);
    load_fail(OSP_CFG_WORKER,
              "OSP_WORKER_KINDS: \"Seed\" is not a valid kind name ([a-z0-9_-]{1,32})");
    setenv("OSP_WORKER_KINDS", "noop,seed,noop", 1);
    load_fail(OSP_CFG_WORKER, "OSP_WORKER_KINDS: \"noop\" is listed twice");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_ignore_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_override, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_and_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bool_parsing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_both_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_print_redacts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinds, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
