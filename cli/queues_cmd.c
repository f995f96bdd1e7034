/* SPDX-License-Identifier: MIT */
/* queues_cmd.c — per-kind queue table straight from Redis (works without the scheduler). */
#include "cli/ctl.h"
#include "jobs/job.h"

#include <jansson.h>
#include <string.h>

int ctl_cmd_queues(struct ctl *c, int argc, char **argv)
{
    const char *names[64];
    size_t n = 0;
    for (int i = 1; i < argc && n < 64; i++) {
        names[n++] = argv[i];
    }
    if (n == 0) {
        for (const struct job_kind *const *k = job_kinds_all(); *k != NULL && n < 64; k++) {
            names[n++] = (*k)->name;
        }
    }
    struct osp_rqs *rq = ctl_rq(c);
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++) {
        struct osp_rq_stats st;
        struct osp_err err = {0};
        if (osp_rqs_stats(rq, names[i], &st, &err) != 0) {
            ctl_die(CTL_UNAVAILABLE, "queues: %s", err.msg);
        }
        int64_t age = st.oldest_pending_ms > 0 ? osp_now_ms() - st.oldest_pending_ms : 0;
        json_array_append_new(rows, json_pack("{s:s, s:I, s:I, s:I, s:I, s:b, s:I}", "kind",
                                              names[i], "pending", (json_int_t)st.pending,
                                              "running", (json_int_t)st.running, "delayed",
                                              (json_int_t)st.delayed, "dead", (json_int_t)st.dead,
                                              "paused", st.paused, "oldest_pending_ms",
                                              (json_int_t)age));
    }
    if (c->json) {
        json_dumpf(rows, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else {
        printf("%-12s %9s %9s %9s %9s %-7s %s\n", "KIND", "PENDING", "RUNNING", "DELAYED", "DEAD",
               "PAUSED", "OLDEST");
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r) {
            char age[32] = "-";
            json_int_t a = json_integer_value(json_object_get(r, "oldest_pending_ms"));
            if (json_integer_value(json_object_get(r, "pending")) > 0) {
                ctl_fmt_age(a, age, sizeof(age));
            }
            printf("%-12s %9lld %9lld %9lld %9lld %-7s %s\n",
                   json_string_value(json_object_get(r, "kind")),
                   (long long)json_integer_value(json_object_get(r, "pending")),
                   (long long)json_integer_value(json_object_get(r, "running")),
                   (long long)json_integer_value(json_object_get(r, "delayed")),
                   (long long)json_integer_value(json_object_get(r, "dead")),
                   json_is_true(json_object_get(r, "paused")) ? "yes" : "no", age);
        }
    }
    json_decref(rows);
    return CTL_OK;
}
