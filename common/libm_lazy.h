/* SPDX-License-Identifier: MIT */
/* libm_lazy.h — the libm functions opspool calls, loaded on first use, and floor/ceil.
 *
 * Only the Zipf samplers of the seed generator and the load generator need libm (exp, expm1,
 * log, log1p, pow), and both run in forked job children. Linking libm would make every worker
 * map it at start: glibc's libm resolves its IFUNC variants at load time, which costs ~300 KiB
 * of RSS in a process that never calls it (docs/decisions/0006-lean-worker-link.md). So the
 * library is opened with dlopen("libm.so.6") the first time a sampler is set up.
 *
 * Threading: none (the callers are single-threaded processes). */
#ifndef OSP_LIBM_LAZY_H
#define OSP_LIBM_LAZY_H

struct osp_libm {
    double (*exp)(double);
    double (*expm1)(double);
    double (*log)(double);
    double (*log1p)(double);
    double (*pow)(double, double);
};

/* The table, never NULL; borrowed for the life of the process. libm.so.6 ships in the same
 * package as libc.so.6 (libc6), so failing to load it means a broken C library: the process
 * says so on stderr and aborts. */
const struct osp_libm *osp_libm(void);

/* floor() and ceil() without libm (at -O0 GCC calls them; at -O2 it inlines them). Exact for
 * every double, signed zeros included: a double of magnitude >= 2^52 is already integral; NaN
 * and infinities pass through. */
static inline double osp_floor(double x)
{
    if (!(x > -4503599627370496.0 && x < 4503599627370496.0)) {
        return x;
    }
    if (x == 0.0) {
        return x; /* keeps -0.0 */
    }
    double t = (double)(long long)x; /* toward zero */
    return t > x ? t - 1.0 : t;
}

static inline double osp_ceil(double x)
{
    if (!(x > -4503599627370496.0 && x < 4503599627370496.0)) {
        return x;
    }
    if (x == 0.0) {
        return x;
    }
    double t = (double)(long long)x;
    if (t < x) {
        return t + 1.0;
    }
    return t == 0.0 ? -0.0 : t; /* ceil of (-1, 0) is -0.0 */
}

#endif
