/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store_certs.c: the issued certificates: insert, look-ups, status
 * changes, searches and the counts behind per-owner limits. */

#include <string.h>

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "ca_ca.h"
#include "ca_log.h"
#include "ca_store_int.h"
#include "ca_store_test.h"
#include "ca_util.h"

const ca_st_stmt_def ca_st_stmts_certs[] = {
    {"certauth_cert_insert",
     "INSERT INTO certauth_certs (" CERT_COLS ", issuer_kid) VALUES "
     "(%s, %s, %s, %s, %lld, %lld, %lld, %s, %lld, %d, %s, %lld, %s, %s) "
     "ON CONFLICT (serial) DO NOTHING"},
    {"certauth_cert_get",
     "SELECT " CERT_SEL_COLS " FROM certauth_certs WHERE serial = %s"},
    {"certauth_cert_list_owner",
     "SELECT " CERT_SEL_COLS " FROM certauth_certs WHERE owner = %s "
     "ORDER BY issued_at DESC, serial LIMIT %d OFFSET %d"},
    {"certauth_cert_list_all",
     "SELECT " CERT_SEL_COLS " FROM certauth_certs "
     "ORDER BY issued_at DESC, serial LIMIT %d OFFSET %d"},
    {"certauth_cert_count", "SELECT COUNT(*) FROM certauth_certs"},
    {"certauth_cert_set_status",
     "UPDATE certauth_certs SET status = %s, revoked_at = %lld, "
     "reason = %d, invalidity_at = %lld, replaced_by = %s "
     "WHERE serial = %s AND status = %s"},
    {"certauth_cert_search",
     "SELECT " CERT_SEL_COLS " FROM certauth_certs "
     "WHERE (%s = '' OR owner = %s) AND (%s = '' OR status = %s) "
     "AND (%s = '' OR subject LIKE %s ESCAPE '!') "
     "AND not_after <= %lld AND not_after > %lld "
     "ORDER BY issued_at DESC, serial LIMIT %d OFFSET %d"},
    {"certauth_count_valid_owner",
     "SELECT COUNT(*) FROM certauth_certs WHERE owner = %s AND profile = %s "
     "AND status = 'valid' AND not_after > %lld"},
    {"certauth_link_add",
     "INSERT INTO certauth_cert_links (serial, authorized_by) "
     "VALUES (%s, %s)"},
    {"certauth_link_children",
     "SELECT serial FROM certauth_cert_links WHERE authorized_by = %s "
     "ORDER BY serial"},
    {"certauth_link_parent",
     "SELECT authorized_by FROM certauth_cert_links WHERE serial = %s"},
    {"certauth_count_valid_subject",
     "SELECT COUNT(*) FROM certauth_certs WHERE subject = %s "
     "AND status = 'valid' AND not_after > %lld"},
    {NULL, NULL}
};


/* A ca_cert_row_t * of a CERT_SEL_COLS row (ca_st_fill_fn). */
static void row_of(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *r,
                   void *elt, void *baton)
{
    ca_cert_row_t *c = apr_pcalloc(p, sizeof(*c));

    c->serial = ca_st_col(s, p, r, 0);
    c->subject = ca_st_col(s, p, r, 1);
    c->owner = ca_st_col(s, p, r, 2);
    c->profile = ca_st_col(s, p, r, 3);
    c->not_before = ca_st_col_i64(s, r, 4);
    c->not_after = ca_st_col_i64(s, r, 5);
    c->issued_at = ca_st_col_i64(s, r, 6);
    c->status = ca_st_col(s, p, r, 7);
    c->revoked_at = ca_st_col_i64(s, r, 8);
    c->reason = (int)ca_st_col_i64(s, r, 9);
    c->cert_pem = ca_st_col(s, p, r, 10);
    c->invalidity_at = ca_st_col_i64(s, r, 11);
    c->replaced_by = ca_st_col(s, p, r, 12);
    c->issuer_kid = ca_st_col(s, p, r, 13);
    (void)baton;
    *(ca_cert_row_t **)elt = c;
}

/* The rows of `label`, ca_cert_row_t *. */
static apr_status_t select_rows(ca_store_t *s, apr_pool_t *p,
                                const char *label, int nargs,
                                const char **args, apr_array_header_t **rows)
{
    return ca_st_rows(s, p, label, nargs, args, sizeof(ca_cert_row_t *),
                      row_of, NULL, rows);
}

apr_status_t ca_store_cert_get(ca_store_t *s, apr_pool_t *p,
                               const char *serial, ca_cert_row_t **row)
{
    const char *args[1] = {serial};
    return ca_st_row(s, p, "certauth_cert_get", 1, args,
                     sizeof(ca_cert_row_t *), row_of, NULL, row);
}

apr_status_t ca_store_cert_insert(ca_store_t *s, apr_pool_t *p,
                                  const ca_cert_row_t *c)
{
    apr_dbd_prepared_t *stmt;
    const char *args[14];
    ca_cert_row_t *existing;
    apr_status_t rv;
    int nrows = 0, rc;

    if ((rv = ca_st_stmt(s, "certauth_cert_insert", &stmt)) != APR_SUCCESS) {
        return rv;
    }
    args[0] = c->serial;
    args[1] = c->subject;
    args[2] = c->owner;
    args[3] = c->profile;
    args[4] = ca_st_i64(p, c->not_before);
    args[5] = ca_st_i64(p, c->not_after);
    args[6] = ca_st_i64(p, c->issued_at);
    args[7] = c->status;
    args[8] = ca_st_i64(p, c->revoked_at);
    args[9] = apr_itoa(p, c->reason);
    args[10] = c->cert_pem;
    args[11] = ca_st_i64(p, c->invalidity_at);
    args[12] = c->replaced_by ? c->replaced_by : "";
    /* its issuer, which CRL lists it (ISSUER_MIGRATION) */
    args[13] = c->issuer_kid ? c->issuer_kid
                             : ca_pem_issuer_key_id(p, c->cert_pem);
    rc = ca_st_write(s, p, &nrows, stmt, 14, args);
    if (rc == 0 && nrows == 1) {
        return APR_SUCCESS;
    }
    if (rc != 0) {
        /* The statement failed (a taken serial is no failure: ON CONFLICT
         * DO NOTHING): its own reason, and no statement after it.  Inside
         * a PostgreSQL transaction the next one would only fail with
         * "current transaction is aborted" and replace the reason. */
        ca_st_error(s, rc);
        return CA_EDB;
    }
    s->last_error = "insert stored no row";
    /* No row and no error: a taken serial, the one failure the caller can
     * cure. */
    if (ca_store_cert_get(s, p, c->serial, &existing) == APR_SUCCESS) {
        return CA_EEXIST;
    }
    return CA_EDB;
}

apr_status_t ca_store_cert_list(ca_store_t *s, apr_pool_t *p,
                                const char *owner, int limit, int offset,
                                apr_array_header_t **rows)
{
    const char *args[3];

    if (limit <= 0) {
        limit = 100;
    }
    if (offset < 0) {
        offset = 0;
    }
    if (owner) {
        args[0] = owner;
        args[1] = apr_itoa(p, limit);
        args[2] = apr_itoa(p, offset);
        return select_rows(s, p, "certauth_cert_list_owner", 3, args, rows);
    }
    args[0] = apr_itoa(p, limit);
    args[1] = apr_itoa(p, offset);
    return select_rows(s, p, "certauth_cert_list_all", 2, args, rows);
}

apr_status_t ca_store_cert_count(ca_store_t *s, apr_pool_t *p,
                                 apr_int64_t *count)
{
    return ca_st_count(s, p, "certauth_cert_count", 0, NULL, count);
}

apr_status_t ca_store_count_valid_owner(ca_store_t *s, apr_pool_t *p,
                                        const char *owner,
                                        const char *profile, apr_int64_t now,
                                        apr_int64_t *count)
{
    const char *args[3];
    args[0] = owner;
    args[1] = profile;
    args[2] = ca_st_i64(p, now);
    return ca_st_count(s, p, "certauth_count_valid_owner", 3, args, count);
}

apr_status_t ca_store_count_valid_subject(ca_store_t *s, apr_pool_t *p,
                                          const char *subject,
                                          apr_int64_t now,
                                          apr_int64_t *count)
{
    const char *args[2];
    args[0] = subject;
    args[1] = ca_st_i64(p, now);
    return ca_st_count(s, p, "certauth_count_valid_subject", 2, args, count);
}

apr_status_t ca_store_cert_set_status(ca_store_t *s, apr_pool_t *p,
                                      const char *serial, const char *from,
                                      const char *status,
                                      apr_int64_t revoked_at, int reason,
                                      apr_int64_t invalidity_at,
                                      const char *replaced_by,
                                      ca_cert_row_t **row)
{
    const char *args[7];
    apr_status_t rv;
    int nrows = 0;

    if (row) {
        *row = NULL;
    }
    args[0] = status;
    args[1] = ca_st_i64(p, revoked_at);
    args[2] = apr_itoa(p, reason);
    args[3] = ca_st_i64(p, invalidity_at);
    args[4] = replaced_by ? replaced_by : "";
    args[5] = serial;
    args[6] = from;
    rv = ca_st_exec(s, p, "certauth_cert_set_status", 7, args, &nrows);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (nrows == 1) {
        return row ? ca_store_cert_get(s, p, serial, row) : APR_SUCCESS;
    }
    {
        ca_cert_row_t *existing;
        rv = ca_store_cert_get(s, p, serial, &existing);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (row) {
            *row = existing;
        }
        return CA_ECONFLICT;
    }
}

/* LIKE pattern for "contains", '!' escaping the wildcards. */
static const char *like_contains(apr_pool_t *p, const char *v)
{
    char *out = apr_palloc(p, strlen(v) * 2 + 3), *o = out;
    *o++ = '%';
    for (; *v; v++) {
        if (*v == '%' || *v == '_' || *v == '!') {
            *o++ = '!';
        }
        *o++ = *v;
    }
    *o++ = '%';
    *o = '\0';
    return out;
}

apr_status_t ca_store_cert_search(ca_store_t *s, apr_pool_t *p,
                                  const ca_cert_filter_t *f, int limit,
                                  int offset, apr_array_header_t **rows)
{
    const char *args[11];
    const char *owner = f->owner ? f->owner : "";
    const char *status = f->status ? f->status : "";
    const char *sub = f->subject_contains ? f->subject_contains : "";

    if (limit <= 0) {
        limit = 100;
    }
    if (offset < 0) {
        offset = 0;
    }
    if (*owner && !*status && !*sub && !f->not_after_max && !f->not_after_min) {
        /* the common case, through the owner index */
        return ca_store_cert_list(s, p, owner, limit, offset, rows);
    }
    args[0] = owner;
    args[1] = owner;
    args[2] = status;
    args[3] = status;
    args[4] = sub;
    args[5] = *sub ? like_contains(p, sub) : "";
    args[6] = ca_st_i64(p, f->not_after_max ? f->not_after_max
                                      : APR_INT64_C(9000000000000));
    args[7] = ca_st_i64(p, f->not_after_min ? f->not_after_min
                                      : APR_INT64_C(-9000000000000));
    args[8] = apr_itoa(p, limit);
    args[9] = apr_itoa(p, offset);
    return select_rows(s, p, "certauth_cert_search", 10, args, rows);
}

/* ---- links: which certificate authorised which (schema 6) ------------- */

apr_status_t ca_store_link_add(ca_store_t *s, apr_pool_t *p,
                               const char *serial, const char *authorized_by)
{
    const char *args[2] = {serial, authorized_by};
    return ca_st_exec(s, p, "certauth_link_add", 2, args, NULL);
}

static apr_status_t link_select(ca_store_t *s, apr_pool_t *p,
                                const char *label, const char *serial,
                                apr_array_header_t **out)
{
    const char *args[1] = {serial};
    return ca_st_rows(s, p, label, 1, args, sizeof(const char *),
                      ca_st_fill_col0, NULL, out);
}

apr_status_t ca_store_link_children(ca_store_t *s, apr_pool_t *p,
                                    const char *serial,
                                    apr_array_header_t **children)
{
    return link_select(s, p, "certauth_link_children", serial, children);
}

apr_status_t ca_store_link_parent(ca_store_t *s, apr_pool_t *p,
                                  const char *serial, const char **parent)
{
    apr_array_header_t *rows = NULL;
    apr_status_t rv = link_select(s, p, "certauth_link_parent", serial,
                                  &rows);

    *parent = NULL;
    if (rv == APR_SUCCESS && rows->nelts) {
        *parent = APR_ARRAY_IDX(rows, 0, const char *);
    }
    return rv;
}
