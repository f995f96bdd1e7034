/* SPDX-License-Identifier: MIT */
/* main.c — opspoolctl: the operator CLI. A command table like Redis's; global options
 * before the command; `opspoolctl CMD --help` prints the command's own help; connection
 * settings from the same environment as the services. */
#include "cli/ctl.h"
#include "common/alloc.h"
#include "common/log.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ctl_command {
    const char *name;
    int (*fn)(struct ctl *c, int argc, char **argv);
    const char *args;
    const char *summary;
    const char *detail; /* options and output, for `opspoolctl CMD --help` */
};

static const struct ctl_command commands[] = {
    {"queues", ctl_cmd_queues, "[KIND...] [--watch] [--count N] [--interval S]",
     "per kind: pending, running, delayed, dead, paused, workers, oldest pending, jobs/min",
     "  PENDING   envelopes waiting on the kind's list (what KEDA scales on)\n"
     "  RUNNING   leases held by workers (inflight)\n"
     "  DELAYED   retries waiting for their backoff and jobs submitted with a run_at\n"
     "  DEAD      records on the dead-letter list (see `opspoolctl dead KIND`)\n"
     "  WORKERS   registered workers whose kinds include this one\n"
     "  OLDEST    age of the oldest pending job (how far behind the queue is)\n"
     "  JOBS/MIN  jobs of the kind finished in the last 5 minutes, per minute (ledger;\n"
     "            \"-\" when PostgreSQL is unreachable: the rest still works)\n"
     "  --watch          redraw every --interval seconds (default 2) until interrupted\n"
     "  --count N        stop after N refreshes (for scripts and tests)\n"
     "  --json           one JSON array; with --watch, one compact array per line\n"},
    {"jobs", ctl_cmd_jobs, "[--kind K] [--state S] [--since 1h] [--limit N]",
     "list jobs from the ledger, newest first",
     "  --kind K     only this kind\n"
     "  --state S    queued|delayed|running|retrying|succeeded|failed|dead|cancelled,\n"
     "               or active (the first four) or finished (the last four)\n"
     "  --since D    created within D (90s, 15m, 1h30m, 2d)\n"
     "  --limit N    at most N rows (default 50, max 10000)\n"},
    {"job", ctl_cmd_job, "ID",
     "everything about one job: envelope fields, attempts, event timeline, result",
     "  Human view like kubectl describe; --json prints the ledger record (the same\n"
     "  object as GET /v1/jobs/{id}) and adds nothing.\n"},
    {"cancel", ctl_cmd_cancel, "ID | --kind KIND [filters] (--dry-run | --yes)",
     "cancel a job, or every queued/delayed job of a kind that matches filters",
     "  A job not yet running is cancelled in the ledger (final), flagged in Redis and never\n"
     "  runs: its message is removed (or dropped inside Redis when a worker reaches it). A\n"
     "  running job gets a cancel request: its worker sees it within a second, stops the child\n"
     "  and records the attempt cancelled. Cancelling a cancelled job succeeds (the flag is set\n"
     "  again); a succeeded or dead job exits 6.\n"
     "  Bulk: cancel --kind KIND [--state queued,delayed,retrying] [--submitted-by WHO]\n"
     "  [--schedule NAME] [--created-before T] [--created-after T] [--limit N]; --dry-run\n"
     "  counts, --yes does it (in batches of 5,000, one audit row), then sweeps the queue.\n"},
    {"retry", ctl_cmd_retry, "ID [--max-attempts N]",
     "put a dead or cancelled job back on its queue",
     "  When the job's dead record is on its kind's dead list it is removed in the same\n"
     "  atomic step that re-queues the envelope. Attempt numbers continue after the last\n"
     "  attempt that started (a job cancelled before it ran starts at 1); the budget is the\n"
     "  one it had, or --max-attempts N. Ledger events: retried (or retried_from_dead), audit.\n"},
    {"dead", ctl_cmd_dead,
     "KIND [--limit N] | retry KIND (ID...|--all --yes) | purge KIND [ID...] (--yes|--dry-run)",
     "dead letters: list with reasons and ages, retry, purge",
     "  dead KIND               newest first: job id, age, attempts, reason\n"
     "  dead retry KIND ID...   re-queue these dead jobs ([--max-attempts N])\n"
     "  dead retry KIND --all --yes [--limit N]\n"
     "                          re-queue every record of the list, oldest first\n"
     "  dead purge KIND [ID...] --yes\n"
     "                          delete records for good; the ledger keeps the jobs (state dead)\n"
     "  Without --yes the destructive forms change nothing and exit 2. Records that cannot\n"
     "  be retried (undecodable, unknown to the ledger, not dead) are listed on stderr; exit 6.\n"},
    {"workers", ctl_cmd_workers, "",
     "registered workers: host, pid, kinds, busy/slots, last heartbeat, current jobs",
     "  STATE is running or draining as the worker reports it, or stale when its last\n"
     "  heartbeat is older than OSP_LEASE_MS (the reaper will hand its jobs back).\n"
     "  JOBS are the ids in the worker's processing list.\n"},
    {"schedules", ctl_cmd_schedules,
     "[trigger NAME [--wait] [--timeout S] | enable NAME | disable NAME | put FILE|- |\n"
     "           delete NAME --yes]",
     "cron schedules: next fire, last fire, last outcome; trigger now; enable/disable; define",
     "  schedules               NAME CRON TZ KIND ENABLED NEXT LAST LAST-OUTCOME LAST-SUCCESS\n"
     "                          (LAST-OUTCOME: state of the schedule's newest job)\n"
     "  schedules trigger NAME  submit the schedule's job now (ledger first); --wait follows\n"
     "                          it like submit --wait\n"
     "  schedules enable NAME   resume firing from the next tick (missed ticks are not run)\n"
     "  schedules disable NAME  stop firing; jobs already submitted continue\n"
     "  schedules put FILE|-    create or replace from JSON: one schedule, or\n"
     "                          {\"schedules\": [...]} (the API's and OSP_SCHEDULES_FILE's "
     "format)\n"
     "  schedules delete NAME --yes\n"
     "                          delete it and its firing history; its jobs stay\n"},
    {"pause", ctl_cmd_pause, "KIND", "stop workers fetching KIND (running jobs finish)",
     "  Submissions still queue; `opspoolctl queues` shows PAUSED yes.\n"},
    {"resume", ctl_cmd_resume, "KIND", "let workers fetch KIND again", ""},
    {"submit", ctl_cmd_submit,
     "KIND [--payload JSON|@file] [--count N] [--max-attempts N] [--job-timeout S]\n"
     "           [--delay-ms N] [--idempotency-key K] [--wait] [--timeout S]",
     "submit jobs (ledger first, then the queue); --wait follows until the job ends",
     "  Prints one id per line (count <= 20), else a summary line.\n"
     "  --wait      print the job's events as they are recorded (stderr); exit 0 when it\n"
     "              succeeds, 1 when it ends dead or cancelled, 5 after --timeout seconds\n"
     "              (default 600; the job goes on)\n"},
    {"campaign", ctl_cmd_campaign,
     "submit FILE|- [--idempotency-key K] [--wait] [--timeout S] | show ID |\n"
     "           cancel ID [--wait] | list [--limit N]",
     "campaigns: a plan of steps with dependencies, run as one unit (docs/campaigns.md)",
     "  campaign submit FILE|-  check the plan (every step's kind and payload, `after` names,\n"
     "                          no cycle) and record it; its first steps are submitted at once,\n"
     "                          the scheduler brings the rest. Prints the campaign id.\n"
     "                          --wait advances it too and follows it to the end: exit 0 when\n"
     "                          every step succeeded, 1 when it failed or was cancelled, 5\n"
     "                          after --timeout seconds (default 3600; it goes on)\n"
     "  campaign show ID        the steps as a graph (AFTER) with their outcome, jobs and\n"
     "                          reasons, then the timeline\n"
     "  campaign cancel ID      steps not yet submitted are skipped, submitted ones cancelled\n"
     "                          (a running drill is stopped and rolls back)\n"
     "  campaign list           the latest campaigns\n"},
    {"bench", ctl_cmd_bench,
     "history [--target T] [--lane L] [--since D] [--limit N] | compare ID [ID] |\n"
     "           pin TARGET LANE JOB_ID | reset TARGET LANE",
     "benchmark results judged against their baseline (docs/benchmark-jobs.md)",
     "  bench history       newest first: figures, the verdict against the series' baseline\n"
     "                      (regressed, improved, ok, no baseline yet) and the figures that\n"
     "                      got worse, then a p99 trend per lane\n"
     "  bench compare ID    each lane of that run against its baseline, figure by figure\n"
     "  bench compare A B   run A against run B, lane by lane, with the relative change\n"
     "  bench pin T L ID    compare the lane with that run (a release) from now on\n"
     "  bench reset T L     drop the pin; the rolling baseline counts only runs from now on\n"},
    {"notifications", ctl_cmd_notifications,
     "[list] [--state failed|pending|delivered|all] [--endpoint NAME] [--limit N] [--log] |\n"
     "           retry DELIVERY_ID",
     "webhook deliveries and their attempts (docs/notifications.md)",
     "  notifications            deliveries that failed for good (default), newest first: event,\n"
     "                           subject, endpoint, attempts and the last error\n"
     "  notifications --log      ... and every attempt: when, which scheduler, HTTP status\n"
     "  notifications retry ID   send a failed delivery again, with a fresh budget of attempts\n"},
    {"migrate", ctl_cmd_migrate, "", "apply ledger migrations (services do this at start)", ""},
    {NULL, NULL, NULL, NULL, NULL},
};

static const char exit_codes[] =
    "exit codes:\n"
    "  0  ok\n"
    "  1  --wait: the job ended dead or cancelled\n"
    "  2  usage or configuration error; a destructive command without --yes (nothing changed)\n"
    "  3  Redis or PostgreSQL unreachable, or failed part-way (stderr says what was done)\n"
    "  4  not found (job, schedule, dead record)\n"
    "  5  --wait timed out (the job goes on)\n"
    "  6  the job's state does not allow it, or some records were skipped (listed on stderr)\n";

static void usage(FILE *out)
{
    fputs("usage: opspoolctl [--json] COMMAND [ARGS]    (opspoolctl COMMAND --help)\n"
          "       opspoolctl --help | --help-config | --print-config | --version\n\n"
          "commands:\n",
          out);
    for (size_t i = 0; commands[i].name != NULL; i++) {
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\n%s", exit_codes);
    fputs("\nconnection settings come from the environment (OSP_REDIS_URL, OSP_PG_DSN,\n"
          "OSP_PREFIX, OSP_SIGNING_KEY, ...): `opspoolctl --help-config` lists them,\n"
          "`opspoolctl --print-config` shows the values in effect (secrets redacted).\n"
          "Colour only when stdout is a terminal and NO_COLOR is unset.\n",
          out);
}

static void command_help(const struct ctl_command *cmd, FILE *out)
{
    fprintf(out, "usage: opspoolctl [--json] %s %s\n\n%s\n\n%s", cmd->name, cmd->args, cmd->summary,
            cmd->detail);
    fprintf(out, "  --json       machine-readable output on stdout\n\n%s", exit_codes);
}

void ctl_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fputs("opspoolctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

struct osp_rqs *ctl_rq_try(struct ctl *c, struct osp_err *err)
{
    if (c->rq == NULL) {
        struct osp_rq_opts o;
        osp_config_rq_opts(&c->cfg, &o);
        c->rq = osp_rqs_connect(&o, err);
    }
    return c->rq;
}

struct osp_rqs *ctl_rq(struct ctl *c)
{
    struct osp_err err = {0};
    if (ctl_rq_try(c, &err) == NULL) {
        ctl_die(CTL_UNAVAILABLE, "redis: %s", err.msg);
    }
    return c->rq;
}

struct osp_pgs *ctl_pg_try(struct ctl *c, struct osp_err *err)
{
    if (c->pg == NULL) {
        c->pg = osp_pgs_connect(c->cfg.pg_dsn, err);
    }
    return c->pg;
}

struct osp_pgs *ctl_pg(struct ctl *c)
{
    struct osp_err err = {0};
    if (ctl_pg_try(c, &err) == NULL) {
        ctl_die(CTL_UNAVAILABLE, "postgresql: %s", err.msg);
    }
    return c->pg;
}

int main(int argc, char **argv)
{
    /* A server dying mid-command must give an error message and an exit code, not a silent
     * death by SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    struct ctl c;
    memset(&c, 0, sizeof(c));
    /* Bytes, not words: no argument may carry a control character (a JSON payload may hold
     * tab, newline and carriage return, which JSON allows between tokens). Names and ids are
     * checked against their grammar where each command reads them. */
    for (int k = 1; k < argc; k++) {
        for (const unsigned char *p = (const unsigned char *)argv[k]; *p != '\0'; p++) {
            if ((*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') || *p == 0x7f) {
                fprintf(stderr, "opspoolctl: argument %d contains control character 0x%02x\n", k,
                        *p);
                return CTL_USAGE;
            }
        }
    }
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            c.json = true;
        } else if (ctl_is_help(argv[i])) {
            usage(stdout);
            return CTL_OK;
        } else if (strcmp(argv[i], "--help-config") == 0) {
            osp_config_help(OSP_CFG_CLI, stdout);
            return CTL_OK;
        } else if (strcmp(argv[i], "--print-config") == 0) {
            struct osp_err err = {0, ""};
            if (osp_config_load(&c.cfg, OSP_CFG_CLI, &err) != 0) {
                fprintf(stderr, "opspoolctl: %s\n", err.msg);
                return CTL_USAGE;
            }
            osp_config_print(&c.cfg, OSP_CFG_CLI, stdout);
            osp_config_deinit(&c.cfg);
            return CTL_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("opspoolctl %s\n", OSP_VERSION);
            return CTL_OK;
        } else {
            fprintf(stderr, "opspoolctl: unknown option %s\n", argv[i]);
            usage(stderr);
            return CTL_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return CTL_USAGE;
    }
    if (strcmp(argv[i], "help") == 0) {
        usage(stdout);
        return CTL_OK;
    }
    const struct ctl_command *cmd = NULL;
    for (size_t k = 0; commands[k].name != NULL; k++) {
        if (strcmp(commands[k].name, argv[i]) == 0) {
            cmd = &commands[k];
        }
    }
    if (cmd == NULL) {
        fprintf(stderr, "opspoolctl: unknown command %s\n", argv[i]);
        usage(stderr);
        return CTL_USAGE;
    }
    /* `CMD --help` (also after a subcommand) works without any configuration. A value that
     * happens to read "--help" (submit --payload --help) is not a payload anyone means. */
    for (int k = i + 1; k < argc; k++) {
        if (ctl_is_help(argv[k])) {
            command_help(cmd, stdout);
            return CTL_OK;
        }
        if (strcmp(argv[k], "--json") == 0) {
            c.json = true; /* also accepted after the command */
        }
    }
    struct osp_err err = {0};
    if (osp_config_load(&c.cfg, OSP_CFG_CLI, &err) != 0) {
        fprintf(stderr, "opspoolctl: configuration: %s\n", err.msg);
        return CTL_USAGE;
    }
    osp_log_init("opspoolctl", "warn");
    c.tty = isatty(STDOUT_FILENO) == 1;
    c.color = c.tty && getenv("NO_COLOR") == NULL;
    /* Commands see their own argv without a trailing --json. */
    char **args = osp_xcalloc((size_t)(argc - i) + 1, sizeof(*args));
    int nargs = 0;
    for (int k = i; k < argc; k++) {
        if (k == i || strcmp(argv[k], "--json") != 0) {
            args[nargs++] = argv[k];
        }
    }
    int rc = cmd->fn(&c, nargs, args);
    free(args);
    osp_rqs_free(c.rq);
    osp_pgs_free(c.pg);
    osp_config_deinit(&c.cfg);
    return rc;
}
