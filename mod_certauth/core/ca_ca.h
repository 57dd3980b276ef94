/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_ca: the CA itself: load its key and certificate, create a new one. */
#ifndef CA_CA_H
#define CA_CA_H

#include <apr_pools.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

typedef struct ca_t {
    X509 *cert;              /* the CA certificate (the first in cert_file)   */
    EVP_PKEY *key;           /* its private key                               */
    STACK_OF(X509) *chain;   /* certificates above it in cert_file (may be 0) */
    unsigned char *cert_der; /* DER of cert                                   */
    apr_size_t cert_der_len;
    const char *cert_pem;    /* PEM of cert followed by the chain             */
    const char *subject;     /* RFC 2253 subject of cert                      */
    const char *sha256_fp;   /* "AB:CD:..." SHA-256 fingerprint of cert       */
} ca_t;

/* Load a CA.  cert_file: PEM, the CA certificate first, then any chain above
 * it.  key_file: PEM private key; refused when group- or world-readable.
 * passphrase: NULL for unencrypted keys, "file:/path" (first line of the
 * file), "exec:/path/to/program" (its first line of output; the program gets
 * the key file path as argument, as SSLPassPhraseDialog's exec: does), or
 * "env:NAME".  Checks the key matches the certificate, that the certificate is
 * a CA (basicConstraints CA:TRUE, keyCertSign when keyUsage is present) and
 * is currently valid.  On failure returns CA_ECONFIG/CA_EIO with *err a one-
 * line reason naming the file.  The objects are freed with pool p. */
apr_status_t ca_load(ca_t **pca, apr_pool_t *p, const char *cert_file,
                     const char *key_file, const char *passphrase,
                     const char **err);

typedef struct ca_init_opts_t {
    const char *key_type;   /* "ec" (P-256, default), "ec:P-384", "rsa",
                               "rsa:3072" (rsa default 3072), "ed25519"      */
    int days;               /* validity, default 3650                        */
    const char *subject;    /* "CN=Example CA,O=Example" or "/O=Example/CN=…" */
    const char *key_passphrase; /* NULL: unencrypted key (mode 0600); else
                               AES-256-CBC encrypted PEM with this pass phrase */
} ca_init_opts_t;

/* Create a self-signed root: key (mode 0600, written atomically) and
 * certificate (0644), extensions like the how-to's v3_ca (basicConstraints
 * critical CA:TRUE, keyUsage critical keyCertSign+cRLSign, SKI, AKI), SHA-256
 * (Ed25519: pure), a 16-byte random serial.  Refuses to overwrite existing
 * files (CA_EEXIST). */
apr_status_t ca_create(apr_pool_t *p, const ca_init_opts_t *opts,
                       const char *cert_file, const char *key_file,
                       const char **err);

/* Generate a key: same key_type syntax as above. */
apr_status_t ca_key_generate(apr_pool_t *p, const char *key_type,
                             EVP_PKEY **out, const char **err);

/* Parse a subject given as "CN=a,O=b" (RFC 2253 order: most significant
 * last, as OpenSSL prints with -nameopt RFC2253) or "/O=b/CN=a" (openssl req
 * -subj order).  CA_EBADINPUT with *err on unknown fields. */
apr_status_t ca_name_parse(apr_pool_t *p, const char *in, X509_NAME **out,
                           const char **err);

/* The digest to sign with for this key: SHA-256, or NULL for Ed25519. */
const EVP_MD *ca_sign_md(EVP_PKEY *key);

#endif
