/* SPDX-License-Identifier: MIT */
/* campaigns.c — the campaign duty: every second, bring every unfinished campaign forward
 * (common/ops.h osp_op_campaigns_advance_all): steps whose job ended are recorded, the next
 * ones submitted or skipped, finished campaigns closed. All state is in the ledger and every
 * transition is conditional, so any number of replicas may run it, and a replica restarted
 * mid-round simply continues (docs/campaigns.md). */
#include "common/log.h"
#include "common/ops.h"
#include "scheduler/sched.h"

#define CAMPAIGN_PERIOD_S 1.0
#define CAMPAIGN_ROUND    100 /* campaigns advanced per round */

static void campaigns_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sched_duty *d = osp_container_of(w, struct sched_duty, timer);
    struct sched *s = d->s;
    if (d->in_flight) {
        return;
    }
    struct osp_pgs *pg = sched_pg(s);
    if (pg == NULL) {
        return;
    }
    d->in_flight = true;
    int64_t t0 = osp_mono_ns();
    struct osp_ops o = sched_ops(s, pg, "scheduler", "campaigns");
    struct osp_submit_policy pol = sched_policy(s);
    struct osp_err err = {0, ""};
    int finished = 0;
    int rc = osp_op_campaigns_advance_all(&o, &pol, CAMPAIGN_ROUND, &finished, &err);
    if (rc == OSP_EPG) {
        sched_pg_failed(s, &err);
    } else if (rc == OSP_EREDIS) {
        sched_redis_failed(s, &err);
    }
    if (rc != 0) {
        osp_warn("campaigns: %s (next round retries)", err.msg);
    } else if (finished > 0) {
        osp_info("campaigns: %d finished", finished);
    }
    sched_duty_observe(s, "campaigns", t0);
    d->in_flight = false;
}

void sched_campaigns_start(struct sched *s)
{
    sched_duty_start(s, &s->campaigns, CAMPAIGN_PERIOD_S, campaigns_cb);
}
