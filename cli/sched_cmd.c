/* SPDX-License-Identifier: MIT */
/* sched_cmd.c — cron schedules: list with next fire, last fire and last outcome; trigger
 * now; enable/disable; put (define) and delete. The operations are common/ops.h's, the same
 * as the API's; this file parses and renders. */
#include "cli/ctl.h"
#include "common/alloc.h"
#include "common/cron.h"
#include "common/submit.h"
#include "jobs/job.h"
#include "jobs/targets.h"

#include <stdlib.h>
#include <string.h>

static int sched_list(struct ctl *c)
{
    struct osp_ops o;
    struct osp_err err = {0};
    ctl_ops(c, &o);
    json_t *rows = osp_op_schedules(&o, NULL, &err);
    if (rows == NULL) {
        ctl_die(ctl_op_exit(err.code), "schedules: %s", err.msg);
    }
    const bool firings = true;
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
    struct osp_ops o;
    struct osp_err err = {0};
    struct osp_targets t;
    bool have = false;
    struct osp_submit_policy pol = ctl_policy(c, &t, &have);
    char id[OSP_ID_LEN + 1];
    ctl_ops(c, &o);
    bool campaign = false;
    int rc = osp_op_schedule_trigger(&o, &pol, name, id, &campaign, &err);
    if (rc == OSP_EREDIS) {
        fprintf(stderr,
                "opspoolctl: %s recorded in the ledger but not queued (%s); the "
                "scheduler's reconciler will queue it\n",
                id, err.msg);
        if (have) {
            osp_targets_deinit(&t);
        }
        return CTL_UNAVAILABLE;
    }
    if (rc != 0) {
        ctl_die(rc == OSP_ECONFLICT ? CTL_USAGE : ctl_op_exit(rc),
                "schedules trigger %s: nothing submitted: %s", name, err.msg);
    }
    if (c->json) {
        json_t *j = json_pack("{s:s, s:s, s:b}", "schedule", name, "id", id, "campaign", campaign);
        ctl_print_json(j);
        json_decref(j);
    } else if (!wait) {
        printf("%s\n", id);
    } else {
        fprintf(stderr, "triggered %s: %s; waiting (up to %lds)\n", name, id, wait_s);
    }
    int code = CTL_OK;
    if (wait) {
        code = campaign ? ctl_wait_campaign(c, &o, &pol, id, wait_s) : ctl_wait_job(c, id, wait_s);
    }
    if (have) {
        osp_targets_deinit(&t);
    }
    return code;
}

static int sched_enable(struct ctl *c, int argc, char **argv, bool enable)
{
    const char *cmd = enable ? "enable" : "disable";
    if (argc != 3) {
        ctl_die(CTL_USAGE, "usage: opspoolctl schedules %s NAME", cmd);
    }
    const char *name = argv[2];
    struct osp_ops o;
    struct osp_err err = {0};
    char next[40];
    ctl_ops(c, &o);
    int rc = osp_op_schedule_enable(&o, name, enable, next, &err);
    if (rc != 0) {
        ctl_die(ctl_op_exit(rc), "schedules %s %s: %s", cmd, name, err.msg);
    }
    if (c->json) {
        json_t *j = json_pack("{s:s, s:b, s:s?}", "name", name, "enabled", enable, "next_fire_at",
                              enable && next[0] ? next : NULL);
        ctl_print_json(j);
        json_decref(j);
    } else if (enable) {
        printf("enabled %s; next fire %s\n", name, next[0] ? next : "unknown");
    } else {
        printf("disabled %s; jobs already submitted continue\n", name);
    }
    return CTL_OK;
}

/* schedules put FILE|- : one definition {name, cron, ...} or {"schedules": [...]}, the format
 * of POST /v1/schedules and OSP_SCHEDULES_FILE. All are checked before any is written. */
static int sched_put(struct ctl *c, int argc, char **argv)
{
    if (argc != 3) {
        ctl_die(CTL_USAGE, "usage: opspoolctl schedules put FILE|-   (JSON: a schedule, or "
                           "{\"schedules\": [...]})");
    }
    json_error_t je;
    json_t *root = strcmp(argv[2], "-") == 0
                       ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &je)
                       : json_load_file(argv[2], JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        ctl_die(CTL_USAGE, "schedules put: %s line %d: %s", argv[2], je.line, je.text);
    }
    json_t *list = json_object_get(root, "schedules");
    if (list == NULL) {
        list = json_pack("[O]", root);
    } else if (!json_is_array(list) || json_object_size(root) != 1) {
        json_decref(root);
        ctl_die(CTL_USAGE, "schedules put: expected a schedule or {\"schedules\": [...]}");
    } else {
        json_incref(list);
    }
    json_decref(root);
    struct osp_ops o;
    struct osp_targets t;
    bool have = false;
    struct osp_submit_policy pol = ctl_policy(c, &t, &have);
    ctl_ops(c, &o);
    int code = CTL_OK;
    size_t i;
    json_t *def;
    json_t *out = json_array();
    json_array_foreach(list, i, def) {
        struct osp_err err = {0};
        bool created = false;
        const char *what = NULL;
        const char *name = json_string_value(json_object_get(def, "name"));
        int rc = osp_op_schedule_put(&o, &pol, def, &created, &what, &err);
        if (rc != 0) {
            fprintf(stderr, "opspoolctl: schedule %zu (%.64s): %s\n", i, name ? name : "?",
                    err.msg);
            code = ctl_op_exit(rc);
            break;
        }
        json_array_append_new(out, json_pack("{s:s, s:b}", "name", name, "created", created));
        if (!c->json) {
            printf("%s %s\n", created ? "created" : "updated", name);
        }
    }
    if (c->json) {
        ctl_print_json(out);
    }
    json_decref(out);
    json_decref(list);
    if (have) {
        osp_targets_deinit(&t);
    }
    return code;
}

static int sched_delete(struct ctl *c, int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[3], "--yes") != 0) {
        ctl_die(CTL_USAGE, "usage: opspoolctl schedules delete NAME --yes   (its firing "
                           "history goes with it; jobs it submitted stay)");
    }
    struct osp_ops o;
    struct osp_err err = {0};
    ctl_ops(c, &o);
    int rc = osp_op_schedule_delete(&o, argv[2], &err);
    if (rc != 0) {
        ctl_die(ctl_op_exit(rc), "schedules delete %s: %s", argv[2], err.msg);
    }
    if (c->json) {
        json_t *j = json_pack("{s:s}", "deleted", argv[2]);
        ctl_print_json(j);
        json_decref(j);
    } else {
        printf("deleted %s\n", argv[2]);
    }
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
    if (strcmp(argv[1], "put") == 0) {
        return sched_put(c, argc, argv);
    }
    if (strcmp(argv[1], "delete") == 0) {
        return sched_delete(c, argc, argv);
    }
    ctl_die(CTL_USAGE, "schedules: unknown subcommand %s (trigger, enable, disable, put, delete)",
            argv[1]);
}
