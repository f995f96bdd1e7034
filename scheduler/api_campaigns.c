/* SPDX-License-Identifier: MIT */
/* api_campaigns.c — the /v1/campaigns handlers: submit, list, get, cancel (scheduler/api.h).
 * Adapters: parse, call common/ops.h, render (docs/campaigns.md). */
#include "common/log.h"
#include "common/ops.h"
#include "scheduler/api.h"
#include "scheduler/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const api_list_campaigns_query[] = {"limit", NULL};

/* ---- POST /v1/campaigns ---- */

void api_h_submit_campaign(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    json_t *body = osp_http_body_object(req, resp);
    if (body == NULL) {
        return;
    }
    /* The plan is the body; an idempotency key rides beside it and is not part of the plan. */
    const char *idem = NULL;
    struct osp_ops o;
    if (api_opt_str(body, "idempotency_key", API_STR_MAX, &idem, resp) != 0 ||
        !api_ops(s, &o, resp)) {
        json_decref(body);
        return;
    }
    char *idem_copy = idem != NULL ? strdup(idem) : NULL;
    json_object_del(body, "idempotency_key");
    struct osp_submit_policy pol = sched_policy(s);
    struct osp_err err = {0, ""};
    const char *what = "invalid_request";
    char id[OSP_ID_LEN + 1];
    bool dup = false;
    int rc = osp_op_campaign_submit(&o, &pol, body, idem_copy, NULL, id, &dup, &what, &err);
    if (rc == OSP_EINVAL || rc == OSP_ETOOBIG) {
        osp_http_reply_error(resp, strcmp(what, "too_large") == 0 ? 413 : 400, what, "%s", err.msg);
    } else if (rc != 0) {
        api_reply_op_error(s, resp, rc, &err);
    } else {
        api_audit_log(s, dup ? "campaign.submit.duplicate" : "campaign.submit",
                      json_string_value(json_object_get(body, "name")), id, NULL);
        osp_http_reply_json(resp, dup ? 200 : 201,
                            json_pack("{s:s, s:b}", "id", id, "duplicate", dup));
    }
    free(idem_copy);
    json_decref(body);
}

/* ---- GET /v1/campaigns ---- */

void api_h_list_campaigns(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const char *lim = osp_http_query(req, "limit");
    long limit = API_LIST_DEFAULT;
    if (lim != NULL) {
        char *end = NULL;
        limit = strtol(lim, &end, 10);
        if (end == lim || *end != '\0' || limit < 1 || limit > API_LIST_MAX) {
            osp_http_reply_error(resp, 400, "invalid_request", "limit: an integer 1..%d",
                                 API_LIST_MAX);
            return;
        }
    }
    struct osp_ops o;
    if (!api_ops(s, &o, resp)) {
        return;
    }
    struct osp_err err = {0, ""};
    json_t *rows = osp_op_campaigns(&o, (int)limit, &err);
    if (rows == NULL) {
        api_reply_op_error(s, resp, err.code != 0 ? err.code : OSP_EPG, &err);
        return;
    }
    static const char *const ints[] = {"steps", "succeeded", NULL};
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        api_row_ints(r, ints);
    }
    osp_http_reply_json(resp, 200, json_pack("{s:o}", "campaigns", rows));
}

/* ---- GET /v1/campaigns/{cid} ---- */

void api_h_get_campaign(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    struct osp_ops o;
    if (!api_ops(s, &o, resp)) {
        return;
    }
    struct osp_err err = {0, ""};
    json_t *c = osp_op_campaign_get(&o, req->params[0], &err);
    if (c == NULL) {
        api_reply_op_error(s, resp, err.code != 0 ? err.code : OSP_EPG, &err);
        return;
    }
    osp_http_reply_json(resp, 200, c);
}

/* ---- POST /v1/campaigns/{cid}/cancel ---- */

void api_h_cancel_campaign(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const char *id = req->params[0];
    struct osp_ops o;
    if (!api_ops(s, &o, resp)) {
        return;
    }
    struct osp_submit_policy pol = sched_policy(s);
    struct osp_err err = {0, ""};
    char prev[16] = "";
    int rc = osp_op_campaign_cancel(&o, &pol, id, prev, &err);
    if (rc != 0) {
        api_reply_op_error(s, resp, rc, &err);
        return;
    }
    api_audit_log(s, "campaign.cancel", NULL, id, prev);
    osp_http_reply_json(resp, 200,
                        json_pack("{s:s, s:s, s:s, s:b}", "id", id, "state", "cancelled",
                                  "previous_state", prev, "already",
                                  strcmp(prev, "cancelled") == 0));
}
