/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* cmd_renew.c: certauth-stunnel renew: when due, a new certificate for the one in the file,
 * authenticated by it (EST simplereenroll), then stunnel reloaded. */

#include "certauth_stunnel.h"

int cmd_renew(apr_pool_t *p, const opts_t *o)
{
    const char *path = o->out ? o->out : o->in;
    kc_bundle_t *b = NULL;
    est_client_t c;
    est_rc_t erc;
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    STACK_OF(X509) *cacerts = NULL, *answer = NULL, *chain = NULL;
    X509 *leaf = NULL;
    X509_EXTENSION *san = NULL;
    kc_out_t *out = NULL;
    const char *err = NULL;
    char *kp = NULL, *cp = NULL;
    apr_size_t kl = 0, cl = 0;
    apr_int64_t now = now_sec(), nb, na;
    int code, idx;

    REQUIRE(o, url, "--url");
    REQUIRE(o, in, "--in");
    if ((code = check_readable(p, "--ca", o->ca))) {
        return code;
    }
    /* no lock file next to a mistyped --in: its error first */
    if (access(o->in, F_OK) != 0
        && kc_load(p, o->in, NULL, 1, &b, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    if ((code = take_lock(p, o, path))) {
        return code;
    }
    if (kc_load(p, o->in, NULL, 1, &b, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    nb = ca_asn1_time_to_epoch(X509_get0_notBefore(b->cert));
    na = ca_asn1_time_to_epoch(X509_get0_notAfter(b->cert));
    if (!o->force
        && !kc_renewal_due(now, nb, na, o->within_set ? o->within : -1)) {
        if (!o->quiet) {
            printf("not due %s: serial=%s notAfter=%s (expires %s)\n", o->in,
                   ca_serial_hex(p, X509_get0_serialNumber(b->cert)),
                   kc_time_str(p, X509_get0_notAfter(b->cert)),
                   left_str(p, na - now));
        }
        return CS_OK;
    }
    if (now > na) {
        return fail(CS_REFUSED, apr_psprintf(
            p, "%s: the certificate expired on %s; the CA does not renew an "
               "expired certificate: enroll again", o->in,
            kc_time_str(p, X509_get0_notAfter(b->cert))));
    }
    if (o->same_key) {
        key = b->key;
    }
    else {
        const char *kt = o->key_type ? o->key_type : kc_key_type(p, b->key);
        if (ca_key_generate(p, kt ? kt : "ec", &key, &err) != APR_SUCCESS) {
            return usage("--key-type: %s", err);
        }
    }
    idx = X509_get_ext_by_NID(b->cert, NID_subject_alt_name, -1);
    if (idx >= 0) {
        san = X509_get_ext(b->cert, idx);
    }
    if (kc_make_csr(p, key, X509_get_subject_name(b->cert), san, NULL, &req,
                    &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    /* an unwritable directory or a full disk shows now, before the CA
     * issues a certificate and supersedes this one */
    if (kc_out_open(p, path, 0600, &out, &err) != APR_SUCCESS
        || kc_out_reserve(out, KC_RESERVE, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    /* the client certificate: the file's certificate and chain */
    if (kc_pem(p, NULL, NULL, b->cert, b->chain, &cp, &cl, &err)
            != APR_SUCCESS
        || kc_pem(p, b->key, NULL, NULL, NULL, &kp, &kl, &err)
               != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    client_init(o, &c);
    c.cert_pem = cp;
    c.key_pem = kp;
    note(o, "asking %s", est_op_url(p, &c, "cacerts"));
    if ((erc = est_cacerts(p, &c, &cacerts, &err)) != EST_OK) {
        return fail(est_exit(erc), err);
    }
    note(o, "asking %s for serial %s", est_op_url(p, &c, "simplereenroll"),
         ca_serial_hex(p, X509_get0_serialNumber(b->cert)));
    if ((erc = est_enroll(p, &c, 1, req, &answer, &err)) != EST_OK) {
        if (erc == EST_REFUSED && !strstr(err, "enroll again")
            && !strstr(err, "renewal opens")) {
            err = apr_pstrcat(p, err, " (a revoked, superseded or expired "
                              "certificate cannot renew: enroll again)",
                              NULL);
        }
        return fail(est_exit(erc), err);
    }
    if ((code = accept_issued(p, o, key, answer, cacerts, &leaf, &chain,
                              &err))) {
        return fail(code, err);
    }
    if (X509_NAME_cmp(X509_get_subject_name(leaf),
                      X509_get_subject_name(b->cert)) != 0) {
        return fail(CS_UNREACHABLE, apr_psprintf(
            p, "the CA issued a certificate for another subject (%s)",
            kc_name_oneline(p, X509_get_subject_name(leaf))));
    }
    if ((code = write_keycert(p, o, out, path, key, leaf, chain,
                              "renewed"))) {
        return code;
    }
    return do_reload(p, o);
}
