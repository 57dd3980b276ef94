/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_subject.c: subject and subjectAltName policy of a profile. */

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include <apr_fnmatch.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_subject.h"
#include "ca_util.h"

int ca_charset_valid(const char *spec)
{
    apr_size_t i, n = spec ? strlen(spec) : 0;

    if (n == 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (spec[i] == '-' && i > 0 && i + 1 < n) {
            unsigned char lo = (unsigned char)spec[i - 1];
            unsigned char hi = (unsigned char)spec[i + 1];
            /* a range within one class only (0-9, a-z, A-Z and their
             * parts): "a-zA-Z0-9.-_" would otherwise be the range .-_,
             * which lets <>@[]\^= through; a '-' meant as itself goes
             * first or last */
            if (lo > hi
                || !((lo >= '0' && hi <= '9') || (lo >= 'a' && hi <= 'z')
                     || (lo >= 'A' && hi <= 'Z'))) {
                return 0;
            }
            i++;
        }
    }
    return 1;
}

/* Is every byte of s in the set?  "a-z" is a range; '-' first or last is
 * itself.  Bytes of multi-byte UTF-8 characters are allowed only when the
 * set names them, so an ASCII set refuses non-ASCII values. */
static int in_charset(const char *s, const char *spec)
{
    apr_size_t n = strlen(spec);
    const unsigned char *c;

    for (c = (const unsigned char *)s; *c; c++) {
        apr_size_t i;
        int ok = 0;
        for (i = 0; i < n && !ok; i++) {
            unsigned char lo = (unsigned char)spec[i];
            if (i + 2 < n && spec[i + 1] == '-') {
                unsigned char hi = (unsigned char)spec[i + 2];
                ok = *c >= lo && *c <= hi;
                i += 2;
            }
            else {
                ok = *c == lo;
            }
        }
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

/* The UTF-8 text of entry `i` of a name. */
static const char *entry_text(apr_pool_t *p, const X509_NAME *name, int i)
{
    const ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name,
                                                                        i));
    unsigned char *utf8 = NULL;
    int len = d ? ASN1_STRING_to_UTF8(&utf8, d) : -1;
    const char *out;

    if (len < 0) {
        return NULL;
    }
    if (memchr(utf8, '\0', (size_t)len)) {
        OPENSSL_free(utf8);
        return NULL;
    }
    out = apr_pstrmemdup(p, (const char *)utf8, (apr_size_t)len);
    OPENSSL_free(utf8);
    return out;
}

static apr_status_t check_value(apr_pool_t *p, const ca_rdn_rule_t *r,
                                const char *v, const char **err)
{
    if (r->maxlen > 0 && (int)strlen(v) > r->maxlen) {
        *err = apr_psprintf(p, "subject field %s is longer than %d "
                            "characters", r->field, r->maxlen);
        return CA_EPOLICY;
    }
    if (r->charset && !in_charset(v, r->charset)) {
        *err = apr_psprintf(p, "subject field %s has characters outside "
                            "[%s]", r->field, r->charset);
        return CA_EPOLICY;
    }
    return APR_SUCCESS;
}

static apr_status_t add(apr_pool_t *p, X509_NAME *out, const ca_rdn_rule_t *r,
                        const char *v, const char **err)
{
    apr_status_t rv = check_value(p, r, v, err);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (!X509_NAME_add_entry_by_NID(out, r->nid, MBSTRING_UTF8,
                                    (const unsigned char *)v, -1, -1, 0)) {
        ERR_clear_error();
        *err = apr_psprintf(p, "subject field %s: value not allowed for this "
                            "field (too long or bad characters)", r->field);
        return CA_EPOLICY;
    }
    return APR_SUCCESS;
}

static apr_status_t name_cleanup(void *n)
{
    X509_NAME_free(n);
    return APR_SUCCESS;
}

apr_status_t ca_subject_build(apr_pool_t *p, const apr_array_header_t *rules,
                              const X509_NAME *csr_subject,
                              const X509_NAME *ca_subject, X509_NAME **out,
                              const char **err)
{
    X509_NAME *name = X509_NAME_new();
    apr_status_t rv;
    int i;

    if (!name) {
        *err = "out of memory";
        return CA_ECRYPTO;
    }
    apr_pool_cleanup_register(p, name, name_cleanup, apr_pool_cleanup_null);
    for (i = 0; i < rules->nelts; i++) {
        const ca_rdn_rule_t *r = &APR_ARRAY_IDX(rules, i, ca_rdn_rule_t);
        int pos = csr_subject
                      ? X509_NAME_get_index_by_NID(csr_subject, r->nid, -1)
                      : -1;
        const char *v;

        switch (r->kind) {
        case CA_RDN_TEMPLATE:
            if (!r->value || !*r->value) {
                if (r->optional) {
                    continue;
                }
                *err = apr_psprintf(p, "subject field %s is empty for this "
                                    "request", r->field);
                return CA_EPOLICY;
            }
            if ((rv = add(p, name, r, r->value, err)) != APR_SUCCESS) {
                return rv;
            }
            break;
        case CA_RDN_MATCH: {
            const char *want = r->value;
            if (!want) {
                int cpos = ca_subject ? X509_NAME_get_index_by_NID(
                                            ca_subject, r->nid, -1) : -1;
                want = cpos >= 0 ? entry_text(p, ca_subject, cpos) : NULL;
                if (!want) {
                    *err = apr_psprintf(p, "subject field %s must match the "
                                        "CA's, but the CA certificate has "
                                        "none", r->field);
                    return CA_ECONFIG;
                }
            }
            if (pos < 0) {
                *err = apr_psprintf(p, "subject field %s is missing from the "
                                    "CSR (it must be \"%s\")", r->field, want);
                return CA_EPOLICY;
            }
            v = entry_text(p, csr_subject, pos);
            if (!v || strcmp(v, want)) {
                *err = apr_psprintf(p, "subject field %s of the CSR must be "
                                    "\"%s\"", r->field, want);
                return CA_EPOLICY;
            }
            if ((rv = add(p, name, r, v, err)) != APR_SUCCESS) {
                return rv;
            }
            break;
        }
        case CA_RDN_SUPPLIED:
        case CA_RDN_OPTIONAL:
            if (pos < 0) {
                if (r->kind == CA_RDN_SUPPLIED) {
                    *err = apr_psprintf(p, "subject field %s is missing from "
                                        "the CSR", r->field);
                    return CA_EPOLICY;
                }
                continue;
            }
            /* every occurrence of the field, in the CSR's order */
            for (; pos >= 0;
                 pos = X509_NAME_get_index_by_NID(csr_subject, r->nid, pos)) {
                v = entry_text(p, csr_subject, pos);
                if (!v || !*v) {
                    *err = apr_psprintf(p, "subject field %s of the CSR is "
                                        "empty or not text", r->field);
                    return CA_EPOLICY;
                }
                if ((rv = add(p, name, r, v, err)) != APR_SUCCESS) {
                    return rv;
                }
            }
            break;
        case CA_RDN_FORBIDDEN:
            if (pos >= 0) {
                *err = apr_psprintf(p, "subject field %s is not allowed in "
                                    "the CSR", r->field);
                return CA_EPOLICY;
            }
            break;
        }
    }
    *out = name;
    return APR_SUCCESS;
}

int ca_san_type(const char *name)
{
    if (!strcasecmp(name, "DNS")) return GEN_DNS;
    if (!strcasecmp(name, "email")) return GEN_EMAIL;
    if (!strcasecmp(name, "URI")) return GEN_URI;
    if (!strcasecmp(name, "IP")) return GEN_IPADD;
    return -1;
}

static const char *type_name(int type)
{
    switch (type) {
    case GEN_DNS: return "DNS";
    case GEN_EMAIL: return "email";
    case GEN_URI: return "URI";
    default: return "IP";
    }
}

static int allowed(const apr_array_header_t *allow, int type,
                   const char *value)
{
    int i;
    for (i = 0; i < allow->nelts; i++) {
        const ca_san_allow_t *a = &APR_ARRAY_IDX(allow, i, ca_san_allow_t);
        if (a->type == type
            && apr_fnmatch(a->pattern, value, APR_FNM_CASE_BLIND)
                   == APR_SUCCESS) {
            return 1;
        }
    }
    return 0;
}

apr_status_t ca_csr_sans(apr_pool_t *p, X509_REQ *req,
                         const apr_array_header_t *allow,
                         apr_array_header_t *sans, const char **err)
{
    STACK_OF(X509_EXTENSION) *exts;
    GENERAL_NAMES *gens = NULL;
    apr_status_t rv = APR_SUCCESS;
    int i, crit = 0;

    if (!allow || allow->nelts == 0) {
        return APR_SUCCESS;
    }
    exts = X509_REQ_get_extensions(req);
    if (exts) {
        gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    ERR_clear_error();
    if (!gens) {
        if (crit == -2) {
            *err = "the CSR requests subjectAltName twice";
            return CA_EPOLICY;
        }
        return APR_SUCCESS;
    }
    for (i = 0; i < sk_GENERAL_NAME_num(gens) && rv == APR_SUCCESS; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const char *v = NULL;

        if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
            const ASN1_IA5STRING *s = g->d.ia5;
            if (s && s->length > 0
                && !memchr(s->data, '\0', (size_t)s->length)) {
                v = apr_pstrmemdup(p, (const char *)s->data,
                                   (apr_size_t)s->length);
            }
        }
        else if (g->type == GEN_IPADD) {
            char txt[INET6_ADDRSTRLEN];
            const ASN1_OCTET_STRING *ip = g->d.ip;
            if (ip && (ip->length == 4 || ip->length == 16)
                && inet_ntop(ip->length == 4 ? AF_INET : AF_INET6, ip->data,
                             txt, sizeof(txt))) {
                v = apr_pstrdup(p, txt);
            }
        }
        else {
            *err = "the CSR requests a subjectAltName of a type this profile "
                   "does not take (only DNS, email, URI, IP)";
            rv = CA_EPOLICY;
            break;
        }
        if (!v) {
            *err = apr_psprintf(p, "a %s subjectAltName of the CSR is empty "
                                "or malformed", type_name(g->type));
            rv = CA_EPOLICY;
            break;
        }
        if (!allowed(allow, g->type, v)) {
            *err = apr_psprintf(p, "subjectAltName %s:%s is not allowed by "
                                "this profile", type_name(g->type), v);
            rv = CA_EPOLICY;
            break;
        }
        APR_ARRAY_PUSH(sans, const char *) =
            apr_pstrcat(p, type_name(g->type), ":", v, NULL);
    }
    GENERAL_NAMES_free(gens);
    return rv;
}

const char *ca_uuid4(apr_pool_t *p)
{
    unsigned char b[16];

    if (RAND_bytes(b, sizeof(b)) != 1) {
        return NULL;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    return apr_psprintf(p,
                        "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                        "%02x%02x%02x%02x%02x%02x",
                        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8],
                        b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void ca_cert_sans(apr_pool_t *p, X509 *x, apr_array_header_t *sans)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
                                           NULL);
    int i;

    for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char txt[INET6_ADDRSTRLEN];

        if ((g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI)
            && g->d.ia5 && g->d.ia5->length > 0) {
            APR_ARRAY_PUSH(sans, const char *) = apr_pstrcat(
                p, type_name(g->type), ":",
                apr_pstrmemdup(p, (const char *)g->d.ia5->data,
                               (apr_size_t)g->d.ia5->length), NULL);
        }
        else if (g->type == GEN_IPADD && g->d.ip
                 && (g->d.ip->length == 4 || g->d.ip->length == 16)
                 && inet_ntop(g->d.ip->length == 4 ? AF_INET : AF_INET6,
                              g->d.ip->data, txt, sizeof(txt))) {
            APR_ARRAY_PUSH(sans, const char *) = apr_pstrcat(p, "IP:", txt,
                                                             NULL);
        }
    }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
}
