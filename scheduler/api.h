/* SPDX-License-Identifier: MIT */
/* api.h — shared by the scheduler's API files (api.c, api_jobs.c, api_queues.c, api_bench.c,
 * api_schedules.c, api_campaigns.c): limits, the helpers every handler uses, and the handlers api.c
 * routes. */
#ifndef OSP_SCHED_API_H
#define OSP_SCHED_API_H

#include "common/http.h"
#include "common/ops.h"
#include "scheduler/sched.h"

#include <jansson.h>
#include <stdbool.h>

#define API_LIST_DEFAULT 50
#define API_LIST_MAX     500
#define API_DEAD_DEFAULT 100
#define API_DEAD_MAX     1000
#define API_BULK_DEFAULT 10000 /* bulk cancel: jobs per request (the API's loop is shared) */
#define API_BULK_MAX     100000
#define API_STR_MAX      OSP_SUBMIT_TEXT_MAX /* idempotency keys, submitted_by, trace ids */

/* ---- helpers (api.c) ---- */

/* Index of the loaded token equal to tok[0..len) (every token compared in constant time), or
 * -1. The console's login shares it with the API's bearer check. */
long api_token_lookup(const struct sched *s, const char *tok, size_t len);
/* Scopes (SCHED_SCOPE_*) of token i, and who[] names it ("token:<fp>"); every scope and
 * "insecure" under OSP_API_INSECURE=1 without tokens; 0 for an index out of range. */
unsigned api_token_scopes(const struct sched *s, long i, char who[SCHED_WHO_MAX]);

/* An audit line (always written): who did what to which object (job_id may be NULL). */
void api_audit_log(struct sched *s, const char *action, const char *object, const char *job_id,
                   const char *detail);
void api_reply_unavailable(struct osp_http_resp *resp, const struct osp_err *err);
/* Text columns (osp_pgs_query) into integers / booleans / JSON, in place. */
void api_row_ints(json_t *row, const char *const *names);
void api_row_bool(json_t *row, const char *name);
void api_row_json(json_t *row, const char *name);
/* Unknown body fields: false after replying 400. */
bool api_fields_ok(const json_t *o, const char *const *allowed, struct osp_http_resp *resp);
/* Optional string / bounded integer fields: 0, or -1 after replying 400. */
int api_opt_str(const json_t *o, const char *name, size_t maxlen, const char **out,
                struct osp_http_resp *resp);
int api_opt_int(const json_t *o, const char *name, json_int_t lo, json_int_t hi, json_int_t dflt,
                json_int_t *out, struct osp_http_resp *resp);
/* The kind by name, or NULL after replying 400 unknown_kind / invalid_request. */
const struct job_kind *api_kind_or_reply(const char *name, struct osp_http_resp *resp);
/* The operation context for this request (common/ops.h), or false after replying 503. */
bool api_ops(struct sched *s, struct osp_ops *o, struct osp_http_resp *resp);
/* The HTTP answer for an operation's error code (and the store's failure accounting). */
void api_reply_op_error(struct sched *s, struct osp_http_resp *resp, int rc,
                        const struct osp_err *err);

/* ---- handlers ---- */

typedef void api_handler(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg);
/* The after-run hook of the API server: commits every submit the last run collected in one
 * transaction and answers each (api_jobs.c). */
void api_submit_flush(void *arg);
api_handler api_h_submit, api_h_get_job, api_h_list_jobs, api_h_cancel, api_h_retry;
api_handler api_h_queues, api_h_pause, api_h_resume, api_h_bulk_cancel, api_h_dead_retry,
    api_h_dead_purge;
api_handler api_h_list_schedules, api_h_get_schedule, api_h_put_schedule, api_h_delete_schedule,
    api_h_enable_schedule, api_h_disable_schedule, api_h_trigger_schedule;
api_handler api_h_submit_campaign, api_h_list_campaigns, api_h_get_campaign, api_h_cancel_campaign;
/* Benchmark history (api_bench.c) and the query parameters its reads accept. */
api_handler api_h_bench_history, api_h_bench_job, api_h_bench_baseline;
extern const char *const api_bench_query[];
extern const char *const api_bench_job_query[];
/* The notification delivery log (api_notify.c). */
api_handler api_h_notifications, api_h_notification_retry;
extern const char *const api_notify_query[];
/* The query parameters GET /v1/jobs and GET /v1/campaigns accept. */
extern const char *const api_list_jobs_query[];
extern const char *const api_list_campaigns_query[];

#endif
