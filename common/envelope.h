/* SPDX-License-Identifier: MIT */
/* envelope.h — the wire format of a job on a Redis list (DESIGN.md §2).
 *
 *   item = msgpack array [version:uint, signature:bin, body:bin]
 *   body = msgpack map {id, kind, payload, attempt, max_attempts, timeout_s, enqueued_at,
 *                       run_at, idempotency_key, submitted_by, schedule, trace_id}
 *
 * signature = HMAC-SHA256(key, body bytes), or empty when signing is off. Decoding verifies
 * the signature over the exact body bytes BEFORE the body is parsed. Unknown body fields are
 * ignored; unknown versions, bad signatures, truncation, trailing bytes, wrong types and
 * oversize input are errors with a reason, never a crash. Strings absent on the wire decode
 * as "" (never NULL). */
#ifndef OSP_ENVELOPE_H
#define OSP_ENVELOPE_H

#include "common/buf.h"
#include "common/err.h"
#include "common/id.h"

#include <jansson.h>
#include <msgpack.h>

#define OSP_ENV_VERSION   1
#define OSP_ENV_MAX_BYTES (1024 * 1024) /* default size limit of one envelope */
#define OSP_KIND_MAX      32            /* kind names: [a-z0-9_-]{1,32} */

struct osp_job {
    char id[OSP_ID_LEN + 1];
    char kind[OSP_KIND_MAX + 1];
    json_t *payload;       /* owned; never NULL after decode (an empty object if absent) */
    uint32_t attempt;      /* 1-based number of this delivery's attempt */
    uint32_t max_attempts; /* >= 1 */
    uint32_t timeout_s;    /* hard deadline of one attempt; 0 = the kind's default */
    int64_t enqueued_at;   /* ms since epoch, first submission */
    int64_t run_at;        /* ms since epoch; 0 = now */
    char *idempotency_key; /* owned, "" when none */
    char *submitted_by;    /* owned, "" when none */
    char *schedule;        /* owned, name of the schedule that fired it, "" when none */
    char *trace_id;        /* owned, "" when none */
};

/* Signing keys: `keys[0]` signs; every non-empty key is accepted when verifying (rotation).
 * With nkeys == 0, envelopes are written unsigned and unsigned ones are accepted;
 * with keys set, unsigned envelopes are rejected unless allow_unsigned is true. */
struct osp_env_keys {
    const uint8_t *keys[2];
    size_t key_lens[2];
    size_t nkeys;
    bool allow_unsigned;
};

/* Initialise j with defaults (attempt 1, max_attempts 1, strings "", payload {}). */
void osp_job_init(struct osp_job *j);
/* Free what j owns and reset it to the osp_job_init state. */
void osp_job_deinit(struct osp_job *j);
/* True when name matches [a-z0-9_-]{1,max}: the one grammar of the names jobs carry and
 * operators write (kinds, targets, benchmark lanes, campaign steps). NULL is not valid; at
 * most max + 1 bytes are read. */
bool osp_name_is_valid(const char *name, size_t max);
/* True when name matches [a-z0-9_-]{1,32}. */
bool osp_kind_name_is_valid(const char *name);
/* Schedule names (the envelope's `schedule`, the API's /v1/schedules/{name}, opspoolctl's
 * schedule commands): [A-Za-z0-9_.-]{1,64}. */
#define OSP_SCHEDULE_NAME_MAX 64
bool osp_schedule_name_is_valid(const char *name);

/* Append the encoded envelope of j to out. Returns 0 or OSP_EINVAL (payload not encodable,
 * err says why). */
int osp_env_encode(const struct osp_job *j, const struct osp_env_keys *keys, struct osp_buf *out,
                   struct osp_err *err);

/* Decode and verify. On success fills j (call osp_job_deinit later) and returns 0. On failure
 * returns OSP_EPROTO (malformed), OSP_EVERIFY (signature), OSP_ETOOBIG, or OSP_EINVAL
 * (unknown version, bad field), and err->msg is a short reason fit for a dead letter.
 * When the body could be parsed far enough, j->id and j->kind are filled even on failure
 * (so a poison message can still be attributed); otherwise they are "". */
int osp_env_decode(const void *data, size_t len, const struct osp_env_keys *keys, size_t max_bytes,
                   struct osp_job *j, struct osp_err *err);

/* Read kind and id from an envelope without verifying its signature (the reaper routes
 * envelopes back to their queue; workers verify on fetch). 0, or OSP_EPROTO when they cannot
 * be read; kind and id are "" on failure. */
int osp_env_peek(const void *data, size_t len, char kind[OSP_KIND_MAX + 1],
                 char id[OSP_ID_LEN + 1]);

/* Dead-letter record stored on {prefix}:dead:<kind>:
 *   msgpack array ["dead", reason:str, failed_at_ms:int, job_id:str, envelope:bin] */
void osp_dead_encode(const char *reason, int64_t failed_at_ms, const char *job_id, const void *env,
                     size_t env_len, struct osp_buf *out);
struct osp_dead {
    char *reason; /* owned */
    int64_t failed_at_ms;
    char job_id[OSP_ID_LEN + 1]; /* "" when the envelope had no readable id */
    struct osp_buf env;          /* owned copy of the original envelope bytes */
};
int osp_dead_decode(const void *data, size_t len, struct osp_dead *d, struct osp_err *err);
void osp_dead_deinit(struct osp_dead *d);

/* Unpack exactly one msgpack value filling [data, data + len) into u (msgpack_unpacked_init
 * done by the caller; destroy it afterwards either way). Before msgpack-c sees the bytes, a
 * non-allocating scan proves they hold one complete value with at most 32 nested containers
 * whose element counts fit in the input and sum to at most max_items: msgpack-c allocates
 * container storage from the header counts before reading elements, so unchecked, a 5-byte
 * header asks for ~100 GB. Use this for every msgpack buffer from outside the process.
 * 0, or OSP_EPROTO with err (may be NULL) naming `what` and the problem. */
int osp_mp_unpack_exact(const void *data, size_t len, uint64_t max_items, msgpack_unpacked *u,
                        const char *what, struct osp_err *err);

#endif
