/* SPDX-License-Identifier: MIT */
/* run_kind.c — run one job kind outside the pool, for benchmarks and by-hand checks:
 *
 *   osp-run-kind KIND TARGETS_FILE PAYLOAD_JSON [TIMEOUT_S]
 *
 * Validates the payload, runs the kind in this process (job_run_inline, fresh job id), prints
 * the result object as one JSON line on stdout and, on failure, the error on stderr. Events
 * and typed rows are printed to stderr as JSON lines. Exit 0 on success, 1 on job failure,
 * 2 on usage or validation errors. */
#include "common/base.h"
#include "common/id.h"
#include "jobs/job.h"
#include "jobs/runner.h"
#include "jobs/targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void run_kind_print(FILE *f, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    fprintf(f, "%s\n", s != NULL ? s : "null");
    free(s);
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s KIND TARGETS_FILE PAYLOAD_JSON [TIMEOUT_S]\n", argv[0]);
        return 2;
    }
    const struct job_kind *kind = job_kind_find(argv[1]);
    struct osp_targets targets;
    struct osp_err err = {0};
    struct osp_job job;
    struct job_report rep;
    json_error_t je;
    int rc = 2;
    if (kind == NULL) {
        fprintf(stderr, "unknown kind %s\n", argv[1]);
        return 2;
    }
    if (osp_targets_load(&targets, argv[2], &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    osp_job_init(&job);
    osp_id_new(job.id);
    snprintf(job.kind, sizeof(job.kind), "%s", kind->name);
    json_decref(job.payload);
    job.payload = json_loads(argv[3], 0, &je);
    job_report_init(&rep);
    if (job.payload == NULL) {
        fprintf(stderr, "payload: %s\n", je.text);
        goto out;
    }
    if (kind->validate(job.payload, &targets, &err) != 0) {
        fprintf(stderr, "invalid payload: %s\n", err.msg);
        goto out;
    }
    long timeout_s = argc == 5 ? strtol(argv[4], NULL, 10) : 0;
    int64_t deadline = timeout_s > 0 ? osp_mono_ns() + (int64_t)timeout_s * 1000000000 : 0;
    struct osp_config cfg;
    osp_config_defaults(&cfg);
    job_run_inline(kind, &job, &targets, &cfg, deadline, &rep);
    osp_config_deinit(&cfg);
    size_t i;
    json_t *v;
    json_array_foreach(rep.events, i, v) {
        run_kind_print(stderr, v);
    }
    json_array_foreach(rep.rows, i, v) {
        run_kind_print(stderr, v);
    }
    if (rep.result != NULL) {
        run_kind_print(stdout, rep.result);
    }
    if (rep.status != 0) {
        fprintf(stderr, "failed: %s\n", rep.error != NULL ? rep.error : osp_strerror(rep.status));
    }
    rc = rep.status == 0 ? 0 : 1;
out:
    job_report_deinit(&rep);
    osp_job_deinit(&job);
    osp_targets_deinit(&targets);
    return rc;
}
