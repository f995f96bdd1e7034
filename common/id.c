/* SPDX-License-Identifier: MIT */
/* id.c — UUIDv7 job ids (RFC 9562 §5.7, monotonicity method 1 of §6.2; contract: id.h).
 * Layout: 48-bit Unix ms | ver 7 | 12-bit counter (rand_a) | variant 10 | 62 random bits.
 * Invariant: every id this process returns is strictly greater (as text and as bytes) than
 * the one before. The state is per process and not locked: one event loop per process. */
#define _GNU_SOURCE
#include "common/id.h"
#include "common/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define COUNTER_MAX 0xfffu

/* xoshiro256** keeps the random bits cheap; it is reseeded from the kernel whenever the pid
 * changes, so a forked child never replays its parent's sequence. */
static struct {
    pid_t pid;        /* process the state belongs to; 0 = not seeded */
    uint64_t s[4];    /* xoshiro256** state */
    int64_t last_ms;  /* timestamp of the previous id */
    uint32_t counter; /* rand_a of the previous id */
} g_id;

static void fill_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(p + got, len - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        break;
    }
    if (got == len) {
        return;
    }
    /* Kernels without getrandom(2): fall back to the device. Without any entropy source ids
     * would collide across processes, which is a broken host, not a recoverable error. */
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    OSP_ASSERT(fd >= 0);
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        OSP_ASSERT(n > 0);
        got += (size_t)n;
    }
    close(fd);
}

void osp_random_bytes(void *buf, size_t len)
{
    fill_random(buf, len);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_random(void)
{
    uint64_t *s = g_id.s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void ensure_seeded(void)
{
    pid_t pid = getpid();
    if (g_id.pid == pid) {
        return;
    }
    do {
        fill_random(g_id.s, sizeof(g_id.s));
    } while ((g_id.s[0] | g_id.s[1] | g_id.s[2] | g_id.s[3]) == 0); /* all-zero never moves */
    g_id.pid = pid;
    /* last_ms and counter are inherited across fork on purpose: the child keeps producing
     * ids above everything it has seen, and its fresh random bits keep them distinct. */
}

void osp_id_new(char out[OSP_ID_LEN + 1])
{
    ensure_seeded();
    int64_t now = osp_now_ms();
    if (now > g_id.last_ms) {
        g_id.last_ms = now;
        /* A random start with the top bit clear leaves at least 2048 ids per ms before the
         * counter borrows from the next millisecond (RFC 9562 §6.2, "counter rollover"). */
        g_id.counter = (uint32_t)(next_random() >> 53) & 0x7ffu;
    } else if (g_id.counter < COUNTER_MAX) {
        /* Same millisecond, or the clock stepped back: keep the old time and count up. */
        g_id.counter++;
    } else {
        g_id.last_ms++;
        g_id.counter = 0;
    }

    uint64_t ms = (uint64_t)g_id.last_ms & 0xffffffffffffull;
    uint64_t rnd = next_random();
    uint8_t b[16];
    for (int i = 0; i < 6; i++) {
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    }
    b[6] = (uint8_t)(0x70u | (g_id.counter >> 8));
    b[7] = (uint8_t)(g_id.counter & 0xffu);
    b[8] = (uint8_t)(0x80u | ((rnd >> 56) & 0x3fu));
    for (int i = 9; i < 16; i++) {
        b[i] = (uint8_t)(rnd >> (8 * (15 - i)));
    }

    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

bool osp_id_is_valid(const char *s)
{
    if (s == NULL) {
        return false;
    }
    bool lower = false;
    bool upper = false;
    for (size_t i = 0; i < OSP_ID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                return false;
            }
        } else if (c >= '0' && c <= '9') {
            continue;
        } else if (c >= 'a' && c <= 'f') {
            lower = true;
        } else if (c >= 'A' && c <= 'F') {
            upper = true;
        } else {
            /* Also catches a NUL before position 36, so short strings stop here. */
            return false;
        }
    }
    /* Canonical text is all lowercase or all uppercase; mixed case is not. */
    return s[OSP_ID_LEN] == '\0' && !(lower && upper);
}
