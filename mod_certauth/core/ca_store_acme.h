/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store_acme: the ACME server's rows in the certificate database
 * (schema versions 7 and 9): the nonce key and spent nonces (shared by
 * all children and front ends),
 * external account binding keys, accounts, orders, authorizations and
 * challenges.  Status changes are conditional on the status read
 * (CA_ECONFLICT when another process changed it first). */
#ifndef CA_STORE_ACME_H
#define CA_STORE_ACME_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "ca_store.h"

typedef struct ca_acme_eab_t {
    const char *kid;
    const char *hmac_key;     /* base64url of the MAC key                 */
    const char *owner;        /* the site user it was made for            */
    apr_int64_t created_at;
    apr_int64_t expires;      /* unused keys stop working then            */
    const char *account;      /* the account bound with it, "" when none  */
} ca_acme_eab_t;

typedef struct ca_acme_account_t {
    const char *id;
    const char *thumbprint;   /* RFC 7638, unique                         */
    const char *jwk;          /* the JWK's canonical JSON                  */
    const char *owner;        /* the site user (through EAB)              */
    const char *status;       /* valid, deactivated, revoked              */
    const char *contact;      /* JSON array text                          */
    const char *eab_kid;
    apr_int64_t created_at;
} ca_acme_account_t;

typedef struct ca_acme_order_t {
    const char *id;
    const char *account;
    const char *status;       /* pending, processing, valid, invalid      */
    apr_int64_t expires;
    const char *identifiers;  /* DNS names, comma-separated, normalised    */
    const char *profile;
    const char *serial;       /* the certificate, "" until valid          */
    const char *error;        /* problem document (JSON) or ""            */
    apr_int64_t created_at;
} ca_acme_order_t;

typedef struct ca_acme_authz_t {
    const char *id;
    const char *order_id;
    const char *account;
    const char *ident;        /* the DNS name                             */
    const char *status;       /* pending, valid, invalid, deactivated     */
    apr_int64_t expires;
} ca_acme_authz_t;

typedef struct ca_acme_chall_t {
    const char *id;
    const char *authz_id;
    const char *type;         /* http-01, tls-alpn-01                     */
    const char *token;
    const char *status;       /* pending, processing, valid, invalid      */
    apr_int64_t validated_at; /* processing: when it started            */
    const char *error;        /* problem document (JSON) or ""            */
} ca_acme_chall_t;

/* The nonces' MAC key (base64url text, ca_acme_nonce_make) in *key: the
 * one in the database; when there is none yet and `fresh` is not NULL,
 * `fresh` is stored first unless another process stored one meanwhile
 * (the only write, once per database).  CA_ENOTFOUND: none and no
 * `fresh`. */
apr_status_t ca_store_acme_nonce_key(ca_store_t *s, apr_pool_t *p,
                                     const char *fresh, apr_int64_t now,
                                     const char **key);
/* Mark a nonce spent (until `expires`, the end of its lifetime): one
 * insert; CA_EEXIST when it was spent already (a replay). */
apr_status_t ca_store_acme_nonce_spend(ca_store_t *s, apr_pool_t *p,
                                       const char *nonce,
                                       apr_int64_t expires);
/* Remove the spent nonces whose lifetime ended at `now`. */
apr_status_t ca_store_acme_nonce_clean(ca_store_t *s, apr_pool_t *p,
                                       apr_int64_t now);

apr_status_t ca_store_acme_eab_add(ca_store_t *s, apr_pool_t *p,
                                   const ca_acme_eab_t *e);
apr_status_t ca_store_acme_eab_get(ca_store_t *s, apr_pool_t *p,
                                   const char *kid, ca_acme_eab_t **e);
/* Bind an unused key to an account: CA_ECONFLICT when already bound. */
apr_status_t ca_store_acme_eab_bind(ca_store_t *s, apr_pool_t *p,
                                    const char *kid, const char *account);

/* CA_EEXIST when the thumbprint has an account already. */
apr_status_t ca_store_acme_account_add(ca_store_t *s, apr_pool_t *p,
                                       const ca_acme_account_t *a);
apr_status_t ca_store_acme_account_get(ca_store_t *s, apr_pool_t *p,
                                       const char *id,
                                       ca_acme_account_t **a);
apr_status_t ca_store_acme_account_by_key(ca_store_t *s, apr_pool_t *p,
                                          const char *thumbprint,
                                          ca_acme_account_t **a);
/* Change status and contact (contact NULL: kept). */
apr_status_t ca_store_acme_account_update(ca_store_t *s, apr_pool_t *p,
                                          const char *id, const char *status,
                                          const char *contact);
/* Replace the key (keyChange) if it is still `old_thumbprint`:
 * CA_ECONFLICT otherwise, CA_EEXIST when the new key has an account. */
apr_status_t ca_store_acme_account_rekey(ca_store_t *s, apr_pool_t *p,
                                         const char *id,
                                         const char *old_thumbprint,
                                         const char *thumbprint,
                                         const char *jwk);

/* The ids of an account's orders not yet expired at `now`, newest first
 * (at most 1000; const char*). */
apr_status_t ca_store_acme_account_orders(ca_store_t *s, apr_pool_t *p,
                                          const char *account,
                                          apr_int64_t now,
                                          apr_array_header_t **ids);

/* An order with one authorization per identifier and its challenges, in
 * one transaction.  authz: ca_acme_authz_t*, challs: ca_acme_chall_t*
 * (each naming its authz). */
apr_status_t ca_store_acme_order_add(ca_store_t *s, apr_pool_t *p,
                                     const ca_acme_order_t *o,
                                     const apr_array_header_t *authz,
                                     const apr_array_header_t *challs);
apr_status_t ca_store_acme_order_get(ca_store_t *s, apr_pool_t *p,
                                     const char *id, ca_acme_order_t **o);
/* Move from status `from` to `to`, with serial and error (NULL: kept). */
apr_status_t ca_store_acme_order_set(ca_store_t *s, apr_pool_t *p,
                                     const char *id, const char *from,
                                     const char *to, const char *serial,
                                     const char *error);
/* The authorizations of an order (ca_acme_authz_t*), in creation order. */
apr_status_t ca_store_acme_order_authz(ca_store_t *s, apr_pool_t *p,
                                       const char *order_id,
                                       apr_array_header_t **authz);
apr_status_t ca_store_acme_authz_get(ca_store_t *s, apr_pool_t *p,
                                     const char *id, ca_acme_authz_t **a);
apr_status_t ca_store_acme_authz_set(ca_store_t *s, apr_pool_t *p,
                                     const char *id, const char *from,
                                     const char *to);
/* The challenges of an authorization (ca_acme_chall_t*). */
apr_status_t ca_store_acme_authz_challs(ca_store_t *s, apr_pool_t *p,
                                        const char *authz_id,
                                        apr_array_header_t **challs);
apr_status_t ca_store_acme_chall_get(ca_store_t *s, apr_pool_t *p,
                                     const char *id, ca_acme_chall_t **c);
apr_status_t ca_store_acme_chall_set(ca_store_t *s, apr_pool_t *p,
                                     const char *id, const char *from,
                                     const char *to, apr_int64_t validated_at,
                                     const char *error);

/* Take over a validation that has been processing since `started`
 * (the child running it went away): its start becomes `now`.
 * CA_ECONFLICT when another request took it over first. */
apr_status_t ca_store_acme_chall_restart(ca_store_t *s, apr_pool_t *p,
                                         const char *id,
                                         apr_int64_t started,
                                         apr_int64_t now);

/* Remove spent nonces past their lifetime, orders (with their
 * authorizations and challenges) that expired before `before`, and unused
 * EAB keys past their expiry. */
apr_status_t ca_store_acme_cleanup(ca_store_t *s, apr_pool_t *p,
                                   apr_int64_t now, apr_int64_t before);

#endif
