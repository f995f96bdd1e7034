/* SPDX-License-Identifier: MIT */
/* spec.h — the benchmark kind's payload, parsed and checked (spec.c): limits, the parsed lane
 * and payload settings. Validation and the run share this one parser, so what validates is
 * exactly what runs (benchmark.c). */
#ifndef OSP_BENCH_SPEC_H
#define OSP_BENCH_SPEC_H

#include "common/err.h"
#include "jobs/benchmark/loadgen.h"
#include "jobs/benchmark/threshold.h"
#include "jobs/targets.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define BENCH_MAX_LANES        16
#define BENCH_MAX_MIX          32
#define BENCH_MAX_THRESHOLDS   32
#define BENCH_MAX_HEADERS      32
#define BENCH_MAX_HEADER_VALUE 1024
#define BENCH_MAX_BODY         65536
#define BENCH_MAX_PATH         2048
#define BENCH_MAX_DURATION_S   3600.0
#define BENCH_MAX_WARMUP_S     600.0
#define BENCH_MAX_TOTAL_S      14400.0 /* all lanes of one job, warm-ups included */
#define BENCH_MAX_RATE         1000000.0
#define BENCH_MAX_REQUESTS     1000000000LL
#define BENCH_MAX_KEYS         1000000000LL
#define BENCH_MAX_WEIGHT       1000000LL
#define BENCH_WHERE_MAX        160

/* A parsed lane. Strings point into the payload or targets JSON (borrowed) except the
 * rendered headers and serialised bodies, which the lane owns. */
/* An open-model lane fails when it sent fewer than this share of the requests its schedule
 * intended (the target, or the generator, could not keep the rate), unless the lane sets its
 * own min_achieved_ratio (0 = never). */
#define BENCH_MIN_ACHIEVED_RATIO 0.95

struct bench_lane {
    char name[65];
    enum bench_model model;
    unsigned connections;
    double rate, duration_s, warmup_s;
    double min_achieved_ratio; /* open model: below this share of the schedule the lane fails */
    unsigned engines;          /* load engines (threads); 0 = the cores the job may use */
    unsigned replicas;         /* scale-out lane: the target at this many replicas; 0 = as is */
    long long requests;
    struct bench_mix_item mix[BENCH_MAX_MIX];
    char *owned_headers[BENCH_MAX_MIX];
    char *owned_bodies[BENCH_MAX_MIX];
    size_t nmix;
    long long key_count;
    bool zipf;
    double zipf_s;
    unsigned connect_timeout_ms, read_timeout_ms;
    struct bench_threshold thr[BENCH_MAX_THRESHOLDS];
    size_t nthr;
};

/* Payload-level settings shared by all lanes. */
struct bench_common {
    const char *target_name;
    const json_t *target; /* NULL when validating without a targets file */
    const char *health_path;
    const char *cache_header;
    const char *cache_hit_value;
    long long seed;
    struct bench_threshold thr[BENCH_MAX_THRESHOLDS];
    size_t nthr;
};

/* Free what a parsed lane owns and zero it. */
void bench_lane_deinit(struct bench_lane *l);
/* Parse the payload-level settings (target resolved against targets when given). */
int bench_common_parse(const json_t *p, const struct osp_targets *targets, struct bench_common *cm,
                       struct osp_err *err);
/* Parse lane i of lanes (an object, or a preset name of the target) into l. */
int bench_lane_at(const json_t *lanes, size_t i, const struct bench_common *cm,
                  struct bench_lane *l, struct osp_err *err);
/* The kind's validator: the whole payload, every lane, the total duration. */
int bench_validate(const json_t *p, const struct osp_targets *targets, struct osp_err *err);
/* True when a lane of the payload asks for replicas (a lane object, or a preset of the target
 * in targets): the job changes its target and must hold it alone (the kind's needs_exclusive).
 * Pure; false for payloads it cannot read (validation refuses them). */
bool bench_payload_scales(const json_t *p, const struct osp_targets *targets);

#endif
