/* SPDX-License-Identifier: MIT */
/* api_queues.c — the /v1/queues and /v1/dead handlers: figures, pause, resume, bulk cancel,
 * dead-letter retry and purge (scheduler/api.h). */
#include "common/alloc.h"
#include "common/cron.h"
#include "common/jobstate.h"
#include "common/log.h"
#include "common/ops.h"
#include "jobs/job.h"
#include "scheduler/api.h"
#include "scheduler/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Queues ---- */

void api_h_queues(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    struct sched *s = arg;
    json_t *arr = json_array();
    const struct job_kind *const *all = job_kinds_all();
    int64_t now = osp_now_ms();
    for (size_t i = 0; all[i] != NULL; i++) {
        struct osp_rq_stats st;
        struct osp_err err = {0, ""};
        if (osp_rqs_stats(s->rqs, all[i]->name, &st, &err) != 0) {
            sched_redis_failed(s, &err);
            json_decref(arr);
            api_reply_unavailable(resp, &err);
            return;
        }
        double age = st.oldest_pending_ms > 0 && now > st.oldest_pending_ms
                         ? (double)(now - st.oldest_pending_ms) / 1000.0
                         : 0.0;
        json_array_append_new(
            arr, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:f}", "kind", all[i]->name, "pending",
                           (json_int_t)st.pending, "running", (json_int_t)st.running, "delayed",
                           (json_int_t)st.delayed, "dead", (json_int_t)st.dead, "waiting",
                           (json_int_t)st.waiting, "paused", st.paused, "oldest_age_s", age));
    }
    osp_http_reply_json(resp, 200, json_pack("{s:o}", "queues", arr));
}

static void pause_resume(const struct osp_http_req *req, struct osp_http_resp *resp,
                         struct sched *s, bool pause)
{
    const struct job_kind *k = api_kind_or_reply(req->params[0], resp);
    if (k == NULL) {
        return;
    }
    struct osp_ops o;
    struct osp_err err = {0, ""};
    bool changed = false;
    if (!api_ops(s, &o, resp)) {
        return;
    }
    int rc = osp_op_pause(&o, k->name, pause, &changed, &err);
    if (rc != 0) {
        api_reply_op_error(s, resp, rc, &err);
        return;
    }
    osp_info("queue %s %s via API", k->name, pause ? "paused" : "resumed");
    api_audit_log(s, pause ? "queue.pause" : "queue.resume", k->name, NULL, NULL);
    osp_http_reply_json(
        resp, 200,
        json_pack("{s:s,s:b,s:b}", "kind", k->name, "paused", pause, "changed", changed));
}

void api_h_pause(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    pause_resume(req, resp, arg, true);
}

void api_h_resume(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    pause_resume(req, resp, arg, false);
}

/* ---- POST /v1/queues/{kind}/cancel (bulk) ---- */

static const char *const bulk_fields[] = {
    "states",        "submitted_by", "schedule", "created_before",
    "created_after", "dry_run",      "limit",    NULL};

/* The route's {kind} and the optional JSON body ({} when there is none); NULL after replying
 * 400 (unknown kind, bad JSON). */
static json_t *kind_and_body(const struct osp_http_req *req, struct osp_http_resp *resp,
                             const struct job_kind **k)
{
    *k = api_kind_or_reply(req->params[0], resp);
    if (*k == NULL) {
        return NULL;
    }
    return req->body_len > 0 ? osp_http_body_object(req, resp) : json_object();
}

/* An optional RFC 3339 time field as ms (0 when absent); -1 after replying 400. */
static int opt_time(const json_t *o, const char *name, int64_t *ms, struct osp_http_resp *resp)
{
    const json_t *v = json_object_get(o, name);
    *ms = 0;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v) || osp_time_parse_rfc3339(json_string_value(v), ms) != 0 || *ms <= 0) {
        osp_http_reply_error(resp, 400, "invalid_request",
                             "%s: expected RFC 3339 (2026-01-02T03:04:05Z)", name);
        return -1;
    }
    return 0;
}

void api_h_bulk_cancel(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const struct job_kind *k = NULL;
    json_t *body = kind_and_body(req, resp, &k);
    if (body == NULL) {
        return;
    }
    struct osp_bulk_filter f = {.kind = k->name,
                                .states = OSP_BULK_QUEUED | OSP_BULK_DELAYED | OSP_BULK_RETRYING};
    const json_t *dry = json_object_get(body, "dry_run");
    const json_t *states = json_object_get(body, "states");
    json_int_t limit = 0;
    if (!api_fields_ok(body, bulk_fields, resp) ||
        api_opt_str(body, "submitted_by", 256, &f.submitted_by, resp) != 0 ||
        api_opt_str(body, "schedule", 128, &f.schedule, resp) != 0 ||
        opt_time(body, "created_before", &f.created_before_ms, resp) != 0 ||
        opt_time(body, "created_after", &f.created_after_ms, resp) != 0 ||
        api_opt_int(body, "limit", 1, API_BULK_MAX, API_BULK_DEFAULT, &limit, resp) != 0) {
        json_decref(body);
        return;
    }
    if (dry != NULL && !json_is_boolean(dry)) {
        osp_http_reply_error(resp, 400, "invalid_request", "dry_run: true or false");
        json_decref(body);
        return;
    }
    if (states != NULL) {
        size_t i;
        json_t *v;
        f.states = 0;
        json_array_foreach(states, i, v)
        {
            unsigned b = json_is_string(v) ? osp_bulk_states_parse(json_string_value(v)) : 0;
            if (b == 0 || strchr(json_string_value(v), ',') != NULL) {
                f.states = 0;
                break;
            }
            f.states |= b;
        }
        if (!json_is_array(states) || f.states == 0) {
            osp_http_reply_error(resp, 400, "invalid_request",
                                 "states: an array of queued, delayed, retrying");
            json_decref(body);
            return;
        }
    }
    f.limit = limit;
    struct osp_ops o;
    struct osp_bulk_result r;
    struct osp_err err = {0, ""};
    if (!api_ops(s, &o, resp)) {
        json_decref(body);
        return;
    }
    bool dry_run = json_is_true(dry);
    int rc = osp_op_bulk_cancel(&o, &f, dry_run, &r, &err);
    json_decref(body);
    if (rc != 0) {
        api_reply_op_error(s, resp, rc, &err);
        return;
    }
    if (dry_run) {
        osp_http_reply_json(resp, 200,
                            json_pack("{s:s,s:b,s:I}", "kind", k->name, "dry_run", 1,
                                      "would_cancel", (json_int_t)r.matched));
        return;
    }
    char detail[64];
    snprintf(detail, sizeof(detail), "%lld cancelled", (long long)r.cancelled);
    api_audit_log(s, "queue.cancel", k->name, NULL, detail);
    osp_http_reply_json(resp, 200,
                        json_pack("{s:s,s:I,s:b,s:I}", "kind", k->name, "cancelled",
                                  (json_int_t)r.cancelled, "more", r.cancelled >= limit, "audit_id",
                                  (json_int_t)r.audit_id));
}

/* ---- POST /v1/dead/{kind}/retry, /purge ---- */

static const char *const dead_fields[] = {"limit", "ids", "max_attempts", NULL};
static const char *const purge_fields[] = {"ids", "dry_run", NULL};

/* The optional "ids" field: 0 (array of valid ids, or NULL) or -1 after replying 400. */
static int opt_ids(const json_t *body, const json_t **ids, struct osp_http_resp *resp)
{
    *ids = json_object_get(body, "ids");
    if (*ids == NULL) {
        return 0;
    }
    size_t i;
    json_t *v;
    bool ok = json_is_array(*ids) && json_array_size(*ids) <= API_DEAD_MAX;
    json_array_foreach(*ids, i, v)
    {
        ok = ok && json_is_string(v) && osp_id_is_valid(json_string_value(v));
    }
    if (!ok) {
        osp_http_reply_error(resp, 400, "invalid_request", "ids: an array of up to %d job ids",
                             API_DEAD_MAX);
        return -1;
    }
    return 0;
}

void api_h_dead_retry(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const struct job_kind *k = NULL;
    json_t *body = kind_and_body(req, resp, &k);
    if (body == NULL) {
        return;
    }
    json_int_t limit, budget;
    const json_t *ids = NULL;
    if (!api_fields_ok(body, dead_fields, resp) ||
        api_opt_int(body, "limit", 1, API_DEAD_MAX, API_DEAD_DEFAULT, &limit, resp) != 0 ||
        api_opt_int(body, "max_attempts", 1, 100, 0, &budget, resp) != 0 || /* 0: as before */
        opt_ids(body, &ids, resp) != 0) {
        json_decref(body);
        return;
    }
    struct osp_ops o;
    struct osp_err err = {0, ""};
    json_t *rep = NULL;
    if (!api_ops(s, &o, resp)) {
        json_decref(body);
        return;
    }
    int rc = osp_op_dead_retry(&o, k->name, ids, limit, (unsigned)budget, &rep, &err);
    json_decref(body);
    json_t *retried = json_object_get(rep, "retried");
    json_t *idlist = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(retried, i, v)
    {
        const char *id = json_string_value(json_object_get(v, "id"));
        json_array_append_new(idlist, json_string(id));
        api_audit_log(s, "dead.retry", k->name, id, NULL);
    }
    if (rc != 0) {
        json_decref(idlist);
        json_decref(rep);
        api_reply_op_error(s, resp, rc, &err);
        return;
    }
    osp_http_reply_json(resp, 200,
                        json_pack("{s:s,s:I,s:o,s:O}", "kind", k->name, "retried",
                                  (json_int_t)json_array_size(idlist), "ids", idlist, "skipped",
                                  json_object_get(rep, "skipped")));
    json_decref(rep);
}

void api_h_dead_purge(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const struct job_kind *k = NULL;
    json_t *body = kind_and_body(req, resp, &k);
    if (body == NULL) {
        return;
    }
    const json_t *ids = NULL;
    const json_t *dry = json_object_get(body, "dry_run");
    if (!api_fields_ok(body, purge_fields, resp) || opt_ids(body, &ids, resp) != 0) {
        json_decref(body);
        return;
    }
    if (dry != NULL && !json_is_boolean(dry)) {
        osp_http_reply_error(resp, 400, "invalid_request", "dry_run: true or false");
        json_decref(body);
        return;
    }
    struct osp_ops o;
    struct osp_err err = {0, ""};
    json_t *rep = NULL;
    if (!api_ops(s, &o, resp)) {
        json_decref(body);
        return;
    }
    int rc = osp_op_dead_purge(&o, k->name, ids, json_is_true(dry), &rep, &err);
    json_decref(body);
    if (rc != 0) {
        json_decref(rep);
        api_reply_op_error(s, resp, rc, &err);
        return;
    }
    if (!json_is_true(dry)) {
        api_audit_log(s, "dead.purge", k->name, NULL, NULL);
    }
    osp_http_reply_json(resp, 200, rep);
}
