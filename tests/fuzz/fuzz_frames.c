/* SPDX-License-Identifier: MIT */
/* fuzz_frames.c — libFuzzer target for the child -> parent frame parser (jobs/runner.h,
 * job_report_feed). A broken or hostile child may write anything to its event pipe; the parent
 * must parse or reject it (OSP_EPROTO, then it kills the child), never crash.
 *
 * The input is the pipe's byte stream. It is fed twice: all at once, and in pieces whose sizes
 * come from the input itself (reads split anywhere, down to one byte). Both must reach the same
 * verdict and the same report. */
#include "common/buf.h"
#include "jobs/runner.h"
#include "tests/fuzz/fuzz_util.h"

struct outcome {
    int rc;
    bool finished;
    int status;
    size_t events, rows;
    char *result;
    char *error;
};

static void capture(const struct job_report *r, int rc, struct outcome *o)
{
    o->rc = rc;
    o->finished = r->finished;
    o->status = r->status;
    FUZZ_ASSERT(json_is_array(r->events) && json_is_array(r->rows));
    o->events = json_array_size(r->events);
    o->rows = json_array_size(r->rows);
    o->result = r->result ? json_dumps(r->result, JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
    o->error = r->error ? strdup(r->error) : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(r->events, i, v)
    {
        FUZZ_ASSERT(json_is_string(json_object_get(v, "type")));
        FUZZ_ASSERT(json_is_integer(json_object_get(v, "ts")));
    }
    json_array_foreach(r->rows, i, v)
    {
        FUZZ_ASSERT(json_is_string(json_object_get(v, "table")));
        FUZZ_ASSERT(json_is_object(json_object_get(v, "row")));
    }
}

static int feed_all(struct job_report *r, const uint8_t *data, size_t size)
{
    struct osp_buf buf = OSP_BUF_INIT;
    osp_buf_append(&buf, data, size);
    int rc = job_report_feed(r, &buf);
    FUZZ_ASSERT(rc == 0 || rc == OSP_EPROTO);
    osp_buf_deinit(&buf);
    return rc;
}

/* Piece sizes cycle through the first bytes of the input (1..16). */
static int feed_split(struct job_report *r, const uint8_t *data, size_t size)
{
    struct osp_buf buf = OSP_BUF_INIT;
    size_t off = 0;
    size_t k = 0;
    int rc = 0;
    while (off < size && rc == 0) {
        size_t n = size > 0 ? (size_t)(data[k++ % (size < 8 ? size : 8)] % 16) + 1 : 1;
        if (n > size - off) {
            n = size - off;
        }
        osp_buf_append(&buf, data + off, n);
        off += n;
        rc = job_report_feed(r, &buf);
        FUZZ_ASSERT(rc == 0 || rc == OSP_EPROTO);
    }
    osp_buf_deinit(&buf);
    return rc;
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct job_report a, b;
    struct outcome oa, ob;
    job_report_init(&a);
    job_report_init(&b);
    capture(&a, feed_all(&a, data, size), &oa);
    capture(&b, feed_split(&b, data, size), &ob);
    if (oa.rc != ob.rc || oa.finished != ob.finished || oa.status != ob.status ||
        oa.events != ob.events || oa.rows != ob.rows || !same_str(oa.result, ob.result) ||
        !same_str(oa.error, ob.error)) {
        fprintf(stderr, "whole vs split: rc %d/%d finished %d/%d events %zu/%zu rows %zu/%zu\n",
                oa.rc, ob.rc, oa.finished, ob.finished, oa.events, ob.events, oa.rows, ob.rows);
        abort();
    }
    free(oa.result);
    free(ob.result);
    free(oa.error);
    free(ob.error);
    job_report_deinit(&a);
    job_report_deinit(&b);
    return 0;
}
