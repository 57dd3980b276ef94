/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_ca: creating a root CA (every key type, extensions,
 * serial, validity, file modes, refusing to overwrite), loading it (pass
 * phrase sources, key mode, mismatched key, non-CA and out-of-date
 * certificates, chains), key generation and subject parsing. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <ftw.h>
#include <time.h>

#include "unit.h"
#include "ca_ca.h"
#include "ca_util.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static void write_file(const char *path, const char *data, mode_t mode)
{
    int fd;
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data)) {
        perror(path);
        abort();
    }
    close(fd);
    chmod(path, mode);
}

static int mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static int one_line(const char *err)
{
    return err && *err && !strchr(err, '\n');
}

static const char *key_pem(apr_pool_t *p, EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long len;
    const char *out;
    PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
    len = BIO_get_mem_data(bio, &data);
    out = apr_pstrmemdup(p, data, (apr_size_t)len);
    BIO_free(bio);
    return out;
}

static EVP_PKEY *ec_key(apr_pool_t *p)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!k) {
        abort();
    }
    return ca_pool_pkey(p, k);
}

/* A self-signed certificate with the given extensions (NULL: none) and
 * validity (seconds from now), made directly with OpenSSL. */
static X509 *self_signed(apr_pool_t *p, EVP_PKEY *k, const char *cn,
                         int version, const char *bc, const char *ku,
                         long from, long to)
{
    X509 *x = ca_pool_x509(p, X509_new());
    X509_NAME *n = X509_get_subject_name(x);
    X509V3_CTX ctx;

    X509_set_version(x, version);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_set_pubkey(x, k);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if (bc) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx,
                                                NID_basic_constraints, bc);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    if (ku) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, ku);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    if (!X509_sign(x, k, EVP_sha256())) {
        abort();
    }
    return x;
}

/* A fresh unencrypted EC CA in dir: dir/ca.pem, dir/ca.key. */
static void make_ca(apr_pool_t *p, const char *dir, const char *subject,
                    const char *pass)
{
    ca_init_opts_t o;
    const char *err = NULL;
    memset(&o, 0, sizeof(o));
    o.key_type = "ec";
    o.days = 10;
    o.subject = subject;
    o.key_passphrase = pass;
    if (ca_create(p, &o, apr_pstrcat(p, dir, "/ca.pem", NULL),
                  apr_pstrcat(p, dir, "/ca.key", NULL), &err)
        != APR_SUCCESS) {
        fprintf(stderr, "make_ca: %s\n", err);
        abort();
    }
}

static apr_status_t load(apr_pool_t *p, const char *dir, const char *cert,
                         const char *key, const char *pass, ca_t **ca,
                         const char **err)
{
    *ca = NULL;
    *err = NULL;
    return ca_load(ca, p, apr_pstrcat(p, dir, "/", cert, NULL),
                   apr_pstrcat(p, dir, "/", key, NULL), pass, err);
}

/* ------------------------------------------------------------------ */
/* ca_create + ca_load                                                 */
/* ------------------------------------------------------------------ */

static const char *fingerprint(apr_pool_t *p, X509 *x)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    const char *out = "";
    X509_digest(x, EVP_sha256(), md, &n);
    for (i = 0; i < n; i++) {
        out = apr_psprintf(p, "%s%s%02X", out, i ? ":" : "", md[i]);
    }
    return out;
}

/* Create a CA with these options, load it and check every property. */
static void check_create(apr_pool_t *p, const char *key_type, int days,
                         const char *subject, const char *want_subject,
                         const char *want_alg, int want_bits,
                         const char *want_group, int want_sig_nid)
{
    const char *dir = ut_tmpdir(p);
    const char *cf = apr_pstrcat(p, dir, "/cacert.pem", NULL);
    const char *kf = apr_pstrcat(p, dir, "/cakey.pem", NULL);
    const char *err = NULL, *kpem, *cpem;
    ca_init_opts_t o;
    ca_t *ca = NULL;
    apr_status_t rv;
    X509 *x;
    BASIC_CONSTRAINTS *bc;
    ASN1_BIT_STRING *ku;
    BIGNUM *sn;
    unsigned char snb[32];
    int crit = -1;
    apr_int64_t nb, na, t0 = (apr_int64_t)time(NULL), t1;
    unsigned char *der = NULL;
    apr_size_t derlen = 0;

    memset(&o, 0, sizeof(o));
    o.key_type = key_type;
    o.days = days;
    o.subject = subject;
    rv = ca_create(p, &o, cf, kf, &err);
    t1 = (apr_int64_t)time(NULL);
    UT_CHECK_MSG(rv == APR_SUCCESS, "%s: %s", key_type ? key_type : "default",
                 err ? err : "");
    if (rv != APR_SUCCESS) {
        ut_rm_rf(dir);
        return;
    }
    UT_CHECK(mode_of(kf) == 0600);
    UT_CHECK(mode_of(cf) == 0644);
    UT_CHECK(ut_dir_count(dir) == 2);              /* no temp files left */
    kpem = ut_slurp(p, kf);
    cpem = ut_slurp(p, cf);
    UT_CHECK(kpem && !strncmp(kpem, "-----BEGIN PRIVATE KEY-----\n", 28)
             && !strstr(kpem, "CERTIFICATE"));
    UT_CHECK(cpem && !strncmp(cpem, "-----BEGIN CERTIFICATE-----\n", 28)
             && !strstr(cpem, "PRIVATE"));

    rv = ca_load(&ca, p, cf, kf, NULL, &err);
    UT_CHECK_MSG(rv == APR_SUCCESS, "load: %s", err ? err : "");
    if (rv != APR_SUCCESS) {
        ut_rm_rf(dir);
        return;
    }
    x = ca->cert;

    /* the key */
    UT_CHECK_MSG(EVP_PKEY_is_a(ca->key, want_alg), "want %s", want_alg);
    UT_CHECK_MSG(EVP_PKEY_get_bits(ca->key) == want_bits, "bits %d",
                 EVP_PKEY_get_bits(ca->key));
    if (want_group) {
        char g[64] = "";
        size_t glen = 0;
        UT_CHECK(EVP_PKEY_get_utf8_string_param(ca->key,
                                                OSSL_PKEY_PARAM_GROUP_NAME,
                                                g, sizeof(g), &glen)
                 && !strcmp(g, want_group));
    }
    UT_CHECK(X509_check_private_key(x, ca->key) == 1);
    UT_CHECK((ca_sign_md(ca->key) == NULL) == EVP_PKEY_is_a(ca->key,
                                                            "ED25519"));

    /* the certificate */
    UT_CHECK(X509_get_version(x) == X509_VERSION_3);
    UT_CHECK(X509_get_signature_nid(x) == want_sig_nid);
    UT_CHECK(X509_NAME_cmp(X509_get_subject_name(x),
                           X509_get_issuer_name(x)) == 0);
    UT_CHECK(X509_verify(x, X509_get0_pubkey(x)) == 1);
    UT_CHECK_MSG(!strcmp(ca->subject, want_subject), "subject %s",
                 ca->subject);

    sn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), NULL);
    UT_CHECK(sn && !BN_is_negative(sn) && BN_num_bytes(sn) == 16);
    UT_CHECK(sn && BN_bn2bin(sn, snb) == 16 && snb[0] >= 0x01
             && snb[0] <= 0x7f);
    BN_free(sn);

    nb = ca_asn1_time_to_epoch(X509_get0_notBefore(x));
    na = ca_asn1_time_to_epoch(X509_get0_notAfter(x));
    UT_CHECK_MSG(nb >= t0 - 1 && nb <= t1 + 1, "notBefore %lld, made "
                 "between %lld and %lld", (long long)nb, (long long)t0,
                 (long long)t1);
    UT_CHECK_MSG(na - nb == (apr_int64_t)(days > 0 ? days : 3650) * 86400,
                 "validity %lld s", (long long)(na - nb));

    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    UT_CHECK(bc && bc->ca && !bc->pathlen && crit == 1);
    BASIC_CONSTRAINTS_free(bc);
    crit = -1;
    ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
    UT_CHECK(ku && crit == 1);
    ASN1_BIT_STRING_free(ku);
    UT_CHECK(X509_get_key_usage(x) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    UT_CHECK(X509_get_extended_key_usage(x) == UINT32_MAX);  /* no EKU */
    UT_CHECK(X509_get0_subject_key_id(x) != NULL);
    UT_CHECK(X509_get0_authority_key_id(x) != NULL
             && ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(x),
                                      X509_get0_authority_key_id(x)) == 0);
    UT_CHECK(X509_get_ext_count(x) == 4);
    UT_CHECK(X509_check_ca(x) == 1);

    /* OpenSSL accepts it as a trust anchor that verifies itself. */
    {
        X509_STORE *st = X509_STORE_new();
        X509_STORE_CTX *sc = X509_STORE_CTX_new();
        X509_STORE_add_cert(st, x);
        X509_STORE_CTX_init(sc, st, x, NULL);
        X509_STORE_CTX_set_flags(sc, X509_V_FLAG_X509_STRICT);
        UT_CHECK_MSG(X509_verify_cert(sc) == 1, "verify: %s",
                     X509_verify_cert_error_string(
                         X509_STORE_CTX_get_error(sc)));
        X509_STORE_CTX_free(sc);
        X509_STORE_free(st);
    }

    /* the derived fields */
    UT_CHECK(ca_x509_der(p, x, &der, &derlen) == APR_SUCCESS
             && derlen == ca->cert_der_len
             && !memcmp(der, ca->cert_der, derlen));
    UT_CHECK(ca->cert_pem && cpem && !strcmp(ca->cert_pem, cpem));
    UT_CHECK(ca->chain && sk_X509_num(ca->chain) == 0);
    UT_CHECK(ca->sha256_fp && strlen(ca->sha256_fp) == 95
             && !strcmp(ca->sha256_fp, fingerprint(p, x)));
    ut_rm_rf(dir);
}

static void test_create_ec(apr_pool_t *p)
{
    check_create(p, "ec", 30, "CN=Test CA,O=Example", "CN=Test CA,O=Example",
                 "EC", 256, "prime256v1", NID_ecdsa_with_SHA256);
}

static void test_create_ec384(apr_pool_t *p)
{
    check_create(p, "ec:P-384", 365, "/C=DE/O=Example/CN=Root P-384",
                 "CN=Root P-384,O=Example,C=DE", "EC", 384, "secp384r1",
                 NID_ecdsa_with_SHA256);
}

static void test_create_rsa(apr_pool_t *p)
{
    check_create(p, "rsa:2048", 1, "CN=RSA CA", "CN=RSA CA", "RSA", 2048,
                 NULL, NID_sha256WithRSAEncryption);
}

static void test_create_ed25519(apr_pool_t *p)
{
    check_create(p, "ed25519", 7300, "O=Ex,CN=J\xc3\xbcrgen's CA",
                 "O=Ex,CN=J\xc3\xbcrgen's CA", "ED25519", 256, NULL,
                 NID_ED25519);
}

static void test_create_defaults(apr_pool_t *p)
{
    /* NULL key type: EC P-256; 0 days: 3650; no subject: a default one */
    const char *dir = ut_tmpdir(p);
    const char *cf = apr_pstrcat(p, dir, "/c.pem", NULL);
    const char *kf = apr_pstrcat(p, dir, "/k.pem", NULL);
    const char *err = NULL;
    ca_init_opts_t o;
    ca_t *ca = NULL;

    memset(&o, 0, sizeof(o));
    UT_CHECK(ca_create(p, &o, cf, kf, &err) == APR_SUCCESS);
    UT_CHECK(ca_load(&ca, p, cf, kf, NULL, &err) == APR_SUCCESS);
    if (ca) {
        UT_CHECK(EVP_PKEY_is_a(ca->key, "EC")
                 && EVP_PKEY_get_bits(ca->key) == 256);
        UT_CHECK(ca_asn1_time_to_epoch(X509_get0_notAfter(ca->cert))
                     - ca_asn1_time_to_epoch(X509_get0_notBefore(ca->cert))
                 == 3650LL * 86400);
        UT_CHECK(ca->subject && *ca->subject);
    }
    ut_rm_rf(dir);
    check_create(p, NULL, 0, "CN=x", "CN=x", "EC", 256, "prime256v1",
                 NID_ecdsa_with_SHA256);
}

static void test_create_serials_differ(apr_pool_t *p)
{
    const char *d1 = ut_tmpdir(p), *d2 = ut_tmpdir(p), *err;
    ca_t *a = NULL, *b = NULL;

    make_ca(p, d1, "CN=same", NULL);
    make_ca(p, d2, "CN=same", NULL);
    UT_CHECK(load(p, d1, "ca.pem", "ca.key", NULL, &a, &err) == APR_SUCCESS);
    UT_CHECK(load(p, d2, "ca.pem", "ca.key", NULL, &b, &err) == APR_SUCCESS);
    UT_CHECK(a && b && ASN1_INTEGER_cmp(X509_get_serialNumber(a->cert),
                                        X509_get_serialNumber(b->cert)) != 0);
    UT_CHECK(a && b && strcmp(a->sha256_fp, b->sha256_fp) != 0);
    ut_rm_rf(d1);
    ut_rm_rf(d2);
}

static void test_create_refuses(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    const char *cf = apr_pstrcat(p, dir, "/ca.pem", NULL);
    const char *kf = apr_pstrcat(p, dir, "/ca.key", NULL);
    const char *other = apr_pstrcat(p, dir, "/other.key", NULL);
    const char *err = NULL, *c0, *k0;
    ca_init_opts_t o;

    make_ca(p, dir, "CN=first", NULL);
    c0 = ut_slurp(p, cf);
    k0 = ut_slurp(p, kf);
    memset(&o, 0, sizeof(o));
    o.subject = "CN=second";

    /* both exist, only the certificate, only the key */
    UT_CHECK(ca_create(p, &o, cf, kf, &err) == CA_EEXIST && one_line(err));
    err = NULL;
    UT_CHECK(ca_create(p, &o, cf, other, &err) == CA_EEXIST && one_line(err));
    UT_CHECK(access(other, F_OK) != 0);
    UT_CHECK(ca_create(p, &o, apr_pstrcat(p, dir, "/new.pem", NULL), kf,
                       &err) == CA_EEXIST);
    UT_CHECK(access(apr_pstrcat(p, dir, "/new.pem", NULL), F_OK) != 0);
    /* a dangling symbolic link is in the way too */
    UT_CHECK(symlink("/nonexistent/target", other) == 0);
    UT_CHECK(ca_create(p, &o, apr_pstrcat(p, dir, "/new.pem", NULL), other,
                       &err) == CA_EEXIST);
    unlink(other);
    /* nothing was changed */
    UT_CHECK(!strcmp(ut_slurp(p, cf), c0) && !strcmp(ut_slurp(p, kf), k0));
    UT_CHECK(ut_dir_count(dir) == 2);
    ut_rm_rf(dir);
}

static void test_create_bad_options(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    const char *cf = apr_pstrcat(p, dir, "/ca.pem", NULL);
    const char *kf = apr_pstrcat(p, dir, "/ca.key", NULL);
    static const char *bad_types[] = {
        "dsa", "rsa:1024", "rsa:abc", "rsa:", "rsa:2048x", "rsa:100000",
        "ec:P-999", "ec:", "x25519", "",
    };
    const char *err;
    ca_init_opts_t o;
    size_t i;

    memset(&o, 0, sizeof(o));
    for (i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        if (!*bad_types[i]) {
            continue;  /* "" means the default, tested elsewhere */
        }
        o.key_type = bad_types[i];
        err = NULL;
        UT_CHECK_MSG(ca_create(p, &o, cf, kf, &err) == CA_EBADINPUT
                     && one_line(err), "%s", bad_types[i]);
    }
    o.key_type = "ec";
    o.subject = "XX=nope";
    err = NULL;
    UT_CHECK(ca_create(p, &o, cf, kf, &err) == CA_EBADINPUT && one_line(err));
    o.subject = "CN=ok";
    o.key_passphrase = "";
    err = NULL;
    UT_CHECK(ca_create(p, &o, cf, kf, &err) == CA_EBADINPUT && one_line(err));
    UT_CHECK(ut_dir_count(dir) == 0);

    /* a directory that does not exist: CA_EIO, nothing left anywhere */
    o.key_passphrase = NULL;
    err = NULL;
    UT_CHECK(ca_create(p, &o, cf, apr_pstrcat(p, dir, "/private/ca.key", NULL),
                       &err) == CA_EIO && one_line(err)
             && strstr(err, "/private/ca.key"));
    UT_CHECK(ut_dir_count(dir) == 0);
    /* the key is written, the certificate cannot be: the key goes too */
    err = NULL;
    UT_CHECK(ca_create(p, &o, apr_pstrcat(p, dir, "/nodir/ca.pem", NULL), kf,
                       &err) == CA_EIO && one_line(err));
    UT_CHECK(ut_dir_count(dir) == 0);
    ut_rm_rf(dir);
}

/* ------------------------------------------------------------------ */
/* encrypted keys and pass phrase sources                              */
/* ------------------------------------------------------------------ */

#define PASS "s3cret pass phrase"

static void test_passphrase_sources(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    const char *kf = apr_pstrcat(p, dir, "/ca.key", NULL);
    const char *pf = apr_pstrcat(p, dir, "/pass.txt", NULL);
    const char *script = apr_pstrcat(p, dir, "/pass.sh", NULL);
    const char *err = NULL, *kpem;
    ca_t *ca = NULL;

    make_ca(p, dir, "CN=Encrypted CA", PASS);
    kpem = ut_slurp(p, kf);
    UT_CHECK(mode_of(kf) == 0600);
    UT_CHECK(kpem && strstr(kpem, "-----BEGIN ENCRYPTED PRIVATE KEY-----")
             && !strstr(kpem, "-----BEGIN PRIVATE KEY-----"));

    /* file: first line, with or without a line end */
    write_file(pf, PASS "\nsecond line\n", 0600);
    UT_CHECK(load(p, dir, "ca.pem", "ca.key",
                  apr_pstrcat(p, "file:", pf, NULL), &ca, &err)
             == APR_SUCCESS);
    UT_CHECK(ca && ca->key && X509_check_private_key(ca->cert, ca->key));
    write_file(pf, PASS "\r\n", 0600);
    UT_CHECK(load(p, dir, "ca.pem", "ca.key",
                  apr_pstrcat(p, "file:", pf, NULL), &ca, &err)
             == APR_SUCCESS);
    write_file(pf, PASS, 0600);
    UT_CHECK(load(p, dir, "ca.pem", "ca.key",
                  apr_pstrcat(p, "file:", pf, NULL), &ca, &err)
             == APR_SUCCESS);

    /* env: */
    setenv("CERTAUTH_UT_PASS", PASS, 1);
    UT_CHECK(load(p, dir, "ca.pem", "ca.key", "env:CERTAUTH_UT_PASS", &ca,
                  &err) == APR_SUCCESS);

    /* exec: gets the key file as its argument, prints the pass phrase */
    write_file(script, apr_psprintf(p, "#!/bin/sh\n"
                                    "[ \"$1\" = \"%s\" ] || exit 3\n"
                                    "[ $# -eq 1 ] || exit 4\n"
                                    "echo '" PASS "'\necho more\n", kf),
               0700);
    err = NULL;
    UT_CHECK_MSG(load(p, dir, "ca.pem", "ca.key",
                      apr_pstrcat(p, "exec:", script, NULL), &ca, &err)
                 == APR_SUCCESS, "%s", err ? err : "");
    UT_CHECK(ca && ca->key);
    unsetenv("CERTAUTH_UT_PASS");
    ut_rm_rf(dir);
}

static void check_refused(apr_pool_t *p, const char *dir, const char *pass,
                          const char *want1, const char *want2)
{
    const char *err = NULL;
    ca_t *ca = NULL;
    apr_status_t rv = load(p, dir, "ca.pem", "ca.key", pass, &ca, &err);
    UT_CHECK_MSG(rv == CA_ECONFIG && one_line(err)
                 && strstr(err, apr_pstrcat(p, dir, "/ca.key", NULL))
                 && (!want1 || strstr(err, want1))
                 && (!want2 || strstr(err, want2)),
                 "pass %s: rv %d err %s", pass ? pass : "(none)", rv,
                 err ? err : "(null)");
    UT_CHECK(ca == NULL);
    UT_CHECK(ERR_peek_error() == 0);        /* no stale OpenSSL errors */
}

static void test_passphrase_refusals(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    const char *pf = apr_pstrcat(p, dir, "/pass.txt", NULL);
    const char *fail = apr_pstrcat(p, dir, "/fail.sh", NULL);
    const char *wrong = apr_pstrcat(p, dir, "/wrong.sh", NULL);

    make_ca(p, dir, "CN=Encrypted CA", PASS);
    check_refused(p, dir, NULL, "encrypted", NULL);
    write_file(pf, "wrong pass phrase\n", 0600);
    check_refused(p, dir, apr_pstrcat(p, "file:", pf, NULL), "wrong pass",
                  NULL);
    write_file(pf, "\n", 0600);
    check_refused(p, dir, apr_pstrcat(p, "file:", pf, NULL), "empty", NULL);
    check_refused(p, dir, apr_pstrcat(p, "file:", dir, "/missing", NULL),
                  "/missing", NULL);
    unsetenv("CERTAUTH_UT_UNSET");
    check_refused(p, dir, "env:CERTAUTH_UT_UNSET", "CERTAUTH_UT_UNSET",
                  "not set");
    setenv("CERTAUTH_UT_WRONG", "nope", 1);
    check_refused(p, dir, "env:CERTAUTH_UT_WRONG", "wrong pass", NULL);
    unsetenv("CERTAUTH_UT_WRONG");
    write_file(fail, "#!/bin/sh\necho '" PASS "'\nexit 3\n", 0700);
    check_refused(p, dir, apr_pstrcat(p, "exec:", fail, NULL), fail,
                  "status 3");
    write_file(wrong, "#!/bin/sh\necho wrong\n", 0700);
    check_refused(p, dir, apr_pstrcat(p, "exec:", wrong, NULL), "wrong pass",
                  NULL);
    check_refused(p, dir, apr_pstrcat(p, "exec:", dir, "/nonexistent", NULL),
                  "/nonexistent", NULL);
    check_refused(p, dir, "prompt:" PASS, "prompt:", NULL);
    check_refused(p, dir, PASS, NULL, NULL);
    ut_rm_rf(dir);
}

static void test_passphrase_not_needed(apr_pool_t *p)
{
    /* An unencrypted key loads with a pass phrase source configured, and
     * the program is not run at all. */
    const char *dir = ut_tmpdir(p);
    const char *script = apr_pstrcat(p, dir, "/pass.sh", NULL);
    const char *marker = apr_pstrcat(p, dir, "/ran", NULL);
    const char *err = NULL;
    ca_t *ca = NULL;

    make_ca(p, dir, "CN=Plain CA", NULL);
    write_file(script, apr_psprintf(p, "#!/bin/sh\ntouch %s\necho x\n",
                                    marker), 0700);
    UT_CHECK(load(p, dir, "ca.pem", "ca.key",
                  apr_pstrcat(p, "exec:", script, NULL), &ca, &err)
             == APR_SUCCESS);
    UT_CHECK(access(marker, F_OK) != 0);
    unsetenv("CERTAUTH_UT_UNSET");
    UT_CHECK(load(p, dir, "ca.pem", "ca.key", "env:CERTAUTH_UT_UNSET", &ca,
                  &err) == APR_SUCCESS);
    ut_rm_rf(dir);
}

/* ------------------------------------------------------------------ */
/* ca_load refusals                                                    */
/* ------------------------------------------------------------------ */

static void test_load_key_mode(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    const char *kf = apr_pstrcat(p, dir, "/ca.key", NULL);
    static const int modes[] = { 0644, 0640, 0604, 0660, 0606, 0610, 0601 };
    const char *err = NULL;
    ca_t *ca = NULL;
    size_t i;

    make_ca(p, dir, "CN=Mode CA", NULL);
    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        apr_status_t rv;
        chmod(kf, (mode_t)modes[i]);
        err = NULL;
        rv = load(p, dir, "ca.pem", "ca.key", NULL, &ca, &err);
        UT_CHECK_MSG(rv == CA_ECONFIG && one_line(err) && strstr(err, kf)
                     && strstr(err, apr_psprintf(p, "mode %04o", modes[i]))
                     && strstr(err, "readable by group or others")
                     && strstr(err, "chmod 600"),
                     "mode %04o: %s", modes[i], err ? err : "(null)");
    }
    chmod(kf, 0400);
    UT_CHECK(load(p, dir, "ca.pem", "ca.key", NULL, &ca, &err)
             == APR_SUCCESS);
    chmod(kf, 0600);
    UT_CHECK(load(p, dir, "ca.pem", "ca.key", NULL, &ca, &err)
             == APR_SUCCESS);
    ut_rm_rf(dir);
}

static void test_load_mismatch(apr_pool_t *p)
{
    const char *d1 = ut_tmpdir(p), *d2 = ut_tmpdir(p);
    const char *err = NULL;
    ca_t *ca = NULL;

    make_ca(p, d1, "CN=One", NULL);
    make_ca(p, d2, "CN=Two", NULL);
    UT_CHECK(rename(apr_pstrcat(p, d2, "/ca.key", NULL),
                    apr_pstrcat(p, d1, "/two.key", NULL)) == 0);
    UT_CHECK(load(p, d1, "ca.pem", "two.key", NULL, &ca, &err) == CA_ECONFIG
             && one_line(err) && strstr(err, "does not match")
             && strstr(err, d1));
    UT_CHECK(ERR_peek_error() == 0);
    ut_rm_rf(d1);
    ut_rm_rf(d2);
}

static void test_load_missing_and_garbage(apr_pool_t *p)
{
    const char *dir = ut_tmpdir(p);
    const char *err = NULL;
    ca_t *ca = NULL;

    make_ca(p, dir, "CN=Files CA", NULL);
    UT_CHECK(load(p, dir, "nope.pem", "ca.key", NULL, &ca, &err) == CA_EIO
             && one_line(err) && strstr(err, "nope.pem")
             && strstr(err, "No such file"));
    UT_CHECK(load(p, dir, "ca.pem", "nope.key", NULL, &ca, &err) == CA_EIO
             && one_line(err) && strstr(err, "nope.key"));
    write_file(apr_pstrcat(p, dir, "/garbage.pem", NULL),
               "not a certificate\n", 0644);
    UT_CHECK(load(p, dir, "garbage.pem", "ca.key", NULL, &ca, &err)
             == CA_ECONFIG && one_line(err) && strstr(err, "garbage.pem"));
    write_file(apr_pstrcat(p, dir, "/empty.pem", NULL), "", 0644);
    UT_CHECK(load(p, dir, "empty.pem", "ca.key", NULL, &ca, &err)
             == CA_ECONFIG && one_line(err));
    write_file(apr_pstrcat(p, dir, "/garbage.key", NULL),
               "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
               0600);
    UT_CHECK(load(p, dir, "ca.pem", "garbage.key", NULL, &ca, &err)
             == CA_ECONFIG && one_line(err) && strstr(err, "garbage.key"));
    /* the certificate given as the key */
    write_file(apr_pstrcat(p, dir, "/cert-as.key", NULL),
               ut_slurp(p, apr_pstrcat(p, dir, "/ca.pem", NULL)), 0600);
    UT_CHECK(load(p, dir, "ca.pem", "cert-as.key", NULL, &ca, &err)
             == CA_ECONFIG && one_line(err));
    UT_CHECK(ca == NULL);
    UT_CHECK(ERR_peek_error() == 0);
    ut_rm_rf(dir);
}

/* Write cert and key, then expect ca_load to refuse with `want`. */
static void check_cert_refused(apr_pool_t *p, X509 *x, EVP_PKEY *k,
                               const char *want)
{
    const char *dir = ut_tmpdir(p);
    const char *err = NULL;
    ca_t *ca = NULL;
    apr_status_t rv;

    write_file(apr_pstrcat(p, dir, "/ca.pem", NULL), ca_x509_pem(p, x), 0644);
    write_file(apr_pstrcat(p, dir, "/ca.key", NULL), key_pem(p, k), 0600);
    rv = load(p, dir, "ca.pem", "ca.key", NULL, &ca, &err);
    UT_CHECK_MSG(rv == CA_ECONFIG && one_line(err) && strstr(err, want)
                 && strstr(err, apr_pstrcat(p, dir, "/ca.pem", NULL)),
                 "want '%s': rv %d err %s", want, rv, err ? err : "(null)");
    UT_CHECK(ERR_peek_error() == 0);
    ut_rm_rf(dir);
}

static void test_load_not_a_ca(apr_pool_t *p)
{
    EVP_PKEY *k = ec_key(p);

    check_cert_refused(p, self_signed(p, k, "leaf", X509_VERSION_3,
                                      "critical,CA:FALSE",
                                      "critical,digitalSignature",
                                      0, 86400), k, "not a CA");
    check_cert_refused(p, self_signed(p, k, "no ext", X509_VERSION_3, NULL,
                                      NULL, 0, 86400), k, "not a CA");
    check_cert_refused(p, self_signed(p, k, "v1", X509_VERSION_1, NULL, NULL,
                                      0, 86400), k, "not a CA");
    check_cert_refused(p, self_signed(p, k, "ku", X509_VERSION_3,
                                      "critical,CA:TRUE",
                                      "critical,digitalSignature,cRLSign",
                                      0, 86400), k, "keyCertSign");
    check_cert_refused(p, self_signed(p, k, "expired", X509_VERSION_3,
                                      "critical,CA:TRUE",
                                      "critical,keyCertSign,cRLSign",
                                      -2 * 86400, -60), k, "expired");
    check_cert_refused(p, self_signed(p, k, "future", X509_VERSION_3,
                                      "critical,CA:TRUE",
                                      "critical,keyCertSign,cRLSign",
                                      3600, 86400), k, "not valid yet");
}

static void test_load_minimal_ca(apr_pool_t *p)
{
    /* CA:TRUE without keyUsage is a CA (keyUsage is checked when present) */
    EVP_PKEY *k = ec_key(p);
    X509 *x = self_signed(p, k, "Minimal CA", X509_VERSION_3, "CA:TRUE", NULL,
                          -60, 86400);
    const char *dir = ut_tmpdir(p), *err = NULL;
    ca_t *ca = NULL;

    write_file(apr_pstrcat(p, dir, "/ca.pem", NULL), ca_x509_pem(p, x), 0644);
    write_file(apr_pstrcat(p, dir, "/ca.key", NULL), key_pem(p, k), 0600);
    UT_CHECK_MSG(load(p, dir, "ca.pem", "ca.key", NULL, &ca, &err)
                 == APR_SUCCESS, "%s", err ? err : "");
    UT_CHECK(ca && !strcmp(ca->subject, "CN=Minimal CA"));
    ut_rm_rf(dir);
}

static void test_load_chain(apr_pool_t *p)
{
    /* The CA certificate first, then the chain above it. */
    const char *dir = ut_tmpdir(p);
    const char *cf = apr_pstrcat(p, dir, "/ca.pem", NULL);
    EVP_PKEY *rk = ec_key(p);
    X509 *root = self_signed(p, rk, "Upper Root", X509_VERSION_3,
                             "critical,CA:TRUE", "keyCertSign", -60, 86400);
    const char *rootpem = ca_x509_pem(p, root), *capem, *err = NULL;
    ca_t *ca = NULL;
    int n = 0;
    const char *c;

    make_ca(p, dir, "CN=Intermediate", NULL);
    capem = ut_slurp(p, cf);
    write_file(cf, apr_pstrcat(p, capem, rootpem, rootpem, NULL), 0644);
    UT_CHECK(load(p, dir, "ca.pem", "ca.key", NULL, &ca, &err)
             == APR_SUCCESS);
    if (!ca) {
        ut_rm_rf(dir);
        return;
    }
    UT_CHECK(!strcmp(ca->subject, "CN=Intermediate"));
    UT_CHECK(sk_X509_num(ca->chain) == 2);
    UT_CHECK(sk_X509_num(ca->chain) == 2
             && X509_cmp(sk_X509_value(ca->chain, 0), root) == 0);
    for (c = ca->cert_pem; (c = strstr(c, "BEGIN CERTIFICATE")); c++) {
        n++;
    }
    UT_CHECK(n == 3);
    UT_CHECK(!strncmp(ca->cert_pem, capem, strlen(capem)));
    /* the DER and fingerprint are the CA certificate's own */
    UT_CHECK(!strcmp(ca->sha256_fp, fingerprint(p, ca->cert)));
    /* the chain alone is not a CA of ours: its key is not the one given */
    write_file(cf, apr_pstrcat(p, rootpem, capem, NULL), 0644);
    UT_CHECK(load(p, dir, "ca.pem", "ca.key", NULL, &ca, &err) == CA_ECONFIG);
    ut_rm_rf(dir);
}

/* ------------------------------------------------------------------ */
/* key generation and names                                            */
/* ------------------------------------------------------------------ */

static void test_key_generate(apr_pool_t *p)
{
    EVP_PKEY *k = NULL;
    const char *err = NULL;

    UT_CHECK(ca_key_generate(p, "EC:p-384", &k, &err) == APR_SUCCESS
             && EVP_PKEY_get_bits(k) == 384);
    UT_CHECK(ca_key_generate(p, "Ed25519", &k, &err) == APR_SUCCESS
             && EVP_PKEY_is_a(k, "ED25519") && ca_sign_md(k) == NULL);
    UT_CHECK(ca_key_generate(p, NULL, &k, &err) == APR_SUCCESS
             && EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_bits(k) == 256
             && ca_sign_md(k) == EVP_sha256());
    k = NULL;
    UT_CHECK(ca_key_generate(p, "rsa:1024", &k, &err) == CA_EBADINPUT
             && k == NULL && one_line(err));
    UT_CHECK(ca_key_generate(p, "blowfish", &k, &err) == CA_EBADINPUT
             && k == NULL && strstr(err, "blowfish"));
}

static X509_NAME *parse_ok(apr_pool_t *p, const char *in)
{
    X509_NAME *n = NULL;
    const char *err = NULL;
    apr_status_t rv = ca_name_parse(p, in, &n, &err);
    UT_CHECK_MSG(rv == APR_SUCCESS && n, "%s: %s", in, err ? err : "");
    return rv == APR_SUCCESS ? n : NULL;
}

static const char *entry(apr_pool_t *p, X509_NAME *n, int i, int *nid)
{
    X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
    ASN1_STRING *s;
    if (!e) {
        return NULL;
    }
    *nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    s = X509_NAME_ENTRY_get_data(e);
    return apr_pstrmemdup(p, (const char *)ASN1_STRING_get0_data(s),
                          (apr_size_t)ASN1_STRING_length(s));
}

static void test_name_parse(apr_pool_t *p)
{
    X509_NAME *a = parse_ok(p, "/O=Example/CN=alice");
    X509_NAME *b = parse_ok(p, "CN=alice,O=Example");
    X509_NAME *c = parse_ok(p, "commonName = alice, organizationName=Example");
    X509_NAME *n;
    const char *v;
    int nid = 0;

    if (!a || !b || !c) {
        return;
    }
    /* Both syntaxes give the same name, most significant RDN first. */
    UT_CHECK(X509_NAME_entry_count(a) == 2);
    UT_CHECK(X509_NAME_cmp(a, b) == 0 && X509_NAME_cmp(a, c) == 0);
    v = entry(p, a, 0, &nid);
    UT_CHECK(v && nid == NID_organizationName && !strcmp(v, "Example"));
    v = entry(p, a, 1, &nid);
    UT_CHECK(v && nid == NID_commonName && !strcmp(v, "alice"));
    UT_CHECK(!strcmp(ca_x509_name_str(p, a), "CN=alice,O=Example"));

    /* Escaped separators. */
    n = parse_ok(p, "CN=Doe\\, John,O=Example\\, Inc.");
    UT_CHECK(n && X509_NAME_entry_count(n) == 2);
    v = n ? entry(p, n, 1, &nid) : NULL;
    UT_CHECK(v && nid == NID_commonName && !strcmp(v, "Doe, John"));
    v = n ? entry(p, n, 0, &nid) : NULL;
    UT_CHECK(v && nid == NID_organizationName && !strcmp(v, "Example, Inc."));
    n = parse_ok(p, "/O=A\\/B/CN=c,d");
    v = n ? entry(p, n, 0, &nid) : NULL;
    UT_CHECK(v && !strcmp(v, "A/B"));
    v = n ? entry(p, n, 1, &nid) : NULL;
    UT_CHECK(v && !strcmp(v, "c,d"));

    /* UTF-8 values are stored as UTF8String. */
    n = parse_ok(p, "CN=J\xc3\xbcrgen M\xc3\xbcller,L=M\xc3\xbcnchen");
    if (n) {
        X509_NAME_ENTRY *e = X509_NAME_get_entry(n, 1);
        UT_CHECK(ASN1_STRING_type(X509_NAME_ENTRY_get_data(e))
                 == V_ASN1_UTF8STRING);
        v = entry(p, n, 1, &nid);
        UT_CHECK(v && !strcmp(v, "J\xc3\xbcrgen M\xc3\xbcller"));
        v = entry(p, n, 0, &nid);
        UT_CHECK(v && nid == NID_localityName
                 && !strcmp(v, "M\xc3\xbcnchen"));
    }

    /* Many fields by short and long name, and what is printed parses back
     * to the same name. */
    n = parse_ok(p, "/C=DE/ST=Bayern/localityName=M\xc3\xbcnchen/O=Ex"
                 "/OU=Unit, Sub/CN=x+y/emailAddress=a@example.org"
                 "/serialNumber=42/DC=example");
    if (n) {
        const char *s = ca_x509_name_str(p, n);
        X509_NAME *back = parse_ok(p, s);
        UT_CHECK(X509_NAME_entry_count(n) == 9);
        v = entry(p, n, 7, &nid);
        UT_CHECK(v && nid == NID_serialNumber && !strcmp(v, "42"));
        UT_CHECK_MSG(back && X509_NAME_cmp(n, back) == 0, "%s", s);
    }
}

static void test_name_parse_errors(apr_pool_t *p)
{
    static const char *bad[] = {
        "", "/", ",", "CN=", "/CN=", "CN=a,O=", "XX=foo", "/CN=a/XX=b",
        "CN", "/CN", "=value", "CN=a,=b", "C=Germany", "notAField=1",
        " , ",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        X509_NAME *n = NULL;
        const char *err = NULL;
        apr_status_t rv = ca_name_parse(p, bad[i], &n, &err);
        UT_CHECK_MSG(rv == CA_EBADINPUT && one_line(err), "'%s': rv %d err %s",
                     bad[i], rv, err ? err : "(null)");
    }
    UT_CHECK(ERR_peek_error() == 0);
}

/* ================================================================== */
/* More tests (once test_ca2.c):
 * Unit tests of ca_ca: creating a root CA (key types, extensions, files),
 * loading it back (pass phrase sources) and every refusal of ca_load;
 * subject parsing and key generation. */
/* ================================================================== */

#define PASS_COMMA "s3cret pass, phrase"

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
    const char *d = ut_tmpdir(p), *cert, *key, *err = NULL;
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
    UT_CHECK(contains(ut_slurp(p, key), "-----BEGIN PRIVATE KEY-----"));
    UT_CHECK(!contains(ut_slurp(p, key), "ENCRYPTED"));

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
    UT_CHECK(!strcmp(ca->cert_pem, ut_slurp(p, cert)));
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
        const char *d2 = ut_tmpdir(p), *c2, *k2, *both;
        ca_t *ca2 = NULL;
        if (make(p, d2, "ec", "CN=Upper", NULL, &c2, &k2)) {
            both = path_in(p, d, "withchain.pem");
            write_text(both, apr_pstrcat(p, ut_slurp(p, cert), ut_slurp(p, c2),
                                         NULL), 0644);
            rv = ca_load(&ca2, p, both, key, NULL, &err);
            UT_CHECK_MSG(rv == APR_SUCCESS, "%s", err ? err : "");
            if (rv == APR_SUCCESS) {
                UT_CHECK(sk_X509_num(ca2->chain) == 1);
                UT_CHECK(!strcmp(ca2->cert_pem,
                                 apr_pstrcat(p, ut_slurp(p, cert), ut_slurp(p, c2),
                                             NULL)));
                UT_CHECK(!strcmp(ca2->sha256_fp, ca->sha256_fp));
            }
        }
    }
}

static void test_create_ec_more(apr_pool_t *p)
{
    create_and_load(p, "ec", "EC", 256, "prime256v1");
}

static void test_create_p384(apr_pool_t *p)
{
    create_and_load(p, "ec:P-384", "EC", 384, "secp384r1");
}

static void test_create_rsa_more(apr_pool_t *p)
{
    create_and_load(p, "rsa:2048", "RSA", 2048, NULL);
}

static void test_create_ed25519_more(apr_pool_t *p)
{
    create_and_load(p, "ed25519", "ED25519", 0, NULL);
}

static void test_create_defaults_more(apr_pool_t *p)
{
    const char *d = ut_tmpdir(p), *cert, *key, *err = NULL;
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
    const char *d = ut_tmpdir(p), *cert, *key, *err = NULL;
    const char *cert0, *key0, *other;
    ca_init_opts_t o;

    if (!make(p, d, "ec", "CN=First", NULL, &cert, &key)) {
        return;
    }
    cert0 = ut_slurp(p, cert);
    key0 = ut_slurp(p, key);
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
    UT_CHECK(!strcmp(ut_slurp(p, cert), cert0));
    UT_CHECK(!strcmp(ut_slurp(p, key), key0));
    UT_CHECK(access(other, F_OK) != 0);
}

static void test_create_bad(apr_pool_t *p)
{
    const char *d = ut_tmpdir(p), *err = NULL;
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

static void test_load_key_mode_more(apr_pool_t *p)
{
    const char *d = ut_tmpdir(p), *cert, *key, *err = NULL;
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

static void test_load_mismatch_more(apr_pool_t *p)
{
    const char *d1 = ut_tmpdir(p), *d2 = ut_tmpdir(p), *c1, *k1, *c2, *k2;
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
        const char *d3 = ut_tmpdir(p), *c3, *k3;
        if (make(p, d3, "ed25519", "CN=Three", NULL, &c3, &k3)) {
            err = NULL;
            rv = ca_load(&ca, p, c1, k3, NULL, &err);
            REFUSED(rv, err, CA_ECONFIG, k3);
        }
    }
}

static void test_load_missing(apr_pool_t *p)
{
    const char *d = ut_tmpdir(p), *cert, *key, *err = NULL;
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
static void self_signed_in_dir(apr_pool_t *p, const char *dir, const char *bc,
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
        const char *d = ut_tmpdir(p), *cert, *key, *err = NULL;
        ca_t *ca = NULL;
        apr_status_t rv;
        self_signed_in_dir(p, d, cases[i].bc, cases[i].ku, cases[i].nb,
                    cases[i].secs, &cert, &key);
        rv = ca_load(&ca, p, cert, key, NULL, &err);
        REFUSED(rv, err, CA_ECONFIG, cert);
        UT_CHECK_MSG(contains(err, cases[i].what), "case %u: %s", i,
                     err ? err : "");
    }
    /* The same helper with CA extensions gives a loadable CA: the
     * refusals above are for the reasons named. */
    {
        const char *d = ut_tmpdir(p), *cert, *key, *err = NULL;
        ca_t *ca = NULL;
        apr_status_t rv;
        self_signed_in_dir(p, d, "critical,CA:TRUE", "critical,keyCertSign", -60,
                    86400, &cert, &key);
        rv = ca_load(&ca, p, cert, key, NULL, &err);
        UT_CHECK_MSG(rv == APR_SUCCESS, "%s", err ? err : "");
        /* No keyUsage at all is acceptable too. */
        d = ut_tmpdir(p);
        self_signed_in_dir(p, d, "critical,CA:TRUE", NULL, -60, 86400, &cert, &key);
        rv = ca_load(&ca, p, cert, key, NULL, &err);
        UT_CHECK_MSG(rv == APR_SUCCESS, "%s", err ? err : "");
    }
}

static void test_load_passphrase(apr_pool_t *p)
{
    const char *d = ut_tmpdir(p), *cert, *key, *err = NULL;
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

    if (!make(p, d, "ec", "CN=Encrypted", PASS_COMMA, &cert, &key)) {
        return;
    }
    first = ut_slurp(p, key);
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
    write_text(pf, PASS_COMMA "\nsecond line\n", 0600);
    write_text(pf_crlf, PASS_COMMA "\r\n", 0600);
    write_text(pf_bad, "not the " PASS_COMMA "\n", 0600);
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
    UT_CHECK(!contains(err, PASS_COMMA));

    /* env: */
    setenv("UT_CA_PASS", PASS_COMMA, 1);
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
                                "echo '" PASS_COMMA "'\necho other\n", sh_arg),
               0755);
    write_text(sh_fail, "#!/bin/sh\necho '" PASS_COMMA "'\nexit 3\n", 0755);
    write_text(sh_wrong, "#!/bin/sh\necho nope\n", 0755);
    rv = ca_load(&ca, p, cert, key, apr_pstrcat(p, "exec:", sh, NULL), &err);
    UT_CHECK_MSG(rv == APR_SUCCESS, "exec: %s", err ? err : "");
    UT_CHECK(contains(ut_slurp(p, sh_arg), key)
             && !strcmp(ut_slurp(p, sh_arg), key));
    err = NULL;
    rv = ca_load(&ca, p, cert, key, apr_pstrcat(p, "exec:", sh_fail, NULL),
                 &err);
    REFUSED(rv, err, CA_ECONFIG, sh_fail);
    UT_CHECK_MSG(contains(err, key), "%s", err ? err : "");
    UT_CHECK(!contains(err, PASS_COMMA));
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
    rv = ca_load(&ca, p, cert, key, PASS_COMMA, &err);
    REFUSED(rv, err, CA_ECONFIG, key);
    err = NULL;
    rv = ca_load(&ca, p, cert, key, "pass:" PASS_COMMA, &err);
    REFUSED(rv, err, CA_ECONFIG, key);

    /* An empty pass phrase is refused. */
    write_text(pf_bad, "\n", 0600);
    err = NULL;
    rv = ca_load(&ca, p, cert, key, apr_pstrcat(p, "file:", pf_bad, NULL),
                 &err);
    REFUSED(rv, err, CA_ECONFIG, key);

    /* A pass phrase source given for an unencrypted key is not used. */
    {
        const char *d2 = ut_tmpdir(p), *c2, *k2;
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
        const char *d3 = ut_tmpdir(p);
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

static void test_name_parse_more(apr_pool_t *p)
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

static void test_key_generate_more(apr_pool_t *p)
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
    UT_RUN(test_create_ec384);
    UT_RUN(test_create_rsa);
    UT_RUN(test_create_ed25519);
    UT_RUN(test_create_defaults);
    UT_RUN(test_create_serials_differ);
    UT_RUN(test_create_refuses);
    UT_RUN(test_create_bad_options);
    UT_RUN(test_passphrase_sources);
    UT_RUN(test_passphrase_refusals);
    UT_RUN(test_passphrase_not_needed);
    UT_RUN(test_load_key_mode);
    UT_RUN(test_load_mismatch);
    UT_RUN(test_load_missing_and_garbage);
    UT_RUN(test_load_not_a_ca);
    UT_RUN(test_load_minimal_ca);
    UT_RUN(test_load_chain);
    UT_RUN(test_key_generate);
    UT_RUN(test_name_parse);
    UT_RUN(test_name_parse_errors);

    UT_RUN(test_create_ec_more);
    UT_RUN(test_create_p384);
    UT_RUN(test_create_rsa_more);
    UT_RUN(test_create_ed25519_more);
    UT_RUN(test_create_defaults_more);
    UT_RUN(test_create_no_overwrite);
    UT_RUN(test_create_bad);
    UT_RUN(test_load_key_mode_more);
    UT_RUN(test_load_mismatch_more);
    UT_RUN(test_load_missing);
    UT_RUN(test_load_not_ca);
    UT_RUN(test_load_passphrase);
    UT_RUN(test_name_parse_more);
    UT_RUN(test_key_generate_more);
    return ut_finish();
}
