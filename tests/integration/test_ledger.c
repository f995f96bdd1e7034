/* SPDX-License-Identifier: MIT */
/* test_ledger.c — the PostgreSQL ledger (common/ledger.h) against a real server.
 * The harness (tests/support/with-servers.sh) gives this binary a fresh, empty database in
 * OSP_PG_DSN. Tests run in order and share it: the first ones migrate it (concurrently), the
 * rest each create their own jobs. Loop tests are bounded: a hang fails, never blocks. */
#include "common/alloc.h"
#include "common/envelope.h"
#include "common/id.h"
#include "common/ledger.h"

#include <ev.h>
#include <jansson.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define LOOP_LIMIT_S 10.0

static const char *dsn;
static struct osp_pgs *pg;

/* ---- Helpers ---- */

static struct osp_pgs *connect_or_fail(void)
{
    struct osp_err err = {0};
    struct osp_pgs *c = osp_pgs_connect(dsn, &err);

    if (c == NULL) {
        fail_msg("connect: %s", err.msg);
    }
    return c;
}

/* First column of the first row of a query, as a long (0 when NULL or no row). */
static long query_long(const char *sql, const char *param)
{
    struct osp_err err = {0};
    const char *params[1] = {param};
    json_t *rows = osp_pgs_query(pg, sql, param ? 1 : 0, params, &err);
    const char *v;
    long n = 0;

    if (rows == NULL) {
        fail_msg("query %s: %s", sql, err.msg);
    }
    if (json_array_size(rows) > 0) {
        const char *key;
        json_t *val;

        json_object_foreach(json_array_get(rows, 0), key, val)
        {
            v = json_string_value(val);
            n = v ? strtol(v, NULL, 10) : 0;
            break;
        }
    }
    json_decref(rows);
    return n;
}

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = osp_xstrdup(s);
}

/* Insert one job of kind k (optional idempotency key) and return its id in id. */
static void make_job(char id[OSP_ID_LEN + 1], const char *kind, const char *key)
{
    struct osp_err err = {0};
    struct osp_job j;
    char existing[1][OSP_ID_LEN + 1];

    osp_job_init(&j);
    osp_id_new(j.id);
    snprintf(j.kind, sizeof(j.kind), "%s", kind);
    j.max_attempts = 3;
    j.enqueued_at = osp_now_ms();
    if (key != NULL) {
        set_str(&j.idempotency_key, key);
    }
    assert_int_equal(osp_ledger_insert_jobs(pg, &j, 1, existing, &err), 0);
    assert_string_equal(existing[0], "");
    memcpy(id, j.id, OSP_ID_LEN + 1);
    osp_job_deinit(&j);
}

static json_t *get_job(const char *id)
{
    struct osp_err err = {0};
    json_t *job = osp_ledger_get_job(pg, id, &err);

    if (job == NULL) {
        fail_msg("get_job %s: %s", id, err.msg);
    }
    return job;
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_int_t jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static void commit_sync(struct osp_lbatch *b)
{
    struct osp_err err = {0};

    if (osp_pgs_commit(pg, b, &err) != 0) {
        fail_msg("commit: %s", err.msg);
    }
}

/* ---- Asynchronous client helpers ---- */

struct done {
    bool called;
    int status;
    int calls;
};

static void done_cb(struct osp_ledger *l, int status, void *arg)
{
    struct done *d = arg;

    (void)l;
    d->called = true;
    d->status = status;
    d->calls++;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* Run the loop until *flag or LOOP_LIMIT_S; a tick keeps EVRUN_ONCE from blocking long. */
static bool run_until(struct ev_loop *loop, const bool *flag)
{
    ev_timer tick;
    int64_t deadline = osp_mono_ns() + (int64_t)(LOOP_LIMIT_S * 1e9);

    ev_timer_init(&tick, tick_cb, 0.05, 0.05);
    ev_timer_start(loop, &tick);
    while (!*flag && osp_mono_ns() < deadline) {
        ev_run(loop, EVRUN_ONCE);
    }
    ev_timer_stop(loop, &tick);
    return *flag;
}

struct readiness {
    bool ready;
    int ups;
    int downs;
};

static void state_cb(struct osp_ledger *l, bool ready, void *arg)
{
    struct readiness *r = arg;

    (void)l;
    r->ready = ready;
    if (ready) {
        r->ups++;
    } else {
        r->downs++;
    }
}

static struct osp_ledger *ledger_up(struct ev_loop *loop, const char *app, struct readiness *r)
{
    struct osp_err err = {0};
    char *d = osp_xasprintf("%s application_name=%s", dsn, app);
    struct osp_ledger *l = osp_ledger_new(loop, d, &err);

    free(d);
    if (l == NULL) {
        fail_msg("ledger_new: %s", err.msg);
    }
    osp_ledger_set_state_cb(l, state_cb, r);
    if (!run_until(loop, &r->ready)) {
        fail_msg("ledger not ready after %.0f s: %s", LOOP_LIMIT_S, osp_ledger_last_error(l));
    }
    assert_true(osp_ledger_is_ready(l));
    return l;
}

/* Commit b on l and wait for the callback; returns its status. */
static int commit_async(struct ev_loop *loop, struct osp_ledger *l, struct osp_lbatch *b)
{
    struct done d = {0};

    assert_int_equal(osp_ledger_commit(l, b, done_cb, &d), 0);
    assert_false(d.called); /* never before the call returns */
    assert_int_equal(osp_lbatch_count(b), 0);
    if (!run_until(loop, &d.called)) {
        fail_msg("commit did not call back within %.0f s", LOOP_LIMIT_S);
    }
    assert_int_equal(d.calls, 1);
    return d.status;
}

/* ---- Migrations ---- */

/* Four processes migrate the fresh database at once: all succeed, each version once. */
static void test_migrate_concurrent(void **state)
{
    pid_t pids[4];
    int status;

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct osp_err err = {0};
            struct osp_pgs *c = osp_pgs_connect(dsn, &err);
            int rc = c ? osp_ledger_migrate(c, &err) : -1;

            if (rc != 0) {
                fprintf(stderr, "child migrate: %s\n", err.msg);
            }
            osp_pgs_free(c);
            _exit(rc == 0 ? 0 : 1);
        }
    }
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    /* Every version once, starting at 1, none skipped. */
    assert_true(query_long("SELECT count(*) FROM opspool.schema_migrations", NULL) >= 1);
    assert_int_equal(query_long("SELECT (count(*) = max(version) AND min(version) = 1)::int "
                                "FROM opspool.schema_migrations",
                                NULL),
                     1);
    assert_int_equal(query_long("SELECT count(*) FROM pg_tables WHERE schemaname = 'opspool' "
                                "AND tablename IN ('jobs', 'job_attempts', 'job_events', "
                                "'schedules', 'benchmark_results', 'drill_results', "
                                "'seed_runs', 'backups', 'schema_migrations')",
                                NULL),
                     9);
}

static void test_migrate_twice_is_noop(void **state)
{
    struct osp_err err = {0};
    long versions;
    long applied;

    (void)state;
    applied = query_long("SELECT extract(epoch FROM max(applied_at))::bigint * 1000000 + "
                         "extract(microseconds FROM max(applied_at))::bigint "
                         "FROM opspool.schema_migrations",
                         NULL);
    versions = query_long("SELECT count(*) FROM opspool.schema_migrations", NULL);
    assert_int_equal(osp_ledger_migrate(pg, &err), 0);
    assert_int_equal(osp_ledger_migrate(pg, &err), 0);
    assert_int_equal(query_long("SELECT count(*) FROM opspool.schema_migrations", NULL), versions);
    assert_int_equal(query_long("SELECT extract(epoch FROM max(applied_at))::bigint * 1000000 + "
                                "extract(microseconds FROM max(applied_at))::bigint "
                                "FROM opspool.schema_migrations",
                                NULL),
                     applied);
}

/* ---- Job rows ---- */

static void test_insert_jobs(void **state)
{
    struct osp_err err = {0};
    struct osp_job jobs[3];
    char existing[3][OSP_ID_LEN + 1];
    json_t *job;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        osp_job_init(&jobs[i]);
        osp_id_new(jobs[i].id);
        snprintf(jobs[i].kind, sizeof(jobs[i].kind), "noop");
        jobs[i].enqueued_at = osp_now_ms();
    }
    jobs[1].run_at = osp_now_ms() + 3600 * 1000; /* an hour from now: delayed */
    json_object_set_new(jobs[2].payload, "n", json_integer(42));
    set_str(&jobs[2].submitted_by, "ci");
    set_str(&jobs[2].trace_id, "trace-1");

    /* No keys: existing_ids may be NULL. */
    assert_int_equal(osp_ledger_insert_jobs(pg, jobs, 3, NULL, &err), 0);
    job = get_job(jobs[0].id);
    assert_string_equal(jstr(job, "state"), "queued");
    assert_string_equal(jstr(job, "kind"), "noop");
    assert_int_equal(jint(job, "attempt"), 0);
    assert_int_equal(jint(job, "recoveries"), 0);
    assert_non_null(jstr(job, "created_at"));
    assert_true(json_is_array(json_object_get(job, "attempts")));
    assert_int_equal(json_array_size(json_object_get(job, "events")), 0);
    json_decref(job);
    job = get_job(jobs[1].id);
    assert_string_equal(jstr(job, "state"), "delayed");
    json_decref(job);
    job = get_job(jobs[2].id);
    assert_int_equal(jint(json_object_get(job, "payload"), "n"), 42);
    assert_string_equal(jstr(job, "submitted_by"), "ci");
    assert_string_equal(jstr(job, "trace_id"), "trace-1");
    assert_true(json_is_null(json_object_get(job, "idempotency_key")));
    json_decref(job);

    /* Re-inserting the same ids (a retried submission) inserts nothing and is no error. */
    assert_int_equal(osp_ledger_insert_jobs(pg, jobs, 3, existing, &err), 0);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(existing[i], "");
        osp_job_deinit(&jobs[i]);
    }
    assert_int_equal(query_long("SELECT count(*) FROM opspool.jobs WHERE kind = 'noop'", NULL), 3);

    /* Empty input. */
    assert_int_equal(osp_ledger_insert_jobs(pg, NULL, 0, NULL, &err), 0);
}

static void test_insert_jobs_idempotency(void **state)
{
    struct osp_err err = {0};
    struct osp_job jobs[3];
    char existing[3][OSP_ID_LEN + 1];
    char first[OSP_ID_LEN + 1];

    (void)state;
    make_job(first, "idem", "key-1");
    for (size_t i = 0; i < 3; i++) {
        osp_job_init(&jobs[i]);
        osp_id_new(jobs[i].id);
        snprintf(jobs[i].kind, sizeof(jobs[i].kind), "idem");
    }
    set_str(&jobs[0].idempotency_key, "key-1"); /* used by `first` */
    set_str(&jobs[1].idempotency_key, "key-2"); /* new */
    set_str(&jobs[2].idempotency_key, "key-2"); /* same key twice in one call */
    assert_int_equal(osp_ledger_insert_jobs(pg, jobs, 3, existing, &err), 0);
    assert_string_equal(existing[0], first);
    assert_string_equal(existing[1], "");
    assert_string_equal(existing[2], jobs[1].id);
    assert_int_equal(query_long("SELECT count(*) FROM opspool.jobs WHERE kind = 'idem'", NULL), 2);
    assert_int_equal(
        query_long("SELECT count(*) FROM opspool.jobs WHERE id = $1::uuid", jobs[0].id), 0);
    assert_int_equal(
        query_long("SELECT count(*) FROM opspool.jobs WHERE id = $1::uuid", jobs[2].id), 0);
    for (size_t i = 0; i < 3; i++) {
        osp_job_deinit(&jobs[i]);
    }
}

static void test_insert_jobs_invalid(void **state)
{
    struct osp_err err = {0};
    struct osp_job j;

    (void)state;
    osp_job_init(&j);
    snprintf(j.id, sizeof(j.id), "not-a-uuid");
    snprintf(j.kind, sizeof(j.kind), "noop");
    assert_int_equal(osp_ledger_insert_jobs(pg, &j, 1, NULL, &err), OSP_EINVAL);
    osp_job_deinit(&j);
}

/* Strings that need escaping reach the row as sent; a string that is not UTF-8 (an overlong
 * '/', a lone surrogate, a truncated sequence) is refused and nothing is written. */
static void test_insert_jobs_strings(void **state)
{
    struct osp_err err = {0};
    struct osp_job j;
    static const char *const odd = "q\"b\\s/\x01\x1f\t\n é 日本 😀 \x7f";
    static const char *const bad[] = {"a\xc0\xaf", "a\xed\xa0\x80", "a\xe6\x97",
                                      "a\xf5\x80\x80\x80", "a\xff"};
    json_t *job;

    (void)state;
    osp_job_init(&j);
    osp_id_new(j.id);
    snprintf(j.kind, sizeof(j.kind), "strs");
    set_str(&j.submitted_by, odd);
    set_str(&j.idempotency_key, odd);
    set_str(&j.trace_id, "日本");
    json_object_set_new(j.payload, "s", json_string(odd));
    assert_int_equal(osp_ledger_insert_jobs(pg, &j, 1, NULL, &err), 0);
    job = get_job(j.id);
    assert_string_equal(jstr(job, "submitted_by"), odd);
    assert_string_equal(jstr(job, "idempotency_key"), odd);
    assert_string_equal(jstr(job, "trace_id"), "日本");
    assert_string_equal(jstr(json_object_get(job, "payload"), "s"), odd);
    json_decref(job);
    osp_job_deinit(&j);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        osp_job_init(&j);
        osp_id_new(j.id);
        snprintf(j.kind, sizeof(j.kind), "strs");
        set_str(&j.submitted_by, bad[i]);
        memset(&err, 0, sizeof(err));
        assert_int_equal(osp_ledger_insert_jobs(pg, &j, 1, NULL, &err), OSP_EINVAL);
        assert_non_null(strstr(err.msg, "not UTF-8"));
        osp_job_deinit(&j);
    }
    assert_int_equal(query_long("SELECT count(*) FROM opspool.jobs WHERE kind = 'strs'", NULL), 1);
}

struct inserted {
    bool called;
    int status;
    json_t *ids; /* copy of osp_ledger_inserted() */
};

static void inserted_cb(struct osp_ledger *l, int status, void *arg)
{
    struct inserted *r = arg;
    r->called = true;
    r->status = status;
    r->ids = json_deep_copy(osp_ledger_inserted(l));
}

/* The asynchronous insert commits the rows and reports exactly the ids it inserted: a job
 * whose id or idempotency key is taken is left out; invalid input is refused before queuing. */
static void test_insert_jobs_async(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct readiness rd = {0};
    struct osp_err err = {0};
    struct osp_job jobs[3];
    struct inserted r = {0};
    char first[OSP_ID_LEN + 1];

    (void)state;
    make_job(first, "asins", "async-key");
    struct osp_ledger *l = ledger_up(loop, "ledger_test_ins", &rd);
    for (size_t i = 0; i < 3; i++) {
        osp_job_init(&jobs[i]);
        osp_id_new(jobs[i].id);
        snprintf(jobs[i].kind, sizeof(jobs[i].kind), "asins");
        jobs[i].enqueued_at = osp_now_ms();
    }
    set_str(&jobs[1].idempotency_key, "async-key"); /* held by `first` */
    assert_int_equal(osp_ledger_insert_jobs_async(l, jobs, 3, inserted_cb, &r, &err), 0);
    assert_false(r.called);
    assert_true(run_until(loop, &r.called));
    assert_int_equal(r.status, 0);
    assert_int_equal(json_object_size(r.ids), 2);
    assert_non_null(json_object_get(r.ids, jobs[0].id));
    assert_null(json_object_get(r.ids, jobs[1].id));
    assert_non_null(json_object_get(r.ids, jobs[2].id));
    json_decref(r.ids);
    assert_int_equal(query_long("SELECT count(*) FROM opspool.jobs WHERE kind = 'asins'", NULL), 3);
    /* The same ids again: committed already, nothing inserted. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(osp_ledger_insert_jobs_async(l, jobs, 3, inserted_cb, &r, &err), 0);
    assert_true(run_until(loop, &r.called));
    assert_int_equal(r.status, 0);
    assert_int_equal(json_object_size(r.ids), 0);
    json_decref(r.ids);
    /* Invalid input: refused at once, the callback never runs. */
    snprintf(jobs[0].id, sizeof(jobs[0].id), "not-a-uuid");
    memset(&r, 0, sizeof(r));
    assert_int_equal(osp_ledger_insert_jobs_async(l, jobs, 1, inserted_cb, &r, &err), OSP_EINVAL);
    for (size_t i = 0; i < 3; i++) {
        osp_job_deinit(&jobs[i]);
    }
    osp_ledger_free(l);
    assert_false(r.called);
    ev_loop_destroy(loop);
}

static void test_get_job_unknown(void **state)
{
    struct osp_err err = {0};
    char id[OSP_ID_LEN + 1];

    (void)state;
    osp_id_new(id);
    assert_null(osp_ledger_get_job(pg, id, &err));
    assert_int_equal(err.code, OSP_ENOTFOUND);
    memset(&err, 0, sizeof(err));
    assert_null(osp_ledger_get_job(pg, "x'; DROP TABLE opspool.jobs; --", &err));
    assert_int_equal(err.code, OSP_ENOTFOUND);
}

/* ---- Asynchronous commits ---- */

static void test_async_start_events_finish(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct readiness r = {0};
    struct osp_ledger *l;
    struct osp_lbatch *b = osp_lbatch_new();
    char id[OSP_ID_LEN + 1];
    int64_t t0 = osp_now_ms() - 1000;
    json_t *data = json_pack("{s:i}", "step", 1);
    json_t *result = json_pack("{s:s, s:f}", "status", "ok", "rps", 1234.5);
    json_t *job;
    json_t *ev;
    json_t *at;

    (void)state;
    make_job(id, "bench", NULL);
    l = ledger_up(loop, "ledger_test_a", &r);

    osp_lbatch_start(b, id, 1, "w-1", t0);
    osp_lbatch_event(b, id, 1, t0 + 10, "progress", data);
    json_object_set_new(data, "step", json_integer(2)); /* the batch holds its own copy */
    osp_lbatch_event(b, id, 1, t0 + 20, "progress", data);
    osp_lbatch_event(b, id, 1, t0 + 30, "note", NULL);
    assert_int_equal(osp_lbatch_count(b), 4);
    assert_int_equal(commit_async(loop, l, b), 0);

    job = get_job(id);
    assert_string_equal(jstr(job, "state"), "running");
    assert_string_equal(jstr(job, "worker"), "w-1");
    assert_int_equal(jint(job, "attempt"), 1);
    assert_non_null(jstr(job, "started_at"));
    json_decref(job);

    osp_lbatch_finish(b, id, 1, "w-1", "succeeded", "succeeded", result, NULL, t0, t0 + 50, 0);
    assert_int_equal(commit_async(loop, l, b), 0);

    job = get_job(id);
    assert_string_equal(jstr(job, "state"), "succeeded");
    assert_true(json_equal(json_object_get(job, "result"), result));
    assert_true(json_is_null(json_object_get(job, "error")));
    assert_non_null(jstr(job, "finished_at"));
    /* Timestamps are ISO 8601 UTC with milliseconds. */
    assert_int_equal(strlen(jstr(job, "finished_at")), 24);
    assert_int_equal(jstr(job, "finished_at")[10], 'T');
    assert_int_equal(jstr(job, "finished_at")[23], 'Z');
    at = json_object_get(job, "attempts");
    assert_int_equal(json_array_size(at), 1);
    assert_string_equal(jstr(json_array_get(at, 0), "outcome"), "succeeded");
    assert_string_equal(jstr(json_array_get(at, 0), "worker"), "w-1");
    assert_int_equal(jint(json_array_get(at, 0), "attempt"), 1);
    ev = json_object_get(job, "events");
    assert_int_equal(json_array_size(ev), 3);
    assert_string_equal(jstr(json_array_get(ev, 0), "type"), "progress");
    assert_int_equal(jint(json_object_get(json_array_get(ev, 0), "data"), "step"), 1);
    assert_int_equal(jint(json_object_get(json_array_get(ev, 1), "data"), "step"), 2);
    assert_string_equal(jstr(json_array_get(ev, 2), "type"), "note");
    assert_true(json_is_null(json_object_get(json_array_get(ev, 2), "data")));
    json_decref(job);

    /* An empty commit still calls back exactly once. */
    assert_int_equal(commit_async(loop, l, b), 0);
    assert_int_equal(r.downs, 0);
    assert_true(osp_ledger_error_count(l) == 0);

    json_decref(data);
    json_decref(result);
    osp_lbatch_free(b);
    osp_ledger_free(l);
    ev_loop_destroy(loop);
}

/* Several commits queued at once complete in FIFO order. */
struct order {
    int seen[3];
    int n;
    bool done;
};

struct order_arg {
    struct order *o;
    int idx;
};

static void order_cb(struct osp_ledger *l, int status, void *arg)
{
    struct order_arg *a = arg;

    (void)l;
    assert_int_equal(status, 0);
    a->o->seen[a->o->n++] = a->idx;
    a->o->done = a->o->n == 3;
}

static void test_async_fifo(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct readiness r = {0};
    struct osp_ledger *l = ledger_up(loop, "ledger_test_fifo", &r);
    struct osp_lbatch *b = osp_lbatch_new();
    struct order o = {{0}, 0, false};
    struct order_arg args[3];
    char id[OSP_ID_LEN + 1];
    json_t *job;

    (void)state;
    make_job(id, "fifo", NULL);
    for (int i = 0; i < 3; i++) {
        args[i].o = &o;
        args[i].idx = i;
        osp_lbatch_event(b, id, 1, 0, i == 0 ? "a" : i == 1 ? "b" : "c", NULL);
        assert_int_equal(osp_ledger_commit(l, b, order_cb, &args[i]), 0);
    }
    assert_true(run_until(loop, &o.done));
    assert_int_equal(o.seen[0], 0);
    assert_int_equal(o.seen[1], 1);
    assert_int_equal(o.seen[2], 2);
    job = get_job(id);
    assert_string_equal(jstr(json_array_get(json_object_get(job, "events"), 0), "type"), "a");
    assert_string_equal(jstr(json_array_get(json_object_get(job, "events"), 2), "type"), "c");
    json_decref(job);
    osp_lbatch_free(b);
    osp_ledger_free(l);
    ev_loop_destroy(loop);
}

/* ---- Idempotency and sticky terminal states ---- */

static void test_finish_twice_changes_nothing(void **state)
{
    struct osp_lbatch *b = osp_lbatch_new();
    char id[OSP_ID_LEN + 1];
    int64_t now = osp_now_ms();
    json_t *before;
    json_t *after;
    char *s1;
    char *s2;

    (void)state;
    make_job(id, "twice", NULL);
    osp_lbatch_start(b, id, 1, "w-1", now);
    osp_lbatch_finish(b, id, 1, "w-1", "failed", "retrying", NULL, "boom", now, now + 5,
                      now + 60000);
    commit_sync(b);
    before = get_job(id);
    assert_string_equal(jstr(before, "state"), "retrying");
    assert_string_equal(jstr(before, "error"), "boom");
    assert_non_null(jstr(before, "run_at"));

    /* The same finish again (a retried commit), even with different details, and a late
     * start of the same attempt: nothing moves, not even updated_at. */
    osp_lbatch_finish(b, id, 1, "w-2", "succeeded", "succeeded", NULL, "other", now, now + 9, 0);
    osp_lbatch_start(b, id, 1, "w-2", now + 1);
    commit_sync(b);
    after = get_job(id);
    s1 = json_dumps(before, JSON_SORT_KEYS);
    s2 = json_dumps(after, JSON_SORT_KEYS);
    assert_string_equal(s1, s2);
    free(s1);
    free(s2);
    json_decref(before);
    json_decref(after);

    /* The next attempt proceeds normally. */
    osp_lbatch_start(b, id, 2, "w-3", now + 100);
    commit_sync(b);
    after = get_job(id);
    assert_string_equal(jstr(after, "state"), "running");
    assert_int_equal(jint(after, "attempt"), 2);
    assert_string_equal(jstr(after, "worker"), "w-3");
    json_decref(after);
    osp_lbatch_free(b);
}

static void test_finish_on_terminal_changes_nothing(void **state)
{
    struct osp_lbatch *b = osp_lbatch_new();
    char id[OSP_ID_LEN + 1];
    int64_t now = osp_now_ms();
    json_t *res = json_pack("{s:b}", "late", 1);
    json_t *before;
    json_t *after;
    char *s1;
    char *s2;

    (void)state;
    make_job(id, "terminal", NULL);
    osp_lbatch_start(b, id, 1, "w-1", now);
    osp_lbatch_finish(b, id, 1, "w-1", "cancelled", "cancelled", NULL, "cancelled by operator", now,
                      now + 1, 0);
    commit_sync(b);
    before = get_job(id);
    assert_string_equal(jstr(before, "state"), "cancelled");

    /* A late worker reports attempt 2, events, a start and a recovery: all ignored. */
    osp_lbatch_start(b, id, 2, "w-9", now + 10);
    osp_lbatch_event(b, id, 2, now + 11, "late", NULL);
    osp_lbatch_finish(b, id, 2, "w-9", "succeeded", "succeeded", res, NULL, now + 10, now + 12, 0);
    osp_lbatch_interrupted(b, id, "w-9", "worker lost: w-9", 1, false, 0, now + 13);
    commit_sync(b);
    after = get_job(id);
    s1 = json_dumps(before, JSON_SORT_KEYS);
    s2 = json_dumps(after, JSON_SORT_KEYS);
    assert_string_equal(s1, s2);
    free(s1);
    free(s2);
    json_decref(before);
    json_decref(after);
    json_decref(res);
    osp_lbatch_free(b);
}

static void test_start_and_finish_in_one_batch(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct readiness r = {0};
    struct osp_ledger *l = ledger_up(loop, "ledger_test_same", &r);
    struct osp_lbatch *b = osp_lbatch_new();
    char id1[OSP_ID_LEN + 1];
    char id2[OSP_ID_LEN + 1];
    char id3[OSP_ID_LEN + 1];
    int64_t now = osp_now_ms();
    json_t *job;

    (void)state;
    make_job(id1, "same", NULL);
    make_job(id2, "same", NULL);
    make_job(id3, "same", NULL);
    /* Start then finish, finish then start (order in the batch must not matter), and a
     * failed attempt 1 followed by attempt 2's start in the same batch. */
    osp_lbatch_start(b, id1, 1, "w", now);
    osp_lbatch_finish(b, id1, 1, "w", "succeeded", "succeeded", NULL, NULL, now, now + 1, 0);
    osp_lbatch_finish(b, id2, 1, "w", "succeeded", "succeeded", NULL, NULL, now, now + 1, 0);
    osp_lbatch_start(b, id2, 1, "w", now);
    osp_lbatch_start(b, id3, 1, "w", now);
    osp_lbatch_finish(b, id3, 1, "w", "crashed", "retrying", NULL, "signal 9", now, now + 1,
                      now + 2);
    osp_lbatch_start(b, id3, 2, "w", now + 3);
    assert_int_equal(commit_async(loop, l, b), 0);

    job = get_job(id1);
    assert_string_equal(jstr(job, "state"), "succeeded");
    assert_int_equal(jint(job, "attempt"), 1);
    assert_non_null(jstr(job, "started_at"));
    json_decref(job);
    job = get_job(id2);
    assert_string_equal(jstr(job, "state"), "succeeded");
    json_decref(job);
    job = get_job(id3);
    assert_string_equal(jstr(job, "state"), "running");
    assert_int_equal(jint(job, "attempt"), 2);
    assert_int_equal(json_array_size(json_object_get(job, "attempts")), 1);
    assert_string_equal(jstr(json_array_get(json_object_get(job, "attempts"), 0), "outcome"),
                        "crashed");
    json_decref(job);
    osp_lbatch_free(b);
    osp_ledger_free(l);
    ev_loop_destroy(loop);
}

/* Every run is an attempt row: a run lost with its worker is 'interrupted' with the reason,
 * the recovery is counted once however often it is reported, the re-run is the next run of
 * the same attempt, and the job dies in the ledger when its recoveries exceed the limit. */
static void test_recovered(void **state)
{
    struct osp_lbatch *b = osp_lbatch_new();
    char id[OSP_ID_LEN + 1];
    json_t *job;
    int64_t t0 = osp_now_ms();

    (void)state;
    make_job(id, "recover", NULL);
    osp_lbatch_start(b, id, 1, "w1", t0);
    commit_sync(b);
    /* Two reapers report the same recovery (absolute count 1): one row, one count. */
    osp_lbatch_interrupted(b, id, "w1", "worker lost: w1", 1, false, 0, t0 + 5);
    commit_sync(b);
    osp_lbatch_interrupted(b, id, "w1", "worker lost: w1", 1, false, 0, t0 + 6);
    commit_sync(b);
    job = get_job(id);
    assert_int_equal(jint(job, "recoveries"), 1);
    assert_string_equal(jstr(job, "state"), "queued");
    json_t *att = json_object_get(job, "attempts");
    assert_int_equal(json_array_size(att), 1);
    assert_string_equal(jstr(json_array_get(att, 0), "outcome"), "interrupted");
    assert_string_equal(jstr(json_array_get(att, 0), "error"), "worker lost: w1");
    assert_string_equal(jstr(json_array_get(att, 0), "worker"), "w1");
    assert_int_equal(jint(json_array_get(att, 0), "run"), 0);
    assert_non_null(json_string_value(json_object_get(json_array_get(att, 0), "started_at")));
    json_decref(job);

    /* The re-run by w2 of the same attempt: started, then succeeded, as run 1. */
    osp_lbatch_start(b, id, 1, "w2", t0 + 10);
    commit_sync(b);
    job = get_job(id);
    assert_string_equal(jstr(job, "state"), "running");
    json_decref(job);
    osp_lbatch_finish(b, id, 1, "w2", "succeeded", "succeeded", NULL, NULL, t0 + 10, t0 + 20, 0);
    commit_sync(b);
    osp_lbatch_finish(b, id, 1, "w2", "succeeded", "succeeded", NULL, NULL, t0 + 10, t0 + 20, 0);
    commit_sync(b); /* a repeated finish changes nothing */
    job = get_job(id);
    assert_string_equal(jstr(job, "state"), "succeeded");
    att = json_object_get(job, "attempts");
    assert_int_equal(json_array_size(att), 2);
    assert_int_equal(jint(json_array_get(att, 1), "run"), 1);
    assert_string_equal(jstr(json_array_get(att, 1), "worker"), "w2");
    assert_string_equal(jstr(json_array_get(att, 1), "outcome"), "succeeded");
    json_decref(job);

    /* w1 was only stopped: it finishes its run late. Its row tells how the run ended; the job
     * stays with w2's outcome, the one outcome of attempt 1. */
    osp_lbatch_finish(b, id, 1, "w1", "failed", "retrying", NULL, "boom", t0, t0 + 30, t0 + 40);
    commit_sync(b);
    job = get_job(id);
    assert_string_equal(jstr(job, "state"), "succeeded");
    att = json_object_get(job, "attempts");
    assert_int_equal(json_array_size(att), 2);
    assert_string_equal(jstr(json_array_get(att, 0), "outcome"), "interrupted");
    assert_string_equal(jstr(json_array_get(att, 0), "error"),
                        "worker lost: w1; the run went on and ended failed: boom");
    json_decref(job);
    osp_lbatch_finish(b, id, 1, "w1", "failed", "retrying", NULL, "boom", t0, t0 + 30, t0 + 40);
    commit_sync(b); /* said twice: written once */
    job = get_job(id);
    assert_string_equal(jstr(json_array_get(json_object_get(job, "attempts"), 0), "error"),
                        "worker lost: w1; the run went on and ended failed: boom");
    json_decref(job);
    osp_lbatch_free(b);
}

/* A job that keeps killing its worker: each recovery a row, then 'dead' with the reason; a
 * hand-back is a row that does not count. */
static void test_poison_dead(void **state)
{
    struct osp_lbatch *b = osp_lbatch_new();
    char id[OSP_ID_LEN + 1];
    int64_t t0 = osp_now_ms();

    (void)state;
    make_job(id, "poison", NULL);
    osp_lbatch_start(b, id, 1, "w1", t0);
    commit_sync(b);
    osp_lbatch_interrupted(b, id, "w1", "handed back: worker draining", 0, false, t0, t0 + 1);
    commit_sync(b);
    osp_lbatch_interrupted(b, id, "w1", "handed back: worker draining", 0, false, t0, t0 + 2);
    commit_sync(b); /* the same hand-back again: nothing */
    for (int k = 1; k <= 4; k++) {
        osp_lbatch_start(b, id, 1, "w1", t0 + 10 * k);
        commit_sync(b);
        bool dead = k == 4;
        osp_lbatch_interrupted(b, id, "w1", dead ? "killed its worker 4 times" : "worker lost: w1",
                               k, dead, 0, t0 + 10 * k + 5);
        commit_sync(b);
    }
    json_t *job = get_job(id);
    assert_string_equal(jstr(job, "state"), "dead");
    assert_string_equal(jstr(job, "error"), "killed its worker 4 times");
    assert_int_equal(jint(job, "recoveries"), 4);
    json_t *att = json_object_get(job, "attempts");
    assert_int_equal(json_array_size(att), 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(jstr(json_array_get(att, i), "outcome"), "interrupted");
        assert_int_equal(jint(json_array_get(att, i), "run"), (json_int_t)i);
    }
    json_decref(job);
    /* Terminal is sticky: a late report changes nothing. */
    osp_lbatch_interrupted(b, id, "w1", "worker lost: w1", 5, false, 0, t0 + 100);
    commit_sync(b);
    job = get_job(id);
    assert_string_equal(jstr(job, "state"), "dead");
    assert_int_equal(json_array_size(json_object_get(job, "attempts")), 5);
    json_decref(job);
    osp_lbatch_free(b);
}

/* ---- Typed result rows ---- */

static void test_typed_benchmark_row(void **state)
{
    struct osp_lbatch *b = osp_lbatch_new();
    struct osp_err err = {0};
    char id[OSP_ID_LEN + 1];
    const char *params[1];
    json_t *row;
    json_t *rows;
    json_t *got;

    (void)state;
    make_job(id, "benchmark", NULL);
    row = json_pack("{s:s, s:i, s:s, s:s, s:s, s:I, s:I, s:f, s:f, s:f, s:f, s:b, s:{s:s}}",
                    "job_id", id, "attempt", 1, "target", "shop", "lane", "baseline", "model",
                    "closed", "requests", (json_int_t)100000, "errors", (json_int_t)3, "rps",
                    2500.25, "p50_ms", 1.5, "p99_ms", 12.75, "cache_hit_ratio", 0.5, "passed", 1,
                    "thresholds", "p95", "<300ms");
    osp_lbatch_typed(b, "benchmark_results", row);
    json_object_set_new(row, "lane", json_string("scale-out"));
    osp_lbatch_typed(b, "benchmark_results", row);
    assert_int_equal(osp_lbatch_count(b), 2);
    commit_sync(b);
    /* The same rows again (a retried commit) are not duplicated. */
    osp_lbatch_typed(b, "benchmark_results", row);
    commit_sync(b);

    params[0] = id;
    rows = osp_pgs_query(pg,
                         "SELECT lane, requests, errors, rps, p50_ms, p99_ms, passed, "
                         "thresholds->>'p95' AS p95, model, created_at IS NOT NULL AS has_ts, "
                         "p90_ms FROM opspool.benchmark_results WHERE job_id = $1::uuid "
                         "ORDER BY lane",
                         1, params, &err);
    assert_non_null(rows);
    assert_int_equal(json_array_size(rows), 2);
    got = json_array_get(rows, 0);
    assert_string_equal(jstr(got, "lane"), "baseline");
    assert_string_equal(jstr(got, "requests"), "100000");
    assert_string_equal(jstr(got, "errors"), "3");
    assert_string_equal(jstr(got, "rps"), "2500.25");
    assert_string_equal(jstr(got, "p99_ms"), "12.75");
    assert_string_equal(jstr(got, "passed"), "t");
    assert_string_equal(jstr(got, "p95"), "<300ms");
    assert_string_equal(jstr(got, "has_ts"), "t");
    assert_true(json_is_null(json_object_get(got, "p90_ms")));
    assert_string_equal(jstr(json_array_get(rows, 1), "lane"), "scale-out");
    json_decref(rows);

    /* A row the table refuses (wrong type) does not fail the batch around it: it becomes a
     * 'ledger.typed_rejected' event of its job, and the batch's other writes land. */
    json_object_set_new(row, "lane", json_string("bad"));
    json_object_set_new(row, "rps", json_string("fast"));
    osp_lbatch_typed(b, "benchmark_results", row);
    osp_lbatch_event(b, id, 1, osp_now_ms(), "after", NULL);
    commit_sync(b);
    assert_int_equal(query_long("SELECT count(*) FROM opspool.benchmark_results "
                                "WHERE job_id = $1::uuid",
                                id),
                     2);
    got = get_job(id);
    assert_int_equal(json_array_size(json_object_get(got, "events")), 2);
    assert_string_equal(jstr(json_array_get(json_object_get(got, "events"), 0), "type"),
                        "ledger.typed_rejected");
    assert_string_equal(
        jstr(json_object_get(json_array_get(json_object_get(got, "events"), 0), "data"), "table"),
        "opspool.benchmark_results");
    json_decref(got);

    /* Typed rows for the other tables. */
    json_decref(row);
    row = json_pack("{s:s, s:i, s:s, s:I, s:i, s:s, s:{s:i}, s:s}", "job_id", id, "attempt", 1,
                    "target", "shop", "seed", (json_int_t)42, "scale", 2, "mode", "replace", "rows",
                    "orders", 1000, "digest", "abc");
    osp_lbatch_typed(b, "seed_runs", row);
    json_decref(row);
    row = json_pack("{s:s, s:i, s:s, s:s, s:f, s:I}", "job_id", id, "attempt", 1, "fault",
                    "pod-restart", "verdict", "passed", "availability", 0.995, "time_to_recover_ms",
                    (json_int_t)1500);
    osp_lbatch_typed(b, "drill_results", row);
    json_decref(row);
    row = json_pack("{s:s, s:i, s:s, s:I, s:s}", "job_id", id, "attempt", 1, "path",
                    "/backups/x.dump", "bytes", (json_int_t)1 << 40, "sha256", "00ff");
    osp_lbatch_typed(b, "backups", row);
    json_decref(row);
    commit_sync(b);
    assert_int_equal(query_long("SELECT (SELECT count(*) FROM opspool.seed_runs WHERE "
                                "job_id = $1::uuid AND rows->>'orders' = '1000') + "
                                "(SELECT count(*) FROM opspool.drill_results WHERE "
                                "job_id = $1::uuid AND availability = 0.995) + "
                                "(SELECT count(*) FROM opspool.backups WHERE job_id = $1::uuid "
                                "AND bytes = 1099511627776)",
                                id),
                     3);
    osp_lbatch_free(b);
}

/* Count the events of job id with the given type. */
static long count_events(const char *id, const char *type)
{
    struct osp_err err = {0};
    const char *params[2] = {id, type};
    json_t *rows = osp_pgs_query(pg,
                                 "SELECT count(*) AS n FROM opspool.job_events "
                                 "WHERE job_id = $1::uuid AND type = $2",
                                 2, params, &err);
    long n;

    if (rows == NULL) {
        fail_msg("count_events: %s", err.msg);
    }
    n = strtol(jstr(json_array_get(rows, 0), "n"), NULL, 10);
    json_decref(rows);
    return n;
}

/* Ops that can never be written (unknown table, bad ids, unknown outcome) are dropped, leave
 * a 'ledger.op_rejected' event when they name a job, and do not stop the rest of the batch:
 * one buggy kind must not stall every outcome batched with it. Table names are compared
 * against a fixed allowlist, never put into SQL. */
static void test_typed_rejected_table(void **state)
{
    static const char *const bad_tables[] = {
        "jobs",
        "benchmark_results (job_id) SELECT 1; --",
        "opspool.benchmark_results",
        "pg_catalog.pg_class",
        "BENCHMARK_RESULTS",
        "benchmark_results\"; DROP TABLE opspool.jobs; --",
    };
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct readiness r = {0};
    struct osp_ledger *l = ledger_up(loop, "ledger_test_reject", &r);
    struct osp_lbatch *b = osp_lbatch_new();
    uint64_t errors = osp_ledger_error_count(l);
    char id[OSP_ID_LEN + 1];
    json_t *row;
    json_t *job;
    json_t *ev;

    (void)state;
    make_job(id, "reject", NULL);
    row = json_pack("{s:s, s:i, s:s}", "job_id", id, "attempt", 1, "target", "x");

    osp_lbatch_start(b, id, 1, "w", osp_now_ms());
    for (size_t i = 0; i < OSP_ARRAY_LEN(bad_tables); i++) {
        osp_lbatch_typed(b, bad_tables[i], row);
    }
    osp_lbatch_typed(b, NULL, row);
    osp_lbatch_typed(b, "seed_runs", json_object_get(row, "job_id")); /* not an object */
    osp_lbatch_start(b, "nope", 1, "w", 0);                           /* no such id: no trace */
    osp_lbatch_event(b, "'; --", 1, 0, "x", NULL);
    osp_lbatch_event(b, id, 1, 0, "", NULL);
    assert_int_equal(osp_lbatch_count(b), 1 + OSP_ARRAY_LEN(bad_tables) + 5);
    assert_int_equal(commit_async(loop, l, b), 0);
    assert_true(osp_ledger_error_count(l) == errors + 1);
    assert_non_null(strstr(osp_ledger_last_error(l), "dropped"));

    job = get_job(id);
    assert_string_equal(jstr(job, "state"), "running"); /* the valid start landed */
    ev = json_object_get(job, "events");
    assert_int_equal(json_array_size(ev), OSP_ARRAY_LEN(bad_tables) + 2);
    for (size_t i = 0; i < OSP_ARRAY_LEN(bad_tables); i++) {
        json_t *data = json_object_get(json_array_get(ev, i), "data");

        assert_string_equal(jstr(json_array_get(ev, i), "type"), "ledger.op_rejected");
        assert_string_equal(jstr(data, "table"), bad_tables[i]);
        assert_string_equal(jstr(json_object_get(data, "row"), "target"), "x");
        assert_non_null(jstr(data, "error"));
    }
    json_decref(job);
    assert_int_equal(query_long("SELECT count(*) FROM opspool.jobs", NULL) > 0, 1);
    assert_int_equal(query_long("SELECT count(*) FROM opspool.benchmark_results WHERE "
                                "job_id = $1::uuid",
                                id),
                     0);

    /* A typed row whose attempt is not an integer, and a finish with an outcome or next
     * state outside the contract: dropped with evidence; the job is not moved. */
    json_object_set_new(row, "attempt", json_string("1"));
    osp_lbatch_typed(b, "seed_runs", row);
    osp_lbatch_finish(b, id, 1, "w", "exploded", "succeeded", NULL, NULL, 0, 0, 0);
    osp_lbatch_finish(b, id, 1, "w", "failed", "queued", NULL, NULL, 0, 0, 0);
    commit_sync(b);
    assert_int_equal(count_events(id, "ledger.op_rejected"), (long)OSP_ARRAY_LEN(bad_tables) + 5);
    job = get_job(id);
    assert_string_equal(jstr(job, "state"), "running");
    assert_int_equal(json_array_size(json_object_get(job, "attempts")), 0);
    json_decref(job);

    /* Strings that are not UTF-8 (a crashed child's stderr) are repaired, not refused. */
    osp_lbatch_event(b, id, 1, 0, "bad \xff\xc3 utf-8", NULL);
    osp_lbatch_finish(b, id, 1, "w\xfe", "crashed", "dead", NULL, "segfault \xc0\xaf tail", 0, 0,
                      0);
    commit_sync(b);
    job = get_job(id);
    assert_string_equal(jstr(job, "state"), "dead");
    assert_string_equal(jstr(job, "error"), "segfault \xef\xbf\xbd\xef\xbf\xbd tail");
    assert_string_equal(jstr(job, "worker"), "w\xef\xbf\xbd");
    json_decref(job);
    assert_int_equal(count_events(id, "bad \xef\xbf\xbd\xef\xbf\xbd utf-8"), 1);

    json_decref(row);
    osp_lbatch_free(b);
    osp_ledger_free(l);
    ev_loop_destroy(loop);
}

/* ---- Volume ---- */

static double now_s(void)
{
    return (double)osp_mono_ns() / 1e9;
}

/* n jobs with a start, an event and a finish each, committed asynchronously. Returns the
 * commit's wall time in ms. */
static double big_batch(struct ev_loop *loop, struct osp_ledger *l, size_t njobs, size_t nevents)
{
    struct osp_err err = {0};
    struct osp_job *jobs = osp_xcalloc(njobs, sizeof(*jobs));
    struct osp_lbatch *b = osp_lbatch_new();
    int64_t now = osp_now_ms();
    json_t *data = json_pack("{s:s, s:i}", "msg", "progress 'quoted' \\ done", "pct", 50);
    json_t *result = json_pack("{s:i}", "ok", 1);
    double t0;
    double ms;
    char njobs_text[32];

    for (size_t i = 0; i < njobs; i++) {
        osp_job_init(&jobs[i]);
        osp_id_new(jobs[i].id);
        snprintf(jobs[i].kind, sizeof(jobs[i].kind), "bulk%zu", njobs);
    }
    assert_int_equal(osp_ledger_insert_jobs(pg, jobs, njobs, NULL, &err), 0);
    for (size_t i = 0; i < njobs; i++) {
        osp_lbatch_start(b, jobs[i].id, 1, "bulk-worker", now);
        for (size_t e = 0; e < nevents; e++) {
            osp_lbatch_event(b, jobs[i].id, 1, now + (int64_t)e, "progress", data);
        }
        osp_lbatch_finish(b, jobs[i].id, 1, "bulk-worker", "succeeded", "succeeded", result, NULL,
                          now, now + 5, 0);
    }
    assert_int_equal(osp_lbatch_count(b), njobs * (2 + nevents));
    t0 = now_s();
    assert_int_equal(commit_async(loop, l, b), 0);
    ms = (now_s() - t0) * 1000;

    snprintf(njobs_text, sizeof(njobs_text), "bulk%zu", njobs);
    assert_int_equal(query_long("SELECT count(*) FROM opspool.jobs WHERE kind = $1 "
                                "AND state = 'succeeded'",
                                njobs_text),
                     (long)njobs);
    assert_int_equal(query_long("SELECT count(*) FROM opspool.job_events e JOIN opspool.jobs j "
                                "ON j.id = e.job_id WHERE j.kind = $1",
                                njobs_text),
                     (long)(njobs * nevents));
    for (size_t i = 0; i < njobs; i++) {
        osp_job_deinit(&jobs[i]);
    }
    free(jobs);
    json_decref(data);
    json_decref(result);
    osp_lbatch_free(b);
    return ms;
}

static void test_big_batches(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct readiness r = {0};
    struct osp_ledger *l = ledger_up(loop, "ledger_test_big", &r);
    double ms500;
    double ms1000;

    (void)state;
    ms1000 = big_batch(loop, l, 250, 2); /* 1,000 ops */
    ms500 = big_batch(loop, l, 125, 2);  /* 500 ops */
    printf("# ledger: 1000-op batch committed in %.1f ms, 500-op batch in %.1f ms\n", ms1000,
           ms500);
    assert_true(ms1000 < 5000);
    osp_ledger_free(l);
    ev_loop_destroy(loop);
}

/* ---- Connection loss ---- */

static void terminate_backend(const char *app)
{
    struct osp_err err = {0};
    const char *params[1] = {app};
    json_t *rows = osp_pgs_query(pg,
                                 "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n "
                                 "FROM pg_stat_activity WHERE application_name = $1",
                                 1, params, &err);

    assert_non_null(rows);
    assert_true(atoi(jstr(json_array_get(rows, 0), "n")) >= 1);
    json_decref(rows);
}

/* Commit until it succeeds; every failure must be OSP_EPG and nothing may hang. */
static int commit_until_ok(struct ev_loop *loop, struct osp_ledger *l, const char *id,
                           const char *type)
{
    struct osp_lbatch *b = osp_lbatch_new();
    int64_t deadline = osp_mono_ns() + (int64_t)(LOOP_LIMIT_S * 1e9);
    int failures = 0;
    int rc;

    for (;;) {
        osp_lbatch_event(b, id, 1, osp_now_ms(), type, NULL);
        rc = commit_async(loop, l, b);
        if (rc == 0) {
            break;
        }
        assert_int_equal(rc, OSP_EPG);
        failures++;
        assert_true(osp_mono_ns() < deadline);
    }
    osp_lbatch_free(b);
    return failures;
}

static void test_connection_loss(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct readiness r = {0};
    struct osp_ledger *l = ledger_up(loop, "ledger_test_loss", &r);
    struct osp_lbatch *b = osp_lbatch_new();
    struct done d = {0};
    char id[OSP_ID_LEN + 1];
    uint64_t errors;
    int64_t t0;

    (void)state;
    make_job(id, "loss", NULL);

    /* 1. Killed while idle: the next commit fails with OSP_EPG or succeeds after the
     * reconnect; a retry loop gets through within the bound. */
    terminate_backend("ledger_test_loss");
    commit_until_ok(loop, l, id, "after-idle-kill");
    assert_true(r.downs >= 1);
    assert_true(r.ups >= 2);
    assert_true(osp_ledger_is_ready(l));
    assert_true(osp_ledger_error_count(l) >= 1);
    assert_true(strlen(osp_ledger_last_error(l)) > 0);

    /* 2. Killed with a commit in flight: the commit is sent, the backend killed before the
     * answer is read. It must call back (OSP_EPG, or 0 if it committed first). */
    osp_lbatch_event(b, id, 1, osp_now_ms(), "in-flight", NULL);
    assert_int_equal(osp_ledger_commit(l, b, done_cb, &d), 0);
    {
        /* One loop turn sends it (the kick timer), then the backend goes. */
        ev_run(loop, EVRUN_NOWAIT);
        terminate_backend("ledger_test_loss");
    }
    assert_true(run_until(loop, &d.called));
    assert_int_equal(d.calls, 1);
    assert_true(d.status == 0 || d.status == OSP_EPG);
    commit_until_ok(loop, l, id, "after-inflight-kill");

    /* 3. Commits queued while disconnected wait for the reconnect. */
    errors = osp_ledger_error_count(l);
    terminate_backend("ledger_test_loss");
    t0 = osp_mono_ns();
    while (osp_ledger_error_count(l) == errors &&
           osp_mono_ns() - t0 < (int64_t)(LOOP_LIMIT_S * 1e9)) {
        ev_run(loop, EVRUN_ONCE);
    }
    assert_false(osp_ledger_is_ready(l)); /* noticed, reconnect pending (>= 75 ms away) */
    memset(&d, 0, sizeof(d));
    osp_lbatch_event(b, id, 1, osp_now_ms(), "queued-while-down", NULL);
    assert_int_equal(osp_ledger_commit(l, b, done_cb, &d), 0);
    assert_true(run_until(loop, &d.called));
    assert_int_equal(d.status, 0);
    assert_int_equal(query_long("SELECT count(*) FROM opspool.job_events WHERE job_id = $1::uuid "
                                "AND type = 'queued-while-down'",
                                id),
                     1);
    osp_lbatch_free(b);
    osp_ledger_free(l);
    ev_loop_destroy(loop);
}

/* Freeing the ledger cancels what is pending, exactly once each, before it returns. */
static void test_free_cancels_pending(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct readiness r = {0};
    struct osp_ledger *l = ledger_up(loop, "ledger_test_free", &r);
    struct osp_lbatch *b = osp_lbatch_new();
    struct done d[3];
    char id[OSP_ID_LEN + 1];

    (void)state;
    memset(d, 0, sizeof(d));
    make_job(id, "free", NULL);
    for (int i = 0; i < 3; i++) {
        osp_lbatch_event(b, id, 1, 0, "x", NULL);
        assert_int_equal(osp_ledger_commit(l, b, done_cb, &d[i]), 0);
    }
    osp_ledger_free(l);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d[i].calls, 1);
        assert_int_equal(d[i].status, OSP_ECANCELED);
    }
    osp_lbatch_free(b);
    ev_loop_destroy(loop);
}

/* An unreachable server: commits fail with OSP_EPG once they waited too long; never hang.
 * Uses a closed port on loopback, so every connection attempt fails fast. */
static void test_unreachable_server_is_not_ready(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct osp_err err = {0};
    struct osp_ledger *l = osp_ledger_new(loop, "host=127.0.0.1 port=1 connect_timeout=1", &err);

    (void)state;
    assert_non_null(l);
    /* Let a few reconnect attempts happen: it stays not ready and counts errors. */
    {
        int64_t t0 = osp_mono_ns();

        while (osp_mono_ns() - t0 < 400 * 1000000LL) {
            ev_run(loop, EVRUN_ONCE);
        }
    }
    assert_false(osp_ledger_is_ready(l));
    assert_true(osp_ledger_error_count(l) >= 2);
    assert_non_null(strstr(osp_ledger_last_error(l), "connect"));
    osp_ledger_free(l);

    assert_null(osp_ledger_new(loop, "host='unterminated", &err));
    assert_int_equal(err.code, OSP_EINVAL);
    ev_loop_destroy(loop);
}

/* The synchronous client fails the call that meets a dead connection, then recovers. */
static void test_sync_reconnects(void **state)
{
    struct osp_err err = {0};
    char *d = osp_xasprintf("%s application_name=ledger_test_sync", dsn);
    struct osp_pgs *c = osp_pgs_connect(d, &err);
    json_t *rows;

    (void)state;
    free(d);
    assert_non_null(c);
    terminate_backend("ledger_test_sync");
    rows = osp_pgs_query(c, "SELECT 1 AS one", 0, NULL, &err);
    if (rows == NULL) {
        assert_int_equal(err.code, OSP_EPG);
        rows = osp_pgs_query(c, "SELECT 1 AS one", 0, NULL, &err);
    }
    assert_non_null(rows);
    assert_string_equal(jstr(json_array_get(rows, 0), "one"), "1");
    json_decref(rows);
    osp_pgs_free(c);
}

/* opspool's sessions commit synchronously whatever the server's default (the suite's server
 * runs synchronous_commit=off): a commit opspool acted on must survive a server crash. A DSN
 * that sets options itself wins. Both clients open connections through the same function. */
static void show_sync_commit(const char *extra, const char *want)
{
    struct osp_err err = {0};
    char *d = osp_xasprintf("%s%s", dsn, extra);
    struct osp_pgs *c = osp_pgs_connect(d, &err);
    json_t *rows;

    free(d);
    if (c == NULL) {
        fail_msg("connect: %s", err.msg);
    }
    rows = osp_pgs_query(c,
                         "SELECT current_setting('synchronous_commit') || ' jit=' || "
                         "current_setting('jit') AS s",
                         0, NULL, &err);
    assert_non_null(rows);
    assert_string_equal(jstr(json_array_get(rows, 0), "s"), want);
    json_decref(rows);
    osp_pgs_free(c);
}

static void test_sessions_commit_synchronously(void **state)
{
    (void)state;
    show_sync_commit("", "on jit=off");
    show_sync_commit(" options='-c synchronous_commit=local'", "local jit=on");
}

/* A commit callback may free the ledger: the others are cancelled, nothing is touched after. */
struct free_in_cb {
    struct osp_ledger *l;
    struct done rest[2];
    bool freed;
};

static void free_cb(struct osp_ledger *l, int status, void *arg)
{
    struct free_in_cb *f = arg;

    assert_int_equal(status, 0);
    osp_ledger_free(l);
    osp_ledger_free(l); /* a second free from the same frame is harmless */
    f->freed = true;
}

static void test_free_from_callback(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct readiness r = {0};
    struct free_in_cb f;
    struct osp_lbatch *b = osp_lbatch_new();
    char id[OSP_ID_LEN + 1];

    (void)state;
    memset(&f, 0, sizeof(f));
    f.l = ledger_up(loop, "ledger_test_freecb", &r);
    make_job(id, "freecb", NULL);
    osp_lbatch_event(b, id, 1, 0, "first", NULL);
    assert_int_equal(osp_ledger_commit(f.l, b, free_cb, &f), 0);
    for (int i = 0; i < 2; i++) {
        osp_lbatch_event(b, id, 1, 0, "later", NULL);
        assert_int_equal(osp_ledger_commit(f.l, b, done_cb, &f.rest[i]), 0);
    }
    assert_true(run_until(loop, &f.freed));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f.rest[i].calls, 1);
        assert_int_equal(f.rest[i].status, OSP_ECANCELED);
    }
    assert_int_equal(ev_pending_count(loop), 0);
    osp_lbatch_free(b);
    ev_loop_destroy(loop);
}

/* ---- Strings ---- */

static void test_hostile_strings_stored_verbatim(void **state)
{
    static const char *const nasty[] = {
        "'); DROP TABLE opspool.jobs; --",
        "back\\slash \\\\ and \\x00 and \\u0000 text",
        "\"double\" 'single' `tick` $1 $$dollar$$ %s %n",
        "unicode: \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87 \xd7\xa2\xd7\x91",
        "{\"looks\": \"like json\"}",
        "NULL",
        "line\nbreak\ttab\r\n",
    };
    struct osp_lbatch *b = osp_lbatch_new();
    struct osp_err err = {0};
    struct osp_job j;
    json_t *payload = json_object();
    json_t *job;
    json_t *ev;
    json_t *rows;
    const char *params[1];
    char id[OSP_ID_LEN + 1];

    (void)state;
    osp_job_init(&j);
    osp_id_new(j.id);
    snprintf(j.kind, sizeof(j.kind), "strings");
    set_str(&j.idempotency_key, nasty[0]);
    set_str(&j.submitted_by, nasty[1]);
    set_str(&j.trace_id, nasty[3]);
    for (size_t i = 0; i < OSP_ARRAY_LEN(nasty); i++) {
        json_object_set_new(payload, nasty[i], json_string(nasty[i]));
    }
    json_decref(j.payload);
    j.payload = json_incref(payload);
    assert_int_equal(osp_ledger_insert_jobs(pg, &j, 1, NULL, &err), 0);
    memcpy(id, j.id, sizeof(id));
    osp_job_deinit(&j);

    osp_lbatch_start(b, id, 1, nasty[2], osp_now_ms());
    for (size_t i = 0; i < OSP_ARRAY_LEN(nasty); i++) {
        osp_lbatch_event(b, id, 1, osp_now_ms(), nasty[i], payload);
    }
    osp_lbatch_finish(b, id, 1, nasty[2], "failed", "dead", payload, nasty[4], 0, 0, 0);
    commit_sync(b);

    job = get_job(id);
    assert_true(json_equal(json_object_get(job, "payload"), payload));
    assert_true(json_equal(json_object_get(job, "result"), payload));
    assert_string_equal(jstr(job, "idempotency_key"), nasty[0]);
    assert_string_equal(jstr(job, "submitted_by"), nasty[1]);
    assert_string_equal(jstr(job, "trace_id"), nasty[3]);
    assert_string_equal(jstr(job, "worker"), nasty[2]);
    assert_string_equal(jstr(job, "error"), nasty[4]);
    assert_string_equal(jstr(job, "state"), "dead");
    ev = json_object_get(job, "events");
    assert_int_equal(json_array_size(ev), OSP_ARRAY_LEN(nasty));
    for (size_t i = 0; i < OSP_ARRAY_LEN(nasty); i++) {
        assert_string_equal(jstr(json_array_get(ev, i), "type"), nasty[i]);
    }
    json_decref(job);

    /* And through osp_pgs_query with a hostile parameter. */
    params[0] = nasty[0];
    rows = osp_pgs_query(pg,
                         "SELECT id::text AS id, $1::text AS echo, NULL AS nothing "
                         "FROM opspool.jobs WHERE idempotency_key = $1",
                         1, params, &err);
    assert_non_null(rows);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(jstr(json_array_get(rows, 0), "id"), id);
    assert_string_equal(jstr(json_array_get(rows, 0), "echo"), nasty[0]);
    assert_true(json_is_null(json_object_get(json_array_get(rows, 0), "nothing")));
    json_decref(rows);
    assert_null(osp_pgs_query(pg, "SELECT * FROM no_such_table", 0, NULL, &err));
    assert_int_equal(err.code, OSP_EPG);
    assert_int_equal(query_long("SELECT count(*) FROM opspool.jobs", NULL) > 0, 1);

    json_decref(payload);
    osp_lbatch_free(b);
}

static int group_setup(void **state)
{
    (void)state;
    dsn = getenv("OSP_PG_DSN");
    if (dsn == NULL || dsn[0] == '\0') {
        fprintf(stderr, "OSP_PG_DSN is not set (run through tests/support/with-servers.sh)\n");
        return -1;
    }
    pg = connect_or_fail();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    osp_pgs_free(pg);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_concurrent),
        cmocka_unit_test(test_migrate_twice_is_noop),
        cmocka_unit_test(test_insert_jobs),
        cmocka_unit_test(test_insert_jobs_idempotency),
        cmocka_unit_test(test_insert_jobs_invalid),
        cmocka_unit_test(test_insert_jobs_strings),
        cmocka_unit_test(test_insert_jobs_async),
        cmocka_unit_test(test_get_job_unknown),
        cmocka_unit_test(test_async_start_events_finish),
        cmocka_unit_test(test_async_fifo),
        cmocka_unit_test(test_finish_twice_changes_nothing),
        cmocka_unit_test(test_finish_on_terminal_changes_nothing),
        cmocka_unit_test(test_start_and_finish_in_one_batch),
        cmocka_unit_test(test_recovered),
        cmocka_unit_test(test_poison_dead),
        cmocka_unit_test(test_typed_benchmark_row),
        cmocka_unit_test(test_typed_rejected_table),
        cmocka_unit_test(test_big_batches),
        cmocka_unit_test(test_connection_loss),
        cmocka_unit_test(test_free_cancels_pending),
        cmocka_unit_test(test_free_from_callback),
        cmocka_unit_test(test_sync_reconnects),
        cmocka_unit_test(test_sessions_commit_synchronously),
        cmocka_unit_test(test_unreachable_server_is_not_ready),
        cmocka_unit_test(test_hostile_strings_stored_verbatim),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
