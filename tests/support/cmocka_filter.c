/* SPDX-License-Identifier: MIT */
/* cmocka_filter.c — linked into every cmocka test executable: OSP_TEST_FILTER=<glob> runs
 * only the test cases whose names match (cmocka_set_test_filter; '*' and '?' wildcards), e.g.
 *   OSP_TEST_FILTER='test_cancel*' ctest -R itest_test_ledger --output-on-failure
 * Set before main() by a constructor, so no test file has to call it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

__attribute__((constructor)) static void osp_cmocka_filter(void)
{
    const char *f = getenv("OSP_TEST_FILTER");
    if (f != NULL && f[0] != '\0') {
        cmocka_set_test_filter(f);
    }
}
