/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of the request's public key made without OpenSSL 3.0's
 * per-key decoder (ca_spki_pubkey, ca_csr_pubkey): for every supported key
 * type and a corpus of odd encodings (explicit curve parameters, compressed
 * and hybrid points, wrong-length points, points off the curve, RSA with odd
 * and even exponents, non-minimal and "negative" integers, trailing
 * garbage, wrong parameters) the fast path gives the same key as OpenSSL's
 * generic decoder, or none where it gives none; and a request parsed by
 * ca_csr_parse is checked exactly as one parsed by d2i_X509_REQ. */

#include <string.h>

#include <apr_strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "unit.h"
#include "ca_csr.h"
#include "ca_util.h"

/* The SubjectPublicKeyInfo of a key as OpenSSL encodes it. */
static X509_PUBKEY *spki_of(EVP_PKEY *key)
{
    X509_PUBKEY *pub = NULL;
    if (!X509_PUBKEY_set(&pub, key)) {
        abort();
    }
    return pub;
}

/* A SubjectPublicKeyInfo put together from its parts: algorithm alg_nid,
 * parameters (ptype/pval as X509_ALGOR_set0 takes them; pval is taken) and
 * the key octets. */
static X509_PUBKEY *spki_make(int alg_nid, int ptype, void *pval,
                              const unsigned char *bits, int len)
{
    X509_PUBKEY *pub = X509_PUBKEY_new();
    unsigned char *copy = OPENSSL_malloc(len > 0 ? (size_t)len : 1);

    if (!pub || !copy) {
        abort();
    }
    if (len > 0) {
        memcpy(copy, bits, (size_t)len);
    }
    if (!X509_PUBKEY_set0_param(pub, OBJ_nid2obj(alg_nid), ptype, pval, copy,
                                len)) {
        abort();
    }
    return pub;
}

/* The same SubjectPublicKeyInfo with other key octets. */
static X509_PUBKEY *spki_with_bits(const X509_PUBKEY *src,
                                   const unsigned char *bits, int len)
{
    ASN1_OBJECT *aobj;
    X509_ALGOR *alg;
    const void *pval;
    int ptype;
    void *param = NULL;

    X509_PUBKEY_get0_param(&aobj, NULL, NULL, &alg, src);
    X509_ALGOR_get0(NULL, &ptype, &pval, alg);
    if (ptype == V_ASN1_OBJECT) {
        param = OBJ_dup(pval);
    }
    else if (ptype == V_ASN1_SEQUENCE) {
        param = ASN1_STRING_dup(pval);
    }
    return spki_make(OBJ_obj2nid(aobj), ptype, param, bits, len);
}

static int spki_bits(const X509_PUBKEY *pub, unsigned char *out, int max)
{
    const unsigned char *bits;
    int len;
    X509_PUBKEY_get0_param(NULL, &bits, &len, NULL, pub);
    if (len > max) {
        abort();
    }
    memcpy(out, bits, (size_t)len);
    return len;
}

static int n_cases, n_fast, n_none;

static char *pubkey_der(apr_pool_t *p, EVP_PKEY *k, int *len)
{
    unsigned char *der = NULL;
    char *copy;
    *len = i2d_PUBKEY(k, &der);
    if (*len <= 0) {
        ERR_clear_error();
        *len = 0;
        return NULL;
    }
    copy = apr_pmemdup(p, der, (apr_size_t)*len);
    OPENSSL_free(der);
    return copy;
}

/* Both paths, the same answer: no key from either, or equal keys of the
 * same type, size, description, policy verdict and encoding.  expect_fast:
 * the fast path itself (no fallback) must make this one. */
static void same(apr_pool_t *p, const char *what, X509_PUBKEY *pub,
                 int expect_fast)
{
    EVP_PKEY *gen = ca_spki_pubkey(pub, CA_SPKI_GENERIC);
    EVP_PKEY *fast = ca_spki_pubkey(pub, CA_SPKI_FAST);
    EVP_PKEY *only = ca_spki_pubkey(pub, CA_SPKI_FAST_ONLY);

    n_cases++;
    UT_CHECK_MSG(ERR_peek_error() == 0, "%s: errors left in the queue",
                 what);
    ERR_clear_error();
    if (expect_fast) {
        UT_CHECK_MSG(only != NULL, "%s: the fast path made no key", what);
    }
    if (only) {
        n_fast++;
        UT_CHECK_MSG(gen != NULL, "%s: fast path made a key the generic "
                     "decoder refuses", what);
    }
    if (!gen) {
        n_none++;
        UT_CHECK_MSG(fast == NULL, "%s: a key where the generic decoder "
                     "makes none", what);
    }
    else {
        EVP_PKEY *k[2];
        int i;
        k[0] = fast;
        k[1] = only;
        UT_CHECK_MSG(fast != NULL, "%s: no key, the generic decoder makes "
                     "one", what);
        for (i = 0; i < 2; i++) {
            const char *e1 = NULL, *e2 = NULL;
            apr_status_t r1, r2;
            int l1, l2;
            char *d1, *d2;
            if (!k[i]) {
                continue;
            }
            UT_CHECK_MSG(EVP_PKEY_eq(k[i], gen) == 1, "%s: keys differ",
                         what);
            UT_CHECK_MSG(EVP_PKEY_get_base_id(k[i])
                             == EVP_PKEY_get_base_id(gen), "%s: type", what);
            UT_CHECK_MSG(EVP_PKEY_get_bits(k[i]) == EVP_PKEY_get_bits(gen),
                         "%s: bits", what);
            UT_CHECK_MSG(!strcmp(ca_key_describe(p, k[i]),
                                 ca_key_describe(p, gen)),
                         "%s: %s / %s", what, ca_key_describe(p, k[i]),
                         ca_key_describe(p, gen));
            r1 = ca_key_check(p, k[i], NULL, &e1);
            r2 = ca_key_check(p, gen, NULL, &e2);
            UT_CHECK_MSG(r1 == r2 && !strcmp(e1 ? e1 : "", e2 ? e2 : ""),
                         "%s: policy %s / %s", what, e1 ? e1 : "ok",
                         e2 ? e2 : "ok");
            d1 = pubkey_der(p, k[i], &l1);
            d2 = pubkey_der(p, gen, &l2);
            UT_CHECK_MSG(l1 == l2 && (!l1 || !memcmp(d1, d2, (size_t)l1)),
                         "%s: re-encoded SubjectPublicKeyInfo differs",
                         what);
        }
    }
    EVP_PKEY_free(gen);
    EVP_PKEY_free(fast);
    EVP_PKEY_free(only);
    ERR_clear_error();
}

static void ec_corpus(apr_pool_t *p, const char *type, int nid, int fast)
{
    EVP_PKEY *key = ut_keygen(p, type);
    X509_PUBKEY *pub = spki_of(key), *x;
    unsigned char pt[200], buf[200];
    int len = spki_bits(pub, pt, sizeof(pt)), half = (len - 1) / 2;
    char what[64];

#define CASE(name, spki, f) do { \
        apr_snprintf(what, sizeof(what), "%s %s", type, name); \
        x = (spki); same(p, what, x, f); X509_PUBKEY_free(x); } while (0)

    UT_CHECK(pt[0] == 4 && len == 1 + 2 * half);
    same(p, type, pub, fast);
    /* compressed: 02/03 and x */
    buf[0] = (unsigned char)(2 | (pt[len - 1] & 1));
    memcpy(buf + 1, pt + 1, (size_t)half);
    CASE("compressed", spki_with_bits(pub, buf, 1 + half), fast);
    /* the other y: a different, valid point (or none) */
    buf[0] ^= 1;
    CASE("compressed, other y", spki_with_bits(pub, buf, 1 + half), 0);
    /* hybrid: 06/07, x, y */
    memcpy(buf, pt, (size_t)len);
    buf[0] = (unsigned char)(6 | (pt[len - 1] & 1));
    CASE("hybrid", spki_with_bits(pub, buf, len), 0);
    buf[0] ^= 1; /* hybrid with the wrong parity bit */
    CASE("hybrid, wrong parity", spki_with_bits(pub, buf, len), 0);
    CASE("truncated point", spki_with_bits(pub, pt, len - 1), 0);
    memcpy(buf, pt, (size_t)len);
    buf[len] = 0;
    CASE("point + trailing octet", spki_with_bits(pub, buf, len + 1), 0);
    buf[len - 1] ^= 1;
    CASE("point off the curve", spki_with_bits(pub, buf, len), 0);
    buf[0] = 0;
    CASE("infinity", spki_with_bits(pub, buf, 1), 0);
    buf[0] = 4;
    CASE("lone 04", spki_with_bits(pub, buf, 1), 0);
    buf[0] = 5;
    memcpy(buf + 1, pt + 1, (size_t)len - 1);
    CASE("unknown form 05", spki_with_bits(pub, buf, len), 0);
    memset(buf, 0, sizeof(buf));
    buf[0] = 4;
    CASE("all-zero coordinates", spki_with_bits(pub, buf, len), 0);
    CASE("parameters NULL",
         spki_make(NID_X9_62_id_ecPublicKey, V_ASN1_NULL, NULL, pt, len), 0);
    CASE("parameters absent",
         spki_make(NID_X9_62_id_ecPublicKey, V_ASN1_UNDEF, NULL, pt, len), 0);
    CASE("curve OID sha256",
         spki_make(NID_X9_62_id_ecPublicKey, V_ASN1_OBJECT,
                   OBJ_nid2obj(NID_sha256), pt, len), 0);
    CASE("point on the other NIST curve's OID",
         spki_make(NID_X9_62_id_ecPublicKey, V_ASN1_OBJECT,
                   OBJ_nid2obj(nid == NID_secp384r1 ? NID_X9_62_prime256v1
                                                    : NID_secp384r1),
                   pt, len), 0);
    /* explicit curve parameters, as OpenSSL writes them */
    {
        EVP_PKEY *ex = EVP_PKEY_dup(key);
        unsigned char *der = NULL;
        const unsigned char *q;
        int n;
        UT_CHECK(ex && EVP_PKEY_set_utf8_string_param(
                           ex, OSSL_PKEY_PARAM_EC_ENCODING,
                           OSSL_PKEY_EC_ENCODING_EXPLICIT));
        n = i2d_PUBKEY(ex, &der);
        UT_CHECK(n > 0);
        q = der;
        x = d2i_X509_PUBKEY(NULL, &q, n);
        UT_CHECK(x != NULL);
        if (x) {
            ASN1_OBJECT *ao;
            X509_ALGOR *alg;
            int pt2;
            X509_PUBKEY_get0_param(&ao, NULL, NULL, &alg, x);
            X509_ALGOR_get0(NULL, &pt2, NULL, alg);
            UT_CHECK(pt2 == V_ASN1_SEQUENCE);
            CASE("explicit parameters", x, 0);
        }
        OPENSSL_free(der);
        EVP_PKEY_free(ex);
    }
    X509_PUBKEY_free(pub);
}

/* RSAPublicKey DER with a modulus of the given octets and an exponent. */
static int rsa_der(unsigned char *out, const unsigned char *n, int nlen,
                   const unsigned char *e, int elen)
{
    int inner = 4 + nlen + 2 + elen, o = 0;
    out[o++] = 0x30;
    out[o++] = 0x82;
    out[o++] = (unsigned char)(inner >> 8);
    out[o++] = (unsigned char)inner;
    out[o++] = 0x02;
    out[o++] = 0x82;
    out[o++] = (unsigned char)(nlen >> 8);
    out[o++] = (unsigned char)nlen;
    memcpy(out + o, n, (size_t)nlen);
    o += nlen;
    out[o++] = 0x02;
    out[o++] = (unsigned char)elen;
    memcpy(out + o, e, (size_t)elen);
    return o + elen;
}

static X509_PUBKEY *rsa_spki(const unsigned char *der, int len)
{
    return spki_make(NID_rsaEncryption, V_ASN1_NULL, NULL, der, len);
}

static void test_ec_corpus(apr_pool_t *p)
{
    ec_corpus(p, "p256", NID_X9_62_prime256v1, 1);
    ec_corpus(p, "p384", NID_secp384r1, 1);
    /* not on the fast path: the generic decoder, same answers */
    ec_corpus(p, "p521", NID_secp521r1, 0);
    ec_corpus(p, "k256", NID_secp256k1, 0);
}

static void test_rsa_corpus(apr_pool_t *p)
{
    EVP_PKEY *key = ut_keygen(p, "rsa2048");
    X509_PUBKEY *pub = spki_of(key), *x;
    unsigned char bits[600], der[700], mod[260];
    BIGNUM *n = NULL;
    int len = spki_bits(pub, bits, sizeof(bits)), nlen, l;
    static const unsigned char e65537[] = { 1, 0, 1 }, e3[] = { 3 },
                               e4[] = { 4 }, e1[] = { 1 }, e0[] = { 0 },
                               eneg[] = { 0x81, 0, 1 },
                               epad[] = { 0, 0, 1, 0, 1 };
    char what[64];
    const char *type = "rsa2048";

    same(p, "rsa2048", pub, 1);
    UT_CHECK(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n));
    nlen = BN_bn2bin(n, mod);
    UT_CHECK(nlen == 256 && mod[0] & 0x80);
    BN_free(n);

    CASE("parameters absent",
         spki_make(NID_rsaEncryption, V_ASN1_UNDEF, NULL, bits, len), 1);
    CASE("parameters an OID",
         spki_make(NID_rsaEncryption, V_ASN1_OBJECT,
                   OBJ_nid2obj(NID_sha256), bits, len), 1);
    memcpy(der, bits, (size_t)len);
    der[len] = 0;
    der[len + 1] = 0;
    CASE("trailing garbage", rsa_spki(der, len + 2), 1);
    CASE("truncated", rsa_spki(bits, len - 10), 0);
    CASE("empty", rsa_spki(bits, 1), 0);
    /* the modulus without its 00 octet: a "negative" INTEGER */
    l = rsa_der(der, mod, nlen, e65537, 3);
    CASE("modulus negative (no leading 00)", rsa_spki(der, l), 0);
    {
        unsigned char m2[262];
        m2[0] = 0;
        m2[1] = 0;
        memcpy(m2 + 2, mod, (size_t)nlen);
        l = rsa_der(der, m2, nlen + 2, e65537, 3);
        CASE("modulus with two leading 00", rsa_spki(der, l), 0);
        m2[1] = 0;
        memcpy(m2 + 1, mod, (size_t)nlen);
        l = rsa_der(der, m2, nlen + 1, e3, 1);
        CASE("exponent 3", rsa_spki(der, l), 1);
        l = rsa_der(der, m2, nlen + 1, e4, 1);
        CASE("exponent 4 (even)", rsa_spki(der, l), 1);
        l = rsa_der(der, m2, nlen + 1, e1, 1);
        CASE("exponent 1", rsa_spki(der, l), 1);
        l = rsa_der(der, m2, nlen + 1, e0, 1);
        CASE("exponent 0", rsa_spki(der, l), 0);
        l = rsa_der(der, m2, nlen + 1, eneg, 3);
        CASE("exponent negative", rsa_spki(der, l), 0);
        l = rsa_der(der, m2, nlen + 1, epad, 5);
        CASE("exponent with leading 00 00", rsa_spki(der, l), 0);
        m2[1] &= 0x7f; /* a 2047-bit modulus, even */
        m2[nlen] &= 0xfe;
        l = rsa_der(der, m2, nlen + 1, e65537, 3);
        CASE("even modulus", rsa_spki(der, l), 0);
    }
    X509_PUBKEY_free(pub);
    pub = spki_of(ut_keygen(p, "rsa1024"));
    same(p, "rsa1024", pub, 1);
    X509_PUBKEY_free(pub);
    pub = spki_of(ut_keygen(p, "rsa-pss"));
    same(p, "rsa-pss (generic path)", pub, 0);
    X509_PUBKEY_free(pub);
}

static void test_edwards_corpus(apr_pool_t *p)
{
    EVP_PKEY *key = ut_keygen(p, "ed25519");
    X509_PUBKEY *pub = spki_of(key), *x;
    unsigned char bits[64], buf[64];
    int len = spki_bits(pub, bits, sizeof(bits));
    char what[64];
    const char *type = "ed25519";

    UT_CHECK(len == 32);
    same(p, "ed25519", pub, 1);
    CASE("31 octets", spki_make(NID_ED25519, V_ASN1_UNDEF, NULL, bits, 31),
         0);
    memcpy(buf, bits, 32);
    buf[32] = 0;
    CASE("33 octets", spki_make(NID_ED25519, V_ASN1_UNDEF, NULL, buf, 33),
         0);
    CASE("parameters NULL",
         spki_make(NID_ED25519, V_ASN1_NULL, NULL, bits, 32), 0);
    memset(buf, 0xff, 32);
    CASE("all-ones octets", spki_make(NID_ED25519, V_ASN1_UNDEF, NULL, buf,
                                      32), 0);
    X509_PUBKEY_free(pub);
    pub = spki_of(ut_keygen(p, "ed448"));
    same(p, "ed448 (generic path)", pub, 0);
    X509_PUBKEY_free(pub);
    pub = spki_of(ut_keygen(p, "x25519"));
    same(p, "x25519 (generic path)", pub, 0);
    X509_PUBKEY_free(pub);
    x = spki_make(NID_sha256, V_ASN1_UNDEF, NULL, bits, 32);
    same(p, "unknown algorithm", x, 0);
    X509_PUBKEY_free(x);
    /* the corpus did reach both paths and both outcomes */
    UT_CHECK(n_cases > 60 && n_fast > 15 && n_none > 20);
    fprintf(stderr, "  %d encodings: %d made by the fast path, %d refused "
            "by both\n", n_cases, n_fast, n_none);
}

/* A CSR for key (SHA-256; none for EdDSA), its point compressed when
 * compressed; corrupt: flip a bit of the signature. */
static unsigned char *csr_der(apr_pool_t *p, EVP_PKEY *key, int compressed,
                              int corrupt, int *len)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    EVP_PKEY *k = key;
    unsigned char *der = NULL, *copy;
    int ed = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519
             || EVP_PKEY_get_base_id(key) == EVP_PKEY_ED448;

    if (compressed) {
        k = EVP_PKEY_dup(key);
        if (!k || !EVP_PKEY_set_utf8_string_param(
                      k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                      OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED)) {
            abort();
        }
    }
    if (!req || !name || !X509_REQ_set_version(req, X509_REQ_VERSION_1)
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       (const unsigned char *)"key", -1, -1,
                                       0)
        || !X509_REQ_set_subject_name(req, name)
        || !X509_REQ_set_pubkey(req, k)
        || X509_REQ_sign(req, key, ed ? NULL : EVP_sha256()) <= 0) {
        abort();
    }
    *len = i2d_X509_REQ(req, &der);
    if (corrupt) {
        der[*len - 3] ^= 1; /* in the signature's last octets */
    }
    copy = apr_pmemdup(p, der, (apr_size_t)*len);
    OPENSSL_free(der);
    X509_NAME_free(name);
    X509_REQ_free(req);
    if (k != key) {
        EVP_PKEY_free(k);
    }
    return copy;
}

/* ca_csr_parse + ca_csr_check against d2i_X509_REQ with its decoded key,
 * the key policy and X509_REQ_verify: the same key, the same verdict. */
static void test_csr_same_as_decoder(apr_pool_t *p)
{
    static const char *const types[] = { "p256", "p384", "rsa2048",
                                         "ed25519", "p521", "rsa1024",
                                         "k256", "ed448" };
    apr_size_t i;
    int compressed, corrupt;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        EVP_PKEY *key = ut_keygen(p, types[i]);
        int ec = EVP_PKEY_get_base_id(key) == EVP_PKEY_EC;
        for (compressed = 0; compressed <= ec; compressed++) {
            for (corrupt = 0; corrupt <= 1; corrupt++) {
                int len;
                unsigned char *der = csr_der(p, key, compressed, corrupt,
                                             &len);
                const unsigned char *q = der;
                X509_REQ *ref = d2i_X509_REQ(NULL, &q, len), *req = NULL;
                EVP_PKEY *rkey = ref ? X509_REQ_get0_pubkey(ref) : NULL;
                const char *err = NULL, *rerr = NULL;
                apr_status_t rv, rrv;

                UT_CHECK(ref && rkey);
                UT_CHECK(ca_csr_parse(p, (const char *)der, (apr_size_t)len,
                                      &req, &err) == APR_SUCCESS);
                if (!ref || !rkey || !req) {
                    X509_REQ_free(ref);
                    continue;
                }
                /* parsed without the per-key decoder ... */
                ERR_set_mark();
                UT_CHECK(X509_REQ_get0_pubkey(req) == NULL);
                ERR_pop_to_mark();
                /* ... and the key made from the SubjectPublicKeyInfo */
                UT_CHECK_MSG(EVP_PKEY_eq(ca_csr_pubkey(p, req), rkey) == 1,
                             "%s%s", types[i], compressed ? " compressed"
                                                          : "");
                UT_CHECK(ca_csr_pubkey(p, req) == ca_csr_pubkey(p, req));
                rv = ca_csr_check(p, req, NULL, &err);
                rrv = ca_key_check(p, rkey, NULL, &rerr);
                if (rrv == APR_SUCCESS && X509_REQ_verify(ref, rkey) <= 0) {
                    rrv = CA_EPOLICY;
                    rerr = "CSR signature does not verify (no proof of "
                           "possession)";
                }
                ERR_clear_error();
                UT_CHECK_MSG(rv == rrv && !strcmp(err ? err : "",
                                                  rerr ? rerr : ""),
                             "%s%s%s: %s / %s", types[i],
                             compressed ? " compressed" : "",
                             corrupt ? " corrupt" : "", err ? err : "ok",
                             rerr ? rerr : "ok");
                if (!corrupt && (!strcmp(types[i], "p256")
                                 || !strcmp(types[i], "p384")
                                 || !strcmp(types[i], "rsa2048")
                                 || !strcmp(types[i], "ed25519"))) {
                    UT_CHECK_MSG(rv == APR_SUCCESS, "%s: %s", types[i],
                                 err ? err : "");
                }
                X509_REQ_free(ref);
            }
        }
    }
}

/* Many threads make keys at once (each with its own cached contexts). */
#include <apr_thread_proc.h>

static void *APR_THREAD_FUNC key_thread(apr_thread_t *t, void *data)
{
    X509_PUBKEY **pubs = data;
    int i, ok = 1;
    for (i = 0; i < 200; i++) {
        EVP_PKEY *k = ca_spki_pubkey(pubs[i % 3], CA_SPKI_FAST_ONLY);
        ok &= k != NULL;
        EVP_PKEY_free(k);
    }
    apr_thread_exit(t, ok ? APR_SUCCESS : APR_EGENERAL);
    return NULL;
}

static void test_threads(apr_pool_t *p)
{
    X509_PUBKEY *pubs[3];
    apr_thread_t *th[4];
    apr_status_t rv;
    int i;

    pubs[0] = spki_of(ut_keygen(p, "p256"));
    pubs[1] = spki_of(ut_keygen(p, "rsa2048"));
    pubs[2] = spki_of(ut_keygen(p, "ed25519"));
    for (i = 0; i < 4; i++) {
        UT_CHECK(apr_thread_create(&th[i], NULL, key_thread, pubs, p)
                 == APR_SUCCESS);
    }
    for (i = 0; i < 4; i++) {
        apr_thread_join(&rv, th[i]);
        UT_CHECK(rv == APR_SUCCESS);
    }
    for (i = 0; i < 3; i++) {
        X509_PUBKEY_free(pubs[i]);
    }
}

int main(void)
{
    UT_RUN(test_ec_corpus);
    UT_RUN(test_rsa_corpus);
    UT_RUN(test_edwards_corpus);
    UT_RUN(test_csr_same_as_decoder);
    UT_RUN(test_threads);
    return ut_finish();
}
