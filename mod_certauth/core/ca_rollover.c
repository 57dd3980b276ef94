/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_rollover.c: after a CA rollover, the previous CA's CRL: the current
 * CRL (same number, dates and entries) issued and signed by the previous
 * CA.  The store keeps no issuer per certificate, and serials are unique
 * across the store, so the list is the same for both CAs: each names the
 * serials revoked at this CA, and a relying party looks up only the serial
 * of the certificate it checks. */

#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_ca.h"
#include "ca_crl.h"
#include "ca_log.h"
#include "ca_util.h"

apr_status_t ca_crl_resign(apr_pool_t *p, const ca_t *signer,
                           const unsigned char *der, apr_size_t len,
                           unsigned char **out, apr_size_t *out_len,
                           const char **err)
{
    const unsigned char *in = der;
    X509_CRL *crl;
    AUTHORITY_KEYID *akid = NULL;
    const ASN1_OCTET_STRING *ski;
    unsigned char *buf = NULL;
    int i, n, ok;

    *err = NULL;
    if (!signer || !signer->cert || !signer->key) {
        *err = "no key of the previous CA to sign its CRL with";
        return CA_EDB;
    }
    crl = d2i_X509_CRL(NULL, &in, (long)len);
    if (!crl) {
        *err = apr_psprintf(p, "the current CRL cannot be decoded: %s",
                            ca_log_ssl_errors(p));
        return CA_ECRYPTO;
    }
    ski = X509_get0_subject_key_id(signer->cert);
    ok = ski && (akid = AUTHORITY_KEYID_new()) != NULL
         && (akid->keyid = ASN1_OCTET_STRING_dup(ski)) != NULL
         && X509_CRL_set_issuer_name(crl,
                                     X509_get_subject_name(signer->cert));
    while (ok && (i = X509_CRL_get_ext_by_NID(crl,
                                              NID_authority_key_identifier,
                                              -1)) >= 0) {
        X509_EXTENSION_free(X509_CRL_delete_ext(crl, i));
    }
    ok = ok && X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier,
                                     akid, 0, 0) == 1
         && X509_CRL_sign(crl, signer->key, ca_sign_md(signer->key)) > 0
         && (n = i2d_X509_CRL(crl, &buf)) > 0;
    AUTHORITY_KEYID_free(akid);
    X509_CRL_free(crl);
    if (!ok) {
        *err = apr_psprintf(p, "cannot sign the previous CA's CRL: %s",
                            ski ? ca_log_ssl_errors(p)
                                : "its certificate has no subject key "
                                  "identifier");
        OPENSSL_free(buf);
        return CA_ECRYPTO;
    }
    *out = apr_pmemdup(p, buf, (apr_size_t)n);
    *out_len = (apr_size_t)n;
    OPENSSL_free(buf);
    return APR_SUCCESS;
}
