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

#include <openssl/x509.h>

#include "mod_certauth.h"
#include "mod_watchdog.h"
#include "ca_ca.h"
#include "ca_crl.h"
#include "ca_issue.h"
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

#if APR_HAS_THREADS
/* held by the watchdog while it works, so that the child's exit waits */
static apr_thread_mutex_t *wd_lock;
#endif
static volatile apr_uint32_t wd_stop;

void certauth_crl_child_init(apr_pool_t *p, server_rec *s)
{
    (void)s;
    apr_pool_create(&cache_pool, p);
    caches = apr_hash_make(cache_pool);
#if APR_HAS_THREADS
    apr_thread_mutex_create(&cache_lock, APR_THREAD_MUTEX_DEFAULT, p);
    apr_thread_mutex_create(&wd_lock, APR_THREAD_MUTEX_DEFAULT, p);
#endif
}

void certauth_crl_child_exit(void)
{
    apr_atomic_set32(&wd_stop, 1);
#if APR_HAS_THREADS
    if (wd_lock) {
        apr_thread_mutex_lock(wd_lock);
        apr_thread_mutex_unlock(wd_lock);
    }
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
    {
        /* a previous generation's: crl-FP-previous-KID.bin */
        const char *prev = strstr(path, "-previous-");
        const char *tag = prev ? apr_pstrmemdup(p, prev + 1,
                                                strlen(prev + 1) - 4)
                               : NULL;
        b->etag = apr_psprintf(p, "\"crl-%s%s%" APR_INT64_T_FMT "\"",
                               tag ? tag : "", tag ? "-" : "",
                               (apr_int64_t)num);
    }
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

/* The CRL's own audit record: made by the server, not by a client. */
static void audit_crl(server_rec *s, ca_store_t *st, apr_pool_t *p,
                      const char *detail)
{
    ca_audit_t a;

    memset(&a, 0, sizeof(a));
    a.at = (apr_int64_t)apr_time_sec(apr_time_now());
    a.actor = "-";
    a.auth = "none";
    a.client = "";
    a.action = "crl";
    a.serial = "";
    a.outcome = "ok";
    a.detail = detail;
    if (ca_store_audit_add(st, p, &a) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(1311)
                     "audit record not stored (%s): crl ok: %s",
                     ca_store_last_error(st), detail);
    }
}

/* After a rollover: does this previous generation sign its CRL (its key
 * here)? */
static int gen_signs(const certauth_gen *g)
{
    return g->ca && g->ca->key && g->crl_cache;
}

/* The previous generations that sign their CRLs, into *gens (n); and
 * their CAs into *cas when cas is not NULL. */
static int prev_signers(const certauth_srv_conf *sc, apr_pool_t *p,
                        certauth_gen ***gens, const ca_t ***cas)
{
    int i, n = 0, all = sc->prevs ? sc->prevs->nelts : 0;

    *gens = apr_pcalloc(p, sizeof(**gens) * (apr_size_t)(all + 1));
    if (cas) {
        *cas = apr_pcalloc(p, sizeof(**cas) * (apr_size_t)(all + 1));
    }
    for (i = 0; i < all; i++) {
        certauth_gen *g = APR_ARRAY_IDX(sc->prevs, i, certauth_gen *);
        if (gen_signs(g)) {
            if (cas) {
                (*cas)[n] = g->ca;
            }
            (*gens)[n++] = g;
        }
    }
    return n;
}

/* Is kid in the space-separated list kids (ca_store_crl_prev)? */
static int kid_listed(const char *kids, const char *kid)
{
    apr_size_t n = strlen(kid);
    const char *k = kids;

    while (k && *k) {
        const char *e = strchr(k, ' ');
        apr_size_t kl = e ? (apr_size_t)(e - k) : strlen(k);
        if (kl == n && !strncmp(k, kid, n)) {
            return 1;
        }
        k = e ? e + 1 : NULL;
    }
    return 0;
}

/* Write the cache file of each previous generation's CRL from the lists
 * stored with CRL `number` (kids, ders: ca_store_crl_prev); APR_SUCCESS,
 * or the first failure (logged when log is set). */
static apr_status_t write_prev_files(server_rec *s, apr_pool_t *p,
                                     certauth_gen **gens, int n,
                                     apr_int64_t number, apr_int64_t tu,
                                     apr_int64_t nu, const char *kids,
                                     const char *ders, int log)
{
    apr_status_t rv = APR_SUCCESS, r1;
    int i;

    for (i = 0; i < n; i++) {
        const char *b64 = ca_crl_prev_of(p, kids, ders, gens[i]->kid);
        unsigned char *der;
        apr_size_t len;
        r1 = !b64 ? CA_ENOTFOUND
                  : ca_base64_decode(p, b64, strlen(b64), &der, &len);
        if (r1 == APR_SUCCESS) {
            r1 = write_file(p, gens[i]->crl_cache, number, tu, nu, der,
                            len);
        }
        if (r1 != APR_SUCCESS) {
            if (log) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(1810)
                             "cannot write the previous CA's CRL cache %s "
                             "(%s)", gens[i]->crl_cache, gens[i]->cert_file);
            }
            if (rv == APR_SUCCESS) {
                rv = r1;
            }
        }
    }
    return rv;
}

/* Make, store and cache a new CRL (after a rollover the previous CA's
 * too: the same number and dates, its own certificates). */
static apr_status_t generate(server_rec *s, ca_store_t *st, apr_pool_t *pool,
                             const char *why)
{
    const certauth_srv_conf *sc = certauth_srv(s);
    certauth_gen **gens;
    const ca_t **prevs;
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    apr_int64_t number = 0, nu = now + (apr_int64_t)sc->crl_days * 86400;
    unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *err = NULL, *detail;
    apr_status_t rv;
    apr_pool_t *p;
    int listed = 0, *prev_listed, np, i;

    apr_pool_create(&p, pool);
    np = prev_signers(sc, p, &gens, &prevs);
    prev_listed = apr_pcalloc(p, sizeof(int) * (apr_size_t)(np + 1));
    rv = ca_crl_make_n(p, sc->ca, prevs, np, st, sc->crl_days,
                       sc->crl_retention_days, now, &number, &der, &len,
                       &listed, prev_listed, &err);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, ca_store_busy(st) ? APLOG_WARNING
                                                    : APLOG_ERR, 0, s,
                     CA_LOGNO(0701) "cannot make a new CRL (%s): %s", why,
                     err);
        apr_pool_destroy(p);
        return rv;
    }
    if (np) {
        /* the previous CAs' first: a reader that sees the new number on
         * the current CRL finds it on the previous ones too */
        apr_int64_t n2 = 0, tu2 = 0, nu2 = 0;
        const char *kids = NULL, *b64s = NULL;
        if (ca_store_crl_prev(st, p, &n2, &tu2, &nu2, &kids, &b64s)
                != APR_SUCCESS || n2 != number) {
            kids = b64s = "";
        }
        write_prev_files(s, p, gens, np, n2, tu2, nu2, kids, b64s, 1);
    }
    rv = write_file(p, sc->crl_cache, number, now, nu, der, len);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), s, CA_LOGNO(0702)
                     "cannot write the CRL cache %s", sc->crl_cache);
    }
    detail = apr_psprintf(p, "CRL number %" APR_INT64_T_FMT ", %d entries",
                          number, listed);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, CA_LOGNO(1310)
                 "CRL made (%s): %s", why, detail);
    audit_crl(s, st, p, detail);
    for (i = 0; i < np; i++) {
        detail = apr_psprintf(p, "previous CA's CRL number %" APR_INT64_T_FMT
                              ", %d entries, issuer %s, key %s", number,
                              prev_listed[i], gens[i]->ca->subject,
                              gens[i]->kid);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, CA_LOGNO(1811)
                     "CRL made (%s): %s", why, detail);
        audit_crl(s, st, p, detail);
    }
    apr_pool_destroy(p);
    return APR_SUCCESS;
}

/* Copy the database's CRL into the cache file. */
static apr_status_t fetch(server_rec *s, ca_store_t *st, apr_pool_t *pool)
{
    const certauth_srv_conf *sc = certauth_srv(s);
    apr_int64_t number, tu, nu;
    const char *b64 = NULL;
    unsigned char *der;
    apr_size_t len;
    apr_status_t rv;
    apr_pool_t *p;

    apr_pool_create(&p, pool);
    {
        /* the previous CAs' CRLs stored with the current one (refresh made
         * a new set when one is not there) */
        certauth_gen **gens;
        int np = prev_signers(sc, p, &gens, NULL);
        const char *kids = NULL;
        rv = np ? ca_store_crl_prev(st, p, &number, &tu, &nu, &kids, &b64)
                : APR_SUCCESS;
        if (np && rv == APR_SUCCESS && number > 0) {
            /* (one not there yet is left: refresh makes it) */
            write_prev_files(s, p, gens, np, number, tu, nu, kids, b64, 0);
        }
        if (rv != APR_SUCCESS) {
            apr_pool_destroy(p);
            return rv;
        }
    }
    rv = ca_store_crl_get(st, p, &number, &tu, &nu, &b64);
    if (rv == APR_SUCCESS && number > 0) {
        rv = ca_base64_decode(p, b64, strlen(b64), &der, &len);
        if (rv == APR_SUCCESS) {
            /* made by this CA's key?  After a CA rollover the stored one
             * may be the previous key's: then this CA makes its own */
            const unsigned char *q = der;
            X509_CRL *crl = d2i_X509_CRL(NULL, &q, (long)len);
            int ours = crl && X509_CRL_verify(
                                  crl, X509_get0_pubkey(sc->ca->cert)) == 1;
            X509_CRL_free(crl);
            rv = ours ? write_file(p, sc->crl_cache, number, tu, nu, der, len)
                      : CA_ECONFLICT;
        }
    }
    apr_pool_destroy(p);
    return rv;
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

/* After a rollover: this process's copy of a previous CA's CRL is
 * missing or older than the current CRL c; under lock(). */
static int prev_behind(const certauth_srv_conf *sc, crl_cache *c)
{
    int i;

    for (i = 0; sc->prevs && i < sc->prevs->nelts; i++) {
        const certauth_gen *g = APR_ARRAY_IDX(sc->prevs, i, certauth_gen *);
        crl_cache *pc;
        if (!gen_signs(g)) {
            continue;
        }
        pc = cache_sync(g->crl_cache);
        if (!pc->blob || !c->blob || pc->blob->number < c->blob->number) {
            return 1;
        }
    }
    return 0;
}

/* A previous generation that signs its CRL has none stored with the
 * current CRL (kids: the stored list). */
static int prev_missing(const certauth_srv_conf *sc, const char *kids)
{
    int i;

    for (i = 0; sc->prevs && i < sc->prevs->nelts; i++) {
        const certauth_gen *g = APR_ARRAY_IDX(sc->prevs, i, certauth_gen *);
        if (gen_signs(g) && !kid_listed(kids, g->kid)) {
            return 1;
        }
    }
    return 0;
}

/* Ask the database and make a CRL when needed (force: a change of status
 * is not on it yet); under the global lock, taken here before `deadline`.
 * 0, or 503. */
static int refresh(server_rec *s, ca_store_t *st, apr_pool_t *p,
                   apr_time_t deadline, int force)
{
    const certauth_srv_conf *sc = certauth_srv(s);
    const char *path = sc->crl_cache;
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    apr_int64_t number = 0, tu = 0, nu = 0, have;
    const char *prev_kid = NULL;
    crl_cache *c;
    int status = 0, prev_stale;

    if (certauth_db_lock_until(deadline) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(1312)
                     "another process makes a CRL; not waited for");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    lock();
    c = cache_sync(path);
    have = c->blob ? c->blob->number : 0;
    prev_stale = prev_behind(sc, c);
    if (!force && !prev_stale
        && !due(c->blob, now, c->db_checked, sc->crl_refresh_secs)) {
        unlock();
        certauth_db_release();
        return 0; /* another child did it meanwhile */
    }
    unlock();

    if (force) {
        status = generate(s, st, p, "a change of status") == APR_SUCCESS
                     ? 0 : HTTP_SERVICE_UNAVAILABLE;
    }
    else if (ca_store_crl_head(st, p, &number, &tu, &nu) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(0703)
                     "reading the CRL state: %s", ca_store_last_error(st));
        status = HTTP_SERVICE_UNAVAILABLE;
    }
    else if (number == 0 || now >= tu + (nu - tu) / 2) {
        if (generate(s, st, p, number == 0 ? "none yet"
                               : "half of its validity passed")
            != APR_SUCCESS) {
            status = HTTP_SERVICE_UNAVAILABLE;
        }
    }
    else {
        apr_int64_t pending = 0;
        /* superseded certificates whose grace ended since this CRL */
        ca_store_count_listable(st, p, tu, now, &pending);
        if (pending > 0) {
            if (generate(s, st, p, "a renewal's grace ended")
                != APR_SUCCESS) {
                status = HTTP_SERVICE_UNAVAILABLE;
            }
        }
        else if (prev_missing(sc, "")
                 && (ca_store_crl_prev(st, p, &number, &tu, &nu, &prev_kid,
                                       NULL) != APR_SUCCESS
                     || prev_missing(sc, prev_kid))) {
            /* the stored CRL has none of a previous CA's (made before
             * the rollover, or by certauth-admin) */
            if (generate(s, st, p, "the previous CA's CRL") != APR_SUCCESS) {
                status = HTTP_SERVICE_UNAVAILABLE;
            }
        }
        else if (number > have || prev_stale) {
            apr_status_t frv = fetch(s, st, p);
            if (frv == CA_ECONFLICT) {
                frv = generate(s, st, p, "the stored CRL is another key's");
            }
            if (frv != APR_SUCCESS) {
                status = HTTP_SERVICE_UNAVAILABLE;
            }
        }
    }
    certauth_db_release();
    if (!status) {
        lock();
        c = cache_sync(path);
        c->db_checked = apr_time_now();
        unlock();
    }
    return status;
}

/* Is the watchdog making the CRLs (mod_watchdog available)? */
static int have_watchdog;

void certauth_crl_regenerate(request_rec *r, ca_store_t *st)
{
    certauth_crl_mark();
    if (!have_watchdog) {
        /* no mod_watchdog: made here, within the request's bound */
        apr_time_t deadline = certauth_store_get_deadline(r);
        if (refresh(r->server, st, r->pool, deadline, 1) != 0) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(1403)
                          "no new CRL after a change of status; the next "
                          "CRL request makes one");
            ca_store_crl_invalidate(st, r->pool);
        }
    }
}

/* The watchdog: one process of the server makes the CRLs of all its CAs
 * (mod_watchdog's singleton), outside the requests.  After a change of
 * status (certauth_crl_mark, any process): a new CRL, at most one per half
 * CertAuthCRLDelay, so that a burst of revocations makes few; every
 * CertAuthCRLRefreshSeconds: the database's CRL state (a newer CRL of
 * another front end, half of the validity passed, a renewal's grace
 * ended, a revocation by certauth-admin). */
static apr_uint32_t wd_built;
static apr_time_t wd_last_build, wd_last_check;

static apr_interval_time_t crl_delay(server_rec *s)
{
    apr_interval_time_t d = certauth_srv(s)->crl_delay;
    return d > 0 ? d : CERTAUTH_CRL_DELAY;
}

static void wd_run(server_rec *s0, apr_pool_t *p, int force)
{
    apr_hash_t *done = apr_hash_make(p);
    apr_time_t now = apr_time_now();
    int failed = 0, checked = 0;
    server_rec *s;

    for (s = s0; s; s = s->next) {
        const certauth_srv_conf *sc = certauth_srv(s);
        apr_interval_time_t bound = certauth_db_timeout(s);
        ca_store_t *st;

        if (!sc->ca || !sc->has_endpoints || !sc->crl_cache
            || apr_hash_get(done, sc->crl_cache, APR_HASH_KEY_STRING)) {
            continue;
        }
        apr_hash_set(done, sc->crl_cache, APR_HASH_KEY_STRING, sc);
        if (!force && now - wd_last_check
                          < apr_time_from_sec(sc->crl_refresh_secs)) {
            continue;
        }
        checked = 1;
        /* in the background a longer wait is fine, but not forever */
        if (bound < apr_time_from_sec(10)) {
            bound = apr_time_from_sec(10);
        }
        if (!(st = certauth_store_worker(p, s, bound))
            || refresh(s, st, p, now + bound, force) != 0) {
            failed = 1;
        }
    }
    if (checked && !failed) {
        wd_last_check = now;
    }
    if (force && failed) {
        /* tried again at the next turn */
        wd_built--;
    }
}

static apr_status_t crl_watchdog(int state, void *data, apr_pool_t *p)
{
    server_rec *s0 = data;
    apr_uint32_t marks;
    apr_time_t now = apr_time_now();

    if (state == AP_WATCHDOG_STATE_STOPPING || apr_atomic_read32(&wd_stop)
        || !caches
#if APR_HAS_THREADS
        || !wd_lock
#endif
        ) {
        /* (also before this child's child_init ran: the next turn) */
        return APR_SUCCESS;
    }
#if APR_HAS_THREADS
    apr_thread_mutex_lock(wd_lock);
#endif
    if (!apr_atomic_read32(&wd_stop)) {
        /* the connections are given back before wd_lock is (a pool of
         * our own, not the callback's, which goes after the return) */
        apr_pool_t *wp;
        apr_pool_create(&wp, p);
        p = wp;
        if (state == AP_WATCHDOG_STATE_STARTING) {
            wd_built = certauth_crl_marks();
        }
        marks = certauth_crl_marks();
        if (marks != wd_built
            && now - wd_last_build >= crl_delay(s0) / 2) {
            wd_built = marks;
            wd_last_build = now;
            wd_run(s0, p, 1);
        }
        wd_run(s0, p, 0);
        apr_pool_destroy(wp);
    }
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(wd_lock);
#endif
    return APR_SUCCESS;
}

int certauth_crl_post_config(apr_pool_t *pconf, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *wd_get;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *wd_register;
    apr_interval_time_t interval;
    ap_watchdog_t *wd = NULL;
    server_rec *v;
    apr_status_t rv;
    int any = 0;

    for (v = s; v; v = v->next) {
        any |= certauth_srv(v)->has_endpoints && certauth_srv(v)->ca != NULL;
    }
    have_watchdog = 0;
    if (!any) {
        return OK;
    }
    wd_get = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    wd_register = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!wd_get || !wd_register) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(1313)
                     "mod_watchdog is not loaded: CRLs are made inside the "
                     "revoking requests (load mod_watchdog to keep that "
                     "work off the requests)");
        return OK;
    }
    rv = wd_get(&wd, "certauth-crl", 0, 1, pconf);
    if (rv == APR_SUCCESS) {
        interval = crl_delay(s) / 4;
        if (interval < AP_WD_TM_SLICE) {
            interval = AP_WD_TM_SLICE;
        }
        rv = wd_register(wd, interval, s, crl_watchdog);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, CA_LOGNO(1314)
                     "cannot start the CRL watchdog");
        return !OK;
    }
    have_watchdog = 1;
    return OK;
}

/* GET of a CRL from its cache file `path`: the current CA's, or after a
 * rollover the previous CA's (made with it, its number and dates). */
static int serve(request_rec *r, int pem, const char *path)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    int previous = path != sc->crl_cache;
    crl_cache *c;
    crl_blob *b = NULL;
    int need, status;
    apr_bucket_brigade *bb;
    const void *data;
    apr_size_t len;

    /* Served from the cache file, which the watchdog keeps current; the
     * database only when there is no valid CRL at all (the first start),
     * or without a watchdog: then within the request's bound, and only
     * when no other request is making one. */
    lock();
    c = cache_sync(sc->crl_cache);
    need = !c->blob || c->blob->next_update <= now
           || (!have_watchdog
               && due(c->blob, now, c->db_checked, sc->crl_refresh_secs))
           || (previous && prev_behind(sc, c));
    unlock();

    if (need) {
        ca_store_t *st = certauth_store_quiet(r);
        apr_time_t deadline = certauth_store_get_deadline(r);
        lock();
        c = cache_sync(path);
        b = c->blob && c->blob->next_update > now ? c->blob : NULL;
        unlock();
        status = !st ? HTTP_SERVICE_UNAVAILABLE
                     : refresh(r->server, st, r->pool,
                               b ? apr_time_now() : deadline, 0);
        if (status) {
            /* serve what we have while it is still valid */
            lock();
            c = cache_sync(path);
            b = c->blob && c->blob->next_update > now ? c->blob : NULL;
            unlock();
            if (!b) {
                return certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                                      "database unavailable",
                                      "no current CRL; try again later");
            }
        }
    }

    lock();
    c = cache_sync(path);
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

/* Which CRL a path names: "" (GET crl: the CRL of the CA whose
 * certificates name base/crl, ca_crl_path: the previous CA after a
 * rollover, else the current one), "previous", or a CA's key identifier
 * (ca_cert_key_id); NULL with *why when there is none (404). */
static const char *crl_path_of(request_rec *r, const char *which,
                               const char **why)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    int n = sc->prevs ? sc->prevs->nelts : 0, g;
    const certauth_gen *gen;

    if (!*which) {
        /* base/crl is named by the certificates of a CA without a
         * previous one: after rollovers, the oldest previous CA */
        if (!n) {
            return sc->crl_cache;
        }
        g = n - 1;
    }
    else if (!strcmp(which, "previous")) {
        if (!n) {
            *why = "this CA has no previous CA whose CRL it signs "
                   "(CertAuthPreviousCAKeyFile)";
            return NULL;
        }
        g = 0;     /* the CA before this one */
    }
    else if (!strcmp(which, ca_cert_key_id(r->pool, sc->ca->cert))) {
        return sc->crl_cache;
    }
    else {
        for (g = 0; g < n && strcmp(which, APR_ARRAY_IDX(
                                               sc->prevs, g,
                                               certauth_gen *)->kid); g++) {
        }
        if (g == n) {
            *why = "no CA of this server has this key identifier";
            return NULL;
        }
    }
    gen = APR_ARRAY_IDX(sc->prevs, g, certauth_gen *);
    if (!gen_signs(gen)) {
        *why = apr_psprintf(r->pool, "the CRL of the previous CA %s is "
                            "signed with its key: CertAuthPreviousCAKeyFile "
                            "is not set for it", gen->kid);
        return NULL;
    }
    return gen->crl_cache;
}

int certauth_crl_named(request_rec *r, const char *which, int pem)
{
    const char *why = NULL, *path = crl_path_of(r, which, &why);

    return path ? serve(r, pem, path)
                : certauth_error(r, HTTP_NOT_FOUND, "not found", why);
}

int certauth_crl(request_rec *r, int pem)
{
    return certauth_crl_named(r, "", pem);
}

int certauth_crl_generation(request_rec *r, const char **gen)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    apr_int64_t number = 0, tu = 0;
    crl_cache *c;
    int need, status = 0;

    /* as certauth_crl: the database only without a valid CRL (or without
     * the watchdog) */
    lock();
    c = cache_sync(sc->crl_cache);
    need = !c->blob || c->blob->next_update <= now
           || (!have_watchdog
               && due(c->blob, now, c->db_checked, sc->crl_refresh_secs));
    if (!need && c->blob) {
        number = c->blob->number;
        tu = c->blob->this_update;
    }
    unlock();
    if (need) {
        ca_store_t *st = certauth_store_quiet(r);
        status = !st ? HTTP_SERVICE_UNAVAILABLE
                     : refresh(r->server, st, r->pool,
                               certauth_store_get_deadline(r), 0);
        lock();
        c = cache_sync(sc->crl_cache);
        if (c->blob) {
            number = c->blob->number;
            tu = c->blob->this_update;
        }
        unlock();
    }
    /* with the changes of status of this server counted too: they change
     * the generation at once, before the watchdog's CRL shows them */
    *gen = number ? apr_psprintf(r->pool, "%" APR_INT64_T_FMT ":%"
                                 APR_INT64_T_FMT ":%u", number, tu,
                                 (unsigned)certauth_crl_marks())
                  : NULL;
    return status;
}
