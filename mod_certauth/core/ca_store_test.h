/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store_test.h: what the store shows its unit tests and nobody else
 * (the module and the tools use ca_store.h only). */
#ifndef CA_STORE_TEST_H
#define CA_STORE_TEST_H

#include "ca_store.h"

/* Number of rows in the certificates table. */
apr_status_t ca_store_cert_count(ca_store_t *s, apr_pool_t *p,
                                 apr_int64_t *count);

/* The SQL text each database gets: the dialect's expansion of any SQL
 * (the token {FOR_UPDATE}), of the statement with a label, or of statement
 * i of a migration to `version` (NULL past the end).
 * ca_store_statement_label(i): the labels, NULL past the end.  driver:
 * "sqlite3", "pgsql". */
const char *ca_store_dialect_sql(apr_pool_t *p, const char *driver,
                                 const char *sql);
const char *ca_store_statement_sql(apr_pool_t *p, const char *driver,
                                   const char *label);
const char *ca_store_migration_sql(apr_pool_t *p, const char *driver,
                                   int version, int i);
const char *ca_store_statement_label(int i);

#endif
