/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store_int.h: what the files of the store share (ca_store.c and the
 * ca_store_*.c of each concern); not for the store's users. */
#ifndef CA_STORE_INT_H
#define CA_STORE_INT_H

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_time.h>

#include "ca_store.h"

/* PostgreSQL advisory lock classes (first key of pg_advisory_xact_lock):
 * schema migrations, and the checks before an insert (per-owner limits,
 * unique subjects).  "CA" in the high bytes keeps clear of other users. */
#define PG_LOCK_MIGRATE 0x43410001
#define PG_LOCK_ISSUE   0x43410002

/* What differs between the databases. */
typedef struct ca_dialect_t {
    const char *driver;         /* apr_dbd_name()                          */
    int sqlite;                 /* WAL and PRAGMAs; the writer lock        */
    /* apr_dbd_(p)select's "random" flag.  PostgreSQL: 1, the statement
     * runs synchronously and its errors are reported by the select (the
     * driver's sequential mode reports a failed statement as an empty
     * result, and waits 100 ms on every empty one). */
    int seek;
    /* Give statements a name on the server.  PostgreSQL: no; the driver
     * then sends each with its parameters (PQexecParams), so nothing is
     * lost when libpq reconnects a broken connection (PQreset in
     * apr_dbd_check_conn, called by mod_dbd), where named statements
     * would be gone from the new session. */
    int named;
    /* Transactions: NULL, the driver's (SQLite: BEGIN IMMEDIATE, so that
     * writers queue); else these statements, run by the store, which
     * tracks failures itself (the PostgreSQL driver dereferences a NULL
     * transaction when BEGIN fails on a connection that the server
     * closed). */
    const char *begin;
    /* A statement taking a lock until the end of the transaction, with
     * two %d arguments (class, key); NULL: the write transaction already
     * excludes other writers (SQLite). */
    const char *xact_lock;
    /* Expansion of the token {FOR_UPDATE} of the SQL text: lock the rows
     * read (the CRL row, while a CRL is made). */
    const char *for_update;
} ca_dialect_t;

struct ca_store_t {
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    apr_hash_t *prepared;
    apr_pool_t *conn_pool;
    const ca_dialect_t *d;
    const char *last_error;
    apr_dbd_transaction_t *txn; /* the driver's transaction (SQLite)      */
    int in_txn;                 /* a transaction of the store's own       */
    int txn_failed;             /* a statement of it failed               */
    ca_store_lock_fn wlock;     /* serialises this host's SQLite writers */
    void *wlock_baton;
    int wdepth;
    /* Bounded waits (ca_store_set_deadline): 0, or the time after which
     * no lock is waited for any more; bound_ms: the configured bound. */
    apr_time_t deadline;
    int bound_ms;
    /* What the last error means: CA_ERR_* below. */
    int err_kind;
    int keep_error;             /* last_error set by the store itself    */
    volatile apr_uint32_t *cancel; /* non-zero: stop waiting (shutdown)   */
    int (*yield)(void *);       /* non-zero: give SQLite's lock up (others
                                   wait for this connection)              */
    void *yield_baton;
    int yielded;                /* the last wait ended so                 */
};

/* Kinds of database errors (ca_store_busy, ca_store_broken). */
#define CA_ERR_OTHER  0
#define CA_ERR_BUSY   1         /* a lock not had within the bound        */
#define CA_ERR_BROKEN 2         /* the connection is unusable: reopen it  */

/* A prepared statement's label and its SQL (with {TOKEN}s). */
typedef struct {
    const char *label;
    const char *sql;
} ca_st_stmt_def;

/* The statement tables of the concerns (ca_store.c searches them). */
extern const ca_st_stmt_def ca_st_stmts_certs[];
extern const ca_st_stmt_def ca_st_stmts_crl[];
extern const ca_st_stmt_def ca_st_stmts_audit[];
extern const ca_st_stmt_def ca_st_stmts_pending[];
extern const ca_st_stmt_def ca_st_stmts_acme[];

#define CERT_COLS "serial, subject, owner, profile, not_before, not_after, " \
                  "issued_at, status, revoked_at, reason, cert_pem, " \
                  "invalidity_at, replaced_by"
/* what the look-ups read: CERT_COLS and the issuing CA's key identifier */
#define CERT_SEL_COLS CERT_COLS ", issuer_kid"
#define PENDING_COLS "id, csr_hash, owner, profile, subject, csr_pem, " \
                     "status, created_at, decided_by, decided_at, serial"
#define AUDIT_COLS "id, at, actor, auth, client, action, serial, outcome, " \
                   "detail"

/* The CRL's entries; the parameter is the lowest not_after listed.  Also
 * run through SQLite's own interface (crl_entries_sqlite). */
#define CRL_ENTRIES_SQL(indexed_by, param) \
    "SELECT serial, revoked_at, reason, invalidity_at, issuer_kid " \
    "FROM certauth_certs " \
    indexed_by "WHERE status IN ('revoked', 'superseded') AND not_after > " param " " \
    "ORDER BY serial"

/* ca_store.c */
const ca_dialect_t *ca_st_dialect_of(const char *driver);
/* The SQL text for one database: {TOKEN}s replaced. */
const char *ca_st_sql_expand(apr_pool_t *p, const ca_dialect_t *d,
                             const char *sql);
/* Record the driver's message for rc (and a failed transaction). */
void ca_st_error(ca_store_t *s, int rc);
/* The writer lock around SQLite writes (nested uses count). */
/* The prepared statement `label` of this connection (prepared once). */
apr_status_t ca_st_stmt(ca_store_t *s, const char *label,
                        apr_dbd_prepared_t **out);
/* A write statement (prepared), under the writer lock; the driver's rc. */
int ca_st_write(ca_store_t *s, apr_pool_t *p, int *nrows,
                apr_dbd_prepared_t *stmt, int nargs, const char **args);
/* Run the write statement `label` (ca_st_stmt, ca_st_write): CA_EDB with
 * the driver's message when it fails; *nrows (may be NULL) the rows
 * changed. */
apr_status_t ca_st_exec(ca_store_t *s, apr_pool_t *p, const char *label,
                        int nargs, const char **args, int *nrows);
/* Run `label`; the results in *res, to be read to the end by the caller. */
apr_status_t ca_st_pselect(ca_store_t *s, apr_pool_t *p, const char *label,
                           int nargs, const char **args,
                           apr_dbd_results_t **res);
/* A reader of rows: what one row read makes, written to `elt`, the next
 * element of the result array (elt_size bytes); baton: the reader's. */
typedef void (*ca_st_fill_fn)(ca_store_t *s, apr_pool_t *p,
                              apr_dbd_row_t *row, void *elt, void *baton);
/* Run `label` and read every row (so that the statement is reset): *rows,
 * an array of elt_size elements, one a row, written by `fill`. */
apr_status_t ca_st_rows(ca_store_t *s, apr_pool_t *p, const char *label,
                        int nargs, const char **args, apr_size_t elt_size,
                        ca_st_fill_fn fill, void *baton,
                        apr_array_header_t **rows);
/* The same for a look-up by key: the first row's element copied to *elt;
 * CA_ENOTFOUND (*elt untouched) when there is none. */
apr_status_t ca_st_row(ca_store_t *s, apr_pool_t *p, const char *label,
                       int nargs, const char **args, apr_size_t elt_size,
                       ca_st_fill_fn fill, void *baton, void *elt);
/* A ca_st_fill_fn: the row's first column (ca_st_col), a const char *. */
void ca_st_fill_col0(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *row,
                     void *elt, void *baton);
/* The single number a counting statement returns. */
apr_status_t ca_st_count(ca_store_t *s, apr_pool_t *p, const char *label,
                         int nargs, const char **args, apr_int64_t *count);
/* Plain SQL: a statement whose rows are drained, and one without rows. */
apr_status_t ca_st_select_drain(ca_store_t *s, apr_pool_t *p,
                                const char *sql);
apr_status_t ca_st_query(ca_store_t *s, const char *sql);
/* Transactions of the store (see ca_store.c) and transaction locks. */
apr_status_t ca_st_txn_open(ca_store_t *s, apr_pool_t *p);
/* The writer lock (SQLite): APR_SUCCESS or CA_EBUSY (last_error set). */
apr_status_t ca_st_wl_enter(ca_store_t *s);
void ca_st_wl_leave(ca_store_t *s);
apr_status_t ca_st_txn_close(ca_store_t *s, apr_pool_t *p, int commit);
apr_status_t ca_st_xact_lock(ca_store_t *s, apr_pool_t *p, int cls, int key);
/* A new row id (audit, pending requests): 12 random octets in lower-case
 * hex; NULL when the random generator fails. */
const char *ca_st_random_id(apr_pool_t *p);
/* Numbers as statement arguments and back. */
const char *ca_st_i64(apr_pool_t *p, apr_int64_t v);
apr_int64_t ca_st_to_i64(const char *v);
/* Column i of a row read: a copy in p ("" for NULL); as a number (0 for
 * NULL or ""). */
const char *ca_st_col(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *row,
                      int i);
apr_int64_t ca_st_col_i64(ca_store_t *s, apr_dbd_row_t *row, int i);

#endif
