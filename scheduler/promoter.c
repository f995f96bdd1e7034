/* SPDX-License-Identifier: MIT */
/* promoter.c — every 250 ms move due delayed jobs (retries with backoff, run_at) from
 * P:delayed to their queues. The move is one Lua script per round (osp_rq_promote), so any
 * number of replicas may promote concurrently: an entry is moved by exactly one of them. */
#include "common/log.h"
#include "scheduler/sched.h"

#define PROMOTE_PERIOD_S 0.25
#define PROMOTE_MAX      500 /* entries per round; a full round re-runs on the next tick */

static void promote_done(struct osp_rq *rq, int status, int64_t n, void *arg)
{
    (void)rq;
    struct sched_duty *d = arg;
    if (sched_script_duty_done(d, "promoter", status, n, d->s->m_promoted)) {
        osp_debug("promoter: %lld delayed job(s) due", (long long)n);
    }
}

static void promoter_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sched_duty *d = osp_container_of(w, struct sched_duty, timer);
    if (!sched_script_duty_begin(d)) {
        return;
    }
    if (osp_rq_promote(d->s->rq, osp_now_ms(), PROMOTE_MAX, promote_done, d) == 0) {
        d->in_flight = true;
    } else {
        osp_metric_add(d->s->m_redis_err, NULL, 1);
    }
}

void sched_promoter_start(struct sched *s)
{
    sched_duty_start(s, &s->promoter, PROMOTE_PERIOD_S, promoter_cb);
}
