/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store.c: the certificate database over APR-util DBD: connections,
 * the SQL dialects, prepared statements and transactions.  What is kept
 * lives in one file per concern: ca_store_schema.c (tables, migrations),
 * ca_store_certs.c, ca_store_crl.c, ca_store_audit.c, ca_store_pending.c;
 * their shared internals are in ca_store_int.h.
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
#include <unistd.h>

#include <sqlite3.h>
#include <apr_atomic.h>
#include <apr_dbd.h>
#include <apr_escape.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <openssl/rand.h>

#include "ca_log.h"
#include "ca_store_int.h"
#include "ca_store_test.h"
#include "ca_util.h"

#define INIT_MARK "certauth__init"
#define CA_STORE_BUSY_MS "250"
#define CA_STORE_MMAP "268435456"
/* Without a deadline (the tools): how long BEGIN waits for SQLite's lock. */
#define CA_STORE_UNBOUNDED_MS 5000

static const ca_dialect_t dialects[] = {
    {"sqlite3", 1, 0, 1, "BEGIN IMMEDIATE", NULL, ""},
    {"pgsql", 0, 1, 0, "BEGIN", "SELECT pg_advisory_xact_lock(%d, %d)",
     " FOR UPDATE"},
    {NULL, 0, 0, 0, NULL, NULL, NULL}
};

/* Unknown drivers get SQLite's dialect minus its PRAGMAs: plain SQL. */
static const ca_dialect_t generic = {
    "generic", 0, 0, 1, NULL, NULL, ""
};

const ca_dialect_t *ca_st_dialect_of(const char *driver)
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
const char *ca_st_sql_expand(apr_pool_t *p, const ca_dialect_t *d,
                              const char *sql)
{
    static const struct {
        const char *token;
        apr_size_t off;
    } tokens[] = {
        {"{FOR_UPDATE}", APR_OFFSETOF(ca_dialect_t, for_update)},
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

/* The writer lock: taken before a write transaction or a write statement
 * outside one, released after; nested uses count.  SQLite only: the
 * driver holds one process-wide mutex while SQLite waits for a busy
 * database, so writers of one process waiting for each other inside SQLite
 * would also stop everybody else (see ca_store_set_writer_lock).
 * PostgreSQL waits for row locks in the server, per connection. */
apr_status_t ca_st_wl_enter(ca_store_t *s)
{
    if (s->wlock && s->d->sqlite && s->wdepth == 0) {
        const char *why = NULL;
        if (s->wlock(s->wlock_baton, 1, s->deadline, &why) != APR_SUCCESS) {
            s->last_error = why ? why : "the write path is busy";
            s->err_kind = CA_ERR_BUSY;
            s->keep_error = 1;
            return CA_EBUSY;
        }
    }
    if (s->d->sqlite) {
        s->wdepth++;
    }
    return APR_SUCCESS;
}

void ca_st_wl_leave(ca_store_t *s)
{
    if (s->d->sqlite && s->wdepth > 0 && --s->wdepth == 0 && s->wlock) {
        s->wlock(s->wlock_baton, 0, 0, NULL);
    }
}

static apr_status_t pg_budget(ca_store_t *s);

/* A write statement (prepared), under the writer lock.  SQLite, outside a
 * transaction: in one of the store's own, so that the wait for SQLite's
 * write lock is the bounded one of ca_st_txn_open and not the driver's
 * (it retries a busy statement for seconds, whatever the deadline). */
int ca_st_write(ca_store_t *s, apr_pool_t *p, int *nrows,
                        apr_dbd_prepared_t *stmt, int nargs,
                        const char **args)
{
    int rc, own = 0;

    if (s->d->sqlite && !s->in_txn) {
        if (ca_st_txn_open(s, p) != APR_SUCCESS) {
            s->keep_error = 1;
            return -1;
        }
        own = 1;
    }
    else if (pg_budget(s) != APR_SUCCESS || ca_st_wl_enter(s) != APR_SUCCESS) {
        return -1;
    }
    rc = apr_dbd_pquery(s->driver, p, s->handle, nrows, stmt, nargs, args);
    if (rc == 0) {
        s->err_kind = CA_ERR_OTHER;
    }
    if (own) {
        if (rc != 0) {
            ca_st_error(s, rc);
            ca_st_txn_close(s, p, 0);
            s->keep_error = 1;
        }
        else if (ca_st_txn_close(s, p, 1) != APR_SUCCESS) {
            s->keep_error = 1;
            rc = -1;
        }
        return rc;
    }
    ca_st_wl_leave(s);
    return rc;
}

void ca_store_set_writer_lock(ca_store_t *s, ca_store_lock_fn fn,
                              void *baton)
{
    s->wlock = fn;
    s->wlock_baton = baton;
}

/* The statement tables of the concerns, searched by label.  A new
 * concern's file adds its table here (and to ca_store_int.h). */
static const ca_st_stmt_def *const stmt_tables[] = {
    ca_st_stmts_certs,
    ca_st_stmts_crl,
    ca_st_stmts_audit,
    ca_st_stmts_pending,
    ca_st_stmts_acme,
    NULL
};

static const ca_st_stmt_def *stmt_def_of(const char *label)
{
    const ca_st_stmt_def *const *t;
    const ca_st_stmt_def *d;

    for (t = stmt_tables; *t; t++) {
        for (d = *t; d->label; d++) {
            if (!strcmp(d->label, label)) {
                return d;
            }
        }
    }
    return NULL;
}

/* What an error means.  SQLite: the driver's rc is SQLite's result code.
 * PostgreSQL: the server's message (the driver's rc says little). */
static int error_kind(ca_store_t *s, int rc, const char *msg)
{
    if (s->d->sqlite) {
        /* a statement prepared before another process changed the schema
         * fails for good on this connection (apr-util prepares once; its
         * later errors read "not an error"): a new connection serves */
        if (msg && (strstr(msg, "schema has changed")
                    || (rc && !strcmp(msg, "not an error")))) {
            return CA_ERR_BROKEN;
        }
        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return CA_ERR_BUSY;
        case SQLITE_READONLY:
        case SQLITE_SCHEMA:     /* apr-util's statements are not prepared
                                   again after another process changed the
                                   schema: a new connection prepares them */
        case SQLITE_IOERR:
        case SQLITE_CORRUPT:
        case SQLITE_CANTOPEN:
        case SQLITE_NOTADB:
            return CA_ERR_BROKEN;
        default:
            return CA_ERR_OTHER;
        }
    }
    if (msg && (strstr(msg, "lock timeout") || strstr(msg, "statement timeout")
                || strstr(msg, "deadlock detected"))) {
        return CA_ERR_BUSY;
    }
    if (msg && (strstr(msg, "server closed the connection")
                || strstr(msg, "no connection to the server")
                || strstr(msg, "terminating connection")
                || strstr(msg, "could not connect")
                || strstr(msg, "connection to server")
                || strstr(msg, "read-only transaction"))) {
        return CA_ERR_BROKEN;
    }
    return CA_ERR_OTHER;
}

void ca_st_error(ca_store_t *s, int rc)
{
    const char *e;
    int failed_before = s->in_txn && s->txn_failed, kind;

    if (s->in_txn) {
        s->txn_failed = 1;
    }
    if (s->keep_error) {
        /* the store said what happened already (a lock not had in time) */
        s->keep_error = 0;
        return;
    }
    e = apr_dbd_error(s->driver, s->handle, rc);
    kind = error_kind(s, rc, e);
    if (failed_before && kind != CA_ERR_BROKEN) {
        /* PostgreSQL: what follows a failed statement in its transaction
         * ("current transaction is aborted") says nothing new; the first
         * error and its kind are kept (a server turned read-only) */
        return;
    }
    s->last_error = apr_pstrdup(s->conn_pool, e ? e : "unknown error");
    s->err_kind = kind;
}

int ca_store_busy(ca_store_t *s)
{
    return s && s->err_kind == CA_ERR_BUSY;
}

int ca_store_broken(ca_store_t *s)
{
    return s && s->err_kind == CA_ERR_BROKEN;
}

void ca_store_set_deadline(ca_store_t *s, apr_time_t deadline, int bound_ms)
{
    s->deadline = deadline;
    s->bound_ms = bound_ms;
}

/* The time left before the deadline in ms (at least 1), or `dflt`. */
static int remaining_ms(ca_store_t *s, int dflt)
{
    apr_time_t left;

    if (!s->deadline) {
        return dflt;
    }
    left = s->deadline - apr_time_now();
    return left <= 1000 ? 1 : (int)apr_time_as_msec(left);
}

/* SQLite's busy handler while BEGIN waits for the write lock: pauses of
 * 1 to 16 ms, then 20 ms, until the deadline or a cancellation, or (once
 * about CA_STORE_YIELD_AFTER_MS passed: 31 ms in the first five pauses,
 * then 20 ms each) until the yield function says to give up. */
static int busy_wait(void *arg, int count)
{
    ca_store_t *s = arg;
    apr_time_t now = apr_time_now();
    apr_interval_time_t pause;

    if (now >= s->deadline || (s->cancel && apr_atomic_read32(s->cancel))) {
        return 0;
    }
    if (s->yield && count >= 5 + (CA_STORE_YIELD_AFTER_MS - 31) / 20
        && s->yield(s->yield_baton)) {
        s->yielded = 1;
        return 0;
    }
    pause = apr_time_from_msec(count < 5 ? 1 << count : 20);
    if (pause > s->deadline - now) {
        pause = s->deadline - now;
    }
    apr_sleep(pause);
    return 1;
}

void ca_store_set_cancel(ca_store_t *s, volatile apr_uint32_t *flag)
{
    s->cancel = flag;
}

void ca_store_set_yield(ca_store_t *s, int (*fn)(void *), void *baton)
{
    s->yield = fn;
    s->yield_baton = baton;
}

#define TIMEOUT_MARK "certauth__timeouts"

/* PostgreSQL, before a statement that may wait for a lock: the server's
 * lock_timeout and statement_timeout of the session are lowered to the
 * time left when it is much less than they are (only slow requests pay
 * the round trip); past the deadline nothing is sent. */
static apr_status_t pg_budget(ca_store_t *s)
{
    int *cur, ms, rc, nrows = 0;
    char sql[96];

    if (s->d->sqlite || !s->deadline) {
        return APR_SUCCESS;
    }
    if (apr_time_now() >= s->deadline) {
        s->last_error = "the request's time for the database is used up "
                        "(CertAuthDBTimeout)";
        s->err_kind = CA_ERR_BUSY;
        s->keep_error = 1;
        return CA_EBUSY;
    }
    ms = remaining_ms(s, 0);
    cur = apr_hash_get(s->prepared, TIMEOUT_MARK, APR_HASH_KEY_STRING);
    if (cur && *cur <= ms + 250) {
        return APR_SUCCESS;
    }
    apr_snprintf(sql, sizeof(sql), "SET lock_timeout = %d; "
                 "SET statement_timeout = %d", ms, ms);
    rc = apr_dbd_query(s->driver, s->handle, &nrows, sql);
    if (rc != 0) {
        ca_st_error(s, rc);
        s->keep_error = 1;
        return CA_EDB;
    }
    if (!cur) {
        cur = apr_palloc(s->conn_pool, sizeof(*cur));
        apr_hash_set(s->prepared, TIMEOUT_MARK, APR_HASH_KEY_STRING, cur);
    }
    *cur = ms;
    return APR_SUCCESS;
}

const char *ca_store_last_error(ca_store_t *s)
{
    return s && s->last_error ? s->last_error : "";
}

apr_status_t ca_st_stmt(ca_store_t *s, const char *label,
                             apr_dbd_prepared_t **out)
{
    apr_dbd_prepared_t *stmt = apr_hash_get(s->prepared, label,
                                            APR_HASH_KEY_STRING);
    const ca_st_stmt_def *d;
    int rc;

    if (stmt) {
        *out = stmt;
        return APR_SUCCESS;
    }
    if (!(d = stmt_def_of(label))) {
        return APR_EINVAL;
    }
    rc = apr_dbd_prepare(s->driver, s->conn_pool, s->handle,
                         ca_st_sql_expand(s->conn_pool, s->d, d->sql),
                         s->d->named ? d->label : NULL, &stmt);
    if (rc != 0) {
        ca_st_error(s, rc);
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
apr_status_t ca_st_select_drain(ca_store_t *s, apr_pool_t *p, const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rc;

    if (pg_budget(s) != APR_SUCCESS) {
        s->keep_error = 0;
        return CA_EDB;
    }
    rc = apr_dbd_select(s->driver, p, s->handle, &res, sql, s->d->seek);
    if (rc != 0) {
        ca_st_error(s, rc);
        return CA_EDB;
    }
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
    }
    return APR_SUCCESS;
}

apr_status_t ca_st_query(ca_store_t *s, const char *sql)
{
    int nrows = 0;
    int rc = apr_dbd_query(s->driver, s->handle, &nrows, sql);
    if (rc != 0) {
        ca_st_error(s, rc);
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
        if ((rv = ca_st_select_drain(s, p, "PRAGMA journal_mode=WAL"))
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
        if ((rv = ca_st_select_drain(s, p, "PRAGMA busy_timeout=" CA_STORE_BUSY_MS))
                == APR_SUCCESS
            && (rv = set_wal(s, p)) == APR_SUCCESS
            && (rv = ca_st_query(s, "PRAGMA synchronous=FULL"))
                   == APR_SUCCESS) {
            rv = ca_st_query(s, "PRAGMA foreign_keys=ON");
        }
        /* Reads through a shared mapping of the file: every other
         * connection's commit empties this one's page cache, and without
         * it the pages are read again with a system call each (~33 per
         * enrollment).  Address space only; a failure is not fatal. */
        if (rv == APR_SUCCESS) {
            ca_st_select_drain(s, p, "PRAGMA mmap_size=" CA_STORE_MMAP);
        }
    }
    if (rv == APR_SUCCESS) {
        apr_time_t *opened = apr_palloc(s->conn_pool, sizeof(*opened));
        *opened = apr_time_now();
        apr_hash_set(s->prepared, INIT_MARK, APR_HASH_KEY_STRING, opened);
    }
    return rv;
}

apr_time_t ca_store_opened(ca_store_t *s)
{
    apr_time_t *opened = apr_hash_get(s->prepared, INIT_MARK,
                                      APR_HASH_KEY_STRING);
    return opened ? *opened : 0;
}

/* PostgreSQL: a statement waiting for a lock (a row, a table, an advisory
 * lock) or running longer than the bound is cancelled by the server, so a
 * held lock gives a refusal and not a hang; set to the bound at the start
 * of each request when a previous one lowered it (pg_budget), and after
 * libpq reconnected the connection (a new session). */

static void pg_timeouts(ca_store_t *s, apr_pool_t *p)
{
    int *set = apr_hash_get(s->prepared, TIMEOUT_MARK, APR_HASH_KEY_STRING);

    if (s->d->sqlite || s->bound_ms <= 0 || (set && *set == s->bound_ms)) {
        return;
    }
    if (ca_st_query(s, apr_psprintf(p, "SET lock_timeout = %d; "
                                    "SET statement_timeout = %d",
                                    s->bound_ms, s->bound_ms))
        == APR_SUCCESS) {
        if (!set) {
            set = apr_palloc(s->conn_pool, sizeof(*set));
            apr_hash_set(s->prepared, TIMEOUT_MARK, APR_HASH_KEY_STRING, set);
        }
        *set = s->bound_ms;
    }
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
    s->d = ca_st_dialect_of(apr_dbd_name(s->driver));
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
    s->d = ca_st_dialect_of(apr_dbd_name(driver));
    if (!apr_hash_get(prepared, INIT_MARK, APR_HASH_KEY_STRING)) {
        rv = conn_init(s, p);
        if (rv != APR_SUCCESS && s->err_kind == CA_ERR_OTHER) {
            /* a new connection that cannot be set up: open another */
            s->err_kind = CA_ERR_BROKEN;
        }
    }
    *ps = s;
    return rv;
}

apr_status_t ca_store_check(ca_store_t *s, apr_pool_t *p)
{
    apr_status_t rv;

    if (s->d->sqlite) {
        sqlite3 *db = apr_dbd_native_handle(s->driver, s->handle);
        const char *file = db ? sqlite3_db_filename(db, "main") : NULL;

        /* SQLite opens a file it may not write read-only, and the
         * connection stays so when the file becomes writable again */
        if (db && sqlite3_db_readonly(db, "main") == 1 && file && *file
            && access(file, W_OK) == 0) {
            s->last_error = "the connection was opened while the database "
                            "was read-only; it is writable now";
            s->err_kind = CA_ERR_BROKEN;
            return CA_EDB;
        }
        return APR_SUCCESS;
    }
    if ((rv = ca_st_select_drain(s, p, "SELECT 1")) == APR_SUCCESS) {
        pg_timeouts(s, p);
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
    apr_hash_set(s->prepared, TIMEOUT_MARK, APR_HASH_KEY_STRING, NULL);
    if ((rv = ca_st_select_drain(s, p, "SELECT 1")) == APR_SUCCESS) {
        apr_time_t *opened = apr_hash_get(s->prepared, INIT_MARK,
                                          APR_HASH_KEY_STRING);
        /* a new session: opened now */
        if (opened) {
            *opened = apr_time_now();
        }
        pg_timeouts(s, p);
    }
    return rv;
}

void ca_store_release(ca_store_t *s, apr_pool_t *p)
{
    if (s->in_txn || s->txn) {
        ca_st_txn_close(s, p, 0);
    }
    while (s->wdepth > 0) {
        ca_st_wl_leave(s);
    }
}

/* The driver's connection structure, in every release of apr-util 1.x
 * (dbd/apr_dbd_sqlite3.c):
 *     struct apr_dbd_t { sqlite3 *conn; apr_dbd_transaction_t *trans;
 *                        apr_pool_t *pool; apr_dbd_prepared_t *prep; };
 * checked against the native handle and the connection's pool before
 * anything is changed.  The statements are finalized and the connection
 * closed here, and the driver's handle and list of statements cleared: its
 * check_conn then fails, so mod_dbd drops the connection at its next
 * acquisition instead of handing it out again, and the driver's close has
 * nothing left to do.  Closed for good, not left open as a zombie: SQLite
 * shares one read-only mapping of the WAL index between the connections
 * of a process to a file, so one connection left open from a read-only
 * time keeps the new ones read-only too. */
apr_status_t ca_store_discard(ca_store_t *s)
{
    void **h = (void **)s->handle;
    sqlite3 *db;
    sqlite3_stmt *st;

    if (!s->d->sqlite) {
        int nrows = 0;

        if (strcmp(s->d->driver, "pgsql")) {
            return APR_ENOTIMPL;
        }
        /* fails: the server ends the session while it answers (or, at the
         * latest, before the next statement, which then fails and is
         * reconnected by ca_store_check) */
        apr_dbd_query(s->driver, s->handle, &nrows,
                      "SELECT pg_terminate_backend(pg_backend_pid())");
        /* a new session: set up again (its time, its timeouts) */
        apr_hash_set(s->prepared, INIT_MARK, APR_HASH_KEY_STRING, NULL);
        apr_hash_set(s->prepared, TIMEOUT_MARK, APR_HASH_KEY_STRING, NULL);
        s->err_kind = CA_ERR_BROKEN;
        ca_log(CA_LOG_MARK, CA_LOG_INFO, 0, NULL,
               "database session ended after \"%s\"; the connection is "
               "reopened", s->last_error ? s->last_error : "");
        return APR_SUCCESS;
    }
    db = apr_dbd_native_handle(s->driver, s->handle);
    if (!db || h[0] != (void *)db || h[2] != (void *)s->conn_pool) {
        return APR_ENOTIMPL;
    }
    while ((st = sqlite3_next_stmt(db, NULL)) != NULL) {
        sqlite3_finalize(st);
    }
    h[0] = NULL;        /* conn */
    h[1] = NULL;        /* trans */
    h[3] = NULL;        /* prep */
    sqlite3_close_v2(db);
    /* the statements prepared on it are gone: forget them */
    apr_hash_clear(s->prepared);
    s->err_kind = CA_ERR_BROKEN;
    ca_log(CA_LOG_MARK, CA_LOG_INFO, 0, NULL,
           "database connection closed after \"%s\"; a new one is opened",
           s->last_error ? s->last_error : "");
    return APR_SUCCESS;
}

/* Start a transaction.  The driver links a transaction to the connection
 * even when BEGIN fails; end it then, or the connection would keep a
 * transaction allocated from p (and its error state) after p is gone.
 * With a dialect's own BEGIN (PostgreSQL) the store runs BEGIN, COMMIT and
 * ROLLBACK itself and remembers whether a statement failed in between. */
apr_status_t ca_st_txn_open(ca_store_t *s, apr_pool_t *p)
{
    int rc, nrows = 0;
    apr_status_t rv;

    if (s->txn || s->in_txn) {
        s->last_error = "a transaction is open already";
        return CA_EDB;
    }
    if ((rv = ca_st_wl_enter(s)) != APR_SUCCESS) {
        return rv;
    }
    if (s->d->sqlite) {
        /* SQLite's interface directly: the wait for a write lock held by
         * another program (a backup, the sqlite3 shell) is bounded by the
         * deadline, and the driver's process-wide mutex is not held
         * meanwhile (SQLite built thread-safe: its own per-connection
         * mutex) */
        sqlite3 *db = apr_dbd_native_handle(s->driver, s->handle);
        if (!db) {
            s->last_error = "the connection is closed";
            s->err_kind = CA_ERR_BROKEN;
            ca_st_wl_leave(s);
            return CA_EDB;
        }
        apr_time_t saved = s->deadline;

        if (!saved) {
            s->deadline = apr_time_now()
                          + apr_time_from_msec(CA_STORE_UNBOUNDED_MS);
        }
        sqlite3_busy_handler(db, busy_wait, s);
        s->yielded = 0;
        rc = sqlite3_exec(db, s->d->begin, NULL, NULL, NULL);
        s->deadline = saved;
        /* (replaces the handler) */
        sqlite3_busy_timeout(db, atoi(CA_STORE_BUSY_MS));
        if (rc != SQLITE_OK) {
            s->last_error = apr_pstrdup(s->conn_pool, sqlite3_errmsg(db));
            s->err_kind = error_kind(s, rc, s->last_error);
            ca_st_wl_leave(s);
            if (s->err_kind == CA_ERR_BUSY) {
                s->last_error = apr_psprintf(s->conn_pool, "the database is "
                                             "locked by another program "
                                             "(%s)%s", s->last_error,
                                             s->yielded
                                             ? "; given up before the "
                                               "deadline for requests "
                                               "waiting for a connection"
                                             : "");
                return CA_EBUSY;
            }
            return CA_EDB;
        }
        s->in_txn = 1;
        s->txn_failed = 0;
        s->err_kind = CA_ERR_OTHER;
        if (s->wlock) {
            s->wlock(s->wlock_baton, CA_STORE_THROUGH, 0, NULL);
        }
        return APR_SUCCESS;
    }
    if (s->d->begin) {
        rc = apr_dbd_query(s->driver, s->handle, &nrows, s->d->begin);
        if (rc != 0) {
            ca_st_error(s, rc);
            ca_st_wl_leave(s);
            return CA_EDB;
        }
        s->in_txn = 1;
        s->txn_failed = 0;
        return APR_SUCCESS;
    }
    rc = apr_dbd_transaction_start(s->driver, p, s->handle, &s->txn);
    if (rc != 0) {
        ca_st_error(s, rc);
        if (s->txn) {
            apr_dbd_transaction_mode_set(s->driver, s->txn,
                                         APR_DBD_TRANSACTION_ROLLBACK);
            apr_dbd_transaction_end(s->driver, p, s->txn);
            s->txn = NULL;
        }
        ca_st_wl_leave(s);
        return CA_EDB;
    }
    return APR_SUCCESS;
}

/* End the transaction: commit when `commit` and no statement failed, else
 * roll back.  CA_EDB when a commit was asked for and did not happen. */
apr_status_t ca_st_txn_close(ca_store_t *s, apr_pool_t *p, int commit)
{
    int rc, nrows = 0;

    if (s->in_txn) {
        int failed = s->txn_failed;

        s->in_txn = 0;
        s->txn_failed = 0;
        rc = apr_dbd_query(s->driver, s->handle, &nrows,
                           commit && !failed ? "COMMIT" : "ROLLBACK");
        if (rc != 0) {
            ca_st_error(s, rc);
            if (s->d->sqlite) {
                /* a failed COMMIT leaves SQLite's transaction open */
                sqlite3 *db = apr_dbd_native_handle(s->driver, s->handle);
                if (db && !sqlite3_get_autocommit(db)) {
                    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                }
            }
        }
        ca_st_wl_leave(s);
        if (rc != 0) {
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
    ca_st_wl_leave(s);
    if (rc != 0) {
        ca_st_error(s, rc);
        return CA_EDB;
    }
    return APR_SUCCESS;
}

/* A lock held until the transaction ends (PostgreSQL: an advisory lock);
 * nothing to do where the write transaction excludes other writers. */
apr_status_t ca_st_xact_lock(ca_store_t *s, apr_pool_t *p, int cls, int key)
{
    if (!s->d->xact_lock) {
        return APR_SUCCESS;
    }
    return ca_st_select_drain(s, p, apr_psprintf(p, s->d->xact_lock, cls, key));
}

apr_status_t ca_store_txn_lock(ca_store_t *s, apr_pool_t *p, const char *key)
{
    apr_ssize_t len = APR_HASH_KEY_STRING;

    if (!s->txn && !s->in_txn) {
        s->last_error = "ca_store_txn_lock outside a transaction";
        return CA_EDB;
    }
    return ca_st_xact_lock(s, p, PG_LOCK_ISSUE,
                     (int)apr_hashfunc_default(key, &len));
}

/* The SQL a database gets (for tests and tools). */
const char *ca_store_dialect_sql(apr_pool_t *p, const char *driver,
                                 const char *sql)
{
    return ca_st_sql_expand(p, ca_st_dialect_of(driver), sql);
}

const char *ca_store_statement_sql(apr_pool_t *p, const char *driver,
                                   const char *label)
{
    const ca_st_stmt_def *d = stmt_def_of(label);

    return d ? ca_st_sql_expand(p, ca_st_dialect_of(driver), d->sql) : NULL;
}

const char *ca_store_statement_label(int i)
{
    const ca_st_stmt_def *const *t;
    const ca_st_stmt_def *d;

    for (t = stmt_tables; *t && i >= 0; t++) {
        for (d = *t; d->label; d++) {
            if (i-- == 0) {
                return d->label;
            }
        }
    }
    return NULL;
}

const char *ca_st_random_id(apr_pool_t *p)
{
    unsigned char rnd[12];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return NULL;
    }
    return apr_pescape_hex(p, rnd, sizeof(rnd), 0);
}

const char *ca_st_i64(apr_pool_t *p, apr_int64_t v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, v);
}

apr_int64_t ca_st_to_i64(const char *v)
{
    return v ? apr_atoi64(v) : 0;
}

const char *ca_st_col(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *row,
                      int i)
{
    const char *v = apr_dbd_get_entry(s->driver, row, i);
    return apr_pstrdup(p, v ? v : "");
}

apr_int64_t ca_st_col_i64(ca_store_t *s, apr_dbd_row_t *row, int i)
{
    return ca_st_to_i64(apr_dbd_get_entry(s->driver, row, i));
}

apr_status_t ca_st_exec(ca_store_t *s, apr_pool_t *p, const char *label,
                        int nargs, const char **args, int *nrows)
{
    apr_dbd_prepared_t *stmt;
    apr_status_t rv;
    int n = 0, rc;

    if ((rv = ca_st_stmt(s, label, &stmt)) != APR_SUCCESS) {
        return rv;
    }
    rc = ca_st_write(s, p, &n, stmt, nargs, args);
    if (rc != 0) {
        ca_st_error(s, rc);
        return CA_EDB;
    }
    if (nrows) {
        *nrows = n;
    }
    return APR_SUCCESS;
}

/* Run the prepared statement `label` with its arguments; the results in
 * *res, read to the end by the caller. */
apr_status_t ca_st_pselect(ca_store_t *s, apr_pool_t *p,
                                const char *label, int nargs,
                                const char **args, apr_dbd_results_t **res)
{
    apr_dbd_prepared_t *stmt;
    apr_status_t rv;
    int rc;

    if ((rv = ca_st_stmt(s, label, &stmt)) != APR_SUCCESS) {
        return rv;
    }
    if (pg_budget(s) != APR_SUCCESS) {
        s->keep_error = 0;
        return CA_EDB;
    }
    rc = apr_dbd_pselect(s->driver, p, s->handle, res, stmt, s->d->seek,
                         nargs, args);
    if (rc != 0) {
        ca_st_error(s, rc);
        return CA_EDB;
    }
    return APR_SUCCESS;
}

void ca_st_fill_col0(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *row,
                     void *elt, void *baton)
{
    (void)baton;
    *(const char **)elt = ca_st_col(s, p, row, 0);
}

apr_status_t ca_st_rows(ca_store_t *s, apr_pool_t *p, const char *label,
                        int nargs, const char **args, apr_size_t elt_size,
                        ca_st_fill_fn fill, void *baton,
                        apr_array_header_t **rows)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_status_t rv;

    if ((rv = ca_st_pselect(s, p, label, nargs, args, &res)) != APR_SUCCESS) {
        return rv;
    }
    *rows = apr_array_make(p, 4, (int)elt_size);
    while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
        fill(s, p, row, apr_array_push(*rows), baton);
    }
    return APR_SUCCESS;
}

apr_status_t ca_st_row(ca_store_t *s, apr_pool_t *p, const char *label,
                       int nargs, const char **args, apr_size_t elt_size,
                       ca_st_fill_fn fill, void *baton, void *elt)
{
    apr_array_header_t *rows;
    apr_status_t rv = ca_st_rows(s, p, label, nargs, args, elt_size, fill,
                                 baton, &rows);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (rows->nelts == 0) {
        return CA_ENOTFOUND;
    }
    memcpy(elt, rows->elts, elt_size);
    return APR_SUCCESS;
}

/* The first column as a number, an apr_int64_t (ca_st_fill_fn). */
static void i64_of(ca_store_t *s, apr_pool_t *p, apr_dbd_row_t *row,
                   void *elt, void *baton)
{
    (void)p;
    (void)baton;
    *(apr_int64_t *)elt = ca_st_col_i64(s, row, 0);
}

apr_status_t ca_st_count(ca_store_t *s, apr_pool_t *p, const char *label,
                             int nargs, const char **args, apr_int64_t *count)
{
    apr_array_header_t *rows;
    apr_status_t rv = ca_st_rows(s, p, label, nargs, args,
                                 sizeof(apr_int64_t), i64_of, NULL, &rows);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* (a count is one row; should there be more, the last) */
    *count = rows->nelts ? APR_ARRAY_IDX(rows, rows->nelts - 1, apr_int64_t)
                         : 0;
    return APR_SUCCESS;
}

apr_status_t ca_store_txn_begin(ca_store_t *s, apr_pool_t *p)
{
    return ca_st_txn_open(s, p);
}

apr_status_t ca_store_txn_end(ca_store_t *s, apr_pool_t *p, int commit)
{
    return ca_st_txn_close(s, p, commit);
}
