/* SPDX-License-Identifier: MIT */
/* registry.c — the compile-time table of job kinds (like Redis's command table; no dlopen).
 * Adding a kind: one folder under jobs/, one extern and one line here. */
#include "jobs/job.h"

#include <string.h>

extern const struct job_kind job_kind_noop;
extern const struct job_kind job_kind_drill;
extern const struct job_kind job_kind_seed;
extern const struct job_kind job_kind_backup;
extern const struct job_kind job_kind_benchmark;

static const struct job_kind *const kinds[] = {
    &job_kind_noop,
    &job_kind_drill,
    &job_kind_seed,
    &job_kind_benchmark,
    &job_kind_backup,
    NULL,
};

const struct job_kind *job_kind_find(const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; kinds[i] != NULL; i++) {
        if (strcmp(kinds[i]->name, name) == 0) {
            return kinds[i];
        }
    }
    return NULL;
}

const struct job_kind *const *job_kinds_all(void)
{
    return kinds;
}
