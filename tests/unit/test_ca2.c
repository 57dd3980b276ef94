/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_ca: creating a root CA (key types, extensions, files),
 * loading it back (pass phrase sources) and every refusal of ca_load;
 * subject parsing and key generation. */

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <apr_strings.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "unit.h"
#include "ca_ca.h"
#include "ca_util.h"

#define PASS "s3cret pass, phrase"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static apr_status_t tmpdir_cleanup(void *d)
{
    nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return APR_SUCCESS;
}

static const char *tmpdir(apr_pool_t *p)
{
    char *d = apr_pstrdup(p, "/tmp/ut_ca.XXXXXX");
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        abort();
    }
    apr_pool_cleanup_register(p, d, tmpdir_cleanup, apr_pool_cleanup_null);
    return d;
}

static const char *path_in(apr_pool_t *p, const char *dir, const char *name)
{
    return apr_pstrcat(p, dir, "/", name, NULL);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0 || chmod(path, mode)) {
        perror(path);
        abort();
    }
}

static char *slurp(apr_pool_t *p, const char *path)
{
    char *data = NULL;
    apr_size_t len;
    if (ca_file_read(p, path, 1 << 20, &data, &len) != APR_SUCCESS) {
        return NULL;
    }
    return data;
}

static int contains(const char *s, const char *sub)
{
    return s && sub && strstr(s, sub) != NULL;
}

static X509 *read_cert(apr_pool_t *p, const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f) {
        fclose(f);
    }
    return ca_pool_x509(p, x);
}

/* A fresh CA in dir (files cacert.pem, cakey.pem). */
static int make(apr_pool_t *p, const char *dir, const char *type,
                const char *subject, const char *pass, const char **cert,
                const char **key)
{
    ca_init_opts_t o;
    const char *err = NULL;
    apr_status_t rv;

    memset(&o, 0, sizeof(o));
    o.key_type = type;
    o.subject = subject;
    o.key_passphrase = pass;
    *cert = path_in(p, dir, "cacert.pem");
    *key = path_in(p, dir, "cakey.pem");
    rv = ca_create(p, &o, *cert, *key, &err);
    UT_CHECK_MSG(rv == APR_SUCCESS, "ca_create %s: %d %s", type ? type : "-",
                 rv, err ? err : "");
    return rv == APR_SUCCESS;
}

static int is_fingerprint(const char *fp)
{
    int i;
    if (!fp || strlen(fp) != 32 * 3 - 1) {
        return 0;
    }
    for (i = 0; fp[i]; i++) {
        if (i % 3 == 2) {
            if (fp[i] != ':') return 0;
        }
        else if (!((fp[i] >= '0' && fp[i] <= '9')
                   || (fp[i] >= 'A' && fp[i] <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

/* Check the certificate of a CA made by ca_create. */
static void check_ca_cert(apr_pool_t *p, X509 *x, EVP_PKEY *key, int days)
{
    int crit = -1, idx;
    BASIC_CONSTRAINTS *bc;
    const ASN1_OCTET_STRING *ski, *akid;
    EVP_PKEY *pub = X509_get0_pubkey(x);
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);

    UT_CHECK(X509_get_version(x) == X509_VERSION_3);
    UT_CHECK(X509_NAME_cmp(X509_get_subject_name(x),
                           X509_get_issuer_name(x)) == 0);
    UT_CHECK(pub && X509_verify(x, pub) == 1);
    UT_CHECK(key && EVP_PKEY_eq(pub, key) == 1);
    /* 16 random bytes, positive. */
    UT_CHECK(bn && !BN_is_negative(bn) && BN_num_bytes(bn) == 16);
    BN_free(bn);
    /* Validity. */
    {
        int pday = 0, psec = 0;
        time_t now = time(NULL);
        UT_CHECK(ASN1_TIME_diff(&pday, &psec, X509_get0_notBefore(x),
                                X509_get0_notAfter(x)));
        UT_CHECK_MSG(pday == days && psec == 0, "%d days %d s", pday, psec);
        UT_CHECK(X509_cmp_time(X509_get0_notBefore(x), &now) <= 0);
        UT_CHECK(llabs((long long)(ca_asn1_time_to_epoch(
                           X509_get0_notBefore(x)) - now)) < 120);
    }
    /* basicConstraints: critical, CA:TRUE, no path length. */
    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    UT_CHECK(bc && bc->ca && bc->pathlen == NULL && crit == 1);
    BASIC_CONSTRAINTS_free(bc);
    /* keyUsage: critical, exactly keyCertSign + cRLSign. */
    idx = X509_get_ext_by_NID(x, NID_key_usage, -1);
    UT_CHECK(idx >= 0
             && X509_EXTENSION_get_critical(X509_get_ext(x, idx)) == 1);
    UT_CHECK(X509_get_extension_flags(x) & EXFLAG_KUSAGE);
    UT_CHECK(X509_get_key_usage(x) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    UT_CHECK(X509_check_ca(x) == 1);
    /* SKI, and an AKI naming the same key id, neither critical. */
    ski = X509_get0_subject_key_id(x);
    akid = X509_get0_authority_key_id(x);
    UT_CHECK(ski && ASN1_STRING_length(ski) == 20);
    UT_CHECK(akid && ski && ASN1_OCTET_STRING_cmp(ski, akid) == 0);
    idx = X509_get_ext_by_NID(x, NID_subject_key_identifier, -1);
    UT_CHECK(idx >= 0
             && X509_EXTENSION_get_critical(X509_get_ext(x, idx)) == 0);
    idx = X509_get_ext_by_NID(x, NID_authority_key_identifier, -1);
    UT_CHECK(idx >= 0
             && X509_EXTENSION_get_critical(X509_get_ext(x, idx)) == 0);
    UT_CHECK(X509_get_ext_count(x) == 4);
    /* Self-issued: it verifies as its own trust anchor. */
    {
        X509_STORE *st = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        UT_CHECK(st && ctx && X509_STORE_add_cert(st, x) == 1
                 && X509_STORE_CTX_init(ctx, st, x, NULL) == 1);
        UT_CHECK(X509_verify_cert(ctx) == 1);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(st);
    }
    (void)p;
}

/* ------------------------------------------------------------------ */
/* ca_create and ca_load                                               */
/* ------------------------------------------------------------------ */

static void create_and_load(apr_pool_t *p, const char *type,
                            const char *keyname, int bits,
                            const char *group)
{
    const char *d = tmpdir(p), *cert, *key, *err = NULL;
    char want_subject[128];
    ca_t *ca = NULL;
    struct stat st;
    apr_status_t rv;
    X509 *x;

    if (!make(p, d, type, apr_psprintf(p, "/O=Example Org/CN=Test CA %s",
                                       type), NULL, &cert, &key)) {
        return;
    }
    apr_snprintf(want_subject, sizeof(want_subject),
                 "CN=Test CA %s,O=Example Org", type);
    UT_CHECK(stat(key, &st) == 0 && (st.st_mode & 07777) == 0600);
    UT_CHECK(stat(cert, &st) == 0 && (st.st_mode & 07777) == 0644);
    UT_CHECK(contains(slurp(p, key), "-----BEGIN PRIVATE KEY-----"));
    UT_CHECK(!contains(slurp(p, key), "ENCRYPTED"));

    rv = ca_load(&ca, p, cert, key, NULL, &err);
    UT_CHECK_MSG(rv == APR_SUCCESS, "%s: %s", type, err ? err : "");
    if (rv != APR_SUCCESS) {
        return;
    }
    UT_CHECK_MSG(ca->subject && !strcmp(ca->subject, want_subject), "%s",
                 ca->subject);
    UT_CHECK_MSG(is_fingerprint(ca->sha256_fp), "%s", ca->sha256_fp);
    {
        unsigned char md[32];
        unsigned int n = 0, i;
        char fp[97], *o = fp;
        UT_CHECK(X509_digest(ca->cert, EVP_sha256(), md, &n) && n == 32);
        for (i = 0; i < n; i++) {
            o += sprintf(o, i ? ":%02X" : "%02X", md[i]);
        }
        UT_CHECK(!strcmp(fp, ca->sha256_fp));
    }
    UT_CHECK(ca->cert_der && ca->cert_der_len > 100);
    {
        const unsigned char *q = ca->cert_der;
        X509 *dx = d2i_X509(NULL, &q, (long)ca->cert_der_len);
        UT_CHECK(dx && X509_cmp(dx, ca->cert) == 0
                 && q == ca->cert_der + ca->cert_der_len);
        X509_free(dx);
    }
    UT_CHECK(ca->cert_pem
             && !strncmp(ca->cert_pem, "-----BEGIN CERTIFICATE-----\n", 28));
    UT_CHECK(ca->chain && sk_X509_num(ca->chain) == 0);
    UT_CHECK(!strcmp(ca->cert_pem, slurp(p, cert)));
    x = read_cert(p, cert);
    UT_CHECK(x && X509_cmp(x, ca->cert) == 0);
    check_ca_cert(p, ca->cert, ca->key, 3650);

    /* The key type. */
    UT_CHECK(EVP_PKEY_is_a(ca->key, keyname));
    if (bits) {
        UT_CHECK(EVP_PKEY_get_bits(ca->key) == bits);
    }
    if (group) {
        char g[64];
        size_t gl = 0;
        UT_CHECK(EVP_PKEY_get_group_name(ca->key, g, sizeof(g), &gl) == 1
                 && !strcmp(g, group));
    }
    UT_CHECK((ca_sign_md(ca->key) == NULL) == !strcmp(keyname, "ED25519"));
    if (!strcmp(keyname, "ED25519")) {
        UT_CHECK(X509_get_signature_nid(ca->cert) == NID_ED25519);
    }
    else {
        int md = 0, pk = 0;
        UT_CHECK(OBJ_find_sigid_algs(X509_get_signature_nid(ca->cert), &md,
                                     &pk)
                 && md == NID_sha256);
    }

    /* A chain after the CA certificate is kept, in order. */
    {
        const char *d2 = tmpdir(p), *c2, *k2, *both;
        ca_t *ca2 = NULL;
        if (make(p, d2, "ec", "CN=Upper", NULL, &c2, &k2)) {
            both = path_in(p, d, "withchain.pem");
            write_text(both, apr_pstrcat(p, slurp(p, cert), slurp(p, c2),
                                         NULL), 0644);
            rv = ca_load(&ca2, p, both, key, NULL, &err);
            UT_CHECK_MSG(rv == APR_SUCCESS, "%s", err ? err : "");
            if (rv == APR_SUCCESS) {
                UT_CHECK(sk_X509_num(ca2->chain) == 1);
                UT_CHECK(!strcmp(ca2->cert_pem,
                                 apr_pstrcat(p, slurp(p, cert), slurp(p, c2),
                                             NULL)));
                UT_CHECK(!strcmp(ca2->sha256_fp, ca->sha256_fp));
            }
        }
    }
}

static void test_create_ec(apr_pool_t *p)
{
    create_and_load(p, "ec", "EC", 256, "prime256v1");
}

static void test_create_p384(apr_pool_t *p)
{
    create_and_load(p, "ec:P-384", "EC", 384, "secp384r1");
}

static void test_create_rsa(apr_pool_t *p)
{
    create_and_load(p, "rsa:2048", "RSA", 2048, NULL);
}

static void test_create_ed25519(apr_pool_t *p)
{
    create_and_load(p, "ed25519", "ED25519", 0, NULL);
}

static void test_create_defaults(apr_pool_t *p)
{
    const char *d = tmpdir(p), *cert, *key, *err = NULL;
    ca_init_opts_t o;
    ca_t *ca = NULL;

    /* No type, no subject: P-256, "CN=certauth root CA"; days honoured. */
    memset(&o, 0, sizeof(o));
    o.days = 30;
    cert = path_in(p, d, "c.pem");
    key = path_in(p, d, "k.pem");
    UT_CHECK(ca_create(p, &o, cert, key, &err) == APR_SUCCESS);
    UT_CHECK(ca_load(&ca, p, cert, key, NULL, &err) == APR_SUCCESS);
    if (ca) {
        UT_CHECK(EVP_PKEY_is_a(ca->key, "EC")
                 && EVP_PKEY_get_bits(ca->key) == 256);
        UT_CHECK(!strcmp(ca->subject, "CN=certauth root CA"));
        check_ca_cert(p, ca->cert, ca->key, 30);
    }
    /* Two CAs never share a serial. */
    {
        const char *c2 = path_in(p, d, "c2.pem"), *k2 = path_in(p, d, "k2.pem");
        X509 *a, *b;
        UT_CHECK(ca_create(p, &o, c2, k2, &err) == APR_SUCCESS);
        a = read_cert(p, cert);
        b = read_cert(p, c2);
        UT_CHECK(a && b && ASN1_INTEGER_cmp(X509_get0_serialNumber(a),
                                            X509_get0_serialNumber(b)) != 0);
    }
}

static void test_create_no_overwrite(apr_pool_t *p)
{
    const char *d = tmpdir(p), *cert, *key, *err = NULL;
    const char *cert0, *key0, *other;
    ca_init_opts_t o;

    if (!make(p, d, "ec", "CN=First", NULL, &cert, &key)) {
        return;
    }
    cert0 = slurp(p, cert);
    key0 = slurp(p, key);
    memset(&o, 0, sizeof(o));
    o.subject = "CN=Second";
    UT_CHECK(ca_create(p, &o, cert, key, &err) == CA_EEXIST);
    UT_CHECK(err && *err);
    /* Only one of them existing is enough. */
    other = path_in(p, d, "other.pem");
    err = NULL;
    UT_CHECK(ca_create(p, &o, cert, other, &err) == CA_EEXIST && err);
    err = NULL;
    UT_CHECK(ca_create(p, &o, other, key, &err) == CA_EEXIST && err);
    UT_CHECK(!strcmp(slurp(p, cert), cert0));
    UT_CHECK(!strcmp(slurp(p, key), key0));
    UT_CHECK(access(other, F_OK) != 0);
}

static void test_create_bad(apr_pool_t *p)
{
    const char *d = tmpdir(p), *err = NULL;
    const char *cert = path_in(p, d, "c.pem"), *key = path_in(p, d, "k.pem");
    ca_init_opts_t o;

    memset(&o, 0, sizeof(o));
    o.key_type = "dsa";
    UT_CHECK(ca_create(p, &o, cert, key, &err) == CA_EBADINPUT && err);
    o.key_type = "ec";
    o.subject = "CN=x,BOGUS=y";
    err = NULL;
    UT_CHECK(ca_create(p, &o, cert, key, &err) == CA_EBADINPUT && err);
    UT_CHECK(access(cert, F_OK) != 0 && access(key, F_OK) != 0);
    /* A directory that does not exist: CA_EIO naming the file. */
    o.subject = NULL;
    err = NULL;
    UT_CHECK(ca_create(p, &o, path_in(p, d, "no/c.pem"),
                       path_in(p, d, "no/k.pem"), &err) == CA_EIO);
    UT_CHECK(contains(err, "no/k.pem"));
}

/* ------------------------------------------------------------------ */
/* ca_load refusals                                                    */
/* ------------------------------------------------------------------ */

#define REFUSED(rv, err, code, what) do { \
        UT_CHECK_MSG((rv) == (code), "rv %d, want %d (%s)", (rv), (code), \
                     (err) ? (err) : "-"); \
        UT_CHECK_MSG(contains((err), (what)), "err '%s' lacks '%s'", \
                     (err) ? (err) : "(null)", (what)); \
        UT_CHECK((err) == NULL || strchr((err), '\n') == NULL); \
    } while (0)

static void test_load_key_mode(apr_pool_t *p)
{
    const char *d = tmpdir(p), *cert, *key, *err = NULL;
    ca_t *ca = NULL;
    apr_status_t rv;
    static const mode_t modes[] = {0644, 0640, 0604, 0660, 0601, 0610};
    unsigned i;

    if (!make(p, d, "ec", "CN=Mode", NULL, &cert, &key)) {
        return;
    }
    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        UT_CHECK(chmod(key, modes[i]) == 0);
        err = NULL;
        rv = ca_load(&ca, p, cert, key, NULL, &err);
        REFUSED(rv, err, CA_ECONFIG, key);
    }
    UT_CHECK(chmod(key, 0400) == 0);
    UT_CHECK(ca_load(&ca, p, cert, key, NULL, &err) == APR_SUCCESS);
}

static void test_load_mismatch(apr_pool_t *p)
{
    const char *d1 = tmpdir(p), *d2 = tmpdir(p), *c1, *k1, *c2, *k2;
    const char *err = NULL;
    ca_t *ca = NULL;
    apr_status_t rv;

    if (!make(p, d1, "ec", "CN=One", NULL, &c1, &k1)
        || !make(p, d2, "ec", "CN=Two", NULL, &c2, &k2)) {
        return;
    }
    rv = ca_load(&ca, p, c1, k2, NULL, &err);
    REFUSED(rv, err, CA_ECONFIG, k2);
    err = NULL;
    rv = ca_load(&ca, p, c2, k1, NULL, &err);
    REFUSED(rv, err, CA_ECONFIG, k1);
    /* Another key type altogether. */
    {
        const char *d3 = tmpdir(p), *c3, *k3;
        if (make(p, d3, "ed25519", "CN=Three", NULL, &c3, &k3)) {
            err = NULL;
            rv = ca_load(&ca, p, c1, k3, NULL, &err);
            REFUSED(rv, err, CA_ECONFIG, k3);
        }
    }
}

static void test_load_missing(apr_pool_t *p)
{
    const char *d = tmpdir(p), *cert, *key, *err = NULL;
    const char *nocert = path_in(p, d, "nocert.pem");
    const char *nokey = path_in(p, d, "nokey.pem");
    ca_t *ca = NULL;
    apr_status_t rv;

    if (!make(p, d, "ec", "CN=Missing", NULL, &cert, &key)) {
        return;
    }
    rv = ca_load(&ca, p, nocert, key, NULL, &err);
    REFUSED(rv, err, CA_EIO, nocert);
    err = NULL;
    rv = ca_load(&ca, p, cert, nokey, NULL, &err);
    REFUSED(rv, err, CA_EIO, nokey);
    /* Files that hold no PEM of the right kind. */
    {
        const char *junk = path_in(p, d, "junk.pem");
        write_text(junk, "not a certificate\n", 0600);
        err = NULL;
        rv = ca_load(&ca, p, junk, key, NULL, &err);
        REFUSED(rv, err, CA_ECONFIG, junk);
        err = NULL;
        rv = ca_load(&ca, p, cert, junk, NULL, &err);
        REFUSED(rv, err, CA_ECONFIG, junk);
        /* The key given as the certificate and the other way round. */
        err = NULL;
        rv = ca_load(&ca, p, key, key, NULL, &err);
        REFUSED(rv, err, CA_ECONFIG, key);
        UT_CHECK(chmod(cert, 0600) == 0);
        err = NULL;
        rv = ca_load(&ca, p, cert, cert, NULL, &err);
        REFUSED(rv, err, CA_ECONFIG, cert);
        /* A directory. */
        err = NULL;
        rv = ca_load(&ca, p, d, key, NULL, &err);
        UT_CHECK(rv == CA_EIO || rv == CA_ECONFIG);
        UT_CHECK(contains(err, d));
    }
    UT_CHECK(ERR_peek_error() == 0);
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* A self-signed certificate with the given extensions (NULL: none), valid
 * from now+nb for secs seconds; writes cert and key (0600) files. */
static void self_signed(apr_pool_t *p, const char *dir, const char *bc,
                        const char *ku, long nb, long secs,
                        const char **cert, const char **key)
{
    EVP_PKEY *k = ca_pool_pkey(p, EVP_PKEY_Q_keygen(NULL, NULL, "EC",
                                                    "P-256"));
    X509 *x = ca_pool_x509(p, X509_new());
    X509_NAME *n = X509_get_subject_name(x);
    time_t now = time(NULL);
    FILE *f;
    int ok;

    ok = k && x && X509_set_version(x, X509_VERSION_3)
         && ASN1_INTEGER_set(X509_get_serialNumber(x), 4242)
         && X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                       (const unsigned char *)"Leaf", -1, -1,
                                       0)
         && X509_set_issuer_name(x, n)
         && ASN1_TIME_set(X509_getm_notBefore(x), now + nb)
         && ASN1_TIME_set(X509_getm_notAfter(x), now + nb + secs)
         && X509_set_pubkey(x, k)
         && (!bc || add_ext(x, NID_basic_constraints, bc))
         && (!ku || add_ext(x, NID_key_usage, ku))
         && X509_sign(x, k, EVP_sha256()) > 0;
    if (!ok) {
        ERR_print_errors_fp(stderr);
        abort();
    }
    *cert = path_in(p, dir, "leaf.pem");
    *key = path_in(p, dir, "leaf.key");
    f = fopen(*cert, "w");
    if (!f || !PEM_write_X509(f, x) || fclose(f)) {
        abort();
    }
    f = fopen(*key, "w");
    if (!f || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)
        || fclose(f) || chmod(*key, 0600)) {
        abort();
    }
}

static void test_load_not_ca(apr_pool_t *p)
{
    static const struct {
        const char *bc, *ku;
        long nb, secs;
        const char *what;
    } cases[] = {
        {NULL, NULL, -60, 86400, "not a CA"},
        {"critical,CA:FALSE", "critical,digitalSignature", -60, 86400,
         "not a CA"},
        {"CA:FALSE", NULL, -60, 86400, "not a CA"},
        {"critical,CA:TRUE", "critical,digitalSignature,cRLSign", -60, 86400,
         "keyCertSign"},
        {"critical,CA:TRUE", "critical,keyCertSign", -2 * 86400, 86400,
         "expired"},
        {"critical,CA:TRUE", "critical,keyCertSign", 86400, 86400,
         "not valid yet"},
    };
    unsigned i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *d = tmpdir(p), *cert, *key, *err = NULL;
        ca_t *ca = NULL;
        apr_status_t rv;
        self_signed(p, d, cases[i].bc, cases[i].ku, cases[i].nb,
                    cases[i].secs, &cert, &key);
        rv = ca_load(&ca, p, cert, key, NULL, &err);
        REFUSED(rv, err, CA_ECONFIG, cert);
        UT_CHECK_MSG(contains(err, cases[i].what), "case %u: %s", i,
                     err ? err : "");
    }
    /* The same helper with CA extensions gives a loadable CA: the
     * refusals above are for the reasons named. */
    {
        const char *d = tmpdir(p), *cert, *key, *err = NULL;
        ca_t *ca = NULL;
        apr_status_t rv;
        self_signed(p, d, "critical,CA:TRUE", "critical,keyCertSign", -60,
                    86400, &cert, &key);
        rv = ca_load(&ca, p, cert, key, NULL, &err);
        UT_CHECK_MSG(rv == APR_SUCCESS, "%s", err ? err : "");
        /* No keyUsage at all is acceptable too. */
        d = tmpdir(p);
        self_signed(p, d, "critical,CA:TRUE", NULL, -60, 86400, &cert, &key);
        rv = ca_load(&ca, p, cert, key, NULL, &err);
        UT_CHECK_MSG(rv == APR_SUCCESS, "%s", err ? err : "");
    }
}

static void test_load_passphrase(apr_pool_t *p)
{
    const char *d = tmpdir(p), *cert, *key, *err = NULL;
    const char *pf = path_in(p, d, "pass.txt");
    const char *pf_crlf = path_in(p, d, "pass-crlf.txt");
    const char *pf_bad = path_in(p, d, "wrong.txt");
    const char *sh = path_in(p, d, "pass.sh");
    const char *sh_arg = path_in(p, d, "arg.txt");
    const char *sh_fail = path_in(p, d, "fail.sh");
    const char *sh_wrong = path_in(p, d, "wrong.sh");
    ca_t *ca = NULL;
    apr_status_t rv;
    char *first;

    if (!make(p, d, "ec", "CN=Encrypted", PASS, &cert, &key)) {
        return;
    }
    first = slurp(p, key);
    UT_CHECK(contains(first, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    UT_CHECK(!contains(first, "-----BEGIN PRIVATE KEY-----"));
    {
        struct stat st;
        UT_CHECK(stat(key, &st) == 0 && (st.st_mode & 07777) == 0600);
    }
    /* AES-256-CBC, as the header says. */
    {
        FILE *f = fopen(key, "r");
        X509_SIG *sig = f ? PEM_read_PKCS8(f, NULL, NULL, NULL) : NULL;
        const X509_ALGOR *alg = NULL;
        const ASN1_OBJECT *obj = NULL;
        const void *pval = NULL;
        int ptype = 0;
        if (f) {
            fclose(f);
        }
        UT_CHECK(sig != NULL);
        if (sig) {
            X509_SIG_get0(sig, &alg, NULL);
            X509_ALGOR_get0(&obj, &ptype, &pval, alg);
            UT_CHECK(OBJ_obj2nid(obj) == NID_pbes2);
            if (OBJ_obj2nid(obj) == NID_pbes2 && ptype == V_ASN1_SEQUENCE) {
                const ASN1_STRING *s = pval;
                const unsigned char *q = ASN1_STRING_get0_data(s);
                PBE2PARAM *pbe2 = d2i_PBE2PARAM(NULL, &q,
                                                ASN1_STRING_length(s));
                UT_CHECK(pbe2 && OBJ_obj2nid(pbe2->encryption->algorithm)
                                     == NID_aes_256_cbc);
                PBE2PARAM_free(pbe2);
            }
            X509_SIG_free(sig);
        }
    }

    /* No pass phrase given. */
    rv = ca_load(&ca, p, cert, key, NULL, &err);
    REFUSED(rv, err, CA_ECONFIG, key);

    /* file: the first line, without its line end. */
    write_text(pf, PASS "\nsecond line\n", 0600);
    write_text(pf_crlf, PASS "\r\n", 0600);
    write_text(pf_bad, "not the " PASS "\n", 0600);
    ca = NULL;
    rv = ca_load(&ca, p, cert, key, apr_pstrcat(p, "file:", pf, NULL), &err);
    UT_CHECK_MSG(rv == APR_SUCCESS && ca, "file: %s", err ? err : "");
    rv = ca_load(&ca, p, cert, key, apr_pstrcat(p, "file:", pf_crlf, NULL),
                 &err);
    UT_CHECK_MSG(rv == APR_SUCCESS, "file: crlf %s", err ? err : "");
    err = NULL;
    rv = ca_load(&ca, p, cert, key, apr_pstrcat(p, "file:", pf_bad, NULL),
                 &err);
    REFUSED(rv, err, CA_ECONFIG, key);
    err = NULL;
    rv = ca_load(&ca, p, cert, key,
                 apr_pstrcat(p, "file:", d, "/nopass.txt", NULL), &err);
    REFUSED(rv, err, CA_ECONFIG, "nopass.txt");
    UT_CHECK_MSG(contains(err, key), "%s", err ? err : "");
    UT_CHECK(!contains(err, PASS));

    /* env: */
    setenv("UT_CA_PASS", PASS, 1);
    unsetenv("UT_CA_NO_SUCH_VAR");
    rv = ca_load(&ca, p, cert, key, "env:UT_CA_PASS", &err);
    UT_CHECK_MSG(rv == APR_SUCCESS, "env: %s", err ? err : "");
    setenv("UT_CA_PASS", "wrong", 1);
    err = NULL;
    rv = ca_load(&ca, p, cert, key, "env:UT_CA_PASS", &err);
    REFUSED(rv, err, CA_ECONFIG, key);
    err = NULL;
    rv = ca_load(&ca, p, cert, key, "env:UT_CA_NO_SUCH_VAR", &err);
    REFUSED(rv, err, CA_ECONFIG, "UT_CA_NO_SUCH_VAR");
    UT_CHECK_MSG(contains(err, key), "%s", err ? err : "");
    unsetenv("UT_CA_PASS");

    /* exec: its first line of output; it gets the key file as argument. */
    write_text(sh, apr_psprintf(p, "#!/bin/sh\nprintf '%%s' \"$1\" > '%s'\n"
                                "echo '" PASS "'\necho other\n", sh_arg),
               0755);
    write_text(sh_fail, "#!/bin/sh\necho '" PASS "'\nexit 3\n", 0755);
    write_text(sh_wrong, "#!/bin/sh\necho nope\n", 0755);
    rv = ca_load(&ca, p, cert, key, apr_pstrcat(p, "exec:", sh, NULL), &err);
    UT_CHECK_MSG(rv == APR_SUCCESS, "exec: %s", err ? err : "");
    UT_CHECK(contains(slurp(p, sh_arg), key)
             && !strcmp(slurp(p, sh_arg), key));
    err = NULL;
    rv = ca_load(&ca, p, cert, key, apr_pstrcat(p, "exec:", sh_fail, NULL),
                 &err);
    REFUSED(rv, err, CA_ECONFIG, sh_fail);
    UT_CHECK_MSG(contains(err, key), "%s", err ? err : "");
    UT_CHECK(!contains(err, PASS));
    err = NULL;
    rv = ca_load(&ca, p, cert, key, apr_pstrcat(p, "exec:", sh_wrong, NULL),
                 &err);
    REFUSED(rv, err, CA_ECONFIG, key);
    err = NULL;
    rv = ca_load(&ca, p, cert, key,
                 apr_pstrcat(p, "exec:", d, "/no-such-program", NULL), &err);
    REFUSED(rv, err, CA_ECONFIG, "no-such-program");
    UT_CHECK_MSG(contains(err, key), "%s", err ? err : "");

    /* An unknown source. */
    err = NULL;
    rv = ca_load(&ca, p, cert, key, PASS, &err);
    REFUSED(rv, err, CA_ECONFIG, key);
    err = NULL;
    rv = ca_load(&ca, p, cert, key, "pass:" PASS, &err);
    REFUSED(rv, err, CA_ECONFIG, key);

    /* An empty pass phrase is refused. */
    write_text(pf_bad, "\n", 0600);
    err = NULL;
    rv = ca_load(&ca, p, cert, key, apr_pstrcat(p, "file:", pf_bad, NULL),
                 &err);
    REFUSED(rv, err, CA_ECONFIG, key);

    /* A pass phrase source given for an unencrypted key is not used. */
    {
        const char *d2 = tmpdir(p), *c2, *k2;
        if (make(p, d2, "ec", "CN=Plain", NULL, &c2, &k2)) {
            rv = ca_load(&ca, p, c2, k2, apr_pstrcat(p, "file:", pf, NULL),
                         &err);
            UT_CHECK_MSG(rv == APR_SUCCESS, "%s", err ? err : "");
            rv = ca_load(&ca, p, c2, k2, "env:UT_CA_NO_SUCH_VAR", &err);
            UT_CHECK_MSG(rv == APR_SUCCESS, "%s", err ? err : "");
        }
    }
    /* ca_create refuses an empty pass phrase. */
    {
        const char *d3 = tmpdir(p);
        ca_init_opts_t o;
        memset(&o, 0, sizeof(o));
        o.key_passphrase = "";
        err = NULL;
        UT_CHECK(ca_create(p, &o, path_in(p, d3, "c.pem"),
                           path_in(p, d3, "k.pem"), &err) == CA_EBADINPUT
                 && err);
        UT_CHECK(access(path_in(p, d3, "k.pem"), F_OK) != 0);
    }
    UT_CHECK(ERR_peek_error() == 0);
}

/* ------------------------------------------------------------------ */
/* Subjects and keys                                                   */
/* ------------------------------------------------------------------ */

static const char *entry_field(X509_NAME *n, int i)
{
    X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
    return e ? OBJ_nid2sn(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e))) : "";
}

static const char *entry_value(apr_pool_t *p, X509_NAME *n, int i)
{
    X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
    ASN1_STRING *s = e ? X509_NAME_ENTRY_get_data(e) : NULL;
    return s ? apr_pstrmemdup(p, (const char *)ASN1_STRING_get0_data(s),
                              (apr_size_t)ASN1_STRING_length(s))
             : "";
}

static void test_name_parse(apr_pool_t *p)
{
    X509_NAME *a = NULL, *b = NULL, *n = NULL;
    const char *err = NULL;
    static const char *const bad[] = {
        "", "/", ",", ",,,", "//", "CN", "/CN", "CN=a,O", "/O=b/CN",
        "FOO=a", "/O=b/XYZZY=a", "CN=a,=b", "=a", "CN=", "/CN=", "CN=a,O=",
        NULL
    };
    int i;

    UT_CHECK(ca_name_parse(p, "/O=b/CN=a", &a, &err) == APR_SUCCESS);
    UT_CHECK(ca_name_parse(p, "CN=a,O=b", &b, &err) == APR_SUCCESS);
    UT_CHECK(a && b && X509_NAME_cmp(a, b) == 0);
    UT_CHECK(a && X509_NAME_entry_count(a) == 2
             && !strcmp(entry_field(a, 0), "O")
             && !strcmp(entry_value(p, a, 0), "b")
             && !strcmp(entry_field(a, 1), "CN")
             && !strcmp(entry_value(p, a, 1), "a"));
    UT_CHECK(a && !strcmp(ca_x509_name_str(p, a), "CN=a,O=b"));

    /* Longer names keep their order too. */
    UT_CHECK(ca_name_parse(p, "/C=DE/ST=Berlin/O=Ex Org/OU=Unit/CN=Some One",
                           &a, &err) == APR_SUCCESS);
    UT_CHECK(ca_name_parse(p, "CN=Some One,OU=Unit,O=Ex Org,ST=Berlin,C=DE",
                           &b, &err) == APR_SUCCESS);
    UT_CHECK(X509_NAME_cmp(a, b) == 0 && X509_NAME_entry_count(a) == 5
             && !strcmp(entry_field(a, 0), "C")
             && !strcmp(entry_field(a, 4), "CN"));
    /* Long names of fields; spaces around '=' and after ','. */
    UT_CHECK(ca_name_parse(p, "commonName = a, organizationName = b", &n,
                           &err) == APR_SUCCESS);
    UT_CHECK(n && X509_NAME_cmp(n, b) != 0
             && !strcmp(ca_x509_name_str(p, n), "CN=a,O=b"));

    /* Escaped separators. */
    UT_CHECK(ca_name_parse(p, "CN=Doe\\, John,O=b", &n, &err)
             == APR_SUCCESS);
    UT_CHECK(n && X509_NAME_entry_count(n) == 2
             && !strcmp(entry_field(n, 1), "CN")
             && !strcmp(entry_value(p, n, 1), "Doe, John"));
    UT_CHECK(ca_name_parse(p, "/O=a\\/b/CN=c,d", &n, &err) == APR_SUCCESS);
    UT_CHECK(n && X509_NAME_entry_count(n) == 2
             && !strcmp(entry_value(p, n, 0), "a/b")
             && !strcmp(entry_value(p, n, 1), "c,d"));
    /* UTF-8 is kept as UTF-8. */
    UT_CHECK(ca_name_parse(p, "CN=J\xc3\xbcrgen", &n, &err) == APR_SUCCESS);
    UT_CHECK(n && !strcmp(entry_value(p, n, 0), "J\xc3\xbcrgen"));

    for (i = 0; bad[i]; i++) {
        err = NULL;
        n = NULL;
        UT_CHECK_MSG(ca_name_parse(p, bad[i], &n, &err) == CA_EBADINPUT,
                     "'%s'", bad[i]);
        UT_CHECK_MSG(err && *err, "'%s': no message", bad[i]);
    }
    err = NULL;
    UT_CHECK(ca_name_parse(p, "CN=a,FOO=b", &n, &err) == CA_EBADINPUT
             && contains(err, "FOO"));
    err = NULL;
    UT_CHECK(ca_name_parse(p, "CN=a,Ob", &n, &err) == CA_EBADINPUT
             && contains(err, "Ob"));
    /* A country must be two letters. */
    err = NULL;
    UT_CHECK(ca_name_parse(p, "C=Germany", &n, &err) == CA_EBADINPUT && err);
    UT_CHECK(ERR_peek_error() == 0);
}

static void test_key_generate(apr_pool_t *p)
{
    static const char *const bad[] = {
        "dsa", "EC:P-521", "ec:secp256k1", "ec:", "rsa:", "rsa:1024",
        "rsa:2047", "rsa:8193", "rsa:99999999999999999999", "rsa:-2048",
        "rsa:abc", "rsa:2048x", "rsa2048", "rsa:2048 ", " ec", "ed448",
        "x25519", "ed25519:1", NULL
    };
    EVP_PKEY *k;
    const char *err;
    int i;

    for (i = 0; bad[i]; i++) {
        k = NULL;
        err = NULL;
        UT_CHECK_MSG(ca_key_generate(p, bad[i], &k, &err) == CA_EBADINPUT,
                     "'%s'", bad[i]);
        UT_CHECK_MSG(k == NULL && err && *err, "'%s'", bad[i]);
    }
    k = NULL;
    UT_CHECK(ca_key_generate(p, NULL, &k, &err) == APR_SUCCESS && k
             && EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_bits(k) == 256);
    k = NULL;
    UT_CHECK(ca_key_generate(p, "", &k, &err) == APR_SUCCESS && k
             && EVP_PKEY_is_a(k, "EC"));
    k = NULL;
    UT_CHECK(ca_key_generate(p, "EC:p-384", &k, &err) == APR_SUCCESS && k
             && EVP_PKEY_get_bits(k) == 384);
    k = NULL;
    UT_CHECK(ca_key_generate(p, "Ed25519", &k, &err) == APR_SUCCESS && k
             && EVP_PKEY_is_a(k, "ED25519"));
    UT_CHECK(k && ca_sign_md(k) == NULL);
}

int main(void)
{
    UT_RUN(test_create_ec);
    UT_RUN(test_create_p384);
    UT_RUN(test_create_rsa);
    UT_RUN(test_create_ed25519);
    UT_RUN(test_create_defaults);
    UT_RUN(test_create_no_overwrite);
    UT_RUN(test_create_bad);
    UT_RUN(test_load_key_mode);
    UT_RUN(test_load_mismatch);
    UT_RUN(test_load_missing);
    UT_RUN(test_load_not_ca);
    UT_RUN(test_load_passphrase);
    UT_RUN(test_name_parse);
    UT_RUN(test_key_generate);
    return ut_finish();
}
