/* SPDX-License-Identifier: MIT */
/* worker.h — the worker process context (the beanstalkd dat.h lesson at process scale): one
 * libev loop, N slots, one async Redis client and one async ledger client.
 *
 * A slot's life: IDLE -> RUNNING (inline: done in the same step; forked: until the child
 * exits) -> REPORTING (its outcome waits for the ledger commit) -> ACKING (its Redis
 * transition waits for the script) -> IDLE. A job is acknowledged in Redis only after its
 * outcome is committed in PostgreSQL; if either store is down the slot keeps its outcome and
 * the flush retries, while the heartbeat keeps the lease alive, so nothing is lost.
 * Writes to both stores are batched once per loop iteration (an ev_prepare watcher). */
#ifndef OSP_WORKER_H
#define OSP_WORKER_H

#include "common/config.h"
#include "common/envelope.h"
#include "common/ledger.h"
#include "common/rq.h"
#include "jobs/job.h"
#include "jobs/runner.h"
#include "jobs/targets.h"

#include <ev.h>
#include <sys/types.h>

/* LEASING: fetched and checked, waiting for the answer of the target-lease op (ADR 0008);
 * nothing has been written to the ledger yet. */
enum slot_state { SLOT_IDLE, SLOT_LEASING, SLOT_RUNNING, SLOT_REPORTING, SLOT_ACKING };

/* How an attempt ended, decided in the parent. */
enum slot_end {
    END_NONE,
    END_SUCCEEDED,
    END_FAILED,    /* run() returned an error */
    END_VERDICT,   /* run() judged the system and the verdict failed: final, never retried */
    END_TIMEOUT,   /* killed at its hard deadline */
    END_CRASHED,   /* the child died without reporting */
    END_CANCELLED, /* cancelled by an operator */
    END_REJECTED,  /* could not run at all: undecodable, unverifiable, invalid, wrong kind */
    END_HANDBACK,  /* drain deadline: handed back to the queue, attempt not consumed */
    END_LOST,      /* the envelope was reaped from us meanwhile: someone else owns it now */
};

struct wrk;
struct wrk_podcost;
struct osp_http;
struct osp_metrics;
struct osp_metric;

struct slot {
    struct wrk *w;
    int index;
    enum slot_state state;
    char kind[OSP_KIND_MAX + 1]; /* queue it came from */
    struct osp_buf env;          /* the envelope exactly as held in Redis */
    struct osp_job job;          /* decoded (valid only when decoded == true) */
    bool decoded;
    const struct job_kind *jk;
    pid_t pid;                   /* child, 0 when none */
    ev_child child_w;
    ev_io pipe_w;
    ev_timer deadline_w;         /* hard timeout, then the kill grace */
    int pipe_fd;
    struct osp_buf rbuf;         /* partial frames from the child */
    struct job_report report;
    size_t events_committed;     /* report.events already in the ledger */
    size_t events_sent;          /* ... included in the commit in flight */
    int64_t started_ms;
    int64_t started_ns;
    int64_t finished_ms;
    bool cancel_requested;       /* operator cancel seen (renew/start returned 2) */
    bool lost;                   /* reaped from us meanwhile: stop, write nothing */
    bool untrusted;              /* failed verification: never write its id to the ledger */
    bool timed_out;
    bool handback;               /* drain deadline passed */
    bool no_ledger;              /* never started (lease unanswered): Redis only, no run row */
    bool term_sent;              /* SIGTERM sent; SIGKILL follows after the grace */
    int wait_status;
    enum slot_end end;
    char *end_error;             /* owned: reason for failed/rejected/crashed */
    /* stage flags for the two flushes */
    bool pg_pending, pg_inflight, rq_pending, rq_inflight;
    bool restore;                /* the ledger had no row for this job: re-create it first */
    struct osp_buf new_env;      /* retry: the next attempt's envelope */
    int64_t due_ms;              /* retry: when */
    const char *next_state;      /* succeeded | retrying | dead | cancelled | queued */
};

/* A forked job's start, written to both stores (inline jobs finish in the same step and
 * need none). Kept by value in two queues, one per store, so each flush can retry alone. */
struct start_rec {
    char id[OSP_ID_LEN + 1];
    char kind[OSP_KIND_MAX + 1];
    unsigned attempt;
    int64_t at_ms;
    int slot;                     /* index, to act on the Redis result */
};

struct start_q {
    struct start_rec *v;
    size_t n, cap;
    size_t sent;                  /* v[0..sent) are in the request in flight */
};

struct wrk {
    struct ev_loop *loop;
    const struct osp_config *cfg;
    struct osp_env_keys keys;
    struct osp_targets targets;
    char id[128];
    char host[64];
    struct osp_rq *rq;
    struct osp_ledger *ledger;
    struct slot *slots;
    int nslots;
    int busy;                     /* slots not IDLE */
    /* fetching */
    bool fetch_inflight;          /* non-blocking batch fetch outstanding */
    bool wait_inflight;           /* blocking BLMOVE outstanding */
    unsigned wait_rr;             /* which kind the next blocking wait uses */
    uint64_t paused_mask;
    bool first_fetch_done;        /* for the start-up time log line */
    bool resyncing;               /* checking the processing list after a (re)connect */
    bool reclaimed_own;           /* a predecessor's runs under this id are taken back */
    size_t resync_dead;           /* undecodable leftovers in the resync under way */
    /* batching */
    ev_prepare flush_w;
    ev_timer retry_w;             /* re-flush after a store error */
    int flush_backoff_ms;
    bool commit_inflight, apply_inflight;
    struct start_q pg_starts, rq_starts;
    /* runs lost with a worker (reaper duty, or this worker's own predecessor), for the ledger */
    struct osp_rq_recovery *recov;
    size_t nrecov, caprecov, sentrecov;
    bool restores_inflight;       /* the commit in flight re-creates missing job rows */
    uint64_t rows_restored;       /* job rows re-created from envelopes, for metrics */
    struct osp_lbatch *lbatch;    /* reused */
    struct osp_rq_ops *ops;       /* reused */
    /* renewals, heartbeat, duties */
    ev_timer beat_w;
    ev_timer renew_w;
    ev_timer promote_w;
    ev_timer reap_w;
    bool beat_inflight, renew_inflight, promote_inflight, reap_inflight;
    int64_t last_beat_ok_ms;
    /* signals and drain */
    ev_signal sigterm_w, sigint_w;
    ev_timer drain_w;
    bool draining;
    bool drain_deadline_passed;
    bool once;                    /* --once: stop after the first job is acked */
    int jobs_done;
    int exit_code;
    /* observability (http.c) */
    struct osp_http *http;        /* NULL when OSP_HTTP_ADDR is empty */
    struct osp_metrics *metrics;
    struct osp_metric *m_jobs, *m_dur, *m_slots, *m_busy, *m_draining, *m_redis_err, *m_pg_err;
    struct osp_metric *m_master_changes;
    struct osp_metric *m_lease_waits; /* jobs that found their target leased and went waiting */
    struct osp_metric *m_restored, *m_recovered;
    uint64_t last_redis_err, last_pg_err, last_restored, last_recovered, last_master_changes;
    uint64_t recoveries_recorded; /* lost runs this worker wrote to the ledger */
    /* pod-deletion-cost annotation (podcost.c); NULL when OSP_POD_NAME is unset */
    struct wrk_podcost *podcost;
    /* counters for the summary and metrics */
    uint64_t n_succeeded, n_failed, n_dead, n_retried, n_cancelled, n_handback, n_crashed;
    int64_t started_at_ms;
};

/* http.c */
void wrk_metrics_init(struct wrk *w);
void wrk_metrics_outcome(struct wrk *w, const char *kind, const char *outcome, double seconds);
int wrk_http_start(struct wrk *w, struct osp_err *err);
void wrk_http_stop(struct wrk *w);
/* fetch.c */
void wrk_fetch_pump(struct wrk *w);
void wrk_resync(struct wrk *w);
/* slot.c */
void slot_begin(struct wrk *w, struct slot *s, const char *kind, const uint8_t *env, size_t len);
void slot_kill(struct slot *s, int sig);
void slot_reset(struct slot *s);
void slot_settle(struct slot *s); /* decide the outcome and queue the ledger write */
void slot_request_cancel(struct slot *s);
void slot_request_handback(struct slot *s);
void slot_request_lost(struct slot *s);
/* flush.c */
void wrk_flush_init(struct wrk *w);
void wrk_flush_now(struct wrk *w);
/* Queue recoveries done in Redis for the ledger (written with the next commit). */
void wrk_recoveries_add(struct wrk *w, const struct osp_rq_recovery *recs, size_t n);
void wrk_start_add(struct wrk *w, struct slot *s);
/* beat.c */
void wrk_beat_start(struct wrk *w);
void wrk_send_beat(struct wrk *w);
void wrk_drain_begin(struct wrk *w, const char *why);
void wrk_maybe_finish(struct wrk *w);
void wrk_slot_idle(struct wrk *w, struct slot *s);
/* podcost.c — keep the pod's controller.kubernetes.io/pod-deletion-cost at busy slots x 100.
 * start: reads OSP_POD_NAME/OSP_POD_NAMESPACE (and OSP_K8S_API, OSP_K8S_TOKEN_FILE,
 * OSP_K8S_CA_FILE); leaves w->podcost NULL (feature off, no watcher) when OSP_POD_NAME is unset
 * or the settings are unusable (logged). note: w->busy changed; never blocks, never calls back
 * into slots. stop: stops its watchers, kills a request in flight, frees; safe to repeat. */
void wrk_podcost_start(struct wrk *w);
void wrk_podcost_note(struct wrk *w);
void wrk_podcost_stop(struct wrk *w);

#endif
