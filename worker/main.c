/* SPDX-License-Identifier: MIT */
/* main.c — opspool-worker: configuration, start-up, the loop, exit.
 *
 *   opspool-worker                 serve OSP_WORKER_KINDS with OSP_WORKER_SLOTS slots
 *   opspool-worker --once          run one job, then exit (KEDA ScaledJob)
 *   opspool-worker --run KIND --payload JSON [--targets FILE]
 *                                  run one attempt in this process, print the report (debug)
 *   opspool-worker --print-config | --help | --version
 */
#define _GNU_SOURCE /* random(), srandom() */
#include "common/alloc.h"
#include "common/log.h"
#include "common/submit.h"
#include "worker/worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fputs("usage: opspool-worker [--once] [--print-config] [--help] [--version]\n"
          "       opspool-worker --run KIND --payload JSON [--targets FILE]\n"
          "\n"
          "Runs jobs of the kinds in OSP_WORKER_KINDS from Redis, records them in PostgreSQL.\n"
          "SIGTERM drains: no new jobs, running ones finish until OSP_DRAIN_TIMEOUT_S, then\n"
          "they are stopped and handed back to the queue. A second SIGTERM skips the wait.\n"
          "\nSettings (environment):\n",
          out);
    osp_config_help(OSP_CFG_WORKER, out);
    fputs("\nOn Kubernetes (docs/deploy.md, \"Scale-in and busy workers\"): OSP_POD_NAME and\n"
          "OSP_POD_NAMESPACE (Downward API) make the worker keep its pod's\n"
          "controller.kubernetes.io/pod-deletion-cost at busy slots x 100.\n",
          out);
}

/* --run: one attempt in-process, report as JSON on stdout; exit 0 on success. */
static int run_one(const char *kind_name, const char *payload, const char *targets_file)
{
    const struct job_kind *k = job_kind_find(kind_name);
    if (k == NULL) {
        fprintf(stderr, "opspool-worker: unknown kind %s\n", kind_name);
        return 2;
    }
    json_error_t je;
    json_t *p = json_loads(payload ? payload : "{}", 0, &je);
    if (p == NULL) {
        fprintf(stderr, "opspool-worker: --payload: %s\n", je.text);
        return 2;
    }
    struct osp_targets t;
    struct osp_err err = {0};
    if (osp_targets_load(&t, targets_file, &err) != 0) {
        fprintf(stderr, "opspool-worker: %s\n", err.msg);
        json_decref(p);
        return 2;
    }
    int rc = 2;
    struct osp_config cfg; /* the kind's settings (job_config), as a serving worker has them */
    if (osp_config_load(&cfg, OSP_CFG_WORKER, &err) != 0) {
        fprintf(stderr, "opspool-worker: %s\n", err.msg);
        goto out_targets;
    }
    if (k->validate(p, &t, &err) != 0) {
        fprintf(stderr, "opspool-worker: invalid payload: %s\n", err.msg);
        goto out;
    }
    struct osp_job job;
    osp_job_init(&job);
    osp_id_new(job.id);
    snprintf(job.kind, sizeof(job.kind), "%s", kind_name);
    json_decref(job.payload);
    job.payload = json_incref(p);
    job.timeout_s = k->default_timeout_s ? k->default_timeout_s : 3600;
    struct job_report r;
    job_report_init(&r);
    job_run_inline(k, &job, &t, &cfg, osp_mono_ns() + (int64_t)job.timeout_s * 1000000000, &r);
    json_t *out =
        json_pack("{s:s, s:b, s:O?, s:s?, s:O, s:O}", "id", job.id, "succeeded", r.status == 0,
                  "result", r.result, "error", r.error, "events", r.events, "rows", r.rows);
    json_dumpf(out, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(out);
    rc = r.status == 0 ? 0 : 1;
    job_report_deinit(&r);
    osp_job_deinit(&job);
out:
    osp_config_deinit(&cfg);
out_targets:
    osp_targets_deinit(&t);
    json_decref(p);
    return rc;
}

static void on_rq_state(struct osp_rq *rq, bool ready, void *arg)
{
    struct wrk *w = arg;
    if (ready) {
        osp_info("redis ready: %s", osp_rq_endpoint(rq));
        wrk_resync(w);
        wrk_send_beat(w);
        wrk_flush_now(w);
    } else {
        osp_warn("redis connection lost (%s); reconnecting", osp_rq_last_error(w->rq));
    }
}

static void on_ledger_state(struct osp_ledger *l, bool ready, void *arg)
{
    (void)l;
    struct wrk *w = arg;
    if (ready) {
        osp_info("postgresql ready");
        wrk_flush_now(w);
    } else {
        osp_warn("postgresql connection lost (%s); reconnecting", osp_ledger_last_error(w->ledger));
    }
}

/* Apply migrations before serving; PostgreSQL may still be starting, so retry for a while. */
static int migrate(const struct osp_config *cfg)
{
    struct osp_err err = {0};
    for (int i = 0; i < 60; i++) {
        struct osp_pgs *pg = osp_pgs_connect(cfg->pg_dsn, &err);
        if (pg != NULL) {
            int rc = osp_ledger_migrate(pg, &err);
            osp_pgs_free(pg);
            if (rc == 0) {
                return 0;
            }
        }
        if (i == 0) {
            osp_warn("ledger not ready (%s); retrying for up to 30 s", err.msg);
        }
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    osp_error("cannot prepare the ledger: %s", err.msg);
    return -1;
}

int main(int argc, char **argv)
{
    bool once = false, print_config = false;
    const char *run_kind = NULL, *run_payload = NULL, *run_targets = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--once") == 0) {
            once = true;
        } else if (strcmp(a, "--print-config") == 0) {
            print_config = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("opspool-worker %s\n", OSP_VERSION);
            return 0;
        } else if (strcmp(a, "--run") == 0 && i + 1 < argc) {
            run_kind = argv[++i];
        } else if (strcmp(a, "--payload") == 0 && i + 1 < argc) {
            run_payload = argv[++i];
        } else if (strcmp(a, "--targets") == 0 && i + 1 < argc) {
            run_targets = argv[++i];
        } else {
            fprintf(stderr, "opspool-worker: unknown argument %s (try --help)\n", a);
            return 2;
        }
    }
    if (run_kind != NULL) {
        return run_one(run_kind, run_payload, run_targets);
    }

    signal(SIGPIPE, SIG_IGN);
    struct osp_config cfg;
    struct osp_err err = {0};
    if (osp_config_load(&cfg, OSP_CFG_WORKER, &err) != 0) {
        fprintf(stderr, "opspool-worker: configuration: %s\n", err.msg);
        return 2;
    }
    if (print_config) {
        osp_config_print(&cfg, OSP_CFG_WORKER, stdout);
        osp_config_deinit(&cfg);
        return 0;
    }
    osp_log_init("worker", cfg.log_level);
    for (int i = 0; i < cfg.nkinds; i++) {
        if (job_kind_find(cfg.kinds[i]) == NULL) {
            fprintf(stderr, "opspool-worker: OSP_WORKER_KINDS: unknown kind %s\n", cfg.kinds[i]);
            osp_config_deinit(&cfg);
            return 2;
        }
    }

    struct wrk w;
    memset(&w, 0, sizeof(w));
    w.cfg = &cfg;
    w.once = once;
    w.started_at_ms = osp_now_ms();
    osp_env_keys_from(&w.keys, cfg.signing_key, cfg.signing_key_old, cfg.allow_unsigned);
    gethostname(w.host, sizeof(w.host) - 1);
    srandom((unsigned)(osp_mono_ns() ^ getpid()));
    if (cfg.worker_id != NULL && cfg.worker_id[0] != '\0') {
        snprintf(w.id, sizeof(w.id), "%s", cfg.worker_id);
    } else {
        snprintf(w.id, sizeof(w.id), "%s-%ld-%04lx", w.host, (long)getpid(),
                 (unsigned long)(random() & 0xffff));
    }
    int rc = 1;
    if (osp_targets_load(&w.targets, cfg.targets_file, &err) != 0) {
        fprintf(stderr, "opspool-worker: %s\n", err.msg);
        osp_config_deinit(&cfg);
        return 2;
    }
    if (migrate(&cfg) != 0) {
        goto out_targets;
    }

    w.loop = EV_DEFAULT;
    ev_set_userdata(w.loop, &w);
    struct osp_rq_opts ro;
    osp_config_rq_opts(&cfg, &ro);
    ro.worker_id = w.id;
    w.rq = osp_rq_new(w.loop, &ro, &err);
    if (w.rq == NULL) {
        osp_error("redis: %s", err.msg);
        goto out_targets;
    }
    w.ledger = osp_ledger_new(w.loop, cfg.pg_dsn, &err);
    if (w.ledger == NULL) {
        osp_error("postgresql: %s", err.msg);
        goto out_rq;
    }
    osp_rq_set_state_cb(w.rq, on_rq_state, &w);
    osp_ledger_set_state_cb(w.ledger, on_ledger_state, &w);

    w.nslots = cfg.worker_slots;
    w.slots = osp_xcalloc((size_t)w.nslots, sizeof(*w.slots));
    for (int i = 0; i < w.nslots; i++) {
        w.slots[i].w = &w;
        w.slots[i].index = i;
        w.slots[i].pipe_fd = -1;
        osp_job_init(&w.slots[i].job);
        job_report_init(&w.slots[i].report);
    }
    wrk_metrics_init(&w);
    if (wrk_http_start(&w, &err) != 0) {
        osp_error("OSP_HTTP_ADDR %s: %s", cfg.http_addr, err.msg);
        wrk_http_stop(&w);
        goto out_slots;
    }
    wrk_flush_init(&w);
    wrk_beat_start(&w);
    wrk_podcost_start(&w);
    osp_info("worker %s serving %s with %d slots (lease %d ms, drain %d s)%s", w.id,
             cfg.worker_kinds, w.nslots, cfg.lease_ms, cfg.drain_timeout_s, once ? ", --once" : "");

    ev_run(w.loop, 0);
    rc = w.exit_code;
    wrk_podcost_stop(&w);
    wrk_http_stop(&w);
out_slots:

    for (int i = 0; i < w.nslots; i++) {
        slot_kill(&w.slots[i], SIGKILL);
        slot_reset(&w.slots[i]);
        osp_job_deinit(&w.slots[i].job);
        job_report_deinit(&w.slots[i].report);
        osp_buf_deinit(&w.slots[i].env);
        osp_buf_deinit(&w.slots[i].new_env);
        osp_buf_deinit(&w.slots[i].rbuf);
    }
    free(w.slots);
    free(w.pg_starts.v);
    free(w.rq_starts.v);
    osp_lbatch_free(w.lbatch);
    free(w.recov);
    osp_rq_ops_free(w.ops);
    osp_ledger_free(w.ledger);
out_rq:
    osp_rq_free(w.rq);
out_targets:
    osp_targets_deinit(&w.targets);
    osp_config_deinit(&cfg);
    return rc;
}
