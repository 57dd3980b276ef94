/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ep_api.c: GET api/certs (one's own certificates; administrators search
 * all) and GET api/audit (administrators). */

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

static const char *arg(request_rec *r, const char *name)
{
    char *args, *tok, *state = NULL;
    apr_size_t n = strlen(name);

    if (!r->args) {
        return NULL;
    }
    args = apr_pstrdup(r->pool, r->args);
    for (tok = apr_strtok(args, "&", &state); tok;
         tok = apr_strtok(NULL, "&", &state)) {
        if (!strncmp(tok, name, n) && tok[n] == '=') {
            char *v = tok + n + 1;
            return ap_unescape_urlencoded(v) == OK ? v : "";
        }
    }
    return NULL;
}

/* A non-negative number argument within [0, max]; -1 when bad. */
static int num_arg(request_rec *r, const char *name, int dflt, int max)
{
    const char *v = arg(r, name);
    char *end;
    long n;

    if (!v) {
        return dflt;
    }
    n = strtol(v, &end, 10);
    if (!*v || *end || n < 0 || n > max) {
        return -1;
    }
    return (int)n;
}

static const char *iso(apr_pool_t *p, apr_int64_t t)
{
    return t ? ap_ht_time(p, apr_time_from_sec(t), "%Y-%m-%dT%H:%M:%SZ", 1)
             : NULL;
}

static int send_json(request_rec *r, json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    const char *copy = apr_pstrcat(r->pool, text ? text : "{}", "\n", NULL);

    free(text);
    json_decref(doc);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return certauth_send(r, HTTP_OK, "application/json", copy, strlen(copy));
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static int api_certs(request_rec *r, ca_store_t *st, const certauth_who *who)
{
    ca_cert_filter_t f;
    apr_array_header_t *rows = NULL;
    int limit = num_arg(r, "limit", 100, 1000);
    int offset = num_arg(r, "offset", 0, 100000000);
    int days = num_arg(r, "expiring_within_days", 0, 36500);
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    json_t *doc, *list;
    int i;

    if (limit < 1 || offset < 0 || days < 0) {
        return certauth_error(r, HTTP_BAD_REQUEST, "bad request",
                              "limit 1..1000, offset >= 0, "
                              "expiring_within_days 0..36500");
    }
    memset(&f, 0, sizeof(f));
    f.status = arg(r, "status");
    if (f.status && *f.status && strcmp(f.status, CA_STATUS_VALID)
        && strcmp(f.status, CA_STATUS_REVOKED)
        && strcmp(f.status, CA_STATUS_SUPERSEDED)) {
        return certauth_error(r, HTTP_BAD_REQUEST, "bad status",
                              "status: valid, revoked or superseded");
    }
    if (who->admin) {
        f.owner = arg(r, "owner");
        f.subject_contains = arg(r, "subject");
    }
    else {
        /* one's own, whatever owner= says */
        f.owner = certauth_who_owner(who);
    }
    if (days > 0) {
        f.not_after_min = now;
        f.not_after_max = now + (apr_int64_t)days * 86400;
    }
    if (ca_store_cert_search(st, r->pool, &f, limit + 1, offset, &rows)
        != APR_SUCCESS) {
        return certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "database unavailable", "try again later");
    }
    list = json_array();
    for (i = 0; i < rows->nelts && i < limit; i++) {
        const ca_cert_row_t *c = APR_ARRAY_IDX(rows, i, ca_cert_row_t *);
        const char *status = c->status;
        if (!strcmp(status, CA_STATUS_VALID) && c->not_after <= now) {
            status = "expired";
        }
        json_array_append_new(list, json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}",
            "serial", c->serial, "subject", c->subject, "owner", c->owner,
            "profile", c->profile, "not_before", iso(r->pool, c->not_before),
            "not_after", iso(r->pool, c->not_after), "status", status,
            "revoked_at", str_or_null(strcmp(c->status, CA_STATUS_VALID)
                                          ? iso(r->pool, c->revoked_at)
                                          : NULL),
            "reason", str_or_null(strcmp(c->status, CA_STATUS_VALID)
                                      ? ca_reason_name(c->reason) : NULL),
            "replaced_by", str_or_null(*c->replaced_by ? c->replaced_by
                                                        : NULL)));
    }
    doc = json_pack("{s:o, s:i, s:i, s:b}", "certificates", list, "limit",
                    limit, "offset", offset, "more", rows->nelts > limit);
    return send_json(r, doc);
}

static int api_audit(request_rec *r, ca_store_t *st, const certauth_who *who)
{
    apr_array_header_t *rows = NULL;
    int limit = num_arg(r, "limit", 100, 1000);
    int offset = num_arg(r, "offset", 0, 100000000);
    const char *serial = arg(r, "serial");
    json_t *list;
    int i;

    if (!who->admin) {
        return certauth_error(r, HTTP_FORBIDDEN, "administrators only",
                              "the audit log is for administrators");
    }
    if (limit < 1 || offset < 0) {
        return certauth_error(r, HTTP_BAD_REQUEST, "bad request",
                              "limit 1..1000, offset >= 0");
    }
    if (serial && ca_serial_normalize(r->pool, serial, &serial)
                      != APR_SUCCESS) {
        return certauth_error(r, HTTP_BAD_REQUEST, "bad serial",
                              "serial: hexadecimal");
    }
    if (ca_store_audit_list(st, r->pool, serial, limit, offset, &rows)
        != APR_SUCCESS) {
        return certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "database unavailable", "try again later");
    }
    list = json_array();
    for (i = 0; i < rows->nelts; i++) {
        const ca_audit_t *a = APR_ARRAY_IDX(rows, i, ca_audit_t *);
        json_array_append_new(list, json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "at",
            iso(r->pool, a->at), "actor", a->actor, "auth", a->auth,
            "client", a->client, "action", a->action, "serial", a->serial,
            "outcome", a->outcome, "detail", a->detail));
    }
    return send_json(r, json_pack("{s:o, s:i, s:i}", "events", list, "limit",
                                  limit, "offset", offset));
}

int certauth_api(request_rec *r, const char *what)
{
    certauth_who who;
    ca_store_t *st;
    int status;

    if (!(st = certauth_store(r, &status))) {
        return status;
    }
    if ((status = certauth_identify(r, st, &who))) {
        return certauth_error(r, status, "database unavailable",
                              "try again later");
    }
    if (!who.cert && !who.user && !who.admin) {
        return certauth_error(r, HTTP_UNAUTHORIZED, "authentication required",
                              who.cert_problem
                                  ? who.cert_problem
                                  : "log in, or present a certificate of "
                                    "this CA");
    }
    if (!strcmp(what, "certs")) {
        return api_certs(r, st, &who);
    }
    if (!strcmp(what, "audit")) {
        return api_audit(r, st, &who);
    }
    return DECLINED;
}
