/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store_crl.c: the CRL's entries and the CRL state row (number,
 * validity, the last CRL made). */

#include <stdlib.h>
#include <string.h>

#include <apr_dbd.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <sqlite3.h>

#include "ca_crl.h"
#include "ca_log.h"
#include "ca_store_int.h"
#include "ca_util.h"

const ca_st_stmt_def ca_st_stmts_crl[] = {
    {"certauth_crl_entries", CRL_ENTRIES_SQL("", "%lld")},
    {"certauth_count_listable",
     "SELECT COUNT(*) FROM certauth_certs "
     "WHERE status IN ('revoked', 'superseded') "
     "AND revoked_at > %lld AND revoked_at <= %lld"},
    {"certauth_crl_invalidate",
     "UPDATE certauth_crl SET next_update = 0 WHERE id = 1"},
    {"certauth_crl_raise",
     "UPDATE certauth_crl SET crl_number = %lld, next_update = 0 "
     "WHERE id = 1 AND crl_number < %lld"},
    {"certauth_crl_get",
     "SELECT crl_number, this_update, next_update, crl_der FROM certauth_crl "
     "WHERE id = 1"},
    {"certauth_crl_head",
     "SELECT crl_number, this_update, next_update FROM certauth_crl "
     "WHERE id = 1"},
    /* the same, the row locked until the transaction ends, so that the
     * front ends make their CRLs one after the other */
    {"certauth_crl_lock",
     "SELECT crl_number, this_update, next_update FROM certauth_crl "
     "WHERE id = 1{FOR_UPDATE}"},
    {"certauth_crl_put",
     "UPDATE certauth_crl SET crl_number = %lld, this_update = %lld, "
     "next_update = %lld, crl_der = %s, prev_kids = %s, prev_der = %s "
     "WHERE id = 1 AND crl_number = %lld"},
    /* after a rollover: the previous CA's CRL made with the current one */
    {"certauth_crl_prev_get",
     "SELECT crl_number, this_update, next_update, prev_kids, prev_der "
     "FROM certauth_crl WHERE id = 1"},
    {"certauth_crl_prev_head",
     "SELECT crl_number, this_update, next_update, prev_kids "
     "FROM certauth_crl WHERE id = 1"},
    {NULL, NULL}
};


/* The entries' issuers: a few CA generations, so one copy of each run
 * of the same value (the entries are in serial order, not by issuer, but
 * all but a few share the current CA's). */
static const char *intern_kid(apr_pool_t *p, const char **last,
                              const char *v)
{
    if (!*last || strcmp(*last, v)) {
        *last = apr_pstrdup(p, v);
    }
    return *last;
}

/* SQLite: the CRL query through SQLite's interface on the connection of
 * the DBD driver (apr_dbd_native_handle), one row at a time.  The driver's
 * select reads every row of the result before it returns, copying each
 * column (integers converted to text) into pool memory with a row and
 * column structure each: for a 1,000,000-entry CRL that was about half of
 * the time of making it, and ~200 MB of pool.  Here the integers are read
 * as integers and only the serial is copied. */
static apr_status_t crl_entries_sqlite(ca_store_t *s, apr_pool_t *p,
                                       apr_int64_t not_after_min,
                                       apr_array_header_t **entries)
{
    sqlite3 *db = apr_dbd_native_handle(s->driver, s->handle);
    sqlite3_stmt *st = NULL;
    const char *last_kid = NULL;
    apr_array_header_t *a;
    int rc, busy = 0;

    if (!db) {
        s->last_error = "no SQLite handle";
        return CA_EDB;
    }
    rc = sqlite3_prepare_v2(db, CRL_ENTRIES_SQL("INDEXED BY certauth_certs_crl ",
                                            "?1"), -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)not_after_min);
    }
    if (rc != SQLITE_OK) {
        s->last_error = apr_pstrdup(s->conn_pool, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return CA_EDB;
    }
    a = apr_array_make(p, 1024, sizeof(ca_crl_entry_t));
    for (;;) {
        ca_crl_entry_t *e;
        const unsigned char *v;

        rc = sqlite3_step(st);
        if (rc == SQLITE_BUSY && busy++ < 50) {
            /* as the driver does: wait and step again */
            apr_sleep(apr_time_from_msec(100));
            continue;
        }
        if (rc != SQLITE_ROW) {
            break;
        }
        e = apr_array_push(a);
        v = sqlite3_column_text(st, 0);
        e->serial = v ? apr_pstrmemdup(p, (const char *)v,
                                       (apr_size_t)sqlite3_column_bytes(st,
                                                                        0))
                      : "";
        e->revoked_at = sqlite3_column_int64(st, 1);
        e->reason = sqlite3_column_type(st, 2) == SQLITE_NULL
                        ? -1 : sqlite3_column_int(st, 2);
        e->invalidity_at = sqlite3_column_int64(st, 3);
        v = sqlite3_column_text(st, 4);
        e->issuer_kid = intern_kid(p, &last_kid, v ? (const char *)v : "");
    }
    if (rc != SQLITE_DONE) {
        s->last_error = apr_pstrdup(s->conn_pool, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return CA_EDB;
    }
    sqlite3_finalize(st);
    *entries = a;
    return APR_SUCCESS;
}

/* A ca_crl_entry_t of a CRL_ENTRIES_SQL row (ca_st_fill_fn); baton: the
 * last issuer_kid (intern_kid). */
static void entry_of(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *row,
                     void *elt, void *baton)
{
    ca_crl_entry_t *e = elt;
    const char *v;

    e->serial = ca_st_col(s, p, row, 0);
    e->revoked_at = ca_st_col_i64(s, row, 1);
    v = apr_dbd_get_entry(s->driver, row, 2);
    e->reason = v ? atoi(v) : -1;
    e->invalidity_at = ca_st_col_i64(s, row, 3);
    v = apr_dbd_get_entry(s->driver, row, 4);
    e->issuer_kid = intern_kid(p, baton, v ? v : "");
}

apr_status_t ca_store_crl_entries(ca_store_t *s, apr_pool_t *p,
                                  apr_int64_t not_after_min,
                                  apr_array_header_t **entries)
{
    const char *args[1], *last_kid = NULL;

    /* (the driver serialises its own calls into SQLite with a mutex of
     * APR's, which this path does not take: only with an SQLite built
     * thread-safe, as Debian's is) */
    if (s->d->sqlite && sqlite3_threadsafe()) {
        return crl_entries_sqlite(s, p, not_after_min, entries);
    }
    args[0] = ca_st_i64(p, not_after_min);
    return ca_st_rows(s, p, "certauth_crl_entries", 1, args,
                      sizeof(ca_crl_entry_t), entry_of, &last_kid, entries);
}

/* The CRL state row by `label`: number, thisUpdate, nextUpdate, then
 * prev_kid and der_b64 when asked for (the columns the statement has). */
static apr_status_t crl_read(ca_store_t *s, apr_pool_t *p, const char *label,
                             apr_int64_t *number, apr_int64_t *this_update,
                             apr_int64_t *next_update, const char **prev_kid,
                             const char **der_b64)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_status_t rv;
    int found = 0;

    if ((rv = ca_st_pselect(s, p, label, 0, NULL, &res)) != APR_SUCCESS) {
        return rv;
    }
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        int col = 3;
        found = 1;
        *number = ca_st_col_i64(s, row, 0);
        *this_update = ca_st_col_i64(s, row, 1);
        *next_update = ca_st_col_i64(s, row, 2);
        if (prev_kid) {
            *prev_kid = ca_st_col(s, p, row, col++);
        }
        if (der_b64) {
            *der_b64 = ca_st_col(s, p, row, col);
        }
    }
    if (!found) {
        s->last_error = "the CRL state row is missing";
        return CA_EDB;
    }
    return APR_SUCCESS;
}

apr_status_t ca_store_crl_get(ca_store_t *s, apr_pool_t *p,
                              apr_int64_t *number, apr_int64_t *this_update,
                              apr_int64_t *next_update, const char **der_b64)
{
    return crl_read(s, p, "certauth_crl_get", number, this_update,
                    next_update, NULL, der_b64);
}

apr_status_t ca_store_crl_head(ca_store_t *s, apr_pool_t *p,
                               apr_int64_t *number, apr_int64_t *this_update,
                               apr_int64_t *next_update)
{
    return crl_read(s, p, "certauth_crl_head", number, this_update,
                    next_update, NULL, NULL);
}

apr_status_t ca_store_crl_prev(ca_store_t *s, apr_pool_t *p,
                               apr_int64_t *number, apr_int64_t *this_update,
                               apr_int64_t *next_update, const char **prev_kid,
                               const char **der_b64)
{
    return crl_read(s, p, der_b64 ? "certauth_crl_prev_get"
                                   : "certauth_crl_prev_head",
                    number, this_update, next_update, prev_kid, der_b64);
}

apr_status_t ca_store_crl_lock(ca_store_t *s, apr_pool_t *p,
                               apr_int64_t *number, apr_int64_t *this_update,
                               apr_int64_t *next_update)
{
    if (!s->txn && !s->in_txn) {
        s->last_error = "ca_store_crl_lock outside a transaction";
        return CA_EDB;
    }
    return crl_read(s, p, "certauth_crl_lock", number, this_update,
                    next_update, NULL, NULL);
}

apr_status_t ca_store_crl_put(ca_store_t *s, apr_pool_t *p,
                              apr_int64_t old_number, apr_int64_t number,
                              apr_int64_t this_update, apr_int64_t next_update,
                              const char *der_b64, const char *prev_kid,
                              const char *prev_der_b64)
{
    const char *args[7];
    apr_status_t rv;
    int nrows = 0;

    args[0] = ca_st_i64(p, number);
    args[1] = ca_st_i64(p, this_update);
    args[2] = ca_st_i64(p, next_update);
    args[3] = der_b64;
    args[4] = prev_kid && prev_der_b64 ? prev_kid : "";
    args[5] = prev_kid && prev_der_b64 ? prev_der_b64 : "";
    args[6] = ca_st_i64(p, old_number);
    rv = ca_st_exec(s, p, "certauth_crl_put", 7, args, &nrows);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return nrows == 1 ? APR_SUCCESS : CA_ECONFLICT;
}


apr_status_t ca_store_count_listable(ca_store_t *s, apr_pool_t *p,
                                     apr_int64_t after, apr_int64_t until,
                                     apr_int64_t *count)
{
    const char *args[2];
    args[0] = ca_st_i64(p, after);
    args[1] = ca_st_i64(p, until);
    return ca_st_count(s, p, "certauth_count_listable", 2, args, count);
}

apr_status_t ca_store_crl_invalidate(ca_store_t *s, apr_pool_t *p)
{
    return ca_st_exec(s, p, "certauth_crl_invalidate", 0, NULL, NULL);
}

apr_status_t ca_store_crl_raise(ca_store_t *s, apr_pool_t *p,
                                apr_int64_t number)
{
    const char *args[2];

    args[0] = args[1] = ca_st_i64(p, number);
    return ca_st_exec(s, p, "certauth_crl_raise", 2, args, NULL);
}
