/* SPDX-License-Identifier: MIT */
/* retention.h — grandfather-father-son retention over backup file names (pure, no I/O).
 *
 * Backups are named <YYYYMMDDTHHMMSSZ>-<job id>.dump (UTC). A policy keeps, for each of the
 * keep_daily most recent days that have a backup, the newest backup of that day; likewise
 * for ISO weeks (Monday-based) and calendar months. The newest backup is always kept. One
 * file may satisfy several rules. Names that do not match the pattern are never expired. */
#ifndef OSP_JOBS_BACKUP_RETENTION_H
#define OSP_JOBS_BACKUP_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BACKUP_KEEP_MAX 10000

struct backup_retention {
    int keep_daily;   /* 0..BACKUP_KEEP_MAX */
    int keep_weekly;
    int keep_monthly;
};

/* True when name is "<YYYYMMDDTHHMMSSZ>-<id>.dump" with a valid date; *epoch_s (may be NULL)
 * gets the UTC time. The id part is [0-9a-f-]{1,64}. */
bool backup_name_parse(const char *name, int64_t *epoch_s);

/* Format the timestamp part (16 chars + NUL) of a backup name for epoch_s. */
void backup_name_stamp(int64_t epoch_s, char out[17]);

/* Decide for names[0..n) which to expire: expire[i] is set true for backups the policy does
 * not keep, false for kept ones and for names that are not backups. */
void backup_retention_plan(const char *const *names, size_t n, const struct backup_retention *r,
                           bool *expire);

#endif
