/* SPDX-License-Identifier: MIT */
/* main.c — opspool-scheduler: configuration, clients, the loop, signals, exit.
 *
 *   opspool-scheduler                  serve the API on OSP_HTTP_ADDR and run every duty
 *   opspool-scheduler --print-config | --help | --version
 *
 * Start-up order: config → settings → tokens (refuse to start without them unless
 * OSP_API_INSECURE=1) → PostgreSQL (ledger + scheduler migrations, schedules seeded) and
 * Redis, retried for up to 30 s → HTTP → duties → ev_run. SIGTERM/SIGINT: stop the HTTP
 * server and the duties, free the async Redis client (pending callbacks get OSP_ECANCELED),
 * leave the loop. SIGHUP: reload the API tokens and the notification endpoints. */
#include "common/alloc.h"
#include "common/log.h"
#include "common/submit.h"
#include "scheduler/sched.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCHED_STARTUP_WAIT_S 30.0

/* Testing-only settings, read with getenv (never part of a deployment's configuration). */
static const struct {
    const char *name, *dflt, *help;
} extra_settings[] = {
    {"OSP_TEST_CLOCK_OFFSET_MS", "0", "testing only: shift the scheduler's clock by this many ms"},
    {"OSP_TEST_CLOCK_RATE", "1", "testing only: run the clock this many times faster"},
    {"OSP_TEST_CLOCK_ANCHOR_MS", "", "testing only: epoch ms from which the fast clock runs"},
};

static void usage(FILE *out)
{
    fputs("usage: opspool-scheduler [--print-config] [--help] [--version]\n"
          "\n"
          "Serves the opspool HTTP API (docs/api.md) on OSP_HTTP_ADDR (default " OSP_SCHED_HTTP_ADDR
          ")\n"
          "and runs the pool's duties: delayed-job promoter, reaper, cron schedules, reconciler\n"
          "and ledger retention. Any number of replicas may run. SIGHUP reloads API tokens and "
          "notification endpoints.\n"
          "\nSettings (environment):\n",
          out);
    osp_config_help(OSP_CFG_SCHEDULER, out);
    fputs("\nTesting-only settings (environment):\n", out);
    for (size_t i = 0; i < OSP_ARRAY_LEN(extra_settings); i++) {
        fprintf(out, "  %-28s %s (default: %s)\n", extra_settings[i].name, extra_settings[i].help,
                extra_settings[i].dflt[0] ? extra_settings[i].dflt : "\"\"");
    }
}

/* Integer setting from the environment within [lo, hi]. */
static int env_int(const char *name, long long dflt, long long lo, long long hi, long long *out)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        *out = dflt;
        return 0;
    }
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    if (*end != '\0' || x < lo || x > hi) {
        fprintf(stderr, "opspool-scheduler: %s=%s: expected an integer %lld..%lld\n", name, v, lo,
                hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* The scheduler's settings, from the common configuration table (common/config.c). */
static int settings_load(struct sched_settings *st, const struct osp_config *cfg)
{
    st->api_insecure = cfg->api_insecure;
    st->schedules_file = cfg->schedules_file;
    st->api_max_body = (size_t)cfg->api_max_body;
    st->retention_days = cfg->retention_days;
    st->reconcile_grace_s = cfg->reconcile_grace_s;
    st->reconcile_period_s = cfg->reconcile_period_s;
    st->ledger_count_period_s = cfg->jobs_count_period_s;
    st->pg_timeout_ms = cfg->sched_pg_timeout_ms;
    st->default_max_attempts = cfg->default_max_attempts;
    st->ui_secure_cookie = cfg->ui_secure_cookie;
    return 0;
}

/* ---- Test clock seam ---- */

static int64_t clock_offset_ms;
static int64_t clock_rate = 1;
static int64_t clock_anchor_ms;

static int64_t test_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t real = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return clock_anchor_ms + (real - clock_anchor_ms) * clock_rate + clock_offset_ms;
}

static int test_clock_init(void)
{
    long long off, rate, anchor;
    if (env_int("OSP_TEST_CLOCK_OFFSET_MS", 0, -LLONG_MAX / 4, LLONG_MAX / 4, &off) != 0 ||
        env_int("OSP_TEST_CLOCK_RATE", 1, 1, 3600, &rate) != 0 ||
        env_int("OSP_TEST_CLOCK_ANCHOR_MS", 0, 0, LLONG_MAX / 4, &anchor) != 0) {
        return -1;
    }
    if (off == 0 && rate == 1) {
        return 0;
    }
    clock_offset_ms = off;
    clock_rate = rate;
    osp_now_ms_hook = NULL;
    clock_anchor_ms = anchor ? anchor : osp_now_ms();
    osp_now_ms_hook = test_clock;
    osp_warn("test clock active: offset %lld ms, rate %lldx", off, rate);
    return 0;
}

/* ---- Clients ---- */

void sched_pg_failed(struct sched *s, const struct osp_err *err)
{
    if (err != NULL && err->code != OSP_EPG) {
        return;
    }
    s->pg_suspect = true;
    osp_metric_add(s->m_pg_err, NULL, 1);
}

void sched_redis_failed(struct sched *s, const struct osp_err *err)
{
    if (err != NULL && err->code != OSP_EREDIS) {
        return;
    }
    osp_metric_add(s->m_redis_err, NULL, 1);
}

static int pg_setup(struct sched *s, struct osp_pgs *pg, struct osp_err *err)
{
    if (!s->migrated) {
        /* Ledger migrations include the scheduler's (0002_scheduler.sql). */
        int rc = osp_ledger_migrate(pg, err);
        if (rc != 0) {
            return rc;
        }
        s->migrated = true;
    }
    char sql[96];
    snprintf(sql, sizeof(sql), "SET statement_timeout = %d", s->set.pg_timeout_ms);
    json_t *r = osp_pgs_query(pg, sql, 0, NULL, err);
    if (r == NULL) {
        return err->code;
    }
    json_decref(r);
    return 0;
}

struct osp_pgs *sched_pg(struct sched *s)
{
    struct osp_err err = {0, ""};
    if (s->pg != NULL && s->pg_suspect) {
        json_t *r = osp_pgs_query(s->pg, "SELECT 1", 0, NULL, &err);
        if (r == NULL) {
            osp_warn("postgresql connection lost: %s", err.msg);
            osp_pgs_free(s->pg);
            s->pg = NULL;
        }
        json_decref(r);
        s->pg_suspect = false;
    }
    if (s->pg != NULL) {
        return s->pg;
    }
    double now = ev_time();
    if (now < s->pg_retry_at) {
        return NULL;
    }
    s->pg_retry_at = now + 1.0;
    struct osp_pgs *pg = osp_pgs_connect(s->cfg->pg_dsn, &err);
    if (pg == NULL) {
        osp_metric_add(s->m_pg_err, NULL, 1);
        osp_warn("postgresql unavailable: %s", err.msg);
        return NULL;
    }
    if (pg_setup(s, pg, &err) != 0) {
        osp_metric_add(s->m_pg_err, NULL, 1);
        osp_error("postgresql set-up failed: %s", err.msg);
        osp_pgs_free(pg);
        return NULL;
    }
    s->pg = pg;
    return pg;
}

json_t *sched_query(struct sched *s, const char *sql, int nparams, const char *const *params,
                    struct osp_err *err)
{
    struct osp_pgs *pg = sched_pg(s);
    if (pg == NULL) {
        osp_err_set(err, OSP_EPG, "postgresql unavailable");
        return NULL;
    }
    json_t *r = osp_pgs_query(pg, sql, nparams, params, err);
    if (r == NULL) {
        sched_pg_failed(s, err);
    }
    return r;
}

/* ---- Duties ---- */

struct osp_ops sched_ops(struct sched *s, struct osp_pgs *pg, const char *who, const char *via)
{
    struct osp_ops o = {.pg = pg,
                        .rq = s->rqs,
                        .keys = &s->keys,
                        .env_max_bytes = (size_t)s->cfg->env_max_bytes,
                        .job_ttl_s = s->cfg->job_ttl_s,
                        .actor = {who, via}};
    return o;
}

struct osp_submit_policy sched_policy(struct sched *s)
{
    struct osp_submit_policy p = {s->set.default_max_attempts,
                                  s->have_targets ? &s->targets : NULL};
    return p;
}

void sched_duty_start(struct sched *s, struct sched_duty *d, double period_s,
                      void (*cb)(struct ev_loop *, ev_timer *, int))
{
    d->s = s;
    d->period_s = period_s;
    d->in_flight = false;
    ev_timer_init(&d->timer, cb, period_s, period_s);
    ev_timer_start(s->loop, &d->timer);
}

void sched_duty_stop(struct sched *s, struct sched_duty *d)
{
    ev_timer_stop(s->loop, &d->timer);
}

void sched_duty_observe(struct sched *s, const char *duty, int64_t started_ns)
{
    const char *v[] = {duty};
    osp_metric_observe(s->m_duty_seconds, v, (double)(osp_mono_ns() - started_ns) / 1e9);
}

bool sched_script_duty_begin(struct sched_duty *d)
{
    if (d->in_flight || !osp_rq_is_ready(d->s->rq)) {
        return false;
    }
    d->started_ns = osp_mono_ns();
    return true;
}

bool sched_script_duty_done(struct sched_duty *d, const char *name, int status, int64_t n,
                            struct osp_metric *moved)
{
    struct sched *s = d->s;
    d->in_flight = false;
    if (status == OSP_ECANCELED) {
        return false;
    }
    sched_duty_observe(s, name, d->started_ns);
    if (status != 0) {
        osp_metric_add(s->m_redis_err, NULL, 1);
        osp_warn("%s: %s", name, osp_rq_last_error(s->rq));
        return false;
    }
    if (n > 0) {
        osp_metric_add(moved, NULL, (double)n);
    }
    return n > 0;
}

/* ---- Signals ---- */

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    struct sched *s = ev_userdata(loop);
    osp_info("signal %d: shutting down", w->signum);
    api_submitter_stop(s);
    osp_http_free(s->http);
    s->http = NULL;
    sched_notify_stop(s);
    struct sched_duty *duties[] = {&s->promoter,  &s->reaper, &s->cronfire, &s->reconciler,
                                   &s->retention, &s->gauges, &s->epoch,    &s->campaigns};
    for (size_t i = 0; i < OSP_ARRAY_LEN(duties); i++) {
        sched_duty_stop(s, duties[i]);
    }
    ev_signal_stop(loop, &s->sigterm);
    ev_signal_stop(loop, &s->sigint);
    ev_signal_stop(loop, &s->sighup);
    ev_break(loop, EVBREAK_ALL);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    struct sched *s = ev_userdata(loop);
    struct osp_err err = {0, ""};
    if (s->cfg->notify_file[0] != '\0') {
        if (sched_notify_reload(s, &err) != 0) {
            osp_error("SIGHUP: keeping the previous notification endpoints: %s", err.msg);
        } else {
            osp_info("SIGHUP: reloaded the notification endpoints");
        }
    }
    if (s->set.api_insecure && s->cfg->api_tokens_file[0] == '\0') {
        osp_info("SIGHUP: no tokens file (OSP_API_INSECURE=1), nothing to reload");
        return;
    }
    if (sched_tokens_load(s, &err) != 0) {
        osp_error("SIGHUP: keeping the previous API tokens: %s", err.msg);
        return;
    }
    osp_info("SIGHUP: reloaded %zu API token(s)", s->ntokens);
}

/* ---- Start-up ---- */

static void on_rq_state(struct osp_rq *rq, bool ready, void *arg)
{
    (void)arg;
    if (ready) {
        osp_info("redis ready: %s", osp_rq_endpoint(rq));
    } else {
        osp_warn("redis connection lost (%s); reconnecting", osp_rq_last_error(rq));
    }
}

static int connect_all(struct sched *s)
{
    struct osp_rq_opts ro;
    osp_config_rq_opts(s->cfg, &ro);
    struct osp_err err = {0, ""};
    double deadline = ev_time() + SCHED_STARTUP_WAIT_S;
    for (;;) {
        if (s->rqs == NULL) {
            s->rqs = osp_rqs_connect(&ro, &err);
            if (s->rqs == NULL) {
                osp_warn("redis unavailable: %s", err.msg);
            }
        }
        if (s->rqs != NULL && sched_pg(s) != NULL) {
            break;
        }
        if (ev_time() > deadline) {
            osp_error("giving up: redis or postgresql unreachable for %.0f s",
                      SCHED_STARTUP_WAIT_S);
            return -1;
        }
        struct timespec pause = {0, 500 * 1000 * 1000};
        nanosleep(&pause, NULL);
        s->pg_retry_at = 0;
    }
    s->rq = osp_rq_new(s->loop, &ro, &err);
    if (s->rq == NULL) {
        osp_error("redis: %s", err.msg);
        return -1;
    }
    osp_rq_set_state_cb(s->rq, on_rq_state, s);
    if (sched_schedules_seed(s, &err) != 0) {
        osp_error("%s: %s", s->set.schedules_file, err.msg);
        return -1;
    }
    return 0;
}

static void replica_name(struct sched *s)
{
    char host[64] = "unknown";
    if (gethostname(host, sizeof(host) - 1) != 0) {
        snprintf(host, sizeof(host), "unknown");
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(s->replica, sizeof(s->replica), "%s-%ld", host, (long)getpid());
}

int main(int argc, char **argv)
{
    bool print_config = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("opspool-scheduler %s\n", OSP_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--print-config") == 0) {
            print_config = true;
            continue;
        }
        fprintf(stderr, "opspool-scheduler: unknown argument %s\n", argv[i]);
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    struct osp_config cfg;
    struct osp_err err = {0, ""};
    if (osp_config_load(&cfg, OSP_CFG_SCHEDULER, &err) != 0) {
        fprintf(stderr, "opspool-scheduler: %s\n", err.msg);
        return 2;
    }
    if (print_config) {
        osp_config_print(&cfg, OSP_CFG_SCHEDULER, stdout);
        for (size_t i = 0; i < OSP_ARRAY_LEN(extra_settings); i++) {
            const char *v = getenv(extra_settings[i].name);
            printf("%s=%s\n", extra_settings[i].name, v ? v : extra_settings[i].dflt);
        }
        osp_config_deinit(&cfg);
        return 0;
    }
    int rc = 1;
    struct sched *s = osp_xcalloc(1, sizeof(*s));
    s->cfg = &cfg;
    if (osp_log_init("scheduler", cfg.log_level) != 0 || settings_load(&s->set, &cfg) != 0 ||
        test_clock_init() != 0) {
        rc = 2;
        goto out;
    }
    replica_name(s);
    if (cfg.api_tokens_file[0] == '\0') {
        if (!s->set.api_insecure) {
            osp_error("no API tokens: set OSP_API_TOKENS_FILE (or OSP_API_INSECURE=1 for "
                      "development)");
            rc = 2;
            goto out;
        }
        osp_warn("OSP_API_INSECURE=1: the API accepts requests without a token");
    } else if (sched_tokens_load(s, &err) != 0) {
        osp_error("%s", err.msg);
        rc = 2;
        goto out;
    }
    if (osp_targets_load(&s->targets, cfg.targets_file, &err) != 0) {
        osp_error("targets: %s", err.msg);
        rc = 2;
        goto out;
    }
    s->have_targets = cfg.targets_file[0] != '\0';
    osp_env_keys_from(&s->keys, cfg.signing_key, cfg.signing_key_old, cfg.allow_unsigned);

    s->loop = EV_DEFAULT;
    ev_set_userdata(s->loop, s);
    sched_metrics_init(s);
    if (sched_notify_start(s, &err) != 0) { /* a bad endpoints file: refuse before connecting */
        osp_error("%s", err.msg);
        rc = 2;
        goto out;
    }
    if (connect_all(s) != 0) {
        goto out;
    }
    struct osp_http_opts ho = {cfg.http_addr, s->set.api_max_body, 0, 0};
    s->http = osp_http_new(s->loop, &ho, &err);
    if (s->http == NULL) {
        osp_error("%s", err.msg);
        goto out;
    }
    if (osp_http_write_port_file(cfg.http_port_file, osp_http_port(s->http), &err) != 0) {
        osp_error("%s", err.msg);
        goto out;
    }
    api_submitter_start(s);
    sched_api_routes(s);
    sched_console_routes(s);
    sched_promoter_start(s);
    sched_reaper_start(s);
    sched_cronfire_start(s);
    sched_reconciler_start(s);
    sched_retention_start(s);
    sched_campaigns_start(s);
    sched_gauges_start(s);

    ev_signal_init(&s->sigterm, on_stop, SIGTERM);
    ev_signal_init(&s->sigint, on_stop, SIGINT);
    ev_signal_init(&s->sighup, on_hup, SIGHUP);
    ev_signal_start(s->loop, &s->sigterm);
    ev_signal_start(s->loop, &s->sigint);
    ev_signal_start(s->loop, &s->sighup);
    osp_info("listening on %s (port %u), replica %s", ho.addr, osp_http_port(s->http), s->replica);
    ev_run(s->loop, 0);
    rc = 0;
out:
    api_submitter_stop(s);
    sched_notify_stop(s);
    osp_http_free(s->http);
    sched_console_free(s);
    json_decref(s->jobs_counted);
    osp_rq_free(s->rq);
    osp_rqs_free(s->rqs);
    osp_pgs_free(s->pg);
    osp_metrics_free(s->metrics);
    if (s->targets.root != NULL) {
        osp_targets_deinit(&s->targets);
    }
    free(s->recov);
    free(s);
    osp_config_deinit(&cfg);
    return rc;
}
