/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_crl: RFC 5280 version 2 CRLs. */
#ifndef CA_CRL_H
#define CA_CRL_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "ca_ca.h"

/* RFC 5280 CRLReason codes (7 is unused). */
#define CA_REASON_NONE                  -1
#define CA_REASON_UNSPECIFIED            0
#define CA_REASON_KEY_COMPROMISE         1
#define CA_REASON_CA_COMPROMISE          2
#define CA_REASON_AFFILIATION_CHANGED    3
#define CA_REASON_SUPERSEDED             4
#define CA_REASON_CESSATION_OF_OPERATION 5
#define CA_REASON_CERTIFICATE_HOLD       6
#define CA_REASON_REMOVE_FROM_CRL        8
#define CA_REASON_PRIVILEGE_WITHDRAWN    9
#define CA_REASON_AA_COMPROMISE         10

/* The RFC 5280 name of a reason ("keyCompromise", ...), or NULL. */
const char *ca_reason_name(int reason);
/* The code of an RFC 5280 reason name (case-insensitive; also accepts the
 * decimal code), or -2 when unknown.  removeFromCRL is refused (-2): it
 * belongs to delta CRLs, which this CA does not issue. */
int ca_reason_code(const char *name);

typedef struct ca_crl_entry_t {
    const char *serial;        /* canonical hex, as stored               */
    apr_int64_t revoked_at;    /* seconds since the epoch                */
    int reason;                /* CRLReason, CA_REASON_NONE: no extension;
                                  unspecified (0) is written as no reason
                                  code either, as RFC 5280 asks          */
    apr_int64_t invalidity_at; /* 0: no invalidityDate extension         */
    const char *issuer_kid;    /* key identifier of the issuing CA (the
                                  store's issuer_kid), "" unknown, NULL
                                  not given                              */
} ca_crl_entry_t;

/* Build and sign a v2 CRL: issuer = the CA's subject, thisUpdate, nextUpdate,
 * the entries in the given order (an empty list gives a CRL without the
 * revokedCertificates field, never an empty SEQUENCE), crlNumber
 * (non-critical, `number` >= 0), authorityKeyIdentifier (keyid of the CA
 * certificate's SKI, or computed from its key when it has none).  Signed with
 * ca_sign_md (SHA-256; Ed25519 pure).  *der is allocated from p. */
apr_status_t ca_crl_build(apr_pool_t *p, const ca_t *ca,
                          const apr_array_header_t *entries, /* ca_crl_entry_t */
                          apr_int64_t number, apr_int64_t this_update,
                          apr_int64_t next_update, unsigned char **der,
                          apr_size_t *der_len, const char **err);

/* Make the next CRL from the store and keep it there, in one transaction:
 * the revoked and superseded certificates that expired less than
 * retention_days ago (superseded ones still in their grace left out), CRL
 * number one more than the stored one, nextUpdate `days` after now.
 * Each CA lists the certificates it issued (the store's issuer_kid is its
 * key identifier) and those whose issuer is unknown (no
 * authorityKeyIdentifier): after a rollover, with `prev` (the previous
 * CA, with its key; NULL: none), the previous CA's CRL is made too, with
 * the same number and dates, and stored next to the current one
 * (ca_store_crl_prev).  Returns the number, the DER and how many entries
 * it lists.  CA_EDB, CA_ECONFLICT (another writer was first) or a build
 * error with *err.  (ca_crlstore.c) */
struct ca_store_t;
apr_status_t ca_crl_make(apr_pool_t *p, const ca_t *ca,
                         struct ca_store_t *store, int days,
                         int retention_days, apr_int64_t now,
                         apr_int64_t *number, unsigned char **der,
                         apr_size_t *der_len, int *listed, const char **err);
apr_status_t ca_crl_make2(apr_pool_t *p, const ca_t *ca, const ca_t *prev,
                          struct ca_store_t *store, int days,
                          int retention_days, apr_int64_t now,
                          apr_int64_t *number, unsigned char **der,
                          apr_size_t *der_len, int *listed,
                          int *prev_listed, const char **err);

/* The same with several previous generations (a CA rolled over more than
 * once), each with its key: a CRL for each, the same number and dates,
 * stored together (ca_store_crl_prev's prev_kid: their key identifiers,
 * prev_der: their base64 DERs, each list separated by spaces, in the same
 * order; ca_crl_prev_of picks one); prev_listed: n_prev counts (or NULL). */
apr_status_t ca_crl_make_n(apr_pool_t *p, const ca_t *ca,
                           const ca_t *const *prevs, int n_prev,
                           struct ca_store_t *store, int days,
                           int retention_days, apr_int64_t now,
                           apr_int64_t *number, unsigned char **der,
                           apr_size_t *der_len, int *listed,
                           int *prev_listed, const char **err);

/* The base64 DER of the CRL of the generation with key identifier kid in
 * the stored lists (ca_store_crl_prev), or NULL when it is not there. */
const char *ca_crl_prev_of(apr_pool_t *p, const char *kids, const char *ders,
                           const char *kid);

/* PEM ("-----BEGIN X509 CRL-----") of a DER CRL. */
const char *ca_crl_pem(apr_pool_t *p, const unsigned char *der,
                       apr_size_t len);

#endif
