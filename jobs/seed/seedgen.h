/* SPDX-License-Identifier: MIT */
/* seedgen.h — the deterministic row generator behind the seed kind (pure: no I/O, no state).
 *
 * Every value is f(seed, table, field, row): a splitmix64-style mix of those four numbers, so
 * any row can be produced on its own, in any order, and the same (seed, scale, zipf_s, layout)
 * gives byte-identical COPY data on every run. Rows are emitted as PostgreSQL COPY data, in
 * text or binary format, for one of two layouts:
 *   workload: the reference workload's tables (tools/schema.sql): users, urls,
 *             clicks; rows per scale unit 1,000, 10,000, 100,000.
 *   pgbench:  pgbench -i's tables (pgbench_branches, _tellers, _accounts; _history stays
 *             empty) with pgbench's row counts (1, 10, 100,000 per scale unit) and keys, but
 *             with the char fillers sent full width (84/88 generated characters) instead of
 *             empty: the like-for-like benchmark lane against pgbench -i (docs/benchmarks.md). */
#ifndef OSP_JOBS_SEEDGEN_H
#define OSP_JOBS_SEEDGEN_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* Bumped whenever generated content or the streamed format changes: digests are comparable
 * only within a version. 2: binary COPY (the digest covers the binary stream); pgbench layout. */
#define SEED_GEN_VERSION 2
#define SEED_SCALE_MAX   10000
#define SEED_ZIPF_MAX    5.0
/* Upper bound of one generated row (text line with its newline, or binary tuple). */
#define SEED_ROW_MAX 256

enum seed_layout { SEED_LAYOUT_WORKLOAD = 0, SEED_LAYOUT_PGBENCH = 1 };

enum seed_table {
    SEED_USERS = 0,
    SEED_URLS = 1,
    SEED_CLICKS = 2,
    SEED_PGB_BRANCHES = 3,
    SEED_PGB_TELLERS = 4,
    SEED_PGB_ACCOUNTS = 5,
    SEED_NTABLES = 6
};

/* COPY data format: text lines, or binary tuples (what the seed kind streams: the server
 * skips parsing timestamps and integers, ~35% less server CPU per click row). */
enum seed_format { SEED_FMT_TEXT = 0, SEED_FMT_BINARY = 1 };

struct seed_params {
    uint64_t seed;           /* any value; payload integers are cast */
    uint32_t scale;          /* 1..SEED_SCALE_MAX */
    double zipf_s;           /* click popularity skew over urls; 0 = uniform */
    enum seed_layout layout; /* which tables */
    bool blank_filler;       /* pgbench layout: send the filler empty, as pgbench -i does (the
                              * server pads char(n)): the very rows pgbench writes */
};

struct seed_gen {
    struct seed_params p;
    uint64_t rows[SEED_NTABLES]; /* rows per table at this scale; 0 outside the layout */
    uint64_t code_key;           /* seed-dependent key of the url code bijection */
    double zipf_hmax;            /* H(N + 1) of the continuous Zipf approximation */
};

void seed_gen_init(struct seed_gen *g, const struct seed_params *p);

/* The layout's tables in load order (parents first); returns how many, *out borrowed. */
size_t seed_layout_tables(enum seed_layout l, const enum seed_table **out);

/* Table name as in the schema, and the column list COPY uses (in generated order). */
const char *seed_table_name(enum seed_table t);
const char *seed_table_columns(enum seed_table t);

/* The raw counter-based value for (seed, table, field, row). */
uint64_t seed_gen_u64(uint64_t seed, unsigned table, unsigned field, uint64_t row);

/* Write 0-based row of table t into out (room for SEED_ROW_MAX bytes) in format f: a COPY
 * text line with its '\n', or one binary tuple; returns its length. The row's id is row + 1.
 * Both formats carry the same values. */
size_t seed_gen_row(const struct seed_gen *g, enum seed_table t, enum seed_format f, uint64_t row,
                    char *out);

/* Fill buf (cap bytes, cap >= SEED_ROW_MAX) with whole rows of t starting at *row, stopping
 * at the table's end or when another row might not fit; advances *row, returns bytes. The
 * binary stream's header and trailer (seedfmt.h) are the caller's. */
size_t seed_gen_fill(const struct seed_gen *g, enum seed_table t, enum seed_format f, uint64_t *row,
                     char *buf, size_t cap);

/* The 1-based url id clicked by 0-based click row (Zipf-skewed when zipf_s > 0: url 1 is the
 * hottest, then 2, ...; uniform otherwise). */
uint64_t seed_gen_click_url(const struct seed_gen *g, uint64_t row);

/* The short code of a url id: 9 base62 characters, a bijection of the id for a given seed. */
void seed_gen_url_code(const struct seed_gen *g, uint64_t url_id, char out[10]);

#endif
