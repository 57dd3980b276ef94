/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_pkcs12: PKCS#12 files for people whose browser cannot make a key. */
#ifndef CA_PKCS12_H
#define CA_PKCS12_H

#include <apr_pools.h>
#include <openssl/x509.h>

/* A PKCS#12 with the key, the certificate and the CA certificates above it,
 * protected by `password`.  Default: AES-256-CBC with PBKDF2 (HMAC-SHA256)
 * for key and certificates, SHA-256 MAC, 2048 iterations (OpenSSL 3
 * defaults); legacy: 3DES with SHA-1 and a SHA-1 MAC for old importers.  The
 * DER is allocated from p (the caller cleanses it after sending). */
apr_status_t ca_pkcs12_make(apr_pool_t *p, EVP_PKEY *key, X509 *cert,
                            X509 *ca_cert, STACK_OF(X509) *chain,
                            const char *password, const char *friendly_name,
                            int legacy, unsigned char **der, apr_size_t *len,
                            const char **err);

#endif
