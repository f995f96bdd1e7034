/* SPDX-License-Identifier: MIT */
/* gauges.c — the scheduler's metrics (docs/api.md, "Metrics"): the registry, and the gauges
 * refreshed every 5 s from Redis (per-kind queue state, workers) and PostgreSQL (ledger jobs
 * by kind and state, last success and last firing per schedule). Counters are bumped where
 * things happen (api.c, duties). */
#include "common/alloc.h"
#include "common/cron.h"
#include "common/jobstate.h"
#include "common/log.h"
#include "jobs/job.h"
#include "scheduler/sched.h"

#include <stdlib.h>
#include <string.h>

#define GAUGES_PERIOD_S 5.0

void sched_metrics_init(struct sched *s)
{
    static const char *const kind[] = {"kind", NULL};
    static const char *const kind_state[] = {"kind", "state", NULL};
    static const char *const schedule[] = {"schedule", NULL};
    static const char *const schedule_status[] = {"schedule", "status", NULL};
    static const char *const cls[] = {"class", NULL};
    static const char *const duty[] = {"duty", NULL};
    static const char *const comp[] = {"component", NULL};
    static const double duty_buckets[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
    struct osp_metrics *m = osp_metrics_new();
    s->metrics = m;
    s->m_up =
        osp_metric_gauge(m, "opspool_backend_up",
                         "1 when the backend answered the last check (redis, postgres)", comp);
    s->m_http = osp_metric_counter(m, "opspool_http_requests_total",
                                   "API requests answered, by status class", cls);
    s->m_submitted = osp_metric_counter(m, "opspool_jobs_submitted_total",
                                        "jobs accepted through the API", kind);
    static const double group_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
    s->m_submit_commits = osp_metric_counter(
        m, "opspool_api_submit_transactions_total",
        "ledger transactions for API submits: one per loop iteration that received any", NULL);
    s->m_submit_group = osp_metric_histogram(m, "opspool_api_submit_group_size",
                                             "API submits committed together in one transaction",
                                             NULL, group_buckets, OSP_ARRAY_LEN(group_buckets));
    s->m_promoted = osp_metric_counter(m, "opspool_promoted_total",
                                       "delayed jobs moved to their queue by this replica", NULL);
    s->m_reaped = osp_metric_counter(m, "opspool_reaped_total",
                                     "jobs of dead workers handed back by this replica", NULL);
    s->m_reconciled = osp_metric_counter(
        m, "opspool_reconciled_total", "ledger jobs re-enqueued because Redis had lost them", NULL);
    s->m_pruned = osp_metric_counter(m, "opspool_ledger_pruned_total",
                                     "finished ledger jobs deleted by retention", NULL);
    s->m_redis_err = osp_metric_counter(m, "opspool_redis_errors_total",
                                        "failed Redis calls of this scheduler", NULL);
    s->m_pg_err = osp_metric_counter(m, "opspool_pg_errors_total",
                                     "failed PostgreSQL calls of this scheduler", NULL);
    s->m_master_changes =
        osp_metric_counter(m, "opspool_redis_master_changes_total",
                           "Redis Sentinel: times this scheduler followed the master to a new "
                           "address",
                           NULL);
    s->m_firings = osp_metric_counter(m, "opspool_schedule_firings_total",
                                      "cron ticks handled by this replica (fired, skipped, missed)",
                                      schedule_status);
    s->m_q_pending =
        osp_metric_gauge(m, "opspool_queue_pending", "jobs waiting in the queue", kind);
    s->m_q_running = osp_metric_gauge(m, "opspool_queue_running", "jobs running (leased)", kind);
    s->m_q_delayed = osp_metric_gauge(m, "opspool_queue_delayed",
                                      "jobs waiting for their run time or retry backoff", kind);
    s->m_q_dead = osp_metric_gauge(m, "opspool_queue_dead", "dead-lettered jobs", kind);
    s->m_q_waiting =
        osp_metric_gauge(m, "opspool_queue_waiting_for_target",
                         "jobs parked until their target's lease is free (ADR 0008)", kind);
    s->m_q_paused = osp_metric_gauge(m, "opspool_queue_paused", "1 when fetching is paused", kind);
    s->m_q_oldest = osp_metric_gauge(m, "opspool_queue_oldest_age_seconds",
                                     "age of the oldest pending job", kind);
    s->m_workers = osp_metric_gauge(m, "opspool_workers", "registered workers", NULL);
    s->m_jobs =
        osp_metric_gauge(m, "opspool_ledger_jobs", "ledger jobs by kind and state", kind_state);
    s->m_sched_last_success =
        osp_metric_gauge(m, "opspool_schedule_last_success_timestamp_seconds",
                         "finish time of the latest succeeded job of each schedule", schedule);
    s->m_sched_last_fire = osp_metric_gauge(m, "opspool_schedule_last_fire_timestamp_seconds",
                                            "latest tick fired or skipped per schedule", schedule);
    s->m_sched_last_missed = osp_metric_gauge(
        m, "opspool_schedule_last_missed_timestamp_seconds",
        "when a schedule's latest missed ticks were found (ledger, pool-wide), 0 if never",
        schedule);
    s->m_sched_first_fire = osp_metric_gauge(
        m, "opspool_schedule_first_fire_timestamp_seconds",
        "the schedule's first tick after it was created: alerts on a schedule's results wait "
        "for it",
        schedule);
    static const char *const series[] = {"target", "lane", NULL};
    static const char *const series_verdict[] = {"target", "lane", "verdict", NULL};
    static const char *const series_q[] = {"target", "lane", "quantile", NULL};
    s->m_bench_verdict = osp_metric_gauge(
        m, "opspool_benchmark_verdict",
        "1 for the verdict of each benchmark series' latest run against its baseline "
        "(ok, improved, regressed, no_baseline), 0 for the others; series run within 30 days",
        series_verdict);
    s->m_bench_last_run = osp_metric_gauge(m, "opspool_benchmark_last_run_timestamp_seconds",
                                           "time of each benchmark series' latest run", series);
    s->m_bench_rps = osp_metric_gauge(m, "opspool_benchmark_last_rps",
                                      "throughput of each benchmark series' latest run", series);
    s->m_bench_latency = osp_metric_gauge(
        m, "opspool_benchmark_last_latency_seconds",
        "latency percentiles (0.5, 0.99) of each benchmark series' latest run", series_q);
    s->m_duty_seconds = osp_metric_histogram(m, "opspool_duty_duration_seconds",
                                             "duration of one round of a scheduler duty", duty,
                                             duty_buckets, OSP_ARRAY_LEN(duty_buckets));
}

static void refresh_redis(struct sched *s)
{
    const struct job_kind *const *all = job_kinds_all();
    int64_t now = osp_now_ms();
    bool ok = true;
    for (size_t i = 0; all[i] != NULL && ok; i++) {
        struct osp_rq_stats st;
        struct osp_err err = {0, ""};
        if (osp_rqs_stats(s->rqs, all[i]->name, &st, &err) != 0) {
            sched_redis_failed(s, &err);
            ok = false;
            break;
        }
        const char *v[] = {all[i]->name};
        osp_metric_set(s->m_q_pending, v, (double)st.pending);
        osp_metric_set(s->m_q_running, v, (double)st.running);
        osp_metric_set(s->m_q_delayed, v, (double)st.delayed);
        osp_metric_set(s->m_q_dead, v, (double)st.dead);
        osp_metric_set(s->m_q_waiting, v, (double)st.waiting);
        osp_metric_set(s->m_q_paused, v, st.paused ? 1 : 0);
        osp_metric_set(s->m_q_oldest, v,
                       st.oldest_pending_ms > 0 && now > st.oldest_pending_ms
                           ? (double)(now - st.oldest_pending_ms) / 1000.0
                           : 0);
    }
    if (ok) {
        struct osp_err err = {0, ""};
        int64_t n = 0;
        ok = osp_rqs_worker_count(s->rqs, &n, &err) == 0;
        if (ok) {
            osp_metric_set(s->m_workers, NULL, (double)n);
        } else {
            sched_redis_failed(s, &err);
        }
    }
    const char *v[] = {"redis"};
    osp_metric_set(s->m_up, v, ok ? 1 : 0);
    if (s->rq != NULL) {
        uint64_t mc = osp_rq_master_changes(s->rq);
        osp_metric_add(s->m_master_changes, NULL, (double)(mc - s->last_master_changes));
        s->last_master_changes = mc;
    }
}

/* The latest run of every benchmark series: its verdict (one series per verdict, 1 or 0, so
 * an alert sees regressed go 0 -> 1) and its figures. */
static void refresh_bench(struct sched *s, struct osp_pgs *pg)
{
    struct osp_err err = {0, ""};
    json_t *rows = osp_ledger_bench_latest(pg, &err);
    if (rows == NULL) {
        sched_pg_failed(s, &err);
        return;
    }
    osp_metric_clear(s->m_bench_verdict);
    osp_metric_clear(s->m_bench_last_run);
    osp_metric_clear(s->m_bench_rps);
    osp_metric_clear(s->m_bench_latency);
    static const char *const verdicts[][2] = {{"ok", "ok"},
                                              {"improved", "improved"},
                                              {"regressed", "regressed"},
                                              {"no baseline yet", "no_baseline"}};
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *target = json_string_value(json_object_get(row, "target"));
        const char *lane = json_string_value(json_object_get(row, "lane"));
        const char *verdict = json_string_value(json_object_get(row, "verdict"));
        for (size_t k = 0; k < OSP_ARRAY_LEN(verdicts); k++) {
            const char *v[] = {target, lane, verdicts[k][1]};
            osp_metric_set(s->m_bench_verdict, v,
                           verdict != NULL && strcmp(verdict, verdicts[k][0]) == 0 ? 1 : 0);
        }
        const char *v[] = {target, lane};
        const char *created = json_string_value(json_object_get(row, "created"));
        osp_metric_set(s->m_bench_last_run, v, created != NULL ? strtod(created, NULL) : 0);
        const char *rps = json_string_value(json_object_get(row, "rps"));
        if (rps != NULL) {
            osp_metric_set(s->m_bench_rps, v, strtod(rps, NULL));
        }
        static const char *const qs[][2] = {{"0.5", "p50_ms"}, {"0.99", "p99_ms"}};
        for (size_t k = 0; k < OSP_ARRAY_LEN(qs); k++) {
            const char *ms = json_string_value(json_object_get(row, qs[k][1]));
            if (ms != NULL) {
                const char *vq[] = {target, lane, qs[k][0]};
                osp_metric_set(s->m_bench_latency, vq, strtod(ms, NULL) / 1000.0);
            }
        }
    }
    json_decref(rows);
}

/* Set m_jobs from rows, only for states that are final (final true) or not. */
static void set_job_counts(struct sched *s, const json_t *rows, bool final)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *v[] = {json_string_value(json_object_get(row, "kind")),
                           json_string_value(json_object_get(row, "state"))};
        if (osp_job_state_name_is_final(v[1]) == final) {
            osp_metric_set(s->m_jobs, v,
                           strtod(json_string_value(json_object_get(row, "n")), NULL));
        }
    }
}

static void refresh_pg(struct sched *s)
{
    struct osp_err err = {0, ""};
    struct osp_pgs *pg = sched_pg(s);
    /* Unfinished jobs every round, through their partial index; the finished ones (the bulk
     * of the table, a full read) every OSP_LEDGER_COUNT_PERIOD_S, kept in between. */
    int64_t now = osp_mono_ns();
    bool full = s->jobs_counted == NULL ||
                now - s->jobs_counted_ns >= (int64_t)s->set.ledger_count_period_s * 1000000000;
    json_t *rows = pg != NULL ? osp_ledger_job_counts(pg, !full, &err) : NULL;
    if (pg != NULL && rows == NULL) {
        sched_pg_failed(s, &err);
    }
    const char *up[] = {"postgres"};
    osp_metric_set(s->m_up, up, rows != NULL ? 1 : 0);
    if (rows == NULL) {
        return;
    }
    osp_metric_clear(s->m_jobs);
    /* Every kind and state, 0 when no row has it: an alert comparing with an hour ago must
     * see a series go 0 -> 1, not appear at 1 (jobstate.h's states, the built-in kinds). */
    const struct job_kind *const *all = job_kinds_all();
    for (size_t k = 0; all[k] != NULL; k++) {
        for (int st = 0; st < OSP_JOB_NSTATES; st++) {
            const char *v[] = {all[k]->name, osp_job_state_name((enum osp_job_state)st)};
            osp_metric_set(s->m_jobs, v, 0);
        }
    }
    if (full) {
        json_decref(s->jobs_counted);
        s->jobs_counted = json_incref(rows);
        s->jobs_counted_ns = now;
    }
    set_job_counts(s, rows, false);
    set_job_counts(s, s->jobs_counted, true);
    json_decref(rows);
    size_t i;
    json_t *row;
    rows = osp_ledger_schedule_times(pg, &err);
    if (rows == NULL) {
        sched_pg_failed(s, &err);
    }
    osp_metric_clear(s->m_sched_last_success);
    osp_metric_clear(s->m_sched_last_fire);
    osp_metric_clear(s->m_sched_last_missed);
    osp_metric_clear(s->m_sched_first_fire);
    json_array_foreach(rows, i, row)
    {
        const char *v[] = {json_string_value(json_object_get(row, "name"))};
        const char *ls = json_string_value(json_object_get(row, "last_success"));
        const char *lf = json_string_value(json_object_get(row, "last_fire"));
        /* A schedule that never succeeded exports 0, so "time() - x > 1d" alerts fire. */
        osp_metric_set(s->m_sched_last_success, v, ls ? strtod(ls, NULL) : 0);
        osp_metric_set(s->m_sched_last_fire, v, lf ? strtod(lf, NULL) : 0);
        const char *lm = json_string_value(json_object_get(row, "last_missed"));
        osp_metric_set(s->m_sched_last_missed, v, lm ? strtod(lm, NULL) : 0);
        /* The first tick after creation (a schedule's cron was checked when it was stored;
         * one that no longer parses exports nothing). */
        const char *cr = json_string_value(json_object_get(row, "created"));
        struct osp_cron c;
        int64_t first = 0;
        struct osp_err e2 = {0, ""};
        if (cr != NULL &&
            osp_cron_parse(&c, json_string_value(json_object_get(row, "cron")), &e2) == 0 &&
            osp_cron_next(&c, json_string_value(json_object_get(row, "timezone")),
                          strtoll(cr, NULL, 10) - 1, &first, &e2) == 0) {
            osp_metric_set(s->m_sched_first_fire, v, (double)first);
        }
    }
    json_decref(rows);
    refresh_bench(s, pg);
}

void sched_gauges_refresh(struct sched *s)
{
    refresh_redis(s);
    refresh_pg(s);
}

static void gauges_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sched_duty *d = osp_container_of(w, struct sched_duty, timer);
    if (d->in_flight) {
        return;
    }
    d->in_flight = true;
    int64_t t0 = osp_mono_ns();
    sched_gauges_refresh(d->s);
    sched_duty_observe(d->s, "gauges", t0);
    d->in_flight = false;
}

void sched_gauges_start(struct sched *s)
{
    sched_duty_start(s, &s->gauges, GAUGES_PERIOD_S, gauges_cb);
    sched_gauges_refresh(s);
}
