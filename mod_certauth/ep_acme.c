/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ep_acme.c: an ACME (RFC 8555) server below a Location saying
 * `CertAuthACME On`, and POST api/acme/eab below the CA's Location.
 *
 * Resources (below the Location L):
 *   GET  L/directory                  the directory
 *   HEAD/GET L/new-nonce              a nonce (an HMAC under a key kept in
 *                                     the database, so every child and
 *                                     front end accepts it; handing one
 *                                     out writes nothing)
 *   POST L/new-account, L/acct/ID, L/key-change
 *   POST L/new-order, L/order/ID, L/order/ID/finalize, L/authz/ID,
 *        L/chall/ID, L/cert/SERIAL, L/revoke-cert, L/acct/ID/orders
 * Every POST is a JWS (application/jose+json) checked the same way in
 * acme_post(): url, nonce, jwk or kid, signature, then the resource.
 * Accounts are bound to a site user through external account binding;
 * that user owns the certificates.  http-01 and tls-alpn-01 validations
 * run outside the request (acme_validate.c). */

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_atomic.h>
#include <apr_strings.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mod_certauth.h"
#include "ca_acme.h"
#include "ca_jws.h"
#include "ca_lifecycle.h"
#include "ca_store_acme.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

#define ACME_CT_JOSE "application/jose+json"
#define NONCE_SECS 3600          /* a nonce's lifetime                    */
#define NONCE_SKEW 300           /* front ends' clocks may differ so much  */
#define ORDER_SECS (7 * 86400)
#define EAB_SECS (30 * 86400)
#define MAX_IDENTS 100
#define RESTART_SECS 90          /* processing longer: its child is gone */

int certauth_is_acme(const certauth_dir_conf *dc)
{
    return dc && dc->acme == 1;
}

/* One ACME request. */
typedef struct acme_req {
    request_rec *r;
    certauth_req *q;             /* what the route table settled           */
    const certauth_srv_conf *sc;
    ca_store_t *st;
    const char *base;            /* absolute URL of the Location          */
    apr_int64_t now;
    ca_jws_t *jws;
    json_t *payload;             /* NULL: POST-as-GET                      */
    ca_acme_account_t *acct;     /* the kid's account                      */
    json_t *jwk;                 /* the jwk of a jwk-signed request        */
    EVP_PKEY *key;               /* the verified key                       */
} acme_req;

static const char *acme_url(acme_req *a, const char *path)
{
    return apr_pstrcat(a->r->pool, a->base, "/", path, NULL);
}

/* The nonces' MAC key of this process: read from the database by the
 * first request that needs it (made there once per database), then kept
 * for the life of the child; NULL until then. */
static volatile void *nonce_key_cache;

static const unsigned char *nonce_key_cached(void)
{
    return apr_atomic_casptr(&nonce_key_cache, NULL, NULL);
}

/* The key, read from the database when this process has none yet (a->st
 * needed then); NULL (logged) when it cannot be had. */
static const unsigned char *nonce_key(acme_req *a)
{
    const unsigned char *k = nonce_key_cached();
    const char *fresh, *b64 = NULL;
    unsigned char *raw = NULL, *mine;
    apr_size_t len = 0;
    apr_status_t rv;

    if (k || !a->st) {
        return k;
    }
    fresh = ca_acme_random(a->r->pool, CA_ACME_NONCE_KEY_LEN);
    rv = ca_store_acme_nonce_key(a->st, a->r->pool, fresh, a->now, &b64);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, a->r, CA_LOGNO(1902)
                      "cannot read or make the ACME nonce key: %s",
                      ca_store_last_error(a->st));
        return NULL;
    }
    if (ca_b64url_decode(a->r->pool, b64, &raw, &len) != APR_SUCCESS
        || len != CA_ACME_NONCE_KEY_LEN || !(mine = malloc(len))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, a->r, CA_LOGNO(1915)
                      "the ACME nonce key in the database is not %d "
                      "base64url octets", CA_ACME_NONCE_KEY_LEN);
        return NULL;
    }
    memcpy(mine, raw, len);
    OPENSSL_cleanse(raw, len);
    /* several threads may have read it at once: the first one's stays */
    k = apr_atomic_casptr(&nonce_key_cache, mine, NULL);
    if (k) {
        OPENSSL_cleanse(mine, len);
        free(mine);
        return k;
    }
    return mine;
}

/* A fresh nonce in Replay-Nonce (and the index link).  It costs no
 * database access once the process has the key. */
static void add_nonce(acme_req *a)
{
    const unsigned char *key = nonce_key(a);
    const char *n;

    apr_table_setn(a->r->err_headers_out, "Link",
                   apr_psprintf(a->r->pool, "<%s>;rel=\"index\"",
                                acme_url(a, "directory")));
    if (!key) {
        return;
    }
    n = ca_acme_nonce_make(a->r->pool, key, CA_ACME_NONCE_KEY_LEN, a->now);
    if (n) {
        apr_table_setn(a->r->err_headers_out, "Replay-Nonce", n);
    }
}

static int send_json(acme_req *a, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_INDENT(2));
    const char *out = apr_pstrcat(a->r->pool, s ? s : "{}", "\n", NULL);
    free(s);
    json_decref(body);
    apr_table_setn(a->r->err_headers_out, "Cache-Control", "no-store");
    return certauth_send(a->r, status, "application/json", out, strlen(out));
}

/* A problem document (RFC 7807, RFC 8555 section 6.7), with a nonce. */
static int problem_sub(acme_req *a, int status, const char *type,
                       const char *detail, json_t *subproblems)
{
    json_t *p = json_pack("{s:s,s:s,s:i}", "type",
                          apr_pstrcat(a->r->pool, CA_ACME_ERR_PREFIX, type,
                                      NULL),
                          "detail", detail ? detail : "", "status", status);
    char *s;
    const char *out;

    if (subproblems) {
        json_object_set_new(p, "subproblems", subproblems);
    }
    if (!strcmp(type, "badSignatureAlgorithm")) {
        json_object_set_new(p, "algorithms",
                            json_pack("[s,s,s,s]", "ES256", "ES384",
                                      "RS256", "EdDSA"));
    }
    ap_log_rerror(APLOG_MARK, status >= 500 ? APLOG_WARNING : APLOG_INFO, 0,
                  a->r, CA_LOGNO(1903) "ACME %d %s: %s (client %s)", status,
                  type, detail ? detail : "", a->r->useragent_ip);
    add_nonce(a);
    if (status == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(a->r->err_headers_out, "Retry-After",
                       CERTAUTH_RETRY_AFTER);
    }
    apr_table_setn(a->r->err_headers_out, "Cache-Control", "no-store");
    apr_table_unset(a->r->headers_out, "Location");
    s = json_dumps(p, JSON_INDENT(2));
    json_decref(p);
    out = apr_pstrcat(a->r->pool, s ? s : "{}", "\n", NULL);
    free(s);
    certauth_send(a->r, status, "application/problem+json", out,
                  strlen(out));
    /* non-zero, so that the checks stop at it; httpd takes DONE for OK */
    return DONE;
}

static int problem(acme_req *a, int status, const char *type,
                   const char *detail)
{
    return problem_sub(a, status, type, detail, NULL);
}

static int db_problem(acme_req *a, apr_status_t rv)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, a->r, CA_LOGNO(1904)
                  "ACME database error: %s",
                  a->st ? ca_store_last_error(a->st) : "no connection");
    return problem(a, HTTP_SERVICE_UNAVAILABLE, "serverInternal",
                   "the database is unavailable; try again later");
}

static void audit(acme_req *a, const char *owner, const char *action,
                  const char *serial, const char *outcome,
                  const char *detail)
{
    certauth_who who;

    /* the account's owner acts, through the account (no login) */
    memset(&who, 0, sizeof(who));
    who.owner = owner;
    certauth_audit(a->r, a->st, owner ? &who : NULL, action,
                   serial ? serial : "", outcome,
                   apr_pstrcat(a->r->pool, "ACME", a->acct ? " account " : "",
                               a->acct ? a->acct->id : "",
                               detail ? ": " : "", detail ? detail : "",
                               NULL));
}

static const char *iso_time(apr_pool_t *p, apr_int64_t t)
{
    return ap_ht_time(p, apr_time_from_sec(t), "%Y-%m-%dT%H:%M:%SZ", 1);
}

/* ---- objects ---------------------------------------------------------- */

static json_t *account_json(acme_req *a, const ca_acme_account_t *acct)
{
    json_error_t je;
    json_t *contact = json_loads(acct->contact, 0, &je);
    json_t *o = json_pack("{s:s,s:o,s:s}", "status", acct->status,
                          "contact", json_is_array(contact) ? contact
                                                            : json_array(),
                          "orders",
                          acme_url(a, apr_pstrcat(a->r->pool, "acct/",
                                                  acct->id, "/orders",
                                                  NULL)));
    if (contact && !json_is_array(contact)) {
        json_decref(contact);
    }
    if (*acct->eab_kid) {
        json_object_set_new(o, "externalAccountBinding",
                            json_pack("{s:s}", "kid", acct->eab_kid));
    }
    return o;
}

static apr_array_header_t *ident_list(apr_pool_t *p, const char *idents)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    char *copy = apr_pstrdup(p, idents), *last, *tok;

    for (tok = apr_strtok(copy, ",", &last); tok;
         tok = apr_strtok(NULL, ",", &last)) {
        APR_ARRAY_PUSH(a, const char *) = tok;
    }
    return a;
}

/* The status an order shows now, from its authorizations. */
static apr_status_t order_state(acme_req *a, ca_acme_order_t *o,
                                apr_array_header_t **authz,
                                const char **status)
{
    apr_array_header_t *st;
    apr_status_t rv = ca_store_acme_order_authz(a->st, a->r->pool, o->id,
                                                authz);
    int i;

    if (rv != APR_SUCCESS) {
        return rv;
    }
    st = apr_array_make(a->r->pool, (*authz)->nelts, sizeof(const char *));
    for (i = 0; i < (*authz)->nelts; i++) {
        ca_acme_authz_t *z = APR_ARRAY_IDX(*authz, i, ca_acme_authz_t *);
        APR_ARRAY_PUSH(st, const char *) = z->status;
    }
    *status = ca_acme_order_status(o->status, st, o->expires, a->now);
    return APR_SUCCESS;
}

static json_t *order_json(acme_req *a, ca_acme_order_t *o,
                          apr_array_header_t *authz, const char *status)
{
    apr_array_header_t *ids = ident_list(a->r->pool, o->identifiers);
    json_t *jids = json_array(), *jauthz = json_array(), *j;
    int i;

    for (i = 0; i < ids->nelts; i++) {
        json_array_append_new(jids, json_pack("{s:s,s:s}", "type", "dns",
                                              "value",
                                              APR_ARRAY_IDX(ids, i,
                                                            const char *)));
    }
    for (i = 0; i < authz->nelts; i++) {
        ca_acme_authz_t *z = APR_ARRAY_IDX(authz, i, ca_acme_authz_t *);
        json_array_append_new(jauthz, json_string(
            acme_url(a, apr_pstrcat(a->r->pool, "authz/", z->id, NULL))));
    }
    j = json_pack("{s:s,s:s,s:o,s:o,s:s}", "status", status,
                  "expires", iso_time(a->r->pool, o->expires),
                  "identifiers", jids, "authorizations", jauthz,
                  "finalize",
                  acme_url(a, apr_pstrcat(a->r->pool, "order/", o->id,
                                          "/finalize", NULL)));
    if (!strcmp(status, CA_ACME_VALID) && *o->serial) {
        json_object_set_new(j, "certificate", json_string(
            acme_url(a, apr_pstrcat(a->r->pool, "cert/", o->serial, NULL))));
    }
    if (*o->error) {
        json_error_t je;
        json_t *e = json_loads(o->error, 0, &je);
        if (e) {
            json_object_set_new(j, "error", e);
        }
    }
    return j;
}

static json_t *chall_json(acme_req *a, ca_acme_chall_t *c)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "type", c->type,
                          "url", acme_url(a, apr_pstrcat(a->r->pool,
                                                         "chall/", c->id,
                                                         NULL)),
                          "status", c->status, "token", c->token);
    if (c->validated_at && !strcmp(c->status, CA_ACME_VALID)) {
        json_object_set_new(j, "validated", json_string(
            iso_time(a->r->pool, c->validated_at)));
    }
    if (*c->error) {
        json_error_t je;
        json_t *e = json_loads(c->error, 0, &je);
        if (e) {
            json_object_set_new(j, "error", e);
        }
    }
    return j;
}

/* ---- request checks --------------------------------------------------- */

/* The request URL as the client named it (scheme, host, port, path). */
static const char *request_url(request_rec *r)
{
    return ap_construct_url(r->pool, r->uri, r);
}

static apr_status_t load_account(acme_req *a, const char *kid, int *status,
                                 const char **type, const char **detail)
{
    const char *prefix = acme_url(a, "acct/");
    apr_size_t n = strlen(prefix);
    apr_status_t rv;

    if (strncmp(kid, prefix, n) || !kid[n] || strchr(kid + n, '/')) {
        *status = HTTP_BAD_REQUEST;
        *type = "accountDoesNotExist";
        *detail = "the kid is not an account URL of this server";
        return CA_ENOTFOUND;
    }
    rv = ca_store_acme_account_get(a->st, a->r->pool, kid + n, &a->acct);
    if (rv == CA_ENOTFOUND) {
        *status = HTTP_BAD_REQUEST;
        *type = "accountDoesNotExist";
        *detail = "no such account";
    }
    return rv;
}

/* Read and check a POST: JWS, url, nonce, key, signature.  0 when the
 * request may go on, else the response was sent (the returned status).
 * jwk_ok: the request may be signed by a jwk (newAccount, revokeCert);
 * jwk_only: it must be (newAccount). */
static int acme_post(acme_req *a, int jwk_ok, int jwk_only)
{
    request_rec *r = a->r;
    const char *err = NULL, *type = NULL, *detail = NULL;
    const char *body = a->q->body;
    apr_size_t len = a->q->len;
    const unsigned char *nkey;
    apr_int64_t issued = 0;
    apr_status_t rv;
    int status;

    /* the method, the media type and the body bound: the route table */
    if (ca_jws_parse(r->pool, body, len, &a->jws, &err) != APR_SUCCESS) {
        return problem(a, HTTP_BAD_REQUEST, "malformed", err);
    }
    if (!strcmp(a->jws->alg, "none") || !strncmp(a->jws->alg, "HS", 2)
        || (strcmp(a->jws->alg, "ES256") && strcmp(a->jws->alg, "ES384")
            && strcmp(a->jws->alg, "RS256")
            && strcmp(a->jws->alg, "EdDSA"))) {
        return problem(a, HTTP_BAD_REQUEST, "badSignatureAlgorithm",
                       apr_psprintf(r->pool, "alg \"%s\" is not accepted",
                                    a->jws->alg));
    }
    if (!a->jws->url || strcmp(a->jws->url, request_url(r))) {
        return problem(a, HTTP_UNAUTHORIZED, "unauthorized",
                       "the JWS \"url\" is not the URL of this request");
    }
    if ((a->jws->jwk != NULL) == (a->jws->kid != NULL)) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "the protected header needs exactly one of \"jwk\" "
                       "and \"kid\"");
    }
    if (a->jws->jwk && !jwk_ok) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "this request is signed with the account key: use "
                       "\"kid\"");
    }
    if (a->jws->kid && jwk_only) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "a new account is requested with \"jwk\"");
    }
    if (!a->jws->nonce) {
        return problem(a, HTTP_BAD_REQUEST, "badNonce",
                       "the protected header has no nonce");
    }
    /* the nonce's MAC and age, without the database */
    if (!(nkey = nonce_key(a))) {
        return db_problem(a, CA_EDB);
    }
    rv = ca_acme_nonce_check(r->pool, nkey, CA_ACME_NONCE_KEY_LEN,
                             a->jws->nonce, a->now, NONCE_SECS, NONCE_SKEW,
                             &issued);
    if (rv != APR_SUCCESS) {
        return problem(a, HTTP_BAD_REQUEST, "badNonce",
                       rv == CA_EPOLICY ? "the nonce has expired"
                                        : "the nonce was not issued by "
                                          "this server");
    }
    if (a->jws->jwk) {
        a->jwk = a->jws->jwk;
        if (ca_jwk_to_pkey(r->pool, a->jwk, &a->key, &err) != APR_SUCCESS) {
            return problem(a, HTTP_BAD_REQUEST, "badPublicKey", err);
        }
    }
    else {
        json_error_t je;
        json_t *jwk;
        rv = load_account(a, a->jws->kid, &status, &type, &detail);
        if (rv == CA_ENOTFOUND) {
            return problem(a, status, type, detail);
        }
        if (rv != APR_SUCCESS) {
            return db_problem(a, rv);
        }
        jwk = ca_pool_json(r->pool, json_loads(a->acct->jwk, 0, &je));
        if (!jwk || ca_jwk_to_pkey(r->pool, jwk, &a->key, &err)
                        != APR_SUCCESS) {
            return problem(a, HTTP_INTERNAL_SERVER_ERROR, "serverInternal",
                           "the account key cannot be read");
        }
    }
    if (ca_jws_verify(r->pool, a->jws, a->key, &err) != APR_SUCCESS) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       apr_pstrcat(r->pool, "JWS verification error: ", err,
                                   NULL));
    }
    /* signed by the key: now the nonce is spent (one insert; a second use,
     * here or on another front end, conflicts), kept until its lifetime
     * is over (and the clocks' difference); now and then (1 in 64) the
     * rows of nonces past it go */
    rv = ca_store_acme_nonce_spend(a->st, r->pool, a->jws->nonce,
                                   issued + NONCE_SECS + NONCE_SKEW);
    if (rv == CA_EEXIST) {
        return problem(a, HTTP_BAD_REQUEST, "badNonce",
                       "the nonce was used already");
    }
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    if (a->jws->nonce[20] == 'A'
        && ca_store_acme_nonce_clean(a->st, r->pool, a->now)
               != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(1912)
                      "cannot remove spent nonces: %s",
                      ca_store_last_error(a->st));
    }
    if (a->acct && strcmp(a->acct->status, "valid")) {
        return problem(a, HTTP_UNAUTHORIZED, "unauthorized",
                       apr_psprintf(r->pool, "the account is %s",
                                    a->acct->status));
    }
    if (a->jws->payload_len > 0) {
        json_error_t je;
        a->payload = ca_pool_json(r->pool, json_loadb(a->jws->payload,
                                                      a->jws->payload_len,
                                                      JSON_REJECT_DUPLICATES,
                                                      &je));
        if (!json_is_object(a->payload)) {
            return problem(a, HTTP_BAD_REQUEST, "malformed",
                           "the payload is not a JSON object");
        }
    }
    return 0;
}

/* ---- directory, nonce ------------------------------------------------- */

static int directory(acme_req *a)
{
    json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:b,s:s}}",
                  "newNonce", acme_url(a, "new-nonce"),
                  "newAccount", acme_url(a, "new-account"),
                  "newOrder", acme_url(a, "new-order"),
                  "revokeCert", acme_url(a, "revoke-cert"),
                  "keyChange", acme_url(a, "key-change"),
                  "meta", "externalAccountRequired", a->sc->acme_eab != 0,
                  "website", a->sc->base_url);
    return send_json(a, HTTP_OK, d);
}

/* Once the child has the key, no database access at all. */
static int new_nonce(acme_req *a)
{
    request_rec *r = a->r;
    int status;

    if (!nonce_key_cached() && !(a->st = certauth_store(r, &status))) {
        return status;
    }
    add_nonce(a);
    if (!apr_table_get(r->err_headers_out, "Replay-Nonce")) {
        return db_problem(a, CA_EDB);
    }
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    return certauth_send(r, r->header_only ? HTTP_OK : HTTP_NO_CONTENT,
                         "text/plain", "", 0);
}

/* ---- accounts --------------------------------------------------------- */

static int send_account(acme_req *a, int status, ca_acme_account_t *acct)
{
    apr_table_setn(a->r->headers_out, "Location",
                   acme_url(a, apr_pstrcat(a->r->pool, "acct/", acct->id,
                                           NULL)));
    add_nonce(a);
    return send_json(a, status, account_json(a, acct));
}

static int check_contact(acme_req *a, json_t *contact, const char **text)
{
    size_t i;
    json_t *v;
    char *s;

    if (!json_is_array(contact) || json_array_size(contact) > 10) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "contact must be an array of at most 10 URLs");
    }
    json_array_foreach(contact, i, v) {
        const char *c = json_string_value(v);
        if (!c || strncmp(c, "mailto:", 7) || strlen(c) > 254
            || !strchr(c, '@') || strpbrk(c, ",?\r\n ")) {
            return problem(a, HTTP_BAD_REQUEST, "invalidContact",
                           "contacts are mailto: URLs of one address each");
        }
    }
    s = json_dumps(contact, JSON_COMPACT);
    *text = apr_pstrdup(a->r->pool, s ? s : "[]");
    free(s);
    return 0;
}

/* The external account binding of a newAccount request: the inner JWS
 * MACed with the key of a site user's EAB credentials over the outer
 * jwk.  The owner, or 0 after a problem was sent. */
static int check_eab(acme_req *a, json_t *eab, ca_acme_eab_t **out)
{
    request_rec *r = a->r;
    ca_jws_t *inner;
    ca_acme_eab_t *e;
    const char *err = NULL, *c1, *c2;
    unsigned char *key;
    apr_size_t keylen;
    json_error_t je;
    json_t *pjwk;
    apr_status_t rv;

    if (ca_jws_parse_json(r->pool, eab, &inner, &err) != APR_SUCCESS) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       apr_pstrcat(r->pool, "externalAccountBinding: ", err,
                                   NULL));
    }
    if (!inner->kid || inner->nonce || !inner->url
        || strcmp(inner->url, a->jws->url) || inner->jwk) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "externalAccountBinding: the header needs \"kid\" and "
                       "the newAccount \"url\", and no nonce or jwk");
    }
    pjwk = ca_pool_json(r->pool, json_loadb(inner->payload,
                                            inner->payload_len, 0, &je));
    if (!pjwk || ca_jwk_canonical(r->pool, pjwk, &c1, &err) != APR_SUCCESS
        || ca_jwk_canonical(r->pool, a->jwk, &c2, &err) != APR_SUCCESS
        || strcmp(c1, c2)) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "externalAccountBinding: the payload must be the "
                       "account's jwk");
    }
    rv = ca_store_acme_eab_get(a->st, r->pool, inner->kid, &e);
    if (rv == CA_ENOTFOUND) {
        return problem(a, HTTP_UNAUTHORIZED, "unauthorized",
                       "externalAccountBinding: unknown key id");
    }
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    if (*e->account || e->expires <= a->now) {
        return problem(a, HTTP_UNAUTHORIZED, "unauthorized",
                       "externalAccountBinding: these credentials were used "
                       "already or have expired; get new ones from the site");
    }
    if (ca_b64url_decode(r->pool, e->hmac_key, &key, &keylen) != APR_SUCCESS
        || ca_jws_verify_hmac(r->pool, inner, key, keylen, &err)
               != APR_SUCCESS) {
        return problem(a, HTTP_UNAUTHORIZED, "unauthorized",
                       apr_pstrcat(r->pool, "externalAccountBinding: ",
                                   err ? err : "bad key", NULL));
    }
    *out = e;
    return 0;
}

static int new_account(acme_req *a)
{
    request_rec *r = a->r;
    ca_acme_account_t *acct = NULL, n;
    ca_acme_eab_t *eab = NULL;
    const char *tp, *canon, *err = NULL, *contact = "[]";
    json_t *v;
    apr_status_t rv;
    int status;

    if ((status = acme_post(a, 1, 1))) {
        return status;
    }
    if (!a->payload) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "newAccount needs a payload");
    }
    if (ca_jwk_thumbprint(r->pool, a->jwk, &tp, &err) != APR_SUCCESS
        || ca_jwk_canonical(r->pool, a->jwk, &canon, &err) != APR_SUCCESS) {
        return problem(a, HTTP_BAD_REQUEST, "badPublicKey", err);
    }
    rv = ca_store_acme_account_by_key(a->st, r->pool, tp, &acct);
    if (rv == APR_SUCCESS) {
        a->acct = acct;
        return send_account(a, HTTP_OK, acct);
    }
    if (rv != CA_ENOTFOUND) {
        return db_problem(a, rv);
    }
    if (json_is_true(json_object_get(a->payload, "onlyReturnExisting"))) {
        return problem(a, HTTP_BAD_REQUEST, "accountDoesNotExist",
                       "no account has this key");
    }
    if ((v = json_object_get(a->payload, "contact"))
        && (status = check_contact(a, v, &contact))) {
        return status;
    }
    v = json_object_get(a->payload, "externalAccountBinding");
    if (v) {
        if ((status = check_eab(a, v, &eab))) {
            return status;
        }
    }
    else if (a->sc->acme_eab != 0) {
        return problem(a, HTTP_UNAUTHORIZED, "externalAccountRequired",
                       "accounts need external account binding: a site user "
                       "gets the credentials (kid, HMAC key) from the site");
    }
    memset(&n, 0, sizeof(n));
    n.id = ca_acme_random(r->pool, 12);
    n.thumbprint = tp;
    n.jwk = canon;
    n.owner = eab ? eab->owner : apr_pstrcat(r->pool, "acme:", n.id, NULL);
    n.status = "valid";
    n.contact = contact;
    n.eab_kid = eab ? eab->kid : "";
    n.created_at = a->now;
    if ((rv = ca_store_txn_begin(a->st, r->pool)) != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    rv = ca_store_acme_account_add(a->st, r->pool, &n);
    if (rv == APR_SUCCESS && eab) {
        rv = ca_store_acme_eab_bind(a->st, r->pool, eab->kid, n.id);
    }
    {
        apr_status_t erv = ca_store_txn_end(a->st, r->pool,
                                            rv == APR_SUCCESS);
        if (rv == APR_SUCCESS) {
            rv = erv;
        }
    }
    if (rv == CA_ECONFLICT) {
        return problem(a, HTTP_UNAUTHORIZED, "unauthorized",
                       "externalAccountBinding: these credentials were used "
                       "already");
    }
    if (rv == CA_EEXIST) {
        return problem(a, HTTP_CONFLICT, "malformed",
                       "another request made an account with this key");
    }
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    a->acct = &n;
    audit(a, n.owner, "acme_account", NULL, "ok",
          apr_pstrcat(r->pool, "new account, key ", tp, NULL));
    return send_account(a, HTTP_CREATED, &n);
}

static int account(acme_req *a, const char *id)
{
    request_rec *r = a->r;
    const char *contact = NULL;
    json_t *v;
    apr_status_t rv;
    int status;

    if ((status = acme_post(a, 0, 0))) {
        return status;
    }
    if (strcmp(a->acct->id, id)) {
        return problem(a, HTTP_UNAUTHORIZED, "unauthorized",
                       "this is not the account of the key");
    }
    if (!a->payload) {
        return send_account(a, HTTP_OK, a->acct);
    }
    if ((v = json_object_get(a->payload, "contact"))
        && (status = check_contact(a, v, &contact))) {
        return status;
    }
    v = json_object_get(a->payload, "status");
    if (v && (!json_is_string(v)
              || strcmp(json_string_value(v), CA_ACME_DEACTIVATED))) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "an account can only be deactivated by its holder");
    }
    rv = ca_store_acme_account_update(a->st, r->pool, id,
                                      v ? CA_ACME_DEACTIVATED
                                        : a->acct->status, contact);
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    if (v) {
        a->acct->status = CA_ACME_DEACTIVATED;
        audit(a, a->acct->owner, "acme_account", NULL, "ok", "deactivated");
    }
    if (contact) {
        a->acct->contact = contact;
    }
    return send_account(a, HTTP_OK, a->acct);
}

static int account_orders(acme_req *a, const char *id)
{
    apr_array_header_t *ids;
    json_t *list;
    apr_status_t rv;
    int status, i;

    if ((status = acme_post(a, 0, 0))) {
        return status;
    }
    if (strcmp(a->acct->id, id)) {
        return problem(a, HTTP_UNAUTHORIZED, "unauthorized",
                       "this is not the account of the key");
    }
    rv = ca_store_acme_account_orders(a->st, a->r->pool, id, a->now, &ids);
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    list = json_array();
    for (i = 0; i < ids->nelts; i++) {
        json_array_append_new(list, json_string(
            acme_url(a, apr_pstrcat(a->r->pool, "order/",
                                    APR_ARRAY_IDX(ids, i, const char *),
                                    NULL))));
    }
    add_nonce(a);
    return send_json(a, HTTP_OK, json_pack("{s:o}", "orders", list));
}

static int key_change(acme_req *a)
{
    request_rec *r = a->r;
    ca_jws_t *inner;
    EVP_PKEY *newkey;
    json_t *ip, *old;
    json_error_t je;
    const char *err = NULL, *tp, *canon, *oldcanon, *acct_url;
    apr_status_t rv;
    int status;

    if ((status = acme_post(a, 0, 0))) {
        return status;
    }
    if (!a->payload
        || ca_jws_parse_json(r->pool, a->payload, &inner, &err)
               != APR_SUCCESS) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       apr_pstrcat(r->pool, "keyChange: the payload must be "
                                   "a JWS: ", err ? err : "none", NULL));
    }
    if (!inner->jwk || inner->kid || inner->nonce || !inner->url
        || strcmp(inner->url, a->jws->url)) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "keyChange: the inner JWS needs \"jwk\" and the same "
                       "\"url\", and no \"kid\" or nonce");
    }
    if (ca_jwk_to_pkey(r->pool, inner->jwk, &newkey, &err) != APR_SUCCESS) {
        return problem(a, HTTP_BAD_REQUEST, "badPublicKey", err);
    }
    if (ca_jws_verify(r->pool, inner, newkey, &err) != APR_SUCCESS) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       apr_pstrcat(r->pool, "keyChange: ", err, NULL));
    }
    ip = ca_pool_json(r->pool, json_loadb(inner->payload, inner->payload_len,
                                          0, &je));
    acct_url = acme_url(a, apr_pstrcat(r->pool, "acct/", a->acct->id, NULL));
    old = ip ? json_object_get(ip, "oldKey") : NULL;
    if (!ip || !json_is_string(json_object_get(ip, "account"))
        || strcmp(json_string_value(json_object_get(ip, "account")),
                  acct_url)
        || !old || ca_jwk_canonical(r->pool, old, &oldcanon, &err)
                       != APR_SUCCESS
        || strcmp(oldcanon, a->acct->jwk)) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "keyChange: the inner payload must name this account "
                       "and its current key");
    }
    if (ca_jwk_thumbprint(r->pool, inner->jwk, &tp, &err) != APR_SUCCESS
        || ca_jwk_canonical(r->pool, inner->jwk, &canon, &err)
               != APR_SUCCESS) {
        return problem(a, HTTP_BAD_REQUEST, "badPublicKey", err);
    }
    rv = ca_store_acme_account_rekey(a->st, r->pool, a->acct->id,
                                     a->acct->thumbprint, tp, canon);
    if (rv == CA_EEXIST) {
        ca_acme_account_t *other;
        if (ca_store_acme_account_by_key(a->st, r->pool, tp, &other)
            == APR_SUCCESS) {
            apr_table_setn(r->headers_out, "Location",
                           acme_url(a, apr_pstrcat(r->pool, "acct/",
                                                   other->id, NULL)));
        }
        return problem(a, HTTP_CONFLICT, "malformed",
                       "keyChange: the new key belongs to an account");
    }
    if (rv == CA_ECONFLICT) {
        return problem(a, HTTP_CONFLICT, "malformed",
                       "keyChange: the key changed meanwhile");
    }
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    a->acct->jwk = canon;
    a->acct->thumbprint = tp;
    audit(a, a->acct->owner, "acme_account", NULL, "ok",
          apr_pstrcat(r->pool, "key changed to ", tp, NULL));
    return send_account(a, HTTP_OK, a->acct);
}

/* ---- orders ----------------------------------------------------------- */

static int load_order(acme_req *a, const char *id, ca_acme_order_t **o)
{
    apr_status_t rv = ca_store_acme_order_get(a->st, a->r->pool, id, o);
    if (rv == CA_ENOTFOUND
        || (rv == APR_SUCCESS && strcmp((*o)->account, a->acct->id))) {
        return problem(a, HTTP_NOT_FOUND, "malformed", "no such order");
    }
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    return 0;
}

static int send_order(acme_req *a, int status, ca_acme_order_t *o)
{
    apr_array_header_t *authz;
    const char *st;
    apr_status_t rv = order_state(a, o, &authz, &st);

    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    apr_table_setn(a->r->headers_out, "Location",
                   acme_url(a, apr_pstrcat(a->r->pool, "order/", o->id,
                                           NULL)));
    if (!strcmp(st, CA_ACME_PROCESSING)) {
        apr_table_setn(a->r->headers_out, "Retry-After", "2");
    }
    add_nonce(a);
    return send_json(a, status, order_json(a, o, authz, st));
}

static int new_order(acme_req *a)
{
    request_rec *r = a->r;
    json_t *idents, *v, *sub = NULL;
    apr_array_header_t *names, *authz, *challs;
    ca_acme_order_t o;
    const char *joined = NULL;
    apr_status_t rv;
    size_t i;
    int status, k;

    if ((status = acme_post(a, 0, 0))) {
        return status;
    }
    idents = a->payload ? json_object_get(a->payload, "identifiers") : NULL;
    if (!json_is_array(idents) || json_array_size(idents) == 0
        || json_array_size(idents) > MAX_IDENTS) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "newOrder needs 1 to 100 identifiers");
    }
    if (json_object_get(a->payload, "notBefore")
        || json_object_get(a->payload, "notAfter")) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "notBefore/notAfter are not supported: the profile "
                       "sets the validity");
    }
    names = apr_array_make(r->pool, 4, sizeof(const char *));
    json_array_foreach(idents, i, v) {
        const char *type = json_string_value(json_object_get(v, "type"));
        const char *value = json_string_value(json_object_get(v, "value"));
        const char *n = NULL, *why = NULL, *ptype = "rejectedIdentifier";
        if (!type || !value) {
            return problem(a, HTTP_BAD_REQUEST, "malformed",
                           "each identifier needs a type and a value");
        }
        if (strcmp(type, "dns")) {
            ptype = "unsupportedIdentifier";
            why = apr_psprintf(r->pool, "identifier type '%s' is not "
                               "supported (dns)", type);
        }
        else if (!(n = ca_acme_dns_normalize(r->pool, value))) {
            why = apr_psprintf(r->pool, "'%s' is not a DNS name", value);
        }
        else if (n[0] == '*') {
            ptype = "rejectedIdentifier";
            why = apr_psprintf(r->pool, "%s: wildcard names are not issued "
                               "(http-01 cannot validate them)", n);
        }
        else if (!ca_acme_name_allowed(a->sc->acme_names, n)) {
            why = apr_psprintf(r->pool, "%s is not a name this server's "
                               "ACME profile allows", n);
        }
        if (why) {
            if (!sub) {
                sub = json_array();
            }
            json_array_append_new(sub, json_pack(
                "{s:s,s:s,s:{s:s,s:s}}", "type",
                apr_pstrcat(r->pool, CA_ACME_ERR_PREFIX, ptype, NULL),
                "detail", why, "identifier", "type", type, "value", value));
            continue;
        }
        for (k = 0; k < names->nelts; k++) {
            if (!strcmp(APR_ARRAY_IDX(names, k, const char *), n)) {
                break;
            }
        }
        if (k == names->nelts) {
            APR_ARRAY_PUSH(names, const char *) = n;
            joined = joined ? apr_pstrcat(r->pool, joined, ",", n, NULL) : n;
        }
    }
    if (sub) {
        const char *first = json_string_value(
            json_object_get(json_array_get(sub, 0), "detail"));
        const char *t = json_string_value(
            json_object_get(json_array_get(sub, 0), "type"));
        audit(a, a->acct->owner, "acme_order", NULL, "refused", first);
        return problem_sub(a, HTTP_BAD_REQUEST,
                           t + strlen(CA_ACME_ERR_PREFIX), first, sub);
    }
    /* expired orders (a day past) go when new ones come */
    rv = ca_store_acme_cleanup(a->st, r->pool, a->now, a->now - 86400);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, CA_LOGNO(1905)
                      "ACME cleanup: %s", ca_store_last_error(a->st));
    }
    memset(&o, 0, sizeof(o));
    o.id = ca_acme_random(r->pool, 12);
    o.account = a->acct->id;
    o.status = CA_ACME_PENDING;
    o.expires = a->now + ORDER_SECS;
    o.identifiers = joined;
    o.profile = a->sc->acme_profile;
    o.serial = "";
    o.error = "";
    o.created_at = a->now;
    authz = apr_array_make(r->pool, names->nelts, sizeof(ca_acme_authz_t *));
    challs = apr_array_make(r->pool, names->nelts, sizeof(ca_acme_chall_t *));
    for (k = 0; k < names->nelts; k++) {
        ca_acme_authz_t *z = apr_pcalloc(r->pool, sizeof(*z));
        ca_acme_chall_t *c = apr_pcalloc(r->pool, sizeof(*c));
        z->id = ca_acme_random(r->pool, 12);
        z->order_id = o.id;
        z->account = o.account;
        z->ident = APR_ARRAY_IDX(names, k, const char *);
        z->status = CA_ACME_PENDING;
        z->expires = o.expires;
        APR_ARRAY_PUSH(authz, ca_acme_authz_t *) = z;
        c->id = ca_acme_random(r->pool, 12);
        c->authz_id = z->id;
        c->type = "http-01";
        c->token = ca_acme_random(r->pool, 32);
        c->status = CA_ACME_PENDING;
        c->error = "";
        APR_ARRAY_PUSH(challs, ca_acme_chall_t *) = c;
        c = apr_pcalloc(r->pool, sizeof(*c));
        c->id = ca_acme_random(r->pool, 12);
        c->authz_id = z->id;
        c->type = "tls-alpn-01";
        c->token = ca_acme_random(r->pool, 32);
        c->status = CA_ACME_PENDING;
        c->error = "";
        APR_ARRAY_PUSH(challs, ca_acme_chall_t *) = c;
    }
    rv = ca_store_acme_order_add(a->st, r->pool, &o, authz, challs);
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    return send_order(a, HTTP_CREATED, &o);
}

static int order(acme_req *a, const char *id)
{
    ca_acme_order_t *o;
    int status;

    if ((status = acme_post(a, 0, 0)) || (status = load_order(a, id, &o))) {
        return status;
    }
    return send_order(a, HTTP_OK, o);
}

static apr_status_t name_free(void *n)
{
    X509_NAME_free(n);
    return APR_SUCCESS;
}

static int finalize(acme_req *a, const char *id)
{
    request_rec *r = a->r;
    const certauth_prof_conf *pc;
    ca_profile_t *profile;
    ca_acme_order_t *o;
    apr_array_header_t *authz, *ids, *sans;
    const char *st, *csr64, *err = NULL, *perr;
    unsigned char *der;
    apr_size_t derlen;
    X509_REQ *req = NULL;
    X509_NAME *subject;
    X509 *cert = NULL;
    ca_cert_row_t *row = NULL;
    ca_issue_req_t ireq;
    apr_status_t rv;
    int status, i;

    if ((status = acme_post(a, 0, 0)) || (status = load_order(a, id, &o))) {
        return status;
    }
    if ((rv = order_state(a, o, &authz, &st)) != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    if (strcmp(st, CA_ACME_READY)) {
        return problem(a, HTTP_FORBIDDEN, "orderNotReady",
                       apr_psprintf(r->pool, "the order is %s, not ready",
                                    st));
    }
    csr64 = a->payload ? json_string_value(json_object_get(a->payload,
                                                           "csr"))
                       : NULL;
    if (!csr64 || ca_b64url_decode(r->pool, csr64, &der, &derlen)
                      != APR_SUCCESS
        || ca_csr_parse(r->pool, (const char *)der, derlen, &req, &err)
               != APR_SUCCESS) {
        return problem(a, HTTP_BAD_REQUEST, "badCSR",
                       err ? err : "finalize needs \"csr\": a base64url DER "
                                   "PKCS#10 request");
    }
    pc = certauth_profile_of_cert(r, o->profile);
    if (!pc) {
        return problem(a, HTTP_INTERNAL_SERVER_ERROR, "serverInternal",
                       "the order's profile is no longer configured");
    }
    profile = certauth_profile(r->pool, pc);
    ids = ident_list(r->pool, o->identifiers);
    if (ca_csr_check(r->pool, req, &profile->key_policy, &err)
            != APR_SUCCESS
        || ca_acme_csr_matches(r->pool, req, ids, &err) != APR_SUCCESS) {
        audit(a, a->acct->owner, "acme_issue", NULL, "refused", err);
        return problem(a, HTTP_BAD_REQUEST, "badCSR", err);
    }
    /* the order is this request's from here on */
    rv = ca_store_acme_order_set(a->st, r->pool, o->id, CA_ACME_PENDING,
                                 CA_ACME_PROCESSING, NULL, NULL);
    if (rv == CA_ECONFLICT) {
        return problem(a, HTTP_FORBIDDEN, "orderNotReady",
                       "the order is being finalized already");
    }
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    subject = X509_NAME_new();
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                               (const unsigned char *)APR_ARRAY_IDX(ids, 0,
                                   const char *), -1, -1, 0);
    apr_pool_cleanup_register(r->pool, subject, name_free,
                              apr_pool_cleanup_null);
    sans = apr_array_make(r->pool, ids->nelts, sizeof(const char *));
    for (i = 0; i < ids->nelts; i++) {
        APR_ARRAY_PUSH(sans, const char *)
            = apr_pstrcat(r->pool, "DNS:", APR_ARRAY_IDX(ids, i,
                                                          const char *),
                          NULL);
    }
    memset(&ireq, 0, sizeof(ireq));
    ireq.profile = profile;
    ireq.subject = subject;
    ireq.sans = sans;
    ireq.pubkey = ca_csr_pubkey(r->pool, req);
    ireq.spki = X509_REQ_get_X509_PUBKEY(req);
    ireq.owner = a->acct->owner;
    certauth_issue_urls(&ireq, a->sc);
    rv = ca_issue(r->pool, a->sc->ca, a->st, &ireq, &cert, &row, &err);
    if (rv != APR_SUCCESS) {
        int code = certauth_status_of(rv);
        /* the profile's per-owner limit is a refusal, not a rate limit
         * to wait out */
        const char *ptype = code == HTTP_CONFLICT ? "unauthorized"
                            : code >= 500 ? "serverInternal" : "badCSR";
        json_t *e = json_pack("{s:s,s:s}", "type",
                              apr_pstrcat(r->pool, CA_ACME_ERR_PREFIX, ptype,
                                          NULL),
                              "detail", err ? err : "not issued");
        char *es = json_dumps(e, JSON_COMPACT);
        json_decref(e);
        perr = apr_pstrdup(r->pool, es ? es : "");
        free(es);
        /* the store busy or down (503): the order goes back to what it
         * was (stored pending, shown ready), so the client's retry can
         * finalize it; a refusal makes it invalid (final, RFC 8555
         * 7.1.6) */
        ca_store_acme_order_set(a->st, r->pool, o->id, CA_ACME_PROCESSING,
                                code == HTTP_SERVICE_UNAVAILABLE
                                    ? CA_ACME_PENDING : CA_ACME_INVALID,
                                NULL, code == HTTP_SERVICE_UNAVAILABLE
                                          ? NULL : perr);
        audit(a, a->acct->owner, "acme_issue", NULL, "refused", err);
        if (code >= 500) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(1906)
                          "ACME issuing for %s: %s", a->acct->owner,
                          err ? err : "");
        }
        return problem(a, code == HTTP_CONFLICT ? HTTP_FORBIDDEN
                          : code >= 500 ? code : HTTP_BAD_REQUEST,
                       ptype, err);
    }
    rv = ca_store_acme_order_set(a->st, r->pool, o->id, CA_ACME_PROCESSING,
                                 CA_ACME_VALID, row->serial, NULL);
    audit(a, a->acct->owner, "acme_issue", row->serial, "ok",
          apr_psprintf(r->pool, "profile %s, names %s", row->profile,
                       o->identifiers));
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    o->status = CA_ACME_VALID;
    o->serial = row->serial;
    return send_order(a, HTTP_OK, o);
}

/* ---- authorizations and challenges ------------------------------------ */

static int load_authz(acme_req *a, const char *id, ca_acme_authz_t **z)
{
    apr_status_t rv = ca_store_acme_authz_get(a->st, a->r->pool, id, z);
    if (rv == CA_ENOTFOUND
        || (rv == APR_SUCCESS && strcmp((*z)->account, a->acct->id))) {
        return problem(a, HTTP_NOT_FOUND, "malformed",
                       "no such authorization");
    }
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    return 0;
}

static int send_authz(acme_req *a, ca_acme_authz_t *z)
{
    apr_array_header_t *challs;
    json_t *jc, *j;
    const char *status = z->status;
    apr_status_t rv = ca_store_acme_authz_challs(a->st, a->r->pool, z->id,
                                                 &challs);
    int i;

    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    if (!strcmp(status, CA_ACME_PENDING) && z->expires <= a->now) {
        status = CA_ACME_EXPIRED;
    }
    jc = json_array();
    for (i = 0; i < challs->nelts; i++) {
        json_array_append_new(jc, chall_json(a, APR_ARRAY_IDX(
                                                    challs, i,
                                                    ca_acme_chall_t *)));
    }
    j = json_pack("{s:{s:s,s:s},s:s,s:s,s:o}", "identifier", "type", "dns",
                  "value", z->ident, "status", status, "expires",
                  iso_time(a->r->pool, z->expires), "challenges", jc);
    add_nonce(a);
    return send_json(a, HTTP_OK, j);
}

static int authz(acme_req *a, const char *id)
{
    ca_acme_authz_t *z;
    json_t *v;
    apr_status_t rv;
    int status;

    if ((status = acme_post(a, 0, 0)) || (status = load_authz(a, id, &z))) {
        return status;
    }
    v = a->payload ? json_object_get(a->payload, "status") : NULL;
    if (v) {
        if (!json_is_string(v)
            || strcmp(json_string_value(v), CA_ACME_DEACTIVATED)) {
            return problem(a, HTTP_BAD_REQUEST, "malformed",
                           "an authorization can only be deactivated");
        }
        rv = ca_store_acme_authz_set(a->st, a->r->pool, z->id, z->status,
                                     CA_ACME_DEACTIVATED);
        if (rv == CA_ECONFLICT || (rv == APR_SUCCESS
                                   && strcmp(z->status, CA_ACME_PENDING)
                                   && strcmp(z->status, CA_ACME_VALID))) {
            return problem(a, HTTP_FORBIDDEN, "malformed",
                           "the authorization cannot be deactivated now");
        }
        if (rv != APR_SUCCESS) {
            return db_problem(a, rv);
        }
        z->status = CA_ACME_DEACTIVATED;
    }
    return send_authz(a, z);
}

static int challenge(acme_req *a, const char *id)
{
    request_rec *r = a->r;
    ca_acme_chall_t *c;
    ca_acme_authz_t *z;
    apr_status_t rv;
    int status;

    if ((status = acme_post(a, 0, 0))) {
        return status;
    }
    rv = ca_store_acme_chall_get(a->st, r->pool, id, &c);
    if (rv == CA_ENOTFOUND) {
        return problem(a, HTTP_NOT_FOUND, "malformed", "no such challenge");
    }
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    if ((status = load_authz(a, c->authz_id, &z))) {
        return status;
    }
    if (a->payload && !strcmp(c->status, CA_ACME_PENDING)) {
        ca_acme_order_t *o;
        if (strcmp(z->status, CA_ACME_PENDING) || z->expires <= a->now) {
            return problem(a, HTTP_FORBIDDEN, "malformed",
                           "the authorization is no longer pending");
        }
        rv = ca_store_acme_order_get(a->st, r->pool, z->order_id, &o);
        if (rv == APR_SUCCESS && strcmp(o->status, CA_ACME_PENDING)) {
            return problem(a, HTTP_FORBIDDEN, "malformed",
                           "the order is no longer pending");
        }
        /* validated_at holds the start while processing */
        rv = ca_store_acme_chall_set(a->st, r->pool, c->id, CA_ACME_PENDING,
                                     CA_ACME_PROCESSING, a->now, NULL);
        if (rv == APR_SUCCESS) {
            c->status = CA_ACME_PROCESSING;
            certauth_acme_validate(r, a->sc, a->acct->jwk, z, c);
        }
        else if (rv != CA_ECONFLICT) {
            return db_problem(a, rv);
        }
    }
    else if (a->payload && !strcmp(c->status, CA_ACME_PROCESSING)
             && c->validated_at <= a->now - RESTART_SECS
             && !strcmp(z->status, CA_ACME_PENDING) && z->expires > a->now) {
        /* the child validating it went away (restart, crash): the
         * client's new request takes it over, once */
        rv = ca_store_acme_chall_restart(a->st, r->pool, c->id,
                                         c->validated_at, a->now);
        if (rv == APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CA_LOGNO(1913)
                          "ACME: validation of %s restarted (processing "
                          "since %" APR_INT64_T_FMT ")", z->ident,
                          c->validated_at);
            certauth_acme_validate(r, a->sc, a->acct->jwk, z, c);
        }
        else if (rv != CA_ECONFLICT) {
            return db_problem(a, rv);
        }
    }
    apr_table_setn(r->headers_out, "Link",
                   apr_psprintf(r->pool, "<%s>;rel=\"up\"",
                                acme_url(a, apr_pstrcat(r->pool, "authz/",
                                                        z->id, NULL))));
    add_nonce(a);
    return send_json(a, HTTP_OK, chall_json(a, c));
}

/* ---- certificates ----------------------------------------------------- */

static int certificate(acme_req *a, const char *serial)
{
    request_rec *r = a->r;
    ca_cert_row_t *row;
    const char *body;
    apr_status_t rv;
    int status;

    if ((status = acme_post(a, 0, 0))) {
        return status;
    }
    rv = ca_store_cert_get(a->st, r->pool, serial, &row);
    if (rv == CA_ENOTFOUND
        || (rv == APR_SUCCESS && strcmp(row->owner, a->acct->owner))) {
        return problem(a, HTTP_NOT_FOUND, "malformed",
                       "no such certificate of this account's owner");
    }
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    body = apr_pstrcat(r->pool, row->cert_pem, a->sc->ca->cert_pem, NULL);
    add_nonce(a);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    return certauth_send(r, HTTP_OK, "application/pem-certificate-chain",
                         body, strlen(body));
}

static int revoke_cert(acme_req *a)
{
    request_rec *r = a->r;
    const char *c64, *serial, *detail, *owner, *err = NULL;
    apr_array_header_t *cascaded;
    unsigned char *der;
    const unsigned char *d;
    apr_size_t derlen;
    X509 *x;
    ca_cert_row_t *row = NULL;
    json_t *jr;
    int status, reason = 0, i;
    apr_status_t rv;

    if ((status = acme_post(a, 1, 0))) {
        return status;
    }
    c64 = a->payload ? json_string_value(json_object_get(a->payload,
                                                         "certificate"))
                     : NULL;
    if (!c64 || ca_b64url_decode(r->pool, c64, &der, &derlen)
                    != APR_SUCCESS) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "revokeCert needs \"certificate\" (base64url DER)");
    }
    d = der;
    x = ca_pool_x509(r->pool, d2i_X509(NULL, &d, (long)derlen));
    if (!x) {
        return problem(a, HTTP_BAD_REQUEST, "malformed",
                       "the certificate cannot be read");
    }
    if ((jr = json_object_get(a->payload, "reason"))) {
        reason = json_is_integer(jr) ? (int)json_integer_value(jr) : -1;
        if (reason < 0 || reason > 10 || reason == 2 || reason == 7
            || reason == 6 || reason == 8 || reason == 10) {
            return problem(a, HTTP_BAD_REQUEST, "badRevocationReason",
                           "reasons 0, 1, 3, 4, 5 and 9 are accepted");
        }
    }
    serial = ca_serial_hex(r->pool, X509_get0_serialNumber(x));
    rv = ca_store_cert_get(a->st, r->pool, serial, &row);
    if (rv == APR_SUCCESS) {
        /* the same certificate, not just the serial */
        BIO *bio = BIO_new_mem_buf(row->cert_pem, -1);
        X509 *stored = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL)
                           : NULL;
        BIO_free(bio);
        if (!stored || X509_cmp(stored, x)) {
            rv = CA_ENOTFOUND;
        }
        X509_free(stored);
    }
    if (rv == CA_ENOTFOUND) {
        return problem(a, HTTP_NOT_FOUND, "malformed",
                       "this CA did not issue the certificate");
    }
    if (rv != APR_SUCCESS) {
        return db_problem(a, rv);
    }
    if (a->acct ? strcmp(a->acct->owner, row->owner)
                : EVP_PKEY_eq(a->key, X509_get0_pubkey(x)) != 1) {
        audit(a, a->acct ? a->acct->owner : NULL, "revoke", serial,
              "refused", "not the owner's account, nor the certificate's "
              "key");
        return problem(a, HTTP_FORBIDDEN, "unauthorized",
                       "revoke with an account of the certificate's owner "
                       "or with the certificate's key");
    }
    /* the lifecycle's revocation: keyCompromise also revokes what this
     * certificate authorised (as POST revoke does) */
    cascaded = apr_array_make(r->pool, 2, sizeof(const char *));
    owner = row->owner;
    rv = ca_lc_revoke(r->pool, a->st, serial, reason, a->now, 0, &row,
                      cascaded, &err);
    if (rv == CA_ECONFLICT) {
        return problem(a, HTTP_BAD_REQUEST, "alreadyRevoked",
                       err ? err : "the certificate is not valid");
    }
    if (rv != APR_SUCCESS && !row) {
        return db_problem(a, rv);
    }
    for (i = 0; i < cascaded->nelts; i++) {
        audit(a, owner, "revoke", APR_ARRAY_IDX(cascaded, i, const char *),
              "ok", apr_psprintf(r->pool, "keyCompromise: authorised by "
                                 "certificate %s", serial));
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(1914)
                      "ACME: revoking what %s authorised: %s", serial,
                      err ? err : "");
    }
    detail = apr_psprintf(r->pool, "reason %d, by %s", reason,
                          a->acct ? "account" : "certificate key");
    audit(a, owner, "revoke", serial, "ok", detail);
    certauth_crl_regenerate(r, a->st);
    add_nonce(a);
    return certauth_send(r, HTTP_OK, "application/json", "", 0);
}

/* ---- dispatch --------------------------------------------------------- */

static void acme_init(acme_req *a, request_rec *r, certauth_req *q)
{
    const certauth_dir_conf *dc = certauth_dir(r);

    memset(a, 0, sizeof(*a));
    a->r = r;
    a->q = q;
    a->sc = certauth_srv(r->server);
    a->now = (apr_int64_t)apr_time_sec(apr_time_now());
    a->base = ap_construct_url(r->pool, dc->location, r);
}

/* The route table's refusals (405, 413, 415) as problem documents. */
int certauth_acme_fail(request_rec *r, int status, const char *detail)
{
    acme_req a;

    acme_init(&a, r, NULL);
    if (!nonce_key_cached()) {
        a.st = certauth_store_quiet(r);
    }
    return problem(&a, status, "malformed", detail);
}

int certauth_acme(request_rec *r, certauth_req *q)
{
    const char *rest = q->rest;
    acme_req a;
    const char *id;
    int status;

    acme_init(&a, r, q);
    if (!a.sc->acme_profile) {
        return problem(&a, HTTP_NOT_FOUND, "malformed",
                       "no CertAuthACMEProfile for this server");
    }
    /* the directory and nonces: no database (a nonce: once the child
     * has read the key) */
    if (!strcmp(rest, "directory")) {
        return directory(&a);
    }
    if (!strcmp(rest, "new-nonce")) {
        return new_nonce(&a);
    }
    if (!(a.st = certauth_store(r, &status))) {
        return status;
    }
    if (!strcmp(rest, "new-account")) {
        return new_account(&a);
    }
    if (!strcmp(rest, "new-order")) {
        return new_order(&a);
    }
    if (!strcmp(rest, "revoke-cert")) {
        return revoke_cert(&a);
    }
    if (!strcmp(rest, "key-change")) {
        return key_change(&a);
    }
    if (!strncmp(rest, "acct/", 5) && *(id = rest + 5)) {
        const char *slash = strchr(id, '/');
        if (!slash) {
            return account(&a, id);
        }
        if (!strcmp(slash, "/orders")) {
            return account_orders(&a, apr_pstrndup(r->pool, id,
                                                   (apr_size_t)(slash - id)));
        }
    }
    if (!strncmp(rest, "order/", 6) && *(id = rest + 6)) {
        const char *slash = strchr(id, '/');
        if (!slash) {
            return order(&a, id);
        }
        if (!strcmp(slash, "/finalize")) {
            return finalize(&a, apr_pstrndup(r->pool, id,
                                             (apr_size_t)(slash - id)));
        }
    }
    if (!strncmp(rest, "authz/", 6) && *(id = rest + 6) && !strchr(id, '/')) {
        return authz(&a, id);
    }
    if (!strncmp(rest, "chall/", 6) && *(id = rest + 6) && !strchr(id, '/')) {
        return challenge(&a, id);
    }
    if (!strncmp(rest, "cert/", 5) && *(id = rest + 5) && !strchr(id, '/')) {
        return certificate(&a, id);
    }
    ap_discard_request_body(r);
    return problem(&a, HTTP_NOT_FOUND, "malformed", "no such ACME resource");
}

/* POST api/acme/eab (below the CA's Location): EAB credentials for the
 * logged-in user, if the ACME profile's CertAuthRequire allows them. */
int certauth_acme_eab(request_rec *r, certauth_req *q)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    const char *detail = NULL;
    ca_acme_eab_t e;
    ca_store_t *st = q->st;
    json_t *j;
    char *s;
    const char *out;
    apr_status_t rv;
    int status = 0;

    /* method, login and the cross-site rule: the route table */
    if (!sc->acme_profile || !sc->acme_location) {
        return certauth_error(r, HTTP_NOT_FOUND, "no ACME server",
                              "this site has no ACME server "
                              "(CertAuthACME, CertAuthACMEProfile)");
    }
    if (!certauth_profile_named(r, sc->acme_profile, &status, &detail)) {
        return certauth_error(r, status, status == HTTP_FORBIDDEN
                                             ? "profile not allowed"
                                             : "unknown profile",
                              detail);
    }
    memset(&e, 0, sizeof(e));
    /* neither may start with '-', which command lines take for an option
     * (certbot --eab-kid, lego --hmac) */
    do {
        e.kid = ca_acme_random(r->pool, 16);
    } while (e.kid && e.kid[0] == '-');
    do {
        e.hmac_key = ca_acme_random(r->pool, 32);
    } while (e.hmac_key && e.hmac_key[0] == '-');
    e.owner = r->user;
    e.created_at = now;
    e.expires = now + EAB_SECS;
    if (!e.kid || !e.hmac_key) {
        return certauth_error(r, HTTP_INTERNAL_SERVER_ERROR, "internal error",
                              "no random numbers");
    }
    if ((rv = ca_store_acme_eab_add(st, r->pool, &e)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(1911)
                      "storing EAB credentials: %s", ca_store_last_error(st));
        return certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "database unavailable", "try again later");
    }
    certauth_audit(r, st, NULL, "acme_eab", "", "ok",
                   apr_pstrcat(r->pool, "kid ", e.kid, NULL));
    j = json_pack("{s:s,s:s,s:s,s:s}", "kid", e.kid, "hmac_key", e.hmac_key,
                  "directory",
                  ap_construct_url(r->pool,
                                   apr_pstrcat(r->pool, sc->acme_location,
                                               "/directory", NULL), r),
                  "expires", iso_time(r->pool, e.expires));
    s = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    out = apr_pstrcat(r->pool, s ? s : "{}", "\n", NULL);
    free(s);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return certauth_send(r, HTTP_CREATED, "application/json", out,
                         strlen(out));
}
