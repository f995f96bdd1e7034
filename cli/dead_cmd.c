/* SPDX-License-Identifier: MIT */
/* dead_cmd.c — dead letters: list, retry (ids, or --all), purge. Retry and purge are the
 * domain operations of common/ops.h (the same as the API's); this file parses and renders. */
#include "cli/ctl.h"
#include "common/alloc.h"
#include "common/cron.h"

#include <stdlib.h>
#include <string.h>

/* Decode the envelope inside a dead record without verifying it (for display only). */
static void peek_env(const struct osp_dead *d, struct osp_job *j)
{
    struct osp_env_keys none = {.nkeys = 0, .allow_unsigned = true};
    memset(j, 0, sizeof(*j)); /* owns nothing: osp_job_deinit-safe */
    if (d->env.len > 0 &&
        osp_env_decode(d->env.data, d->env.len, &none, d->env.len, j, NULL) != 0) {
        osp_job_deinit(j);
        j->attempt = j->max_attempts = 0; /* unknown */
    }
}

/* ---- dead KIND ---- */

static int dead_list(struct ctl *c, const char *kind, long limit)
{
    struct osp_err err = {0};
    int64_t total = 0;
    if (osp_rqs_lengths(ctl_rq(c), kind, NULL, NULL, &total, &err) != 0) {
        ctl_die(CTL_UNAVAILABLE, "%s", err.msg);
    }
    json_t *items = osp_rqs_dead_range(ctl_rq(c), kind, 0, limit - 1, &err);
    if (items == NULL) {
        ctl_die(CTL_UNAVAILABLE, "%s", err.msg);
    }
    json_t *recs = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        struct osp_dead d;
        struct osp_job j;
        memset(&d, 0, sizeof(d));
        json_t *o = json_object();
        if (osp_dead_decode(json_string_value(it), json_string_length(it), &d, &err) != 0) {
            json_object_set_new(o, "job_id", json_null());
            json_object_set_new(o, "reason", json_sprintf("undecodable dead record: %s", err.msg));
            json_array_append_new(recs, o);
            osp_dead_deinit(&d);
            continue;
        }
        peek_env(&d, &j);
        char ts[32];
        osp_time_format_rfc3339(d.failed_at_ms, ts);
        json_object_set_new(o, "job_id", d.job_id[0] ? json_string(d.job_id) : json_null());
        json_object_set_new(o, "reason", json_string(d.reason ? d.reason : ""));
        json_object_set_new(o, "failed_at", json_string(ts));
        json_object_set_new(o, "age_ms", json_integer(osp_now_ms() - d.failed_at_ms));
        json_object_set_new(o, "attempt", json_integer(j.attempt));
        json_object_set_new(o, "max_attempts", json_integer(j.max_attempts));
        json_array_append_new(recs, o);
        osp_job_deinit(&j);
        osp_dead_deinit(&d);
    }
    json_decref(items);
    if (c->json) {
        json_t *out =
            json_pack("{s:s, s:I, s:o}", "kind", kind, "total", (json_int_t)total, "records", recs);
        ctl_print_json(out);
        json_decref(out);
        return CTL_OK;
    }
    if (total == 0) {
        printf("no dead %s jobs\n", kind);
        json_decref(recs);
        return CTL_OK;
    }
    printf("%lld dead %s job(s)%s\n", (long long)total, kind,
           (int64_t)json_array_size(recs) < total ? ", newest first (--limit for more)"
                                                  : ", newest first");
    static const char *const heads[] = {"JOB", ">AGE", ">ATTEMPTS", "REASON", NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    json_array_foreach(recs, i, it) {
        char age[32] = "-", att[32] = "-";
        if (json_object_get(it, "age_ms") != NULL) {
            ctl_fmt_age(ctl_int(it, "age_ms", 0), age, sizeof(age));
        }
        if (ctl_int(it, "max_attempts", 0) > 0) {
            snprintf(att, sizeof(att), "%lld/%lld", (long long)ctl_int(it, "attempt", 0),
                     (long long)ctl_int(it, "max_attempts", 0));
        }
        const char *cells[] = {ctl_str(it, "job_id"), age, att, ctl_str(it, "reason")};
        size_t row = ctl_table_add(&t, cells);
        ctl_table_color(&t, row, 3, CTL_C_RED);
    }
    ctl_table_print(&t, stdout, c->color);
    ctl_table_deinit(&t);
    json_decref(recs);
    return CTL_OK;
}

/* ---- dead retry KIND (ID... | --all --yes) [--max-attempts N] [--limit N] ---- */

/* Positional ids after the kind, as a JSON array (owned), or NULL when there are none. */
static json_t *parse_ids(const char *cmd, char **ids, int n)
{
    if (n == 0) {
        return NULL;
    }
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        if (!osp_id_is_valid(ids[i])) {
            ctl_die(CTL_USAGE, "%s: \"%s\" is not a job id", cmd, ids[i]);
        }
        json_array_append_new(a, json_string(ids[i]));
    }
    return a;
}

static int dead_retry(struct ctl *c, int argc, char **argv)
{
    const char *kind = NULL;
    bool all = false, yes = false;
    long budget = 0, limit = 0;
    char **ids = osp_xcalloc((size_t)argc, sizeof(*ids));
    int nids = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0) {
            all = true;
        } else if (strcmp(argv[i], "--yes") == 0) {
            yes = true;
        } else if (strcmp(argv[i], "--max-attempts") == 0 && i + 1 < argc) {
            budget = ctl_parse_long("--max-attempts", argv[++i], 1, 100);
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            limit = ctl_parse_long("--limit", argv[++i], 1, 1000000000L);
        } else if (argv[i][0] == '-') {
            ctl_die(CTL_USAGE, "dead retry: unknown option %s", argv[i]);
        } else if (kind == NULL) {
            kind = argv[i];
        } else {
            ids[nids++] = argv[i];
        }
    }
    if (kind == NULL || (nids == 0) == !all) {
        ctl_die(CTL_USAGE, "usage: opspoolctl dead retry KIND (ID... | --all --yes) "
                           "[--max-attempts N] [--limit N]");
    }
    ctl_check_kind("dead retry", kind, false);
    json_t *idlist = parse_ids("dead retry", ids, nids);
    free(ids);
    struct osp_ops o;
    struct osp_err err = {0};
    ctl_ops(c, &o);
    if (all && !yes) {
        int64_t n = 0;
        osp_rqs_lengths(o.rq, kind, NULL, NULL, &n, &err);
        ctl_die(CTL_USAGE,
                "dead retry --all re-queues all %lld dead %s job(s); nothing changed: add --yes "
                "to do it",
                (long long)n, kind);
    }
    json_t *rep = NULL;
    int rc = osp_op_dead_retry(&o, kind, idlist, limit, (unsigned)budget, &rep, &err);
    json_decref(idlist);
    json_t *retried = json_object_get(rep, "retried");
    json_t *skipped = json_object_get(rep, "skipped");
    size_t i;
    json_t *it;
    if (c->json) {
        ctl_print_json(rep);
    } else {
        json_array_foreach(retried, i, it) {
            printf("%s queued again (attempt %lld of %lld)\n", ctl_str(it, "id"),
                   (long long)ctl_int(it, "attempt", 0), (long long)ctl_int(it, "max_attempts", 0));
        }
        printf("retried %zu dead %s job(s)%s\n", json_array_size(retried), kind,
               json_array_size(skipped) ? "; skipped (below):" : "");
    }
    json_array_foreach(skipped, i, it) {
        const char *id = ctl_str(it, "id");
        fprintf(stderr, "opspoolctl: skipped %s: %s\n", id != NULL && id[0] ? id : "-",
                ctl_str(it, "reason"));
    }
    if (rc != 0) {
        fprintf(stderr, "opspoolctl: dead retry stopped: %s\n", err.msg);
    }
    int code = rc != 0                         ? ctl_op_exit(rc)
               : json_array_size(skipped) > 0 ? CTL_CONFLICT
                                              : CTL_OK;
    json_decref(rep);
    return code;
}

/* ---- dead purge KIND [ID...] (--yes | --dry-run) ---- */

static int dead_purge(struct ctl *c, int argc, char **argv)
{
    const char *kind = NULL;
    bool yes = false, dry = false;
    char **ids = osp_xcalloc((size_t)argc, sizeof(*ids));
    int nids = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--yes") == 0) {
            yes = true;
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            dry = true;
        } else if (argv[i][0] == '-') {
            ctl_die(CTL_USAGE, "dead purge: unexpected argument %s", argv[i]);
        } else if (kind == NULL) {
            kind = argv[i];
        } else {
            ids[nids++] = argv[i];
        }
    }
    if (kind == NULL || (yes && dry)) {
        ctl_die(CTL_USAGE, "usage: opspoolctl dead purge KIND [ID...] (--yes | --dry-run)");
    }
    ctl_check_kind("dead purge", kind, false);
    json_t *idlist = parse_ids("dead purge", ids, nids);
    free(ids);
    struct osp_ops o;
    struct osp_err err = {0};
    json_t *rep = NULL;
    ctl_ops(c, &o);
    int rc = osp_op_dead_purge(&o, kind, idlist, !yes, &rep, &err);
    json_decref(idlist);
    if (rc != 0) {
        json_decref(rep);
        ctl_die(ctl_op_exit(rc), "dead purge: %s", err.msg);
    }
    if (!yes) {
        json_int_t n = json_integer_value(json_object_get(rep, "would_purge"));
        if (c->json && dry) {
            ctl_print_json(rep);
            json_decref(rep);
            return CTL_OK;
        }
        json_decref(rep);
        if (dry) {
            printf("would purge %lld dead %s record(s); nothing changed\n", (long long)n, kind);
            return CTL_OK;
        }
        ctl_die(CTL_USAGE,
                "dead purge deletes %lld dead %s record(s) for good; nothing changed: add --yes "
                "to do it (the ledger keeps the jobs as dead)",
                (long long)n, kind);
    }
    if (c->json) {
        json_object_del(rep, "ids");
        ctl_print_json(rep);
    } else {
        printf("purged %lld dead %s record(s); the ledger keeps the jobs (state dead)\n",
               (long long)json_integer_value(json_object_get(rep, "purged")), kind);
    }
    json_decref(rep);
    return CTL_OK;
}

int ctl_cmd_dead(struct ctl *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "retry") == 0) {
        return dead_retry(c, argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "purge") == 0) {
        return dead_purge(c, argc, argv);
    }
    const char *kind = NULL;
    long limit = 50;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            limit = ctl_parse_long("--limit", argv[++i], 1, 100000);
        } else if (argv[i][0] == '-' || kind != NULL) {
            ctl_die(CTL_USAGE, "dead: unexpected argument %s", argv[i]);
        } else {
            kind = argv[i];
        }
    }
    if (kind == NULL) {
        ctl_die(CTL_USAGE, "usage: opspoolctl dead KIND [--limit N] (or dead retry|purge ...)");
    }
    ctl_check_kind("dead", kind, false);
    return dead_list(c, kind, limit);
}
