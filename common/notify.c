/* SPDX-License-Identifier: MIT */
/* notify.c — the endpoints file, notification bodies, signatures and backoff (contract:
 * common/notify.h). */
#include "common/notify.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/envelope.h"
#include "common/hmac.h"

#include <math.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const osp_notify_event_types[] = {
    "job.dead",      "drill.failed",    "benchmark.regressed", "backup.failed",
    "backup.missed", "schedule.missed", "campaign.finished",
};
const size_t osp_notify_nevent_types = OSP_ARRAY_LEN(osp_notify_event_types);

#define NOTIFY_SUMMARY_ERR_MAX 300 /* characters of a job's error quoted in a summary */

static int event_index(const char *type)
{
    for (size_t i = 0; i < osp_notify_nevent_types; i++) {
        if (strcmp(type, osp_notify_event_types[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

bool osp_notify_event_known(const char *type)
{
    return type != NULL && event_index(type) >= 0;
}

static void endpoint_wipe(struct osp_notify_endpoint *e)
{
    if (e->secret != NULL) {
        OPENSSL_cleanse(e->secret, e->secret_len);
        free(e->secret);
    }
    if (e->url != NULL) {
        OPENSSL_cleanse(e->url, strlen(e->url));
        free(e->url);
    }
    memset(e, 0, sizeof(*e));
}

void osp_notify_config_deinit(struct osp_notify_config *c)
{
    for (size_t i = 0; i < c->n; i++) {
        endpoint_wipe(&c->ep[i]);
    }
    c->n = 0;
}

/* An integer field within [lo, hi], dflt when absent. */
static int int_field(const json_t *o, const char *key, int dflt, int lo, int hi, const char *name,
                     int *out, struct osp_err *err)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        return osp_err_set(err, OSP_EINVAL, "endpoint \"%s\": %s: an integer %d..%d", name, key, lo,
                           hi);
    }
    *out = (int)json_integer_value(v);
    return 0;
}

static bool url_ok(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > OSP_NOTIFY_URL_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)u[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            return false; /* no spaces, controls or raw non-ASCII: percent-encode them */
        }
    }
    const char *rest = strncmp(u, "https://", 8) == 0  ? u + 8
                       : strncmp(u, "http://", 7) == 0 ? u + 7
                                                       : NULL;
    return rest != NULL && rest[0] != '\0' && rest[0] != '/';
}

static int parse_endpoint(struct osp_notify_endpoint *e, const char *name, json_t *o,
                          struct osp_err *err)
{
    static const char *const keys[] = {
        "url",          "url_file",      "secret_file",  "events",    "format", "timeout_ms",
        "max_attempts", "retry_base_ms", "retry_max_ms", "max_age_s", NULL};
    const char *k;
    const json_t *v;
    char var[OSP_NOTIFY_NAME_MAX + 48];

    if (!osp_name_is_valid(name, OSP_NOTIFY_NAME_MAX)) {
        return osp_err_set(err, OSP_EINVAL,
                           "endpoint \"%.64s\": the name must match "
                           "[a-z0-9_-]{1,64}",
                           name);
    }
    snprintf(e->name, sizeof(e->name), "%s", name);
    if (!json_is_object(o)) {
        return osp_err_set(err, OSP_EINVAL, "endpoint \"%s\": an object", name);
    }
    json_object_foreach(o, k, v)
    {
        bool known = false;
        for (size_t i = 0; keys[i] != NULL && !known; i++) {
            known = strcmp(k, keys[i]) == 0;
        }
        if (!known) {
            return osp_err_set(err, OSP_EINVAL, "endpoint \"%s\": unknown key \"%.64s\"", name, k);
        }
    }
    /* format */
    const json_t *fmt = json_object_get(o, "format");
    e->format = OSP_NOTIFY_JSON;
    if (fmt != NULL) {
        if (json_is_string(fmt) && strcmp(json_string_value(fmt), "slack") == 0) {
            e->format = OSP_NOTIFY_SLACK;
        } else if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "json") != 0) {
            return osp_err_set(err, OSP_EINVAL, "endpoint \"%s\": format: \"json\" or \"slack\"",
                               name);
        }
    }
    /* url or url_file, exactly one */
    const json_t *url = json_object_get(o, "url"), *url_file = json_object_get(o, "url_file");
    if ((url == NULL) == (url_file == NULL)) {
        return osp_err_set(err, OSP_EINVAL, "endpoint \"%s\": exactly one of url and url_file",
                           name);
    }
    if (url != NULL) {
        if (!json_is_string(url)) {
            return osp_err_set(err, OSP_EINVAL, "endpoint \"%s\": url: a string", name);
        }
        e->url = osp_xstrdup(json_string_value(url));
    } else {
        if (!json_is_string(url_file) || json_string_length(url_file) == 0) {
            return osp_err_set(err, OSP_EINVAL, "endpoint \"%s\": url_file: a path", name);
        }
        snprintf(var, sizeof(var), "endpoint \"%s\": url_file", name);
        e->url = osp_config_read_secret(var, json_string_value(url_file), err);
        if (e->url == NULL) {
            return OSP_EINVAL;
        }
    }
    if (!url_ok(e->url)) {
        /* The URL itself is not quoted: it may carry a token (Slack's do). */
        return osp_err_set(err, OSP_EINVAL,
                           "endpoint \"%s\": %s: an http:// or https:// URL "
                           "without spaces or control characters, at most %d bytes",
                           name, url != NULL ? "url" : "url_file's content", OSP_NOTIFY_URL_MAX);
    }
    /* secret_file: required for json (receivers must be able to verify), optional for slack */
    const json_t *sf = json_object_get(o, "secret_file");
    if (sf != NULL) {
        if (!json_is_string(sf) || json_string_length(sf) == 0) {
            return osp_err_set(err, OSP_EINVAL, "endpoint \"%s\": secret_file: a path", name);
        }
        snprintf(var, sizeof(var), "endpoint \"%s\": secret_file", name);
        e->secret = osp_config_read_secret(var, json_string_value(sf), err);
        if (e->secret == NULL) {
            return OSP_EINVAL;
        }
        e->secret_len = strlen(e->secret);
        if (e->secret_len < OSP_NOTIFY_SECRET_MIN || e->secret_len > OSP_NOTIFY_SECRET_MAX) {
            return osp_err_set(err, OSP_EINVAL,
                               "endpoint \"%s\": secret_file: the secret must be "
                               "%d..%d bytes (e.g. openssl rand -hex 32)",
                               name, OSP_NOTIFY_SECRET_MIN, OSP_NOTIFY_SECRET_MAX);
        }
    } else if (e->format == OSP_NOTIFY_JSON) {
        return osp_err_set(err, OSP_EINVAL,
                           "endpoint \"%s\": secret_file: required (receivers "
                           "verify the signature); only a slack endpoint may go unsigned",
                           name);
    }
    /* events */
    const json_t *ev = json_object_get(o, "events");
    if (!json_is_array(ev) || json_array_size(ev) == 0) {
        return osp_err_set(err, OSP_EINVAL,
                           "endpoint \"%s\": events: a non-empty list of event "
                           "types, or [\"*\"]",
                           name);
    }
    size_t i;
    json_array_foreach(ev, i, v)
    {
        const char *t = json_string_value(v);
        int ix = t != NULL ? event_index(t) : -1;
        if (t != NULL && strcmp(t, "*") == 0) {
            e->events |= (1u << osp_notify_nevent_types) - 1;
        } else if (ix < 0) {
            return osp_err_set(
                err, OSP_EINVAL,
                "endpoint \"%s\": events[%zu]: unknown event type "
                "\"%.64s\" (job.dead, drill.failed, benchmark.regressed, "
                "backup.failed, backup.missed, schedule.missed, campaign.finished, *)",
                name, i, t != NULL ? t : "(not a string)");
        } else {
            e->events |= 1u << ix;
        }
    }
    if (int_field(o, "timeout_ms", 5000, 100, 60000, name, &e->timeout_ms, err) != 0 ||
        int_field(o, "max_attempts", 8, 1, 100, name, &e->max_attempts, err) != 0 ||
        int_field(o, "retry_base_ms", 5000, 10, 3600000, name, &e->retry_base_ms, err) != 0 ||
        int_field(o, "retry_max_ms", 3600000, 10, 86400000, name, &e->retry_max_ms, err) != 0 ||
        int_field(o, "max_age_s", 86400, 1, 30 * 86400, name, &e->max_age_s, err) != 0) {
        return OSP_EINVAL;
    }
    if (e->retry_max_ms < e->retry_base_ms) {
        return osp_err_set(err, OSP_EINVAL, "endpoint \"%s\": retry_max_ms is below retry_base_ms",
                           name);
    }
    return 0;
}

int osp_notify_parse(struct osp_notify_config *c, const char *json_text, const char *path,
                     struct osp_err *err)
{
    json_error_t je;
    json_t *root = json_loads(json_text, JSON_REJECT_DUPLICATES, &je);
    const char *k;
    json_t *v;
    int rc = 0;

    memset(c, 0, sizeof(*c));
    if (root == NULL) {
        return osp_err_set(err, OSP_EINVAL, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    }
    json_t *eps = json_object_get(root, "endpoints");
    if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_object(eps)) {
        rc = osp_err_set(err, OSP_EINVAL,
                         "%s: {\"endpoints\": {\"<name>\": {...}}} and nothing "
                         "else",
                         path);
        goto out;
    }
    if (json_object_size(eps) > OSP_NOTIFY_MAX_ENDPOINTS) {
        rc = osp_err_set(err, OSP_EINVAL, "%s: at most %d endpoints", path,
                         OSP_NOTIFY_MAX_ENDPOINTS);
        goto out;
    }
    json_object_foreach(eps, k, v)
    {
        struct osp_notify_endpoint *e = &c->ep[c->n++];
        rc = parse_endpoint(e, k, v, err);
        if (rc != 0) {
            char msg[sizeof(err->msg)];
            snprintf(msg, sizeof(msg), "%s", err->msg);
            osp_err_set(err, OSP_EINVAL, "%s: %s", path, msg);
            goto out;
        }
    }
out:
    json_decref(root);
    if (rc != 0) {
        osp_notify_config_deinit(c);
    }
    return rc;
}

int osp_notify_load(struct osp_notify_config *c, const char *path, struct osp_err *err)
{
    char *text = osp_config_read_secret("OSP_NOTIFY_FILE", path, err);
    memset(c, 0, sizeof(*c));
    if (text == NULL) {
        return OSP_EINVAL;
    }
    int rc = osp_notify_parse(c, text, path, err);
    OPENSSL_cleanse(text, strlen(text)); /* it may hold URLs with tokens */
    free(text);
    return rc;
}

const struct osp_notify_endpoint *osp_notify_find(const struct osp_notify_config *c,
                                                  const char *name)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->ep[i].name, name) == 0) {
            return &c->ep[i];
        }
    }
    return NULL;
}

json_t *osp_notify_routes(const struct osp_notify_config *c)
{
    json_t *out = json_object();
    for (size_t i = 0; i < c->n; i++) {
        json_t *types = json_array();
        for (size_t t = 0; t < osp_notify_nevent_types; t++) {
            if (c->ep[i].events & (1u << t)) {
                json_array_append_new(types, json_string(osp_notify_event_types[t]));
            }
        }
        json_object_set_new(out, c->ep[i].name, types);
    }
    return out;
}

/* ---- bodies ---- */

static const char *str(const json_t *data, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(data, key));
    return v != NULL && v[0] != '\0' ? v : dflt;
}

/* " (kind, target t)" and ": error" parts of a job summary. */
static void job_bits(struct osp_buf *b, const json_t *data)
{
    const char *target = str(data, "target", NULL);
    osp_buf_appendf(b, " (%s%s%s)", str(data, "kind", "?"), target ? ", target " : "",
                    target ? target : "");
}

static void error_bit(struct osp_buf *b, const json_t *data)
{
    const char *e = str(data, "error", NULL);
    if (e != NULL) {
        int n = (int)strlen(e);
        osp_buf_appendf(b, ": %.*s%s", n > NOTIFY_SUMMARY_ERR_MAX ? NOTIFY_SUMMARY_ERR_MAX : n, e,
                        n > NOTIFY_SUMMARY_ERR_MAX ? "…" : "");
    }
}

char *osp_notify_summary(const char *type, const char *subject, json_t *data)
{
    struct osp_buf b = OSP_BUF_INIT;
    if (strcmp(type, "job.dead") == 0) {
        osp_buf_appendf(&b, "job %s", subject);
        job_bits(&b, data);
        osp_buf_appendf(&b, " is dead after %lld attempt(s)",
                        (long long)json_integer_value(json_object_get(data, "attempt")));
        error_bit(&b, data);
    } else if (strcmp(type, "drill.failed") == 0) {
        osp_buf_appendf(&b, "drill %s", subject);
        job_bits(&b, data);
        osp_buf_appendf(&b, " failed");
        error_bit(&b, data);
    } else if (strcmp(type, "backup.failed") == 0) {
        osp_buf_appendf(&b, "backup %s", subject);
        job_bits(&b, data);
        osp_buf_appendf(&b, " %s",
                        strcmp(str(data, "state", ""), "dead") == 0 ? "is dead" : "failed");
        error_bit(&b, data);
    } else if (strcmp(type, "benchmark.regressed") == 0) {
        osp_buf_appendf(&b, "benchmark %s (target %s, lane %s) regressed", subject,
                        str(data, "target", "?"), str(data, "lane", "?"));
        json_t *figs = json_object_get(data, "figures");
        const char *k;
        json_t *f;
        const char *sep = ": ";
        json_object_foreach(figs, k, f)
        {
            osp_buf_appendf(&b, "%s%s %.4g against a baseline of %.4g", sep, k,
                            json_number_value(json_object_get(f, "value")),
                            json_number_value(json_object_get(f, "baseline")));
            sep = ", ";
        }
    } else if (strcmp(type, "backup.missed") == 0) {
        osp_buf_appendf(&b, "backup schedule %s: the tick at %s was %s, no backup ran", subject,
                        str(data, "fire_at", "?"), str(data, "status", "missed"));
        const char *r = str(data, "reason", NULL);
        if (r != NULL) {
            osp_buf_appendf(&b, " (%.200s)", r);
        }
    } else if (strcmp(type, "schedule.missed") == 0) {
        osp_buf_appendf(&b, "schedule %s (%s) missed its tick at %s", subject,
                        str(data, "kind", "?"), str(data, "fire_at", "?"));
    } else if (strcmp(type, "campaign.finished") == 0) {
        osp_buf_appendf(&b, "campaign %s (%s) finished: %s", str(data, "name", "?"), subject,
                        str(data, "state", "?"));
    } else {
        osp_buf_appendf(&b, "%s: %s", type, subject);
    }
    char *out = osp_xstrdup(osp_buf_cstr(&b));
    osp_buf_deinit(&b);
    return out;
}

char *osp_notify_body(const struct osp_notify_endpoint *e, const struct osp_notify_delivery *d)
{
    json_t *data = json_loads(d->data != NULL ? d->data : "", 0, NULL);
    if (!json_is_object(data)) {
        json_decref(data);
        return NULL;
    }
    char *summary = osp_notify_summary(d->type, d->subject, data);
    json_t *body;
    if (e->format == OSP_NOTIFY_SLACK) {
        char *text = osp_xasprintf("opspool %s: %s", d->type, summary);
        body = json_pack("{s:s}", "text", text);
        free(text);
        json_decref(data);
    } else {
        body = json_pack("{s:s, s:s, s:s, s:I, s:i, s:s, s:s, s:s, s:o}", "schema",
                         "opspool.notification/v1", "id", d->id, "type", d->type, "event_id",
                         (json_int_t)strtoll(d->event_id, NULL, 10), "attempt", d->attempt,
                         "occurred_at", d->occurred_at, "subject", d->subject, "summary", summary,
                         "data", data);
    }
    free(summary);
    char *out = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(body);
    return out; /* NULL only when out of memory */
}

void osp_notify_sign(const struct osp_notify_endpoint *e, int64_t t, const char *body, size_t len,
                     char *out)
{
    char ts[24];
    int tn = snprintf(ts, sizeof(ts), "%lld", (long long)t);
    if (e->secret == NULL) {
        snprintf(out, OSP_NOTIFY_SIG_MAX, "t=%s", ts);
        return;
    }
    struct osp_buf m = OSP_BUF_INIT;
    osp_buf_append(&m, ts, (size_t)tn);
    osp_buf_append(&m, ".", 1);
    osp_buf_append(&m, body, len);
    uint8_t mac[OSP_HMAC_LEN];
    char hex[2 * OSP_HMAC_LEN + 1];
    osp_hmac_sha256(e->secret, e->secret_len, m.data, m.len, mac);
    osp_hex(mac, sizeof(mac), hex);
    osp_buf_deinit(&m);
    snprintf(out, OSP_NOTIFY_SIG_MAX, "t=%s,v1=%s", ts, hex);
}

int64_t osp_notify_backoff_ms(const struct osp_notify_endpoint *e, int n, double r)
{
    double d = (double)e->retry_base_ms * ldexp(1.0, n > 1 ? (n - 1 > 40 ? 40 : n - 1) : 0);
    if (d > e->retry_max_ms) {
        d = e->retry_max_ms;
    }
    return (int64_t)(d / 2 + r * d / 2);
}
