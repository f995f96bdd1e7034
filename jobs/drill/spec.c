/* SPDX-License-Identifier: MIT */
/* spec.c — drill payload validation and its resolution against the target.
 *
 * Validation is pure and shared by the scheduler (targets may be NULL: structure only) and the
 * worker (targets known: the target must exist, allow the fault, and the payload must fit the
 * target's limits). The run re-parses with targets, so limits are enforced where the fault is
 * applied even when the scheduler could not check them. Every error names the field. */
#include "common/base.h"
#include "jobs/drill/drill.h"
#include "jobs/drill/k8s.h"

#include <signal.h>
#include <string.h>

#define DRILL_MAX_DURATION_S 3600 /* no target may allow more, whatever its limits say */

const char *drill_fault_name(enum drill_fault_type f)
{
    switch (f) {
    case DRILL_FAULT_RESTART:
        return "restart";
    case DRILL_FAULT_CPU:
        return "cpu";
    case DRILL_FAULT_LATENCY:
        return "latency";
    }
    return "?";
}

/* ---- Field helpers ---- */

static int drill_known(const json_t *obj, const char *where, const char *const *keys,
                       struct osp_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)obj, key, v)
    {
        bool known = false;
        for (size_t i = 0; keys[i] != NULL; i++) {
            known = known || strcmp(key, keys[i]) == 0;
        }
        if (!known) {
            return osp_err_set(err, OSP_EINVAL, "%s.%.64s: unknown field", where, key);
        }
    }
    return 0;
}

/* An optional object member; absent gives NULL, which every jansson getter and the checks
 * here treat as an empty object. */
static int drill_obj(const json_t *parent, const char *key, const char *where, const json_t **out,
                     struct osp_err *err)
{
    const json_t *v = json_object_get(parent, key);
    *out = v;
    if (v != NULL && !json_is_object(v)) {
        return osp_err_set(err, OSP_EINVAL, "%s.%s: must be an object", where, key);
    }
    return 0;
}

static int drill_uint(const json_t *obj, const char *key, const char *where, long long lo,
                      long long hi, long long dflt, unsigned *out, struct osp_err *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        *out = (unsigned)dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        return osp_err_set(err, OSP_EINVAL, "%s.%s: must be an integer %lld..%lld", where, key, lo,
                           hi);
    }
    *out = (unsigned)json_integer_value(v);
    return 0;
}

static int drill_ratio(const json_t *obj, const char *key, const char *where, double dflt,
                       double *out, struct osp_err *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
        return osp_err_set(err, OSP_EINVAL, "%s.%s: must be a number 0..1", where, key);
    }
    *out = json_number_value(v);
    return 0;
}

static bool drill_path_ok(const char *p)
{
    if (p == NULL || p[0] != '/' || strlen(p) > 512) {
        return false;
    }
    for (const char *c = p; *c; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f) {
            return false; /* no spaces or control characters: they would split the request */
        }
    }
    return true;
}

/* ---- Payload sections ---- */

static int drill_parse_fault(const json_t *f, struct drill_spec *s, struct osp_err *err)
{
    static const char *const keys[] = {"type",   "duration_s",     "signal",          "pods",
                                       "method", "grace_period_s", "evict_timeout_s", "workers",
                                       "load",   "latency_ms",     "jitter_ms",       NULL};
    int rc;
    if ((rc = drill_known(f, "payload.fault", keys, err)) != 0) {
        return rc;
    }
    const char *type = json_string_value(json_object_get(f, "type"));
    if (type == NULL) {
        return osp_err_set(err, OSP_EINVAL,
                           "payload.fault.type: required: restart, cpu or latency");
    } else if (strcmp(type, "restart") == 0) {
        s->fault = DRILL_FAULT_RESTART;
    } else if (strcmp(type, "cpu") == 0) {
        s->fault = DRILL_FAULT_CPU;
    } else if (strcmp(type, "latency") == 0) {
        s->fault = DRILL_FAULT_LATENCY;
    } else {
        return osp_err_set(err, OSP_EINVAL, "payload.fault.type: must be restart, cpu or latency");
    }
    const char *w = "payload.fault";
    unsigned grace = 0;
    if ((rc = drill_uint(f, "duration_s", w, 1, DRILL_MAX_DURATION_S, 10, &s->duration_s, err)) ||
        (rc = drill_uint(f, "pods", w, 1, 100, 1, &s->pods, err)) ||
        (rc = drill_uint(f, "grace_period_s", w, 0, 3600, 0, &grace, err)) ||
        (rc = drill_uint(f, "evict_timeout_s", w, 0, 120, 10, &s->evict_timeout_s, err)) ||
        (rc = drill_uint(f, "workers", w, 1, DRILL_STRESS_MAX, 1, &s->cpu_workers, err)) ||
        (rc = drill_uint(f, "load", w, 1, 100, 100, &s->cpu_load, err)) ||
        (rc = drill_uint(f, "latency_ms", w, 1, 10000, 0, &s->latency_ms, err)) ||
        (rc = drill_uint(f, "jitter_ms", w, 0, 10000, 0, &s->jitter_ms, err))) {
        return rc;
    }
    s->grace_period_s = json_object_get(f, "grace_period_s") ? (int)grace : -1;
    if (s->fault == DRILL_FAULT_LATENCY && s->latency_ms == 0) {
        return osp_err_set(err, OSP_EINVAL,
                           "payload.fault.latency_ms: required for a latency fault");
    }
    if (s->jitter_ms > s->latency_ms) {
        return osp_err_set(err, OSP_EINVAL, "payload.fault.jitter_ms: must not exceed latency_ms");
    }
    const char *sig = json_string_value(json_object_get(f, "signal"));
    s->signal = SIGTERM;
    if (json_object_get(f, "signal") != NULL) {
        if (sig != NULL && strcmp(sig, "TERM") == 0) {
            s->signal = SIGTERM;
        } else if (sig != NULL && strcmp(sig, "KILL") == 0) {
            s->signal = SIGKILL;
        } else {
            return osp_err_set(err, OSP_EINVAL, "payload.fault.signal: must be TERM or KILL");
        }
    }
    const char *method = json_string_value(json_object_get(f, "method"));
    s->evict = true;
    if (json_object_get(f, "method") != NULL) {
        if (method != NULL && strcmp(method, "evict") == 0) {
            s->evict = true;
        } else if (method != NULL && strcmp(method, "delete") == 0) {
            s->evict = false;
        } else {
            return osp_err_set(err, OSP_EINVAL, "payload.fault.method: must be evict or delete");
        }
    }
    return 0;
}

static int drill_parse_probe(const json_t *p, struct drill_spec *s, struct osp_err *err)
{
    static const char *const keys[] = {"interval_ms",   "timeout_ms",     "path",
                                       "expect_status", "max_latency_ms", NULL};
    const char *w = "payload.probe";
    int rc;
    if ((rc = drill_known(p, w, keys, err)) ||
        (rc = drill_uint(p, "interval_ms", w, 50, 5000, 200, &s->interval_ms, err)) ||
        (rc = drill_uint(p, "timeout_ms", w, 10, 10000, 1000, &s->timeout_ms, err)) ||
        (rc = drill_uint(p, "max_latency_ms", w, 0, 60000, 0, &s->max_latency_ms, err))) {
        return rc;
    }
    const json_t *path = json_object_get(p, "path");
    s->user_path = NULL;
    if (path != NULL) {
        if (!drill_path_ok(json_string_value(path))) {
            return osp_err_set(err, OSP_EINVAL,
                               "payload.probe.path: must start with / and hold no spaces or "
                               "control characters (max 512)");
        }
        s->user_path = json_string_value(path);
    }
    s->status_lo = 200;
    s->status_hi = 399;
    const json_t *es = json_object_get(p, "expect_status");
    if (es != NULL) {
        const json_t *lo = json_array_get(es, 0), *hi = json_array_get(es, 1);
        if (!json_is_array(es) || json_array_size(es) != 2 || !json_is_integer(lo) ||
            !json_is_integer(hi) || json_integer_value(lo) < 100 || json_integer_value(hi) > 599 ||
            json_integer_value(lo) > json_integer_value(hi)) {
            return osp_err_set(err, OSP_EINVAL,
                               "payload.probe.expect_status: must be [lo, hi] within 100..599");
        }
        s->status_lo = (unsigned)json_integer_value(lo);
        s->status_hi = (unsigned)json_integer_value(hi);
    }
    return 0;
}

static int drill_parse_rest(const json_t *payload, struct drill_spec *s, struct osp_err *err)
{
    static const char *const ss_keys[] = {"checks", "min_availability", NULL};
    static const char *const ab_keys[] = {"min_availability", "window_s", NULL};
    static const char *const rc_keys[] = {"consecutive", "timeout_s", NULL};
    static const char *const hy_keys[] = {"max_time_to_recover_ms", "max_time_to_detect_ms",
                                          "min_availability", "max_p95_ms", NULL};
    const json_t *ss, *ab, *rv, *hy;
    int rc;
    if ((rc = drill_obj(payload, "steady_state", "payload", &ss, err)) ||
        (rc = drill_obj(payload, "abort", "payload", &ab, err)) ||
        (rc = drill_obj(payload, "recovery", "payload", &rv, err)) ||
        (rc = drill_obj(payload, "hypothesis", "payload", &hy, err)) ||
        (rc = drill_known(ss, "payload.steady_state", ss_keys, err)) ||
        (rc = drill_known(ab, "payload.abort", ab_keys, err)) ||
        (rc = drill_known(rv, "payload.recovery", rc_keys, err)) ||
        (rc = drill_known(hy, "payload.hypothesis", hy_keys, err)) ||
        (rc =
             drill_uint(ss, "checks", "payload.steady_state", 1, 100, 5, &s->steady_checks, err)) ||
        (rc = drill_ratio(ss, "min_availability", "payload.steady_state", 1.0,
                          &s->steady_min_availability, err)) ||
        (rc = drill_ratio(ab, "min_availability", "payload.abort", -1, &s->abort_min_availability,
                          err)) ||
        (rc = drill_uint(ab, "window_s", "payload.abort", 1, 60, 5, &s->abort_window_s, err)) ||
        (rc = drill_uint(rv, "consecutive", "payload.recovery", 1, 100, 3, &s->recovery_consecutive,
                         err)) ||
        (rc = drill_uint(rv, "timeout_s", "payload.recovery", 1, 600, 30, &s->recovery_timeout_s,
                         err)) ||
        (rc = drill_ratio(hy, "min_availability", "payload.hypothesis", -1,
                          &s->hyp_min_availability, err))) {
        return rc;
    }
    unsigned ttr = 0, ttd = 0, p95 = 0;
    if ((rc = drill_uint(hy, "max_time_to_recover_ms", "payload.hypothesis", 0, 3600000, 0, &ttr,
                         err)) ||
        (rc = drill_uint(hy, "max_time_to_detect_ms", "payload.hypothesis", 0, 3600000, 0, &ttd,
                         err)) ||
        (rc = drill_uint(hy, "max_p95_ms", "payload.hypothesis", 0, 600000, 0, &p95, err))) {
        return rc;
    }
    s->hyp_max_ttr_ms = json_object_get(hy, "max_time_to_recover_ms") ? (int64_t)ttr : -1;
    s->hyp_max_ttd_ms = json_object_get(hy, "max_time_to_detect_ms") ? (int64_t)ttd : -1;
    s->hyp_max_p95_ms = json_object_get(hy, "max_p95_ms") ? (double)p95 : -1;
    return 0;
}

/* ---- Target and limits ---- */

/* The target half: existence, adapter keys, allowed faults and limits. */
static int drill_check_target(const struct osp_targets *targets, struct drill_spec *s,
                              struct osp_err *err)
{
    const json_t *t = osp_target_get(targets, s->target_name);
    if (t == NULL) {
        return osp_err_set(err, OSP_EINVAL,
                           "payload.target: no target \"%.64s\" in the targets file",
                           s->target_name);
    }
    s->target = t;
    const char *ad = osp_target_str(t, "adapter");
    s->adapter =
        (ad != NULL && strcmp(ad, "kubernetes") == 0) ? DRILL_ADAPTER_K8S : DRILL_ADAPTER_LOCAL;
    s->base_url = osp_target_str(t, "base_url");
    char host[256];
    unsigned port;
    if (s->base_url == NULL || drill_parse_base_url(s->base_url, host, sizeof(host), &port) != 0) {
        return osp_err_set(err, OSP_EINVAL,
                           "target %s: base_url: required, http://host[:port] (probes use it)",
                           s->target_name);
    }
    snprintf(s->probe_url, sizeof(s->probe_url), "%s", s->base_url);
    s->health_path = osp_target_str(t, "health_path");
    if (s->health_path == NULL) {
        s->health_path = "/health";
    } else if (!drill_path_ok(s->health_path)) {
        return osp_err_set(err, OSP_EINVAL, "target %s: health_path: must start with /",
                           s->target_name);
    }
    const json_t *lim = json_object_get(t, "limits");
    const json_t *allowed = json_object_get(lim, "allowed_faults");
    const char *fname = drill_fault_name(s->fault);
    bool ok = false;
    size_t i;
    const json_t *v;
    json_array_foreach(allowed, i, v)
    {
        ok = ok || (json_is_string(v) && strcmp(json_string_value(v), fname) == 0);
    }
    if (!ok) {
        /* No list means no drills: an operator opts a target in, fault by fault. */
        return osp_err_set(err, OSP_EINVAL,
                           "payload.fault.type: %s is not in target %s limits.allowed_faults",
                           fname, s->target_name);
    }
    long long max_dur = osp_target_int(lim, "max_duration_s", 300);
    if (max_dur > DRILL_MAX_DURATION_S) {
        max_dur = DRILL_MAX_DURATION_S;
    }
    if ((long long)s->duration_s > max_dur) {
        return osp_err_set(
            err, OSP_EINVAL,
            "payload.fault.duration_s: %u exceeds target %s limits.max_duration_s %lld",
            s->duration_s, s->target_name, max_dur);
    }
    long long max_pods = osp_target_int(lim, "max_pods", 1);
    if ((long long)s->pods > max_pods) {
        return osp_err_set(err, OSP_EINVAL,
                           "payload.fault.pods: %u exceeds target %s limits.max_pods %lld", s->pods,
                           s->target_name, max_pods);
    }
    long long max_workers = osp_target_int(lim, "max_cpu_workers", 2);
    if ((long long)s->cpu_workers > max_workers) {
        return osp_err_set(
            err, OSP_EINVAL,
            "payload.fault.workers: %u exceeds target %s limits.max_cpu_workers %lld",
            s->cpu_workers, s->target_name, max_workers);
    }
    if (s->adapter == DRILL_ADAPTER_K8S) {
        const json_t *k8s = json_object_get(t, "kubernetes");
        struct osp_err kerr = {0};
        if (drill_k8s_check_target(k8s, &kerr) != 0) {
            return osp_err_set(err, OSP_EINVAL, "target %s: %s", s->target_name, kerr.msg);
        }
        return 0;
    }
    const json_t *local = json_object_get(t, "local");
    if (s->fault == DRILL_FAULT_RESTART && osp_target_str(local, "pidfile") == NULL) {
        return osp_err_set(err, OSP_EINVAL, "target %s: local.pidfile: required for restart",
                           s->target_name);
    }
    const char *pl = osp_target_str(local, "proxy_listen");
    const char *up = osp_target_str(local, "upstream");
    char h2[256];
    unsigned p2;
    if ((pl != NULL || up != NULL) &&
        (pl == NULL || up == NULL || drill_parse_hostport(pl, h2, sizeof(h2), &p2) != 0 ||
         drill_parse_hostport(up, h2, sizeof(h2), &p2) != 0)) {
        return osp_err_set(err, OSP_EINVAL,
                           "target %s: local.proxy_listen and local.upstream: both host:port",
                           s->target_name);
    }
    if (s->fault == DRILL_FAULT_LATENCY) {
        if (pl == NULL) {
            return osp_err_set(err, OSP_EINVAL,
                               "target %s: local.proxy_listen and local.upstream: required for "
                               "latency",
                               s->target_name);
        }
    }
    if (pl != NULL) {
        /* Probes cross the proxy (or a latency fault would measure nothing); base_url stays
         * the service's own address, which benchmarks and other kinds use directly. */
        if ((size_t)snprintf(s->probe_url, sizeof(s->probe_url), "http://%s", pl) >=
            sizeof(s->probe_url)) {
            return osp_err_set(err, OSP_EINVAL, "target %s: local.proxy_listen: too long",
                               s->target_name);
        }
    }
    return 0;
}

int drill_spec_parse(const json_t *payload, const struct osp_targets *targets,
                     struct drill_spec *spec, struct osp_err *err)
{
    static const char *const keys[] = {"target", "fault",    "probe",      "steady_state",
                                       "abort",  "recovery", "hypothesis", NULL};
    struct drill_spec s;
    memset(&s, 0, sizeof(s));
    int rc;
    if (!json_is_object(payload)) {
        return osp_err_set(err, OSP_EINVAL, "payload: must be an object");
    }
    if ((rc = drill_known(payload, "payload", keys, err)) != 0) {
        return rc;
    }
    s.target_name = json_string_value(json_object_get(payload, "target"));
    if (s.target_name == NULL || s.target_name[0] == '\0') {
        return osp_err_set(err, OSP_EINVAL, "payload.target: required: the name of a target");
    }
    const json_t *fault = json_object_get(payload, "fault");
    if (!json_is_object(fault)) {
        return osp_err_set(err, OSP_EINVAL, "payload.fault: required object {\"type\": ...}");
    }
    const json_t *probe;
    if ((rc = drill_parse_fault(fault, &s, err)) ||
        (rc = drill_obj(payload, "probe", "payload", &probe, err)) ||
        (rc = drill_parse_probe(probe, &s, err)) || (rc = drill_parse_rest(payload, &s, err))) {
        return rc;
    }
    if (s.steady_checks * s.interval_ms > 600000) {
        return osp_err_set(err, OSP_EINVAL,
                           "payload.steady_state.checks: checks x interval_ms must be <= 600 s");
    }
    if (targets != NULL && (rc = drill_check_target(targets, &s, err)) != 0) {
        return rc;
    }
    if (spec != NULL) {
        *spec = s;
    }
    return 0;
}

unsigned drill_spec_budget_s(const struct drill_spec *s)
{
    unsigned steady = (s->steady_checks * s->interval_ms + s->timeout_ms) / 1000 + 1;
    unsigned evict = s->adapter == DRILL_ADAPTER_K8S ? s->evict_timeout_s * s->pods + 5 : 0;
    /* rollback and the chaos status polling get a fixed allowance on top */
    return steady + evict + s->duration_s + s->recovery_timeout_s + s->timeout_ms / 1000 + 20;
}
