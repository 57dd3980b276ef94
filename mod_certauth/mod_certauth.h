/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* mod_certauth: shared declarations of the module glue and its endpoints. */
#ifndef MOD_CERTAUTH_H
#define MOD_CERTAUTH_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_expr.h>
#include <apr_tables.h>
#include <apr_global_mutex.h>
#include <jansson.h>

#include "ca_ca.h"
#include "ca_csr.h"
#include "ca_issue.h"
#include "ca_store.h"
#include "ca_store_acme.h"
#include "ca_subject.h"

/* A module-specific tag on every log line the module writes itself. */
#define CA_LOGNO(n) "CA" #n ": "

extern module AP_MODULE_DECLARE_DATA certauth_module;

#define CERTAUTH_HANDLER "certauth"
#define CERTAUTH_DEFAULT_MAX_BODY (64 * 1024)
#define CERTAUTH_RETRY_AFTER "30"
/* Defaults of the database bounds (Failure behaviour in README.md). */
#define CERTAUTH_DB_TIMEOUT apr_time_from_sec(3)
#define CERTAUTH_DB_MAX_WAITERS 8
#define CERTAUTH_MAX_WAITERS 1024
#define CERTAUTH_CRL_DELAY apr_time_from_sec(2)

/* After a rollover: a previous CA generation (CertAuthPreviousCA*). */
typedef struct certauth_gen {
    const char *cert_file;       /* CertAuthPreviousCACertificateFile      */
    const char *key_file;        /* its CertAuthPreviousCAKeyFile, or NULL */
    const char *passphrase;      /* ... the key's pass phrase / PIN source */
    X509 *cert;
    const char *kid;             /* its key identifier (ca_cert_key_id)    */
    ca_t *ca;                    /* with its key (loaded in each child), or
                                    NULL without CertAuthPreviousCAKeyFile:
                                    then no CRL, no OCSP for it            */
    const char *crl_cache;       /* its CRL's cache file                   */
    struct ca_ocsp_t *ocsp_hashes; /* its CertID hashes (with its key)     */
    const char *ocsp_responder;  /* its responder key + certificate file   */
} certauth_gen;

/* CertAuthPreviousCAKeyFile: the Nth is the key of the Nth
 * CertAuthPreviousCACertificateFile. */
typedef struct certauth_prev_key {
    const char *file;            /* path or PKCS#11 URI                    */
    const char *passphrase;      /* or NULL                                */
} certauth_prev_key;

/* Per server (virtual host): the CA and the named profiles. */
typedef struct certauth_srv_conf {
    const char *ca_cert_file;
    const char *ca_key_file;
    const char *passphrase;      /* file:/exec:/env: or NULL                */
    apr_array_header_t *prev_ca_files; /* after a rollover: each previous
                                    CA certificate file (const char *)     */
    apr_array_header_t *link_files; /* ... the link certificate files      */
    apr_array_header_t *prev_keys; /* ... their keys (certauth_prev_key)   */
    apr_array_header_t *prevs;   /* certauth_gen *, newest first (the order
                                    of ca_previous_n), at check_config     */
    const char *base_url;        /* no trailing slash                       */
    const char *where;           /* "file:line" of the CA directives        */
    int has_endpoints;           /* a Location of this server says CertAuth On */
    apr_hash_t *profiles;        /* name -> certauth_prof_conf*             */
    int crl_days;                /* CRL validity (nextUpdate), -1 unset     */
    int crl_retention_days;      /* keep entries this long after expiry     */
    int crl_refresh_secs;        /* check the database for a newer CRL      */
    int supersede_grace_secs;    /* a superseded certificate is listed on
                                    the CRL this long after its renewal     */
    const char *crl_cache;       /* cache file (runtime dir), per CA        */
    apr_interval_time_t db_timeout; /* CertAuthDBTimeout, -1 unset         */
    int db_max_waiters;          /* CertAuthDBMaxWaiters (main server), -1 */
    /* mod_dbd's pool as its own directives set it (read here too, db.c):
     * DBDriver, DBDParams, DBDMax (-1 unset), DBDPersist (-1 unset) */
    const char *dbd_driver;
    const char *dbd_params;
    int dbd_max;
    int dbd_persist;
    struct certauth_gate *dbd_gate; /* the child's gate for that pool      */
    apr_interval_time_t crl_delay; /* CertAuthCRLDelay, -1 unset            */
    int ocsp;                    /* CertAuthOCSP: 1 On, 0 Off, 2 on by
                                    default, -1 unset                       */
    const char *ocsp_path;       /* below the Location (default "ocsp")     */
    const char *ocsp_url;        /* AIA OCSP URL of issued certificates     */
    int ocsp_signer_ca;          /* sign with the CA key, -1 unset          */
    int ocsp_validity_secs;      /* thisUpdate to nextUpdate, -1 unset      */
    int ocsp_responder_days;     /* responder certificate validity, -1      */
    const char *ocsp_dir;        /* response cache (runtime dir), per CA    */
    const char *ocsp_responder;  /* responder key + certificate file        */
    struct ca_ocsp_t *ocsp_hashes; /* the CA's CertID hashes                */
    apr_array_header_t *refs;    /* certauth_ref: profiles named elsewhere  */
    ca_t *ca;                    /* loaded at check_config                  */
    /* ACME (ep_acme.c) */
    const char *acme_profile;    /* CertAuthACMEProfile: the profile name   */
    apr_array_header_t *acme_names; /* its identifier patterns (const char*) */
    int acme_http_port;          /* http-01 port, -1 unset (80)             */
    int acme_tls_port;           /* tls-alpn-01 port, -1 unset (443)        */
    int acme_eab;                /* EAB required, -1 unset (1)              */
    const char *acme_location;   /* the Location saying CertAuthACME On     */
} certauth_srv_conf;

/* A profile named by CertAuthDefaultProfile, checked at start-up. */
typedef struct certauth_ref {
    const char *name;
    const char *where;
} certauth_ref;

/* One RDN rule of the subject: a template (the CA's value) or a rule on
 * the CSR's field (ca_subject.h). */
typedef struct certauth_rdn {
    const char *field;           /* as written: "CN", "O", "emailAddress"  */
    int nid;
    ca_rdn_kind_t kind;
    ap_expr_info_t *expr;        /* TEMPLATE, or MATCH's value; may be NULL */
    int optional;                /* TEMPLATE: leave out when empty          */
    int maxlen;
    const char *charset;
} certauth_rdn;

/* One subjectAltName template. */
typedef struct certauth_san {
    const char *type;            /* "email", "DNS", "URI", "IP"             */
    ap_expr_info_t *expr;
    int optional;                /* leave out when empty                    */
} certauth_san;

/* A profile: inside <CertAuthProfile name>, or a Location's own settings.
 * -1 / NULL mean unset. */
typedef struct certauth_prof_conf {
    const char *name;
    const char *where;           /* file:line of <CertAuthProfile>          */
    int validity_days;
    apr_array_header_t *rdns;    /* certauth_rdn                            */
    int key_usage_set;
    unsigned key_usage;
    apr_array_header_t *eku;     /* const char*                             */
    apr_array_header_t *sans;    /* certauth_san                            */
    apr_array_header_t *san_allow; /* ca_san_allow_t                        */
    int key_types_set;
    ca_key_policy_t key_policy;
    int max_valid_per_owner;
    int unique_subject;
    int renewal_window_days;
    apr_array_header_t *aia;     /* ca_aia_t                                */
    ap_expr_info_t *require;     /* who may use the profile                 */
    int approval;                /* EST requests wait for an administrator  */
    int enroll_by_cert;          /* CertAuthEnrollWithCertificate: a client
                                    certificate alone may obtain a new one  */
    const char *require_text;
} certauth_prof_conf;

/* Per directory (<Location>): the endpoints and the default profile. */
typedef struct certauth_dir_conf {
    int enabled;                 /* -1 unset                                */
    const char *location;        /* the Location where CertAuth On stands   */
    apr_off_t max_body;          /* -1 unset                                */
    const char *default_profile; /* a <CertAuthProfile> name, or NULL       */
    ap_expr_info_t *admin;       /* CertAuthAdmin: who administers          */
    certauth_prof_conf prof;     /* this Location's own profile settings    */
    int acme;                    /* CertAuthACME: an ACME server, -1 unset  */
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
/* The profile settings a request uses: ?profile=NAME, else the Location's
 * CertAuthDefaultProfile, else the Location's own settings.  NULL with
 * *status 404 (unknown name) or 403 (CertAuthRequire says no) and *detail. */
const certauth_prof_conf *certauth_select_profile(request_rec *r,
                                                  int *status,
                                                  const char **detail);
/* The profile of that name without its CertAuthRequire (csrattrs). */
const certauth_prof_conf *certauth_profile_find(request_rec *r,
                                                const char *name);
/* The same with the name given (NULL: the Location's default). */
const certauth_prof_conf *certauth_profile_named(request_rec *r,
                                                 const char *name,
                                                 int *status,
                                                 const char **detail);
/* The profile a stored certificate was issued under, or NULL. */
const certauth_prof_conf *certauth_profile_of_cert(request_rec *r,
                                                   const char *name);
/* The core's view of a profile (allocated from p). */
ca_profile_t *certauth_profile(apr_pool_t *p, const certauth_prof_conf *pc);
/* The URLs a certificate issued by this server names: CertAuthBaseURL (CRL,
 * caIssuers) and CertAuthOCSPURL ("" or unset: none). */
void certauth_issue_urls(ca_issue_req_t *ireq, const certauth_srv_conf *sc);
/* The subject and subjectAltNames of a request from the profile and the
 * CSR (csr may be NULL for server-made keys).  0, or an HTTP status with
 * *detail. */
int certauth_build_names(request_rec *r, const certauth_prof_conf *pc,
                         X509_REQ *csr, X509_NAME **subject,
                         apr_array_header_t **sans, const char **detail);
/* ap_expr lookup hook: %{CERTAUTH_UUID}. */
int certauth_expr_lookup(ap_expr_lookup_parms *parms);
/* Start-up checks of profiles and references; NULL or a message. */
const char *certauth_check_profiles(apr_pool_t *p, server_rec *s);

/* db.c: the store of this request (mod_dbd connection), or NULL after
 * having answered 503 itself (*status set).  The request's database waits
 * end at its deadline: CertAuthDBTimeout after this first call. */
ca_store_t *certauth_store(request_rec *r, int *status);
/* The same without answering: NULL when the database is unavailable. */
ca_store_t *certauth_store_quiet(request_rec *r);
/* The request's deadline (0: no database use yet), and a new one. */
apr_time_t certauth_store_get_deadline(request_rec *r);
void certauth_store_deadline(request_rec *r, apr_time_t deadline);
/* A store outside a request (the watchdog, child start-up), released with
 * p; its waits end `bound` from now; writers take no admission slot. */
ca_store_t *certauth_store_worker(apr_pool_t *p, server_rec *s,
                                  apr_interval_time_t bound);
/* CertAuthDBTimeout of s (or the default). */
apr_interval_time_t certauth_db_timeout(server_rec *s);
/* mod_dbd's directives DBDriver, DBDParams, DBDMax, DBDPersist, read by
 * this module too (httpd calls every module that declares a directive). */
const char *certauth_db_dbd_param(cmd_parms *cmd, void *d, const char *arg);
const char *certauth_db_dbd_persist(cmd_parms *cmd, void *d, int flag);
/* The global mutex (CRL making, schema changes) before `deadline`
 * (0: unbounded): APR_SUCCESS, or APR_TIMEUP. */
apr_status_t certauth_db_lock_until(apr_time_t deadline);
void certauth_db_release(void);
/* Changes of status that the CRL must show: counted in shared memory. */
void certauth_crl_mark(void);
apr_uint32_t certauth_crl_marks(void);
/* Hooks of db.c, called from mod_certauth.c. */
int certauth_db_init_hooks(apr_pool_t *pconf);
int certauth_db_check_config(server_rec *s0);
int certauth_db_post_config(apr_pool_t *pconf, server_rec *s);
void certauth_db_child_init(apr_pool_t *pchild, server_rec *s0);
/* The status for ap_log_*: the core's CA_E* codes mean nothing to APR
 * ("APR does not understand this error code"); the message says it all. */
#define CERTAUTH_LOG_RV(rv) \
    ((rv) > APR_OS_START_USERERR && (rv) < APR_OS_START_USERERR + 100 \
         ? 0 : (rv))

/* http.c: HTTP helpers shared by the endpoints. */
int certauth_error(request_rec *r, int status, const char *error,
                   const char *detail);
int certauth_status_of(apr_status_t rv);
int certauth_send(request_rec *r, int status, const char *ctype,
                  const void *data, apr_size_t len);
/* The whole body, at most max bytes: 0, or the HTTP status. */
int certauth_read_body(request_rec *r, apr_off_t max, char **body,
                       apr_size_t *len);
/* The one media-type parser: "type/subtype" of a Content-Type, without
 * parameters, lower case; "" when absent. */
const char *certauth_media_type(apr_pool_t *p, const char *content_type);
/* The one form/query parser: the value of name in an
 * application/x-www-form-urlencoded text (a body or r->args), decoded;
 * NULL when absent, "" when it cannot be decoded. */
const char *certauth_form_get(apr_pool_t *p, const char *text,
                              const char *name);
/* Secrets (PKCS#12 passwords): certauth_secret_dup copies s into a buffer
 * cleansed when p is destroyed (ca_pool_wipe), on every path. */
const char *certauth_secret_dup(apr_pool_t *p, const char *s);
/* JSON out: every body through jansson; strings from outside are made
 * valid UTF-8 first (certauth_json_text).  Takes the reference of doc. */
int certauth_send_json(request_rec *r, int status, json_t *doc);
/* A json string of s made valid UTF-8 (invalid bytes as \xFF); json null
 * for NULL. */
json_t *certauth_json_text(apr_pool_t *p, const char *s);
const char *certauth_base_url(request_rec *r);

/* ident.c: who is asking.  The client certificate counts only when mod_ssl
 * verified it, this CA issued it and the store says it is valid and not
 * expired; cert_problem says why a presented one was not accepted. */
typedef struct certauth_who {
    const char *user;            /* the site's login, or NULL (r->user as
                                    authentication left it)                 */
    const char *owner;           /* who the request acts as: the login, else
                                    the accepted certificate's owner        */
    ca_cert_row_t *cert;         /* the accepted client certificate         */
    const char *cert_problem;    /* NULL, or why the presented one is not   */
    int presented;               /* a verified client certificate came      */
    int admin;                   /* CertAuthAdmin is true                   */
} certauth_who;

/* Fill *who; 0, or an HTTP status after which the caller answers 503. */
int certauth_identify(request_rec *r, ca_store_t *st, certauth_who *who);
/* ap_expr variables of the identity: CERTAUTH_OWNER, CERTAUTH_AUTH
 * ("login", "certificate", "login+certificate", "none"),
 * CERTAUTH_CERT_OWNER. */
int certauth_ident_expr_lookup(ap_expr_lookup_parms *parms);
/* "admin", "cert", "login" or "none". */
const char *certauth_who_auth(const certauth_who *who);
/* The owner a request acts as: the certificate's owner, else the login. */
const char *certauth_who_owner(const certauth_who *who);

/* Record an event in the audit log (and the error log at info level).
 * Failures to record are logged, never fatal. */
void certauth_audit(request_rec *r, ca_store_t *st, const certauth_who *who,
                    const char *action, const char *serial,
                    const char *outcome, const char *detail);
/* The record certauth_audit would store (to pass into a write unit, e.g.
 * ca_issue_req_t.audit, so that it is committed with what it records), and
 * its log line alone. */
ca_audit_t *certauth_audit_new(request_rec *r, const certauth_who *who,
                               const char *action, const char *serial,
                               const char *outcome, const char *detail);
void certauth_audit_log(request_rec *r, const ca_audit_t *a);

/* crl.c: the current CRL (cached in a file shared by the children). */
int certauth_crl(request_rec *r, int pem);
/* After a change of status: the CRL is made anew outside the request
 * (the watchdog), within CertAuthCRLDelay; returns at once. */
void certauth_crl_regenerate(request_rec *r, ca_store_t *st);
/* Child start-up of the CRL cache; the watchdog (post_config). */
void certauth_crl_child_init(apr_pool_t *p, server_rec *s);
/* GET crl/WHICH[.pem]: "previous" (after a rollover, the previous CA's
 * CRL), or a CA's key identifier (ca_cert_key_id): that CA's CRL; "": GET
 * crl, the CRL named by the certificates of a CA without a previous one. */
int certauth_crl_named(request_rec *r, const char *which, int pem);
int certauth_crl_post_config(apr_pool_t *pconf, server_rec *s);
/* The child exits: returns once the watchdog's work has ended. */
void certauth_crl_child_exit(void);
/* The module's global mutex (CRL making, schema changes), held for the
 * request r, waited for until the request's database deadline
 * (CertAuthDBTimeout): certauth_db_lock returns whether it locked, to be
 * passed to certauth_db_unlock.  Store access from r while it is held is
 * fine. */
int certauth_db_lock(request_rec *r);
void certauth_db_unlock(request_rec *r, int locked);

/* routes.c: the route table, the one place where routes are declared.
 * certauth_dispatch applies a route's rules before any endpoint code runs:
 * the method (405 with Allow), the body bound (413), the request media type
 * (415), who may call it (401 with the right challenge, 403), and for every
 * route that changes state the cross-site rule (a present Origin that is
 * not the site's own is refused; a request a cross-site page can send
 * without a preflight -- no Content-Type, a form type or text/plain --
 * needs X-Requested-With). */
typedef enum {
    CERTAUTH_ANYONE = 0,         /* no identity needed                      */
    CERTAUTH_LOGIN,              /* the site's login                        */
    CERTAUTH_CERT,               /* a client certificate valid in the store */
    CERTAUTH_EITHER,             /* a login or such a certificate           */
    CERTAUTH_ADMIN               /* CertAuthAdmin true                      */
} certauth_caller;

typedef struct certauth_req certauth_req;
typedef int (*certauth_endpoint)(request_rec *r, certauth_req *q);

typedef struct certauth_route {
    const char *path;            /* below the Location; a trailing '*' is a
                                    prefix ("certs/\*"); EST operations are
                                    matched after an optional label        */
    int est;                     /* the Location: 0 the CA's, 1 EST, 2 ACME  */
    int method;                  /* M_GET (HEAD too) or M_POST              */
    const char *media;           /* accepted request media types, space
                                    separated; NULL: no body is read       */
    int empty_ok;                /* an empty body of any type is accepted   */
    apr_off_t max_body;          /* 0: the Location's CertAuthMaxRequestBody */
    certauth_caller caller;
    int changes_state;
    const char *action;          /* its name in the audit log, or NULL      */
    certauth_endpoint run;
} certauth_route;

/* What the entry function settled for the endpoint. */
struct certauth_req {
    const certauth_route *route;
    const char *rest;            /* the path below the Location             */
    const char *tail;            /* what a prefix route's '*' matched       */
    const char *label;           /* EST: the label, or NULL                 */
    const char *op;              /* EST: the operation                      */
    const char *mtype;           /* request media type, lower case; ""      */
    char *body;                  /* the request body (NUL-terminated)       */
    apr_size_t len;
    ca_store_t *st;              /* the store (routes with a caller)        */
    certauth_who who;            /* the caller (routes with a caller)       */
};

extern const certauth_route certauth_routes[];
/* The route of a path below the Location, or NULL. */
const certauth_route *certauth_route_of(const certauth_dir_conf *dc,
                                        const char *rest);
/* Apply the route's rules, then run its endpoint. */
int certauth_dispatch(request_rec *r, const certauth_route *rt,
                      const char *rest);
/* An error in the route's style: JSON, or text/plain for EST. */
int certauth_fail(request_rec *r, const certauth_req *q, int status,
                  const char *error, const char *detail);

/* crl.c: a tag of the current CRL and of the changes of status not on it
 * yet ("number:thisUpdate:marks", certauth_crl_marks), brought up to date
 * as a CRL request does; every change of a certificate's status changes
 * it (at once here, with the next CRL on other front ends), so OCSP
 * responses made under another tag are out of date.
 * 0, or an HTTP status (database unavailable) with *gen what this front end
 * has (NULL: none). */
int certauth_crl_generation(request_rec *r, const char **gen);

/* ep_ocsp.c: the OCSP responder.  Its routes in the table are "ocsp"
 * (POST) and "ocsp/\*" (GET); certauth_ocsp_rest maps the path below the
 * Location to them: the server's CertAuthOCSPPath to "ocsp", a '/' in the
 * GET request's base64 to %2F; "" (no route) for "ocsp" when the
 * responder is off or elsewhere; else rest itself. */
const char *certauth_ocsp_rest(request_rec *r, const char *rest);
/* certauth_fail's answer on the OCSP routes: an OCSP error response. */
int certauth_ocsp_fail(request_rec *r, int status, const char *detail);
void certauth_ocsp_child_init(apr_pool_t *p, server_rec *s);

/* Endpoints: one file each, called by certauth_dispatch only. */
int certauth_publish_cacert(request_rec *r, int pem);
/* GET cacert/KEYID.crt (DER) or cacert/KEYID.pem: the certificate of the
 * CA generation with that key identifier (the current CA or a previous
 * one), 404 for any other. */
int certauth_publish_cacert_named(request_rec *r, const char *tail);
int certauth_publish_cert(request_rec *r, const char *serial_part);
int certauth_enroll(request_rec *r, certauth_req *q);
int certauth_renew(request_rec *r, certauth_req *q);
int certauth_revoke(request_rec *r, certauth_req *q);
int certauth_api(request_rec *r, certauth_req *q);
int certauth_pkcs12(request_rec *r, certauth_req *q);
int certauth_ocsp(request_rec *r, certauth_req *q);
/* EST (RFC 7030) below a Location ending in /.well-known/est. */
int certauth_is_est(const certauth_dir_conf *dc);
int certauth_est(request_rec *r, certauth_req *q);
/* EST's error style: text/plain, with the Basic challenge on 401. */
int certauth_est_error(request_rec *r, int status, const char *text);
/* ACME (RFC 8555) below a Location saying CertAuthACME On (ep_acme.c):
 * its routes are kind 2 of the table; certauth_acme_fail answers the
 * table's refusals with a problem document. */
int certauth_is_acme(const certauth_dir_conf *dc);
int certauth_acme(request_rec *r, certauth_req *q);
int certauth_acme_fail(request_rec *r, int status, const char *detail);
/* POST api/acme/eab: external account binding credentials for the login. */
int certauth_acme_eab(request_rec *r, certauth_req *q);
/* acme_validate.c: validate challenge c of authorization z (the account's
 * key authorization) outside this request: in a thread of the child, or
 * after the response (prefork). */
void certauth_acme_validate(request_rec *r, const certauth_srv_conf *sc,
                            const char *account_jwk,
                            const ca_acme_authz_t *z,
                            const ca_acme_chall_t *c);
void certauth_acme_pre_config(void);
/* prefork: challenge validations queued by a request run after it. */
int certauth_acme_log_transaction(request_rec *r);
/* db.c: a connection of its own for work outside a request (the ACME
 * validation thread); NULL when the database is unavailable.  No deadline
 * for the whole (the work waits for the network too): each PostgreSQL
 * statement is bounded by CertAuthDBTimeout, SQLite's BEGIN by 5 s, the
 * write mutex only by a shutdown.  Given back with p (or
 * certauth_store_release, which leaves it to p). */
ca_store_t *certauth_store_bg(apr_pool_t *p, server_rec *s, void **handle);
void certauth_store_release(server_rec *s, void *handle);

#endif
