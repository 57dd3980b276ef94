/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* certauth_stunnel.h: what the files of certauth-stunnel share: the exit
 * codes, the parsed command line (opts_t), the helpers of cmd_common.c and
 * the commands, one file each (cmd_enroll.c, cmd_renew.c, cmd_check.c,
 * cmd_combine.c, cmd_split_p12.c).  certauth_stunnel.c is the command-line
 * layer: options (apr_getopt_long), usage and main. */
#ifndef CERTAUTH_STUNNEL_H
#define CERTAUTH_STUNNEL_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "ca_ca.h"
#include "ca_csr.h"
#include "ca_log.h"
#include "ca_util.h"
#include "est_client.h"
#include "keycert.h"

#define PROG "certauth-stunnel"
/* Room reserved for a new key-cert file before the CA is asked: an RSA
 * 4096 key and a few certificates of chain take about 10 KiB. */
#define KC_RESERVE (32 * 1024)
#define VERSION "1.0"

/* Exit codes (also in usage_text and certauth-stunnel.1). */
#define CS_OK          0  /* done, or renewal not due yet; check: valid    */
#define CS_EXPIRING    1  /* check: expires within --warn-days             */
#define CS_INVALID     2  /* check: unreadable, corrupt, expired, key and
                             certificate differ, chain does not verify     */
#define CS_USAGE       3  /* bad command line; no password source          */
#define CS_UNREACHABLE 4  /* cannot reach the CA: DNS, connection, TLS,
                             timeout, HTTP 5xx, not an EST answer          */
#define CS_REFUSED     5  /* the CA refused: wrong password, not allowed,
                             revoked/expired/superseded certificate        */
#define CS_LOCAL       6  /* local problem: a file cannot be read or
                             written, corrupt key-cert file, existing file
                             without --force, wrong import password        */
#define CS_RELOAD      7  /* the file was replaced, but the reload failed  */
#define CS_PENDING     8  /* the CA holds the request for approval         */

/* The commands, as bits (the options name the commands they belong to). */
enum {
    C_ENROLL = 1, C_RENEW = 2, C_CHECK = 4, C_COMBINE = 8, C_SPLIT = 16,
    C_ALL = 31
};

typedef struct {
    int cmd;
    const char *cmdname;
    const char *url, *ca, *user, *passfile, *newpassfile, *cn, *subject,
        *profile, *key_type, *chain, *out, *in, *key, *cert, *chain_file,
        *out_dir, *reload, *pidfile;
    apr_array_header_t *sans;
    apr_int64_t within;
    int within_set, force, backup, rekey, same_key, warn_days, nodes,
        timeout, verbose, quiet;
} opts_t;

/* A usage error (exit code 3): PROG: fmt with arg, and where --help is. */
int usage(const char *fmt, const char *arg);

#define REQUIRE(o, field, name)                                          \
    do {                                                                 \
        if (!(o)->field || !*(o)->field) {                               \
            return usage("%s is required", name);                        \
        }                                                                \
    } while (0)

/* cmd_common.c: messages, secrets, the checks of an issued certificate,
 * the lock, writing the file and reloading stunnel. */
int fail(int code, const char *msg);
void note(const opts_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int est_exit(est_rc_t rc);
const char *get_secret(apr_pool_t *p, const char *file,
    const char *env_name, const char *prompt,
    const char *again, const char *none, int *code,
    const char **err);
const char *get_password(apr_pool_t *p, const opts_t *o,
    const char *prompt, int *code,
    const char **err);
apr_status_t name_cleanup(void *d);
apr_status_t p12_cleanup(void *d);
apr_int64_t now_sec(void);
const char *left_str(apr_pool_t *p, apr_int64_t secs);
int refuse_existing(apr_pool_t *p, const opts_t *o, const char *path);
X509_STORE *store_from(apr_pool_t *p, const char *file,
    STACK_OF(X509) *trusted, const char **err);
int verify_chain(apr_pool_t *p, X509_STORE *st, X509 *leaf,
    STACK_OF(X509) *untrusted, unsigned long flags,
    const char **why);
int accept_issued(apr_pool_t *p, const opts_t *o, EVP_PKEY *key,
    STACK_OF(X509) *answer, STACK_OF(X509) *cacerts,
    X509 **leaf, STACK_OF(X509) **chain,
    const char **err);
int do_reload(apr_pool_t *p, const opts_t *o);
void client_init(const opts_t *o, est_client_t *c);
int check_readable(apr_pool_t *p, const char *what, const char *path);
int take_lock(apr_pool_t *p, const opts_t *o, const char *path);
int write_keycert(apr_pool_t *p, const opts_t *o, kc_out_t *out,
    const char *path, EVP_PKEY *key, X509 *leaf,
    STACK_OF(X509) *chain, const char *verb);

/* The commands: an exit code. */
int cmd_enroll(apr_pool_t *p, const opts_t *o);
int cmd_renew(apr_pool_t *p, const opts_t *o);
int cmd_check(apr_pool_t *p, const opts_t *o);
int cmd_combine(apr_pool_t *p, const opts_t *o);
int cmd_split(apr_pool_t *p, const opts_t *o);

#endif
