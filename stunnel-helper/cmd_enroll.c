/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* cmd_enroll.c: certauth-stunnel enroll: a new key and certificate with the site's login (EST
 * simpleenroll). */

#include "certauth_stunnel.h"

int cmd_enroll(apr_pool_t *p, const opts_t *o)
{
    est_client_t c;
    est_rc_t erc;
    X509_NAME *subject = NULL;
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    STACK_OF(X509) *cacerts = NULL, *answer = NULL, *chain = NULL;
    X509 *leaf = NULL;
    kc_out_t *out = NULL;
    const char *err = NULL, *pw, *sans = NULL;
    int code = 0, i;

    REQUIRE(o, url, "--url");
    REQUIRE(o, user, "--user");
    REQUIRE(o, out, "--out");
    if (!o->cn && !o->subject) {
        return usage("%s", "--cn NAME (or --subject DN) is required");
    }
    if ((code = check_readable(p, "--ca", o->ca))
        || (code = take_lock(p, o, o->out))
        || (code = refuse_existing(p, o, o->out))) {
        return code;
    }
    if (o->subject) {
        if (ca_name_parse(p, o->subject, &subject, &err) != APR_SUCCESS) {
            return usage("--subject: %s", err);
        }
    }
    else {
        subject = X509_NAME_new();
        if (!subject
            || !X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                           (const unsigned char *)o->cn, -1,
                                           -1, 0)) {
            X509_NAME_free(subject);
            ERR_clear_error();
            return usage("--cn '%s' cannot be a common name", o->cn);
        }
        apr_pool_cleanup_register(p, subject, name_cleanup,
                                  apr_pool_cleanup_null);
    }
    for (i = 0; i < o->sans->nelts; i++) {
        const char *s = APR_ARRAY_IDX(o->sans, i, const char *);
        sans = sans ? apr_pstrcat(p, sans, ",", s, NULL) : s;
    }
    if (!(pw = get_password(p, o, apr_psprintf(p, "Password for %s: ",
                                               o->user), &code, &err))) {
        return fail(code, err);
    }
    if (ca_key_generate(p, o->key_type ? o->key_type : "ec", &key, &err)
        != APR_SUCCESS) {
        return usage("--key-type: %s", err);
    }
    if (kc_make_csr(p, key, subject, NULL, sans, &req, &err)
        != APR_SUCCESS) {
        return fail(CS_USAGE, err);
    }
    /* an unwritable directory or a full disk shows now, before the CA is
     * asked */
    if (kc_out_open(p, o->out, 0600, &out, &err) != APR_SUCCESS
        || kc_out_reserve(out, KC_RESERVE, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    client_init(o, &c);
    /* cacerts is public: the password goes to simpleenroll only */
    note(o, "asking %s", est_op_url(p, &c, "cacerts"));
    if ((erc = est_cacerts(p, &c, &cacerts, &err)) != EST_OK) {
        return fail(est_exit(erc), err);
    }
    c.user = o->user;
    c.password = pw;
    note(o, "asking %s", est_op_url(p, &c, "simpleenroll"));
    if ((erc = est_enroll(p, &c, 0, req, &answer, &err)) != EST_OK) {
        return fail(est_exit(erc), err);
    }
    if ((code = accept_issued(p, o, key, answer, cacerts, &leaf, &chain,
                              &err))) {
        return fail(code, err);
    }
    if ((code = write_keycert(p, o, out, o->out, key, leaf, chain,
                              "enrolled"))) {
        return code;
    }
    return do_reload(p, o);
}
