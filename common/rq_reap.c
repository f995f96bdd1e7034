/* SPDX-License-Identifier: MIT */
/* rq_reap.c — the reaper: a task (common/rq_int.h) that finds workers whose heartbeat is
 * older than the lease, hands each envelope on their processing lists back to its queue with
 * reclaim.lua (or to the dead list once it has crashed max_recoveries times), forgets the
 * worker with forget.lua, and at most once a minute sweeps the in-flight keys of envelopes
 * whose worker is gone. The same machine reclaims a restarted worker's own list
 * (osp_rq_reclaim_own). Driven by both clients through rq_task_feed. Key layout and why each
 * step is one script: docs/decisions/0001-redis-scripts-and-keys.md. */
#include "common/alloc.h"
#include "common/base.h"
#include "common/envelope.h"
#include "common/rq_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RQ_DEAD_JOB_TTL_S 604800 /* job hash of a job the reaper dead-letters: 7 days */
#define RQ_REAP_WORKERS   1000   /* stale workers handled per reap call */
#define RQ_RECLAIM_TRIES  5      /* re-reads when recoveries moved under us */
#define RQ_SWEEP_EVERY_MS 60000  /* the in-flight sweep SCANs the keyspace: not every tick */
#define RQ_SWEEP_LIMIT    1000   /* in-flight entries examined per kind per sweep */

enum rq_reap_phase {
    REAP_WORKERS, /* ZRANGEBYSCORE P:workers */
    REAP_LRANGE,  /* LRANGE the current worker's processing list */
    REAP_RECOV,   /* HGET P:job:<id> recoveries */
    REAP_RECLAIM, /* reclaim.lua for the current envelope */
    REAP_FORGET,  /* forget.lua for the current worker */
    REAP_SCAN,    /* SCAN for P:inflight:* */
    REAP_SWEEP,   /* sweep.lua for one in-flight key */
};

struct rq_reap {
    enum rq_reap_phase phase;
    int lease_ms;
    int max_rec;
    int64_t now;
    int64_t cutoff; /* heartbeats older than this are stale */
    char **workers; /* stale worker ids (owned) */
    size_t nworkers;
    size_t wi;
    struct rq_field *items; /* current worker's processing list (owned copies) */
    size_t nitems;
    size_t ii;
    char kind[OSP_KIND_MAX + 1]; /* current envelope's kind ("unknown" when undecodable) */
    char id[OSP_ID_LEN + 1];     /* current envelope's id ("" when undecodable) */
    struct osp_buf dead;         /* dead record for the current envelope, if it may die */
    int64_t expected;            /* recoveries the dead record was built for */
    int tries;
    bool sweep;      /* run the in-flight sweep this time */
    char cursor[32]; /* SCAN cursor */
    char **keys;     /* in-flight keys of the current SCAN page (owned) */
    size_t nkeys;
    size_t ki;
    bool own;                     /* osp_rq_reclaim_own: this worker's list only, keys kept */
    struct osp_rq_recovery *recs; /* recoveries done so far (owned) */
    size_t nrecs, caprecs;
};

void rq_reap_free(struct rq_reap *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->nworkers; i++) {
        free(r->workers[i]);
    }
    free(r->workers);
    for (size_t i = 0; i < r->nitems; i++) {
        free(r->items[i].p);
    }
    free(r->items);
    for (size_t i = 0; i < r->nkeys; i++) {
        free(r->keys[i]);
    }
    free(r->keys);
    osp_buf_deinit(&r->dead);
    free(r->recs);
    free(r);
}

/* -- reap --
 * ZRANGEBYSCORE P:workers -inf (cutoff  → for each stale worker: LRANGE its processing list
 * → for each envelope: peek kind/id in C, HGET its recoveries, reclaim.lua → forget.lua.
 * Then, at most once a minute, SCAN P:inflight:* and sweep.lua each key. */

static int reap_next_worker(struct rq_task *t);
static int reap_next_item(struct rq_task *t);
static int reap_scan(struct rq_task *t);

void rq_reap_begin_own(struct rq_task *t, int max_rec)
{
    struct rq_reap *r = osp_xcalloc(1, sizeof(*r));
    r->own = true;
    r->max_rec = max_rec;
    r->now = osp_now_ms();
    r->workers = osp_xcalloc(1, sizeof(*r->workers));
    r->workers[0] = osp_xstrdup(t->base->worker_id);
    r->nworkers = 1;
    t->reap = r;
    (void)reap_next_worker(t);
}

void rq_reap_begin(struct rq_task *t, int lease_ms, int max_rec)
{
    struct rq_reap *r = osp_xcalloc(1, sizeof(*r));
    r->lease_ms = lease_ms;
    r->max_rec = max_rec;
    r->now = osp_now_ms();
    r->cutoff = r->now - lease_ms;
    r->sweep = t->base->last_sweep_ms == 0 ||
               r->now - t->base->last_sweep_ms >= RQ_SWEEP_EVERY_MS ||
               r->now < t->base->last_sweep_ms;
    snprintf(r->cursor, sizeof(r->cursor), "0");
    t->reap = r;
    struct rq_cmd *c = &t->cmd;
    rq_cmd_clear(c);
    rq_cmd_adds(c, "ZRANGEBYSCORE");
    rq_cmd_addf(c, "%s:workers", t->base->prefix);
    rq_cmd_adds(c, "-inf");
    rq_cmd_addf(c, "(%lld", (long long)r->cutoff);
    rq_cmd_adds(c, "LIMIT");
    rq_cmd_adds(c, "0");
    rq_cmd_addi(c, RQ_REAP_WORKERS);
    r->phase = REAP_WORKERS;
}

const struct osp_rq_recovery *rq_reap_recs(const struct rq_task *t, size_t *n)
{
    *n = t->reap != NULL ? t->reap->nrecs : 0;
    return t->reap != NULL ? t->reap->recs : NULL;
}

void rq_reap_take_recs(struct rq_task *t, struct osp_rq_recovery **recs, size_t *n)
{
    *recs = t->reap != NULL ? t->reap->recs : NULL;
    *n = t->reap != NULL ? t->reap->nrecs : 0;
    if (t->reap != NULL) {
        t->reap->recs = NULL;
    }
}

static void reap_build_reclaim(struct rq_task *t)
{
    struct rq_reap *r = t->reap;
    const struct rq_base *b = t->base;
    const struct rq_field *it = &r->items[r->ii];
    struct rq_cmd *c = &t->cmd;
    rq_cmd_evalsha(c, b, RQ_RECLAIM);
    rq_cmd_addf(c, "%s:processing:%s", b->prefix, r->workers[r->wi]);
    rq_cmd_adds(c, b->prefix);
    rq_cmd_add(c, it->p, it->n);
    rq_cmd_adds(c, r->kind);
    rq_cmd_adds(c, r->id);
    rq_cmd_addi(c, r->max_rec);
    rq_cmd_addi(c, r->expected);
    rq_cmd_add(c, r->dead.data, r->dead.len);
    rq_cmd_addi(c, r->now);
    rq_cmd_addi(c, RQ_DEAD_JOB_TTL_S);
    r->phase = REAP_RECLAIM;
}

static void reap_build_recov(struct rq_task *t)
{
    struct rq_reap *r = t->reap;
    struct rq_cmd *c = &t->cmd;
    rq_cmd_clear(c);
    rq_cmd_adds(c, "HGET");
    rq_cmd_addf(c, "%s:job:%s", t->base->prefix, r->id);
    rq_cmd_adds(c, "recoveries");
    r->phase = REAP_RECOV;
}

static void reap_note(struct rq_reap *r, bool dead)
{
    if (r->nrecs == r->caprecs) {
        r->caprecs = r->caprecs ? r->caprecs * 2 : 16;
        r->recs = osp_xrealloc(r->recs, r->caprecs * sizeof(*r->recs));
    }
    struct osp_rq_recovery *v = &r->recs[r->nrecs++];
    memset(v, 0, sizeof(*v));
    memcpy(v->id, r->id, sizeof(v->id));
    memcpy(v->kind, r->kind, sizeof(v->kind));
    snprintf(v->worker, sizeof(v->worker), "%s", r->workers[r->wi]);
    v->recoveries = r->expected;
    v->dead = dead;
    v->at_ms = r->now;
    if (dead) {
        snprintf(v->reason, sizeof(v->reason), "killed its worker %lld times (max_recoveries %d)",
                 (long long)r->expected, r->max_rec);
    } else if (r->own) {
        snprintf(v->reason, sizeof(v->reason),
                 "worker lost: %.128s (restarted under the same id; the run died with it)",
                 v->worker);
    } else {
        snprintf(v->reason, sizeof(v->reason), "worker lost: %.128s (no heartbeat for %d ms)",
                 v->worker, r->lease_ms);
    }
}

static int reap_next_item(struct rq_task *t)
{
    struct rq_reap *r = t->reap;
    if (r->ii >= r->nitems && r->own) {
        r->wi++;
        return reap_next_worker(t);
    }
    if (r->ii >= r->nitems) {
        char cutoff[24];
        snprintf(cutoff, sizeof(cutoff), "%lld", (long long)r->cutoff);
        rq_forget_build(t, r->workers[r->wi], cutoff);
        r->phase = REAP_FORGET;
        return RQ_MORE;
    }
    const struct rq_field *it = &r->items[r->ii];
    struct osp_err perr = {0};
    osp_buf_reset(&r->dead);
    r->expected = 0;
    r->tries = 0;
    int rc = osp_env_peek(it->p, it->n, r->kind, r->id);
    if (rc == 0 && !rq_kind_ok(r->kind)) {
        osp_err_set(&perr, OSP_EPROTO, "invalid kind");
        rc = OSP_EPROTO;
    } else if (rc == 0 && r->id[0] == '\0') {
        osp_err_set(&perr, OSP_EPROTO, "no job id");
        rc = OSP_EPROTO;
    } else if (rc != 0) {
        osp_err_set(&perr, rc, "%s", osp_strerror(rc));
    }
    if (rc != 0) {
        char reason[300];
        snprintf(reason, sizeof(reason), "undecodable envelope: %s", perr.msg);
        snprintf(r->kind, sizeof(r->kind), "unknown");
        r->id[0] = '\0';
        osp_dead_encode(reason, r->now, "", it->p, it->n, &r->dead);
        reap_build_reclaim(t);
        return RQ_MORE;
    }
    reap_build_recov(t);
    return RQ_MORE;
}

static int reap_next_worker(struct rq_task *t)
{
    struct rq_reap *r = t->reap;
    if (r->wi >= r->nworkers) {
        return reap_scan(t);
    }
    struct rq_cmd *c = &t->cmd;
    rq_cmd_clear(c);
    rq_cmd_adds(c, "LRANGE");
    rq_cmd_addf(c, "%s:processing:%s", t->base->prefix, r->workers[r->wi]);
    rq_cmd_adds(c, "0");
    rq_cmd_adds(c, "-1");
    r->phase = REAP_LRANGE;
    return RQ_MORE;
}

/* Escape glob metacharacters so the prefix matches itself in SCAN MATCH. */
static void glob_escape(struct osp_buf *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '*' || *s == '?' || *s == '[' || *s == ']' || *s == '\\') {
            osp_buf_append(out, "\\", 1);
        }
        osp_buf_append(out, s, 1);
    }
}

static int reap_scan(struct rq_task *t)
{
    struct rq_reap *r = t->reap;
    if (!r->sweep) {
        return RQ_DONE;
    }
    struct osp_buf pat = OSP_BUF_INIT;
    glob_escape(&pat, t->base->prefix);
    osp_buf_append(&pat, ":inflight:*", 11);
    struct rq_cmd *c = &t->cmd;
    rq_cmd_clear(c);
    rq_cmd_adds(c, "SCAN");
    rq_cmd_adds(c, r->cursor);
    rq_cmd_adds(c, "MATCH");
    rq_cmd_add(c, pat.data, pat.len);
    rq_cmd_adds(c, "COUNT");
    rq_cmd_adds(c, "1000");
    osp_buf_deinit(&pat);
    r->phase = REAP_SCAN;
    return RQ_MORE;
}

static int reap_next_key(struct rq_task *t)
{
    struct rq_reap *r = t->reap;
    if (r->ki >= r->nkeys) {
        if (strcmp(r->cursor, "0") == 0) {
            t->base->last_sweep_ms = r->now;
            return RQ_DONE;
        }
        return reap_scan(t);
    }
    struct rq_cmd *c = &t->cmd;
    rq_cmd_evalsha(c, t->base, RQ_SWEEP);
    rq_cmd_adds(c, r->keys[r->ki]);
    rq_cmd_adds(c, t->base->prefix);
    rq_cmd_addi(c, r->cutoff);
    rq_cmd_addi(c, RQ_SWEEP_LIMIT);
    r->phase = REAP_SWEEP;
    return RQ_MORE;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

int rq_reap_step(struct rq_task *t, const redisReply *rep)
{
    struct rq_reap *r = t->reap;
    switch (r->phase) {
    case REAP_WORKERS:
        if (rep->type != REDIS_REPLY_ARRAY) {
            return rq_task_bad_reply(t, "reap: workers", rep);
        }
        r->workers = osp_xcalloc(rep->elements > 0 ? rep->elements : 1, sizeof(*r->workers));
        for (size_t i = 0; i < rep->elements; i++) {
            const redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_STRING) {
                return rq_task_bad_reply(t, "reap: worker id", e);
            }
            r->workers[r->nworkers++] = osp_xstrndup(e->str, e->len);
        }
        r->wi = 0;
        return reap_next_worker(t);
    case REAP_LRANGE:
        if (rep->type != REDIS_REPLY_ARRAY) {
            return rq_task_bad_reply(t, "reap: processing list", rep);
        }
        for (size_t i = 0; i < r->nitems; i++) {
            free(r->items[i].p);
        }
        free(r->items);
        r->items = osp_xcalloc(rep->elements > 0 ? rep->elements : 1, sizeof(*r->items));
        r->nitems = 0;
        for (size_t i = 0; i < rep->elements; i++) {
            const redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_STRING) {
                return rq_task_bad_reply(t, "reap: processing item", e);
            }
            rq_field_set(&r->items[r->nitems++], e->str, e->len);
        }
        r->ii = 0;
        return reap_next_item(t);
    case REAP_RECOV: {
        int64_t cur = 0;
        if (rep->type != REDIS_REPLY_NIL && !rq_reply_int(rep, &cur)) {
            return rq_task_bad_reply(t, "reap: recoveries", rep);
        }
        r->expected = cur + 1;
        osp_buf_reset(&r->dead);
        if (r->expected > r->max_rec) {
            char reason[128];
            snprintf(reason, sizeof(reason), "killed its worker %lld times (max_recoveries %d)",
                     (long long)r->expected, r->max_rec);
            const struct rq_field *it = &r->items[r->ii];
            osp_dead_encode(reason, r->now, r->id, it->p, it->n, &r->dead);
        }
        reap_build_reclaim(t);
        return RQ_MORE;
    }
    case REAP_RECLAIM: {
        int64_t res;
        if (!rq_reply_int(rep, &res)) {
            return rq_task_bad_reply(t, "reap: reclaim", rep);
        }
        if (res < 0 && ++r->tries < RQ_RECLAIM_TRIES) {
            reap_build_recov(t);
            return RQ_MORE;
        }
        if (res > 0) {
            t->count++;
        }
        if ((res == 1 || res == 3) && r->id[0] != '\0') {
            reap_note(r, res == 3);
        }
        r->ii++;
        return reap_next_item(t);
    }
    case REAP_FORGET:
        if (!rq_reply_int(rep, &(int64_t){0})) {
            return rq_task_bad_reply(t, "reap: forget", rep);
        }
        r->wi++;
        return reap_next_worker(t);
    case REAP_SCAN:
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[0]->len >= sizeof(r->cursor) ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            return rq_task_bad_reply(t, "reap: SCAN", rep);
        }
        memcpy(r->cursor, rep->element[0]->str, rep->element[0]->len);
        r->cursor[rep->element[0]->len] = '\0';
        strv_free(r->keys, r->nkeys);
        r->nkeys = 0;
        r->ki = 0;
        {
            const redisReply *ks = rep->element[1];
            r->keys = osp_xcalloc(ks->elements > 0 ? ks->elements : 1, sizeof(*r->keys));
            for (size_t i = 0; i < ks->elements; i++) {
                if (ks->element[i]->type == REDIS_REPLY_STRING) {
                    r->keys[r->nkeys++] = osp_xstrndup(ks->element[i]->str, ks->element[i]->len);
                }
            }
        }
        return reap_next_key(t);
    case REAP_SWEEP:
        if (!rq_reply_int(rep, &(int64_t){0})) {
            return rq_task_bad_reply(t, "reap: sweep", rep);
        }
        r->ki++;
        return reap_next_key(t);
    }
    return rq_task_fail(t, OSP_EPROTO, "reap: bad phase");
}
