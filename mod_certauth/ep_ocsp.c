/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ep_ocsp.c: the OCSP responder (RFC 6960, RFC 5019 profile) at
 * {Location}/{CertAuthOCSPPath}: POST application/ocsp-request, or GET with
 * the request in the path (base64, URL-encoded, or base64url).  Every answer
 * is an OCSPResponse (application/ocsp-response), errors included: the
 * route table's refusals too (certauth_fail calls certauth_ocsp_fail).
 * Routes "ocsp" (POST) and "ocsp/\*" (GET) in routes.c; certauth_ocsp_rest
 * maps the configured path to them.
 *
 * Speed: a response to a request without nonce for one certificate depends
 * on its CertID only; it is made once and kept in a file of the runtime
 * directory (shared by the children, as the CRL is) and in this process's
 * memory, tagged with the current CRL's number and thisUpdate.  Every change
 * of a certificate's status makes a new CRL (at once on this front end,
 * within CertAuthCRLRefreshSeconds on the others), so a response made under
 * another tag is made again; so is one past half of its validity.  Requests
 * with a nonce get a fresh signed response.
 *
 * The signer: a delegated responder certificate of this front end (key and
 * certificate in the runtime directory, 0600), issued by the CA through the
 * store when missing or past half of its validity; or the CA key
 * (CertAuthOCSPSigner ca). */

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "mod_certauth.h"
#include "ca_ocsp.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

#define OCSP_CTYPE_REQ "application/ocsp-request"
#define OCSP_CTYPE_RESP "application/ocsp-response"
#define OCSP_MAX_BODY (16 * 1024)    /* as the route table says */
#define OCSP_MAX_FILE (64 * 1024)
#define OCSP_MAGIC "CERTAUTHOCSP1"
#define OCSP_MEM_ENTRIES 8192
#define SIGNER_RECHECK_SECS 60
/* expired responses are removed from the cache directory this often */
#define SWEEP_SECS 3600

/* A response kept in memory (malloc'ed, replaced under the lock). */
typedef struct ocsp_entry {
    char key[72];
    char gen[72];
    apr_int64_t this_update, next_update;
    apr_size_t len;
    unsigned char der[];
} ocsp_entry;

/* Per CA, per process. */
typedef struct ocsp_state {
    apr_hash_t *entries;
    ca_ocsp_signer_t *signer;
    apr_pool_t *signer_pool, *old_signer_pool;
    apr_time_t signer_checked;
} ocsp_state;

static apr_pool_t *state_pool;
static apr_hash_t *states;
#if APR_HAS_THREADS
static apr_thread_mutex_t *state_lock;
#endif

static void lock(void)
{
#if APR_HAS_THREADS
    if (state_lock) {
        apr_thread_mutex_lock(state_lock);
    }
#endif
}

static void unlock(void)
{
#if APR_HAS_THREADS
    if (state_lock) {
        apr_thread_mutex_unlock(state_lock);
    }
#endif
}

void certauth_ocsp_child_init(apr_pool_t *p, server_rec *s)
{
    (void)s;
    apr_pool_create(&state_pool, p);
    states = apr_hash_make(state_pool);
#if APR_HAS_THREADS
    apr_thread_mutex_create(&state_lock, APR_THREAD_MUTEX_DEFAULT, p);
#endif
}

/* The CA generation g: 0 the current CA, 1.. the previous ones after
 * rollovers (sc->prevs, newest first). */
static const certauth_gen *gen_of(const certauth_srv_conf *sc, int g)
{
    return g > 0 ? APR_ARRAY_IDX(sc->prevs, g - 1, certauth_gen *) : NULL;
}

static const ca_t *gen_ca(const certauth_srv_conf *sc, int g)
{
    return g > 0 ? gen_of(sc, g)->ca : sc->ca;
}

static const char *gen_responder(const certauth_srv_conf *sc, int g)
{
    return g > 0 ? gen_of(sc, g)->ocsp_responder : sc->ocsp_responder;
}

/* Under lock().  g: the CA generation (gen_of). */
static ocsp_state *state_of(const certauth_srv_conf *sc, int g)
{
    const char *key = g > 0 ? gen_responder(sc, g) : sc->ocsp_dir;
    ocsp_state *s = apr_hash_get(states, key, APR_HASH_KEY_STRING);
    if (!s) {
        s = apr_pcalloc(state_pool, sizeof(*s));
        s->entries = apr_hash_make(state_pool);
        apr_hash_set(states, apr_pstrdup(state_pool, key),
                     APR_HASH_KEY_STRING, s);
    }
    return s;
}

const char *certauth_ocsp_rest(request_rec *r, const char *rest)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    const char *tail;
    apr_size_t n;
    char *out, *o;

    if (sc->ocsp && sc->ocsp_path && sc->ocsp_hashes) {
        n = strlen(sc->ocsp_path);
        if (!strncmp(rest, sc->ocsp_path, n)
            && (rest[n] == '\0' || rest[n] == '/')) {
            tail = rest + n;
            while (*tail == '/') {
                tail++;
            }
            if (!*tail) {
                return "ocsp";
            }
            /* the table's "ocsp/\*" is one segment: a '/' of the base64
             * (sent without URL-encoding) as %2F, which the decoder takes */
            out = o = apr_palloc(r->pool, 5 + 3 * strlen(tail) + 1);
            memcpy(o, "ocsp/", 5);
            o += 5;
            for (; *tail; tail++) {
                if (*tail == '/') {
                    memcpy(o, "%2F", 3);
                    o += 3;
                }
                else {
                    *o++ = *tail;
                }
            }
            *o = '\0';
            return out;
        }
    }
    /* the table's own name when the responder is off or elsewhere */
    if (!strncmp(rest, "ocsp", 4) && (rest[4] == '\0' || rest[4] == '/')) {
        return "";
    }
    return rest;
}

static const char *status_name(int status)
{
    return OCSP_response_status_str(status);
}

/* An OCSP error response with an HTTP status, never cached. */
static int send_error(request_rec *r, int http, int status,
                      const char *detail)
{
    unsigned char *der = NULL;
    apr_size_t len = 0;

    ap_log_rerror(APLOG_MARK, http >= 500 ? APLOG_WARNING : APLOG_INFO, 0, r,
                  CA_LOGNO(1710) "OCSP %s (HTTP %d): %s (client %s)",
                  status_name(status), http, detail, r->useragent_ip);
    if (ca_ocsp_error_response(r->pool, status, &der, &len) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (http == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->headers_out, "Retry-After", CERTAUTH_RETRY_AFTER);
    }
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return certauth_send(r, http, OCSP_CTYPE_RESP, der, len);
}

/* A successful response; GET requests without nonce get the RFC 5019
 * caching headers. */
static const char *etag_of(apr_pool_t *p, const unsigned char *der,
                           apr_size_t len);

static int send_ok(request_rec *r, const unsigned char *der, apr_size_t len,
                   apr_int64_t this_update, apr_int64_t next_update,
                   int cacheable)
{
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());

    if (cacheable && r->method_number == M_GET) {
        int status;
        apr_int64_t age = next_update > now ? next_update - now : 0;
        apr_table_setn(r->headers_out, "ETag", etag_of(r->pool, der, len));
        ap_update_mtime(r, apr_time_from_sec(this_update));
        ap_set_last_modified(r);
        apr_table_setn(r->headers_out, "Expires",
                       ap_ht_time(r->pool, apr_time_from_sec(next_update),
                                  "%a, %d %b %Y %H:%M:%S GMT", 0));
        apr_table_setn(r->headers_out, "Cache-Control",
                       apr_psprintf(r->pool, "max-age=%" APR_INT64_T_FMT
                                    ", public, no-transform, "
                                    "must-revalidate", age));
        if ((status = ap_meets_conditions(r)) != OK) {
            r->status = status;
            return status;
        }
    }
    else {
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    }
    return certauth_send(r, HTTP_OK, OCSP_CTYPE_RESP, der, len);
}

/* The ETag of a response: its own hash, so that two children that made
 * the same response at once (different signatures) never share one. */
static const char *etag_of(apr_pool_t *p, const unsigned char *der,
                           apr_size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    char *out = apr_palloc(p, 2 * 12 + 3), *o = out;

    if (!EVP_Digest(der, len, md, &n, EVP_sha256(), NULL) || n < 12) {
        return "\"ocsp\"";
    }
    *o++ = '"';
    for (i = 0; i < 12; i++) {
        apr_snprintf(o, 3, "%02x", md[i]);
        o += 2;
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

static const char *entry_file(apr_pool_t *p, const certauth_srv_conf *sc,
                              const char *key)
{
    return apr_psprintf(p, "%s/%s-%s.der", sc->ocsp_dir, key,
                        sc->ocsp_signer_ca ? "ca" : "r");
}

static ocsp_entry *entry_make(const char *key, const char *gen,
                              apr_int64_t tu, apr_int64_t nu,
                              const unsigned char *der, apr_size_t len)
{
    ocsp_entry *e;

    if (strlen(key) >= sizeof(e->key) || strlen(gen) >= sizeof(e->gen)
        || !(e = malloc(sizeof(*e) + len))) {
        return NULL;
    }
    apr_cpystrn(e->key, key, sizeof(e->key));
    apr_cpystrn(e->gen, gen, sizeof(e->gen));
    e->this_update = tu;
    e->next_update = nu;
    e->len = len;
    memcpy(e->der, der, len);
    return e;
}

/* Put e into this process's memory; under lock(). */
static void entry_put(ocsp_state *s, ocsp_entry *e)
{
    ocsp_entry *old = apr_hash_get(s->entries, e->key, APR_HASH_KEY_STRING);

    if (old) {
        apr_hash_set(s->entries, old->key, APR_HASH_KEY_STRING, NULL);
        free(old);
    }
    else if (apr_hash_count(s->entries) >= OCSP_MEM_ENTRIES) {
        apr_hash_index_t *hi;
        apr_pool_t *tmp;
        apr_pool_create(&tmp, state_pool);
        for (hi = apr_hash_first(tmp, s->entries); hi;
             hi = apr_hash_next(hi)) {
            void *v;
            apr_hash_this(hi, NULL, NULL, &v);
            free(v);
        }
        apr_hash_clear(s->entries);
        apr_pool_destroy(tmp);
    }
    apr_hash_set(s->entries, e->key, APR_HASH_KEY_STRING, e);
}

/* The file of another child (or of this one before a restart). */
static ocsp_entry *entry_load(request_rec *r, const certauth_srv_conf *sc,
                              const char *key)
{
    char *data, *nl;
    apr_size_t len;
    long long tu, nu;
    unsigned long long dlen;
    char gen[72];

    if (ca_file_read(r->pool, entry_file(r->pool, sc, key), OCSP_MAX_FILE,
                     &data, &len) != APR_SUCCESS
        || !(nl = memchr(data, '\n', len > 160 ? 160 : len))
        || sscanf(data, OCSP_MAGIC " %71s %lld %lld %llu", gen, &tu, &nu,
                  &dlen) != 4
        || (apr_size_t)(nl + 1 - data) + dlen != len) {
        return NULL;
    }
    return entry_make(key, gen, tu, nu, (unsigned char *)nl + 1,
                      (apr_size_t)dlen);
}

static void entry_save(request_rec *r, const certauth_srv_conf *sc,
                       const ocsp_entry *e)
{
    const char *head = apr_psprintf(r->pool, OCSP_MAGIC " %s %"
                                    APR_INT64_T_FMT " %" APR_INT64_T_FMT
                                    " %" APR_SIZE_T_FMT "\n", e->gen,
                                    e->this_update, e->next_update, e->len);
    apr_status_t rv = ca_file_write_atomic2(r->pool,
                                            entry_file(r->pool, sc, e->key),
                                            head, strlen(head), e->der,
                                            e->len, 0644);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, CA_LOGNO(1711)
                      "cannot write the OCSP response cache in %s",
                      sc->ocsp_dir);
    }
}

/* Remove the files of responses past their nextUpdate (certificates no
 * one asked about since; on Debian the runtime directory is a tmpfs), at
 * most every SWEEP_SECS by one child: the mtime of a marker file says
 * when the last sweep began.  Called after a response was made, never on
 * the path of a kept one. */
static void sweep(request_rec *r, const certauth_srv_conf *sc)
{
    apr_time_t now = apr_time_now();
    apr_time_t old = now - apr_time_from_sec(sc->ocsp_validity_secs + 300);
    const char *marker = apr_pstrcat(r->pool, sc->ocsp_dir, "/.swept",
                                     NULL);
    apr_finfo_t fi;
    apr_dir_t *dir;
    apr_pool_t *p;
    int removed = 0;

    if (apr_stat(&fi, marker, APR_FINFO_MTIME, r->pool) == APR_SUCCESS
        && now - fi.mtime < apr_time_from_sec(SWEEP_SECS)) {
        return;
    }
    /* claim this round (another child that sees the new marker skips) */
    if (ca_file_write_atomic(r->pool, marker, "", 0, 0644) != APR_SUCCESS
        || apr_pool_create(&p, r->pool) != APR_SUCCESS) {
        return;
    }
    if (apr_dir_open(&dir, sc->ocsp_dir, p) == APR_SUCCESS) {
        while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_MTIME
                                     | APR_FINFO_TYPE, dir) == APR_SUCCESS) {
            apr_size_t n = fi.name ? strlen(fi.name) : 0;
            if (fi.filetype == APR_REG && n > 4
                && !strcmp(fi.name + n - 4, ".der") && fi.mtime < old
                && apr_file_remove(apr_pstrcat(p, sc->ocsp_dir, "/", fi.name,
                                               NULL), p) == APR_SUCCESS) {
                removed++;
            }
        }
        apr_dir_close(dir);
    }
    apr_pool_destroy(p);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CA_LOGNO(1716)
                  "OCSP cache %s: %d expired responses removed",
                  sc->ocsp_dir, removed);
}

/* Usable: made under the current tag and not past half of its validity
 * (made again before nextUpdate). */
static int fresh(const ocsp_entry *e, const char *gen, apr_int64_t now)
{
    return e && gen && !strcmp(e->gen, gen)
           && now < e->this_update + (e->next_update - e->this_update) / 2;
}

/* Time to issue a new responder certificate. */
static int renew_due(const ca_ocsp_signer_t *s, apr_int64_t now)
{
    return !s || now >= s->not_before + (s->not_after - s->not_before) / 2;
}

static ca_ocsp_signer_t *signer_from_file(apr_pool_t *p,
                                          const certauth_srv_conf *sc,
                                          int g)
{
    ca_ocsp_signer_t *s = NULL;
    const char *err;
    char *data = NULL;
    apr_size_t len = 0;

    if (ca_file_read(p, gen_responder(sc, g), OCSP_MAX_FILE, &data, &len)
            != APR_SUCCESS
        || ca_ocsp_signer_load(p, gen_ca(sc, g), data, len, &s, &err)
               != APR_SUCCESS) {
        s = NULL;
    }
    if (data && len) {
        OPENSSL_cleanse(data, len);
    }
    return s;
}

/* Install s (allocated from a new pool np) as this process's signer; the
 * previous one is kept one more round for requests still using it. */
static void signer_set(ocsp_state *os, ca_ocsp_signer_t *s, apr_pool_t *np)
{
    if (os->old_signer_pool) {
        apr_pool_destroy(os->old_signer_pool);
    }
    os->old_signer_pool = os->signer_pool;
    os->signer_pool = np;
    os->signer = s;
}

/* The signer; NULL after logging when none can be had (*dbdown: because
 * of the database).  g: the CA generation (gen_of): after a rollover, for
 * a previous CA's certificates, its key or a responder certificate it
 * issued (a file of its own). */
static ca_ocsp_signer_t *get_signer(request_rec *r, ca_store_t *st,
                                    int g, int *dbdown)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    const ca_t *ca = gen_ca(sc, g);
    const char *file = gen_responder(sc, g);
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    ca_ocsp_signer_t *s;
    ocsp_state *os;
    apr_pool_t *np;
    const char *pem = NULL, *err = NULL;
    apr_status_t rv;
    int locked;

    *dbdown = 0;
    if (sc->ocsp_signer_ca) {
        return ca_ocsp_signer_ca(r->pool, ca);
    }
    lock();
    os = state_of(sc, g);
    s = os->signer;
    if (s && !renew_due(s, now)
        && apr_time_sec(apr_time_now() - os->signer_checked)
               < SIGNER_RECHECK_SECS) {
        unlock();
        return s;
    }
    /* another child may have renewed it: look at the file */
    apr_pool_create(&np, state_pool);
    s = signer_from_file(np, sc, g);
    os->signer_checked = apr_time_now();
    if (s && !renew_due(s, now)) {
        if (!os->signer || strcmp(os->signer->id, s->id)) {
            signer_set(os, s, np);
        }
        else {
            apr_pool_destroy(np);
            s = os->signer;
        }
        unlock();
        return s;
    }
    unlock();

    /* issue a new one, one process at a time */
    locked = certauth_db_lock(r);
    s = signer_from_file(np, sc, g);
    if (!s || renew_due(s, now)) {
        if (!st) {
            *dbdown = 1;
            s = NULL;
        }
        else if ((rv = ca_ocsp_responder_issue(np, ca, st,
                                               sc->ocsp_responder_days, NULL,
                                               &s, &pem, &err))
                 != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(1712)
                          "cannot issue the OCSP responder certificate: %s",
                          err ? err : "");
            *dbdown = rv == CA_EDB;
            s = NULL;
        }
        else {
            rv = ca_file_write_atomic(np, file, pem,
                                      strlen(pem), 0600);
            OPENSSL_cleanse((void *)pem, strlen(pem));
            if (rv != APR_SUCCESS) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(1713)
                              "cannot write %s", file);
                s = NULL;
            }
            else {
                certauth_audit(r, st, NULL, "ocsp-responder", s->id, "ok",
                               apr_psprintf(r->pool, "OCSP responder "
                                            "certificate for %s%s, valid %d "
                                            "days", r->server->server_hostname,
                                            g ? " (previous CA)" : "",
                                            sc->ocsp_responder_days));
            }
        }
    }
    certauth_db_unlock(r, locked);
    lock();
    if (s) {
        signer_set(os, s, np);
    }
    else if (os->signer && os->signer->not_after > now + 60) {
        /* keep signing with the current one while it is valid */
        s = os->signer;
        apr_pool_destroy(np);
    }
    else {
        apr_pool_destroy(np);
    }
    unlock();
    return s;
}

int certauth_ocsp_fail(request_rec *r, int status, const char *detail)
{
    return send_error(r, status,
                      status == HTTP_SERVICE_UNAVAILABLE
                          ? OCSP_RESPONSE_STATUS_TRYLATER
                      : status >= 500 ? OCSP_RESPONSE_STATUS_INTERNALERROR
                                      : OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                      detail);
}

/* The request's DER: the body of a POST (method, media type and bound
 * checked by the route table), or the path of a GET; 0, or an answer
 * already sent. */
static int read_request(request_rec *r, certauth_req *q, unsigned char **der,
                        apr_size_t *len, int *answered)
{
    *answered = 1;
    if (r->method_number == M_GET) {
        if (strlen(q->tail) > 4 * OCSP_MAX_BODY
            || ca_ocsp_decode_get(r->pool, q->tail, der, len)
                   != APR_SUCCESS) {
            return send_error(r, HTTP_BAD_REQUEST,
                              OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                              "the GET request is not base64");
        }
    }
    else {
        *der = (unsigned char *)q->body;
        *len = q->len;
    }
    *answered = 0;
    return 0;
}

int certauth_ocsp(request_rec *r, certauth_req *q)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    unsigned char *der = NULL, *out = NULL;
    apr_size_t len = 0, out_len = 0;
    ca_ocsp_req_t *req;
    ca_ocsp_status_t *sts = NULL;
    ca_ocsp_signer_t *signer;
    ca_store_t *st;
    const char *gen = NULL, *err = NULL;
    ocsp_entry *e = NULL;
    apr_int64_t next = 0;
    apr_status_t rv;
    int answered, rc, dbdown, status, i, keep, known, prev = 0, n_gens = 1;
    const ca_ocsp_t **ocs;
    int *gens;

    rc = read_request(r, q, &der, &len, &answered);
    if (answered) {
        return rc;
    }
    /* the CA's hashes, then (after rollovers) each previous generation's
     * whose key is here; gens[k]: the generation of ocs[k] */
    n_gens = 1 + (sc->prevs ? sc->prevs->nelts : 0);
    ocs = apr_palloc(r->pool, sizeof(*ocs) * (apr_size_t)n_gens);
    gens = apr_palloc(r->pool, sizeof(*gens) * (apr_size_t)n_gens);
    ocs[0] = sc->ocsp_hashes;
    gens[0] = 0;
    for (i = 0, n_gens = 1; sc->prevs && i < sc->prevs->nelts; i++) {
        const certauth_gen *g = gen_of(sc, i + 1);
        if (g->ca && g->ca->key && g->ocsp_hashes) {
            ocs[n_gens] = g->ocsp_hashes;
            gens[n_gens++] = i + 1;
        }
    }
    req = ca_ocsp_parse_gens(r->pool, ocs, n_gens, der, len);
    if (req->status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        /* signed for the first CertID's generation; the others of a
         * request naming several are answered in the same response (see
         * ca_ocsp_parse_gens) */
        prev = gens[req->gen];
        if (req->mixed) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CA_LOGNO(1860)
                          "OCSP request with CertIDs of several CA "
                          "generations: one response for its %d CertIDs, "
                          "signed for the CA with key identifier %s (the "
                          "first CertID's)", req->count, req->issuer_kid);
        }
    }
    if (req->status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        return send_error(r, req->status
                                     == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST
                                 ? HTTP_BAD_REQUEST : HTTP_OK,
                          req->status, req->detail);
    }

    status = certauth_crl_generation(r, &gen);
    if (req->cacheable) {
        ocsp_state *os;
        lock();
        os = state_of(sc, prev);
        e = apr_hash_get(os->entries, req->cache_key, APR_HASH_KEY_STRING);
        if (fresh(e, gen, now) || (status && e && e->next_update > now)) {
            /* a copy: the entry may be replaced once unlocked */
            unsigned char *copy = apr_pmemdup(r->pool, e->der, e->len);
            apr_int64_t tu = e->this_update, nu = e->next_update;
            apr_size_t n = e->len;
            unlock();
            return send_ok(r, copy, n, tu, nu, 1);
        }
        unlock();
        if ((e = entry_load(r, sc, req->cache_key))
            && (fresh(e, gen, now) || (status && e->next_update > now))) {
            apr_int64_t tu = e->this_update, nu = e->next_update;
            apr_size_t n = e->len;
            unsigned char *copy = apr_pmemdup(r->pool, e->der, e->len);
            lock();
            entry_put(state_of(sc, prev), e);
            unlock();
            return send_ok(r, copy, n, tu, nu, 1);
        }
        free(e);
        e = NULL;
    }

    /* make the response */
    st = certauth_store_quiet(r);
    if (!st) {
        return send_error(r, HTTP_SERVICE_UNAVAILABLE,
                          OCSP_RESPONSE_STATUS_TRYLATER,
                          "the certificate database is unavailable");
    }
    if (ca_ocsp_lookup(r->pool, st, req, now, &sts) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(1714)
                      "OCSP: reading the certificates: %s",
                      ca_store_last_error(st));
        return send_error(r, HTTP_SERVICE_UNAVAILABLE,
                          OCSP_RESPONSE_STATUS_TRYLATER,
                          "the certificate database is unavailable");
    }
    if (!(signer = get_signer(r, st, prev, &dbdown))) {
        return send_error(r, dbdown ? HTTP_SERVICE_UNAVAILABLE
                                    : HTTP_INTERNAL_SERVER_ERROR,
                          dbdown ? OCSP_RESPONSE_STATUS_TRYLATER
                                 : OCSP_RESPONSE_STATUS_INTERNALERROR,
                          "no responder certificate");
    }
    rv = ca_ocsp_respond(r->pool, req, sts, signer, now,
                         sc->ocsp_validity_secs, &out, &out_len, &next,
                         &err);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(1715)
                      "OCSP: cannot make the response: %s", err);
        return send_error(r, HTTP_INTERNAL_SERVER_ERROR,
                          OCSP_RESPONSE_STATUS_INTERNALERROR,
                          "cannot make the response");
    }
    /* kept for the next request: one known certificate, under a known
     * CRL (serials never issued are not kept: they may be issued next) */
    known = 1;
    for (i = 0; i < req->count; i++) {
        known = known && sts[i].status != V_OCSP_CERTSTATUS_UNKNOWN;
    }
    keep = req->cacheable && known && gen && !status;
    if (keep && (e = entry_make(req->cache_key, gen, now, next, out,
                                out_len))) {
        entry_save(r, sc, e);
        lock();
        entry_put(state_of(sc, prev), e);
        unlock();
        sweep(r, sc);
    }
    return send_ok(r, out, out_len, now, next, req->cacheable && known);
}
