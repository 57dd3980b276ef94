/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* keycert: the key-cert.pem files of certauth-stunnel (a private key, the
 * certificate, then any chain, in one PEM file), written safely; durations,
 * renewal timing, CSRs and PKCS#7 certs-only parsing.  No libcurl here: the
 * unit test includes this file. */
#ifndef KEYCERT_H
#define KEYCERT_H

#include <sys/stat.h>

#include <apr_pools.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

/* A parsed key-cert file. */
typedef struct kc_bundle_t {
    EVP_PKEY *key;           /* the private key                            */
    X509 *cert;              /* the certificate matching the key           */
    STACK_OF(X509) *chain;   /* the other certificates, in file order      */
} kc_bundle_t;

/* Parse PEM text holding one private key (PKCS#8 "PRIVATE KEY", or the
 * traditional "EC PRIVATE KEY" / "RSA PRIVATE KEY"; an encrypted one needs
 * pass) and certificates.  The leaf is the certificate whose public key is
 * the key's; the other certificates are the chain.  need_key 0 accepts a
 * file without a key (then the first certificate is the leaf).
 * CA_EBADINPUT with *err a one-line reason.  Objects freed with p. */
apr_status_t kc_parse(apr_pool_t *p, const char *data, apr_size_t len,
                      const char *pass, int need_key, kc_bundle_t **out,
                      const char **err);

/* Read and parse a file (at most 1 MiB): CA_EIO when it cannot be read,
 * CA_EBADINPUT when it is not a valid key-cert file; *err names the file. */
apr_status_t kc_load(apr_pool_t *p, const char *path, const char *pass,
                     int need_key, kc_bundle_t **out, const char **err);

/* Does the public key of cert belong to key? */
int kc_key_matches(X509 *cert, EVP_PKEY *key);

/* The key type of a key in ca_key_generate's syntax: "ec:P-256",
 * "ec:P-384", "rsa:3072", "ed25519"; NULL for other keys. */
const char *kc_key_type(apr_pool_t *p, EVP_PKEY *key);

/* A zeroed buffer of len bytes in p, cleansed when p is cleared or
 * destroyed: for passwords and private-key PEM. */
char *kc_secret_alloc(apr_pool_t *p, apr_size_t len);

/* PEM of the key (unencrypted PKCS#8, or encrypted with AES-256-CBC when
 * pass is not NULL), then cert, then the certificates of chain (may be
 * NULL).  The key's PEM is cleansed when p is cleared. */
apr_status_t kc_pem(apr_pool_t *p, EVP_PKEY *key, const char *pass, X509 *cert,
                    STACK_OF(X509) *chain, char **pem, apr_size_t *len,
                    const char **err);

/* A file replaced safely: a temporary file in the same directory (mode
 * `mode`, owner and group of the existing file when there is one), written,
 * fsynced, renamed over the path, then the directory fsynced.  Until
 * kc_out_commit renamed it, the old file is untouched; the temporary file is
 * removed when anything fails or when the pool is cleared before the
 * commit.  Opening early finds an unwritable directory before any work. */
typedef struct kc_out_t kc_out_t;

apr_status_t kc_out_open(apr_pool_t *p, const char *path, int mode,
                         kc_out_t **out, const char **err);
/* Write data and rename.  backup: when not NULL and the file existed, a copy
 * of the previous file is kept there first (mode 0600 whatever the file's,
 * the previous file's owner, also written atomically). */
apr_status_t kc_out_commit(kc_out_t *o, const void *data, apr_size_t len,
                           const char *backup, const char **err);
/* Reserve len bytes for the temporary file (posix_fallocate) so that a
 * full file system shows before any work whose result would be lost (the CA
 * issuing a certificate); the file is cut to what kc_out_commit writes.
 * CA_EIO with *err (the temporary file removed) when there is no room;
 * APR_SUCCESS also where the file system cannot reserve space. */
apr_status_t kc_out_reserve(kc_out_t *o, apr_size_t len, const char **err);
/* Did the file exist when kc_out_open ran? (and its stat) */
int kc_out_existed(const kc_out_t *o, struct stat *st);

/* Write a whole file in one go with the rules above. */
apr_status_t kc_write_file(apr_pool_t *p, const char *path, const void *data,
                           apr_size_t len, int mode, const char *backup,
                           const char **err);

/* An exclusive lock serialising the runs that replace path: a POSIX
 * record lock (fcntl F_SETLK, also on NFS) on the file ".NAME.lock" next to
 * path (symbolic links resolved), created mode 0600 with the owner and group
 * of path when it exists, and never removed (removing it would let a third
 * run lock a new file while a second still waits on the old one).  Waits up
 * to wait_secs seconds for another holder; APR_TIMEUP then, *err naming
 * the process holding it.  CA_EIO when the lock file cannot be created or
 * opened.  The lock is released when p is cleared or the process exits. */
apr_status_t kc_lock(apr_pool_t *p, const char *path, int wait_secs,
                     const char **err);

/* "30d", "12h", "30" (days): seconds.  CA_EBADINPUT otherwise. */
apr_status_t kc_parse_duration(const char *s, apr_int64_t *secs);

/* Is renewal due at `now` for a certificate valid from nb to na?  within
 * >= 0: when at most `within` seconds are left; within < 0: once two thirds
 * of the lifetime have passed. */
int kc_renewal_due(apr_int64_t now, apr_int64_t nb, apr_int64_t na,
                   apr_int64_t within);

/* The certificates of a PKCS#7 certs-only body: base64 (white space and line
 * breaks allowed) or DER.  CA_EBADINPUT with *err otherwise; the stack and
 * its certificates are freed with p. */
apr_status_t kc_pkcs7_certs_parse(apr_pool_t *p, const char *body,
                                  apr_size_t len, STACK_OF(X509) **certs,
                                  const char **err);

/* A CSR signed with key: subject, and a subjectAltName extension taken from
 * san_ext (copied; may be NULL) or made from sans ("DNS:a,IP:127.0.0.1";
 * may be NULL).  CA_EBADINPUT with *err for bad names. */
apr_status_t kc_make_csr(apr_pool_t *p, EVP_PKEY *key, const X509_NAME *subject,
                         const X509_EXTENSION *san_ext, const char *sans,
                         X509_REQ **out, const char **err);

/* Text as `openssl x509 -subject` prints it ("CN = a, O = b"). */
const char *kc_name_oneline(apr_pool_t *p, const X509_NAME *name);
/* Text as `openssl x509 -dates` prints it ("Nov 23 00:12:01 2025 GMT"). */
const char *kc_time_str(apr_pool_t *p, const ASN1_TIME *t);

#endif
