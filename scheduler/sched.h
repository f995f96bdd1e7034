/* SPDX-License-Identifier: MIT */
/* sched.h — the scheduler process context (STYLE.md §2.6) and the contract between its
 * modules. One libev loop owns everything: the HTTP API (api.c), the duties (promoter.c,
 * reaper.c, cronfire.c, reconciler.c incl. retention, campaigns.c, gauges.c), each an ev_timer with
 * an in_flight flag so a round never overlaps its predecessor.
 *
 * Clients (docs/decisions/0002-scheduler-sync-clients.md): the promoter and reaper use the
 * asynchronous Redis client; API handlers, cron, reconciler, retention and gauges use the
 * synchronous clients (osp_pgs with a short statement_timeout, osp_rqs), which block the loop
 * for one round trip at a time. Every duty is safe with any number of replicas running. */
#ifndef OSP_SCHED_H
#define OSP_SCHED_H

#include "common/config.h"
#include "common/envelope.h"
#include "common/http.h"
#include "common/ledger.h"
#include "common/metrics.h"
#include "common/ops.h"
#include "common/rq.h"
#include "jobs/targets.h"

#include <ev.h>

#define SCHED_MAX_TOKENS 64
#define SCHED_TOKEN_MAX  256
#define SCHED_MAX_ROUTES 32

/* API token scopes (docs/api.md "Authentication", docs/security.md). A tokens-file line
 * "TOKEN" has every scope (deprecated, kept for compatibility); "TOKEN scopes=a,b" only those. */
enum {
    SCHED_SCOPE_SUBMIT = 1u,  /* POST /v1/jobs */
    SCHED_SCOPE_READ = 2u,    /* GETs of jobs, queues, schedules */
    SCHED_SCOPE_OPERATE = 4u, /* cancel, pause/resume, dead retry, schedules create/delete */
    SCHED_SCOPE_ALL = 7u,
};
/* Who made an API call, for audit records and logs: "token:<8 hex>" (first 8 hex digits of
 * SHA-256 of the token; never the token), or "insecure" under OSP_API_INSECURE=1. */
#define SCHED_WHO_MAX 24

struct sched;
/* One authenticated route: the scope it needs and its handler (api.c wraps every /v1 route). */
struct sched_route {
    struct sched *s;
    unsigned scope;
    char name[64];            /* "POST /v1/jobs/{id}/cancel", for 403 messages and logs */
    const char *const *query; /* query parameters the route accepts (NULL-terminated), or NULL */
    void (*fn)(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg);
};

/* Settings the scheduler reads itself (getenv; listed in --help and docs/api.md). */
struct sched_settings {
    const char *api_addr;       /* OSP_API_ADDR, default 127.0.0.1:8080 */
    size_t api_max_body;        /* OSP_API_MAX_BODY bytes, default 1 MiB */
    bool api_insecure;          /* OSP_API_INSECURE=1: no tokens file, no auth */
    const char *schedules_file; /* OSP_SCHEDULES_FILE, "" = none */
    int retention_days;         /* OSP_LEDGER_RETENTION_DAYS, default 30, 0 = keep */
    int reconcile_grace_s;      /* OSP_RECONCILE_GRACE_S, default 60 */
    int reconcile_period_s;     /* OSP_RECONCILE_PERIOD_S, default 30 */
    int ledger_count_period_s;  /* OSP_LEDGER_COUNT_PERIOD_S, default 60 */
    int pg_timeout_ms;          /* OSP_SCHED_PG_TIMEOUT_MS: statement_timeout, default 5000 */
    int default_max_attempts;   /* OSP_DEFAULT_MAX_ATTEMPTS for API/cron jobs, default 3 */
    bool ui_secure_cookie;      /* OSP_UI_SECURE_COOKIE: console cookie always Secure */
};

struct sched_duty {
    ev_timer timer;
    bool in_flight;
    double period_s;
    int64_t started_ns; /* osp_mono_ns() when the round in flight began */
    struct sched *s;
};

struct sched {
    struct ev_loop *loop;
    const struct osp_config *cfg;
    struct sched_settings set;
    char replica[96]; /* host-pid, recorded with cron firings */
    struct osp_env_keys keys;
    struct osp_targets targets;
    bool have_targets;

    /* clients */
    struct osp_pgs *pg; /* NULL while disconnected; see sched_pg() */
    double pg_retry_at; /* ev_now() before which we do not reconnect */
    bool pg_suspect;    /* last call failed: ping before the next use */
    bool migrated;
    struct osp_rqs *rqs; /* reconnects by itself */
    struct osp_rq *rq;   /* async, for promoter and reaper */

    /* API */
    struct osp_http *http;
    uint64_t http_seen[6]; /* requests by status class already added to m_http */
    char tokens[SCHED_MAX_TOKENS][SCHED_TOKEN_MAX + 1];
    unsigned token_scopes[SCHED_MAX_TOKENS]; /* SCHED_SCOPE_* of each token */
    char token_fp[SCHED_MAX_TOKENS][9];      /* fingerprint: 8 hex digits of SHA-256 */
    size_t ntokens;
    struct sched_route routes[SCHED_MAX_ROUTES];
    size_t nroutes;
    char who[SCHED_WHO_MAX];         /* caller of the request being handled ("" outside one) */
    struct osp_submitter *submitter; /* API submits committed in groups (api_jobs.c) */
    struct console *console;         /* the web console's sessions (console.c) */

    /* duties */
    struct sched_duty promoter, reaper, cronfire, reconciler, retention, gauges, epoch, campaigns;
    char reconcile_cursor[OSP_ID_LEN + 1]; /* resume point of the ledger scan, "" = start */
    char redis_epoch[OSP_ID_LEN + 1];      /* P:epoch as last seen, "" = not yet */
    bool reconcile_urgent;                 /* Redis lost its keys: sweep now, short grace */
    struct sched_notify *notify;           /* notify.c: webhooks */
    struct osp_rq_recovery *recov;         /* reaped in Redis, not yet in the ledger */
    size_t nrecov, caprecov;

    /* signals */
    ev_signal sigterm, sigint, sighup;

    /* metrics */
    struct osp_metrics *metrics;
    struct osp_metric *m_http;                            /* counter: requests by status class */
    struct osp_metric *m_submitted;                       /* counter{kind} */
    struct osp_metric *m_submit_commits, *m_submit_group; /* API submit transactions, sizes */
    struct osp_metric *m_promoted, *m_reaped, *m_reconciled, *m_pruned;
    struct osp_metric *m_redis_err, *m_pg_err, *m_master_changes;
    uint64_t last_master_changes;
    struct osp_metric *m_firings; /* counter{schedule,status} */
    struct osp_metric *m_q_waiting;
    struct osp_metric *m_q_pending, *m_q_running, *m_q_delayed, *m_q_dead, *m_q_paused,
        *m_q_oldest;              /* gauges{kind} */
    struct osp_metric *m_jobs;    /* gauge{kind,state} from the ledger */
    json_t *jobs_counted;         /* the last full count's rows, for the finished states */
    int64_t jobs_counted_ns;      /* when (osp_mono_ns) */
    struct osp_metric *m_workers; /* gauge: registered workers */
    struct osp_metric *m_sched_last_success, *m_sched_last_fire; /* gauge{schedule} */
    struct osp_metric *m_sched_last_missed, *m_sched_first_fire; /* gauge{schedule} */
    struct osp_metric *m_bench_verdict, *m_bench_last_run, *m_bench_rps, *m_bench_latency;
    struct osp_metric *m_duty_seconds; /* histogram{duty} */
    struct osp_metric *m_up;           /* gauge{component}: redis, postgres reachable */
};

/* ---- main.c ---- */
/* The synchronous PostgreSQL connection, (re)connected and migrated on demand; NULL when
 * PostgreSQL is unreachable (reconnects at most once a second). */
struct osp_pgs *sched_pg(struct sched *s);
/* Record a failed PG/Redis call: counts the error; for PG marks the connection suspect. */
void sched_pg_failed(struct sched *s, const struct osp_err *err);
void sched_redis_failed(struct sched *s, const struct osp_err *err);
/* Run a query through osp_pgs_query, with error accounting. NULL on failure (err filled). */
json_t *sched_query(struct sched *s, const char *sql, int nparams, const char *const *params,
                    struct osp_err *err);
/* The operation context (common/ops.h) of a duty or a request: pg (may be NULL for checks
 * only), the Redis client, signing keys, limits and who acts (who NULL: no audit record). */
struct osp_ops sched_ops(struct sched *s, struct osp_pgs *pg, const char *who, const char *via);
/* The submit checks' policy: the scheduler's targets and default attempt budget. */
struct osp_submit_policy sched_policy(struct sched *s);
/* Start a periodic duty. */
void sched_duty_start(struct sched *s, struct sched_duty *d, double period_s,
                      void (*cb)(struct ev_loop *, ev_timer *, int));
void sched_duty_stop(struct sched *s, struct sched_duty *d);
/* Observe how long a duty round took (metrics). */
void sched_duty_observe(struct sched *s, const char *duty, int64_t started_ns);
/* Rounds that are one async Redis script (promoter, reaper). _begin: false while a round is in
 * flight or Redis is not connected; else stamps the round's start. _done (the script's
 * callback, with the duty as arg): clears in-flight; for a finished round records its
 * duration, counts an error (and warns) or adds n to `moved`; true when n > 0 entries moved,
 * for the caller's own log line. */
bool sched_script_duty_begin(struct sched_duty *d);
bool sched_script_duty_done(struct sched_duty *d, const char *name, int status, int64_t n,
                            struct osp_metric *moved);

/* ---- api.c ---- */
void sched_api_routes(struct sched *s);
/* The group committer of API submits (api_jobs.c), on its own asynchronous ledger
 * connection; stop answers every submit still waiting (call it before the HTTP server goes). */
void api_submitter_start(struct sched *s);
void api_submitter_stop(struct sched *s);
/* Load the bearer tokens (and their scopes) from cfg->api_tokens_file into s->tokens. 0, or
 * OSP_EINVAL with err (unreadable, no tokens, token too long, unknown option or scope); the
 * loaded tokens are unchanged on failure. */
int sched_tokens_load(struct sched *s, struct osp_err *err);

/* ---- console.c (docs/console.md) ---- */
/* Routes of the web console under /ui/ and its session table; _free drops every session. */
void sched_console_routes(struct sched *s);
void sched_console_free(struct sched *s);

/* ---- jobs rebuilt from ledger rows (reconciler.c) ---- */
/* A reconciler page row (osp_ledger_reconcile_page) into j through osp_ledger_job_from_row,
 * with the attempt the re-enqueued envelope carries: a running job's own, else the next. */
int sched_job_from_row(const json_t *row, struct osp_job *j, struct osp_err *err);

/* ---- cronfire.c ---- */
/* Upsert the schedules of OSP_SCHEDULES_FILE. 0 or an error naming the schedule. */
int sched_schedules_seed(struct sched *s, struct osp_err *err);
void sched_cronfire_start(struct sched *s);

/* ---- promoter.c, reaper.c ---- */
void sched_promoter_start(struct sched *s);
void sched_reaper_start(struct sched *s);

/* ---- reconciler.c ---- */
void sched_reconciler_start(struct sched *s);
void sched_retention_start(struct sched *s);
/* One reconciliation pass over at most `max` ledger rows; returns jobs re-enqueued or <0. */
int sched_reconcile_once(struct sched *s, int max);

/* ---- campaigns.c ---- */
void sched_campaigns_start(struct sched *s);

/* ---- notify.c ---- */
/* Load OSP_NOTIFY_FILE (when set) and start the notification duty; OSP_EINVAL with err for a
 * bad file (the scheduler refuses to start). _reload (SIGHUP): the new file replaces the old
 * one only when it is valid. _stop: requests in flight are made due again. */
int sched_notify_start(struct sched *s, struct osp_err *err);
int sched_notify_reload(struct sched *s, struct osp_err *err);
void sched_notify_stop(struct sched *s);

/* ---- gauges.c ---- */
void sched_metrics_init(struct sched *s);
void sched_gauges_start(struct sched *s);
/* Refresh the gauges now (at start, then every 5 s). */
void sched_gauges_refresh(struct sched *s);

#endif
