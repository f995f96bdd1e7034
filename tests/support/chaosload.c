/* SPDX-License-Identifier: MIT */
/* chaosload.c — osp-chaos-load: the chaos suite's submitter. Submits jobs through osp_submit
 * (ledger row first, then the envelope — the one way jobs enter the pool) at a steady rate,
 * and appends the id of every job the ledger accepted to a file, so the checker can
 * reconcile each submitted id against the ledger at the end.
 *
 *   osp-chaos-load --count N --ids FILE [--kind noop] [--payload JSON] [--rate JOBS_PER_S]
 *                  [--batch B] [--max-attempts A] [--deadline-s S]
 *
 * Store errors do not stop it: when PostgreSQL does not confirm a batch the same batch, same
 * ids, is retried after 100 ms (a commit whose answer was lost is then completed, not left
 * behind); when Redis fails after the rows were written
 * (OSP_EREDIS) the ids are recorded anyway — the jobs exist in the ledger and the
 * scheduler's reconciler must enqueue them. The checker still reports ledger jobs the loader
 * never recorded ("unacknowledged") and requires them to finish. Configuration from the usual OSP_* environment.
 * Exit 0 when N jobs were accepted, 1 on a usage error or when the deadline passed. */
#include "common/base.h"
#include "common/config.h"
#include "common/id.h"
#include "common/submit.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(void)
{
    fputs("usage: osp-chaos-load --count N --ids FILE [--kind K] [--payload JSON] "
          "[--rate R] [--batch B] [--max-attempts A] [--deadline-s S]\n",
          stderr);
    exit(1);
}

static int64_t mono_ms(void)
{
    return osp_mono_ns() / 1000000;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0) {
        return;
    }
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int main(int argc, char **argv)
{
    long count = 0, batch = 20, max_attempts = 3, deadline_s = 600;
    double rate = 0; /* 0 = as fast as possible */
    const char *ids_path = NULL, *kind = "noop", *payload_s = "{}";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            usage();
        }
        const char *v = argv[++i];
        if (strcmp(a, "--count") == 0) {
            count = atol(v);
        } else if (strcmp(a, "--ids") == 0) {
            ids_path = v;
        } else if (strcmp(a, "--kind") == 0) {
            kind = v;
        } else if (strcmp(a, "--payload") == 0) {
            payload_s = v;
        } else if (strcmp(a, "--rate") == 0) {
            rate = atof(v);
        } else if (strcmp(a, "--batch") == 0) {
            batch = atol(v);
        } else if (strcmp(a, "--max-attempts") == 0) {
            max_attempts = atol(v);
        } else if (strcmp(a, "--deadline-s") == 0) {
            deadline_s = atol(v);
        } else {
            usage();
        }
    }
    if (count <= 0 || ids_path == NULL || batch <= 0 || batch > 2000 || max_attempts < 1 ||
        rate < 0) {
        usage();
    }
    signal(SIGPIPE, SIG_IGN); /* a store dying mid-write is an error to retry, not a signal */
    json_error_t jerr;
    json_t *payload = json_loads(payload_s, 0, &jerr);
    if (!json_is_object(payload)) {
        fprintf(stderr, "osp-chaos-load: --payload: not a JSON object\n");
        return 1;
    }
    struct osp_config cfg;
    struct osp_err err = {0, ""};
    if (osp_config_load(&cfg, OSP_CFG_CLI, &err) != 0) {
        fprintf(stderr, "osp-chaos-load: %s\n", err.msg);
        return 1;
    }
    FILE *ids = fopen(ids_path, "a");
    if (ids == NULL) {
        fprintf(stderr, "osp-chaos-load: %s: %s\n", ids_path, strerror(errno));
        return 1;
    }
    struct osp_env_keys keys;
    osp_env_keys_from(&keys, cfg.signing_key, cfg.signing_key_old, cfg.allow_unsigned);
    struct osp_rq_opts ro;
    osp_config_rq_opts(&cfg, &ro);
    struct osp_pgs *pg = NULL;
    struct osp_rqs *rq = NULL;
    struct osp_job *jobs = calloc((size_t)batch, sizeof(*jobs));
    char(*out)[OSP_ID_LEN + 1] = calloc((size_t)batch, sizeof(*out));
    if (jobs == NULL || out == NULL) {
        return 1;
    }
    int64_t t0 = mono_ms(), end = t0 + deadline_s * 1000;
    long done = 0, pg_errors = 0, redis_errors = 0;
    size_t n = 0; /* jobs of the batch in hand (0: build the next one) */
    int rc = 0;
    while (done < count) {
        if (mono_ms() > end) {
            fprintf(stderr, "osp-chaos-load: deadline passed after %ld of %ld jobs\n", done, count);
            rc = 1;
            break;
        }
        if (rate > 0) {
            int64_t due = t0 + (int64_t)((double)done * 1000.0 / rate);
            sleep_ms(due - mono_ms());
        }
        if (pg == NULL) {
            pg = osp_pgs_connect(cfg.pg_dsn, &err);
            if (pg == NULL) {
                pg_errors++;
                sleep_ms(100);
                continue;
            }
        }
        if (rq == NULL) {
            rq = osp_rqs_connect(&ro, &err);
            if (rq == NULL) {
                /* osp_submit needs a client; wait for Redis like a real submitter would.
                 * (Once connected, the client reconnects by itself after an I/O error.) */
                redis_errors++;
                sleep_ms(100);
                continue;
            }
        }
        /* A batch PostgreSQL did not confirm is retried as it was, same ids: if its commit
         * happened and only the answer was lost, the rows are there and the retry inserts
         * nothing, then enqueues them (an id conflict is this very submission, never a
         * duplicate), so no ledger row is ever left without its envelope. */
        if (n == 0) {
            n = (size_t)(count - done < batch ? count - done : batch);
            for (size_t i = 0; i < n; i++) {
                osp_job_init(&jobs[i]);
                snprintf(jobs[i].kind, sizeof(jobs[i].kind), "%s", kind);
                json_decref(jobs[i].payload);
                jobs[i].payload = json_incref(payload);
                jobs[i].max_attempts = (uint32_t)max_attempts;
                free(jobs[i].submitted_by);
                jobs[i].submitted_by = strdup("osp-chaos-load");
            }
        }
        int r = osp_submit(pg, rq, &keys, jobs, n, out, NULL, &err);
        if (r == 0 || r == OSP_EREDIS) {
            for (size_t i = 0; i < n; i++) {
                fprintf(ids, "%s\n", out[i]);
            }
            fflush(ids);
            done += (long)n;
            if (r == OSP_EREDIS) {
                redis_errors++;
                fprintf(stderr, "osp-chaos-load: %zu jobs in the ledger but not queued: %s\n", n,
                        err.msg);
            }
        } else if (r == OSP_EPG) {
            pg_errors++;
            osp_pgs_free(pg); /* reconnect: the session may be broken */
            pg = NULL;
            sleep_ms(100);
            continue; /* the same batch again */
        } else {
            fprintf(stderr, "osp-chaos-load: submit failed: %s\n", err.msg);
            rc = 1;
        }
        for (size_t i = 0; i < n; i++) {
            osp_job_deinit(&jobs[i]);
        }
        n = 0;
        if (rc != 0) {
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        osp_job_deinit(&jobs[i]); /* a batch still unconfirmed at the deadline */
    }
    fclose(ids);
    printf("submitted %ld jobs in %.2fs (postgresql errors %ld, redis errors %ld)\n", done,
           (double)(mono_ms() - t0) / 1000.0, pg_errors, redis_errors);
    osp_pgs_free(pg);
    osp_rqs_free(rq);
    free(jobs);
    free(out);
    json_decref(payload);
    osp_config_deinit(&cfg);
    return rc;
}
