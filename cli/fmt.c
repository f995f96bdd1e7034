/* SPDX-License-Identifier: MIT */
/* fmt.c — ages, durations and aligned tables for opspoolctl (see fmt.h). Pure helpers:
 * they allocate with osp_x* and print only to the FILE they are given. */
#include "cli/fmt.h"
#include "common/alloc.h"

#include <stdlib.h>
#include <string.h>

void ctl_fmt_age(int64_t ms, char *out, size_t n)
{
    if (ms < 0) {
        ms = 0;
    }
    long long s = (long long)(ms / 1000);
    if (ms < 1000 && ms > 0) {
        snprintf(out, n, "%lldms", (long long)ms);
    } else if (s < 60) {
        snprintf(out, n, "%llds", s);
    } else if (s < 3600) {
        snprintf(out, n, "%lldm%02llds", s / 60, s % 60);
    } else if (s < 86400) {
        snprintf(out, n, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    } else {
        snprintf(out, n, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
    }
}

int ctl_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {"w", 604800000}};
    const int64_t max = INT64_C(3153600000000); /* 100 years */
    unsigned seen = 0;
    int64_t total = 0;
    const char *p = s;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    while (*p != '\0') {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        int64_t v = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (v > max) {
                return -1;
            }
            v = v * 10 + (*p - '0');
        }
        size_t u = 0;
        size_t ulen = 0;
        if (*p == '\0' && seen == 0) {
            u = 1; /* a bare number: seconds */
        } else {
            /* longest unit first, so "ms" is not read as "m" followed by junk */
            for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
                ulen = strlen(units[u].unit);
                if (strncmp(p, units[u].unit, ulen) == 0 &&
                    (p[ulen] == '\0' || (p[ulen] >= '0' && p[ulen] <= '9'))) {
                    break;
                }
            }
            if (u == sizeof(units) / sizeof(units[0])) {
                return -1;
            }
            p += ulen;
        }
        if (seen & (1u << u)) {
            return -1;
        }
        seen |= 1u << u;
        if (v > max / units[u].ms) {
            return -1;
        }
        total += v * units[u].ms;
        if (total > max) {
            return -1;
        }
    }
    if (total <= 0) {
        return -1;
    }
    *ms = total;
    return 0;
}

enum ctl_color ctl_state_color(const char *state)
{
    static const struct {
        const char *state;
        enum ctl_color c;
    } map[] = {
        {"succeeded", CTL_C_GREEN}, {"dead", CTL_C_RED},          {"cancelled", CTL_C_YELLOW},
        {"running", CTL_C_CYAN},    {"retrying", CTL_C_YELLOW},   {"delayed", CTL_C_DIM},
        {"stale", CTL_C_RED},       {"draining", CTL_C_YELLOW},   {"failed", CTL_C_RED},
        {"paused", CTL_C_YELLOW},   {"interrupted", CTL_C_YELLOW}};
    for (size_t i = 0; state != NULL && i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(state, map[i].state) == 0) {
            return map[i].c;
        }
    }
    return CTL_C_NONE;
}

size_t ctl_text_width(const char *s)
{
    size_t w = 0;
    for (; *s != '\0'; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80) {
            w++;
        }
    }
    return w;
}

void ctl_table_init(struct ctl_table *t, const char *const *heads)
{
    memset(t, 0, sizeof(*t));
    for (; heads[t->ncols] != NULL && t->ncols < CTL_TABLE_MAXCOLS; t->ncols++) {
        const char *h = heads[t->ncols];
        t->right[t->ncols] = h[0] == '>';
        t->head[t->ncols] = h[0] == '>' ? h + 1 : h;
    }
}

void ctl_table_deinit(struct ctl_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t->colors);
    memset(t, 0, sizeof(*t));
}

size_t ctl_table_add(struct ctl_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = osp_xrealloc(t->cells, t->cap * t->ncols * sizeof(*t->cells));
        t->colors = osp_xrealloc(t->colors, t->cap * t->ncols);
    }
    size_t base = t->nrows * t->ncols;
    for (size_t c = 0; c < t->ncols; c++) {
        t->cells[base + c] = osp_xstrdup(cells[c] != NULL ? cells[c] : "-");
        t->colors[base + c] = CTL_C_NONE;
    }
    return t->nrows++;
}

void ctl_table_color(struct ctl_table *t, size_t row, size_t col, enum ctl_color c)
{
    if (row < t->nrows && col < t->ncols) {
        t->colors[row * t->ncols + col] = (unsigned char)c;
    }
}

const char *ctl_sgr(enum ctl_color c)
{
    switch (c) {
    case CTL_C_BOLD:
        return "\033[1m";
    case CTL_C_RED:
        return "\033[31m";
    case CTL_C_GREEN:
        return "\033[32m";
    case CTL_C_YELLOW:
        return "\033[33m";
    case CTL_C_CYAN:
        return "\033[36m";
    case CTL_C_DIM:
        return "\033[2m";
    case CTL_C_NONE:
        break;
    }
    return "";
}

static void print_cell(FILE *out, const char *text, size_t width, bool right, bool last,
                       enum ctl_color c, bool color)
{
    size_t w = ctl_text_width(text);
    size_t pad = width > w ? width - w : 0;
    bool esc = color && c != CTL_C_NONE;
    if (right) {
        fprintf(out, "%*s", (int)pad, "");
    }
    fprintf(out, "%s%s%s", esc ? ctl_sgr(c) : "", text, esc ? "\033[0m" : "");
    if (!right && !last) {
        fprintf(out, "%*s", (int)pad, "");
    }
}

void ctl_table_print(const struct ctl_table *t, FILE *out, bool color)
{
    size_t width[CTL_TABLE_MAXCOLS];
    for (size_t c = 0; c < t->ncols; c++) {
        width[c] = ctl_text_width(t->head[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t w = ctl_text_width(t->cells[r * t->ncols + c]);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    fprintf(out, "%*s", (int)t->indent, "");
    for (size_t c = 0; c < t->ncols; c++) {
        fputs(c > 0 ? "   " : "", out);
        print_cell(out, t->head[c], width[c], t->right[c], c + 1 == t->ncols, CTL_C_BOLD, color);
    }
    fputc('\n', out);
    for (size_t r = 0; r < t->nrows; r++) {
        fprintf(out, "%*s", (int)t->indent, "");
        for (size_t c = 0; c < t->ncols; c++) {
            fputs(c > 0 ? "   " : "", out);
            print_cell(out, t->cells[r * t->ncols + c], width[c], t->right[c], c + 1 == t->ncols,
                       (enum ctl_color)t->colors[r * t->ncols + c], color);
        }
        fputc('\n', out);
    }
}
