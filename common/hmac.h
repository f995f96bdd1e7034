/* SPDX-License-Identifier: MIT */
/* hmac.h — HMAC-SHA256 (OpenSSL libcrypto), SHA-256 and constant-time comparison. */
#ifndef OSP_HMAC_H
#define OSP_HMAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OSP_HMAC_LEN 32

void osp_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                     uint8_t out[OSP_HMAC_LEN]);
void osp_sha256(const void *data, size_t len, uint8_t out[32]);
/* Constant-time equality of two byte strings (length mismatch → false, still constant in a). */
bool osp_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void osp_hex(const uint8_t *in, size_t n, char *out);

#endif
