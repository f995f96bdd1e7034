/* SPDX-License-Identifier: MIT */
/* seedfmt.h — hand-rolled field writers for PostgreSQL COPY, text and binary format.
 *
 * The seed kind formats millions of fields per run, so these avoid printf and locale: each
 * writes into a caller buffer (which must have room; sizes below) and returns the pointer just
 * past what it wrote. Binary fields follow the COPY BINARY tuple layout (PostgreSQL docs, "COPY
 * ... Binary Format"): int16 field count per tuple, then per field an int32 byte length (-1 for
 * NULL) and the type's send representation, all big-endian. */
#ifndef OSP_JOBS_SEEDFMT_H
#define OSP_JOBS_SEEDFMT_H

#include <stddef.h>
#include <stdint.h>

/* The 19-byte COPY BINARY stream header (signature, flags 0, no extension) and the 2-byte
 * trailer (field count -1). */
#define SEED_FMT_BIN_HEADER_LEN  19
#define SEED_FMT_BIN_TRAILER_LEN 2
extern const char seed_fmt_bin_header[SEED_FMT_BIN_HEADER_LEN];
extern const char seed_fmt_bin_trailer[SEED_FMT_BIN_TRAILER_LEN];

/* Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's timestamp epoch. */
#define SEED_FMT_PG_EPOCH_US 946684800000000LL

/* Text: decimal of v, '-' for negatives (INT64_MIN included); at most 20 bytes. */
char *seed_fmt_i64(char *p, int64_t v);
/* Text: decimal of v; at most 20 bytes. */
char *seed_fmt_u64(char *p, uint64_t v);
/* Text: n bytes of s escaped for COPY text format (backslash, tab, newline, carriage return
 * become two-byte escapes); at most 2 * n bytes. */
char *seed_fmt_text(char *p, const char *s, size_t n);

/* Binary tuple start: the field count; 2 bytes. */
char *seed_fmt_bin_tuple(char *p, uint16_t nfields);
/* Binary int4 / int8 field (length + value); 8 / 12 bytes. */
char *seed_fmt_bin_i32(char *p, int32_t v);
char *seed_fmt_bin_i64(char *p, int64_t v);
/* Binary timestamptz field from seconds since the Unix epoch; 12 bytes. */
char *seed_fmt_bin_ts(char *p, int64_t unix_s);
/* Binary text field (length + raw bytes, no escaping); 4 + n bytes. */
char *seed_fmt_bin_text(char *p, const char *s, size_t n);
/* Binary NULL field; 4 bytes. */
char *seed_fmt_bin_null(char *p);
/* Start of a binary text field whose bytes the caller writes next: returns where they go;
 * seed_fmt_bin_text_end() then fills in the length from the end pointer. */
char *seed_fmt_bin_text_begin(char *p);
char *seed_fmt_bin_text_end(char *body, char *end);

#endif
