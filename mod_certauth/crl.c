/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* crl.c: the CRL: made when a revocation happens and before nextUpdate,
 * kept in the database (so that every front end serves the same CRL number)
 * and in a cache file in the runtime directory that all children of this
 * server read.  A child reloads the file when it changes (one stat per
 * request), and asks the database at most every CertAuthCRLRefresh seconds
 * whether another front end made a newer one. */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>
#include <apr_atomic.h>
#include <apr_buckets.h>
#include <apr_file_info.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "mod_certauth.h"
#include "ca_crl.h"
#include "ca_lifecycle.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

#define CRL_MAGIC "CERTAUTHCRL1"
#define CRL_MAX_FILE (512 * 1024 * 1024)

/* One loaded CRL, shared by the requests that serve it. */
typedef struct crl_blob {
    apr_pool_t *pool;
    volatile apr_uint32_t refs;
    apr_int64_t number, this_update, next_update;
    const unsigned char *der;
    apr_size_t len;
    const char *pem;             /* made on first use, under the lock      */
    const char *etag;
} crl_blob;

/* Per cache file, per process. */
typedef struct crl_cache {
    crl_blob *blob;
    apr_ino_t ino;
    apr_time_t mtime;
    apr_off_t size;
    apr_time_t db_checked;
} crl_cache;

static apr_pool_t *cache_pool;
static apr_hash_t *caches;
#if APR_HAS_THREADS
static apr_thread_mutex_t *cache_lock;
#endif

static void lock(void)
{
#if APR_HAS_THREADS
    if (cache_lock) {
        apr_thread_mutex_lock(cache_lock);
    }
#endif
}

static void unlock(void)
{
#if APR_HAS_THREADS
    if (cache_lock) {
        apr_thread_mutex_unlock(cache_lock);
    }
#endif
}

void certauth_crl_child_init(apr_pool_t *p, server_rec *s)
{
    (void)s;
    apr_pool_create(&cache_pool, p);
    caches = apr_hash_make(cache_pool);
#if APR_HAS_THREADS
    apr_thread_mutex_create(&cache_lock, APR_THREAD_MUTEX_DEFAULT, p);
#endif
}

static void blob_release(crl_blob *b)
{
    if (b && apr_atomic_dec32(&b->refs) == 0) {
        apr_pool_destroy(b->pool);
    }
}

static apr_status_t blob_cleanup(void *data)
{
    blob_release(data);
    return APR_SUCCESS;
}

/* A bucket over a blob's bytes that holds a reference to the blob: the
 * core output filter may keep buckets after the request (write completion
 * of the event MPM), so the bytes must live as long as the bucket, not
 * the request.  Shared buckets, so split and copy keep the reference. */
typedef struct {
    apr_bucket_refcount refcount;
    crl_blob *blob;
    const char *base;
} crl_bucket_data;

static apr_status_t crl_bucket_read(apr_bucket *e, const char **str,
                                    apr_size_t *len, apr_read_type_e block)
{
    crl_bucket_data *d = e->data;
    (void)block;
    *str = d->base + e->start;
    *len = e->length;
    return APR_SUCCESS;
}

static void crl_bucket_destroy(void *data)
{
    crl_bucket_data *d = data;
    if (apr_bucket_shared_destroy(d)) {
        blob_release(d->blob);
        apr_bucket_free(d);
    }
}

static const apr_bucket_type_t crl_bucket_type = {
    "CERTAUTH-CRL", 5, APR_BUCKET_DATA, crl_bucket_destroy, crl_bucket_read,
    apr_bucket_setaside_noop, apr_bucket_shared_split, apr_bucket_shared_copy
};

static apr_bucket *crl_bucket_create(crl_blob *b, const char *base,
                                     apr_size_t len, apr_bucket_alloc_t *list)
{
    apr_bucket *e = apr_bucket_alloc(sizeof(*e), list);
    crl_bucket_data *d = apr_bucket_alloc(sizeof(*d), list);

    APR_BUCKET_INIT(e);
    e->free = apr_bucket_free;
    e->list = list;
    apr_atomic_inc32(&b->refs);
    d->blob = b;
    d->base = base;
    e = apr_bucket_shared_make(e, d, 0, len);
    e->type = &crl_bucket_type;
    return e;
}

/* Read the cache file into a new blob; NULL when absent or bad. */
static crl_blob *blob_load(const char *path, apr_finfo_t *fi)
{
    apr_pool_t *p;
    crl_blob *b;
    char *data, *nl;
    apr_size_t len;
    long long num, tu, nu;
    unsigned long long dlen;

    apr_pool_create(&p, NULL);
    if (ca_file_read(p, path, CRL_MAX_FILE, &data, &len) != APR_SUCCESS
        || !(nl = memchr(data, '\n', len > 200 ? 200 : len))
        || sscanf(data, CRL_MAGIC " %lld %lld %lld %llu", &num, &tu, &nu,
                  &dlen) != 4
        || (apr_size_t)(nl + 1 - data) + dlen != len) {
        apr_pool_destroy(p);
        return NULL;
    }
    b = apr_pcalloc(p, sizeof(*b));
    b->pool = p;
    b->refs = 1;
    b->number = num;
    b->this_update = tu;
    b->next_update = nu;
    b->der = (const unsigned char *)nl + 1;
    b->len = (apr_size_t)dlen;
    b->etag = apr_psprintf(p, "\"crl-%" APR_INT64_T_FMT "\"", (apr_int64_t)num);
    (void)fi;
    return b;
}

/* Bring this process's copy up to date with the file; under lock(). */
static crl_cache *cache_sync(const char *path)
{
    crl_cache *c = apr_hash_get(caches, path, APR_HASH_KEY_STRING);
    apr_finfo_t fi;

    if (!c) {
        c = apr_pcalloc(cache_pool, sizeof(*c));
        apr_hash_set(caches, apr_pstrdup(cache_pool, path),
                     APR_HASH_KEY_STRING, c);
    }
    if (apr_stat(&fi, path, APR_FINFO_INODE | APR_FINFO_MTIME
                 | APR_FINFO_SIZE, cache_pool) != APR_SUCCESS) {
        return c;
    }
    if (!c->blob || fi.inode != c->ino || fi.mtime != c->mtime
        || fi.size != c->size) {
        crl_blob *b = blob_load(path, &fi);
        if (b && (!c->blob || b->number >= c->blob->number)) {
            blob_release(c->blob);
            c->blob = b;
            c->ino = fi.inode;
            c->mtime = fi.mtime;
            c->size = fi.size;
        }
        else if (b) {
            blob_release(b);
        }
    }
    return c;
}

static apr_status_t write_file(apr_pool_t *p, const char *path,
                               apr_int64_t number, apr_int64_t tu,
                               apr_int64_t nu, const unsigned char *der,
                               apr_size_t len)
{
    const char *head = apr_psprintf(p, CRL_MAGIC " %" APR_INT64_T_FMT " %"
                                    APR_INT64_T_FMT " %" APR_INT64_T_FMT
                                    " %" APR_SIZE_T_FMT "\n", number, tu, nu,
                                    len);
    /* the header, then the DER where it is (no copy of a large CRL) */
    return ca_file_write_atomic2(p, path, head, strlen(head), der, len,
                                 0644);
}

/* Make, store and cache a new CRL. */
static apr_status_t generate(request_rec *r, ca_store_t *st)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    apr_int64_t number = 0;
    unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *err = NULL;
    apr_status_t rv;
    apr_pool_t *p;
    int listed = 0;

    apr_pool_create(&p, r->pool);
    rv = ca_crl_make(p, sc->ca, st, sc->crl_days, sc->crl_retention_days,
                     now, &number, &der, &len, &listed, &err);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(0701)
                      "cannot make a new CRL: %s", err);
        apr_pool_destroy(p);
        return rv;
    }
    rv = write_file(p, sc->crl_cache, number, now,
                    now + (apr_int64_t)sc->crl_days * 86400, der, len);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(0702)
                      "cannot write the CRL cache %s", sc->crl_cache);
    }
    certauth_audit(r, st, NULL, "crl", "", "ok",
                   apr_psprintf(p, "CRL number %" APR_INT64_T_FMT ", %d "
                                "entries", number, listed));
    apr_pool_destroy(p);
    return APR_SUCCESS;
}

/* Copy the database's CRL into the cache file. */
static apr_status_t fetch(request_rec *r, ca_store_t *st)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    apr_int64_t number, tu, nu;
    const char *b64 = NULL;
    unsigned char *der;
    apr_size_t len;
    apr_status_t rv;
    apr_pool_t *p;

    apr_pool_create(&p, r->pool);
    rv = ca_store_crl_get(st, p, &number, &tu, &nu, &b64);
    if (rv == APR_SUCCESS && number > 0) {
        rv = ca_base64_decode(p, b64, strlen(b64), &der, &len);
        if (rv == APR_SUCCESS) {
            rv = write_file(p, sc->crl_cache, number, tu, nu, der, len);
        }
    }
    apr_pool_destroy(p);
    return rv;
}

void certauth_crl_regenerate(request_rec *r, ca_store_t *st)
{
    int locked = certauth_db_lock(r);

    if (generate(r, st) != APR_SUCCESS) {
        /* the revocation is stored but in no CRL yet: have the next CRL
         * request of any front end make one */
        apr_status_t rv = ca_store_crl_invalidate(st, r->pool);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, CA_LOGNO(1403)
                      "no new CRL after a change of status; %s",
                      rv == APR_SUCCESS
                          ? "the next CRL request makes one"
                          : apr_pstrcat(r->pool, "nor could the stored one "
                                        "be marked out of date: ",
                                        ca_store_last_error(st), NULL));
    }
    certauth_db_unlock(r, locked);
}

/* Refresh the cached CRL?  The rule is the core's (ca_lifecycle.c). */
static int due(const crl_blob *b, apr_int64_t now, apr_time_t db_checked,
               int refresh_secs)
{
    return ca_lc_crl_refresh_due(b != NULL, b ? b->this_update : 0,
                                 b ? b->next_update : 0, now,
                                 apr_time_sec(apr_time_now() - db_checked),
                                 refresh_secs);
}

/* Ask the database (and make a CRL when needed); under the global lock. */
static int refresh(request_rec *r, const char *path)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    apr_int64_t number = 0, tu = 0, nu = 0, have;
    ca_store_t *st;
    crl_cache *c;

    lock();
    c = cache_sync(path);
    have = c->blob ? c->blob->number : 0;
    if (!due(c->blob, now, c->db_checked, sc->crl_refresh_secs)) {
        unlock();
        return 0; /* another child did it meanwhile */
    }
    unlock();

    /* quiet: the caller answers (with the cached CRL while it is valid) */
    if (!(st = certauth_store_quiet(r))) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(1402)
                      "database unavailable: cannot check for a newer CRL");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (ca_store_crl_head(st, r->pool, &number, &tu, &nu) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(0703)
                      "reading the CRL state: %s", ca_store_last_error(st));
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (number == 0 || now >= tu + (nu - tu) / 2) {
        if (generate(r, st) != APR_SUCCESS) {
            return HTTP_SERVICE_UNAVAILABLE;
        }
    }
    else {
        apr_int64_t pending = 0;
        /* superseded certificates whose grace ended since this CRL */
        ca_store_count_listable(st, r->pool, tu, now, &pending);
        if (pending > 0) {
            if (generate(r, st) != APR_SUCCESS) {
                return HTTP_SERVICE_UNAVAILABLE;
            }
        }
        else if (number > have && fetch(r, st) != APR_SUCCESS) {
            return HTTP_SERVICE_UNAVAILABLE;
        }
    }
    lock();
    c = cache_sync(path);
    c->db_checked = apr_time_now();
    unlock();
    return 0;
}

int certauth_crl(request_rec *r, int pem)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    crl_cache *c;
    crl_blob *b = NULL;
    int need, status;
    apr_bucket_brigade *bb;
    const void *data;
    apr_size_t len;

    lock();
    c = cache_sync(sc->crl_cache);
    need = due(c->blob, now, c->db_checked, sc->crl_refresh_secs);
    unlock();

    if (need) {
        int locked = certauth_db_lock(r);
        status = refresh(r, sc->crl_cache);
        certauth_db_unlock(r, locked);
        if (status) {
            /* serve what we have while it is still valid */
            lock();
            c = cache_sync(sc->crl_cache);
            b = c->blob && c->blob->next_update > now ? c->blob : NULL;
            unlock();
            if (!b) {
                return status == HTTP_SERVICE_UNAVAILABLE
                           ? certauth_error(r, status, "database unavailable",
                                            "no current CRL; try again later")
                           : status;
            }
        }
    }

    lock();
    c = cache_sync(sc->crl_cache);
    b = c->blob;
    if (b) {
        apr_atomic_inc32(&b->refs);
        if (pem && !b->pem) {
            b->pem = ca_crl_pem(b->pool, b->der, b->len);
        }
    }
    unlock();
    if (!b) {
        return certauth_error(r, HTTP_SERVICE_UNAVAILABLE, "no CRL",
                              "the CRL is not available yet; try again");
    }
    apr_pool_cleanup_register(r->pool, b, blob_cleanup,
                              apr_pool_cleanup_null);

    apr_table_setn(r->headers_out, "ETag", b->etag);
    ap_update_mtime(r, apr_time_from_sec(b->this_update));
    ap_set_last_modified(r);
    apr_table_setn(r->headers_out, "Cache-Control",
                   apr_psprintf(r->pool, "public, max-age=%" APR_INT64_T_FMT,
                                b->next_update > now ? b->next_update - now
                                                     : 0));
    apr_table_setn(r->headers_out, "Expires",
                   ap_ht_time(r->pool, apr_time_from_sec(b->next_update),
                              "%a, %d %b %Y %H:%M:%S GMT", 0));
    if ((status = ap_meets_conditions(r)) != OK) {
        return status;
    }
    if (pem) {
        data = b->pem;
        len = b->pem ? strlen(b->pem) : 0;
        ap_set_content_type(r, "application/x-pem-file");
    }
    else {
        data = b->der;
        len = b->len;
        ap_set_content_type(r, "application/pkix-crl");
    }
    ap_set_content_length(r, (apr_off_t)len);
    if (r->header_only) {
        return OK;
    }
    /* No copy of a large CRL per request: the bucket refers to the blob
     * and keeps it alive until the bytes are written. */
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb, crl_bucket_create(
                                    b, data, len, r->connection->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
                                    r->connection->bucket_alloc));
    return ap_pass_brigade(r->output_filters, bb) == APR_SUCCESS
               ? OK : AP_FILTER_ERROR;
}

int certauth_crl_generation(request_rec *r, const char **gen)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    apr_int64_t number = 0, tu = 0;
    crl_cache *c;
    int need, status = 0;

    lock();
    c = cache_sync(sc->crl_cache);
    need = due(c->blob, now, c->db_checked, sc->crl_refresh_secs);
    if (!need && c->blob) {
        number = c->blob->number;
        tu = c->blob->this_update;
    }
    unlock();
    if (need) {
        int locked = certauth_db_lock(r);
        status = refresh(r, sc->crl_cache);
        certauth_db_unlock(r, locked);
        lock();
        c = cache_sync(sc->crl_cache);
        if (c->blob) {
            number = c->blob->number;
            tu = c->blob->this_update;
        }
        unlock();
    }
    *gen = number ? apr_psprintf(r->pool, "%" APR_INT64_T_FMT ":%"
                                 APR_INT64_T_FMT, number, tu)
                  : NULL;
    return status;
}
