/* SPDX-License-Identifier: MIT */
/* err.h — error codes and the error out-parameter.
 * Functions return 0 on success and a negative code on failure: -errno for OS errors,
 * OSP_E* below -4000 for domain errors. Human detail travels in struct osp_err. */
#ifndef OSP_ERR_H
#define OSP_ERR_H

#include "common/base.h"

enum {
    OSP_EREDIS = -4001,     /* Redis unreachable or returned an error */
    OSP_EPG = -4002,        /* PostgreSQL unreachable or returned an error */
    OSP_EPROTO = -4003,     /* a peer sent something malformed */
    OSP_EINVAL = -4004,     /* caller or user input is invalid */
    OSP_ETIMEDOUT = -4005,  /* a deadline passed */
    OSP_ECANCELED = -4006,  /* cancelled on request */
    OSP_EVERIFY = -4007,    /* signature or checksum did not verify */
    OSP_ETOOBIG = -4008,    /* input exceeds a configured limit */
    OSP_ENOTFOUND = -4009,  /* the named thing does not exist */
    OSP_EFAILED = -4010,    /* a job ran and reported failure */
    OSP_ECONFLICT = -4011,  /* state does not allow the operation */
    OSP_EVERDICT = -4012,   /* a job ran to the end and its verdict is a failure: final */
};

struct osp_err {
    int code;      /* one of the codes above or -errno; 0 when no error */
    char msg[256]; /* human-readable, never contains secrets */
};

/* Static description of a code; never NULL. */
const char *osp_strerror(int code);

/* Fill err (when not NULL) and return code, so callers can `return osp_err_set(...)`. */
int osp_err_set(struct osp_err *err, int code, const char *fmt, ...) OSP_PRINTF(3, 4);

#endif
