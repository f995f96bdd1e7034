/* SPDX-License-Identifier: MIT */
/* scale.c — scale-out lanes (contract in scale.h): the target checks, and bringing a target
 * to N replicas and back, for both adapters. The local adapter's processes and balancer are
 * in instances.c and balancer.c.
 *
 * Kubernetes: only these calls are made, matching deploy/k8s/bench-scale-rbac/ (a Role in the
 * target's namespace with resourceNames = the targets' Deployments):
 *   GET    /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale   deployments/scale: get
 *   PATCH  /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale   deployments/scale: patch
 *   GET    /apis/apps/v1/namespaces/{ns}/deployments/{name}         deployments: get
 * The count is read from the autoscaling/v1 Scale object and changed with a JSON merge patch
 * of spec.replicas only. The Deployment is ready at N when the controller has seen the change
 * (status.observedGeneration >= metadata.generation), status.replicas == N (a scale-down has
 * let go of the extra pods) and status.readyReplicas >= N; the API leaves a zero
 * readyReplicas out, read as 0. The restore PATCHes the count read before the lane, retried
 * within its bound, and is recorded whatever happens: it is the rollback of this kind.
 *
 * What cannot be guaranteed: a worker killed with SIGKILL between the scale and the restore
 * (a node lost, an OOM kill) leaves the Deployment at N. The "scale" event of the job holds
 * the count to restore by hand (docs/benchmark-jobs.md "Scale-out lanes"). */
#include "jobs/benchmark/scale.h"
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/kube.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCALE_POLL_MS           500  /* readiness polls */
#define SCALE_CANCEL_TIMEOUT_MS 2000 /* per request while cancelled: inside the kill grace */
#define SCALE_RESTORE_TRIES     3
#define INSTANCE_GRACE_MS       2000 /* SIGTERM -> SIGKILL when stopping instances */
#define INSTANCE_CANCEL_MS      1000

enum scale_adapter { SCALE_LOCAL, SCALE_K8S };

struct bench_scaler {
    enum scale_adapter adapter;
    const json_t *target;
    const char *health_path;
    bench_sleep_fn *sleep;
    void *sleep_arg;
    bool pending;
    /* kubernetes */
    struct osp_kube *kc;
    const char *ns, *deployment;
    char *scale_path, *deploy_path;
    long original; /* spec.replicas before the lane */
    int64_t ready_timeout_ms;
    /* local */
    const json_t *instance;
    struct bench_instances inst;
    struct bench_balancer *bal;
};

/* ---- Target checks ---- */

static int scale_check_keys(const json_t *o, const char *const *keys, const char *where,
                            struct osp_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)o, key, v)
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

static bool scale_env_name_ok(const char *s)
{
    if (s == NULL || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_')) {
            return false;
        }
    }
    return true;
}

static int scale_check_local(const json_t *target, struct osp_err *err)
{
    static const char *const keys[] = {"argv", "env", "ready_timeout_s", "log", NULL};
    const json_t *in = json_object_get(json_object_get(target, "local"), "instance");
    if (in == NULL) {
        return osp_err_set(err, OSP_EINVAL,
                           "the local adapter needs local.instance (how to start one instance "
                           "of the service: {\"argv\": [...], \"env\": {...}} with a {port} "
                           "placeholder)");
    }
    if (!json_is_object(in)) {
        return osp_err_set(err, OSP_EINVAL, "local.instance: must be an object");
    }
    int rc = scale_check_keys(in, keys, "local.instance", err);
    if (rc != 0) {
        return rc;
    }
    bool has_port = false;
    const json_t *argv = json_object_get(in, "argv");
    if (!json_is_array(argv) || json_array_size(argv) < 1 ||
        json_array_size(argv) > BENCH_INSTANCE_MAX_ARGS) {
        return osp_err_set(err, OSP_EINVAL,
                           "local.instance.argv: required, an array of 1..%d strings (no shell)",
                           BENCH_INSTANCE_MAX_ARGS);
    }
    size_t i;
    json_t *v;
    json_array_foreach(argv, i, v)
    {
        const char *a = json_string_value(v);
        if (a == NULL || strlen(a) > 4096) {
            return osp_err_set(err, OSP_EINVAL,
                               "local.instance.argv[%zu]: must be a string of at most 4096 "
                               "characters",
                               i);
        }
        if (i == 0 && a[0] != '/') {
            return osp_err_set(err, OSP_EINVAL,
                               "local.instance.argv[0]: must be an absolute path (no PATH "
                               "lookup, no shell)");
        }
        has_port = has_port || strstr(a, "{port}") != NULL;
    }
    const json_t *env = json_object_get(in, "env");
    if (env != NULL && (!json_is_object(env) || json_object_size(env) > BENCH_INSTANCE_MAX_ENV)) {
        return osp_err_set(err, OSP_EINVAL,
                           "local.instance.env: must be an object of at most %d "
                           "\"NAME\": \"value\"",
                           BENCH_INSTANCE_MAX_ENV);
    }
    const char *k;
    json_object_foreach((json_t *)(uintptr_t)env, k, v)
    {
        const char *val = json_string_value(v);
        if (!scale_env_name_ok(k) || val == NULL || strlen(val) > 4096) {
            return osp_err_set(err, OSP_EINVAL,
                               "local.instance.env.%.64s: a name [A-Za-z_][A-Za-z0-9_]* with a "
                               "string value",
                               k);
        }
        has_port = has_port || strstr(val, "{port}") != NULL;
    }
    if (!has_port) {
        return osp_err_set(err, OSP_EINVAL,
                           "local.instance: no {port} placeholder in argv or env (every instance "
                           "needs its own port)");
    }
    const json_t *rt = json_object_get(in, "ready_timeout_s");
    if (rt != NULL &&
        (!json_is_integer(rt) || json_integer_value(rt) < 1 || json_integer_value(rt) > 600)) {
        return osp_err_set(err, OSP_EINVAL,
                           "local.instance.ready_timeout_s: must be an integer 1..600");
    }
    const json_t *log = json_object_get(in, "log");
    if (log != NULL && (!json_is_string(log) || json_string_value(log)[0] != '/')) {
        return osp_err_set(err, OSP_EINVAL, "local.instance.log: must be an absolute path");
    }
    return 0;
}

static int scale_check_k8s(const json_t *target, struct osp_err *err)
{
    /* The same keys the drill's adapter knows (jobs/drill/k8s.c): one target serves both. */
    static const char *const keys[] = {
        "namespace", "selector",   "api_server", "token_file",
        "ca_file",   "timeout_ms", "deployment", "scale_ready_timeout_s",
        NULL};
    const json_t *k8s = json_object_get(target, "kubernetes");
    if (!json_is_object(k8s)) {
        return osp_err_set(err, OSP_EINVAL,
                           "the kubernetes adapter needs the target's \"kubernetes\" object "
                           "with namespace and deployment");
    }
    int rc = scale_check_keys(k8s, keys, "kubernetes", err);
    if (rc != 0) {
        return rc;
    }
    if (!osp_kube_dns_label_ok(json_string_value(json_object_get(k8s, "namespace")))) {
        return osp_err_set(err, OSP_EINVAL, "kubernetes.namespace: required, a DNS label");
    }
    if (json_object_get(k8s, "deployment") == NULL) {
        return osp_err_set(err, OSP_EINVAL,
                           "the kubernetes adapter needs kubernetes.deployment (the Deployment "
                           "to scale)");
    }
    if (!osp_kube_dns_subdomain_ok(json_string_value(json_object_get(k8s, "deployment")))) {
        return osp_err_set(err, OSP_EINVAL,
                           "kubernetes.deployment: must be a Deployment name (DNS-1123 "
                           "subdomain)");
    }
    const json_t *rt = json_object_get(k8s, "scale_ready_timeout_s");
    if (rt != NULL &&
        (!json_is_integer(rt) || json_integer_value(rt) < 1 || json_integer_value(rt) > 3600)) {
        return osp_err_set(err, OSP_EINVAL,
                           "kubernetes.scale_ready_timeout_s: must be an integer 1..3600");
    }
    return osp_kube_check(k8s, err);
}

int bench_scale_check_target(const json_t *target, struct osp_err *err)
{
    const char *ad = json_string_value(json_object_get(target, "adapter"));
    if (ad != NULL && strcmp(ad, "kubernetes") == 0) {
        return scale_check_k8s(target, err);
    }
    return scale_check_local(target, err);
}

/* ---- Kubernetes ---- */

static long scale_int(const json_t *o, const char *a, const char *b, long dflt)
{
    const json_t *v = json_object_get(json_object_get(o, a), b);
    return json_is_integer(v) ? (long)json_integer_value(v) : dflt;
}

static int scale_k8s_get_count(struct bench_scaler *sc, long *count, struct osp_err *err)
{
    long status = 0;
    json_t *reply = NULL;
    int rc = osp_kube_request(sc->kc, "GET", sc->scale_path, NULL, NULL, &status, &reply, err);
    if (rc == 0 && status != 200) {
        rc = osp_err_set(err, status == 404 ? OSP_ENOTFOUND : OSP_EPROTO,
                         "kubernetes get deployments/scale %s/%s: HTTP %ld: %.150s", sc->ns,
                         sc->deployment, status, osp_kube_status_msg(reply));
    }
    if (rc == 0) {
        *count = scale_int(reply, "spec", "replicas", -1);
        if (*count < 0) {
            rc = osp_err_set(err, OSP_EPROTO,
                             "kubernetes get deployments/scale %s/%s: no "
                             "spec.replicas in the answer",
                             sc->ns, sc->deployment);
        }
    }
    json_decref(reply);
    return rc;
}

static int scale_k8s_patch(struct bench_scaler *sc, long replicas, struct osp_err *err)
{
    json_t *body = json_pack("{s:{s:I}}", "spec", "replicas", (json_int_t)replicas);
    long status = 0;
    json_t *reply = NULL;
    int rc = osp_kube_request(sc->kc, "PATCH", sc->scale_path, body, "application/merge-patch+json",
                              &status, &reply, err);
    if (rc == 0 && status != 200) {
        rc = osp_err_set(err, status == 404 ? OSP_ENOTFOUND : OSP_EPROTO,
                         "kubernetes patch deployments/scale %s/%s to %ld: HTTP %ld: %.150s",
                         sc->ns, sc->deployment, replicas, status, osp_kube_status_msg(reply));
    }
    if (rc == 0 && scale_int(reply, "spec", "replicas", -1) != replicas) {
        rc =
            osp_err_set(err, OSP_EPROTO,
                        "kubernetes patch deployments/scale %s/%s: the answer says %ld "
                        "replicas, not %ld",
                        sc->ns, sc->deployment, scale_int(reply, "spec", "replicas", -1), replicas);
    }
    json_decref(reply);
    json_decref(body);
    return rc;
}

/* Poll the Deployment until it is ready at want (see the file comment), for at most
 * timeout_ms; a cancel ends the wait (OSP_ECANCELED). what: "scaling" or "restoring", for the
 * messages. Fills ev. */
static int scale_k8s_wait(struct bench_scaler *sc, long want, int64_t timeout_ms, const char *what,
                          json_t *ev, struct osp_err *err)
{
    int64_t t0 = osp_mono_ns(), end = t0 + timeout_ms * 1000000;
    long ready = 0, replicas = -1, gen = 0, observed = 0;
    unsigned polls = 0;
    char last_err[200] = "";
    int rc = 0;
    for (;;) {
        long status = 0;
        json_t *d = NULL;
        struct osp_err e = {0};
        polls++;
        int r = osp_kube_request(sc->kc, "GET", sc->deploy_path, NULL, NULL, &status, &d, &e);
        if (r == 0 && status != 200) {
            /* 403/404 will not get better by waiting. */
            rc = osp_err_set(err, status == 404 ? OSP_ENOTFOUND : OSP_EPROTO,
                             "kubernetes get deployments %s/%s: HTTP %ld: %.150s", sc->ns,
                             sc->deployment, status, osp_kube_status_msg(d));
            json_decref(d);
            break;
        }
        if (r != 0) {
            snprintf(last_err, sizeof(last_err), "%s", e.msg); /* transient: poll again */
        } else {
            gen = scale_int(d, "metadata", "generation", 0);
            observed = scale_int(d, "status", "observedGeneration", 0);
            replicas = scale_int(d, "status", "replicas", 0);
            ready = scale_int(d, "status", "readyReplicas", 0); /* omitted when 0 */
            last_err[0] = '\0';
        }
        json_decref(d);
        if (r == 0 && observed >= gen && replicas == want && ready >= want) {
            break;
        }
        if (osp_mono_ns() + (int64_t)SCALE_POLL_MS * 1000000 > end) {
            rc = osp_err_set(err, OSP_ETIMEDOUT,
                             "deployment %s/%s: %ld of %ld replicas ready (%ld running, "
                             "generation %ld observed %ld) after %lld s%s%s",
                             sc->ns, sc->deployment, ready, want, replicas, gen, observed,
                             (long long)(timeout_ms / 1000),
                             last_err[0] != '\0' ? "; last poll: " : "", last_err);
            break;
        }
        if (sc->sleep(sc->sleep_arg, SCALE_POLL_MS)) {
            /* Cancelled: a scale-up stops here (the caller restores); a restore's wait stops
             * too (its PATCH is done; once cancelled the sleep no longer sleeps, and polling
             * without pause would only hammer the API until the kill). */
            rc = osp_err_set(err, OSP_ECANCELED, "cancelled while deployment %s/%s was %s", sc->ns,
                             sc->deployment, what);
            break;
        }
    }
    json_object_set_new(ev, "ready_replicas", json_integer(ready));
    json_object_set_new(ev, "ready_ms", json_integer((osp_mono_ns() - t0) / 1000000));
    json_object_set_new(ev, "polls", json_integer(polls));
    json_object_set_new(ev, "ready", json_boolean(rc == 0));
    return rc;
}

static int scale_k8s_up(struct bench_scaler *sc, unsigned replicas, json_t *ev, char *url,
                        size_t cap, struct osp_err *err)
{
    long cur = -1;
    char dep[200];
    snprintf(dep, sizeof(dep), "%s/%s", sc->ns, sc->deployment);
    json_object_set_new(ev, "deployment", json_string(dep));
    int rc = scale_k8s_get_count(sc, &cur, err);
    if (rc != 0) {
        return rc;
    }
    sc->original = cur;
    json_object_set_new(ev, "from", json_integer(cur));
    json_object_set_new(ev, "to", json_integer(replicas));
    if (cur != (long)replicas) {
        /* Pending from here on: even a PATCH without an answer may have been applied. */
        sc->pending = true;
        rc = scale_k8s_patch(sc, (long)replicas, err);
        json_object_set_new(ev, "patched", json_boolean(rc == 0));
        if (rc != 0) {
            return rc;
        }
    } else {
        json_object_set_new(ev, "patched", json_false());
    }
    rc = scale_k8s_wait(sc, (long)replicas, sc->ready_timeout_ms, "scaling", ev, err);
    snprintf(url, cap, "%s", json_string_value(json_object_get(sc->target, "base_url")));
    return rc;
}

static int scale_k8s_restore(struct bench_scaler *sc, bool cancelled, json_t *ev,
                             struct osp_err *err)
{
    char dep[200];
    snprintf(dep, sizeof(dep), "%s/%s", sc->ns, sc->deployment);
    json_object_set_new(ev, "deployment", json_string(dep));
    json_object_set_new(ev, "to", json_integer(sc->original));
    if (cancelled) {
        osp_kube_cap_timeout_ms(sc->kc, SCALE_CANCEL_TIMEOUT_MS);
    }
    int rc = 0, tries = 0;
    for (;;) {
        tries++;
        rc = scale_k8s_patch(sc, sc->original, err);
        if (rc == 0 || rc == OSP_ENOTFOUND || tries >= (cancelled ? 2 : SCALE_RESTORE_TRIES)) {
            break;
        }
        /* A rollback is worth a retry: a transient failure must not leave the target at N.
         * A cancel does not stop the retries (the restore is what it waits for); once
         * cancelled the sleep returns at once, which suits the kill grace. */
        sc->sleep(sc->sleep_arg, cancelled ? 200 : 1000);
    }
    json_object_set_new(ev, "attempts", json_integer(tries));
    json_object_set_new(ev, "restored", json_boolean(rc == 0));
    if (rc != 0) {
        json_object_set_new(ev, "error", json_string(err->msg));
        return rc;
    }
    sc->pending = false;
    if (cancelled) {
        /* Inside the kill grace: the PATCH is the rollback; readiness is the cluster's. */
        json_object_set_new(ev, "awaited", json_false());
        return 0;
    }
    json_object_set_new(ev, "awaited", json_true());
    struct osp_err werr = {0};
    if (scale_k8s_wait(sc, sc->original, sc->ready_timeout_ms, "restoring", ev, &werr) != 0) {
        /* Restored but slow to settle: worth saying, not worth failing a measured job. */
        json_object_set_new(ev, "warning", json_string(werr.msg));
    }
    return 0;
}

/* ---- Local ---- */

static int scale_local_up(struct bench_scaler *sc, unsigned replicas, json_t *ev, char *url,
                          size_t cap, struct osp_err *err)
{
    int64_t t0 = osp_mono_ns();
    long long rt = json_integer_value(json_object_get(sc->instance, "ready_timeout_s"));
    sc->pending = true;
    int rc = bench_instances_start(&sc->inst, sc->instance, replicas, err);
    json_t *list = json_array();
    for (unsigned i = 0; i < sc->inst.n; i++) {
        json_array_append_new(list,
                              json_pack("{s:i, s:i, s:i}", "index", (int)i, "pid",
                                        (int)sc->inst.pids[i], "port", (int)sc->inst.ports[i]));
    }
    json_object_set_new(ev, "instances", list);
    json_object_set_new(ev, "to", json_integer(replicas));
    if (rc == 0) {
        rc = bench_instances_wait_ready(&sc->inst, sc->health_path,
                                        (rt > 0 ? rt : BENCH_INSTANCE_READY_TIMEOUT_S) * 1000,
                                        sc->sleep, sc->sleep_arg, err);
    }
    json_object_set_new(ev, "ready_ms", json_integer((osp_mono_ns() - t0) / 1000000));
    json_object_set_new(ev, "ready", json_boolean(rc == 0));
    if (rc != 0) {
        return rc;
    }
    sc->bal = bench_balancer_start(sc->inst.ports, sc->inst.n, err);
    if (sc->bal == NULL) {
        return err->code != 0 ? err->code : OSP_EINVAL;
    }
    snprintf(url, cap, "http://127.0.0.1:%u", bench_balancer_port(sc->bal));
    json_object_set_new(ev, "balancer", json_string(url + 7));
    return 0;
}

static int scale_local_restore(struct bench_scaler *sc, bool cancelled, json_t *ev)
{
    json_t *st = bench_balancer_stop(sc->bal);
    sc->bal = NULL;
    if (st != NULL) {
        json_object_set_new(ev, "balancer", st);
    }
    bench_instances_stop(&sc->inst, cancelled ? INSTANCE_CANCEL_MS : INSTANCE_GRACE_MS, ev);
    json_object_set_new(ev, "restored",
                        json_boolean(json_integer_value(json_object_get(ev, "alive_after")) == 0));
    sc->pending = false;
    return 0;
}

/* ---- The scaler ---- */

struct bench_scaler *bench_scaler_new(const json_t *target, const char *health_path,
                                      bench_sleep_fn *sleep, void *sleep_arg, struct osp_err *err)
{
    if (bench_scale_check_target(target, err) != 0) {
        return NULL;
    }
    struct bench_scaler *sc = osp_xcalloc(1, sizeof(*sc));
    sc->target = target;
    sc->health_path = health_path;
    sc->sleep = sleep;
    sc->sleep_arg = sleep_arg;
    sc->original = -1;
    const char *ad = json_string_value(json_object_get(target, "adapter"));
    if (ad != NULL && strcmp(ad, "kubernetes") == 0) {
        const json_t *k8s = json_object_get(target, "kubernetes");
        sc->adapter = SCALE_K8S;
        sc->ns = json_string_value(json_object_get(k8s, "namespace"));
        sc->deployment = json_string_value(json_object_get(k8s, "deployment"));
        long long rt = json_integer_value(json_object_get(k8s, "scale_ready_timeout_s"));
        sc->ready_timeout_ms = (rt > 0 ? rt : BENCH_SCALE_READY_TIMEOUT_S) * 1000;
        sc->deploy_path =
            osp_xasprintf("/apis/apps/v1/namespaces/%s/deployments/%s", sc->ns, sc->deployment);
        sc->scale_path = osp_xasprintf("/apis/apps/v1/namespaces/%s/deployments/%s/scale", sc->ns,
                                       sc->deployment);
        sc->kc = osp_kube_new(k8s, "opspool-benchmark/1", err);
        if (sc->kc == NULL) {
            bench_scaler_free(sc);
            return NULL;
        }
    } else {
        sc->adapter = SCALE_LOCAL;
        sc->instance = json_object_get(json_object_get(target, "local"), "instance");
    }
    return sc;
}

int bench_scale_up(struct bench_scaler *sc, unsigned replicas, json_t *ev, char *url,
                   size_t url_cap, struct osp_err *err)
{
    OSP_ASSERT(!sc->pending);
    json_object_set_new(ev, "adapter",
                        json_string(sc->adapter == SCALE_K8S ? "kubernetes" : "local"));
    if (sc->adapter == SCALE_K8S) {
        return scale_k8s_up(sc, replicas, ev, url, url_cap, err);
    }
    return scale_local_up(sc, replicas, ev, url, url_cap, err);
}

bool bench_scale_pending(const struct bench_scaler *sc)
{
    return sc != NULL && sc->pending;
}

int bench_scale_restore(struct bench_scaler *sc, bool cancelled, json_t *ev, struct osp_err *err)
{
    if (!sc->pending) {
        json_object_set_new(ev, "restored", json_true());
        return 0;
    }
    json_object_set_new(ev, "adapter",
                        json_string(sc->adapter == SCALE_K8S ? "kubernetes" : "local"));
    json_object_set_new(ev, "cancelled", json_boolean(cancelled));
    if (sc->adapter == SCALE_K8S) {
        return scale_k8s_restore(sc, cancelled, ev, err);
    }
    return scale_local_restore(sc, cancelled, ev);
}

void bench_scaler_free(struct bench_scaler *sc)
{
    if (sc == NULL) {
        return;
    }
    if (sc->pending) {
        json_t *ev = json_object();
        struct osp_err err = {0};
        bench_scale_restore(sc, true, ev, &err);
        json_decref(ev);
    }
    osp_kube_free(sc->kc);
    free(sc->scale_path);
    free(sc->deploy_path);
    free(sc);
}
