/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store_audit.c: the audit log. */

#include <string.h>

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "ca_log.h"
#include "ca_store_int.h"
#include "ca_util.h"

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
    const char *args[9];
    int i;

    args[0] = a->id ? a->id : ca_st_random_id(p);
    if (!args[0]) {
        return CA_ECRYPTO;
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
    for (i = 2; i < 9; i++) {
        args[i] = ca_utf8_clean(p, args[i]);
    }
    return ca_st_exec(s, p, "certauth_audit_add", 9, args, NULL);
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
