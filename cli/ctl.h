/* SPDX-License-Identifier: MIT */
/* ctl.h — opspoolctl's shared context: configuration, lazily opened synchronous clients to
 * Redis and PostgreSQL (so commands keep working while the scheduler is down), output mode.
 * Each command group lives in its own file and registers in the table in main.c. */
#ifndef OSP_CTL_H
#define OSP_CTL_H

#include "common/config.h"
#include "common/ledger.h"
#include "common/rq.h"

#include <stdio.h>

/* Exit codes (documented in --help and docs/operators.md). */
enum {
    CTL_OK = 0,
    CTL_JOB_FAILED = 1,   /* --wait: the job ended failed/dead/cancelled */
    CTL_USAGE = 2,        /* bad arguments or configuration */
    CTL_UNAVAILABLE = 3,  /* Redis or PostgreSQL unreachable */
    CTL_NOT_FOUND = 4,
    CTL_TIMEOUT = 5,      /* --wait timed out; the job continues */
};

struct ctl {
    struct osp_config cfg;
    struct osp_rqs *rq;
    struct osp_pgs *pg;
    bool json;   /* --json */
    bool color;  /* stdout is a terminal */
};

struct osp_rqs *ctl_rq(struct ctl *c);  /* exits CTL_UNAVAILABLE on failure */
struct osp_pgs *ctl_pg(struct ctl *c);  /* exits CTL_UNAVAILABLE on failure */
void ctl_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* "3m12s"-style age of a duration in ms. */
void ctl_fmt_age(int64_t ms, char *out, size_t n);

int ctl_cmd_submit(struct ctl *c, int argc, char **argv);
int ctl_cmd_queues(struct ctl *c, int argc, char **argv);
int ctl_cmd_job(struct ctl *c, int argc, char **argv);
int ctl_cmd_migrate(struct ctl *c, int argc, char **argv);

#endif
