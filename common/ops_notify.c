/* SPDX-License-Identifier: MIT */
/* ops_notify.c — notifications for every front end: the delivery log and a manual retry.
 * Inputs are checked here; the SQL is common/ledger_notify.c's. Contract: common/ops.h. */
#include "common/envelope.h"
#include "common/id.h"
#include "common/notify.h"
#include "common/ops.h"

#include <string.h>

#define NOTIFY_LIMIT_MAX 1000

json_t *osp_op_notifications(const struct osp_ops *o, const char *state, const char *endpoint,
                             int limit, struct osp_err *err)
{
    if (state != NULL && strcmp(state, "pending") != 0 && strcmp(state, "delivered") != 0 &&
        strcmp(state, "failed") != 0) {
        osp_err_set(err, OSP_EINVAL, "state: pending, delivered or failed");
        return NULL;
    }
    if (endpoint != NULL && !osp_name_is_valid(endpoint, OSP_NOTIFY_NAME_MAX)) {
        osp_err_set(err, OSP_EINVAL, "endpoint: must match [a-z0-9_-]{1,64}");
        return NULL;
    }
    if (limit < 0 || limit > NOTIFY_LIMIT_MAX) {
        osp_err_set(err, OSP_EINVAL, "limit: 1..%d", NOTIFY_LIMIT_MAX);
        return NULL;
    }
    return osp_ledger_notify_list(o->pg, state, endpoint, limit, err);
}

int osp_op_notification_retry(const struct osp_ops *o, const char *id, struct osp_err *err)
{
    if (!osp_id_is_valid(id)) {
        return osp_err_set(err, OSP_EINVAL, "delivery id: a UUID");
    }
    int rc = osp_ledger_notify_retry(o->pg, id, err);
    if (rc != 0) {
        return rc;
    }
    struct osp_err e2 = {0, ""};
    /* The retry is made; an audit row lost to a failure now is logged by the caller's err. */
    rc = osp_ledger_audit(o->pg, &o->actor, "notification.retry", id, NULL, NULL, &e2);
    if (rc != 0) {
        return osp_err_set(err, rc, "the retry is made, but its audit record failed: %s", e2.msg);
    }
    return 0;
}
