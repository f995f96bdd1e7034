/* SPDX-License-Identifier: MIT */
/* loadgen.h — the benchmark kind's HTTP/1.1 load engine: one libev loop of its own, N
 * nonblocking keep-alive connections, no pipelining, no threads. Runs synchronously in the
 * calling process (the job's child) and returns when the lane is over.
 *
 * Models:
 *   closed  every connection keeps exactly one request outstanding and sends the next as soon
 *           as the previous response is complete (wrk). Latency = response done - send.
 *   open    requests have intended send times on a fixed schedule (`rate` per second across
 *           all connections, wrk2 and pgbench -R style). A request waits for an idle connection
 *           when none is free; its "corrected" latency is measured from the intended time, its
 *           "uncorrected" latency from the actual send. Stalls of the target therefore show up
 *           in the corrected percentiles instead of being hidden by the generator slowing
 *           down (coordinated omission). Sends more than BENCH_LATE_NS after their intended
 *           time are counted as late; intended requests never sent before the end are counted
 *           as dropped.
 *
 * Measurement window: requests that start (intended time in the open model, send time in the
 * closed one) before `warmup_s` has elapsed are run but not recorded. The lane ends when
 * `duration_s` of measurement has passed (in-flight requests are then abandoned and counted in
 * in_flight_at_end) or when `max_requests` measured requests have completed, whichever is
 * first, or when should_stop() says so (polled every few tens of ms), or when the target looks
 * dead: the first attempts to connect all failed and none succeeded (`aborted`).
 *
 * Latencies of complete responses of every status are recorded (like wrk and k6); failed
 * attempts (connect, timeout, I/O, parse) are counted by class and not recorded as latency.
 * Honest tails: a measured request still in flight when the run ends, and (open model) an
 * intended request never sent, is recorded in `lat` at its elapsed time at the end (from its
 * intended time; in `ulat` from its send, when it was sent): a stall that straddles the end of
 * the run stays in the percentiles instead of vanishing from them. */
#ifndef OSP_BENCH_LOADGEN_H
#define OSP_BENCH_LOADGEN_H

#include "common/err.h"
#include "jobs/benchmark/hist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define BENCH_LATE_NS          (10 * 1000000LL) /* a send this far behind schedule is late */
#define BENCH_MAX_CONNECTIONS  10000u
#define BENCH_HOST_MAX         300              /* Host header value "host:port" */

enum bench_model { BENCH_MODEL_CLOSED, BENCH_MODEL_OPEN };

enum bench_err_class {
    BENCH_ERR_CONNECT,  /* connect() refused, failed or timed out */
    BENCH_ERR_TIMEOUT,  /* no complete response within read_timeout_ms */
    BENCH_ERR_4XX,      /* complete response with status 400..499 */
    BENCH_ERR_5XX,      /* complete response with status 500..599 */
    BENCH_ERR_PARSE,    /* malformed response, or bytes nobody asked for */
    BENCH_ERR_IO,       /* reset or closed by the peer before the response was complete */
    BENCH_ERR_N,
};

/* Names used in results: "connect", "timeout", "status_4xx", "status_5xx", "parse", "io". */
extern const char *const bench_err_names[BENCH_ERR_N];

/* One request shape of the mix. All strings borrowed for the duration of bench_lg_run. */
struct bench_mix_item {
    const char *method;   /* "GET" */
    const char *path;     /* "/r/{key}": every "{key}" is replaced by the drawn key (1..count) */
    unsigned weight;      /* relative frequency, >= 1 */
    const char *headers;  /* extra header lines, each "Name: value\r\n"; "" for none */
    const char *body;     /* may be NULL */
    size_t body_len;
};

struct bench_lg_config {
    struct sockaddr_storage addr;            /* where to connect (bench_lg_resolve fills it) */
    socklen_t addrlen;
    char host[BENCH_HOST_MAX];               /* Host header value */
    enum bench_model model;
    unsigned connections;                    /* 1..BENCH_MAX_CONNECTIONS */
    double rate;                             /* open model: requests per second in total */
    double duration_s;                       /* measurement time; 0 = bounded by requests only */
    uint64_t max_requests;                   /* measured requests; 0 = bounded by duration */
    double warmup_s;                         /* run but not recorded */
    const struct bench_mix_item *mix;        /* borrowed, nmix >= 1 */
    size_t nmix;
    uint64_t key_count;                      /* keys 1..key_count for {key}; >= 1 */
    bool zipf;                               /* Zipf-skewed (rank 1 hottest) instead of uniform */
    double zipf_s;                           /* Zipf exponent, > 0 */
    uint64_t seed;                           /* RNG seed: same seed, same request sequence */
    unsigned connect_timeout_ms;
    unsigned read_timeout_ms;
    const char *cache_header;                /* e.g. "X-Cache"; NULL = no cache accounting */
    const char *cache_hit_value;             /* e.g. "HIT" (prefix, case-insensitive) */
    const char *samples_path;                /* debug: write "corrected_us uncorrected_us\n" per
                                              * recorded response; NULL = off */
    bool (*should_stop)(void *arg);          /* polled; may be NULL */
    void *stop_arg;
    /* Engines (bench_lg_run_engines) share one schedule: the absolute start (lg clock,
     * CLOCK_MONOTONIC ns; 0 = now) and, open model, this engine's offset into it. */
    int64_t start_at_ns;
    int64_t schedule_offset_ns;
};

struct bench_lg_result {
    struct bench_hist *lat;        /* owned: corrected (open) / send-to-done (closed) latency */
    struct bench_hist *ulat;       /* owned: send-to-done latency (same data as lat if closed) */
    uint64_t requests;             /* measured attempts that finished: responses + failures */
    uint64_t responses;            /* measured complete responses, any status */
    uint64_t errors[BENCH_ERR_N];  /* measured failures by class */
    uint64_t cache_seen;           /* responses carrying the cache header */
    uint64_t cache_hits;           /* ... with the hit value */
    uint64_t late_sends;           /* open model: measured sends > BENCH_LATE_NS behind schedule */
    double max_send_lag_ms;        /* open model: worst measured send lag */
    uint64_t issued;               /* measured requests handed to a connection on schedule */
    uint64_t dropped;              /* open model: intended in the window but never sent */
    uint64_t in_flight_at_end;     /* measured requests abandoned when the duration ran out */
    uint64_t body_bytes;           /* response body bytes of recorded responses */
    uint64_t connects;             /* successful connections (including reconnects) */
    double elapsed_s;              /* length of the measurement window actually run */
    bool cancelled;                /* should_stop() ended the lane early */
    bool aborted;                  /* the target looked dead; see abort_reason */
    char abort_reason[256];
};

/* Fill cfg->addr/addrlen/host from "http://host[:port][/]" (a name is resolved once, now).
 * 0, or OSP_EINVAL with err saying what is wrong with the URL or the lookup. */
int bench_lg_resolve(struct bench_lg_config *cfg, const char *base_url, struct osp_err *err);

/* Run one lane. On return res is filled (also when cancelled or aborted: then it holds what
 * was measured so far); free it with bench_lg_result_deinit. Returns 0, or a negative code with
 * err for setup failures (bad config, cannot create the loop or open the samples file). */
int bench_lg_run(const struct bench_lg_config *cfg, struct bench_lg_result *res,
                 struct osp_err *err);
void bench_lg_result_deinit(struct bench_lg_result *res);

#define BENCH_MAX_ENGINES 256

/* Run one lane on `engines` threads, each a bench_lg_run on a loop of its own, and merge
 * their results into one: connections and max_requests split as evenly as possible (engines
 * is lowered to the connections when there are fewer), the open model's schedule split
 * exactly (engine i sends requests i, i + N, i + 2N, ... of the one schedule, from one shared
 * start), seeds derived per engine, histograms merged without loss, counters summed,
 * elapsed_s the longest. samples_path needs engines = 1. engines <= 1 is bench_lg_run. */
int bench_lg_run_engines(const struct bench_lg_config *cfg, unsigned engines,
                         struct bench_lg_result *res, struct osp_err *err);
/* The cores this process may run on (its CPU affinity), at least 1: the default engines. */
unsigned bench_lg_default_engines(void);

/* Total of res->errors. */
uint64_t bench_lg_error_total(const struct bench_lg_result *res);

#endif
