/* SPDX-License-Identifier: MIT */
/* http.c — the worker's own endpoints on OSP_HTTP_ADDR (off when empty):
 *   GET /metrics  Prometheus text: jobs by kind and outcome, attempt durations, busy and total
 *                 slots, draining, Redis/PostgreSQL error counters
 *   GET /healthz  200 while the loop runs (liveness: a wedged loop cannot answer)
 *   GET /readyz   200 when Redis and PostgreSQL are connected and the worker is not draining,
 *                 else 503 naming what is missing (readiness: KEDA/Kubernetes stop sending
 *                 traffic, and a draining pod reports itself not ready)
 * Metrics are updated where outcomes are decided (slot.c) and sampled here on scrape.
 * Served by common/http.h (libmicrohttpd on the worker's loop), like the scheduler's API. */
#include "common/http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "worker/worker.h"

#include <stdio.h>

static const double dur_buckets[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,  1,   5,
                                     10,    30,    60,   300,  900, 1800, 3600};

void wrk_metrics_init(struct wrk *w)
{
    static const char *const kind_outcome[] = {"kind", "outcome", NULL};
    static const char *const kind[] = {"kind", NULL};
    w->metrics = osp_metrics_new();
    w->m_jobs =
        osp_metric_counter(w->metrics, "opspool_worker_jobs_total",
                           "Attempts finished by this worker, by kind and outcome", kind_outcome);
    w->m_dur = osp_metric_histogram(w->metrics, "opspool_worker_job_duration_seconds",
                                    "Wall time of one attempt, fetch to outcome", kind, dur_buckets,
                                    OSP_ARRAY_LEN(dur_buckets));
    w->m_lease_waits = osp_metric_counter(
        w->metrics, "opspool_worker_lease_waits_total",
        "Fetched jobs whose target was leased to another job: parked until it is free", kind);
    w->m_slots = osp_metric_gauge(w->metrics, "opspool_worker_slots", "Configured slots", NULL);
    w->m_busy =
        osp_metric_gauge(w->metrics, "opspool_worker_busy_slots",
                         "Slots holding a job (running, or its outcome being recorded)", NULL);
    w->m_draining = osp_metric_gauge(w->metrics, "opspool_worker_draining",
                                     "1 while the worker drains after SIGTERM", NULL);
    w->m_redis_err = osp_metric_counter(w->metrics, "opspool_redis_errors_total",
                                        "Redis errors seen by this process", NULL);
    w->m_pg_err = osp_metric_counter(w->metrics, "opspool_pg_errors_total",
                                     "PostgreSQL errors seen by this process", NULL);
    w->m_master_changes = osp_metric_counter(
        w->metrics, "opspool_redis_master_changes_total",
        "Redis Sentinel: times this process followed the master to a new address", NULL);
    w->m_restored = osp_metric_counter(
        w->metrics, "opspool_worker_ledger_rows_restored_total",
        "Job rows the ledger had lost, re-created from the envelope of a job this worker ran",
        NULL);
    w->m_recovered = osp_metric_counter(
        w->metrics, "opspool_worker_recoveries_recorded_total",
        "Runs lost with a worker (reaper duty, or this id's previous process), recorded", NULL);
}

void wrk_metrics_outcome(struct wrk *w, const char *kind, const char *outcome, double seconds)
{
    const char *ko[] = {kind, outcome};
    osp_metric_add(w->m_jobs, ko, 1);
    const char *k[] = {kind};
    osp_metric_observe(w->m_dur, k, seconds);
}

static void sample(struct wrk *w)
{
    osp_metric_set(w->m_slots, NULL, w->nslots);
    osp_metric_set(w->m_busy, NULL, w->busy);
    osp_metric_set(w->m_draining, NULL, w->draining ? 1 : 0);
    /* The clients count errors; counters only grow, so add what is new since the last scrape. */
    uint64_t re = osp_rq_error_count(w->rq), pe = osp_ledger_error_count(w->ledger);
    osp_metric_add(w->m_redis_err, NULL, (double)(re - w->last_redis_err));
    osp_metric_add(w->m_pg_err, NULL, (double)(pe - w->last_pg_err));
    w->last_redis_err = re;
    w->last_pg_err = pe;
    uint64_t mc = osp_rq_master_changes(w->rq);
    osp_metric_add(w->m_master_changes, NULL, (double)(mc - w->last_master_changes));
    w->last_master_changes = mc;
    osp_metric_add(w->m_restored, NULL, (double)(w->rows_restored - w->last_restored));
    w->last_restored = w->rows_restored;
    osp_metric_add(w->m_recovered, NULL, (double)(w->recoveries_recorded - w->last_recovered));
    w->last_recovered = w->recoveries_recorded;
}

static void on_metrics(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    struct wrk *w = arg;
    sample(w);
    osp_metrics_render(w->metrics, &resp->body);
    resp->status = 200;
    resp->content_type = OSP_METRICS_CONTENT_TYPE;
}

static void on_healthz(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    (void)arg;
    osp_http_reply_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static void on_readyz(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    struct wrk *w = arg;
    bool redis = osp_rq_is_ready(w->rq), pg = osp_ledger_is_ready(w->ledger);
    bool ready = redis && pg && !w->draining;
    osp_http_reply_json(resp, ready ? 200 : 503,
                        json_pack("{s:s, s:b, s:b, s:b, s:i, s:i}", "status",
                                  ready ? "ready" : "not ready", "redis", redis, "postgresql", pg,
                                  "draining", w->draining, "busy", w->busy, "slots", w->nslots));
}

int wrk_http_start(struct wrk *w, struct osp_err *err)
{
    if (w->cfg->http_addr == NULL || w->cfg->http_addr[0] == '\0') {
        return 0;
    }
    /* Probes and scrapes send no bodies: a small limit, a few connections. */
    struct osp_http_opts o = {.addr = w->cfg->http_addr, .max_body = 4096, .conn_limit = 64};
    w->http = osp_http_new(w->loop, &o, err);
    if (w->http == NULL) {
        return err != NULL && err->code != 0 ? err->code : OSP_EINVAL;
    }
    struct osp_http_router *r = osp_http_router(w->http);
    osp_http_router_add(r, "GET", "/metrics", 0, on_metrics, w);
    osp_http_router_add(r, "GET", "/healthz", 0, on_healthz, w);
    osp_http_router_add(r, "GET", "/readyz", 0, on_readyz, w);
    osp_info("serving /metrics /healthz /readyz on port %u", osp_http_port(w->http));
    return osp_http_write_port_file(w->cfg->http_port_file, osp_http_port(w->http), err);
}

void wrk_http_stop(struct wrk *w)
{
    osp_http_free(w->http);
    w->http = NULL;
    osp_metrics_free(w->metrics);
    w->metrics = NULL;
}
