/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_est: the ASN.1 objects of EST (RFC 7030), made with OpenSSL. */
#ifndef CA_EST_H
#define CA_EST_H

#include <apr_pools.h>
#include <openssl/x509.h>
#include "ca_ca.h"
#include "ca_csr.h"

/* A degenerate PKCS#7 SignedData ("certs-only", RFC 5751 / RFC 7030
 * section 4.1.3): `first` (may be NULL) followed by the certificates of
 * `more` (may be NULL), DER. */
apr_status_t ca_pkcs7_certs(apr_pool_t *p, X509 *first, STACK_OF(X509) *more,
                            unsigned char **der, apr_size_t *len);

/* The CA chain up to the self-signed root: ca->cert then ca->chain. */
apr_status_t ca_pkcs7_ca_chain(apr_pool_t *p, const ca_t *ca,
                               unsigned char **der, apr_size_t *len);

/* CSR attributes (RFC 7030 section 4.5.2) describing what a profile
 * wants: the signature algorithm, the key type (an EC curve as an attribute
 * of id-ecPublicKey, rsaEncryption, id-Ed25519), and extensionRequest with
 * subjectAltName when the profile takes names from the CSR.  *der is an
 * empty SEQUENCE when there is nothing to say. */
apr_status_t ca_csrattrs(apr_pool_t *p, const ca_key_policy_t *pol,
                         int wants_san, unsigned char **der, apr_size_t *len);

/* An unencrypted PKCS#8 PrivateKeyInfo, DER (for serverkeygen; the caller
 * cleanses it after use). */
apr_status_t ca_pkcs8_der(apr_pool_t *p, EVP_PKEY *key, unsigned char **der,
                          apr_size_t *len);

/* Does `req` ask for the same subject and subjectAltNames as `cert`
 * (RFC 7030 section 4.2.2)?  1 yes, 0 no (with *why). */
int ca_csr_same_names(apr_pool_t *p, X509_REQ *req, X509 *cert,
                      const char **why);

#endif
