/* SPDX-License-Identifier: MIT */
/* ops_sched.c — schedule operations for every front end (common/ops.h): define, delete,
 * enable/disable, trigger, read. The ledger holds schedules; firing them is the scheduler's
 * (scheduler/cronfire.c), which reads what these write. */
#include "common/alloc.h"
#include "common/base.h"
#include "common/cron.h"
#include "common/ops.h"
#include "jobs/job.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const schedule_fields[] = {
    "name", "cron", "timezone", "kind", "payload", "concurrency", "catchup_s", "enabled", NULL};

/* A string field, dflt when absent or null, NULL when of another type. */
static const char *str_field(const json_t *o, const char *name, const char *dflt)
{
    const json_t *v = json_object_get(o, name);
    if (v == NULL || json_is_null(v)) {
        return dflt;
    }
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An audit row for a schedule operation, unless no actor (internal callers). Best effort:
 * the change is made; a failed audit write is reported in err only when nothing else is. */
static void audit(const struct osp_ops *o, const char *action, const char *name, json_t *data)
{
    if (o->actor.who != NULL) {
        struct osp_err e = {0};
        osp_ledger_audit(o->pg, &o->actor, action, name, data, NULL, &e);
    }
    json_decref(data);
}

int osp_op_schedule_put(const struct osp_ops *o, const struct osp_submit_policy *pol,
                        const json_t *def, bool *created, const char **what, struct osp_err *err)
{
    *what = "invalid_request";
    if (!json_is_object(def)) {
        return osp_err_set(err, OSP_EINVAL, "a schedule must be a JSON object");
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)def, k, v)
    {
        bool known = false;
        for (size_t i = 0; schedule_fields[i] != NULL && !known; i++) {
            known = strcmp(k, schedule_fields[i]) == 0;
        }
        if (!known) {
            return osp_err_set(err, OSP_EINVAL, "unknown field \"%.64s\"", k);
        }
    }
    const char *name = str_field(def, "name", NULL);
    if (!osp_schedule_name_is_valid(name)) {
        return osp_err_set(err, OSP_EINVAL, "name: required, [A-Za-z0-9_.-]{1,%d}",
                           OSP_SCHEDULE_NAME_MAX);
    }
    const char *expr = str_field(def, "cron", NULL);
    struct osp_cron c;
    if (expr == NULL) {
        return osp_err_set(err, OSP_EINVAL, "cron: required, a 5-field cron expression");
    }
    if (osp_cron_parse(&c, expr, err) != 0) {
        return OSP_EINVAL;
    }
    const char *tz = str_field(def, "timezone", "UTC");
    if (tz == NULL || !osp_tz_is_valid(tz)) {
        return osp_err_set(err, OSP_EINVAL,
                           "timezone: not a TZ database name (e.g. Europe/Berlin)");
    }
    int64_t next = 0;
    if (osp_cron_next(&c, tz, osp_now_ms() / 1000, &next, err) != 0) {
        return OSP_EINVAL;
    }
    /* The job it will submit gets the checks of any submit (kind, payload, targets). */
    const json_t *payload = json_object_get(def, "payload");
    if (json_is_null(payload)) {
        payload = NULL;
    }
    struct osp_submit_req req = {
        .kind = str_field(def, "kind", NULL), .payload = payload, .schedule = name};
    if (req.kind == NULL) {
        return osp_err_set(err, OSP_EINVAL, "kind: required, [a-z0-9_-]{1,32}");
    }
    int rc;
    char *payload_text = NULL;
    if (strcmp(req.kind, OSP_CAMPAIGN_KIND) == 0) {
        /* A schedule that fires a campaign: its payload is the plan, checked in full now. */
        rc = osp_op_campaign_check(o, pol, payload, what, err);
        payload_text = rc == 0 ? json_dumps(payload, JSON_COMPACT) : NULL;
    } else {
        struct osp_job j;
        osp_job_init(&j);
        rc = osp_op_submit_check(o, pol, &req, &j, what, err);
        payload_text = rc == 0 ? json_dumps(j.payload, JSON_COMPACT) : NULL;
        osp_job_deinit(&j);
    }
    if (rc != 0) {
        return rc;
    }
    *what = "invalid_request";
    const char *conc = str_field(def, "concurrency", "forbid");
    const json_t *cu = json_object_get(def, "catchup_s");
    const json_t *en = json_object_get(def, "enabled");
    if (conc == NULL || (strcmp(conc, "forbid") != 0 && strcmp(conc, "allow") != 0)) {
        rc = osp_err_set(err, OSP_EINVAL, "concurrency: \"forbid\" or \"allow\"");
    } else if (cu != NULL && !json_is_null(cu) &&
               (!json_is_integer(cu) || json_integer_value(cu) < 0 ||
                json_integer_value(cu) > OSP_SCHEDULE_MAX_CATCHUP_S)) {
        rc =
            osp_err_set(err, OSP_EINVAL, "catchup_s: an integer 0..%d", OSP_SCHEDULE_MAX_CATCHUP_S);
    } else if (en != NULL && !json_is_null(en) && !json_is_boolean(en)) {
        rc = osp_err_set(err, OSP_EINVAL, "enabled: true or false");
    }
    if (rc != 0) {
        free(payload_text);
        return rc;
    }
    struct osp_schedule_def d = {
        .name = name,
        .cron = expr,
        .timezone = tz,
        .kind = req.kind,
        .payload_json = payload_text,
        .concurrency = conc,
        .enabled = en == NULL || json_is_null(en) || json_is_true(en),
        .catchup_s = cu != NULL && json_is_integer(cu) ? json_integer_value(cu) : 0,
        .next_fire_s = next,
    };
    rc = osp_ledger_schedule_upsert(o->pg, &d, created, err);
    free(payload_text);
    if (rc == 0) {
        audit(o, *created ? "schedule.create" : "schedule.update", name,
              json_pack("{s:O}", "definition", def));
    }
    return rc;
}

int osp_op_schedule_delete(const struct osp_ops *o, const char *name, struct osp_err *err)
{
    if (!osp_schedule_name_is_valid(name)) {
        return osp_err_set(err, OSP_EINVAL, "name: [A-Za-z0-9_.-]{1,%d}", OSP_SCHEDULE_NAME_MAX);
    }
    int rc = osp_ledger_schedule_delete(o->pg, name, err);
    if (rc == 0) {
        audit(o, "schedule.delete", name, NULL);
    }
    return rc;
}

int osp_op_schedule_enable(const struct osp_ops *o, const char *name, bool enable,
                           char next_iso[40], struct osp_err *err)
{
    next_iso[0] = '\0';
    if (!osp_schedule_name_is_valid(name)) {
        return osp_err_set(err, OSP_EINVAL, "name: [A-Za-z0-9_.-]{1,%d}", OSP_SCHEDULE_NAME_MAX);
    }
    json_t *row = osp_ledger_schedule_row(o->pg, name, err);
    if (row == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    int64_t next_ms = 0;
    struct osp_cron c;
    struct osp_err e = {0};
    int64_t next_s = 0;
    const char *tz = str_field(row, "timezone", "UTC");
    if (enable && osp_cron_parse(&c, str_field(row, "cron", ""), &e) == 0 &&
        osp_cron_next(&c, tz != NULL ? tz : "UTC", osp_now_ms() / 1000, &next_s, &e) == 0) {
        next_ms = next_s * 1000;
    }
    json_decref(row);
    int rc = osp_ledger_schedule_set_enabled(o->pg, name, enable, next_ms, next_iso, err);
    if (rc == 0) {
        audit(o, enable ? "schedule.enable" : "schedule.disable", name, NULL);
    }
    return rc;
}

int osp_op_schedule_submit(const struct osp_ops *o, const struct osp_submit_policy *pol,
                           const char *name, const char *kind, const json_t *payload,
                           const char *idem, const char *by, char id[OSP_ID_LEN + 1], bool *dup,
                           const char **what, struct osp_err *err)
{
    id[0] = '\0';
    *dup = false;
    if (kind != NULL && strcmp(kind, OSP_CAMPAIGN_KIND) == 0) {
        return osp_op_campaign_submit(o, pol, payload, idem, name, id, dup, what, err);
    }
    struct osp_submit_req req = {
        .kind = kind,
        .payload = payload,
        .idempotency_key = idem,
        .submitted_by = by,
        .schedule = name,
    };
    struct osp_job j;
    osp_job_init(&j);
    int rc = osp_op_submit_check(o, pol, &req, &j, what, err);
    if (rc == 0) {
        char ids[1][OSP_ID_LEN + 1];
        rc = osp_op_submit(o, &j, 1, ids, dup, err);
        if (rc == 0 || rc == OSP_EREDIS) {
            memcpy(id, ids[0], OSP_ID_LEN + 1);
        }
    }
    osp_job_deinit(&j);
    return rc;
}

int osp_op_schedule_trigger(const struct osp_ops *o, const struct osp_submit_policy *pol,
                            const char *name, char id[OSP_ID_LEN + 1], bool *campaign,
                            struct osp_err *err)
{
    id[0] = '\0';
    *campaign = false;
    if (!osp_schedule_name_is_valid(name)) {
        return osp_err_set(err, OSP_EINVAL, "name: [A-Za-z0-9_.-]{1,%d}", OSP_SCHEDULE_NAME_MAX);
    }
    json_t *row = osp_ledger_schedule_row(o->pg, name, err);
    if (row == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    const char *what = NULL;
    bool dup = false;
    const char *kind = str_field(row, "kind", NULL);
    *campaign = kind != NULL && strcmp(kind, OSP_CAMPAIGN_KIND) == 0;
    int rc = osp_op_schedule_submit(o, pol, name, kind, json_object_get(row, "payload"), NULL,
                                    o->actor.who != NULL ? o->actor.who : "schedule trigger", id,
                                    &dup, &what, err);
    json_decref(row);
    if (rc == OSP_EINVAL || rc == OSP_ETOOBIG) {
        char cause[sizeof(err->msg)];
        snprintf(cause, sizeof(cause), "%s", err->msg); /* err->msg is rewritten below */
        return osp_err_set(err, OSP_ECONFLICT, "schedule %s cannot submit its job: %s", name,
                           cause);
    }
    if (rc == 0 || rc == OSP_EREDIS) {
        audit(o, "schedule.trigger", name, json_pack("{s:s}", "job_id", id));
    }
    return rc;
}

json_t *osp_op_schedules(const struct osp_ops *o, const char *name, struct osp_err *err)
{
    if (name != NULL && !osp_schedule_name_is_valid(name)) {
        osp_err_set(err, OSP_EINVAL, "name: [A-Za-z0-9_.-]{1,%d}", OSP_SCHEDULE_NAME_MAX);
        return NULL;
    }
    return osp_ledger_schedules(o->pg, name, err);
}
