/* SPDX-License-Identifier: MIT */
/* run_child.c — run one job attempt the way the worker does: fork, job_child_main in its own
 * process group, frames over a pipe parsed with job_report_feed; print the report as JSON.
 *
 *   osp-run-child --kind K --payload JSON [--targets FILE] [--job-id ID] [--timeout-s N]
 *                 [--cancel-on PHASE] [--cancel-on-event TYPE] [--cancel-after-ms MS]
 *                 [--inline 1]
 *
 * --cancel-on PHASE[+MS] sends SIGTERM to the child's group MS ms (default 0) after the event
 * {"phase": PHASE, "status": "start"} arrives (the worker's cancel path); --cancel-on-event
 * TYPE[+MS] does the same after the first event of that type (a benchmark's "scale", when its
 * target has been scaled and the lane is about to start); after SIGTERM the child
 * gets the worker's 5 s grace, then SIGKILL. Output: {"status", "finished", "exit", "result",
 * "error", "events", "rows", "cancelled_at_ms", "group_leftovers"}. Exit 0 when the report
 * finished, 1 otherwise.
 * --inline 1 runs the attempt in this process instead (job_run_inline, no cancel): the
 * process then exits normally, so LeakSanitizer checks the kind's memory handling, which a
 * child that _exit()s never gets. */
#include "common/base.h"
#include "common/buf.h"
#include "common/id.h"
#include "jobs/runner.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static bool rc_cancel_event(const json_t *events, size_t from, const char *phase)
{
    for (size_t i = from; i < json_array_size(events); i++) {
        const json_t *d = json_object_get(json_array_get(events, i), "data");
        const char *ph = json_string_value(json_object_get(d, "phase"));
        const char *st = json_string_value(json_object_get(d, "status"));
        if (ph != NULL && st != NULL && strcmp(ph, phase) == 0 && strcmp(st, "start") == 0) {
            return true;
        }
    }
    return false;
}

static bool rc_type_event(const json_t *events, size_t from, const char *type)
{
    for (size_t i = from; i < json_array_size(events); i++) {
        const char *t = json_string_value(json_object_get(json_array_get(events, i), "type"));
        if (t != NULL && strcmp(t, type) == 0) {
            return true;
        }
    }
    return false;
}

int main(int argc, char **argv)
{
    const char *kind_name = NULL, *payload = "{}", *targets_file = NULL, *job_id = NULL;
    const char *cancel_on = NULL, *cancel_on_event = NULL;
    long timeout_s = 600, cancel_after_ms = -1;
    bool inline_mode = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--kind") == 0) {
            kind_name = v;
        } else if (strcmp(a, "--payload") == 0) {
            payload = v;
        } else if (strcmp(a, "--targets") == 0) {
            targets_file = v;
        } else if (strcmp(a, "--job-id") == 0) {
            job_id = v;
        } else if (strcmp(a, "--timeout-s") == 0) {
            timeout_s = atol(v);
        } else if (strcmp(a, "--cancel-on") == 0) {
            cancel_on = v;
        } else if (strcmp(a, "--cancel-on-event") == 0) {
            cancel_on_event = v;
        } else if (strcmp(a, "--inline") == 0) {
            inline_mode = strcmp(v, "1") == 0;
        } else if (strcmp(a, "--cancel-after-ms") == 0) {
            cancel_after_ms = atol(v);
        }
    }
    const struct job_kind *kind = job_kind_find(kind_name);
    json_t *p = json_loads(payload, 0, NULL);
    struct osp_targets t;
    struct osp_err err = {0};
    if (kind == NULL || p == NULL || osp_targets_load(&t, targets_file, &err) != 0) {
        fprintf(stderr, "osp-run-child: bad kind, payload or targets: %s\n", err.msg);
        json_decref(p);
        return 2;
    }
    struct osp_config cfg; /* the table's defaults, as a worker without settings has them */
    osp_config_defaults(&cfg);
    struct osp_job job;
    osp_job_init(&job);
    if (job_id != NULL) {
        snprintf(job.id, sizeof(job.id), "%s", job_id);
    } else {
        osp_id_new(job.id);
    }
    snprintf(job.kind, sizeof(job.kind), "%s", kind_name);
    json_decref(job.payload);
    job.payload = p;
    signal(SIGPIPE, SIG_IGN);
    if (inline_mode) {
        struct job_report ir;
        job_report_init(&ir);
        job_run_inline(kind, &job, &t, &cfg, osp_mono_ns() + timeout_s * 1000000000LL, &ir);
        json_t *o = json_pack("{s:i, s:b, s:i, s:O?, s:s?, s:O, s:O, s:I, s:b}", "status",
                              ir.status, "finished", ir.finished, "exit", 0, "result", ir.result,
                              "error", ir.error, "events", ir.events, "rows", ir.rows,
                              "cancelled_at_ms", (json_int_t)-1, "group_leftovers", 0);
        json_dumpf(o, stdout, JSON_INDENT(1));
        fputc('\n', stdout);
        json_decref(o);
        job_report_deinit(&ir);
        osp_job_deinit(&job);
        osp_targets_deinit(&t);
        osp_config_deinit(&cfg);
        return 0;
    }
    int fds[2];
    if (pipe(fds) != 0) {
        osp_config_deinit(&cfg);
        return 2;
    }
    int64_t start = osp_mono_ns();
    int64_t deadline = start + timeout_s * 1000000000LL;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        setpgid(0, 0);
        job_child_main(kind, &job, &t, &cfg, fds[1], deadline);
    }
    close(fds[1]);
    setpgid(pid, pid);
    struct job_report r;
    job_report_init(&r);
    struct osp_buf buf = OSP_BUF_INIT;
    int64_t cancelled_at = -1, kill_at = -1, phase_seen_at = -1;
    long cancel_delay_ms = 0;
    char cancel_phase[64] = "";
    if (cancel_on != NULL || cancel_on_event != NULL) {
        snprintf(cancel_phase, sizeof(cancel_phase), "%s",
                 cancel_on != NULL ? cancel_on : cancel_on_event);
        char *plus = strchr(cancel_phase, '+');
        if (plus != NULL) {
            *plus = '\0';
            cancel_delay_ms = atol(plus + 1);
        }
    }
    size_t seen = 0;
    bool eof = false;
    while (!eof) {
        int64_t now = osp_mono_ns();
        if (phase_seen_at < 0 &&
            ((cancel_on != NULL && rc_cancel_event(r.events, seen, cancel_phase)) ||
             (cancel_on_event != NULL && rc_type_event(r.events, seen, cancel_phase)))) {
            phase_seen_at = now;
        }
        if (cancelled_at < 0 &&
            ((phase_seen_at >= 0 && now - phase_seen_at >= cancel_delay_ms * 1000000LL) ||
             (cancel_after_ms >= 0 && now - start >= cancel_after_ms * 1000000LL) ||
             now >= deadline)) {
            cancelled_at = (now - start) / 1000000;
            kill(-pid, SIGTERM);
            kill(pid, SIGTERM);
            kill_at = now + 5000000000LL; /* the worker's grace */
        }
        seen = json_array_size(r.events);
        if (kill_at > 0 && now >= kill_at) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
        }
        struct pollfd pf = {.fd = fds[0], .events = POLLIN};
        if (poll(&pf, 1, 20) <= 0) {
            continue;
        }
        uint8_t chunk[65536];
        ssize_t n = read(fds[0], chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            eof = true;
            break;
        }
        osp_buf_append(&buf, chunk, (size_t)n);
        if (job_report_feed(&r, &buf) != 0) {
            fprintf(stderr, "osp-run-child: malformed frame from the child\n");
            kill(-pid, SIGKILL);
            break;
        }
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    /* Record whether the kind left anything alive in the child's group (stress workers must
     * be gone by now), then make sure of it, as the worker does. */
    bool leftovers = kill(-pid, 0) == 0;
    kill(-pid, SIGKILL);
    json_t *out = json_pack(
        "{s:i, s:b, s:i, s:O?, s:s?, s:O, s:O, s:I}", "status", r.status, "finished", r.finished,
        "exit", WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws), "result", r.result, "error",
        r.error, "events", r.events, "rows", r.rows, "cancelled_at_ms", (json_int_t)cancelled_at);
    json_object_set_new(out, "group_leftovers", json_boolean(leftovers));
    json_dumpf(out, stdout, JSON_INDENT(1));
    fputc('\n', stdout);
    int rc = r.finished ? 0 : 1;
    json_decref(out);
    job_report_deinit(&r);
    osp_buf_deinit(&buf);
    osp_job_deinit(&job);
    osp_targets_deinit(&t);
    osp_config_deinit(&cfg);
    close(fds[0]);
    return rc;
}
