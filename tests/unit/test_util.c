/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_util (pool cleanups, base64, PEM/DER, names, serials,
 * times, file reading and atomic writing) and ca_log (sinks, levels, the
 * default stderr sink, the OpenSSL error queue, use from threads). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_thread_proc.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "unit.h"
#include "ca_log.h"
#include "ca_util.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static const char *mktmpdir(apr_pool_t *p)
{
    char *d = apr_pstrdup(p, "/tmp/certauth-ut-util-XXXXXX");
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        abort();
    }
    return d;
}

/* Number of directory entries other than . and .. */
static int dir_count(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) {
        return -1;
    }
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    if (!d) {
        return;
    }
    while ((e = readdir(d))) {
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            rm_rf(path);
        }
        else {
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

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

static char *slurp(apr_pool_t *p, const char *path)
{
    char *data = NULL;
    apr_size_t len;
    if (ca_file_read(p, path, 1 << 20, &data, &len) != APR_SUCCESS) {
        return NULL;
    }
    return data;
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
    const char *dir = mktmpdir(p);
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
    rm_rf(dir);
}

static void test_file_read_large(apr_pool_t *p)
{
    const char *dir = mktmpdir(p);
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
    rm_rf(dir);
}

static void test_write_atomic(apr_pool_t *p)
{
    const char *dir = mktmpdir(p);
    const char *f = apr_pstrcat(p, dir, "/key.pem", NULL);
    const char *c = apr_pstrcat(p, dir, "/cert.pem", NULL);
    struct stat st;
    mode_t old = umask(077);

    UT_CHECK(ca_file_write_atomic(p, f, "secret\n", 7, 0600) == APR_SUCCESS);
    UT_CHECK(stat(f, &st) == 0 && (st.st_mode & 07777) == 0600
             && S_ISREG(st.st_mode) && st.st_size == 7);
    UT_CHECK(slurp(p, f) && !strcmp(slurp(p, f), "secret\n"));
    UT_CHECK(dir_count(dir) == 1);               /* no temp file left */

    /* perms are exact whatever the umask */
    UT_CHECK(ca_file_write_atomic(p, c, "cert\n", 5, 0644) == APR_SUCCESS);
    UT_CHECK(stat(c, &st) == 0 && (st.st_mode & 07777) == 0644);

    /* replacing: new content and mode, still no temp file */
    UT_CHECK(ca_file_write_atomic(p, c, "new", 3, 0600) == APR_SUCCESS);
    UT_CHECK(stat(c, &st) == 0 && (st.st_mode & 07777) == 0600);
    UT_CHECK(slurp(p, c) && !strcmp(slurp(p, c), "new"));
    UT_CHECK(dir_count(dir) == 2);

    /* empty content */
    UT_CHECK(ca_file_write_atomic(p, c, "", 0, 0644) == APR_SUCCESS);
    UT_CHECK(stat(c, &st) == 0 && st.st_size == 0);
    UT_CHECK(dir_count(dir) == 2);
    umask(old);
    rm_rf(dir);
}

static void test_write_atomic_binary(apr_pool_t *p)
{
    const char *dir = mktmpdir(p);
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
    rm_rf(dir);
}

static void test_write_atomic_failures(apr_pool_t *p)
{
    const char *dir = mktmpdir(p);
    const char *sub = apr_pstrcat(p, dir, "/sub", NULL);
    const char *inner = apr_pstrcat(p, sub, "/keep", NULL);
    struct stat st;

    /* into a directory that does not exist: an error, nothing created */
    UT_CHECK(ca_file_write_atomic(p, apr_pstrcat(p, dir, "/nodir/x", NULL),
                                  "x", 1, 0600) != APR_SUCCESS);
    UT_CHECK(dir_count(dir) == 0);
    UT_CHECK(stat(apr_pstrcat(p, dir, "/nodir", NULL), &st) != 0);

    /* the rename fails (a directory is in the way): the temp file is
     * removed, what was there is untouched */
    UT_CHECK(mkdir(sub, 0700) == 0);
    write_plain(inner, "keep", 0600);
    UT_CHECK(ca_file_write_atomic(p, sub, "x", 1, 0600) != APR_SUCCESS);
    UT_CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    UT_CHECK(dir_count(dir) == 1 && dir_count(sub) == 1);
    UT_CHECK(slurp(p, inner) && !strcmp(slurp(p, inner), "keep"));

    /* a read-only directory (not enforced for root: skip then) */
    if (geteuid() != 0) {
        const char *f = apr_pstrcat(p, sub, "/keep", NULL);
        chmod(sub, 0500);
        UT_CHECK(ca_file_write_atomic(p, f, "new", 3, 0600) != APR_SUCCESS);
        chmod(sub, 0700);
        UT_CHECK(slurp(p, f) && !strcmp(slurp(p, f), "keep"));
        UT_CHECK(dir_count(sub) == 1);
    }
    rm_rf(dir);
}

static void test_write_atomic_relative(apr_pool_t *p)
{
    const char *dir = mktmpdir(p);
    char cwd[4096];

    UT_CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    UT_CHECK(chdir(dir) == 0);
    UT_CHECK(ca_file_write_atomic(p, "rel.txt", "r", 1, 0600) == APR_SUCCESS);
    UT_CHECK(chdir(cwd) == 0);
    UT_CHECK(dir_count(dir) == 1);
    UT_CHECK(slurp(p, apr_pstrcat(p, dir, "/rel.txt", NULL)) != NULL);
    rm_rf(dir);
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
    const char *dir = mktmpdir(p);
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
    out = slurp(p, f);
    UT_CHECK_MSG(out && !strcmp(out, "[warn] hello there\n[error] second\n"),
                 "got '%s'", out ? out : "(null)");
    rm_rf(dir);
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

int main(void)
{
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
    return ut_finish();
}
