/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ep_rollover.c: GET crl/previous[.pem]: after a rollover, the previous
 * CA's CRL, for the certificates it issued, until it expires.  It is the
 * current CRL (the one GET crl serves: same number, dates and entries)
 * issued and signed by the previous CA (ca_crl_resign), made from the
 * stored CRL on each request: the previous CA's CRL is asked for by the
 * holders of its remaining certificates only. */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include "mod_certauth.h"
#include "ca_crl.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

int certauth_crl_previous(request_rec *r, int pem)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    apr_int64_t number = 0, tu = 0, nu = 0, na;
    const char *b64 = NULL, *err = NULL;
    unsigned char *der = NULL, *out = NULL;
    apr_size_t len = 0, out_len = 0;
    ca_store_t *st;
    apr_status_t rv;
    int status = 0, listed = 0;

    /* request checks (GET/HEAD: the dispatcher; no body, no identity) */
    if (!sc->prev_ca) {
        return certauth_error(r, HTTP_NOT_FOUND, "not found",
                              "this CA has no previous CA whose CRL it "
                              "signs (CertAuthPreviousCAKeyFile)");
    }
    na = ca_asn1_time_to_epoch(X509_get0_notAfter(sc->prev_ca->cert));
    if (now >= na) {
        return certauth_error(r, HTTP_NOT_FOUND, "not found",
                              "the previous CA has expired, and every "
                              "certificate it issued with it");
    }
    if (!(st = certauth_store(r, &status))) {
        return status;
    }
    rv = ca_store_crl_get(st, r->pool, &number, &tu, &nu, &b64);
    if (rv == APR_SUCCESS && (number == 0 || now >= tu + (nu - tu) / 2)) {
        /* none yet, or due: the next CRL, as GET crl would make it */
        int locked = certauth_db_lock(r);
        rv = ca_crl_make(r->pool, sc->ca, st, sc->crl_days,
                         sc->crl_retention_days, now, &number, &der, &len,
                         &listed, &err);
        certauth_db_unlock(r, locked);
        if (rv == CA_ECONFLICT) {
            /* another process was first: take its CRL */
            rv = ca_store_crl_get(st, r->pool, &number, &tu, &nu, &b64);
            der = NULL;
        }
        else if (rv == APR_SUCCESS) {
            tu = now;
            nu = now + (apr_int64_t)sc->crl_days * 86400;
        }
    }
    if (rv == APR_SUCCESS && !der
        && ca_base64_decode(r->pool, b64, strlen(b64), &der, &len)
               != APR_SUCCESS) {
        err = "the stored CRL cannot be decoded";
        rv = CA_ECRYPTO;
    }
    if (rv == APR_SUCCESS) {
        rv = ca_crl_resign(r->pool, sc->prev_ca, der, len, &out, &out_len,
                           &err);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(1807)
                      "the previous CA's CRL: %s",
                      err ? err : ca_store_last_error(st));
        return certauth_error(r, HTTP_SERVICE_UNAVAILABLE, "no CRL",
                              "the previous CA's CRL cannot be made now; "
                              "try again later");
    }
    apr_table_setn(r->headers_out, "ETag",
                   apr_psprintf(r->pool, "\"crl-previous-%" APR_INT64_T_FMT
                                "\"", number));
    apr_table_setn(r->headers_out, "Cache-Control",
                   apr_psprintf(r->pool, "public, max-age=%" APR_INT64_T_FMT,
                                nu > now ? nu - now : 0));
    if (pem) {
        const char *text = ca_crl_pem(r->pool, out, out_len);
        return certauth_send(r, HTTP_OK, "application/x-pem-file", text,
                             strlen(text));
    }
    return certauth_send(r, HTTP_OK, "application/pkix-crl", out, out_len);
}
