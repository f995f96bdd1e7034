/* SPDX-License-Identifier: MIT */
/* targets.h — the operator's list of what jobs may touch (OSP_TARGETS_FILE). A job names a
 * target; it never carries a raw address, selector or command.
 *
 *   {"targets": {"<name>": {"adapter": "local" | "kubernetes",
 *                           "base_url": "http://127.0.0.1:8080", "health_path": "/health",
 *                           "pg_dsn": "...", "leases": {...},
 *                           ... adapter- and kind-specific keys ...}}}
 *
 * Names match [a-z0-9_-]{1,64}. The file is loaded once in the worker parent; children
 * inherit it. Values are read through the accessors (borrowed from the targets object). */
#ifndef OSP_TARGETS_H
#define OSP_TARGETS_H

#include "common/err.h"
#include "common/rq.h"

#include <jansson.h>

struct osp_targets {
    json_t *root; /* owned: the "targets" object */
};

/* Load path (NULL or "" gives an empty set). 0 or OSP_EINVAL with err naming the problem. */
int osp_targets_load(struct osp_targets *t, const char *path, struct osp_err *err);
/* Parse from a JSON text (tests). */
int osp_targets_parse(struct osp_targets *t, const char *json_text, struct osp_err *err);
void osp_targets_deinit(struct osp_targets *t);
/* The target object, or NULL. */
const json_t *osp_target_get(const struct osp_targets *t, const char *name);
/* String field of a target, or NULL when absent or not a string. */
const char *osp_target_str(const json_t *target, const char *key);
/* Integer field, or dflt. */
long long osp_target_int(const json_t *target, const char *key, long long dflt);
/* The lease a job of kind takes on target before it runs (docs/decisions/0008): the target's
 * "leases" object ({"<kind>": "exclusive"|"shared"|"none", "max_shared": N}), else the
 * defaults: drill exclusive, benchmark shared, other kinds none. *max_shared: the most shared
 * holders at once, 0 = no limit. OSP_LEASE_NONE for an unknown target. */
enum osp_lease_mode osp_target_lease(const struct osp_targets *t, const char *target,
                                     const char *kind, int *max_shared);

#endif
