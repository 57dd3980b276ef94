/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store: the certificate database over APR-util DBD (sqlite3, pgsql).
 * In httpd the connection comes from mod_dbd (ca_store_wrap); the tools and
 * the unit tests open one themselves (ca_store_open).  The SQL is written
 * once for SQLite and PostgreSQL; what differs (row locks, column types,
 * transactions, how statements are prepared and results read) is in one
 * dialect table in ca_store.c.  Parameters go through prepared statements
 * that are prepared once per connection and cached in its hash (on
 * PostgreSQL without a name on the server, so that a reconnected session
 * needs nothing back). */
#ifndef CA_STORE_H
#define CA_STORE_H

#include <apr_pools.h>
#include <apr_hash.h>
#include <apr_tables.h>
#include <apr_dbd.h>
#include <apr_time.h>

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
    apr_int64_t invalidity_at; /* invalidityDate, 0 when none                */
    const char *replaced_by;   /* serial of the renewal, "" when none        */
    const char *issuer_kid;    /* key identifier of the issuing CA; NULL
                                  on insert: taken from cert_pem; ""
                                  when unknown                              */
} ca_cert_row_t;

typedef struct ca_audit_t {
    const char *id;         /* random, set by ca_store_audit_add when NULL  */
    apr_int64_t at;
    const char *actor;      /* login, certificate owner, or "-"             */
    const char *auth;       /* "login", "cert", "admin", "cli", "none"      */
    const char *client;     /* client address                               */
    const char *action;     /* "enroll", "renew", "revoke", "crl", ...      */
    const char *serial;     /* "" when none                                 */
    const char *outcome;    /* "ok", "refused", "error"                     */
    const char *detail;     /* reason of a refusal, profile, ...            */
} ca_audit_t;

/* A search of certificates; NULL/0 fields do not filter. */
typedef struct ca_cert_filter_t {
    const char *owner;
    const char *status;
    const char *subject_contains;
    apr_int64_t not_after_max;  /* 0: no bound (expiring before this)       */
    apr_int64_t not_after_min;  /* 0: no bound (not expired before this)    */
} ca_cert_filter_t;

/* Open a connection of our own (tools, tests): driver "sqlite3" or "pgsql",
 * params as for DBDParams.  Applies the connection settings (SQLite: WAL,
 * synchronous=FULL, busy timeout, foreign keys).  Closed with pool p. */
apr_status_t ca_store_open(ca_store_t **ps, apr_pool_t *p, const char *driver,
                           const char *params, const char **err);

/* Use a connection that someone else owns (mod_dbd's ap_dbd_t): prepared
 * statements are cached in `prepared`, allocated from conn_pool (the
 * connection's lifetime).  Connection settings are applied the first time a
 * connection is seen.  The wrapper itself is allocated from p. */
/* Writers of one host queue on a lock of the caller's (httpd: a global
 * mutex) instead of inside SQLite: lock(baton, 1) is called before a write
 * transaction or a write statement outside one, lock(baton, 0) after.
 * Ignored for databases other than SQLite. */
/* lock(baton, 1, deadline, &why) returns APR_SUCCESS once held, or
 * CA_EBUSY (with *why: what was busy) when it could not be had before
 * `deadline` (0: no bound) or too many are waiting already. */
/* lock(baton, CA_STORE_ADMIT, deadline, &why): only the admission (a
 * write unit queued for another thread's group commit counts as waiting),
 * CA_EBUSY when too many wait already and the unit is to be refused,
 * APR_EAGAIN when it is to ask again later (not admitted yet);
 * CA_STORE_ADMIT_END gives it back (lock 0 does too). */
/* lock(baton, CA_STORE_THROUGH, 0, NULL): the holder got SQLite's write
 * lock (BEGIN IMMEDIATE succeeded): the write path moves. */
#define CA_STORE_ADMIT     2
#define CA_STORE_ADMIT_END 3
#define CA_STORE_THROUGH   4
/* lock(baton, CA_STORE_STALLED, 0, NULL): CA_EBUSY when the write path is
 * stalled (no writer got through lately: a lock held elsewhere), else
 * APR_SUCCESS.  A group commit's leader then runs its own unit alone, so
 * that the units queued behind it count against the admission limit
 * (CA_STORE_ADMIT) instead of waiting with it. */
#define CA_STORE_STALLED   5
typedef apr_status_t (*ca_store_lock_fn)(void *baton, int lock,
                                         apr_time_t deadline,
                                         const char **why);
void ca_store_set_writer_lock(ca_store_t *s, ca_store_lock_fn fn,
                              void *baton);

/* Bound the waits of this store's work: no lock (the writer lock, SQLite's
 * write lock, PostgreSQL row and advisory locks) is waited for after
 * `deadline` (0: no bound, the tools).  bound_ms: the configured bound per
 * request, which PostgreSQL connections get as their lock_timeout and
 * statement_timeout.  A wait that runs out fails with CA_EBUSY where the
 * function says so (ca_store_txn_begin), else CA_EDB with
 * ca_store_busy() true. */
void ca_store_set_deadline(ca_store_t *s, apr_time_t deadline, int bound_ms);
/* A flag that, once non-zero, ends SQLite's wait for its write lock before
 * the deadline (a process that shuts down). */
void ca_store_set_cancel(ca_store_t *s, volatile apr_uint32_t *flag);
/* Asked now and then while SQLite's write lock is waited for (after the
 * first CA_STORE_YIELD_AFTER_MS of the wait): non-zero ends the wait before the deadline
 * (CA_EBUSY), e.g. because other requests wait for the connection this
 * one holds while another program keeps the lock. */
#define CA_STORE_YIELD_AFTER_MS 300
void ca_store_set_yield(ca_store_t *s, int (*fn)(void *), void *baton);
/* The last error was a lock not had in time (busy, lock timeout). */
int ca_store_busy(ca_store_t *s);
/* The last error says the connection itself is unusable (SQLite:
 * read-only, I/O error, corrupt, cannot open, not a database; PostgreSQL:
 * connection lost): it should be discarded and another one opened. */
int ca_store_broken(ca_store_t *s);
/* Discard the connection.  SQLite: closed under the driver so that the
 * owner drops it (mod_dbd: apr_dbd_check_conn fails, and its pool
 * invalidates it); the store must not be used afterwards.  PostgreSQL:
 * the server is asked to end the session (pg_terminate_backend of its own
 * backend), so that the next check (mod_dbd's apr_dbd_check_conn, or
 * ca_store_check) reconnects it with libpq's PQreset: a new session, with
 * the settings and the server of that time (a connection whose server
 * turned read-only).  APR_ENOTIMPL for other drivers. */
apr_status_t ca_store_discard(ca_store_t *s);
/* When this connection was set up (its first use by the store). */
apr_time_t ca_store_opened(ca_store_t *s);
/* The end of a user of the store: a transaction still open is rolled back
 * and the writer lock given back. */
void ca_store_release(ca_store_t *s, apr_pool_t *p);

apr_status_t ca_store_wrap(ca_store_t **ps, apr_pool_t *p,
                           const apr_dbd_driver_t *driver, apr_dbd_t *handle,
                           apr_hash_t *prepared, apr_pool_t *conn_pool);

/* Make sure a connection that has been kept (mod_dbd's pool) still works,
 * before its first use in a request: a trivial statement; when that fails,
 * the driver is asked to reconnect (apr_dbd_check_conn; PostgreSQL:
 * PQreset) and the statement is tried once more.  CA_EDB when the database
 * cannot be reached.  SQLite: CA_EDB with ca_store_broken() true when the
 * connection was opened read-only (the file was not writable then) and the
 * file is writable now, so that the caller discards and reopens it. */
apr_status_t ca_store_check(ca_store_t *s, apr_pool_t *p);

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

/* A transaction on this connection (SQLite: BEGIN IMMEDIATE, so writers
 * queue; PostgreSQL: BEGIN, READ COMMITTED, rows changed are locked until
 * the end; the caller reads and writes inside it).  end: commit when `commit`
 * and no statement failed, else roll back.  This is where a writer waits
 * (the writer lock, then SQLite's write lock): begin returns CA_EBUSY when
 * that did not happen before the deadline (ca_store_set_deadline), CA_EDB
 * on other errors. */
apr_status_t ca_store_txn_begin(ca_store_t *s, apr_pool_t *p);
apr_status_t ca_store_txn_end(ca_store_t *s, apr_pool_t *p, int commit);

/* A write unit: statements run on s inside a transaction the caller of
 * ca_store_run_unit provides (no ca_store_txn_begin of its own);
 * APR_SUCCESS keeps them, anything else rolls them back. */
typedef apr_status_t (*ca_store_unit_fn)(ca_store_t *s, apr_pool_t *p,
                                         void *baton);
/* Run one write unit durably (ca_store_batch.c): on SQLite, concurrent
 * units of this process share one transaction and one synced commit
 * (group commit; each in a savepoint, so a failing unit is undone alone),
 * and this returns once the commit holding the unit is on disk; the unit
 * may run on another thread's connection (s itself gets the last error).
 * Elsewhere, and inside an open transaction, the unit runs in a
 * transaction of its own (resp. the open one). */
apr_status_t ca_store_run_unit(ca_store_t *s, apr_pool_t *p,
                               ca_store_unit_fn fn, void *baton);
/* An audit record that needs no fsync of its own before the caller
 * answers (a refusal): SQLite commits it without syncing (it is on disk
 * with the next synced commit or checkpoint), PostgreSQL with
 * synchronous_commit off. */
apr_status_t ca_store_audit_add_lazy(ca_store_t *s, apr_pool_t *p,
                                     const ca_audit_t *a);

/* Inside a transaction: wait until no other transaction holds `key`, and
 * hold it until this one ends (PostgreSQL: a transaction-level advisory
 * lock on a hash of the key; SQLite: nothing to do, its write transaction
 * excludes the other writers).  For a check followed by an insert, e.g. a
 * per-owner limit, that several front ends must not both pass. */
apr_status_t ca_store_txn_lock(ca_store_t *s, apr_pool_t *p, const char *key);

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

/* Change the status of a certificate that has status `from`: revoke
 * (CA_STATUS_REVOKED) or supersede (CA_STATUS_SUPERSEDED, reason 4).
 * CA_ENOTFOUND when there is no such serial, CA_ECONFLICT when its status
 * is not `from` (*row then holds the stored row), CA_EDB on errors. */
apr_status_t ca_store_cert_set_status(ca_store_t *s, apr_pool_t *p,
                                      const char *serial, const char *from,
                                      const char *status,
                                      apr_int64_t revoked_at, int reason,
                                      apr_int64_t invalidity_at,
                                      const char *replaced_by,
                                      ca_cert_row_t **row);

/* Search, newest first. */
apr_status_t ca_store_cert_search(ca_store_t *s, apr_pool_t *p,
                                  const ca_cert_filter_t *f, int limit,
                                  int offset, apr_array_header_t **rows);

/* Revoked and superseded certificates whose notAfter is later than
 * `not_after_min`, by serial: an array of ca_crl_entry_t (ca_crl.h). */
apr_status_t ca_store_crl_entries(ca_store_t *s, apr_pool_t *p,
                                  apr_int64_t not_after_min,
                                  apr_array_header_t **entries);

/* Revoked or superseded certificates whose revocation time lies in
 * (after, until]: superseded ones whose grace ended since a CRL was made. */
apr_status_t ca_store_count_listable(ca_store_t *s, apr_pool_t *p,
                                     apr_int64_t after, apr_int64_t until,
                                     apr_int64_t *count);

/* The stored CRL: number (0: none yet), this/next update, DER (base64). */
apr_status_t ca_store_crl_get(ca_store_t *s, apr_pool_t *p,
                              apr_int64_t *number, apr_int64_t *this_update,
                              apr_int64_t *next_update, const char **der_b64);
/* The same without the CRL itself (cheap). */
apr_status_t ca_store_crl_head(ca_store_t *s, apr_pool_t *p,
                               apr_int64_t *number, apr_int64_t *this_update,
                               apr_int64_t *next_update);
/* The same inside a transaction, the state row locked until it ends, so
 * that CRLs are made one after the other across processes and hosts
 * (PostgreSQL: SELECT ... FOR UPDATE; SQLite: the write transaction
 * already excludes other writers).  CA_EDB outside a transaction. */
apr_status_t ca_store_crl_lock(ca_store_t *s, apr_pool_t *p,
                               apr_int64_t *number, apr_int64_t *this_update,
                               apr_int64_t *next_update);
/* Store a new CRL if the stored number is still `old_number`; CA_ECONFLICT
 * when another writer was first.  prev_kid, prev_der_b64: after a rollover,
 * the previous CA's CRL made with it (same number and dates) and that CA's
 * key identifier (ca_cert_key_id); NULL: none.  After several rollovers
 * each is a list, separated by spaces, one for each previous generation
 * (ca_crl_make_n, ca_crl_prev_of). */
apr_status_t ca_store_crl_put(ca_store_t *s, apr_pool_t *p,
                              apr_int64_t old_number, apr_int64_t number,
                              apr_int64_t this_update, apr_int64_t next_update,
                              const char *der_b64, const char *prev_kid,
                              const char *prev_der_b64);
/* The previous CA's CRL stored with the current one: the number and dates
 * of the stored CRL, the key identifier of the CA it was made for ("":
 * none) and, when der_b64 is not NULL, the CRL (base64 DER); the lists of
 * ca_store_crl_put after several rollovers. */
apr_status_t ca_store_crl_prev(ca_store_t *s, apr_pool_t *p,
                               apr_int64_t *number, apr_int64_t *this_update,
                               apr_int64_t *next_update, const char **prev_kid,
                               const char **der_b64);

/* Mark the stored CRL out of date (a revocation made outside httpd): the
 * front ends make a new one at their next database check. */
apr_status_t ca_store_crl_invalidate(ca_store_t *s, apr_pool_t *p);

/* Raise the stored CRL number to `number` when it is lower (the next CRL
 * gets number + 1) and mark the stored CRL out of date; a no-op when the
 * stored number is already as high (an import from openssl ca: the CRL
 * numbers continue above the old ones). */
apr_status_t ca_store_crl_raise(ca_store_t *s, apr_pool_t *p,
                                apr_int64_t number);

/* The audit log. */
apr_status_t ca_store_audit_add(ca_store_t *s, apr_pool_t *p,
                                const ca_audit_t *a);
/* Newest first; serial NULL: all.  *rows: ca_audit_t*. */
apr_status_t ca_store_audit_list(ca_store_t *s, apr_pool_t *p,
                                 const char *serial, int limit, int offset,
                                 apr_array_header_t **rows);

/* A request waiting for an administrator (manual approval). */
typedef struct ca_pending_t {
    const char *id;         /* random hex, set by ca_store_pending_add     */
    const char *csr_hash;   /* SHA-256 of the CSR's DER, hex               */
    const char *owner;
    const char *profile;
    const char *subject;    /* the CSR's subject, for the administrator    */
    const char *csr_pem;
    const char *status;     /* "pending", "approved", "rejected", "issued" */
    apr_int64_t created_at;
    const char *decided_by;
    apr_int64_t decided_at;
    const char *serial;     /* the certificate once issued                 */
} ca_pending_t;

apr_status_t ca_store_pending_add(ca_store_t *s, apr_pool_t *p,
                                  ca_pending_t *row);
/* The newest request with this CSR from this owner for this profile. */
apr_status_t ca_store_pending_find(ca_store_t *s, apr_pool_t *p,
                                   const char *csr_hash, const char *owner,
                                   const char *profile, ca_pending_t **row);
apr_status_t ca_store_pending_get(ca_store_t *s, apr_pool_t *p,
                                  const char *id, ca_pending_t **row);
/* Oldest first; *rows: ca_pending_t*. */
apr_status_t ca_store_pending_list(ca_store_t *s, apr_pool_t *p,
                                   const char *status, int limit, int offset,
                                   apr_array_header_t **rows);
/* Move a request from status `from` to `to`; CA_ECONFLICT when its status
 * was not `from`. */
apr_status_t ca_store_pending_set(ca_store_t *s, apr_pool_t *p,
                                  const char *id, const char *from,
                                  const char *to, const char *by,
                                  apr_int64_t at, const char *serial);

/* The last database error as text (for the log), or "". */
const char *ca_store_last_error(ca_store_t *s);

/* Links (schema 6): serial was issued on the strength of the certificate
 * authorized_by alone; the serials it authorised; its authoriser (NULL
 * when none). */
apr_status_t ca_store_link_add(ca_store_t *s, apr_pool_t *p,
                               const char *serial,
                               const char *authorized_by);
apr_status_t ca_store_link_children(ca_store_t *s, apr_pool_t *p,
                                    const char *serial,
                                    apr_array_header_t **children);
apr_status_t ca_store_link_parent(ca_store_t *s, apr_pool_t *p,
                                  const char *serial, const char **parent);

#endif
