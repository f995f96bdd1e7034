/* SPDX-License-Identifier: MIT */
/* jobstate.h — the states of a job, once: the ledger's `state` column, the Redis job hash's
 * `state` field and every front end use these names (docs/api.md "Job states"). succeeded,
 * failed, dead and cancelled are final: nothing moves a job out of them but an operator's
 * retry (of dead and cancelled jobs). failed is a verdict: the job ran to the end and judged
 * the system (a drill's hypothesis, a benchmark's thresholds, a backup's verification) and is
 * never retried; dead is an error that used up its attempts. */
#ifndef OSP_JOBSTATE_H
#define OSP_JOBSTATE_H

#include <stdbool.h>

enum osp_job_state {
    OSP_JOB_QUEUED,
    OSP_JOB_DELAYED,
    OSP_JOB_RUNNING,
    OSP_JOB_RETRYING,
    OSP_JOB_SUCCEEDED,
    OSP_JOB_FAILED,
    OSP_JOB_DEAD,
    OSP_JOB_CANCELLED,
    OSP_JOB_NSTATES
};

/* "queued", ...; NULL for a value out of range. */
const char *osp_job_state_name(enum osp_job_state s);
/* 0 and *out set, or -1 when name is not a state (NULL included). */
int osp_job_state_parse(const char *name, enum osp_job_state *out);
bool osp_job_state_is_final(enum osp_job_state s);
/* The same for a name; false for anything that is not a state name. */
bool osp_job_state_name_is_final(const char *name);
/* The final states as an SQL list, for the ledger's statements. */
#define OSP_JOB_FINAL_SQL "('succeeded', 'failed', 'dead', 'cancelled')"

/* "queued, delayed, running, retrying, succeeded, failed, dead, cancelled", for messages. */
const char *osp_job_states_text(void);

#endif
