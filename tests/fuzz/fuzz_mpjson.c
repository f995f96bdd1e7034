/* SPDX-License-Identifier: MIT */
/* fuzz_mpjson.c — libFuzzer target for msgpack <-> JSON conversion (common/mpjson.h).
 * The input is tried both ways:
 *  - as msgpack: whatever converts to JSON must pack back to msgpack that converts to an equal
 *    value (a payload survives worker -> ledger -> retry unchanged);
 *  - as JSON text (how the API receives payloads): whatever packs must convert back equal.
 * Failures must carry a reason. Deep nesting, bad UTF-8, bin/ext, NUL, huge ints are the
 * interesting rejections. */
#include "common/envelope.h"
#include "common/mpjson.h"
#include "tests/fuzz/fuzz_util.h"

/* Production never hands raw bytes to msgpack_unpack_next (it allocates from header counts
 * before reading elements): every reader pre-scans with osp_mp_unpack_exact, so do the same. */
static json_t *unpack_to_json(const char *p, size_t n, struct osp_err *err)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    json_t *v = NULL;
    if (osp_mp_unpack_exact(p, n, n, &up, "input", NULL) == 0) {
        v = osp_mpjson_to_json(&up.data, err);
        fuzz_check_err(v == NULL ? OSP_EINVAL : 0, err, "osp_mpjson_to_json");
    }
    msgpack_unpacked_destroy(&up);
    return v;
}

/* v packs, and the packed bytes convert back to a value equal to v. */
static void round_trip(const json_t *v, bool must_pack)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    struct osp_err err = {0, ""};
    int rc = osp_mpjson_pack(&pk, v, &err);
    fuzz_check_err(rc, &err, "osp_mpjson_pack");
    FUZZ_ASSERT(!must_pack || rc == 0);
    if (rc == 0) {
        json_t *again = unpack_to_json(sb.data, sb.size, &err);
        if (again == NULL) {
            fprintf(stderr, "packed value does not convert back: %s\n", err.msg);
            abort();
        }
        FUZZ_ASSERT(json_equal(v, again));
        json_decref(again);
    }
    msgpack_sbuffer_destroy(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct osp_err err = {0, ""};

    /* msgpack -> JSON -> msgpack -> JSON. Everything to_json accepts, pack must accept. */
    json_t *v = unpack_to_json((const char *)data, size, &err);
    if (v != NULL) {
        round_trip(v, true);
        json_decref(v);
    }

    /* JSON text -> msgpack -> JSON (the API path). Pack may refuse (too deep), with a reason. */
    json_error_t je;
    v = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (v != NULL) {
        round_trip(v, false);
        json_decref(v);
    }

    /* The NULL contract. */
    FUZZ_ASSERT(osp_mpjson_to_json(NULL, &err) == NULL);
    return 0;
}
