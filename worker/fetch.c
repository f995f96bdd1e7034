/* SPDX-License-Identifier: MIT */
/* fetch.c — keeping the slots fed. A non-blocking batch fetch (one script call moves up to
 * one envelope per idle slot from the kinds' queues into this worker's processing list);
 * when it finds nothing, one blocking BLMOVE on one kind at a time (rotating for workers
 * that serve several kinds), on its own connection. At most one of each is outstanding.
 * A blocking wait is short (1 s, 250 ms with several kinds) so a draining worker never
 * unregisters while a BLMOVE could still deliver into its processing list. */
#include "common/alloc.h"
#include "common/log.h"
#include "worker/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_CHUNK 128

static void take_items(struct wrk *w, const struct osp_rq_item *items, size_t n);

static void on_requeued(struct osp_rq *rq, int status, const int64_t *res, size_t n, void *arg)
{
    (void)rq;
    (void)res;
    (void)n;
    (void)arg;
    if (status != 0) {
        /* Still in our processing list: the reaper hands it back once our heartbeat stops. */
        osp_warn("could not hand back a job fetched during drain; the reaper will recover it");
    }
}

/* Start-up cost matters when KEDA scales from zero: say when the first fetch answered. */
static void note_first_fetch(struct wrk *w)
{
    if (w->first_fetch_done) {
        return;
    }
    w->first_fetch_done = true;
    char at[32];
    snprintf(at, sizeof(at), "%lld", (long long)osp_now_ms());
    const char *f[] = {"first_fetch_at_ms", at, NULL};
    OSP_LOG_F(OSP_LOG_INFO, f, "first fetch");
}

static void take_items(struct wrk *w, const struct osp_rq_item *items, size_t n)
{
    struct osp_rq_ops *back = NULL;
    note_first_fetch(w);
    for (size_t i = 0; i < n; i++) {
        struct slot *s = NULL;
        for (int k = 0; k < w->nslots && s == NULL; k++) {
            if (w->slots[k].state == SLOT_IDLE) {
                s = &w->slots[k];
            }
        }
        if (s == NULL || w->draining) {
            /* Arrived after drain began (or, impossibly, with no idle slot): give it back. */
            if (back == NULL) {
                back = osp_rq_ops_new();
            }
            osp_rq_op_requeue(back, items[i].kind, "", items[i].env, items[i].env_len);
            continue;
        }
        slot_begin(w, s, items[i].kind, items[i].env, items[i].env_len);
    }
    if (back != NULL) {
        if (osp_rq_apply(w->rq, back, on_requeued, w) != 0) {
            on_requeued(w->rq, OSP_EREDIS, NULL, 0, w);
        }
        osp_rq_ops_free(back);
    }
}

static void on_wait(struct osp_rq *rq, int status, const struct osp_rq_item *items, size_t n,
                    uint64_t paused, void *arg)
{
    (void)rq;
    (void)paused;
    struct wrk *w = arg;
    w->wait_inflight = false;
    if (status == 0) {
        take_items(w, items, n);
    }
    wrk_maybe_finish(w);
    wrk_fetch_pump(w);
}

static void start_wait(struct wrk *w)
{
    const struct osp_config *cfg = w->cfg;
    /* Block on the next unpaused kind; if every kind is paused, poll again after a while. */
    for (int k = 0; k < cfg->nkinds; k++) {
        unsigned i = (w->wait_rr + (unsigned)k) % (unsigned)cfg->nkinds;
        if (w->paused_mask & (1ull << i)) {
            continue;
        }
        w->wait_rr = i + 1;
        int timeout_ms = cfg->nkinds == 1 ? 1000 : 250;
        if (osp_rq_fetch_wait(w->rq, cfg->kinds[i], timeout_ms, on_wait, w) == 0) {
            w->wait_inflight = true;
        }
        return;
    }
}

static void on_fetch(struct osp_rq *rq, int status, const struct osp_rq_item *items, size_t n,
                     uint64_t paused, void *arg)
{
    (void)rq;
    struct wrk *w = arg;
    w->fetch_inflight = false;
    if (status != 0) {
        return; /* the state callback re-pumps after the reconnect */
    }
    w->paused_mask = paused;
    take_items(w, items, n);
    if (n == 0 && !w->draining && !w->wait_inflight && w->busy < w->nslots) {
        if (paused == (w->cfg->nkinds >= 64 ? ~0ull : (1ull << w->cfg->nkinds) - 1)) {
            return; /* every kind paused: the beat timer re-pumps */
        }
        start_wait(w);
    }
    wrk_maybe_finish(w);
}

/* ---- Resync after a (re)connect ----
 * A fetch (script or BLMOVE) whose reply is lost with the connection may still have moved
 * envelopes into our processing list on the server. The reaper leaves a live worker's list
 * alone and the reconciler sees those jobs as held, so nothing else would ever run them.
 * After every (re)connect, before fetching again, compare the list with what the slots hold
 * and hand every other envelope back to the front of its queue. */

static void on_resynced(struct osp_rq *rq, int status, const int64_t *res, size_t n, void *arg)
{
    (void)rq;
    struct wrk *w = arg;
    size_t moved = 0;
    for (size_t i = 0; status == 0 && i < n; i++) {
        moved += res[i] == 1;
    }
    if (status != 0) {
        osp_warn("could not hand back orphaned envelopes (%s); trying again after the next "
                 "reconnect", osp_rq_last_error(w->rq));
        /* Disconnected: the next ready event starts over. Still connected (a refused script):
         * keep serving jobs rather than stall the worker on its own bookkeeping. */
        w->resyncing = !osp_rq_is_ready(w->rq);
        wrk_fetch_pump(w);
        return;
    }
    if (moved > 0) {
        size_t dead = w->resync_dead < moved ? w->resync_dead : moved;
        osp_warn("handed back %zu envelopes that a lost reply had left in this worker's "
                 "processing list (%zu undecodable ones dead-lettered)", moved - dead, dead);
    }
    w->resyncing = false;
    wrk_fetch_pump(w);
}

static void on_held(struct osp_rq *rq, int status, const struct osp_rq_item *items, size_t n,
                    uint64_t paused, void *arg)
{
    (void)rq;
    (void)paused;
    struct wrk *w = arg;
    if (status != 0) {
        /* Disconnected again: the next ready event starts over (see on_resynced). */
        w->resyncing = !osp_rq_is_ready(w->rq);
        wrk_fetch_pump(w);
        return;
    }
    bool *used = osp_xcalloc((size_t)w->nslots, sizeof(*used));
    struct osp_rq_ops *ops = osp_rq_ops_new();
    w->resync_dead = 0;
    for (size_t i = 0; i < n; i++) {
        bool held = false;
        for (int k = 0; k < w->nslots && !held; k++) {
            const struct slot *s = &w->slots[k];
            if (!used[k] && s->state != SLOT_IDLE && s->env.len == items[i].env_len &&
                memcmp(s->env.data, items[i].env, items[i].env_len) == 0) {
                used[k] = held = true;
            }
        }
        if (held) {
            continue;
        }
        char kind[OSP_KIND_MAX + 1], id[OSP_ID_LEN + 1];
        if (osp_env_peek(items[i].env, items[i].env_len, kind, id) == 0) {
            osp_rq_op_requeue(ops, kind, id, items[i].env, items[i].env_len);
        } else {
            struct osp_buf rec = OSP_BUF_INIT;
            osp_dead_encode("undecodable envelope found in a worker's processing list",
                            osp_now_ms(), "", items[i].env, items[i].env_len, &rec);
            osp_rq_op_dead(ops, "unknown", "", items[i].env, items[i].env_len, rec.data, rec.len,
                           w->cfg->job_ttl_s);
            osp_buf_deinit(&rec);
            w->resync_dead++;
        }
    }
    free(used);
    if (osp_rq_ops_count(ops) == 0) {
        on_resynced(w->rq, 0, NULL, 0, w);
    } else if (osp_rq_apply(w->rq, ops, on_resynced, w) != 0) {
        on_resynced(w->rq, OSP_EREDIS, NULL, 0, w);
    }
    osp_rq_ops_free(ops);
}

/* The first connect of this process: what the processing list holds belongs to a
 * predecessor that ran under the same worker id and died (a StatefulSet pod, a fixed
 * OSP_WORKER_ID). Its runs were lost with it: they are recoveries, counted and recorded like
 * the reaper's (the reaper never sees this id as dead, since we heartbeat under it). */
static void on_reclaimed_own(struct osp_rq *rq, int status, const struct osp_rq_recovery *recs,
                             size_t n, void *arg)
{
    (void)rq;
    struct wrk *w = arg;
    if (n > 0) {
        osp_warn("took back %zu job(s) of this worker id's previous process (each a recovery; "
                 "%s)",
                 n, "the ledger records the lost runs");
        wrk_recoveries_add(w, recs, n);
    }
    if (status != 0) {
        osp_warn("could not take back the previous process's jobs yet (%s); trying again after "
                 "the next reconnect",
                 osp_rq_last_error(w->rq));
        w->resyncing = !osp_rq_is_ready(w->rq);
        if (!w->resyncing) {
            /* Still connected, so the store refused: hand the list back the plain way
             * rather than stall the worker on its own bookkeeping. */
            w->reclaimed_own = true;
            wrk_resync(w);
        }
        return;
    }
    w->reclaimed_own = true;
    w->resyncing = false;
    wrk_fetch_pump(w);
}

void wrk_resync(struct wrk *w)
{
    w->resyncing = true;
    if (!w->reclaimed_own) {
        if (osp_rq_reclaim_own(w->rq, w->cfg->max_recoveries, on_reclaimed_own, w) != 0) {
            osp_warn("cannot check this worker's processing list yet (%s)",
                     osp_rq_last_error(w->rq));
        }
        return;
    }
    if (osp_rq_held(w->rq, on_held, w) != 0) {
        osp_warn("cannot check this worker's processing list yet (%s)", osp_rq_last_error(w->rq));
    }
}

void wrk_fetch_pump(struct wrk *w)
{
    /* No fetch before the first heartbeat: a worker the reaper cannot see must hold nothing. */
    if (w->draining || w->fetch_inflight || w->wait_inflight || !osp_rq_is_ready(w->rq) ||
        w->last_beat_ok_ms == 0 || w->resyncing) {
        return;
    }
    int idle = w->nslots - w->busy;
    if (w->once) {
        idle = (w->busy == 0 && w->jobs_done == 0) ? 1 : 0;
    }
    if (idle <= 0) {
        return;
    }
    /* Fetch in chunks so that fetching, the ledger commit and the Redis ack of different jobs
     * overlap (a pipeline) instead of all slots waiting on one commit. */
    if (idle > FETCH_CHUNK) {
        idle = FETCH_CHUNK;
    }
    if (osp_rq_fetch(w->rq, (const char *const *)w->cfg->kinds, (size_t)w->cfg->nkinds,
                     (size_t)idle, on_fetch, w) == 0) {
        w->fetch_inflight = true;
    }
}
