/* SPDX-License-Identifier: MIT */
/* workers_cmd.c — the worker registry: P:workers (id -> last heartbeat ms), P:worker:<id>
 * (what the worker reports about itself) and P:processing:<id> (the envelopes it holds). */
#include "cli/ctl.h"
#include "common/alloc.h"

#include <stdlib.h>
#include <string.h>

/* Split "noop,benchmark" into a JSON array of names. */
static json_t *split_kinds(const char *s)
{
    json_t *a = json_array();
    while (s != NULL && *s != '\0') {
        const char *e = strchr(s, ',');
        size_t n = e != NULL ? (size_t)(e - s) : strlen(s);
        if (n > 0) {
            json_array_append_new(a, json_stringn(s, n));
        }
        s = e != NULL ? e + 1 : NULL;
    }
    return a;
}

/* The job ids (and kinds) in a worker's processing list. */
static json_t *held_jobs(struct ctl *c, const char *id)
{
    struct osp_err err = {0};
    json_t *items = osp_rqs_worker_held(ctl_rq(c), id, &err);
    if (items == NULL) {
        ctl_die(CTL_UNAVAILABLE, "workers: %s", err.msg);
    }
    json_t *jobs = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        char kind[OSP_KIND_MAX + 1], jid[OSP_ID_LEN + 1];
        if (osp_env_peek(json_string_value(it), json_string_length(it), kind, jid) == 0) {
            json_array_append_new(jobs, json_pack("{s:s, s:s}", "id", jid, "kind", kind));
        } else {
            json_array_append_new(jobs, json_pack("{s:n, s:s}", "id", "kind", "unreadable"));
        }
    }
    json_decref(items);
    return jobs;
}

json_t *ctl_load_workers(struct ctl *c, bool with_jobs)
{
    struct osp_err err = {0};
    json_t *z = osp_rqs_worker_list(ctl_rq(c), &err);
    if (z == NULL) {
        ctl_die(CTL_UNAVAILABLE, "workers: %s", err.msg);
    }
    int64_t now = osp_now_ms();
    int64_t lease = c->cfg.lease_ms > 0 ? c->cfg.lease_ms : 30000;
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(z); i++) {
        const char *id = json_string_value(json_array_get(json_array_get(z, i), 0));
        int64_t hb = (int64_t)json_integer_value(json_array_get(json_array_get(z, i), 1));
        json_t *f = osp_rqs_worker_hash(ctl_rq(c), id, &err);
        if (f == NULL) {
            ctl_die(CTL_UNAVAILABLE, "workers: %s", err.msg);
        }
        bool stale = now - hb > lease;
        const char *state = ctl_str(f, "state");
        json_t *w = json_pack(
            "{s:s, s:s?, s:I, s:o, s:I, s:I, s:s?, s:s, s:I, s:I, s:I, s:b}", "id", id, "host",
            ctl_str(f, "host"), "pid", (json_int_t)ctl_int(f, "pid", 0), "kinds",
            split_kinds(ctl_str(f, "kinds")), "slots", (json_int_t)ctl_int(f, "slots", 0), "busy",
            (json_int_t)ctl_int(f, "busy", 0), "version", ctl_str(f, "version"), "state",
            stale ? "stale" : (state != NULL ? state : "running"), "started_ms",
            (json_int_t)ctl_int(f, "started", 0), "heartbeat_ms", (json_int_t)hb,
            "heartbeat_age_ms", (json_int_t)(now - hb > 0 ? now - hb : 0), "stale", stale);
        if (with_jobs) {
            json_object_set_new(w, "jobs", held_jobs(c, id));
        }
        json_decref(f);
        json_array_append_new(out, w);
    }
    json_decref(z);
    return out;
}

int ctl_cmd_workers(struct ctl *c, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        ctl_die(CTL_USAGE, "usage: opspoolctl workers");
    }
    json_t *ws = ctl_load_workers(c, true);
    if (c->json) {
        ctl_print_json(ws);
        json_decref(ws);
        return CTL_OK;
    }
    if (json_array_size(ws) == 0) {
        printf("no workers registered\n");
        json_decref(ws);
        return CTL_OK;
    }
    static const char *const heads[] = {"ID",    "HOST",       "PID",     "KINDS", ">BUSY",
                                        "STATE", ">HEARTBEAT", ">UPTIME", "JOBS",  NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    size_t i;
    json_t *w;
    json_array_foreach(ws, i, w) {
        char pid[24], busy[48], hb[32], up[32] = "-";
        struct osp_buf kinds = OSP_BUF_INIT, jobs = OSP_BUF_INIT;
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(w, "kinds"), k, v) {
            osp_buf_appendf(&kinds, "%s%s", k ? "," : "", json_string_value(v));
        }
        json_t *held = json_object_get(w, "jobs");
        json_array_foreach(held, k, v) {
            osp_buf_appendf(&jobs, "%s%s", k ? "," : "",
                            ctl_str(v, "id") != NULL ? ctl_str(v, "id") : "(unreadable)");
        }
        snprintf(pid, sizeof(pid), "%lld", (long long)ctl_int(w, "pid", 0));
        snprintf(busy, sizeof(busy), "%lld/%lld", (long long)ctl_int(w, "busy", 0),
                 (long long)ctl_int(w, "slots", 0));
        ctl_fmt_age(ctl_int(w, "heartbeat_age_ms", 0), hb, sizeof(hb));
        strncat(hb, " ago", sizeof(hb) - strlen(hb) - 1);
        if (ctl_int(w, "started_ms", 0) > 0) {
            ctl_fmt_age(osp_now_ms() - ctl_int(w, "started_ms", 0), up, sizeof(up));
        }
        const char *cells[] = {ctl_str(w, "id"),
                               ctl_str(w, "host"),
                               pid,
                               osp_buf_cstr(&kinds),
                               busy,
                               ctl_str(w, "state"),
                               hb,
                               up,
                               jobs.len ? osp_buf_cstr(&jobs) : "-"};
        size_t row = ctl_table_add(&t, cells);
        ctl_table_color(&t, row, 5, ctl_state_color(ctl_str(w, "state")));
        osp_buf_deinit(&kinds);
        osp_buf_deinit(&jobs);
    }
    ctl_table_print(&t, stdout, c->color);
    ctl_table_deinit(&t);
    json_decref(ws);
    return CTL_OK;
}
