/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store.c: the certificate database over APR-util DBD.
 *
 * Statements are prepared lazily, by label, once per connection, and cached
 * in the connection's hash (mod_dbd's ap_dbd_t->prepared in httpd): SQLite
 * cannot prepare a statement before its tables exist, and the schema is
 * created by ca_store_migrate on the first connection.
 *
 * SQLite and PostgreSQL: the SQL below is written once; what differs
 * between the two is in the dialect table (ca_dialect_t) and nowhere else:
 * tokens in the SQL text such as {FOR_UPDATE} are expanded per database
 * (sql_expand), and the dialect says how transactions start, how results
 * are read and how statements are prepared.  Common to both, and so not in
 * the table: identifiers in lower case and never quoted (PostgreSQL folds
 * unquoted names to lower case), "INSERT ... ON CONFLICT (key) DO NOTHING"
 * (SQLite 3.24 and later), parameters written %s for text and %lld or %d
 * for numbers (typed as the columns they meet: the pgsql driver declares
 * these types for named statements; with unnamed ones, as used here, the
 * server infers the same types from the SQL), keys made
 * by the module (random serials and ids) rather than by the database. */

#include <string.h>

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <openssl/rand.h>
#include <apr_time.h>
#include <sqlite3.h>

#include "ca_crl.h"
#include "ca_log.h"
#include "ca_store.h"
#include "ca_util.h"

#define SCHEMA_VERSION 5
#define INIT_MARK "certauth__init"
#define CA_STORE_BUSY_MS "250"

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
    /* Expansions of the tokens of the SQL text. */
    const char *for_update;     /* {FOR_UPDATE}: lock the rows read      */
    const char *blob;           /* {BLOB}: a binary column type          */
    const char *id_pk;          /* {ID_PK}: an automatic integer key     */
} ca_dialect_t;

static const ca_dialect_t dialects[] = {
    {"sqlite3", 1, 0, 1, NULL, NULL, "", "BLOB",
     "INTEGER PRIMARY KEY AUTOINCREMENT"},
    {"pgsql", 0, 1, 0, "BEGIN", "SELECT pg_advisory_xact_lock(%d, %d)",
     " FOR UPDATE", "BYTEA", "BIGSERIAL PRIMARY KEY"},
    {NULL, 0, 0, 0, NULL, NULL, NULL, NULL, NULL}
};

/* Unknown drivers get SQLite's dialect minus its PRAGMAs: plain SQL. */
static const ca_dialect_t generic = {
    "generic", 0, 0, 1, NULL, NULL, "", "BLOB",
    "INTEGER PRIMARY KEY"
};

static const ca_dialect_t *dialect_of(const char *driver)
{
    const ca_dialect_t *d;

    for (d = dialects; d->driver; d++) {
        if (driver && !strcmp(d->driver, driver)) {
            return d;
        }
    }
    return &generic;
}

/* The SQL text for one database: {TOKEN}s replaced. */
static const char *sql_expand(apr_pool_t *p, const ca_dialect_t *d,
                              const char *sql)
{
    static const struct {
        const char *token;
        apr_size_t off;
    } tokens[] = {
        {"{FOR_UPDATE}", APR_OFFSETOF(ca_dialect_t, for_update)},
        {"{BLOB}", APR_OFFSETOF(ca_dialect_t, blob)},
        {"{ID_PK}", APR_OFFSETOF(ca_dialect_t, id_pk)},
    };
    const char *out = sql, *b;
    apr_size_t i;

    while ((b = strchr(out, '{')) != NULL) {
        for (i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
            apr_size_t n = strlen(tokens[i].token);
            if (!strncmp(b, tokens[i].token, n)) {
                const char *v = *(const char *const *)
                                    ((const char *)d + tokens[i].off);
                out = apr_pstrcat(p, apr_pstrndup(p, out,
                                                  (apr_size_t)(b - out)),
                                  v, b + n, NULL);
                break;
            }
        }
        if (i == sizeof(tokens) / sizeof(tokens[0])) {
            break; /* not a token: a brace in a literal, leave it */
        }
    }
    return out;
}

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
};

/* The writer lock: taken before a write transaction or a write statement
 * outside one, released after; nested uses count.  SQLite only: the
 * driver holds one process-wide mutex while SQLite waits for a busy
 * database, so writers of one process waiting for each other inside SQLite
 * would also stop everybody else (see ca_store_set_writer_lock).
 * PostgreSQL waits for row locks in the server, per connection. */
static void wl_enter(ca_store_t *s)
{
    if (s->wlock && s->d->sqlite && s->wdepth++ == 0) {
        s->wlock(s->wlock_baton, 1);
    }
}

static void wl_leave(ca_store_t *s)
{
    if (s->wlock && s->d->sqlite && s->wdepth > 0 && --s->wdepth == 0) {
        s->wlock(s->wlock_baton, 0);
    }
}

static void set_error(ca_store_t *s, int rc);

/* A write statement (prepared), under the writer lock. */
static int write_pquery(ca_store_t *s, apr_pool_t *p, int *nrows,
                        apr_dbd_prepared_t *stmt, int nargs,
                        const char **args)
{
    int rc;

    wl_enter(s);
    rc = apr_dbd_pquery(s->driver, p, s->handle, nrows, stmt, nargs, args);
    wl_leave(s);
    return rc;
}

void ca_store_set_writer_lock(ca_store_t *s, ca_store_lock_fn fn,
                              void *baton)
{
    s->wlock = fn;
    s->wlock_baton = baton;
}

/* Migrations: each a list of portable statements, applied in order. */
static const char *const migration_1[] = {
    "CREATE TABLE certauth_certs ("
    " serial VARCHAR(64) PRIMARY KEY,"
    " subject TEXT NOT NULL,"
    " owner VARCHAR(255) NOT NULL,"
    " profile VARCHAR(64) NOT NULL,"
    " not_before BIGINT NOT NULL,"
    " not_after BIGINT NOT NULL,"
    " issued_at BIGINT NOT NULL,"
    " status VARCHAR(16) NOT NULL,"
    " revoked_at BIGINT NOT NULL DEFAULT 0,"
    " reason INTEGER NOT NULL DEFAULT -1,"
    " cert_pem TEXT NOT NULL)",
    "CREATE INDEX certauth_certs_owner ON certauth_certs (owner)",
    "CREATE INDEX certauth_certs_subject ON certauth_certs (subject)",
    "CREATE INDEX certauth_certs_status ON certauth_certs (status, not_after)",
    NULL
};

/* 2: revocation details, the CRL state, the audit log. */
static const char *const migration_2[] = {
    "ALTER TABLE certauth_certs ADD COLUMN invalidity_at BIGINT NOT NULL "
    "DEFAULT 0",
    "ALTER TABLE certauth_certs ADD COLUMN replaced_by VARCHAR(64) NOT NULL "
    "DEFAULT ''",
    "CREATE TABLE certauth_crl ("
    " id INTEGER PRIMARY KEY,"
    " crl_number BIGINT NOT NULL,"
    " this_update BIGINT NOT NULL,"
    " next_update BIGINT NOT NULL,"
    " crl_der TEXT NOT NULL)",
    "INSERT INTO certauth_crl (id, crl_number, this_update, next_update, "
    "crl_der) VALUES (1, 0, 0, 0, '')",
    "CREATE TABLE certauth_audit ("
    " id VARCHAR(32) PRIMARY KEY,"
    " at BIGINT NOT NULL,"
    " actor VARCHAR(255) NOT NULL,"
    " auth VARCHAR(16) NOT NULL,"
    " client VARCHAR(64) NOT NULL,"
    " action VARCHAR(16) NOT NULL,"
    " serial VARCHAR(64) NOT NULL,"
    " outcome VARCHAR(16) NOT NULL,"
    " detail TEXT NOT NULL)",
    "CREATE INDEX certauth_audit_at ON certauth_audit (at)",
    "CREATE INDEX certauth_audit_serial ON certauth_audit (serial)",
    NULL
};

/* 3: requests waiting for an administrator's approval. */
static const char *const migration_3[] = {
    "CREATE TABLE certauth_pending ("
    " id VARCHAR(32) PRIMARY KEY,"
    " csr_hash VARCHAR(64) NOT NULL,"
    " owner VARCHAR(255) NOT NULL,"
    " profile VARCHAR(64) NOT NULL,"
    " subject TEXT NOT NULL,"
    " csr_pem TEXT NOT NULL,"
    " status VARCHAR(16) NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " decided_by VARCHAR(255) NOT NULL DEFAULT '',"
    " decided_at BIGINT NOT NULL DEFAULT 0,"
    " serial VARCHAR(64) NOT NULL DEFAULT '')",
    "CREATE INDEX certauth_pending_hash ON certauth_pending (csr_hash)",
    "CREATE INDEX certauth_pending_status ON certauth_pending "
    "(status, created_at)",
    NULL
};

/* 4: the CRL query (certauth_crl_entries) reads only an index: with the
 * (status, not_after) index it fetched every listed row from the table
 * (the certificate PEM included): 1.4 s of a 1,000,000-entry CRL on SQLite
 * here, 0.6 s with this one.  The old index is its prefix, so the other
 * status queries use it the same way, and an insert still updates one
 * status index. */
static const char *const migration_4[] = {
    "DROP INDEX IF EXISTS certauth_certs_status",
    "CREATE INDEX certauth_certs_status_crl ON certauth_certs "
    "(status, not_after, serial, revoked_at, reason, invalidity_at)",
    NULL
};

/* 5: the CRL's entries in serial order without a sort: a partial index
 * of the listed certificates only (inserts of valid ones add nothing to
 * it), covering the CRL query.  The query of version 4 read the status
 * index and sorted 1,000,000 entries by serial (0.55 s on SQLite here);
 * through this index 0.33 s.  SQLite's planner, without statistics,
 * prefers the status index, so the SQLite query names this one (INDEXED
 * BY, crl_entries_sqlite); PostgreSQL's planner chooses itself. */
static const char *const migration_5[] = {
    "CREATE INDEX certauth_certs_crl ON certauth_certs "
    "(serial, not_after, revoked_at, reason, invalidity_at, status) "
    "WHERE status IN ('revoked', 'superseded')",
    NULL
};

static const char *const *const migrations[SCHEMA_VERSION] = {
    migration_1,
    migration_2,
    migration_3,
    migration_4,
    migration_5,
};

/* Prepared statements by label. */
typedef struct {
    const char *label;
    const char *sql;
} stmt_def;

#define CERT_COLS "serial, subject, owner, profile, not_before, not_after, " \
                  "issued_at, status, revoked_at, reason, cert_pem, " \
                  "invalidity_at, replaced_by"
#define PENDING_COLS "id, csr_hash, owner, profile, subject, csr_pem, " \
                     "status, created_at, decided_by, decided_at, serial"
#define AUDIT_COLS "id, at, actor, auth, client, action, serial, outcome, " \
                   "detail"

/* The CRL's entries; the parameter is the lowest not_after listed.  Also
 * run through SQLite's own interface (crl_entries_sqlite). */
#define CRL_ENTRIES_SQL(indexed_by, param) \
    "SELECT serial, revoked_at, reason, invalidity_at FROM certauth_certs " \
    indexed_by "WHERE status IN ('revoked', 'superseded') AND not_after > " param " " \
    "ORDER BY serial"

static const stmt_def stmts[] = {
    {"certauth_cert_insert",
     "INSERT INTO certauth_certs (" CERT_COLS ") VALUES "
     "(%s, %s, %s, %s, %lld, %lld, %lld, %s, %lld, %d, %s, %lld, %s) "
     "ON CONFLICT (serial) DO NOTHING"},
    {"certauth_cert_get",
     "SELECT " CERT_COLS " FROM certauth_certs WHERE serial = %s"},
    {"certauth_cert_list_owner",
     "SELECT " CERT_COLS " FROM certauth_certs WHERE owner = %s "
     "ORDER BY issued_at DESC, serial LIMIT %d OFFSET %d"},
    {"certauth_cert_list_all",
     "SELECT " CERT_COLS " FROM certauth_certs "
     "ORDER BY issued_at DESC, serial LIMIT %d OFFSET %d"},
    {"certauth_cert_count", "SELECT COUNT(*) FROM certauth_certs"},
    {"certauth_cert_set_status",
     "UPDATE certauth_certs SET status = %s, revoked_at = %lld, "
     "reason = %d, invalidity_at = %lld, replaced_by = %s "
     "WHERE serial = %s AND status = %s"},
    {"certauth_crl_entries", CRL_ENTRIES_SQL("", "%lld")},
    {"certauth_count_listable",
     "SELECT COUNT(*) FROM certauth_certs "
     "WHERE status IN ('revoked', 'superseded') "
     "AND revoked_at > %lld AND revoked_at <= %lld"},
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
    {"certauth_crl_invalidate",
     "UPDATE certauth_crl SET next_update = 0 WHERE id = 1"},
    {"certauth_crl_raise",
     "UPDATE certauth_crl SET crl_number = %lld, next_update = 0 "
     "WHERE id = 1 AND crl_number < %lld"},
    {"certauth_crl_get",
     "SELECT crl_number, this_update, next_update, crl_der FROM certauth_crl "
     "WHERE id = 1"},
    {"certauth_crl_head",
     "SELECT crl_number, this_update, next_update FROM certauth_crl "
     "WHERE id = 1"},
    /* the same, the row locked until the transaction ends, so that the
     * front ends make their CRLs one after the other */
    {"certauth_crl_lock",
     "SELECT crl_number, this_update, next_update FROM certauth_crl "
     "WHERE id = 1{FOR_UPDATE}"},
    {"certauth_crl_put",
     "UPDATE certauth_crl SET crl_number = %lld, this_update = %lld, "
     "next_update = %lld, crl_der = %s WHERE id = 1 AND crl_number = %lld"},
    {"certauth_audit_add",
     "INSERT INTO certauth_audit (" AUDIT_COLS ") VALUES "
     "(%s, %lld, %s, %s, %s, %s, %s, %s, %s)"},
    {"certauth_audit_list",
     "SELECT " AUDIT_COLS " FROM certauth_audit "
     "ORDER BY at DESC, id LIMIT %d OFFSET %d"},
    {"certauth_audit_serial",
     "SELECT " AUDIT_COLS " FROM certauth_audit WHERE serial = %s "
     "ORDER BY at DESC, id LIMIT %d OFFSET %d"},
    {"certauth_cert_search",
     "SELECT " CERT_COLS " FROM certauth_certs "
     "WHERE (%s = '' OR owner = %s) AND (%s = '' OR status = %s) "
     "AND (%s = '' OR subject LIKE %s ESCAPE '!') "
     "AND not_after <= %lld AND not_after > %lld "
     "ORDER BY issued_at DESC, serial LIMIT %d OFFSET %d"},
    {"certauth_count_valid_owner",
     "SELECT COUNT(*) FROM certauth_certs WHERE owner = %s AND profile = %s "
     "AND status = 'valid' AND not_after > %lld"},
    {"certauth_count_valid_subject",
     "SELECT COUNT(*) FROM certauth_certs WHERE subject = %s "
     "AND status = 'valid' AND not_after > %lld"},
    {NULL, NULL}
};

static void set_error(ca_store_t *s, int rc)
{
    const char *e = apr_dbd_error(s->driver, s->handle, rc);
    s->last_error = apr_pstrdup(s->conn_pool, e ? e : "unknown error");
    if (s->in_txn) {
        s->txn_failed = 1;
    }
}

const char *ca_store_last_error(ca_store_t *s)
{
    return s && s->last_error ? s->last_error : "";
}

int ca_store_schema_version(void)
{
    return SCHEMA_VERSION;
}

static apr_status_t get_stmt(ca_store_t *s, const char *label,
                             apr_dbd_prepared_t **out)
{
    apr_dbd_prepared_t *stmt = apr_hash_get(s->prepared, label,
                                            APR_HASH_KEY_STRING);
    const stmt_def *d;
    int rc;

    if (stmt) {
        *out = stmt;
        return APR_SUCCESS;
    }
    for (d = stmts; d->label; d++) {
        if (!strcmp(d->label, label)) {
            break;
        }
    }
    if (!d->label) {
        return APR_EINVAL;
    }
    rc = apr_dbd_prepare(s->driver, s->conn_pool, s->handle,
                         sql_expand(s->conn_pool, s->d, d->sql),
                         s->d->named ? d->label : NULL, &stmt);
    if (rc != 0) {
        set_error(s, rc);
        ca_log(CA_LOG_MARK, CA_LOG_ERR, 0, NULL, "cannot prepare %s: %s",
               label, s->last_error);
        return CA_EDB;
    }
    apr_hash_set(s->prepared, apr_pstrdup(s->conn_pool, d->label),
                 APR_HASH_KEY_STRING, stmt);
    *out = stmt;
    return APR_SUCCESS;
}

/* Run a statement that may return rows (PRAGMAs) and drain them. */
static apr_status_t run_select(ca_store_t *s, apr_pool_t *p, const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rc = apr_dbd_select(s->driver, p, s->handle, &res, sql,
                            s->d->seek);

    if (rc != 0) {
        set_error(s, rc);
        return CA_EDB;
    }
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
    }
    return APR_SUCCESS;
}

static apr_status_t run_query(ca_store_t *s, const char *sql)
{
    int nrows = 0;
    int rc = apr_dbd_query(s->driver, s->handle, &nrows, sql);
    if (rc != 0) {
        set_error(s, rc);
        return CA_EDB;
    }
    return APR_SUCCESS;
}

/* WAL is a property of the file, set once in its life.  Switching a new
 * file to it needs an exclusive lock, and SQLite does not wait for that
 * lock while the connection holds a read lock (deadlock avoidance), so when
 * several processes open a new file at once some are told "database is
 * locked" even with a busy timeout: ask again after a pause of a varying
 * length. */
static apr_status_t set_wal(ca_store_t *s, apr_pool_t *p)
{
    apr_status_t rv = APR_SUCCESS;
    int tries;

    for (tries = 0; tries < 8; tries++) {
        if (tries) {
            apr_sleep(apr_time_from_msec(20 + apr_time_now() % 60));
        }
        if ((rv = run_select(s, p, "PRAGMA journal_mode=WAL"))
            == APR_SUCCESS) {
            break;
        }
    }
    return rv;
}

static apr_status_t conn_init(ca_store_t *s, apr_pool_t *p)
{
    apr_status_t rv = APR_SUCCESS;

    if (s->d->sqlite) {
        /* Short: the driver keeps its process-wide mutex while SQLite
         * waits, and retries a busy statement itself (about 15 times,
         * 100 ms apart, the mutex released) before giving up; so a busy
         * database is waited for ~5 s in all, without stopping the other
         * threads for longer than this timeout at a time. */
        if ((rv = run_select(s, p, "PRAGMA busy_timeout=" CA_STORE_BUSY_MS))
                == APR_SUCCESS
            && (rv = set_wal(s, p)) == APR_SUCCESS
            && (rv = run_query(s, "PRAGMA synchronous=FULL"))
                   == APR_SUCCESS) {
            rv = run_query(s, "PRAGMA foreign_keys=ON");
        }
    }
    if (rv == APR_SUCCESS) {
        apr_hash_set(s->prepared, INIT_MARK, APR_HASH_KEY_STRING, s);
    }
    return rv;
}

static apr_status_t store_close(void *data)
{
    ca_store_t *s = data;
    apr_dbd_close(s->driver, s->handle);
    return APR_SUCCESS;
}

apr_status_t ca_store_open(ca_store_t **ps, apr_pool_t *p, const char *driver,
                           const char *params, const char **err)
{
    ca_store_t *s = apr_pcalloc(p, sizeof(*s));
    const char *dberr = NULL;
    apr_status_t rv;

    *err = NULL;
    apr_dbd_init(p);
    rv = apr_dbd_get_driver(p, driver, &s->driver);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "no APR-util DBD driver '%s' (install "
                            "libaprutil1-dbd-%s)", driver, driver);
        return CA_ECONFIG;
    }
    rv = apr_dbd_open_ex(s->driver, p, params, &s->handle, &dberr);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "cannot open %s database %s: %s", driver,
                            params, dberr ? dberr : "error");
        return CA_EDB;
    }
    s->prepared = apr_hash_make(p);
    s->conn_pool = p;
    s->d = dialect_of(apr_dbd_name(s->driver));
    apr_pool_cleanup_register(p, s, store_close, apr_pool_cleanup_null);
    if ((rv = conn_init(s, p)) != APR_SUCCESS) {
        *err = apr_psprintf(p, "cannot set up %s database %s: %s", driver,
                            params, s->last_error);
        return rv;
    }
    *ps = s;
    return APR_SUCCESS;
}

apr_status_t ca_store_wrap(ca_store_t **ps, apr_pool_t *p,
                           const apr_dbd_driver_t *driver, apr_dbd_t *handle,
                           apr_hash_t *prepared, apr_pool_t *conn_pool)
{
    ca_store_t *s = apr_pcalloc(p, sizeof(*s));
    apr_status_t rv = APR_SUCCESS;

    s->driver = driver;
    s->handle = handle;
    s->prepared = prepared;
    s->conn_pool = conn_pool;
    s->d = dialect_of(apr_dbd_name(driver));
    if (!apr_hash_get(prepared, INIT_MARK, APR_HASH_KEY_STRING)) {
        rv = conn_init(s, p);
    }
    *ps = s;
    return rv;
}

apr_status_t ca_store_check(ca_store_t *s, apr_pool_t *p)
{
    apr_status_t rv;

    if (s->d->sqlite) {
        return APR_SUCCESS;
    }
    if ((rv = run_select(s, p, "SELECT 1")) == APR_SUCCESS) {
        return APR_SUCCESS;
    }
    /* libpq notices a connection the server closed (a restart) only when
     * it is used; now the driver reconnects it (PQreset) */
    if (apr_dbd_check_conn(s->driver, p, s->handle) != APR_SUCCESS) {
        return CA_EDB;
    }
    ca_log(CA_LOG_MARK, CA_LOG_INFO, 0, p,
           "database connection was broken (%s); reconnected",
           s->last_error);
    return run_select(s, p, "SELECT 1");
}

/* The schema version in the database (0: none yet). */
static apr_status_t read_version(ca_store_t *s, apr_pool_t *p, int *version)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rc;

    *version = 0;
    rc = apr_dbd_select(s->driver, p, s->handle, &res,
                        "SELECT version FROM certauth_schema", s->d->seek);
    if (rc != 0) {
        set_error(s, rc);
        return CA_EDB;
    }
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        const char *v = apr_dbd_get_entry(s->driver, row, 0);
        if (v && atoi(v) > *version) {
            *version = atoi(v);
        }
    }
    return APR_SUCCESS;
}

/* Start a transaction.  The driver links a transaction to the connection
 * even when BEGIN fails; end it then, or the connection would keep a
 * transaction allocated from p (and its error state) after p is gone.
 * With a dialect's own BEGIN (PostgreSQL) the store runs BEGIN, COMMIT and
 * ROLLBACK itself and remembers whether a statement failed in between. */
static apr_status_t txn_open(ca_store_t *s, apr_pool_t *p)
{
    int rc, nrows = 0;

    if (s->txn || s->in_txn) {
        s->last_error = "a transaction is open already";
        return CA_EDB;
    }
    wl_enter(s);
    if (s->d->begin) {
        rc = apr_dbd_query(s->driver, s->handle, &nrows, s->d->begin);
        if (rc != 0) {
            set_error(s, rc);
            wl_leave(s);
            return CA_EDB;
        }
        s->in_txn = 1;
        s->txn_failed = 0;
        return APR_SUCCESS;
    }
    rc = apr_dbd_transaction_start(s->driver, p, s->handle, &s->txn);
    if (rc != 0) {
        set_error(s, rc);
        if (s->txn) {
            apr_dbd_transaction_mode_set(s->driver, s->txn,
                                         APR_DBD_TRANSACTION_ROLLBACK);
            apr_dbd_transaction_end(s->driver, p, s->txn);
            s->txn = NULL;
        }
        wl_leave(s);
        return CA_EDB;
    }
    return APR_SUCCESS;
}

/* End the transaction: commit when `commit` and no statement failed, else
 * roll back.  CA_EDB when a commit was asked for and did not happen. */
static apr_status_t txn_close(ca_store_t *s, apr_pool_t *p, int commit)
{
    int rc, nrows = 0;

    if (s->in_txn) {
        int failed = s->txn_failed;

        s->in_txn = 0;
        s->txn_failed = 0;
        rc = apr_dbd_query(s->driver, s->handle, &nrows,
                           commit && !failed ? "COMMIT" : "ROLLBACK");
        wl_leave(s);
        if (rc != 0) {
            set_error(s, rc);
            return commit ? CA_EDB : APR_SUCCESS;
        }
        return commit && failed ? CA_EDB : APR_SUCCESS;
    }
    if (!s->txn) {
        return APR_SUCCESS;
    }
    if (!commit) {
        apr_dbd_transaction_mode_set(s->driver, s->txn,
                                     APR_DBD_TRANSACTION_ROLLBACK);
    }
    rc = apr_dbd_transaction_end(s->driver, p, s->txn);
    s->txn = NULL;
    wl_leave(s);
    if (rc != 0) {
        set_error(s, rc);
        return CA_EDB;
    }
    return APR_SUCCESS;
}

/* A lock held until the transaction ends (PostgreSQL: an advisory lock);
 * nothing to do where the write transaction excludes other writers. */
static apr_status_t xact_lock(ca_store_t *s, apr_pool_t *p, int cls, int key)
{
    if (!s->d->xact_lock) {
        return APR_SUCCESS;
    }
    return run_select(s, p, apr_psprintf(p, s->d->xact_lock, cls, key));
}

apr_status_t ca_store_txn_lock(ca_store_t *s, apr_pool_t *p, const char *key)
{
    apr_ssize_t len = APR_HASH_KEY_STRING;

    if (!s->txn && !s->in_txn) {
        s->last_error = "ca_store_txn_lock outside a transaction";
        return CA_EDB;
    }
    return xact_lock(s, p, PG_LOCK_ISSUE,
                     (int)apr_hashfunc_default(key, &len));
}

/* One migration in its own transaction; a no-op when another process has
 * applied it meanwhile.  *applied tells whether this call did it. */
static apr_status_t migrate_to(ca_store_t *s, apr_pool_t *p, int target,
                               int *applied)
{
    const char *const *sql;
    apr_status_t rv, crv;
    int cur = 0;

    *applied = 0;
    if ((rv = txn_open(s, p)) != APR_SUCCESS) {
        return rv;
    }
    rv = xact_lock(s, p, PG_LOCK_MIGRATE, 0);
    if (rv == APR_SUCCESS) {
        rv = read_version(s, p, &cur);
    }
    if (rv == APR_SUCCESS && cur < target) {
        for (sql = migrations[target - 1]; *sql && rv == APR_SUCCESS; sql++) {
            rv = run_query(s, sql_expand(p, s->d, *sql));
        }
        if (rv == APR_SUCCESS) {
            rv = run_query(s, "DELETE FROM certauth_schema");
        }
        if (rv == APR_SUCCESS) {
            rv = run_query(s, apr_psprintf(p, "INSERT INTO certauth_schema"
                                           " (version) VALUES (%d)", target));
        }
    }
    crv = txn_close(s, p, rv == APR_SUCCESS);
    if (rv == APR_SUCCESS) {
        rv = crv;
    }
    if (rv == APR_SUCCESS && cur < target) {
        *applied = 1;
    }
    return rv;
}

/* The version table.  PostgreSQL: CREATE TABLE IF NOT EXISTS is not safe
 * against a concurrent one (both may try to create it), so under the
 * migration lock. */
static apr_status_t schema_table(ca_store_t *s, apr_pool_t *p)
{
    static const char sql[] = "CREATE TABLE IF NOT EXISTS certauth_schema "
                              "(version INTEGER NOT NULL)";
    apr_status_t rv, crv;

    if (!s->d->xact_lock) {
        wl_enter(s);
        rv = run_query(s, sql);
        wl_leave(s);
        return rv;
    }
    if ((rv = txn_open(s, p)) != APR_SUCCESS) {
        return rv;
    }
    rv = xact_lock(s, p, PG_LOCK_MIGRATE, 0);
    if (rv == APR_SUCCESS) {
        rv = run_query(s, sql);
    }
    crv = txn_close(s, p, rv == APR_SUCCESS);
    return rv == APR_SUCCESS ? crv : rv;
}

apr_status_t ca_store_migrate(ca_store_t *s, apr_pool_t *p, int *version,
                              const char **err)
{
    apr_status_t rv;
    int v = 0, target, tries;

    *err = NULL;
    /* SQLite answers "database schema has changed" to a statement compiled
     * before another process changed the schema; it reloads the schema for
     * the next one, so ask again. */
    for (tries = 0; tries < 5; tries++) {
        rv = schema_table(s, p);
        if (rv == APR_SUCCESS) {
            rv = read_version(s, p, &v);
        }
        if (rv == APR_SUCCESS) {
            break;
        }
        apr_sleep(apr_time_from_msec(20));
    }
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "cannot read the schema version: %s",
                            s->last_error);
        return rv;
    }
    if (v > SCHEMA_VERSION) {
        *err = apr_psprintf(p, "database schema version %d is newer than "
                            "this mod_certauth (%d)", v, SCHEMA_VERSION);
        return CA_ECONFIG;
    }
    for (target = v + 1; target <= SCHEMA_VERSION; target++) {
        int applied = 0;

        /* Another process may change the schema between our statements
         * (SQLite: "database schema has changed" once); try again. */
        for (tries = 0; tries < 5; tries++) {
            rv = migrate_to(s, p, target, &applied);
            if (rv == APR_SUCCESS) {
                break;
            }
            apr_sleep(apr_time_from_msec(20));
        }
        if (rv != APR_SUCCESS) {
            *err = apr_psprintf(p, "migration to schema version %d failed: "
                                "%s", target, s->last_error);
            return rv;
        }
        if (applied) {
            ca_log(CA_LOG_MARK, CA_LOG_INFO, 0, p,
                   "database schema migrated to version %d", target);
        }
    }
    *version = SCHEMA_VERSION;
    return APR_SUCCESS;
}

/* The SQL a database gets (for tests and tools). */
const char *ca_store_dialect_sql(apr_pool_t *p, const char *driver,
                                 const char *sql)
{
    return sql_expand(p, dialect_of(driver), sql);
}

const char *ca_store_statement_sql(apr_pool_t *p, const char *driver,
                                   const char *label)
{
    const stmt_def *d;

    for (d = stmts; d->label; d++) {
        if (!strcmp(d->label, label)) {
            return sql_expand(p, dialect_of(driver), d->sql);
        }
    }
    return NULL;
}

const char *ca_store_migration_sql(apr_pool_t *p, const char *driver,
                                   int version, int i)
{
    const char *const *sql;
    int n;

    if (version < 1 || version > SCHEMA_VERSION || i < 0) {
        return NULL;
    }
    for (sql = migrations[version - 1], n = 0; *sql && n < i; sql++, n++) {
    }
    return *sql ? sql_expand(p, dialect_of(driver), *sql) : NULL;
}

const char *ca_store_statement_label(int i)
{
    return i >= 0 && i < (int)(sizeof(stmts) / sizeof(stmts[0])) - 1
               ? stmts[i].label : NULL;
}

static const char *i64(apr_pool_t *p, apr_int64_t v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, v);
}

static apr_int64_t to_i64(const char *v)
{
    return v ? apr_atoi64(v) : 0;
}

static ca_cert_row_t *row_of(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *r)
{
    ca_cert_row_t *c = apr_pcalloc(p, sizeof(*c));
    const char *v;

#define COL(i) ((v = apr_dbd_get_entry(s->driver, r, (i))) ? v : "")
    c->serial = apr_pstrdup(p, COL(0));
    c->subject = apr_pstrdup(p, COL(1));
    c->owner = apr_pstrdup(p, COL(2));
    c->profile = apr_pstrdup(p, COL(3));
    c->not_before = to_i64(COL(4));
    c->not_after = to_i64(COL(5));
    c->issued_at = to_i64(COL(6));
    c->status = apr_pstrdup(p, COL(7));
    c->revoked_at = to_i64(COL(8));
    c->reason = atoi(COL(9));
    c->cert_pem = apr_pstrdup(p, COL(10));
    c->invalidity_at = to_i64(COL(11));
    c->replaced_by = apr_pstrdup(p, COL(12));
#undef COL
    return c;
}

/* Run the prepared statement `label` with its arguments; the results in
 * *res, read to the end by the caller. */
static apr_status_t run_pselect(ca_store_t *s, apr_pool_t *p,
                                const char *label, int nargs,
                                const char **args, apr_dbd_results_t **res)
{
    apr_dbd_prepared_t *stmt;
    apr_status_t rv;
    int rc;

    if ((rv = get_stmt(s, label, &stmt)) != APR_SUCCESS) {
        return rv;
    }
    rc = apr_dbd_pselect(s->driver, p, s->handle, res, stmt, s->d->seek,
                         nargs, args);
    if (rc != 0) {
        set_error(s, rc);
        return CA_EDB;
    }
    return APR_SUCCESS;
}

static apr_status_t select_rows(ca_store_t *s, apr_pool_t *p,
                                const char *label, int nargs,
                                const char **args, apr_array_header_t **rows)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_status_t rv;
    int rc;

    if ((rv = run_pselect(s, p, label, nargs, args, &res)) != APR_SUCCESS) {
        return rv;
    }
    *rows = apr_array_make(p, 4, sizeof(ca_cert_row_t *));
    /* Read every row to the end, so the statement is reset. */
    while ((rc = apr_dbd_get_row(s->driver, p, res, &row, -1)) == 0) {
        APR_ARRAY_PUSH(*rows, ca_cert_row_t *) = row_of(s, p, row);
    }
    return APR_SUCCESS;
}

apr_status_t ca_store_cert_get(ca_store_t *s, apr_pool_t *p,
                               const char *serial, ca_cert_row_t **row)
{
    apr_array_header_t *rows;
    const char *args[1] = {serial};
    apr_status_t rv = select_rows(s, p, "certauth_cert_get", 1, args, &rows);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (rows->nelts == 0) {
        return CA_ENOTFOUND;
    }
    *row = APR_ARRAY_IDX(rows, 0, ca_cert_row_t *);
    return APR_SUCCESS;
}

apr_status_t ca_store_cert_insert(ca_store_t *s, apr_pool_t *p,
                                  const ca_cert_row_t *c)
{
    apr_dbd_prepared_t *stmt;
    const char *args[13];
    ca_cert_row_t *existing;
    apr_status_t rv;
    int nrows = 0, rc;

    if ((rv = get_stmt(s, "certauth_cert_insert", &stmt)) != APR_SUCCESS) {
        return rv;
    }
    args[0] = c->serial;
    args[1] = c->subject;
    args[2] = c->owner;
    args[3] = c->profile;
    args[4] = i64(p, c->not_before);
    args[5] = i64(p, c->not_after);
    args[6] = i64(p, c->issued_at);
    args[7] = c->status;
    args[8] = i64(p, c->revoked_at);
    args[9] = apr_itoa(p, c->reason);
    args[10] = c->cert_pem;
    args[11] = i64(p, c->invalidity_at);
    args[12] = c->replaced_by ? c->replaced_by : "";
    rc = write_pquery(s, p, &nrows, stmt, 13, args);
    if (rc == 0 && nrows == 1) {
        return APR_SUCCESS;
    }
    if (rc != 0) {
        set_error(s, rc);
    }
    else {
        s->last_error = "insert stored no row";
    }
    /* A taken serial is the one failure the caller can cure. */
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

static apr_status_t count_of(ca_store_t *s, apr_pool_t *p, const char *label,
                             int nargs, const char **args, apr_int64_t *count)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_status_t rv;

    if ((rv = run_pselect(s, p, label, nargs, args, &res)) != APR_SUCCESS) {
        return rv;
    }
    *count = 0;
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        *count = to_i64(apr_dbd_get_entry(s->driver, row, 0));
    }
    return APR_SUCCESS;
}

apr_status_t ca_store_cert_count(ca_store_t *s, apr_pool_t *p,
                                 apr_int64_t *count)
{
    return count_of(s, p, "certauth_cert_count", 0, NULL, count);
}

apr_status_t ca_store_count_valid_owner(ca_store_t *s, apr_pool_t *p,
                                        const char *owner,
                                        const char *profile, apr_int64_t now,
                                        apr_int64_t *count)
{
    const char *args[3];
    args[0] = owner;
    args[1] = profile;
    args[2] = i64(p, now);
    return count_of(s, p, "certauth_count_valid_owner", 3, args, count);
}

apr_status_t ca_store_count_valid_subject(ca_store_t *s, apr_pool_t *p,
                                          const char *subject,
                                          apr_int64_t now,
                                          apr_int64_t *count)
{
    const char *args[2];
    args[0] = subject;
    args[1] = i64(p, now);
    return count_of(s, p, "certauth_count_valid_subject", 2, args, count);
}

apr_status_t ca_store_txn_begin(ca_store_t *s, apr_pool_t *p)
{
    return txn_open(s, p);
}

apr_status_t ca_store_txn_end(ca_store_t *s, apr_pool_t *p, int commit)
{
    return txn_close(s, p, commit);
}

apr_status_t ca_store_cert_set_status(ca_store_t *s, apr_pool_t *p,
                                      const char *serial, const char *from,
                                      const char *status,
                                      apr_int64_t revoked_at, int reason,
                                      apr_int64_t invalidity_at,
                                      const char *replaced_by,
                                      ca_cert_row_t **row)
{
    apr_dbd_prepared_t *stmt;
    const char *args[7];
    apr_status_t rv;
    int nrows = 0, rc;

    if (row) {
        *row = NULL;
    }
    if ((rv = get_stmt(s, "certauth_cert_set_status", &stmt)) != APR_SUCCESS) {
        return rv;
    }
    args[0] = status;
    args[1] = i64(p, revoked_at);
    args[2] = apr_itoa(p, reason);
    args[3] = i64(p, invalidity_at);
    args[4] = replaced_by ? replaced_by : "";
    args[5] = serial;
    args[6] = from;
    rc = write_pquery(s, p, &nrows, stmt, 7, args);
    if (rc != 0) {
        set_error(s, rc);
        return CA_EDB;
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
    args[6] = i64(p, f->not_after_max ? f->not_after_max
                                      : APR_INT64_C(9000000000000));
    args[7] = i64(p, f->not_after_min ? f->not_after_min
                                      : APR_INT64_C(-9000000000000));
    args[8] = apr_itoa(p, limit);
    args[9] = apr_itoa(p, offset);
    return select_rows(s, p, "certauth_cert_search", 10, args, rows);
}

/* SQLite: the CRL query through SQLite's interface on the connection of
 * the DBD driver (apr_dbd_native_handle), one row at a time.  The driver's
 * select reads every row of the result before it returns, copying each
 * column (integers converted to text) into pool memory with a row and
 * column structure each: for a 1,000,000-entry CRL that was about half of
 * the time of making it, and ~200 MB of pool.  Here the integers are read
 * as integers and only the serial is copied. */
static apr_status_t crl_entries_sqlite(ca_store_t *s, apr_pool_t *p,
                                       apr_int64_t not_after_min,
                                       apr_array_header_t **entries)
{
    sqlite3 *db = apr_dbd_native_handle(s->driver, s->handle);
    sqlite3_stmt *st = NULL;
    apr_array_header_t *a;
    int rc, busy = 0;

    if (!db) {
        s->last_error = "no SQLite handle";
        return CA_EDB;
    }
    rc = sqlite3_prepare_v2(db, CRL_ENTRIES_SQL("INDEXED BY certauth_certs_crl ",
                                            "?1"), -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)not_after_min);
    }
    if (rc != SQLITE_OK) {
        s->last_error = apr_pstrdup(s->conn_pool, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return CA_EDB;
    }
    a = apr_array_make(p, 1024, sizeof(ca_crl_entry_t));
    for (;;) {
        ca_crl_entry_t *e;
        const unsigned char *v;

        rc = sqlite3_step(st);
        if (rc == SQLITE_BUSY && busy++ < 50) {
            /* as the driver does: wait and step again */
            apr_sleep(apr_time_from_msec(100));
            continue;
        }
        if (rc != SQLITE_ROW) {
            break;
        }
        e = apr_array_push(a);
        v = sqlite3_column_text(st, 0);
        e->serial = v ? apr_pstrmemdup(p, (const char *)v,
                                       (apr_size_t)sqlite3_column_bytes(st,
                                                                        0))
                      : "";
        e->revoked_at = sqlite3_column_int64(st, 1);
        e->reason = sqlite3_column_type(st, 2) == SQLITE_NULL
                        ? -1 : sqlite3_column_int(st, 2);
        e->invalidity_at = sqlite3_column_int64(st, 3);
    }
    if (rc != SQLITE_DONE) {
        s->last_error = apr_pstrdup(s->conn_pool, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return CA_EDB;
    }
    sqlite3_finalize(st);
    *entries = a;
    return APR_SUCCESS;
}

apr_status_t ca_store_crl_entries(ca_store_t *s, apr_pool_t *p,
                                  apr_int64_t not_after_min,
                                  apr_array_header_t **entries)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[1];
    apr_status_t rv;

    /* (the driver serialises its own calls into SQLite with a mutex of
     * APR's, which this path does not take: only with an SQLite built
     * thread-safe, as Debian's is) */
    if (s->d->sqlite && sqlite3_threadsafe()) {
        return crl_entries_sqlite(s, p, not_after_min, entries);
    }
    args[0] = i64(p, not_after_min);
    if ((rv = run_pselect(s, p, "certauth_crl_entries", 1, args, &res))
        != APR_SUCCESS) {
        return rv;
    }
    *entries = apr_array_make(p, 64, sizeof(ca_crl_entry_t));
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        ca_crl_entry_t *e = apr_array_push(*entries);
        const char *v;
        e->serial = apr_pstrdup(p, (v = apr_dbd_get_entry(s->driver, row, 0))
                                       ? v : "");
        e->revoked_at = to_i64(apr_dbd_get_entry(s->driver, row, 1));
        v = apr_dbd_get_entry(s->driver, row, 2);
        e->reason = v ? atoi(v) : -1;
        e->invalidity_at = to_i64(apr_dbd_get_entry(s->driver, row, 3));
    }
    return APR_SUCCESS;
}

static apr_status_t crl_read(ca_store_t *s, apr_pool_t *p, const char *label,
                             apr_int64_t *number, apr_int64_t *this_update,
                             apr_int64_t *next_update, const char **der_b64)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_status_t rv;
    int found = 0;

    if ((rv = run_pselect(s, p, label, 0, NULL, &res)) != APR_SUCCESS) {
        return rv;
    }
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        found = 1;
        *number = to_i64(apr_dbd_get_entry(s->driver, row, 0));
        *this_update = to_i64(apr_dbd_get_entry(s->driver, row, 1));
        *next_update = to_i64(apr_dbd_get_entry(s->driver, row, 2));
        if (der_b64) {
            const char *v = apr_dbd_get_entry(s->driver, row, 3);
            *der_b64 = apr_pstrdup(p, v ? v : "");
        }
    }
    if (!found) {
        s->last_error = "the CRL state row is missing";
        return CA_EDB;
    }
    return APR_SUCCESS;
}

apr_status_t ca_store_crl_get(ca_store_t *s, apr_pool_t *p,
                              apr_int64_t *number, apr_int64_t *this_update,
                              apr_int64_t *next_update, const char **der_b64)
{
    return crl_read(s, p, "certauth_crl_get", number, this_update,
                    next_update, der_b64);
}

apr_status_t ca_store_crl_head(ca_store_t *s, apr_pool_t *p,
                               apr_int64_t *number, apr_int64_t *this_update,
                               apr_int64_t *next_update)
{
    return crl_read(s, p, "certauth_crl_head", number, this_update,
                    next_update, NULL);
}

apr_status_t ca_store_crl_lock(ca_store_t *s, apr_pool_t *p,
                               apr_int64_t *number, apr_int64_t *this_update,
                               apr_int64_t *next_update)
{
    if (!s->txn && !s->in_txn) {
        s->last_error = "ca_store_crl_lock outside a transaction";
        return CA_EDB;
    }
    return crl_read(s, p, "certauth_crl_lock", number, this_update,
                    next_update, NULL);
}

apr_status_t ca_store_crl_put(ca_store_t *s, apr_pool_t *p,
                              apr_int64_t old_number, apr_int64_t number,
                              apr_int64_t this_update, apr_int64_t next_update,
                              const char *der_b64)
{
    apr_dbd_prepared_t *stmt;
    const char *args[5];
    apr_status_t rv;
    int nrows = 0, rc;

    if ((rv = get_stmt(s, "certauth_crl_put", &stmt)) != APR_SUCCESS) {
        return rv;
    }
    args[0] = i64(p, number);
    args[1] = i64(p, this_update);
    args[2] = i64(p, next_update);
    args[3] = der_b64;
    args[4] = i64(p, old_number);
    rc = write_pquery(s, p, &nrows, stmt, 5, args);
    if (rc != 0) {
        set_error(s, rc);
        return CA_EDB;
    }
    return nrows == 1 ? APR_SUCCESS : CA_ECONFLICT;
}

apr_status_t ca_store_audit_add(ca_store_t *s, apr_pool_t *p,
                                const ca_audit_t *a)
{
    apr_dbd_prepared_t *stmt;
    const char *args[9];
    unsigned char rnd[12];
    apr_status_t rv;
    int nrows = 0, rc;

    if ((rv = get_stmt(s, "certauth_audit_add", &stmt)) != APR_SUCCESS) {
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
    args[1] = i64(p, a->at);
    args[2] = a->actor ? a->actor : "-";
    args[3] = a->auth ? a->auth : "none";
    args[4] = a->client ? a->client : "";
    args[5] = a->action ? a->action : "";
    args[6] = a->serial ? a->serial : "";
    args[7] = a->outcome ? a->outcome : "";
    args[8] = a->detail ? a->detail : "";
    rc = write_pquery(s, p, &nrows, stmt, 9, args);
    if (rc != 0) {
        set_error(s, rc);
        return CA_EDB;
    }
    return APR_SUCCESS;
}

apr_status_t ca_store_audit_list(ca_store_t *s, apr_pool_t *p,
                                 const char *serial, int limit, int offset,
                                 apr_array_header_t **rows)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[3];
    apr_status_t rv;
    int n = 0;

    if (serial) {
        args[n++] = serial;
    }
    args[n++] = apr_itoa(p, limit > 0 ? limit : 100);
    args[n++] = apr_itoa(p, offset > 0 ? offset : 0);
    if ((rv = run_pselect(s, p, serial ? "certauth_audit_serial"
                                       : "certauth_audit_list", n, args,
                          &res)) != APR_SUCCESS) {
        return rv;
    }
    *rows = apr_array_make(p, 16, sizeof(ca_audit_t *));
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        ca_audit_t *a = apr_pcalloc(p, sizeof(*a));
        const char *v;
#define ACOL(i) apr_pstrdup(p, (v = apr_dbd_get_entry(s->driver, row, (i))) \
                                   ? v : "")
        a->id = ACOL(0);
        a->at = to_i64(apr_dbd_get_entry(s->driver, row, 1));
        a->actor = ACOL(2);
        a->auth = ACOL(3);
        a->client = ACOL(4);
        a->action = ACOL(5);
        a->serial = ACOL(6);
        a->outcome = ACOL(7);
        a->detail = ACOL(8);
#undef ACOL
        APR_ARRAY_PUSH(*rows, ca_audit_t *) = a;
    }
    return APR_SUCCESS;
}

apr_status_t ca_store_count_listable(ca_store_t *s, apr_pool_t *p,
                                     apr_int64_t after, apr_int64_t until,
                                     apr_int64_t *count)
{
    const char *args[2];
    args[0] = i64(p, after);
    args[1] = i64(p, until);
    return count_of(s, p, "certauth_count_listable", 2, args, count);
}

static ca_pending_t *pending_of(ca_store_t *s, apr_pool_t *p,
                                apr_dbd_row_t *r)
{
    ca_pending_t *c = apr_pcalloc(p, sizeof(*c));
    const char *v;
#define PCOL(i) apr_pstrdup(p, (v = apr_dbd_get_entry(s->driver, r, (i))) \
                                   ? v : "")
    c->id = PCOL(0);
    c->csr_hash = PCOL(1);
    c->owner = PCOL(2);
    c->profile = PCOL(3);
    c->subject = PCOL(4);
    c->csr_pem = PCOL(5);
    c->status = PCOL(6);
    c->created_at = to_i64(apr_dbd_get_entry(s->driver, r, 7));
    c->decided_by = PCOL(8);
    c->decided_at = to_i64(apr_dbd_get_entry(s->driver, r, 9));
    c->serial = PCOL(10);
#undef PCOL
    return c;
}

static apr_status_t pending_rows(ca_store_t *s, apr_pool_t *p,
                                 const char *label, int nargs,
                                 const char **args, apr_array_header_t **rows)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_status_t rv;

    if ((rv = run_pselect(s, p, label, nargs, args, &res)) != APR_SUCCESS) {
        return rv;
    }
    *rows = apr_array_make(p, 4, sizeof(ca_pending_t *));
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        APR_ARRAY_PUSH(*rows, ca_pending_t *) = pending_of(s, p, row);
    }
    return APR_SUCCESS;
}

apr_status_t ca_store_pending_add(ca_store_t *s, apr_pool_t *p,
                                  ca_pending_t *r)
{
    apr_dbd_prepared_t *stmt;
    const char *args[11];
    unsigned char rnd[12];
    char *hex = apr_palloc(p, sizeof(rnd) * 2 + 1);
    apr_status_t rv;
    apr_size_t i;
    int nrows = 0, rc;

    if ((rv = get_stmt(s, "certauth_pending_add", &stmt)) != APR_SUCCESS) {
        return rv;
    }
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return CA_ECRYPTO;
    }
    for (i = 0; i < sizeof(rnd); i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    }
    r->id = hex;
    args[0] = r->id;
    args[1] = r->csr_hash;
    args[2] = r->owner;
    args[3] = r->profile;
    args[4] = r->subject;
    args[5] = r->csr_pem;
    args[6] = r->status;
    args[7] = i64(p, r->created_at);
    args[8] = r->decided_by ? r->decided_by : "";
    args[9] = i64(p, r->decided_at);
    args[10] = r->serial ? r->serial : "";
    rc = write_pquery(s, p, &nrows, stmt, 11, args);
    if (rc != 0) {
        set_error(s, rc);
        return CA_EDB;
    }
    return APR_SUCCESS;
}

apr_status_t ca_store_pending_find(ca_store_t *s, apr_pool_t *p,
                                   const char *csr_hash, const char *owner,
                                   const char *profile, ca_pending_t **row)
{
    apr_array_header_t *rows;
    const char *args[3];
    apr_status_t rv;

    args[0] = csr_hash;
    args[1] = owner;
    args[2] = profile;
    rv = pending_rows(s, p, "certauth_pending_find", 3, args, &rows);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (rows->nelts == 0) {
        return CA_ENOTFOUND;
    }
    *row = APR_ARRAY_IDX(rows, 0, ca_pending_t *);
    return APR_SUCCESS;
}

apr_status_t ca_store_pending_get(ca_store_t *s, apr_pool_t *p,
                                  const char *id, ca_pending_t **row)
{
    apr_array_header_t *rows;
    const char *args[1];
    apr_status_t rv;

    args[0] = id;
    rv = pending_rows(s, p, "certauth_pending_get", 1, args, &rows);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (rows->nelts == 0) {
        return CA_ENOTFOUND;
    }
    *row = APR_ARRAY_IDX(rows, 0, ca_pending_t *);
    return APR_SUCCESS;
}

apr_status_t ca_store_pending_list(ca_store_t *s, apr_pool_t *p,
                                   const char *status, int limit, int offset,
                                   apr_array_header_t **rows)
{
    const char *args[3];
    args[0] = status;
    args[1] = apr_itoa(p, limit > 0 ? limit : 100);
    args[2] = apr_itoa(p, offset > 0 ? offset : 0);
    return pending_rows(s, p, "certauth_pending_list", 3, args, rows);
}

apr_status_t ca_store_pending_set(ca_store_t *s, apr_pool_t *p,
                                  const char *id, const char *from,
                                  const char *to, const char *by,
                                  apr_int64_t at, const char *serial)
{
    apr_dbd_prepared_t *stmt;
    const char *args[6];
    apr_status_t rv;
    int nrows = 0, rc;

    if ((rv = get_stmt(s, "certauth_pending_set", &stmt)) != APR_SUCCESS) {
        return rv;
    }
    args[0] = to;
    args[1] = by ? by : "";
    args[2] = i64(p, at);
    args[3] = serial ? serial : "";
    args[4] = id;
    args[5] = from;
    rc = write_pquery(s, p, &nrows, stmt, 6, args);
    if (rc != 0) {
        set_error(s, rc);
        return CA_EDB;
    }
    return nrows == 1 ? APR_SUCCESS : CA_ECONFLICT;
}

apr_status_t ca_store_crl_invalidate(ca_store_t *s, apr_pool_t *p)
{
    apr_dbd_prepared_t *stmt;
    apr_status_t rv;
    int nrows = 0, rc;

    if ((rv = get_stmt(s, "certauth_crl_invalidate", &stmt)) != APR_SUCCESS) {
        return rv;
    }
    rc = write_pquery(s, p, &nrows, stmt, 0, NULL);
    if (rc != 0) {
        set_error(s, rc);
        return CA_EDB;
    }
    return APR_SUCCESS;
}

apr_status_t ca_store_crl_raise(ca_store_t *s, apr_pool_t *p,
                                apr_int64_t number)
{
    apr_dbd_prepared_t *stmt;
    const char *args[2];
    apr_status_t rv;
    int nrows = 0, rc;

    if ((rv = get_stmt(s, "certauth_crl_raise", &stmt)) != APR_SUCCESS) {
        return rv;
    }
    args[0] = args[1] = i64(p, number);
    rc = write_pquery(s, p, &nrows, stmt, 2, args);
    if (rc != 0) {
        set_error(s, rc);
        return CA_EDB;
    }
    return APR_SUCCESS;
}
