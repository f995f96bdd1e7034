/* SPDX-License-Identifier: MIT */
/* submit.c — ledger first, then enqueue, in batches (one INSERT and one script call for n
 * jobs), so bulk submission runs at pool speed; and the group committer that turns concurrent
 * single submits into such batches (contract: submit.h). */
#include "common/submit.h"
#include "common/alloc.h"

#include <stdlib.h>
#include <string.h>

void osp_env_keys_from(struct osp_env_keys *k, const char *key, const char *old_key,
                       bool allow_unsigned)
{
    memset(k, 0, sizeof(*k));
    k->allow_unsigned = allow_unsigned;
    if (key != NULL && key[0] != '\0') {
        k->keys[k->nkeys] = (const uint8_t *)key;
        k->key_lens[k->nkeys++] = strlen(key);
    }
    if (old_key != NULL && old_key[0] != '\0') {
        k->keys[k->nkeys] = (const uint8_t *)old_key;
        k->key_lens[k->nkeys++] = strlen(old_key);
    }
}

/* Ids and enqueue times, then every envelope: a job that cannot be encoded must not leave a
 * ledger row behind. */
static int submit_prepare(struct osp_job *jobs, size_t n, const struct osp_env_keys *keys,
                          struct osp_buf *envs, struct osp_err *err)
{
    int64_t now = osp_now_ms();
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].id[0] == '\0') {
            osp_id_new(jobs[i].id);
        }
        if (jobs[i].enqueued_at == 0) {
            jobs[i].enqueued_at = now;
        }
        int rc = osp_env_encode(&jobs[i], keys, &envs[i], err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* One script call pushing the envelopes of the jobs that are not duplicates (dup NULL: all). */
static int submit_push(struct osp_rqs *rq, const struct osp_job *jobs, size_t n,
                       const struct osp_buf *envs, const bool *dup, struct osp_err *err)
{
    struct osp_rq_ops *ops = osp_rq_ops_new();
    for (size_t i = 0; i < n; i++) {
        if (dup == NULL || !dup[i]) {
            osp_rq_op_enqueue(ops, jobs[i].kind, jobs[i].id, envs[i].data, envs[i].len,
                              jobs[i].run_at);
        }
    }
    int rc = osp_rq_ops_count(ops) > 0 ? osp_rqs_apply(rq, ops, NULL, err) : 0;
    osp_rq_ops_free(ops);
    return rc;
}

static void submit_envs_free(struct osp_buf *envs, size_t n)
{
    for (size_t i = 0; envs != NULL && i < n; i++) {
        osp_buf_deinit(&envs[i]);
    }
    free(envs);
}

int osp_submit(struct osp_pgs *pg, struct osp_rqs *rq, const struct osp_env_keys *keys,
               struct osp_job *jobs, size_t n, char (*ids_out)[OSP_ID_LEN + 1], bool *dup_out,
               struct osp_err *err)
{
    char(*existing)[OSP_ID_LEN + 1] = osp_xcalloc(n ? n : 1, sizeof(*existing));
    struct osp_buf *envs = osp_xcalloc(n ? n : 1, sizeof(*envs));
    bool *dup = osp_xcalloc(n ? n : 1, sizeof(*dup));
    int rc = submit_prepare(jobs, n, keys, envs, err);
    if (rc == 0) {
        rc = osp_ledger_insert_jobs(pg, jobs, n, existing, err);
    }
    if (rc != 0) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        dup[i] = existing[i][0] != '\0';
        if (dup_out != NULL) {
            dup_out[i] = dup[i];
        }
        if (ids_out != NULL) {
            memcpy(ids_out[i], dup[i] ? existing[i] : jobs[i].id, OSP_ID_LEN + 1);
        }
    }
    rc = submit_push(rq, jobs, n, envs, dup, err);
out:
    submit_envs_free(envs, n);
    free(existing);
    free(dup);
    return rc;
}

/* ---- Group commit ---- */

struct submitter_item {
    struct osp_job job;
    void *ticket;
};

/* One asynchronous ledger connection and the group in flight on it. */
struct submitter_slot {
    struct osp_submitter *s;
    struct osp_ledger *ledger; /* NULL after osp_submitter_drain */
    struct submitter_item *group;
    size_t ngroup;
    struct osp_buf *envs; /* the group's envelopes */
};

/* A committed group whose envelopes are on their way through the asynchronous Redis client.
 * Answered once: by the script's reply, the deadline or a drain; the record itself lives until
 * the client calls back (which it always does: a reply, a lost connection or osp_rq_free). */
struct submitter_push {
    struct submitter_push *prev, *next; /* s->pushing, while unanswered */
    struct osp_submitter *s;            /* NULL once answered */
    struct submitter_item *group;
    size_t n;
    ev_timer deadline;
};

struct osp_submitter {
    struct ev_loop *loop;
    struct osp_rq *arq; /* NULL: pushes are synchronous */
    struct osp_rqs *rq;
    const struct osp_env_keys *keys;
    struct osp_submitter_cbs cb;
    struct submitter_item *pending; /* collected, waiting for a free slot */
    size_t npending, cappending;
    struct submitter_slot slot[OSP_SUBMIT_PIPELINE];
    size_t nslots;
    struct submitter_push *pushing; /* unanswered pushes */
    size_t npushing;                /* submits in them */
};

struct osp_submitter *osp_submitter_new(struct ev_loop *loop, struct osp_ledger *const *ledgers,
                                        size_t nledgers, struct osp_rq *arq, struct osp_rqs *rq,
                                        const struct osp_env_keys *keys,
                                        const struct osp_submitter_cbs *cb)
{
    OSP_ASSERT(nledgers <= OSP_SUBMIT_PIPELINE);
    struct osp_submitter *s = osp_xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->arq = arq;
    s->rq = rq;
    s->keys = keys;
    s->cb = *cb;
    for (size_t i = 0; i < nledgers; i++) {
        if (ledgers[i] != NULL) {
            s->slot[s->nslots].s = s;
            s->slot[s->nslots++].ledger = ledgers[i];
        }
    }
    return s;
}

void osp_submitter_add(struct osp_submitter *s, struct osp_job *j, void *ticket)
{
    if (s->npending == s->cappending) {
        s->cappending = s->cappending ? 2 * s->cappending : 64;
        s->pending = osp_xrealloc(s->pending, s->cappending * sizeof(*s->pending));
    }
    s->pending[s->npending].job = *j; /* moved */
    s->pending[s->npending].ticket = ticket;
    s->npending++;
    osp_job_init(j);
}

static void submitter_done(struct osp_submitter *s, struct submitter_item *it, int rc,
                           const char *id, bool dup, const struct osp_err *err)
{
    s->cb.done(s->cb.arg, it->ticket, &it->job, rc, id, dup, err);
    osp_job_deinit(&it->job);
}

/* The synchronous path for items (rows first, then envelopes, the caller's osp_op_submit
 * with its retry of an unknown outcome), answering each. A job the group cannot encode or
 * store (OSP_EINVAL: nothing was written) would fail its neighbours: then each goes alone. */
static void submitter_sync(struct osp_submitter *s, struct submitter_item *items, size_t n)
{
    struct osp_job *jobs = osp_xcalloc(n, sizeof(*jobs));
    char(*ids)[OSP_ID_LEN + 1] = osp_xcalloc(n, sizeof(*ids));
    bool *dups = osp_xcalloc(n, sizeof(*dups));
    struct osp_err err = {0, ""};
    for (size_t i = 0; i < n; i++) {
        jobs[i] = items[i].job; /* a shallow copy: items keep ownership */
    }
    int rc = s->cb.sync(s->cb.arg, jobs, n, ids, dups, &err);
    if (s->cb.group != NULL) {
        s->cb.group(s->cb.arg, n);
    }
    if (rc == OSP_EINVAL && n > 1) {
        for (size_t i = 0; i < n; i++) {
            submitter_sync(s, &items[i], 1);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            items[i].job = jobs[i]; /* ids and enqueue times were set on the copies */
            submitter_done(s, &items[i], rc, rc == 0 || rc == OSP_EREDIS ? ids[i] : jobs[i].id,
                           dups[i], &err);
        }
    }
    free(jobs);
    free(ids);
    free(dups);
}

static void submitter_send(struct osp_submitter *s);

/* Answer every submit of an unanswered push with rc and take it off the list; the record
 * stays for the client's callback. */
static void submitter_push_answer(struct submitter_push *p, int rc, const struct osp_err *err)
{
    struct osp_submitter *s = p->s;
    ev_timer_stop(s->loop, &p->deadline);
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        s->pushing = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
    s->npushing -= p->n;
    p->s = NULL;
    for (size_t i = 0; i < p->n; i++) {
        submitter_done(s, &p->group[i], rc, p->group[i].job.id, false, err);
    }
    free(p->group);
    p->group = NULL;
}

static void submitter_pushed(struct osp_rq *rq, int status, const int64_t *results, size_t n,
                             void *arg)
{
    OSP_UNUSED(results);
    OSP_UNUSED(n);
    struct submitter_push *p = arg;
    if (p->s != NULL) {
        struct osp_err err = {0, ""};
        if (status != 0) {
            osp_err_set(&err, OSP_EREDIS, "push: %s", osp_rq_last_error(rq));
        }
        submitter_push_answer(p, status != 0 ? OSP_EREDIS : 0, &err);
    }
    free(p);
}

static void submitter_push_late(struct ev_loop *loop, ev_timer *w, int revents)
{
    OSP_UNUSED(loop);
    OSP_UNUSED(revents);
    struct submitter_push *p = osp_container_of(w, struct submitter_push, deadline);
    struct osp_err err = {0, ""};
    osp_err_set(&err, OSP_EREDIS, "push: no reply from Redis within %.0f s", OSP_SUBMIT_PUSH_MAX_S);
    submitter_push_answer(p, OSP_EREDIS, &err);
}

/* Push the committed group g (taken when true is returned) on the asynchronous client; false
 * when there is none or it refuses at once (not connected): the caller pushes synchronously. */
static bool submitter_push_async(struct osp_submitter *s, struct submitter_item *g, size_t n,
                                 const struct osp_buf *envs)
{
    if (s->arq == NULL) {
        return false;
    }
    struct osp_rq_ops *ops = osp_rq_ops_new();
    for (size_t i = 0; i < n; i++) {
        osp_rq_op_enqueue(ops, g[i].job.kind, g[i].job.id, envs[i].data, envs[i].len,
                          g[i].job.run_at);
    }
    /* Linked before the call, so a reply could never find it half made. */
    struct submitter_push *p = osp_xcalloc(1, sizeof(*p));
    p->s = s;
    p->group = g;
    p->n = n;
    p->next = s->pushing;
    if (s->pushing != NULL) {
        s->pushing->prev = p;
    }
    s->pushing = p;
    s->npushing += n;
    ev_timer_init(&p->deadline, submitter_push_late, OSP_SUBMIT_PUSH_MAX_S, 0.);
    ev_timer_start(s->loop, &p->deadline);
    int rc = osp_rq_apply(s->arq, ops, submitter_pushed, p); /* copies ops */
    osp_rq_ops_free(ops);
    if (rc != 0) { /* refused at once: no callback will come */
        ev_timer_stop(s->loop, &p->deadline);
        s->pushing = p->next;
        if (p->next != NULL) {
            p->next->prev = NULL;
        }
        s->npushing -= n;
        free(p);
        return false;
    }
    return true;
}

static void submitter_inserted(struct osp_ledger *l, int status, void *arg)
{
    struct submitter_slot *sl = arg;
    struct osp_submitter *s = sl->s;
    size_t n = sl->ngroup;
    struct submitter_item *g = sl->group;
    struct osp_buf *envs = sl->envs;
    const json_t *ins = status == 0 ? osp_ledger_inserted(l) : NULL;
    bool all = ins != NULL && json_object_size(ins) == n;
    for (size_t i = 0; all && i < n; i++) {
        all = json_object_get(ins, g[i].job.id) != NULL;
    }
    sl->group = NULL;
    sl->ngroup = 0;
    sl->envs = NULL;
    if (all) {
        /* Every row is committed: push the envelopes in one script call, then answer. */
        if (s->cb.group != NULL) {
            s->cb.group(s->cb.arg, n);
        }
        if (submitter_push_async(s, g, n, envs)) {
            g = NULL; /* the push record has it */
        } else {
            struct osp_err err = {0, ""};
            struct osp_job *jobs = osp_xcalloc(n, sizeof(*jobs));
            for (size_t i = 0; i < n; i++) {
                jobs[i] = g[i].job;
            }
            int rc = submit_push(s->rq, jobs, n, envs, NULL, &err);
            free(jobs);
            for (size_t i = 0; i < n; i++) {
                submitter_done(s, &g[i], rc, g[i].job.id, false, &err);
            }
        }
    } else {
        /* A conflict (an idempotency key, or an id whose earlier commit went unanswered), an
         * outcome unknown or the client closing: the synchronous path settles the group. It
         * inserts again (rows already committed conflict on their own id and count as new)
         * and looks up the holders of duplicate keys. */
        submitter_sync(s, g, n);
    }
    submit_envs_free(envs, n);
    free(g);
    submitter_send(s);
}

/* A connected slot with no group in flight, or NULL. */
static struct submitter_slot *submitter_free_slot(struct osp_submitter *s, bool *any_ready)
{
    *any_ready = false;
    struct submitter_slot *idle = NULL;
    for (size_t i = 0; i < s->nslots; i++) {
        struct submitter_slot *sl = &s->slot[i];
        if (sl->ledger != NULL && osp_ledger_is_ready(sl->ledger)) {
            *any_ready = true;
            if (sl->ngroup == 0 && idle == NULL) {
                idle = sl;
            }
        }
    }
    return idle;
}

/* Send what was collected: on a free connected slot; when every slot is busy, it waits for
 * the first to commit; with no slot connected, on the synchronous path at once. */
static void submitter_send(struct osp_submitter *s)
{
    while (s->npending > 0) {
        bool any_ready;
        struct submitter_slot *sl = submitter_free_slot(s, &any_ready);
        if (sl == NULL && any_ready) {
            return;
        }
        struct submitter_item *g = s->pending;
        size_t n = s->npending;
        s->pending = NULL;
        s->npending = s->cappending = 0;
        if (sl == NULL) {
            submitter_sync(s, g, n);
            free(g);
            continue;
        }
        struct osp_job *jobs = osp_xcalloc(n, sizeof(*jobs));
        for (size_t i = 0; i < n; i++) {
            jobs[i] = g[i].job;
        }
        struct osp_buf *envs = osp_xcalloc(n, sizeof(*envs));
        struct osp_err err = {0, ""};
        int rc = submit_prepare(jobs, n, s->keys, envs, &err);
        if (rc == 0) {
            rc = osp_ledger_insert_jobs_async(sl->ledger, jobs, n, submitter_inserted, sl, &err);
        }
        for (size_t i = 0; i < n; i++) {
            g[i].job = jobs[i]; /* ids and enqueue times */
        }
        free(jobs);
        if (rc != 0) {
            submit_envs_free(envs, n);
            submitter_sync(s, g, n); /* names the job that cannot be stored, alone */
            free(g);
            continue;
        }
        sl->group = g;
        sl->ngroup = n;
        sl->envs = envs;
    }
}

void osp_submitter_flush(struct osp_submitter *s)
{
    submitter_send(s);
}

size_t osp_submitter_waiting(const struct osp_submitter *s)
{
    size_t n = s->npending + s->npushing;
    for (size_t i = 0; i < s->nslots; i++) {
        n += s->slot[i].ngroup;
    }
    return n;
}

void osp_submitter_drain(struct osp_submitter *s)
{
    s->arq = NULL; /* from now on pushes are synchronous */
    for (size_t i = 0; i < s->nslots; i++) {
        struct osp_ledger *l = s->slot[i].ledger;
        s->slot[i].ledger = NULL; /* from now on every group takes the synchronous path */
        osp_ledger_free(l);       /* a group in flight completes with OSP_ECANCELED: settled sync */
    }
    submitter_send(s);
    while (s->pushing != NULL) {
        struct osp_err err = {0, ""};
        osp_err_set(&err, OSP_EREDIS, "push: shutting down before Redis confirmed it");
        submitter_push_answer(s->pushing, OSP_EREDIS, &err);
    }
}

void osp_submitter_free(struct osp_submitter *s)
{
    if (s == NULL) {
        return;
    }
    OSP_ASSERT(osp_submitter_waiting(s) == 0); /* drained */
    free(s->pending);
    free(s);
}
