/* SPDX-License-Identifier: MIT */
/* local.c — faults on processes of this machine: reading the target's pidfile (restart) and
 * the CPU pressure workers.
 *
 * A stress worker must never outlive its drill, whatever happens to the drill: it carries
 * three independent stops — alarm(duration + 1 s) whose default action kills it, RLIMIT_CPU
 * slightly above what it can use in that time (SIGXCPU, then SIGKILL at the hard limit), and
 * a parent-death signal so it dies with the drill's child. It also shares the child's process
 * group, which the worker signals on cancel. Rollback SIGKILLs and reaps them and reports
 * which pids are still alive afterwards (kill(pid, 0)), so the evidence shows they are gone. */
#include "common/base.h"
#include "jobs/drill/drill.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h> /* PR_SET_PDEATHSIG: Linux-only, like the worker itself */
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int drill_read_pidfile(const char *path, pid_t *pid, struct osp_err *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return osp_err_set(err, -errno, "pidfile %.200s: %s", path, strerror(errno));
    }
    char line[32] = {0};
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    char *end = NULL;
    long v = got ? strtol(line, &end, 10) : 0;
    if (!got || end == line || (*end != '\0' && *end != '\n') || v <= 1 || v > 4194304) {
        return osp_err_set(err, OSP_EINVAL, "pidfile %.200s: no valid pid", path);
    }
    *pid = (pid_t)v;
    return 0;
}

static int64_t drill_cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The worker body: busy for load% of every 100 ms slice, asleep for the rest. */
_Noreturn static void drill_stress_body(unsigned load, unsigned duration_s, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(0); /* the parent died before the death signal was armed */
    }
    struct rlimit rl = {.rlim_cur = duration_s + 2, .rlim_max = duration_s + 3};
    setrlimit(RLIMIT_CPU, &rl);
    signal(SIGALRM, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    alarm(duration_s + 1);
    const int64_t slice = 100000000;
    int64_t end = drill_cpu_now_ns() + (int64_t)duration_s * 1000000000;
    volatile uint64_t sink = 0;
    for (;;) {
        int64_t start = drill_cpu_now_ns();
        if (start >= end) {
            _exit(0);
        }
        while (drill_cpu_now_ns() - start < slice * load / 100) {
            for (int i = 0; i < 10000; i++) {
                sink = sink * 6364136223846793005ULL + 1442695040888963407ULL;
            }
        }
        if (load < 100) {
            int64_t rest = slice - (drill_cpu_now_ns() - start);
            if (rest > 0) {
                struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)rest};
                nanosleep(&ts, NULL);
            }
        }
    }
}

int drill_stress_start(struct drill_stress *st, unsigned n, unsigned load, unsigned duration_s)
{
    pid_t self = getpid();
    if (n > DRILL_STRESS_MAX) {
        n = DRILL_STRESS_MAX;
    }
    for (unsigned i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            return -errno;
        }
        if (pid == 0) {
            drill_stress_body(load, duration_s, self);
        }
        st->pids[st->n++] = pid;
    }
    return 0;
}

unsigned drill_stress_alive(const struct drill_stress *st)
{
    unsigned alive = 0;
    for (unsigned i = 0; i < st->n; i++) {
        /* A reaped worker's pid answers ESRCH; an unreaped zombie still counts as alive,
         * which is right: it has not been cleaned up yet. */
        if (st->pids[i] > 0 && kill(st->pids[i], 0) == 0) {
            alive++;
        }
    }
    return alive;
}

void drill_stress_stop(struct drill_stress *st, json_t *evidence)
{
    json_t *pids = json_array();
    for (unsigned i = 0; i < st->n; i++) {
        if (st->pids[i] <= 0) {
            continue;
        }
        kill(st->pids[i], SIGKILL);
        while (waitpid(st->pids[i], NULL, 0) < 0 && errno == EINTR) {
        }
        json_array_append_new(pids, json_integer(st->pids[i]));
    }
    json_object_set_new(evidence, "stress_pids", pids);
    json_object_set_new(evidence, "stress_alive_after", json_integer(drill_stress_alive(st)));
    st->n = 0;
}
