/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ident.c: who is asking: the site's login, the client certificate mod_ssl
 * verified (accepted only when this CA issued it and the store holds it as
 * valid), and whether CertAuthAdmin says administrator. */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_ssl.h>
#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <openssl/x509.h>

#include "mod_certauth.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

/* The identity settled for this request, for the expression variables:
 * kept in r->notes (sub-requests and error documents see none). */
#define NOTE_OWNER "certauth-owner"
#define NOTE_AUTH "certauth-auth"
#define NOTE_CERT_OWNER "certauth-cert-owner"

/* The presented certificate: accepted (who->cert) only when mod_ssl
 * verified it, this CA issued it and the store holds it as valid and not
 * expired; otherwise who->cert_problem says why.  0 or 503. */
static int identify_cert(request_rec *r, ca_store_t *st, certauth_who *who)
{
    const ca_t *ca = certauth_srv(r->server)->ca;
    const char *verify, *pem, *serial;
    ca_cert_row_t *row = NULL;
    X509 *x = NULL;
    BIO *bio;
    apr_status_t rv;
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());

    verify = ap_ssl_var_lookup(r->pool, r->server, r->connection, r,
                               "SSL_CLIENT_VERIFY");
    if (!verify || strcmp(verify, "SUCCESS")) {
        return 0;
    }
    who->presented = 1;
    pem = ap_ssl_var_lookup(r->pool, r->server, r->connection, r,
                            "SSL_CLIENT_CERT");
    bio = pem && *pem ? BIO_new_mem_buf(pem, -1) : NULL;
    x = bio ? ca_pool_x509(r->pool, PEM_read_bio_X509(bio, NULL, NULL, NULL))
            : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (!x) {
        who->cert_problem = "the client certificate cannot be read";
        return 0;
    }
    /* issued by this CA (or, after a rollover, by the previous one): name
     * chaining and the signature */
    if (!ca_issued_by_us(ca, x)) {
        who->cert_problem = "the client certificate was not issued by this "
                            "CA";
        return 0;
    }
    serial = ca_serial_hex(r->pool, X509_get0_serialNumber(x));
    rv = ca_store_cert_get(st, r->pool, serial, &row);
    if (rv == CA_ENOTFOUND) {
        who->cert_problem = "the client certificate is unknown to this CA";
        return 0;
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), r, CA_LOGNO(0602)
                      "looking up client certificate %s: %s", serial,
                      ca_store_last_error(st));
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (strcmp(row->status, CA_STATUS_VALID)) {
        who->cert_problem = apr_psprintf(r->pool, "the client certificate "
                                         "%s is %s", serial, row->status);
        return 0;
    }
    if (row->not_after <= now) {
        who->cert_problem = apr_psprintf(r->pool, "the client certificate "
                                         "%s has expired", serial);
        return 0;
    }
    who->cert = row;
    return 0;
}

/* The identity model (README "Identity and authorization"):
 *   login only        -> the login
 *   certificate only  -> the certificate's owner, when the certificate is
 *                        valid in the store (REMOTE_USER becomes the owner,
 *                        as with SSLUserName)
 *   both              -> the login is the caller; the certificate is still
 *                        what renew renews; a certificate that is not valid
 *                        in the store is ignored, never blocks the login
 *   neither           -> nobody
 * CertAuthAdmin (and CertAuthRequire) are evaluated after this, so they see
 * %{REMOTE_USER}, %{CERTAUTH_OWNER}, %{CERTAUTH_AUTH} and
 * %{CERTAUTH_CERT_OWNER} of the settled identity. */
int certauth_identify(request_rec *r, ca_store_t *st, certauth_who *who)
{
    const certauth_dir_conf *dc = certauth_dir(r);
    int status;

    memset(who, 0, sizeof(*who));
    who->user = r->user && *r->user ? r->user : NULL;
    if ((status = identify_cert(r, st, who))) {
        return status;
    }
    if (who->user) {
        who->owner = who->user;
    }
    else if (who->cert) {
        who->owner = who->cert->owner;
        /* templates and expressions name the certificate's owner */
        r->user = apr_pstrdup(r->pool, who->cert->owner);
    }
    apr_table_setn(r->notes, NOTE_OWNER, who->owner ? who->owner : "");
    apr_table_setn(r->notes, NOTE_CERT_OWNER,
                   who->cert ? who->cert->owner : "");
    apr_table_setn(r->notes, NOTE_AUTH,
                   who->user && who->cert ? "login+certificate"
                   : who->user ? "login"
                   : who->cert ? "certificate" : "none");
    if (dc->admin && who->owner) {
        const char *err = NULL;
        who->admin = ap_expr_exec(r, dc->admin, &err) > 0;
        if (err) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(0601)
                          "CertAuthAdmin: %s", err);
            who->admin = 0;
        }
    }
    return 0;
}

/* %{CERTAUTH_OWNER}, %{CERTAUTH_AUTH}, %{CERTAUTH_CERT_OWNER} */
static const char *note_var(ap_expr_eval_ctx_t *ctx, const void *data)
{
    const char *v = ctx->r ? apr_table_get(ctx->r->notes,
                                           (const char *)data) : NULL;
    return v ? v : "";
}

int certauth_ident_expr_lookup(ap_expr_lookup_parms *parms)
{
    static const char *const names[][2] = {
        {"CERTAUTH_OWNER", NOTE_OWNER},
        {"CERTAUTH_AUTH", NOTE_AUTH},
        {"CERTAUTH_CERT_OWNER", NOTE_CERT_OWNER},
    };
    apr_size_t i;

    if (parms->type != AP_EXPR_FUNC_VAR) {
        return DECLINED;
    }
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcasecmp(parms->name, names[i][0])) {
            *parms->func = note_var;
            *parms->data = names[i][1];
            return OK;
        }
    }
    return DECLINED;
}

const char *certauth_who_auth(const certauth_who *who)
{
    if (who->admin) {
        return "admin";
    }
    if (who->cert && !who->user) {
        return "cert";
    }
    return who->user ? "login" : "none";
}

const char *certauth_who_owner(const certauth_who *who)
{
    return who->owner;
}

ca_audit_t *certauth_audit_new(request_rec *r, const certauth_who *who,
                               const char *action, const char *serial,
                               const char *outcome, const char *detail)
{
    ca_audit_t *a = apr_pcalloc(r->pool, sizeof(*a));

    a->at = (apr_int64_t)apr_time_sec(apr_time_now());
    a->actor = who ? certauth_who_owner(who) : r->user;
    if (who && who->admin && who->user) {
        a->actor = who->user;
    }
    a->auth = who ? certauth_who_auth(who) : (r->user ? "login" : "none");
    a->client = r->useragent_ip;
    a->action = action;
    a->serial = serial;
    a->outcome = outcome;
    a->detail = detail;
    return a;
}

void certauth_audit_log(request_rec *r, const ca_audit_t *a)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CA_LOGNO(0603)
                  "audit: %s %s serial=%s by %s (%s) from %s%s%s", a->action,
                  a->outcome, a->serial ? a->serial : "-",
                  a->actor ? a->actor : "-", a->auth, a->client,
                  a->detail ? ": " : "", a->detail ? a->detail : "");
}

/* An audit record that could not be stored: the error log has it all. */
static void audit_lost(request_rec *r, const ca_audit_t *a, const char *why)
{
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(1320)
                  "audit record not stored (%s): at %" APR_INT64_T_FMT
                  " %s %s serial=%s by %s (%s) from %s%s%s", why, a->at,
                  a->action, a->outcome, a->serial && *a->serial ? a->serial
                                                                 : "-",
                  a->actor ? a->actor : "-", a->auth, a->client,
                  a->detail ? ": " : "", a->detail ? a->detail : "");
}

typedef struct {
    request_rec *r;
    ca_audit_t a;
} audit_later_t;

/* A refusal's record when the write path was busy: written once the
 * answer is on its way (the request's pool goes after the response),
 * within a bound of its own. */
static apr_status_t audit_later(void *data)
{
    audit_later_t *d = data;
    request_rec *r = d->r;
    ca_store_t *st = certauth_store_quiet(r);

    certauth_store_deadline(r, apr_time_now()
                                   + certauth_db_timeout(r->server));
    if (!st) {
        audit_lost(r, &d->a, "database unavailable");
    }
    else if (ca_store_audit_add_lazy(st, r->pool, &d->a) != APR_SUCCESS) {
        audit_lost(r, &d->a, ca_store_last_error(st));
    }
    return APR_SUCCESS;
}

void certauth_audit(request_rec *r, ca_store_t *st, const certauth_who *who,
                    const char *action, const char *serial,
                    const char *outcome, const char *detail)
{
    ca_audit_t *a = certauth_audit_new(r, who, action, serial, outcome,
                                       detail);
    apr_status_t rv;
    int refusal = strcmp(outcome, "ok") != 0;

    certauth_audit_log(r, a);
    if (!st) {
        audit_lost(r, a, "database unavailable");
        return;
    }
    if (refusal) {
        /* a refusal is answered at once: its record now if the write path
         * is free, else after the answer; it changed nothing, so it is
         * committed without a sync of its own (on disk with the next
         * synced commit) */
        apr_time_t saved = certauth_store_get_deadline(r);
        certauth_store_deadline(r, apr_time_now());
        rv = ca_store_audit_add_lazy(st, r->pool, a);
        certauth_store_deadline(r, saved ? saved : apr_time_now()
                                   + certauth_db_timeout(r->server));
        if (rv != APR_SUCCESS && ca_store_busy(st)) {
            audit_later_t *d = apr_pcalloc(r->pool, sizeof(*d));
            d->r = r;
            d->a = *a;
            /* before the connection is given back (pre-cleanups run
             * first, the last registered first) */
            apr_pool_pre_cleanup_register(r->pool, d, audit_later);
            return;
        }
    }
    else {
        rv = ca_store_audit_add(st, r->pool, a);
    }
    if (rv != APR_SUCCESS) {
        audit_lost(r, a, ca_store_last_error(st));
    }
}
