/* SPDX-License-Identifier: MIT */
/* util.c — helpers every opspoolctl command shares: option values, JSON output, Redis key
 * names and raw commands, ledger queries and the time fields they return. */
#include "cli/ctl.h"
#include "common/alloc.h"
#include "common/cron.h"
#include "common/submit.h"
#include "jobs/job.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long ctl_parse_long(const char *opt, const char *v, long min, long max)
{
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < min || n > max) {
        ctl_die(CTL_USAGE, "%s: expected an integer %ld..%ld, got \"%s\"", opt, min, max, v);
    }
    return n;
}

void ctl_print_json(const json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', stdout);
}

void ctl_env_keys(const struct ctl *c, struct osp_env_keys *keys)
{
    osp_env_keys_from(keys, c->cfg.signing_key, c->cfg.signing_key_old, c->cfg.allow_unsigned);
}

json_t *ctl_query(struct ctl *c, const char *sql, int nparams, const char *const *params)
{
    struct osp_err err = {0};
    json_t *rows = osp_pgs_query(ctl_pg(c), sql, nparams, params, &err);
    if (rows == NULL) {
        ctl_die(CTL_UNAVAILABLE, "postgresql: %s", err.msg);
    }
    return rows;
}

const char *ctl_who(void)
{
    static char who[96];
    if (who[0] == '\0') {
        uid_t uid = getuid();
        const struct passwd *pw = getpwuid(uid);
        if (pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0') {
            snprintf(who, sizeof(who), "user:%.80s", pw->pw_name);
        } else {
            snprintf(who, sizeof(who), "uid:%lu", (unsigned long)uid);
        }
    }
    return who;
}

const char *ctl_str(const json_t *row, const char *field)
{
    return json_string_value(json_object_get(row, field));
}

int64_t ctl_int(const json_t *row, const char *field, int64_t dflt)
{
    const json_t *v = json_object_get(row, field);
    if (json_is_integer(v)) {
        return (int64_t)json_integer_value(v);
    }
    const char *s = json_string_value(v);
    if (s == NULL || *s == '\0') {
        return dflt;
    }
    char *end = NULL;
    long long n = strtoll(s, &end, 10);
    return *end == '\0' ? (int64_t)n : dflt;
}

int64_t ctl_age_of(const json_t *row, const char *field)
{
    const char *s = ctl_str(row, field);
    int64_t ms = 0;
    if (s == NULL || osp_time_parse_rfc3339(s, &ms) != 0) {
        return -1;
    }
    int64_t age = osp_now_ms() - ms;
    return age < 0 ? 0 : age;
}

void ctl_fmt_field_age(const json_t *row, const char *field, char *out, size_t n)
{
    int64_t age = ctl_age_of(row, field);
    if (age < 0) {
        snprintf(out, n, "-");
    } else {
        ctl_fmt_age(age, out, n);
    }
}

bool ctl_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

size_t ctl_kinds(const char **kinds, size_t max)
{
    size_t n = 0;
    for (const struct job_kind *const *k = job_kinds_all(); *k != NULL && n + 1 < max; k++) {
        kinds[n++] = (*k)->name;
    }
    kinds[n] = NULL;
    return n;
}

void ctl_check_kind(const char *cmd, const char *kind, bool registered)
{
    if (!osp_kind_name_is_valid(kind)) {
        ctl_die(CTL_USAGE, "%s: \"%s\" is not a kind name ([a-z0-9_-]{1,32})", cmd, kind);
    }
    if (registered && job_kind_find(kind) == NULL) {
        ctl_die(CTL_USAGE, "%s: unknown kind %s (see `opspoolctl queues`)", cmd, kind);
    }
}

void ctl_ops(struct ctl *c, struct osp_ops *o)
{
    memset(o, 0, sizeof(*o));
    o->pg = ctl_pg(c);
    o->rq = ctl_rq(c);
    ctl_env_keys(c, &c->keys);
    o->keys = &c->keys;
    o->env_max_bytes = (size_t)c->cfg.env_max_bytes;
    o->job_ttl_s = c->cfg.job_ttl_s;
    o->actor.who = ctl_who();
    o->actor.via = "opspoolctl";
}

int ctl_op_exit(int rc)
{
    switch (rc) {
    case 0: return CTL_OK;
    case OSP_ENOTFOUND: return CTL_NOT_FOUND;
    case OSP_ECONFLICT: return CTL_CONFLICT;
    case OSP_EINVAL: return CTL_USAGE;
    default: return CTL_UNAVAILABLE;
    }
}

int64_t ctl_parse_time(const char *opt, const char *v)
{
    int64_t ms = 0;
    if (v == NULL || osp_time_parse_rfc3339(v, &ms) != 0 || ms <= 0) {
        ctl_die(CTL_USAGE, "%s: expected an RFC 3339 time (2026-01-02T03:04:05Z), got \"%.64s\"",
                opt, v != NULL ? v : "");
    }
    return ms;
}

struct osp_submit_policy ctl_policy(struct ctl *c, struct osp_targets *t, bool *have)
{
    struct osp_err err = {0};
    *have = c->cfg.targets_file != NULL && c->cfg.targets_file[0] != '\0';
    memset(t, 0, sizeof(*t));
    if (*have && osp_targets_load(t, c->cfg.targets_file, &err) != 0) {
        ctl_die(CTL_USAGE, "OSP_TARGETS_FILE: %s", err.msg);
    }
    struct osp_submit_policy p = {c->cfg.default_max_attempts, *have ? t : NULL};
    return p;
}
