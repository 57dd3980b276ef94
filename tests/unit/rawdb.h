/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* A raw APR-util DBD (SQLite) connection of a test's own, to look behind
 * the store's back. */
#ifndef CERTAUTH_TEST_RAWDB_H
#define CERTAUTH_TEST_RAWDB_H

#include <stdio.h>
#include <stdlib.h>

#include <apr_dbd.h>
#include <apr_strings.h>

typedef struct {
    const apr_dbd_driver_t *drv;
    apr_dbd_t *h;
} raw_t;

static inline apr_status_t raw_close(void *data)
{
    raw_t *r = data;
    apr_dbd_close(r->drv, r->h);
    return APR_SUCCESS;
}

/* Open the SQLite file at path, closed with p; aborts the test program
 * when it cannot. */
static inline raw_t *raw_open(apr_pool_t *p, const char *path)
{
    raw_t *r = apr_pcalloc(p, sizeof(*r));
    const char *err = NULL;

    apr_dbd_init(p);
    if (apr_dbd_get_driver(p, "sqlite3", &r->drv) != APR_SUCCESS
        || apr_dbd_open_ex(r->drv, p, path, &r->h, &err) != APR_SUCCESS) {
        fprintf(stderr, "raw open %s: %s\n", path, err ? err : "?");
        abort();
    }
    apr_pool_cleanup_register(p, r, raw_close, apr_pool_cleanup_null);
    return r;
}

/* First column of the first row (every row read to the end), "(null)" for
 * NULL; NULL when there is no row or the query fails. */
static inline const char *raw_scalar(apr_pool_t *p, raw_t *r,
                                     const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *out = NULL;

    if (apr_dbd_select(r->drv, p, r->h, &res, sql, 0) != 0) {
        return NULL;
    }
    while (apr_dbd_get_row(r->drv, p, res, &row, -1) == 0) {
        if (!out) {
            const char *v = apr_dbd_get_entry(r->drv, row, 0);
            out = apr_pstrdup(p, v ? v : "(null)");
        }
    }
    return out;
}

/* The first column of each row, joined with "|" ("NULL" for NULL; "" when
 * there is no row, "(error)" when the query fails). */
static inline const char *raw_select(apr_pool_t *p, raw_t *r,
                                     const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *out = NULL;

    if (apr_dbd_select(r->drv, p, r->h, &res, sql, 0) != 0) {
        return "(error)";
    }
    while (apr_dbd_get_row(r->drv, p, res, &row, -1) == 0) {
        const char *v = apr_dbd_get_entry(r->drv, row, 0);
        out = out ? apr_pstrcat(p, out, "|", v ? v : "NULL", NULL)
                  : apr_pstrdup(p, v ? v : "NULL");
    }
    return out ? out : "";
}

/* A statement: the driver's return code (0: done). */
static inline int raw_exec(raw_t *r, const char *sql)
{
    int n = 0;
    return apr_dbd_query(r->drv, r->h, &n, sql);
}

/* A statement: the number of rows it changed, or -1 when it fails. */
static inline int raw_query(raw_t *r, const char *sql)
{
    int nrows = 0;
    return apr_dbd_query(r->drv, r->h, &nrows, sql) == 0 ? nrows : -1;
}

#endif
