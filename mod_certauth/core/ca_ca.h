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
    const char *key_uri;     /* the key is in a PKCS#11 token: its URI, else
                                NULL (ca_pkcs11.h)                            */
    const char *pin;         /* its PIN (read once from the pass phrase
                                source, cleansed with the pool) or NULL     */
    apr_pool_t *key_pool;    /* holds a token key (and the module)            */
    X509 *previous;          /* after a rollover: the previous CA (the newest
                                of previous_all), or NULL                     */
    STACK_OF(X509) *previous_all; /* every previous CA generation, newest
                                first (later notBefore); NULL: previous alone */
    const int *previous_from; /* for each: its index in ca_set_previous_n's
                                prev_files                                    */
    STACK_OF(X509) *publish; /* what cacert.pem and EST cacerts carry besides
                                cert: the chain, the previous CA, the link
                                certificates (NULL: the chain alone)          */
    const char *publish_pem; /* cert and publish, PEM (NULL: cert_pem)        */
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
/* key_file may also be a PKCS#11 URI ("pkcs11:token=ca;object=cakey"): the
 * key stays in the token (ca_pkcs11.h) and passphrase is the source of the
 * PIN. */
apr_status_t ca_load(ca_t **pca, apr_pool_t *p, const char *cert_file,
                     const char *key_file, const char *passphrase,
                     const char **err);

/* The same; flags CA_LOAD_KEY_LATER: a key in a PKCS#11 token is checked
 * in a child process (loaded, compared with the certificate, one
 * signature) and not loaded here (ca->key stays NULL): for a process that
 * forks (httpd's parent), whose children each call ca_key_reopen after
 * fork, as PKCS#11 requires.  Key files are loaded as always. */
#define CA_LOAD_KEY_LATER 1
/* flags CA_LOAD_EXPIRED_OK: a CA certificate that has expired (or is not
 * valid yet) is accepted: the previous CA after a rollover, which only
 * signs CRLs. */
#define CA_LOAD_EXPIRED_OK 2
apr_status_t ca_load_ex(ca_t **pca, apr_pool_t *p, const char *cert_file,
                        const char *key_file, const char *passphrase,
                        int flags, const char **err);

/* Load a token key left for later (the key lives in a subpool of p), with
 * the PIN read by ca_load_ex.  No-op for a key file or a key that is
 * loaded.  CA_ECONFIG with *err. */
apr_status_t ca_key_reopen(ca_t *ca, apr_pool_t *p, const char **err);

/* After a rollover (certauth-admin rollover): the previous CA certificate
 * and the link certificates (links_file, may be NULL; NewWithOld: this
 * CA's key certified by the previous CA, OldWithNew: the previous CA's key
 * certified by this one).  Each link must join the two keys one way or the
 * other, with a valid signature; the previous certificate must be a CA
 * certificate.  Sets ca->previous, ca->publish, ca->publish_pem.
 * CA_ECONFIG with *err naming the file. */
apr_status_t ca_set_previous(ca_t *ca, apr_pool_t *p, const char *prev_file,
                             const char *links_file, const char **err);

/* The same with several previous CA generations (a CA rolled over more
 * than once; the files in any order: they are kept newest first, by
 * notBefore) and several link files, each link joining two of the
 * generations (the current CA and the previous ones) one way or the
 * other.  No two generations may share a key. */
apr_status_t ca_set_previous_n(ca_t *ca, apr_pool_t *p,
                               const char *const *prev_files, int n_prev,
                               const char *const *links_files, int n_links,
                               const char **err);

/* How many previous generations, and the i-th (0: the newest, the CA
 * before this one). */
int ca_n_previous(const ca_t *ca);
X509 *ca_previous_n(const ca_t *ca, int i);

/* The certificate of the generation (this CA or a previous one) whose key
 * identifier (ca_cert_key_id) is kid, or NULL. */
X509 *ca_generation(const ca_t *ca, apr_pool_t *p, const char *kid);

/* The certificate was issued by this CA or by one of its previous ones
 * (names and signature). */
int ca_issued_by_us(const ca_t *ca, X509 *x);

/* The key identifier a certificate is known by (the keyIdentifier of the
 * authorityKeyIdentifier in what its key signs: certificates, CRLs):
 * ca_key_id_of: its subjectKeyIdentifier, else ca_pubkey_key_id;
 * ca_pubkey_key_id: the SHA-1 of its subjectPublicKey BIT STRING (RFC 5280
 * 4.2.1.2 method 1; the subjectKeyIdentifier of what the CA issues).
 * New octet strings (the caller frees them); NULL on failure. */
ASN1_OCTET_STRING *ca_key_id_of(X509 *x);
ASN1_OCTET_STRING *ca_pubkey_key_id(X509 *x);

/* Key identifiers, lower-case hex (what a CA generation is known by after
 * a rollover: the store's issuer_kid, the CRL URL crl/KEYID):
 * ca_cert_key_id: ca_key_id_of in hex, "" on failure;
 * ca_cert_issuer_key_id: the keyIdentifier of its authorityKeyIdentifier,
 * "" when it has none; ca_pem_issuer_key_id: the same of a PEM
 * certificate ("" also when it cannot be read). */
const char *ca_cert_key_id(apr_pool_t *p, X509 *x);
const char *ca_cert_issuer_key_id(apr_pool_t *p, X509 *x);
const char *ca_pem_issuer_key_id(apr_pool_t *p, const char *pem);

/* A secret from its source: "file:/path" (first line), "exec:/program"
 * (first line of its output; the program gets `arg` as argument) or
 * "env:NAME".  NULL with *err on failure.  The copy is in p. */
const char *ca_secret_get(apr_pool_t *p, const char *source, const char *arg,
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

/* The same with a key made elsewhere (e.g. in a PKCS#11 token): only the
 * certificate is written (0644); CA_EEXIST when it exists. */
apr_status_t ca_create_with_key(apr_pool_t *p, const ca_init_opts_t *opts,
                                EVP_PKEY *key, const char *cert_file,
                                const char **err);

/* A CA certificate: subject and public key `pub`, issued by `issuer`
 * (NULL: self-signed, the subject is the issuer) and signed with
 * issuer_key; v3_ca-like extensions as ca_create's, a 16-byte random
 * serial, notBefore now, notAfter `not_after` (seconds since the epoch)
 * when > 0, else `days` from now.  Freed with p.  Used for the root and for
 * the link certificates of a rollover (old key certified by the new CA and
 * the other way round). */
apr_status_t ca_cert_make(apr_pool_t *p, X509_NAME *subject, EVP_PKEY *pub,
                          X509 *issuer, EVP_PKEY *issuer_key,
                          apr_int64_t not_after, int days, X509 **out,
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
