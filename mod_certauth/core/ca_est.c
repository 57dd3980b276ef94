/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_est.c: PKCS#7 certs-only, CSR attributes, PKCS#8 for EST. */

#include <string.h>

#include <apr_strings.h>
#include <openssl/asn1.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "ca_est.h"
#include "ca_log.h"
#include "ca_subject.h"
#include "ca_util.h"

static apr_status_t pkcs7_der(apr_pool_t *p, PKCS7 *p7, unsigned char **der,
                              apr_size_t *len)
{
    int n = i2d_PKCS7(p7, NULL);
    unsigned char *buf, *q;

    if (n <= 0) {
        return CA_ECRYPTO;
    }
    buf = q = apr_palloc(p, (apr_size_t)n);
    if (i2d_PKCS7(p7, &q) != n) {
        return CA_ECRYPTO;
    }
    *der = buf;
    *len = (apr_size_t)n;
    return APR_SUCCESS;
}

apr_status_t ca_pkcs7_certs(apr_pool_t *p, X509 *first, STACK_OF(X509) *more,
                            unsigned char **der, apr_size_t *len)
{
    PKCS7 *p7 = PKCS7_new();
    apr_status_t rv = CA_ECRYPTO;
    int i;

    if (!p7 || !PKCS7_set_type(p7, NID_pkcs7_signed)
        || !PKCS7_content_new(p7, NID_pkcs7_data)) {
        goto leave;
    }
    if (first && !PKCS7_add_certificate(p7, first)) {
        goto leave;
    }
    for (i = 0; more && i < sk_X509_num(more); i++) {
        if (!PKCS7_add_certificate(p7, sk_X509_value(more, i))) {
            goto leave;
        }
    }
    rv = pkcs7_der(p, p7, der, len);
leave:
    PKCS7_free(p7);
    ERR_clear_error();
    return rv;
}

apr_status_t ca_pkcs7_ca_chain(apr_pool_t *p, const ca_t *ca,
                               unsigned char **der, apr_size_t *len)
{
    /* after a rollover also the previous CA and the link certificates
     * (RFC 7030 4.1.3: the Root CA Key Update certificates) */
    return ca_pkcs7_certs(p, ca->cert, ca->publish ? ca->publish : ca->chain,
                          der, len);
}

apr_status_t ca_csrattrs(apr_pool_t *p, const ca_key_policy_t *pol,
                         int wants_san, unsigned char **der, apr_size_t *len)
{
    /* OpenSSL's ASN1_generate_nconf builds the DER from a description. */
    const char *items = "";
    const char *sections = "";
    CONF *conf = NULL;
    BIO *bio = NULL;
    ASN1_TYPE *t = NULL;
    unsigned char *buf, *q;
    apr_status_t rv = CA_ECRYPTO;
    int n = 0, k, only_ed25519;
    long eline = 0;

    only_ed25519 = pol->allow_ed25519 && !pol->allow_rsa && !pol->allow_p256
                   && !pol->allow_p384;
    if (!only_ed25519) {
        items = apr_psprintf(p, "%sa%d = OID:%s\n", items, n++,
                             pol->allow_p384 && !pol->allow_p256
                                 ? "ecdsa-with-SHA384" : "ecdsa-with-SHA256");
    }
    if (pol->allow_p256 || pol->allow_p384) {
        items = apr_psprintf(p, "%sa%d = SEQUENCE:ec\n", items, n++);
        sections = apr_pstrcat(p, sections,
                               "[ec]\ntype = OID:id-ecPublicKey\n"
                               "curves = SET:curves\n[curves]\n",
                               pol->allow_p256 ? "c1 = OID:prime256v1\n" : "",
                               pol->allow_p384 ? "c2 = OID:secp384r1\n" : "",
                               NULL);
    }
    if (pol->allow_rsa) {
        items = apr_psprintf(p, "%sa%d = OID:rsaEncryption\n", items, n++);
    }
    if (pol->allow_ed25519) {
        items = apr_psprintf(p, "%sa%d = OID:ED25519\n", items, n++);
    }
    if (wants_san) {
        items = apr_psprintf(p, "%sa%d = SEQUENCE:extreq\n", items, n++);
        sections = apr_pstrcat(p, sections,
                               "[extreq]\ntype = OID:extReq\n"
                               "vals = SET:extoids\n[extoids]\n"
                               "o1 = OID:subjectAltName\n", NULL);
    }
    if (n == 0) {
        items = "";
    }
    bio = BIO_new_mem_buf(apr_pstrcat(p, "[attrs]\n", items, sections, NULL),
                          -1);
    conf = NCONF_new(NULL);
    if (!bio || !conf || NCONF_load_bio(conf, bio, &eline) <= 0) {
        ca_log(CA_LOG_MARK, CA_LOG_ERR, 0, p, "csrattrs: %s",
               ca_log_ssl_errors(p));
        goto leave;
    }
    t = ASN1_generate_nconf("SEQUENCE:attrs", conf);
    if (!t) {
        ca_log(CA_LOG_MARK, CA_LOG_ERR, 0, p, "csrattrs: %s",
               ca_log_ssl_errors(p));
        goto leave;
    }
    /* the DER of the SEQUENCE itself */
    k = i2d_ASN1_TYPE(t, NULL);
    if (k <= 0) {
        goto leave;
    }
    buf = q = apr_palloc(p, (apr_size_t)k);
    if (i2d_ASN1_TYPE(t, &q) != k) {
        goto leave;
    }
    *der = buf;
    *len = (apr_size_t)k;
    rv = APR_SUCCESS;
leave:
    ASN1_TYPE_free(t);
    NCONF_free(conf);
    BIO_free(bio);
    ERR_clear_error();
    return rv;
}

apr_status_t ca_pkcs8_der(apr_pool_t *p, EVP_PKEY *key, unsigned char **der,
                          apr_size_t *len)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    unsigned char *buf, *q;
    int n;

    if (!p8) {
        ERR_clear_error();
        return CA_ECRYPTO;
    }
    n = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL);
    if (n <= 0) {
        PKCS8_PRIV_KEY_INFO_free(p8);
        return CA_ECRYPTO;
    }
    buf = q = apr_palloc(p, (apr_size_t)n);
    i2d_PKCS8_PRIV_KEY_INFO(p8, &q);
    PKCS8_PRIV_KEY_INFO_free(p8);
    *der = buf;
    *len = (apr_size_t)n;
    return APR_SUCCESS;
}

static int same_sans(apr_pool_t *p, apr_array_header_t *a,
                     apr_array_header_t *b)
{
    int i, j;

    if (a->nelts != b->nelts) {
        return 0;
    }
    for (i = 0; i < a->nelts; i++) {
        const char *x = APR_ARRAY_IDX(a, i, const char *);
        int found = 0;
        for (j = 0; j < b->nelts && !found; j++) {
            found = !strcasecmp(x, APR_ARRAY_IDX(b, j, const char *));
        }
        if (!found) {
            return 0;
        }
    }
    (void)p;
    return 1;
}

int ca_csr_same_names(apr_pool_t *p, X509_REQ *req, X509 *cert,
                      const char **why)
{
    apr_array_header_t *want = apr_array_make(p, 2, sizeof(const char *));
    apr_array_header_t *have = apr_array_make(p, 2, sizeof(const char *));
    apr_array_header_t *allow = apr_array_make(p, 4, sizeof(ca_san_allow_t));
    const char *err = NULL;
    ca_san_allow_t *a;
    static const int types[] = {GEN_DNS, GEN_EMAIL, GEN_URI, GEN_IPADD};
    int i;

    if (X509_NAME_cmp(X509_REQ_get_subject_name(req),
                      X509_get_subject_name(cert)) != 0) {
        *why = apr_psprintf(p, "the CSR's subject %s is not the "
                            "certificate's %s",
                            ca_x509_name_str(p, X509_REQ_get_subject_name(
                                                    req)),
                            ca_x509_name_str(p,
                                             X509_get_subject_name(cert)));
        return 0;
    }
    /* every name of the CSR, as text */
    for (i = 0; i < 4; i++) {
        a = apr_array_push(allow);
        a->type = types[i];
        a->pattern = "*";
    }
    if (ca_csr_sans(p, req, allow, want, &err) != APR_SUCCESS) {
        *why = err;
        return 0;
    }
    ca_cert_sans(p, cert, have);
    if (!same_sans(p, want, have)) {
        *why = "the CSR's subjectAltNames are not the certificate's";
        return 0;
    }
    return 1;
}
