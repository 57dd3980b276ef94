/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* est_client: EST (RFC 7030) over libcurl; see est_client.h.
 *
 * Requests carry the CSR as application/pkcs10, base64 of its DER in
 * 64-character lines, with Content-Transfer-Encoding: base64; answers are
 * PKCS#7 certs-only, base64 (DER accepted too).  HTTP Basic credentials are
 * sent with the request (CURLAUTH_BASIC); a client certificate is handed to
 * curl from memory (CURLOPT_SSLCERT_BLOB / CURLOPT_SSLKEY_BLOB), so the
 * key-cert file is read once, by the caller. */

#include <ctype.h>
#include <string.h>

#include <apr_strings.h>
#include <curl/curl.h>
#include <openssl/x509.h>

#include "ca_util.h"
#include "est_client.h"
#include "keycert.h"

#define EST_PATH "/.well-known/est"
#define EST_MAX_ANSWER (4 * 1024 * 1024)

int est_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void est_global_cleanup(void)
{
    curl_global_cleanup();
}

const char *est_op_url(apr_pool_t *p, const est_client_t *c, const char *op)
{
    char *base = apr_pstrdup(p, c->url ? c->url : "");
    apr_size_t n = strlen(base), k = strlen(EST_PATH);

    while (n > 0 && base[n - 1] == '/') {
        base[--n] = '\0';
    }
    if (n < k || strcmp(base + n - k, EST_PATH)) {
        base = apr_pstrcat(p, base, EST_PATH, NULL);
    }
    if (c->label && *c->label) {
        return apr_pstrcat(p, base, "/", c->label, "/", op, NULL);
    }
    return apr_pstrcat(p, base, "/", op, NULL);
}

/* ------------------------------------------------------------------ curl */

typedef struct {
    apr_pool_t *p;
    char *buf;
    apr_size_t len, cap;
} answer_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    answer_t *a = ud;
    size_t n = size * nmemb;

    if (n > EST_MAX_ANSWER || a->len + n > EST_MAX_ANSWER) {
        return 0; /* CURLE_WRITE_ERROR */
    }
    if (a->len + n + 1 > a->cap) {
        apr_size_t cap = a->cap ? a->cap : 8192;
        char *nb;
        while (cap < a->len + n + 1) {
            cap *= 2;
        }
        nb = apr_palloc(a->p, cap);
        if (a->len) {
            memcpy(nb, a->buf, a->len);
        }
        a->buf = nb;
        a->cap = cap;
    }
    memcpy(a->buf + a->len, ptr, n);
    a->len += n;
    a->buf[a->len] = '\0';
    return n;
}

/* The server's reason: the first line of a text/plain body, printable,
 * at most 300 characters; NULL for other bodies. */
static const char *reason_of(apr_pool_t *p, const char *ctype,
                             const char *body, apr_size_t len)
{
    apr_size_t i = 0, j = 0;
    char *out;

    if (!body || !len || !ctype || strncasecmp(ctype, "text/plain", 10)) {
        return NULL;
    }
    while (i < len && isspace((unsigned char)body[i])) {
        i++;
    }
    out = apr_palloc(p, 302);
    for (; i < len && j < 300 && body[i] != '\r' && body[i] != '\n'; i++) {
        unsigned char ch = (unsigned char)body[i];
        out[j++] = (ch >= 0x20 && ch != 0x7f) ? (char)ch : '?';
    }
    out[j] = '\0';
    return j ? out : NULL;
}

static int local_curl_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_FAILED_INIT:
        return 1;
    default:
        return 0;
    }
}

/* One request: GET (body NULL) or POST of a base64 CSR.  On EST_OK,
 * *status is 200, 202 or 204 and the answer is in *out. */
static est_rc_t perform(apr_pool_t *p, const est_client_t *c, const char *op,
                        const char *body, apr_size_t blen, long *status,
                        const char **ctype, char **out, apr_size_t *outlen,
                        const char **err)
{
    const char *url = est_op_url(p, c, op);
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *hl = NULL, *t;
    answer_t a;
    CURL *h;
    CURLcode rc;
    char *ct = NULL;
    const char *why;
    long code = 0;
    est_rc_t erc = EST_OK;

    *status = 0;
    *ctype = "";
    *out = NULL;
    *outlen = 0;
    if (strncasecmp(url, "https://", 8)) {
        *err = apr_psprintf(p, "%s: the CA's URL must start with https://",
                            url);
        return EST_LOCAL;
    }
    memset(&a, 0, sizeof(a));
    a.p = p;
    errbuf[0] = '\0';
    if (!(h = curl_easy_init())) {
        *err = "cannot initialise libcurl";
        return EST_LOCAL;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    /* HTTP/1.1, as RFC 7030 says: a server that asks for the client
     * certificate per location (renegotiation, TLS 1.3 post-handshake
     * authentication) cannot do so on an HTTP/2 connection */
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (c->ca_file) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
                     c->connect_timeout > 0 ? c->connect_timeout : 15L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout > 0 ? c->timeout : 60L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "certauth-stunnel/1");
    curl_easy_setopt(h, CURLOPT_VERBOSE, c->verbose ? 1L : 0L);
    if (c->user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD,
                         c->password ? c->password : "");
    }
    if (c->cert_pem && c->key_pem) {
        struct curl_blob cb, kb;
        cb.data = (void *)c->cert_pem;
        cb.len = strlen(c->cert_pem);
        cb.flags = CURL_BLOB_COPY;
        kb.data = (void *)c->key_pem; /* not copied: stays in our pool */
        kb.len = strlen(c->key_pem);
        kb.flags = CURL_BLOB_NOCOPY;
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    hl = curl_slist_append(hl, "Accept: application/pkcs7-mime, "
                               "application/csrattrs, text/plain, */*");
    if (body) {
        if (hl && (t = curl_slist_append(hl, "Content-Type: "
                                             "application/pkcs10"))) {
            hl = t;
        }
        if (hl && (t = curl_slist_append(hl, "Content-Transfer-Encoding: "
                                             "base64"))) {
            hl = t;
        }
        if (hl && (t = curl_slist_append(hl, "Expect:"))) {
            hl = t;
        }
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    }
    if (!hl) {
        curl_easy_cleanup(h);
        *err = "out of memory";
        return EST_LOCAL;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);

    rc = curl_easy_perform(h);
    why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK
            && ct) {
            *ctype = apr_pstrdup(p, ct);
        }
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);

    if (rc == CURLE_PEER_FAILED_VERIFICATION) {
        *err = apr_psprintf(p, "cannot reach the CA at %s: its TLS "
                            "certificate does not verify%s%s: %s", url,
                            c->ca_file ? " with " : "",
                            c->ca_file ? c->ca_file : "", why);
        return EST_UNREACHABLE;
    }
    if (rc == CURLE_SSL_CACERT_BADFILE) {
        *err = apr_psprintf(p, "the trust anchor %s cannot be used: %s",
                            c->ca_file ? c->ca_file : "(system store)", why);
        return EST_LOCAL;
    }
    if (rc == CURLE_WRITE_ERROR) {
        *err = apr_psprintf(p, "%s: the answer is larger than %d bytes", url,
                            EST_MAX_ANSWER);
        return EST_PROTOCOL;
    }
    if (rc != CURLE_OK && local_curl_error(rc)) {
        *err = apr_psprintf(p, "%s: %s", url, why);
        return EST_LOCAL;
    }
    if (rc != CURLE_OK) {
        *err = apr_psprintf(p, "cannot reach the CA at %s: %s%s", url, why,
                            c->cert_pem && (rc == CURLE_SSL_CONNECT_ERROR
                                            || rc == CURLE_RECV_ERROR)
                                ? " (the server may have refused the "
                                  "client certificate)"
                                : "");
        return EST_UNREACHABLE;
    }

    *status = code;
    *out = a.buf ? a.buf : apr_pstrdup(p, "");
    *outlen = a.len;
    if (code == 200 || code == 202 || code == 204) {
        return EST_OK;
    }
    {
        const char *r = reason_of(p, *ctype, a.buf, a.len);
        if (code >= 500) {
            *err = apr_psprintf(p, "the CA at %s cannot answer now (HTTP "
                                "%ld)%s%s; try again later", url, code,
                                r ? ": " : "", r ? r : "");
            erc = EST_UNREACHABLE;
        }
        else if (code == 401) {
            *err = apr_psprintf(p, "the CA at %s refused the %s (HTTP 401)"
                                "%s%s", url,
                                c->user ? apr_psprintf(p, "password of user "
                                                       "'%s'", c->user)
                                : c->cert_pem ? "client certificate"
                                              : "request without "
                                                "credentials",
                                r ? ": " : "", r ? r : "");
            erc = EST_REFUSED;
        }
        else if (code >= 400) {
            *err = apr_psprintf(p, "the CA at %s refused the request (HTTP "
                                "%ld)%s%s", url, code, r ? ": " : "",
                                r ? r : "");
            erc = EST_REFUSED;
        }
        else {
            *err = apr_psprintf(p, "unexpected answer HTTP %ld from %s", code,
                                url);
            erc = EST_PROTOCOL;
        }
    }
    return erc;
}

/* ------------------------------------------------------------------ ops */

/* The certificates of a 200 answer to op: a PKCS#7 certs-only. */
static est_rc_t certs_answer(apr_pool_t *p, const est_client_t *c,
                             const char *op, long status, const char *ctype,
                             const char *body, apr_size_t len,
                             STACK_OF(X509) **certs, const char **err)
{
    const char *perr = NULL;

    if (status != 200) {
        *err = apr_psprintf(p, "%s: unexpected HTTP %ld",
                            est_op_url(p, c, op), status);
        return EST_PROTOCOL;
    }
    if (kc_pkcs7_certs_parse(p, body, len, certs, &perr) != APR_SUCCESS) {
        *err = apr_psprintf(p, "%s: not an EST answer (%s): %s",
                            est_op_url(p, c, op),
                            *ctype ? ctype : "no content type", perr);
        return EST_PROTOCOL;
    }
    return EST_OK;
}

est_rc_t est_cacerts(apr_pool_t *p, const est_client_t *c,
                     STACK_OF(X509) **certs, const char **err)
{
    const char *ctype;
    char *body;
    apr_size_t len;
    long status;
    est_rc_t rc;

    *certs = NULL;
    rc = perform(p, c, "cacerts", NULL, 0, &status, &ctype, &body, &len,
                 err);
    if (rc != EST_OK) {
        return rc;
    }
    return certs_answer(p, c, "cacerts", status, ctype, body, len, certs,
                        err);
}

est_rc_t est_enroll(apr_pool_t *p, const est_client_t *c, int reenroll,
                    X509_REQ *req, STACK_OF(X509) **certs, const char **err)
{
    const char *op = reenroll ? "simplereenroll" : "simpleenroll";
    const char *ctype, *b64;
    unsigned char *der = NULL;
    char *body;
    apr_size_t len;
    long status;
    int dlen;
    est_rc_t rc;

    *certs = NULL;
    dlen = i2d_X509_REQ(req, &der);
    if (dlen <= 0) {
        *err = "cannot encode the CSR";
        return EST_LOCAL;
    }
    b64 = ca_base64_encode(p, der, (apr_size_t)dlen, 1);
    OPENSSL_free(der);
    rc = perform(p, c, op, b64, strlen(b64), &status, &ctype, &body, &len,
                 err);
    if (rc != EST_OK) {
        return rc;
    }
    if (status == 202) {
        const char *r = reason_of(p, ctype, body, len);
        *err = apr_psprintf(p, "the CA at %s holds the request for an "
                            "administrator's approval%s%s",
                            est_op_url(p, c, op), r ? ": " : "", r ? r : "");
        return EST_PENDING;
    }
    return certs_answer(p, c, op, status, ctype, body, len, certs, err);
}
