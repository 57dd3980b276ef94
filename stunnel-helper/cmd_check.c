/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* cmd_check.c: certauth-stunnel check: what a key-cert file holds, whether the key matches and
 * the chain verifies; exit codes for monitoring. */

#include "certauth_stunnel.h"

int cmd_check(apr_pool_t *p, const opts_t *o)
{
    kc_bundle_t *b = NULL;
    const char *err = NULL, *why = NULL;
    apr_int64_t now = now_sec(), nb, na;
    X509 *x;
    int status = CS_OK;

    REQUIRE(o, in, "--in");
    if (kc_load(p, o->in, NULL, 1, &b, &err) != APR_SUCCESS) {
        printf("CRITICAL: %s\n", err);
        return CS_INVALID;
    }
    x = b->cert;
    printf("subject=%s\n", kc_name_oneline(p, X509_get_subject_name(x)));
    printf("issuer=%s\n", kc_name_oneline(p, X509_get_issuer_name(x)));
    printf("serial=%s\n", ca_serial_hex(p, X509_get0_serialNumber(x)));
    printf("notBefore=%s\n", kc_time_str(p, X509_get0_notBefore(x)));
    printf("notAfter=%s\n", kc_time_str(p, X509_get0_notAfter(x)));
    printf("key=%s, matches the certificate\n",
           ca_key_describe(p, b->key));
    nb = ca_asn1_time_to_epoch(X509_get0_notBefore(x));
    na = ca_asn1_time_to_epoch(X509_get0_notAfter(x));
    if (o->ca) {
        X509_STORE *st = store_from(p, o->ca, NULL, &err);
        if (!st) {
            printf("CRITICAL: %s\n", err);
            return CS_INVALID;
        }
        if (!verify_chain(p, st, x, b->chain, 0, &why)) {
            printf("chain=does not verify with %s: %s\n", o->ca, why);
            status = CS_INVALID;
        }
        else {
            printf("chain=verified with %s (%d certificate%s in the file "
                   "after the leaf)\n", o->ca, sk_X509_num(b->chain),
                   sk_X509_num(b->chain) == 1 ? "" : "s");
        }
        X509_STORE_free(st);
    }
    else {
        printf("chain=not verified (no --ca); %d certificate%s after the "
               "leaf\n", sk_X509_num(b->chain),
               sk_X509_num(b->chain) == 1 ? "" : "s");
    }
    if (now < nb) {
        printf("CRITICAL: %s: not valid before %s\n", o->in,
               kc_time_str(p, X509_get0_notBefore(x)));
        return CS_INVALID;
    }
    if (now > na) {
        printf("CRITICAL: %s: expired on %s\n", o->in,
               kc_time_str(p, X509_get0_notAfter(x)));
        return CS_INVALID;
    }
    if (status == CS_INVALID) {
        printf("CRITICAL: %s: the chain does not verify: %s\n", o->in, why);
        return CS_INVALID;
    }
    if (na - now <= (apr_int64_t)o->warn_days * 86400) {
        printf("WARNING: %s: expires %s (%s), within %d days\n", o->in,
               left_str(p, na - now), kc_time_str(p, X509_get0_notAfter(x)),
               o->warn_days);
        return CS_EXPIRING;
    }
    printf("OK: %s: expires %s (%s)\n", o->in, left_str(p, na - now),
           kc_time_str(p, X509_get0_notAfter(x)));
    return CS_OK;
}
