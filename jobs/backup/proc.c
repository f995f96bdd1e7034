/* SPDX-License-Identifier: MIT */
/* proc.c — child programs of the backup kind (contract: proc.h). _GNU_SOURCE for pipe2 and
 * execvpe: the environment (which carries the database password) must be passed explicitly
 * to the program without touching our own, and the pipes must not leak into other children. */
#define _GNU_SOURCE
#include "jobs/backup/proc.h"
#include "common/base.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BACKUP_ERR_MAX (16u * 1024u)

/* Child side after fork: wire the pipes, die with the parent, restore default signal
 * handling (the job child ignores SIGPIPE; exec would keep that), exec. Never returns. */
static _Noreturn void backup_proc_exec(char *const argv[], char *const envp[], int out_fd,
                                       int err_fd, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(127); /* the parent died before prctl took effect */
    }
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) {
        _exit(127);
    }
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvpe(argv[0], argv, envp);
    static const char msg[] = "exec failed\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    _exit(127);
}

/* Read what is available on fd into b (up to max bytes kept). Returns false at EOF/error. */
static bool backup_proc_drain(int fd, struct osp_buf *b, size_t max)
{
    char tmp[65536];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n < 0) {
        return errno == EINTR || errno == EAGAIN;
    }
    if (n == 0) {
        return false;
    }
    size_t room = b->len < max ? max - b->len : 0;
    osp_buf_append(b, tmp, (size_t)n < room ? (size_t)n : room);
    return true;
}

int backup_proc_run(struct job_ctx *ctx, char *const argv[], char *const envp[], size_t out_max,
                    struct backup_proc *p)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    int rc = 0;
    memset(p, 0, sizeof(*p));
    if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        rc = -errno;
        goto out;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto out;
    }
    if (pid == 0) {
        backup_proc_exec(argv, envp, outp[1], errp[1], parent);
    }
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;

    int64_t term_at = 0; /* when SIGTERM was sent; SIGKILL follows after the grace period */
    bool out_open = true, err_open = true, reaped = false;
    int wstatus = 0;
    while (!reaped) {
        if (ctx != NULL && !p->cancelled && job_is_cancelled(ctx)) {
            p->cancelled = true;
            term_at = osp_mono_ns();
            kill(pid, SIGTERM);
        }
        if (term_at != 0 && osp_mono_ns() - term_at > (int64_t)BACKUP_PROC_GRACE_MS * 1000000) {
            kill(pid, SIGKILL);
        }
        if (out_open || err_open) {
            struct pollfd pf[2] = {{.fd = out_open ? outp[0] : -1, .events = POLLIN},
                                   {.fd = err_open ? errp[0] : -1, .events = POLLIN}};
            int n = poll(pf, 2, 100);
            if (n > 0 && out_open && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                out_open = backup_proc_drain(outp[0], &p->out, out_max);
            }
            if (n > 0 && err_open && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
                err_open = backup_proc_drain(errp[0], &p->err, BACKUP_ERR_MAX);
            }
            if (out_open || err_open) {
                continue;
            }
        }
        /* Both pipes closed: the program is exiting (or detached its output). */
        pid_t w = waitpid(pid, &wstatus, WNOHANG);
        if (w == pid) {
            reaped = true;
        } else if (w < 0 && errno != EINTR) {
            rc = -errno;
            goto out;
        } else {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 20000000};
            nanosleep(&ts, NULL);
        }
    }
    p->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
out:
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0) {
            close(outp[i]);
        }
        if (errp[i] >= 0) {
            close(errp[i]);
        }
    }
    return rc;
}

void backup_proc_deinit(struct backup_proc *p)
{
    osp_buf_deinit(&p->out);
    osp_buf_deinit(&p->err);
}

const char *backup_proc_errtext(struct backup_proc *p)
{
    while (p->err.len > 0 &&
           (p->err.data[p->err.len - 1] == '\n' || p->err.data[p->err.len - 1] == ' ')) {
        p->err.len--;
    }
    return osp_buf_cstr(&p->err);
}
