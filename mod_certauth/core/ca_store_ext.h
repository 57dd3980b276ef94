/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store_ext.h: private to the store's files (ca_store*.c).  The other
 * files of the store bring their migrations and statements; ca_store.c
 * prepares them (by label, cached per connection like its own), runs them
 * under its writer lock and records their errors. */
#ifndef CA_STORE_EXT_H
#define CA_STORE_EXT_H

#include "ca_store.h"

/* Migration 6: the ACME server's tables (ca_store_acme.c). */
extern const char *const ca_store_acme_migration[];

/* Run a write statement; *nrows (may be NULL) the rows changed. */
apr_status_t ca_store_x_query(ca_store_t *s, apr_pool_t *p, const char *label,
                              const char *sql, int nargs, const char **args,
                              int *nrows);
/* Run a select; *rows: const char ** of ncols values each ("" for NULL),
 * all rows read. */
apr_status_t ca_store_x_select(ca_store_t *s, apr_pool_t *p,
                               const char *label, const char *sql, int nargs,
                               const char **args, int ncols,
                               apr_array_header_t **rows);

#endif
