/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_util: status codes shared by the core, pool cleanups for OpenSSL objects,
 * small helpers (base64, hex, time). */
#ifndef CA_UTIL_H
#define CA_UTIL_H

#include <apr_pools.h>
#include <apr_errno.h>
#include <apr_time.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

/* Status codes of the core: the glue maps them to HTTP statuses. */
#define CA_EBADINPUT  (APR_OS_START_USERERR + 1) /* malformed input: 400      */
#define CA_EPOLICY    (APR_OS_START_USERERR + 2) /* refused by policy: 422    */
#define CA_ENOTFOUND  (APR_OS_START_USERERR + 3) /* no such object: 404       */
#define CA_EEXIST     (APR_OS_START_USERERR + 4) /* unique key taken          */
#define CA_EDB        (APR_OS_START_USERERR + 5) /* database unavailable: 503 */
#define CA_ECONFIG    (APR_OS_START_USERERR + 6) /* configuration mistake     */
#define CA_ECRYPTO    (APR_OS_START_USERERR + 7) /* OpenSSL failure: 500      */
#define CA_EIO        (APR_OS_START_USERERR + 8) /* file problem              */
#define CA_ECONFLICT  (APR_OS_START_USERERR + 9) /* limit or uniqueness: 409  */
/* The database did not let us in within the request's bound (a lock held
 * elsewhere, too many waiting): 503 with Retry-After, try again soon. */
#define CA_EBUSY      (APR_OS_START_USERERR + 10)

/* Register a pool cleanup that frees the object; returns the object. */
X509 *ca_pool_x509(apr_pool_t *p, X509 *x);
X509_REQ *ca_pool_x509_req(apr_pool_t *p, X509_REQ *x);
EVP_PKEY *ca_pool_pkey(apr_pool_t *p, EVP_PKEY *k);
STACK_OF(X509) *ca_pool_x509_stack(apr_pool_t *p, STACK_OF(X509) *sk);
/* Secrets: buf (len octets) is cleansed (OPENSSL_cleanse) when p is
 * destroyed, on every path. */
void ca_pool_wipe(apr_pool_t *p, void *buf, apr_size_t len);

/* Decode base64 ignoring white space and line breaks; CA_EBADINPUT on bad
 * characters or padding. */
apr_status_t ca_base64_decode(apr_pool_t *p, const char *in, apr_size_t inlen,
                              unsigned char **out, apr_size_t *outlen);
/* Encode base64 in lines of 64 characters, each ending with "\r\n" when crlf,
 * else "\n". */
const char *ca_base64_encode(apr_pool_t *p, const unsigned char *in,
                             apr_size_t inlen, int crlf);
/* The length of ca_base64_encode's text (without its NUL). */
apr_size_t ca_base64_encoded_len(apr_size_t inlen, int crlf);
/* The same text written to out (ca_base64_encoded_len + 1 octets: it is
 * NUL-terminated); returns the end of the text (the NUL). */
char *ca_base64_encode_to(char *out, const unsigned char *in,
                          apr_size_t inlen, int crlf);

/* PEM text of one certificate. */
const char *ca_x509_pem(apr_pool_t *p, X509 *x);
/* DER of one certificate. */
apr_status_t ca_x509_der(apr_pool_t *p, X509 *x, unsigned char **der,
                         apr_size_t *len);
/* Subject as an RFC 2253 string ("CN=alice,O=Example"). */
const char *ca_x509_name_str(apr_pool_t *p, const X509_NAME *name);
/* Canonical serial text: upper-case hex of whole bytes, as BN_bn2hex prints. */
const char *ca_serial_hex(apr_pool_t *p, const ASN1_INTEGER *serial);
/* Normalise a serial given by a user (hex, any case, optional ':' separators,
 * at most 20 octets, positive); CA_EBADINPUT otherwise. */
apr_status_t ca_serial_normalize(apr_pool_t *p, const char *in,
                                 const char **out);
/* ASN1_TIME to seconds since the epoch. */
apr_int64_t ca_asn1_time_to_epoch(const ASN1_TIME *t);

/* Read a whole file (at most max bytes) into a NUL-terminated buffer. */
apr_status_t ca_file_read(apr_pool_t *p, const char *path, apr_size_t max,
                          char **data, apr_size_t *len);
/* Write a file atomically: temp file in the same directory with mode `perms`
 * (e.g. 0600), fsync, rename over path, fsync the directory. */
apr_status_t ca_file_write_atomic(apr_pool_t *p, const char *path,
                                  const void *data, apr_size_t len,
                                  int perms);
/* The same with the file's content in two parts, one after the other (a
 * header and a large body without copying them together). */
apr_status_t ca_file_write_atomic2(apr_pool_t *p, const char *path,
                                   const void *data, apr_size_t len,
                                   const void *data2, apr_size_t len2,
                                   int perms);

/* s as valid UTF-8: s itself when it is (RFC 3629: no overlong forms, no
 * surrogates, at most U+10FFFF), else a copy in which every byte that is
 * not part of a valid character is written as the four characters \xHH
 * (upper-case hex): shown, never dropped.  NULL stays NULL. */
const char *ca_utf8_clean(apr_pool_t *p, const char *s);
/* Untrusted text for an error message: a copy of at most `max` characters
 * (then "..."), each outside printable ASCII and each quote (' ") or
 * backslash written as '?'; "(null)" for NULL. */
const char *ca_printable(apr_pool_t *p, const char *s, apr_size_t max);
/* The length of the valid UTF-8 character at s (1-4), 0 when none. */
apr_size_t ca_utf8_char_len(const unsigned char *s);

/* A child's answer: read fd until end of file or until buf (size octets,
 * NUL-terminated) is full, close fd, then wait for child pid (its waitpid
 * status in *status).  Returns the octets read.  For start-up programs
 * (pass phrase programs, the token probe).  Bounded: a child that has not
 * finished within secs seconds is killed (SIGKILL) and *timed_out set. */
#define CA_CHILD_SECS 60
apr_size_t ca_child_collect(int fd, int pid, char *buf, apr_size_t size,
                            int secs, int *status, int *timed_out);

#endif
