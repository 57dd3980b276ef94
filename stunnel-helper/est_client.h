/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* est_client: an EST (RFC 7030) client over libcurl: cacerts,
 * simpleenroll and simplereenroll.  TLS always verifies the server (with
 * ca_file, or the system's trust store); authentication is HTTP Basic or a
 * client certificate held in memory. */
#ifndef EST_CLIENT_H
#define EST_CLIENT_H

#include <apr_pools.h>
#include <openssl/x509.h>

/* What went wrong, in the terms an operator acts on. */
typedef enum {
    EST_OK = 0,
    EST_UNREACHABLE,  /* name lookup, connection, TLS handshake or server
                         verification, timeout, HTTP 5xx                  */
    EST_REFUSED,      /* HTTP 4xx: credentials, permission, revoked or
                         expired certificate, policy                       */
    EST_PENDING,      /* 202: the CA holds the request for approval        */
    EST_LOCAL,        /* a local problem: trust anchor or client
                         certificate unusable, bad URL, out of memory      */
    EST_PROTOCOL      /* the server answered, but not as an EST server     */
} est_rc_t;

typedef struct est_client_t {
    const char *url;          /* https://host[:port][/prefix]; the client
                                 adds /.well-known/est unless the URL
                                 already ends with it                     */
    const char *label;        /* optional: /.well-known/est/LABEL/...     */
    const char *ca_file;      /* trust anchor(s) for the server, PEM; NULL:
                                 the system's store                       */
    const char *user;         /* HTTP Basic, with password                */
    const char *password;
    const char *cert_pem;     /* client certificate (PEM text) and its    */
    const char *key_pem;      /* private key (PEM text), for TLS auth     */
    long connect_timeout;     /* seconds; 0: 15                           */
    long timeout;             /* seconds for a whole request; 0: 60       */
    int verbose;              /* curl's trace on stderr                   */
} est_client_t;

/* Once per process, before any other call (curl_global_init). */
int est_global_init(void);
void est_global_cleanup(void);

/* The URL of an operation ("cacerts", "simpleenroll", ...). */
const char *est_op_url(apr_pool_t *p, const est_client_t *c, const char *op);

/* GET cacerts: the CA certificates (freed with p). */
est_rc_t est_cacerts(apr_pool_t *p, const est_client_t *c,
                     STACK_OF(X509) **certs, const char **err);

/* POST simpleenroll (reenroll 0) or simplereenroll (reenroll 1) with req:
 * the certificates of the certs-only answer (the issued one among them). */
est_rc_t est_enroll(apr_pool_t *p, const est_client_t *c, int reenroll,
                    X509_REQ *req, STACK_OF(X509) **certs,
                    const char **err);

#endif
