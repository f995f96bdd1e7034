/* SPDX-License-Identifier: MIT */
/* log.h — structured logging: one JSON object per line on stderr
 * {"ts","level","component","msg",...fields}. The macros test the level before evaluating
 * their arguments. common/ modules return errors and do not log them; process layers log. */
#ifndef OSP_LOG_H
#define OSP_LOG_H

#include "common/base.h"

enum osp_log_level { OSP_LOG_DEBUG = 0, OSP_LOG_INFO, OSP_LOG_WARN, OSP_LOG_ERROR };

extern enum osp_log_level osp_log_min_level;

/* Set the component name ("worker", "scheduler", "opspoolctl") and minimum level.
 * `level` may be NULL or one of debug|info|warn|error; returns -1 on an unknown name. */
int osp_log_init(const char *component, const char *level);

/* Extra key/value pairs: fields is a NULL-terminated list of "key", "value" string pairs. */
void osp_log_emit(enum osp_log_level lvl, const char *const *fields, const char *fmt, ...)
    OSP_PRINTF(3, 4);

#define OSP_LOG_F(lvl, fields, ...)                                                                \
    do {                                                                                           \
        if ((lvl) >= osp_log_min_level) {                                                          \
            osp_log_emit((lvl), (fields), __VA_ARGS__);                                            \
        }                                                                                          \
    } while (0)
#define osp_debug(...) OSP_LOG_F(OSP_LOG_DEBUG, NULL, __VA_ARGS__)
#define osp_info(...)  OSP_LOG_F(OSP_LOG_INFO, NULL, __VA_ARGS__)
#define osp_warn(...)  OSP_LOG_F(OSP_LOG_WARN, NULL, __VA_ARGS__)
#define osp_error(...) OSP_LOG_F(OSP_LOG_ERROR, NULL, __VA_ARGS__)
/* With job context: OSP_LOG_JOB(OSP_LOG_INFO, id, kind, "started attempt %d", n) */
#define OSP_LOG_JOB(lvl, id, kind, ...)                                                            \
    do {                                                                                           \
        if ((lvl) >= osp_log_min_level) {                                                          \
            const char *osp__f[] = {"job_id", (id), "kind", (kind), NULL};                         \
            osp_log_emit((lvl), osp__f, __VA_ARGS__);                                              \
        }                                                                                          \
    } while (0)

#endif
