/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ep_revoke.c: POST revoke (form or JSON: serial, reason, invalidity_date).
 * Who may revoke what: with a client certificate, that certificate or
 * another of the same owner; with the site login, any certificate the user
 * owns (the lost-key case); an administrator, any serial. */

#include <time.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <jansson.h>

#include "mod_certauth.h"
#include "ca_crl.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

typedef struct {
    const char *serial;
    const char *reason;
    const char *invalidity;
} revoke_args;

/* One value of an application/x-www-form-urlencoded body. */
static const char *form_value(apr_pool_t *p, const char *body,
                              const char *name)
{
    char *copy = apr_pstrdup(p, body), *tok, *state = NULL;
    apr_size_t n = strlen(name);

    for (tok = apr_strtok(copy, "&", &state); tok;
         tok = apr_strtok(NULL, "&", &state)) {
        if (!strncmp(tok, name, n) && tok[n] == '=') {
            char *v = tok + n + 1;
            return ap_unescape_urlencoded(v) == OK ? v : NULL;
        }
    }
    return NULL;
}

static const char *json_str(apr_pool_t *p, json_t *obj, const char *name,
                            int *bad)
{
    json_t *v = json_object_get(obj, name);
    if (!v || json_is_null(v)) {
        return NULL;
    }
    if (json_is_string(v)) {
        return apr_pstrdup(p, json_string_value(v));
    }
    if (json_is_integer(v)) {
        return apr_psprintf(p, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    }
    *bad = 1;
    return NULL;
}

/* "2026-11-22T10:00:00Z" or seconds since the epoch; -1 when bad. */
static apr_int64_t parse_time(const char *s)
{
    struct tm tm;
    char *end;
    apr_int64_t v;

    if (!*s) {
        return -1;
    }
    v = apr_strtoi64(s, &end, 10);
    if (!*end) {
        return v > 0 ? v : -1;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || (*end && strcmp(end, "Z"))) {
        return -1;
    }
    return (apr_int64_t)timegm(&tm);
}

/* The revocation and its audit record: one write unit, one commit. */
typedef struct revoke_unit {
    const char *serial;
    apr_int64_t now, invalidity;
    int reason;
    ca_audit_t *audit;
    ca_cert_row_t *row;
} revoke_unit;

static apr_status_t revoke_unit_run(ca_store_t *st, apr_pool_t *p,
                                    void *baton)
{
    revoke_unit *u = baton;
    apr_status_t rv;

    rv = ca_store_cert_set_status(st, p, u->serial, CA_STATUS_VALID,
                                  CA_STATUS_REVOKED, u->now, u->reason,
                                  u->invalidity, NULL, &u->row);
    if (rv == APR_SUCCESS) {
        rv = ca_store_audit_add(st, p, u->audit);
    }
    return rv;
}

int certauth_revoke(request_rec *r)
{
    const certauth_dir_conf *dc = certauth_dir(r);
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    char *m = apr_pstrdup(r->pool, ct ? ct : ""), *semi, *body;
    apr_size_t len;
    revoke_args a = {NULL, NULL, NULL};
    certauth_who who;
    ca_cert_row_t *row = NULL;
    const char *serial, *owner, *rname;
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    apr_int64_t invalidity = 0;
    ca_store_t *st;
    apr_status_t rv;
    int status, reason, is_json;

    if (r->method_number != M_POST) {
        ap_discard_request_body(r);
        apr_table_setn(r->err_headers_out, "Allow", "POST");
        return certauth_error(r, HTTP_METHOD_NOT_ALLOWED,
                              "method not allowed", "POST serial and reason");
    }
    if ((semi = strchr(m, ';'))) {
        *semi = '\0';
    }
    apr_collapse_spaces(m, m);
    ap_str_tolower(m);
    is_json = !strcmp(m, "application/json");
    if (!is_json && strcmp(m, "application/x-www-form-urlencoded")) {
        ap_discard_request_body(r);
        return certauth_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE,
                              "unsupported content type",
                              "send application/json or "
                              "application/x-www-form-urlencoded");
    }
    if (certauth_check_csrf(r, m)) {
        ap_discard_request_body(r);
        return certauth_error(r, HTTP_FORBIDDEN, "cross-site request refused",
                              "a form POST needs an X-Requested-With header");
    }
    if ((status = certauth_read_body(r, dc, &body, &len))) {
        return certauth_error(r, status, status == HTTP_REQUEST_ENTITY_TOO_LARGE
                                             ? "request too large"
                                             : "bad request",
                              "the request body cannot be read");
    }
    if (is_json) {
        json_error_t jerr;
        json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        int bad = 0;
        if (!doc || !json_is_object(doc)) {
            json_decref(doc);
            return certauth_error(r, HTTP_BAD_REQUEST, "malformed JSON",
                                  doc ? "expected an object"
                                      : apr_pstrdup(r->pool, jerr.text));
        }
        a.serial = json_str(r->pool, doc, "serial", &bad);
        a.reason = json_str(r->pool, doc, "reason", &bad);
        a.invalidity = json_str(r->pool, doc, "invalidity_date", &bad);
        json_decref(doc);
        if (bad) {
            return certauth_error(r, HTTP_BAD_REQUEST, "bad request",
                                  "serial, reason and invalidity_date are "
                                  "strings");
        }
    }
    else {
        a.serial = form_value(r->pool, body, "serial");
        a.reason = form_value(r->pool, body, "reason");
        a.invalidity = form_value(r->pool, body, "invalidity_date");
        if (a.invalidity && !*a.invalidity) {
            a.invalidity = NULL;
        }
    }
    if (!a.serial || ca_serial_normalize(r->pool, a.serial, &serial)
                         != APR_SUCCESS) {
        return certauth_error(r, HTTP_BAD_REQUEST, "bad serial",
                              "serial: 1 to 20 bytes in hexadecimal");
    }
    reason = ca_reason_code(a.reason && *a.reason ? a.reason : "unspecified");
    if (reason < 0) {
        return certauth_error(r, HTTP_BAD_REQUEST, "bad reason",
                              "reason: an RFC 5280 CRLReason name "
                              "(unspecified, keyCompromise, "
                              "affiliationChanged, superseded, "
                              "cessationOfOperation, certificateHold, "
                              "privilegeWithdrawn)");
    }
    if (reason == CA_REASON_CA_COMPROMISE
        || reason == CA_REASON_AA_COMPROMISE) {
        return certauth_error(r, HTTP_BAD_REQUEST, "bad reason",
                              "cACompromise and aACompromise are not reasons "
                              "for an end-entity certificate");
    }
    if (a.invalidity) {
        invalidity = parse_time(a.invalidity);
        if (invalidity <= 0 || invalidity > now) {
            return certauth_error(r, HTTP_BAD_REQUEST, "bad invalidity_date",
                                  "invalidity_date: a past time as "
                                  "YYYY-MM-DDTHH:MM:SSZ");
        }
    }

    if (!(st = certauth_store(r, &status))) {
        return status;
    }
    if ((status = certauth_identify(r, st, &who))) {
        return certauth_error(r, status, "database unavailable",
                              "try again later");
    }
    if (!who.cert && !who.user && !who.admin) {
        certauth_audit(r, st, &who, "revoke", serial, "refused",
                       "not authenticated");
        return certauth_error(r, HTTP_UNAUTHORIZED, "authentication required",
                              who.cert_problem
                                  ? who.cert_problem
                                  : "log in, or present a certificate of "
                                    "this CA");
    }
    rv = ca_store_cert_get(st, r->pool, serial, &row);
    if (rv == CA_ENOTFOUND) {
        return certauth_error(r, HTTP_NOT_FOUND, "not found",
                              apr_psprintf(r->pool, "no certificate with "
                                           "serial %s", serial));
    }
    if (rv != APR_SUCCESS) {
        return certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "database unavailable", "try again later");
    }
    owner = certauth_who_owner(&who);
    if (!who.admin && !(owner && !strcmp(owner, row->owner))
        && !(who.user && !strcmp(who.user, row->owner))) {
        certauth_audit(r, st, &who, "revoke", serial, "refused",
                       "another owner's certificate");
        return certauth_error(r, HTTP_FORBIDDEN, "not yours",
                              "this certificate belongs to someone else");
    }
    if (strcmp(row->status, CA_STATUS_VALID)) {
        rname = ca_reason_name(row->reason);
        return certauth_error(r, HTTP_CONFLICT, "already revoked",
                              apr_psprintf(r->pool, "certificate %s is %s "
                                           "since %s (reason %s)", serial,
                                           row->status,
                                           ap_ht_time(r->pool,
                                               apr_time_from_sec(
                                                   row->revoked_at),
                                               "%Y-%m-%dT%H:%M:%SZ", 1),
                                           rname ? rname : "unspecified"));
    }
    {
        revoke_unit u;
        u.serial = serial;
        u.now = now;
        u.invalidity = invalidity;
        u.reason = reason;
        u.audit = certauth_audit_new(r, &who, "revoke", serial, "ok",
                                     ca_reason_name(reason));
        u.row = NULL;
        rv = ca_store_run_unit(st, r->pool, revoke_unit_run, &u);
        row = u.row;
        if (rv == APR_SUCCESS) {
            certauth_audit_log(r, u.audit);
        }
    }
    if (rv == CA_ECONFLICT) {
        return certauth_error(r, HTTP_CONFLICT, "already revoked",
                              apr_psprintf(r->pool, "certificate %s is %s",
                                           serial, row ? row->status : "?"));
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), r, CA_LOGNO(0801)
                      "revoking %s: %s", serial, ca_store_last_error(st));
        return certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "database unavailable", "try again later");
    }
    certauth_crl_regenerate(r, st);
    {
        json_t *out = json_pack("{s:s, s:s, s:s, s:s}", "serial", serial,
                                "status", CA_STATUS_REVOKED, "reason",
                                ca_reason_name(reason) ? ca_reason_name(reason)
                                                       : "unspecified",
                                "revoked_at",
                                ap_ht_time(r->pool, apr_time_from_sec(now),
                                           "%Y-%m-%dT%H:%M:%SZ", 1));
        char *text = out ? json_dumps(out, JSON_INDENT(1)) : NULL;
        const char *copy = apr_pstrcat(r->pool, text ? text : "{}", "\n",
                                       NULL);
        free(text);
        json_decref(out);
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        return certauth_send(r, HTTP_OK, "application/json", copy,
                             strlen(copy));
    }
}
