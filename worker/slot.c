/* SPDX-License-Identifier: MIT */
/* slot.c — one job attempt in a slot: decode and verify the envelope, validate the payload,
 * run the kind (inline, or in a forked child with a hard deadline, rlimits and a pipe for its
 * events), and decide the outcome once the child is gone. The outcome is then handed to the
 * flush (flush.c), which commits it to the ledger before acknowledging it in Redis. */
#define _GNU_SOURCE
#include "worker/worker.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define KILL_GRACE_S 5.0 /* SIGTERM -> SIGKILL */

static void slot_reject(struct slot *s, const char *fmt, ...) OSP_PRINTF(2, 3);

static void slot_reject(struct slot *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s->end = END_REJECTED;
    free(s->end_error);
    s->end_error = osp_xstrdup(msg);
}

void slot_reset(struct slot *s)
{
    osp_buf_reset(&s->env);
    osp_buf_reset(&s->new_env);
    osp_buf_reset(&s->rbuf);
    osp_job_deinit(&s->job); /* safe on an initialised, decoded or deinitialised job */
    osp_job_init(&s->job);
    s->decoded = false;
    job_report_deinit(&s->report);
    job_report_init(&s->report);
    free(s->end_error);
    s->end_error = NULL;
    s->jk = NULL;
    s->pid = 0;
    s->pipe_fd = -1;
    s->events_committed = s->events_sent = 0;
    s->started_ms = s->finished_ms = 0;
    s->started_ns = 0;
    s->cancel_requested = s->timed_out = s->handback = s->term_sent = false;
    s->lost = s->untrusted = s->no_ledger = false;
    s->wait_status = 0;
    s->end = END_NONE;
    s->pg_pending = s->pg_inflight = s->rq_pending = s->rq_inflight = false;
    s->due_ms = 0;
    s->next_state = NULL;
    s->kind[0] = '\0';
}

void slot_kill(struct slot *s, int sig)
{
    if (s->pid > 0) {
        /* The child leads its own process group: tools it started (pg_dump, stress workers)
         * go with it. */
        kill(-s->pid, sig);
        kill(s->pid, sig);
    }
}

/* ---- Child process ---- */

static void child_setup(struct wrk *w)
{
    /* Die with the worker: a SIGKILLed worker must not leave jobs running unowned. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);
    if (w->cfg->child_mem_mb > 0) {
        rlim_t lim = (rlim_t)w->cfg->child_mem_mb * 1024 * 1024;
        struct rlimit rl = {lim, lim};
        setrlimit(RLIMIT_AS, &rl);
    }
    struct rlimit nf = {(rlim_t)w->cfg->child_nofile, (rlim_t)w->cfg->child_nofile};
    setrlimit(RLIMIT_NOFILE, &nf);
    /* Jobs get no secrets of the pool: targets carry their own credentials. */
    static const char *const scrub[] = {"OSP_SIGNING_KEY", "OSP_SIGNING_KEY_OLD",
                                        "OSP_SIGNING_KEY_FILE", "OSP_REDIS_PASSWORD",
                                        "OSP_REDIS_PASSWORD_FILE", "OSP_PG_DSN", "OSP_PG_DSN_FILE",
                                        "OSP_REDIS_URL", "OSP_REDIS_SENTINEL_PASSWORD",
                                        "OSP_REDIS_SENTINEL_PASSWORD_FILE", NULL};
    for (size_t i = 0; scrub[i] != NULL; i++) {
        unsetenv(scrub[i]);
    }
}

static void on_pipe(struct ev_loop *loop, ev_io *io, int revents);
static void on_child(struct ev_loop *loop, ev_child *cw, int revents);
static void on_deadline(struct ev_loop *loop, ev_timer *t, int revents);

static void read_pipe(struct slot *s)
{
    uint8_t tmp[65536];
    for (;;) {
        ssize_t r = read(s->pipe_fd, tmp, sizeof(tmp));
        if (r > 0) {
            osp_buf_append(&s->rbuf, tmp, (size_t)r);
            if (job_report_feed(&s->report, &s->rbuf) != 0) {
                OSP_LOG_JOB(OSP_LOG_WARN, s->job.id, s->kind, "child sent a malformed frame; killing it");
                osp_buf_reset(&s->rbuf);
                slot_kill(s, SIGKILL);
                break;
            }
            continue;
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        /* EOF, EAGAIN (a grandchild may still hold the write end) or an error. */
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
            ev_io_stop(s->w->loop, &s->pipe_w);
        }
        break;
    }
}

static void on_pipe(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct slot *s = osp_container_of(io, struct slot, pipe_w);
    read_pipe(s);
}

static void on_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct slot *s = osp_container_of(t, struct slot, deadline_w);
    if (!s->term_sent) {
        if (!s->handback && !s->cancel_requested) {
            s->timed_out = true;
            OSP_LOG_JOB(OSP_LOG_WARN, s->job.id, s->kind, "attempt %u hit its timeout; stopping it",
                        s->job.attempt);
        }
        s->term_sent = true;
        slot_kill(s, SIGTERM);
        ev_timer_set(t, KILL_GRACE_S, 0.);
        ev_timer_start(loop, t);
        return;
    }
    OSP_LOG_JOB(OSP_LOG_WARN, s->job.id, s->kind, "child ignored SIGTERM for %.0fs; SIGKILL",
                KILL_GRACE_S);
    slot_kill(s, SIGKILL);
}

/* Stop the child gracefully now (cancel, drain deadline): SIGTERM, SIGKILL after the grace. */
static void slot_stop_child(struct slot *s)
{
    if (s->pid <= 0 || s->term_sent) {
        return;
    }
    ev_timer_stop(s->w->loop, &s->deadline_w);
    ev_timer_set(&s->deadline_w, 0., 0.);
    ev_timer_start(s->w->loop, &s->deadline_w);
}

void slot_request_cancel(struct slot *s)
{
    if (s->state != SLOT_RUNNING || s->cancel_requested) {
        return;
    }
    s->cancel_requested = true;
    OSP_LOG_JOB(OSP_LOG_INFO, s->job.id, s->kind, "cancel requested; stopping the attempt");
    slot_stop_child(s);
}

void slot_request_handback(struct slot *s)
{
    if (s->state != SLOT_RUNNING || s->handback) {
        return;
    }
    s->handback = true;
    slot_stop_child(s);
}

void slot_request_lost(struct slot *s)
{
    if (s->state != SLOT_RUNNING || s->lost) {
        return;
    }
    s->lost = true;
    OSP_LOG_JOB(OSP_LOG_WARN, s->job.id, s->kind,
                "job was reaped from this worker (lease lost); stopping the local attempt");
    slot_stop_child(s);
}

static void on_child(struct ev_loop *loop, ev_child *cw, int revents)
{
    (void)revents;
    struct slot *s = osp_container_of(cw, struct slot, child_w);
    ev_child_stop(loop, cw);
    ev_timer_stop(loop, &s->deadline_w);
    s->wait_status = cw->rstatus;
    /* Everything the child wrote is in the pipe now; read it to the end. */
    read_pipe(s);
    ev_io_stop(loop, &s->pipe_w);
    close(s->pipe_fd);
    s->pipe_fd = -1;
    /* Reap the rest of its process group (tools it started), without blocking. */
    kill(-s->pid, SIGKILL);
    s->pid = 0;
    slot_settle(s);
}

static int slot_fork(struct wrk *w, struct slot *s)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return -errno;
    }
    int64_t deadline_ns = s->started_ns + (int64_t)s->job.timeout_s * 1000000000;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return -e;
    }
    if (pid == 0) {
        close(fds[0]);
        child_setup(w);
        job_child_main(s->jk, &s->job, &w->targets, w->cfg, fds[1], deadline_ns);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    s->pid = pid;
    s->pipe_fd = fds[0];
    ev_child_init(&s->child_w, on_child, pid, 0);
    ev_child_start(w->loop, &s->child_w);
    ev_io_init(&s->pipe_w, on_pipe, fds[0], EV_READ);
    ev_io_start(w->loop, &s->pipe_w);
    ev_timer_init(&s->deadline_w, on_deadline, (double)s->job.timeout_s, 0.);
    ev_timer_start(w->loop, &s->deadline_w);
    return 0;
}

static void slot_lease(struct wrk *w, struct slot *s, const char *target,
                       enum osp_lease_mode mode, int max_shared);
static void slot_launch(struct wrk *w, struct slot *s);

void slot_begin(struct wrk *w, struct slot *s, const char *kind, const uint8_t *env, size_t len)
{
    OSP_ASSERT(s->state == SLOT_IDLE);
    slot_reset(s);
    s->state = SLOT_RUNNING;
    w->busy++;
    wrk_podcost_note(w);
    snprintf(s->kind, sizeof(s->kind), "%s", kind);
    osp_buf_append(&s->env, env, len);
    s->started_ms = osp_now_ms();
    s->started_ns = osp_mono_ns();

    struct osp_err err = {0};
    /* decode fills the struct as pure output: release what osp_job_init put there first. */
    osp_job_deinit(&s->job);
    int rc = osp_env_decode(env, len, &w->keys, (size_t)w->cfg->env_max_bytes, &s->job, &err);
    s->decoded = true; /* job is initialised either way; deinit on reset */
    if (rc != 0) {
        /* A message that fails verification may carry any id: never let it touch the ledger. */
        s->untrusted = rc == OSP_EVERIFY;
        slot_reject(s, "%s", err.msg);
        OSP_LOG_JOB(OSP_LOG_WARN, s->job.id, kind, "dead-lettering a message: %s", err.msg);
        slot_settle(s);
        return;
    }
    if (strcmp(s->job.kind, kind) != 0) {
        slot_reject(s, "envelope kind %s arrived on the %s queue", s->job.kind, kind);
        slot_settle(s);
        return;
    }
    s->jk = job_kind_find(kind);
    if (s->jk == NULL) {
        slot_reject(s, "unknown kind %s", kind);
        slot_settle(s);
        return;
    }
    if (s->job.attempt > s->job.max_attempts) {
        slot_reject(s, "attempt %u exceeds max_attempts %u", s->job.attempt, s->job.max_attempts);
        slot_settle(s);
        return;
    }
    if (s->jk->validate(s->job.payload, &w->targets, &err) != 0) {
        slot_reject(s, "invalid payload: %s", err.msg);
        slot_settle(s);
        return;
    }
    if (s->job.timeout_s == 0) {
        s->job.timeout_s = s->jk->default_timeout_s ? s->jk->default_timeout_s
                                                    : (uint32_t)w->cfg->job_timeout_s;
    }
    /* A kind that must not share its target (a drill), or shares it only with its own kind
     * (benchmarks), takes the target's lease first (docs/decisions/0008). */
    const char *target = json_string_value(json_object_get(s->job.payload, "target"));
    int max_shared = 0;
    enum osp_lease_mode mode = target != NULL
                                   ? osp_target_lease(&w->targets, target, kind, &max_shared)
                                   : OSP_LEASE_NONE;
    if (target != NULL && s->jk->needs_exclusive != NULL &&
        s->jk->needs_exclusive(s->job.payload, &w->targets)) {
        /* It changes the target (a benchmark that scales it): nobody else may use it. */
        mode = OSP_LEASE_EXCLUSIVE;
        max_shared = 0;
    }
    if (mode != OSP_LEASE_NONE) {
        slot_lease(w, s, target, mode, max_shared);
        return;
    }
    slot_launch(w, s);
}

/* The lease op's answer: run, park (the envelope now waits in Redis, the slot is free), or
 * hand back when it is unknown whether the lease was taken. */
static void on_lease(struct osp_rq *rq, int status, const int64_t *res, size_t n, void *arg)
{
    (void)rq;
    struct slot *s = arg;
    struct wrk *w = s->w;
    if (status == OSP_ECANCELED || s->state != SLOT_LEASING) {
        return; /* the client is being freed: the worker is exiting, the reaper hands it back */
    }
    int64_t r = status == 0 && n == 1 ? res[0] : -2;
    if (r == 1 && !w->draining) {
        s->state = SLOT_RUNNING;
        slot_launch(w, s);
    } else if (r == 0) {
        OSP_LOG_JOB(OSP_LOG_INFO, s->job.id, s->kind,
                    "target %s is leased to another job: waiting until it is free",
                    json_string_value(json_object_get(s->job.payload, "target")));
        const char *k[] = {s->kind};
        osp_metric_add(w->m_lease_waits, k, 1);
        s->state = SLOT_IDLE; /* not a finished job: no jobs_done, no --once */
        w->busy--;
        wrk_podcost_note(w);
        slot_reset(s);
        wrk_maybe_finish(w);
        wrk_fetch_pump(w);
    } else if (r == -1) {
        wrk_slot_idle(w, s); /* reaped meanwhile: its new holder decides */
    } else {
        /* Unanswered (Redis lost) or draining: put it back on its queue; the requeue also
         * gives back the lease if it was granted. Nothing ran, so nothing goes to the ledger. */
        if (status != 0) {
            OSP_LOG_JOB(OSP_LOG_WARN, s->job.id, s->kind,
                        "target lease unanswered (%s): handing the job back", osp_strerror(status));
        }
        s->state = SLOT_RUNNING;
        s->handback = true;
        s->no_ledger = true;
        slot_settle(s);
    }
}

static void slot_lease(struct wrk *w, struct slot *s, const char *target,
                       enum osp_lease_mode mode, int max_shared)
{
    s->state = SLOT_LEASING;
    struct osp_rq_ops *ops = osp_rq_ops_new();
    osp_rq_op_lease(ops, s->kind, s->job.id, s->env.data, s->env.len, target, mode, max_shared);
    int rc = osp_rq_apply(w->rq, ops, on_lease, s);
    osp_rq_ops_free(ops);
    if (rc != 0) {
        on_lease(w->rq, rc, NULL, 0, s);
    }
}

/* Run the checked attempt: inline, or in a forked child after its start is recorded. */
static void slot_launch(struct wrk *w, struct slot *s)
{
    const char *kind = s->kind;
    int rc;
    s->started_ms = osp_now_ms(); /* time spent waiting for a lease is not run time */
    s->started_ns = osp_mono_ns();
    if (s->jk->is_inline != NULL && s->jk->is_inline(s->job.payload)) {
        job_run_inline(s->jk, &s->job, &w->targets, w->cfg,
                       s->started_ns + (int64_t)s->job.timeout_s * 1000000000, &s->report);
        slot_settle(s);
        return;
    }
    wrk_start_add(w, s);
    rc = slot_fork(w, s);
    if (rc != 0) {
        /* Could not start a child (fork/pipe failed: resource exhaustion). The attempt did not
         * run; hand it back so another worker (or this one, later) takes it. */
        OSP_LOG_JOB(OSP_LOG_ERROR, s->job.id, kind, "cannot start a child: %s", osp_strerror(rc));
        s->handback = true;
        slot_settle(s);
    }
}

/* Exponential backoff with equal jitter: half fixed, half random, capped. */
static int64_t backoff_ms(const struct osp_config *cfg, unsigned attempt)
{
    int64_t d = cfg->retry_base_ms;
    for (unsigned i = 1; i < attempt && d < cfg->retry_max_ms; i++) {
        d *= 2;
    }
    if (d > cfg->retry_max_ms) {
        d = cfg->retry_max_ms;
    }
    return d / 2 + (int64_t)(((uint64_t)random() << 16 ^ (uint64_t)random()) % (uint64_t)(d / 2 + 1));
}

static void describe_exit(struct slot *s, char *buf, size_t n)
{
    int st = s->wait_status;
    if (WIFSIGNALED(st)) {
        snprintf(buf, n, "child killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    } else if (WIFEXITED(st)) {
        snprintf(buf, n, "child exited with status %d without reporting", WEXITSTATUS(st));
    } else {
        snprintf(buf, n, "child ended abnormally (status 0x%x)", st);
    }
}

void slot_settle(struct slot *s)
{
    struct wrk *w = s->w;
    const struct osp_config *cfg = w->cfg;
    s->finished_ms = osp_now_ms();
    char why[256];

    if (s->lost) {
        /* Another worker owns the job now: write nothing, release the slot. */
        wrk_slot_idle(w, s);
        return;
    }
    if (s->end == END_REJECTED) {
        /* decided in slot_begin */
    } else if (s->handback && !(s->report.finished && s->report.status == 0)) {
        /* A child that already reported success (its final frame raced the drain deadline)
         * keeps its result: handing it back would run the job a second time. */
        s->end = END_HANDBACK;
    } else if (s->cancel_requested) {
        s->end = END_CANCELLED;
    } else if (s->timed_out) {
        s->end = END_TIMEOUT;
        free(s->end_error);
        s->end_error = osp_xasprintf("timed out after %us", s->job.timeout_s);
    } else if (!s->report.finished) {
        s->end = END_CRASHED;
        describe_exit(s, why, sizeof(why));
        free(s->end_error);
        s->end_error = osp_xstrdup(why);
    } else if (s->report.status == 0) {
        s->end = END_SUCCEEDED;
    } else if (s->report.status == OSP_EVERDICT) {
        s->end = END_VERDICT;
        free(s->end_error);
        s->end_error = osp_xstrdup(s->report.error ? s->report.error : "verdict failed");
    } else {
        s->end = END_FAILED;
        free(s->end_error);
        s->end_error = osp_xstrdup(s->report.error ? s->report.error : osp_strerror(s->report.status));
    }

    switch (s->end) {
    case END_SUCCEEDED:
        s->next_state = "succeeded";
        w->n_succeeded++;
        break;
    case END_CANCELLED:
        s->next_state = "cancelled";
        w->n_cancelled++;
        break;
    case END_VERDICT:
        s->next_state = "failed";
        w->n_failed++;
        break;
    case END_HANDBACK:
        s->next_state = "queued";
        w->n_handback++;
        break;
    case END_REJECTED:
        s->next_state = "dead";
        w->n_dead++;
        break;
    case END_FAILED:
    case END_TIMEOUT:
    case END_CRASHED:
        if (s->end == END_CRASHED) {
            w->n_crashed++;
        }
        if (s->job.attempt < s->job.max_attempts) {
            s->next_state = "retrying";
            s->due_ms = s->finished_ms + backoff_ms(cfg, s->job.attempt);
            /* The next attempt is a new envelope (attempt + 1), signed again. */
            s->job.attempt++;
            struct osp_err err = {0};
            osp_buf_reset(&s->new_env);
            if (osp_env_encode(&s->job, &w->keys, &s->new_env, &err) != 0) {
                s->job.attempt--;
                s->next_state = "dead";
                w->n_dead++;
                break;
            }
            s->job.attempt--;
            w->n_retried++;
        } else {
            s->next_state = "dead";
            w->n_dead++;
        }
        w->n_failed++;
        break;
    case END_NONE:
    case END_LOST:
        OSP_ASSERT(!"unreachable slot end");
    }
    static const char *const end_names[] = {
        [END_SUCCEEDED] = "succeeded", [END_FAILED] = "failed",     [END_VERDICT] = "verdict_failed",
        [END_TIMEOUT] = "timeout",
        [END_CRASHED] = "crashed",     [END_CANCELLED] = "cancelled", [END_REJECTED] = "rejected",
        [END_HANDBACK] = "handed_back"};
    wrk_metrics_outcome(w, s->kind, end_names[s->end],
                        (double)(osp_mono_ns() - s->started_ns) / 1e9);
    if (s->end != END_SUCCEEDED && s->end != END_HANDBACK) {
        OSP_LOG_JOB(OSP_LOG_INFO, s->job.id, s->kind, "attempt %u ended: %s -> %s%s%s", s->job.attempt,
                    s->end == END_CANCELLED ? "cancelled" : s->end == END_TIMEOUT ? "timeout"
                        : s->end == END_CRASHED ? "crashed" : s->end == END_REJECTED ? "rejected"
                        : s->end == END_VERDICT ? "verdict failed"
                        : "failed",
                    s->next_state, s->end_error ? ": " : "", s->end_error ? s->end_error : "");
    }
    s->state = SLOT_REPORTING;
    s->pg_pending = true;
    /* Nothing to commit for an envelope without a trustworthy id, or for one that never
     * started: go straight to Redis. */
    if (s->job.id[0] == '\0' || s->untrusted || s->no_ledger) {
        s->pg_pending = false;
        s->rq_pending = true;
        s->state = SLOT_ACKING;
    }
}
