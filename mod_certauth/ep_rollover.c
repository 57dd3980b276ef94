/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ep_rollover.c: GET crl/previous[.pem]: after a rollover, the previous
 * CA's CRL, for the certificates it issued, until it expires.  It is the
 * current CRL (the one GET crl serves: same number, dates and entries)
 * issued and signed by the previous CA (ca_crl_resign), made from the
 * stored CRL when its number changes and kept by each process until then
 * (the state row tells the number cheaply). */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "mod_certauth.h"
#include "ca_crl.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

/* The previous CA's CRL last made by this process, per previous CA. */
typedef struct {
    apr_pool_t *pool;          /* holds der; replaced with it            */
    apr_int64_t number, this_update, next_update;
    unsigned char *der;
    apr_size_t len;
} prev_crl;

static apr_pool_t *cache_pool;
static apr_hash_t *cache;      /* ca_t* of the previous CA -> prev_crl*   */
#if APR_HAS_THREADS
static apr_thread_mutex_t *cache_lock;
#endif

void certauth_rollover_child_init(apr_pool_t *p)
{
    apr_pool_create(&cache_pool, p);
    cache = apr_hash_make(cache_pool);
#if APR_HAS_THREADS
    apr_thread_mutex_create(&cache_lock, APR_THREAD_MUTEX_DEFAULT, p);
#endif
}

/* A copy (in r's pool) of the cached CRL of this number, or NULL. */
static const unsigned char *cached(request_rec *r, const ca_t *prev,
                                   apr_int64_t number, apr_int64_t tu,
                                   apr_size_t *len)
{
    const unsigned char *out = NULL;
    prev_crl *c;

    if (!cache) {
        return NULL;
    }
#if APR_HAS_THREADS
    apr_thread_mutex_lock(cache_lock);
#endif
    c = apr_hash_get(cache, &prev, sizeof(prev));
    if (c && c->number == number && c->this_update == tu) {
        out = apr_pmemdup(r->pool, c->der, c->len);
        *len = c->len;
    }
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(cache_lock);
#endif
    return out;
}

static void keep(const ca_t *prev, apr_int64_t number, apr_int64_t tu,
                 apr_int64_t nu, const unsigned char *der, apr_size_t len)
{
    prev_crl *c;
    apr_pool_t *p;

    if (!cache) {
        return;
    }
#if APR_HAS_THREADS
    apr_thread_mutex_lock(cache_lock);
#endif
    c = apr_hash_get(cache, &prev, sizeof(prev));
    if (!c) {
        const ca_t **k = apr_palloc(cache_pool, sizeof(*k));
        *k = prev;
        c = apr_pcalloc(cache_pool, sizeof(*c));
        apr_hash_set(cache, k, sizeof(*k), c);
    }
    if (!c->pool || c->number < number
        || (c->number == number && c->this_update != tu)) {
        apr_pool_create(&p, cache_pool);
        if (c->pool) {
            apr_pool_destroy(c->pool);
        }
        c->pool = p;
        c->der = apr_pmemdup(p, der, len);
        c->len = len;
        c->number = number;
        c->this_update = tu;
        c->next_update = nu;
    }
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(cache_lock);
#endif
}

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

    /* the route table (routes.c) checked the method: GET/HEAD, anyone */
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
    rv = ca_store_crl_head(st, r->pool, &number, &tu, &nu);
    if (rv == APR_SUCCESS && (number == 0 || now >= tu + (nu - tu) / 2)) {
        /* none yet, or due: the next CRL, as GET crl would make it */
        if (!certauth_db_lock_r(r)) {
            return certauth_error(r, HTTP_SERVICE_UNAVAILABLE, "busy",
                                  "another process makes a CRL; try again");
        }
        rv = ca_crl_make(r->pool, sc->ca, st, sc->crl_days,
                         sc->crl_retention_days, now, &number, &der, &len,
                         &listed, &err);
        certauth_db_unlock();
        if (rv == CA_ECONFLICT) {
            /* another process was first: take its CRL */
            rv = ca_store_crl_head(st, r->pool, &number, &tu, &nu);
            der = NULL;
        }
        else if (rv == APR_SUCCESS) {
            tu = now;
            nu = now + (apr_int64_t)sc->crl_days * 86400;
        }
    }
    if (rv == APR_SUCCESS
        && !(out = (unsigned char *)cached(r, sc->prev_ca, number, tu,
                                           &out_len))) {
        if (!der) {
            rv = ca_store_crl_get(st, r->pool, &number, &tu, &nu, &b64);
            if (rv == APR_SUCCESS
                && ca_base64_decode(r->pool, b64, strlen(b64), &der, &len)
                       != APR_SUCCESS) {
                err = "the stored CRL cannot be decoded";
                rv = CA_ECRYPTO;
            }
        }
        if (rv == APR_SUCCESS) {
            rv = ca_crl_resign(r->pool, sc->prev_ca, der, len, &out,
                               &out_len, &err);
        }
        if (rv == APR_SUCCESS) {
            keep(sc->prev_ca, number, tu, nu, out, out_len);
        }
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
