/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_acme: the rules of the ACME server (RFC 8555) that need no HTTP and no
 * database: which identifiers a profile allows, the status of an order from
 * its authorizations, the check of a CSR against an order, key
 * authorizations, problem types. */
#ifndef CA_ACME_H
#define CA_ACME_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>

/* RFC 8555 section 6.7 problem types (without the urn prefix). */
#define CA_ACME_ERR_PREFIX "urn:ietf:params:acme:error:"

/* Object statuses (RFC 8555 section 7.1.6). */
#define CA_ACME_PENDING     "pending"
#define CA_ACME_READY       "ready"
#define CA_ACME_PROCESSING  "processing"
#define CA_ACME_VALID       "valid"
#define CA_ACME_INVALID     "invalid"
#define CA_ACME_EXPIRED     "expired"
#define CA_ACME_DEACTIVATED "deactivated"
#define CA_ACME_REVOKED     "revoked"

/* A DNS identifier as the server keeps it: lower case, no trailing dot.
 * NULL when `value` is not a host name (LDH labels of 1..63 characters,
 * at most 253 in all; a leading "*." is a wildcard, returned as is). */
const char *ca_acme_dns_normalize(apr_pool_t *p, const char *value);

/* Whether the profile's patterns allow a DNS name: a pattern "name" allows
 * that name, "*.domain" (or ".domain") every name below domain, "*" any
 * name.  Case-insensitive; names must be normalised. */
int ca_acme_name_allowed(const apr_array_header_t *patterns,
                         const char *name);

/* The status an order shows, from its stored status, its authorizations'
 * statuses (const char*) and expiry: an expired unfinished order is
 * "invalid"; a pending one whose authorizations are all valid is "ready";
 * one with an invalid/deactivated/expired authorization is "invalid". */
const char *ca_acme_order_status(const char *stored,
                                 const apr_array_header_t *authz_status,
                                 apr_int64_t expires, apr_int64_t now);

/* Check a CSR against an order's DNS identifiers (normalised, const char*):
 * its subjectAltNames must be DNS names, exactly the identifiers; a common
 * name, if any, one of them.  CA_EPOLICY with *err. */
apr_status_t ca_acme_csr_matches(apr_pool_t *p, X509_REQ *req,
                                 const apr_array_header_t *idents,
                                 const char **err);

/* The key authorization of a challenge (RFC 8555 section 8.1). */
const char *ca_acme_key_authz(apr_pool_t *p, const char *token,
                              const char *thumbprint);

/* A random base64url string of n random octets (ids, tokens, nonces). */
const char *ca_acme_random(apr_pool_t *p, apr_size_t n);

/* The http-01 answer body matches the key authorization: trailing white
 * space (RFC 8555 section 8.3) is ignored, nothing else. */
int ca_acme_http01_body_ok(const char *body, apr_size_t len,
                           const char *key_authz);

#endif
