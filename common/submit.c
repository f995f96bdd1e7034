/* SPDX-License-Identifier: MIT */
/* submit.c — ledger first, then enqueue, in batches (one INSERT and one script call for n
 * jobs), so bulk submission runs at pool speed. */
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

int osp_submit(struct osp_pgs *pg, struct osp_rqs *rq, const struct osp_env_keys *keys,
               struct osp_job *jobs, size_t n, char (*ids_out)[OSP_ID_LEN + 1], bool *dup_out,
               struct osp_err *err)
{
    int rc = 0;
    char(*existing)[OSP_ID_LEN + 1] = osp_xcalloc(n ? n : 1, sizeof(*existing));
    struct osp_buf *envs = osp_xcalloc(n ? n : 1, sizeof(*envs));
    struct osp_rq_ops *ops = osp_rq_ops_new();
    int64_t now = osp_now_ms();

    /* Encode first: a job that cannot be encoded must not leave a ledger row behind. */
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].id[0] == '\0') {
            osp_id_new(jobs[i].id);
        }
        if (jobs[i].enqueued_at == 0) {
            jobs[i].enqueued_at = now;
        }
        rc = osp_env_encode(&jobs[i], keys, &envs[i], err);
        if (rc != 0) {
            goto out;
        }
    }
    rc = osp_ledger_insert_jobs(pg, jobs, n, existing, err);
    if (rc != 0) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        bool dup = existing[i][0] != '\0';
        if (dup_out != NULL) {
            dup_out[i] = dup;
        }
        if (ids_out != NULL) {
            memcpy(ids_out[i], dup ? existing[i] : jobs[i].id, OSP_ID_LEN + 1);
        }
        if (!dup) {
            osp_rq_op_enqueue(ops, jobs[i].kind, jobs[i].id, envs[i].data, envs[i].len,
                              jobs[i].run_at);
        }
    }
    if (osp_rq_ops_count(ops) > 0) {
        rc = osp_rqs_apply(rq, ops, NULL, err);
    }
out:
    for (size_t i = 0; i < n; i++) {
        osp_buf_deinit(&envs[i]);
    }
    free(envs);
    free(existing);
    osp_rq_ops_free(ops);
    return rc;
}
