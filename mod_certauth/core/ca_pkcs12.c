/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_pkcs12.c: PKCS#12 files made with OpenSSL's PKCS12_create. */

#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>
#include <openssl/err.h>
#include <openssl/pkcs12.h>

#include "ca_log.h"
#include "ca_pkcs12.h"
#include "ca_util.h"

/* One entry of a name as UTF-8, or NULL. */
static const char *name_entry(apr_pool_t *p, const X509_NAME *name, int nid)
{
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    unsigned char *utf8 = NULL;
    const char *out;
    int n;

    if (i < 0) {
        return NULL;
    }
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(
                                       X509_NAME_get_entry(name, i)));
    if (n < 0) {
        return NULL;
    }
    out = apr_pstrmemdup(p, (const char *)utf8, (apr_size_t)n);
    OPENSSL_free(utf8);
    return out;
}

const char *ca_pkcs12_friendly_name(apr_pool_t *p, X509 *cert, X509 *ca_cert)
{
    const char *cn = name_entry(p, X509_get_subject_name(cert), NID_commonName);
    const char *ca = ca_cert ? name_entry(p, X509_get_subject_name(ca_cert),
                                          NID_commonName) : NULL;
    const char *serial = ca_serial_hex(p, X509_get0_serialNumber(cert));
    char until[16] = "";
    apr_time_exp_t tm;
    apr_size_t n;

    if (!ca && ca_cert) {
        ca = name_entry(p, X509_get_subject_name(ca_cert),
                        NID_organizationName);
    }
    if (apr_time_exp_gmt(&tm, apr_time_from_sec(ca_asn1_time_to_epoch(
                                  X509_get0_notAfter(cert)))) == APR_SUCCESS) {
        apr_strftime(until, &n, sizeof(until), "%Y-%m-%d", &tm);
    }
    return apr_psprintf(p, "%s (%s, until %s, serial %.8s)",
                        cn ? cn : "certificate", ca ? ca : "CA", until,
                        serial ? serial : "");
}

const char *ca_pkcs12_file_name(apr_pool_t *p, X509 *cert)
{
    const char *cn = name_entry(p, X509_get_subject_name(cert), NID_commonName);
    const char *serial = ca_serial_hex(p, X509_get0_serialNumber(cert));
    char *out = apr_pstrdup(p, cn && *cn ? cn : "certificate"), *o = out;
    const char *c;
    int gap = 0;

    /* runs of anything but A-Za-z0-9._- become one "_", as the pages do */
    for (c = out; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
            || (*c >= '0' && *c <= '9') || *c == '.' || *c == '_'
            || *c == '-') {
            *o++ = *c;
            gap = 0;
        }
        else if (!gap) {
            *o++ = '_';
            gap = 1;
        }
    }
    *o = '\0';
    return apr_psprintf(p, "%s-%.8s.p12", out, serial ? serial : "");
}

apr_status_t ca_pkcs12_make(apr_pool_t *p, EVP_PKEY *key, X509 *cert,
                            X509 *ca_cert, STACK_OF(X509) *chain,
                            const char *password, const char *friendly_name,
                            int legacy, unsigned char **der, apr_size_t *len,
                            const char **err)
{
    STACK_OF(X509) *cas = sk_X509_new_null();
    PKCS12 *p12 = NULL;
    unsigned char *buf, *q;
    apr_status_t rv = CA_ECRYPTO;
    int nid = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC
                     : NID_aes_256_cbc;
    int n, i;

    *err = NULL;
    if (!cas || (ca_cert && !sk_X509_push(cas, ca_cert))) {
        goto leave;
    }
    for (i = 0; chain && i < sk_X509_num(chain); i++) {
        if (!sk_X509_push(cas, sk_X509_value(chain, i))) {
            goto leave;
        }
    }
    /* PBKDF2 iterations as the browser-made files have them (OpenSSL 3
     * would take 2048 for 0); the MAC (PKCS#12 KDF) with 2048, as both the
     * browser and OpenSSL 3's own default write it */
    p12 = PKCS12_create(password, friendly_name, key, cert, cas, nid, nid,
                        legacy ? 2048 : CA_PKCS12_ITERATIONS,
                        CA_PKCS12_MAC_ITERATIONS, 0);
    if (!p12) {
        *err = apr_psprintf(p, "cannot make the PKCS#12: %s",
                            ca_log_ssl_errors(p));
        goto leave;
    }
    if (legacy) {
        /* a SHA-1 MAC, as old importers (Windows 7, Java 8) expect */
        if (!PKCS12_set_mac(p12, password, -1, NULL, 0, 2048, EVP_sha1())) {
            *err = "cannot set the PKCS#12 MAC";
            goto leave;
        }
    }
    n = i2d_PKCS12(p12, NULL);
    if (n <= 0) {
        goto leave;
    }
    buf = q = apr_palloc(p, (apr_size_t)n);
    if (i2d_PKCS12(p12, &q) != n) {
        goto leave;
    }
    *der = buf;
    *len = (apr_size_t)n;
    rv = APR_SUCCESS;
leave:
    PKCS12_free(p12);
    sk_X509_free(cas);
    ERR_clear_error();
    if (rv != APR_SUCCESS && !*err) {
        *err = "cannot make the PKCS#12";
    }
    return rv;
}
