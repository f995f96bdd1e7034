/* SPDX-License-Identifier: MIT */
/* ops_bench.c — benchmark history for every front end: the judged history of a series, the
 * comparison of two runs (or of one run with its baseline), and the operators' pins and
 * resets. Inputs are checked here; the SQL is common/ledger_bench.c's and the regression rule
 * opspool.bench_judge (common/sql/0007_benchmark_history.sql). Contract: common/ops.h. */
#include "common/envelope.h"
#include "common/id.h"
#include "common/ops.h"

#include <math.h>
#include <string.h>

#define BENCH_NAME_MAX  64   /* targets and lanes: [a-z0-9_-]{1,64} */
#define BENCH_LIMIT_MAX 1000 /* rows per history read */

static int check_series(const char *target, const char *lane, bool lane_required,
                        struct osp_err *err)
{
    if (target != NULL && !osp_name_is_valid(target, BENCH_NAME_MAX)) {
        return osp_err_set(err, OSP_EINVAL, "target: must match [a-z0-9_-]{1,64}");
    }
    if ((lane != NULL || lane_required) && !osp_name_is_valid(lane, BENCH_NAME_MAX)) {
        return osp_err_set(err, OSP_EINVAL, "lane: must match [a-z0-9_-]{1,64}");
    }
    return 0;
}

json_t *osp_op_bench_history(const struct osp_ops *o, const struct osp_bench_filter *f,
                             struct osp_err *err)
{
    if (check_series(f->target, f->lane, false, err) != 0) {
        return NULL;
    }
    if (f->limit < 0 || f->limit > BENCH_LIMIT_MAX || f->since_ms < 0) {
        osp_err_set(err, OSP_EINVAL, "limit: 1..%d; since: not negative", BENCH_LIMIT_MAX);
        return NULL;
    }
    return osp_ledger_bench_history(o->pg, f, err);
}

/* The figures compared, and which way is better (+1 higher, -1 lower). */
static const struct {
    const char *name;
    int better;
} bench_figures[] = {{"rps", 1},      {"p50_ms", -1},     {"p99_ms", -1},
                     {"p999_ms", -1}, {"error_rate", -1}, {"cache_hit_ratio", 1}};

static double figure(const json_t *row, const char *name)
{
    if (strcmp(name, "error_rate") == 0) {
        double req = json_number_value(json_object_get(row, "requests"));
        const json_t *e = json_object_get(row, "errors");
        return req > 0 && json_is_number(e) ? json_number_value(e) / req : NAN;
    }
    const json_t *v = json_object_get(row, name);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *num_or_null(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

/* One lane of run a against the same lane of run b: per figure both values, the change
 * relative to b, and "better" / "worse" / "same". */
static json_t *compare_lane(const json_t *a, const json_t *b)
{
    json_t *figs = json_object();
    for (size_t i = 0; i < OSP_ARRAY_LEN(bench_figures); i++) {
        double va = figure(a, bench_figures[i].name), vb = figure(b, bench_figures[i].name);
        json_t *f = json_object();
        json_object_set_new(f, "a", num_or_null(va));
        json_object_set_new(f, "b", num_or_null(vb));
        if (!isnan(va) && !isnan(vb)) {
            double d = va - vb;
            json_object_set_new(f, "change", vb != 0 ? json_real(d / fabs(vb)) : json_null());
            double s = d * bench_figures[i].better;
            json_object_set_new(f, "direction",
                                json_string(s > 0   ? "better"
                                            : s < 0 ? "worse"
                                                    : "same"));
        }
        json_object_set_new(figs, bench_figures[i].name, f);
    }
    json_t *out = json_object();
    json_object_set(out, "lane", json_object_get(a, "lane"));
    json_object_set_new(out, "figures", figs);
    return out;
}

json_t *osp_op_bench_compare(const struct osp_ops *o, const char *a, const char *b,
                             struct osp_err *err)
{
    if (!osp_id_is_valid(a) || (b != NULL && !osp_id_is_valid(b))) {
        osp_err_set(err, OSP_EINVAL, "a job id is expected");
        return NULL;
    }
    json_t *ra = osp_ledger_bench_job(o->pg, a, err);
    if (ra == NULL) {
        return NULL;
    }
    if (json_array_size(ra) == 0) {
        json_decref(ra);
        osp_err_set(err, OSP_ENOTFOUND, "job %s has no benchmark results", a);
        return NULL;
    }
    json_t *out = json_object();
    json_object_set_new(out, "a", ra);
    if (b == NULL) {
        return out; /* each lane of a carries its judge: the comparison with its baseline */
    }
    json_t *rb = osp_ledger_bench_job(o->pg, b, err);
    if (rb == NULL) {
        json_decref(out);
        return NULL;
    }
    if (json_array_size(rb) == 0) {
        json_decref(rb);
        json_decref(out);
        osp_err_set(err, OSP_ENOTFOUND, "job %s has no benchmark results", b);
        return NULL;
    }
    json_object_set_new(out, "b", rb);
    json_t *lanes = json_array();
    size_t i, j;
    json_t *la, *lb;
    json_array_foreach(ra, i, la)
    {
        json_array_foreach(rb, j, lb)
        {
            if (json_equal(json_object_get(la, "lane"), json_object_get(lb, "lane"))) {
                json_array_append_new(lanes, compare_lane(la, lb));
            }
        }
    }
    json_object_set_new(out, "lanes", lanes);
    return out;
}

int osp_op_bench_baseline(const struct osp_ops *o, const char *target, const char *lane,
                          const char *pin_job_id, struct osp_err *err)
{
    int rc = check_series(target, lane, true, err);
    if (rc != 0 || target == NULL) {
        return rc != 0 ? rc : osp_err_set(err, OSP_EINVAL, "target: required");
    }
    if (pin_job_id != NULL && !osp_id_is_valid(pin_job_id)) {
        return osp_err_set(err, OSP_EINVAL, "pin: a job id");
    }
    rc = osp_ledger_bench_baseline_set(o->pg, target, lane, pin_job_id, o->actor.who, err);
    if (rc != 0) {
        return rc;
    }
    json_t *data =
        json_pack("{s:s, s:s, s:s?}", "target", target, "lane", lane, "pinned_job_id", pin_job_id);
    char object[2 * BENCH_NAME_MAX + 2];
    snprintf(object, sizeof(object), "%s/%s", target, lane);
    rc = osp_ledger_audit(o->pg, &o->actor, pin_job_id != NULL ? "bench.pin" : "bench.reset",
                          object, data, NULL, err);
    json_decref(data);
    return rc;
}
