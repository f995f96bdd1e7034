/* SPDX-License-Identifier: MIT */
/* sched_cmd.c — cron schedules from the ledger (opspool.schedules, and
 * opspool.schedule_firings when the scheduler's migration has created it): list with next
 * fire, last fire and last outcome; trigger now; enable/disable. */
#include "cli/ctl.h"
#include "common/alloc.h"
#include "common/cron.h"
#include "common/submit.h"
#include "jobs/job.h"

#include <stdlib.h>
#include <string.h>

static bool has_firings(struct ctl *c)
{
    json_t *r =
        ctl_query(c, "SELECT to_regclass('opspool.schedule_firings') IS NOT NULL AS t", 0, NULL);
    const char *t = ctl_str(json_array_get(r, 0), "t");
    bool yes = t != NULL && strcmp(t, "t") == 0;
    json_decref(r);
    return yes;
}

static int sched_list(struct ctl *c)
{
    bool firings = has_firings(c);
    char *sql = osp_xasprintf(
        "SELECT s.name, s.cron, s.timezone, s.kind, s.enabled::text AS enabled, "
        "opspool.ts_iso(s.next_fire_at) AS next_fire_at, "
        "opspool.ts_iso(s.last_fire_at) AS last_fire_at, s.last_job_id::text AS last_job_id, "
        "lj.id::text AS latest_job_id, lj.state AS last_outcome, "
        "opspool.ts_iso(lj.created_at) AS latest_job_at, "
        "(SELECT opspool.ts_iso(max(j.finished_at)) FROM opspool.jobs j "
        "WHERE j.schedule = s.name AND j.state = 'succeeded') AS last_success_at%s "
        "FROM opspool.schedules s LEFT JOIN LATERAL (SELECT j.id, j.state, j.created_at "
        "FROM opspool.jobs j WHERE j.schedule = s.name ORDER BY j.created_at DESC LIMIT 1) lj "
        "ON true %s ORDER BY s.name",
        firings ? ", f.status AS last_tick, f.reason AS last_tick_reason, "
                  "opspool.ts_iso(f.fire_at) AS last_tick_at"
                : "",
        firings ? "LEFT JOIN LATERAL (SELECT status, reason, fire_at FROM "
                  "opspool.schedule_firings x WHERE x.schedule = s.name "
                  "ORDER BY x.fire_at DESC LIMIT 1) f ON true"
                : "");
    json_t *rows = ctl_query(c, sql, 0, NULL);
    free(sql);
    size_t i;
    json_t *r;
    if (c->json) {
        json_array_foreach(rows, i, r) {
            json_object_set_new(r, "enabled",
                                json_boolean(strcmp(ctl_str(r, "enabled"), "true") == 0));
        }
        ctl_print_json(rows);
        json_decref(rows);
        return CTL_OK;
    }
    if (json_array_size(rows) == 0) {
        printf("no schedules\n");
        json_decref(rows);
        return CTL_OK;
    }
    static const char *const heads[] = {"NAME",          "CRON",      "TZ",    "KIND",
                                        "ENABLED",       ">NEXT",     ">LAST", "LAST-OUTCOME",
                                        ">LAST-SUCCESS", "LAST-TICK", NULL};
    const char *const *h = heads;
    static const char *const heads_no_tick[] = {"NAME",          "CRON",  "TZ",    "KIND",
                                                "ENABLED",       ">NEXT", ">LAST", "LAST-OUTCOME",
                                                ">LAST-SUCCESS", NULL};
    if (!firings) {
        h = heads_no_tick;
    }
    struct ctl_table t;
    ctl_table_init(&t, h);
    json_array_foreach(rows, i, r) {
        bool enabled = strcmp(ctl_str(r, "enabled"), "true") == 0;
        char next[40] = "-", last[40], succ[40], tick[160] = "-";
        int64_t ms = 0;
        if (enabled && ctl_str(r, "next_fire_at") != NULL &&
            osp_time_parse_rfc3339(ctl_str(r, "next_fire_at"), &ms) == 0) {
            char a[32];
            ctl_fmt_age(ms - osp_now_ms(), a, sizeof(a));
            snprintf(next, sizeof(next), ms >= osp_now_ms() ? "in %s" : "due (%s)", a);
        }
        ctl_fmt_field_age(r, "last_fire_at", last, sizeof(last));
        strncat(last, strcmp(last, "-") ? " ago" : "", sizeof(last) - strlen(last) - 1);
        ctl_fmt_field_age(r, "last_success_at", succ, sizeof(succ));
        strncat(succ, strcmp(succ, "-") ? " ago" : "", sizeof(succ) - strlen(succ) - 1);
        if (ctl_str(r, "last_tick") != NULL) {
            snprintf(tick, sizeof(tick), "%s%s%s", ctl_str(r, "last_tick"),
                     ctl_str(r, "last_tick_reason") ? ": " : "",
                     ctl_str(r, "last_tick_reason") ? ctl_str(r, "last_tick_reason") : "");
        }
        const char *cells[] = {ctl_str(r, "name"),
                               ctl_str(r, "cron"),
                               ctl_str(r, "timezone"),
                               ctl_str(r, "kind"),
                               enabled ? "yes" : "no",
                               next,
                               last,
                               ctl_str(r, "last_outcome"),
                               succ,
                               tick};
        size_t row = ctl_table_add(&t, cells);
        ctl_table_color(&t, row, 4, enabled ? CTL_C_NONE : CTL_C_YELLOW);
        ctl_table_color(&t, row, 7, ctl_state_color(ctl_str(r, "last_outcome")));
    }
    ctl_table_print(&t, stdout, c->color);
    ctl_table_deinit(&t);
    json_decref(rows);
    return CTL_OK;
}

/* The schedule's row with every column (later migrations' too), or exit CTL_NOT_FOUND. */
static json_t *load_schedule(struct ctl *c, const char *name)
{
    if (!osp_schedule_name_is_valid(name)) {
        ctl_die(CTL_USAGE, "invalid schedule name: expected [A-Za-z0-9_.-]{1,%d}",
                OSP_SCHEDULE_NAME_MAX);
    }
    const char *params[1] = {name};
    json_t *rows = ctl_query(c,
                             "SELECT to_jsonb(s)::text AS row FROM opspool.schedules s "
                             "WHERE s.name = $1",
                             1, params);
    const char *txt = ctl_str(json_array_get(rows, 0), "row");
    if (txt == NULL) {
        json_decref(rows);
        ctl_die(CTL_NOT_FOUND, "no schedule named %s (see `opspoolctl schedules`)", name);
    }
    json_error_t je;
    json_t *row = json_loads(txt, 0, &je);
    json_decref(rows);
    if (row == NULL) {
        ctl_die(CTL_UNAVAILABLE, "schedule %s: unreadable row: %s", name, je.text);
    }
    return row;
}

static int sched_trigger(struct ctl *c, int argc, char **argv)
{
    const char *name = NULL;
    bool wait = false;
    long wait_s = 600;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--wait") == 0) {
            wait = true;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            wait_s = ctl_parse_long("--timeout", argv[++i], 1, 604800);
        } else if (argv[i][0] == '-' || name != NULL) {
            ctl_die(CTL_USAGE, "schedules trigger: unexpected argument %s", argv[i]);
        } else {
            name = argv[i];
        }
    }
    if (name == NULL) {
        ctl_die(CTL_USAGE, "usage: opspoolctl schedules trigger NAME [--wait] [--timeout S]");
    }
    json_t *row = load_schedule(c, name);
    const char *kind = ctl_str(row, "kind");
    const struct job_kind *k = kind != NULL ? job_kind_find(kind) : NULL;
    if (k == NULL) {
        json_decref(row);
        ctl_die(CTL_USAGE, "schedule %s: kind %s is not known to this opspoolctl", name,
                kind ? kind : "(none)");
    }
    json_t *payload = json_object_get(row, "payload");
    struct osp_err err = {0};
    if (!json_is_object(payload) || k->validate(payload, NULL, &err) != 0) {
        json_decref(row);
        ctl_die(CTL_USAGE, "schedule %s: its payload is invalid for %s: %s", name, k->name,
                err.msg);
    }
    struct osp_job job;
    osp_job_init(&job);
    snprintf(job.kind, sizeof(job.kind), "%s", k->name);
    json_decref(job.payload);
    job.payload = json_incref(payload);
    const char *dflt = getenv("OSP_DEFAULT_MAX_ATTEMPTS");
    int64_t max_attempts = ctl_int(row, "max_attempts", dflt != NULL ? strtol(dflt, NULL, 10) : 3);
    job.max_attempts = (uint32_t)(max_attempts >= 1 && max_attempts <= 1000 ? max_attempts : 3);
    int64_t to = ctl_int(row, "timeout_s", 0);
    job.timeout_s = (uint32_t)(to > 0 && to <= 604800 ? to : 0);
    free(job.schedule);
    job.schedule = osp_xstrdup(name);
    free(job.submitted_by);
    job.submitted_by = osp_xstrdup("opspoolctl schedules trigger");
    struct osp_env_keys keys;
    ctl_env_keys(c, &keys);
    char ids[1][OSP_ID_LEN + 1];
    bool dup[1] = {false};
    int r = osp_submit(ctl_pg(c), ctl_rq(c), &keys, &job, 1, ids, dup, &err);
    osp_job_deinit(&job);
    json_decref(row);
    if (r == OSP_EREDIS) {
        fprintf(stderr,
                "opspoolctl: %s recorded in the ledger but not queued (%s); the "
                "scheduler's reconciler will queue it\n",
                ids[0], err.msg);
        return CTL_UNAVAILABLE;
    }
    if (r != 0) {
        ctl_die(r == OSP_EINVAL ? CTL_USAGE : CTL_UNAVAILABLE,
                "schedules trigger %s: nothing submitted: %s", name, err.msg);
    }
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "schedule", name, "id", ids[0], "kind", k->name);
        ctl_print_json(o);
        json_decref(o);
    } else if (!wait) {
        printf("%s\n", ids[0]);
    } else {
        fprintf(stderr, "triggered %s: %s; waiting (up to %lds)\n", name, ids[0], wait_s);
    }
    return wait ? ctl_wait_job(c, ids[0], wait_s) : CTL_OK;
}

static int sched_enable(struct ctl *c, int argc, char **argv, bool enable)
{
    const char *cmd = enable ? "enable" : "disable";
    if (argc != 3) {
        ctl_die(CTL_USAGE, "usage: opspoolctl schedules %s NAME", cmd);
    }
    const char *name = argv[2];
    json_t *row = load_schedule(c, name);
    /* Enabling restarts from the coming tick: ticks missed while disabled are not fired. */
    char next[24] = "0";
    struct osp_cron cron;
    struct osp_err err = {0};
    int64_t next_s = 0;
    const char *tz = ctl_str(row, "timezone");
    if (enable && osp_cron_parse(&cron, ctl_str(row, "cron"), &err) == 0 &&
        osp_cron_next(&cron, tz != NULL ? tz : "UTC", osp_now_ms() / 1000, &next_s, &err) == 0) {
        snprintf(next, sizeof(next), "%lld", (long long)next_s * 1000);
    }
    json_decref(row);
    const char *params[3] = {name, enable ? "true" : "false", next};
    json_t *u = ctl_query(
        c,
        "UPDATE opspool.schedules SET enabled = $2::boolean, updated_at = now(), "
        "next_fire_at = CASE WHEN $2::boolean AND $3::bigint > 0 THEN opspool.ms_ts($3::bigint) "
        "ELSE next_fire_at END WHERE name = $1 "
        "RETURNING name, opspool.ts_iso(next_fire_at) AS next_fire_at",
        3, params);
    const json_t *r = json_array_get(u, 0);
    if (r == NULL) {
        json_decref(u);
        ctl_die(CTL_NOT_FOUND, "no schedule named %s", name);
    }
    if (c->json) {
        json_t *o = json_pack("{s:s, s:b, s:s?}", "name", name, "enabled", enable, "next_fire_at",
                              enable ? ctl_str(r, "next_fire_at") : NULL);
        ctl_print_json(o);
        json_decref(o);
    } else if (enable) {
        printf("enabled %s; next fire %s\n", name,
               ctl_str(r, "next_fire_at") ? ctl_str(r, "next_fire_at") : "unknown");
    } else {
        printf("disabled %s; jobs already submitted continue\n", name);
    }
    json_decref(u);
    return CTL_OK;
}

int ctl_cmd_schedules(struct ctl *c, int argc, char **argv)
{
    if (argc == 1) {
        return sched_list(c);
    }
    if (strcmp(argv[1], "trigger") == 0) {
        return sched_trigger(c, argc, argv);
    }
    if (strcmp(argv[1], "enable") == 0 || strcmp(argv[1], "disable") == 0) {
        return sched_enable(c, argc, argv, strcmp(argv[1], "enable") == 0);
    }
    ctl_die(CTL_USAGE, "schedules: unknown subcommand %s (trigger, enable, disable)", argv[1]);
}
