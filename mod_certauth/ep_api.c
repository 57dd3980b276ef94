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
#include "ca_lifecycle.h"
#include "ca_password.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

static const char *arg(request_rec *r, const char *name)
{
    return certauth_form_get(r->pool, r->args, name);
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
    return certauth_send_json(r, HTTP_OK, doc);
}

/* Every string from the store or the request: valid UTF-8, never lost. */
#define T(s) certauth_json_text(r->pool, (s))

/* When renewal of a valid certificate opens (its profile's window before
 * expiry), for the pages to offer Renew only then; NULL when its profile is
 * gone.  Profiles are looked up once per list (cache). */
static const char *renewal_opens(request_rec *r, apr_hash_t *cache,
                                 const ca_cert_row_t *c)
{
    const ca_profile_t *prof = apr_hash_get(cache, c->profile,
                                            APR_HASH_KEY_STRING);
    if (!prof) {
        const certauth_prof_conf *pc = certauth_profile_of_cert(r,
                                                                c->profile);
        if (!pc) {
            return NULL;
        }
        prof = certauth_profile(r->pool, pc);
        apr_hash_set(cache, c->profile, APR_HASH_KEY_STRING, prof);
    }
    return iso(r->pool, ca_lc_renewal_opens(c->not_after,
                                            prof->renewal_window_days));
}

/* The one password rule (ca_password.h), for the pages to show and apply
 * in the same words as the server. */
static json_t *password_rule_json(void)
{
    const ca_password_rule_t *pr = &ca_password_rule;
    json_t *common = json_array();
    int i;

    for (i = 0; pr->common[i]; i++) {
        json_array_append_new(common, json_string(pr->common[i]));
    }
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:s, s:{s:s, "
                     "s:s, s:s, s:s, s:s, s:s}}",
                     "min_length", pr->min_length, "max_length",
                     pr->max_length, "min_kinds", pr->min_kinds,
                     "any_kinds_from", pr->any_kinds_from, "min_distinct",
                     pr->min_distinct, "min_login", pr->min_login,
                     "common_margin", pr->common_margin, "common", common,
                     "text", pr->text, "messages", "too_short",
                     pr->too_short, "too_long", pr->too_long, "kinds",
                     pr->kinds, "distinct", pr->distinct, "guessable",
                     pr->guessable, "login", pr->login);
}

/* How many valid certificates the owner has of the profile a request here
 * would use (?profile=, else the default), and the profile's limit: null
 * when the profile has no limit or may not be used. */
static json_t *quota_json(request_rec *r, ca_store_t *st, const char *owner,
                          apr_int64_t now)
{
    const certauth_prof_conf *pc;
    const ca_profile_t *prof;
    const char *detail = NULL;
    apr_int64_t n = 0;
    int status;

    if (!owner || !(pc = certauth_select_profile(r, &status, &detail))) {
        return json_null();
    }
    prof = certauth_profile(r->pool, pc);
    if (prof->max_valid_per_owner <= 0
        || ca_store_count_valid_owner(st, r->pool, owner, prof->name, now, &n)
               != APR_SUCCESS) {
        return json_null();
    }
    return json_pack("{s:s, s:I, s:i}", "profile", prof->name, "valid",
                     (json_int_t)n, "max", prof->max_valid_per_owner);
}

static int api_certs(request_rec *r, ca_store_t *st, const certauth_who *who)
{
    apr_hash_t *profiles = apr_hash_make(r->pool);
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
            "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
            "serial", T(c->serial), "subject", T(c->subject), "owner",
            T(c->owner), "profile", T(c->profile), "not_before",
            T(iso(r->pool, c->not_before)), "not_after",
            T(iso(r->pool, c->not_after)), "status", T(status),
            "revoked_at", T(strcmp(c->status, CA_STATUS_VALID)
                                          ? iso(r->pool, c->revoked_at)
                                          : NULL),
            "reason", T(strcmp(c->status, CA_STATUS_VALID)
                                      ? ca_reason_name(c->reason) : NULL),
            "replaced_by", T(*c->replaced_by ? c->replaced_by : NULL),
            "renewal_opens", T(!strcmp(status, CA_STATUS_VALID)
                                   ? renewal_opens(r, profiles, c) : NULL)));
    }
    /* who is asking, for the web pages: the owner the list is about, the
     * certificate the browser presented (what renew would renew) or what
     * is wrong with the one it presented, admin, the owner's valid
     * certificates against the profile's limit, the password rule */
    doc = json_pack("{s:o, s:i, s:i, s:b, s:o, s:o, s:o, s:b, s:o, s:o}",
                    "certificates", list, "limit", limit, "offset", offset,
                    "more", rows->nelts > limit, "owner",
                    T(certauth_who_owner(who)), "presented",
                    T(who->cert ? who->cert->serial : NULL),
                    "cert_problem", T(who->cert_problem), "admin",
                    who->admin, "quota",
                    quota_json(r, st, certauth_who_owner(who), now),
                    "password_rule", password_rule_json());
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
            "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "at",
            T(iso(r->pool, a->at)), "actor", T(a->actor), "auth", T(a->auth),
            "client", T(a->client), "action", T(a->action), "serial",
            T(a->serial), "outcome", T(a->outcome), "detail", T(a->detail)));
    }
    return send_json(r, json_pack("{s:o, s:i, s:i}", "events", list, "limit",
                                  limit, "offset", offset));
}

/* GET api/pending[?status=] and POST api/pending/{id} {"decision"}. */
static int api_pending(request_rec *r, certauth_req *q, ca_store_t *st,
                       const certauth_who *who, const char *id)
{
    apr_array_header_t *rows = NULL;
    json_t *list;
    int i;

    if (!who->admin) {
        return certauth_error(r, HTTP_FORBIDDEN, "administrators only",
                              "pending requests are for administrators");
    }
    if (id) {
        const char *decision = NULL, *to;
        json_error_t jerr;
        json_t *doc;
        ca_pending_t *pend = NULL;
        apr_status_t rv;

        doc = json_loadb(q->body, q->len, 0, &jerr);
        if (doc && json_is_string(json_object_get(doc, "decision"))) {
            decision = apr_pstrdup(r->pool, json_string_value(
                                                json_object_get(doc,
                                                                "decision")));
        }
        json_decref(doc);
        if (!decision || (strcmp(decision, "approve")
                          && strcmp(decision, "reject"))) {
            return certauth_error(r, HTTP_BAD_REQUEST, "bad decision",
                                  "decision: approve or reject");
        }
        rv = ca_store_pending_get(st, r->pool, id, &pend);
        if (rv == CA_ENOTFOUND) {
            return certauth_error(r, HTTP_NOT_FOUND, "not found",
                                  "no such pending request");
        }
        to = rv == APR_SUCCESS
                 ? ca_lc_approval_next(pend->status,
                                       !strcmp(decision, "approve")
                                           ? CA_LC_APPROVE : CA_LC_REJECT)
                 : NULL;
        if (rv == APR_SUCCESS && !to) {
            rv = CA_ECONFLICT;
        }
        else if (rv == APR_SUCCESS) {
            rv = ca_store_pending_set(st, r->pool, id, "pending", to,
                                      who->user ? who->user
                                                : certauth_who_owner(who),
                                      (apr_int64_t)apr_time_sec(
                                          apr_time_now()), NULL);
        }
        if (rv == CA_ECONFLICT) {
            return certauth_error(r, HTTP_CONFLICT, "already decided",
                                  apr_psprintf(r->pool, "request %s is %s",
                                               id, pend->status));
        }
        if (rv != APR_SUCCESS) {
            return certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                                  "database unavailable", "try again later");
        }
        certauth_audit(r, st, who, "approval", "", "ok",
                       apr_psprintf(r->pool, "request %s %s (%s, %s)", id, to,
                                    pend->owner, pend->subject));
        return send_json(r, json_pack("{s:o, s:s}", "id", T(id), "status",
                                      to));
    }
    {
        const char *status = arg(r, "status");
        if (!status || !*status) {
            status = "pending";
        }
        if (ca_store_pending_list(st, r->pool, status, 1000, 0, &rows)
            != APR_SUCCESS) {
            return certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                                  "database unavailable", "try again later");
        }
    }
    list = json_array();
    for (i = 0; i < rows->nelts; i++) {
        const ca_pending_t *pr = APR_ARRAY_IDX(rows, i, ca_pending_t *);
        json_array_append_new(list, json_pack(
            "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", T(pr->id),
            "owner", T(pr->owner), "profile", T(pr->profile), "subject",
            T(pr->subject), "status", T(pr->status), "created_at",
            T(iso(r->pool, pr->created_at)), "decided_by",
            T(*pr->decided_by ? pr->decided_by : NULL), "serial",
            T(*pr->serial ? pr->serial : NULL)));
    }
    return send_json(r, json_pack("{s:o}", "requests", list));
}

int certauth_api(request_rec *r, certauth_req *q)
{
    const char *what = q->rest + 4;

    if (!strcmp(what, "certs")) {
        return api_certs(r, q->st, &q->who);
    }
    if (!strcmp(what, "audit")) {
        return api_audit(r, q->st, &q->who);
    }
    if (!strcmp(what, "pending")) {
        return api_pending(r, q, q->st, &q->who, NULL);
    }
    return api_pending(r, q, q->st, &q->who, q->tail);
}
