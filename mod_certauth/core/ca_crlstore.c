/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_crlstore.c: the next CRL from the store, kept in the store. */

#include <apr_strings.h>

#include "ca_crl.h"
#include "ca_store.h"
#include "ca_util.h"

/* The entries of `all` revoked by now and issued by the CA whose key
 * identifier is kid (or by an unknown issuer), into a new array. */
static apr_array_header_t *entries_of(apr_pool_t *p,
                                      const apr_array_header_t *all,
                                      const char *kid, apr_int64_t now)
{
    apr_array_header_t *list = apr_array_make(p, all->nelts ? all->nelts : 1,
                                              sizeof(ca_crl_entry_t));
    int i;

    for (i = 0; i < all->nelts; i++) {
        const ca_crl_entry_t *e = &APR_ARRAY_IDX(all, i, ca_crl_entry_t);
        if (e->revoked_at <= now
            && (!e->issuer_kid || !*e->issuer_kid
                || !strcmp(e->issuer_kid, kid))) {
            *(ca_crl_entry_t *)apr_array_push(list) = *e;
        }
    }
    return list;
}

apr_status_t ca_crl_make_n(apr_pool_t *p, const ca_t *ca,
                           const ca_t *const *prevs, int n_prev,
                           ca_store_t *store, int days, int retention_days,
                           apr_int64_t now, apr_int64_t *number,
                           unsigned char **der, apr_size_t *der_len,
                           int *listed, int *prev_listed, const char **err)
{
    apr_int64_t old = 0, tu = 0, nu = 0;
    apr_int64_t next = now + (apr_int64_t)days * 86400;
    apr_array_header_t *entries = NULL, *list = NULL;
    const char *kids = NULL, *ders = NULL;
    apr_status_t rv;
    int i;

    *err = NULL;
    for (i = 0; prev_listed && i < n_prev; i++) {
        prev_listed[i] = 0;
    }
    rv = ca_store_txn_begin(store, p);
    if (rv == APR_SUCCESS) {
        /* one CRL at a time across front ends: the entries are read
         * after the lock, so they include every revocation committed
         * before it */
        rv = ca_store_crl_lock(store, p, &old, &tu, &nu);
    }
    if (rv == APR_SUCCESS) {
        rv = ca_store_crl_entries(store, p,
                                  now - (apr_int64_t)retention_days * 86400,
                                  &entries);
    }
    if (rv == APR_SUCCESS) {
        /* the entries revoked by now, each on its issuer's CRL */
        list = entries_of(p, entries, ca_cert_key_id(p, ca->cert), now);
        rv = ca_crl_build(p, ca, list, old + 1, now, next, der, der_len, err);
    }
    /* each previous generation's, kept as lists: key identifiers and
     * base64 DERs, each separated by a space, in the same order */
    for (i = 0; rv == APR_SUCCESS && i < n_prev; i++) {
        const char *kid = ca_cert_key_id(p, prevs[i]->cert);
        apr_array_header_t *plist = entries_of(p, entries, kid, now);
        unsigned char *pder = NULL;
        apr_size_t pder_len = 0;
        rv = ca_crl_build(p, prevs[i], plist, old + 1, now, next, &pder,
                          &pder_len, err);
        if (rv == APR_SUCCESS) {
            const char *b64 = ca_base64_encode(p, pder, pder_len, 0);
            kids = kids ? apr_pstrcat(p, kids, " ", kid, NULL) : kid;
            ders = ders ? apr_pstrcat(p, ders, " ", b64, NULL) : b64;
            if (prev_listed) {
                prev_listed[i] = plist->nelts;
            }
        }
    }
    if (rv == APR_SUCCESS) {
        rv = ca_store_crl_put(store, p, old, old + 1, now, next,
                              ca_base64_encode(p, *der, *der_len, 0),
                              kids, ders);
    }
    if (ca_store_txn_end(store, p, rv == APR_SUCCESS) != APR_SUCCESS
        && rv == APR_SUCCESS) {
        rv = CA_EDB;
    }
    if (rv != APR_SUCCESS) {
        if (!*err) {
            *err = apr_psprintf(p, "%s", ca_store_last_error(store));
        }
        return rv;
    }
    *number = old + 1;
    *listed = list->nelts;
    return APR_SUCCESS;
}

apr_status_t ca_crl_make2(apr_pool_t *p, const ca_t *ca, const ca_t *prev,
                          ca_store_t *store, int days, int retention_days,
                          apr_int64_t now, apr_int64_t *number,
                          unsigned char **der, apr_size_t *der_len,
                          int *listed, int *prev_listed, const char **err)
{
    int pl = 0;
    apr_status_t rv = ca_crl_make_n(p, ca, prev ? &prev : NULL, prev ? 1 : 0,
                                    store, days, retention_days, now, number,
                                    der, der_len, listed, &pl, err);
    if (prev_listed) {
        *prev_listed = pl;
    }
    return rv;
}

const char *ca_crl_prev_of(apr_pool_t *p, const char *kids, const char *ders,
                           const char *kid)
{
    apr_size_t n = strlen(kid);
    const char *k = kids, *d = ders;

    while (k && d && *k) {
        const char *ke = strchr(k, ' '), *de = strchr(d, ' ');
        apr_size_t kl = ke ? (apr_size_t)(ke - k) : strlen(k);
        if (kl == n && !strncmp(k, kid, n)) {
            return de ? apr_pstrmemdup(p, d, (apr_size_t)(de - d))
                      : apr_pstrdup(p, d);
        }
        k = ke ? ke + 1 : NULL;
        d = de ? de + 1 : NULL;
    }
    return NULL;
}

apr_status_t ca_crl_make(apr_pool_t *p, const ca_t *ca, ca_store_t *store,
                         int days, int retention_days, apr_int64_t now,
                         apr_int64_t *number, unsigned char **der,
                         apr_size_t *der_len, int *listed, const char **err)
{
    return ca_crl_make2(p, ca, NULL, store, days, retention_days, now,
                        number, der, der_len, listed, NULL, err);
}
