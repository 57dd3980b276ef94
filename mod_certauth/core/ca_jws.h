/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_jws: JOSE for ACME (RFC 7515 JWS in the flattened JSON serialization,
 * RFC 7517 JWK, RFC 7638 thumbprints) on OpenSSL and jansson.
 * Account keys: ES256 (P-256), ES384 (P-384), RS256 (RSA >= 2048 bits),
 * EdDSA (Ed25519); external account binding MACs: HS256, HS384, HS512. */
#ifndef CA_JWS_H
#define CA_JWS_H

#include <apr_pools.h>
#include <jansson.h>
#include <openssl/evp.h>

/* base64url without padding (RFC 7515 section 2). */
const char *ca_b64url_encode(apr_pool_t *p, const unsigned char *in,
                             apr_size_t len);
/* Decode; CA_EBADINPUT on characters outside the alphabet or padding. */
apr_status_t ca_b64url_decode(apr_pool_t *p, const char *in,
                              unsigned char **out, apr_size_t *len);

/* A parsed JWS (flattened JSON serialization).  The JSON values belong
 * to the pool (json_decref in a cleanup). */
typedef struct ca_jws_t {
    json_t *protected_hdr;      /* the decoded protected header          */
    const char *alg;
    const char *nonce;          /* NULL when absent                      */
    const char *url;            /* NULL when absent                      */
    const char *kid;            /* NULL when absent                      */
    json_t *jwk;                /* NULL when absent                      */
    const char *payload;        /* decoded, NUL-terminated               */
    apr_size_t payload_len;     /* 0: empty payload (POST-as-GET)        */
    const char *signing_input;  /* protected "." payload, as sent        */
    unsigned char *sig;
    apr_size_t sig_len;
} ca_jws_t;

/* Parse a flattened JWS; only "protected", "payload" and "signature" (and
 * no unprotected "header") are accepted.  CA_EBADINPUT with *err. */
apr_status_t ca_jws_parse(apr_pool_t *p, const char *body, apr_size_t len,
                          ca_jws_t **out, const char **err);
/* The same from a JSON object already parsed (the EAB inner JWS). */
apr_status_t ca_jws_parse_json(apr_pool_t *p, json_t *obj, ca_jws_t **out,
                               const char **err);

/* The public key of a JWK (kty EC with crv P-256/P-384, RSA, OKP with crv
 * Ed25519); freed with the pool.  CA_EBADINPUT with *err otherwise (RSA
 * keys below 2048 bits are refused). */
apr_status_t ca_jwk_to_pkey(apr_pool_t *p, json_t *jwk, EVP_PKEY **pkey,
                            const char **err);
/* The JWK of a public key (the members RFC 7638 names, nothing else). */
apr_status_t ca_jwk_from_pkey(apr_pool_t *p, EVP_PKEY *pkey, json_t **jwk);
/* The JWK's required members in lexical order without white space
 * (RFC 7638 section 3): the text whose SHA-256 is the thumbprint. */
apr_status_t ca_jwk_canonical(apr_pool_t *p, json_t *jwk, const char **out,
                              const char **err);
/* RFC 7638 SHA-256 thumbprint, base64url. */
apr_status_t ca_jwk_thumbprint(apr_pool_t *p, json_t *jwk, const char **out,
                               const char **err);

/* Verify the JWS signature with `key`; the "alg" must fit the key
 * (ES256 P-256, ES384 P-384, RS256 RSA, EdDSA Ed25519).  CA_EBADINPUT
 * with *err when it does not verify or does not fit. */
apr_status_t ca_jws_verify(apr_pool_t *p, const ca_jws_t *jws, EVP_PKEY *key,
                           const char **err);
/* Verify an HS256/HS384/HS512 MAC with the octets of `key`. */
apr_status_t ca_jws_verify_hmac(apr_pool_t *p, const ca_jws_t *jws,
                                const unsigned char *key, apr_size_t keylen,
                                const char **err);

/* Sign: a flattened JWS over `protected_hdr` (its "alg" set from the key
 * here) and `payload` (may be ""), as JSON text.  For clients and tests. */
apr_status_t ca_jws_sign(apr_pool_t *p, EVP_PKEY *key, json_t *protected_hdr,
                         const char *payload, const char **out);
/* The same with an HMAC key (alg HS256). */
apr_status_t ca_jws_sign_hmac(apr_pool_t *p, const unsigned char *key,
                              apr_size_t keylen, json_t *protected_hdr,
                              const char *payload, const char **out);

/* A JSON value decref'd with the pool; returns it. */
json_t *ca_pool_json(apr_pool_t *p, json_t *j);

#endif
