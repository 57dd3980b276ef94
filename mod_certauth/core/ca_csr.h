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

/* The public key of a request (borrowed, valid as long as pool p and the
 * request): requests from ca_csr_parse() are parsed without OpenSSL 3.0's
 * per-key decoder, and their key is made here from the
 * SubjectPublicKeyInfo (see ca_spki_pubkey); use this, not
 * X509_REQ_get0_pubkey(), which is NULL for them.  NULL if the key is
 * malformed or of a type OpenSSL does not know. */
EVP_PKEY *ca_csr_pubkey(apr_pool_t *p, X509_REQ *req);

/* A new EVP_PKEY from a SubjectPublicKeyInfo.  CA_SPKI_FAST: EC
 * P-256/P-384, RSA (rsaEncryption) and Ed25519 keys are made by
 * EVP_PKEY_fromdata from the algorithm, parameters and key octets; any
 * other key, and any the fast path cannot make, through OpenSSL's generic
 * decoder (d2i_PUBKEY), which is all that CA_SPKI_GENERIC does;
 * CA_SPKI_FAST_ONLY (tests) without that fallback.  NULL when the key is
 * not valid.  The paths give equal keys for the same input (unit tests). */
#define CA_SPKI_GENERIC   0
#define CA_SPKI_FAST      1
#define CA_SPKI_FAST_ONLY 2
EVP_PKEY *ca_spki_pubkey(const X509_PUBKEY *spki, int mode);

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
