/* SPDX-License-Identifier: MIT */
/* ledger_int.h — shared by the ledger's files (ledger.c: write batches and the async client;
 * ledger_pgs.c: the sync client, migrations, reads). Not for use outside common/ledger*.c. */
#ifndef OSP_LEDGER_INT_H
#define OSP_LEDGER_INT_H

#include "common/jobstate.h"
#include "common/ledger.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/* What a schedule fired, jobs and campaigns alike (id, state, created_at, finished_at,
 * schedule): its 'forbid' check, last outcome and last success read this. A campaign's
 * 'running' counts as unfinished like a job's. */
#define LEDGER_SCHEDULE_RUNS                                                                       \
    "(SELECT id, state, created_at, finished_at, schedule FROM opspool.jobs "                      \
    "  WHERE schedule IS NOT NULL "                                                                \
    " UNION ALL SELECT id, state, created_at, finished_at, schedule FROM opspool.campaigns "       \
    "  WHERE schedule IS NOT NULL)"

/* One statement ready to send: SQL text and its text parameters (all owned). */
struct ledger_stmt {
    char *sql; /* NULL for an empty batch: nothing to send */
    char **params;
    int nparams;
};

void ledger_stmt_deinit(struct ledger_stmt *st);
/* The statement that inserts jobs, $1 = ledger_insert_jobs_rows(); returns the ids inserted
 * (a conflict on the id or the idempotency key skips the row). */
extern const char ledger_insert_jobs_sql[];
/* The jobs as the JSON rows ledger_insert_jobs_sql reads (malloc'd), appending each
 * idempotency key to keys when keys is not NULL. NULL with err (OSP_EINVAL) for a job
 * without a valid id or kind, or with a string that is not UTF-8. */
char *ledger_insert_jobs_rows(const struct osp_job *jobs, size_t n, json_t *keys,
                              struct osp_err *err);
/* Turn batch b into one statement (st->sql NULL when there is nothing to write); b is cleared. */
void lbatch_take(struct osp_lbatch *b, struct ledger_stmt *st);
/* The first line of libpq's error text into dst. */
void ledger_pq_msg(char *dst, size_t cap, const char *msg);
/* Run a statement whose rows are not needed: 0, or the error code (err filled). */
int ledger_exec(struct osp_pgs *c, const char *sql, int nparams, const char *const *params,
                struct osp_err *err);
/* A PGconn with opspool's connection defaults in front of dsn (nonblocking or not). */
PGconn *ledger_pq_open(const char *dsn, bool async);
/* The first row's column col (jsonb as text, from osp_pgs_query) parsed as JSON; rows is
 * consumed. NULL when rows is NULL, empty, or the column is NULL. */
json_t *ledger_one_doc(json_t *rows, const char *col);

#endif
