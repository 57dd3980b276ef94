/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* mod_certauth: shared declarations of the module glue and its endpoints. */
#ifndef MOD_CERTAUTH_H
#define MOD_CERTAUTH_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_expr.h>
#include <apr_tables.h>

#include "ca_ca.h"
#include "ca_csr.h"
#include "ca_issue.h"
#include "ca_store.h"

/* A module-specific tag on every log line the module writes itself. */
#define CA_LOGNO(n) "CA" #n ": "

extern module AP_MODULE_DECLARE_DATA certauth_module;

#define CERTAUTH_HANDLER "certauth"
#define CERTAUTH_DEFAULT_MAX_BODY (64 * 1024)
#define CERTAUTH_RETRY_AFTER "30"

/* Per server (virtual host): the CA. */
typedef struct certauth_srv_conf {
    const char *ca_cert_file;
    const char *ca_key_file;
    const char *passphrase;      /* file:/exec:/env: or NULL                */
    const char *base_url;        /* no trailing slash                       */
    const char *where;           /* "file:line" of the CA directives        */
    int has_endpoints;           /* a Location of this server says CertAuth On */
    ca_t *ca;                    /* loaded at check_config                  */
} certauth_srv_conf;

/* One RDN of the subject template. */
typedef struct certauth_rdn {
    const char *field;           /* as written: "CN", "O", "emailAddress"  */
    int nid;
    ap_expr_info_t *expr;        /* string expression                       */
} certauth_rdn;

/* Per directory (<Location>): the endpoints and the default profile. */
typedef struct certauth_dir_conf {
    int enabled;                 /* -1 unset                                */
    const char *location;        /* the Location where CertAuth On stands   */
    apr_off_t max_body;          /* -1 unset                                */
    const char *profile_name;
    int validity_days;           /* -1 unset                                */
    apr_array_header_t *rdns;    /* certauth_rdn; NULL unset                */
    int key_usage_set;
    unsigned key_usage;
    apr_array_header_t *eku;     /* const char*; NULL unset                 */
} certauth_dir_conf;

/* config.c */
extern const command_rec certauth_cmds[];
void *certauth_create_srv_conf(apr_pool_t *p, server_rec *s);
void *certauth_merge_srv_conf(apr_pool_t *p, void *base, void *add);
void *certauth_create_dir_conf(apr_pool_t *p, char *dir);
void *certauth_merge_dir_conf(apr_pool_t *p, void *base, void *add);
certauth_srv_conf *certauth_srv(server_rec *s);
certauth_dir_conf *certauth_dir(request_rec *r);
apr_off_t certauth_dir_max_body(const certauth_dir_conf *dc);
/* The Location's default profile (allocated from p). */
ca_profile_t *certauth_dir_profile(apr_pool_t *p, const certauth_dir_conf *dc);

/* mod_certauth.c: the store of this request (mod_dbd connection), or NULL
 * after having answered 503 itself (*status set). */
ca_store_t *certauth_store(request_rec *r, int *status);

/* http.c: HTTP helpers shared by the endpoints. */
int certauth_error(request_rec *r, int status, const char *error,
                   const char *detail);
int certauth_status_of(apr_status_t rv);
int certauth_send(request_rec *r, int status, const char *ctype,
                  const void *data, apr_size_t len);
int certauth_read_body(request_rec *r, const certauth_dir_conf *dc,
                       char **body, apr_size_t *len);
int certauth_check_csrf(request_rec *r, const char *ctype);
const char *certauth_json_escape(apr_pool_t *p, const char *s);
const char *certauth_base_url(request_rec *r);

/* Endpoints: one file each.  `rest` is the path below the Location. */
int certauth_publish_cacert(request_rec *r, int pem);
int certauth_publish_cert(request_rec *r, const char *serial_part);
int certauth_enroll(request_rec *r);

#endif
