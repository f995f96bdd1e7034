/* SPDX-License-Identifier: MIT */
/* console_views.c — the web console's schedules, campaigns and benchmarks pages
 * (docs/console.md). Reads go through the functions the API reads through (osp_op_schedules,
 * osp_op_campaigns, osp_op_campaign_get, osp_op_bench_history) and the buttons call the
 * operations of POST /v1/schedules/{name}/trigger|enable|disable and POST
 * /v1/campaigns/{id}/cancel, audited the same way (via "console"). Next fire times are
 * computed with common/cron.h from the ledger's next tick, as the scheduler's cronfire does. */
#include "common/alloc.h"
#include "common/base.h"
#include "common/cron.h"
#include "common/envelope.h"
#include "common/ops.h"
#include "scheduler/api.h"
#include "scheduler/console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UI_NEXT_FIRES      5   /* next fire times on a schedule's page (3 in the list) */
#define UI_CAMPAIGNS_SHOWN 100 /* campaigns listed */
#define UI_BENCH_ROWS      600 /* history rows read for the benchmarks page */
#define UI_BENCH_TABLE     15  /* runs listed per series */
#define UI_BENCH_SERIES    24  /* series shown */

const char *const ui_schedules_query[] = {"done", NULL};
const char *const ui_campaigns_query[] = {NULL};
const char *const ui_benchmarks_query[] = {"target", "lane", NULL};

/* A state word as a badge: [a-z_ ] only reaches the class, anything else is escaped text. */
static void badge(struct osp_buf *out, const char *state)
{
    size_t n = strlen(state);
    bool plain = n > 0 && n < 32;
    for (size_t i = 0; i < n; i++) {
        plain = plain && ((state[i] >= 'a' && state[i] <= 'z') || state[i] == '_');
    }
    if (!plain) {
        ui_esc(out, state);
        return;
    }
    osp_buf_appendf(out, "<span class=\"state state-%s\">%s</span>", state, state);
}

/* ---- Schedules ---- */

static bool row_enabled(const json_t *row)
{
    const json_t *v = json_object_get(row, "enabled");
    return json_is_true(v) || (json_is_string(v) && strcmp(json_string_value(v), "true") == 0);
}

/* The next n fire times of a schedule in its zone: the ledger's next tick, then cron's. */
static void next_fires(struct osp_buf *out, const json_t *row, int n)
{
    if (!row_enabled(row)) {
        ui_raw(out, "<span class=\"muted\">disabled</span>");
        return;
    }
    const char *tz = ui_jstr(row, "timezone");
    struct osp_cron cr;
    struct osp_err err = {0, ""};
    int64_t t = 0, ms = 0;
    if (osp_cron_parse(&cr, ui_jstr(row, "cron"), &err) != 0) {
        ui_raw(out, "<span class=\"error\">");
        ui_esc(out, err.msg);
        ui_raw(out, "</span>");
        return;
    }
    if (osp_time_parse_rfc3339(ui_jstr(row, "next_fire_at"), &ms) == 0) {
        t = ms / 1000;
    } else if (osp_cron_next(&cr, tz, osp_now_ms() / 1000, &t, &err) != 0) {
        ui_raw(out, "<span class=\"muted\">none</span>");
        return;
    }
    ui_raw(out, "<ul class=\"fires\">");
    for (int i = 0; i < n; i++) {
        char txt[48];
        if (osp_time_format_zone(t, tz, txt) != 0) {
            break;
        }
        char iso[32];
        osp_time_format_rfc3339(t * 1000, iso);
        osp_buf_appendf(out, "<li><time datetime=\"%s\">", iso);
        ui_esc(out, txt);
        ui_raw(out, "</time></li>");
        if (osp_cron_next(&cr, tz, t, &t, &err) != 0) {
            break;
        }
    }
    ui_raw(out, "</ul>");
}

static void schedule_actions(struct ui_ctx *c, const json_t *row)
{
    if (!c->operate) {
        return;
    }
    const char *name = ui_jstr(row, "name");
    const char *acts[][3] = {
        {"trigger", "Trigger now", "primary"},
        {row_enabled(row) ? "disable" : "enable", row_enabled(row) ? "Disable" : "Enable", ""},
    };
    ui_raw(c->out, "<div class=\"actions\">");
    for (size_t i = 0; i < OSP_ARRAY_LEN(acts); i++) {
        ui_raw(c->out, "<form class=\"inline\" method=\"post\" action=\"/ui/schedules/");
        ui_esc(c->out, name);
        osp_buf_appendf(c->out, "/%s\">", acts[i][0]);
        ui_csrf_input(c);
        osp_buf_appendf(c->out,
                        "<button class=\"%s\" type=\"submit\" data-action=\"%s\">%s</button>"
                        "</form>",
                        acts[i][2], acts[i][0], acts[i][1]);
    }
    ui_raw(c->out, "</div>");
}

void ui_schedules(struct ui_ctx *c)
{
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (!ui_ops(c, &o)) {
        return;
    }
    json_t *rows = osp_op_schedules(&o, NULL, &err);
    if (rows == NULL) {
        api_reply_op_error(c->s, c->resp, err.code != 0 ? err.code : OSP_EPG, &err);
        return;
    }
    ui_page_begin(c, "Schedules", "schedules", 0);
    ui_raw(c->out, "<h1>Schedules</h1>");
    ui_done_note(c, -1);
    if (json_array_size(rows) == 0) {
        ui_raw(c->out, "<p class=\"muted\" id=\"no-schedules\">No schedule is defined "
                       "(<code>opspoolctl schedules apply</code>, <code>POST "
                       "/v1/schedules</code>).</p>");
    } else {
        ui_raw(c->out, "<div class=\"scroll\"><table id=\"schedules\"><thead><tr><th>Name</th>"
                       "<th>Cron</th><th>Zone</th><th>Kind</th><th>Enabled</th>"
                       "<th>Next fires (in its zone)</th><th>Last fire</th><th>Last outcome</th>"
                       "<th>Last tick</th>");
        ui_raw(c->out, c->operate ? "<th>Actions</th>" : "");
        ui_raw(c->out, "</tr></thead><tbody>");
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            const char *name = ui_jstr(row, "name");
            ui_raw(c->out, "<tr data-schedule=\"");
            ui_esc(c->out, name);
            ui_raw(c->out, "\"><td><a href=\"/ui/schedules/");
            ui_esc(c->out, name);
            ui_raw(c->out, "\">");
            ui_esc(c->out, name);
            ui_raw(c->out, "</a></td><td class=\"mono\">");
            ui_esc(c->out, ui_jstr(row, "cron"));
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(row, "timezone"));
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(row, "kind"));
            osp_buf_appendf(c->out, "</td><td data-f=\"enabled\">%s</td><td data-f=\"next\">",
                            row_enabled(row) ? "yes" : "no");
            next_fires(c->out, row, 3);
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(row, "last_fire_at"));
            ui_raw(c->out, "</td><td data-f=\"outcome\">");
            if (ui_jstr(row, "last_outcome")[0] != '\0') {
                badge(c->out, ui_jstr(row, "last_outcome"));
                ui_raw(c->out, " ");
                ui_job_link(c->out, ui_jstr(row, "latest_job_id"));
            }
            ui_raw(c->out, "</td><td class=\"wrap\">");
            ui_esc(c->out, ui_jstr(row, "last_tick"));
            if (ui_jstr(row, "last_tick_reason")[0] != '\0') {
                ui_raw(c->out, ": ");
                ui_esc(c->out, ui_jstr(row, "last_tick_reason"));
            }
            ui_raw(c->out, "</td>");
            if (c->operate) {
                ui_raw(c->out, "<td>");
                schedule_actions(c, row);
                ui_raw(c->out, "</td>");
            }
            ui_raw(c->out, "</tr>");
        }
        ui_raw(c->out, "</tbody></table></div>");
    }
    json_decref(rows);
    ui_page_end(c, 200);
}

/* The {name} parameter, or NULL after replying 400. */
static const char *schedule_name(struct ui_ctx *c)
{
    const char *name = c->req->params[0];
    if (!osp_schedule_name_is_valid(name)) {
        ui_error(c, 400, "invalid schedule name: expected [A-Za-z0-9_.-]{1,%d}",
                 OSP_SCHEDULE_NAME_MAX);
        return NULL;
    }
    return name;
}

static void kv_text(struct osp_buf *out, const char *dt, const char *field, const json_t *row)
{
    osp_buf_appendf(out, "<dt>%s</dt><dd data-f=\"%s\">", dt, field);
    ui_value(out, json_object_get(row, field));
    ui_raw(out, "</dd>");
}

void ui_schedule(struct ui_ctx *c)
{
    const char *name = schedule_name(c);
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (name == NULL || !ui_ops(c, &o)) {
        return;
    }
    json_t *row = osp_op_schedules(&o, name, &err);
    if (row == NULL) {
        api_reply_op_error(c->s, c->resp, err.code != 0 ? err.code : OSP_EPG, &err);
        return;
    }
    ui_page_begin(c, "Schedule", "schedules", 0);
    ui_raw(c->out, "<h1>Schedule <span class=\"mono\">");
    ui_esc(c->out, name);
    ui_raw(c->out, "</span></h1>");
    ui_done_note(c, -1);
    ui_raw(c->out, "<dl class=\"kv\">");
    kv_text(c->out, "Cron", "cron", row);
    kv_text(c->out, "Zone", "timezone", row);
    kv_text(c->out, "Kind", "kind", row);
    osp_buf_appendf(c->out, "<dt>Enabled</dt><dd data-f=\"enabled\">%s</dd>",
                    row_enabled(row) ? "yes" : "no");
    kv_text(c->out, "Concurrency", "concurrency", row);
    kv_text(c->out, "Catch-up (s)", "catchup_s", row);
    kv_text(c->out, "Last fire", "last_fire_at", row);
    kv_text(c->out, "Last success", "last_success_at", row);
    ui_raw(c->out, "<dt>Next fires</dt><dd data-f=\"next\">");
    next_fires(c->out, row, UI_NEXT_FIRES);
    ui_raw(c->out, "</dd></dl>");
    schedule_actions(c, row);
    ui_raw(c->out, "<h2>Payload</h2><pre id=\"payload\">");
    const char *p = ui_jstr(row, "payload");
    ui_escn(c->out, p, strlen(p) > UI_JSON_MAX ? UI_JSON_MAX : strlen(p));
    ui_raw(c->out, "</pre>");
    json_t *f = json_object_get(row, "firings");
    osp_buf_appendf(c->out, "<h2>Latest firings (%zu)</h2>", json_array_size(f));
    if (json_array_size(f) > 0) {
        ui_raw(c->out, "<div class=\"scroll\"><table id=\"firings\"><thead><tr><th>Tick</th>"
                       "<th>Status</th><th>Job</th><th>Outcome</th><th>Finished</th>"
                       "<th>Reason</th><th>Replica</th></tr></thead><tbody>");
        size_t i;
        json_t *x;
        json_array_foreach(f, i, x)
        {
            ui_raw(c->out, "<tr><td>");
            ui_esc(c->out, ui_jstr(x, "fire_at"));
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(x, "status"));
            ui_raw(c->out, "</td><td>");
            const char *jid = ui_jstr(x, "job_id");
            if (strcmp(ui_jstr(row, "kind"), OSP_CAMPAIGN_KIND) == 0 && osp_id_is_valid(jid)) {
                osp_buf_appendf(c->out, "<a class=\"mono\" href=\"/ui/campaigns/%s\">%s</a>", jid,
                                jid);
            } else {
                ui_job_link(c->out, jid);
            }
            ui_raw(c->out, "</td><td data-f=\"outcome\">");
            if (ui_jstr(x, "outcome")[0] != '\0') {
                badge(c->out, ui_jstr(x, "outcome"));
            }
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(x, "finished_at"));
            ui_raw(c->out, "</td><td class=\"wrap\">");
            ui_esc(c->out, ui_jstr(x, "reason"));
            ui_raw(c->out, "</td><td class=\"mono\">");
            ui_esc(c->out, ui_jstr(x, "replica"));
            ui_raw(c->out, "</td></tr>");
        }
        ui_raw(c->out, "</tbody></table></div>");
    }
    ui_raw(c->out, "<p class=\"muted\">A trigger submits the job now and is no tick: it leaves "
                   "no firing row.</p>");
    json_decref(row);
    ui_page_end(c, 200);
}

static void redirect_schedule(struct ui_ctx *c, const char *name, const char *done)
{
    char loc[160];
    snprintf(loc, sizeof(loc), "/ui/schedules/%s?done=%s", name, done);
    ui_redirect(c->resp, loc);
}

void ui_schedule_trigger(struct ui_ctx *c)
{
    const char *name = schedule_name(c);
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (name == NULL || !ui_ops(c, &o)) {
        return;
    }
    struct osp_submit_policy pol = sched_policy(c->s);
    char id[OSP_ID_LEN + 1] = "";
    bool campaign = false;
    int rc = osp_op_schedule_trigger(&o, &pol, name, id, &campaign, &err);
    if (rc != 0 && rc != OSP_EREDIS) {
        api_reply_op_error(c->s, c->resp, rc, &err);
        return;
    }
    if (rc == OSP_EREDIS) {
        sched_redis_failed(c->s, &err); /* stored in the ledger: the reconciler enqueues it */
    }
    api_audit_log(c->s, "schedule.trigger", name, id, NULL);
    redirect_schedule(c, name, campaign ? "triggered_campaign" : "triggered");
}

static void schedule_enable(struct ui_ctx *c, bool enable)
{
    const char *name = schedule_name(c);
    struct osp_ops o;
    struct osp_err err = {0, ""};
    char next[40];
    if (name == NULL || !ui_ops(c, &o)) {
        return;
    }
    int rc = osp_op_schedule_enable(&o, name, enable, next, &err);
    if (rc != 0) {
        api_reply_op_error(c->s, c->resp, rc, &err);
        return;
    }
    api_audit_log(c->s, enable ? "schedule.enable" : "schedule.disable", name, NULL, NULL);
    redirect_schedule(c, name, enable ? "enabled" : "disabled");
}

void ui_schedule_enable(struct ui_ctx *c)
{
    schedule_enable(c, true);
}

void ui_schedule_disable(struct ui_ctx *c)
{
    schedule_enable(c, false);
}

/* ---- Campaigns ---- */

void ui_campaigns(struct ui_ctx *c)
{
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (!ui_ops(c, &o)) {
        return;
    }
    json_t *rows = osp_op_campaigns(&o, UI_CAMPAIGNS_SHOWN, &err);
    if (rows == NULL) {
        api_reply_op_error(c->s, c->resp, err.code != 0 ? err.code : OSP_EPG, &err);
        return;
    }
    ui_page_begin(c, "Campaigns", "campaigns", 0);
    ui_raw(c->out, "<h1>Campaigns</h1>");
    if (json_array_size(rows) == 0) {
        ui_raw(c->out, "<p class=\"muted\" id=\"no-campaigns\">No campaign yet "
                       "(<code>opspoolctl campaign submit</code>, <code>POST "
                       "/v1/campaigns</code>).</p>");
    } else {
        ui_raw(c->out, "<div class=\"scroll\"><table id=\"campaigns\"><thead><tr><th>Id</th>"
                       "<th>Name</th><th>State</th><th class=\"num\">Steps succeeded</th>"
                       "<th>Schedule</th><th>Created</th><th>Finished</th></tr></thead><tbody>");
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            const char *id = ui_jstr(row, "id");
            ui_raw(c->out, "<tr><td>");
            if (osp_id_is_valid(id)) {
                osp_buf_appendf(c->out, "<a class=\"mono\" href=\"/ui/campaigns/%s\">%s</a>", id,
                                id);
            }
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(row, "name"));
            ui_raw(c->out, "</td><td>");
            badge(c->out, ui_jstr(row, "state"));
            ui_raw(c->out, "</td><td class=\"num\">");
            ui_value(c->out, json_object_get(row, "succeeded"));
            ui_raw(c->out, " / ");
            ui_value(c->out, json_object_get(row, "steps"));
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(row, "schedule"));
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(row, "created_at"));
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(row, "finished_at"));
            ui_raw(c->out, "</td></tr>");
        }
        ui_raw(c->out, "</tbody></table></div>");
    }
    json_decref(rows);
    ui_page_end(c, 200);
}

/* Fill colours of step boxes by state (the badge colours). */
static const char *step_fill(const char *state)
{
    static const char *const fills[][2] = {
        {"succeeded", "#dcf2e3"}, {"failed", "#f8dcda"},  {"dead", "#f8dcda"},
        {"submitted", "#dfe9fb"}, {"running", "#dfe9fb"}, {"cancelled", "#eeeeee"},
        {"skipped", "#eeeeee"},   {"pending", "#fbefd5"},
    };
    for (size_t i = 0; i < OSP_ARRAY_LEN(fills); i++) {
        if (strcmp(state, fills[i][0]) == 0) {
            return fills[i][1];
        }
    }
    return "#ffffff";
}

#define STEP_W   170
#define STEP_H   44
#define STEP_GAP 50
#define STEP_VG  14

/* The steps as a layered graph: a step's column is one more than its deepest dependency's;
 * an arrow from each dependency to the step. */
static void steps_svg(struct osp_buf *out, const json_t *steps)
{
    size_t n = json_array_size(steps);
    if (n == 0 || n > OSP_CAMPAIGN_MAX_STEPS) {
        return;
    }
    int layer[OSP_CAMPAIGN_MAX_STEPS] = {0}, row[OSP_CAMPAIGN_MAX_STEPS] = {0};
    int per_layer[OSP_CAMPAIGN_MAX_STEPS] = {0};
    for (size_t pass = 0; pass < n; pass++) { /* acyclic (checked at submit): n passes settle */
        for (size_t i = 0; i < n; i++) {
            const json_t *after = json_object_get(json_array_get(steps, i), "after");
            size_t k;
            json_t *a;
            json_array_foreach(after, k, a)
            {
                for (size_t j = 0; j < n; j++) {
                    if (json_equal(a, json_object_get(json_array_get(steps, j), "step")) &&
                        layer[j] + 1 > layer[i] && layer[j] + 1 < OSP_CAMPAIGN_MAX_STEPS) {
                        layer[i] = layer[j] + 1;
                    }
                }
            }
        }
    }
    int layers = 0, rows = 0;
    for (size_t i = 0; i < n; i++) {
        row[i] = per_layer[layer[i]]++;
        layers = layer[i] + 1 > layers ? layer[i] + 1 : layers;
        rows = row[i] + 1 > rows ? row[i] + 1 : rows;
    }
    int w = layers * (STEP_W + STEP_GAP) - STEP_GAP + 20;
    int h = rows * (STEP_H + STEP_VG) - STEP_VG + 20;
    osp_buf_appendf(out,
                    "<svg class=\"chart\" id=\"steps-graph\" role=\"img\" "
                    "aria-label=\"campaign steps and their dependencies\" width=\"%d\" "
                    "height=\"%d\" viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">"
                    "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
                    "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0L10,5L0,"
                    "10z\" fill=\"#5b6472\"/></marker></defs>",
                    w, h, w, h);
    for (size_t i = 0; i < n; i++) {
        const json_t *after = json_object_get(json_array_get(steps, i), "after");
        size_t k;
        json_t *a;
        json_array_foreach(after, k, a)
        {
            for (size_t j = 0; j < n; j++) {
                if (json_equal(a, json_object_get(json_array_get(steps, j), "step"))) {
                    osp_buf_appendf(out,
                                    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                                    "stroke=\"#5b6472\" stroke-width=\"1.5\" "
                                    "marker-end=\"url(#arrow)\"/>",
                                    10 + layer[j] * (STEP_W + STEP_GAP) + STEP_W,
                                    10 + row[j] * (STEP_H + STEP_VG) + STEP_H / 2,
                                    10 + layer[i] * (STEP_W + STEP_GAP),
                                    10 + row[i] * (STEP_H + STEP_VG) + STEP_H / 2);
                }
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *st = json_array_get(steps, i);
        int x = 10 + layer[i] * (STEP_W + STEP_GAP), y = 10 + row[i] * (STEP_H + STEP_VG);
        const char *state = ui_jstr(st, "state");
        const char *name = ui_jstr(st, "step");
        osp_buf_appendf(out,
                        "<g class=\"step\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                        "rx=\"6\" fill=\"%s\" stroke=\"#5b6472\"/><text x=\"%d\" y=\"%d\" "
                        "font-size=\"13\" font-weight=\"600\" fill=\"#1d2330\">",
                        x, y, STEP_W, STEP_H, step_fill(state), x + 8, y + 18);
        ui_escn(out, name, strlen(name) > 22 ? 22 : strlen(name));
        osp_buf_appendf(out, "</text><text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#5b6472\">",
                        x + 8, y + 35);
        ui_esc(out, state);
        ui_raw(out, " · ");
        ui_esc(out, ui_jstr(st, "kind"));
        ui_raw(out, "</text></g>");
    }
    ui_raw(out, "</svg>");
}

void ui_campaign(struct ui_ctx *c)
{
    const char *id = c->req->params[0];
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (!ui_ops(c, &o)) {
        return;
    }
    json_t *cp = osp_op_campaign_get(&o, id, &err);
    if (cp == NULL) {
        api_reply_op_error(c->s, c->resp, err.code != 0 ? err.code : OSP_EPG, &err);
        return;
    }
    const char *state = ui_jstr(cp, "state");
    ui_page_begin(c, "Campaign", "campaigns", 0);
    ui_raw(c->out, "<h1>Campaign <span class=\"mono\">");
    ui_esc(c->out, id);
    ui_raw(c->out, "</span></h1>");
    ui_done_note(c, -1);
    ui_raw(c->out, "<dl class=\"kv\"><dt>Name</dt><dd data-f=\"name\">");
    ui_esc(c->out, ui_jstr(cp, "name"));
    ui_raw(c->out, "</dd><dt>State</dt><dd data-f=\"state\">");
    badge(c->out, state);
    ui_raw(c->out, "</dd>");
    kv_text(c->out, "Fail fast", "fail_fast", cp);
    kv_text(c->out, "Schedule", "schedule", cp);
    kv_text(c->out, "Submitted by", "submitted_by", cp);
    kv_text(c->out, "Created", "created_at", cp);
    kv_text(c->out, "Finished", "finished_at", cp);
    ui_raw(c->out, "</dl>");
    if (c->operate && strcmp(state, "running") == 0) {
        osp_buf_appendf(c->out,
                        "<div class=\"actions\"><form class=\"inline\" method=\"post\" "
                        "action=\"/ui/campaigns/%s/cancel\">",
                        id); /* a checked id */
        ui_csrf_input(c);
        ui_raw(c->out, "<button id=\"cancel\" class=\"danger\" type=\"submit\">Cancel campaign"
                       "</button></form></div>");
    }
    json_t *steps = json_object_get(cp, "steps");
    osp_buf_appendf(c->out, "<h2>Steps (%zu)</h2><div class=\"scroll\">", json_array_size(steps));
    steps_svg(c->out, steps);
    ui_raw(c->out, "</div><div class=\"scroll\"><table id=\"steps\"><thead><tr><th>Step</th>"
                   "<th>Kind</th><th>After</th><th>State</th><th>Job</th><th class=\"num\">"
                   "Attempt</th><th>Finished</th><th>Reason / error</th></tr></thead><tbody>");
    size_t i;
    json_t *st;
    json_array_foreach(steps, i, st)
    {
        ui_raw(c->out, "<tr data-step=\"");
        ui_esc(c->out, ui_jstr(st, "step"));
        ui_raw(c->out, "\"><td>");
        ui_esc(c->out, ui_jstr(st, "step"));
        ui_raw(c->out, "</td><td>");
        ui_esc(c->out, ui_jstr(st, "kind"));
        ui_raw(c->out, "</td><td>");
        size_t k;
        json_t *a;
        json_array_foreach(json_object_get(st, "after"), k, a)
        {
            ui_raw(c->out, k > 0 ? ", " : "");
            ui_esc(c->out, json_string_value(a));
        }
        ui_raw(c->out, "</td><td data-f=\"state\">");
        badge(c->out, ui_jstr(st, "state"));
        ui_raw(c->out, "</td><td>");
        ui_job_link(c->out, ui_jstr(st, "job_id"));
        ui_raw(c->out, "</td><td class=\"num\">");
        ui_value(c->out, json_object_get(st, "attempt"));
        ui_raw(c->out, "</td><td>");
        ui_esc(c->out, ui_jstr(st, "finished_at"));
        ui_raw(c->out, "</td><td class=\"wrap\">");
        ui_esc(c->out, ui_jstr(st, "reason"));
        const char *e = ui_jstr(st, "error");
        ui_raw(c->out, e[0] != '\0' && ui_jstr(st, "reason")[0] != '\0' ? " — " : "");
        ui_escn(c->out, e, strlen(e) > 300 ? 300 : strlen(e));
        ui_raw(c->out, "</td></tr>");
    }
    ui_raw(c->out, "</tbody></table></div>");
    json_t *events = json_object_get(cp, "events");
    size_t nev = json_array_size(events);
    osp_buf_appendf(c->out, "<h2>Timeline (%zu)</h2>", nev);
    if (nev > 0) {
        ui_raw(c->out, "<div class=\"scroll\"><table id=\"timeline\"><thead><tr><th>Time</th>"
                       "<th>Type</th><th>Data</th></tr></thead><tbody>");
        for (size_t j = nev > UI_EVENTS_MAX ? nev - UI_EVENTS_MAX : 0; j < nev; j++) {
            json_t *e = json_array_get(events, j);
            ui_raw(c->out, "<tr><td>");
            ui_esc(c->out, ui_jstr(e, "ts"));
            ui_raw(c->out, "</td><td>");
            ui_esc(c->out, ui_jstr(e, "type"));
            ui_raw(c->out, "</td><td class=\"wrap mono\">");
            char *d = json_dumps(json_object_get(e, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
            size_t dn = d != NULL ? strlen(d) : 0;
            ui_escn(c->out, d != NULL ? d : "", dn > 400 ? 400 : dn);
            free(d);
            ui_raw(c->out, "</td></tr>");
        }
        ui_raw(c->out, "</tbody></table></div>");
    }
    json_decref(cp);
    ui_page_end(c, 200);
}

void ui_campaign_cancel(struct ui_ctx *c)
{
    const char *id = c->req->params[0];
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (!ui_ops(c, &o)) {
        return;
    }
    struct osp_submit_policy pol = sched_policy(c->s);
    char prev[16] = "";
    int rc = osp_op_campaign_cancel(&o, &pol, id, prev, &err);
    if (rc != 0) {
        api_reply_op_error(c->s, c->resp, rc, &err);
        return;
    }
    api_audit_log(c->s, "campaign.cancel", NULL, id, prev);
    char loc[96];
    snprintf(loc, sizeof(loc), "/ui/campaigns/%s?done=campaign_cancel", id);
    ui_redirect(c->resp, loc);
}

/* ---- Benchmarks ---- */

static void num_cell(struct osp_buf *out, const json_t *row, const char *field)
{
    const json_t *v = json_object_get(row, field);
    ui_raw(out, "<td class=\"num\">");
    if (json_is_number(v)) {
        osp_buf_appendf(out, "%.2f", json_number_value(v));
    }
    ui_raw(out, "</td>");
}

/* One series (target, lane) of the history: its trend and its latest runs. */
static void bench_series(struct ui_ctx *c, const json_t *rows, const char *target, const char *lane)
{
    ui_raw(c->out, "<section class=\"series\" data-target=\"");
    ui_esc(c->out, target);
    ui_raw(c->out, "\" data-lane=\"");
    ui_esc(c->out, lane);
    ui_raw(c->out, "\"><h2>");
    ui_esc(c->out, target[0] ? target : "(no target)");
    ui_raw(c->out, " · lane ");
    ui_esc(c->out, lane[0] ? lane : "(none)");
    ui_raw(c->out, "</h2>");
    ui_bench_trend_svg(c->out, rows, lane);
    ui_raw(c->out, "<div class=\"scroll\"><table class=\"bench\"><thead><tr><th>Run</th>"
                   "<th>Job</th><th class=\"num\">Requests</th><th class=\"num\">rps</th>"
                   "<th class=\"num\">p50 ms</th><th class=\"num\">p99 ms</th>"
                   "<th class=\"num\">p99.9 ms</th><th>Verdict</th><th class=\"num\">Baseline "
                   "p50 / p99</th><th>Regressed figures</th></tr></thead><tbody>");
    size_t i, shown = 0;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *l = ui_jstr(r, "lane");
        if (strcmp(ui_jstr(r, "target"), target) != 0 || strcmp(l, lane) != 0) {
            continue;
        }
        if (shown++ >= UI_BENCH_TABLE) {
            break;
        }
        const json_t *judge = json_object_get(r, "judge");
        const char *verdict = ui_jstr(judge, "verdict");
        bool bad = strcmp(verdict, "regressed") == 0;
        osp_buf_appendf(c->out, "<tr%s><td>", bad ? " class=\"regressed\"" : "");
        ui_esc(c->out, ui_jstr(r, "created_at"));
        ui_raw(c->out, "</td><td>");
        ui_job_link(c->out, ui_jstr(r, "job_id"));
        ui_raw(c->out, "</td><td class=\"num\">");
        ui_value(c->out, json_object_get(r, "requests"));
        ui_raw(c->out, "</td>");
        num_cell(c->out, r, "rps");
        num_cell(c->out, r, "p50_ms");
        num_cell(c->out, r, "p99_ms");
        num_cell(c->out, r, "p999_ms");
        ui_raw(c->out, "<td data-f=\"verdict\">");
        osp_buf_appendf(c->out, "<span class=\"verdict%s\">", bad ? " bad" : "");
        ui_esc(c->out, verdict);
        ui_raw(c->out, "</span></td><td class=\"num\">");
        json_t *figs = json_object_get(judge, "figures");
        const json_t *b50 = json_object_get(json_object_get(figs, "p50_ms"), "baseline");
        const json_t *b99 = json_object_get(json_object_get(figs, "p99_ms"), "baseline");
        if (json_is_number(b50) || json_is_number(b99)) {
            osp_buf_appendf(c->out, "%.2f / %.2f", json_number_value(b50), json_number_value(b99));
        } else {
            ui_raw(c->out, "-");
        }
        ui_raw(c->out, "</td><td>");
        const char *fk;
        json_t *fv;
        bool first = true;
        json_object_foreach(figs, fk, fv)
        {
            if (strcmp(ui_jstr(fv, "verdict"), "regressed") == 0) {
                ui_raw(c->out, first ? "" : ", ");
                ui_esc(c->out, fk);
                first = false;
            }
        }
        ui_raw(c->out, "</td></tr>");
    }
    ui_raw(c->out, "</tbody></table></div></section>");
}

void ui_benchmarks(struct ui_ctx *c)
{
    const char *target = osp_http_query(c->req, "target");
    const char *lane = osp_http_query(c->req, "lane");
    target = target != NULL && target[0] != '\0' ? target : NULL;
    lane = lane != NULL && lane[0] != '\0' ? lane : NULL;
    struct osp_bench_filter f = {target, lane, 0, UI_BENCH_ROWS};
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (!ui_ops(c, &o)) {
        return;
    }
    json_t *rows = osp_op_bench_history(&o, &f, &err);
    if (rows == NULL) {
        api_reply_op_error(c->s, c->resp, err.code != 0 ? err.code : OSP_EPG, &err);
        return;
    }
    ui_page_begin(c, "Benchmarks", "benchmarks", 0);
    ui_raw(c->out, "<h1>Benchmarks</h1><form class=\"filters\" method=\"get\" "
                   "action=\"/ui/benchmarks\"><label>Target<input name=\"target\" "
                   "maxlength=\"64\" value=\"");
    ui_esc(c->out, target);
    ui_raw(c->out, "\"></label><label>Lane<input name=\"lane\" maxlength=\"64\" value=\"");
    ui_esc(c->out, lane);
    ui_raw(c->out, "\"></label><button type=\"submit\">Filter</button></form>");
    /* The series in the order of their latest run (rows are newest first). */
    json_t *seen = json_object();
    size_t i, nseries = 0;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        char key[140];
        snprintf(key, sizeof(key), "%s\n%s", ui_jstr(r, "target"), ui_jstr(r, "lane"));
        if (json_object_get(seen, key) != NULL) {
            continue;
        }
        json_object_set_new(seen, key, json_true());
        if (nseries++ >= UI_BENCH_SERIES) {
            continue;
        }
        bench_series(c, rows, ui_jstr(r, "target"), ui_jstr(r, "lane"));
    }
    if (nseries == 0) {
        ui_raw(c->out, "<p class=\"muted\" id=\"no-benchmarks\">No benchmark result matches.</p>");
    } else if (nseries > UI_BENCH_SERIES) {
        osp_buf_appendf(c->out,
                        "<p class=\"muted\">The %d most recent of %zu series; filter by target "
                        "or lane for the others.</p>",
                        UI_BENCH_SERIES, nseries);
    }
    ui_raw(c->out, "<p class=\"muted\">Verdicts are the ledger's (opspool.bench_judge, "
                   "docs/benchmarks.md): each run against the median of its baseline runs; "
                   "dashed lines are the baseline of the newest run.</p>");
    json_decref(seen);
    json_decref(rows);
    ui_page_end(c, 200);
}
