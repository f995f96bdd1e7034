/* SPDX-License-Identifier: MIT */
/* jobstate.c — job state names (common/jobstate.h). */
#include "common/jobstate.h"

#include <stddef.h>
#include <string.h>

static const char *const names[OSP_JOB_NSTATES] = {
    [OSP_JOB_QUEUED] = "queued",       [OSP_JOB_DELAYED] = "delayed",
    [OSP_JOB_RUNNING] = "running",     [OSP_JOB_RETRYING] = "retrying",
    [OSP_JOB_SUCCEEDED] = "succeeded", [OSP_JOB_FAILED] = "failed",
    [OSP_JOB_DEAD] = "dead",           [OSP_JOB_CANCELLED] = "cancelled",
};

const char *osp_job_state_name(enum osp_job_state s)
{
    return (unsigned)s < OSP_JOB_NSTATES ? names[s] : NULL;
}

int osp_job_state_parse(const char *name, enum osp_job_state *out)
{
    for (int i = 0; name != NULL && i < OSP_JOB_NSTATES; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum osp_job_state)i;
            return 0;
        }
    }
    return -1;
}

bool osp_job_state_is_final(enum osp_job_state s)
{
    return s == OSP_JOB_SUCCEEDED || s == OSP_JOB_FAILED || s == OSP_JOB_DEAD ||
           s == OSP_JOB_CANCELLED;
}

bool osp_job_state_name_is_final(const char *name)
{
    enum osp_job_state s;
    return osp_job_state_parse(name, &s) == 0 && osp_job_state_is_final(s);
}

const char *osp_job_states_text(void)
{
    return "queued, delayed, running, retrying, succeeded, failed, dead, cancelled";
}
