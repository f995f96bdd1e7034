/* SPDX-License-Identifier: MIT */
/* ops.h — the control plane's operations, written once: the HTTP API, opspoolctl and the web
 * console parse their input, call one function here and render its result. Each operation
 * changes the ledger first (common/ledger.h: the change, its events and its audit record in
 * one statement), then brings Redis along with one script (common/rq.h). A failure between
 * the two is reported as OSP_EREDIS with what to do; running the same operation again
 * finishes it. docs/decisions/0007-one-domain-layer.md. */
#ifndef OSP_OPS_H
#define OSP_OPS_H

#include "common/envelope.h"
#include "common/ledger.h"
#include "common/rq.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* What every operation needs: both stores (borrowed, sync clients), the signing keys, limits,
 * and who acts. */
struct osp_ops {
    struct osp_pgs *pg;
    struct osp_rqs *rq;
    const struct osp_env_keys *keys;
    size_t env_max_bytes;
    int job_ttl_s;
    struct osp_actor actor;
};

/* ---- submit ---- */

#define OSP_SUBMIT_MAX_ATTEMPTS  100    /* max_attempts is 1..this */
#define OSP_SUBMIT_TIMEOUT_MAX_S 604800 /* timeout_s is 0..this (0: the kind's default) */
#define OSP_SUBMIT_TEXT_MAX      200    /* idempotency_key, submitted_by, trace_id */

/* What a front end collected (borrowed): the API's JSON body, opspoolctl's flags. */
struct osp_submit_req {
    const char *kind;
    const json_t *payload;       /* NULL: {} */
    const char *idempotency_key; /* NULL: none ("" is refused) */
    int64_t max_attempts;        /* 0: default_max_attempts */
    int64_t timeout_s;           /* 0: the kind's default */
    int64_t run_at_ms;           /* 0 or past: now */
    const char *submitted_by;
    const char *trace_id;
    const char *schedule; /* the schedule that fired it (a valid schedule name) */
};
struct osp_submit_policy {
    int default_max_attempts;          /* OSP_DEFAULT_MAX_ATTEMPTS */
    const struct osp_targets *targets; /* OSP_TARGETS_FILE, NULL when none is configured */
};
/* Check a request and build its job in j (osp_job_init'ed by the caller; the id is left
 * empty): a registered kind; a payload object the kind accepts, target names included; the
 * bounds above; a run_at in the accepted time range; an envelope within env_max_bytes. On bad
 * input OSP_EINVAL (or OSP_ETOOBIG) with err naming the field, and *what set to the error's
 * class: "unknown_kind", "invalid_payload", "invalid_request" or "too_large". Nothing is
 * written. */
int osp_op_submit_check(const struct osp_ops *o, const struct osp_submit_policy *pol,
                        const struct osp_submit_req *req, struct osp_job *j, const char **what,
                        struct osp_err *err);
/* Submit n checked jobs (common/submit.h: ledger rows first, then the envelopes). A commit
 * whose answer was lost (OSP_EPG) is tried once more with the same ids, which completes it or
 * writes it, never doubles it. Returns as osp_submit. */
int osp_op_submit(const struct osp_ops *o, struct osp_job *jobs, size_t n,
                  char (*ids)[OSP_ID_LEN + 1], bool *dup, struct osp_err *err);
/* The kind and state of an existing job (for a duplicate idempotency key's answer). */
int osp_op_job_brief(const struct osp_ops *o, const char *id, char kind[OSP_KIND_MAX + 1],
                     char state[16], struct osp_err *err);

/* ---- cancel ---- */

enum osp_cancel_outcome {
    OSP_CANCEL_DONE,      /* queued, delayed or retrying: now cancelled (final) */
    OSP_CANCEL_REQUESTED, /* running: its worker stops the attempt, then records cancelled */
    OSP_CANCEL_ALREADY,   /* was already cancelled (the worker flag is set again) */
};
struct osp_cancel_result {
    enum osp_cancel_outcome outcome;
    char prev[16]; /* the state before */
    char kind[OSP_KIND_MAX + 1];
};
/* Cancel one job. 0; OSP_ENOTFOUND; OSP_ECONFLICT (it already ended succeeded or dead:
 * r->prev); OSP_EPG (nothing changed); OSP_EREDIS (recorded in the ledger, but the flag that
 * stops workers is not set yet: run it again). */
int osp_op_cancel(const struct osp_ops *o, const char *id, struct osp_cancel_result *r,
                  struct osp_err *err);

/* ---- retry ---- */

struct osp_retry_result {
    char kind[OSP_KIND_MAX + 1];
    char prev[16];    /* dead or cancelled (queued: an earlier retry finished now) */
    unsigned attempt; /* the attempt the job runs next */
    unsigned max_attempts;
    bool from_dead;   /* its dead record was found (and removed, unless already gone) */
    bool record_gone; /* the dead record vanished meanwhile (purged or retried by another) */
    bool rebuilt;     /* the envelope was rebuilt from the ledger row */
};
/* Put a dead or cancelled job back on its queue. Attempt numbers continue after the last
 * attempt that started (a job that never ran starts at 1); budget attempts are granted
 * (0: the same budget as before). kind, when not NULL, must be the job's kind. 0;
 * OSP_ENOTFOUND; OSP_ECONFLICT (its state does not allow it); OSP_EPG; OSP_EREDIS (the ledger
 * says queued, Redis not yet: run it again, which finishes it); OSP_EINVAL. */
int osp_op_retry(const struct osp_ops *o, const char *id, const char *kind, unsigned budget,
                 struct osp_retry_result *r, struct osp_err *err);

/* ---- dead letters ---- */

/* Retry dead jobs of kind: those in ids (array of id strings), or, when ids is NULL, every
 * record on the dead list when the call started, oldest first, at most limit (0: all).
 * *report (owned) = {"kind", "retried": [{id, attempt, max_attempts}], "skipped": [{id,
 * reason}]}. Returns 0 even when some were skipped; OSP_EPG/OSP_EREDIS when a store failed
 * (the report says how far it got). */
int osp_op_dead_retry(const struct osp_ops *o, const char *kind, const json_t *ids, int64_t limit,
                      unsigned budget, json_t **report, struct osp_err *err);
/* Delete dead records of kind for good (ids, or all when NULL); the ledger keeps the jobs as
 * dead, each with an 'audit' event, and one audit row records the purge. dry_run counts
 * only. *report (owned) = {"kind", "purged" (or "would_purge"), "ids"?}. */
int osp_op_dead_purge(const struct osp_ops *o, const char *kind, const json_t *ids, bool dry_run,
                      json_t **report, struct osp_err *err);

/* ---- pause / resume ---- */

/* *changed false when the kind already was paused (resumed). One audit row. */
int osp_op_pause(const struct osp_ops *o, const char *kind, bool pause, bool *changed,
                 struct osp_err *err);

/* ---- bulk cancel ---- */

struct osp_bulk_result {
    int64_t matched;   /* dry run: jobs the filter takes now */
    int64_t cancelled; /* jobs cancelled in the ledger */
    int64_t dropped;   /* their envelopes removed from the queue and the delayed set */
    int64_t audit_id;  /* the opspool.audit row (0 on a dry run) */
    double seconds;
    double ledger_s, redis_s, sweep_s; /* where the time went: ledger batches, flags, sweep */
};
/* Cancel every unfinished job the filter takes (queued, delayed, retrying: never a running
 * one), in batches of 5,000, each one transaction: the ledger's change, the Redis flags, the
 * commit (a Redis failure rolls the batch back). Then their envelopes are swept from the
 * queue and the delayed set. dry_run only counts. A store failure stops it with what was done
 * so far; running it again takes the rest. A batch whose commit went unanswered is flagged in
 * Redis and named in the audit row; the reconciler settles the ledger (Redis says cancelled,
 * a final state). */
int osp_op_bulk_cancel(const struct osp_ops *o, const struct osp_bulk_filter *f, bool dry_run,
                       struct osp_bulk_result *r, struct osp_err *err);

/* ---- schedules (ops_sched.c) ---- */

#define OSP_SCHEDULE_MAX_CATCHUP_S 604800 /* catchup_s is 0..this (one week) */

/* Create or replace a schedule from its JSON definition {name, cron, timezone, kind, payload,
 * concurrency, catchup_s, enabled}: every field checked (the cron expression and its time
 * zone, the kind, the payload with its targets as a submit would be) before anything is
 * written. OSP_EINVAL with *what = "invalid_request" | "unknown_kind" | "invalid_payload".
 * An audit row unless o->actor.who is NULL (the schedules file at start). */
int osp_op_schedule_put(const struct osp_ops *o, const struct osp_submit_policy *pol,
                        const json_t *def, bool *created, const char **what, struct osp_err *err);
int osp_op_schedule_delete(const struct osp_ops *o, const char *name, struct osp_err *err);
/* Enabling restarts from the coming tick: ticks missed while disabled are not fired. */
int osp_op_schedule_enable(const struct osp_ops *o, const char *name, bool enable,
                           char next_iso[40], struct osp_err *err);
/* A schedule whose kind is this fires a campaign; its payload is the plan. */
#define OSP_CAMPAIGN_KIND "campaign"
/* Submit what a schedule fires: a job of kind, or with kind OSP_CAMPAIGN_KIND a campaign from
 * the plan in payload; checked like any submit, idempotent by idem, recorded with the
 * schedule's name. id: the job's or the campaign's. */
int osp_op_schedule_submit(const struct osp_ops *o, const struct osp_submit_policy *pol,
                           const char *name, const char *kind, const json_t *payload,
                           const char *idem, const char *by, char id[OSP_ID_LEN + 1], bool *dup,
                           const char **what, struct osp_err *err);
/* Submit the schedule's job now (not a tick: no firing row), checked like any submit; for a
 * schedule of kind OSP_CAMPAIGN_KIND a campaign (*campaign set: id is the campaign's). */
int osp_op_schedule_trigger(const struct osp_ops *o, const struct osp_submit_policy *pol,
                            const char *name, char id[OSP_ID_LEN + 1], bool *campaign,
                            struct osp_err *err);
/* All schedules, or one with its latest firings (osp_ledger_schedules). */
json_t *osp_op_schedules(const struct osp_ops *o, const char *name, struct osp_err *err);

/* ---- campaigns (ops_campaign.c, docs/campaigns.md) ---- */

#define OSP_CAMPAIGN_MAX_STEPS 64

/* Check a plan {name, fail_fast (default true), steps: [{name, kind, payload, after: [names],
 * always, max_attempts, timeout_s}]}: names [a-z0-9_-]{1,64} and unique, `after` naming steps
 * of the plan without a cycle, every step's job checked as a submit would check it (kind,
 * payload with its targets, bounds). OSP_EINVAL with *what as for osp_op_submit_check and err
 * naming the step. Nothing is written. */
int osp_op_campaign_check(const struct osp_ops *o, const struct osp_submit_policy *pol,
                          const json_t *plan, const char **what, struct osp_err *err);
/* Check, record the campaign in the ledger and advance it once (its first steps are
 * submitted). idem (or NULL): a second submit with the same key returns the first campaign's
 * id with *dup set. schedule: the schedule that fires it, or NULL. */
int osp_op_campaign_submit(const struct osp_ops *o, const struct osp_submit_policy *pol,
                           const json_t *plan, const char *idem, const char *schedule,
                           char id[OSP_ID_LEN + 1], bool *dup, const char **what,
                           struct osp_err *err);
/* Bring the campaign forward: steps whose job ended take its state; pending steps whose
 * dependencies are final are submitted or skipped; when every step is final the campaign
 * ends. Idempotent and safe from several processes at once. *finished: the campaign is final. */
int osp_op_campaign_advance(const struct osp_ops *o, const struct osp_submit_policy *pol,
                            const char *id, bool *finished, struct osp_err *err);
/* Cancel: the campaign becomes cancelled, steps not submitted are skipped, submitted steps'
 * jobs are cancelled (a running one is stopped: a drill rolls back). prev: the state before.
 * OSP_ENOTFOUND; OSP_ECONFLICT when it had already ended. */
int osp_op_campaign_cancel(const struct osp_ops *o, const struct osp_submit_policy *pol,
                           const char *id, char prev[16], struct osp_err *err);
/* The campaign with its steps (state, job, attempt, error) and timeline (owned), or NULL. */
json_t *osp_op_campaign_get(const struct osp_ops *o, const char *id, struct osp_err *err);
/* The latest campaigns, newest first (owned), or NULL. */
json_t *osp_op_campaigns(const struct osp_ops *o, int limit, struct osp_err *err);
/* One round of the scheduler's duty: advance every unfinished campaign (oldest first, at most
 * max); *finished counts those that ended. */
int osp_op_campaigns_advance_all(const struct osp_ops *o, const struct osp_submit_policy *pol,
                                 int max, int *finished, struct osp_err *err);

/* ---- reads ---- */

/* Job lists (osp_ledger_jobs) and finished jobs per kind over a window (jobs/min). */
json_t *osp_op_jobs(const struct osp_ops *o, const struct osp_job_filter *f, struct osp_err *err);
/* osp_op_jobs checks the filter: kind, target (a name, [a-z0-9_-]{1,64}), idempotency_key
 * (1..OSP_SUBMIT_TEXT_MAX bytes), before (a job id); OSP_EINVAL naming the field. */
#define OSP_JOB_TARGET_MAX 64
/* The seed runs and backups a job recorded (osp_ledger_job_records), id checked. */
json_t *osp_op_job_records(const struct osp_ops *o, const char *id, struct osp_err *err);
json_t *osp_op_finished_counts(const struct osp_ops *o, int window_s, struct osp_err *err);

/* ---- benchmark history (ops_bench.c) ---- */

/* The judged history of benchmark lanes (osp_ledger_bench_history), target and lane checked
 * as names, limit 0..1000. */
json_t *osp_op_bench_history(const struct osp_ops *o, const struct osp_bench_filter *f,
                             struct osp_err *err);
/* Run a against run b, lane by lane: {"a": [lanes], "b": [lanes], "lanes": [{lane, figures:
 * {rps|p50_ms|p99_ms|p999_ms|error_rate|cache_hit_ratio: {a, b, change, direction}}}]}; with
 * b NULL only "a", whose lanes carry their judge against the baseline. OSP_ENOTFOUND when a
 * job has no results. */
json_t *osp_op_bench_compare(const struct osp_ops *o, const char *a, const char *b,
                             struct osp_err *err);
/* Pin the baseline of (target, lane) to job pin_job_id's run, or reset it (pin NULL); audited
 * as bench.pin / bench.reset. */
int osp_op_bench_baseline(const struct osp_ops *o, const char *target, const char *lane,
                          const char *pin_job_id, struct osp_err *err);

/* ---- notifications (ops_notify.c) ---- */

/* The delivery log, newest first (osp_ledger_notify_list): state pending|delivered|failed or
 * NULL, endpoint a name or NULL, limit 0..1000 (0: 50). */
json_t *osp_op_notifications(const struct osp_ops *o, const char *state, const char *endpoint,
                             int limit, struct osp_err *err);
/* Deliver a failed delivery again, with a fresh budget of attempts; audited as
 * notification.retry. OSP_ENOTFOUND, or OSP_ECONFLICT when it was delivered. */
int osp_op_notification_retry(const struct osp_ops *o, const char *id, struct osp_err *err);

/* ---- shared by front ends ---- */

/* Parse a state list ("queued,delayed") into OSP_BULK_* bits; 0 when a name is unknown. */
unsigned osp_bulk_states_parse(const char *list);

#endif
