/* SPDX-License-Identifier: MIT */
/* rq_int.h — shared between rq.c (the clients and the pool's scripts) and rq_admin.c (the
 * control-plane operations on the sync client). Not for use outside those two files. */
#ifndef OSP_RQ_INT_H
#define OSP_RQ_INT_H

#include "common/rq.h"

#include <jansson.h>
#include <stddef.h>

/* The Lua scripts (common/lua/<name>.lua), loaded with SCRIPT LOAD, called with EVALSHA. */
enum rq_script {
    RQ_SETTLE,
    RQ_FETCH,
    RQ_HEARTBEAT,
    RQ_FORGET,
    RQ_PROMOTE,
    RQ_RECLAIM,
    RQ_SWEEP,
    RQ_STATS,
    RQ_CANCEL, /* control-plane scripts (rq_admin.c) */
    RQ_REQUEUE,
    RQ_PURGE,
    RQ_NSCRIPTS
};

/* EVALSHA script (one of the control-plane scripts, RQ_CANCEL and after) on the sync client
 * with KEYS[1] = key and ARGV = args (lens may be NULL for text); NOSCRIPT reloads once. The
 * reply as JSON (owned), or NULL with err. */
json_t *rqs_script(struct osp_rqs *c, int script, const char *key, int nargs, const char **args,
                   const size_t *lens, struct osp_err *err);

#endif
