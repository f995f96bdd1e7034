/* SPDX-License-Identifier: MIT */
/* backup.c — the backup kind: a verified pg_dump of a target's database.
 *
 * Payload: {"target": name, "verify": "list"|"restore", "retention": {"keep_daily": n,
 * "keep_weekly": n, "keep_monthly": n}, "lock_wait_timeout_ms": n, "verify_file": name}.
 * Defaults come from the target's "backup" object ({"keep_daily", "keep_weekly",
 * "keep_monthly", "restore_check": bool, "lock_wait_timeout_ms", "pg_bin": dir}).
 *
 * One attempt, in order; any failure removes the temporary file and fails the job (the pool
 * retries), so the backup directory only ever holds complete, verified archives:
 *   1. `pg_dump --version` and the server's version; refuse when pg_dump's major is older.
 *   2. A REPEATABLE READ transaction exports its snapshot; `pg_dump -Fc --snapshot=...
 *      --lock-wait-timeout=... -f <dir>/.tmp-<job id>` dumps exactly that snapshot, and the
 *      row counts of every table are taken in the same snapshot (the expected counts).
 *   3. SHA-256 of the file, fsync.
 *   4. Verification: `pg_restore --list` (archive readable, entries > 0); with "restore", a
 *      full `pg_restore --exit-on-error` into a scratch database osp_restore_<id> on the same
 *      server, whose row counts must equal the expected ones; the restore time is recorded
 *      (recovery-time evidence); the scratch database is always dropped.
 *   5. rename to <dir>/<YYYYMMDDTHHMMSSZ>-<job id>.dump, fsync the directory, write the
 *      sidecar <file>.sha256 (sha256sum format) the same way.
 *   6. Retention (GFS, retention.h) over the directory — only now, after the new backup
 *      verified — removes expired archives and their sidecars.
 * "verify_file" re-verifies an existing archive instead (checksum against its sidecar, list,
 * optional restore) and writes nothing.
 *
 * The DSN never reaches a command line: it is split with PQconninfoParse and handed to the
 * tools as PG* environment variables (PGPASSWORD among them), in an environment built for
 * the child alone. Cancellation kills the running tool (proc.c) and cleans up as above. */
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/backup/proc.h"
#include "jobs/backup/retention.h"
#include "jobs/job.h"
#include "jobs/targets.h"

#include <libpq-fe.h>
#include <openssl/evp.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define BACKUP_LOCK_WAIT_MS     60000
#define BACKUP_LIST_MAX         (64u * 1024u * 1024u)
#define BACKUP_PATH_MAX         4096
#define BACKUP_MAX_FILES        100000 /* entries considered per directory by retention */

struct backup_opts {
    const char *target;
    const char *dsn;          /* borrowed; may hold a password */
    const char *root;         /* backup root */
    const char *pg_bin;       /* directory of pg_dump/pg_restore, or NULL for PATH */
    const char *verify_file;  /* re-verify mode: existing archive name, or NULL */
    bool restore;             /* full restore verification */
    bool retention_set;
    struct backup_retention keep;
    long long lock_wait_ms;
};

struct backup_run {
    struct job_ctx *ctx;
    struct backup_opts o;
    char **envp;              /* owned: the tools' environment */
    PGconn *conn;             /* source database */
    char dir[BACKUP_PATH_MAX];
    char tmp[BACKUP_PATH_MAX]; /* temp archive; "" once renamed or removed */
    char final[BACKUP_PATH_MAX];
    char scratch[64];         /* scratch database name while it exists, else "" */
    char dump_ver[128];
    char server_ver[128];
    char sha256[65];
    long long bytes;
    json_t *expected;         /* "schema.table" -> rows in the dump's snapshot */
    json_t *restored;         /* same, counted in the scratch database */
    long long restore_ms;
    long long toc_entries;
    bool mismatch;            /* verification ran and the archive failed it: a verdict */
    char err[768];
};

/* Human detail of the failing step (vsnprintf: truncating a long path is acceptable here). */
static void backup_seterr(struct backup_run *b, const char *fmt, ...) OSP_PRINTF(2, 3);
static void backup_seterr(struct backup_run *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, sizeof(b->err), fmt, ap);
    va_end(ap);
}

/* Format a path into out; false when it does not fit (never use a truncated path). */
static bool backup_path(char *out, size_t cap, const char *fmt, ...) OSP_PRINTF(3, 4);
static bool backup_path(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

/* ---- Validation ---- */

static int backup_check_keep(const json_t *obj, const char *where, struct osp_err *err)
{
    static const char *const keys[] = {"keep_daily", "keep_weekly", "keep_monthly"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(keys); i++) {
        const json_t *x = json_object_get(obj, keys[i]);
        if (x != NULL && (!json_is_integer(x) || json_integer_value(x) < 0 ||
                          json_integer_value(x) > BACKUP_KEEP_MAX)) {
            return osp_err_set(err, OSP_EINVAL, "%s.%s: must be an integer 0..%d", where, keys[i],
                               BACKUP_KEEP_MAX);
        }
    }
    return 0;
}

static int backup_check_lock_wait(const json_t *x, const char *where, struct osp_err *err)
{
    if (x != NULL && (!json_is_integer(x) || json_integer_value(x) < 1 ||
                      json_integer_value(x) > 3600000)) {
        return osp_err_set(err, OSP_EINVAL, "%s.lock_wait_timeout_ms: must be an integer 1..3600000",
                           where);
    }
    return 0;
}

static int backup_check_target(const json_t *t, const char *name, struct osp_err *err)
{
    static const char *const keys[] = {"keep_daily", "keep_weekly", "keep_monthly",
                                       "restore_check", "lock_wait_timeout_ms", "pg_bin"};
    if (osp_target_str(t, "pg_dsn") == NULL) {
        return osp_err_set(err, OSP_EINVAL, "payload.target: target \"%.64s\" has no pg_dsn", name);
    }
    const json_t *b = json_object_get(t, "backup");
    if (b == NULL) {
        return 0;
    }
    if (!json_is_object(b)) {
        return osp_err_set(err, OSP_EINVAL, "target.backup: must be an object");
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)b, key, v) {
        bool known = false;
        for (size_t i = 0; i < OSP_ARRAY_LEN(keys); i++) {
            known = known || strcmp(key, keys[i]) == 0;
        }
        if (!known) {
            return osp_err_set(err, OSP_EINVAL, "target.backup.%.64s: unknown field", key);
        }
    }
    const json_t *rc = json_object_get(b, "restore_check");
    if (rc != NULL && !json_is_boolean(rc)) {
        return osp_err_set(err, OSP_EINVAL, "target.backup.restore_check: must be true or false");
    }
    const json_t *pb = json_object_get(b, "pg_bin");
    if (pb != NULL && (!json_is_string(pb) || json_string_value(pb)[0] != '/')) {
        return osp_err_set(err, OSP_EINVAL, "target.backup.pg_bin: must be an absolute directory");
    }
    int r = backup_check_keep(b, "target.backup", err);
    return r != 0 ? r : backup_check_lock_wait(json_object_get(b, "lock_wait_timeout_ms"),
                                               "target.backup", err);
}

static int backup_validate(const json_t *p, const struct osp_targets *targets, struct osp_err *err)
{
    static const char *const keys[] = {"target", "verify", "retention", "lock_wait_timeout_ms",
                                       "verify_file"};
    if (!json_is_object(p)) {
        return osp_err_set(err, OSP_EINVAL, "payload: must be an object");
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)p, key, v) {
        bool known = false;
        for (size_t i = 0; i < OSP_ARRAY_LEN(keys); i++) {
            known = known || strcmp(key, keys[i]) == 0;
        }
        if (!known) {
            return osp_err_set(err, OSP_EINVAL, "payload.%.64s: unknown field", key);
        }
    }
    const char *target = json_string_value(json_object_get(p, "target"));
    if (target == NULL || target[0] == '\0') {
        return osp_err_set(err, OSP_EINVAL, "payload.target: required, a target name");
    }
    const json_t *x = json_object_get(p, "verify");
    if (x != NULL && (!json_is_string(x) || (strcmp(json_string_value(x), "list") != 0 &&
                                             strcmp(json_string_value(x), "restore") != 0))) {
        return osp_err_set(err, OSP_EINVAL, "payload.verify: must be \"list\" or \"restore\"");
    }
    x = json_object_get(p, "retention");
    if (x != NULL) {
        if (!json_is_object(x)) {
            return osp_err_set(err, OSP_EINVAL, "payload.retention: must be an object");
        }
        json_object_foreach((json_t *)(uintptr_t)x, key, v) {
            if (strcmp(key, "keep_daily") != 0 && strcmp(key, "keep_weekly") != 0 &&
                strcmp(key, "keep_monthly") != 0) {
                return osp_err_set(err, OSP_EINVAL, "payload.retention.%.64s: unknown field", key);
            }
        }
        int rc = backup_check_keep(x, "payload.retention", err);
        if (rc != 0) {
            return rc;
        }
    }
    int rc = backup_check_lock_wait(json_object_get(p, "lock_wait_timeout_ms"), "payload", err);
    if (rc != 0) {
        return rc;
    }
    x = json_object_get(p, "verify_file");
    if (x != NULL && (!json_is_string(x) || !backup_name_parse(json_string_value(x), NULL))) {
        return osp_err_set(err, OSP_EINVAL,
                           "payload.verify_file: must be a backup file name "
                           "(YYYYMMDDTHHMMSSZ-<job id>.dump)");
    }
    if (targets != NULL) {
        const json_t *t = osp_target_get(targets, target);
        if (t == NULL) {
            return osp_err_set(err, OSP_EINVAL, "payload.target: unknown target \"%.64s\"", target);
        }
        return backup_check_target(t, target, err);
    }
    return 0;
}

static int backup_resolve(struct backup_run *b)
{
    struct osp_err err = {0};
    const json_t *p = job_payload(b->ctx);
    if (backup_validate(p, job_targets(b->ctx), &err) != 0) {
        return job_fail(b->ctx, "%s", err.msg);
    }
    struct backup_opts *o = &b->o;
    o->target = json_string_value(json_object_get(p, "target"));
    const json_t *t = osp_target_get(job_targets(b->ctx), o->target);
    if (t == NULL) {
        return job_fail(b->ctx, "target \"%s\" is not in the targets file", o->target);
    }
    const json_t *bk = json_object_get(t, "backup");
    o->dsn = osp_target_str(t, "pg_dsn");
    o->root = osp_target_str(t, "backup_root");
    if (o->root == NULL || o->root[0] == '\0') {
        o->root = job_config(b->ctx)->backup_root; /* OSP_BACKUP_ROOT, default in the table */
    }
    o->pg_bin = json_string_value(json_object_get(bk, "pg_bin"));
    o->verify_file = json_string_value(json_object_get(p, "verify_file"));
    const char *verify = json_string_value(json_object_get(p, "verify"));
    o->restore = verify != NULL ? strcmp(verify, "restore") == 0
                                : json_is_true(json_object_get(bk, "restore_check"));
    const json_t *keep = json_object_get(p, "retention");
    if (keep == NULL && bk != NULL &&
        (json_object_get(bk, "keep_daily") != NULL || json_object_get(bk, "keep_weekly") != NULL ||
         json_object_get(bk, "keep_monthly") != NULL)) {
        keep = bk;
    }
    o->retention_set = keep != NULL;
    o->keep.keep_daily = (int)json_integer_value(json_object_get(keep, "keep_daily"));
    o->keep.keep_weekly = (int)json_integer_value(json_object_get(keep, "keep_weekly"));
    o->keep.keep_monthly = (int)json_integer_value(json_object_get(keep, "keep_monthly"));
    const json_t *lw = json_object_get(p, "lock_wait_timeout_ms");
    if (lw == NULL) {
        lw = json_object_get(bk, "lock_wait_timeout_ms");
    }
    o->lock_wait_ms = lw != NULL ? json_integer_value(lw) : BACKUP_LOCK_WAIT_MS;
    return 0;
}

/* ---- Environment for the tools ---- */

/* environ without PG* variables (a stray PGDATABASE must not redirect the dump), plus one
 * PG* variable per option of the target's DSN (PQconninfoOption.envvar). */
static int backup_make_env(struct backup_run *b)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(b->o.dsn, &perr);
    if (opts == NULL) {
        /* perr describes the syntax problem; it never echoes the value of a password. */
        backup_seterr(b, "target %s: pg_dsn does not parse: %s", b->o.target,
                 perr != NULL ? perr : "out of memory");
        PQfreemem(perr);
        return -1;
    }
    size_t n = 0, cap = 16;
    for (char **e = environ; *e != NULL; e++) {
        cap++;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        cap++;
    }
    b->envp = osp_xcalloc(cap, sizeof(char *));
    for (char **e = environ; *e != NULL; e++) {
        if (strncmp(*e, "PG", 2) != 0) {
            b->envp[n++] = osp_xstrdup(*e);
        }
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val != NULL && o->val[0] != '\0' && o->envvar != NULL) {
            b->envp[n++] = osp_xasprintf("%s=%s", o->envvar, o->val);
        }
    }
    b->envp[n++] = osp_xstrdup("PGAPPNAME=opspool-backup");
    b->envp[n] = NULL;
    PQconninfoFree(opts);
    return 0;
}

static void backup_free_env(char **envp)
{
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        free(envp[i]);
    }
    free(envp);
}

/* Program path: pg_bin/<name> when configured, else the bare name (PATH search). */
static char *backup_prog(const struct backup_run *b, const char *name)
{
    return b->o.pg_bin != NULL ? osp_xasprintf("%s/%s", b->o.pg_bin, name) : osp_xstrdup(name);
}

/* Run a tool; 0 on exit status 0, else -1 with b->err naming the step and stderr. */
static int backup_tool(struct backup_run *b, const char *step, char *const argv[],
                       struct backup_proc *p)
{
    int rc = backup_proc_run(b->ctx, argv, b->envp, BACKUP_LIST_MAX, p);
    if (rc != 0) {
        backup_seterr(b, "%s: cannot start %s: %s", step, argv[0], strerror(-rc));
        return -1;
    }
    if (p->cancelled) {
        backup_seterr(b, "%s: cancelled (%s killed)", step, argv[0]);
        return -1;
    }
    if (p->status != 0) {
        backup_seterr(b, "%s: %s exited with %d: %.600s", step, argv[0], p->status,
                 backup_proc_errtext(p));
        return -1;
    }
    return 0;
}

/* ---- Versions ---- */

/* Major version from "pg_dump (PostgreSQL) 15.18 (Debian ...)" or "9.6.24"-style text. */
static int backup_major(const char *v)
{
    const char *s = v;
    while (*s != '\0' && (*s < '0' || *s > '9')) {
        s++;
    }
    int major = atoi(s);
    if (major < 10) {
        const char *dot = strchr(s, '.');
        major = major * 100 + (dot != NULL ? atoi(dot + 1) : 0); /* 9.6 -> 906 */
    } else {
        major *= 100;
    }
    return major;
}

static int backup_versions(struct backup_run *b)
{
    char *prog = backup_prog(b, "pg_dump");
    char *argv[] = {prog, (char *)(uintptr_t)"--version", NULL};
    struct backup_proc p;
    int rc = backup_tool(b, "pg_dump --version", argv, &p);
    if (rc == 0) {
        const char *out = osp_buf_cstr(&p.out);
        const char *v = strstr(out, ") ");
        snprintf(b->dump_ver, sizeof(b->dump_ver), "%s", v != NULL ? v + 2 : out);
        b->dump_ver[strcspn(b->dump_ver, "\n")] = '\0';
    }
    backup_proc_deinit(&p);
    free(prog);
    if (rc != 0) {
        return -1;
    }
    const char *sv = PQparameterStatus(b->conn, "server_version");
    snprintf(b->server_ver, sizeof(b->server_ver), "%s", sv != NULL ? sv : "unknown");
    int dump_major = backup_major(b->dump_ver);
    int server_major = PQserverVersion(b->conn) / 100;
    if (server_major >= 1000) {
        server_major = server_major / 100 * 100; /* 150004 -> 1500 */
    }
    if (dump_major < server_major) {
        backup_seterr(b,
                 "pg_dump %s is older than the server (%s): pg_dump cannot dump a newer major "
                 "version; install a matching client or set target.backup.pg_bin",
                 b->dump_ver, b->server_ver);
        return -1;
    }
    return 0;
}

/* ---- SQL helpers ---- */

static PGresult *backup_sql(struct backup_run *b, const char *step, const char *sql,
                            ExecStatusType want)
{
    PGresult *r = PQexec(b->conn, sql);
    if (PQresultStatus(r) != want) {
        backup_seterr(b, "%s: %s", step,
                 r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(b->conn));
        b->err[strcspn(b->err, "\n")] = '\0';
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Row counts of every ordinary table (partitions included) in one statement, as
 * {"schema.table": n}. query_to_xml runs one count per table inside the same snapshot. */
static json_t *backup_counts(struct backup_run *b, PGconn *conn, const char *step)
{
    static const char q[] =
        "SELECT format('%I.%I', n.nspname, c.relname), (xpath('/row/c/text()', query_to_xml("
        "format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]"
        "::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1";
    PGresult *r = PQexec(conn, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        backup_seterr(b, "%s: %s", step, PQresultErrorMessage(r));
        b->err[strcspn(b->err, "\n")] = '\0';
        PQclear(r);
        return NULL;
    }
    json_t *out = json_object();
    for (int i = 0; i < PQntuples(r); i++) {
        json_object_set_new(out, PQgetvalue(r, i, 0),
                            json_integer(strtoll(PQgetvalue(r, i, 1), NULL, 10)));
    }
    PQclear(r);
    return out;
}

/* ---- Files ---- */

static int backup_mkdirs(const char *path)
{
    char buf[BACKUP_PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *s = buf + 1; *s != '\0'; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(buf, 0750) != 0 && errno != EEXIST) {
                return -errno;
            }
            *s = '/';
        }
    }
    if (mkdir(buf, 0750) != 0 && errno != EEXIST) {
        return -errno;
    }
    return 0;
}

static int backup_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int rc = fsync(fd) != 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* SHA-256 of a file as hex, its size, and (when do_fsync) an fsync of it. */
static int backup_hash_file(const char *path, bool do_fsync, char hex[65], long long *size)
{
    static const char hx[] = "0123456789abcdef";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;
    unsigned char *buf = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    OSP_ASSERT(md != NULL);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    buf = osp_xmalloc(1u << 20);
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    *size = 0;
    for (;;) {
        ssize_t n = read(fd, buf, 1u << 20);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0) {
            break;
        }
        EVP_DigestUpdate(md, buf, (size_t)n);
        *size += n;
    }
    if (do_fsync && fsync(fd) != 0) {
        rc = -errno;
        goto out;
    }
    unsigned char d[32];
    unsigned dl = 0;
    EVP_DigestFinal_ex(md, d, &dl);
    for (unsigned i = 0; i < dl; i++) {
        hex[2 * i] = hx[d[i] >> 4];
        hex[2 * i + 1] = hx[d[i] & 15];
    }
    hex[2 * dl] = '\0';
out:
    if (fd >= 0) {
        close(fd);
    }
    free(buf);
    EVP_MD_CTX_free(md);
    return rc;
}

/* Write "<sha256>  <name>\n" next to the archive: temp file, fsync, rename, fsync dir. */
static int backup_write_sidecar(struct backup_run *b, const char *name)
{
    char path[BACKUP_PATH_MAX + 16], tmp[BACKUP_PATH_MAX + 32];
    if (!backup_path(path, sizeof(path), "%s.sha256", b->final) ||
        !backup_path(tmp, sizeof(tmp), "%s/.tmp-%s.sha256", b->dir, job_info(b->ctx)->id)) {
        return -ENAMETOOLONG;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        return -errno;
    }
    char line[BACKUP_PATH_MAX];
    if (!backup_path(line, sizeof(line), "%s  %s\n", b->sha256, name)) {
        close(fd);
        unlink(tmp);
        return -ENAMETOOLONG;
    }
    int n = (int)strlen(line);
    int rc = 0;
    errno = 0;
    if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
        rc = errno != 0 ? -errno : -EIO;
    }
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
    }
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    return backup_fsync_dir(b->dir);
}

/* ---- Steps ---- */

static int backup_dump(struct backup_run *b, const char *snapshot)
{
    char *prog = backup_prog(b, "pg_dump");
    char *file = osp_xasprintf("--file=%s", b->tmp);
    char *lock = osp_xasprintf("--lock-wait-timeout=%lldms", b->o.lock_wait_ms);
    char *snap = osp_xasprintf("--snapshot=%s", snapshot);
    char *argv[] = {prog, (char *)(uintptr_t)"--format=custom", (char *)(uintptr_t)"--no-password",
                    file, lock, snap, NULL};
    struct backup_proc p;
    int rc = backup_tool(b, "pg_dump", argv, &p);
    if (rc != 0 && !p.cancelled && strstr(backup_proc_errtext(&p), "LOCK TABLE") != NULL) {
        /* Name the cause: another session holds a conflicting lock (DDL, VACUUM FULL). */
        backup_seterr(b, "pg_dump: could not lock a table within lock_wait_timeout_ms=%lld: %.600s",
                      b->o.lock_wait_ms, backup_proc_errtext(&p));
    }
    backup_proc_deinit(&p);
    free(prog);
    free(file);
    free(lock);
    free(snap);
    return rc;
}

/* pg_restore --list: the archive's table of contents must parse and hold entries. */
static int backup_list(struct backup_run *b, const char *path)
{
    char *prog = backup_prog(b, "pg_restore");
    char *argv[] = {prog, (char *)(uintptr_t)"--list", (char *)(uintptr_t)path, NULL};
    struct backup_proc p;
    int rc = backup_tool(b, "pg_restore --list", argv, &p);
    if (rc == 0) {
        const char *out = osp_buf_cstr(&p.out);
        const char *e = strstr(out, "TOC Entries:");
        b->toc_entries = e != NULL ? strtoll(e + 12, NULL, 10) : 0;
        if (b->toc_entries <= 0 || strstr(out, "Format: CUSTOM") == NULL) {
            backup_seterr(b,
                     "pg_restore --list: archive has no entries or is not custom format");
            rc = -1;
        }
    }
    backup_proc_deinit(&p);
    free(prog);
    return rc;
}

static void backup_ignore_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* kinds never log; "database does not exist, skipping" is not evidence */
}

static PGconn *backup_connect_db(const struct backup_run *b, const char *dbname)
{
    const char *const keys[] = {"dbname", "dbname", "application_name", NULL};
    const char *const vals[] = {b->o.dsn, dbname, "opspool-backup", NULL};
    /* With expand_dbname the first dbname is the whole DSN; the later one overrides its
     * database, keeping host, user and password. */
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c != NULL) {
        PQsetNoticeProcessor(c, backup_ignore_notice, NULL);
    }
    return c;
}

static void backup_drop_scratch(struct backup_run *b)
{
    if (b->scratch[0] == '\0' || b->conn == NULL) {
        return;
    }
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", b->scratch);
    PGresult *r = PQexec(b->conn, sql);
    PQclear(r);
    b->scratch[0] = '\0';
}

static int backup_restore(struct backup_run *b, const char *path)
{
    const char *id = job_info(b->ctx)->id;
    size_t idl = strlen(id);
    char sql[160];
    int rc = -1;
    snprintf(b->scratch, sizeof(b->scratch), "osp_restore_%s", idl >= 12 ? id + idl - 12 : id);
    for (char *s = b->scratch; *s != '\0'; s++) {
        if (*s == '-') {
            *s = '_';
        }
    }
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", b->scratch);
    PGresult *r = backup_sql(b, "drop stale scratch database", sql, PGRES_COMMAND_OK);
    PQclear(r);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0", b->scratch);
    r = backup_sql(b, "create scratch database", sql, PGRES_COMMAND_OK);
    if (r == NULL) {
        b->scratch[0] = '\0';
        return -1;
    }
    PQclear(r);
    char *prog = backup_prog(b, "pg_restore");
    char *dbarg = osp_xasprintf("--dbname=%s", b->scratch);
    char *argv[] = {prog, (char *)(uintptr_t)"--exit-on-error", (char *)(uintptr_t)"--no-owner",
                    (char *)(uintptr_t)"--no-privileges", (char *)(uintptr_t)"--no-password",
                    dbarg, (char *)(uintptr_t)path, NULL};
    struct backup_proc p;
    PGconn *sc = NULL;
    int64_t t0 = osp_mono_ns();
    job_emit(b->ctx, "phase", json_pack("{s:s, s:s}", "phase", "restore", "database", b->scratch));
    if (backup_tool(b, "pg_restore", argv, &p) != 0) {
        goto out;
    }
    b->restore_ms = (osp_mono_ns() - t0) / 1000000;
    sc = backup_connect_db(b, b->scratch);
    if (PQstatus(sc) != CONNECTION_OK) {
        backup_seterr(b, "connect to scratch database: %s", PQerrorMessage(sc));
        goto out;
    }
    b->restored = backup_counts(b, sc, "count restored rows");
    if (b->restored == NULL) {
        goto out;
    }
    if (b->expected != NULL && !json_equal(b->expected, b->restored)) {
        const char *key;
        json_t *v;
        b->mismatch = true;
        backup_seterr(b, "restore check: table sets differ");
        json_object_foreach(b->expected, key, v) {
            json_t *got = json_object_get(b->restored, key);
            if (got == NULL || !json_equal(got, v)) {
                backup_seterr(b, "restore check: %s has %lld rows, expected %lld",
                         key, got != NULL ? (long long)json_integer_value(got) : -1LL,
                         (long long)json_integer_value(v));
                break;
            }
        }
        goto out;
    }
    rc = 0;
out:
    PQfinish(sc);
    backup_proc_deinit(&p);
    free(prog);
    free(dbarg);
    backup_drop_scratch(b);
    return rc;
}

/* Expire by policy; returns the removed names (array, owned by the caller). */
static json_t *backup_apply_retention(struct backup_run *b)
{
    json_t *removed = json_array();
    DIR *d = opendir(b->dir);
    if (d == NULL) {
        return removed;
    }
    char **names = osp_xcalloc(BACKUP_MAX_FILES, sizeof(char *));
    size_t n = 0;
    struct dirent *de;
    while (n < BACKUP_MAX_FILES && (de = readdir(d)) != NULL) {
        if (backup_name_parse(de->d_name, NULL)) {
            names[n++] = osp_xstrdup(de->d_name);
        }
    }
    closedir(d);
    bool *expire = osp_xcalloc(n > 0 ? n : 1, sizeof(bool));
    backup_retention_plan((const char *const *)names, n, &b->o.keep, expire);
    for (size_t i = 0; i < n; i++) {
        if (expire[i]) {
            char path[BACKUP_PATH_MAX + 300];
            if (backup_path(path, sizeof(path), "%s/%s", b->dir, names[i]) && unlink(path) == 0) {
                json_array_append_new(removed, json_string(names[i]));
            }
            if (backup_path(path, sizeof(path), "%s/%s.sha256", b->dir, names[i])) {
                unlink(path);
            }
        }
        free(names[i]);
    }
    if (json_array_size(removed) > 0) {
        backup_fsync_dir(b->dir);
    }
    free(names);
    free(expire);
    return removed;
}

/* Re-verify an existing archive against its sidecar checksum. */
static int backup_verify_existing(struct backup_run *b)
{
    char side[BACKUP_PATH_MAX + 16];
    char want[65] = "";
    if (!backup_path(b->final, sizeof(b->final), "%s/%s", b->dir, b->o.verify_file) ||
        !backup_path(side, sizeof(side), "%s.sha256", b->final)) {
        backup_seterr(b, "verify_file: path too long");
        return -1;
    }
    FILE *f = fopen(side, "r");
    if (f == NULL || fscanf(f, "%64s", want) != 1) {
        backup_seterr(b, "verify_file: cannot read %s.sha256", b->o.verify_file);
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    fclose(f);
    int rc = backup_hash_file(b->final, false, b->sha256, &b->bytes);
    if (rc != 0) {
        backup_seterr(b, "verify_file: %s: %s", b->o.verify_file, strerror(-rc));
        return -1;
    }
    if (strcmp(want, b->sha256) != 0) {
        b->mismatch = true;
        backup_seterr(b, "verify_file: %s: checksum mismatch (sidecar %.16s..., "
                 "file %.16s...)", b->o.verify_file, want, b->sha256);
        return -1;
    }
    if (backup_list(b, b->final) != 0) {
        return -1;
    }
    return b->o.restore ? backup_restore(b, b->final) : 0;
}

static int backup_run_kind(struct job_ctx *ctx)
{
    struct backup_run *b = osp_xcalloc(1, sizeof(*b));
    json_t *removed = NULL;
    bool in_txn = false;
    int rc = 0;
    b->ctx = ctx;
    const char *id = job_info(ctx)->id;
    if (backup_resolve(b) != 0) {
        rc = OSP_EINVAL;
        goto out;
    }
    int64_t t0 = osp_mono_ns();
    int64_t started_s = osp_now_ms() / 1000;
    if (!backup_path(b->dir, sizeof(b->dir), "%s/%s", b->o.root, b->o.target) ||
        !backup_path(b->tmp, sizeof(b->tmp), "%s/.tmp-%s", b->dir, id)) {
        backup_seterr(b, "backup root %s: path too long", b->o.root);
        b->tmp[0] = '\0';
        goto fail;
    }
    if (backup_make_env(b) != 0) {
        goto fail;
    }
    b->conn = backup_connect_db(b, NULL);
    if (PQstatus(b->conn) != CONNECTION_OK) {
        backup_seterr(b, "connect: %s", PQerrorMessage(b->conn));
        b->err[strcspn(b->err, "\n")] = '\0';
        goto fail;
    }
    if (backup_versions(b) != 0) {
        goto fail;
    }
    job_emit(ctx, "versions", json_pack("{s:s, s:s}", "server", b->server_ver, "pg_dump",
                                        b->dump_ver));
    if (b->o.verify_file != NULL) {
        if (backup_verify_existing(b) != 0) {
            goto fail;
        }
        job_set_result(ctx, json_pack("{s:s, s:s, s:I, s:s, s:s, s:I, s:o?}", "target",
                                      b->o.target, "path", b->final, "bytes",
                                      (json_int_t)b->bytes, "sha256", b->sha256, "verified",
                                      b->o.restore ? "restore" : "list", "toc_entries",
                                      (json_int_t)b->toc_entries, "restore_ms",
                                      b->o.restore ? json_integer(b->restore_ms) : NULL));
        goto out;
    }
    int mrc = backup_mkdirs(b->dir);
    if (mrc != 0) {
        backup_seterr(b, "backup directory %s: %s", b->dir, strerror(-mrc));
        goto fail;
    }
    unlink(b->tmp); /* a previous attempt of this job killed hard */

    /* The snapshot the dump and the expected counts share. lock_timeout keeps our own
     * counting from queueing behind DDL, like pg_dump's --lock-wait-timeout. */
    char sql[128];
    snprintf(sql, sizeof(sql),
             "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL lock_timeout = %lld",
             b->o.lock_wait_ms);
    PGresult *r = backup_sql(b, "begin", sql, PGRES_COMMAND_OK);
    if (r == NULL) {
        goto fail;
    }
    PQclear(r);
    in_txn = true;
    r = backup_sql(b, "export snapshot", "SELECT pg_export_snapshot()", PGRES_TUPLES_OK);
    if (r == NULL) {
        goto fail;
    }
    char snapshot[64];
    snprintf(snapshot, sizeof(snapshot), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    job_emit(ctx, "phase", json_pack("{s:s}", "phase", "dump"));
    if (backup_dump(b, snapshot) != 0) {
        goto fail;
    }
    if (b->o.restore) {
        b->expected = backup_counts(b, b->conn, "count source rows");
        if (b->expected == NULL) {
            goto fail;
        }
    }
    r = backup_sql(b, "commit", "COMMIT", PGRES_COMMAND_OK);
    in_txn = false;
    if (r == NULL) {
        goto fail;
    }
    PQclear(r);
    int64_t dump_ms = (osp_mono_ns() - t0) / 1000000;
    int hrc = backup_hash_file(b->tmp, true, b->sha256, &b->bytes);
    if (hrc != 0) {
        backup_seterr(b, "hash %s: %s", b->tmp, strerror(-hrc));
        goto fail;
    }
    job_emit(ctx, "phase", json_pack("{s:s, s:I, s:s, s:I}", "phase", "dumped", "bytes",
                                     (json_int_t)b->bytes, "sha256", b->sha256, "ms",
                                     (json_int_t)dump_ms));
    if (backup_list(b, b->tmp) != 0 || job_is_cancelled(ctx)) {
        goto fail;
    }
    if (b->o.restore && backup_restore(b, b->tmp) != 0) {
        goto fail;
    }
    if (job_is_cancelled(ctx)) {
        backup_seterr(b, "cancelled after verification");
        goto fail;
    }
    char stamp[17];
    char name[128];
    backup_name_stamp(started_s, stamp);
    snprintf(name, sizeof(name), "%s-%s.dump", stamp, id);
    if (!backup_path(b->final, sizeof(b->final), "%s/%s", b->dir, name)) {
        backup_seterr(b, "backup path too long");
        goto fail;
    }
    int frc = rename(b->tmp, b->final) != 0 ? -errno : 0;
    if (frc == 0) {
        b->tmp[0] = '\0';
        frc = backup_fsync_dir(b->dir);
    }
    if (frc == 0) {
        frc = backup_write_sidecar(b, name);
    }
    if (frc != 0) {
        backup_seterr(b, "install %s: %s", name, strerror(-frc));
        goto fail;
    }
    removed = b->o.retention_set ? backup_apply_retention(b) : json_array();
    if (json_array_size(removed) > 0) {
        job_emit(ctx, "retention", json_pack("{s:O}", "expired", removed));
    }
    int64_t dur_ms = (osp_mono_ns() - t0) / 1000000;
    const char *verified = b->o.restore ? "restore" : "list";
    json_t *res = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:O}", "target",
                            b->o.target, "path", b->final, "bytes", (json_int_t)b->bytes, "sha256",
                            b->sha256, "server_version", b->server_ver, "pg_dump_version",
                            b->dump_ver, "duration_ms", (json_int_t)dur_ms, "dump_ms",
                            (json_int_t)dump_ms, "verified", verified, "toc_entries",
                            (json_int_t)b->toc_entries, "expired", removed);
    if (b->o.restore) {
        json_object_set_new(res, "restore_ms", json_integer(b->restore_ms));
        json_object_set(res, "row_counts", b->expected);
    }
    job_set_result(ctx, res);
    job_add_row(ctx, "backups",
                json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:s, s:o}", "target", b->o.target,
                          "path", b->final, "bytes", (json_int_t)b->bytes, "sha256", b->sha256,
                          "server_version", b->server_ver, "pg_dump_version", b->dump_ver,
                          "duration_ms", (json_int_t)dur_ms, "verified", verified, "restore_ms",
                          b->o.restore ? json_integer(b->restore_ms) : json_null()));
    goto out;

fail:
    if (in_txn) {
        PGresult *rb = PQexec(b->conn, "ROLLBACK");
        PQclear(rb);
    }
    if (b->mismatch && !job_is_cancelled(ctx)) {
        /* The archive was made (or read) and did not verify: recorded with its verdict, and
         * final. A new archive is a new job; the failed one is not kept (path null) unless it
         * was an existing file named by verify_file. */
        const char *kept = b->o.verify_file != NULL ? b->final : NULL;
        job_set_result(ctx, json_pack("{s:s, s:s?, s:s, s:s, s:O?, s:O?}", "target", b->o.target,
                                      "path", kept, "verified", "mismatch", "error", b->err,
                                      "row_counts", b->expected, "restored_counts", b->restored));
        job_add_row(ctx, "backups",
                    json_pack("{s:s, s:s?, s:I, s:s, s:s, s:s, s:s}", "target", b->o.target, "path",
                              kept, "bytes", (json_int_t)b->bytes, "sha256", b->sha256,
                              "server_version", b->server_ver, "pg_dump_version", b->dump_ver,
                              "verified", "mismatch"));
        rc = job_verdict_failed(ctx, "backup %s: %s", b->o.target, b->err);
        goto out;
    }
    rc = job_fail(ctx, "backup %s: %s%s", b->o.target, b->err,
                  job_is_cancelled(ctx) ? " (cancelled)" : "");
out:
    if (b->tmp[0] != '\0') {
        unlink(b->tmp); /* never leave a partial or unverified archive behind */
    }
    backup_drop_scratch(b);
    PQfinish(b->conn);
    backup_free_env(b->envp);
    json_decref(b->expected);
    json_decref(b->restored);
    json_decref(removed);
    free(b);
    return rc;
}

const struct job_kind job_kind_backup = {
    .name = "backup",
    .abi = JOB_KIND_ABI,
    .validate = backup_validate,
    .run = backup_run_kind,
    .cancel = NULL, /* run() kills its tool and removes the temp file when it sees cancellation */
    .is_inline = NULL,
    .default_timeout_s = 6 * 3600,
};
