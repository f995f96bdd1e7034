/* SPDX-License-Identifier: MIT */
/* test_seed_backup.c — the seed and backup kinds against a real PostgreSQL server.
 * The harness gives a fresh database in OSP_PG_DSN (the target), a superuser DSN on the same
 * server in OSP_TEST_PG_DSN and a temp dir in OSP_TEST_TMP (targets file, backup root).
 * Kinds run through job_run_inline, or job_child_main in a forked child for the SIGTERM test.
 * Tests run in order and share the database: seeds first, then backups of the seeded data.
 * Every wait is bounded. */
#include "common/alloc.h"
#include "common/base.h"
#include "common/id.h"
#include "jobs/backup/proc.h"
#include "jobs/job.h"
#include "jobs/runner.h"
#include "jobs/targets.h"

#include <libpq-fe.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

static const char *dsn;
static const char *super_dsn;
static char tmpdir[2048];
static char backup_dir[2200];
static struct osp_targets targets;
static struct osp_config cfg; /* what job_config() gives the kinds: the table's defaults */
static PGconn *db;
static char first_backup[512]; /* path of the verified backup made by test_backup_restores */

/* ---- Helpers ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    }
    PQclear(r);
}

/* First value of the first row (owned), "" when no rows. */
static char *query1(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    }
    char *v = osp_xstrdup(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return v;
}

static long long query_ll(PGconn *c, const char *sql)
{
    char *v = query1(c, sql);
    long long n = strtoll(v, NULL, 10);
    free(v);
    return n;
}

/* md5 over the whole contents of the three tables, in id order. */
static char *content_md5(PGconn *c)
{
    return query1(c, "SELECT md5((SELECT coalesce(string_agg(t::text, '|' ORDER BY id), '') FROM "
                     "users t) || (SELECT coalesce(string_agg(t::text, '|' ORDER BY id), '') "
                     "FROM urls t) || (SELECT coalesce(string_agg(t::text, '|' ORDER BY id), '') "
                     "FROM clicks t))");
}

static void expect_counts(long long users, long long urls, long long clicks)
{
    assert_int_equal(query_ll(db, "SELECT count(*) FROM users"), users);
    assert_int_equal(query_ll(db, "SELECT count(*) FROM urls"), urls);
    assert_int_equal(query_ll(db, "SELECT count(*) FROM clicks"), clicks);
}

static void make_job(struct osp_job *job, const char *kind, const char *payload)
{
    json_error_t je;
    osp_job_init(job);
    osp_id_new(job->id);
    snprintf(job->kind, sizeof(job->kind), "%s", kind);
    json_decref(job->payload);
    job->payload = json_loads(payload, 0, &je);
    assert_non_null(job->payload);
}

/* Run a kind inline; deadline_ms 0 = none. The caller deinits the report. */
static void run_kind(const char *kind, const char *payload, long deadline_ms,
                     struct job_report *rep, char id_out[OSP_ID_LEN + 1])
{
    struct osp_job job;
    make_job(&job, kind, payload);
    job_report_init(rep);
    int64_t deadline = deadline_ms > 0 ? osp_mono_ns() + deadline_ms * 1000000LL : 0;
    job_run_inline(job_kind_find(kind), &job, &targets, &cfg, deadline, rep);
    if (id_out != NULL) {
        memcpy(id_out, job.id, OSP_ID_LEN + 1);
    }
    osp_job_deinit(&job);
    assert_true(rep->finished);
}

static void expect_ok(const struct job_report *rep)
{
    if (rep->status != 0) {
        fail_msg("job failed: %s", rep->error != NULL ? rep->error : "(no error)");
    }
    assert_non_null(rep->result);
}

static const char *res_str(const struct job_report *rep, const char *key)
{
    return json_string_value(json_object_get(rep->result, key));
}

/* Names in the backup directory, sorted, joined by ','. */
static char *dir_listing(void)
{
    char *names[256];
    size_t n = 0;
    DIR *d = opendir(backup_dir);
    if (d == NULL) {
        return osp_xstrdup("");
    }
    struct dirent *de;
    while (n < 256 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            names[n++] = osp_xstrdup(de->d_name);
        }
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    }
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        len += strlen(names[i]) + 1;
    }
    char *out = osp_xcalloc(len, 1);
    for (size_t i = 0; i < n; i++) {
        strcat(out, names[i]);
        if (i + 1 < n) {
            strcat(out, ",");
        }
        free(names[i]);
    }
    return out;
}

static void touch(const char *name)
{
    char path[2600];
    snprintf(path, sizeof(path), "%s/%s", backup_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x\n", f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    dsn = getenv("OSP_PG_DSN");
    super_dsn = getenv("OSP_TEST_PG_DSN");
    const char *t = getenv("OSP_TEST_TMP");
    if (dsn == NULL || super_dsn == NULL || t == NULL) {
        fprintf(stderr, "OSP_PG_DSN, OSP_TEST_PG_DSN, OSP_TEST_TMP required (run via ctest)\n");
        exit(77);
    }
    snprintf(tmpdir, sizeof(tmpdir), "%s", t);
    snprintf(backup_dir, sizeof(backup_dir), "%s/backups/shop", tmpdir);
    json_t *doc =
        json_pack("{s:{s:{s:s, s:s}}}", "targets", "shop", "pg_dsn", dsn, "backup_root", "");
    char root[2100];
    snprintf(root, sizeof(root), "%s/backups", tmpdir);
    json_object_set_new(json_object_get(json_object_get(doc, "targets"), "shop"), "backup_root",
                        json_string(root));
    /* "shop2" names no backup_root: its archives go to the worker's OSP_BACKUP_ROOT. */
    json_object_set_new(json_object_get(doc, "targets"), "shop2",
                        json_pack("{s:s}", "pg_dsn", dsn));
    /* "oldclient": its pg_bin holds a pg_dump older than the server (a PostgreSQL 14 client
     * against this 15 server, as an image's pg_dump 15 against a 16 target). */
    char oldbin[2100], oldtool[2200];
    snprintf(oldbin, sizeof(oldbin), "%s/oldbin", tmpdir);
    snprintf(oldtool, sizeof(oldtool), "%s/pg_dump", oldbin);
    assert_int_equal(mkdir(oldbin, 0755), 0);
    FILE *f = fopen(oldtool, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\necho 'pg_dump (PostgreSQL) 14.11 (Debian 14.11-1.pgdg120+1)'\n", f);
    fclose(f);
    assert_int_equal(chmod(oldtool, 0755), 0);
    json_object_set_new(json_object_get(doc, "targets"), "oldclient",
                        json_pack("{s:s, s:s, s:{s:s}}", "pg_dsn", dsn, "backup_root", root,
                                  "backup", "pg_bin", oldbin));
    osp_config_defaults(&cfg);
    char path[2100];
    snprintf(path, sizeof(path), "%s/targets.json", tmpdir);
    assert_int_equal(json_dump_file(doc, path, JSON_INDENT(2)), 0);
    json_decref(doc);
    struct osp_err err = {0};
    if (osp_targets_load(&targets, path, &err) != 0) {
        fail_msg("targets: %s", err.msg);
    }
    db = PQconnectdb(dsn);
    if (PQstatus(db) != CONNECTION_OK) {
        fail_msg("connect: %s", PQerrorMessage(db));
    }
    exec_ok(db, "SET client_min_messages = warning");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(db);
    osp_targets_deinit(&targets);
    osp_config_deinit(&cfg);
    return 0;
}

/* ---- Seed ---- */

static void test_seed_deterministic(void **state)
{
    (void)state;
    struct job_report a, b, c;
    static const char p[] = "{\"target\": \"shop\", \"seed\": 42, \"scale\": 1, \"zipf_s\": 1.1}";
    run_kind("seed", p, 120000, &a, NULL);
    expect_ok(&a);
    expect_counts(1000, 10000, 100000);
    char *m1 = content_md5(db);
    long long keys = query_ll(db, "SELECT count(*) FROM pg_constraint WHERE conrelid IN "
                                  "('users'::regclass, 'urls'::regclass, 'clicks'::regclass)");
    long long idx = query_ll(db, "SELECT count(*) FROM pg_index WHERE indrelid IN "
                                 "('users'::regclass, 'urls'::regclass, 'clicks'::regclass)");
    run_kind("seed", p, 120000, &b, NULL);
    expect_ok(&b);
    char *m2 = content_md5(db);
    assert_string_equal(res_str(&a, "digest"), res_str(&b, "digest"));
    assert_int_equal(strlen(res_str(&a, "digest")), 64);
    assert_string_equal(m1, m2);
    /* The keys, indexes and foreign keys dropped for the load are all back. */
    assert_int_equal(keys, 7); /* users pkey+email, urls pkey+code+fk, clicks pkey+fk */
    assert_int_equal(idx, 6);
    assert_int_equal(query_ll(db, "SELECT count(*) FROM pg_constraint WHERE conrelid IN "
                                  "('users'::regclass, 'urls'::regclass, 'clicks'::regclass) "
                                  "AND convalidated"),
                     keys);
    assert_int_equal(query_ll(db, "SELECT count(*) FROM pg_index WHERE indrelid IN "
                                  "('users'::regclass, 'urls'::regclass, 'clicks'::regclass)"),
                     idx);
    /* Evidence: a seed_runs row with the same digest, events per table. */
    json_t *row = json_object_get(json_array_get(b.rows, 0), "row");
    assert_string_equal(json_string_value(json_object_get(json_array_get(b.rows, 0), "table")),
                        "seed_runs");
    assert_string_equal(json_string_value(json_object_get(row, "digest")), res_str(&a, "digest"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(row, "rows"), "clicks")),
                     100000);
    assert_true(json_array_size(b.events) >= 4);
    /* Zipf skew: url 1 is the most clicked. */
    assert_int_equal(query_ll(db, "SELECT url_id FROM clicks GROUP BY url_id ORDER BY count(*) "
                                  "DESC, url_id LIMIT 1"),
                     1);
    /* Another seed gives other rows. */
    run_kind("seed", "{\"target\": \"shop\", \"seed\": 43, \"scale\": 1, \"zipf_s\": 1.1}", 120000,
             &c, NULL);
    expect_ok(&c);
    assert_string_not_equal(res_str(&a, "digest"), res_str(&c, "digest"));
    job_report_deinit(&c);
    run_kind("seed", p, 120000, &c, NULL);
    expect_ok(&c);
    char *m3 = content_md5(db);
    assert_string_equal(m1, m3);
    free(m1);
    free(m2);
    free(m3);
    job_report_deinit(&a);
    job_report_deinit(&b);
    job_report_deinit(&c);
}

static void test_seed_append(void **state)
{
    (void)state;
    struct job_report a, b;
    char *before = content_md5(db);
    /* The same data set again: nothing new. */
    run_kind("seed", "{\"target\": \"shop\", \"seed\": 42, \"zipf_s\": 1.1, \"mode\": \"append\"}",
             120000, &a, NULL);
    expect_ok(&a);
    json_t *ins = json_object_get(a.result, "inserted");
    assert_int_equal(json_integer_value(json_object_get(ins, "users")), 0);
    assert_int_equal(json_integer_value(json_object_get(ins, "clicks")), 0);
    char *after = content_md5(db);
    assert_string_equal(before, after);
    /* A larger scale adds exactly the missing rows. */
    run_kind("seed",
             "{\"target\": \"shop\", \"seed\": 42, \"scale\": 2, \"zipf_s\": 1.1, "
             "\"mode\": \"append\"}",
             120000, &b, NULL);
    expect_ok(&b);
    ins = json_object_get(b.result, "inserted");
    assert_int_equal(json_integer_value(json_object_get(ins, "users")), 1000);
    assert_int_equal(json_integer_value(json_object_get(ins, "urls")), 10000);
    assert_int_equal(json_integer_value(json_object_get(ins, "clicks")), 100000);
    expect_counts(2000, 20000, 200000);
    free(before);
    free(after);
    job_report_deinit(&a);
    job_report_deinit(&b);
}

static void test_seed_failure_rolls_back(void **state)
{
    (void)state;
    struct job_report a, b, c;
    run_kind("seed", "{\"target\": \"shop\", \"seed\": 42, \"scale\": 1, \"zipf_s\": 1.1}", 120000,
             &a, NULL);
    expect_ok(&a);
    char *before = content_md5(db);
    /* 1. Cancelled midway (the deadline passes during the COPY of a large scale). */
    run_kind("seed", "{\"target\": \"shop\", \"seed\": 7, \"scale\": 40}", 700, &b, NULL);
    assert_int_not_equal(b.status, 0);
    assert_non_null(strstr(b.error, "cancelled"));
    expect_counts(1000, 10000, 100000);
    char *after = content_md5(db);
    assert_string_equal(before, after);
    /* 2. A server-side failure midway: a CHECK the 50,001st click violates. The truncate and
     * the users and urls already loaded are rolled back with it: no rows change. */
    exec_ok(db,
            "ALTER TABLE clicks ADD CONSTRAINT clicks_test_limit CHECK (id <= 50000) NOT VALID");
    run_kind("seed", "{\"target\": \"shop\", \"seed\": 9, \"scale\": 1}", 120000, &c, NULL);
    exec_ok(db, "ALTER TABLE clicks DROP CONSTRAINT clicks_test_limit");
    assert_int_not_equal(c.status, 0);
    assert_non_null(strstr(c.error, "clicks_test_limit"));
    char *after2 = content_md5(db);
    assert_string_equal(before, after2);
    /* 3. On an empty database, the failing seed leaves no rows at all. */
    job_report_deinit(&c);
    exec_ok(db, "TRUNCATE users, urls, clicks");
    exec_ok(db,
            "ALTER TABLE clicks ADD CONSTRAINT clicks_test_limit CHECK (id <= 50000) NOT VALID");
    run_kind("seed", "{\"target\": \"shop\", \"seed\": 9, \"scale\": 1}", 120000, &c, NULL);
    exec_ok(db, "ALTER TABLE clicks DROP CONSTRAINT clicks_test_limit");
    assert_int_not_equal(c.status, 0);
    expect_counts(0, 0, 0);
    free(before);
    free(after);
    free(after2);
    job_report_deinit(&a);
    job_report_deinit(&b);
    job_report_deinit(&c);
    /* Leave the reference data set for the backup tests. */
    run_kind("seed", "{\"target\": \"shop\", \"seed\": 42, \"scale\": 1, \"zipf_s\": 1.1}", 120000,
             &a, NULL);
    expect_ok(&a);
    job_report_deinit(&a);
}

/* The pgbench layout (the like-for-like benchmark lane): pgbench -i's tables, counts and
 * primary keys, full-width fillers, deterministic, and append adds nothing twice. The tables
 * are dropped afterwards so the backup tests see the reference data set only. */
static void test_seed_pgbench_layout(void **state)
{
    (void)state;
    struct job_report a, b, c;
    static const char p[] = "{\"target\": \"shop\", \"seed\": 5, \"scale\": 1, "
                            "\"layout\": \"pgbench\"}";
    run_kind("seed", p, 120000, &a, NULL);
    expect_ok(&a);
    assert_string_equal(res_str(&a, "layout"), "pgbench");
    assert_int_equal(query_ll(db, "SELECT count(*) FROM pgbench_branches"), 1);
    assert_int_equal(query_ll(db, "SELECT count(*) FROM pgbench_tellers"), 10);
    assert_int_equal(query_ll(db, "SELECT count(*) FROM pgbench_accounts"), 100000);
    assert_int_equal(query_ll(db, "SELECT count(*) FROM pgbench_accounts WHERE bid = 1 AND "
                                  "abalance = 0 AND length(filler) = 84"),
                     100000);
    assert_int_equal(query_ll(db, "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND "
                                  "conrelid::regclass::text LIKE 'pgbench_%'"),
                     3);
    run_kind("seed", p, 120000, &b, NULL);
    expect_ok(&b);
    assert_string_equal(res_str(&a, "digest"), res_str(&b, "digest"));
    run_kind("seed",
             "{\"target\": \"shop\", \"seed\": 5, \"layout\": \"pgbench\", \"mode\": "
             "\"append\"}",
             120000, &c, NULL);
    expect_ok(&c);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c.result, "inserted"),
                                                        "pgbench_accounts")),
                     0);
    assert_int_equal(query_ll(db, "SELECT count(*) FROM pgbench_accounts"), 100000);
    /* The workload tables were not touched. */
    expect_counts(1000, 10000, 100000);
    exec_ok(db, "DROP TABLE pgbench_branches, pgbench_tellers, pgbench_accounts, "
                "pgbench_history");
    job_report_deinit(&a);
    job_report_deinit(&b);
    job_report_deinit(&c);
}

/* ---- Backup ---- */

/* pg_restore file into a new database dbname on the test server (no shell). */
static void restore_into(const char *dbname, const char *file)
{
    char sql[256];
    PGconn *su = PQconnectdb(super_dsn);
    assert_int_equal(PQstatus(su), CONNECTION_OK);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
    exec_ok(su, sql);
    PQfinish(su);
    const char *host = getenv("OSP_TEST_PG_HOST");
    const char *port = getenv("OSP_TEST_PG_PORT");
    assert_non_null(host);
    assert_non_null(port);
    char *argv[] = {(char *)(uintptr_t) "pg_restore",
                    (char *)(uintptr_t) "--exit-on-error",
                    (char *)(uintptr_t) "--no-owner",
                    (char *)(uintptr_t) "-h",
                    (char *)(uintptr_t)host,
                    (char *)(uintptr_t) "-p",
                    (char *)(uintptr_t)port,
                    (char *)(uintptr_t) "-U",
                    (char *)(uintptr_t) "postgres",
                    (char *)(uintptr_t) "-d",
                    (char *)(uintptr_t)dbname,
                    (char *)(uintptr_t)file,
                    NULL};
    struct backup_proc p;
    assert_int_equal(backup_proc_run(NULL, argv, environ, 1 << 20, &p), 0);
    if (p.status != 0) {
        fail_msg("pg_restore: %s", backup_proc_errtext(&p));
    }
    backup_proc_deinit(&p);
}

static void drop_db(const char *dbname)
{
    char sql[256];
    PGconn *su = PQconnectdb(super_dsn);
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
    exec_ok(su, sql);
    PQfinish(su);
}

static void test_backup_restores(void **state)
{
    (void)state;
    struct job_report r;
    char id[OSP_ID_LEN + 1];
    run_kind("backup", "{\"target\": \"shop\", \"verify\": \"restore\"}", 300000, &r, id);
    expect_ok(&r);
    const char *path = res_str(&r, "path");
    snprintf(first_backup, sizeof(first_backup), "%s", path);
    assert_non_null(strstr(path, id));
    assert_string_equal(res_str(&r, "verified"), "restore");
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(r.result, "row_counts"), "public.clicks")),
                     100000);
    assert_true(json_integer_value(json_object_get(r.result, "restore_ms")) >= 0);
    assert_non_null(strstr(res_str(&r, "pg_dump_version"), "15."));
    /* File, sidecar, row in "backups". */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, json_integer_value(json_object_get(r.result, "bytes")));
    char side[600], line[256] = "";
    snprintf(side, sizeof(side), "%s.sha256", path);
    FILE *f = fopen(side, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_int_equal(strncmp(line, res_str(&r, "sha256"), 64), 0);
    json_t *row = json_object_get(json_array_get(r.rows, 0), "row");
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.rows, 0), "table")),
                        "backups");
    assert_string_equal(json_string_value(json_object_get(row, "verified")), "restore");
    /* No scratch database left behind. */
    assert_int_equal(query_ll(db, "SELECT count(*) FROM pg_database WHERE datname LIKE "
                                  "'osp\\_restore\\_%'"),
                     0);
    /* Restore by hand into a fresh database: identical row counts and contents. */
    char dbname[64];
    snprintf(dbname, sizeof(dbname), "osp_sb_check_%d", (int)getpid());
    restore_into(dbname, path);
    const char *keys[] = {"dbname", "dbname", NULL};
    const char *vals[] = {dsn, dbname, NULL};
    PGconn *rc = PQconnectdbParams(keys, vals, 1);
    assert_int_equal(PQstatus(rc), CONNECTION_OK);
    char *m_src = content_md5(db);
    char *m_dst = content_md5(rc);
    assert_string_equal(m_src, m_dst);
    assert_int_equal(query_ll(rc, "SELECT count(*) FROM clicks"), 100000);
    PQfinish(rc);
    drop_db(dbname);
    free(m_src);
    free(m_dst);
    job_report_deinit(&r);
}

/* Copy first_backup to a new valid name (with sidecar); flip bytes in the middle. */
static void corrupt_copy(const char *name, bool fix_sidecar, char *sha_out)
{
    char dst[2600];
    snprintf(dst, sizeof(dst), "%s/%s", backup_dir, name);
    FILE *in = fopen(first_backup, "rb");
    FILE *out = fopen(dst, "wb");
    assert_non_null(in);
    assert_non_null(out);
    static unsigned char buf[1 << 16];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        fwrite(buf, 1, n, out);
        total += n;
    }
    fclose(in);
    fclose(out);
    int fd = open(dst, O_RDWR);
    assert_true(fd >= 0);
    for (size_t off = total / 2; off < total / 2 + 64; off++) {
        unsigned char c;
        assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
        c ^= 0x5a;
        assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    }
    close(fd);
    char side[2700];
    snprintf(side, sizeof(side), "%s.sha256", dst);
    FILE *s = fopen(side, "w");
    assert_non_null(s);
    if (fix_sidecar) {
        /* Corruption that happened before the checksum was taken: only a restore finds it. */
        char *argv[] = {(char *)(uintptr_t) "sha256sum", dst, NULL};
        struct backup_proc p;
        assert_int_equal(backup_proc_run(NULL, argv, environ, 4096, &p), 0);
        fprintf(s, "%.64s  %s\n", osp_buf_cstr(&p.out), name);
        snprintf(sha_out, 65, "%.64s", osp_buf_cstr(&p.out));
        backup_proc_deinit(&p);
    } else {
        char orig_side[600], line[256] = "";
        snprintf(orig_side, sizeof(orig_side), "%s.sha256", first_backup);
        FILE *os = fopen(orig_side, "r");
        assert_non_null(os);
        assert_non_null(fgets(line, sizeof(line), os));
        fclose(os);
        fprintf(s, "%.64s  %s\n", line, name);
    }
    fclose(s);
}

static void test_backup_corruption_detected(void **state)
{
    (void)state;
    struct job_report a, b, c;
    char sha[65] = "";
    /* The intact archive re-verifies. */
    char payload[512];
    const char *base = strrchr(first_backup, '/') + 1;
    snprintf(payload, sizeof(payload), "{\"target\": \"shop\", \"verify_file\": \"%s\"}", base);
    run_kind("backup", payload, 60000, &a, NULL);
    expect_ok(&a);
    /* Flipped bytes: the checksum no longer matches the sidecar. */
    corrupt_copy("20240101T000000Z-0000000a.dump", false, sha);
    run_kind("backup",
             "{\"target\": \"shop\", \"verify_file\": \"20240101T000000Z-0000000a.dump\"}", 60000,
             &b, NULL);
    assert_int_not_equal(b.status, 0);
    assert_non_null(strstr(b.error, "checksum mismatch"));
    /* Flipped bytes with a matching checksum: the full restore fails. */
    corrupt_copy("20240101T000000Z-0000000b.dump", true, sha);
    run_kind("backup",
             "{\"target\": \"shop\", \"verify\": \"restore\", \"verify_file\": "
             "\"20240101T000000Z-0000000b.dump\"}",
             120000, &c, NULL);
    assert_int_not_equal(c.status, 0);
    assert_non_null(strstr(c.error, "pg_restore"));
    assert_int_equal(query_ll(db, "SELECT count(*) FROM pg_database WHERE datname LIKE "
                                  "'osp\\_restore\\_%'"),
                     0);
    job_report_deinit(&a);
    job_report_deinit(&b);
    job_report_deinit(&c);
}

static void test_backup_retention(void **state)
{
    (void)state;
    struct job_report r;
    /* Synthetic history: 10 nightly backups in March 2024, one in February, plus a file
     * retention must never touch. */
    char name[128];
    for (int d = 1; d <= 10; d++) {
        snprintf(name, sizeof(name), "202403%02dT030000Z-000000%02d.dump", d, d);
        touch(name);
        snprintf(name, sizeof(name), "202403%02dT030000Z-000000%02d.dump.sha256", d, d);
        touch(name);
    }
    touch("20240215T030000Z-00000099.dump");
    touch("notes.txt");
    /* keep 2 daily (today's new one, 03-10), 1 weekly (the new one), 3 monthly (this month:
     * the new one; March 2024: 03-10; February 2024: 02-15). Everything else goes, including
     * the earlier backups of today and the corrupted January copies. */
    char id[OSP_ID_LEN + 1];
    run_kind("backup",
             "{\"target\": \"shop\", \"retention\": {\"keep_daily\": 2, \"keep_weekly\": "
             "1, \"keep_monthly\": 3}}",
             300000, &r, id);
    expect_ok(&r);
    const char *path = res_str(&r, "path");
    const char *newname = strrchr(path, '/') + 1;
    char want[1024];
    snprintf(want, sizeof(want),
             "%s,%s.sha256,20240215T030000Z-00000099.dump,20240310T030000Z-00000010.dump,"
             "20240310T030000Z-00000010.dump.sha256,notes.txt",
             newname, newname);
    char *got = dir_listing();
    /* newname starts with the current year, so it sorts after 2024 names on a current clock. */
    char *want_sorted = NULL;
    {
        const char *parts[6];
        char *copy = osp_xstrdup(want);
        size_t n = 0;
        for (char *tok = strtok(copy, ","); tok != NULL && n < 6; tok = strtok(NULL, ",")) {
            parts[n++] = tok;
        }
        for (size_t i = 1; i < n; i++) {
            for (size_t j = i; j > 0 && strcmp(parts[j - 1], parts[j]) > 0; j--) {
                const char *t = parts[j];
                parts[j] = parts[j - 1];
                parts[j - 1] = t;
            }
        }
        want_sorted = osp_xcalloc(strlen(want) + 1, 1);
        for (size_t i = 0; i < n; i++) {
            strcat(want_sorted, parts[i]);
            if (i + 1 < n) {
                strcat(want_sorted, ",");
            }
        }
        free(copy);
    }
    assert_string_equal(got, want_sorted);
    /* The result lists what expired: 9 March + 2 corrupted + the earlier backup of today. */
    assert_int_equal(json_array_size(json_object_get(r.result, "expired")), 12);
    free(got);
    free(want_sorted);
    job_report_deinit(&r);
}

/* No temp file, no new archive: only the names in `before` remain. */
static void expect_listing(const char *before)
{
    char *now = dir_listing();
    assert_string_equal(now, before);
    free(now);
}

static void test_backup_lock_timeout(void **state)
{
    (void)state;
    struct job_report r;
    char *before = dir_listing();
    PGconn *locker = PQconnectdb(dsn);
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    exec_ok(locker, "BEGIN; LOCK TABLE clicks IN ACCESS EXCLUSIVE MODE");
    run_kind("backup", "{\"target\": \"shop\", \"lock_wait_timeout_ms\": 200}", 60000, &r, NULL);
    exec_ok(locker, "ROLLBACK");
    PQfinish(locker);
    assert_int_not_equal(r.status, 0);
    assert_non_null(strstr(r.error, "pg_dump"));
    assert_non_null(strstr(r.error, "lock"));
    expect_listing(before);
    free(before);
    job_report_deinit(&r);
}

/* A target without backup_root writes under the worker's OSP_BACKUP_ROOT, which the kind reads
 * from its settings (job_config), not from the environment. */
static void test_backup_root_from_settings(void **state)
{
    (void)state;
    char root[2100];
    snprintf(root, sizeof(root), "%s/settings-root", tmpdir);
    char *saved = cfg.backup_root;
    cfg.backup_root = root;
    setenv("OSP_BACKUP_ROOT", "/nonexistent/opspool-env-root", 1); /* must not be read */
    struct job_report r;
    run_kind("backup", "{\"target\": \"shop2\"}", 300000, &r, NULL);
    unsetenv("OSP_BACKUP_ROOT");
    cfg.backup_root = saved;
    expect_ok(&r);
    char want[2200];
    snprintf(want, sizeof(want), "%s/shop2/", root);
    const char *path = res_str(&r, "path");
    assert_true(strncmp(path, want, strlen(want)) == 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    job_report_deinit(&r);
}

/* A pg_dump older than the server is refused before anything is dumped, with a message that
 * names both versions and the fix; nothing is written. */
static void test_backup_client_too_old(void **state)
{
    (void)state;
    struct job_report r;
    run_kind("backup", "{\"target\": \"oldclient\"}", 60000, &r, NULL);
    assert_int_not_equal(r.status, 0);
    assert_non_null(r.error);
    assert_non_null(strstr(r.error, "14.11"));
    assert_non_null(strstr(r.error, "older than the server"));
    assert_non_null(strstr(r.error, "pg_bin"));
    char dir[2200];
    snprintf(dir, sizeof(dir), "%s/backups/oldclient", tmpdir);
    DIR *d = opendir(dir);
    size_t entries = 0;
    for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;) {
        entries += de->d_name[0] != '.';
    }
    if (d != NULL) {
        closedir(d);
    }
    assert_int_equal(entries, 0); /* nothing dumped, not even a temporary file */
    job_report_deinit(&r);
}

/* SIGTERM to the job's child while pg_dump runs (blocked behind a lock): pg_dump is killed,
 * the temp file removed, the attempt reports failure (the pool retries it). */
static void test_backup_sigterm(void **state)
{
    (void)state;
    char *before = dir_listing();
    PGconn *locker = PQconnectdb(dsn);
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    exec_ok(locker, "BEGIN; LOCK TABLE clicks IN ACCESS EXCLUSIVE MODE");
    struct osp_job job;
    make_job(&job, "backup", "{\"target\": \"shop\"}");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child must not touch the parent's connections (no PQfinish: it would end them). */
        close(fds[0]);
        job_child_main(job_kind_find("backup"), &job, &targets, &cfg, fds[1], 0);
    }
    close(fds[1]);
    /* Wait (bounded) until pg_dump is queued behind our lock and its temp file exists. */
    char tmp[2600];
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", backup_dir, job.id);
    bool waiting = false;
    for (int i = 0; i < 300 && !waiting; i++) {
        sleep_ms(50);
        waiting = query_ll(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                               "'opspool-backup' AND wait_event_type = 'Lock'") > 0 &&
                  access(tmp, F_OK) == 0;
    }
    assert_true(waiting);
    assert_int_equal(kill(pid, SIGTERM), 0);
    /* Collect the child's frames until EOF, bounded. */
    struct job_report rep;
    struct osp_buf buf = OSP_BUF_INIT;
    job_report_init(&rep);
    int64_t end = osp_mono_ns() + 30 * 1000000000LL;
    for (;;) {
        assert_true(osp_mono_ns() < end);
        struct pollfd pf = {.fd = fds[0], .events = POLLIN};
        if (poll(&pf, 1, 200) <= 0) {
            continue;
        }
        char chunk[4096];
        ssize_t n = read(fds[0], chunk, sizeof(chunk));
        if (n <= 0) {
            break;
        }
        osp_buf_append(&buf, chunk, (size_t)n);
        assert_int_equal(job_report_feed(&rep, &buf), 0);
    }
    close(fds[0]);
    int status = 0;
    pid_t w = 0;
    for (int i = 0; i < 200 && w == 0; i++) {
        w = waitpid(pid, &status, WNOHANG);
        if (w == 0) {
            sleep_ms(50);
        }
    }
    assert_int_equal(w, pid);
    exec_ok(locker, "ROLLBACK");
    PQfinish(locker);
    assert_true(rep.finished);
    assert_int_not_equal(rep.status, 0);
    assert_non_null(rep.error);
    assert_non_null(strstr(rep.error, "cancelled"));
    expect_listing(before);
    /* pg_dump is gone from the server. */
    long long left = 1;
    for (int i = 0; i < 100 && left > 0; i++) {
        left = query_ll(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                            "'opspool-backup'");
        if (left > 0) {
            sleep_ms(50);
        }
    }
    assert_int_equal(left, 0);
    osp_buf_deinit(&buf);
    job_report_deinit(&rep);
    osp_job_deinit(&job);
    free(before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_deterministic),
        cmocka_unit_test(test_seed_append),
        cmocka_unit_test(test_seed_failure_rolls_back),
        cmocka_unit_test(test_seed_pgbench_layout),
        cmocka_unit_test(test_backup_restores),
        cmocka_unit_test(test_backup_corruption_detected),
        cmocka_unit_test(test_backup_retention),
        cmocka_unit_test(test_backup_lock_timeout),
        cmocka_unit_test(test_backup_sigterm),
        cmocka_unit_test(test_backup_root_from_settings),
        cmocka_unit_test(test_backup_client_too_old),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
