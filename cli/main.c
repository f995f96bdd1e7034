/* SPDX-License-Identifier: MIT */
/* main.c — opspoolctl: the operator CLI. A command table like Redis's; global options
 * before the command; connection settings from the same environment as the services. */
#include "cli/ctl.h"
#include "common/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ctl_command {
    const char *name;
    int (*fn)(struct ctl *c, int argc, char **argv);
    const char *args;
    const char *help;
};

static const struct ctl_command commands[] = {
    {"submit", ctl_cmd_submit, "KIND [--payload JSON|@file] [--count N] [--wait] [--timeout S]",
     "submit jobs (ledger first, then the queue); --wait follows until the job ends"},
    {"queues", ctl_cmd_queues, "[KIND...]", "pending, running, delayed, dead per kind"},
    {"job", ctl_cmd_job, "ID", "everything about one job: state, attempts, events, result"},
    {"migrate", ctl_cmd_migrate, "", "apply ledger migrations (services do this at start)"},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fputs("usage: opspoolctl [--json] COMMAND [ARGS]\n\ncommands:\n", out);
    for (size_t i = 0; commands[i].name != NULL; i++) {
        fprintf(out, "  %-8s %s\n           %s\n", commands[i].name, commands[i].args,
                commands[i].help);
    }
    fputs("\nexit codes: 0 ok, 1 job failed (--wait), 2 usage or configuration, 3 Redis or\n"
          "PostgreSQL unreachable, 4 not found, 5 --wait timed out (the job goes on)\n"
          "\nconnection settings come from the environment (OSP_REDIS_URL, OSP_PG_DSN,\n"
          "OSP_PREFIX, OSP_SIGNING_KEY, ...): see `opspoolctl --help-config`.\n",
          out);
}

void ctl_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("opspoolctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

struct osp_rqs *ctl_rq(struct ctl *c)
{
    if (c->rq == NULL) {
        struct osp_err err = {0};
        struct osp_rq_opts o = {.url = c->cfg.redis_url, .username = c->cfg.redis_username,
                                .password = c->cfg.redis_password, .prefix = c->cfg.prefix};
        c->rq = osp_rqs_connect(&o, &err);
        if (c->rq == NULL) {
            ctl_die(CTL_UNAVAILABLE, "redis: %s", err.msg);
        }
    }
    return c->rq;
}

struct osp_pgs *ctl_pg(struct ctl *c)
{
    if (c->pg == NULL) {
        struct osp_err err = {0};
        c->pg = osp_pgs_connect(c->cfg.pg_dsn, &err);
        if (c->pg == NULL) {
            ctl_die(CTL_UNAVAILABLE, "postgresql: %s", err.msg);
        }
    }
    return c->pg;
}

void ctl_fmt_age(int64_t ms, char *out, size_t n)
{
    if (ms < 0) {
        ms = 0;
    }
    int64_t s = ms / 1000;
    if (s < 60) {
        snprintf(out, n, "%llds", (long long)s);
    } else if (s < 3600) {
        snprintf(out, n, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    } else if (s < 86400) {
        snprintf(out, n, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    } else {
        snprintf(out, n, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    }
}

int main(int argc, char **argv)
{
    struct ctl c;
    memset(&c, 0, sizeof(c));
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            c.json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return CTL_OK;
        } else if (strcmp(argv[i], "--help-config") == 0) {
            osp_config_help(OSP_CFG_CLI, stdout);
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
    struct osp_err err = {0};
    if (osp_config_load(&c.cfg, OSP_CFG_CLI, &err) != 0) {
        fprintf(stderr, "opspoolctl: configuration: %s\n", err.msg);
        return CTL_USAGE;
    }
    osp_log_init("opspoolctl", "warn");
    c.color = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL;
    int rc = cmd->fn(&c, argc - i, argv + i);
    osp_rqs_free(c.rq);
    osp_pgs_free(c.pg);
    osp_config_deinit(&c.cfg);
    return rc;
}
