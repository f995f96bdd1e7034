/* SPDX-License-Identifier: MIT */
/* ops_campaign.c — campaigns: a plan of steps of any kind with `after` dependencies, fail-fast,
 * and `always` steps (docs/campaigns.md). Contract: common/ops.h "campaigns".
 *
 * State lives in the ledger only (common/ledger_campaign.c); every step that runs is an
 * ordinary job submitted through osp_op_submit with the idempotency key
 * "campaign:<id>:<step>", so a crash anywhere between writing a step's job and recording it
 * in the campaign cannot create a second job: advancing again finds the same one. Advancing is
 * therefore idempotent and safe from any number of processes at once (the scheduler's duty,
 * opspoolctl campaign --wait): every transition is conditional on the state it leaves.
 *
 * The rules, applied to each pending step once the steps it runs after are final:
 *   - the campaign was cancelled: skipped;
 *   - every step it runs after succeeded, and no step failed yet (or fail_fast is off): run;
 *   - an `always` step: run whatever happened before it (a rollback, a backup);
 *   - otherwise: skipped, naming the step that did not succeed (or "fail-fast").
 * When every step is final the campaign ends: succeeded when every step succeeded, else
 * failed (cancelled stays cancelled). */
#include "common/alloc.h"
#include "common/base.h"
#include "common/id.h"
#include "common/jobstate.h"
#include "common/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAMPAIGN_NAME_MAX 64

static bool step_name_ok(const char *s)
{
    return osp_name_is_valid(s, CAMPAIGN_NAME_MAX);
}

/* Index of the step called name in steps, whose name field is key ("name" in a plan, "step"
 * in the ledger's view), or -1. */
static int step_index_by(const json_t *steps, const char *key, const char *name)
{
    size_t i;
    json_t *st;
    json_array_foreach(steps, i, st)
    {
        const char *n = json_string_value(json_object_get(st, key));
        if (n != NULL && strcmp(n, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int step_index(const json_t *plan_steps, const char *name)
{
    return step_index_by(plan_steps, "name", name);
}

/* Depth-first search for a cycle through `after`: color 0 new, 1 on the path, 2 done. */
static bool has_cycle(const json_t *steps, size_t i, int *color, const char **at)
{
    color[i] = 1;
    size_t k;
    json_t *dep;
    json_array_foreach(json_object_get(json_array_get(steps, i), "after"), k, dep)
    {
        int d = step_index(steps, json_string_value(dep));
        if (d < 0) {
            continue;
        }
        if (color[d] == 1 || (color[d] == 0 && has_cycle(steps, (size_t)d, color, at))) {
            if (*at == NULL) {
                *at = json_string_value(json_object_get(json_array_get(steps, i), "name"));
            }
            return true;
        }
    }
    color[i] = 2;
    return false;
}

static const char *const step_keys[] = {"name",   "kind",         "payload",   "after",
                                        "always", "max_attempts", "timeout_s", NULL};
static const char *const plan_keys[] = {"name", "fail_fast", "steps", NULL};

static bool key_known(const char *const *keys, const char *k)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        if (strcmp(keys[i], k) == 0) {
            return true;
        }
    }
    return false;
}

/* The submit request of one step, borrowed from the plan. */
static void step_req(const json_t *st, struct osp_submit_req *req)
{
    memset(req, 0, sizeof(*req));
    req->kind = json_string_value(json_object_get(st, "kind"));
    req->payload = json_object_get(st, "payload");
    req->max_attempts = json_integer_value(json_object_get(st, "max_attempts"));
    req->timeout_s = json_integer_value(json_object_get(st, "timeout_s"));
}

int osp_op_campaign_check(const struct osp_ops *o, const struct osp_submit_policy *pol,
                          const json_t *plan, const char **what, struct osp_err *err)
{
    *what = "invalid_request";
    if (!json_is_object(plan)) {
        return osp_err_set(err, OSP_EINVAL, "campaign: must be a JSON object");
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)plan, k, v)
    {
        if (!key_known(plan_keys, k)) {
            return osp_err_set(err, OSP_EINVAL, "campaign: unknown field \"%.64s\"", k);
        }
    }
    const char *name = json_string_value(json_object_get(plan, "name"));
    if (!step_name_ok(name)) {
        return osp_err_set(err, OSP_EINVAL, "name: required, [a-z0-9_-]{1,%d}", CAMPAIGN_NAME_MAX);
    }
    const json_t *ff = json_object_get(plan, "fail_fast");
    if (ff != NULL && !json_is_boolean(ff)) {
        return osp_err_set(err, OSP_EINVAL, "fail_fast: must be true or false");
    }
    const json_t *steps = json_object_get(plan, "steps");
    size_t n = json_array_size(steps);
    if (!json_is_array(steps) || n == 0 || n > OSP_CAMPAIGN_MAX_STEPS) {
        return osp_err_set(err, OSP_EINVAL, "steps: an array of 1..%d steps",
                           OSP_CAMPAIGN_MAX_STEPS);
    }
    size_t i;
    json_t *st;
    json_array_foreach(steps, i, st)
    {
        if (!json_is_object(st)) {
            return osp_err_set(err, OSP_EINVAL, "steps[%zu]: must be an object", i);
        }
        json_object_foreach(st, k, v)
        {
            if (!key_known(step_keys, k)) {
                return osp_err_set(err, OSP_EINVAL, "steps[%zu]: unknown field \"%.64s\"", i, k);
            }
        }
        const char *sn = json_string_value(json_object_get(st, "name"));
        if (!step_name_ok(sn)) {
            return osp_err_set(err, OSP_EINVAL, "steps[%zu].name: required, [a-z0-9_-]{1,%d}", i,
                               CAMPAIGN_NAME_MAX);
        }
        if (step_index(steps, sn) != (int)i) {
            return osp_err_set(err, OSP_EINVAL, "steps[%zu].name: \"%s\" is used twice", i, sn);
        }
        const json_t *after = json_object_get(st, "after");
        if (after != NULL && !json_is_array(after)) {
            return osp_err_set(err, OSP_EINVAL, "step %s: after must be an array of step names",
                               sn);
        }
        size_t d;
        json_t *dep;
        json_array_foreach(after, d, dep)
        {
            const char *dn = json_string_value(dep);
            if (dn == NULL || step_index(steps, dn) < 0) {
                return osp_err_set(err, OSP_EINVAL, "step %s: after names no step of this plan",
                                   sn);
            }
            if (strcmp(dn, sn) == 0) {
                return osp_err_set(err, OSP_EINVAL, "step %s: runs after itself", sn);
            }
        }
        const json_t *al = json_object_get(st, "always");
        if (al != NULL && !json_is_boolean(al)) {
            return osp_err_set(err, OSP_EINVAL, "step %s: always must be true or false", sn);
        }
        const json_t *ma = json_object_get(st, "max_attempts");
        const json_t *to = json_object_get(st, "timeout_s");
        if ((ma != NULL && !json_is_integer(ma)) || (to != NULL && !json_is_integer(to))) {
            return osp_err_set(err, OSP_EINVAL, "step %s: max_attempts and timeout_s: integers",
                               sn);
        }
        /* The step's job, checked exactly as a submit would check it (kind, payload with its
         * targets, bounds, envelope size): nothing of the campaign is written otherwise. */
        struct osp_submit_req req;
        step_req(st, &req);
        struct osp_job j;
        osp_job_init(&j);
        struct osp_err e = {0, ""};
        int rc = osp_op_submit_check(o, pol, &req, &j, what, &e);
        osp_job_deinit(&j);
        if (rc != 0) {
            return osp_err_set(err, rc, "step %s: %s", sn, e.msg);
        }
    }
    int *color = osp_xcalloc(n, sizeof(*color));
    const char *at = NULL;
    bool cycle = false;
    for (i = 0; i < n && !cycle; i++) {
        cycle = color[i] == 0 && has_cycle(steps, i, color, &at);
    }
    free(color);
    if (cycle) {
        *what = "invalid_request";
        return osp_err_set(err, OSP_EINVAL, "steps: the after dependencies form a cycle (at %s)",
                           at != NULL ? at : "?");
    }
    return 0;
}

/* The step rows the ledger stores: [{step, ord, kind, after, always}]. */
static json_t *step_rows(const json_t *steps)
{
    json_t *rows = json_array();
    size_t i;
    json_t *st;
    json_array_foreach(steps, i, st)
    {
        const json_t *after = json_object_get(st, "after");
        json_array_append_new(
            rows, json_pack("{s:s, s:i, s:s, s:O, s:b}", "step",
                            json_string_value(json_object_get(st, "name")), "ord", (int)i, "kind",
                            json_string_value(json_object_get(st, "kind")), "after",
                            after != NULL ? after : json_array(), "always",
                            json_is_true(json_object_get(st, "always"))));
        if (after == NULL) {
            json_decref(json_object_get(json_array_get(rows, i), "after")); /* s:O took a ref */
        }
    }
    return rows;
}

int osp_op_campaign_submit(const struct osp_ops *o, const struct osp_submit_policy *pol,
                           const json_t *plan, const char *idem, const char *schedule,
                           char id[OSP_ID_LEN + 1], bool *dup, const char **what,
                           struct osp_err *err)
{
    *dup = false;
    int rc = osp_op_campaign_check(o, pol, plan, what, err);
    if (rc != 0) {
        return rc;
    }
    if (idem != NULL && (idem[0] == '\0' || strlen(idem) > OSP_SUBMIT_TEXT_MAX)) {
        *what = "invalid_request";
        return osp_err_set(err, OSP_EINVAL, "idempotency_key: 1..%d characters",
                           OSP_SUBMIT_TEXT_MAX);
    }
    osp_id_new(id);
    json_t *rows = step_rows(json_object_get(plan, "steps"));
    char existing[OSP_ID_LEN + 1];
    const json_t *ff = json_object_get(plan, "fail_fast");
    rc = osp_ledger_campaign_insert(o->pg, id, json_string_value(json_object_get(plan, "name")),
                                    ff == NULL || json_is_true(ff), plan, rows, idem, o->actor.who,
                                    schedule, existing, err);
    json_decref(rows);
    if (rc != 0) {
        return rc;
    }
    if (existing[0] != '\0') {
        memcpy(id, existing, OSP_ID_LEN + 1);
        *dup = true;
    }
    /* The first steps go out now; the scheduler's duty (or a waiting opspoolctl) does the
     * rest. A failure here is not the caller's: the campaign is recorded and will advance. */
    bool finished;
    struct osp_err e = {0, ""};
    (void)osp_op_campaign_advance(o, pol, id, &finished, &e);
    return 0;
}

/* The ledger view's step called name, or NULL. */
static const json_t *step_of(const json_t *steps, const char *name)
{
    int i = step_index_by(steps, "step", name);
    return i >= 0 ? json_array_get(steps, (size_t)i) : NULL;
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

static bool step_final(const char *state)
{
    return strcmp(state, "pending") != 0 && strcmp(state, "submitted") != 0;
}

/* Submit one step's job (idempotent by its key) and record it as submitted. */
static int run_step(const struct osp_ops *o, const struct osp_submit_policy *pol, const char *cid,
                    const json_t *plan_step, const char *name, struct osp_err *err)
{
    char key[OSP_ID_LEN + CAMPAIGN_NAME_MAX + 16], by[OSP_ID_LEN + 16];
    snprintf(key, sizeof(key), "campaign:%s:%s", cid, name);
    snprintf(by, sizeof(by), "campaign:%s", cid);
    struct osp_submit_req req;
    step_req(plan_step, &req);
    req.idempotency_key = key;
    req.submitted_by = by;
    struct osp_job j;
    osp_job_init(&j);
    const char *what = NULL;
    int rc = osp_op_submit_check(o, pol, &req, &j, &what, err);
    char ids[1][OSP_ID_LEN + 1];
    bool dup = false;
    if (rc == 0) {
        rc = osp_op_submit(o, &j, 1, ids, &dup, err);
    }
    osp_job_deinit(&j);
    if (rc == OSP_EINVAL) {
        /* The plan was valid when accepted; a targets file changed since can refuse it. */
        bool changed;
        char why[300];
        snprintf(why, sizeof(why), "refused at submit: %s", err->msg);
        return osp_ledger_campaign_step(o->pg, cid, name, "pending", "failed", NULL, why, &changed,
                                        err);
    }
    if (rc != 0) {
        return rc;
    }
    bool changed;
    return osp_ledger_campaign_step(o->pg, cid, name, "pending", "submitted", ids[0], NULL,
                                    &changed, err);
}

int osp_op_campaign_advance(const struct osp_ops *o, const struct osp_submit_policy *pol,
                            const char *id, bool *finished, struct osp_err *err)
{
    *finished = false;
    if (!osp_id_is_valid(id)) {
        return osp_err_set(err, OSP_EINVAL, "not a campaign id: %.64s", id);
    }
    int rc = 0;
    for (int round = 0; round < OSP_CAMPAIGN_MAX_STEPS + 1; round++) {
        json_t *c = osp_ledger_campaign_get(o->pg, id, err);
        if (c == NULL) {
            return err->code != 0 ? err->code : OSP_EPG;
        }
        if (json_string_value(json_object_get(c, "finished_at")) != NULL) {
            *finished = true;
            json_decref(c);
            return 0;
        }
        const json_t *steps = json_object_get(c, "steps");
        bool cancelled = strcmp(str(c, "state"), "cancelled") == 0;
        bool fail_fast = json_is_true(json_object_get(c, "fail_fast"));
        bool moved = false, failed = false, all_final = true, all_ok = true;
        size_t i;
        json_t *s;
        /* 1. Steps whose job ended take the job's final state. In a cancelled campaign a
         * step whose job is still unfinished is cancelled now: a step submitted by another
         * process while the cancel was being recorded must not run on. */
        json_array_foreach(steps, i, s)
        {
            const char *st = str(s, "state");
            const char *js = str(s, "job_state");
            if (cancelled && strcmp(st, "submitted") == 0 && js[0] != '\0' &&
                !osp_job_state_name_is_final(js)) {
                struct osp_cancel_result cr;
                struct osp_err e = {0, ""};
                int crc = osp_op_cancel(o, str(s, "job_id"), &cr, &e);
                if (crc != 0 && crc != OSP_ECONFLICT) {
                    json_decref(c);
                    return osp_err_set(err, crc, "step %s: %s", str(s, "step"), e.msg);
                }
            }
            if (strcmp(st, "submitted") == 0 && osp_job_state_name_is_final(js)) {
                bool changed;
                rc = osp_ledger_campaign_step(o->pg, id, str(s, "step"), "submitted", js, NULL,
                                              NULL, &changed, err);
                if (rc != 0) {
                    json_decref(c);
                    return rc;
                }
                moved = true;
            }
        }
        if (moved) {
            json_decref(c);
            continue; /* read again: the rules below need the new states */
        }
        json_array_foreach(steps, i, s)
        {
            const char *st = str(s, "state");
            failed = failed || strcmp(st, "failed") == 0 || strcmp(st, "dead") == 0 ||
                     strcmp(st, "cancelled") == 0;
        }
        /* 2. Pending steps whose dependencies are all final: run or skip. */
        json_array_foreach(steps, i, s)
        {
            const char *name = str(s, "step");
            if (strcmp(str(s, "state"), "pending") != 0) {
                continue;
            }
            bool deps_final = true, deps_ok = true;
            const char *bad = NULL;
            size_t d;
            json_t *dep;
            json_array_foreach(json_object_get(s, "after"), d, dep)
            {
                const json_t *ds = step_of(steps, json_string_value(dep));
                const char *dst = ds != NULL ? str(ds, "state") : "skipped";
                deps_final = deps_final && step_final(dst);
                if (strcmp(dst, "succeeded") != 0 && bad == NULL) {
                    deps_ok = false;
                    bad = json_string_value(dep);
                }
            }
            if (!deps_final) {
                continue;
            }
            bool always = json_is_true(json_object_get(s, "always"));
            char why[160] = "";
            if (cancelled) {
                snprintf(why, sizeof(why), "the campaign was cancelled");
            } else if (!always && !deps_ok) {
                snprintf(why, sizeof(why), "step %s did not succeed", bad);
            } else if (!always && failed && fail_fast) {
                snprintf(why, sizeof(why), "fail-fast: an earlier step failed");
            }
            if (why[0] != '\0') {
                bool changed;
                rc = osp_ledger_campaign_step(o->pg, id, name, "pending", "skipped", NULL, why,
                                              &changed, err);
            } else {
                rc = run_step(o, pol, id, json_object_get(s, "plan"), name, err);
            }
            if (rc != 0) {
                json_decref(c);
                return rc;
            }
            moved = true;
        }
        if (moved) {
            json_decref(c);
            continue;
        }
        /* 3. Every step final: the campaign ends. */
        json_array_foreach(steps, i, s)
        {
            const char *st = str(s, "state");
            all_final = all_final && step_final(st);
            all_ok = all_ok && strcmp(st, "succeeded") == 0;
        }
        if (all_final) {
            rc = osp_ledger_campaign_finish(o->pg, id, all_ok ? "succeeded" : "failed", err);
            *finished = rc == 0;
        }
        json_decref(c);
        return rc;
    }
    return 0;
}

int osp_op_campaign_cancel(const struct osp_ops *o, const struct osp_submit_policy *pol,
                           const char *id, char prev[16], struct osp_err *err)
{
    if (!osp_id_is_valid(id)) {
        return osp_err_set(err, OSP_EINVAL, "not a campaign id: %.64s", id);
    }
    int rc = osp_ledger_campaign_cancel(o->pg, id, o->actor.who, prev, err);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(prev, "running") != 0 && strcmp(prev, "cancelled") != 0) {
        return osp_err_set(err, OSP_ECONFLICT, "campaign %s already ended %s; nothing to cancel",
                           id, prev);
    }
    /* Steps not yet submitted are skipped by the next advance; the ones submitted are
     * cancelled like any job (a running drill is stopped and rolls its fault back). */
    json_t *c = osp_ledger_campaign_get(o->pg, id, err);
    if (c == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(c, "steps"), i, s)
    {
        const char *js = str(s, "job_state");
        if (strcmp(str(s, "state"), "submitted") != 0 || osp_job_state_name_is_final(js)) {
            continue;
        }
        struct osp_cancel_result r;
        struct osp_err e = {0, ""};
        rc = osp_op_cancel(o, str(s, "job_id"), &r, &e);
        if (rc != 0 && rc != OSP_ECONFLICT) { /* ECONFLICT: it ended meanwhile */
            json_decref(c);
            return osp_err_set(err, rc, "campaign %s: step %s: %s", id, str(s, "step"), e.msg);
        }
    }
    json_decref(c);
    bool finished;
    return osp_op_campaign_advance(o, pol, id, &finished, err);
}

json_t *osp_op_campaign_get(const struct osp_ops *o, const char *id, struct osp_err *err)
{
    if (!osp_id_is_valid(id)) {
        osp_err_set(err, OSP_EINVAL, "not a campaign id: %.64s", id);
        return NULL;
    }
    return osp_ledger_campaign_get(o->pg, id, err);
}

json_t *osp_op_campaigns(const struct osp_ops *o, int limit, struct osp_err *err)
{
    if (limit < 1 || limit > 1000) {
        osp_err_set(err, OSP_EINVAL, "limit: 1..1000");
        return NULL;
    }
    return osp_ledger_campaigns(o->pg, limit, err);
}

int osp_op_campaigns_advance_all(const struct osp_ops *o, const struct osp_submit_policy *pol,
                                 int max, int *finished, struct osp_err *err)
{
    *finished = 0;
    json_t *ids = osp_ledger_campaigns_active(o->pg, max, err);
    if (ids == NULL) {
        return err->code != 0 ? err->code : OSP_EPG;
    }
    int rc = 0;
    size_t i;
    json_t *r;
    json_array_foreach(ids, i, r)
    {
        bool done = false;
        rc = osp_op_campaign_advance(o, pol, str(r, "id"), &done, err);
        if (rc != 0) {
            break;
        }
        *finished += done ? 1 : 0;
    }
    json_decref(ids);
    return rc;
}
