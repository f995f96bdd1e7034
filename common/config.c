/* SPDX-License-Identifier: MIT */
/* config.c — process configuration from the environment, an optional JSON file and defaults
 * (contract: config.h). One static table row per setting drives parsing, the OSP_X_FILE
 * secret lookup, range checks, --help and the redacted --print-config (Redis static_configs).
 * Defaults are text parsed by the same code as user input, so a bad default fails the
 * defaults test instead of hiding. Settings outside the caller's scope never fail a load:
 * a shared ConfigMap may carry a value only another program understands. */
#include "common/config.h"
#include "common/alloc.h"
#include "common/envelope.h"
#include "common/http.h"
#include "common/redis.h"
#include "common/rq.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum cfg_type { CFG_STR, CFG_INT, CFG_BOOL };

enum {
    CFG_SECRET = 1u,  /* never printed; may come from OSP_X_FILE */
    CFG_ENV_ONLY = 2u /* not accepted in the JSON file (it names the file itself) */
};

struct setting {
    const char *env; /* environment variable; the file key is this without OSP_, lowercase */
    enum cfg_type type;
    const char *def;    /* default, as text */
    long long min, max; /* CFG_INT range, inclusive */
    unsigned flags;
    unsigned scope; /* OSP_CFG_* programs the setting applies to */
    size_t offset;  /* field in struct osp_config: char *, int or bool */
    const char *help;
};

#define W      OSP_CFG_WORKER
#define S      OSP_CFG_SCHEDULER
#define WS     (OSP_CFG_WORKER | OSP_CFG_SCHEDULER)
#define A      OSP_CFG_ALL
#define OFF(f) offsetof(struct osp_config, f)

static const struct setting settings[] = {
    {"OSP_REDIS_URL", CFG_STR, "redis://127.0.0.1:6379", 0, 0, 0, A, OFF(redis_url),
     "Redis server: redis://host:port[/db] or unix:///path.sock"},
    {"OSP_REDIS_PASSWORD", CFG_STR, "", 0, 0, CFG_SECRET, A, OFF(redis_password),
     "Redis password (AUTH); empty = none"},
    {"OSP_REDIS_USERNAME", CFG_STR, "", 0, 0, 0, A, OFF(redis_username),
     "Redis ACL user; empty = the default user"},
    {"OSP_REDIS_SENTINELS", CFG_STR, "", 0, 0, 0, A, OFF(redis_sentinels),
     "Redis Sentinel host[:port] list, comma-separated; set = the master is asked of them "
     "(OSP_REDIS_URL then gives only the database and credentials)"},
    {"OSP_REDIS_SENTINEL_MASTER", CFG_STR, "opspool", 0, 0, 0, A, OFF(redis_sentinel_master),
     "the master's name in Sentinel (sentinel monitor <name> ...)"},
    {"OSP_REDIS_SENTINEL_USERNAME", CFG_STR, "", 0, 0, 0, A, OFF(redis_sentinel_username),
     "ACL user for the sentinels; empty = the default user"},
    {"OSP_REDIS_SENTINEL_PASSWORD", CFG_STR, "", 0, 0, CFG_SECRET, A, OFF(redis_sentinel_password),
     "password for the sentinels (AUTH); empty = none"},
    {"OSP_PG_DSN", CFG_STR, "dbname=opspool", 0, 0, CFG_SECRET, A, OFF(pg_dsn),
     "PostgreSQL connection string or URI (may hold a password)"},
    {"OSP_PREFIX", CFG_STR, "{opspool}", 0, 0, 0, A, OFF(prefix),
     "Redis key prefix; keep the {hash tag} for Redis Cluster"},
    {"OSP_SIGNING_KEY", CFG_STR, "", 0, 0, CFG_SECRET, A, OFF(signing_key),
     "HMAC-SHA256 key that signs envelopes; empty = unsigned"},
    {"OSP_SIGNING_KEY_OLD", CFG_STR, "", 0, 0, CFG_SECRET, A, OFF(signing_key_old),
     "previous signing key, still accepted during rotation"},
    {"OSP_ALLOW_UNSIGNED", CFG_BOOL, "false", 0, 0, 0, A, OFF(allow_unsigned),
     "accept unsigned envelopes even when a signing key is set"},
    {"OSP_ENV_MAX_BYTES", CFG_INT, "1048576", 1024, 64 * 1024 * 1024, 0, A, OFF(env_max_bytes),
     "largest accepted envelope, bytes"},
    {"OSP_LOG_LEVEL", CFG_STR, "info", 0, 0, 0, A, OFF(log_level),
     "minimum log level: debug|info|warn|error"},
    {"OSP_WORKER_ID", CFG_STR, "", 0, 0, 0, W, OFF(worker_id),
     "worker identity; empty = <host>-<pid>-<random>"},
    {"OSP_WORKER_KINDS", CFG_STR, "noop", 0, 0, 0, W, OFF(worker_kinds),
     "comma-separated job kinds this worker runs"},
    {"OSP_WORKER_SLOTS", CFG_INT, "4", 1, 1024, 0, W, OFF(worker_slots), "jobs run concurrently"},
    {"OSP_LEASE_MS", CFG_INT, "30000", 1000, 3600000, 0, WS, OFF(lease_ms),
     "worker and job lease, ms; heartbeats every lease/3"},
    {"OSP_DRAIN_TIMEOUT_S", CFG_INT, "25", 0, 86400, 0, W, OFF(drain_timeout_s),
     "grace after SIGTERM before running jobs are handed back, s"},
    {"OSP_MAX_RECOVERIES", CFG_INT, "3", 0, 1000, 0, WS, OFF(max_recoveries),
     "crash recoveries of one job before it is dead-lettered"},
    {"OSP_RETRY_BASE_MS", CFG_INT, "1000", 1, 3600000, 0, WS, OFF(retry_base_ms),
     "first retry delay, ms"},
    {"OSP_RETRY_MAX_MS", CFG_INT, "300000", 1, 86400000, 0, WS, OFF(retry_max_ms),
     "cap of the exponential retry backoff, ms (>= OSP_RETRY_BASE_MS)"},
    {"OSP_JOB_TIMEOUT_S", CFG_INT, "3600", 1, 604800, 0, WS, OFF(job_timeout_s),
     "hard timeout of a job that sets none, s"},
    {"OSP_JOB_TTL_S", CFG_INT, "86400", 1, INT_MAX, 0, WS, OFF(job_ttl_s),
     "lifetime of a finished job's Redis state, s"},
    {"OSP_CHILD_MEM_MB", CFG_INT, "0", 0, 1048576, 0, W, OFF(child_mem_mb),
     "address-space limit of job processes, MiB; 0 = unlimited"},
    {"OSP_CHILD_NOFILE", CFG_INT, "1024", 16, 1048576, 0, W, OFF(child_nofile),
     "open-file limit of job processes"},
    {"OSP_PG_BATCH_MAX", CFG_INT, "512", 1, 10000, 0, WS, OFF(pg_batch_max),
     "ledger writes per transaction"},
    {"OSP_WORKER_DUTIES", CFG_BOOL, "true", 0, 0, 0, W, OFF(run_duties),
     "the worker also promotes delayed jobs and reaps dead workers"},
    {"OSP_HTTP_ADDR", CFG_STR, "", 0, 0, 0, WS, OFF(http_addr),
     "host:port of the HTTP listener (port 0 = any free port). Scheduler: the API and "
     "/metrics /healthz /readyz, empty = " OSP_SCHED_HTTP_ADDR "; worker: /metrics /healthz "
     "/readyz, empty = off"},
    {"OSP_HTTP_PORT_FILE", CFG_STR, "", 0, 0, 0, WS, OFF(http_port_file),
     "file the listener's port is written to once it is bound (for port 0); empty = none"},
    {"OSP_TARGETS_FILE", CFG_STR, "", 0, 0, 0, A, OFF(targets_file),
     "JSON file of the targets jobs may name"},
    {"OSP_CONFIG_FILE", CFG_STR, "", 0, 0, CFG_ENV_ONLY, A, OFF(config_file),
     "JSON file of settings (keys: these names without OSP_, lowercase)"},
    {"OSP_API_TOKENS_FILE", CFG_STR, "", 0, 0, 0, S, OFF(api_tokens_file),
     "file of API bearer tokens, one per line"},
    {"OSP_API_INSECURE", CFG_BOOL, "false", 0, 0, 0, S, OFF(api_insecure),
     "serve the API without bearer tokens (development only)"},
    {"OSP_API_MAX_BODY", CFG_INT, "1048576", 1024, 64 * 1024 * 1024, 0, S, OFF(api_max_body),
     "largest accepted request body, bytes (larger: 413)"},
    {"OSP_UI_SECURE_COOKIE", CFG_BOOL, "false", 0, 0, 0, S, OFF(ui_secure_cookie),
     "mark the web console's session cookie Secure (set behind a TLS-terminating proxy)"},
    {"OSP_SCHEDULES_FILE", CFG_STR, "", 0, 0, 0, S, OFF(schedules_file),
     "JSON file of cron schedules upserted at start-up"},
    {"OSP_NOTIFY_FILE", CFG_STR, "", 0, 0, 0, S, OFF(notify_file),
     "JSON file of webhook endpoints (docs/notifications.md); \"\" = no notifications"},
    {"OSP_LEDGER_RETENTION_DAYS", CFG_INT, "30", 0, 36500, 0, S, OFF(retention_days),
     "finished ledger jobs (and audit rows) older than this are pruned; 0 = keep"},
    {"OSP_RECONCILE_GRACE_S", CFG_INT, "60", 1, 86400, 0, S, OFF(reconcile_grace_s),
     "unfinished ledger jobs untouched this long are checked in Redis"},
    {"OSP_RECONCILE_PERIOD_S", CFG_INT, "30", 1, 3600, 0, S, OFF(reconcile_period_s),
     "seconds between reconciler rounds"},
    {"OSP_LEDGER_COUNT_PERIOD_S", CFG_INT, "60", 5, 3600, 0, S, OFF(jobs_count_period_s),
     "seconds between full counts of finished ledger jobs (the opspool_ledger_jobs gauge)"},
    {"OSP_SCHED_PG_TIMEOUT_MS", CFG_INT, "5000", 100, 600000, 0, S, OFF(sched_pg_timeout_ms),
     "statement_timeout of the scheduler's PostgreSQL session"},
    {"OSP_DEFAULT_MAX_ATTEMPTS", CFG_INT, "3", 1, 100, 0, S | OSP_CFG_CLI,
     OFF(default_max_attempts), "max_attempts of API, opspoolctl and cron jobs that set none"},
    {"OSP_BACKUP_ROOT", CFG_STR, "/var/lib/opspool/backups", 0, 0, 0, W, OFF(backup_root),
     "directory backup jobs write to"},
    {"OSP_POD_NAME", CFG_STR, "", 0, 0, 0, W, OFF(pod_name),
     "this worker's pod (Downward API metadata.name): keeps its pod-deletion-cost annotation "
     "at the busy slots' worth; empty = off"},
    {"OSP_POD_NAMESPACE", CFG_STR, "", 0, 0, 0, W, OFF(pod_namespace),
     "the pod's namespace (Downward API metadata.namespace)"},
    {"OSP_K8S_API", CFG_STR, "", 0, 0, 0, W, OFF(k8s_api),
     "Kubernetes API base URL; empty = in-cluster (KUBERNETES_SERVICE_HOST/_PORT)"},
    {"OSP_K8S_TOKEN_FILE", CFG_STR, OSP_K8S_SA_DIR "/token", 0, 0, 0, W, OFF(k8s_token_file),
     "bearer token file for the Kubernetes API (re-read on 401)"},
    {"OSP_K8S_CA_FILE", CFG_STR, OSP_K8S_SA_DIR "/ca.crt", 0, 0, 0, W, OFF(k8s_ca_file),
     "CA bundle for the Kubernetes API; empty = the system's CAs"},
};

#undef W
#undef S
#undef WS
#undef A
#undef OFF

/* Largest secret file read through OSP_X_FILE. */
#define SECRET_FILE_MAX (64 * 1024)
#define WORKER_ID_MAX   128

/* ---- Field access ---- */

static char **str_field(struct osp_config *cfg, const struct setting *s)
{
    return (char **)(void *)((char *)cfg + s->offset);
}

static int *int_field(struct osp_config *cfg, const struct setting *s)
{
    return (int *)(void *)((char *)cfg + s->offset);
}

static bool *bool_field(struct osp_config *cfg, const struct setting *s)
{
    return (bool *)(void *)((char *)cfg + s->offset);
}

static const char *cstr_field(const struct osp_config *cfg, const struct setting *s)
{
    return *(char *const *)(const void *)((const char *)cfg + s->offset);
}

/* "OSP_WORKER_SLOTS" -> "worker_slots" into out (at least 64 bytes). */
static void file_key(const struct setting *s, char *out, size_t cap)
{
    const char *p = s->env + 4;
    size_t i = 0;
    for (; p[i] != '\0' && i + 1 < cap; i++) {
        char c = p[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[i] = '\0';
}

/* ---- Value parsing ---- */

static int parse_bool_text(const char *name, const char *text, bool *out, struct osp_err *err)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(yes); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return osp_err_set(err, OSP_EINVAL,
                       "%s: \"%.64s\" is not a boolean (use true/false, 1/0, yes/no, on/off)", name,
                       text);
}

static int check_range(const char *name, const struct setting *s, long long v, int *out,
                       struct osp_err *err)
{
    if (v < s->min) {
        return osp_err_set(err, OSP_EINVAL, "%s: %lld is below the minimum %lld", name, v, s->min);
    }
    if (v > s->max) {
        return osp_err_set(err, OSP_EINVAL, "%s: %lld is above the maximum %lld", name, v, s->max);
    }
    *out = (int)v;
    return 0;
}

static int parse_int_text(const char *name, const struct setting *s, const char *text, int *out,
                          struct osp_err *err)
{
    /* Digits with an optional sign and nothing else: no spaces, no 0x, no "10k". */
    const char *p = text;
    if (*p == '-' || *p == '+') {
        p++;
    }
    bool digits = *p != '\0';
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            digits = false;
        }
    }
    if (!digits) {
        return osp_err_set(err, OSP_EINVAL, "%s: \"%.64s\" is not an integer", name, text);
    }
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno == ERANGE) {
        return osp_err_set(err, OSP_EINVAL, "%s: \"%.64s\" is out of range", name, text);
    }
    return check_range(name, s, v, out, err);
}

/* Store a textual value (environment, secret file, default) into the setting's field. */
static int apply_text(struct osp_config *cfg, const struct setting *s, const char *name,
                      const char *text, struct osp_err *err)
{
    switch (s->type) {
    case CFG_STR:
        free(*str_field(cfg, s));
        *str_field(cfg, s) = osp_xstrdup(text);
        return 0;
    case CFG_INT:
        return parse_int_text(name, s, text, int_field(cfg, s), err);
    case CFG_BOOL:
        return parse_bool_text(name, text, bool_field(cfg, s), err);
    }
    return osp_err_set(err, OSP_EINVAL, "%s: unknown setting type", name);
}

/* Store a JSON file value; types must match (a quoted number is a typo waiting to happen). */
static int apply_json(struct osp_config *cfg, const struct setting *s, const char *name,
                      const json_t *v, struct osp_err *err)
{
    switch (s->type) {
    case CFG_STR:
        if (!json_is_string(v)) {
            return osp_err_set(err, OSP_EINVAL, "%s: not a string", name);
        }
        if (strlen(json_string_value(v)) != json_string_length(v)) {
            return osp_err_set(err, OSP_EINVAL, "%s: contains NUL", name);
        }
        return apply_text(cfg, s, name, json_string_value(v), err);
    case CFG_INT:
        if (!json_is_integer(v)) {
            return osp_err_set(err, OSP_EINVAL, "%s: not an integer", name);
        }
        return check_range(name, s, (long long)json_integer_value(v), int_field(cfg, s), err);
    case CFG_BOOL:
        if (!json_is_boolean(v)) {
            return osp_err_set(err, OSP_EINVAL, "%s: not a boolean", name);
        }
        *bool_field(cfg, s) = json_is_true(v);
        return 0;
    }
    return osp_err_set(err, OSP_EINVAL, "%s: unknown setting type", name);
}

char *osp_config_read_secret(const char *var, const char *path, struct osp_err *err)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t len = 0;
    if (f == NULL) {
        osp_err_set(err, OSP_EINVAL, "%s: cannot open %s: %s", var, path, strerror(errno));
        return NULL;
    }
    data = osp_xmalloc(SECRET_FILE_MAX + 1);
    len = fread(data, 1, SECRET_FILE_MAX + 1, f);
    if (ferror(f)) {
        osp_err_set(err, OSP_EINVAL, "%s: cannot read %s", var, path);
        goto fail;
    }
    if (len > SECRET_FILE_MAX) {
        osp_err_set(err, OSP_EINVAL, "%s: %s is larger than %d bytes", var, path, SECRET_FILE_MAX);
        goto fail;
    }
    if (memchr(data, '\0', len) != NULL) {
        osp_err_set(err, OSP_EINVAL, "%s: %s contains a NUL byte", var, path);
        goto fail;
    }
    if (len > 0 && data[len - 1] == '\n') {
        len--;
        if (len > 0 && data[len - 1] == '\r') {
            len--;
        }
    }
    data[len] = '\0';
    fclose(f);
    return data;

fail:
    free(data);
    fclose(f);
    return NULL;
}

/* ---- Loading ---- */

/* Resolve one setting: environment, then OSP_X_FILE (secrets), then the JSON file, then the
 * default. The first source that is present wins, and its errors are the setting's errors. */
static int load_setting(struct osp_config *cfg, const struct setting *s, const json_t *file,
                        const char *file_path, struct osp_err *err)
{
    char key[64];
    char name[sizeof(key) + 300];
    const char *env = getenv(s->env);
    file_key(s, key, sizeof(key));

    if (s->flags & CFG_SECRET) {
        char file_var[96];
        snprintf(file_var, sizeof(file_var), "%s_FILE", s->env);
        const char *path = getenv(file_var);
        if (path != NULL && env != NULL) {
            return osp_err_set(err, OSP_EINVAL, "%s and %s are both set; use one", s->env,
                               file_var);
        }
        if (path != NULL) {
            char *secret = osp_config_read_secret(file_var, path, err);
            if (secret == NULL) {
                return OSP_EINVAL;
            }
            int rc = apply_text(cfg, s, s->env, secret, err);
            /* The copy is short-lived; wipe it rather than leave key material on the heap. */
            memset(secret, 0, strlen(secret));
            free(secret);
            return rc;
        }
    }
    if (env != NULL) {
        return apply_text(cfg, s, s->env, env, err);
    }
    const json_t *v = file != NULL ? json_object_get(file, key) : NULL;
    if (v != NULL) {
        snprintf(name, sizeof(name), "%s (from %.256s)", key, file_path);
        return apply_json(cfg, s, name, v, err);
    }
    return apply_text(cfg, s, s->env, s->def, err);
}

static const struct setting *find_by_key(const char *key)
{
    char k[64];
    for (size_t i = 0; i < OSP_ARRAY_LEN(settings); i++) {
        file_key(&settings[i], k, sizeof(k));
        if (strcmp(k, key) == 0) {
            return &settings[i];
        }
    }
    return NULL;
}

static int load_file(const char *path, json_t **out, struct osp_err *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return osp_err_set(err, OSP_EINVAL, "OSP_CONFIG_FILE: %s:%d:%d: %s", path, jerr.line,
                           jerr.column, jerr.text);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return osp_err_set(err, OSP_EINVAL, "OSP_CONFIG_FILE: %s: not a JSON object", path);
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        const struct setting *s = find_by_key(key);
        if (s == NULL || (s->flags & CFG_ENV_ONLY)) {
            /* key belongs to root: report before releasing it. */
            int rc = osp_err_set(err, OSP_EINVAL, "OSP_CONFIG_FILE: %s: unknown key \"%.64s\"",
                                 path, key);
            json_decref(root);
            return rc;
        }
    }
    *out = root;
    return 0;
}

/* Split worker_kinds into cfg->kinds. The names live in one buffer owned through kinds[0]
 * (names are stored back to back, so kinds[0] is the buffer's start). */
static int parse_kinds(struct osp_config *cfg, struct osp_err *err)
{
    const char *list = cfg->worker_kinds;
    char *buf = osp_xmalloc(strlen(list) + 1);
    char *w = buf;
    int n = 0;
    int rc = 0;
    char *found[OSP_MAX_KINDS];

    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        if (end == NULL) {
            end = p + strlen(p);
        }
        const char *a = p;
        const char *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) {
            a++;
        }
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) {
            b--;
        }
        size_t len = (size_t)(b - a);
        if (len == 0) {
            rc = osp_err_set(err, OSP_EINVAL, "OSP_WORKER_KINDS: empty kind name in \"%.64s\"",
                             list);
            goto out;
        }
        memcpy(w, a, len);
        w[len] = '\0';
        if (!osp_kind_name_is_valid(w)) {
            rc = osp_err_set(err, OSP_EINVAL,
                             "OSP_WORKER_KINDS: \"%.40s\" is not a valid kind name "
                             "([a-z0-9_-]{1,32})",
                             w);
            goto out;
        }
        for (int i = 0; i < n; i++) {
            if (strcmp(found[i], w) == 0) {
                rc = osp_err_set(err, OSP_EINVAL, "OSP_WORKER_KINDS: \"%s\" is listed twice", w);
                goto out;
            }
        }
        if (n == OSP_MAX_KINDS) {
            rc =
                osp_err_set(err, OSP_EINVAL, "OSP_WORKER_KINDS: more than %d kinds", OSP_MAX_KINDS);
            goto out;
        }
        found[n++] = w;
        w += len + 1;
        if (*end == '\0') {
            break;
        }
        p = end + 1;
    }

out:
    if (rc != 0) {
        free(buf);
        return rc;
    }
    for (int i = 0; i < n; i++) {
        cfg->kinds[i] = found[i];
    }
    cfg->nkinds = n;
    return 0;
}

static int check_redis_url(const struct osp_config *cfg, struct osp_err *err)
{
    const char *url = cfg->redis_url;
    if (!((strncmp(url, "redis://", 8) == 0 && url[8] != '\0') ||
          (strncmp(url, "unix://", 7) == 0 && url[7] == '/'))) {
        return osp_err_set(err, OSP_EINVAL,
                           "OSP_REDIS_URL: \"%.64s\" is not redis://host:port[/db] or "
                           "unix:///path.sock",
                           url);
    }
    if (cfg->redis_sentinels[0] == '\0') {
        return 0;
    }
    struct osp_redis_url u;
    struct osp_err e = {0, ""};
    int rc = osp_redis_url_parse(url, &u, &e);
    if (rc == 0) {
        rc = osp_redis_url_set_sentinels(&u, cfg->redis_sentinels, cfg->redis_sentinel_master, NULL,
                                         NULL, &e);
        osp_redis_url_deinit(&u);
    }
    if (rc != 0) {
        return osp_err_set(err, OSP_EINVAL, "OSP_REDIS_SENTINELS: %s", e.msg);
    }
    return 0;
}

/* Checks that involve the meaning of a value or several settings. */
static int validate(const struct osp_config *cfg, unsigned scope, struct osp_err *err)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    bool level_ok = false;
    for (size_t i = 0; i < OSP_ARRAY_LEN(levels); i++) {
        level_ok = level_ok || strcmp(cfg->log_level, levels[i]) == 0;
    }
    if (!level_ok) {
        return osp_err_set(err, OSP_EINVAL,
                           "OSP_LOG_LEVEL: \"%.32s\" is not one of debug, info, warn, error",
                           cfg->log_level);
    }
    int rc = check_redis_url(cfg, err);
    if (rc != 0) {
        return rc;
    }
    if (cfg->prefix[0] == '\0') {
        return osp_err_set(err, OSP_EINVAL, "OSP_PREFIX: must not be empty");
    }
    if (cfg->pg_dsn[0] == '\0') {
        return osp_err_set(err, OSP_EINVAL, "OSP_PG_DSN: must not be empty");
    }
    if (scope & (OSP_CFG_WORKER | OSP_CFG_SCHEDULER)) {
        if (cfg->retry_max_ms < cfg->retry_base_ms) {
            return osp_err_set(err, OSP_EINVAL,
                               "OSP_RETRY_MAX_MS: %d is below OSP_RETRY_BASE_MS (%d)",
                               cfg->retry_max_ms, cfg->retry_base_ms);
        }
        char host[256], port[8];
        if (cfg->http_addr[0] != '\0' &&
            osp_http_split_addr(cfg->http_addr, host, sizeof(host), port, sizeof(port)) != 0) {
            return osp_err_set(err, OSP_EINVAL,
                               "OSP_HTTP_ADDR: \"%.64s\" is not host:port with a port 0..65535 "
                               "(127.0.0.1:8080, [::1]:8080, 0.0.0.0:0)",
                               cfg->http_addr);
        }
    }
    if (scope & OSP_CFG_WORKER) {
        /* The id becomes part of Redis keys and log lines. */
        size_t n = strlen(cfg->worker_id);
        if (n > WORKER_ID_MAX) {
            return osp_err_set(err, OSP_EINVAL, "OSP_WORKER_ID: longer than %d characters",
                               WORKER_ID_MAX);
        }
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)cfg->worker_id[i];
            if (c <= ' ' || c == 0x7f) {
                return osp_err_set(err, OSP_EINVAL,
                                   "OSP_WORKER_ID: must not contain spaces or control characters");
            }
        }
    }
    return 0;
}

int osp_config_load(struct osp_config *cfg, unsigned scope, struct osp_err *err)
{
    json_t *file = NULL;
    const char *path = getenv("OSP_CONFIG_FILE");
    int rc = 0;

    memset(cfg, 0, sizeof(*cfg));
    if (path != NULL && path[0] != '\0') {
        rc = load_file(path, &file, err);
        if (rc != 0) {
            goto out;
        }
    }
    for (size_t i = 0; i < OSP_ARRAY_LEN(settings); i++) {
        const struct setting *s = &settings[i];
        rc = load_setting(cfg, s, file, path, err);
        if (rc != 0 && !(s->scope & scope)) {
            /* Not ours to judge: fall back to the default. */
            rc = apply_text(cfg, s, s->env, s->def, NULL);
        }
        if (rc != 0) {
            goto out;
        }
    }
    if ((scope & OSP_CFG_SCHEDULER) && !(scope & OSP_CFG_WORKER) && cfg->http_addr[0] == '\0') {
        /* The scheduler always serves its API: print and use the address it listens on. */
        free(cfg->http_addr);
        cfg->http_addr = osp_xstrdup(OSP_SCHED_HTTP_ADDR);
    }
    rc = validate(cfg, scope, err);
    if (rc != 0) {
        goto out;
    }
    rc = parse_kinds(cfg, err);
    if (rc != 0 && !(scope & OSP_CFG_WORKER)) {
        /* Only workers run kinds; others keep the default list. */
        free(cfg->worker_kinds);
        cfg->worker_kinds = osp_xstrdup("noop");
        rc = parse_kinds(cfg, NULL);
    }

out:
    json_decref(file);
    if (rc != 0) {
        osp_config_deinit(cfg);
    }
    return rc;
}

void osp_config_defaults(struct osp_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < OSP_ARRAY_LEN(settings); i++) {
        int rc = apply_text(cfg, &settings[i], settings[i].env, settings[i].def, NULL);
        OSP_ASSERT(rc == 0); /* the table's defaults parse: test_config checks each */
    }
    int rc = parse_kinds(cfg, NULL);
    OSP_ASSERT(rc == 0);
}

void osp_config_deinit(struct osp_config *cfg)
{
    for (size_t i = 0; i < OSP_ARRAY_LEN(settings); i++) {
        const struct setting *s = &settings[i];
        if (s->type != CFG_STR) {
            continue;
        }
        char **p = str_field(cfg, s);
        if (*p != NULL && (s->flags & CFG_SECRET)) {
            memset(*p, 0, strlen(*p));
        }
        free(*p);
    }
    /* kinds[0] owns the buffer holding every parsed kind name. */
    free(cfg->kinds[0]);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- Output ---- */

static void format_value(const struct osp_config *cfg, const struct setting *s, char *out,
                         size_t cap)
{
    switch (s->type) {
    case CFG_STR: {
        const char *v = cstr_field(cfg, s);
        if (s->flags & CFG_SECRET) {
            snprintf(out, cap, "%s", (v != NULL && v[0] != '\0') ? "<redacted>" : "<unset>");
        } else {
            snprintf(out, cap, "%s", v != NULL ? v : "");
        }
        return;
    }
    case CFG_INT:
        snprintf(out, cap, "%d", *(const int *)(const void *)((const char *)cfg + s->offset));
        return;
    case CFG_BOOL:
        snprintf(out, cap, "%s",
                 *(const bool *)(const void *)((const char *)cfg + s->offset) ? "true" : "false");
        return;
    }
}

void osp_config_print(const struct osp_config *cfg, unsigned scope, FILE *out)
{
    char value[1024];
    for (size_t i = 0; i < OSP_ARRAY_LEN(settings); i++) {
        const struct setting *s = &settings[i];
        if (!(s->scope & scope)) {
            continue;
        }
        format_value(cfg, s, value, sizeof(value));
        fprintf(out, "%s=%s\n", s->env, value);
    }
}

void osp_config_help(unsigned scope, FILE *out)
{
    fprintf(out, "Settings (environment; also keys of the JSON file named by OSP_CONFIG_FILE,\n"
                 "lowercase without OSP_; the environment wins):\n");
    for (size_t i = 0; i < OSP_ARRAY_LEN(settings); i++) {
        const struct setting *s = &settings[i];
        if (!(s->scope & scope)) {
            continue;
        }
        fprintf(out, "  %-22s %s", s->env, s->help);
        if (s->type == CFG_INT) {
            fprintf(out, " [%lld..%lld]", s->min, s->max);
        }
        fprintf(out, " (default: \"%s\")", s->def);
        if (s->flags & CFG_SECRET) {
            fprintf(out, " secret; or %s_FILE=/path", s->env);
        }
        fputc('\n', out);
    }
}

void osp_config_rq_opts(const struct osp_config *cfg, struct osp_rq_opts *o)
{
    *o = (struct osp_rq_opts){.url = cfg->redis_url,
                              .username = cfg->redis_username,
                              .password = cfg->redis_password,
                              .prefix = cfg->prefix,
                              .sentinels = cfg->redis_sentinels,
                              .sentinel_master = cfg->redis_sentinel_master,
                              .sentinel_username = cfg->redis_sentinel_username,
                              .sentinel_password = cfg->redis_sentinel_password};
}
