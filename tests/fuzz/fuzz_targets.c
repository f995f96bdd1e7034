/* SPDX-License-Identifier: MIT */
/* fuzz_targets.c — libFuzzer target for the targets file parser (jobs/targets.h), and for the
 * validators reading what it accepted: the file is operator input, but validators trust its
 * shape only as far as osp_targets_parse checks it, so every kind's validator runs against
 * every parsed target with a few typical payloads. */
#include "jobs/job.h"
#include "jobs/targets.h"
#include "tests/fuzz/fuzz_util.h"

/* Payloads, each completed with "target": <name>. */
static const char *const payloads[] = {
    "{}",
    "{\"lanes\": [\"baseline\"]}",
    "{\"lanes\": [{\"name\": \"a\", \"duration_s\": 5}]}",
    "{\"fault\": {\"type\": \"restart\"}}",
    "{\"fault\": {\"type\": \"cpu\", \"workers\": 2, \"duration_s\": 5}}",
    "{\"fault\": {\"type\": \"latency\", \"latency_ms\": 10, \"duration_s\": 5}}",
    "{\"verify\": \"restore\"}",
    "{\"scale\": 3}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    struct osp_targets t;
    struct osp_err err = {0, ""};
    int rc = osp_targets_parse(&t, text, &err);
    free(text);
    fuzz_check_err(rc, &err, "osp_targets_parse");
    if (rc != 0) {
        FUZZ_ASSERT(rc == OSP_EINVAL && t.root == NULL);
        return 0;
    }
    FUZZ_ASSERT(json_is_object(t.root));

    const char *name;
    json_t *target;
    json_object_foreach(t.root, name, target)
    {
        FUZZ_ASSERT(osp_target_get(&t, name) == target);
        (void)osp_target_str(target, "base_url");
        (void)osp_target_str(target, "adapter");
        (void)osp_target_int(target, "max_pods", 1);
        for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
            json_t *p = json_loads(payloads[i], 0, NULL);
            FUZZ_ASSERT(p != NULL);
            json_object_set_new(p, "target", json_string(name));
            for (const struct job_kind *const *k = job_kinds_all(); *k != NULL; k++) {
                struct osp_err verr = {0, ""};
                int vrc = (*k)->validate(p, &t, &verr);
                fuzz_check_err(vrc, &verr, (*k)->name);
                FUZZ_ASSERT(vrc == 0 || vrc == OSP_EINVAL);
            }
            json_decref(p);
        }
    }
    FUZZ_ASSERT(osp_target_get(&t, NULL) == NULL);
    osp_targets_deinit(&t);
    return 0;
}
