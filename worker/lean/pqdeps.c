/* SPDX-License-Identifier: MIT */
/* pqdeps.c — libpq's LDAP and GSSAPI calls, loaded when first used.
 *
 * The worker links Debian's static libpq (libpq.a, with libpgcommon/libpgport from
 * postgresql-server-dev) instead of libpq.so.5, because the shared library's DT_NEEDED chain
 * (libldap → GnuTLS → p11-kit, nettle, gmp, …; libgssapi_krb5 → krb5, k5crypto, …) costs
 * ~5.6 MiB of resident memory in every worker at start, before it has connected to anything
 * (docs/decisions/0006-lean-worker-link.md). libpq.a still references those libraries for two
 * features: pg_service.conf entries with an ldap:// URL, and GSSAPI (Kerberos) authentication
 * and encryption. This file defines exactly the symbols libpq.a uses and forwards each call to
 * the real library, opened with dlopen() the first time one of them is called. So both
 * features still work; a worker that never uses them never maps those libraries.
 *
 * When the library cannot be loaded (the runtime image lacks libldap-2.5-0 or
 * libgssapi-krb5-2), each call fails the way the library reports failure (NULL, an LDAP error
 * code, GSS_S_FAILURE), libpq turns that into a connection error, and the reason is logged
 * once on stderr.
 *
 * Prototypes are those of OpenLDAP 2.5 <ldap.h> and RFC 2744 / MIT krb5 <gssapi/gssapi.h>,
 * written out with opaque pointer types because the headers are not build dependencies; the
 * ABI of each call is unchanged (pointers, int, and OM_uint32 = uint32_t).
 *
 * Only compiled into opspool-worker when it is linked with the static libpq (CMake option
 * OSP_LEAN_WORKER): linked next to libpq.so these definitions would interpose the real ones.
 * Single-threaded use (the worker's loop and its forked children). */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

typedef uint32_t OM_uint32;
typedef OM_uint32 gss_qop_t;
typedef int gss_cred_usage_t;
typedef struct gss_OID_desc_struct {
    OM_uint32 length;
    void *elements;
} gss_OID_desc, *gss_OID;
typedef struct gss_OID_set_desc_struct *gss_OID_set;
typedef struct gss_buffer_desc_struct *gss_buffer_t;
typedef struct gss_name_struct *gss_name_t;
typedef struct gss_cred_id_struct *gss_cred_id_t;
typedef struct gss_ctx_id_struct *gss_ctx_id_t;
typedef struct gss_channel_bindings_struct *gss_channel_bindings_t;

typedef struct ldap LDAP;
typedef struct ldapmsg LDAPMessage;
struct berval;

#define GSS_S_FAILURE    (((OM_uint32)13ul) << 16)
#define LDAP_LOCAL_ERROR (-2)

enum { LIB_LDAP, LIB_GSS, LIB_N };

static const char *const lib_names[LIB_N] = {"libldap-2.5.so.0", "libgssapi_krb5.so.2"};
static void *lib_handle[LIB_N];
static int lib_failed[LIB_N];

/* The address of `sym` in library `lib`, or NULL (reason on stderr, once per library). */
static void *resolve(int lib, const char *sym)
{
    if (lib_failed[lib]) {
        return NULL;
    }
    if (lib_handle[lib] == NULL) {
        lib_handle[lib] = dlopen(lib_names[lib], RTLD_NOW | RTLD_LOCAL);
        if (lib_handle[lib] == NULL) {
            const char *e = dlerror();
            fprintf(stderr, "opspool: %s is needed for %s and could not be loaded: %s\n",
                    lib_names[lib], lib == LIB_LDAP ? "an LDAP service lookup" : "GSSAPI",
                    e != NULL ? e : "unknown error");
            lib_failed[lib] = 1;
            return NULL;
        }
    }
    void *p = dlsym(lib_handle[lib], sym);
    if (p == NULL) {
        fprintf(stderr, "opspool: %s has no symbol %s\n", lib_names[lib], sym);
    }
    return p;
}

/* One forwarding definition: the real function's pointer is cached in a static of the exact
 * prototype's type, resolved on the first call. */
#define FORWARD(lib, ret, name, fail, params, args)                                                \
    ret name params;                                                                               \
    ret name params                                                                                \
    {                                                                                              \
        static ret(*real) params;                                                                  \
        if (real == NULL) {                                                                        \
            void *p = resolve(lib, #name);                                                         \
            if (p == NULL) {                                                                       \
                return fail;                                                                       \
            }                                                                                      \
            memcpy(&real, &p, sizeof real);                                                        \
        }                                                                                          \
        return real args;                                                                          \
    }

/* ---- OpenLDAP: pg_service.conf "ldap://" lookups (fe-connect.c ldapServiceLookup) ---- */

FORWARD(LIB_LDAP, LDAP *, ldap_init, NULL, (const char *host, int port), (host, port))
FORWARD(LIB_LDAP, int, ldap_set_option, LDAP_LOCAL_ERROR,
        (LDAP * ld, int option, const void *invalue), (ld, option, invalue))
FORWARD(LIB_LDAP, int, ldap_simple_bind, -1, (LDAP * ld, const char *who, const char *passwd),
        (ld, who, passwd))
FORWARD(LIB_LDAP, int, ldap_result, -1,
        (LDAP * ld, int msgid, int all, struct timeval *timeout, LDAPMessage **result),
        (ld, msgid, all, timeout, result))
FORWARD(LIB_LDAP, int, ldap_search_st, LDAP_LOCAL_ERROR,
        (LDAP * ld, const char *base, int scope, const char *filter, char **attrs, int attrsonly,
         struct timeval *timeout, LDAPMessage **res),
        (ld, base, scope, filter, attrs, attrsonly, timeout, res))
FORWARD(LIB_LDAP, int, ldap_count_entries, -1, (LDAP * ld, LDAPMessage *chain), (ld, chain))
FORWARD(LIB_LDAP, LDAPMessage *, ldap_first_entry, NULL, (LDAP * ld, LDAPMessage *chain),
        (ld, chain))
FORWARD(LIB_LDAP, struct berval **, ldap_get_values_len, NULL,
        (LDAP * ld, LDAPMessage *entry, const char *target), (ld, entry, target))
FORWARD(LIB_LDAP, int, ldap_msgfree, -1, (LDAPMessage * lm), (lm))
FORWARD(LIB_LDAP, int, ldap_unbind, LDAP_LOCAL_ERROR, (LDAP * ld), (ld))
static char ldap_missing[] = "LDAP library not available";
FORWARD(LIB_LDAP, char *, ldap_err2string, ldap_missing, (int err), (err))

/* Nothing to free when the library never loaded: its values only come from the library. */
void ldap_value_free_len(struct berval **vals);
void ldap_value_free_len(struct berval **vals)
{
    static void (*real)(struct berval **);
    if (real == NULL) {
        void *p = resolve(LIB_LDAP, "ldap_value_free_len");
        if (p == NULL) {
            return;
        }
        memcpy(&real, &p, sizeof real);
    }
    real(vals);
}

/* ---- GSSAPI: Kerberos authentication and gssencmode (fe-gssapi-common.c, fe-auth.c,
 * fe-secure-gssapi.c) ---- */

/* libpq passes GSS_C_NT_HOSTBASED_SERVICE to gss_import_name. It is a data symbol, so it
 * cannot be resolved lazily: ours points at a private copy of the OID (1.2.840.113554.1.2.1.4,
 * RFC 2744 §4), and gss_import_name below swaps in the library's own pointer. */
static unsigned char nt_hostbased_der[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                           0x12, 0x01, 0x02, 0x01, 0x04};
static gss_OID_desc nt_hostbased = {sizeof nt_hostbased_der, nt_hostbased_der};
gss_OID GSS_C_NT_HOSTBASED_SERVICE = &nt_hostbased;

OM_uint32 gss_import_name(OM_uint32 *minor, gss_buffer_t input_name_buffer, gss_OID input_name_type,
                          gss_name_t *output_name);
OM_uint32 gss_import_name(OM_uint32 *minor, gss_buffer_t input_name_buffer, gss_OID input_name_type,
                          gss_name_t *output_name)
{
    static OM_uint32 (*real)(OM_uint32 *, gss_buffer_t, gss_OID, gss_name_t *);
    static gss_OID real_nt;
    if (real == NULL) {
        void *p = resolve(LIB_GSS, "gss_import_name");
        void *nt = p != NULL ? resolve(LIB_GSS, "GSS_C_NT_HOSTBASED_SERVICE") : NULL;
        if (p == NULL || nt == NULL) {
            if (minor != NULL) {
                *minor = 0;
            }
            return GSS_S_FAILURE;
        }
        memcpy(&real, &p, sizeof real);
        real_nt = *(gss_OID *)nt;
    }
    if (input_name_type == &nt_hostbased) {
        input_name_type = real_nt;
    }
    return real(minor, input_name_buffer, input_name_type, output_name);
}

/* On failure the minor status is cleared so libpq's error text does not read garbage. */
#define GSS_FAILED                      (minor != NULL ? (void)(*minor = 0) : (void)0, GSS_S_FAILURE)
#define GSS_FORWARD(name, params, args) FORWARD(LIB_GSS, OM_uint32, name, GSS_FAILED, params, args)

GSS_FORWARD(gss_acquire_cred,
            (OM_uint32 * minor, gss_name_t desired_name, OM_uint32 time_req,
             gss_OID_set desired_mechs, gss_cred_usage_t cred_usage,
             gss_cred_id_t *output_cred_handle, gss_OID_set *actual_mechs, OM_uint32 *time_rec),
            (minor, desired_name, time_req, desired_mechs, cred_usage, output_cred_handle,
             actual_mechs, time_rec))
GSS_FORWARD(gss_init_sec_context,
            (OM_uint32 * minor, gss_cred_id_t claimant_cred_handle, gss_ctx_id_t *context_handle,
             gss_name_t target_name, gss_OID mech_type, OM_uint32 req_flags, OM_uint32 time_req,
             gss_channel_bindings_t input_chan_bindings, gss_buffer_t input_token,
             gss_OID *actual_mech_type, gss_buffer_t output_token, OM_uint32 *ret_flags,
             OM_uint32 *time_rec),
            (minor, claimant_cred_handle, context_handle, target_name, mech_type, req_flags,
             time_req, input_chan_bindings, input_token, actual_mech_type, output_token, ret_flags,
             time_rec))
GSS_FORWARD(gss_delete_sec_context,
            (OM_uint32 * minor, gss_ctx_id_t *context_handle, gss_buffer_t output_token),
            (minor, context_handle, output_token))
GSS_FORWARD(gss_display_status,
            (OM_uint32 * minor, OM_uint32 status_value, int status_type, gss_OID mech_type,
             OM_uint32 *message_context, gss_buffer_t status_string),
            (minor, status_value, status_type, mech_type, message_context, status_string))
GSS_FORWARD(gss_release_buffer, (OM_uint32 * minor, gss_buffer_t buffer), (minor, buffer))
GSS_FORWARD(gss_release_cred, (OM_uint32 * minor, gss_cred_id_t *cred_handle), (minor, cred_handle))
GSS_FORWARD(gss_release_name, (OM_uint32 * minor, gss_name_t *name), (minor, name))
GSS_FORWARD(gss_wrap,
            (OM_uint32 * minor, gss_ctx_id_t context_handle, int conf_req_flag, gss_qop_t qop_req,
             gss_buffer_t input_message_buffer, int *conf_state,
             gss_buffer_t output_message_buffer),
            (minor, context_handle, conf_req_flag, qop_req, input_message_buffer, conf_state,
             output_message_buffer))
GSS_FORWARD(gss_unwrap,
            (OM_uint32 * minor, gss_ctx_id_t context_handle, gss_buffer_t input_message_buffer,
             gss_buffer_t output_message_buffer, int *conf_state, gss_qop_t *qop_state),
            (minor, context_handle, input_message_buffer, output_message_buffer, conf_state,
             qop_state))
GSS_FORWARD(gss_wrap_size_limit,
            (OM_uint32 * minor, gss_ctx_id_t context_handle, int conf_req_flag, gss_qop_t qop_req,
             OM_uint32 req_output_size, OM_uint32 *max_input_size),
            (minor, context_handle, conf_req_flag, qop_req, req_output_size, max_input_size))
