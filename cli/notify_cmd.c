/* SPDX-License-Identifier: MIT */
/* notify_cmd.c — opspoolctl notifications [list] | retry ID: adapters over common/ops.h
 * "notifications" (docs/notifications.md). */
#include "cli/ctl.h"
#include "cli/fmt.h"

#include <stdio.h>
#include <string.h>

static const char *s_or(const json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL && s[0] != '\0' ? s : dflt;
}

static enum ctl_color state_color(const char *st)
{
    return strcmp(st, "failed") == 0      ? CTL_C_RED
           : strcmp(st, "delivered") == 0 ? CTL_C_GREEN
                                          : CTL_C_NONE;
}

static int notify_list(struct ctl *c, int argc, char **argv, int first)
{
    const char *state = "failed", *endpoint = NULL;
    int limit = 30;
    bool log = false;
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
            state = argv[++i];
            if (strcmp(state, "all") == 0) {
                state = NULL;
            }
        } else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc) {
            endpoint = argv[++i];
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            limit = (int)ctl_parse_long("--limit", argv[++i], 1, 1000);
        } else if (strcmp(argv[i], "--log") == 0) {
            log = true;
        } else {
            ctl_die(CTL_USAGE, "usage: opspoolctl notifications [list] [--state failed|pending|"
                               "delivered|all] [--endpoint NAME] [--limit N] [--log]");
        }
    }
    struct osp_ops o;
    ctl_ops(c, &o);
    struct osp_err err = {0, ""};
    json_t *rows = osp_op_notifications(&o, state, endpoint, limit, &err);
    if (rows == NULL) {
        ctl_die(ctl_op_exit(err.code), "notifications: %s", err.msg);
    }
    if (c->json) {
        ctl_print_json(rows);
        json_decref(rows);
        return CTL_OK;
    }
    if (json_array_size(rows) == 0) {
        printf("no %s%sdeliveries\n", state != NULL ? state : "", state != NULL ? " " : "");
        json_decref(rows);
        return CTL_OK;
    }
    static const char *const heads[] = {"DELIVERY", "EVENT",    "SUBJECT", "ENDPOINT", "STATE",
                                        ">TRIES",   "OCCURRED", "LAST",    NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        char tries[16], last[320];
        snprintf(tries, sizeof(tries), "%lld",
                 (long long)json_integer_value(json_object_get(r, "attempts")));
        const char *st = s_or(r, "state", "?");
        if (strcmp(st, "pending") == 0) {
            snprintf(last, sizeof(last), "%s%snext at %s", s_or(r, "last_error", ""),
                     json_object_get(r, "last_error") != NULL &&
                             !json_is_null(json_object_get(r, "last_error"))
                         ? "; "
                         : "",
                     s_or(r, "next_at", "-"));
        } else {
            snprintf(last, sizeof(last), "%s", s_or(r, "last_error", s_or(r, "finished_at", "-")));
        }
        const char *cells[] = {s_or(r, "id", "?"),
                               s_or(r, "type", "?"),
                               s_or(r, "subject", "?"),
                               s_or(r, "endpoint", "?"),
                               st,
                               tries,
                               s_or(r, "occurred_at", "-"),
                               last};
        size_t row = ctl_table_add(&t, cells);
        ctl_table_color(&t, row, 4, state_color(st));
    }
    ctl_table_print(&t, stdout, c->color);
    ctl_table_deinit(&t);
    if (log) {
        json_array_foreach(rows, i, r)
        {
            printf("\n%s (%s to %s)\n", s_or(r, "id", "?"), s_or(r, "type", "?"),
                   s_or(r, "endpoint", "?"));
            size_t j;
            json_t *a;
            json_array_foreach(json_object_get(r, "log"), j, a)
            {
                json_t *hs = json_object_get(a, "http_status");
                char status[16];
                snprintf(status, sizeof(status), "%s", "-");
                if (json_is_integer(hs)) {
                    snprintf(status, sizeof(status), "%lld", (long long)json_integer_value(hs));
                }
                printf("  #%lld  %s  %s  HTTP %s  %lld ms  %s\n",
                       (long long)json_integer_value(json_object_get(a, "attempt")),
                       s_or(a, "started_at", "-"), s_or(a, "replica", "-"), status,
                       (long long)json_integer_value(json_object_get(a, "duration_ms")),
                       s_or(a, "error",
                            json_is_null(json_object_get(a, "finished_at"))
                                ? "(running, or its scheduler stopped)"
                                : "ok"));
            }
        }
    }
    json_decref(rows);
    return CTL_OK;
}

int ctl_cmd_notifications(struct ctl *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "retry") == 0) {
        if (argc != 3) {
            ctl_die(CTL_USAGE, "usage: opspoolctl notifications retry DELIVERY_ID");
        }
        struct osp_ops o;
        ctl_ops(c, &o);
        struct osp_err err = {0, ""};
        int rc = osp_op_notification_retry(&o, argv[2], &err);
        if (rc != 0) {
            ctl_die(ctl_op_exit(rc), "notifications retry: %s", err.msg);
        }
        printf("%s: pending again, with a fresh budget of attempts\n", argv[2]);
        return CTL_OK;
    }
    return notify_list(c, argc, argv, strcmp(sub, "list") == 0 ? 2 : 1);
}
