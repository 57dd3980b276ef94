/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_store against a temporary SQLite file: migrations (twice,
 * from an older schema, from several processes at once, refusing a newer
 * one), connection settings, the certificate rows (round trip, duplicate
 * serials, lists, counts, status changes, search), transactions, the CRL
 * state, the audit log, and ca_store_wrap over a connection someone else
 * owns (as with mod_dbd). */

#include <dirent.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "unit.h"
#include "rawdb.h"
#include "ca_crl.h"
#include "ca_log.h"
#include "ca_store.h"
#include "ca_store_test.h"
#include "ca_util.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Remove a temporary directory and the files in it (db, -wal, -shm). */
static apr_status_t rm_tmpdir(void *data)
{
    const char *dir = data;
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                unlink(path);
            }
        }
        closedir(d);
    }
    rmdir(dir);
    return APR_SUCCESS;
}

/* A fresh directory, removed when p is destroyed (after anything opened
 * later from p, since cleanups run in reverse order). */
static const char *tmpdir(apr_pool_t *p)
{
    char *dir = apr_pstrdup(p, "/tmp/certauth-test-store.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    apr_pool_cleanup_register(p, dir, rm_tmpdir, apr_pool_cleanup_null);
    return dir;
}

static const char *tmpdb(apr_pool_t *p)
{
    return apr_pstrcat(p, tmpdir(p), "/certauth.db", NULL);
}

static ca_store_t *open_store(apr_pool_t *p, const char *path)
{
    ca_store_t *s = NULL;
    const char *err = NULL;
    apr_status_t rv = ca_store_open(&s, p, "sqlite3", path, &err);
    UT_CHECK_MSG(rv == APR_SUCCESS && s, "open %s: %s", path,
                 err ? err : "?");
    return rv == APR_SUCCESS ? s : NULL;
}

static ca_store_t *open_migrated(apr_pool_t *p, const char *path)
{
    ca_store_t *s = open_store(p, path);
    const char *err = NULL;
    int version = -1;

    if (s && ca_store_migrate(s, p, &version, &err) != APR_SUCCESS) {
        UT_CHECK_MSG(0, "migrate: %s", err ? err : "?");
        return NULL;
    }
    return s;
}

static int streq(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

static const char *PEM =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBszCCAVmgAwIBAgIUdGVzdCdzIG5vdCBhIHJlYWwgY2VydDAKBggqhkjOPQQD\n"
    "AjAfMR0wGwYDVQQDDBR0ZXN0ICdyb290JyBcIiUgXyBDQTAeFw0yNjAxMDEwMDAw\n"
    "-----END CERTIFICATE-----\n";

/* A row with every field set to something distinguishable. */
static ca_cert_row_t *mkrow(apr_pool_t *p, const char *serial,
                            const char *owner, apr_int64_t issued_at)
{
    ca_cert_row_t *r = apr_pcalloc(p, sizeof(*r));
    r->serial = serial;
    r->subject = apr_psprintf(p, "CN=%s O'Brien \xc3\xa9,O=Ex\"ample", owner);
    r->owner = owner;
    r->profile = "default";
    r->not_before = issued_at - 60;
    r->not_after = issued_at + 365 * 86400;
    r->issued_at = issued_at;
    r->status = CA_STATUS_VALID;
    r->revoked_at = 0;
    r->reason = -1;
    r->cert_pem = PEM;
    r->invalidity_at = 0;
    r->replaced_by = "";
    return r;
}

static int rows_equal(const ca_cert_row_t *a, const ca_cert_row_t *b)
{
    return streq(a->serial, b->serial) && streq(a->subject, b->subject)
        && streq(a->owner, b->owner) && streq(a->profile, b->profile)
        && a->not_before == b->not_before && a->not_after == b->not_after
        && a->issued_at == b->issued_at && streq(a->status, b->status)
        && a->revoked_at == b->revoked_at && a->reason == b->reason
        && streq(a->cert_pem, b->cert_pem)
        && a->invalidity_at == b->invalidity_at
        && streq(a->replaced_by ? a->replaced_by : "",
                 b->replaced_by ? b->replaced_by : "");
}

/* Serials of a list, joined with ",". */
static const char *serials(apr_pool_t *p, const apr_array_header_t *rows)
{
    const char *out = "";
    int i;
    for (i = 0; i < rows->nelts; i++) {
        out = apr_pstrcat(p, out, i ? "," : "",
                          APR_ARRAY_IDX(rows, i, ca_cert_row_t *)->serial,
                          NULL);
    }
    return out;
}

/* Collect log lines instead of printing them. */
static char logbuf[8192];
static void log_collect(void *baton, const char *file, int line,
                        ca_log_level_t level, apr_status_t rv,
                        const char *msg)
{
    size_t n = strlen(logbuf);
    (void)baton; (void)file; (void)line; (void)level; (void)rv;
    snprintf(logbuf + n, sizeof(logbuf) - n, "%s\n", msg);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

/* SQLite's plan of the CRL query over a migrated database: the detail
 * column of each EXPLAIN QUERY PLAN row, joined by "; ". */
#define CRL_QUERY(indexed_by) \
    "EXPLAIN QUERY PLAN SELECT serial, revoked_at, reason, invalidity_at " \
    "FROM certauth_certs " indexed_by "WHERE status IN ('revoked', " \
    "'superseded') AND not_after > 0 ORDER BY serial"

static const char *crl_query_plan(apr_pool_t *p, raw_t **rawp,
                                  const char *sql)
{
    const char *db = tmpdb(p);
    ca_store_t *s = open_migrated(p, db);
    raw_t *raw;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *plan = "";

    UT_CHECK(s != NULL);
    raw = raw_open(p, db);
    *rawp = raw;
    UT_CHECK(apr_dbd_select(raw->drv, p, raw->h, &res, sql, 0) == 0);
    while (res && apr_dbd_get_row(raw->drv, p, res, &row, -1) == 0) {
        const char *d = apr_dbd_get_entry(raw->drv, row, 3);
        plan = apr_pstrcat(p, plan, d ? d : "", "; ", NULL);
    }
    return plan;
}

/* The CRL's entries come from an index alone (schema 4), not from the
 * table's rows. */
static void test_crl_query_covered(apr_pool_t *p)
{
    raw_t *raw;
    const char *plan = crl_query_plan(p, &raw, CRL_QUERY(""));

    UT_CHECK_MSG(strstr(plan, "COVERING INDEX certauth_certs_status_crl")
                 != NULL, "plan: %s", plan);
    UT_CHECK(raw_scalar(p, raw, "SELECT name FROM sqlite_master WHERE "
                        "name = 'certauth_certs_status'") == NULL);
}

/* SQLite's CRL query (schema 5, crl_entries_sqlite in ca_store.c) reads
 * the partial index in serial order: no sort, no table rows. */
static void test_crl_query_sqlite_partial(apr_pool_t *p)
{
    raw_t *raw;
    const char *plan = crl_query_plan(
        p, &raw, CRL_QUERY("INDEXED BY certauth_certs_crl "));

    UT_CHECK_MSG(strstr(plan, "COVERING INDEX certauth_certs_crl") != NULL
                 && strstr(plan, "TEMP B-TREE") == NULL, "plan: %s", plan);
}

static void test_migrate_twice(apr_pool_t *p)
{
    const char *db = tmpdb(p);
    ca_store_t *s = open_store(p, db);
    const char *err = NULL;
    int v1 = -1, v2 = -1;
    apr_int64_t n = -1;
    raw_t *r;

    UT_CHECK(ca_store_schema_version() >= 1);
    if (!s) return;
    UT_CHECK(streq(ca_store_last_error(s), ""));
    UT_CHECK(ca_store_migrate(s, p, &v1, &err) == APR_SUCCESS);
    UT_CHECK(err == NULL);
    UT_CHECK(v1 == ca_store_schema_version());
    UT_CHECK(ca_store_migrate(s, p, &v2, &err) == APR_SUCCESS);
    UT_CHECK(v2 == ca_store_schema_version());
    UT_CHECK(ca_store_cert_count(s, p, &n) == APR_SUCCESS && n == 0);

    /* exactly one version row, with the code's version */
    r = raw_open(p, db);
    UT_CHECK(streq(raw_scalar(p, r, "SELECT COUNT(*) FROM certauth_schema"),
                   "1"));
    UT_CHECK(streq(raw_scalar(p, r, "SELECT version FROM certauth_schema"),
                   apr_itoa(p, ca_store_schema_version())));
    /* the indexes: owner, subject (schema 1), status (4), CRL (5) */
    UT_CHECK(streq(raw_scalar(p, r, "SELECT COUNT(*) FROM sqlite_master "
                              "WHERE type = 'index' AND tbl_name = "
                              "'certauth_certs' AND name NOT LIKE "
                              "'sqlite_autoindex%'"), "4"));

    /* a second connection opened afterwards sees the same version */
    {
        ca_store_t *s2 = open_store(p, db);
        int v3 = -1;
        UT_CHECK(s2 && ca_store_migrate(s2, p, &v3, &err) == APR_SUCCESS
                 && v3 == v1);
    }
}

static void test_connection_settings(apr_pool_t *p)
{
    const char *db = tmpdb(p);
    ca_store_t *s = open_migrated(p, db);
    raw_t *r, *w;
    apr_hash_t *prepared = apr_hash_make(p);
    ca_store_t *ws = NULL;

    if (!s) return;
    /* WAL is a property of the file: a connection of our own sees it */
    r = raw_open(p, db);
    UT_CHECK(streq(raw_scalar(p, r, "PRAGMA journal_mode"), "wal"));

    /* the per-connection settings, on a connection we can inspect: let the
     * store set it up through ca_store_wrap */
    w = raw_open(p, db);
    raw_exec(w, "PRAGMA synchronous=OFF");
    raw_exec(w, "PRAGMA busy_timeout=1");
    UT_CHECK(ca_store_wrap(&ws, p, w->drv, w->h, prepared, p)
             == APR_SUCCESS);
    UT_CHECK(streq(raw_scalar(p, w, "PRAGMA synchronous"), "2")); /* FULL */
    UT_CHECK(streq(raw_scalar(p, w, "PRAGMA busy_timeout"), "250"));
    UT_CHECK(streq(raw_scalar(p, w, "PRAGMA foreign_keys"), "1"));
    UT_CHECK(streq(raw_scalar(p, w, "PRAGMA journal_mode"), "wal"));
}

static void test_roundtrip(apr_pool_t *p)
{
    ca_store_t *s = open_migrated(p, tmpdb(p));
    ca_cert_row_t *in, *out = NULL, *in2;
    apr_int64_t n = -1;

    if (!s) return;
    in = mkrow(p, "7F3A0B9C11D2E4F5A6B7C8D9E0F1A2B3", "alice",
               APR_INT64_C(1767225600));
    /* every field different from the defaults, and values that need more
     * than 32 bits or are negative */
    in->profile = "server";
    in->not_before = APR_INT64_C(-86400);
    in->not_after = APR_INT64_C(253402300799);
    in->status = CA_STATUS_REVOKED;
    in->revoked_at = APR_INT64_C(1767229200);
    in->reason = 1;
    in->invalidity_at = APR_INT64_C(1767200000);
    in->replaced_by = "00AB";
    UT_CHECK(ca_store_cert_insert(s, p, in) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_get(s, p, in->serial, &out) == APR_SUCCESS);
    UT_CHECK(out && rows_equal(in, out));
    UT_CHECK(out && out != in && out->cert_pem != in->cert_pem);

    /* replaced_by NULL is stored as "" */
    in2 = mkrow(p, "01", "bob", 1000);
    in2->replaced_by = NULL;
    UT_CHECK(ca_store_cert_insert(s, p, in2) == APR_SUCCESS);
    out = NULL;
    UT_CHECK(ca_store_cert_get(s, p, "01", &out) == APR_SUCCESS);
    UT_CHECK(out && streq(out->replaced_by, "") && out->reason == -1
             && out->revoked_at == 0 && streq(out->status, "valid"));
    UT_CHECK(ca_store_cert_count(s, p, &n) == APR_SUCCESS && n == 2);
    UT_CHECK(streq(ca_store_last_error(s), ""));
}

/* Committed on return: another connection sees the row at once. */
static void test_insert_committed(apr_pool_t *p)
{
    const char *db = tmpdb(p);
    ca_store_t *s = open_migrated(p, db);
    raw_t *r;

    if (!s) return;
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "0C", "carol", 5))
             == APR_SUCCESS);
    r = raw_open(p, db);
    UT_CHECK(streq(raw_scalar(p, r, "SELECT owner FROM certauth_certs "
                              "WHERE serial = '0C'"), "carol"));
}

static void test_duplicate_serial(apr_pool_t *p)
{
    ca_store_t *s = open_migrated(p, tmpdb(p));
    ca_cert_row_t *first, *second, *out = NULL;
    apr_int64_t n = -1;

    if (!s) return;
    first = mkrow(p, "0A0B0C0D", "alice", 100);
    second = mkrow(p, "0A0B0C0D", "mallory", 200);
    second->cert_pem = "other";
    UT_CHECK(ca_store_cert_insert(s, p, first) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(s, p, second) == CA_EEXIST);
    UT_CHECK(ca_store_cert_get(s, p, "0A0B0C0D", &out) == APR_SUCCESS);
    UT_CHECK(out && rows_equal(first, out));
    UT_CHECK(ca_store_cert_count(s, p, &n) == APR_SUCCESS && n == 1);
    /* the store still works after the failed insert */
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "0E", "alice", 300))
             == APR_SUCCESS);
}

static void test_insert_error(apr_pool_t *p)
{
    ca_store_t *s = open_migrated(p, tmpdb(p));
    ca_cert_row_t *bad, *out = NULL;

    if (!s) return;
    UT_CHECK(streq(ca_store_last_error(s), ""));
    bad = mkrow(p, "0D", "alice", 100);
    bad->subject = NULL; /* NOT NULL column */
    UT_CHECK(ca_store_cert_insert(s, p, bad) == CA_EDB);
    UT_CHECK_MSG(strlen(ca_store_last_error(s)) > 0, "last error '%s'",
                 ca_store_last_error(s));
    UT_CHECK(ca_store_cert_get(s, p, "0D", &out) == CA_ENOTFOUND);
}

static void test_get_unknown(apr_pool_t *p)
{
    ca_store_t *s = open_migrated(p, tmpdb(p));
    ca_cert_row_t *out = NULL;

    if (!s) return;
    UT_CHECK(ca_store_cert_get(s, p, "DEADBEEF", &out) == CA_ENOTFOUND);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "DEADBEEE", "a", 1))
             == APR_SUCCESS);
    UT_CHECK(ca_store_cert_get(s, p, "DEADBEEF", &out) == CA_ENOTFOUND);
    /* no pattern matching in serials */
    UT_CHECK(ca_store_cert_get(s, p, "DEADBEE%", &out) == CA_ENOTFOUND);
    UT_CHECK(ca_store_cert_get(s, p, "", &out) == CA_ENOTFOUND);
}

static void test_list(apr_pool_t *p)
{
    ca_store_t *s = open_migrated(p, tmpdb(p));
    apr_array_header_t *rows = NULL;
    apr_int64_t n = -1;

    if (!s) return;
    /* alice: issued at 100..500; two at 300 (ties: by serial) */
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "A1", "alice", 100)) == 0);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "A5", "alice", 500)) == 0);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "A3B", "alice", 300)) == 0);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "A3A", "alice", 300)) == 0);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "A2", "alice", 200)) == 0);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "B1", "bob", 250)) == 0);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "B2", "bob", 600)) == 0);

    UT_CHECK(ca_store_cert_list(s, p, "alice", 2, 0, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "A5,A3A"), "%s", serials(p, rows));
    UT_CHECK(ca_store_cert_list(s, p, "alice", 2, 2, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "A3B,A2"), "%s", serials(p, rows));
    UT_CHECK(ca_store_cert_list(s, p, "alice", 2, 4, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "A1"), "%s", serials(p, rows));
    UT_CHECK(ca_store_cert_list(s, p, "alice", 2, 5, &rows) == 0);
    UT_CHECK(rows && rows->nelts == 0);
    UT_CHECK(ca_store_cert_list(s, p, "bob", 10, 0, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "B2,B1"), "%s", serials(p, rows));
    UT_CHECK(ca_store_cert_list(s, p, "nobody", 10, 0, &rows) == 0);
    UT_CHECK(rows && rows->nelts == 0);
    /* every owner */
    UT_CHECK(ca_store_cert_list(s, p, NULL, 100, 0, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "B2,A5,A3A,A3B,B1,A2,A1"), "%s",
                 serials(p, rows));
    UT_CHECK(ca_store_cert_list(s, p, NULL, 3, 1, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "A5,A3A,A3B"), "%s",
                 serials(p, rows));
    /* rows carry their fields */
    UT_CHECK(ca_store_cert_list(s, p, "bob", 1, 0, &rows) == 0);
    UT_CHECK(rows && rows->nelts == 1
             && rows_equal(APR_ARRAY_IDX(rows, 0, ca_cert_row_t *),
                           mkrow(p, "B2", "bob", 600)));
    UT_CHECK(ca_store_cert_count(s, p, &n) == APR_SUCCESS && n == 7);
}

static void test_newer_schema(apr_pool_t *p)
{
    const char *db = tmpdb(p);
    ca_store_t *s = open_migrated(p, db);
    raw_t *r;
    const char *err = NULL, *newer;
    int v = -1;

    if (!s) return;
    r = raw_open(p, db);
    newer = apr_itoa(p, ca_store_schema_version() + 1);
    UT_CHECK(raw_exec(r, apr_pstrcat(p, "UPDATE certauth_schema SET "
                                     "version = ", newer, NULL)) == 0);
    UT_CHECK(ca_store_migrate(s, p, &v, &err) == CA_ECONFIG);
    UT_CHECK_MSG(streq(err, apr_psprintf(p, "database schema version %s is "
                                         "newer than this mod_certauth (%d)",
                                         newer, ca_store_schema_version())),
                 "%s", err ? err : "(null)");
    /* left as it was */
    UT_CHECK(streq(raw_scalar(p, r, "SELECT version FROM certauth_schema"),
                   newer));
    /* and a fresh connection refuses it too */
    {
        ca_store_t *s2 = open_store(p, db);
        err = NULL;
        UT_CHECK(s2 && ca_store_migrate(s2, p, &v, &err) == CA_ECONFIG
                 && err);
    }
}

/* A database made by schema 1 is upgraded with its rows kept. */
static void test_upgrade_from_v1(apr_pool_t *p)
{
    const char *db = tmpdb(p);
    raw_t *r = raw_open(p, db);
    ca_store_t *s;
    ca_cert_row_t *out = NULL;
    const char *err = NULL;
    int v = -1;
    apr_int64_t num = -1, tu = -1, nu = -1;
    apr_array_header_t *entries = NULL;

    if (ca_store_schema_version() < 2) {
        return;
    }
    UT_CHECK(raw_exec(r, "CREATE TABLE certauth_schema "
                         "(version INTEGER NOT NULL)") == 0);
    UT_CHECK(raw_exec(r, "INSERT INTO certauth_schema VALUES (1)") == 0);
    UT_CHECK(raw_exec(r, "CREATE TABLE certauth_certs ("
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
                         " cert_pem TEXT NOT NULL)") == 0);
    UT_CHECK(raw_exec(r, "INSERT INTO certauth_certs (serial, subject, "
                         "owner, profile, not_before, not_after, issued_at, "
                         "status, cert_pem) VALUES ('11', 'CN=old', 'olga', "
                         "'default', 10, 20, 15, 'valid', 'PEM')") == 0);
    UT_CHECK(raw_exec(r, "INSERT INTO certauth_certs (serial, subject, "
                         "owner, profile, not_before, not_after, issued_at, "
                         "status, revoked_at, reason, cert_pem) VALUES "
                         "('0A', 'CN=gone', 'olga', 'default', 10, 30, 15, "
                         "'revoked', 17, 1, 'PEM')") == 0);

    s = open_store(p, db);
    if (!s) return;
    UT_CHECK(ca_store_migrate(s, p, &v, &err) == APR_SUCCESS);
    UT_CHECK_MSG(v == ca_store_schema_version(), "v=%d err=%s", v,
                 err ? err : "");
    UT_CHECK(ca_store_cert_get(s, p, "11", &out) == APR_SUCCESS);
    UT_CHECK(out && streq(out->subject, "CN=old") && out->not_after == 20
             && out->reason == -1 && out->revoked_at == 0
             && out->invalidity_at == 0 && streq(out->replaced_by, ""));
    UT_CHECK(ca_store_crl_head(s, p, &num, &tu, &nu) == APR_SUCCESS
             && num == 0);
    /* the revoked certificate of version 1 is in the CRL index of 5 */
    UT_CHECK(ca_store_crl_entries(s, p, 0, &entries) == APR_SUCCESS
             && entries && entries->nelts == 1);
    if (entries && entries->nelts == 1) {
        ca_crl_entry_t *e = &APR_ARRAY_IDX(entries, 0, ca_crl_entry_t);
        UT_CHECK(streq(e->serial, "0A") && e->revoked_at == 17
                 && e->reason == 1 && e->invalidity_at == 0);
    }
    /* (a new connection: r's view of the schema is out of date, and the
     * sqlite3 driver's legacy sqlite3_prepare does not recover from that) */
    r = raw_open(p, db);
    UT_CHECK(streq(raw_scalar(p, r, "SELECT COUNT(*) FROM certauth_schema"),
                   "1"));
}

/* A second connection that was open before another one migrated. */
static void test_migrate_two_connections(apr_pool_t *p)
{
    const char *db = tmpdb(p);
    ca_store_t *a = open_store(p, db), *b = open_store(p, db);
    ca_cert_row_t *out = NULL;
    const char *err = NULL;
    int va = -1, vb = -1;

    if (!a || !b) return;
    UT_CHECK(ca_store_migrate(a, p, &va, &err) == APR_SUCCESS);
    UT_CHECK_MSG(ca_store_migrate(b, p, &vb, &err) == APR_SUCCESS, "%s",
                 err ? err : "");
    UT_CHECK(va == ca_store_schema_version() && vb == va);
    /* both connections work on the same tables */
    UT_CHECK(ca_store_cert_insert(b, p, mkrow(p, "B0", "bob", 7)) == 0);
    UT_CHECK(ca_store_cert_get(a, p, "B0", &out) == APR_SUCCESS
             && out && streq(out->owner, "bob"));
}

/* Several processes migrating a new database at the same moment (httpd
 * children starting together): every one succeeds, one version row. */
static void test_migrate_concurrent(apr_pool_t *p)
{
    enum { N = 6 };
    const char *db = tmpdb(p);
    pid_t pids[N];
    int i, ok = 0;
    raw_t *r;

    fflush(NULL);
    for (i = 0; i < N; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            apr_pool_t *cp;
            ca_store_t *s = NULL;
            const char *err = NULL;
            int v = -1, rc = 1;

            apr_pool_create(&cp, NULL);
            if (ca_store_open(&s, cp, "sqlite3", db, &err) == APR_SUCCESS
                && ca_store_migrate(s, cp, &v, &err) == APR_SUCCESS
                && v == ca_store_schema_version()
                && ca_store_cert_insert(s, cp, mkrow(cp, apr_psprintf(
                       cp, "C%d", (int)getpid()), "child", 1))
                   == APR_SUCCESS) {
                rc = 0;
            }
            else {
                fprintf(stderr, "  child %d: %s\n", (int)getpid(),
                        err ? err : ca_store_last_error(s));
            }
            apr_pool_destroy(cp);
            _exit(rc);
        }
        UT_CHECK(pids[i] > 0);
    }
    for (i = 0; i < N; i++) {
        int status = -1;
        if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i]
            && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ok++;
        }
    }
    UT_CHECK_MSG(ok == N, "%d of %d processes migrated", ok, N);
    r = raw_open(p, db);
    UT_CHECK(streq(raw_scalar(p, r, "SELECT COUNT(*) FROM certauth_schema"),
                   "1"));
    UT_CHECK(streq(raw_scalar(p, r, "SELECT version FROM certauth_schema"),
                   apr_itoa(p, ca_store_schema_version())));
    UT_CHECK(streq(raw_scalar(p, r, "SELECT COUNT(*) FROM certauth_certs"),
                   apr_itoa(p, N)));
}

static void test_open_errors(apr_pool_t *p)
{
    ca_store_t *s = NULL;
    const char *err = NULL;
    const char *dir = tmpdir(p);
    const char *path = apr_pstrcat(p, dir, "/no/such/dir/certauth.db", NULL);

    UT_CHECK(ca_store_open(&s, p, "sqlite3", path, &err) != APR_SUCCESS);
    UT_CHECK_MSG(err && strstr(err, "cannot open sqlite3 database")
                 && strstr(err, path), "%s", err ? err : "(null)");
    UT_CHECK(err && strchr(err, '\n') == NULL);

    err = NULL;
    UT_CHECK(ca_store_open(&s, p, "nosuchdriver", "x", &err) == CA_ECONFIG);
    UT_CHECK_MSG(err && strstr(err, "nosuchdriver"), "%s",
                 err ? err : "(null)");
}

/* ca_store_wrap: a connection owned by someone else (mod_dbd's ap_dbd_t):
 * statements go into its hash, prepared only when first used (no schema
 * needed to wrap), settings applied once per connection. */
static void test_wrap(apr_pool_t *p)
{
    const char *db = tmpdb(p);
    raw_t *r = raw_open(p, db);
    apr_hash_t *prepared = apr_hash_make(p);
    apr_pool_t *req;
    ca_store_t *s = NULL;
    ca_cert_row_t *out = NULL;
    const char *err = NULL;
    int v = -1;
    unsigned n_before;

    /* wrapping a connection to an empty database prepares nothing */
    UT_CHECK(ca_store_wrap(&s, p, r->drv, r->h, prepared, p) == APR_SUCCESS);
    UT_CHECK(s != NULL);
    if (!s) return;
    UT_CHECK(apr_hash_get(prepared, "certauth_cert_insert",
                          APR_HASH_KEY_STRING) == NULL);
    n_before = apr_hash_count(prepared);
    UT_CHECK(ca_store_migrate(s, p, &v, &err) == APR_SUCCESS);
    UT_CHECK(streq(raw_scalar(p, r, "PRAGMA journal_mode"), "wal"));

    /* per request: a wrapper from a short-lived pool, the statements in the
     * connection's hash */
    apr_pool_create(&req, p);
    UT_CHECK(ca_store_wrap(&s, req, r->drv, r->h, prepared, p)
             == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(s, req, mkrow(req, "0F", "wally", 9))
             == APR_SUCCESS);
    UT_CHECK(ca_store_cert_get(s, req, "0F", &out) == APR_SUCCESS);
    apr_pool_destroy(req);
    UT_CHECK(apr_hash_get(prepared, "certauth_cert_insert",
                          APR_HASH_KEY_STRING) != NULL);
    UT_CHECK(apr_hash_get(prepared, "certauth_cert_get",
                          APR_HASH_KEY_STRING) != NULL);
    UT_CHECK(apr_hash_count(prepared) == n_before + 2);

    /* settings are not applied again to a connection already seen ... */
    raw_exec(r, "PRAGMA busy_timeout=1234");
    apr_pool_create(&req, p);
    UT_CHECK(ca_store_wrap(&s, req, r->drv, r->h, prepared, p)
             == APR_SUCCESS);
    UT_CHECK(ca_store_cert_get(s, req, "0F", &out) == APR_SUCCESS
             && streq(out->owner, "wally"));
    apr_pool_destroy(req);
    UT_CHECK(streq(raw_scalar(p, r, "PRAGMA busy_timeout"), "1234"));
    UT_CHECK(apr_hash_count(prepared) == n_before + 2);
    /* ... but are to one with a new hash (a new connection) */
    {
        apr_hash_t *fresh = apr_hash_make(p);
        UT_CHECK(ca_store_wrap(&s, p, r->drv, r->h, fresh, p)
                 == APR_SUCCESS);
        UT_CHECK(streq(raw_scalar(p, r, "PRAGMA busy_timeout"), "250"));
        UT_CHECK(ca_store_cert_get(s, p, "0F", &out) == APR_SUCCESS);
        UT_CHECK(apr_hash_get(fresh, "certauth_cert_get",
                              APR_HASH_KEY_STRING) != NULL);
    }
}

static void test_transactions(apr_pool_t *p)
{
    ca_store_t *s = open_migrated(p, tmpdb(p));
    ca_cert_row_t *out = NULL;
    apr_int64_t n = -1;

    if (!s) return;
    UT_CHECK(ca_store_txn_begin(s, p) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "71", "tina", 1)) == 0);
    UT_CHECK(ca_store_cert_get(s, p, "71", &out) == APR_SUCCESS);
    UT_CHECK(ca_store_txn_end(s, p, 0) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_get(s, p, "71", &out) == CA_ENOTFOUND);

    UT_CHECK(ca_store_txn_begin(s, p) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "72", "tina", 2)) == 0);
    UT_CHECK(ca_store_txn_end(s, p, 1) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_get(s, p, "72", &out) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_count(s, p, &n) == APR_SUCCESS && n == 1);
    /* ending without a transaction is harmless */
    UT_CHECK(ca_store_txn_end(s, p, 1) == APR_SUCCESS);
}

/* A transaction that cannot start (another writer holds the lock) leaves
 * the connection as it was: the statements that follow in the same request
 * are not taken for part of a failed transaction. */
static void test_txn_begin_busy(apr_pool_t *p)
{
    const char *db = tmpdb(p);
    raw_t *w = raw_open(p, db), *other;
    apr_hash_t *prepared = apr_hash_make(p);
    apr_pool_t *req;
    ca_store_t *s = NULL;
    ca_cert_row_t *out = NULL;
    const char *err = NULL;
    apr_time_t t0;
    int v;

    UT_CHECK(ca_store_wrap(&s, p, w->drv, w->h, prepared, p) == 0);
    if (!s) return;
    UT_CHECK(ca_store_migrate(s, p, &v, &err) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "AA", "al", 1)) == 0);
    /* don't wait 10 s for the lock in a unit test */
    raw_exec(w, "PRAGMA busy_timeout=0");
    other = raw_open(p, db);
    UT_CHECK(raw_exec(other, "BEGIN IMMEDIATE") == 0);

    apr_pool_create(&req, p);
    UT_CHECK(ca_store_wrap(&s, req, w->drv, w->h, prepared, p) == 0);
    /* the wait for the lock ends at the deadline, and says "busy" */
    t0 = apr_time_now();
    ca_store_set_deadline(s, t0 + apr_time_from_msec(300), 300);
    UT_CHECK(ca_store_txn_begin(s, req) == CA_EBUSY);
    UT_CHECK(apr_time_now() - t0 >= apr_time_from_msec(250));
    UT_CHECK(apr_time_now() - t0 < apr_time_from_sec(3));
    UT_CHECK(ca_store_busy(s));
    UT_CHECK(!ca_store_broken(s));
    UT_CHECK(strlen(ca_store_last_error(s)) > 0);
    UT_CHECK(ca_store_txn_end(s, req, 1) == APR_SUCCESS);
    /* a write outside a transaction waits no longer either */
    t0 = apr_time_now();
    ca_store_set_deadline(s, t0 + apr_time_from_msec(300), 300);
    UT_CHECK(ca_store_cert_insert(s, req, mkrow(req, "AC", "al", 3))
             == CA_EDB);
    UT_CHECK(ca_store_busy(s));
    UT_CHECK(apr_time_now() - t0 < apr_time_from_sec(3));
    ca_store_set_deadline(s, 0, 0);
    UT_CHECK(raw_exec(other, "COMMIT") == 0);
    /* a failed statement, then ordinary ones */
    UT_CHECK(ca_store_cert_insert(s, req, mkrow(req, "AA", "al", 1))
             == CA_EEXIST);
    UT_CHECK(ca_store_cert_insert(s, req, mkrow(req, "AB", "al", 2))
             == APR_SUCCESS);
    UT_CHECK(ca_store_cert_get(s, req, "AB", &out) == APR_SUCCESS);
    UT_CHECK(ca_store_txn_begin(s, req) == APR_SUCCESS);
    UT_CHECK(ca_store_txn_end(s, req, 1) == APR_SUCCESS);
    apr_pool_destroy(req);
}

/* The writer lock of the caller: a refusal (too many waiting, or its
 * deadline passed) fails the write with CA_EBUSY / busy, nothing written,
 * and every lock taken is given back. */
static int wl_held, wl_refuse, wl_through;

static apr_status_t test_wl(void *baton, int lock, apr_time_t deadline,
                            const char **why)
{
    (void)baton;
    (void)deadline;
    if (lock == CA_STORE_STALLED) {
        return APR_SUCCESS;
    }
    if (lock == CA_STORE_THROUGH) {
        /* SQLite's write lock had, under the writer lock */
        UT_CHECK(wl_held == 1);
        wl_through++;
        return APR_SUCCESS;
    }
    if (!lock) {
        wl_held--;
        return APR_SUCCESS;
    }
    if (wl_refuse) {
        *why = "too many waiting (test)";
        return CA_EBUSY;
    }
    wl_held++;
    return APR_SUCCESS;
}

static void test_writer_lock_refused(apr_pool_t *p)
{
    const char *db = tmpdb(p);
    raw_t *w = raw_open(p, db);
    apr_hash_t *prepared = apr_hash_make(p);
    ca_store_t *s = NULL;
    ca_cert_row_t *out = NULL;
    const char *err = NULL;
    int v;

    UT_CHECK(ca_store_wrap(&s, p, w->drv, w->h, prepared, p) == 0);
    if (!s) return;
    UT_CHECK(ca_store_migrate(s, p, &v, &err) == APR_SUCCESS);
    ca_store_set_writer_lock(s, test_wl, NULL);
    wl_refuse = 1;
    UT_CHECK(ca_store_txn_begin(s, p) == CA_EBUSY);
    UT_CHECK(ca_store_busy(s));
    UT_CHECK(strstr(ca_store_last_error(s), "too many waiting") != NULL);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "BA", "al", 1)) == CA_EDB);
    UT_CHECK(ca_store_busy(s));
    UT_CHECK(strstr(ca_store_last_error(s), "too many waiting") != NULL);
    UT_CHECK(wl_held == 0);
    wl_refuse = 0;
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "BA", "al", 1))
             == APR_SUCCESS);
    UT_CHECK(!ca_store_busy(s));
    UT_CHECK(wl_held == 0);
    UT_CHECK(ca_store_cert_get(s, p, "BA", &out) == APR_SUCCESS);
    UT_CHECK(wl_through == 1);    /* the insert's own transaction */
    UT_CHECK(ca_store_txn_begin(s, p) == APR_SUCCESS);
    UT_CHECK(wl_held == 1);
    UT_CHECK(wl_through == 2);
    UT_CHECK(ca_store_txn_end(s, p, 1) == APR_SUCCESS);
    UT_CHECK(wl_held == 0);
}

static void test_count_valid(apr_pool_t *p)
{
    ca_store_t *s = open_migrated(p, tmpdb(p));
    ca_cert_row_t *r;
    apr_int64_t n = -1;
    const apr_int64_t now = 100000;

    if (!s) return;
    r = mkrow(p, "81", "vic", 1000);               /* valid, not expired */
    r->not_after = now + 10;
    UT_CHECK(ca_store_cert_insert(s, p, r) == 0);
    r = mkrow(p, "82", "vic", 1000);               /* expired */
    r->not_after = now;
    UT_CHECK(ca_store_cert_insert(s, p, r) == 0);
    r = mkrow(p, "83", "vic", 1000);               /* revoked */
    r->not_after = now + 10;
    r->status = CA_STATUS_REVOKED;
    UT_CHECK(ca_store_cert_insert(s, p, r) == 0);
    r = mkrow(p, "84", "vic", 1000);               /* other profile */
    r->not_after = now + 10;
    r->profile = "server";
    UT_CHECK(ca_store_cert_insert(s, p, r) == 0);

    UT_CHECK(ca_store_count_valid_owner(s, p, "vic", "default", now, &n)
             == APR_SUCCESS && n == 1);
    UT_CHECK(ca_store_count_valid_owner(s, p, "vic", "server", now, &n)
             == APR_SUCCESS && n == 1);
    UT_CHECK(ca_store_count_valid_owner(s, p, "val", "default", now, &n)
             == APR_SUCCESS && n == 0);
    UT_CHECK(ca_store_count_valid_subject(s, p, r->subject, now, &n)
             == APR_SUCCESS && n == 2);
    UT_CHECK(ca_store_count_valid_subject(s, p, "CN=x", now, &n)
             == APR_SUCCESS && n == 0);
}

static void test_set_status(apr_pool_t *p)
{
    ca_store_t *s = open_migrated(p, tmpdb(p));
    ca_cert_row_t *row = NULL;

    if (!s) return;
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "91", "rita", 1)) == 0);
    UT_CHECK(ca_store_cert_insert(s, p, mkrow(p, "92", "rita", 2)) == 0);

    UT_CHECK(ca_store_cert_set_status(s, p, "91", CA_STATUS_VALID,
                                      CA_STATUS_REVOKED, 5000,
                                      CA_REASON_KEY_COMPROMISE, 4000, NULL,
                                      &row) == APR_SUCCESS);
    UT_CHECK(row && streq(row->status, "revoked") && row->revoked_at == 5000
             && row->reason == 1 && row->invalidity_at == 4000
             && streq(row->replaced_by, ""));
    /* not valid any more: conflict, and the stored row is returned */
    row = NULL;
    UT_CHECK(ca_store_cert_set_status(s, p, "91", CA_STATUS_VALID,
                                      CA_STATUS_REVOKED, 6000, 0, 0, NULL,
                                      &row) == CA_ECONFLICT);
    UT_CHECK(row && streq(row->status, "revoked") && row->revoked_at == 5000);
    UT_CHECK(ca_store_cert_set_status(s, p, "99", CA_STATUS_VALID,
                                      CA_STATUS_REVOKED, 1, 0, 0, NULL,
                                      &row) == CA_ENOTFOUND);
    /* supersede, without asking for the row */
    UT_CHECK(ca_store_cert_set_status(s, p, "92", CA_STATUS_VALID,
                                      CA_STATUS_SUPERSEDED, 7000,
                                      CA_REASON_SUPERSEDED, 0, "93", NULL)
             == APR_SUCCESS);
    UT_CHECK(ca_store_cert_get(s, p, "92", &row) == APR_SUCCESS
             && streq(row->status, "superseded") && row->reason == 4
             && streq(row->replaced_by, "93") && row->revoked_at == 7000);
}

static void test_search(apr_pool_t *p)
{
    ca_store_t *s = open_migrated(p, tmpdb(p));
    ca_cert_filter_t f;
    apr_array_header_t *rows = NULL;
    ca_cert_row_t *r;

    if (!s) return;
    r = mkrow(p, "S1", "sam", 100);
    r->subject = "CN=50% off,O=Shop";
    r->not_after = 1000;
    UT_CHECK(ca_store_cert_insert(s, p, r) == 0);
    r = mkrow(p, "S2", "sam", 200);
    r->subject = "CN=500 off,O=Shop";
    r->not_after = 2000;
    r->status = CA_STATUS_REVOKED;
    UT_CHECK(ca_store_cert_insert(s, p, r) == 0);
    r = mkrow(p, "S3", "sue", 300);
    r->subject = "CN=a_b,O=Other";
    r->not_after = 3000;
    UT_CHECK(ca_store_cert_insert(s, p, r) == 0);

    memset(&f, 0, sizeof(f));
    UT_CHECK(ca_store_cert_search(s, p, &f, 10, 0, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "S3,S2,S1"), "%s", serials(p, rows));
    f.owner = "sam";
    UT_CHECK(ca_store_cert_search(s, p, &f, 10, 0, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "S2,S1"), "%s", serials(p, rows));
    f.status = CA_STATUS_VALID;
    UT_CHECK(ca_store_cert_search(s, p, &f, 10, 0, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "S1"), "%s", serials(p, rows));
    memset(&f, 0, sizeof(f));
    f.subject_contains = "50%";       /* '%' is literal */
    UT_CHECK(ca_store_cert_search(s, p, &f, 10, 0, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "S1"), "%s", serials(p, rows));
    f.subject_contains = "a_b";       /* '_' is literal */
    UT_CHECK(ca_store_cert_search(s, p, &f, 10, 0, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "S3"), "%s", serials(p, rows));
    f.subject_contains = "O=Shop";
    UT_CHECK(ca_store_cert_search(s, p, &f, 1, 1, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "S1"), "%s", serials(p, rows));
    memset(&f, 0, sizeof(f));
    f.not_after_max = 2000;           /* expiring by 2000 */
    UT_CHECK(ca_store_cert_search(s, p, &f, 10, 0, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "S2,S1"), "%s", serials(p, rows));
    f.not_after_min = 1000;           /* and still valid after 1000 */
    UT_CHECK(ca_store_cert_search(s, p, &f, 10, 0, &rows) == 0);
    UT_CHECK_MSG(streq(serials(p, rows), "S2"), "%s", serials(p, rows));
}

static void test_crl_state(apr_pool_t *p)
{
    ca_store_t *s = open_migrated(p, tmpdb(p));
    apr_int64_t num = -1, tu = -1, nu = -1, n = -1;
    const char *der = NULL;
    apr_array_header_t *entries = NULL;
    ca_cert_row_t *r;

    if (!s) return;
    UT_CHECK(ca_store_crl_get(s, p, &num, &tu, &nu, &der) == APR_SUCCESS);
    UT_CHECK(num == 0 && tu == 0 && nu == 0 && streq(der, ""));
    UT_CHECK(ca_store_crl_put(s, p, 0, 1, 100, 200, "AAAA", NULL, NULL) == APR_SUCCESS);
    UT_CHECK(ca_store_crl_put(s, p, 0, 2, 150, 250, "BBBB", NULL, NULL) == CA_ECONFLICT);
    UT_CHECK(ca_store_crl_get(s, p, &num, &tu, &nu, &der) == APR_SUCCESS);
    UT_CHECK(num == 1 && tu == 100 && nu == 200 && streq(der, "AAAA"));
    UT_CHECK(ca_store_crl_head(s, p, &num, &tu, &nu) == APR_SUCCESS
             && num == 1 && tu == 100 && nu == 200);

    /* entries: revoked or superseded, not expired before the bound */
    r = mkrow(p, "E1", "e", 1);
    r->status = CA_STATUS_REVOKED; r->revoked_at = 50; r->reason = 1;
    r->invalidity_at = 40; r->not_after = 1000;
    UT_CHECK(ca_store_cert_insert(s, p, r) == 0);
    r = mkrow(p, "E0", "e", 1);
    r->status = CA_STATUS_SUPERSEDED; r->revoked_at = 60; r->reason = 4;
    r->not_after = 1000;
    UT_CHECK(ca_store_cert_insert(s, p, r) == 0);
    r = mkrow(p, "E2", "e", 1);      /* expired long ago */
    r->status = CA_STATUS_REVOKED; r->revoked_at = 70; r->not_after = 10;
    UT_CHECK(ca_store_cert_insert(s, p, r) == 0);
    r = mkrow(p, "E3", "e", 1);      /* valid */
    UT_CHECK(ca_store_cert_insert(s, p, r) == 0);
    UT_CHECK(ca_store_crl_entries(s, p, 500, &entries) == APR_SUCCESS);
    UT_CHECK(entries && entries->nelts == 2);
    if (entries && entries->nelts == 2) {
        ca_crl_entry_t *e0 = &APR_ARRAY_IDX(entries, 0, ca_crl_entry_t);
        ca_crl_entry_t *e1 = &APR_ARRAY_IDX(entries, 1, ca_crl_entry_t);
        UT_CHECK(streq(e0->serial, "E0") && e0->revoked_at == 60
                 && e0->reason == 4 && e0->invalidity_at == 0);
        UT_CHECK(streq(e1->serial, "E1") && e1->revoked_at == 50
                 && e1->reason == 1 && e1->invalidity_at == 40);
    }
    UT_CHECK(ca_store_count_listable(s, p, 55, 100, &n) == APR_SUCCESS
             && n == 2);
    UT_CHECK(ca_store_count_listable(s, p, 0, 55, &n) == APR_SUCCESS
             && n == 1);
}

static void test_audit(apr_pool_t *p)
{
    ca_store_t *s = open_migrated(p, tmpdb(p));
    ca_audit_t a;
    apr_array_header_t *rows = NULL;
    ca_audit_t *got;
    apr_size_t i;

    if (!s) return;
    memset(&a, 0, sizeof(a));
    a.at = 10; a.actor = "alice"; a.auth = "login"; a.client = "127.0.0.1";
    a.action = "enroll"; a.serial = "A1"; a.outcome = "ok";
    a.detail = "profile user";
    UT_CHECK(ca_store_audit_add(s, p, &a) == APR_SUCCESS);
    memset(&a, 0, sizeof(a));          /* defaults for NULL fields */
    a.at = 20; a.action = "revoke"; a.outcome = "refused";
    UT_CHECK(ca_store_audit_add(s, p, &a) == APR_SUCCESS);
    memset(&a, 0, sizeof(a));
    a.id = "fixed-id"; a.at = 5; a.serial = "A1"; a.action = "crl";
    UT_CHECK(ca_store_audit_add(s, p, &a) == APR_SUCCESS);
    UT_CHECK(ca_store_audit_add(s, p, &a) == CA_EDB);   /* same id */

    UT_CHECK(ca_store_audit_list(s, p, NULL, 10, 0, &rows) == APR_SUCCESS);
    UT_CHECK(rows && rows->nelts == 3);
    if (rows && rows->nelts == 3) {
        got = APR_ARRAY_IDX(rows, 0, ca_audit_t *);
        UT_CHECK(got->at == 20 && streq(got->actor, "-")
                 && streq(got->auth, "none") && streq(got->serial, "")
                 && streq(got->outcome, "refused"));
        UT_CHECK(strlen(got->id) == 24);
        for (i = 0; i < strlen(got->id); i++) {
            UT_CHECK(strchr("0123456789abcdef", got->id[i]) != NULL);
        }
        got = APR_ARRAY_IDX(rows, 1, ca_audit_t *);
        UT_CHECK(got->at == 10 && streq(got->actor, "alice")
                 && streq(got->auth, "login")
                 && streq(got->client, "127.0.0.1")
                 && streq(got->action, "enroll") && streq(got->serial, "A1")
                 && streq(got->detail, "profile user"));
        got = APR_ARRAY_IDX(rows, 2, ca_audit_t *);
        UT_CHECK(streq(got->id, "fixed-id"));
    }
    UT_CHECK(ca_store_audit_list(s, p, "A1", 10, 0, &rows) == APR_SUCCESS);
    UT_CHECK(rows && rows->nelts == 2);
    UT_CHECK(ca_store_audit_list(s, p, "A1", 1, 1, &rows) == APR_SUCCESS);
    UT_CHECK(rows && rows->nelts == 1
             && APR_ARRAY_IDX(rows, 0, ca_audit_t *)->at == 5);
}

/* ================================================================== */
/* More tests (once test_store2.c):
 * Unit tests of ca_store over a temporary SQLite file: opening, migrations,
 * connection settings, certificate rows (round trip of every field,
 * duplicate and unknown serials, lists, counts) and wrapping a connection
 * owned by someone else (mod_dbd). */
/* ================================================================== */

/* ------------------------------------------------------------------ */
static const char *db_path(apr_pool_t *p)
{
    return apr_pstrcat(p, ut_tmpdir(p), "/certauth.db", NULL);
}

/* Open and migrate; NULL (and a failed check) when that fails. */
static ca_store_t *open_db(apr_pool_t *p, const char *path)
{
    ca_store_t *s = NULL;
    const char *err = NULL;
    apr_status_t rv = ca_store_open(&s, p, "sqlite3", path, &err);
    int version = -1;

    UT_CHECK_MSG(rv == APR_SUCCESS && s, "open: %d %s", rv, err ? err : "");
    if (rv != APR_SUCCESS) {
        return NULL;
    }
    rv = ca_store_migrate(s, p, &version, &err);
    UT_CHECK_MSG(rv == APR_SUCCESS, "migrate: %d %s", rv, err ? err : "");
    UT_CHECK(version == ca_store_schema_version());
    return rv == APR_SUCCESS ? s : NULL;
}

static ca_cert_row_t *row_make(apr_pool_t *p, const char *serial,
                               const char *owner, apr_int64_t issued_at)
{
    ca_cert_row_t *r = apr_pcalloc(p, sizeof(*r));
    r->serial = serial;
    r->subject = apr_psprintf(p, "CN=%s,O=Example", owner);
    r->owner = owner;
    r->profile = "default";
    r->not_before = issued_at - 60;
    r->not_after = issued_at + 365 * 86400;
    r->issued_at = issued_at;
    r->status = CA_STATUS_VALID;
    r->revoked_at = 0;
    r->reason = -1;
    r->cert_pem = apr_psprintf(p, "-----BEGIN CERTIFICATE-----\n%s\n"
                               "-----END CERTIFICATE-----\n", serial);
    r->invalidity_at = 0;
    r->replaced_by = NULL;
    return r;
}

static int same_str(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/* Every field equal (replaced_by NULL is stored as ""). */
static int row_equal(const ca_cert_row_t *a, const ca_cert_row_t *b)
{
    return same_str(a->serial, b->serial) && same_str(a->subject, b->subject)
           && same_str(a->owner, b->owner)
           && same_str(a->profile, b->profile)
           && a->not_before == b->not_before && a->not_after == b->not_after
           && a->issued_at == b->issued_at && same_str(a->status, b->status)
           && a->revoked_at == b->revoked_at && a->reason == b->reason
           && same_str(a->cert_pem, b->cert_pem)
           && a->invalidity_at == b->invalidity_at
           && same_str(a->replaced_by ? a->replaced_by : "",
                       b->replaced_by ? b->replaced_by : "");
}

static const char *serials_of(apr_pool_t *p, apr_array_header_t *rows)
{
    const char *out = "";
    int i;
    for (i = 0; rows && i < rows->nelts; i++) {
        const ca_cert_row_t *r = APR_ARRAY_IDX(rows, i, ca_cert_row_t *);
        out = apr_pstrcat(p, out, i ? "," : "", r->serial, NULL);
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_open_migrate(apr_pool_t *p)
{
    const char *path = db_path(p), *err = NULL;
    ca_store_t *s = NULL;
    int v1 = -1, v2 = -1;
    raw_t *raw;

    UT_CHECK(ca_store_schema_version() >= 1);
    UT_CHECK(ca_store_open(&s, p, "sqlite3", path, &err) == APR_SUCCESS);
    UT_CHECK(err == NULL);
    if (!s) {
        return;
    }
    UT_CHECK(ca_store_migrate(s, p, &v1, &err) == APR_SUCCESS);
    UT_CHECK(ca_store_migrate(s, p, &v2, &err) == APR_SUCCESS);
    UT_CHECK_MSG(v1 == ca_store_schema_version()
                     && v2 == ca_store_schema_version(),
                 "versions %d %d", v1, v2);

    raw = raw_open(p, path);
    /* One row holding the version, even after two runs. */
    UT_CHECK(same_str(raw_select(p, raw,
                                 "SELECT version FROM certauth_schema"),
                      apr_itoa(p, ca_store_schema_version())));
    /* WAL is a property of the file: another connection sees it. */
    UT_CHECK_MSG(same_str(raw_select(p, raw, "PRAGMA journal_mode"), "wal"),
                 "%s", raw_select(p, raw, "PRAGMA journal_mode"));
    UT_CHECK(same_str(raw_select(p, raw, "SELECT COUNT(*) FROM "
                                         "certauth_certs"), "0"));

    /* Another connection to the migrated file migrates nothing. */
    {
        ca_store_t *s2 = NULL;
        int v3 = -1;
        UT_CHECK(ca_store_open(&s2, p, "sqlite3", path, &err)
                 == APR_SUCCESS);
        UT_CHECK(s2 && ca_store_migrate(s2, p, &v3, &err) == APR_SUCCESS
                 && v3 == ca_store_schema_version());
    }
    UT_CHECK(same_str(raw_select(p, raw,
                                 "SELECT COUNT(*) FROM certauth_schema"),
                      "1"));
    UT_CHECK(same_str(ca_store_last_error(NULL), ""));
}

static void test_roundtrip_more(apr_pool_t *p)
{
    ca_store_t *s = open_db(p, db_path(p));
    ca_cert_row_t full, *got = NULL, *plain;
    apr_int64_t n = -1;

    if (!s) {
        return;
    }
    memset(&full, 0, sizeof(full));
    full.serial = "7FEDCBA9876543210FEDCBA9876543210FEDCBA9";
    full.subject = "CN=J\xc3\xbcrgen O'Brien \"x\"\\, y,O=Ex; DROP TABLE "
                   "certauth_certs;--";
    full.owner = "o'wner@example.org";
    full.profile = "server%s";
    full.not_before = -631152000;      /* 1950 */
    full.not_after = 253402300799LL;   /* 9999 */
    full.issued_at = 2147483648LL;     /* past 32 bits */
    full.status = CA_STATUS_REVOKED;
    full.revoked_at = 4102444800LL;
    full.reason = 1;
    full.cert_pem = "-----BEGIN CERTIFICATE-----\r\nMIIB...\r\n"
                    "-----END CERTIFICATE-----\r\n";
    full.invalidity_at = 4102444000LL;
    full.replaced_by = "0A1B";

    UT_CHECK(ca_store_cert_insert(s, p, &full) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_get(s, p, full.serial, &got) == APR_SUCCESS);
    UT_CHECK(got && row_equal(got, &full));
    if (got) {
        UT_CHECK(got->not_before == -631152000
                 && got->not_after == 253402300799LL
                 && got->issued_at == 2147483648LL && got->reason == 1
                 && got->revoked_at == 4102444800LL
                 && got->invalidity_at == 4102444000LL
                 && same_str(got->replaced_by, "0A1B"));
    }

    /* Defaults: no revocation, reason -1, replaced_by NULL -> "". */
    plain = row_make(p, "01", "bob", 1700000000);
    UT_CHECK(ca_store_cert_insert(s, p, plain) == APR_SUCCESS);
    got = NULL;
    UT_CHECK(ca_store_cert_get(s, p, "01", &got) == APR_SUCCESS);
    UT_CHECK(got && row_equal(got, plain) && got->reason == -1
             && got->revoked_at == 0 && got->invalidity_at == 0
             && same_str(got->replaced_by, "")
             && same_str(got->status, CA_STATUS_VALID));

    UT_CHECK(ca_store_cert_count(s, p, &n) == APR_SUCCESS && n == 2);
    /* Serials are looked up exactly (the caller normalises). */
    got = NULL;
    UT_CHECK(ca_store_cert_get(s, p, "1", &got) == CA_ENOTFOUND);
    UT_CHECK(ca_store_cert_get(s, p, "0a1b", &got) == CA_ENOTFOUND);
}

static void test_duplicate_unknown(apr_pool_t *p)
{
    ca_store_t *s = open_db(p, db_path(p));
    ca_cert_row_t *first, *second, *got = NULL;
    apr_int64_t n = -1;

    if (!s) {
        return;
    }
    first = row_make(p, "0A1B", "alice", 1700000000);
    second = row_make(p, "0A1B", "mallory", 1700000500);
    second->subject = "CN=mallory";
    second->cert_pem = "other";
    UT_CHECK(ca_store_cert_insert(s, p, first) == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(s, p, second) == CA_EEXIST);
    UT_CHECK(ca_store_cert_insert(s, p, first) == CA_EEXIST);
    UT_CHECK(ca_store_cert_get(s, p, "0A1B", &got) == APR_SUCCESS);
    UT_CHECK(got && row_equal(got, first));
    UT_CHECK(ca_store_cert_count(s, p, &n) == APR_SUCCESS && n == 1);

    got = NULL;
    UT_CHECK(ca_store_cert_get(s, p, "0A1C", &got) == CA_ENOTFOUND);
    UT_CHECK(got == NULL);
    UT_CHECK(ca_store_cert_get(s, p, "", &got) == CA_ENOTFOUND);
    UT_CHECK(ca_store_cert_get(s, p, "' OR '1'='1", &got) == CA_ENOTFOUND);

    /* The connection still works after the failed insert. */
    UT_CHECK(ca_store_cert_insert(s, p, row_make(p, "0A1C", "alice", 5))
             == APR_SUCCESS);
    UT_CHECK(ca_store_cert_count(s, p, &n) == APR_SUCCESS && n == 2);
}

static void test_list_more(apr_pool_t *p)
{
    ca_store_t *s = open_db(p, db_path(p));
    static const struct { const char *serial, *owner; apr_int64_t at; }
    rows[] = {
        {"A1", "alice", 100}, {"A2", "alice", 300}, {"B2", "bob", 50},
        {"A3", "alice", 200}, {"A4", "alice", 500}, {"B1", "bob", 350},
        {"A6", "alice", 300}, {"A5", "alice", 400},
    };
    apr_array_header_t *l = NULL;
    apr_int64_t n = -1;
    unsigned i;

    if (!s) {
        return;
    }
    UT_CHECK(ca_store_cert_count(s, p, &n) == APR_SUCCESS && n == 0);
    UT_CHECK(ca_store_cert_list(s, p, NULL, 10, 0, &l) == APR_SUCCESS
             && l && l->nelts == 0);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        UT_CHECK(ca_store_cert_insert(s, p, row_make(p, rows[i].serial,
                                                     rows[i].owner,
                                                     rows[i].at))
                 == APR_SUCCESS);
    }
    UT_CHECK(ca_store_cert_count(s, p, &n) == APR_SUCCESS && n == 8);

#define LIST(owner, limit, offset, want) do { \
        l = NULL; \
        UT_CHECK(ca_store_cert_list(s, p, (owner), (limit), (offset), &l) \
                 == APR_SUCCESS); \
        UT_CHECK_MSG(same_str(serials_of(p, l), (want)), "%s %d %d: '%s'", \
                     (owner) ? (owner) : "*", (limit), (offset), \
                     serials_of(p, l)); \
    } while (0)

    /* Newest first, ties by serial. */
    LIST("alice", 2, 0, "A4,A5");
    LIST("alice", 2, 2, "A2,A6");
    LIST("alice", 2, 4, "A3,A1");
    LIST("alice", 2, 6, "");
    LIST("alice", 3, 5, "A1");
    LIST("alice", 100, 0, "A4,A5,A2,A6,A3,A1");
    LIST("alice", 0, 0, "A4,A5,A2,A6,A3,A1");   /* 0: the default limit */
    LIST("alice", 1, -5, "A4");                  /* negative offset: 0 */
    LIST("bob", 10, 0, "B1,B2");
    LIST("carol", 10, 0, "");
    LIST("ALICE", 10, 0, "");
    LIST("' OR ''='", 10, 0, "");
    LIST(NULL, 100, 0, "A4,A5,B1,A2,A6,A3,A1,B2");
    LIST(NULL, 3, 0, "A4,A5,B1");
    LIST(NULL, 3, 3, "A2,A6,A3");
    LIST(NULL, 3, 6, "A1,B2");
    LIST(NULL, 3, 9, "");
#undef LIST

    /* The rows of a list are complete. */
    l = NULL;
    UT_CHECK(ca_store_cert_list(s, p, "bob", 1, 1, &l) == APR_SUCCESS);
    UT_CHECK(l && l->nelts == 1
             && row_equal(APR_ARRAY_IDX(l, 0, ca_cert_row_t *),
                          row_make(p, "B2", "bob", 50)));
}

static void test_persist(apr_pool_t *p)
{
    const char *path = db_path(p);
    apr_pool_t *sub;
    ca_store_t *s;
    ca_cert_row_t *got = NULL;

    /* Written through one connection, closed with its pool ... */
    apr_pool_create(&sub, p);
    s = open_db(sub, path);
    if (s) {
        UT_CHECK(ca_store_cert_insert(s, sub, row_make(sub, "CAFE", "dora",
                                                       42))
                 == APR_SUCCESS);
    }
    apr_pool_destroy(sub);
    /* ... read back through a new one. */
    s = open_db(p, path);
    UT_CHECK(s && ca_store_cert_get(s, p, "CAFE", &got) == APR_SUCCESS
             && got && same_str(got->owner, "dora") && got->issued_at == 42);
}

static void test_newer_schema_more(apr_pool_t *p)
{
    const char *path = db_path(p), *err = NULL;
    ca_store_t *s = open_db(p, path);
    raw_t *raw;
    int v = -1;

    if (!s) {
        return;
    }
    raw = raw_open(p, path);
    UT_CHECK(raw_query(raw, "UPDATE certauth_schema SET version=99") == 1);
    UT_CHECK(ca_store_migrate(s, p, &v, &err) == CA_ECONFIG);
    UT_CHECK_MSG(err && strstr(err, "99"), "%s", err ? err : "(null)");
    /* A new connection refuses it just the same, and changes nothing. */
    {
        ca_store_t *s2 = NULL;
        UT_CHECK(ca_store_open(&s2, p, "sqlite3", path, &err)
                 == APR_SUCCESS);
        err = NULL;
        UT_CHECK(s2 && ca_store_migrate(s2, p, &v, &err) == CA_ECONFIG
                 && err && *err);
    }
    UT_CHECK(same_str(raw_select(p, raw,
                                 "SELECT version FROM certauth_schema"),
                      "99"));
}

static void test_open_errors_more(apr_pool_t *p)
{
    const char *d = ut_tmpdir(p), *err = NULL;
    const char *bad = apr_pstrcat(p, d, "/no/such/dir/certauth.db", NULL);
    ca_store_t *s = NULL;
    apr_status_t rv;

    rv = ca_store_open(&s, p, "sqlite3", bad, &err);
    UT_CHECK(rv != APR_SUCCESS);
    UT_CHECK_MSG(err && strstr(err, bad), "%s", err ? err : "(null)");
    UT_CHECK(err && !strchr(err, '\n'));
    UT_CHECK(access(apr_pstrcat(p, d, "/no", NULL), F_OK) != 0);

    err = NULL;
    rv = ca_store_open(&s, p, "nosuchdriver", bad, &err);
    UT_CHECK(rv == CA_ECONFIG);
    UT_CHECK_MSG(err && strstr(err, "nosuchdriver"), "%s",
                 err ? err : "(null)");

    /* A file that is not a database. */
    {
        const char *junk = apr_pstrcat(p, d, "/junk.db", NULL);
        FILE *f = fopen(junk, "w");
        int i, v;
        UT_CHECK(f != NULL);
        for (i = 0; f && i < 200; i++) {
            fputs("this is not an SQLite database file\n", f);
        }
        if (f) {
            fclose(f);
        }
        err = NULL;
        s = NULL;
        rv = ca_store_open(&s, p, "sqlite3", junk, &err);
        if (rv == APR_SUCCESS) {
            /* SQLite may notice only at the first statement. */
            rv = ca_store_migrate(s, p, &v, &err);
        }
        UT_CHECK(rv != APR_SUCCESS && err && *err);
    }
}

static void test_wrap_more(apr_pool_t *p)
{
    const char *path = db_path(p), *err = NULL;
    raw_t *raw = raw_open(p, path);
    apr_hash_t *prepared = apr_hash_make(p);
    ca_store_t *s = NULL, *s2 = NULL;
    ca_cert_row_t *got = NULL;
    apr_array_header_t *l = NULL;
    apr_pool_t *req;
    int v = -1;
    apr_int64_t n = -1;

    UT_CHECK(ca_store_wrap(&s, p, raw->drv, raw->h, prepared, p)
             == APR_SUCCESS);
    if (!s) {
        return;
    }
    /* The connection settings were applied to this handle. */
    UT_CHECK(same_str(raw_select(p, raw, "PRAGMA journal_mode"), "wal"));
    UT_CHECK(same_str(raw_select(p, raw, "PRAGMA synchronous"), "2"));
    UT_CHECK(same_str(raw_select(p, raw, "PRAGMA busy_timeout"), "250"));
    UT_CHECK(ca_store_migrate(s, p, &v, &err) == APR_SUCCESS
             && v == ca_store_schema_version());
    UT_CHECK(apr_hash_get(prepared, "certauth_cert_get",
                          APR_HASH_KEY_STRING) == NULL);
    UT_CHECK(ca_store_cert_insert(s, p, row_make(p, "0B", "erin", 7))
             == APR_SUCCESS);
    UT_CHECK(ca_store_cert_get(s, p, "0B", &got) == APR_SUCCESS && got
             && same_str(got->owner, "erin"));
    /* The statements were prepared into the caller's hash. */
    UT_CHECK(apr_hash_get(prepared, "certauth_cert_get",
                          APR_HASH_KEY_STRING) != NULL);
    UT_CHECK(apr_hash_get(prepared, "certauth_cert_insert",
                          APR_HASH_KEY_STRING) != NULL);

    /* A later request wraps the same connection with a short-lived pool:
     * the cached statements are reused, and they outlive that pool. */
    apr_pool_create(&req, p);
    {
        unsigned before = apr_hash_count(prepared);
        apr_dbd_prepared_t *st = apr_hash_get(prepared, "certauth_cert_get",
                                              APR_HASH_KEY_STRING);
        UT_CHECK(ca_store_wrap(&s2, req, raw->drv, raw->h, prepared, p)
                 == APR_SUCCESS);
        got = NULL;
        UT_CHECK(s2 && ca_store_cert_get(s2, req, "0B", &got)
                           == APR_SUCCESS);
        UT_CHECK(apr_hash_get(prepared, "certauth_cert_get",
                              APR_HASH_KEY_STRING) == st);
        UT_CHECK(apr_hash_count(prepared) == before);
        UT_CHECK(ca_store_cert_list(s2, req, "erin", 10, 0, &l)
                 == APR_SUCCESS && l->nelts == 1);
        UT_CHECK(apr_hash_get(prepared, "certauth_cert_list_owner",
                              APR_HASH_KEY_STRING) != NULL);
    }
    apr_pool_destroy(req);
    got = NULL;
    UT_CHECK(ca_store_cert_get(s, p, "0B", &got) == APR_SUCCESS && got);
    UT_CHECK(ca_store_cert_list(s, p, "erin", 10, 0, &l) == APR_SUCCESS
             && l->nelts == 1);
    UT_CHECK(ca_store_cert_count(s, p, &n) == APR_SUCCESS && n == 1);
    UT_CHECK(same_str(raw_select(p, raw, "SELECT owner FROM certauth_certs"),
                      "erin"));
}

int main(void)
{
    ca_log_set(log_collect, NULL, CA_LOG_DEBUG);
    UT_RUN(test_migrate_twice);
    UT_RUN(test_crl_query_covered);
    UT_RUN(test_crl_query_sqlite_partial);
    UT_RUN(test_connection_settings);
    UT_RUN(test_roundtrip);
    UT_RUN(test_insert_committed);
    UT_RUN(test_duplicate_serial);
    UT_RUN(test_insert_error);
    UT_RUN(test_get_unknown);
    UT_RUN(test_list);
    UT_RUN(test_newer_schema);
    UT_RUN(test_upgrade_from_v1);
    UT_RUN(test_migrate_two_connections);
    UT_RUN(test_migrate_concurrent);
    UT_RUN(test_open_errors);
    UT_RUN(test_wrap);
    UT_RUN(test_transactions);
    UT_RUN(test_txn_begin_busy);
    UT_RUN(test_writer_lock_refused);
    UT_RUN(test_count_valid);
    UT_RUN(test_set_status);
    UT_RUN(test_search);
    UT_RUN(test_crl_state);
    UT_RUN(test_audit);

    /* Migrations log at info: keep the output to the results. */
    ca_log_set(NULL, NULL, CA_LOG_WARN);
    UT_RUN(test_open_migrate);
    UT_RUN(test_roundtrip_more);
    UT_RUN(test_duplicate_unknown);
    UT_RUN(test_list_more);
    UT_RUN(test_persist);
    UT_RUN(test_newer_schema_more);
    UT_RUN(test_open_errors_more);
    UT_RUN(test_wrap_more);
    return ut_finish();
}
