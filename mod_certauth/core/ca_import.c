/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_import.c: an `openssl ca` directory into the store.
 *
 * index.txt is OpenSSL's TXT_DB text: one certificate a line, six fields
 * separated by one TAB each (apps/ca.c, DB_type .. DB_name):
 *   status      V (valid), R (revoked), E (expired, by openssl ca -updatedb)
 *   expiry      the certificate's notAfter, YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ
 *   revocation  empty unless R: TIME[,REASON[,ARG]] as make_revocation_str
 *               writes it: REASON one of the CRLReason names, or
 *               holdInstruction,OID (certificateHold), keyTime,TIME
 *               (keyCompromise with an invalidity date), CAkeyTime,TIME
 *               (cACompromise with one); names compared ignoring case, as
 *               unpack_revinfo does
 *   serial      upper-case hex; the certificate is newcerts/SERIAL.pem
 *   filename    "unknown" (never used by openssl ca)
 *   subject     X509_NAME_oneline() of the certificate's subject
 * Lines beginning with '#' are comments (TXT_DB_read skips them).  The
 * fields are split here by hand (the format is this simple and OpenSSL
 * has no public reader of it besides TXT_DB, which reports no line
 * numbers); the times, serials, names and certificates go through
 * OpenSSL. */

#include <ctype.h>
#include <string.h>

#include <apr_hash.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_crl.h"
#include "ca_import.h"
#include "ca_util.h"

/* index.txt of a million certificates is about 150 MB */
#define INDEX_MAX ((apr_size_t)1 << 30)
#define CERT_MAX  ((apr_size_t)1 << 20)

apr_int64_t ca_import_time(const char *s)
{
    ASN1_TIME *t;
    apr_int64_t out = -1;
    size_t n = strlen(s), i;

    /* exactly the two forms openssl ca writes: digits and a final Z */
    if ((n != 13 && n != 15) || s[n - 1] != 'Z') {
        return -1;
    }
    for (i = 0; i + 1 < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
    }
    t = ASN1_TIME_new();
    if (t && ASN1_TIME_set_string(t, s) == 1 && ASN1_TIME_check(t) == 1) {
        out = ca_asn1_time_to_epoch(t);
    }
    ASN1_TIME_free(t);
    ERR_clear_error();
    return out;
}

/* The revocation field of an R line. */
static const char *parse_revocation(apr_pool_t *p, char *field,
                                    ca_import_entry_t *e)
{
    char *time_s, *reason_s, *arg, *extra, *last;
    static const struct {
        const char *name;
        int code;
    } reasons[] = {
        {"unspecified", CA_REASON_UNSPECIFIED},
        {"keyCompromise", CA_REASON_KEY_COMPROMISE},
        {"CACompromise", CA_REASON_CA_COMPROMISE},
        {"affiliationChanged", CA_REASON_AFFILIATION_CHANGED},
        {"superseded", CA_REASON_SUPERSEDED},
        {"cessationOfOperation", CA_REASON_CESSATION_OF_OPERATION},
        {"certificateHold", CA_REASON_CERTIFICATE_HOLD},
        {"privilegeWithdrawn", CA_REASON_PRIVILEGE_WITHDRAWN},
        {"AACompromise", CA_REASON_AA_COMPROMISE},
    };
    size_t i;

    if (!*field) {
        return "an R line needs a revocation date";
    }
    /* split by hand: apr_strtok would pass over empty parts */
    time_s = field;
    reason_s = arg = extra = NULL;
    if ((last = strchr(time_s, ','))) {
        *last++ = '\0';
        reason_s = last;
        if ((last = strchr(reason_s, ','))) {
            *last++ = '\0';
            arg = last;
            if ((last = strchr(arg, ','))) {
                extra = last;
            }
        }
    }
    if (extra) {
        return "revocation field has more than TIME,REASON,ARG";
    }
    if ((reason_s && !*reason_s) || (arg && !*arg)) {
        return "revocation field has an empty part";
    }
    if ((e->row.revoked_at = ca_import_time(time_s)) < 0) {
        return apr_psprintf(p, "revocation date '%s' is not YYMMDDHHMMSSZ "
                            "or YYYYMMDDHHMMSSZ", time_s);
    }
    e->row.reason = CA_REASON_NONE;
    if (!reason_s) {
        return NULL;
    }
    if (!strcasecmp(reason_s, "holdInstruction")) {
        ASN1_OBJECT *obj;
        if (!arg) {
            return "holdInstruction needs an instruction (OID)";
        }
        obj = OBJ_txt2obj(arg, 0);
        ERR_clear_error();
        if (!obj) {
            return apr_psprintf(p, "hold instruction '%s' is not an OID",
                                arg);
        }
        ASN1_OBJECT_free(obj);
        e->row.reason = CA_REASON_CERTIFICATE_HOLD;
        e->hold = apr_pstrdup(p, arg);
        return NULL;
    }
    if (!strcasecmp(reason_s, "keyTime") || !strcasecmp(reason_s,
                                                        "CAkeyTime")) {
        if (!arg) {
            return apr_psprintf(p, "%s needs a compromise time", reason_s);
        }
        if ((e->row.invalidity_at = ca_import_time(arg)) < 0) {
            return apr_psprintf(p, "compromise time '%s' is not "
                                "YYYYMMDDHHMMSSZ", arg);
        }
        e->row.reason = tolower((unsigned char)reason_s[0]) == 'k'
                            ? CA_REASON_KEY_COMPROMISE
                            : CA_REASON_CA_COMPROMISE;
        return NULL;
    }
    if (arg) {
        return apr_psprintf(p, "reason %s takes no argument ('%s')",
                            reason_s, arg);
    }
    if (!strcasecmp(reason_s, "removeFromCRL")) {
        return "reason removeFromCRL belongs to delta CRLs, which this CA "
               "does not issue; revoke the certificate with another reason "
               "or remove the line";
    }
    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (!strcasecmp(reason_s, reasons[i].name)) {
            e->row.reason = reasons[i].code;
            return NULL;
        }
    }
    return apr_psprintf(p, "unknown revocation reason '%s'", reason_s);
}

/* The owner of an imported certificate: its (last) CN, its e-mail address
 * (subject emailAddress, else the first rfc822Name), or a literal name. */
static const char *owner_of(apr_pool_t *p, X509 *x, const char *from)
{
    if (!from || !strcmp(from, "cn") || !strcmp(from, "email")) {
        X509_NAME *n = X509_get_subject_name(x);
        int nid = from && !strcmp(from, "email") ? NID_pkcs9_emailAddress
                                                 : NID_commonName;
        int i = -1, last = -1;
        unsigned char *utf8 = NULL;
        const char *out = NULL;
        int len;

        while ((i = X509_NAME_get_index_by_NID(n, nid, i)) >= 0) {
            last = i;
        }
        if (last >= 0) {
            len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(
                                                 X509_NAME_get_entry(n, last)));
            if (len > 0 && !memchr(utf8, 0, (size_t)len)) {
                out = apr_pstrmemdup(p, (const char *)utf8, (apr_size_t)len);
            }
            OPENSSL_free(utf8);
        }
        if (!out && nid == NID_pkcs9_emailAddress) {
            GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name,
                                                   NULL, NULL);
            for (i = 0; gens && !out && i < sk_GENERAL_NAME_num(gens); i++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                if (g->type == GEN_EMAIL
                    && !memchr(ASN1_STRING_get0_data(g->d.rfc822Name), 0,
                               (size_t)ASN1_STRING_length(g->d.rfc822Name))) {
                    out = apr_pstrmemdup(p, (const char *)ASN1_STRING_get0_data(
                                             g->d.rfc822Name),
                                         (apr_size_t)ASN1_STRING_length(
                                             g->d.rfc822Name));
                }
            }
            GENERAL_NAMES_free(gens);
        }
        ERR_clear_error();
        if (out && (!*out || strlen(out) > 255)) {
            return NULL;
        }
        return out;
    }
    return from;
}

/* One certificate file for the entry; NULL or *why. */
static X509 *read_cert(apr_pool_t *p, const char *path, const char **why)
{
    char *data;
    apr_size_t len;
    BIO *bio;
    X509 *x;

    if (ca_file_read(p, path, CERT_MAX, &data, &len) != APR_SUCCESS) {
        *why = "cannot be read (missing?)";
        return NULL;
    }
    bio = BIO_new_mem_buf(data, (int)len);
    x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (!x) {
        *why = "holds no PEM certificate";
        return NULL;
    }
    return ca_pool_x509(p, x);
}

/* The entry's row is allocated from p (kept for ca_import_apply); the
 * file, the parsed certificate and the rest from sp, which the caller
 * clears after every line: an import of a million lines keeps only the
 * rows. */
static const char *check_entry(apr_pool_t *p, apr_pool_t *sp,
                               const ca_import_opts_t *o,
                               ca_import_entry_t *e, const char *expiry,
                               const char *serial, const char *subject,
                               const char *path)
{
    const char *why = NULL, *got;
    char *oneline;
    X509 *x = read_cert(sp, path, &why);
    EVP_PKEY *capub;
    apr_int64_t na;

    if (!x) {
        return why;
    }
    got = ca_serial_hex(p, X509_get0_serialNumber(x));
    if (strcmp(got, serial)) {
        return apr_psprintf(p, "holds serial %s, the line says %s", got,
                            serial);
    }
    na = ca_asn1_time_to_epoch(X509_get0_notAfter(x));
    if (na != ca_import_time(expiry)) {
        return apr_psprintf(p, "expires %s, the line says %s",
                            ASN1_STRING_get0_data(X509_get0_notAfter(x)) ?
                            (const char *)ASN1_STRING_get0_data(
                                X509_get0_notAfter(x)) : "?", expiry);
    }
    oneline = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
    if (!oneline || strcmp(oneline, subject)) {
        why = apr_psprintf(p, "has subject %s, the line says %s",
                           oneline ? oneline : "?", subject);
        OPENSSL_free(oneline);
        return why;
    }
    OPENSSL_free(oneline);
    if (X509_check_issued(o->ca_cert, x) != X509_V_OK) {
        return apr_psprintf(p, "was not issued by the CA certificate (%s)",
                            ca_x509_name_str(p, X509_get_subject_name(
                                                    o->ca_cert)));
    }
    capub = X509_get0_pubkey(o->ca_cert);
    if (!capub || X509_verify(x, capub) != 1) {
        ERR_clear_error();
        return "has a signature the CA certificate's key does not verify";
    }
    e->row.serial = got;
    e->row.subject = ca_x509_name_str(p, X509_get_subject_name(x));
    e->row.owner = owner_of(p, x, o->owner_from);
    if (!e->row.owner) {
        return apr_psprintf(p, "has no %s to take the owner from (see "
                            "--owner-from)",
                            o->owner_from && !strcmp(o->owner_from, "email")
                                ? "e-mail address" : "common name");
    }
    e->row.profile = o->profile ? o->profile : "default";
    e->row.not_before = ca_asn1_time_to_epoch(X509_get0_notBefore(x));
    e->row.not_after = na;
    e->row.issued_at = e->row.not_before;
    e->row.cert_pem = ca_x509_pem(p, x);
    e->row.issuer_kid = ca_cert_issuer_key_id(p, x);
    e->row.replaced_by = "";
    return NULL;
}

static apr_status_t read_crlnumber(apr_pool_t *p, const char *path,
                                   apr_int64_t *out, const char **err)
{
    char *data, *nl;
    apr_size_t len, i;
    BIGNUM *bn = NULL;

    if (ca_file_read(p, path, 4096, &data, &len) != APR_SUCCESS) {
        *err = apr_psprintf(p, "%s: cannot be read", path);
        return CA_EIO;
    }
    if ((nl = strchr(data, '\n'))) {
        if (nl[1]) {
            *err = apr_psprintf(p, "%s:2: more than one line", path);
            return CA_EBADINPUT;
        }
        *nl = '\0';
    }
    len = strlen(data);
    for (i = 0; i < len; i++) {
        if (!apr_isxdigit(data[i])) {
            break;
        }
    }
    if (!len || i != len || len > 15 || !BN_hex2bn(&bn, data)
        || BN_is_zero(bn)) {
        BN_free(bn);
        *err = apr_psprintf(p, "%s:1: '%s' is not a CRL number (hex, as "
                            "openssl ca writes it)", path, data);
        return CA_EBADINPUT;
    }
    BN_free(bn);
    *out = (apr_int64_t)apr_strtoi64(data, NULL, 16);
    return APR_SUCCESS;
}

apr_status_t ca_import_read(apr_pool_t *p, const ca_import_opts_t *o,
                            ca_import_t **out, const char **err)
{
    ca_import_t *im = apr_pcalloc(p, sizeof(*im));
    apr_hash_t *seen = apr_hash_make(p);
    apr_pool_t *sp;
    char *data, *line, *next;
    apr_size_t len;
    int lineno = 0;
    apr_status_t rv;

    *err = NULL;
    im->entries = apr_array_make(p, 64, sizeof(ca_import_entry_t));
    if (o->crlnumber_file
        && (rv = read_crlnumber(p, o->crlnumber_file, &im->next_crl_number,
                                err)) != APR_SUCCESS) {
        return rv;
    }
    if (ca_file_read(p, o->index_file, INDEX_MAX, &data, &len)
        != APR_SUCCESS) {
        *err = apr_psprintf(p, "%s: cannot be read", o->index_file);
        return CA_EIO;
    }
    if (strlen(data) != len) {
        *err = apr_psprintf(p, "%s: holds a NUL byte: not an index.txt",
                            o->index_file);
        return CA_EBADINPUT;
    }
    apr_pool_create(&sp, p);
    for (line = data; *line; line = next) {
        char *f[7], *c, *path;
        const char *why = NULL, *serial = NULL, *prev;
        ca_import_entry_t *e;
        int nf = 0;

        lineno++;
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        else {
            next = line + strlen(line);
        }
        if (*line && line[strlen(line) - 1] == '\r') {
            line[strlen(line) - 1] = '\0';
        }
        if (line[0] == '#') {
            continue;
        }
#define FAIL(...) do { \
            *err = apr_psprintf(p, "%s:%d: %s", o->index_file, lineno, \
                                apr_psprintf(p, __VA_ARGS__)); \
            return CA_EBADINPUT; } while (0)
        if (!*line) {
            FAIL("empty line");
        }
        f[nf++] = line;
        for (c = line; *c; c++) {
            if (*c == '\t') {
                *c = '\0';
                if (nf == 7) {
                    break;
                }
                f[nf++] = c + 1;
            }
        }
        if (nf != 6) {
            FAIL("%d tab-separated fields, index.txt has 6 (status, expiry, "
                 "revocation, serial, file name, subject)", nf);
        }
        e = apr_array_push(im->entries);
        memset(e, 0, sizeof(*e));
        e->line = lineno;
        e->row.reason = CA_REASON_NONE;
        if (strlen(f[0]) != 1 || !strchr("VRE", f[0][0])) {
            FAIL("status '%s' is not V, R or E", f[0]);
        }
        e->flag = f[0][0];
        if (ca_import_time(f[1]) < 0) {
            FAIL("expiry date '%s' is not YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ",
                 f[1]);
        }
        if (e->flag == 'R') {
            if ((why = parse_revocation(p, f[2], e))) {
                FAIL("%s", why);
            }
            e->row.status = CA_STATUS_REVOKED;
            im->revoked++;
        }
        else if (*f[2]) {
            FAIL("a %c line has a revocation field ('%s')", e->flag, f[2]);
        }
        else {
            e->row.status = CA_STATUS_VALID;
            if (e->flag == 'V') {
                im->valid++;
            }
            else {
                im->expired++;
            }
        }
        for (c = f[3]; *c; c++) {
            if (!apr_isxdigit(*c)) {
                break;
            }
        }
        if (!*f[3] || *c
            || ca_serial_normalize(p, f[3], &serial) != APR_SUCCESS) {
            FAIL("serial '%s' is not a serial number in hex", f[3]);
        }
        if ((prev = apr_hash_get(seen, serial, APR_HASH_KEY_STRING))) {
            FAIL("serial %s is already on line %s", serial, prev);
        }
        apr_hash_set(seen, serial, APR_HASH_KEY_STRING,
                     apr_itoa(p, lineno));
        if (!*f[4]) {
            FAIL("empty file name field (openssl ca writes 'unknown')");
        }
        apr_pool_clear(sp);
        path = apr_pstrcat(sp, o->certs_dir, "/", f[3], ".pem", NULL);
        if ((why = check_entry(p, sp, o, e, f[1], serial, f[5], path))) {
            *err = apr_psprintf(p, "%s: %s (%s:%d)", path, why,
                                o->index_file, lineno);
            apr_pool_destroy(sp);
            return CA_EBADINPUT;
        }
#undef FAIL
    }
    apr_pool_destroy(sp);
    *out = im;
    return APR_SUCCESS;
}

/* The stored row holds the same certificate as the entry. */
static int same_cert(apr_pool_t *p, const char *pem_a, const char *pem_b)
{
    X509 *a = NULL, *b = NULL;
    BIO *bio;
    int same;

    bio = BIO_new_mem_buf(pem_a, -1);
    a = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    bio = BIO_new_mem_buf(pem_b, -1);
    b = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    same = a && b && X509_cmp(a, b) == 0;
    X509_free(a);
    X509_free(b);
    ERR_clear_error();
    (void)p;
    return same;
}

apr_status_t ca_import_apply(apr_pool_t *p, ca_store_t *st,
                             const ca_import_opts_t *o, const ca_import_t *im,
                             int dry_run, ca_import_result_t *res,
                             const char **err)
{
    apr_int64_t number = 0, tu = 0, nu = 0;
    apr_status_t rv, erv;
    apr_pool_t *sp;
    int i;

    memset(res, 0, sizeof(*res));
    *err = NULL;
    if ((rv = ca_store_txn_begin(st, p)) != APR_SUCCESS) {
        *err = apr_psprintf(p, "database: %s", ca_store_last_error(st));
        return rv;
    }
    rv = ca_store_crl_lock(st, p, &number, &tu, &nu);
    res->crl_number_before = res->crl_number_after = number;
    /* each entry's reads and writes in a pool cleared after it (the
     * messages that outlive it are made from p) */
    apr_pool_create(&sp, p);
    for (i = 0; rv == APR_SUCCESS && i < im->entries->nelts; i++) {
        const ca_import_entry_t *e = &APR_ARRAY_IDX(im->entries, i,
                                                    ca_import_entry_t);
        ca_cert_row_t *cur = NULL;

        apr_pool_clear(sp);
        rv = ca_store_cert_get(st, sp, e->row.serial, &cur);
        if (rv == CA_ENOTFOUND) {
            rv = dry_run ? APR_SUCCESS : ca_store_cert_insert(st, sp,
                                                              &e->row);
            if (rv == APR_SUCCESS) {
                res->added++;
            }
            continue;
        }
        if (rv != APR_SUCCESS) {
            break;
        }
        if (!same_cert(sp, cur->cert_pem, e->row.cert_pem)) {
            *err = apr_psprintf(p, "%s:%d: serial %s is stored with another "
                                "certificate (subject %s)", o->index_file,
                                e->line, e->row.serial, cur->subject);
            rv = CA_ECONFLICT;
            break;
        }
        if (!strcmp(cur->status, e->row.status)
            && (strcmp(cur->status, CA_STATUS_REVOKED)
                || (cur->revoked_at == e->row.revoked_at
                    && cur->reason == e->row.reason
                    && cur->invalidity_at == e->row.invalidity_at))) {
            res->unchanged++;
            continue;
        }
        if (!strcmp(cur->status, CA_STATUS_VALID)
            && !strcmp(e->row.status, CA_STATUS_REVOKED)) {
            rv = dry_run ? APR_SUCCESS
                         : ca_store_cert_set_status(
                               st, sp, e->row.serial, CA_STATUS_VALID,
                               CA_STATUS_REVOKED, e->row.revoked_at,
                               e->row.reason, e->row.invalidity_at, NULL,
                               NULL);
            if (rv == APR_SUCCESS) {
                res->revoked++;
            }
            continue;
        }
        *err = apr_psprintf(p, "%s:%d: serial %s is stored as %s, the line "
                            "says %s%s", o->index_file, e->line,
                            e->row.serial, cur->status, e->row.status,
                            !strcmp(cur->status, e->row.status)
                                ? " with another date or reason" : "");
        rv = CA_ECONFLICT;
    }
    apr_pool_destroy(sp);
    if (rv == APR_SUCCESS && im->next_crl_number - 1 > number) {
        res->crl_number_after = im->next_crl_number - 1;
        if (!dry_run) {
            rv = ca_store_crl_raise(st, p, res->crl_number_after);
        }
    }
    else if (rv == APR_SUCCESS && !dry_run && (res->added || res->revoked)) {
        rv = ca_store_crl_invalidate(st, p);
    }
    if (rv == APR_SUCCESS && !dry_run && o->audit
        && (res->added || res->revoked
            || res->crl_number_after != res->crl_number_before)) {
        /* in the transaction: no import stored without its record */
        ca_audit_t a = *o->audit;
        if (!a.detail) {
            a.detail = apr_psprintf(p, "%s: %d added, %d revoked, %d "
                                    "unchanged", o->index_file, res->added,
                                    res->revoked, res->unchanged);
        }
        rv = ca_store_audit_add(st, p, &a);
    }
    if (rv != APR_SUCCESS && !*err) {
        *err = apr_psprintf(p, "database: %s", ca_store_last_error(st));
    }
    erv = ca_store_txn_end(st, p, rv == APR_SUCCESS && !dry_run);
    if (rv == APR_SUCCESS && erv != APR_SUCCESS && !dry_run) {
        *err = apr_psprintf(p, "database: commit failed: %s",
                            ca_store_last_error(st));
        rv = erv;
    }
    if (rv != APR_SUCCESS) {
        res->added = res->revoked = res->unchanged = 0;
        res->crl_number_after = res->crl_number_before;
    }
    return rv;
}
