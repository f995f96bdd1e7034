/* SPDX-License-Identifier: MIT */
/* flush.c — batched writes, once per loop iteration (our beforeSleep: an ev_prepare watcher).
 *
 * Two stages, each with at most one request in flight:
 *   ledger: starts of forked jobs, streamed events, outcomes (attempt rows, job state, typed
 *           result rows) -> one osp_ledger_commit;
 *   redis:  starts (lease ZADD) and outcomes (ack / retry / dead / requeue) -> one osp_rq_apply.
 * A slot's Redis outcome is only queued after its ledger outcome committed, which is the
 * ledger rule "acknowledged in Redis only after its result is committed". On a store error the
 * stage keeps everything pending and retries after a capped backoff; the heartbeat keeps the
 * leases alive meanwhile, so a PostgreSQL outage delays acks but loses nothing. */
#include "common/alloc.h"
#include "common/log.h"
#include "worker/worker.h"

#include <stdlib.h>
#include <string.h>

#define RQ_BATCH_MAX 1024

static void flush_pg(struct wrk *w);
static void flush_rq(struct wrk *w);

static void startq_push(struct start_q *q, const struct start_rec *r)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 64;
        q->v = osp_xrealloc(q->v, q->cap * sizeof(*q->v));
    }
    q->v[q->n++] = *r;
}

/* Drop the first `sent` records (they were written). */
static void startq_done(struct start_q *q)
{
    if (q->sent == 0) {
        return;
    }
    memmove(q->v, q->v + q->sent, (q->n - q->sent) * sizeof(*q->v));
    q->n -= q->sent;
    q->sent = 0;
}

void wrk_start_add(struct wrk *w, struct slot *s)
{
    struct start_rec r = {.attempt = s->job.attempt, .at_ms = s->started_ms, .slot = s->index};
    memcpy(r.id, s->job.id, sizeof(r.id));
    memcpy(r.kind, s->kind, sizeof(r.kind));
    startq_push(&w->pg_starts, &r);
    startq_push(&w->rq_starts, &r);
}

void wrk_recoveries_add(struct wrk *w, const struct osp_rq_recovery *recs, size_t n)
{
    if (n == 0) {
        return;
    }
    if (w->nrecov + n > w->caprecov) {
        w->caprecov = (w->nrecov + n) * 2;
        w->recov = osp_xrealloc(w->recov, w->caprecov * sizeof(*w->recov));
    }
    memcpy(w->recov + w->nrecov, recs, n * sizeof(*recs));
    w->nrecov += n;
    wrk_flush_now(w);
}

static void schedule_retry(struct wrk *w, const char *what, const char *why)
{
    w->flush_backoff_ms = w->flush_backoff_ms ? w->flush_backoff_ms * 2 : 100;
    if (w->flush_backoff_ms > 5000) {
        w->flush_backoff_ms = 5000;
    }
    osp_warn("%s failed (%s); retrying in %d ms, outcomes are held until then", what, why,
             w->flush_backoff_ms);
    if (!ev_is_active(&w->retry_w)) {
        ev_timer_set(&w->retry_w, w->flush_backoff_ms / 1000.0, 0.);
        ev_timer_start(w->loop, &w->retry_w);
    }
}

static bool retry_pending(const struct wrk *w)
{
    return ev_is_active(&w->retry_w);
}

/* ---- Ledger stage ---- */

static void add_events(struct osp_lbatch *b, struct slot *s)
{
    size_t n = json_array_size(s->report.events);
    for (size_t i = s->events_committed; i < n; i++) {
        const json_t *ev = json_array_get(s->report.events, i);
        osp_lbatch_event(b, s->job.id, s->job.attempt,
                         (int64_t)json_integer_value(json_object_get(ev, "ts")),
                         json_string_value(json_object_get(ev, "type")),
                         json_object_get(ev, "data"));
    }
    s->events_sent = n;
}

static const char *outcome_name(enum slot_end e)
{
    switch (e) {
    case END_SUCCEEDED: return "succeeded";
    case END_FAILED: return "failed";
    case END_VERDICT: return "failed";
    case END_TIMEOUT: return "timeout";
    case END_CRASHED: return "crashed";
    case END_CANCELLED: return "cancelled";
    case END_REJECTED: return "rejected";
    default: return "handed_back";
    }
}

static void add_outcome(struct wrk *w, struct osp_lbatch *b, struct slot *s)
{
    add_events(b, s);
    if (s->end == END_HANDBACK) {
        /* Not an attempt outcome: the attempt runs again from the start elsewhere. The run is
         * a row all the same ('interrupted'); a hand-back is no crash and is not counted
         * against OSP_MAX_RECOVERIES. */
        char why[160];
        snprintf(why, sizeof(why), "handed back: worker %.100s was draining", w->id);
        osp_lbatch_interrupted(b, s->job.id, w->id, why, 0, false, s->started_ms, s->finished_ms);
        return;
    }
    size_t nrows = json_array_size(s->report.rows);
    /* Every attempt's typed rows, whatever its end: a failed verdict and an interrupted run
     * are results too (a drill's row says which). */
    for (size_t i = 0; i < nrows; i++) {
        const json_t *r = json_array_get(s->report.rows, i);
        json_t *row = json_deep_copy(json_object_get(r, "row"));
        json_object_set_new(row, "job_id", json_string(s->job.id));
        json_object_set_new(row, "attempt", json_integer(s->job.attempt));
        osp_lbatch_typed(b, json_string_value(json_object_get(r, "table")), row);
        json_decref(row);
    }
    osp_lbatch_finish(b, s->job.id, s->job.attempt, w->id, outcome_name(s->end), s->next_state,
                      s->report.result, s->end_error, s->started_ms, s->finished_ms, s->due_ms);
}

static bool id_in(const json_t *ids, const char *id)
{
    size_t i;
    const json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (strcmp(json_string_value(v), id) == 0) {
            return true;
        }
    }
    return false;
}

/* A start or outcome whose job has no ledger row changed nothing: the row was lost (a submit
 * answered, then lost with a PostgreSQL crash or failover). Re-create it from the envelope
 * first, then send the start, the events and the outcome again; never ack meanwhile. */
static void mark_missing(struct wrk *w, const json_t *missing)
{
    for (int i = 0; i < w->nslots; i++) {
        struct slot *s = &w->slots[i];
        if (s->state == SLOT_IDLE || !s->decoded || !id_in(missing, s->job.id)) {
            continue;
        }
        if (!s->restore) {
            osp_warn("the ledger has no row for job %s (%s, attempt %u); re-creating it from "
                     "its envelope",
                     s->job.id, s->kind, s->job.attempt);
        }
        s->restore = true;
        s->events_committed = 0;
        if (s->pg_inflight) {
            s->pg_inflight = false; /* the outcome stays pending: written again after */
        }
    }
    for (size_t i = 0; i < w->pg_starts.sent; i++) {
        if (id_in(missing, w->pg_starts.v[i].id)) {
            struct start_rec again = w->pg_starts.v[i]; /* a copy: the push may move v */
            startq_push(&w->pg_starts, &again);        /* sent again, after the restore */
        }
    }
}

static void on_commit(struct osp_ledger *l, int status, void *arg)
{
    struct wrk *w = arg;
    w->commit_inflight = false;
    const json_t *missing = status == 0 ? osp_ledger_missing(l) : NULL;
    if (missing != NULL) {
        mark_missing(w, missing);
    }
    for (int i = 0; i < w->nslots; i++) {
        struct slot *s = &w->slots[i];
        if (status == 0 && w->restores_inflight && s->restore && s->pg_inflight) {
            s->restore = false; /* its row is back */
            s->pg_inflight = false;
            w->rows_restored++;
            continue;
        }
        if (status == 0) {
            s->events_committed = s->events_sent;
        } else {
            s->events_sent = s->events_committed;
        }
        if (!s->pg_inflight) {
            continue;
        }
        s->pg_inflight = false;
        if (status == 0) {
            s->pg_pending = false;
            s->rq_pending = true;
            s->state = SLOT_ACKING;
        }
    }
    w->restores_inflight = false;
    if (status == 0) {
        startq_done(&w->pg_starts);
        if (w->sentrecov > 0) {
            w->recoveries_recorded += w->sentrecov;
            memmove(w->recov, w->recov + w->sentrecov,
                    (w->nrecov - w->sentrecov) * sizeof(*w->recov));
            w->nrecov -= w->sentrecov;
            w->sentrecov = 0;
        }
        w->flush_backoff_ms = 0;
        wrk_flush_now(w);
    } else {
        w->pg_starts.sent = 0;
        w->sentrecov = 0;
        if (status != OSP_ECANCELED) {
            schedule_retry(w, "ledger commit", osp_ledger_last_error(w->ledger));
        }
    }
}

/* Commit w->lbatch; when not connected nothing was taken: undo the marks (on_commit with an
 * error) and wait for the reconnect. */
static void send_batch(struct wrk *w)
{
    if (osp_ledger_commit(w->ledger, w->lbatch, on_commit, w) != 0) {
        osp_lbatch_free(w->lbatch);
        w->lbatch = osp_lbatch_new();
        on_commit(w->ledger, OSP_EPG, w);
        return;
    }
    w->commit_inflight = true;
}

static void flush_pg(struct wrk *w)
{
    if (w->commit_inflight || !osp_ledger_is_ready(w->ledger)) {
        return;
    }
    struct osp_lbatch *b = w->lbatch;
    size_t max = (size_t)w->cfg->pg_batch_max;
    /* Rows to re-create go alone, before the starts and outcomes that need them. */
    for (int i = 0; i < w->nslots; i++) {
        struct slot *s = &w->slots[i];
        if (s->restore && s->decoded && s->state != SLOT_IDLE) {
            osp_lbatch_restore(b, &s->job,
                               "a worker ran this job but the ledger had no row for it (lost "
                               "with a PostgreSQL crash or failover after the submit was "
                               "answered); re-created from its envelope");
            s->pg_inflight = true;
            w->restores_inflight = true;
        }
    }
    if (w->restores_inflight) {
        send_batch(w);
        return;
    }
    /* Recoveries go alone, before anything else: the re-run of a recovered job may already
     * be starting here, and its start must find the lost run's row (ledger.h). */
    for (size_t i = 0; i < w->nrecov && osp_lbatch_count(b) < max; i++) {
        const struct osp_rq_recovery *r = &w->recov[i];
        osp_lbatch_interrupted(b, r->id, r->worker, r->reason, r->recoveries, r->dead, 0, r->at_ms);
        w->sentrecov = i + 1;
    }
    for (size_t i = 0; w->sentrecov == 0 && i < w->pg_starts.n && osp_lbatch_count(b) < max; i++) {
        const struct start_rec *r = &w->pg_starts.v[i];
        osp_lbatch_start(b, r->id, r->attempt, w->id, r->at_ms);
        w->pg_starts.sent = i + 1;
    }
    for (int i = 0; w->sentrecov == 0 && i < w->nslots && osp_lbatch_count(b) < max; i++) {
        struct slot *s = &w->slots[i];
        if (s->pg_pending && !s->pg_inflight) {
            add_outcome(w, b, s);
            s->pg_inflight = true;
        } else if (s->state == SLOT_RUNNING && s->decoded && !s->untrusted &&
                   json_array_size(s->report.events) > s->events_committed) {
            add_events(b, s); /* stream a long job's timeline as it happens */
        }
    }
    if (osp_lbatch_count(b) > 0) {
        send_batch(w);
    }
}

/* ---- Redis stage ---- */

struct apply_ctx {
    struct wrk *w;
    size_t nstarts;
    int slots[RQ_BATCH_MAX]; /* slot index of each outcome op, in op order after the starts */
    size_t nslots;
};

static void on_apply(struct osp_rq *rq, int status, const int64_t *res, size_t n, void *arg)
{
    (void)rq;
    struct apply_ctx *ac = arg;
    struct wrk *w = ac->w;
    w->apply_inflight = false;
    if (status != 0) {
        for (size_t i = 0; i < ac->nslots; i++) {
            w->slots[ac->slots[i]].rq_inflight = false;
        }
        w->rq_starts.sent = 0;
        if (status != OSP_ECANCELED) {
            schedule_retry(w, "redis apply", osp_rq_last_error(w->rq));
        }
        free(ac);
        return;
    }
    OSP_ASSERT(n == ac->nstarts + ac->nslots);
    for (size_t i = 0; i < ac->nstarts; i++) {
        const struct start_rec *r = &w->rq_starts.v[i];
        struct slot *s = &w->slots[r->slot];
        if (s->state != SLOT_RUNNING || strcmp(s->job.id, r->id) != 0) {
            continue; /* already finished: its outcome op follows in order */
        }
        if (res[i] == 2) {
            slot_request_cancel(s);
        } else if (res[i] == 0) {
            slot_request_lost(s);
        }
    }
    startq_done(&w->rq_starts);
    for (size_t i = 0; i < ac->nslots; i++) {
        struct slot *s = &w->slots[ac->slots[i]];
        if (res[ac->nstarts + i] == 0) {
            OSP_LOG_JOB(OSP_LOG_WARN, s->job.id, s->kind,
                        "outcome recorded, but the envelope was no longer held by this worker "
                        "(reaped meanwhile); another delivery may run it again");
        }
        s->rq_inflight = false;
        s->rq_pending = false;
        wrk_slot_idle(w, s);
    }
    w->flush_backoff_ms = 0;
    free(ac);
    wrk_flush_now(w);
}

static void add_rq_outcome(struct wrk *w, struct slot *s)
{
    const struct osp_config *cfg = w->cfg;
    const char *id = s->untrusted ? "" : s->job.id;
    switch (s->end) {
    case END_SUCCEEDED:
    case END_VERDICT:
    case END_CANCELLED:
        osp_rq_op_ack(w->ops, s->kind, id, s->env.data, s->env.len, s->next_state, cfg->job_ttl_s);
        return;
    case END_HANDBACK:
        osp_rq_op_requeue(w->ops, s->kind, id, s->env.data, s->env.len);
        return;
    default:
        break;
    }
    if (strcmp(s->next_state, "retrying") == 0) {
        osp_rq_op_retry(w->ops, s->kind, id, s->env.data, s->env.len, s->new_env.data,
                        s->new_env.len, s->due_ms);
        return;
    }
    struct osp_buf rec = OSP_BUF_INIT;
    char reason[600];
    snprintf(reason, sizeof(reason), "%s%s%s",
             s->end == END_REJECTED ? "" : "attempts exhausted: ",
             s->end_error ? s->end_error : outcome_name(s->end), "");
    osp_dead_encode(reason, s->finished_ms, id, s->env.data, s->env.len, &rec);
    osp_rq_op_dead(w->ops, s->kind, id, s->env.data, s->env.len, rec.data, rec.len, cfg->job_ttl_s);
    osp_buf_deinit(&rec);
}

/* True when slot i still has a start record not yet sent to Redis: its outcome must wait, or
 * the lease entry would be written after the ack and linger. */
static bool start_unsent(const struct wrk *w, int i)
{
    for (size_t k = w->rq_starts.sent; k < w->rq_starts.n; k++) {
        if (w->rq_starts.v[k].slot == i) {
            return true;
        }
    }
    return false;
}

static void flush_rq(struct wrk *w)
{
    if (w->apply_inflight || !osp_rq_is_ready(w->rq)) {
        return;
    }
    osp_rq_ops_clear(w->ops);
    struct apply_ctx *ac = osp_xcalloc(1, sizeof(*ac));
    ac->w = w;
    int64_t deadline = osp_now_ms() + w->cfg->lease_ms;
    for (size_t i = 0; i < w->rq_starts.n && i < RQ_BATCH_MAX / 2; i++) {
        const struct start_rec *r = &w->rq_starts.v[i];
        const struct slot *s = &w->slots[r->slot];
        osp_rq_op_start(w->ops, r->kind, r->id, r->attempt, s->env.data, s->env.len, deadline);
        w->rq_starts.sent = ++ac->nstarts;
    }
    for (int i = 0; i < w->nslots && ac->nslots < RQ_BATCH_MAX / 2; i++) {
        struct slot *s = &w->slots[i];
        if (s->rq_pending && !s->rq_inflight && !start_unsent(w, i)) {
            add_rq_outcome(w, s);
            s->rq_inflight = true;
            ac->slots[ac->nslots++] = i;
        }
    }
    if (osp_rq_ops_count(w->ops) == 0) {
        free(ac);
        return;
    }
    if (osp_rq_apply(w->rq, w->ops, on_apply, ac) != 0) {
        on_apply(w->rq, OSP_EREDIS, NULL, 0, ac);
        return;
    }
    w->apply_inflight = true;
}

void wrk_flush_now(struct wrk *w)
{
    if (retry_pending(w)) {
        return;
    }
    flush_pg(w);
    flush_rq(w);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *p, int revents)
{
    (void)loop;
    (void)revents;
    struct wrk *w = osp_container_of(p, struct wrk, flush_w);
    wrk_flush_now(w);
    wrk_fetch_pump(w);
}

static void on_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct wrk *w = osp_container_of(t, struct wrk, retry_w);
    wrk_flush_now(w);
}

void wrk_flush_init(struct wrk *w)
{
    w->lbatch = osp_lbatch_new();
    w->ops = osp_rq_ops_new();
    ev_prepare_init(&w->flush_w, on_prepare);
    ev_prepare_start(w->loop, &w->flush_w);
    ev_timer_init(&w->retry_w, on_retry, 0., 0.);
}
