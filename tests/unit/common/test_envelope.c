/* SPDX-License-Identifier: MIT */
/* test_envelope.c — the job envelope codec: round trips of every field (unsigned, signed,
 * key rotation), every documented rejection with its exact reason, every truncation, random
 * byte flips, the size limit, peek, and dead-letter records. Hostile inputs are built with
 * msgpack-c directly so each test states exactly which bytes it sends. */
#include "common/envelope.h"
#include "common/hmac.h"
#include "common/mpjson.h"

#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define JOB_ID  "0190a3f2-7c1e-7abc-8def-0123456789ab"
#define KEY_NEW "new-signing-key-0123456789"
#define KEY_OLD "old-signing-key-9876543210"

static const struct osp_env_keys no_keys = {{NULL, NULL}, {0, 0}, 0, false};

static struct osp_env_keys keys_of(const char *k0, const char *k1, bool allow_unsigned)
{
    struct osp_env_keys k = {{NULL, NULL}, {0, 0}, 0, allow_unsigned};
    if (k0 != NULL) {
        k.keys[0] = (const uint8_t *)k0;
        k.key_lens[0] = strlen(k0);
        k.nkeys = 1;
    }
    if (k1 != NULL) {
        k.keys[1] = (const uint8_t *)k1;
        k.key_lens[1] = strlen(k1);
        k.nkeys = 2;
    }
    return k;
}

static void replace_str(char **field, const char *value)
{
    free(*field);
    *field = strdup(value);
    assert_non_null(*field);
}

/* A job with every field set to a distinctive non-default value. */
static void full_job(struct osp_job *j)
{
    json_error_t jerr;
    osp_job_init(j);
    strcpy(j->id, JOB_ID);
    strcpy(j->kind, "benchmark");
    json_decref(j->payload);
    j->payload = json_loads("{\"target\":\"web\",\"rps\":250,\"lanes\":[\"a\",\"b\"],"
                            "\"ratio\":0.75,\"deep\":{\"x\":[null,true,false]}}",
                            0, &jerr);
    assert_non_null(j->payload);
    j->attempt = 3;
    j->max_attempts = 5;
    j->timeout_s = 600;
    j->enqueued_at = 1718000000123;
    j->run_at = 1718000060000;
    replace_str(&j->idempotency_key, "nightly-2024-06-10");
    replace_str(&j->submitted_by, "ci@example");
    replace_str(&j->schedule, "nightly-bench");
    replace_str(&j->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
}

static void assert_jobs_equal(const struct osp_job *a, const struct osp_job *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->kind, b->kind);
    assert_true(json_equal(a->payload, b->payload));
    assert_int_equal(a->attempt, b->attempt);
    assert_int_equal(a->max_attempts, b->max_attempts);
    assert_int_equal(a->timeout_s, b->timeout_s);
    assert_int_equal(a->enqueued_at, b->enqueued_at);
    assert_int_equal(a->run_at, b->run_at);
    assert_string_equal(a->idempotency_key, b->idempotency_key);
    assert_string_equal(a->submitted_by, b->submitted_by);
    assert_string_equal(a->schedule, b->schedule);
    assert_string_equal(a->trace_id, b->trace_id);
}

static void encode_ok(const struct osp_job *j, const struct osp_env_keys *k, struct osp_buf *out)
{
    struct osp_err err = {0, ""};
    int rc = osp_env_encode(j, k, out, &err);
    if (rc != 0) {
        fail_msg("encode failed: %s", err.msg);
    }
}

/* Decode expecting failure with exactly this code and reason; j must own nothing after. */
static void expect_decode_fail(const void *data, size_t len, const struct osp_env_keys *k, int code,
                               const char *msg)
{
    struct osp_job j;
    struct osp_err err = {0, ""};
    int rc = osp_env_decode(data, len, k, 0, &j, &err);
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    assert_string_equal(err.msg, msg);
    assert_null(j.payload);
    assert_null(j.trace_id);
    osp_job_deinit(&j);
}

static int buf_write(void *data, const char *p, size_t n)
{
    osp_buf_append(data, p, n);
    return 0;
}

/* ---- Round trips ---- */

static void test_round_trip_unsigned(void **state)
{
    (void)state;
    struct osp_job in;
    struct osp_job out;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_err err = {0, ""};
    full_job(&in);
    encode_ok(&in, &no_keys, &buf);
    assert_int_equal(osp_env_decode(buf.data, buf.len, &no_keys, 0, &out, &err), 0);
    assert_int_equal(err.code, 0);
    assert_jobs_equal(&in, &out);
    osp_job_deinit(&out);
    osp_job_deinit(&in);
    osp_buf_deinit(&buf);
}

static void test_round_trip_defaults(void **state)
{
    (void)state;
    struct osp_job in;
    struct osp_job out;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_err err = {0, ""};
    osp_job_init(&in);
    strcpy(in.id, JOB_ID);
    strcpy(in.kind, "noop");
    encode_ok(&in, &no_keys, &buf);
    assert_int_equal(osp_env_decode(buf.data, buf.len, &no_keys, 0, &out, &err), 0);
    assert_jobs_equal(&in, &out);
    assert_int_equal(out.attempt, 1);
    assert_int_equal(out.max_attempts, 1);
    assert_true(json_is_object(out.payload));
    assert_int_equal(json_object_size(out.payload), 0);
    assert_string_equal(out.trace_id, "");
    osp_job_deinit(&out);
    osp_job_deinit(&in);
    osp_buf_deinit(&buf);
}

static void test_round_trip_signed(void **state)
{
    (void)state;
    struct osp_job in;
    struct osp_job out;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_err err = {0, ""};
    struct osp_env_keys k = keys_of(KEY_NEW, NULL, false);
    full_job(&in);
    encode_ok(&in, &k, &buf);
    assert_int_equal(osp_env_decode(buf.data, buf.len, &k, 0, &out, &err), 0);
    assert_jobs_equal(&in, &out);
    osp_job_deinit(&out);

    /* The signature is HMAC-SHA256(key, exact body bytes): check it independently. */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *)buf.data, buf.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(u.data.via.array.size, 3);
    assert_int_equal(u.data.via.array.ptr[0].via.u64, OSP_ENV_VERSION);
    const msgpack_object_bin *sig = &u.data.via.array.ptr[1].via.bin;
    const msgpack_object_bin *body = &u.data.via.array.ptr[2].via.bin;
    uint8_t mac[OSP_HMAC_LEN];
    osp_hmac_sha256(KEY_NEW, strlen(KEY_NEW), body->ptr, body->size, mac);
    assert_int_equal(sig->size, OSP_HMAC_LEN);
    assert_memory_equal(sig->ptr, mac, OSP_HMAC_LEN);
    msgpack_unpacked_destroy(&u);

    /* A signed envelope also decodes where no key is configured (nothing to check). */
    assert_int_equal(osp_env_decode(buf.data, buf.len, &no_keys, 0, &out, &err), 0);
    osp_job_deinit(&out);
    assert_int_equal(osp_env_decode(buf.data, buf.len, NULL, 0, &out, &err), 0);
    osp_job_deinit(&out);
    osp_job_deinit(&in);
    osp_buf_deinit(&buf);
}

static void test_encode_appends(void **state)
{
    (void)state;
    struct osp_job in;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_buf alone = OSP_BUF_INIT;
    full_job(&in);
    osp_buf_append(&buf, "xyz", 3);
    encode_ok(&in, &no_keys, &buf);
    encode_ok(&in, &no_keys, &alone);
    assert_int_equal(buf.len, 3 + alone.len);
    assert_memory_equal(buf.data, "xyz", 3);
    assert_memory_equal(buf.data + 3, alone.data, alone.len);
    osp_job_deinit(&in);
    osp_buf_deinit(&buf);
    osp_buf_deinit(&alone);
}

static void test_key_rotation(void **state)
{
    (void)state;
    struct osp_job in;
    struct osp_job out;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_err err = {0, ""};
    struct osp_env_keys old_only = keys_of(KEY_OLD, NULL, false);
    struct osp_env_keys rotated = keys_of(KEY_NEW, KEY_OLD, false);
    struct osp_env_keys new_only = keys_of(KEY_NEW, NULL, false);
    full_job(&in);
    encode_ok(&in, &old_only, &buf);
    /* Old key still accepted while it is keys[1]. */
    assert_int_equal(osp_env_decode(buf.data, buf.len, &rotated, 0, &out, &err), 0);
    assert_jobs_equal(&in, &out);
    osp_job_deinit(&out);
    /* Once retired, it is not. */
    expect_decode_fail(buf.data, buf.len, &new_only, OSP_EVERIFY, "bad signature");
    osp_buf_reset(&buf);
    /* New envelopes are signed with keys[0] and verify with it alone. */
    encode_ok(&in, &rotated, &buf);
    assert_int_equal(osp_env_decode(buf.data, buf.len, &new_only, 0, &out, &err), 0);
    osp_job_deinit(&out);
    expect_decode_fail(buf.data, buf.len, &old_only, OSP_EVERIFY, "bad signature");
    osp_job_deinit(&in);
    osp_buf_deinit(&buf);
}

/* ---- Signature failures ---- */

/* Offset of the body bin's payload inside an envelope produced by osp_env_encode. */
static size_t body_offset(const struct osp_buf *buf, size_t *body_len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *)buf->data, buf->len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    const msgpack_object_bin *body = &u.data.via.array.ptr[2].via.bin;
    size_t at = (size_t)((const uint8_t *)body->ptr - buf->data);
    *body_len = body->size;
    msgpack_unpacked_destroy(&u);
    return at;
}

static uint8_t *find_bytes(uint8_t *hay, size_t n, const char *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

static void test_bad_signature(void **state)
{
    (void)state;
    struct osp_job in;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_env_keys k = keys_of(KEY_NEW, NULL, false);
    struct osp_env_keys wrong = keys_of("another-key", NULL, false);
    full_job(&in);
    encode_ok(&in, &k, &buf);
    expect_decode_fail(buf.data, buf.len, &wrong, OSP_EVERIFY, "bad signature");

    /* Flip a signature byte (the signature bin starts at offset 4: 93 01 c4 20). */
    assert_int_equal(buf.data[2], 0xc4);
    assert_int_equal(buf.data[3], OSP_HMAC_LEN);
    buf.data[10] ^= 0x01;
    expect_decode_fail(buf.data, buf.len, &k, OSP_EVERIFY, "bad signature");
    buf.data[10] ^= 0x01;

    /* Tamper with the body: attempt 3 -> 4, keeping the msgpack valid. */
    size_t body_len = 0;
    size_t at = body_offset(&buf, &body_len);
    uint8_t *p = find_bytes(buf.data + at, body_len,
                            "\xa7"
                            "attempt\x03",
                            9);
    assert_non_null(p);
    if (p == NULL) {
        return; /* unreachable: tells the optimiser what assert_non_null guarantees */
    }
    p[8] = 0x04;
    expect_decode_fail(buf.data, buf.len, &k, OSP_EVERIFY, "bad signature");
    osp_job_deinit(&in);
    osp_buf_deinit(&buf);
}

static void test_signature_wrong_length(void **state)
{
    (void)state;
    struct osp_env_keys k = keys_of(KEY_NEW, NULL, false);
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_job in;
    full_job(&in);
    encode_ok(&in, &k, &buf);
    /* Rebuild with a 31-byte signature (the first 31 bytes of the right one). */
    size_t body_len = 0;
    size_t at = body_offset(&buf, &body_len);
    struct osp_buf bad = OSP_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &bad, buf_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_bin_with_body(&pk, buf.data + 4, OSP_HMAC_LEN - 1);
    msgpack_pack_bin_with_body(&pk, buf.data + at, body_len);
    expect_decode_fail(bad.data, bad.len, &k, OSP_EVERIFY, "bad signature");
    osp_buf_deinit(&bad);
    osp_buf_deinit(&buf);
    osp_job_deinit(&in);
}

static void test_unsigned_policy(void **state)
{
    (void)state;
    struct osp_job in;
    struct osp_job out;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_err err = {0, ""};
    struct osp_env_keys strict = keys_of(KEY_NEW, NULL, false);
    struct osp_env_keys lenient = keys_of(KEY_NEW, NULL, true);
    full_job(&in);
    encode_ok(&in, &no_keys, &buf);
    assert_int_equal(buf.data[2], 0xc4);
    assert_int_equal(buf.data[3], 0); /* empty signature */
    expect_decode_fail(buf.data, buf.len, &strict, OSP_EVERIFY, "unsigned envelope");
    assert_int_equal(osp_env_decode(buf.data, buf.len, &lenient, 0, &out, &err), 0);
    assert_jobs_equal(&in, &out);
    osp_job_deinit(&out);
    /* Empty keys count as no key: such a config signs nothing and accepts unsigned. */
    struct osp_env_keys empty_key = keys_of("", NULL, false);
    struct osp_buf buf2 = OSP_BUF_INIT;
    encode_ok(&in, &empty_key, &buf2);
    assert_int_equal(buf2.len, buf.len);
    assert_memory_equal(buf2.data, buf.data, buf.len);
    assert_int_equal(osp_env_decode(buf.data, buf.len, &empty_key, 0, &out, &err), 0);
    osp_job_deinit(&out);
    osp_buf_deinit(&buf2);
    osp_job_deinit(&in);
    osp_buf_deinit(&buf);
}

/* ---- Malformed input ---- */

static void test_every_truncation(void **state)
{
    (void)state;
    struct osp_job in;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_env_keys k = keys_of(KEY_NEW, NULL, false);
    full_job(&in);
    encode_ok(&in, &k, &buf);
    for (size_t n = 0; n < buf.len; n++) {
        /* A heap copy of exactly n bytes, so ASan catches any read past the end. */
        uint8_t *cut = malloc(n ? n : 1);
        assert_non_null(cut);
        memcpy(cut, buf.data, n);
        expect_decode_fail(cut, n, &k, OSP_EPROTO, "truncated envelope");
        char kind[OSP_KIND_MAX + 1] = "x";
        char id[OSP_ID_LEN + 1] = "x";
        assert_int_equal(osp_env_peek(cut, n, kind, id), OSP_EPROTO);
        assert_string_equal(kind, "");
        assert_string_equal(id, "");
        free(cut);
    }
    osp_job_deinit(&in);
    osp_buf_deinit(&buf);
}

static void test_trailing_garbage(void **state)
{
    (void)state;
    struct osp_job in;
    struct osp_buf buf = OSP_BUF_INIT;
    full_job(&in);
    encode_ok(&in, &no_keys, &buf);
    osp_buf_append(&buf, "\x00", 1);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "envelope: 1 trailing byte(s)");
    osp_buf_append(&buf, "\x93\x01\x02", 3);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "envelope: 4 trailing byte(s)");
    osp_job_deinit(&in);
    osp_buf_deinit(&buf);
}

static void test_oversize(void **state)
{
    (void)state;
    struct osp_job in;
    struct osp_job out;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_err err = {0, ""};
    full_job(&in);
    encode_ok(&in, &no_keys, &buf);
    assert_int_equal(osp_env_decode(buf.data, buf.len, &no_keys, buf.len - 1, &out, &err),
                     OSP_ETOOBIG);
    char want[128];
    snprintf(want, sizeof(want), "envelope of %zu bytes exceeds the limit of %zu", buf.len,
             buf.len - 1);
    assert_string_equal(err.msg, want);
    assert_string_equal(out.id, "");
    osp_job_deinit(&out);
    assert_int_equal(osp_env_decode(buf.data, buf.len, &no_keys, buf.len, &out, &err), 0);
    osp_job_deinit(&out);

    /* max_bytes 0 means the default OSP_ENV_MAX_BYTES. */
    json_decref(in.payload);
    in.payload = json_object();
    char *big = malloc(OSP_ENV_MAX_BYTES);
    assert_non_null(big);
    memset(big, 'a', OSP_ENV_MAX_BYTES);
    json_object_set_new(in.payload, "blob", json_stringn(big, OSP_ENV_MAX_BYTES));
    free(big);
    osp_buf_reset(&buf);
    encode_ok(&in, &no_keys, &buf);
    assert_true(buf.len > OSP_ENV_MAX_BYTES);
    assert_int_equal(osp_env_decode(buf.data, buf.len, &no_keys, 0, &out, &err), OSP_ETOOBIG);
    osp_job_deinit(&out);
    osp_job_deinit(&in);
    osp_buf_deinit(&buf);
}

/* Build [version, sig, body] by hand; the body map comes from fill. */
typedef void (*body_fn)(msgpack_packer *pk);

static void build_env(struct osp_buf *out, uint64_t version, body_fn fill)
{
    struct osp_buf body = OSP_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, buf_write);
    fill(&pk);
    msgpack_packer_init(&pk, out, buf_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint64(&pk, version);
    msgpack_pack_bin(&pk, 0);
    msgpack_pack_bin_with_body(&pk, body.data, body.len);
    osp_buf_deinit(&body);
}

static void kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
    msgpack_pack_str_with_body(pk, v, strlen(v));
}

static void kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
    msgpack_pack_uint64(pk, v);
}

static void kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
    msgpack_pack_int64(pk, v);
}

static void body_minimal(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
}

static void body_kind_int(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    kv_str(pk, "id", JOB_ID);
    kv_uint(pk, "kind", 5);
}

static void body_no_id(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    kv_str(pk, "kind", "noop");
}

static void body_no_kind(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    kv_str(pk, "id", JOB_ID);
}

static void body_bad_kind(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "Bench Mark");
}

static void body_long_kind(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "abcdefghijklmnopqrstuvwxyz0123456"); /* 33 chars */
}

static void body_bad_id(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    kv_str(pk, "id", "not-a-uuid");
    kv_str(pk, "kind", "noop");
}

static void body_attempt_zero(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    kv_uint(pk, "attempt", 0);
}

static void body_max_attempts_zero(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    kv_uint(pk, "max_attempts", 0);
}

static void body_attempt_str(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    kv_str(pk, "attempt", "1");
}

static void body_attempt_big(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    kv_uint(pk, "attempt", 4294967296ull);
}

static void body_timeout_negative(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    kv_int(pk, "timeout_s", -5);
}

static void body_enqueued_negative(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    kv_int(pk, "enqueued_at", -1);
}

static void body_run_at_float(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    msgpack_pack_str_with_body(pk, "run_at", 6);
    msgpack_pack_double(pk, 1.5);
}

static void body_trace_bin(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    msgpack_pack_str_with_body(pk, "trace_id", 8);
    msgpack_pack_bin_with_body(pk, "abc", 3);
}

static void body_trace_bad_utf8(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    msgpack_pack_str_with_body(pk, "trace_id", 8);
    msgpack_pack_str_with_body(pk, "a\xc0\x80", 3); /* overlong NUL */
}

static void body_schedule_nul(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    msgpack_pack_str_with_body(pk, "schedule", 8);
    msgpack_pack_str_with_body(pk, "a\0b", 3);
}

static void body_payload_bin(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    msgpack_pack_str_with_body(pk, "payload", 7);
    msgpack_pack_bin_with_body(pk, "abc", 3);
}

static void body_not_map(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_str_with_body(pk, JOB_ID, 36);
    msgpack_pack_str_with_body(pk, "noop", 4);
}

static void body_int_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    msgpack_pack_int(pk, 7);
    msgpack_pack_nil(pk);
}

static void body_dup_kind(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    kv_str(pk, "kind", "drill");
}

static void body_trailing(msgpack_packer *pk)
{
    body_minimal(pk);
    msgpack_pack_nil(pk);
}

static void body_unknown_fields(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 5);
    kv_str(pk, "future", "ignored");
    kv_str(pk, "id", JOB_ID);
    msgpack_pack_str_with_body(pk, "blob", 4);
    msgpack_pack_bin_with_body(pk, "\x00\x01", 2);
    kv_str(pk, "kind", "noop");
    kv_uint(pk, "attempt", 2);
}

/* Deep payload: the body map plus n nested arrays. */
static int g_depth;

static void body_deep_payload(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    kv_str(pk, "id", JOB_ID);
    kv_str(pk, "kind", "noop");
    msgpack_pack_str_with_body(pk, "payload", 7);
    for (int i = 0; i < g_depth; i++) {
        msgpack_pack_array(pk, 1);
    }
    msgpack_pack_nil(pk);
}

static void expect_body_fail(body_fn fill, int code, const char *msg)
{
    struct osp_buf buf = OSP_BUF_INIT;
    build_env(&buf, 1, fill);
    expect_decode_fail(buf.data, buf.len, &no_keys, code, msg);
    osp_buf_deinit(&buf);
}

static void test_wrong_body_fields(void **state)
{
    (void)state;
    expect_body_fail(body_kind_int, OSP_EPROTO, "body.kind: not a string");
    expect_body_fail(body_no_id, OSP_EPROTO, "body.id: missing");
    expect_body_fail(body_no_kind, OSP_EPROTO, "body.kind: missing");
    expect_body_fail(body_bad_kind, OSP_EINVAL, "body.kind: invalid kind name");
    expect_body_fail(body_long_kind, OSP_EINVAL, "body.kind: invalid kind name");
    expect_body_fail(body_bad_id, OSP_EINVAL, "body.id: not a valid id");
    expect_body_fail(body_attempt_zero, OSP_EINVAL, "body.attempt: 0 is not allowed");
    expect_body_fail(body_max_attempts_zero, OSP_EINVAL, "body.max_attempts: 0 is not allowed");
    expect_body_fail(body_attempt_str, OSP_EPROTO, "body.attempt: not an integer");
    expect_body_fail(body_attempt_big, OSP_EINVAL, "body.attempt: 4294967296 out of range");
    expect_body_fail(body_timeout_negative, OSP_EINVAL, "body.timeout_s: -5 is negative");
    expect_body_fail(body_enqueued_negative, OSP_EINVAL, "body.enqueued_at: -1 is negative");
    expect_body_fail(body_run_at_float, OSP_EPROTO, "body.run_at: not an integer");
    expect_body_fail(body_trace_bin, OSP_EPROTO, "body.trace_id: not a string");
    expect_body_fail(body_trace_bad_utf8, OSP_EINVAL, "body.trace_id: not valid UTF-8");
    expect_body_fail(body_schedule_nul, OSP_EINVAL, "body.schedule: not valid UTF-8");
    expect_body_fail(body_payload_bin, OSP_EINVAL, "body.payload: binary values are not allowed");
    expect_body_fail(body_not_map, OSP_EPROTO, "body: not a map");
    expect_body_fail(body_int_key, OSP_EPROTO, "body: map key is not a string");
    expect_body_fail(body_dup_kind, OSP_EPROTO, "body.kind: duplicate");
    expect_body_fail(body_trailing, OSP_EPROTO, "body: 1 trailing byte(s)");
}

static void test_failure_keeps_attribution(void **state)
{
    (void)state;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_job j;
    struct osp_err err = {0, ""};
    build_env(&buf, 1, body_attempt_zero);
    assert_int_equal(osp_env_decode(buf.data, buf.len, &no_keys, 0, &j, &err), OSP_EINVAL);
    assert_string_equal(j.id, JOB_ID);
    assert_string_equal(j.kind, "noop");
    assert_null(j.payload);
    osp_job_deinit(&j);
    osp_job_deinit(&j); /* twice is harmless */
    osp_buf_deinit(&buf);

    /* Bad kind: the id is known, the kind is not. */
    build_env(&buf, 1, body_bad_kind);
    assert_int_equal(osp_env_decode(buf.data, buf.len, &no_keys, 0, &j, &err), OSP_EINVAL);
    assert_string_equal(j.id, JOB_ID);
    assert_string_equal(j.kind, "");
    osp_job_deinit(&j);
    osp_buf_deinit(&buf);
}

static void test_unknown_fields_ignored(void **state)
{
    (void)state;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_job j;
    struct osp_err err = {0, ""};
    build_env(&buf, 1, body_unknown_fields);
    assert_int_equal(osp_env_decode(buf.data, buf.len, &no_keys, 0, &j, &err), 0);
    assert_string_equal(j.id, JOB_ID);
    assert_string_equal(j.kind, "noop");
    assert_int_equal(j.attempt, 2);
    assert_int_equal(j.max_attempts, 1);
    assert_int_equal(j.timeout_s, 0);
    assert_int_equal(j.enqueued_at, 0);
    assert_non_null(j.idempotency_key);
    assert_string_equal(j.idempotency_key, "");
    assert_string_equal(j.submitted_by, "");
    assert_string_equal(j.schedule, "");
    assert_string_equal(j.trace_id, "");
    assert_true(json_is_object(j.payload));
    osp_job_deinit(&j);
    osp_buf_deinit(&buf);
}

static void test_unknown_version(void **state)
{
    (void)state;
    struct osp_buf buf = OSP_BUF_INIT;
    build_env(&buf, 7, body_minimal);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EINVAL, "unknown envelope version 7");
    osp_buf_reset(&buf);
    build_env(&buf, 0, body_minimal);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EINVAL, "unknown envelope version 0");
    osp_buf_reset(&buf);
    /* A future layout (4 elements) is still reported by its version. */
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, buf_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_nil(&pk);
    msgpack_pack_nil(&pk);
    msgpack_pack_nil(&pk);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EINVAL, "unknown envelope version 2");
    osp_buf_deinit(&buf);
}

static void test_wrong_outer_types(void **state)
{
    (void)state;
    struct osp_buf buf = OSP_BUF_INIT;
    msgpack_packer pk;

    msgpack_packer_init(&pk, &buf, buf_write);
    msgpack_pack_map(&pk, 0);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "envelope: not an array");
    osp_buf_reset(&buf);

    msgpack_pack_array(&pk, 3);
    msgpack_pack_str_with_body(&pk, "1", 1);
    msgpack_pack_bin(&pk, 0);
    msgpack_pack_bin(&pk, 0);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO,
                       "envelope.version: not an unsigned integer");
    osp_buf_reset(&buf);

    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_bin(&pk, 0);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "envelope: not an array of 3");
    osp_buf_reset(&buf);

    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str_with_body(&pk, "sig", 3);
    msgpack_pack_bin(&pk, 0);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "envelope.signature: not bin");
    osp_buf_reset(&buf);

    /* A body given as a map instead of bin bytes. */
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_bin(&pk, 0);
    body_minimal(&pk);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "envelope.body: not bin");
    osp_buf_reset(&buf);

    /* An empty body bin. */
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_bin(&pk, 0);
    msgpack_pack_bin(&pk, 0);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "truncated body");
    osp_buf_reset(&buf);

    /* The unused byte 0xc1. */
    osp_buf_append(&buf, "\x93\x01\xc4\x00\xc4\x01\xc1", 7);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "body: invalid msgpack");
    osp_buf_reset(&buf);
    osp_buf_append(&buf, "\xc1", 1);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "envelope: invalid msgpack");
    osp_buf_deinit(&buf);
}

static void test_lying_sizes(void **state)
{
    (void)state;
    /* Headers that claim huge sizes must be refused before anything is allocated. */
    struct osp_buf buf = OSP_BUF_INIT;
    osp_buf_append(&buf, "\xdd\xff\xff\xff\xff\x01", 6); /* array32 of 4G elements */
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "envelope: too many elements");
    osp_buf_reset(&buf);
    osp_buf_append(&buf, "\xdf\xff\xff\xff\xff", 5); /* map32 of 4G pairs */
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "envelope: too many elements");
    osp_buf_reset(&buf);
    osp_buf_append(&buf, "\x93\x01\xc4\x00\xc6\xff\xff\xff\xff\x00", 10); /* bin32 4 GB */
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "truncated envelope");
    osp_buf_reset(&buf);
    /* Inside the body: an array32 claiming more elements than there are bytes. */
    osp_buf_append(&buf, "\x93\x01\xc4\x00\xc4\x06\xdd\x00\x10\x00\x00\xc0", 12);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "body: too many elements");
    osp_buf_deinit(&buf);
}

static void test_deep_payload(void **state)
{
    (void)state;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_job j;
    struct osp_err err = {0, ""};

    g_depth = OSP_MPJSON_MAX_DEPTH - 1; /* body map + 31 = the parser's 32 */
    build_env(&buf, 1, body_deep_payload);
    assert_int_equal(osp_env_decode(buf.data, buf.len, &no_keys, 0, &j, &err), 0);
    osp_job_deinit(&j);
    osp_buf_reset(&buf);

    g_depth = OSP_MPJSON_MAX_DEPTH;
    build_env(&buf, 1, body_deep_payload);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "body: nesting too deep");
    osp_buf_reset(&buf);

    g_depth = 1000;
    build_env(&buf, 1, body_deep_payload);
    expect_decode_fail(buf.data, buf.len, &no_keys, OSP_EPROTO, "body: nesting too deep");
    osp_buf_deinit(&buf);
}

static json_t *nested(int n)
{
    json_t *v = json_integer(1);
    for (int i = 0; i < n; i++) {
        json_t *a = json_array();
        json_array_append_new(a, v);
        v = a;
    }
    return v;
}

static void test_encode_rejections(void **state)
{
    (void)state;
    struct osp_job j;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_err err = {0, ""};
    full_job(&j);

    json_decref(j.payload);
    j.payload = nested(OSP_MPJSON_MAX_DEPTH - 1);
    assert_int_equal(osp_env_encode(&j, &no_keys, &buf, &err), 0);
    assert_true(buf.len > 0);
    osp_buf_reset(&buf);

    /* Encodable as JSON, but one level too deep for the body map around it. */
    json_decref(j.payload);
    j.payload = nested(OSP_MPJSON_MAX_DEPTH);
    assert_int_equal(osp_env_encode(&j, &no_keys, &buf, &err), OSP_EINVAL);
    assert_string_equal(err.msg, "payload: nesting too deep for an envelope");
    assert_int_equal(buf.len, 0);

    json_decref(j.payload);
    j.payload = nested(OSP_MPJSON_MAX_DEPTH + 1);
    assert_int_equal(osp_env_encode(&j, &no_keys, &buf, &err), OSP_EINVAL);
    assert_string_equal(err.msg, "payload: nesting deeper than 32 levels");
    assert_int_equal(buf.len, 0);

    /* A NULL payload travels as {}. */
    json_decref(j.payload);
    j.payload = NULL;
    assert_int_equal(osp_env_encode(&j, &no_keys, &buf, &err), 0);
    struct osp_job out;
    assert_int_equal(osp_env_decode(buf.data, buf.len, &no_keys, 0, &out, &err), 0);
    assert_true(json_is_object(out.payload));
    assert_int_equal(json_object_size(out.payload), 0);
    osp_job_deinit(&out);
    osp_buf_reset(&buf);
    j.payload = json_object();

    strcpy(j.id, "nope");
    assert_int_equal(osp_env_encode(&j, &no_keys, &buf, &err), OSP_EINVAL);
    assert_string_equal(err.msg, "id: not a valid id");
    strcpy(j.id, JOB_ID);
    strcpy(j.kind, "No");
    assert_int_equal(osp_env_encode(&j, &no_keys, &buf, &err), OSP_EINVAL);
    assert_string_equal(err.msg, "kind: invalid kind name");
    strcpy(j.kind, "noop");
    j.attempt = 0;
    assert_int_equal(osp_env_encode(&j, &no_keys, &buf, &err), OSP_EINVAL);
    assert_string_equal(err.msg, "attempt: 0 is not allowed");
    j.attempt = 1;
    j.max_attempts = 0;
    assert_int_equal(osp_env_encode(&j, &no_keys, &buf, &err), OSP_EINVAL);
    assert_string_equal(err.msg, "max_attempts: 0 is not allowed");
    j.max_attempts = 1;
    j.run_at = -1;
    assert_int_equal(osp_env_encode(&j, &no_keys, &buf, &err), OSP_EINVAL);
    assert_string_equal(err.msg, "run_at: negative time");
    j.run_at = 0;
    replace_str(&j.submitted_by, "\xff");
    assert_int_equal(osp_env_encode(&j, &no_keys, &buf, &err), OSP_EINVAL);
    assert_string_equal(err.msg, "submitted_by: not valid UTF-8");
    assert_int_equal(buf.len, 0);
    osp_job_deinit(&j);
    osp_buf_deinit(&buf);
}

/* ---- Random damage ---- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* splitmix64: fixed seed, so a failure reproduces. */
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void test_random_flips(void **state)
{
    (void)state;
    struct osp_job in;
    struct osp_buf signed_buf = OSP_BUF_INIT;
    struct osp_buf plain_buf = OSP_BUF_INIT;
    struct osp_env_keys k = keys_of(KEY_NEW, NULL, false);
    full_job(&in);
    encode_ok(&in, &k, &signed_buf);
    encode_ok(&in, &no_keys, &plain_buf);
    struct osp_buf *bufs[2] = {&signed_buf, &plain_buf};
    int decoded_ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        const struct osp_buf *src = bufs[iter & 1];
        uint8_t *copy = malloc(src->len);
        assert_non_null(copy);
        memcpy(copy, src->data, src->len);
        int flips = 1 + (int)(rnd() % 3);
        for (int f = 0; f < flips; f++) {
            size_t at = (size_t)(rnd() % src->len);
            if (rnd() & 1) {
                copy[at] ^= (uint8_t)(1u << (rnd() % 8));
            } else {
                copy[at] = (uint8_t)rnd();
            }
        }
        struct osp_job j;
        struct osp_err err = {0, ""};
        /* Unsigned input decoded without keys exercises the body parser on damaged bytes. */
        int rc = osp_env_decode(copy, src->len, (iter & 1) ? &no_keys : &k, 0, &j, &err);
        if (rc == 0) {
            decoded_ok++;
            assert_non_null(j.payload);
            assert_non_null(j.trace_id);
            assert_true(osp_id_is_valid(j.id));
            assert_true(osp_kind_name_is_valid(j.kind));
        } else {
            assert_true(rc == OSP_EPROTO || rc == OSP_EINVAL || rc == OSP_EVERIFY);
            assert_int_equal(err.code, rc);
            assert_true(err.msg[0] != '\0');
        }
        osp_job_deinit(&j);
        char kind[OSP_KIND_MAX + 1];
        char id[OSP_ID_LEN + 1];
        rc = osp_env_peek(copy, src->len, kind, id);
        assert_true(rc == 0 || rc == OSP_EPROTO);
        free(copy);
    }
    /* Some flips land in values that stay valid (e.g. payload numbers). */
    assert_true(decoded_ok > 0);
    osp_job_deinit(&in);
    osp_buf_deinit(&signed_buf);
    osp_buf_deinit(&plain_buf);
}

/* ---- Peek ---- */

static void test_peek(void **state)
{
    (void)state;
    struct osp_job in;
    struct osp_buf buf = OSP_BUF_INIT;
    struct osp_env_keys k = keys_of(KEY_NEW, NULL, false);
    char kind[OSP_KIND_MAX + 1];
    char id[OSP_ID_LEN + 1];
    full_job(&in);
    encode_ok(&in, &k, &buf);
    assert_int_equal(osp_env_peek(buf.data, buf.len, kind, id), 0);
    assert_string_equal(kind, "benchmark");
    assert_string_equal(id, JOB_ID);
    /* Peek does not verify: a damaged signature still routes. */
    buf.data[10] ^= 0xff;
    assert_int_equal(osp_env_peek(buf.data, buf.len, kind, id), 0);
    assert_string_equal(kind, "benchmark");
    osp_buf_reset(&buf);

    build_env(&buf, 1, body_no_kind);
    assert_int_equal(osp_env_peek(buf.data, buf.len, kind, id), OSP_EPROTO);
    assert_string_equal(kind, "");
    assert_string_equal(id, "");
    osp_buf_reset(&buf);

    build_env(&buf, 1, body_bad_kind);
    assert_int_equal(osp_env_peek(buf.data, buf.len, kind, id), OSP_EPROTO);
    assert_string_equal(kind, "");
    assert_string_equal(id, "");
    osp_buf_reset(&buf);

    osp_buf_append(&buf, "garbage", 7);
    assert_int_equal(osp_env_peek(buf.data, buf.len, kind, id), OSP_EPROTO);
    assert_int_equal(osp_env_peek(NULL, 0, kind, id), OSP_EPROTO);
    osp_job_deinit(&in);
    osp_buf_deinit(&buf);
}

/* ---- Dead letters ---- */

static void test_dead_round_trip(void **state)
{
    (void)state;
    struct osp_buf rec = OSP_BUF_INIT;
    struct osp_dead d;
    struct osp_err err = {0, ""};
    const uint8_t env[] = {0x93, 0x07, 0xc4, 0x00, 0xc4, 0x01, 0xc0, 0x00, 0xff};
    osp_dead_encode("unknown envelope version 7", 1718000000999, JOB_ID, env, sizeof(env), &rec);
    assert_int_equal(osp_dead_decode(rec.data, rec.len, &d, &err), 0);
    assert_string_equal(d.reason, "unknown envelope version 7");
    assert_int_equal(d.failed_at_ms, 1718000000999);
    assert_string_equal(d.job_id, JOB_ID);
    assert_int_equal(d.env.len, sizeof(env));
    assert_memory_equal(d.env.data, env, sizeof(env));
    osp_dead_deinit(&d);
    osp_dead_deinit(&d);
    osp_buf_reset(&rec);

    /* No id, empty envelope, NULL reason, negative time. */
    osp_dead_encode(NULL, -5, NULL, NULL, 0, &rec);
    assert_int_equal(osp_dead_decode(rec.data, rec.len, &d, &err), 0);
    assert_string_equal(d.reason, "");
    assert_int_equal(d.failed_at_ms, -5);
    assert_string_equal(d.job_id, "");
    assert_int_equal(d.env.len, 0);
    osp_dead_deinit(&d);
    osp_buf_reset(&rec);

    /* An unreadable id is recorded as "". */
    osp_dead_encode("bad", 1, "not-an-id", "x", 1, &rec);
    assert_int_equal(osp_dead_decode(rec.data, rec.len, &d, &err), 0);
    assert_string_equal(d.job_id, "");
    osp_dead_deinit(&d);

    /* Every truncation fails cleanly. */
    for (size_t n = 0; n < rec.len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        assert_non_null(cut);
        memcpy(cut, rec.data, n);
        assert_int_equal(osp_dead_decode(cut, n, &d, &err), OSP_EPROTO);
        assert_string_equal(err.msg, "truncated dead record");
        assert_null(d.reason);
        osp_dead_deinit(&d);
        free(cut);
    }
    osp_buf_deinit(&rec);
}

static void test_dead_rejections(void **state)
{
    (void)state;
    struct osp_buf rec = OSP_BUF_INIT;
    struct osp_dead d;
    struct osp_err err = {0, ""};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &rec, buf_write);

    msgpack_pack_array(&pk, 5);
    msgpack_pack_str_with_body(&pk, "live", 4);
    msgpack_pack_str_with_body(&pk, "r", 1);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "", 0);
    msgpack_pack_bin(&pk, 0);
    assert_int_equal(osp_dead_decode(rec.data, rec.len, &d, &err), OSP_EPROTO);
    assert_string_equal(err.msg, "dead record: not [\"dead\", ...] of 5");
    osp_buf_reset(&rec);

    msgpack_pack_array(&pk, 5);
    msgpack_pack_str_with_body(&pk, "dead", 4);
    msgpack_pack_str_with_body(&pk, "r", 1);
    msgpack_pack_str_with_body(&pk, "1", 1);
    msgpack_pack_str_with_body(&pk, "", 0);
    msgpack_pack_bin(&pk, 0);
    assert_int_equal(osp_dead_decode(rec.data, rec.len, &d, &err), OSP_EPROTO);
    assert_string_equal(err.msg, "dead.failed_at: not an int64");
    osp_buf_reset(&rec);

    msgpack_pack_array(&pk, 5);
    msgpack_pack_str_with_body(&pk, "dead", 4);
    msgpack_pack_str_with_body(&pk, "r", 1);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "0190a3f2-7c1e-7abc-8def-0123456789aZ", 36);
    msgpack_pack_bin(&pk, 0);
    assert_int_equal(osp_dead_decode(rec.data, rec.len, &d, &err), OSP_EPROTO);
    assert_string_equal(err.msg, "dead.job_id: not an id");
    assert_string_equal(d.job_id, "");
    osp_buf_reset(&rec);

    msgpack_pack_array(&pk, 5);
    msgpack_pack_str_with_body(&pk, "dead", 4);
    msgpack_pack_str_with_body(&pk, "r", 1);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "", 0);
    msgpack_pack_str_with_body(&pk, "env", 3);
    assert_int_equal(osp_dead_decode(rec.data, rec.len, &d, &err), OSP_EPROTO);
    assert_string_equal(err.msg, "dead.envelope: not bin");
    osp_buf_reset(&rec);

    osp_dead_encode("r", 1, JOB_ID, "e", 1, &rec);
    osp_buf_append(&rec, "\xc0", 1);
    assert_int_equal(osp_dead_decode(rec.data, rec.len, &d, &err), OSP_EPROTO);
    assert_string_equal(err.msg, "dead record: 1 trailing byte(s)");
    osp_buf_deinit(&rec);
}

/* ---- Job lifecycle and names ---- */

static void test_job_init_deinit(void **state)
{
    (void)state;
    struct osp_job j;
    osp_job_init(&j);
    assert_string_equal(j.id, "");
    assert_string_equal(j.kind, "");
    assert_true(json_is_object(j.payload));
    assert_int_equal(j.attempt, 1);
    assert_int_equal(j.max_attempts, 1);
    assert_int_equal(j.timeout_s, 0);
    assert_string_equal(j.idempotency_key, "");
    assert_string_equal(j.submitted_by, "");
    assert_string_equal(j.schedule, "");
    assert_string_equal(j.trace_id, "");
    osp_job_deinit(&j);
    assert_null(j.payload);
    osp_job_deinit(&j);
    osp_job_init(&j);
    osp_job_deinit(&j);
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_true(osp_kind_name_is_valid("noop"));
    assert_true(osp_kind_name_is_valid("a"));
    assert_true(osp_kind_name_is_valid("bench_mark-2"));
    assert_true(osp_kind_name_is_valid("abcdefghijklmnopqrstuvwxyz012345"));   /* 32 */
    assert_false(osp_kind_name_is_valid("abcdefghijklmnopqrstuvwxyz0123456")); /* 33 */
    assert_false(osp_kind_name_is_valid(""));
    assert_false(osp_kind_name_is_valid(NULL));
    assert_false(osp_kind_name_is_valid("Noop"));
    assert_false(osp_kind_name_is_valid("no op"));
    assert_false(osp_kind_name_is_valid("no:op"));
    assert_false(osp_kind_name_is_valid("nöop"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_unsigned),
        cmocka_unit_test(test_round_trip_defaults),
        cmocka_unit_test(test_round_trip_signed),
        cmocka_unit_test(test_encode_appends),
        cmocka_unit_test(test_key_rotation),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_signature_wrong_length),
        cmocka_unit_test(test_unsigned_policy),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_wrong_body_fields),
        cmocka_unit_test(test_failure_keeps_attribution),
        cmocka_unit_test(test_unknown_fields_ignored),
        cmocka_unit_test(test_unknown_version),
        cmocka_unit_test(test_wrong_outer_types),
        cmocka_unit_test(test_lying_sizes),
        cmocka_unit_test(test_deep_payload),
        cmocka_unit_test(test_encode_rejections),
        cmocka_unit_test(test_random_flips),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_dead_round_trip),
        cmocka_unit_test(test_dead_rejections),
        cmocka_unit_test(test_job_init_deinit),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
