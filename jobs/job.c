/* SPDX-License-Identifier: MIT */
/* job.c — the job_ctx API kinds use, the child-side main, the inline runner and the
 * parent-side frame parser. A ctx either streams frames to a pipe (child mode, fd >= 0) or
 * collects them in a job_report (inline mode). Cancellation is a flag set by SIGTERM in the
 * child (or by the worker between inline steps); kinds poll job_is_cancelled() and the
 * framework calls kind->cancel() after run() returns cancelled, so rollback never runs inside
 * a signal handler. */
#include "jobs/job.h"
#include "common/alloc.h"
#include "common/base.h"
#include "common/mpjson.h"
#include "jobs/runner.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct job_ctx {
    const struct job_kind *kind;
    const struct osp_job *job;
    const struct osp_targets *targets;
    const struct osp_config *cfg;
    int64_t deadline_ns;
    int fd;                   /* child mode: pipe to the parent; -1 inline */
    struct job_report *report; /* inline mode: where frames go */
    json_t *result;           /* child mode: held until the end */
    char *error;
};

static volatile sig_atomic_t job_cancel_flag;

static void on_sigterm(int sig)
{
    (void)sig;
    job_cancel_flag = 1;
}

/* ---- Frames ---- */

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static void pack_json_or_nil(msgpack_packer *pk, const json_t *v)
{
    if (v == NULL || osp_mpjson_pack(pk, v, NULL) != 0) {
        msgpack_pack_nil(pk);
    }
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    if (s == NULL) {
        msgpack_pack_nil(pk);
        return;
    }
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* Send a frame built by the caller in sb (length prefix added here). Pipe errors mean the
 * parent is gone: the child stops at once. */
static void send_frame(int fd, msgpack_sbuffer *sb)
{
    uint8_t hdr[4] = {(uint8_t)(sb->size >> 24), (uint8_t)(sb->size >> 16), (uint8_t)(sb->size >> 8),
                      (uint8_t)sb->size};
    if (write_all(fd, hdr, 4) != 0 || write_all(fd, sb->data, sb->size) != 0) {
        _exit(3);
    }
}

/* ---- ctx API ---- */

const struct osp_job *job_info(const struct job_ctx *ctx)
{
    return ctx->job;
}

const json_t *job_payload(const struct job_ctx *ctx)
{
    return ctx->job->payload;
}

const struct osp_targets *job_targets(const struct job_ctx *ctx)
{
    return ctx->targets;
}

const struct osp_config *job_config(const struct job_ctx *ctx)
{
    return ctx->cfg;
}

void job_emit(struct job_ctx *ctx, const char *type, json_t *data)
{
    int64_t ts = osp_now_ms();
    if (ctx->fd >= 0) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 4);
        pack_str(&pk, "e");
        msgpack_pack_int64(&pk, ts);
        pack_str(&pk, type);
        pack_json_or_nil(&pk, data);
        send_frame(ctx->fd, &sb);
        msgpack_sbuffer_destroy(&sb);
        json_decref(data);
        return;
    }
    json_t *ev = json_pack("{s:I, s:s, s:o?}", "ts", (json_int_t)ts, "type", type, "data", data);
    json_array_append_new(ctx->report->events, ev);
}

void job_set_result(struct job_ctx *ctx, json_t *result)
{
    json_decref(ctx->result);
    ctx->result = result;
}

static void set_error(struct job_ctx *ctx, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    free(ctx->error);
    ctx->error = osp_xstrdup(msg);
}

int job_fail(struct job_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(ctx, fmt, ap);
    va_end(ap);
    return OSP_EFAILED;
}

int job_verdict_failed(struct job_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(ctx, fmt, ap);
    va_end(ap);
    return OSP_EVERDICT;
}

void job_add_row(struct job_ctx *ctx, const char *table, json_t *row)
{
    if (ctx->fd >= 0) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 3);
        pack_str(&pk, "t");
        pack_str(&pk, table);
        pack_json_or_nil(&pk, row);
        send_frame(ctx->fd, &sb);
        msgpack_sbuffer_destroy(&sb);
        json_decref(row);
        return;
    }
    json_array_append_new(ctx->report->rows, json_pack("{s:s, s:o}", "table", table, "row", row));
}

int64_t job_deadline_ns(const struct job_ctx *ctx)
{
    return ctx->deadline_ns;
}

bool job_is_cancelled(const struct job_ctx *ctx)
{
    return job_cancel_flag != 0 || (ctx->deadline_ns > 0 && osp_mono_ns() >= ctx->deadline_ns);
}

bool job_sleep_ms(struct job_ctx *ctx, int64_t ms)
{
    int64_t end = osp_mono_ns() + ms * 1000000;
    for (;;) {
        if (job_is_cancelled(ctx)) {
            return true;
        }
        int64_t left = end - osp_mono_ns();
        if (left <= 0) {
            return false;
        }
        if (left > 20000000) {
            left = 20000000; /* wake often enough to notice cancellation promptly */
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left};
        nanosleep(&ts, NULL);
    }
}

/* ---- Running ---- */

void job_report_init(struct job_report *r)
{
    memset(r, 0, sizeof(*r));
    r->events = json_array();
    r->rows = json_array();
}

void job_report_deinit(struct job_report *r)
{
    json_decref(r->result);
    json_decref(r->events);
    json_decref(r->rows);
    free(r->error);
    memset(r, 0, sizeof(*r));
}

static int run_kind(struct job_ctx *ctx)
{
    int rc = ctx->kind->run(ctx);
    if (job_is_cancelled(ctx) && ctx->kind->cancel != NULL) {
        ctx->kind->cancel(ctx);
    }
    return rc;
}

void job_run_inline(const struct job_kind *kind, const struct osp_job *job,
                    const struct osp_targets *targets, const struct osp_config *cfg,
                    int64_t deadline_ns, struct job_report *out)
{
    OSP_ASSERT(cfg != NULL);
    struct job_ctx ctx = {.kind = kind, .job = job, .targets = targets, .cfg = cfg,
                          .deadline_ns = deadline_ns, .fd = -1, .report = out};
    out->status = run_kind(&ctx);
    out->finished = true;
    json_decref(out->result);
    out->result = ctx.result;
    free(out->error);
    out->error = ctx.error;
}

_Noreturn void job_child_main(const struct job_kind *kind, const struct osp_job *job,
                              const struct osp_targets *targets, const struct osp_config *cfg,
                              int fd, int64_t deadline_ns)
{
    OSP_ASSERT(cfg != NULL);
    /* The parent ignores SIGPIPE and handles signals through its loop; the child starts from
     * default dispositions with an empty mask, and SIGTERM only requests cancellation. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s <= SIGRTMAX; s++) {
        if (s != SIGKILL && s != SIGSTOP) {
            signal(s, SIG_DFL);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    job_cancel_flag = 0;

    struct job_ctx ctx = {.kind = kind, .job = job, .targets = targets, .cfg = cfg,
                          .deadline_ns = deadline_ns, .fd = fd, .report = NULL};
    int rc = run_kind(&ctx);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    pack_str(&pk, "r");
    msgpack_pack_int(&pk, rc);
    pack_json_or_nil(&pk, ctx.result);
    pack_str(&pk, ctx.error);
    send_frame(fd, &sb);
    _exit(0);
}

/* ---- Parent-side parsing ---- */

static char *obj_strdup(const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        return NULL;
    }
    return osp_xstrndup(o->via.str.ptr, o->via.str.size);
}

static int parse_frame(struct job_report *r, const uint8_t *p, size_t n)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = OSP_EPROTO;
    /* Not msgpack_unpack_next directly: it allocates from header counts before reading the
     * elements, so a 35-byte frame claiming a 2^32-entry map asks for 128 GB (fuzz_frames). */
    if (osp_mp_unpack_exact(p, n, n, &up, "frame", NULL) != 0) {
        goto out;
    }
    const msgpack_object *o = &up.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 3 ||
        o->via.array.ptr[0].type != MSGPACK_OBJECT_STR || o->via.array.ptr[0].via.str.size != 1) {
        goto out;
    }
    const msgpack_object *a = o->via.array.ptr;
    char tag = a[0].via.str.ptr[0];
    if (tag == 'e' && o->via.array.size == 4 && a[2].type == MSGPACK_OBJECT_STR) {
        json_t *data = a[3].type == MSGPACK_OBJECT_NIL ? NULL : osp_mpjson_to_json(&a[3], NULL);
        char *type = obj_strdup(&a[2]);
        json_int_t ts = a[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (json_int_t)a[1].via.u64 : 0;
        json_array_append_new(r->events,
                              json_pack("{s:I, s:s, s:o?}", "ts", ts, "type", type, "data", data));
        free(type);
        rc = 0;
    } else if (tag == 't' && o->via.array.size == 3 && a[1].type == MSGPACK_OBJECT_STR) {
        json_t *row = osp_mpjson_to_json(&a[2], NULL);
        if (json_is_object(row)) {
            char *table = obj_strdup(&a[1]);
            json_array_append_new(r->rows, json_pack("{s:s, s:o}", "table", table, "row", row));
            free(table);
            rc = 0;
        } else {
            json_decref(row);
        }
    } else if (tag == 'r' && o->via.array.size == 4 &&
               (a[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                a[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
        r->status = (int)a[1].via.i64;
        json_decref(r->result);
        r->result = a[2].type == MSGPACK_OBJECT_NIL ? NULL : osp_mpjson_to_json(&a[2], NULL);
        free(r->error);
        r->error = obj_strdup(&a[3]);
        r->finished = true;
        rc = 0;
    }
out:
    msgpack_unpacked_destroy(&up);
    return rc;
}

int job_report_feed(struct job_report *r, struct osp_buf *buf)
{
    while (buf->len >= 4) {
        const uint8_t *p = buf->data;
        uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (n > JOB_FRAME_MAX || r->finished) {
            return OSP_EPROTO; /* too big, or bytes after the final frame */
        }
        if (buf->len < 4 + (size_t)n) {
            return 0;
        }
        int rc = parse_frame(r, p + 4, n);
        if (rc != 0) {
            return rc;
        }
        osp_buf_consume(buf, 4 + (size_t)n);
    }
    return 0;
}
