/* SPDX-License-Identifier: MIT */
/* notify.c — the notification duty: every second, fan the outbox's new events out to the
 * endpoints of OSP_NOTIFY_FILE, claim the deliveries that are due, and send them; HTTP runs
 * on the scheduler's loop through libcurl's multi interface (sockets and timers are libev
 * watchers), so a slow receiver never holds up the API or another duty.
 *
 * Ledger first (docs/decisions/0012-notifications-outbox.md): the events are written by
 * triggers in the transaction that made them happen; a delivery is claimed with a lease and
 * its attempt row is written before the request goes out; its end is recorded after. A
 * replica that dies mid-attempt leaves the lease to expire, and the next claim closes that
 * attempt as interrupted and sends again, with the same delivery id: delivery is at least
 * once, and receivers drop repeats by the id (Opspool-Delivery, Idempotency-Key). Any number
 * of replicas may run it (FOR UPDATE SKIP LOCKED). URLs and secrets are never logged: an
 * endpoint is its name. */
#define _GNU_SOURCE /* random() */
#include "common/notify.h"
#include "common/alloc.h"
#include "common/log.h"
#include "scheduler/sched.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOTIFY_PERIOD_S     1.0
#define NOTIFY_FANOUT_MAX   200 /* events fanned out per round */
#define NOTIFY_INFLIGHT_MAX 16  /* requests in flight per replica */
#define NOTIFY_LEASE_PAD_S  5   /* lease = the endpoint's timeout + this */
#define NOTIFY_SNIPPET_MAX  120 /* bytes of a refusing receiver's answer kept in the log */

struct notify_xfer {
    struct notify_xfer *next;
    struct sched_notify *n;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    char id[40];
    char endpoint[OSP_NOTIFY_NAME_MAX + 1];
    char type[32];
    int attempt, budget;
    int64_t age_s;
    int64_t t0_ns;
    /* the endpoint's policy, copied: a reload may replace the configuration meanwhile */
    struct osp_notify_endpoint pol;
    char snippet[NOTIFY_SNIPPET_MAX + 1];
    size_t snippet_len;
};

struct notify_sock {
    ev_io io;
    struct sched_notify *n;
    struct notify_sock *prev, *next; /* n->socks */
};

struct sched_notify {
    struct sched *s;
    struct osp_notify_config cfg;
    json_t *routes; /* {"<endpoint>": [types]} */
    json_t *names;  /* ["<endpoint>", ...] */
    CURLM *multi;
    ev_timer curl_timer;
    struct notify_xfer *xfers;
    int inflight;
    struct notify_sock *socks; /* watched for libcurl */
    struct sched_duty duty;
    struct osp_metric *m_sent; /* counter{endpoint,result} */
};

static void config_apply(struct sched_notify *n, struct osp_notify_config *c)
{
    osp_notify_config_deinit(&n->cfg);
    n->cfg = *c;
    memset(c, 0, sizeof(*c));
    json_decref(n->routes);
    json_decref(n->names);
    n->routes = osp_notify_routes(&n->cfg);
    n->names = json_array();
    for (size_t i = 0; i < n->cfg.n; i++) {
        json_array_append_new(n->names, json_string(n->cfg.ep[i].name));
        /* Every series exists from the start at 0: increase() sees the first failure. */
        static const char *const results[] = {"delivered", "retry", "failed"};
        for (size_t r = 0; r < OSP_ARRAY_LEN(results); r++) {
            const char *v[] = {n->cfg.ep[i].name, results[r]};
            osp_metric_add(n->m_sent, v, 0);
        }
    }
}

/* ---- the end of an attempt ---- */

static void xfer_free(struct notify_xfer *x)
{
    curl_slist_free_all(x->hdrs);
    curl_easy_cleanup(x->easy);
    free(x->body);
    free(x);
}

static void unlink_xfer(struct sched_notify *n, struct notify_xfer *x)
{
    for (struct notify_xfer **p = &n->xfers; *p != NULL; p = &(*p)->next) {
        if (*p == x) {
            *p = x->next;
            n->inflight--;
            return;
        }
    }
}

/* Record the attempt's end and the delivery's next state. */
static void record(struct sched_notify *n, struct notify_xfer *x, long status, const char *error,
                   const char *state, int64_t next_in_ms)
{
    struct sched *s = n->s;
    int dur = (int)((osp_mono_ns() - x->t0_ns) / 1000000);
    const char *v[] = {x->endpoint, strcmp(state, "pending") == 0 ? "retry" : state};
    osp_metric_add(n->m_sent, v, 1);
    struct osp_pgs *pg = sched_pg(s);
    struct osp_err err = {0, ""};
    if (pg == NULL || osp_ledger_notify_done(pg, x->id, x->attempt, (int)status, error, dur, state,
                                             next_in_ms, &err) != 0) {
        if (pg != NULL) {
            sched_pg_failed(s, &err);
        }
        /* The lease runs out and another round sends it again (same delivery id). */
        osp_warn("notification %s to endpoint %s: recording attempt %d failed (%s); it is sent "
                 "again when its lease ends",
                 x->id, x->endpoint, x->attempt, pg == NULL ? "postgresql unreachable" : err.msg);
    }
}

static void complete(struct sched_notify *n, struct notify_xfer *x, CURLcode res)
{
    long status = 0;
    char error[256];
    if (res == CURLE_OK) {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    }
    if (res == CURLE_OK && status >= 200 && status < 300) {
        osp_info("notification %s (%s) delivered to endpoint %s (attempt %d, HTTP %ld)", x->id,
                 x->type, x->endpoint, x->attempt, status);
        record(n, x, status, NULL, "delivered", 0);
        return;
    }
    if (res != CURLE_OK) {
        /* curl's generic text, never its error buffer: that may quote the URL. */
        snprintf(error, sizeof(error), "%s", curl_easy_strerror(res));
    } else {
        for (size_t i = 0; i < x->snippet_len; i++) {
            unsigned char c = (unsigned char)x->snippet[i];
            x->snippet[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
        }
        snprintf(error, sizeof(error), "HTTP %ld%s%s%.*s%s", status,
                 status >= 300 && status < 400 ? " (webhooks do not follow redirects)" : "",
                 x->snippet_len > 0 ? ": " : "", (int)x->snippet_len, x->snippet,
                 x->snippet_len == NOTIFY_SNIPPET_MAX ? "…" : "");
    }
    int64_t next =
        osp_notify_backoff_ms(&x->pol, x->budget, (double)random() / ((double)RAND_MAX + 1));
    bool out_of_tries = x->budget >= x->pol.max_attempts;
    bool too_old = x->age_s + next / 1000 > x->pol.max_age_s;
    if (out_of_tries || too_old) {
        char final[400];
        snprintf(final, sizeof(final), "gave up after %d attempt(s)%s: %s", x->budget,
                 too_old && !out_of_tries ? " (max_age_s reached)" : "", error);
        osp_warn("notification %s (%s) to endpoint %s failed for good: %s", x->id, x->type,
                 x->endpoint, final);
        record(n, x, status, final, "failed", 0);
        return;
    }
    osp_warn("notification %s (%s) to endpoint %s: attempt %d failed (%s); next in %.1f s", x->id,
             x->type, x->endpoint, x->attempt, error, (double)next / 1000);
    record(n, x, status, error, "pending", next);
}

static void check_done(struct sched_notify *n)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(n->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        struct notify_xfer *x = NULL;
        CURL *easy = m->easy_handle;
        CURLcode res = m->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(n->multi, easy);
        unlink_xfer(n, x);
        complete(n, x, res);
        xfer_free(x);
    }
}

/* ---- libcurl on the libev loop ---- */

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct notify_sock *ns = osp_container_of(w, struct notify_sock, io);
    struct sched_notify *n = ns->n;
    int action =
        ((revents & EV_READ) ? CURL_CSELECT_IN : 0) | ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(n->multi, w->fd, action, &running);
    check_done(n);
}

static void sock_free(struct sched_notify *n, struct notify_sock *ns)
{
    ev_io_stop(n->s->loop, &ns->io);
    if (ns->prev != NULL) {
        ns->prev->next = ns->next;
    } else {
        n->socks = ns->next;
    }
    if (ns->next != NULL) {
        ns->next->prev = ns->prev;
    }
    free(ns);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct sched_notify *n = userp;
    struct notify_sock *ns = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ns != NULL) {
            sock_free(n, ns);
            curl_multi_assign(n->multi, fd, NULL);
        }
        return 0;
    }
    if (ns == NULL) {
        ns = osp_xcalloc(1, sizeof(*ns));
        ns->n = n;
        ns->next = n->socks;
        if (n->socks != NULL) {
            n->socks->prev = ns;
        }
        n->socks = ns;
        curl_multi_assign(n->multi, fd, ns);
    } else {
        ev_io_stop(n->s->loop, &ns->io);
    }
    int ev = ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    ev_io_init(&ns->io, io_cb, fd, ev);
    ev_io_start(n->s->loop, &ns->io);
    return 0;
}

static void curl_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sched_notify *n = osp_container_of(w, struct sched_notify, curl_timer);
    int running;
    curl_multi_socket_action(n->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(n);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct sched_notify *n = userp;
    ev_timer_stop(n->s->loop, &n->curl_timer);
    if (timeout_ms >= 0) {
        ev_timer_set(&n->curl_timer, (double)timeout_ms / 1000.0, 0.);
        ev_timer_start(n->s->loop, &n->curl_timer);
    }
    return 0;
}

static size_t keep_snippet(char *data, size_t size, size_t nmemb, void *arg)
{
    struct notify_xfer *x = arg;
    size_t len = size * nmemb;
    size_t room = NOTIFY_SNIPPET_MAX - x->snippet_len;
    size_t take = len < room ? len : room;
    memcpy(x->snippet + x->snippet_len, data, take);
    x->snippet_len += take;
    return len; /* the rest is read and dropped */
}

/* ---- a round ---- */

static const char *row_str(const json_t *row, const char *k)
{
    const char *v = json_string_value(json_object_get(row, k));
    return v != NULL ? v : "";
}

static void start_xfer(struct sched_notify *n, const json_t *row)
{
    struct sched *s = n->s;
    const char *endpoint = row_str(row, "endpoint");
    const struct osp_notify_endpoint *ep = osp_notify_find(&n->cfg, endpoint);
    struct notify_xfer *x = osp_xcalloc(1, sizeof(*x));
    x->n = n;
    snprintf(x->id, sizeof(x->id), "%s", row_str(row, "id"));
    snprintf(x->endpoint, sizeof(x->endpoint), "%s", endpoint);
    snprintf(x->type, sizeof(x->type), "%s", row_str(row, "type"));
    x->attempt = atoi(row_str(row, "attempt"));
    x->budget = atoi(row_str(row, "budget"));
    x->age_s = strtoll(row_str(row, "age_s"), NULL, 10);
    x->t0_ns = osp_mono_ns();
    if (ep == NULL) { /* claimed by name: only a reload in between could do this */
        record(n, x, 0, "the endpoint is no longer configured", "pending", 60000);
        free(x);
        return;
    }
    x->pol = *ep;
    x->pol.url = NULL;
    x->pol.secret = NULL;
    struct osp_notify_delivery d = {x->id,
                                    x->type,
                                    row_str(row, "event_id"),
                                    row_str(row, "subject"),
                                    row_str(row, "occurred_at"),
                                    row_str(row, "data"),
                                    x->attempt};
    x->body = osp_notify_body(ep, &d);
    if (x->body == NULL) {
        record(n, x, 0, "the event's data is not a JSON object", "failed", 0);
        free(x);
        return;
    }
    char sig[OSP_NOTIFY_SIG_MAX], h[160];
    osp_notify_sign(ep, osp_now_ms() / 1000, x->body, strlen(x->body), sig);
    x->hdrs = curl_slist_append(x->hdrs, "Content-Type: application/json");
    x->hdrs = curl_slist_append(x->hdrs, "Expect:");
    snprintf(h, sizeof(h), "Opspool-Event: %s", x->type);
    x->hdrs = curl_slist_append(x->hdrs, h);
    snprintf(h, sizeof(h), "Opspool-Delivery: %s", x->id);
    x->hdrs = curl_slist_append(x->hdrs, h);
    snprintf(h, sizeof(h), "Idempotency-Key: %s", x->id);
    x->hdrs = curl_slist_append(x->hdrs, h);
    snprintf(h, sizeof(h), "Opspool-Attempt: %d", x->attempt);
    x->hdrs = curl_slist_append(x->hdrs, h);
    snprintf(h, sizeof(h), "Opspool-Signature: %s", sig);
    x->hdrs = curl_slist_append(x->hdrs, h);

    x->easy = curl_easy_init();
    if (x->easy == NULL) {
        unlink_xfer(n, x); /* not linked yet: a no-op */
        record(n, x, 0, "libcurl could not make a request handle", "pending", 5000);
        curl_slist_free_all(x->hdrs);
        free(x->body);
        free(x);
        return;
    }
    curl_easy_setopt(x->easy, CURLOPT_URL, ep->url);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)ep->timeout_ms);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)ep->timeout_ms);
    curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "opspool-notify/1");
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, keep_snippet);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    x->next = n->xfers;
    n->xfers = x;
    n->inflight++;
    if (curl_multi_add_handle(n->multi, x->easy) != CURLM_OK) {
        unlink_xfer(n, x);
        record(n, x, 0, "libcurl refused the request", "pending", 5000);
        xfer_free(x);
    }
    (void)s;
}

static void notify_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sched_duty *d = osp_container_of(w, struct sched_duty, timer);
    struct sched *s = d->s;
    struct sched_notify *n = s->notify;
    if (d->in_flight || n->cfg.n == 0) {
        return;
    }
    struct osp_pgs *pg = sched_pg(s);
    if (pg == NULL) {
        return;
    }
    d->in_flight = true;
    int64_t t0 = osp_mono_ns();
    struct osp_err err = {0, ""};
    int events = 0, deliveries = 0;
    if (osp_ledger_notify_fanout(pg, n->routes, NOTIFY_FANOUT_MAX, &events, &deliveries, &err) !=
        0) {
        sched_pg_failed(s, &err);
        osp_warn("notifications: fan-out: %s (next round retries)", err.msg);
        goto out;
    }
    if (events > 0) {
        osp_debug("notifications: %d event(s) -> %d deliveries", events, deliveries);
    }
    int room = NOTIFY_INFLIGHT_MAX - n->inflight;
    if (room <= 0) {
        goto out;
    }
    int lease = NOTIFY_LEASE_PAD_S;
    for (size_t i = 0; i < n->cfg.n; i++) {
        int t = n->cfg.ep[i].timeout_ms / 1000 + NOTIFY_LEASE_PAD_S;
        lease = t > lease ? t : lease;
    }
    json_t *rows = osp_ledger_notify_claim(pg, n->names, room, s->replica, lease, &err);
    if (rows == NULL) {
        sched_pg_failed(s, &err);
        osp_warn("notifications: claim: %s (next round retries)", err.msg);
        goto out;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        start_xfer(n, row);
    }
    json_decref(rows);
out:
    sched_duty_observe(s, "notify", t0);
    d->in_flight = false;
}

/* ---- start, reload, stop ---- */

int sched_notify_start(struct sched *s, struct osp_err *err)
{
    struct sched_notify *n = osp_xcalloc(1, sizeof(*n));
    n->s = s;
    s->notify = n;
    n->routes = json_object();
    n->names = json_array();
    static const char *const lbl[] = {"endpoint", "result", NULL};
    struct osp_metrics *m = s->metrics;
    n->m_sent = osp_metric_counter(m, "opspool_notifications_total",
                                   "webhook attempts by endpoint and result (delivered, retry, "
                                   "failed: gave up)",
                                   lbl);
    if (s->cfg->notify_file[0] == '\0') {
        return 0;
    }
    struct osp_notify_config c;
    if (osp_notify_load(&c, s->cfg->notify_file, err) != 0) {
        return OSP_EINVAL;
    }
    config_apply(n, &c);
    srandom((unsigned)(osp_mono_ns() ^ getpid())); /* retry jitter differs across replicas */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return osp_err_set(err, OSP_EINVAL, "libcurl: global initialisation failed");
    }
    n->multi = curl_multi_init();
    curl_multi_setopt(n->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(n->multi, CURLMOPT_SOCKETDATA, n);
    curl_multi_setopt(n->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(n->multi, CURLMOPT_TIMERDATA, n);
    ev_timer_init(&n->curl_timer, curl_timeout_cb, 0., 0.);
    sched_duty_start(s, &n->duty, NOTIFY_PERIOD_S, notify_cb);
    osp_info("notifications: %zu endpoint(s) from %s", n->cfg.n, s->cfg->notify_file);
    return 0;
}

int sched_notify_reload(struct sched *s, struct osp_err *err)
{
    struct sched_notify *n = s->notify;
    if (n == NULL || n->multi == NULL) {
        return osp_err_set(err, OSP_EINVAL,
                           "notifications are off (OSP_NOTIFY_FILE unset at "
                           "start); restart to turn them on");
    }
    struct osp_notify_config c;
    if (osp_notify_load(&c, s->cfg->notify_file, err) != 0) {
        return OSP_EINVAL;
    }
    config_apply(n, &c);
    return 0;
}

void sched_notify_stop(struct sched *s)
{
    struct sched_notify *n = s->notify;
    if (n == NULL) {
        return;
    }
    if (n->multi != NULL) {
        sched_duty_stop(s, &n->duty);
        /* Requests in flight are abandoned and made due again now: another replica (or this
         * one after its restart) sends them, with the same delivery id. */
        while (n->xfers != NULL) {
            struct notify_xfer *x = n->xfers;
            curl_multi_remove_handle(n->multi, x->easy);
            unlink_xfer(n, x);
            record(n, x, 0, "interrupted: the scheduler stopped", "pending", 0);
            xfer_free(x);
        }
        ev_timer_stop(s->loop, &n->curl_timer);
        curl_multi_cleanup(n->multi);
        while (n->socks != NULL) { /* kept-alive connections libcurl closed without telling */
            sock_free(n, n->socks);
        }
        n->multi = NULL;
        curl_global_cleanup();
    }
    osp_notify_config_deinit(&n->cfg);
    json_decref(n->routes);
    json_decref(n->names);
    free(n);
    s->notify = NULL;
}
