/* SPDX-License-Identifier: MIT */
/* retention.c — GFS retention over backup names (contract: retention.h). Same semantics as
 * borg/restic "keep-daily/weekly/monthly": walk backups newest first and, per rule, keep the
 * first backup seen in each new period until the rule's count is used up. */
#include "jobs/backup/retention.h"
#include "common/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct backup_entry {
    size_t idx;
    int64_t ts;
    const char *name;
};

static int64_t backup_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* H. Hinnant's days_from_civil: days since 1970-01-01 of a proleptic Gregorian date. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void backup_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool backup_digits(const char *s, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

bool backup_name_parse(const char *name, int64_t *epoch_s)
{
    unsigned y, mo, d, h, mi, s;
    size_t n = strlen(name);
    /* 16 stamp chars, '-', at least one id char, ".dump". */
    if (n < 16 + 1 + 1 + 5 || n > 16 + 1 + 64 + 5 || strcmp(name + n - 5, ".dump") != 0 ||
        name[8] != 'T' || name[15] != 'Z' || name[16] != '-') {
        return false;
    }
    if (!backup_digits(name, 4, &y) || !backup_digits(name + 4, 2, &mo) ||
        !backup_digits(name + 6, 2, &d) || !backup_digits(name + 9, 2, &h) ||
        !backup_digits(name + 11, 2, &mi) || !backup_digits(name + 13, 2, &s)) {
        return false;
    }
    for (size_t i = 17; i < n - 5; i++) {
        char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-')) {
            return false;
        }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
        return false;
    }
    int64_t days = backup_days_from_civil(y, mo, d);
    int64_t cy;
    unsigned cm, cd;
    backup_civil_from_days(days, &cy, &cm, &cd);
    if (cy != (int64_t)y || cm != mo || cd != d) {
        return false; /* e.g. 20240230 */
    }
    if (epoch_s != NULL) {
        *epoch_s = days * 86400 + h * 3600 + mi * 60 + s;
    }
    return true;
}

void backup_name_stamp(int64_t epoch_s, char out[17])
{
    int64_t days = epoch_s >= 0 ? epoch_s / 86400 : (epoch_s - 86399) / 86400;
    int64_t rem = epoch_s - days * 86400;
    int64_t y;
    unsigned m, d;
    backup_civil_from_days(days, &y, &m, &d);
    snprintf(out, 17, "%04u%02u%02uT%02u%02u%02uZ", (unsigned)(y % 10000), m, d,
             (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60));
}

static int backup_entry_newest_first(const void *a, const void *b)
{
    const struct backup_entry *x = a, *y = b;
    if (x->ts != y->ts) {
        return x->ts > y->ts ? -1 : 1;
    }
    return -strcmp(x->name, y->name);
}

/* Period keys: day number, Monday-based week number (1970-01-05 was a Monday), month number. */
static int64_t backup_period(int64_t ts, int rule)
{
    int64_t days = ts >= 0 ? ts / 86400 : (ts - 86399) / 86400;
    if (rule == 0) {
        return days;
    }
    if (rule == 1) {
        int64_t w = days + 3; /* day 0 (Thursday) is the fourth day of its Monday-based week */
        return w >= 0 ? w / 7 : (w - 6) / 7;
    }
    int64_t y;
    unsigned m, d;
    backup_civil_from_days(days, &y, &m, &d);
    return y * 12 + (int64_t)m;
}

void backup_retention_plan(const char *const *names, size_t n, const struct backup_retention *r,
                           bool *expire)
{
    struct backup_entry *e = osp_xcalloc(n > 0 ? n : 1, sizeof(*e));
    bool *keep = osp_xcalloc(n > 0 ? n : 1, sizeof(*keep));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        expire[i] = false;
        int64_t ts;
        if (backup_name_parse(names[i], &ts)) {
            e[m].idx = i;
            e[m].ts = ts;
            e[m].name = names[i];
            m++;
        }
    }
    qsort(e, m, sizeof(*e), backup_entry_newest_first);
    if (m > 0) {
        keep[0] = true; /* the newest backup always stays */
    }
    const int counts[3] = {r->keep_daily, r->keep_weekly, r->keep_monthly};
    for (int rule = 0; rule < 3; rule++) {
        int used = 0;
        bool have_last = false;
        int64_t last = 0;
        for (size_t j = 0; j < m && used < counts[rule]; j++) {
            int64_t p = backup_period(e[j].ts, rule);
            if (!have_last || p != last) {
                keep[j] = true;
                have_last = true;
                last = p;
                used++;
            }
        }
    }
    for (size_t j = 0; j < m; j++) {
        expire[e[j].idx] = !keep[j];
    }
    free(e);
    free(keep);
}
