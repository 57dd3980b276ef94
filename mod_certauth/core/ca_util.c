/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_util.c: pool cleanups for OpenSSL objects, base64, serials, files. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <apr_file_io.h>
#include <apr_lib.h>
#include <sys/wait.h>
#include <apr_strings.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca_util.h"

static apr_status_t x509_cleanup(void *o)
{
    X509_free(o);
    return APR_SUCCESS;
}

static apr_status_t x509_req_cleanup(void *o)
{
    X509_REQ_free(o);
    return APR_SUCCESS;
}

static apr_status_t pkey_cleanup(void *o)
{
    EVP_PKEY_free(o);
    return APR_SUCCESS;
}

static apr_status_t stack_cleanup(void *o)
{
    sk_X509_pop_free(o, X509_free);
    return APR_SUCCESS;
}

X509 *ca_pool_x509(apr_pool_t *p, X509 *x)
{
    if (x) {
        apr_pool_cleanup_register(p, x, x509_cleanup, apr_pool_cleanup_null);
    }
    return x;
}

X509_REQ *ca_pool_x509_req(apr_pool_t *p, X509_REQ *x)
{
    if (x) {
        apr_pool_cleanup_register(p, x, x509_req_cleanup,
                                  apr_pool_cleanup_null);
    }
    return x;
}

EVP_PKEY *ca_pool_pkey(apr_pool_t *p, EVP_PKEY *k)
{
    if (k) {
        apr_pool_cleanup_register(p, k, pkey_cleanup, apr_pool_cleanup_null);
    }
    return k;
}

STACK_OF(X509) *ca_pool_x509_stack(apr_pool_t *p, STACK_OF(X509) *sk)
{
    if (sk) {
        apr_pool_cleanup_register(p, sk, stack_cleanup, apr_pool_cleanup_null);
    }
    return sk;
}

typedef struct {
    void *buf;
    apr_size_t len;
} wipe_t;

static apr_status_t wipe_cleanup(void *data)
{
    wipe_t *w = data;
    OPENSSL_cleanse(w->buf, w->len);
    return APR_SUCCESS;
}

void ca_pool_wipe(apr_pool_t *p, void *buf, apr_size_t len)
{
    wipe_t *w = apr_palloc(p, sizeof(*w));

    w->buf = buf;
    w->len = len;
    apr_pool_cleanup_register(p, w, wipe_cleanup, apr_pool_cleanup_null);
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

apr_status_t ca_base64_decode(apr_pool_t *p, const char *in, apr_size_t inlen,
                              unsigned char **out, apr_size_t *outlen)
{
    unsigned char *buf = apr_palloc(p, inlen / 4 * 3 + 4);
    apr_size_t i, n = 0, pad = 0, chars = 0;
    unsigned acc = 0;
    int bits = 0;

    for (i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'
            || c == '\v') {
            continue;
        }
        if (c == '=') {
            pad++;
            chars++;
            continue;
        }
        if (pad || (v = b64_value(c)) < 0) {
            return CA_EBADINPUT; /* bad character, or data after padding */
        }
        chars++;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (chars == 0 || chars % 4 != 0 || pad > 2 || acc != 0
        || (pad == 1 && bits != 2) || (pad == 2 && bits != 4)
        || (pad == 0 && bits != 0)) {
        return CA_EBADINPUT;
    }
    *out = buf;
    *outlen = n;
    return APR_SUCCESS;
}

apr_size_t ca_base64_encoded_len(apr_size_t inlen, int crlf)
{
    apr_size_t enc = (inlen + 2) / 3 * 4;
    return enc + (enc + 63) / 64 * (crlf ? 2 : 1);
}

/* Lines of 48 input octets (64 characters) by OpenSSL's EVP_EncodeBlock,
 * which writes a NUL after them: the line break goes over it. */
char *ca_base64_encode_to(char *out, const unsigned char *in,
                          apr_size_t inlen, int crlf)
{
    char *o = out;
    apr_size_t i;

    for (i = 0; i < inlen; i += 48) {
        apr_size_t n = inlen - i < 48 ? inlen - i : 48;
        o += EVP_EncodeBlock((unsigned char *)o, in + i, (int)n);
        if (crlf) *o++ = '\r';
        *o++ = '\n';
    }
    *o = '\0';
    return o;
}

const char *ca_base64_encode(apr_pool_t *p, const unsigned char *in,
                             apr_size_t inlen, int crlf)
{
    char *out = apr_palloc(p, ca_base64_encoded_len(inlen, crlf) + 1);
    ca_base64_encode_to(out, in, inlen, crlf);
    return out;
}

const char *ca_x509_pem(apr_pool_t *p, X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    const char *out = NULL;
    char *data;
    long len;

    if (bio && PEM_write_bio_X509(bio, x)) {
        len = BIO_get_mem_data(bio, &data);
        out = apr_pstrmemdup(p, data, (apr_size_t)len);
    }
    BIO_free(bio);
    return out;
}

apr_status_t ca_x509_der(apr_pool_t *p, X509 *x, unsigned char **der,
                         apr_size_t *len)
{
    int n = i2d_X509(x, NULL);
    unsigned char *buf, *q;

    if (n <= 0) {
        return CA_ECRYPTO;
    }
    buf = q = apr_palloc(p, (apr_size_t)n);
    if (i2d_X509(x, &q) != n) {
        return CA_ECRYPTO;
    }
    *der = buf;
    *len = (apr_size_t)n;
    return APR_SUCCESS;
}

const char *ca_x509_name_str(apr_pool_t *p, const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    const char *out = "";
    char *data;
    long len;

    if (bio && X509_NAME_print_ex(bio, name, 0,
                                  XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB)
                   >= 0) {
        len = BIO_get_mem_data(bio, &data);
        if (len > 0 && data) {
            out = apr_pstrmemdup(p, data, (apr_size_t)len);
        }
    }
    BIO_free(bio);
    return out;
}

const char *ca_serial_hex(apr_pool_t *p, const ASN1_INTEGER *serial)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    const char *out = hex ? apr_pstrdup(p, hex) : NULL;

    OPENSSL_free(hex);
    BN_free(bn);
    return out;
}

apr_status_t ca_serial_normalize(apr_pool_t *p, const char *in,
                                 const char **out)
{
    char *digits = apr_palloc(p, strlen(in) + 2), *d = digits;
    BIGNUM *bn = NULL;
    char *hex;
    const char *c;
    apr_size_t n;

    /* Plain hex, or openssl's colon form: pairs of hex digits ("01:AB"). */
    int colons = strchr(in, ':') != NULL, group = 0;

    for (c = in; *c; c++) {
        if (*c == ':') {
            if (group != 2) {
                return CA_EBADINPUT;
            }
            group = 0;
            continue;
        }
        if (!apr_isxdigit(*c)) {
            return CA_EBADINPUT;
        }
        group++;
        *d++ = *c;
    }
    if (colons && group != 2) {
        return CA_EBADINPUT;
    }
    *d = '\0';
    /* Leading zeros carry no value; at most 20 octets remain. */
    for (c = digits; *c == '0'; c++) {
    }
    n = strlen(c);
    if (n == 0 || n > 40 || !BN_hex2bn(&bn, c)) {
        BN_free(bn);
        return CA_EBADINPUT;
    }
    hex = BN_bn2hex(bn);
    BN_free(bn);
    if (!hex) {
        return CA_ECRYPTO;
    }
    *out = apr_pstrdup(p, hex);
    OPENSSL_free(hex);
    return APR_SUCCESS;
}

apr_int64_t ca_asn1_time_to_epoch(const ASN1_TIME *t)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (!t || !ASN1_TIME_to_tm(t, &tm)) {
        return 0;
    }
    return (apr_int64_t)timegm(&tm);
}

apr_status_t ca_file_read(apr_pool_t *p, const char *path, apr_size_t max,
                          char **data, apr_size_t *len)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_status_t rv;
    apr_size_t n = 0, cap, limit;
    char *buf;

    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY,
                       APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE | APR_FINFO_TYPE, f);
    if (rv != APR_SUCCESS) {
        apr_file_close(f);
        return rv;
    }
    if (fi.filetype == APR_DIR) {
        apr_file_close(f);
        return APR_FROM_OS_ERROR(EISDIR);
    }
    if (fi.size < 0 || (apr_uint64_t)fi.size > (apr_uint64_t)max) {
        apr_file_close(f);
        return CA_EBADINPUT;
    }
    /* Read to the end of file: the size is only a hint (pipes, /proc and
     * files that grow report another one).  One byte more than max tells
     * that the file is too large. */
    limit = max < APR_SIZE_MAX - 1 ? max + 1 : max;
    cap = (apr_size_t)fi.size + 1;
    if (cap < 4096) {
        cap = 4096;
    }
    if (cap > limit) {
        cap = limit;
    }
    buf = apr_palloc(p, cap + 1);
    for (;;) {
        apr_size_t got = cap - n;
        if (got == 0) {
            if (cap >= limit) {
                rv = CA_EBADINPUT;
                break;
            }
            else {
                apr_size_t ncap = cap <= limit / 2 ? cap * 2 : limit;
                char *nbuf = apr_palloc(p, ncap + 1);
                memcpy(nbuf, buf, n);
                buf = nbuf;
                cap = ncap;
                got = cap - n;
            }
        }
        rv = apr_file_read(f, buf + n, &got);
        n += got;
        if (rv == APR_EOF || (rv == APR_SUCCESS && got == 0)) {
            rv = APR_SUCCESS;
            break;
        }
        if (rv != APR_SUCCESS) {
            break;
        }
    }
    apr_file_close(f);
    if (rv == APR_SUCCESS && n > max) {
        rv = CA_EBADINPUT;
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return APR_SUCCESS;
}

static apr_status_t write_all(int fd, const void *data, apr_size_t len)
{
    const char *c = data;

    while (len > 0) {
        ssize_t w = write(fd, c, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return APR_FROM_OS_ERROR(errno);
        }
        c += w;
        len -= (apr_size_t)w;
    }
    return APR_SUCCESS;
}

apr_status_t ca_file_write_atomic(apr_pool_t *p, const char *path,
                                  const void *data, apr_size_t len,
                                  int perms)
{
    return ca_file_write_atomic2(p, path, data, len, NULL, 0, perms);
}

apr_status_t ca_file_write_atomic2(apr_pool_t *p, const char *path,
                                   const void *data, apr_size_t len,
                                   const void *data2, apr_size_t len2,
                                   int perms)
{
    char *tmp = apr_pstrcat(p, path, ".tmpXXXXXX", NULL);
    char *dir = apr_pstrdup(p, path), *slash;
    apr_status_t rv = APR_SUCCESS;
    int fd, dfd;

    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    if (fchmod(fd, (mode_t)perms) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
    }
    if (rv == APR_SUCCESS) {
        rv = write_all(fd, data, len);
    }
    if (rv == APR_SUCCESS && len2) {
        rv = write_all(fd, data2, len2);
    }
    if (rv == APR_SUCCESS && fsync(fd) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
    }
    if (close(fd) != 0 && rv == APR_SUCCESS) {
        rv = APR_FROM_OS_ERROR(errno);
    }
    if (rv == APR_SUCCESS && rename(tmp, path) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
    }
    if (rv != APR_SUCCESS) {
        unlink(tmp);
        return rv;
    }
    slash = strrchr(dir, '/');
    if (slash) {
        *(slash == dir ? slash + 1 : slash) = '\0';
    }
    else {
        dir = ".";
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        if (fsync(dfd) != 0) {
            rv = APR_FROM_OS_ERROR(errno);
        }
        close(dfd);
    }
    return rv;
}

apr_size_t ca_utf8_char_len(const unsigned char *s)
{
    unsigned char c = s[0];

    if (c < 0x80) {
        return c ? 1 : 0;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80
            || (c == 0xE0 && s[1] < 0xA0)      /* overlong */
            || (c == 0xED && s[1] > 0x9F)) {   /* surrogates */
            return 0;
        }
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80
            || (s[3] & 0xC0) != 0x80
            || (c == 0xF0 && s[1] < 0x90)      /* overlong */
            || (c == 0xF4 && s[1] > 0x8F)) {   /* above U+10FFFF */
            return 0;
        }
        return 4;
    }
    return 0;
}

const char *ca_printable(apr_pool_t *p, const char *s, apr_size_t max)
{
    apr_size_t n, i;
    char *out;

    if (!s) {
        return "(null)";
    }
    n = strlen(s);
    if (n > max) {
        n = max;
    }
    out = apr_palloc(p, n + 4);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c >= 0x20 && c < 0x7f && c != '\'' && c != '"'
                  && c != '\\') ? (char)c : '?';
    }
    if (n < strlen(s)) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

const char *ca_utf8_clean(apr_pool_t *p, const char *s)
{
    const unsigned char *c;
    apr_size_t bad = 0, n;
    char *out, *o;

    if (!s) {
        return NULL;
    }
    for (c = (const unsigned char *)s; *c; c += n ? n : 1) {
        n = ca_utf8_char_len(c);
        bad += !n;
    }
    if (!bad) {
        return s;
    }
    o = out = apr_palloc(p, strlen(s) + 3 * bad + 1);
    for (c = (const unsigned char *)s; *c; c += n ? n : 1) {
        n = ca_utf8_char_len(c);
        if (n) {
            memcpy(o, c, n);
            o += n;
        }
        else {
            static const char hex[] = "0123456789ABCDEF";
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 15];
        }
    }
    *o = '\0';
    return out;
}

apr_size_t ca_child_collect(int fd, int pid, char *buf, apr_size_t size,
                            int secs, int *status, int *timed_out)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_sec(secs);
    apr_size_t total = 0;
    ssize_t n;

    *timed_out = 0;
    while (total + 1 < size) {
        apr_interval_time_t left = deadline - apr_time_now();
        struct pollfd pfd;
        int rc;

        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (left <= 0) {
            *timed_out = 1;
            break;
        }
        rc = poll(&pfd, 1, (int)((left + 999) / 1000));
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc <= 0) {
            *timed_out = rc == 0;
            break;
        }
        n = read(fd, buf + total, size - 1 - total);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        total += (apr_size_t)n;
    }
    if (size) {
        buf[total] = '\0';
    }
    close(fd);
    *status = 0;
    /* the output is read: the child has what is left of the bound to exit */
    for (;;) {
        pid_t w = waitpid((pid_t)pid, status, WNOHANG);
        if (w == (pid_t)pid || (w < 0 && errno != EINTR)) {
            break;
        }
        if (*timed_out || apr_time_now() >= deadline) {
            *timed_out = 1;
            kill((pid_t)pid, SIGKILL);
            while (waitpid((pid_t)pid, status, 0) < 0 && errno == EINTR) {
            }
            break;
        }
        apr_sleep(apr_time_from_msec(10));
    }
    return total;
}
