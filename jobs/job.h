/* SPDX-License-Identifier: MIT */
/* job.h — the interface every job kind implements, and the only API a kind may use.
 *
 * A kind validates payloads (pure: called by the scheduler, CLI and worker) and runs one
 * attempt in a forked child of the worker (or, for kinds that declare it for a payload, inline
 * in the worker: only work that cannot block or crash). A kind reports through its job_ctx:
 * events (the job's evidence timeline) and one result. It never logs, never touches the
 * worker's Redis or PostgreSQL connections, and never runs a shell.
 *
 * Adding a kind = one folder under jobs/, one line in jobs/registry.c. */
#ifndef OSP_JOB_H
#define OSP_JOB_H

#include "common/config.h"
#include "common/envelope.h"
#include "common/err.h"

#include <jansson.h>

#define JOB_KIND_ABI 1

struct job_ctx;
struct osp_targets;

struct job_kind {
    const char *name;  /* also the queue suffix: P:queue:<name> */
    unsigned abi;      /* must equal JOB_KIND_ABI */
    /* Check a payload; 0 or OSP_EINVAL with err->msg naming the field. Pure. `targets` may be
     * NULL (scheduler without a targets file): then target names are not checked. */
    int (*validate)(const json_t *payload, const struct osp_targets *targets, struct osp_err *err);
    /* Run one attempt. Returns 0 on success, OSP_EFAILED (or another negative code) on
     * failure, with job_set_result/job_fail called to explain. */
    int (*run)(struct job_ctx *ctx);
    /* Called in the child on SIGTERM (cancel, timeout, drain): stop injecting, roll back;
     * idempotent; must be async-signal-tolerant in effect (it runs from the child's loop, not
     * a handler: kinds poll job_is_cancelled() or get this call at a safe point). May be NULL. */
    void (*cancel)(struct job_ctx *ctx);
    /* Optional: true when this payload may run inline in the worker process (no fork). */
    bool (*is_inline)(const json_t *payload);
    unsigned default_timeout_s; /* used when the job sets none; 0 = worker default */
    /* Optional: true when this payload changes its target (a benchmark that scales it) and
     * must hold the target's lease exclusively, whatever the target's "leases" say for the
     * kind (docs/decisions/0008). Pure; targets as in validate. NULL = never. */
    bool (*needs_exclusive)(const json_t *payload, const struct osp_targets *targets);
};

/* ---- registry ---- */
const struct job_kind *job_kind_find(const char *name);
/* NULL-terminated list of all kinds. */
const struct job_kind *const *job_kinds_all(void);

/* ---- the job_ctx API (usable only inside run/cancel) ---- */
const struct osp_job *job_info(const struct job_ctx *ctx);
const json_t *job_payload(const struct job_ctx *ctx);
const struct osp_targets *job_targets(const struct job_ctx *ctx);
/* The worker's settings (common/config.h), e.g. backup_root: kinds read configuration here,
 * never from the environment. */
const struct osp_config *job_config(const struct job_ctx *ctx);
/* Append an event to the job's timeline: type like "phase", "progress", "lane"; data is
 * stolen (may be NULL). Cheap; sent to the parent and stored in job_events. */
void job_emit(struct job_ctx *ctx, const char *type, json_t *data);
/* Set the attempt's result object (stolen). Last call wins. */
void job_set_result(struct job_ctx *ctx, json_t *result);
/* Record why the attempt failed (copied); returns OSP_EFAILED for `return job_fail(...)`.
 * An error: the pool retries the job while it has attempts left. */
int job_fail(struct job_ctx *ctx, const char *fmt, ...) OSP_PRINTF(2, 3);
/* Record a failed verdict (copied); returns OSP_EVERDICT for `return job_verdict_failed(...)`.
 * The attempt ran to the end and judged the system: a drill's hypothesis did not hold, a
 * benchmark breached a threshold, a backup did not verify. The job ends `failed` and is never
 * retried (running it again would inject the fault or the load again for the same answer).
 * Add the typed row and the result first: they are recorded with the verdict. */
int job_verdict_failed(struct job_ctx *ctx, const char *fmt, ...) OSP_PRINTF(2, 3);
/* A typed result row for the kind's table (stolen), stored in the same transaction as the
 * attempt's outcome. */
void job_add_row(struct job_ctx *ctx, const char *table, json_t *row);
/* Monotonic deadline of this attempt (osp_mono_ns() clock). */
int64_t job_deadline_ns(const struct job_ctx *ctx);
/* True once cancellation, timeout or drain was requested. Kinds with loops poll this. */
bool job_is_cancelled(const struct job_ctx *ctx);
/* Sleep up to ms, returning early (true) when cancelled. */
bool job_sleep_ms(struct job_ctx *ctx, int64_t ms);

#endif
