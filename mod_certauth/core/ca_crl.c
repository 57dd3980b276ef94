/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_crl: RFC 5280 version 2 CRLs.
 *
 * Everything is built with OpenSSL structures and encoders (no configuration
 * string parser, no hand-written DER).  For speed with large CRLs the
 * entries are not kept as X509_REVOKED objects in the X509_CRL: a million
 * retained entries cost ten allocations each, and OpenSSL encodes the whole
 * TBSCertList twice (in X509_CRL_sign and again in i2d_X509_CRL), which took
 * 3-4 s for 1,000,000 entries here.  Instead:
 *   1. the X509_CRL "frame" (version, issuer, times, crlNumber, AKI) is built
 *      and signed with X509_CRL_sign, which sets the signature algorithm
 *      identifiers; i2d_re_X509_CRL_tbs gives its TBSCertList;
 *   2. each entry is encoded by i2d_X509_REVOKED from reused scratch objects
 *      (one per reason code / invalidity-date shape), in the given order (no
 *      sorting: the store hands them over by serial), straight into the
 *      output buffer;
 *   3. the revokedCertificates SEQUENCE is put between nextUpdate and the
 *      crlExtensions of the frame (headers by ASN1_put_object, the frame
 *      walked with ASN1_get_object), the TBSCertList is signed once with
 *      EVP_DigestSign and wrapped with the algorithm (i2d_X509_ALGOR) and the
 *      signature BIT STRING.
 * The cost is O(n): one output buffer, sized for 64 octets an entry and
 * grown by realloc only when the entries are larger.  It is malloc'ed and
 * freed by a cleanup of the caller's pool, so *der lives exactly as long as
 * pool memory would.  An empty list gives no revokedCertificates field at
 * all. */

#include <string.h>
#include <strings.h>
#include <time.h>

#include <apr_strings.h>

#include <openssl/asn1.h>
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

/* Upper bound of one encoded entry: SEQUENCE { INTEGER (<= 23 octets with
 * its header), Time (<= 17), extensions (2 + reasonCode 12 + invalidityDate
 * 26) } is at most 82 octets. */
#define CA_CRL_ENTRY_MAX 160

/* Room for one DER header (tag, 0x84, four length octets). */
#define CA_CRL_HDR_MAX 6

/* The whole CRL must stay below 2 GB (OpenSSL lengths are ints). */
#define CA_CRL_MAX_DER ((apr_size_t)0x7fff0000)

/* Times written: from the epoch to 9999-12-31T23:59:59Z.  ASN1_TIME_set of
 * OpenSSL 3.0 checks no range and would encode later years as garbage. */
#define CA_CRL_MAX_TIME ((apr_int64_t)253402300799LL)

static int time_ok(apr_int64_t t)
{
    return t >= 0 && t <= CA_CRL_MAX_TIME;
}

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

/* Hex digit values plus one, 0 for other characters: one lookup per
 * character (a large CRL parses 1,000,000 serials of 32 digits). */
static const unsigned char hex1[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5,
    ['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
    ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};
#define HEXV(ch) (hex1[(unsigned char)(ch)] - 1)

/* A serial as stored: hex digits only (any case), positive, at most 20
 * octets.  Its magnitude without leading zero octets goes to out[20];
 * returns the number of octets, 0 when malformed. */
static int serial_parse(const char *s, unsigned char *out)
{
    const unsigned char *c, *sig = NULL;
    apr_size_t digits;
    int n = 0, bad = 0;

    if (!s || !*s) {
        return 0;
    }
    for (c = (const unsigned char *)s; *c; c++) {
        bad |= !hex1[*c];
        if (!sig && *c != '0') {
            sig = c;
        }
    }
    if (bad || c - (const unsigned char *)s > CA_CRL_MAX_SERIAL_TEXT) {
        return 0;
    }
    if (!sig) {
        return 0; /* zero is not a serial */
    }
    digits = (apr_size_t)(c - sig);
    if (digits > 40) {
        return 0;
    }
    c = sig;
    if (digits & 1) {
        out[n++] = (unsigned char)HEXV(*c);
        c++;
    }
    for (; *c; c += 2) {
        out[n++] = (unsigned char)((HEXV(c[0]) << 4) | HEXV(c[1]));
    }
    return n;
}

/* crlNumber and authorityKeyIdentifier (both non-critical). */
static int add_crl_exts(X509_CRL *crl, X509 *cacert, apr_int64_t number)
{
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    int ok;

    ok = num && akid && ASN1_INTEGER_set_int64(num, (int64_t)number)
         && X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) == 1;
    if (ok) {
        akid->keyid = ca_key_id_of(cacert);
        ok = akid->keyid
             && X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier,
                                      akid, 0, 0) == 1;
    }
    ASN1_INTEGER_free(num);
    AUTHORITY_KEYID_free(akid);
    return ok;
}


/* ------------------------------------------------------------------ */
/* Entries                                                             */
/* ------------------------------------------------------------------ */

/* Objects reused for every entry: one X509_REVOKED per shape (reason code,
 * 0 for none; with or without invalidityDate), made when first needed. */
typedef struct scratch_t {
    X509_REVOKED *rev[N_REASONS][2];
    apr_int64_t rev_date[N_REASONS][2]; /* revocationDate it holds     */
    int rev_date_set[N_REASONS][2];
    ASN1_INTEGER *serial;
    ASN1_TIME *date;                    /* revocationDate              */
    apr_int64_t date_of;                /* the time it holds, when set */
    int date_set;
    ASN1_GENERALIZEDTIME *inv;          /* invalidityDate              */
    ASN1_OCTET_STRING *inv_der;         /* its DER, extension value    */
    ASN1_ENUMERATED *reason;
    /* entries without an invalidity date (most): assembled from encoded
     * parts, with no X509_REVOKED encoded per entry (it was most of the
     * time of a large CRL): the crlEntryExtensions of each reason, encoded
     * once from the scratch entry, and the last revocationDate */
    unsigned char *ext_der[N_REASONS];
    int ext_len[N_REASONS];             /* -1: not encoded yet        */
    unsigned char date_der[32];
    int date_len;                       /* 0: none yet                */
    int date_patchable;                 /* its time of day can be set */
    apr_int64_t date_der_of;
} scratch_t;

static int scratch_init(scratch_t *s)
{
    int i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < N_REASONS; i++) {
        s->ext_len[i] = -1;
    }
    return (s->serial = ASN1_INTEGER_new()) && (s->date = ASN1_TIME_new())
           && (s->inv = ASN1_GENERALIZEDTIME_new())
           && (s->inv_der = ASN1_OCTET_STRING_new())
           && (s->reason = ASN1_ENUMERATED_new());
}

static void scratch_free(scratch_t *s)
{
    int i, j;
    for (i = 0; i < N_REASONS; i++) {
        for (j = 0; j < 2; j++) {
            X509_REVOKED_free(s->rev[i][j]);
        }
    }
    ASN1_INTEGER_free(s->serial);
    ASN1_TIME_free(s->date);
    for (i = 0; i < N_REASONS; i++) {
        OPENSSL_free(s->ext_der[i]);
    }
    ASN1_GENERALIZEDTIME_free(s->inv);
    ASN1_OCTET_STRING_free(s->inv_der);
    ASN1_ENUMERATED_free(s->reason);
}

/* The scratch entry of a shape; s->inv holds the current invalidity date
 * when inv.  NULL on failure. */
static X509_REVOKED *scratch_rev(scratch_t *s, int reason, int inv)
{
    X509_REVOKED *rev = s->rev[reason][inv];

    if (!rev) {
        rev = X509_REVOKED_new();
        /* reasonCode first, then invalidityDate */
        if (!rev
            || (reason > 0
                && (!ASN1_ENUMERATED_set(s->reason, reason)
                    || X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason,
                                                 s->reason, 0, 0) != 1))
            || (inv && X509_REVOKED_add1_ext_i2d(rev, NID_invalidity_date,
                                                 s->inv, 0, 0) != 1)) {
            X509_REVOKED_free(rev);
            return NULL;
        }
        s->rev[reason][inv] = rev;
    }
    else if (inv) {
        unsigned char der[64], *q = der;
        int loc = X509_REVOKED_get_ext_by_NID(rev, NID_invalidity_date, -1);
        int len = i2d_ASN1_GENERALIZEDTIME(s->inv, NULL);
        if (loc < 0 || len <= 0 || len > (int)sizeof(der)
            || i2d_ASN1_GENERALIZEDTIME(s->inv, &q) != len
            || !ASN1_OCTET_STRING_set(s->inv_der, der, len)
            || !X509_EXTENSION_set_data(X509_REVOKED_get_ext(rev, loc),
                                        s->inv_der)) {
            return NULL;
        }
    }
    return rev;
}

/* An entry without invalidityDate: SEQUENCE { serialNumber,
 * revocationDate, crlEntryExtensions (the reasonCode) OPTIONAL } made of its
 * parts encoded by OpenSSL (the same octets as i2d_X509_REVOKED, which the
 * unit tests check against OpenSSL's own encoding of the parsed CRL). */
static apr_status_t put_plain(scratch_t *s, const unsigned char *sn,
                              int snlen, int reason, apr_int64_t revoked_at,
                              unsigned char **w)
{
    int ilen, content;
    unsigned char *q;

    if (s->ext_len[reason] < 0) {
        X509_REVOKED *rev = reason > 0 ? scratch_rev(s, reason, 0) : NULL;
        const STACK_OF(X509_EXTENSION) *exts;
        if (reason > 0 && !rev) {
            return CA_ECRYPTO;
        }
        exts = rev ? X509_REVOKED_get0_extensions(rev) : NULL;
        if (exts && sk_X509_EXTENSION_num(exts) > 0) {
            s->ext_len[reason] = i2d_X509_EXTENSIONS(
                (X509_EXTENSIONS *)exts, &s->ext_der[reason]);
            if (s->ext_len[reason] <= 0) {
                s->ext_len[reason] = -1;
                return CA_ECRYPTO;
            }
        }
        else {
            s->ext_len[reason] = 0;
        }
    }
    if (s->date_len && s->date_der_of != revoked_at && s->date_patchable
        && revoked_at >= 0 && s->date_der_of >= 0
        && revoked_at / 86400 == s->date_der_of / 86400) {
        /* the same day: only the time of day differs, and it is the last
         * six digits before the 'Z' in both UTCTime and GeneralizedTime
         * (the switch between them is at midnight, 2050-01-01); OpenSSL's
         * ASN1_TIME_set formats every time with BIO_snprintf, which was a
         * sixth of the time of a 1,000,000-entry CRL */
        int sec = (int)(revoked_at % 86400);
        unsigned char *d = s->date_der + s->date_len - 7;
        d[0] = (unsigned char)('0' + sec / 36000);
        d[1] = (unsigned char)('0' + sec / 3600 % 10);
        d[2] = (unsigned char)('0' + sec % 3600 / 600);
        d[3] = (unsigned char)('0' + sec % 600 / 60);
        d[4] = (unsigned char)('0' + sec % 60 / 10);
        d[5] = (unsigned char)('0' + sec % 10);
        s->date_der_of = revoked_at;
    }
    if (!s->date_len || s->date_der_of != revoked_at) {
        int i;
        q = s->date_der;
        s->date_len = 0;
        if (!ASN1_TIME_set(s->date, (time_t)revoked_at)
            || i2d_ASN1_TIME(s->date, NULL) > (int)sizeof(s->date_der)
            || (s->date_len = i2d_ASN1_TIME(s->date, &q)) <= 0) {
            s->date_len = 0;
            return CA_ECRYPTO;
        }
        s->date_der_of = revoked_at;
        s->date_set = 0; /* s->date no longer holds date_of */
        /* patchable when it ends as expected: HHMMSSZ */
        s->date_patchable = s->date_len >= 2 + 7
                            && s->date_der[s->date_len - 1] == 'Z';
        for (i = 2; i <= 7 && s->date_patchable; i++) {
            unsigned char ch = s->date_der[s->date_len - i];
            s->date_patchable = ch >= '0' && ch <= '9';
        }
    }
    if (!ASN1_STRING_set(s->serial, sn, snlen)
        || (ilen = i2d_ASN1_INTEGER(s->serial, NULL)) <= 0) {
        return CA_ECRYPTO;
    }
    content = ilen + s->date_len + s->ext_len[reason];
    if (ASN1_object_size(1, content, V_ASN1_SEQUENCE) > CA_CRL_ENTRY_MAX) {
        return CA_ECRYPTO; /* the bound is exact; never happens */
    }
    ASN1_put_object(w, 1, content, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    if (i2d_ASN1_INTEGER(s->serial, w) != ilen) {
        return CA_ECRYPTO;
    }
    memcpy(*w, s->date_der, (size_t)s->date_len);
    *w += s->date_len;
    if (s->ext_len[reason] > 0) {
        memcpy(*w, s->ext_der[reason], (size_t)s->ext_len[reason]);
        *w += s->ext_len[reason];
    }
    return APR_SUCCESS;
}

/* Encode one entry at *w (at least CA_CRL_ENTRY_MAX octets of room) and
 * advance it.  APR_SUCCESS, CA_EBADINPUT (*err set) or CA_ECRYPTO. */
static apr_status_t put_entry(apr_pool_t *p, scratch_t *s,
                              const ca_crl_entry_t *e, int idx,
                              unsigned char **w, const char **err)
{
    unsigned char sn[20];
    X509_REVOKED *rev;
    int snlen, reason, inv, len;

    if (!(snlen = serial_parse(e->serial, sn))) {
        *err = apr_psprintf(p, "CRL entry %d: bad serial '%s' (hex, "
                            "positive, at most 20 octets)", idx,
                            ca_printable(p, e->serial, 64));
        return CA_EBADINPUT;
    }
    if (e->reason != CA_REASON_NONE && !reason_usable(e->reason)) {
        *err = apr_psprintf(p, "CRL entry %d (serial %s): reason %d cannot "
                            "be used in a CRL", idx,
                            ca_printable(p, e->serial, 64),
                            e->reason);
        return CA_EBADINPUT;
    }
    if (!time_ok(e->revoked_at)) {
        *err = apr_psprintf(p, "CRL entry %d (serial %s): revocation time %"
                            APR_INT64_T_FMT " is out of range", idx,
                            ca_printable(p, e->serial, 64), e->revoked_at);
        return CA_EBADINPUT;
    }
    if (!time_ok(e->invalidity_at)) {
        *err = apr_psprintf(p, "CRL entry %d (serial %s): invalidity date %"
                            APR_INT64_T_FMT " is out of range", idx,
                            ca_printable(p, e->serial, 64), e->invalidity_at);
        return CA_EBADINPUT;
    }
    /* unspecified (0) is written as no reasonCode (RFC 5280 5.3.1) */
    reason = e->reason > 0 ? e->reason : 0;
    inv = e->invalidity_at > 0;
    if (!inv) {
        return put_plain(s, sn, snlen, reason, e->revoked_at, w);
    }
    if (inv && !ASN1_GENERALIZEDTIME_set(s->inv, (time_t)e->invalidity_at)) {
        return CA_ECRYPTO;
    }
    if (!(rev = scratch_rev(s, reason, inv))
        || !ASN1_STRING_set(s->serial, sn, snlen)
        || !X509_REVOKED_set_serialNumber(rev, s->serial)) {
        return CA_ECRYPTO;
    }
    /* consecutive entries often share their revocation time */
    if (!s->date_set || s->date_of != e->revoked_at) {
        s->date_set = 0;
        if (!ASN1_TIME_set(s->date, (time_t)e->revoked_at)) {
            return CA_ECRYPTO;
        }
        s->date_of = e->revoked_at;
        s->date_set = 1;
    }
    if (!s->rev_date_set[reason][inv]
        || s->rev_date[reason][inv] != e->revoked_at) {
        s->rev_date_set[reason][inv] = 0;
        if (!X509_REVOKED_set_revocationDate(rev, s->date)) {
            return CA_ECRYPTO;
        }
        s->rev_date[reason][inv] = e->revoked_at;
        s->rev_date_set[reason][inv] = 1;
    }
    len = i2d_X509_REVOKED(rev, w);
    if (len <= 0 || len > CA_CRL_ENTRY_MAX) {
        return CA_ECRYPTO; /* the bound above is exact; never happens */
    }
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Building                                                            */
/* ------------------------------------------------------------------ */

/* Split the TBSCertList of the frame: its content, and the length of the
 * part before the place of revokedCertificates (after version, signature,
 * issuer, thisUpdate, nextUpdate; before the [0] crlExtensions). */
static int frame_split(const unsigned char *frame, long flen,
                       const unsigned char **content, long *clen,
                       long *prefix)
{
    const unsigned char *q = frame, *c, *end, *e;
    long len;
    int tag, xclass, r, i;

    r = ASN1_get_object(&q, &len, &tag, &xclass, flen);
    if (r != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE
        || xclass != V_ASN1_UNIVERSAL || q + len != frame + flen) {
        return 0;
    }
    c = q;
    end = q + len;
    for (i = 0; i < 5; i++) {
        r = ASN1_get_object(&q, &len, &tag, &xclass, end - q);
        if ((r & 0x80) || (r & 0x01) || q + len > end) {
            return 0;
        }
        q += len;
    }
    if (q < end) {
        e = q;
        r = ASN1_get_object(&e, &len, &tag, &xclass, end - q);
        if (r != V_ASN1_CONSTRUCTED || tag != 0
            || xclass != V_ASN1_CONTEXT_SPECIFIC || e + len != end) {
            return 0;
        }
    }
    *content = c;
    *clen = end - c;
    *prefix = q - c;
    return 1;
}

/* Length of a DER header for `len` octets of content. */
static apr_size_t hdr_len(apr_size_t len, int tag)
{
    return (apr_size_t)ASN1_object_size(0, (int)len, tag) - len;
}

static apr_status_t buf_free(void *b)
{
    free(b);
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
    EVP_MD_CTX *mctx = NULL;
    const X509_ALGOR *alg = NULL;
    const ASN1_BIT_STRING *frame_sig = NULL;
    unsigned char *frame = NULL, *buf = NULL, *sig = NULL, *w;
    const unsigned char *content;
    long flen, clen, prefix;
    apr_size_t head, tail, cap, used, elen, rh = 0, th, oh, tbs, tbs_len;
    apr_size_t siglen = 0, sigmax, alg_len, bits_max;
    scratch_t s;
    int scratch = 0, i, n;
    apr_status_t rv = CA_ECRYPTO;

    *der = NULL;
    *der_len = 0;
    *err = NULL;
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
    if (!time_ok(this_update) || !time_ok(next_update)) {
        *err = "the CRL's thisUpdate or nextUpdate is out of range";
        return CA_EBADINPUT;
    }
    if (next_update < this_update) {
        *err = "the CRL's nextUpdate is before its thisUpdate";
        return CA_EBADINPUT;
    }
    n = entries ? entries->nelts : 0;

    /* 1. The frame, signed by OpenSSL to set the algorithm identifiers. */
    if (!(crl = X509_CRL_new())
        || !X509_CRL_set_version(crl, X509_CRL_VERSION_2)
        || !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert))
        || !(tm = ASN1_TIME_new())
        || !ASN1_TIME_set(tm, (time_t)this_update)
        || !X509_CRL_set1_lastUpdate(crl, tm)
        || !ASN1_TIME_set(tm, (time_t)next_update)
        || !X509_CRL_set1_nextUpdate(crl, tm)) {
        *err = apr_psprintf(p, "cannot set up the CRL: %s",
                            ca_log_ssl_errors(p));
        goto leave;
    }
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
    X509_CRL_get0_signature(crl, &frame_sig, &alg);
    flen = i2d_re_X509_CRL_tbs(crl, &frame);
    alg_len = alg ? (apr_size_t)i2d_X509_ALGOR(alg, NULL) : 0;
    sigmax = (apr_size_t)EVP_PKEY_get_size(ca->key);
    if (flen <= 0 || !frame || !alg || (int)alg_len <= 0 || sigmax == 0
        || sigmax > 65536
        || !frame_split(frame, flen, &content, &clen, &prefix)) {
        *err = apr_psprintf(p, "cannot encode the CRL: %s",
                            ca_log_ssl_errors(p));
        goto leave;
    }

    /* 2. One buffer: room for the headers and the part of the frame before
     * the entries, the entries, then the rest of the frame, the algorithm
     * and the signature BIT STRING. */
    bits_max = CA_CRL_HDR_MAX + 1 + sigmax;
    head = 3 * CA_CRL_HDR_MAX + (apr_size_t)prefix;
    tail = (apr_size_t)(clen - prefix) + alg_len + bits_max;
    cap = head + tail + CA_CRL_ENTRY_MAX + (apr_size_t)n * 64;
    if (cap > CA_CRL_MAX_DER + CA_CRL_ENTRY_MAX) {
        cap = CA_CRL_MAX_DER + CA_CRL_ENTRY_MAX;
    }
    if (!(buf = malloc(cap))) {
        *err = "out of memory for the CRL";
        goto leave;
    }
    used = head;
    if (n > 0) {
        if (!scratch_init(&s)) {
            scratch = 1;
            *err = "out of memory";
            goto leave;
        }
        scratch = 1;
        for (i = 0; i < n; i++) {
            const ca_crl_entry_t *e = &APR_ARRAY_IDX(entries, i,
                                                     ca_crl_entry_t);
            if (cap - used < CA_CRL_ENTRY_MAX + tail) {
                apr_size_t ncap = cap + cap / 2;
                unsigned char *nbuf;
                if (ncap > CA_CRL_MAX_DER + CA_CRL_ENTRY_MAX) {
                    ncap = CA_CRL_MAX_DER + CA_CRL_ENTRY_MAX;
                }
                if (ncap - used < CA_CRL_ENTRY_MAX + tail) {
                    *err = apr_psprintf(p, "too many CRL entries (%d) for "
                                        "one CRL", n);
                    rv = CA_EBADINPUT;
                    goto leave;
                }
                if (!(nbuf = realloc(buf, ncap))) {
                    *err = "out of memory for the CRL";
                    goto leave;
                }
                buf = nbuf;
                cap = ncap;
            }
            w = buf + used;
            rv = put_entry(p, &s, e, i, &w, err);
            if (rv != APR_SUCCESS) {
                if (!*err) {
                    *err = apr_psprintf(p, "cannot encode CRL entry %d: %s",
                                        i, ca_log_ssl_errors(p));
                }
                goto leave;
            }
            used = (apr_size_t)(w - buf);
        }
        rv = CA_ECRYPTO;
    }
    elen = used - head;
    if (head + elen + tail > CA_CRL_MAX_DER) {
        *err = apr_psprintf(p, "too many CRL entries (%d) for one CRL", n);
        rv = CA_EBADINPUT;
        goto leave;
    }

    /* 3. The TBSCertList around the entries; no revokedCertificates field
     * at all without entries (RFC 5280 5.1.2.6). */
    memcpy(buf + used, content + prefix, (apr_size_t)(clen - prefix));
    used += (apr_size_t)(clen - prefix);
    tbs = head;
    if (n > 0) {
        rh = hdr_len(elen, V_ASN1_SEQUENCE);
        tbs -= rh;
        w = buf + tbs;
        ASN1_put_object(&w, 1, (int)elen, V_ASN1_SEQUENCE,
                        V_ASN1_UNIVERSAL);
    }
    tbs -= (apr_size_t)prefix;
    memcpy(buf + tbs, content, (apr_size_t)prefix);
    tbs_len = (apr_size_t)clen + (n > 0 ? rh + elen : 0);
    th = hdr_len(tbs_len, V_ASN1_SEQUENCE);
    tbs -= th;
    w = buf + tbs;
    ASN1_put_object(&w, 1, (int)tbs_len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    tbs_len += th;

    /* 4. Sign it once, as X509_CRL_sign does (same key, same digest). */
    if (!(mctx = EVP_MD_CTX_new())
        || EVP_DigestSignInit(mctx, NULL, ca_sign_md(ca->key), NULL,
                              ca->key) != 1
        || !(sig = malloc(sigmax))
        || (siglen = sigmax,
            EVP_DigestSign(mctx, sig, &siglen, buf + tbs, tbs_len) != 1)
        || siglen == 0 || siglen > sigmax) {
        *err = apr_psprintf(p, "signing the CRL failed: %s",
                            ca_log_ssl_errors(p));
        goto leave;
    }
    w = buf + tbs + tbs_len;
    i2d_X509_ALGOR(alg, &w);
    ASN1_put_object(&w, 0, (int)siglen + 1, V_ASN1_BIT_STRING,
                    V_ASN1_UNIVERSAL);
    *w++ = 0; /* no unused bits */
    memcpy(w, sig, siglen);
    w += siglen;
    used = (apr_size_t)(w - buf);

    /* 5. The outer SEQUENCE. */
    oh = hdr_len(used - tbs, V_ASN1_SEQUENCE);
    w = buf + tbs - oh;
    ASN1_put_object(&w, 1, (int)(used - tbs), V_ASN1_SEQUENCE,
                    V_ASN1_UNIVERSAL);
    *der = buf + tbs - oh;
    *der_len = used - (tbs - oh);
    apr_pool_cleanup_register(p, buf, buf_free, apr_pool_cleanup_null);
    buf = NULL;
    rv = APR_SUCCESS;

leave:
    free(buf);
    free(sig);
    EVP_MD_CTX_free(mctx);
    OPENSSL_free(frame);
    if (scratch) {
        scratch_free(&s);
    }
    X509_CRL_free(crl);
    ASN1_TIME_free(tm);
    ERR_clear_error();
    return rv;
}

const char *ca_crl_pem(apr_pool_t *p, const unsigned char *der,
                       apr_size_t len)
{
    if (!der || len == 0) {
        return NULL;
    }
    static const char head[] = "-----BEGIN X509 CRL-----\n";
    static const char foot[] = "-----END X509 CRL-----\n";
    char *pem = apr_palloc(p, sizeof(head) - 1
                              + ca_base64_encoded_len(len, 0)
                              + sizeof(foot));
    char *o;

    /* one buffer, the base64 written in place */
    memcpy(pem, head, sizeof(head) - 1);
    o = ca_base64_encode_to(pem + sizeof(head) - 1, der, len, 0);
    memcpy(o, foot, sizeof(foot));
    return pem;
}
