/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_acme.c: ACME rules without HTTP and database (see ca_acme.h). */

#include <string.h>
#include <strings.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca_acme.h"
#include "ca_jws.h"
#include "ca_subject.h"
#include "ca_util.h"

const char *ca_acme_dns_normalize(apr_pool_t *p, const char *value)
{
    char *n;
    apr_size_t len, i, label = 0;

    if (!value) {
        return NULL;
    }
    len = strlen(value);
    if (len == 0 || len > 253) {
        return NULL;
    }
    n = apr_pstrdup(p, value);
    for (i = 0; i < len; i++) {
        char c = (char)apr_tolower(n[i]);
        n[i] = c;
        if (c == '.') {
            if (label == 0 || n[i - 1] == '-') {
                return NULL;
            }
            label = 0;
            continue;
        }
        if (c == '*' && i == 0 && len > 2 && n[1] == '.') {
            label = 1;
            continue;
        }
        if (!(apr_isalnum(c) || (c == '-' && label > 0))) {
            return NULL;
        }
        if (++label > 63) {
            return NULL;
        }
    }
    if (label == 0 || n[len - 1] == '-') {
        return NULL; /* empty last label or a trailing dot */
    }
    return n;
}

int ca_acme_name_allowed(const apr_array_header_t *patterns,
                         const char *name)
{
    int i;
    apr_size_t nl = strlen(name);

    if (!patterns || name[0] == '*') {
        return 0;
    }
    for (i = 0; i < patterns->nelts; i++) {
        const char *pat = APR_ARRAY_IDX(patterns, i, const char *);
        const char *dom = NULL;
        if (!strcmp(pat, "*")) {
            return 1;
        }
        if (!strncmp(pat, "*.", 2)) {
            dom = pat + 1;           /* ".domain" */
        }
        else if (pat[0] == '.') {
            dom = pat;
        }
        if (dom) {
            apr_size_t dl = strlen(dom);
            if (nl > dl && !strcasecmp(name + nl - dl, dom)) {
                return 1;
            }
        }
        else if (!strcasecmp(pat, name)) {
            return 1;
        }
    }
    return 0;
}

const char *ca_acme_order_status(const char *stored,
                                 const apr_array_header_t *authz_status,
                                 apr_int64_t expires, apr_int64_t now)
{
    int i, all_valid = 1;

    if (!strcmp(stored, CA_ACME_VALID) || !strcmp(stored, CA_ACME_INVALID)) {
        return stored;
    }
    if (expires <= now) {
        return CA_ACME_INVALID;
    }
    if (!strcmp(stored, CA_ACME_PROCESSING)) {
        return stored;
    }
    for (i = 0; authz_status && i < authz_status->nelts; i++) {
        const char *s = APR_ARRAY_IDX(authz_status, i, const char *);
        if (!strcmp(s, CA_ACME_INVALID) || !strcmp(s, CA_ACME_DEACTIVATED)
            || !strcmp(s, CA_ACME_EXPIRED) || !strcmp(s, CA_ACME_REVOKED)) {
            return CA_ACME_INVALID;
        }
        if (strcmp(s, CA_ACME_VALID)) {
            all_valid = 0;
        }
    }
    if (!authz_status || authz_status->nelts == 0) {
        all_valid = 0;
    }
    return all_valid ? CA_ACME_READY : CA_ACME_PENDING;
}

static int in_list(const apr_array_header_t *a, const char *v)
{
    int i;
    for (i = 0; i < a->nelts; i++) {
        if (!strcasecmp(APR_ARRAY_IDX(a, i, const char *), v)) {
            return 1;
        }
    }
    return 0;
}

apr_status_t ca_acme_csr_matches(apr_pool_t *p, X509_REQ *req,
                                 const apr_array_header_t *idents,
                                 const char **err)
{
    ca_san_allow_t any = {GEN_DNS, "*"};
    apr_array_header_t *allow = apr_array_make(p, 1, sizeof(ca_san_allow_t));
    apr_array_header_t *sans = apr_array_make(p, 4, sizeof(const char *));
    apr_array_header_t *names = apr_array_make(p, 4, sizeof(const char *));
    const X509_NAME *subj = X509_REQ_get_subject_name(req);
    int i, loc;

    APR_ARRAY_PUSH(allow, ca_san_allow_t) = any;
    if (ca_csr_sans(p, req, allow, sans, err) != APR_SUCCESS) {
        *err = apr_pstrcat(p, "the CSR asks for a name that is not a DNS "
                           "name: ", *err, NULL);
        return CA_EPOLICY;
    }
    for (i = 0; i < sans->nelts; i++) {
        const char *s = APR_ARRAY_IDX(sans, i, const char *);
        const char *n = ca_acme_dns_normalize(p, s + 4); /* "DNS:" */
        if (!n) {
            *err = apr_psprintf(p, "the CSR names '%s', not a DNS name",
                                s + 4);
            return CA_EPOLICY;
        }
        if (!in_list(idents, n)) {
            *err = apr_psprintf(p, "the CSR names %s, which is not an "
                                "identifier of the order", n);
            return CA_EPOLICY;
        }
        if (!in_list(names, n)) {
            APR_ARRAY_PUSH(names, const char *) = n;
        }
    }
    for (i = 0; i < idents->nelts; i++) {
        const char *id = APR_ARRAY_IDX(idents, i, const char *);
        if (!in_list(names, id)) {
            *err = apr_psprintf(p, "the order's identifier %s is missing "
                                "from the CSR's subjectAltName", id);
            return CA_EPOLICY;
        }
    }
    loc = -1;
    while ((loc = X509_NAME_get_index_by_NID(subj, NID_commonName, loc))
           >= 0) {
        ASN1_STRING *d = X509_NAME_ENTRY_get_data(
            X509_NAME_get_entry(subj, loc));
        unsigned char *u = NULL;
        int ul = ASN1_STRING_to_UTF8(&u, d);
        const char *cn = ul >= 0 ? apr_pstrndup(p, (char *)u, (apr_size_t)ul)
                                 : NULL;
        OPENSSL_free(u);
        if (!cn || !in_list(idents, cn)) {
            *err = apr_psprintf(p, "the CSR's common name '%s' is not an "
                                "identifier of the order", cn ? cn : "?");
            return CA_EPOLICY;
        }
    }
    return APR_SUCCESS;
}

const char *ca_acme_key_authz(apr_pool_t *p, const char *token,
                              const char *thumbprint)
{
    return apr_pstrcat(p, token, ".", thumbprint, NULL);
}

const char *ca_acme_random(apr_pool_t *p, apr_size_t n)
{
    unsigned char *b = apr_palloc(p, n);
    if (RAND_bytes(b, (int)n) != 1) {
        return NULL;
    }
    return ca_b64url_encode(p, b, n);
}

int ca_acme_http01_body_ok(const char *body, apr_size_t len,
                           const char *key_authz)
{
    apr_size_t kl = strlen(key_authz);

    while (len > 0 && apr_isspace(body[len - 1])) {
        len--;
    }
    return len == kl && !memcmp(body, key_authz, kl);
}
