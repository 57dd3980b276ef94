/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_csr: parsing (PEM, DER, base64), proof of possession,
 * signature algorithms, key policy, requested extensions. */

#include <string.h>

#include <apr_strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "unit.h"
#include "ca_csr.h"
#include "ca_util.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* A CSR for key, signed with md (NULL for EdDSA); ca_ext: 0 none,
 * 1 basicConstraints CA:TRUE, 2 CA:FALSE.  pss: RSASSA-PSS padding. */
static X509_REQ *make_req_ex(apr_pool_t *p, EVP_PKEY *key, const EVP_MD *md,
                             int ca_ext, int pss, const char *cn)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    int ok;

    ok = req && name
         && X509_REQ_set_version(req, X509_REQ_VERSION_1)
         && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       (const unsigned char *)cn, -1,
                                       -1, 0)
         && X509_REQ_set_subject_name(req, name)
         && X509_REQ_set_pubkey(req, key);
    if (ok && ca_ext) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(
            NULL, NULL, NID_basic_constraints,
            ca_ext == 1 ? "critical,CA:TRUE" : "critical,CA:FALSE");
        ok = exts && ext && sk_X509_EXTENSION_push(exts, ext)
             && X509_REQ_add_extensions(req, exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    if (ok && pss) {
        EVP_MD_CTX *mctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        ok = mctx
             && EVP_DigestSignInit(mctx, &pctx, md, NULL, key) > 0
             && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0
             && EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
                    > 0
             && X509_REQ_sign_ctx(req, mctx) > 0;
        EVP_MD_CTX_free(mctx);
    }
    else if (ok) {
        ok = X509_REQ_sign(req, key, md) > 0;
    }
    X509_NAME_free(name);
    if (!ok) {
        X509_REQ_free(req);
        ERR_clear_error();
        return NULL;
    }
    return ca_pool_x509_req(p, req);
}

static X509_REQ *make_req(apr_pool_t *p, EVP_PKEY *key, const EVP_MD *md)
{
    return make_req_ex(p, key, md, 0, 0, "test");
}

static unsigned char *req_der(apr_pool_t *p, X509_REQ *req, apr_size_t *len)
{
    unsigned char *der = NULL, *copy;
    int n = i2d_X509_REQ(req, &der);
    if (n <= 0) {
        abort();
    }
    copy = apr_pmemdup(p, der, (apr_size_t)n);
    OPENSSL_free(der);
    *len = (apr_size_t)n;
    return copy;
}

static char *req_pem(apr_pool_t *p, X509_REQ *req, int new_header)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *s;
    long n;

    if (new_header) {
        PEM_write_bio_X509_REQ_NEW(bio, req);
    }
    else {
        PEM_write_bio_X509_REQ(bio, req);
    }
    n = BIO_get_mem_data(bio, &data);
    s = apr_pstrmemdup(p, data, (apr_size_t)n);
    BIO_free(bio);
    return s;
}

/* base64 of der, broken into lines of `width` ending with eol. */
static char *b64_lines(apr_pool_t *p, const unsigned char *der,
                       apr_size_t len, int width, const char *eol)
{
    int n = 4 * (((int)len + 2) / 3);
    unsigned char *flat = apr_palloc(p, (apr_size_t)n + 1);
    char *out, *o;
    int i;

    EVP_EncodeBlock(flat, der, (int)len);
    out = o = apr_palloc(p, (apr_size_t)n + (apr_size_t)(n / width + 2)
                                * strlen(eol) + 1);
    for (i = 0; i < n; i++) {
        *o++ = (char)flat[i];
        if ((i + 1) % width == 0) {
            strcpy(o, eol);
            o += strlen(eol);
        }
    }
    strcpy(o, eol);
    return out;
}

static int one_line(const char *err)
{
    return err && *err && !strchr(err, '\n') && !strchr(err, '\r');
}

static int has(const char *err, const char *what)
{
    return err && strstr(err, what);
}

/* Parse and check in one go. */
static apr_status_t parse_check(apr_pool_t *p, const void *data,
                                apr_size_t len, const char **err)
{
    X509_REQ *req = NULL;
    ca_key_policy_t pol;
    apr_status_t rv = ca_csr_parse(p, data, len, &req, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    ca_key_policy_default(&pol);
    return ca_csr_check(p, req, &pol, err);
}

static int same_req(apr_pool_t *p, X509_REQ *a, X509_REQ *b)
{
    apr_size_t la, lb;
    unsigned char *da = req_der(p, a, &la), *db = req_der(p, b, &lb);
    return la == lb && !memcmp(da, db, la);
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

static void test_parse_pem(apr_pool_t *p)
{
    X509_REQ *req = make_req(p, ut_keygen(p, "p256"), EVP_sha256()), *got = NULL;
    const char *pem = req_pem(p, req, 0), *err = NULL;
    char *framed;

    UT_CHECK(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----") == pem);
    UT_CHECK(ca_csr_parse(p, pem, strlen(pem), &got, &err) == APR_SUCCESS);
    UT_CHECK(got && same_req(p, req, got));
    UT_CHECK(parse_check(p, pem, strlen(pem), &err) == APR_SUCCESS);

    /* CRLF line ends and some text around it, as pasted from a mail */
    framed = apr_pstrcat(p, "Here is my request:\r\n", pem, "\r\nthanks\r\n",
                         NULL);
    got = NULL;
    UT_CHECK(ca_csr_parse(p, framed, strlen(framed), &got, &err)
             == APR_SUCCESS);
    UT_CHECK(got && same_req(p, req, got));
}

static void test_parse_pem_new_header(apr_pool_t *p)
{
    X509_REQ *req = make_req(p, ut_keygen(p, "p256"), EVP_sha256()), *got = NULL;
    const char *pem = req_pem(p, req, 1), *err = NULL;

    UT_CHECK(strstr(pem, "-----BEGIN NEW CERTIFICATE REQUEST-----") == pem);
    UT_CHECK(strstr(pem, "-----END NEW CERTIFICATE REQUEST-----") != NULL);
    UT_CHECK_MSG(ca_csr_parse(p, pem, strlen(pem), &got, &err) == APR_SUCCESS,
                 "%s", err ? err : "");
    UT_CHECK(got && same_req(p, req, got));
}

static void test_parse_der(apr_pool_t *p)
{
    X509_REQ *req = make_req(p, ut_keygen(p, "p384"), EVP_sha384()), *got = NULL;
    apr_size_t len;
    unsigned char *der = req_der(p, req, &len);
    const char *err = NULL;

    UT_CHECK(ca_csr_parse(p, (const char *)der, len, &got, &err)
             == APR_SUCCESS);
    UT_CHECK(got && same_req(p, req, got));
    UT_CHECK(parse_check(p, der, len, &err) == APR_SUCCESS);
}

static void test_parse_der_with_pem_marker(apr_pool_t *p)
{
    /* a DER request whose CN contains the PEM marker is still DER */
    X509_REQ *req = make_req_ex(p, ut_keygen(p, "p256"), EVP_sha256(), 0, 0,
                                "-----BEGIN CERTIFICATE REQUEST-----");
    X509_REQ *got = NULL;
    apr_size_t len;
    unsigned char *der = req_der(p, req, &len);
    const char *err = NULL;

    UT_CHECK(memmem(der, len, "-----BEGIN", 10) != NULL);
    UT_CHECK_MSG(ca_csr_parse(p, (const char *)der, len, &got, &err)
                 == APR_SUCCESS, "%s", err ? err : "");
    UT_CHECK(got && same_req(p, req, got));
}

static void test_parse_base64(apr_pool_t *p)
{
    X509_REQ *req = make_req(p, ut_keygen(p, "p256"), EVP_sha256()), *got;
    apr_size_t len;
    unsigned char *der = req_der(p, req, &len);
    const char *err = NULL;
    char *b;

    /* one line, CRLF lines of 64, LF lines of 76, spaces */
    b = b64_lines(p, der, len, 100000, "");
    got = NULL;
    UT_CHECK(ca_csr_parse(p, b, strlen(b), &got, &err) == APR_SUCCESS);
    UT_CHECK(got && same_req(p, req, got));

    b = b64_lines(p, der, len, 64, "\r\n");
    got = NULL;
    UT_CHECK(ca_csr_parse(p, b, strlen(b), &got, &err) == APR_SUCCESS);
    UT_CHECK(got && same_req(p, req, got));

    b = b64_lines(p, der, len, 76, "\n");
    got = NULL;
    UT_CHECK(ca_csr_parse(p, b, strlen(b), &got, &err) == APR_SUCCESS);
    UT_CHECK(got && same_req(p, req, got));

    b = b64_lines(p, der, len, 16, " \n ");
    got = NULL;
    UT_CHECK(ca_csr_parse(p, b, strlen(b), &got, &err) == APR_SUCCESS);
    UT_CHECK(got && same_req(p, req, got));

    /* base64 with a bad character in the middle */
    b = b64_lines(p, der, len, 64, "\n");
    b[10] = '*';
    got = NULL;
    UT_CHECK(ca_csr_parse(p, b, strlen(b), &got, &err) == CA_EBADINPUT);
    UT_CHECK(got == NULL && one_line(err));
}

static void test_parse_empty(apr_pool_t *p)
{
    X509_REQ *got = NULL;
    const char *err = NULL;

    UT_CHECK(ca_csr_parse(p, "", 0, &got, &err) == CA_EBADINPUT);
    UT_CHECK(got == NULL && has(err, "empty request body"));
    err = NULL;
    UT_CHECK(ca_csr_parse(p, " \r\n\t\n", 5, &got, &err) == CA_EBADINPUT);
    UT_CHECK(got == NULL && has(err, "empty request body"));
}

static void test_parse_garbage(apr_pool_t *p)
{
    X509_REQ *got = NULL;
    const char *err = NULL;
    unsigned char rnd[700];
    static const char *bad[] = {
        "hello world",
        "MIIB",
        "====",
        "-----BEGIN CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\nnot base64!!\n"
        "-----END CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
        "-----END CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAAAA\n"
        "-----END OTHER THING-----\n",
        "-----BEGIN",
        "\x30\x82\xff\xff",
        "\x30\x00",
        "\x30\x80\x00\x00",
    };
    apr_size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        got = NULL;
        err = NULL;
        UT_CHECK_MSG(ca_csr_parse(p, bad[i], strlen(bad[i]), &got, &err)
                     == CA_EBADINPUT, "input %d", (int)i);
        UT_CHECK_MSG(got == NULL && one_line(err), "input %d", (int)i);
    }
    got = NULL;
    UT_CHECK(ca_csr_parse(p, "hello world", 11, &got, &err) == CA_EBADINPUT);
    UT_CHECK(has(err, "not a PKCS#10 request"));

    for (i = 0; i < 50; i++) {
        RAND_bytes(rnd, sizeof(rnd));
        got = NULL;
        UT_CHECK(ca_csr_parse(p, (const char *)rnd, sizeof(rnd), &got, &err)
                 == CA_EBADINPUT);
        UT_CHECK(got == NULL && one_line(err));
    }
}

static void test_parse_other_pem(apr_pool_t *p)
{
    /* A certificate (or a private key) is not a request. */
    EVP_PKEY *key = ut_keygen(p, "p256");
    X509 *x = X509_new();
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n;
    X509_REQ *got = NULL;
    const char *err = NULL;

    X509_set_version(x, X509_VERSION_3);
    X509_set_pubkey(x, key);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    UT_CHECK(X509_sign(x, key, EVP_sha256()) > 0);
    PEM_write_bio_X509(bio, x);
    n = BIO_get_mem_data(bio, &data);
    UT_CHECK(ca_csr_parse(p, data, (apr_size_t)n, &got, &err) == CA_EBADINPUT);
    UT_CHECK(got == NULL && one_line(err) && has(err, "CERTIFICATE"));
    BIO_free(bio);
    X509_free(x);

    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(bio, &data);
    got = NULL;
    err = NULL;
    UT_CHECK(ca_csr_parse(p, data, (apr_size_t)n, &got, &err) == CA_EBADINPUT);
    UT_CHECK(got == NULL && one_line(err));
    /* the message names the block type, never its content */
    UT_CHECK(has(err, "PRIVATE KEY") && !strstr(err, "MII"));
    BIO_free(bio);
}

static void test_parse_truncated(apr_pool_t *p)
{
    X509_REQ *req = make_req(p, ut_keygen(p, "p256"), EVP_sha256()), *got;
    apr_size_t len, i;
    unsigned char *der = req_der(p, req, &len), *longer;
    const char *err = NULL;
    char *pem;

    for (i = 1; i < len; i++) {
        got = NULL;
        err = NULL;
        UT_CHECK_MSG(ca_csr_parse(p, (const char *)der, i, &got, &err)
                     == CA_EBADINPUT, "truncated to %d", (int)i);
        UT_CHECK(got == NULL && one_line(err));
    }
    /* trailing bytes after the DER are refused too */
    longer = apr_palloc(p, len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    got = NULL;
    UT_CHECK(ca_csr_parse(p, (const char *)longer, len + 1, &got, &err)
             == CA_EBADINPUT);
    UT_CHECK(got == NULL);

    /* truncated PEM: base64 cut in the middle, END line missing */
    pem = req_pem(p, req, 0);
    pem[strlen(pem) / 2] = '\0';
    got = NULL;
    UT_CHECK(ca_csr_parse(p, pem, strlen(pem), &got, &err) == CA_EBADINPUT);
    UT_CHECK(got == NULL && one_line(err));

    /* base64 of truncated DER */
    pem = b64_lines(p, der, len - 7, 64, "\n");
    got = NULL;
    UT_CHECK(ca_csr_parse(p, pem, strlen(pem), &got, &err) == CA_EBADINPUT);
    UT_CHECK(got == NULL && one_line(err));
}

static void test_parse_too_large(apr_pool_t *p)
{
    X509_REQ *req = make_req(p, ut_keygen(p, "p256"), EVP_sha256()), *got = NULL;
    const char *pem = req_pem(p, req, 0), *err = NULL;
    apr_size_t big = 64 * 1024 + 1, n = strlen(pem);
    char *data = apr_palloc(p, big);

    /* a valid PEM followed by padding beyond 64 KiB */
    memset(data, '\n', big);
    memcpy(data, pem, n);
    UT_CHECK(ca_csr_parse(p, data, big, &got, &err) == CA_EBADINPUT);
    UT_CHECK(got == NULL && one_line(err) && has(err, "too large"));
    /* exactly 64 KiB is still looked at */
    got = NULL;
    UT_CHECK(ca_csr_parse(p, data, big - 1, &got, &err) == APR_SUCCESS);
    UT_CHECK(got != NULL);
}

/* Random mutations of a valid request: no crash, no leak, sane result. */
static void test_parse_mutations(apr_pool_t *p)
{
    X509_REQ *req = make_req(p, ut_keygen(p, "p256"), EVP_sha256()), *got;
    apr_size_t len, i;
    unsigned char *der = req_der(p, req, &len), *m = apr_palloc(p, len);
    unsigned char r[3];
    const char *err;
    int parsed = 0, refused = 0;
    ca_key_policy_t pol;
    apr_pool_t *sub;

    ca_key_policy_default(&pol);
    apr_pool_create(&sub, p);
    for (i = 0; i < 3000; i++) {
        memcpy(m, der, len);
        RAND_bytes(r, sizeof(r));
        m[(r[0] | (r[1] << 8)) % len] ^= (unsigned char)(r[2] ? r[2] : 1);
        got = NULL;
        err = NULL;
        if (ca_csr_parse(sub, (const char *)m, len, &got, &err)
            == APR_SUCCESS) {
            parsed++;
            UT_CHECK(got != NULL);
            if (ca_csr_check(sub, got, &pol, &err) != APR_SUCCESS) {
                refused++;
                UT_CHECK(one_line(err));
            }
        }
        else {
            UT_CHECK(got == NULL && one_line(err));
        }
        apr_pool_clear(sub);
    }
    /* every byte of a signed CSR matters: whatever still parses must be
     * refused by the check (mostly: signature does not verify) */
    UT_CHECK_MSG(refused == parsed, "parsed %d refused %d", parsed,
                 refused);
    apr_pool_destroy(sub);
}

/* ------------------------------------------------------------------ */
/* Checking                                                            */
/* ------------------------------------------------------------------ */

static void test_check_good_keys(apr_pool_t *p)
{
    static const struct { const char *key; int md; } ok[] = {
        { "rsa2048", 256 }, { "p256", 256 }, { "p384", 384 },
        { "p256", 512 }, { "ed25519", 0 },
    };
    apr_size_t i;
    const char *err;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const EVP_MD *md = ok[i].md == 256 ? EVP_sha256()
                           : ok[i].md == 384 ? EVP_sha384()
                           : ok[i].md == 512 ? EVP_sha512() : NULL;
        X509_REQ *req = make_req(p, ut_keygen(p, ok[i].key), md);
        ca_key_policy_t pol;
        ca_key_policy_default(&pol);
        err = NULL;
        UT_CHECK(req != NULL);
        UT_CHECK_MSG(ca_csr_check(p, req, &pol, &err) == APR_SUCCESS,
                     "%s: %s", ok[i].key, err ? err : "");
        /* NULL policy means the default one */
        UT_CHECK(ca_csr_check(p, req, NULL, &err) == APR_SUCCESS);
    }
}

static void test_check_rsa_pss(apr_pool_t *p)
{
    EVP_PKEY *key = ut_keygen(p, "rsa2048");
    X509_REQ *req = make_req_ex(p, key, EVP_sha256(), 0, 1, "test");
    const char *err = NULL;

    UT_CHECK(req != NULL);
    {
        const ASN1_BIT_STRING *sig;
        const X509_ALGOR *alg;
        const ASN1_OBJECT *obj;
        X509_REQ_get0_signature(req, &sig, &alg);
        X509_ALGOR_get0(&obj, NULL, NULL, alg);
        UT_CHECK(OBJ_obj2nid(obj) == NID_rsassaPss);
    }
    UT_CHECK_MSG(ca_csr_check(p, req, NULL, &err) == APR_SUCCESS, "%s",
                 err ? err : "");
    req = make_req_ex(p, key, EVP_sha1(), 0, 1, "test");
    UT_CHECK(req != NULL);
    err = NULL;
    UT_CHECK(ca_csr_check(p, req, NULL, &err) == CA_EPOLICY);
    UT_CHECK(has(err, "SHA-1"));
}

static void test_check_bad_signature(apr_pool_t *p)
{
    static const char *keys[] = { "p256", "rsa2048", "ed25519" };
    apr_size_t i, len;
    const char *err;

    for (i = 0; i < 3; i++) {
        EVP_PKEY *key = ut_keygen(p, keys[i]);
        X509_REQ *req = make_req(p, key, !strcmp(keys[i], "ed25519")
                                             ? NULL : EVP_sha256());
        X509_REQ *got = NULL;
        unsigned char *der = req_der(p, req, &len);
        unsigned char *cn;

        /* last byte of the signature */
        der[len - 1] ^= 0x01;
        err = NULL;
        UT_CHECK(ca_csr_parse(p, (const char *)der, len, &got, &err)
                 == APR_SUCCESS);
        err = NULL;
        UT_CHECK(got && ca_csr_check(p, got, NULL, &err) == CA_EPOLICY);
        UT_CHECK_MSG(has(err, "CSR signature does not verify"), "%s: %s",
                     keys[i], err ? err : "");
        der[len - 1] ^= 0x01;

        /* signed content changed: CN "test" -> "tesu" */
        cn = memmem(der, len, "test", 4);
        UT_CHECK(cn != NULL);
        if (cn) {
            cn[3] = 'u';
            got = NULL;
            UT_CHECK(ca_csr_parse(p, (const char *)der, len, &got, &err)
                     == APR_SUCCESS);
            err = NULL;
            UT_CHECK(got && ca_csr_check(p, got, NULL, &err) == CA_EPOLICY);
            UT_CHECK(has(err, "does not verify") && one_line(err));
        }
    }
}

static void test_check_weak_digests(apr_pool_t *p)
{
    EVP_PKEY *rsa = ut_keygen(p, "rsa2048"), *ec = ut_keygen(p, "p256");
    X509_REQ *req;
    const char *err = NULL;

    req = make_req(p, rsa, EVP_sha1());
    UT_CHECK(req != NULL);
    UT_CHECK(ca_csr_check(p, req, NULL, &err) == CA_EPOLICY);
    UT_CHECK_MSG(has(err, "CSR is signed with SHA-1; sign it with SHA-256 "
                          "or better"), "%s", err ? err : "");

    req = make_req(p, ec, EVP_sha1());
    UT_CHECK(req != NULL);
    err = NULL;
    UT_CHECK(ca_csr_check(p, req, NULL, &err) == CA_EPOLICY);
    UT_CHECK(has(err, "SHA-1"));

    req = make_req(p, rsa, EVP_md5());
    UT_CHECK_MSG(req != NULL, "cannot make an MD5 CSR");
    if (req) {
        err = NULL;
        UT_CHECK(ca_csr_check(p, req, NULL, &err) == CA_EPOLICY);
        UT_CHECK_MSG(has(err, "CSR is signed with MD5"), "%s",
                     err ? err : "");
    }

    req = make_req(p, rsa, EVP_sha224());
    UT_CHECK(req != NULL);
    err = NULL;
    UT_CHECK(ca_csr_check(p, req, NULL, &err) == CA_EPOLICY);
    UT_CHECK(has(err, "SHA-224"));

    /* ... while the same key with SHA-256 and SHA3-256 passes */
    req = make_req(p, rsa, EVP_sha256());
    UT_CHECK(ca_csr_check(p, req, NULL, &err) == APR_SUCCESS);
    /* SHA3-256: accepted where OpenSSL can verify it (it cannot map
     * ecdsa-with-SHA3-256 in 3.0): then refused as unsupported, with no
     * misleading "does not verify" */
    req = make_req(p, ec, EVP_sha3_256());
    UT_CHECK(req != NULL);
    err = NULL;
    {
        int md_nid, pk_nid;
        if (OBJ_find_sigid_algs(NID_ecdsa_with_SHA3_256, &md_nid, &pk_nid)) {
            UT_CHECK_MSG(ca_csr_check(p, req, NULL, &err) == APR_SUCCESS,
                         "%s", err ? err : "");
        }
        else {
            UT_CHECK(ca_csr_check(p, req, NULL, &err) == CA_EPOLICY);
            UT_CHECK_MSG(has(err, "SHA3-256 is not supported"),
                         "%s", err ? err : "");
        }
    }
}

static void test_check_weak_keys(apr_pool_t *p)
{
    X509_REQ *req;
    const char *err = NULL;

    req = make_req(p, ut_keygen(p, "rsa1024"), EVP_sha256());
    UT_CHECK(ca_csr_check(p, req, NULL, &err) == CA_EPOLICY);
    UT_CHECK_MSG(has(err, "RSA 1024-bit key refused: at least 2048 bits "
                          "required"), "%s", err ? err : "");

    req = make_req(p, ut_keygen(p, "k256"), EVP_sha256());
    err = NULL;
    UT_CHECK(ca_csr_check(p, req, NULL, &err) == CA_EPOLICY);
    UT_CHECK_MSG(has(err, "EC key on curve secp256k1 refused: P-256 or P-384 "
                          "required"), "%s", err ? err : "");

    req = make_req(p, ut_keygen(p, "p521"), EVP_sha512());
    err = NULL;
    UT_CHECK(ca_csr_check(p, req, NULL, &err) == CA_EPOLICY);
    UT_CHECK(has(err, "P-521") && one_line(err));

    req = make_req(p, ut_keygen(p, "ed448"), NULL);
    UT_CHECK(req != NULL);
    err = NULL;
    UT_CHECK(ca_csr_check(p, req, NULL, &err) == CA_EPOLICY);
    UT_CHECK_MSG(has(err, "Ed448 key refused"), "%s", err ? err : "");
}

static void test_check_ca_requested(apr_pool_t *p)
{
    EVP_PKEY *key = ut_keygen(p, "p256");
    X509_REQ *req = make_req_ex(p, key, EVP_sha256(), 1, 0, "test");
    const char *err = NULL;
    char *pem;

    UT_CHECK(req != NULL);
    UT_CHECK(ca_csr_check(p, req, NULL, &err) == CA_EPOLICY);
    UT_CHECK(has(err, "CSR requests a CA certificate (basicConstraints "
                      "CA:TRUE)"));

    /* and through parsing */
    pem = req_pem(p, req, 0);
    err = NULL;
    UT_CHECK(parse_check(p, pem, strlen(pem), &err) == CA_EPOLICY);
    UT_CHECK(has(err, "CA:TRUE"));

    /* CA:FALSE requested is fine */
    req = make_req_ex(p, key, EVP_sha256(), 2, 0, "test");
    err = NULL;
    UT_CHECK_MSG(ca_csr_check(p, req, NULL, &err) == APR_SUCCESS, "%s",
                 err ? err : "");
}

static void test_key_policy(apr_pool_t *p)
{
    ca_key_policy_t pol;
    const char *err = NULL;
    EVP_PKEY *rsa = ut_keygen(p, "rsa2048"), *p256 = ut_keygen(p, "p256"),
             *p384 = ut_keygen(p, "p384"), *ed = ut_keygen(p, "ed25519"),
             *x25519 = ut_keygen(p, "x25519");

    ca_key_policy_default(&pol);
    UT_CHECK(pol.rsa_min_bits == 2048 && pol.rsa_max_bits == 8192);
    UT_CHECK(pol.allow_rsa && pol.allow_p256 && pol.allow_p384
             && pol.allow_ed25519);
    UT_CHECK(ca_key_check(p, rsa, &pol, &err) == APR_SUCCESS);
    UT_CHECK(ca_key_check(p, p256, &pol, &err) == APR_SUCCESS);
    UT_CHECK(ca_key_check(p, p384, &pol, &err) == APR_SUCCESS);
    UT_CHECK(ca_key_check(p, ed, &pol, &err) == APR_SUCCESS);
    UT_CHECK(ca_key_check(p, x25519, &pol, &err) == CA_EPOLICY);
    UT_CHECK(has(err, "X25519") && one_line(err));
    UT_CHECK(ca_key_check(p, NULL, &pol, &err) == CA_EPOLICY);

    pol.allow_p384 = 0;
    err = NULL;
    UT_CHECK(ca_key_check(p, p384, &pol, &err) == CA_EPOLICY);
    UT_CHECK_MSG(has(err, "EC key on curve P-384 refused: P-256 required"),
                 "%s", err ? err : "");
    UT_CHECK(ca_key_check(p, p256, &pol, &err) == APR_SUCCESS);

    pol.allow_rsa = 0;
    err = NULL;
    UT_CHECK(ca_key_check(p, rsa, &pol, &err) == CA_EPOLICY);
    UT_CHECK(has(err, "RSA") && one_line(err));

    ca_key_policy_default(&pol);
    pol.rsa_max_bits = 2047;
    pol.rsa_min_bits = 1024;
    err = NULL;
    UT_CHECK(ca_key_check(p, rsa, &pol, &err) == CA_EPOLICY);
    UT_CHECK(has(err, "RSA 2048-bit key refused: at most 2047 bits"));

    ca_key_policy_default(&pol);
    pol.allow_ed25519 = 0;
    err = NULL;
    UT_CHECK(ca_key_check(p, ed, &pol, &err) == CA_EPOLICY);
    UT_CHECK(has(err, "Ed25519 key refused"));
}

static void test_key_describe(apr_pool_t *p)
{
    UT_CHECK(!strcmp(ca_key_describe(p, ut_keygen(p, "p256")), "EC P-256"));
    UT_CHECK(!strcmp(ca_key_describe(p, ut_keygen(p, "p384")), "EC P-384"));
    UT_CHECK(!strcmp(ca_key_describe(p, ut_keygen(p, "k256")), "EC secp256k1"));
    UT_CHECK(!strcmp(ca_key_describe(p, ut_keygen(p, "rsa1024")), "RSA 1024"));
    UT_CHECK(!strcmp(ca_key_describe(p, ut_keygen(p, "ed25519")), "Ed25519"));
}

int main(void)
{
    UT_RUN(test_parse_pem);
    UT_RUN(test_parse_pem_new_header);
    UT_RUN(test_parse_der);
    UT_RUN(test_parse_der_with_pem_marker);
    UT_RUN(test_parse_base64);
    UT_RUN(test_parse_empty);
    UT_RUN(test_parse_garbage);
    UT_RUN(test_parse_other_pem);
    UT_RUN(test_parse_truncated);
    UT_RUN(test_parse_too_large);
    UT_RUN(test_parse_mutations);
    UT_RUN(test_check_good_keys);
    UT_RUN(test_check_rsa_pss);
    UT_RUN(test_check_bad_signature);
    UT_RUN(test_check_weak_digests);
    UT_RUN(test_check_weak_keys);
    UT_RUN(test_check_ca_requested);
    UT_RUN(test_key_policy);
    UT_RUN(test_key_describe);
    return ut_finish();
}
