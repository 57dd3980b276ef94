/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ep_publish.c: GET cacert.crt, cacert.pem, certs/{serial}[.pem]. */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <openssl/pem.h>

#include "mod_certauth.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

int certauth_publish_cacert(request_rec *r, int pem)
{
    const ca_t *ca = certauth_srv(r->server)->ca;

    apr_table_setn(r->headers_out, "Cache-Control", "max-age=3600");
    if (pem) {
        /* after a rollover: the previous CA and the link certificates too */
        const char *text = ca->publish_pem ? ca->publish_pem : ca->cert_pem;
        return certauth_send(r, HTTP_OK, "application/x-pem-file", text,
                             strlen(text));
    }
    return certauth_send(r, HTTP_OK, "application/x-x509-ca-cert",
                         ca->cert_der, ca->cert_der_len);
}

int certauth_publish_cacert_named(request_rec *r, const char *tail)
{
    const ca_t *ca = certauth_srv(r->server)->ca;
    apr_size_t n = strlen(tail);
    int pem = n > 4 && !strcmp(tail + n - 4, ".pem");
    const char *kid;
    X509 *x;
    unsigned char *der = NULL;
    apr_size_t len = 0;

    if (!pem && !(n > 4 && !strcmp(tail + n - 4, ".crt"))) {
        return certauth_error(r, HTTP_NOT_FOUND, "not found",
                              "cacert/KEYID.crt (DER) or cacert/KEYID.pem");
    }
    kid = apr_pstrmemdup(r->pool, tail, n - 4);
    if (!(x = ca_generation(ca, r->pool, kid))) {
        return certauth_error(r, HTTP_NOT_FOUND, "not found",
                              "no CA of this server has this key "
                              "identifier");
    }
    apr_table_setn(r->headers_out, "Cache-Control", "max-age=3600");
    if (pem) {
        const char *text = ca_x509_pem(r->pool, x);
        return certauth_send(r, HTTP_OK, "application/x-pem-file", text,
                             strlen(text));
    }
    if (ca_x509_der(r->pool, x, &der, &len) != APR_SUCCESS) {
        return certauth_error(r, HTTP_INTERNAL_SERVER_ERROR,
                              "internal error", "cannot encode");
    }
    /* RFC 5280 4.2.2.1: caIssuers over HTTP is a DER certificate of
     * RFC 2585's application/pkix-cert */
    return certauth_send(r, HTTP_OK, "application/pkix-cert", der, len);
}

int certauth_publish_cert(request_rec *r, const char *serial_part)
{
    const char *serial = NULL, *given = serial_part;
    apr_size_t n = strlen(serial_part);
    int pem = 0, status = 0;
    ca_cert_row_t *row = NULL;
    ca_store_t *st;
    apr_status_t rv;

    if (n > 4 && !strcmp(serial_part + n - 4, ".pem")) {
        pem = 1;
        given = apr_pstrndup(r->pool, serial_part, n - 4);
    }
    if (ca_serial_normalize(r->pool, given, &serial) != APR_SUCCESS) {
        return certauth_error(r, HTTP_BAD_REQUEST, "bad serial",
                              "a serial is 1 to 20 bytes in hexadecimal, "
                              "e.g. 5A3F...");
    }
    if (!(st = certauth_store(r, &status))) {
        return status;
    }
    rv = ca_store_cert_get(st, r->pool, serial, &row);
    if (rv == CA_ENOTFOUND) {
        return certauth_error(r, HTTP_NOT_FOUND, "not found",
                              apr_psprintf(r->pool, "no certificate with "
                                           "serial %s", serial));
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), r, CA_LOGNO(0301)
                      "looking up serial %s: %s", serial,
                      ca_store_last_error(st));
        return certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "database unavailable", "try again later");
    }
    if (pem) {
        return certauth_send(r, HTTP_OK, "application/x-pem-file",
                             row->cert_pem, strlen(row->cert_pem));
    }
    else {
        BIO *bio = BIO_new_mem_buf(row->cert_pem, -1);
        X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        unsigned char *der = NULL;
        apr_size_t len = 0;

        BIO_free(bio);
        if (!x || ca_x509_der(r->pool, ca_pool_x509(r->pool, x), &der, &len)
                      != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(0302)
                          "stored certificate %s cannot be decoded", serial);
            return certauth_error(r, HTTP_INTERNAL_SERVER_ERROR,
                                  "internal error",
                                  "stored certificate cannot be decoded");
        }
        return certauth_send(r, HTTP_OK, "application/pkix-cert", der, len);
    }
}
