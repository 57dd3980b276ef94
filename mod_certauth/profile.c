/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* profile.c: choosing a request's profile, checking who may use it, and
 * turning its templates into the subject and subjectAltNames. */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_request.h>
#include <apr_strings.h>

#include "mod_certauth.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

/* The value of one query argument, URL-decoded; NULL when absent. */
static const char *query_arg(request_rec *r, const char *name)
{
    return certauth_form_get(r->pool, r->args, name);
}

const certauth_prof_conf *certauth_select_profile(request_rec *r,
                                                  int *status,
                                                  const char **detail)
{
    return certauth_profile_named(r, query_arg(r, "profile"), status,
                                  detail);
}

const certauth_prof_conf *certauth_profile_find(request_rec *r,
                                                const char *name)
{
    const certauth_dir_conf *dc = certauth_dir(r);
    const certauth_srv_conf *sc = certauth_srv(r->server);

    if (!name) {
        name = dc->default_profile;
    }
    return name ? apr_hash_get(sc->profiles, name, APR_HASH_KEY_STRING)
                : &dc->prof;
}

const certauth_prof_conf *certauth_profile_named(request_rec *r,
                                                 const char *name,
                                                 int *status,
                                                 const char **detail)
{
    const certauth_dir_conf *dc = certauth_dir(r);
    const certauth_srv_conf *sc = certauth_srv(r->server);
    const certauth_prof_conf *pc;

    if (!name) {
        name = dc->default_profile;
    }
    if (name) {
        pc = apr_hash_get(sc->profiles, name, APR_HASH_KEY_STRING);
        if (!pc) {
            *status = HTTP_NOT_FOUND;
            *detail = apr_psprintf(r->pool, "no profile named '%s'", name);
            return NULL;
        }
    }
    else {
        pc = &dc->prof;
    }
    if (pc->require) {
        const char *err = NULL;
        int ok = ap_expr_exec(r, pc->require, &err);
        if (err) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(0501)
                          "CertAuthRequire of profile %s: %s",
                          pc->name ? pc->name : "default", err);
        }
        if (ok <= 0) {
            *status = HTTP_FORBIDDEN;
            *detail = apr_psprintf(r->pool, "you may not use profile '%s'",
                                   pc->name ? pc->name : "default");
            return NULL;
        }
    }
    return pc;
}

ca_profile_t *certauth_profile(apr_pool_t *p, const certauth_prof_conf *pc)
{
    ca_profile_t *prof = ca_profile_make(p, pc->name ? pc->name : "default");

    if (pc->validity_days > 0) {
        prof->validity_days = pc->validity_days;
    }
    if (pc->renewal_window_days >= 0) {
        prof->renewal_window_days = pc->renewal_window_days;
    }
    if (pc->key_usage_set) {
        prof->key_usage = pc->key_usage;
    }
    if (pc->eku) {
        prof->eku = pc->eku;
    }
    else {
        prof->eku = apr_array_make(p, 1, sizeof(const char *));
        APR_ARRAY_PUSH(prof->eku, const char *) = "clientAuth";
    }
    if (pc->key_types_set) {
        prof->key_policy = pc->key_policy;
    }
    prof->aia = pc->aia;
    prof->max_valid_per_owner = pc->max_valid_per_owner > 0
                                    ? pc->max_valid_per_owner : 0;
    prof->unique_subject = pc->unique_subject == 1;
    return prof;
}

/* Evaluate a string expression; NULL with *status and *detail on error. */
static const char *eval(request_rec *r, ap_expr_info_t *expr,
                        const char *what, int *status, const char **detail)
{
    const char *err = NULL;
    const char *v = ap_expr_str_exec(r, expr, &err);

    if (err) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(0502)
                      "%s: %s", what, err);
        *status = HTTP_INTERNAL_SERVER_ERROR;
        *detail = apr_psprintf(r->pool, "%s cannot be evaluated", what);
        return NULL;
    }
    return v ? v : "";
}

int certauth_build_names(request_rec *r, const certauth_prof_conf *pc,
                         X509_REQ *csr, X509_NAME **subject,
                         apr_array_header_t **sans, const char **detail)
{
    const ca_t *ca = certauth_srv(r->server)->ca;
    apr_array_header_t *rules = apr_array_make(r->pool, 4,
                                               sizeof(ca_rdn_rule_t));
    const char *err = NULL;
    apr_status_t rv;
    int i, status = 0;

    if (!pc->rdns) {
        /* no template at all: CN is the login */
        ca_rdn_rule_t *rule = apr_array_push(rules);
        memset(rule, 0, sizeof(*rule));
        rule->nid = NID_commonName;
        rule->field = "CN";
        rule->kind = CA_RDN_TEMPLATE;
        rule->value = r->user;
    }
    for (i = 0; pc->rdns && i < pc->rdns->nelts; i++) {
        const certauth_rdn *rdn = &APR_ARRAY_IDX(pc->rdns, i, certauth_rdn);
        ca_rdn_rule_t *rule = apr_array_push(rules);

        memset(rule, 0, sizeof(*rule));
        rule->nid = rdn->nid;
        rule->field = rdn->field;
        rule->kind = rdn->kind;
        rule->optional = rdn->optional;
        rule->maxlen = rdn->maxlen;
        rule->charset = rdn->charset;
        if (rdn->expr) {
            rule->value = eval(r, rdn->expr, apr_psprintf(r->pool,
                               "subject field %s", rdn->field), &status,
                               detail);
            if (!rule->value) {
                return status;
            }
        }
    }
    rv = ca_subject_build(r->pool, rules,
                          csr ? X509_REQ_get_subject_name(csr) : NULL,
                          X509_get_subject_name(ca->cert), subject, &err);
    if (rv != APR_SUCCESS) {
        *detail = err;
        if (rv == CA_ECONFIG) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(0503)
                          "profile %s: %s", pc->name ? pc->name : "default",
                          err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        return HTTP_UNPROCESSABLE_ENTITY;
    }

    *sans = apr_array_make(r->pool, 2, sizeof(const char *));
    for (i = 0; pc->sans && i < pc->sans->nelts; i++) {
        const certauth_san *san = &APR_ARRAY_IDX(pc->sans, i, certauth_san);
        const char *v = eval(r, san->expr, apr_psprintf(r->pool,
                             "subjectAltName %s", san->type), &status, detail);
        if (!v) {
            return status;
        }
        if (!*v) {
            if (san->optional) {
                continue;
            }
            *detail = apr_psprintf(r->pool, "subjectAltName %s is empty for "
                                   "this request", san->type);
            return HTTP_UNPROCESSABLE_ENTITY;
        }
        APR_ARRAY_PUSH(*sans, const char *) =
            apr_pstrcat(r->pool, san->type, ":", v, NULL);
    }
    if (csr && pc->san_allow) {
        rv = ca_csr_sans(r->pool, csr, pc->san_allow, *sans, &err);
        if (rv != APR_SUCCESS) {
            *detail = err;
            return HTTP_UNPROCESSABLE_ENTITY;
        }
    }
    return 0;
}

/* %{CERTAUTH_UUID} in expressions: a random UUID, the same one for every
 * use within one request. */
static const char *uuid_var(ap_expr_eval_ctx_t *ctx, const void *data)
{
    request_rec *r = ctx->r;
    const char *u;
    (void)data;

    if (!r) {
        return NULL;
    }
    u = apr_table_get(r->notes, "certauth-uuid");
    if (!u) {
        u = ca_uuid4(r->pool);
        apr_table_setn(r->notes, "certauth-uuid", u);
    }
    return u;
}

int certauth_expr_lookup(ap_expr_lookup_parms *parms)
{
    if (parms->type == AP_EXPR_FUNC_VAR
        && !strcasecmp(parms->name, "CERTAUTH_UUID")) {
        *parms->func = uuid_var;
        *parms->data = parms->name;
        return OK;
    }
    return certauth_ident_expr_lookup(parms);
}

const certauth_prof_conf *certauth_profile_of_cert(request_rec *r,
                                                   const char *name)
{
    const certauth_dir_conf *dc = certauth_dir(r);
    const certauth_srv_conf *sc = certauth_srv(r->server);
    const certauth_prof_conf *pc = apr_hash_get(sc->profiles, name,
                                                APR_HASH_KEY_STRING);
    if (!pc && !strcmp(name, dc->prof.name ? dc->prof.name : "default")) {
        pc = &dc->prof;
    }
    return pc;
}

void certauth_issue_urls(ca_issue_req_t *ireq, const certauth_srv_conf *sc)
{
    ireq->base_url = sc->base_url;
    ireq->ocsp_url = sc->ocsp_url && *sc->ocsp_url ? sc->ocsp_url : NULL;
}
