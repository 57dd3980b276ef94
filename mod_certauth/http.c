/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* http.c: what every endpoint needs: JSON errors, bounded request bodies,
 * the CSRF rule, responses with Content-Length. */

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

const char *certauth_json_escape(apr_pool_t *p, const char *s)
{
    apr_size_t n = 0;
    const unsigned char *c;
    char *out, *o;

    for (c = (const unsigned char *)s; *c; c++) {
        n += (*c < 0x20 || *c == '"' || *c == '\\') ? 6 : 1;
    }
    o = out = apr_palloc(p, n + 1);
    for (c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *o++ = '\\';
            *o++ = (char)*c;
        }
        else if (*c < 0x20) {
            apr_snprintf(o, 7, "\\u%04x", *c);
            o += 6;
        }
        else {
            *o++ = (char)*c;
        }
    }
    *o = '\0';
    return out;
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
    const char *body;

    if (status == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->err_headers_out, "Retry-After",
                       CERTAUTH_RETRY_AFTER);
    }
    if (status == HTTP_UNAUTHORIZED && ap_auth_type(r)) {
        ap_note_auth_failure(r);
    }
    /* Error responses must not be cached by browsers or proxies. */
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    body = apr_psprintf(r->pool, "{\"error\": \"%s\", \"detail\": \"%s\"}\n",
                        certauth_json_escape(r->pool, error),
                        certauth_json_escape(r->pool, detail ? detail : ""));
    ap_log_rerror(APLOG_MARK, status >= 500 ? APLOG_WARNING : APLOG_INFO, 0,
                  r, CA_LOGNO(0201) "%d %s: %s (user %s, client %s)", status,
                  error, detail ? detail : "", r->user ? r->user : "-",
                  r->useragent_ip);
    /* Headers meant for a success must not leak into the error. */
    apr_table_unset(r->headers_out, "Location");
    return certauth_send(r, status, "application/json", body, strlen(body));
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
int certauth_read_body(request_rec *r, const certauth_dir_conf *dc,
                       char **body, apr_size_t *len)
{
    apr_off_t max = certauth_dir_max_body(dc);
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

/* The CSRF rule: a content type that an HTML form can send is accepted only
 * with an X-Requested-With header, which a cross-site form cannot set. */
int certauth_check_csrf(request_rec *r, const char *mtype)
{
    if (!strcasecmp(mtype, "application/x-www-form-urlencoded")
        || !strcasecmp(mtype, "multipart/form-data")
        || !strcasecmp(mtype, "text/plain")) {
        if (!apr_table_get(r->headers_in, "X-Requested-With")) {
            return HTTP_FORBIDDEN;
        }
    }
    return 0;
}

const char *certauth_base_url(request_rec *r)
{
    return certauth_srv(r->server)->base_url;
}
