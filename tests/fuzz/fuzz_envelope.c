/* SPDX-License-Identifier: MIT */
/* fuzz_envelope.c — libFuzzer target for the envelope and dead-letter decoders.
 * Every input is decoded three ways (no keys, so unsigned bodies reach the body parser; with
 * a key; as a dead record) plus peek. Whatever decodes must re-encode and decode to the same
 * job, so the fuzzer also checks encode/decode agreement, not only memory safety. */
#include "common/envelope.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[] = "fuzz-signing-key";

static void check_round_trip(const struct osp_job *j)
{
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_err err = {0, ""};
    struct osp_job again;
    /* A decoded job is valid by construction, so encoding it cannot fail. */
    if (osp_env_encode(j, NULL, &buf, &err) != 0) {
        abort();
    }
    if (osp_env_decode(buf.data, buf.len, NULL, 64 * 1024 * 1024, &again, &err) != 0) {
        abort();
    }
    if (strcmp(j->id, again.id) != 0 || strcmp(j->kind, again.kind) != 0 ||
        j->attempt != again.attempt || j->max_attempts != again.max_attempts ||
        j->timeout_s != again.timeout_s || j->enqueued_at != again.enqueued_at ||
        j->run_at != again.run_at || strcmp(j->trace_id, again.trace_id) != 0 ||
        strcmp(j->idempotency_key, again.idempotency_key) != 0 ||
        strcmp(j->submitted_by, again.submitted_by) != 0 ||
        strcmp(j->schedule, again.schedule) != 0 || !json_equal(j->payload, again.payload)) {
        abort();
    }
    osp_job_deinit(&again);
    osp_buf_deinit(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct osp_env_keys none = {{NULL, NULL}, {0, 0}, 0, false};
    struct osp_env_keys keys = {{key, NULL}, {sizeof(key) - 1, 0}, 1, false};
    struct osp_job j;
    struct osp_err err = {0, ""};

    if (osp_env_decode(data, size, &none, 0, &j, &err) == 0) {
        check_round_trip(&j);
    } else if (err.msg[0] == '\0' || j.payload != NULL) {
        abort(); /* failures must say why and own nothing */
    }
    osp_job_deinit(&j);

    if (osp_env_decode(data, size, &keys, 0, &j, &err) != 0 && err.msg[0] == '\0') {
        abort();
    }
    osp_job_deinit(&j);

    char kind[OSP_KIND_MAX + 1];
    char id[OSP_ID_LEN + 1];
    if (osp_env_peek(data, size, kind, id) == 0 &&
        (!osp_kind_name_is_valid(kind) || !osp_id_is_valid(id))) {
        abort();
    }

    struct osp_dead d;
    if (osp_dead_decode(data, size, &d, &err) == 0) {
        struct osp_buf buf = OSP_BUF_INIT;
        osp_dead_encode(d.reason, d.failed_at_ms, d.job_id, d.env.data, d.env.len, &buf);
        struct osp_dead again;
        if (osp_dead_decode(buf.data, buf.len, &again, &err) != 0 ||
            strcmp(again.reason, d.reason) != 0 || again.failed_at_ms != d.failed_at_ms ||
            strcmp(again.job_id, d.job_id) != 0 || again.env.len != d.env.len ||
            (d.env.len > 0 && memcmp(again.env.data, d.env.data, d.env.len) != 0)) {
            abort();
        }
        osp_dead_deinit(&again);
        osp_buf_deinit(&buf);
    }
    osp_dead_deinit(&d);
    return 0;
}
