/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store: the certificate database over APR-util DBD (sqlite3, pgsql).
 * In httpd the connection comes from mod_dbd (ca_store_wrap); the tools and
 * the unit tests open one themselves (ca_store_open).  All SQL is portable
 * between SQLite and PostgreSQL; parameters go through prepared statements
 * that are prepared once per connection and cached in its hash. */
#ifndef CA_STORE_H
#define CA_STORE_H

#include <apr_pools.h>
#include <apr_hash.h>
#include <apr_tables.h>
#include <apr_dbd.h>

typedef struct ca_store_t ca_store_t;

/* Certificate status values kept in the store. */
#define CA_STATUS_VALID      "valid"
#define CA_STATUS_REVOKED    "revoked"
#define CA_STATUS_SUPERSEDED "superseded"

typedef struct ca_cert_row_t {
    const char *serial;     /* canonical hex (ca_serial_hex)                 */
    const char *subject;    /* RFC 2253                                      */
    const char *owner;      /* who it was issued to (the login name)         */
    const char *profile;    /* profile name                                  */
    apr_int64_t not_before; /* seconds since the epoch                       */
    apr_int64_t not_after;
    apr_int64_t issued_at;
    const char *status;     /* CA_STATUS_*                                   */
    apr_int64_t revoked_at; /* 0 when not revoked                            */
    int reason;             /* RFC 5280 CRLReason code, -1 when none         */
    const char *cert_pem;   /* the certificate, PEM                          */
} ca_cert_row_t;

/* Open a connection of our own (tools, tests): driver "sqlite3" or "pgsql",
 * params as for DBDParams.  Applies the connection settings (SQLite: WAL,
 * synchronous=FULL, busy timeout, foreign keys).  Closed with pool p. */
apr_status_t ca_store_open(ca_store_t **ps, apr_pool_t *p, const char *driver,
                           const char *params, const char **err);

/* Use a connection that someone else owns (mod_dbd's ap_dbd_t): prepared
 * statements are cached in `prepared`, allocated from conn_pool (the
 * connection's lifetime).  Connection settings are applied the first time a
 * connection is seen.  The wrapper itself is allocated from p. */
apr_status_t ca_store_wrap(ca_store_t **ps, apr_pool_t *p,
                           const apr_dbd_driver_t *driver, apr_dbd_t *handle,
                           apr_hash_t *prepared, apr_pool_t *conn_pool);

/* The schema version this code needs. */
int ca_store_schema_version(void);

/* Create or upgrade the schema to ca_store_schema_version(), each migration
 * in its own transaction; idempotent, safe to call from several processes
 * (callers serialise with a lock when they can).  *version receives the
 * version now in the database.  Refuses (CA_ECONFIG) a database newer than
 * this code. */
apr_status_t ca_store_migrate(ca_store_t *s, apr_pool_t *p, int *version,
                              const char **err);

/* Insert a certificate row, committed on return.  CA_EEXIST when the serial
 * is already stored, CA_EDB on database errors. */
apr_status_t ca_store_cert_insert(ca_store_t *s, apr_pool_t *p,
                                  const ca_cert_row_t *row);

/* Look a certificate up by canonical serial: CA_ENOTFOUND or CA_EDB. */
apr_status_t ca_store_cert_get(ca_store_t *s, apr_pool_t *p,
                               const char *serial, ca_cert_row_t **row);

/* Certificates of one owner (owner NULL: all), newest first, at most limit
 * rows from offset.  *rows is an array of ca_cert_row_t*. */
apr_status_t ca_store_cert_list(ca_store_t *s, apr_pool_t *p,
                                const char *owner, int limit, int offset,
                                apr_array_header_t **rows);

/* Number of rows in the certificates table (used by tests and tools). */
apr_status_t ca_store_cert_count(ca_store_t *s, apr_pool_t *p,
                                 apr_int64_t *count);

/* A transaction on this connection (SQLite: BEGIN IMMEDIATE, so writers
 * queue; the caller reads and writes inside it).  end: commit when `commit`
 * and no statement failed, else roll back. */
apr_status_t ca_store_txn_begin(ca_store_t *s, apr_pool_t *p);
apr_status_t ca_store_txn_end(ca_store_t *s, apr_pool_t *p, int commit);

/* Valid certificates not expired at `now`: of one owner and profile, or
 * with one subject. */
apr_status_t ca_store_count_valid_owner(ca_store_t *s, apr_pool_t *p,
                                        const char *owner,
                                        const char *profile, apr_int64_t now,
                                        apr_int64_t *count);
apr_status_t ca_store_count_valid_subject(ca_store_t *s, apr_pool_t *p,
                                          const char *subject,
                                          apr_int64_t now,
                                          apr_int64_t *count);

/* The last database error as text (for the log), or "". */
const char *ca_store_last_error(ca_store_t *s);

#endif
