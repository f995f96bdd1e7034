/* SPDX-License-Identifier: MIT */
/* api.c — the scheduler's HTTP API (docs/api.md is the user contract; DESIGN.md §5): tokens,
 * scopes and routing, the helpers every handler shares (scheduler/api.h), health and metrics.
 * The handlers are adapters by resource: api_jobs.c, api_queues.c (queues, bulk cancel, dead
 * letters), api_schedules.c; each parses, calls one operation of common/ops.h, renders.
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
#include "scheduler/api.h"
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

long api_token_lookup(const struct sched *s, const char *tok, size_t len)
{
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

unsigned api_token_scopes(const struct sched *s, long i, char who[SCHED_WHO_MAX])
{
    if (s->set.api_insecure && s->ntokens == 0) {
        snprintf(who, SCHED_WHO_MAX, "insecure");
        return SCHED_SCOPE_ALL;
    }
    if (i < 0 || (size_t)i >= s->ntokens) {
        return 0;
    }
    snprintf(who, SCHED_WHO_MAX, "token:%s", s->token_fp[i]);
    return s->token_scopes[i];
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
    return api_token_lookup(s, tok, len);
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
        } else if (strcmp(n, "cid") == 0 && !osp_id_is_valid(v)) {
            osp_http_reply_error(resp, 400, "invalid_request",
                                 "invalid campaign id: expected a UUID "
                                 "(0190f2a4-1b2c-7d3e-8f40-123456789abc)");
        } else if (strcmp(n, "did") == 0 && !osp_id_is_valid(v)) {
            osp_http_reply_error(resp, 400, "invalid_request",
                                 "invalid delivery id: expected a UUID "
                                 "(5a5c69de-71ac-453f-a35f-3d130d38b33e)");
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
 * the change itself (see api_h_cancel, api_h_dead_retry). */
void api_audit_log(struct sched *s, const char *action, const char *object, const char *job_id,
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

void api_reply_unavailable(struct osp_http_resp *resp, const struct osp_err *err)
{
    /* Every 503 leaves a line: an operator sees why the API said "unavailable". */
    osp_warn("API request answered 503: %s", err->msg[0] ? err->msg : "backend unavailable");
    osp_http_reply_error(resp, 503, "unavailable", "%s",
                         err->msg[0] ? err->msg : "backend unavailable");
}

/* Turn text columns into integers / booleans / JSON in place (osp_pgs_query returns text). */
void api_row_ints(json_t *row, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        json_t *v = json_object_get(row, names[i]);
        if (json_is_string(v)) {
            json_object_set_new(row, names[i],
                                json_integer(strtoll(json_string_value(v), NULL, 10)));
        }
    }
}

void api_row_bool(json_t *row, const char *name)
{
    json_t *v = json_object_get(row, name);
    if (json_is_string(v)) {
        json_object_set_new(row, name,
                            json_boolean(strcmp(json_string_value(v), "true") == 0 ||
                                         strcmp(json_string_value(v), "t") == 0));
    }
}

void api_row_json(json_t *row, const char *name)
{
    json_t *v = json_object_get(row, name);
    if (json_is_string(v)) {
        json_t *p = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
        json_object_set_new(row, name, p ? p : json_null());
    }
}

bool api_fields_ok(const json_t *o, const char *const *allowed, struct osp_http_resp *resp)
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
int api_opt_str(const json_t *o, const char *name, size_t maxlen, const char **out,
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

int api_opt_int(const json_t *o, const char *name, json_int_t lo, json_int_t hi, json_int_t dflt,
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
const struct job_kind *api_kind_or_reply(const char *name, struct osp_http_resp *resp)
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

/* ---- Operations (common/ops.h): parse, call, render ---- */

/* The operation context for this request, or false after replying 503. */
bool api_ops(struct sched *s, struct osp_ops *o, struct osp_http_resp *resp)
{
    *o = sched_ops(s, sched_pg(s), s->who[0] ? s->who : "unknown", "api");
    if (o->pg == NULL) {
        osp_http_reply_error(resp, 503, "unavailable", "postgresql unavailable");
        return false;
    }
    return true;
}

/* Reply for an operation's error code. */
void api_reply_op_error(struct sched *s, struct osp_http_resp *resp, int rc,
                        const struct osp_err *err)
{
    switch (rc) {
    case OSP_ENOTFOUND:
        osp_http_reply_error(resp, 404, "not_found", "%s", err->msg);
        break;
    case OSP_ECONFLICT:
        osp_http_reply_error(resp, 409, "conflict", "%s", err->msg);
        break;
    case OSP_EINVAL:
        osp_http_reply_error(resp, 400, "invalid_request", "%s", err->msg);
        break;
    case OSP_EPG:
        sched_pg_failed(s, err);
        api_reply_unavailable(resp, err);
        break;
    case OSP_EREDIS:
        sched_redis_failed(s, err);
        api_reply_unavailable(resp, err);
        break;
    default:
        api_reply_unavailable(resp, err);
        break;
    }
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

const char *const api_list_jobs_query[] = {"kind",   "state",           "limit", "before",
                                           "target", "idempotency_key", NULL};

/* Endpoint → scope (docs/api.md "Authentication") and accepted query parameters (none but
 * GET /v1/jobs's: any other is a 400). */
void sched_api_routes(struct sched *s)
{
    struct osp_http_router *r = osp_http_router(s->http);
    osp_http_set_auth(s->http, auth_cb, s);
    osp_http_set_after_run(s->http, api_submit_flush, s);
    osp_http_router_add(r, "GET", "/healthz", 0, h_healthz, s);
    osp_http_router_add(r, "GET", "/readyz", 0, h_readyz, s);
    osp_http_router_add(r, "GET", "/metrics", 0, h_metrics, s);
    scoped_route(s, "POST", "/v1/jobs", SCHED_SCOPE_SUBMIT, api_h_submit, NULL);
    scoped_route(s, "GET", "/v1/jobs", SCHED_SCOPE_READ, api_h_list_jobs, api_list_jobs_query);
    scoped_route(s, "GET", "/v1/jobs/{id}", SCHED_SCOPE_READ, api_h_get_job, NULL);
    scoped_route(s, "POST", "/v1/jobs/{id}/cancel", SCHED_SCOPE_OPERATE, api_h_cancel, NULL);
    scoped_route(s, "POST", "/v1/jobs/{id}/retry", SCHED_SCOPE_OPERATE, api_h_retry, NULL);
    scoped_route(s, "GET", "/v1/queues", SCHED_SCOPE_READ, api_h_queues, NULL);
    scoped_route(s, "POST", "/v1/queues/{kind}/pause", SCHED_SCOPE_OPERATE, api_h_pause, NULL);
    scoped_route(s, "POST", "/v1/queues/{kind}/resume", SCHED_SCOPE_OPERATE, api_h_resume, NULL);
    scoped_route(s, "POST", "/v1/queues/{kind}/cancel", SCHED_SCOPE_OPERATE, api_h_bulk_cancel,
                 NULL);
    scoped_route(s, "GET", "/v1/schedules", SCHED_SCOPE_READ, api_h_list_schedules, NULL);
    scoped_route(s, "POST", "/v1/schedules", SCHED_SCOPE_OPERATE, api_h_put_schedule, NULL);
    scoped_route(s, "GET", "/v1/schedules/{name}", SCHED_SCOPE_READ, api_h_get_schedule, NULL);
    scoped_route(s, "DELETE", "/v1/schedules/{name}", SCHED_SCOPE_OPERATE, api_h_delete_schedule,
                 NULL);
    scoped_route(s, "POST", "/v1/schedules/{name}/trigger", SCHED_SCOPE_OPERATE,
                 api_h_trigger_schedule, NULL);
    scoped_route(s, "POST", "/v1/schedules/{name}/enable", SCHED_SCOPE_OPERATE,
                 api_h_enable_schedule, NULL);
    scoped_route(s, "POST", "/v1/schedules/{name}/disable", SCHED_SCOPE_OPERATE,
                 api_h_disable_schedule, NULL);
    scoped_route(s, "POST", "/v1/campaigns", SCHED_SCOPE_SUBMIT, api_h_submit_campaign, NULL);
    scoped_route(s, "GET", "/v1/campaigns", SCHED_SCOPE_READ, api_h_list_campaigns,
                 api_list_campaigns_query);
    scoped_route(s, "GET", "/v1/campaigns/{cid}", SCHED_SCOPE_READ, api_h_get_campaign, NULL);
    scoped_route(s, "POST", "/v1/campaigns/{cid}/cancel", SCHED_SCOPE_OPERATE,
                 api_h_cancel_campaign, NULL);
    scoped_route(s, "POST", "/v1/dead/{kind}/retry", SCHED_SCOPE_OPERATE, api_h_dead_retry, NULL);
    scoped_route(s, "POST", "/v1/dead/{kind}/purge", SCHED_SCOPE_OPERATE, api_h_dead_purge, NULL);
    scoped_route(s, "GET", "/v1/benchmarks", SCHED_SCOPE_READ, api_h_bench_history,
                 api_bench_query);
    scoped_route(s, "GET", "/v1/benchmarks/{id}", SCHED_SCOPE_READ, api_h_bench_job,
                 api_bench_job_query);
    scoped_route(s, "POST", "/v1/benchmarks/baselines", SCHED_SCOPE_OPERATE, api_h_bench_baseline,
                 NULL);
    scoped_route(s, "GET", "/v1/notifications", SCHED_SCOPE_READ, api_h_notifications,
                 api_notify_query);
    scoped_route(s, "POST", "/v1/notifications/{did}/retry", SCHED_SCOPE_OPERATE,
                 api_h_notification_retry, NULL);
}
