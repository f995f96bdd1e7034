/* SPDX-License-Identifier: MIT */
/* fmt.h — opspoolctl's pure presentation helpers: ages ("3m12s"), durations given on the
 * command line ("1h30m"), and aligned tables with optional colour. No I/O besides the FILE
 * a table is printed to, no connections: tests/unit/cli/test_fmt.c includes fmt.c directly. */
#ifndef OSP_CLI_FMT_H
#define OSP_CLI_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "3m12s"-style rendering of a duration in ms: "850ms" below a second, "42s", "3m12s",
 * "2h05m", "3d04h". Negative durations render as "0s". Always NUL-terminates (n > 0). */
void ctl_fmt_age(int64_t ms, char *out, size_t n);

/* Parse a duration such as "90s", "15m", "1h30m", "2d", "500ms" or a bare number of seconds
 * into milliseconds. Units: ms, s, m, h, d, w; several may follow one another in any order
 * but each at most once. 0, or -1 when the text is not a positive duration or overflows. */
int ctl_parse_duration(const char *s, int64_t *ms);

/* ANSI SGR colours used for cells; CTL_C_NONE prints plain. */
enum ctl_color {
    CTL_C_NONE,
    CTL_C_BOLD,
    CTL_C_RED,
    CTL_C_GREEN,
    CTL_C_YELLOW,
    CTL_C_CYAN,
    CTL_C_DIM
};

/* The ANSI escape that starts colour c ("" for CTL_C_NONE); "\033[0m" ends it. */
const char *ctl_sgr(enum ctl_color c);

/* The conventional colour of a job state ("dead" red, "succeeded" green, ...). */
enum ctl_color ctl_state_color(const char *state);

#define CTL_TABLE_MAXCOLS 16

/* A table of text cells laid out in aligned columns (kubectl get): a header row, columns
 * separated by three spaces, numbers right-aligned when the column is marked so, the last
 * column never padded (no trailing blanks). Widths count UTF-8 characters, not bytes. */
struct ctl_table {
    size_t ncols;
    size_t indent;                       /* spaces before every line (0 after init) */
    const char *head[CTL_TABLE_MAXCOLS]; /* borrowed */
    bool right[CTL_TABLE_MAXCOLS];       /* right-align this column */
    size_t nrows, cap;
    char **cells;          /* nrows * ncols owned strings */
    unsigned char *colors; /* nrows * ncols enum ctl_color */
};

/* Start a table; heads is a NULL-terminated list (borrowed, must outlive the table). A head
 * starting with '>' marks a right-aligned column (the '>' is not printed). */
void ctl_table_init(struct ctl_table *t, const char *const *heads);
void ctl_table_deinit(struct ctl_table *t);
/* Append a row: exactly ncols strings (borrowed, copied; NULL prints "-"). Returns the row
 * index for ctl_table_color. */
size_t ctl_table_add(struct ctl_table *t, const char *const *cells);
void ctl_table_color(struct ctl_table *t, size_t row, size_t col, enum ctl_color c);
/* Print the table; colour escapes only when color is true. */
void ctl_table_print(const struct ctl_table *t, FILE *out, bool color);

/* Number of UTF-8 characters in s (continuation bytes are not counted). */
size_t ctl_text_width(const char *s);

#endif
