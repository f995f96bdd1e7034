/* SPDX-License-Identifier: MIT */
/* campaign_cmd.c — opspoolctl campaign submit|show|cancel|list: adapters over common/ops.h
 * "campaigns" (docs/campaigns.md). --wait advances the campaign itself while it waits (the
 * operation is idempotent), so it also completes without a running scheduler. */
#include "cli/ctl.h"
#include "common/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAMPAIGN_WAIT_DEFAULT_S 3600

static const char *s_or(const json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : dflt;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The steps as a table: the plan's graph (AFTER) with each step's outcome. */
static void print_campaign(struct ctl *c, const json_t *doc)
{
    printf("Campaign:   %s (%s)\n", s_or(doc, "name", "?"), s_or(doc, "id", "?"));
    printf("State:      %s\n", s_or(doc, "state", "?"));
    printf("Fail-fast:  %s\n", json_is_true(json_object_get(doc, "fail_fast")) ? "yes" : "no");
    printf("Created:    %s\n", s_or(doc, "created_at", "-"));
    printf("Finished:   %s\n", s_or(doc, "finished_at", "-"));
    if (json_string_value(json_object_get(doc, "schedule")) != NULL) {
        printf("Schedule:   %s\n", s_or(doc, "schedule", "-"));
    }
    printf("\n");
    static const char *const heads[] = {"STEP",    "KIND", "STATE", "AFTER", "ALWAYS",
                                        "ATTEMPT", "JOB",  "NOTE",  NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(doc, "steps"), i, s)
    {
        char after[256] = "", attempt[32] = "-";
        size_t off = 0;
        size_t k;
        json_t *dep;
        json_array_foreach(json_object_get(s, "after"), k, dep)
        {
            off += (size_t)snprintf(after + off, off < sizeof(after) ? sizeof(after) - off : 0,
                                    "%s%s", k ? "," : "", json_string_value(dep));
        }
        const json_t *at = json_object_get(s, "attempt");
        if (json_is_integer(at) && json_integer_value(at) > 0) {
            snprintf(attempt, sizeof(attempt), "%lld/%lld", (long long)json_integer_value(at),
                     (long long)json_integer_value(json_object_get(s, "max_attempts")));
        }
        const char *state = s_or(s, "state", "?");
        /* A submitted step shows its job's live ledger state (queued, running, ...). */
        if (strcmp(state, "submitted") == 0) {
            state = s_or(s, "job_state", "submitted");
        }
        const char *note = s_or(s, "reason", json_string_value(json_object_get(s, "error")));
        const char *cells[] = {s_or(s, "step", "?"),
                               s_or(s, "kind", "?"),
                               state,
                               after[0] ? after : "-",
                               json_is_true(json_object_get(s, "always")) ? "yes" : "no",
                               attempt,
                               s_or(s, "job_id", "-"),
                               note != NULL ? note : ""};
        size_t row = ctl_table_add(&t, cells);
        ctl_table_color(&t, row, 2, ctl_state_color(state));
    }
    ctl_table_print(&t, stdout, c->color);
    ctl_table_deinit(&t);
}

static json_t *load_plan(const char *path)
{
    json_error_t je;
    json_t *plan = strcmp(path, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &je)
                                          : json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (plan == NULL) {
        ctl_die(CTL_USAGE, "campaign submit: %s line %d: %s", path, je.line, je.text);
    }
    return plan;
}

int ctl_wait_campaign(struct ctl *c, const struct osp_ops *o, const struct osp_submit_policy *pol,
                      const char *id, long timeout_s)
{
    int64_t end = osp_mono_ns() + (int64_t)timeout_s * 1000000000;
    size_t seen = 0;
    for (;;) {
        struct osp_err err = {0};
        bool finished = false;
        int rc = osp_op_campaign_advance(o, pol, id, &finished, &err);
        if (rc != 0 && rc != OSP_EREDIS) {
            ctl_die(ctl_op_exit(rc), "campaign %s: %s", id, err.msg);
        }
        json_t *doc = osp_op_campaign_get(o, id, &err);
        if (doc == NULL) {
            ctl_die(ctl_op_exit(err.code), "campaign %s: %s", id, err.msg);
        }
        const json_t *evs = json_object_get(doc, "events");
        for (; seen < json_array_size(evs) && !c->json; seen++) {
            const json_t *e = json_array_get(evs, seen);
            char *d = json_dumps(json_object_get(e, "data"), JSON_COMPACT);
            fprintf(stderr, "%s %-15s %s\n", s_or(e, "ts", ""), s_or(e, "type", ""),
                    d != NULL ? d : "");
            free(d);
        }
        if (finished || json_string_value(json_object_get(doc, "finished_at")) != NULL) {
            const char *st = s_or(doc, "state", "?");
            if (c->json) {
                ctl_print_json(doc);
            } else {
                print_campaign(c, doc);
            }
            int code = strcmp(st, "succeeded") == 0 ? CTL_OK : CTL_JOB_FAILED;
            json_decref(doc);
            return code;
        }
        json_decref(doc);
        if (osp_mono_ns() > end) {
            fprintf(stderr, "opspoolctl: campaign %s still running after %lds (it goes on)\n", id,
                    timeout_s);
            return CTL_TIMEOUT;
        }
        nap_ms(250);
    }
}

/* --wait and --timeout S at argv[from..]; other arguments are a usage error. */
static void wait_flags(int argc, char **argv, int from, const char *cmd, bool *wait,
                       long *timeout_s, const char **idem)
{
    for (int i = from; i < argc; i++) {
        if (strcmp(argv[i], "--wait") == 0) {
            *wait = true;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            *timeout_s = ctl_parse_long("--timeout", argv[++i], 1, 7 * 86400);
        } else if (idem != NULL && strcmp(argv[i], "--idempotency-key") == 0 && i + 1 < argc) {
            *idem = argv[++i];
        } else {
            ctl_die(CTL_USAGE, "campaign %s: unknown argument %s", cmd, argv[i]);
        }
    }
}

static int campaign_submit(struct ctl *c, int argc, char **argv)
{
    if (argc < 3) {
        ctl_die(CTL_USAGE, "usage: opspoolctl campaign submit FILE|- [--idempotency-key K] "
                           "[--wait] [--timeout S]");
    }
    bool wait = false;
    long timeout_s = CAMPAIGN_WAIT_DEFAULT_S;
    const char *idem = NULL;
    wait_flags(argc, argv, 3, "submit", &wait, &timeout_s, &idem);
    json_t *plan = load_plan(argv[2]);
    struct osp_targets t;
    bool have = false;
    struct osp_submit_policy pol = ctl_policy(c, &t, &have);
    /* Checked before connecting: a bad plan is refused even while a store is down. */
    struct osp_ops chk;
    memset(&chk, 0, sizeof(chk));
    ctl_env_keys(c, &c->keys);
    chk.keys = &c->keys;
    chk.env_max_bytes = (size_t)c->cfg.env_max_bytes;
    struct osp_err err = {0};
    const char *what = NULL;
    if (osp_op_campaign_check(&chk, &pol, plan, &what, &err) != 0) {
        ctl_die(CTL_USAGE, "campaign submit: %s", err.msg);
    }
    struct osp_ops o;
    ctl_ops(c, &o);
    char id[OSP_ID_LEN + 1];
    bool dup = false;
    int rc = osp_op_campaign_submit(&o, &pol, plan, idem, NULL, id, &dup, &what, &err);
    json_decref(plan);
    if (rc != 0) {
        ctl_die(ctl_op_exit(rc), "campaign submit: %s", err.msg);
    }
    if (c->json && !wait) {
        json_t *out = json_pack("{s:s, s:b}", "id", id, "duplicate", dup);
        ctl_print_json(out);
        json_decref(out);
    } else {
        printf("%s\n", id);
        fflush(stdout);
    }
    int code = wait ? ctl_wait_campaign(c, &o, &pol, id, timeout_s) : CTL_OK;
    if (have) {
        osp_targets_deinit(&t);
    }
    return code;
}

static int campaign_show(struct ctl *c, int argc, char **argv)
{
    if (argc != 3) {
        ctl_die(CTL_USAGE, "usage: opspoolctl campaign show ID");
    }
    struct osp_ops o;
    memset(&o, 0, sizeof(o));
    o.pg = ctl_pg(c);
    struct osp_err err = {0};
    json_t *doc = osp_op_campaign_get(&o, argv[2], &err);
    if (doc == NULL) {
        ctl_die(ctl_op_exit(err.code), "campaign %s: %s", argv[2], err.msg);
    }
    if (c->json) {
        ctl_print_json(doc);
    } else {
        print_campaign(c, doc);
        printf("\nTimeline:\n");
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(doc, "events"), i, e)
        {
            char *d = json_dumps(json_object_get(e, "data"), JSON_COMPACT);
            printf("  %s  %-15s %s\n", s_or(e, "ts", ""), s_or(e, "type", ""), d ? d : "");
            free(d);
        }
    }
    json_decref(doc);
    return CTL_OK;
}

static int campaign_cancel(struct ctl *c, int argc, char **argv)
{
    if (argc < 3) {
        ctl_die(CTL_USAGE, "usage: opspoolctl campaign cancel ID [--wait] [--timeout S]");
    }
    bool wait = false;
    long timeout_s = CAMPAIGN_WAIT_DEFAULT_S;
    wait_flags(argc, argv, 3, "cancel", &wait, &timeout_s, NULL);
    struct osp_targets t;
    bool have = false;
    struct osp_submit_policy pol = ctl_policy(c, &t, &have);
    struct osp_ops o;
    ctl_ops(c, &o);
    struct osp_err err = {0};
    char prev[16] = "";
    int rc = osp_op_campaign_cancel(&o, &pol, argv[2], prev, &err);
    if (rc != 0) {
        ctl_die(ctl_op_exit(rc), "campaign cancel: %s", err.msg);
    }
    if (c->json && !wait) {
        json_t *out = json_pack("{s:s, s:s, s:s}", "id", argv[2], "state", "cancelled",
                                "previous_state", prev);
        ctl_print_json(out);
        json_decref(out);
    } else {
        printf("cancelled %s (was %s)\n", argv[2], prev);
        fflush(stdout);
    }
    int code = CTL_OK;
    if (wait) {
        code = ctl_wait_campaign(c, &o, &pol, argv[2], timeout_s);
        code = code == CTL_JOB_FAILED ? CTL_OK : code; /* cancelled is what was asked */
    }
    if (have) {
        osp_targets_deinit(&t);
    }
    return code;
}

static int campaign_list(struct ctl *c, int argc, char **argv)
{
    long limit = 20;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            limit = ctl_parse_long("--limit", argv[++i], 1, 1000);
        } else {
            ctl_die(CTL_USAGE, "campaign list: unknown argument %s", argv[i]);
        }
    }
    struct osp_ops o;
    memset(&o, 0, sizeof(o));
    o.pg = ctl_pg(c);
    struct osp_err err = {0};
    json_t *rows = osp_op_campaigns(&o, (int)limit, &err);
    if (rows == NULL) {
        ctl_die(ctl_op_exit(err.code), "campaign list: %s", err.msg);
    }
    if (c->json) {
        ctl_print_json(rows);
    } else {
        static const char *const heads[] = {"ID",      "NAME",     "STATE", "STEPS OK",
                                            "CREATED", "SCHEDULE", NULL};
        struct ctl_table t;
        ctl_table_init(&t, heads);
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r)
        {
            char ok[32];
            snprintf(ok, sizeof(ok), "%s/%s", s_or(r, "succeeded", "0"), s_or(r, "steps", "0"));
            const char *cells[] = {s_or(r, "id", "?"),         s_or(r, "name", "?"),
                                   s_or(r, "state", "?"),      ok,
                                   s_or(r, "created_at", "-"), s_or(r, "schedule", "-")};
            size_t row = ctl_table_add(&t, cells);
            ctl_table_color(&t, row, 2, ctl_state_color(s_or(r, "state", "")));
        }
        ctl_table_print(&t, stdout, c->color);
        ctl_table_deinit(&t);
    }
    json_decref(rows);
    return CTL_OK;
}

int ctl_cmd_campaign(struct ctl *c, int argc, char **argv)
{
    if (argc < 2) {
        ctl_die(CTL_USAGE, "campaign: submit, show, cancel or list (opspoolctl campaign --help)");
    }
    if (strcmp(argv[1], "submit") == 0) {
        return campaign_submit(c, argc, argv);
    }
    if (strcmp(argv[1], "show") == 0) {
        return campaign_show(c, argc, argv);
    }
    if (strcmp(argv[1], "cancel") == 0) {
        return campaign_cancel(c, argc, argv);
    }
    if (strcmp(argv[1], "list") == 0) {
        return campaign_list(c, argc, argv);
    }
    ctl_die(CTL_USAGE, "campaign: unknown subcommand %s (submit, show, cancel, list)", argv[1]);
}
