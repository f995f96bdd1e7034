/* SPDX-License-Identifier: MIT */
/* spec.c — the benchmark kind's payload (jobs/benchmark/spec.h): field helpers that name the
 * field in each message, lanes and presets, thresholds, and the kind's validator. The
 * payload's reference is docs/benchmark-jobs.md. */
#include "jobs/benchmark/spec.h"
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/benchmark/scale.h"
#include "jobs/job.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void bench_lane_deinit(struct bench_lane *l)
{
    for (size_t i = 0; i < BENCH_MAX_MIX; i++) {
        free(l->owned_headers[i]);
        free(l->owned_bodies[i]);
    }
    memset(l, 0, sizeof(*l));
}

/* ---- Field helpers: each names the field in its message ---- */

static int bench_check_keys(const json_t *obj, const char *const *keys, const char *where,
                            struct osp_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)obj, key, v)
    {
        bool known = false;
        for (size_t i = 0; keys[i] != NULL && !known; i++) {
            known = strcmp(key, keys[i]) == 0;
        }
        if (!known) {
            return osp_err_set(err, OSP_EINVAL, "%s.%.64s: unknown field", where, key);
        }
    }
    return 0;
}

static int bench_get_num(const json_t *obj, const char *key, double lo, double hi, bool lo_open,
                         double dflt, double *out, const char *where, struct osp_err *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    double x = json_number_value(v);
    if (!json_is_number(v) || !isfinite(x) || x < lo || (lo_open && x == lo) || x > hi) {
        return osp_err_set(err, OSP_EINVAL, "%s.%s: must be a number %s%g..%g", where, key,
                           lo_open ? "> " : "", lo, hi);
    }
    *out = x;
    return 0;
}

static int bench_get_int(const json_t *obj, const char *key, long long lo, long long hi,
                         long long dflt, long long *out, const char *where, struct osp_err *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        return osp_err_set(err, OSP_EINVAL, "%s.%s: must be an integer %lld..%lld", where, key, lo,
                           hi);
    }
    *out = (long long)json_integer_value(v);
    return 0;
}

/* String field; NULL when absent (then *out = dflt). */
static int bench_get_str(const json_t *obj, const char *key, size_t maxlen, const char *dflt,
                         const char **out, const char *where, struct osp_err *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > maxlen) {
        return osp_err_set(err, OSP_EINVAL, "%s.%s: must be a string of 1..%zu characters", where,
                           key, maxlen);
    }
    *out = json_string_value(v);
    return 0;
}

static bool bench_is_name(const char *s)
{
    return osp_name_is_valid(s, 64);
}

/* RFC 9110 token characters (header names, methods). */
static bool bench_is_token(const char *s, size_t maxlen)
{
    size_t n = strlen(s);
    if (n < 1 || n > maxlen) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL)) {
            return false;
        }
    }
    return true;
}

static int bench_parse_thresholds(const json_t *arr, const char *where, struct bench_threshold *thr,
                                  size_t *n, struct osp_err *err)
{
    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr)) {
        return osp_err_set(err, OSP_EINVAL, "%s: must be an array of strings like \"p95<300ms\"",
                           where);
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (*n >= BENCH_MAX_THRESHOLDS) {
            return osp_err_set(err, OSP_EINVAL, "%s: at most %d thresholds per lane", where,
                               BENCH_MAX_THRESHOLDS);
        }
        if (!json_is_string(v)) {
            return osp_err_set(err, OSP_EINVAL, "%s[%zu]: must be a string like \"p95<300ms\"",
                               where, i);
        }
        struct osp_err e = {0};
        if (bench_threshold_parse(json_string_value(v), &thr[*n], &e) != 0) {
            return osp_err_set(err, OSP_EINVAL, "%s[%zu] \"%.64s\": %s", where, i,
                               json_string_value(v), e.msg);
        }
        (*n)++;
    }
    return 0;
}

/* ---- Lanes ---- */

static int bench_mix_parse(const json_t *item, const char *where, struct bench_lane *l, size_t idx,
                           bool *uses_key, struct osp_err *err)
{
    static const char *const keys[] = {"method", "path", "weight", "headers", "body", NULL};
    struct bench_mix_item *m = &l->mix[idx];
    if (!json_is_object(item)) {
        return osp_err_set(err, OSP_EINVAL, "%s: must be an object", where);
    }
    int rc = bench_check_keys(item, keys, where, err);
    if (rc != 0) {
        return rc;
    }
    rc = bench_get_str(item, "method", 16, "GET", &m->method, where, err);
    if (rc != 0) {
        return rc;
    }
    for (const char *p = m->method; *p != '\0'; p++) {
        if (*p < 'A' || *p > 'Z') {
            return osp_err_set(err, OSP_EINVAL, "%s.method: must be upper-case letters (GET)",
                               where);
        }
    }
    rc = bench_get_str(item, "path", BENCH_MAX_PATH, NULL, &m->path, where, err);
    if (rc != 0) {
        return rc;
    }
    if (m->path == NULL || m->path[0] != '/') {
        return osp_err_set(err, OSP_EINVAL, "%s.path: required, must start with \"/\"", where);
    }
    for (const char *p = m->path; *p != '\0'; p++) {
        if (*p == '{' && strncmp(p, "{key}", 5) == 0) {
            *uses_key = true;
            p += 4;
            continue;
        }
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '{' || *p == '}') {
            return osp_err_set(err, OSP_EINVAL,
                               "%s.path: printable ASCII without spaces; the only placeholder "
                               "is {key}",
                               where);
        }
    }
    long long w = 0;
    rc = bench_get_int(item, "weight", 1, BENCH_MAX_WEIGHT, 1, &w, where, err);
    if (rc != 0) {
        return rc;
    }
    m->weight = (unsigned)w;

    const json_t *hdrs = json_object_get(item, "headers");
    bool has_ctype = false;
    char *h = osp_xstrdup("");
    if (hdrs != NULL) {
        if (!json_is_object(hdrs) || json_object_size(hdrs) > BENCH_MAX_HEADERS) {
            free(h);
            return osp_err_set(err, OSP_EINVAL,
                               "%s.headers: must be an object of at most %d \"Name\": \"value\"",
                               where, BENCH_MAX_HEADERS);
        }
        const char *name;
        json_t *v;
        json_object_foreach((json_t *)(uintptr_t)hdrs, name, v)
        {
            static const char *const reserved[] = {"host", "content-length", "transfer-encoding",
                                                   "connection", NULL};
            bool bad = !bench_is_token(name, 64);
            for (size_t r = 0; reserved[r] != NULL && !bad; r++) {
                bad = strcasecmp(name, reserved[r]) == 0;
            }
            const char *val = json_is_string(v) ? json_string_value(v) : NULL;
            bool bad_val = val == NULL || strlen(val) > BENCH_MAX_HEADER_VALUE;
            for (const char *p = val; !bad_val && *p != '\0'; p++) {
                bad_val = (unsigned char)*p < 0x20 && *p != '\t';
            }
            if (bad || bad_val) {
                free(h);
                return osp_err_set(err, OSP_EINVAL, "%s.headers.%.64s: %s", where, name,
                                   bad ? "not an allowed header name (Host, Content-Length, "
                                         "Transfer-Encoding and Connection are set by the "
                                         "engine)"
                                       : "value must be a string without control characters");
            }
            has_ctype = has_ctype || strcasecmp(name, "content-type") == 0;
            char *nh = osp_xasprintf("%s%s: %s\r\n", h, name, val);
            free(h);
            h = nh;
        }
    }
    const json_t *body = json_object_get(item, "body");
    if (body != NULL) {
        char *b;
        if (json_is_string(body)) {
            b = osp_xstrndup(json_string_value(body), json_string_length(body));
            m->body_len = json_string_length(body);
        } else if (json_is_object(body) || json_is_array(body)) {
            b = json_dumps(body, JSON_COMPACT);
            OSP_ASSERT(b != NULL);
            m->body_len = strlen(b);
            if (!has_ctype) {
                char *nh = osp_xasprintf("%sContent-Type: application/json\r\n", h);
                free(h);
                h = nh;
            }
        } else {
            free(h);
            return osp_err_set(err, OSP_EINVAL, "%s.body: must be a string or a JSON object/array",
                               where);
        }
        l->owned_bodies[idx] = b;
        m->body = b;
        if (m->body_len > BENCH_MAX_BODY) {
            free(h);
            return osp_err_set(err, OSP_EINVAL, "%s.body: at most %d bytes", where, BENCH_MAX_BODY);
        }
    }
    l->owned_headers[idx] = h;
    m->headers = h;
    return 0;
}

/* Parse and check one lane object. name_from_preset is the preset's name when the lane came
 * from the target's "lanes" object (then "name" is optional). */
static int bench_lane_parse(const json_t *o, const char *where, const char *name_from_preset,
                            const struct bench_common *cm, struct bench_lane *l,
                            struct osp_err *err)
{
    static const char *const keys[] = {"name",
                                       "model",
                                       "connections",
                                       "rate",
                                       "duration_s",
                                       "requests",
                                       "warmup_s",
                                       "requests_mix",
                                       "keys",
                                       "connect_timeout_ms",
                                       "read_timeout_ms",
                                       "thresholds",
                                       "min_achieved_ratio",
                                       "engines",
                                       "replicas",
                                       NULL};
    char sub[BENCH_WHERE_MAX + 48];
    memset(l, 0, sizeof(*l));
    if (!json_is_object(o)) {
        return osp_err_set(err, OSP_EINVAL, "%s: must be an object or a preset name", where);
    }
    int rc = bench_check_keys(o, keys, where, err);
    if (rc != 0) {
        return rc;
    }
    const char *name = NULL;
    rc = bench_get_str(o, "name", 64, name_from_preset, &name, where, err);
    if (rc != 0) {
        return rc;
    }
    if (name == NULL || !bench_is_name(name)) {
        return osp_err_set(err, OSP_EINVAL, "%s.name: required, [a-z0-9_-]{1,64}", where);
    }
    snprintf(l->name, sizeof(l->name), "%s", name);

    const char *model = NULL;
    rc = bench_get_str(o, "model", 16, "closed", &model, where, err);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(model, "closed") == 0) {
        l->model = BENCH_MODEL_CLOSED;
    } else if (strcmp(model, "open") == 0) {
        l->model = BENCH_MODEL_OPEN;
    } else {
        return osp_err_set(err, OSP_EINVAL, "%s.model: must be \"closed\" or \"open\"", where);
    }
    long long conns = 0, ct = 0, rt = 0, engines = 0, replicas = 0;
    if ((rc = bench_get_int(o, "connections", 1, BENCH_MAX_CONNECTIONS,
                            l->model == BENCH_MODEL_OPEN ? 64 : 10, &conns, where, err)) != 0 ||
        (rc = bench_get_num(o, "rate", 0, BENCH_MAX_RATE, true, 0, &l->rate, where, err)) != 0 ||
        (rc = bench_get_num(o, "duration_s", 0, BENCH_MAX_DURATION_S, true, 0, &l->duration_s,
                            where, err)) != 0 ||
        (rc = bench_get_int(o, "requests", 1, BENCH_MAX_REQUESTS, 0, &l->requests, where, err)) !=
            0 ||
        (rc = bench_get_num(o, "warmup_s", 0, BENCH_MAX_WARMUP_S, false, 0, &l->warmup_s, where,
                            err)) != 0 ||
        (rc = bench_get_int(o, "connect_timeout_ms", 1, 60000, 2000, &ct, where, err)) != 0 ||
        (rc = bench_get_int(o, "read_timeout_ms", 1, 600000, 10000, &rt, where, err)) != 0 ||
        (rc = bench_get_num(o, "min_achieved_ratio", 0, 1, false, BENCH_MIN_ACHIEVED_RATIO,
                            &l->min_achieved_ratio, where, err)) != 0 ||
        (rc = bench_get_int(o, "engines", 1, BENCH_MAX_ENGINES, 0, &engines, where, err)) != 0 ||
        (rc = bench_get_int(o, "replicas", 1, BENCH_MAX_REPLICAS, 0, &replicas, where, err)) != 0) {
        return rc;
    }
    l->replicas = (unsigned)replicas;
    l->engines = (unsigned)engines;
    l->connections = (unsigned)conns;
    l->connect_timeout_ms = (unsigned)ct;
    l->read_timeout_ms = (unsigned)rt;
    if (l->model == BENCH_MODEL_OPEN && json_object_get(o, "rate") == NULL) {
        return osp_err_set(err, OSP_EINVAL, "%s.rate: required for the open model (requests/s)",
                           where);
    }
    if (l->model == BENCH_MODEL_CLOSED && json_object_get(o, "min_achieved_ratio") != NULL) {
        return osp_err_set(err, OSP_EINVAL,
                           "%s.min_achieved_ratio: only for the open model (the closed model "
                           "has no schedule to keep)",
                           where);
    }
    if (l->model == BENCH_MODEL_CLOSED && json_object_get(o, "rate") != NULL) {
        return osp_err_set(err, OSP_EINVAL,
                           "%s.rate: only for the open model (the closed model runs as fast as "
                           "its connections allow)",
                           where);
    }
    if (l->duration_s == 0 && l->requests == 0) {
        return osp_err_set(err, OSP_EINVAL, "%s: set duration_s and/or requests", where);
    }
    if (l->replicas > 0 && l->connections < l->replicas) {
        /* Balancing is per connection (the local balancer, a Service): fewer connections than
         * replicas would leave replicas idle and the efficiency meaningless. */
        return osp_err_set(err, OSP_EINVAL,
                           "%s.replicas: %u replicas need at least %u connections (the load is "
                           "balanced per connection; this lane has %u)",
                           where, l->replicas, l->replicas, l->connections);
    }
    if (l->replicas > 0 && cm->target != NULL) {
        struct osp_err e = {0};
        if (bench_scale_check_target(cm->target, &e) != 0) {
            return osp_err_set(err, OSP_EINVAL,
                               "%s.replicas: target \"%s\" cannot run scale-out lanes: %s", where,
                               cm->target_name, e.msg);
        }
    }

    /* Request mix: default is GET of the target's health path. */
    bool uses_key = false;
    const json_t *mix = json_object_get(o, "requests_mix");
    if (mix == NULL) {
        l->mix[0].method = "GET";
        l->mix[0].path = cm->health_path;
        l->mix[0].weight = 1;
        l->owned_headers[0] = osp_xstrdup("");
        l->mix[0].headers = l->owned_headers[0];
        l->nmix = 1;
    } else {
        if (!json_is_array(mix) || json_array_size(mix) < 1 ||
            json_array_size(mix) > BENCH_MAX_MIX) {
            return osp_err_set(err, OSP_EINVAL,
                               "%s.requests_mix: must be an array of 1..%d "
                               "requests",
                               where, BENCH_MAX_MIX);
        }
        size_t i;
        json_t *item;
        json_array_foreach(mix, i, item)
        {
            snprintf(sub, sizeof(sub), "%s.requests_mix[%zu]", where, i);
            rc = bench_mix_parse(item, sub, l, i, &uses_key, err);
            if (rc != 0) {
                return rc;
            }
            l->nmix = i + 1;
        }
    }

    const json_t *k = json_object_get(o, "keys");
    l->key_count = 1;
    l->zipf_s = 1.1;
    if (k != NULL) {
        static const char *const kkeys[] = {"count", "dist", "s", NULL};
        snprintf(sub, sizeof(sub), "%s.keys", where);
        if (!json_is_object(k)) {
            return osp_err_set(err, OSP_EINVAL, "%s: must be an object {count, dist, s}", sub);
        }
        const char *dist = NULL;
        if ((rc = bench_check_keys(k, kkeys, sub, err)) != 0 ||
            (rc = bench_get_int(k, "count", 1, BENCH_MAX_KEYS, 0, &l->key_count, sub, err)) != 0 ||
            (rc = bench_get_str(k, "dist", 16, "uniform", &dist, sub, err)) != 0 ||
            (rc = bench_get_num(k, "s", 0, 10, true, 1.1, &l->zipf_s, sub, err)) != 0) {
            return rc;
        }
        if (json_object_get(k, "count") == NULL) {
            return osp_err_set(err, OSP_EINVAL, "%s.count: required (keys 1..count)", sub);
        }
        if (strcmp(dist, "zipf") == 0) {
            l->zipf = true;
        } else if (strcmp(dist, "uniform") != 0) {
            return osp_err_set(err, OSP_EINVAL, "%s.dist: must be \"uniform\" or \"zipf\"", sub);
        }
    } else if (uses_key) {
        return osp_err_set(err, OSP_EINVAL, "%s.keys: required when a path uses {key}", where);
    }

    memcpy(l->thr, cm->thr, cm->nthr * sizeof(cm->thr[0]));
    l->nthr = cm->nthr;
    snprintf(sub, sizeof(sub), "%s.thresholds", where);
    return bench_parse_thresholds(json_object_get(o, "thresholds"), sub, l->thr, &l->nthr, err);
}

/* Resolve lanes[i] (object or preset name) and parse it. */
int bench_lane_at(const json_t *lanes, size_t i, const struct bench_common *cm,
                  struct bench_lane *l, struct osp_err *err)
{
    char where[BENCH_WHERE_MAX];
    const json_t *v = json_array_get(lanes, i);
    if (json_is_string(v)) {
        const char *preset = json_string_value(v);
        if (!bench_is_name(preset)) {
            return osp_err_set(err, OSP_EINVAL,
                               "payload.lanes[%zu]: preset name must match "
                               "[a-z0-9_-]{1,64}",
                               i);
        }
        if (cm->target == NULL) {
            /* No targets file at hand (scheduler): the worker checks the preset. */
            memset(l, 0, sizeof(*l));
            snprintf(l->name, sizeof(l->name), "%s", preset);
            return 0;
        }
        const json_t *presets = json_object_get(cm->target, "lanes");
        const json_t *p = json_is_object(presets) ? json_object_get(presets, preset) : NULL;
        if (p == NULL) {
            return osp_err_set(err, OSP_EINVAL,
                               "payload.lanes[%zu]: target \"%s\" has no lane preset \"%s\"", i,
                               cm->target_name, preset);
        }
        snprintf(where, sizeof(where), "target \"%.40s\" lanes.%.64s", cm->target_name, preset);
        return bench_lane_parse(p, where, preset, cm, l, err);
    }
    snprintf(where, sizeof(where), "payload.lanes[%zu]", i);
    return bench_lane_parse(v, where, NULL, cm, l, err);
}

/* Check everything but the lanes' contents; fill cm. */
int bench_common_parse(const json_t *p, const struct osp_targets *targets, struct bench_common *cm,
                       struct osp_err *err)
{
    static const char *const keys[] = {"target",          "lanes", "thresholds", "cache_header",
                                       "cache_hit_value", "seed",  NULL};
    memset(cm, 0, sizeof(*cm));
    if (!json_is_object(p)) {
        return osp_err_set(err, OSP_EINVAL, "payload: must be an object");
    }
    int rc = bench_check_keys(p, keys, "payload", err);
    if (rc != 0) {
        return rc;
    }
    if ((rc = bench_get_str(p, "target", 64, NULL, &cm->target_name, "payload", err)) != 0) {
        return rc;
    }
    if (cm->target_name == NULL) {
        return osp_err_set(err, OSP_EINVAL,
                           "payload.target: required (a name from the targets "
                           "file)");
    }
    cm->health_path = "/";
    if (targets != NULL) {
        cm->target = osp_target_get(targets, cm->target_name);
        if (cm->target == NULL) {
            return osp_err_set(err, OSP_EINVAL, "payload.target: unknown target \"%s\"",
                               cm->target_name);
        }
        const char *base = osp_target_str(cm->target, "base_url");
        if (base == NULL || strncmp(base, "http://", 7) != 0) {
            return osp_err_set(err, OSP_EINVAL,
                               "payload.target: target \"%s\" has no http:// "
                               "base_url",
                               cm->target_name);
        }
        const char *hp = osp_target_str(cm->target, "health_path");
        if (hp != NULL && hp[0] == '/' && strlen(hp) <= BENCH_MAX_PATH &&
            strpbrk(hp, " {}\r\n\t") == NULL) {
            cm->health_path = hp;
        }
    }
    if ((rc = bench_get_str(p, "cache_header", 64, "X-Cache", &cm->cache_header, "payload", err)) !=
            0 ||
        (rc = bench_get_str(p, "cache_hit_value", 64, "HIT", &cm->cache_hit_value, "payload",
                            err)) != 0 ||
        (rc = bench_get_int(p, "seed", 0, 9007199254740991LL, 1, &cm->seed, "payload", err)) != 0) {
        return rc;
    }
    if (!bench_is_token(cm->cache_header, 64)) {
        return osp_err_set(err, OSP_EINVAL, "payload.cache_header: must be a header name");
    }
    for (const char *c = cm->cache_hit_value; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e) {
            return osp_err_set(err, OSP_EINVAL, "payload.cache_hit_value: printable ASCII only");
        }
    }
    const json_t *lanes = json_object_get(p, "lanes");
    if (!json_is_array(lanes) || json_array_size(lanes) < 1 ||
        json_array_size(lanes) > BENCH_MAX_LANES) {
        return osp_err_set(err, OSP_EINVAL,
                           "payload.lanes: required, an array of 1..%d lanes "
                           "(objects or preset names)",
                           BENCH_MAX_LANES);
    }
    return bench_parse_thresholds(json_object_get(p, "thresholds"), "payload.thresholds", cm->thr,
                                  &cm->nthr, err);
}

int bench_validate(const json_t *p, const struct osp_targets *targets, struct osp_err *err)
{
    struct bench_common cm;
    int rc = bench_common_parse(p, targets, &cm, err);
    if (rc != 0) {
        return rc;
    }
    const json_t *lanes = json_object_get(p, "lanes");
    char names[BENCH_MAX_LANES][65];
    double total_s = 0;
    for (size_t i = 0; i < json_array_size(lanes); i++) {
        struct bench_lane *l = osp_xcalloc(1, sizeof(*l));
        rc = bench_lane_at(lanes, i, &cm, l, err);
        if (rc == 0) {
            for (size_t j = 0; j < i; j++) {
                if (strcmp(names[j], l->name) == 0) {
                    rc = osp_err_set(err, OSP_EINVAL,
                                     "payload.lanes[%zu]: lane name \"%s\" is "
                                     "used twice",
                                     i, l->name);
                }
            }
            memcpy(names[i], l->name, sizeof(names[i]));
            total_s += l->warmup_s + l->duration_s;
        }
        bench_lane_deinit(l);
        free(l);
        if (rc != 0) {
            return rc;
        }
    }
    if (total_s > BENCH_MAX_TOTAL_S) {
        return osp_err_set(err, OSP_EINVAL,
                           "payload.lanes: warmup_s + duration_s of all lanes "
                           "add up to %.0f s, more than %.0f s",
                           total_s, BENCH_MAX_TOTAL_S);
    }
    return 0;
}

bool bench_payload_scales(const json_t *p, const struct osp_targets *targets)
{
    const json_t *target = osp_target_get(targets, json_string_value(json_object_get(p, "target")));
    const json_t *presets = json_object_get(target, "lanes");
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(p, "lanes"), i, v)
    {
        const json_t *lane = json_is_string(v) ? json_object_get(presets, json_string_value(v)) : v;
        if (json_object_get(lane, "replicas") != NULL) {
            return true;
        }
    }
    return false;
}
