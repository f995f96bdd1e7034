/* SPDX-License-Identifier: MIT */
/* instances.c — the local adapter's replicas for scale-out lanes (scale.h): N processes of
 * the target's service, started from the target's local.instance, awaited, stopped.
 *
 *   "local": {"instance": {"argv": ["/usr/local/bin/opspool-shortener"],
 *                          "env": {"SHORTENER_ADDR": "127.0.0.1:{port}", ...},
 *                          "ready_timeout_s": 30, "log": "/var/log/shortener-{index}.log"}}
 *
 * No shell: argv[0] is an absolute path executed as is. {port} (a free loopback port chosen
 * here) and {index} (0..N-1) are replaced in every argv element, env value and the log path.
 * The environment is env and nothing else, so the worker's own settings and secrets never
 * reach the service. Ports are picked below the kernel's ephemeral range (as
 * tests/support/ports.sh does for servers that cannot report the port they bound): no bind(0)
 * and no outgoing connection is ever given one, so only another explicit pick could take it
 * between the pick and the instance's bind; then that instance exits, and the lane fails with
 * its exit status (never silently).
 *
 * An instance must never outlive its job: it stays in the job child's process group (which
 * the worker signals on cancel and kills after the grace), it gets SIGKILL when the child
 * dies (PR_SET_PDEATHSIG), and bench_instances_stop SIGTERMs, then SIGKILLs and reaps it.
 * Between fork and exec the child only calls async-signal-safe functions: the job's child may
 * have threads (the load engines, the balancer). _GNU_SOURCE for close_range/syscall. */
#define _GNU_SOURCE
#include "common/alloc.h"
#include "common/base.h"
#include "jobs/benchmark/scale.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* text with every {port} and {index} replaced (owned). */
static char *inst_subst(const char *text, unsigned port, unsigned index)
{
    char ps[16], is[16];
    snprintf(ps, sizeof(ps), "%u", port);
    snprintf(is, sizeof(is), "%u", index);
    size_t cap = strlen(text) * 2 + 64, len = 0;
    char *out = osp_xmalloc(cap);
    for (const char *p = text; *p != '\0';) {
        const char *rep = NULL;
        size_t skip = 1;
        if (strncmp(p, "{port}", 6) == 0) {
            rep = ps;
            skip = 6;
        } else if (strncmp(p, "{index}", 7) == 0) {
            rep = is;
            skip = 7;
        }
        size_t add = rep != NULL ? strlen(rep) : 1;
        if (len + add + 1 > cap) {
            cap = (len + add + 1) * 2;
            out = osp_xrealloc(out, cap);
        }
        if (rep != NULL) {
            memcpy(out + len, rep, add);
        } else {
            out[len] = *p;
        }
        len += add;
        p += skip;
    }
    out[len] = '\0';
    return out;
}

static void inst_free_vec(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        free(v[i]);
    }
    free(v);
}

/* The lowest ephemeral port (ip_local_port_range), at least 12000: ports below it are never
 * handed out by bind(0) or to outgoing connections, so a port picked there and free now can
 * only be taken by another explicit pick (the rule of tests/support/ports.sh free_port). */
static unsigned inst_ephemeral_low(void)
{
    unsigned lo = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
    if (f != NULL) {
        if (fscanf(f, "%u", &lo) != 1) {
            lo = 32768;
        }
        fclose(f);
    }
    return lo < 12000 ? 12000 : (lo > 65535 ? 65535 : lo);
}

/* A free loopback port below the ephemeral range, held by the returned socket until the
 * caller closes it (so the N picks of one start are distinct). */
static int inst_reserve_port(unsigned *port, uint64_t *rng, struct osp_err *err)
{
    unsigned lo = inst_ephemeral_low();
    for (int attempt = 0; attempt < 500; attempt++) {
        *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned p = 10000 + (unsigned)((*rng >> 33) % (lo - 10000));
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                .sin_port = htons((uint16_t)p)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return osp_err_set(err, -errno, "cannot pick a loopback port: %s", strerror(errno));
        }
        if (bind(fd, (const struct sockaddr *)&a, sizeof(a)) == 0) {
            *port = p;
            return fd;
        }
        close(fd);
    }
    return osp_err_set(err, OSP_ECONFLICT, "no free loopback port below %u after 500 tries", lo);
}

/* The forked side: only async-signal-safe calls from here to execve. */
_Noreturn static void inst_exec(char *const *argv, char *const *envp, int out_fd, pid_t parent)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* exec keeps the mask: give the service a clean one */
    signal(SIGPIPE, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(127); /* the job's child died before the death signal was armed */
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
        dup2(devnull, 0);
    }
    dup2(out_fd, 1);
    dup2(out_fd, 2);
#ifdef SYS_close_range
    syscall(SYS_close_range, 3U, ~0U, 0U);
#else
    for (int fd = 3; fd < 1024; fd++) {
        close(fd);
    }
#endif
    execve(argv[0], argv, envp);
    _exit(127);
}

int bench_instances_start(struct bench_instances *in, const json_t *spec, unsigned n,
                          struct osp_err *err)
{
    const json_t *argv_j = json_object_get(spec, "argv");
    const json_t *env_j = json_object_get(spec, "env");
    const char *log = json_string_value(json_object_get(spec, "log"));
    int held[BENCH_MAX_REPLICAS];
    unsigned nheld = 0;
    int rc = 0;
    OSP_ASSERT(n <= BENCH_MAX_REPLICAS);
    /* Reserve every port first (all distinct), release them just before the starts. */
    uint64_t rng = (uint64_t)osp_mono_ns() ^ ((uint64_t)getpid() << 32);
    for (unsigned i = 0; i < n; i++) {
        int fd = inst_reserve_port(&in->ports[in->n + i], &rng, err);
        if (fd < 0) {
            rc = fd;
            break;
        }
        held[nheld++] = fd;
    }
    for (unsigned i = 0; i < nheld; i++) {
        close(held[i]);
    }
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        unsigned idx = in->n, port = in->ports[idx];
        size_t na = json_array_size(argv_j), ne = json_object_size(env_j);
        char **argv = osp_xcalloc(na + 1, sizeof(char *));
        char **envp = osp_xcalloc(ne + 1, sizeof(char *));
        for (size_t a = 0; a < na; a++) {
            argv[a] = inst_subst(json_string_value(json_array_get(argv_j, a)), port, idx);
        }
        const char *k;
        json_t *v;
        size_t e = 0;
        json_object_foreach((json_t *)(uintptr_t)env_j, k, v)
        {
            char *val = inst_subst(json_string_value(v), port, idx);
            envp[e++] = osp_xasprintf("%s=%s", k, val);
            free(val);
        }
        char *logp = log != NULL ? inst_subst(log, port, idx) : NULL;
        int out_fd = logp != NULL ? open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)
                                  : open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (out_fd < 0) {
            rc = osp_err_set(err, -errno, "instance %u: cannot open %.200s: %s", idx,
                             logp != NULL ? logp : "/dev/null", strerror(errno));
        } else {
            pid_t parent = getpid();
            pid_t pid = fork();
            if (pid == 0) {
                inst_exec(argv, envp, out_fd, parent);
            }
            if (pid < 0) {
                rc = osp_err_set(err, -errno, "instance %u: fork: %s", idx, strerror(errno));
            } else {
                in->pids[idx] = pid;
                in->n++;
            }
            close(out_fd);
        }
        free(logp);
        inst_free_vec(argv);
        inst_free_vec(envp);
    }
    return rc;
}

/* ---- Readiness ---- */

/* GET path on 127.0.0.1:port within timeout_ms: the status, or 0 when there was no answer. */
static int inst_probe(unsigned port, const char *path, int timeout_ms)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 0;
    }
    int64_t end = osp_mono_ns() + (int64_t)timeout_ms * 1000000;
    int status = 0;
    char req[2300];
    int rl = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUser-Agent: opspool-benchmark/1"
                      "\r\nConnection: close\r\n\r\n",
                      path, port);
    size_t sent = 0;
    char resp[64];
    size_t got = 0;
    bool connected = connect(fd, (const struct sockaddr *)&a, sizeof(a)) == 0;
    if (!connected && errno != EINPROGRESS) {
        goto out;
    }
    for (;;) {
        int left = (int)((end - osp_mono_ns()) / 1000000);
        if (left <= 0) {
            goto out;
        }
        struct pollfd pf = {.fd = fd, .events = (short)(sent < (size_t)rl ? POLLOUT : POLLIN)};
        int pr = poll(&pf, 1, left);
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        if (pr <= 0) {
            goto out;
        }
        if (sent < (size_t)rl) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
                goto out;
            }
            ssize_t w = send(fd, req + sent, (size_t)rl - sent, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                goto out;
            }
            sent += w > 0 ? (size_t)w : 0;
            continue;
        }
        ssize_t r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
        if (got >= 12 || got == sizeof(resp) - 1) {
            break;
        }
    }
    resp[got] = '\0';
    if (got >= 12 && strncmp(resp, "HTTP/1.", 7) == 0 && resp[8] == ' ') {
        status = atoi(resp + 9);
    }
out:
    close(fd);
    return status;
}

int bench_instances_wait_ready(struct bench_instances *in, const char *health_path,
                               int64_t timeout_ms, bench_sleep_fn *sleep, void *sleep_arg,
                               struct osp_err *err)
{
    int64_t end = osp_mono_ns() + timeout_ms * 1000000;
    bool ready[BENCH_MAX_REPLICAS] = {false};
    unsigned nready = 0;
    int last[BENCH_MAX_REPLICAS] = {0};
    for (;;) {
        for (unsigned i = 0; i < in->n; i++) {
            if (ready[i]) {
                continue;
            }
            int ws = 0;
            pid_t r = waitpid(in->pids[i], &ws, WNOHANG);
            if (r == in->pids[i]) {
                /* Reaped here: stop must not signal a pid that may be reused. */
                in->pids[i] = -1;
                return osp_err_set(err, OSP_EFAILED,
                                   "instance %u (port %u) exited before it was ready (%s %d)", i,
                                   in->ports[i], WIFEXITED(ws) ? "status" : "signal",
                                   WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
            }
            last[i] = inst_probe(in->ports[i], health_path, 1000);
            if (last[i] >= 200 && last[i] < 300) {
                ready[i] = true;
                nready++;
            }
        }
        if (nready == in->n) {
            return 0;
        }
        if (osp_mono_ns() >= end) {
            for (unsigned i = 0; i < in->n; i++) {
                if (!ready[i]) {
                    return osp_err_set(err, OSP_ETIMEDOUT,
                                       "%u of %u instances ready after %lld ms: instance %u "
                                       "(port %u) answers GET %.100s with %s%d",
                                       nready, in->n, (long long)timeout_ms, i, in->ports[i],
                                       health_path, last[i] == 0 ? "nothing " : "", last[i]);
                }
            }
        }
        if (sleep(sleep_arg, 100)) {
            return osp_err_set(err, OSP_ECANCELED, "cancelled while instances were starting");
        }
    }
}

/* ---- Stop ---- */

void bench_instances_stop(struct bench_instances *in, int64_t grace_ms, json_t *ev)
{
    unsigned stopped = 0, killed = 0;
    pid_t started[BENCH_MAX_REPLICAS];
    json_t *pids = json_array();
    for (unsigned i = 0; i < in->n; i++) {
        started[i] = in->pids[i];
        if (in->pids[i] > 0) {
            json_array_append_new(pids, json_integer(in->pids[i]));
            kill(in->pids[i], SIGTERM);
        }
    }
    int64_t end = osp_mono_ns() + grace_ms * 1000000;
    for (;;) {
        bool left = false;
        for (unsigned i = 0; i < in->n; i++) {
            if (in->pids[i] <= 0) {
                continue;
            }
            pid_t r = waitpid(in->pids[i], NULL, WNOHANG);
            if (r == in->pids[i] || (r < 0 && errno == ECHILD)) {
                in->pids[i] = -1;
                stopped++;
            } else {
                left = true;
            }
        }
        if (!left || osp_mono_ns() >= end) {
            break;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20000000};
        nanosleep(&ts, NULL);
    }
    for (unsigned i = 0; i < in->n; i++) {
        if (in->pids[i] <= 0) {
            continue;
        }
        kill(in->pids[i], SIGKILL);
        while (waitpid(in->pids[i], NULL, 0) < 0 && errno == EINTR) {
        }
        in->pids[i] = -1;
        killed++;
    }
    /* Every one was reaped above: a pid that still answers kill(pid, 0) would be a process
     * that escaped (or, very rarely, a reused pid). The evidence says so either way. */
    unsigned alive = 0;
    for (unsigned i = 0; i < in->n; i++) {
        if (started[i] > 0 && kill(started[i], 0) == 0) {
            alive++;
        }
    }
    if (ev != NULL) {
        json_object_set_new(ev, "pids", pids);
        json_object_set_new(ev, "stopped", json_integer(stopped));
        json_object_set_new(ev, "killed", json_integer(killed));
        json_object_set_new(ev, "alive_after", json_integer(alive));
    } else {
        json_decref(pids);
    }
    in->n = 0;
}
