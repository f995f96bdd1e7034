/* SPDX-License-Identifier: MIT */
/* job_cmd.c — jobs (list), job (describe), cancel, retry. The ledger is read and written
 * first; Redis carries only what a worker must see (the cancel flag, a re-queued envelope). */
#include "cli/ctl.h"
#include "common/alloc.h"
#include "common/cron.h"
#include "common/jobstate.h"

#include <stdlib.h>
#include <string.h>

/* The --state argument as a PostgreSQL text[] literal, or exit CTL_USAGE. */
static const char *state_filter(const char *s)
{
    if (strcmp(s, "active") == 0) {
        return "{queued,delayed,running,retrying}";
    }
    if (strcmp(s, "finished") == 0) {
        return "{succeeded,failed,dead,cancelled}";
    }
    enum osp_job_state st;
    if (osp_job_state_parse(s, &st) == 0) {
        return NULL;
    }
    ctl_die(CTL_USAGE, "jobs: --state %s: expected one of %s, active, finished", s,
            osp_job_states_text());
}

/* Milliseconds between two RFC 3339 fields of row (b absent: now), or -1. */
static int64_t span_ms(const json_t *row, const char *a, const char *b)
{
    int64_t t0 = 0, t1 = 0;
    const char *sa = ctl_str(row, a), *sb = ctl_str(row, b);
    if (sa == NULL || osp_time_parse_rfc3339(sa, &t0) != 0) {
        return -1;
    }
    if (sb == NULL || osp_time_parse_rfc3339(sb, &t1) != 0) {
        t1 = osp_now_ms();
    }
    return t1 >= t0 ? t1 - t0 : 0;
}

/* Copy at most max characters of s (UTF-8 safe), with "..." when cut. Owned. */
static char *clip(const char *s, size_t max)
{
    if (s == NULL) {
        return osp_xstrdup("-");
    }
    size_t i = 0, chars = 0;
    for (; s[i] != '\0'; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && chars++ == max) {
            break;
        }
    }
    char *out = osp_xstrndup(s, i);
    for (char *p = out; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            *p = ' ';
        }
    }
    if (s[i] != '\0') {
        char *o2 = osp_xasprintf("%s...", out);
        free(out);
        out = o2;
    }
    return out;
}

int ctl_cmd_jobs(struct ctl *c, int argc, char **argv)
{
    const char *kind = NULL, *state = NULL, *states = NULL, *since = NULL;
    char since_ms[32], limit_s[32] = "50";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL || a[0] != '-') {
            ctl_die(CTL_USAGE, "jobs: %s %s", a, v == NULL ? "needs a value" : "is not an option");
        }
        i++;
        if (strcmp(a, "--kind") == 0) {
            ctl_check_kind("jobs", v, false);
            kind = v;
        } else if (strcmp(a, "--state") == 0) {
            states = state_filter(v);
            state = states == NULL ? v : NULL;
        } else if (strcmp(a, "--since") == 0) {
            int64_t ms = 0;
            if (ctl_parse_duration(v, &ms) != 0) {
                ctl_die(CTL_USAGE, "jobs: --since %s: expected a duration like 90s, 15m, 1h30m, 2d",
                        v);
            }
            snprintf(since_ms, sizeof(since_ms), "%lld", (long long)ms);
            since = since_ms;
        } else if (strcmp(a, "--limit") == 0) {
            snprintf(limit_s, sizeof(limit_s), "%ld", ctl_parse_long(a, v, 1, 10000));
        } else {
            ctl_die(CTL_USAGE, "jobs: unknown option %s", a);
        }
    }
    char one[40] = "";
    if (state != NULL) {
        snprintf(one, sizeof(one), "{%s}", state);
    }
    struct osp_job_filter f = {.kind = kind,
                               .states = states != NULL ? states : state != NULL ? one : NULL,
                               .since_ms = since != NULL ? strtoll(since, NULL, 10) : 0,
                               .limit = (int)strtol(limit_s, NULL, 10)};
    struct osp_err qerr = {0};
    struct osp_ops ops;
    memset(&ops, 0, sizeof(ops));
    ops.pg = ctl_pg(c); /* a read: Redis is not needed */
    json_t *rows = osp_op_jobs(&ops, &f, &qerr);
    if (rows == NULL) {
        ctl_die(ctl_op_exit(qerr.code), "jobs: %s", qerr.msg);
    }
    size_t i;
    json_t *r;
    if (c->json) {
        json_t *out = json_array();
        json_array_foreach(rows, i, r)
        {
            json_t *o = json_deep_copy(r);
            json_object_set_new(o, "attempt", json_integer(ctl_int(r, "attempt", 0)));
            json_object_set_new(o, "max_attempts", json_integer(ctl_int(r, "max_attempts", 0)));
            json_array_append_new(out, o);
        }
        ctl_print_json(out);
        json_decref(out);
        json_decref(rows);
        return CTL_OK;
    }
    static const char *const heads[] = {"ID",        "KIND",   "STATE", ">ATTEMPT", ">AGE",
                                        ">DURATION", "WORKER", "ERROR", NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    json_array_foreach(rows, i, r)
    {
        char attempt[32], age[32], dur[32] = "-";
        snprintf(attempt, sizeof(attempt), "%lld/%lld", (long long)ctl_int(r, "attempt", 0),
                 (long long)ctl_int(r, "max_attempts", 0));
        ctl_fmt_field_age(r, "created_at", age, sizeof(age));
        int64_t d = span_ms(r, "started_at", "finished_at");
        if (d >= 0) {
            ctl_fmt_age(d, dur, sizeof(dur));
        }
        char *err = clip(ctl_str(r, "error"), 60);
        const char *cells[] = {ctl_str(r, "id"),
                               ctl_str(r, "kind"),
                               ctl_str(r, "state"),
                               attempt,
                               age,
                               dur,
                               ctl_str(r, "worker"),
                               err};
        size_t row = ctl_table_add(&t, cells);
        ctl_table_color(&t, row, 2, ctl_state_color(ctl_str(r, "state")));
        free(err);
    }
    if (t.nrows == 0) {
        fprintf(stderr, "no jobs match\n");
    } else {
        ctl_table_print(&t, stdout, c->color);
    }
    ctl_table_deinit(&t);
    json_decref(rows);
    return CTL_OK;
}

/* ---- job ID: a kubectl-describe-like view of the ledger record ---- */

static void field(struct ctl *c, const char *name, const char *value, enum ctl_color color)
{
    bool set = value != NULL && *value != '\0';
    bool esc = c->color && color != CTL_C_NONE && set;
    printf("%-14s %s%s%s\n", name, esc ? ctl_sgr(color) : "", set ? value : "-",
           esc ? "\033[0m" : "");
}

static void time_field(struct ctl *c, const json_t *j, const char *name, const char *key)
{
    const char *ts = ctl_str(j, key);
    char age[32], line[96];
    if (ts == NULL) {
        field(c, name, NULL, CTL_C_NONE);
        return;
    }
    int64_t ms = 0;
    if (osp_time_parse_rfc3339(ts, &ms) == 0 && ms > osp_now_ms()) {
        ctl_fmt_age(ms - osp_now_ms(), age, sizeof(age));
        snprintf(line, sizeof(line), "%s (in %s)", ts, age);
    } else {
        ctl_fmt_field_age(j, key, age, sizeof(age));
        snprintf(line, sizeof(line), "%s (%s ago)", ts, age);
    }
    field(c, name, line, CTL_C_NONE);
}

/* The live Redis view of the job (P:job:<id>), when Redis answers. Owned text or NULL. */
static char *live_state(struct ctl *c, const char *id)
{
    struct osp_err err = {0};
    if (ctl_rq_try(c, &err) == NULL) {
        return osp_xasprintf("(Redis unreachable: %s)", err.msg);
    }
    json_t *h = osp_rqs_job_hash(ctl_rq(c), id, &err);
    if (h == NULL && err.code != 0) {
        return osp_xasprintf("(Redis error: %s)", err.msg);
    }
    struct osp_buf b = OSP_BUF_INIT;
    const char *f;
    json_t *v;
    json_object_foreach(h, f, v) {
        osp_buf_appendf(&b, "%s%s=%s", b.len ? " " : "", f, json_string_value(v));
    }
    json_decref(h);
    char *out = b.len ? osp_xstrndup((const char *)b.data, b.len)
                      : osp_xstrdup("(no live entry: finished and expired, or not in Redis)");
    osp_buf_deinit(&b);
    return out;
}

static void describe(struct ctl *c, const json_t *j)
{
    const char *state = ctl_str(j, "state");
    char buf[128];
    field(c, "ID:", ctl_str(j, "id"), CTL_C_NONE);
    field(c, "Kind:", ctl_str(j, "kind"), CTL_C_NONE);
    field(c, "State:", state, ctl_state_color(state));
    snprintf(buf, sizeof(buf), "%lld of %lld", (long long)ctl_int(j, "attempt", 0),
             (long long)ctl_int(j, "max_attempts", 0));
    field(c, "Attempt:", buf, CTL_C_NONE);
    field(c, "Worker:", ctl_str(j, "worker"), CTL_C_NONE);
    snprintf(buf, sizeof(buf), "%lld", (long long)ctl_int(j, "recoveries", 0));
    field(c, "Recoveries:", buf, CTL_C_NONE);
    int64_t to = ctl_int(j, "timeout_s", 0);
    if (to > 0) {
        ctl_fmt_age(to * 1000, buf, sizeof(buf));
    } else {
        snprintf(buf, sizeof(buf), "the kind's default");
    }
    field(c, "Timeout:", buf, CTL_C_NONE);
    field(c, "Submitted by:", ctl_str(j, "submitted_by"), CTL_C_NONE);
    field(c, "Schedule:", ctl_str(j, "schedule"), CTL_C_NONE);
    field(c, "Idempotency:", ctl_str(j, "idempotency_key"), CTL_C_NONE);
    field(c, "Trace:", ctl_str(j, "trace_id"), CTL_C_NONE);
    time_field(c, j, "Created:", "created_at");
    time_field(c, j, "Run at:", "run_at");
    time_field(c, j, "Started:", "started_at");
    time_field(c, j, "Finished:", "finished_at");
    int64_t d = span_ms(j, "started_at", "finished_at");
    if (d >= 0) {
        ctl_fmt_age(d, buf, sizeof(buf));
        if (ctl_str(j, "finished_at") == NULL) {
            strncat(buf, " (so far)", sizeof(buf) - strlen(buf) - 1);
        }
    }
    field(c, "Duration:", d >= 0 ? buf : NULL, CTL_C_NONE);
    char *live = live_state(c, ctl_str(j, "id"));
    field(c, "Live (Redis):", live, CTL_C_NONE);
    free(live);
    char *payload = json_dumps(json_object_get(j, "payload"), JSON_COMPACT | JSON_ENCODE_ANY);
    field(c, "Payload:", payload, CTL_C_NONE);
    free(payload);
    field(c, "Error:", ctl_str(j, "error"), CTL_C_RED);

    size_t i;
    json_t *r;
    json_t *attempts = json_object_get(j, "attempts");
    printf("\nAttempts:%s\n", json_array_size(attempts) ? "" : " <none>");
    if (json_array_size(attempts) > 0) {
        static const char *const heads[] = {">#",        "OUTCOME", "WORKER", "STARTED",
                                            ">DURATION", "ERROR",   NULL};
        struct ctl_table t;
        ctl_table_init(&t, heads);
        t.indent = 2;
        json_array_foreach(attempts, i, r)
        {
            char n[16], started[32], dur[32] = "-";
            /* The runs of one attempt (a lost run, then its re-run): 1, 1.1, 1.2, ... */
            long long run = (long long)ctl_int(r, "run", 0);
            if (run > 0) {
                snprintf(n, sizeof(n), "%lld.%lld", (long long)ctl_int(r, "attempt", 0), run);
            } else {
                snprintf(n, sizeof(n), "%lld", (long long)ctl_int(r, "attempt", 0));
            }
            ctl_fmt_field_age(r, "started_at", started, sizeof(started));
            strncat(started, strcmp(started, "-") ? " ago" : "",
                    sizeof(started) - strlen(started) - 1);
            int64_t ad = span_ms(r, "started_at", "finished_at");
            if (ad >= 0) {
                ctl_fmt_age(ad, dur, sizeof(dur));
            }
            char *err = clip(ctl_str(r, "error"), 70);
            const char *cells[] = {n,  ctl_str(r, "outcome"), ctl_str(r, "worker"), started, dur,
                                   err};
            size_t row = ctl_table_add(&t, cells);
            ctl_table_color(&t, row, 1, ctl_state_color(ctl_str(r, "outcome")));
            free(err);
        }
        ctl_table_print(&t, stdout, c->color);
        ctl_table_deinit(&t);
    }
    json_t *events = json_object_get(j, "events");
    printf("\nEvents:%s\n", json_array_size(events) ? "" : " <none>");
    if (json_array_size(events) > 0) {
        static const char *const heads[] = {"TIME", ">AGE", ">ATTEMPT", "TYPE", "DATA", NULL};
        struct ctl_table t;
        ctl_table_init(&t, heads);
        t.indent = 2;
        json_array_foreach(events, i, r)
        {
            char age[32], att[16] = "-";
            ctl_fmt_field_age(r, "ts", age, sizeof(age));
            if (json_integer_value(json_object_get(r, "attempt")) > 0) {
                snprintf(att, sizeof(att), "%lld",
                         (long long)json_integer_value(json_object_get(r, "attempt")));
            }
            json_t *data = json_object_get(r, "data");
            char *dtxt = json_is_null(data) || data == NULL
                             ? NULL
                             : json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
            char *dclip = clip(dtxt, 100);
            const char *cells[] = {ctl_str(r, "ts"), age, att, ctl_str(r, "type"), dclip};
            ctl_table_add(&t, cells);
            free(dtxt);
            free(dclip);
        }
        ctl_table_print(&t, stdout, c->color);
        ctl_table_deinit(&t);
    }
    json_t *result = json_object_get(j, "result");
    if (result == NULL || json_is_null(result)) {
        printf("\nResult: <none>\n");
    } else {
        char *txt = json_dumps(result, JSON_INDENT(2) | JSON_ENCODE_ANY);
        printf("\nResult:\n");
        for (char *line = txt, *nl; line != NULL && *line != '\0'; line = nl) {
            nl = strchr(line, '\n');
            if (nl != NULL) {
                *nl++ = '\0';
            }
            printf("  %s\n", line);
        }
        free(txt);
    }
}

/* Load the job or exit CTL_NOT_FOUND / CTL_UNAVAILABLE. Owned. */
static json_t *get_job(struct ctl *c, const char *cmd, const char *id)
{
    if (!osp_id_is_valid(id)) {
        ctl_die(CTL_USAGE, "%s: \"%s\" is not a job id", cmd, id);
    }
    struct osp_err err = {0};
    json_t *j = osp_ledger_get_job(ctl_pg(c), id, &err);
    if (j == NULL) {
        ctl_die(err.code == OSP_ENOTFOUND ? CTL_NOT_FOUND : CTL_UNAVAILABLE, "%s %s: %s", cmd, id,
                err.msg);
    }
    return j;
}

int ctl_cmd_job(struct ctl *c, int argc, char **argv)
{
    if (argc != 2) {
        ctl_die(CTL_USAGE, "usage: opspoolctl job ID");
    }
    json_t *j = get_job(c, "job", argv[1]);
    if (c->json) {
        ctl_print_json(j);
    } else {
        describe(c, j);
    }
    json_decref(j);
    return CTL_OK;
}

/* ---- cancel ---- */

static void print_bulk(struct ctl *c, const struct osp_bulk_filter *f, bool dry_run,
                       const struct osp_bulk_result *r)
{
    if (c->json) {
        json_t *o = dry_run ? json_pack("{s:s, s:b, s:I}", "kind", f->kind, "dry_run", 1,
                                        "would_cancel", (json_int_t)r->matched)
                            : json_pack("{s:s, s:I, s:I, s:I, s:f, s:{s:f, s:f, s:f}}", "kind",
                                        f->kind, "cancelled", (json_int_t)r->cancelled,
                                        "envelopes_dropped", (json_int_t)r->dropped, "audit_id",
                                        (json_int_t)r->audit_id, "seconds", r->seconds,
                                        "seconds_in", "ledger", r->ledger_s, "redis", r->redis_s,
                                        "sweep", r->sweep_s);
        ctl_print_json(o);
        json_decref(o);
    } else if (dry_run) {
        printf("would cancel %lld %s job(s); nothing changed (add --yes to do it)\n",
               (long long)r->matched, f->kind);
    } else {
        printf("cancelled %lld %s job(s) in %.1f s (%lld envelope(s) removed from Redis; audit "
               "row %lld)\n",
               (long long)r->cancelled, f->kind, r->seconds, (long long)r->dropped,
               (long long)r->audit_id);
    }
}

/* opspoolctl cancel --kind KIND [filters] (--dry-run | --yes) */
static int cancel_bulk(struct ctl *c, int argc, char **argv)
{
    struct osp_bulk_filter f = {.states = OSP_BULK_QUEUED | OSP_BULK_DELAYED | OSP_BULK_RETRYING};
    bool yes = false, dry = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--yes") == 0) {
            yes = true;
        } else if (strcmp(a, "--dry-run") == 0) {
            dry = true;
        } else if (v == NULL) {
            ctl_die(CTL_USAGE, "cancel: unknown option or missing value: %s", a);
        } else if (strcmp(a, "--kind") == 0) {
            f.kind = argv[++i];
        } else if (strcmp(a, "--state") == 0) {
            f.states = osp_bulk_states_parse(argv[++i]);
            if (f.states == 0) {
                ctl_die(CTL_USAGE, "cancel --state: a comma list of queued, delayed, retrying");
            }
        } else if (strcmp(a, "--submitted-by") == 0) {
            f.submitted_by = argv[++i];
        } else if (strcmp(a, "--schedule") == 0) {
            f.schedule = argv[++i];
        } else if (strcmp(a, "--created-before") == 0) {
            f.created_before_ms = ctl_parse_time(a, argv[++i]);
        } else if (strcmp(a, "--created-after") == 0) {
            f.created_after_ms = ctl_parse_time(a, argv[++i]);
        } else if (strcmp(a, "--limit") == 0) {
            f.limit = ctl_parse_long(a, argv[++i], 1, 1000000000L);
        } else {
            ctl_die(CTL_USAGE, "cancel: unknown option %s", a);
        }
    }
    if (f.kind == NULL) {
        ctl_die(CTL_USAGE, "usage: opspoolctl cancel --kind KIND [--state queued,delayed,retrying] "
                           "[--submitted-by WHO] [--schedule NAME] [--created-before T] "
                           "[--created-after T] [--limit N] (--dry-run | --yes)");
    }
    ctl_check_kind("cancel", f.kind, true);
    if (yes && dry) {
        ctl_die(CTL_USAGE, "cancel: --dry-run and --yes exclude each other");
    }
    struct osp_ops o;
    struct osp_bulk_result r;
    struct osp_err err = {0};
    ctl_ops(c, &o);
    int rc = osp_op_bulk_cancel(&o, &f, !yes, &r, &err);
    if (rc != 0) {
        if (!yes) {
            ctl_die(ctl_op_exit(rc), "cancel: %s", err.msg);
        }
        fprintf(stderr, "opspoolctl: cancel: %s\n", err.msg);
        print_bulk(c, &f, false, &r);
        return ctl_op_exit(rc);
    }
    print_bulk(c, &f, !yes, &r);
    return !yes && !dry ? CTL_USAGE : CTL_OK;
}

int ctl_cmd_cancel(struct ctl *c, int argc, char **argv)
{
    if (argc >= 2 && argv[1][0] == '-' && !ctl_is_help(argv[1])) {
        return cancel_bulk(c, argc, argv);
    }
    if (argc != 2) {
        ctl_die(CTL_USAGE, "usage: opspoolctl cancel ID | cancel --kind KIND [filters] "
                           "(--dry-run | --yes)");
    }
    const char *id = argv[1];
    if (!osp_id_is_valid(id)) {
        ctl_die(CTL_USAGE, "cancel: \"%s\" is not a job id", id);
    }
    struct osp_ops o;
    struct osp_cancel_result r;
    struct osp_err err = {0};
    ctl_ops(c, &o);
    int rc = osp_op_cancel(&o, id, &r, &err);
    if (rc != 0) {
        ctl_die(ctl_op_exit(rc), "cancel %s: %s", id, err.msg);
    }
    const char *outcome = r.outcome == OSP_CANCEL_REQUESTED ? "cancel_requested"
                          : r.outcome == OSP_CANCEL_ALREADY ? "already_cancelled"
                                                            : "cancelled";
    if (c->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "outcome", outcome, "state",
                              r.outcome == OSP_CANCEL_REQUESTED ? "running" : "cancelled",
                              "previous_state", r.prev);
        ctl_print_json(j);
        json_decref(j);
    } else if (r.outcome == OSP_CANCEL_DONE) {
        printf("%s cancelled (it was %s)\n", id, r.prev);
    } else if (r.outcome == OSP_CANCEL_ALREADY) {
        printf("%s was already cancelled\n", id);
    } else {
        printf("%s cancel requested: its worker stops it within about a second "
               "(follow with `opspoolctl job %s`)\n",
               id, id);
    }
    return CTL_OK;
}

/* ---- retry ---- */

int ctl_cmd_retry(struct ctl *c, int argc, char **argv)
{
    const char *id = NULL;
    long budget = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--max-attempts") == 0 && i + 1 < argc) {
            budget = ctl_parse_long("--max-attempts", argv[++i], 1, 100);
        } else if (argv[i][0] == '-' || id != NULL) {
            ctl_die(CTL_USAGE, "retry: unexpected argument %s", argv[i]);
        } else {
            id = argv[i];
        }
    }
    if (id == NULL) {
        ctl_die(CTL_USAGE, "usage: opspoolctl retry ID [--max-attempts N]");
    }
    if (!osp_id_is_valid(id)) {
        ctl_die(CTL_USAGE, "retry: \"%s\" is not a job id", id);
    }
    struct osp_ops o;
    struct osp_retry_result r;
    struct osp_err err = {0};
    ctl_ops(c, &o);
    int rc = osp_op_retry(&o, id, NULL, (unsigned)budget, &r, &err);
    if (rc != 0) {
        ctl_die(ctl_op_exit(rc), "retry %s: %s", id, err.msg);
    }
    if (c->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:b}", "id", id, "kind", r.kind,
                              "state", "queued", "previous_state", r.prev, "attempt",
                              (int)r.attempt, "max_attempts", (int)r.max_attempts, "from_dead",
                              r.from_dead);
        ctl_print_json(j);
        json_decref(j);
    } else {
        printf("%s queued again (attempt %u of %u, %s)\n", id, r.attempt, r.max_attempts,
               r.rebuilt        ? "envelope rebuilt from the ledger"
               : r.record_gone  ? "its dead record was already gone"
               : r.from_dead    ? "removed from the dead list"
                                : "was cancelled");
    }
    return CTL_OK;
}
