/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_util (pool cleanups, base64, PEM/DER, names, serials,
 * times, file reading and atomic writing) and ca_log (sinks, levels, the
 * default stderr sink, the OpenSSL error queue, use from threads). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_thread_proc.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <ftw.h>
#include <signal.h>
#include <sys/resource.h>
#include <openssl/asn1.h>

#include "unit.h"
#include "ca_log.h"
#include "ca_util.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static void write_plain(const char *path, const char *data, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data)) {
        perror(path);
        abort();
    }
    close(fd);
    chmod(path, mode);
}

/* A small self-signed certificate made directly with OpenSSL. */
static X509 *make_cert(apr_pool_t *p, const char *cn, long serial)
{
    EVP_PKEY *k = ca_pool_pkey(p, EVP_PKEY_Q_keygen(NULL, NULL, "EC",
                                                    "P-256"));
    X509 *x = ca_pool_x509(p, X509_new());
    X509_NAME *n = X509_get_subject_name(x);

    if (!k || !x) {
        abort();
    }
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                               (const unsigned char *)"Example", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    if (!X509_sign(x, k, EVP_sha256())) {
        abort();
    }
    return x;
}

/* ------------------------------------------------------------------ */
/* base64                                                              */
/* ------------------------------------------------------------------ */

static int decodes_to(apr_pool_t *p, const char *in, const char *want)
{
    unsigned char *out = NULL;
    apr_size_t len = 0;
    if (ca_base64_decode(p, in, strlen(in), &out, &len) != APR_SUCCESS) {
        return 0;
    }
    return len == strlen(want) && !memcmp(out, want, len);
}

static int rejects(apr_pool_t *p, const char *in, apr_size_t inlen)
{
    unsigned char *out = NULL;
    apr_size_t len = 0;
    return ca_base64_decode(p, in, inlen, &out, &len) == CA_EBADINPUT;
}

static void test_base64_vectors(apr_pool_t *p)
{
    /* RFC 4648 section 10 */
    static const char *v[][2] = {
        { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
        { "foobar", "Zm9vYmFy" },
    };
    size_t i;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        const char *enc = ca_base64_encode(p, (const unsigned char *)v[i][0],
                                           strlen(v[i][0]), 0);
        UT_CHECK_MSG(!strcmp(enc, apr_pstrcat(p, v[i][1], "\n", NULL)),
                     "%s -> %s", v[i][0], enc);
        UT_CHECK_MSG(decodes_to(p, v[i][1], v[i][0]), "%s", v[i][1]);
    }
    UT_CHECK(!strcmp(ca_base64_encode(p, (const unsigned char *)"f", 1, 1),
                     "Zg==\r\n"));
    /* Nothing in, nothing out (no empty line). */
    UT_CHECK(!strcmp(ca_base64_encode(p, (const unsigned char *)"", 0, 0),
                     ""));
}

static void test_base64_roundtrip(apr_pool_t *p)
{
    unsigned char data[300];
    apr_size_t n;
    int crlf;

    RAND_bytes(data, sizeof(data));
    for (crlf = 0; crlf < 2; crlf++) {
        for (n = 1; n <= sizeof(data); n++) {
            const char *enc = ca_base64_encode(p, data, n, crlf);
            unsigned char *dec = NULL, ref[512];
            apr_size_t declen = 0, l;
            const char *line, *eol;
            int ok = 1, reflen;

            /* Same characters as OpenSSL's encoder, lines of 64. */
            reflen = EVP_EncodeBlock(ref, data, (int)n);
            {
                char *flat = apr_palloc(p, strlen(enc) + 1), *f = flat;
                const char *c;
                for (c = enc; *c; c++) {
                    if (*c != '\r' && *c != '\n') {
                        *f++ = *c;
                    }
                }
                *f = '\0';
                ok = ok && (int)strlen(flat) == reflen
                     && !memcmp(flat, ref, (size_t)reflen);
            }
            for (line = enc; *line; line = eol + 1) {
                eol = strchr(line, '\n');
                if (!eol) {
                    ok = 0;
                    break;
                }
                l = (apr_size_t)(eol - line);
                if (crlf) {
                    ok = ok && l > 0 && line[l - 1] == '\r';
                    l--;
                }
                else {
                    ok = ok && (l == 0 || line[l - 1] != '\r');
                }
                /* every line but the last is 64 characters */
                ok = ok && l > 0 && l <= 64 && (l == 64 || !eol[1]);
            }
            ok = ok && ca_base64_decode(p, enc, strlen(enc), &dec, &declen)
                           == APR_SUCCESS
                 && declen == n && !memcmp(dec, data, n);
            UT_CHECK_MSG(ok, "length %zu crlf %d", n, crlf);
            if (!ok) {
                return;
            }
        }
    }
}

static void test_base64_whitespace(apr_pool_t *p)
{
    UT_CHECK(decodes_to(p, " Zm9v\nYmFy\n", "foobar"));
    UT_CHECK(decodes_to(p, "Z m 9 v\r\nY\tm\vF\fy", "foobar"));
    UT_CHECK(decodes_to(p, "\n\nZm9vYg\n=\n= \n", "foob"));
    UT_CHECK(decodes_to(p, "Zm9vYmE=\r\n", "fooba"));
    /* Binary output with a NUL is exact. */
    {
        unsigned char *out = NULL;
        apr_size_t len = 0;
        UT_CHECK(ca_base64_decode(p, "AAEA", 4, &out, &len) == APR_SUCCESS
                 && len == 3 && out[0] == 0 && out[1] == 1 && out[2] == 0);
    }
    /* Only the given length is read. */
    UT_CHECK(decodes_to(p, "Zm9v", "foo"));
    {
        unsigned char *out = NULL;
        apr_size_t len = 0;
        UT_CHECK(ca_base64_decode(p, "Zm9vYmFy!!", 8, &out, &len)
                     == APR_SUCCESS
                 && len == 6 && !memcmp(out, "foobar", 6));
    }
}

static void test_base64_bad(apr_pool_t *p)
{
    UT_CHECK(rejects(p, "", 0));
    UT_CHECK(rejects(p, " \n ", 3));
    UT_CHECK(rejects(p, "Zm9v!", 5));          /* bad character      */
    UT_CHECK(rejects(p, "Zm9-", 4));           /* base64url is not   */
    UT_CHECK(rejects(p, "Zm_v", 4));
    UT_CHECK(rejects(p, "Zm9\0v", 5));         /* NUL inside         */
    UT_CHECK(rejects(p, "Zm9", 3));            /* truncated          */
    UT_CHECK(rejects(p, "Zg", 2));             /* padding missing    */
    UT_CHECK(rejects(p, "Zg=", 3));
    UT_CHECK(rejects(p, "Z===", 4));           /* too much padding   */
    UT_CHECK(rejects(p, "====", 4));
    UT_CHECK(rejects(p, "Zg==Zg==", 8));       /* data after padding */
    UT_CHECK(rejects(p, "Zm=v", 4));           /* '=' inside         */
    UT_CHECK(rejects(p, "Zh==", 4));           /* non-zero pad bits  */
    UT_CHECK(rejects(p, "Zm9=", 4));
    UT_CHECK(rejects(p, "-----BEGIN CERTIFICATE-----", 27));
    {
        const char hi[] = "Zm9v\xc3\xa9";        /* non-ASCII */
        UT_CHECK(rejects(p, hi, sizeof(hi) - 1));
    }
}

/* ------------------------------------------------------------------ */
/* serials                                                             */
/* ------------------------------------------------------------------ */

static const char *norm(apr_pool_t *p, const char *in)
{
    const char *out = NULL;
    apr_status_t rv = ca_serial_normalize(p, in, &out);
    if (rv == CA_EBADINPUT) {
        return "BAD";
    }
    return rv == APR_SUCCESS && out ? out : "ERROR";
}

static void test_serial_normalize(apr_pool_t *p)
{
    static const char *ok[][2] = {
        { "0a:1B", "0A1B" },
        { "0A1B", "0A1B" },
        { "0a1b", "0A1B" },
        { "a1b", "0A1B" },          /* whole bytes */
        { "A", "0A" },
        { "1", "01" },
        { "00:00:01", "01" },       /* leading zeros carry no value */
        { "000000000000000000000000000000000000000000000001", "01" },
        { "7f:ff:ff:ff:ff:ff:ff:ff", "7FFFFFFFFFFFFFFF" },
        { "80", "80" },             /* unsigned hex, as BN_bn2hex */
        { "ff", "FF" },
        { "0102030405060708090a0b0c0d0e0f1011121314",
          "0102030405060708090A0B0C0D0E0F1011121314" },    /* 20 octets */
        { "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
          "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF" },
    };
    static const char *bad[] = {
        "", ":", "::", "0", "00", "00:00", "0:0",     /* empty or zero */
        "xyz", "0g", "12 34", " 12", "12 ", "0x12", "-1", "+1", "12-34",
        "12\n", "1.2", "\xc3\xa9",
        "12:3", "0:a:1:b", "ab:", ":ab", "a::b",   /* colon form: pairs */
        "010203040506070809 0a0b0c0d0e0f1011121314",
        "010102030405060708090a0b0c0d0e0f1011121314",       /* 21 octets */
        "100000000000000000000000000000000000000000",       /* 41 digits */
    };
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *got = norm(p, ok[i][0]);
        UT_CHECK_MSG(!strcmp(got, ok[i][1]), "%s -> %s, want %s", ok[i][0],
                     got, ok[i][1]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *got = norm(p, bad[i]);
        UT_CHECK_MSG(!strcmp(got, "BAD"), "'%s' -> %s, want BAD", bad[i],
                     got);
    }
    /* The normal form is stable. */
    UT_CHECK(!strcmp(norm(p, norm(p, "00:0a:1b")), "0A1B"));
    UT_CHECK(!strcmp(norm(p, norm(p, "0a:1b")), "0A1B"));
}

static void test_serial_hex(apr_pool_t *p)
{
    ASN1_INTEGER *a = ASN1_INTEGER_new();
    BIGNUM *bn = NULL;

    ASN1_INTEGER_set(a, 0x0a1b);
    UT_CHECK(!strcmp(ca_serial_hex(p, a), "0A1B"));
    ASN1_INTEGER_set(a, 1);
    UT_CHECK(!strcmp(ca_serial_hex(p, a), "01"));
    BN_hex2bn(&bn, "7F0102030405060708090A0B0C0D0E0F");
    BN_to_ASN1_INTEGER(bn, a);
    UT_CHECK(!strcmp(ca_serial_hex(p, a), "7F0102030405060708090A0B0C0D0E0F"));
    /* What ca_serial_hex prints, ca_serial_normalize accepts unchanged. */
    UT_CHECK(!strcmp(norm(p, ca_serial_hex(p, a)),
                     "7F0102030405060708090A0B0C0D0E0F"));
    BN_free(bn);
    ASN1_INTEGER_free(a);
}

/* ------------------------------------------------------------------ */
/* time, names, PEM, DER, pool cleanups                                */
/* ------------------------------------------------------------------ */

static void test_time(apr_pool_t *p)
{
    ASN1_TIME *t = ASN1_TIME_new();
    time_t now = time(NULL);
    (void)p;

    ASN1_TIME_set(t, now);
    UT_CHECK(ca_asn1_time_to_epoch(t) == (apr_int64_t)now);
    UT_CHECK(ASN1_TIME_set_string(t, "700101000000Z"));
    UT_CHECK(ca_asn1_time_to_epoch(t) == 0);
    UT_CHECK(ASN1_TIME_set_string(t, "491231235959Z"));       /* UTCTime */
    UT_CHECK(ca_asn1_time_to_epoch(t) == 2524607999LL);
    UT_CHECK(ASN1_TIME_set_string(t, "20500101000000Z"));     /* Generalized */
    UT_CHECK(ca_asn1_time_to_epoch(t) == 2524608000LL);
    UT_CHECK(ASN1_TIME_set_string(t, "99991231235959Z"));
    UT_CHECK(ca_asn1_time_to_epoch(t) == 253402300799LL);
    UT_CHECK(ca_asn1_time_to_epoch(NULL) == 0);
    ASN1_TIME_free(t);
}

static void test_name_str(apr_pool_t *p)
{
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "C", MBSTRING_UTF8,
                               (const unsigned char *)"DE", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                               (const unsigned char *)"Example, Inc.", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                               (const unsigned char *)"J\xc3\xbcrgen", -1, -1,
                               0);
    /* RFC 2253: most significant last, ',' escaped, UTF-8 kept as is. */
    UT_CHECK_MSG(!strcmp(ca_x509_name_str(p, n),
                         "CN=J\xc3\xbcrgen,O=Example\\, Inc.,C=DE"),
                 "%s", ca_x509_name_str(p, n));
    X509_NAME_free(n);
    n = X509_NAME_new();
    UT_CHECK(!strcmp(ca_x509_name_str(p, n), ""));
    X509_NAME_free(n);
}

static void test_pem_der(apr_pool_t *p)
{
    X509 *x = make_cert(p, "pem test", 0x1234), *y;
    const char *pem = ca_x509_pem(p, x);
    unsigned char *der = NULL;
    const unsigned char *q;
    apr_size_t len = 0;
    BIO *bio;

    UT_CHECK(pem && !strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28));
    UT_CHECK(pem && strstr(pem, "-----END CERTIFICATE-----\n"));
    bio = BIO_new_mem_buf(pem, -1);
    y = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    UT_CHECK(y && X509_cmp(x, y) == 0);
    X509_free(y);

    UT_CHECK(ca_x509_der(p, x, &der, &len) == APR_SUCCESS);
    UT_CHECK(len > 100 && der[0] == 0x30);
    q = der;
    y = d2i_X509(NULL, &q, (long)len);
    UT_CHECK(y && X509_cmp(x, y) == 0 && q == der + len);
    X509_free(y);
    UT_CHECK(!strcmp(ca_serial_hex(p, X509_get_serialNumber(x)), "1234"));
    UT_CHECK(!strcmp(ca_x509_name_str(p, X509_get_subject_name(x)),
                     "CN=pem test,O=Example"));
}

static void test_pool_cleanups(apr_pool_t *p)
{
    apr_pool_t *sub;
    STACK_OF(X509) *sk;
    X509_REQ *req;

    /* NULL passes through without registering anything. */
    UT_CHECK(ca_pool_x509(p, NULL) == NULL);
    UT_CHECK(ca_pool_x509_req(p, NULL) == NULL);
    UT_CHECK(ca_pool_pkey(p, NULL) == NULL);
    UT_CHECK(ca_pool_x509_stack(p, NULL) == NULL);

    /* Objects die with their pool: valgrind reports any that do not. */
    apr_pool_create(&sub, p);
    sk = ca_pool_x509_stack(sub, sk_X509_new_null());
    UT_CHECK(sk != NULL);
    sk_X509_push(sk, X509_new());
    sk_X509_push(sk, X509_new());
    req = ca_pool_x509_req(sub, X509_REQ_new());
    UT_CHECK(req != NULL);
    UT_CHECK(make_cert(sub, "in subpool", 7) != NULL);
    apr_pool_destroy(sub);
}

/* ------------------------------------------------------------------ */
/* files                                                               */
/* ------------------------------------------------------------------ */

static void test_file_read(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    const char *f = apr_pstrcat(p, dir, "/f", NULL);
    const char *e = apr_pstrcat(p, dir, "/empty", NULL);
    char *data = NULL;
    apr_size_t len = 0;
    apr_status_t rv;

    write_plain(f, "hello\nworld", 0644);
    write_plain(e, "", 0644);
    UT_CHECK(ca_file_read(p, f, 100, &data, &len) == APR_SUCCESS);
    UT_CHECK(len == 11 && !memcmp(data, "hello\nworld", 11) && data[11] == 0);
    /* exactly at the bound is fine, one byte more is not */
    UT_CHECK(ca_file_read(p, f, 11, &data, &len) == APR_SUCCESS && len == 11);
    data = NULL;
    rv = ca_file_read(p, f, 10, &data, &len);
    UT_CHECK(rv == CA_EBADINPUT || rv == CA_EIO);
    UT_CHECK(data == NULL);
    UT_CHECK(ca_file_read(p, e, 100, &data, &len) == APR_SUCCESS && len == 0
             && data[0] == 0);
    rv = ca_file_read(p, apr_pstrcat(p, dir, "/missing", NULL), 100, &data,
                      &len);
    UT_CHECK(APR_STATUS_IS_ENOENT(rv));
    /* A directory is not a file. */
    UT_CHECK(ca_file_read(p, dir, 100, &data, &len) != APR_SUCCESS);
    /* Files that report no size (procfs) are read to their end, and the
     * bound still holds for them. */
    UT_CHECK(ca_file_read(p, "/proc/self/status", 1 << 20, &data, &len)
             == APR_SUCCESS);
    UT_CHECK(len > 20 && strstr(data, "Name:") && strlen(data) == len);
    UT_CHECK(ca_file_read(p, "/proc/self/status", 16, &data, &len)
             != APR_SUCCESS);
    ut_rm_rf(dir);
}

static void test_file_read_large(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    const char *f = apr_pstrcat(p, dir, "/big", NULL);
    apr_size_t n = 100000, len = 0, i;
    char *big = apr_palloc(p, n + 1), *data = NULL;

    for (i = 0; i < n; i++) {
        big[i] = (char)('a' + i % 26);
    }
    big[n] = 0;
    write_plain(f, big, 0600);
    UT_CHECK(ca_file_read(p, f, n, &data, &len) == APR_SUCCESS && len == n
             && !memcmp(data, big, n));
    UT_CHECK(ca_file_read(p, f, n - 1, &data, &len) != APR_SUCCESS);
    ut_rm_rf(dir);
}

static void test_write_atomic(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    const char *f = apr_pstrcat(p, dir, "/key.pem", NULL);
    const char *c = apr_pstrcat(p, dir, "/cert.pem", NULL);
    struct stat st;
    mode_t old = umask(077);

    UT_CHECK(ca_file_write_atomic(p, f, "secret\n", 7, 0600) == APR_SUCCESS);
    UT_CHECK(stat(f, &st) == 0 && (st.st_mode & 07777) == 0600
             && S_ISREG(st.st_mode) && st.st_size == 7);
    UT_CHECK(ut_slurp(p, f) && !strcmp(ut_slurp(p, f), "secret\n"));
    UT_CHECK(ut_dir_count(dir) == 1);               /* no temp file left */

    /* perms are exact whatever the umask */
    UT_CHECK(ca_file_write_atomic(p, c, "cert\n", 5, 0644) == APR_SUCCESS);
    UT_CHECK(stat(c, &st) == 0 && (st.st_mode & 07777) == 0644);

    /* replacing: new content and mode, still no temp file */
    UT_CHECK(ca_file_write_atomic(p, c, "new", 3, 0600) == APR_SUCCESS);
    UT_CHECK(stat(c, &st) == 0 && (st.st_mode & 07777) == 0600);
    UT_CHECK(ut_slurp(p, c) && !strcmp(ut_slurp(p, c), "new"));
    UT_CHECK(ut_dir_count(dir) == 2);

    /* empty content */
    UT_CHECK(ca_file_write_atomic(p, c, "", 0, 0644) == APR_SUCCESS);
    UT_CHECK(stat(c, &st) == 0 && st.st_size == 0);
    UT_CHECK(ut_dir_count(dir) == 2);
    umask(old);
    ut_rm_rf(dir);
}

static void test_write_atomic_binary(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    const char *f = apr_pstrcat(p, dir, "/bin", NULL);
    unsigned char buf[70000];
    char *data = NULL;
    apr_size_t len = 0;

    RAND_bytes(buf, sizeof(buf));
    buf[10] = 0;
    UT_CHECK(ca_file_write_atomic(p, f, buf, sizeof(buf), 0640)
             == APR_SUCCESS);
    UT_CHECK(ca_file_read(p, f, sizeof(buf), &data, &len) == APR_SUCCESS
             && len == sizeof(buf) && !memcmp(data, buf, len));
    ut_rm_rf(dir);
}

static void test_write_atomic_failures(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    const char *sub = apr_pstrcat(p, dir, "/sub", NULL);
    const char *inner = apr_pstrcat(p, sub, "/keep", NULL);
    struct stat st;

    /* into a directory that does not exist: an error, nothing created */
    UT_CHECK(ca_file_write_atomic(p, apr_pstrcat(p, dir, "/nodir/x", NULL),
                                  "x", 1, 0600) != APR_SUCCESS);
    UT_CHECK(ut_dir_count(dir) == 0);
    UT_CHECK(stat(apr_pstrcat(p, dir, "/nodir", NULL), &st) != 0);

    /* the rename fails (a directory is in the way): the temp file is
     * removed, what was there is untouched */
    UT_CHECK(mkdir(sub, 0700) == 0);
    write_plain(inner, "keep", 0600);
    UT_CHECK(ca_file_write_atomic(p, sub, "x", 1, 0600) != APR_SUCCESS);
    UT_CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    UT_CHECK(ut_dir_count(dir) == 1 && ut_dir_count(sub) == 1);
    UT_CHECK(ut_slurp(p, inner) && !strcmp(ut_slurp(p, inner), "keep"));

    /* a read-only directory (not enforced for root: skip then) */
    if (geteuid() != 0) {
        const char *f = apr_pstrcat(p, sub, "/keep", NULL);
        chmod(sub, 0500);
        UT_CHECK(ca_file_write_atomic(p, f, "new", 3, 0600) != APR_SUCCESS);
        chmod(sub, 0700);
        UT_CHECK(ut_slurp(p, f) && !strcmp(ut_slurp(p, f), "keep"));
        UT_CHECK(ut_dir_count(sub) == 1);
    }
    ut_rm_rf(dir);
}

static void test_write_atomic_relative(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    char cwd[4096];

    UT_CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    UT_CHECK(chdir(dir) == 0);
    UT_CHECK(ca_file_write_atomic(p, "rel.txt", "r", 1, 0600) == APR_SUCCESS);
    UT_CHECK(chdir(cwd) == 0);
    UT_CHECK(ut_dir_count(dir) == 1);
    UT_CHECK(ut_slurp(p, apr_pstrcat(p, dir, "/rel.txt", NULL)) != NULL);
    ut_rm_rf(dir);
}

/* ------------------------------------------------------------------ */
/* ca_log                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    int calls;
    ca_log_level_t level;
    apr_status_t rv;
    int line;
    char file[256];
    char msg[512];
} sink_t;

static void capture(void *baton, const char *file, int line,
                    ca_log_level_t level, apr_status_t rv, const char *msg)
{
    sink_t *s = baton;
    s->calls++;
    s->level = level;
    s->rv = rv;
    s->line = line;
    apr_cpystrn(s->file, file, sizeof(s->file));
    apr_cpystrn(s->msg, msg, sizeof(s->msg));
}

static void test_log_sink(apr_pool_t *p)
{
    sink_t s;
    int line;

    memset(&s, 0, sizeof(s));
    ca_log_set(capture, &s, CA_LOG_NOTICE);
    UT_CHECK(ca_log_enabled(CA_LOG_ERR));
    UT_CHECK(ca_log_enabled(CA_LOG_NOTICE));
    UT_CHECK(!ca_log_enabled(CA_LOG_INFO));
    UT_CHECK(!ca_log_enabled(CA_LOG_DEBUG));

    line = __LINE__ + 1;
    ca_log(CA_LOG_MARK, CA_LOG_WARN, CA_EIO, p, "x=%d s=%s", 42, "abc");
    UT_CHECK(s.calls == 1 && s.level == CA_LOG_WARN && s.rv == CA_EIO);
    UT_CHECK(!strcmp(s.msg, "x=42 s=abc"));
    UT_CHECK(s.line == line && strstr(s.file, "test_util.c"));

    /* without a pool */
    ca_log(CA_LOG_MARK, CA_LOG_ERR, APR_SUCCESS, NULL, "no pool %s %d",
           "here", 7);
    UT_CHECK(s.calls == 2 && !strcmp(s.msg, "no pool here 7"));

    /* filtered */
    ca_log(CA_LOG_MARK, CA_LOG_INFO, 0, p, "not shown");
    ca_log(CA_LOG_MARK, CA_LOG_DEBUG, 0, NULL, "not shown");
    UT_CHECK(s.calls == 2);

    ca_log_set(capture, &s, CA_LOG_DEBUG);
    ca_log(CA_LOG_MARK, CA_LOG_DEBUG, 0, NULL, "now shown");
    UT_CHECK(s.calls == 3 && !strcmp(s.msg, "now shown"));
    ca_log_set(NULL, NULL, CA_LOG_INFO);
}

static void test_log_default_stderr(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    const char *f = apr_pstrcat(p, dir, "/stderr", NULL);
    int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved;
    char *out;

    fflush(stderr);
    saved = dup(2);
    dup2(fd, 2);
    close(fd);
    ca_log_set(NULL, NULL, CA_LOG_INFO);
    ca_log(CA_LOG_MARK, CA_LOG_WARN, APR_SUCCESS, NULL, "hello %s", "there");
    ca_log(CA_LOG_MARK, CA_LOG_ERR, APR_SUCCESS, p, "second");
    ca_log(CA_LOG_MARK, CA_LOG_DEBUG, APR_SUCCESS, p, "filtered");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    out = ut_slurp(p, f);
    UT_CHECK_MSG(out && !strcmp(out, "[warn] hello there\n[error] second\n"),
                 "got '%s'", out ? out : "(null)");
    ut_rm_rf(dir);
}

static void test_log_ssl_errors(apr_pool_t *p)
{
    const unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01 };
    const unsigned char *q = junk;
    const char *s;

    ERR_clear_error();
    UT_CHECK(!strcmp(ca_log_ssl_errors(p), ""));
    UT_CHECK(d2i_X509(NULL, &q, sizeof(junk)) == NULL);
    s = ca_log_ssl_errors(p);
    UT_CHECK_MSG(*s && strstr(s, "error:"), "%s", s);
    UT_CHECK(ERR_peek_error() == 0);                /* the queue is cleared */
    UT_CHECK(!strcmp(ca_log_ssl_errors(p), ""));

    /* several errors: joined with "; ", oldest first, with their data */
    ERR_raise_data(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE,
                   "first %d", 1);
    ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
    s = ca_log_ssl_errors(p);
    UT_CHECK_MSG(strstr(s, "; ") && strstr(s, "(first 1)")
                 && strstr(s, "(first 1)") < strstr(s, "; ")
                 && strstr(s, "no start line") > strstr(s, "; "), "%s", s);
    UT_CHECK(ERR_peek_error() == 0);
}

static void *APR_THREAD_FUNC log_thread(apr_thread_t *t, void *data)
{
    int i;
    (void)data;
    for (i = 0; i < 200; i++) {
        ca_log(CA_LOG_MARK, CA_LOG_INFO, 0, NULL, "thread line %d %s", i,
               "with some text to format");
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static volatile int thread_lines;

static void count_sink(void *baton, const char *file, int line,
                       ca_log_level_t level, apr_status_t rv, const char *msg)
{
    (void)baton; (void)file; (void)line; (void)level; (void)rv;
    if (!strncmp(msg, "thread line ", 12)) {
        __sync_fetch_and_add(&thread_lines, 1);
    }
}

static void test_log_threads(apr_pool_t *p)
{
    apr_thread_t *t[4];
    apr_status_t trv;
    int i;

    thread_lines = 0;
    ca_log_set(count_sink, NULL, CA_LOG_INFO);
    for (i = 0; i < 4; i++) {
        UT_CHECK(apr_thread_create(&t[i], NULL, log_thread, NULL, p)
                 == APR_SUCCESS);
    }
    for (i = 0; i < 4; i++) {
        apr_thread_join(&trv, t[i]);
    }
    UT_CHECK(thread_lines == 800);
    ca_log_set(NULL, NULL, CA_LOG_INFO);
}

/* ================================================================== */
/* More tests (once test_util2.c):
 * Unit tests of ca_util: base64, serials, ASN.1 times and files (bounded
 * reads, atomic writes). */
/* ================================================================== */

static void write_bytes(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* OpenSSL's encoder, without line breaks: the reference. */
static char *ref_b64(apr_pool_t *p, const unsigned char *in, size_t len)
{
    char *out = apr_palloc(p, (len + 2) / 3 * 4 + 1);
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

/* The text without CR and LF. */
static char *strip_nl(apr_pool_t *p, const char *s)
{
    char *out = apr_palloc(p, strlen(s) + 1), *o = out;
    for (; *s; s++) {
        if (*s != '\r' && *s != '\n') {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

static apr_status_t dec(apr_pool_t *p, const char *in, unsigned char **out,
                        apr_size_t *outlen)
{
    *out = NULL;
    *outlen = 12345;
    return ca_base64_decode(p, in, strlen(in), out, outlen);
}

/* ------------------------------------------------------------------ */
/* base64                                                              */
/* ------------------------------------------------------------------ */

static void test_b64_roundtrip(apr_pool_t *p)
{
    unsigned char buf[70];
    apr_size_t len;

    if (RAND_bytes(buf, sizeof(buf)) != 1) {
        abort();
    }
    for (len = 0; len <= 70; len++) {
        int crlf;
        for (crlf = 0; crlf <= 1; crlf++) {
            const char *enc = ca_base64_encode(p, buf, len, crlf);
            unsigned char *out;
            apr_size_t outlen;
            apr_status_t rv;

            UT_CHECK(enc != NULL);
            /* The same characters as OpenSSL's encoder. */
            UT_CHECK_MSG(!strcmp(strip_nl(p, enc), ref_b64(p, buf, len)),
                         "len %d: %s", (int)len, enc);
            rv = dec(p, enc, &out, &outlen);
            if (len == 0) {
                /* Nothing encodes as nothing; an empty input is not
                 * base64 of anything the callers accept. */
                UT_CHECK(!strcmp(enc, ""));
                UT_CHECK(rv == CA_EBADINPUT);
                continue;
            }
            UT_CHECK_MSG(rv == APR_SUCCESS, "len %d crlf %d", (int)len, crlf);
            UT_CHECK_MSG(rv == APR_SUCCESS && outlen == len
                             && !memcmp(out, buf, len),
                         "len %d crlf %d", (int)len, crlf);
            /* Also without the line breaks. */
            rv = dec(p, ref_b64(p, buf, len), &out, &outlen);
            UT_CHECK(rv == APR_SUCCESS && outlen == len
                     && !memcmp(out, buf, len));
        }
    }
    /* All 256 byte values. */
    {
        unsigned char all[256];
        unsigned char *out;
        apr_size_t outlen;
        int i;
        for (i = 0; i < 256; i++) {
            all[i] = (unsigned char)i;
        }
        UT_CHECK(dec(p, ca_base64_encode(p, all, 256, 1), &out, &outlen)
                     == APR_SUCCESS
                 && outlen == 256 && !memcmp(out, all, 256));
    }
}

static void test_b64_known(apr_pool_t *p)
{
    unsigned char *out;
    apr_size_t n;

    UT_CHECK(!strcmp(ca_base64_encode(p, (const unsigned char *)"f", 1, 0),
                     "Zg==\n"));
    UT_CHECK(!strcmp(ca_base64_encode(p, (const unsigned char *)"fo", 2, 1),
                     "Zm8=\r\n"));
    UT_CHECK(!strcmp(ca_base64_encode(p, (const unsigned char *)"foobar", 6,
                                      0),
                     "Zm9vYmFy\n"));
    UT_CHECK(dec(p, "Zm9vYmE=", &out, &n) == APR_SUCCESS && n == 5
             && !memcmp(out, "fooba", 5));
    UT_CHECK(dec(p, "Zm9vYg==", &out, &n) == APR_SUCCESS && n == 4
             && !memcmp(out, "foob", 4));
    UT_CHECK(dec(p, "+/+/", &out, &n) == APR_SUCCESS && n == 3
             && out[0] == 0xfb && out[1] == 0xff && out[2] == 0xbf);
}

static void test_b64_whitespace(apr_pool_t *p)
{
    static const char *const ok[] = {
        "Zm9v\r\nYmFy",
        "\r\nZm9vYmFy\r\n",
        " Z m 9 v Y m F y ",
        "Z\r\nm\r\n9\r\nv\r\nY\r\nm\r\nF\r\ny\r\n",
        "\tZm9v\n\nYmFy\n",
        "Zm9vYmFy\r\n\r\n\r\n",
        "Zm\x0b" "9vYm\x0c" "Fy",
        NULL
    };
    static const char *const ok_pad[] = {
        "Zm9vYg=\r\n=",
        "Zm9vYg = =",
        "Zm9v\nYg==\n",
        NULL
    };
    int i;
    for (i = 0; ok[i]; i++) {
        unsigned char *out;
        apr_size_t n;
        apr_status_t rv = dec(p, ok[i], &out, &n);
        UT_CHECK_MSG(rv == APR_SUCCESS && n == 6 && !memcmp(out, "foobar", 6),
                     "case %d", i);
    }
    for (i = 0; ok_pad[i]; i++) {
        unsigned char *out;
        apr_size_t n;
        apr_status_t rv = dec(p, ok_pad[i], &out, &n);
        UT_CHECK_MSG(rv == APR_SUCCESS && n == 4 && !memcmp(out, "foob", 4),
                     "pad case %d", i);
    }
    /* The length given is honoured: bytes after it are not read. */
    {
        unsigned char *out;
        apr_size_t n;
        UT_CHECK(ca_base64_decode(p, "Zm9v!!!!", 4, &out, &n) == APR_SUCCESS
                 && n == 3 && !memcmp(out, "foo", 3));
    }
}

static void test_b64_bad(apr_pool_t *p)
{
    static const char *const bad[] = {
        "",            /* nothing */
        " \r\n\t",     /* only white space */
        "Zm9v!mFy",    /* bad character */
        "Zm9v-mFy",    /* base64url is not base64 */
        "Zm9v_mFy",
        "Zm9vYmFy.",
        "Zm9vYmF\x80",
        "Zm9v\0YmFy",  /* NUL inside (strlen stops: "Zm9v" is fine, see
                          below) */
        "Zm9vYmF",     /* 7 characters */
        "Zm9vYg=",     /* 7 with padding */
        "Zm9vY===",    /* three pad characters */
        "Zm9v====",
        "====",
        "=Zm9",
        "Zg==Zg==",    /* data after padding */
        "Zg=a",
        "Zm=A",        /* ... even where the bits would add up */
        "Z=gA",
        "Zm9vY=A=",
        "Zg==\r\nZg==",
        "Zm9vYg==A",
        "Zh==",        /* padding with non-zero spare bits */
        "Zm9=",
        "Zm9vYmFyZ",
        "Z",
        "=",
        NULL
    };
    int i;
    for (i = 0; bad[i]; i++) {
        unsigned char *out;
        apr_size_t n;
        apr_status_t rv;
        if (i == 7) {
            /* With the NUL counted in the length. */
            rv = ca_base64_decode(p, bad[i], 9, &out, &n);
        }
        else {
            rv = dec(p, bad[i], &out, &n);
        }
        UT_CHECK_MSG(rv == CA_EBADINPUT, "case %d '%s': rv %d", i, bad[i],
                     rv);
    }
    /* Every byte value that is not base64 nor white space is refused in
     * any position. */
    {
        int c;
        for (c = 1; c < 256; c++) {
            char in[9];
            unsigned char *out;
            apr_size_t n;
            int pos;
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                || (c >= '0' && c <= '9') || c == '+' || c == '/'
                || c == '=' || c == ' ' || c == '\t' || c == '\r'
                || c == '\n' || c == '\f' || c == '\v') {
                continue;
            }
            for (pos = 0; pos < 8; pos++) {
                memcpy(in, "Zm9vYmFy", 9);
                in[pos] = (char)c;
                UT_CHECK_MSG(dec(p, in, &out, &n) == CA_EBADINPUT,
                             "byte %d at %d", c, pos);
            }
        }
    }
}

static void check_wrap(apr_pool_t *p, apr_size_t len, int crlf)
{
    unsigned char *buf = apr_pcalloc(p, len + 1);
    const char *enc, *c;
    apr_size_t enclen = (len + 2) / 3 * 4, lines = 0, chars = 0;
    const char *eol = crlf ? "\r\n" : "\n";

    memset(buf, 0xa5, len);
    enc = ca_base64_encode(p, buf, len, crlf);
    c = enc;
    while (*c) {
        const char *nl = strstr(c, eol);
        apr_size_t l;
        UT_CHECK_MSG(nl != NULL, "len %d: last line not terminated", (int)len);
        if (!nl) {
            break;
        }
        l = (apr_size_t)(nl - c);
        lines++;
        chars += l;
        /* Every line but the last is exactly 64 characters. */
        UT_CHECK_MSG(l >= 1 && l <= 64, "len %d: line of %d", (int)len,
                     (int)l);
        if (nl[strlen(eol)]) {
            UT_CHECK_MSG(l == 64, "len %d: inner line of %d", (int)len,
                         (int)l);
        }
        UT_CHECK(memchr(c, '\r', l) == NULL && memchr(c, '\n', l) == NULL);
        c = nl + strlen(eol);
    }
    UT_CHECK(chars == enclen);
    UT_CHECK_MSG(lines == (enclen + 63) / 64, "len %d: %d lines", (int)len,
                 (int)lines);
    UT_CHECK(strlen(enc) == enclen + lines * strlen(eol));
    if (!crlf) {
        UT_CHECK(strchr(enc, '\r') == NULL);
    }
}

static void test_b64_wrap(apr_pool_t *p)
{
    static const apr_size_t lens[] = {1, 2, 3, 45, 47, 48, 49, 50, 95, 96,
                                      97, 144, 1000, 4096};
    unsigned i;
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        check_wrap(p, lens[i], 0);
        check_wrap(p, lens[i], 1);
    }
    /* 48 bytes: one full line; 49: a second line of 4. */
    {
        unsigned char b[49];
        const char *e;
        memset(b, 0, sizeof(b));
        e = ca_base64_encode(p, b, 48, 1);
        UT_CHECK(strlen(e) == 66 && !strcmp(e + 64, "\r\n"));
        e = ca_base64_encode(p, b, 49, 0);
        UT_CHECK(strlen(e) == 70 && e[64] == '\n'
                 && !strcmp(e + 65, "AA==\n"));
    }
}

/* ------------------------------------------------------------------ */
/* Serials                                                             */
/* ------------------------------------------------------------------ */

static void norm_ok(apr_pool_t *p, const char *in, const char *want)
{
    const char *out = NULL;
    apr_status_t rv = ca_serial_normalize(p, in, &out);
    UT_CHECK_MSG(rv == APR_SUCCESS && out && !strcmp(out, want),
                 "'%s' -> rv %d '%s', want '%s'", in, rv, out ? out : "(null)",
                 want);
}

static void norm_bad(apr_pool_t *p, const char *in)
{
    const char *out = "untouched";
    apr_status_t rv = ca_serial_normalize(p, in, &out);
    UT_CHECK_MSG(rv == CA_EBADINPUT, "'%s' -> rv %d", in, rv);
}

static void test_serial_normalize_more(apr_pool_t *p)
{
    char hex40[41], hex41[42], buf[64];

    norm_ok(p, "0a:1b", "0A1B");
    norm_ok(p, "0A1B", "0A1B");
    norm_ok(p, "0a1b", "0A1B");
    norm_ok(p, "a1b", "0A1B");
    norm_ok(p, "000000a1b", "0A1B");
    norm_ok(p, "00:00:0a:1b", "0A1B");
    norm_ok(p, "1", "01");
    norm_ok(p, "01", "01");
    norm_ok(p, "ff", "FF");
    norm_ok(p, "80:00", "8000");
    norm_ok(p, "De:Ad:bE:eF", "DEADBEEF");
    /* the colon form is openssl's: pairs of digits, nothing empty */
    norm_bad(p, ":ab:");
    norm_bad(p, "a::b");
    norm_bad(p, "12:3");
    norm_bad(p, "1:23");
    norm_bad(p, "ab:");

    /* 40 hex digits (20 octets) are fine, with or without leading zeros
     * and colons; 41 significant digits are not. */
    memcpy(hex40, "7fedcba9876543210fedcba9876543210fedcba9", 41);
    norm_ok(p, hex40, "7FEDCBA9876543210FEDCBA9876543210FEDCBA9");
    apr_snprintf(buf, sizeof(buf), "0000%s", hex40);
    norm_ok(p, buf, "7FEDCBA9876543210FEDCBA9876543210FEDCBA9");
    norm_ok(p, "ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff",
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF");
    memcpy(hex41, "17fedcba9876543210fedcba9876543210fedcba9", 42);
    norm_bad(p, hex41);
    norm_bad(p, "ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:01");

    norm_bad(p, "");
    norm_bad(p, "xyz");
    norm_bad(p, "0");
    norm_bad(p, "00:00");
    norm_bad(p, ":");
    norm_bad(p, "::");
    norm_bad(p, "-1");
    norm_bad(p, "+1");
    norm_bad(p, "0x1a");
    norm_bad(p, "1a ");
    norm_bad(p, " 1a");
    norm_bad(p, "1a\n");
    norm_bad(p, "1a/");
    norm_bad(p, "12g4");
    norm_bad(p, "\xc3\xa9");
}

static void test_serial_hex_more(apr_pool_t *p)
{
    ASN1_INTEGER *ai = ASN1_INTEGER_new();
    BIGNUM *bn = NULL;
    unsigned char raw[20];
    const char *h, *n = NULL;
    char lower[80], *o;
    int i, round;

    UT_CHECK(ai && ASN1_INTEGER_set(ai, 1));
    UT_CHECK(!strcmp(ca_serial_hex(p, ai), "01"));
    UT_CHECK(ASN1_INTEGER_set(ai, 0x0a1b));
    UT_CHECK(!strcmp(ca_serial_hex(p, ai), "0A1B"));
    UT_CHECK(ASN1_INTEGER_set(ai, 0xff));
    UT_CHECK(!strcmp(ca_serial_hex(p, ai), "FF"));
    ASN1_INTEGER_free(ai);

    /* Random 20-octet serials: ca_serial_hex and ca_serial_normalize of
     * its lower-case, colon-separated form agree. */
    for (round = 0; round < 50; round++) {
        UT_CHECK(RAND_bytes(raw, sizeof(raw)) == 1);
        raw[0] &= 0x7f;
        if (round % 10 == 0) {
            raw[0] = 0; /* a shorter one now and then */
        }
        bn = BN_bin2bn(raw, sizeof(raw), NULL);
        ai = BN_to_ASN1_INTEGER(bn, NULL);
        UT_CHECK(bn && ai);
        h = ca_serial_hex(p, ai);
        UT_CHECK(h && strlen(h) % 2 == 0 && strlen(h) <= 40);
        for (i = 0; h && h[i]; i++) {
            UT_CHECK((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'A'
                                                      && h[i] <= 'F'));
        }
        o = lower;
        for (i = 0; h && h[i]; i++) {
            if (i && i % 2 == 0) {
                *o++ = ':';
            }
            *o++ = (char)(h[i] >= 'A' ? h[i] - 'A' + 'a' : h[i]);
        }
        *o = '\0';
        UT_CHECK(ca_serial_normalize(p, lower, &n) == APR_SUCCESS
                 && h && !strcmp(n, h));
        ASN1_INTEGER_free(ai);
        BN_free(bn);
    }
}

/* ------------------------------------------------------------------ */
/* Times                                                               */
/* ------------------------------------------------------------------ */

static void test_asn1_time(apr_pool_t *p)
{
    ASN1_TIME *t = ASN1_TIME_new();
    static const struct { const char *s; apr_int64_t want; } cases[] = {
        {"700101000000Z", 0},
        {"000229120000Z", 951825600},        /* UTCTime 2000, leap day */
        {"491231235959Z", 2524607999LL},     /* UTCTime 2049 */
        {"500101000000Z", -631152000LL},     /* UTCTime 1950 */
        {"20500101000000Z", 2524608000LL},   /* GeneralizedTime */
        {"99991231235959Z", 253402300799LL},
        {"20380119031408Z", 2147483648LL},   /* past 32 bits */
    };
    unsigned i;
    (void)p;

    UT_CHECK(t != NULL);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        UT_CHECK_MSG(ASN1_TIME_set_string(t, cases[i].s) == 1, "%s",
                     cases[i].s);
        UT_CHECK_MSG(ca_asn1_time_to_epoch(t) == cases[i].want,
                     "%s -> %" APR_INT64_T_FMT, cases[i].s,
                     ca_asn1_time_to_epoch(t));
    }
    UT_CHECK(ASN1_TIME_set(t, 1700000000) != NULL);
    UT_CHECK(ca_asn1_time_to_epoch(t) == 1700000000);
    UT_CHECK(ASN1_TIME_adj(t, 1700000000, 10, 5) != NULL);
    UT_CHECK(ca_asn1_time_to_epoch(t) == 1700000000 + 10 * 86400 + 5);
    UT_CHECK(ca_asn1_time_to_epoch(NULL) == 0);
    ASN1_TIME_free(t);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

static void test_file_read_more(apr_pool_t *p)
{
    const char *d = ut_tmpdir(p);
    const char *f100 = apr_pstrcat(p, d, "/f100", NULL);
    const char *empty = apr_pstrcat(p, d, "/empty", NULL);
    char content[100], *data = NULL;
    apr_size_t len = 0;
    int i;

    for (i = 0; i < 100; i++) {
        content[i] = (char)(i == 50 ? 0 : 'a' + i % 26); /* a NUL inside */
    }
    write_bytes(f100, content, 100);
    write_bytes(empty, "", 0);

    UT_CHECK(ca_file_read(p, f100, 100, &data, &len) == APR_SUCCESS);
    UT_CHECK(len == 100 && data && !memcmp(data, content, 100)
             && data[100] == '\0');
    UT_CHECK(ca_file_read(p, f100, 1000000, &data, &len) == APR_SUCCESS
             && len == 100);
    data = NULL;
    len = 7;
    UT_CHECK(ca_file_read(p, f100, 99, &data, &len) == CA_EBADINPUT);
    UT_CHECK(ca_file_read(p, f100, 0, &data, &len) == CA_EBADINPUT);
    UT_CHECK(ca_file_read(p, empty, 0, &data, &len) == APR_SUCCESS
             && len == 0 && data && data[0] == '\0');
    UT_CHECK(ca_file_read(p, apr_pstrcat(p, d, "/missing", NULL), 100, &data,
                          &len) != APR_SUCCESS);
    UT_CHECK(ca_file_read(p, d, 1 << 20, &data, &len) != APR_SUCCESS);

    /* A file whose size stat does not tell (procfs says 0). */
    data = NULL;
    UT_CHECK(ca_file_read(p, "/proc/self/status", 1 << 20, &data, &len)
             == APR_SUCCESS);
    UT_CHECK(data && len > 20 && strlen(data) == len
             && !strncmp(data, "Name:", 5));
    UT_CHECK(ca_file_read(p, "/proc/self/status", 10, &data, &len)
             == CA_EBADINPUT);
}

static void test_write_atomic_more(apr_pool_t *p)
{
    const char *d = ut_tmpdir(p);
    const char *f = apr_pstrcat(p, d, "/key.pem", NULL);
    const char *g = apr_pstrcat(p, d, "/cert.pem", NULL);
    struct stat st;
    char *data, name[256];
    apr_size_t len;
    mode_t old = umask(022);

    UT_CHECK(ca_file_write_atomic(p, f, "secret\n", 7, 0600) == APR_SUCCESS);
    UT_CHECK(stat(f, &st) == 0 && S_ISREG(st.st_mode)
             && (st.st_mode & 07777) == 0600);
    UT_CHECK(ca_file_read(p, f, 100, &data, &len) == APR_SUCCESS && len == 7
             && !memcmp(data, "secret\n", 7));
    UT_CHECK(ut_dir_entries(d, name, sizeof(name)) == 1 && !strcmp(name,
                                                               "key.pem"));

    /* Modes are applied exactly, whatever the umask. */
    umask(077);
    UT_CHECK(ca_file_write_atomic(p, g, "cert", 4, 0644) == APR_SUCCESS);
    UT_CHECK(stat(g, &st) == 0 && (st.st_mode & 07777) == 0644);
    umask(022);

    /* Replace: a shorter content, a new mode, still no leftovers. */
    UT_CHECK(ca_file_write_atomic(p, g, "x", 1, 0600) == APR_SUCCESS);
    UT_CHECK(ca_file_read(p, g, 100, &data, &len) == APR_SUCCESS && len == 1
             && data[0] == 'x');
    UT_CHECK(stat(g, &st) == 0 && (st.st_mode & 07777) == 0600);
    /* Empty content. */
    UT_CHECK(ca_file_write_atomic(p, g, "", 0, 0600) == APR_SUCCESS);
    UT_CHECK(stat(g, &st) == 0 && st.st_size == 0);
    UT_CHECK(ut_dir_count(d) == 2);

    /* Large content. */
    {
        apr_size_t big = 1 << 20;
        char *b = apr_palloc(p, big);
        apr_size_t i;
        for (i = 0; i < big; i++) {
            b[i] = (char)(i * 7);
        }
        UT_CHECK(ca_file_write_atomic(p, g, b, big, 0600) == APR_SUCCESS);
        UT_CHECK(ca_file_read(p, g, big, &data, &len) == APR_SUCCESS
                 && len == big && !memcmp(data, b, big));
    }
    UT_CHECK(ut_dir_count(d) == 2);

    /* A relative path (the directory to fsync is "."). */
    {
        char cwd[4096];
        UT_CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
        UT_CHECK(chdir(d) == 0);
        UT_CHECK(ca_file_write_atomic(p, "rel", "r", 1, 0600) == APR_SUCCESS);
        UT_CHECK(chdir(cwd) == 0);
        UT_CHECK(stat(apr_pstrcat(p, d, "/rel", NULL), &st) == 0
                 && st.st_size == 1);
    }
    umask(old);
}

static void test_write_atomic_fail(apr_pool_t *p)
{
    const char *d = ut_tmpdir(p);
    const char *nodir = apr_pstrcat(p, d, "/no/such/dir/file", NULL);
    const char *sub = apr_pstrcat(p, d, "/target", NULL);
    const char *inside = apr_pstrcat(p, d, "/target/inner", NULL);
    const char *plain = apr_pstrcat(p, d, "/plain", NULL);
    struct stat st;
    char *data;
    apr_size_t len;

    /* The directory does not exist: an error, nothing created. */
    UT_CHECK(ca_file_write_atomic(p, nodir, "abc", 3, 0600) != APR_SUCCESS);
    UT_CHECK(ut_dir_count(d) == 0);

    /* A regular file where a directory should be. */
    write_bytes(plain, "keep", 4);
    UT_CHECK(ca_file_write_atomic(p, apr_pstrcat(p, plain, "/x", NULL), "abc",
                                  3, 0600) != APR_SUCCESS);
    UT_CHECK(ut_dir_count(d) == 1);

    /* The target is a directory: rename fails; the directory and what is
     * in it stay, the temporary file is gone. */
    UT_CHECK(mkdir(sub, 0755) == 0);
    write_bytes(inside, "inner", 5);
    UT_CHECK(ca_file_write_atomic(p, sub, "abc", 3, 0600) != APR_SUCCESS);
    UT_CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    UT_CHECK(ca_file_read(p, inside, 100, &data, &len) == APR_SUCCESS
             && len == 5 && !memcmp(data, "inner", 5));
    UT_CHECK(ut_dir_count(d) == 2);
    UT_CHECK(ut_dir_count(sub) == 1);

    /* A write that fails half-way (file size limit): the existing file
     * keeps its old content, no temporary file is left. */
    {
        struct rlimit old, lim;
        struct sigaction sa, osa;
        char *big = apr_pcalloc(p, 65536);

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_IGN;
        UT_CHECK(sigaction(SIGXFSZ, &sa, &osa) == 0);
        UT_CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
        lim = old;
        lim.rlim_cur = 4096;
        UT_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
        UT_CHECK(ca_file_write_atomic(p, plain, big, 65536, 0600)
                 != APR_SUCCESS);
        UT_CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
        UT_CHECK(sigaction(SIGXFSZ, &osa, NULL) == 0);
        UT_CHECK(ca_file_read(p, plain, 100, &data, &len) == APR_SUCCESS
                 && len == 4 && !memcmp(data, "keep", 4));
        UT_CHECK(ut_dir_count(d) == 2);
    }
}

/* ca_printable: the one way untrusted text goes into an error message. */
static void test_printable(apr_pool_t *p)
{
    UT_CHECK(ut_streq(ca_printable(p, NULL, 10), "(null)"));
    UT_CHECK(ut_streq(ca_printable(p, "", 10), ""));
    UT_CHECK(ut_streq(ca_printable(p, "abc DEF-1.2", 40), "abc DEF-1.2"));
    /* quotes, backslash, controls, DEL and non-ASCII octets */
    UT_CHECK(ut_streq(ca_printable(p, "a'b\"c\\d\te\x7f\xc3\xa9", 40),
                      "a?b?c?d?e???"));
    /* bounded: max characters, then "..." */
    UT_CHECK(ut_streq(ca_printable(p, "0123456789", 4), "0123..."));
    UT_CHECK(ut_streq(ca_printable(p, "0123", 4), "0123"));
}


/* A start-up child's answer is read and the child reaped; one that hangs
 * is killed at the bound instead of stopping start-up. */
static void test_child_collect(apr_pool_t *p)
{
    char buf[64];
    int fds[2], status = -1, late = -1;
    pid_t pid;
    apr_time_t t0;
    apr_size_t n;

    (void)p;
    UT_CHECK(pipe(fds) == 0);
    if ((pid = fork()) == 0) {
        close(fds[0]);
        if (write(fds[1], "answer\n", 7) != 7) {
            _exit(2);
        }
        _exit(0);
    }
    close(fds[1]);
    n = ca_child_collect(fds[0], (int)pid, buf, sizeof(buf), 10, &status,
                         &late);
    UT_CHECK(n == 7 && !strcmp(buf, "answer\n"));
    UT_CHECK(!late && WIFEXITED(status) && WEXITSTATUS(status) == 0);

    UT_CHECK(pipe(fds) == 0);
    if ((pid = fork()) == 0) {
        close(fds[0]);
        sleep(30);              /* holds the pipe open, never answers */
        _exit(0);
    }
    close(fds[1]);
    t0 = apr_time_now();
    n = ca_child_collect(fds[0], (int)pid, buf, sizeof(buf), 1, &status,
                         &late);
    UT_CHECK(late && n == 0);
    UT_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    UT_CHECK(apr_time_now() - t0 < apr_time_from_sec(10));
    UT_CHECK(waitpid(pid, &status, WNOHANG) < 0);   /* reaped */
}

int main(void)
{
    UT_RUN(test_printable);
    UT_RUN(test_base64_vectors);
    UT_RUN(test_base64_roundtrip);
    UT_RUN(test_base64_whitespace);
    UT_RUN(test_base64_bad);
    UT_RUN(test_serial_normalize);
    UT_RUN(test_serial_hex);
    UT_RUN(test_time);
    UT_RUN(test_name_str);
    UT_RUN(test_pem_der);
    UT_RUN(test_pool_cleanups);
    UT_RUN(test_file_read);
    UT_RUN(test_file_read_large);
    UT_RUN(test_write_atomic);
    UT_RUN(test_write_atomic_binary);
    UT_RUN(test_write_atomic_failures);
    UT_RUN(test_write_atomic_relative);
    UT_RUN(test_log_sink);
    UT_RUN(test_log_default_stderr);
    UT_RUN(test_log_ssl_errors);
    UT_RUN(test_log_threads);

    UT_RUN(test_b64_roundtrip);
    UT_RUN(test_b64_known);
    UT_RUN(test_b64_whitespace);
    UT_RUN(test_b64_bad);
    UT_RUN(test_b64_wrap);
    UT_RUN(test_serial_normalize_more);
    UT_RUN(test_serial_hex_more);
    UT_RUN(test_asn1_time);
    UT_RUN(test_file_read_more);
    UT_RUN(test_write_atomic_more);
    UT_RUN(test_write_atomic_fail);
    UT_RUN(test_child_collect);
    return ut_finish();
}
