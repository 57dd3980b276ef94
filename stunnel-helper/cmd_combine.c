/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* cmd_combine.c: certauth-stunnel combine: the how-to's `cat key.pem cert.pem`, validated and
 * written safely. */

#include "certauth_stunnel.h"

int cmd_combine(apr_pool_t *p, const opts_t *o)
{
    const char *files[3];
    char *data[3] = {NULL, NULL, NULL}, *all;
    apr_size_t len[3] = {0, 0, 0}, total = 0;
    kc_bundle_t *b = NULL;
    kc_out_t *out = NULL;
    const char *err = NULL, *pw;
    apr_status_t rv;
    int i, code;
    char buf[120];

    REQUIRE(o, key, "--key");
    REQUIRE(o, cert, "--cert");
    REQUIRE(o, out, "--out");
    files[0] = o->key;
    files[1] = o->cert;
    files[2] = o->chain_file;
    for (i = 0, rv = APR_SUCCESS; i < 3 && rv == APR_SUCCESS; i++) {
        if (files[i]) {
            rv = ca_file_read(p, files[i], 1024 * 1024, &data[i], &len[i]);
            total += len[i] + 1;
        }
    }
    if (rv != APR_SUCCESS) {
        OPENSSL_cleanse(data[0], len[0]); /* the key */
        return fail(CS_LOCAL, apr_psprintf(
            p, "%s: cannot read: %s", files[i - 1],
            apr_strerror(rv, buf, sizeof(buf))));
    }
    /* the files one after the other, each ending with a line break, in a
     * buffer cleansed with the pool */
    all = kc_secret_alloc(p, total + 1);
    for (i = 0, total = 0; i < 3; i++) {
        if (files[i]) {
            memcpy(all + total, data[i], len[i]);
            all[total + len[i]] = '\n';
            total += len[i] + 1;
            OPENSSL_cleanse(data[i], len[i]);
        }
    }
    rv = kc_parse(p, all, total, NULL, 1, &b, &err);
    if (rv != APR_SUCCESS && strstr(err, "encrypted")) {
        if (!(pw = get_password(p, o, apr_psprintf(p, "Pass phrase for %s: ",
                                                   o->key), &code, &err))) {
            return fail(code, err);
        }
        rv = kc_parse(p, all, total, pw, 1, &b, &err);
    }
    OPENSSL_cleanse(all, total);
    if (rv != APR_SUCCESS) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s + %s: %s", o->key, o->cert,
                                           err));
    }
    if (ca_asn1_time_to_epoch(X509_get0_notAfter(b->cert)) < now_sec()) {
        fprintf(stderr, PROG ": warning: the certificate expired on %s\n",
                kc_time_str(p, X509_get0_notAfter(b->cert)));
    }
    if ((code = take_lock(p, o, o->out))
        || (code = refuse_existing(p, o, o->out))) {
        return code;
    }
    if (kc_out_open(p, o->out, 0600, &out, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    if ((code = write_keycert(p, o, out, o->out, b->key, b->cert, b->chain,
                              "combined"))) {
        return code;
    }
    return do_reload(p, o);
}
