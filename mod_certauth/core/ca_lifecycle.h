/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_lifecycle.h: the CA's rules, written once: renewal (window,
 * superseding, limits), revocation (who may revoke what, the allowed
 * reasons, the keyCompromise cascade), the approval state machine, the
 * CRL refresh decision and the key type of server-made keys.  The HTTP
 * endpoints, EST and certauth-admin call these functions; none of them
 * repeats a rule.  No httpd headers (APR + OpenSSL + the store). */
#ifndef CA_LIFECYCLE_H
#define CA_LIFECYCLE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/evp.h>

#include "ca_csr.h"
#include "ca_issue.h"
#include "ca_store.h"

/* ---- renewal ---------------------------------------------------------- */

/* When the renewal window of a certificate ending at not_after opens. */
apr_int64_t ca_lc_renewal_opens(apr_int64_t not_after, int window_days);

/* May old be renewed now?  APR_SUCCESS; CA_ECONFLICT when old is not
 * valid (revoked, superseded) or expired; CA_EPOLICY when the renewal
 * window is not open yet (*err names the date). */
apr_status_t ca_lc_renewal_check(apr_pool_t *p, const ca_cert_row_t *old,
                                 int window_days, apr_int64_t now,
                                 const char **err);

/* Make req a renewal of old: old is superseded by the new certificate in
 * the same transaction, listed on the CRL from now + grace_secs; a renewal
 * replaces one certificate, so the per-owner limit and unique subjects do
 * not apply (prof is changed accordingly). */
void ca_lc_renewal_prepare(ca_issue_req_t *req, ca_profile_t *prof,
                           const ca_cert_row_t *old, apr_int64_t now,
                           int grace_secs);

/* The limits of a profile, checked before any work is done for a new
 * certificate (server-made keys): CA_ECONFLICT with *err when owner has
 * reached max_valid_per_owner of this profile, or, with unique subjects,
 * when a valid certificate has subject (RFC 2253 text, as stored; NULL:
 * not checked).  ca_issue checks again, atomically, when it stores. */
apr_status_t ca_lc_limits_check(apr_pool_t *p, ca_store_t *st,
                                const ca_profile_t *prof, const char *owner,
                                const char *subject, apr_int64_t now,
                                const char **err);

/* ---- revocation --------------------------------------------------------- */

/* The CRLReason code of an RFC 5280 name, for revoking an end-entity
 * certificate; NULL or "" is unspecified.  -1 with *err for an unknown
 * name and for the reasons no request may give: cACompromise and
 * aACompromise (a compromised CA is replaced, not listed on its own CRL),
 * removeFromCRL (only for delta CRLs). */
int ca_lc_reason(apr_pool_t *p, const char *name, const char **err);

/* Who asks to revoke. */
typedef struct ca_lc_actor_t {
    const char *login;       /* the site's login, or NULL                   */
    const char *cert_owner;  /* owner of the caller's valid certificate     */
    int admin;               /* an administrator (or the operator's CLI)    */
} ca_lc_actor_t;

/* May a revoke row?  An administrator any certificate; otherwise only a
 * certificate of the login's own, or of the same owner as the caller's
 * certificate.  APR_SUCCESS; CA_EPOLICY (another owner's); CA_ECONFLICT
 * (not valid any more, *err says since when). */
apr_status_t ca_lc_may_revoke(apr_pool_t *p, const ca_lc_actor_t *a,
                              const ca_cert_row_t *row, const char **err);

/* Revoke serial (valid -> revoked) with reason at now.  For keyCompromise
 * the certificates that serial authorised (issued on the strength of that
 * certificate alone, ca_store_link_add) are revoked too, for
 * keyCompromise, transitively; their serials are appended to cascaded
 * (const char *) when it is not NULL.  *row: the revoked row. */
apr_status_t ca_lc_revoke(apr_pool_t *p, ca_store_t *st, const char *serial,
                          int reason, apr_int64_t now,
                          apr_int64_t invalidity, ca_cert_row_t **row,
                          apr_array_header_t *cascaded, const char **err);

/* ---- approvals ---------------------------------------------------------- */

typedef enum {
    CA_LC_APPROVE,           /* an administrator approves                   */
    CA_LC_REJECT,            /* an administrator rejects                    */
    CA_LC_ISSUED             /* the approved request's certificate is made  */
} ca_lc_event_t;

/* The state after event in state from ("pending", "approved", "rejected",
 * "issued"), or NULL when the event is not allowed there. */
const char *ca_lc_approval_next(const char *from, ca_lc_event_t event);

/* ---- CRL ---------------------------------------------------------------- */

/* Must the cached CRL be refreshed (from the store, or made anew)?  Yes
 * when there is none, when half of its validity has passed, or when the
 * store was last checked refresh_secs or more ago. */
int ca_lc_crl_refresh_due(int have, apr_int64_t this_update,
                          apr_int64_t next_update, apr_int64_t now,
                          apr_int64_t checked_secs_ago, int refresh_secs);

/* ---- server-made keys --------------------------------------------------- */

/* The key type (for ca_key_generate) of a key the CA makes for a client:
 * the type and size of requested (the CSR's key, may be NULL) when the
 * policy allows it -- RSA only in the sizes 2048, 3072 and 4096, which
 * bounds the work a request can cause -- else the policy's default (the
 * first it allows of EC P-256, EC P-384, RSA 3072 or its minimum if
 * larger, Ed25519). */
const char *ca_lc_server_key_type(apr_pool_t *p, const ca_key_policy_t *kp,
                                  EVP_PKEY *requested);

#endif
