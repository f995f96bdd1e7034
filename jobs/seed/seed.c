/* SPDX-License-Identifier: MIT */
/* seed.c — the seed kind: fill a target's database with the reference workload's rows.
 *
 * Payload: {"target": name, "seed": int, "scale": 1..10000, "mode": "replace"|"append",
 * "zipf_s": 0..5, "layout": "workload"|"pgbench"}. Missing fields come from the target's
 * "seed" object, then from the defaults (seed 1, scale 1, replace, uniform, workload). Rows
 * come from seedgen.c, so equal (seed, scale, zipf_s, layout) give equal rows and an equal
 * SHA-256 digest of the exact COPY BINARY bytes streamed (hashed once, as they are sent).
 *
 * Everything happens in ONE transaction, so readers see the old data or all of the new:
 *   replace: apply schema, TRUNCATE (CASCADE), drop the keys, indexes and foreign keys that
 *            touch the layout's tables (remembering their definitions), COPY ... (FORMAT
 *            binary, FREEZE), recreate keys and indexes (parallel builds, big
 *            maintenance_work_mem), then foreign keys, ANALYZE, COMMIT. This is pgbench -i's
 *            order (load, then build keys), which is what makes the load fast. Foreign keys
 *            are validated with hash joins disabled: the check then merges two index-only
 *            scans (COPY FREEZE leaves the pages all-visible) instead of re-reading and
 *            hashing the whole child table, 3x faster for clicks -> urls.
 *   append:  COPY into ON COMMIT DROP staging tables, then INSERT ... SELECT ... ON CONFLICT DO
 *            NOTHING, parents before children, skipping children whose parent row is missing.
 *            Ids are the generator's (1..N per table), so appending the same data set twice
 *            adds nothing, and appending at a larger scale adds exactly the missing rows.
 * Cancellation (SIGTERM, deadline) is polled between COPY chunks and while any statement
 * runs (the statement is then cancelled server-side); the transaction is rolled back. */
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/job.h"
#include "jobs/seed/seed_schema.h"
#include "jobs/seed/seedfmt.h"
#include "jobs/seed/seedgen.h"
#include "jobs/targets.h"

#include <libpq-fe.h>
#include <openssl/evp.h>

#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED_CHUNK   (512u * 1024u) /* COPY data per PQputCopyData call */
#define SEED_POLL_MS 100            /* how often a running statement checks cancellation */
#define SEED_ERR_MAX 512

struct seed_opts {
    const char *target;
    const char *dsn; /* borrowed from the targets file; may hold a password: never echoed */
    struct seed_params gen;
    bool append;
};

/* What differs between layouts on the SQL side (the rows differ in seedgen.c). */
struct seed_layout_sql {
    const char *name;                 /* payload value */
    const char *ddl;                  /* idempotent schema */
    const char *tables;               /* every table, for TRUNCATE, LOCK and ANALYZE */
    const char *merges[SEED_NTABLES]; /* append: staging -> table, by enum seed_table */
};

static const struct seed_layout_sql seed_layouts[] = {
    [SEED_LAYOUT_WORKLOAD] =
        {.name = "workload",
         .ddl = seed_schema_sql,
         .tables = "users, urls, clicks",
         /* Parents first; a child whose parent row is absent (its parent conflicted on another
          * unique column with a row the service created) is skipped instead of failing the FK. */
         .merges =
             {[SEED_USERS] = "INSERT INTO users (id, email, name, created_at) SELECT id, email, "
                             "name, created_at FROM seed_stage_users ON CONFLICT DO NOTHING",
              [SEED_URLS] = "INSERT INTO urls (id, code, target, user_id, created_at, hits) "
                            "SELECT s.id, s.code, s.target, s.user_id, s.created_at, s.hits FROM "
                            "seed_stage_urls s WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = "
                            "s.user_id) ON CONFLICT DO NOTHING",
              [SEED_CLICKS] = "INSERT INTO clicks (id, url_id, ts, referrer, user_agent) SELECT "
                              "s.id, s.url_id, s.ts, s.referrer, s.user_agent FROM "
                              "seed_stage_clicks s WHERE EXISTS (SELECT 1 FROM urls u WHERE u.id "
                              "= s.url_id) ON CONFLICT DO NOTHING"}},
    [SEED_LAYOUT_PGBENCH] =
        {.name = "pgbench",
         .ddl = seed_schema_pgbench_sql,
         .tables = "pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history",
         .merges = {[SEED_PGB_BRANCHES] = "INSERT INTO pgbench_branches SELECT * FROM "
                                          "seed_stage_pgbench_branches ON CONFLICT DO NOTHING",
                    [SEED_PGB_TELLERS] = "INSERT INTO pgbench_tellers SELECT * FROM "
                                         "seed_stage_pgbench_tellers ON CONFLICT DO NOTHING",
                    [SEED_PGB_ACCOUNTS] = "INSERT INTO pgbench_accounts SELECT * FROM "
                                          "seed_stage_pgbench_accounts ON CONFLICT DO NOTHING"}},
};

struct seed_state {
    struct job_ctx *ctx;
    PGconn *conn;
    EVP_MD_CTX *sha;
    uint64_t bytes;
    char err[SEED_ERR_MAX];
};

/* ---- Validation ---- */

static const char *const seed_keys[] = {"target", "seed",   "scale", "mode",
                                        "zipf_s", "layout", "filler", NULL};

static bool seed_key_known(const char *key, bool allow_target)
{
    for (size_t i = 0; seed_keys[i] != NULL; i++) {
        if (strcmp(key, seed_keys[i]) == 0) {
            return allow_target || i != 0;
        }
    }
    return false;
}

/* Check the generator fields of obj (a payload or a target's "seed" defaults); `where` names
 * it in messages. */
static int seed_check_fields(const json_t *obj, const char *where, bool allow_target,
                             struct osp_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)obj, key, v) {
        if (!seed_key_known(key, allow_target)) {
            return osp_err_set(err, OSP_EINVAL, "%s.%.64s: unknown field", where, key);
        }
    }
    const json_t *x = json_object_get(obj, "seed");
    if (x != NULL && !json_is_integer(x)) {
        return osp_err_set(err, OSP_EINVAL, "%s.seed: must be an integer", where);
    }
    x = json_object_get(obj, "scale");
    if (x != NULL && (!json_is_integer(x) || json_integer_value(x) < 1 ||
                      json_integer_value(x) > SEED_SCALE_MAX)) {
        return osp_err_set(err, OSP_EINVAL, "%s.scale: must be an integer 1..%d", where,
                           SEED_SCALE_MAX);
    }
    x = json_object_get(obj, "mode");
    if (x != NULL && (!json_is_string(x) || (strcmp(json_string_value(x), "replace") != 0 &&
                                             strcmp(json_string_value(x), "append") != 0))) {
        return osp_err_set(err, OSP_EINVAL, "%s.mode: must be \"replace\" or \"append\"", where);
    }
    x = json_object_get(obj, "zipf_s");
    if (x != NULL && (!json_is_number(x) || !(json_number_value(x) >= 0.0) ||
                      json_number_value(x) > SEED_ZIPF_MAX)) {
        return osp_err_set(err, OSP_EINVAL, "%s.zipf_s: must be a number 0..%g (0 = uniform)",
                           where, SEED_ZIPF_MAX);
    }
    x = json_object_get(obj, "filler");
    if (x != NULL && (!json_is_string(x) || (strcmp(json_string_value(x), "random") != 0 &&
                                             strcmp(json_string_value(x), "blank") != 0))) {
        return osp_err_set(err, OSP_EINVAL, "%s.filler: must be \"random\" or \"blank\"",
                           where);
    }
    x = json_object_get(obj, "layout");
    if (x != NULL && (!json_is_string(x) || (strcmp(json_string_value(x), "workload") != 0 &&
                                             strcmp(json_string_value(x), "pgbench") != 0))) {
        return osp_err_set(err, OSP_EINVAL, "%s.layout: must be \"workload\" or \"pgbench\"",
                           where);
    }
    const char *fl = json_string_value(json_object_get(obj, "filler"));
    const char *ly = json_string_value(json_object_get(obj, "layout"));
    if (fl != NULL && strcmp(fl, "blank") == 0 && (ly == NULL || strcmp(ly, "pgbench") != 0)) {
        return osp_err_set(err, OSP_EINVAL, "%s.filler: \"blank\" applies only to layout "
                           "\"pgbench\"", where);
    }
    return 0;
}

static int seed_validate(const json_t *p, const struct osp_targets *targets, struct osp_err *err)
{
    if (!json_is_object(p)) {
        return osp_err_set(err, OSP_EINVAL, "payload: must be an object");
    }
    const char *target = json_string_value(json_object_get(p, "target"));
    if (target == NULL || target[0] == '\0') {
        return osp_err_set(err, OSP_EINVAL, "payload.target: required, a target name");
    }
    int rc = seed_check_fields(p, "payload", true, err);
    if (rc != 0) {
        return rc;
    }
    if (targets != NULL) {
        const json_t *t = osp_target_get(targets, target);
        if (t == NULL) {
            return osp_err_set(err, OSP_EINVAL, "payload.target: unknown target \"%.64s\"", target);
        }
        if (osp_target_str(t, "pg_dsn") == NULL) {
            return osp_err_set(err, OSP_EINVAL, "payload.target: target \"%.64s\" has no pg_dsn",
                               target);
        }
        const json_t *d = json_object_get(t, "seed");
        if (d != NULL && !json_is_object(d)) {
            return osp_err_set(err, OSP_EINVAL, "target.seed: must be an object");
        }
        if (d != NULL) {
            return seed_check_fields(d, "target.seed", false, err);
        }
    }
    return 0;
}

/* Payload value, else the target's default, else NULL. */
static const json_t *seed_opt(const json_t *p, const json_t *defaults, const char *key)
{
    const json_t *v = json_object_get(p, key);
    return v != NULL ? v : json_object_get(defaults, key);
}

static int seed_resolve(struct job_ctx *ctx, struct seed_opts *o)
{
    struct osp_err err = {0};
    const json_t *p = job_payload(ctx);
    if (seed_validate(p, job_targets(ctx), &err) != 0) {
        return job_fail(ctx, "%s", err.msg);
    }
    o->target = json_string_value(json_object_get(p, "target"));
    const json_t *t = osp_target_get(job_targets(ctx), o->target);
    if (t == NULL || osp_target_str(t, "pg_dsn") == NULL) {
        return job_fail(ctx, "target \"%s\" is not in the targets file or has no pg_dsn",
                        o->target);
    }
    o->dsn = osp_target_str(t, "pg_dsn");
    const json_t *d = json_object_get(t, "seed");
    const json_t *v = seed_opt(p, d, "seed");
    o->gen.seed = v != NULL ? (uint64_t)json_integer_value(v) : 1;
    v = seed_opt(p, d, "scale");
    o->gen.scale = v != NULL ? (uint32_t)json_integer_value(v) : 1;
    v = seed_opt(p, d, "zipf_s");
    o->gen.zipf_s = v != NULL ? json_number_value(v) : 0.0;
    v = seed_opt(p, d, "mode");
    o->append = v != NULL && strcmp(json_string_value(v), "append") == 0;
    v = seed_opt(p, d, "layout");
    o->gen.layout = v != NULL && strcmp(json_string_value(v), "pgbench") == 0
                        ? SEED_LAYOUT_PGBENCH
                        : SEED_LAYOUT_WORKLOAD;
    v = seed_opt(p, d, "filler");
    o->gen.blank_filler = v != NULL && strcmp(json_string_value(v), "blank") == 0;
    if (o->gen.blank_filler && o->gen.layout != SEED_LAYOUT_PGBENCH) {
        return job_fail(ctx, "payload.filler: \"blank\" applies only to layout \"pgbench\"");
    }
    return 0;
}

/* ---- libpq helpers ---- */

static void seed_ignore_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* kinds never log; server notices (e.g. "truncate cascades") are not evidence */
}

/* Copy a libpq message into st->err without its trailing newline. */
static void seed_set_err(struct seed_state *st, const char *what, const char *msg)
{
    snprintf(st->err, sizeof(st->err), "%s: %s", what, msg != NULL ? msg : "");
    size_t n = strlen(st->err);
    while (n > 0 && (st->err[n - 1] == '\n' || st->err[n - 1] == ' ')) {
        st->err[--n] = '\0';
    }
}

/* Ask the server to cancel the running statement (it then fails with 57014). */
static void seed_cancel_query(PGconn *conn)
{
    PGcancel *c = PQgetCancel(conn);
    char buf[256];
    if (c != NULL) {
        PQcancel(c, buf, (int)sizeof(buf));
        PQfreeCancel(c);
    }
}

/* Run sql (possibly several statements) asynchronously, cancelling it when the job is
 * cancelled. Returns the last result (caller PQclears) or NULL with st->err set. */
static PGresult *seed_exec(struct seed_state *st, const char *what, const char *sql)
{
    PGresult *last = NULL;
    bool cancel_sent = false;
    bool failed = false;
    if (!PQsendQuery(st->conn, sql)) {
        seed_set_err(st, what, PQerrorMessage(st->conn));
        return NULL;
    }
    for (;;) {
        while (!PQisBusy(st->conn)) {
            PGresult *r = PQgetResult(st->conn);
            if (r == NULL) {
                goto done;
            }
            ExecStatusType s = PQresultStatus(r);
            if (s == PGRES_COPY_IN && !failed) {
                /* libpq keeps returning COPY results until the copy ends: hand it over. */
                PQclear(last);
                return r;
            }
            if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && !failed) {
                failed = true;
                seed_set_err(st, what, cancel_sent ? "cancelled" : PQresultErrorMessage(r));
            }
            PQclear(last);
            last = r;
        }
        if (!cancel_sent && job_is_cancelled(st->ctx)) {
            seed_cancel_query(st->conn);
            cancel_sent = true;
        }
        struct pollfd pfd = {.fd = PQsocket(st->conn), .events = POLLIN};
        if (poll(&pfd, 1, SEED_POLL_MS) < 0 || !PQconsumeInput(st->conn)) {
            /* EINTR (SIGTERM) is expected: loop to notice the cancellation. */
            if (PQstatus(st->conn) == CONNECTION_BAD) {
                seed_set_err(st, what, PQerrorMessage(st->conn));
                PQclear(last);
                return NULL;
            }
        }
    }
done:
    if (failed || (cancel_sent && last == NULL)) {
        PQclear(last);
        return NULL;
    }
    return last;
}

/* seed_exec for statements whose result is not needed. */
static int seed_cmd(struct seed_state *st, const char *what, const char *sql)
{
    PGresult *r = seed_exec(st, what, sql);
    PQclear(r);
    return r != NULL ? 0 : -1;
}

/* ---- COPY ---- */

/* Hash and count bytes exactly once, as they are handed to libpq. */
static int seed_put(struct seed_state *st, const char *buf, size_t n)
{
    EVP_DigestUpdate(st->sha, buf, n);
    st->bytes += n;
    if (PQputCopyData(st->conn, buf, (int)n) != 1) {
        seed_set_err(st, "copy data", PQerrorMessage(st->conn));
        return -1;
    }
    return 0;
}

/* Stream one table into `into` with COPY BINARY; updates the digest and byte count. The
 * stream (header, tuples, trailer) is the digest's input, table after table. */
static int seed_copy(struct seed_state *st, const struct seed_gen *g, enum seed_table t,
                     const char *into, bool freeze)
{
    char sql[256];
    char *buf = NULL;
    PGresult *r = NULL;
    int rc = -1;
    snprintf(sql, sizeof(sql), "COPY %s (%s) FROM STDIN WITH (FORMAT binary%s)", into,
             seed_table_columns(t), freeze ? ", FREEZE" : "");
    r = seed_exec(st, "copy start", sql);
    if (r == NULL || PQresultStatus(r) != PGRES_COPY_IN) {
        if (r != NULL) {
            seed_set_err(st, "copy start", PQresultErrorMessage(r));
        }
        goto out;
    }
    PQclear(r);
    r = NULL;
    buf = osp_xmalloc(SEED_CHUNK);
    memcpy(buf, seed_fmt_bin_header, SEED_FMT_BIN_HEADER_LEN);
    size_t n = SEED_FMT_BIN_HEADER_LEN;
    uint64_t row = 0;
    const char *abort_msg = NULL;
    for (;;) {
        n += seed_gen_fill(g, t, SEED_FMT_BINARY, &row, buf + n, SEED_CHUNK - n);
        if (row == g->rows[t]) {
            break; /* the last chunk goes out with the trailer */
        }
        if (seed_put(st, buf, n) != 0) {
            goto out;
        }
        n = 0;
        if (job_is_cancelled(st->ctx)) {
            abort_msg = "cancelled by opspool";
            break;
        }
    }
    if (abort_msg == NULL) {
        if (SEED_CHUNK - n < SEED_FMT_BIN_TRAILER_LEN && seed_put(st, buf, n) != 0) {
            goto out;
        }
        n = SEED_CHUNK - n < SEED_FMT_BIN_TRAILER_LEN ? 0 : n;
        memcpy(buf + n, seed_fmt_bin_trailer, SEED_FMT_BIN_TRAILER_LEN);
        if (seed_put(st, buf, n + SEED_FMT_BIN_TRAILER_LEN) != 0) {
            goto out;
        }
    }
    if (PQputCopyEnd(st->conn, abort_msg) != 1) {
        seed_set_err(st, "copy end", PQerrorMessage(st->conn));
        goto out;
    }
    /* Collect the COPY's outcome; a server-side failure midway (constraint, disk) lands here. */
    rc = 0;
    while ((r = PQgetResult(st->conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0) {
            seed_set_err(st, into, abort_msg != NULL ? abort_msg : PQresultErrorMessage(r));
            rc = -1;
        }
        PQclear(r);
    }
    r = NULL;
    if (abort_msg != NULL && rc == 0) {
        seed_set_err(st, into, abort_msg);
        rc = -1;
    }
out:
    PQclear(r);
    free(buf);
    return rc;
}

/* ---- Keys and indexes (replace mode) ---- */

/* Statements that drop and recreate every key, index and foreign key touching the layout's
 * tables, as three arrays of SQL text: drops (foreign keys first), keys and indexes, foreign
 * keys. Definitions come from the catalog (pg_get_*def), so whatever the schema holds today is
 * restored exactly, under the same names. */
static int seed_collect_keys(struct seed_state *st, const char *tables, json_t **drop,
                             json_t **create, json_t **fks)
{
    /* The table list is one of seed_layouts' constants, spliced in front of the rest. */
    static const char q_head[] = "WITH t AS (SELECT unnest(string_to_array('";
    static const char q_tail[] =
        "', ', ')::regclass[]) AS rel),"
        " k AS (SELECT c.conrelid, c.conname, c.contype, pg_get_constraintdef(c.oid) AS def"
        "       FROM pg_constraint c"
        "       WHERE (c.conrelid IN (SELECT rel FROM t) AND c.contype IN ('p','u','x','f'))"
        "          OR (c.confrelid IN (SELECT rel FROM t) AND c.contype = 'f')),"
        " i AS (SELECT x.indexrelid, pg_get_indexdef(x.indexrelid) AS def FROM pg_index x"
        "       WHERE x.indrelid IN (SELECT rel FROM t) AND NOT EXISTS (SELECT 1 FROM"
        "       pg_constraint c WHERE c.conindid = x.indexrelid AND c.contype IN ('p','u','x')))"
        " SELECT 0 AS ord, format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass,"
        "        conname), NULL FROM k WHERE contype = 'f'"
        " UNION ALL SELECT 1, format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass,"
        "        conname), format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass,"
        "        conname, def) FROM k WHERE contype <> 'f'"
        " UNION ALL SELECT 2, format('DROP INDEX %s', indexrelid::regclass), def FROM i"
        " UNION ALL SELECT 3, NULL, format('ALTER TABLE %s ADD CONSTRAINT %I %s',"
        "        conrelid::regclass, conname, def) FROM k WHERE contype = 'f'"
        " ORDER BY 1, 2, 3";
    char q[sizeof(q_head) + sizeof(q_tail) + 256];
    snprintf(q, sizeof(q), "%s%s%s", q_head, tables, q_tail);
    PGresult *r = seed_exec(st, "read keys", q);
    if (r == NULL) {
        return -1;
    }
    *drop = json_array();
    *create = json_array();
    *fks = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        if (!PQgetisnull(r, i, 1)) {
            json_array_append_new(*drop, json_string(PQgetvalue(r, i, 1)));
        }
        if (!PQgetisnull(r, i, 2)) {
            json_array_append_new(strcmp(PQgetvalue(r, i, 0), "3") == 0 ? *fks : *create,
                                  json_string(PQgetvalue(r, i, 2)));
        }
    }
    PQclear(r);
    return 0;
}

static int seed_run_all(struct seed_state *st, const json_t *stmts, const char *what)
{
    size_t i;
    json_t *s;
    json_array_foreach(stmts, i, s) {
        if (seed_cmd(st, what, json_string_value(s)) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- The run ---- */

static int seed_load_replace(struct seed_state *st, const struct seed_gen *g,
                             const struct seed_layout_sql *l, json_t *timings)
{
    json_t *drop = NULL, *create = NULL, *fks = NULL;
    const enum seed_table *tables;
    size_t ntables = seed_layout_tables(g->p.layout, &tables);
    char sql[512];
    int rc = -1;
    snprintf(sql, sizeof(sql), "TRUNCATE %s RESTART IDENTITY CASCADE", l->tables);
    if (seed_cmd(st, "truncate", sql) != 0 ||
        seed_collect_keys(st, l->tables, &drop, &create, &fks) != 0 ||
        seed_run_all(st, drop, "drop keys") != 0) {
        goto out;
    }
    int64_t t0 = osp_mono_ns();
    for (size_t i = 0; i < ntables; i++) {
        enum seed_table t = tables[i];
        int64_t tt = osp_mono_ns();
        uint64_t b0 = st->bytes;
        if (seed_copy(st, g, t, seed_table_name(t), true) != 0) {
            goto out;
        }
        job_emit(st->ctx, "table",
                 json_pack("{s:s, s:I, s:I, s:I}", "table", seed_table_name(t), "rows",
                           (json_int_t)g->rows[t], "bytes", (json_int_t)(st->bytes - b0), "ms",
                           (json_int_t)((osp_mono_ns() - tt) / 1000000)));
    }
    int64_t t1 = osp_mono_ns();
    json_object_set_new(timings, "copy_ms", json_integer((t1 - t0) / 1000000));
    job_emit(st->ctx, "phase",
             json_pack("{s:s, s:I}", "phase", "keys", "statements",
                       (json_int_t)(json_array_size(create) + json_array_size(fks))));
    if (seed_run_all(st, create, "create keys") != 0) {
        goto out;
    }
    int64_t t2 = osp_mono_ns();
    json_object_set_new(timings, "keys_ms", json_integer((t2 - t1) / 1000000));
    /* The validation query of ADD FOREIGN KEY is planned like any other: without hash joins
     * it merges the child's index on the key (when there is one) with the parent's primary
     * key, both index-only, instead of hashing a full scan of the child. */
    if (seed_cmd(st, "fk planning", "SET LOCAL enable_hashjoin = off") != 0 ||
        seed_run_all(st, fks, "create foreign keys") != 0 ||
        seed_cmd(st, "fk planning", "SET LOCAL enable_hashjoin TO DEFAULT") != 0) {
        goto out;
    }
    json_object_set_new(timings, "fks_ms", json_integer((osp_mono_ns() - t2) / 1000000));
    rc = 0;
out:
    json_decref(drop);
    json_decref(create);
    json_decref(fks);
    return rc;
}

/* Append: staging tables, then inserts that skip what exists. `inserted` gets per-table counts. */
static int seed_load_append(struct seed_state *st, const struct seed_gen *g,
                            const struct seed_layout_sql *l, json_t *inserted)
{
    const enum seed_table *tables;
    size_t ntables = seed_layout_tables(g->p.layout, &tables);
    char sql[512];
    for (size_t i = 0; i < ntables; i++) {
        enum seed_table t = tables[i];
        char stage[64];
        int64_t t0 = osp_mono_ns();
        uint64_t b0 = st->bytes;
        const char *name = seed_table_name(t);
        snprintf(stage, sizeof(stage), "seed_stage_%s", name);
        snprintf(sql, sizeof(sql),
                 "CREATE TEMP TABLE %s (LIKE %s INCLUDING DEFAULTS) ON COMMIT DROP", stage, name);
        if (seed_cmd(st, "staging table", sql) != 0 || seed_copy(st, g, t, stage, false) != 0) {
            return -1;
        }
        PGresult *r = seed_exec(st, "merge", l->merges[t]);
        if (r == NULL) {
            return -1;
        }
        json_int_t n = (json_int_t)strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        json_object_set_new(inserted, name, json_integer(n));
        job_emit(st->ctx, "table",
                 json_pack("{s:s, s:I, s:I, s:I, s:I}", "table", name, "rows",
                           (json_int_t)g->rows[t], "inserted", n, "bytes",
                           (json_int_t)(st->bytes - b0), "ms",
                           (json_int_t)((osp_mono_ns() - t0) / 1000000)));
    }
    return 0;
}

static void seed_hex(const unsigned char *d, unsigned n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static int seed_run(struct job_ctx *ctx)
{
    struct seed_opts o;
    struct seed_state st;
    struct seed_gen g;
    json_t *timings = json_object();
    json_t *inserted = json_object();
    bool in_txn = false;
    int rc = 0;

    memset(&o, 0, sizeof(o));
    memset(&st, 0, sizeof(st));
    st.ctx = ctx;
    st.sha = EVP_MD_CTX_new();
    OSP_ASSERT(st.sha != NULL);
    EVP_DigestInit_ex(st.sha, EVP_sha256(), NULL);
    if (seed_resolve(ctx, &o) != 0) {
        rc = OSP_EINVAL;
        goto out;
    }
    seed_gen_init(&g, &o.gen);
    const struct seed_layout_sql *l = &seed_layouts[o.gen.layout];
    int64_t t0 = osp_mono_ns();

    const char *const keys[] = {"dbname", "application_name", NULL};
    const char *const vals[] = {o.dsn, "opspool-seed", NULL};
    st.conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(st.conn) != CONNECTION_OK) {
        seed_set_err(&st, "connect", PQerrorMessage(st.conn));
        goto fail;
    }
    PQsetNoticeProcessor(st.conn, seed_ignore_notice, NULL);
    job_emit(ctx, "phase",
             json_pack("{s:s, s:s, s:s, s:I, s:i, s:f}", "phase", "start", "mode",
                       o.append ? "append" : "replace", "layout", l->name, "seed",
                       (json_int_t)o.gen.seed, "scale", (int)o.gen.scale, "zipf_s", o.gen.zipf_s));
    /* Bigger maintenance memory makes the key builds after the load sort in memory, split
     * between the leader and up to two parallel workers (each needs at least 32 MB). All
     * settings are SET LOCAL: they end with the transaction. */
    if (seed_cmd(&st, "begin",
                 "BEGIN; SET LOCAL maintenance_work_mem = '512MB'; "
                 "SET LOCAL max_parallel_maintenance_workers = 2; "
                 "SET LOCAL client_min_messages = warning") != 0) {
        goto fail;
    }
    in_txn = true;
    if (seed_cmd(&st, "schema", l->ddl) != 0) {
        goto fail;
    }
    char sql[512];
    if (o.append) {
        /* Blocks concurrent writers (and other seeds) but not readers. */
        snprintf(sql, sizeof(sql), "LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", l->tables);
        if (seed_cmd(&st, "lock", sql) != 0 || seed_load_append(&st, &g, l, inserted) != 0) {
            goto fail;
        }
    } else if (seed_load_replace(&st, &g, l, timings) != 0) {
        goto fail;
    }
    int64_t ta = osp_mono_ns();
    snprintf(sql, sizeof(sql), "ANALYZE %s", l->tables);
    if (seed_cmd(&st, "analyze", sql) != 0) {
        goto fail;
    }
    json_object_set_new(timings, "analyze_ms", json_integer((osp_mono_ns() - ta) / 1000000));
    if (job_is_cancelled(ctx)) {
        snprintf(st.err, sizeof(st.err), "cancelled before commit");
        goto fail;
    }
    if (seed_cmd(&st, "commit", "COMMIT") != 0) {
        in_txn = false; /* a failed COMMIT has already ended the transaction */
        goto fail;
    }
    in_txn = false;

    int64_t dur_ms = (osp_mono_ns() - t0) / 1000000;
    const enum seed_table *tables;
    size_t ntables = seed_layout_tables(g.p.layout, &tables);
    uint64_t total = 0;
    json_t *rows = json_object();
    for (size_t i = 0; i < ntables; i++) {
        total += g.rows[tables[i]];
        json_object_set_new(rows, seed_table_name(tables[i]),
                            json_integer((json_int_t)g.rows[tables[i]]));
    }
    double rps = dur_ms > 0 ? (double)total * 1000.0 / (double)dur_ms : (double)total * 1000.0;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char digest[2 * EVP_MAX_MD_SIZE + 1];
    EVP_DigestFinal_ex(st.sha, md, &mdlen);
    seed_hex(md, mdlen, digest);
    const char *mode = o.append ? "append" : "replace";
    json_t *res = json_pack(
        "{s:s, s:I, s:i, s:s, s:s, s:s, s:f, s:i, s:O, s:I, s:I, s:I, s:f, s:s, "
        "s:O}",
        "target", o.target, "seed", (json_int_t)o.gen.seed, "scale", (int)o.gen.scale, "mode", mode,
        "layout", l->name, "filler", o.gen.blank_filler ? "blank" : "random", "zipf_s", o.gen.zipf_s,
        "generator", SEED_GEN_VERSION, "rows", rows,
        "total_rows", (json_int_t)total, "bytes", (json_int_t)st.bytes, "duration_ms",
        (json_int_t)dur_ms, "rows_per_s", rps, "digest", digest, "timings", timings);
    if (o.append) {
        json_object_set(res, "inserted", inserted);
    }
    job_set_result(ctx, res);
    job_add_row(ctx, "seed_runs",
                json_pack("{s:s, s:I, s:i, s:s, s:o, s:I, s:I, s:f, s:s}", "target", o.target,
                          "seed", (json_int_t)o.gen.seed, "scale", (int)o.gen.scale, "mode", mode,
                          "rows", rows, "bytes", (json_int_t)st.bytes, "duration_ms",
                          (json_int_t)dur_ms, "rows_per_s", rps, "digest", digest));
    goto out;

fail:
    if (in_txn) {
        /* On a cancelled or failed statement the transaction is aborted; make it explicit. */
        PGresult *r = PQexec(st.conn, "ROLLBACK");
        PQclear(r);
    }
    rc = job_fail(ctx, "seed %s: %s%s%s", o.target, st.err,
                  job_is_cancelled(ctx) ? " (cancelled)" : "",
                  st.conn != NULL && PQstatus(st.conn) == CONNECTION_OK ? "; rolled back" : "");
out:
    PQfinish(st.conn);
    EVP_MD_CTX_free(st.sha);
    json_decref(timings);
    json_decref(inserted);
    return rc;
}

const struct job_kind job_kind_seed = {
    .name = "seed",
    .abi = JOB_KIND_ABI,
    .validate = seed_validate,
    .run = seed_run,
    .cancel = NULL, /* run() rolls back itself when it sees the cancellation */
    .is_inline = NULL,
    .default_timeout_s = 3600,
};
