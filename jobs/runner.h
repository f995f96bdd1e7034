/* SPDX-License-Identifier: MIT */
/* runner.h — how the worker runs a kind: in a forked child that reports over a pipe, or
 * inline (in-process) for payloads a kind declares trivially safe. Not for kinds' use.
 *
 * Pipe protocol (child -> parent): frames of [u32 big-endian length][msgpack array]:
 *   ["e", ts_ms, type, data|nil]            an event, sent as soon as the kind emits it
 *   ["t", table, row]                        a typed result row
 *   ["r", status, result|nil, error|nil]     the end: last frame, then the child exits 0
 * A child that exits without an "r" frame crashed (outcome "crashed"). */
#ifndef OSP_JOBS_RUNNER_H
#define OSP_JOBS_RUNNER_H

#include "common/buf.h"
#include "jobs/job.h"
#include "jobs/targets.h"

#define JOB_FRAME_MAX (16u * 1024u * 1024u) /* a child sending more is killed as broken */

/* What one attempt reported. All members owned. */
struct job_report {
    bool finished;   /* an "r" frame arrived / run returned */
    int status;      /* run()'s return value */
    json_t *result;  /* may be NULL */
    char *error;     /* may be NULL */
    json_t *events;  /* array of {ts, type, data} */
    json_t *rows;    /* array of {table, row} */
};

void job_report_init(struct job_report *r);
void job_report_deinit(struct job_report *r);

/* Run kind in the calling process (inline mode, tests, `opspool-worker --run`). cfg (not NULL)
 * is what job_config() returns to the kind; it must outlive the call. */
void job_run_inline(const struct job_kind *kind, const struct osp_job *job,
                    const struct osp_targets *targets, const struct osp_config *cfg,
                    int64_t deadline_ns, struct job_report *out);

/* Child side after fork(): resets signal dispositions, makes SIGTERM request cancellation,
 * runs the kind, streams frames to fd, and _exit()s. Never returns. */
_Noreturn void job_child_main(const struct job_kind *kind, const struct osp_job *job,
                              const struct osp_targets *targets, const struct osp_config *cfg,
                              int fd, int64_t deadline_ns);

/* Parent side: feed bytes read from the pipe. Parses every complete frame in buf (consuming
 * it) into r. Returns 0, or OSP_EPROTO when the child sent something malformed or too big
 * (the caller kills it). */
int job_report_feed(struct job_report *r, struct osp_buf *buf);

#endif
