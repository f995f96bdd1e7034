/* SPDX-License-Identifier: MIT */
/* cronfire.c — cron schedules: validation, seeding from OSP_SCHEDULES_FILE, and firing.
 *
 * Every second each replica reads the enabled schedules and, per schedule, finds the latest
 * tick T with  max(last_fire_at, created_at, now - allowance) < T <= now,  where allowance is
 * max(catchup_s, CRON_MIN_SLACK_S). Older ticks are never replayed: after an outage only the
 * latest missed tick runs, and only if it is within the allowance (a "catch-up"). Firing T:
 *   1. SET NX P:cron:<name>:<T> (cheap filter: one replica proceeds, the others stop here);
 *   2. INSERT the (schedule, T) row of opspool.schedule_firings: the primary key is the real
 *      guarantee (it survives Redis loss). With concurrency "forbid" and an unfinished job of
 *      the schedule, the row is written as 'skipped' (reason "previous still running");
 *   3. submit the job (ledger first) with idempotency key "schedule:<name>:<T>", so even a
 *      repeated attempt cannot create a second job for the tick;
 *   4. mark the row 'fired' with the job id and advance schedules.last_fire_at.
 * A replica that dies between 2 and 4 leaves a 'firing' row; after 30 s another replica may
 * re-claim it (still within the allowance) and step 3's idempotency key makes that safe. */
#include "common/alloc.h"
#include "common/cron.h"
#include "common/log.h"
#include "common/ops.h"
#include "common/submit.h"
#include "jobs/job.h"
#include "scheduler/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRON_PERIOD_S    1.0
#define CRON_MIN_SLACK_S 60 /* a tick may fire this late even with catchup_s = 0 */

/* ---- The schedules file ---- */

int sched_schedules_seed(struct sched *s, struct osp_err *err)
{
    const char *path = s->set.schedules_file;
    if (path == NULL || path[0] == '\0') {
        return 0;
    }
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        return osp_err_set(err, OSP_EINVAL, "line %d: %s", je.line, je.text);
    }
    json_t *list = json_object_get(root, "schedules");
    int rc = 0;
    if (!json_is_array(list) || json_object_size(root) != 1) {
        rc = osp_err_set(err, OSP_EINVAL, "expected {\"schedules\": [...]}");
    }
    /* The schedules file is the operator's own configuration, applied at every start: the
     * same checks as the API's, no audit row (no actor). */
    struct osp_ops o = sched_ops(s, NULL, NULL, "schedules-file");
    struct osp_submit_policy pol = sched_policy(s);
    o.pg = rc == 0 ? sched_pg(s) : NULL;
    if (rc == 0 && o.pg == NULL) {
        rc = osp_err_set(err, OSP_EPG, "postgresql unavailable");
    }
    size_t i;
    json_t *sch;
    size_t nc = 0, nu = 0;
    json_array_foreach(list, i, sch)
    {
        if (rc != 0) {
            break;
        }
        bool created = false;
        const char *code = NULL;
        struct osp_err e = {0, ""};
        rc = osp_op_schedule_put(&o, &pol, sch, &created, &code, &e);
        if (rc != 0) {
            const char *name = json_string_value(json_object_get(sch, "name"));
            osp_err_set(err, rc, "schedule %zu (%.64s): %s", i, name ? name : "?", e.msg);
        } else if (created) {
            nc++;
        } else {
            nu++;
        }
    }
    json_decref(root);
    if (rc == 0) {
        osp_info("schedules from %s: %zu created, %zu updated", path, nc, nu);
    }
    return rc;
}

/* ---- Firing ---- */

static void count_firing(struct sched *s, const char *name, const char *status)
{
    const char *v[] = {name, status};
    osp_metric_add(s->m_firings, v, 1);
}

/* Step 4 (and the 'skipped' bookkeeping): record the outcome and advance last_fire_at. */
static void record(struct sched *s, const char *name, int64_t tick, int64_t next,
                   const char *status, const char *job_id, const char *reason)
{
    struct osp_err err = {0, ""};
    struct osp_pgs *pg = sched_pg(s);
    if (pg == NULL ||
        osp_ledger_cron_record(pg, name, tick, next, status, job_id, reason, &err) != 0) {
        if (pg != NULL) {
            sched_pg_failed(s, &err);
        }
        osp_error("schedule %s: recording tick %lld failed: %s", name, (long long)tick,
                  pg != NULL ? err.msg : "postgresql unavailable");
        return;
    }
    const char *v[] = {name};
    osp_metric_set(s->m_sched_last_fire, v, (double)tick);
}

/* first_missed: the earliest tick after the last fired one that never fired (0: none). */
static void fire(struct sched *s, const json_t *row, const struct osp_cron *c, const char *tz,
                 int64_t tick, int64_t first_missed)
{
    bool missed_before = first_missed > 0;
    const char *name = json_string_value(json_object_get(row, "name"));
    const char *conc = json_string_value(json_object_get(row, "concurrency"));
    long catchup = strtol(json_string_value(json_object_get(row, "catchup_s")), NULL, 10);
    struct osp_err err = {0, ""};
    int64_t next = 0;
    if (osp_cron_next(c, tz, tick, &next, &err) != 0) {
        next = 0;
    }
    /* 1. Redis guard. */
    bool won = false;
    if (osp_rqs_cron_claim(s->rqs, name, tick, s->replica,
                           (catchup > CRON_MIN_SLACK_S ? catchup : CRON_MIN_SLACK_S) + 3600, &won,
                           &err) != 0) {
        sched_redis_failed(s, &err);
        return;
    }
    if (!won) {
        return;
    }
    /* 2. Claim the tick in the ledger. */
    char ts[24];
    snprintf(ts, sizeof(ts), "%lld", (long long)tick);
    char status_buf[16] = "";
    struct osp_pgs *pg = sched_pg(s);
    int crc = pg != NULL ? osp_ledger_cron_claim(pg, name, tick, conc, s->replica, status_buf, &err)
                         : osp_err_set(&err, OSP_EPG, "postgresql unavailable");
    if (crc != 0) {
        if (pg != NULL) {
            sched_pg_failed(s, &err);
        }
        osp_warn("schedule %s: cannot claim tick %s: %s", name, ts, err.msg);
        goto release;
    }
    const char *status = status_buf[0] != '\0' ? status_buf : NULL;
    if (status == NULL) {
        goto done; /* another replica owns this tick */
    }
    if (strcmp(status, "skipped") == 0) {
        osp_info("schedule %s: tick %s skipped: previous still running", name, ts);
        record(s, name, tick, next, "skipped", NULL, NULL);
        count_firing(s, name, "skipped");
        goto done;
    }
    /* 3. Submit, ledger first, idempotent per tick: the same checks and the same submit as
     * every front end's (common/ops.h), so a schedule fires only what a user could submit (a
     * job, or a campaign when its kind is "campaign"). */
    const char *kind = json_string_value(json_object_get(row, "kind"));
    json_t *payload = json_loads(json_string_value(json_object_get(row, "payload")), 0, NULL);
    char *idem = osp_xasprintf("schedule:%s:%lld", name, (long long)tick);
    struct osp_ops o = sched_ops(s, pg, "scheduler", "cron");
    struct osp_submit_policy pol = sched_policy(s);
    const char *what = NULL;
    char id[OSP_ID_LEN + 1];
    bool dup = false;
    int rc = osp_op_schedule_submit(&o, &pol, name, kind, payload, idem, "scheduler", id, &dup,
                                    &what, &err);
    json_decref(payload);
    free(idem);
    if (rc == OSP_ETOOBIG) {
        rc = OSP_EINVAL; /* the stored definition no longer passes (a target removed...) */
    }
    if (rc == OSP_EPG) {
        sched_pg_failed(s, &err);
        osp_error("schedule %s: tick %s not submitted (retried within 30 s): %s", name, ts,
                  err.msg);
        goto release;
    }
    if (rc == OSP_EINVAL) {
        osp_error("schedule %s: tick %s: job rejected: %s", name, ts, err.msg);
        record(s, name, tick, next, "skipped", NULL, err.msg);
        count_firing(s, name, "skipped");
        goto done;
    }
    if (rc == OSP_EREDIS) {
        sched_redis_failed(s, &err);
        OSP_LOG_JOB(OSP_LOG_WARN, id, kind, "schedule %s: in the ledger, not yet enqueued: %s",
                    name, err.msg);
    }
    /* 4. Done. */
    record(s, name, tick, next, "fired", id,
           missed_before ? "caught up: earlier ticks were missed and are not replayed" : NULL);
    count_firing(s, name, "fired");
    if (missed_before) {
        count_firing(s, name, "missed");
        /* Recorded in the ledger too: the pool-wide opspool_schedule_last_missed gauge (and
         * its alert) must not depend on which replica saw it, or on a counter series that
         * only appears at its first increment. */
        struct osp_pgs *mpg = sched_pg(s);
        if (mpg == NULL || osp_ledger_cron_missed(mpg, name, first_missed, s->replica, &err) != 0) {
            if (mpg != NULL) {
                sched_pg_failed(s, &err);
            }
            osp_warn("schedule %s: recording the missed ticks failed: %s", name,
                     mpg != NULL ? err.msg : "postgresql unavailable");
        }
    }
    OSP_LOG_JOB(OSP_LOG_INFO, id, kind, "schedule %s fired for tick %s%s", name, ts,
                dup ? " (already submitted)" : "");
    goto done;
release : {
    /* Let the next round (this replica or another) try the tick again. */
    if (osp_rqs_cron_release(s->rqs, name, tick, &err) != 0) {
        sched_redis_failed(s, &err);
    }
}
done:
    return;
}

static int64_t row_int(const json_t *row, const char *name, int64_t dflt)
{
    const char *v = json_string_value(json_object_get(row, name));
    return v ? strtoll(v, NULL, 10) : dflt;
}

static void consider(struct sched *s, const json_t *row, int64_t now_s)
{
    const char *name = json_string_value(json_object_get(row, "name"));
    const char *expr = json_string_value(json_object_get(row, "cron"));
    const char *tz = json_string_value(json_object_get(row, "timezone"));
    struct osp_cron c;
    struct osp_err err = {0, ""};
    if (name == NULL || osp_cron_parse(&c, expr, &err) != 0) {
        return; /* validated on write; a row edited by hand is skipped */
    }
    int64_t catchup = row_int(row, "catchup_s", 0);
    int64_t allowance = catchup > CRON_MIN_SLACK_S ? catchup : CRON_MIN_SLACK_S;
    int64_t last = row_int(row, "last_fire", 0);
    int64_t lo = now_s - allowance - 1;
    int64_t created = row_int(row, "created", 0);
    if (last > lo) {
        lo = last;
    }
    if (created - 1 > lo) {
        lo = created - 1;
    }
    int64_t t = 0, n = 0;
    if (osp_cron_next(&c, tz, lo, &t, &err) != 0 || t > now_s) {
        return;
    }
    while (osp_cron_next(&c, tz, t, &n, &err) == 0 && n <= now_s) {
        t = n;
    }
    /* Was a tick between last_fire_at and the window skipped for good? */
    int64_t first_missed = 0;
    if (last > 0 && osp_cron_next(&c, tz, last, &n, &err) == 0 && n < t) {
        first_missed = n;
    }
    fire(s, row, &c, tz, t, first_missed);
}

static void cronfire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sched_duty *d = osp_container_of(w, struct sched_duty, timer);
    struct sched *s = d->s;
    if (d->in_flight) {
        return;
    }
    d->in_flight = true;
    int64_t t0 = osp_mono_ns();
    struct osp_err err = {0, ""};
    struct osp_pgs *pg = sched_pg(s);
    json_t *rows = pg != NULL ? osp_ledger_cron_enabled(pg, &err) : NULL;
    if (pg != NULL && rows == NULL) {
        sched_pg_failed(s, &err);
    }
    int64_t now_s = osp_now_ms() / 1000;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        consider(s, row, now_s);
    }
    json_decref(rows);
    sched_duty_observe(s, "cronfire", t0);
    d->in_flight = false;
}

void sched_cronfire_start(struct sched *s)
{
    sched_duty_start(s, &s->cronfire, CRON_PERIOD_S, cronfire_cb);
}
