/* SPDX-License-Identifier: MIT */
/* seedgen.h — the deterministic row generator behind the seed kind (pure: no I/O, no state).
 *
 * Every value is f(seed, table, field, row): a splitmix64-style mix of those four numbers, so
 * any row can be produced on its own, in any order, and the same (seed, scale, zipf_s) gives
 * byte-identical COPY text on every run. Rows are emitted in PostgreSQL COPY text format for
 * the reference workload's tables (deploy/workload/schema.sql): users, urls, clicks.
 * Row counts per scale unit: users 1,000, urls 10,000, clicks 100,000. */
#ifndef OSP_JOBS_SEEDGEN_H
#define OSP_JOBS_SEEDGEN_H

#include <stddef.h>
#include <stdint.h>

/* Bumped whenever generated content changes: digests are comparable only within a version. */
#define SEED_GEN_VERSION 1
#define SEED_SCALE_MAX   10000
#define SEED_ZIPF_MAX    5.0
/* Upper bound of one generated COPY line, including its newline. */
#define SEED_ROW_MAX 256

enum seed_table { SEED_USERS = 0, SEED_URLS = 1, SEED_CLICKS = 2, SEED_NTABLES = 3 };

struct seed_params {
    uint64_t seed;  /* any value; payload integers are cast */
    uint32_t scale; /* 1..SEED_SCALE_MAX */
    double zipf_s;  /* click popularity skew over urls; 0 = uniform */
};

struct seed_gen {
    struct seed_params p;
    uint64_t rows[SEED_NTABLES]; /* rows per table at this scale */
    uint64_t code_key;           /* seed-dependent key of the url code bijection */
    double zipf_hmax;            /* H(N + 1) of the continuous Zipf approximation */
};

void seed_gen_init(struct seed_gen *g, const struct seed_params *p);

/* Table name as in the schema, and the column list COPY uses (in generated order). */
const char *seed_table_name(enum seed_table t);
const char *seed_table_columns(enum seed_table t);

/* The raw counter-based value for (seed, table, field, row). */
uint64_t seed_gen_u64(uint64_t seed, unsigned table, unsigned field, uint64_t row);

/* Write one COPY text line (with '\n') for 0-based row of table t into out, which has room
 * for SEED_ROW_MAX bytes; returns its length. The row's id is row + 1. */
size_t seed_gen_row(const struct seed_gen *g, enum seed_table t, uint64_t row, char *out);

/* Fill buf (cap bytes, cap >= SEED_ROW_MAX) with whole rows of t starting at *row, stopping
 * at the table's end or when another row might not fit; advances *row, returns bytes. */
size_t seed_gen_fill(const struct seed_gen *g, enum seed_table t, uint64_t *row, char *buf,
                     size_t cap);

/* The 1-based url id clicked by 0-based click row (Zipf-skewed when zipf_s > 0: url 1 is the
 * hottest, then 2, ...; uniform otherwise). */
uint64_t seed_gen_click_url(const struct seed_gen *g, uint64_t row);

/* The short code of a url id: 9 base62 characters, a bijection of the id for a given seed. */
void seed_gen_url_code(const struct seed_gen *g, uint64_t url_id, char out[10]);

#endif
