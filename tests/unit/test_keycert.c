/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of certauth-stunnel's keycert.c: durations and renewal timing,
 * key-cert parsing (order, mismatch, corruption, encryption, chain), PEM
 * round trips, PKCS#7 certs-only parsing, CSRs, and the safe file writes
 * (mode, backup, symbolic links, no temporary file left, old file intact
 * when the write is abandoned). */

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_strings.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "unit.h"
#include "ca_ca.h"
#include "ca_util.h"
#include "keycert.h"

/* A self-signed certificate for key, valid from now+nb to now+na. */
static X509 *selfsigned(apr_pool_t *p, EVP_PKEY *key, const char *cn,
                        long nb, long na)
{
    X509 *x = ca_pool_x509(p, X509_new());
    X509_NAME *n = X509_NAME_new();

    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), nb);
    X509_gmtime_adj(X509_getm_notAfter(x), na);
    X509_set_pubkey(x, key);
    X509_sign(x, key, ca_sign_md(key));
    X509_NAME_free(n);
    return x;
}

static EVP_PKEY *newkey(apr_pool_t *p, const char *type)
{
    EVP_PKEY *k = NULL;
    const char *err = NULL;
    if (ca_key_generate(p, type, &k, &err) != APR_SUCCESS) {
        fprintf(stderr, "ca_key_generate %s: %s\n", type, err);
        return NULL;
    }
    return k;
}

static const char *pem_of(apr_pool_t *p, EVP_PKEY *k, const char *pass,
                          X509 *x, STACK_OF(X509) *chain)
{
    char *pem = NULL;
    apr_size_t len = 0;
    const char *err = NULL;
    if (kc_pem(p, k, pass, x, chain, &pem, &len, &err) != APR_SUCCESS) {
        return NULL;
    }
    return pem;
}

static void test_duration(apr_pool_t *p)
{
    apr_int64_t s = -1;
    (void)p;
    UT_CHECK(kc_parse_duration("30d", &s) == APR_SUCCESS && s == 30 * 86400);
    UT_CHECK(kc_parse_duration("30", &s) == APR_SUCCESS && s == 30 * 86400);
    UT_CHECK(kc_parse_duration("12h", &s) == APR_SUCCESS && s == 12 * 3600);
    UT_CHECK(kc_parse_duration("0d", &s) == APR_SUCCESS && s == 0);
    UT_CHECK(kc_parse_duration("", &s) == CA_EBADINPUT);
    UT_CHECK(kc_parse_duration("d", &s) == CA_EBADINPUT);
    UT_CHECK(kc_parse_duration("-1d", &s) == CA_EBADINPUT);
    UT_CHECK(kc_parse_duration("3w", &s) == CA_EBADINPUT);
    UT_CHECK(kc_parse_duration("30dd", &s) == CA_EBADINPUT);
    UT_CHECK(kc_parse_duration("99999999999d", &s) == CA_EBADINPUT);
}

static void test_renewal_due(apr_pool_t *p)
{
    (void)p;
    /* 90 days from 0: two thirds = day 60 */
    UT_CHECK(!kc_renewal_due(59 * 86400, 0, 90 * 86400, -1));
    UT_CHECK(kc_renewal_due(60 * 86400, 0, 90 * 86400, -1));
    UT_CHECK(kc_renewal_due(100 * 86400, 0, 90 * 86400, -1));
    /* within 30 days */
    UT_CHECK(!kc_renewal_due(59 * 86400, 0, 90 * 86400, 30 * 86400));
    UT_CHECK(kc_renewal_due(60 * 86400, 0, 90 * 86400, 30 * 86400));
    /* a window larger than the lifetime: always due */
    UT_CHECK(kc_renewal_due(0, 0, 86400, 3 * 86400));
    /* an empty lifetime is due */
    UT_CHECK(kc_renewal_due(0, 10, 10, -1));
}

static void test_parse(apr_pool_t *p)
{
    EVP_PKEY *k = newkey(p, "ec"), *k2 = newkey(p, "ec:P-384");
    X509 *x = selfsigned(p, k, "leaf", 0, 86400);
    X509 *ca = selfsigned(p, k2, "other", 0, 86400);
    STACK_OF(X509) *chain = ca_pool_x509_stack(p, sk_X509_new_null());
    kc_bundle_t *b = NULL;
    const char *err = NULL, *kp, *xp, *cp, *s;

    UT_CHECK(k && k2);
    X509_up_ref(ca);
    sk_X509_push(chain, ca);
    kp = pem_of(p, k, NULL, NULL, NULL);
    xp = pem_of(p, NULL, NULL, x, NULL);
    cp = pem_of(p, NULL, NULL, ca, NULL);

    /* key, cert, chain */
    s = apr_pstrcat(p, kp, xp, cp, NULL);
    UT_CHECK(kc_parse(p, s, strlen(s), NULL, 1, &b, &err) == APR_SUCCESS);
    UT_CHECK(b && X509_cmp(b->cert, x) == 0 && sk_X509_num(b->chain) == 1);
    UT_CHECK(b && kc_key_matches(b->cert, b->key));
    /* any order: the leaf is the key's certificate */
    s = apr_pstrcat(p, cp, xp, kp, NULL);
    UT_CHECK(kc_parse(p, s, strlen(s), NULL, 1, &b, &err) == APR_SUCCESS);
    UT_CHECK(b && X509_cmp(b->cert, x) == 0);
    /* a key that is not the certificate's */
    s = apr_pstrcat(p, pem_of(p, k2, NULL, NULL, NULL), xp, NULL);
    UT_CHECK(kc_parse(p, s, strlen(s), NULL, 1, &b, &err) == CA_EBADINPUT);
    UT_CHECK_MSG(strstr(err, "does not match"), "%s", err);
    /* no key */
    UT_CHECK(kc_parse(p, xp, strlen(xp), NULL, 1, &b, &err) == CA_EBADINPUT);
    UT_CHECK(!strcmp(err, "no private key"));
    UT_CHECK(kc_parse(p, xp, strlen(xp), NULL, 0, &b, &err) == APR_SUCCESS);
    /* no certificate */
    UT_CHECK(kc_parse(p, kp, strlen(kp), NULL, 1, &b, &err) == CA_EBADINPUT);
    UT_CHECK(!strcmp(err, "no certificate"));
    /* two keys */
    s = apr_pstrcat(p, kp, kp, xp, NULL);
    UT_CHECK(kc_parse(p, s, strlen(s), NULL, 1, &b, &err) == CA_EBADINPUT);
    UT_CHECK(!strcmp(err, "more than one private key"));
    /* not PEM at all, empty */
    UT_CHECK(kc_parse(p, "hello\n", 6, NULL, 1, &b, &err) == CA_EBADINPUT);
    UT_CHECK(strstr(err, "no PEM data") != NULL);
    UT_CHECK(kc_parse(p, "", 0, NULL, 1, &b, &err) == CA_EBADINPUT);
    /* corrupt base64 in the certificate */
    {
        char *bad = apr_pstrcat(p, kp, xp, NULL);
        char *c = strstr(bad, "BEGIN CERTIFICATE-----") + 40;
        memcpy(c, "!!!!", 4);
        UT_CHECK(kc_parse(p, bad, strlen(bad), NULL, 1, &b, &err)
                 == CA_EBADINPUT);
        UT_CHECK_MSG(strstr(err, "corrupt") != NULL, "%s", err);
    }
    /* a truncated file (no END line) */
    {
        char *cut = apr_pstrndup(p, s = apr_pstrcat(p, kp, xp, NULL),
                                 strlen(kp) + strlen(xp) / 2);
        UT_CHECK(kc_parse(p, cut, strlen(cut), NULL, 1, &b, &err)
                 == CA_EBADINPUT);
        UT_CHECK_MSG(strstr(err, "corrupt") != NULL, "%s", err);
    }
    /* an encrypted key: needs the pass phrase, the right one */
    s = apr_pstrcat(p, pem_of(p, k, "pass-phrase", NULL, NULL), xp, NULL);
    UT_CHECK(strstr(s, "ENCRYPTED PRIVATE KEY") != NULL);
    UT_CHECK(kc_parse(p, s, strlen(s), NULL, 1, &b, &err) == CA_EBADINPUT);
    UT_CHECK(strstr(err, "no pass phrase") != NULL);
    UT_CHECK(kc_parse(p, s, strlen(s), "wrong", 1, &b, &err)
             == CA_EBADINPUT);
    UT_CHECK(strstr(err, "wrong pass phrase") != NULL);
    UT_CHECK(kc_parse(p, s, strlen(s), "pass-phrase", 1, &b, &err)
             == APR_SUCCESS);
    UT_CHECK(b && kc_key_matches(x, b->key));
}

static void test_key_type(apr_pool_t *p)
{
    UT_CHECK(!strcmp(kc_key_type(p, newkey(p, "ec")), "ec:P-256"));
    UT_CHECK(!strcmp(kc_key_type(p, newkey(p, "ec:P-384")), "ec:P-384"));
    UT_CHECK(!strcmp(kc_key_type(p, newkey(p, "rsa:3072")), "rsa:3072"));
    UT_CHECK(!strcmp(kc_key_type(p, newkey(p, "ed25519")), "ed25519"));
}

static void test_pkcs7(apr_pool_t *p)
{
    EVP_PKEY *k = newkey(p, "ec");
    X509 *x = selfsigned(p, k, "p7", 0, 86400);
    PKCS7 *p7 = PKCS7_new();
    unsigned char *der = NULL;
    int dlen;
    STACK_OF(X509) *certs = NULL;
    const char *err = NULL, *b64;

    UT_CHECK(PKCS7_set_type(p7, NID_pkcs7_signed));
    UT_CHECK(PKCS7_content_new(p7, NID_pkcs7_data));
    UT_CHECK(PKCS7_add_certificate(p7, x));
    dlen = i2d_PKCS7(p7, &der);
    PKCS7_free(p7);
    UT_CHECK(dlen > 0);
    b64 = ca_base64_encode(p, der, (apr_size_t)dlen, 1);
    UT_CHECK(kc_pkcs7_certs_parse(p, b64, strlen(b64), &certs, &err)
             == APR_SUCCESS);
    UT_CHECK(certs && sk_X509_num(certs) == 1
             && X509_cmp(sk_X509_value(certs, 0), x) == 0);
    /* binary DER too */
    UT_CHECK(kc_pkcs7_certs_parse(p, (const char *)der, (apr_size_t)dlen,
                                  &certs, &err) == APR_SUCCESS);
    OPENSSL_free(der);
    UT_CHECK(kc_pkcs7_certs_parse(p, "bm90IGEgcGtjczc=", 16, &certs, &err)
             == CA_EBADINPUT);
    UT_CHECK(kc_pkcs7_certs_parse(p, "<html>", 6, &certs, &err)
             == CA_EBADINPUT);
}

static void test_csr(apr_pool_t *p)
{
    EVP_PKEY *k = newkey(p, "ec");
    X509_NAME *n = NULL;
    X509_REQ *req = NULL;
    const char *err = NULL;
    STACK_OF(X509_EXTENSION) *exts;
    GENERAL_NAMES *gens;

    UT_CHECK(ca_name_parse(p, "CN=host.example.org", &n, &err)
             == APR_SUCCESS);
    UT_CHECK(kc_make_csr(p, k, n, NULL, "DNS:host.example.org,IP:127.0.0.1",
                         &req, &err) == APR_SUCCESS);
    UT_CHECK(req && X509_REQ_verify(req, k) == 1);
    exts = req ? X509_REQ_get_extensions(req) : NULL;
    gens = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL)
                : NULL;
    UT_CHECK(gens && sk_GENERAL_NAME_num(gens) == 2);
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    UT_CHECK(kc_make_csr(p, k, n, NULL, "FOO:bar", &req, &err)
             == CA_EBADINPUT);
    UT_CHECK(strstr(err, "subjectAltName") != NULL);
}

/* ------------------------------------------------------------------ files */

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            n++;
        }
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static const char *slurp(apr_pool_t *p, const char *path)
{
    char *data = NULL;
    apr_size_t len = 0;
    return ca_file_read(p, path, 1 << 20, &data, &len) == APR_SUCCESS ? data
                                                                      : NULL;
}

static void rmrf(apr_pool_t *p, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            unlink(apr_pstrcat(p, dir, "/", e->d_name, NULL));
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(dir);
}

static void test_files(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p), *f, *err = NULL, *s;
    struct stat st;
    kc_out_t *o = NULL;
    apr_pool_t *sub;

    UT_CHECK(dir != NULL);
    if (!dir) {
        return;
    }
    f = apr_pstrcat(p, dir, "/key-cert.pem", NULL);
    /* new file: mode 0600 whatever the umask */
    umask(022);
    UT_CHECK(kc_write_file(p, f, "one\n", 4, 0600, NULL, &err)
             == APR_SUCCESS);
    UT_CHECK(stat(f, &st) == 0 && (st.st_mode & 0777) == 0600);
    UT_CHECK((s = slurp(p, f)) && !strcmp(s, "one\n"));
    UT_CHECK(entries(dir) == 1);
    /* replaced, with a backup of the old content */
    UT_CHECK(kc_write_file(p, f, "two\n", 4, 0600,
                           apr_pstrcat(p, f, ".bak", NULL), &err)
             == APR_SUCCESS);
    UT_CHECK((s = slurp(p, f)) && !strcmp(s, "two\n"));
    UT_CHECK((s = slurp(p, apr_pstrcat(p, f, ".bak", NULL)))
             && !strcmp(s, "one\n"));
    UT_CHECK(stat(apr_pstrcat(p, f, ".bak", NULL), &st) == 0
             && (st.st_mode & 0777) == 0600);
    UT_CHECK(entries(dir) == 2);
    /* opened, then abandoned (the pool goes before the commit): the old
     * file is intact and the temporary file gone */
    apr_pool_create(&sub, p);
    UT_CHECK(kc_out_open(sub, f, 0600, &o, &err) == APR_SUCCESS);
    UT_CHECK(o && kc_out_existed(o, NULL));
    UT_CHECK(entries(dir) == 3);
    apr_pool_destroy(sub);
    UT_CHECK(entries(dir) == 2);
    UT_CHECK((s = slurp(p, f)) && !strcmp(s, "two\n"));
    /* reserved room is cut to what is written */
    UT_CHECK(kc_out_open(p, f, 0600, &o, &err) == APR_SUCCESS);
    UT_CHECK(kc_out_reserve(o, 65536, &err) == APR_SUCCESS);
    UT_CHECK(kc_out_commit(o, "two\n", 4, NULL, &err) == APR_SUCCESS);
    UT_CHECK(stat(f, &st) == 0 && st.st_size == 4);
    UT_CHECK((s = slurp(p, f)) && !strcmp(s, "two\n"));
    UT_CHECK(entries(dir) == 2);
    /* a symbolic link stays a link; its target is replaced */
    UT_CHECK(symlink("key-cert.pem", apr_pstrcat(p, dir, "/link.pem", NULL))
             == 0);
    UT_CHECK(kc_write_file(p, apr_pstrcat(p, dir, "/link.pem", NULL),
                           "three\n", 6, 0600, NULL, &err) == APR_SUCCESS);
    UT_CHECK(lstat(apr_pstrcat(p, dir, "/link.pem", NULL), &st) == 0
             && S_ISLNK(st.st_mode));
    UT_CHECK((s = slurp(p, f)) && !strcmp(s, "three\n"));
    /* a directory that does not exist: a clear error */
    UT_CHECK(kc_write_file(p, apr_pstrcat(p, dir, "/no/such.pem", NULL),
                           "x", 1, 0600, NULL, &err) == CA_EIO);
    UT_CHECK_MSG(strstr(err, "cannot create a file in") != NULL, "%s", err);
    /* not a regular file */
    UT_CHECK(kc_write_file(p, dir, "x", 1, 0600, NULL, &err) == CA_EIO);
    UT_CHECK_MSG(strstr(err, "not a regular file") != NULL, "%s", err);
    /* 0644 when asked (usercert.pem) */
    UT_CHECK(kc_write_file(p, apr_pstrcat(p, dir, "/usercert.pem", NULL),
                           "c\n", 2, 0644, NULL, &err) == APR_SUCCESS);
    UT_CHECK(stat(apr_pstrcat(p, dir, "/usercert.pem", NULL), &st) == 0
             && (st.st_mode & 0777) == 0644);
    /* loading: an unreadable file is CA_EIO, a bad one CA_EBADINPUT */
    {
        kc_bundle_t *b;
        UT_CHECK(kc_load(p, apr_pstrcat(p, dir, "/missing", NULL), NULL, 1,
                         &b, &err) == CA_EIO);
        UT_CHECK(kc_load(p, f, NULL, 1, &b, &err) == CA_EBADINPUT);
        UT_CHECK(strstr(err, f) == err);
    }
    rmrf(p, dir);
}

/* A child process (POSIX record locks are per process) tries kc_lock on
 * path with wait 0: 0 when it got the lock, 1 when APR_TIMEUP named the
 * holder `holder`, 2 otherwise. */
static int child_lock(const char *path, long holder)
{
    pid_t pid;
    int status = 0;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        apr_pool_t *cp;
        const char *err = NULL;
        apr_status_t rv;
        apr_pool_create(&cp, NULL);
        rv = kc_lock(cp, path, 0, &err);
        if (rv == APR_SUCCESS) {
            _exit(0);
        }
        if (rv == APR_TIMEUP && strstr(err, "being replaced by another run")
            && strstr(err, apr_psprintf(cp, "process %ld ", holder))) {
            _exit(1);
        }
        fprintf(stderr, "  child: %s\n", err ? err : "?");
        _exit(2);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

static void test_lock(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p), *f, *link, *lockf, *err = NULL;
    apr_pool_t *sub;
    struct stat st;

    UT_CHECK(dir != NULL);
    if (!dir) {
        return;
    }
    f = apr_pstrcat(p, dir, "/key-cert.pem", NULL);
    link = apr_pstrcat(p, dir, "/link.pem", NULL);
    lockf = apr_pstrcat(p, dir, "/.key-cert.pem.lock", NULL);
    UT_CHECK(kc_write_file(p, f, "one\n", 4, 0600, NULL, &err)
             == APR_SUCCESS);
    UT_CHECK(symlink("key-cert.pem", link) == 0);
    /* nobody holds it: a child gets it at once */
    UT_CHECK(child_lock(f, 0) == 0);
    apr_pool_create(&sub, p);
    UT_CHECK(kc_lock(sub, f, 0, &err) == APR_SUCCESS);
    UT_CHECK(stat(lockf, &st) == 0 && (st.st_mode & 0777) == 0600);
    /* held: the child gives up and names this process, also through the
     * symbolic link (the lock file is next to the link's target) */
    UT_CHECK(child_lock(f, (long)getpid()) == 1);
    UT_CHECK(child_lock(link, (long)getpid()) == 1);
    /* the lock file does not disturb the file or its replacement */
    UT_CHECK(kc_write_file(p, f, "two\n", 4, 0600, NULL, &err)
             == APR_SUCCESS);
    UT_CHECK(child_lock(f, (long)getpid()) == 1);
    /* released with its pool: the child gets it; the lock file stays */
    apr_pool_destroy(sub);
    UT_CHECK(child_lock(f, 0) == 0);
    UT_CHECK(child_lock(link, 0) == 0);
    UT_CHECK(stat(lockf, &st) == 0);
    /* a directory that does not exist */
    UT_CHECK(kc_lock(p, apr_pstrcat(p, dir, "/no/such.pem", NULL), 0, &err)
             == CA_EIO);
    UT_CHECK_MSG(strstr(err, "cannot create a file in") != NULL, "%s", err);
    rmrf(p, dir);
}

int main(void)
{
    UT_RUN(test_duration);
    UT_RUN(test_renewal_due);
    UT_RUN(test_parse);
    UT_RUN(test_key_type);
    UT_RUN(test_pkcs7);
    UT_RUN(test_csr);
    UT_RUN(test_files);
    UT_RUN(test_lock);
    return ut_finish();
}
