/* SPDX-License-Identifier: MIT */
/* hmac.c — HMAC-SHA256 and SHA-256 through OpenSSL's one-shot APIs, constant-time comparison
 * and hex (contract: hmac.h). These cannot fail for valid arguments, so a libcrypto failure
 * is treated as a broken invariant rather than a recoverable error. */
#include "common/hmac.h"
#include "common/base.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

void osp_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                     uint8_t out[OSP_HMAC_LEN])
{
    /* OpenSSL wants non-NULL pointers even for empty inputs. */
    static const uint8_t empty[1] = {0};
    unsigned int out_len = 0;
    OSP_ASSERT(key_len <= INT32_MAX);
    const unsigned char *md = HMAC(EVP_sha256(), key != NULL ? key : empty, (int)key_len,
                                   data != NULL ? data : empty, len, out, &out_len);
    OSP_ASSERT(md != NULL && out_len == OSP_HMAC_LEN);
}

void osp_sha256(const void *data, size_t len, uint8_t out[32])
{
    static const uint8_t empty[1] = {0};
    const unsigned char *md = SHA256(data != NULL ? data : empty, len, out);
    OSP_ASSERT(md != NULL);
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
