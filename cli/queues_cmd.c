/* SPDX-License-Identifier: MIT */
/* queues_cmd.c — the per-kind queue table (queues, --watch) and pause/resume. Queue figures
 * come straight from Redis (so this works while the scheduler is down); jobs/min from the
 * ledger, shown as "-" while PostgreSQL is unreachable instead of failing the command. */
#include "cli/ctl.h"
#include "common/cron.h"
#include "jobs/job.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUES_MAX 64

/* kind -> finished jobs per minute over the last 5 minutes; NULL when the ledger is down. */
static json_t *rates(struct ctl *c, bool *warned)
{
    struct osp_err err = {0};
    json_t *rows = NULL;
    if (ctl_pg_try(c, &err) != NULL) {
        struct osp_ops o;
        memset(&o, 0, sizeof(o));
        o.pg = c->pg;
        rows = osp_op_finished_counts(&o, 300, &err);
    }
    if (rows == NULL) {
        if (!*warned) {
            fprintf(stderr, "opspoolctl: jobs/min unavailable (postgresql: %s)\n", err.msg);
            *warned = true;
        }
        return NULL;
    }
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(rows, k, v) {
        json_object_set_new(out, k, json_real((double)json_integer_value(v) / 5.0));
    }
    json_decref(rows);
    return out;
}

/* Workers (from ctl_load_workers) whose kinds include kind and whose lease is live. */
static json_int_t serving(const json_t *workers, const char *kind)
{
    json_int_t n = 0;
    size_t i, k;
    json_t *w, *name;
    json_array_foreach(workers, i, w) {
        if (json_is_true(json_object_get(w, "stale"))) {
            continue;
        }
        json_array_foreach(json_object_get(w, "kinds"), k, name) {
            if (strcmp(json_string_value(name), kind) == 0) {
                n++;
                break;
            }
        }
    }
    return n;
}

static json_t *snapshot(struct ctl *c, const char *const *names, size_t n, bool all, bool *warned)
{
    struct osp_rqs *rq = ctl_rq(c);
    json_t *workers = ctl_load_workers(c, false);
    json_t *rate = rates(c, warned);
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++) {
        struct osp_rq_stats st;
        struct osp_err err = {0};
        if (osp_rqs_stats(rq, names[i], &st, &err) != 0) {
            ctl_die(CTL_UNAVAILABLE, "queues: %s", err.msg);
        }
        /* "unknown" holds undecodable messages; show it only when it holds something. */
        if (all && job_kind_find(names[i]) == NULL && st.pending + st.dead + st.delayed == 0) {
            continue;
        }
        int64_t age = st.oldest_pending_ms > 0 ? osp_now_ms() - st.oldest_pending_ms : 0;
        json_t *jpm = json_null();
        if (rate != NULL) {
            json_t *v = json_object_get(rate, names[i]);
            jpm = json_real(v != NULL ? json_real_value(v) : 0.0);
        }
        json_array_append_new(rows,
                              json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:I, s:I, s:o}", "kind",
                                        names[i], "pending", (json_int_t)st.pending, "running",
                                        (json_int_t)st.running, "delayed", (json_int_t)st.delayed,
                                        "dead", (json_int_t)st.dead, "waiting",
                                        (json_int_t)st.waiting, "paused", st.paused, "workers",
                                        serving(workers, names[i]), "oldest_pending_ms",
                                        (json_int_t)(age > 0 ? age : 0), "jobs_per_min", jpm));
    }
    json_decref(rate);
    json_decref(workers);
    return rows;
}

static void print_table(struct ctl *c, const json_t *rows)
{
    static const char *const heads[] = {"KIND",     ">PENDING", ">RUNNING", ">DELAYED",
                                        ">DEAD",    ">WAITING", "PAUSED",   ">WORKERS",
                                        ">OLDEST",  ">JOBS/MIN", NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        char num[6][24], age[32] = "-", jpm[32] = "-";
        const char *f[6] = {"pending", "running", "delayed", "dead", "workers", "waiting"};
        for (size_t k = 0; k < 6; k++) {
            snprintf(num[k], sizeof(num[k]), "%lld", (long long)ctl_int(r, f[k], 0));
        }
        if (ctl_int(r, "pending", 0) > 0) {
            ctl_fmt_age(ctl_int(r, "oldest_pending_ms", 0), age, sizeof(age));
        }
        json_t *v = json_object_get(r, "jobs_per_min");
        if (json_is_real(v)) {
            snprintf(jpm, sizeof(jpm), "%.1f", json_real_value(v));
        }
        bool paused = json_is_true(json_object_get(r, "paused"));
        const char *cells[] = {ctl_str(r, "kind"), num[0], num[1], num[2], num[3], num[5],
                               paused ? "yes" : "no", num[4], age,    jpm};
        size_t row = ctl_table_add(&t, cells);
        if (paused) {
            ctl_table_color(&t, row, 6, CTL_C_YELLOW);
        }
        if (ctl_int(r, "waiting", 0) > 0) {
            ctl_table_color(&t, row, 5, CTL_C_YELLOW); /* parked: their target is leased */
        }
        if (ctl_int(r, "dead", 0) > 0) {
            ctl_table_color(&t, row, 4, CTL_C_RED);
        }
        if (ctl_int(r, "pending", 0) > 0 && ctl_int(r, "workers", 0) == 0) {
            ctl_table_color(&t, row, 7, CTL_C_RED); /* backlog nobody serves */
        }
    }
    ctl_table_print(&t, stdout, c->color);
    ctl_table_deinit(&t);
}

int ctl_cmd_queues(struct ctl *c, int argc, char **argv)
{
    const char *names[QUEUES_MAX];
    size_t n = 0;
    bool watch = false;
    long count = 0, interval = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--watch") == 0 || strcmp(a, "-w") == 0) {
            watch = true;
        } else if (strcmp(a, "--count") == 0 && i + 1 < argc) {
            count = ctl_parse_long(a, argv[++i], 1, 1000000);
        } else if (strcmp(a, "--interval") == 0 && i + 1 < argc) {
            interval = ctl_parse_long(a, argv[++i], 1, 3600);
        } else if (a[0] == '-') {
            ctl_die(CTL_USAGE, "queues: unknown option %s", a);
        } else if (n + 1 < QUEUES_MAX) {
            ctl_check_kind("queues", a, false);
            names[n++] = a;
        }
    }
    bool all = n == 0;
    if (all) {
        n = ctl_kinds(names, QUEUES_MAX - 1);
        names[n++] = "unknown";
    }
    if (!watch) {
        count = 1;
    }
    bool warned = false;
    for (long round = 0; count == 0 || round < count; round++) {
        if (round > 0) {
            struct timespec ts = {interval, 0};
            nanosleep(&ts, NULL);
        }
        json_t *rows = snapshot(c, names, n, all, &warned);
        if (c->json) {
            json_dumpf(rows, stdout, watch ? JSON_COMPACT : JSON_INDENT(2));
            fputc('\n', stdout);
        } else {
            if (watch) {
                char now[32];
                osp_time_format_rfc3339(osp_now_ms(), now);
                /* In place on a terminal (clear + home); separated blocks in a pipe. */
                fputs(c->tty ? "\033[H\033[2J" : (round > 0 ? "\n" : ""), stdout);
                printf("Every %lds: opspoolctl queues%s   %s\n\n", interval,
                       count > 0 ? "" : " (Ctrl-C to stop)", now);
            }
            print_table(c, rows);
        }
        fflush(stdout);
        json_decref(rows);
    }
    return CTL_OK;
}

/* ---- pause / resume ---- */

static int set_paused(struct ctl *c, int argc, char **argv, bool pause)
{
    const char *cmd = pause ? "pause" : "resume";
    if (argc != 2) {
        ctl_die(CTL_USAGE, "usage: opspoolctl %s KIND", cmd);
    }
    const char *kind = argv[1];
    ctl_check_kind(cmd, kind, true);
    struct osp_ops ops;
    struct osp_err err = {0};
    bool changed = false;
    ctl_ops(c, &ops);
    int rc = osp_op_pause(&ops, kind, pause, &changed, &err);
    if (rc != 0) {
        ctl_die(ctl_op_exit(rc), "%s %s: %s", cmd, kind, err.msg);
    }
    if (c->json) {
        json_t *o = json_pack("{s:s, s:b, s:b}", "kind", kind, "paused", pause, "changed", changed);
        ctl_print_json(o);
        json_decref(o);
    } else if (pause) {
        printf("%s %s: workers stop fetching it within about a second; running jobs finish; "
               "submissions still queue\n",
               changed ? "paused" : "already paused", kind);
    } else if (changed) {
        printf("resumed %s: workers fetch it again\n", kind);
    } else {
        printf("%s was not paused\n", kind);
    }
    return CTL_OK;
}

int ctl_cmd_pause(struct ctl *c, int argc, char **argv)
{
    return set_paused(c, argc, argv, true);
}

int ctl_cmd_resume(struct ctl *c, int argc, char **argv)
{
    return set_paused(c, argc, argv, false);
}
