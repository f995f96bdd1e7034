/* SPDX-License-Identifier: MIT */
/* hmac.c — HMAC-SHA256 (RFC 2104) over OpenSSL's SHA-256 block functions, SHA-256,
 * constant-time comparison and hex (contract: hmac.h).
 *
 * Why not HMAC()/EVP: in OpenSSL 3 the first EVP or one-shot call loads the default provider
 * and builds its method store, ~130 KiB of heap that stays for the life of the process. Every
 * worker verifies envelope signatures, so that was a tenth of an idle worker's private memory
 * (docs/decisions/0009-ordinary-worker-link.md). SHA256_Init/Update/Final are the same
 * implementation without the provider machinery; they are deprecated in OpenSSL 3's headers
 * but kept in its ABI, and RFC 4231's vectors pin the result (tests/unit/common/test_hmac.c). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "common/hmac.h"
#include "common/base.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

#define HMAC_BLOCK 64 /* SHA-256's block size */

void osp_sha256(const void *data, size_t len, uint8_t out[32])
{
    SHA256_CTX c;
    OSP_ASSERT(SHA256_Init(&c) == 1);
    if (len > 0) {
        OSP_ASSERT(SHA256_Update(&c, data, len) == 1);
    }
    OSP_ASSERT(SHA256_Final(out, &c) == 1);
    OPENSSL_cleanse(&c, sizeof(c));
}

void osp_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                     uint8_t out[OSP_HMAC_LEN])
{
    uint8_t k0[HMAC_BLOCK] = {0};
    if (key_len > HMAC_BLOCK) {
        osp_sha256(key, key_len, k0); /* a long key is replaced by its digest */
    } else if (key_len > 0) {
        memcpy(k0, key, key_len);
    }
    uint8_t pad[HMAC_BLOCK], inner[32];
    SHA256_CTX c;
    for (size_t i = 0; i < HMAC_BLOCK; i++) {
        pad[i] = k0[i] ^ 0x36;
    }
    OSP_ASSERT(SHA256_Init(&c) == 1 && SHA256_Update(&c, pad, sizeof(pad)) == 1);
    if (len > 0) {
        OSP_ASSERT(SHA256_Update(&c, data, len) == 1);
    }
    OSP_ASSERT(SHA256_Final(inner, &c) == 1);
    for (size_t i = 0; i < HMAC_BLOCK; i++) {
        pad[i] = k0[i] ^ 0x5c;
    }
    OSP_ASSERT(SHA256_Init(&c) == 1 && SHA256_Update(&c, pad, sizeof(pad)) == 1 &&
               SHA256_Update(&c, inner, sizeof(inner)) == 1 && SHA256_Final(out, &c) == 1);
    OPENSSL_cleanse(k0, sizeof(k0));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(inner, sizeof(inner));
    OPENSSL_cleanse(&c, sizeof(c));
}

bool osp_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    /* On a length mismatch, compare a with itself so the time taken depends only on alen
     * (the secret side is `a` by convention), then report inequality. */
    if (alen != blen) {
        if (alen > 0) {
            (void)CRYPTO_memcmp(a, a, alen);
        }
        return false;
    }
    if (alen == 0) {
        return true;
    }
    return CRYPTO_memcmp(a, b, alen) == 0;
}

void osp_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}
