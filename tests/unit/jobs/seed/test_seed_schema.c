/* SPDX-License-Identifier: MIT */
/* test_seed_schema.c — the seed kind's built-in DDL (jobs/seed/seed_schema.c) must equal
 * tools/schema.sql byte for byte: the worker binary carries a copy so it needs no
 * files at run time, and this test is what keeps the copy honest. */
#include "jobs/seed/seed_schema.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_schema_matches_file(void **state)
{
    (void)state;
    const char *src = getenv("OSP_SRC_DIR");
    char path[4096];
    static char text[1 << 16];
    if (src == NULL) {
        skip();
    }
    snprintf(path, sizeof(path), "%s/tools/schema.sql", src);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    if (strcmp(text, seed_schema_sql) != 0) {
        fail_msg("jobs/seed/seed_schema.c differs from %s: copy the file into the C string", path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_matches_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
