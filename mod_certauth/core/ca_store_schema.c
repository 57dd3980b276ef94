/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_store_schema.c: the tables, their forward migrations, and the
 * schema version kept in the database. */

#include <stdlib.h>
#include <string.h>

#include <apr_dbd.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "ca_ca.h"
#include "ca_log.h"
#include "ca_store_int.h"
#include "ca_store_test.h"
#include "ca_util.h"

#define SCHEMA_VERSION 10

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

/* 6: which certificate authorised a certificate issued on the strength of
 * that certificate alone (EST with a client certificate and no login,
 * CertAuthEnrollWithCertificate), so that revoking it for keyCompromise
 * revokes what it authorised (ca_lc_revoke). */
static const char *const migration_6[] = {
    "CREATE TABLE certauth_cert_links ("
    " serial VARCHAR(64) PRIMARY KEY,"
    " authorized_by VARCHAR(64) NOT NULL)",
    "CREATE INDEX certauth_cert_links_by ON certauth_cert_links "
    "(authorized_by)",
    NULL
};

/* 7: the ACME server (ca_store_acme.c): nonces, EAB credentials,
 * accounts, orders, authorizations, challenges.  Orders reference
 * accounts, authorizations orders, challenges authorizations; rows are
 * deleted children first (cleanup). */
static const char *const migration_7[] = {
    "CREATE TABLE certauth_acme_nonces ("
    " nonce VARCHAR(64) PRIMARY KEY,"
    " expires BIGINT NOT NULL)",
    "CREATE INDEX certauth_acme_nonces_exp ON certauth_acme_nonces (expires)",
    "CREATE TABLE certauth_acme_eab ("
    " kid VARCHAR(64) PRIMARY KEY,"
    " hmac_key VARCHAR(128) NOT NULL,"
    " owner VARCHAR(255) NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " expires BIGINT NOT NULL,"
    " account VARCHAR(64) NOT NULL DEFAULT '')",
    "CREATE TABLE certauth_acme_accounts ("
    " id VARCHAR(64) PRIMARY KEY,"
    " thumbprint VARCHAR(64) NOT NULL UNIQUE,"
    " jwk TEXT NOT NULL,"
    " owner VARCHAR(255) NOT NULL,"
    " status VARCHAR(16) NOT NULL,"
    " contact TEXT NOT NULL,"
    " eab_kid VARCHAR(64) NOT NULL,"
    " created_at BIGINT NOT NULL)",
    "CREATE TABLE certauth_acme_orders ("
    " id VARCHAR(64) PRIMARY KEY,"
    " account VARCHAR(64) NOT NULL,"
    " status VARCHAR(16) NOT NULL,"
    " expires BIGINT NOT NULL,"
    " identifiers TEXT NOT NULL,"
    " profile VARCHAR(64) NOT NULL,"
    " serial VARCHAR(64) NOT NULL DEFAULT '',"
    " error TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL)",
    "CREATE INDEX certauth_acme_orders_exp ON certauth_acme_orders (expires)",
    "CREATE TABLE certauth_acme_authz ("
    " id VARCHAR(64) PRIMARY KEY,"
    " order_id VARCHAR(64) NOT NULL,"
    " account VARCHAR(64) NOT NULL,"
    " ident VARCHAR(255) NOT NULL,"
    " status VARCHAR(16) NOT NULL,"
    " expires BIGINT NOT NULL,"
    " seq INTEGER NOT NULL)",
    "CREATE INDEX certauth_acme_authz_order ON certauth_acme_authz "
    "(order_id, seq)",
    "CREATE TABLE certauth_acme_challenges ("
    " id VARCHAR(64) PRIMARY KEY,"
    " authz_id VARCHAR(64) NOT NULL,"
    " type VARCHAR(16) NOT NULL,"
    " token VARCHAR(64) NOT NULL,"
    " status VARCHAR(16) NOT NULL,"
    " validated_at BIGINT NOT NULL DEFAULT 0,"
    " error TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX certauth_acme_chall_authz ON certauth_acme_challenges "
    "(authz_id)",
    NULL
};

/* 8: after a CA rollover each CA generation has its own CRL, which lists
 * only the certificates it issued: each certificate's issuer (the key
 * identifier of its authorityKeyIdentifier, lower-case hex; '' when it
 * names none), filled in from the stored certificates (backfill_issuers);
 * the CRL index covers it; the CRL row keeps the previous CA's CRL made with
 * the current one (same number and dates). */
#define ISSUER_MIGRATION 8
static const char *const migration_8[] = {
    "ALTER TABLE certauth_certs ADD COLUMN issuer_kid VARCHAR(64) NOT NULL "
    "DEFAULT ''",
    "DROP INDEX IF EXISTS certauth_certs_crl",
    "CREATE INDEX certauth_certs_crl ON certauth_certs "
    "(serial, not_after, revoked_at, reason, invalidity_at, status, "
    "issuer_kid) WHERE status IN ('revoked', 'superseded')",
    "ALTER TABLE certauth_crl ADD COLUMN prev_kid VARCHAR(64) NOT NULL "
    "DEFAULT ''",
    "ALTER TABLE certauth_crl ADD COLUMN prev_der TEXT NOT NULL DEFAULT ''",
    NULL
};

/* 9: ACME nonces are made without the database (an HMAC of their issue
 * time and random octets, ca_acme_nonce_make) under a key kept in the
 * database for every child and front end (one row, made once by the
 * module); a nonce is recorded only when a request signed with it is
 * verified (spent, until its lifetime is over).  The table of handed-out
 * nonces goes. */
static const char *const migration_9[] = {
    "DROP TABLE certauth_acme_nonces",
    "CREATE TABLE certauth_acme_nonce_key ("
    " id INTEGER PRIMARY KEY,"
    " hmac_key VARCHAR(128) NOT NULL,"
    " created_at BIGINT NOT NULL)",
    "CREATE TABLE certauth_acme_spent_nonces ("
    " nonce VARCHAR(64) PRIMARY KEY,"
    " expires BIGINT NOT NULL)",
    "CREATE INDEX certauth_acme_spent_nonces_exp ON "
    "certauth_acme_spent_nonces (expires)",
    NULL
};

/* 10: a CA rolled over more than once keeps a CRL for each previous
 * generation: their key identifiers, separated by spaces, no longer fit
 * prev_kid's VARCHAR(64) (PostgreSQL enforces it), so a TEXT column holds
 * them (prev_kid is kept, no longer used: SQLite cannot change a column's
 * type). */
static const char *const migration_10[] = {
    "ALTER TABLE certauth_crl ADD COLUMN prev_kids TEXT NOT NULL DEFAULT ''",
    "UPDATE certauth_crl SET prev_kids = prev_kid",
    NULL
};

static const char *const *const migrations[SCHEMA_VERSION] = {
    migration_1,
    migration_2,
    migration_3,
    migration_4,
    migration_5,
    migration_6,
    migration_7,
    migration_8,
    migration_9,
    migration_10,
};

/* ISSUER_MIGRATION: the issuer of every stored certificate, from its PEM,
 * in the migration's transaction (serials and key identifiers are hex: no
 * quoting needed).  Read in pages by serial, so that a large store is not
 * held in memory at once. */
static apr_status_t backfill_issuers(ca_store_t *s, apr_pool_t *pool)
{
    const char *after = "";
    apr_status_t rv = APR_SUCCESS;

    for (;;) {
        apr_dbd_results_t *res = NULL;
        apr_dbd_row_t *row = NULL;
        apr_array_header_t *rows;
        apr_pool_t *p;
        int rc, i, n = 0;

        apr_pool_create(&p, pool);
        rows = apr_array_make(p, 1000, sizeof(const char *) * 2);
        rc = apr_dbd_select(s->driver, p, s->handle, &res,
                            apr_psprintf(p, "SELECT serial, cert_pem FROM "
                                         "certauth_certs WHERE serial > '%s' "
                                         "ORDER BY serial LIMIT 1000", after),
                            s->d->seek);
        if (rc != 0) {
            ca_st_error(s, rc);
            apr_pool_destroy(p);
            return CA_EDB;
        }
        while (apr_dbd_get_row(s->driver, p, res, &row, -1) == 0) {
            const char **pair = apr_array_push(rows);
            pair[0] = ca_st_col(s, p, row, 0);
            pair[1] = ca_pem_issuer_key_id(p, apr_dbd_get_entry(s->driver,
                                                                row, 1));
            n++;
        }
        for (i = 0; i < rows->nelts && rv == APR_SUCCESS; i++) {
            const char **pair = &((const char **)rows->elts)[2 * i];
            if (*pair[1] && pair[0][strspn(pair[0], "0123456789ABCDEFabcdef")]
                                == '\0') {
                rv = ca_st_query(s, apr_psprintf(p, "UPDATE certauth_certs "
                                                 "SET issuer_kid = '%s' "
                                                 "WHERE serial = '%s'",
                                                 pair[1], pair[0]));
            }
        }
        if (n > 0) {
            after = apr_pstrdup(pool, ((const char **)rows->elts)
                                          [2 * (n - 1)]);
        }
        apr_pool_destroy(p);
        if (rv != APR_SUCCESS || n < 1000
            || after[strspn(after, "0123456789ABCDEFabcdef")] != '\0') {
            return rv;
        }
    }
}


int ca_store_schema_version(void)
{
    return SCHEMA_VERSION;
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
        ca_st_error(s, rc);
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
/* One migration in its own transaction; a no-op when another process has
 * applied it meanwhile.  *applied tells whether this call did it. */
static apr_status_t migrate_to(ca_store_t *s, apr_pool_t *p, int target,
                               int *applied)
{
    const char *const *sql;
    apr_status_t rv, crv;
    int cur = 0;

    *applied = 0;
    if ((rv = ca_st_txn_open(s, p)) != APR_SUCCESS) {
        return rv;
    }
    rv = ca_st_xact_lock(s, p, PG_LOCK_MIGRATE, 0);
    if (rv == APR_SUCCESS) {
        rv = read_version(s, p, &cur);
    }
    if (rv == APR_SUCCESS && cur < target) {
        for (sql = migrations[target - 1]; *sql && rv == APR_SUCCESS; sql++) {
            rv = ca_st_query(s, ca_st_sql_expand(p, s->d, *sql));
        }
        if (rv == APR_SUCCESS && target == ISSUER_MIGRATION) {
            rv = backfill_issuers(s, p);
        }
        if (rv == APR_SUCCESS) {
            rv = ca_st_query(s, "DELETE FROM certauth_schema");
        }
        if (rv == APR_SUCCESS) {
            rv = ca_st_query(s, apr_psprintf(p, "INSERT INTO certauth_schema"
                                           " (version) VALUES (%d)", target));
        }
    }
    crv = ca_st_txn_close(s, p, rv == APR_SUCCESS);
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
        /* in a transaction of the store's: its wait for the write lock
         * is the bounded one */
        if ((rv = ca_st_txn_open(s, p)) != APR_SUCCESS) {
            return rv;
        }
        rv = ca_st_query(s, sql);
        crv = ca_st_txn_close(s, p, rv == APR_SUCCESS);
        return rv != APR_SUCCESS ? rv : crv;
    }
    if ((rv = ca_st_txn_open(s, p)) != APR_SUCCESS) {
        return rv;
    }
    rv = ca_st_xact_lock(s, p, PG_LOCK_MIGRATE, 0);
    if (rv == APR_SUCCESS) {
        rv = ca_st_query(s, sql);
    }
    crv = ca_st_txn_close(s, p, rv == APR_SUCCESS);
    return rv == APR_SUCCESS ? crv : rv;
}

apr_status_t ca_store_migrate(ca_store_t *s, apr_pool_t *p, int *version,
                              const char **err)
{
    apr_status_t rv;
    int v = 0, target, tries;

    *err = NULL;
    /* the usual case, a current schema: nothing to write, so nothing to
     * wait for while another program holds the write lock */
    {
        const char *last = s->last_error;
        int kind = s->err_kind;

        if (read_version(s, p, &v) == APR_SUCCESS && v == SCHEMA_VERSION) {
            *version = v;
            return APR_SUCCESS;
        }
        /* (no table yet: not an error of this call's) */
        s->last_error = last;
        s->err_kind = kind;
    }
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
    return *sql ? ca_st_sql_expand(p, ca_st_dialect_of(driver), *sql) : NULL;
}
