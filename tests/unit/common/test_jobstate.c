/* SPDX-License-Identifier: MIT */
/* test_jobstate.c — job state names round-trip, only the three final states are final, and
 * anything that is not a state name (NULL, "", case variants, prefixes) is refused. */
#include "common/jobstate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < OSP_JOB_NSTATES; i++) {
        const char *n = osp_job_state_name((enum osp_job_state)i);
        enum osp_job_state s = OSP_JOB_NSTATES;
        assert_non_null(n);
        assert_int_equal(osp_job_state_parse(n, &s), 0);
        assert_int_equal(s, i);
        assert_non_null(strstr(osp_job_states_text(), n));
    }
    assert_null(osp_job_state_name(OSP_JOB_NSTATES));
}

static void test_final(void **state)
{
    (void)state;
    const char *finals[] = {"succeeded", "failed", "dead", "cancelled"};
    const char *open[] = {"queued", "delayed", "running", "retrying"};
    for (size_t i = 0; i < 4; i++) {
        assert_true(osp_job_state_name_is_final(finals[i]));
    }
    for (size_t i = 0; i < 4; i++) {
        assert_false(osp_job_state_name_is_final(open[i]));
    }
}

static void test_not_states(void **state)
{
    (void)state;
    const char *bad[] = {"", "Queued", "queue", "queued ", "dead\n", "finished", "active"};
    enum osp_job_state s;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(osp_job_state_parse(bad[i], &s), -1);
        assert_false(osp_job_state_name_is_final(bad[i]));
    }
    assert_int_equal(osp_job_state_parse(NULL, &s), -1);
    assert_false(osp_job_state_name_is_final(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_final),
        cmocka_unit_test(test_not_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
