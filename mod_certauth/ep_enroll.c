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

/* The media type without parameters, lower-cased; "" when absent. */
static const char *media_type(request_rec *r)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    char *m, *semi;

    if (!ct) {
        return "";
    }
    m = apr_pstrdup(r->pool, ct);
    if ((semi = strchr(m, ';'))) {
        *semi = '\0';
    }
    apr_collapse_spaces(m, m);
    ap_str_tolower(m);
    return m;
}

static int csr_media_type_ok(const char *m)
{
    return !strcmp(m, "application/pkcs10")
           || !strcmp(m, "application/x-pem-file")
           || !strcmp(m, "application/octet-stream")
           || !strcmp(m, "text/plain");
}

/* A refusal after the request was understood: audited, then answered. */
static int refuse(request_rec *r, int status, const char *error,
                  const char *detail)
{
    certauth_audit(r, certauth_store_quiet(r), NULL, "enroll", "",
                   "refused", detail);
    return certauth_error(r, status, error, detail);
}

int certauth_enroll(request_rec *r)
{
    const certauth_dir_conf *dc = certauth_dir(r);
    const certauth_srv_conf *sc = certauth_srv(r->server);
    const char *mtype, *err = NULL, *detail = NULL, *accept;
    char *body;
    apr_size_t len;
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

    if (r->method_number != M_POST) {
        ap_discard_request_body(r);
        r->allowed = (AP_METHOD_BIT << M_POST);
        apr_table_setn(r->err_headers_out, "Allow", "POST");
        return certauth_error(r, HTTP_METHOD_NOT_ALLOWED,
                              "method not allowed",
                              "POST a PKCS#10 request (application/pkcs10)");
    }
    if (!r->user) {
        ap_discard_request_body(r);
        return certauth_error(r, HTTP_UNAUTHORIZED, "login required",
                              "enrollment needs the site's login");
    }
    mtype = media_type(r);
    if (!csr_media_type_ok(mtype)) {
        ap_discard_request_body(r);
        return certauth_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE,
                              "unsupported content type",
                              apr_psprintf(r->pool, "'%s': send the CSR as "
                                           "application/pkcs10 (PEM, DER or "
                                           "base64 DER)",
                                           *mtype ? mtype : "(none)"));
    }
    if (certauth_check_csrf(r, mtype)) {
        ap_discard_request_body(r);
        return certauth_error(r, HTTP_FORBIDDEN, "cross-site request refused",
                              "a text/plain POST needs an X-Requested-With "
                              "header");
    }
    status = certauth_read_body(r, dc, &body, &len);
    if (status == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        return certauth_error(r, status, "request too large",
                              apr_psprintf(r->pool, "at most %" APR_OFF_T_FMT
                                           " bytes",
                                           certauth_dir_max_body(dc)));
    }
    if (status) {
        return certauth_error(r, status, "bad request",
                              "the request body cannot be read");
    }
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
        return refuse(r, HTTP_UNPROCESSABLE_ENTITY, "CSR refused", err);
    }
    if ((status = certauth_build_names(r, pc, req, &subject, &sans,
                                       &detail))) {
        return refuse(r, status, "CSR refused", detail);
    }
    if (!(st = certauth_store(r, &status))) {
        return status;
    }

    memset(&ireq, 0, sizeof(ireq));
    ireq.profile = profile;
    ireq.subject = subject;
    ireq.sans = sans;
    ireq.pubkey = ca_csr_pubkey(r->pool, req);
    ireq.spki = X509_REQ_get_X509_PUBKEY(req);
    ireq.owner = r->user;
    ireq.base_url = sc->base_url;
    /* the record is committed with the certificate (one commit) */
    ireq.audit = certauth_audit_new(r, NULL, "enroll", "", "ok", NULL);
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
            return refuse(r, code, "limit reached", err);
        }
        return refuse(r, code, "CSR refused", err);
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
