/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* The store's SQL dialects, and the store against PostgreSQL.
 *
 * Without a server: the SQL each database gets (tokens expanded, the CRL row
 * locked on PostgreSQL only, typed numeric parameters, every statement and
 * migration).  With CERTAUTH_TEST_PGSQL set to the connection parameters of
 * an empty PostgreSQL database (tests/integration/test_pg.py starts one and
 * runs this program): migrations from several processes, round trips,
 * failures inside transactions, the CRL row lock and the advisory locks
 * across processes, and a connection the server closed. */

#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "unit.h"
#include "rawdb.h"
#include "ca_log.h"
#include "ca_store.h"
#include "ca_store_test.h"
#include "ca_util.h"

static const char *pg_params;

static int contains(const char *s, const char *part)
{
    return s && strstr(s, part) != NULL;
}

static void log_quiet(void *baton, const char *file, int line,
                      ca_log_level_t level, apr_status_t rv, const char *msg)
{
    (void)baton; (void)file; (void)line; (void)level; (void)rv; (void)msg;
}

/* ------------------------------------------------------------------ */
/* SQL generation (no server)                                          */
/* ------------------------------------------------------------------ */

static void test_tokens(apr_pool_t *p)
{
    /* {BLOB} and {ID_PK} are gone (no statement used them): not tokens */
    UT_CHECK(ut_streq(ca_store_dialect_sql(p, "pgsql", "a {BLOB} b"),
                   "a {BLOB} b"));
    UT_CHECK(ut_streq(ca_store_dialect_sql(p, "pgsql",
                                        "SELECT 1{FOR_UPDATE}{FOR_UPDATE}"),
                   "SELECT 1 FOR UPDATE FOR UPDATE"));
    UT_CHECK(ut_streq(ca_store_dialect_sql(p, "sqlite3", "SELECT 1{FOR_UPDATE}"),
                   "SELECT 1"));
    /* not a token: left as it is */
    UT_CHECK(ut_streq(ca_store_dialect_sql(p, "pgsql", "SELECT '{x}'"),
                   "SELECT '{x}'"));
    UT_CHECK(ut_streq(ca_store_dialect_sql(p, "pgsql", "{"), "{"));
    /* an unknown driver gets plain SQL */
    UT_CHECK(ut_streq(ca_store_dialect_sql(p, "odbc", "x{FOR_UPDATE}"), "x"));
}

static void test_statements(apr_pool_t *p)
{
    int i, n = 0;
    const char *label;

    for (i = 0; (label = ca_store_statement_label(i)) != NULL; i++) {
        const char *pg = ca_store_statement_sql(p, "pgsql", label);
        const char *lite = ca_store_statement_sql(p, "sqlite3", label);
        n++;
        UT_CHECK_MSG(pg && lite, "%s", label);
        if (!pg || !lite) {
            continue;
        }
        UT_CHECK_MSG(!strchr(pg, '{') && !strchr(lite, '{'), "%s", label);
        /* numbers are typed parameters: PostgreSQL compares a BIGINT
         * column with a varchar parameter only with a cast */
        UT_CHECK_MSG(!contains(pg, "LIMIT %s") && !contains(pg, "OFFSET %s")
                     && !contains(pg, "_at > %s")
                     && !contains(pg, "not_after > %s")
                     && !contains(pg, "not_after <= %s")
                     && !contains(pg, "_at = %s")
                     && !contains(pg, "crl_number = %s"),
                     "%s: %s", label, pg);
        if (!strcmp(label, "certauth_crl_lock")) {
            UT_CHECK(contains(pg, " FOR UPDATE"));
            UT_CHECK(!contains(lite, "FOR UPDATE"));
        }
        else {
            /* the only difference between the two */
            UT_CHECK_MSG(!strcmp(pg, lite), "%s", label);
        }
    }
    UT_CHECK(n >= 20);
    UT_CHECK(ca_store_statement_sql(p, "pgsql", "no_such_statement") == NULL);
    /* a taken serial is no error inside a PostgreSQL transaction */
    UT_CHECK(contains(ca_store_statement_sql(p, "pgsql",
                                             "certauth_cert_insert"),
                      "ON CONFLICT (serial) DO NOTHING"));
}

static void test_migrations(apr_pool_t *p)
{
    int v, i, total = 0;

    for (v = 1; v <= ca_store_schema_version(); v++) {
        for (i = 0; ca_store_migration_sql(p, "sqlite3", v, i); i++) {
            const char *pg = ca_store_migration_sql(p, "pgsql", v, i);
            UT_CHECK_MSG(pg && !strchr(pg, '{'), "migration %d.%d", v, i);
            total++;
        }
        UT_CHECK_MSG(ca_store_migration_sql(p, "pgsql", v, i) == NULL,
                     "migration %d has as many statements for both", v);
        UT_CHECK(i > 0);
    }
    UT_CHECK(total >= 10);
    UT_CHECK(ca_store_migration_sql(p, "pgsql", 0, 0) == NULL);
    UT_CHECK(ca_store_migration_sql(p, "pgsql",
                                    ca_store_schema_version() + 1, 0) == NULL);
    UT_CHECK(ca_store_migration_sql(p, "pgsql", 1, -1) == NULL);
}

/* ------------------------------------------------------------------ */
/* Against PostgreSQL                                                  */
/* ------------------------------------------------------------------ */

static raw_t *pg_raw(apr_pool_t *p)
{
    raw_t *r = apr_pcalloc(p, sizeof(*r));
    const char *err = NULL;

    apr_dbd_init(p);
    if (apr_dbd_get_driver(p, "pgsql", &r->drv) != APR_SUCCESS
        || apr_dbd_open_ex(r->drv, p, pg_params, &r->h, &err)
               != APR_SUCCESS) {
        fprintf(stderr, "raw open %s: %s\n", pg_params, err ? err : "?");
        abort();
    }
    apr_pool_cleanup_register(p, r, raw_close, apr_pool_cleanup_null);
    return r;
}

/* An empty database for each test: every certauth_ table goes (those of
 * later migrations too). */
static void pg_reset(apr_pool_t *p)
{
    raw_t *r = pg_raw(p);
    UT_CHECK(raw_exec(r, "DO $$ DECLARE t text; BEGIN "
                         "FOR t IN SELECT tablename FROM pg_tables "
                         "WHERE schemaname = current_schema() "
                         "AND tablename LIKE 'certauth\\_%' LOOP "
                         "EXECUTE 'DROP TABLE IF EXISTS ' || quote_ident(t) "
                         "|| ' CASCADE'; END LOOP; END $$") == 0);
}

static ca_store_t *pg_store(apr_pool_t *p, int migrate)
{
    return ut_store(p, "pgsql", pg_params, migrate);
}

static ca_cert_row_t *mkrow(apr_pool_t *p, const char *serial,
                            const char *owner, apr_int64_t issued_at)
{
    ca_cert_row_t *r = ut_cert_row(p, serial, owner, issued_at);
    r->subject = apr_psprintf(p, "CN=%s O'Brien \xc3\xa9 50%%_off!,"
                              "O=Ex\"ample", owner);
    return r;
}

/* Run fn(i) in n processes at once; the number that returned 0. */
static int in_processes(int n, int (*fn)(int i))
{
    pid_t pids[16];
    int i, ok = 0;

    fflush(NULL);
    for (i = 0; i < n && i < 16; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            _exit(fn(i));
        }
    }
    for (i = 0; i < n && i < 16; i++) {
        int status = -1;
        if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i]
            && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ok++;
        }
    }
    return ok;
}

static int child_migrate(int i)
{
    apr_pool_t *cp;
    ca_store_t *s = NULL;
    const char *err = NULL;
    int v = -1, rc = 1;

    apr_pool_create(&cp, NULL);
    if (ca_store_open(&s, cp, "pgsql", pg_params, &err) == APR_SUCCESS
        && ca_store_migrate(s, cp, &v, &err) == APR_SUCCESS
        && v == ca_store_schema_version()
        && ca_store_cert_insert(s, cp, mkrow(cp, apr_psprintf(cp, "C%d", i),
                                             "child", 1)) == APR_SUCCESS) {
        rc = 0;
    }
    else {
        fprintf(stderr, "  child %d: %s\n", i,
                err ? err : ca_store_last_error(s));
    }
    apr_pool_destroy(cp);
    return rc;
}

static void test_pg_migrate_concurrent(apr_pool_t *p)
{
    raw_t *r;
    ca_store_t *s;
    const char *err = NULL;
    int v = -1, ok;

    pg_reset(p);
    ok = in_processes(6, child_migrate);
    UT_CHECK_MSG(ok == 6, "%d of 6 processes migrated", ok);
    r = pg_raw(p);
    UT_CHECK(ut_streq(raw_scalar(p, r, "SELECT COUNT(*) FROM certauth_schema"),
                   "1"));
    UT_CHECK(ut_streq(raw_scalar(p, r, "SELECT version FROM certauth_schema"),
                   apr_itoa(p, ca_store_schema_version())));
    UT_CHECK(ut_streq(raw_scalar(p, r, "SELECT COUNT(*) FROM certauth_certs"),
                   "6"));
    /* once more: nothing to do */
    s = pg_store(p, 0);
    UT_CHECK(s && ca_store_migrate(s, p, &v, &err) == APR_SUCCESS
             && v == ca_store_schema_version());
    /* a newer schema is refused */
    UT_CHECK(raw_exec(r, "UPDATE certauth_schema SET version = 99") == 0);
    UT_CHECK(s && ca_store_migrate(s, p, &v, &err) == CA_ECONFIG);
    UT_CHECK(contains(err, "newer"));
}

static void test_pg_roundtrip(apr_pool_t *p)
{
    ca_store_t *s;
    ca_cert_row_t *in, *out = NULL;
    apr_array_header_t *rows = NULL;
    ca_cert_filter_t f;
    apr_int64_t n = -1;

    pg_reset(p);
    if (!(s = pg_store(p, 1))) return;
    in = mkrow(p, "0A0B", "alice", 1000);
    UT_CHECK(ca_store_cert_insert(s, p, in) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "0A0B", "eve", 1))
             == CA_EEXIST);
    UT_CHECK(ca_store_cert_get(s, p, "0A0B", &out) == APR_SUCCESS);
    UT_CHECK(out && ut_streq(out->subject, in->subject)
             && ut_streq(out->owner, "alice") && out->not_after == in->not_after
             && out->reason == -1 && ut_streq(out->replaced_by, ""));
    UT_CHECK(ca_store_cert_get(s, p, "FF", &out) == CA_ENOTFOUND);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "0C", "alice", 2000)) == 0);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "0D", "bob", 3000)) == 0);
    UT_CHECK(ca_store_cert_count(s, p, &n) == APR_SUCCESS && n == 3);
    UT_CHECK(ca_store_cert_list(s, p, "alice", 1, 1, &rows) == APR_SUCCESS
             && rows->nelts == 1
             && ut_streq(APR_ARRAY_IDX(rows, 0, ca_cert_row_t *)->serial,
                      "0A0B"));
    UT_CHECK(ca_store_count_valid_owner(s, p, "alice", "default", 1500, &n)
             == APR_SUCCESS && n == 2);
    UT_CHECK(ca_store_cert_set_status(s, p, "0C", CA_STATUS_VALID,
                                      CA_STATUS_REVOKED, 2500, 1, 2400, NULL,
                                      &out) == APR_SUCCESS);
    UT_CHECK(out && ut_streq(out->status, "revoked") && out->reason == 1
             && out->invalidity_at == 2400);
    UT_CHECK(ca_store_cert_set_status(s, p, "0C", CA_STATUS_VALID,
                                      CA_STATUS_REVOKED, 2600, 1, 0, NULL,
                                      &out) == CA_ECONFLICT);
    /* search: LIKE with the wildcards of the text escaped */
    memset(&f, 0, sizeof(f));
    f.subject_contains = "50%_off!";
    UT_CHECK(ca_store_cert_search(s, p, &f, 10, 0, &rows) == APR_SUCCESS
             && rows->nelts == 3);
    f.subject_contains = "50x_off";
    UT_CHECK(ca_store_cert_search(s, p, &f, 10, 0, &rows) == APR_SUCCESS
             && rows->nelts == 0);
    memset(&f, 0, sizeof(f));
    f.status = "revoked";
    UT_CHECK(ca_store_cert_search(s, p, &f, 10, 0, &rows) == APR_SUCCESS
             && rows->nelts == 1);
    f.status = NULL;
    f.not_after_max = 1000 + 365 * 86400;
    UT_CHECK(ca_store_cert_search(s, p, &f, 10, 0, &rows) == APR_SUCCESS
             && rows->nelts == 1);
    {
        apr_array_header_t *e = NULL;
        UT_CHECK(ca_store_crl_entries(s, p, 0, &e) == APR_SUCCESS
                 && e->nelts == 1);
        UT_CHECK(ca_store_count_listable(s, p, 0, 3000, &n) == APR_SUCCESS
                 && n == 1);
    }
    {
        ca_audit_t a;
        memset(&a, 0, sizeof(a));
        a.at = 7;
        a.action = "revoke";
        a.serial = "0C";
        UT_CHECK(ca_store_audit_add(s, p, &a) == APR_SUCCESS);
        UT_CHECK(ca_store_audit_list(s, p, "0C", 10, 0, &rows) == APR_SUCCESS
                 && rows->nelts == 1
                 && APR_ARRAY_IDX(rows, 0, ca_audit_t *)->at == 7);
    }
    {
        ca_pending_t r, *got = NULL;
        memset(&r, 0, sizeof(r));
        r.csr_hash = "h"; r.owner = "alice"; r.profile = "default";
        r.subject = "CN=x"; r.csr_pem = "pem"; r.status = "pending";
        r.created_at = 5;
        UT_CHECK(ca_store_pending_add(s, p, &r) == APR_SUCCESS);
        UT_CHECK(ca_store_pending_find(s, p, "h", "alice", "default", &got)
                 == APR_SUCCESS && got && ut_streq(got->id, r.id));
        UT_CHECK(ca_store_pending_set(s, p, r.id, "pending", "approved",
                                      "admin", 6, "") == APR_SUCCESS);
        UT_CHECK(ca_store_pending_set(s, p, r.id, "pending", "rejected",
                                      "admin", 6, "") == CA_ECONFLICT);
        UT_CHECK(ca_store_pending_list(s, p, "approved", 10, 0, &rows)
                 == APR_SUCCESS && rows->nelts == 1);
    }
    {
        /* a CA rolled over twice: the CRLs of two previous generations,
         * their key identifiers listed (more than VARCHAR(64) holds) */
        const char *kids = "1111111111111111111111111111111111111111 "
                           "2222222222222222222222222222222222222222";
        const char *got_kids = NULL, *got_ders = NULL;
        apr_int64_t num = 0, tu = 0, nu = 0;
        UT_CHECK(ca_store_crl_head(s, p, &num, &tu, &nu) == APR_SUCCESS);
        UT_CHECK_MSG(ca_store_crl_put(s, p, num, num + 1, 10, 20, "AAAA",
                                      kids, "QUFB QkJC") == APR_SUCCESS,
                     "%s", ca_store_last_error(s));
        UT_CHECK(ca_store_crl_prev(s, p, &num, &tu, &nu, &got_kids,
                                   &got_ders) == APR_SUCCESS
                 && ut_streq(got_kids, kids) && ut_streq(got_ders, "QUFB QkJC"));
    }
}

/* PostgreSQL fails every statement after an error until the transaction
 * ends: a taken serial must not be one, and a real failure must not be
 * committed as if nothing happened. */
static void test_pg_transactions(apr_pool_t *p)
{
    ca_store_t *s;
    ca_cert_row_t *bad, *out = NULL;
    apr_int64_t num = 0, tu = 0, nu = 0;

    pg_reset(p);
    if (!(s = pg_store(p, 1))) return;
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "A0", "al", 1)) == 0);
    UT_CHECK(ca_store_txn_begin(s, p) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "A0", "al", 2))
             == CA_EEXIST);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "A1", "al", 3))
             == APR_SUCCESS);
    UT_CHECK(ca_store_txn_end(s, p, 1) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_get(s, p, "A1", &out) == APR_SUCCESS);

    UT_CHECK(ca_store_txn_begin(s, p) == APR_SUCCESS);
    UT_CHECK(ca_store_txn_begin(s, p) == CA_EDB);   /* no nesting */
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "A2", "al", 4)) == 0);
    bad = mkrow(p, "A3", "al", 5);
    bad->subject = NULL;
    UT_CHECK(ca_store_cert_insert(s, p, bad) == CA_EDB);
    /* the INSERT's own reason, not that of a statement run after it in
     * the aborted transaction ("current transaction is aborted") */
    UT_CHECK(strstr(ca_store_last_error(s), "subject") != NULL);
    UT_CHECK(!strstr(ca_store_last_error(s), "transaction is aborted"));
    UT_CHECK(ca_store_txn_end(s, p, 1) == CA_EDB);
    UT_CHECK(ca_store_cert_get(s, p, "A2", &out) == CA_ENOTFOUND);
    /* rolled back on request */
    UT_CHECK(ca_store_txn_begin(s, p) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "A4", "al", 6)) == 0);
    UT_CHECK(ca_store_txn_end(s, p, 0) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_get(s, p, "A4", &out) == CA_ENOTFOUND);
    UT_CHECK(ca_store_txn_end(s, p, 1) == APR_SUCCESS);  /* none open */
    /* the CRL row lock and the key locks belong in a transaction */
    UT_CHECK(ca_store_crl_lock(s, p, &num, &tu, &nu) == CA_EDB);
    UT_CHECK(ca_store_txn_lock(s, p, "k") == CA_EDB);
    UT_CHECK(ca_store_txn_begin(s, p) == APR_SUCCESS);
    UT_CHECK(ca_store_crl_lock(s, p, &num, &tu, &nu) == APR_SUCCESS
             && num == 0);
    UT_CHECK(ca_store_txn_lock(s, p, "k") == APR_SUCCESS);
    UT_CHECK(ca_store_txn_end(s, p, 1) == APR_SUCCESS);
}

/* Processes making CRL numbers at once: under the row lock each reads the
 * number the previous one stored, so none is refused and none is lost. */
enum { CRL_PROCS = 5, CRL_ROUNDS = 6 };

static int child_crl(int i)
{
    apr_pool_t *cp;
    ca_store_t *s = NULL;
    const char *err = NULL;
    int round, rc = 0;

    (void)i;
    apr_pool_create(&cp, NULL);
    if (ca_store_open(&s, cp, "pgsql", pg_params, &err) != APR_SUCCESS) {
        return 1;
    }
    for (round = 0; round < CRL_ROUNDS && rc == 0; round++) {
        apr_int64_t old = -1, tu, nu;
        if (ca_store_txn_begin(s, cp) != APR_SUCCESS
            || ca_store_crl_lock(s, cp, &old, &tu, &nu) != APR_SUCCESS) {
            rc = 2;
            break;
        }
        /* widen the window between reading and writing */
        apr_sleep(apr_time_from_msec(15));
        if (ca_store_crl_put(s, cp, old, old + 1, 1, 2, "X", NULL, NULL) != APR_SUCCESS) {
            fprintf(stderr, "  child %d: CRL %d refused: %s\n", i,
                    (int)old + 1, ca_store_last_error(s));
            rc = 3;
        }
        if (ca_store_txn_end(s, cp, rc == 0) != APR_SUCCESS) {
            rc = 4;
        }
    }
    apr_pool_destroy(cp);
    return rc;
}

static void test_pg_crl_lock(apr_pool_t *p)
{
    raw_t *r;
    int ok;

    pg_reset(p);
    if (!pg_store(p, 1)) return;
    ok = in_processes(CRL_PROCS, child_crl);
    UT_CHECK_MSG(ok == CRL_PROCS, "%d of %d processes made all their CRLs",
                 ok, CRL_PROCS);
    r = pg_raw(p);
    UT_CHECK(ut_streq(raw_scalar(p, r, "SELECT crl_number FROM certauth_crl"),
                   apr_itoa(p, CRL_PROCS * CRL_ROUNDS)));
}

/* A per-owner limit checked by several processes at once: the advisory
 * lock lets exactly `limit` of them in. */
enum { LIMIT = 3, LIMIT_PROCS = 8 };

static int child_limit(int i)
{
    apr_pool_t *cp;
    ca_store_t *s = NULL;
    const char *err = NULL;
    apr_int64_t n = -1;
    int rc = 0;

    apr_pool_create(&cp, NULL);
    if (ca_store_open(&s, cp, "pgsql", pg_params, &err) != APR_SUCCESS
        || ca_store_txn_begin(s, cp) != APR_SUCCESS
        || ca_store_txn_lock(s, cp, "owner\nlim\ndefault") != APR_SUCCESS
        || ca_store_count_valid_owner(s, cp, "lim", "default", 0, &n)
               != APR_SUCCESS) {
        return 2;
    }
    apr_sleep(apr_time_from_msec(20));
    if (n < LIMIT
        && ca_store_cert_insert(s, cp, mkrow(cp, apr_psprintf(cp, "L%d", i),
                                             "lim", 10)) != APR_SUCCESS) {
        rc = 3;
    }
    if (ca_store_txn_end(s, cp, rc == 0) != APR_SUCCESS) {
        rc = 4;
    }
    apr_pool_destroy(cp);
    return rc;
}

static void test_pg_txn_lock(apr_pool_t *p)
{
    raw_t *r;
    int ok;

    pg_reset(p);
    if (!pg_store(p, 1)) return;
    ok = in_processes(LIMIT_PROCS, child_limit);
    UT_CHECK(ok == LIMIT_PROCS);
    r = pg_raw(p);
    UT_CHECK(ut_streq(raw_scalar(p, r, "SELECT COUNT(*) FROM certauth_certs "
                                    "WHERE owner = 'lim'"),
                   apr_itoa(p, LIMIT)));
}

/* The server closes the connection (a restart does that to all of them):
 * ca_store_check reopens it, and the statements prepared before still work
 * (they are not named on the server). */
static void test_pg_reconnect(apr_pool_t *p)
{
    raw_t *mine, *other;
    apr_hash_t *prepared = apr_hash_make(p);
    ca_store_t *s = NULL;
    ca_cert_row_t *out = NULL;
    const char *pid, *err = NULL;
    int v;

    pg_reset(p);
    mine = pg_raw(p);
    other = pg_raw(p);
    UT_CHECK(ca_store_wrap(&s, p, mine->drv, mine->h, prepared, p) == 0);
    if (!s) return;
    UT_CHECK(ca_store_migrate(s, p, &v, &err) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "R0", "re", 1)) == 0);
    UT_CHECK(ca_store_cert_get(s, p, "R0", &out) == APR_SUCCESS);
    UT_CHECK(ca_store_check(s, p) == APR_SUCCESS);
    pid = raw_scalar(p, mine, "SELECT pg_backend_pid()");
    UT_CHECK(pid != NULL);
    UT_CHECK(ut_streq(raw_scalar(p, other, apr_pstrcat(
                       p, "SELECT pg_terminate_backend(", pid, ")", NULL)),
                   "t"));
    apr_sleep(apr_time_from_msec(100));
    UT_CHECK(ca_store_check(s, p) == APR_SUCCESS);
    UT_CHECK(!ut_streq(raw_scalar(p, mine, "SELECT pg_backend_pid()"), pid));
    UT_CHECK(ca_store_cert_get(s, p, "R0", &out) == APR_SUCCESS
             && out && ut_streq(out->owner, "re"));
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "R1", "re", 2)) == 0);
}

/* The session turns read-only (a standby, default_transaction_read_only):
 * the failed write says the connection is unusable, also when statements
 * after it in the transaction failed for that reason ("current transaction
 * is aborted"); ca_store_discard ends the session and ca_store_check
 * reconnects it: a new session, writable. */
static void test_pg_read_only(apr_pool_t *p)
{
    raw_t *mine;
    apr_hash_t *prepared = apr_hash_make(p);
    ca_store_t *s = NULL;
    ca_cert_row_t *out = NULL;
    const char *pid, *err = NULL;
    int v;

    pg_reset(p);
    mine = pg_raw(p);
    UT_CHECK(ca_store_wrap(&s, p, mine->drv, mine->h, prepared, p) == 0);
    if (!s) return;
    UT_CHECK(ca_store_migrate(s, p, &v, &err) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "W0", "ro", 1)) == 0);
    pid = raw_scalar(p, mine, "SELECT pg_backend_pid()");
    UT_CHECK(raw_exec(mine, "SET default_transaction_read_only = on") == 0);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "W1", "ro", 2)) != 0);
    UT_CHECK(ca_store_broken(s));
    UT_CHECK(strstr(ca_store_last_error(s), "read-only") != NULL);
    /* in a transaction, with statements after the failed one */
    UT_CHECK(ca_store_txn_begin(s, p) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "W2", "ro", 3)) != 0);
    UT_CHECK(ca_store_cert_get(s, p, "W0", &out) != APR_SUCCESS);
    ca_store_txn_end(s, p, 0);
    UT_CHECK_MSG(ca_store_broken(s), "%s", ca_store_last_error(s));
    UT_CHECK(strstr(ca_store_last_error(s), "read-only") != NULL);
    UT_CHECK(ca_store_discard(s) == APR_SUCCESS);
    UT_CHECK(ca_store_check(s, p) == APR_SUCCESS);
    UT_CHECK(!ut_streq(raw_scalar(p, mine, "SELECT pg_backend_pid()"), pid));
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "W3", "ro", 4)) == 0);
    UT_CHECK(!ca_store_broken(s));
    UT_CHECK(ca_store_cert_get(s, p, "W3", &out) == APR_SUCCESS
             && out && ut_streq(out->owner, "ro"));
}

static void test_pg_unreachable(apr_pool_t *p)
{
    ca_store_t *s = NULL;
    const char *err = NULL;

    /* port 1 on loopback: refused at once */
    UT_CHECK(ca_store_open(&s, p, "pgsql", "host=127.0.0.1 port=1 "
                           "dbname=x user=x connect_timeout=2", &err)
             == CA_EDB);
    UT_CHECK(contains(err, "cannot open pgsql database"));
}

int main(void)
{
    ca_log_set(log_quiet, NULL, CA_LOG_DEBUG);
    UT_RUN(test_tokens);
    UT_RUN(test_statements);
    UT_RUN(test_migrations);
    pg_params = getenv("CERTAUTH_TEST_PGSQL");
    if (pg_params && *pg_params) {
        UT_RUN(test_pg_migrate_concurrent);
        UT_RUN(test_pg_roundtrip);
        UT_RUN(test_pg_transactions);
        UT_RUN(test_pg_crl_lock);
        UT_RUN(test_pg_txn_lock);
        UT_RUN(test_pg_reconnect);
        UT_RUN(test_pg_read_only);
        UT_RUN(test_pg_unreachable);
    }
    else {
        fprintf(stderr, "skip the PostgreSQL tests: CERTAUTH_TEST_PGSQL is "
                "not set (tests/integration/test_pg.py sets it)\n");
    }
    return ut_finish();
}
