/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ep_est.c: EST (RFC 7030) below <Location /.well-known/est>: cacerts,
 * simpleenroll, simplereenroll, serverkeygen, csrattrs, each also below a
 * label (/.well-known/est/LABEL/...) that names a profile.
 *
 * What deployed EST clients rely on: Content-Length on every response (no
 * chunking), base64 in 64-character lines with Content-Transfer-Encoding:
 * base64, the media types exactly as RFC 7030 writes them, 401 with
 * WWW-Authenticate when authentication is missing (clients only send
 * credentials after a 401), and text/plain reasons for errors. */

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "mod_certauth.h"
#include "ca_crl.h"
#include "ca_est.h"
#include "ca_lifecycle.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

#define EST_PKCS7 "application/pkcs7-mime; smime-type=certs-only"
#define EST_SUFFIX "/.well-known/est"

int certauth_is_est(const certauth_dir_conf *dc)
{
    apr_size_t n = dc->location ? strlen(dc->location) : 0;
    apr_size_t k = strlen(EST_SUFFIX);
    return n >= k && !strcmp(dc->location + n - k, EST_SUFFIX);
}

int certauth_est_error(request_rec *r, int status, const char *text)
{
    const char *body = apr_pstrcat(r->pool, text, "\r\n", NULL);

    if (status == HTTP_UNAUTHORIZED) {
        if (ap_auth_type(r)) {
            ap_note_auth_failure(r);
        }
        else {
            apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                           "Basic realm=\"EST\"");
        }
    }
    if (status == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->err_headers_out, "Retry-After",
                       CERTAUTH_RETRY_AFTER);
    }
    ap_log_rerror(APLOG_MARK, status >= 500 ? APLOG_WARNING : APLOG_INFO, 0,
                  r, CA_LOGNO(1001) "EST %d: %s (user %s)", status, text,
                  r->user ? r->user : "-");
    return certauth_send(r, status, "text/plain", body, strlen(body));
}

/* A base64 body with its Content-Transfer-Encoding. */
static int send_b64(request_rec *r, const char *ctype,
                    const unsigned char *der, apr_size_t len)
{
    const char *b64 = ca_base64_encode(r->pool, der, len, 1);
    apr_table_setn(r->headers_out, "Content-Transfer-Encoding", "base64");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return certauth_send(r, HTTP_OK, ctype, b64, strlen(b64));
}

/* The request's CSR (application/pkcs10, checked by the route): base64
 * (whitespace allowed) or DER; 0 or an answered status. */
static int read_csr(request_rec *r, certauth_req *q, X509_REQ **req,
                    int *answered)
{
    const char *cte = apr_table_get(r->headers_in,
                                    "Content-Transfer-Encoding");
    const char *err = NULL;

    *answered = 1;
    if (cte && strcasecmp(cte, "base64") && strcasecmp(cte, "binary")
        && strcasecmp(cte, "7bit")) {
        return certauth_est_error(r, HTTP_BAD_REQUEST,
                                  "Content-Transfer-Encoding must be "
                                  "base64");
    }
    if (ca_csr_parse(r->pool, q->body, q->len, req, &err) != APR_SUCCESS) {
        return certauth_est_error(r, HTTP_BAD_REQUEST, err);
    }
    *answered = 0;
    return 0;
}

/* Issue for an enrollment; the answered status, with *cert set on
 * success. */
static int issue(request_rec *r, ca_store_t *st, const certauth_who *who,
                 const certauth_prof_conf *pc, X509_REQ *req, EVP_PKEY *key,
                 X509 *renewing, const char *action, X509 **cert,
                 int *answered)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    ca_profile_t *profile = certauth_profile(r->pool, pc);
    ca_issue_req_t ireq;
    ca_cert_row_t *row = NULL;
    X509_NAME *subject = NULL;
    apr_array_header_t *sans = NULL;
    const char *err = NULL, *detail = NULL;
    apr_status_t rv;
    int status;

    ca_key_policy_t any;

    *answered = 1;
    /* serverkeygen: the CSR's key is only a wish (ca_lc_server_key_type);
     * its signature is checked all the same */
    ca_key_policy_default(&any);
    if (ca_csr_check(r->pool, req, key ? &any : &profile->key_policy, &err)
        != APR_SUCCESS) {
        certauth_audit(r, st, who, action, "", "refused", err);
        return certauth_est_error(r, HTTP_BAD_REQUEST, err);
    }
    memset(&ireq, 0, sizeof(ireq));
    if (renewing) {
        ireq.subject = X509_get_subject_name(renewing);
        ireq.sans = apr_array_make(r->pool, 2, sizeof(const char *));
        ca_cert_sans(r->pool, renewing, ireq.sans);
        ca_lc_renewal_prepare(&ireq, profile, who->cert,
                              (apr_int64_t)apr_time_sec(apr_time_now()),
                              sc->supersede_grace_secs);
    }
    else {
        if ((status = certauth_build_names(r, pc, req, &subject, &sans,
                                           &detail))) {
            certauth_audit(r, st, who, action, "", "refused", detail);
            return certauth_est_error(r, status == HTTP_INTERNAL_SERVER_ERROR
                                    ? status : HTTP_BAD_REQUEST, detail);
        }
        ireq.subject = subject;
        ireq.sans = sans;
    }
    ireq.profile = profile;
    ireq.pubkey = key ? key : ca_csr_pubkey(r->pool, req);
    ireq.spki = key ? NULL : X509_REQ_get_X509_PUBKEY(req);
    if (!renewing) {
        ireq.owner = certauth_who_owner(who);
    }
    certauth_issue_urls(&ireq, sc);
    {
        const char *pname = profile->name ? profile->name : "default";
        ireq.audit = certauth_audit_new(
            r, who, action, "", "ok",
            renewing ? apr_psprintf(r->pool, "replaces %s",
                                    who->cert->serial)
            : !who->user && who->cert
                ? apr_psprintf(r->pool, "profile %s, authorised by "
                               "certificate %s", pname, who->cert->serial)
                : apr_psprintf(r->pool, "profile %s", pname));
    }
    rv = ca_issue(r->pool, sc->ca, st, &ireq, cert, &row, &err);
    if (rv == APR_SUCCESS && !renewing && !who->user && who->cert) {
        /* issued on the strength of a certificate alone: remember which,
         * so that revoking it for keyCompromise revokes this one too; a
         * certificate whose authoriser is unknown is not handed out */
        rv = ca_store_link_add(st, r->pool, row->serial, who->cert->serial);
        if (rv != APR_SUCCESS) {
            const char *e2 = NULL;
            ca_cert_row_t *gone = NULL;
            ap_log_rerror(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), r, CA_LOGNO(1202)
                          "EST %s: cannot record that %s authorised %s: %s",
                          action, who->cert->serial, row->serial,
                          ca_store_last_error(st));
            ca_lc_revoke(r->pool, st, row->serial,
                         CA_REASON_CESSATION_OF_OPERATION,
                         (apr_int64_t)apr_time_sec(apr_time_now()), 0, &gone,
                         NULL, &e2);
            err = "the certificate could not be recorded";
            rv = CA_EDB;
        }
    }
    if (rv != APR_SUCCESS) {
        int code = certauth_status_of(rv);
        certauth_audit(r, st, who, action, "", "refused", err);
        if (code == HTTP_SERVICE_UNAVAILABLE) {
            return certauth_est_error(r, code, "database unavailable; try later");
        }
        if (code == HTTP_INTERNAL_SERVER_ERROR) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), r, CA_LOGNO(1002)
                          "EST %s: %s", action, err);
            return certauth_est_error(r, code, "the certificate could not be issued");
        }
        return certauth_est_error(r, code == HTTP_CONFLICT ? HTTP_CONFLICT
                                                  : HTTP_BAD_REQUEST, err);
    }
    certauth_audit_log(r, ireq.audit);
    if (renewing && sc->supersede_grace_secs == 0) {
        certauth_crl_regenerate(r, st);
    }
    *answered = 0;
    return 0;
}

/* The key of serverkeygen: the CSR's key type and size when the profile
 * allows it, else the profile's default (ca_lc_server_key_type). */
static EVP_PKEY *server_key(request_rec *r, const ca_profile_t *profile,
                            X509_REQ *req)
{
    const char *type = ca_lc_server_key_type(r->pool, &profile->key_policy,
                                             ca_csr_pubkey(r->pool, req));
    EVP_PKEY *key = NULL;
    const char *err = NULL;

    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CA_LOGNO(1203)
                  "serverkeygen: making a %s key", type);
    if (ca_key_generate(r->pool, type, &key, &err) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(1003)
                      "serverkeygen: %s", err);
        return NULL;
    }
    return key;
}

static int serverkeygen_reply(request_rec *r, EVP_PKEY *key, X509 *cert)
{
    unsigned char *kder = NULL, *cder = NULL, rnd[12];
    apr_size_t klen = 0, clen = 0, i;
    char boundary[40];
    char *body;
    const char *kb64;
    int rc;

    if (ca_pkcs8_der(r->pool, key, &kder, &klen) != APR_SUCCESS
        || ca_pkcs7_certs(r->pool, cert, NULL, &cder, &clen) != APR_SUCCESS
        || RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return certauth_est_error(r, HTTP_INTERNAL_SERVER_ERROR,
                         "the response cannot be made");
    }
    strcpy(boundary, "est-");
    for (i = 0; i < sizeof(rnd); i++) {
        apr_snprintf(boundary + 4 + 2 * i, 3, "%02x", rnd[i]);
    }
    kb64 = ca_base64_encode(r->pool, kder, klen, 1);
    OPENSSL_cleanse(kder, klen);
    body = apr_pstrcat(r->pool,
                       "--", boundary, "\r\n",
                       "Content-Type: application/pkcs8\r\n",
                       "Content-Transfer-Encoding: base64\r\n\r\n", kb64,
                       "--", boundary, "\r\n",
                       "Content-Type: " EST_PKCS7 "\r\n",
                       "Content-Transfer-Encoding: base64\r\n\r\n",
                       ca_base64_encode(r->pool, cder, clen, 1),
                       "--", boundary, "--\r\n", NULL);
    OPENSSL_cleanse((void *)kb64, strlen(kb64));
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    rc = certauth_send(r, HTTP_OK,
                       apr_psprintf(r->pool, "multipart/mixed; boundary=%s",
                                    boundary), body, strlen(body));
    OPENSSL_cleanse(body, strlen(body));
    return rc;
}

/* Manual approval: the first request is stored pending (202 with
 * Retry-After); the client retries with the same CSR; once an administrator
 * approved it the retry gets the certificate (issued once, then the same
 * certificate again), once rejected 403. */
static int approval(request_rec *r, ca_store_t *st, const certauth_who *who,
                    const certauth_prof_conf *pc, X509_REQ *req)
{
    const char *owner = certauth_who_owner(who);
    const char *pname = pc->name ? pc->name : "default";
    unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
    unsigned int mdlen = 0, i;
    char *hash;
    ca_pending_t *pend = NULL;
    X509 *cert = NULL;
    apr_status_t rv;
    int answered = 0, status;

    if (!X509_REQ_digest(req, EVP_sha256(), md, &mdlen)) {
        return certauth_est_error(r, HTTP_INTERNAL_SERVER_ERROR, "cannot hash the CSR");
    }
    hash = apr_palloc(r->pool, mdlen * 2 + 1);
    for (i = 0; i < mdlen; i++) {
        apr_snprintf(hash + 2 * i, 3, "%02x", md[i]);
    }
    rv = ca_store_pending_find(st, r->pool, hash, owner, pname, &pend);
    if (rv == CA_ENOTFOUND) {
        ca_profile_t *profile = certauth_profile(r->pool, pc);
        const char *err = NULL;
        BIO *bio;
        char *data;
        long len;

        /* refuse now what could never be issued */
        if (ca_csr_check(r->pool, req, &profile->key_policy, &err)
            != APR_SUCCESS) {
            return certauth_est_error(r, HTTP_BAD_REQUEST, err);
        }
        bio = BIO_new(BIO_s_mem());
        if (!bio || !PEM_write_bio_X509_REQ(bio, req)) {
            BIO_free(bio);
            return certauth_est_error(r, HTTP_INTERNAL_SERVER_ERROR,
                             "cannot store the request");
        }
        len = BIO_get_mem_data(bio, &data);
        pend = apr_pcalloc(r->pool, sizeof(*pend));
        pend->csr_hash = hash;
        pend->owner = owner;
        pend->profile = pname;
        pend->subject = ca_x509_name_str(r->pool,
                                         X509_REQ_get_subject_name(req));
        pend->csr_pem = apr_pstrmemdup(r->pool, data, (apr_size_t)len);
        BIO_free(bio);
        pend->status = "pending";
        pend->created_at = (apr_int64_t)apr_time_sec(apr_time_now());
        rv = ca_store_pending_add(st, r->pool, pend);
        if (rv != APR_SUCCESS) {
            return certauth_est_error(r, HTTP_SERVICE_UNAVAILABLE,
                             "database unavailable; try later");
        }
        certauth_audit(r, st, who, "request", "", "pending",
                       apr_psprintf(r->pool, "request %s, profile %s",
                                    pend->id, pname));
    }
    else if (rv != APR_SUCCESS) {
        return certauth_est_error(r, HTTP_SERVICE_UNAVAILABLE,
                         "database unavailable; try later");
    }

    if (!strcmp(pend->status, "pending")) {
        const char *body = apr_psprintf(r->pool, "request %s is waiting for "
                                        "an administrator's approval\r\n",
                                        pend->id);
        apr_table_setn(r->headers_out, "Retry-After", "60");
        return certauth_send(r, HTTP_ACCEPTED, "text/plain", body,
                             strlen(body));
    }
    if (!strcmp(pend->status, "rejected")) {
        return certauth_est_error(r, HTTP_FORBIDDEN,
                         apr_psprintf(r->pool, "request %s was rejected by "
                                      "%s", pend->id, pend->decided_by));
    }
    if (!strcmp(pend->status, "issued")) {
        ca_cert_row_t *row = NULL;
        BIO *bio;
        if (ca_store_cert_get(st, r->pool, pend->serial, &row)
            != APR_SUCCESS) {
            return certauth_est_error(r, HTTP_SERVICE_UNAVAILABLE,
                             "database unavailable; try later");
        }
        bio = BIO_new_mem_buf(row->cert_pem, -1);
        cert = bio ? ca_pool_x509(r->pool, PEM_read_bio_X509(bio, NULL, NULL,
                                                              NULL)) : NULL;
        BIO_free(bio);
        if (!cert) {
            return certauth_est_error(r, HTTP_INTERNAL_SERVER_ERROR,
                             "the stored certificate cannot be read");
        }
    }
    else {
        /* approved: issue it now, once */
        status = issue(r, st, who, pc, req, NULL, NULL, "enroll", &cert,
                       &answered);
        if (answered) {
            return status;
        }
        ca_store_pending_set(st, r->pool, pend->id, "approved",
                             ca_lc_approval_next("approved", CA_LC_ISSUED),
                             pend->decided_by, pend->decided_at,
                             ca_serial_hex(r->pool,
                                           X509_get0_serialNumber(cert)));
    }
    {
        apr_size_t len;
        if (ca_pkcs7_certs(r->pool, cert, NULL, &der, &len) != APR_SUCCESS) {
            return certauth_est_error(r, HTTP_INTERNAL_SERVER_ERROR,
                             "cannot encode the certificate");
        }
        return send_b64(r, EST_PKCS7, der, len);
    }
}

int certauth_est(request_rec *r, certauth_req *q)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    const char *op = q->op, *label = q->label;
    const certauth_prof_conf *pc;
    const char *detail = NULL, *err = NULL;
    certauth_who who = q->who;
    ca_store_t *st = q->st;
    X509_REQ *req = NULL;
    X509 *cert = NULL, *old = NULL;
    EVP_PKEY *key = NULL;
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    int status = 0, pstatus = 0, answered = 0;

    /* public: a label names a profile; its CertAuthRequire is about who
     * may enroll, not who may read the CA certificates or the attributes */
    if (!strcmp(op, "cacerts") || !strcmp(op, "csrattrs")) {
        unsigned char *der;
        apr_size_t len;
        ca_profile_t *prof;

        if (!(pc = certauth_profile_find(r, label))) {
            return certauth_est_error(r, HTTP_NOT_FOUND,
                                      apr_psprintf(r->pool, "no EST label "
                                                   "'%s'", label ? label
                                                                 : ""));
        }
        if (!strcmp(op, "cacerts")) {
            if (ca_pkcs7_ca_chain(r->pool, sc->ca, &der, &len)
                != APR_SUCCESS) {
                return certauth_est_error(r, HTTP_INTERNAL_SERVER_ERROR,
                                          "cannot encode the CA "
                                          "certificates");
            }
            return send_b64(r, "application/pkcs7-mime", der, len);
        }
        prof = certauth_profile(r->pool, pc);
        if (ca_csrattrs(r->pool, &prof->key_policy, pc->san_allow != NULL,
                        &der, &len) != APR_SUCCESS) {
            return certauth_est_error(r, HTTP_INTERNAL_SERVER_ERROR,
                                      "cannot encode the CSR attributes");
        }
        if (len <= 2) {
            r->status = HTTP_NO_CONTENT;
            ap_set_content_length(r, 0);
            return OK;
        }
        return send_b64(r, "application/csrattrs", der, len);
    }

    /* the enrolling operations: the caller is settled (certauth_dispatch,
     * REMOTE_USER is the certificate's owner when no login came), so the
     * label's CertAuthRequire sees who asks */
    pc = certauth_profile_named(r, label, &pstatus, &detail);
    if (!pc) {
        certauth_audit(r, st, &who, q->route->action, "", "refused", detail);
        return certauth_est_error(r, pstatus, pstatus == HTTP_NOT_FOUND
                                  ? apr_psprintf(r->pool, "no EST label '%s'",
                                                 label ? label : "")
                                  : detail);
    }
    if (strcmp(op, "simplereenroll") && !who.user && who.cert
        && pc->enroll_by_cert != 1) {
        detail = apr_psprintf(r->pool, "a client certificate alone may not "
                              "obtain another certificate of profile %s "
                              "(CertAuthEnrollWithCertificate); "
                              "authenticate with a password, or renew with "
                              "simplereenroll", pc->name ? pc->name
                                                         : "default");
        certauth_audit(r, st, &who, q->route->action, "", "refused", detail);
        return certauth_est_error(r, HTTP_FORBIDDEN, detail);
    }
    if (read_csr(r, q, &req, &answered), answered) {
        return OK;
    }

    if (!strcmp(op, "simplereenroll")) {
        const certauth_prof_conf *opc;
        ca_profile_t *oprof;
        BIO *bio = BIO_new_mem_buf(who.cert->cert_pem, -1);
        const char *why = NULL;
        apr_status_t rv;

        old = bio ? ca_pool_x509(r->pool, PEM_read_bio_X509(bio, NULL, NULL,
                                                             NULL)) : NULL;
        BIO_free(bio);
        if (!old) {
            return certauth_est_error(r, HTTP_INTERNAL_SERVER_ERROR,
                                      "the stored certificate cannot be "
                                      "read");
        }
        if (!ca_csr_same_names(r->pool, req, old, &why)) {
            certauth_audit(r, st, &who, "reenroll", who.cert->serial,
                           "refused", why);
            return certauth_est_error(r, HTTP_BAD_REQUEST, why);
        }
        opc = certauth_profile_of_cert(r, who.cert->profile);
        if (!opc) {
            return certauth_est_error(r, HTTP_CONFLICT,
                                      apr_psprintf(r->pool, "profile %s is "
                                                   "no longer configured; "
                                                   "enroll again",
                                                   who.cert->profile));
        }
        oprof = certauth_profile(r->pool, opc);
        rv = ca_lc_renewal_check(r->pool, who.cert,
                                 oprof->renewal_window_days, now, &err);
        if (rv != APR_SUCCESS) {
            certauth_audit(r, st, &who, "reenroll", who.cert->serial,
                           "refused", err);
            return certauth_est_error(r, rv == CA_EPOLICY ? HTTP_FORBIDDEN
                                                          : HTTP_CONFLICT,
                                      err);
        }
        pc = opc;
        status = issue(r, st, &who, pc, req, NULL, old, "reenroll", &cert,
                       &answered);
    }
    else if (!strcmp(op, "serverkeygen")) {
        ca_profile_t *prof = certauth_profile(r->pool, pc);
        X509_NAME *subj = NULL;
        apr_array_header_t *sans = NULL;
        apr_status_t rv;

        /* the names and the limits first: no key is made for a request
         * refused anyway */
        if ((status = certauth_build_names(r, pc, req, &subj, &sans,
                                           &detail))) {
            certauth_audit(r, st, &who, "serverkeygen", "", "refused",
                           detail);
            return certauth_est_error(r, status == HTTP_INTERNAL_SERVER_ERROR
                                             ? status : HTTP_BAD_REQUEST,
                                      detail);
        }
        rv = ca_lc_limits_check(r->pool, st, prof, certauth_who_owner(&who),
                                ca_x509_name_str(r->pool, subj), now, &err);
        if (rv != APR_SUCCESS) {
            certauth_audit(r, st, &who, "serverkeygen", "", "refused",
                           rv == CA_ECONFLICT ? err
                                              : ca_store_last_error(st));
            return certauth_est_error(r, rv == CA_ECONFLICT
                                             ? HTTP_CONFLICT
                                             : HTTP_SERVICE_UNAVAILABLE,
                                      rv == CA_ECONFLICT
                                          ? err
                                          : "database unavailable; try "
                                            "later");
        }
        if (!(key = server_key(r, prof, req))) {
            return certauth_est_error(r, HTTP_INTERNAL_SERVER_ERROR,
                                      "cannot generate a key");
        }
        status = issue(r, st, &who, pc, req, key, NULL, "serverkeygen",
                       &cert, &answered);
    }
    else if (pc->approval == 1) {
        return approval(r, st, &who, pc, req);
    }
    else {
        status = issue(r, st, &who, pc, req, NULL, NULL, "enroll", &cert,
                       &answered);
    }
    if (answered) {
        return status;
    }
    if (key) {
        return serverkeygen_reply(r, key, cert);
    }
    {
        unsigned char *der;
        apr_size_t len;
        if (ca_pkcs7_certs(r->pool, cert, NULL, &der, &len) != APR_SUCCESS) {
            return certauth_est_error(r, HTTP_INTERNAL_SERVER_ERROR,
                                      "cannot encode the certificate");
        }
        return send_b64(r, EST_PKCS7, der, len);
    }
}
