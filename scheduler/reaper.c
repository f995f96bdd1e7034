/* SPDX-License-Identifier: MIT */
/* reaper.c — every second hand back the jobs of dead workers (heartbeat older than the lease)
 * and drop expired leases of vanished workers (osp_rq_reap). Each envelope is moved by a
 * script that first LREMs it from the dead worker's list, so concurrent reapers on several
 * replicas (and workers running duties) never move one item twice. A job that killed its
 * worker more than OSP_MAX_RECOVERIES times is dead-lettered instead. */
#include "common/alloc.h"
#include "common/log.h"
#include "scheduler/sched.h"

#include <string.h>

#define REAP_PERIOD_S 1.0

/* Record the lost runs in the ledger (Redis moved them already): an 'interrupted' attempt
 * row each, the recovery count, and 'dead' with the reason for a job over the limit. Kept and
 * retried with the next round while PostgreSQL is unreachable; the writes are absolute, so a
 * repeat (or another replica's) changes nothing. */
static void record_recoveries(struct sched *s)
{
    if (s->nrecov == 0) {
        return;
    }
    struct osp_pgs *pg = sched_pg(s);
    if (pg == NULL) {
        return;
    }
    struct osp_lbatch *b = osp_lbatch_new();
    for (size_t i = 0; i < s->nrecov; i++) {
        const struct osp_rq_recovery *r = &s->recov[i];
        osp_lbatch_interrupted(b, r->id, r->worker, r->reason, r->recoveries, r->dead, 0,
                               r->at_ms);
    }
    struct osp_err err = {0, ""};
    if (osp_pgs_commit(pg, b, &err) == 0) {
        s->nrecov = 0;
    } else {
        sched_pg_failed(s, &err);
        osp_warn("reaper: %zu recoveries not yet in the ledger (%s); retrying", s->nrecov,
                 err.msg);
    }
    osp_lbatch_free(b);
}

static void reap_done(struct osp_rq *rq, int status, const struct osp_rq_recovery *recs,
                      size_t n, void *arg)
{
    (void)rq;
    struct sched_duty *d = arg;
    struct sched *s = d->s;
    if (n > 0) {
        if (s->nrecov + n > s->caprecov) {
            s->caprecov = (s->nrecov + n) * 2;
            s->recov = osp_xrealloc(s->recov, s->caprecov * sizeof(*s->recov));
        }
        memcpy(s->recov + s->nrecov, recs, n * sizeof(*recs));
        s->nrecov += n;
    }
    if (sched_script_duty_done(d, "reaper", status, (int64_t)n, s->m_reaped)) {
        osp_info("reaper: %zu job(s) of dead workers handed back", n);
    }
    record_recoveries(s);
}

static void reaper_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sched_duty *d = osp_container_of(w, struct sched_duty, timer);
    const struct osp_config *cfg = d->s->cfg;
    record_recoveries(d->s); /* those a PostgreSQL outage held back */
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
