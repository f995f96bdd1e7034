/* SPDX-License-Identifier: MIT */
/* notify.h — webhook notifications: the endpoints file, the body and its signature
 * (docs/notifications.md, docs/decisions/0012-notifications-outbox.md). Pure functions: the
 * scheduler's duty (scheduler/notify.c) sends, the ledger (common/ledger_notify.c) keeps the
 * outbox and the delivery log.
 *
 * OSP_NOTIFY_FILE:
 *   {"endpoints": {"<name>": {"url": "https://..." | "url_file": "/run/secrets/...",
 *                             "secret_file": "/run/secrets/...",
 *                             "events": ["job.dead", ...] | ["*"],
 *                             "format": "json" | "slack",
 *                             "timeout_ms": 5000, "max_attempts": 8,
 *                             "retry_base_ms": 5000, "retry_max_ms": 3600000,
 *                             "max_age_s": 86400}}}
 * URLs and secrets are never logged, printed or stored in the ledger: an endpoint is known
 * by its name everywhere else. */
#ifndef OSP_NOTIFY_H
#define OSP_NOTIFY_H

#include "common/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OSP_NOTIFY_NAME_MAX      64
#define OSP_NOTIFY_MAX_ENDPOINTS 32
#define OSP_NOTIFY_URL_MAX       2048
#define OSP_NOTIFY_SECRET_MIN    16 /* bytes: a shorter signing secret is refused */
#define OSP_NOTIFY_SECRET_MAX    4096

enum osp_notify_format { OSP_NOTIFY_JSON, OSP_NOTIFY_SLACK };

/* The event types, in the order of the migration's CHECK (0009_notifications.sql). */
extern const char *const osp_notify_event_types[];
extern const size_t osp_notify_nevent_types;
bool osp_notify_event_known(const char *type);

struct osp_notify_endpoint {
    char name[OSP_NOTIFY_NAME_MAX + 1];
    char *url;    /* owned; never logged */
    char *secret; /* owned, NULL = unsigned (slack format only); never logged */
    size_t secret_len;
    unsigned events; /* bit i: osp_notify_event_types[i] */
    enum osp_notify_format format;
    int timeout_ms;
    int max_attempts;
    int retry_base_ms;
    int retry_max_ms;
    int max_age_s;
};

struct osp_notify_config {
    struct osp_notify_endpoint ep[OSP_NOTIFY_MAX_ENDPOINTS];
    size_t n;
};

/* Parse and check an endpoints file (path: for messages; url_file and secret_file are read
 * here). On bad input OSP_EINVAL with err naming the endpoint and the field, and *c left
 * empty. */
int osp_notify_load(struct osp_notify_config *c, const char *path, struct osp_err *err);
int osp_notify_parse(struct osp_notify_config *c, const char *json_text, const char *path,
                     struct osp_err *err);
/* Wipe the secrets and free. */
void osp_notify_config_deinit(struct osp_notify_config *c);
const struct osp_notify_endpoint *osp_notify_find(const struct osp_notify_config *c,
                                                  const char *name);
/* {"<name>": ["job.dead", ...], ...}: what the fan-out needs (no URL, no secret). */
json_t *osp_notify_routes(const struct osp_notify_config *c);

/* One delivery as the ledger hands it over (borrowed strings). */
struct osp_notify_delivery {
    const char *id;          /* the delivery's uuid: the idempotency key */
    const char *type;        /* event type */
    const char *event_id;    /* the event's number */
    const char *subject;     /* job / campaign id, schedule name */
    const char *occurred_at; /* ISO 8601 */
    const char *data;        /* the event's JSON object */
    int attempt;             /* 1 for the first */
};

/* The body for endpoint e (a NUL-terminated JSON text, caller frees), or NULL when d->data is
 * not a JSON object. json: {"schema": "opspool.notification/v1", "id", "type", "event_id",
 * "attempt", "occurred_at", "subject", "summary", "data"}; slack: {"text": summary}. */
char *osp_notify_body(const struct osp_notify_endpoint *e, const struct osp_notify_delivery *d);
/* One line a person reads: "job 0190… (drill) is dead after 3 attempts: <error>". */
char *osp_notify_summary(const char *type, const char *subject, json_t *data);
/* The signature header's value, "t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>" (the
 * scheme Stripe uses; GitHub's is the same HMAC without the timestamp). out: at least
 * OSP_NOTIFY_SIG_MAX bytes. */
#define OSP_NOTIFY_SIG_MAX 96
void osp_notify_sign(const struct osp_notify_endpoint *e, int64_t t, const char *body, size_t len,
                     char *out);
/* The delay before attempt n+1 after n failed ones (n >= 1): base * 2^(n-1) capped at max,
 * the upper half drawn at random ("equal jitter": never less than half the backoff, so a
 * flood of failures spreads out without retrying early). r: a uniform random in [0, 1). */
int64_t osp_notify_backoff_ms(const struct osp_notify_endpoint *e, int n, double r);

#endif
