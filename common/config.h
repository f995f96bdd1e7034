/* SPDX-License-Identifier: MIT */
/* config.h — process configuration, parsed once into a const struct and never mutated.
 *
 * Sources, highest precedence first: environment variables (OSP_*), then the optional JSON
 * file named by OSP_CONFIG_FILE (keys are the variable names without the OSP_ prefix, in
 * lowercase: {"redis_url": "...", "worker_slots": 4}), then built-in defaults. A setting
 * marked secret may also be given as OSP_NAME_FILE=/path (Kubernetes secrets); its value is
 * the file's content without a trailing newline, and it is never printed.
 * One table in config.c drives parsing, validation, --help and --print-config. */
#ifndef OSP_CONFIG_H
#define OSP_CONFIG_H

#include "common/err.h"

#include <stdio.h>

/* Which program a setting applies to (a bit set). */
enum { OSP_CFG_WORKER = 1u, OSP_CFG_SCHEDULER = 2u, OSP_CFG_CLI = 4u, OSP_CFG_ALL = 7u };

#define OSP_MAX_KINDS       16
#define OSP_SCHED_HTTP_ADDR "127.0.0.1:8080" /* the scheduler's OSP_HTTP_ADDR when unset */
/* A pod's service account: token and CA of the in-cluster Kubernetes API. */
#define OSP_K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct osp_config {
    /* connections */
    char *redis_url;               /* OSP_REDIS_URL: redis://host:port[/db] or unix:///path.sock */
    char *redis_password;          /* OSP_REDIS_PASSWORD (secret) */
    char *redis_username;          /* OSP_REDIS_USERNAME (ACL user), "" = default user */
    char *redis_sentinels;         /* OSP_REDIS_SENTINELS: "host[:port],..." or "" (no Sentinel) */
    char *redis_sentinel_master;   /* OSP_REDIS_SENTINEL_MASTER, default "opspool" */
    char *redis_sentinel_username; /* OSP_REDIS_SENTINEL_USERNAME, "" = default user */
    char *redis_sentinel_password; /* OSP_REDIS_SENTINEL_PASSWORD (secret) */
    char *pg_dsn; /* OSP_PG_DSN: libpq connection string or URI (secret: may hold a password) */
    char *prefix; /* OSP_PREFIX: key prefix, default "{opspool}" */
    /* envelope security */
    char *signing_key;     /* OSP_SIGNING_KEY (secret): HMAC key; "" = unsigned */
    char *signing_key_old; /* OSP_SIGNING_KEY_OLD (secret): still accepted (rotation) */
    bool allow_unsigned;   /* OSP_ALLOW_UNSIGNED: accept unsigned envelopes when a key is set */
    int env_max_bytes;     /* OSP_ENV_MAX_BYTES: largest accepted envelope */
    /* logging */
    char *log_level; /* OSP_LOG_LEVEL: debug|info|warn|error */
    /* worker */
    char *worker_id;            /* OSP_WORKER_ID: default "<host>-<pid>-<rand>" */
    char *worker_kinds;         /* OSP_WORKER_KINDS: comma list, e.g. "noop,benchmark" */
    char *kinds[OSP_MAX_KINDS]; /* parsed worker_kinds (borrowed from a copy owned by config) */
    int nkinds;
    int worker_slots;     /* OSP_WORKER_SLOTS: concurrent jobs, 1..1024 */
    int lease_ms;         /* OSP_LEASE_MS: worker/job lease; heartbeat every lease/3 */
    int drain_timeout_s;  /* OSP_DRAIN_TIMEOUT_S: SIGTERM grace before jobs are handed back */
    int max_recoveries;   /* OSP_MAX_RECOVERIES: crash recoveries before a job is dead */
    int retry_base_ms;    /* OSP_RETRY_BASE_MS: first retry delay */
    int retry_max_ms;     /* OSP_RETRY_MAX_MS: cap of the exponential backoff */
    int job_timeout_s;    /* OSP_JOB_TIMEOUT_S: default hard timeout when a job sets none */
    int job_ttl_s;        /* OSP_JOB_TTL_S: lifetime of finished jobs' Redis state */
    int child_mem_mb;     /* OSP_CHILD_MEM_MB: RLIMIT_AS of job children, 0 = unlimited */
    int child_nofile;     /* OSP_CHILD_NOFILE: RLIMIT_NOFILE of job children */
    int pg_batch_max;     /* OSP_PG_BATCH_MAX: ledger writes per transaction */
    bool run_duties;      /* OSP_WORKER_DUTIES: worker also promotes delayed jobs and reaps */
    char *http_addr;      /* OSP_HTTP_ADDR: host:port; worker: "" = off; scheduler: never
                           * "" (OSP_SCHED_HTTP_ADDR when unset) */
    char *http_port_file; /* OSP_HTTP_PORT_FILE: the bound port is written here, "" = none */
    char *targets_file;   /* OSP_TARGETS_FILE: JSON targets a job may name */
    char *config_file;    /* OSP_CONFIG_FILE */
    /* scheduler */
    char *api_tokens_file;    /* OSP_API_TOKENS_FILE: one bearer token per line */
    bool api_insecure;        /* OSP_API_INSECURE: serve the API without tokens (development) */
    int api_max_body;         /* OSP_API_MAX_BODY: largest accepted request body, bytes */
    bool ui_secure_cookie;    /* OSP_UI_SECURE_COOKIE: console cookie always Secure (TLS proxy) */
    char *schedules_file;     /* OSP_SCHEDULES_FILE: cron schedules upserted at start-up */
    char *notify_file;        /* OSP_NOTIFY_FILE: webhook endpoints, "" = none */
    int retention_days;       /* OSP_LEDGER_RETENTION_DAYS: finished jobs pruned after; 0 = keep */
    int reconcile_grace_s;    /* OSP_RECONCILE_GRACE_S: unfinished rows untouched this long */
    int reconcile_period_s;   /* OSP_RECONCILE_PERIOD_S: between reconciler rounds */
    int jobs_count_period_s;  /* OSP_LEDGER_COUNT_PERIOD_S: full ledger job counts */
    int sched_pg_timeout_ms;  /* OSP_SCHED_PG_TIMEOUT_MS: the scheduler session's timeout */
    int default_max_attempts; /* OSP_DEFAULT_MAX_ATTEMPTS: for API, CLI and cron jobs */
    char *backup_root;        /* OSP_BACKUP_ROOT: where backup jobs write */
    char *pod_name;           /* OSP_POD_NAME: this worker's pod; empty = no pod-deletion-cost */
    char *pod_namespace;      /* OSP_POD_NAMESPACE */
    char *k8s_api;            /* OSP_K8S_API: API base URL; empty = in-cluster */
    char *k8s_token_file;     /* OSP_K8S_TOKEN_FILE */
    char *k8s_ca_file;        /* OSP_K8S_CA_FILE: empty = the system's CAs */
};

/* Fill cfg from the environment, the JSON file and defaults, validate every setting that
 * applies to `scope`, and return 0; or return OSP_EINVAL with err naming the setting and why
 * (cfg is then deinitialised). Unknown OSP_* variables are ignored; unknown keys in the JSON
 * file are an error (typos must not pass silently). */
int osp_config_load(struct osp_config *cfg, unsigned scope, struct osp_err *err);
void osp_config_deinit(struct osp_config *cfg);
/* Content of a secret file (at most 64 KiB, no NUL byte) without one trailing newline (\n or
 * \r\n), owned by the caller (wipe it before free); NULL and err set on failure. The message
 * names var and path, never the content. */
char *osp_config_read_secret(const char *var, const char *path, struct osp_err *err);

struct osp_rq_opts;
/* The Redis connection settings of cfg (URL, credentials, Sentinel, prefix) as queue-client
 * options; the strings stay owned by cfg. worker_id is left NULL. */
void osp_config_rq_opts(const struct osp_config *cfg, struct osp_rq_opts *o);
/* Fill cfg with every setting's default (no environment, no file): for tools that run a kind
 * outside a worker. */
void osp_config_defaults(struct osp_config *cfg);
/* Print every setting for scope as NAME=value, secrets as "<redacted>" (or "<unset>"). */
void osp_config_print(const struct osp_config *cfg, unsigned scope, FILE *out);
/* Print the settings table (name, default, meaning) for --help. */
void osp_config_help(unsigned scope, FILE *out);

#endif
