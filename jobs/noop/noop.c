/* SPDX-License-Identifier: MIT */
/* noop.c — the kind that does nothing, for tests and for measuring the pool itself.
 * Payload (all optional): {"sleep_ms": 0..86400000, "fail": bool, "fail_attempts": n (fail the
 * first n attempts, then succeed), "crash": bool (abort the child: tests crash recovery),
 * "crash_attempts": n, "emit": 0..1000 (progress events to send), "result": any JSON,
 * "mark_dir": path (testing only: each execution that reaches its end appends "<id> <attempt>"
 * to <mark_dir>/executions.log, so the chaos suite can count duplicate executions; the path
 * must be OSP_TEST_MARK_DIR or beneath it, without "..", and the job fails when that variable
 * is unset)}.
 * An empty payload (or one with only "result") runs inline in the worker: no fork. */
#include "common/base.h"
#include "jobs/job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const noop_keys[] = {"sleep_ms", "fail", "fail_attempts", "crash",
                                        "crash_attempts", "emit", "result", "mark_dir",
                                        NULL};

/* mark_dir is allowed only beneath OSP_TEST_MARK_DIR (an operator's test switch): a job must
 * not be able to append to arbitrary files. NULL when allowed, else the reason. */
static const char *mark_dir_refusal(const char *dir)
{
    const char *root = getenv("OSP_TEST_MARK_DIR");
    if (root == NULL || root[0] != '/') {
        return "OSP_TEST_MARK_DIR is not set (an absolute path) on this worker";
    }
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') {
        n--;
    }
    if (strncmp(dir, root, n) != 0 || (dir[n] != '\0' && dir[n] != '/')) {
        return "not beneath OSP_TEST_MARK_DIR";
    }
    if (strstr(dir, "..") != NULL) {
        return "must not contain \"..\"";
    }
    return NULL;
}

static int noop_validate(const json_t *p, const struct osp_targets *targets, struct osp_err *err)
{
    (void)targets;
    if (!json_is_object(p)) {
        return osp_err_set(err, OSP_EINVAL, "payload: must be an object");
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)p, key, v) {
        bool known = false;
        for (size_t i = 0; noop_keys[i] != NULL; i++) {
            known = known || strcmp(key, noop_keys[i]) == 0;
        }
        if (!known) {
            return osp_err_set(err, OSP_EINVAL, "payload.%.64s: unknown field", key);
        }
    }
    static const struct {
        const char *name;
        json_int_t max;
    } ints[] = {{"sleep_ms", 86400000}, {"fail_attempts", 1000}, {"crash_attempts", 1000},
                {"emit", 1000}};
    for (size_t i = 0; i < OSP_ARRAY_LEN(ints); i++) {
        const json_t *x = json_object_get(p, ints[i].name);
        if (x != NULL && (!json_is_integer(x) || json_integer_value(x) < 0 ||
                          json_integer_value(x) > ints[i].max)) {
            return osp_err_set(err, OSP_EINVAL, "payload.%s: must be an integer 0..%lld",
                               ints[i].name, (long long)ints[i].max);
        }
    }
    const json_t *md = json_object_get(p, "mark_dir");
    if (md != NULL && (!json_is_string(md) || json_string_length(md) == 0 ||
                       json_string_length(md) > 1024 ||
                       strlen(json_string_value(md)) != json_string_length(md))) {
        return osp_err_set(err, OSP_EINVAL, "payload.mark_dir: must be a path (1..1024 bytes)");
    }
    const char *bools[] = {"fail", "crash"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(bools); i++) {
        const json_t *x = json_object_get(p, bools[i]);
        if (x != NULL && !json_is_boolean(x)) {
            return osp_err_set(err, OSP_EINVAL, "payload.%s: must be true or false", bools[i]);
        }
    }
    return 0;
}

static bool noop_is_inline(const json_t *p)
{
    size_t n = json_object_size(p);
    return n == 0 || (n == 1 && json_object_get(p, "result") != NULL);
}

static json_int_t get_int(const json_t *p, const char *k)
{
    return json_integer_value(json_object_get(p, k));
}

static int noop_run(struct job_ctx *ctx)
{
    const json_t *p = job_payload(ctx);
    unsigned attempt = job_info(ctx)->attempt;
    json_int_t emit = get_int(p, "emit");
    for (json_int_t i = 0; i < emit; i++) {
        job_emit(ctx, "progress", json_pack("{s:I}", "step", i + 1));
    }
    if (json_is_true(json_object_get(p, "crash")) ||
        (json_int_t)attempt <= get_int(p, "crash_attempts")) {
        abort(); /* deliberate: the worker must record "crashed" and recover */
    }
    json_int_t sleep_ms = get_int(p, "sleep_ms");
    if (sleep_ms > 0 && job_sleep_ms(ctx, sleep_ms)) {
        return job_fail(ctx, "cancelled while sleeping");
    }
    if (json_is_true(json_object_get(p, "fail")) ||
        (json_int_t)attempt <= get_int(p, "fail_attempts")) {
        return job_fail(ctx, "failed on request (attempt %u)", attempt);
    }
    const char *mark_dir = json_string_value(json_object_get(p, "mark_dir"));
    if (mark_dir != NULL) {
        const char *why = mark_dir_refusal(mark_dir);
        if (why != NULL) {
            return job_fail(ctx, "payload.mark_dir: %s", why);
        }
        char path[1100], line[80];
        snprintf(path, sizeof(path), "%s/executions.log", mark_dir);
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        int len = snprintf(line, sizeof(line), "%s %u\n", job_info(ctx)->id, attempt);
        if (fd < 0 || write(fd, line, (size_t)len) != (ssize_t)len) {
            int e = errno;
            if (fd >= 0) {
                close(fd);
            }
            return job_fail(ctx, "payload.mark_dir: %s: %s", path, strerror(e));
        }
        close(fd);
    }
    const json_t *res = json_object_get(p, "result");
    job_set_result(ctx, res != NULL ? json_deep_copy(res) : json_pack("{s:b}", "ok", 1));
    return 0;
}

const struct job_kind job_kind_noop = {
    .name = "noop",
    .abi = JOB_KIND_ABI,
    .validate = noop_validate,
    .run = noop_run,
    .cancel = NULL,
    .is_inline = noop_is_inline,
    .default_timeout_s = 0,
};
