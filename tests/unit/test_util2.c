/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_util: base64, serials, ASN.1 times and files (bounded
 * reads, atomic writes). */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "unit.h"
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

/* A fresh temporary directory, removed with the pool. */
static const char *tmpdir(apr_pool_t *p)
{
    char *d = apr_pstrdup(p, "/tmp/ut_util.XXXXXX");
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        abort();
    }
    apr_pool_cleanup_register(p, d, tmpdir_cleanup, apr_pool_cleanup_null);
    return d;
}

/* Number of entries in a directory besides "." and "..". */
static int dir_entries(const char *dir, char *first, size_t firstlen)
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

static void write_plain(const char *path, const char *data, size_t len)
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

static void test_serial_normalize(apr_pool_t *p)
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

static void test_serial_hex(apr_pool_t *p)
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

static void test_file_read(apr_pool_t *p)
{
    const char *d = tmpdir(p);
    const char *f100 = apr_pstrcat(p, d, "/f100", NULL);
    const char *empty = apr_pstrcat(p, d, "/empty", NULL);
    char content[100], *data = NULL;
    apr_size_t len = 0;
    int i;

    for (i = 0; i < 100; i++) {
        content[i] = (char)(i == 50 ? 0 : 'a' + i % 26); /* a NUL inside */
    }
    write_plain(f100, content, 100);
    write_plain(empty, "", 0);

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

static void test_write_atomic(apr_pool_t *p)
{
    const char *d = tmpdir(p);
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
    UT_CHECK(dir_entries(d, name, sizeof(name)) == 1 && !strcmp(name,
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
    UT_CHECK(dir_entries(d, NULL, 0) == 2);

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
    UT_CHECK(dir_entries(d, NULL, 0) == 2);

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
    const char *d = tmpdir(p);
    const char *nodir = apr_pstrcat(p, d, "/no/such/dir/file", NULL);
    const char *sub = apr_pstrcat(p, d, "/target", NULL);
    const char *inside = apr_pstrcat(p, d, "/target/inner", NULL);
    const char *plain = apr_pstrcat(p, d, "/plain", NULL);
    struct stat st;
    char *data;
    apr_size_t len;

    /* The directory does not exist: an error, nothing created. */
    UT_CHECK(ca_file_write_atomic(p, nodir, "abc", 3, 0600) != APR_SUCCESS);
    UT_CHECK(dir_entries(d, NULL, 0) == 0);

    /* A regular file where a directory should be. */
    write_plain(plain, "keep", 4);
    UT_CHECK(ca_file_write_atomic(p, apr_pstrcat(p, plain, "/x", NULL), "abc",
                                  3, 0600) != APR_SUCCESS);
    UT_CHECK(dir_entries(d, NULL, 0) == 1);

    /* The target is a directory: rename fails; the directory and what is
     * in it stay, the temporary file is gone. */
    UT_CHECK(mkdir(sub, 0755) == 0);
    write_plain(inside, "inner", 5);
    UT_CHECK(ca_file_write_atomic(p, sub, "abc", 3, 0600) != APR_SUCCESS);
    UT_CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    UT_CHECK(ca_file_read(p, inside, 100, &data, &len) == APR_SUCCESS
             && len == 5 && !memcmp(data, "inner", 5));
    UT_CHECK(dir_entries(d, NULL, 0) == 2);
    UT_CHECK(dir_entries(sub, NULL, 0) == 1);

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
        UT_CHECK(dir_entries(d, NULL, 0) == 2);
    }
}

int main(void)
{
    UT_RUN(test_b64_roundtrip);
    UT_RUN(test_b64_known);
    UT_RUN(test_b64_whitespace);
    UT_RUN(test_b64_bad);
    UT_RUN(test_b64_wrap);
    UT_RUN(test_serial_normalize);
    UT_RUN(test_serial_hex);
    UT_RUN(test_asn1_time);
    UT_RUN(test_file_read);
    UT_RUN(test_write_atomic);
    UT_RUN(test_write_atomic_fail);
    return ut_finish();
}
