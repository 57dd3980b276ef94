/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_store over a temporary SQLite file: opening, migrations,
 * connection settings, certificate rows (round trip of every field,
 * duplicate and unknown serials, lists, counts) and wrapping a connection
 * owned by someone else (mod_dbd). */

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "unit.h"
#include "rawdb.h"
#include "ca_log.h"
#include "ca_store.h"
#include "ca_store_test.h"
#include "ca_util.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static apr_status_t tmpdir_cleanup(void *d)
{
    nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return APR_SUCCESS;
}

/* A fresh temporary directory, removed with the pool (registered first, so
 * it runs after the connections opened later from the same pool closed). */
static const char *tmpdir(apr_pool_t *p)
{
    char *d = apr_pstrdup(p, "/tmp/ut_store.XXXXXX");
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        abort();
    }
    apr_pool_cleanup_register(p, d, tmpdir_cleanup, apr_pool_cleanup_null);
    return d;
}

static const char *db_path(apr_pool_t *p)
{
    return apr_pstrcat(p, tmpdir(p), "/certauth.db", NULL);
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

static const char *serials(apr_pool_t *p, apr_array_header_t *rows)
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

static void test_roundtrip(apr_pool_t *p)
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

static void test_list(apr_pool_t *p)
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
        UT_CHECK_MSG(same_str(serials(p, l), (want)), "%s %d %d: '%s'", \
                     (owner) ? (owner) : "*", (limit), (offset), \
                     serials(p, l)); \
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

static void test_newer_schema(apr_pool_t *p)
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

static void test_open_errors(apr_pool_t *p)
{
    const char *d = tmpdir(p), *err = NULL;
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

static void test_wrap(apr_pool_t *p)
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
    /* Migrations log at info: keep the output to the results. */
    ca_log_set(NULL, NULL, CA_LOG_WARN);
    UT_RUN(test_open_migrate);
    UT_RUN(test_roundtrip);
    UT_RUN(test_duplicate_unknown);
    UT_RUN(test_list);
    UT_RUN(test_persist);
    UT_RUN(test_newer_schema);
    UT_RUN(test_open_errors);
    UT_RUN(test_wrap);
    return ut_finish();
}
