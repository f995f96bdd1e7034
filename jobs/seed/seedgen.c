/* SPDX-License-Identifier: MIT */
/* seedgen.c — counter-based generation of the reference workload's rows (contract: seedgen.h).
 *
 * Why counter-based: a value depends only on (seed, table, field, row), never on a stream
 * position, so the output is independent of chunking, resumable at any row and cheap to
 * cross-reference (a click's timestamp is derived from its url's creation time by recomputing
 * that one value). Text is formatted by hand (no printf, no gmtime): generation must outrun
 * the server's COPY, or the seed job would lose to pgbench -i.
 *
 * Uniform choices use integer arithmetic only, so their output is identical on every
 * platform. The Zipf option uses pow/log/exp from libm: identical across runs and machines
 * sharing IEEE-754 doubles and the same libm (documented in docs/seed-and-backup.md). */
#include "jobs/seed/seedgen.h"
#include "jobs/seed/seedfmt.h"

#include <math.h>
#include <string.h>

/* Fields: the third input of the mix, one per independent random choice of a row. */
enum {
    F_NAME_FIRST,
    F_NAME_LAST,
    F_CREATED,
    F_SITE,
    F_WORD,
    F_NUM,
    F_USER,
    F_URL,
    F_TS,
    F_REF,
    F_UA,
    F_CODE,
    F_FILLER
};

/* Every generated timestamp lies in [2024-01-01T00:00:00Z, +365 days). */
#define SEED_EPOCH_BASE 1704067200ULL
#define SEED_WINDOW_S   (365ULL * 86400ULL)
#define SEED_CODE_BITS  48
#define SEED_CODE_MASK  ((1ULL << SEED_CODE_BITS) - 1)

static const char *const seed_first[32] = {
    "Ada",      "Alan",    "Barbara",   "Brian",  "Carla",    "Dennis", "Edsger", "Frances",
    "Grace",    "Guido",   "Hedy",      "Ivan",   "Joan",     "John",   "Ken",    "Linus",
    "Margaret", "Niklaus", "Olga",      "Peter",  "Radia",    "Rob",    "Sophie", "Tim",
    "Ursula",   "Vint",    "Whitfield", "Xavier", "Yukihiro", "Zoe",    "Donald", "Leslie"};
static const char *const seed_last[32] = {
    "Lovelace", "Turing",    "Liskov", "Kernighan",  "Ritchie", "Dijkstra", "Allen",
    "Hopper",   "Rossum",    "Lamarr", "Sutherland", "Clarke",  "McCarthy", "Thompson",
    "Torvalds", "Hamilton",  "Wirth",  "Perlman",    "Pike",    "Naur",     "Wilson",
    "Berners",  "Burns",     "Cerf",   "Diffie",     "Kahn",    "Hellman",  "Knuth",
    "Lamport",  "Matsumoto", "Backus", "Hoare"};
static const char *const seed_sites[16] = {
    "docs.example.com",   "blog.example.org",  "shop.example.net", "news.example.com",
    "wiki.example.org",   "video.example.com", "maps.example.net", "mail.example.org",
    "forum.example.com",  "store.example.org", "api.example.net",  "cdn.example.com",
    "photos.example.org", "music.example.net", "jobs.example.com", "travel.example.org"};
static const char *const seed_words[16] = {
    "articles", "products", "posts",  "guides",  "watch",  "items",  "threads", "releases",
    "stories",  "reviews",  "events", "recipes", "papers", "albums", "offers",  "topics"};
static const char *const seed_refs[8] = {
    "https://search.example/q",   "https://social.example/feed", "https://mail.example/inbox",
    "https://news.example/front", "https://chat.example/room",   "https://forum.example/t",
    "https://video.example/w",    "https://blog.example/p"};
static const char *const seed_uas[8] = {"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
                                        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0",
                                        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1",
                                        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5) Mobile/15E148",
                                        "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/126.0",
                                        "curl/8.8.0",
                                        "Wget/1.21.4",
                                        "python-requests/2.32.3"};
static const char seed_b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static const char *const seed_names[SEED_NTABLES] = {
    "users", "urls", "clicks", "pgbench_branches", "pgbench_tellers", "pgbench_accounts"};
static const char *const seed_columns[SEED_NTABLES] = {
    "id, email, name, created_at",          "id, code, target, user_id, created_at, hits",
    "id, url_id, ts, referrer, user_agent", "bid, bbalance, filler",
    "tid, bid, tbalance, filler",           "aid, bid, abalance, filler"};
static const uint64_t seed_per_scale[SEED_NTABLES] = {1000, 10000, 100000, 1, 10, 100000};
static const enum seed_table seed_workload_tables[] = {SEED_USERS, SEED_URLS, SEED_CLICKS};
static const enum seed_table seed_pgbench_tables[] = {SEED_PGB_BRANCHES, SEED_PGB_TELLERS,
                                                      SEED_PGB_ACCOUNTS};

/* splitmix64's finaliser (Steele, Lea, Flood 2014): a bijection with full avalanche. */
static uint64_t seed_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t seed_gen_u64(uint64_t seed, unsigned table, unsigned field, uint64_t row)
{
    uint64_t key = seed_mix(seed ^ seed_mix(((uint64_t)table << 8) | field));
    return seed_mix(key ^ seed_mix(row));
}

/* Continuous approximation of Zipf: H(x) = integral of t^-s from 1 to x, and its inverse. */
static double seed_zipf_h(double s, double x)
{
    return s == 1.0 ? log(x) : (pow(x, 1.0 - s) - 1.0) / (1.0 - s);
}

static double seed_zipf_hinv(double s, double y)
{
    return s == 1.0 ? exp(y) : pow(1.0 + (1.0 - s) * y, 1.0 / (1.0 - s));
}

void seed_gen_init(struct seed_gen *g, const struct seed_params *p)
{
    memset(g, 0, sizeof(*g));
    g->p = *p;
    const enum seed_table *tables;
    size_t n = seed_layout_tables(p->layout, &tables);
    for (size_t i = 0; i < n; i++) {
        g->rows[tables[i]] = seed_per_scale[tables[i]] * p->scale;
    }
    g->code_key = seed_mix(p->seed ^ 0x636f6465ULL) & SEED_CODE_MASK;
    if (p->zipf_s > 0.0) {
        g->zipf_hmax = seed_zipf_h(p->zipf_s, (double)g->rows[SEED_URLS] + 1.0);
    }
}

size_t seed_layout_tables(enum seed_layout l, const enum seed_table **out)
{
    if (l == SEED_LAYOUT_PGBENCH) {
        *out = seed_pgbench_tables;
        return sizeof(seed_pgbench_tables) / sizeof(seed_pgbench_tables[0]);
    }
    *out = seed_workload_tables;
    return sizeof(seed_workload_tables) / sizeof(seed_workload_tables[0]);
}

const char *seed_table_name(enum seed_table t)
{
    return seed_names[t];
}

const char *seed_table_columns(enum seed_table t)
{
    return seed_columns[t];
}

uint64_t seed_gen_click_url(const struct seed_gen *g, uint64_t row)
{
    uint64_t n = g->rows[SEED_URLS];
    uint64_t h = seed_gen_u64(g->p.seed, SEED_CLICKS, F_URL, row);
    if (g->p.zipf_s <= 0.0) {
        return 1 + h % n;
    }
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) with 53 bits */
    double x = seed_zipf_hinv(g->p.zipf_s, u * g->zipf_hmax);
    uint64_t k = x < 1.0 ? 1 : (uint64_t)x;
    return k > n ? n : k;
}

void seed_gen_url_code(const struct seed_gen *g, uint64_t url_id, char out[10])
{
    /* xor, odd multiplications and right xorshifts are each bijective modulo 2^48, so distinct
     * ids get distinct codes; 62^9 > 2^48 makes nine digits enough. */
    uint64_t x = (url_id ^ g->code_key) & SEED_CODE_MASK;
    x = (x * 0x9e3779b97f4bULL) & SEED_CODE_MASK;
    x ^= x >> 24;
    x = (x * 0xd6e8feb86659fULL) & SEED_CODE_MASK;
    x ^= x >> 23;
    for (int i = 8; i >= 0; i--) {
        out[i] = seed_b62[x % 62];
        x /= 62;
    }
    out[9] = '\0';
}

/* ---- Formatting (hand-rolled for speed) ----
 *
 * One emitter per field kind takes the format, so a table's row is written once for both:
 * text lines (tab-separated, '\n'-terminated, COPY escaping) and binary tuples (seedfmt.h).
 * Composite text fields (email, name, target) are assembled in place from the fixed
 * vocabularies above, which hold no character COPY text format would need escaped. */

static char *seed_put_raw(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *seed_put_lower(char *p, const char *s)
{
    for (; *s != '\0'; s++) {
        *p++ = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
    }
    return p;
}

static char *seed_put_2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

/* "YYYY-MM-DD HH:MM:SS+00" for seconds since the epoch (days-to-civil after H. Hinnant). */
static char *seed_put_ts_text(char *p, uint64_t secs)
{
    uint64_t days = secs / 86400, rem = secs % 86400;
    uint64_t z = days + 719468;
    uint64_t era = z / 146097;
    uint64_t doe = z - era * 146097;
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    uint64_t mp = (5 * doy + 2) / 153;
    unsigned d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    uint64_t y = yoe + era * 400 + (m <= 2);
    p = seed_fmt_u64(p, y);
    *p++ = '-';
    p = seed_put_2(p, m);
    *p++ = '-';
    p = seed_put_2(p, d);
    *p++ = ' ';
    p = seed_put_2(p, (unsigned)(rem / 3600));
    *p++ = ':';
    p = seed_put_2(p, (unsigned)(rem / 60 % 60));
    *p++ = ':';
    p = seed_put_2(p, (unsigned)(rem % 60));
    return seed_put_raw(p, "+00");
}

/* The separator before every field but the first (text only). */
static char *seed_put_sep(char *p, enum seed_format f)
{
    if (f == SEED_FMT_TEXT) {
        *p++ = '\t';
    }
    return p;
}

static char *seed_put_i64(char *p, enum seed_format f, int64_t v)
{
    return f == SEED_FMT_TEXT ? seed_fmt_i64(p, v) : seed_fmt_bin_i64(p, v);
}

static char *seed_put_i32(char *p, enum seed_format f, int32_t v)
{
    return f == SEED_FMT_TEXT ? seed_fmt_i64(p, v) : seed_fmt_bin_i32(p, v);
}

static char *seed_put_ts(char *p, enum seed_format f, uint64_t secs)
{
    return f == SEED_FMT_TEXT ? seed_put_ts_text(p, secs) : seed_fmt_bin_ts(p, (int64_t)secs);
}

static char *seed_put_str(char *p, enum seed_format f, const char *s)
{
    size_t n = strlen(s);
    return f == SEED_FMT_TEXT ? seed_fmt_text(p, s, n) : seed_fmt_bin_text(p, s, n);
}

static char *seed_put_null(char *p, enum seed_format f)
{
    return f == SEED_FMT_TEXT ? seed_put_raw(p, "\\N") : seed_fmt_bin_null(p);
}

/* Composite text field: open (binary: reserve the length), write pieces, close. */
static char *seed_field_open(char *p, enum seed_format f)
{
    return f == SEED_FMT_TEXT ? p : seed_fmt_bin_text_begin(p);
}

static char *seed_field_close(char *body, char *end, enum seed_format f)
{
    return f == SEED_FMT_TEXT ? end : seed_fmt_bin_text_end(body, end);
}

static uint64_t seed_created(const struct seed_gen *g, enum seed_table t, uint64_t row)
{
    return SEED_EPOCH_BASE + seed_gen_u64(g->p.seed, t, F_CREATED, row) % SEED_WINDOW_S;
}

/* A pgbench filler: n base62 characters, ten per 64-bit value (62^10 < 2^64). */
static char *seed_put_filler(char *p, enum seed_format f, const struct seed_gen *g,
                             enum seed_table t, uint64_t row, size_t n)
{
    char *body = seed_field_open(p, f);
    char *q = body;
    for (unsigned k = 0; (size_t)(q - body) < n; k++) {
        uint64_t x = seed_gen_u64(g->p.seed, t, F_FILLER + k, row);
        for (int i = 0; i < 10 && (size_t)(q - body) < n; i++) {
            *q++ = seed_b62[x % 62];
            x /= 62;
        }
    }
    return seed_field_close(body, q, f);
}

static char *seed_row_users(const struct seed_gen *g, enum seed_format f, uint64_t row, char *p)
{
    enum seed_table t = SEED_USERS;
    uint64_t s = g->p.seed;
    const char *first = seed_first[seed_gen_u64(s, t, F_NAME_FIRST, row) % 32];
    const char *last = seed_last[seed_gen_u64(s, t, F_NAME_LAST, row) % 32];
    p = seed_put_i64(p, f, (int64_t)(row + 1));
    p = seed_put_sep(p, f);
    char *body = seed_field_open(p, f);
    p = seed_put_lower(body, first);
    *p++ = '.';
    p = seed_put_lower(p, last);
    p = seed_fmt_u64(p, row + 1);
    p = seed_field_close(body, seed_put_raw(p, "@example.com"), f);
    p = seed_put_sep(p, f);
    body = seed_field_open(p, f);
    p = seed_put_raw(body, first);
    *p++ = ' ';
    p = seed_field_close(body, seed_put_raw(p, last), f);
    p = seed_put_sep(p, f);
    return seed_put_ts(p, f, seed_created(g, t, row));
}

static char *seed_row_urls(const struct seed_gen *g, enum seed_format f, uint64_t row, char *p)
{
    enum seed_table t = SEED_URLS;
    uint64_t s = g->p.seed;
    char code[10];
    seed_gen_url_code(g, row + 1, code);
    p = seed_put_i64(p, f, (int64_t)(row + 1));
    p = seed_put_sep(p, f);
    p = seed_put_str(p, f, code);
    p = seed_put_sep(p, f);
    char *body = seed_field_open(p, f);
    p = seed_put_raw(body, "https://");
    p = seed_put_raw(p, seed_sites[seed_gen_u64(s, t, F_SITE, row) % 16]);
    *p++ = '/';
    p = seed_put_raw(p, seed_words[seed_gen_u64(s, t, F_WORD, row) % 16]);
    *p++ = '/';
    p = seed_field_close(body, seed_fmt_u64(p, seed_gen_u64(s, t, F_NUM, row) % 1000000), f);
    p = seed_put_sep(p, f);
    p = seed_put_i64(p, f, (int64_t)(1 + seed_gen_u64(s, t, F_USER, row) % g->rows[SEED_USERS]));
    p = seed_put_sep(p, f);
    p = seed_put_ts(p, f, seed_created(g, t, row));
    p = seed_put_sep(p, f);
    return seed_put_i64(p, f, 0);
}

static char *seed_row_clicks(const struct seed_gen *g, enum seed_format f, uint64_t row, char *p)
{
    enum seed_table t = SEED_CLICKS;
    uint64_t s = g->p.seed;
    /* A click happens after its url was created, within the window. */
    uint64_t url = seed_gen_click_url(g, row);
    uint64_t created = seed_created(g, SEED_URLS, url - 1);
    uint64_t span = SEED_EPOCH_BASE + SEED_WINDOW_S - created;
    uint64_t ref = seed_gen_u64(s, t, F_REF, row);
    p = seed_put_i64(p, f, (int64_t)(row + 1));
    p = seed_put_sep(p, f);
    p = seed_put_i64(p, f, (int64_t)url);
    p = seed_put_sep(p, f);
    p = seed_put_ts(p, f, created + seed_gen_u64(s, t, F_TS, row) % span);
    p = seed_put_sep(p, f);
    /* 30% direct visits: NULL referrer. */
    p = ref % 10 < 3 ? seed_put_null(p, f) : seed_put_str(p, f, seed_refs[ref % 8]);
    p = seed_put_sep(p, f);
    return seed_put_str(p, f, seed_uas[seed_gen_u64(s, t, F_UA, row) % 8]);
}

/* pgbench's rows: id, parent branch (tellers, accounts), balance 0, full-width filler (or, with
 * blank_filler, an empty one the server pads, byte for byte what pgbench -i sends). Ids
 * are int4 like pgbench's below scale 20,000 (SEED_SCALE_MAX is 10,000). */
static char *seed_row_pgbench(const struct seed_gen *g, enum seed_table t, enum seed_format f,
                              uint64_t row, char *p)
{
    p = seed_put_i32(p, f, (int32_t)(row + 1));
    p = seed_put_sep(p, f);
    if (t != SEED_PGB_BRANCHES) {
        uint64_t per_branch = seed_per_scale[t];
        p = seed_put_i32(p, f, (int32_t)(row / per_branch + 1));
        p = seed_put_sep(p, f);
    }
    p = seed_put_i32(p, f, 0);
    p = seed_put_sep(p, f);
    return seed_put_filler(p, f, g, t, row,
                           g->p.blank_filler        ? 0
                           : t == SEED_PGB_BRANCHES ? 88
                                                    : 84);
}

static const uint16_t seed_nfields[SEED_NTABLES] = {4, 6, 5, 3, 4, 4};

size_t seed_gen_row(const struct seed_gen *g, enum seed_table t, enum seed_format f, uint64_t row,
                    char *out)
{
    char *p = out;
    if (f == SEED_FMT_BINARY) {
        p = seed_fmt_bin_tuple(p, seed_nfields[t]);
    }
    switch (t) {
    case SEED_USERS:
        p = seed_row_users(g, f, row, p);
        break;
    case SEED_URLS:
        p = seed_row_urls(g, f, row, p);
        break;
    case SEED_CLICKS:
        p = seed_row_clicks(g, f, row, p);
        break;
    case SEED_PGB_BRANCHES:
    case SEED_PGB_TELLERS:
    case SEED_PGB_ACCOUNTS:
        p = seed_row_pgbench(g, t, f, row, p);
        break;
    case SEED_NTABLES:
        break;
    }
    if (f == SEED_FMT_TEXT) {
        *p++ = '\n';
    }
    return (size_t)(p - out);
}

size_t seed_gen_fill(const struct seed_gen *g, enum seed_table t, enum seed_format f, uint64_t *row,
                     char *buf, size_t cap)
{
    size_t len = 0;
    while (*row < g->rows[t] && cap - len >= SEED_ROW_MAX) {
        len += seed_gen_row(g, t, f, *row, buf + len);
        (*row)++;
    }
    return len;
}
