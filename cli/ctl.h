/* SPDX-License-Identifier: MIT */
/* ctl.h — opspoolctl's shared context: configuration, lazily opened synchronous clients to
 * Redis and PostgreSQL (so commands keep working while the scheduler is down), output mode.
 * Each command group lives in its own file and registers in the table in main.c:
 *   submit_cmd.c   submit (--wait), migrate
 *   job_cmd.c      jobs, job, cancel, retry
 *   queues_cmd.c   queues (--watch), pause, resume
 *   dead_cmd.c     dead, dead retry, dead purge (and the retry path `retry ID` shares)
 *   workers_cmd.c  workers
 *   sched_cmd.c    schedules, schedules trigger|enable|disable
 *   campaign_cmd.c campaign submit|show|cancel|list
 *   util.c         JSON/Redis/ledger helpers the commands share
 *   fmt.c          pure presentation helpers (ages, durations, tables) */
#ifndef OSP_CTL_H
#define OSP_CTL_H

#include "cli/fmt.h"
#include "jobs/targets.h"
#include "common/config.h"
#include "common/envelope.h"
#include "common/ledger.h"
#include "common/ops.h"
#include "common/rq.h"

#include <jansson.h>
#include <stdio.h>

/* Exit codes (documented in --help and docs/operators.md). */
enum {
    CTL_OK = 0,
    CTL_JOB_FAILED = 1,  /* --wait: the job ended dead or cancelled */
    CTL_USAGE = 2,       /* bad arguments or configuration; a destructive command without --yes */
    CTL_UNAVAILABLE = 3, /* Redis or PostgreSQL unreachable (or failed mid-way: see stderr) */
    CTL_NOT_FOUND = 4,   /* no such job, schedule or dead record */
    CTL_TIMEOUT = 5,     /* --wait timed out; the job continues */
    CTL_CONFLICT = 6,    /* the job's state does not allow it (cancel a finished job, retry a
                          * succeeded one), or some records were skipped (listed on stderr) */
};

struct ctl {
    struct osp_config cfg;
    struct osp_rqs *rq;
    struct osp_pgs *pg;
    bool json;  /* --json */
    bool color; /* stdout is a terminal and NO_COLOR is unset */
    bool tty;   /* stdout is a terminal */
    struct osp_env_keys keys; /* filled by ctl_ops */
};

struct osp_rqs *ctl_rq(struct ctl *c); /* exits CTL_UNAVAILABLE on failure */
struct osp_pgs *ctl_pg(struct ctl *c); /* exits CTL_UNAVAILABLE on failure */
/* The ledger connection, or NULL (err filled) when PostgreSQL is unreachable: for commands
 * that show what they can without it (queues). */
struct osp_pgs *ctl_pg_try(struct ctl *c, struct osp_err *err);
/* The same for Redis (job shows the ledger even while Redis is down). */
struct osp_rqs *ctl_rq_try(struct ctl *c, struct osp_err *err);
void ctl_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* ---- util.c ---- */

/* Parse an integer option value or exit CTL_USAGE naming the option. */
long ctl_parse_long(const char *opt, const char *v, long min, long max);
/* Print j (borrowed) indented, plus a newline, to stdout. */
void ctl_print_json(const json_t *j);
/* Signing keys from the configuration (borrowed strings; valid while c lives). */
void ctl_env_keys(const struct ctl *c, struct osp_env_keys *keys);
/* Parameterised ledger query, rows as objects of text values (owned), or exit
 * CTL_UNAVAILABLE. */
json_t *ctl_query(struct ctl *c, const char *sql, int nparams, const char *const *params);
/* Who runs this command, for audit records: "user:<login>" of the real uid (getpwuid), or
 * "uid:<n>" when the uid has no passwd entry. */
const char *ctl_who(void);
/* Text value of a row field, NULL when absent or null (borrowed). */
const char *ctl_str(const json_t *row, const char *field);
/* Integer value of a text or number row field; dflt when absent, null or not a number. */
int64_t ctl_int(const json_t *row, const char *field, int64_t dflt);
/* Age in ms of an RFC 3339 timestamp field relative to now, or -1 when absent. */
int64_t ctl_age_of(const json_t *row, const char *field);
/* Age text of a field ("3m12s" or "-"). */
void ctl_fmt_field_age(const json_t *row, const char *field, char *out, size_t n);
/* True when arg is "--help" or "-h". */
bool ctl_is_help(const char *arg);
/* Known job kinds, NULL-terminated (borrowed). kinds[] holds at most max-1 names. */
size_t ctl_kinds(const char **kinds, size_t max);
/* Exit CTL_USAGE unless kind is a valid kind name and, when registered is true, a kind this
 * build knows (pause of a typo must not succeed silently; dead lists also exist for
 * "unknown"). */
void ctl_check_kind(const char *cmd, const char *kind, bool registered);

/* The operation context (common/ops.h) for this run: both stores (exits CTL_UNAVAILABLE when
 * one is unreachable), signing keys, actor user:<login> via opspoolctl. */
void ctl_ops(struct ctl *c, struct osp_ops *o);
/* Exit code for an operation's error code. */
int ctl_op_exit(int rc);
/* The submit policy of jobs opspoolctl submits or defines (schedules, campaigns): the targets
 * file and default budget the scheduler uses (t owned by the caller: deinit when *have). */
struct osp_submit_policy ctl_policy(struct ctl *c, struct osp_targets *t, bool *have);
/* Parse an RFC 3339 time option or exit CTL_USAGE naming it. */
int64_t ctl_parse_time(const char *opt, const char *v);

/* ---- shared between commands ---- */

/* Follow a job until it ends (printing events to stderr unless --json): CTL_OK when it
 * succeeded, CTL_JOB_FAILED when dead or cancelled, CTL_TIMEOUT after timeout_s. */
int ctl_wait_job(struct ctl *c, const char *id, long timeout_s);
/* Follow a campaign until it ends, advancing it meanwhile (step changes to stderr, the graph
 * at the end): CTL_OK when it succeeded, CTL_JOB_FAILED when failed or cancelled, CTL_TIMEOUT
 * after timeout_s (campaign_cmd.c). */
int ctl_wait_campaign(struct ctl *c, const struct osp_ops *o, const struct osp_submit_policy *pol,
                      const char *id, long timeout_s);

/* Registered workers (workers_cmd.c) as an array of objects {id, host, pid, kinds[], slots,
 * busy, version, state, started_ms, heartbeat_ms, heartbeat_age_ms, stale, jobs[]}; jobs
 * (from the processing lists) only when with_jobs. Owned. */
json_t *ctl_load_workers(struct ctl *c, bool with_jobs);

int ctl_cmd_submit(struct ctl *c, int argc, char **argv);
int ctl_cmd_queues(struct ctl *c, int argc, char **argv);
int ctl_cmd_pause(struct ctl *c, int argc, char **argv);
int ctl_cmd_resume(struct ctl *c, int argc, char **argv);
int ctl_cmd_jobs(struct ctl *c, int argc, char **argv);
int ctl_cmd_job(struct ctl *c, int argc, char **argv);
int ctl_cmd_cancel(struct ctl *c, int argc, char **argv);
int ctl_cmd_retry(struct ctl *c, int argc, char **argv);
int ctl_cmd_dead(struct ctl *c, int argc, char **argv);
int ctl_cmd_workers(struct ctl *c, int argc, char **argv);
int ctl_cmd_schedules(struct ctl *c, int argc, char **argv);
int ctl_cmd_migrate(struct ctl *c, int argc, char **argv);
int ctl_cmd_campaign(struct ctl *c, int argc, char **argv);
int ctl_cmd_bench(struct ctl *c, int argc, char **argv);
int ctl_cmd_notifications(struct ctl *c, int argc, char **argv);

#endif
