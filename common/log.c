/* SPDX-License-Identifier: MIT */
/* log.c — JSON-lines logger. One write(2) per line so lines from several processes sharing
 * stderr never interleave (lines stay under PIPE_BUF in practice; long ones are truncated). */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum osp_log_level osp_log_min_level = OSP_LOG_INFO;
static char log_component[32] = "opspool";

int osp_log_init(const char *component, const char *level)
{
    if (component != NULL) {
        snprintf(log_component, sizeof(log_component), "%s", component);
    }
    if (level == NULL || level[0] == '\0') {
        return 0;
    }
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(level, names[i]) == 0) {
            osp_log_min_level = (enum osp_log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Append s as JSON string contents (without quotes), escaping as needed. */
static size_t json_escape(char *out, size_t cap, size_t pos, const char *s)
{
    for (; *s != '\0' && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)c;
        } else if (c == '\n') {
            out[pos++] = '\\';
            out[pos++] = 'n';
        } else if (c < 0x20) {
            pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", c);
        } else {
            out[pos++] = (char)c;
        }
    }
    return pos;
}

static size_t put(char *out, size_t cap, size_t pos, const char *s)
{
    if (pos + 1 >= cap) {
        return pos; /* full: the line is truncated, never overrun */
    }
    size_t n = strlen(s);
    if (pos + n >= cap) {
        n = cap - pos - 1;
    }
    memcpy(out + pos, s, n);
    return pos + n;
}

void osp_log_emit(enum osp_log_level lvl, const char *const *fields, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tbuf[40];
    size_t tn = strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(tbuf + tn, sizeof(tbuf) - tn, ".%03ldZ", ts.tv_nsec / 1000000);

    char line[4096];
    const size_t cap = sizeof(line) - 2;
    size_t pos = 0;
    pos = put(line, cap, pos, "{\"ts\":\"");
    pos = put(line, cap, pos, tbuf);
    pos = put(line, cap, pos, "\",\"level\":\"");
    pos = put(line, cap, pos, names[lvl]);
    pos = put(line, cap, pos, "\",\"component\":\"");
    pos = json_escape(line, cap, pos, log_component);
    pos = put(line, cap, pos, "\",\"pid\":");
    char pid[24];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    pos = put(line, cap, pos, pid);
    pos = put(line, cap, pos, ",\"msg\":\"");
    pos = json_escape(line, cap, pos, msg);
    pos = put(line, cap, pos, "\"");
    for (size_t i = 0; fields != NULL && fields[i] != NULL && fields[i + 1] != NULL; i += 2) {
        pos = put(line, cap, pos, ",\"");
        pos = json_escape(line, cap, pos, fields[i]);
        pos = put(line, cap, pos, "\":\"");
        pos = json_escape(line, cap, pos, fields[i + 1]);
        pos = put(line, cap, pos, "\"");
    }
    pos = put(line, cap, pos, "}");
    line[pos++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, pos);
    (void)w;
}
