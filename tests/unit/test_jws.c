/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_jws (JWS/JWK for ACME), ca_acme (ACME rules) and
 * ca_store_acme (the ACME tables). */

#include <string.h>
#include <unistd.h>

#include <apr_strings.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "unit.h"
#include "rawdb.h"
#include "ca_acme.h"
#include "ca_jws.h"
#include "ca_store.h"
#include "ca_store_acme.h"
#include "ca_util.h"

static void test_b64url(apr_pool_t *p)
{
    unsigned char *out;
    apr_size_t len;
    const unsigned char in[] = {0xfb, 0xff, 0x00, 0x01};

    UT_CHECK(!strcmp(ca_b64url_encode(p, in, 4), "-_8AAQ"));
    UT_CHECK(!strcmp(ca_b64url_encode(p, in, 3), "-_8A"));
    UT_CHECK(!strcmp(ca_b64url_encode(p, in, 0), ""));
    UT_CHECK(ca_b64url_decode(p, "-_8AAQ", &out, &len) == APR_SUCCESS);
    UT_CHECK(len == 4 && !memcmp(out, in, 4));
    UT_CHECK(ca_b64url_decode(p, "-_8AAQ==", &out, &len) != APR_SUCCESS);
    UT_CHECK(ca_b64url_decode(p, "+/8A", &out, &len) != APR_SUCCESS);
    UT_CHECK(ca_b64url_decode(p, "A", &out, &len) != APR_SUCCESS);
    /* non-zero unused bits */
    UT_CHECK(ca_b64url_decode(p, "-_8AAR", &out, &len) != APR_SUCCESS);
}

/* RFC 7638 section 3.1's example. */
static void test_thumbprint_rfc7638(apr_pool_t *p)
{
    const char *jwk_text =
        "{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAF"
        "bWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
        "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpb"
        "ISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0"
        "Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\",\"e\":\"AQAB\",\"alg\":\"RS256\","
        "\"kid\":\"2011-04-29\"}";
    json_error_t je;
    json_t *jwk = ca_pool_json(p, json_loads(jwk_text, 0, &je));
    const char *tp = NULL, *err = NULL;
    EVP_PKEY *k = NULL;

    UT_CHECK(jwk != NULL);
    UT_CHECK(ca_jwk_thumbprint(p, jwk, &tp, &err) == APR_SUCCESS);
    UT_CHECK_MSG(tp && !strcmp(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"),
                 "%s", tp ? tp : err);
    UT_CHECK(ca_jwk_to_pkey(p, jwk, &k, &err) == APR_SUCCESS);
    UT_CHECK(k && EVP_PKEY_is_a(k, "RSA"));
}

/* Each algorithm: sign, parse, verify; a changed payload, another key and
 * an alg that does not fit the key are refused; the JWK round-trips. */
static void roundtrip(apr_pool_t *p, const char *type, const char *alg)
{
    EVP_PKEY *k = ut_keygen(p, type), *other = ut_keygen(p, type), *pk;
    json_t *jwk = NULL, *hdr;
    const char *jws = NULL, *err = NULL, *tp1, *tp2;
    ca_jws_t *j;
    char *bad;

    UT_CHECK(k != NULL);
    UT_CHECK(ca_jwk_from_pkey(p, k, &jwk) == APR_SUCCESS);
    UT_CHECK(jwk != NULL);
    hdr = ca_pool_json(p, json_pack("{s:s,s:s,s:O}", "nonce", "n1",
                                    "url", "https://x/acme/new-account",
                                    "jwk", jwk));
    UT_CHECK(ca_jws_sign(p, k, hdr, "{\"a\":1}", &jws) == APR_SUCCESS);
    if (!jws) {
        return;
    }
    UT_CHECK(ca_jws_parse(p, jws, strlen(jws), &j, &err) == APR_SUCCESS);
    UT_CHECK_MSG(!strcmp(j->alg, alg), "%s", j->alg);
    UT_CHECK(!strcmp(j->nonce, "n1"));
    UT_CHECK(!strcmp(j->payload, "{\"a\":1}"));
    UT_CHECK(ca_jwk_to_pkey(p, j->jwk, &pk, &err) == APR_SUCCESS);
    UT_CHECK_MSG(ca_jws_verify(p, j, pk, &err) == APR_SUCCESS, "%s", err);
    UT_CHECK(ca_jws_verify(p, j, other, &err) != APR_SUCCESS);
    UT_CHECK(ca_jwk_thumbprint(p, jwk, &tp1, &err) == APR_SUCCESS);
    UT_CHECK(ca_jwk_thumbprint(p, j->jwk, &tp2, &err) == APR_SUCCESS);
    UT_CHECK(!strcmp(tp1, tp2));
    /* a different payload with the same signature */
    bad = apr_pstrdup(p, jws);
    {
        char *pl = strstr(bad, "\"payload\":\"");
        UT_CHECK(pl != NULL);
        if (pl) {
            pl += 11;
            *pl = *pl == 'e' ? 'f' : 'e';
        }
    }
    if (ca_jws_parse(p, bad, strlen(bad), &j, &err) == APR_SUCCESS) {
        UT_CHECK(ca_jws_verify(p, j, pk, &err) != APR_SUCCESS);
    }
    /* the alg must fit the key */
    {
        ca_jws_t j2;
        ca_jws_parse(p, jws, strlen(jws), &j, &err);
        j2 = *j;
        j2.alg = !strcmp(alg, "RS256") ? "ES256" : "RS256";
        UT_CHECK(ca_jws_verify(p, &j2, pk, &err) != APR_SUCCESS);
        j2.alg = "none";
        UT_CHECK(ca_jws_verify(p, &j2, pk, &err) != APR_SUCCESS);
        j2.alg = "HS256";
        UT_CHECK(ca_jws_verify(p, &j2, pk, &err) != APR_SUCCESS);
    }
}

static void test_es256(apr_pool_t *p) { roundtrip(p, "p256", "ES256"); }
static void test_es384(apr_pool_t *p) { roundtrip(p, "p384", "ES384"); }
static void test_rs256(apr_pool_t *p) { roundtrip(p, "rsa2048", "RS256"); }
static void test_eddsa(apr_pool_t *p) { roundtrip(p, "ed25519", "EdDSA"); }

static void test_parse_refusals(apr_pool_t *p)
{
    ca_jws_t *j;
    const char *err = NULL;
    json_t *jwk;
    EVP_PKEY *k;

    UT_CHECK(ca_jws_parse(p, "not json", 8, &j, &err) == CA_EBADINPUT);
    UT_CHECK(ca_jws_parse(p, "{}", 2, &j, &err) == CA_EBADINPUT);
    /* unprotected header */
    {
        const char *s = "{\"protected\":\"e30\",\"payload\":\"\","
                        "\"signature\":\"\",\"header\":{}}";
        UT_CHECK(ca_jws_parse(p, s, strlen(s), &j, &err) == CA_EBADINPUT);
    }
    /* no alg */
    {
        const char *s = "{\"protected\":\"e30\",\"payload\":\"\","
                        "\"signature\":\"\"}";
        UT_CHECK(ca_jws_parse(p, s, strlen(s), &j, &err) == CA_EBADINPUT);
    }
    /* duplicate member */
    {
        const char *s = "{\"protected\":\"e30\",\"protected\":\"e30\","
                        "\"payload\":\"\",\"signature\":\"\"}";
        UT_CHECK(ca_jws_parse(p, s, strlen(s), &j, &err) == CA_EBADINPUT);
    }
    /* private keys, small RSA keys, unknown curves, off-curve points */
    jwk = ca_pool_json(p, json_pack("{s:s,s:s,s:s,s:s,s:s}", "kty", "EC",
                                    "crv", "P-256", "x", "AA", "y", "AA",
                                    "d", "AA"));
    UT_CHECK(ca_jwk_to_pkey(p, jwk, &k, &err) == CA_EBADINPUT);
    jwk = ca_pool_json(p, json_pack("{s:s,s:s,s:s}", "kty", "RSA",
                                    "n", "AQAB", "e", "AQAB"));
    UT_CHECK(ca_jwk_to_pkey(p, jwk, &k, &err) == CA_EBADINPUT);
    jwk = ca_pool_json(p, json_pack("{s:s,s:s,s:s,s:s}", "kty", "EC",
                                    "crv", "P-521", "x", "AA", "y", "AA"));
    UT_CHECK(ca_jwk_to_pkey(p, jwk, &k, &err) == CA_EBADINPUT);
    jwk = ca_pool_json(p, json_pack(
        "{s:s,s:s,s:s,s:s}", "kty", "EC", "crv", "P-256",
        "x", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "y", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    UT_CHECK(ca_jwk_to_pkey(p, jwk, &k, &err) == CA_EBADINPUT);
    jwk = ca_pool_json(p, json_pack("{s:s}", "kty", "oct"));
    UT_CHECK(ca_jwk_to_pkey(p, jwk, &k, &err) == CA_EBADINPUT);
}

static void test_hmac(apr_pool_t *p)
{
    const unsigned char key[] = "0123456789abcdef0123456789abcdef";
    json_t *hdr = ca_pool_json(p, json_pack("{s:s,s:s}", "kid", "k1",
                                            "url", "https://x/new-account"));
    const char *jws, *err = NULL;
    ca_jws_t *j;

    UT_CHECK(ca_jws_sign_hmac(p, key, 32, hdr, "{}", &jws) == APR_SUCCESS);
    UT_CHECK(ca_jws_parse(p, jws, strlen(jws), &j, &err) == APR_SUCCESS);
    UT_CHECK(!strcmp(j->alg, "HS256") && !strcmp(j->kid, "k1"));
    UT_CHECK(ca_jws_verify_hmac(p, j, key, 32, &err) == APR_SUCCESS);
    UT_CHECK(ca_jws_verify_hmac(p, j, key, 31, &err) == CA_EBADINPUT);
    j->alg = "ES256";
    UT_CHECK(ca_jws_verify_hmac(p, j, key, 32, &err) == CA_EBADINPUT);
}

static void test_names(apr_pool_t *p)
{
    apr_array_header_t *pat = apr_array_make(p, 2, sizeof(const char *));

    APR_ARRAY_PUSH(pat, const char *) = "localhost";
    APR_ARRAY_PUSH(pat, const char *) = "*.example.org";
    UT_CHECK(!strcmp(ca_acme_dns_normalize(p, "WWW.Example.ORG"),
                     "www.example.org"));
    UT_CHECK(ca_acme_dns_normalize(p, "a..b") == NULL);
    UT_CHECK(ca_acme_dns_normalize(p, "a.b.") == NULL);
    UT_CHECK(ca_acme_dns_normalize(p, "-a.b") == NULL);
    UT_CHECK(ca_acme_dns_normalize(p, "a_b.c") == NULL);
    UT_CHECK(ca_acme_dns_normalize(p, "a/b") == NULL);
    UT_CHECK(ca_acme_dns_normalize(p, "") == NULL);
    UT_CHECK(ca_acme_name_allowed(pat, "localhost"));
    UT_CHECK(ca_acme_name_allowed(pat, "a.example.org"));
    UT_CHECK(ca_acme_name_allowed(pat, "a.b.example.org"));
    UT_CHECK(!ca_acme_name_allowed(pat, "example.org"));
    UT_CHECK(!ca_acme_name_allowed(pat, "badexample.org"));
    UT_CHECK(!ca_acme_name_allowed(pat, "a.localhost"));
    UT_CHECK(!ca_acme_name_allowed(pat, "*.example.org"));
}

/* Stateless nonces: a nonce of the key checks, within its lifetime; a
 * changed octet, another key, an old or future issue time, a malformed
 * text do not. */
static void test_nonce(apr_pool_t *p)
{
    unsigned char key[CA_ACME_NONCE_KEY_LEN], other[CA_ACME_NONCE_KEY_LEN];
    const char *n, *n2;
    char *bad;
    apr_int64_t at = 0;
    apr_size_t i;

    memset(key, 7, sizeof(key));
    memset(other, 8, sizeof(other));
    n = ca_acme_nonce_make(p, key, sizeof(key), 1000000);
    n2 = ca_acme_nonce_make(p, key, sizeof(key), 1000000);
    UT_CHECK(n && n2 && strlen(n) == CA_ACME_NONCE_CHARS && strcmp(n, n2));
    UT_CHECK(ca_acme_nonce_check(p, key, sizeof(key), n, 1000000, 3600, 300,
                                 &at) == APR_SUCCESS && at == 1000000);
    UT_CHECK(ca_acme_nonce_check(p, key, sizeof(key), n, 1003599, 3600, 300,
                                 NULL) == APR_SUCCESS);
    /* expired, and issued too far in the future */
    UT_CHECK(ca_acme_nonce_check(p, key, sizeof(key), n, 1003600, 3600, 300,
                                 NULL) == CA_EPOLICY);
    UT_CHECK(ca_acme_nonce_check(p, key, sizeof(key), n, 999700, 3600, 300,
                                 NULL) == APR_SUCCESS);
    UT_CHECK(ca_acme_nonce_check(p, key, sizeof(key), n, 999699, 3600, 300,
                                 NULL) == CA_EPOLICY);
    /* another key */
    UT_CHECK(ca_acme_nonce_check(p, other, sizeof(other), n, 1000000, 3600,
                                 300, NULL) == CA_EBADINPUT);
    /* every character changed in turn (time, random, MAC) */
    for (i = 0; i < CA_ACME_NONCE_CHARS - 1; i++) {
        bad = apr_pstrdup(p, n);
        bad[i] = bad[i] == 'B' ? 'C' : 'B';
        UT_CHECK(ca_acme_nonce_check(p, key, sizeof(key), bad, 1000000, 3600,
                                     300, NULL) == CA_EBADINPUT);
    }
    UT_CHECK(ca_acme_nonce_check(p, key, sizeof(key), "AAAA", 1000000, 3600,
                                 300, NULL) == CA_EBADINPUT);
    UT_CHECK(ca_acme_nonce_check(p, key, sizeof(key), "", 1000000, 3600,
                                 300, NULL) == CA_EBADINPUT);
    bad = apr_pstrdup(p, n);
    bad[3] = '+';
    UT_CHECK(ca_acme_nonce_check(p, key, sizeof(key), bad, 1000000, 3600,
                                 300, NULL) == CA_EBADINPUT);
    UT_CHECK(ca_acme_nonce_check(p, key, sizeof(key),
                                 apr_pstrcat(p, n, "A", NULL), 1000000, 3600,
                                 300, NULL) == CA_EBADINPUT);
}

static void test_order_status(apr_pool_t *p)
{
    apr_array_header_t *a = apr_array_make(p, 2, sizeof(const char *));
    APR_ARRAY_PUSH(a, const char *) = "valid";
    APR_ARRAY_PUSH(a, const char *) = "pending";
    UT_CHECK(!strcmp(ca_acme_order_status("pending", a, 100, 50), "pending"));
    UT_CHECK(!strcmp(ca_acme_order_status("pending", a, 100, 150), "invalid"));
    APR_ARRAY_IDX(a, 1, const char *) = "valid";
    UT_CHECK(!strcmp(ca_acme_order_status("pending", a, 100, 50), "ready"));
    UT_CHECK(!strcmp(ca_acme_order_status("valid", a, 100, 150), "valid"));
    APR_ARRAY_IDX(a, 1, const char *) = "invalid";
    UT_CHECK(!strcmp(ca_acme_order_status("pending", a, 100, 50), "invalid"));
    UT_CHECK(ca_acme_http01_body_ok("tok.tp\r\n", 8, "tok.tp"));
    UT_CHECK(!ca_acme_http01_body_ok("tok.tpx", 7, "tok.tp"));
    UT_CHECK(!ca_acme_http01_body_ok(" tok.tp", 7, "tok.tp"));
}

static X509_REQ *csr_with(apr_pool_t *p, const char *cn, const char *sans)
{
    EVP_PKEY *k = ut_keygen(p, "p256");
    X509_REQ *req = ca_pool_x509_req(p, X509_REQ_new());
    X509_NAME *n = X509_REQ_get_subject_name(req);
    if (cn) {
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0);
    }
    if (sans) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL,
                                                NID_subject_alt_name,
                                                (char *)sans);
        sk_X509_EXTENSION_push(exts, e);
        X509_REQ_add_extensions(req, exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    X509_REQ_set_pubkey(req, k);
    X509_REQ_sign(req, k, EVP_sha256());
    return req;
}

static void test_csr_matches(apr_pool_t *p)
{
    apr_array_header_t *ids = apr_array_make(p, 2, sizeof(const char *));
    const char *err = NULL;

    APR_ARRAY_PUSH(ids, const char *) = "localhost";
    APR_ARRAY_PUSH(ids, const char *) = "a.example.org";
    UT_CHECK(ca_acme_csr_matches(p, csr_with(p, NULL,
                                             "DNS:localhost,DNS:A.example.org"),
                                 ids, &err) == APR_SUCCESS);
    UT_CHECK(ca_acme_csr_matches(p, csr_with(p, "localhost",
                                             "DNS:localhost,DNS:a.example.org"),
                                 ids, &err) == APR_SUCCESS);
    UT_CHECK(ca_acme_csr_matches(p, csr_with(p, NULL, "DNS:localhost"), ids,
                                 &err) == CA_EPOLICY);
    UT_CHECK(ca_acme_csr_matches(p, csr_with(p, NULL,
                                             "DNS:localhost,DNS:a.example.org,"
                                             "DNS:b.example.org"),
                                 ids, &err) == CA_EPOLICY);
    UT_CHECK(ca_acme_csr_matches(p, csr_with(p, "other",
                                             "DNS:localhost,DNS:a.example.org"),
                                 ids, &err) == CA_EPOLICY);
    UT_CHECK(ca_acme_csr_matches(p, csr_with(p, NULL,
                                             "DNS:localhost,DNS:a.example.org,"
                                             "IP:127.0.0.1"),
                                 ids, &err) == CA_EPOLICY);
}

/* The number of rows of a table of the store's file. */
static long spent_rows(apr_pool_t *p)
{
    raw_t *r = raw_open(p, apr_psprintf(p, "/tmp/test_jws_%d.db",
                                        (int)getpid()));
    const char *v = raw_scalar(p, r, "SELECT COUNT(*) FROM "
                                     "certauth_acme_spent_nonces");
    return v ? atol(v) : -1;
}

static ca_store_t *store(apr_pool_t *p)
{
    const char *path = apr_psprintf(p, "/tmp/test_jws_%d.db", (int)getpid());
    ca_store_t *s = NULL;
    const char *err = NULL;
    int v = 0;

    unlink(path);
    UT_CHECK(ca_store_open(&s, p, "sqlite3", path, &err) == APR_SUCCESS);
    UT_CHECK(s && ca_store_migrate(s, p, &v, &err) == APR_SUCCESS);
    UT_CHECK(v == ca_store_schema_version());
    return s;
}

static void test_store_acme(apr_pool_t *p)
{
    ca_store_t *s = store(p);
    ca_acme_eab_t eab = {"kid1", "key", "alice", 100, 1000, ""}, *e;
    ca_acme_account_t acct = {"acc1", "tp1", "{}", "alice", "valid", "[]",
                              "kid1", 100}, *a;
    ca_acme_order_t ord = {"o1", "acc1", "pending", 500, "localhost",
                           "server", "", "", 100}, *o;
    ca_acme_authz_t az = {"z1", "o1", "acc1", "localhost", "pending", 500},
                    *pz = &az;
    ca_acme_chall_t ch = {"c1", "z1", "http-01", "tok", "pending", 0, ""},
                    *pc = &ch, *c;
    apr_array_header_t *azs = apr_array_make(p, 1, sizeof(void *));
    apr_array_header_t *chs = apr_array_make(p, 1, sizeof(void *));
    apr_array_header_t *rows;

    if (!s) {
        return;
    }
    /* the nonce key: none, then made once; a second process's candidate
     * loses to the stored one */
    {
        const char *k1 = NULL, *k2 = NULL;
        UT_CHECK(ca_store_acme_nonce_key(s, p, NULL, 100, &k1)
                 == CA_ENOTFOUND);
        UT_CHECK(ca_store_acme_nonce_key(s, p, "key-a", 100, &k1)
                 == APR_SUCCESS && !strcmp(k1, "key-a"));
        UT_CHECK(ca_store_acme_nonce_key(s, p, "key-b", 100, &k2)
                 == APR_SUCCESS && !strcmp(k2, "key-a"));
        UT_CHECK(ca_store_acme_nonce_key(s, p, NULL, 100, &k2)
                 == APR_SUCCESS && !strcmp(k2, "key-a"));
        /* a spent nonce is spent once; the rows go after their lifetime */
        UT_CHECK(ca_store_acme_nonce_spend(s, p, "n1", 200) == APR_SUCCESS);
        UT_CHECK(ca_store_acme_nonce_spend(s, p, "n1", 200) == CA_EEXIST);
        UT_CHECK(ca_store_acme_nonce_spend(s, p, "n2", 300) == APR_SUCCESS);
        UT_CHECK(spent_rows(p) == 2);
        UT_CHECK(ca_store_acme_nonce_clean(s, p, 250) == APR_SUCCESS);
        UT_CHECK(spent_rows(p) == 1);
        UT_CHECK(ca_store_acme_nonce_spend(s, p, "n2", 300) == CA_EEXIST);
    }

    UT_CHECK(ca_store_acme_eab_add(s, p, &eab) == APR_SUCCESS);
    UT_CHECK(ca_store_acme_eab_get(s, p, "kid1", &e) == APR_SUCCESS);
    UT_CHECK(!strcmp(e->owner, "alice") && !*e->account);
    UT_CHECK(ca_store_acme_eab_bind(s, p, "kid1", "acc1") == APR_SUCCESS);
    UT_CHECK(ca_store_acme_eab_bind(s, p, "kid1", "acc2") == CA_ECONFLICT);

    UT_CHECK(ca_store_acme_account_add(s, p, &acct) == APR_SUCCESS);
    acct.id = "acc2";
    UT_CHECK(ca_store_acme_account_add(s, p, &acct) == CA_EEXIST);
    UT_CHECK(ca_store_acme_account_by_key(s, p, "tp1", &a) == APR_SUCCESS);
    UT_CHECK(!strcmp(a->id, "acc1") && !strcmp(a->owner, "alice"));
    UT_CHECK(ca_store_acme_account_rekey(s, p, "acc1", "tp1", "tp2", "{2}")
             == APR_SUCCESS);
    UT_CHECK(ca_store_acme_account_rekey(s, p, "acc1", "tp1", "tp3", "{3}")
             == CA_ECONFLICT);
    UT_CHECK(ca_store_acme_account_update(s, p, "acc1", "deactivated", NULL)
             == APR_SUCCESS);
    UT_CHECK(ca_store_acme_account_get(s, p, "acc1", &a) == APR_SUCCESS);
    UT_CHECK(!strcmp(a->status, "deactivated") && !strcmp(a->jwk, "{2}"));

    APR_ARRAY_PUSH(azs, ca_acme_authz_t *) = pz;
    APR_ARRAY_PUSH(chs, ca_acme_chall_t *) = pc;
    UT_CHECK(ca_store_acme_order_add(s, p, &ord, azs, chs) == APR_SUCCESS);
    UT_CHECK(ca_store_acme_order_authz(s, p, "o1", &rows) == APR_SUCCESS);
    UT_CHECK(rows->nelts == 1);
    UT_CHECK(ca_store_acme_chall_set(s, p, "c1", "pending", "processing", 0,
                                     NULL) == APR_SUCCESS);
    UT_CHECK(ca_store_acme_chall_set(s, p, "c1", "pending", "processing", 0,
                                     NULL) == CA_ECONFLICT);
    UT_CHECK(ca_store_acme_chall_set(s, p, "c1", "processing", "valid", 120,
                                     NULL) == APR_SUCCESS);
    UT_CHECK(ca_store_acme_chall_get(s, p, "c1", &c) == APR_SUCCESS);
    UT_CHECK(!strcmp(c->status, "valid") && c->validated_at == 120);
    UT_CHECK(ca_store_acme_authz_set(s, p, "z1", "pending", "valid")
             == APR_SUCCESS);
    UT_CHECK(ca_store_acme_order_set(s, p, "o1", "pending", "valid", "AB",
                                     NULL) == APR_SUCCESS);
    UT_CHECK(ca_store_acme_order_get(s, p, "o1", &o) == APR_SUCCESS);
    UT_CHECK(!strcmp(o->status, "valid") && !strcmp(o->serial, "AB"));
    /* cleanup: orders expired before the bound go with their children */
    UT_CHECK(ca_store_acme_cleanup(s, p, 300, 400) == APR_SUCCESS);
    UT_CHECK(ca_store_acme_order_get(s, p, "o1", &o) == APR_SUCCESS);
    UT_CHECK(ca_store_acme_cleanup(s, p, 300, 600) == APR_SUCCESS);
    UT_CHECK(ca_store_acme_order_get(s, p, "o1", &o) == CA_ENOTFOUND);
    UT_CHECK(ca_store_acme_authz_get(s, p, "z1", &pz) == CA_ENOTFOUND);
    UT_CHECK(ca_store_acme_chall_get(s, p, "c1", &c) == CA_ENOTFOUND);
    unlink(apr_psprintf(p, "/tmp/test_jws_%d.db", (int)getpid()));
}

int main(void)
{
    UT_RUN(test_b64url);
    UT_RUN(test_thumbprint_rfc7638);
    UT_RUN(test_es256);
    UT_RUN(test_es384);
    UT_RUN(test_rs256);
    UT_RUN(test_eddsa);
    UT_RUN(test_parse_refusals);
    UT_RUN(test_hmac);
    UT_RUN(test_names);
    UT_RUN(test_nonce);
    UT_RUN(test_order_status);
    UT_RUN(test_csr_matches);
    UT_RUN(test_store_acme);
    return ut_finish();
}
