/* SPDX-License-Identifier: MIT */
/* ledger_pgs.c — the ledger's synchronous client (contract in ledger.h): migrations under an
 * advisory lock, the submit path's inserts, batch commits for tools and the reconciler, and
 * the reads behind GET /v1/jobs/{id} and opspoolctl job. */
#include "common/alloc.h"
#include "common/base.h"
#include "common/buf.h"
#include "common/id.h"
#include "common/ledger.h"
#include "common/ledger_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

/* Migrations, embedded from common/sql/NNNN_*.sql at build time (CMake osp_embed_text). */
extern const char osp_sql_0001_init[];
extern const char osp_sql_0002_scheduler[];
extern const char osp_sql_0003_runs[];
extern const char osp_sql_0004_audit[];
extern const char osp_sql_0005_verdicts[];
extern const char osp_sql_0006_campaigns[];
extern const char osp_sql_0007_benchmark_history[];
extern const char osp_sql_0008_benchmark_verdicts[];
extern const char osp_sql_0009_notifications[];
extern const char osp_sql_0010_benchmark_replicas[];

static const struct {
    int version;
    const char *sql;
} ledger_migrations[] = {
    {1, osp_sql_0001_init},
    {2, osp_sql_0002_scheduler},
    {3, osp_sql_0003_runs},
    {4, osp_sql_0004_audit},
    {5, osp_sql_0005_verdicts},
    {6, osp_sql_0006_campaigns},
    {7, osp_sql_0007_benchmark_history},
    {8, osp_sql_0008_benchmark_verdicts},
    {9, osp_sql_0009_notifications},
    {10, osp_sql_0010_benchmark_replicas},
};

/* Session-level advisory lock serialising migrations across processes ("ospsmigr"). */
#define LEDGER_MIGRATE_LOCK "7310593858097129330"

/* ---- Synchronous client ---- */

struct osp_pgs {
    PGconn *conn;
};

/* Map a result to 0 or OSP_EPG (filling err); always clears res. */
static int pgs_check(PGresult *res, PGconn *conn, const char *what, struct osp_err *err)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    char line[200];
    int rc = 0;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        ledger_pq_msg(line, sizeof(line), res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
        rc = osp_err_set(err, OSP_EPG, "%s: %s", what, line);
    }
    PQclear(res);
    return rc;
}

/* A synchronous connection broken by a server restart or a terminated backend is reset
 * before the next call, so long-lived users (scheduler, CLI loops) fail one call, not all. */
static int pgs_usable(struct osp_pgs *c, struct osp_err *err)
{
    char line[200];

    if (PQstatus(c->conn) == CONNECTION_OK) {
        return 0;
    }
    PQreset(c->conn);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        ledger_pq_msg(line, sizeof(line), PQerrorMessage(c->conn));
        return osp_err_set(err, OSP_EPG, "reconnect: %s", line);
    }
    return 0;
}

static int pgs_exec(struct osp_pgs *c, const char *sql, const char *what, struct osp_err *err)
{
    return pgs_check(PQexec(c->conn, sql), c->conn, what, err);
}

struct osp_pgs *osp_pgs_connect(const char *dsn, struct osp_err *err)
{
    struct osp_pgs *c = osp_xcalloc(1, sizeof(*c));
    char line[200];

    c->conn = ledger_pq_open(dsn ? dsn : "", false);
    if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK) {
        ledger_pq_msg(line, sizeof(line), c->conn ? PQerrorMessage(c->conn) : "out of memory");
        osp_err_set(err, OSP_EPG, "connect: %s", line);
        osp_pgs_free(c);
        return NULL;
    }
    return c;
}

void osp_pgs_free(struct osp_pgs *c)
{
    if (c == NULL) {
        return;
    }
    PQfinish(c->conn);
    free(c);
}

/* Apply one migration in its own transaction. */
static int pgs_apply(struct osp_pgs *c, int version, const char *sql, struct osp_err *err)
{
    char vtext[16];
    const char *params[1] = {vtext};
    char what[48];
    int rc;

    snprintf(vtext, sizeof(vtext), "%d", version);
    snprintf(what, sizeof(what), "migration %04d", version);
    rc = pgs_exec(c, "BEGIN", what, err);
    if (rc != 0) {
        return rc;
    }
    rc = pgs_exec(c, sql, what, err);
    if (rc == 0) {
        rc = pgs_check(PQexecParams(c->conn,
                                    "INSERT INTO opspool.schema_migrations (version, applied_at) "
                                    "VALUES ($1::int, now())",
                                    1, NULL, params, NULL, NULL, 0),
                       c->conn, what, err);
    }
    if (rc == 0) {
        rc = pgs_exec(c, "COMMIT", what, err);
    }
    if (rc != 0) {
        PQclear(PQexec(c->conn, "ROLLBACK"));
    }
    return rc;
}

/* True when every embedded migration is recorded as applied. Runs no DDL and takes no lock,
 * so services connected as least-privileged roles (deploy/sql/roles.sql: SELECT on
 * opspool.schema_migrations, no CREATE anywhere) start once the migrator has done its work.
 * Any error (no schema or table yet, no privilege) means "not known to be up to date". */
static bool ledger_up_to_date(struct osp_pgs *c)
{
    char list[16 * OSP_ARRAY_LEN(ledger_migrations) + 3];
    size_t len = 0;
    const char *params[1] = {list};

    list[len++] = '{';
    for (size_t i = 0; i < OSP_ARRAY_LEN(ledger_migrations); i++) {
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%d", i ? "," : "",
                                ledger_migrations[i].version);
    }
    snprintf(list + len, sizeof(list) - len, "}");
    PGresult *res = PQexecParams(c->conn,
                                 "SELECT count(*) FROM opspool.schema_migrations "
                                 "WHERE version = ANY ($1::int[])",
                                 1, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
              strtol(PQgetvalue(res, 0, 0), NULL, 10) == (long)OSP_ARRAY_LEN(ledger_migrations);
    PQclear(res);
    return ok;
}

int osp_ledger_migrate(struct osp_pgs *c, struct osp_err *err)
{
    PGresult *res = NULL;
    bool locked = false;
    int rc;

    rc = pgs_usable(c, err);
    if (rc != 0) {
        goto out;
    }
    if (ledger_up_to_date(c)) {
        goto out; /* nothing to do: no DDL, no lock (least-privileged roles get here) */
    }
    rc = pgs_exec(c, "SELECT pg_advisory_lock(" LEDGER_MIGRATE_LOCK ")", "migrate lock", err);
    if (rc != 0) {
        goto out;
    }
    locked = true;
    /* Safe under the lock: only one migrator at a time gets here. */
    rc = pgs_exec(c,
                  "CREATE SCHEMA IF NOT EXISTS opspool; "
                  "CREATE TABLE IF NOT EXISTS opspool.schema_migrations ("
                  "version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                  "migrate bootstrap", err);
    if (rc != 0) {
        goto out;
    }
    for (size_t i = 0; i < OSP_ARRAY_LEN(ledger_migrations); i++) {
        char vtext[16];
        const char *params[1] = {vtext};

        snprintf(vtext, sizeof(vtext), "%d", ledger_migrations[i].version);
        res =
            PQexecParams(c->conn, "SELECT 1 FROM opspool.schema_migrations WHERE version = $1::int",
                         1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            rc = pgs_check(res, c->conn, "migrate", err);
            res = NULL;
            goto out;
        }
        if (PQntuples(res) == 0) {
            rc = pgs_apply(c, ledger_migrations[i].version, ledger_migrations[i].sql, err);
            if (rc != 0) {
                goto out;
            }
        }
        PQclear(res);
        res = NULL;
    }
out:
    PQclear(res);
    if (locked) {
        PQclear(PQexec(c->conn, "SELECT pg_advisory_unlock(" LEDGER_MIGRATE_LOCK ")"));
    }
    return rc;
}

/* Any conflict means "already submitted": on the idempotency key (another submitter won) or
 * on the id (this very submission retried after an unknown outcome). */
const char ledger_insert_jobs_sql[] =
    "INSERT INTO opspool.jobs (id, kind, state, payload, attempt, max_attempts, timeout_s, "
    "idempotency_key, submitted_by, schedule, trace_id, created_at, run_at, updated_at) "
    "SELECT x.id, x.kind, x.state, coalesce(x.payload, '{}'), greatest(x.attempt - 1, 0), "
    "greatest(x.max_attempts, 1), x.timeout_s, x.idempotency_key, x.submitted_by, "
    "x.schedule, x.trace_id, coalesce(opspool.ms_ts(x.enqueued_ms), now()), "
    "coalesce(opspool.ms_ts(x.run_ms), opspool.ms_ts(x.enqueued_ms), now()), now() "
    "FROM ROWS FROM (json_to_recordset($1::json) AS (id uuid, kind text, state text, "
    "payload jsonb, attempt int, max_attempts int, timeout_s int, idempotency_key text, "
    "submitted_by text, schedule text, trace_id text, enqueued_ms bigint, run_ms bigint)) "
    "WITH ORDINALITY AS x(id, kind, state, payload, attempt, max_attempts, timeout_s, "
    "idempotency_key, submitted_by, schedule, trace_id, enqueued_ms, run_ms, ord) "
    "ORDER BY x.ord ON CONFLICT DO NOTHING RETURNING id::text";

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, surrogates or code
 * points above U+10FFFF), 0 when there is none. */
static size_t rows_utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t k = 2; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80) {
            return 0;
        }
    }
    return n;
}

/* ,"name":"escaped" (or null for NULL/""): false when s is not UTF-8. */
static bool rows_str(struct osp_buf *b, const char *name, const char *s)
{
    osp_buf_appendf(b, ",\"%s\":", name);
    if (s == NULL || s[0] == '\0') {
        osp_buf_append(b, "null", 4);
        return true;
    }
    osp_buf_append(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
            p++;
        }
        osp_buf_append(b, run, (size_t)(p - run));
        if (*p == '\0') {
            break;
        }
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p++};
            osp_buf_append(b, esc, 2);
        } else if (*p < 0x20) {
            osp_buf_appendf(b, "\\u%04x", *p++);
        } else {
            size_t n = rows_utf8_len(p);
            if (n == 0) {
                return false;
            }
            osp_buf_append(b, p, n);
            p += n;
        }
    }
    osp_buf_append(b, "\"", 1);
    return true;
}

char *ledger_insert_jobs_rows(const struct osp_job *jobs, size_t n, json_t *keys,
                              struct osp_err *err)
{
    /* Written directly (not json_pack + json_dumps): this runs for every submit, and the
     * generic path was a tenth of the API's CPU per submit. */
    struct osp_buf b = OSP_BUF_INIT;
    int64_t now = osp_now_ms();

    osp_buf_append(&b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        const struct osp_job *j = &jobs[i];
        bool keyed = j->idempotency_key != NULL && j->idempotency_key[0] != '\0';

        if (!osp_id_is_valid(j->id) || j->kind[0] == '\0') {
            osp_err_set(err, OSP_EINVAL, "insert_jobs: job %zu has no valid id or kind", i);
            goto fail;
        }
        /* The clock of the submitter decides delayed vs queued, as it does for Redis. */
        osp_buf_appendf(&b, "%s{\"id\":\"%s\",\"state\":\"%s\"", i ? "," : "", j->id,
                        j->run_at > now ? "delayed" : "queued");
        bool ok = rows_str(&b, "kind", j->kind);
        osp_buf_append(&b, ",\"payload\":", 11);
        if (j->payload == NULL) {
            osp_buf_append(&b, "null", 4);
        } else {
            char *p = json_dumps(j->payload, JSON_COMPACT | JSON_ENCODE_ANY);
            OSP_ASSERT(p != NULL); /* a json_t holds only valid UTF-8 */
            osp_buf_append(&b, p, strlen(p));
            free(p);
        }
        osp_buf_appendf(&b, ",\"attempt\":%u,\"max_attempts\":%u,\"timeout_s\":%lld",
                        (unsigned)j->attempt, (unsigned)j->max_attempts, (long long)j->timeout_s);
        ok = ok && rows_str(&b, "idempotency_key", keyed ? j->idempotency_key : NULL) &&
             rows_str(&b, "submitted_by", j->submitted_by) &&
             rows_str(&b, "schedule", j->schedule) && rows_str(&b, "trace_id", j->trace_id);
        if (!ok) {
            osp_err_set(err, OSP_EINVAL, "insert_jobs: job %s has a string that is not UTF-8",
                        j->id);
            goto fail;
        }
        osp_buf_appendf(&b, ",\"enqueued_ms\":%lld,\"run_ms\":%lld}", (long long)j->enqueued_at,
                        (long long)j->run_at);
        if (keyed && keys != NULL) {
            json_array_append_new(keys, json_string(j->idempotency_key));
        }
    }
    osp_buf_append(&b, "]", 1);
    (void)osp_buf_cstr(&b); /* NUL-terminates in place */
    return (char *)b.data;  /* the buffer's memory becomes the caller's */
fail:
    osp_buf_deinit(&b);
    return NULL;
}

int osp_ledger_insert_jobs(struct osp_pgs *c, const struct osp_job *jobs, size_t n,
                           char (*existing_ids)[OSP_ID_LEN + 1], struct osp_err *err)
{
    json_t *keys = json_array();
    json_t *inserted = json_object(); /* id -> true for rows this call inserted */
    json_t *found = json_object();    /* idempotency key -> id of the job holding it */
    PGresult *res = NULL;
    char *text = NULL;
    const char *params[1];
    int rc = 0;

    for (size_t i = 0; existing_ids != NULL && i < n; i++) {
        existing_ids[i][0] = '\0';
    }
    text = ledger_insert_jobs_rows(jobs, n, keys, err);
    if (text == NULL) {
        rc = OSP_EINVAL;
        goto out;
    }
    if (n == 0) {
        goto out;
    }
    rc = pgs_usable(c, err);
    if (rc != 0) {
        goto out;
    }
    params[0] = text;
    res = PQexecParams(c->conn, ledger_insert_jobs_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pgs_check(res, c->conn, "insert_jobs", err);
        res = NULL;
        goto out;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        json_object_set_new(inserted, PQgetvalue(res, r, 0), json_true());
    }
    PQclear(res);
    res = NULL;
    if (existing_ids == NULL || json_object_size(inserted) == n || json_array_size(keys) == 0) {
        goto out;
    }
    /* A separate statement on purpose: its fresh snapshot sees the row of a concurrent
     * submitter whose commit made our insert skip. */
    free(text);
    text = json_dumps(keys, JSON_COMPACT);
    params[0] = text;
    res = PQexecParams(c->conn,
                       "SELECT idempotency_key, id::text FROM opspool.jobs WHERE idempotency_key "
                       "IN (SELECT json_array_elements_text($1::json))",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pgs_check(res, c->conn, "insert_jobs lookup", err);
        res = NULL;
        goto out;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        json_object_set_new(found, PQgetvalue(res, r, 0), json_string(PQgetvalue(res, r, 1)));
    }
    for (size_t i = 0; i < n; i++) {
        const struct osp_job *j = &jobs[i];
        const char *holder;

        if (j->idempotency_key == NULL || j->idempotency_key[0] == '\0' ||
            json_object_get(inserted, j->id) != NULL) {
            continue;
        }
        holder = json_string_value(json_object_get(found, j->idempotency_key));
        if (holder == NULL) {
            /* The conflicting row was deleted between the two statements. */
            rc = osp_err_set(err, OSP_ECONFLICT,
                             "insert_jobs: idempotency key of job %s is in flux, retry", j->id);
            goto out;
        }
        if (strcmp(holder, j->id) != 0) {
            snprintf(existing_ids[i], OSP_ID_LEN + 1, "%s", holder);
        }
    }
out:
    PQclear(res);
    free(text);
    json_decref(keys);
    json_decref(inserted);
    json_decref(found);
    return rc;
}

int osp_pgs_commit(struct osp_pgs *c, struct osp_lbatch *b, struct osp_err *err)
{
    struct ledger_stmt st;
    int rc = 0;

    lbatch_take(b, &st);
    if (st.sql == NULL) {
        goto out;
    }
    rc = pgs_usable(c, err);
    if (rc != 0) {
        goto out;
    }
    rc = pgs_check(PQexecParams(c->conn, st.sql, st.nparams, NULL, (const char *const *)st.params,
                                NULL, NULL, 0),
                   c->conn, "commit", err);
out:
    ledger_stmt_deinit(&st);
    return rc;
}

json_t *osp_ledger_get_job(struct osp_pgs *c, const char *id, struct osp_err *err)
{
    const char *params[1] = {id};
    PGresult *res = NULL;
    json_t *job = NULL;
    json_error_t jerr;

    if (id == NULL || !osp_id_is_valid(id)) {
        osp_err_set(err, OSP_ENOTFOUND, "no job with id \"%.40s\"", id ? id : "");
        goto out;
    }
    if (pgs_usable(c, err) != 0) {
        goto out;
    }
    res = PQexecParams(
        c->conn,
        "SELECT json_build_object("
        "'id', j.id, 'kind', j.kind, 'state', j.state, 'attempt', j.attempt, "
        "'max_attempts', j.max_attempts, 'timeout_s', j.timeout_s, 'recoveries', j.recoveries, "
        "'payload', j.payload, 'result', j.result, 'error', j.error, "
        "'idempotency_key', j.idempotency_key, 'submitted_by', j.submitted_by, "
        "'schedule', j.schedule, 'trace_id', j.trace_id, 'worker', j.worker, "
        "'created_at', opspool.ts_iso(j.created_at), 'run_at', opspool.ts_iso(j.run_at), "
        "'started_at', opspool.ts_iso(j.started_at), "
        "'finished_at', opspool.ts_iso(j.finished_at), "
        "'updated_at', opspool.ts_iso(j.updated_at), "
        "'attempts', coalesce((SELECT json_agg(json_build_object('attempt', a.attempt, "
        "'run', a.run, 'worker', a.worker, 'outcome', a.outcome, 'error', a.error, "
        "'result', a.result, 'started_at', opspool.ts_iso(a.started_at), "
        "'finished_at', opspool.ts_iso(a.finished_at)) ORDER BY a.attempt, a.seq) "
        "FROM opspool.job_attempts a WHERE a.job_id = j.id), '[]'::json), "
        "'events', coalesce((SELECT json_agg(json_build_object('id', e.id, "
        "'attempt', e.attempt, 'ts', opspool.ts_iso(e.ts), 'type', e.type, 'data', e.data) "
        "ORDER BY e.id) FROM opspool.job_events e WHERE e.job_id = j.id), '[]'::json)"
        ")::text FROM opspool.jobs j WHERE j.id = $1::uuid",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pgs_check(res, c->conn, "get_job", err);
        res = NULL;
        goto out;
    }
    if (PQntuples(res) == 0) {
        osp_err_set(err, OSP_ENOTFOUND, "no job with id %s", id);
        goto out;
    }
    job = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
    if (job == NULL) {
        osp_err_set(err, OSP_EPROTO, "get_job: unreadable JSON from server: %s", jerr.text);
    }
out:
    PQclear(res);
    return job;
}

json_t *osp_pgs_query(struct osp_pgs *c, const char *sql, int nparams, const char *const *params,
                      struct osp_err *err)
{
    PGresult *res;
    json_t *rows = NULL;
    int nf;

    if (pgs_usable(c, err) != 0) {
        return NULL;
    }
    res = PQexecParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        pgs_check(res, c->conn, "query", err);
        return NULL;
    }
    rows = json_array();
    nf = PQnfields(res);
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *row = json_object();

        for (int f = 0; f < nf; f++) {
            json_t *v = PQgetisnull(res, r, f) ? json_null() : json_string(PQgetvalue(res, r, f));

            /* json_string refuses invalid UTF-8, which a UTF-8 session never returns. */
            json_object_set_new(row, PQfname(res, f), v ? v : json_null());
        }
        json_array_append_new(rows, row);
    }
    PQclear(res);
    return rows;
}
