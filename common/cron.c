/* SPDX-License-Identifier: MIT */
/* cron.c — cron parsing and next-fire computation in a time zone.
 *
 * Search. We walk candidate WALL times (year, month, day, hour, minute: calendar arithmetic
 * only, no zone) with the classic carry search, and map each match to the UTC instants at
 * which the zone shows that wall time. The mapping uses the zone offsets one day before and
 * one day after the wall time (assumes at most one transition within two days, true of every
 * zone in use): 1 instant normally, 2 in a fall-back overlap, 0 in a spring-forward gap (then
 * the gap rule of cron.h applies). Instants are monotonic in wall time except inside an
 * overlap, so for interval-like schedules (hour `*`) the walk starts early by the coming
 * offset decrease and continues until no later wall time can map before the best instant. */
#include "common/cron.h"
#include "common/alloc.h"
#include "common/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

/* ---- Parsing ---- */

struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* names[i] stands for value name_base + i */
    int name_base;
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct field fields[5] = {
    {"minute", 0, 59, NULL, 0},          {"hour", 0, 23, NULL, 0},
    {"day-of-month", 1, 31, NULL, 0},    {"month", 1, 12, month_names, 1},
    {"day-of-week", 0, 7, dow_names, 0},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Parse a number or a three-letter name at *p; advances *p. -1 when neither. */
static int parse_value(const struct field *f, const char **p)
{
    const char *s = *p;
    if (is_digit(*s)) {
        long v = 0;
        while (is_digit(*s) && v < 1000) {
            v = v * 10 + (*s - '0');
            s++;
        }
        *p = s;
        return (int)v;
    }
    if (f->names != NULL && is_alpha(s[0]) && is_alpha(s[1]) && is_alpha(s[2]) && !is_alpha(s[3])) {
        for (int i = 0; f->names[i] != NULL; i++) {
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *p = s + 3;
                return f->name_base + i;
            }
        }
    }
    return -1;
}

/* Parse one field text [s, e) into a bit set. */
static int parse_field(int idx, const char *s, const char *e, uint64_t *bits, bool *star,
                       struct osp_err *err)
{
    const struct field *f = &fields[idx];
    char buf[128];
    size_t len = (size_t)(e - s);
    if (len >= sizeof(buf)) {
        return osp_err_set(err, OSP_EINVAL, "cron %s field is too long", f->name);
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    *bits = 0;
    *star = buf[0] == '*';
    if (buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,") != NULL) {
        return osp_err_set(err, OSP_EINVAL, "cron %s field: empty list item in \"%s\"", f->name,
                           buf);
    }
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        const char *p = item;
        int lo, hi, step = 1;
        bool open_range = false;
        if (*p == '*') {
            lo = f->lo;
            hi = f->hi == 7 ? 6 : f->hi;
            p++;
        } else {
            lo = parse_value(f, &p);
            if (lo < 0) {
                return osp_err_set(err, OSP_EINVAL, "cron %s field: cannot read \"%s\"", f->name,
                                   item);
            }
            hi = lo;
            if (*p == '-') {
                p++;
                const char *q = p;
                hi = parse_value(f, &p);
                if (hi < 0) {
                    return osp_err_set(err, OSP_EINVAL, "cron %s field: cannot read \"%s\"",
                                       f->name, item);
                }
                /* "fri-sun": Sunday at the end of a weekday range is 7. */
                if (idx == 4 && hi == 0 && lo > 0 && is_alpha(*q)) {
                    hi = 7;
                }
            } else {
                open_range = true;
            }
        }
        if (*p == '/') {
            p++;
            if (!is_digit(*p)) {
                return osp_err_set(err, OSP_EINVAL,
                                   "cron %s field: step in \"%s\" must be a number", f->name, item);
            }
            step = 0;
            while (is_digit(*p) && step < 1000) {
                step = step * 10 + (*p - '0');
                p++;
            }
            if (step == 0) {
                return osp_err_set(err, OSP_EINVAL, "cron %s field: step 0 in \"%s\"", f->name,
                                   item);
            }
            if (open_range && lo == hi) {
                hi = f->hi == 7 ? 6 : f->hi; /* "N/STEP" = N through the maximum */
            }
        }
        if (*p != '\0') {
            return osp_err_set(err, OSP_EINVAL, "cron %s field: unexpected \"%s\" in \"%s\"",
                               f->name, p, item);
        }
        if (lo < f->lo || hi > f->hi || lo > f->hi) {
            return osp_err_set(err, OSP_EINVAL, "cron %s field: \"%s\" outside %d-%d", f->name,
                               item, f->lo, f->hi);
        }
        if (lo > hi) {
            return osp_err_set(err, OSP_EINVAL, "cron %s field: range \"%s\" runs backwards",
                               f->name, item);
        }
        for (int v = lo; v <= hi; v += step) {
            *bits |= (uint64_t)1 << (idx == 4 && v == 7 ? 0 : v);
        }
    }
    if (*bits == 0) {
        return osp_err_set(err, OSP_EINVAL, "cron %s field is empty", f->name);
    }
    return 0;
}

int osp_cron_parse(struct osp_cron *c, const char *expr, struct osp_err *err)
{
    static const struct {
        const char *name, *expr;
    } macros[] = {{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
                  {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
                  {"@hourly", "0 * * * *"}};
    memset(c, 0, sizeof(*c));
    if (expr == NULL) {
        return osp_err_set(err, OSP_EINVAL, "cron expression is missing");
    }
    while (*expr == ' ' || *expr == '\t') {
        expr++;
    }
    if (expr[0] == '@') {
        for (size_t i = 0; i < OSP_ARRAY_LEN(macros); i++) {
            if (strcasecmp(expr, macros[i].name) == 0) {
                return osp_cron_parse(c, macros[i].expr, err);
            }
        }
        return osp_err_set(err, OSP_EINVAL,
                           "unknown cron macro \"%.32s\" (use @yearly, @monthly, @weekly, @daily "
                           "or @hourly)",
                           expr);
    }
    const char *p = expr;
    uint64_t bits[5];
    bool star[5];
    int n = 0;
    while (*p != '\0') {
        const char *s = p;
        while (*p != '\0' && *p != ' ' && *p != '\t') {
            p++;
        }
        if (n == 5) {
            return osp_err_set(err, OSP_EINVAL, "cron expression needs exactly 5 fields, got more");
        }
        int rc = parse_field(n, s, p, &bits[n], &star[n], err);
        if (rc != 0) {
            return rc;
        }
        n++;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
    }
    if (n != 5) {
        return osp_err_set(err, OSP_EINVAL, "cron expression needs exactly 5 fields, got %d", n);
    }
    c->minute = bits[0];
    c->hour = (uint32_t)bits[1];
    c->dom = (uint32_t)bits[2];
    c->month = (uint16_t)bits[3];
    c->dow = (uint8_t)bits[4];
    c->dom_star = star[2];
    c->dow_star = star[4];
    c->hour_star = c->hour == 0xFFFFFFu;
    return 0;
}

/* ---- Calendar arithmetic (proleptic Gregorian, no zone) ---- */

struct wall {
    int y, mo, d, h, mi;
};

/* Days since 1970-01-01 (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, struct wall *w)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    w->d = (int)(doy - (153 * mp + 2) / 5 + 1);
    w->mo = (int)(mp < 10 ? mp + 3 : mp - 9);
    w->y = (int)(yoe + era * 400 + (w->mo <= 2));
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Wall time as seconds, "as if UTC". */
static int64_t wall_secs(const struct wall *w)
{
    return days_from_civil(w->y, w->mo, w->d) * 86400 + w->h * 3600 + w->mi * 60;
}

static void wall_from_secs(int64_t s, struct wall *w)
{
    int64_t days = floor_div(s, 86400);
    int64_t rem = s - days * 86400;
    civil_from_days(days, w);
    w->h = (int)(rem / 3600);
    w->mi = (int)(rem % 3600 / 60);
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

static bool day_ok(const struct osp_cron *c, const struct wall *w)
{
    int64_t days = days_from_civil(w->y, w->mo, w->d);
    int wd = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    bool dm = (c->dom >> w->d) & 1u;
    bool wm = (c->dow >> wd) & 1u;
    return c->dom_star || c->dow_star ? dm && wm : dm || wm;
}

/* Advance w to the first matching wall time >= w; false past max_year. */
static bool next_wall(const struct osp_cron *c, struct wall *w, int max_year)
{
    for (;;) {
        if (w->y > max_year) {
            return false;
        }
        if (w->mo > 12) {
            w->mo = 1;
            w->y++;
            continue;
        }
        if (!((c->month >> w->mo) & 1u) || w->d > days_in_month(w->y, w->mo)) {
            w->mo++;
            w->d = 1;
            w->h = 0;
            w->mi = 0;
            continue;
        }
        if (!day_ok(c, w)) {
            w->d++;
            w->h = 0;
            w->mi = 0;
            continue;
        }
        if (w->h > 23 || !((c->hour >> w->h) & 1u)) {
            if (w->h >= 23) {
                w->d++;
                w->h = 0;
            } else {
                w->h++;
            }
            w->mi = 0;
            continue;
        }
        if (w->mi > 59 || !((c->minute >> w->mi) & 1u)) {
            if (w->mi >= 59) {
                w->mi = 0;
                w->h++;
            } else {
                w->mi++;
            }
            continue;
        }
        return true;
    }
}

/* ---- Zones ---- */

bool osp_tz_is_valid(const char *tz)
{
    if (tz == NULL || tz[0] == '\0' || tz[0] == '/' || strlen(tz) > 64 || strstr(tz, "..")) {
        return false;
    }
    for (const char *p = tz; *p != '\0'; p++) {
        if (!is_alpha(*p) && !is_digit(*p) && strchr("/_+-", *p) == NULL) {
            return false;
        }
    }
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", tz);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return false;
    }
    char magic[4] = {0};
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    return n == 4 && memcmp(magic, "TZif", 4) == 0;
}

struct tz_saved {
    char *old;
};

static void tz_enter(const char *tz, struct tz_saved *s)
{
    const char *o = getenv("TZ");
    s->old = o ? osp_xstrdup(o) : NULL;
    setenv("TZ", tz, 1);
    tzset();
}

static void tz_leave(struct tz_saved *s)
{
    if (s->old != NULL) {
        setenv("TZ", s->old, 1);
    } else {
        unsetenv("TZ");
    }
    tzset();
    free(s->old);
    s->old = NULL;
}

/* Offset of local time from UTC at instant t, in seconds (under the current TZ). */
static int64_t offset_at(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    int64_t local = days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
                    tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    return local - t;
}

/* The instants showing wall time w: 0, 1 or 2 (ascending) in out; for a gap, the shifted
 * instant is returned and *gap set. */
static int instants(const struct wall *w, int64_t out[2])
{
    int64_t wu = wall_secs(w);
    int64_t oa = offset_at(wu - 86400);
    int64_t ob = offset_at(wu + 86400);
    int n = 0;
    int64_t cands[2] = {wu - (oa > ob ? oa : ob), wu - (oa > ob ? ob : oa)};
    for (int i = 0; i < (oa == ob ? 1 : 2); i++) {
        if (cands[i] + offset_at(cands[i]) == wu) {
            out[n++] = cands[i];
        }
    }
    if (n == 0) {
        out[n++] = wu - oa; /* gap: the pre-transition offset pushes the tick past the gap */
    }
    return n;
}

int osp_cron_next(const struct osp_cron *c, const char *tz, int64_t after_s, int64_t *next_s,
                  struct osp_err *err)
{
    if (!osp_tz_is_valid(tz)) {
        return osp_err_set(err, OSP_EINVAL, "unknown time zone \"%.64s\"", tz ? tz : "");
    }
    if (after_s < OSP_TIME_MIN_MS / 1000 || after_s > OSP_TIME_MAX_MS / 1000) {
        return osp_err_set(err, OSP_EINVAL, "time %lld s is outside 1970..9999",
                           (long long)after_s);
    }
    struct tz_saved saved;
    tz_enter(tz, &saved);
    int64_t t0 = (floor_div(after_s, 60) + 1) * 60;
    int64_t o0 = offset_at(t0);
    int64_t start = t0 + o0;
    if (c->hour_star) {
        /* A fall-back within the next day repeats wall times we have already passed. */
        int64_t drop = o0 - offset_at(t0 + 86400);
        if (drop > 0) {
            start -= drop;
        }
    }
    struct wall w;
    wall_from_secs(start, &w);
    int max_year = w.y + 30;
    int64_t best = INT64_MAX;
    int64_t bound = INT64_MAX;
    while (next_wall(c, &w, max_year)) {
        int64_t wu = wall_secs(&w);
        if (wu >= bound) {
            break;
        }
        int64_t ts[2];
        int n = instants(&w, ts);
        if (n == 2 && !c->hour_star) {
            n = 1; /* overlap: fixed times of day fire at the first occurrence only */
        }
        for (int i = 0; i < n; i++) {
            if (ts[i] >= t0 && ts[i] < best) {
                best = ts[i];
            }
        }
        if (best != INT64_MAX) {
            if (!c->hour_star) {
                break; /* instants are monotonic in wall time: the first hit is the minimum */
            }
            int64_t ob = offset_at(best);
            bound = best + (ob > o0 ? ob : o0);
        }
        wall_from_secs(wu + 60, &w);
    }
    tz_leave(&saved);
    if (best == INT64_MAX) {
        return osp_err_set(err, OSP_ENOTFOUND, "cron expression never fires within 30 years");
    }
    if (best > OSP_TIME_MAX_MS / 1000) {
        return osp_err_set(err, OSP_ENOTFOUND, "cron expression does not fire again before 10000");
    }
    *next_s = best;
    return 0;
}

/* ---- RFC 3339 ---- */

/* Read exactly n digits at *p. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i])) {
            return false;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

int osp_time_parse_rfc3339(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec;
    const char *p = s;
    if (s == NULL || !digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' ')) {
        return OSP_EINVAL;
    }
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
        !digits(&p, 2, &sec)) {
        return OSP_EINVAL;
    }
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (is_digit(*p)) {
            if (nd < 3) {
                frac_ms = frac_ms * 10 + (*p - '0');
            }
            nd++;
            p++;
        }
        if (nd == 0) {
            return OSP_EINVAL;
        }
        for (; nd < 3; nd++) {
            frac_ms *= 10;
        }
    }
    int off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh, om;
        p++;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59) {
            return OSP_EINVAL;
        }
        off_s = sign * (oh * 3600 + om * 60);
    } else {
        return OSP_EINVAL;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 60) {
        return OSP_EINVAL;
    }
    if (sec == 60) {
        sec = 59; /* a leap second is held at :59 (POSIX time has none) */
    }
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
    int64_t v = t * 1000 + frac_ms;
    if (!osp_time_in_range(v)) {
        return OSP_EINVAL;
    }
    *ms = v;
    return 0;
}

void osp_time_format_rfc3339(int64_t ms, char out[32])
{
    ms = ms < OSP_TIME_MIN_MS ? OSP_TIME_MIN_MS : ms > OSP_TIME_MAX_MS ? OSP_TIME_MAX_MS : ms;
    int64_t s = floor_div(ms, 1000);
    struct wall w;
    wall_from_secs(s, &w);
    int sec = (int)(s - floor_div(s, 60) * 60);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", w.y, w.mo, w.d, w.h, w.mi, sec,
             (int)(ms - s * 1000));
}

int osp_time_format_zone(int64_t s, const char *tz, char out[48])
{
    if (tz == NULL || !osp_tz_is_valid(tz)) {
        return OSP_EINVAL;
    }
    struct tz_saved sv;
    tz_enter(tz, &sv);
    time_t tt = (time_t)s;
    struct tm tm;
    int64_t off = offset_at(s);
    bool ok = localtime_r(&tt, &tm) != NULL;
    tz_leave(&sv);
    if (!ok) {
        return OSP_EINVAL;
    }
    int64_t a = off < 0 ? -off : off;
    snprintf(out, 48, "%04d-%02d-%02d %02d:%02d%c%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, off < 0 ? '-' : '+', (int)(a / 3600),
             (int)(a % 3600 / 60));
    return 0;
}
