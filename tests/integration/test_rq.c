/* SPDX-License-Identifier: MIT */
/* test_rq.c — the Redis queue layer (common/rq.h) against a real redis-server started by
 * tests/support/servers.sh: OSP_REDIS_URL names it, OSP_PREFIX isolates this run. Each test
 * gets its own sub-prefix inside the run's {hash tag} and an ACL user of its own, so the
 * reconnect test can kill exactly this test's connections (CLIENT KILL USER) without
 * disturbing other suites sharing the server. */
#include "common/alloc.h"
#include "common/base.h"
#include "common/buf.h"
#include "common/envelope.h"
#include "common/id.h"
#include "common/redis.h"
#include "common/rq.h"

#include <ev.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- Fixture ---- */

struct fx {
    struct ev_loop *loop;
    char prefix[160];
    char user[64];
    char pass[64];
    char worker[64];
    struct osp_rq_opts opts;  /* the worker's options (ACL user, worker id) */
    struct osp_rqs *s;        /* sync client, no worker id */
    struct osp_rq *rq;        /* async worker client */
    int ready_changes;        /* state callbacks seen */
    bool last_ready;
};

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

static json_t *cmd(struct fx *f, const char *first, ...)
{
    const char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 32; a = va_arg(ap, const char *)) {
        argv[argc++] = a;
    }
    va_end(ap);
    struct osp_err err = {0};
    json_t *r = osp_rqs_command(f->s, argc, argv, NULL, &err);
    if (r == NULL) {
        fail_msg("command %s failed: %s", first, err.msg);
    }
    return r;
}

static long long cmd_int(struct fx *f, const char *first, ...)
{
    const char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 32; a = va_arg(ap, const char *)) {
        argv[argc++] = a;
    }
    va_end(ap);
    struct osp_err err = {0};
    json_t *r = osp_rqs_command(f->s, argc, argv, NULL, &err);
    if (r == NULL || !json_is_integer(r)) {
        fail_msg("command %s: no integer (%s)", first, err.msg);
    }
    long long v = (long long)json_integer_value(r);
    json_decref(r);
    return v;
}

/* Key names for this test. */
static char *key(struct fx *f, const char *fmt, ...) OSP_PRINTF(2, 3);
static char *key(struct fx *f, const char *fmt, ...)
{
    char tail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tail, sizeof(tail), fmt, ap);
    va_end(ap);
    return osp_xasprintf("%s:%s", f->prefix, tail);
}

static void on_state(struct osp_rq *rq, bool ready, void *arg)
{
    OSP_UNUSED(rq);
    struct fx *f = arg;
    f->ready_changes++;
    f->last_ready = ready;
}

static void tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    OSP_UNUSED(loop);
    OSP_UNUSED(w);
    OSP_UNUSED(revents);
}

/* Run the loop until *flag or secs pass; a ticking timer bounds each iteration. */
static bool run_until(struct fx *f, const bool *flag, double secs)
{
    ev_timer t;
    ev_timer_init(&t, tick, 0.01, 0.01);
    ev_timer_start(f->loop, &t);
    double end = ev_time() + secs;
    while (!*flag && ev_time() < end) {
        ev_run(f->loop, EVRUN_ONCE);
        ev_now_update(f->loop);
    }
    ev_timer_stop(f->loop, &t);
    return *flag;
}

static void run_for(struct fx *f, double secs)
{
    bool never = false;
    run_until(f, &never, secs);
}

static void wait_ready(struct fx *f, struct osp_rq *rq)
{
    double end = ev_time() + 5.0;
    while (!osp_rq_is_ready(rq) && ev_time() < end) {
        run_for(f, 0.02);
    }
    assert_true(osp_rq_is_ready(rq));
}

static struct osp_rq *new_rq(struct fx *f, const char *worker_id)
{
    struct osp_rq_opts o = f->opts;
    o.worker_id = worker_id;
    struct osp_err err = {0};
    struct osp_rq *rq = osp_rq_new(f->loop, &o, &err);
    if (rq == NULL) {
        fail_msg("osp_rq_new: %s", err.msg);
    }
    wait_ready(f, rq);
    return rq;
}

static int setup(void **state)
{
    static unsigned seq;
    struct fx *f = osp_xcalloc(1, sizeof(*f));
    f->loop = EV_DEFAULT;
    snprintf(f->prefix, sizeof(f->prefix), "%s:t%u", env_or("OSP_PREFIX", "{osp-rq-test}"), seq);
    snprintf(f->user, sizeof(f->user), "rqtest-%d-%u", (int)getpid(), seq);
    snprintf(f->pass, sizeof(f->pass), "pw-%d-%u", (int)getpid(), seq);
    snprintf(f->worker, sizeof(f->worker), "w-%d-%u", (int)getpid(), seq);
    seq++;
    struct osp_rq_opts so = {.url = env_or("OSP_REDIS_URL", "redis://127.0.0.1:6379"),
                             .prefix = f->prefix};
    struct osp_err err = {0};
    f->s = osp_rqs_connect(&so, &err);
    if (f->s == NULL) {
        fail_msg("osp_rqs_connect: %s", err.msg);
    }
    char pw[80];
    snprintf(pw, sizeof(pw), ">%s", f->pass);
    json_decref(cmd(f, "ACL", "SETUSER", f->user, "reset", "on", pw, "~*", "&*", "+@all", NULL));
    f->opts = (struct osp_rq_opts){.url = so.url, .username = f->user, .password = f->pass,
                                   .prefix = f->prefix, .worker_id = f->worker};
    f->rq = new_rq(f, f->worker);
    osp_rq_set_state_cb(f->rq, on_state, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    osp_rq_free(f->rq);
    /* Leave nothing of this test behind. */
    char pat[200];
    snprintf(pat, sizeof(pat), "%s:*", f->prefix);
    json_t *keys = cmd(f, "KEYS", pat, NULL);
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        json_decref(cmd(f, "DEL", json_string_value(k), NULL));
    }
    json_decref(keys);
    json_decref(cmd(f, "ACL", "DELUSER", f->user, NULL));
    osp_rqs_free(f->s);
    free(f);
    return 0;
}

/* ---- Envelopes and ops ---- */

struct envl {
    char id[OSP_ID_LEN + 1];
    char kind[OSP_KIND_MAX + 1];
    struct osp_buf b;
    int64_t enqueued_at;
};

static void envl_make(struct envl *e, const char *kind, unsigned attempt)
{
    struct osp_job j;
    osp_job_init(&j);
    osp_id_new(j.id);
    snprintf(j.kind, sizeof(j.kind), "%s", kind);
    j.attempt = attempt;
    j.max_attempts = 5;
    j.enqueued_at = osp_now_ms() - 1234;
    memset(e, 0, sizeof(*e));
    memcpy(e->id, j.id, sizeof(e->id));
    snprintf(e->kind, sizeof(e->kind), "%s", kind);
    e->enqueued_at = j.enqueued_at;
    struct osp_err err = {0};
    assert_int_equal(osp_env_encode(&j, NULL, &e->b, &err), 0);
    osp_job_deinit(&j);
}

static void envl_free(struct envl *e)
{
    osp_buf_deinit(&e->b);
}

static void sapply(struct fx *f, struct osp_rq_ops *ops, int64_t *res)
{
    struct osp_err err = {0};
    int rc = osp_rqs_apply(f->s, ops, res, &err);
    if (rc != 0) {
        fail_msg("osp_rqs_apply: %s", err.msg);
    }
    osp_rq_ops_clear(ops);
}

static void enqueue(struct fx *f, const struct envl *e)
{
    struct osp_rq_ops *ops = osp_rq_ops_new();
    osp_rq_op_enqueue(ops, e->kind, e->id, e->b.data, e->b.len, 0);
    int64_t r = -1;
    sapply(f, ops, &r);
    assert_int_equal(r, 1);
    osp_rq_ops_free(ops);
}

/* Async call results. */
struct res {
    bool done;
    int status;
    size_t n;
    uint64_t paused;
    struct osp_buf env[16];
    char kinds[16][OSP_KIND_MAX + 1];
    int64_t results[16];
    int64_t count;
    int calls;
};

static void res_deinit(struct res *r)
{
    for (size_t i = 0; i < OSP_ARRAY_LEN(r->env); i++) {
        osp_buf_deinit(&r->env[i]);
    }
    memset(r, 0, sizeof(*r));
}

static void on_items(struct osp_rq *rq, int status, const struct osp_rq_item *items, size_t n,
                     uint64_t paused, void *arg)
{
    OSP_UNUSED(rq);
    struct res *r = arg;
    r->calls++;
    r->done = true;
    r->status = status;
    r->n = n;
    r->paused = paused;
    for (size_t i = 0; i < n && i < 16; i++) {
        osp_buf_reset(&r->env[i]);
        osp_buf_append(&r->env[i], items[i].env, items[i].env_len);
        snprintf(r->kinds[i], sizeof(r->kinds[i]), "%s", items[i].kind);
    }
}

static void on_apply(struct osp_rq *rq, int status, const int64_t *results, size_t n, void *arg)
{
    OSP_UNUSED(rq);
    struct res *r = arg;
    r->calls++;
    r->done = true;
    r->status = status;
    r->n = n;
    for (size_t i = 0; i < n && i < 16; i++) {
        r->results[i] = results[i];
    }
}

/* Reaper callbacks: count the recoveries and keep the first few. */
static struct osp_rq_recovery reaped[64];
static size_t nreaped;

static void on_reap(struct osp_rq *rq, int status, const struct osp_rq_recovery *recs, size_t n,
                    void *arg)
{
    OSP_UNUSED(rq);
    struct res *r = arg;
    r->calls++;
    r->done = true;
    r->status = status;
    r->count = (int64_t)n;
    for (size_t i = 0; i < n && nreaped < 64; i++) {
        reaped[nreaped++] = recs[i];
    }
}

static void on_count(struct osp_rq *rq, int status, int64_t n, void *arg)
{
    OSP_UNUSED(rq);
    struct res *r = arg;
    r->calls++;
    r->done = true;
    r->status = status;
    r->count = n;
}

static void aapply(struct fx *f, struct osp_rq *rq, struct osp_rq_ops *ops, struct res *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(osp_rq_apply(rq, ops, on_apply, r), 0);
    assert_false(r->done); /* never before the call returns */
    assert_true(run_until(f, &r->done, 5.0));
    assert_int_equal(r->status, 0);
    assert_int_equal(r->calls, 1);
    osp_rq_ops_clear(ops);
}

static void afetch(struct fx *f, const char *const *kinds, size_t nk, size_t max, struct res *r)
{
    res_deinit(r);
    assert_int_equal(osp_rq_fetch(f->rq, kinds, nk, max, on_items, r), 0);
    assert_false(r->done);
    assert_true(run_until(f, &r->done, 5.0));
    assert_int_equal(r->status, 0);
}

static bool buf_eq(const struct osp_buf *a, const struct osp_buf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* Raw bytes of a list element / string reply. */
static void get_bytes(struct fx *f, struct osp_buf *out, const char *first, ...)
{
    const char *argv[8];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 8; a = va_arg(ap, const char *)) {
        argv[argc++] = a;
    }
    va_end(ap);
    struct osp_err err = {0};
    json_t *r = osp_rqs_command(f->s, argc, argv, NULL, &err);
    assert_non_null(r);
    osp_buf_reset(out);
    if (json_is_string(r)) {
        osp_buf_append(out, json_string_value(r), json_string_length(r));
    }
    json_decref(r);
}

static char *hget(struct fx *f, const char *k, const char *field)
{
    json_t *r = cmd(f, "HGET", k, field, NULL);
    char *v = json_is_string(r) ? osp_xstrdup(json_string_value(r)) : NULL;
    json_decref(r);
    return v;
}

/* ---- Tests: the happy path ---- */

static void test_lifecycle_leaves_only_job_hash(void **state)
{
    struct fx *f = *state;
    struct envl e;
    envl_make(&e, "noop", 1);
    enqueue(f, &e);

    struct res r = {0};
    const char *kinds[] = {"noop"};
    afetch(f, kinds, 1, 10, &r);
    assert_int_equal(r.n, 1);
    assert_true(buf_eq(&r.env[0], &e.b));
    assert_string_equal(r.kinds[0], "noop");
    assert_int_equal(r.paused, 0);

    struct osp_rq_ops *ops = osp_rq_ops_new();
    osp_rq_op_start(ops, "noop", e.id, 1, e.b.data, e.b.len, osp_now_ms() + 30000);
    struct res a;
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 1);
    char *jk = key(f, "job:%s", e.id);
    char *st = hget(f, jk, "state");
    assert_string_equal(st, "running");
    free(st);
    char *w = hget(f, jk, "worker");
    assert_string_equal(w, f->worker);
    free(w);
    char *ik = key(f, "inflight:noop");
    assert_int_equal(cmd_int(f, "ZCARD", ik, NULL), 1);

    /* A renew moves the lease; an unknown id is not renewed. */
    osp_rq_op_renew(ops, "noop", e.id, osp_now_ms() + 60000);
    osp_rq_op_renew(ops, "noop", "00000000-0000-7000-8000-000000000000", osp_now_ms() + 60000);
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 1);
    assert_int_equal(a.results[1], 0);

    /* A cancel request (decision 0005) shows as 2 on the next renew. */
    json_decref(cmd(f, "HSET", jk, "cancel", "1", NULL));
    osp_rq_op_renew(ops, "noop", e.id, osp_now_ms() + 60000);
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 2);

    osp_rq_op_ack(ops, "noop", e.id, e.b.data, e.b.len, "cancelled", 600);
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 1);
    /* A second ack finds nothing to settle and says so. */
    osp_rq_op_ack(ops, "noop", e.id, e.b.data, e.b.len, "succeeded", 600);
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 0);

    char pat[200];
    snprintf(pat, sizeof(pat), "%s:*", f->prefix);
    json_t *keys = cmd(f, "KEYS", pat, NULL);
    assert_int_equal(json_array_size(keys), 1);
    assert_string_equal(json_string_value(json_array_get(keys, 0)), jk);
    json_decref(keys);
    long long ttl = cmd_int(f, "TTL", jk, NULL);
    assert_true(ttl > 0 && ttl <= 600);
    st = hget(f, jk, "state");
    assert_string_equal(st, "cancelled");
    free(st);
    assert_null(hget(f, jk, "worker"));

    /* Submitting the job again clears the old flag; a flag set while it waits makes start
     * report 2. */
    enqueue(f, &e);
    assert_null(hget(f, jk, "cancel"));
    assert_int_equal(cmd_int(f, "TTL", jk, NULL), -1);
    json_decref(cmd(f, "HSET", jk, "cancel", "1", NULL));
    afetch(f, kinds, 1, 1, &r);
    assert_int_equal(r.n, 1);
    osp_rq_op_start(ops, "noop", e.id, 2, e.b.data, e.b.len, osp_now_ms() + 30000);
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 2);

    free(jk);
    free(ik);
    osp_rq_ops_free(ops);
    res_deinit(&r);
    envl_free(&e);
}

static void test_fetch_paused_and_round_robin(void **state)
{
    struct fx *f = *state;
    struct envl e[9];
    const char *names[] = {"ka", "kb", "kc"};
    for (int i = 0; i < 9; i++) {
        envl_make(&e[i], names[i % 3], 1);
        enqueue(f, &e[i]);
    }
    char *pk = key(f, "paused");
    json_decref(cmd(f, "SADD", pk, "kb", NULL));

    struct res r = {0};
    afetch(f, names, 3, 4, &r);
    assert_int_equal(r.paused, 2u); /* bit 1: kinds[1] = kb */
    assert_int_equal(r.n, 4);
    int na = 0, nc = 0;
    for (size_t i = 0; i < r.n; i++) {
        assert_string_not_equal(r.kinds[i], "kb");
        na += strcmp(r.kinds[i], "ka") == 0;
        nc += strcmp(r.kinds[i], "kc") == 0;
    }
    /* One per kind per round: a deep queue cannot take the whole batch. */
    assert_int_equal(na, 2);
    assert_int_equal(nc, 2);
    /* Oldest first within a kind: e[0] (ka) and e[2] (kc) were pushed first. */
    bool saw0 = false, saw2 = false;
    for (size_t i = 0; i < r.n; i++) {
        saw0 = saw0 || buf_eq(&r.env[i], &e[0].b);
        saw2 = saw2 || buf_eq(&r.env[i], &e[2].b);
    }
    assert_true(saw0 && saw2);

    /* The starting kind rotates: with max 1, consecutive calls serve different kinds. */
    json_decref(cmd(f, "SREM", pk, "kb", NULL));
    afetch(f, names, 3, 1, &r);
    assert_int_equal(r.n, 1);
    char first[OSP_KIND_MAX + 1];
    snprintf(first, sizeof(first), "%s", r.kinds[0]);
    afetch(f, names, 3, 1, &r);
    assert_int_equal(r.n, 1);
    assert_string_not_equal(first, r.kinds[0]);
    assert_int_equal(r.paused, 0);

    /* Everything fetched sits in the processing list. */
    char *proc = key(f, "processing:%s", f->worker);
    assert_int_equal(cmd_int(f, "LLEN", proc, NULL), 6);
    /* Nothing left for kc/ka beyond what is there; paused kinds are not fetched at all. */
    json_decref(cmd(f, "SADD", pk, "ka", "kb", "kc", NULL));
    afetch(f, names, 3, 10, &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.paused, 7u);

    free(proc);
    free(pk);
    res_deinit(&r);
    for (int i = 0; i < 9; i++) {
        envl_free(&e[i]);
    }
}

struct late_push {
    struct fx *f;
    const struct envl *e;
    ev_timer t;
};

static void on_late_push(struct ev_loop *loop, ev_timer *w, int revents)
{
    OSP_UNUSED(loop);
    OSP_UNUSED(revents);
    struct late_push *lp = osp_container_of(w, struct late_push, t);
    enqueue(lp->f, lp->e);
}

static void test_fetch_wait(void **state)
{
    struct fx *f = *state;
    struct envl e;
    envl_make(&e, "wk", 1);

    /* Timeout: nothing arrives, n == 0 after about the timeout. */
    struct res r = {0};
    double t0 = ev_time();
    assert_int_equal(osp_rq_fetch_wait(f->rq, "wk", 200, on_items, &r), 0);
    assert_false(r.done);
    /* At most one outstanding. */
    struct res r2 = {0};
    assert_int_equal(osp_rq_fetch_wait(f->rq, "wk", 200, on_items, &r2), OSP_ECONFLICT);
    assert_true(run_until(f, &r.done, 5.0));
    double dt = ev_time() - t0;
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n, 0);
    assert_true(dt >= 0.15 && dt < 3.0);

    /* An envelope pushed after the call is returned. */
    struct late_push lp = {.f = f, .e = &e};
    ev_timer_init(&lp.t, on_late_push, 0.1, 0.0);
    ev_timer_start(f->loop, &lp.t);
    res_deinit(&r);
    assert_int_equal(osp_rq_fetch_wait(f->rq, "wk", 3000, on_items, &r), 0);
    /* The pipelined connection stays usable while the blocking one waits. */
    struct res h = {0};
    const char *fields[] = {"host", "test", "slots", "1", NULL};
    assert_int_equal(osp_rq_heartbeat(f->rq, fields, on_count, &h), 0);
    assert_true(run_until(f, &h.done, 2.0));
    assert_int_equal(h.status, 0);
    assert_true(run_until(f, &r.done, 5.0));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n, 1);
    assert_true(buf_eq(&r.env[0], &e.b));
    assert_string_equal(r.kinds[0], "wk");
    char *proc = key(f, "processing:%s", f->worker);
    assert_int_equal(cmd_int(f, "LLEN", proc, NULL), 1);
    free(proc);
    ev_timer_stop(f->loop, &lp.t);
    res_deinit(&r);
    envl_free(&e);
}

/* Fetch + start one envelope through the async client. */
static void take(struct fx *f, const struct envl *e)
{
    enqueue(f, e);
    struct res r = {0};
    const char *kinds[] = {e->kind};
    afetch(f, kinds, 1, 1, &r);
    assert_int_equal(r.n, 1);
    assert_true(buf_eq(&r.env[0], &e->b));
    res_deinit(&r);
    struct osp_rq_ops *ops = osp_rq_ops_new();
    osp_rq_op_start(ops, e->kind, e->id, 1, e->b.data, e->b.len, osp_now_ms() + 30000);
    struct res a;
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 1);
    osp_rq_ops_free(ops);
}

static void test_retry_and_promote(void **state)
{
    struct fx *f = *state;
    struct envl e, e2;
    envl_make(&e, "rk", 1);
    envl_make(&e2, "rk", 2);
    memcpy(e2.id, e.id, sizeof(e.id)); /* same job, next attempt (the id inside differs: fine) */
    take(f, &e);

    int64_t due = osp_now_ms() + 5000;
    struct osp_rq_ops *ops = osp_rq_ops_new();
    osp_rq_op_retry(ops, "rk", e.id, e.b.data, e.b.len, e2.b.data, e2.b.len, due);
    struct res a;
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 1);

    char *dk = key(f, "delayed");
    json_t *m = cmd(f, "ZRANGE", dk, "0", "-1", "WITHSCORES", NULL);
    assert_int_equal(json_array_size(m), 2);
    struct osp_buf want = OSP_BUF_INIT;
    osp_buf_append(&want, "rk|", 3);
    osp_buf_append(&want, e2.b.data, e2.b.len);
    json_t *mem = json_array_get(m, 0);
    assert_int_equal(json_string_length(mem), want.len);
    assert_memory_equal(json_string_value(mem), want.data, want.len);
    assert_int_equal(atoll(json_string_value(json_array_get(m, 1))), due);
    json_decref(m);
    char *jk = key(f, "job:%s", e.id);
    char *st = hget(f, jk, "state");
    assert_string_equal(st, "retrying");
    free(st);
    char *ik = key(f, "inflight:rk");
    assert_int_equal(cmd_int(f, "EXISTS", ik, NULL), 0);

    /* Not before it is due... */
    struct res p = {0};
    assert_int_equal(osp_rq_promote(f->rq, due - 1, 100, on_count, &p), 0);
    assert_true(run_until(f, &p.done, 5.0));
    assert_int_equal(p.status, 0);
    assert_int_equal(p.count, 0);
    char *qk = key(f, "queue:rk");
    assert_int_equal(cmd_int(f, "LLEN", qk, NULL), 0);
    /* ...then to the back of its queue (sync duty this time). */
    int64_t moved = -1;
    struct osp_err err = {0};
    assert_int_equal(osp_rqs_promote(f->s, due, 100, &moved, &err), 0);
    assert_int_equal(moved, 1);
    assert_int_equal(cmd_int(f, "ZCARD", dk, NULL), 0);
    struct osp_buf got = OSP_BUF_INIT;
    get_bytes(f, &got, "LINDEX", qk, "0", NULL);
    assert_true(buf_eq(&got, &e2.b));

    /* A delayed member without a routable kind is dead-lettered, as a decodable record. */
    json_decref(cmd(f, "ZADD", dk, "1", "no-bar-here", NULL));
    assert_int_equal(osp_rqs_promote(f->s, due, 100, &moved, &err), 0);
    assert_int_equal(moved, 0);
    char *dead = key(f, "dead:unknown");
    get_bytes(f, &got, "LINDEX", dead, "0", NULL);
    struct osp_dead d;
    assert_int_equal(osp_dead_decode(got.data, got.len, &d, &err), 0);
    assert_non_null(strstr(d.reason, "kind"));
    assert_int_equal(d.env.len, strlen("no-bar-here"));
    assert_memory_equal(d.env.data, "no-bar-here", d.env.len);
    assert_string_equal(d.job_id, "");
    assert_true(d.failed_at_ms == due);
    osp_dead_deinit(&d);

    /* run_at in the future: enqueue goes to delayed, not the queue. */
    struct envl e3;
    envl_make(&e3, "rk", 1);
    osp_rq_op_enqueue(ops, "rk", e3.id, e3.b.data, e3.b.len, osp_now_ms() + 60000);
    int64_t res1 = 0;
    sapply(f, ops, &res1);
    assert_int_equal(res1, 1);
    assert_int_equal(cmd_int(f, "ZCARD", dk, NULL), 1);
    assert_int_equal(cmd_int(f, "LLEN", qk, NULL), 1);

    free(dead);
    free(qk);
    free(ik);
    free(jk);
    free(dk);
    osp_buf_deinit(&got);
    osp_buf_deinit(&want);
    osp_rq_ops_free(ops);
    envl_free(&e);
    envl_free(&e2);
    envl_free(&e3);
}

static void test_dead_and_requeue(void **state)
{
    struct fx *f = *state;
    struct envl e, e1, e2;
    envl_make(&e, "dk", 1);
    take(f, &e);

    struct osp_buf rec = OSP_BUF_INIT;
    osp_dead_encode("payload rejected", 42, e.id, e.b.data, e.b.len, &rec);
    struct osp_rq_ops *ops = osp_rq_ops_new();
    osp_rq_op_dead(ops, "dk", e.id, e.b.data, e.b.len, rec.data, rec.len, 600);
    struct res a;
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 1);
    char *deadk = key(f, "dead:dk");
    struct osp_buf got = OSP_BUF_INIT;
    get_bytes(f, &got, "LINDEX", deadk, "0", NULL);
    struct osp_dead d;
    struct osp_err err = {0};
    assert_int_equal(osp_dead_decode(got.data, got.len, &d, &err), 0);
    assert_string_equal(d.reason, "payload rejected");
    assert_string_equal(d.job_id, e.id);
    assert_true(buf_eq(&d.env, &e.b));
    osp_dead_deinit(&d);
    char *jk = key(f, "job:%s", e.id);
    char *st = hget(f, jk, "state");
    assert_string_equal(st, "dead");
    free(st);
    assert_true(cmd_int(f, "TTL", jk, NULL) > 0);
    char *proc = key(f, "processing:%s", f->worker);
    assert_int_equal(cmd_int(f, "LLEN", proc, NULL), 0);

    /* Requeue hands an envelope back to the front: it is the next one taken. */
    envl_make(&e1, "dk", 1);
    envl_make(&e2, "dk", 1);
    take(f, &e1);
    enqueue(f, &e2);
    osp_rq_op_requeue(ops, "dk", e1.id, e1.b.data, e1.b.len);
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 1);
    char *qk = key(f, "queue:dk");
    get_bytes(f, &got, "LINDEX", qk, "-1", NULL);
    assert_true(buf_eq(&got, &e1.b));
    char *jk1 = key(f, "job:%s", e1.id);
    st = hget(f, jk1, "state");
    assert_string_equal(st, "queued");
    free(st);
    free(jk1);
    struct res r = {0};
    const char *kinds[] = {"dk"};
    afetch(f, kinds, 1, 1, &r);
    assert_true(buf_eq(&r.env[0], &e1.b));

    /* Ops on a processing list need a worker id; bad input never reaches Redis. */
    osp_rq_op_requeue(ops, "dk", e1.id, e1.b.data, e1.b.len);
    assert_int_equal(osp_rqs_apply(f->s, ops, NULL, &err), OSP_EINVAL);
    osp_rq_ops_clear(ops);
    osp_rq_op_ack(ops, "Bad Kind", e1.id, e1.b.data, e1.b.len, "succeeded", 1);
    assert_int_equal(osp_rq_apply(f->rq, ops, on_apply, &a), OSP_EINVAL);
    osp_rq_ops_clear(ops);
    osp_rq_op_ack(ops, "dk", e1.id, e1.b.data, e1.b.len, "weird", 1);
    assert_int_equal(osp_rq_apply(f->rq, ops, on_apply, &a), OSP_EINVAL);
    osp_rq_ops_clear(ops);
    assert_int_equal(osp_rq_apply(f->rq, ops, on_apply, &a), OSP_EINVAL); /* empty */

    /* Several ops in one batch, results in order. */
    osp_rq_op_ack(ops, "dk", e1.id, e1.b.data, e1.b.len, "failed", 60);
    osp_rq_op_ack(ops, "dk", e1.id, e1.b.data, e1.b.len, "failed", 60);
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.results[0], 1);
    assert_int_equal(a.results[1], 0);

    /* A fetched envelope handed back undecoded (id "") moves, and no job hash is touched. */
    json_decref(cmd(f, "DEL", qk, NULL));
    enqueue(f, &e2);
    afetch(f, kinds, 1, 1, &r);
    assert_true(buf_eq(&r.env[0], &e2.b));
    osp_rq_op_requeue(ops, "dk", "", e2.b.data, e2.b.len);
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 1);
    assert_int_equal(cmd_int(f, "LLEN", qk, NULL), 1);
    assert_int_equal(cmd_int(f, "LLEN", proc, NULL), 0);
    char *empty_job = key(f, "job:");
    assert_int_equal(cmd_int(f, "EXISTS", empty_job, NULL), 0);
    free(empty_job);
    /* start and renew need an id. */
    osp_rq_op_renew(ops, "dk", "", 1);
    assert_int_equal(osp_rq_apply(f->rq, ops, on_apply, &a), OSP_EINVAL);
    osp_rq_ops_clear(ops);

    free(qk);
    free(proc);
    free(jk);
    free(deadk);
    res_deinit(&r);
    osp_buf_deinit(&rec);
    osp_buf_deinit(&got);
    osp_rq_ops_free(ops);
    envl_free(&e);
    envl_free(&e1);
    envl_free(&e2);
}

/* ---- Tests: the reaper ---- */

/* A worker whose last heartbeat is 60 s old, holding envelopes; each has a running job hash
 * and an in-flight entry, as a killed worker leaves them. */
static void fake_dead_worker(struct fx *f, const char *w, struct envl *e, size_t n)
{
    char old[24];
    snprintf(old, sizeof(old), "%lld", (long long)(osp_now_ms() - 60000));
    char *wk = key(f, "workers");
    char *wh = key(f, "worker:%s", w);
    char *proc = key(f, "processing:%s", w);
    json_decref(cmd(f, "ZADD", wk, old, w, NULL));
    json_decref(cmd(f, "HSET", wh, "host", "gone", NULL));
    for (size_t i = 0; i < n; i++) {
        const char *argv[] = {"LPUSH", proc, (const char *)e[i].b.data};
        size_t lens[] = {5, strlen(proc), e[i].b.len};
        struct osp_err err = {0};
        json_t *r = osp_rqs_command(f->s, 3, argv, lens, &err);
        assert_non_null(r);
        json_decref(r);
        if (e[i].id[0] != '\0') {
            char *jk = key(f, "job:%s", e[i].id);
            char *ik = key(f, "inflight:%s", e[i].kind);
            json_decref(cmd(f, "HSET", jk, "state", "running", "worker", w, NULL));
            json_decref(cmd(f, "ZADD", ik, old, e[i].id, NULL));
            free(jk);
            free(ik);
        }
    }
    free(wk);
    free(wh);
    free(proc);
}

static void test_reap_hands_back(void **state)
{
    struct fx *f = *state;
    struct envl e[3];
    envl_make(&e[0], "ra", 1);
    envl_make(&e[1], "rb", 1);
    envl_make(&e[2], "ra", 1);
    fake_dead_worker(f, "dead-1", e, 3);
    /* A live worker is left alone. */
    struct res h = {0};
    assert_int_equal(osp_rq_heartbeat(f->rq, NULL, on_count, &h), 0);
    assert_true(run_until(f, &h.done, 5.0));

    struct res r = {0};
    nreaped = 0;
    assert_int_equal(osp_rq_reap(f->rq, 10000, 3, on_reap, &r), 0);
    assert_false(r.done);
    assert_true(run_until(f, &r.done, 5.0));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.count, 3);
    /* Each one reported for the ledger: job, kind, the lost worker, the count after it. */
    assert_int_equal(nreaped, 3);
    for (size_t i = 0; i < 3; i++) {
        bool found = false;
        for (int k = 0; k < 3; k++) {
            found = found || strcmp(reaped[i].id, e[k].id) == 0;
        }
        assert_true(found);
        assert_string_equal(reaped[i].worker, "dead-1");
        assert_int_equal(reaped[i].recoveries, 1);
        assert_false(reaped[i].dead);
        assert_non_null(strstr(reaped[i].reason, "worker lost: dead-1"));
    }

    char *qa = key(f, "queue:ra");
    char *qb = key(f, "queue:rb");
    assert_int_equal(cmd_int(f, "LLEN", qa, NULL), 2);
    assert_int_equal(cmd_int(f, "LLEN", qb, NULL), 1);
    for (int i = 0; i < 3; i++) {
        char *jk = key(f, "job:%s", e[i].id);
        char *rec = hget(f, jk, "recoveries");
        assert_string_equal(rec, "1");
        free(rec);
        char *st = hget(f, jk, "state");
        assert_string_equal(st, "queued");
        free(st);
        assert_null(hget(f, jk, "worker"));
        free(jk);
    }
    char *wk = key(f, "workers");
    json_t *sc = cmd(f, "ZSCORE", wk, "dead-1", NULL);
    assert_true(json_is_null(sc));
    json_decref(sc);
    sc = cmd(f, "ZSCORE", wk, f->worker, NULL);
    assert_true(json_is_string(sc)); /* the live worker stays */
    json_decref(sc);
    char *wh = key(f, "worker:dead-1");
    char *proc = key(f, "processing:dead-1");
    char *ia = key(f, "inflight:ra");
    char *ib = key(f, "inflight:rb");
    assert_int_equal(cmd_int(f, "EXISTS", wh, proc, ia, ib, NULL), 0);

    /* Nothing more to do on a second pass. */
    int64_t n = -1;
    struct osp_err err = {0};
    assert_int_equal(osp_rqs_reap(f->s, 10000, 3, &n, NULL, NULL, &err), 0);
    assert_int_equal(n, 0);

    free(qa);
    free(qb);
    free(wk);
    free(wh);
    free(proc);
    free(ia);
    free(ib);
    for (int i = 0; i < 3; i++) {
        envl_free(&e[i]);
    }
}

static void test_reap_max_recoveries_and_poison(void **state)
{
    struct fx *f = *state;
    struct envl e[2];
    envl_make(&e[0], "mr", 1);
    /* An item that is not an envelope at all. */
    memset(&e[1], 0, sizeof(e[1]));
    osp_buf_append(&e[1].b, "\xc1garbage", 8);
    char *jk = key(f, "job:%s", e[0].id);
    json_decref(cmd(f, "HSET", jk, "recoveries", "3", NULL));
    fake_dead_worker(f, "dead-2", e, 2);

    int64_t n = -1;
    struct osp_err err = {0};
    struct osp_rq_recovery *recs = NULL;
    size_t nrecs = 0;
    assert_int_equal(osp_rqs_reap(f->s, 10000, 3, &n, &recs, &nrecs, &err), 0);
    assert_int_equal(n, 2);
    /* One record for the ledger: the job (the undecodable item has no job to record). */
    assert_int_equal(nrecs, 1);
    assert_string_equal(recs[0].id, e[0].id);
    assert_string_equal(recs[0].kind, "mr");
    assert_string_equal(recs[0].worker, "dead-2");
    assert_int_equal(recs[0].recoveries, 4);
    assert_true(recs[0].dead);
    assert_string_equal(recs[0].reason, "killed its worker 4 times (max_recoveries 3)");
    free(recs);

    char *qk = key(f, "queue:mr");
    assert_int_equal(cmd_int(f, "LLEN", qk, NULL), 0);
    char *dk = key(f, "dead:mr");
    struct osp_buf got = OSP_BUF_INIT;
    get_bytes(f, &got, "LINDEX", dk, "0", NULL);
    struct osp_dead d;
    assert_int_equal(osp_dead_decode(got.data, got.len, &d, &err), 0);
    assert_string_equal(d.reason, "killed its worker 4 times (max_recoveries 3)");
    assert_string_equal(d.job_id, e[0].id);
    assert_true(buf_eq(&d.env, &e[0].b));
    osp_dead_deinit(&d);
    char *st = hget(f, jk, "state");
    assert_string_equal(st, "dead");
    free(st);
    char *rec = hget(f, jk, "recoveries");
    assert_string_equal(rec, "4");
    free(rec);

    char *du = key(f, "dead:unknown");
    get_bytes(f, &got, "LINDEX", du, "0", NULL);
    assert_int_equal(osp_dead_decode(got.data, got.len, &d, &err), 0);
    assert_true(strncmp(d.reason, "undecodable envelope: ", 22) == 0);
    assert_string_equal(d.job_id, "");
    assert_true(buf_eq(&d.env, &e[1].b));
    osp_dead_deinit(&d);

    char *wh = key(f, "worker:dead-2");
    char *proc = key(f, "processing:dead-2");
    assert_int_equal(cmd_int(f, "EXISTS", wh, proc, NULL), 0);

    free(wh);
    free(proc);
    free(du);
    free(dk);
    free(qk);
    free(jk);
    osp_buf_deinit(&got);
    for (int i = 0; i < 2; i++) {
        envl_free(&e[i]);
    }
}

#define NCONC 60

static void test_reap_concurrent_never_duplicates(void **state)
{
    struct fx *f = *state;
    static struct envl e[NCONC];
    for (int i = 0; i < NCONC; i++) {
        envl_make(&e[i], "cc", 1);
    }
    fake_dead_worker(f, "dead-3", e, NCONC);

    /* Two async reapers whose commands interleave on the server... */
    struct osp_rq *r1 = new_rq(f, NULL);
    struct osp_rq *r2 = new_rq(f, NULL);
    struct res a = {0}, b = {0};
    assert_int_equal(osp_rq_reap(r1, 10000, 3, on_reap, &a), 0);
    assert_int_equal(osp_rq_reap(r2, 10000, 3, on_reap, &b), 0);
    assert_true(run_until(f, &a.done, 10.0));
    assert_true(run_until(f, &b.done, 10.0));
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    assert_int_equal(a.count + b.count, NCONC);
    osp_rq_free(r1);
    osp_rq_free(r2);

    char *qk = key(f, "queue:cc");
    assert_int_equal(cmd_int(f, "LLEN", qk, NULL), NCONC);

    /* ...and three processes reaping at once. */
    fake_dead_worker(f, "dead-4", e, NCONC);
    json_decref(cmd(f, "DEL", qk, NULL));
    int fds[3][2];
    pid_t pids[3];
    for (int p = 0; p < 3; p++) {
        assert_int_equal(pipe(fds[p]), 0);
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            struct osp_rq_opts o = {.url = f->opts.url, .prefix = f->prefix};
            struct osp_err err = {0};
            struct osp_rqs *c = osp_rqs_connect(&o, &err);
            int64_t n = -1;
            if (c != NULL && osp_rqs_reap(c, 10000, 100, &n, NULL, NULL, &err) != 0) {
                n = -1;
            }
            osp_rqs_free(c);
            ssize_t wr = write(fds[p][1], &n, sizeof(n));
            _exit(wr == (ssize_t)sizeof(n) ? 0 : 1);
        }
        close(fds[p][1]);
    }
    int64_t total = 0;
    for (int p = 0; p < 3; p++) {
        int64_t n = -1;
        assert_int_equal(read(fds[p][0], &n, sizeof(n)), (ssize_t)sizeof(n));
        close(fds[p][0]);
        int st = 0;
        waitpid(pids[p], &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        assert_true(n >= 0);
        total += n;
    }
    assert_int_equal(total, NCONC);
    json_t *items = cmd(f, "LRANGE", qk, "0", "-1", NULL);
    assert_int_equal(json_array_size(items), NCONC);
    /* Each envelope exactly once. */
    for (int i = 0; i < NCONC; i++) {
        int seen = 0;
        size_t j;
        json_t *it;
        json_array_foreach(items, j, it) {
            seen += json_string_length(it) == e[i].b.len &&
                    memcmp(json_string_value(it), e[i].b.data, e[i].b.len) == 0;
        }
        assert_int_equal(seen, 1);
        char *jk = key(f, "job:%s", e[i].id);
        char *rec = hget(f, jk, "recoveries");
        assert_string_equal(rec, "2");
        free(rec);
        free(jk);
    }
    json_decref(items);
    free(qk);
    for (int i = 0; i < NCONC; i++) {
        envl_free(&e[i]);
    }
}

static void test_ack_after_reap_returns_zero(void **state)
{
    struct fx *f = *state;
    struct envl e;
    envl_make(&e, "ar", 1);
    take(f, &e);
    /* This worker looks dead to the reaper (e.g. a long GC-like stall). */
    char *wk = key(f, "workers");
    char old[24];
    snprintf(old, sizeof(old), "%lld", (long long)(osp_now_ms() - 60000));
    json_decref(cmd(f, "ZADD", wk, old, f->worker, NULL));
    int64_t n = -1;
    struct osp_err err = {0};
    assert_int_equal(osp_rqs_reap(f->s, 10000, 3, &n, NULL, NULL, &err), 0);
    assert_int_equal(n, 1);

    struct osp_rq_ops *ops = osp_rq_ops_new();
    osp_rq_op_ack(ops, "ar", e.id, e.b.data, e.b.len, "succeeded", 60);
    struct res a;
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 0);
    /* The job belongs to the queue again, untouched by the late ack. */
    char *jk = key(f, "job:%s", e.id);
    char *st = hget(f, jk, "state");
    assert_string_equal(st, "queued");
    free(st);
    char *qk = key(f, "queue:ar");
    assert_int_equal(cmd_int(f, "LLEN", qk, NULL), 1);
    /* start of a reaped envelope reports 0 too. */
    osp_rq_op_start(ops, "ar", e.id, 1, e.b.data, e.b.len, osp_now_ms() + 1000);
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 0);

    free(qk);
    free(jk);
    free(wk);
    osp_rq_ops_free(ops);
    envl_free(&e);
}

static void test_reap_sweeps_orphan_inflight(void **state)
{
    struct fx *f = *state;
    char *ik = key(f, "inflight:sw");
    char *jk = key(f, "job:%s", "00000000-0000-7000-8000-00000000aaaa");
    char *jk2 = key(f, "job:%s", "00000000-0000-7000-8000-00000000bbbb");
    char old[24];
    snprintf(old, sizeof(old), "%lld", (long long)(osp_now_ms() - 60000));
    /* An expired lease whose worker is gone, and one whose worker is alive. */
    json_decref(cmd(f, "ZADD", ik, old, "00000000-0000-7000-8000-00000000aaaa", NULL));
    json_decref(cmd(f, "HSET", jk, "worker", "vanished", NULL));
    json_decref(cmd(f, "ZADD", ik, old, "00000000-0000-7000-8000-00000000bbbb", NULL));
    json_decref(cmd(f, "HSET", jk2, "worker", f->worker, NULL));
    struct res h = {0};
    assert_int_equal(osp_rq_heartbeat(f->rq, NULL, on_count, &h), 0);
    assert_true(run_until(f, &h.done, 5.0));

    struct res r = {0};
    assert_int_equal(osp_rq_reap(f->rq, 10000, 3, on_reap, &r), 0);
    assert_true(run_until(f, &r.done, 5.0));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.count, 0);
    json_t *left = cmd(f, "ZRANGE", ik, "0", "-1", NULL);
    assert_int_equal(json_array_size(left), 1);
    assert_string_equal(json_string_value(json_array_get(left, 0)),
                        "00000000-0000-7000-8000-00000000bbbb");
    json_decref(left);
    free(ik);
    free(jk);
    free(jk2);
}

/* ---- Tests: worker registration, stats, raw commands ---- */

static void test_heartbeat_unregister(void **state)
{
    struct fx *f = *state;
    struct res h = {0};
    const char *fields[] = {"host", "box", "slots", "4", "lease_ms", "2000", NULL};
    assert_int_equal(osp_rq_heartbeat(f->rq, fields, on_count, &h), 0);
    assert_true(run_until(f, &h.done, 5.0));
    assert_int_equal(h.status, 0);
    char *wk = key(f, "workers");
    char *wh = key(f, "worker:%s", f->worker);
    json_t *sc = cmd(f, "ZSCORE", wk, f->worker, NULL);
    assert_true(json_is_string(sc));
    long long score = atoll(json_string_value(sc));
    json_decref(sc);
    assert_true(llabs(score - osp_now_ms()) < 5000);
    char *host = hget(f, wh, "host");
    assert_string_equal(host, "box");
    free(host);
    long long ttl = cmd_int(f, "TTL", wh, NULL);
    assert_true(ttl > 0 && ttl <= 20); /* 10 leases of 2 s */
    const char *bad[] = {"only-a-name", NULL};
    assert_int_equal(osp_rq_heartbeat(f->rq, bad, on_count, &h), OSP_EINVAL);

    /* Unregister refuses while envelopes are held... */
    struct envl e;
    envl_make(&e, "hb", 1);
    take(f, &e);
    struct res u = {0};
    assert_int_equal(osp_rq_unregister(f->rq, on_count, &u), 0);
    assert_true(run_until(f, &u.done, 5.0));
    assert_int_equal(u.status, 0);
    assert_int_equal(u.count, 0);
    assert_int_equal(cmd_int(f, "EXISTS", wh, NULL), 1);
    /* ...and removes the registration once they are settled. */
    struct osp_rq_ops *ops = osp_rq_ops_new();
    osp_rq_op_ack(ops, "hb", e.id, e.b.data, e.b.len, "succeeded", 60);
    struct res a;
    aapply(f, f->rq, ops, &a);
    memset(&u, 0, sizeof(u));
    assert_int_equal(osp_rq_unregister(f->rq, on_count, &u), 0);
    assert_true(run_until(f, &u.done, 5.0));
    assert_int_equal(u.count, 1);
    assert_int_equal(cmd_int(f, "EXISTS", wh, NULL), 0);
    sc = cmd(f, "ZSCORE", wk, f->worker, NULL);
    assert_true(json_is_null(sc));
    json_decref(sc);

    /* A client without a worker id cannot do worker things. */
    struct osp_rq *nw = new_rq(f, NULL);
    const char *kinds[] = {"hb"};
    struct res r = {0};
    assert_int_equal(osp_rq_fetch(nw, kinds, 1, 1, on_items, &r), OSP_EINVAL);
    assert_int_equal(osp_rq_fetch_wait(nw, "hb", 10, on_items, &r), OSP_EINVAL);
    assert_int_equal(osp_rq_heartbeat(nw, NULL, on_count, &r), OSP_EINVAL);
    osp_rq_free(nw);

    osp_rq_ops_free(ops);
    envl_free(&e);
    free(wk);
    free(wh);
}

static void test_stats_and_command(void **state)
{
    struct fx *f = *state;
    struct envl e[3];
    for (int i = 0; i < 3; i++) {
        envl_make(&e[i], "st", 1);
    }
    take(f, &e[0]);
    enqueue(f, &e[1]);
    enqueue(f, &e[2]);
    struct osp_rq_stats st;
    struct osp_err err = {0};
    assert_int_equal(osp_rqs_stats(f->s, "st", &st, &err), 0);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.pending, 2);
    assert_int_equal(st.delayed, 0);
    assert_int_equal(st.dead, 0);
    assert_false(st.paused);
    assert_int_equal(st.oldest_pending_ms, e[1].enqueued_at); /* the RIGHT-most */

    /* Empty queue: 0; delayed entries of this kind only are counted. */
    assert_int_equal(osp_rqs_stats(f->s, "empty", &st, &err), 0);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.oldest_pending_ms, 0);
    char *dk = key(f, "delayed");
    json_decref(cmd(f, "ZADD", dk, "99", "empty|x", "100", "emptyish|y", NULL));
    char *pk = key(f, "paused");
    json_decref(cmd(f, "SADD", pk, "empty", NULL));
    assert_int_equal(osp_rqs_stats(f->s, "empty", &st, &err), 0);
    assert_int_equal(st.delayed, 1);
    assert_true(st.paused);
    assert_int_equal(osp_rqs_stats(f->s, "No!", &st, &err), OSP_EINVAL);

    /* Raw commands render replies as JSON, binary-safe. */
    const char *argv[] = {"SET", "x", "a\0b"};
    char *kx = key(f, "raw");
    argv[1] = kx;
    size_t lens[] = {3, strlen(kx), 3};
    json_t *r = osp_rqs_command(f->s, 3, argv, lens, &err);
    assert_string_equal(json_string_value(r), "OK");
    json_decref(r);
    r = cmd(f, "GET", kx, NULL);
    assert_int_equal(json_string_length(r), 3);
    assert_memory_equal(json_string_value(r), "a\0b", 3);
    json_decref(r);
    r = cmd(f, "GET", "no-such-key-anywhere", NULL);
    assert_true(json_is_null(r));
    json_decref(r);
    const char *bad[] = {"NOSUCHCOMMAND"};
    assert_null(osp_rqs_command(f->s, 1, bad, NULL, &err));
    assert_int_equal(err.code, OSP_EREDIS);
    assert_string_equal(osp_rqs_prefix(f->s), f->prefix);

    free(kx);
    free(pk);
    free(dk);
    for (int i = 0; i < 3; i++) {
        envl_free(&e[i]);
    }
}

/* ---- Tests: failures ---- */

static void test_noscript_recovery(void **state)
{
    struct fx *f = *state;
    struct envl e;
    envl_make(&e, "ns", 1);
    json_decref(cmd(f, "SCRIPT", "FLUSH", NULL));
    /* Async: EVALSHA → NOSCRIPT → SCRIPT LOAD → retry, invisible to the caller. */
    struct osp_rq_ops *ops = osp_rq_ops_new();
    osp_rq_op_enqueue(ops, "ns", e.id, e.b.data, e.b.len, 0);
    struct res a;
    aapply(f, f->rq, ops, &a);
    assert_int_equal(a.results[0], 1);
    json_decref(cmd(f, "SCRIPT", "FLUSH", NULL));
    const char *kinds[] = {"ns"};
    struct res r = {0};
    afetch(f, kinds, 1, 1, &r);
    assert_int_equal(r.n, 1);
    /* Sync client too. */
    json_decref(cmd(f, "SCRIPT", "FLUSH", NULL));
    osp_rq_op_requeue(ops, "ns", e.id, e.b.data, e.b.len);
    aapply(f, f->rq, ops, &a);
    json_decref(cmd(f, "SCRIPT", "FLUSH", NULL));
    int64_t moved = -1;
    struct osp_err err = {0};
    assert_int_equal(osp_rqs_promote(f->s, osp_now_ms(), 10, &moved, &err), 0);
    assert_int_equal(moved, 0);
    struct osp_rq_stats st;
    json_decref(cmd(f, "SCRIPT", "FLUSH", NULL));
    assert_int_equal(osp_rqs_stats(f->s, "ns", &st, &err), 0);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.oldest_pending_ms, e.enqueued_at);
    res_deinit(&r);
    osp_rq_ops_free(ops);
    envl_free(&e);
}

static void test_reconnect_after_kill(void **state)
{
    struct fx *f = *state;
    f->ready_changes = 0;
    /* A request in flight when the connection dies fails with OSP_EREDIS, exactly once. */
    struct res w = {0};
    assert_int_equal(osp_rq_fetch_wait(f->rq, "rc", 5000, on_items, &w), 0);
    run_for(f, 0.05);
    assert_true(cmd_int(f, "CLIENT", "KILL", "USER", f->user, NULL) >= 2);
    double end = ev_time() + 5.0;
    while (f->ready_changes == 0 && ev_time() < end) {
        run_for(f, 0.01);
    }
    assert_true(f->ready_changes >= 1);
    assert_true(run_until(f, &w.done, 5.0));
    assert_int_equal(w.status, OSP_EREDIS);
    assert_int_equal(w.calls, 1);
    /* Not ready (the reconnect waits at least 50 ms): calls fail at once, never call back. */
    assert_false(osp_rq_is_ready(f->rq));
    assert_false(f->last_ready);
    {
        struct osp_rq_ops *ops = osp_rq_ops_new();
        osp_rq_op_renew(ops, "rc", "00000000-0000-7000-8000-000000000000", 1);
        struct res a = {0};
        assert_int_equal(osp_rq_apply(f->rq, ops, on_apply, &a), OSP_EREDIS);
        assert_int_equal(osp_rq_promote(f->rq, 1, 1, on_count, &a), OSP_EREDIS);
        assert_int_equal(osp_rq_fetch_wait(f->rq, "rc", 10, on_items, &a), OSP_EREDIS);
        assert_true(osp_rq_last_error(f->rq)[0] != '\0');
        run_for(f, 0.01);
        assert_false(a.done);
        osp_rq_ops_free(ops);
    }
    wait_ready(f, f->rq);
    assert_true(f->last_ready);
    assert_true(osp_rq_error_count(f->rq) > 0);
    /* Works again, scripts included. */
    struct envl e;
    envl_make(&e, "rc", 1);
    take(f, &e);
    envl_free(&e);
}

static void test_unreachable_and_bad_auth(void **state)
{
    struct fx *f = *state;
    struct osp_err err = {0};
    struct osp_rq_opts o = {.url = "unix:///nonexistent/redis.sock", .prefix = f->prefix,
                            .worker_id = "w"};
    struct osp_rq *rq = osp_rq_new(f->loop, &o, &err);
    assert_non_null(rq);
    run_for(f, 0.3);
    assert_false(osp_rq_is_ready(rq));
    assert_non_null(strstr(osp_rq_last_error(rq), "nonexistent"));
    assert_true(osp_rq_error_count(rq) >= 2); /* it keeps retrying */
    struct res r = {0};
    const char *kinds[] = {"x"};
    assert_int_equal(osp_rq_fetch(rq, kinds, 1, 1, on_items, &r), OSP_EREDIS);
    assert_int_equal(osp_rq_promote(rq, 1, 1, on_count, &r), OSP_EREDIS);
    assert_int_equal(osp_rq_reap(rq, 1000, 1, on_reap, &r), OSP_EREDIS);
    osp_rq_free(rq);
    assert_false(r.done);

    /* Wrong password: connected but never ready, and the reason is kept. */
    o = f->opts;
    o.password = "wrong";
    rq = osp_rq_new(f->loop, &o, &err);
    run_for(f, 0.3);
    assert_false(osp_rq_is_ready(rq));
    assert_non_null(strstr(osp_rq_last_error(rq), "AUTH"));
    osp_rq_free(rq);

    /* The sync client reports errors instead of hanging. */
    assert_null(osp_rqs_connect(&(struct osp_rq_opts){.url = "unix:///nonexistent/x.sock",
                                                      .prefix = "p"},
                                &err));
    assert_int_equal(err.code, OSP_EREDIS);
    assert_null(osp_rqs_connect(&(struct osp_rq_opts){.url = "http://x", .prefix = "p"}, &err));
    assert_int_equal(err.code, OSP_EINVAL);
    assert_null(osp_rq_new(f->loop, &(struct osp_rq_opts){.url = o.url, .prefix = ""}, &err));
    assert_int_equal(err.code, OSP_EINVAL);
}

/* A server that accepts connections (the kernel's backlog does) but never answers: the
 * handshake must time out and the client keep retrying, never hang. */
static void test_silent_server_times_out(void **state)
{
    struct fx *f = *state;
    char path[200];
    snprintf(path, sizeof(path), "%s/silent.sock", env_or("OSP_TEST_TMP", "/tmp"));
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(sa.sun_path));
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    char url[260];
    snprintf(url, sizeof(url), "unix://%s", path);
    struct osp_err err = {0};
    struct osp_rq *rq = osp_rq_new(f->loop, &(struct osp_rq_opts){.url = url, .prefix = "p"}, &err);
    assert_non_null(rq);
    run_for(f, 0.3);
    assert_false(osp_rq_is_ready(rq));
    uint64_t before = osp_rq_error_count(rq);
    run_for(f, 6.0);
    assert_false(osp_rq_is_ready(rq));
    assert_true(osp_rq_error_count(rq) > before);
    assert_non_null(strstr(osp_rq_last_error(rq), "no answer"));
    osp_rq_free(rq);
    close(fd);
    unlink(path);
}

struct cancel_ctx {
    int calls;
    int status;
};

static void on_cancel_items(struct osp_rq *rq, int status, const struct osp_rq_item *items,
                            size_t n, uint64_t paused, void *arg)
{
    OSP_UNUSED(rq);
    OSP_UNUSED(items);
    OSP_UNUSED(n);
    OSP_UNUSED(paused);
    struct cancel_ctx *c = arg;
    c->calls++;
    c->status = status;
}

static void on_cancel_count(struct osp_rq *rq, int status, int64_t n, void *arg)
{
    OSP_UNUSED(rq);
    OSP_UNUSED(n);
    struct cancel_ctx *c = arg;
    c->calls++;
    c->status = status;
}

static void test_free_cancels_pending(void **state)
{
    struct fx *f = *state;
    struct cancel_ctx w = {0}, p = {0};
    assert_int_equal(osp_rq_fetch_wait(f->rq, "cx", 10000, on_cancel_items, &w), 0);
    assert_int_equal(osp_rq_promote(f->rq, 1, 10, on_cancel_count, &p), 0);
    osp_rq_free(f->rq);
    f->rq = NULL;
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.status, OSP_ECANCELED);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.status, OSP_ECANCELED);
    run_for(f, 0.05);
    assert_int_equal(w.calls, 1);
    assert_int_equal(p.calls, 1);
}

/* Freeing the client from inside one of its callbacks is allowed. */
static void on_free_inside(struct osp_rq *rq, int status, int64_t n, void *arg)
{
    OSP_UNUSED(n);
    struct cancel_ctx *c = arg;
    c->calls++;
    c->status = status;
    osp_rq_free(rq);
}

static void test_free_inside_callback(void **state)
{
    struct fx *f = *state;
    struct cancel_ctx c = {0}, other = {0};
    struct osp_rq *rq = new_rq(f, "w-inside");
    assert_int_equal(osp_rq_promote(rq, 1, 10, on_free_inside, &c), 0);
    assert_int_equal(osp_rq_fetch_wait(rq, "cx", 10000, on_cancel_items, &other), 0);
    double end = ev_time() + 5.0;
    while (c.calls == 0 && ev_time() < end) {
        run_for(f, 0.01);
    }
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, 0);
    assert_int_equal(other.calls, 1);
    assert_int_equal(other.status, OSP_ECANCELED);
    run_for(f, 0.05);
}

static void test_url_parsing(void **state)
{
    OSP_UNUSED(state);
    struct osp_redis_url u;
    struct osp_err err = {0};
    assert_int_equal(osp_redis_url_parse("redis://h:7000/3", &u, &err), 0);
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 3);
    assert_null(u.password);
    osp_redis_url_deinit(&u);
    assert_int_equal(osp_redis_url_parse("redis://al%40ice:p%3Ass@w@[::1]", &u, &err), 0);
    assert_string_equal(u.username, "al@ice");
    assert_string_equal(u.password, "p:ss@w");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6379);
    osp_redis_url_deinit(&u);
    assert_int_equal(osp_redis_url_parse("redis://:secret@host", &u, &err), 0);
    assert_null(u.username);
    assert_string_equal(u.password, "secret");
    osp_redis_url_set_auth(&u, "bob", "");
    assert_string_equal(u.username, "bob");
    assert_string_equal(u.password, "secret");
    osp_redis_url_deinit(&u);
    assert_int_equal(osp_redis_url_parse("unix:///tmp/r.sock?db=2", &u, &err), 0);
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_int_equal(u.db, 2);
    assert_null(u.host);
    osp_redis_url_deinit(&u);
    const char *bad[] = {"", "redis://", "redis://h:0", "redis://h:70000", "redis://h/x",
                         "unix://rel", "unix:///p?x=1", "rediss://h", "http://h",
                         "redis://u:%zz@h", "redis://[::1"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(bad); i++) {
        assert_int_equal(osp_redis_url_parse(bad[i], &u, &err), OSP_EINVAL);
        assert_null(u.host);
        assert_null(strstr(err.msg, "zz"));
    }
}

static void test_sentinel_list_parsing(void **state)
{
    OSP_UNUSED(state);
    struct osp_redis_url u;
    struct osp_err err = {0};
    assert_int_equal(osp_redis_url_parse("redis://:pw@ignored:1/2", &u, &err), 0);
    assert_int_equal(osp_redis_url_set_sentinels(&u, "", "m", NULL, NULL, &err), 0);
    assert_int_equal(u.n_sentinels, 0); /* empty list: plain mode */
    assert_int_equal(osp_redis_url_set_sentinels(&u, " s1:26380 , s2,[::1]:5000,[fe80::1]", "opspool",
                                                 "", "sp", &err),
                     0);
    assert_int_equal(u.n_sentinels, 4);
    assert_string_equal(u.sentinels[0].host, "s1");
    assert_int_equal(u.sentinels[0].port, 26380);
    assert_string_equal(u.sentinels[1].host, "s2");
    assert_int_equal(u.sentinels[1].port, 26379);
    assert_string_equal(u.sentinels[2].host, "::1");
    assert_int_equal(u.sentinels[2].port, 5000);
    assert_string_equal(u.sentinels[3].host, "fe80::1");
    assert_int_equal(u.sentinels[3].port, 26379);
    assert_string_equal(u.master_name, "opspool");
    assert_null(u.sentinel_username);
    assert_string_equal(u.sentinel_password, "sp");
    assert_string_equal(u.password, "pw"); /* the master's credentials and db stay */
    assert_int_equal(u.db, 2);
    struct osp_redis_url c;
    osp_redis_url_copy(&c, &u);
    assert_int_equal(c.n_sentinels, 4);
    assert_string_equal(c.sentinels[3].host, "fe80::1");
    assert_string_equal(c.sentinel_password, "sp");
    osp_redis_url_deinit(&c);
    /* Bad lists: a clear error, and u keeps what it had. */
    const char *bad[] = {",",       "s1,",        "s1:0",        "s1:65536", "s1:x",
                         "[::1",    "[]:1",       "[::1]x",      "a b:1",    "u@s1:1",
                         "s1:1:2",  ":26379",     "s/1",
                         "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(bad); i++) {
        assert_int_equal(osp_redis_url_set_sentinels(&u, bad[i], "m", NULL, NULL, &err),
                         OSP_EINVAL);
        assert_non_null(strstr(err.msg, "redis sentinels"));
        assert_int_equal(u.n_sentinels, 4);
    }
    assert_int_equal(osp_redis_url_set_sentinels(&u, "s1", "", NULL, NULL, &err), OSP_EINVAL);
    assert_non_null(strstr(err.msg, "master name"));
    osp_redis_url_deinit(&u);
    /* A unix socket names its server itself: it cannot be combined with sentinels. */
    assert_int_equal(osp_redis_url_parse("unix:///tmp/r.sock", &u, &err), 0);
    assert_int_equal(osp_redis_url_set_sentinels(&u, "s1", "m", NULL, NULL, &err), OSP_EINVAL);
    assert_non_null(strstr(err.msg, "unix://"));
    osp_redis_url_deinit(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle_leaves_only_job_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_paused_and_round_robin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_and_promote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_and_requeue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_hands_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_max_recoveries_and_poison, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_concurrent_never_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_after_reap_returns_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_sweeps_orphan_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_unregister, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_and_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noscript_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_after_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_and_bad_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_server_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_cancels_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_inside_callback, setup, teardown),
        cmocka_unit_test(test_url_parsing),
        cmocka_unit_test(test_sentinel_list_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
