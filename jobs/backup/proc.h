/* SPDX-License-Identifier: MIT */
/* proc.h — running the PostgreSQL client tools for the backup kind: fork + execvpe with an
 * explicit argument vector and environment (never a shell), output captured through pipes,
 * and the job's cancellation honoured while the program runs (SIGTERM, then SIGKILL). */
#ifndef OSP_JOBS_BACKUP_PROC_H
#define OSP_JOBS_BACKUP_PROC_H

#include "common/buf.h"
#include "jobs/job.h"

#define BACKUP_PROC_GRACE_MS 5000 /* SIGTERM -> SIGKILL when a cancelled program lingers */

struct backup_proc {
    struct osp_buf out; /* stdout, up to out_max bytes (the rest is read and dropped) */
    struct osp_buf err; /* stderr, up to 16 KiB */
    int status;         /* exit code, or 128 + signal number when killed by a signal */
    bool cancelled;     /* the job was cancelled while the program ran and it was killed */
};

/* Run argv (argv[0] searched in PATH) with envp as its whole environment; stdin is
 * /dev/null. The program dies with the calling process (PR_SET_PDEATHSIG). Returns 0 when it
 * ran to an exit (see p->status, p->cancelled), or -errno when it could not be started. The
 * caller calls backup_proc_deinit. ctx may be NULL (no cancellation). */
int backup_proc_run(struct job_ctx *ctx, char *const argv[], char *const envp[], size_t out_max,
                    struct backup_proc *p);
void backup_proc_deinit(struct backup_proc *p);
/* The stderr text, trimmed, NUL-terminated (borrowed from p). */
const char *backup_proc_errtext(struct backup_proc *p);

#endif
