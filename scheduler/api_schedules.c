/* SPDX-License-Identifier: MIT */
/* api_schedules.c — the /v1/schedules handlers: list, get, define, delete, enable, disable, trigger
 * (scheduler/api.h). */
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

/* ---- Schedules ---- */

static void schedule_row(json_t *row)
{
    static const char *const ints[] = {"catchup_s", NULL};
    api_row_ints(row, ints);
    api_row_bool(row, "enabled");
    api_row_json(row, "payload");
}

void api_h_list_schedules(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    struct sched *s = arg;
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (!api_ops(s, &o, resp)) {
        return;
    }
    json_t *rows = osp_op_schedules(&o, NULL, &err);
    if (rows == NULL) {
        api_reply_op_error(s, resp, err.code, &err);
        return;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        schedule_row(row);
    }
    osp_http_reply_json(resp, 200, json_pack("{s:o}", "schedules", rows));
}

/* Reply with one schedule (and its latest firings). */
static void reply_schedule(struct sched *s, struct osp_ops *o, const char *name, int status,
                           struct osp_http_resp *resp)
{
    struct osp_err err = {0, ""};
    json_t *row = osp_op_schedules(o, name, &err);
    if (row == NULL) {
        api_reply_op_error(s, resp, err.code, &err);
        return;
    }
    schedule_row(row);
    osp_http_reply_json(resp, status, row);
}

void api_h_get_schedule(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct osp_ops o;
    if (api_ops(arg, &o, resp)) {
        reply_schedule(arg, &o, req->params[0], 200, resp);
    }
}

void api_h_put_schedule(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    json_t *body = osp_http_body_object(req, resp);
    if (body == NULL) {
        return;
    }
    struct osp_ops o;
    struct osp_err err = {0, ""};
    bool created = false;
    const char *what = "invalid_request";
    if (!api_ops(s, &o, resp)) {
        json_decref(body);
        return;
    }
    struct osp_submit_policy pol = sched_policy(s);
    int rc = osp_op_schedule_put(&o, &pol, body, &created, &what, &err);
    if (rc == OSP_EINVAL) {
        osp_http_reply_error(resp, 400, what, "%s", err.msg);
    } else if (rc != 0) {
        api_reply_op_error(s, resp, rc, &err);
    } else {
        const char *sname = json_string_value(json_object_get(body, "name"));
        api_audit_log(s, created ? "schedule.create" : "schedule.update", sname, NULL, NULL);
        reply_schedule(s, &o, sname, created ? 201 : 200, resp);
    }
    json_decref(body);
}

void api_h_delete_schedule(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (!api_ops(s, &o, resp)) {
        return;
    }
    int rc = osp_op_schedule_delete(&o, req->params[0], &err);
    if (rc != 0) {
        api_reply_op_error(s, resp, rc, &err);
        return;
    }
    osp_info("schedule %s deleted via API", req->params[0]);
    api_audit_log(s, "schedule.delete", req->params[0], NULL, NULL);
    osp_http_reply_json(resp, 200, json_pack("{s:s}", "deleted", req->params[0]));
}

static void schedule_enable(const struct osp_http_req *req, struct osp_http_resp *resp,
                            struct sched *s, bool enable)
{
    struct osp_ops o;
    struct osp_err err = {0, ""};
    char next[40];
    if (!api_ops(s, &o, resp)) {
        return;
    }
    int rc = osp_op_schedule_enable(&o, req->params[0], enable, next, &err);
    if (rc != 0) {
        api_reply_op_error(s, resp, rc, &err);
        return;
    }
    api_audit_log(s, enable ? "schedule.enable" : "schedule.disable", req->params[0], NULL, NULL);
    reply_schedule(s, &o, req->params[0], 200, resp);
}

void api_h_enable_schedule(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    schedule_enable(req, resp, arg, true);
}

void api_h_disable_schedule(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    schedule_enable(req, resp, arg, false);
}

void api_h_trigger_schedule(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    struct osp_ops o;
    struct osp_err err = {0, ""};
    char id[OSP_ID_LEN + 1];
    if (!api_ops(s, &o, resp)) {
        return;
    }
    struct osp_submit_policy pol = sched_policy(s);
    bool campaign = false;
    int rc = osp_op_schedule_trigger(&o, &pol, req->params[0], id, &campaign, &err);
    if (rc != 0 && rc != OSP_EREDIS) {
        api_reply_op_error(s, resp, rc, &err);
        return;
    }
    api_audit_log(s, "schedule.trigger", req->params[0], id, NULL);
    /* A campaign schedule answers with the campaign (GET /v1/campaigns/{id}), running. */
    json_t *out = json_pack("{s:s,s:s,s:s,s:b}", "schedule", req->params[0], "id", id, "state",
                            campaign ? "running" : "queued", "campaign", campaign);
    if (rc == OSP_EREDIS) {
        sched_redis_failed(s, &err);
        json_object_set_new(out, "warning",
                            json_string("stored in the ledger; Redis is unavailable, the "
                                        "reconciler will enqueue it"));
    }
    osp_http_reply_json(resp, 202, out);
}
