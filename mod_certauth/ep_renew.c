/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ep_renew.c: POST renew, authenticated by the client certificate being
 * renewed: a new certificate with the same subject, subjectAltNames, owner
 * and profile and a new validity; with a CSR body for the CSR's new key
 * (rekey), without one for the same key (the how-to's "re-sign").  The old
 * certificate is superseded in the same transaction. */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mod_certauth.h"
#include "ca_lifecycle.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

int certauth_renew(request_rec *r, certauth_req *q)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    const certauth_prof_conf *pc;
    ca_profile_t *profile;
    ca_issue_req_t ireq;
    certauth_who who = q->who;
    ca_cert_row_t *row = NULL;
    X509 *old = NULL, *cert = NULL;
    X509_REQ *req = NULL;
    ca_store_t *st;
    const char *err = NULL;
    char *body = q->body;
    apr_size_t len = q->len;
    BIO *bio;
    apr_status_t rv;

    st = q->st;
    row = who.cert;
    pc = certauth_profile_of_cert(r, row->profile);
    if (!pc) {
        certauth_audit(r, st, &who, "renew", row->serial, "refused",
                       "profile gone");
        return certauth_error(r, HTTP_CONFLICT, "profile gone",
                              apr_psprintf(r->pool, "profile %s is no longer "
                                           "configured; enroll again",
                                           row->profile));
    }
    profile = certauth_profile(r->pool, pc);
    rv = ca_lc_renewal_check(r->pool, row, profile->renewal_window_days,
                             now, &err);
    if (rv != APR_SUCCESS) {
        certauth_audit(r, st, &who, "renew", row->serial, "refused",
                       rv == CA_EPOLICY ? "before the renewal window" : err);
        return certauth_error(r, rv == CA_EPOLICY ? HTTP_FORBIDDEN
                                                  : HTTP_CONFLICT,
                              rv == CA_EPOLICY ? "too early"
                                               : "not renewable", err);
    }
    bio = BIO_new_mem_buf(row->cert_pem, -1);
    old = bio ? ca_pool_x509(r->pool, PEM_read_bio_X509(bio, NULL, NULL,
                                                         NULL)) : NULL;
    BIO_free(bio);
    if (!old) {
        return certauth_error(r, HTTP_INTERNAL_SERVER_ERROR, "internal error",
                              "the stored certificate cannot be read");
    }
    memset(&ireq, 0, sizeof(ireq));
    if (len > 0) {
        if (ca_csr_parse(r->pool, body, len, &req, &err) != APR_SUCCESS) {
            return certauth_error(r, HTTP_BAD_REQUEST, "malformed CSR", err);
        }
        if (ca_csr_check(r->pool, req, &profile->key_policy, &err)
            != APR_SUCCESS) {
            return certauth_error(r, HTTP_UNPROCESSABLE_ENTITY, "CSR refused",
                                  err);
        }
        ireq.pubkey = ca_csr_pubkey(r->pool, req);
        ireq.spki = X509_REQ_get_X509_PUBKEY(req);
    }
    else {
        ireq.pubkey = X509_get0_pubkey(old);
        ireq.spki = X509_get_X509_PUBKEY(old);
    }
    ireq.profile = profile;
    ireq.subject = X509_get_subject_name(old);
    ireq.sans = apr_array_make(r->pool, 2, sizeof(const char *));
    ca_cert_sans(r->pool, old, ireq.sans);
    certauth_issue_urls(&ireq, sc);
    ca_lc_renewal_prepare(&ireq, profile, row, now,
                          sc->supersede_grace_secs);

    ireq.audit = certauth_audit_new(r, &who, "renew", "", "ok",
                                    apr_psprintf(r->pool, "replaces %s%s",
                                                 who.cert->serial,
                                                 len ? ", new key"
                                                     : ", same key"));
    rv = ca_issue(r->pool, sc->ca, st, &ireq, &cert, &row, &err);
    if (rv != APR_SUCCESS) {
        int code = certauth_status_of(rv);
        certauth_audit(r, st, &who, "renew", who.cert->serial, "refused",
                       err);
        if (code == HTTP_SERVICE_UNAVAILABLE) {
            return certauth_error(r, code, "database unavailable",
                                  "try again later");
        }
        if (code == HTTP_INTERNAL_SERVER_ERROR) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), r, CA_LOGNO(0901)
                          "renewing %s: %s", who.cert->serial, err);
            return certauth_error(r, code, "internal error",
                                  "the certificate could not be renewed");
        }
        return certauth_error(r, code, code == HTTP_CONFLICT
                                           ? "not renewable" : "CSR refused",
                              err);
    }
    certauth_audit_log(r, ireq.audit);
    if (sc->supersede_grace_secs == 0) {
        certauth_crl_regenerate(r, st);
    }
    apr_table_setn(r->headers_out, "Location",
                   apr_pstrcat(r->pool, sc->base_url, "/certs/", row->serial,
                               NULL));
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    {
        const char *accept = apr_table_get(r->headers_in, "Accept");
        unsigned char *der = NULL;
        apr_size_t dlen = 0;
        if (accept && ap_strcasestr(accept, "application/pkix-cert")
            && ca_x509_der(r->pool, cert, &der, &dlen) == APR_SUCCESS) {
            return certauth_send(r, HTTP_CREATED, "application/pkix-cert",
                                 der, dlen);
        }
    }
    return certauth_send(r, HTTP_CREATED, "application/x-pem-file",
                         row->cert_pem, strlen(row->cert_pem));
}
