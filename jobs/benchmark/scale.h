/* SPDX-License-Identifier: MIT */
/* scale.h — scale-out lanes (docs/benchmark-jobs.md "Scale-out lanes"): a lane that asks for
 * "replicas": N runs against its target at N replicas, and the target is put back as it was
 * afterwards, on every path (success, breached threshold, error, cancel, drain).
 *
 *   kubernetes  the target's Deployment (kubernetes.deployment) through its scale subresource:
 *               read the count, PATCH spec.replicas = N, wait until the Deployment reports N
 *               ready replicas, run the lane against base_url (the Service), PATCH the count
 *               read before, wait again (scale.c).
 *   local       N instances of the service started from local.instance (a command and its
 *               environment with {port} and {index} placeholders, no shell) on loopback ports,
 *               each awaited on the target's health path, behind a round-robin TCP balancer in
 *               this process (instances.c, balancer.c); the lane runs against the balancer;
 *               then everything is stopped and reaped.
 *
 * A job with such a lane holds its target's lease exclusively (bench_payload_scales, the
 * kind's needs_exclusive). Everything here runs in the job's child, synchronously; waits go
 * through the caller's sleep function so a cancel ends them early. */
#ifndef OSP_BENCH_SCALE_H
#define OSP_BENCH_SCALE_H

#include "common/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define BENCH_MAX_REPLICAS             64
#define BENCH_SCALE_READY_TIMEOUT_S    120 /* kubernetes.scale_ready_timeout_s default */
#define BENCH_INSTANCE_READY_TIMEOUT_S 30  /* local.instance.ready_timeout_s default */
#define BENCH_INSTANCE_MAX_ARGS        64
#define BENCH_INSTANCE_MAX_ENV         64

/* Sleep up to ms; true when the job was cancelled (then the wait should end). */
typedef bool bench_sleep_fn(void *arg, int64_t ms);

/* ---- Target checks (pure; spec.c) ---- */

/* Can target run scale-out lanes? Checks the adapter's settings without touching anything.
 * 0, or OSP_EINVAL with err saying what the target lacks (the caller prefixes the field). */
int bench_scale_check_target(const json_t *target, struct osp_err *err);

/* ---- The scaler: one per job ---- */

struct bench_scaler;

/* Prepare for target (borrowed; outlives the scaler). health_path: what local instances are
 * awaited on. NULL with err when the adapter cannot be set up (no token, bad settings). */
struct bench_scaler *bench_scaler_new(const json_t *target, const char *health_path,
                                      bench_sleep_fn *sleep, void *sleep_arg, struct osp_err *err);
/* Restores first when a scale is pending (as bench_scale_restore with cancelled = true),
 * then frees. NULL is a no-op. */
void bench_scaler_free(struct bench_scaler *sc);

/* Bring the target to `replicas` and say where the lane sends its load (url, "http://..."
 * written into url_cap bytes). Evidence of what was done goes into ev (borrowed object):
 * kubernetes {deployment, from, to, patched, ready_replicas, ready_ms, polls}; local
 * {instances: [{index, pid, port}], balancer, ready_ms}. Returns 0, OSP_ECANCELED when the
 * job was cancelled while waiting, OSP_ETIMEDOUT when the target did not become ready in
 * time, another negative code on errors. Whatever it returns, bench_scale_pending() says
 * whether something must be restored. */
int bench_scale_up(struct bench_scaler *sc, unsigned replicas, json_t *ev, char *url,
                   size_t url_cap, struct osp_err *err);
/* True when the target was changed and not yet restored. */
bool bench_scale_pending(const struct bench_scaler *sc);
/* Put the target back: kubernetes PATCHes the count read by bench_scale_up (retried within
 * its bound) and, unless cancelled, waits for it to be ready; local stops the balancer and
 * every instance (SIGTERM, then SIGKILL) and reaps them. cancelled shortens every bound so it
 * fits the worker's kill grace. Fills ev {restored, ...}. 0 when restored (even if not
 * awaited), a negative code with err when the target could not be put back. Idempotent. */
int bench_scale_restore(struct bench_scaler *sc, bool cancelled, json_t *ev, struct osp_err *err);

/* ---- Local instances (instances.c) ---- */

struct bench_instances {
    pid_t pids[BENCH_MAX_REPLICAS];
    unsigned ports[BENCH_MAX_REPLICAS];
    unsigned n;
};

/* Start n instances from spec (the target's local.instance object, checked): each on a free
 * loopback port, {port} and {index} substituted in argv and env, a clean environment (env
 * only), stdout/stderr to spec.log or /dev/null, in this process group, killed if this
 * process dies. 0 or a negative code with err; instances already started stay recorded for
 * bench_instances_stop. */
int bench_instances_start(struct bench_instances *in, const json_t *spec, unsigned n,
                          struct osp_err *err);
/* Wait until every instance answers GET health_path with 2xx, for at most timeout_ms; an
 * instance that exits fails at once. 0, OSP_ECANCELED, OSP_ETIMEDOUT or OSP_EFAILED with err. */
int bench_instances_wait_ready(struct bench_instances *in, const char *health_path,
                               int64_t timeout_ms, bench_sleep_fn *sleep, void *sleep_arg,
                               struct osp_err *err);
/* SIGTERM every instance, wait up to grace_ms, SIGKILL the rest, reap all. Adds
 * {stopped, killed, alive_after} to ev. Idempotent. */
void bench_instances_stop(struct bench_instances *in, int64_t grace_ms, json_t *ev);

/* ---- Round-robin balancer (balancer.c) ---- */

struct bench_balancer;

/* Listen on 127.0.0.1 (a free port) and hand each accepted connection to the next of the n
 * loopback ports in turn, on a libev loop in a thread of its own. NULL with err on failure. */
struct bench_balancer *bench_balancer_start(const unsigned *ports, unsigned n, struct osp_err *err);
/* The port it listens on. */
unsigned bench_balancer_port(const struct bench_balancer *b);
/* Stop the thread, close every connection, free; returns its counters
 * {connections: [per upstream], upstream_failures} (owned). NULL gives NULL. */
json_t *bench_balancer_stop(struct bench_balancer *b);

#endif
