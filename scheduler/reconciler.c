/* SPDX-License-Identifier: MIT */
/* reconciler.c — PostgreSQL is the truth, Redis the transport (DESIGN.md §3). Two duties:
 *
 * Reconciler (OSP_RECONCILE_PERIOD_S, 30 s): after Redis lost data (restart without persistence,
 * failover, a flushed prefix) the ledger still lists jobs as queued, delayed, running or retrying.
 * For each such job untouched for OSP_RECONCILE_GRACE_S whose live hash P:job:<id> is gone, rebuild
 * the envelope from the ledger row and enqueue it again, recording a "reconciled" event; a job
 * Redis holds as final (succeeded, failed, dead, cancelled) while the ledger does not takes Redis's
 * state (the ledger lost the outcome after the ack). Each round sweeps every unfinished row, a page
 * of RECONCILE_PAGE after another (one pipelined look at Redis per page), then waits a period. The
 * hash exists for every job Redis holds (enqueue creates it, only finished jobs' hashes expire), so
 * its absence means Redis forgot the job. The grace period covers the instant between a submitter's
 * ledger insert and its enqueue. Rows are scanned in id order in pages, resuming where the previous
 * round stopped. Replicas may reconcile concurrently: at worst a job is enqueued twice, which the
 * pool already tolerates (at-least-once; ledger writes idempotent on (job, attempt)).
 *
 * Retention (60 s): delete finished jobs (succeeded, failed, dead, cancelled) older than
 * OSP_LEDGER_RETENTION_DAYS, with their attempts (ON DELETE CASCADE) and events (no foreign
 * key: deleted in the same statement), in batches
 * of RETAIN_BATCH (FOR UPDATE SKIP LOCKED: replicas take disjoint batches), and cron firing
 * records and audit rows older than the same age. Typed result tables are kept: they are the
 * history that benchmarks and backups are plotted from. */
#include "common/alloc.h"
#include "common/jobstate.h"
#include "common/log.h"
#include "scheduler/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECONCILE_PAGE           5000 /* rows per look; pages follow each other until the table ends */
#define RECONCILE_NEXT_S         0.02 /* between pages: the loop serves the API in between */
#define RECONCILE_URGENT_GRACE_S 5    /* the grace of the sweep that follows a Redis loss */
#define EPOCH_PERIOD_S           1.0  /* how often P:epoch is checked */
#define RETAIN_PERIOD_S          60.0
#define RETAIN_FIRST_S           5.0 /* first round soon after start */
#define RETAIN_BATCH             500
#define RETAIN_ROUNDS            10 /* batches per round at most */

int sched_job_from_row(const json_t *row, struct osp_job *j, struct osp_err *err)
{
    const char *state = json_string_value(json_object_get(row, "state"));
    if (state == NULL) {
        return osp_err_set(err, OSP_EPROTO, "ledger row without a state");
    }
    int rc = osp_ledger_job_from_row(row, j, err);
    if (rc != 0) {
        return rc;
    }
    /* A running job was lost mid-attempt: deliver that attempt again (as the reaper does). */
    uint32_t attempt = j->attempt;
    j->attempt = strcmp(state, "running") == 0 && attempt > 0 ? attempt : attempt + 1;
    if (j->max_attempts < j->attempt) {
        j->max_attempts = j->attempt;
    }
    return 0;
}

/* One page of unfinished ledger rows against Redis, both ways, in one pipelined look:
 *  - Redis holds no job hash: it forgot the job. Rebuild the envelope from the row and
 *    enqueue it again ('reconciled' event, reason "missing in redis").
 *  - Redis says the job is final, the ledger does not: the ledger lost the outcome after the
 *    ack (a PostgreSQL crash with synchronous_commit off, a failover). The state Redis
 *    recorded becomes the ledger's, with a 'reconciled' event saying so; the result itself is
 *    gone, and the error says that too.
 * Returns how many rows were repaired, or <0. */
static int reconcile_rows(struct sched *s, json_t *rows)
{
    size_t nrows = json_array_size(rows);
    if (nrows == 0) {
        return 0;
    }
    const char **ids = osp_xcalloc(nrows, sizeof(*ids));
    char(*states)[OSP_RQ_STATE_MAX] = osp_xcalloc(nrows, sizeof(*states));
    struct osp_rq_ops *ops = osp_rq_ops_new();
    struct osp_lbatch *b = osp_lbatch_new();
    json_t *finals = json_array(); /* [[id, state, reason]] for the ledger */
    struct osp_err err = {0, ""};
    int64_t now = osp_now_ms();
    int n = 0, enq = 0;
    for (size_t i = 0; i < nrows; i++) {
        const char *id = json_string_value(json_object_get(json_array_get(rows, i), "id"));
        ids[i] = id ? id : "";
    }
    int64_t t_look = osp_mono_ns();
    if (osp_rqs_job_states(s->rqs, ids, nrows, states, &err) != 0) {
        sched_redis_failed(s, &err);
        osp_warn("reconciler: %s", err.msg);
        n = OSP_EREDIS;
        goto out;
    }
    int64_t t_looked = osp_mono_ns();
    for (size_t i = 0; i < nrows; i++) {
        json_t *row = json_array_get(rows, i);
        const char *lstate = json_string_value(json_object_get(row, "state"));
        if (states[i][0] != '\0') {
            if (osp_job_state_name_is_final(states[i])) {
                char reason[160];
                snprintf(reason, sizeof(reason),
                         "the ledger lost this job's outcome; redis recorded it as %s", states[i]);
                json_array_append_new(finals, json_pack("[s,s,s]", ids[i], states[i], reason));
                json_t *data = json_pack("{s:s?,s:s,s:s}", "previous_state", lstate, "redis_state",
                                         states[i], "reason", reason);
                osp_lbatch_event(b, ids[i], 0, now, "reconciled", data);
                json_decref(data);
                n++;
            }
            continue;
        }
        struct osp_job j;
        osp_job_init(&j);
        struct osp_buf env = OSP_BUF_INIT;
        if (sched_job_from_row(row, &j, &err) == 0 &&
            osp_env_encode(&j, &s->keys, &env, &err) == 0) {
            osp_rq_op_enqueue(ops, j.kind, j.id, env.data, env.len, j.run_at);
            json_t *data =
                json_pack("{s:s?,s:s}", "previous_state", lstate, "reason", "missing in redis");
            osp_lbatch_event(b, j.id, j.attempt, now, "reconciled", data);
            json_decref(data);
            /* Per job at debug level: the ledger event is the record; the round logs a total. */
            OSP_LOG_JOB(OSP_LOG_DEBUG, j.id, j.kind,
                        "reconciled: %s in the ledger, missing in redis", lstate ? lstate : "?");
            n++;
            enq++;
        } else {
            osp_warn("reconciler: cannot rebuild job %s: %s", ids[i], err.msg);
        }
        osp_buf_deinit(&env);
        osp_job_deinit(&j);
    }
    int64_t t_build = osp_mono_ns();
    if (enq > 0 && osp_rqs_apply(s->rqs, ops, NULL, &err) != 0) {
        sched_redis_failed(s, &err);
        osp_warn("reconciler: enqueue failed: %s", err.msg);
        n = OSP_EREDIS;
        goto out;
    }
    int64_t t_enq = osp_mono_ns();
    /* Events first: the ledger keeps no event for a job once it is final. */
    if (n > 0) {
        struct osp_pgs *pg = sched_pg(s);
        if (pg == NULL || osp_pgs_commit(pg, b, &err) != 0) {
            sched_pg_failed(s, &err);
            osp_warn("reconciler: events not recorded: %s", err.msg);
        }
    }
    if (json_array_size(finals) > 0) {
        struct osp_pgs *pg = sched_pg(s);
        if (pg == NULL || osp_ledger_reconcile_finals(pg, finals, &err) != 0) {
            if (pg != NULL) {
                sched_pg_failed(s, &err);
            }
            osp_warn("reconciler: final states not recorded: %s",
                     pg != NULL ? err.msg : "postgresql unavailable");
        }
    }
    osp_debug("reconciler: page of %zu rows: redis look %.1f ms, rebuild %.1f ms, enqueue %.1f "
              "ms, ledger %.1f ms",
              nrows, (double)(t_looked - t_look) / 1e6, (double)(t_build - t_looked) / 1e6,
              (double)(t_enq - t_build) / 1e6, (double)(osp_mono_ns() - t_enq) / 1e6);
out:
    json_decref(finals);
    osp_lbatch_free(b);
    osp_rq_ops_free(ops);
    free(states);
    free(ids);
    return n;
}

int sched_reconcile_once(struct sched *s, int max)
{
    /* After a loss the grace only needs to cover a submit between its insert and its push. */
    int g = s->reconcile_urgent && s->set.reconcile_grace_s > RECONCILE_URGENT_GRACE_S
                ? RECONCILE_URGENT_GRACE_S
                : s->set.reconcile_grace_s;
    struct osp_err err = {0, ""};
    int64_t t0 = osp_mono_ns();
    struct osp_pgs *pg = sched_pg(s);
    json_t *rows = NULL;
    if (pg == NULL) {
        osp_err_set(&err, OSP_EPG, "postgresql unavailable");
    } else {
        rows = osp_ledger_reconcile_page(pg, g, s->reconcile_cursor, max, &err);
        if (rows == NULL) {
            sched_pg_failed(s, &err);
        }
    }
    if (rows == NULL) {
        osp_warn("reconciler: %s", err.msg);
        return OSP_EPG;
    }
    size_t got = json_array_size(rows);
    osp_debug("reconciler: %zu ledger rows read in %.1f ms", got,
              (double)(osp_mono_ns() - t0) / 1e6);
    if (got < (size_t)max) {
        s->reconcile_cursor[0] = '\0'; /* end of the table: next round starts over */
        s->reconcile_urgent = false;
    } else {
        const char *last = json_string_value(json_object_get(json_array_get(rows, got - 1), "id"));
        snprintf(s->reconcile_cursor, sizeof(s->reconcile_cursor), "%s", last ? last : "");
    }
    int n = reconcile_rows(s, rows);
    json_decref(rows);
    if (n > 0) {
        osp_metric_add(s->m_reconciled, NULL, n);
    }
    return n;
}

static void reconciler_cb(struct ev_loop *loop, ev_timer *w, int revents)
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
    int n = sched_reconcile_once(s, RECONCILE_PAGE);
    if (n > 0) {
        osp_warn("reconciler: %d unfinished job(s) repaired (missing in redis, or final in "
                 "redis only)",
                 n);
    }
    sched_duty_observe(s, "reconciler", t0);
    d->in_flight = false;
    /* Mid-table: the next page at once, so a sweep of every unfinished row takes as long as
     * the stores need, not a period per page; at the end, wait for the next period. */
    double period = s->set.reconcile_period_s;
    ev_timer_stop(s->loop, &d->timer);
    ev_timer_set(&d->timer, s->reconcile_cursor[0] != '\0' && n >= 0 ? RECONCILE_NEXT_S : period,
                 period);
    ev_timer_start(s->loop, &d->timer);
}

/* Every second: does Redis still hold the pool's keys? P:epoch is set once and lives as long
 * as Redis keeps its data; when it changed or had to be created, Redis lost everything (an
 * empty restart, a failover to an empty replica, a flush). Then the reconciler sweeps the
 * ledger at once, from the start, with a short grace — not at its next period. */
static void epoch_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sched_duty *d = osp_container_of(w, struct sched_duty, timer);
    struct sched *s = d->s;
    char ep[OSP_ID_LEN + 1];
    bool created = false;
    struct osp_err err = {0, ""};
    if (osp_rqs_epoch(s->rqs, ep, &created, &err) != 0) {
        sched_redis_failed(s, &err);
        return;
    }
    bool lost = created || (s->redis_epoch[0] != '\0' && strcmp(s->redis_epoch, ep) != 0);
    memcpy(s->redis_epoch, ep, sizeof(s->redis_epoch));
    if (!lost) {
        return;
    }
    osp_warn("redis has a new epoch (%s): it lost the pool's keys, or this is its first use; "
             "sweeping the ledger now",
             ep);
    s->reconcile_urgent = true;
    s->reconcile_cursor[0] = '\0';
    struct sched_duty *r = &s->reconciler;
    ev_timer_stop(s->loop, &r->timer);
    ev_timer_set(&r->timer, 0.0, s->set.reconcile_period_s);
    ev_timer_start(s->loop, &r->timer);
}

void sched_reconciler_start(struct sched *s)
{
    double period = s->set.reconcile_period_s;
    sched_duty_start(s, &s->reconciler, period, reconciler_cb);
    /* The first pass soon after start: a restarted replica often means Redis restarted too. */
    ev_timer_stop(s->loop, &s->reconciler.timer);
    ev_timer_set(&s->reconciler.timer, period < 2.0 ? period : 2.0, period);
    ev_timer_start(s->loop, &s->reconciler.timer);
    sched_duty_start(s, &s->epoch, EPOCH_PERIOD_S, epoch_cb);
}

/* ---- Retention ---- */

static void retention_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sched_duty *d = osp_container_of(w, struct sched_duty, timer);
    struct sched *s = d->s;
    if (d->in_flight || s->set.retention_days <= 0) {
        return;
    }
    d->in_flight = true;
    int64_t t0 = osp_mono_ns();
    struct osp_err err = {0, ""};
    size_t total = 0;
    int nn = 0; /* notification events pruned */
    struct osp_pgs *pg = sched_pg(s);
    for (int round = 0; pg != NULL && round < RETAIN_ROUNDS; round++) {
        int64_t n = 0;
        if (osp_ledger_retain_jobs(pg, s->set.retention_days, RETAIN_BATCH, &n, &err) != 0) {
            sched_pg_failed(s, &err);
            osp_warn("retention: %s", err.msg);
            pg = NULL;
            break;
        }
        total += (size_t)n;
        if (n < RETAIN_BATCH) {
            break;
        }
    }
    if (pg != NULL &&
        (osp_ledger_retain_firings(pg, s->set.retention_days, RETAIN_BATCH, &err) != 0 ||
         osp_ledger_retain_audit(pg, s->set.retention_days, RETAIN_BATCH, &err) != 0 ||
         osp_ledger_retain_campaigns(pg, s->set.retention_days, RETAIN_BATCH, &err) != 0 ||
         osp_ledger_retain_notify(pg, s->set.retention_days, RETAIN_BATCH, &nn, &err) != 0)) {
        sched_pg_failed(s, &err);
    }
    if (total > 0) {
        osp_metric_add(s->m_pruned, NULL, (double)total);
        osp_info("retention: pruned %zu finished job(s) older than %d days", total,
                 s->set.retention_days);
    }
    sched_duty_observe(s, "retention", t0);
    d->in_flight = false;
}

void sched_retention_start(struct sched *s)
{
    sched_duty_start(s, &s->retention, RETAIN_PERIOD_S, retention_cb);
    ev_timer_stop(s->loop, &s->retention.timer);
    ev_timer_set(&s->retention.timer, RETAIN_FIRST_S, RETAIN_PERIOD_S);
    ev_timer_start(s->loop, &s->retention.timer);
}
