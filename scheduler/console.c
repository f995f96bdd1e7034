/* SPDX-License-Identifier: MIT */
/* console.c — the operator's web console under /ui/ (docs/console.md, ADR 0014): sessions,
 * CSRF, the security headers, the page frame, the embedded stylesheet and script, and the
 * routes. The pages are in console_pages.c.
 *
 * Sessions. POST /ui/login takes an API token (the tokens file and scopes of the API) and
 * answers with a cookie naming a session: 256 random bits from the kernel, kept in a table in
 * this process (CONSOLE_SESSIONS slots; the least recently used one goes when it is full),
 * expiring after CONSOLE_IDLE_S without use or CONSOLE_LIFE_S after login. The session keeps
 * the SHA-256 of its token, never the token: each request finds the token again, so a token
 * removed from the file (SIGHUP) ends its sessions and a changed scope applies at once. A
 * replica knows only its own sessions (put the console behind sticky sessions or log in again).
 *
 * State changes are POSTs (forms, application/x-www-form-urlencoded) carrying the session's
 * CSRF token (256 random bits, compared in constant time) and must come from this origin
 * (origin_ok: Sec-Fetch-Site, else Origin). The cookie is HttpOnly, SameSite=Strict, Path=/ui, and
 * Secure when the request came through TLS (X-Forwarded-Proto: https) or OSP_UI_SECURE_COOKIE=1. */
#include "scheduler/console.h"
#include "common/alloc.h"
#include "common/base.h"
#include "common/hmac.h"
#include "common/id.h"
#include "common/log.h"
#include "scheduler/api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONSOLE_SESSIONS 256
#define CONSOLE_IDLE_S   3600        /* a session unused this long is gone */
#define CONSOLE_LIFE_S   (12 * 3600) /* and any session after this long */
#define CONSOLE_ROUTES   32
#define CONSOLE_COOKIE   "osp_session"
#define HEX_SECRET       64 /* 32 random bytes as hex */

/* Route needs. */
enum {
    UI_SESSION = 1u, /* a valid session (else: GET to the login page, POST 403) */
    UI_OPERATE = 2u, /* a POST that changes something: CSRF token and the operate scope */
};

struct console_session {
    char id[HEX_SECRET + 1]; /* "" = free slot */
    char csrf[HEX_SECRET + 1];
    uint8_t token_sha[32]; /* SHA-256 of the token it was opened with */
    int64_t created_ms, used_ms;
};

struct console_route {
    struct sched *s;
    unsigned needs;
    const char *const *query;
    ui_handler *fn;
};

struct console {
    struct console_session sessions[CONSOLE_SESSIONS];
    struct console_route routes[CONSOLE_ROUTES];
    size_t nroutes;
};

/* Every /ui response carries these (osp_http_set_prefix_headers: the server's own 404s too). */
static const char security_headers[] =
    "Content-Security-Policy: default-src 'none'; style-src 'self'; script-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'\n"
    "X-Content-Type-Options: nosniff\n"
    "Referrer-Policy: no-referrer\n"
    "X-Frame-Options: DENY\n";

/* ---- HTML ---- */

void ui_escn(struct osp_buf *out, const char *s, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        case '\0':
            rep = "&#65533;";
            break;
        default:
            continue;
        }
        osp_buf_append(out, s + from, i - from);
        osp_buf_append(out, rep, strlen(rep));
        from = i + 1;
    }
    osp_buf_append(out, s + from, n - from);
}

void ui_esc(struct osp_buf *out, const char *s)
{
    if (s != NULL) {
        ui_escn(out, s, strlen(s));
    }
}

void ui_raw(struct osp_buf *out, const char *html)
{
    osp_buf_append(out, html, strlen(html));
}

void ui_csrf_input(struct ui_ctx *c)
{
    ui_raw(c->out, "<input type=\"hidden\" name=\"csrf\" value=\"");
    ui_esc(c->out, c->csrf);
    ui_raw(c->out, "\">");
}

void ui_page_begin(struct ui_ctx *c, const char *title, const char *active, int refresh_s)
{
    struct osp_buf *o = c->out;
    ui_raw(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
              "<link rel=\"icon\" href=\"data:,\">"
              "<link rel=\"stylesheet\" href=\"/ui/static/console.css\">"
              "<script src=\"/ui/static/console.js\" defer></script><title>");
    ui_esc(o, title);
    ui_raw(o, " · opspool</title></head>");
    if (refresh_s > 0) {
        osp_buf_appendf(o, "<body data-refresh=\"%d\">", refresh_s);
    } else {
        ui_raw(o, "<body>");
    }
    ui_raw(o, "<header><a class=\"brand\" href=\"/ui/\">opspool</a>");
    if (active != NULL) {
        static const char *const nav[][3] = {
            {"overview", "/ui/", "Overview"},
            {"jobs", "/ui/jobs", "Jobs"},
            {"dead", "/ui/dead", "Dead letters"},
            {"schedules", "/ui/schedules", "Schedules"},
            {"campaigns", "/ui/campaigns", "Campaigns"},
            {"benchmarks", "/ui/benchmarks", "Benchmarks"},
        };
        ui_raw(o, "<nav>");
        for (size_t i = 0; i < OSP_ARRAY_LEN(nav); i++) {
            osp_buf_appendf(o, "<a href=\"%s\"%s>%s</a>", nav[i][1],
                            strcmp(nav[i][0], active) == 0 ? " aria-current=\"page\"" : "",
                            nav[i][2]);
        }
        ui_raw(o, "</nav><form class=\"logout\" method=\"post\" action=\"/ui/logout\">"
                  "<span class=\"who\">");
        ui_esc(o, c->who);
        ui_raw(o, c->operate ? "" : " (read-only)");
        ui_raw(o, "</span>");
        ui_csrf_input(c);
        ui_raw(o, "<button type=\"submit\">Log out</button></form>");
    }
    ui_raw(o, "</header><main>");
}

void ui_page_end(struct ui_ctx *c, int status)
{
    ui_raw(c->out, "</main></body></html>\n");
    if (c->out->len > UI_PAGE_MAX) {
        ui_error(c, 500, "page larger than %d bytes", UI_PAGE_MAX);
        return;
    }
    osp_http_reply_text(c->resp, status, "text/html; charset=utf-8", (const char *)c->out->data,
                        c->out->len);
}

void ui_error(struct ui_ctx *c, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    osp_buf_reset(c->out);
    char title[32];
    snprintf(title, sizeof(title), "Error %d", status);
    ui_page_begin(c, title, c->csrf != NULL ? "" : NULL, 0);
    osp_buf_appendf(c->out, "<h1>Error %d</h1><p class=\"error\" role=\"alert\">", status);
    ui_esc(c->out, msg);
    ui_raw(c->out, "</p><p><a href=\"/ui/\">Back to the overview</a></p>");
    ui_raw(c->out, "</main></body></html>\n");
    osp_http_reply_text(c->resp, status, "text/html; charset=utf-8", (const char *)c->out->data,
                        c->out->len);
}

void ui_redirect(struct osp_http_resp *resp, const char *location)
{
    osp_http_reply_text(resp, 303, "text/plain; charset=utf-8", "", 0);
    (void)osp_http_resp_header(resp, "Location", location);
}

/* ---- Static assets ---- */

static const char console_css[] =
    ":root{--fg:#1d2330;--muted:#5b6472;--bg:#f6f7f9;--card:#fff;--line:#d9dde3;"
    "--accent:#1f5fbf;--bad:#b3261e;--ok:#1e7a3c;--warn:#8a5a00}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);"
    "background:var(--bg)}\n"
    "header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.25rem;padding:.6rem 1rem;"
    "background:#1d2330;color:#fff}\n"
    "header a{color:#dfe6f3;text-decoration:none}header a:hover,header a:focus{color:#fff;"
    "text-decoration:underline}\n"
    ".brand{font-weight:700;color:#fff}\n"
    "nav{display:flex;gap:1rem;flex-wrap:wrap}nav a[aria-current]{color:#fff;font-weight:600;"
    "border-bottom:2px solid #8fb3ff}\n"
    ".logout{margin-left:auto;display:flex;gap:.5rem;align-items:center}.who{font-size:.85rem;"
    "color:#c4cbd6}\n"
    "main{padding:1rem;max-width:1200px;margin:0 auto}\n"
    "h1{font-size:1.35rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}\n"
    ".scroll{overflow-x:auto;background:var(--card);border:1px solid var(--line);"
    "border-radius:6px}\n"
    "table{border-collapse:collapse;width:100%}th,td{padding:.4rem .6rem;text-align:left;"
    "border-bottom:1px solid var(--line);white-space:nowrap}th{font-size:.8rem;color:var(--muted);"
    "text-transform:uppercase;letter-spacing:.03em}td.num,th.num{text-align:right;"
    "font-variant-numeric:tabular-nums}td.wrap{white-space:normal;word-break:break-word;min-width:"
    "14rem}\n"
    "a{color:var(--accent)}code,.mono{font-family:ui-monospace,'SFMono-Regular',Menlo,monospace;"
    "font-size:.85rem}\n"
    "pre{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.6rem;"
    "overflow:auto;max-height:28rem;white-space:pre-wrap;word-break:break-word}\n"
    "button,input,select{font:inherit;padding:.3rem .6rem;border:1px solid var(--line);"
    "border-radius:4px;background:#fff;color:var(--fg)}button{cursor:pointer}"
    "button:focus,input:focus,select:focus,a:focus{outline:2px solid #8fb3ff;outline-offset:1px}\n"
    "button.danger{border-color:var(--bad);color:var(--bad)}button.primary{background:var(--accent)"
    ";"
    "border-color:var(--accent);color:#fff}\n"
    "form.inline{display:inline}.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;"
    "margin-bottom:1rem}.filters label{display:flex;flex-direction:column;font-size:.8rem;"
    "color:var(--muted)}\n"
    ".actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:.75rem 0}\n"
    ".state{display:inline-block;padding:0 .45rem;border-radius:9px;font-size:.8rem;"
    "background:#e8ebf0}.state-succeeded{background:#dcf2e3;color:var(--ok)}"
    ".state-dead,.state-failed{background:#f8dcda;color:var(--bad)}"
    ".state-running{background:#dfe9fb;color:var(--accent)}"
    ".state-cancelled{background:#eee;color:var(--muted)}"
    ".state-delayed,.state-retrying{background:#fbefd5;color:var(--warn)}\n"
    ".note{padding:.5rem .75rem;border-radius:6px;background:#dcf2e3;color:var(--ok)}"
    ".error{padding:.5rem .75rem;border-radius:6px;background:#f8dcda;color:var(--bad)}\n"
    ".muted{color:var(--muted)}dl.kv{display:grid;grid-template-columns:max-content 1fr;"
    "gap:.25rem 1rem;background:var(--card);border:1px solid var(--line);border-radius:6px;"
    "padding:.75rem}dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;word-break:break-word}\n"
    ".login{max-width:24rem;margin:3rem auto;background:var(--card);padding:1.5rem;"
    "border:1px solid var(--line);border-radius:8px}.login input{width:100%;margin:.4rem 0 1rem}\n"
    "svg.chart{background:var(--card);border:1px solid var(--line);border-radius:6px;"
    "max-width:100%;height:auto}\n"
    "ul.fires{margin:0;padding:0;list-style:none;font-variant-numeric:tabular-nums}\n"
    "tr.regressed td{background:#fdf0ef}.verdict.bad{color:var(--bad);font-weight:700}\n"
    "section.series{margin-bottom:1.5rem}svg.chart{display:block;margin:.5rem 0}\n"
    ".state-pending,.state-submitted{background:#fbefd5;color:var(--warn)}"
    ".state-skipped{background:#eee;color:var(--muted)}\n"
    "@media (max-width:600px){main{padding:.5rem}th,td{padding:.35rem .4rem}"
    ".logout{margin-left:0}}\n";

static const char console_js[] =
    "'use strict';\n"
    "/* opspool console: periodic refresh of live pages, select-all for dead letters. */\n"
    "(function () {\n"
    "  var r = parseInt(document.body.getAttribute('data-refresh') || '0', 10);\n"
    "  if (r > 0) {\n"
    "    setTimeout(function () {\n"
    "      if (!document.hidden) { location.reload(); }\n"
    "    }, r * 1000);\n"
    "    document.addEventListener('visibilitychange', function () {\n"
    "      if (!document.hidden) { setTimeout(function () { location.reload(); }, r * 1000); }\n"
    "    });\n"
    "  }\n"
    "  var all = document.getElementById('select-all');\n"
    "  if (all) {\n"
    "    all.addEventListener('change', function () {\n"
    "      var boxes = document.querySelectorAll('input[name=ids]');\n"
    "      for (var i = 0; i < boxes.length; i++) { boxes[i].checked = all.checked; }\n"
    "    });\n"
    "  }\n"
    "})();\n";

static void h_css(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    (void)arg;
    osp_http_reply_text(resp, 200, "text/css; charset=utf-8", console_css, sizeof(console_css) - 1);
}

static void h_js(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    (void)arg;
    osp_http_reply_text(resp, 200, "text/javascript; charset=utf-8", console_js,
                        sizeof(console_js) - 1);
}

/* ---- Sessions ---- */

static void hex_secret(char out[HEX_SECRET + 1])
{
    uint8_t b[HEX_SECRET / 2];
    osp_random_bytes(b, sizeof(b));
    for (size_t i = 0; i < sizeof(b); i++) {
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    }
    memset(b, 0, sizeof(b));
}

static bool session_expired(const struct console_session *se, int64_t now)
{
    return now - se->used_ms > (int64_t)CONSOLE_IDLE_S * 1000 ||
           now - se->created_ms > (int64_t)CONSOLE_LIFE_S * 1000;
}

/* The session the request's cookie names, or NULL. Every slot is compared. */
static struct console_session *session_find(struct console *con, const struct osp_http_req *req)
{
    const char *v = osp_http_cookie(req, CONSOLE_COOKIE);
    if (v == NULL || strlen(v) != HEX_SECRET) {
        return NULL;
    }
    struct console_session *found = NULL;
    int64_t now = osp_now_ms();
    for (size_t i = 0; i < CONSOLE_SESSIONS; i++) {
        struct console_session *se = &con->sessions[i];
        if (se->id[0] == '\0') {
            continue;
        }
        if (session_expired(se, now)) {
            memset(se, 0, sizeof(*se));
            continue;
        }
        if (osp_ct_equal(v, HEX_SECRET, se->id, HEX_SECRET)) {
            found = se;
        }
    }
    return found;
}

/* The index of the session's token among those loaded now, or -1 (removed since). */
static long session_token(const struct sched *s, const struct console_session *se)
{
    if (s->set.api_insecure && s->ntokens == 0) {
        return 0;
    }
    long found = -1;
    for (size_t i = 0; i < s->ntokens; i++) {
        uint8_t d[32];
        osp_sha256(s->tokens[i], strlen(s->tokens[i]), d);
        found = osp_ct_equal(d, sizeof(d), se->token_sha, sizeof(d)) ? (long)i : found;
    }
    return found;
}

static struct console_session *session_new(struct console *con, const char *tok, size_t len)
{
    struct console_session *slot = &con->sessions[0];
    int64_t now = osp_now_ms();
    for (size_t i = 0; i < CONSOLE_SESSIONS; i++) {
        struct console_session *se = &con->sessions[i];
        if (se->id[0] == '\0' || session_expired(se, now)) {
            slot = se;
            break;
        }
        if (se->used_ms < slot->used_ms) {
            slot = se; /* full: the least recently used goes */
        }
    }
    memset(slot, 0, sizeof(*slot));
    hex_secret(slot->id);
    hex_secret(slot->csrf);
    osp_sha256(tok, len, slot->token_sha);
    slot->created_ms = slot->used_ms = now;
    return slot;
}

/* Secure cookies: TLS in front (a proxy says so) or the setting. */
static bool want_secure(const struct sched *s, const struct osp_http_req *req)
{
    const char *proto = osp_http_header(req, "X-Forwarded-Proto");
    return s->set.ui_secure_cookie || (proto != NULL && strcasecmp(proto, "https") == 0);
}

static void set_cookie(const struct sched *s, const struct osp_http_req *req,
                       struct osp_http_resp *resp, const char *value, int max_age_s)
{
    char c[256];
    snprintf(c, sizeof(c), "%s=%s; Path=/ui; Max-Age=%d; HttpOnly; SameSite=Strict%s",
             CONSOLE_COOKIE, value, max_age_s, want_secure(s, req) ? "; Secure" : "");
    (void)osp_http_resp_header(resp, "Set-Cookie", c);
}

/* Where a POST came from. Browsers that send Sec-Fetch-Site say it: only same-origin (or
 * none: typed by the user) passes. Otherwise an Origin header, when present and not "null",
 * must be this server's (scheme://Host). "null" is what a browser sends for our own forms
 * under Referrer-Policy: no-referrer, so it cannot be refused; the CSRF token (and the
 * SameSite=Strict cookie) remain the guard then. */
static bool origin_ok(const struct osp_http_req *req)
{
    const char *site = osp_http_header(req, "Sec-Fetch-Site");
    if (site != NULL) {
        return strcmp(site, "same-origin") == 0 || strcmp(site, "none") == 0;
    }
    const char *origin = osp_http_header(req, "Origin");
    const char *host = osp_http_header(req, "Host");
    if (origin == NULL || strcmp(origin, "null") == 0) {
        return true;
    }
    if (host == NULL) {
        return false;
    }
    const char *p = strstr(origin, "://");
    return p != NULL && strcmp(p + 3, host) == 0 &&
           (strncmp(origin, "http://", 7) == 0 || strncmp(origin, "https://", 8) == 0);
}

/* ---- Login and logout ---- */

static void login_page(struct ui_ctx *c, int status, const char *problem)
{
    ui_page_begin(c, "Log in", NULL, 0);
    ui_raw(c->out, "<form class=\"login\" method=\"post\" action=\"/ui/login\"><h1>opspool "
                   "console</h1>");
    if (problem != NULL) {
        ui_raw(c->out, "<p class=\"error\" role=\"alert\">");
        ui_esc(c->out, problem);
        ui_raw(c->out, "</p>");
    }
    ui_raw(c->out, "<label for=\"token\">API token</label>"
                   "<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" "
                   "required autofocus>"
                   "<button class=\"primary\" type=\"submit\">Log in</button>"
                   "<p class=\"muted\">A token of the scheduler's tokens file with the read "
                   "scope; the operate scope shows actions.</p></form>");
    ui_page_end(c, status);
}

static void h_login_form(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct osp_buf out = OSP_BUF_INIT;
    struct ui_ctx c = {.s = arg, .req = req, .resp = resp, .out = &out};
    if (osp_http_query_check(req, NULL, resp) == 0) {
        login_page(&c, 200, NULL);
    }
    osp_buf_deinit(&out);
}

static void h_login(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct sched *s = arg;
    struct osp_buf out = OSP_BUF_INIT;
    struct ui_ctx c = {.s = s, .req = req, .resp = resp, .out = &out};
    char tok[SCHED_TOKEN_MAX + 2];
    char who[SCHED_WHO_MAX];
    int n = osp_http_form_value(req->body, req->body_len, "token", 0, tok, sizeof(tok));
    long i = n > 0 ? api_token_lookup(s, tok, (size_t)n) : -1;
    unsigned scopes = api_token_scopes(s, i, who);
    if (!origin_ok(req)) {
        ui_error(&c, 403, "cross-origin login refused");
    } else if (n < 0 && !(s->set.api_insecure && s->ntokens == 0)) {
        login_page(&c, 400, "enter an API token");
    } else if (scopes == 0) {
        const char *fields[] = {"via", "console", NULL};
        osp_log_emit(OSP_LOG_WARN, fields, "console login refused: unknown token");
        login_page(&c, 401, "unknown token");
    } else if ((scopes & SCHED_SCOPE_READ) == 0) {
        const char *fields[] = {"who", who, "via", "console", NULL};
        osp_log_emit(OSP_LOG_WARN, fields, "console login refused: token lacks scope read");
        login_page(&c, 403, "this token lacks the \"read\" scope the console needs");
    } else {
        struct console_session *se = session_new(s->console, tok, n > 0 ? (size_t)n : 0);
        const char *fields[] = {"audit", "console.login", "who", who, NULL};
        osp_log_emit(OSP_LOG_INFO, fields, "audit: console.login by %s", who);
        set_cookie(s, req, resp, se->id, CONSOLE_LIFE_S);
        ui_redirect(resp, "/ui/");
    }
    memset(tok, 0, sizeof(tok));
    osp_buf_deinit(&out);
}

/* ---- Dispatch ---- */

/* Handlers may answer with the API's JSON errors (api_kind_or_reply, api_reply_op_error,
 * osp_http_query_check): the console shows them as its own HTML page. */
static void json_error_to_html(struct ui_ctx *c)
{
    struct osp_http_resp *resp = c->resp;
    if (resp->status < 400 ||
        (resp->content_type != NULL && strcmp(resp->content_type, "application/json") != 0)) {
        return;
    }
    json_t *e = json_loadb((const char *)resp->body.data, resp->body.len, 0, NULL);
    const char *msg = json_string_value(json_object_get(json_object_get(e, "error"), "message"));
    ui_error(c, resp->status, "%s", msg != NULL ? msg : "request failed");
    json_decref(e);
}

static void h_ui(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    struct console_route *rt = arg;
    struct sched *s = rt->s;
    struct osp_buf out = OSP_BUF_INIT;
    struct ui_ctx c = {.s = s, .req = req, .resp = resp, .out = &out};
    bool post = strcmp(req->method, "POST") == 0;
    struct console_session *se = session_find(s->console, req);
    long ti = se != NULL ? session_token(s, se) : -1;
    unsigned scopes = ti >= 0 ? api_token_scopes(s, ti, c.who) : 0;
    if (se != NULL && (scopes & SCHED_SCOPE_READ) == 0) {
        memset(se, 0, sizeof(*se)); /* its token is gone or lost the read scope */
        se = NULL;
    }
    if (se == NULL) {
        if (post) {
            ui_error(&c, 403, "no session: log in again");
        } else {
            ui_redirect(resp, "/ui/login");
        }
        goto out;
    }
    se->used_ms = osp_now_ms();
    c.csrf = se->csrf;
    c.operate = (scopes & SCHED_SCOPE_OPERATE) != 0;
    if (post) {
        char tok[HEX_SECRET + 2];
        int n = osp_http_form_value(req->body, req->body_len, "csrf", 0, tok, sizeof(tok));
        if (!origin_ok(req)) {
            ui_error(&c, 403, "cross-origin request refused");
            goto out;
        }
        if (n != HEX_SECRET || !osp_ct_equal(tok, HEX_SECRET, se->csrf, HEX_SECRET)) {
            const char *fields[] = {"who", c.who, "via", "console", NULL};
            osp_log_emit(OSP_LOG_WARN, fields, "console POST refused: missing or wrong CSRF token");
            ui_error(&c, 403, "missing or wrong CSRF token: reload the page and try again");
            goto out;
        }
        if ((rt->needs & UI_OPERATE) != 0 && !c.operate) {
            const char *fields[] = {"who", c.who, "via", "console", NULL};
            osp_log_emit(OSP_LOG_WARN, fields, "console action refused: token lacks scope operate");
            ui_error(&c, 403, "this token lacks the \"operate\" scope");
            goto out;
        }
    }
    for (size_t i = 0; i < req->nparams; i++) {
        const char *n = req->param_names[i];
        const char *v = req->params[i];
        if (strcmp(n, "id") == 0 && !osp_id_is_valid(v)) {
            ui_error(&c, 400, "invalid id: expected a UUID");
            goto out;
        }
        if (strcmp(n, "kind") == 0 && !osp_kind_name_is_valid(v)) {
            ui_error(&c, 400, "invalid kind: expected [a-z0-9_-]{1,%d}", OSP_KIND_MAX);
            goto out;
        }
    }
    if (osp_http_query_check(req, rt->query, resp) != 0) {
        json_error_to_html(&c);
        goto out;
    }
    snprintf(s->who, sizeof(s->who), "%s", c.who);
    rt->fn(&c);
    s->who[0] = '\0';
    json_error_to_html(&c);
out:
    osp_buf_deinit(&out);
}

static void h_logout(struct ui_ctx *c)
{
    struct console_session *se = session_find(c->s->console, c->req);
    if (se != NULL) {
        memset(se, 0, sizeof(*se));
    }
    const char *fields[] = {"audit", "console.logout", "who", c->who, NULL};
    osp_log_emit(OSP_LOG_INFO, fields, "audit: console.logout by %s", c->who);
    set_cookie(c->s, c->req, c->resp, "", 0);
    ui_redirect(c->resp, "/ui/login");
}

static void h_ui_root(const struct osp_http_req *req, struct osp_http_resp *resp, void *arg)
{
    (void)req;
    (void)arg;
    ui_redirect(resp, "/ui/");
}

static void ui_route(struct sched *s, const char *method, const char *pattern, unsigned needs,
                     ui_handler *fn, const char *const *query)
{
    struct console *con = s->console;
    OSP_ASSERT(con->nroutes < CONSOLE_ROUTES);
    struct console_route *rt = &con->routes[con->nroutes++];
    *rt = (struct console_route){s, needs | UI_SESSION, query, fn};
    osp_http_router_add(osp_http_router(s->http), method, pattern,
                        strcmp(method, "POST") == 0 ? OSP_HTTP_FORM : 0, h_ui, rt);
}

void sched_console_routes(struct sched *s)
{
    struct osp_http_router *r = osp_http_router(s->http);
    s->console = osp_xcalloc(1, sizeof(*s->console));
    osp_http_set_prefix_headers(s->http, "/ui", security_headers);
    osp_http_router_add(r, "GET", "/ui", 0, h_ui_root, s);
    osp_http_router_add(r, "GET", "/ui/login", 0, h_login_form, s);
    osp_http_router_add(r, "POST", "/ui/login", OSP_HTTP_FORM, h_login, s);
    osp_http_router_add(r, "GET", "/ui/static/console.css", 0, h_css, s);
    osp_http_router_add(r, "GET", "/ui/static/console.js", 0, h_js, s);
    ui_route(s, "POST", "/ui/logout", 0, h_logout, NULL);
    ui_route(s, "GET", "/ui/", 0, ui_overview, ui_overview_query);
    ui_route(s, "GET", "/ui/jobs", 0, ui_jobs, ui_jobs_query);
    ui_route(s, "GET", "/ui/jobs/{id}", 0, ui_job, ui_job_query);
    ui_route(s, "POST", "/ui/jobs/{id}/cancel", UI_OPERATE, ui_job_cancel, NULL);
    ui_route(s, "POST", "/ui/jobs/{id}/retry", UI_OPERATE, ui_job_retry, NULL);
    ui_route(s, "GET", "/ui/dead", 0, ui_dead, ui_dead_query);
    ui_route(s, "POST", "/ui/dead/{kind}/retry", UI_OPERATE, ui_dead_retry, NULL);
    ui_route(s, "POST", "/ui/dead/{kind}/purge", UI_OPERATE, ui_dead_purge, NULL);
    ui_route(s, "GET", "/ui/schedules", 0, ui_schedules, ui_schedules_query);
    ui_route(s, "GET", "/ui/schedules/{name}", 0, ui_schedule, ui_schedules_query);
    ui_route(s, "POST", "/ui/schedules/{name}/trigger", UI_OPERATE, ui_schedule_trigger, NULL);
    ui_route(s, "POST", "/ui/schedules/{name}/enable", UI_OPERATE, ui_schedule_enable, NULL);
    ui_route(s, "POST", "/ui/schedules/{name}/disable", UI_OPERATE, ui_schedule_disable, NULL);
    ui_route(s, "GET", "/ui/campaigns", 0, ui_campaigns, ui_campaigns_query);
    ui_route(s, "GET", "/ui/campaigns/{id}", 0, ui_campaign, ui_schedules_query);
    ui_route(s, "POST", "/ui/campaigns/{id}/cancel", UI_OPERATE, ui_campaign_cancel, NULL);
    ui_route(s, "GET", "/ui/benchmarks", 0, ui_benchmarks, ui_benchmarks_query);
}

void sched_console_free(struct sched *s)
{
    if (s->console != NULL) {
        memset(s->console->sessions, 0, sizeof(s->console->sessions));
        free(s->console);
        s->console = NULL;
    }
}
