/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_pkcs12: PKCS#12 files for people whose browser cannot make a key. */
#ifndef CA_PKCS12_H
#define CA_PKCS12_H

#include <apr_pools.h>
#include <openssl/x509.h>

/* PBKDF2 iterations for the key and certificates of the default (AES)
 * files, as the browser-made files have (htdocs/js/pki.js); the MAC's. */
#define CA_PKCS12_ITERATIONS 100000
#define CA_PKCS12_MAC_ITERATIONS 2048

/* The friendly name of the key and certificate: "alice (Example Root CA,
 * until 2027-12-06, serial 1A2B3C4D)": the subject's CN, the CA's CN (or
 * O), the expiry date (UTC) and the first 8 hex digits of the serial, so
 * that two imported certificates can be told apart. */
const char *ca_pkcs12_friendly_name(apr_pool_t *p, X509 *cert, X509 *ca_cert);

/* The file name: the CN with runs of anything but A-Za-z0-9._- as "_",
 * "-" and the first 8 hex digits of the serial: "alice-1A2B3C4D.p12". */
const char *ca_pkcs12_file_name(apr_pool_t *p, X509 *cert);

/* A PKCS#12 with the key, the certificate and the CA certificates above it,
 * protected by `password`.  Default: AES-256-CBC with PBKDF2 (HMAC-SHA256)
 * for key and certificates (CA_PKCS12_ITERATIONS), SHA-256 MAC
 * (CA_PKCS12_MAC_ITERATIONS); legacy: 3DES with SHA-1 and a SHA-1 MAC, 2048
 * iterations, for old importers.  The
 * DER is allocated from p (the caller cleanses it after sending). */
apr_status_t ca_pkcs12_make(apr_pool_t *p, EVP_PKEY *key, X509 *cert,
                            X509 *ca_cert, STACK_OF(X509) *chain,
                            const char *password, const char *friendly_name,
                            int legacy, unsigned char **der, apr_size_t *len,
                            const char **err);

#endif
