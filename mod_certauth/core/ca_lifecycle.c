/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_lifecycle.c: the CA's rules, written once (see ca_lifecycle.h). */

#include <string.h>
#include <time.h>

#include <apr_strings.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "ca_crl.h"
#include "ca_lifecycle.h"
#include "ca_util.h"

static const char *iso(apr_pool_t *p, apr_int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char buf[32];

    if (!gmtime_r(&tt, &tm) || !strftime(buf, sizeof(buf),
                                         "%Y-%m-%dT%H:%M:%SZ", &tm)) {
        return apr_psprintf(p, "%" APR_INT64_T_FMT, t);
    }
    return apr_pstrdup(p, buf);
}

/* ---- renewal ---------------------------------------------------------- */

apr_int64_t ca_lc_renewal_opens(apr_int64_t not_after, int window_days)
{
    return not_after - (apr_int64_t)(window_days > 0 ? window_days : 0)
                       * 86400;
}

apr_status_t ca_lc_renewal_check(apr_pool_t *p, const ca_cert_row_t *old,
                                 int window_days, apr_int64_t now,
                                 const char **err)
{
    apr_int64_t opens = ca_lc_renewal_opens(old->not_after, window_days);

    if (strcmp(old->status, CA_STATUS_VALID)) {
        *err = apr_psprintf(p, "certificate %s is %s, it cannot be renewed",
                            old->serial, old->status);
        return CA_ECONFLICT;
    }
    if (old->not_after <= now) {
        *err = apr_psprintf(p, "certificate %s has expired; enroll again",
                            old->serial);
        return CA_ECONFLICT;
    }
    if (now < opens) {
        *err = apr_psprintf(p, "renewal opens %d days before expiry, on %s",
                            window_days, iso(p, opens));
        return CA_EPOLICY;
    }
    return APR_SUCCESS;
}

void ca_lc_renewal_prepare(ca_issue_req_t *req, ca_profile_t *prof,
                           const ca_cert_row_t *old, apr_int64_t now,
                           int grace_secs)
{
    req->supersede = old->serial;
    req->supersede_at = now + (grace_secs > 0 ? grace_secs : 0);
    req->owner = old->owner;
    /* the renewal replaces one certificate: the limits do not apply */
    prof->max_valid_per_owner = 0;
    prof->unique_subject = 0;
}

apr_status_t ca_lc_limits_check(apr_pool_t *p, ca_store_t *st,
                                const ca_profile_t *prof, const char *owner,
                                const char *subject, apr_int64_t now,
                                const char **err)
{
    apr_int64_t n = 0;
    apr_status_t rv;

    if (prof->unique_subject && subject) {
        rv = ca_store_count_valid_subject(st, p, subject, now, &n);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (n > 0) {
            *err = apr_psprintf(p, "a valid certificate with subject %s "
                                "exists already (unique subjects); revoke "
                                "it first", subject);
            return CA_ECONFLICT;
        }
    }
    if (prof->max_valid_per_owner <= 0) {
        return APR_SUCCESS;
    }
    rv = ca_store_count_valid_owner(st, p, owner, prof->name, now, &n);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (n >= prof->max_valid_per_owner) {
        *err = apr_psprintf(p, "%s already has %" APR_INT64_T_FMT " valid "
                            "certificate%s of profile %s (at most %d); "
                            "revoke one first", owner, n, n == 1 ? "" : "s",
                            prof->name, prof->max_valid_per_owner);
        return CA_ECONFLICT;
    }
    return APR_SUCCESS;
}

/* ---- revocation --------------------------------------------------------- */

int ca_lc_reason(apr_pool_t *p, const char *name, const char **err)
{
    int code = ca_reason_code(name && *name ? name : "unspecified");

    if (code == CA_REASON_CA_COMPROMISE || code == CA_REASON_AA_COMPROMISE) {
        *err = "cACompromise and aACompromise are not reasons for an "
               "end-entity certificate (a compromised CA is replaced)";
        return -1;
    }
    if (code < 0) {
        *err = apr_psprintf(p, "reason '%s': an RFC 5280 CRLReason name "
                            "(unspecified, keyCompromise, "
                            "affiliationChanged, superseded, "
                            "cessationOfOperation, certificateHold, "
                            "privilegeWithdrawn)", name);
        return -1;
    }
    return code;
}

apr_status_t ca_lc_may_revoke(apr_pool_t *p, const ca_lc_actor_t *a,
                              const ca_cert_row_t *row, const char **err)
{
    if (!a->admin && !(a->login && !strcmp(a->login, row->owner))
        && !(a->cert_owner && !strcmp(a->cert_owner, row->owner))) {
        *err = "this certificate belongs to someone else";
        return CA_EPOLICY;
    }
    if (strcmp(row->status, CA_STATUS_VALID)) {
        const char *rname = ca_reason_name(row->reason);
        *err = apr_psprintf(p, "certificate %s is %s since %s (reason %s)",
                            row->serial, row->status,
                            iso(p, row->revoked_at),
                            rname ? rname : "unspecified");
        return CA_ECONFLICT;
    }
    return APR_SUCCESS;
}

/* Revoke what serial authorised, for keyCompromise, depth first. */
static apr_status_t cascade(apr_pool_t *p, ca_store_t *st, const char *serial,
                            apr_int64_t now, apr_array_header_t *cascaded,
                            int depth)
{
    apr_array_header_t *children = NULL;
    apr_status_t rv;
    int i;

    if (depth > 64) {
        return APR_SUCCESS;   /* a cycle cannot exist; a bound anyway */
    }
    rv = ca_store_link_children(st, p, serial, &children);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    for (i = 0; i < children->nelts; i++) {
        const char *child = APR_ARRAY_IDX(children, i, const char *);
        ca_cert_row_t *row = NULL;
        rv = ca_store_cert_set_status(st, p, child, CA_STATUS_VALID,
                                      CA_STATUS_REVOKED, now,
                                      CA_REASON_KEY_COMPROMISE, 0, NULL,
                                      &row);
        if (rv == CA_ECONFLICT || rv == CA_ENOTFOUND) {
            rv = APR_SUCCESS;  /* revoked already: its own children were
                                  handled then, or are handled below */
        }
        else if (rv != APR_SUCCESS) {
            return rv;
        }
        else if (cascaded) {
            APR_ARRAY_PUSH(cascaded, const char *) = apr_pstrdup(p, child);
        }
        if ((rv = cascade(p, st, child, now, cascaded, depth + 1))
            != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

apr_status_t ca_lc_revoke(apr_pool_t *p, ca_store_t *st, const char *serial,
                          int reason, apr_int64_t now,
                          apr_int64_t invalidity, ca_cert_row_t **row,
                          apr_array_header_t *cascaded, const char **err)
{
    apr_status_t rv;

    *row = NULL;
    rv = ca_store_cert_set_status(st, p, serial, CA_STATUS_VALID,
                                  CA_STATUS_REVOKED, now, reason, invalidity,
                                  NULL, row);
    if (rv == CA_ECONFLICT) {
        *err = apr_psprintf(p, "certificate %s is %s", serial,
                            *row ? (*row)->status : "not valid");
        return rv;
    }
    if (rv == CA_ENOTFOUND) {
        *err = apr_psprintf(p, "no certificate with serial %s", serial);
        return rv;
    }
    if (rv != APR_SUCCESS) {
        *err = ca_store_last_error(st);
        return rv;
    }
    if (reason == CA_REASON_KEY_COMPROMISE) {
        rv = cascade(p, st, serial, now, cascaded, 0);
        if (rv != APR_SUCCESS) {
            *err = apr_psprintf(p, "certificate %s is revoked, but the "
                                "certificates it authorised could not all "
                                "be revoked: %s", serial,
                                ca_store_last_error(st));
        }
    }
    return rv;
}

/* ---- approvals ---------------------------------------------------------- */

const char *ca_lc_approval_next(const char *from, ca_lc_event_t event)
{
    if (!from) {
        return NULL;
    }
    switch (event) {
    case CA_LC_APPROVE:
        return !strcmp(from, "pending") ? "approved" : NULL;
    case CA_LC_REJECT:
        return !strcmp(from, "pending") ? "rejected" : NULL;
    case CA_LC_ISSUED:
        return !strcmp(from, "approved") ? "issued" : NULL;
    }
    return NULL;
}

/* ---- CRL ---------------------------------------------------------------- */

int ca_lc_crl_refresh_due(int have, apr_int64_t this_update,
                          apr_int64_t next_update, apr_int64_t now,
                          apr_int64_t checked_secs_ago, int refresh_secs)
{
    if (!have || now >= this_update + (next_update - this_update) / 2) {
        return 1;
    }
    return checked_secs_ago >= refresh_secs;
}

/* ---- server-made keys --------------------------------------------------- */

static const char *default_type(apr_pool_t *p, const ca_key_policy_t *kp)
{
    return kp->allow_p256 ? "ec:P-256"
           : kp->allow_p384 ? "ec:P-384"
           : kp->allow_rsa ? apr_psprintf(p, "rsa:%d", kp->rsa_min_bits > 3072
                                                           ? kp->rsa_min_bits
                                                           : 3072)
           : "ed25519";
}

const char *ca_lc_server_key_type(apr_pool_t *p, const ca_key_policy_t *kp,
                                  EVP_PKEY *requested)
{
    const char *type = NULL, *err = NULL;

    if (!requested
        || ca_key_check(p, requested, kp, &err) != APR_SUCCESS) {
        return default_type(p, kp);
    }
    switch (EVP_PKEY_get_base_id(requested)) {
    case EVP_PKEY_RSA: {
        int bits = EVP_PKEY_get_bits(requested);
        if (bits == 2048 || bits == 3072 || bits == 4096) {
            type = apr_psprintf(p, "rsa:%d", bits);
        }
        break;
    }
    case EVP_PKEY_EC: {
        char curve[64];
        size_t n = 0;
        if (EVP_PKEY_get_utf8_string_param(requested, "group", curve,
                                           sizeof(curve), &n) == 1) {
            if (!strcmp(curve, "prime256v1") || !strcmp(curve, "P-256")) {
                type = "ec:P-256";
            }
            else if (!strcmp(curve, "secp384r1")
                     || !strcmp(curve, "P-384")) {
                type = "ec:P-384";
            }
        }
        break;
    }
    case EVP_PKEY_ED25519:
        type = "ed25519";
        break;
    default:
        break;
    }
    return type ? type : default_type(p, kp);
}
