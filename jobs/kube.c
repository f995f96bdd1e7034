/* SPDX-License-Identifier: MIT */
/* kube.c — the Kubernetes REST client shared by job kinds (contract in kube.h): settings,
 * the service account token and its rotation, one bounded request over a reused libcurl
 * handle. Split out of the drill's adapter when the benchmark kind started scaling
 * Deployments; the drill's calls and their Role stay in jobs/drill/. */
#include "jobs/kube.h"
#include "common/alloc.h"
#include "common/base.h"
#include "common/buf.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KUBE_SA_DIR    "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBE_REPLY_MAX (8u * 1024u * 1024u)

struct osp_kube {
    CURL *curl;
    char *api; /* no trailing slash */
    char *token_file, *ca_file;
    char *token;          /* current bearer token; never printed */
    struct stat token_st; /* what the token was read from, to notice rotation */
    long timeout_ms, max_timeout_ms;
    char *user_agent;
};

/* ---- Settings ---- */

bool osp_kube_dns_label_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-')) {
            return false;
        }
    }
    return s[0] != '-' && s[n - 1] != '-';
}

bool osp_kube_dns_subdomain_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 253) {
        return false;
    }
    char label[254];
    const char *p = s;
    for (;;) {
        size_t len = strcspn(p, ".");
        if (len == 0 || len > 63) {
            return false;
        }
        memcpy(label, p, len);
        label[len] = '\0';
        if (!osp_kube_dns_label_ok(label)) {
            return false;
        }
        if (p[len] == '\0') {
            return true;
        }
        p += len + 1;
    }
}

int osp_kube_check(const json_t *k8s, struct osp_err *err)
{
    if (!json_is_object(k8s)) {
        return osp_err_set(err, OSP_EINVAL, "kubernetes: required object for this adapter");
    }
    const json_t *a = json_object_get(k8s, "api_server");
    const char *api = json_string_value(a);
    if (a != NULL &&
        (api == NULL || (strncmp(api, "https://", 8) != 0 && strncmp(api, "http://", 7) != 0))) {
        return osp_err_set(err, OSP_EINVAL, "kubernetes.api_server: must be an https:// URL");
    }
    const json_t *to = json_object_get(k8s, "timeout_ms");
    if (to != NULL &&
        (!json_is_integer(to) || json_integer_value(to) < 100 || json_integer_value(to) > 60000)) {
        return osp_err_set(err, OSP_EINVAL, "kubernetes.timeout_ms: must be an integer 100..60000");
    }
    static const char *const files[] = {"token_file", "ca_file"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(files); i++) {
        const json_t *f = json_object_get(k8s, files[i]);
        if (f != NULL && (!json_is_string(f) || json_string_length(f) == 0)) {
            return osp_err_set(err, OSP_EINVAL, "kubernetes.%s: must be a file path", files[i]);
        }
    }
    return 0;
}

/* ---- Token ---- */

/* Re-read the token when the file changed since the last read (or force). */
static int kube_token_refresh(struct osp_kube *c, bool force, struct osp_err *err)
{
    struct stat st;
    if (stat(c->token_file, &st) != 0) {
        return osp_err_set(err, -errno, "kubernetes token file %.200s: %s", c->token_file,
                           strerror(errno));
    }
    if (!force && c->token != NULL && st.st_ino == c->token_st.st_ino &&
        st.st_size == c->token_st.st_size && st.st_mtim.tv_sec == c->token_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == c->token_st.st_mtim.tv_nsec) {
        return 0;
    }
    FILE *f = fopen(c->token_file, "re");
    if (f == NULL) {
        return osp_err_set(err, -errno, "kubernetes token file %.200s: %s", c->token_file,
                           strerror(errno));
    }
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
        n--;
    }
    buf[n] = '\0';
    if (n == 0 || strpbrk(buf, "\r\n") != NULL) {
        return osp_err_set(err, OSP_EINVAL, "kubernetes token file %.200s: empty or malformed",
                           c->token_file);
    }
    if (c->token != NULL) {
        memset(c->token, 0, strlen(c->token));
    }
    free(c->token);
    c->token = osp_xstrdup(buf);
    memset(buf, 0, sizeof(buf));
    c->token_st = st;
    return 0;
}

/* ---- Requests ---- */

static size_t kube_write(char *p, size_t size, size_t n, void *arg)
{
    struct osp_buf *b = arg;
    if (b->len + size * n > KUBE_REPLY_MAX) {
        return 0; /* aborts the transfer: an API reply this large is not one we asked for */
    }
    osp_buf_append(b, p, size * n);
    return size * n;
}

static int kube_once(struct osp_kube *c, const char *method, const char *url, const char *body,
                     const char *content_type, long *status, struct osp_buf *reply,
                     struct osp_err *err)
{
    struct curl_slist *h = NULL;
    char *auth = osp_xasprintf("Authorization: Bearer %s", c->token);
    char *ctype = osp_xasprintf("Content-Type: %s", content_type);
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Accept: application/json");
    if (body != NULL) {
        h = curl_slist_append(h, ctype);
    }
    CURL *e = c->curl;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, kube_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, reply);
    if (c->ca_file != NULL && strncmp(url, "https://", 8) == 0) {
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    }
    if (body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    osp_buf_reset(reply);
    CURLcode cc = curl_easy_perform(e);
    int rc = 0;
    *status = 0;
    if (cc != CURLE_OK) {
        rc = osp_err_set(err, OSP_EPROTO, "kubernetes %s %.120s: %s", method, url + strlen(c->api),
                         curl_easy_strerror(cc));
    } else {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    }
    curl_slist_free_all(h);
    /* the header held the token: wipe it before freeing */
    memset(auth, 0, strlen(auth));
    free(auth);
    free(ctype);
    return rc;
}

int osp_kube_request(struct osp_kube *c, const char *method, const char *path, const json_t *body,
                     const char *content_type, long *status, json_t **reply, struct osp_err *err)
{
    struct osp_buf buf = OSP_BUF_INIT;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    char *url = osp_xasprintf("%s%s", c->api, path);
    const char *ctype = content_type != NULL ? content_type : "application/json";
    int rc = kube_token_refresh(c, false, err);
    *status = 0;
    if (reply != NULL) {
        *reply = NULL;
    }
    if (rc != 0) {
        goto out;
    }
    rc = kube_once(c, method, url, text, ctype, status, &buf, err);
    if (rc == 0 && *status == 401) {
        /* A rotated projected token: the old one stops working; read the file again and
         * retry exactly once. */
        rc = kube_token_refresh(c, true, err);
        if (rc == 0) {
            rc = kube_once(c, method, url, text, ctype, status, &buf, err);
        }
    }
    if (rc == 0 && reply != NULL && buf.len > 0) {
        *reply = json_loadb((const char *)buf.data, buf.len, 0, NULL);
    }
out:
    osp_buf_deinit(&buf);
    free(text);
    free(url);
    return rc;
}

const char *osp_kube_status_msg(const json_t *reply)
{
    const char *m = json_string_value(json_object_get(reply, "message"));
    return m != NULL ? m : "(no message)";
}

char *osp_kube_escape(struct osp_kube *c, const char *s)
{
    char *e = curl_easy_escape(c->curl, s, 0);
    char *out = osp_xstrdup(e != NULL ? e : "");
    curl_free(e);
    return out;
}

long osp_kube_timeout_ms(const struct osp_kube *c)
{
    return c->timeout_ms;
}

void osp_kube_cap_timeout_ms(struct osp_kube *c, long ms)
{
    c->timeout_ms = ms < c->max_timeout_ms ? (ms > 0 ? ms : 1) : c->max_timeout_ms;
}

/* ---- Setup ---- */

static char *kube_str(const json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? osp_xstrdup(v) : (dflt != NULL ? osp_xstrdup(dflt) : NULL);
}

struct osp_kube *osp_kube_new(const json_t *cfg, const char *user_agent, struct osp_err *err)
{
    if (osp_kube_check(cfg, err) != 0) {
        return NULL;
    }
    /* Once per child (single-threaded), before the first handle. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        osp_err_set(err, OSP_EINVAL, "libcurl: global initialisation failed");
        return NULL;
    }
    struct osp_kube *c = osp_xcalloc(1, sizeof(*c));
    c->user_agent = osp_xstrdup(user_agent);
    c->token_file = kube_str(cfg, "token_file", KUBE_SA_DIR "/token");
    c->ca_file = kube_str(cfg, "ca_file", KUBE_SA_DIR "/ca.crt");
    c->timeout_ms = (long)json_integer_value(json_object_get(cfg, "timeout_ms"));
    if (c->timeout_ms == 0) {
        c->timeout_ms = 5000;
    }
    c->max_timeout_ms = c->timeout_ms;
    c->api = kube_str(cfg, "api_server", NULL);
    if (c->api == NULL) {
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT_HTTPS");
        if (host == NULL || port == NULL) {
            osp_err_set(err, OSP_EINVAL,
                        "kubernetes.api_server: not set and not running in a cluster "
                        "(KUBERNETES_SERVICE_HOST)");
            goto fail;
        }
        c->api = strchr(host, ':') ? osp_xasprintf("https://[%s]:%s", host, port)
                                   : osp_xasprintf("https://%s:%s", host, port);
    }
    size_t n = strlen(c->api);
    while (n > 0 && c->api[n - 1] == '/') {
        c->api[--n] = '\0';
    }
    if (kube_token_refresh(c, true, err) != 0) {
        goto fail;
    }
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        osp_err_set(err, OSP_EINVAL, "libcurl: cannot create a handle");
        goto fail;
    }
    return c;
fail:
    osp_kube_free(c);
    return NULL;
}

void osp_kube_free(struct osp_kube *c)
{
    if (c == NULL) {
        return;
    }
    if (c->curl != NULL) {
        curl_easy_cleanup(c->curl);
    }
    if (c->token != NULL) {
        memset(c->token, 0, strlen(c->token));
    }
    free(c->token);
    free(c->api);
    free(c->token_file);
    free(c->ca_file);
    free(c->user_agent);
    free(c);
}
