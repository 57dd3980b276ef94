/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_issue: certificate profiles and issuance (build, serial, sign, store). */
#ifndef CA_ISSUE_H
#define CA_ISSUE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>
#include "ca_ca.h"
#include "ca_csr.h"
#include "ca_store.h"

/* keyUsage bits of a profile. */
#define CA_KU_DIGITAL_SIGNATURE  0x001
#define CA_KU_NON_REPUDIATION    0x002
#define CA_KU_KEY_ENCIPHERMENT   0x004
#define CA_KU_DATA_ENCIPHERMENT  0x008
#define CA_KU_KEY_AGREEMENT      0x010

/* An extra authorityInfoAccess entry: access method OID and URI. */
typedef struct ca_aia_t {
    const char *oid;          /* dotted OID or a known name (caIssuers)   */
    const char *url;
} ca_aia_t;

typedef struct ca_profile_t {
    const char *name;         /* stored with each certificate             */
    int validity_days;        /* default 365                              */
    int backdate_secs;        /* notBefore = now - this (default 300)     */
    unsigned key_usage;       /* CA_KU_* bits; 0: digitalSignature, plus
                                 keyEncipherment for RSA keys             */
    apr_array_header_t *eku;  /* const char*: short names (clientAuth,
                                 serverAuth, emailProtection, codeSigning,
                                 OCSPSigning, timeStamping) or dotted OIDs;
                                 may be NULL/empty: no extendedKeyUsage   */
    ca_key_policy_t key_policy;
    apr_array_header_t *aia;  /* ca_aia_t: extra authorityInfoAccess
                                 entries; may be NULL                     */
    int max_valid_per_owner;  /* 0: no limit; else at most this many valid,
                                 unexpired certificates of this profile per
                                 owner (CA_ECONFLICT)                     */
    int unique_subject;       /* no two valid, unexpired certificates with
                                 the same subject (CA_ECONFLICT)          */
    int renewal_window_days;  /* renewal allowed this long before expiry  */
} ca_profile_t;

/* A profile with the defaults above and name "default". */
ca_profile_t *ca_profile_make(apr_pool_t *p, const char *name);

/* Parse keyUsage names ("digitalSignature", "nonRepudiation",
 * "keyEncipherment", "dataEncipherment", "keyAgreement", case-insensitive)
 * into bits; CA_EBADINPUT for unknown names. */
apr_status_t ca_key_usage_parse(const char *name, unsigned *bit);
/* Check an extendedKeyUsage name or dotted OID; CA_EBADINPUT if unknown. */
apr_status_t ca_eku_check(const char *name);

typedef struct ca_issue_req_t {
    const ca_profile_t *profile;
    const X509_NAME *subject;     /* built by the caller from the template */
    apr_array_header_t *sans;     /* const char*: "email:a@b", "DNS:h",
                                     "URI:u", "IP:1.2.3.4"; may be NULL     */
    EVP_PKEY *pubkey;             /* the subject's public key (from the CSR)*/
    const X509_PUBKEY *spki;      /* optional: the SubjectPublicKeyInfo that
                                     holds pubkey (the CSR's), copied into
                                     the certificate as it is; saves
                                     X509_set_pubkey's encode + decode (40%
                                     of an enrollment's CPU on OpenSSL 3.0).
                                     The X509 made then carries the key as
                                     octets only: X509_get0_pubkey() on it
                                     is NULL (use pubkey; a parsed copy of
                                     its DER has the key as usual)        */
    const char *owner;            /* stored as the certificate's owner     */
    const char *base_url;         /* public base URL of the CA endpoints,
                                     "https://host/ca": CRL distribution
                                     point base_url/crl, AIA caIssuers
                                     base_url/cacert/KEYID.crt; NULL:
                                     neither                               */
    const char *supersede;        /* renewal: this serial (status valid) is
                                     marked superseded, replaced by the new
                                     one, in the same transaction; another
                                     status gives CA_ECONFLICT            */
    apr_int64_t supersede_at;     /* its revocation time (now + grace)     */
    ca_audit_t *audit;            /* optional: recorded in the same
                                     transaction as the certificate (one
                                     commit); its serial is set to the new
                                     one, its detail when NULL to "profile
                                     P, subject S"                        */
    const char *ocsp_url;         /* AIA id-ad-ocsp entry (before caIssuers);
                                     NULL: none                            */
    int ocsp_nocheck;             /* an OCSP responder certificate: add
                                     id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1) */
} ca_issue_req_t;

/* A positive random serial of 16 bytes (first byte 0x01..0x7f). */
apr_status_t ca_serial_random(ASN1_INTEGER **out);

/* Build and sign a certificate (no store): version 3, serial as given (or a
 * random one when NULL), validity from the profile and `now` (seconds since
 * the epoch), subject, subjectAltName (when sans), basicConstraints critical
 * CA:FALSE, keyUsage critical, extendedKeyUsage, SKI, AKI (keyid), CRL
 * distribution point and AIA caIssuers from base_url, AIA OCSP from ocsp_url,
 * ocsp-nocheck when asked; signed with the CA key
 * (SHA-256; Ed25519 pure).  notAfter never beyond the CA's notAfter. */
apr_status_t ca_cert_build(apr_pool_t *p, const ca_t *ca,
                           const ca_issue_req_t *req, const ASN1_INTEGER *serial,
                           apr_int64_t now, X509 **out, const char **err);

/* Issue: build with a random serial, store (retrying with a new serial when
 * the serial is taken, up to 8 times), committed before it returns.  *row is
 * the stored row.  CA_EDB when the store fails, CA_EPOLICY/CA_EBADINPUT when
 * the request cannot be issued. */
apr_status_t ca_issue(apr_pool_t *p, const ca_t *ca, ca_store_t *store,
                      const ca_issue_req_t *req, X509 **out,
                      ca_cert_row_t **row, const char **err);

/* The path below the base URL of the CRL of the certificates that ca
 * issues (their CRL distribution point): "/crl", or "/crl/KEYID" for a CA
 * with a previous CA (after a rollover). */
const char *ca_crl_path(apr_pool_t *p, const ca_t *ca);

/* The same of its AIA caIssuers URL: "/cacert/KEYID.crt" (KEYID:
 * ca_cert_key_id), the same before and after a rollover. */
const char *ca_cacert_path(apr_pool_t *p, const ca_t *ca);

#endif
