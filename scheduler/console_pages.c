/* SPDX-License-Identifier: MIT */
/* console_pages.c — the web console's pages and actions (docs/console.md): overview, jobs,
 * job detail with cancel and retry, dead letters with retry and purge. Each reads through the
 * functions the API reads through (osp_rqs_stats, osp_op_jobs, osp_ledger_get_job, the dead
 * list) and changes things only through common/ops.h, so a click does exactly what the API
 * call does. console.c checked the session, the CSRF token, the scope, the path parameters
 * and the query's names before any of these runs; values are checked here. */
#include "common/alloc.h"
#include "common/base.h"
#include "common/cron.h"
#include "common/envelope.h"
#include "common/jobstate.h"
#include "common/ops.h"
#include "jobs/job.h"
#include "scheduler/api.h"
#include "scheduler/console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ui_overview_query[] = {NULL};
const char *const ui_jobs_query[] = {"kind",   "state", "before",          "limit", "id",
                                     "target", "since", "idempotency_key", NULL};
const char *const ui_job_query[] = {"done", NULL};
const char *const ui_dead_query[] = {"kind", "done", "n", NULL};

/* The operation context of a console request (who acts, via "console"), or false after
 * replying 503. */
bool ui_ops(struct ui_ctx *c, struct osp_ops *o)
{
    *o = sched_ops(c->s, sched_pg(c->s), c->who, "console");
    if (o->pg == NULL) {
        ui_error(c, 503, "postgresql unavailable");
        return false;
    }
    return true;
}

const char *ui_jstr(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

/* A JSON value as text: strings as they are, numbers, null as "". */
void ui_value(struct osp_buf *out, const json_t *v)
{
    if (json_is_string(v)) {
        ui_esc(out, json_string_value(v));
    } else if (json_is_integer(v)) {
        osp_buf_appendf(out, "%lld", (long long)json_integer_value(v));
    } else if (v != NULL && !json_is_null(v)) {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        ui_esc(out, t);
        free(t);
    }
}

void ui_state_badge(struct osp_buf *out, const char *state)
{
    enum osp_job_state st;
    if (osp_job_state_parse(state, &st) == 0) {
        osp_buf_appendf(out, "<span class=\"state state-%s\">%s</span>", osp_job_state_name(st),
                        osp_job_state_name(st));
    } else {
        ui_esc(out, state);
    }
}

void ui_job_link(struct osp_buf *out, const char *id)
{
    if (id == NULL || !osp_id_is_valid(id)) {
        ui_esc(out, id);
        return;
    }
    osp_buf_appendf(out, "<a class=\"mono\" href=\"/ui/jobs/%s\">%s</a>", id, id);
}

void ui_age(struct osp_buf *out, double s)
{
    if (s < 90) {
        osp_buf_appendf(out, "%.0f s", s);
    } else if (s < 5400) {
        osp_buf_appendf(out, "%.0f min", s / 60);
    } else if (s < 172800) {
        osp_buf_appendf(out, "%.1f h", s / 3600);
    } else {
        osp_buf_appendf(out, "%.1f d", s / 86400);
    }
}

void ui_done_note(struct ui_ctx *c, long n)
{
    static const char *const notes[][2] = {
        {"cancel", "Cancelled."},
        {"cancel_requested", "Cancel requested: the worker stops the running attempt."},
        {"retry", "Queued again."},
        {"retried", "Dead jobs retried: "},
        {"purged", "Dead records purged: "},
        {"triggered", "Triggered: its job is queued."},
        {"triggered_campaign", "Triggered: its campaign is running."},
        {"enabled", "Enabled: it fires from its next tick."},
        {"disabled", "Disabled: it no longer fires."},
        {"campaign_cancel", "Campaign cancelled: its pending steps are skipped, its running "
                            "jobs stopped."},
    };
    const char *done = osp_http_query(c->req, "done");
    for (size_t i = 0; done != NULL && i < OSP_ARRAY_LEN(notes); i++) {
        if (strcmp(done, notes[i][0]) == 0) {
            osp_buf_appendf(c->out, "<p class=\"note\" role=\"status\">%s", notes[i][1]);
            if (n >= 0 && (strcmp(done, "retried") == 0 || strcmp(done, "purged") == 0)) {
                osp_buf_appendf(c->out, "%ld", n);
            }
            ui_raw(c->out, "</p>");
        }
    }
}

/* ---- Overview ---- */

static void overview_workers(struct ui_ctx *c)
{
    struct osp_err err = {0, ""};
    json_t *z = osp_rqs_worker_list(c->s->rqs, &err);
    if (z == NULL) {
        sched_redis_failed(c->s, &err);
        ui_raw(c->out, "<p class=\"error\">workers: ");
        ui_esc(c->out, err.msg);
        ui_raw(c->out, "</p>");
        return;
    }
    int64_t now = osp_now_ms();
    osp_buf_appendf(c->out, "<h2>Workers (%zu)</h2>", json_array_size(z));
    if (json_array_size(z) == 0) {
        ui_raw(c->out, "<p class=\"muted\">No worker registered.</p>");
        json_decref(z);
        return;
    }
    ui_raw(c->out, "<div class=\"scroll\"><table id=\"workers\"><thead><tr><th>Worker</th>"
                   "<th>Kinds</th><th class=\"num\">Slots busy</th><th class=\"num\">Last "
                   "beat</th></tr></thead><tbody>");
    for (size_t i = 0; i < json_array_size(z) && i < 500; i++) {
        const char *id = json_string_value(json_array_get(json_array_get(z, i), 0));
        int64_t hb = (int64_t)json_integer_value(json_array_get(json_array_get(z, i), 1));
        json_t *f = osp_rqs_worker_hash(c->s->rqs, id != NULL ? id : "", &err);
        ui_raw(c->out, "<tr><td class=\"mono\">");
        ui_esc(c->out, id);
        ui_raw(c->out, "</td><td class=\"wrap\">");
        ui_esc(c->out, ui_jstr(f, "kinds"));
        ui_raw(c->out, "</td><td class=\"num\">");
        ui_esc(c->out, ui_jstr(f, "busy")[0] ? ui_jstr(f, "busy") : "0");
        ui_raw(c->out, " / ");
        ui_esc(c->out, ui_jstr(f, "slots")[0] ? ui_jstr(f, "slots") : "?");
        ui_raw(c->out, "</td><td class=\"num\">");
        ui_age(c->out, now > hb ? (double)(now - hb) / 1000.0 : 0.0);
        ui_raw(c->out, " ago</td></tr>");
        json_decref(f);
    }
    ui_raw(c->out, "</tbody></table></div>");
    json_decref(z);
}

void ui_overview(struct ui_ctx *c)
{
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (!ui_ops(c, &o)) {
        return;
    }
    json_t *rate = osp_op_finished_counts(&o, 60, &err);
    ui_page_begin(c, "Overview", "overview", 5);
    ui_raw(c->out, "<h1>Overview</h1><div class=\"scroll\"><table id=\"queues\"><thead><tr>"
                   "<th>Kind</th><th class=\"num\">Pending</th><th class=\"num\">Running</th>"
                   "<th class=\"num\">Waiting</th><th class=\"num\">Delayed</th>"
                   "<th class=\"num\">Dead</th><th>Paused</th><th class=\"num\">Done/min</th>"
                   "<th class=\"num\">Oldest</th></tr></thead><tbody>");
    const struct job_kind *const *all = job_kinds_all();
    int64_t now = osp_now_ms();
    for (size_t i = 0; all[i] != NULL; i++) {
        struct osp_rq_stats st;
        if (osp_rqs_stats(c->s->rqs, all[i]->name, &st, &err) != 0) {
            sched_redis_failed(c->s, &err);
            json_decref(rate);
            ui_error(c, 503, "redis: %s", err.msg);
            return;
        }
        double age = st.oldest_pending_ms > 0 && now > st.oldest_pending_ms
                         ? (double)(now - st.oldest_pending_ms) / 1000.0
                         : 0.0;
        /* Kind names are [a-z0-9_-]: safe in markup and URLs. */
        osp_buf_appendf(c->out,
                        "<tr data-kind=\"%s\"><td><a href=\"/ui/jobs?kind=%s\">%s</a></td>"
                        "<td class=\"num\" data-f=\"pending\">%lld</td>"
                        "<td class=\"num\" data-f=\"running\">%lld</td>"
                        "<td class=\"num\" data-f=\"waiting\">%lld</td>"
                        "<td class=\"num\" data-f=\"delayed\">%lld</td>"
                        "<td class=\"num\" data-f=\"dead\"><a href=\"/ui/dead?kind=%s\">%lld</a>"
                        "</td><td data-f=\"paused\">%s</td><td class=\"num\" data-f=\"rate\">"
                        "%lld</td><td class=\"num\" data-f=\"oldest\">",
                        all[i]->name, all[i]->name, all[i]->name, (long long)st.pending,
                        (long long)st.running, (long long)st.waiting, (long long)st.delayed,
                        all[i]->name, (long long)st.dead, st.paused ? "paused" : "no",
                        (long long)json_integer_value(json_object_get(rate, all[i]->name)));
        if (age > 0) {
            ui_age(c->out, age);
        } else {
            ui_raw(c->out, "-");
        }
        ui_raw(c->out, "</td></tr>");
    }
    ui_raw(c->out, "</tbody></table></div>");
    json_decref(rate);
    overview_workers(c);
    ui_page_end(c, 200);
}

/* ---- Jobs ---- */

static void kind_options(struct ui_ctx *c, const char *sel)
{
    const struct job_kind *const *all = job_kinds_all();
    ui_raw(c->out, "<option value=\"\">any</option>");
    for (size_t i = 0; all[i] != NULL; i++) {
        osp_buf_appendf(c->out, "<option%s>%s</option>",
                        sel != NULL && strcmp(sel, all[i]->name) == 0 ? " selected" : "",
                        all[i]->name);
    }
}

/* Append v percent-encoded for a query string (unreserved bytes as they are). */
static void url_value(struct osp_buf *out, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            osp_buf_appendf(out, "%c", *p);
        } else {
            osp_buf_appendf(out, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
        }
    }
}

#define UI_SINCE_MAX_S (366LL * 86400) /* since: at most a year back */

/* A duration "<n><s|m|h|d>" (e.g. 90m, 1h, 7d) as milliseconds, 1 s .. UI_SINCE_MAX_S;
 * -1 when malformed or out of range. */
static int64_t since_parse(const char *v)
{
    size_t n = strlen(v);
    if (n < 2 || n > 12) {
        return -1;
    }
    int64_t x = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return -1;
        }
        x = x * 10 + (v[i] - '0');
    }
    int64_t unit;
    switch (v[n - 1]) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return -1;
    }
    if (x < 1 || x > UI_SINCE_MAX_S / unit) {
        return -1;
    }
    return x * unit * 1000;
}

void ui_jobs(struct ui_ctx *c)
{
    const char *kind = osp_http_query(c->req, "kind");
    const char *state = osp_http_query(c->req, "state");
    const char *before = osp_http_query(c->req, "before");
    const char *limit_s = osp_http_query(c->req, "limit");
    const char *find = osp_http_query(c->req, "id");
    const char *target = osp_http_query(c->req, "target");
    const char *since = osp_http_query(c->req, "since");
    const char *idem = osp_http_query(c->req, "idempotency_key");
    target = target != NULL && target[0] != '\0' ? target : NULL;
    since = since != NULL && since[0] != '\0' ? since : NULL;
    idem = idem != NULL && idem[0] != '\0' ? idem : NULL;
    kind = kind != NULL && kind[0] != '\0' ? kind : NULL;
    state = state != NULL && state[0] != '\0' ? state : NULL;
    before = before != NULL && before[0] != '\0' ? before : NULL;
    if (find != NULL && find[0] != '\0') {
        if (!osp_id_is_valid(find)) {
            ui_error(c, 400, "find by id: expected a job id (a UUID)");
            return;
        }
        char loc[64];
        snprintf(loc, sizeof(loc), "/ui/jobs/%s", find);
        ui_redirect(c->resp, loc);
        return;
    }
    if (kind != NULL && api_kind_or_reply(kind, c->resp) == NULL) {
        return;
    }
    enum osp_job_state st;
    if (state != NULL && osp_job_state_parse(state, &st) != 0) {
        ui_error(c, 400, "state: one of %s", osp_job_states_text());
        return;
    }
    long limit = UI_JOBS_DEFAULT;
    if (limit_s != NULL) {
        char *end = NULL;
        limit = strtol(limit_s, &end, 10);
        if (limit_s[0] == '\0' || *end != '\0' || limit < 1 || limit > API_LIST_MAX) {
            ui_error(c, 400, "limit: an integer 1..%d", API_LIST_MAX);
            return;
        }
    }
    if (before != NULL && !osp_id_is_valid(before)) {
        ui_error(c, 400, "before: a job id");
        return;
    }
    if (target != NULL && !osp_name_is_valid(target, OSP_JOB_TARGET_MAX)) {
        ui_error(c, 400, "target: a target name, [a-z0-9_-]{1,64}");
        return;
    }
    if (idem != NULL && strnlen(idem, OSP_SUBMIT_TEXT_MAX + 1) > OSP_SUBMIT_TEXT_MAX) {
        ui_error(c, 400, "idempotency_key: at most %d bytes", OSP_SUBMIT_TEXT_MAX);
        return;
    }
    int64_t since_ms = since != NULL ? since_parse(since) : 0;
    if (since_ms < 0) {
        ui_error(c, 400, "since: a duration 1s..366d such as 90m, 1h or 7d");
        return;
    }
    char states[32] = "";
    if (state != NULL) {
        snprintf(states, sizeof(states), "{%s}", osp_job_state_name(st));
    }
    struct osp_job_filter f = {.kind = kind,
                               .states = state != NULL ? states : NULL,
                               .since_ms = since_ms,
                               .before_id = before,
                               .limit = (int)limit,
                               .target = target,
                               .idempotency_key = idem};
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (!ui_ops(c, &o)) {
        return;
    }
    json_t *rows = osp_op_jobs(&o, &f, &err);
    if (rows == NULL) {
        api_reply_op_error(c->s, c->resp, err.code != 0 ? err.code : OSP_EPG, &err);
        return;
    }
    ui_page_begin(c, "Jobs", "jobs", 0);
    ui_raw(c->out, "<h1>Jobs</h1><form class=\"filters\" method=\"get\" action=\"/ui/jobs\">"
                   "<label>Kind<select name=\"kind\">");
    kind_options(c, kind);
    ui_raw(c->out, "</select></label><label>State<select name=\"state\"><option "
                   "value=\"\">any</option>");
    for (int i = 0; i < OSP_JOB_NSTATES; i++) {
        const char *n = osp_job_state_name((enum osp_job_state)i);
        osp_buf_appendf(c->out, "<option%s>%s</option>",
                        state != NULL && (int)st == i ? " selected" : "", n);
    }
    ui_raw(c->out, "</select></label><label>Target<input name=\"target\" size=\"16\" "
                   "maxlength=\"64\" value=\"");
    ui_esc(c->out, target);
    ui_raw(c->out, "\"></label><label>Created within<input name=\"since\" size=\"6\" "
                   "maxlength=\"12\" placeholder=\"1h, 7d\" value=\"");
    ui_esc(c->out, since);
    ui_raw(c->out, "\"></label><label>Idempotency key<input name=\"idempotency_key\" "
                   "size=\"24\" maxlength=\"200\" value=\"");
    ui_esc(c->out, idem);
    ui_raw(c->out, "\"></label><button type=\"submit\">Filter</button></form>"
                   "<form class=\"filters\" method=\"get\" action=\"/ui/jobs\"><label>Find by "
                   "id<input name=\"id\" size=\"38\" maxlength=\"36\" "
                   "placeholder=\"0190f2a4-1b2c-7d3e-8f40-123456789abc\"></label>"
                   "<button type=\"submit\">Find</button></form>");
    if (json_array_size(rows) == 0) {
        ui_raw(c->out, "<p class=\"muted\" id=\"no-jobs\">No job matches.</p>");
    } else {
        ui_raw(c->out, "<div class=\"scroll\"><table id=\"jobs\"><thead><tr><th>Id</th>"
                       "<th>Kind</th><th>State</th><th class=\"num\">Attempt</th>"
                       "<th>Created</th><th>Finished</th><th>Error</th></tr></thead><tbody>");
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            ui_raw(c->out, "<tr><td>");
            ui_job_link(c->out, ui_jstr(row, "id"));
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(row, "kind"));
            ui_raw(c->out, "</td><td>");
            ui_state_badge(c->out, ui_jstr(row, "state"));
            ui_raw(c->out, "</td><td class=\"num\">");
            ui_value(c->out, json_object_get(row, "attempt"));
            ui_raw(c->out, " / ");
            ui_value(c->out, json_object_get(row, "max_attempts"));
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(row, "created_at"));
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(row, "finished_at"));
            ui_raw(c->out, "</td><td class=\"wrap\">");
            const char *e = ui_jstr(row, "error");
            ui_escn(c->out, e, strlen(e) > 200 ? 200 : strlen(e));
            ui_raw(c->out, "</td></tr>");
        }
        ui_raw(c->out, "</tbody></table></div>");
    }
    if (json_array_size(rows) == (size_t)limit) {
        const char *last = ui_jstr(json_array_get(rows, json_array_size(rows) - 1), "id");
        ui_raw(c->out, "<p class=\"actions\"><a id=\"older\" href=\"/ui/jobs?");
        if (kind != NULL) {
            osp_buf_appendf(c->out, "kind=%s&amp;", kind); /* a known kind's name */
        }
        if (state != NULL) {
            osp_buf_appendf(c->out, "state=%s&amp;", osp_job_state_name(st));
        }
        if (target != NULL) {
            osp_buf_appendf(c->out, "target=%s&amp;", target); /* a checked name */
        }
        if (since != NULL) {
            osp_buf_appendf(c->out, "since=%s&amp;", since); /* digits and a unit */
        }
        if (idem != NULL) {
            ui_raw(c->out, "idempotency_key=");
            url_value(c->out, idem); /* percent-encoded: no markup can remain */
            ui_raw(c->out, "&amp;");
        }
        osp_buf_appendf(c->out, "limit=%ld&amp;before=", limit);
        ui_esc(c->out, last);
        ui_raw(c->out, "\">Older jobs →</a></p>");
    }
    json_decref(rows);
    ui_page_end(c, 200);
}

/* ---- Job detail ---- */

/* Pretty JSON of v, escaped, at most UI_JSON_MAX bytes shown. */
static void json_block(struct osp_buf *out, const char *id, const json_t *v)
{
    osp_buf_appendf(out, "<pre id=\"%s\">", id);
    if (v == NULL || json_is_null(v)) {
        ui_raw(out, "null");
    } else {
        char *t = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_SORT_KEYS);
        size_t n = t != NULL ? strlen(t) : 0;
        ui_escn(out, t != NULL ? t : "", n > UI_JSON_MAX ? UI_JSON_MAX : n);
        if (n > UI_JSON_MAX) {
            osp_buf_appendf(out, "\n… (%zu bytes, first %d shown; GET /v1/jobs/{id} has all)", n,
                            UI_JSON_MAX);
        }
        free(t);
    }
    ui_raw(out, "</pre>");
}

static void kv(struct osp_buf *out, const char *name, const json_t *job, const char *field)
{
    osp_buf_appendf(out, "<dt>%s</dt><dd data-f=\"%s\">", name, field);
    ui_value(out, json_object_get(job, field));
    ui_raw(out, "</dd>");
}

void ui_job(struct ui_ctx *c)
{
    const char *id = c->req->params[0];
    struct osp_pgs *pg = sched_pg(c->s);
    struct osp_err err = {0, ""};
    if (pg == NULL) {
        ui_error(c, 503, "postgresql unavailable");
        return;
    }
    json_t *job = osp_ledger_get_job(pg, id, &err);
    if (job == NULL) {
        if (err.code == OSP_ENOTFOUND) {
            ui_error(c, 404, "no job %s", id);
        } else {
            sched_pg_failed(c->s, &err);
            ui_error(c, 503, "%s", err.msg);
        }
        return;
    }
    const char *state = ui_jstr(job, "state");
    ui_page_begin(c, "Job", "jobs", 0);
    ui_raw(c->out, "<h1>Job <span class=\"mono\">");
    ui_esc(c->out, id);
    ui_raw(c->out, "</span></h1>");
    ui_done_note(c, -1);
    ui_raw(c->out, "<dl class=\"kv\"><dt>State</dt><dd data-f=\"state\">");
    ui_state_badge(c->out, state);
    ui_raw(c->out, "</dd>");
    kv(c->out, "Kind", job, "kind");
    kv(c->out, "Attempt", job, "attempt");
    kv(c->out, "Max attempts", job, "max_attempts");
    kv(c->out, "Recoveries", job, "recoveries");
    kv(c->out, "Worker", job, "worker");
    kv(c->out, "Created", job, "created_at");
    kv(c->out, "Run at", job, "run_at");
    kv(c->out, "Started", job, "started_at");
    kv(c->out, "Finished", job, "finished_at");
    kv(c->out, "Submitted by", job, "submitted_by");
    kv(c->out, "Schedule", job, "schedule");
    kv(c->out, "Idempotency key", job, "idempotency_key");
    kv(c->out, "Error", job, "error");
    ui_raw(c->out, "</dl>");
    enum osp_job_state st;
    bool known = osp_job_state_parse(state, &st) == 0;
    bool can_cancel = known && !osp_job_state_is_final(st);
    bool can_retry = known && (st == OSP_JOB_DEAD || st == OSP_JOB_CANCELLED);
    if (c->operate && (can_cancel || can_retry)) {
        ui_raw(c->out, "<div class=\"actions\">");
        if (can_cancel) {
            osp_buf_appendf(c->out,
                            "<form class=\"inline\" method=\"post\" "
                            "action=\"/ui/jobs/%s/cancel\">",
                            id);
            ui_csrf_input(c);
            ui_raw(c->out, "<button id=\"cancel\" class=\"danger\" type=\"submit\">Cancel"
                           "</button></form>");
        }
        if (can_retry) {
            osp_buf_appendf(c->out,
                            "<form class=\"inline\" method=\"post\" "
                            "action=\"/ui/jobs/%s/retry\">",
                            id);
            ui_csrf_input(c);
            ui_raw(c->out, "<button id=\"retry\" class=\"primary\" type=\"submit\">Retry"
                           "</button></form>");
        }
        ui_raw(c->out, "</div>");
    }
    ui_job_evidence(c, id, job);
    ui_raw(c->out, "<h2>Payload</h2>");
    json_block(c->out, "payload", json_object_get(job, "payload"));
    ui_raw(c->out, "<h2>Result</h2>");
    json_block(c->out, "result", json_object_get(job, "result"));
    json_t *attempts = json_object_get(job, "attempts");
    osp_buf_appendf(c->out, "<h2>Attempts (%zu)</h2>", json_array_size(attempts));
    if (json_array_size(attempts) > 0) {
        ui_raw(c->out, "<div class=\"scroll\"><table id=\"attempts\"><thead><tr><th "
                       "class=\"num\">#</th><th>Outcome</th><th>Worker</th><th>Started</th>"
                       "<th>Finished</th><th>Error</th></tr></thead><tbody>");
        size_t i;
        json_t *a;
        json_array_foreach(attempts, i, a)
        {
            if (i >= UI_EVENTS_MAX) {
                break;
            }
            ui_raw(c->out, "<tr><td class=\"num\">");
            ui_value(c->out, json_object_get(a, "attempt"));
            ui_raw(c->out, "</td><td>");
            ui_value(c->out, json_object_get(a, "outcome"));
            ui_raw(c->out, "</td><td class=\"mono\">");
            ui_value(c->out, json_object_get(a, "worker"));
            ui_raw(c->out, "</td><td>");
            ui_value(c->out, json_object_get(a, "started_at"));
            ui_raw(c->out, "</td><td>");
            ui_value(c->out, json_object_get(a, "finished_at"));
            ui_raw(c->out, "</td><td class=\"wrap\">");
            const char *e = ui_jstr(a, "error");
            ui_escn(c->out, e, strlen(e) > 300 ? 300 : strlen(e));
            ui_raw(c->out, "</td></tr>");
        }
        ui_raw(c->out, "</tbody></table></div>");
    }
    json_t *events = json_object_get(job, "events");
    size_t nev = json_array_size(events);
    osp_buf_appendf(c->out, "<h2>Events (%zu)</h2>", nev);
    if (nev > 0) {
        ui_raw(c->out, "<div class=\"scroll\"><table id=\"events\"><thead><tr><th>Time</th>"
                       "<th class=\"num\">Attempt</th><th>Type</th><th>Data</th></tr></thead>"
                       "<tbody>");
        /* The latest UI_EVENTS_MAX, oldest first. */
        for (size_t i = nev > UI_EVENTS_MAX ? nev - UI_EVENTS_MAX : 0; i < nev; i++) {
            json_t *e = json_array_get(events, i);
            ui_raw(c->out, "<tr><td>");
            ui_value(c->out, json_object_get(e, "ts"));
            ui_raw(c->out, "</td><td class=\"num\">");
            ui_value(c->out, json_object_get(e, "attempt"));
            ui_raw(c->out, "</td><td>");
            ui_value(c->out, json_object_get(e, "type"));
            ui_raw(c->out, "</td><td class=\"wrap mono\">");
            char *d = json_dumps(json_object_get(e, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
            size_t dn = d != NULL ? strlen(d) : 0;
            ui_escn(c->out, d != NULL ? d : "", dn > 400 ? 400 : dn);
            ui_raw(c->out, dn > 400 ? "…" : "");
            free(d);
            ui_raw(c->out, "</td></tr>");
        }
        ui_raw(c->out, "</tbody></table></div>");
        if (nev > UI_EVENTS_MAX) {
            osp_buf_appendf(c->out, "<p class=\"muted\">The latest %d of %zu events.</p>",
                            UI_EVENTS_MAX, nev);
        }
    }
    json_decref(job);
    ui_page_end(c, 200);
}

void ui_job_cancel(struct ui_ctx *c)
{
    const char *id = c->req->params[0];
    struct osp_ops o;
    struct osp_cancel_result r;
    struct osp_err err = {0, ""};
    if (!ui_ops(c, &o)) {
        return;
    }
    int rc = osp_op_cancel(&o, id, &r, &err);
    if (rc != 0) {
        api_reply_op_error(c->s, c->resp, rc, &err);
        return;
    }
    api_audit_log(c->s, "job.cancel", r.kind, id, r.prev);
    char loc[96];
    snprintf(loc, sizeof(loc), "/ui/jobs/%s?done=%s", id,
             r.outcome == OSP_CANCEL_REQUESTED ? "cancel_requested" : "cancel");
    ui_redirect(c->resp, loc);
}

void ui_job_retry(struct ui_ctx *c)
{
    const char *id = c->req->params[0];
    struct osp_ops o;
    struct osp_retry_result r;
    struct osp_err err = {0, ""};
    if (!ui_ops(c, &o)) {
        return;
    }
    int rc = osp_op_retry(&o, id, NULL, 0, &r, &err);
    if (rc != 0) {
        api_reply_op_error(c->s, c->resp, rc, &err);
        return;
    }
    api_audit_log(c->s, "job.retry", r.kind, id, r.prev);
    char loc[96];
    snprintf(loc, sizeof(loc), "/ui/jobs/%s?done=retry", id);
    ui_redirect(c->resp, loc);
}

/* ---- Dead letters ---- */

static void dead_records(struct ui_ctx *c, const char *kind, int64_t total)
{
    struct osp_err err = {0, ""};
    json_t *items = osp_rqs_dead_range(c->s->rqs, kind, 0, UI_DEAD_SHOWN - 1, &err);
    if (items == NULL) {
        sched_redis_failed(c->s, &err);
        ui_raw(c->out, "<p class=\"error\">");
        ui_esc(c->out, err.msg);
        ui_raw(c->out, "</p>");
        return;
    }
    osp_buf_appendf(c->out, "<h2>Dead %s jobs: %lld</h2>", kind, (long long)total);
    if (json_array_size(items) == 0) {
        ui_raw(c->out, "<p class=\"muted\" id=\"no-dead\">No dead job of this kind.</p>");
        json_decref(items);
        return;
    }
    if (c->operate) {
        osp_buf_appendf(c->out,
                        "<form id=\"dead-form\" method=\"post\" "
                        "action=\"/ui/dead/%s/retry\">",
                        kind);
        ui_csrf_input(c);
    }
    ui_raw(c->out, "<div class=\"scroll\"><table id=\"dead\"><thead><tr>");
    if (c->operate) {
        ui_raw(c->out, "<th><input type=\"checkbox\" id=\"select-all\" aria-label=\"select "
                       "all\"></th>");
    }
    ui_raw(c->out, "<th>Job</th><th>Failed</th><th>Reason</th></tr></thead><tbody>");
    int64_t now = osp_now_ms();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        struct osp_dead d;
        memset(&d, 0, sizeof(d));
        bool okd = osp_dead_decode(json_string_value(it), json_string_length(it), &d, &err) == 0;
        ui_raw(c->out, "<tr>");
        if (c->operate) {
            ui_raw(c->out, "<td>");
            if (okd && osp_id_is_valid(d.job_id)) {
                osp_buf_appendf(c->out,
                                "<input type=\"checkbox\" name=\"ids\" value=\"%s\" "
                                "aria-label=\"select %s\">",
                                d.job_id, d.job_id);
            }
            ui_raw(c->out, "</td>");
        }
        ui_raw(c->out, "<td>");
        if (okd) {
            ui_job_link(c->out, d.job_id);
            ui_raw(c->out, "</td><td>");
            ui_age(c->out, now > d.failed_at_ms ? (double)(now - d.failed_at_ms) / 1000.0 : 0);
            ui_raw(c->out, " ago</td><td class=\"wrap\">");
            ui_esc(c->out, d.reason);
        } else {
            ui_raw(c->out, "?</td><td></td><td class=\"wrap\">undecodable dead record: ");
            ui_esc(c->out, err.msg);
        }
        ui_raw(c->out, "</td></tr>");
        osp_dead_deinit(&d);
    }
    ui_raw(c->out, "</tbody></table></div>");
    if (total > (int64_t)json_array_size(items)) {
        osp_buf_appendf(c->out, "<p class=\"muted\">The newest %zu of %lld.</p>",
                        json_array_size(items), (long long)total);
    }
    if (c->operate) {
        osp_buf_appendf(c->out,
                        "<div class=\"actions\">"
                        "<button id=\"retry-selected\" type=\"submit\" name=\"what\" "
                        "value=\"selected\">Retry selected</button>"
                        "<button id=\"retry-all\" type=\"submit\" name=\"what\" "
                        "value=\"all\">Retry all</button>"
                        "<button id=\"purge-selected\" class=\"danger\" type=\"submit\" "
                        "name=\"what\" value=\"selected\" formaction=\"/ui/dead/%s/purge\">"
                        "Purge selected…</button>"
                        "<button id=\"purge-all\" class=\"danger\" type=\"submit\" name=\"what\" "
                        "value=\"all\" formaction=\"/ui/dead/%s/purge\">Purge all…</button>"
                        "</div></form>",
                        kind, kind);
    }
    json_decref(items);
}

void ui_dead(struct ui_ctx *c)
{
    const char *kind = osp_http_query(c->req, "kind");
    const char *n_s = osp_http_query(c->req, "n");
    kind = kind != NULL && kind[0] != '\0' ? kind : NULL;
    if (kind != NULL && api_kind_or_reply(kind, c->resp) == NULL) {
        return;
    }
    long n = -1;
    if (n_s != NULL) {
        char *end = NULL;
        n = strtol(n_s, &end, 10);
        if (n_s[0] == '\0' || *end != '\0' || n < 0 || n > 1000000) {
            ui_error(c, 400, "n: an integer 0..1000000");
            return;
        }
    }
    ui_page_begin(c, "Dead letters", "dead", 0);
    ui_raw(c->out, "<h1>Dead letters</h1>");
    ui_done_note(c, n);
    ui_raw(c->out, "<div class=\"scroll\"><table id=\"dead-kinds\"><thead><tr><th>Kind</th>"
                   "<th class=\"num\">Dead</th></tr></thead><tbody>");
    const struct job_kind *const *all = job_kinds_all();
    int64_t sel_total = 0;
    for (size_t i = 0; all[i] != NULL; i++) {
        int64_t dead = 0;
        struct osp_err err = {0, ""};
        if (osp_rqs_lengths(c->s->rqs, all[i]->name, NULL, NULL, &dead, &err) != 0) {
            sched_redis_failed(c->s, &err);
            ui_error(c, 503, "redis: %s", err.msg);
            return;
        }
        if (kind == NULL && dead > 0) {
            kind = all[i]->name; /* the first kind with dead jobs */
        }
        if (kind != NULL && strcmp(kind, all[i]->name) == 0) {
            sel_total = dead;
        }
        osp_buf_appendf(c->out,
                        "<tr data-kind=\"%s\"><td><a href=\"/ui/dead?kind=%s\"%s>%s</a></td>"
                        "<td class=\"num\" data-f=\"dead\">%lld</td></tr>",
                        all[i]->name, all[i]->name,
                        kind != NULL && strcmp(kind, all[i]->name) == 0 ? " aria-current=\"true\""
                                                                        : "",
                        all[i]->name, (long long)dead);
    }
    ui_raw(c->out, "</tbody></table></div>");
    if (kind != NULL) {
        dead_records(c, kind, sel_total);
    }
    ui_page_end(c, 200);
}

/* The form's ids (checkboxes), as a JSON array (owned), or NULL after replying 400. */
static json_t *form_ids(struct ui_ctx *c)
{
    json_t *ids = json_array();
    char v[OSP_ID_LEN + 2];
    for (size_t i = 0;; i++) {
        int n = osp_http_form_value(c->req->body, c->req->body_len, "ids", i, v, sizeof(v));
        if (n == -1) {
            break;
        }
        if (n < 0 || !osp_id_is_valid(v) || i >= API_DEAD_MAX) {
            json_decref(ids);
            ui_error(c, 400, "ids: up to %d job ids", API_DEAD_MAX);
            return NULL;
        }
        json_array_append_new(ids, json_string(v));
    }
    return ids;
}

/* "what": selected (the ids) or all; -1 after replying 400. */
static int form_what(struct ui_ctx *c, bool *all)
{
    char what[16];
    int n = osp_http_form_value(c->req->body, c->req->body_len, "what", 0, what, sizeof(what));
    if (n < 0 || (strcmp(what, "all") != 0 && strcmp(what, "selected") != 0)) {
        ui_error(c, 400, "what: selected or all");
        return -1;
    }
    *all = strcmp(what, "all") == 0;
    return 0;
}

/* The dead-letter forms' common part: the kind from the path, "what" and the selected ids
 * (some when what=selected). NULL after replying 4xx. */
static json_t *dead_form(struct ui_ctx *c, const struct job_kind **k, bool *all)
{
    *all = false;
    *k = api_kind_or_reply(c->req->params[0], c->resp);
    if (*k == NULL || form_what(c, all) != 0) {
        return NULL;
    }
    json_t *ids = form_ids(c);
    if (ids != NULL && !*all && json_array_size(ids) == 0) {
        json_decref(ids);
        ui_error(c, 400, "no dead job selected");
        return NULL;
    }
    return ids;
}

void ui_dead_retry(struct ui_ctx *c)
{
    const struct job_kind *k;
    bool all;
    json_t *ids = dead_form(c, &k, &all);
    if (ids == NULL) {
        return;
    }
    struct osp_ops o;
    struct osp_err err = {0, ""};
    json_t *rep = NULL;
    if (!ui_ops(c, &o)) {
        json_decref(ids);
        return;
    }
    int rc = osp_op_dead_retry(&o, k->name, all ? NULL : ids, API_DEAD_MAX, 0, &rep, &err);
    json_decref(ids);
    size_t i;
    json_t *v;
    json_t *retried = json_object_get(rep, "retried");
    json_array_foreach(retried, i, v)
    {
        api_audit_log(c->s, "dead.retry", k->name, json_string_value(json_object_get(v, "id")),
                      NULL);
    }
    size_t n = json_array_size(retried);
    json_decref(rep);
    if (rc != 0) {
        api_reply_op_error(c->s, c->resp, rc, &err);
        return;
    }
    char loc[96];
    snprintf(loc, sizeof(loc), "/ui/dead?kind=%s&done=retried&n=%zu", k->name, n);
    ui_redirect(c->resp, loc);
}

/* Purge in two steps: without confirm=yes a page says how many records would go and asks;
 * with it, they go. */
void ui_dead_purge(struct ui_ctx *c)
{
    const struct job_kind *k;
    bool all;
    json_t *ids = dead_form(c, &k, &all);
    if (ids == NULL) {
        return;
    }
    char confirm[8] = "";
    bool go = osp_http_form_value(c->req->body, c->req->body_len, "confirm", 0, confirm,
                                  sizeof(confirm)) > 0 &&
              strcmp(confirm, "yes") == 0;
    struct osp_ops o;
    struct osp_err err = {0, ""};
    json_t *rep = NULL;
    if (!ui_ops(c, &o)) {
        json_decref(ids);
        return;
    }
    int rc = osp_op_dead_purge(&o, k->name, all ? NULL : ids, !go, &rep, &err);
    if (rc != 0) {
        json_decref(ids);
        json_decref(rep);
        api_reply_op_error(c->s, c->resp, rc, &err);
        return;
    }
    if (go) {
        api_audit_log(c->s, "dead.purge", k->name, NULL, NULL);
        char loc[96];
        snprintf(loc, sizeof(loc), "/ui/dead?kind=%s&done=purged&n=%lld", k->name,
                 (long long)json_integer_value(json_object_get(rep, "purged")));
        json_decref(ids);
        json_decref(rep);
        ui_redirect(c->resp, loc);
        return;
    }
    long long would = (long long)json_integer_value(json_object_get(rep, "would_purge"));
    ui_page_begin(c, "Confirm purge", "dead", 0);
    osp_buf_appendf(c->out,
                    "<h1>Purge dead %s jobs?</h1><p id=\"would-purge\">%lld dead record(s) "
                    "will be deleted for good; the ledger keeps the jobs as dead.</p>"
                    "<form method=\"post\" action=\"/ui/dead/%s/purge\">",
                    k->name, would, k->name);
    ui_csrf_input(c);
    osp_buf_appendf(c->out, "<input type=\"hidden\" name=\"what\" value=\"%s\">",
                    all ? "all" : "selected");
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        osp_buf_appendf(c->out, "<input type=\"hidden\" name=\"ids\" value=\"%s\">",
                        json_string_value(v)); /* checked ids */
    }
    osp_buf_appendf(c->out,
                    "<div class=\"actions\"><button id=\"confirm-purge\" class=\"danger\" "
                    "type=\"submit\" name=\"confirm\" value=\"yes\">Purge %lld</button>"
                    "<a href=\"/ui/dead?kind=%s\">Keep them</a></div></form>",
                    would, k->name);
    json_decref(ids);
    json_decref(rep);
    ui_page_end(c, 200);
}
