/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_ca.c: load the CA key and certificate; create a new root CA. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_ca.h"
#include "ca_log.h"
#include "ca_pkcs11.h"
#include "ca_util.h"

const EVP_MD *ca_sign_md(EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) {
        return NULL;
    }
    return EVP_sha256();
}

const char *ca_secret_get(apr_pool_t *p, const char *source,
                          const char *key_file, const char **err)
{
    char buf[1024];
    char *nl;

    if (!strncmp(source, "env:", 4)) {
        const char *v = getenv(source + 4);
        if (!v) {
            *err = apr_psprintf(p, "pass phrase environment variable %s is "
                                "not set", source + 4);
            return NULL;
        }
        return apr_pstrdup(p, v);
    }
    if (!strncmp(source, "file:", 5)) {
        FILE *f = fopen(source + 5, "re");
        if (!f) {
            *err = apr_psprintf(p, "pass phrase file %s: %s", source + 5,
                                strerror(errno));
            return NULL;
        }
        if (!fgets(buf, sizeof(buf), f)) {
            buf[0] = '\0';
        }
        fclose(f);
    }
    else if (!strncmp(source, "exec:", 5)) {
        int fds[2];
        pid_t pid;
        int status = 0, late = 0;

        if (pipe2(fds, O_CLOEXEC) != 0) {
            *err = apr_psprintf(p, "pass phrase program: %s", strerror(errno));
            return NULL;
        }
        pid = fork();
        if (pid < 0) {
            close(fds[0]);
            close(fds[1]);
            *err = apr_psprintf(p, "pass phrase program: %s", strerror(errno));
            return NULL;
        }
        if (pid == 0) {
            dup2(fds[1], STDOUT_FILENO);
            close(fds[0]);
            close(fds[1]);
            execl(source + 5, source + 5, key_file, (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        ca_child_collect(fds[0], pid, buf, sizeof(buf), CA_CHILD_SECS,
                         &status, &late);
        if (late) {
            OPENSSL_cleanse(buf, sizeof(buf));
            *err = apr_psprintf(p, "pass phrase program %s gave no answer "
                                "within %d s (killed)", source + 5,
                                CA_CHILD_SECS);
            return NULL;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            OPENSSL_cleanse(buf, sizeof(buf));
            *err = apr_psprintf(p, "pass phrase program %s failed (exit "
                                "status %d)", source + 5,
                                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            return NULL;
        }
    }
    else {
        *err = apr_psprintf(p, "unknown pass phrase source '%s'", source);
        return NULL;
    }
    if ((nl = strpbrk(buf, "\r\n"))) {
        *nl = '\0';
    }
    if (!buf[0]) {
        *err = apr_psprintf(p, "pass phrase from %s is empty", source);
        return NULL;
    }
    {
        const char *out = apr_pstrdup(p, buf);
        OPENSSL_cleanse(buf, sizeof(buf));
        return out;
    }
}

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    const char *pass = u;
    int n;
    (void)rwflag;
    if (!pass) {
        return -1;
    }
    n = (int)strlen(pass);
    if (n > size) {
        n = size;
    }
    memcpy(buf, pass, (size_t)n);
    return n;
}

/* Pass phrase for reading the CA key: obtained only when the key turns out
 * to be encrypted, at most once. */
typedef struct {
    apr_pool_t *p;
    const char *source;   /* NULL: no pass phrase configured */
    const char *key_file;
    char *pass;           /* obtained pass phrase, cleansed after use */
    const char *err;      /* why it could not be obtained */
    int asked;            /* the key is encrypted */
} pw_ctx_t;

static int load_pass_cb(char *buf, int size, int rwflag, void *u)
{
    pw_ctx_t *c = u;
    int n;
    (void)rwflag;

    c->asked = 1;
    if (!c->source) {
        return -1;
    }
    if (!c->pass && !c->err) {
        c->pass = (char *)ca_secret_get(c->p, c->source, c->key_file,
                                         &c->err);
    }
    if (!c->pass) {
        return -1;
    }
    n = (int)strlen(c->pass);
    if (n > size) {
        n = size;
    }
    memcpy(buf, c->pass, (size_t)n);
    return n;
}

static const char *sha256_fp(apr_pool_t *p, X509 *x)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    char *out, *o;

    if (!X509_digest(x, EVP_sha256(), md, &n)) {
        return "";
    }
    o = out = apr_palloc(p, n * 3 + 1);
    for (i = 0; i < n; i++) {
        apr_snprintf(o, 4, i + 1 < n ? "%02X:" : "%02X", md[i]);
        o += i + 1 < n ? 3 : 2;
    }
    *o = '\0';
    return out;
}

static apr_status_t cleanse_str(void *s)
{
    OPENSSL_cleanse(s, strlen(s));
    return APR_SUCCESS;
}

/* The key of ca->key_uri into a pool of its own under p (released with
 * it)). */
static apr_status_t load_token_key(ca_t *ca, apr_pool_t *p, const char **err)
{
    apr_pool_t *kp;
    const char *why = NULL;

    apr_pool_create(&kp, p);
    if (ca_pkcs11_load_key(kp, ca->key_uri, ca->pin, &ca->key, &why)
        != APR_SUCCESS) {
        apr_pool_destroy(kp);
        ca->key = NULL;
        *err = apr_psprintf(p, "CA key %s: %s", ca->key_uri, why);
        return CA_ECONFIG;
    }
    ca->key_pool = kp;
    return APR_SUCCESS;
}

static void key_release(ca_t *ca)
{
    if (ca->key_pool) {
        apr_pool_destroy(ca->key_pool);
        ca->key_pool = NULL;
        ca->key = NULL;
    }
}

apr_status_t ca_key_reopen(ca_t *ca, apr_pool_t *p, const char **err)
{
    int attempt;

    *err = NULL;
    if (!ca->key_uri || ca->key) {
        return APR_SUCCESS;
    }
    /* several children open the token at the same moment; SoftHSM's file
     * store, for one, can show a reader an object another process is
     * rewriting (a login updates the token file): a few tries */
    for (attempt = 0; load_token_key(ca, p, err) != APR_SUCCESS;
         attempt++) {
        if (attempt == 4) {
            return CA_ECONFIG;
        }
        apr_sleep(apr_time_from_msec(100 * (attempt + 1)));
    }
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        ERR_clear_error();
        key_release(ca);
        *err = apr_psprintf(p, "CA key %s no longer matches the CA "
                            "certificate", ca->key_uri);
        return CA_ECONFIG;
    }
    return APR_SUCCESS;
}

apr_status_t ca_load(ca_t **pca, apr_pool_t *p, const char *cert_file,
                     const char *key_file, const char *passphrase,
                     const char **err)
{
    return ca_load_ex(pca, p, cert_file, key_file, passphrase, 0, err);
}

apr_status_t ca_load_ex(ca_t **pca, apr_pool_t *p, const char *cert_file,
                        const char *key_file, const char *passphrase,
                        int flags, const char **err)
{
    ca_t *ca = apr_pcalloc(p, sizeof(*ca));
    pw_ctx_t pw;
    struct stat st;
    BIO *bio = NULL;
    X509 *x;
    time_t now = time(NULL);
    int i;

    *err = NULL;
    /* The certificate, then the chain above it. */
    bio = BIO_new_file(cert_file, "r");
    if (!bio) {
        int e = errno;
        ERR_clear_error();
        *err = apr_psprintf(p, "cannot read CA certificate file %s: %s",
                            cert_file, strerror(e));
        return CA_EIO;
    }
    ca->cert = ca_pool_x509(p, PEM_read_bio_X509(bio, NULL, NULL, NULL));
    if (!ca->cert) {
        BIO_free(bio);
        ERR_clear_error();
        *err = apr_psprintf(p, "CA certificate file %s holds no PEM "
                            "certificate", cert_file);
        return CA_ECONFIG;
    }
    ca->chain = ca_pool_x509_stack(p, sk_X509_new_null());
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        sk_X509_push(ca->chain, x);
    }
    ERR_clear_error();
    BIO_free(bio);

    if (passphrase && strncmp(passphrase, "file:", 5)
        && strncmp(passphrase, "exec:", 5) && strncmp(passphrase, "env:", 4)) {
        *err = apr_psprintf(p, "pass phrase source '%s' for CA key %s "
                            "is not file:/path, exec:/path or env:NAME",
                            passphrase, key_file);
        return CA_ECONFIG;
    }
    if (ca_pkcs11_is_uri(key_file)) {
        /* in a token: the pass phrase source gives the PIN */
        ca->key_uri = apr_pstrdup(p, key_file);
        if (ca_pkcs11_check_uri(p, key_file, err) != APR_SUCCESS) {
            *err = apr_psprintf(p, "CA key %s: %s", key_file, *err);
            return CA_ECONFIG;
        }
        if (passphrase) {
            const char *why = NULL;
            ca->pin = ca_secret_get(p, passphrase, key_file, &why);
            if (!ca->pin) {
                *err = apr_psprintf(p, "CA key %s: PIN: %s", key_file, why);
                return CA_ECONFIG;
            }
            apr_pool_cleanup_register(p, ca->pin, cleanse_str,
                                      apr_pool_cleanup_null);
        }
        if (flags & CA_LOAD_KEY_LATER) {
            const char *why = NULL;
            if (ca_pkcs11_probe(p, key_file, ca->pin, ca->cert, &why)
                != APR_SUCCESS) {
                *err = apr_psprintf(p, "CA key %s: %s", key_file, why);
                return CA_ECONFIG;
            }
        }
        else if (load_token_key(ca, p, err) != APR_SUCCESS) {
            return CA_ECONFIG;
        }
    }
    else {
        /* The key: never readable by group or others. */
        if (stat(key_file, &st) != 0) {
            *err = apr_psprintf(p, "cannot read CA key file %s: %s", key_file,
                                strerror(errno));
            return CA_EIO;
        }
        if (st.st_mode & 077) {
            *err = apr_psprintf(p, "CA key file %s is readable by group or "
                                "others (mode %04o); chmod 600 it", key_file,
                                (unsigned)(st.st_mode & 07777));
            return CA_ECONFIG;
        }
        memset(&pw, 0, sizeof(pw));
        pw.p = p;
        pw.source = passphrase;
        pw.key_file = key_file;
        bio = BIO_new_file(key_file, "r");
        if (!bio) {
            int e = errno;
            ERR_clear_error();
            *err = apr_psprintf(p, "cannot read CA key file %s: %s",
                                key_file, strerror(e));
            return CA_EIO;
        }
        ca->key = ca_pool_pkey(p, PEM_read_bio_PrivateKey(bio, NULL,
                                                          load_pass_cb, &pw));
        BIO_free(bio);
        if (pw.pass) {
            OPENSSL_cleanse(pw.pass, strlen(pw.pass));
        }
        if (!ca->key) {
            const char *ssl = ca_log_ssl_errors(p);
            if (pw.err) {
                *err = apr_psprintf(p, "CA key file %s: %s", key_file, pw.err);
            }
            else if (pw.asked && !passphrase) {
                *err = apr_psprintf(p, "CA key file %s is encrypted and no "
                                    "pass phrase is configured", key_file);
            }
            else if (pw.asked) {
                *err = apr_psprintf(p, "CA key file %s cannot be decrypted: "
                                    "wrong pass phrase? (%s)", key_file, ssl);
            }
            else {
                *err = apr_psprintf(p, "CA key file %s holds no PEM private "
                                    "key (%s)", key_file, ssl);
            }
            return CA_ECONFIG;
        }
    }
    if (ca->key && X509_check_private_key(ca->cert, ca->key) != 1) {
        ERR_clear_error();
        *err = apr_psprintf(p, "CA key file %s does not match the "
                            "certificate in %s", key_file, cert_file);
        return CA_ECONFIG;
    }
    /* Each reason named on its own: X509_check_ca() alone also fails for
     * a CA:TRUE certificate whose keyUsage lacks keyCertSign. */
    if ((X509_get_extension_flags(ca->cert) & EXFLAG_CA) == 0) {
        *err = apr_psprintf(p, "certificate in %s is not a CA certificate "
                            "(basicConstraints CA:TRUE missing)", cert_file);
        return CA_ECONFIG;
    }
    if ((X509_get_extension_flags(ca->cert) & EXFLAG_KUSAGE)
        && !(X509_get_key_usage(ca->cert) & KU_KEY_CERT_SIGN)) {
        *err = apr_psprintf(p, "certificate in %s may not sign certificates "
                            "(keyUsage lacks keyCertSign)", cert_file);
        return CA_ECONFIG;
    }
    if (X509_check_ca(ca->cert) == 0) {
        *err = apr_psprintf(p, "certificate in %s is not a CA certificate",
                            cert_file);
        return CA_ECONFIG;
    }
    if (!(flags & CA_LOAD_EXPIRED_OK)
        && X509_cmp_time(X509_get0_notAfter(ca->cert), &now) <= 0) {
        *err = apr_psprintf(p, "CA certificate in %s has expired", cert_file);
        return CA_ECONFIG;
    }
    if (!(flags & CA_LOAD_EXPIRED_OK)
        && X509_cmp_time(X509_get0_notBefore(ca->cert), &now) > 0) {
        *err = apr_psprintf(p, "CA certificate in %s is not valid yet",
                            cert_file);
        return CA_ECONFIG;
    }

    if (ca_x509_der(p, ca->cert, &ca->cert_der, &ca->cert_der_len)
        != APR_SUCCESS) {
        *err = "cannot encode the CA certificate";
        return CA_ECRYPTO;
    }
    ca->cert_pem = ca_x509_pem(p, ca->cert);
    for (i = 0; i < sk_X509_num(ca->chain); i++) {
        ca->cert_pem = apr_pstrcat(p, ca->cert_pem,
                                   ca_x509_pem(p, sk_X509_value(ca->chain, i)),
                                   NULL);
    }
    ca->subject = ca_x509_name_str(p, X509_get_subject_name(ca->cert));
    ca->sha256_fp = sha256_fp(p, ca->cert);
    *pca = ca;
    return APR_SUCCESS;
}

apr_status_t ca_key_generate(apr_pool_t *p, const char *key_type,
                             EVP_PKEY **out, const char **err)
{
    EVP_PKEY *k = NULL;
    const char *t = key_type && *key_type ? key_type : "ec";

    if (!strcasecmp(t, "ec") || !strcasecmp(t, "ec:P-256")) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    }
    else if (!strcasecmp(t, "ec:P-384")) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    }
    else if (!strcasecmp(t, "ed25519")) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    }
    else if (!strcasecmp(t, "rsa") || !strncasecmp(t, "rsa:", 4)) {
        char *end = NULL;
        long bits = t[3] ? strtol(t + 4, &end, 10) : 3072;
        if ((t[3] && (!end || *end)) || bits < 2048 || bits > 8192) {
            *err = apr_psprintf(p, "bad RSA key size in '%s' (2048 to 8192)",
                                t);
            return CA_EBADINPUT;
        }
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    }
    else {
        *err = apr_psprintf(p, "unknown key type '%s' (ec, ec:P-256, "
                            "ec:P-384, rsa, rsa:BITS, ed25519)", t);
        return CA_EBADINPUT;
    }
    if (!k) {
        *err = apr_psprintf(p, "key generation failed: %s",
                            ca_log_ssl_errors(p));
        return CA_ECRYPTO;
    }
    *out = ca_pool_pkey(p, k);
    return APR_SUCCESS;
}

static apr_status_t add_entry(apr_pool_t *p, X509_NAME *name,
                              const char *field, const char *value,
                              const char **err)
{
    int nid;

    while (apr_isspace(*field)) {
        field++;
    }
    ERR_set_mark();  /* an unknown name is also tried as a dotted OID */
    nid = OBJ_txt2nid(field);
    ERR_pop_to_mark();
    if (!*field || nid == NID_undef) {
        *err = apr_psprintf(p, "unknown subject field '%s'", field);
        return CA_EBADINPUT;
    }
    if (!*value) {
        *err = apr_psprintf(p, "subject field %s is empty", field);
        return CA_EBADINPUT;
    }
    ERR_set_mark();
    if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                    (const unsigned char *)value, -1, -1, 0)) {
        const char *why = ERR_reason_error_string(ERR_peek_last_error());
        ERR_pop_to_mark();
        *err = apr_psprintf(p, "bad value for subject field %s%s%s%s", field,
                            why ? " (" : "", why ? why : "", why ? ")" : "");
        return CA_EBADINPUT;
    }
    ERR_clear_last_mark();
    return APR_SUCCESS;
}

static apr_status_t name_cleanup(void *n)
{
    X509_NAME_free(n);
    return APR_SUCCESS;
}

apr_status_t ca_name_parse(apr_pool_t *p, const char *in, X509_NAME **out,
                           const char **err)
{
    X509_NAME *name = X509_NAME_new();
    apr_array_header_t *parts = apr_array_make(p, 8, sizeof(char *));
    int slash = (in[0] == '/');
    const char *c = slash ? in + 1 : in;
    char sep = slash ? '/' : ',';
    char *buf = apr_palloc(p, strlen(in) + 1), *b = buf;
    int i;

    if (!name) {
        return CA_ECRYPTO;
    }
    apr_pool_cleanup_register(p, name, name_cleanup, apr_pool_cleanup_null);
    /* Split on unescaped separators. */
    for (;; c++) {
        if (*c == '\\' && c[1]) {
            *b++ = *++c;
            continue;
        }
        if (*c == sep || !*c) {
            *b = '\0';
            if (*buf) {
                APR_ARRAY_PUSH(parts, char *) = apr_pstrdup(p, buf);
            }
            b = buf;
            if (!*c) {
                break;
            }
            continue;
        }
        *b++ = *c;
    }
    if (parts->nelts == 0) {
        *err = "empty subject";
        return CA_EBADINPUT;
    }
    for (i = 0; i < parts->nelts; i++) {
        /* "/O=b/CN=a" lists the most significant first, RFC 2253 last. */
        char *part = APR_ARRAY_IDX(parts, slash ? i : parts->nelts - 1 - i,
                                   char *);
        char *eq = strchr(part, '=');
        char *v;
        apr_status_t rv;

        if (!eq) {
            *err = apr_psprintf(p, "subject part '%s' has no '='", part);
            return CA_EBADINPUT;
        }
        *eq = '\0';
        v = eq + 1;
        while (apr_isspace(*v)) {
            v++;
        }
        {
            char *e = eq - 1;
            while (e >= part && apr_isspace(*e)) {
                *e-- = '\0';
            }
        }
        if ((rv = add_entry(p, name, part, v, err)) != APR_SUCCESS) {
            return rv;
        }
    }
    *out = name;
    return APR_SUCCESS;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

apr_status_t ca_cert_make(apr_pool_t *p, X509_NAME *subject, EVP_PKEY *pub,
                          X509 *issuer, EVP_PKEY *issuer_key,
                          apr_int64_t not_after, int days, X509 **out,
                          const char **err)
{
    X509 *x;
    X509V3_CTX ctx;
    unsigned char sn[16];
    BIGNUM *bn = NULL;
    int ok;

    x = ca_pool_x509(p, X509_new());
    if (!x || RAND_bytes(sn, sizeof(sn)) != 1) {
        *err = "out of memory or randomness";
        return CA_ECRYPTO;
    }
    sn[0] = (unsigned char)((sn[0] & 0x7f) | 0x01);
    bn = BN_bin2bn(sn, sizeof(sn), NULL);
    ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))
         && X509_set_version(x, X509_VERSION_3)
         && X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
                                           : subject)
         && X509_set_subject_name(x, subject)
         && X509_gmtime_adj(X509_getm_notBefore(x), 0)
         && X509_set_pubkey(x, pub);
    if (ok && not_after > 0) {
        ok = ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) != NULL;
    }
    else if (ok) {
        ok = X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) != NULL;
    }
    BN_free(bn);
    if (!ok) {
        *err = apr_psprintf(p, "cannot build the CA certificate: %s",
                            ca_log_ssl_errors(p));
        return CA_ECRYPTO;
    }
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    if (!add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE")
        || !add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign")
        || !add_ext(x, &ctx, NID_subject_key_identifier, "hash")
        || !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")
        || X509_sign(x, issuer_key, ca_sign_md(issuer_key)) <= 0) {
        *err = apr_psprintf(p, "cannot sign the CA certificate: %s",
                            ca_log_ssl_errors(p));
        return CA_ECRYPTO;
    }
    *out = x;
    return APR_SUCCESS;
}

apr_status_t ca_create_with_key(apr_pool_t *p, const ca_init_opts_t *opts,
                                EVP_PKEY *key, const char *cert_file,
                                const char **err)
{
    X509_NAME *name = NULL;
    X509 *x;
    const char *pem;
    apr_status_t rv;
    struct stat st;

    if (lstat(cert_file, &st) == 0) {
        *err = apr_psprintf(p, "%s already exists; not overwriting a CA",
                            cert_file);
        return CA_EEXIST;
    }
    rv = ca_name_parse(p, opts->subject && *opts->subject
                              ? opts->subject : "CN=certauth root CA",
                       &name, err);
    if (rv == APR_SUCCESS) {
        rv = ca_cert_make(p, name, key, NULL, key, 0,
                          opts->days > 0 ? opts->days : 3650, &x, err);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    pem = ca_x509_pem(p, x);
    if (!pem) {
        *err = "cannot encode the CA certificate";
        return CA_ECRYPTO;
    }
    rv = ca_file_write_atomic(p, cert_file, pem, strlen(pem), 0644);
    if (rv != APR_SUCCESS) {
        char buf[128];
        *err = apr_psprintf(p, "cannot write %s: %s", cert_file,
                            apr_strerror(rv, buf, sizeof(buf)));
        return CA_EIO;
    }
    return APR_SUCCESS;
}

apr_status_t ca_create(apr_pool_t *p, const ca_init_opts_t *opts,
                       const char *cert_file, const char *key_file,
                       const char **err)
{
    EVP_PKEY *key = NULL;
    X509_NAME *name = NULL;
    X509 *x;
    BIO *bio;
    char *data;
    long len;
    const char *pem_key, *pem_cert;
    apr_status_t rv;
    int days = opts->days > 0 ? opts->days : 3650;
    struct stat st;

    if (lstat(cert_file, &st) == 0 || lstat(key_file, &st) == 0) {
        *err = apr_psprintf(p, "%s or %s already exists; not overwriting "
                            "a CA", cert_file, key_file);
        return CA_EEXIST;
    }
    if (opts->key_passphrase && !*opts->key_passphrase) {
        *err = "the pass phrase for the CA key is empty";
        return CA_EBADINPUT;
    }
    rv = ca_name_parse(p, opts->subject && *opts->subject
                              ? opts->subject : "CN=certauth root CA",
                       &name, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if ((rv = ca_key_generate(p, opts->key_type, &key, err)) != APR_SUCCESS) {
        return rv;
    }

    if ((rv = ca_cert_make(p, name, key, NULL, key, 0, days, &x, err))
        != APR_SUCCESS) {
        return rv;
    }

    bio = BIO_new(BIO_s_mem());
    if (!bio || !PEM_write_bio_PrivateKey(bio, key,
                                          opts->key_passphrase
                                              ? EVP_aes_256_cbc() : NULL,
                                          NULL, 0, pass_cb,
                                          (void *)opts->key_passphrase)) {
        BIO_free(bio);
        *err = "cannot encode the CA key";
        return CA_ECRYPTO;
    }
    len = BIO_get_mem_data(bio, &data);
    pem_key = apr_pstrmemdup(p, data, (apr_size_t)len);
    OPENSSL_cleanse(data, (size_t)len);
    BIO_free(bio);
    pem_cert = ca_x509_pem(p, x);
    if (!pem_cert) {
        OPENSSL_cleanse((void *)pem_key, strlen(pem_key));
        *err = "cannot encode the CA certificate";
        return CA_ECRYPTO;
    }

    rv = ca_file_write_atomic(p, key_file, pem_key, strlen(pem_key), 0600);
    OPENSSL_cleanse((void *)pem_key, strlen(pem_key));
    if (rv != APR_SUCCESS) {
        char buf[128];
        *err = apr_psprintf(p, "cannot write %s: %s", key_file,
                            apr_strerror(rv, buf, sizeof(buf)));
        return CA_EIO;
    }
    rv = ca_file_write_atomic(p, cert_file, pem_cert, strlen(pem_cert), 0644);
    if (rv != APR_SUCCESS) {
        char buf[128];
        unlink(key_file); /* no half-made CA: a retry must not find it */
        *err = apr_psprintf(p, "cannot write %s: %s", cert_file,
                            apr_strerror(rv, buf, sizeof(buf)));
        return CA_EIO;
    }
    return APR_SUCCESS;
}

/* All PEM certificates of a file (at least one). */
static apr_status_t read_certs(apr_pool_t *p, const char *file,
                               STACK_OF(X509) **out, const char **err)
{
    BIO *bio = BIO_new_file(file, "r");
    STACK_OF(X509) *sk;
    X509 *x;

    if (!bio) {
        int e = errno;
        ERR_clear_error();
        *err = apr_psprintf(p, "cannot read %s: %s", file, strerror(e));
        return CA_ECONFIG;
    }
    sk = ca_pool_x509_stack(p, sk_X509_new_null());
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        sk_X509_push(sk, x);
    }
    ERR_clear_error();
    BIO_free(bio);
    if (!sk_X509_num(sk)) {
        *err = apr_psprintf(p, "%s holds no PEM certificate", file);
        return CA_ECONFIG;
    }
    *out = sk;
    return APR_SUCCESS;
}

int ca_issued_by_us(const ca_t *ca, X509 *x)
{
    int ok = X509_check_issued(ca->cert, x) == X509_V_OK
             && X509_verify(x, X509_get0_pubkey(ca->cert)) == 1;
    int i;

    for (i = 0; !ok && i < ca_n_previous(ca); i++) {
        X509 *prev = ca_previous_n(ca, i);
        ok = X509_check_issued(prev, x) == X509_V_OK
             && X509_verify(x, X509_get0_pubkey(prev)) == 1;
    }
    ERR_clear_error();
    return ok;
}

int ca_n_previous(const ca_t *ca)
{
    return ca->previous_all ? sk_X509_num(ca->previous_all)
                            : ca->previous != NULL;
}

X509 *ca_previous_n(const ca_t *ca, int i)
{
    return ca->previous_all ? sk_X509_value(ca->previous_all, i)
                            : i == 0 ? ca->previous : NULL;
}

X509 *ca_generation(const ca_t *ca, apr_pool_t *p, const char *kid)
{
    int i;

    if (!strcmp(kid, ca_cert_key_id(p, ca->cert))) {
        return ca->cert;
    }
    for (i = 0; i < ca_n_previous(ca); i++) {
        if (!strcmp(kid, ca_cert_key_id(p, ca_previous_n(ca, i)))) {
            return ca_previous_n(ca, i);
        }
    }
    return NULL;
}

/* Newest first: the later notBefore (the order of the directives does not
 * matter). */
static int newer_first(const X509 *a, const X509 *b)
{
    int days = 0, secs = 0;

    if (!ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(b),
                        X509_get0_notBefore(a))) {
        return 0;
    }
    return days > 0 || (days == 0 && secs > 0) ? -1
           : days < 0 || secs < 0 ? 1 : 0;
}

apr_status_t ca_set_previous_n(ca_t *ca, apr_pool_t *p,
                               const char *const *prev_files, int n_prev,
                               const char *const *links_files, int n_links,
                               const char **err)
{
    STACK_OF(X509) *all, *keys;
    const char *pem;
    int i, j, k, *from;

    all = ca_pool_x509_stack(p, sk_X509_new_null());
    from = apr_pcalloc(p, sizeof(int) * (apr_size_t)(n_prev + 1));
    /* the current CA and every previous one: the keys a link may join */
    keys = ca_pool_x509_stack(p, sk_X509_new_null());
    sk_X509_push(keys, X509_dup(ca->cert));
    for (i = 0; i < n_prev; i++) {
        STACK_OF(X509) *prev;
        X509 *x;
        if (read_certs(p, prev_files[i], &prev, err) != APR_SUCCESS) {
            return CA_ECONFIG;
        }
        x = sk_X509_value(prev, 0);
        if (!(X509_get_extension_flags(x) & EXFLAG_CA)) {
            *err = apr_psprintf(p, "certificate in %s is not a CA "
                                "certificate", prev_files[i]);
            return CA_ECONFIG;
        }
        for (j = 0; j < sk_X509_num(keys); j++) {
            EVP_PKEY *a = X509_get0_pubkey(x);
            EVP_PKEY *b = X509_get0_pubkey(sk_X509_value(keys, j));
            if (!a || !b || EVP_PKEY_eq(a, b) == 1) {
                *err = apr_psprintf(p, j == 0
                                    ? "the previous CA in %s has the same "
                                      "key as the CA: not a rollover"
                                    : "the previous CA in %s has the same "
                                      "key as another previous CA",
                                    prev_files[i]);
                return CA_ECONFIG;
            }
        }
        /* insertion, newest first; from[]: its file */
        for (j = sk_X509_num(all);
             j > 0 && newer_first(x, sk_X509_value(all, j - 1)) < 0; j--) {
            from[j] = from[j - 1];
        }
        sk_X509_insert(all, X509_dup(x), j);
        from[j] = i;
        sk_X509_push(keys, X509_dup(x));
    }
    ca->previous_all = all;
    ca->previous_from = from;
    ca->previous = sk_X509_num(all) ? sk_X509_value(all, 0) : NULL;
    ca->publish = ca_pool_x509_stack(p, sk_X509_new_null());
    pem = ca->cert_pem;   /* the CA and its chain */
    for (i = 0; i < sk_X509_num(ca->chain); i++) {
        sk_X509_push(ca->publish, X509_dup(sk_X509_value(ca->chain, i)));
    }
    for (i = 0; i < sk_X509_num(all); i++) {
        sk_X509_push(ca->publish, X509_dup(sk_X509_value(all, i)));
        pem = apr_pstrcat(p, pem, ca_x509_pem(p, sk_X509_value(all, i)),
                          NULL);
    }
    for (k = 0; k < n_links; k++) {
        STACK_OF(X509) *links = NULL;
        if (read_certs(p, links_files[k], &links, err) != APR_SUCCESS) {
            return CA_ECONFIG;
        }
        for (i = 0; i < sk_X509_num(links); i++) {
            /* a link joins two CA generations of this server: its key is
             * one's, its signature the other's (NewWithOld, OldWithNew) */
            X509 *l = sk_X509_value(links, i);
            EVP_PKEY *lk = X509_get0_pubkey(l);
            int ok = 0, a, b;
            for (a = 0; !ok && a < sk_X509_num(keys); a++) {
                EVP_PKEY *ka = X509_get0_pubkey(sk_X509_value(keys, a));
                if (!lk || EVP_PKEY_eq(lk, ka) != 1) {
                    continue;
                }
                for (b = 0; !ok && b < sk_X509_num(keys); b++) {
                    ok = b != a
                         && X509_verify(l, X509_get0_pubkey(
                                               sk_X509_value(keys, b))) == 1;
                }
            }
            ERR_clear_error();
            if (!ok) {
                *err = apr_psprintf(p, "certificate %d in %s links neither "
                                    "the CA's key to the previous CA "
                                    "(NewWithOld) nor the previous CA's key "
                                    "to the CA (OldWithNew)%s", i + 1,
                                    links_files[k], n_prev > 1
                                    ? " (nor two previous CAs)" : "");
                return CA_ECONFIG;
            }
            sk_X509_push(ca->publish, X509_dup(l));
            pem = apr_pstrcat(p, pem, ca_x509_pem(p, l), NULL);
        }
    }
    ca->publish_pem = pem;
    return APR_SUCCESS;
}

apr_status_t ca_set_previous(ca_t *ca, apr_pool_t *p, const char *prev_file,
                             const char *links_file, const char **err)
{
    return ca_set_previous_n(ca, p, &prev_file, 1, &links_file,
                             links_file ? 1 : 0, err);
}

static const char *kid_hex(apr_pool_t *p, const unsigned char *d, int n)
{
    static const char digits[] = "0123456789abcdef";
    char *out = apr_palloc(p, (apr_size_t)n * 2 + 1);
    int i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

ASN1_OCTET_STRING *ca_pubkey_key_id(X509 *x)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    ASN1_OCTET_STRING *os;

    if (!X509_pubkey_digest(x, EVP_sha1(), md, &n)) {
        return NULL;
    }
    os = ASN1_OCTET_STRING_new();
    if (os && !ASN1_OCTET_STRING_set(os, md, (int)n)) {
        ASN1_OCTET_STRING_free(os);
        os = NULL;
    }
    return os;
}

ASN1_OCTET_STRING *ca_key_id_of(X509 *x)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);

    return ski ? ASN1_OCTET_STRING_dup(ski) : ca_pubkey_key_id(x);
}

const char *ca_cert_key_id(apr_pool_t *p, X509 *x)
{
    ASN1_OCTET_STRING *kid = ca_key_id_of(x);
    const char *hex = kid ? kid_hex(p, ASN1_STRING_get0_data(kid),
                                    ASN1_STRING_length(kid))
                          : "";

    ASN1_OCTET_STRING_free(kid);
    return hex;
}

const char *ca_cert_issuer_key_id(apr_pool_t *p, X509 *x)
{
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);

    return aki ? kid_hex(p, ASN1_STRING_get0_data(aki),
                         ASN1_STRING_length(aki))
               : "";
}

const char *ca_pem_issuer_key_id(apr_pool_t *p, const char *pem)
{
    BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    const char *kid = x ? ca_cert_issuer_key_id(p, x) : "";

    X509_free(x);
    BIO_free(b);
    return kid;
}
