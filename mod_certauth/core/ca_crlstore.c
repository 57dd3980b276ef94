/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_crlstore.c: the next CRL from the store, kept in the store. */

#include <apr_strings.h>

#include "ca_crl.h"
#include "ca_store.h"
#include "ca_util.h"

apr_status_t ca_crl_make(apr_pool_t *p, const ca_t *ca, ca_store_t *store,
                         int days, int retention_days, apr_int64_t now,
                         apr_int64_t *number, unsigned char **der,
                         apr_size_t *der_len, int *listed, const char **err)
{
    apr_int64_t old = 0, tu = 0, nu = 0;
    apr_int64_t next = now + (apr_int64_t)days * 86400;
    apr_array_header_t *entries = NULL, *list = NULL;
    apr_status_t rv;
    int i;

    *err = NULL;
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
        /* the entries revoked by now, kept in place (no copy) */
        int kept = 0;
        list = entries;
        for (i = 0; i < entries->nelts; i++) {
            ca_crl_entry_t *e = &APR_ARRAY_IDX(entries, i, ca_crl_entry_t);
            if (e->revoked_at <= now) {
                if (kept != i) {
                    APR_ARRAY_IDX(list, kept, ca_crl_entry_t) = *e;
                }
                kept++;
            }
        }
        list->nelts = kept;
        rv = ca_crl_build(p, ca, list, old + 1, now, next, der, der_len, err);
    }
    if (rv == APR_SUCCESS) {
        rv = ca_store_crl_put(store, p, old, old + 1, now, next,
                              ca_base64_encode(p, *der, *der_len, 0));
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
