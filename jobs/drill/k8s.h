/* SPDX-License-Identifier: MIT */
/* k8s.h — the drill's Kubernetes adapter: the few REST calls a drill makes, through libcurl,
 * with the in-cluster service account.
 *
 * Target keys (object "kubernetes" of a target):
 *   namespace   required; the only namespace touched (also Chaos Mesh selector.namespaces)
 *   selector    required; equality label selector "app=shortener[,k=v...]"
 *   api_server  default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT_HTTPS
 *   token_file  default /var/run/secrets/kubernetes.io/serviceaccount/token
 *   ca_file     default /var/run/secrets/kubernetes.io/serviceaccount/ca.crt (https only)
 *   timeout_ms  per request, default 5000
 *   deployment, scale_ready_timeout_s   the benchmark kind's scale-out lanes (not used here)
 * The connection (token rotation, libcurl, bounds) is the shared client's, jobs/kube.h.
 * Every call is synchronous and bounded by timeout_ms; waits between retries go through the
 * caller's idle callback so probes keep running. */
#ifndef OSP_JOBS_DRILL_K8S_H
#define OSP_JOBS_DRILL_K8S_H

#include "common/err.h"
#include "jobs/drill/drill.h"

#include <jansson.h>

struct drill_k8s;

/* Called while the adapter waits (PDB retry, status polling): run the probes for ms, or less
 * when honour_cancel and the drill is cancelled. Returns true when it ended early because of a
 * cancel (the adapter stops retrying). */
typedef bool drill_k8s_idle_fn(void *arg, int64_t ms, bool honour_cancel);

/* Check a target's "kubernetes" object without touching the network. 0 or OSP_EINVAL. */
int drill_k8s_check_target(const json_t *k8s, struct osp_err *err);
/* Prepare a client for target (its "kubernetes" object) and job id (names and labels the
 * chaos objects). NULL with err on failure (missing token, bad settings). */
struct drill_k8s *drill_k8s_new(const json_t *k8s, const char *job_id, drill_k8s_idle_fn *idle,
                                void *idle_arg, struct osp_err *err);
void drill_k8s_free(struct drill_k8s *k);

/* One request: method, path (from the API root, query included), body (borrowed; NULL for
 * none). *status gets the HTTP status (0 when no answer), *reply the parsed JSON body (owned;
 * NULL when none or not JSON). Returns 0 when an answer arrived, whatever its status, or a
 * negative code with err. */
int drill_k8s_request(struct drill_k8s *k, const char *method, const char *path, const json_t *body,
                      long *status, json_t **reply, struct osp_err *err);

/* Pod restart: pick up to spec->pods running pods matching the selector (never more, never
 * a collection delete, always leaving at least one running pod), then evict (429 from a
 * PodDisruptionBudget: retried every second within spec->evict_timeout_s) or DELETE each with
 * the grace period. Fills evidence {pods_matched, pods: [{name, method, status, attempts,
 * blocked_by_pdb}], hit}. 0 when at least one pod was hit; OSP_ECONFLICT when none could be
 * (PDB, too few pods: nothing injected); other negative codes on errors. */
int drill_k8s_restart(struct drill_k8s *k, const struct drill_spec *spec, json_t *evidence,
                      struct osp_err *err);

/* Chaos Mesh: create the StressChaos (cpu) or NetworkChaos (latency) for spec, named
 * "opspool-drill-<job id>", with selector.namespaces and duration always set. 409 adopts an
 * existing object of the same job (a retried attempt) and refuses one of another owner.
 * 0 or a negative code; evidence gets {kind, name, created|adopted}. */
int drill_k8s_chaos_create(struct drill_k8s *k, const struct drill_spec *spec, json_t *evidence,
                           struct osp_err *err);
/* Read the object: 1 when condition cond is "True", 0 when not (yet), OSP_ENOTFOUND when the
 * object is gone, another negative code on errors. */
int drill_k8s_chaos_condition(struct drill_k8s *k, const char *cond, struct osp_err *err);
/* Delete the object (404 counts as done), then poll until it is gone or reports AllRecovered,
 * for at most wait_ms. Fills evidence {deleted, recovered_confirmed}. 0 or a negative code. */
int drill_k8s_chaos_delete(struct drill_k8s *k, int64_t wait_ms, json_t *evidence,
                           struct osp_err *err);
/* True when a chaos object was created or adopted and not yet deleted. */
bool drill_k8s_chaos_pending(const struct drill_k8s *k);

#endif
