/* SPDX-License-Identifier: MIT */
/* targets.c — loading and validating the targets file. */
#include "jobs/targets.h"
#include "common/envelope.h"

#include <stdio.h>
#include <string.h>

/* Target names and lease keys: [a-z0-9_-]{1,64}. */
static bool name_ok(const char *s)
{
    return osp_name_is_valid(s, 64);
}

#define LEASES_MAX_SHARED 10000

/* "leases": {"<kind>": "exclusive"|"shared"|"none", ..., "max_shared": 1..10000}. */
static int leases_check(const char *target, json_t *l, char *why, size_t cap)
{
    if (l == NULL) {
        return 0;
    }
    if (!json_is_object(l)) {
        snprintf(why, cap, "target %s: leases must be an object", target);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(l, k, v)
    {
        if (strcmp(k, "max_shared") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > LEASES_MAX_SHARED) {
                snprintf(why, cap, "target %s: leases.max_shared must be an integer 1..%d", target,
                         LEASES_MAX_SHARED);
                return -1;
            }
            continue;
        }
        const char *m = json_string_value(v);
        if (!name_ok(k) || m == NULL ||
            (strcmp(m, "exclusive") != 0 && strcmp(m, "shared") != 0 && strcmp(m, "none") != 0)) {
            snprintf(why, cap,
                     "target %s: leases.%.64s must be \"exclusive\", \"shared\" or \"none\"",
                     target, k);
            return -1;
        }
    }
    return 0;
}

enum osp_lease_mode osp_target_lease(const struct osp_targets *t, const char *target,
                                     const char *kind, int *max_shared)
{
    *max_shared = 0;
    const json_t *tg = osp_target_get(t, target);
    if (tg == NULL || kind == NULL) {
        return OSP_LEASE_NONE;
    }
    const json_t *l = json_object_get(tg, "leases");
    *max_shared = (int)osp_target_int(l, "max_shared", 0);
    const char *m = osp_target_str(l, kind);
    if (m == NULL) {
        /* The defaults: a drill owns its target; benchmarks may share it with each other but
         * never with a drill; other kinds take no lease. */
        m = strcmp(kind, "drill") == 0       ? "exclusive"
            : strcmp(kind, "benchmark") == 0 ? "shared"
                                             : "none";
    }
    return strcmp(m, "exclusive") == 0 ? OSP_LEASE_EXCLUSIVE
           : strcmp(m, "shared") == 0  ? OSP_LEASE_SHARED
                                       : OSP_LEASE_NONE;
}

static int adopt(struct osp_targets *t, json_t *doc, struct osp_err *err)
{
    json_t *targets = json_object_get(doc, "targets");
    if (!json_is_object(targets)) {
        json_decref(doc);
        return osp_err_set(err, OSP_EINVAL, "targets file: top level must be {\"targets\": {...}}");
    }
    const char *name;
    json_t *v;
    json_object_foreach(targets, name, v) {
        /* name and v belong to doc: format the message before releasing it. */
        int rc = 0;
        const char *ad = json_string_value(json_object_get(v, "adapter"));
        if (!name_ok(name)) {
            rc = osp_err_set(err, OSP_EINVAL, "targets file: bad target name \"%.64s\"", name);
        } else if (!json_is_object(v)) {
            rc = osp_err_set(err, OSP_EINVAL, "targets file: target %s must be an object", name);
        } else if (ad != NULL && strcmp(ad, "local") != 0 && strcmp(ad, "kubernetes") != 0) {
            rc = osp_err_set(err, OSP_EINVAL,
                             "targets file: target %s: adapter must be local or kubernetes", name);
        } else {
            char why[200];
            if (leases_check(name, json_object_get(v, "leases"), why, sizeof(why)) != 0) {
                rc = osp_err_set(err, OSP_EINVAL, "targets file: %s", why);
            }
        }
        if (rc != 0) {
            json_decref(doc);
            return rc;
        }
    }
    t->root = json_incref(targets);
    json_decref(doc);
    return 0;
}

int osp_targets_load(struct osp_targets *t, const char *path, struct osp_err *err)
{
    t->root = NULL;
    if (path == NULL || path[0] == '\0') {
        t->root = json_object();
        return 0;
    }
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL) {
        return osp_err_set(err, OSP_EINVAL, "targets file %s: line %d: %s", path, je.line, je.text);
    }
    return adopt(t, doc, err);
}

int osp_targets_parse(struct osp_targets *t, const char *json_text, struct osp_err *err)
{
    t->root = NULL;
    json_error_t je;
    json_t *doc = json_loads(json_text, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL) {
        return osp_err_set(err, OSP_EINVAL, "targets: line %d: %s", je.line, je.text);
    }
    return adopt(t, doc, err);
}

void osp_targets_deinit(struct osp_targets *t)
{
    json_decref(t->root);
    t->root = NULL;
}

const json_t *osp_target_get(const struct osp_targets *t, const char *name)
{
    if (t == NULL || t->root == NULL || name == NULL) {
        return NULL;
    }
    return json_object_get(t->root, name);
}

const char *osp_target_str(const json_t *target, const char *key)
{
    return json_string_value(json_object_get(target, key));
}

long long osp_target_int(const json_t *target, const char *key, long long dflt)
{
    const json_t *v = json_object_get(target, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}
