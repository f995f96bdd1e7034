/* SPDX-License-Identifier: MIT */
/* test_mpjson.c — msgpack <-> jansson: round trips of every JSON type, exact integer and
 * float edges, the depth bound in both directions, and every documented rejection. */
#include "common/mpjson.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* Pack v, unpack it, convert back; returns the new value (or NULL with err set). */
static json_t *round_trip(const json_t *v, struct osp_err *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = osp_mpjson_pack(&pk, v, err);
    json_t *out = NULL;
    if (rc == 0) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(off, sb.size);
        out = osp_mpjson_to_json(&u.data, err);
        msgpack_unpacked_destroy(&u);
    }
    msgpack_sbuffer_destroy(&sb);
    return out;
}

/* Convert raw msgpack bytes (built by the caller with sb) to JSON. */
static json_t *from_bytes(const msgpack_sbuffer *sb, struct osp_err *err)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb->data, sb->size, &off), MSGPACK_UNPACK_SUCCESS);
    json_t *out = osp_mpjson_to_json(&u.data, err);
    msgpack_unpacked_destroy(&u);
    return out;
}

static void test_round_trip_document(void **state)
{
    (void)state;
    json_error_t jerr;
    const char *text =
        "{\"s\":\"h\\u00e9llo \\u2603 \\ud83d\\ude00\",\"n\":-42,\"u\":18446744,\"f\":1.5,"
        "\"t\":true,\"F\":false,\"z\":null,\"a\":[1,[2,[3,{}]],[]],\"o\":{\"k\":{\"k\":\"v\"}},"
        "\"\":\"empty key\",\"e\":\"\"}";
    json_t *in = json_loads(text, 0, &jerr);
    assert_non_null(in);
    struct osp_err err = {0, ""};
    json_t *out = round_trip(in, &err);
    assert_non_null(out);
    assert_true(json_equal(in, out));
    /* Key order survives (jansson keeps insertion order). */
    char *a = json_dumps(in, JSON_COMPACT);
    char *b = json_dumps(out, JSON_COMPACT);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(in);
    json_decref(out);
}

static void test_scalars(void **state)
{
    (void)state;
    struct osp_err err = {0, ""};
    json_t *vals[] = {json_integer(INT64_MAX),
                      json_integer(INT64_MIN),
                      json_integer(0),
                      json_real(-0.25),
                      json_real(1e300),
                      json_true(),
                      json_false(),
                      json_null(),
                      json_string("")};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        json_t *out = round_trip(vals[i], &err);
        assert_non_null(out);
        assert_true(json_equal(vals[i], out));
        assert_int_equal(json_typeof(out), json_typeof(vals[i]));
        json_decref(out);
        json_decref(vals[i]);
    }
}

static void test_integer_edges(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct osp_err err = {0, ""};

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_uint64(&pk, (uint64_t)INT64_MAX);
    json_t *v = from_bytes(&sb, &err);
    assert_non_null(v);
    assert_int_equal(json_integer_value(v), INT64_MAX);
    json_decref(v);
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_uint64(&pk, (uint64_t)INT64_MAX + 1);
    assert_null(from_bytes(&sb, &err));
    assert_int_equal(err.code, OSP_EINVAL);
    assert_string_equal(err.msg, "integer 9223372036854775808 out of range");
    msgpack_sbuffer_destroy(&sb);
}

static void test_float32(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct osp_err err = {0, ""};
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_float(&pk, 0.5f);
    json_t *v = from_bytes(&sb, &err);
    assert_non_null(v);
    assert_true(json_is_real(v));
    assert_true(json_real_value(v) == 0.5);
    json_decref(v);
    msgpack_sbuffer_destroy(&sb);
}

/* Each builder packs one value that must be rejected with the given message. */
static void expect_reject(void (*build)(msgpack_packer *), const char *msg)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct osp_err err = {0, ""};
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    build(&pk);
    json_t *v = from_bytes(&sb, &err);
    assert_null(v);
    assert_int_equal(err.code, OSP_EINVAL);
    assert_string_equal(err.msg, msg);
    msgpack_sbuffer_destroy(&sb);
}

static void build_nan(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_double(pk, NAN);
}

static void build_inf(msgpack_packer *pk)
{
    msgpack_pack_float(pk, -INFINITY);
}

static void build_bin(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "b", 1);
    msgpack_pack_bin_with_body(pk, "xy", 2);
}

static void build_ext(msgpack_packer *pk)
{
    msgpack_pack_ext_with_body(pk, "xyzw", 4, 5);
}

static void build_int_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_nil(pk);
}

static void build_dup_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    msgpack_pack_str_with_body(pk, "k", 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_str_with_body(pk, "k", 1);
    msgpack_pack_int(pk, 2);
}

static void build_bad_utf8(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "\xc3\x28", 2);
}

static void build_bad_utf8_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "\xff", 1);
    msgpack_pack_nil(pk);
}

static void build_big_uint_nested(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "a", 1);
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, 1);
    msgpack_pack_uint64(pk, UINT64_MAX);
}

static void build_nul_str(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "a\0b", 3);
}

static void build_nul_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "\0", 1);
    msgpack_pack_nil(pk);
}

static void test_nul_rejected(void **state)
{
    (void)state;
    expect_reject(build_nul_str, "string contains NUL");
    expect_reject(build_nul_key, "map key contains NUL");
    /* And jansson values holding NUL (possible via json_stringn) are not packed. */
    struct osp_err err = {0, ""};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    json_t *s = json_stringn("a\0b", 3);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(osp_mpjson_pack(&pk, s, &err), OSP_EINVAL);
    assert_string_equal(err.msg, "string contains NUL");
    json_decref(s);
    json_t *o = json_object();
    json_object_setn_new(o, "k\0", 2, json_true());
    assert_int_equal(osp_mpjson_pack(&pk, o, &err), OSP_EINVAL);
    assert_string_equal(err.msg, "map key contains NUL");
    json_decref(o);
    msgpack_sbuffer_destroy(&sb);
}

static void test_rejections(void **state)
{
    (void)state;
    expect_reject(build_nan, "non-finite number");
    expect_reject(build_inf, "non-finite number");
    expect_reject(build_bin, "binary values are not allowed");
    expect_reject(build_ext, "extension values are not allowed");
    expect_reject(build_int_key, "map key is not a string");
    expect_reject(build_dup_key, "duplicate map key");
    expect_reject(build_bad_utf8, "string is not valid UTF-8");
    expect_reject(build_bad_utf8_key, "map key is not valid UTF-8");
    expect_reject(build_big_uint_nested, "integer 18446744073709551615 out of range");
}

/* n nested arrays around the integer 1: [[...[1]...]]. */
static json_t *nested_json(int n)
{
    json_t *v = json_integer(1);
    for (int i = 0; i < n; i++) {
        json_t *a = json_array();
        json_array_append_new(a, v);
        v = a;
    }
    return v;
}

static void test_depth_pack(void **state)
{
    (void)state;
    struct osp_err err = {0, ""};
    json_t *ok = nested_json(OSP_MPJSON_MAX_DEPTH);
    json_t *out = round_trip(ok, &err);
    /* 32 non-empty containers is exactly msgpack-c's parser stack, so this still unpacks. */
    assert_non_null(out);
    assert_true(json_equal(ok, out));
    json_decref(out);
    json_decref(ok);

    json_t *deep = nested_json(OSP_MPJSON_MAX_DEPTH + 1);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(osp_mpjson_pack(&pk, deep, &err), OSP_EINVAL);
    assert_string_equal(err.msg, "nesting deeper than 32 levels");
    msgpack_sbuffer_destroy(&sb);
    json_decref(deep);

    /* Objects count as levels too. */
    json_t *obj = json_integer(0);
    for (int i = 0; i < OSP_MPJSON_MAX_DEPTH + 1; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "k", obj);
        obj = o;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(osp_mpjson_pack(&pk, obj, &err), OSP_EINVAL);
    msgpack_sbuffer_destroy(&sb);
    json_decref(obj);
}

static void test_depth_unpack(void **state)
{
    (void)state;
    /* msgpack-c cannot parse more than 32 nested containers, so build the object tree by
     * hand to reach the converter's own bound: 33 nested arrays around nil. */
    msgpack_object objs[OSP_MPJSON_MAX_DEPTH + 2];
    memset(objs, 0, sizeof(objs));
    int n = OSP_MPJSON_MAX_DEPTH + 1;
    for (int i = 0; i < n; i++) {
        objs[i].type = MSGPACK_OBJECT_ARRAY;
        objs[i].via.array.size = 1;
        objs[i].via.array.ptr = &objs[i + 1];
    }
    objs[n].type = MSGPACK_OBJECT_NIL;
    struct osp_err err = {0, ""};
    assert_null(osp_mpjson_to_json(&objs[0], &err));
    assert_int_equal(err.code, OSP_EINVAL);
    assert_string_equal(err.msg, "nesting deeper than 32 levels");

    /* One level less converts. */
    json_t *v = osp_mpjson_to_json(&objs[1], &err);
    assert_non_null(v);
    json_t *inner = v;
    for (int i = 0; i < OSP_MPJSON_MAX_DEPTH - 1; i++) {
        inner = json_array_get(inner, 0);
    }
    assert_true(json_is_array(inner));
    assert_true(json_is_null(json_array_get(inner, 0)));
    json_decref(v);

    /* Maps count as levels as well. */
    msgpack_object_kv kvs[OSP_MPJSON_MAX_DEPTH + 1];
    msgpack_object maps[OSP_MPJSON_MAX_DEPTH + 2];
    memset(kvs, 0, sizeof(kvs));
    memset(maps, 0, sizeof(maps));
    for (int i = 0; i < n; i++) {
        maps[i].type = MSGPACK_OBJECT_MAP;
        maps[i].via.map.size = 1;
        maps[i].via.map.ptr = &kvs[i];
        kvs[i].key.type = MSGPACK_OBJECT_STR;
        kvs[i].key.via.str.ptr = "k";
        kvs[i].key.via.str.size = 1;
    }
    /* A kv holds its value by copy, so link from the innermost level outwards. */
    maps[n].type = MSGPACK_OBJECT_NIL;
    for (int i = n - 1; i >= 0; i--) {
        kvs[i].val = maps[i + 1];
    }
    assert_null(osp_mpjson_to_json(&maps[0], &err));
    assert_string_equal(err.msg, "nesting deeper than 32 levels");
}

static void test_null_arguments(void **state)
{
    (void)state;
    struct osp_err err = {0, ""};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(osp_mpjson_pack(&pk, NULL, &err), OSP_EINVAL);
    assert_int_equal(sb.size, 0);
    assert_null(osp_mpjson_to_json(NULL, &err));
    assert_int_equal(err.code, OSP_EINVAL);
    /* err may be NULL. */
    assert_null(osp_mpjson_to_json(NULL, NULL));
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_document), cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_integer_edges),       cmocka_unit_test(test_float32),
        cmocka_unit_test(test_rejections),          cmocka_unit_test(test_nul_rejected),
        cmocka_unit_test(test_depth_pack),          cmocka_unit_test(test_depth_unpack),
        cmocka_unit_test(test_null_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
