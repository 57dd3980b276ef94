/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_csr: parse PKCS#10 requests, check proof of possession and key policy. */
#ifndef CA_CSR_H
#define CA_CSR_H

#include <apr_pools.h>
#include <openssl/x509.h>

typedef struct ca_key_policy_t {
    int rsa_min_bits;   /* default 2048; RSA below is refused             */
    int rsa_max_bits;   /* default 8192                                   */
    int allow_rsa;      /* default 1                                      */
    int allow_p256;     /* default 1                                      */
    int allow_p384;     /* default 1                                      */
    int allow_ed25519;  /* default 1                                      */
} ca_key_policy_t;

/* The default policy: RSA 2048..8192, EC P-256 and P-384, Ed25519. */
void ca_key_policy_default(ca_key_policy_t *pol);

/* Parse a CSR from a request body: PEM ("-----BEGIN CERTIFICATE REQUEST-----"
 * or "NEW CERTIFICATE REQUEST"), DER, or base64 of DER (white space and line
 * breaks allowed).  CA_EBADINPUT with *err otherwise.  Freed with pool p. */
apr_status_t ca_csr_parse(apr_pool_t *p, const char *data, apr_size_t len,
                          X509_REQ **out, const char **err);

/* Check a parsed CSR: the signature verifies with its own key (proof of
 * possession); it is not signed with MD5 or SHA-1 (nor any digest weaker than
 * SHA-256 except for Ed25519); its key is allowed by pol; it does not request
 * basicConstraints CA:TRUE.  CA_EPOLICY with *err naming the problem. */
apr_status_t ca_csr_check(apr_pool_t *p, X509_REQ *req,
                          const ca_key_policy_t *pol, const char **err);

/* Check a public key against the policy (used for server-made keys and
 * re-signing too). */
apr_status_t ca_key_check(apr_pool_t *p, EVP_PKEY *key,
                          const ca_key_policy_t *pol, const char **err);

/* A short description of a key: "EC P-256", "RSA 3072", "Ed25519". */
const char *ca_key_describe(apr_pool_t *p, EVP_PKEY *key);

#endif
