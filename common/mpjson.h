/* SPDX-License-Identifier: MIT */
/* mpjson.h — conversion between msgpack objects and jansson values.
 * Payloads arrive as JSON over the API and travel as msgpack; kinds see json_t.
 * Conversion is bounded: nesting deeper than OSP_MPJSON_MAX_DEPTH fails with OSP_EINVAL,
 * map keys must be strings, strings must be valid UTF-8, bin/ext are rejected (payloads are
 * JSON documents), unsigned integers above INT64_MAX are rejected, NaN/Inf floats are rejected. */
#ifndef OSP_MPJSON_H
#define OSP_MPJSON_H

#include "common/err.h"

#include <jansson.h>
#include <msgpack.h>

#define OSP_MPJSON_MAX_DEPTH 32

/* Append the msgpack encoding of v to pk. Returns 0 or OSP_EINVAL (too deep). */
int osp_mpjson_pack(msgpack_packer *pk, const json_t *v, struct osp_err *err);
/* Convert o to a new json_t (owned by the caller) or NULL with err filled. */
json_t *osp_mpjson_to_json(const msgpack_object *o, struct osp_err *err);

#endif
