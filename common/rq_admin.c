/* SPDX-License-Identifier: MIT */
/* rq_admin.c — the control-plane side of the queue: what operators and the API do to jobs
 * (cancel, requeue, purge, dead letters, pause), on the sync client. Contract: common/rq.h;
 * the order against the ledger (ledger first) is common/ops.c's. Keys are built here and in
 * rq.c only. */
#include "common/alloc.h"
#include "common/base.h"
#include "common/envelope.h"
#include "common/id.h"
#include "common/rq.h"
#include "common/rq_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool kind_ok(const char *kind)
{
    return kind != NULL && osp_kind_name_is_valid(kind);
}

static char *key2(struct osp_rqs *c, const char *a, const char *b)
{
    return osp_xasprintf("%s:%s%s", osp_rqs_prefix(c), a, b != NULL ? b : "");
}

/* One command; reply as JSON (owned) or NULL with err. */
static json_t *cmd(struct osp_rqs *c, int argc, const char **argv, const size_t *lens,
                   struct osp_err *err)
{
    return osp_rqs_command(c, argc, argv, lens, err);
}

int osp_rqs_cancel(struct osp_rqs *c, const char *const *ids, const enum osp_rq_cancel_mode *modes,
                   size_t n, int ttl_s, struct osp_err *err)
{
    if (n == 0) {
        return 0;
    }
    const char **args = osp_xcalloc(3 + 2 * n, sizeof(*args));
    char now[24], ttl[24];
    snprintf(now, sizeof(now), "%lld", (long long)osp_now_ms());
    snprintf(ttl, sizeof(ttl), "%d", ttl_s > 0 ? ttl_s : 1);
    args[0] = osp_rqs_prefix(c);
    args[1] = now;
    args[2] = ttl;
    for (size_t i = 0; i < n; i++) {
        if (!osp_id_is_valid(ids[i])) {
            free(args);
            return osp_err_set(err, OSP_EINVAL, "cancel: invalid job id");
        }
        args[3 + 2 * i] = ids[i];
        args[4 + 2 * i] = modes[i] == OSP_RQ_CANCEL_RUNNING ? "running" : "final";
    }
    char *route = key2(c, "paused", NULL);
    json_t *r = rqs_script(c, RQ_CANCEL, route, (int)(3 + 2 * n), args, NULL, err);
    free(route);
    free(args);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EREDIS;
    }
    json_decref(r);
    return 0;
}

int osp_rqs_requeue(struct osp_rqs *c, const char *kind, const char *id, const void *rec,
                    size_t rec_len, const void *env, size_t env_len, bool *removed,
                    struct osp_err *err)
{
    if (!kind_ok(kind) || !osp_id_is_valid(id) || env_len == 0) {
        return osp_err_set(err, OSP_EINVAL, "requeue: invalid kind, id or envelope");
    }
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)osp_now_ms());
    const char *args[] = {
        osp_rqs_prefix(c), kind, id, rec_len > 0 ? "1" : "0", rec_len > 0 ? (const char *)rec : "",
        (const char *)env, now};
    size_t lens[] = {strlen(args[0]), strlen(kind), strlen(id), 1, rec_len, env_len, strlen(now)};
    char *dkey = key2(c, "dead:", kind);
    json_t *r = rqs_script(c, RQ_REQUEUE, dkey, 7, args, lens, err);
    free(dkey);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EREDIS;
    }
    if (removed != NULL) {
        *removed = json_integer_value(r) == 1;
    }
    json_decref(r);
    return 0;
}

int osp_rqs_purge_step(struct osp_rqs *c, const char *kind, bool delayed, int64_t max,
                       int64_t *start, int64_t *looked, int64_t *dropped, struct osp_err *err)
{
    if (!kind_ok(kind) || max <= 0) {
        return osp_err_set(err, OSP_EINVAL, "purge: invalid kind or step");
    }
    char maxs[24], starts[24];
    snprintf(maxs, sizeof(maxs), "%lld", (long long)max);
    snprintf(starts, sizeof(starts), "%lld", (long long)(start != NULL ? *start : 0));
    const char *args[] = {osp_rqs_prefix(c), delayed ? "delayed" : "queue", kind, maxs, starts};
    char *key = delayed ? key2(c, "delayed", NULL) : key2(c, "queue:", kind);
    json_t *r = rqs_script(c, RQ_PURGE, key, 5, args, NULL, err);
    free(key);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EREDIS;
    }
    if (!json_is_array(r) || json_array_size(r) != 3) {
        json_decref(r);
        return osp_err_set(err, OSP_EREDIS, "purge: unexpected reply");
    }
    *looked += json_integer_value(json_array_get(r, 0));
    *dropped += json_integer_value(json_array_get(r, 1));
    if (start != NULL) {
        *start = json_integer_value(json_array_get(r, 2));
    }
    json_decref(r);
    return 0;
}

int osp_rqs_purge_one(struct osp_rqs *c, const char *kind, const char *id, int64_t max,
                      bool *dropped, struct osp_err *err)
{
    if (!kind_ok(kind) || !osp_id_is_valid(id) || max <= 0) {
        return osp_err_set(err, OSP_EINVAL, "purge: invalid kind, id or bound");
    }
    char maxs[24];
    snprintf(maxs, sizeof(maxs), "%lld", (long long)max);
    const char *args[] = {osp_rqs_prefix(c), "one", kind, maxs, "0", id};
    char *key = key2(c, "queue:", kind);
    json_t *r = rqs_script(c, RQ_PURGE, key, 6, args, NULL, err);
    free(key);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EREDIS;
    }
    *dropped = json_integer_value(json_array_get(r, 1)) == 1;
    json_decref(r);
    return 0;
}

static int int_reply(struct osp_rqs *c, const char *op, const char *key, int64_t *out,
                     struct osp_err *err)
{
    if (out == NULL) {
        return 0;
    }
    const char *argv[] = {op, key};
    json_t *r = cmd(c, 2, argv, NULL, err);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EREDIS;
    }
    *out = json_integer_value(r);
    json_decref(r);
    return 0;
}

int osp_rqs_lengths(struct osp_rqs *c, const char *kind, int64_t *queue, int64_t *delayed,
                    int64_t *dead, struct osp_err *err)
{
    if (!kind_ok(kind)) {
        return osp_err_set(err, OSP_EINVAL, "lengths: invalid kind");
    }
    char *q = key2(c, "queue:", kind);
    char *z = key2(c, "delayed", NULL);
    char *d = key2(c, "dead:", kind);
    int rc = int_reply(c, "LLEN", q, queue, err);
    if (rc == 0) {
        rc = int_reply(c, "ZCARD", z, delayed, err);
    }
    if (rc == 0) {
        rc = int_reply(c, "LLEN", d, dead, err);
    }
    free(q);
    free(z);
    free(d);
    return rc;
}

json_t *osp_rqs_dead_range(struct osp_rqs *c, const char *kind, int64_t start, int64_t stop,
                           struct osp_err *err)
{
    if (!kind_ok(kind)) {
        osp_err_set(err, OSP_EINVAL, "dead: invalid kind");
        return NULL;
    }
    char a[24], b[24];
    snprintf(a, sizeof(a), "%lld", (long long)start);
    snprintf(b, sizeof(b), "%lld", (long long)stop);
    char *d = key2(c, "dead:", kind);
    const char *argv[] = {"LRANGE", d, a, b};
    json_t *r = cmd(c, 4, argv, NULL, err);
    free(d);
    return r;
}

int osp_rqs_dead_remove(struct osp_rqs *c, const char *kind, const void *rec, size_t len,
                        bool *removed, struct osp_err *err)
{
    if (!kind_ok(kind)) {
        return osp_err_set(err, OSP_EINVAL, "dead: invalid kind");
    }
    char *d = key2(c, "dead:", kind);
    const char *argv[] = {"LREM", d, "-1", rec}; /* from the oldest end */
    size_t lens[] = {4, strlen(d), 2, len};
    json_t *r = cmd(c, 4, argv, lens, err);
    free(d);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EREDIS;
    }
    if (removed != NULL) {
        *removed = json_integer_value(r) > 0;
    }
    json_decref(r);
    return 0;
}

int osp_rqs_pause(struct osp_rqs *c, const char *kind, bool pause, bool *changed,
                  struct osp_err *err)
{
    if (!kind_ok(kind)) {
        return osp_err_set(err, OSP_EINVAL, "pause: invalid kind");
    }
    char *p = key2(c, "paused", NULL);
    const char *argv[] = {pause ? "SADD" : "SREM", p, kind};
    json_t *r = cmd(c, 3, argv, NULL, err);
    free(p);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EREDIS;
    }
    if (changed != NULL) {
        *changed = json_integer_value(r) > 0;
    }
    json_decref(r);
    return 0;
}

json_t *osp_rqs_job_hash(struct osp_rqs *c, const char *id, struct osp_err *err)
{
    if (!osp_id_is_valid(id)) {
        osp_err_set(err, OSP_EINVAL, "job: invalid id");
        return NULL;
    }
    char *k = key2(c, "job:", id);
    const char *argv[] = {"HGETALL", k};
    json_t *r = cmd(c, 2, argv, NULL, err);
    free(k);
    if (r == NULL) {
        return NULL;
    }
    json_t *o = NULL;
    if (json_is_array(r) && json_array_size(r) >= 2) {
        o = json_object();
        for (size_t i = 0; i + 1 < json_array_size(r); i += 2) {
            const char *f = json_string_value(json_array_get(r, i));
            if (f != NULL) {
                json_object_set(o, f, json_array_get(r, i + 1));
            }
        }
    }
    json_decref(r);
    return o;
}

/* A flat HGETALL reply as an object (owned; {} for an empty reply). */
static json_t *pairs_to_object(const json_t *r)
{
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < json_array_size(r); i += 2) {
        const char *f = json_string_value(json_array_get(r, i));
        if (f != NULL) {
            json_object_set(o, f, json_array_get(r, i + 1));
        }
    }
    return o;
}

json_t *osp_rqs_worker_list(struct osp_rqs *c, struct osp_err *err)
{
    char *k = key2(c, "workers", NULL);
    const char *argv[] = {"ZRANGE", k, "0", "-1", "WITHSCORES"};
    json_t *r = cmd(c, 5, argv, NULL, err);
    free(k);
    if (r == NULL) {
        return NULL;
    }
    json_t *out = json_array();
    for (size_t i = 0; i + 1 < json_array_size(r); i += 2) {
        const char *hb = json_string_value(json_array_get(r, i + 1));
        json_array_append_new(out, json_pack("[O, I]", json_array_get(r, i),
                                             (json_int_t)(hb != NULL ? strtoll(hb, NULL, 10) : 0)));
    }
    json_decref(r);
    return out;
}

json_t *osp_rqs_worker_hash(struct osp_rqs *c, const char *id, struct osp_err *err)
{
    char *k = key2(c, "worker:", id);
    const char *argv[] = {"HGETALL", k};
    json_t *r = cmd(c, 2, argv, NULL, err);
    free(k);
    if (r == NULL) {
        return NULL;
    }
    json_t *o = pairs_to_object(r);
    json_decref(r);
    return o;
}

json_t *osp_rqs_worker_held(struct osp_rqs *c, const char *id, struct osp_err *err)
{
    char *k = key2(c, "processing:", id);
    const char *argv[] = {"LRANGE", k, "0", "-1"};
    json_t *r = cmd(c, 4, argv, NULL, err);
    free(k);
    return r;
}

int osp_rqs_worker_count(struct osp_rqs *c, int64_t *n, struct osp_err *err)
{
    char *k = key2(c, "workers", NULL);
    int rc = int_reply(c, "ZCARD", k, n, err);
    free(k);
    return rc;
}

static char *cron_key(struct osp_rqs *c, const char *name, int64_t tick)
{
    return osp_xasprintf("%s:cron:%s:%lld", osp_rqs_prefix(c), name, (long long)tick);
}

int osp_rqs_cron_claim(struct osp_rqs *c, const char *name, int64_t tick, const char *owner,
                       int64_t ttl_s, bool *won, struct osp_err *err)
{
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)(ttl_s > 0 ? ttl_s : 1));
    char *k = cron_key(c, name, tick);
    const char *argv[] = {"SET", k, owner, "NX", "EX", ttl};
    json_t *r = cmd(c, 6, argv, NULL, err);
    free(k);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EREDIS;
    }
    *won = json_is_string(r);
    json_decref(r);
    return 0;
}

int osp_rqs_cron_release(struct osp_rqs *c, const char *name, int64_t tick, struct osp_err *err)
{
    char *k = cron_key(c, name, tick);
    const char *argv[] = {"DEL", k};
    json_t *r = cmd(c, 2, argv, NULL, err);
    free(k);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EREDIS;
    }
    json_decref(r);
    return 0;
}

int osp_rqs_ping(struct osp_rqs *c, struct osp_err *err)
{
    const char *argv[] = {"PING"};
    json_t *r = cmd(c, 1, argv, NULL, err);
    if (r == NULL) {
        return err->code != 0 ? err->code : OSP_EREDIS;
    }
    json_decref(r);
    return 0;
}
