/* SPDX-License-Identifier: MIT */
/* cron.h — 5-field cron expressions with time zones.
 *
 *   minute hour day-of-month month day-of-week
 *
 * Each field is a comma list of items: `*`, `N`, `A-B`, each optionally followed by `/STEP`
 * (`N/STEP` means N through the field's maximum). Months accept jan..dec, weekdays sun..sat
 * (case-insensitive); weekday 7 is Sunday like 0. Macros: @yearly (@annually), @monthly,
 * @weekly, @daily (@midnight), @hourly. As in Vixie cron, when both day-of-month and
 * day-of-week are restricted (neither field starts with `*`) a day matches if EITHER does;
 * otherwise both must match.
 *
 * Time zones are TZ database names ("Europe/Berlin", "UTC"). Wall times that do not exist or
 * occur twice are resolved like RFC 5545 / JavaScript Temporal "compatible":
 *  - a spring-forward gap: the tick fires shifted forward by the gap's length (02:30 on the
 *    day Berlin skips 02:00-03:00 fires at 03:30 CEST), once; ticks that land on the same
 *    instant as a real one collapse into one firing;
 *  - a fall-back overlap: the tick fires at the first occurrence only, except for schedules
 *    whose hour field is `*` (they express an interval, not a time of day): they fire at both
 *    occurrences, so "every 15 minutes" keeps firing every 15 real minutes.
 * Implementation: the zone is switched with setenv("TZ") + tzset() around each computation
 * and restored afterwards. Not thread-safe; opspool processes are single-threaded. */
#ifndef OSP_CRON_H
#define OSP_CRON_H

#include "common/err.h"

#include <stdint.h>

struct osp_cron {
    uint64_t minute; /* bit m: minute m (0..59) */
    uint32_t hour;   /* bit h: hour h (0..23) */
    uint32_t dom;    /* bit d: day of month d (1..31) */
    uint16_t month;  /* bit m: month m (1..12) */
    uint8_t dow;     /* bit w: weekday w (0 = Sunday .. 6) */
    bool dom_star;   /* day-of-month field started with '*' */
    bool dow_star;   /* day-of-week field started with '*' */
    bool hour_star;  /* hour field is exactly '*' (interval-like schedule) */
};

/* Parse expr. 0, or OSP_EINVAL with err naming the field and the problem. */
int osp_cron_parse(struct osp_cron *c, const char *expr, struct osp_err *err);

/* True when tz names a zone in the TZ database (TZDIR or /usr/share/zoneinfo). Rejects
 * absolute paths, "..", and names libc would silently treat as UTC. */
bool osp_tz_is_valid(const char *tz);

/* The first fire time strictly after after_s (seconds since the epoch), in *next_s. 0, or
 * OSP_EINVAL (bad zone, or after_s outside the accepted range) / OSP_ENOTFOUND (no fire time
 * within 30 years, "0 0 30 2 *", or none before OSP_TIME_MAX_MS). */
int osp_cron_next(const struct osp_cron *c, const char *tz, int64_t after_s, int64_t *next_s,
                  struct osp_err *err);

/* ---- The range of times opspool accepts ----
 *
 * Every time a user or a peer hands opspool (RFC 3339 text, epoch milliseconds in the API's
 * run_at, cron fire times, opspoolctl arguments) lies in [OSP_TIME_MIN_MS, OSP_TIME_MAX_MS]:
 * 1970-01-01T00:00:00.000Z through 9999-12-31T23:59:59.999Z. Inside it a parsed time formats
 * to four-digit-year text that parses back to the same instant; outside it, parsers answer
 * OSP_EINVAL and cron answers OSP_ENOTFOUND, so no entry point can hold a time the others
 * cannot print or read. */
#define OSP_TIME_MIN_MS 0LL
#define OSP_TIME_MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* True when ms lies in the accepted range. */
static inline bool osp_time_in_range(int64_t ms)
{
    return ms >= OSP_TIME_MIN_MS && ms <= OSP_TIME_MAX_MS;
}

/* ---- RFC 3339 timestamps (API input/output; zone-free arithmetic) ---- */

/* Parse "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" ('t', 'z' and a space separator are
 * accepted too) into milliseconds since the epoch. 0, or OSP_EINVAL for bad text and for an
 * instant outside [OSP_TIME_MIN_MS, OSP_TIME_MAX_MS] (after the offset is applied:
 * "9999-12-31T23:59:59-03:30" is in 10000 and refused). */
int osp_time_parse_rfc3339(const char *s, int64_t *ms);
/* Format ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (at least 32 bytes). A value outside the
 * accepted range is clamped to its nearest end, so what is printed always parses back. */
void osp_time_format_rfc3339(int64_t ms, char out[32]);
/* Format s (seconds since the epoch) as wall time in zone tz with its offset there:
 * "2025-03-30 03:00+02:00". 0, or OSP_EINVAL for an unknown zone. */
int osp_time_format_zone(int64_t s, const char *tz, char out[48]);

#endif
