/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* A very small C test harness for the core library's unit tests.
 *   UT_CHECK(cond)            a failed check fails the test, the test goes on
 *   UT_RUN(fn)                run one test function: void fn(apr_pool_t *p)
 *   return ut_finish();       prints "N passed, N failed" and the exit code
 * Each test function gets a fresh subpool, destroyed after it.
 * Helpers the tests share:
 *   ut_tmpdir(p)              a fresh directory, removed with everything in
 *                             it when p is destroyed
 *   ut_slurp(p, path)         a file's contents (NUL-terminated), or NULL
 *   ut_dir_count(dir)         entries besides . and .. (-1: unreadable)
 *   ut_dir_entries(dir, first, firstlen)
 *                             the same, and the name of the first read in
 *                             first (when not NULL)
 *   ut_rm_rf(dir)             remove a directory and everything in it
 *   ut_keygen(p, type)        a key freed with p: rsa1024, rsa2048,
 *                             rsa-pss (2048), p256, p384, p521, k256,
 *                             ed25519, ed448, x25519
 *   ut_streq(a, b)            both set and equal
 * and for the store's tests:
 *   ut_tmpdb(p)               an SQLite file's path in a fresh ut_tmpdir
 *   ut_store(p, driver, params, migrate)
 *                             the store opened (and migrated to the current
 *                             schema); NULL, with a failed check, if not
 *   ut_cert_row(p, serial, owner, issued_at)
 *                             a certificate row with every field set: valid
 *                             for a year from issued_at, subject CN=owner,
 *                             profile "default", no revocation (reason
 *                             -1), a placeholder PEM, replaced_by "" */
#ifndef UNIT_H
#define UNIT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "ca_store.h"
#include "ca_util.h"

static int ut_passed, ut_failed, ut_cur_failed;
static apr_pool_t *ut_root;

#define UT_CHECK(cond) do { \
    if (!(cond)) { \
        fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        ut_cur_failed = 1; \
    } } while (0)

#define UT_CHECK_MSG(cond, ...) do { \
    if (!(cond)) { \
        fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
        fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); \
        ut_cur_failed = 1; \
    } } while (0)

static void ut_init(void)
{
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&ut_root, NULL);
}

#define UT_RUN(fn) do { \
    apr_pool_t *ut_p; \
    if (!ut_root) ut_init(); \
    apr_pool_create(&ut_p, ut_root); \
    ut_cur_failed = 0; \
    fn(ut_p); \
    apr_pool_destroy(ut_p); \
    if (ut_cur_failed) { ut_failed++; fprintf(stderr, "FAIL %s\n", #fn); } \
    else { ut_passed++; fprintf(stderr, "ok   %s\n", #fn); } \
    } while (0)

static inline int ut_rm_one(const char *path, const struct stat *st,
                            int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static inline apr_status_t ut_tmpdir_cleanup(void *d)
{
    nftw(d, ut_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return APR_SUCCESS;
}

/* A fresh directory below $TMPDIR (apr_temp_dir_get), removed with p; the
 * one temporary-directory maker of the unit tests.  The six X are
 * mkdtemp's template. */
static inline const char *ut_tmpdir(apr_pool_t *p)
{
    const char *base = NULL;
    char *d;

    if (apr_temp_dir_get(&base, p) != APR_SUCCESS) {
        base = "/tmp";
    }
    d = apr_pstrcat(p, base, "/certauth-ut.XXXXXX", NULL);
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        abort();
    }
    apr_pool_cleanup_register(p, d, ut_tmpdir_cleanup,
                              apr_pool_cleanup_null);
    return d;
}

static inline char *ut_slurp(apr_pool_t *p, const char *path)
{
    char *data = NULL;
    apr_size_t len;
    if (ca_file_read(p, path, 1 << 20, &data, &len) != APR_SUCCESS) {
        return NULL;
    }
    return data;
}

static inline int ut_dir_entries(const char *dir, char *first,
                                 size_t firstlen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) {
        return -1;
    }
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            continue;
        }
        if (n == 0 && first) {
            snprintf(first, firstlen, "%s", e->d_name);
        }
        n++;
    }
    closedir(d);
    return n;
}

static inline int ut_dir_count(const char *dir)
{
    return ut_dir_entries(dir, NULL, 0);
}

static inline void ut_rm_rf(const char *dir)
{
    nftw(dir, ut_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline EVP_PKEY *ut_keygen(apr_pool_t *p, const char *type)
{
    EVP_PKEY *k = NULL;

    if (!strcmp(type, "rsa1024")) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    }
    else if (!strcmp(type, "rsa2048")) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    }
    else if (!strcmp(type, "rsa-pss")) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
        if (!c || EVP_PKEY_keygen_init(c) <= 0
            || EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048) <= 0
            || EVP_PKEY_generate(c, &k) <= 0) {
            k = NULL;
        }
        EVP_PKEY_CTX_free(c);
    }
    else if (!strcmp(type, "p256")) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    }
    else if (!strcmp(type, "p384")) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    }
    else if (!strcmp(type, "p521")) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    }
    else if (!strcmp(type, "k256")) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    }
    else if (!strcmp(type, "ed25519")) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    }
    else if (!strcmp(type, "ed448")) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    }
    else if (!strcmp(type, "x25519")) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    }
    if (!k) {
        fprintf(stderr, "keygen %s failed\n", type);
        abort();
    }
    return ca_pool_pkey(p, k);
}

static inline int ut_streq(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

static inline const char *ut_tmpdb(apr_pool_t *p)
{
    return apr_pstrcat(p, ut_tmpdir(p), "/certauth.db", NULL);
}

static inline ca_store_t *ut_store(apr_pool_t *p, const char *driver,
                                   const char *params, int migrate)
{
    ca_store_t *s = NULL;
    const char *err = NULL;
    int version = -1;
    apr_status_t rv = ca_store_open(&s, p, driver, params, &err);

    UT_CHECK_MSG(rv == APR_SUCCESS && s, "open %s %s: %d %s", driver, params,
                 rv, err ? err : "?");
    if (rv != APR_SUCCESS || !s) {
        return NULL;
    }
    if (migrate) {
        rv = ca_store_migrate(s, p, &version, &err);
        UT_CHECK_MSG(rv == APR_SUCCESS, "migrate: %d %s", rv,
                     err ? err : "?");
        if (rv != APR_SUCCESS) {
            return NULL;
        }
        UT_CHECK(version == ca_store_schema_version());
    }
    return s;
}

static inline ca_cert_row_t *ut_cert_row(apr_pool_t *p, const char *serial,
                                         const char *owner,
                                         apr_int64_t issued_at)
{
    ca_cert_row_t *r = apr_pcalloc(p, sizeof(*r));
    r->serial = serial;
    r->subject = apr_pstrcat(p, "CN=", owner, NULL);
    r->owner = owner;
    r->profile = "default";
    r->not_before = issued_at - 60;
    r->not_after = issued_at + 365 * 86400;
    r->issued_at = issued_at;
    r->status = CA_STATUS_VALID;
    r->revoked_at = 0;
    r->reason = -1;
    r->cert_pem = "-----BEGIN CERTIFICATE-----\nAA==\n"
                  "-----END CERTIFICATE-----\n";
    r->invalidity_at = 0;
    r->replaced_by = "";
    return r;
}

static int ut_finish(void)
{
    printf("%d passed, %d failed\n", ut_passed, ut_failed);
    return ut_failed ? 1 : 0;
}

#endif
