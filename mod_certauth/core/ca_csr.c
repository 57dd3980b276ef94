/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_csr: parse PKCS#10 requests, check proof of possession and key policy. */

#include <string.h>

#include <apr_strings.h>

#include <pthread.h>

#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_csr.h"
#include "ca_log.h"
#include "ca_util.h"

/* Request bodies larger than this are not looked at. */
#define CA_CSR_MAX_INPUT (64 * 1024)

void ca_key_policy_default(ca_key_policy_t *pol)
{
    pol->rsa_min_bits = 2048;
    pol->rsa_max_bits = 8192;
    pol->allow_rsa = 1;
    pol->allow_p256 = 1;
    pol->allow_p384 = 1;
    pol->allow_ed25519 = 1;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

static int all_space(const char *data, apr_size_t len)
{
    apr_size_t i;
    for (i = 0; i < len; i++) {
        char c = data[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\f'
            && c != '\v') {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* The request's public key without OpenSSL 3.0's per-key decoder      */
/* ------------------------------------------------------------------ */

/* OpenSSL 3.0 decodes the SubjectPublicKeyInfo while it parses a request,
 * through a decoder context built anew for every key
 * (OSSL_DECODER_CTX_new_for_pkey: about 13% of an enrollment's CPU).  The
 * request is parsed in a library context that holds only the "null"
 * provider, where that attempt finds no decoder and stops at once; the key
 * is then made from the SubjectPublicKeyInfo's algorithm, parameters and
 * key octets by the key manager (EVP_PKEY_fromdata) for EC P-256/P-384,
 * RSA and Ed25519, with the generic decoder (d2i_PUBKEY in the default
 * context, what parsing did before) for anything else and whenever the
 * fast path does not produce a key: what is accepted stays the same. */

static OSSL_LIB_CTX *nodecode_ctx;
static CRYPTO_ONCE nodecode_once = CRYPTO_ONCE_STATIC_INIT;

static void nodecode_init(void)
{
    OSSL_LIB_CTX *c = OSSL_LIB_CTX_new();
    if (c && OSSL_PROVIDER_load(c, "null")) {
        nodecode_ctx = c;
        return;
    }
    OSSL_LIB_CTX_free(c);
    ERR_clear_error();
}

/* The key managers' contexts for EVP_PKEY_fromdata, one set per thread. */
enum { KT_EC, KT_RSA, KT_ED25519, KT_N };
static const char *const kt_names[KT_N] = { "EC", "RSA", "ED25519" };
static pthread_key_t kt_key;
static pthread_once_t kt_once = PTHREAD_ONCE_INIT;
static int kt_ok;

static void kt_free(void *v)
{
    EVP_PKEY_CTX **ctxs = v;
    int i;
    for (i = 0; i < KT_N; i++) {
        EVP_PKEY_CTX_free(ctxs[i]);
    }
    OPENSSL_free(ctxs);
}

static void kt_init(void)
{
    kt_ok = pthread_key_create(&kt_key, kt_free) == 0;
}

static EVP_PKEY_CTX *fromdata_ctx(int kt)
{
    EVP_PKEY_CTX **ctxs;

    if (pthread_once(&kt_once, kt_init) != 0 || !kt_ok) {
        return NULL;
    }
    if (!(ctxs = pthread_getspecific(kt_key))) {
        if (!(ctxs = OPENSSL_zalloc(KT_N * sizeof(*ctxs)))) {
            return NULL;
        }
        if (pthread_setspecific(kt_key, ctxs) != 0) {
            OPENSSL_free(ctxs);
            return NULL;
        }
    }
    if (!ctxs[kt]) {
        ctxs[kt] = EVP_PKEY_CTX_new_from_name(NULL, kt_names[kt], NULL);
    }
    if (ctxs[kt] && EVP_PKEY_fromdata_init(ctxs[kt]) > 0) {
        return ctxs[kt];
    }
    return NULL;
}

/* RSAPublicKey (RFC 8017 A.1.1) with the template OpenSSL's own RSA
 * decoder uses (two BIGNUM fields: the octets as an unsigned number). */
typedef struct ca_rsa_pub_st {
    BIGNUM *n;
    BIGNUM *e;
} CA_RSA_PUB;

ASN1_SEQUENCE(CA_RSA_PUB) = {
    ASN1_SIMPLE(CA_RSA_PUB, n, BIGNUM),
    ASN1_SIMPLE(CA_RSA_PUB, e, BIGNUM),
} ASN1_SEQUENCE_END(CA_RSA_PUB)

static EVP_PKEY *fromdata(int kt, const OSSL_PARAM *params)
{
    EVP_PKEY_CTX *ctx = fromdata_ctx(kt);
    EVP_PKEY *key = NULL;

    if (!ctx || EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY,
                                  (OSSL_PARAM *)params) <= 0) {
        return NULL;
    }
    return key;
}

static EVP_PKEY *rsa_fromdata(const unsigned char *bits, int len)
{
    const unsigned char *q = bits;
    CA_RSA_PUB *rp;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY *key = NULL;

    /* as OpenSSL's RSA decoder: octets after the SEQUENCE are ignored */
    rp = (CA_RSA_PUB *)ASN1_item_d2i(NULL, &q, len,
                                     ASN1_ITEM_rptr(CA_RSA_PUB));
    if (!rp) {
        return NULL;
    }
    if ((bld = OSSL_PARAM_BLD_new())
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, rp->n)
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, rp->e)
        && (params = OSSL_PARAM_BLD_to_param(bld))) {
        key = fromdata(KT_RSA, params);
    }
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    ASN1_item_free((ASN1_VALUE *)rp, ASN1_ITEM_rptr(CA_RSA_PUB));
    return key;
}

/* The key of the fast path, NULL when it does not apply or fails. */
static EVP_PKEY *spki_fast(const X509_PUBKEY *spki)
{
    ASN1_OBJECT *aobj = NULL;
    const unsigned char *bits = NULL;
    X509_ALGOR *alg = NULL;
    const void *pval = NULL;
    int len = 0, ptype = V_ASN1_UNDEF, nid;
    const char *form;
    OSSL_PARAM params[4];

    if (!X509_PUBKEY_get0_param(&aobj, &bits, &len, &alg, spki) || !bits
        || len <= 0) {
        return NULL;
    }
    if (alg) {
        X509_ALGOR_get0(NULL, &ptype, &pval, alg);
    }
    switch (OBJ_obj2nid(aobj)) {
    case NID_X9_62_id_ecPublicKey:
        if (ptype != V_ASN1_OBJECT) {
            return NULL; /* explicit parameters, implicitCA, garbage */
        }
        nid = OBJ_obj2nid(pval);
        if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1) {
            return NULL;
        }
        /* the point's form is kept (as the decoder does) so that the key
         * encodes again as it came; others (hybrid, infinity) are left to
         * the decoder */
        if (bits[0] == 4) {
            form = OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED;
        }
        else if (bits[0] == 2 || bits[0] == 3) {
            form = OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED;
        }
        else {
            return NULL;
        }
        params[0] = OSSL_PARAM_construct_utf8_string(
            OSSL_PKEY_PARAM_GROUP_NAME, (char *)OBJ_nid2sn(nid), 0);
        params[1] = OSSL_PARAM_construct_octet_string(
            OSSL_PKEY_PARAM_PUB_KEY, (void *)bits, (size_t)len);
        params[2] = OSSL_PARAM_construct_utf8_string(
            OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, (char *)form, 0);
        params[3] = OSSL_PARAM_construct_end();
        return fromdata(KT_EC, params);
    case NID_rsaEncryption:
        /* OpenSSL's decoder ignores the parameters of rsaEncryption */
        return rsa_fromdata(bits, len);
    case NID_ED25519:
        if (ptype != V_ASN1_UNDEF || len != 32) {
            return NULL; /* RFC 8410: parameters absent */
        }
        params[0] = OSSL_PARAM_construct_octet_string(
            OSSL_PKEY_PARAM_PUB_KEY, (void *)bits, (size_t)len);
        params[1] = OSSL_PARAM_construct_end();
        return fromdata(KT_ED25519, params);
    default:
        return NULL;
    }
}

/* The generic path: the DER of the SubjectPublicKeyInfo through
 * OpenSSL's decoders in the default library context. */
static EVP_PKEY *spki_generic(const X509_PUBKEY *spki)
{
    unsigned char *der = NULL;
    const unsigned char *q;
    EVP_PKEY *key = NULL;
    int len = i2d_X509_PUBKEY(spki, &der);

    if (len > 0) {
        q = der;
        key = d2i_PUBKEY_ex(NULL, &q, len, NULL, NULL);
    }
    OPENSSL_free(der);
    return key;
}

EVP_PKEY *ca_spki_pubkey(const X509_PUBKEY *spki, int mode)
{
    EVP_PKEY *key = NULL;

    if (!spki) {
        return NULL;
    }
    ERR_set_mark();
    if (mode != CA_SPKI_GENERIC) {
        key = spki_fast(spki);
    }
    if (!key && mode != CA_SPKI_FAST_ONLY) {
        key = spki_generic(spki);
    }
    ERR_pop_to_mark();
    return key;
}

static apr_status_t pkey_cleanup(void *data)
{
    EVP_PKEY_free(data);
    return APR_SUCCESS;
}

EVP_PKEY *ca_csr_pubkey(apr_pool_t *p, X509_REQ *req)
{
    char name[48];
    void *cached = NULL;
    EVP_PKEY *key;

    if (!req) {
        return NULL;
    }
    apr_snprintf(name, sizeof(name), "ca_csr_pubkey:%pp", (void *)req);
    if (apr_pool_userdata_get(&cached, name, p) == APR_SUCCESS && cached) {
        return cached;
    }
    /* a request parsed elsewhere has its key decoded already */
    ERR_set_mark();
    key = X509_REQ_get0_pubkey(req);
    ERR_pop_to_mark();
    if (key) {
        return key;
    }
    if (!(key = ca_spki_pubkey(X509_REQ_get_X509_PUBKEY(req), CA_SPKI_FAST))) {
        return NULL;
    }
    apr_pool_cleanup_register(p, key, pkey_cleanup, apr_pool_cleanup_null);
    apr_pool_userdata_set(key, name, apr_pool_cleanup_null, p);
    return key;
}

/* DER of one X509_REQ that must use all len bytes; NULL otherwise.  Parsed
 * in nodecode_ctx: the key is left to ca_csr_pubkey(). */
static X509_REQ *der_to_req(const unsigned char *der, apr_size_t len)
{
    const unsigned char *q = der;
    X509_REQ *req;

    if (len == 0 || len > CA_CSR_MAX_INPUT || der[0] != 0x30) {
        return NULL;
    }
    CRYPTO_THREAD_run_once(&nodecode_once, nodecode_init);
    if (nodecode_ctx) {
        req = (X509_REQ *)ASN1_item_d2i_ex(NULL, &q, (long)len,
                                           ASN1_ITEM_rptr(X509_REQ),
                                           nodecode_ctx, NULL);
    }
    else {
        req = d2i_X509_REQ(NULL, &q, (long)len);
    }
    if (req && q != der + len) {
        X509_REQ_free(req);
        req = NULL;
    }
    return req;
}

static apr_status_t parse_pem(apr_pool_t *p, const char *data,
                              apr_size_t len, X509_REQ **out,
                              const char **err)
{
    BIO *bio;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long derlen = 0;
    apr_status_t rv = CA_EBADINPUT;

    bio = BIO_new_mem_buf(data, (int)len);
    if (!bio) {
        *err = "out of memory reading the request";
        return CA_ECRYPTO;
    }
    if (!PEM_read_bio(bio, &name, &header, &der, &derlen)) {
        *err = "malformed PEM request (bad base64 or missing END line)";
        goto leave;
    }
    if (strcmp(name, PEM_STRING_X509_REQ)
        && strcmp(name, PEM_STRING_X509_REQ_OLD)) {
        *err = apr_psprintf(p, "PEM block is '%s', not a CERTIFICATE REQUEST",
                            ca_printable(p, name, 40));
        goto leave;
    }
    if (header && *header) {
        *err = "PEM request must not have headers (encrypted?)";
        goto leave;
    }
    *out = der_to_req(der, (apr_size_t)(derlen > 0 ? derlen : 0));
    if (!*out) {
        *err = "PEM block does not contain a valid PKCS#10 request";
        goto leave;
    }
    rv = APR_SUCCESS;
leave:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(bio);
    ERR_clear_error();
    return rv;
}

apr_status_t ca_csr_parse(apr_pool_t *p, const char *data, apr_size_t len,
                          X509_REQ **out, const char **err)
{
    X509_REQ *req = NULL;
    apr_status_t rv;
    const char *e = NULL;

    *out = NULL;
    *err = NULL;
    if (!data || len == 0 || all_space(data, len)) {
        *err = "empty request body";
        return CA_EBADINPUT;
    }
    if (len > CA_CSR_MAX_INPUT) {
        *err = apr_psprintf(p, "request too large (%" APR_SIZE_T_FMT
                            " bytes, at most %d)", len, CA_CSR_MAX_INPUT);
        return CA_EBADINPUT;
    }

    /* DER first: binary, cheap to rule out (it must start with a
     * SEQUENCE and use every byte), and a DER request may well contain
     * "-----BEGIN" inside a name. */
    req = der_to_req((const unsigned char *)data, len);
    ERR_clear_error();
    if (!req && memmem(data, len, "-----BEGIN", 10)) {
        rv = parse_pem(p, data, len, &req, &e);
        if (rv != APR_SUCCESS) {
            *err = e;
            return rv;
        }
    }
    else if (!req) {
        unsigned char *der = NULL;
        apr_size_t derlen = 0;
        if (ca_base64_decode(p, data, len, &der, &derlen) == APR_SUCCESS) {
            req = der_to_req(der, derlen);
        }
        ERR_clear_error();
        if (!req) {
            *err = "not a PKCS#10 request (PEM, DER or base64 DER expected)";
            return CA_EBADINPUT;
        }
    }
    *out = ca_pool_x509_req(p, req);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

/* The EC group name of a key ("prime256v1"), "" when explicit/unknown. */
static const char *ec_group(apr_pool_t *p, EVP_PKEY *key, int *explicit)
{
    char buf[80];
    size_t n = 0;

    *explicit = 0;
    buf[0] = '\0';
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING,
                                       buf, sizeof(buf), &n)
        && !strcmp(buf, OSSL_PKEY_EC_ENCODING_EXPLICIT)) {
        *explicit = 1;
    }
    n = 0;
    buf[0] = '\0';
    if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                        buf, sizeof(buf), &n)) {
        ERR_clear_error();
        return "";
    }
    return apr_pstrdup(p, buf);
}

static const char *curve_pretty(const char *group)
{
    if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256")) {
        return "P-256";
    }
    if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384")) {
        return "P-384";
    }
    if (!strcmp(group, "secp521r1") || !strcmp(group, "P-521")) {
        return "P-521";
    }
    return group;
}

const char *ca_key_describe(apr_pool_t *p, EVP_PKEY *key)
{
    const char *name;
    int explicit;

    if (!key) {
        return "no key";
    }
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        return apr_psprintf(p, "RSA %d", EVP_PKEY_get_bits(key));
    case EVP_PKEY_RSA_PSS:
        return apr_psprintf(p, "RSA-PSS %d", EVP_PKEY_get_bits(key));
    case EVP_PKEY_DSA:
        return apr_psprintf(p, "DSA %d", EVP_PKEY_get_bits(key));
    case EVP_PKEY_EC:
        name = ec_group(p, key, &explicit);
        if (explicit || !*name) {
            return "EC (explicit curve parameters)";
        }
        return apr_pstrcat(p, "EC ", curve_pretty(name), NULL);
    case EVP_PKEY_ED25519:
        return "Ed25519";
    case EVP_PKEY_ED448:
        return "Ed448";
    case EVP_PKEY_X25519:
        return "X25519";
    case EVP_PKEY_X448:
        return "X448";
    default:
        name = EVP_PKEY_get0_type_name(key);
        return name ? apr_pstrdup(p, name) : "unknown key type";
    }
}

/* "RSA (2048 to 8192 bits), EC P-256 or Ed25519" */
static const char *allowed_list(apr_pool_t *p, const ca_key_policy_t *pol)
{
    const char *items[4];
    int n = 0, i;
    const char *s = "";

    if (pol->allow_rsa) {
        items[n++] = apr_psprintf(p, "RSA (%d to %d bits)", pol->rsa_min_bits,
                                  pol->rsa_max_bits);
    }
    if (pol->allow_p256) {
        items[n++] = "EC P-256";
    }
    if (pol->allow_p384) {
        items[n++] = "EC P-384";
    }
    if (pol->allow_ed25519) {
        items[n++] = "Ed25519";
    }
    if (n == 0) {
        return "no key type is allowed by this profile";
    }
    for (i = 0; i < n; i++) {
        s = apr_pstrcat(p, s, i == 0 ? "" : (i == n - 1 ? " or " : ", "),
                        items[i], NULL);
    }
    return apr_pstrcat(p, s, " required", NULL);
}

static int rsa_exponent_ok(EVP_PKEY *key)
{
    BIGNUM *e = NULL;
    int ok;

    if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e)) {
        ERR_clear_error();
        return 0;
    }
    /* An even or tiny exponent (1) makes the key useless. */
    ok = BN_is_odd(e) && !BN_is_one(e);
    BN_free(e);
    return ok;
}

apr_status_t ca_key_check(apr_pool_t *p, EVP_PKEY *key,
                          const ca_key_policy_t *pol, const char **err)
{
    ca_key_policy_t def;
    const char *desc, *group;
    int bits, explicit;

    *err = NULL;
    if (!pol) {
        ca_key_policy_default(&def);
        pol = &def;
    }
    if (!key) {
        *err = "no public key";
        return CA_EPOLICY;
    }
    desc = ca_key_describe(p, key);
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        bits = EVP_PKEY_get_bits(key);
        if (!pol->allow_rsa) {
            *err = apr_psprintf(p, "RSA key refused: %s",
                                allowed_list(p, pol));
            return CA_EPOLICY;
        }
        if (bits < pol->rsa_min_bits) {
            *err = apr_psprintf(p, "RSA %d-bit key refused: at least %d bits "
                                "required", bits, pol->rsa_min_bits);
            return CA_EPOLICY;
        }
        if (bits > pol->rsa_max_bits) {
            *err = apr_psprintf(p, "RSA %d-bit key refused: at most %d bits "
                                "allowed", bits, pol->rsa_max_bits);
            return CA_EPOLICY;
        }
        if (!rsa_exponent_ok(key)) {
            *err = apr_psprintf(p, "RSA %d-bit key refused: invalid public "
                                "exponent", bits);
            return CA_EPOLICY;
        }
        return APR_SUCCESS;

    case EVP_PKEY_EC:
        group = ec_group(p, key, &explicit);
        if (explicit || !*group) {
            *err = "EC key with explicit curve parameters refused: a named "
                   "curve (P-256 or P-384) required";
            return CA_EPOLICY;
        }
        if (!strcmp(curve_pretty(group), "P-256") && pol->allow_p256) {
            return APR_SUCCESS;
        }
        if (!strcmp(curve_pretty(group), "P-384") && pol->allow_p384) {
            return APR_SUCCESS;
        }
        if (pol->allow_p256 || pol->allow_p384) {
            *err = apr_psprintf(p, "EC key on curve %s refused: %s required",
                                curve_pretty(group),
                                pol->allow_p256 && pol->allow_p384
                                    ? "P-256 or P-384"
                                    : (pol->allow_p256 ? "P-256" : "P-384"));
        }
        else {
            *err = apr_psprintf(p, "EC key on curve %s refused: %s",
                                curve_pretty(group), allowed_list(p, pol));
        }
        return CA_EPOLICY;

    case EVP_PKEY_ED25519:
        if (pol->allow_ed25519) {
            return APR_SUCCESS;
        }
        *err = apr_psprintf(p, "Ed25519 key refused: %s",
                            allowed_list(p, pol));
        return CA_EPOLICY;

    default:
        *err = apr_psprintf(p, "%s key refused: %s", desc,
                            allowed_list(p, pol));
        return CA_EPOLICY;
    }
}

/* ------------------------------------------------------------------ */
/* Checking a request                                                  */
/* ------------------------------------------------------------------ */

static int digest_ok(int md_nid)
{
    switch (md_nid) {
    case NID_sha256:
    case NID_sha384:
    case NID_sha512:
    case NID_sha512_256:
    case NID_sha3_256:
    case NID_sha3_384:
    case NID_sha3_512:
        return 1;
    default:
        return 0;
    }
}

static const char *digest_name(int md_nid)
{
    const char *sn;
    switch (md_nid) {
    case NID_md2: return "MD2";
    case NID_md4: return "MD4";
    case NID_md5: return "MD5";
    case NID_md5_sha1: return "MD5+SHA-1";
    case NID_sha1: return "SHA-1";
    case NID_sha224: return "SHA-224";
    case NID_sha3_224: return "SHA3-224";
    case NID_undef: return "an unknown digest";
    default:
        sn = OBJ_nid2sn(md_nid);
        return sn ? sn : "an unknown digest";
    }
}

/* The digest of an RSASSA-PSS signature algorithm, NID_undef if bad. */
static int pss_digest(const X509_ALGOR *alg)
{
    const ASN1_OBJECT *obj;
    RSA_PSS_PARAMS *pss;
    int nid;

    if (!alg->parameter || alg->parameter->type != V_ASN1_SEQUENCE) {
        return NID_undef;
    }
    pss = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS),
                                    alg->parameter);
    if (!pss) {
        ERR_clear_error();
        return NID_undef;
    }
    if (!pss->hashAlgorithm) {
        nid = NID_sha1; /* the default of RFC 4055 */
    }
    else {
        X509_ALGOR_get0(&obj, NULL, NULL, pss->hashAlgorithm);
        nid = OBJ_obj2nid(obj);
    }
    RSA_PSS_PARAMS_free(pss);
    return nid;
}

static apr_status_t check_sigalg(apr_pool_t *p, X509_REQ *req,
                                 const char **err)
{
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *alg = NULL;
    const ASN1_OBJECT *obj = NULL;
    int sig_nid, md_nid = NID_undef, pk_nid = NID_undef;
    char txt[128];

    X509_REQ_get0_signature(req, &sig, &alg);
    if (!alg) {
        *err = "CSR has no signature algorithm";
        return CA_EPOLICY;
    }
    X509_ALGOR_get0(&obj, NULL, NULL, alg);
    sig_nid = OBJ_obj2nid(obj);
    if (sig_nid == NID_ED25519 || sig_nid == NID_ED448) {
        return APR_SUCCESS; /* pure EdDSA, no separate digest */
    }
    if (sig_nid == NID_rsassaPss) {
        md_nid = pss_digest(alg);
    }
    else if (sig_nid == NID_undef
             || !OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid)) {
        /* OpenSSL cannot verify what it cannot map (OpenSSL 3.0: the
         * SHA-3 signature algorithms, for instance) */
        OBJ_obj2txt(txt, sizeof(txt), obj, sig_nid == NID_undef);
        *err = apr_psprintf(p, "CSR signature algorithm %s is not supported; "
                            "sign it with SHA-256, SHA-384 or SHA-512", txt);
        return CA_EPOLICY;
    }
    if (!digest_ok(md_nid)) {
        *err = apr_psprintf(p, "CSR is signed with %s; sign it with SHA-256 "
                            "or better", digest_name(md_nid));
        return CA_EPOLICY;
    }
    return APR_SUCCESS;
}

static apr_status_t check_extensions(X509_REQ *req, const char **err)
{
    STACK_OF(X509_EXTENSION) *exts;
    BASIC_CONSTRAINTS *bc;
    int crit = -1;
    apr_status_t rv = APR_SUCCESS;

    exts = X509_REQ_get_extensions(req);
    if (!exts) {
        ERR_clear_error();
        return APR_SUCCESS;
    }
    bc = X509V3_get_d2i(exts, NID_basic_constraints, &crit, NULL);
    if (bc) {
        if (bc->ca) {
            *err = "CSR requests a CA certificate (basicConstraints CA:TRUE)";
            rv = CA_EPOLICY;
        }
        BASIC_CONSTRAINTS_free(bc);
    }
    else if (crit == -2) {
        *err = "CSR requests basicConstraints more than once";
        rv = CA_EPOLICY;
    }
    else if (crit >= 0) {
        *err = "CSR requests a malformed basicConstraints extension";
        rv = CA_EPOLICY;
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    return rv;
}

apr_status_t ca_csr_check(apr_pool_t *p, X509_REQ *req,
                          const ca_key_policy_t *pol, const char **err)
{
    EVP_PKEY *key;
    apr_status_t rv;

    *err = NULL;
    if (!req) {
        *err = "no request";
        return CA_EBADINPUT;
    }
    key = ca_csr_pubkey(p, req);
    if (!key) {
        ERR_clear_error();
        *err = "CSR public key is malformed or of an unsupported type";
        return CA_EPOLICY;
    }
    /* Cheap checks first: a huge or odd key is refused before any
     * expensive signature verification. */
    if ((rv = check_sigalg(p, req, err)) != APR_SUCCESS) {
        return rv;
    }
    if ((rv = ca_key_check(p, key, pol, err)) != APR_SUCCESS) {
        return rv;
    }
    /* the default library context: the request's own may be the one
     * without providers it was parsed in */
    if (X509_REQ_verify_ex(req, key, NULL, NULL) <= 0) {
        if (ca_log_enabled(CA_LOG_DEBUG)) {
            ca_log(CA_LOG_MARK, CA_LOG_DEBUG, 0, p,
                   "CSR signature verification failed: %s",
                   ca_log_ssl_errors(p));
        }
        ERR_clear_error();
        *err = "CSR signature does not verify (no proof of possession)";
        return CA_EPOLICY;
    }
    return check_extensions(req, err);
}
