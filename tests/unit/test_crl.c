/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_crl: reason names and codes, v2 CRLs built for CAs made
 * with ca_create (EC, RSA, Ed25519) and parsed back with OpenSSL (version,
 * issuer, times, crlNumber, AKI, entries, reasons, invalidity dates,
 * signature), revocation checking with an X509_STORE, bad input, PEM.
 * With CERTAUTH_CRL_BENCH=1 it also times CRLs of 100,000 and 1,000,000
 * entries. */

#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "unit.h"
#include "ca_ca.h"
#include "ca_crl.h"
#include "ca_issue.h"
#include "ca_store.h"
#include "ca_store_test.h"
#include "ca_util.h"
#include "rawdb.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* A CA made with ca_create into a fresh directory, then ca_load'ed. */
static ca_t *make_ca(apr_pool_t *p, const char *key_type)
{
    const char *dir = ut_tmpdir(p);
    ca_init_opts_t opts;
    const char *cert = apr_pstrcat(p, dir, "/cacert.pem", NULL);
    const char *key = apr_pstrcat(p, dir, "/cakey.pem", NULL);
    const char *err = NULL;
    ca_t *ca = NULL;

    memset(&opts, 0, sizeof(opts));
    opts.key_type = key_type;
    opts.days = 30;
    opts.subject = "CN=CRL Test CA,O=Example";
    if (ca_create(p, &opts, cert, key, &err) != APR_SUCCESS
        || ca_load(&ca, p, cert, key, NULL, &err) != APR_SUCCESS) {
        fprintf(stderr, "make_ca %s: %s\n", key_type, err ? err : "?");
        abort();
    }
    return ca;
}

static void add_entry(apr_array_header_t *a, const char *serial,
                      apr_int64_t revoked_at, int reason,
                      apr_int64_t invalidity_at)
{
    ca_crl_entry_t *e = apr_array_push(a);
    e->serial = serial;
    e->revoked_at = revoked_at;
    e->reason = reason;
    e->invalidity_at = invalidity_at;
}

static apr_status_t crl_free(void *c)
{
    X509_CRL_free(c);
    return APR_SUCCESS;
}

/* 1 when the TBSCertList inside der is exactly what OpenSSL encodes from
 * the parsed CRL (canonical DER, nothing OpenSSL would write otherwise). */
static int tbs_canonical(X509_CRL *crl, const unsigned char *der,
                         apr_size_t len)
{
    const unsigned char *q = der, *tbs;
    unsigned char *re = NULL;
    long l;
    int tag, xclass, relen, ok;

    if (ASN1_get_object(&q, &l, &tag, &xclass, (long)len)
        != V_ASN1_CONSTRUCTED) {
        return 0;
    }
    tbs = q;
    if (ASN1_get_object(&q, &l, &tag, &xclass, (long)len - (q - der))
        != V_ASN1_CONSTRUCTED) {
        return 0;
    }
    relen = i2d_re_X509_CRL_tbs(crl, &re);
    ok = relen > 0 && relen == (q - tbs) + l && !memcmp(re, tbs, relen);
    OPENSSL_free(re);
    return ok;
}

static X509_CRL *parse(apr_pool_t *p, const unsigned char *der,
                       apr_size_t len)
{
    const unsigned char *q = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &q, (long)len);
    if (crl && q != der + len) {
        X509_CRL_free(crl);
        return NULL; /* trailing bytes */
    }
    if (crl) {
        apr_pool_cleanup_register(p, crl, crl_free, apr_pool_cleanup_null);
    }
    return crl;
}

/* parse, and check the encoding is canonical */
static X509_CRL *parse_check(apr_pool_t *p, const unsigned char *der,
                             apr_size_t len)
{
    X509_CRL *crl = der ? parse(p, der, len) : NULL;
    UT_CHECK(crl != NULL);
    if (crl) {
        /* a fresh parse: i2d_re_X509_CRL_tbs marks the original modified */
        X509_CRL *again = parse(p, der, len);
        UT_CHECK(again && tbs_canonical(again, der, len));
    }
    return crl;
}

static int one_line(const char *err)
{
    return err && *err && !strchr(err, '\n');
}

static int serial_eq(const ASN1_INTEGER *ai, const char *hex)
{
    BIGNUM *a = ASN1_INTEGER_to_BN(ai, NULL), *b = NULL;
    int eq = a && BN_hex2bn(&b, hex) && BN_cmp(a, b) == 0
             && !BN_is_negative(a);
    BN_free(a);
    BN_free(b);
    return eq;
}

/* The reason code of an entry, -1 when it has no reasonCode extension. */
static int entry_reason(X509_REVOKED *rev, int *crit)
{
    ASN1_ENUMERATED *r = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, crit,
                                                  NULL);
    int code = -1;
    if (r) {
        code = (int)ASN1_ENUMERATED_get(r);
        ASN1_ENUMERATED_free(r);
    }
    return code;
}

/* The invalidity date, 0 when absent, -1 when not a GeneralizedTime. */
static apr_int64_t entry_invalidity(X509_REVOKED *rev, int *crit)
{
    ASN1_GENERALIZEDTIME *g = X509_REVOKED_get_ext_d2i(rev,
                                                       NID_invalidity_date,
                                                       crit, NULL);
    apr_int64_t t = 0;
    if (g) {
        t = ASN1_STRING_type(g) == V_ASN1_GENERALIZEDTIME
            ? ca_asn1_time_to_epoch(g) : -1;
        ASN1_GENERALIZEDTIME_free(g);
    }
    return t;
}

static apr_int64_t crl_number(X509_CRL *crl, int *crit)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, crit, NULL);
    int64_t v = -1;
    if (n) {
        if (!ASN1_INTEGER_get_int64(&v, n)) {
            v = -2;
        }
        ASN1_INTEGER_free(n);
    }
    return (apr_int64_t)v;
}

/* 1 when the CRL's AKI is non-critical and carries exactly keyid == want
 * (no issuer/serial). */
static int aki_is(X509_CRL *crl, const ASN1_OCTET_STRING *want)
{
    int crit = -2, ok;
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl,
                                                 NID_authority_key_identifier,
                                                 &crit, NULL);
    ok = akid && crit == 0 && akid->keyid && want
         && ASN1_OCTET_STRING_cmp(akid->keyid, want) == 0 && !akid->issuer
         && !akid->serial;
    AUTHORITY_KEYID_free(akid);
    return ok;
}

/* Checks common to every CRL built here. */
static void check_header(const ca_t *ca, X509_CRL *crl, apr_int64_t number,
                         apr_int64_t this_update, apr_int64_t next_update)
{
    int crit = -2;

    UT_CHECK(X509_CRL_get_version(crl) == X509_CRL_VERSION_2);
    UT_CHECK(X509_NAME_cmp(X509_CRL_get_issuer(crl),
                           X509_get_subject_name(ca->cert)) == 0);
    UT_CHECK(ca_asn1_time_to_epoch(X509_CRL_get0_lastUpdate(crl))
             == this_update);
    UT_CHECK(X509_CRL_get0_nextUpdate(crl) != NULL
             && ca_asn1_time_to_epoch(X509_CRL_get0_nextUpdate(crl))
                == next_update);
    UT_CHECK(crl_number(crl, &crit) == number);
    UT_CHECK(crit == 0);
    UT_CHECK(X509_CRL_get_ext_count(crl) == 2);
    UT_CHECK(X509_get0_subject_key_id(ca->cert) != NULL);
    UT_CHECK(aki_is(crl, X509_get0_subject_key_id(ca->cert)));
    UT_CHECK(X509_CRL_verify(crl, X509_get0_pubkey(ca->cert)) == 1);
    ERR_clear_error();
}

/* ------------------------------------------------------------------ */
/* Reason names                                                        */
/* ------------------------------------------------------------------ */

static void test_reason_names(apr_pool_t *p)
{
    static const struct { int code; const char *name; } rfc[] = {
        { 0, "unspecified" },
        { 1, "keyCompromise" },
        { 2, "cACompromise" },
        { 3, "affiliationChanged" },
        { 4, "superseded" },
        { 5, "cessationOfOperation" },
        { 6, "certificateHold" },
        { 9, "privilegeWithdrawn" },
        { 10, "aACompromise" },
    };
    apr_size_t i;

    for (i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
        const char *n = ca_reason_name(rfc[i].code);
        UT_CHECK_MSG(n && !strcmp(n, rfc[i].name), "code %d", rfc[i].code);
        UT_CHECK(ca_reason_code(rfc[i].name) == rfc[i].code);
        UT_CHECK(ca_reason_code(apr_itoa(p, rfc[i].code)) == rfc[i].code);
    }
    UT_CHECK(ca_reason_name(CA_REASON_KEY_COMPROMISE)
             && !strcmp(ca_reason_name(CA_REASON_KEY_COMPROMISE),
                        "keyCompromise"));
    UT_CHECK(ca_reason_name(CA_REASON_REMOVE_FROM_CRL)
             && !strcmp(ca_reason_name(CA_REASON_REMOVE_FROM_CRL),
                        "removeFromCRL"));
    UT_CHECK(ca_reason_name(7) == NULL);
    UT_CHECK(ca_reason_name(CA_REASON_NONE) == NULL);
    UT_CHECK(ca_reason_name(11) == NULL);
    UT_CHECK(ca_reason_name(-2) == NULL);

    /* case-insensitive */
    UT_CHECK(ca_reason_code("KEYCOMPROMISE") == 1);
    UT_CHECK(ca_reason_code("keycompromise") == 1);
    UT_CHECK(ca_reason_code("CaCompromise") == 2);
    UT_CHECK(ca_reason_code("aacompromise") == 10);
    UT_CHECK(ca_reason_code("Superseded") == 4);
    /* refused */
    UT_CHECK(ca_reason_code("removeFromCRL") == -2);
    UT_CHECK(ca_reason_code("8") == -2);
    UT_CHECK(ca_reason_code("7") == -2);
    UT_CHECK(ca_reason_code("11") == -2);
    UT_CHECK(ca_reason_code("-1") == -2);
    UT_CHECK(ca_reason_code("1x") == -2);
    UT_CHECK(ca_reason_code(" 1") == -2);
    UT_CHECK(ca_reason_code("99999999999") == -2);
    UT_CHECK(ca_reason_code("keyCompromise ") == -2);
    UT_CHECK(ca_reason_code("key Compromise") == -2);
    UT_CHECK(ca_reason_code("none") == -2);
    UT_CHECK(ca_reason_code("") == -2);
    UT_CHECK(ca_reason_code(NULL) == -2);
}

/* ------------------------------------------------------------------ */
/* CRLs                                                                */
/* ------------------------------------------------------------------ */

static void crl_empty(apr_pool_t *p, const ca_t *ca, int cli_check)
{
    apr_int64_t now = (apr_int64_t)time(NULL);
    unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *err = NULL;
    apr_array_header_t *none = apr_array_make(p, 1, sizeof(ca_crl_entry_t));
    X509_CRL *crl;

    UT_CHECK_MSG(ca_crl_build(p, ca, none, 1, now, now + 86400, &der, &len,
                              &err) == APR_SUCCESS, "%s", err ? err : "");
    crl = parse_check(p, der, len);
    if (!crl) {
        return;
    }
    check_header(ca, crl, 1, now, now + 86400);
    /* absent, not an empty SEQUENCE (which d2i gives as an empty stack) */
    UT_CHECK(X509_CRL_get_REVOKED(crl) == NULL);

    /* NULL entries: the same */
    der = NULL;
    UT_CHECK(ca_crl_build(p, ca, NULL, 0, now, now + 3600, &der, &len, &err)
             == APR_SUCCESS);
    crl = parse_check(p, der, len);
    if (crl) {
        check_header(ca, crl, 0, now, now + 3600);
        UT_CHECK(X509_CRL_get_REVOKED(crl) == NULL);
    }

    if (cli_check) {
        /* as the openssl command shows it */
        const char *file = apr_pstrcat(p, ut_tmpdir(p), "/crl.der", NULL);
        char line[512];
        FILE *f;
        int seen = 0, rc;
        UT_CHECK(ca_file_write_atomic(p, file, der, len, 0644)
                 == APR_SUCCESS);
        f = popen(apr_pstrcat(p, "openssl crl -inform DER -noout -text -in ",
                              file, NULL), "r");
        UT_CHECK(f != NULL);
        while (f && fgets(line, sizeof(line), f)) {
            if (strstr(line, "No Revoked Certificates")) {
                seen = 1;
            }
        }
        rc = f ? pclose(f) : -1;
        UT_CHECK(rc == 0);
        UT_CHECK(seen);
    }
}

static void crl_one(apr_pool_t *p, const ca_t *ca)
{
    apr_int64_t now = (apr_int64_t)time(NULL);
    apr_array_header_t *a = apr_array_make(p, 1, sizeof(ca_crl_entry_t));
    unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *err = NULL;
    X509_CRL *crl;
    STACK_OF(X509_REVOKED) *revs;
    X509_REVOKED *rev;
    int crit = -2;

    add_entry(a, "0123456789ABCDEF0123456789ABCDEF", now - 100,
              CA_REASON_KEY_COMPROMISE, now - 86400);
    UT_CHECK_MSG(ca_crl_build(p, ca, a, 42, now, now + 7 * 86400, &der, &len,
                              &err) == APR_SUCCESS, "%s", err ? err : "");
    crl = parse_check(p, der, len);
    if (!crl) {
        return;
    }
    check_header(ca, crl, 42, now, now + 7 * 86400);
    revs = X509_CRL_get_REVOKED(crl);
    UT_CHECK(revs && sk_X509_REVOKED_num(revs) == 1);
    if (!revs || sk_X509_REVOKED_num(revs) != 1) {
        return;
    }
    rev = sk_X509_REVOKED_value(revs, 0);
    UT_CHECK(serial_eq(X509_REVOKED_get0_serialNumber(rev),
                       "0123456789ABCDEF0123456789ABCDEF"));
    UT_CHECK(ASN1_STRING_length(X509_REVOKED_get0_serialNumber(rev)) == 16);
    UT_CHECK(ca_asn1_time_to_epoch(X509_REVOKED_get0_revocationDate(rev))
             == now - 100);
    UT_CHECK(entry_reason(rev, &crit) == CA_REASON_KEY_COMPROMISE);
    UT_CHECK(crit == 0);
    crit = -2;
    UT_CHECK(entry_invalidity(rev, &crit) == now - 86400);
    UT_CHECK(crit == 0);
    UT_CHECK(X509_REVOKED_get_ext_count(rev) == 2);

    /* the signature covers the entries: one changed byte breaks it */
    {
        unsigned char *copy = apr_pmemdup(p, der, len);
        unsigned char *hit = NULL;
        apr_size_t i;
        X509_CRL *bad;
        for (i = 0; i + 4 <= len; i++) {
            if (!memcmp(copy + i, "\x01\x23\x45\x67", 4)) {
                hit = copy + i;
                break;
            }
        }
        UT_CHECK(hit != NULL);
        if (hit) {
            hit[3] ^= 0x01;
            bad = parse(p, copy, len);
            UT_CHECK(bad != NULL);
            UT_CHECK(bad && X509_CRL_verify(bad, X509_get0_pubkey(ca->cert))
                            != 1);
            ERR_clear_error();
        }
    }
}

static void crl_several(apr_pool_t *p, const ca_t *ca)
{
    apr_int64_t now = (apr_int64_t)time(NULL);
    apr_int64_t far = 2650000000LL; /* 2053: GeneralizedTime */
    apr_array_header_t *a = apr_array_make(p, 16, sizeof(ca_crl_entry_t));
    unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *err = NULL;
    X509_CRL *crl;
    STACK_OF(X509_REVOKED) *revs;
    int i, n;
    apr_int64_t number = ((apr_int64_t)1 << 40) + 7;

    /* given order kept: deliberately not sorted by serial */
    add_entry(a, "7F00000000000000000000000000AA01", now - 5000,
              CA_REASON_NONE, 0);
    add_entry(a, "10", now - 4000, CA_REASON_UNSPECIFIED, 0);
    add_entry(a, "80FFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", now - 3000,
              CA_REASON_CA_COMPROMISE, now - 3500);
    add_entry(a, "abcdef0123", now - 3000, CA_REASON_AFFILIATION_CHANGED, 0);
    add_entry(a, "000A", now - 2000, CA_REASON_SUPERSEDED, 0);
    add_entry(a, "0102030405060708090A0B0C0D0E0F1011121314", now - 1000,
              CA_REASON_CESSATION_OF_OPERATION, 0);
    add_entry(a, "21", now - 10, CA_REASON_CERTIFICATE_HOLD, now - 20);
    add_entry(a, "22", now - 9, CA_REASON_PRIVILEGE_WITHDRAWN, 0);
    add_entry(a, "23", now - 8, CA_REASON_AA_COMPROMISE, 0);
    add_entry(a, "24", far, CA_REASON_KEY_COMPROMISE, far - 1);
    add_entry(a, "25", now - 7, CA_REASON_UNSPECIFIED, now - 60);
    add_entry(a, "01", now - 6, CA_REASON_NONE, now - 70);

    UT_CHECK_MSG(ca_crl_build(p, ca, a, number, now - 60, now + 86400, &der,
                              &len, &err) == APR_SUCCESS, "%s",
                 err ? err : "");
    crl = parse_check(p, der, len);
    if (!crl) {
        return;
    }
    check_header(ca, crl, number, now - 60, now + 86400);
    revs = X509_CRL_get_REVOKED(crl);
    n = revs ? sk_X509_REVOKED_num(revs) : 0;
    UT_CHECK(n == a->nelts);
    for (i = 0; i < n && i < a->nelts; i++) {
        const ca_crl_entry_t *e = &APR_ARRAY_IDX(a, i, ca_crl_entry_t);
        X509_REVOKED *rev = sk_X509_REVOKED_value(revs, i);
        const ASN1_TIME *rd = X509_REVOKED_get0_revocationDate(rev);
        int crit = -2, want_reason, exts;

        UT_CHECK_MSG(serial_eq(X509_REVOKED_get0_serialNumber(rev),
                               e->serial), "entry %d", i);
        UT_CHECK_MSG(ca_asn1_time_to_epoch(rd) == e->revoked_at, "entry %d",
                     i);
        /* UTCTime through 2049, GeneralizedTime after (RFC 5280 5.1.2.6) */
        UT_CHECK_MSG(ASN1_STRING_type(rd) == (e->revoked_at < 2524608000LL
                                              ? V_ASN1_UTCTIME
                                              : V_ASN1_GENERALIZEDTIME),
                     "entry %d", i);
        want_reason = e->reason > 0 ? e->reason : -1;
        UT_CHECK_MSG(entry_reason(rev, &crit) == want_reason,
                     "entry %d reason", i);
        UT_CHECK_MSG(crit == (want_reason > 0 ? 0 : -1), "entry %d crit %d",
                     i, crit);
        crit = -2;
        UT_CHECK_MSG(entry_invalidity(rev, &crit) == e->invalidity_at,
                     "entry %d invalidity", i);
        UT_CHECK_MSG(crit == (e->invalidity_at ? 0 : -1), "entry %d", i);
        exts = (want_reason > 0) + (e->invalidity_at > 0);
        UT_CHECK_MSG(X509_REVOKED_get_ext_count(rev) == exts, "entry %d", i);
    }
    /* 0x80... needs a leading zero octet to stay positive */
    if (n > 2) {
        const ASN1_INTEGER *ai = X509_REVOKED_get0_serialNumber(
            sk_X509_REVOKED_value(revs, 2));
        UT_CHECK(ASN1_STRING_length(ai) == 16);
        UT_CHECK(ASN1_STRING_type(ai) == V_ASN1_INTEGER);
    }

    /* PEM */
    {
        const char *pem = ca_crl_pem(p, der, len);
        BIO *bio;
        X509_CRL *back = NULL;
        unsigned char *der2 = NULL;
        int len2;

        UT_CHECK(pem && !strncmp(pem, "-----BEGIN X509 CRL-----\n", 25));
        UT_CHECK(pem && strlen(pem) > 23
                 && !strcmp(pem + strlen(pem) - 23,
                            "-----END X509 CRL-----\n"));
        bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
        back = bio ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
        UT_CHECK(back != NULL);
        len2 = back ? i2d_X509_CRL(back, &der2) : -1;
        UT_CHECK(len2 == (int)len && der2 && !memcmp(der2, der, len));
        OPENSSL_free(der2);
        X509_CRL_free(back);
        BIO_free(bio);
        UT_CHECK(ca_crl_pem(p, NULL, 0) == NULL);
        UT_CHECK(ca_crl_pem(p, der, 0) == NULL);
    }
}

/* Revocation checking by OpenSSL against the CRL: listed -> revoked,
 * unlisted -> accepted. */
static int verify_with_crl(const ca_t *ca, X509_CRL *crl, X509 *x)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = -1;

    if (st && ctx && X509_STORE_add_cert(st, ca->cert)
        && X509_STORE_add_crl(st, crl)
        && X509_STORE_CTX_init(ctx, st, x, NULL)) {
        X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK
                                      | X509_V_FLAG_X509_STRICT);
        rc = X509_verify_cert(ctx) == 1 ? X509_V_OK
                                        : X509_STORE_CTX_get_error(ctx);
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    ERR_clear_error();
    return rc;
}

static apr_status_t name_free(void *n)
{
    X509_NAME_free(n);
    return APR_SUCCESS;
}

static X509 *issue(apr_pool_t *p, const ca_t *ca, const char *cn)
{
    ca_profile_t *prof = ca_profile_make(p, "user");
    ca_issue_req_t *req = apr_pcalloc(p, sizeof(*req));
    X509_NAME *name = X509_NAME_new();
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    const char *err = NULL;
    X509 *x = NULL;

    if (!name || !key) {
        abort();
    }
    apr_pool_cleanup_register(p, name, name_free, apr_pool_cleanup_null);
    ca_pool_pkey(p, key);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               (const unsigned char *)"Example", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    req->profile = prof;
    req->subject = name;
    req->pubkey = key;
    req->owner = cn;
    req->base_url = "https://ca.example/ca";
    if (ca_cert_build(p, ca, req, NULL, (apr_int64_t)time(NULL), &x, &err)
        != APR_SUCCESS) {
        fprintf(stderr, "ca_cert_build: %s\n", err ? err : "?");
        return NULL;
    }
    return x;
}

static void crl_store_check(apr_pool_t *p, const ca_t *ca)
{
    apr_int64_t now = (apr_int64_t)time(NULL);
    X509 *listed = issue(p, ca, "listed"), *other = issue(p, ca, "other");
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(ca_crl_entry_t));
    unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *err = NULL;
    X509_CRL *crl;

    UT_CHECK(listed && other);
    if (!listed || !other) {
        return;
    }
    add_entry(a, "7A", now - 50, CA_REASON_SUPERSEDED, 0);
    add_entry(a, ca_serial_hex(p, X509_get0_serialNumber(listed)), now - 10,
              CA_REASON_KEY_COMPROMISE, 0);
    add_entry(a, "7B", now - 5, CA_REASON_NONE, 0);
    UT_CHECK_MSG(ca_crl_build(p, ca, a, 3, now - 60, now + 86400, &der,
                              &len, &err) == APR_SUCCESS, "%s",
                 err ? err : "");
    crl = parse_check(p, der, len);
    if (!crl) {
        return;
    }
    UT_CHECK(verify_with_crl(ca, crl, listed) == X509_V_ERR_CERT_REVOKED);
    UT_CHECK(verify_with_crl(ca, crl, other) == X509_V_OK);

    /* an empty CRL: both accepted */
    der = NULL;
    UT_CHECK(ca_crl_build(p, ca, NULL, 4, now - 60, now + 86400, &der, &len,
                          &err) == APR_SUCCESS);
    crl = parse_check(p, der, len);
    if (crl) {
        UT_CHECK(verify_with_crl(ca, crl, listed) == X509_V_OK);
        UT_CHECK(verify_with_crl(ca, crl, other) == X509_V_OK);
    }
}

static void crl_bad_input(apr_pool_t *p, const ca_t *ca)
{
    static const char *const bad_serials[] = {
        "XYZ", "", "0", "00", "-1", "12:34", " 12", "12 ", "0x12",
        "123456789012345678901234567890123456789012", /* 21 octets */
        NULL
    };
    apr_int64_t now = (apr_int64_t)time(NULL);
    static const int bad_reasons[] = { 7, CA_REASON_REMOVE_FROM_CRL, 11, -2,
                                       100 };
    unsigned char *der;
    apr_size_t len;
    const char *err;
    apr_array_header_t *a;
    apr_size_t i;

    for (i = 0; bad_serials[i]; i++) {
        a = apr_array_make(p, 2, sizeof(ca_crl_entry_t));
        add_entry(a, "01", now, CA_REASON_NONE, 0);
        add_entry(a, bad_serials[i], now, CA_REASON_NONE, 0);
        der = (unsigned char *)"x";
        len = 1;
        err = NULL;
        UT_CHECK_MSG(ca_crl_build(p, ca, a, 1, now, now + 60, &der, &len,
                                  &err) == CA_EBADINPUT, "serial '%s'",
                     bad_serials[i]);
        UT_CHECK(one_line(err));
        UT_CHECK(der == NULL && len == 0);
    }
    /* NULL serial */
    a = apr_array_make(p, 1, sizeof(ca_crl_entry_t));
    add_entry(a, NULL, now, CA_REASON_NONE, 0);
    err = NULL;
    UT_CHECK(ca_crl_build(p, ca, a, 1, now, now + 60, &der, &len, &err)
             == CA_EBADINPUT);
    UT_CHECK(one_line(err));

    /* 20 octets with leading zeros are fine */
    a = apr_array_make(p, 1, sizeof(ca_crl_entry_t));
    add_entry(a, "000000FF02030405060708090A0B0C0D0E0F10111213", now,
              CA_REASON_NONE, 0);
    UT_CHECK(ca_crl_build(p, ca, a, 1, now, now + 60, &der, &len, &err)
             == APR_SUCCESS);

    for (i = 0; i < sizeof(bad_reasons) / sizeof(bad_reasons[0]); i++) {
        a = apr_array_make(p, 1, sizeof(ca_crl_entry_t));
        add_entry(a, "01", now, bad_reasons[i], 0);
        err = NULL;
        UT_CHECK_MSG(ca_crl_build(p, ca, a, 1, now, now + 60, &der, &len,
                                  &err) == CA_EBADINPUT, "reason %d",
                     bad_reasons[i]);
        UT_CHECK(one_line(err));
    }

    a = apr_array_make(p, 1, sizeof(ca_crl_entry_t));
    add_entry(a, "01", now, CA_REASON_NONE, -5);
    err = NULL;
    UT_CHECK(ca_crl_build(p, ca, a, 1, now, now + 60, &der, &len, &err)
             == CA_EBADINPUT);
    UT_CHECK(one_line(err));

    /* times: up to 9999-12-31T23:59:59Z, not beyond */
    a = apr_array_make(p, 1, sizeof(ca_crl_entry_t));
    add_entry(a, "01", (apr_int64_t)1 << 50, CA_REASON_NONE, 0);
    err = NULL;
    UT_CHECK(ca_crl_build(p, ca, a, 1, now, now + 60, &der, &len, &err)
             == CA_EBADINPUT);
    UT_CHECK(one_line(err));
    a = apr_array_make(p, 1, sizeof(ca_crl_entry_t));
    add_entry(a, "01", 253402300800LL, CA_REASON_NONE, 0);
    UT_CHECK(ca_crl_build(p, ca, a, 1, now, now + 60, &der, &len, &err)
             == CA_EBADINPUT);
    a = apr_array_make(p, 1, sizeof(ca_crl_entry_t));
    add_entry(a, "01", -1, CA_REASON_NONE, 0);
    UT_CHECK(ca_crl_build(p, ca, a, 1, now, now + 60, &der, &len, &err)
             == CA_EBADINPUT);
    a = apr_array_make(p, 1, sizeof(ca_crl_entry_t));
    add_entry(a, "01", now, CA_REASON_NONE, 253402300800LL);
    UT_CHECK(ca_crl_build(p, ca, a, 1, now, now + 60, &der, &len, &err)
             == CA_EBADINPUT);
    UT_CHECK(ca_crl_build(p, ca, NULL, 1, now, 253402300800LL, &der, &len,
                          &err) == CA_EBADINPUT);
    UT_CHECK(ca_crl_build(p, ca, NULL, 1, -5, now, &der, &len, &err)
             == CA_EBADINPUT);
    a = apr_array_make(p, 1, sizeof(ca_crl_entry_t));
    add_entry(a, "01", 253402300799LL, CA_REASON_NONE, 253402300799LL);
    der = NULL;
    UT_CHECK(ca_crl_build(p, ca, a, 1, now, 253402300799LL, &der, &len,
                          &err) == APR_SUCCESS);
    {
        X509_CRL *crl = der ? parse(p, der, len) : NULL;
        X509_REVOKED *rev = crl && X509_CRL_get_REVOKED(crl)
                            ? sk_X509_REVOKED_value(X509_CRL_get_REVOKED(crl),
                                                    0) : NULL;
        int crit;
        UT_CHECK(rev && ca_asn1_time_to_epoch(
                            X509_REVOKED_get0_revocationDate(rev))
                        == 253402300799LL);
        UT_CHECK(rev && entry_invalidity(rev, &crit) == 253402300799LL);
        UT_CHECK(crl && ca_asn1_time_to_epoch(X509_CRL_get0_nextUpdate(crl))
                        == 253402300799LL);
    }

    err = NULL;
    UT_CHECK(ca_crl_build(p, ca, NULL, -1, now, now + 60, &der, &len, &err)
             == CA_EBADINPUT);
    UT_CHECK(one_line(err));
    err = NULL;
    UT_CHECK(ca_crl_build(p, ca, NULL, 1, now, now - 60, &der, &len, &err)
             == CA_EBADINPUT);
    UT_CHECK(one_line(err));
    err = NULL;
    UT_CHECK(ca_crl_build(p, NULL, NULL, 1, now, now + 60, &der, &len, &err)
             == CA_EBADINPUT);
    UT_CHECK(one_line(err));
    {
        apr_array_header_t *wrong = apr_array_make(p, 1, sizeof(int));
        APR_ARRAY_PUSH(wrong, int) = 1;
        err = NULL;
        UT_CHECK(ca_crl_build(p, ca, wrong, 1, now, now + 60, &der, &len,
                              &err) == CA_EBADINPUT);
        UT_CHECK(one_line(err));
    }
}

/* Enough entries of the largest shape (20-octet serial, reasonCode and
 * invalidityDate) to outgrow the first estimate of the buffer; shapes and
 * dates change from one entry to the next, serials are not sorted. */
static void crl_many(apr_pool_t *p, const ca_t *ca)
{
    apr_int64_t now = (apr_int64_t)time(NULL);
    static const int reasons[] = { 1, 2, 3, 4, 5, 6, 9, 10 };
    int n = 3000, i, cnt;
    apr_array_header_t *a = apr_array_make(p, n, sizeof(ca_crl_entry_t));
    unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *err = NULL;
    X509_CRL *crl;
    STACK_OF(X509_REVOKED) *revs;

    for (i = 0; i < n; i++) {
        add_entry(a, apr_psprintf(p, "%02X%030X%08X", 0x80 + (i % 0x7f), 0,
                                  (unsigned)(n - i)),
                  now - 100000 + (i / 3), reasons[i % 8],
                  now - 200000 + i);
    }
    UT_CHECK_MSG(ca_crl_build(p, ca, a, 77, now, now + 600, &der, &len,
                              &err) == APR_SUCCESS, "%s", err ? err : "");
    UT_CHECK(len > (apr_size_t)n * 64); /* more than the first estimate */
    crl = parse_check(p, der, len);
    if (!crl) {
        return;
    }
    check_header(ca, crl, 77, now, now + 600);
    revs = X509_CRL_get_REVOKED(crl);
    cnt = revs ? sk_X509_REVOKED_num(revs) : 0;
    UT_CHECK(cnt == n);
    for (i = 0; i < cnt && i < n; i++) {
        const ca_crl_entry_t *e = &APR_ARRAY_IDX(a, i, ca_crl_entry_t);
        X509_REVOKED *rev = sk_X509_REVOKED_value(revs, i);
        int crit;
        if (!serial_eq(X509_REVOKED_get0_serialNumber(rev), e->serial)
            || ASN1_STRING_length(X509_REVOKED_get0_serialNumber(rev)) != 20
            || ca_asn1_time_to_epoch(X509_REVOKED_get0_revocationDate(rev))
               != e->revoked_at
            || entry_reason(rev, &crit) != e->reason
            || entry_invalidity(rev, &crit) != e->invalidity_at
            || X509_REVOKED_get_ext_count(rev) != 2) {
            UT_CHECK_MSG(0, "entry %d differs", i);
            break;
        }
    }
}

/* Entries without an invalidity date (the common shape): revocation times
 * within a day (up and down), across days, at the epoch, at the switch
 * from UTCTime to GeneralizedTime (2050) and at the last time allowed;
 * serials in either case, of odd length, with leading zeros.  Every
 * revocationDate must be what OpenSSL's ASN1_TIME_set makes of the time
 * (type and octets), every serial the one given. */
static void crl_plain_times(apr_pool_t *p, const ca_t *ca)
{
    static const apr_int64_t times[] = {
        0, 1, 59, 3600, 86399, 86400, 86400 + 43210, 86400 + 7,
        1700000000, 1700000000 + 1, 1700000000 + 3599, 1700000000 - 17,
        1700003661, 1699920000, 1700006399, 1700006400,
        2524607999LL, 2524608000LL, 2524608000LL + 86399, 2524607000LL,
        253402300799LL, 253402300000LL, 253402214400LL
    };
    static const char *const serials[] = {
        "1", "0ab", "00FF", "7fffffffffffffffffffffffffffffffffffffff",
        "0000000000000000000000000000000000000000000000000000000000000001",
        "aBcDeF0123456789", "80", "123"
    };
    int n = (int)(sizeof(times) / sizeof(times[0])), i, cnt;
    int ns = (int)(sizeof(serials) / sizeof(serials[0]));
    apr_int64_t now = (apr_int64_t)time(NULL);
    apr_array_header_t *a = apr_array_make(p, n, sizeof(ca_crl_entry_t));
    unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *err = NULL;
    X509_CRL *crl;
    STACK_OF(X509_REVOKED) *revs;

    for (i = 0; i < n; i++) {
        add_entry(a, serials[i % ns], times[i],
                  i % 3 ? (i % 3 == 1 ? 1 : CA_REASON_NONE) : 0, 0);
    }
    UT_CHECK_MSG(ca_crl_build(p, ca, a, 9, now, now + 600, &der, &len,
                              &err) == APR_SUCCESS, "%s", err ? err : "");
    crl = parse_check(p, der, len);
    if (!crl) {
        return;
    }
    revs = X509_CRL_get_REVOKED(crl);
    cnt = revs ? sk_X509_REVOKED_num(revs) : 0;
    UT_CHECK(cnt == n);
    for (i = 0; i < cnt && i < n; i++) {
        X509_REVOKED *rev = sk_X509_REVOKED_value(revs, i);
        ASN1_TIME *want = ASN1_TIME_set(NULL, (time_t)times[i]);
        const ASN1_TIME *got = X509_REVOKED_get0_revocationDate(rev);
        int crit;
        UT_CHECK_MSG(want && got && ASN1_STRING_cmp(want, got) == 0
                     && ca_asn1_time_to_epoch(got) == times[i],
                     "entry %d: revocationDate of %lld", i,
                     (long long)times[i]);
        UT_CHECK_MSG(serial_eq(X509_REVOKED_get0_serialNumber(rev),
                               serials[i % ns]), "entry %d: serial", i);
        UT_CHECK(entry_reason(rev, &crit) == (i % 3 == 1 ? 1
                                              : CA_REASON_NONE));
        ASN1_TIME_free(want);
    }
}

static void crl_suite(apr_pool_t *p, const char *key_type, int cli_check)
{
    ca_t *ca = make_ca(p, key_type);
    crl_empty(p, ca, cli_check);
    crl_one(p, ca);
    crl_several(p, ca);
    crl_many(p, ca);
    crl_plain_times(p, ca);
    crl_store_check(p, ca);
    crl_bad_input(p, ca);
}

static void test_crl_ec(apr_pool_t *p)
{
    crl_suite(p, "ec", 1);
}

static void test_crl_rsa(apr_pool_t *p)
{
    crl_suite(p, "rsa:2048", 0);
}

static void test_crl_ed25519(apr_pool_t *p)
{
    crl_suite(p, "ed25519", 0);
}

/* A CA certificate with the given subjectKeyIdentifier (NULL: none). */
static ca_t *plain_ca(apr_pool_t *p, const unsigned char *ski,
                      int ski_len)
{
    ca_t *ca = apr_pcalloc(p, sizeof(*ca));
    EVP_PKEY *key = ca_pool_pkey(p, EVP_PKEY_Q_keygen(NULL, NULL, "EC",
                                                      "P-256"));
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    time_t now = time(NULL);
    int ok;

    ok = key && x && name && os
         && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       (const unsigned char *)"Plain CA",
                                       -1, -1, 0)
         && X509_set_version(x, X509_VERSION_3)
         && ASN1_INTEGER_set(X509_get_serialNumber(x), 5)
         && X509_set_subject_name(x, name) && X509_set_issuer_name(x, name)
         && ASN1_TIME_set(X509_getm_notBefore(x), now - 60)
         && ASN1_TIME_set(X509_getm_notAfter(x), now + 86400)
         && X509_set_pubkey(x, key)
         && (!ski || (ASN1_OCTET_STRING_set(os, ski, ski_len)
                      && X509_add1_ext_i2d(x, NID_subject_key_identifier,
                                           os, 0, 0) == 1))
         && X509_sign(x, key, EVP_sha256()) > 0;
    X509_NAME_free(name);
    ASN1_OCTET_STRING_free(os);
    if (!ok) {
        fprintf(stderr, "plain_ca failed\n");
        abort();
    }
    ca->cert = ca_pool_x509(p, x);
    ca->key = key;
    return ca;
}

/* The AKI keyid: the CA certificate's SKI whatever it is; without one,
 * the SHA-1 of the CA's public key bits. */
static void test_crl_aki_sources(apr_pool_t *p)
{
    static const unsigned char custom[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    ca_t *ca = plain_ca(p, NULL, 0), *ca2 = plain_ca(p, custom, 8);
    ASN1_OCTET_STRING *want = ASN1_OCTET_STRING_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    apr_int64_t now = (apr_int64_t)time(NULL);
    unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *err = NULL;
    X509_CRL *crl;

    UT_CHECK(X509_get0_subject_key_id(ca->cert) == NULL);
    UT_CHECK(want && X509_pubkey_digest(ca->cert, EVP_sha1(), md, &mdlen)
             && mdlen == 20 && ASN1_OCTET_STRING_set(want, md, (int)mdlen));
    UT_CHECK_MSG(ca_crl_build(p, ca, NULL, 9, now, now + 60, &der, &len,
                              &err) == APR_SUCCESS, "%s", err ? err : "");
    crl = parse_check(p, der, len);
    UT_CHECK(crl && aki_is(crl, want));
    UT_CHECK(crl && X509_CRL_verify(crl, ca->key) == 1);

    der = NULL;
    UT_CHECK(ASN1_OCTET_STRING_set(want, custom, 8));
    UT_CHECK(X509_get0_subject_key_id(ca2->cert) != NULL);
    UT_CHECK_MSG(ca_crl_build(p, ca2, NULL, 9, now, now + 60, &der, &len,
                              &err) == APR_SUCCESS, "%s", err ? err : "");
    crl = parse_check(p, der, len);
    UT_CHECK(crl && aki_is(crl, want));
    UT_CHECK(crl && X509_CRL_verify(crl, ca2->key) == 1);
    ASN1_OCTET_STRING_free(want);
    ERR_clear_error();
}

/* ------------------------------------------------------------------ */
/* Benchmark (CERTAUTH_CRL_BENCH=1)                                    */
/* ------------------------------------------------------------------ */

static double seconds(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_one(apr_pool_t *parent, const ca_t *ca, int n)
{
    apr_pool_t *p;
    apr_array_header_t *a;
    apr_int64_t now = (apr_int64_t)time(NULL);
    unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *err = NULL;
    double t0, t1, t2, c0, c1;
    int i;
    apr_status_t rv;
    X509_CRL *crl;

    apr_pool_create(&p, parent);
    a = apr_array_make(p, n, sizeof(ca_crl_entry_t));
    for (i = 0; i < n; i++) {
        /* 16-octet serials as ca_serial_random makes them, sorted */
        add_entry(a, apr_psprintf(p, "%02X%022X%08X", 0x11 + (i % 0x60), 0,
                                  (unsigned)i * 2654435761u),
                  now - 86400 + i % 86400,
                  i % 3 == 0 ? CA_REASON_KEY_COMPROMISE
                             : (i % 3 == 1 ? CA_REASON_NONE
                                           : CA_REASON_SUPERSEDED),
                  i % 10 == 0 ? now - 100000 : 0);
    }
    t0 = seconds(CLOCK_MONOTONIC);
    c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    rv = ca_crl_build(p, ca, a, 1, now, now + 86400, &der, &len, &err);
    c1 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    t1 = seconds(CLOCK_MONOTONIC);
    UT_CHECK_MSG(rv == APR_SUCCESS, "%s", err ? err : "");
    {
        const char *pem = ca_crl_pem(p, der, len);
        t2 = seconds(CLOCK_MONOTONIC);
        UT_CHECK(pem != NULL);
    }
    fprintf(stderr, "  bench: %d entries: ca_crl_build %.3f s (CPU %.3f s), "
            "%lu bytes DER; ca_crl_pem %.3f s\n", n, t1 - t0, c1 - c0,
            (unsigned long)len, t2 - t1);
    crl = der ? parse(p, der, len) : NULL;
    UT_CHECK(crl && X509_CRL_get_REVOKED(crl)
             && sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) == n);
    UT_CHECK(crl && X509_CRL_verify(crl, X509_get0_pubkey(ca->cert)) == 1);
    apr_pool_destroy(p);
}

static void test_crl_bench(apr_pool_t *p)
{
    ca_t *ca = make_ca(p, "ec");
    bench_one(p, ca, 100000);
    bench_one(p, ca, 1000000);
}


/* The URI of a certificate's one CRL distribution point. */
static const char *cdp_uri(apr_pool_t *p, X509 *x)
{
    CRL_DIST_POINTS *cdp = X509_get_ext_d2i(x, NID_crl_distribution_points,
                                            NULL, NULL);
    const char *out = NULL;
    if (cdp && sk_DIST_POINT_num(cdp) == 1) {
        DIST_POINT *dp = sk_DIST_POINT_value(cdp, 0);
        GENERAL_NAME *g = dp->distpoint
                              ? sk_GENERAL_NAME_value(
                                    dp->distpoint->name.fullname, 0)
                              : NULL;
        if (g && g->type == GEN_URI) {
            out = apr_pstrmemdup(p, (const char *)ASN1_STRING_get0_data(
                                        g->d.uniformResourceIdentifier),
                                 (apr_size_t)ASN1_STRING_length(
                                     g->d.uniformResourceIdentifier));
        }
    }
    CRL_DIST_POINTS_free(cdp);
    return out;
}

static const char *pem_of(apr_pool_t *p, X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n;
    const char *out;
    PEM_write_bio_X509(b, x);
    n = BIO_get_mem_data(b, &data);
    out = apr_pstrmemdup(p, data, (apr_size_t)n);
    BIO_free(b);
    return out;
}

static void put_revoked(apr_pool_t *p, ca_store_t *st, X509 *x,
                        const char *serial, const char *pem,
                        apr_int64_t now)
{
    ca_cert_row_t r;
    memset(&r, 0, sizeof(r));
    r.serial = x ? ca_serial_hex(p, X509_get0_serialNumber(x)) : serial;
    r.subject = "CN=x";
    r.owner = "x";
    r.profile = "user";
    r.not_before = now - 100;
    r.not_after = now + 86400;
    r.issued_at = now - 100;
    r.status = CA_STATUS_REVOKED;
    r.revoked_at = now - 10;
    r.reason = CA_REASON_KEY_COMPROMISE;
    r.cert_pem = x ? pem_of(p, x) : pem;
    r.replaced_by = "";
    UT_CHECK(ca_store_cert_insert(st, p, &r) == APR_SUCCESS);
}

static int lists(X509_CRL *crl, X509 *x)
{
    X509_REVOKED *rev = NULL;
    return crl && X509_CRL_get0_by_serial(crl, &rev,
                                          X509_get0_serialNumber(x)) == 1;
}

static int lists_serial(apr_pool_t *p, X509_CRL *crl, const char *hex)
{
    STACK_OF(X509_REVOKED) *revs = crl ? X509_CRL_get_REVOKED(crl) : NULL;
    int i;
    for (i = 0; i < sk_X509_REVOKED_num(revs); i++) {
        const ASN1_INTEGER *s = X509_REVOKED_get0_serialNumber(
            sk_X509_REVOKED_value(revs, i));
        if (!strcmp(ca_serial_hex(p, s), hex)) {
            return 1;
        }
    }
    return 0;
}

/* After a rollover (issue 18): the CRL distribution point of each CA
 * generation, each CA's CRL listing its own certificates (and those of an
 * unknown issuer), the previous CA's CRL made with the current one and
 * stored next to it; the issuer migration fills in the issuer of
 * certificates stored before it. */
static void test_crl_rollover(apr_pool_t *p)
{
    ca_t *old = make_ca(p, "ec"), *cur = make_ca(p, "ec");
    apr_int64_t now = (apr_int64_t)time(NULL), number = 0, n2, tu, nu;
    const char *dir = ut_tmpdir(p), *db, *err = NULL, *kid = NULL,
               *b64 = NULL, *old_kid, *cur_kid;
    X509 *xo, *xn, *xo2;
    ca_store_t *st = NULL;
    unsigned char *der = NULL;
    apr_size_t len = 0;
    int listed = 0, prev_listed = 0, v = 0;
    X509_CRL *crl_cur, *crl_old;
    raw_t *raw;
    /* a certificate without authorityKeyIdentifier: issuer unknown */
    static const char *no_aki = "not a certificate";

    old_kid = ca_cert_key_id(p, old->cert);
    cur_kid = ca_cert_key_id(p, cur->cert);
    UT_CHECK(strlen(old_kid) == 40 && strcmp(old_kid, cur_kid));
    xo = issue(p, old, "old");
    /* the rollover: cur's previous CA is old */
    cur->previous = old->cert;
    xn = issue(p, cur, "new");
    UT_CHECK(xo && xn);
    if (!xo || !xn) {
        return;
    }
    UT_CHECK(!strcmp(ca_crl_path(p, old), "/crl"));
    UT_CHECK(!strcmp(ca_crl_path(p, cur),
                     apr_pstrcat(p, "/crl/", cur_kid, NULL)));
    UT_CHECK(!strcmp(cdp_uri(p, xo), "https://ca.example/ca/crl"));
    UT_CHECK(!strcmp(cdp_uri(p, xn), apr_pstrcat(p, "https://ca.example/ca"
                                                 "/crl/", cur_kid, NULL)));
    UT_CHECK(!strcmp(ca_cert_issuer_key_id(p, xo), old_kid));
    UT_CHECK(!strcmp(ca_pem_issuer_key_id(p, pem_of(p, xn)), cur_kid));
    UT_CHECK(!strcmp(ca_pem_issuer_key_id(p, no_aki), ""));

    /* the schema before the issuer's migration (ISSUER_MIGRATION, 8, in
     * ca_store_schema.c) with a certificate of the old CA, then the
     * migrations from there: its issuer filled in from its PEM */
    db = apr_pstrcat(p, dir, "/ca.db", NULL);
    raw = raw_open(p, db);
    UT_CHECK(raw_exec(raw, "CREATE TABLE certauth_schema (version INTEGER "
                           "NOT NULL)") == 0);
    for (v = 1; v < 8; v++) {
        const char *sql;
        int i;
        for (i = 0; (sql = ca_store_migration_sql(p, "sqlite3", v, i)); i++) {
            UT_CHECK_MSG(raw_exec(raw, sql) == 0, "%d/%d: %s", v, i, sql);
        }
    }
    UT_CHECK(raw_exec(raw, apr_psprintf(p, "INSERT INTO certauth_schema "
                                        "VALUES (%d)", 8 - 1)) == 0);
    UT_CHECK(raw_exec(raw, apr_psprintf(
        p, "INSERT INTO certauth_certs (serial, subject, owner, profile, "
        "not_before, not_after, issued_at, status, revoked_at, reason, "
        "cert_pem) VALUES ('%s', 'CN=old', 'old', 'user', %" APR_INT64_T_FMT
        ", %" APR_INT64_T_FMT ", %" APR_INT64_T_FMT ", 'revoked', %"
        APR_INT64_T_FMT ", 1, '%s')",
        ca_serial_hex(p, X509_get0_serialNumber(xo)), now - 100,
        now + 86400, now - 100, now - 10, pem_of(p, xo))) == 0);
    UT_CHECK(ca_store_open(&st, p, "sqlite3", db, &err) == APR_SUCCESS);
    if (!st) {
        return;
    }
    UT_CHECK_MSG(ca_store_migrate(st, p, &v, &err) == APR_SUCCESS
                 && v == ca_store_schema_version(), "%s", err ? err : "");
    raw = raw_open(p, db);
    {
        const char *got = raw_scalar(p, raw, "SELECT issuer_kid FROM "
                                             "certauth_certs");
        UT_CHECK_MSG(got && !strcmp(got, old_kid), "%s", got ? got : "-");
    }
    /* new rows: their issuer from their PEM */
    put_revoked(p, st, xn, NULL, NULL, now);
    xo2 = issue(p, old, "old2");           /* of the old CA, still valid */
    put_revoked(p, st, NULL, "7F01", no_aki, now);
    UT_CHECK(!strcmp(raw_scalar(p, raw, apr_psprintf(
                         p, "SELECT issuer_kid FROM certauth_certs WHERE "
                         "serial = '%s'", ca_serial_hex(
                             p, X509_get0_serialNumber(xn)))), cur_kid));

    /* both CRLs in one go: the same number and dates, each its own */
    UT_CHECK_MSG(ca_crl_make2(p, cur, old, st, 7, 90, now, &number, &der,
                              &len, &listed, &prev_listed, &err)
                     == APR_SUCCESS, "%s", err ? err : "");
    UT_CHECK(number == 1 && listed == 2 && prev_listed == 2);
    crl_cur = der ? parse(p, der, len) : NULL;
    UT_CHECK(ca_store_crl_prev(st, p, &n2, &tu, &nu, &kid, &b64)
             == APR_SUCCESS);
    UT_CHECK(n2 == 1 && tu == now && nu == now + 7 * 86400
             && kid && !strcmp(kid, old_kid) && b64 && *b64);
    der = NULL;
    crl_old = b64 && ca_base64_decode(p, b64, strlen(b64), &der, &len)
                         == APR_SUCCESS ? parse(p, der, len) : NULL;
    UT_CHECK(crl_cur && crl_old);
    if (!crl_cur || !crl_old) {
        return;
    }
    UT_CHECK(X509_CRL_verify(crl_cur, X509_get0_pubkey(cur->cert)) == 1);
    UT_CHECK(X509_CRL_verify(crl_old, X509_get0_pubkey(old->cert)) == 1);
    UT_CHECK(X509_NAME_cmp(X509_CRL_get_issuer(crl_old),
                           X509_get_subject_name(old->cert)) == 0);
    UT_CHECK(lists(crl_cur, xn) && !lists(crl_cur, xo));
    UT_CHECK(lists(crl_old, xo) && !lists(crl_old, xn));
    UT_CHECK(!lists(crl_old, xo2));
    UT_CHECK(lists_serial(p, crl_cur, "7F01")
             && lists_serial(p, crl_old, "7F01"));
    UT_CHECK(verify_with_crl(old, crl_old, xo) == X509_V_ERR_CERT_REVOKED);
    UT_CHECK(verify_with_crl(old, crl_old, xo2) == X509_V_OK);
    UT_CHECK(verify_with_crl(cur, crl_cur, xn) == X509_V_ERR_CERT_REVOKED);

    /* without the previous CA (certauth-admin gencrl): none stored, so
     * the server makes a pair again */
    UT_CHECK(ca_crl_make(p, cur, st, 7, 90, now + 1, &number, &der, &len,
                         &listed, &err) == APR_SUCCESS && number == 2);
    UT_CHECK(ca_store_crl_prev(st, p, &n2, &tu, &nu, &kid, NULL)
             == APR_SUCCESS && n2 == 2 && !strcmp(kid, ""));
}

int main(void)
{
    const char *bench = getenv("CERTAUTH_CRL_BENCH");

    UT_RUN(test_reason_names);
    UT_RUN(test_crl_ec);
    UT_RUN(test_crl_rsa);
    UT_RUN(test_crl_ed25519);
    UT_RUN(test_crl_aki_sources);
    UT_RUN(test_crl_rollover);
    if (bench && !strcmp(bench, "1")) {
        UT_RUN(test_crl_bench);
    }
    return ut_finish();
}
