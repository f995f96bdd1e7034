/* SPDX-License-Identifier: MIT */
/* base.h — project-wide basics: always-on assertions, container_of, attributes, time.
 * Everything here is header-only and safe to include from any module or test. */
#ifndef OSP_BASE_H
#define OSP_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OSP_UNUSED(x)   ((void)(x))
#define OSP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define OSP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define OSP_NODISCARD    __attribute__((warn_unused_result))

/* Recover the struct that embeds a member (libev watchers live inside their owner). */
#define osp_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

_Noreturn void osp_assert_fail(const char *expr, const char *file, int line);

/* Always on, also in release builds: for invariants, never for external input. */
#define OSP_ASSERT(x)                                                                              \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            osp_assert_fail(#x, __FILE__, __LINE__);                                               \
        }                                                                                          \
    } while (0)

/* Wall clock in milliseconds since the epoch (what Redis scores and PG timestamps use). */
int64_t osp_now_ms(void);
/* Monotonic clock in nanoseconds (durations, deadlines inside one process). */
int64_t osp_mono_ns(void);

/* Seam for tests: when non-NULL, osp_now_ms() returns this function's value. */
extern int64_t (*osp_now_ms_hook)(void);

#endif
