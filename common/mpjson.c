/* SPDX-License-Identifier: MIT */
/* mpjson.c — msgpack <-> jansson conversion for job payloads (contract: mpjson.h).
 * Both directions recurse with an explicit depth so hostile input cannot exhaust the stack;
 * a container at nesting level OSP_MPJSON_MAX_DEPTH + 1 is rejected. Besides the
 * rejections listed in mpjson.h, strings and keys containing NUL are refused (has_nul).
 * Whatever one direction produces the other accepts, so a payload survives
 * API -> envelope -> worker unchanged. */
#include "common/mpjson.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The outermost value is at depth 0; each container adds one level for its children. */
static int pack_value(msgpack_packer *pk, const json_t *v, int depth, struct osp_err *err)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (depth >= OSP_MPJSON_MAX_DEPTH) {
            return osp_err_set(err, OSP_EINVAL, "nesting deeper than %d levels",
                               OSP_MPJSON_MAX_DEPTH);
        }
        msgpack_pack_map(pk, json_object_size(v));
        /* jansson's iterator API takes a non-const object but does not modify it. */
        json_t *obj = (json_t *)(uintptr_t)v;
        for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
            const char *key = json_object_iter_key(it);
            size_t key_len = json_object_iter_key_len(it);
            if (memchr(key, '\0', key_len) != NULL) {
                return osp_err_set(err, OSP_EINVAL, "map key contains NUL");
            }
            msgpack_pack_str(pk, key_len);
            msgpack_pack_str_body(pk, key, key_len);
            int rc = pack_value(pk, json_object_iter_value(it), depth + 1, err);
            if (rc != 0) {
                return rc;
            }
        }
        return 0;
    }
    case JSON_ARRAY: {
        if (depth >= OSP_MPJSON_MAX_DEPTH) {
            return osp_err_set(err, OSP_EINVAL, "nesting deeper than %d levels",
                               OSP_MPJSON_MAX_DEPTH);
        }
        size_t n = json_array_size(v);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++) {
            int rc = pack_value(pk, json_array_get(v, i), depth + 1, err);
            if (rc != 0) {
                return rc;
            }
        }
        return 0;
    }
    case JSON_STRING: {
        size_t n = json_string_length(v);
        if (memchr(json_string_value(v), '\0', n) != NULL) {
            return osp_err_set(err, OSP_EINVAL, "string contains NUL");
        }
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, json_string_value(v), n);
        return 0;
    }
    case JSON_INTEGER:
        msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
        return 0;
    case JSON_REAL: {
        /* jansson refuses to create non-finite reals; checked anyway so the wire stays JSON. */
        double d = json_real_value(v);
        if (!isfinite(d)) {
            return osp_err_set(err, OSP_EINVAL, "non-finite number");
        }
        msgpack_pack_double(pk, d);
        return 0;
    }
    case JSON_TRUE:
        msgpack_pack_true(pk);
        return 0;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        return 0;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        return 0;
    }
    return osp_err_set(err, OSP_EINVAL, "unknown JSON type");
}

int osp_mpjson_pack(msgpack_packer *pk, const json_t *v, struct osp_err *err)
{
    if (v == NULL) {
        return osp_err_set(err, OSP_EINVAL, "no value");
    }
    return pack_value(pk, v, 0, err);
}

/* NUL is valid UTF-8 but not valid in our JSON: the API parses request bodies without
 * JSON_ALLOW_NUL, most jansson calls (json_object_get, json_string_value, json_equal on keys)
 * stop at the first NUL, and a kind comparing "web\0x" with strcmp would see "web". */
static bool has_nul(const msgpack_object_str *s)
{
    return s->size > 0 && memchr(s->ptr, '\0', s->size) != NULL;
}

static json_t *to_json(const msgpack_object *o, int depth, struct osp_err *err)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) {
            osp_err_set(err, OSP_EINVAL, "integer %llu out of range",
                        (unsigned long long)o->via.u64);
            return NULL;
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64)) {
            osp_err_set(err, OSP_EINVAL, "non-finite number");
            return NULL;
        }
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: {
        if (has_nul(&o->via.str)) {
            osp_err_set(err, OSP_EINVAL, "string contains NUL");
            return NULL;
        }
        /* json_stringn validates UTF-8 and returns NULL on invalid input. */
        json_t *s = json_stringn(o->via.str.size ? o->via.str.ptr : "", o->via.str.size);
        if (s == NULL) {
            osp_err_set(err, OSP_EINVAL, "string is not valid UTF-8");
        }
        return s;
    }
    case MSGPACK_OBJECT_ARRAY: {
        if (depth >= OSP_MPJSON_MAX_DEPTH) {
            osp_err_set(err, OSP_EINVAL, "nesting deeper than %d levels", OSP_MPJSON_MAX_DEPTH);
            return NULL;
        }
        json_t *arr = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            json_t *item = to_json(&o->via.array.ptr[i], depth + 1, err);
            if (item == NULL) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, item);
        }
        return arr;
    }
    case MSGPACK_OBJECT_MAP: {
        if (depth >= OSP_MPJSON_MAX_DEPTH) {
            osp_err_set(err, OSP_EINVAL, "nesting deeper than %d levels", OSP_MPJSON_MAX_DEPTH);
            return NULL;
        }
        json_t *obj = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR) {
                osp_err_set(err, OSP_EINVAL, "map key is not a string");
                json_decref(obj);
                return NULL;
            }
            if (has_nul(&kv->key.via.str)) {
                osp_err_set(err, OSP_EINVAL, "map key contains NUL");
                json_decref(obj);
                return NULL;
            }
            const char *key = kv->key.via.str.size ? kv->key.via.str.ptr : "";
            size_t key_len = kv->key.via.str.size;
            /* Duplicate keys have no JSON meaning; last-wins would let two readers of the
             * same bytes disagree, so they are refused. */
            if (json_object_getn(obj, key, key_len) != NULL) {
                osp_err_set(err, OSP_EINVAL, "duplicate map key");
                json_decref(obj);
                return NULL;
            }
            json_t *val = to_json(&kv->val, depth + 1, err);
            if (val == NULL) {
                json_decref(obj);
                return NULL;
            }
            /* Fails only on invalid UTF-8 in the key (json_object_setn_new steals val). */
            if (json_object_setn_new(obj, key, key_len, val) != 0) {
                osp_err_set(err, OSP_EINVAL, "map key is not valid UTF-8");
                json_decref(obj);
                return NULL;
            }
        }
        return obj;
    }
    case MSGPACK_OBJECT_BIN:
        osp_err_set(err, OSP_EINVAL, "binary values are not allowed");
        return NULL;
    case MSGPACK_OBJECT_EXT:
        osp_err_set(err, OSP_EINVAL, "extension values are not allowed");
        return NULL;
    }
    osp_err_set(err, OSP_EINVAL, "unknown msgpack type %d", (int)o->type);
    return NULL;
}

json_t *osp_mpjson_to_json(const msgpack_object *o, struct osp_err *err)
{
    if (o == NULL) {
        osp_err_set(err, OSP_EINVAL, "no value");
        return NULL;
    }
    return to_json(o, 0, err);
}
