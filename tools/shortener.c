/* SPDX-License-Identifier: MIT */
/* shortener.c — opspool-shortener, the reference workload: a small URL shortener on libev,
 * HTTP/1.1 keep-alive, PostgreSQL storage (tools/schema.sql, applied at start and
 * on every reconnect: it is idempotent) and a Redis read cache for redirects.
 *
 *   GET  /health            200 {"status":"ok"} when PostgreSQL answers, else 503
 *   POST /api/urls          {"target": "http(s)://...", "user_id": n, "code"?: "[A-Za-z0-9_-]{1,32}"}
 *                           -> 201 {"id", "code"}; 409 when the code exists; the user row is
 *                           created on first use (a reference app, not an identity service)
 *   GET  /api/urls/<code>   200 {"id", "code", "target", "user_id", "hits", "created_at"} | 404
 *   GET  /r/<code>          302 Location: target, with "X-Cache: HIT" (served from Redis) or
 *                           "X-Cache: MISS" (read from PostgreSQL, then cached) | 404
 *   GET|POST /admin/faults  read or set fault knobs {"latency_ms", "error_rate", "stall_every_ms",
 *                           "stall_ms"}: delay every /r and /api response, answer 500 to a
 *                           random fraction of them, or freeze the whole process periodically
 *
 * Environment: SHORTENER_ADDR (127.0.0.1:8080; loopback unless told otherwise),
 * SHORTENER_PG_DSN (required), SHORTENER_REDIS_URL (redis://host:port or unix:///path;
 * optional: without it every redirect is a MISS), SHORTENER_PIDFILE, SHORTENER_SCHEMA (a path
 * to use instead of the embedded schema), SHORTENER_CACHE_TTL_S (300), SHORTENER_REDIS_PREFIX
 * (cache keys are <prefix>url:<code>; default "shortener:"), and the fault knobs
 * SHORTENER_LATENCY_MS, SHORTENER_ERROR_RATE, SHORTENER_STALL_EVERY_MS, SHORTENER_STALL_MS.
 * SHORTENER_PORT_FILE names a file the bound port is written to (port 0 picks a free one;
 * a start with port 0 whose port file already names a port binds that one, so restarts under
 * a supervisor keep the address).
 * `--help` lists them (sh_settings[]); `--print-config` prints the effective values, the DSN
 * redacted, and exits.
 *
 * Deliberate simplification: libpq and hiredis are used synchronously inside the event loop.
 * Each call is one short round trip on a local socket (hiredis with a 200 ms timeout), and hit
 * counters are batched in memory and written once a second, so a request costs at most two
 * round trips. A production service would use the asynchronous APIs (as common/redis.c and the
 * ledger do); this one trades that for being small enough to read in one sitting. While
 * PostgreSQL is unreachable, reconnection is attempted at most once a second. */
#include "common/alloc.h"
#include "common/base.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/http.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

extern const char osp_workload_schema_sql[];

#define SH_MAX_HEAD      16384
#define SH_MAX_BODY      65536
#define SH_CODE_MAX      32
#define SH_TARGET_MAX    2048
#define SH_HITS_SLOTS    4096
#define SH_RETRY_NS      1000000000LL

struct sh_faults {
    int latency_ms;        /* added before every /r and /api response */
    double error_rate;     /* fraction of /r and /api requests answered 500 */
    int stall_every_ms;    /* freeze the process every ... */
    int stall_ms;          /* ... for this long (0 = off) */
};

struct sh_conn {
    ev_io io;
    ev_timer delay;        /* latency fault: holds the response back */
    int fd;
    bool delaying;
    bool close_after;      /* Connection: close, or HTTP/1.0 without keep-alive */
    struct osp_buf in, out;
};

struct sh_hit {
    long long id;
    long long n;
};

static struct {
    struct ev_loop *loop;
    const char *pg_dsn;
    const char *redis_url;
    const char *redis_prefix;  /* key prefix, "shortener:" by default */
    const char *schema_path;
    PGconn *pg;
    bool pg_ready;         /* connected and schema applied */
    int64_t pg_retry_ns;
    redisContext *redis;
    int64_t redis_retry_ns;
    int cache_ttl_s;
    struct sh_faults faults;
    ev_timer stall, flush;
    struct sh_hit hits[SH_HITS_SLOTS];
    size_t nhits;
    uint64_t rng;
} sh;

/* ---- Storage ---- */

static void sh_pg_drop(void)
{
    PQfinish(sh.pg);
    sh.pg = NULL;
    sh.pg_ready = false;
    sh.pg_retry_ns = osp_mono_ns() + SH_RETRY_NS;
}

static char *sh_read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return NULL;
    }
    struct osp_buf b = OSP_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        osp_buf_append(&b, chunk, n);
    }
    fclose(f);
    char *s = osp_xstrdup(osp_buf_cstr(&b));
    osp_buf_deinit(&b);
    return s;
}

/* Connect (when due) and apply the schema. True when PostgreSQL is usable. */
static bool sh_pg_ok(void)
{
    if (sh.pg_ready && PQstatus(sh.pg) == CONNECTION_OK) {
        return true;
    }
    if (sh.pg != NULL) {
        sh_pg_drop();
    }
    if (osp_mono_ns() < sh.pg_retry_ns) {
        return false;
    }
    sh.pg = PQconnectdb(sh.pg_dsn);
    if (PQstatus(sh.pg) != CONNECTION_OK) {
        fprintf(stderr, "shortener: postgres: %s", PQerrorMessage(sh.pg));
        sh_pg_drop();
        return false;
    }
    char *file = sh.schema_path != NULL ? sh_read_file(sh.schema_path) : NULL;
    PGresult *r = PQexec(sh.pg, file != NULL ? file : osp_workload_schema_sql);
    free(file);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) {
        fprintf(stderr, "shortener: schema: %s", PQresultErrorMessage(r));
    }
    PQclear(r);
    if (!ok) {
        sh_pg_drop();
        return false;
    }
    sh.pg_ready = true;
    return true;
}

/* Run a parameterised statement. NULL (and the connection dropped when it broke) on failure;
 * *sqlstate gets the error class when the server refused the statement. */
static PGresult *sh_pg(const char *sql, int n, const char *const *params, char sqlstate[6])
{
    if (sqlstate != NULL) {
        sqlstate[0] = '\0';
    }
    if (!sh_pg_ok()) {
        return NULL;
    }
    PGresult *r = PQexecParams(sh.pg, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        return r;
    }
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (sqlstate != NULL && state != NULL) {
        snprintf(sqlstate, 6, "%s", state);
    }
    if (state == NULL || strcmp(state, "23505") != 0) {
        /* A unique violation is an answer (409); anything else is worth a line. */
        fprintf(stderr, "shortener: postgres: %s", PQresultErrorMessage(r));
    }
    if (PQstatus(sh.pg) != CONNECTION_OK) {
        sh_pg_drop();
    }
    PQclear(r);
    return NULL;
}

static void sh_redis_drop(void)
{
    redisFree(sh.redis);
    sh.redis = NULL;
    sh.redis_retry_ns = osp_mono_ns() + SH_RETRY_NS;
}

static redisContext *sh_redis(void)
{
    if (sh.redis != NULL) {
        return sh.redis;
    }
    if (sh.redis_url == NULL || osp_mono_ns() < sh.redis_retry_ns) {
        return NULL;
    }
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    redisContext *c = NULL;
    if (strncmp(sh.redis_url, "unix://", 7) == 0) {
        c = redisConnectUnixWithTimeout(sh.redis_url + 7, tv);
    } else if (strncmp(sh.redis_url, "redis://", 8) == 0) {
        char host[256];
        int port = 6379;
        const char *h = sh.redis_url + 8;
        const char *at = strrchr(h, '@');
        h = at != NULL ? at + 1 : h;
        size_t hl = strcspn(h, ":/");
        snprintf(host, sizeof(host), "%.*s", (int)(hl < 255 ? hl : 255), h);
        if (h[hl] == ':') {
            port = atoi(h + hl + 1);
        }
        c = redisConnectWithTimeout(host, port, tv);
    }
    if (c == NULL || c->err != 0) {
        fprintf(stderr, "shortener: redis: %s\n", c != NULL ? c->errstr : "bad SHORTENER_REDIS_URL");
        redisFree(c);
        sh.redis_retry_ns = osp_mono_ns() + SH_RETRY_NS;
        return NULL;
    }
    redisSetTimeout(c, tv);
    sh.redis = c;
    return c;
}

/* GET key from Redis; NULL on a miss or when Redis is unavailable (the connection is dropped
 * when broken). The reply is owned. */
static redisReply *sh_redis_get(const char *key)
{
    redisContext *c = sh_redis();
    if (c == NULL) {
        return NULL;
    }
    redisReply *r = redisCommand(c, "GET %s", key);
    if (r == NULL) {
        sh_redis_drop();
    }
    return r;
}

static void sh_redis_set(const char *key, const char *val)
{
    redisContext *c = sh_redis();
    if (c == NULL) {
        return;
    }
    redisReply *r = redisCommand(c, "SET %s %s EX %d", key, val, sh.cache_ttl_s);
    if (r == NULL) {
        sh_redis_drop();
        return;
    }
    freeReplyObject(r);
}

/* ---- Hit counters: batched in memory, written once a second ---- */

static void sh_hits_flush(void)
{
    if (sh.nhits == 0) {
        return;
    }
    struct osp_buf ids = OSP_BUF_INIT, ns = OSP_BUF_INIT;
    osp_buf_append(&ids, "{", 1);
    osp_buf_append(&ns, "{", 1);
    bool first = true;
    for (size_t i = 0; i < SH_HITS_SLOTS; i++) {
        if (sh.hits[i].n > 0) {
            osp_buf_appendf(&ids, "%s%lld", first ? "" : ",", sh.hits[i].id);
            osp_buf_appendf(&ns, "%s%lld", first ? "" : ",", sh.hits[i].n);
            first = false;
        }
    }
    osp_buf_append(&ids, "}", 1);
    osp_buf_append(&ns, "}", 1);
    const char *params[2] = {osp_buf_cstr(&ids), osp_buf_cstr(&ns)};
    PGresult *r = sh_pg("UPDATE urls u SET hits = u.hits + v.n "
                        "FROM unnest($1::bigint[], $2::bigint[]) AS v(id, n) WHERE u.id = v.id",
                        2, params, NULL);
    if (r != NULL) {
        /* Counts are dropped only once written; on failure they wait for the next flush. */
        memset(sh.hits, 0, sizeof(sh.hits));
        sh.nhits = 0;
        PQclear(r);
    }
    osp_buf_deinit(&ids);
    osp_buf_deinit(&ns);
}

static void sh_hit(long long id)
{
    size_t h = (size_t)((unsigned long long)id * 0x9e3779b97f4a7c15ULL >> 52) % SH_HITS_SLOTS;
    for (size_t probe = 0; probe < SH_HITS_SLOTS; probe++) {
        struct sh_hit *s = &sh.hits[(h + probe) % SH_HITS_SLOTS];
        if (s->n > 0 && s->id == id) {
            s->n++;
            return;
        }
        if (s->n == 0) {
            s->id = id;
            s->n = 1;
            if (++sh.nhits > SH_HITS_SLOTS * 3 / 4) {
                sh_hits_flush();
            }
            return;
        }
    }
}

static void sh_on_flush(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    sh_hits_flush();
}

/* ---- Faults ---- */

static void sh_on_stall(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    /* Freeze everything, as a stop-the-world pause would. */
    struct timespec ts = {.tv_sec = sh.faults.stall_ms / 1000,
                          .tv_nsec = (long)(sh.faults.stall_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    ev_now_update(loop);
}

static void sh_faults_apply(void)
{
    ev_timer_stop(sh.loop, &sh.stall);
    if (sh.faults.stall_every_ms > 0 && sh.faults.stall_ms > 0) {
        double every = sh.faults.stall_every_ms / 1000.0;
        ev_timer_set(&sh.stall, every, every);
        ev_timer_start(sh.loop, &sh.stall);
    }
}

static json_t *sh_faults_json(void)
{
    return json_pack("{s:i, s:f, s:i, s:i}", "latency_ms", sh.faults.latency_ms, "error_rate",
                     sh.faults.error_rate, "stall_every_ms", sh.faults.stall_every_ms, "stall_ms",
                     sh.faults.stall_ms);
}

static double sh_rand01(void)
{
    uint64_t z = (sh.rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

/* ---- HTTP responses ---- */

static void sh_reply(struct sh_conn *c, int status, const char *extra_headers, const char *ctype,
                     const char *body)
{
    static const struct {
        int code;
        const char *text;
    } reasons[] = {{200, "OK"}, {201, "Created"}, {302, "Found"}, {400, "Bad Request"},
                   {404, "Not Found"}, {405, "Method Not Allowed"}, {409, "Conflict"},
                   {411, "Length Required"}, {413, "Payload Too Large"},
                   {500, "Internal Server Error"}, {501, "Not Implemented"},
                   {503, "Service Unavailable"}};
    const char *reason = "Unknown";
    for (size_t i = 0; i < OSP_ARRAY_LEN(reasons); i++) {
        if (reasons[i].code == status) {
            reason = reasons[i].text;
        }
    }
    size_t bl = body != NULL ? strlen(body) : 0;
    osp_buf_appendf(&c->out, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%s%s\r\n", status,
                    reason, bl, ctype != NULL ? "Content-Type: " : "", ctype != NULL ? ctype : "",
                    ctype != NULL ? "\r\n" : "", extra_headers != NULL ? extra_headers : "");
    if (c->close_after) {
        /* Insert before the blank line: rewrite the tail "\r\n" we just wrote. */
        c->out.len -= 2;
        osp_buf_append(&c->out, "Connection: close\r\n\r\n", 21);
    }
    if (bl > 0) {
        osp_buf_append(&c->out, body, bl);
    }
}

static void sh_reply_json(struct sh_conn *c, int status, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    sh_reply(c, status, NULL, "application/json", s);
    free(s);
    json_decref(o);
}

static void sh_error(struct sh_conn *c, int status, const char *msg)
{
    sh_reply_json(c, status, json_pack("{s:s}", "error", msg));
}

/* ---- Routes ---- */

static bool sh_code_ok(const char *s, size_t n)
{
    if (n < 1 || n > SH_CODE_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-')) {
            return false;
        }
    }
    return true;
}

static void sh_health(struct sh_conn *c)
{
    PGresult *r = sh_pg("SELECT 1", 0, NULL, NULL);
    bool redis_ok = sh_redis() != NULL;
    if (r == NULL) {
        sh_reply_json(c, 503, json_pack("{s:s, s:b, s:b}", "status", "unavailable", "pg", 0,
                                        "redis", redis_ok));
        return;
    }
    PQclear(r);
    sh_reply_json(c, 200, json_pack("{s:s, s:b, s:b}", "status", "ok", "pg", 1, "redis", redis_ok));
}

static void sh_redirect(struct sh_conn *c, const char *code)
{
    char key[160];
    snprintf(key, sizeof(key), "%.100surl:%s", sh.redis_prefix, code);
    /* Cached value: "<id> <target>". */
    redisReply *rr = sh_redis_get(key);
    if (rr != NULL && rr->type == REDIS_REPLY_STRING) {
        char *sp = strchr(rr->str, ' ');
        if (sp != NULL) {
            sh_hit(atoll(rr->str));
            char *hdr = osp_xasprintf("Location: %s\r\nX-Cache: HIT\r\n", sp + 1);
            sh_reply(c, 302, hdr, NULL, NULL);
            free(hdr);
            freeReplyObject(rr);
            return;
        }
    }
    if (rr != NULL) {
        freeReplyObject(rr);
    }
    const char *params[1] = {code};
    PGresult *r = sh_pg("SELECT id, target FROM urls WHERE code = $1", 1, params, NULL);
    if (r == NULL) {
        sh_error(c, 503, "storage unavailable");
        return;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        sh_reply(c, 404, "X-Cache: MISS\r\n", "application/json", "{\"error\":\"not found\"}");
        return;
    }
    const char *id = PQgetvalue(r, 0, 0), *target = PQgetvalue(r, 0, 1);
    char *val = osp_xasprintf("%s %s", id, target);
    sh_redis_set(key, val);
    free(val);
    sh_hit(atoll(id));
    char *hdr = osp_xasprintf("Location: %s\r\nX-Cache: MISS\r\n", target);
    sh_reply(c, 302, hdr, NULL, NULL);
    free(hdr);
    PQclear(r);
}

static void sh_url_get(struct sh_conn *c, const char *code)
{
    sh_hits_flush();
    const char *params[1] = {code};
    PGresult *r = sh_pg("SELECT id, code, target, user_id, hits, "
                        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                        "FROM urls WHERE code = $1",
                        1, params, NULL);
    if (r == NULL) {
        sh_error(c, 503, "storage unavailable");
        return;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        sh_error(c, 404, "not found");
        return;
    }
    sh_reply_json(c, 200, json_pack("{s:I, s:s, s:s, s:I, s:I, s:s}", "id",
                                    (json_int_t)atoll(PQgetvalue(r, 0, 0)), "code",
                                    PQgetvalue(r, 0, 1), "target", PQgetvalue(r, 0, 2), "user_id",
                                    (json_int_t)atoll(PQgetvalue(r, 0, 3)), "hits",
                                    (json_int_t)atoll(PQgetvalue(r, 0, 4)), "created_at",
                                    PQgetvalue(r, 0, 5)));
    PQclear(r);
}

static void sh_base62(long long v, char *out)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = digits[v % 62];
        v /= 62;
    } while (v > 0 && n < 15);
    for (int i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    out[n] = '\0';
}

static void sh_url_create(struct sh_conn *c, const char *body)
{
    json_error_t jerr;
    json_t *in = json_loads(body, 0, &jerr);
    const char *target = json_string_value(json_object_get(in, "target"));
    const json_t *uid = json_object_get(in, "user_id");
    const json_t *jcode = json_object_get(in, "code");
    if (in == NULL || !json_is_object(in) || target == NULL || strlen(target) > SH_TARGET_MAX ||
        (strncmp(target, "http://", 7) != 0 && strncmp(target, "https://", 8) != 0) ||
        strpbrk(target, " \r\n") != NULL || !json_is_integer(uid) || json_integer_value(uid) < 1 ||
        (jcode != NULL && (!json_is_string(jcode) ||
                           !sh_code_ok(json_string_value(jcode), json_string_length(jcode))))) {
        json_decref(in);
        sh_error(c, 400, "expected {\"target\": \"http(s)://...\", \"user_id\": n >= 1, "
                         "\"code\"?: \"[A-Za-z0-9_-]{1,32}\"}");
        return;
    }
    char uids[24], ids[24], code[SH_CODE_MAX + 1];
    snprintf(uids, sizeof(uids), "%lld", (long long)json_integer_value(uid));
    const char *p1[1] = {uids};
    PGresult *r = sh_pg("INSERT INTO users (id, email, name) VALUES "
                        "($1::bigint, 'user' || $1::bigint || '@shortener.invalid', 'user ' || $1::bigint) "
                        "ON CONFLICT DO NOTHING",
                        1, p1, NULL);
    if (r == NULL) {
        json_decref(in);
        sh_error(c, 503, "storage unavailable");
        return;
    }
    PQclear(r);
    r = sh_pg("SELECT nextval('shortener_ids')", 0, NULL, NULL);
    if (r == NULL) {
        json_decref(in);
        sh_error(c, 503, "storage unavailable");
        return;
    }
    long long id = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    snprintf(ids, sizeof(ids), "%lld", id);
    if (jcode != NULL) {
        snprintf(code, sizeof(code), "%s", json_string_value(jcode));
    } else {
        sh_base62(id, code);
    }
    const char *p2[4] = {ids, code, target, uids};
    char state[6];
    r = sh_pg("INSERT INTO urls (id, code, target, user_id) VALUES ($1, $2, $3, $4)", 4, p2,
              state);
    json_decref(in);
    if (r == NULL) {
        if (strcmp(state, "23505") == 0) {
            sh_error(c, 409, "code already exists");
        } else {
            sh_error(c, 503, "storage unavailable");
        }
        return;
    }
    PQclear(r);
    sh_reply_json(c, 201, json_pack("{s:I, s:s}", "id", (json_int_t)id, "code", code));
}

static void sh_admin_faults(struct sh_conn *c, const char *method, const char *body)
{
    if (strcmp(method, "POST") == 0) {
        json_error_t jerr;
        json_t *in = json_loads(body, 0, &jerr);
        struct sh_faults f = sh.faults;
        static const struct {
            const char *key;
            int max;
        } ints[] = {{"latency_ms", 60000}, {"stall_every_ms", 3600000}, {"stall_ms", 60000}};
        bool ok = json_is_object(in);
        for (size_t i = 0; ok && i < OSP_ARRAY_LEN(ints); i++) {
            const json_t *v = json_object_get(in, ints[i].key);
            if (v == NULL) {
                continue;
            }
            ok = json_is_integer(v) && json_integer_value(v) >= 0 &&
                 json_integer_value(v) <= ints[i].max;
            int x = ok ? (int)json_integer_value(v) : 0;
            if (i == 0) {
                f.latency_ms = x;
            } else if (i == 1) {
                f.stall_every_ms = x;
            } else {
                f.stall_ms = x;
            }
        }
        const json_t *er = json_object_get(in, "error_rate");
        if (ok && er != NULL) {
            ok = json_is_number(er) && json_number_value(er) >= 0 && json_number_value(er) <= 1;
            f.error_rate = json_number_value(er);
        }
        json_decref(in);
        if (!ok) {
            sh_error(c, 400, "expected {\"latency_ms\": 0..60000, \"error_rate\": 0..1, "
                             "\"stall_every_ms\": 0..3600000, \"stall_ms\": 0..60000}");
            return;
        }
        sh.faults = f;
        sh_faults_apply();
    } else if (strcmp(method, "GET") != 0) {
        sh_error(c, 405, "GET or POST");
        return;
    }
    sh_reply_json(c, 200, sh_faults_json());
}

/* Route one request; true when the response should wait for the latency fault. */
static bool sh_route(struct sh_conn *c, const char *method, const char *path, const char *body)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(path, "/health") == 0) {
        if (get) {
            sh_health(c);
        } else {
            sh_error(c, 405, "GET only");
        }
        return false;
    }
    if (strcmp(path, "/admin/faults") == 0) {
        sh_admin_faults(c, method, body);
        return false;
    }
    bool api = strncmp(path, "/r/", 3) == 0 || strncmp(path, "/api/", 5) == 0;
    if (api && sh.faults.error_rate > 0 && sh_rand01() < sh.faults.error_rate) {
        sh_error(c, 500, "injected fault");
        return sh.faults.latency_ms > 0;
    }
    if (strncmp(path, "/r/", 3) == 0 && get) {
        const char *code = path + 3;
        if (!sh_code_ok(code, strlen(code))) {
            sh_error(c, 404, "not found");
        } else {
            sh_redirect(c, code);
        }
    } else if (strcmp(path, "/api/urls") == 0 && strcmp(method, "POST") == 0) {
        sh_url_create(c, body);
    } else if (strncmp(path, "/api/urls/", 10) == 0 && get) {
        const char *code = path + 10;
        if (!sh_code_ok(code, strlen(code))) {
            sh_error(c, 404, "not found");
        } else {
            sh_url_get(c, code);
        }
    } else if (api || strcmp(path, "/api/urls") == 0) {
        sh_error(c, 405, "method not allowed");
    } else {
        sh_error(c, 404, "not found");
    }
    return api && sh.faults.latency_ms > 0;
}

/* ---- Connections ---- */

static void sh_conn_free(struct sh_conn *c)
{
    ev_io_stop(sh.loop, &c->io);
    ev_timer_stop(sh.loop, &c->delay);
    close(c->fd);
    osp_buf_deinit(&c->in);
    osp_buf_deinit(&c->out);
    free(c);
}

static void sh_watch(struct sh_conn *c, int events)
{
    if (c->io.events == events && ev_is_active(&c->io)) {
        return;
    }
    ev_io_stop(sh.loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    if (events != 0) {
        ev_io_start(sh.loop, &c->io);
    }
}

static void sh_process(struct sh_conn *c);

/* Write pending output. False when the connection was freed. */
static bool sh_flush_out(struct sh_conn *c)
{
    while (c->out.len > 0) {
        ssize_t w = write(c->fd, c->out.data, c->out.len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                sh_watch(c, EV_WRITE);
                return true;
            }
            sh_conn_free(c);
            return false;
        }
        osp_buf_consume(&c->out, (size_t)w);
    }
    if (c->close_after) {
        sh_conn_free(c);
        return false;
    }
    sh_watch(c, EV_READ);
    return true;
}

static void sh_on_delay(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sh_conn *c = osp_container_of(w, struct sh_conn, delay);
    c->delaying = false;
    if (sh_flush_out(c)) {
        sh_process(c);
    }
}

/* Handle every complete request in c->in, one at a time (responses in order). */
static void sh_process(struct sh_conn *c)
{
    while (!c->delaying && c->out.len == 0 && c->in.len > 0) {
        const char *s = osp_buf_cstr(&c->in);
        const char *end = strstr(s, "\r\n\r\n");
        if (end == NULL) {
            if (c->in.len > SH_MAX_HEAD) {
                c->close_after = true;
                sh_error(c, 413, "request head too large");
                sh_flush_out(c);
            }
            return;
        }
        size_t head_len = (size_t)(end - s) + 4;
        char method[16], target[SH_TARGET_MAX + 64], version[16];
        if (sscanf(s, "%15s %2111s %15s", method, target, version) != 3 ||
            strncmp(version, "HTTP/1.", 7) != 0) {
            c->close_after = true;
            sh_error(c, 400, "bad request line");
            sh_flush_out(c);
            return;
        }
        /* Headers we act on. */
        long long clen = 0;
        bool keep = strcmp(version, "HTTP/1.1") == 0;
        bool chunked = false;
        for (const char *h = strstr(s, "\r\n") + 2; h < end; h = strstr(h, "\r\n") + 2) {
            if (strncasecmp(h, "Content-Length:", 15) == 0) {
                clen = atoll(h + 15);
            } else if (strncasecmp(h, "Connection:", 11) == 0) {
                const char *v = h + 11;
                while (*v == ' ') {
                    v++;
                }
                if (strncasecmp(v, "close", 5) == 0) {
                    keep = false;
                } else if (strncasecmp(v, "keep-alive", 10) == 0) {
                    keep = true;
                }
            } else if (strncasecmp(h, "Transfer-Encoding:", 18) == 0) {
                chunked = true;
            }
        }
        c->close_after = !keep;
        if (chunked || clen < 0 || clen > SH_MAX_BODY) {
            c->close_after = true;
            sh_error(c, chunked ? 411 : 413, chunked ? "send a Content-Length" : "body too large");
            sh_flush_out(c);
            return;
        }
        if (c->in.len < head_len + (size_t)clen) {
            return; /* wait for the body */
        }
        char *body = osp_xstrndup(s + head_len, (size_t)clen);
        char *q = strchr(target, '?');
        if (q != NULL) {
            *q = '\0';
        }
        bool delay = sh_route(c, method, target, body);
        free(body);
        osp_buf_consume(&c->in, head_len + (size_t)clen);
        if (delay) {
            c->delaying = true;
            sh_watch(c, 0);
            ev_timer_set(&c->delay, sh.faults.latency_ms / 1000.0, 0.0);
            ev_timer_start(sh.loop, &c->delay);
            return;
        }
        if (!sh_flush_out(c)) {
            return;
        }
    }
}

static void sh_on_conn(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct sh_conn *c = osp_container_of(w, struct sh_conn, io);
    if (revents & EV_WRITE) {
        if (!sh_flush_out(c)) {
            return;
        }
    }
    if (revents & EV_READ) {
        char buf[16384];
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            sh_conn_free(c);
            return;
        }
        if (n > 0) {
            osp_buf_append(&c->in, buf, (size_t)n);
        }
    }
    sh_process(c);
}

static void sh_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    for (;;) {
        int fd = accept(w->fd, NULL, NULL);
        if (fd < 0) {
            return;
        }
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct sh_conn *c = osp_xcalloc(1, sizeof(*c));
        c->fd = fd;
        ev_io_init(&c->io, sh_on_conn, fd, EV_READ);
        ev_init(&c->delay, sh_on_delay);
        ev_io_start(loop, &c->io);
    }
}

static void sh_on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* ---- Start-up ---- */

static int sh_env_int(const char *name, int dflt, int lo, int hi)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        return dflt;
    }
    char *end;
    long x = strtol(v, &end, 10);
    if (*end != '\0' || x < lo || x > hi) {
        fprintf(stderr, "shortener: %s must be an integer %d..%d\n", name, lo, hi);
        exit(2);
    }
    return (int)x;
}

static int sh_listen(const char *addr)
{
    char host[256], port[8];
    if (osp_http_split_addr(addr, host, sizeof(host), port, sizeof(port)) != 0 ||
        host[0] == '\0') {
        fprintf(stderr, "shortener: SHORTENER_ADDR must be host:port with a port 0..65535\n");
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
        fprintf(stderr, "shortener: SHORTENER_ADDR: a numeric host:port, e.g. 127.0.0.1:8080\n");
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    int one = 1;
    if (fd >= 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
        fprintf(stderr, "shortener: listen on %s: %s\n", addr, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

/* Every setting, for --help and --print-config. */
static const struct {
    const char *name, *dflt, *help;
    bool secret;
} sh_settings[] = {
    {"SHORTENER_ADDR", "127.0.0.1:8080", "host:port to listen on (port 0 = any free port)", false},
    {"SHORTENER_PORT_FILE", "", "file the bound port is written to once listening", false},
    {"SHORTENER_PG_DSN", "", "PostgreSQL connection string (required)", true},
    {"SHORTENER_REDIS_URL", "", "redis://host:port or unix:///path; empty = no cache", false},
    {"SHORTENER_REDIS_PREFIX", "shortener:", "prefix of the cache keys", false},
    {"SHORTENER_SCHEMA", "", "schema file to apply instead of the embedded one", false},
    {"SHORTENER_PIDFILE", "", "file the pid is written to", false},
    {"SHORTENER_CACHE_TTL_S", "300", "cache entry lifetime, s [1..86400]", false},
    {"SHORTENER_LATENCY_MS", "0", "fault: delay every /r and /api reply, ms [0..60000]", false},
    {"SHORTENER_ERROR_RATE", "0", "fault: fraction of /r and /api replies that are 500 [0..1]",
     false},
    {"SHORTENER_STALL_EVERY_MS", "0", "fault: freeze the process this often, ms (0 = never)",
     false},
    {"SHORTENER_STALL_MS", "0", "fault: for this long, ms [0..60000]", false},
};

static void sh_help(FILE *out)
{
    fputs("usage: opspool-shortener [--help] [--print-config]\n"
          "\n"
          "The reference workload of the opspool lab: a URL shortener on PostgreSQL with a\n"
          "Redis read cache (GET /health, POST /api/urls, GET /api/urls/CODE, GET /r/CODE,\n"
          "GET|POST /admin/faults).\n"
          "\nSettings (environment):\n",
          out);
    for (size_t i = 0; i < OSP_ARRAY_LEN(sh_settings); i++) {
        fprintf(out, "  %-26s %s (default: \"%s\")\n", sh_settings[i].name, sh_settings[i].help,
                sh_settings[i].dflt);
    }
}

static void sh_print_config(FILE *out)
{
    for (size_t i = 0; i < OSP_ARRAY_LEN(sh_settings); i++) {
        const char *v = getenv(sh_settings[i].name);
        if (v == NULL || v[0] == '\0') {
            v = sh_settings[i].dflt;
        }
        if (sh_settings[i].secret) {
            v = v[0] != '\0' ? "<redacted>" : "<unset>";
        }
        fprintf(out, "%s=%s\n", sh_settings[i].name, v);
    }
}

/* The port a listening socket is bound to. */
static unsigned sh_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            sh_help(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--print-config") == 0) {
            sh_print_config(stdout);
            return 0;
        }
        fprintf(stderr, "opspool-shortener: unknown argument %s\n", argv[i]);
        sh_help(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *addr = getenv("SHORTENER_ADDR") != NULL ? getenv("SHORTENER_ADDR")
                                                        : "127.0.0.1:8080";
    sh.pg_dsn = getenv("SHORTENER_PG_DSN");
    sh.redis_url = getenv("SHORTENER_REDIS_URL");
    if (sh.redis_url != NULL && sh.redis_url[0] == '\0') {
        sh.redis_url = NULL;
    }
    sh.schema_path = getenv("SHORTENER_SCHEMA");
    sh.redis_prefix = getenv("SHORTENER_REDIS_PREFIX") != NULL ? getenv("SHORTENER_REDIS_PREFIX")
                                                               : "shortener:";
    if (sh.pg_dsn == NULL || sh.pg_dsn[0] == '\0') {
        fprintf(stderr, "shortener: SHORTENER_PG_DSN is required\n");
        return 2;
    }
    sh.cache_ttl_s = sh_env_int("SHORTENER_CACHE_TTL_S", 300, 1, 86400);
    sh.faults.latency_ms = sh_env_int("SHORTENER_LATENCY_MS", 0, 0, 60000);
    sh.faults.stall_every_ms = sh_env_int("SHORTENER_STALL_EVERY_MS", 0, 0, 3600000);
    sh.faults.stall_ms = sh_env_int("SHORTENER_STALL_MS", 0, 0, 60000);
    const char *er = getenv("SHORTENER_ERROR_RATE");
    if (er != NULL && *er != '\0') {
        char *end;
        sh.faults.error_rate = strtod(er, &end);
        if (*end != '\0' || !(sh.faults.error_rate >= 0 && sh.faults.error_rate <= 1)) {
            fprintf(stderr, "shortener: SHORTENER_ERROR_RATE must be 0..1\n");
            return 2;
        }
    }
    sh.rng = (uint64_t)osp_mono_ns();
    /* Port 0 with a port file that already names a port: a restart (under a supervisor)
     * takes the port its first start was given, so the service keeps its address. */
    const char *port_file = getenv("SHORTENER_PORT_FILE");
    char sticky[300];
    unsigned prev = 0;
    FILE *pf = port_file != NULL && port_file[0] != '\0' ? fopen(port_file, "re") : NULL;
    if (pf != NULL) {
        if (fscanf(pf, "%u", &prev) != 1 || prev > 65535) {
            prev = 0;
        }
        fclose(pf);
    }
    size_t alen = strlen(addr);
    if (prev != 0 && alen >= 2 && strcmp(addr + alen - 2, ":0") == 0) {
        snprintf(sticky, sizeof(sticky), "%.*s:%u", (int)(alen - 2), addr, prev);
        addr = sticky;
    }
    int lfd = sh_listen(addr);
    if (lfd < 0) {
        return 1;
    }
    /* Schema first, so a broken DSN is visible at start; the service still starts (and
     * answers 503 on /health) when PostgreSQL is not reachable yet. */
    if (!sh_pg_ok()) {
        fprintf(stderr, "shortener: postgres not reachable yet; /health answers 503\n");
    }
    const char *pidfile = getenv("SHORTENER_PIDFILE");
    if (pidfile != NULL && *pidfile != '\0') {
        FILE *f = fopen(pidfile, "we");
        if (f == NULL) {
            fprintf(stderr, "shortener: %s: %s\n", pidfile, strerror(errno));
            return 1;
        }
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
    }
    sh.loop = EV_DEFAULT;
    ev_io accept_w;
    ev_io_init(&accept_w, sh_on_accept, lfd, EV_READ);
    ev_io_start(sh.loop, &accept_w);
    ev_init(&sh.stall, sh_on_stall);
    sh_faults_apply();
    ev_timer_init(&sh.flush, sh_on_flush, 1.0, 1.0);
    ev_timer_start(sh.loop, &sh.flush);
    ev_signal sigterm, sigint;
    ev_signal_init(&sigterm, sh_on_signal, SIGTERM);
    ev_signal_init(&sigint, sh_on_signal, SIGINT);
    ev_signal_start(sh.loop, &sigterm);
    ev_signal_start(sh.loop, &sigint);
    unsigned bound = sh_bound_port(lfd);
    struct osp_err perr = {0, ""};
    if (osp_http_write_port_file(port_file, bound, &perr) != 0) {
        fprintf(stderr, "shortener: %s\n", perr.msg);
        return 1;
    }
    fprintf(stderr, "shortener: listening on %s (port %u)\n", addr, bound);
    ev_run(sh.loop, 0);

    sh_hits_flush();
    close(lfd);
    if (pidfile != NULL && *pidfile != '\0') {
        unlink(pidfile);
    }
    if (sh.redis != NULL) {
        redisFree(sh.redis);
    }
    PQfinish(sh.pg);
    return 0;
}
