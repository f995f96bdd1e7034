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

/* Build signing keys from config strings (borrowed; either may be NULL or ""). */
void osp_env_keys_from(struct osp_env_keys *k, const char *key, const char *old_key,
                       bool allow_unsigned);

#endif
