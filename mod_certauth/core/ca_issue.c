/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_issue: certificate profiles and issuance (build, serial, sign, store). */

#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include <apr_strings.h>
#include <apr_time.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_issue.h"
#include "ca_log.h"
#include "ca_util.h"

#define CA_ISSUE_MAX_SANS     100
#define CA_ISSUE_MAX_NAME_LEN 2048
#define CA_ISSUE_ATTEMPTS     8

/* ------------------------------------------------------------------ */
/* Profiles                                                            */
/* ------------------------------------------------------------------ */

ca_profile_t *ca_profile_make(apr_pool_t *p, const char *name)
{
    ca_profile_t *prof = apr_pcalloc(p, sizeof(*prof));
    prof->name = apr_pstrdup(p, name ? name : "default");
    prof->validity_days = 365;
    prof->backdate_secs = 300;
    prof->key_usage = 0;
    prof->eku = NULL;
    prof->renewal_window_days = 30;
    ca_key_policy_default(&prof->key_policy);
    return prof;
}

static const struct {
    const char *name;
    unsigned bit;
    int ossl_bit; /* bit number in the KeyUsage BIT STRING */
} key_usages[] = {
    { "digitalSignature", CA_KU_DIGITAL_SIGNATURE, 0 },
    { "nonRepudiation",   CA_KU_NON_REPUDIATION,   1 },
    { "keyEncipherment",  CA_KU_KEY_ENCIPHERMENT,  2 },
    { "dataEncipherment", CA_KU_DATA_ENCIPHERMENT, 3 },
    { "keyAgreement",     CA_KU_KEY_AGREEMENT,     4 },
};
#define N_KEY_USAGES (sizeof(key_usages) / sizeof(key_usages[0]))

apr_status_t ca_key_usage_parse(const char *name, unsigned *bit)
{
    apr_size_t i;
    if (name) {
        for (i = 0; i < N_KEY_USAGES; i++) {
            if (!strcasecmp(name, key_usages[i].name)) {
                *bit = key_usages[i].bit;
                return APR_SUCCESS;
            }
        }
    }
    return CA_EBADINPUT;
}

static const struct {
    const char *name;
    int nid;
} eku_names[] = {
    { "clientAuth",      NID_client_auth },
    { "serverAuth",      NID_server_auth },
    { "emailProtection", NID_email_protect },
    { "codeSigning",     NID_code_sign },
    { "OCSPSigning",     NID_OCSP_sign },
    { "timeStamping",    NID_time_stamp },
};
#define N_EKU_NAMES (sizeof(eku_names) / sizeof(eku_names[0]))

/* A dotted OID: at least two arcs, digits only, first arc 0..2. */
static int dotted_oid_syntax(const char *s)
{
    int arcs = 0;
    const char *c = s;

    if (!s || !*s || strlen(s) > 200 || (s[0] != '0' && s[0] != '1'
                                         && s[0] != '2')) {
        return 0;
    }
    while (*c) {
        const char *start = c;
        while (*c >= '0' && *c <= '9') {
            c++;
        }
        if (c == start || (c - start > 1 && *start == '0')) {
            return 0; /* empty arc or leading zero */
        }
        arcs++;
        if (*c == '.') {
            c++;
            if (!*c) {
                return 0;
            }
        }
        else if (*c) {
            return 0;
        }
    }
    return arcs >= 2;
}

/* The OID of an EKU name (a new object the caller frees), NULL if unknown. */
static ASN1_OBJECT *eku_object(const char *name)
{
    apr_size_t i;
    ASN1_OBJECT *obj;

    if (!name) {
        return NULL;
    }
    for (i = 0; i < N_EKU_NAMES; i++) {
        if (!strcasecmp(name, eku_names[i].name)) {
            return OBJ_nid2obj(eku_names[i].nid);
        }
    }
    if (!dotted_oid_syntax(name)) {
        return NULL;
    }
    obj = OBJ_txt2obj(name, 1);
    if (!obj) {
        ERR_clear_error();
    }
    return obj;
}

apr_status_t ca_eku_check(const char *name)
{
    ASN1_OBJECT *obj = eku_object(name);
    if (!obj) {
        return CA_EBADINPUT;
    }
    ASN1_OBJECT_free(obj);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Serials                                                             */
/* ------------------------------------------------------------------ */

apr_status_t ca_serial_random(ASN1_INTEGER **out)
{
    unsigned char buf[16];
    ASN1_INTEGER *ai;

    *out = NULL;
    if (RAND_bytes(buf, sizeof(buf)) != 1) {
        ERR_clear_error();
        return CA_ECRYPTO;
    }
    /* Positive, and exactly 16 octets in DER: 0x01..0x7f. */
    buf[0] = (unsigned char)((buf[0] % 0x7f) + 1);
    ai = ASN1_INTEGER_new();
    if (!ai || !ASN1_STRING_set(ai, buf, sizeof(buf))) {
        ASN1_INTEGER_free(ai);
        OPENSSL_cleanse(buf, sizeof(buf));
        return CA_ECRYPTO;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    *out = ai;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Names (subjectAltName, URLs)                                        */
/* ------------------------------------------------------------------ */

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9');
}

/* A host name: LDH labels of 1..63, at most 253 in all; a leftmost "*"
 * label when wildcard. */
static int dns_name_ok(const char *s, int wildcard)
{
    apr_size_t total = strlen(s), lablen;
    const char *c = s;

    if (total == 0 || total > 253) {
        return 0;
    }
    if (wildcard && c[0] == '*' && c[1] == '.' && c[2]) {
        c += 2;
    }
    while (*c) {
        const char *start = c;
        while (is_alnum(*c) || *c == '-') {
            c++;
        }
        lablen = (apr_size_t)(c - start);
        if (lablen == 0 || lablen > 63 || start[0] == '-' || c[-1] == '-') {
            return 0;
        }
        if (*c == '.') {
            c++;
            if (!*c) {
                return 0; /* no trailing dot */
            }
        }
        else if (*c) {
            return 0;
        }
    }
    return 1;
}

static int email_ok(const char *s)
{
    const char *at = strchr(s, '@'), *c;
    static const char local_chars[] = "!#$%&'*+/=?^_`{|}~.-";

    if (!at || at == s || strchr(at + 1, '@') || strlen(s) > 254
        || at - s > 64) {
        return 0;
    }
    for (c = s; c < at; c++) {
        if (!is_alnum(*c) && !strchr(local_chars, *c)) {
            return 0;
        }
    }
    if (s[0] == '.' || at[-1] == '.' || strstr(s, "..")) {
        return 0;
    }
    return dns_name_ok(at + 1, 0);
}

/* An absolute URI: scheme ":" then visible ASCII, no white space, no
 * quotes or angle brackets. */
static int uri_ok(const char *s)
{
    const char *c = s;

    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z'))) {
        return 0;
    }
    while (is_alnum(*c) || *c == '+' || *c == '-' || *c == '.') {
        c++;
    }
    if (*c != ':' || !c[1] || strlen(s) > CA_ISSUE_MAX_NAME_LEN) {
        return 0;
    }
    for (c++; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u <= 0x20 || u >= 0x7f || u == '"' || u == '<' || u == '>'
            || u == '\\' || u == '^' || u == '`' || u == '{' || u == '|'
            || u == '}') {
            return 0;
        }
    }
    return 1;
}

static GENERAL_NAME *ia5_name(int type, const char *value)
{
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

    if (!gen || !ia5 || !ASN1_STRING_set(ia5, value, (int)strlen(value))) {
        GENERAL_NAME_free(gen);
        ASN1_IA5STRING_free(ia5);
        return NULL;
    }
    GENERAL_NAME_set0_value(gen, type, ia5);
    return gen;
}

static GENERAL_NAME *ip_name(const char *value)
{
    unsigned char addr[16];
    int alen;
    GENERAL_NAME *gen;
    ASN1_OCTET_STRING *os;

    if (strchr(value, ':')) {
        if (inet_pton(AF_INET6, value, addr) != 1) {
            return NULL;
        }
        alen = 16;
    }
    else {
        if (inet_pton(AF_INET, value, addr) != 1) {
            return NULL;
        }
        alen = 4;
    }
    gen = GENERAL_NAME_new();
    os = ASN1_OCTET_STRING_new();
    if (!gen || !os || !ASN1_OCTET_STRING_set(os, addr, alen)) {
        GENERAL_NAME_free(gen);
        ASN1_OCTET_STRING_free(os);
        return NULL;
    }
    GENERAL_NAME_set0_value(gen, GEN_IPADD, os);
    return gen;
}

/* One "type:value" subjectAltName to a GENERAL_NAME.  Never goes through
 * the configuration string parser: the value is one name, whatever it
 * contains. */
static apr_status_t san_to_name(apr_pool_t *p, const char *san,
                                GENERAL_NAME **out, const char **err)
{
    const char *colon = strchr(san, ':'), *value;
    apr_size_t tlen;
    int ok = 0, type = -1;

    *out = NULL;
    if (!colon) {
        *err = apr_psprintf(p, "bad subjectAltName '%s': expected email:, "
                            "DNS:, URI: or IP:", ca_printable(p, san, 80));
        return CA_EBADINPUT;
    }
    tlen = (apr_size_t)(colon - san);
    value = colon + 1;
    if (tlen == 5 && !strncasecmp(san, "email", 5)) {
        type = GEN_EMAIL;
        ok = email_ok(value);
    }
    else if (tlen == 3 && !strncasecmp(san, "DNS", 3)) {
        type = GEN_DNS;
        ok = dns_name_ok(value, 1);
    }
    else if (tlen == 3 && !strncasecmp(san, "URI", 3)) {
        type = GEN_URI;
        ok = uri_ok(value);
    }
    else if (tlen == 2 && !strncasecmp(san, "IP", 2)) {
        type = GEN_IPADD;
        ok = 1; /* checked by ip_name */
    }
    else {
        *err = apr_psprintf(p, "bad subjectAltName '%s': type not supported "
                            "(email:, DNS:, URI: or IP:)",
                            ca_printable(p, san, 80));
        return CA_EBADINPUT;
    }
    if (ok) {
        *out = type == GEN_IPADD ? ip_name(value) : ia5_name(type, value);
    }
    if (!*out) {
        static const char *const what[] = {
            [GEN_EMAIL] = "not a valid e-mail address",
            [GEN_DNS] = "not a valid DNS name",
            [GEN_URI] = "not a valid absolute URI",
            [GEN_IPADD] = "not a valid IPv4 or IPv6 address",
        };
        *err = apr_psprintf(p, "bad subjectAltName '%s': %s",
                            ca_printable(p, san, 80), what[type]);
        return CA_EBADINPUT;
    }
    return APR_SUCCESS;
}

static apr_status_t build_sans(apr_pool_t *p, apr_array_header_t *sans,
                               GENERAL_NAMES **out, const char **err)
{
    GENERAL_NAMES *gens;
    GENERAL_NAME *gen;
    apr_status_t rv;
    int i;

    *out = NULL;
    if (sans->nelts > CA_ISSUE_MAX_SANS) {
        *err = apr_psprintf(p, "too many subjectAltNames (%d, at most %d)",
                            sans->nelts, CA_ISSUE_MAX_SANS);
        return CA_EBADINPUT;
    }
    gens = sk_GENERAL_NAME_new_null();
    if (!gens) {
        *err = "out of memory";
        return CA_ECRYPTO;
    }
    for (i = 0; i < sans->nelts; i++) {
        const char *san = APR_ARRAY_IDX(sans, i, const char *);
        if (!san) {
            continue;
        }
        rv = san_to_name(p, san, &gen, err);
        if (rv != APR_SUCCESS) {
            GENERAL_NAMES_free(gens);
            return rv;
        }
        if (!sk_GENERAL_NAME_push(gens, gen)) {
            GENERAL_NAME_free(gen);
            GENERAL_NAMES_free(gens);
            *err = "out of memory";
            return CA_ECRYPTO;
        }
    }
    *out = gens;
    return APR_SUCCESS;
}

/* base_url without trailing slashes, checked to be an http(s) URL. */
static apr_status_t base_url_clean(apr_pool_t *p, const char *base_url,
                                   const char **out, const char **err)
{
    char *u = apr_pstrdup(p, base_url);
    apr_size_t n = strlen(u);

    while (n > 0 && u[n - 1] == '/') {
        u[--n] = '\0';
    }
    if ((strncasecmp(u, "https://", 8) && strncasecmp(u, "http://", 7))
        || !uri_ok(u) || strlen(strstr(u, "://") + 3) == 0) {
        *err = apr_psprintf(p, "base URL '%s' is not an http(s) URL",
                            ca_printable(p, base_url, 80));
        return CA_ECONFIG;
    }
    *out = u;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Building                                                            */
/* ------------------------------------------------------------------ */

/* Allowed keyUsage bits by subject key type (RFC 5280, 5480, 8410). */
static unsigned key_usage_mask(EVP_PKEY *key)
{
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        return CA_KU_DIGITAL_SIGNATURE | CA_KU_NON_REPUDIATION
               | CA_KU_KEY_ENCIPHERMENT | CA_KU_DATA_ENCIPHERMENT;
    case EVP_PKEY_EC:
        return CA_KU_DIGITAL_SIGNATURE | CA_KU_NON_REPUDIATION
               | CA_KU_KEY_AGREEMENT;
    default: /* RSA-PSS, Ed25519: signatures only */
        return CA_KU_DIGITAL_SIGNATURE | CA_KU_NON_REPUDIATION;
    }
}

static int add_ext(X509 *x, int nid, void *value, int crit)
{
    return X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_REPLACE) == 1;
}

static apr_status_t add_key_usage(apr_pool_t *p, X509 *x, EVP_PKEY *key,
                                  unsigned bits, const char **err)
{
    ASN1_BIT_STRING *ku;
    unsigned mask = key_usage_mask(key);
    apr_size_t i;
    int ok = 1;

    if (bits == 0) {
        bits = CA_KU_DIGITAL_SIGNATURE;
        if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
            bits |= CA_KU_KEY_ENCIPHERMENT;
        }
    }
    else if ((bits & mask) == 0) {
        *err = apr_psprintf(p, "the profile's key usage cannot be used with "
                            "a %s key", ca_key_describe(p, key));
        return CA_EPOLICY;
    }
    /* Bits the key type cannot do are left out: one profile serves RSA
     * and EC keys. */
    bits &= mask;
    ku = ASN1_BIT_STRING_new();
    if (!ku) {
        *err = "out of memory";
        return CA_ECRYPTO;
    }
    for (i = 0; i < N_KEY_USAGES; i++) {
        if (bits & key_usages[i].bit) {
            ok = ok && ASN1_BIT_STRING_set_bit(ku, key_usages[i].ossl_bit, 1);
        }
    }
    ok = ok && add_ext(x, NID_key_usage, ku, 1);
    ASN1_BIT_STRING_free(ku);
    if (!ok) {
        *err = "cannot add keyUsage";
        return CA_ECRYPTO;
    }
    return APR_SUCCESS;
}

static apr_status_t add_eku(apr_pool_t *p, X509 *x, apr_array_header_t *eku,
                            const char **err)
{
    EXTENDED_KEY_USAGE *ext;
    ASN1_OBJECT *obj;
    int i, ok;

    if (!eku || eku->nelts == 0) {
        return APR_SUCCESS;
    }
    ext = sk_ASN1_OBJECT_new_null();
    if (!ext) {
        *err = "out of memory";
        return CA_ECRYPTO;
    }
    for (i = 0; i < eku->nelts; i++) {
        const char *name = APR_ARRAY_IDX(eku, i, const char *);
        obj = eku_object(name);
        if (!obj) {
            sk_ASN1_OBJECT_pop_free(ext, ASN1_OBJECT_free);
            *err = apr_psprintf(p, "profile: unknown extended key usage '%s'",
                                ca_printable(p, name, 80));
            return CA_ECONFIG;
        }
        if (!sk_ASN1_OBJECT_push(ext, obj)) {
            ASN1_OBJECT_free(obj);
            sk_ASN1_OBJECT_pop_free(ext, ASN1_OBJECT_free);
            *err = "out of memory";
            return CA_ECRYPTO;
        }
    }
    ok = add_ext(x, NID_ext_key_usage, ext, 0);
    sk_ASN1_OBJECT_pop_free(ext, ASN1_OBJECT_free);
    if (!ok) {
        *err = "cannot add extendedKeyUsage";
        return CA_ECRYPTO;
    }
    return APR_SUCCESS;
}

static apr_status_t add_key_ids(X509 *x, X509 *issuer, const char **err)
{
    ASN1_OCTET_STRING *ski;
    AUTHORITY_KEYID *akid;
    int ok;

    ski = ca_pubkey_key_id(x);
    ok = ski && add_ext(x, NID_subject_key_identifier, ski, 0);
    ASN1_OCTET_STRING_free(ski);
    if (!ok) {
        *err = "cannot add subjectKeyIdentifier";
        return CA_ECRYPTO;
    }

    akid = AUTHORITY_KEYID_new();
    if (!akid) {
        *err = "out of memory";
        return CA_ECRYPTO;
    }
    akid->keyid = ca_key_id_of(issuer);
    ok = akid->keyid && add_ext(x, NID_authority_key_identifier, akid, 0);
    AUTHORITY_KEYID_free(akid);
    if (!ok) {
        *err = "cannot add authorityKeyIdentifier";
        return CA_ECRYPTO;
    }
    return APR_SUCCESS;
}

/* An ACCESS_DESCRIPTION pushed onto aia; 0 on failure. */
static int push_access(AUTHORITY_INFO_ACCESS *aia, ASN1_OBJECT *method,
                       const char *url)
{
    ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();
    GENERAL_NAME *gen = ia5_name(GEN_URI, url);

    if (!ad || !gen || !method) {
        ACCESS_DESCRIPTION_free(ad);
        GENERAL_NAME_free(gen);
        ASN1_OBJECT_free(method);
        return 0;
    }
    ASN1_OBJECT_free(ad->method);
    ad->method = method;
    GENERAL_NAME_free(ad->location);
    ad->location = gen;
    if (!sk_ACCESS_DESCRIPTION_push(aia, ad)) {
        ACCESS_DESCRIPTION_free(ad);
        return 0;
    }
    return 1;
}

/* crlDistributionPoints and authorityInfoAccess: from the base URL (when
 * set) and the profile's extra AIA entries.  The CRL of a CA generation
 * stays where its certificates look for it: base/crl for a CA without a
 * previous one (every CA before its first rollover, so the certificates
 * issued before a rollover keep their CRL: base/crl is the previous CA's
 * after it), base/crl/KEYID (ca_cert_key_id) for a CA with a previous
 * one. */
const char *ca_crl_path(apr_pool_t *p, const ca_t *ca)
{
    return ca->previous ? apr_pstrcat(p, "/crl/",
                                      ca_cert_key_id(p, ca->cert), NULL)
                        : "/crl";
}

/* The caIssuers URL of the certificates that ca issues names its own
 * generation from the start: base/cacert/KEYID.crt, served for as long as
 * the server knows that CA (base/cacert.crt is always the current CA, the
 * wrong issuer for a certificate of a previous one after a rollover). */
const char *ca_cacert_path(apr_pool_t *p, const ca_t *ca)
{
    return apr_pstrcat(p, "/cacert/", ca_cert_key_id(p, ca->cert), ".crt",
                       NULL);
}

static apr_status_t add_urls(apr_pool_t *p, X509 *x, const char *base,
                             const char *crl_path, const char *cacert_path,
                             const char *ocsp,
                             const apr_array_header_t *extra,
                             const char **err)
{
    CRL_DIST_POINTS *cdp = NULL;
    DIST_POINT *dp = NULL;
    AUTHORITY_INFO_ACCESS *aia = NULL;
    GENERAL_NAME *gen = NULL;
    int ok = 0, i;

    if (base) {
        /* crlDistributionPoints: one point, fullName URI base/crl or
         * base/crl/KEYID */
        cdp = sk_DIST_POINT_new_null();
        dp = DIST_POINT_new();
        if (!cdp || !dp || !(dp->distpoint = DIST_POINT_NAME_new())) {
            goto leave;
        }
        dp->distpoint->type = 0;
        if (!(dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null())
            || !(gen = ia5_name(GEN_URI, apr_pstrcat(p, base, crl_path, NULL)))
            || !sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gen)) {
            goto leave;
        }
        gen = NULL;
        if (!sk_DIST_POINT_push(cdp, dp)) {
            goto leave;
        }
        dp = NULL;
        if (!add_ext(x, NID_crl_distribution_points, cdp, 0)) {
            goto leave;
        }
    }

    /* authorityInfoAccess: OCSP responder, caIssuers URI
     * base/cacert/KEYID.crt, then extras */
    if (!(aia = sk_ACCESS_DESCRIPTION_new_null())) {
        goto leave;
    }
    if (ocsp && !uri_ok(ocsp)) {
        *err = apr_psprintf(p, "OCSP URL %s is not a URI",
                            ca_printable(p, ocsp, 80));
        ok = -1;
        goto leave;
    }
    if (ocsp && !push_access(aia, OBJ_nid2obj(NID_ad_OCSP), ocsp)) {
        goto leave;
    }
    if (base && !push_access(aia, OBJ_nid2obj(NID_ad_ca_issuers),
                             apr_pstrcat(p, base, cacert_path, NULL))) {
        goto leave;
    }
    for (i = 0; extra && i < extra->nelts; i++) {
        const ca_aia_t *e = &APR_ARRAY_IDX(extra, i, ca_aia_t);
        if (!uri_ok(e->url)) {
            *err = apr_psprintf(p, "authorityInfoAccess URL %s is not a "
                                "URI", ca_printable(p, e->url, 80));
            ok = -1;
            goto leave;
        }
        if (!push_access(aia, OBJ_txt2obj(e->oid, 0), e->url)) {
            *err = apr_psprintf(p, "authorityInfoAccess method %s is not an "
                                "OID", ca_printable(p, e->oid, 80));
            ok = -1;
            goto leave;
        }
    }
    if (sk_ACCESS_DESCRIPTION_num(aia) > 0
        && !add_ext(x, NID_info_access, aia, 0)) {
        goto leave;
    }
    ok = 1;
leave:
    GENERAL_NAME_free(gen);
    DIST_POINT_free(dp);
    CRL_DIST_POINTS_free(cdp);
    AUTHORITY_INFO_ACCESS_free(aia);
    if (ok == -1) {
        ERR_clear_error();
        return CA_ECONFIG;
    }
    if (!ok) {
        *err = "cannot add CRL distribution point / AIA";
        return CA_ECRYPTO;
    }
    return APR_SUCCESS;
}

/* The certificate's SubjectPublicKeyInfo copied from src (algorithm, its
 * parameters and the key bits), with no EVP_PKEY decoded or encoded: on
 * OpenSSL 3.0 X509_set_pubkey encodes the key and decodes it again through
 * a new OSSL_DECODER context, which cost ~40% of an enrollment's CPU.
 * Parameters other than absent, NULL or an OID (a named curve) are left to
 * X509_set_pubkey: returns -1 then, 1 when copied, 0 on failure. */
static int spki_copy(X509 *x, const X509_PUBKEY *src)
{
    ASN1_OBJECT *alg_oid = NULL;
    const ASN1_OBJECT *aobj;
    const void *pval;
    const unsigned char *bits;
    unsigned char *copy = NULL;
    X509_ALGOR *alg = NULL;
    void *param = NULL;
    int ptype, len;

    if (!X509_PUBKEY_get0_param(NULL, &bits, &len, &alg, src) || !alg
        || len <= 0) {
        return -1;
    }
    X509_ALGOR_get0(&aobj, &ptype, &pval, alg);
    if (ptype == V_ASN1_OBJECT) {
        if (!(param = OBJ_dup(pval))) {
            return 0;
        }
    }
    else if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL) {
        return -1;
    }
    if (!(alg_oid = OBJ_dup(aobj))
        || !(copy = OPENSSL_memdup(bits, (size_t)len))) {
        ASN1_OBJECT_free(alg_oid);
        ASN1_OBJECT_free(param);
        return 0;
    }
    /* takes alg_oid, param and copy; the unused-bits count becomes 0 */
    if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), alg_oid, ptype,
                                param, copy, len)) {
        ASN1_OBJECT_free(alg_oid);
        ASN1_OBJECT_free(param);
        OPENSSL_free(copy);
        return 0;
    }
    return 1;
}

static int set_pubkey(X509 *x, const ca_issue_req_t *req)
{
    int r = req->spki ? spki_copy(x, req->spki) : -1;
    return r < 0 ? X509_set_pubkey(x, req->pubkey) : r;
}

apr_status_t ca_cert_build(apr_pool_t *p, const ca_t *ca,
                           const ca_issue_req_t *req, const ASN1_INTEGER *serial,
                           apr_int64_t now, X509 **out, const char **err)
{
    const ca_profile_t *prof;
    X509 *x = NULL;
    ASN1_INTEGER *own_serial = NULL;
    GENERAL_NAMES *gens = NULL;
    const char *base = NULL;
    apr_int64_t nb, na, ca_nb, ca_na;
    apr_status_t rv;
    int san_crit;

    *out = NULL;
    *err = NULL;
    if (!ca || !ca->cert || !ca->key || !req || !req->profile
        || !req->subject || !req->pubkey) {
        *err = "incomplete issuing request";
        return CA_EBADINPUT;
    }
    prof = req->profile;
    if (prof->validity_days < 1 || prof->validity_days > 36500) {
        *err = apr_psprintf(p, "profile %s: validity of %d days is out of "
                            "range (1 to 36500)", prof->name ? prof->name : "",
                            prof->validity_days);
        return CA_ECONFIG;
    }
    rv = ca_key_check(p, req->pubkey, &prof->key_policy, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (req->base_url) {
        rv = base_url_clean(p, req->base_url, &base, err);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    if (req->sans && req->sans->nelts > 0) {
        rv = build_sans(p, req->sans, &gens, err);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (sk_GENERAL_NAME_num(gens) == 0) {
            GENERAL_NAMES_free(gens);
            gens = NULL;
        }
    }
    san_crit = X509_NAME_entry_count(req->subject) == 0;
    if (san_crit && !gens) {
        *err = "the certificate would have neither a subject nor a "
               "subjectAltName";
        return CA_EBADINPUT;
    }

    /* Validity: backdated a little, never outside the CA's own. */
    ca_nb = ca_asn1_time_to_epoch(X509_get0_notBefore(ca->cert));
    ca_na = ca_asn1_time_to_epoch(X509_get0_notAfter(ca->cert));
    nb = now - (prof->backdate_secs > 0 ? prof->backdate_secs : 0);
    if (nb < ca_nb) {
        nb = ca_nb;
    }
    na = now + (apr_int64_t)prof->validity_days * 86400;
    if (na > ca_na) {
        na = ca_na;
    }
    if (na <= now || na <= nb) {
        *err = "the CA certificate has expired (or is not yet valid)";
        rv = CA_ECONFIG;
        goto leave;
    }

    rv = CA_ECRYPTO;
    if (!serial) {
        if (ca_serial_random(&own_serial) != APR_SUCCESS) {
            *err = "cannot generate a serial number";
            goto leave;
        }
        serial = own_serial;
    }
    if (!(x = X509_new())
        || !X509_set_version(x, X509_VERSION_3)
        || !X509_set_serialNumber(x, (ASN1_INTEGER *)serial)
        || !X509_set_issuer_name(x, X509_get_subject_name(ca->cert))
        || !X509_set_subject_name(x, req->subject)
        || !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb)
        || !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na)
        || !set_pubkey(x, req)) {
        *err = "cannot set up the certificate";
        goto leave;
    }

    {
        BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
        int ok = bc && add_ext(x, NID_basic_constraints, bc, 1);
        BASIC_CONSTRAINTS_free(bc);
        if (!ok) {
            *err = "cannot add basicConstraints";
            goto leave;
        }
    }
    if ((rv = add_key_usage(p, x, req->pubkey, prof->key_usage, err))
        != APR_SUCCESS
        || (rv = add_eku(p, x, prof->eku, err)) != APR_SUCCESS
        || (rv = add_key_ids(x, ca->cert, err)) != APR_SUCCESS) {
        goto leave;
    }
    rv = CA_ECRYPTO;
    if (gens && !add_ext(x, NID_subject_alt_name, gens, san_crit)) {
        *err = "cannot add subjectAltName";
        goto leave;
    }
    if ((rv = add_urls(p, x, base, ca_crl_path(p, ca),
                       ca_cacert_path(p, ca), req->ocsp_url, prof->aia, err))
        != APR_SUCCESS) {
        goto leave;
    }
    rv = CA_ECRYPTO;
    if (req->ocsp_nocheck) {
        ASN1_NULL *nul = ASN1_NULL_new();
        int ok = nul && add_ext(x, NID_id_pkix_OCSP_noCheck, nul, 0);
        ASN1_NULL_free(nul);
        if (!ok) {
            *err = "cannot add ocsp-nocheck";
            goto leave;
        }
    }
    if (X509_sign(x, ca->key, ca_sign_md(ca->key)) <= 0) {
        *err = apr_psprintf(p, "signing the certificate failed: %s",
                            ca_log_ssl_errors(p));
        goto leave;
    }
    *out = ca_pool_x509(p, x);
    x = NULL;
    rv = APR_SUCCESS;

leave:
    X509_free(x);
    ASN1_INTEGER_free(own_serial);
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return rv;
}

/* ------------------------------------------------------------------ */
/* Issuing                                                             */
/* ------------------------------------------------------------------ */

/* The write unit of an issue: the row, the limit checks of the profile
 * (per-owner limit, unique subjects) or the renewal's supersede, and the
 * audit record, in one transaction, so that concurrent requests cannot
 * both slip through (SQLite: BEGIN IMMEDIATE queues the writers;
 * PostgreSQL: a lock per owner and per subject, ca_store_txn_lock) and the
 * certificate and its record are one commit.  Run by ca_store_run_unit
 * (group commit). */
typedef struct issue_unit {
    const ca_issue_req_t *req;
    const ca_cert_row_t *r;
    apr_int64_t now;
    const char *err;
} issue_unit;

static apr_status_t issue_checks(ca_store_t *store, apr_pool_t *p,
                                 issue_unit *u)
{
    const ca_issue_req_t *req = u->req;
    const ca_profile_t *prof = req->profile;
    const ca_cert_row_t *r = u->r;
    apr_int64_t n = 0;
    apr_status_t rv = APR_SUCCESS;

    if (req->supersede) {
        /* a renewal replaces one certificate: no limit applies, and the
         * old one must still be valid (not renewed or revoked meanwhile) */
        ca_cert_row_t *old = NULL;
        rv = ca_store_cert_set_status(store, p, req->supersede,
                                      CA_STATUS_VALID, CA_STATUS_SUPERSEDED,
                                      req->supersede_at, 4, 0, r->serial,
                                      &old);
        if (rv == CA_ECONFLICT || rv == CA_ENOTFOUND) {
            u->err = apr_psprintf(p, "certificate %s is %s, it cannot be "
                                  "renewed", req->supersede,
                                  old ? old->status : "unknown");
            rv = CA_ECONFLICT;
        }
        return rv;
    }
    /* other front ends on the same database (PostgreSQL) check and insert
     * one after the other too; always owner before subject */
    if (prof->max_valid_per_owner > 0) {
        rv = ca_store_txn_lock(store, p, apr_pstrcat(p, "owner\n", r->owner,
                                                     "\n", r->profile, NULL));
    }
    if (rv == APR_SUCCESS && prof->unique_subject) {
        rv = ca_store_txn_lock(store, p, apr_pstrcat(p, "subject\n",
                                                     r->subject, NULL));
    }
    if (rv == APR_SUCCESS && prof->max_valid_per_owner > 0) {
        rv = ca_store_count_valid_owner(store, p, r->owner, r->profile,
                                        u->now, &n);
        if (rv == APR_SUCCESS && n >= prof->max_valid_per_owner) {
            u->err = apr_psprintf(p, "%s already has %" APR_INT64_T_FMT
                                  " valid certificate%s of profile %s (at "
                                  "most %d); revoke one first", r->owner, n,
                                  n == 1 ? "" : "s", r->profile,
                                  prof->max_valid_per_owner);
            rv = CA_ECONFLICT;
        }
    }
    if (rv == APR_SUCCESS && prof->unique_subject) {
        rv = ca_store_count_valid_subject(store, p, r->subject, u->now, &n);
        if (rv == APR_SUCCESS && n > 0) {
            u->err = apr_psprintf(p, "a valid certificate with subject %s "
                                  "exists already (unique subjects); revoke "
                                  "it first", r->subject);
            rv = CA_ECONFLICT;
        }
    }
    return rv;
}

static apr_status_t issue_unit_run(ca_store_t *store, apr_pool_t *p,
                                   void *baton)
{
    issue_unit *u = baton;
    apr_status_t rv;

    u->err = NULL;
    if ((rv = issue_checks(store, p, u)) != APR_SUCCESS) {
        return rv;
    }
    if ((rv = ca_store_cert_insert(store, p, u->r)) != APR_SUCCESS) {
        return rv;
    }
    if (u->req->audit) {
        ca_audit_t *a = u->req->audit;
        a->serial = u->r->serial;
        if (!a->detail) {
            a->detail = apr_psprintf(p, "profile %s, subject %s",
                                     u->r->profile, u->r->subject);
        }
        rv = ca_store_audit_add(store, p, a);
    }
    return rv;
}

static apr_status_t limited_insert(apr_pool_t *p, ca_store_t *store,
                                   const ca_issue_req_t *req,
                                   const ca_cert_row_t *r, apr_int64_t now,
                                   const char **err)
{
    issue_unit u;
    apr_status_t rv;

    u.req = req;
    u.r = r;
    u.now = now;
    u.err = NULL;
    rv = ca_store_run_unit(store, p, issue_unit_run, &u);
    if (rv == CA_ECONFLICT && u.err) {
        *err = u.err;
    }
    return rv;
}

apr_status_t ca_issue(apr_pool_t *p, const ca_t *ca, ca_store_t *store,
                      const ca_issue_req_t *req, X509 **out,
                      ca_cert_row_t **row, const char **err)
{
    ASN1_INTEGER *serial = NULL;
    ca_cert_row_t *r;
    X509 *x = NULL;
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    apr_status_t rv;
    int attempt;

    *out = NULL;
    if (row) {
        *row = NULL;
    }
    *err = NULL;
    if (!ca->key) {
        /* a token key that this process could not open (ca_key_reopen) */
        *err = "the CA key is not available in this process (PKCS#11 "
               "token unreachable?)";
        return CA_EDB;
    }
    for (attempt = 0; attempt < CA_ISSUE_ATTEMPTS; attempt++) {
        if (ca_serial_random(&serial) != APR_SUCCESS) {
            *err = "cannot generate a serial number";
            return CA_ECRYPTO;
        }
        rv = ca_cert_build(p, ca, req, serial, now, &x, err);
        ASN1_INTEGER_free(serial);
        serial = NULL;
        if (rv != APR_SUCCESS) {
            return rv;
        }
        r = apr_pcalloc(p, sizeof(*r));
        r->serial = ca_serial_hex(p, X509_get0_serialNumber(x));
        r->subject = ca_x509_name_str(p, X509_get_subject_name(x));
        r->owner = req->owner ? req->owner : "";
        r->profile = req->profile->name ? req->profile->name : "default";
        r->not_before = ca_asn1_time_to_epoch(X509_get0_notBefore(x));
        r->not_after = ca_asn1_time_to_epoch(X509_get0_notAfter(x));
        r->issued_at = now;
        r->status = CA_STATUS_VALID;
        r->revoked_at = 0;
        r->reason = -1;
        r->cert_pem = ca_x509_pem(p, x);
        r->issuer_kid = ca_cert_issuer_key_id(p, x);
        if (!r->serial || !r->subject || !r->cert_pem) {
            *err = "cannot encode the certificate";
            return CA_ECRYPTO;
        }
        rv = limited_insert(p, store, req, r, now, err);
        if (rv == CA_ECONFLICT) {
            return rv;
        }
        if (rv == APR_SUCCESS) {
            ca_log(CA_LOG_MARK, CA_LOG_DEBUG, 0, p,
                   "issued certificate %s to %s (owner %s, profile %s)",
                   r->serial, r->subject, r->owner, r->profile);
            *out = x;
            if (row) {
                *row = r;
            }
            return APR_SUCCESS;
        }
        if (rv != CA_EEXIST) {
            /* reported once, by the caller */
            *err = apr_psprintf(p, "database unavailable: %s",
                                ca_store_last_error(store));
            return CA_EDB;
        }
        ca_log(CA_LOG_MARK, CA_LOG_WARN, 0, p,
               "serial %s is already taken, retrying with a new one",
               r->serial);
    }
    *err = apr_psprintf(p, "no unused serial number found after %d attempts",
                        CA_ISSUE_ATTEMPTS);
    return CA_EDB;
}
