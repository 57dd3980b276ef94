/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* cmd_split_p12.c: certauth-stunnel split-p12: a PKCS#12 file to usercert.pem and userkey.pem
 * (the CERN/WLCG conversion). */

#include "certauth_stunnel.h"

int cmd_split(apr_pool_t *p, const opts_t *o)
{
    const char *certpath, *keypath, *err = NULL, *pass = NULL, *newpass = NULL;
    char *data = NULL, *kpem = NULL, *cpem = NULL;
    apr_size_t len = 0, klen = 0, clen = 0;
    const unsigned char *q;
    PKCS12 *p12;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL;
    kc_out_t *kout = NULL, *cout = NULL;
    struct stat st;
    apr_status_t rv;
    int code;
    char buf[120];

    REQUIRE(o, in, "--in");
    REQUIRE(o, out_dir, "--out-dir");
    rv = ca_file_read(p, o->in, 16 * 1024 * 1024, &data, &len);
    if (rv != APR_SUCCESS) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s: cannot read: %s", o->in,
                                           apr_strerror(rv, buf,
                                                        sizeof(buf))));
    }
    q = (const unsigned char *)data;
    p12 = d2i_PKCS12(NULL, &q, (long)len);
    if (!p12) {
        ERR_clear_error();
        return fail(CS_LOCAL, apr_psprintf(p, "%s: not a PKCS#12 file",
                                           o->in));
    }
    apr_pool_cleanup_register(p, p12, p12_cleanup, apr_pool_cleanup_null);
    certpath = apr_pstrcat(p, o->out_dir, "/usercert.pem", NULL);
    keypath = apr_pstrcat(p, o->out_dir, "/userkey.pem", NULL);
    if (!o->force) {
        if (stat(certpath, &st) == 0 || stat(keypath, &st) == 0) {
            return fail(CS_LOCAL, apr_psprintf(
                p, "%s already holds usercert.pem or userkey.pem; use "
                   "--force (and --backup) to replace them", o->out_dir));
        }
    }
    /* the import password: none, empty, or asked for */
    if (PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, NULL, 0)
        && !PKCS12_verify_mac(p12, "", 0)) {
        if (!(pass = get_password(p, o, "Enter Import Password: ", &code,
                                  &err))) {
            return fail(code, err);
        }
        if (!PKCS12_verify_mac(p12, pass, -1)) {
            ERR_clear_error();
            return fail(CS_LOCAL, apr_psprintf(p, "%s: wrong import password "
                                               "(MAC verification failed)",
                                               o->in));
        }
    }
    ERR_clear_error();
    if (!PKCS12_parse(p12, pass, &key, &cert, &ca)) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s: cannot decrypt: %s",
                                           o->in, ca_log_ssl_errors(p)));
    }
    ca_pool_pkey(p, key);
    ca_pool_x509(p, cert);
    ca_pool_x509_stack(p, ca);
    if (!key || !cert) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s: %s", o->in,
                                           !key ? "holds no private key"
                                                : "holds no certificate for "
                                                  "its key"));
    }
    if (!kc_key_matches(cert, key)) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s: the key does not match "
                                           "the certificate", o->in));
    }
    if (!o->nodes) {
        if (!(newpass = get_secret(p, o->newpassfile, "CERTAUTH_NEW_PASSWORD",
                                   "Enter PEM pass phrase: ",
                                   "Verifying - Enter PEM pass phrase: ",
                                   "no new pass phrase for userkey.pem: give "
                                   "--new-password-file FILE, set "
                                   "CERTAUTH_NEW_PASSWORD, give --nodes, or "
                                   "run on a terminal", &code, &err))) {
            return fail(code, err);
        }
        if (strlen(newpass) < 4) {
            return fail(CS_USAGE, "the new pass phrase needs at least 4 "
                                  "characters");
        }
    }
    if (kc_pem(p, key, newpass, NULL, NULL, &kpem, &klen, &err)
            != APR_SUCCESS
        || kc_pem(p, NULL, NULL, cert, NULL, &cpem, &clen, &err)
               != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    if (mkdir(o->out_dir, 0700) != 0 && errno != EEXIST) {
        return fail(CS_LOCAL, apr_psprintf(p, "cannot create %s: %s",
                                           o->out_dir, strerror(errno)));
    }
    if (kc_out_open(p, keypath, 0600, &kout, &err) != APR_SUCCESS
        || kc_out_open(p, certpath, 0644, &cout, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    if (kc_out_commit(kout, kpem, klen,
                      o->backup ? apr_pstrcat(p, keypath, ".bak", NULL)
                                : NULL, &err) != APR_SUCCESS
        || kc_out_commit(cout, cpem, clen,
                         o->backup ? apr_pstrcat(p, certpath, ".bak", NULL)
                                   : NULL, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    if (!o->quiet) {
        printf("wrote %s (0644): subject=%s\n", certpath,
               kc_name_oneline(p, X509_get_subject_name(cert)));
        printf("wrote %s (0600, %s)\n", keypath,
               o->nodes ? "not encrypted" : "encrypted with the new pass "
                                            "phrase");
        if (sk_X509_num(ca) > 0) {
            printf("not written: %d CA certificate%s from the PKCS#12\n",
                   sk_X509_num(ca), sk_X509_num(ca) == 1 ? "" : "s");
        }
    }
    return CS_OK;
}
