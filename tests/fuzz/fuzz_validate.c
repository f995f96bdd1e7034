/* SPDX-License-Identifier: MIT */
/* fuzz_validate.c — libFuzzer target for every kind's payload validator.
 *
 * Input: "<kind>\n<payload JSON>". When the first line names no kind, its first byte picks one
 * (so mutations of the name still reach a validator). The payload is parsed like the API
 * parses it, and the validator runs twice: without targets (scheduler without a targets file)
 * and against a fixed targets file covering each kind's target shapes. Validators are pure:
 * they must return 0 or OSP_EINVAL with a message, never crash, and give the same answer
 * twice. Accepted payloads must also survive msgpack (the envelope) unchanged and be accepted
 * again after the trip, as the worker re-validates what the scheduler accepted. */
#include "common/mpjson.h"
#include "jobs/job.h"
#include "jobs/targets.h"
#include "tests/fuzz/fuzz_util.h"

static const char targets_json[] =
    "{\"targets\": {"
    " \"web\": {\"adapter\": \"local\", \"base_url\": \"http://127.0.0.1:8080\","
    "   \"health_path\": \"/health\","
    "   \"lanes\": {\"baseline\": {\"model\": \"closed\", \"connections\": 8, \"duration_s\": 10},"
    "             \"broken\": {\"model\": \"open\", \"duration_s\": 10}}},"
    " \"nourl\": {\"adapter\": \"local\"},"
    " \"shop\": {\"pg_dsn\": \"dbname=x\", \"seed\": {\"scale\": 2},"
    "   \"backup\": {\"keep_daily\": 7, \"restore_check\": true}},"
    " \"nodb\": {\"base_url\": \"http://127.0.0.1:1\"},"
    " \"badseed\": {\"pg_dsn\": \"dbname=x\", \"seed\": {\"scale\": 0}},"
    " \"badkeep\": {\"pg_dsn\": \"dbname=x\", \"backup\": {\"keep_weekly\": -1}},"
    " \"svc\": {\"adapter\": \"local\", \"base_url\": \"http://127.0.0.1:18081\","
    "   \"local\": {\"pidfile\": \"/tmp/x.pid\", \"proxy_listen\": \"127.0.0.1:18081\","
    "             \"upstream\": \"127.0.0.1:18080\"},"
    "   \"limits\": {\"max_duration_s\": 60, \"allowed_faults\": [\"restart\", \"latency\","
    "                \"cpu\"], \"max_cpu_workers\": 2}},"
    " \"k8s\": {\"adapter\": \"kubernetes\", \"base_url\": \"http://shortener.shop:8080\","
    "   \"kubernetes\": {\"namespace\": \"shop\", \"selector\": \"app=shortener\","
    "                  \"api_server\": \"https://10.0.0.1:443\"},"
    "   \"limits\": {\"max_pods\": 2, \"allowed_faults\": [\"restart\", \"cpu\", \"latency\"]}}"
    "}}";

static struct osp_targets targets;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct osp_err err = {0, ""};
    if (osp_targets_parse(&targets, targets_json, &err) != 0) {
        fprintf(stderr, "fuzz_validate: fixed targets: %s\n", err.msg);
        abort();
    }
    return 0;
}

static const struct job_kind *pick_kind(const uint8_t *data, size_t size, size_t *skip)
{
    const struct job_kind *const *all = job_kinds_all();
    size_t n = 0;
    while (all[n] != NULL) {
        n++;
    }
    const uint8_t *nl = memchr(data, '\n', size < 40 ? size : 40);
    if (nl != NULL) {
        char name[41];
        size_t len = (size_t)(nl - data);
        memcpy(name, data, len);
        name[len] = '\0';
        *skip = len + 1;
        const struct job_kind *k = job_kind_find(name);
        if (k != NULL) {
            return k;
        }
    } else {
        *skip = 0;
    }
    return size > 0 ? all[data[0] % n] : all[0];
}

static int validate(const struct job_kind *k, const json_t *payload, const struct osp_targets *t)
{
    struct osp_err err = {0, ""};
    int rc = k->validate(payload, t, &err);
    fuzz_check_err(rc, &err, k->name);
    FUZZ_ASSERT(rc == 0 || rc == OSP_EINVAL);
    struct osp_err err2 = {0, ""};
    FUZZ_ASSERT(k->validate(payload, t, &err2) == rc); /* pure */
    FUZZ_ASSERT(strcmp(err.msg, err2.msg) == 0);
    if (rc == 0 && k->is_inline != NULL) {
        (void)k->is_inline(payload);
    }
    if (k->needs_exclusive != NULL) {
        /* pure, and called by the worker on what validated: must not trip on anything */
        FUZZ_ASSERT(k->needs_exclusive(payload, t) == k->needs_exclusive(payload, t));
    }
    return rc;
}

/* What the scheduler accepted, the worker decodes from msgpack and accepts again. */
static void via_msgpack(const struct job_kind *k, const json_t *payload,
                        const struct osp_targets *t)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    struct osp_err err = {0, ""};
    if (osp_mpjson_pack(&pk, payload, &err) == 0) {
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        size_t off = 0;
        FUZZ_ASSERT(msgpack_unpack_next(&up, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS);
        json_t *again = osp_mpjson_to_json(&up.data, &err);
        FUZZ_ASSERT(again != NULL && json_equal(again, payload));
        FUZZ_ASSERT(validate(k, again, t) == 0);
        json_decref(again);
        msgpack_unpacked_destroy(&up);
    }
    msgpack_sbuffer_destroy(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t skip = 0;
    const struct job_kind *k = pick_kind(data, size, &skip);
    json_error_t je;
    json_t *payload = json_loadb((const char *)data + skip, size - skip,
                                 JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (payload == NULL) {
        return 0;
    }
    int rc_none = validate(k, payload, NULL);
    if (rc_none == 0) {
        via_msgpack(k, payload, NULL);
    }
    if (validate(k, payload, &targets) == 0) {
        via_msgpack(k, payload, &targets);
        /* Targets only add checks: what passes with them passes without. */
        FUZZ_ASSERT(rc_none == 0);
    }
    json_decref(payload);
    return 0;
}
