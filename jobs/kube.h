/* SPDX-License-Identifier: MIT */
/* kube.h — the Kubernetes REST client the job kinds share (the drill's pods and chaos objects,
 * jobs/drill/k8s.c; the benchmark's scale-out lanes, jobs/benchmark/scale.c): one libcurl easy
 * handle, the in-cluster service account's token, synchronous bounded requests. It knows no
 * resource: each kind builds its own paths, so each kind's calls stay listed in its own file
 * (and checked against its Role by tests/deploy).
 *
 * Connection settings, read from a target's "kubernetes" object:
 *   api_server  default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT_HTTPS
 *   token_file  default /var/run/secrets/kubernetes.io/serviceaccount/token
 *   ca_file     default /var/run/secrets/kubernetes.io/serviceaccount/ca.crt (https only)
 *   timeout_ms  per request, 100..60000, default 5000
 * The token is re-read whenever the file changes (inode, size or mtime) and once more after a
 * 401, then the request is retried once. The token never appears in errors or evidence.
 * libcurl never installs signal handlers (CURLOPT_NOSIGNAL): in a job's child SIGTERM means
 * "roll back", not "die". */
#ifndef OSP_JOBS_KUBE_H
#define OSP_JOBS_KUBE_H

#include "common/err.h"

#include <jansson.h>
#include <stdbool.h>

struct osp_kube;

/* Check the connection settings of a "kubernetes" object (api_server, timeout_ms, token_file,
 * ca_file) without touching the network; the caller checks its own keys. 0 or OSP_EINVAL with
 * the field named ("kubernetes.api_server: ..."). */
int osp_kube_check(const json_t *k8s, struct osp_err *err);
/* True for a DNS-1123 label (namespaces): [a-z0-9-]{1,63}, no dash at either end. */
bool osp_kube_dns_label_ok(const char *s);
/* True for a DNS-1123 subdomain (most object names): labels joined by dots, at most 253. */
bool osp_kube_dns_subdomain_ok(const char *s);

/* A client for the settings in k8s (borrowed; read once). user_agent names the caller
 * ("opspool-drill/1"). Reads the token now. NULL with err on failure (bad settings, no token,
 * not in a cluster and no api_server). Call from a single-threaded point of the child: the
 * first call initialises libcurl globally. */
struct osp_kube *osp_kube_new(const json_t *k8s, const char *user_agent, struct osp_err *err);
/* Free the client; wipes the token. NULL is a no-op. */
void osp_kube_free(struct osp_kube *c);
/* The per-request timeout in ms. */
long osp_kube_timeout_ms(const struct osp_kube *c);
/* Lower the per-request timeout for the next requests (e.g. a rollback inside a kill grace);
 * never raises it above the configured one. */
void osp_kube_cap_timeout_ms(struct osp_kube *c, long ms);

/* One request: method, path (from the API root, query included), body (borrowed; NULL for
 * none), sent as content_type (NULL: application/json; a PATCH names its patch type, e.g.
 * "application/merge-patch+json"). *status gets the HTTP status (0 when no answer), *reply
 * the parsed JSON body (owned; NULL when none or not JSON; reply may be NULL). Returns 0 when
 * an answer arrived, whatever its status, or a negative code with err. */
int osp_kube_request(struct osp_kube *c, const char *method, const char *path, const json_t *body,
                     const char *content_type, long *status, json_t **reply, struct osp_err *err);
/* s percent-encoded for a query string (owned). */
char *osp_kube_escape(struct osp_kube *c, const char *s);
/* The "message" of a Status object reply, or "(no message)"; borrowed from reply. */
const char *osp_kube_status_msg(const json_t *reply);

#endif
