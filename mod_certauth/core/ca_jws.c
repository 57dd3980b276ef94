/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_jws.c: JWS/JWK for ACME on OpenSSL 3 and jansson (as mod_md's
 * md_jws.c/md_json.c do it: keys and signatures through EVP, JSON through
 * jansson; written here for this core's pools and error texts). */

#include <string.h>

#include <apr_strings.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/crypto.h>

#include "ca_jws.h"
#include "ca_util.h"

static apr_status_t json_cleanup(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

json_t *ca_pool_json(apr_pool_t *p, json_t *j)
{
    if (j) {
        apr_pool_cleanup_register(p, j, json_cleanup,
                                  apr_pool_cleanup_null);
    }
    return j;
}

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const char *ca_b64url_encode(apr_pool_t *p, const unsigned char *in,
                             apr_size_t len)
{
    char *out = apr_palloc(p, (len + 2) / 3 * 4 + 1), *o = out;
    apr_size_t i;

    for (i = 0; i + 2 < len; i += 3) {
        *o++ = b64url_chars[in[i] >> 2];
        *o++ = b64url_chars[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *o++ = b64url_chars[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        *o++ = b64url_chars[in[i + 2] & 63];
    }
    if (len - i == 1) {
        *o++ = b64url_chars[in[i] >> 2];
        *o++ = b64url_chars[(in[i] & 3) << 4];
    }
    else if (len - i == 2) {
        *o++ = b64url_chars[in[i] >> 2];
        *o++ = b64url_chars[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *o++ = b64url_chars[(in[i + 1] & 15) << 2];
    }
    *o = '\0';
    return out;
}

apr_status_t ca_b64url_decode(apr_pool_t *p, const char *in,
                              unsigned char **out, apr_size_t *len)
{
    apr_size_t n = strlen(in), i, o = 0;
    unsigned char *buf = apr_palloc(p, n * 3 / 4 + 3);
    unsigned acc = 0;
    int bits = 0;

    if (n % 4 == 1) {
        return CA_EBADINPUT;
    }
    for (i = 0; i < n; i++) {
        const char *c = in[i] ? strchr(b64url_chars, in[i]) : NULL;
        if (!c) {
            return CA_EBADINPUT;
        }
        acc = (acc << 6) | (unsigned)(c - b64url_chars);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    /* the unused low bits of the last character must be zero */
    if (bits > 0 && (acc & ((1u << bits) - 1))) {
        return CA_EBADINPUT;
    }
    buf[o] = '\0';
    *out = buf;
    *len = o;
    return APR_SUCCESS;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

apr_status_t ca_jws_parse_json(apr_pool_t *p, json_t *obj, ca_jws_t **out,
                               const char **err)
{
    ca_jws_t *j = apr_pcalloc(p, sizeof(*j));
    const char *prot64, *pay64, *sig64, *key;
    unsigned char *buf;
    apr_size_t blen;
    json_t *v, *hdr;
    json_error_t jerr;

    if (!json_is_object(obj)) {
        *err = "the JWS is not a JSON object";
        return CA_EBADINPUT;
    }
    json_object_foreach(obj, key, v) {
        if (strcmp(key, "protected") && strcmp(key, "payload")
            && strcmp(key, "signature")) {
            *err = apr_psprintf(p, "JWS member \"%s\" is not allowed "
                                "(flattened JSON serialization, protected "
                                "header only)", key);
            return CA_EBADINPUT;
        }
    }
    prot64 = jstr(obj, "protected");
    pay64 = jstr(obj, "payload");
    sig64 = jstr(obj, "signature");
    if (!prot64 || !pay64 || !sig64) {
        *err = "the JWS needs \"protected\", \"payload\" and \"signature\"";
        return CA_EBADINPUT;
    }
    if (ca_b64url_decode(p, prot64, &buf, &blen) != APR_SUCCESS) {
        *err = "the protected header is not base64url";
        return CA_EBADINPUT;
    }
    hdr = ca_pool_json(p, json_loadb((const char *)buf, blen,
                                     JSON_REJECT_DUPLICATES, &jerr));
    if (!json_is_object(hdr)) {
        *err = "the protected header is not a JSON object";
        return CA_EBADINPUT;
    }
    j->protected_hdr = hdr;
    j->alg = jstr(hdr, "alg");
    j->nonce = jstr(hdr, "nonce");
    j->url = jstr(hdr, "url");
    j->kid = jstr(hdr, "kid");
    j->jwk = json_object_get(hdr, "jwk");
    if (!j->alg) {
        *err = "the protected header has no \"alg\"";
        return CA_EBADINPUT;
    }
    if ((json_object_get(hdr, "nonce") && !j->nonce)
        || (json_object_get(hdr, "url") && !j->url)
        || (json_object_get(hdr, "kid") && !j->kid)
        || (j->jwk && !json_is_object(j->jwk))) {
        *err = "a protected header member has the wrong type";
        return CA_EBADINPUT;
    }
    if (json_object_get(hdr, "crit")) {
        *err = "critical header extensions are not supported";
        return CA_EBADINPUT;
    }
    if (ca_b64url_decode(p, pay64, &buf, &blen) != APR_SUCCESS) {
        *err = "the payload is not base64url";
        return CA_EBADINPUT;
    }
    j->payload = (const char *)buf;
    j->payload_len = blen;
    if (ca_b64url_decode(p, sig64, &j->sig, &j->sig_len) != APR_SUCCESS) {
        *err = "the signature is not base64url";
        return CA_EBADINPUT;
    }
    j->signing_input = apr_pstrcat(p, prot64, ".", pay64, NULL);
    *out = j;
    return APR_SUCCESS;
}

apr_status_t ca_jws_parse(apr_pool_t *p, const char *body, apr_size_t len,
                          ca_jws_t **out, const char **err)
{
    json_error_t jerr;
    json_t *obj = ca_pool_json(p, json_loadb(body, len,
                                             JSON_REJECT_DUPLICATES, &jerr));
    if (!obj) {
        *err = apr_psprintf(p, "the body is not JSON: %s", jerr.text);
        return CA_EBADINPUT;
    }
    return ca_jws_parse_json(p, obj, out, err);
}

/* The octets of a base64url member, of exactly `want` octets (0: any). */
static apr_status_t member_octets(apr_pool_t *p, json_t *jwk,
                                  const char *name, apr_size_t want,
                                  unsigned char **out, apr_size_t *len)
{
    const char *v = jstr(jwk, name);
    if (!v || ca_b64url_decode(p, v, out, len) != APR_SUCCESS || *len == 0
        || (want && *len != want)) {
        return CA_EBADINPUT;
    }
    return APR_SUCCESS;
}

apr_status_t ca_jwk_to_pkey(apr_pool_t *p, json_t *jwk, EVP_PKEY **pkey,
                            const char **err)
{
    const char *kty = jstr(jwk, "kty"), *crv = jstr(jwk, "crv");
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *e = NULL;
    unsigned char *a, *b;
    apr_size_t alen, blen;
    apr_status_t rv = CA_EBADINPUT;

    if (!json_is_object(jwk) || !kty) {
        *err = "the JWK has no \"kty\"";
        return CA_EBADINPUT;
    }
    if (json_object_get(jwk, "d")) {
        *err = "the JWK holds a private key";
        return CA_EBADINPUT;
    }
    if (!strcmp(kty, "EC")) {
        apr_size_t fl;
        const char *group;
        unsigned char *pt;
        if (crv && !strcmp(crv, "P-256")) {
            fl = 32;
            group = "prime256v1";
        }
        else if (crv && !strcmp(crv, "P-384")) {
            fl = 48;
            group = "secp384r1";
        }
        else {
            *err = "EC JWK: crv must be P-256 or P-384";
            return CA_EBADINPUT;
        }
        if (member_octets(p, jwk, "x", fl, &a, &alen) != APR_SUCCESS
            || member_octets(p, jwk, "y", fl, &b, &blen) != APR_SUCCESS) {
            *err = "EC JWK: x and y must be coordinates of the curve's size";
            return CA_EBADINPUT;
        }
        pt = apr_palloc(p, 1 + 2 * fl);
        pt[0] = 0x04;
        memcpy(pt + 1, a, fl);
        memcpy(pt + 1 + fl, b, fl);
        if (!(bld = OSSL_PARAM_BLD_new())
            || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                                group, 0)
            || !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                                 pt, 1 + 2 * fl)
            || !(params = OSSL_PARAM_BLD_to_param(bld))
            || !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL))
            || EVP_PKEY_fromdata_init(ctx) <= 0
            || EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
            *err = "EC JWK: not a point of the curve";
            goto leave;
        }
        /* a point off the curve is refused by the public key check */
        EVP_PKEY_CTX_free(ctx);
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
        if (!ctx || EVP_PKEY_public_check(ctx) != 1) {
            *err = "EC JWK: not a point of the curve";
            goto leave;
        }
        rv = APR_SUCCESS;
    }
    else if (!strcmp(kty, "RSA")) {
        if (member_octets(p, jwk, "n", 0, &a, &alen) != APR_SUCCESS
            || member_octets(p, jwk, "e", 0, &b, &blen) != APR_SUCCESS
            || a[0] == 0 || b[0] == 0) {
            *err = "RSA JWK: n and e must be base64url integers";
            return CA_EBADINPUT;
        }
        n = BN_bin2bn(a, (int)alen, NULL);
        e = BN_bin2bn(b, (int)blen, NULL);
        if (!n || !e || BN_num_bits(n) < 2048 || BN_num_bits(n) > 8192) {
            *err = "RSA JWK: the modulus must have 2048 to 8192 bits";
            goto leave;
        }
        if (!(bld = OSSL_PARAM_BLD_new())
            || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
            || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)
            || !(params = OSSL_PARAM_BLD_to_param(bld))
            || !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL))
            || EVP_PKEY_fromdata_init(ctx) <= 0
            || EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
            *err = "RSA JWK: not a usable key";
            goto leave;
        }
        rv = APR_SUCCESS;
    }
    else if (!strcmp(kty, "OKP")) {
        if (!crv || strcmp(crv, "Ed25519")) {
            *err = "OKP JWK: crv must be Ed25519";
            return CA_EBADINPUT;
        }
        if (member_octets(p, jwk, "x", 32, &a, &alen) != APR_SUCCESS
            || !(k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, a,
                                                 alen))) {
            *err = "OKP JWK: x must be a 32-octet Ed25519 key";
            return CA_EBADINPUT;
        }
        rv = APR_SUCCESS;
    }
    else {
        *err = apr_psprintf(p, "JWK key type \"%s\" is not supported "
                            "(EC, RSA, OKP)", kty);
        return CA_EBADINPUT;
    }
leave:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    if (rv != APR_SUCCESS) {
        EVP_PKEY_free(k);
        return rv;
    }
    *pkey = ca_pool_pkey(p, k);
    return APR_SUCCESS;
}

static const char *bn_b64(apr_pool_t *p, const BIGNUM *bn, int pad)
{
    int n = pad ? pad : BN_num_bytes(bn);
    unsigned char *buf = apr_palloc(p, (apr_size_t)n + 1);
    if (BN_bn2binpad(bn, buf, n) != n) {
        return NULL;
    }
    return ca_b64url_encode(p, buf, (apr_size_t)n);
}

apr_status_t ca_jwk_from_pkey(apr_pool_t *p, EVP_PKEY *pkey, json_t **jwk)
{
    json_t *j = NULL;
    BIGNUM *a = NULL, *b = NULL;
    apr_status_t rv = CA_ECRYPTO;

    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64];
        int fl;
        const char *crv;
        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                            group, sizeof(group), NULL)) {
            return CA_ECRYPTO;
        }
        if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256")) {
            crv = "P-256";
            fl = 32;
        }
        else if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384")) {
            crv = "P-384";
            fl = 48;
        }
        else {
            return CA_EBADINPUT;
        }
        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &a)
            || !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &b)) {
            goto leave;
        }
        j = json_pack("{s:s,s:s,s:s,s:s}", "kty", "EC", "crv", crv,
                      "x", bn_b64(p, a, fl), "y", bn_b64(p, b, fl));
    }
    else if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &a)
            || !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &b)) {
            goto leave;
        }
        j = json_pack("{s:s,s:s,s:s}", "kty", "RSA", "n", bn_b64(p, a, 0),
                      "e", bn_b64(p, b, 0));
    }
    else if (EVP_PKEY_is_a(pkey, "ED25519")) {
        unsigned char raw[32];
        size_t rl = sizeof(raw);
        if (!EVP_PKEY_get_raw_public_key(pkey, raw, &rl) || rl != 32) {
            goto leave;
        }
        j = json_pack("{s:s,s:s,s:s}", "kty", "OKP", "crv", "Ed25519",
                      "x", ca_b64url_encode(p, raw, rl));
    }
    else {
        return CA_EBADINPUT;
    }
    if (j) {
        *jwk = ca_pool_json(p, j);
        rv = APR_SUCCESS;
    }
leave:
    BN_free(a);
    BN_free(b);
    return rv;
}

apr_status_t ca_jwk_canonical(apr_pool_t *p, json_t *jwk, const char **out,
                              const char **err)
{
    const char *kty = jstr(jwk, "kty");
    static const char *const ec[] = {"crv", "kty", "x", "y", NULL};
    static const char *const rsa[] = {"e", "kty", "n", NULL};
    static const char *const okp[] = {"crv", "kty", "x", NULL};
    const char *const *m;
    json_t *c;
    char *s;
    int i;

    if (!kty) {
        *err = "the JWK has no \"kty\"";
        return CA_EBADINPUT;
    }
    m = !strcmp(kty, "EC") ? ec : !strcmp(kty, "RSA") ? rsa
        : !strcmp(kty, "OKP") ? okp : NULL;
    if (!m) {
        *err = "unsupported JWK key type";
        return CA_EBADINPUT;
    }
    c = ca_pool_json(p, json_object());
    for (i = 0; m[i]; i++) {
        const char *v = jstr(jwk, m[i]);
        if (!v) {
            *err = apr_psprintf(p, "the JWK has no \"%s\"", m[i]);
            return CA_EBADINPUT;
        }
        json_object_set_new(c, m[i], json_string(v));
    }
    s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s) {
        *err = "cannot serialise the JWK";
        return CA_ECRYPTO;
    }
    *out = apr_pstrdup(p, s);
    free(s);
    return APR_SUCCESS;
}

apr_status_t ca_jwk_thumbprint(apr_pool_t *p, json_t *jwk, const char **out,
                               const char **err)
{
    const char *c;
    unsigned char md[32];
    unsigned int mdlen = sizeof(md);
    apr_status_t rv = ca_jwk_canonical(p, jwk, &c, err);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (!EVP_Digest(c, strlen(c), md, &mdlen, EVP_sha256(), NULL)) {
        *err = "SHA-256 failed";
        return CA_ECRYPTO;
    }
    *out = ca_b64url_encode(p, md, mdlen);
    return APR_SUCCESS;
}

/* The digest and raw signature size for an alg and key; NULL digest for
 * EdDSA.  0 when the alg does not fit the key. */
static int alg_fits(const char *alg, EVP_PKEY *key, const EVP_MD **md,
                    apr_size_t *ecsize)
{
    *ecsize = 0;
    *md = NULL;
    if (!strcmp(alg, "ES256") || !strcmp(alg, "ES384")) {
        char group[64];
        int want384 = !strcmp(alg, "ES384");
        if (!EVP_PKEY_is_a(key, "EC")
            || !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                               group, sizeof(group), NULL)) {
            return 0;
        }
        if (want384 ? strcmp(group, "secp384r1") && strcmp(group, "P-384")
                    : strcmp(group, "prime256v1") && strcmp(group, "P-256")) {
            return 0;
        }
        *md = want384 ? EVP_sha384() : EVP_sha256();
        *ecsize = want384 ? 48 : 32;
        return 1;
    }
    if (!strcmp(alg, "RS256")) {
        *md = EVP_sha256();
        return EVP_PKEY_is_a(key, "RSA");
    }
    if (!strcmp(alg, "EdDSA")) {
        return EVP_PKEY_is_a(key, "ED25519");
    }
    return 0;
}

apr_status_t ca_jws_verify(apr_pool_t *p, const ca_jws_t *jws, EVP_PKEY *key,
                           const char **err)
{
    const EVP_MD *md;
    apr_size_t ecsize;
    EVP_MD_CTX *ctx = NULL;
    ECDSA_SIG *es = NULL;
    unsigned char *der = NULL;
    const unsigned char *sig = jws->sig;
    size_t siglen = jws->sig_len;
    int derlen, ok = 0;

    if (!alg_fits(jws->alg, key, &md, &ecsize)) {
        *err = apr_psprintf(p, "alg \"%s\" is not supported for this key "
                            "(ES256, ES384, RS256, EdDSA)", jws->alg);
        return CA_EBADINPUT;
    }
    if (ecsize) {
        BIGNUM *r, *s;
        if (jws->sig_len != 2 * ecsize) {
            *err = "the signature has the wrong length";
            return CA_EBADINPUT;
        }
        r = BN_bin2bn(jws->sig, (int)ecsize, NULL);
        s = BN_bin2bn(jws->sig + ecsize, (int)ecsize, NULL);
        if (!(es = ECDSA_SIG_new()) || !r || !s
            || !ECDSA_SIG_set0(es, r, s)) {
            BN_free(r);
            BN_free(s);
            *err = "cannot read the signature";
            goto leave;
        }
        if ((derlen = i2d_ECDSA_SIG(es, &der)) <= 0) {
            *err = "cannot read the signature";
            goto leave;
        }
        sig = der;
        siglen = (size_t)derlen;
    }
    if (!(ctx = EVP_MD_CTX_new())
        || EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) != 1) {
        *err = "cannot verify with this key";
        goto leave;
    }
    ok = EVP_DigestVerify(ctx, sig, siglen,
                          (const unsigned char *)jws->signing_input,
                          strlen(jws->signing_input)) == 1;
    if (!ok) {
        *err = "the JWS signature does not verify";
    }
leave:
    EVP_MD_CTX_free(ctx);
    ECDSA_SIG_free(es);
    OPENSSL_free(der);
    return ok ? APR_SUCCESS : CA_EBADINPUT;
}

static const EVP_MD *hmac_md(const char *alg)
{
    return !strcmp(alg, "HS256") ? EVP_sha256()
           : !strcmp(alg, "HS384") ? EVP_sha384()
           : !strcmp(alg, "HS512") ? EVP_sha512() : NULL;
}

apr_status_t ca_jws_verify_hmac(apr_pool_t *p, const ca_jws_t *jws,
                                const unsigned char *key, apr_size_t keylen,
                                const char **err)
{
    const EVP_MD *md = hmac_md(jws->alg);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;

    if (!md) {
        *err = apr_psprintf(p, "alg \"%s\" is not a MAC (HS256, HS384, "
                            "HS512)", jws->alg);
        return CA_EBADINPUT;
    }
    if (!HMAC(md, key, (int)keylen,
              (const unsigned char *)jws->signing_input,
              strlen(jws->signing_input), mac, &maclen)) {
        *err = "HMAC failed";
        return CA_ECRYPTO;
    }
    if (maclen != jws->sig_len || CRYPTO_memcmp(mac, jws->sig, maclen)) {
        *err = "the MAC does not verify";
        return CA_EBADINPUT;
    }
    return APR_SUCCESS;
}

static apr_status_t assemble(apr_pool_t *p, const char *prot64,
                             const char *pay64, const unsigned char *sig,
                             apr_size_t siglen, const char **out)
{
    json_t *o = json_pack("{s:s,s:s,s:s}", "protected", prot64,
                          "payload", pay64,
                          "signature", ca_b64url_encode(p, sig, siglen));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) {
        return CA_ECRYPTO;
    }
    *out = apr_pstrdup(p, s);
    free(s);
    return APR_SUCCESS;
}

static const char *header64(apr_pool_t *p, json_t *hdr)
{
    char *s = json_dumps(hdr, JSON_COMPACT);
    const char *r;
    if (!s) {
        return NULL;
    }
    r = ca_b64url_encode(p, (const unsigned char *)s, strlen(s));
    free(s);
    return r;
}

apr_status_t ca_jws_sign(apr_pool_t *p, EVP_PKEY *key, json_t *hdr,
                         const char *payload, const char **out)
{
    const char *alg = EVP_PKEY_is_a(key, "RSA") ? "RS256"
                      : EVP_PKEY_is_a(key, "ED25519") ? "EdDSA" : NULL;
    const char *prot64, *pay64, *input;
    const EVP_MD *md;
    apr_size_t ecsize;
    EVP_MD_CTX *ctx = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    apr_status_t rv = CA_ECRYPTO;

    if (!alg && EVP_PKEY_is_a(key, "EC")) {
        alg = EVP_PKEY_get_bits(key) > 256 ? "ES384" : "ES256";
    }
    if (!alg || !alg_fits(alg, key, &md, &ecsize)) {
        return CA_EBADINPUT;
    }
    json_object_set_new(hdr, "alg", json_string(alg));
    prot64 = header64(p, hdr);
    pay64 = ca_b64url_encode(p, (const unsigned char *)payload,
                             strlen(payload));
    if (!prot64) {
        return CA_ECRYPTO;
    }
    input = apr_pstrcat(p, prot64, ".", pay64, NULL);
    if (!(ctx = EVP_MD_CTX_new())
        || EVP_DigestSignInit(ctx, NULL, md, NULL, key) != 1
        || EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)input,
                          strlen(input)) != 1) {
        goto leave;
    }
    sig = apr_palloc(p, siglen);
    if (EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input,
                       strlen(input)) != 1) {
        goto leave;
    }
    if (ecsize) {
        const unsigned char *d = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &d, (long)siglen);
        unsigned char *raw = apr_palloc(p, 2 * ecsize);
        if (!es) {
            goto leave;
        }
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)ecsize);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + ecsize, (int)ecsize);
        ECDSA_SIG_free(es);
        sig = raw;
        siglen = 2 * ecsize;
    }
    rv = assemble(p, prot64, pay64, sig, siglen, out);
leave:
    EVP_MD_CTX_free(ctx);
    return rv;
}

apr_status_t ca_jws_sign_hmac(apr_pool_t *p, const unsigned char *key,
                              apr_size_t keylen, json_t *hdr,
                              const char *payload, const char **out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    const char *prot64, *pay64, *input;

    json_object_set_new(hdr, "alg", json_string("HS256"));
    if (!(prot64 = header64(p, hdr))) {
        return CA_ECRYPTO;
    }
    pay64 = ca_b64url_encode(p, (const unsigned char *)payload,
                             strlen(payload));
    input = apr_pstrcat(p, prot64, ".", pay64, NULL);
    if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)input,
              strlen(input), mac, &maclen)) {
        return CA_ECRYPTO;
    }
    return assemble(p, prot64, pay64, mac, maclen, out);
}
