/* SPDX-License-Identifier: MIT */
/* fuzz_registry.c — jobs/registry.c for fuzz targets: the same lookup over the kinds listed in
 * OSP_FUZZ_KINDS (X(noop) X(seed) ...), so a kind that does not build yet can be left out
 * without touching the real registry. */
#include "jobs/job.h"

#include <string.h>

#define X(k) extern const struct job_kind job_kind_##k;
OSP_FUZZ_KINDS
#undef X

static const struct job_kind *const kinds[] = {
#define X(k) &job_kind_##k,
    OSP_FUZZ_KINDS
#undef X
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
