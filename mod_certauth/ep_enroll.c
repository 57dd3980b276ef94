/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ep_enroll.c: POST enroll: a PKCS#10 request from a logged-in user in, a
 * certificate out.  The subject comes from the Location's template and the
 * login, never from the CSR. */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "mod_certauth.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

/* A refusal after the request was understood: audited, then answered. */
static int refuse(request_rec *r, certauth_req *q, int status,
                  const char *error, const char *detail)
{
    certauth_audit(r, q->st, &q->who, "enroll", "",
                   "refused", detail);
    return certauth_error(r, status, error, detail);
}

int certauth_enroll(request_rec *r, certauth_req *q)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    const char *err = NULL, *detail = NULL, *accept;
    char *body = q->body;
    apr_size_t len = q->len;
    X509_REQ *req = NULL;
    X509_NAME *subject = NULL;
    apr_array_header_t *sans = NULL;
    ca_issue_req_t ireq;
    const certauth_prof_conf *pc;
    ca_profile_t *profile;
    ca_cert_row_t *row = NULL;
    ca_store_t *st;
    X509 *cert = NULL;
    apr_status_t rv;
    int status = 0;

    if (!(pc = certauth_select_profile(r, &status, &detail))) {
        return certauth_error(r, status, status == HTTP_NOT_FOUND
                                             ? "unknown profile"
                                             : "profile not allowed",
                              detail);
    }
    if (ca_csr_parse(r->pool, body, len, &req, &err) != APR_SUCCESS) {
        return certauth_error(r, HTTP_BAD_REQUEST, "malformed CSR", err);
    }
    profile = certauth_profile(r->pool, pc);
    if (ca_csr_check(r->pool, req, &profile->key_policy, &err)
        != APR_SUCCESS) {
        return refuse(r, q, HTTP_UNPROCESSABLE_ENTITY, "CSR refused", err);
    }
    if ((status = certauth_build_names(r, pc, req, &subject, &sans,
                                       &detail))) {
        return refuse(r, q, status, "CSR refused", detail);
    }
    st = q->st;

    memset(&ireq, 0, sizeof(ireq));
    ireq.profile = profile;
    ireq.subject = subject;
    ireq.sans = sans;
    ireq.pubkey = ca_csr_pubkey(r->pool, req);
    ireq.spki = X509_REQ_get_X509_PUBKEY(req);
    ireq.owner = r->user;
    certauth_issue_urls(&ireq, sc);
    /* the record is committed with the certificate (one commit) */
    ireq.audit = certauth_audit_new(r, &q->who, "enroll", "", "ok", NULL);
    rv = ca_issue(r->pool, sc->ca, st, &ireq, &cert, &row, &err);
    if (rv != APR_SUCCESS) {
        int code = certauth_status_of(rv);
        if (code == HTTP_SERVICE_UNAVAILABLE) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), r, CA_LOGNO(0402)
                          "issuing for %s: %s", r->user, err ? err : "");
            return certauth_error(r, code, "database unavailable",
                                  "the certificate could not be stored; try "
                                  "again later");
        }
        if (code == HTTP_INTERNAL_SERVER_ERROR) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), r, CA_LOGNO(0403)
                          "issuing for %s: %s", r->user, err ? err : "");
            return certauth_error(r, code, "internal error",
                                  "the certificate could not be issued");
        }
        if (code == HTTP_CONFLICT) {
            return refuse(r, q, code, "limit reached", err);
        }
        return refuse(r, q, code, "CSR refused", err);
    }

    certauth_audit_log(r, ireq.audit);
    apr_table_setn(r->headers_out, "Location",
                   apr_pstrcat(r->pool, sc->base_url, "/certs/", row->serial,
                               NULL));
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    accept = apr_table_get(r->headers_in, "Accept");
    if (accept && ap_strcasestr(accept, "application/pkix-cert")) {
        unsigned char *der = NULL;
        apr_size_t dlen = 0;
        if (ca_x509_der(r->pool, cert, &der, &dlen) == APR_SUCCESS) {
            return certauth_send(r, HTTP_CREATED, "application/pkix-cert",
                                 der, dlen);
        }
    }
    return certauth_send(r, HTTP_CREATED, "application/x-pem-file",
                         row->cert_pem, strlen(row->cert_pem));
}
