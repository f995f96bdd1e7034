/* SPDX-License-Identifier: MIT */
/* reaper.c — every second hand back the jobs of dead workers (heartbeat older than the lease)
 * and drop expired leases of vanished workers (osp_rq_reap). Each envelope is moved by a
 * script that first LREMs it from the dead worker's list, so concurrent reapers on several
 * replicas (and workers running duties) never move one item twice. A job that killed its
 * worker more than OSP_MAX_RECOVERIES times is dead-lettered instead. */
#include "common/log.h"
#include "scheduler/sched.h"

#define REAP_PERIOD_S 1.0

static void reap_done(struct osp_rq *rq, int status, int64_t n, void *arg)
{
    (void)rq;
    struct sched *s = arg;
    s->reaper.in_flight = false;
    if (status == OSP_ECANCELED) {
        return;
    }
    sched_duty_observe(s, "reaper", s->reaper.started_ns);
    if (status != 0) {
        osp_metric_add(s->m_redis_err, NULL, 1);
        osp_warn("reaper: %s", osp_rq_last_error(s->rq));
        return;
    }
    if (n > 0) {
        osp_metric_add(s->m_reaped, NULL, (double)n);
        osp_info("reaper: %lld job(s) of dead workers handed back", (long long)n);
    }
}

static void reaper_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sched_duty *d = osp_container_of(w, struct sched_duty, timer);
    struct sched *s = d->s;
    if (d->in_flight || !osp_rq_is_ready(s->rq)) {
        return;
    }
    d->started_ns = osp_mono_ns();
    if (osp_rq_reap(s->rq, s->cfg->lease_ms, s->cfg->max_recoveries, reap_done, s) == 0) {
        d->in_flight = true;
    } else {
        osp_metric_add(s->m_redis_err, NULL, 1);
    }
}

void sched_reaper_start(struct sched *s)
{
    sched_duty_start(s, &s->reaper, REAP_PERIOD_S, reaper_cb);
}
