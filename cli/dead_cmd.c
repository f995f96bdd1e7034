/* SPDX-License-Identifier: MIT */
/* dead_cmd.c — dead letters: list, retry (one, or --all), purge; and the re-queue path that
 * `retry ID` shares.
 *
 * Re-queueing a dead job, in this order so that a failure midway never loses a record:
 *  1. read the ledger row (state, attempts, the budget of an earlier retry);
 *  2. build the envelope: the dead record's original one when it verifies, else from the
 *     ledger; attempt numbers continue after the last one (job_attempts is keyed by
 *     (job_id, attempt), so a reused number would make the new outcome a "repeated" one),
 *     max_attempts gives the same budget again;
 *  3. ledger: state queued + event, in one statement;
 *  4. Redis, one script: LREM the dead record, LPUSH the envelope, reset P:job:<id> (state
 *     queued, no cancel flag). The envelope is pushed even when the record is gone meanwhile
 *     (a purge, or another operator's retry: then the job may run twice, which at-least-once
 *     delivery allows and the ledger absorbs, both deliveries having the same attempt number).
 * A failure between 3 and 4 leaves the ledger row queued and Redis as it was (the record still
 * on the dead list, or the job hash still dead/cancelled, which keeps the reconciler away):
 * running the same command again finishes the job (a queued row is accepted when Redis still
 * calls the job dead or cancelled). */
#include "cli/ctl.h"
#include "common/alloc.h"
#include "common/cron.h"

#include <stdlib.h>
#include <string.h>

#define DEAD_CHUNK 500

/* KEYS: dead list, queue, job hash. ARGV: has-record flag, record, envelope, kind, now.
 * Returns 1 when the dead record was removed (or there was none), 0 when it was already gone;
 * the envelope is pushed either way, so a ledger row made queued is never left without one. */
static const char requeue_lua[] =
    "local r = 1\n"
    "if ARGV[1] == '1' then r = redis.call('LREM', KEYS[1], 1, ARGV[2]) end\n"
    "redis.call('LPUSH', KEYS[2], ARGV[3])\n"
    "redis.call('HSET', KEYS[3], 'state', 'queued', 'kind', ARGV[4], 'updated_at', ARGV[5])\n"
    "redis.call('HDEL', KEYS[3], 'worker', 'cancel')\n"
    "redis.call('PERSIST', KEYS[3])\n"
    "return r\n";

/* LRANGE key start stop: an array of (binary) strings, owned; NULL with err on failure. */
static json_t *lrange(struct ctl *c, const char *key, long start, long stop, struct osp_err *err)
{
    char a[24], b[24];
    snprintf(a, sizeof(a), "%ld", start);
    snprintf(b, sizeof(b), "%ld", stop);
    const char *argv[] = {"LRANGE", key, a, b};
    return ctl_redisv(c, 4, argv, NULL, err);
}

static int64_t llen(struct ctl *c, const char *key)
{
    json_t *r = ctl_redis(c, "LLEN", key, (const char *)NULL);
    int64_t n = (int64_t)json_integer_value(r);
    json_decref(r);
    return n;
}

/* Decode the envelope inside a dead record without verifying it (for display only). */
static void peek_env(const struct osp_dead *d, struct osp_job *j)
{
    struct osp_env_keys none = {.nkeys = 0, .allow_unsigned = true};
    memset(j, 0, sizeof(*j)); /* owns nothing: osp_job_deinit-safe */
    if (d->env.len > 0 &&
        osp_env_decode(d->env.data, d->env.len, &none, d->env.len, j, NULL) != 0) {
        osp_job_deinit(j);
        j->attempt = j->max_attempts = 0; /* unknown */
    }
}

/* Look for the dead record of job id on P:dead:<kind>. 1 found (rec filled, owned), 0 not. */
static int find_record(struct ctl *c, const char *dkey, const char *id, struct osp_buf *rec)
{
    for (long start = 0;; start += DEAD_CHUNK) {
        struct osp_err err = {0};
        json_t *items = lrange(c, dkey, start, start + DEAD_CHUNK - 1, &err);
        if (items == NULL) {
            ctl_die(CTL_UNAVAILABLE, "%s", err.msg);
        }
        size_t n = json_array_size(items);
        for (size_t i = 0; i < n; i++) {
            const json_t *it = json_array_get(items, i);
            struct osp_dead d;
            memset(&d, 0, sizeof(d));
            if (osp_dead_decode(json_string_value(it), json_string_length(it), &d, NULL) == 0 &&
                strcmp(d.job_id, id) == 0) {
                osp_buf_append(rec, json_string_value(it), json_string_length(it));
                osp_dead_deinit(&d);
                json_decref(items);
                return 1;
            }
            osp_dead_deinit(&d);
        }
        json_decref(items);
        if (n < DEAD_CHUNK) {
            return 0;
        }
    }
}

/* Fill j from the ledger row (the trusted copy of what was submitted). */
static int job_from_row(const json_t *row, const char *id, struct osp_job *j, char *reason,
                        size_t rlen)
{
    json_error_t je;
    osp_job_init(j);
    snprintf(j->id, sizeof(j->id), "%s", id);
    snprintf(j->kind, sizeof(j->kind), "%s", ctl_str(row, "kind"));
    json_t *p =
        json_loads(ctl_str(row, "payload") ? ctl_str(row, "payload") : "{}", JSON_DECODE_ANY, &je);
    if (p == NULL) {
        snprintf(reason, rlen, "ledger payload unreadable: %s", je.text);
        return -1;
    }
    json_decref(j->payload);
    j->payload = p;
    j->timeout_s = (uint32_t)ctl_int(row, "timeout_s", 0);
    j->enqueued_at = ctl_int(row, "created_ms", osp_now_ms());
    const char *s[] = {"idempotency_key", "submitted_by", "schedule", "trace_id"};
    char **dst[] = {&j->idempotency_key, &j->submitted_by, &j->schedule, &j->trace_id};
    for (size_t i = 0; i < 4; i++) {
        if (ctl_str(row, s[i]) != NULL) {
            free(*dst[i]);
            *dst[i] = osp_xstrdup(ctl_str(row, s[i]));
        }
    }
    return 0;
}

/* Steps 1-4 of the file comment for one job. rec: its dead record (NULL when none); resume:
 * also accept a ledger row already queued (an earlier retry stopped between 3 and 4). */
static int requeue(struct ctl *c, const char *kind, const char *id, const struct osp_buf *rec,
                   bool resume, char *reason, size_t rlen)
{
    const char *params[1] = {id};
    json_t *rows = ctl_query(
        c,
        "SELECT j.state, j.kind, j.attempt, j.max_attempts, j.timeout_s, j.payload::text AS "
        "payload, "
        "j.idempotency_key, j.submitted_by, j.schedule, j.trace_id, "
        "(extract(epoch FROM j.created_at) * 1000)::bigint AS created_ms, "
        "coalesce((SELECT max(a.attempt) FROM opspool.job_attempts a WHERE a.job_id = j.id), 0) "
        "AS last_attempt, (SELECT (e.data->>'budget')::int FROM opspool.job_events e "
        "WHERE e.job_id = j.id AND e.type IN ('retried', 'retried_from_dead') "
        "ORDER BY e.id DESC LIMIT 1) AS budget FROM opspool.jobs j WHERE j.id = $1::uuid",
        1, params);
    const json_t *row = json_array_get(rows, 0);
    struct osp_job job;
    struct osp_buf env = OSP_BUF_INIT;
    struct osp_dead d;
    struct osp_err err = {0};
    int rc = CTL_CONFLICT;
    bool have_env = false;
    memset(&d, 0, sizeof(d));
    memset(&job, 0, sizeof(job)); /* owns nothing until filled below */
    if (row == NULL) {
        snprintf(reason, rlen, "job %s is not in the ledger", id);
        rc = CTL_NOT_FOUND;
        goto out;
    }
    const char *state = ctl_str(row, "state");
    bool ok_state = strcmp(state, "dead") == 0 || strcmp(state, "cancelled") == 0 ||
                    (resume && strcmp(state, "queued") == 0);
    if (!ok_state) {
        snprintf(reason, rlen, "the ledger says %s; only dead or cancelled jobs are retried",
                 state);
        goto out;
    }
    if (strcmp(ctl_str(row, "kind"), kind) != 0) {
        snprintf(reason, rlen, "the ledger says kind %s, not %s", ctl_str(row, "kind"), kind);
        goto out;
    }
    /* The original envelope when it verifies; the ledger's copy otherwise. */
    if (rec != NULL && osp_dead_decode(rec->data, rec->len, &d, NULL) == 0) {
        struct osp_env_keys keys;
        ctl_env_keys(c, &keys);
        have_env = osp_env_decode(d.env.data, d.env.len, &keys, (size_t)c->cfg.env_max_bytes, &job,
                                  NULL) == 0 &&
                   strcmp(job.id, id) == 0;
        if (!have_env) {
            osp_job_deinit(&job);
        }
    }
    if (!have_env && job_from_row(row, id, &job, reason, rlen) != 0) {
        goto out;
    }
    int64_t used = ctl_int(row, "attempt", 0);
    used = ctl_int(row, "last_attempt", 0) > used ? ctl_int(row, "last_attempt", 0) : used;
    used = (int64_t)job.attempt > used ? (int64_t)job.attempt : used;
    int64_t budget = ctl_int(row, "budget", ctl_int(row, "max_attempts", 1));
    budget = budget < 1 ? 1 : budget;
    job.attempt = (uint32_t)(used + 1);
    job.max_attempts = (uint32_t)(used + budget);
    job.run_at = 0;
    struct osp_env_keys keys;
    ctl_env_keys(c, &keys);
    if (osp_env_encode(&job, &keys, &env, &err) != 0) {
        snprintf(reason, rlen, "cannot encode the envelope: %s", err.msg);
        goto out;
    }

    /* Step 3: the ledger first. */
    char maxs[24], budgets[24], states[40];
    snprintf(maxs, sizeof(maxs), "%u", job.max_attempts);
    snprintf(budgets, sizeof(budgets), "%lld", (long long)budget);
    snprintf(states, sizeof(states), "{dead,cancelled%s}", resume ? ",queued" : "");
    const char *event = rec != NULL ? "retried_from_dead" : "retried";
    char *data = osp_xasprintf("{\"by\": \"opspoolctl\", \"from\": \"%s\", \"attempt\": %u, "
                               "\"max_attempts\": %u, \"budget\": %s}",
                               state, job.attempt, job.max_attempts, budgets);
    const char *up[7] = {id, maxs, states, event, data, ctl_who(),
                         rec != NULL ? "dead.retry" : "job.retry"};
    json_t *u = ctl_query(
        c,
        "WITH u AS (UPDATE opspool.jobs SET state = 'queued', max_attempts = $2::int, "
        "error = NULL, result = NULL, finished_at = NULL, run_at = NULL, updated_at = now() "
        "WHERE id = $1::uuid AND state = ANY ($3::text[]) RETURNING id), "
        "e AS (INSERT INTO opspool.job_events (job_id, attempt, type, data) "
        "SELECT id, NULL, $4, $5::jsonb FROM u RETURNING 1), "
        /* audit record, committed with the change (docs/security.md) */
        "a AS (INSERT INTO opspool.job_events (job_id, type, data) "
        "SELECT id, 'audit', jsonb_build_object('who', $6::text, 'action', $7::text, "
        "'via', 'opspoolctl') FROM u RETURNING 1) "
        "SELECT count(*) AS n FROM u",
        7, up);
    free(data);
    bool updated = ctl_int(json_array_get(u, 0), "n", 0) == 1;
    json_decref(u);
    if (!updated) {
        snprintf(reason, rlen, "the job changed state meanwhile; nothing done");
        goto out;
    }

    /* Step 4: one atomic Redis script. */
    char *dkey = ctl_key(c, "dead:", kind);
    char *qkey = ctl_key(c, "queue:", kind);
    char *jkey = ctl_key(c, "job:", id);
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)osp_now_ms());
    const char *argv[] = {"EVAL",
                          requeue_lua,
                          "3",
                          dkey,
                          qkey,
                          jkey,
                          rec != NULL ? "1" : "0",
                          rec != NULL ? (const char *)rec->data : "",
                          (const char *)env.data,
                          kind,
                          now};
    size_t lens[11];
    for (size_t i = 0; i < 11; i++) {
        lens[i] = strlen(argv[i]);
    }
    lens[7] = rec != NULL ? rec->len : 0;
    lens[8] = env.len;
    json_t *r = ctl_redisv(c, 11, argv, lens, &err);
    free(dkey);
    free(qkey);
    free(jkey);
    if (r == NULL) {
        snprintf(reason, rlen,
                 "the ledger row is queued again but Redis failed (%s): run the same command "
                 "again once Redis answers",
                 err.msg);
        rc = CTL_UNAVAILABLE;
        goto out;
    }
    bool removed = json_integer_value(r) == 1;
    json_decref(r);
    snprintf(reason, rlen, "attempt %u of %u, %s", job.attempt, job.max_attempts,
             rec == NULL ? "envelope rebuilt from the ledger"
             : removed   ? "removed from the dead list"
                         : "its dead record was already gone (purged or retried meanwhile)");
    rc = CTL_OK;
out:
    osp_buf_deinit(&env);
    osp_dead_deinit(&d);
    osp_job_deinit(&job);
    json_decref(rows);
    return rc;
}

int ctl_retry_by_id(struct ctl *c, const char *kind, const char *id, char *reason, size_t rlen)
{
    struct osp_buf rec = OSP_BUF_INIT;
    char *dkey = ctl_key(c, "dead:", kind);
    int found = find_record(c, dkey, id, &rec);
    free(dkey);
    /* A queued ledger row whose Redis hash still says dead or cancelled is an earlier retry
     * that stopped before its Redis step. */
    char *jkey = ctl_key(c, "job:", id);
    json_t *hs = ctl_redis(c, "HGET", jkey, "state", (const char *)NULL);
    free(jkey);
    const char *live = json_string_value(hs);
    bool resume =
        found || (live != NULL && (strcmp(live, "dead") == 0 || strcmp(live, "cancelled") == 0));
    json_decref(hs);
    int rc = requeue(c, kind, id, found ? &rec : NULL, resume, reason, rlen);
    osp_buf_deinit(&rec);
    return rc;
}

/* ---- dead KIND ---- */

static int dead_list(struct ctl *c, const char *kind, long limit)
{
    char *dkey = ctl_key(c, "dead:", kind);
    struct osp_err err = {0};
    int64_t total = llen(c, dkey);
    json_t *items = lrange(c, dkey, 0, limit - 1, &err);
    free(dkey);
    if (items == NULL) {
        ctl_die(CTL_UNAVAILABLE, "%s", err.msg);
    }
    json_t *recs = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        struct osp_dead d;
        struct osp_job j;
        memset(&d, 0, sizeof(d));
        json_t *o = json_object();
        if (osp_dead_decode(json_string_value(it), json_string_length(it), &d, &err) != 0) {
            json_object_set_new(o, "job_id", json_null());
            json_object_set_new(o, "reason", json_sprintf("undecodable dead record: %s", err.msg));
            json_array_append_new(recs, o);
            osp_dead_deinit(&d);
            continue;
        }
        peek_env(&d, &j);
        char ts[32];
        osp_time_format_rfc3339(d.failed_at_ms, ts);
        json_object_set_new(o, "job_id", d.job_id[0] ? json_string(d.job_id) : json_null());
        json_object_set_new(o, "reason", json_string(d.reason ? d.reason : ""));
        json_object_set_new(o, "failed_at", json_string(ts));
        json_object_set_new(o, "age_ms", json_integer(osp_now_ms() - d.failed_at_ms));
        json_object_set_new(o, "attempt", json_integer(j.attempt));
        json_object_set_new(o, "max_attempts", json_integer(j.max_attempts));
        json_array_append_new(recs, o);
        osp_job_deinit(&j);
        osp_dead_deinit(&d);
    }
    json_decref(items);
    if (c->json) {
        json_t *out =
            json_pack("{s:s, s:I, s:o}", "kind", kind, "total", (json_int_t)total, "records", recs);
        ctl_print_json(out);
        json_decref(out);
        return CTL_OK;
    }
    if (total == 0) {
        printf("no dead %s jobs\n", kind);
        json_decref(recs);
        return CTL_OK;
    }
    printf("%lld dead %s job(s)%s\n", (long long)total, kind,
           (int64_t)json_array_size(recs) < total ? ", newest first (--limit for more)"
                                                  : ", newest first");
    static const char *const heads[] = {"JOB", ">AGE", ">ATTEMPTS", "REASON", NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    json_array_foreach(recs, i, it) {
        char age[32] = "-", att[32] = "-";
        if (json_object_get(it, "age_ms") != NULL) {
            ctl_fmt_age(ctl_int(it, "age_ms", 0), age, sizeof(age));
        }
        if (ctl_int(it, "max_attempts", 0) > 0) {
            snprintf(att, sizeof(att), "%lld/%lld", (long long)ctl_int(it, "attempt", 0),
                     (long long)ctl_int(it, "max_attempts", 0));
        }
        const char *cells[] = {ctl_str(it, "job_id"), age, att, ctl_str(it, "reason")};
        size_t row = ctl_table_add(&t, cells);
        ctl_table_color(&t, row, 3, CTL_C_RED);
    }
    ctl_table_print(&t, stdout, c->color);
    ctl_table_deinit(&t);
    json_decref(recs);
    return CTL_OK;
}

/* ---- dead retry KIND (ID | --all --yes) ---- */

struct retry_report {
    json_t *retried; /* [{id, detail}] */
    json_t *skipped; /* [{id, reason}] */
    bool unavailable;
};

static void report_add(struct retry_report *rep, int rc, const char *id, const char *reason)
{
    json_t *o = json_pack("{s:s?, s:s}", "id", id, rc == CTL_OK ? "detail" : "reason", reason);
    json_array_append_new(rc == CTL_OK ? rep->retried : rep->skipped, o);
    rep->unavailable |= rc == CTL_UNAVAILABLE;
}

/* Retry every record present when the command started, oldest first. Survivors (skipped
 * records) stay at the right end, so the next chunk is read just left of them. */
static void retry_all(struct ctl *c, const char *kind, struct retry_report *rep)
{
    char *dkey = ctl_key(c, "dead:", kind);
    int64_t budget = llen(c, dkey);
    long kept = 0;
    while (budget > 0) {
        struct osp_err err = {0};
        long n = budget < DEAD_CHUNK ? (long)budget : DEAD_CHUNK;
        json_t *items = lrange(c, dkey, -(kept + n), -(kept + 1), &err);
        if (items == NULL) {
            report_add(rep, CTL_UNAVAILABLE, NULL, err.msg);
            break;
        }
        size_t got = json_array_size(items);
        for (size_t k = got; k-- > 0;) {
            const json_t *it = json_array_get(items, k);
            struct osp_buf rec = OSP_BUF_INIT;
            struct osp_dead d;
            char reason[320] = "";
            int rc;
            memset(&d, 0, sizeof(d));
            osp_buf_append(&rec, json_string_value(it), json_string_length(it));
            if (osp_dead_decode(rec.data, rec.len, &d, &err) != 0) {
                snprintf(reason, sizeof(reason), "undecodable dead record: %s", err.msg);
                rc = CTL_CONFLICT;
            } else if (d.job_id[0] == '\0') {
                snprintf(reason, sizeof(reason), "no readable job id (%s)",
                         d.reason ? d.reason : "");
                rc = CTL_CONFLICT;
            } else {
                rc = requeue(c, kind, d.job_id, &rec, true, reason, sizeof(reason));
            }
            report_add(rep, rc, d.job_id[0] ? d.job_id : NULL, reason);
            kept += rc == CTL_OK ? 0 : 1;
            osp_dead_deinit(&d);
            osp_buf_deinit(&rec);
        }
        json_decref(items);
        budget -= (int64_t)got;
        if (got == 0 || rep->unavailable) {
            break;
        }
    }
    free(dkey);
}

static int dead_retry(struct ctl *c, int argc, char **argv)
{
    const char *kind = NULL, *id = NULL;
    bool all = false, yes = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0) {
            all = true;
        } else if (strcmp(argv[i], "--yes") == 0) {
            yes = true;
        } else if (argv[i][0] == '-') {
            ctl_die(CTL_USAGE, "dead retry: unknown option %s", argv[i]);
        } else if (kind == NULL) {
            kind = argv[i];
        } else if (id == NULL) {
            id = argv[i];
        } else {
            ctl_die(CTL_USAGE, "dead retry: unexpected argument %s", argv[i]);
        }
    }
    if (kind == NULL || (id == NULL) == !all) {
        ctl_die(CTL_USAGE, "usage: opspoolctl dead retry KIND (ID | --all --yes)");
    }
    ctl_check_kind("dead retry", kind, false);
    if (id != NULL && !osp_id_is_valid(id)) {
        ctl_die(CTL_USAGE, "dead retry: \"%s\" is not a job id", id);
    }
    struct retry_report rep = {json_array(), json_array(), false};
    if (all) {
        if (!yes) {
            char *dkey = ctl_key(c, "dead:", kind);
            int64_t n = llen(c, dkey);
            free(dkey);
            ctl_die(CTL_USAGE,
                    "dead retry --all re-queues all %lld dead %s job(s); nothing changed: add "
                    "--yes to do it",
                    (long long)n, kind);
        }
        retry_all(c, kind, &rep);
    } else {
        struct osp_buf rec = OSP_BUF_INIT;
        char *dkey = ctl_key(c, "dead:", kind);
        int found = find_record(c, dkey, id, &rec);
        free(dkey);
        if (!found) {
            osp_buf_deinit(&rec);
            json_decref(rep.retried);
            json_decref(rep.skipped);
            ctl_die(CTL_NOT_FOUND, "dead retry: job %s is not on the %s dead list", id, kind);
        }
        char reason[320] = "";
        int rc = requeue(c, kind, id, &rec, true, reason, sizeof(reason));
        osp_buf_deinit(&rec);
        report_add(&rep, rc, id, reason);
    }
    size_t i;
    json_t *o;
    if (c->json) {
        json_t *out = json_pack("{s:s, s:O, s:O}", "kind", kind, "retried", rep.retried, "skipped",
                                rep.skipped);
        ctl_print_json(out);
        json_decref(out);
    } else {
        json_array_foreach(rep.retried, i, o) {
            printf("%s queued again (%s)\n", ctl_str(o, "id"), ctl_str(o, "detail"));
        }
        printf("retried %zu dead %s job(s)%s\n", json_array_size(rep.retried), kind,
               json_array_size(rep.skipped) ? "; skipped (below):" : "");
    }
    json_array_foreach(rep.skipped, i, o) {
        fprintf(stderr, "opspoolctl: skipped %s: %s\n", ctl_str(o, "id") ? ctl_str(o, "id") : "-",
                ctl_str(o, "reason"));
    }
    int rc = rep.unavailable                    ? CTL_UNAVAILABLE
             : json_array_size(rep.skipped) > 0 ? CTL_CONFLICT
                                                : CTL_OK;
    json_decref(rep.retried);
    json_decref(rep.skipped);
    return rc;
}

/* ---- dead purge KIND --yes ---- */

/* Returns the purged records, so the audit rows name exactly the jobs whose records went. */
static const char purge_lua[] = "local r = redis.call('LRANGE', KEYS[1], 0, -1)\n"
                                "redis.call('DEL', KEYS[1])\n"
                                "return r\n";

/* One 'audit' job_events row per purged record's job (who = the OS user). */
static void purge_audit(struct ctl *c, const char *kind, const json_t *recs)
{
    json_t *ids = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(recs, i, v) {
        struct osp_dead d;
        struct osp_err err = {0, ""};
        memset(&d, 0, sizeof(d));
        if (osp_dead_decode(json_string_value(v), json_string_length(v), &d, &err) == 0 &&
            osp_id_is_valid(d.job_id)) {
            json_array_append_new(ids, json_string(d.job_id));
        }
        osp_dead_deinit(&d);
    }
    if (json_array_size(ids) > 0) {
        char *text = json_dumps(ids, JSON_COMPACT);
        const char *p[3] = {text, ctl_who(), kind};
        struct osp_err err = {0, ""};
        json_t *r = osp_pgs_query(ctl_pg(c),
                                  "INSERT INTO opspool.job_events (job_id, type, data) "
                                  "SELECT x::uuid, 'audit', jsonb_build_object('who', $2::text, "
                                  "'action', 'dead.purge', 'via', 'opspoolctl', 'kind', $3::text) "
                                  "FROM json_array_elements_text($1::json) AS x",
                                  3, p, &err);
        free(text);
        if (r == NULL) {
            json_decref(ids);
            ctl_die(CTL_UNAVAILABLE,
                    "dead purge: purged %zu record(s) but could not write their audit "
                    "records: %s",
                    json_array_size(recs), err.msg);
        }
        json_decref(r);
    }
    json_decref(ids);
}

static int dead_purge(struct ctl *c, int argc, char **argv)
{
    const char *kind = NULL;
    bool yes = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--yes") == 0) {
            yes = true;
        } else if (argv[i][0] == '-' || kind != NULL) {
            ctl_die(CTL_USAGE, "dead purge: unexpected argument %s", argv[i]);
        } else {
            kind = argv[i];
        }
    }
    if (kind == NULL) {
        ctl_die(CTL_USAGE, "usage: opspoolctl dead purge KIND --yes");
    }
    ctl_check_kind("dead purge", kind, false);
    char *dkey = ctl_key(c, "dead:", kind);
    if (!yes) {
        int64_t n = llen(c, dkey);
        free(dkey);
        ctl_die(CTL_USAGE,
                "dead purge deletes all %lld dead %s record(s) for good; nothing changed: add "
                "--yes to do it (the ledger keeps the jobs as dead)",
                (long long)n, kind);
    }
    json_t *r = ctl_redis(c, "EVAL", purge_lua, "1", dkey, (const char *)NULL);
    free(dkey);
    json_int_t n = (json_int_t)json_array_size(r);
    purge_audit(c, kind, r);
    json_decref(r);
    if (c->json) {
        json_t *o = json_pack("{s:s, s:I}", "kind", kind, "purged", n);
        ctl_print_json(o);
        json_decref(o);
    } else {
        printf("purged %lld dead %s record(s); the ledger keeps the jobs (state dead)\n",
               (long long)n, kind);
    }
    return CTL_OK;
}

int ctl_cmd_dead(struct ctl *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "retry") == 0) {
        return dead_retry(c, argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "purge") == 0) {
        return dead_purge(c, argc, argv);
    }
    const char *kind = NULL;
    long limit = 50;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            limit = ctl_parse_long("--limit", argv[++i], 1, 100000);
        } else if (argv[i][0] == '-' || kind != NULL) {
            ctl_die(CTL_USAGE, "dead: unexpected argument %s", argv[i]);
        } else {
            kind = argv[i];
        }
    }
    if (kind == NULL) {
        ctl_die(CTL_USAGE, "usage: opspoolctl dead KIND [--limit N] (or dead retry|purge ...)");
    }
    ctl_check_kind("dead", kind, false);
    return dead_list(c, kind, limit);
}
