/* SPDX-License-Identifier: MIT */
/* drill.h — the drill kind's internal contract, shared by the files of jobs/drill/ only.
 *
 * A drill is a story in phases (steady → inject → observe → rollback → recovery) measured by
 * HTTP probes on a fixed cadence. This header holds the pieces that are pure and unit-tested
 * (payload spec, probe series, per-phase statistics, verdict, HTTP response parsing) and the
 * event-driven parts the runner drives on one libev loop in the job's child: the prober, the
 * latency proxy and the CPU stress workers. The Kubernetes adapter lives in k8s.h.
 * Times in a series are milliseconds since the drill's start on the monotonic clock. */
#ifndef OSP_JOBS_DRILL_H
#define OSP_JOBS_DRILL_H

#include "common/buf.h"
#include "common/err.h"
#include "jobs/targets.h"

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- Payload ---- */

enum drill_fault_type { DRILL_FAULT_RESTART, DRILL_FAULT_CPU, DRILL_FAULT_LATENCY };
enum drill_adapter { DRILL_ADAPTER_LOCAL, DRILL_ADAPTER_K8S };

/* A validated payload, resolved against its target. Strings are borrowed from the payload or
 * the targets object, which outlive the spec. Durations: *_ms / *_s as named. */
struct drill_spec {
    const char *target_name;
    const json_t *target; /* the target object */
    enum drill_adapter adapter;
    enum drill_fault_type fault;
    unsigned duration_s;           /* observe phase (fault active); restart: observation */
    int signal;                    /* restart, local: SIGTERM or SIGKILL */
    unsigned pods;                 /* restart, kubernetes: how many pods, one at a time */
    bool evict;                    /* restart, kubernetes: Eviction API (else DELETE) */
    int grace_period_s;            /* restart, kubernetes: -1 = the pod's own */
    unsigned evict_timeout_s;      /* restart, kubernetes: retry budget while a PDB blocks */
    unsigned cpu_workers;          /* cpu: busy workers */
    unsigned cpu_load;             /* cpu: percent busy per worker, 1..100 */
    unsigned latency_ms;           /* latency: added delay */
    unsigned jitter_ms;            /* latency: uniform ±jitter */
    const char *base_url;          /* target's base_url */
    char probe_url[300];           /* what probes call: "http://<local.proxy_listen>" when the
                                    * target has a proxy (faults cross it), else base_url */
    const char *health_path;       /* target's health_path (default "/health") */
    const char *user_path;         /* payload probe.path or NULL */
    unsigned interval_ms;          /* probe cadence */
    unsigned timeout_ms;           /* per-probe timeout */
    unsigned max_latency_ms;       /* a slower probe counts as failed; 0 = no bound */
    unsigned status_lo, status_hi; /* accepted status range */
    unsigned steady_checks;        /* probe ticks in the steady state */
    double steady_min_availability;
    double abort_min_availability; /* < 0: no abort condition */
    unsigned abort_window_s;
    unsigned recovery_consecutive; /* K */
    unsigned recovery_timeout_s;
    int64_t hyp_max_ttr_ms;      /* -1 = not declared */
    int64_t hyp_max_ttd_ms;      /* -1 = not declared */
    double hyp_min_availability; /* < 0: not declared; over the probes from inject on */
    double hyp_max_p95_ms;       /* < 0: not declared; observe-phase p95 */
};

/* Validate payload against targets (NULL: target names and limits not checked) and, when spec
 * is not NULL and targets are given, fill it. 0 or OSP_EINVAL with err naming the field. */
int drill_spec_parse(const json_t *payload, const struct osp_targets *targets,
                     struct drill_spec *spec, struct osp_err *err);
/* Longest the drill can take (steady + observe + recovery + margins), in seconds. */
unsigned drill_spec_budget_s(const struct drill_spec *spec);
const char *drill_fault_name(enum drill_fault_type f);

/* ---- Probe series and statistics ---- */

enum drill_phase {
    DRILL_PH_STEADY,
    DRILL_PH_INJECT,
    DRILL_PH_OBSERVE,
    DRILL_PH_ROLLBACK,
    DRILL_PH_RECOVERY,
    DRILL_PH_COUNT
};

enum drill_perr {
    DRILL_PERR_NONE,
    DRILL_PERR_CONNECT, /* refused / unreachable */
    DRILL_PERR_TIMEOUT, /* no complete answer within timeout_ms */
    DRILL_PERR_IO,      /* reset or closed mid-response */
    DRILL_PERR_PROTO,   /* not an HTTP/1.x response */
    DRILL_PERR_STATUS,  /* status outside the accepted range */
    DRILL_PERR_SLOW,    /* answered, but slower than max_latency_ms */
    DRILL_PERR_COUNT
};

struct drill_probe {
    int64_t sched_ms;   /* intended send time: fixed cadence, never shifted by slow answers */
    int64_t done_ms;    /* completion (or timeout) time; -1 while in flight */
    int32_t latency_us; /* send to complete answer */
    int16_t status;     /* HTTP status; 0 when there was none */
    uint8_t phase;      /* enum drill_phase at the intended send time */
    uint8_t path;       /* 0 = health path, 1 = user path */
    uint8_t err;        /* enum drill_perr */
    bool ok;
};

struct drill_series {
    struct drill_probe *v; /* owned */
    size_t n, cap;
};

void drill_series_deinit(struct drill_series *s);
/* Append and return the index of a probe (the array may move: keep indexes, not pointers). */
size_t drill_series_add(struct drill_series *s, const struct drill_probe *p);

struct drill_phase_stats {
    unsigned total, ok;                    /* completed probes of the phase, and how many passed */
    double availability;                   /* ok / total; -1 when total == 0 */
    double p50_ms, p95_ms, p99_ms, max_ms; /* latency of answered probes; -1 when none */
    unsigned errors[DRILL_PERR_COUNT];
};

/* Statistics of completed probes whose phase is ph (ph == DRILL_PH_COUNT: all phases). */
void drill_phase_stats(const struct drill_series *s, int ph, struct drill_phase_stats *out);
/* Availability of completed probes with from_ms <= sched_ms < to_ms; -1 when none. */
double drill_availability_between(const struct drill_series *s, int64_t from_ms, int64_t to_ms,
                                  unsigned *count);
/* First failed probe at or after inject_ms: its sched_ms - inject_ms, or -1 when none failed. */
int64_t drill_time_to_detect(const struct drill_series *s, int64_t inject_ms);
/* From from_ms to the first probe of the first run of k consecutive passing probes (by intended
 * send time, probes sent at or after from_ms), or -1 when no such run exists. */
int64_t drill_time_to_recover(const struct drill_series *s, int64_t from_ms, unsigned k);
/* Length of the run of passing completed probes at the end of phase ph (by send time). */
unsigned drill_tail_passes(const struct drill_series *s, int ph);

/* What happened, for the verdict. */
struct drill_outcome {
    bool injected;                   /* the fault was applied (at least partly) */
    bool steady_failed;              /* the gate refused: nothing injected */
    bool abort_fired;                /* an abort condition ended the fault early */
    bool cancelled;                  /* cancel, timeout or drain interrupted the drill */
    bool error;                      /* the tool failed (inject or rollback error) */
    bool recovered;                  /* K consecutive passes seen in the recovery phase */
    int64_t ttd_ms, ttr_ms;          /* -1 when none */
    double availability_under_fault; /* probes from inject on; -1 when none */
    double observe_p95_ms;
    unsigned under_fault_probes;
};

/* The verdict word — pass | fail | aborted | interrupted | error | inconclusive — with the
 * reasons appended to reasons (an array, borrowed) as strings. Pure. */
const char *drill_verdict(const struct drill_spec *spec, const struct drill_outcome *o,
                          json_t *reasons);

/* ---- HTTP/1.1 response parsing (probe answers) ---- */

enum { DRILL_HTTP_BAD = -1, DRILL_HTTP_MORE = 0, DRILL_HTTP_DONE = 1 };

struct drill_http_resp {
    int status;
    size_t header_len;        /* bytes up to and including the blank line */
    long long content_length; /* -1 when absent */
    bool chunked;
};

/* Parse what has arrived of a response. eof says the peer closed. DONE when the response is
 * complete (Content-Length reached, last chunk seen, or eof after the headers of a response
 * without a length), MORE when more bytes are needed, BAD when it cannot be a valid response. */
int drill_http_parse(const char *buf, size_t len, bool eof, struct drill_http_resp *out);

/* Split "http://host[:port][/...]" into host and port. 0 or OSP_EINVAL. */
int drill_parse_base_url(const char *url, char *host, size_t host_cap, unsigned *port);
/* Split "host:port" (IPv4 or name). 0 or OSP_EINVAL. */
int drill_parse_hostport(const char *s, char *host, size_t host_cap, unsigned *port);

/* ---- Prober: probes on a fixed cadence on a libev loop ---- */

struct drill_prober;

/* Resolve the target address (blocking, once) and prepare. NULL with err on failure. */
struct drill_prober *drill_prober_new(struct ev_loop *loop, const struct drill_spec *spec,
                                      int64_t t0_ns, struct osp_err *err);
/* Start or stop ticking; stopping leaves in-flight probes to finish or time out. */
void drill_prober_start(struct drill_prober *p);
void drill_prober_stop(struct drill_prober *p);
void drill_prober_set_phase(struct drill_prober *p, enum drill_phase ph);
unsigned drill_prober_inflight(const struct drill_prober *p);
uint64_t drill_prober_ticks(const struct drill_prober *p);
const struct drill_series *drill_prober_series(const struct drill_prober *p);
/* Abandon in-flight probes (recorded as timeouts), stop, free. NULL is a no-op. */
void drill_prober_free(struct drill_prober *p);

/* ---- Latency proxy ---- */

struct drill_proxy;

/* Listen on listen ("host:port") and forward each connection to upstream. Passes bytes
 * through unchanged until drill_proxy_set_delay. NULL with err on failure. */
struct drill_proxy *drill_proxy_new(struct ev_loop *loop, const char *listen, const char *upstream,
                                    struct osp_err *err);
/* Delay server-to-client bytes by latency_ms ± jitter_ms (uniform, order kept). 0, 0 stops
 * delaying and releases what is queued at once. */
void drill_proxy_set_delay(struct drill_proxy *px, unsigned latency_ms, unsigned jitter_ms);
/* Counters for the evidence: connections accepted, chunks delayed. */
json_t *drill_proxy_stats(const struct drill_proxy *px);
/* Close the listener and every connection. NULL is a no-op. */
void drill_proxy_free(struct drill_proxy *px);

/* ---- Local faults ---- */

#define DRILL_STRESS_MAX 64

struct drill_stress {
    pid_t pids[DRILL_STRESS_MAX];
    unsigned n;
};

/* Fork n busy workers (load percent each) that end by themselves after duration_s (alarm and
 * RLIMIT_CPU) and when this process dies (parent-death signal). 0 or -errno; on failure the
 * workers already started stay recorded in st for drill_stress_stop. */
int drill_stress_start(struct drill_stress *st, unsigned n, unsigned load, unsigned duration_s);
/* How many recorded workers are still alive (kill(pid, 0)). */
unsigned drill_stress_alive(const struct drill_stress *st);
/* SIGKILL and reap every worker; adds {"pids": [...], "alive_after": n} to evidence. */
void drill_stress_stop(struct drill_stress *st, json_t *evidence);

/* Read a pid from pidfile (one decimal number). 0 or OSP_EINVAL / -errno with err. */
int drill_read_pidfile(const char *path, pid_t *pid, struct osp_err *err);

#endif
