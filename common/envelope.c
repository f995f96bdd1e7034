/* SPDX-License-Identifier: MIT */
/* envelope.c — encode, verify and decode job envelopes and dead-letter records
 * (wire format and contract: envelope.h, DESIGN.md §2).
 *
 * Decoding treats every byte as hostile. msgpack-c allocates container storage from the
 * element counts in the headers before it sees the elements, so a 5-byte array32 header can
 * ask for ~100 GB. Every buffer is therefore first walked by scan(), which allocates nothing,
 * proves the bytes hold exactly one complete value whose counts fit in the remaining input,
 * and bounds nesting to what msgpack-c's fixed parser stack accepts; only then does
 * msgpack_unpack_next run. The signature is checked over the raw body bytes before the body
 * is parsed at all, so unverified input never reaches the body parser or jansson. */
#include "common/envelope.h"
#include "common/alloc.h"
#include "common/hmac.h"
#include "common/mpjson.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* Nested containers msgpack-c's parser accepts: MSGPACK_EMBED_STACK_SIZE, compiled
 * into libmsgpackc (msgpack/unpack_define.h, not part of <msgpack.h>). The scan enforces it
 * itself so a too-deep value gets a clear reason instead of a parser "out of memory". */
#define MP_PARSER_STACK 32

/* Elements the outer array may hold in all (it has 3; see parse_outer). */
#define OUTER_MAX_ITEMS 16

/* ---- Structural pre-scan ---- */

enum scan_rc { SCAN_OK, SCAN_TRUNCATED, SCAN_BAD_BYTE, SCAN_TOO_DEEP, SCAN_TOO_MANY };

static uint64_t read_be(const uint8_t *p, size_t width)
{
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Walk one msgpack value at the start of p without allocating. On SCAN_OK *end is the offset
 * just past it. Nesting is limited to MP_PARSER_STACK containers (the depth msgpack-c
 * itself accepts) and the container element counts, summed over the whole
 * value, to max_items: that sum is what msgpack-c will allocate msgpack_objects for. */
static enum scan_rc scan(const uint8_t *p, size_t len, uint64_t max_items, size_t *end)
{
    uint64_t left[MP_PARSER_STACK]; /* elements still expected per open container */
    size_t top = 0;
    size_t off = 0;
    uint64_t total_items = 0;

    for (;;) {
        if (off >= len) {
            return SCAN_TRUNCATED;
        }
        uint8_t b = p[off++];
        size_t len_width = 0; /* width of a big-endian length/count field after the tag */
        uint64_t data = 0;    /* bytes of data after the tag and length field */
        bool container = false;
        bool is_map = false;
        uint64_t count = 0; /* elements of a container (a map's are key + value pairs) */

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, negative fixint, nil, false, true: the tag is the value */
        } else if (b <= 0x8f) {
            container = is_map = true;
            count = b & 0x0fu;
        } else if (b <= 0x9f) {
            container = true;
            count = b & 0x0fu;
        } else if (b <= 0xbf) {
            data = b & 0x1fu;
        } else {
            switch (b) {
            case 0xc4:
            case 0xd9:
                len_width = 1;
                break; /* bin8, str8 */
            case 0xc5:
            case 0xda:
                len_width = 2;
                break; /* bin16, str16 */
            case 0xc6:
            case 0xdb:
                len_width = 4;
                break; /* bin32, str32 */
            case 0xc7:
                len_width = 1;
                data = 1;
                break; /* ext8 (+ type byte) */
            case 0xc8:
                len_width = 2;
                data = 1;
                break; /* ext16 */
            case 0xc9:
                len_width = 4;
                data = 1;
                break; /* ext32 */
            case 0xcc:
            case 0xd0:
                data = 1;
                break; /* uint8, int8 */
            case 0xcd:
            case 0xd1:
                data = 2;
                break; /* uint16, int16 */
            case 0xca:
            case 0xce:
            case 0xd2:
                data = 4;
                break; /* float32, (u)int32 */
            case 0xcb:
            case 0xcf:
            case 0xd3:
                data = 8;
                break; /* float64, (u)int64 */
            case 0xd4:
                data = 2;
                break; /* fixext1 */
            case 0xd5:
                data = 3;
                break; /* fixext2 */
            case 0xd6:
                data = 5;
                break; /* fixext4 */
            case 0xd7:
                data = 9;
                break; /* fixext8 */
            case 0xd8:
                data = 17;
                break; /* fixext16 */
            case 0xdc:
                container = true;
                len_width = 2;
                break; /* array16 */
            case 0xdd:
                container = true;
                len_width = 4;
                break; /* array32 */
            case 0xde:
                container = is_map = true;
                len_width = 2;
                break; /* map16 */
            case 0xdf:
                container = is_map = true;
                len_width = 4;
                break; /* map32 */
            default:
                return SCAN_BAD_BYTE; /* 0xc1 is never used */
            }
        }
        if (len_width > 0) {
            if (len - off < len_width) {
                return SCAN_TRUNCATED;
            }
            uint64_t n = read_be(p + off, len_width);
            off += len_width;
            if (container) {
                count = n;
            } else {
                data += n;
            }
        }
        if (data > len - off) {
            return SCAN_TRUNCATED;
        }
        off += (size_t)data;

        if (container) {
            /* msgpack-c refuses any container, even an empty one, once its stack is full. */
            if (top == MP_PARSER_STACK) {
                return SCAN_TOO_DEEP;
            }
            uint64_t elems = is_map ? 2 * count : count;
            total_items += count;
            if (total_items > max_items) {
                return SCAN_TOO_MANY;
            }
            /* Every element takes at least one byte, so a count larger than what is left
             * can only be a truncated (or lying) input. */
            if (elems > len - off) {
                return SCAN_TRUNCATED;
            }
            if (elems > 0) {
                left[top++] = elems;
                continue;
            }
        }
        /* A complete value: it may complete its enclosing containers in turn. */
        while (top > 0 && --left[top - 1] == 0) {
            top--;
        }
        if (top == 0) {
            break;
        }
    }
    *end = off;
    return SCAN_OK;
}

/* Unpack exactly [p, p + len) into u (initialised by the caller) after the pre-scan. `what`
 * names the buffer in messages: "truncated envelope", "body: 3 trailing bytes". Public as
 * osp_mp_unpack_exact (envelope.h) for the other readers of untrusted msgpack. */
int osp_mp_unpack_exact(const void *data, size_t len, uint64_t max_items, msgpack_unpacked *u,
                        const char *what, struct osp_err *err)
{
    const uint8_t *p = data;
    size_t end = 0;
    switch (scan(p, len, max_items, &end)) {
    case SCAN_OK:
        break;
    case SCAN_TRUNCATED:
        return osp_err_set(err, OSP_EPROTO, "truncated %s", what);
    case SCAN_BAD_BYTE:
        return osp_err_set(err, OSP_EPROTO, "%s: invalid msgpack", what);
    case SCAN_TOO_DEEP:
        return osp_err_set(err, OSP_EPROTO, "%s: nesting too deep", what);
    case SCAN_TOO_MANY:
        return osp_err_set(err, OSP_EPROTO, "%s: too many elements", what);
    }
    if (end != len) {
        return osp_err_set(err, OSP_EPROTO, "%s: %zu trailing byte(s)", what, len - end);
    }
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(u, (const char *)p, len, &off);
    if ((r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES) || off != len) {
        return osp_err_set(err, OSP_EPROTO, "%s: malformed msgpack", what);
    }
    return 0;
}

/* ---- Small helpers ---- */

static int buf_write(void *data, const char *p, size_t n)
{
    osp_buf_append(data, p, n);
    return 0;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF, no NUL (strings
 * become C strings and PostgreSQL text, which cannot hold NUL). */
static bool text_is_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0) {
            return false;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        uint32_t min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1fu, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0x0fu, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x07u, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < need) {
            return false;
        }
        for (size_t k = 1; k <= need; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xc0u) != 0x80u) {
                return false;
            }
            cp = (cp << 6) | (cc & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += need + 1;
    }
    return true;
}

static bool str_is(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           (n == 0 || memcmp(o->via.str.ptr, s, n) == 0);
}

static bool keys_present(const struct osp_env_keys *keys)
{
    if (keys == NULL) {
        return false;
    }
    OSP_ASSERT(keys->nkeys <= OSP_ARRAY_LEN(keys->keys));
    for (size_t i = 0; i < keys->nkeys; i++) {
        if (keys->keys[i] != NULL && keys->key_lens[i] > 0) {
            return true;
        }
    }
    return false;
}

/* ---- Jobs ---- */

/* The state after osp_job_deinit and after a failed decode: nothing owned. */
static void job_clear(struct osp_job *j)
{
    memset(j, 0, sizeof(*j));
    j->attempt = 1;
    j->max_attempts = 1;
}

void osp_job_init(struct osp_job *j)
{
    job_clear(j);
    j->payload = json_object();
    j->idempotency_key = osp_xstrdup("");
    j->submitted_by = osp_xstrdup("");
    j->schedule = osp_xstrdup("");
    j->trace_id = osp_xstrdup("");
}

void osp_job_deinit(struct osp_job *j)
{
    /* Leaves j owning nothing (pointers NULL), so a second deinit, or a deinit after a failed
     * decode, is harmless; osp_job_init makes it usable again. */
    json_decref(j->payload);
    free(j->idempotency_key);
    free(j->submitted_by);
    free(j->schedule);
    free(j->trace_id);
    job_clear(j);
}

bool osp_schedule_name_is_valid(const char *name)
{
    if (name == NULL) {
        return false;
    }
    size_t i = 0;
    for (; name[i] != '\0'; i++) {
        char c = name[i];
        if (i == OSP_SCHEDULE_NAME_MAX) {
            return false;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.')) {
            return false;
        }
    }
    return i > 0;
}

bool osp_name_is_valid(const char *name, size_t max)
{
    if (name == NULL) {
        return false;
    }
    size_t i = 0;
    for (; name[i] != '\0'; i++) {
        char c = name[i];
        if (i == max) {
            return false;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return false;
        }
    }
    return i > 0;
}

bool osp_kind_name_is_valid(const char *name)
{
    return osp_name_is_valid(name, OSP_KIND_MAX);
}

/* ---- Encoding ---- */

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static int check_text_field(const char *name, const char *s, struct osp_err *err)
{
    if (!text_is_valid((const uint8_t *)s, strlen(s))) {
        return osp_err_set(err, OSP_EINVAL, "%s: not valid UTF-8", name);
    }
    return 0;
}

int osp_env_encode(const struct osp_job *j, const struct osp_env_keys *keys, struct osp_buf *out,
                   struct osp_err *err)
{
    struct osp_buf body = OSP_BUF_INIT;
    json_t *empty = NULL;
    int rc = 0;
    /* Optional strings may be NULL in a struct the caller filled by hand. */
    const char *texts[4] = {j->idempotency_key, j->submitted_by, j->schedule, j->trace_id};
    static const char *const text_names[4] = {"idempotency_key", "submitted_by", "schedule",
                                              "trace_id"};
    for (size_t i = 0; i < 4; i++) {
        if (texts[i] == NULL) {
            texts[i] = "";
        }
    }

    /* Refuse what the decoder would refuse, so a bad job fails at the producer. */
    if (!osp_id_is_valid(j->id)) {
        rc = osp_err_set(err, OSP_EINVAL, "id: not a valid id");
        goto out;
    }
    if (!osp_kind_name_is_valid(j->kind)) {
        rc = osp_err_set(err, OSP_EINVAL, "kind: invalid kind name");
        goto out;
    }
    if (j->attempt == 0 || j->max_attempts == 0) {
        rc = osp_err_set(err, OSP_EINVAL, "%s: 0 is not allowed",
                         j->attempt == 0 ? "attempt" : "max_attempts");
        goto out;
    }
    if (j->enqueued_at < 0 || j->run_at < 0) {
        rc = osp_err_set(err, OSP_EINVAL, "%s: negative time",
                         j->enqueued_at < 0 ? "enqueued_at" : "run_at");
        goto out;
    }
    for (size_t i = 0; i < 4; i++) {
        rc = check_text_field(text_names[i], texts[i], err);
        if (rc != 0) {
            goto out;
        }
    }

    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, buf_write);
    msgpack_pack_map(&pk, 12);
    pack_cstr(&pk, "id");
    pack_cstr(&pk, j->id);
    pack_cstr(&pk, "kind");
    pack_cstr(&pk, j->kind);
    pack_cstr(&pk, "payload");
    const json_t *payload = j->payload;
    if (payload == NULL) {
        empty = json_object();
        payload = empty;
    }
    rc = osp_mpjson_pack(&pk, payload, err);
    if (rc != 0) {
        char why[sizeof(err->msg)] = "";
        if (err != NULL) {
            memcpy(why, err->msg, sizeof(why));
        }
        rc = osp_err_set(err, OSP_EINVAL, "payload: %.200s", why);
        goto out;
    }
    pack_cstr(&pk, "attempt");
    msgpack_pack_uint32(&pk, j->attempt);
    pack_cstr(&pk, "max_attempts");
    msgpack_pack_uint32(&pk, j->max_attempts);
    pack_cstr(&pk, "timeout_s");
    msgpack_pack_uint32(&pk, j->timeout_s);
    pack_cstr(&pk, "enqueued_at");
    msgpack_pack_int64(&pk, j->enqueued_at);
    pack_cstr(&pk, "run_at");
    msgpack_pack_int64(&pk, j->run_at);
    for (size_t i = 0; i < 4; i++) {
        pack_cstr(&pk, text_names[i]);
        pack_cstr(&pk, texts[i]);
    }

    /* The body map adds one level to the payload's nesting; decoding is bounded by the
     * parser stack, so check the exact bytes the decoder will see. */
    size_t end = 0;
    if (scan(body.data, body.len, body.len, &end) != SCAN_OK) {
        rc = osp_err_set(err, OSP_EINVAL, "payload: nesting too deep for an envelope");
        goto out;
    }

    uint8_t sig[OSP_HMAC_LEN];
    size_t sig_len = 0;
    if (keys != NULL && keys->nkeys > 0 && keys->keys[0] != NULL && keys->key_lens[0] > 0) {
        osp_hmac_sha256(keys->keys[0], keys->key_lens[0], body.data, body.len, sig);
        sig_len = sizeof(sig);
    }
    msgpack_packer_init(&pk, out, buf_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint32(&pk, OSP_ENV_VERSION);
    msgpack_pack_bin(&pk, sig_len);
    msgpack_pack_bin_body(&pk, sig, sig_len);
    msgpack_pack_bin(&pk, body.len);
    msgpack_pack_bin_body(&pk, body.data, body.len);

out:
    json_decref(empty);
    osp_buf_deinit(&body);
    return rc;
}

/* ---- Decoding ---- */

enum field {
    F_ID,
    F_KIND,
    F_PAYLOAD,
    F_ATTEMPT,
    F_MAX_ATTEMPTS,
    F_TIMEOUT_S,
    F_ENQUEUED_AT,
    F_RUN_AT,
    F_IDEMPOTENCY_KEY,
    F_SUBMITTED_BY,
    F_SCHEDULE,
    F_TRACE_ID,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "id",          "kind",   "payload",         "attempt",      "max_attempts", "timeout_s",
    "enqueued_at", "run_at", "idempotency_key", "submitted_by", "schedule",     "trace_id",
};

/* Index the known fields of the body map; unknown keys are skipped (forward compatibility),
 * duplicate known keys are refused (two readers must not see different values). */
static int index_fields(const msgpack_object *map, const msgpack_object *f[F_COUNT],
                        struct osp_err *err)
{
    if (map->type != MSGPACK_OBJECT_MAP) {
        return osp_err_set(err, OSP_EPROTO, "body: not a map");
    }
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR) {
            return osp_err_set(err, OSP_EPROTO, "body: map key is not a string");
        }
        for (size_t k = 0; k < F_COUNT; k++) {
            if (str_is(&kv->key, field_names[k])) {
                if (f[k] != NULL) {
                    return osp_err_set(err, OSP_EPROTO, "body.%s: duplicate", field_names[k]);
                }
                f[k] = &kv->val;
                break;
            }
        }
    }
    return 0;
}

/* A string field as a validated byte range; the bytes point into the input. */
static int field_text(const msgpack_object *o, enum field f, const char **s, size_t *n,
                      struct osp_err *err)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        return osp_err_set(err, OSP_EPROTO, "body.%s: not a string", field_names[f]);
    }
    *s = o->via.str.size ? o->via.str.ptr : "";
    *n = o->via.str.size;
    if (!text_is_valid((const uint8_t *)*s, *n)) {
        return osp_err_set(err, OSP_EINVAL, "body.%s: not valid UTF-8", field_names[f]);
    }
    return 0;
}

/* A non-negative integer no larger than max (the wire's unsigned fields and times). */
static int field_uint(const msgpack_object *o, enum field f, uint64_t max, uint64_t *out,
                      struct osp_err *err)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        return osp_err_set(err, OSP_EINVAL, "body.%s: %" PRId64 " is negative", field_names[f],
                           o->via.i64);
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return osp_err_set(err, OSP_EPROTO, "body.%s: not an integer", field_names[f]);
    }
    if (o->via.u64 > max) {
        return osp_err_set(err, OSP_EINVAL, "body.%s: %" PRIu64 " out of range", field_names[f],
                           o->via.u64);
    }
    *out = o->via.u64;
    return 0;
}

static int field_u32(const msgpack_object *o, enum field f, uint32_t *out, struct osp_err *err)
{
    uint64_t v = 0;
    int rc = field_uint(o, f, UINT32_MAX, &v, err);
    if (rc == 0) {
        *out = (uint32_t)v;
    }
    return rc;
}

/* Times are ms since the epoch: non-negative int64. */
static int field_time(const msgpack_object *o, enum field f, int64_t *out, struct osp_err *err)
{
    uint64_t v = 0;
    int rc = field_uint(o, f, (uint64_t)INT64_MAX, &v, err);
    if (rc == 0) {
        *out = (int64_t)v;
    }
    return rc;
}

/* Read id and kind from indexed fields into fixed buffers; used by decode and peek. */
static int fill_id_kind(const msgpack_object *f[F_COUNT], char id[OSP_ID_LEN + 1],
                        char kind[OSP_KIND_MAX + 1], struct osp_err *err)
{
    const char *s = NULL;
    size_t n = 0;
    if (f[F_ID] == NULL) {
        return osp_err_set(err, OSP_EPROTO, "body.id: missing");
    }
    int rc = field_text(f[F_ID], F_ID, &s, &n, err);
    if (rc != 0) {
        return rc;
    }
    char tmp[OSP_ID_LEN + 1];
    if (n != OSP_ID_LEN) {
        return osp_err_set(err, OSP_EINVAL, "body.id: not a valid id");
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (!osp_id_is_valid(tmp)) {
        return osp_err_set(err, OSP_EINVAL, "body.id: not a valid id");
    }
    memcpy(id, tmp, sizeof(tmp));

    if (f[F_KIND] == NULL) {
        return osp_err_set(err, OSP_EPROTO, "body.kind: missing");
    }
    rc = field_text(f[F_KIND], F_KIND, &s, &n, err);
    if (rc != 0) {
        return rc;
    }
    char ktmp[OSP_KIND_MAX + 1];
    if (n == 0 || n > OSP_KIND_MAX) {
        return osp_err_set(err, OSP_EINVAL, "body.kind: invalid kind name");
    }
    memcpy(ktmp, s, n);
    ktmp[n] = '\0';
    if (!osp_kind_name_is_valid(ktmp)) {
        return osp_err_set(err, OSP_EINVAL, "body.kind: invalid kind name");
    }
    memcpy(kind, ktmp, n + 1);
    return 0;
}

/* Unpack the outer array and read its version. The version is read before the shape is
 * checked, so a future layout is reported as "unknown envelope version N". */
static int parse_outer(const void *data, size_t len, msgpack_unpacked *u, uint64_t *version,
                       struct osp_err *err)
{
    /* A few elements in all: the outer array's, plus room to name a wrong-typed element
     * instead of rejecting the whole shape; bodies are bin, so nothing else nests. */
    int rc = osp_mp_unpack_exact(data, len, OUTER_MAX_ITEMS, u, "envelope", err);
    if (rc != 0) {
        return rc;
    }
    const msgpack_object *o = &u->data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0) {
        return osp_err_set(err, OSP_EPROTO, "envelope: not an array");
    }
    if (o->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return osp_err_set(err, OSP_EPROTO, "envelope.version: not an unsigned integer");
    }
    *version = o->via.array.ptr[0].via.u64;
    return 0;
}

/* The [version, signature, body] shape of a version-1 envelope; sig and body point into u. */
static int outer_parts(const msgpack_unpacked *u, const msgpack_object **sig,
                       const msgpack_object **body, struct osp_err *err)
{
    const msgpack_object *o = &u->data;
    if (o->via.array.size != 3) {
        return osp_err_set(err, OSP_EPROTO, "envelope: not an array of 3");
    }
    if (o->via.array.ptr[1].type != MSGPACK_OBJECT_BIN) {
        return osp_err_set(err, OSP_EPROTO, "envelope.signature: not bin");
    }
    if (o->via.array.ptr[2].type != MSGPACK_OBJECT_BIN) {
        return osp_err_set(err, OSP_EPROTO, "envelope.body: not bin");
    }
    *sig = &o->via.array.ptr[1];
    *body = &o->via.array.ptr[2];
    return 0;
}

static int verify(const struct osp_env_keys *keys, const msgpack_object *sig,
                  const msgpack_object *body, struct osp_err *err)
{
    if (!keys_present(keys)) {
        /* Nothing to verify against: signing is off here, and an unverifiable signature
         * proves nothing either way (a producer may have been given a key first). */
        return 0;
    }
    if (sig->via.bin.size == 0) {
        if (keys->allow_unsigned) {
            return 0;
        }
        return osp_err_set(err, OSP_EVERIFY, "unsigned envelope");
    }
    if (sig->via.bin.size != OSP_HMAC_LEN) {
        return osp_err_set(err, OSP_EVERIFY, "bad signature");
    }
    /* Try every key without stopping at the first match, so timing does not reveal which
     * key (if any) matched. */
    bool ok = false;
    for (size_t i = 0; i < keys->nkeys; i++) {
        if (keys->keys[i] == NULL || keys->key_lens[i] == 0) {
            continue;
        }
        uint8_t mac[OSP_HMAC_LEN];
        osp_hmac_sha256(keys->keys[i], keys->key_lens[i], body->via.bin.ptr, body->via.bin.size,
                        mac);
        ok |= osp_ct_equal(mac, sizeof(mac), sig->via.bin.ptr, sig->via.bin.size);
    }
    if (!ok) {
        return osp_err_set(err, OSP_EVERIFY, "bad signature");
    }
    return 0;
}

static int decode_fields(const msgpack_object *f[F_COUNT], struct osp_job *j, struct osp_err *err)
{
    int rc = 0;
    /* Numeric fields: a u32 (attempt counts must be >= 1) or a time; absent keeps the default. */
    const struct {
        enum field f;
        uint32_t *u32;
        int64_t *time;
        bool nonzero;
    } nums[] = {
        {F_ATTEMPT, &j->attempt, NULL, true},      {F_MAX_ATTEMPTS, &j->max_attempts, NULL, true},
        {F_TIMEOUT_S, &j->timeout_s, NULL, false}, {F_ENQUEUED_AT, NULL, &j->enqueued_at, false},
        {F_RUN_AT, NULL, &j->run_at, false},
    };
    for (size_t i = 0; i < OSP_ARRAY_LEN(nums); i++) {
        enum field fi = nums[i].f;
        if (f[fi] == NULL) {
            continue;
        }
        rc = nums[i].u32 != NULL ? field_u32(f[fi], fi, nums[i].u32, err)
                                 : field_time(f[fi], fi, nums[i].time, err);
        if (rc == 0 && nums[i].nonzero && *nums[i].u32 == 0) {
            rc = osp_err_set(err, OSP_EINVAL, "body.%s: 0 is not allowed", field_names[fi]);
        }
        if (rc != 0) {
            return rc;
        }
    }
    char **texts[4] = {&j->idempotency_key, &j->submitted_by, &j->schedule, &j->trace_id};
    for (size_t i = 0; i < 4; i++) {
        enum field fi = (enum field)(F_IDEMPOTENCY_KEY + i);
        const char *s = "";
        size_t n = 0;
        if (f[fi] != NULL) {
            rc = field_text(f[fi], fi, &s, &n, err);
            if (rc != 0) {
                return rc;
            }
        }
        *texts[i] = osp_xstrndup(s, n);
    }
    if (f[F_PAYLOAD] == NULL) {
        j->payload = json_object();
        return 0;
    }
    struct osp_err perr = {0, ""};
    j->payload = osp_mpjson_to_json(f[F_PAYLOAD], &perr);
    if (j->payload == NULL) {
        return osp_err_set(err, perr.code, "body.payload: %.200s", perr.msg);
    }
    return 0;
}

int osp_env_decode(const void *data, size_t len, const struct osp_env_keys *keys, size_t max_bytes,
                   struct osp_job *j, struct osp_err *err)
{
    /* j is an output: whatever it held before is overwritten, not freed. */
    job_clear(j);
    msgpack_unpacked outer;
    msgpack_unpacked inner;
    msgpack_unpacked_init(&outer);
    msgpack_unpacked_init(&inner);
    const msgpack_object *sig = NULL;
    const msgpack_object *body = NULL;
    const msgpack_object *f[F_COUNT] = {NULL};
    uint64_t version = 0;
    int rc = 0;

    if (max_bytes == 0) {
        max_bytes = OSP_ENV_MAX_BYTES;
    }
    if (len > max_bytes) {
        rc = osp_err_set(err, OSP_ETOOBIG, "envelope of %zu bytes exceeds the limit of %zu", len,
                         max_bytes);
        goto out;
    }
    rc = parse_outer(data, len, &outer, &version, err);
    if (rc != 0) {
        goto out;
    }
    if (version != OSP_ENV_VERSION) {
        rc = osp_err_set(err, OSP_EINVAL, "unknown envelope version %" PRIu64, version);
        goto out;
    }
    rc = outer_parts(&outer, &sig, &body, err);
    if (rc != 0) {
        goto out;
    }
    rc = verify(keys, sig, body, err);
    if (rc != 0) {
        goto out;
    }
    rc = osp_mp_unpack_exact(body->via.bin.ptr, body->via.bin.size, body->via.bin.size, &inner,
                             "body", err);
    if (rc != 0) {
        goto out;
    }
    rc = index_fields(&inner.data, f, err);
    if (rc != 0) {
        goto out;
    }
    /* id and kind first: once known, a poison message can still be attributed. */
    rc = fill_id_kind(f, j->id, j->kind, err);
    if (rc != 0) {
        goto out;
    }
    rc = decode_fields(f, j, err);

out:
    if (rc != 0) {
        /* Keep the attribution, drop everything owned. */
        char id[OSP_ID_LEN + 1];
        char kind[OSP_KIND_MAX + 1];
        memcpy(id, j->id, sizeof(id));
        memcpy(kind, j->kind, sizeof(kind));
        osp_job_deinit(j);
        memcpy(j->id, id, sizeof(id));
        memcpy(j->kind, kind, sizeof(kind));
    }
    msgpack_unpacked_destroy(&inner);
    msgpack_unpacked_destroy(&outer);
    return rc;
}

int osp_env_peek(const void *data, size_t len, char kind[OSP_KIND_MAX + 1], char id[OSP_ID_LEN + 1])
{
    msgpack_unpacked outer;
    msgpack_unpacked inner;
    msgpack_unpacked_init(&outer);
    msgpack_unpacked_init(&inner);
    const msgpack_object *sig = NULL;
    const msgpack_object *body = NULL;
    const msgpack_object *f[F_COUNT] = {NULL};
    uint64_t version = 0;
    char k[OSP_KIND_MAX + 1] = "";
    char i[OSP_ID_LEN + 1] = "";

    kind[0] = '\0';
    id[0] = '\0';
    /* The version is not checked: routing an envelope back to its queue does not need it,
     * and the worker that fetches it dead-letters unknown versions with a reason. */
    int rc = parse_outer(data, len, &outer, &version, NULL);
    if (rc == 0) {
        rc = outer_parts(&outer, &sig, &body, NULL);
    }
    if (rc == 0 && body == NULL) {
        rc = OSP_EPROTO; /* outer_parts sets body on success; never read an unset one */
    }
    if (rc == 0 && body != NULL) {
        rc = osp_mp_unpack_exact(body->via.bin.ptr, body->via.bin.size, body->via.bin.size, &inner,
                                 "body", NULL);
    }
    if (rc == 0) {
        rc = index_fields(&inner.data, f, NULL);
    }
    if (rc == 0) {
        rc = fill_id_kind(f, i, k, NULL);
    }
    if (rc == 0) {
        memcpy(kind, k, sizeof(k));
        memcpy(id, i, sizeof(i));
    }
    msgpack_unpacked_destroy(&inner);
    msgpack_unpacked_destroy(&outer);
    return rc == 0 ? 0 : OSP_EPROTO;
}

/* ---- Dead letters ---- */

void osp_dead_encode(const char *reason, int64_t failed_at_ms, const char *job_id, const void *env,
                     size_t env_len, struct osp_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_write);
    msgpack_pack_array(&pk, 5);
    pack_cstr(&pk, "dead");
    pack_cstr(&pk, reason != NULL ? reason : "");
    msgpack_pack_int64(&pk, failed_at_ms);
    /* Only a valid id is recorded, so the record always decodes. */
    pack_cstr(&pk, osp_id_is_valid(job_id) ? job_id : "");
    msgpack_pack_bin(&pk, env_len);
    msgpack_pack_bin_body(&pk, env_len > 0 ? env : "", env_len);
}

int osp_dead_decode(const void *data, size_t len, struct osp_dead *d, struct osp_err *err)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    memset(d, 0, sizeof(*d));
    /* Five elements in all: the record's array and nothing nested. */
    int rc = osp_mp_unpack_exact(data, len, 5, &u, "dead record", err);
    if (rc != 0) {
        goto out;
    }
    const msgpack_object *o = &u.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 5 ||
        !str_is(&o->via.array.ptr[0], "dead")) {
        rc = osp_err_set(err, OSP_EPROTO, "dead record: not [\"dead\", ...] of 5");
        goto out;
    }
    const msgpack_object *reason = &o->via.array.ptr[1];
    const msgpack_object *at = &o->via.array.ptr[2];
    const msgpack_object *jid = &o->via.array.ptr[3];
    const msgpack_object *env = &o->via.array.ptr[4];
    if (reason->type != MSGPACK_OBJECT_STR) {
        rc = osp_err_set(err, OSP_EPROTO, "dead.reason: not a string");
        goto out;
    }
    if (at->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        d->failed_at_ms = at->via.i64;
    } else if (at->type == MSGPACK_OBJECT_POSITIVE_INTEGER && at->via.u64 <= (uint64_t)INT64_MAX) {
        d->failed_at_ms = (int64_t)at->via.u64;
    } else {
        rc = osp_err_set(err, OSP_EPROTO, "dead.failed_at: not an int64");
        goto out;
    }
    if (jid->type != MSGPACK_OBJECT_STR ||
        (jid->via.str.size != 0 && jid->via.str.size != OSP_ID_LEN)) {
        rc = osp_err_set(err, OSP_EPROTO, "dead.job_id: not an id");
        goto out;
    }
    if (jid->via.str.size == OSP_ID_LEN) {
        memcpy(d->job_id, jid->via.str.ptr, OSP_ID_LEN);
        d->job_id[OSP_ID_LEN] = '\0';
        if (!osp_id_is_valid(d->job_id)) {
            rc = osp_err_set(err, OSP_EPROTO, "dead.job_id: not an id");
            goto out;
        }
    }
    if (env->type != MSGPACK_OBJECT_BIN) {
        rc = osp_err_set(err, OSP_EPROTO, "dead.envelope: not bin");
        goto out;
    }
    /* Reasons are ours, but the record came from Redis: keep it a clean C string. */
    if (reason->via.str.size > 0 &&
        memchr(reason->via.str.ptr, '\0', reason->via.str.size) != NULL) {
        rc = osp_err_set(err, OSP_EPROTO, "dead.reason: contains NUL");
        goto out;
    }
    d->reason = osp_xstrndup(reason->via.str.size ? reason->via.str.ptr : "", reason->via.str.size);
    osp_buf_append(&d->env, env->via.bin.ptr, env->via.bin.size);

out:
    if (rc != 0) {
        osp_dead_deinit(d);
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

void osp_dead_deinit(struct osp_dead *d)
{
    free(d->reason);
    osp_buf_deinit(&d->env);
    memset(d, 0, sizeof(*d));
}
