/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_crl: RFC 5280 version 2 CRLs.
 *
 * Everything is built as structures (no configuration-string parser).  The
 * entries are written in the order given (no X509_CRL_sort): the store hands
 * them over sorted by serial already, and X509_CRL_add0_revoked only pushes
 * onto the stack (O(1)), so a CRL of n entries costs O(n).  Scratch objects
 * (BIGNUM, serial, times, reason) are reused for every entry; nothing is
 * allocated from the pool per entry. */

#include <string.h>
#include <strings.h>
#include <time.h>

#include <apr_strings.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_crl.h"
#include "ca_log.h"
#include "ca_util.h"

/* Longest serial text accepted (leading zeros included); at most 40
 * significant hex digits (20 octets, RFC 5280 4.1.2.2). */
#define CA_CRL_MAX_SERIAL_TEXT 64

/* ------------------------------------------------------------------ */
/* Reason codes                                                        */
/* ------------------------------------------------------------------ */

static const char *const reason_names[] = {
    "unspecified",          /* 0 */
    "keyCompromise",        /* 1 */
    "cACompromise",         /* 2 */
    "affiliationChanged",   /* 3 */
    "superseded",           /* 4 */
    "cessationOfOperation", /* 5 */
    "certificateHold",      /* 6 */
    NULL,                   /* 7: not used */
    "removeFromCRL",        /* 8 */
    "privilegeWithdrawn",   /* 9 */
    "aACompromise",         /* 10 */
};
#define N_REASONS ((int)(sizeof(reason_names) / sizeof(reason_names[0])))

const char *ca_reason_name(int reason)
{
    if (reason < 0 || reason >= N_REASONS) {
        return NULL;
    }
    return reason_names[reason];
}

/* A reason a full CRL may carry: 0..6, 9, 10. */
static int reason_usable(int reason)
{
    return reason >= 0 && reason < N_REASONS && reason_names[reason]
           && reason != CA_REASON_REMOVE_FROM_CRL;
}

int ca_reason_code(const char *name)
{
    int i, code = 0;
    const char *c;

    if (!name || !*name) {
        return -2;
    }
    if (name[0] >= '0' && name[0] <= '9') {
        for (c = name; *c; c++) {
            if (*c < '0' || *c > '9' || c - name >= 3) {
                return -2;
            }
            code = code * 10 + (*c - '0');
        }
        return reason_usable(code) ? code : -2;
    }
    for (i = 0; i < N_REASONS; i++) {
        if (reason_names[i] && !strcasecmp(name, reason_names[i])) {
            return reason_usable(i) ? i : -2;
        }
    }
    return -2;
}

/* ------------------------------------------------------------------ */
/* Building                                                            */
/* ------------------------------------------------------------------ */

/* Printable, bounded copy of untrusted text for an error message. */
static const char *printable(apr_pool_t *p, const char *s)
{
    apr_size_t n, i, max = 64;
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
        unsigned char ch = (unsigned char)s[i];
        out[i] = (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '"'
                  && ch != '\\') ? (char)ch : '?';
    }
    if (n < strlen(s)) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/* A serial as stored: hex digits only (any case), positive, at most 20
 * octets.  Sets bn; 0 when malformed. */
static int serial_parse(const char *s, BIGNUM **bn)
{
    const char *c, *sig = NULL;

    if (!s || !*s) {
        return 0;
    }
    for (c = s; *c; c++) {
        char ch = *c;
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')
              || (ch >= 'A' && ch <= 'F'))) {
            return 0;
        }
        if (!sig && ch != '0') {
            sig = c;
        }
        if (c - s >= CA_CRL_MAX_SERIAL_TEXT) {
            return 0;
        }
    }
    if (!sig || c - sig > 40) {
        return 0; /* zero, or more than 20 octets */
    }
    return BN_hex2bn(bn, sig) == (int)(c - sig);
}

/* SHA-1 of the subjectPublicKey BIT STRING (RFC 5280 4.2.1.2 method 1). */
static ASN1_OCTET_STRING *key_id(X509 *x)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ASN1_OCTET_STRING *os;

    if (!X509_pubkey_digest(x, EVP_sha1(), md, &mdlen)) {
        return NULL;
    }
    os = ASN1_OCTET_STRING_new();
    if (os && !ASN1_OCTET_STRING_set(os, md, (int)mdlen)) {
        ASN1_OCTET_STRING_free(os);
        os = NULL;
    }
    return os;
}

/* crlNumber and authorityKeyIdentifier (both non-critical). */
static int add_crl_exts(X509_CRL *crl, X509 *cacert, apr_int64_t number)
{
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    const ASN1_OCTET_STRING *ski;
    int ok;

    ok = num && akid && ASN1_INTEGER_set_int64(num, (int64_t)number)
         && X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) == 1;
    if (ok) {
        ski = X509_get0_subject_key_id(cacert);
        akid->keyid = ski ? ASN1_OCTET_STRING_dup(ski) : key_id(cacert);
        ok = akid->keyid
             && X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier,
                                      akid, 0, 0) == 1;
    }
    ASN1_INTEGER_free(num);
    AUTHORITY_KEYID_free(akid);
    return ok;
}

/* Objects reused for every entry. */
typedef struct scratch_t {
    BIGNUM *bn;
    ASN1_INTEGER *serial;
    ASN1_TIME *date;          /* revocationDate                        */
    apr_int64_t date_of;      /* the time it holds, when date_set      */
    int date_set;
    ASN1_GENERALIZEDTIME *inv;
    ASN1_ENUMERATED *reason;
} scratch_t;


/* One entry onto crl.  APR_SUCCESS, CA_EBADINPUT (*err set) or CA_ECRYPTO. */
static apr_status_t add_entry(apr_pool_t *p, X509_CRL *crl, scratch_t *s,
                              const ca_crl_entry_t *e, int idx,
                              const char **err)
{
    X509_REVOKED *rev;

    if (!serial_parse(e->serial, &s->bn)) {
        ERR_clear_error();
        *err = apr_psprintf(p, "CRL entry %d: bad serial '%s' (hex, "
                            "positive, at most 20 octets)", idx,
                            printable(p, e->serial));
        return CA_EBADINPUT;
    }
    if (e->reason != CA_REASON_NONE && !reason_usable(e->reason)) {
        *err = apr_psprintf(p, "CRL entry %d (serial %s): reason %d cannot "
                            "be used in a CRL", idx, printable(p, e->serial),
                            e->reason);
        return CA_EBADINPUT;
    }
    /* consecutive entries often share their revocation time */
    if (!s->date_set || s->date_of != e->revoked_at) {
        s->date_set = 0;
        if (!ASN1_TIME_set(s->date, (time_t)e->revoked_at)) {
            ERR_clear_error();
            *err = apr_psprintf(p, "CRL entry %d (serial %s): revocation "
                                "time %" APR_INT64_T_FMT " is out of range",
                                idx, printable(p, e->serial), e->revoked_at);
            return CA_EBADINPUT;
        }
        s->date_of = e->revoked_at;
        s->date_set = 1;
    }
    if (e->invalidity_at < 0
        || (e->invalidity_at > 0
            && !ASN1_GENERALIZEDTIME_set(s->inv, (time_t)e->invalidity_at))) {
        ERR_clear_error();
        *err = apr_psprintf(p, "CRL entry %d (serial %s): invalidity date %"
                            APR_INT64_T_FMT " is out of range", idx,
                            printable(p, e->serial), e->invalidity_at);
        return CA_EBADINPUT;
    }
    if (!BN_to_ASN1_INTEGER(s->bn, s->serial)) {
        return CA_ECRYPTO;
    }
    rev = X509_REVOKED_new();
    if (!rev
        || !X509_REVOKED_set_serialNumber(rev, s->serial)
        || !X509_REVOKED_set_revocationDate(rev, s->date)
        /* unspecified (0) is written as no reasonCode (RFC 5280 5.3.1) */
        || (e->reason > 0
            && (!ASN1_ENUMERATED_set(s->reason, e->reason)
                || X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, s->reason,
                                             0, 0) != 1))
        || (e->invalidity_at > 0
            && X509_REVOKED_add1_ext_i2d(rev, NID_invalidity_date, s->inv,
                                         0, 0) != 1)
        || !X509_CRL_add0_revoked(crl, rev)) {
        X509_REVOKED_free(rev);
        return CA_ECRYPTO;
    }
    return APR_SUCCESS;
}

apr_status_t ca_crl_build(apr_pool_t *p, const ca_t *ca,
                          const apr_array_header_t *entries,
                          apr_int64_t number, apr_int64_t this_update,
                          apr_int64_t next_update, unsigned char **der,
                          apr_size_t *der_len, const char **err)
{
    X509_CRL *crl = NULL;
    ASN1_TIME *tm = NULL;
    scratch_t s;
    apr_status_t rv = CA_ECRYPTO;
    unsigned char *buf, *q;
    int i, n, len;

    *der = NULL;
    *der_len = 0;
    *err = NULL;
    memset(&s, 0, sizeof(s));
    if (!ca || !ca->cert || !ca->key) {
        *err = "no CA certificate and key to sign the CRL with";
        return CA_EBADINPUT;
    }
    if (entries && entries->elt_size != (int)sizeof(ca_crl_entry_t)) {
        *err = "CRL entries of the wrong type";
        return CA_EBADINPUT;
    }
    if (number < 0) {
        *err = apr_psprintf(p, "CRL number %" APR_INT64_T_FMT " is negative",
                            number);
        return CA_EBADINPUT;
    }
    if (next_update < this_update) {
        *err = "the CRL's nextUpdate is before its thisUpdate";
        return CA_EBADINPUT;
    }
    n = entries ? entries->nelts : 0;

    if (!(crl = X509_CRL_new())
        || !X509_CRL_set_version(crl, X509_CRL_VERSION_2)
        || !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert))
        || !(tm = ASN1_TIME_new())) {
        *err = "cannot set up the CRL";
        goto leave;
    }
    if (!ASN1_TIME_set(tm, (time_t)this_update)
        || !X509_CRL_set1_lastUpdate(crl, tm)
        || !ASN1_TIME_set(tm, (time_t)next_update)
        || !X509_CRL_set1_nextUpdate(crl, tm)) {
        *err = "the CRL's thisUpdate or nextUpdate is out of range";
        rv = CA_EBADINPUT;
        goto leave;
    }

    if (n > 0) {
        if (!(s.bn = BN_new()) || !(s.serial = ASN1_INTEGER_new())
            || !(s.date = ASN1_TIME_new())
            || !(s.inv = ASN1_GENERALIZEDTIME_new())
            || !(s.reason = ASN1_ENUMERATED_new())) {
            *err = "out of memory";
            goto leave;
        }
        for (i = 0; i < n; i++) {
            const ca_crl_entry_t *e = &APR_ARRAY_IDX(entries, i,
                                                     ca_crl_entry_t);
            rv = add_entry(p, crl, &s, e, i, err);
            if (rv != APR_SUCCESS) {
                if (!*err) {
                    *err = apr_psprintf(p, "cannot add CRL entry %d: %s", i,
                                        ca_log_ssl_errors(p));
                }
                goto leave;
            }
        }
        rv = CA_ECRYPTO;
    }
    /* Without entries the revokedCertificates field stays absent (the stack
     * is never created), as RFC 5280 5.1.2.6 asks. */

    if (!add_crl_exts(crl, ca->cert, number)) {
        *err = apr_psprintf(p, "cannot add the CRL extensions: %s",
                            ca_log_ssl_errors(p));
        goto leave;
    }
    if (X509_CRL_sign(crl, ca->key, ca_sign_md(ca->key)) <= 0) {
        *err = apr_psprintf(p, "signing the CRL failed: %s",
                            ca_log_ssl_errors(p));
        goto leave;
    }
    len = i2d_X509_CRL(crl, NULL);
    if (len <= 0) {
        *err = apr_psprintf(p, "cannot encode the CRL: %s",
                            ca_log_ssl_errors(p));
        goto leave;
    }
    buf = apr_palloc(p, (apr_size_t)len);
    q = buf;
    if (i2d_X509_CRL(crl, &q) != len) {
        *err = apr_psprintf(p, "cannot encode the CRL: %s",
                            ca_log_ssl_errors(p));
        goto leave;
    }
    *der = buf;
    *der_len = (apr_size_t)len;
    rv = APR_SUCCESS;

leave:
    X509_CRL_free(crl);
    ASN1_TIME_free(tm);
    BN_free(s.bn);
    ASN1_INTEGER_free(s.serial);
    ASN1_TIME_free(s.date);
    ASN1_GENERALIZEDTIME_free(s.inv);
    ASN1_ENUMERATED_free(s.reason);
    ERR_clear_error();
    return rv;
}

const char *ca_crl_pem(apr_pool_t *p, const unsigned char *der,
                       apr_size_t len)
{
    if (!der || len == 0) {
        return NULL;
    }
    return apr_pstrcat(p, "-----BEGIN X509 CRL-----\n",
                       ca_base64_encode(p, der, len, 0),
                       "-----END X509 CRL-----\n", NULL);
}
