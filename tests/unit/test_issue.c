/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_issue: profiles, serials, certificate building (every
 * extension, validity, SAN handling, policy) and issuing into a real
 * SQLite store.  The CA is made here, in memory, with OpenSSL. */

#include <string.h>
#include <unistd.h>

#include <apr_dbd.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "unit.h"
#include "ca_ca.h"
#include "ca_csr.h"
#include "ca_issue.h"
#include "ca_store.h"
#include "ca_store_test.h"
#include "ca_util.h"

#define BASE "https://ca.example:8443/ca"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static apr_status_t name_free(void *n)
{
    X509_NAME_free(n);
    return APR_SUCCESS;
}

static X509_NAME *name_of(apr_pool_t *p, const char *o, const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    if (o) {
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                                   (const unsigned char *)o, -1, -1, 0);
    }
    if (cn) {
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0);
    }
    apr_pool_cleanup_register(p, n, name_free, apr_pool_cleanup_null);
    return n;
}

static int add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *val)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, val);
    int ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* A self-signed CA valid from now+nb_off for `secs` seconds. */
static ca_t *make_ca(apr_pool_t *p, const char *keytype, long nb_off,
                     long secs)
{
    ca_t *ca = apr_pcalloc(p, sizeof(*ca));
    EVP_PKEY *key = ut_keygen(p, keytype);
    X509 *x = X509_new();
    X509_NAME *name = name_of(p, "Example", "Test CA");
    ASN1_INTEGER *serial = NULL;
    X509V3_CTX ctx;
    time_t now = time(NULL);
    int ok;

    ok = x && X509_set_version(x, X509_VERSION_3)
         && ca_serial_random(&serial) == APR_SUCCESS
         && X509_set_serialNumber(x, serial)
         && X509_set_subject_name(x, name) && X509_set_issuer_name(x, name)
         && ASN1_TIME_set(X509_getm_notBefore(x), now + nb_off)
         && ASN1_TIME_set(X509_getm_notAfter(x), now + nb_off + secs)
         && X509_set_pubkey(x, key);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ok = ok
         && add_conf_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE")
         && add_conf_ext(x, &ctx, NID_key_usage,
                         "critical,keyCertSign,cRLSign")
         && add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash")
         && add_conf_ext(x, &ctx, NID_authority_key_identifier,
                         "keyid:always")
         && X509_sign(x, key, strcmp(keytype, "ed25519") ? EVP_sha256()
                                                          : NULL) > 0;
    ASN1_INTEGER_free(serial);
    if (!ok) {
        fprintf(stderr, "make_ca failed\n");
        ERR_print_errors_fp(stderr);
        abort();
    }
    ca->cert = ca_pool_x509(p, x);
    ca->key = key;
    ca->subject = "CN=Test CA,O=Example";
    return ca;
}

static apr_array_header_t *strs(apr_pool_t *p, const char *const *v)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    while (*v) {
        APR_ARRAY_PUSH(a, const char *) = *v++;
    }
    return a;
}

static ca_issue_req_t *make_req(apr_pool_t *p, ca_profile_t *prof,
                                EVP_PKEY *key, const char *const *sans)
{
    ca_issue_req_t *r = apr_pcalloc(p, sizeof(*r));
    r->profile = prof;
    r->subject = name_of(p, "Example", "alice");
    r->sans = sans ? strs(p, sans) : NULL;
    r->pubkey = key;
    r->owner = "alice";
    r->base_url = BASE "/";
    return r;
}

/* Verify x against the CA with X509_V_FLAG_X509_STRICT; returns the
 * X509_V_* result. */
static int verify_strict(const ca_t *ca, X509 *x)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = -1;

    if (st && ctx && X509_STORE_add_cert(st, ca->cert)
        && X509_STORE_CTX_init(ctx, st, x, NULL)) {
        X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
        rc = X509_verify_cert(ctx) == 1 ? X509_V_OK
                                        : X509_STORE_CTX_get_error(ctx);
        if (rc != X509_V_OK) {
            fprintf(stderr, "  verify: %s\n",
                    X509_verify_cert_error_string(rc));
        }
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    return rc;
}

static int ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    if (i < 0) {
        return -1;
    }
    return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

static long long time_diff(const ASN1_TIME *from, const ASN1_TIME *to)
{
    int days = 0, secs = 0;
    if (!ASN1_TIME_diff(&days, &secs, from, to)) {
        return -1;
    }
    return (long long)days * 86400 + secs;
}

static int ia5_eq(const ASN1_IA5STRING *s, const char *want)
{
    return s && ASN1_STRING_length(s) == (int)strlen(want)
           && !memcmp(ASN1_STRING_get0_data(s), want, strlen(want));
}

static int one_line(const char *err)
{
    return err && *err && !strchr(err, '\n');
}

/* ------------------------------------------------------------------ */
/* Profiles, names, serials                                            */
/* ------------------------------------------------------------------ */

static void test_profile_defaults(apr_pool_t *p)
{
    ca_profile_t *prof = ca_profile_make(p, "user");
    UT_CHECK(!strcmp(prof->name, "user"));
    UT_CHECK(prof->validity_days == 365);
    UT_CHECK(prof->backdate_secs == 300);
    UT_CHECK(prof->key_usage == 0);
    UT_CHECK(prof->eku == NULL);
    UT_CHECK(prof->key_policy.rsa_min_bits == 2048);
    UT_CHECK(prof->key_policy.allow_p256 && prof->key_policy.allow_ed25519);
    prof = ca_profile_make(p, NULL);
    UT_CHECK(!strcmp(prof->name, "default"));
}

static void test_key_usage_names(apr_pool_t *p)
{
    unsigned bit = 0;
    (void)p;
    UT_CHECK(ca_key_usage_parse("digitalSignature", &bit) == APR_SUCCESS
             && bit == CA_KU_DIGITAL_SIGNATURE);
    UT_CHECK(ca_key_usage_parse("nonRepudiation", &bit) == APR_SUCCESS
             && bit == CA_KU_NON_REPUDIATION);
    UT_CHECK(ca_key_usage_parse("KEYENCIPHERMENT", &bit) == APR_SUCCESS
             && bit == CA_KU_KEY_ENCIPHERMENT);
    UT_CHECK(ca_key_usage_parse("dataencipherment", &bit) == APR_SUCCESS
             && bit == CA_KU_DATA_ENCIPHERMENT);
    UT_CHECK(ca_key_usage_parse("keyAgreement", &bit) == APR_SUCCESS
             && bit == CA_KU_KEY_AGREEMENT);
    UT_CHECK(ca_key_usage_parse("keyCertSign", &bit) == CA_EBADINPUT);
    UT_CHECK(ca_key_usage_parse("cRLSign", &bit) == CA_EBADINPUT);
    UT_CHECK(ca_key_usage_parse("", &bit) == CA_EBADINPUT);
    UT_CHECK(ca_key_usage_parse(NULL, &bit) == CA_EBADINPUT);

    UT_CHECK(ca_eku_check("clientAuth") == APR_SUCCESS);
    UT_CHECK(ca_eku_check("serverAuth") == APR_SUCCESS);
    UT_CHECK(ca_eku_check("emailProtection") == APR_SUCCESS);
    UT_CHECK(ca_eku_check("codeSigning") == APR_SUCCESS);
    UT_CHECK(ca_eku_check("OCSPSigning") == APR_SUCCESS);
    UT_CHECK(ca_eku_check("timeStamping") == APR_SUCCESS);
    UT_CHECK(ca_eku_check("1.3.6.1.5.5.7.3.2") == APR_SUCCESS);
    UT_CHECK(ca_eku_check("1.2.3.4.5") == APR_SUCCESS);
    UT_CHECK(ca_eku_check("bogusAuth") == CA_EBADINPUT);
    UT_CHECK(ca_eku_check("1.2..3") == CA_EBADINPUT);
    UT_CHECK(ca_eku_check("1.2.3.") == CA_EBADINPUT);
    UT_CHECK(ca_eku_check("3.1.2") == CA_EBADINPUT);
    UT_CHECK(ca_eku_check("1") == CA_EBADINPUT);
    UT_CHECK(ca_eku_check("1.2.3,1.2.4") == CA_EBADINPUT);
    UT_CHECK(ca_eku_check("") == CA_EBADINPUT);
    UT_CHECK(ca_eku_check(NULL) == CA_EBADINPUT);
    /* a long name is not a short name */
    UT_CHECK(ca_eku_check("TLS Web Client Authentication") == CA_EBADINPUT);
}

static void test_serial_random(apr_pool_t *p)
{
    enum { N = 200 };
    unsigned char seen[N][16];
    int i, j, distinct = 1;

    for (i = 0; i < N; i++) {
        ASN1_INTEGER *s = NULL;
        BIGNUM *bn;
        unsigned char *der = NULL;
        int len;

        UT_CHECK(ca_serial_random(&s) == APR_SUCCESS && s != NULL);
        if (!s) {
            return;
        }
        bn = ASN1_INTEGER_to_BN(s, NULL);
        UT_CHECK(bn && !BN_is_negative(bn) && !BN_is_zero(bn));
        UT_CHECK(bn && BN_num_bytes(bn) == 16);
        /* DER: 02 10 <16 bytes>, no leading zero octet */
        len = i2d_ASN1_INTEGER(s, &der);
        UT_CHECK(len == 18 && der[0] == 0x02 && der[1] == 0x10);
        UT_CHECK(len == 18 && der[2] >= 0x01 && der[2] <= 0x7f);
        if (len == 18) {
            memcpy(seen[i], der + 2, 16);
        }
        for (j = 0; j < i; j++) {
            if (!memcmp(seen[i], seen[j], 16)) {
                distinct = 0;
            }
        }
        /* the canonical text form is 32 hex digits */
        UT_CHECK(strlen(ca_serial_hex(p, s)) == 32);
        OPENSSL_free(der);
        BN_free(bn);
        ASN1_INTEGER_free(s);
    }
    UT_CHECK(distinct);
}

/* ------------------------------------------------------------------ */
/* Building                                                            */
/* ------------------------------------------------------------------ */

static void test_build_full(apr_pool_t *p)
{
    ca_t *ca = make_ca(p, "p256", -86400, 3650L * 86400);
    ca_profile_t *prof = ca_profile_make(p, "user");
    static const char *const sans[] = {
        "email:alice@example.org", "DNS:alice.example.org",
        "URI:urn:publicid:IDN+example.org+user+alice", "IP:192.0.2.7",
        "IP:2001:db8::1", NULL
    };
    static const char *const ekus[] = { "clientAuth", "emailProtection",
                                        "1.3.6.1.4.1.99999.1", NULL };
    ca_issue_req_t *req;
    X509 *x = NULL;
    const char *err = NULL;
    apr_int64_t now = (apr_int64_t)time(NULL);
    GENERAL_NAMES *gens;
    BASIC_CONSTRAINTS *bc;
    ASN1_BIT_STRING *ku;
    EXTENDED_KEY_USAGE *eku;
    AUTHORITY_KEYID *akid;
    CRL_DIST_POINTS *cdp;
    AUTHORITY_INFO_ACCESS *aia;
    const ASN1_OCTET_STRING *ski, *ca_ski;
    int crit = 0, i;
    BIGNUM *bn;

    prof->eku = strs(p, ekus);
    req = make_req(p, prof, ut_keygen(p, "p256"), sans);
    UT_CHECK_MSG(ca_cert_build(p, ca, req, NULL, now, &x, &err)
                 == APR_SUCCESS, "%s", err ? err : "");
    UT_CHECK(x != NULL);
    if (!x) {
        return;
    }

    /* version, serial, names, signature */
    UT_CHECK(X509_get_version(x) == X509_VERSION_3);
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    UT_CHECK(bn && !BN_is_negative(bn) && BN_num_bytes(bn) == 16);
    BN_free(bn);
    UT_CHECK(X509_NAME_cmp(X509_get_issuer_name(x),
                           X509_get_subject_name(ca->cert)) == 0);
    UT_CHECK(X509_NAME_cmp(X509_get_subject_name(x), req->subject) == 0);
    UT_CHECK(X509_verify(x, ca->key) == 1);
    UT_CHECK(X509_check_issued(ca->cert, x) == X509_V_OK);
    UT_CHECK(X509_get_signature_nid(x) == NID_ecdsa_with_SHA256);
    UT_CHECK(EVP_PKEY_eq(X509_get0_pubkey(x), req->pubkey) == 1);

    /* validity: backdated 300 s, 365 days */
    UT_CHECK(time_diff(X509_get0_notBefore(x), X509_get0_notAfter(x))
             == 365LL * 86400 + 300);
    UT_CHECK(ca_asn1_time_to_epoch(X509_get0_notBefore(x)) == now - 300);

    /* basicConstraints critical CA:FALSE */
    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    UT_CHECK(bc && !bc->ca && !bc->pathlen && crit == 1);
    BASIC_CONSTRAINTS_free(bc);

    /* keyUsage critical digitalSignature only (EC key) */
    ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
    UT_CHECK(ku && crit == 1);
    UT_CHECK(ku && ASN1_BIT_STRING_get_bit(ku, 0)
             && !ASN1_BIT_STRING_get_bit(ku, 2));
    ASN1_BIT_STRING_free(ku);
    UT_CHECK(X509_get_key_usage(x) == KU_DIGITAL_SIGNATURE);

    /* extendedKeyUsage */
    UT_CHECK(X509_get_extended_key_usage(x) == (XKU_SSL_CLIENT | XKU_SMIME));
    eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
    UT_CHECK(eku && sk_ASN1_OBJECT_num(eku) == 3 && crit == 0);
    if (eku && sk_ASN1_OBJECT_num(eku) == 3) {
        char txt[64];
        OBJ_obj2txt(txt, sizeof(txt), sk_ASN1_OBJECT_value(eku, 2), 1);
        UT_CHECK(!strcmp(txt, "1.3.6.1.4.1.99999.1"));
    }
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);

    /* SKI = SHA-1 of the key; AKI keyid = the CA's SKI */
    ski = X509_get0_subject_key_id(x);
    ca_ski = X509_get0_subject_key_id(ca->cert);
    UT_CHECK(ski && ASN1_STRING_length(ski) == 20);
    UT_CHECK(ext_critical(x, NID_subject_key_identifier) == 0);
    {
        unsigned char md[20];
        unsigned int mdlen = 0;
        X509_pubkey_digest(x, EVP_sha1(), md, &mdlen);
        UT_CHECK(ski && mdlen == 20 && !memcmp(ASN1_STRING_get0_data(ski),
                                               md, 20));
    }
    akid = X509_get_ext_d2i(x, NID_authority_key_identifier, &crit, NULL);
    UT_CHECK(akid && akid->keyid && ca_ski && crit == 0
             && ASN1_OCTET_STRING_cmp(akid->keyid, ca_ski) == 0);
    UT_CHECK(akid && !akid->issuer && !akid->serial);
    AUTHORITY_KEYID_free(akid);

    /* subjectAltName, in order, not critical (the subject is not empty) */
    gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    UT_CHECK(gens && sk_GENERAL_NAME_num(gens) == 5 && crit == 0);
    if (gens && sk_GENERAL_NAME_num(gens) == 5) {
        GENERAL_NAME *g;
        int type;
        g = sk_GENERAL_NAME_value(gens, 0);
        UT_CHECK(ia5_eq(GENERAL_NAME_get0_value(g, &type),
                        "alice@example.org") && type == GEN_EMAIL);
        g = sk_GENERAL_NAME_value(gens, 1);
        UT_CHECK(ia5_eq(GENERAL_NAME_get0_value(g, &type),
                        "alice.example.org") && type == GEN_DNS);
        g = sk_GENERAL_NAME_value(gens, 2);
        UT_CHECK(ia5_eq(GENERAL_NAME_get0_value(g, &type),
                        "urn:publicid:IDN+example.org+user+alice")
                 && type == GEN_URI);
        g = sk_GENERAL_NAME_value(gens, 3);
        {
            ASN1_OCTET_STRING *ip = GENERAL_NAME_get0_value(g, &type);
            static const unsigned char v4[4] = { 192, 0, 2, 7 };
            UT_CHECK(type == GEN_IPADD && ASN1_STRING_length(ip) == 4
                     && !memcmp(ASN1_STRING_get0_data(ip), v4, 4));
        }
        g = sk_GENERAL_NAME_value(gens, 4);
        {
            ASN1_OCTET_STRING *ip = GENERAL_NAME_get0_value(g, &type);
            static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
            UT_CHECK(type == GEN_IPADD && ASN1_STRING_length(ip) == 16
                     && !memcmp(ASN1_STRING_get0_data(ip), v6, 16));
        }
    }
    GENERAL_NAMES_free(gens);

    /* CRL distribution point: one full-name URI, trailing '/' dropped */
    cdp = X509_get_ext_d2i(x, NID_crl_distribution_points, &crit, NULL);
    UT_CHECK(cdp && sk_DIST_POINT_num(cdp) == 1 && crit == 0);
    if (cdp && sk_DIST_POINT_num(cdp) == 1) {
        DIST_POINT *dp = sk_DIST_POINT_value(cdp, 0);
        UT_CHECK(dp->distpoint && dp->distpoint->type == 0
                 && !dp->reasons && !dp->CRLissuer);
        if (dp->distpoint && dp->distpoint->type == 0) {
            GENERAL_NAMES *fn = dp->distpoint->name.fullname;
            int type;
            UT_CHECK(sk_GENERAL_NAME_num(fn) == 1);
            UT_CHECK(ia5_eq(GENERAL_NAME_get0_value(
                                sk_GENERAL_NAME_value(fn, 0), &type),
                            BASE "/crl") && type == GEN_URI);
        }
    }
    CRL_DIST_POINTS_free(cdp);

    /* AIA caIssuers */
    aia = X509_get_ext_d2i(x, NID_info_access, &crit, NULL);
    UT_CHECK(aia && sk_ACCESS_DESCRIPTION_num(aia) == 1 && crit == 0);
    if (aia && sk_ACCESS_DESCRIPTION_num(aia) == 1) {
        ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, 0);
        int type;
        UT_CHECK(OBJ_obj2nid(ad->method) == NID_ad_ca_issuers);
        /* the issuer's own generation: cacert/KEYID.crt */
        UT_CHECK(ia5_eq(GENERAL_NAME_get0_value(ad->location, &type),
                        apr_pstrcat(p, BASE "/cacert/",
                                    ca_cert_key_id(p, ca->cert), ".crt",
                                    NULL)) && type == GEN_URI);
    }
    AUTHORITY_INFO_ACCESS_free(aia);

    /* nothing else */
    UT_CHECK(X509_get_ext_count(x) == 8);
    for (i = 0; i < X509_get_ext_count(x); i++) {
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, i)));
        UT_CHECK(X509_get_ext_by_NID(x, nid, i) == -1); /* no duplicates */
    }

    UT_CHECK(verify_strict(ca, x) == X509_V_OK);
}

static void test_build_minimal(apr_pool_t *p)
{
    /* no SANs, no EKU, no base URL: none of those extensions */
    ca_t *ca = make_ca(p, "p256", -86400, 3650L * 86400);
    ca_profile_t *prof = ca_profile_make(p, NULL);
    ca_issue_req_t *req = make_req(p, prof, ut_keygen(p, "p256"), NULL);
    X509 *x = NULL;
    const char *err = NULL;

    req->base_url = NULL;
    UT_CHECK(ca_cert_build(p, ca, req, NULL, (apr_int64_t)time(NULL), &x,
                           &err) == APR_SUCCESS);
    UT_CHECK(x && X509_get_ext_count(x) == 4);
    UT_CHECK(x && ext_critical(x, NID_basic_constraints) == 1);
    UT_CHECK(x && ext_critical(x, NID_key_usage) == 1);
    UT_CHECK(x && ext_critical(x, NID_subject_key_identifier) == 0);
    UT_CHECK(x && ext_critical(x, NID_authority_key_identifier) == 0);
    UT_CHECK(x && ext_critical(x, NID_subject_alt_name) == -1);
    UT_CHECK(x && ext_critical(x, NID_ext_key_usage) == -1);
    UT_CHECK(x && ext_critical(x, NID_crl_distribution_points) == -1);
    UT_CHECK(x && ext_critical(x, NID_info_access) == -1);
    UT_CHECK(x && verify_strict(ca, x) == X509_V_OK);
}

/* With req->spki (the CSR's SubjectPublicKeyInfo) the certificate carries
 * exactly those octets and the same key as without it (X509_set_pubkey),
 * for every key type. */
static void test_build_spki_copy(apr_pool_t *p)
{
    static const char *const types[] = {"p256", "rsa2048", "ed25519"};
    ca_t *ca = make_ca(p, "p256", -86400, 3650L * 86400);
    ca_profile_t *prof = ca_profile_make(p, NULL);
    apr_size_t i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        EVP_PKEY *k = ut_keygen(p, types[i]);
        X509_PUBKEY *spki = NULL;
        unsigned char *want = NULL, *got = NULL, *plain = NULL;
        int wlen, glen, plen;
        ca_issue_req_t *req = make_req(p, prof, k, NULL);
        X509 *x = NULL, *y = NULL;
        const char *err = NULL;

        UT_CHECK(X509_PUBKEY_set(&spki, k) == 1);
        wlen = i2d_X509_PUBKEY(spki, &want);
        UT_CHECK(ca_cert_build(p, ca, req, NULL, (apr_int64_t)time(NULL),
                               &y, &err) == APR_SUCCESS);
        req->spki = spki;
        UT_CHECK_MSG(ca_cert_build(p, ca, req, NULL, (apr_int64_t)time(NULL),
                                   &x, &err) == APR_SUCCESS, "%s: %s",
                     types[i], err ? err : "");
        glen = x ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &got) : -1;
        plen = y ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(y), &plain) : -2;
        UT_CHECK_MSG(wlen > 0 && wlen == glen && !memcmp(want, got, wlen),
                     "%s: SubjectPublicKeyInfo differs", types[i]);
        UT_CHECK_MSG(plen == glen && !memcmp(plain, got, plen),
                     "%s: differs from X509_set_pubkey's", types[i]);
        /* signed by the CA; and as a relying party parses it: the same
         * key, a valid certificate */
        UT_CHECK(x && X509_verify(x, ca->key) == 1);
        if (x) {
            unsigned char *der = NULL;
            const unsigned char *q;
            int dlen = i2d_X509(x, &der);
            X509 *parsed;
            q = der;
            parsed = dlen > 0 ? d2i_X509(NULL, &q, dlen) : NULL;
            UT_CHECK(parsed
                     && EVP_PKEY_eq(X509_get0_pubkey(parsed), k) == 1);
            UT_CHECK(parsed && verify_strict(ca, parsed) == X509_V_OK);
            X509_free(parsed);
            OPENSSL_free(der);
        }
        OPENSSL_free(want);
        OPENSSL_free(got);
        OPENSSL_free(plain);
        X509_PUBKEY_free(spki);
    }
}

static void test_build_given_serial(apr_pool_t *p)
{
    ca_t *ca = make_ca(p, "p256", -86400, 3650L * 86400);
    ca_issue_req_t *req = make_req(p, ca_profile_make(p, NULL),
                                   ut_keygen(p, "p256"), NULL);
    ASN1_INTEGER *serial = NULL;
    X509 *x = NULL;
    const char *err;

    UT_CHECK(ca_serial_random(&serial) == APR_SUCCESS);
    UT_CHECK(ca_cert_build(p, ca, req, serial, (apr_int64_t)time(NULL), &x,
                           &err) == APR_SUCCESS);
    UT_CHECK(x && ASN1_INTEGER_cmp(X509_get0_serialNumber(x), serial) == 0);
    ASN1_INTEGER_free(serial);
}

static void test_build_key_usage(apr_pool_t *p)
{
    ca_t *ca = make_ca(p, "p256", -86400, 3650L * 86400);
    ca_profile_t *prof = ca_profile_make(p, NULL);
    EVP_PKEY *rsa = ut_keygen(p, "rsa2048"), *ec = ut_keygen(p, "p256"),
             *ed = ut_keygen(p, "ed25519");
    X509 *x = NULL;
    const char *err = NULL;
    apr_int64_t now = (apr_int64_t)time(NULL);

    /* defaults: RSA gets keyEncipherment too */
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, rsa, NULL), NULL, now,
                           &x, &err) == APR_SUCCESS);
    UT_CHECK(x && X509_get_key_usage(x)
                      == (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
    UT_CHECK(x && ext_critical(x, NID_key_usage) == 1);
    UT_CHECK(x && verify_strict(ca, x) == X509_V_OK);
    x = NULL;
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ed, NULL), NULL, now,
                           &x, &err) == APR_SUCCESS);
    UT_CHECK(x && X509_get_key_usage(x) == KU_DIGITAL_SIGNATURE);

    /* the profile's bits; those a key type cannot do are left out */
    prof->key_usage = CA_KU_DIGITAL_SIGNATURE | CA_KU_NON_REPUDIATION
                      | CA_KU_KEY_ENCIPHERMENT | CA_KU_KEY_AGREEMENT;
    x = NULL;
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, rsa, NULL), NULL, now,
                           &x, &err) == APR_SUCCESS);
    UT_CHECK(x && X509_get_key_usage(x)
                      == (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION
                          | KU_KEY_ENCIPHERMENT));
    x = NULL;
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ec, NULL), NULL, now,
                           &x, &err) == APR_SUCCESS);
    UT_CHECK(x && X509_get_key_usage(x)
                      == (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION
                          | KU_KEY_AGREEMENT));

    /* a profile of only keyEncipherment cannot serve an EC key */
    prof->key_usage = CA_KU_KEY_ENCIPHERMENT;
    x = NULL;
    err = NULL;
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ec, NULL), NULL, now,
                           &x, &err) == CA_EPOLICY);
    UT_CHECK(x == NULL && one_line(err));
}

static void test_build_validity(apr_pool_t *p)
{
    ca_profile_t *prof = ca_profile_make(p, NULL);
    apr_int64_t now = (apr_int64_t)time(NULL);
    ca_t *ca;
    X509 *x = NULL;
    const char *err = NULL;

    /* the CA expires in 30 days: notAfter is clamped to the CA's */
    ca = make_ca(p, "p256", -86400, 31L * 86400);
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ut_keygen(p, "p256"), NULL),
                           NULL, now, &x, &err) == APR_SUCCESS);
    UT_CHECK(x && ASN1_TIME_compare(X509_get0_notAfter(x),
                                    X509_get0_notAfter(ca->cert)) == 0);
    UT_CHECK(x && verify_strict(ca, x) == X509_V_OK);

    /* a CA made this very second: notBefore is not before the CA's */
    ca = make_ca(p, "p256", 0, 3650L * 86400);
    x = NULL;
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ut_keygen(p, "p256"), NULL),
                           NULL, now, &x, &err) == APR_SUCCESS);
    UT_CHECK(x && ASN1_TIME_compare(X509_get0_notBefore(x),
                                    X509_get0_notBefore(ca->cert)) >= 0);

    /* profile validity */
    prof->validity_days = 7;
    prof->backdate_secs = 0;
    ca = make_ca(p, "p256", -86400, 3650L * 86400);
    x = NULL;
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ut_keygen(p, "p256"), NULL),
                           NULL, now, &x, &err) == APR_SUCCESS);
    UT_CHECK(x && time_diff(X509_get0_notBefore(x), X509_get0_notAfter(x))
                      == 7LL * 86400);
    UT_CHECK(x && ca_asn1_time_to_epoch(X509_get0_notBefore(x)) == now);

    /* validity beyond 2049: GeneralizedTime, still verifies */
    prof->validity_days = 365 * 40;
    ca = make_ca(p, "p256", -86400, 50L * 365 * 86400);
    x = NULL;
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ut_keygen(p, "p256"), NULL),
                           NULL, now, &x, &err) == APR_SUCCESS);
    UT_CHECK(x && ASN1_STRING_type(X509_get0_notAfter(x))
                      == V_ASN1_GENERALIZEDTIME);
    UT_CHECK(x && ASN1_STRING_type(X509_get0_notBefore(x))
                      == V_ASN1_UTCTIME);
    UT_CHECK(x && verify_strict(ca, x) == X509_V_OK);

    /* nonsense validity is a configuration error */
    prof->validity_days = 0;
    x = NULL;
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ut_keygen(p, "p256"), NULL),
                           NULL, now, &x, &err) == CA_ECONFIG);
    UT_CHECK(x == NULL);

    /* an expired CA issues nothing */
    prof->validity_days = 365;
    ca = make_ca(p, "p256", -10L * 86400, 86400);
    x = NULL;
    err = NULL;
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ut_keygen(p, "p256"), NULL),
                           NULL, now, &x, &err) == CA_ECONFIG);
    UT_CHECK(x == NULL && one_line(err));
}

static void test_build_ed25519_ca(apr_pool_t *p)
{
    ca_t *ca = make_ca(p, "ed25519", -86400, 3650L * 86400);
    ca_profile_t *prof = ca_profile_make(p, NULL);
    X509 *x = NULL;
    const char *err = NULL;

    UT_CHECK_MSG(ca_cert_build(p, ca, make_req(p, prof, ut_keygen(p, "rsa2048"),
                                               NULL),
                               NULL, (apr_int64_t)time(NULL), &x, &err)
                 == APR_SUCCESS, "%s", err ? err : "");
    UT_CHECK(x && X509_get_signature_nid(x) == NID_ED25519);
    UT_CHECK(x && X509_verify(x, ca->key) == 1);
    UT_CHECK(x && verify_strict(ca, x) == X509_V_OK);
}

static void test_build_weak_key(apr_pool_t *p)
{
    ca_t *ca = make_ca(p, "p256", -86400, 3650L * 86400);
    ca_profile_t *prof = ca_profile_make(p, NULL);
    X509 *x = NULL;
    const char *err = NULL;
    apr_int64_t now = (apr_int64_t)time(NULL);

    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ut_keygen(p, "rsa1024"),
                                           NULL),
                           NULL, now, &x, &err) == CA_EPOLICY);
    UT_CHECK(x == NULL && err && strstr(err, "RSA 1024-bit key refused"));
    err = NULL;
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ut_keygen(p, "k256"), NULL),
                           NULL, now, &x, &err) == CA_EPOLICY);
    UT_CHECK(x == NULL && err && strstr(err, "secp256k1"));
    /* the profile's policy applies */
    prof->key_policy.allow_ed25519 = 0;
    err = NULL;
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ut_keygen(p, "ed25519"),
                                           NULL),
                           NULL, now, &x, &err) == CA_EPOLICY);
    UT_CHECK(x == NULL && one_line(err));
}

/* Build with one SAN list; returns the status, *n the number of names. */
static apr_status_t build_sans(apr_pool_t *p, const ca_t *ca,
                               const char *const *sans, int *n,
                               const char **first, const char **err)
{
    ca_issue_req_t *req = make_req(p, ca_profile_make(p, NULL),
                                   ut_keygen(p, "p256"), sans);
    X509 *x = NULL;
    GENERAL_NAMES *gens;
    apr_status_t rv;

    *n = -1;
    *first = NULL;
    *err = NULL;
    rv = ca_cert_build(p, ca, req, NULL, (apr_int64_t)time(NULL), &x, err);
    if (rv == APR_SUCCESS) {
        gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        *n = gens ? sk_GENERAL_NAME_num(gens) : 0;
        if (gens && *n > 0) {
            int type;
            ASN1_STRING *s = GENERAL_NAME_get0_value(
                sk_GENERAL_NAME_value(gens, 0), &type);
            *first = apr_pstrmemdup(p, (const char *)ASN1_STRING_get0_data(s),
                                    (apr_size_t)ASN1_STRING_length(s));
        }
        GENERAL_NAMES_free(gens);
    }
    else {
        UT_CHECK(x == NULL);
    }
    return rv;
}

static void test_san_validation(apr_pool_t *p)
{
    ca_t *ca = make_ca(p, "p256", -86400, 3650L * 86400);
    static const char *const bad[] = {
        "DNS:a,DNS:b", "DNS:a.example, DNS:b.example",
        "email:a@example.org,DNS:evil.example", "IP:192.0.2.1,DNS:x",
        "IP:192.0.2.1 ", "IP:192.0.2", "IP:300.1.1.1", "IP:::1::2",
        "DNS:", "DNS:-bad.example", "DNS:bad-.example", "DNS:a..b",
        "DNS:a.example.", "DNS:a b", "DNS:a\nb", "DNS:*", "DNS:a.*.example",
        "DNS:under_score.example",
        "email:", "email:@example.org", "email:a@", "email:a@@b.example",
        "email:a b@example.org", "email:<a@example.org>",
        "URI:", "URI:no-scheme", "URI:http://a b/", "URI:http://a\"b/",
        "URI:http://x/\r\nDNS:y",
        "otherName:1.2.3;UTF8:x", "dirName:sect", "RID:1.2.3", "x400:y",
        "DNSx:a", "nocolon", ":x", "",
    };
    static const struct { const char *san, *value; } good[] = {
        { "DNS:host.example.org", "host.example.org" },
        { "dns:*.example.org", "*.example.org" },
        { "DNS:xn--bcher-kva.example", "xn--bcher-kva.example" },
        { "email:first.last+tag@example.org", "first.last+tag@example.org" },
        { "EMAIL:a@b.example", "a@b.example" },
        /* a comma inside a URI is part of that one URI */
        { "URI:https://x.example/?a=1,DNS:b", "https://x.example/?a=1,DNS:b" },
        { "URI:urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
          "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6" },
    };
    apr_size_t i;
    int n;
    const char *first, *err;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *sans[2] = { bad[i], NULL };
        apr_status_t rv = build_sans(p, ca, sans, &n, &first, &err);
        UT_CHECK_MSG(rv == CA_EBADINPUT, "'%s' gave %d names", bad[i], n);
        UT_CHECK_MSG(rv != APR_SUCCESS || n == 1, "%s", bad[i]);
        UT_CHECK_MSG(rv == APR_SUCCESS || (one_line(err)
                                           && strstr(err, "subjectAltName")),
                     "%s: %s", bad[i], err ? err : "");
    }
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const char *sans[2] = { good[i].san, NULL };
        apr_status_t rv = build_sans(p, ca, sans, &n, &first, &err);
        UT_CHECK_MSG(rv == APR_SUCCESS && n == 1
                     && !strcmp(first, good[i].value),
                     "%s: %s", good[i].san, err ? err : "");
    }
    /* the message names the bad entry (printably) */
    {
        const char *sans[] = { "DNS:ok.example", "DNS:a,DNS:b", NULL };
        UT_CHECK(build_sans(p, ca, sans, &n, &first, &err) == CA_EBADINPUT);
        UT_CHECK(err && strstr(err, "DNS:a,DNS:b"));
    }
    /* too many */
    {
        const char **many = apr_pcalloc(p, 102 * sizeof(char *));
        for (i = 0; i < 101; i++) {
            many[i] = apr_psprintf(p, "DNS:h%d.example", (int)i);
        }
        UT_CHECK(build_sans(p, ca, many, &n, &first, &err) == CA_EBADINPUT);
        many[100] = NULL;
        UT_CHECK(build_sans(p, ca, many, &n, &first, &err) == APR_SUCCESS
                 && n == 100);
    }
}

static void test_empty_subject(apr_pool_t *p)
{
    ca_t *ca = make_ca(p, "p256", -86400, 3650L * 86400);
    static const char *const sans[] = { "email:alice@example.org", NULL };
    ca_issue_req_t *req = make_req(p, ca_profile_make(p, NULL),
                                   ut_keygen(p, "p256"), sans);
    X509 *x = NULL;
    const char *err = NULL;

    req->subject = name_of(p, NULL, NULL);
    UT_CHECK(ca_cert_build(p, ca, req, NULL, (apr_int64_t)time(NULL), &x,
                           &err) == APR_SUCCESS);
    /* RFC 5280 4.2.1.6: an empty subject needs a critical SAN */
    UT_CHECK(x && ext_critical(x, NID_subject_alt_name) == 1);
    UT_CHECK(x && verify_strict(ca, x) == X509_V_OK);

    req->sans = NULL;
    x = NULL;
    UT_CHECK(ca_cert_build(p, ca, req, NULL, (apr_int64_t)time(NULL), &x,
                           &err) == CA_EBADINPUT);
    UT_CHECK(x == NULL && one_line(err));
}

static void test_base_url(apr_pool_t *p)
{
    ca_t *ca = make_ca(p, "p256", -86400, 3650L * 86400);
    ca_issue_req_t *req = make_req(p, ca_profile_make(p, NULL),
                                   ut_keygen(p, "p256"), NULL);
    X509 *x = NULL;
    const char *err = NULL;
    CRL_DIST_POINTS *cdp;
    static const char *const bad[] = {
        "javascript:alert(1)", "ftp://x/", "https://", "https://a b/",
        "https://x/\nURI:y", "/ca", "",
    };
    apr_size_t i;

    /* a comma cannot add a second URL: the whole string is one URI */
    req->base_url = "https://ca.example/ca,URI:http://evil.example";
    UT_CHECK(ca_cert_build(p, ca, req, NULL, (apr_int64_t)time(NULL), &x,
                           &err) == APR_SUCCESS);
    cdp = x ? X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL)
            : NULL;
    UT_CHECK(cdp && sk_DIST_POINT_num(cdp) == 1);
    if (cdp && sk_DIST_POINT_num(cdp) == 1) {
        GENERAL_NAMES *fn = sk_DIST_POINT_value(cdp, 0)->distpoint
                                ->name.fullname;
        int type;
        UT_CHECK(sk_GENERAL_NAME_num(fn) == 1);
        UT_CHECK(ia5_eq(GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(fn, 0),
                                                &type),
                        "https://ca.example/ca,URI:http://evil.example/crl"));
    }
    CRL_DIST_POINTS_free(cdp);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req->base_url = bad[i];
        x = NULL;
        err = NULL;
        UT_CHECK_MSG(ca_cert_build(p, ca, req, NULL, (apr_int64_t)time(NULL),
                                   &x, &err) == CA_ECONFIG, "%s", bad[i]);
        UT_CHECK(x == NULL && one_line(err));
    }
}

static void test_bad_eku_in_profile(apr_pool_t *p)
{
    ca_t *ca = make_ca(p, "p256", -86400, 3650L * 86400);
    ca_profile_t *prof = ca_profile_make(p, NULL);
    static const char *const ekus[] = { "clientAuth", "clientAuth,1.2.3",
                                        NULL };
    X509 *x = NULL;
    const char *err = NULL;

    prof->eku = strs(p, ekus);
    UT_CHECK(ca_cert_build(p, ca, make_req(p, prof, ut_keygen(p, "p256"), NULL),
                           NULL, (apr_int64_t)time(NULL), &x, &err)
             == CA_ECONFIG);
    UT_CHECK(x == NULL && one_line(err));
}

/* ------------------------------------------------------------------ */
/* Issuing into a store                                                */
/* ------------------------------------------------------------------ */

static ca_store_t *open_store(apr_pool_t *p, const char **path)
{
    ca_store_t *s = NULL;
    const char *err = NULL;
    int version = 0;

    *path = ut_tmpdb(p);
    if (ca_store_open(&s, p, "sqlite3", *path, &err) != APR_SUCCESS
        || ca_store_migrate(s, p, &version, &err) != APR_SUCCESS) {
        fprintf(stderr, "  store: %s\n", err ? err : "?");
        return NULL;
    }
    return s;
}

static void test_issue_store(apr_pool_t *p)
{
    ca_t *ca = make_ca(p, "p256", -86400, 3650L * 86400);
    ca_profile_t *prof = ca_profile_make(p, "user");
    static const char *const sans[] = { "email:alice@example.org", NULL };
    const char *path, *err = NULL;
    ca_store_t *s = open_store(p, &path);
    X509 *x1 = NULL, *x2 = NULL;
    ca_cert_row_t *r1 = NULL, *r2 = NULL, *got = NULL;
    apr_int64_t count = -1, before = (apr_int64_t)time(NULL);
    ca_issue_req_t *req;

    UT_CHECK(s != NULL);
    if (!s) {
        return;
    }
    req = make_req(p, prof, ut_keygen(p, "p256"), sans);
    UT_CHECK_MSG(ca_issue(p, ca, s, req, &x1, &r1, &err) == APR_SUCCESS,
                 "%s", err ? err : "");
    UT_CHECK_MSG(ca_issue(p, ca, s, req, &x2, &r2, &err) == APR_SUCCESS,
                 "%s", err ? err : "");
    if (!x1 || !x2 || !r1 || !r2) {
        return;
    }
    UT_CHECK(strcmp(r1->serial, r2->serial) != 0);
    UT_CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(x1),
                              X509_get0_serialNumber(x2)) != 0);
    UT_CHECK(!strcmp(r1->serial, ca_serial_hex(p,
                                              X509_get0_serialNumber(x1))));
    UT_CHECK(strlen(r1->serial) == 32);
    UT_CHECK(!strcmp(r1->owner, "alice"));
    UT_CHECK(!strcmp(r1->profile, "user"));
    UT_CHECK(!strcmp(r1->status, CA_STATUS_VALID));
    UT_CHECK(r1->revoked_at == 0 && r1->reason == -1);
    UT_CHECK(r1->issued_at >= before && r1->issued_at <= before + 60);
    UT_CHECK(r1->not_before == r1->issued_at - 300);
    UT_CHECK(r1->not_after == r1->issued_at + 365LL * 86400);
    UT_CHECK(!strcmp(r1->cert_pem, ca_x509_pem(p, x1)));
    UT_CHECK(verify_strict(ca, x1) == X509_V_OK);
    UT_CHECK(verify_strict(ca, x2) == X509_V_OK);

    UT_CHECK(ca_store_cert_get(s, p, r1->serial, &got) == APR_SUCCESS);
    UT_CHECK(got && !strcmp(got->cert_pem, r1->cert_pem));
    UT_CHECK(got && !strcmp(got->serial, r1->serial));
    UT_CHECK(got && !strcmp(got->subject, r1->subject));
    UT_CHECK(got && !strcmp(got->owner, "alice"));
    UT_CHECK(got && got->not_after == r1->not_after);
    /* the stored PEM is the certificate */
    if (got) {
        BIO *bio = BIO_new_mem_buf(got->cert_pem, -1);
        X509 *back = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        UT_CHECK(back && X509_cmp(back, x1) == 0);
        X509_free(back);
        BIO_free(bio);
    }
    got = NULL;
    UT_CHECK(ca_store_cert_get(s, p, r2->serial, &got) == APR_SUCCESS);
    UT_CHECK(got && !strcmp(got->cert_pem, r2->cert_pem));
    UT_CHECK(ca_store_cert_count(s, p, &count) == APR_SUCCESS && count == 2);

    /* a refused request stores nothing */
    x1 = NULL;
    r1 = NULL;
    err = NULL;
    req = make_req(p, prof, ut_keygen(p, "rsa1024"), sans);
    UT_CHECK(ca_issue(p, ca, s, req, &x1, &r1, &err) == CA_EPOLICY);
    UT_CHECK(x1 == NULL && r1 == NULL && one_line(err));
    {
        static const char *const bad[] = { "DNS:a,DNS:b", NULL };
        req = make_req(p, prof, ut_keygen(p, "p256"), bad);
        err = NULL;
        UT_CHECK(ca_issue(p, ca, s, req, &x1, &r1, &err) == CA_EBADINPUT);
        UT_CHECK(x1 == NULL && r1 == NULL && one_line(err));
    }
    UT_CHECK(ca_store_cert_count(s, p, &count) == APR_SUCCESS && count == 2);
}

static void test_issue_db_unavailable(apr_pool_t *p)
{
    ca_t *ca = make_ca(p, "p256", -86400, 3650L * 86400);
    const char *path, *err = NULL;
    ca_store_t *s = open_store(p, &path);
    const apr_dbd_driver_t *drv = NULL;
    apr_dbd_t *h = NULL;
    int nrows = 0;
    X509 *x = NULL;
    ca_cert_row_t *r = NULL;
    apr_status_t rv;

    UT_CHECK(s != NULL);
    if (!s) {
        return;
    }
    /* someone drops the table behind our back */
    apr_dbd_init(p);
    UT_CHECK(apr_dbd_get_driver(p, "sqlite3", &drv) == APR_SUCCESS);
    UT_CHECK(drv && apr_dbd_open(drv, p, path, &h) == APR_SUCCESS);
    if (!h) {
        return;
    }
    UT_CHECK(apr_dbd_query(drv, h, &nrows, "DROP TABLE certauth_certs") == 0);
    apr_dbd_close(drv, h);

    rv = ca_issue(p, ca, s, make_req(p, ca_profile_make(p, NULL),
                                     ut_keygen(p, "p256"), NULL),
                  &x, &r, &err);
    UT_CHECK_MSG(rv == CA_EDB, "rv %d", rv);
    UT_CHECK(x == NULL && r == NULL);
    UT_CHECK_MSG(err && !strncmp(err, "database unavailable: ", 22)
                 && one_line(err), "%s", err ? err : "");
}

int main(void)
{
    UT_RUN(test_profile_defaults);
    UT_RUN(test_key_usage_names);
    UT_RUN(test_serial_random);
    UT_RUN(test_build_full);
    UT_RUN(test_build_minimal);
    UT_RUN(test_build_spki_copy);
    UT_RUN(test_build_given_serial);
    UT_RUN(test_build_key_usage);
    UT_RUN(test_build_validity);
    UT_RUN(test_build_ed25519_ca);
    UT_RUN(test_build_weak_key);
    UT_RUN(test_san_validation);
    UT_RUN(test_empty_subject);
    UT_RUN(test_base_url);
    UT_RUN(test_bad_eku_in_profile);
    UT_RUN(test_issue_store);
    UT_RUN(test_issue_db_unavailable);
    return ut_finish();
}
