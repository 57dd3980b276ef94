/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_pkcs12.c: PKCS#12 files made with OpenSSL's PKCS12_create. */

#include <string.h>

#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/pkcs12.h>

#include "ca_log.h"
#include "ca_pkcs12.h"
#include "ca_util.h"

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
    p12 = PKCS12_create(password, friendly_name, key, cert, cas, nid, nid,
                        legacy ? 2048 : 0, legacy ? 2048 : 0, 0);
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
