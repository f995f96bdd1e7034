/* SPDX-License-Identifier: MIT */
/* submit.h — the one way jobs enter the pool: ledger row first, then the Redis envelope.
 * If Redis fails after the rows were written, the jobs are still safe: the scheduler's
 * reconciler enqueues ledger jobs that Redis does not hold. */
#ifndef OSP_SUBMIT_H
#define OSP_SUBMIT_H

#include "common/envelope.h"
#include "common/ledger.h"
#include "common/rq.h"

/* Submit n jobs. Each job's id is generated when empty and enqueued_at is set. ids_out[i]
 * receives the job's id — for a duplicate idempotency key, the existing job's id (and
 * dup_out[i], when not NULL, is set true; nothing is enqueued for it). Returns 0, or
 * OSP_EPG (nothing submitted), OSP_EREDIS (rows written, envelopes not pushed: the jobs will
 * be enqueued by the reconciler), OSP_EINVAL (a job could not be encoded; nothing written). */
int osp_submit(struct osp_pgs *pg, struct osp_rqs *rq, const struct osp_env_keys *keys,
               struct osp_job *jobs, size_t n, char (*ids_out)[OSP_ID_LEN + 1], bool *dup_out,
               struct osp_err *err);

/* ---- Group commit ----
 * Concurrent single submits (the API's), committed together: while a group's INSERT is in
 * flight on an asynchronous ledger connection, the next group collects (and goes on another
 * connection when one is free); when a group commits, its envelopes are pushed in one script
 * call and every submitter is answered. Each answer still follows its own row's commit (and, unless
 * Redis fails, its envelope's push). With an asynchronous Redis client the push does not hold the
 * loop: the group is answered from the script's reply; a reply that does not come within
 * OSP_SUBMIT_PUSH_MAX_S, a lost connection and a drain answer OSP_EREDIS (the row is stored; the
 * reconciler enqueues the job if the push never arrived, and leaves it if it did). Groups that need
 * more than the plain insert (a duplicate idempotency key, an outcome the client could not learn)
 * and every group while the asynchronous client is disconnected take the synchronous path (the
 * caller's osp_op_submit, with its retry). Threading: none; everything runs on the loop of the
 * ledger client. */
struct osp_submitter;
struct osp_submitter_cbs {
    /* The synchronous path for n jobs (osp_submit semantics; ids and dups per job). */
    int (*sync)(void *arg, struct osp_job *jobs, size_t n, char (*ids)[OSP_ID_LEN + 1], bool *dups,
                struct osp_err *err);
    /* One submit settled: rc 0, OSP_EREDIS (row stored, envelope not pushed: the reconciler
     * enqueues it), OSP_EPG or OSP_EINVAL (nothing stored), or the sync path's other codes;
     * id is the job's, or the holder's when dup. The job is borrowed for the call. */
    void (*done)(void *arg, void *ticket, const struct osp_job *j, int rc, const char *id, bool dup,
                 const struct osp_err *err);
    /* Optional: a group of n submits reached a transaction (metrics). */
    void (*group)(void *arg, size_t n);
    void *arg;
};
/* Up to OSP_SUBMIT_PIPELINE asynchronous ledger connections, one group in flight on each
 * (NULL entries are skipped; none at all: every group synchronous). They stay the caller's
 * until osp_submitter_drain, which frees them. */
#define OSP_SUBMIT_PIPELINE 4
/* The push's bound on the asynchronous client: the synchronous client's command timeout. */
#define OSP_SUBMIT_PUSH_MAX_S 10.0
/* rq pushes on the loop's asynchronous client (may be NULL: pushes go through rqs, holding the
 * loop for the round trip); rqs is the synchronous path's client. */
struct osp_submitter *osp_submitter_new(struct ev_loop *loop, struct osp_ledger *const *ledgers,
                                        size_t nledgers, struct osp_rq *rq, struct osp_rqs *rqs,
                                        const struct osp_env_keys *keys,
                                        const struct osp_submitter_cbs *cb);
/* Collect a checked job (moved: *j is left empty) with the caller's ticket for done(). */
void osp_submitter_add(struct osp_submitter *s, struct osp_job *j, void *ticket);
/* Send what was collected, unless a group is in flight (it goes when that one commits). */
void osp_submitter_flush(struct osp_submitter *s);
/* Submits collected or in flight, not yet answered. */
size_t osp_submitter_waiting(const struct osp_submitter *s);
/* Settle everything now (shutdown): frees the ledger client, whose group in flight then takes
 * the synchronous path, as does everything collected; a group whose push is in flight is
 * answered OSP_EREDIS (outcome unknown: the reconciler settles it). Every done() has run on
 * return. The asynchronous Redis client may be freed after this, not before. */
void osp_submitter_drain(struct osp_submitter *s);
/* Only after osp_submitter_drain (or with nothing waiting). NULL is a no-op. */
void osp_submitter_free(struct osp_submitter *s);

/* Build signing keys from config strings (borrowed; either may be NULL or ""). */
void osp_env_keys_from(struct osp_env_keys *k, const char *key, const char *old_key,
                       bool allow_unsigned);

#endif
