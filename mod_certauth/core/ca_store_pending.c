/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store_pending.c: requests waiting for an administrator's approval. */

#include <string.h>

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "ca_log.h"
#include "ca_store_int.h"
#include "ca_util.h"

const ca_st_stmt_def ca_st_stmts_pending[] = {
    {"certauth_pending_add",
     "INSERT INTO certauth_pending (" PENDING_COLS ") VALUES "
     "(%s, %s, %s, %s, %s, %s, %s, %lld, %s, %lld, %s)"},
    {"certauth_pending_find",
     "SELECT " PENDING_COLS " FROM certauth_pending WHERE csr_hash = %s "
     "AND owner = %s AND profile = %s ORDER BY created_at DESC"},
    {"certauth_pending_get",
     "SELECT " PENDING_COLS " FROM certauth_pending WHERE id = %s"},
    {"certauth_pending_list",
     "SELECT " PENDING_COLS " FROM certauth_pending WHERE status = %s "
     "ORDER BY created_at, id LIMIT %d OFFSET %d"},
    {"certauth_pending_set",
     "UPDATE certauth_pending SET status = %s, decided_by = %s, "
     "decided_at = %lld, serial = %s WHERE id = %s AND status = %s"},
    {NULL, NULL}
};


/* A ca_pending_t * of a PENDING_COLS row (ca_st_fill_fn). */
static void pending_of(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *r,
                       void *elt, void *baton)
{
    ca_pending_t *c = apr_pcalloc(p, sizeof(*c));

    c->id = ca_st_col(s, p, r, 0);
    c->csr_hash = ca_st_col(s, p, r, 1);
    c->owner = ca_st_col(s, p, r, 2);
    c->profile = ca_st_col(s, p, r, 3);
    c->subject = ca_st_col(s, p, r, 4);
    c->csr_pem = ca_st_col(s, p, r, 5);
    c->status = ca_st_col(s, p, r, 6);
    c->created_at = ca_st_col_i64(s, r, 7);
    c->decided_by = ca_st_col(s, p, r, 8);
    c->decided_at = ca_st_col_i64(s, r, 9);
    c->serial = ca_st_col(s, p, r, 10);
    (void)baton;
    *(ca_pending_t **)elt = c;
}

apr_status_t ca_store_pending_add(ca_store_t *s, apr_pool_t *p,
                                  ca_pending_t *r)
{
    const char *args[11];
    const char *id = ca_st_random_id(p);

    if (!id) {
        return CA_ECRYPTO;
    }
    r->id = id;
    args[0] = r->id;
    args[1] = r->csr_hash;
    args[2] = r->owner;
    args[3] = r->profile;
    args[4] = r->subject;
    args[5] = r->csr_pem;
    args[6] = r->status;
    args[7] = ca_st_i64(p, r->created_at);
    args[8] = r->decided_by ? r->decided_by : "";
    args[9] = ca_st_i64(p, r->decided_at);
    args[10] = r->serial ? r->serial : "";
    return ca_st_exec(s, p, "certauth_pending_add", 11, args, NULL);
}

apr_status_t ca_store_pending_find(ca_store_t *s, apr_pool_t *p,
                                   const char *csr_hash, const char *owner,
                                   const char *profile, ca_pending_t **row)
{
    const char *args[3] = {csr_hash, owner, profile};
    return ca_st_row(s, p, "certauth_pending_find", 3, args,
                     sizeof(ca_pending_t *), pending_of, NULL, row);
}

apr_status_t ca_store_pending_get(ca_store_t *s, apr_pool_t *p,
                                  const char *id, ca_pending_t **row)
{
    const char *args[1] = {id};
    return ca_st_row(s, p, "certauth_pending_get", 1, args,
                     sizeof(ca_pending_t *), pending_of, NULL, row);
}

apr_status_t ca_store_pending_list(ca_store_t *s, apr_pool_t *p,
                                   const char *status, int limit, int offset,
                                   apr_array_header_t **rows)
{
    const char *args[3];
    args[0] = status;
    args[1] = apr_itoa(p, limit > 0 ? limit : 100);
    args[2] = apr_itoa(p, offset > 0 ? offset : 0);
    return ca_st_rows(s, p, "certauth_pending_list", 3, args,
                      sizeof(ca_pending_t *), pending_of, NULL, rows);
}

apr_status_t ca_store_pending_set(ca_store_t *s, apr_pool_t *p,
                                  const char *id, const char *from,
                                  const char *to, const char *by,
                                  apr_int64_t at, const char *serial)
{
    const char *args[6];
    apr_status_t rv;
    int nrows = 0;

    args[0] = to;
    args[1] = by ? by : "";
    args[2] = ca_st_i64(p, at);
    args[3] = serial ? serial : "";
    args[4] = id;
    args[5] = from;
    rv = ca_st_exec(s, p, "certauth_pending_set", 6, args, &nrows);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return nrows == 1 ? APR_SUCCESS : CA_ECONFLICT;
}
