/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store_acme.c: the ACME server's queries (its tables: migrations 7
 * and 9 in ca_store_schema.c).
 * The SQL follows ca_store.c's portable style (lower-case identifiers,
 * %s text and %lld number parameters, keys made by the module). */

#include <string.h>

#include <apr_dbd.h>
#include <apr_strings.h>

#include "ca_store_acme.h"
#include "ca_store_int.h"
#include "ca_util.h"


#define EAB_COLS "kid, hmac_key, owner, created_at, expires, account"
#define ACCT_COLS "id, thumbprint, jwk, owner, status, contact, eab_kid, " \
                  "created_at"
#define ORDER_COLS "id, account, status, expires, identifiers, profile, " \
                   "serial, error, created_at"
#define AUTHZ_COLS "id, order_id, account, ident, status, expires"
#define CHALL_COLS "id, authz_id, type, token, status, validated_at, error"

const ca_st_stmt_def ca_st_stmts_acme[] = {
    {"certauth_acme_nonce_key_get",
     "SELECT hmac_key FROM certauth_acme_nonce_key WHERE id = 1"},
    {"certauth_acme_nonce_key_add",
     "INSERT INTO certauth_acme_nonce_key (id, hmac_key, created_at) "
     "VALUES (1, %s, %lld) ON CONFLICT (id) DO NOTHING"},
    {"certauth_acme_nonce_spend",
     "INSERT INTO certauth_acme_spent_nonces (nonce, expires) "
     "VALUES (%s, %lld) ON CONFLICT (nonce) DO NOTHING"},
    {"certauth_acme_eab_add",
     "INSERT INTO certauth_acme_eab (kid, hmac_key, "
     "owner, created_at, expires, account) VALUES "
     "(%s, %s, %s, %lld, %lld, '')"},
    {"certauth_acme_eab_get",
     "SELECT " EAB_COLS " FROM certauth_acme_eab "
     "WHERE kid = %s"},
    {"certauth_acme_eab_bind",
     "UPDATE certauth_acme_eab SET account = %s "
     "WHERE kid = %s AND account = ''"},
    {"certauth_acme_account_add",
     "INSERT INTO certauth_acme_accounts ("
     ACCT_COLS ") VALUES (%s, %s, %s, %s, "
     "%s, %s, %s, %lld) ON CONFLICT "
     "(thumbprint) DO NOTHING"},
    {"certauth_acme_account_get",
     "SELECT " ACCT_COLS " FROM certauth_acme_accounts "
     "WHERE id = %s"},
    {"certauth_acme_account_by_key",
     "SELECT " ACCT_COLS " FROM certauth_acme_accounts "
     "WHERE thumbprint = %s"},
    {"certauth_acme_account_update_c",
     "UPDATE certauth_acme_accounts SET status = %s, "
     "contact = %s WHERE id = %s"},
    {"certauth_acme_account_update",
     "UPDATE certauth_acme_accounts SET status = %s "
     "WHERE id = %s"},
    {"certauth_acme_account_rekey",
     "UPDATE certauth_acme_accounts SET thumbprint = %s, "
     "jwk = %s WHERE id = %s AND thumbprint = %s"},
    {"certauth_acme_account_orders",
     "SELECT id FROM certauth_acme_orders "
     "WHERE account = %s AND expires > "
     "%lld ORDER BY created_at DESC, id "
     "LIMIT 1000"},
    {"certauth_acme_order_add",
     "INSERT INTO certauth_acme_orders (id, account, "
     "status, expires, identifiers, profile, "
     "created_at) VALUES (%s, %s, %s, %lld, %s, %s, "
     "%lld)"},
    {"certauth_acme_authz_add",
     "INSERT INTO certauth_acme_authz (" AUTHZ_COLS
     ", seq) VALUES (%s, %s, %s, %s, %s, %lld, %d)"},
    {"certauth_acme_chall_add",
     "INSERT INTO certauth_acme_challenges (id, "
     "authz_id, type, token, status) VALUES "
     "(%s, %s, %s, %s, %s)"},
    {"certauth_acme_order_get",
     "SELECT " ORDER_COLS " FROM certauth_acme_orders "
     "WHERE id = %s"},
    {"certauth_acme_order_set",
     "UPDATE certauth_acme_orders SET status = %s, "
     "serial = CASE WHEN %s = '1' THEN %s ELSE serial END, "
     "error = CASE WHEN %s = '1' THEN %s ELSE error END "
     "WHERE id = %s AND status = %s"},
    {"certauth_acme_order_authz",
     "SELECT " AUTHZ_COLS " FROM "
     "certauth_acme_authz WHERE "
     "order_id = %s ORDER BY seq"},
    {"certauth_acme_authz_get",
     "SELECT " AUTHZ_COLS " FROM certauth_acme_authz "
     "WHERE id = %s"},
    {"certauth_acme_authz_set",
     "UPDATE certauth_acme_authz SET status = %s "
     "WHERE id = %s AND status = %s"},
    {"certauth_acme_authz_challs",
     "SELECT " CHALL_COLS " FROM "
     "certauth_acme_challenges WHERE "
     "authz_id = %s ORDER BY type"},
    {"certauth_acme_chall_get",
     "SELECT " CHALL_COLS " FROM "
     "certauth_acme_challenges WHERE id = %s"},
    {"certauth_acme_chall_set",
     "UPDATE certauth_acme_challenges SET status = %s, "
     "validated_at = %lld, error = %s "
     "WHERE id = %s AND status = %s"},
    {"certauth_acme_chall_restart",
     "UPDATE certauth_acme_challenges SET validated_at = %lld "
     "WHERE id = %s AND status = 'processing' AND validated_at = %lld"},
    {"certauth_acme_nonce_clean",
     "DELETE FROM certauth_acme_spent_nonces WHERE "
     "expires <= %lld"},
    {"certauth_acme_eab_clean",
     "DELETE FROM certauth_acme_eab WHERE "
     "account = '' AND expires <= %lld"},
    {"certauth_acme_chall_clean",
     "DELETE FROM certauth_acme_challenges WHERE "
     "authz_id IN (SELECT a.id FROM certauth_acme_authz "
     "a JOIN certauth_acme_orders o ON a.order_id = o.id "
     "WHERE o.expires <= %lld)"},
    {"certauth_acme_authz_clean",
     "DELETE FROM certauth_acme_authz WHERE "
     "order_id IN (SELECT id FROM "
     "certauth_acme_orders WHERE expires <= %lld)"},
    {"certauth_acme_order_clean",
     "DELETE FROM certauth_acme_orders WHERE "
     "expires <= %lld"},
    {NULL, NULL}
};

/* A conditional update: CA_ECONFLICT when it changed nothing. */
static apr_status_t update(ca_store_t *s, apr_pool_t *p, const char *label,
                           int nargs, const char **args)
{
    int n = 0;
    apr_status_t rv = ca_st_exec(s, p, label, nargs, args, &n);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return n >= 1 ? APR_SUCCESS : CA_ECONFLICT;
}

apr_status_t ca_store_acme_nonce_key(ca_store_t *s, apr_pool_t *p,
                                     const char *fresh, apr_int64_t now,
                                     const char **key)
{
    const char *c;
    const char *args[2] = {fresh, ca_st_i64(p, now)};
    apr_status_t rv = ca_st_row(s, p, "certauth_acme_nonce_key_get", 0, NULL,
                                sizeof(const char *), ca_st_fill_col0, NULL,
                                &c);

    if (rv == CA_ENOTFOUND && fresh) {
        /* the first process to get here makes it; the others (children,
         * front ends) read the one that won */
        rv = ca_st_exec(s, p, "certauth_acme_nonce_key_add", 2, args, NULL);
        if (rv == APR_SUCCESS) {
            rv = ca_st_row(s, p, "certauth_acme_nonce_key_get", 0, NULL,
                           sizeof(const char *), ca_st_fill_col0, NULL, &c);
        }
    }
    if (rv == APR_SUCCESS) {
        *key = c;
    }
    return rv;
}

apr_status_t ca_store_acme_nonce_spend(ca_store_t *s, apr_pool_t *p,
                                       const char *nonce,
                                       apr_int64_t expires)
{
    const char *args[2] = {nonce, ca_st_i64(p, expires)};
    apr_status_t rv = update(s, p, "certauth_acme_nonce_spend", 2, args);
    return rv == CA_ECONFLICT ? CA_EEXIST : rv;
}

apr_status_t ca_store_acme_nonce_clean(ca_store_t *s, apr_pool_t *p,
                                       apr_int64_t now)
{
    const char *args[1] = {ca_st_i64(p, now)};
    return ca_st_exec(s, p, "certauth_acme_nonce_clean", 1, args, NULL);
}

/* The ca_st_fill_fn of each table: a ca_acme_*_t * of its *_COLS. */
static void eab_of(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *r,
                   void *elt, void *baton)
{
    ca_acme_eab_t *e = apr_pcalloc(p, sizeof(*e));
    e->kid = ca_st_col(s, p, r, 0);
    e->hmac_key = ca_st_col(s, p, r, 1);
    e->owner = ca_st_col(s, p, r, 2);
    e->created_at = ca_st_col_i64(s, r, 3);
    e->expires = ca_st_col_i64(s, r, 4);
    e->account = ca_st_col(s, p, r, 5);
    (void)baton;
    *(ca_acme_eab_t **)elt = e;
}

apr_status_t ca_store_acme_eab_add(ca_store_t *s, apr_pool_t *p,
                                   const ca_acme_eab_t *e)
{
    const char *args[5] = {e->kid, e->hmac_key, e->owner,
                           ca_st_i64(p, e->created_at),
                           ca_st_i64(p, e->expires)};
    return ca_st_exec(s, p, "certauth_acme_eab_add", 5, args, NULL);
}

apr_status_t ca_store_acme_eab_get(ca_store_t *s, apr_pool_t *p,
                                   const char *kid, ca_acme_eab_t **e)
{
    const char *args[1] = {kid};
    return ca_st_row(s, p, "certauth_acme_eab_get", 1, args,
                     sizeof(ca_acme_eab_t *), eab_of, NULL, e);
}

apr_status_t ca_store_acme_eab_bind(ca_store_t *s, apr_pool_t *p,
                                    const char *kid, const char *account)
{
    const char *args[2] = {account, kid};
    return update(s, p, "certauth_acme_eab_bind", 2, args);
}

static void account_of(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *r,
                       void *elt, void *baton)
{
    ca_acme_account_t *a = apr_pcalloc(p, sizeof(*a));
    a->id = ca_st_col(s, p, r, 0);
    a->thumbprint = ca_st_col(s, p, r, 1);
    a->jwk = ca_st_col(s, p, r, 2);
    a->owner = ca_st_col(s, p, r, 3);
    a->status = ca_st_col(s, p, r, 4);
    a->contact = ca_st_col(s, p, r, 5);
    a->eab_kid = ca_st_col(s, p, r, 6);
    a->created_at = ca_st_col_i64(s, r, 7);
    (void)baton;
    *(ca_acme_account_t **)elt = a;
}

apr_status_t ca_store_acme_account_add(ca_store_t *s, apr_pool_t *p,
                                       const ca_acme_account_t *a)
{
    const char *args[8] = {a->id, a->thumbprint, a->jwk, a->owner,
                           a->status, a->contact ? a->contact : "[]",
                           a->eab_kid ? a->eab_kid : "",
                           ca_st_i64(p, a->created_at)};
    int n = 0;
    apr_status_t rv = ca_st_exec(s, p, "certauth_acme_account_add", 8, args,
                                       &n);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return n == 1 ? APR_SUCCESS : CA_EEXIST;
}

apr_status_t ca_store_acme_account_get(ca_store_t *s, apr_pool_t *p,
                                       const char *id, ca_acme_account_t **a)
{
    const char *args[1] = {id};
    return ca_st_row(s, p, "certauth_acme_account_get", 1, args,
                     sizeof(ca_acme_account_t *), account_of, NULL, a);
}

apr_status_t ca_store_acme_account_by_key(ca_store_t *s, apr_pool_t *p,
                                          const char *thumbprint,
                                          ca_acme_account_t **a)
{
    const char *args[1] = {thumbprint};
    return ca_st_row(s, p, "certauth_acme_account_by_key", 1, args,
                     sizeof(ca_acme_account_t *), account_of, NULL, a);
}

apr_status_t ca_store_acme_account_update(ca_store_t *s, apr_pool_t *p,
                                          const char *id, const char *status,
                                          const char *contact)
{
    if (contact) {
        const char *args[3] = {status, contact, id};
        return update(s, p, "certauth_acme_account_update_c", 3, args);
    }
    else {
        const char *args[2] = {status, id};
        return update(s, p, "certauth_acme_account_update", 2, args);
    }
}

apr_status_t ca_store_acme_account_rekey(ca_store_t *s, apr_pool_t *p,
                                         const char *id,
                                         const char *old_thumbprint,
                                         const char *thumbprint,
                                         const char *jwk)
{
    const char *args[4] = {thumbprint, jwk, id, old_thumbprint};
    ca_acme_account_t *other;
    apr_status_t rv = ca_store_acme_account_by_key(s, p, thumbprint, &other);

    if (rv == APR_SUCCESS) {
        return CA_EEXIST;
    }
    if (rv != CA_ENOTFOUND) {
        return rv;
    }
    return update(s, p, "certauth_acme_account_rekey", 4, args);
}

apr_status_t ca_store_acme_account_orders(ca_store_t *s, apr_pool_t *p,
                                          const char *account,
                                          apr_int64_t now,
                                          apr_array_header_t **ids)
{
    const char *args[2] = {account, ca_st_i64(p, now)};
    return ca_st_rows(s, p, "certauth_acme_account_orders", 2, args,
                      sizeof(const char *), ca_st_fill_col0, NULL, ids);
}

static void order_of(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *r,
                     void *elt, void *baton)
{
    ca_acme_order_t *o = apr_pcalloc(p, sizeof(*o));
    o->id = ca_st_col(s, p, r, 0);
    o->account = ca_st_col(s, p, r, 1);
    o->status = ca_st_col(s, p, r, 2);
    o->expires = ca_st_col_i64(s, r, 3);
    o->identifiers = ca_st_col(s, p, r, 4);
    o->profile = ca_st_col(s, p, r, 5);
    o->serial = ca_st_col(s, p, r, 6);
    o->error = ca_st_col(s, p, r, 7);
    o->created_at = ca_st_col_i64(s, r, 8);
    (void)baton;
    *(ca_acme_order_t **)elt = o;
}

static void authz_of(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *r,
                     void *elt, void *baton)
{
    ca_acme_authz_t *a = apr_pcalloc(p, sizeof(*a));
    a->id = ca_st_col(s, p, r, 0);
    a->order_id = ca_st_col(s, p, r, 1);
    a->account = ca_st_col(s, p, r, 2);
    a->ident = ca_st_col(s, p, r, 3);
    a->status = ca_st_col(s, p, r, 4);
    a->expires = ca_st_col_i64(s, r, 5);
    (void)baton;
    *(ca_acme_authz_t **)elt = a;
}

static void chall_of(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *r,
                     void *elt, void *baton)
{
    ca_acme_chall_t *h = apr_pcalloc(p, sizeof(*h));
    h->id = ca_st_col(s, p, r, 0);
    h->authz_id = ca_st_col(s, p, r, 1);
    h->type = ca_st_col(s, p, r, 2);
    h->token = ca_st_col(s, p, r, 3);
    h->status = ca_st_col(s, p, r, 4);
    h->validated_at = ca_st_col_i64(s, r, 5);
    h->error = ca_st_col(s, p, r, 6);
    (void)baton;
    *(ca_acme_chall_t **)elt = h;
}

apr_status_t ca_store_acme_order_add(ca_store_t *s, apr_pool_t *p,
                                     const ca_acme_order_t *o,
                                     const apr_array_header_t *authz,
                                     const apr_array_header_t *challs)
{
    apr_status_t rv;
    int i;

    if ((rv = ca_store_txn_begin(s, p)) != APR_SUCCESS) {
        return rv;
    }
    {
        const char *args[7] = {o->id, o->account, o->status,
                               ca_st_i64(p, o->expires), o->identifiers,
                               o->profile, ca_st_i64(p, o->created_at)};
        rv = ca_st_exec(s, p, "certauth_acme_order_add", 7, args, NULL);
    }
    for (i = 0; rv == APR_SUCCESS && i < authz->nelts; i++) {
        const ca_acme_authz_t *a = APR_ARRAY_IDX(authz, i,
                                                 ca_acme_authz_t *);
        const char *args[7] = {a->id, a->order_id, a->account, a->ident,
                               a->status, ca_st_i64(p, a->expires),
                               apr_itoa(p, i)};
        rv = ca_st_exec(s, p, "certauth_acme_authz_add",
                              7, args, NULL);
    }
    for (i = 0; rv == APR_SUCCESS && i < challs->nelts; i++) {
        const ca_acme_chall_t *c = APR_ARRAY_IDX(challs, i,
                                                 ca_acme_chall_t *);
        const char *args[5] = {c->id, c->authz_id, c->type, c->token,
                               c->status};
        rv = ca_st_exec(s, p, "certauth_acme_chall_add", 5, args, NULL);
    }
    {
        apr_status_t erv = ca_store_txn_end(s, p, rv == APR_SUCCESS);
        return rv != APR_SUCCESS ? rv : erv;
    }
}

apr_status_t ca_store_acme_order_get(ca_store_t *s, apr_pool_t *p,
                                     const char *id, ca_acme_order_t **o)
{
    const char *args[1] = {id};
    return ca_st_row(s, p, "certauth_acme_order_get", 1, args,
                     sizeof(ca_acme_order_t *), order_of, NULL, o);
}

apr_status_t ca_store_acme_order_set(ca_store_t *s, apr_pool_t *p,
                                     const char *id, const char *from,
                                     const char *to, const char *serial,
                                     const char *error)
{
    const char *args[7] = {to, serial ? "1" : "", serial ? serial : "",
                           error ? "1" : "", error ? error : "", id, from};
    return update(s, p, "certauth_acme_order_set", 7, args);
}

apr_status_t ca_store_acme_order_authz(ca_store_t *s, apr_pool_t *p,
                                       const char *order_id,
                                       apr_array_header_t **authz)
{
    const char *args[1] = {order_id};
    return ca_st_rows(s, p, "certauth_acme_order_authz", 1, args,
                      sizeof(ca_acme_authz_t *), authz_of, NULL, authz);
}

apr_status_t ca_store_acme_authz_get(ca_store_t *s, apr_pool_t *p,
                                     const char *id, ca_acme_authz_t **a)
{
    const char *args[1] = {id};
    return ca_st_row(s, p, "certauth_acme_authz_get", 1, args,
                     sizeof(ca_acme_authz_t *), authz_of, NULL, a);
}

apr_status_t ca_store_acme_authz_set(ca_store_t *s, apr_pool_t *p,
                                     const char *id, const char *from,
                                     const char *to)
{
    const char *args[3] = {to, id, from};
    return update(s, p, "certauth_acme_authz_set", 3, args);
}

apr_status_t ca_store_acme_authz_challs(ca_store_t *s, apr_pool_t *p,
                                        const char *authz_id,
                                        apr_array_header_t **challs)
{
    const char *args[1] = {authz_id};
    return ca_st_rows(s, p, "certauth_acme_authz_challs", 1, args,
                      sizeof(ca_acme_chall_t *), chall_of, NULL, challs);
}

apr_status_t ca_store_acme_chall_get(ca_store_t *s, apr_pool_t *p,
                                     const char *id, ca_acme_chall_t **c)
{
    const char *args[1] = {id};
    return ca_st_row(s, p, "certauth_acme_chall_get", 1, args,
                     sizeof(ca_acme_chall_t *), chall_of, NULL, c);
}

apr_status_t ca_store_acme_chall_set(ca_store_t *s, apr_pool_t *p,
                                     const char *id, const char *from,
                                     const char *to, apr_int64_t validated_at,
                                     const char *error)
{
    const char *args[5] = {to, ca_st_i64(p, validated_at),
                           error ? error : "", id, from};
    return update(s, p, "certauth_acme_chall_set", 5, args);
}

apr_status_t ca_store_acme_chall_restart(ca_store_t *s, apr_pool_t *p,
                                         const char *id,
                                         apr_int64_t started,
                                         apr_int64_t now)
{
    const char *args[3] = {ca_st_i64(p, now), id, ca_st_i64(p, started)};
    return update(s, p, "certauth_acme_chall_restart", 3, args);
}

apr_status_t ca_store_acme_cleanup(ca_store_t *s, apr_pool_t *p,
                                   apr_int64_t now, apr_int64_t before)
{
    const char *n[1] = {ca_st_i64(p, now)};
    const char *b[1] = {ca_st_i64(p, before)};
    apr_status_t rv;

    if ((rv = ca_store_acme_nonce_clean(s, p, now)) != APR_SUCCESS) {
        return rv;
    }
    if ((rv = ca_st_exec(s, p, "certauth_acme_eab_clean", 1, n,
                               NULL)) != APR_SUCCESS) {
        return rv;
    }
    if ((rv = ca_store_txn_begin(s, p)) != APR_SUCCESS) {
        return rv;
    }
    rv = ca_st_exec(s, p, "certauth_acme_chall_clean", 1, b, NULL);
    if (rv == APR_SUCCESS) {
        rv = ca_st_exec(s, p, "certauth_acme_authz_clean",
                              1, b, NULL);
    }
    if (rv == APR_SUCCESS) {
        rv = ca_st_exec(s, p, "certauth_acme_order_clean", 1, b, NULL);
    }
    {
        apr_status_t erv = ca_store_txn_end(s, p, rv == APR_SUCCESS);
        return rv != APR_SUCCESS ? rv : erv;
    }
}
