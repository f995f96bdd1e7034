/* SPDX-License-Identifier: MIT */
/* console.h — shared by the web console's files (docs/console.md, ADR 0014): console.c owns
 * sessions, CSRF, security headers, the page frame, the static assets and the routes;
 * console_pages.c holds the pages and actions. Like the API's handlers, each page parses,
 * calls common/ops.h (or the read functions the API uses) and renders; here the rendering is
 * HTML, every value escaped on its way out (ui_esc). */
#ifndef OSP_SCHED_CONSOLE_H
#define OSP_SCHED_CONSOLE_H

#include "common/buf.h"
#include "common/http.h"
#include "common/ops.h"
#include "scheduler/sched.h"

#include <jansson.h>
#include <stdbool.h>

#define UI_PAGE_MAX     (150 * 1024) /* bytes: a page larger than this is cut (never happens) */
#define UI_JSON_MAX     (32 * 1024)  /* payload and result shown on a job page, bytes */
#define UI_EVENTS_MAX   200          /* events shown on a job page */
#define UI_DEAD_SHOWN   100          /* dead records listed per kind */
#define UI_JOBS_DEFAULT 50

/* One console request, for the duration of the handler. */
struct ui_ctx {
    struct sched *s;
    const struct osp_http_req *req;
    struct osp_http_resp *resp;
    struct osp_buf *out;     /* the page's HTML */
    bool operate;            /* the session's token has the operate scope: show actions */
    const char *csrf;        /* the session's CSRF token (hex) */
    char who[SCHED_WHO_MAX]; /* "token:<fp>" */
};

typedef void ui_handler(struct ui_ctx *c);

/* ---- HTML (console.c) ---- */

/* Append text escaped for HTML text and attribute values (& < > " '). NULL appends nothing. */
void ui_esc(struct osp_buf *out, const char *s);
void ui_escn(struct osp_buf *out, const char *s, size_t n);
/* Append markup as is (literals of this program only). */
void ui_raw(struct osp_buf *out, const char *html);
/* Page frame: the head (title escaped, stylesheet, script), the navigation (active: "overview",
 * "jobs", "dead", "schedules", "campaigns", "benchmarks"), who is signed in and the logout button;
 * refresh_s > 0 reloads the page. */
void ui_page_begin(struct ui_ctx *c, const char *title, const char *active, int refresh_s);
/* Close the frame and reply 200 (or status) with the page. */
void ui_page_end(struct ui_ctx *c, int status);
/* A hidden input carrying the session's CSRF token. */
void ui_csrf_input(struct ui_ctx *c);
/* Reply an HTML error page (message escaped). */
void ui_error(struct ui_ctx *c, int status, const char *fmt, ...) OSP_PRINTF(3, 4);
/* 303 See Other to location (a path of this console). */
void ui_redirect(struct osp_http_resp *resp, const char *location);

/* ---- shared by the pages (console_pages.c) ---- */

/* The operation context of a console request (who acts, via "console"), or false after
 * replying 503. */
bool ui_ops(struct ui_ctx *c, struct osp_ops *o);
/* A string member of o, or "". */
const char *ui_jstr(const json_t *o, const char *k);
/* A JSON value as escaped text: strings as they are, numbers, null as nothing. */
void ui_value(struct osp_buf *out, const json_t *v);
/* A job state as a coloured badge (an unknown state as escaped text). */
void ui_state_badge(struct osp_buf *out, const char *state);
/* A link to a job's page (an invalid id as escaped text). */
void ui_job_link(struct osp_buf *out, const char *id);
/* An age in seconds as "42 s", "5 min", "2.5 h", "3.0 d". */
void ui_age(struct osp_buf *out, double s);
/* A note from a whitelisted ?done= value (never the value itself); n >= 0 a count. */
void ui_done_note(struct ui_ctx *c, long n);

/* ---- pages and actions (console_pages.c) ---- */

ui_handler ui_overview, ui_jobs, ui_job, ui_job_cancel, ui_job_retry, ui_dead, ui_dead_retry,
    ui_dead_purge;
extern const char *const ui_jobs_query[];
extern const char *const ui_job_query[];
extern const char *const ui_dead_query[];
extern const char *const ui_overview_query[];

/* ---- schedules, campaigns, benchmarks (console_views.c) ---- */

ui_handler ui_schedules, ui_schedule, ui_schedule_trigger, ui_schedule_enable, ui_schedule_disable,
    ui_campaigns, ui_campaign, ui_campaign_cancel, ui_benchmarks;
extern const char *const ui_schedules_query[];
extern const char *const ui_campaigns_query[];
extern const char *const ui_benchmarks_query[];

/* ---- evidence on a job's page (console_charts.c) ---- */

/* A benchmark job's lanes (p50..p99.9, judge), a drill's chart, a seed's runs or a backup's
 * files, when the job is one. */
void ui_job_evidence(struct ui_ctx *c, const char *id, const json_t *job);
/* Append an SVG trend chart of p50 and p99 (ms) of the history rows of one lane (newest
 * first, as osp_op_bench_history returns them) with the baseline's p50/p99 as dashed lines. */
void ui_bench_trend_svg(struct osp_buf *out, const json_t *rows, const char *lane);

#endif
