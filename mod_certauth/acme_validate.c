/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* acme_validate.c: the ACME server's challenge validations, outside the
 * request that asked for them: in a detached thread of the child on
 * threaded MPMs (its own pool and its own mod_dbd connection), after the
 * response on prefork (log_transaction).  http-01 through libcurl (bounded
 * in time and size, redirects only to http on the challenge port or https
 * on 443 and only to names the profile allows); tls-alpn-01 (RFC 8737)
 * through OpenSSL.  The result goes to the store: the challenge and its
 * authorization valid, or the challenge, authorization and order invalid
 * with the problem. */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_mpm.h>
#include <apr_atomic.h>
#include <apr_strings.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mod_certauth.h"
#include "ca_acme.h"
#include "ca_jws.h"
#include "ca_store_acme.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

#define HTTP01_MAX_BODY 8192
#define MAX_THREADS 16           /* validation threads per child */
#define VALIDATE_SECS 30         /* all of a validation, redirects too */

static apr_uint32_t running_threads;

/* A validation to run outside the request. */
typedef struct acme_job {
    apr_pool_t *pool;            /* its own (unmanaged) pool               */
    server_rec *s;
    const char *chall_id, *authz_id, *order_id, *ident, *token, *key_authz;
    const char *client;          /* the ACME client, for the log           */
    const char *type;            /* http-01, tls-alpn-01                   */
    int port;                    /* http-01's port                         */
    int tls_port;                /* tls-alpn-01's port                     */
    apr_array_header_t *patterns;
} acme_job;

typedef struct fetch_buf {
    char data[HTTP01_MAX_BODY + 1];
    apr_size_t len;
    int too_big;
} fetch_buf;

static size_t fetch_write(char *ptr, size_t size, size_t n, void *baton)
{
    fetch_buf *b = baton;
    size_t len = size * n;
    if (b->len + len > HTTP01_MAX_BODY) {
        b->too_big = 1;
        return 0; /* aborts the transfer */
    }
    memcpy(b->data + b->len, ptr, len);
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

/* Is a redirect target acceptable (RFC 8555 section 8.3: http or https on
 * the ports in use; here also only to names the profile allows)? */
static int redirect_ok(apr_pool_t *p, const acme_job *j, const char *url,
                       const char **why)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    const char *n;
    int ok = 0;

    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)
               != CURLUE_OK) {
        *why = "the redirect target is not a URL";
        goto leave;
    }
    n = ca_acme_dns_normalize(p, host);
    if (!n || !ca_acme_name_allowed(j->patterns, n)) {
        *why = apr_psprintf(p, "redirect to %s, which the profile does not "
                            "allow", host);
        goto leave;
    }
    if (!strcmp(scheme, "http") ? atoi(port) != j->port
        : !strcmp(scheme, "https") ? atoi(port) != 443 : 1) {
        *why = apr_psprintf(p, "redirect to %s://%s:%s: only http on port "
                            "%d or https on port 443", scheme, host, port,
                            j->port);
        goto leave;
    }
    ok = 1;
leave:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

/* http-01: fetch the key authorization.  NULL when it matches, else a
 * problem type ("connection", "incorrectResponse", "unauthorized") with
 * *detail. */
static const char *http01(apr_pool_t *p, const acme_job *j,
                          const char **detail)
{
    const char *url = apr_psprintf(p, "http://%s:%d/.well-known/"
                                   "acme-challenge/%s", j->ident, j->port,
                                   j->token);
    fetch_buf *b = apr_pcalloc(p, sizeof(*b));
    apr_time_t deadline = apr_time_now() + apr_time_from_sec(VALIDATE_SECS);
    int hops;

    for (hops = 0; hops <= 10; hops++) {
        long left_ms = (long)apr_time_as_msec(deadline - apr_time_now());
        CURL *c = curl_easy_init();
        CURLcode cc;
        long code = 0;
        char *loc = NULL;
        const char *why = NULL;

        if (!c) {
            *detail = "cannot start a fetch";
            return "serverInternal";
        }
        if (left_ms <= 0) {
            curl_easy_cleanup(c);
            *detail = apr_psprintf(p, "%s: no answer within %d s", url,
                                   VALIDATE_SECS);
            return "connection";
        }
        b->len = 0;
        b->too_big = 0;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                         left_ms < 10000 ? left_ms : 10000L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_USERAGENT, "mod_certauth-acme");
        /* RFC 8555 8.3: the certificate of an https redirect target is
         * not checked (the name is not proven yet) */
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
        cc = curl_easy_perform(c);
        if (cc != CURLE_OK) {
            *detail = b->too_big
                ? apr_psprintf(p, "%s: the answer is larger than %d bytes",
                               url, HTTP01_MAX_BODY)
                : apr_psprintf(p, "%s: %s", url, curl_easy_strerror(cc));
            curl_easy_cleanup(c);
            return b->too_big ? "incorrectResponse" : "connection";
        }
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 300 && code < 400) {
            curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
            if (!loc || !redirect_ok(p, j, loc, &why)) {
                *detail = apr_psprintf(p, "%s: %s", url,
                                       why ? why : "redirect without "
                                                   "Location");
                curl_easy_cleanup(c);
                return "unauthorized";
            }
            url = apr_pstrdup(p, loc);
            curl_easy_cleanup(c);
            continue;
        }
        curl_easy_cleanup(c);
        if (code != 200) {
            *detail = apr_psprintf(p, "%s answered %ld", url, code);
            return "unauthorized";
        }
        if (!ca_acme_http01_body_ok(b->data, b->len, j->key_authz)) {
            *detail = apr_psprintf(p, "%s did not answer the key "
                                   "authorization", url);
            return "incorrectResponse";
        }
        return NULL;
    }
    *detail = "more than 10 redirects";
    return "unauthorized";
}


/* A TCP connection to host:port within `secs` seconds, reads and writes
 * bounded the same; -1 with *detail. */
static int connect_bounded(apr_pool_t *p, const char *host, int port,
                           int secs, const char **detail)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16];
    int fd = -1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    apr_snprintf(portstr, sizeof(portstr), "%d", port);
    /* curl's rule for http-01 too: names under localhost are loopback */
    if (!strcmp(host, "localhost")
        || (strlen(host) > 10
            && !strcmp(host + strlen(host) - 10, ".localhost"))) {
        host = "localhost";
    }
    if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
        *detail = apr_psprintf(p, "%s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        struct pollfd pfd;
        int flags, err = 0;
        socklen_t elen = sizeof(err);
        struct timeval tv;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        flags = fcntl(fd, F_GETFL, 0);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pfd.fd = fd;
            pfd.events = POLLOUT;
            rc = poll(&pfd, 1, secs * 1000) == 1
                 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0
                 && err == 0 ? 0 : -1;
        }
        if (rc == 0) {
            fcntl(fd, F_SETFL, flags);
            tv.tv_sec = secs;
            tv.tv_usec = 0;
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        *detail = apr_psprintf(p, "cannot connect to %s port %d", host,
                               port);
    }
    return fd;
}

/* tls-alpn-01 (RFC 8737): a TLS handshake with SNI NAME and ALPN
 * acme-tls/1; the certificate must name only NAME and carry the critical
 * acmeIdentifier extension with the SHA-256 of the key authorization.
 * NULL when it does, else a problem type with *detail. */
static const char *tlsalpn01(apr_pool_t *p, const acme_job *j,
                             const char **detail)
{
    static const unsigned char alpn[] = "\x0a" "acme-tls/1";
    unsigned char want[34];
    unsigned int mdlen = 32;
    const unsigned char *proto = NULL;
    unsigned int plen = 0;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    X509 *peer = NULL;
    GENERAL_NAMES *gens = NULL;
    ASN1_OBJECT *oid = NULL;
    const char *type = "unauthorized";
    int fd, idx, ok;

    want[0] = 0x04;          /* DER OCTET STRING of 32 octets */
    want[1] = 0x20;
    if (!EVP_Digest(j->key_authz, strlen(j->key_authz), want + 2, &mdlen,
                    EVP_sha256(), NULL)) {
        *detail = "SHA-256 failed";
        return "serverInternal";
    }
    fd = connect_bounded(p, j->ident, j->tls_port, 10, detail);
    if (fd < 0) {
        return "connection";
    }
    if (!(ctx = SSL_CTX_new(TLS_client_method()))
        || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
        || SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0
        || !(ssl = SSL_new(ctx)) || !SSL_set_fd(ssl, fd)
        || !SSL_set_tlsext_host_name(ssl, j->ident)) {
        *detail = "cannot set up TLS";
        type = "serverInternal";
        goto leave;
    }
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    if (SSL_connect(ssl) != 1) {
        *detail = apr_psprintf(p, "%s port %d: TLS handshake failed",
                               j->ident, j->tls_port);
        type = "tls";
        goto leave;
    }
    SSL_get0_alpn_selected(ssl, &proto, &plen);
    if (plen != 10 || memcmp(proto, "acme-tls/1", 10)) {
        *detail = apr_psprintf(p, "%s port %d did not select ALPN "
                               "acme-tls/1", j->ident, j->tls_port);
        goto leave;
    }
    if (!(peer = SSL_get1_peer_certificate(ssl))) {
        *detail = "no certificate";
        goto leave;
    }
    gens = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
    ok = gens && sk_GENERAL_NAME_num(gens) == 1;
    if (ok) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, 0);
        ASN1_IA5STRING *dns = g->type == GEN_DNS ? g->d.dNSName : NULL;
        ok = dns && (size_t)ASN1_STRING_length(dns) == strlen(j->ident)
             && !strncasecmp((const char *)ASN1_STRING_get0_data(dns),
                             j->ident, strlen(j->ident));
    }
    if (!ok) {
        *detail = apr_psprintf(p, "the certificate must name %s and no "
                               "other name", j->ident);
        goto leave;
    }
    oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    idx = oid ? X509_get_ext_by_OBJ(peer, oid, -1) : -1;
    if (idx < 0 || X509_get_ext_by_OBJ(peer, oid, idx) >= 0) {
        *detail = "the certificate has no (or more than one) "
                  "acmeIdentifier extension";
        goto leave;
    }
    {
        X509_EXTENSION *ext = X509_get_ext(peer, idx);
        ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
        if (!X509_EXTENSION_get_critical(ext)) {
            *detail = "the acmeIdentifier extension is not critical";
            goto leave;
        }
        if (ASN1_STRING_length(v) != (int)sizeof(want)
            || CRYPTO_memcmp(ASN1_STRING_get0_data(v), want,
                             sizeof(want))) {
            *detail = "the acmeIdentifier is not the key authorization's";
            type = "incorrectResponse";
            goto leave;
        }
    }
    type = NULL;
leave:
    ASN1_OBJECT_free(oid);
    GENERAL_NAMES_free(gens);
    X509_free(peer);
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    SSL_CTX_free(ctx);
    close(fd);
    return type;
}

/* The network part of a job (bounded by its own timeouts), done before a
 * database connection is taken: NULL when valid, else the error type with
 * *detail. */
static const char *validate(acme_job *j, const char **detail)
{
    return !strcmp(j->type, "tls-alpn-01") ? tlsalpn01(j->pool, j, detail)
                                           : http01(j->pool, j, detail);
}

/* The outcome of validate() stored: challenge, authorization (and, when
 * invalid, the order). */
static void store_result(acme_job *j, ca_store_t *st, const char *type,
                         const char *detail)
{
    apr_pool_t *p = j->pool;
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    apr_status_t rv;

    if (!type) {
        rv = ca_store_acme_chall_set(st, p, j->chall_id, CA_ACME_PROCESSING,
                                     CA_ACME_VALID, now, NULL);
        if (rv == APR_SUCCESS) {
            rv = ca_store_acme_authz_set(st, p, j->authz_id, CA_ACME_PENDING,
                                         CA_ACME_VALID);
        }
        ap_log_error(APLOG_MARK, APLOG_INFO, rv, j->s, CA_LOGNO(1907)
                     "ACME %s for %s (client %s): valid%s", j->type,
                     j->ident, j->client, rv ? ", but not stored" : "");
    }
    else {
        json_t *e = json_pack("{s:s,s:s,s:i}", "type",
                              apr_pstrcat(p, CA_ACME_ERR_PREFIX, type, NULL),
                              "detail", detail, "status", 403);
        char *es = json_dumps(e, JSON_COMPACT);
        const char *err = apr_pstrdup(p, es ? es : "");
        free(es);
        json_decref(e);
        rv = ca_store_acme_chall_set(st, p, j->chall_id, CA_ACME_PROCESSING,
                                     CA_ACME_INVALID, 0, err);
        if (rv == APR_SUCCESS) {
            rv = ca_store_acme_authz_set(st, p, j->authz_id, CA_ACME_PENDING,
                                         CA_ACME_INVALID);
        }
        if (rv == APR_SUCCESS) {
            rv = ca_store_acme_order_set(st, p, j->order_id, CA_ACME_PENDING,
                                         CA_ACME_INVALID, NULL, err);
        }
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, j->s, CA_LOGNO(1908)
                     "ACME %s for %s (client %s): invalid: %s: %s", j->type,
                     j->ident, j->client, type, detail);
    }
    if (rv != APR_SUCCESS && rv != CA_ECONFLICT) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, j->s, CA_LOGNO(1909)
                     "ACME: cannot store the validation of %s: %s", j->ident,
                     ca_store_last_error(st));
    }
}

/* A plain detached thread: its pool is the job's own, destroyed here
 * (apr_thread_exit would destroy a pool of the thread's creator). */
static void *job_thread(void *data)
{
    acme_job *j = data;
    void *handle = NULL;
    const char *detail = NULL;
    /* the fetch or handshake first: no database connection of this
     * process's pool is held while it waits on the network */
    const char *type = validate(j, &detail);
    ca_store_t *st = certauth_store_bg(j->pool, j->s, &handle);

    if (st) {
        store_result(j, st, type, detail);
        certauth_store_release(j->s, handle);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, j->s, CA_LOGNO(1910)
                     "ACME: no database connection to validate %s; the "
                     "challenge stays processing until the order expires",
                     j->ident);
    }
    apr_pool_destroy(j->pool);
    apr_atomic_dec32(&running_threads);
    return NULL;
}

static apr_status_t job_pool_free(void *p)
{
    apr_pool_destroy(p);
    return APR_SUCCESS;
}

void certauth_acme_validate(request_rec *r, const certauth_srv_conf *sc,
                            const char *account_jwk,
                            const ca_acme_authz_t *z,
                            const ca_acme_chall_t *c)
{
    apr_pool_t *p;
    acme_job *j;
    const char *tp = NULL, *err = NULL;
    json_error_t je;
    json_t *jwk = json_loads(account_jwk, 0, &je);
    int threaded = 0, i;

    ca_jwk_thumbprint(r->pool, jwk, &tp, &err);
    json_decref(jwk);
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    j = apr_pcalloc(p, sizeof(*j));
    j->pool = p;
    j->s = r->server;
    j->chall_id = apr_pstrdup(p, c->id);
    j->authz_id = apr_pstrdup(p, z->id);
    j->order_id = apr_pstrdup(p, z->order_id);
    j->ident = apr_pstrdup(p, z->ident);
    j->token = apr_pstrdup(p, c->token);
    j->key_authz = ca_acme_key_authz(p, c->token, tp ? tp : "");
    j->client = apr_pstrdup(p, r->useragent_ip);
    j->type = apr_pstrdup(p, c->type);
    j->port = sc->acme_http_port > 0 ? sc->acme_http_port : 80;
    j->tls_port = sc->acme_tls_port > 0 ? sc->acme_tls_port : 443;
    j->patterns = apr_array_make(p, sc->acme_names->nelts,
                                 sizeof(const char *));
    for (i = 0; i < sc->acme_names->nelts; i++) {
        APR_ARRAY_PUSH(j->patterns, const char *)
            = apr_pstrdup(p, APR_ARRAY_IDX(sc->acme_names, i,
                                           const char *));
    }
    ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded);
    if (threaded != AP_MPMQ_NOT_SUPPORTED
        && apr_atomic_inc32(&running_threads) < MAX_THREADS) {
        pthread_attr_t attr;
        pthread_t t;
        int ok = pthread_attr_init(&attr) == 0;
        ok = ok && pthread_attr_setdetachstate(&attr,
                                               PTHREAD_CREATE_DETACHED) == 0
             && pthread_create(&t, &attr, job_thread, j) == 0;
        pthread_attr_destroy(&attr);
        if (ok) {
            return;
        }
        apr_atomic_dec32(&running_threads);
    }
    else if (threaded != AP_MPMQ_NOT_SUPPORTED) {
        apr_atomic_dec32(&running_threads);
    }
    /* after the response, in this request's thread */
    ap_set_module_config(r->request_config, &certauth_module, j);
    apr_pool_cleanup_register(r->pool, p, job_pool_free,
                              apr_pool_cleanup_null);
}

int certauth_acme_log_transaction(request_rec *r)
{
    acme_job *j = ap_get_module_config(r->request_config, &certauth_module);
    const char *detail = NULL, *type;
    ca_store_t *st;

    if (!j) {
        return DECLINED;
    }
    ap_set_module_config(r->request_config, &certauth_module, NULL);
    type = validate(j, &detail);
    /* the request's own deadline may have passed while the client's
     * server was asked: the result gets a bound of its own */
    certauth_store_deadline(r, apr_time_now()
                               + certauth_db_timeout(r->server));
    if ((st = certauth_store_quiet(r))) {
        store_result(j, st, type, detail);
    }
    return DECLINED;
}


/* libcurl's global set-up, once, in the parent before any CA key is
 * loaded: it initialises OpenSSL with its configuration, which done again
 * in a child after a PKCS#11 CA key was opened there made that key unable
 * to sign (test_pkcs11.py). */
void certauth_acme_pre_config(void)
{
    static int done;

    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        done = 1;
    }
}
