/* SPDX-License-Identifier: MIT */
/* podcost.c — keeps this pod's controller.kubernetes.io/pod-deletion-cost annotation equal to
 * the number of busy slots x PODCOST_PER_SLOT, so a ReplicaSet scale-in deletes idle pods
 * first (docs/deploy.md, "Scale-in and busy workers"). Contract in worker.h.
 *
 * On only when OSP_POD_NAME is set (Downward API); then OSP_POD_NAMESPACE is required too.
 * The one Kubernetes API call, matching the worker Role in deploy/k8s/base/worker-rbac.yaml:
 *   PATCH  /api/v1/namespaces/{ns}/pods/{name}                     pods: patch
 * with Content-Type application/merge-patch+json and only the annotation in the body.
 *
 * The loop never blocks on HTTP: each update runs in a short-lived forked child (libcurl,
 * one request, a 401 re-reads the token file and retries once) that reports a one-line error
 * through a pipe and exits; an ev_child watcher reaps it and an ev_timer SIGKILLs it if it
 * outlives PODCOST_KILL_S. At most one request is in flight, requests start at most once per
 * PODCOST_MIN_INTERVAL_S (leading edge: a busy pod is marked at once when the last update is
 * old, later changes coalesce into one trailing update) and only when the wanted value
 * differs from the last value the API accepted. Failures back off up to PODCOST_BACKOFF_MAX_S,
 * are logged once per distinct message (again after PODCOST_RELOG_S), and never touch jobs.
 * The first update after start-up writes the current value even when it is 0: a restarted
 * container may find its pod still annotated with the previous process's busy count.
 * The child reads the token file on every request, so a rotated token is always picked up.
 * A failed request is logged like any other failure; jobs keep running. */
#define _GNU_SOURCE /* pipe2 */
#include "common/alloc.h"
#include "common/base.h"
#include "common/buf.h"
#include "common/log.h"
#include "worker/worker.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define PODCOST_PER_SLOT       100   /* cost per busy slot; 1..99 stay free for operators */
#define PODCOST_MIN_INTERVAL_S 3.0   /* between request starts */
#define PODCOST_BACKOFF_MAX_S  60.0  /* after repeated failures */
#define PODCOST_TIMEOUT_MS     5000L /* libcurl's bound for one request (connect included) */
#define PODCOST_KILL_S         12.0  /* the child's whole life: two requests + the token read */
#define PODCOST_RELOG_S        600.0 /* repeat an unchanged error after this long */
#define PODCOST_REPLY_MAX      (1u << 20)
#define PODCOST_ANNOTATION     "controller.kubernetes.io/pod-deletion-cost"

struct wrk_podcost {
    struct wrk *w;
    char *url;   /* API base + /api/v1/namespaces/{ns}/pods/{name} */
    char *where; /* "ns/name", for logs */
    char *token_file, *ca_file;
    int want;    /* cost for the current busy count */
    int applied; /* last value the API accepted; -1 unknown (start-up) */
    int sending; /* value of the request in flight */
    pid_t pid;   /* request child, 0 when none */
    int pipe_fd; /* its error line, -1 when none */
    bool killed; /* SIGKILLed at PODCOST_KILL_S */
    ev_child child_w;
    ev_timer kill_w;    /* the child's deadline */
    ev_timer next_w;    /* debounce / retry */
    int64_t next_ok_ns; /* monotonic: no request starts before this */
    double backoff_s;   /* 0 after a success */
    char last_err[256]; /* last error logged; "" when the last request succeeded */
    int64_t last_err_log_ns;
    unsigned suppressed; /* identical errors not logged since */
    uint64_t n_ok, n_fail;
};

/* ---- The child: one PATCH ---- */

static size_t podcost_write(char *p, size_t size, size_t n, void *arg)
{
    struct osp_buf *b = arg;
    if (b->len + size * n > PODCOST_REPLY_MAX) {
        return 0;
    }
    osp_buf_append(b, p, size * n);
    return size * n;
}

/* The token file's first line, trimmed, into buf; 0 or -1 with msg filled. */
static int podcost_read_token(const char *file, char *buf, size_t n, char *msg, size_t msgn)
{
    FILE *f = fopen(file, "re");
    if (f == NULL) {
        snprintf(msg, msgn, "token file %s: %s", file, strerror(errno));
        return -1;
    }
    size_t len = fread(buf, 1, n - 1, f);
    fclose(f);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) {
        len--;
    }
    buf[len] = '\0';
    if (len == 0 || strpbrk(buf, "\r\n") != NULL) {
        snprintf(msg, msgn, "token file %s: empty or malformed", file);
        return -1;
    }
    return 0;
}

static long podcost_once(CURL *c, const struct wrk_podcost *pc, const char *token, const char *body,
                         struct osp_buf *reply, char *msg, size_t msgn)
{
    char *auth = osp_xasprintf("Authorization: Bearer %s", token);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Accept: application/json");
    h = curl_slist_append(h, "Content-Type: application/merge-patch+json");
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, pc->url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PATCH");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, PODCOST_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, PODCOST_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "opspool-worker/" OSP_VERSION);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, podcost_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
    if (pc->ca_file[0] != '\0' && strncmp(pc->url, "https://", 8) == 0) {
        curl_easy_setopt(c, CURLOPT_CAINFO, pc->ca_file);
    }
    osp_buf_reset(reply);
    long status = 0;
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(msg, msgn, "PATCH %s: %s", pc->where, curl_easy_strerror(cc));
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(h);
    memset(auth, 0, strlen(auth)); /* the header held the token */
    free(auth);
    return status;
}

/* Exit status 0: the API accepted the value. Otherwise one line on fd says why. Never
 * returns; never logs (the parent does, once). */
static _Noreturn void podcost_child(const struct wrk_podcost *pc, int value, int fd)
{
    /* Default dispositions, empty mask (the parent's loop owns its signals); die with it. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGKILL);

    char msg[256] = "";
    char token[8192];
    char body[160];
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"annotations\":{\"" PODCOST_ANNOTATION "\":\"%d\"}}}", value);
    int rc = 1;
    if (podcost_read_token(pc->token_file, token, sizeof(token), msg, sizeof(msg)) != 0) {
        goto out;
    }
    /* libcurl's global init: fine in this single-threaded child. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(msg, sizeof(msg), "PATCH %s: libcurl global initialisation failed", pc->where);
        goto out;
    }
    CURL *c = curl_easy_init();
    if (c == NULL) {
        snprintf(msg, sizeof(msg), "libcurl: cannot create a handle");
        goto out;
    }
    struct osp_buf reply = OSP_BUF_INIT;
    long status = podcost_once(c, pc, token, body, &reply, msg, sizeof(msg));
    if (status == 401) {
        /* A rotated projected token: read the file again and retry exactly once. */
        if (podcost_read_token(pc->token_file, token, sizeof(token), msg, sizeof(msg)) != 0) {
            goto out;
        }
        status = podcost_once(c, pc, token, body, &reply, msg, sizeof(msg));
    }
    memset(token, 0, sizeof(token));
    if (status == 200) {
        rc = 0;
    } else if (status != 0) {
        /* A Status object's message names the cause (RBAC, not found, invalid). */
        json_t *j = json_loadb((const char *)reply.data, reply.len, 0, NULL);
        const char *m = json_string_value(json_object_get(j, "message"));
        snprintf(msg, sizeof(msg), "PATCH %s: HTTP %ld%s%.180s", pc->where, status, m ? ": " : "",
                 m ? m : "");
        json_decref(j);
    }
out:
    if (rc != 0) {
        char line[sizeof(msg) + 1];
        int len = snprintf(line, sizeof(line), "%s\n", msg);
        ssize_t wr = write(fd, line, (size_t)len); /* < PIPE_BUF: atomic, done before the exit */
        (void)wr;
    }
    _exit(rc);
}

/* ---- The parent: scheduling, reaping, logging ---- */

static void podcost_kick(struct wrk_podcost *pc);

static void podcost_log_result(struct wrk_podcost *pc, const char *err)
{
    int64_t now = osp_mono_ns();
    if (err == NULL) {
        pc->n_ok++;
        if (pc->last_err[0] != '\0') {
            osp_info("pod deletion cost: %s updated again (%d)", pc->where, pc->applied);
        } else {
            osp_debug("pod deletion cost: %s = %d", pc->where, pc->applied);
        }
        pc->last_err[0] = '\0';
        pc->suppressed = 0;
        return;
    }
    pc->n_fail++;
    if (strcmp(err, pc->last_err) == 0 &&
        (double)(now - pc->last_err_log_ns) / 1e9 < PODCOST_RELOG_S) {
        pc->suppressed++;
        return;
    }
    if (pc->suppressed > 0 && strcmp(err, pc->last_err) == 0) {
        osp_warn("pod deletion cost not updated (jobs are unaffected): %s (also %u times since it "
                 "was last logged)",
                 err, pc->suppressed);
    } else {
        osp_warn("pod deletion cost not updated (jobs are unaffected): %s", err);
    }
    snprintf(pc->last_err, sizeof(pc->last_err), "%s", err);
    pc->last_err_log_ns = now;
    pc->suppressed = 0;
}

static void on_podcost_child(struct ev_loop *loop, ev_child *cw, int revents)
{
    (void)revents;
    struct wrk_podcost *pc = osp_container_of(cw, struct wrk_podcost, child_w);
    ev_child_stop(loop, cw);
    ev_timer_stop(loop, &pc->kill_w);
    int st = cw->rstatus;
    char msg[256] = "";
    ssize_t n = read(pc->pipe_fd, msg, sizeof(msg) - 1);
    close(pc->pipe_fd);
    pc->pipe_fd = -1;
    pc->pid = 0;
    if (n > 0) {
        msg[n] = '\0';
        msg[strcspn(msg, "\n")] = '\0';
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        pc->applied = pc->sending;
        pc->backoff_s = 0;
        podcost_log_result(pc, NULL);
    } else {
        if (pc->killed) {
            snprintf(msg, sizeof(msg), "PATCH %s: no answer within %.0f s", pc->where,
                     PODCOST_KILL_S);
        } else if (msg[0] == '\0') {
            snprintf(msg, sizeof(msg), "PATCH %s: request process ended with status 0x%x",
                     pc->where, st);
        }
        pc->backoff_s = pc->backoff_s == 0 ? PODCOST_MIN_INTERVAL_S : pc->backoff_s * 2;
        if (pc->backoff_s > PODCOST_BACKOFF_MAX_S) {
            pc->backoff_s = PODCOST_BACKOFF_MAX_S;
        }
        int64_t retry = osp_mono_ns() + (int64_t)(pc->backoff_s * 1e9);
        if (retry > pc->next_ok_ns) {
            pc->next_ok_ns = retry;
        }
        podcost_log_result(pc, msg);
    }
    pc->killed = false;
    podcost_kick(pc);
}

static void on_podcost_kill(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct wrk_podcost *pc = osp_container_of(t, struct wrk_podcost, kill_w);
    if (pc->pid > 0) {
        pc->killed = true;
        kill(pc->pid, SIGKILL); /* reaped by on_podcost_child */
    }
}

static void podcost_send(struct wrk_podcost *pc)
{
    struct ev_loop *loop = pc->w->loop;
    int fds[2];
    char err[128];
    pc->next_ok_ns = osp_mono_ns() + (int64_t)(PODCOST_MIN_INTERVAL_S * 1e9);
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, sizeof(err), "cannot start a request: pipe: %s", strerror(errno));
        goto fail;
    }
    pc->sending = pc->want;
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, sizeof(err), "cannot start a request: fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        goto fail;
    }
    if (pid == 0) {
        close(fds[0]);
        podcost_child(pc, pc->sending, fds[1]);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    pc->pid = pid;
    pc->pipe_fd = fds[0];
    pc->killed = false;
    ev_child_init(&pc->child_w, on_podcost_child, pid, 0);
    ev_child_start(loop, &pc->child_w);
    ev_timer_init(&pc->kill_w, on_podcost_kill, PODCOST_KILL_S, 0.);
    ev_timer_start(loop, &pc->kill_w);
    return;
fail:
    /* Resource exhaustion: treat as a failed request (backoff, logged once). */
    pc->backoff_s = pc->backoff_s == 0 ? PODCOST_MIN_INTERVAL_S : pc->backoff_s * 2;
    if (pc->backoff_s > PODCOST_BACKOFF_MAX_S) {
        pc->backoff_s = PODCOST_BACKOFF_MAX_S;
    }
    pc->next_ok_ns = osp_mono_ns() + (int64_t)(pc->backoff_s * 1e9);
    podcost_log_result(pc, err);
    ev_timer_stop(loop, &pc->next_w);
    ev_timer_set(&pc->next_w, pc->backoff_s, 0.);
    ev_timer_start(loop, &pc->next_w);
}

/* Start a request now, arm the timer for when one may start, or do nothing. */
static void podcost_kick(struct wrk_podcost *pc)
{
    struct ev_loop *loop = pc->w->loop;
    if (pc->pid > 0) {
        return; /* on_podcost_child kicks again */
    }
    if (pc->want == pc->applied || pc->w->draining) {
        ev_timer_stop(loop, &pc->next_w);
        return;
    }
    int64_t wait_ns = pc->next_ok_ns - osp_mono_ns();
    if (wait_ns <= 0) {
        ev_timer_stop(loop, &pc->next_w);
        podcost_send(pc);
        return;
    }
    if (!ev_is_active(&pc->next_w)) {
        ev_timer_set(&pc->next_w, (double)wait_ns / 1e9, 0.);
        ev_timer_start(loop, &pc->next_w);
    }
}

static void on_podcost_next(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct wrk_podcost *pc = osp_container_of(t, struct wrk_podcost, next_w);
    podcost_kick(pc);
}

/* ---- Public ---- */

/* Kubernetes object names: a DNS-1123 subdomain (pods) or label (namespaces). Checked so
 * neither can reshape the request path. */
static bool podcost_name_ok(const char *s, size_t max, bool dots)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && !(dots && c == '.')) {
            return false;
        }
    }
    return s[0] != '-' && s[0] != '.' && s[n - 1] != '-' && s[n - 1] != '.';
}

/* Kubernetes' own in-cluster variables (not opspool settings); unset or empty = def. */
static const char *podcost_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : def;
}

void wrk_podcost_start(struct wrk *w)
{
    const struct osp_config *cfg = w->cfg;
    const char *name = cfg->pod_name;
    if (name[0] == '\0') {
        return; /* off: no watcher, no allocation, no call */
    }
    const char *ns = cfg->pod_namespace;
    if (!podcost_name_ok(name, 253, true) || !podcost_name_ok(ns, 63, false)) {
        osp_warn("pod deletion cost disabled: OSP_POD_NAME and OSP_POD_NAMESPACE must both be "
                 "set to a pod name and a namespace (Downward API metadata.name, "
                 "metadata.namespace)");
        return;
    }
    char *api = NULL;
    if (cfg->k8s_api[0] != '\0') {
        api = osp_xstrdup(cfg->k8s_api);
    } else {
        const char *host = podcost_env("KUBERNETES_SERVICE_HOST", NULL);
        const char *port = podcost_env("KUBERNETES_SERVICE_PORT",
                                       podcost_env("KUBERNETES_SERVICE_PORT_HTTPS", "443"));
        if (host == NULL) {
            osp_warn("pod deletion cost disabled: no API server (KUBERNETES_SERVICE_HOST unset, "
                     "OSP_K8S_API unset)");
            return;
        }
        api = strchr(host, ':') ? osp_xasprintf("https://[%s]:%s", host, port)
                                : osp_xasprintf("https://%s:%s", host, port);
    }
    size_t n = strlen(api);
    while (n > 0 && api[n - 1] == '/') {
        api[--n] = '\0';
    }
    struct wrk_podcost *pc = osp_xcalloc(1, sizeof(*pc));
    pc->w = w;
    pc->url = osp_xasprintf("%s/api/v1/namespaces/%s/pods/%s", api, ns, name);
    pc->where = osp_xasprintf("%s/%s", ns, name);
    pc->token_file =
        osp_xstrdup(cfg->k8s_token_file[0] != '\0' ? cfg->k8s_token_file : OSP_K8S_SA_DIR "/token");
    pc->ca_file = osp_xstrdup(cfg->k8s_ca_file); /* empty: the system's CAs */
    pc->applied = -1;
    pc->pipe_fd = -1;
    pc->want = w->busy * PODCOST_PER_SLOT;
    ev_timer_init(&pc->next_w, on_podcost_next, 0., 0.);
    w->podcost = pc;
    osp_info("pod deletion cost: keeping %s's %s at %d per busy slot via %s", pc->where,
             PODCOST_ANNOTATION, PODCOST_PER_SLOT, api);
    free(api);
    podcost_kick(pc);
}

void wrk_podcost_note(struct wrk *w)
{
    struct wrk_podcost *pc = w->podcost;
    if (pc == NULL) {
        return;
    }
    pc->want = w->busy * PODCOST_PER_SLOT;
    podcost_kick(pc);
}

void wrk_podcost_stop(struct wrk *w)
{
    struct wrk_podcost *pc = w->podcost;
    if (pc == NULL) {
        return;
    }
    ev_timer_stop(w->loop, &pc->next_w);
    ev_timer_stop(w->loop, &pc->kill_w);
    if (pc->pid > 0) {
        /* No final update on exit (the pod is going away); do not leave a zombie either. */
        ev_child_stop(w->loop, &pc->child_w);
        kill(pc->pid, SIGKILL);
        while (waitpid(pc->pid, NULL, 0) < 0 && errno == EINTR) {
        }
        pc->pid = 0;
    }
    if (pc->pipe_fd >= 0) {
        close(pc->pipe_fd);
    }
    osp_debug("pod deletion cost: %llu updates, %llu failures", (unsigned long long)pc->n_ok,
              (unsigned long long)pc->n_fail);
    free(pc->url);
    free(pc->where);
    free(pc->token_file);
    free(pc->ca_file);
    free(pc);
    w->podcost = NULL;
}
