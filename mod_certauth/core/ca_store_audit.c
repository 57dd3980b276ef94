/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store_audit.c: the audit log. */

#include <string.h>

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "ca_log.h"
#include "ca_store_int.h"
#include "ca_util.h"
#include <openssl/rand.h>

const ca_st_stmt_def ca_st_stmts_audit[] = {
    {"certauth_audit_add",
     "INSERT INTO certauth_audit (" AUDIT_COLS ") VALUES "
     "(%s, %lld, %s, %s, %s, %s, %s, %s, %s)"},
    {"certauth_audit_list",
     "SELECT " AUDIT_COLS " FROM certauth_audit "
     "ORDER BY at DESC, id LIMIT %d OFFSET %d"},
    {"certauth_audit_serial",
     "SELECT " AUDIT_COLS " FROM certauth_audit WHERE serial = %s "
     "ORDER BY at DESC, id LIMIT %d OFFSET %d"},
    {NULL, NULL}
};


apr_status_t ca_store_audit_add(ca_store_t *s, apr_pool_t *p,
                                const ca_audit_t *a)
{
    apr_dbd_prepared_t *stmt;
    const char *args[9];
    unsigned char rnd[12];
    apr_status_t rv;
    int nrows = 0, rc;

    if ((rv = ca_st_stmt(s, "certauth_audit_add", &stmt)) != APR_SUCCESS) {
        return rv;
    }
    if (a->id) {
        args[0] = a->id;
    }
    else {
        char *hex = apr_palloc(p, sizeof(rnd) * 2 + 1);
        apr_size_t i;
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            return CA_ECRYPTO;
        }
        for (i = 0; i < sizeof(rnd); i++) {
            apr_snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        }
        args[0] = hex;
    }
    args[1] = ca_st_i64(p, a->at);
    args[2] = a->actor ? a->actor : "-";
    args[3] = a->auth ? a->auth : "none";
    args[4] = a->client ? a->client : "";
    args[5] = a->action ? a->action : "";
    args[6] = a->serial ? a->serial : "";
    args[7] = a->outcome ? a->outcome : "";
    args[8] = a->detail ? a->detail : "";
    /* text from outside (a CSR's names) made valid UTF-8: PostgreSQL
     * refuses invalid bytes, and a refused row would be a lost row */
    for (rc = 2; rc < 9; rc++) {
        args[rc] = ca_utf8_clean(p, args[rc]);
    }
    rc = ca_st_write(s, p, &nrows, stmt, 9, args);
    if (rc != 0) {
        ca_st_error(s, rc);
        return CA_EDB;
    }
    return APR_SUCCESS;
}

/* A ca_audit_t * of an AUDIT_COLS row (ca_st_fill_fn). */
static void audit_of(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *row,
                     void *elt, void *baton)
{
    ca_audit_t *a = apr_pcalloc(p, sizeof(*a));
    a->id = ca_st_col(s, p, row, 0);
    a->at = ca_st_col_i64(s, row, 1);
    a->actor = ca_st_col(s, p, row, 2);
    a->auth = ca_st_col(s, p, row, 3);
    a->client = ca_st_col(s, p, row, 4);
    a->action = ca_st_col(s, p, row, 5);
    a->serial = ca_st_col(s, p, row, 6);
    a->outcome = ca_st_col(s, p, row, 7);
    a->detail = ca_st_col(s, p, row, 8);
    (void)baton;
    *(ca_audit_t **)elt = a;
}

apr_status_t ca_store_audit_list(ca_store_t *s, apr_pool_t *p,
                                 const char *serial, int limit, int offset,
                                 apr_array_header_t **rows)
{
    const char *args[3];
    int n = 0;

    if (serial) {
        args[n++] = serial;
    }
    args[n++] = apr_itoa(p, limit > 0 ? limit : 100);
    args[n++] = apr_itoa(p, offset > 0 ? offset : 0);
    return ca_st_rows(s, p, serial ? "certauth_audit_serial"
                                   : "certauth_audit_list", n, args,
                      sizeof(ca_audit_t *), audit_of, NULL, rows);
}
