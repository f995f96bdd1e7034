/* SPDX-License-Identifier: MIT */
/* ops.c — the control plane's operations, once for every front end. Contract: common/ops.h.
 *
 * Order. The ledger first, then Redis: a cancel is final once the ledger says so, and the
 * Redis flag that keeps workers away follows; a retry makes the row queued, then one script
 * removes the dead record and pushes the envelope. A failure between the two steps leaves the
 * ledger ahead of Redis, never behind: repeating the operation finishes it (a cancelled job
 * is flagged again; a queued row whose Redis hash still says dead or cancelled is an earlier
 * retry that stopped half-way and is accepted as such). */
#include "common/ops.h"
#include "common/alloc.h"
#include "common/base.h"
#include "common/buf.h"
#include "common/cron.h"
#include "common/id.h"
#include "common/jobstate.h"
#include "common/submit.h"
#include "jobs/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define OPS_DEAD_CHUNK  500   /* dead records read per LRANGE */
#define OPS_BULK_BATCH  5000  /* jobs cancelled per ledger statement (and per flag script) */
#define OPS_SWEEP_STEP  10000 /* envelopes looked at per purge.lua call */
#define OPS_FLAG_TRIES  5     /* a bulk batch's flags are retried this often on Redis errors */
#define OPS_CANCEL_SCAN 1000  /* a single cancel looks this far into each end for its envelope */

static const char *row_str(const json_t *row, const char *f)
{
    return json_string_value(json_object_get(row, f));
}

static int64_t row_int(const json_t *row, const char *f, int64_t dflt)
{
    const char *v = row_str(row, f);
    if (v == NULL || v[0] == '\0') {
        return dflt;
    }
    return strtoll(v, NULL, 10);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- submit ---- */

static int text_ok(const char *name, const char *v, bool may_be_empty, struct osp_err *err)
{
    if (v == NULL) {
        return 0;
    }
    size_t n = strlen(v);
    if (n == 0 && !may_be_empty) {
        return osp_err_set(err, OSP_EINVAL, "%s: must not be empty (leave it out instead)", name);
    }
    if (n > OSP_SUBMIT_TEXT_MAX) {
        return osp_err_set(err, OSP_EINVAL, "%s: at most %d bytes", name, OSP_SUBMIT_TEXT_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
            return osp_err_set(err, OSP_EINVAL, "%s: control characters are not allowed", name);
        }
    }
    return 0;
}

static void set_text(char **dst, const char *v)
{
    if (v != NULL) {
        free(*dst);
        *dst = osp_xstrdup(v);
    }
}

int osp_op_submit_check(const struct osp_ops *o, const struct osp_submit_policy *pol,
                        const struct osp_submit_req *req, struct osp_job *j, const char **what,
                        struct osp_err *err)
{
    *what = "invalid_request";
    if (req->kind == NULL || !osp_kind_name_is_valid(req->kind)) {
        return osp_err_set(err, OSP_EINVAL, "kind: must match [a-z0-9_-]{1,32}");
    }
    const struct job_kind *k = job_kind_find(req->kind);
    if (k == NULL) {
        *what = "unknown_kind";
        char names[256];
        size_t len = 0;
        const struct job_kind *const *all = job_kinds_all();
        names[0] = '\0';
        for (size_t i = 0; all[i] != NULL && len < sizeof(names); i++) {
            len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "",
                                    all[i]->name);
        }
        return osp_err_set(err, OSP_EINVAL, "unknown kind \"%s\" (known: %s)", req->kind, names);
    }
    if (req->payload != NULL && !json_is_object(req->payload)) {
        *what = "invalid_payload";
        return osp_err_set(err, OSP_EINVAL, "payload: must be a JSON object");
    }
    json_decref(j->payload);
    j->payload = req->payload != NULL ? json_deep_copy(req->payload) : json_object();
    int rc = k->validate(j->payload, pol->targets, err);
    if (rc != 0) {
        *what = "invalid_payload";
        return OSP_EINVAL;
    }
    snprintf(j->kind, sizeof(j->kind), "%s", k->name);
    int64_t max = req->max_attempts != 0 ? req->max_attempts : pol->default_max_attempts;
    if (max < 1 || max > OSP_SUBMIT_MAX_ATTEMPTS) {
        return osp_err_set(err, OSP_EINVAL, "max_attempts: must be an integer 1..%d",
                           OSP_SUBMIT_MAX_ATTEMPTS);
    }
    if (req->timeout_s < 0 || req->timeout_s > OSP_SUBMIT_TIMEOUT_MAX_S) {
        return osp_err_set(err, OSP_EINVAL, "timeout_s: must be an integer 0..%d",
                           OSP_SUBMIT_TIMEOUT_MAX_S);
    }
    if (!osp_time_in_range(req->run_at_ms)) {
        return osp_err_set(err, OSP_EINVAL, "run_at: out of range");
    }
    if (req->schedule != NULL && !osp_schedule_name_is_valid(req->schedule)) {
        return osp_err_set(err, OSP_EINVAL, "schedule: [A-Za-z0-9_.-]{1,%d}",
                           OSP_SCHEDULE_NAME_MAX);
    }
    if (text_ok("idempotency_key", req->idempotency_key, false, err) != 0 ||
        text_ok("submitted_by", req->submitted_by, false, err) != 0 ||
        text_ok("trace_id", req->trace_id, false, err) != 0) {
        return OSP_EINVAL;
    }
    j->max_attempts = (uint32_t)max;
    j->timeout_s = (uint32_t)req->timeout_s;
    j->run_at = req->run_at_ms > osp_now_ms() ? req->run_at_ms : 0;
    set_text(&j->idempotency_key, req->idempotency_key);
    set_text(&j->submitted_by, req->submitted_by);
    set_text(&j->trace_id, req->trace_id);
    set_text(&j->schedule, req->schedule);
    /* The envelope must fit what workers accept (the id and timestamps add a few bytes). */
    struct osp_buf env = OSP_BUF_INIT;
    char saved[OSP_ID_LEN + 1];
    memcpy(saved, j->id, sizeof(saved));
    if (j->id[0] == '\0') {
        osp_id_new(j->id);
    }
    j->enqueued_at = osp_now_ms();
    rc = osp_env_encode(j, o->keys, &env, err);
    memcpy(j->id, saved, sizeof(saved));
    if (rc != 0) {
        *what = "invalid_payload";
    } else if (env.len + 128 > o->env_max_bytes) {
        *what = "too_large";
        rc = osp_err_set(err, OSP_ETOOBIG, "encoded job is %zu bytes; the limit is %zu", env.len,
                         o->env_max_bytes);
    }
    osp_buf_deinit(&env);
    return rc;
}

int osp_op_submit(const struct osp_ops *o, struct osp_job *jobs, size_t n,
                  char (*ids)[OSP_ID_LEN + 1], bool *dup, struct osp_err *err)
{
    int rc = osp_submit(o->pg, o->rq, o->keys, jobs, n, ids, dup, err);
    if (rc == OSP_EPG) {
        /* Unanswered, the commit may still have happened: once more with the same ids (the
         * sync client reconnects), which completes it (rows first, then the envelopes) or
         * writes it. A caller retrying on its own would leave a second job behind. */
        nap_ms(100);
        rc = osp_submit(o->pg, o->rq, o->keys, jobs, n, ids, dup, err);
    }
    return rc;
}

int osp_op_job_brief(const struct osp_ops *o, const char *id, char kind[OSP_KIND_MAX + 1],
                     char state[16], struct osp_err *err)
{
    return osp_ledger_job_brief(o->pg, id, kind, state, err);
}

/* ---- cancel ---- */

int osp_op_cancel(const struct osp_ops *o, const char *id, struct osp_cancel_result *r,
                  struct osp_err *err)
{
    memset(r, 0, sizeof(*r));
    if (!osp_id_is_valid(id)) {
        return osp_err_set(err, OSP_EINVAL, "not a job id: %.64s", id);
    }
    int rc = osp_ledger_cancel(o->pg, id, &o->actor, r->prev, r->kind, err);
    if (rc != 0) {
        return rc;
    }
    enum osp_rq_cancel_mode mode = OSP_RQ_CANCEL_FINAL;
    if (strcmp(r->prev, "running") == 0) {
        r->outcome = OSP_CANCEL_REQUESTED;
        mode = OSP_RQ_CANCEL_RUNNING;
    } else if (strcmp(r->prev, "cancelled") == 0) {
        r->outcome = OSP_CANCEL_ALREADY; /* flag again: an earlier cancel may have stopped */
    } else if (osp_job_state_name_is_final(r->prev)) {
        return osp_err_set(err, OSP_ECONFLICT, "job %s already ended %s; nothing to cancel", id,
                           r->prev);
    } else {
        r->outcome = OSP_CANCEL_DONE;
    }
    const char *ids[] = {id};
    if (osp_rqs_cancel(o->rq, ids, &mode, 1, o->job_ttl_s, err) != 0) {
        char cause[sizeof(err->msg)];
        snprintf(cause, sizeof(cause), "%s", err->msg); /* err->msg is rewritten below */
        return osp_err_set(err, OSP_EREDIS,
                           "job %s: %s in the ledger, but the flag that stops workers could not "
                           "be set (%s): cancel it again once Redis answers",
                           id, r->outcome == OSP_CANCEL_REQUESTED ? "cancel recorded" : "cancelled",
                           cause);
    }
    if (mode == OSP_RQ_CANCEL_FINAL) {
        /* Best effort, bounded: so the queue's length is right at once. An envelope further in
         * is dropped by the worker's fetch; the flag is what guarantees it never runs. */
        bool dropped = false;
        struct osp_err e2 = {0};
        osp_rqs_purge_one(o->rq, r->kind, id, OPS_CANCEL_SCAN, &dropped, &e2);
    }
    return 0;
}

/* ---- retry ---- */

/* Find job id's dead record on P:dead:<kind> (newest first). 1 found (rec filled), 0 not,
 * or an error code. */
static int find_dead_record(const struct osp_ops *o, const char *kind, const char *id,
                            struct osp_buf *rec, struct osp_err *err)
{
    for (int64_t start = 0;; start += OPS_DEAD_CHUNK) {
        json_t *items = osp_rqs_dead_range(o->rq, kind, start, start + OPS_DEAD_CHUNK - 1, err);
        if (items == NULL) {
            return err->code != 0 ? err->code : OSP_EREDIS;
        }
        size_t n = json_array_size(items);
        for (size_t i = 0; i < n; i++) {
            const json_t *it = json_array_get(items, i);
            struct osp_dead d;
            memset(&d, 0, sizeof(d));
            if (osp_dead_decode(json_string_value(it), json_string_length(it), &d, NULL) == 0 &&
                strcmp(d.job_id, id) == 0) {
                osp_buf_append(rec, json_string_value(it), json_string_length(it));
                osp_dead_deinit(&d);
                json_decref(items);
                return 1;
            }
            osp_dead_deinit(&d);
        }
        json_decref(items);
        if (n < OPS_DEAD_CHUNK) {
            return 0;
        }
    }
}

/* osp_op_retry with the dead record already known (rec NULL: look it up) and the audit
 * action of the caller's intent. */
static int retry_one(const struct osp_ops *o, const char *id, const char *kind, unsigned budget,
                     const struct osp_buf *rec_in, const char *action, struct osp_retry_result *r,
                     struct osp_err *err)
{
    memset(r, 0, sizeof(*r));
    if (!osp_id_is_valid(id)) {
        return osp_err_set(err, OSP_EINVAL, "not a job id: %.64s", id);
    }
    json_t *row = osp_ledger_retry_info(o->pg, id, err);
    if (row == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    struct osp_buf rec = OSP_BUF_INIT;
    struct osp_buf env = OSP_BUF_INIT;
    struct osp_job job;
    struct osp_dead d;
    json_t *hash = NULL;
    json_t *data = NULL;
    int rc = 0;
    memset(&job, 0, sizeof(job));
    memset(&d, 0, sizeof(d));
    snprintf(r->kind, sizeof(r->kind), "%s", row_str(row, "kind"));
    snprintf(r->prev, sizeof(r->prev), "%s", row_str(row, "state"));
    if (kind != NULL && strcmp(kind, r->kind) != 0) {
        rc = osp_err_set(err, OSP_ECONFLICT, "job %s is of kind %s, not %s", id, r->kind, kind);
        goto out;
    }
    bool has_rec = false;
    if (rec_in != NULL) {
        osp_buf_append(&rec, rec_in->data, rec_in->len);
        has_rec = true;
    } else if (strcmp(r->prev, "dead") == 0 || strcmp(r->prev, "queued") == 0) {
        int f = find_dead_record(o, r->kind, id, &rec, err);
        if (f < 0) {
            rc = f;
            goto out;
        }
        has_rec = f == 1;
    }
    /* A queued row whose Redis hash still says dead or cancelled is an earlier retry that
     * stopped between its two steps: finish it. */
    bool resume = false;
    if (strcmp(r->prev, "queued") == 0) {
        struct osp_err herr = {0};
        hash = osp_rqs_job_hash(o->rq, id, &herr);
        if (hash == NULL && herr.code != 0) {
            rc = osp_err_set(err, herr.code, "%s", herr.msg);
            goto out;
        }
        const char *live = row_str(hash, "state");
        resume = has_rec ||
                 (live != NULL && (strcmp(live, "dead") == 0 || strcmp(live, "cancelled") == 0));
    }
    if (strcmp(r->prev, "dead") != 0 && strcmp(r->prev, "cancelled") != 0 && !resume) {
        rc = osp_err_set(err, OSP_ECONFLICT,
                         "job %s is %s; only dead or cancelled jobs are retried", id, r->prev);
        goto out;
    }
    /* The original envelope when it verifies; the ledger's copy otherwise. */
    bool have_env = false;
    if (has_rec && osp_dead_decode(rec.data, rec.len, &d, NULL) == 0) {
        have_env =
            osp_env_decode(d.env.data, d.env.len, o->keys, o->env_max_bytes, &job, NULL) == 0 &&
            strcmp(job.id, id) == 0;
        if (!have_env) {
            osp_job_deinit(&job);
            memset(&job, 0, sizeof(job));
        }
    }
    if (!have_env) {
        osp_job_init(&job);
        rc = osp_ledger_job_from_row(row, &job, err);
        if (rc != 0) {
            goto out;
        }
        r->rebuilt = true;
    }
    /* Attempt numbers continue after the last attempt that started: job_attempts holds a row
     * for each, and a reused number would make the new outcome look like a repeat. */
    int64_t used = row_int(row, "last_attempt", 0);
    int64_t b =
        budget > 0 ? (int64_t)budget : row_int(row, "budget", row_int(row, "max_attempts", 1));
    if (b < 1) {
        b = 1;
    }
    if (used + b > UINT32_MAX / 2) {
        rc = osp_err_set(err, OSP_EINVAL, "job %s: attempt budget out of range", id);
        goto out;
    }
    job.attempt = (uint32_t)(used + 1);
    job.max_attempts = (uint32_t)(used + b);
    job.run_at = 0;
    rc = osp_env_encode(&job, o->keys, &env, err);
    if (rc != 0) {
        goto out;
    }
    const char *from = resume ? "{dead,cancelled,queued}" : "{dead,cancelled}";
    const char *event = strcmp(r->prev, "dead") == 0 || has_rec ? "retried_from_dead" : "retried";
    data =
        json_pack("{s:s, s:s, s:i, s:i, s:I}", "by", o->actor.via, "from", r->prev, "attempt",
                  (int)job.attempt, "max_attempts", (int)job.max_attempts, "budget", (json_int_t)b);
    if (d.reason != NULL) {
        json_object_set_new(data, "dead_reason", json_string(d.reason));
    }
    bool updated = false;
    rc = osp_ledger_requeue(o->pg, id, from, job.max_attempts, event, data, &o->actor, action,
                            &updated, err);
    if (rc != 0) {
        goto out;
    }
    if (!updated) {
        rc = osp_err_set(err, OSP_ECONFLICT, "job %s changed state meanwhile; nothing done", id);
        goto out;
    }
    bool removed = true;
    rc = osp_rqs_requeue(o->rq, r->kind, id, has_rec ? rec.data : NULL, has_rec ? rec.len : 0,
                         env.data, env.len, &removed, err);
    if (rc != 0) {
        char cause[sizeof(err->msg)];
        snprintf(cause, sizeof(cause), "%s", err->msg);
        rc = osp_err_set(err, OSP_EREDIS,
                         "job %s is queued again in the ledger, but Redis failed (%s): retry it "
                         "again once Redis answers",
                         id, cause);
        goto out;
    }
    r->attempt = job.attempt;
    r->max_attempts = job.max_attempts;
    r->from_dead = has_rec;
    r->record_gone = has_rec && !removed;
out:
    json_decref(data);
    json_decref(hash);
    json_decref(row);
    osp_dead_deinit(&d);
    osp_job_deinit(&job);
    osp_buf_deinit(&rec);
    osp_buf_deinit(&env);
    return rc;
}

int osp_op_retry(const struct osp_ops *o, const char *id, const char *kind, unsigned budget,
                 struct osp_retry_result *r, struct osp_err *err)
{
    return retry_one(o, id, kind, budget, NULL, "job.retry", r, err);
}

/* ---- dead letters ---- */

static bool id_in(const json_t *ids, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (strcasecmp(json_string_value(v), id) == 0) {
            return true;
        }
    }
    return false;
}

static void report_retried(json_t *rep, const char *id, const struct osp_retry_result *r)
{
    json_array_append_new(json_object_get(rep, "retried"),
                          json_pack("{s:s, s:i, s:i}", "id", id, "attempt", (int)r->attempt,
                                    "max_attempts", (int)r->max_attempts));
}

static void report_skipped(json_t *rep, const char *id, const char *reason)
{
    json_array_append_new(json_object_get(rep, "skipped"),
                          json_pack("{s:s, s:s}", "id", id != NULL ? id : "", "reason", reason));
}

/* A store failed: stop; other errors skip this job. */
static bool store_failed(int rc)
{
    return rc == OSP_EPG || rc == OSP_EREDIS;
}

int osp_op_dead_retry(const struct osp_ops *o, const char *kind, const json_t *ids, int64_t limit,
                      unsigned budget, json_t **report, struct osp_err *err)
{
    *report = json_pack("{s:s, s:[], s:[]}", "kind", kind, "retried", "skipped");
    if (!osp_kind_name_is_valid(kind)) {
        return osp_err_set(err, OSP_EINVAL, "invalid kind");
    }
    if (ids != NULL) {
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v)
        {
            struct osp_retry_result r;
            struct osp_err e = {0};
            const char *id = json_string_value(v);
            int rc = retry_one(o, id, kind, budget, NULL, "dead.retry", &r, &e);
            if (rc == 0) {
                report_retried(*report, id, &r);
            } else if (store_failed(rc)) {
                return osp_err_set(err, rc, "%s", e.msg);
            } else {
                report_skipped(*report, id, e.msg);
            }
        }
        return 0;
    }
    /* Every record present at the start, oldest first (the right end). Retried records leave
     * the list; skipped ones stay at the right end, so the next unread record sits just left
     * of them. */
    int64_t total = 0;
    if (osp_rqs_lengths(o->rq, kind, NULL, NULL, &total, err) != 0) {
        return err->code;
    }
    int64_t seen = 0, kept = 0, done = 0;
    while (seen < total && (limit <= 0 || done < limit)) {
        int64_t want = total - seen < OPS_DEAD_CHUNK ? total - seen : OPS_DEAD_CHUNK;
        json_t *items = osp_rqs_dead_range(o->rq, kind, -(kept + want), -(kept + 1), err);
        if (items == NULL) {
            return err->code != 0 ? err->code : OSP_EREDIS;
        }
        size_t n = json_array_size(items);
        if (n == 0) {
            json_decref(items);
            break;
        }
        for (size_t k = n; k-- > 0 && (limit <= 0 || done < limit);) {
            const json_t *it = json_array_get(items, k);
            struct osp_buf rec = OSP_BUF_INIT;
            struct osp_dead d;
            struct osp_err e = {0};
            memset(&d, 0, sizeof(d));
            seen++;
            osp_buf_append(&rec, json_string_value(it), json_string_length(it));
            if (osp_dead_decode(rec.data, rec.len, &d, &e) != 0 || d.job_id[0] == '\0') {
                report_skipped(*report, NULL,
                               e.code != 0 ? e.msg
                                           : "dead record without a job id (an envelope "
                                             "that could not be decoded)");
                kept++;
            } else {
                struct osp_retry_result r;
                int rc = retry_one(o, d.job_id, kind, budget, &rec, "dead.retry", &r, &e);
                if (rc == 0) {
                    report_retried(*report, d.job_id, &r);
                    done++;
                } else if (store_failed(rc)) {
                    osp_dead_deinit(&d);
                    osp_buf_deinit(&rec);
                    json_decref(items);
                    return osp_err_set(err, rc, "%s", e.msg);
                } else {
                    report_skipped(*report, d.job_id, e.msg);
                    kept++;
                }
            }
            osp_dead_deinit(&d);
            osp_buf_deinit(&rec);
        }
        json_decref(items);
    }
    return 0;
}

int osp_op_dead_purge(const struct osp_ops *o, const char *kind, const json_t *ids, bool dry_run,
                      json_t **report, struct osp_err *err)
{
    *report = NULL;
    if (!osp_kind_name_is_valid(kind)) {
        return osp_err_set(err, OSP_EINVAL, "invalid kind");
    }
    int64_t total = 0;
    if (osp_rqs_lengths(o->rq, kind, NULL, NULL, &total, err) != 0) {
        return err->code;
    }
    json_t *purged = json_array();
    int64_t kept = 0, seen = 0, count = 0;
    int rc = 0;
    /* Oldest first, a chunk at a time: the jobs' audit events are written (the ledger first),
     * then each record is removed by its exact bytes, so a record retried or purged by
     * someone else meanwhile is never counted twice nor a newer one taken instead. */
    while (seen < total) {
        int64_t want = total - seen < OPS_DEAD_CHUNK ? total - seen : OPS_DEAD_CHUNK;
        json_t *items = osp_rqs_dead_range(o->rq, kind, -(kept + want), -(kept + 1), err);
        if (items == NULL) {
            rc = err->code != 0 ? err->code : OSP_EREDIS;
            break;
        }
        size_t n = json_array_size(items);
        if (n == 0) {
            json_decref(items);
            break;
        }
        json_t *take = json_array(); /* records to remove */
        json_t *take_ids = json_array();
        for (size_t k = n; k-- > 0;) {
            const json_t *it = json_array_get(items, k);
            struct osp_dead d;
            memset(&d, 0, sizeof(d));
            seen++;
            bool ok = osp_dead_decode(json_string_value(it), json_string_length(it), &d, NULL) == 0;
            if (ids != NULL && !(ok && id_in(ids, d.job_id))) {
                kept++;
            } else {
                json_array_append_new(
                    take, json_stringn_nocheck(json_string_value(it), json_string_length(it)));
                if (ok && d.job_id[0] != '\0') {
                    json_array_append_new(take_ids, json_string(d.job_id));
                }
            }
            osp_dead_deinit(&d);
        }
        json_decref(items);
        if (dry_run) {
            count += (int64_t)json_array_size(take);
            kept += (int64_t)json_array_size(take);
            json_array_extend(purged, take_ids);
        } else {
            json_t *data = json_pack("{s:s}", "kind", kind);
            rc = osp_ledger_audit_jobs(o->pg, take_ids, &o->actor, "dead.purge", data, err);
            json_decref(data);
            for (size_t k = 0; rc == 0 && k < json_array_size(take); k++) {
                const json_t *it = json_array_get(take, k);
                bool removed = false;
                rc = osp_rqs_dead_remove(o->rq, kind, json_string_value(it), json_string_length(it),
                                         &removed, err);
                count += removed ? 1 : 0;
            }
            if (rc == 0) {
                json_array_extend(purged, take_ids);
            }
        }
        json_decref(take);
        json_decref(take_ids);
        if (rc != 0) {
            break;
        }
    }
    if (rc == 0 && !dry_run) {
        json_t *data = json_pack("{s:I, s:O}", "purged", (json_int_t)count, "ids", purged);
        rc = osp_ledger_audit(o->pg, &o->actor, "dead.purge", kind, data, NULL, err);
        json_decref(data);
    }
    *report = json_pack("{s:s, s:I, s:o}", "kind", kind, dry_run ? "would_purge" : "purged",
                        (json_int_t)count, "ids", purged);
    return rc;
}

/* ---- pause / resume ---- */

int osp_op_pause(const struct osp_ops *o, const char *kind, bool pause, bool *changed,
                 struct osp_err *err)
{
    if (!osp_kind_name_is_valid(kind)) {
        return osp_err_set(err, OSP_EINVAL, "invalid kind");
    }
    /* Not job-scoped: the audit row goes first, so a pause that happened is never missing
     * from the trail (a failed Redis step leaves a row saying it was attempted). */
    json_t *data = json_pack("{s:b}", "requested", 1);
    int64_t aid = 0;
    int rc = osp_ledger_audit(o->pg, &o->actor, pause ? "queue.pause" : "queue.resume", kind, data,
                              &aid, err);
    json_decref(data);
    if (rc != 0) {
        return rc;
    }
    bool ch = false;
    rc = osp_rqs_pause(o->rq, kind, pause, &ch, err);
    data = json_pack("{s:b, s:b}", "done", rc == 0, "changed", ch);
    struct osp_err e2 = {0};
    osp_ledger_audit_update(o->pg, aid, data, &e2); /* the outcome; the attempt is recorded */
    json_decref(data);
    if (changed != NULL) {
        *changed = ch;
    }
    return rc;
}

/* ---- bulk cancel ---- */

unsigned osp_bulk_states_parse(const char *list)
{
    unsigned bits = 0;
    const char *p = list;
    while (p != NULL && *p != '\0') {
        const char *e = strchr(p, ',');
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        if (n == 6 && strncmp(p, "queued", 6) == 0) {
            bits |= OSP_BULK_QUEUED;
        } else if (n == 7 && strncmp(p, "delayed", 7) == 0) {
            bits |= OSP_BULK_DELAYED;
        } else if (n == 8 && strncmp(p, "retrying", 8) == 0) {
            bits |= OSP_BULK_RETRYING;
        } else {
            return 0;
        }
        p = e != NULL ? e + 1 : NULL;
    }
    return bits;
}

static json_t *filter_json(const struct osp_bulk_filter *f)
{
    json_t *states = json_array();
    if (f->states & OSP_BULK_QUEUED) {
        json_array_append_new(states, json_string("queued"));
    }
    if (f->states & OSP_BULK_DELAYED) {
        json_array_append_new(states, json_string("delayed"));
    }
    if (f->states & OSP_BULK_RETRYING) {
        json_array_append_new(states, json_string("retrying"));
    }
    json_t *o = json_pack("{s:s, s:o}", "kind", f->kind, "states", states);
    if (f->submitted_by != NULL) {
        json_object_set_new(o, "submitted_by", json_string(f->submitted_by));
    }
    if (f->schedule != NULL) {
        json_object_set_new(o, "schedule", json_string(f->schedule));
    }
    if (f->created_before_ms > 0) {
        json_object_set_new(o, "created_before_ms", json_integer(f->created_before_ms));
    }
    if (f->created_after_ms > 0) {
        json_object_set_new(o, "created_after_ms", json_integer(f->created_after_ms));
    }
    return o; /* the limit is a front end's bound per call, not part of what is cancelled */
}

/* Flag a batch (ids: array of strings) final, retrying Redis errors with backoff. */
static int flag_batch(const struct osp_ops *o, const json_t *ids, struct osp_err *err)
{
    size_t n = json_array_size(ids);
    const char **v = osp_xcalloc(n > 0 ? n : 1, sizeof(*v));
    enum osp_rq_cancel_mode *m = osp_xcalloc(n > 0 ? n : 1, sizeof(*m));
    for (size_t i = 0; i < n; i++) {
        v[i] = json_string_value(json_array_get(ids, i));
        m[i] = OSP_RQ_CANCEL_FINAL;
    }
    int rc = 0;
    for (int t = 0; t < OPS_FLAG_TRIES; t++) {
        rc = osp_rqs_cancel(o->rq, v, m, n, o->job_ttl_s, err);
        if (rc == 0 || rc == OSP_EINVAL) {
            break;
        }
        nap_ms(200L << t);
    }
    free(v);
    free(m);
    return rc;
}

/* Sweep the cancelled envelopes of kind out of its queue (one turn of the list as long as it
 * was at the start) and out of the delayed set. */
static int sweep(const struct osp_ops *o, const char *kind, bool delayed_too, int64_t *dropped,
                 struct osp_err *err)
{
    int64_t qlen = 0, zlen = 0;
    int rc = osp_rqs_lengths(o->rq, kind, &qlen, &zlen, NULL, err);
    int64_t looked = 0;
    while (rc == 0 && looked < qlen) {
        int64_t before = looked;
        int64_t step = qlen - looked < OPS_SWEEP_STEP ? qlen - looked : OPS_SWEEP_STEP;
        rc = osp_rqs_purge_step(o->rq, kind, false, step, NULL, &looked, dropped, err);
        if (looked == before) {
            break; /* the list emptied meanwhile */
        }
    }
    int64_t start = 0;
    looked = 0;
    while (rc == 0 && delayed_too && looked < zlen) {
        int64_t before = looked;
        rc = osp_rqs_purge_step(o->rq, kind, true, OPS_SWEEP_STEP, &start, &looked, dropped, err);
        if (looked == before) {
            break;
        }
    }
    return rc;
}

int osp_op_bulk_cancel(const struct osp_ops *o, const struct osp_bulk_filter *f, bool dry_run,
                       struct osp_bulk_result *r, struct osp_err *err)
{
    memset(r, 0, sizeof(*r));
    if (f->kind == NULL || !osp_kind_name_is_valid(f->kind)) {
        return osp_err_set(err, OSP_EINVAL, "kind: a valid kind name is required");
    }
    if (f->states == 0 ||
        (f->states & ~(unsigned)(OSP_BULK_QUEUED | OSP_BULK_DELAYED | OSP_BULK_RETRYING)) != 0) {
        return osp_err_set(err, OSP_EINVAL, "states: one or more of queued, delayed, retrying");
    }
    int64_t t0 = osp_now_ms();
    if (dry_run) {
        int rc = osp_ledger_bulk_count(o->pg, f, &r->matched, err);
        if (rc == 0 && f->limit > 0 && r->matched > f->limit) {
            r->matched = f->limit;
        }
        return rc;
    }
    json_t *filter = filter_json(f);
    json_t *data = json_pack("{s:O, s:s}", "filter", filter, "status", "running");
    int rc = osp_ledger_audit(o->pg, &o->actor, "queue.cancel", f->kind, data, &r->audit_id, err);
    json_decref(data);
    if (rc != 0) {
        json_decref(filter);
        return rc;
    }
    char after[OSP_ID_LEN + 1] = "";
    json_t *unflagged = NULL; /* the batch whose commit went unanswered */
    bool commit_unknown = false;
    while (f->limit <= 0 || r->cancelled < f->limit) {
        int batch = OPS_BULK_BATCH;
        if (f->limit > 0 && f->limit - r->cancelled < batch) {
            batch = (int)(f->limit - r->cancelled);
        }
        /* Each batch: the ledger's change, then the Redis flags, then the commit. A Redis
         * failure rolls the batch back (nothing changed); a commit whose answer is lost leaves
         * jobs flagged cancelled in Redis that the ledger may still call queued: their
         * messages are dropped, and the reconciler takes Redis's final state for such rows. */
        if (osp_pgs_tx_begin(o->pg, err) != 0) {
            rc = err->code;
            break;
        }
        int64_t tl = osp_mono_ns();
        json_t *ids = osp_ledger_bulk_cancel(o->pg, f, after, batch, r->audit_id, &o->actor, err);
        r->ledger_s += (double)(osp_mono_ns() - tl) / 1e9;
        if (ids == NULL) {
            rc = err->code != 0 ? err->code : OSP_EPG;
            osp_pgs_tx_rollback(o->pg);
            break;
        }
        size_t n = json_array_size(ids);
        if (n == 0) {
            json_decref(ids);
            osp_pgs_tx_rollback(o->pg);
            break;
        }
        int64_t tr = osp_mono_ns();
        rc = flag_batch(o, ids, err);
        r->redis_s += (double)(osp_mono_ns() - tr) / 1e9;
        if (rc != 0) {
            osp_pgs_tx_rollback(o->pg);
            json_decref(ids);
            break;
        }
        tl = osp_mono_ns();
        rc = osp_pgs_tx_commit(o->pg, err);
        r->ledger_s += (double)(osp_mono_ns() - tl) / 1e9;
        if (rc != 0) {
            unflagged = ids; /* flagged; the ledger's answer was lost: named in the audit row */
            commit_unknown = true;
            break;
        }
        r->cancelled += (int64_t)n;
        snprintf(after, sizeof(after), "%s", json_string_value(json_array_get(ids, n - 1)));
        json_decref(ids);
        if ((int)n < batch) {
            break; /* the last page */
        }
    }
    /* The sweep follows the last batch: a call stopped by its limit leaves it to the call
     * that takes the rest (meanwhile fetch.lua drops what workers reach). */
    bool more = f->limit > 0 && r->cancelled >= f->limit;
    if (rc == 0 && !more) {
        int64_t ts = osp_mono_ns();
        rc = sweep(o, f->kind, (f->states & (OSP_BULK_DELAYED | OSP_BULK_RETRYING)) != 0,
                   &r->dropped, err);
        r->sweep_s = (double)(osp_mono_ns() - ts) / 1e9;
    }
    r->seconds = (double)(osp_now_ms() - t0) / 1000.0;
    data = json_pack("{s:o, s:s, s:I, s:I, s:f, s:{s:f, s:f, s:f}}", "filter", filter, "status",
                     rc == 0 ? "done" : "interrupted", "cancelled", (json_int_t)r->cancelled,
                     "envelopes_dropped", (json_int_t)r->dropped, "seconds", r->seconds,
                     "seconds_in", "ledger", r->ledger_s, "redis", r->redis_s, "sweep", r->sweep_s);
    if (more) {
        json_object_set_new(data, "more", json_true()); /* stopped at the call's limit */
    }
    if (rc != 0) {
        json_object_set_new(data, "error", json_string(err->msg));
    }
    if (unflagged != NULL) {
        json_object_set_new(data, "commit_unknown", unflagged); /* flagged; ledger unconfirmed */
    }
    struct osp_err e2 = {0};
    osp_ledger_audit_update(o->pg, r->audit_id, data, &e2);
    json_decref(data);
    if (rc != 0) {
        char cause[sizeof(err->msg)];
        snprintf(cause, sizeof(cause), "%s", err->msg);
        return osp_err_set(err, rc,
                           "stopped after %lld job(s) cancelled (%s); the batch in hand was %s; "
                           "run the same command again to take the rest (audit row %lld)",
                           (long long)r->cancelled, cause,
                           commit_unknown ? "flagged in Redis but its commit went unanswered "
                                            "(the reconciler settles it)"
                                          : "rolled back",
                           (long long)r->audit_id);
    }
    return 0;
}

/* ---- reads ---- */

json_t *osp_op_jobs(const struct osp_ops *o, const struct osp_job_filter *f, struct osp_err *err)
{
    if (f->kind != NULL && !osp_kind_name_is_valid(f->kind)) {
        osp_err_set(err, OSP_EINVAL, "kind: must match [a-z0-9_-]{1,32}");
        return NULL;
    }
    if (f->before_id != NULL && !osp_id_is_valid(f->before_id)) {
        osp_err_set(err, OSP_EINVAL, "before: a job id");
        return NULL;
    }
    if (f->target != NULL && !osp_name_is_valid(f->target, OSP_JOB_TARGET_MAX)) {
        osp_err_set(err, OSP_EINVAL, "target: must match [a-z0-9_-]{1,64}");
        return NULL;
    }
    if (f->idempotency_key != NULL &&
        (f->idempotency_key[0] == '\0' ||
         strnlen(f->idempotency_key, OSP_SUBMIT_TEXT_MAX + 1) > OSP_SUBMIT_TEXT_MAX)) {
        osp_err_set(err, OSP_EINVAL, "idempotency_key: 1..%d bytes", OSP_SUBMIT_TEXT_MAX);
        return NULL;
    }
    return osp_ledger_jobs(o->pg, f, err);
}

json_t *osp_op_job_records(const struct osp_ops *o, const char *id, struct osp_err *err)
{
    if (id == NULL || !osp_id_is_valid(id)) {
        osp_err_set(err, OSP_EINVAL, "a job id");
        return NULL;
    }
    return osp_ledger_job_records(o->pg, id, err);
}

json_t *osp_op_finished_counts(const struct osp_ops *o, int window_s, struct osp_err *err)
{
    return osp_ledger_finished_counts(o->pg, window_s, err);
}
