/* SPDX-License-Identifier: MIT */
/* k8s.c — the drill's Kubernetes adapter (contract in k8s.h), over the shared client
 * jobs/kube.c (token, libcurl, bounded requests).
 *
 * Only these calls are made, matching deploy/k8s/drill-rbac/drill-rbac.yaml:
 *   GET    /api/v1/namespaces/{ns}/pods?labelSelector=...          pods: list
 *   POST   /api/v1/namespaces/{ns}/pods/{name}/eviction            pods/eviction: create
 *   DELETE /api/v1/namespaces/{ns}/pods/{name}                     pods: delete
 *   POST   /apis/chaos-mesh.org/v1alpha1/namespaces/{ns}/{plural}  stresschaos|networkchaos: create
 *   GET    .../{plural}/{name}                                     ...: get
 *   DELETE .../{plural}/{name}                                     ...: delete
 * One easy handle is reused (connection reuse), every request is bounded by timeout_ms, and
 * libcurl never installs signal handlers (CURLOPT_NOSIGNAL) because the child's SIGTERM
 * means "roll back", not "die". */
#include "jobs/drill/k8s.h"
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/kube.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct drill_k8s {
    struct osp_kube *kc; /* connection, token */
    char *ns, *selector;
    char job_id[64];
    char chaos_name[96];
    const char *chaos_plural; /* "stresschaos" | "networkchaos" while one exists; else NULL */
    drill_k8s_idle_fn *idle;
    void *idle_arg;
};

/* ---- Target checks ---- */

/* "k=v[,k=v]" with label-ish characters; equality only, because Chaos Mesh's
 * selector.labelSelectors is a map and both calls must select the same pods. */
static bool drill_selector_ok(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 512) {
        return false;
    }
    bool in_value = false, have_key = false;
    for (const char *c = s; *c; c++) {
        if (*c == '=') {
            if (in_value || !have_key) {
                return false;
            }
            in_value = true;
        } else if (*c == ',') {
            if (!in_value) {
                return false;
            }
            in_value = have_key = false;
        } else if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                   (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.' || *c == '/') {
            have_key = have_key || !in_value;
        } else {
            return false;
        }
    }
    return in_value;
}

int drill_k8s_check_target(const json_t *k8s, struct osp_err *err)
{
    /* "deployment" and "scale_ready_timeout_s" belong to the benchmark kind's scale-out
     * lanes (jobs/benchmark/scale.c): known here so that one target serves both kinds. */
    static const char *const keys[] = {
        "namespace", "selector",   "api_server", "token_file",
        "ca_file",   "timeout_ms", "deployment", "scale_ready_timeout_s",
        NULL};
    if (!json_is_object(k8s)) {
        return osp_err_set(err, OSP_EINVAL, "kubernetes: required object for this adapter");
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)k8s, key, v)
    {
        bool known = false;
        for (size_t i = 0; keys[i] != NULL; i++) {
            known = known || strcmp(key, keys[i]) == 0;
        }
        if (!known) {
            return osp_err_set(err, OSP_EINVAL, "kubernetes.%.64s: unknown field", key);
        }
    }
    if (!osp_kube_dns_label_ok(json_string_value(json_object_get(k8s, "namespace")))) {
        return osp_err_set(err, OSP_EINVAL, "kubernetes.namespace: required, a DNS label");
    }
    if (!drill_selector_ok(json_string_value(json_object_get(k8s, "selector")))) {
        return osp_err_set(err, OSP_EINVAL,
                           "kubernetes.selector: required, equality labels \"k=v[,k=v]\" "
                           "(never empty: a drill never selects all pods)");
    }
    return osp_kube_check(k8s, err);
}

/* ---- Requests ---- */

int drill_k8s_request(struct drill_k8s *k, const char *method, const char *path, const json_t *body,
                      long *status, json_t **reply, struct osp_err *err)
{
    return osp_kube_request(k->kc, method, path, body, NULL, status, reply, err);
}

/* The message of a Status object reply, for evidence and errors. */
static const char *drill_status_msg(const json_t *reply)
{
    return osp_kube_status_msg(reply);
}

/* ---- Setup ---- */

static char *drill_k8s_str(const json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? osp_xstrdup(v) : (dflt != NULL ? osp_xstrdup(dflt) : NULL);
}

struct drill_k8s *drill_k8s_new(const json_t *cfg, const char *job_id, drill_k8s_idle_fn *idle,
                                void *idle_arg, struct osp_err *err)
{
    if (drill_k8s_check_target(cfg, err) != 0) {
        return NULL;
    }
    struct osp_kube *kc = osp_kube_new(cfg, "opspool-drill/1", err);
    if (kc == NULL) {
        return NULL;
    }
    struct drill_k8s *k = osp_xcalloc(1, sizeof(*k));
    k->kc = kc;
    k->idle = idle;
    k->idle_arg = idle_arg;
    k->ns = drill_k8s_str(cfg, "namespace", NULL);
    k->selector = drill_k8s_str(cfg, "selector", NULL);
    /* Chaos object names are DNS subdomains; ids are lowercase UUIDs already. */
    snprintf(k->job_id, sizeof(k->job_id), "%s", job_id);
    snprintf(k->chaos_name, sizeof(k->chaos_name), "opspool-drill-%s", job_id);
    for (char *c = k->chaos_name; *c; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            *c = (char)(*c - 'A' + 'a');
        }
    }
    return k;
}

void drill_k8s_free(struct drill_k8s *k)
{
    if (k == NULL) {
        return;
    }
    osp_kube_free(k->kc);
    free(k->ns);
    free(k->selector);
    free(k);
}

/* ---- Pods ---- */

static char *drill_urlencode(struct drill_k8s *k, const char *s)
{
    return osp_kube_escape(k->kc, s);
}

/* Names of Running pods matching the selector, not being deleted (owned array). */
static int drill_k8s_running_pods(struct drill_k8s *k, json_t **names, struct osp_err *err)
{
    char *sel = drill_urlencode(k, k->selector);
    char *path = osp_xasprintf("/api/v1/namespaces/%s/pods?labelSelector=%s", k->ns, sel);
    long status = 0;
    json_t *reply = NULL;
    int rc = drill_k8s_request(k, "GET", path, NULL, &status, &reply, err);
    if (rc == 0 && status != 200) {
        rc = osp_err_set(err, OSP_EPROTO, "kubernetes list pods: HTTP %ld: %.150s", status,
                         drill_status_msg(reply));
    }
    if (rc == 0) {
        *names = json_array();
        size_t i;
        json_t *pod;
        json_array_foreach(json_object_get(reply, "items"), i, pod)
        {
            const json_t *md = json_object_get(pod, "metadata");
            const char *phase =
                json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
            const char *name = json_string_value(json_object_get(md, "name"));
            if (name != NULL && phase != NULL && strcmp(phase, "Running") == 0 &&
                json_object_get(md, "deletionTimestamp") == NULL) {
                json_array_append_new(*names, json_string(name));
            }
        }
    }
    json_decref(reply);
    free(path);
    free(sel);
    return rc;
}

/* Evict or delete one pod. Returns 0 (hit), OSP_ECONFLICT (PDB kept refusing within the
 * budget) or another negative code; fills the pod's evidence object. */
static int drill_k8s_hit_pod(struct drill_k8s *k, const struct drill_spec *s, const char *pod,
                             json_t *pe, struct osp_err *err)
{
    char *path = NULL;
    json_t *body = NULL;
    const char *method = "POST";
    if (s->evict) {
        path = osp_xasprintf("/api/v1/namespaces/%s/pods/%s/eviction", k->ns, pod);
        body = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "policy/v1", "kind", "Eviction",
                         "metadata", "name", pod, "namespace", k->ns);
        if (s->grace_period_s >= 0) {
            json_object_set_new(body, "deleteOptions",
                                json_pack("{s:s, s:s, s:i}", "kind", "DeleteOptions", "apiVersion",
                                          "v1", "gracePeriodSeconds", s->grace_period_s));
        }
    } else {
        method = "DELETE";
        path = osp_xasprintf("/api/v1/namespaces/%s/pods/%s", k->ns, pod);
        body = json_pack("{s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
        if (s->grace_period_s >= 0) {
            json_object_set_new(body, "gracePeriodSeconds", json_integer(s->grace_period_s));
        }
    }
    int64_t give_up = osp_mono_ns() + (int64_t)s->evict_timeout_s * 1000000000;
    int attempts = 0, rc = 0;
    long status = 0;
    for (;;) {
        json_t *reply = NULL;
        attempts++;
        rc = drill_k8s_request(k, method, path, body, &status, &reply, err);
        if (rc == 0 && (status == 200 || status == 201)) {
            json_decref(reply);
            break;
        }
        if (rc == 0 && status == 429 && s->evict) {
            /* A PodDisruptionBudget forbids it now; the budget may allow it once a replica
             * becomes ready again. Retry within evict_timeout_s, then report it blocked. */
            json_object_set_new(pe, "pdb_message", json_string(drill_status_msg(reply)));
            json_decref(reply);
            if (osp_mono_ns() + 1000000000 > give_up || k->idle(k->idle_arg, 1000, true)) {
                json_object_set_new(pe, "blocked_by_pdb", json_true());
                rc = osp_err_set(err, OSP_ECONFLICT,
                                 "eviction of %.100s refused by a PodDisruptionBudget "
                                 "(%d attempts)",
                                 pod, attempts);
                break;
            }
            continue;
        }
        if (rc == 0) {
            rc = osp_err_set(err, status == 404 ? OSP_ENOTFOUND : OSP_EPROTO,
                             "kubernetes %s pod %.100s: HTTP %ld: %.150s", method, pod, status,
                             drill_status_msg(reply));
        }
        json_decref(reply);
        break;
    }
    json_object_set_new(pe, "status", json_integer(status));
    json_object_set_new(pe, "attempts", json_integer(attempts));
    json_decref(body);
    free(path);
    return rc;
}

int drill_k8s_restart(struct drill_k8s *k, const struct drill_spec *s, json_t *evidence,
                      struct osp_err *err)
{
    json_t *names = NULL;
    int rc = drill_k8s_running_pods(k, &names, err);
    if (rc != 0) {
        return rc;
    }
    size_t matched = json_array_size(names);
    json_object_set_new(evidence, "pods_matched", json_integer((json_int_t)matched));
    json_object_set_new(evidence, "method", json_string(s->evict ? "evict" : "delete"));
    json_t *pods = json_array();
    json_object_set_new(evidence, "pods", pods);
    unsigned hit = 0;
    /* Leave at least one running pod whatever the count asks for: a drill measures recovery
     * of a service, it does not take the service down. */
    size_t want = s->pods < matched ? s->pods : (matched > 0 ? matched - 1 : 0);
    if (want == 0) {
        rc = osp_err_set(err, OSP_ECONFLICT,
                         "%zu running pod(s) match %.100s: need more than the %u to restart",
                         matched, k->selector, s->pods);
    }
    for (size_t i = 0; i < want; i++) {
        const char *pod = json_string_value(json_array_get(names, i));
        json_t *pe = json_pack("{s:s, s:s}", "name", pod, "method", s->evict ? "evict" : "delete");
        json_array_append_new(pods, pe);
        rc = drill_k8s_hit_pod(k, s, pod, pe, err);
        if (rc != 0) {
            break;
        }
        hit++;
    }
    json_object_set_new(evidence, "hit", json_integer(hit));
    json_decref(names);
    if (hit > 0 && rc != 0) {
        /* Some pods were hit: that is an injection; the error stays in the evidence. */
        json_object_set_new(evidence, "partial", json_string(err->msg));
        rc = 0;
    }
    return rc;
}

/* ---- Chaos Mesh ---- */

static json_t *drill_label_map(const char *selector)
{
    json_t *m = json_object();
    char *dup = osp_xstrdup(selector);
    char *save = NULL;
    for (char *tok = strtok_r(dup, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq != NULL) {
            *eq = '\0';
            json_object_set_new(m, tok, json_string(eq + 1));
        }
    }
    free(dup);
    return m;
}

static json_t *drill_chaos_object(struct drill_k8s *k, const struct drill_spec *s)
{
    bool cpu = s->fault == DRILL_FAULT_CPU;
    char dur[32], lat[32], jit[32];
    snprintf(dur, sizeof(dur), "%us", s->duration_s);
    json_t *spec = json_pack("{s:s, s:{s:[s], s:o}, s:s}", "mode", s->pods > 1 ? "fixed" : "one",
                             "selector", "namespaces", k->ns, "labelSelectors",
                             drill_label_map(k->selector), "duration", dur);
    if (s->pods > 1) {
        char v[16];
        snprintf(v, sizeof(v), "%u", s->pods);
        json_object_set_new(spec, "value", json_string(v));
    }
    if (cpu) {
        json_object_set_new(spec, "stressors",
                            json_pack("{s:{s:i, s:i}}", "cpu", "workers", (int)s->cpu_workers,
                                      "load", (int)s->cpu_load));
    } else {
        snprintf(lat, sizeof(lat), "%ums", s->latency_ms);
        snprintf(jit, sizeof(jit), "%ums", s->jitter_ms);
        json_object_set_new(spec, "action", json_string("delay"));
        json_object_set_new(spec, "direction", json_string("to"));
        json_object_set_new(
            spec, "delay",
            json_pack("{s:s, s:s, s:s}", "latency", lat, "jitter", jit, "correlation", "0"));
    }
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:o}", "apiVersion",
                     "chaos-mesh.org/v1alpha1", "kind", cpu ? "StressChaos" : "NetworkChaos",
                     "metadata", "name", k->chaos_name, "namespace", k->ns, "labels",
                     "opspool.io/job-id", k->job_id, "app.kubernetes.io/managed-by", "opspool",
                     "spec", spec);
}

int drill_k8s_chaos_create(struct drill_k8s *k, const struct drill_spec *s, json_t *evidence,
                           struct osp_err *err)
{
    const char *plural = s->fault == DRILL_FAULT_CPU ? "stresschaos" : "networkchaos";
    json_t *obj = drill_chaos_object(k, s);
    char *path = osp_xasprintf("/apis/chaos-mesh.org/v1alpha1/namespaces/%s/%s", k->ns, plural);
    long status = 0;
    json_t *reply = NULL;
    json_object_set_new(evidence, "kind",
                        json_string(json_string_value(json_object_get(obj, "kind"))));
    json_object_set_new(evidence, "name", json_string(k->chaos_name));
    json_object_set_new(evidence, "namespace", json_string(k->ns));
    int rc = drill_k8s_request(k, "POST", path, obj, &status, &reply, err);
    if (rc == 0 && status == 201) {
        k->chaos_plural = plural;
        json_object_set_new(evidence, "created", json_true());
        json_object_set_new(
            evidence, "uid",
            json_incref(json_object_get(json_object_get(reply, "metadata"), "uid")));
    } else if (rc == 0 && status == 409) {
        /* Already exists: a retried attempt of this same job created it. Adopt it only if
         * its label says so; never take over somebody else's experiment. */
        char *one = osp_xasprintf("%s/%s", path, k->chaos_name);
        json_t *cur = NULL;
        rc = drill_k8s_request(k, "GET", one, NULL, &status, &cur, err);
        const char *owner = json_string_value(json_object_get(
            json_object_get(json_object_get(cur, "metadata"), "labels"), "opspool.io/job-id"));
        if (rc == 0 && status == 200 && owner != NULL && strcmp(owner, k->job_id) == 0) {
            k->chaos_plural = plural;
            json_object_set_new(evidence, "adopted", json_true());
        } else if (rc == 0) {
            rc = osp_err_set(err, OSP_ECONFLICT,
                             "%s %s exists and does not belong to this job (HTTP 409)", plural,
                             k->chaos_name);
        }
        json_decref(cur);
        free(one);
    } else if (rc == 0) {
        rc = osp_err_set(err, OSP_EPROTO, "kubernetes create %s: HTTP %ld: %.150s", plural, status,
                         drill_status_msg(reply));
    }
    json_decref(reply);
    json_decref(obj);
    free(path);
    return rc;
}

bool drill_k8s_chaos_pending(const struct drill_k8s *k)
{
    return k->chaos_plural != NULL;
}

/* GET the chaos object: *obj owned, NULL on 404 (then returns OSP_ENOTFOUND). */
static int drill_k8s_chaos_get(struct drill_k8s *k, const char *plural, json_t **obj,
                               struct osp_err *err)
{
    char *path = osp_xasprintf("/apis/chaos-mesh.org/v1alpha1/namespaces/%s/%s/%s", k->ns, plural,
                               k->chaos_name);
    long status = 0;
    int rc = drill_k8s_request(k, "GET", path, NULL, &status, obj, err);
    free(path);
    if (rc != 0) {
        return rc;
    }
    if (status == 404) {
        json_decref(*obj);
        *obj = NULL;
        return OSP_ENOTFOUND;
    }
    if (status != 200) {
        rc = osp_err_set(err, OSP_EPROTO, "kubernetes get %s: HTTP %ld", plural, status);
        json_decref(*obj);
        *obj = NULL;
    }
    return rc;
}

static int drill_condition_of(const json_t *obj, const char *cond)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(obj, "status"), "conditions"), i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        const char *st = json_string_value(json_object_get(c, "status"));
        if (type != NULL && strcmp(type, cond) == 0) {
            return st != NULL && strcmp(st, "True") == 0;
        }
    }
    return 0;
}

int drill_k8s_chaos_condition(struct drill_k8s *k, const char *cond, struct osp_err *err)
{
    if (k->chaos_plural == NULL) {
        return OSP_ENOTFOUND;
    }
    json_t *obj = NULL;
    int rc = drill_k8s_chaos_get(k, k->chaos_plural, &obj, err);
    if (rc == 0) {
        rc = drill_condition_of(obj, cond);
    }
    json_decref(obj);
    return rc;
}

int drill_k8s_chaos_delete(struct drill_k8s *k, int64_t wait_ms, json_t *evidence,
                           struct osp_err *err)
{
    const char *plural = k->chaos_plural;
    char *path = osp_xasprintf("/apis/chaos-mesh.org/v1alpha1/namespaces/%s/%s/%s", k->ns, plural,
                               k->chaos_name);
    long status = 0;
    json_t *reply = NULL;
    int rc = drill_k8s_request(k, "DELETE", path, NULL, &status, &reply, err);
    if (rc == 0 && status != 200 && status != 202 && status != 404) {
        rc = osp_err_set(err, OSP_EPROTO, "kubernetes delete %s: HTTP %ld: %.150s", plural, status,
                         drill_status_msg(reply));
    }
    json_decref(reply);
    free(path);
    if (rc != 0) {
        json_object_set_new(evidence, "deleted", json_false());
        return rc;
    }
    json_object_set_new(evidence, "deleted", json_true());
    json_object_set_new(evidence, "chaos", json_string(k->chaos_name));
    /* Deleting the object is what reverts the fault; Chaos Mesh keeps it (finalizer) until the
     * daemon has recovered every pod. Gone, or AllRecovered=True, confirms the revert. */
    int64_t until = osp_mono_ns() + wait_ms * 1000000;
    bool confirmed = false;
    while (!confirmed) {
        json_t *obj = NULL;
        int g = drill_k8s_chaos_get(k, plural, &obj, err);
        confirmed = g == OSP_ENOTFOUND || (g == 0 && drill_condition_of(obj, "AllRecovered") == 1);
        json_decref(obj);
        if (confirmed || osp_mono_ns() + 250000000 > until) {
            break;
        }
        /* cancellation must not cut this short: it is the rollback being verified */
        k->idle(k->idle_arg, 250, false);
    }
    k->chaos_plural = NULL;
    json_object_set_new(evidence, "recovered_confirmed", json_boolean(confirmed));
    return 0;
}
