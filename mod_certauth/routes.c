/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* routes.c: the route table -- the one place where the module's routes are
 * declared -- and certauth_dispatch, the one entry function that applies a
 * route's rules before any endpoint code runs.  An endpoint therefore never
 * checks the method, the media type, the body bound, the caller or the
 * cross-site rule itself: it cannot forget one.
 *
 * The table is also read by tests/integration/test_pipeline.py (one ROUTE
 * line per route), which walks it: keep one route per line. */

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>

#include "mod_certauth.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

#define CSR_TYPES "application/pkcs10 application/x-pem-file " \
                  "application/octet-stream"
#define FORM_TYPES "application/json application/x-www-form-urlencoded"
#define JOSE_TYPES "application/jose+json"
#define OCSP_TYPES "application/ocsp-request"

static int ep_cacert_crt(request_rec *r, certauth_req *q)
{
    (void)q;
    return certauth_publish_cacert(r, 0);
}

static int ep_cacert_pem(request_rec *r, certauth_req *q)
{
    (void)q;
    return certauth_publish_cacert(r, 1);
}

/* cacert/KEYID.crt (the AIA caIssuers URL), cacert/KEYID.pem */
static int ep_cacert_named(request_rec *r, certauth_req *q)
{
    return certauth_publish_cacert_named(r, q->tail);
}

static int ep_cert(request_rec *r, certauth_req *q)
{
    return certauth_publish_cert(r, q->tail);
}

static int ep_crl_der(request_rec *r, certauth_req *q)
{
    (void)q;
    return certauth_crl(r, 0);
}

static int ep_crl_pem(request_rec *r, certauth_req *q)
{
    (void)q;
    return certauth_crl(r, 1);
}

/* crl/previous, crl/KEYID, and each with .pem */
static int ep_crl_named(request_rec *r, certauth_req *q)
{
    apr_size_t n = strlen(q->tail);
    int pem = n > 4 && !strcmp(q->tail + n - 4, ".pem");

    return certauth_crl_named(r, apr_pstrmemdup(r->pool, q->tail,
                                                pem ? n - 4 : n), pem);
}

/*     path, kind (0 the CA's Location, 1 EST, 2 ACME), method, accepted
 *     media types, empty body ok, body bound, caller, changes state, its
 *     name in the audit log, endpoint.
 *     ACME routes (ep_acme.c) need no caller and no cross-site rule: each
 *     POST is a JWS signed by the account's key (checked by the endpoint),
 *     sent as application/jose+json, which no page of another site can
 *     make a browser send without a CORS preflight; no cookie, login or
 *     client certificate of the browser counts. */
#define ROUTE(path, est, m, media, empty, max, caller, state, action, run) \
    { path, est, m, media, empty, max, caller, state, action, run }

const certauth_route certauth_routes[] = {
    ROUTE("cacert.crt", 0, M_GET, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, ep_cacert_crt),
    ROUTE("cacert.pem", 0, M_GET, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, ep_cacert_pem),
    ROUTE("cacert/*", 0, M_GET, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, ep_cacert_named),
    ROUTE("certs/*", 0, M_GET, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, ep_cert),
    ROUTE("crl", 0, M_GET, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, ep_crl_der),
    ROUTE("crl.pem", 0, M_GET, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, ep_crl_pem),
    ROUTE("crl/*", 0, M_GET, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, ep_crl_named),
    ROUTE("enroll", 0, M_POST, CSR_TYPES " text/plain", 0, 0, CERTAUTH_LOGIN, 1, "enroll", certauth_enroll),
    ROUTE("renew", 0, M_POST, CSR_TYPES, 1, 0, CERTAUTH_CERT, 1, "renew", certauth_renew),
    ROUTE("revoke", 0, M_POST, FORM_TYPES, 0, 0, CERTAUTH_EITHER, 1, "revoke", certauth_revoke),
    ROUTE("pkcs12", 0, M_POST, FORM_TYPES, 0, 0, CERTAUTH_LOGIN, 1, "pkcs12", certauth_pkcs12),
    ROUTE("api/certs", 0, M_GET, NULL, 0, 0, CERTAUTH_EITHER, 0, NULL, certauth_api),
    ROUTE("api/audit", 0, M_GET, NULL, 0, 0, CERTAUTH_ADMIN, 0, NULL, certauth_api),
    ROUTE("api/pending", 0, M_GET, NULL, 0, 0, CERTAUTH_ADMIN, 0, NULL, certauth_api),
    ROUTE("api/pending/*", 0, M_POST, "application/json", 0, 0, CERTAUTH_ADMIN, 1, "approval", certauth_api),
    ROUTE("ocsp", 0, M_POST, OCSP_TYPES, 0, 16384, CERTAUTH_ANYONE, 0, NULL, certauth_ocsp),
    ROUTE("ocsp/*", 0, M_GET, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_ocsp),
    ROUTE("cacerts", 1, M_GET, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_est),
    ROUTE("csrattrs", 1, M_GET, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_est),
    ROUTE("simpleenroll", 1, M_POST, "application/pkcs10", 0, 0, CERTAUTH_EITHER, 1, "enroll", certauth_est),
    ROUTE("simplereenroll", 1, M_POST, "application/pkcs10", 0, 0, CERTAUTH_CERT, 1, "reenroll", certauth_est),
    ROUTE("serverkeygen", 1, M_POST, "application/pkcs10", 0, 0, CERTAUTH_EITHER, 1, "serverkeygen", certauth_est),
    ROUTE("api/acme/eab", 0, M_POST, "application/json", 1, 0, CERTAUTH_LOGIN, 1, "acme_eab", certauth_acme_eab),
    ROUTE("directory", 2, M_GET, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE("new-nonce", 2, M_GET, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE("new-account", 2, M_POST, JOSE_TYPES, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE("key-change", 2, M_POST, JOSE_TYPES, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE("new-order", 2, M_POST, JOSE_TYPES, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE("revoke-cert", 2, M_POST, JOSE_TYPES, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE("acct/*", 2, M_POST, JOSE_TYPES, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE("acct/*/orders", 2, M_POST, JOSE_TYPES, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE("order/*", 2, M_POST, JOSE_TYPES, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE("order/*/finalize", 2, M_POST, JOSE_TYPES, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE("authz/*", 2, M_POST, JOSE_TYPES, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE("chall/*", 2, M_POST, JOSE_TYPES, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE("cert/*", 2, M_POST, JOSE_TYPES, 0, 0, CERTAUTH_ANYONE, 0, NULL, certauth_acme),
    ROUTE(NULL, 0, 0, NULL, 0, 0, CERTAUTH_ANYONE, 0, NULL, NULL)
};

/* Does path match the route's path?  A '*' stands for one path segment
 * (not empty, no '/'); *tail gets the path from there on (for a trailing
 * '*', what it matched). */
static int path_matches(const char *pattern, const char *path,
                        const char **tail)
{
    const char *star = strchr(pattern, '*');
    const char *seg, *end;
    apr_size_t n;

    if (!star) {
        *tail = "";
        return !strcmp(pattern, path);
    }
    n = (apr_size_t)(star - pattern);
    if (strncmp(path, pattern, n)) {
        return 0;
    }
    seg = path + n;
    end = strchr(seg, '/');
    if (end == seg || !*seg || strcmp(end ? end : "", star + 1)) {
        return 0;
    }
    *tail = seg;
    return 1;
}

const certauth_route *certauth_route_of(const certauth_dir_conf *dc,
                                        const char *rest)
{
    int est = certauth_is_acme(dc) ? 2 : certauth_is_est(dc);
    const char *op = rest, *slash, *tail;
    const certauth_route *rt;

    if (est == 1) {
        /* at most one label segment before the operation */
        slash = strrchr(rest, '/');
        if (slash) {
            if (slash == rest || memchr(rest, '/', (size_t)(slash - rest))) {
                return NULL;
            }
            op = slash + 1;
        }
    }
    for (rt = certauth_routes; rt->path; rt++) {
        if (rt->est == est && path_matches(rt->path, op, &tail)) {
            return rt;
        }
    }
    return NULL;
}

int certauth_fail(request_rec *r, const certauth_req *q, int status,
                  const char *error, const char *detail)
{
    /* OCSP clients get OCSP responses, errors too */
    if (q && q->route && q->route->run == certauth_ocsp) {
        return certauth_ocsp_fail(r, status, detail && *detail ? detail
                                                               : error);
    }
    if (q && q->route && q->route->est == 1) {
        return certauth_est_error(r, status, detail && *detail ? detail
                                                               : error);
    }
    if (q && q->route && q->route->est == 2) {
        return certauth_acme_fail(r, status, detail && *detail ? detail
                                                               : error);
    }
    return certauth_error(r, status, error, detail);
}

/* "scheme://host[:port]" of a URL, lower case; NULL when it has none. */
static const char *origin_of(apr_pool_t *p, const char *url)
{
    const char *s = url ? strstr(url, "://") : NULL;
    const char *end;

    if (!s) {
        return NULL;
    }
    end = strchr(s + 3, '/');
    return apr_pstrndup(p, url, end ? (apr_size_t)(end - url) : strlen(url));
}

/* Is Origin the site's own: the origin of CertAuthBaseURL, or the scheme
 * and Host of this very request? */
static int own_origin(request_rec *r, const char *origin)
{
    const char *base = origin_of(r->pool, certauth_base_url(r));
    const char *host = apr_table_get(r->headers_in, "Host");
    const char *self = host ? apr_pstrcat(r->pool, ap_http_scheme(r), "://",
                                          host, NULL)
                            : NULL;

    return (base && !strcasecmp(origin, base))
           || (self && !strcasecmp(origin, self));
}

/* A request a page of another site can make a browser send without a
 * CORS preflight: no Content-Type, or a form type, or text/plain. */
static int preflight_free(const char *mtype)
{
    return !*mtype || !strcmp(mtype, "application/x-www-form-urlencoded")
           || !strcmp(mtype, "multipart/form-data")
           || !strcmp(mtype, "text/plain");
}

static int media_listed(const char *list, const char *mtype)
{
    apr_size_t n = strlen(mtype);
    const char *s = list;

    if (!n) {
        return 0;
    }
    while ((s = strstr(s, mtype))) {
        if ((s == list || s[-1] == ' ') && (s[n] == ' ' || !s[n])) {
            return 1;
        }
        s += n;
    }
    return 0;
}

/* Who may call the route: 0, or the refusal's status with *error and
 * *detail (not answered yet). */
static int check_caller_(request_rec *r, certauth_req *q, const char **error,
                         const char **detail)
{
    const certauth_who *who = &q->who;
    const char *why = who->cert_problem;

    switch (q->route->caller) {
    case CERTAUTH_ANYONE:
        return 0;
    case CERTAUTH_LOGIN:
        if (who->user) {
            return 0;
        }
        *error = "login required";
        *detail = "this needs the site's login";
        return HTTP_UNAUTHORIZED;
    case CERTAUTH_CERT:
        if (who->cert) {
            return 0;
        }
        if (!who->presented) {
            *error = "client certificate required";
            *detail = "present the certificate to be renewed (TLS client "
                      "authentication)";
            return HTTP_UNAUTHORIZED;
        }
        *error = "certificate not renewable";
        *detail = apr_pstrcat(r->pool, why, "; enroll again through the "
                              "site login", NULL);
        return HTTP_FORBIDDEN;
    case CERTAUTH_EITHER:
        if (who->user || who->cert) {
            return 0;
        }
        *error = "authentication required";
        *detail = why ? apr_pstrcat(r->pool, why, "; log in", NULL)
                      : "log in, or present a certificate of this CA";
        return HTTP_UNAUTHORIZED;
    case CERTAUTH_ADMIN:
        if (!who->user && !who->cert) {
            *error = "authentication required";
            *detail = why ? apr_pstrcat(r->pool, why, "; log in", NULL)
                          : "log in as an administrator";
            return HTTP_UNAUTHORIZED;
        }
        if (!who->admin) {
            *error = "administrators only";
            *detail = "this is for administrators";
            return HTTP_FORBIDDEN;
        }
        return 0;
    }
    return 0;
}

/* The same, answered (401 with the Location's challenge, or Basic for
 * EST), with the refusals of routes that change state audited; 0 when the
 * caller may go on. */
static int check_caller(request_rec *r, certauth_req *q, int *answered)
{
    const char *error = NULL, *detail = NULL;
    int status = check_caller_(r, q, &error, &detail);

    *answered = 0;
    if (!status) {
        return 0;
    }
    if (q->route->action) {
        certauth_audit(r, q->st, &q->who, q->route->action, "", "refused",
                       detail);
    }
    *answered = 1;
    return certauth_fail(r, q, status, error, detail);
}

int certauth_dispatch(request_rec *r, const certauth_route *rt,
                      const char *rest)
{
    const certauth_dir_conf *dc = certauth_dir(r);
    certauth_req *q = apr_pcalloc(r->pool, sizeof(*q));
    apr_off_t max = rt->max_body ? rt->max_body : certauth_dir_max_body(dc);
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    const char *te = apr_table_get(r->headers_in, "Transfer-Encoding");
    const char *origin = apr_table_get(r->headers_in, "Origin");
    int status, answered = 0;

    q->route = rt;
    q->rest = rest;
    if (rt->est == 1) {
        const char *slash = strrchr(rest, '/');
        q->op = slash ? slash + 1 : rest;
        q->label = slash ? apr_pstrndup(r->pool, rest,
                                        (apr_size_t)(slash - rest))
                         : NULL;
    }
    else {
        path_matches(rt->path, rest, &q->tail);
    }
    q->mtype = certauth_media_type(r->pool,
                                   apr_table_get(r->headers_in,
                                                 "Content-Type"));
    /* every response of the module: never sniffed as another type */
    apr_table_setn(r->err_headers_out, "X-Content-Type-Options", "nosniff");

    /* 405 */
    if (r->method_number != rt->method) {
        ap_discard_request_body(r);
        r->allowed = (AP_METHOD_BIT << rt->method);
        apr_table_setn(r->err_headers_out, "Allow",
                       rt->method == M_GET ? "GET, HEAD" : "POST");
        return certauth_fail(r, q, HTTP_METHOD_NOT_ALLOWED,
                             "method not allowed",
                             rt->method == M_GET ? "use GET" : "use POST");
    }
    /* 413 before anything is read */
    if (cl) {
        char *end;
        apr_off_t clen;
        if (apr_strtoff(&clen, cl, &end, 10) != APR_SUCCESS || *end
            || clen < 0) {
            r->connection->keepalive = AP_CONN_CLOSE;
            return certauth_fail(r, q, HTTP_BAD_REQUEST, "bad request",
                                 "bad Content-Length");
        }
        if (clen > (rt->media ? max : 0)) {
            r->connection->keepalive = AP_CONN_CLOSE;
            ap_discard_request_body(r);
            return certauth_fail(r, q, HTTP_REQUEST_ENTITY_TOO_LARGE,
                                 "request too large",
                                 rt->media ? apr_psprintf(r->pool, "at most %"
                                                          APR_OFF_T_FMT
                                                          " bytes", max)
                                           : "this takes no request body");
        }
    }
    else if (te && !rt->media) {
        r->connection->keepalive = AP_CONN_CLOSE;
        ap_discard_request_body(r);
        return certauth_fail(r, q, HTTP_REQUEST_ENTITY_TOO_LARGE,
                             "request too large",
                             "this takes no request body");
    }
    /* 415: an empty body of a route that takes one is fine whatever its
     * type (renew: keep the key) */
    if (rt->media && !media_listed(rt->media, q->mtype)
        && !(rt->empty_ok && !te && (!cl || !strcmp(cl, "0")))) {
        ap_discard_request_body(r);
        return certauth_fail(r, q, HTTP_UNSUPPORTED_MEDIA_TYPE,
                             "unsupported content type",
                             apr_psprintf(r->pool, "'%s': send %s",
                                          *q->mtype ? q->mtype : "(none)",
                                          rt->media));
    }
    /* who asks */
    if (rt->caller != CERTAUTH_ANYONE) {
        if (!(q->st = certauth_store(r, &status))) {
            ap_discard_request_body(r);
            return status;
        }
        if ((status = certauth_identify(r, q->st, &q->who))) {
            ap_discard_request_body(r);
            return certauth_fail(r, q, status, "database unavailable",
                                 "try again later");
        }
        status = check_caller(r, q, &answered);
        if (answered) {
            ap_discard_request_body(r);
            return status;
        }
    }
    /* the cross-site rule for every route that changes state */
    if (rt->changes_state) {
        const char *why = NULL;

        if (origin && !own_origin(r, origin)) {
            why = apr_pstrcat(r->pool, "cross-site request refused: "
                              "requests from ", origin, " are not accepted",
                              NULL);
        }
        else if (preflight_free(q->mtype)
                 && !apr_table_get(r->headers_in, "X-Requested-With")) {
            why = "cross-site request refused: a request without a "
                  "Content-Type, or a form or text/plain one, needs an "
                  "X-Requested-With header";
        }
        if (why) {
            ap_discard_request_body(r);
            certauth_audit(r, q->st, &q->who, rt->action, "", "refused",
                           why);
            return certauth_fail(r, q, HTTP_FORBIDDEN,
                                 "cross-site request refused", why);
        }
    }
    /* the body, bounded (chunked bodies too) */
    if (rt->media) {
        status = certauth_read_body(r, max, &q->body, &q->len);
        if (status == HTTP_REQUEST_ENTITY_TOO_LARGE) {
            return certauth_fail(r, q, status, "request too large",
                                 apr_psprintf(r->pool, "at most %"
                                              APR_OFF_T_FMT " bytes", max));
        }
        if (status) {
            return certauth_fail(r, q, status, "bad request",
                                 "the request body cannot be read");
        }
        /* it may hold a secret (pkcs12's password): wiped on every path */
        ca_pool_wipe(r->pool, q->body, q->len);
    }
    return rt->run(r, q);
}
