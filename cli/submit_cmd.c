/* SPDX-License-Identifier: MIT */
/* submit_cmd.c — submit (with --wait, --count), migrate. A submission gets every check the
 * API gives it (common/ops.h osp_op_submit_check) before anything is written, so bad input
 * changes nothing; --wait follows the job in the ledger, the source of truth. */
#include "cli/ctl.h"
#include "common/alloc.h"
#include "common/jobstate.h"
#include "common/submit.h"
#include "jobs/job.h"
#include "jobs/targets.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *load_payload(const char *arg)
{
    json_error_t je;
    json_t *p;
    if (arg == NULL) {
        return json_object();
    }
    if (arg[0] == '@') {
        p = json_load_file(arg + 1, JSON_REJECT_DUPLICATES, &je);
    } else {
        p = json_loads(arg, JSON_REJECT_DUPLICATES, &je);
    }
    if (p == NULL) {
        ctl_die(CTL_USAGE, "--payload: line %d column %d: %s", je.line, je.column, je.text);
    }
    return p;
}

/* Follow a job until it ends: print each new event as it is recorded. */
int ctl_wait_job(struct ctl *c, const char *id, long timeout_s)
{
    struct osp_pgs *pg = ctl_pg(c);
    int64_t end = osp_mono_ns() + (int64_t)timeout_s * 1000000000;
    size_t seen = 0;
    for (;;) {
        struct osp_err err = {0};
        json_t *j = osp_ledger_get_job(pg, id, &err);
        if (j == NULL) {
            ctl_die(err.code == OSP_ENOTFOUND ? CTL_NOT_FOUND : CTL_UNAVAILABLE, "job %s: %s", id,
                    err.msg);
        }
        json_t *events = json_object_get(j, "events");
        for (; !c->json && seen < json_array_size(events); seen++) {
            json_t *ev = json_array_get(events, seen);
            char *data = json_dumps(json_object_get(ev, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
            fprintf(stderr, "  %s  %-12s %s\n", json_string_value(json_object_get(ev, "ts")),
                    json_string_value(json_object_get(ev, "type")), data ? data : "");
            free(data);
        }
        const char *state = json_string_value(json_object_get(j, "state"));
        if (osp_job_state_name_is_final(state)) {
            int rc = strcmp(state, "succeeded") == 0 ? CTL_OK : CTL_JOB_FAILED;
            if (c->json) {
                json_dumpf(j, stdout, JSON_INDENT(2));
                fputc('\n', stdout);
            } else {
                const char *e = json_string_value(json_object_get(j, "error"));
                printf("%s %s after %lld attempt(s)%s%s\n", id, state,
                       (long long)json_integer_value(json_object_get(j, "attempt")), e ? ": " : "",
                       e ? e : "");
            }
            json_decref(j);
            return rc;
        }
        if (osp_mono_ns() >= end) {
            fprintf(stderr, "opspoolctl: job %s still %s after %lds; it goes on\n", id,
                    state != NULL ? state : "?", timeout_s);
            json_decref(j);
            return CTL_TIMEOUT;
        }
        json_decref(j);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static volatile sig_atomic_t submit_stop;

static void on_submit_signal(int sig)
{
    (void)sig;
    submit_stop = 1;
}

int ctl_cmd_submit(struct ctl *c, int argc, char **argv)
{
    const char *kind = NULL, *payload_arg = NULL, *key = NULL;
    long count = 1, max_attempts = 0, timeout_s = 0, wait_s = 600, delay_ms = 0;
    bool wait = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--wait") == 0) {
            wait = true;
            continue;
        }
        if (a[0] != '-') {
            if (kind != NULL) {
                ctl_die(CTL_USAGE, "submit: one KIND only (got %s and %s)", kind, a);
            }
            kind = a;
            continue;
        }
        if (v == NULL) {
            ctl_die(CTL_USAGE, "submit: %s needs a value", a);
        }
        i++;
        if (strcmp(a, "--payload") == 0) {
            payload_arg = v;
        } else if (strcmp(a, "--count") == 0) {
            count = ctl_parse_long(a, v, 1, 10000000);
        } else if (strcmp(a, "--max-attempts") == 0) {
            max_attempts = ctl_parse_long(a, v, 1, 1000000); /* the domain checks the bound */
        } else if (strcmp(a, "--job-timeout") == 0) {
            timeout_s = ctl_parse_long(a, v, 1, 604800);
        } else if (strcmp(a, "--timeout") == 0) {
            wait_s = ctl_parse_long(a, v, 1, 604800);
        } else if (strcmp(a, "--delay-ms") == 0) {
            delay_ms = ctl_parse_long(a, v, 0, 86400000L * 30);
        } else if (strcmp(a, "--idempotency-key") == 0) {
            key = v;
        } else {
            ctl_die(CTL_USAGE, "submit: unknown option %s", a);
        }
    }
    if (kind == NULL) {
        ctl_die(CTL_USAGE, "submit: which KIND? (e.g. opspoolctl submit noop)");
    }
    if (key != NULL && count > 1) {
        ctl_die(CTL_USAGE, "submit: --idempotency-key names one job; it cannot go with --count");
    }
    if (wait && count > 1) {
        ctl_die(CTL_USAGE, "submit: --wait follows one job; it cannot go with --count");
    }
    json_t *payload = load_payload(payload_arg);
    struct osp_err err = {0};
    /* The one check every front end runs (common/ops.h): kind, payload and its targets,
     * bounds, envelope size. Nothing is written when it fails. */
    struct osp_targets targets;
    bool have_targets = c->cfg.targets_file != NULL && c->cfg.targets_file[0] != '\0';
    memset(&targets, 0, sizeof(targets));
    if (have_targets && osp_targets_load(&targets, c->cfg.targets_file, &err) != 0) {
        ctl_die(CTL_USAGE, "submit: OSP_TARGETS_FILE: %s", err.msg);
    }
    /* Checked before connecting: bad input is refused even while a store is down. */
    struct osp_ops ops;
    memset(&ops, 0, sizeof(ops));
    ctl_env_keys(c, &c->keys);
    ops.keys = &c->keys;
    ops.env_max_bytes = (size_t)c->cfg.env_max_bytes;
    struct osp_submit_req req = {
        .kind = kind,
        .payload = payload,
        .idempotency_key = key,
        .max_attempts = max_attempts,
        .timeout_s = timeout_s,
        .run_at_ms = delay_ms > 0 ? osp_now_ms() + delay_ms : 0,
        .submitted_by = "opspoolctl",
    };
    struct osp_submit_policy pol = {c->cfg.default_max_attempts, have_targets ? &targets : NULL};
    struct osp_job tmpl;
    osp_job_init(&tmpl);
    const char *what = NULL;
    if (osp_op_submit_check(&ops, &pol, &req, &tmpl, &what, &err) != 0) {
        if (strcmp(what, "invalid_payload") == 0) {
            ctl_die(CTL_USAGE, "submit: invalid %s payload: %s", kind, err.msg);
        }
        ctl_die(CTL_USAGE, "submit: %s", err.msg);
    }
    if (have_targets) {
        osp_targets_deinit(&targets);
    }
    ctl_ops(c, &ops);

    /* Large counts go in chunks: one INSERT and one script call per chunk. SIGINT/SIGTERM end
     * the submission between chunks, never inside one: the chunk in hand is finished (ledger
     * rows and envelopes), and what was done is reported. A chunk whose commit went unanswered
     * is tried again with the same ids, so a commit that happened is completed, not doubled. */
    const size_t chunk = 2000;
    if (count > 1) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_submit_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    long recorded = 0, queued = 0;
    struct osp_job *jobs = osp_xcalloc(chunk, sizeof(*jobs));
    char(*ids)[OSP_ID_LEN + 1] = osp_xcalloc(chunk, sizeof(*ids));
    bool *dup = osp_xcalloc(chunk, sizeof(*dup));
    int rc = CTL_OK;
    int64_t t0 = osp_mono_ns();
    char first[OSP_ID_LEN + 1] = "";
    for (long done = 0; done < count && rc == CTL_OK && !submit_stop;) {
        size_t n = (size_t)(count - done) < chunk ? (size_t)(count - done) : chunk;
        int64_t now = osp_now_ms();
        for (size_t i = 0; i < n; i++) {
            osp_job_init(&jobs[i]);
            snprintf(jobs[i].kind, sizeof(jobs[i].kind), "%s", tmpl.kind);
            json_decref(jobs[i].payload);
            jobs[i].payload = json_incref(tmpl.payload);
            jobs[i].max_attempts = tmpl.max_attempts;
            jobs[i].timeout_s = tmpl.timeout_s;
            jobs[i].run_at = delay_ms > 0 ? now + delay_ms : 0;
            free(jobs[i].submitted_by);
            jobs[i].submitted_by = osp_xstrdup(tmpl.submitted_by);
            if (tmpl.idempotency_key != NULL) {
                free(jobs[i].idempotency_key);
                jobs[i].idempotency_key = osp_xstrdup(tmpl.idempotency_key);
            }
        }
        int r = osp_op_submit(&ops, jobs, n, ids, dup, &err);
        for (int tries = 1; r == OSP_EPG && tries < 3; tries++) {
            struct timespec pause = {0, 300 * 1000 * 1000};
            nanosleep(&pause, NULL);
            r = osp_op_submit(&ops, jobs, n, ids, dup, &err); /* same ids */
        }
        if (r == OSP_EREDIS) {
            fprintf(stderr,
                    "opspoolctl: %zu jobs recorded in the ledger but not queued (%s); the "
                    "scheduler's reconciler will queue them\n",
                    n, err.msg);
            rc = CTL_UNAVAILABLE;
        } else if (r != 0) {
            fprintf(stderr, "opspoolctl: submit failed, this chunk of %zu not submitted: %s\n", n,
                    err.msg);
            rc = r == OSP_EINVAL ? CTL_USAGE : CTL_UNAVAILABLE;
        }
        if (r == 0 || r == OSP_EREDIS) {
            recorded += (long)n;
            queued += r == 0 ? (long)n : 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (r == 0 || r == OSP_EREDIS) {
                if (first[0] == '\0') {
                    memcpy(first, ids[i], sizeof(first));
                }
                if (count <= 20) {
                    if (c->json) {
                        printf("{\"id\":\"%s\",\"duplicate\":%s}\n", ids[i],
                               dup[i] ? "true" : "false");
                    } else if (!wait) {
                        printf("%s%s\n", ids[i],
                               dup[i] ? " (existing job for this idempotency key)" : "");
                    }
                }
            }
            osp_job_deinit(&jobs[i]);
        }
        done += (long)n;
    }
    if (count > 1 && (rc != CTL_OK || submit_stop) && recorded < count) {
        fprintf(stderr,
                "opspoolctl: %s: %ld of %ld jobs submitted (%ld recorded in the ledger, %ld of "
                "them queued); the other %ld were never written%s%s\n",
                submit_stop ? "interrupted" : "stopped", recorded, count, recorded, queued,
                count - recorded, first[0] ? "; first id " : "", first);
        if (rc == CTL_OK) {
            rc = CTL_UNAVAILABLE; /* exit 3: part-way, stderr says what was done */
        }
    }
    if (count > 20 && rc == CTL_OK) {
        double secs = (double)(osp_mono_ns() - t0) / 1e9;
        printf("submitted %ld %s jobs in %.2fs (%.0f/s); first id %s\n", count, kind, secs,
               (double)count / (secs > 0 ? secs : 1e-9), first);
    }
    free(jobs);
    free(ids);
    free(dup);
    osp_job_deinit(&tmpl);
    json_decref(payload);
    if (rc == CTL_OK && wait) {
        if (!c->json) {
            fprintf(stderr, "submitted %s; waiting (up to %lds)\n", first, wait_s);
        }
        rc = ctl_wait_job(c, first, wait_s);
    }
    return rc;
}

int ctl_cmd_migrate(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct osp_err err = {0};
    if (osp_ledger_migrate(ctl_pg(c), &err) != 0) {
        ctl_die(CTL_UNAVAILABLE, "migrate: %s", err.msg);
    }
    if (c->json) {
        printf("{\"migrated\": true}\n");
    } else {
        printf("ledger schema is up to date\n");
    }
    return CTL_OK;
}
