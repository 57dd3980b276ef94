/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_ocsp: an OCSP responder (RFC 6960, the RFC 5019 profile) for one CA.
 * All encoding through OpenSSL's OCSP API; this unit decides what to say:
 * which requests are malformed or not for this CA, each certificate's
 * status from the store, and who signs (a delegated responder certificate
 * issued by the CA, or the CA key).  No httpd here: the endpoint
 * (ep_ocsp.c) reads the request, caches and sends the response. */
#ifndef CA_OCSP_H
#define CA_OCSP_H

#include <apr_pools.h>
#include <openssl/ocsp.h>
#include "ca_ca.h"
#include "ca_store.h"

/* At most this many CertIDs in one request (RFC 5019 clients send one). */
#define CA_OCSP_MAX_CERTS 20
/* RFC 8954: a nonce of 1 to 32 octets. */
#define CA_OCSP_MAX_NONCE 32

/* The CA's issuer name and key hashes for the digests a CertID may use
 * (SHA-1, SHA-224, SHA-256, SHA-384, SHA-512).  After a rollover the
 * responder has one for each CA generation (ep_ocsp.c): a request is
 * answered for the CA whose hashes all its CertIDs carry. */
typedef struct ca_ocsp_t ca_ocsp_t;
apr_status_t ca_ocsp_init(ca_ocsp_t **out, apr_pool_t *p, const ca_t *ca);

/* Who signs the responses. */
typedef struct ca_ocsp_signer_t {
    X509 *cert;              /* delegated responder certificate, or the
                                CA certificate when the CA key signs       */
    int is_ca;               /* the CA signs: no certificate is sent       */
    EVP_PKEY *key;
    apr_int64_t not_before;  /* of cert (0 with the CA key)                */
    apr_int64_t not_after;   /* of cert; no response is valid beyond it    */
    const char *id;          /* serial of cert (hex), or "ca"               */
} ca_ocsp_signer_t;

/* The CA key as signer. */
ca_ocsp_signer_t *ca_ocsp_signer_ca(apr_pool_t *p, const ca_t *ca);

/* A parsed request.  status is OCSP_RESPONSE_STATUS_SUCCESSFUL when it can
 * be answered, else MALFORMEDREQUEST (not DER of an OCSPRequest, no or too
 * many CertIDs, a nonce outside 1..32 octets, an unknown critical
 * extension) or UNAUTHORIZED (a CertID of another issuer, or with a hash
 * algorithm this responder does not know); detail says why. */
typedef struct ca_ocsp_req_t {
    OCSP_REQUEST *req;           /* freed with the pool                     */
    int status;
    const char *detail;
    int count;                   /* CertIDs                                 */
    const char **serials;        /* canonical hex of each CertID's serial;
                                    NULL for a serial this CA cannot have
                                    issued (not positive, over 20 octets)   */
    int nonce;                   /* a nonce to echo                         */
    int cacheable;               /* one CertID, no nonce, no single request
                                    extensions: the response depends on the
                                    CertID only (key: cache_key)            */
    const char *cache_key;       /* hex SHA-256 of the CertID's DER         */
    const char *issuer_kid;      /* key identifier of the CA whose hashes
                                    the first CertID carries
                                    (ca_cert_key_id)                        */
    int gen;                     /* its generation (index in the list given
                                    to ca_ocsp_parse_gens): who signs      */
    const char **issuer_kids;    /* the same of each CertID: a stored
                                    certificate of another CA than its
                                    CertID names is unknown to
                                    ca_ocsp_lookup                         */
    int *gens;                   /* the generation of each CertID          */
    int mixed;                   /* CertIDs of more than one generation    */
} ca_ocsp_req_t;

/* Always returns a request (status says whether it can be answered). */
ca_ocsp_req_t *ca_ocsp_parse(apr_pool_t *p, const ca_ocsp_t *oc,
                             const unsigned char *der, apr_size_t len);

/* The same for a CA with previous generations (a rollover): ocs[0] the
 * current CA's hashes, then each previous generation's whose key is here.
 * Each CertID is answered for the generation whose hashes it carries
 * (gens[i]); one of no generation makes the request UNAUTHORIZED.  A
 * request may name several generations (mixed): one response answers them
 * all, signed for the first CertID's generation (gen), as OpenSSL's own
 * responder does with several -CA; RFC 6960 4.2.2.3 wants a SingleResponse
 * for each CertID in the one response. */
ca_ocsp_req_t *ca_ocsp_parse_gens(apr_pool_t *p,
                                  const ca_ocsp_t *const *ocs, int n_gens,
                                  const unsigned char *der, apr_size_t len);

/* Decode the GET form's path segment (RFC 6960 A.1): URL-encoded base64,
 * also base64url, padding optional.  CA_EBADINPUT when it is not. */
apr_status_t ca_ocsp_decode_get(apr_pool_t *p, const char *in,
                                unsigned char **der, apr_size_t *len);

/* The status of one certificate. */
typedef struct ca_ocsp_status_t {
    int status;                  /* V_OCSP_CERTSTATUS_GOOD/REVOKED/UNKNOWN  */
    apr_int64_t revoked_at;
    int reason;                  /* CRLReason, or -1: none sent             */
    apr_int64_t invalidity_at;   /* 0: none                                 */
    apr_int64_t changes_at;      /* the status changes then by itself (a
                                    superseded certificate at the end of
                                    its grace); 0: not by itself            */
} ca_ocsp_status_t;

/* From a stored row (NULL: never issued, unknown) at `now`: valid is good;
 * revoked is revoked (time, reason as on the CRL: none for unspecified,
 * invalidityDate); superseded is good during its grace, then revoked with
 * reason superseded at the end of the grace, as the CRL lists it. */
void ca_ocsp_status_of(const ca_cert_row_t *row, apr_int64_t now,
                       ca_ocsp_status_t *st);

/* Look each CertID of req up in the store; *st: an array of req->count.
 * CA_EDB when the store fails. */
apr_status_t ca_ocsp_lookup(apr_pool_t *p, ca_store_t *store,
                            const ca_ocsp_req_t *req, apr_int64_t now,
                            ca_ocsp_status_t **st);

/* A signed successful response (BasicOCSPResponse, byKey responder ID,
 * SHA-256 (Ed25519: pure), each CertID as the client sent it, the nonce
 * copied, the responder certificate included), thisUpdate = now,
 * nextUpdate = now + validity_secs but never after the signer's notAfter
 * or a status's changes_at.  *der allocated from p. */
apr_status_t ca_ocsp_respond(apr_pool_t *p, const ca_ocsp_req_t *req,
                             const ca_ocsp_status_t *st,
                             const ca_ocsp_signer_t *signer, apr_int64_t now,
                             int validity_secs, unsigned char **der,
                             apr_size_t *len, apr_int64_t *next_update,
                             const char **err);

/* An unsigned error response (malformedRequest, internalError, tryLater,
 * sigRequired, unauthorized). */
apr_status_t ca_ocsp_error_response(apr_pool_t *p, int status,
                                    unsigned char **der, apr_size_t *len);

/* Issue a delegated responder certificate: a new key (key_type as
 * ca_key_generate, NULL: EC P-256), subject "CN=OCSP Responder" with the
 * CA's other RDNs, extendedKeyUsage OCSPSigning, keyUsage
 * digitalSignature, id-pkix-ocsp-nocheck, valid `days`, stored in the
 * store (owner "ocsp-responder", profile "ocsp-responder") like every
 * certificate the CA signs.  *pem: the key then the certificate (for a
 * 0600 file).  CA_EDB when the store fails. */
apr_status_t ca_ocsp_responder_issue(apr_pool_t *p, const ca_t *ca,
                                     ca_store_t *store, int days,
                                     const char *key_type,
                                     ca_ocsp_signer_t **out,
                                     const char **pem, const char **err);

/* A responder from its PEM (key and certificate): checked to be issued by
 * this CA, for OCSPSigning, and to match its key. */
apr_status_t ca_ocsp_signer_load(apr_pool_t *p, const ca_t *ca,
                                 const char *pem, apr_size_t len,
                                 ca_ocsp_signer_t **out, const char **err);

#endif
