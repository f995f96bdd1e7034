/* SPDX-License-Identifier: MIT */
/* test_hmac.c — HMAC-SHA256 against the RFC 4231 vectors (test cases 1-7), SHA-256 against
 * FIPS 180-2 examples, constant-time comparison and hex encoding. */
#include "common/hmac.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void hmac_hex(const void *key, size_t key_len, const void *data, size_t len, char *out)
{
    uint8_t mac[OSP_HMAC_LEN];
    osp_hmac_sha256(key, key_len, data, len, mac);
    osp_hex(mac, sizeof(mac), out);
}

static void test_rfc4231_case1(void **state)
{
    (void)state;
    uint8_t key[20];
    char hex[2 * OSP_HMAC_LEN + 1];
    memset(key, 0x0b, sizeof(key));
    hmac_hex(key, sizeof(key), "Hi There", 8, hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static void test_rfc4231_case2(void **state)
{
    (void)state;
    char hex[2 * OSP_HMAC_LEN + 1];
    const char *data = "what do ya want for nothing?";
    hmac_hex("Jefe", 4, data, strlen(data), hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_rfc4231_case3(void **state)
{
    (void)state;
    uint8_t key[20];
    uint8_t data[50];
    char hex[2 * OSP_HMAC_LEN + 1];
    memset(key, 0xaa, sizeof(key));
    memset(data, 0xdd, sizeof(data));
    hmac_hex(key, sizeof(key), data, sizeof(data), hex);
    assert_string_equal(hex, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

static void test_rfc4231_case4(void **state)
{
    (void)state;
    uint8_t key[25];
    uint8_t data[50];
    char hex[2 * OSP_HMAC_LEN + 1];
    for (size_t i = 0; i < sizeof(key); i++) {
        key[i] = (uint8_t)(i + 1);
    }
    memset(data, 0xcd, sizeof(data));
    hmac_hex(key, sizeof(key), data, sizeof(data), hex);
    assert_string_equal(hex, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

static void test_rfc4231_case5_truncated(void **state)
{
    (void)state;
    uint8_t key[20];
    uint8_t mac[OSP_HMAC_LEN];
    char hex[2 * 16 + 1];
    memset(key, 0x0c, sizeof(key));
    osp_hmac_sha256(key, sizeof(key), "Test With Truncation", 20, mac);
    osp_hex(mac, 16, hex); /* the RFC gives the leftmost 128 bits */
    assert_string_equal(hex, "a3b6167473100ee06e0c796c2955552b");
}

static void test_rfc4231_case6_long_key(void **state)
{
    (void)state;
    uint8_t key[131];
    char hex[2 * OSP_HMAC_LEN + 1];
    const char *data = "Test Using Larger Than Block-Size Key - Hash Key First";
    memset(key, 0xaa, sizeof(key));
    hmac_hex(key, sizeof(key), data, strlen(data), hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_rfc4231_case7_long_key_and_data(void **state)
{
    (void)state;
    uint8_t key[131];
    char hex[2 * OSP_HMAC_LEN + 1];
    const char *data = "This is a test using a larger than block-size key and a larger than "
                       "block-size data. The key needs to be hashed before being used by the "
                       "HMAC algorithm.";
    memset(key, 0xaa, sizeof(key));
    hmac_hex(key, sizeof(key), data, strlen(data), hex);
    assert_string_equal(hex, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

static void test_hmac_empty_inputs(void **state)
{
    (void)state;
    char hex[2 * OSP_HMAC_LEN + 1];
    /* HMAC-SHA256 with empty key and empty message (a well-known value). */
    hmac_hex(NULL, 0, NULL, 0, hex);
    assert_string_equal(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void test_sha256(void **state)
{
    (void)state;
    uint8_t md[32];
    char hex[65];
    osp_sha256("abc", 3, md);
    osp_hex(md, sizeof(md), hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    osp_sha256(NULL, 0, md);
    osp_hex(md, sizeof(md), hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(osp_ct_equal("abcdef", 6, "abcdef", 6));
    assert_false(osp_ct_equal("abcdef", 6, "abcdeg", 6));
    assert_false(osp_ct_equal("bbcdef", 6, "abcdef", 6));
    assert_false(osp_ct_equal("abcdef", 6, "abcde", 5));
    assert_false(osp_ct_equal("abc", 3, "abcdef", 6));
    assert_false(osp_ct_equal("", 0, "a", 1));
    assert_true(osp_ct_equal("", 0, "", 0));
    assert_true(osp_ct_equal(NULL, 0, NULL, 0));
}

static void test_hex(void **state)
{
    (void)state;
    const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char out[2 * sizeof(in) + 1];
    memset(out, 'x', sizeof(out));
    osp_hex(in, sizeof(in), out);
    assert_string_equal(out, "00017f80abff");
    char empty[1] = {'x'};
    osp_hex(in, 0, empty);
    assert_string_equal(empty, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231_case1),
        cmocka_unit_test(test_rfc4231_case2),
        cmocka_unit_test(test_rfc4231_case3),
        cmocka_unit_test(test_rfc4231_case4),
        cmocka_unit_test(test_rfc4231_case5_truncated),
        cmocka_unit_test(test_rfc4231_case6_long_key),
        cmocka_unit_test(test_rfc4231_case7_long_key_and_data),
        cmocka_unit_test(test_hmac_empty_inputs),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
