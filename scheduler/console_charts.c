/* SPDX-License-Identifier: MIT */
/* console_charts.c — the evidence drawn on a job's page (docs/console.md): a benchmark's
 * lanes with their percentiles and judge (osp_op_bench_compare with no second run) and each
 * lane's trend (osp_op_bench_history), a drill's phases as a chart, a seed's runs and a
 * backup's files as tables (osp_op_job_records). Charts are inline SVG
 * drawn here: no script, no external asset (the CSP needs nothing for inline <svg>); every
 * number is printed by this program and every text escaped.
 *
 * A drill's ledger record keeps per-phase probe statistics (probes, availability, p50/p95/p99,
 * start and end), not every probe: the chart draws each phase as a band with its latency
 * percentiles and availability as steps, and marks time to detect and time to recover. */
#include "common/base.h"
#include "common/ops.h"
#include "scheduler/api.h"
#include "scheduler/console.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TREND_POINTS 60 /* runs drawn per lane */
#define CH_W         720
#define CH_H         220
#define CH_L         56 /* left margin (axis labels) */
#define CH_R         16
#define CH_T         16
#define CH_B         28

static double num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least v. */
static double nice_max(double v)
{
    if (!(v > 0) || !isfinite(v)) {
        return 1.0;
    }
    double p = pow(10.0, floor(log10(v)));
    for (int i = 0; i < 3; i++) {
        static const double m[] = {1, 2, 5};
        if (m[i] * p >= v) {
            return m[i] * p;
        }
    }
    return 10 * p;
}

static void y_axis(struct osp_buf *out, double ymax, const char *unit, int top, int h)
{
    for (int i = 0; i <= 4; i++) {
        double y = top + h - (double)h * i / 4;
        osp_buf_appendf(out,
                        "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e3e6eb\"/>"
                        "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" "
                        "fill=\"#5b6472\">%g%s</text>",
                        CH_L, y, CH_W - CH_R, y, CH_L - 4, y + 3, ymax * i / 4, unit);
    }
}

/* ---- benchmark trend ---- */

void ui_bench_trend_svg(struct osp_buf *out, const json_t *rows, const char *lane)
{
    const json_t *pts[TREND_POINTS];
    size_t n = 0;
    const char *target = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *l = json_string_value(json_object_get(r, "lane"));
        const char *t = json_string_value(json_object_get(r, "target"));
        if (strcmp(l != NULL ? l : "", lane) != 0) {
            continue;
        }
        if (target == NULL) {
            target = t != NULL ? t : "";
        }
        if (strcmp(t != NULL ? t : "", target) != 0) {
            continue;
        }
        if (n < TREND_POINTS) {
            pts[n++] = r; /* newest first */
        }
    }
    if (n == 0) {
        return;
    }
    json_t *figs = json_object_get(json_object_get(pts[0], "judge"), "figures");
    double b50 = num(json_object_get(figs, "p50_ms"), "baseline");
    double b99 = num(json_object_get(figs, "p99_ms"), "baseline");
    double ymax = isnan(b99) ? 0 : b99;
    for (i = 0; i < n; i++) {
        double v = num(pts[i], "p99_ms");
        ymax = v > ymax ? v : ymax;
    }
    ymax = nice_max(ymax * 1.05);
    int pw = CH_W - CH_L - CH_R, ph = CH_H - CH_T - CH_B;
    osp_buf_appendf(out,
                    "<svg class=\"chart trend\" role=\"img\" width=\"%d\" height=\"%d\" "
                    "viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\"><title>p50 and "
                    "p99 of the last %zu runs, oldest left; dashed: baseline</title>",
                    CH_W, CH_H, CH_W, CH_H, n);
    y_axis(out, ymax, " ms", CH_T, ph);
    /* x: oldest (index n-1) at the left. */
#define TX(k) (CH_L + (n > 1 ? (double)pw * (double)(n - 1 - (k)) / (double)(n - 1) : pw / 2.0))
#define TY(v) (CH_T + ph - (double)ph * ((v) / ymax))
    static const struct {
        const char *fig, *colour, *label;
    } lines[] = {{"p50_ms", "#1f5fbf", "p50"}, {"p99_ms", "#c26a00", "p99"}};
    double base[] = {b50, b99};
    for (size_t L = 0; L < OSP_ARRAY_LEN(lines); L++) {
        if (!isnan(base[L])) {
            osp_buf_appendf(out,
                            "<line class=\"baseline\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
                            "y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"6 4\" "
                            "stroke-opacity=\".6\"/>",
                            CH_L, TY(base[L]), CH_W - CH_R, TY(base[L]), lines[L].colour);
        }
        ui_raw(out, "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"");
        ui_raw(out, lines[L].colour);
        ui_raw(out, "\" points=\"");
        for (size_t k = n; k-- > 0;) {
            double v = num(pts[k], lines[L].fig);
            if (!isnan(v)) {
                osp_buf_appendf(out, "%.1f,%.1f ", TX(k), TY(v));
            }
        }
        ui_raw(out, "\"/>");
    }
    for (size_t k = 0; k < n; k++) {
        const char *verdict =
            json_string_value(json_object_get(json_object_get(pts[k], "judge"), "verdict"));
        double v = num(pts[k], "p99_ms");
        if (verdict != NULL && strcmp(verdict, "regressed") == 0 && !isnan(v)) {
            osp_buf_appendf(out,
                            "<circle class=\"regressed\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" "
                            "fill=\"#b3261e\"><title>regressed</title></circle>",
                            TX(k), TY(v));
        }
    }
#undef TX
#undef TY
    osp_buf_appendf(out,
                    "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#1f5fbf\">— p50</text>"
                    "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#c26a00\">— p99</text>"
                    "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#5b6472\">- - baseline"
                    "</text><text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#b3261e\">● "
                    "regressed</text></svg>",
                    CH_L, CH_H - 8, CH_L + 60, CH_H - 8, CH_L + 120, CH_H - 8, CH_L + 210,
                    CH_H - 8);
}

/* ---- a benchmark job ---- */

static void bench_evidence(struct ui_ctx *c, const char *id)
{
    struct osp_ops o = sched_ops(c->s, sched_pg(c->s), c->who, "console");
    struct osp_err err = {0, ""};
    if (o.pg == NULL) {
        return; /* the page's own read just succeeded; nothing to add */
    }
    json_t *cmp = osp_op_bench_compare(&o, id, NULL, &err);
    ui_raw(c->out, "<h2>Benchmark lanes</h2>");
    if (cmp == NULL) {
        ui_raw(c->out, "<p class=\"muted\" id=\"bench-none\">");
        ui_esc(c->out,
               err.code == OSP_ENOTFOUND ? "No benchmark result recorded for this job." : err.msg);
        ui_raw(c->out, "</p>");
        return;
    }
    json_t *lanes = json_object_get(cmp, "a");
    ui_raw(c->out, "<div class=\"scroll\"><table id=\"bench-lanes\"><thead><tr><th>Lane</th>"
                   "<th class=\"num\">Requests</th><th class=\"num\">rps</th>"
                   "<th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p95</th>"
                   "<th class=\"num\">p99</th><th class=\"num\">p99.9</th><th class=\"num\">max"
                   "</th><th>Judge</th><th>Figures off the baseline</th></tr></thead><tbody>");
    size_t i;
    json_t *l;
    json_array_foreach(lanes, i, l)
    {
        json_t *judge = json_object_get(l, "judge");
        const char *verdict = ui_jstr(judge, "verdict");
        bool bad = strcmp(verdict, "regressed") == 0;
        osp_buf_appendf(c->out, "<tr%s><td>", bad ? " class=\"regressed\"" : "");
        ui_esc(c->out, ui_jstr(l, "lane")[0] ? ui_jstr(l, "lane") : "(none)");
        ui_raw(c->out, "</td><td class=\"num\">");
        ui_value(c->out, json_object_get(l, "requests"));
        ui_raw(c->out, "</td>");
        static const char *const f[] = {"rps",    "p50_ms",  "p90_ms", "p95_ms",
                                        "p99_ms", "p999_ms", "max_ms"};
        for (size_t k = 0; k < OSP_ARRAY_LEN(f); k++) {
            double v = num(l, f[k]);
            ui_raw(c->out, "<td class=\"num\">");
            if (!isnan(v)) {
                osp_buf_appendf(c->out, "%.2f", v);
            }
            ui_raw(c->out, "</td>");
        }
        osp_buf_appendf(c->out, "<td data-f=\"verdict\"><span class=\"verdict%s\">",
                        bad ? " bad" : "");
        ui_esc(c->out, verdict);
        ui_raw(c->out, "</span></td><td class=\"wrap\">");
        const char *fk;
        json_t *fv;
        bool first = true;
        json_object_foreach(json_object_get(judge, "figures"), fk, fv)
        {
            const char *fvd = ui_jstr(fv, "verdict");
            if (strcmp(fvd, "regressed") == 0 || strcmp(fvd, "improved") == 0 ||
                strcmp(fvd, "unconfirmed") == 0) {
                ui_raw(c->out, first ? "" : ", ");
                ui_esc(c->out, fk);
                ui_raw(c->out, " ");
                ui_esc(c->out, fvd);
                first = false;
            }
        }
        ui_raw(c->out, "</td></tr>");
    }
    ui_raw(c->out, "</tbody></table></div>");
    /* Each lane's trend against its baseline (the few latest lanes of this run). */
    json_array_foreach(lanes, i, l)
    {
        if (i >= 6) {
            break;
        }
        const char *target = ui_jstr(l, "target");
        const char *lane = ui_jstr(l, "lane");
        if (target[0] == '\0') {
            continue;
        }
        struct osp_bench_filter f = {target, lane[0] ? lane : NULL, 0, TREND_POINTS};
        json_t *hist = osp_op_bench_history(&o, &f, &err);
        if (hist == NULL) {
            continue;
        }
        ui_raw(c->out, "<h2>Trend: ");
        ui_esc(c->out, target);
        ui_raw(c->out, " · lane ");
        ui_esc(c->out, lane[0] ? lane : "(none)");
        ui_raw(c->out, " <a href=\"/ui/benchmarks?target=");
        ui_esc(c->out, target); /* a checked name: [a-z0-9_-] */
        if (lane[0]) {
            ui_raw(c->out, "&amp;lane=");
            ui_esc(c->out, lane);
        }
        ui_raw(c->out, "\">history</a></h2>");
        ui_bench_trend_svg(c->out, hist, lane);
        json_decref(hist);
    }
    json_decref(cmp);
}

/* ---- a drill ---- */

static const struct {
    const char *name, *fill, *label;
} drill_phases[] = {
    {"steady", "#dcf2e3", "steady"},     {"inject", "#f8dcda", "inject"},
    {"observe", "#f8dcda", "fault"},     {"rollback", "#fbefd5", "rollback"},
    {"recovery", "#dfe9fb", "recovery"},
};

static void drill_marker(struct osp_buf *out, double x, int top, int bottom, const char *colour,
                         const char *label, double ms)
{
    osp_buf_appendf(out,
                    "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" "
                    "stroke-width=\"2\"/><text x=\"%.1f\" y=\"%d\" font-size=\"11\" fill=\"%s\">"
                    "%s %.0f ms</text>",
                    x, top, x, bottom, colour, x + 3, top + 11, colour, label, ms);
}

static void drill_evidence(struct ui_ctx *c, const json_t *res)
{
    json_t *phases = json_object_get(res, "phases");
    if (!json_is_object(phases)) {
        return;
    }
    double end = num(res, "duration_ms");
    double lat_max = 0;
    for (size_t i = 0; i < OSP_ARRAY_LEN(drill_phases); i++) {
        json_t *p = json_object_get(phases, drill_phases[i].name);
        double e = num(p, "end_ms"), v = num(p, "p99_ms");
        end = !isnan(e) && (isnan(end) || e > end) ? e : end;
        lat_max = !isnan(v) && v > lat_max ? v : lat_max;
    }
    if (isnan(end) || end <= 0) {
        return;
    }
    lat_max = nice_max(lat_max * 1.1);
    const int h = 300, lat_top = CH_T, lat_h = 130, av_top = 180, av_h = 80;
    int pw = CH_W - CH_L - CH_R;
#define DX(ms) (CH_L + (double)pw * ((ms) / end))
    ui_raw(c->out, "<h2>Drill</h2>");
    osp_buf_appendf(c->out,
                    "<div class=\"scroll\"><svg class=\"chart\" id=\"drill-chart\" role=\"img\" "
                    "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                    "xmlns=\"http://www.w3.org/2000/svg\"><title>Probe latency (p50, p95, p99) "
                    "and availability per phase over the drill's %.0f ms</title>",
                    CH_W, h, CH_W, h, end);
    for (size_t i = 0; i < OSP_ARRAY_LEN(drill_phases); i++) {
        json_t *p = json_object_get(phases, drill_phases[i].name);
        double s = num(p, "start_ms"), e = num(p, "end_ms");
        if (isnan(s)) {
            continue;
        }
        e = isnan(e) ? end : e;
        osp_buf_appendf(c->out,
                        "<rect class=\"phase\" data-phase=\"%s\" x=\"%.1f\" y=\"%d\" "
                        "width=\"%.1f\" height=\"%d\" fill=\"%s\" fill-opacity=\".7\"/>"
                        "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" fill=\"#5b6472\">%s</text>",
                        drill_phases[i].name, DX(s), lat_top,
                        DX(e) - DX(s) > 0.5 ? DX(e) - DX(s) : 0.5, av_top + av_h - lat_top,
                        drill_phases[i].fill, DX(s) + 2, av_top + av_h + 12,
                        DX(e) - DX(s) >= 40 ? drill_phases[i].label : "");
    }
    y_axis(c->out, lat_max, " ms", lat_top, lat_h);
    static const struct {
        const char *fig, *colour;
    } lat[] = {{"p50_ms", "#1f5fbf"}, {"p95_ms", "#7a4fbf"}, {"p99_ms", "#c26a00"}};
    for (size_t i = 0; i < OSP_ARRAY_LEN(drill_phases); i++) {
        json_t *p = json_object_get(phases, drill_phases[i].name);
        double s = num(p, "start_ms"), e = num(p, "end_ms");
        if (isnan(s)) {
            continue;
        }
        e = isnan(e) ? end : e;
        for (size_t k = 0; k < OSP_ARRAY_LEN(lat); k++) {
            double v = num(p, lat[k].fig);
            if (!isnan(v)) {
                double y = lat_top + lat_h - lat_h * (v / lat_max);
                osp_buf_appendf(c->out,
                                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                "stroke=\"%s\" stroke-width=\"2\"/>",
                                DX(s), y, DX(e), y, lat[k].colour);
            }
        }
        double av = num(p, "availability");
        if (!isnan(av)) {
            double y = av_top + av_h - av_h * av;
            osp_buf_appendf(c->out,
                            "<rect class=\"avail\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                            "height=\"%.1f\" fill=\"#1e7a3c\" fill-opacity=\".55\"><title>%s: "
                            "availability %.3f</title></rect>",
                            DX(s), y, DX(e) - DX(s), av_top + av_h - y, drill_phases[i].name, av);
        }
    }
    osp_buf_appendf(c->out,
                    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#5b6472\"/>"
                    "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\" "
                    "fill=\"#5b6472\">100%%</text><text x=\"%d\" y=\"%d\" font-size=\"10\" "
                    "text-anchor=\"end\" fill=\"#5b6472\">0%%</text>",
                    CH_L, av_top, CH_W - CH_R, av_top, CH_L - 4, av_top + 4, CH_L - 4,
                    av_top + av_h);
    json_t *tl = json_object_get(res, "timeline");
    double inj = num(tl, "inject_ms"), fend = num(tl, "fault_end_ms");
    double ttd = num(res, "time_to_detect_ms"), ttr = num(res, "time_to_recover_ms");
    if (!isnan(inj) && !isnan(ttd)) {
        drill_marker(c->out, DX(inj + ttd), lat_top, av_top + av_h, "#b3261e", "detect", ttd);
    }
    if (!isnan(fend) && !isnan(ttr)) {
        drill_marker(c->out, DX(fend + ttr), lat_top + 14, av_top + av_h, "#1e7a3c", "recover",
                     ttr);
    }
#undef DX
    osp_buf_appendf(c->out,
                    "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#1f5fbf\">— p50</text>"
                    "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#7a4fbf\">— p95</text>"
                    "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#c26a00\">— p99</text>"
                    "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#1e7a3c\">▮ availability"
                    "</text></svg></div>",
                    CH_L, h - 6, CH_L + 60, h - 6, CH_L + 120, h - 6, CH_L + 180, h - 6);
    ui_raw(c->out, "<dl class=\"kv\" id=\"drill-figures\">");
    static const char *const kvs[][2] = {
        {"Verdict", "verdict"},
        {"Time to detect (ms)", "time_to_detect_ms"},
        {"Time to recover (ms)", "time_to_recover_ms"},
        {"Availability", "availability"},
        {"Availability under fault", "availability_under_fault"},
    };
    for (size_t i = 0; i < OSP_ARRAY_LEN(kvs); i++) {
        osp_buf_appendf(c->out, "<dt>%s</dt><dd data-f=\"%s\">", kvs[i][0], kvs[i][1]);
        const json_t *v = json_object_get(res, kvs[i][1]);
        if (json_is_real(v)) {
            osp_buf_appendf(c->out, "%.3f", json_real_value(v));
        } else {
            ui_value(c->out, v);
        }
        ui_raw(c->out, "</dd>");
    }
    ui_raw(c->out, "</dl><p class=\"muted\">The ledger keeps each phase's probe statistics, not "
                   "every probe: a phase is drawn as its p50/p95/p99 and its availability.</p>");
}

/* ---- a seed or a backup (opspool.seed_runs, opspool.backups) ---- */

/* One cell: a real with 2 decimals, anything else as ui_value prints it. */
static void record_cell(struct osp_buf *out, const char *field, const json_t *v)
{
    osp_buf_appendf(out, "<td data-f=\"%s\">", field);
    if (json_is_real(v)) {
        osp_buf_appendf(out, "%.2f", json_real_value(v));
    } else {
        ui_value(out, v);
    }
    ui_raw(out, "</td>");
}

static const char *const seed_cols[][2] = {
    {"Attempt", "attempt"},
    {"Target", "target"},
    {"Seed", "seed"},
    {"Scale", "scale"},
    {"Mode", "mode"},
    {"Bytes", "bytes"},
    {"Duration (ms)", "duration_ms"},
    {"Rows/s", "rows_per_s"},
    {"Digest", "digest"},
    {"Recorded", "created_at"},
};
static const char *const backup_cols[][2] = {
    {"Attempt", "attempt"},
    {"Target", "target"},
    {"File", "path"},
    {"Bytes", "bytes"},
    {"SHA-256", "sha256"},
    {"Verified", "verified"},
    {"Restore (ms)", "restore_ms"},
    {"Duration (ms)", "duration_ms"},
    {"Server", "server_version"},
    {"pg_dump", "pg_dump_version"},
    {"Expired", "expired_at"},
    {"Recorded", "created_at"},
};

static void records_table(struct osp_buf *out, const char *tid, const json_t *rows,
                          const char *const (*cols)[2], size_t ncols, bool with_rows)
{
    osp_buf_appendf(out, "<div class=\"scroll\"><table id=\"%s\"><thead><tr>", tid);
    for (size_t k = 0; k < ncols; k++) {
        osp_buf_appendf(out, "<th>%s</th>", cols[k][0]);
    }
    if (with_rows) {
        ui_raw(out, "<th>Rows per table</th>");
    }
    ui_raw(out, "</tr></thead><tbody>");
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        ui_raw(out, "<tr>");
        for (size_t k = 0; k < ncols; k++) {
            record_cell(out, cols[k][1], json_object_get(r, cols[k][1]));
        }
        if (with_rows) {
            ui_raw(out, "<td data-f=\"rows\" class=\"wrap\">");
            const char *t;
            json_t *n;
            bool first = true;
            json_object_foreach(json_object_get(r, "rows"), t, n)
            {
                ui_raw(out, first ? "" : ", ");
                ui_esc(out, t);
                ui_raw(out, " ");
                ui_value(out, n);
                first = false;
            }
            ui_raw(out, "</td>");
        }
        ui_raw(out, "</tr>");
    }
    ui_raw(out, "</tbody></table></div>");
}

static void records_evidence(struct ui_ctx *c, const char *id, bool seed)
{
    struct osp_ops o = sched_ops(c->s, sched_pg(c->s), c->who, "console");
    struct osp_err err = {0, ""};
    if (o.pg == NULL) {
        return;
    }
    json_t *rec = osp_op_job_records(&o, id, &err);
    ui_raw(c->out, seed ? "<h2>Seed runs</h2>" : "<h2>Backups</h2>");
    const json_t *rows = json_object_get(rec, seed ? "seed_runs" : "backups");
    if (rec == NULL || json_array_size(rows) == 0) {
        osp_buf_appendf(c->out, "<p class=\"muted\" id=\"%s-none\">", seed ? "seed" : "backup");
        ui_esc(c->out, rec == NULL ? err.msg
                       : seed      ? "No seed run recorded for this job."
                                   : "No backup recorded for this job.");
        ui_raw(c->out, "</p>");
    } else if (seed) {
        records_table(c->out, "seed-runs", rows, seed_cols, OSP_ARRAY_LEN(seed_cols), true);
    } else {
        records_table(c->out, "backups", rows, backup_cols, OSP_ARRAY_LEN(backup_cols), false);
    }
    json_decref(rec);
}

void ui_job_evidence(struct ui_ctx *c, const char *id, const json_t *job)
{
    const char *kind = ui_jstr(job, "kind");
    if (strcmp(kind, "benchmark") == 0) {
        bench_evidence(c, id);
    } else if (strcmp(kind, "drill") == 0) {
        drill_evidence(c, json_object_get(job, "result"));
    } else if (strcmp(kind, "seed") == 0 || strcmp(kind, "backup") == 0) {
        records_evidence(c, id, strcmp(kind, "seed") == 0);
    }
}
