/* SPDX-License-Identifier: MIT */
/* beat.c — the worker's periodic duties and its lifecycle: heartbeat (worker lease), lease
 * renewal of running jobs (which is also how an operator's cancel reaches a running job),
 * the promoter and reaper duties (shared with the scheduler; safe concurrently), and the
 * SIGTERM drain: stop fetching, let running jobs finish until the deadline, then stop them
 * and hand them back to the queue, unregister, leave the loop. */
#include "common/alloc.h"
#include "common/log.h"
#include "worker/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HARD_STOP_EXTRA_S 15.0 /* after the drain deadline, give stores this long, then exit */

void wrk_slot_idle(struct wrk *w, struct slot *s)
{
    OSP_ASSERT(s->state != SLOT_IDLE);
    s->state = SLOT_IDLE;
    w->busy--;
    wrk_podcost_note(w);
    w->jobs_done++;
    slot_reset(s);
    if (w->once && !w->draining) {
        wrk_drain_begin(w, "--once: the job is done");
    }
    wrk_maybe_finish(w);
}

/* ---- Heartbeat ---- */

static void on_beat_done(struct osp_rq *rq, int status, int64_t n, void *arg)
{
    (void)rq;
    (void)n;
    struct wrk *w = arg;
    w->beat_inflight = false;
    if (status == 0) {
        w->last_beat_ok_ms = osp_now_ms();
    }
}

void wrk_send_beat(struct wrk *w)
{
    if (w->beat_inflight || !osp_rq_is_ready(w->rq)) {
        return;
    }
    char pid[24], slots[24], busy[24], started[32], lease[24];
    snprintf(lease, sizeof(lease), "%d", w->cfg->lease_ms);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    snprintf(slots, sizeof(slots), "%d", w->nslots);
    snprintf(busy, sizeof(busy), "%d", w->busy);
    snprintf(started, sizeof(started), "%lld", (long long)w->started_at_ms);
    const char *fields[] = {"host", w->host, "pid", pid, "kinds", w->cfg->worker_kinds,
                            "slots", slots, "busy", busy, "version", OSP_VERSION,
                            "started", started, "lease_ms", lease, "state", w->draining ? "draining" : "running",
                            NULL};
    if (osp_rq_heartbeat(w->rq, fields, on_beat_done, w) == 0) {
        w->beat_inflight = true;
    }
}

static void on_beat(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct wrk *w = osp_container_of(t, struct wrk, beat_w);
    wrk_send_beat(w);
    wrk_fetch_pump(w); /* re-check paused kinds */
}

/* ---- Lease renewal and cancel requests ---- */

struct renew_ctx {
    struct wrk *w;
    size_t n;
    int slot[];
};

static void on_renew_done(struct osp_rq *rq, int status, const int64_t *res, size_t n, void *arg)
{
    (void)rq;
    struct renew_ctx *rc = arg;
    struct wrk *w = rc->w;
    w->renew_inflight = false;
    for (size_t i = 0; status == 0 && i < n && i < rc->n; i++) {
        struct slot *s = &w->slots[rc->slot[i]];
        if (s->state != SLOT_RUNNING) {
            continue;
        }
        if (res[i] == 2) {
            slot_request_cancel(s);
        } else if (res[i] == 0) {
            slot_request_lost(s);
        }
    }
    free(rc);
}

static bool start_pending(const struct wrk *w, int i)
{
    for (size_t k = 0; k < w->rq_starts.n; k++) {
        if (w->rq_starts.v[k].slot == i) {
            return true;
        }
    }
    return false;
}

static void on_renew(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct wrk *w = osp_container_of(t, struct wrk, renew_w);
    if (w->renew_inflight || !osp_rq_is_ready(w->rq) || w->busy == 0) {
        return;
    }
    struct osp_rq_ops *ops = osp_rq_ops_new();
    struct renew_ctx *rc = osp_xcalloc(1, sizeof(*rc) + (size_t)w->nslots * sizeof(int));
    rc->w = w;
    int64_t deadline = osp_now_ms() + w->cfg->lease_ms;
    for (int i = 0; i < w->nslots; i++) {
        struct slot *s = &w->slots[i];
        if (s->state == SLOT_RUNNING && s->pid > 0 && !start_pending(w, i)) {
            osp_rq_op_renew(ops, s->kind, s->job.id, deadline);
            rc->slot[rc->n++] = i;
        }
    }
    if (rc->n > 0 && osp_rq_apply(w->rq, ops, on_renew_done, rc) == 0) {
        w->renew_inflight = true;
    } else {
        free(rc);
    }
    osp_rq_ops_free(ops);
}

/* ---- Duties ---- */

static void on_promoted(struct osp_rq *rq, int status, int64_t n, void *arg)
{
    (void)rq;
    struct wrk *w = arg;
    w->promote_inflight = false;
    if (status == 0 && n > 0) {
        osp_debug("promoted %lld delayed jobs", (long long)n);
    }
}

static void on_promote(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct wrk *w = osp_container_of(t, struct wrk, promote_w);
    if (!w->promote_inflight && osp_rq_is_ready(w->rq) &&
        osp_rq_promote(w->rq, osp_now_ms(), 1000, on_promoted, w) == 0) {
        w->promote_inflight = true;
    }
}

static void on_reaped(struct osp_rq *rq, int status, const struct osp_rq_recovery *recs,
                      size_t n, void *arg)
{
    (void)rq;
    (void)status;
    struct wrk *w = arg;
    w->reap_inflight = false;
    if (n > 0) {
        osp_warn("reaper: recovered %zu jobs from dead workers", n);
        wrk_recoveries_add(w, recs, n);
    }
}

static void on_reap(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct wrk *w = osp_container_of(t, struct wrk, reap_w);
    if (!w->reap_inflight && osp_rq_is_ready(w->rq) &&
        osp_rq_reap(w->rq, w->cfg->lease_ms, w->cfg->max_recoveries, on_reaped, w) == 0) {
        w->reap_inflight = true;
    }
}

/* ---- Drain and exit ---- */

static void stop_all(struct wrk *w)
{
    ev_timer_stop(w->loop, &w->beat_w);
    ev_timer_stop(w->loop, &w->renew_w);
    ev_timer_stop(w->loop, &w->promote_w);
    ev_timer_stop(w->loop, &w->reap_w);
    ev_timer_stop(w->loop, &w->drain_w);
    ev_timer_stop(w->loop, &w->retry_w);
    ev_prepare_stop(w->loop, &w->flush_w);
    ev_signal_stop(w->loop, &w->sigterm_w);
    ev_signal_stop(w->loop, &w->sigint_w);
    wrk_podcost_stop(w);
    ev_break(w->loop, EVBREAK_ALL);
}

static void on_unregistered(struct osp_rq *rq, int status, int64_t n, void *arg)
{
    (void)rq;
    struct wrk *w = arg;
    if (status != 0 || n != 1) {
        osp_warn("could not unregister cleanly (%s); the reaper will tidy up after the lease",
                 status != 0 ? osp_rq_last_error(w->rq) : "jobs still held");
    }
    stop_all(w);
}

static bool quiet(const struct wrk *w)
{
    return w->busy == 0 && !w->fetch_inflight && !w->wait_inflight && !w->commit_inflight &&
           !w->apply_inflight && w->pg_starts.n == 0 && w->rq_starts.n == 0;
}

void wrk_maybe_finish(struct wrk *w)
{
    if (!w->draining || !quiet(w) || !ev_is_active(&w->drain_w)) {
        return;
    }
    ev_timer_stop(w->loop, &w->drain_w);
    osp_info("drained: %llu succeeded, %llu failed, %llu handed back; exiting",
             (unsigned long long)w->n_succeeded, (unsigned long long)w->n_failed,
             (unsigned long long)w->n_handback);
    if (osp_rq_unregister(w->rq, on_unregistered, w) != 0) {
        on_unregistered(w->rq, OSP_EREDIS, 0, w);
    }
}

static void on_drain_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct wrk *w = osp_container_of(t, struct wrk, drain_w);
    if (!w->drain_deadline_passed) {
        w->drain_deadline_passed = true;
        if (w->busy > 0) {
            osp_warn("drain deadline passed with %d jobs running; stopping them and handing them "
                     "back to the queue", w->busy);
        }
        for (int i = 0; i < w->nslots; i++) {
            slot_request_handback(&w->slots[i]);
        }
        /* Give the children their kill grace and the stores a moment, then stop regardless:
         * whatever is still held stays in our processing list and the reaper recovers it. */
        ev_timer_set(t, HARD_STOP_EXTRA_S, 0.);
        ev_timer_start(loop, t);
        return;
    }
    osp_error("could not finish the drain (stores unreachable?); exiting with jobs held: the "
              "reaper returns them to the queue after the lease");
    w->exit_code = 1;
    stop_all(w);
}

void wrk_drain_begin(struct wrk *w, const char *why)
{
    if (w->draining) {
        return;
    }
    w->draining = true;
    osp_info("draining (%s): %d jobs running, deadline %ds", why, w->busy,
             w->cfg->drain_timeout_s);
    ev_timer_init(&w->drain_w, on_drain_deadline, (double)w->cfg->drain_timeout_s, 0.);
    ev_timer_start(w->loop, &w->drain_w);
    wrk_send_beat(w);
    wrk_maybe_finish(w);
}

static void on_signal(struct ev_loop *loop, ev_signal *sw, int revents)
{
    (void)revents;
    struct wrk *w = ev_userdata(loop);
    if (!w->draining) {
        wrk_drain_begin(w, sw->signum == SIGTERM ? "SIGTERM" : "SIGINT");
        return;
    }
    if (!w->drain_deadline_passed) {
        osp_warn("second signal: skipping the rest of the drain deadline");
        ev_timer_stop(loop, &w->drain_w);
        on_drain_deadline(loop, &w->drain_w, 0);
    }
}

void wrk_beat_start(struct wrk *w)
{
    double beat = w->cfg->lease_ms / 3000.0;
    ev_timer_init(&w->beat_w, on_beat, 0., beat);
    ev_timer_again(w->loop, &w->beat_w);
    wrk_send_beat(w);
    double renew = beat < 1.0 ? beat : 1.0;
    ev_timer_init(&w->renew_w, on_renew, 0., renew);
    ev_timer_again(w->loop, &w->renew_w);
    if (w->cfg->run_duties) {
        ev_timer_init(&w->promote_w, on_promote, 0., 0.25);
        ev_timer_again(w->loop, &w->promote_w);
        ev_timer_init(&w->reap_w, on_reap, 0., 1.0);
        ev_timer_again(w->loop, &w->reap_w);
    }
    ev_signal_init(&w->sigterm_w, on_signal, SIGTERM);
    ev_signal_start(w->loop, &w->sigterm_w);
    ev_signal_init(&w->sigint_w, on_signal, SIGINT);
    ev_signal_start(w->loop, &w->sigint_w);
}
