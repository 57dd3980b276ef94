/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_subject: a profile's subject and subjectAltName policy applied to a
 * request: the how-to's policy_match (match / supplied / optional), done
 * right, plus CA-made values from templates. */
#ifndef CA_SUBJECT_H
#define CA_SUBJECT_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>

typedef enum {
    CA_RDN_TEMPLATE = 0,  /* the CA's value (an evaluated template)          */
    CA_RDN_MATCH,         /* the CSR must carry it, equal to `value` (or to
                             the CA certificate's own value when NULL)       */
    CA_RDN_SUPPLIED,      /* taken from the CSR, must be present             */
    CA_RDN_OPTIONAL,      /* taken from the CSR when present                 */
    CA_RDN_FORBIDDEN      /* the CSR must not carry it                       */
} ca_rdn_kind_t;

typedef struct ca_rdn_rule_t {
    int nid;
    const char *field;    /* as the administrator wrote it, for messages    */
    ca_rdn_kind_t kind;
    const char *value;    /* TEMPLATE/MATCH: the evaluated value            */
    int optional;         /* TEMPLATE: an empty value leaves the field out  */
    int maxlen;           /* 0: no limit but OpenSSL's                      */
    const char *charset;  /* NULL: any; else allowed characters, with
                             ranges: "A-Za-z0-9 .@-" ('-' last is literal)  */
} ca_rdn_rule_t;

/* Check a charset specification (for configuration time): ranges only
 * within 0-9, a-z or A-Z and not reversed; a '-' first or last is
 * itself. */
int ca_charset_valid(const char *spec);

/* Build the subject from the rules, in their order.  Fields of the CSR that
 * no rule names are dropped.  CA_EPOLICY with *err naming the field when the
 * CSR breaks a rule; CA_ECONFIG when a MATCH rule has no value to match. */
apr_status_t ca_subject_build(apr_pool_t *p, const apr_array_header_t *rules,
                              const X509_NAME *csr_subject,
                              const X509_NAME *ca_subject, X509_NAME **out,
                              const char **err);

/* subjectAltName types for ca_san_allow_t. */
typedef struct ca_san_allow_t {
    int type;             /* GEN_DNS, GEN_EMAIL, GEN_URI, GEN_IPADD         */
    const char *pattern;  /* shell pattern, case-insensitive: "*.example.org" */
} ca_san_allow_t;

/* Parse "DNS", "email", "URI", "IP" into a GEN_* type; -1 if unknown. */
int ca_san_type(const char *name);

/* The subjectAltNames requested in the CSR (its extensionRequest), each of
 * which must match an allowed pattern of its type; appended to `sans` as
 * "DNS:name", "email:a@b", "URI:u", "IP:1.2.3.4".  With no allowed
 * patterns the CSR's names are ignored.  CA_EPOLICY with *err naming the
 * name that is not allowed. */
apr_status_t ca_csr_sans(apr_pool_t *p, X509_REQ *req,
                         const apr_array_header_t *allow,
                         apr_array_header_t *sans, const char **err);

/* The subjectAltNames of a certificate, appended to `sans` in the same
 * "TYPE:value" form (DNS, email, URI, IP; other types are skipped). */
void ca_cert_sans(apr_pool_t *p, X509 *x, apr_array_header_t *sans);

/* A random UUID (RFC 4122 version 4), lower-case hex with dashes. */
const char *ca_uuid4(apr_pool_t *p);

#endif
