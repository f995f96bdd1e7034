/* SPDX-License-Identifier: MIT */
/* drill.c — the drill kind: a controlled fault with a measured recovery story.
 *
 *   steady  probes must meet steady_state (checks, min_availability) or the drill stops as
 *           "aborted" with nothing injected
 *   inject  apply the fault (local: signal the pidfile's process, fork CPU workers, turn on the
 *           proxy's delay; kubernetes: evict/delete pods, create a StressChaos/NetworkChaos)
 *   observe the fault's duration; an abort condition (availability under X over the last Y s)
 *           ends it early
 *   rollback always once inject was attempted: also on abort, cancel, timeout and drain, and
 *           always before run() returns (cancel() only repeats it if something is left)
 *   recovery probes until K consecutive passes, bounded (shortened to a short check when
 *           cancelled, so the rollback is still verified within the worker's 5 s grace)
 *
 * Everything runs on one private libev loop in the job's child: the prober, the latency proxy
 * and the wake-up timer; phases are sequential code that runs the loop in slices, so blocking
 * adapter calls happen between slices and the prober catches up on its fixed schedule. */
#include "jobs/drill/drill.h"
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/drill/k8s.h"
#include "jobs/job.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const drill_phase_names[DRILL_PH_COUNT] = {"steady", "inject", "observe",
                                                              "rollback", "recovery"};

struct drill_run {
    struct job_ctx *ctx;
    struct drill_spec spec;
    struct ev_loop *loop;
    ev_timer wake; /* bounds every loop slice, so cancellation is seen promptly */
    struct drill_prober *pr;
    struct drill_proxy *px;
    struct drill_k8s *k8s;
    struct drill_stress *stress; /* drill_workers: see below */
    int64_t t0_ns;
    int64_t phase_start_ms[DRILL_PH_COUNT], phase_end_ms[DRILL_PH_COUNT];
    int64_t inject_ms, fault_end_ms, rollback_done_ms; /* -1 when it did not happen */
    bool inject_attempted, rolled_back;
    json_t *inject_ev, *rollback_ev, *abort_ev; /* owned evidence objects */
    struct drill_outcome out;
};

/* The CPU workers of the run in progress. File-scope (one drill per child process) so that
 * kind->cancel(), which the framework calls after run() returns, can still reach workers that
 * a run failed to stop; run() stops them on every path, so normally cancel finds none. */
static struct drill_stress drill_workers;

static int64_t drill_ms(const struct drill_run *r)
{
    return (osp_mono_ns() - r->t0_ns) / 1000000;
}

static void drill_on_wake(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* Run the loop until stop(r) is true, until_ns passes, or the job is cancelled (when
 * honour_cancel). Returns true when it ended because of cancellation. */
static bool drill_wait(struct drill_run *r, int64_t until_ns, bool (*stop)(struct drill_run *),
                       bool honour_cancel)
{
    for (;;) {
        if (honour_cancel && job_is_cancelled(r->ctx)) {
            return true;
        }
        if (osp_mono_ns() >= until_ns || (stop != NULL && stop(r))) {
            return false;
        }
        ev_run(r->loop, EVRUN_ONCE);
    }
}

static bool drill_k8s_idle(void *arg, int64_t ms, bool honour_cancel)
{
    struct drill_run *r = arg;
    return drill_wait(r, osp_mono_ns() + ms * 1000000, NULL, honour_cancel);
}

static void drill_phase_begin(struct drill_run *r, enum drill_phase ph)
{
    r->phase_start_ms[ph] = drill_ms(r);
    if (r->pr != NULL) {
        drill_prober_set_phase(r->pr, ph);
    }
    job_emit(r->ctx, "phase",
             json_pack("{s:s, s:s, s:I}", "phase", drill_phase_names[ph], "status", "start",
                       "at_ms", (json_int_t)r->phase_start_ms[ph]));
}

static json_t *drill_num_or_null(double v)
{
    return v < 0 ? json_null() : json_real(v);
}

static json_t *drill_stats_json(const struct drill_phase_stats *st)
{
    static const char *const perr[DRILL_PERR_COUNT] = {"none",     "connect", "timeout", "io",
                                                       "protocol", "status",  "slow"};
    json_t *errors = json_object();
    for (int i = 1; i < DRILL_PERR_COUNT; i++) {
        if (st->errors[i] > 0) {
            json_object_set_new(errors, perr[i], json_integer(st->errors[i]));
        }
    }
    return json_pack("{s:i, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o}", "probes", (int)st->total,
                     "ok", (int)st->ok, "failed", (int)(st->total - st->ok), "availability",
                     drill_num_or_null(st->availability), "p50_ms", drill_num_or_null(st->p50_ms),
                     "p95_ms", drill_num_or_null(st->p95_ms), "p99_ms",
                     drill_num_or_null(st->p99_ms), "max_ms", drill_num_or_null(st->max_ms),
                     "errors", errors);
}

static void drill_phase_end(struct drill_run *r, enum drill_phase ph, json_t *extra)
{
    r->phase_end_ms[ph] = drill_ms(r);
    json_t *ev = json_pack("{s:s, s:s, s:I}", "phase", drill_phase_names[ph], "status", "end",
                           "at_ms", (json_int_t)r->phase_end_ms[ph]);
    if (r->pr != NULL) {
        struct drill_phase_stats st;
        drill_phase_stats(drill_prober_series(r->pr), (int)ph, &st);
        json_object_set_new(ev, "probes", drill_stats_json(&st));
    }
    if (extra != NULL) {
        json_object_update(ev, extra);
        json_decref(extra);
    }
    job_emit(r->ctx, "phase", ev);
}

static bool drill_no_inflight(struct drill_run *r)
{
    return drill_prober_inflight(r->pr) == 0;
}

static bool drill_steady_ticked(struct drill_run *r)
{
    return drill_prober_ticks(r->pr) >= r->spec.steady_checks;
}

static bool drill_recovered(struct drill_run *r)
{
    return drill_tail_passes(drill_prober_series(r->pr), DRILL_PH_RECOVERY) >=
           r->spec.recovery_consecutive;
}

/* ---- Faults ---- */

static int drill_inject(struct drill_run *r, struct osp_err *err)
{
    const struct drill_spec *s = &r->spec;
    json_t *ev = r->inject_ev;
    json_object_set_new(ev, "fault", json_string(drill_fault_name(s->fault)));
    if (s->adapter == DRILL_ADAPTER_K8S) {
        if (s->fault == DRILL_FAULT_RESTART) {
            return drill_k8s_restart(r->k8s, s, ev, err);
        }
        return drill_k8s_chaos_create(r->k8s, s, ev, err);
    }
    const json_t *local = json_object_get(s->target, "local");
    switch (s->fault) {
    case DRILL_FAULT_RESTART: {
        pid_t pid = 0;
        int rc = drill_read_pidfile(osp_target_str(local, "pidfile"), &pid, err);
        if (rc != 0) {
            return rc;
        }
        /* Never signal ourselves or our own process group (a pidfile pointing at the worker). */
        if (pid == getpid() || pid == getppid() || pid == getpgrp()) {
            return osp_err_set(err, OSP_EINVAL, "pidfile names the drill's own process");
        }
        json_object_set_new(ev, "pid", json_integer(pid));
        json_object_set_new(ev, "signal", json_string(s->signal == SIGKILL ? "KILL" : "TERM"));
        if (kill(pid, s->signal) != 0) {
            return osp_err_set(err, -errno, "kill(%d): %s", (int)pid, strerror(errno));
        }
        return 0;
    }
    case DRILL_FAULT_CPU: {
        int rc = drill_stress_start(r->stress, s->cpu_workers, s->cpu_load, s->duration_s);
        json_t *pids = json_array();
        for (unsigned i = 0; i < r->stress->n; i++) {
            json_array_append_new(pids, json_integer(r->stress->pids[i]));
        }
        json_object_set_new(ev, "stress_pids", pids);
        json_object_set_new(ev, "workers", json_integer(s->cpu_workers));
        json_object_set_new(ev, "load", json_integer(s->cpu_load));
        return rc == 0 ? 0 : osp_err_set(err, rc, "fork of a stress worker failed");
    }
    case DRILL_FAULT_LATENCY:
        drill_proxy_set_delay(r->px, s->latency_ms, s->jitter_ms);
        json_object_set_new(ev, "latency_ms", json_integer(s->latency_ms));
        json_object_set_new(ev, "jitter_ms", json_integer(s->jitter_ms));
        json_object_set_new(ev, "proxy", json_string(osp_target_str(local, "proxy_listen")));
        return 0;
    }
    return OSP_EINVAL;
}

/* Undo whatever inject did. Each step runs even when an earlier one failed (a failed step must
 * not skip later rollbacks). Returns 0 or the first error. */
static int drill_rollback(struct drill_run *r, bool cancelled, struct osp_err *err)
{
    const struct drill_spec *s = &r->spec;
    json_t *ev = r->rollback_ev;
    int rc = 0;
    if (r->stress->n > 0) {
        drill_stress_stop(r->stress, ev);
    }
    if (r->px != NULL && s->fault == DRILL_FAULT_LATENCY) {
        drill_proxy_set_delay(r->px, 0, 0);
        json_object_set_new(ev, "proxy_delay_ms", json_integer(0));
    }
    if (r->k8s != NULL && drill_k8s_chaos_pending(r->k8s)) {
        rc = drill_k8s_chaos_delete(r->k8s, cancelled ? 2500 : 15000, ev, err);
    }
    if (s->fault == DRILL_FAULT_RESTART) {
        /* Nothing to undo: the supervisor (local) or the ReplicaSet (kubernetes) brings the
         * process back; recovery measures how fast. */
        json_object_set_new(ev, "note",
                            json_string("restart is not reverted; recovery is measured"));
    }
    r->rolled_back = true;
    return rc;
}

/* The abort condition: availability over the last window_s of completed probes. Requires
 * half a window of samples so one early failure cannot end a drill. */
static bool drill_abort_check(struct drill_run *r)
{
    const struct drill_spec *s = &r->spec;
    if (s->abort_min_availability < 0) {
        return false;
    }
    int64_t now = drill_ms(r);
    int64_t from = now - (int64_t)s->abort_window_s * 1000;
    if (from < r->inject_ms) {
        return false; /* the window must lie entirely under the fault */
    }
    unsigned n = 0;
    double a = drill_availability_between(drill_prober_series(r->pr), from, now, &n);
    unsigned need = s->abort_window_s * 1000 / s->interval_ms / 2;
    if (n < need || n < 2 || a >= s->abort_min_availability) {
        return false;
    }
    r->abort_ev = json_pack("{s:s, s:I, s:f, s:i, s:i}", "reason", "availability_below", "at_ms",
                            (json_int_t)now, "availability", a, "window_s", (int)s->abort_window_s,
                            "probes", (int)n);
    return true;
}

static bool drill_observe_stop(struct drill_run *r)
{
    return r->abort_ev != NULL || drill_abort_check(r);
}

/* ---- Result ---- */

static json_t *drill_fault_json(const struct drill_spec *s)
{
    json_t *f = json_pack("{s:s, s:i}", "type", drill_fault_name(s->fault), "duration_s",
                          (int)s->duration_s);
    if (s->fault == DRILL_FAULT_CPU) {
        json_object_set_new(f, "workers", json_integer(s->cpu_workers));
        json_object_set_new(f, "load", json_integer(s->cpu_load));
    } else if (s->fault == DRILL_FAULT_LATENCY) {
        json_object_set_new(f, "latency_ms", json_integer(s->latency_ms));
        json_object_set_new(f, "jitter_ms", json_integer(s->jitter_ms));
    } else if (s->adapter == DRILL_ADAPTER_K8S) {
        json_object_set_new(f, "pods", json_integer(s->pods));
        json_object_set_new(f, "method", json_string(s->evict ? "evict" : "delete"));
    } else {
        json_object_set_new(f, "signal", json_string(s->signal == SIGKILL ? "KILL" : "TERM"));
    }
    return f;
}

static json_t *drill_ms_or_null(int64_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static int drill_finish(struct drill_run *r, int64_t started_wall_ms)
{
    const struct drill_spec *s = &r->spec;
    const struct drill_series *series = drill_prober_series(r->pr);
    struct drill_outcome *o = &r->out;
    json_t *phases = json_object();
    for (int ph = 0; ph < DRILL_PH_COUNT; ph++) {
        if (r->phase_start_ms[ph] < 0) {
            continue;
        }
        struct drill_phase_stats st;
        drill_phase_stats(series, ph, &st);
        json_t *j = drill_stats_json(&st);
        json_object_set_new(j, "start_ms", json_integer(r->phase_start_ms[ph]));
        json_object_set_new(j, "end_ms", drill_ms_or_null(r->phase_end_ms[ph]));
        json_object_set_new(phases, drill_phase_names[ph], j);
        if (ph == DRILL_PH_OBSERVE) {
            o->observe_p95_ms = st.p95_ms;
        }
    }
    struct drill_phase_stats all;
    drill_phase_stats(series, DRILL_PH_COUNT, &all);
    if (r->inject_ms >= 0) {
        o->ttd_ms = drill_time_to_detect(series, r->inject_ms);
        o->ttr_ms = drill_time_to_recover(series, r->fault_end_ms, s->recovery_consecutive);
        o->availability_under_fault =
            drill_availability_between(series, r->inject_ms, INT64_MAX, &o->under_fault_probes);
    }
    json_t *reasons = json_array();
    const char *verdict = drill_verdict(s, o, reasons);
    json_t *hyp = json_object_get(job_payload(r->ctx), "hypothesis");
    json_t *probes =
        json_pack("{s:i, s:i, s:i, s:i, s:i, s:[s]}", "total", (int)all.total, "ok", (int)all.ok,
                  "interval_ms", (int)s->interval_ms, "timeout_ms", (int)s->timeout_ms,
                  "recovery_consecutive", (int)s->recovery_consecutive, "paths", s->health_path);
    if (s->user_path != NULL) {
        json_array_append_new(json_object_get(probes, "paths"), json_string(s->user_path));
    }
    json_t *timeline = json_pack("{s:o, s:o, s:o}", "inject_ms", drill_ms_or_null(r->inject_ms),
                                 "fault_end_ms", drill_ms_or_null(r->fault_end_ms),
                                 "rollback_done_ms", drill_ms_or_null(r->rollback_done_ms));
    json_t *res =
        json_pack("{s:s, s:s, s:o, s:s, s:o, s:O?, s:b, s:b, s:b, s:o, s:o, s:o, s:o, s:O, s:O, "
                  "s:o, s:O, s:O, "
                  "s:O?, s:I, s:I}",
                  "target", s->target_name, "adapter",
                  s->adapter == DRILL_ADAPTER_K8S ? "kubernetes" : "local", "fault",
                  drill_fault_json(s), "verdict", verdict, "reasons", reasons, "hypothesis", hyp,
                  "injected", o->injected, "rolled_back", r->rolled_back, "recovered", o->recovered,
                  "time_to_detect_ms", drill_ms_or_null(o->ttd_ms), "time_to_recover_ms",
                  drill_ms_or_null(o->ttr_ms), "availability", drill_num_or_null(all.availability),
                  "availability_under_fault", drill_num_or_null(o->availability_under_fault),
                  "probes", probes, "phases", phases, "timeline", timeline, "inject", r->inject_ev,
                  "rollback", r->rollback_ev, "abort", r->abort_ev, "started_at_ms",
                  (json_int_t)started_wall_ms, "duration_ms", (json_int_t)drill_ms(r));
    if (r->px != NULL) {
        json_object_set_new(res, "proxy", drill_proxy_stats(r->px));
    }
    job_emit(r->ctx, "verdict",
             json_pack("{s:s, s:O, s:o, s:o}", "verdict", verdict, "reasons", reasons,
                       "time_to_detect_ms", drill_ms_or_null(o->ttd_ms), "time_to_recover_ms",
                       drill_ms_or_null(o->ttr_ms)));
    job_add_row(r->ctx, "drill_results",
                json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:O, s:O}", "target", s->target_name,
                          "fault", drill_fault_name(s->fault), "verdict", verdict, "availability",
                          drill_num_or_null(all.availability), "time_to_detect_ms",
                          drill_ms_or_null(o->ttd_ms), "time_to_recover_ms",
                          drill_ms_or_null(o->ttr_ms), "probes", probes, "phases", phases));
    json_decref(probes); /* res and the row hold their own references */
    json_decref(phases);
    job_set_result(r->ctx, res);
    if (strcmp(verdict, "pass") == 0) {
        return 0;
    }
    if (strcmp(verdict, "interrupted") == 0) {
        job_fail(r->ctx, "drill interrupted (cancel, timeout or drain); fault rolled back");
        return OSP_ECANCELED;
    }
    /* fail (the hypothesis did not hold) and aborted (steady state not met, or the abort
     * condition fired) judged the system: final. error and inconclusive are retried. */
    if (strcmp(verdict, "fail") == 0 || strcmp(verdict, "aborted") == 0) {
        return job_verdict_failed(r->ctx, "drill verdict %s: %s", verdict,
                                  json_string_value(json_array_get(reasons, 0)));
    }
    return job_fail(r->ctx, "drill verdict %s: %s", verdict,
                    json_string_value(json_array_get(reasons, 0)));
}

/* ---- The story ---- */

static int drill_story(struct drill_run *r)
{
    const struct drill_spec *s = &r->spec;
    struct osp_err err = {0};
    int64_t interval_ns = (int64_t)s->interval_ms * 1000000;
    int64_t timeout_ns = (int64_t)s->timeout_ms * 1000000;

    /* Steady state: N ticks, then their answers, then the gate. */
    drill_phase_begin(r, DRILL_PH_STEADY);
    drill_prober_start(r->pr);
    bool cancelled = drill_wait(r, osp_mono_ns() + (s->steady_checks + 1) * interval_ns,
                                drill_steady_ticked, true);
    drill_prober_stop(r->pr);
    cancelled =
        drill_wait(r, osp_mono_ns() + timeout_ns + 100000000, drill_no_inflight, true) || cancelled;
    struct drill_phase_stats st;
    drill_phase_stats(drill_prober_series(r->pr), DRILL_PH_STEADY, &st);
    bool gate = st.total > 0 && st.availability >= s->steady_min_availability;
    drill_phase_end(r, DRILL_PH_STEADY,
                    json_pack("{s:b, s:f}", "passed", gate && !cancelled, "min_availability",
                              s->steady_min_availability));
    if (cancelled) {
        r->out.cancelled = true;
        return 0;
    }
    if (!gate) {
        r->out.steady_failed = true;
        return 0;
    }

    /* Inject: the prober runs from here to the end on one schedule. */
    drill_prober_start(r->pr);
    drill_phase_begin(r, DRILL_PH_INJECT);
    r->inject_ms = drill_ms(r);
    r->inject_attempted = true;
    int rc = drill_inject(r, &err);
    if (rc == OSP_ECONFLICT) {
        /* e.g. every eviction refused by a PDB: nothing was injected; say why and stop. */
        json_object_set_new(r->inject_ev, "error", json_string(err.msg));
        drill_phase_end(r, DRILL_PH_INJECT, json_pack("{s:b}", "injected", 0));
        r->inject_ms = -1;
        r->abort_ev = json_pack("{s:s, s:s}", "reason", "not_injected", "detail", err.msg);
        r->out.abort_fired = true;
        return 0;
    }
    if (rc != 0) {
        json_object_set_new(r->inject_ev, "error", json_string(err.msg));
        r->out.error = true;
    }
    r->out.injected = true; /* maybe partly: rollback runs either way */
    json_t *inj = json_deep_copy(r->inject_ev);
    json_object_set_new(inj, "injected", json_boolean(rc == 0));
    drill_phase_end(r, DRILL_PH_INJECT, inj);
    /* An instantaneous fault (a restart) is over once applied: recovery is timed from here. */
    if (s->fault == DRILL_FAULT_RESTART) {
        r->fault_end_ms = r->inject_ms;
    }

    /* Observe for the fault's duration, unless the inject failed or an abort fires. */
    if (rc == 0) {
        drill_phase_begin(r, DRILL_PH_OBSERVE);
        int64_t end_ns = r->t0_ns + (r->inject_ms + (int64_t)s->duration_s * 1000) * 1000000;
        bool chaos = s->adapter == DRILL_ADAPTER_K8S && s->fault != DRILL_FAULT_RESTART;
        bool confirmed = false;
        json_t *conf = json_object();
        while (!cancelled && r->abort_ev == NULL && osp_mono_ns() < end_ns) {
            /* While a chaos object is unconfirmed, wake once a second to read its status. */
            int64_t until = end_ns;
            if (chaos && !confirmed && osp_mono_ns() + 1000000000 < end_ns) {
                until = osp_mono_ns() + 1000000000;
            }
            cancelled = drill_wait(r, until, drill_observe_stop, true);
            if (chaos && !confirmed && !cancelled) {
                /* Chaos Mesh applies the fault asynchronously: read AllInjected until it
                 * says True, so the evidence distinguishes "applied" from "requested". */
                if (drill_k8s_chaos_condition(r->k8s, "AllInjected", &err) == 1) {
                    confirmed = true;
                    json_object_set_new(conf, "injection_confirmed_ms", json_integer(drill_ms(r)));
                }
            }
        }
        if (chaos) {
            json_object_set_new(conf, "injection_confirmed", json_boolean(confirmed));
            json_object_set_new(r->inject_ev, "confirmed", json_boolean(confirmed));
        }
        if (s->fault == DRILL_FAULT_CPU) {
            json_object_set_new(conf, "stress_alive_at_end",
                                json_integer(drill_stress_alive(r->stress)));
        }
        if (r->abort_ev != NULL) {
            r->out.abort_fired = true;
            job_emit(r->ctx, "abort", json_incref(r->abort_ev));
        }
        drill_phase_end(r, DRILL_PH_OBSERVE, conf);
    }
    r->out.cancelled = cancelled;
    return 0;
}

/* Rollback and recovery: outside drill_story so every path through the story reaches them. */
static void drill_unwind(struct drill_run *r)
{
    const struct drill_spec *s = &r->spec;
    struct osp_err err = {0};
    bool cancelled = r->out.cancelled || job_is_cancelled(r->ctx);
    if (r->inject_attempted && r->inject_ms >= 0) {
        drill_phase_begin(r, DRILL_PH_ROLLBACK);
        if (r->fault_end_ms < 0) {
            r->fault_end_ms = drill_ms(r);
        }
        if (drill_rollback(r, cancelled, &err) != 0) {
            json_object_set_new(r->rollback_ev, "error", json_string(err.msg));
            r->out.error = true;
        }
        r->rollback_done_ms = drill_ms(r);
        drill_phase_end(r, DRILL_PH_ROLLBACK, json_deep_copy(r->rollback_ev));

        /* Recovery: until K consecutive passes. When cancelled, a short bounded check only,
         * so the evidence still shows the rollback took (the proxy answers fast again). */
        drill_phase_begin(r, DRILL_PH_RECOVERY);
        int64_t budget_ns = cancelled ? 1500000000 : (int64_t)s->recovery_timeout_s * 1000000000;
        drill_wait(r, osp_mono_ns() + budget_ns, drill_recovered, !cancelled);
        r->out.recovered = drill_recovered(r);
        drill_phase_end(r, DRILL_PH_RECOVERY, json_pack("{s:b}", "recovered", r->out.recovered));
    } else if (r->inject_attempted) {
        /* Inject reported nothing applied; still make sure nothing is left behind. */
        drill_rollback(r, cancelled, &err);
    }
    drill_prober_stop(r->pr);
    drill_wait(r, osp_mono_ns() + (int64_t)s->timeout_ms * 1000000 + 100000000, drill_no_inflight,
               false);
    r->out.cancelled = r->out.cancelled || cancelled;
}

static int drill_run(struct job_ctx *ctx)
{
    struct drill_run r;
    struct osp_err err = {0};
    int rc = 0;
    memset(&r, 0, sizeof(r));
    r.ctx = ctx;
    r.stress = &drill_workers;
    r.inject_ms = r.fault_end_ms = r.rollback_done_ms = -1;
    r.out.ttd_ms = r.out.ttr_ms = -1;
    r.out.availability_under_fault = -1;
    r.out.observe_p95_ms = -1;
    for (int i = 0; i < DRILL_PH_COUNT; i++) {
        r.phase_start_ms[i] = r.phase_end_ms[i] = -1;
    }
    r.inject_ev = json_object();
    r.rollback_ev = json_object();
    int64_t started_wall_ms = osp_now_ms();
    if (drill_spec_parse(job_payload(ctx), job_targets(ctx), &r.spec, &err) != 0) {
        rc = job_fail(ctx, "%s", err.msg);
        goto out;
    }
    unsigned budget = drill_spec_budget_s(&r.spec);
    int64_t deadline = job_deadline_ns(ctx);
    if (deadline > 0 && osp_mono_ns() + (int64_t)budget * 1000000000 > deadline) {
        rc = job_fail(ctx,
                      "the attempt's timeout is shorter than the drill's worst case (%u s): "
                      "raise timeout_s or shorten the drill",
                      budget);
        goto out;
    }
    r.loop = ev_loop_new(EVFLAG_AUTO);
    if (r.loop == NULL) {
        rc = job_fail(ctx, "cannot create an event loop");
        goto out;
    }
    ev_timer_init(&r.wake, drill_on_wake, 0.025, 0.025);
    ev_timer_start(r.loop, &r.wake);
    r.t0_ns = osp_mono_ns();
    const json_t *local = json_object_get(r.spec.target, "local");
    if (r.spec.adapter == DRILL_ADAPTER_LOCAL && osp_target_str(local, "proxy_listen") != NULL) {
        r.px = drill_proxy_new(r.loop, osp_target_str(local, "proxy_listen"),
                               osp_target_str(local, "upstream"), &err);
        if (r.px == NULL) {
            rc = job_fail(ctx, "%s", err.msg);
            goto out;
        }
    }
    if (r.spec.adapter == DRILL_ADAPTER_K8S) {
        r.k8s = drill_k8s_new(json_object_get(r.spec.target, "kubernetes"), job_info(ctx)->id,
                              drill_k8s_idle, &r, &err);
        if (r.k8s == NULL) {
            rc = job_fail(ctx, "%s", err.msg);
            goto out;
        }
    }
    r.pr = drill_prober_new(r.loop, &r.spec, r.t0_ns, &err);
    if (r.pr == NULL) {
        rc = job_fail(ctx, "%s", err.msg);
        goto out;
    }
    job_emit(ctx, "drill",
             json_pack("{s:s, s:s, s:o, s:i, s:i}", "target", r.spec.target_name, "base_url",
                       r.spec.base_url, "fault", drill_fault_json(&r.spec), "interval_ms",
                       (int)r.spec.interval_ms, "budget_s", (int)budget));
    drill_story(&r);
    drill_unwind(&r);
    rc = drill_finish(&r, started_wall_ms);
out:
    if (r.stress->n > 0) {
        drill_stress_stop(r.stress, r.rollback_ev); /* only on setup failures: never injected */
    }
    drill_prober_free(r.pr);
    drill_proxy_free(r.px);
    drill_k8s_free(r.k8s);
    if (r.loop != NULL) {
        ev_timer_stop(r.loop, &r.wake);
        ev_loop_destroy(r.loop);
    }
    json_decref(r.inject_ev);
    json_decref(r.rollback_ev);
    json_decref(r.abort_ev);
    return rc;
}

/* The framework calls this after run() returns when the attempt was cancelled. run() rolls
 * back on every path before returning (the proxy and chaos objects cannot outlive it: the
 * proxy is freed, chaos objects are deleted and carry their own duration), so only stray CPU
 * workers could remain, and they are stopped here. Idempotent. */
static void drill_cancel(struct job_ctx *ctx)
{
    (void)ctx;
    if (drill_workers.n > 0) {
        json_t *ev = json_object();
        drill_stress_stop(&drill_workers, ev);
        json_decref(ev);
    }
}

static int drill_validate(const json_t *payload, const struct osp_targets *targets,
                          struct osp_err *err)
{
    return drill_spec_parse(payload, targets, NULL, err);
}

const struct job_kind job_kind_drill = {
    .name = "drill",
    .abi = JOB_KIND_ABI,
    .validate = drill_validate,
    .run = drill_run,
    .cancel = drill_cancel,
    .is_inline = NULL,
    .default_timeout_s = 1800,
};
