/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ep_pkcs12.c: POST pkcs12: for browsers without WebCrypto, the server makes
 * the key and returns a PKCS#12 protected by the person's password (as
 * Dogtag and the CERN/CNRS portals do).  The key is never stored or logged.
 * Body: JSON or form (with X-Requested-With): password, key_type
 * (ec | ec:P-384 | rsa:2048 | rsa:3072), legacy (3DES/SHA-1 for old
 * importers), profile. */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "mod_certauth.h"
#include "ca_password.h"
#include "ca_pkcs12.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

int certauth_pkcs12(request_rec *r, certauth_req *q)
{
    const certauth_srv_conf *sc = certauth_srv(r->server);
    char *body = q->body;
    const char *password = NULL, *key_type = NULL, *legacy = NULL;
    const char *pname = NULL, *err = NULL, *detail = NULL;
    const certauth_prof_conf *pc;
    ca_profile_t *profile;
    ca_issue_req_t ireq;
    ca_cert_row_t *row = NULL;
    certauth_who who = q->who;
    X509_NAME *subject = NULL;
    apr_array_header_t *sans = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    unsigned char *der = NULL;
    apr_size_t len = q->len, dlen = 0;
    ca_store_t *st = q->st;
    apr_status_t rv;
    int status, is_json = !strcmp(q->mtype, "application/json"), rc;

    if (is_json) {
        json_error_t jerr;
        json_t *doc = json_loadb(body, len, 0, &jerr), *v;
        if (!doc || !json_is_object(doc)) {
            json_decref(doc);
            OPENSSL_cleanse(body, len);
            return certauth_error(r, HTTP_BAD_REQUEST, "malformed JSON",
                                  "expected an object");
        }
        if ((v = json_object_get(doc, "password")) && json_is_string(v)) {
            password = certauth_secret_dup(r->pool, json_string_value(v));
            /* jansson's copy: cleansed before it is freed */
            OPENSSL_cleanse((void *)json_string_value(v),
                            json_string_length(v));
        }
        if ((v = json_object_get(doc, "key_type")) && json_is_string(v)) {
            key_type = apr_pstrdup(r->pool, json_string_value(v));
        }
        if ((v = json_object_get(doc, "profile")) && json_is_string(v)) {
            pname = apr_pstrdup(r->pool, json_string_value(v));
        }
        if ((v = json_object_get(doc, "legacy")) && json_is_true(v)) {
            legacy = "1";
        }
        json_decref(doc);
    }
    else {
        password = certauth_form_get(r->pool, body, "password");
        key_type = certauth_form_get(r->pool, body, "key_type");
        pname = certauth_form_get(r->pool, body, "profile");
        legacy = certauth_form_get(r->pool, body, "legacy");
        if (legacy && (!*legacy || !strcmp(legacy, "0"))) {
            legacy = NULL;
        }
    }
    OPENSSL_cleanse(body, len);
    if (!password) {
        return certauth_error(r, HTTP_BAD_REQUEST, "bad password",
                              ca_password_rule.text);
    }
    /* the one rule the pages also apply (api/certs "password_rule") */
    if ((detail = ca_password_problem(password, r->user))) {
        OPENSSL_cleanse((void *)password, strlen(password));
        return certauth_error(r, HTTP_BAD_REQUEST, "bad password", detail);
    }
    if (!key_type || !*key_type) {
        key_type = "ec";
    }
    if (strcmp(key_type, "ec") && strcmp(key_type, "ec:P-256")
        && strcmp(key_type, "ec:P-384") && strcmp(key_type, "rsa:2048")
        && strcmp(key_type, "rsa:3072")) {
        return certauth_error(r, HTTP_BAD_REQUEST, "bad key_type",
                              "key_type: ec, ec:P-384, rsa:2048 or rsa:3072");
    }
    if (pname && !*pname) {
        pname = NULL;
    }
    pc = pname ? certauth_profile_named(r, pname, &status, &detail)
               : certauth_select_profile(r, &status, &detail);
    if (!pc) {
        return certauth_error(r, status, status == HTTP_NOT_FOUND
                                             ? "unknown profile"
                                             : "profile not allowed",
                              detail);
    }
    profile = certauth_profile(r->pool, pc);
    if (ca_key_generate(r->pool, key_type, &key, &err) != APR_SUCCESS) {
        return certauth_error(r, HTTP_INTERNAL_SERVER_ERROR, "internal error",
                              "cannot generate a key");
    }
    if (ca_key_check(r->pool, key, &profile->key_policy, &err)
        != APR_SUCCESS) {
        return certauth_error(r, HTTP_UNPROCESSABLE_ENTITY, "key refused",
                              err);
    }
    if ((status = certauth_build_names(r, pc, NULL, &subject, &sans,
                                       &detail))) {
        return certauth_error(r, status, "refused", detail);
    }
    memset(&ireq, 0, sizeof(ireq));
    ireq.profile = profile;
    ireq.subject = subject;
    ireq.sans = sans;
    ireq.pubkey = key;
    ireq.owner = r->user;
    certauth_issue_urls(&ireq, sc);
    rv = ca_issue(r->pool, sc->ca, st, &ireq, &cert, &row, &err);
    if (rv != APR_SUCCESS) {
        int code = certauth_status_of(rv);
        certauth_audit(r, st, &who, "pkcs12", "", "refused", err);
        if (code == HTTP_SERVICE_UNAVAILABLE) {
            return certauth_error(r, code, "database unavailable",
                                  "try again later");
        }
        if (code == HTTP_INTERNAL_SERVER_ERROR) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), r, CA_LOGNO(1101)
                          "pkcs12 for %s: %s", r->user, err);
            return certauth_error(r, code, "internal error",
                                  "the certificate could not be issued");
        }
        return certauth_error(r, code, code == HTTP_CONFLICT
                                           ? "limit reached" : "refused",
                              err);
    }
    rv = ca_pkcs12_make(r->pool, key, cert, sc->ca->cert, sc->ca->chain,
                        password, ca_pkcs12_friendly_name(r->pool, cert,
                                                          sc->ca->cert),
                        legacy != NULL, &der, &dlen, &err);
    OPENSSL_cleanse((void *)password, strlen(password));
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, CERTAUTH_LOG_RV(rv), r, CA_LOGNO(1102)
                      "pkcs12 for %s: %s", r->user, err);
        return certauth_error(r, HTTP_INTERNAL_SERVER_ERROR, "internal error",
                              "the PKCS#12 could not be made");
    }
    certauth_audit(r, st, &who, "pkcs12", row->serial, "ok",
                   apr_psprintf(r->pool, "profile %s, %s key%s", row->profile,
                                key_type, legacy ? ", legacy PKCS#12" : ""));
    apr_table_setn(r->headers_out, "Location",
                   apr_pstrcat(r->pool, sc->base_url, "/certs/", row->serial,
                               NULL));
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "Content-Disposition",
                   apr_psprintf(r->pool, "attachment; filename=\"%s\"",
                                ca_pkcs12_file_name(r->pool, cert)));
    rc = certauth_send(r, HTTP_CREATED, "application/x-pkcs12", der, dlen);
    OPENSSL_cleanse(der, dlen);
    return rc;
}
