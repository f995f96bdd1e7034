/* SPDX-License-Identifier: MIT */
/* test_seedgen.c — the seed generator (jobs/seed/seedgen.h): determinism, chunking
 * independence in both COPY formats, golden rows (a format change must bump
 * SEED_GEN_VERSION), text and binary carrying the same values, the pgbench layout, unique url
 * codes, and distribution sanity with fixed sample counts. No servers. */
#include "jobs/seed/seedfmt.h"
#include "jobs/seed/seedgen.h"

#include <openssl/evp.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void gen_init(struct seed_gen *g, uint64_t seed, uint32_t scale, double zipf_s)
{
    struct seed_params p = {
        .seed = seed, .scale = scale, .zipf_s = zipf_s, .layout = SEED_LAYOUT_WORKLOAD};
    seed_gen_init(g, &p);
}

/* SHA-256 hex of all the layout's tables generated in format f with chunk size cap. */
static void digest_all(const struct seed_gen *g, enum seed_format f, size_t cap, char out[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *buf = malloc(cap);
    unsigned char d[32];
    unsigned n = 0;
    assert_non_null(md);
    assert_non_null(buf);
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    const enum seed_table *tables;
    size_t ntables = seed_layout_tables(g->p.layout, &tables);
    for (size_t k = 0; k < ntables; k++) {
        enum seed_table t = tables[k];
        uint64_t row = 0;
        /* Bounded: every call advances by at least one row. */
        for (uint64_t i = 0; i <= g->rows[t] && row < g->rows[t]; i++) {
            size_t len = seed_gen_fill(g, t, f, &row, buf, cap);
            assert_true(len > 0);
            EVP_DigestUpdate(md, buf, len);
        }
        assert_int_equal(row, g->rows[t]);
    }
    EVP_DigestFinal_ex(md, d, &n);
    for (unsigned i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
    EVP_MD_CTX_free(md);
    free(buf);
}

static void row_text(const struct seed_gen *g, enum seed_table t, uint64_t row, char *out)
{
    size_t n = seed_gen_row(g, t, SEED_FMT_TEXT, row, out);
    assert_true(n > 0 && n < SEED_ROW_MAX);
    out[n] = '\0';
}

static void test_counts(void **state)
{
    (void)state;
    struct seed_gen g;
    gen_init(&g, 1, 3, 0.0);
    assert_int_equal(g.rows[SEED_USERS], 3000);
    assert_int_equal(g.rows[SEED_URLS], 30000);
    assert_int_equal(g.rows[SEED_CLICKS], 300000);
    assert_string_equal(seed_table_name(SEED_CLICKS), "clicks");
    assert_string_equal(seed_table_columns(SEED_USERS), "id, email, name, created_at");
}

/* Same parameters give the same bytes whatever the chunk size; other seeds differ. */
static void test_determinism(void **state)
{
    (void)state;
    struct seed_gen a, b, c, z;
    char da[65], db[65], dc[65], dz[65];
    gen_init(&a, 42, 1, 0.0);
    gen_init(&b, 42, 1, 0.0);
    gen_init(&c, 43, 1, 0.0);
    gen_init(&z, 42, 1, 1.1);
    for (int f = SEED_FMT_TEXT; f <= SEED_FMT_BINARY; f++) {
        digest_all(&a, (enum seed_format)f, 1u << 20, da);
        digest_all(&b, (enum seed_format)f, SEED_ROW_MAX, db); /* one row per chunk */
        digest_all(&c, (enum seed_format)f, 1u << 16, dc);
        digest_all(&z, (enum seed_format)f, 1u << 16, dz);
        assert_string_equal(da, db);
        assert_string_not_equal(da, dc);
        assert_string_not_equal(da, dz);
    }
    /* A row is the same computed alone or late: counter-based, no stream state. */
    char r1[SEED_ROW_MAX + 1], r2[SEED_ROW_MAX + 1];
    row_text(&a, SEED_CLICKS, 99999, r1);
    for (uint64_t i = 0; i < 1000; i++) {
        seed_gen_row(&a, SEED_CLICKS, SEED_FMT_BINARY, i, r2);
    }
    row_text(&b, SEED_CLICKS, 99999, r2);
    assert_string_equal(r1, r2);
}

/* The exact text of the first rows: locks the format and the mixing function. If this test
 * fails after an intended change, bump SEED_GEN_VERSION and update the strings. */
static void test_golden_rows(void **state)
{
    (void)state;
    struct seed_gen g;
    char r[SEED_ROW_MAX + 1];
    gen_init(&g, 42, 1, 0.0);
    row_text(&g, SEED_USERS, 0, r);
    assert_string_equal(r, "1\tcarla.kernighan1@example.com\tCarla Kernighan\t"
                           "2024-06-13 14:56:15+00\n");
    row_text(&g, SEED_URLS, 0, r);
    assert_string_equal(r, "1\t0LjJXAH5D\thttps://cdn.example.com/watch/71982\t612\t"
                           "2024-07-17 06:28:14+00\t0\n");
    row_text(&g, SEED_CLICKS, 0, r);
    assert_string_equal(r, "1\t9945\t2024-11-11 18:17:38+00\t\\N\t"
                           "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\n");
    assert_int_equal(SEED_GEN_VERSION, 2);
}

/* Reads a big-endian integer of n bytes. */
static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* The binary tuple of the first click carries the golden text row's values: id 1, url 9945,
 * 2024-11-11 18:17:38 UTC, NULL referrer, the Firefox user agent. */
static void test_binary_row(void **state)
{
    (void)state;
    struct seed_gen g;
    unsigned char r[SEED_ROW_MAX];
    static const char ua[] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0";
    gen_init(&g, 42, 1, 0.0);
    size_t n = seed_gen_row(&g, SEED_CLICKS, SEED_FMT_BINARY, 0, (char *)r);
    assert_int_equal(n, 2 + 12 + 12 + 12 + 4 + 4 + strlen(ua));
    assert_int_equal(be(r, 2), 5);                    /* field count */
    assert_int_equal(be(r + 2, 4), 8);                /* id: int8 */
    assert_int_equal(be(r + 6, 8), 1);
    assert_int_equal(be(r + 14, 4), 8);               /* url_id */
    assert_int_equal(be(r + 18, 8), 9945);
    assert_int_equal(be(r + 26, 4), 8);               /* ts: microseconds since 2000 */
    assert_int_equal(be(r + 30, 8), (1731349058ULL - 946684800ULL) * 1000000ULL);
    assert_int_equal(be(r + 38, 4), 0xffffffffULL);   /* referrer NULL */
    assert_int_equal(be(r + 42, 4), strlen(ua));
    assert_memory_equal(r + 46, ua, strlen(ua));
    /* A users row: the email is a composite field whose length is patched in afterwards. */
    n = seed_gen_row(&g, SEED_USERS, SEED_FMT_BINARY, 0, (char *)r);
    static const char email[] = "carla.kernighan1@example.com";
    assert_int_equal(be(r, 2), 4);
    assert_int_equal(be(r + 14, 4), strlen(email));
    assert_memory_equal(r + 18, email, strlen(email));
    assert_true(n < SEED_ROW_MAX);
}

/* pgbench layout: pgbench -i's tables and counts, full-width fillers, accounts grouped by
 * branch 100,000 at a time. */
static void test_pgbench_layout(void **state)
{
    (void)state;
    struct seed_gen g;
    struct seed_params p = {.seed = 3, .scale = 2, .layout = SEED_LAYOUT_PGBENCH};
    char r[SEED_ROW_MAX + 1];
    char d1[65], d2[65];
    seed_gen_init(&g, &p);
    assert_int_equal(g.rows[SEED_PGB_BRANCHES], 2);
    assert_int_equal(g.rows[SEED_PGB_TELLERS], 20);
    assert_int_equal(g.rows[SEED_PGB_ACCOUNTS], 200000);
    assert_int_equal(g.rows[SEED_CLICKS], 0);
    const enum seed_table *tables;
    assert_int_equal(seed_layout_tables(SEED_LAYOUT_PGBENCH, &tables), 3);
    assert_int_equal(tables[0], SEED_PGB_BRANCHES);
    assert_string_equal(seed_table_name(SEED_PGB_ACCOUNTS), "pgbench_accounts");
    assert_string_equal(seed_table_columns(SEED_PGB_ACCOUNTS), "aid, bid, abalance, filler");
    row_text(&g, SEED_PGB_ACCOUNTS, 100000, r);
    assert_memory_equal(r, "100001\t2\t0\t", 11);
    assert_int_equal(strlen(r), 11 + 84 + 1);
    row_text(&g, SEED_PGB_BRANCHES, 1, r);
    assert_memory_equal(r, "2\t0\t", 4);
    assert_int_equal(strlen(r), 4 + 88 + 1);
    row_text(&g, SEED_PGB_TELLERS, 19, r);
    assert_memory_equal(r, "20\t2\t0\t", 7);
    size_t n = seed_gen_row(&g, SEED_PGB_ACCOUNTS, SEED_FMT_BINARY, 0, r);
    assert_int_equal(n, 2 + 8 + 8 + 8 + 4 + 84);
    digest_all(&g, SEED_FMT_BINARY, 1u << 16, d1);
    digest_all(&g, SEED_FMT_BINARY, SEED_ROW_MAX, d2);
    assert_string_equal(d1, d2);
}

static int cmp_code(const void *a, const void *b)
{
    return memcmp(a, b, 10);
}

static void test_url_codes_unique(void **state)
{
    (void)state;
    struct seed_gen g;
    enum { N = 200000 };
    char(*codes)[10] = malloc(sizeof(*codes) * N);
    assert_non_null(codes);
    gen_init(&g, 7, 20, 0.0);
    for (uint64_t i = 0; i < N; i++) {
        seed_gen_url_code(&g, i + 1, codes[i]);
        assert_int_equal(strlen(codes[i]), 9);
    }
    qsort(codes, N, sizeof(*codes), cmp_code);
    for (size_t i = 1; i < N; i++) {
        assert_true(memcmp(codes[i - 1], codes[i], 10) != 0);
    }
    free(codes);
}

/* Every generated line has the right number of fields and no characters COPY would need
 * escaped; timestamps sit inside 2024 and a click never precedes its url. */
static void test_row_shape(void **state)
{
    (void)state;
    struct seed_gen g;
    char r[SEED_ROW_MAX + 1];
    static const int fields[] = {4, 6, 5};
    gen_init(&g, 5, 1, 1.0);
    for (int t = SEED_USERS; t <= SEED_CLICKS; t++) {
        for (uint64_t i = 0; i < 5000; i++) {
            row_text(&g, (enum seed_table)t, i, r);
            int tabs = 0;
            for (char *p = r; *p != '\0'; p++) {
                tabs += *p == '\t';
                assert_true(*p == '\t' || *p == '\n' || (*p >= ' ' && *p < 127));
                assert_true(*p != '\n' || p[1] == '\0');
            }
            assert_int_equal(tabs, fields[t] - 1);
            assert_non_null(strstr(r, "\t2024-"));
        }
    }
    for (uint64_t i = 0; i < 2000; i++) {
        char u[SEED_ROW_MAX + 1];
        uint64_t url = seed_gen_click_url(&g, i);
        row_text(&g, SEED_CLICKS, i, r);
        row_text(&g, SEED_URLS, url - 1, u);
        const char *cts = strchr(strchr(r, '\t') + 1, '\t') + 1;    /* clicks.ts */
        const char *uts = u;
        for (int f = 0; f < 4; f++) {
            uts = strchr(uts, '\t') + 1; /* urls.created_at is the fifth field */
        }
        assert_true(strncmp(cts, uts, 19) >= 0);
    }
}

/* Fixed counts: 10,000 urls over 1,000 users, 100,000 clicks over 10,000 urls. */
static void test_uniform_distribution(void **state)
{
    (void)state;
    struct seed_gen g;
    gen_init(&g, 11, 1, 0.0);
    static unsigned per_url[10001];
    memset(per_url, 0, sizeof(per_url));
    for (uint64_t i = 0; i < g.rows[SEED_CLICKS]; i++) {
        uint64_t u = seed_gen_click_url(&g, i);
        assert_true(u >= 1 && u <= 10000);
        per_url[u]++;
    }
    /* Expected 10 per url: Pearson's statistic with 9,999 degrees of freedom is 9,999 ± 141
     * (one sigma); five sigmas either way. */
    double chi = 0;
    for (int u = 1; u <= 10000; u++) {
        chi += ((double)per_url[u] - 10.0) * ((double)per_url[u] - 10.0) / 10.0;
    }
    assert_true(chi > 9999.0 - 5 * 141.4 && chi < 9999.0 + 5 * 141.4);
    assert_true(per_url[1] < 40);
}

static void test_zipf_distribution(void **state)
{
    (void)state;
    struct seed_gen g;
    gen_init(&g, 11, 1, 1.0);
    static unsigned per_url[10001];
    memset(per_url, 0, sizeof(per_url));
    for (uint64_t i = 0; i < g.rows[SEED_CLICKS]; i++) {
        uint64_t u = seed_gen_click_url(&g, i);
        assert_true(u >= 1 && u <= 10000);
        per_url[u]++;
    }
    /* Continuous approximation with s = 1: P(url k) = ln((k+1)/k) / ln(10001), so url 1 gets
     * 7.53% (7,526 of 100,000; sigma 83) and the top 100 get ln(101)/ln(10001) = 50.1%. */
    assert_true(per_url[1] > 7100 && per_url[1] < 7950);
    unsigned top100 = 0;
    for (int u = 1; u <= 100; u++) {
        top100 += per_url[u];
    }
    assert_true(top100 > 48500 && top100 < 51700);
    assert_true(per_url[1] > per_url[2] && per_url[2] > per_url[10] && per_url[10] > per_url[100]);
    /* Steeper skew concentrates more. */
    struct seed_gen h;
    gen_init(&h, 11, 1, 2.0);
    unsigned hot = 0;
    for (uint64_t i = 0; i < 100000; i++) {
        hot += seed_gen_click_url(&h, i) == 1;
    }
    assert_true(hot > 40000); /* H(2)/H(10001) = 0.5/0.9999 for s = 2 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_golden_rows),
        cmocka_unit_test(test_binary_row),
        cmocka_unit_test(test_pgbench_layout),
        cmocka_unit_test(test_url_codes_unique),
        cmocka_unit_test(test_row_shape),
        cmocka_unit_test(test_uniform_distribution),
        cmocka_unit_test(test_zipf_distribution),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
