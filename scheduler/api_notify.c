/* SPDX-License-Identifier: MIT */
/* api_notify.c — the notification delivery log over HTTP: parse, call common/ops_notify.c,
 * render.
 *   GET  /v1/notifications?state=&endpoint=&limit=   deliveries newest first, with attempts
 *   POST /v1/notifications/{id}/retry                 a failed delivery, sent again */
#include "common/ops.h"
#include "scheduler/api.h"

#include <stdlib.h>

const char *const api_notify_query[] = {"state", "endpoint", "limit", NULL};

void api_h_notifications(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const char *limit = osp_http_query(req, "limit");
    int n = 0;
    if (limit != NULL) {
        char *end = NULL;
        long v = strtol(limit, &end, 10);
        if (limit[0] == '\0' || *end != '\0' || v < 1 || v > API_LIST_MAX) {
            osp_http_reply_error(resp, 400, "invalid_request", "limit: an integer 1..%d",
                                 API_LIST_MAX);
            return;
        }
        n = (int)v;
    }
    struct osp_ops o;
    if (!api_ops(s, &o, resp)) {
        return;
    }
    struct osp_err err = {0, ""};
    json_t *rows = osp_op_notifications(&o, osp_http_query(req, "state"),
                                        osp_http_query(req, "endpoint"), n, &err);
    if (rows == NULL) {
        api_reply_op_error(s, resp, err.code != 0 ? err.code : OSP_EPG, &err);
        return;
    }
    osp_http_reply_json(resp, 200, json_pack("{s:o}", "deliveries", rows));
}

void api_h_notification_retry(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    struct osp_ops o;
    if (!api_ops(s, &o, resp)) {
        return;
    }
    struct osp_err err = {0, ""};
    int rc = osp_op_notification_retry(&o, req->params[0], &err);
    if (rc != 0) {
        api_reply_op_error(s, resp, rc, &err);
        return;
    }
    api_audit_log(s, "notification.retry", req->params[0], NULL, NULL);
    osp_http_reply_json(resp, 200,
                        json_pack("{s:s, s:s}", "id", req->params[0], "state", "pending"));
}
