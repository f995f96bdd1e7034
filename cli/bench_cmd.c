/* SPDX-License-Identifier: MIT */
/* bench_cmd.c — opspoolctl bench history|compare|pin|reset: adapters over common/ops.h
 * "benchmark history" (docs/benchmark-jobs.md "History and regressions"). */
#include "cli/ctl.h"
#include "cli/fmt.h"
#include "common/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_or(const json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : dflt;
}

static double num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* v with `decimals` decimals, or "-" when missing. */
static void fmt_num(char *out, size_t n, double v, int decimals)
{
    if (isnan(v)) {
        snprintf(out, n, "-");
    } else {
        snprintf(out, n, "%.*f", decimals, v);
    }
}

static enum ctl_color verdict_color(const char *v)
{
    if (strcmp(v, "regressed") == 0) {
        return CTL_C_RED;
    }
    if (strcmp(v, "improved") == 0) {
        return CTL_C_GREEN;
    }
    return strcmp(v, "ok") == 0 ? CTL_C_NONE : CTL_C_DIM;
}

/* The figures the verdict named worse, e.g. "p99_ms,rps". */
static void regressed_figures(const json_t *judge, char *out, size_t n)
{
    size_t off = 0;
    out[0] = '\0';
    const char *k;
    json_t *f;
    json_object_foreach(json_object_get(judge, "figures"), k, f)
    {
        if (strcmp(s_or(f, "verdict", ""), "regressed") == 0 && off < n) {
            off += (size_t)snprintf(out + off, n - off, "%s%s", off ? "," : "", k);
        }
    }
}

/* A sparkline of p99 over the rows (oldest left), one character per run. */
static void sparkline(const json_t *rows, const char *lane, char *out, size_t n)
{
    static const char *const bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    double v[64];
    size_t m = 0;
    for (size_t i = json_array_size(rows); i-- > 0 && m < OSP_ARRAY_LEN(v);) {
        const json_t *r = json_array_get(rows, i);
        if (strcmp(s_or(r, "lane", ""), lane) == 0 && !isnan(num(r, "p99_ms"))) {
            v[m++] = num(r, "p99_ms");
        }
    }
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < m; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m && off + 4 < n; i++) {
        int b = hi > lo ? (int)((v[i] - lo) / (hi - lo) * 7.0 + 0.5) : 0;
        off += (size_t)snprintf(out + off, n - off, "%s", bars[b]);
    }
    if (m > 0 && off < n) {
        snprintf(out + off, n - off, "  p99 %.2f..%.2f ms, oldest left", lo, hi);
    }
}

static int bench_history(struct ctl *c, int argc, char **argv)
{
    struct osp_bench_filter f = {NULL, NULL, 0, 30};
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--target") == 0 && i + 1 < argc) {
            f.target = argv[++i];
        } else if (strcmp(argv[i], "--lane") == 0 && i + 1 < argc) {
            f.lane = argv[++i];
        } else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
            if (ctl_parse_duration(argv[++i], &f.since_ms) != 0) {
                ctl_die(CTL_USAGE, "bench history: --since: a duration like 90s, 30m, 12h, 7d");
            }
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            f.limit = (int)ctl_parse_long("--limit", argv[++i], 1, 1000);
        } else {
            ctl_die(CTL_USAGE, "usage: opspoolctl bench history [--target T] [--lane L] "
                               "[--since D] [--limit N]");
        }
    }
    struct osp_ops o;
    ctl_ops(c, &o);
    struct osp_err err = {0, ""};
    json_t *rows = osp_op_bench_history(&o, &f, &err);
    if (rows == NULL) {
        ctl_die(ctl_op_exit(err.code), "bench history: %s", err.msg);
    }
    if (c->json) {
        ctl_print_json(rows);
        json_decref(rows);
        return CTL_OK;
    }
    if (json_array_size(rows) == 0) {
        printf("no benchmark results%s\n", f.target != NULL || f.lane != NULL ? " match" : "");
        json_decref(rows);
        return CTL_OK;
    }
    static const char *const heads[] = {"CREATED", "JOB",     "TARGET", ">RPS",
                                        ">P50 MS", ">P99 MS", ">P99.9", ">ERR %",
                                        "LANE",    "VERDICT", "WORSE",  NULL};
    struct ctl_table t;
    ctl_table_init(&t, heads);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const json_t *judge = json_object_get(r, "judge");
        const char *verdict = s_or(judge, "verdict", "-");
        char rps[32], p50[32], p99[32], p999[32], err_s[32], worse[128];
        const char *job = s_or(r, "job_id", "?");
        fmt_num(rps, sizeof(rps), num(r, "rps"), 0);
        fmt_num(p50, sizeof(p50), num(r, "p50_ms"), 2);
        fmt_num(p99, sizeof(p99), num(r, "p99_ms"), 2);
        fmt_num(p999, sizeof(p999), num(r, "p999_ms"), 2);
        double req = num(r, "requests");
        fmt_num(err_s, sizeof(err_s), req > 0 ? 100.0 * num(r, "errors") / req : NAN, 2);
        regressed_figures(judge, worse, sizeof(worse));
        const char *cells[] = {
            s_or(r, "created_at", "-"), job,     s_or(r, "target", "-"), rps, p50, p99, p999, err_s,
            s_or(r, "lane", "-"),       verdict, worse[0] ? worse : NULL};
        size_t row = ctl_table_add(&t, cells);
        ctl_table_color(&t, row, 9, verdict_color(verdict));
    }
    ctl_table_print(&t, stdout, c->color);
    ctl_table_deinit(&t);
    /* One trend line per lane shown. */
    json_t *seen = json_object();
    json_array_foreach(rows, i, r)
    {
        const char *lane = s_or(r, "lane", "");
        char key[160];
        snprintf(key, sizeof(key), "%s/%s", s_or(r, "target", ""), lane);
        if (json_object_get(seen, key) != NULL) {
            continue;
        }
        json_object_set_new(seen, key, json_true());
        char line[512];
        sparkline(rows, lane, line, sizeof(line));
        printf("\n%-24s %s", key, line);
    }
    printf("\n");
    json_decref(seen);
    json_decref(rows);
    return CTL_OK;
}

static void print_judged_lanes(const json_t *lanes)
{
    size_t i;
    json_t *l;
    json_array_foreach(lanes, i, l)
    {
        const json_t *judge = json_object_get(l, "judge");
        const json_t *base = json_object_get(judge, "baseline");
        printf("lane %s: %s (baseline: %lld runs%s%s)\n", s_or(l, "lane", "-"),
               s_or(judge, "verdict", "-"),
               (long long)json_integer_value(json_object_get(base, "runs")),
               json_is_string(json_object_get(base, "pinned")) ? ", pinned " : "",
               s_or(base, "pinned", ""));
        static const char *const heads[] = {"FIGURE",     ">VALUE",  ">BASELINE",
                                            ">TOLERANCE", "VERDICT", NULL};
        struct ctl_table t;
        ctl_table_init(&t, heads);
        t.indent = 2;
        const char *k;
        json_t *f;
        json_object_foreach(json_object_get(judge, "figures"), k, f)
        {
            char v[32], b[32], tol[32];
            fmt_num(v, sizeof(v), num(f, "value"), 3);
            fmt_num(b, sizeof(b), num(f, "baseline"), 3);
            fmt_num(tol, sizeof(tol), num(f, "tolerance"), 3);
            const char *cells[] = {k, v, b, tol, s_or(f, "verdict", "-")};
            ctl_table_add(&t, cells);
        }
        ctl_table_print(&t, stdout, false);
        ctl_table_deinit(&t);
    }
}

static int bench_compare(struct ctl *c, int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        ctl_die(CTL_USAGE, "usage: opspoolctl bench compare ID [ID]");
    }
    struct osp_ops o;
    ctl_ops(c, &o);
    struct osp_err err = {0, ""};
    json_t *out = osp_op_bench_compare(&o, argv[2], argc == 4 ? argv[3] : NULL, &err);
    if (out == NULL) {
        ctl_die(ctl_op_exit(err.code), "bench compare: %s", err.msg);
    }
    if (c->json) {
        ctl_print_json(out);
    } else if (argc == 3) {
        print_judged_lanes(json_object_get(out, "a"));
    } else {
        printf("A = %s, B = %s (change = (A - B) / B)\n", argv[2], argv[3]);
        static const char *const heads[] = {"LANE", "FIGURE", ">A", ">B", ">CHANGE", "", NULL};
        struct ctl_table t;
        ctl_table_init(&t, heads);
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(out, "lanes"), i, l)
        {
            const char *k;
            json_t *f;
            json_object_foreach(json_object_get(l, "figures"), k, f)
            {
                char a[32], b[32], ch[32];
                fmt_num(a, sizeof(a), num(f, "a"), 3);
                fmt_num(b, sizeof(b), num(f, "b"), 3);
                if (isnan(num(f, "change"))) {
                    snprintf(ch, sizeof(ch), "-");
                } else {
                    snprintf(ch, sizeof(ch), "%+.1f%%", 100.0 * num(f, "change"));
                }
                const char *dir = s_or(f, "direction", "");
                const char *cells[] = {s_or(l, "lane", "-"), k, a, b, ch, dir};
                size_t row = ctl_table_add(&t, cells);
                ctl_table_color(&t, row, 5,
                                strcmp(dir, "worse") == 0    ? CTL_C_RED
                                : strcmp(dir, "better") == 0 ? CTL_C_GREEN
                                                             : CTL_C_NONE);
            }
        }
        ctl_table_print(&t, stdout, c->color);
        ctl_table_deinit(&t);
    }
    json_decref(out);
    return CTL_OK;
}

static int bench_baseline(struct ctl *c, int argc, char **argv, bool pin)
{
    if (argc != (pin ? 5 : 4)) {
        ctl_die(CTL_USAGE, pin ? "usage: opspoolctl bench pin TARGET LANE JOB_ID"
                               : "usage: opspoolctl bench reset TARGET LANE");
    }
    struct osp_ops o;
    ctl_ops(c, &o);
    struct osp_err err = {0, ""};
    int rc = osp_op_bench_baseline(&o, argv[2], argv[3], pin ? argv[4] : NULL, &err);
    if (rc != 0) {
        ctl_die(ctl_op_exit(rc), "bench %s: %s", pin ? "pin" : "reset", err.msg);
    }
    if (pin) {
        printf("%s/%s: runs are compared with job %s from now on\n", argv[2], argv[3], argv[4]);
    } else {
        printf("%s/%s: the baseline starts again from the next runs\n", argv[2], argv[3]);
    }
    return CTL_OK;
}

int ctl_cmd_bench(struct ctl *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "history") == 0) {
        return bench_history(c, argc, argv);
    }
    if (strcmp(sub, "compare") == 0) {
        return bench_compare(c, argc, argv);
    }
    if (strcmp(sub, "pin") == 0 || strcmp(sub, "reset") == 0) {
        return bench_baseline(c, argc, argv, strcmp(sub, "pin") == 0);
    }
    ctl_die(CTL_USAGE, "usage: opspoolctl bench history|compare|pin|reset ... (opspoolctl --help)");
}
