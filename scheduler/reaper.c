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
    struct sched_duty *d = arg;
    if (sched_script_duty_done(d, "reaper", status, n, d->s->m_reaped)) {
        osp_info("reaper: %lld job(s) of dead workers handed back", (long long)n);
    }
}

static void reaper_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sched_duty *d = osp_container_of(w, struct sched_duty, timer);
    const struct osp_config *cfg = d->s->cfg;
    if (!sched_script_duty_begin(d)) {
        return;
    }
    if (osp_rq_reap(d->s->rq, cfg->lease_ms, cfg->max_recoveries, reap_done, d) == 0) {
        d->in_flight = true;
    } else {
        osp_metric_add(d->s->m_redis_err, NULL, 1);
    }
}

void sched_reaper_start(struct sched *s)
{
    sched_duty_start(s, &s->reaper, REAP_PERIOD_S, reaper_cb);
}
