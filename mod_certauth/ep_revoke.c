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
#include "ca_lifecycle.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

typedef struct {
    const char *serial;
    const char *reason;
    const char *invalidity;
} revoke_args;

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
        /* a number is the serial's value (serials are written in hex) */
        if (json_integer_value(v) <= 0) {
            *bad = 2;
            return NULL;
        }
        return apr_psprintf(p, "%" APR_UINT64_T_HEX_FMT,
                            (apr_uint64_t)json_integer_value(v));
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

int certauth_revoke(request_rec *r, certauth_req *q)
{
    char *body = q->body;
    apr_size_t len = q->len;
    revoke_args a = {NULL, NULL, NULL};
    certauth_who who = q->who;
    ca_cert_row_t *row = NULL;
    const char *serial, *err = NULL;
    ca_lc_actor_t actor;
    apr_array_header_t *cascaded;
    int i;
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    apr_int64_t invalidity = 0;
    ca_store_t *st = q->st;
    apr_status_t rv;
    int reason, is_json = !strcmp(q->mtype, "application/json");

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
        if (bad == 2) {
            return certauth_error(r, HTTP_BAD_REQUEST, "bad serial",
                                  "serial: a positive number, or 1 to 20 "
                                  "bytes in hexadecimal");
        }
        if (bad) {
            return certauth_error(r, HTTP_BAD_REQUEST, "bad request",
                                  "serial, reason and invalidity_date are "
                                  "strings");
        }
    }
    else {
        a.serial = certauth_form_get(r->pool, body, "serial");
        a.reason = certauth_form_get(r->pool, body, "reason");
        a.invalidity = certauth_form_get(r->pool, body, "invalidity_date");
        if (a.invalidity && !*a.invalidity) {
            a.invalidity = NULL;
        }
    }
    if (!a.serial || ca_serial_normalize(r->pool, a.serial, &serial)
                         != APR_SUCCESS) {
        return certauth_error(r, HTTP_BAD_REQUEST, "bad serial",
                              "serial: 1 to 20 bytes in hexadecimal");
    }
    reason = ca_lc_reason(r->pool, a.reason, &err);
    if (reason < 0) {
        return certauth_error(r, HTTP_BAD_REQUEST, "bad reason", err);
    }
    if (a.invalidity) {
        invalidity = parse_time(a.invalidity);
        if (invalidity <= 0 || invalidity > now) {
            return certauth_error(r, HTTP_BAD_REQUEST, "bad invalidity_date",
                                  "invalidity_date: a past time as "
                                  "YYYY-MM-DDTHH:MM:SSZ");
        }
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
    actor.login = who.user;
    actor.cert_owner = who.cert ? who.cert->owner : NULL;
    actor.admin = who.admin;
    rv = ca_lc_may_revoke(r->pool, &actor, row, &err);
    if (rv == CA_EPOLICY) {
        certauth_audit(r, st, &who, "revoke", serial, "refused",
                       "another owner's certificate");
        return certauth_error(r, HTTP_FORBIDDEN, "not yours", err);
    }
    if (rv != APR_SUCCESS) {
        return certauth_error(r, HTTP_CONFLICT, "already revoked", err);
    }
    cascaded = apr_array_make(r->pool, 2, sizeof(const char *));
    rv = ca_lc_revoke(r->pool, st, serial, reason, now, invalidity, &row,
                      cascaded, &err);
    if (rv == CA_ECONFLICT) {
        return certauth_error(r, HTTP_CONFLICT, "already revoked", err);
    }
    if (rv != APR_SUCCESS && !row) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), r,
                      CA_LOGNO(0801)
                      "revoking %s: %s", serial, err);
        return certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "database unavailable", "try again later");
    }
    for (i = 0; i < cascaded->nelts; i++) {
        certauth_audit(r, st, &who, "revoke",
                       APR_ARRAY_IDX(cascaded, i, const char *), "ok",
                       apr_psprintf(r->pool, "keyCompromise: authorised by "
                                    "certificate %s, revoked for "
                                    "keyCompromise", serial));
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), r, CA_LOGNO(1204)
                      "revoking %s: %s", serial, err);
        certauth_audit(r, st, &who, "revoke", serial, "error", err);
        certauth_crl_regenerate(r, st);
        return certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "database unavailable", err);
    }
    certauth_audit(r, st, &who, "revoke", serial, "ok",
                   ca_reason_name(reason));
    certauth_crl_regenerate(r, st);
    return certauth_send_json(r, HTTP_OK, json_pack(
        "{s:s, s:s, s:s, s:s}", "serial", serial, "status", CA_STATUS_REVOKED,
        "reason", ca_reason_name(reason) ? ca_reason_name(reason)
                                         : "unspecified",
        "revoked_at", ap_ht_time(r->pool, apr_time_from_sec(now),
                                 "%Y-%m-%dT%H:%M:%SZ", 1)));
}
