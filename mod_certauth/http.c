/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* http.c: what every endpoint needs: JSON errors, bounded request bodies,
 * media types and forms, responses with Content-Length. */

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>
#include <openssl/crypto.h>

#include "mod_certauth.h"
#include "ca_util.h"

APLOG_USE_MODULE(certauth);

json_t *certauth_json_text(apr_pool_t *p, const char *s)
{
    json_t *j;

    if (!s) {
        return json_null();
    }
    j = json_string(ca_utf8_clean(p, s));
    /* cannot fail for valid UTF-8 without NUL, but never lose the value */
    return j ? j : json_string("(unprintable)");
}

int certauth_send_json(request_rec *r, int status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER)
                     : NULL;
    const char *copy;

    json_decref(doc);
    if (!text) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(1201)
                      "cannot encode a JSON response");
        text = strdup("{\"error\": \"internal error\", \"detail\": "
                      "\"the response cannot be encoded\"}");
        status = HTTP_INTERNAL_SERVER_ERROR;
        if (!text) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    copy = apr_pstrcat(r->pool, text, "\n", NULL);
    free(text);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return certauth_send(r, status, "application/json", copy, strlen(copy));
}

const char *certauth_media_type(apr_pool_t *p, const char *ct)
{
    char *m, *semi;

    if (!ct) {
        return "";
    }
    m = apr_pstrdup(p, ct);
    if ((semi = strchr(m, ';'))) {
        *semi = '\0';
    }
    apr_collapse_spaces(m, m);
    ap_str_tolower(m);
    return m;
}

const char *certauth_secret_dup(apr_pool_t *p, const char *s)
{
    apr_size_t n = s ? strlen(s) : 0;
    char *copy;

    if (!s) {
        return NULL;
    }
    copy = apr_pstrmemdup(p, s, n);
    ca_pool_wipe(p, copy, n);
    return copy;
}

const char *certauth_form_get(apr_pool_t *p, const char *text,
                              const char *name)
{
    char *copy, *tok, *state = NULL;
    apr_size_t n = strlen(name);

    if (!text) {
        return NULL;
    }
    /* the copy may hold a secret (a PKCS#12 password): wiped with p */
    copy = apr_pstrdup(p, text);
    ca_pool_wipe(p, copy, strlen(copy));
    for (tok = apr_strtok(copy, "&", &state); tok;
         tok = apr_strtok(NULL, "&", &state)) {
        if (!strncmp(tok, name, n) && tok[n] == '=') {
            char *v = tok + n + 1;
            return ap_unescape_urlencoded(v) == OK ? v : "";
        }
    }
    return NULL;
}

int certauth_send(request_rec *r, int status, const char *ctype,
                  const void *data, apr_size_t len)
{
    r->status = status;
    ap_set_content_type(r, ctype);
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only && len) {
        ap_rwrite(data, (int)len, r);
    }
    return OK;
}

int certauth_error(request_rec *r, int status, const char *error,
                   const char *detail)
{
    json_t *doc;

    if (status == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->err_headers_out, "Retry-After",
                       CERTAUTH_RETRY_AFTER);
    }
    if (status == HTTP_UNAUTHORIZED && ap_auth_type(r)) {
        ap_note_auth_failure(r);
    }
    /* Error responses must not be cached (certauth_send_json: no-store) */
    doc = json_object();
    json_object_set_new(doc, "error", certauth_json_text(r->pool, error));
    json_object_set_new(doc, "detail",
                        certauth_json_text(r->pool, detail ? detail : ""));
    ap_log_rerror(APLOG_MARK, status >= 500 ? APLOG_WARNING : APLOG_INFO, 0,
                  r, CA_LOGNO(0201) "%d %s: %s (user %s, client %s)", status,
                  error, detail ? detail : "", r->user ? r->user : "-",
                  r->useragent_ip);
    /* Headers meant for a success must not leak into the error. */
    apr_table_unset(r->headers_out, "Location");
    return certauth_send_json(r, status, doc);
}

int certauth_status_of(apr_status_t rv)
{
    switch (rv) {
    case APR_SUCCESS:
        return HTTP_OK;
    case CA_EBADINPUT:
        return HTTP_BAD_REQUEST;
    case CA_EPOLICY:
        return HTTP_UNPROCESSABLE_ENTITY;
    case CA_ENOTFOUND:
        return HTTP_NOT_FOUND;
    case CA_EEXIST:
    case CA_ECONFLICT:
        return HTTP_CONFLICT;
    case CA_EDB:
    case CA_EBUSY:
        return HTTP_SERVICE_UNAVAILABLE;
    default:
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

/* Reads the whole body, at most the configured bound.  Returns 0, or an
 * HTTP status with *detail saying why (the caller answers). */
int certauth_read_body(request_rec *r, apr_off_t max, char **body,
                       apr_size_t *len)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_size_t total = 0;
    char *buf;
    long n;
    int rc;

    *body = NULL;
    *len = 0;
    if (cl) {
        char *end;
        apr_off_t clen;
        if (apr_strtoff(&clen, cl, &end, 10) != APR_SUCCESS || *end
            || clen < 0) {
            return HTTP_BAD_REQUEST;
        }
        if (clen > max) {
            r->connection->keepalive = AP_CONN_CLOSE;
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);
    if (rc != OK) {
        return rc;
    }
    buf = apr_palloc(r->pool, (apr_size_t)max + 1);
    if (ap_should_client_block(r)) {
        while ((n = ap_get_client_block(r, buf + total,
                                        (apr_size_t)max + 1 - total)) > 0) {
            total += (apr_size_t)n;
            if (total > (apr_size_t)max) {
                r->connection->keepalive = AP_CONN_CLOSE;
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
        }
        if (n < 0) {
            r->connection->keepalive = AP_CONN_CLOSE;
            return HTTP_BAD_REQUEST;
        }
    }
    buf[total] = '\0';
    *body = buf;
    *len = total;
    return 0;
}

const char *certauth_base_url(request_rec *r)
{
    return certauth_srv(r->server)->base_url;
}
