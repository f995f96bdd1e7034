/* SPDX-License-Identifier: MIT */
/* api.c — the scheduler's HTTP API (docs/api.md is the user contract; DESIGN.md §5).
 *
 * Every handler validates all input before it changes anything, so a rejected request has
 * no effect. Errors are {"error": {"code", "message"}} with stable codes:
 *   400 bad_json, invalid_request (envelope fields, query parameters), invalid_payload (the
 *       kind's validator said no), unknown_kind
 *   401 unauthorized · 403 forbidden (the token lacks the route's scope) · 404 not_found · 405
 * method_not_allowed · 409 conflict 413 too_large · 415 unsupported_media_type · 503 unavailable
 * (Redis or PostgreSQL down) Handlers use the synchronous clients
 * (docs/decisions/0002-scheduler-sync-clients.md). Submitting follows the pool's rule: ledger row
 * first, then the Redis envelope (osp_submit). */
#include "common/alloc.h"
#include "common/cron.h"
#include "common/hmac.h"
#include "common/jobstate.h"
#include "common/log.h"
#include "common/ops.h"
#include "common/submit.h"
#include "jobs/job.h"
#include "scheduler/sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define API_LIST_DEFAULT 50
#define API_LIST_MAX     500
#define API_DEAD_DEFAULT 100
#define API_DEAD_MAX     1000
#define API_BULK_DEFAULT 10000  /* bulk cancel: jobs per request (the API's loop is shared) */
#define API_BULK_MAX     100000
#define API_STR_MAX      OSP_SUBMIT_TEXT_MAX /* idempotency keys, submitted_by, trace ids */

/* ---- Tokens and scopes ---- */

static const struct {
    const char *name;
    unsigned bit;
} scope_names[] = {
    {"submit", SCHED_SCOPE_SUBMIT},
    {"read", SCHED_SCOPE_READ},
    {"operate", SCHED_SCOPE_OPERATE},
};

/* "submit,read" -> bits; 0 on an unknown or empty name. */
static unsigned parse_scopes(const char *list)
{
    unsigned bits = 0;
    const char *p = list;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        unsigned bit = 0;
        for (size_t i = 0; i < OSP_ARRAY_LEN(scope_names) && bit == 0; i++) {
            if (n == strlen(scope_names[i].name) && memcmp(p, scope_names[i].name, n) == 0) {
                bit = scope_names[i].bit;
            }
        }
        if (bit == 0) {
            return 0;
        }
        bits |= bit;
        p += n;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                return 0;
            }
        }
    }
    return bits;
}

static void scope_text(unsigned bits, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < OSP_ARRAY_LEN(scope_names) && len < cap; i++) {
        if (bits & scope_names[i].bit) {
            len +=
                (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "", scope_names[i].name);
        }
    }
}

/* The first 8 hex digits of SHA-256(token): names a token in logs and audit records. */
static void token_fingerprint(const char *tok, size_t len, char out[9])
{
    uint8_t d[32];
    osp_sha256(tok, len, d);
    snprintf(out, 9, "%02x%02x%02x%02x", d[0], d[1], d[2], d[3]);
}

int sched_tokens_load(struct sched *s, struct osp_err *err)
{
    const char *path = s->cfg->api_tokens_file;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return osp_err_set(err, OSP_EINVAL, "OSP_API_TOKENS_FILE %s: %s", path, strerror(errno));
    }
    char(*tokens)[SCHED_TOKEN_MAX + 1] = osp_xcalloc(SCHED_MAX_TOKENS, sizeof(*tokens));
    unsigned scopes[SCHED_MAX_TOKENS];
    size_t n = 0, legacy = 0;
    int rc = 0;
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        size_t len = strlen(p);
        while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r' || p[len - 1] == ' ' ||
                           p[len - 1] == '\t')) {
            p[--len] = '\0';
        }
        if (len == 0 || p[0] == '#') {
            continue;
        }
        /* TOKEN [scopes=a,b,...] */
        size_t tlen = strcspn(p, " \t");
        char *opt = p + tlen;
        while (*opt == ' ' || *opt == '\t') {
            opt++;
        }
        if (tlen > SCHED_TOKEN_MAX) {
            rc = osp_err_set(err, OSP_EINVAL,
                             "OSP_API_TOKENS_FILE line %d: a token is one word "
                             "of at most %d characters",
                             lineno, SCHED_TOKEN_MAX);
            break;
        }
        unsigned bits = SCHED_SCOPE_ALL;
        if (*opt == '\0') {
            legacy++;
        } else if (strncmp(opt, "scopes=", 7) != 0 || strpbrk(opt, " \t") != NULL ||
                   (bits = parse_scopes(opt + 7)) == 0) {
            rc = osp_err_set(err, OSP_EINVAL,
                             "OSP_API_TOKENS_FILE line %d: after the token expected "
                             "scopes=NAME[,NAME...] with names submit, read, operate",
                             lineno);
            break;
        }
        if (n == SCHED_MAX_TOKENS) {
            rc = osp_err_set(err, OSP_EINVAL, "OSP_API_TOKENS_FILE: more than %d tokens",
                             SCHED_MAX_TOKENS);
            break;
        }
        memcpy(tokens[n], p, tlen);
        tokens[n][tlen] = '\0';
        scopes[n++] = bits;
    }
    fclose(f);
    if (rc == 0 && n == 0) {
        rc = osp_err_set(err, OSP_EINVAL, "OSP_API_TOKENS_FILE %s holds no token", path);
    }
    if (rc == 0) {
        memset(s->tokens, 0, sizeof(s->tokens));
        memcpy(s->tokens, tokens, n * sizeof(*tokens));
        for (size_t i = 0; i < n; i++) {
            s->token_scopes[i] = scopes[i];
            token_fingerprint(s->tokens[i], strlen(s->tokens[i]), s->token_fp[i]);
            char sc[32];
            scope_text(scopes[i], sc, sizeof(sc));
            const char *fields[] = {"token", s->token_fp[i], "scopes", sc, NULL};
            OSP_LOG_F(OSP_LOG_DEBUG, fields, "API token loaded");
        }
        s->ntokens = n;
        if (legacy > 0) {
            osp_warn("OSP_API_TOKENS_FILE: %zu token(s) without scopes= have every scope "
                     "(deprecated: add scopes=submit,read,operate as needed)",
                     legacy);
        }
    }
    volatile unsigned char *wipe = (volatile unsigned char *)tokens;
    for (size_t i = 0; i < SCHED_MAX_TOKENS * sizeof(*tokens); i++) {
        wipe[i] = 0; /* secrets do not linger in freed memory */
    }
    free(tokens);
    return rc;
}

/* Index of the token the Authorization header carries, or -1. Every token is compared, each
 * in constant time, without stopping at a match. */
static long token_index(const struct sched *s, const char *hdr)
{
    if (hdr == NULL) {
        return -1;
    }
    while (*hdr == ' ') {
        hdr++;
    }
    if (strncasecmp(hdr, "Bearer ", 7) != 0) {
        return -1;
    }
    const char *tok = hdr + 7;
    while (*tok == ' ') {
        tok++;
    }
    size_t len = strlen(tok);
    while (len > 0 && tok[len - 1] == ' ') {
        len--;
    }
    if (len == 0) {
        return -1;
    }
    long found = -1;
    for (size_t i = 0; i < s->ntokens; i++) {
        bool eq = osp_ct_equal(tok, len, s->tokens[i], strlen(s->tokens[i]));
        found = eq ? (long)i : found;
    }
    return found;
}

static bool auth_cb(const char *hdr, void *arg)
{
    struct sched *s = arg;
    if (s->set.api_insecure && s->ntokens == 0) {
        return true;
    }
    return token_index(s, hdr) >= 0;
}

/* Path parameters are checked against their grammar after decoding, before any store is
 * asked: a name that cannot exist is a 400, never a database round trip (PostgreSQL would
 * refuse a non-UTF-8 name with an error that reads like an outage). The value is not echoed:
 * it may be bytes a JSON string cannot hold. */
static bool params_ok(const struct osp_http_req *req, struct osp_http_resp *resp)
{
    for (size_t i = 0; i < req->nparams; i++) {
        const char *n = req->param_names[i];
        const char *v = req->params[i];
        if (strcmp(n, "id") == 0 && !osp_id_is_valid(v)) {
            osp_http_reply_error(resp, 400, "invalid_request",
                                 "invalid job id: expected a UUID "
                                 "(0190f2a4-1b2c-7d3e-8f40-123456789abc)");
        } else if (strcmp(n, "name") == 0 && !osp_schedule_name_is_valid(v)) {
            osp_http_reply_error(resp, 400, "invalid_request",
                                 "invalid schedule name: expected [A-Za-z0-9_.-]{1,%d}",
                                 OSP_SCHEDULE_NAME_MAX);
        } else if (strcmp(n, "kind") == 0 && !osp_kind_name_is_valid(v)) {
            osp_http_reply_error(resp, 400, "invalid_request",
                                 "invalid kind: expected [a-z0-9_-]{1,%d}", OSP_KIND_MAX);
        } else {
            continue;
        }
        return false;
    }
    return true;
}

/* Every /v1 route runs through here: the token must carry the route's scope (else 403
 * forbidden); then path parameters and the query string are checked (400) before the
 * handler runs; s->who names the caller while it does. */
static void h_scoped(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched_route *rt = arg;
    struct sched *s = rt->s;
    unsigned have = 0;
    if (s->set.api_insecure && s->ntokens == 0) {
        have = SCHED_SCOPE_ALL;
        snprintf(s->who, sizeof(s->who), "insecure");
    } else {
        long i = token_index(s, osp_http_header(req, "Authorization"));
        if (i < 0) { /* the auth hook ran first; a SIGHUP in between is the only way here */
            osp_http_reply_error(resp, 401, "unauthorized", "missing or invalid bearer token");
            return;
        }
        have = s->token_scopes[i];
        snprintf(s->who, sizeof(s->who), "token:%s", s->token_fp[i]);
    }
    if ((have & rt->scope) == 0) {
        char need[32];
        scope_text(rt->scope, need, sizeof(need));
        const char *fields[] = {"who", s->who, "route", rt->name, "scope", need, NULL};
        osp_log_emit(OSP_LOG_WARN, fields, "API request refused: token lacks scope %s", need);
        osp_http_reply_error(resp, 403, "forbidden", "this token lacks the \"%s\" scope (%s)", need,
                             rt->name);
        s->who[0] = '\0';
        return;
    }
    if (params_ok(req, resp) && osp_http_query_check(req, rt->query, resp) == 0) {
        rt->fn(req, resp, s);
    }
    s->who[0] = '\0';
}

/* An audit line (always written, whatever OSP_LOG_LEVEL): who did what to which object.
 * Job-scoped actions also write a job_events row of type 'audit' in the same statement as
 * the change itself (see h_cancel, h_dead_retry). */
static void audit_log(struct sched *s, const char *action, const char *object, const char *job_id,
                      const char *detail)
{
    const char *fields[] = {"audit",  action, "who",    s->who[0] ? s->who : "unknown",
                            "object", object, "job_id", job_id ? job_id : "",
                            NULL};
    if (job_id == NULL) {
        fields[6] = NULL;
    }
    osp_log_emit(OSP_LOG_INFO, fields, "audit: %s %s by %s%s%s", action, object,
                 s->who[0] ? s->who : "unknown", detail ? ": " : "", detail ? detail : "");
}

/* ---- Helpers ---- */

static void reply_unavailable(struct osp_http_resp *resp, const struct osp_err *err)
{
    /* Every 503 leaves a line: an operator sees why the API said "unavailable". */
    osp_warn("API request answered 503: %s", err->msg[0] ? err->msg : "backend unavailable");
    osp_http_reply_error(resp, 503, "unavailable", "%s",
                         err->msg[0] ? err->msg : "backend unavailable");
}

/* Turn text columns into integers / booleans / JSON in place (osp_pgs_query returns text). */
static void row_ints(json_t *row, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        json_t *v = json_object_get(row, names[i]);
        if (json_is_string(v)) {
            json_object_set_new(row, names[i],
                                json_integer(strtoll(json_string_value(v), NULL, 10)));
        }
    }
}

static void row_bool(json_t *row, const char *name)
{
    json_t *v = json_object_get(row, name);
    if (json_is_string(v)) {
        json_object_set_new(row, name,
                            json_boolean(strcmp(json_string_value(v), "true") == 0 ||
                                         strcmp(json_string_value(v), "t") == 0));
    }
}

static void row_json(json_t *row, const char *name)
{
    json_t *v = json_object_get(row, name);
    if (json_is_string(v)) {
        json_t *p = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
        json_object_set_new(row, name, p ? p : json_null());
    }
}

static bool fields_ok(const json_t *o, const char *const *allowed, struct osp_http_resp *resp)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)o, k, v)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++) {
            known = strcmp(k, allowed[i]) == 0;
        }
        if (!known) {
            osp_http_reply_error(resp, 400, "invalid_request", "unknown field \"%.64s\"", k);
            return false;
        }
    }
    return true;
}

/* Optional string field: 0 (value or NULL in *out) or -1 after replying 400. */
static int opt_str(const json_t *o, const char *name, size_t maxlen, const char **out,
                   struct osp_http_resp *resp)
{
    const json_t *v = json_object_get(o, name);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > maxlen ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        osp_http_reply_error(resp, 400, "invalid_request",
                             "%s: must be a string of 1..%zu characters", name, maxlen);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int opt_int(const json_t *o, const char *name, json_int_t lo, json_int_t hi, json_int_t dflt,
                   json_int_t *out, struct osp_http_resp *resp)
{
    const json_t *v = json_object_get(o, name);
    *out = dflt;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        osp_http_reply_error(resp, 400, "invalid_request", "%s: must be an integer %lld..%lld",
                             name, (long long)lo, (long long)hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static const char *known_kinds(char *buf, size_t cap)
{
    const struct job_kind *const *all = job_kinds_all();
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; all[i] != NULL && len < cap; i++) {
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", all[i]->name);
    }
    return buf;
}

/* Kind by name or reply 400 unknown_kind / invalid_request. */
static const struct job_kind *kind_or_reply(const char *name, struct osp_http_resp *resp)
{
    char names[256];
    if (name == NULL || !osp_kind_name_is_valid(name)) {
        osp_http_reply_error(resp, 400, "invalid_request", "kind: must match [a-z0-9_-]{1,32}");
        return NULL;
    }
    const struct job_kind *k = job_kind_find(name);
    if (k == NULL) {
        osp_http_reply_error(resp, 400, "unknown_kind", "unknown kind \"%s\" (known: %s)", name,
                             known_kinds(names, sizeof(names)));
    }
    return k;
}

/* ---- POST /v1/jobs ---- */

struct osp_ops;
static bool api_ops(struct sched *s, struct osp_ops *o, struct osp_http_resp *resp);
static void reply_op_error(struct sched *s, struct osp_http_resp *resp, int rc,
                           const struct osp_err *err);

static const char *const submit_fields[] = {"kind",         "payload",   "idempotency_key",
                                            "max_attempts", "timeout_s", "run_at",
                                            "submitted_by", "trace_id",  NULL};

/* An optional integer field, type only (the operation checks the bounds): 0 or -1 after
 * replying 400. */
static int opt_integer(const json_t *o, const char *name, int64_t *out, struct osp_http_resp *resp)
{
    const json_t *v = json_object_get(o, name);
    *out = 0;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_integer(v)) {
        osp_http_reply_error(resp, 400, "invalid_request", "%s: must be an integer", name);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

/* The request's fields, by type, into req (borrowed from body); the domain checks the rest
 * (common/ops.h osp_op_submit_check). Replies and returns -1 on a type error. */
static int submit_req_from_body(const json_t *body, struct osp_submit_req *req,
                                struct osp_http_resp *resp)
{
    memset(req, 0, sizeof(*req));
    if (!fields_ok(body, submit_fields, resp)) {
        return -1;
    }
    const json_t *kv = json_object_get(body, "kind");
    if (!json_is_string(kv)) {
        osp_http_reply_error(resp, 400, "invalid_request", "kind: required, a string");
        return -1;
    }
    req->kind = json_string_value(kv);
    req->payload = json_object_get(body, "payload");
    if (req->payload != NULL && !json_is_object(req->payload)) {
        osp_http_reply_error(resp, 400, "invalid_payload", "payload: must be a JSON object");
        return -1;
    }
    if (opt_str(body, "idempotency_key", API_STR_MAX, &req->idempotency_key, resp) != 0 ||
        opt_str(body, "submitted_by", API_STR_MAX, &req->submitted_by, resp) != 0 ||
        opt_str(body, "trace_id", API_STR_MAX, &req->trace_id, resp) != 0 ||
        opt_integer(body, "max_attempts", &req->max_attempts, resp) != 0 ||
        opt_integer(body, "timeout_s", &req->timeout_s, resp) != 0) {
        return -1;
    }
    if (json_object_get(body, "max_attempts") != NULL && req->max_attempts == 0) {
        req->max_attempts = -1; /* an explicit 0 is out of range, not "the default" */
    }
    const json_t *ra = json_object_get(body, "run_at");
    int64_t run_at = 0;
    if (json_is_string(ra)) {
        if (osp_time_parse_rfc3339(json_string_value(ra), &run_at) != 0) {
            osp_http_reply_error(resp, 400, "invalid_request",
                                 "run_at: expected RFC 3339 (2026-01-02T03:04:05Z) or epoch ms");
            return -1;
        }
    } else if (json_is_integer(ra)) {
        run_at = json_integer_value(ra);
        if (run_at > 0 && run_at < 100000000000LL) {
            /* Before 1973 in ms, but a plausible date in seconds: almost surely a unit mistake. */
            osp_http_reply_error(resp, 400, "invalid_request",
                                 "run_at: epoch milliseconds expected (%lld looks like seconds)",
                                 (long long)run_at);
            return -1;
        }
    } else if (ra != NULL && !json_is_null(ra)) {
        osp_http_reply_error(resp, 400, "invalid_request",
                             "run_at: expected RFC 3339 (2026-01-02T03:04:05Z) or epoch ms");
        return -1;
    }
    req->run_at_ms = run_at;
    return 0;
}

static void h_submit(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    json_t *body = osp_http_body_object(req, resp);
    if (body == NULL) {
        return;
    }
    struct osp_job j;
    osp_job_init(&j);
    struct osp_err err = {0, ""};
    struct osp_submit_req sr;
    struct osp_ops o;
    if (submit_req_from_body(body, &sr, resp) != 0 || !api_ops(s, &o, resp)) {
        goto out;
    }
    struct osp_submit_policy pol = {s->set.default_max_attempts,
                                    s->have_targets ? &s->targets : NULL};
    const char *what = NULL;
    int rc = osp_op_submit_check(&o, &pol, &sr, &j, &what, &err);
    if (rc != 0) {
        osp_http_reply_error(resp, strcmp(what, "too_large") == 0 ? 413 : 400, what, "%s",
                             err.msg);
        goto out;
    }
    char ids[1][OSP_ID_LEN + 1];
    bool dup = false;
    rc = osp_op_submit(&o, &j, 1, ids, &dup, &err);
    if (rc == OSP_EPG) {
        sched_pg_failed(s, &err);
        reply_unavailable(resp, &err);
        goto out;
    }
    if (rc == OSP_EINVAL) {
        osp_http_reply_error(resp, 400, "invalid_payload", "%s", err.msg);
        goto out;
    }
    if (dup) {
        char kind[OSP_KIND_MAX + 1], state[16];
        if (osp_op_job_brief(&o, ids[0], kind, state, &err) != 0) {
            reply_unavailable(resp, &err);
        } else if (strcmp(kind, j.kind) != 0) {
            osp_http_reply_error(resp, 409, "conflict",
                                 "idempotency_key already used by job %s of kind %s", ids[0], kind);
        } else {
            osp_http_reply_json(resp, 200,
                                json_pack("{s:s,s:s,s:s,s:b}", "id", ids[0], "kind", kind, "state",
                                          state, "duplicate", 1));
        }
        goto out;
    }
    const char *kv[] = {j.kind};
    osp_metric_add(s->m_submitted, kv, 1);
    json_t *out = json_pack("{s:s,s:s,s:s}", "id", ids[0], "kind", j.kind, "state",
                            j.run_at > 0 ? "delayed" : "queued");
    if (rc == OSP_EREDIS) {
        /* The ledger holds the job; the reconciler enqueues it once Redis is back. */
        sched_redis_failed(s, &err);
        OSP_LOG_JOB(OSP_LOG_WARN, ids[0], j.kind, "accepted, not yet enqueued: %s", err.msg);
        json_object_set_new(out, "warning",
                            json_string("stored in the ledger; Redis is unavailable, the "
                                        "reconciler will enqueue it"));
    }
    osp_http_reply_json(resp, 202, out);
out:
    osp_job_deinit(&j);
    json_decref(body);
}

/* ---- GET /v1/jobs/{id} ---- */

/* The live Redis hash of a job as an object, or NULL. */
static json_t *live_state(struct sched *s, const char *id)
{
    struct osp_err err = {0, ""};
    return osp_rqs_job_hash(s->rqs, id, &err);
}

static void h_get_job(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const char *id = req->params[0]; /* a valid id: h_scoped checked it */
    struct osp_pgs *pg = sched_pg(s);
    struct osp_err err = {0, ""};
    if (pg == NULL) {
        osp_http_reply_error(resp, 503, "unavailable", "postgresql unavailable");
        return;
    }
    json_t *job = osp_ledger_get_job(pg, id, &err);
    if (job == NULL) {
        if (err.code == OSP_ENOTFOUND) {
            osp_http_reply_error(resp, 404, "not_found", "no job %s", id);
        } else {
            sched_pg_failed(s, &err);
            reply_unavailable(resp, &err);
        }
        return;
    }
    json_t *live = live_state(s, id);
    if (live != NULL) {
        json_object_set_new(job, "live", live);
    }
    osp_http_reply_json(resp, 200, job);
}

/* ---- GET /v1/jobs ---- */

static void h_list_jobs(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const char *kind = osp_http_query(req, "kind");
    const char *state = osp_http_query(req, "state");
    const char *limit_s = osp_http_query(req, "limit");
    const char *before = osp_http_query(req, "before");
    if (kind != NULL && kind_or_reply(kind, resp) == NULL) {
        return;
    }
    enum osp_job_state st;
    if (state != NULL && osp_job_state_parse(state, &st) != 0) {
        osp_http_reply_error(resp, 400, "invalid_request", "state: one of %s",
                             osp_job_states_text());
        return;
    }
    long limit = API_LIST_DEFAULT;
    if (limit_s != NULL) {
        char *end = NULL;
        limit = strtol(limit_s, &end, 10);
        if (limit_s[0] == '\0' || *end != '\0' || limit < 1 || limit > API_LIST_MAX) {
            osp_http_reply_error(resp, 400, "invalid_request", "limit: an integer 1..%d",
                                 API_LIST_MAX);
            return;
        }
    }
    if (before != NULL && !osp_id_is_valid(before)) {
        osp_http_reply_error(resp, 400, "invalid_request", "before: a job id");
        return;
    }
    char states[32] = "";
    if (state != NULL) {
        snprintf(states, sizeof(states), "{%s}", state);
    }
    struct osp_job_filter f = {kind, state != NULL ? states : NULL, 0, before, (int)limit};
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (!api_ops(s, &o, resp)) {
        return;
    }
    json_t *rows = osp_op_jobs(&o, &f, &err);
    if (rows == NULL) {
        reply_op_error(s, resp, err.code != 0 ? err.code : OSP_EPG, &err);
        return;
    }
    static const char *const ints[] = {"attempt", "max_attempts", "recoveries", NULL};
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        row_ints(row, ints);
    }
    json_t *next = json_null();
    if (json_array_size(rows) == (size_t)limit) {
        next = json_incref(json_object_get(json_array_get(rows, json_array_size(rows) - 1), "id"));
    }
    osp_http_reply_json(resp, 200, json_pack("{s:o,s:o}", "jobs", rows, "next_before", next));
}

/* ---- Operations (common/ops.h): parse, call, render ---- */

/* The operation context for this request, or false after replying 503. */
static bool api_ops(struct sched *s, struct osp_ops *o, struct osp_http_resp *resp)
{
    memset(o, 0, sizeof(*o));
    o->pg = sched_pg(s);
    if (o->pg == NULL) {
        osp_http_reply_error(resp, 503, "unavailable", "postgresql unavailable");
        return false;
    }
    o->rq = s->rqs;
    o->keys = &s->keys;
    o->env_max_bytes = (size_t)s->cfg->env_max_bytes;
    o->job_ttl_s = s->cfg->job_ttl_s;
    o->actor.who = s->who[0] ? s->who : "unknown";
    o->actor.via = "api";
    return true;
}

/* Reply for an operation's error code. */
static void reply_op_error(struct sched *s, struct osp_http_resp *resp, int rc,
                           const struct osp_err *err)
{
    switch (rc) {
    case OSP_ENOTFOUND: osp_http_reply_error(resp, 404, "not_found", "%s", err->msg); break;
    case OSP_ECONFLICT: osp_http_reply_error(resp, 409, "conflict", "%s", err->msg); break;
    case OSP_EINVAL: osp_http_reply_error(resp, 400, "invalid_request", "%s", err->msg); break;
    case OSP_EPG:
        sched_pg_failed(s, err);
        reply_unavailable(resp, err);
        break;
    case OSP_EREDIS:
        sched_redis_failed(s, err);
        reply_unavailable(resp, err);
        break;
    default: reply_unavailable(resp, err); break;
    }
}

/* ---- POST /v1/jobs/{id}/cancel ---- */

static void h_cancel(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const char *id = req->params[0]; /* a valid id: h_scoped checked it */
    struct osp_ops o;
    struct osp_cancel_result r;
    struct osp_err err = {0, ""};
    if (!api_ops(s, &o, resp)) {
        return;
    }
    int rc = osp_op_cancel(&o, id, &r, &err);
    if (rc != 0) {
        reply_op_error(s, resp, rc, &err);
        return;
    }
    audit_log(s, "job.cancel", r.kind, id, r.prev);
    if (r.outcome == OSP_CANCEL_REQUESTED) {
        OSP_LOG_JOB(OSP_LOG_INFO, id, r.kind, "cancel requested (running)");
        osp_http_reply_json(resp, 202,
                            json_pack("{s:s,s:s,s:b,s:s}", "id", id, "state", "running",
                                      "cancel_requested", 1, "previous_state", r.prev));
        return;
    }
    OSP_LOG_JOB(OSP_LOG_INFO, id, r.kind, "cancelled (was %s)", r.prev);
    osp_http_reply_json(resp, 200,
                        json_pack("{s:s,s:s,s:s,s:b}", "id", id, "state", "cancelled",
                                  "previous_state", r.prev, "already",
                                  r.outcome == OSP_CANCEL_ALREADY));
}

/* ---- POST /v1/jobs/{id}/retry ---- */

static const char *const retry_fields[] = {"max_attempts", NULL};

static void h_retry(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const char *id = req->params[0];
    json_t *body = req->body_len > 0 ? osp_http_body_object(req, resp) : json_object();
    json_int_t budget = 0;
    if (body == NULL) {
        return;
    }
    if (!fields_ok(body, retry_fields, resp) ||
        opt_int(body, "max_attempts", 1, 100, 0, &budget, resp) != 0) {
        json_decref(body);
        return;
    }
    json_decref(body);
    struct osp_ops o;
    struct osp_retry_result r;
    struct osp_err err = {0, ""};
    if (!api_ops(s, &o, resp)) {
        return;
    }
    int rc = osp_op_retry(&o, id, NULL, (unsigned)budget, &r, &err);
    if (rc != 0) {
        reply_op_error(s, resp, rc, &err);
        return;
    }
    OSP_LOG_JOB(OSP_LOG_INFO, id, r.kind, "retried (was %s): attempt %u of %u", r.prev, r.attempt,
                r.max_attempts);
    audit_log(s, "job.retry", r.kind, id, r.prev);
    osp_http_reply_json(resp, 200,
                        json_pack("{s:s,s:s,s:s,s:i,s:i,s:b}", "id", id, "state", "queued",
                                  "previous_state", r.prev, "attempt", (int)r.attempt,
                                  "max_attempts", (int)r.max_attempts, "from_dead", r.from_dead));
}

/* ---- POST /v1/queues/{kind}/cancel (bulk) ---- */

static const char *const bulk_fields[] = {"states",         "submitted_by",  "schedule",
                                          "created_before", "created_after", "dry_run",
                                          "limit",          NULL};

/* An optional RFC 3339 time field as ms (0 when absent); -1 after replying 400. */
static int opt_time(const json_t *o, const char *name, int64_t *ms, struct osp_http_resp *resp)
{
    const json_t *v = json_object_get(o, name);
    *ms = 0;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v) || osp_time_parse_rfc3339(json_string_value(v), ms) != 0 || *ms <= 0) {
        osp_http_reply_error(resp, 400, "invalid_request",
                             "%s: expected RFC 3339 (2026-01-02T03:04:05Z)", name);
        return -1;
    }
    return 0;
}

static void h_bulk_cancel(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const struct job_kind *k = kind_or_reply(req->params[0], resp);
    if (k == NULL) {
        return;
    }
    json_t *body = req->body_len > 0 ? osp_http_body_object(req, resp) : json_object();
    if (body == NULL) {
        return;
    }
    struct osp_bulk_filter f = {.kind = k->name, .states = OSP_BULK_QUEUED | OSP_BULK_DELAYED |
                                                           OSP_BULK_RETRYING};
    const json_t *dry = json_object_get(body, "dry_run");
    const json_t *states = json_object_get(body, "states");
    json_int_t limit = 0;
    if (!fields_ok(body, bulk_fields, resp) ||
        opt_str(body, "submitted_by", 256, &f.submitted_by, resp) != 0 ||
        opt_str(body, "schedule", 128, &f.schedule, resp) != 0 ||
        opt_time(body, "created_before", &f.created_before_ms, resp) != 0 ||
        opt_time(body, "created_after", &f.created_after_ms, resp) != 0 ||
        opt_int(body, "limit", 1, API_BULK_MAX, API_BULK_DEFAULT, &limit, resp) != 0) {
        json_decref(body);
        return;
    }
    if (dry != NULL && !json_is_boolean(dry)) {
        osp_http_reply_error(resp, 400, "invalid_request", "dry_run: true or false");
        json_decref(body);
        return;
    }
    if (states != NULL) {
        size_t i;
        json_t *v;
        f.states = 0;
        json_array_foreach(states, i, v) {
            unsigned b = json_is_string(v) ? osp_bulk_states_parse(json_string_value(v)) : 0;
            if (b == 0 || strchr(json_string_value(v), ',') != NULL) {
                f.states = 0;
                break;
            }
            f.states |= b;
        }
        if (!json_is_array(states) || f.states == 0) {
            osp_http_reply_error(resp, 400, "invalid_request",
                                 "states: an array of queued, delayed, retrying");
            json_decref(body);
            return;
        }
    }
    f.limit = limit;
    struct osp_ops o;
    struct osp_bulk_result r;
    struct osp_err err = {0, ""};
    if (!api_ops(s, &o, resp)) {
        json_decref(body);
        return;
    }
    bool dry_run = json_is_true(dry);
    int rc = osp_op_bulk_cancel(&o, &f, dry_run, &r, &err);
    json_decref(body);
    if (rc != 0) {
        reply_op_error(s, resp, rc, &err);
        return;
    }
    if (dry_run) {
        osp_http_reply_json(resp, 200, json_pack("{s:s,s:b,s:I}", "kind", k->name, "dry_run", 1,
                                                 "would_cancel", (json_int_t)r.matched));
        return;
    }
    char detail[64];
    snprintf(detail, sizeof(detail), "%lld cancelled", (long long)r.cancelled);
    audit_log(s, "queue.cancel", k->name, NULL, detail);
    osp_http_reply_json(resp, 200,
                        json_pack("{s:s,s:I,s:b,s:I}", "kind", k->name, "cancelled",
                                  (json_int_t)r.cancelled, "more", r.cancelled >= limit, "audit_id",
                                  (json_int_t)r.audit_id));
}

/* ---- Queues ---- */

static void h_queues(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    struct sched *s = arg;
    json_t *arr = json_array();
    const struct job_kind *const *all = job_kinds_all();
    int64_t now = osp_now_ms();
    for (size_t i = 0; all[i] != NULL; i++) {
        struct osp_rq_stats st;
        struct osp_err err = {0, ""};
        if (osp_rqs_stats(s->rqs, all[i]->name, &st, &err) != 0) {
            sched_redis_failed(s, &err);
            json_decref(arr);
            reply_unavailable(resp, &err);
            return;
        }
        double age = st.oldest_pending_ms > 0 && now > st.oldest_pending_ms
                         ? (double)(now - st.oldest_pending_ms) / 1000.0
                         : 0.0;
        json_array_append_new(arr, json_pack("{s:s,s:I,s:I,s:I,s:I,s:b,s:f}", "kind", all[i]->name,
                                             "pending", (json_int_t)st.pending, "running",
                                             (json_int_t)st.running, "delayed",
                                             (json_int_t)st.delayed, "dead", (json_int_t)st.dead,
                                             "paused", st.paused, "oldest_age_s", age));
    }
    osp_http_reply_json(resp, 200, json_pack("{s:o}", "queues", arr));
}

static void pause_resume(const struct osp_http_req *req, struct osp_http_resp *resp,
                         struct sched *s, bool pause)
{
    const struct job_kind *k = kind_or_reply(req->params[0], resp);
    if (k == NULL) {
        return;
    }
    struct osp_ops o;
    struct osp_err err = {0, ""};
    bool changed = false;
    if (!api_ops(s, &o, resp)) {
        return;
    }
    int rc = osp_op_pause(&o, k->name, pause, &changed, &err);
    if (rc != 0) {
        reply_op_error(s, resp, rc, &err);
        return;
    }
    osp_info("queue %s %s via API", k->name, pause ? "paused" : "resumed");
    audit_log(s, pause ? "queue.pause" : "queue.resume", k->name, NULL, NULL);
    osp_http_reply_json(resp, 200, json_pack("{s:s,s:b,s:b}", "kind", k->name, "paused", pause,
                                             "changed", changed));
}

static void h_pause(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    pause_resume(req, resp, arg, true);
}

static void h_resume(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    pause_resume(req, resp, arg, false);
}

/* ---- Schedules ---- */

static void schedule_row(json_t *row)
{
    static const char *const ints[] = {"catchup_s", NULL};
    row_ints(row, ints);
    row_bool(row, "enabled");
    row_json(row, "payload");
}

static struct osp_submit_policy api_policy(struct sched *s)
{
    struct osp_submit_policy p = {s->set.default_max_attempts,
                                  s->have_targets ? &s->targets : NULL};
    return p;
}

static void h_list_schedules(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    struct sched *s = arg;
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (!api_ops(s, &o, resp)) {
        return;
    }
    json_t *rows = osp_op_schedules(&o, NULL, &err);
    if (rows == NULL) {
        reply_op_error(s, resp, err.code, &err);
        return;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        schedule_row(row);
    }
    osp_http_reply_json(resp, 200, json_pack("{s:o}", "schedules", rows));
}

/* Reply with one schedule (and its latest firings). */
static void reply_schedule(struct sched *s, struct osp_ops *o, const char *name, int status,
                           struct osp_http_resp *resp)
{
    struct osp_err err = {0, ""};
    json_t *row = osp_op_schedules(o, name, &err);
    if (row == NULL) {
        reply_op_error(s, resp, err.code, &err);
        return;
    }
    schedule_row(row);
    osp_http_reply_json(resp, status, row);
}

static void h_get_schedule(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct osp_ops o;
    if (api_ops(arg, &o, resp)) {
        reply_schedule(arg, &o, req->params[0], 200, resp);
    }
}

static void h_put_schedule(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    json_t *body = osp_http_body_object(req, resp);
    if (body == NULL) {
        return;
    }
    struct osp_ops o;
    struct osp_err err = {0, ""};
    bool created = false;
    const char *what = "invalid_request";
    if (!api_ops(s, &o, resp)) {
        json_decref(body);
        return;
    }
    struct osp_submit_policy pol = api_policy(s);
    int rc = osp_op_schedule_put(&o, &pol, body, &created, &what, &err);
    if (rc == OSP_EINVAL) {
        osp_http_reply_error(resp, 400, what, "%s", err.msg);
    } else if (rc != 0) {
        reply_op_error(s, resp, rc, &err);
    } else {
        const char *sname = json_string_value(json_object_get(body, "name"));
        audit_log(s, created ? "schedule.create" : "schedule.update", sname, NULL, NULL);
        reply_schedule(s, &o, sname, created ? 201 : 200, resp);
    }
    json_decref(body);
}

static void h_delete_schedule(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    struct osp_ops o;
    struct osp_err err = {0, ""};
    if (!api_ops(s, &o, resp)) {
        return;
    }
    int rc = osp_op_schedule_delete(&o, req->params[0], &err);
    if (rc != 0) {
        reply_op_error(s, resp, rc, &err);
        return;
    }
    osp_info("schedule %s deleted via API", req->params[0]);
    audit_log(s, "schedule.delete", req->params[0], NULL, NULL);
    osp_http_reply_json(resp, 200, json_pack("{s:s}", "deleted", req->params[0]));
}

static void schedule_enable(const struct osp_http_req *req, struct osp_http_resp *resp,
                            struct sched *s, bool enable)
{
    struct osp_ops o;
    struct osp_err err = {0, ""};
    char next[40];
    if (!api_ops(s, &o, resp)) {
        return;
    }
    int rc = osp_op_schedule_enable(&o, req->params[0], enable, next, &err);
    if (rc != 0) {
        reply_op_error(s, resp, rc, &err);
        return;
    }
    audit_log(s, enable ? "schedule.enable" : "schedule.disable", req->params[0], NULL, NULL);
    reply_schedule(s, &o, req->params[0], 200, resp);
}

static void h_enable_schedule(const struct osp_http_req *req, struct osp_http_resp *resp,
                              void *arg)
{
    schedule_enable(req, resp, arg, true);
}

static void h_disable_schedule(const struct osp_http_req *req, struct osp_http_resp *resp,
                               void *arg)
{
    schedule_enable(req, resp, arg, false);
}

static void h_trigger_schedule(const struct osp_http_req *req, struct osp_http_resp *resp,
                               void *arg)
{
    struct sched *s = arg;
    struct osp_ops o;
    struct osp_err err = {0, ""};
    char id[OSP_ID_LEN + 1];
    if (!api_ops(s, &o, resp)) {
        return;
    }
    struct osp_submit_policy pol = api_policy(s);
    int rc = osp_op_schedule_trigger(&o, &pol, req->params[0], id, &err);
    if (rc != 0 && rc != OSP_EREDIS) {
        reply_op_error(s, resp, rc, &err);
        return;
    }
    audit_log(s, "schedule.trigger", req->params[0], id, NULL);
    json_t *out = json_pack("{s:s,s:s,s:s}", "schedule", req->params[0], "id", id, "state",
                            "queued");
    if (rc == OSP_EREDIS) {
        sched_redis_failed(s, &err);
        json_object_set_new(out, "warning",
                            json_string("stored in the ledger; Redis is unavailable, the "
                                        "reconciler will enqueue it"));
    }
    osp_http_reply_json(resp, 202, out);
}

/* ---- POST /v1/dead/{kind}/retry, /purge ---- */

static const char *const dead_fields[] = {"limit", "ids", "max_attempts", NULL};
static const char *const purge_fields[] = {"ids", "dry_run", NULL};

/* The optional "ids" field: 0 (array of valid ids, or NULL) or -1 after replying 400. */
static int opt_ids(const json_t *body, const json_t **ids, struct osp_http_resp *resp)
{
    *ids = json_object_get(body, "ids");
    if (*ids == NULL) {
        return 0;
    }
    size_t i;
    json_t *v;
    bool ok = json_is_array(*ids) && json_array_size(*ids) <= API_DEAD_MAX;
    json_array_foreach(*ids, i, v) {
        ok = ok && json_is_string(v) && osp_id_is_valid(json_string_value(v));
    }
    if (!ok) {
        osp_http_reply_error(resp, 400, "invalid_request", "ids: an array of up to %d job ids",
                             API_DEAD_MAX);
        return -1;
    }
    return 0;
}

static void h_dead_retry(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const struct job_kind *k = kind_or_reply(req->params[0], resp);
    if (k == NULL) {
        return;
    }
    json_t *body = req->body_len > 0 ? osp_http_body_object(req, resp) : json_object();
    if (body == NULL) {
        return;
    }
    json_int_t limit, budget;
    const json_t *ids = NULL;
    if (!fields_ok(body, dead_fields, resp) ||
        opt_int(body, "limit", 1, API_DEAD_MAX, API_DEAD_DEFAULT, &limit, resp) != 0 ||
        opt_int(body, "max_attempts", 1, 100, 0, &budget, resp) != 0 || /* 0: as before */
        opt_ids(body, &ids, resp) != 0) {
        json_decref(body);
        return;
    }
    struct osp_ops o;
    struct osp_err err = {0, ""};
    json_t *rep = NULL;
    if (!api_ops(s, &o, resp)) {
        json_decref(body);
        return;
    }
    int rc = osp_op_dead_retry(&o, k->name, ids, limit, (unsigned)budget, &rep, &err);
    json_decref(body);
    json_t *retried = json_object_get(rep, "retried");
    json_t *idlist = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(retried, i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        json_array_append_new(idlist, json_string(id));
        audit_log(s, "dead.retry", k->name, id, NULL);
    }
    if (rc != 0) {
        json_decref(idlist);
        json_decref(rep);
        reply_op_error(s, resp, rc, &err);
        return;
    }
    osp_http_reply_json(resp, 200,
                        json_pack("{s:s,s:I,s:o,s:O}", "kind", k->name, "retried",
                                  (json_int_t)json_array_size(idlist), "ids", idlist, "skipped",
                                  json_object_get(rep, "skipped")));
    json_decref(rep);
}

static void h_dead_purge(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    const struct job_kind *k = kind_or_reply(req->params[0], resp);
    if (k == NULL) {
        return;
    }
    json_t *body = req->body_len > 0 ? osp_http_body_object(req, resp) : json_object();
    if (body == NULL) {
        return;
    }
    const json_t *ids = NULL;
    const json_t *dry = json_object_get(body, "dry_run");
    if (!fields_ok(body, purge_fields, resp) || opt_ids(body, &ids, resp) != 0) {
        json_decref(body);
        return;
    }
    if (dry != NULL && !json_is_boolean(dry)) {
        osp_http_reply_error(resp, 400, "invalid_request", "dry_run: true or false");
        json_decref(body);
        return;
    }
    struct osp_ops o;
    struct osp_err err = {0, ""};
    json_t *rep = NULL;
    if (!api_ops(s, &o, resp)) {
        json_decref(body);
        return;
    }
    int rc = osp_op_dead_purge(&o, k->name, ids, json_is_true(dry), &rep, &err);
    json_decref(body);
    if (rc != 0) {
        json_decref(rep);
        reply_op_error(s, resp, rc, &err);
        return;
    }
    if (!json_is_true(dry)) {
        audit_log(s, "dead.purge", k->name, NULL, NULL);
    }
    osp_http_reply_json(resp, 200, rep);
}

/* ---- Metrics and health ---- */

static void h_metrics(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    struct sched *s = arg;
    static const char *const classes[] = {"", "", "2xx", "3xx", "4xx", "5xx"};
    for (int c = 2; c <= 5; c++) {
        uint64_t n = osp_http_requests(s->http, c);
        const char *v[] = {classes[c]};
        osp_metric_add(s->m_http, v, (double)(n - s->http_seen[c]));
        s->http_seen[c] = n;
    }
    struct osp_buf out = OSP_BUF_INIT;
    osp_metrics_render(s->metrics, &out);
    osp_http_reply_text(resp, 200, OSP_METRICS_CONTENT_TYPE, (const char *)out.data, out.len);
    osp_buf_deinit(&out);
}

static void h_healthz(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    (void)arg;
    osp_http_reply_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_readyz(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    struct sched *s = arg;
    struct osp_err rerr = {0, ""};
    struct osp_err perr = {0, ""};
    bool r = osp_rqs_ping(s->rqs, &rerr) == 0;
    if (!r) {
        sched_redis_failed(s, &rerr);
    }
    json_t *p = sched_query(s, "SELECT 1 AS ok", 0, NULL, &perr);
    bool ok = r && p != NULL;
    json_t *body =
        json_pack("{s:s,s:s}", "redis", r ? "ok" : rerr.msg, "postgres", p ? "ok" : perr.msg);
    json_decref(p);
    if (ok) {
        json_object_set_new(body, "status", json_string("ready"));
        osp_http_reply_json(resp, 200, body);
        return;
    }
    json_object_set_new(body, "error",
                        json_pack("{s:s,s:s}", "code", "unavailable", "message",
                                  !r ? "redis unreachable" : "postgresql unreachable"));
    osp_http_reply_json(resp, 503, body);
}

/* Add an authenticated /v1 route needing `scope`, run through h_scoped. */
static void scoped_route(struct sched *s, const char *method, const char *pattern, unsigned scope,
                         osp_http_handler *fn, const char *const *query)
{
    OSP_ASSERT(s->nroutes < SCHED_MAX_ROUTES);
    struct sched_route *rt = &s->routes[s->nroutes++];
    rt->s = s;
    rt->scope = scope;
    rt->fn = fn;
    rt->query = query;
    snprintf(rt->name, sizeof(rt->name), "%s %s", method, pattern);
    osp_http_router_add(osp_http_router(s->http), method, pattern, OSP_HTTP_AUTH, h_scoped, rt);
}

static const char *const list_jobs_query[] = {"kind", "state", "limit", "before", NULL};

/* Endpoint → scope (docs/api.md "Authentication") and accepted query parameters (none but
 * GET /v1/jobs's: any other is a 400). */
void sched_api_routes(struct sched *s)
{
    struct osp_http_router *r = osp_http_router(s->http);
    osp_http_set_auth(s->http, auth_cb, s);
    osp_http_router_add(r, "GET", "/healthz", 0, h_healthz, s);
    osp_http_router_add(r, "GET", "/readyz", 0, h_readyz, s);
    osp_http_router_add(r, "GET", "/metrics", 0, h_metrics, s);
    scoped_route(s, "POST", "/v1/jobs", SCHED_SCOPE_SUBMIT, h_submit, NULL);
    scoped_route(s, "GET", "/v1/jobs", SCHED_SCOPE_READ, h_list_jobs, list_jobs_query);
    scoped_route(s, "GET", "/v1/jobs/{id}", SCHED_SCOPE_READ, h_get_job, NULL);
    scoped_route(s, "POST", "/v1/jobs/{id}/cancel", SCHED_SCOPE_OPERATE, h_cancel, NULL);
    scoped_route(s, "POST", "/v1/jobs/{id}/retry", SCHED_SCOPE_OPERATE, h_retry, NULL);
    scoped_route(s, "GET", "/v1/queues", SCHED_SCOPE_READ, h_queues, NULL);
    scoped_route(s, "POST", "/v1/queues/{kind}/pause", SCHED_SCOPE_OPERATE, h_pause, NULL);
    scoped_route(s, "POST", "/v1/queues/{kind}/resume", SCHED_SCOPE_OPERATE, h_resume, NULL);
    scoped_route(s, "POST", "/v1/queues/{kind}/cancel", SCHED_SCOPE_OPERATE, h_bulk_cancel, NULL);
    scoped_route(s, "GET", "/v1/schedules", SCHED_SCOPE_READ, h_list_schedules, NULL);
    scoped_route(s, "POST", "/v1/schedules", SCHED_SCOPE_OPERATE, h_put_schedule, NULL);
    scoped_route(s, "GET", "/v1/schedules/{name}", SCHED_SCOPE_READ, h_get_schedule, NULL);
    scoped_route(s, "DELETE", "/v1/schedules/{name}", SCHED_SCOPE_OPERATE, h_delete_schedule, NULL);
    scoped_route(s, "POST", "/v1/schedules/{name}/trigger", SCHED_SCOPE_OPERATE, h_trigger_schedule,
                 NULL);
    scoped_route(s, "POST", "/v1/schedules/{name}/enable", SCHED_SCOPE_OPERATE, h_enable_schedule,
                 NULL);
    scoped_route(s, "POST", "/v1/schedules/{name}/disable", SCHED_SCOPE_OPERATE,
                 h_disable_schedule, NULL);
    scoped_route(s, "POST", "/v1/dead/{kind}/retry", SCHED_SCOPE_OPERATE, h_dead_retry, NULL);
    scoped_route(s, "POST", "/v1/dead/{kind}/purge", SCHED_SCOPE_OPERATE, h_dead_purge, NULL);
}
