/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* certauth-admin: the operator's tool on the same CA files and database.
 *   certauth-admin init --dir DIR [--key-type T] [--days N] [--subject S]
 *                       [--pkcs11 URI --pass file:PINFILE]
 *   certauth-admin migrate --db DRIVER:PARAMS
 *   certauth-admin list --db DRIVER:PARAMS [--owner NAME] [--limit N]
 *   certauth-admin show --db DRIVER:PARAMS SERIAL
 *   certauth-admin revoke --db DRIVER:PARAMS SERIAL [--reason NAME]
 *   certauth-admin gencrl --db DRIVER:PARAMS --ca-cert F --ca-key F
 *                         [--days 7] [--out crl.pem]
 *   certauth-admin rollover --ca-cert F --ca-key F|URI --dir NEWDIR
 *                           [--pkcs11 URI --new-pass SRC]
 *   certauth-admin import --db DRIVER:PARAMS --index index.txt
 *                         [--certs newcerts/] [--crlnumber crlnumber]
 *                         [--ca-cert cacert.pem] [--owner-from cn|email|NAME]
 *                         [--profile NAME] [--dry-run]
 * Exit status: 0 success, 1 failure, 2 usage error. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_getopt.h>
#include <apr_strings.h>
#include <openssl/pem.h>

#include "ca_ca.h"
#include "ca_crl.h"
#include "ca_import.h"
#include "ca_pkcs11.h"
#include "admin_pkcs11.h"
#include "ca_log.h"
#include "ca_lifecycle.h"
#include "ca_store.h"
#include "ca_util.h"

static const char usage_text[] =
    "usage: certauth-admin COMMAND [options]\n"
    "  init --dir DIR [--key-type ec|ec:P-384|rsa|rsa:BITS|ed25519]\n"
    "       [--days 3650] [--subject \"CN=Example Root CA,O=Example\"]\n"
    "       create a root CA: DIR/cacert.pem and DIR/private/cakey.pem (0600)\n"
    "  init --dir DIR --pkcs11 URI --pass file:PINFILE [--key-type ec|rsa]\n"
    "       [--days 3650] [--subject S]\n"
    "       the same with the key in a PKCS#11 token (made there, or the\n"
    "       one there with the URI's object= label): DIR/cacert.pem only\n"
    "  migrate --db sqlite3:/path/certauth.db | pgsql:\"host=... dbname=...\"\n"
    "       create or upgrade the database schema\n"
    "  list --db DB [--owner NAME] [--limit N] [--offset N]\n"
    "       list certificates, newest first\n"
    "  show --db DB SERIAL\n"
    "       one certificate's record and PEM\n"
    "  revoke --db DB SERIAL [--reason keyCompromise]\n"
    "       revoke a certificate (RFC 5280 reason name, default "
    "unspecified);\n"
    "       httpd publishes the new CRL within CertAuthCRLRefreshSeconds\n"
    "  gencrl --db DB --ca-cert cacert.pem --ca-key cakey.pem|URI [--days 7]\n"
    "         [--retention-days 90] [--pass file:/path] [--out crl.pem]\n"
    "       make a new CRL now (stored in the database, and PEM to --out)\n"
    "  import --db DB --index index.txt [--certs newcerts/]\n"
    "         [--crlnumber crlnumber] [--ca-cert cacert.pem]\n"
    "         [--owner-from cn|email|NAME] [--profile default] [--dry-run]\n"
    "       import an openssl ca directory (every line or nothing; the\n"
    "       defaults are next to index.txt); a second run changes nothing\n"
    "  rollover --ca-cert cacert.pem --ca-key cakey.pem|URI [--pass SRC]\n"
    "           --dir NEWDIR [--key-type T] [--days 3650] [--subject S]\n"
    "           [--pkcs11 URI --new-pass SRC]\n"
    "       a new CA key and certificate in NEWDIR (the old subject unless\n"
    "       --subject) with link certificates NewWithOld and OldWithNew\n"
    "       (NEWDIR/links.pem), a copy of the old CA certificate and the\n"
    "       directives (NEWDIR/rollover.conf, with those of earlier CAs)\n";

static int usage(const char *msg)
{
    if (msg) {
        fprintf(stderr, "certauth-admin: %s\n", msg);
    }
    fputs(usage_text, stderr);
    return 2;
}

/* Options (apr_getopt_long, long names only; options and arguments may be
 * interleaved); positional arguments are collected in order. */
typedef struct {
    const char *dir, *key_type, *subject, *db, *owner, *reason, *ca_cert,
        *ca_key, *pass, *out, *index, *certs, *crlnumber, *owner_from,
        *profile, *pkcs11, *new_pass;
    int days, limit, offset, retention, dry_run;
    const char *pos[4];
    int npos;
} opts_t;

enum {
    OPT_DIR = 256, OPT_KEY_TYPE, OPT_SUBJECT, OPT_DB, OPT_OWNER, OPT_REASON,
    OPT_CA_CERT, OPT_CA_KEY, OPT_PASS, OPT_OUT, OPT_DAYS, OPT_LIMIT,
    OPT_OFFSET, OPT_RETENTION, OPT_INDEX, OPT_CERTS, OPT_CRLNUMBER,
    OPT_OWNER_FROM, OPT_PROFILE, OPT_DRY_RUN, OPT_PKCS11, OPT_NEW_PASS
};

static const apr_getopt_option_t options[] = {
    {"dir", OPT_DIR, 1, "directory of a new CA"},
    {"key-type", OPT_KEY_TYPE, 1, "key type"},
    {"subject", OPT_SUBJECT, 1, "subject"},
    {"db", OPT_DB, 1, "database"},
    {"owner", OPT_OWNER, 1, "owner"},
    {"reason", OPT_REASON, 1, "revocation reason"},
    {"ca-cert", OPT_CA_CERT, 1, "CA certificate"},
    {"ca-key", OPT_CA_KEY, 1, "CA key"},
    {"pass", OPT_PASS, 1, "pass phrase source"},
    {"out", OPT_OUT, 1, "output file"},
    {"days", OPT_DAYS, 1, "days"},
    {"limit", OPT_LIMIT, 1, "limit"},
    {"offset", OPT_OFFSET, 1, "offset"},
    {"retention-days", OPT_RETENTION, 1, "retention days"},
    {"index", OPT_INDEX, 1, "openssl ca index.txt"},
    {"certs", OPT_CERTS, 1, "openssl ca newcerts directory"},
    {"crlnumber", OPT_CRLNUMBER, 1, "openssl ca crlnumber file"},
    {"owner-from", OPT_OWNER_FROM, 1, "cn, email or a name"},
    {"profile", OPT_PROFILE, 1, "profile name"},
    {"dry-run", OPT_DRY_RUN, 0, "report only"},
    {"pkcs11", OPT_PKCS11, 1, "PKCS#11 URI of the CA key"},
    {"new-pass", OPT_NEW_PASS, 1, "PIN source of the new key (rollover)"},
    {"help", 'h', 0, "help"},
    {NULL, 0, 0, NULL}
};

static void getopt_err(void *arg, const char *fmt, ...)
{
    va_list ap;
    (void)arg;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static int number_opt(const char *name, const char *v, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);

    if (*end || !*v || n < 0 || n > 100000) {
        fprintf(stderr, "certauth-admin: --%s: bad number '%s'\n", name, v);
        return 2;
    }
    *out = (int)n;
    return 0;
}

/* argv[1] is the command; its options follow. */
static int parse_opts(apr_pool_t *p, int argc, char **argv, opts_t *o)
{
    apr_getopt_t *os;
    const char **av = apr_palloc(p, sizeof(char *) * (apr_size_t)argc);
    const char *arg;
    apr_status_t rv;
    int ch, i, rc = 0;

    memset(o, 0, sizeof(*o));
    o->limit = 100;
    o->retention = 90;
    av[0] = "certauth-admin";
    for (i = 2; i < argc; i++) {
        av[i - 1] = argv[i];
    }
    apr_getopt_init(&os, p, argc - 1, av);
    os->interleave = 1;
    os->errfn = getopt_err;
    while ((rv = apr_getopt_long(os, options, &ch, &arg)) == APR_SUCCESS) {
        switch (ch) {
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        case OPT_DIR: o->dir = arg; break;
        case OPT_KEY_TYPE: o->key_type = arg; break;
        case OPT_SUBJECT: o->subject = arg; break;
        case OPT_DB: o->db = arg; break;
        case OPT_OWNER: o->owner = arg; break;
        case OPT_REASON: o->reason = arg; break;
        case OPT_CA_CERT: o->ca_cert = arg; break;
        case OPT_CA_KEY: o->ca_key = arg; break;
        case OPT_PASS: o->pass = arg; break;
        case OPT_OUT: o->out = arg; break;
        case OPT_INDEX: o->index = arg; break;
        case OPT_CERTS: o->certs = arg; break;
        case OPT_CRLNUMBER: o->crlnumber = arg; break;
        case OPT_OWNER_FROM: o->owner_from = arg; break;
        case OPT_PROFILE: o->profile = arg; break;
        case OPT_DRY_RUN: o->dry_run = 1; break;
        case OPT_PKCS11: o->pkcs11 = arg; break;
        case OPT_NEW_PASS: o->new_pass = arg; break;
        case OPT_DAYS: rc = number_opt("days", arg, &o->days); break;
        case OPT_LIMIT: rc = number_opt("limit", arg, &o->limit); break;
        case OPT_OFFSET: rc = number_opt("offset", arg, &o->offset); break;
        case OPT_RETENTION:
            rc = number_opt("retention-days", arg, &o->retention);
            break;
        }
        if (rc) {
            return rc;
        }
    }
    if (rv != APR_EOF) {
        /* apr_getopt_long has said what was wrong */
        return usage(NULL);
    }
    for (i = os->ind; i < os->argc; i++) {
        if (o->npos >= 4) {
            return usage("too many arguments");
        }
        o->pos[o->npos++] = os->argv[i];
    }
    return 0;
}

static int open_db(apr_pool_t *p, const opts_t *o, ca_store_t **st)
{
    const char *colon, *err = NULL;
    int version;

    if (!o->db || !(colon = strchr(o->db, ':'))) {
        return usage("--db DRIVER:PARAMS is required (e.g. "
                     "sqlite3:/var/lib/certauth/certauth.db)");
    }
    if (ca_store_open(st, p, apr_pstrndup(p, o->db, (apr_size_t)(colon - o->db)),
                      colon + 1, &err) != APR_SUCCESS
        || ca_store_migrate(*st, p, &version, &err) != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s\n", err ? err : "database error");
        return 1;
    }
    return 0;
}

static const char *iso_time(apr_pool_t *p, apr_int64_t t)
{
    char buf[32];
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return apr_pstrdup(p, buf);
}

/* init --pkcs11 URI: the key in the token (made there, or the one there),
 * the self-signed certificate in DIR/cacert.pem. */
static int cmd_init_pkcs11(apr_pool_t *p, const opts_t *o)
{
    ca_init_opts_t io;
    const char *cert, *err = NULL, *pin = NULL;
    EVP_PKEY *key;
    apr_pool_t *kp;
    ca_t *ca;
    int created = 0;

    if (!ca_pkcs11_is_uri(o->pkcs11)) {
        return usage("--pkcs11 needs a PKCS#11 URI (pkcs11:token=...;"
                     "object=...)");
    }
    if (apr_dir_make_recursive(o->dir, APR_FPROT_OS_DEFAULT, p)
        != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: cannot create %s: %s\n", o->dir,
                strerror(errno));
        return 1;
    }
    cert = apr_pstrcat(p, o->dir, "/cacert.pem", NULL);
    if (admin_pkcs11_keygen(p, o->pkcs11, o->pass, o->key_type, &created,
                            &err) != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s: %s\n", o->pkcs11, err);
        return 1;
    }
    memset(&io, 0, sizeof(io));
    io.days = o->days;
    io.subject = o->subject ? o->subject : "CN=certauth demo root CA";
    /* the key through the same unit httpd uses, released before the
     * certificate is loaded back as httpd would */
    apr_pool_create(&kp, p);
    if (o->pass && !(pin = ca_secret_get(kp, o->pass, o->pkcs11, &err))) {
        fprintf(stderr, "certauth-admin: PIN: %s\n", err);
        apr_pool_destroy(kp);
        return 1;
    }
    if (ca_pkcs11_load_key(kp, o->pkcs11, pin, &key, &err)
        != APR_SUCCESS
        || ca_create_with_key(kp, &io, key, cert, &err) != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s\n", err ? err : "failed");
        apr_pool_destroy(kp);
        return 1;
    }
    apr_pool_destroy(kp);
    if (ca_load(&ca, p, cert, o->pkcs11, o->pass, &err) != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s\n", err ? err : "failed");
        return 1;
    }
    printf("CA certificate: %s\nCA key:         %s (%s)\n"
           "subject:        %s\nSHA-256:        %s\n",
           cert, o->pkcs11, created ? "made in the token"
                                    : "was in the token already",
           ca->subject, ca->sha256_fp);
    return 0;
}

static int cmd_init(apr_pool_t *p, const opts_t *o)
{
    ca_init_opts_t io;
    const char *cert, *key, *privdir, *err = NULL;
    ca_t *ca;

    if (!o->dir) {
        return usage("init needs --dir DIR");
    }
    if (o->pkcs11) {
        return cmd_init_pkcs11(p, o);
    }
    if (apr_dir_make_recursive(o->dir, APR_FPROT_OS_DEFAULT, p)
        != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: cannot create %s: %s\n", o->dir,
                strerror(errno));
        return 1;
    }
    privdir = apr_pstrcat(p, o->dir, "/private", NULL);
    if (mkdir(privdir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "certauth-admin: cannot create %s: %s\n", privdir,
                strerror(errno));
        return 1;
    }
    chmod(privdir, 0700);
    cert = apr_pstrcat(p, o->dir, "/cacert.pem", NULL);
    key = apr_pstrcat(p, privdir, "/cakey.pem", NULL);
    memset(&io, 0, sizeof(io));
    io.key_type = o->key_type;
    io.days = o->days;
    io.subject = o->subject ? o->subject : "CN=certauth demo root CA";
    if (ca_create(p, &io, cert, key, &err) != APR_SUCCESS
        || ca_load(&ca, p, cert, key, NULL, &err) != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s\n", err ? err : "failed");
        return 1;
    }
    printf("CA certificate: %s\nCA key:         %s (mode 0600)\n"
           "subject:        %s\nSHA-256:        %s\n",
           cert, key, ca->subject, ca->sha256_fp);
    return 0;
}

static int cmd_list(apr_pool_t *p, const opts_t *o)
{
    ca_store_t *st;
    apr_array_header_t *rows;
    int rc = open_db(p, o, &st), i;

    if (rc) {
        return rc;
    }
    if (ca_store_cert_list(st, p, o->owner, o->limit, o->offset, &rows)
        != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s\n", ca_store_last_error(st));
        return 1;
    }
    printf("%-40s %-10s %-20s %-16s %-12s %s\n", "serial", "status",
           "not_after", "owner", "profile", "subject");
    for (i = 0; i < rows->nelts; i++) {
        ca_cert_row_t *r = APR_ARRAY_IDX(rows, i, ca_cert_row_t *);
        printf("%-40s %-10s %-20s %-16s %-12s %s\n", r->serial, r->status,
               iso_time(p, r->not_after), r->owner, r->profile, r->subject);
    }
    return 0;
}

static int cmd_show(apr_pool_t *p, const opts_t *o)
{
    ca_store_t *st;
    ca_cert_row_t *r;
    const char *serial;
    apr_status_t rv;
    int rc;

    if (o->npos != 1) {
        return usage("show needs one SERIAL");
    }
    if (ca_serial_normalize(p, o->pos[0], &serial) != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: '%s' is not a serial (hex)\n",
                o->pos[0]);
        return 2;
    }
    if ((rc = open_db(p, o, &st))) {
        return rc;
    }
    rv = ca_store_cert_get(st, p, serial, &r);
    if (rv == CA_ENOTFOUND) {
        fprintf(stderr, "certauth-admin: no certificate with serial %s\n",
                serial);
        return 1;
    }
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s\n", ca_store_last_error(st));
        return 1;
    }
    printf("serial:     %s\nsubject:    %s\nowner:      %s\nprofile:    %s\n"
           "status:     %s\nnot_before: %s\nnot_after:  %s\nissued_at:  %s\n",
           r->serial, r->subject, r->owner, r->profile, r->status,
           iso_time(p, r->not_before), iso_time(p, r->not_after),
           iso_time(p, r->issued_at));
    if (r->revoked_at) {
        printf("revoked_at: %s\nreason:     %d\n", iso_time(p, r->revoked_at),
               r->reason);
    }
    fputs(r->cert_pem, stdout);
    return 0;
}

/* An audit record of this command: the (sudo) user, now. */
static ca_audit_t *audit_record(apr_pool_t *p, const char *action,
                                const char *serial, const char *detail)
{
    ca_audit_t *a = apr_pcalloc(p, sizeof(*a));
    const char *user = getenv("SUDO_USER") ? getenv("SUDO_USER")
                                           : getenv("USER");
    a->at = (apr_int64_t)apr_time_sec(apr_time_now());
    a->actor = user ? user : "-";
    a->auth = "cli";
    a->client = "certauth-admin";
    a->action = action;
    a->serial = serial;
    a->outcome = "ok";
    a->detail = detail;
    return a;
}

static void audit(ca_store_t *st, apr_pool_t *p, const char *action,
                  const char *serial, const char *detail)
{
    if (ca_store_audit_add(st, p, audit_record(p, action, serial, detail))
        != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: warning: audit log: %s\n",
                ca_store_last_error(st));
    }
}

static int cmd_revoke(apr_pool_t *p, const opts_t *o)
{
    ca_store_t *st;
    ca_cert_row_t *r = NULL;
    const char *serial, *err = NULL;
    apr_array_header_t *cascaded;
    apr_status_t rv;
    int rc, reason, i;

    if (o->npos != 1) {
        return usage("revoke needs one SERIAL");
    }
    if (ca_serial_normalize(p, o->pos[0], &serial) != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: '%s' is not a serial (hex)\n",
                o->pos[0]);
        return 2;
    }
    reason = ca_lc_reason(p, o->reason, &err);
    if (reason < 0) {
        fprintf(stderr, "certauth-admin: %s\n", err);
        return 2;
    }
    if ((rc = open_db(p, o, &st))) {
        return rc;
    }
    /* the same rules as the HTTP revoke (ca_lifecycle.c): the reasons, and
     * for keyCompromise the certificates this one authorised */
    cascaded = apr_array_make(p, 2, sizeof(const char *));
    rv = ca_lc_revoke(p, st, serial, reason,
                      (apr_int64_t)apr_time_sec(apr_time_now()), 0, &r,
                      cascaded, &err);
    if (rv == CA_ENOTFOUND) {
        fprintf(stderr, "certauth-admin: no certificate with serial %s\n",
                serial);
        return 1;
    }
    if (rv == CA_ECONFLICT) {
        fprintf(stderr, "certauth-admin: certificate %s is already %s\n",
                serial, r ? r->status : "revoked");
        return 1;
    }
    for (i = 0; i < cascaded->nelts; i++) {
        const char *c = APR_ARRAY_IDX(cascaded, i, const char *);
        audit(st, p, "revoke", c,
              apr_psprintf(p, "keyCompromise: authorised by certificate %s, "
                           "revoked for keyCompromise", serial));
        printf("revoked %s (keyCompromise, authorised by %s)\n", c, serial);
    }
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s\n", err ? err
                : ca_store_last_error(st));
        return 1;
    }
    audit(st, p, "revoke", serial, ca_reason_name(reason));
    if (ca_store_crl_invalidate(st, p) != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: warning: the CRL could not be "
                "marked out of date: %s\n", ca_store_last_error(st));
    }
    printf("revoked %s (%s, owner %s)\n", serial,
           ca_reason_name(reason) ? ca_reason_name(reason) : "unspecified",
           r ? r->owner : "?");
    return 0;
}

static int cmd_gencrl(apr_pool_t *p, const opts_t *o)
{
    ca_store_t *st;
    ca_t *ca;
    apr_int64_t number = 0;
    unsigned char *der;
    apr_size_t len;
    const char *err = NULL, *pem;
    int rc, listed = 0, days = o->days > 0 ? o->days : 7;

    if (!o->ca_cert || !o->ca_key) {
        return usage("gencrl needs --ca-cert and --ca-key");
    }
    if (ca_load(&ca, p, o->ca_cert, o->ca_key, o->pass, &err)
        != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s\n", err);
        return 1;
    }
    if ((rc = open_db(p, o, &st))) {
        return rc;
    }
    if (ca_crl_make(p, ca, st, days, o->retention,
                    (apr_int64_t)apr_time_sec(apr_time_now()), &number, &der,
                    &len, &listed, &err) != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: cannot make the CRL: %s\n", err);
        return 1;
    }
    audit(st, p, "crl", "", apr_psprintf(p, "CRL number %" APR_INT64_T_FMT
                                         ", %d entries", number, listed));
    pem = ca_crl_pem(p, der, len);
    if (o->out && ca_file_write_atomic(p, o->out, pem, strlen(pem), 0644)
                      != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: cannot write %s\n", o->out);
        return 1;
    }
    printf("CRL number %" APR_INT64_T_FMT ": %d entries, next update in %d "
           "days%s%s\n", number, listed, days, o->out ? ", written to " : "",
           o->out ? o->out : "");
    return 0;
}

/* The directory part of a path ("." when none). */
static const char *dir_of(apr_pool_t *p, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        return ".";
    }
    return slash == path ? "/" : apr_pstrndup(p, path,
                                              (apr_size_t)(slash - path));
}

static int cmd_import(apr_pool_t *p, const opts_t *o)
{
    ca_import_opts_t io;
    ca_import_t *im;
    ca_import_result_t res;
    ca_store_t *st;
    X509 *cacert;
    BIO *bio;
    const char *dir, *err = NULL;
    apr_finfo_t fi;
    int rc;

    if (!o->index) {
        return usage("import needs --index index.txt (and --db)");
    }
    if (!o->db) {
        return usage("import needs --db DRIVER:PARAMS");
    }
    dir = dir_of(p, o->index);
    memset(&io, 0, sizeof(io));
    io.index_file = o->index;
    io.certs_dir = o->certs ? o->certs : apr_pstrcat(p, dir, "/newcerts",
                                                     NULL);
    io.crlnumber_file = o->crlnumber;
    if (!io.crlnumber_file) {
        const char *f = apr_pstrcat(p, dir, "/crlnumber", NULL);
        if (apr_stat(&fi, f, APR_FINFO_TYPE, p) == APR_SUCCESS) {
            io.crlnumber_file = f;
        }
    }
    io.owner_from = o->owner_from;
    io.profile = o->profile;
    {
        const char *cf = o->ca_cert ? o->ca_cert
                                    : apr_pstrcat(p, dir, "/cacert.pem",
                                                  NULL);
        bio = BIO_new_file(cf, "r");
        if (!bio) {
            fprintf(stderr, "certauth-admin: cannot read %s: %s (give the "
                    "CA certificate with --ca-cert)\ncertauth-admin: "
                    "nothing imported\n", cf, strerror(errno));
            return 1;
        }
        cacert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!cacert) {
            fprintf(stderr, "certauth-admin: %s: no PEM CA certificate "
                    "(give it with --ca-cert)\ncertauth-admin: nothing "
                    "imported\n", cf);
            return 1;
        }
        io.ca_cert = ca_pool_x509(p, cacert);
    }
    /* recorded by ca_import_apply in its transaction */
    io.audit = audit_record(p, "import", "", NULL);
    if (ca_import_read(p, &io, &im, &err) != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s\ncertauth-admin: nothing "
                "imported\n", err);
        return 1;
    }
    if ((rc = open_db(p, o, &st))) {
        return rc;
    }
    if (ca_import_apply(p, st, &io, im, o->dry_run, &res, &err)
        != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s\ncertauth-admin: nothing "
                "imported\n", err);
        return 1;
    }
    printf("%s: %d certificates (%d V, %d R, %d E)%s%s\n", o->index,
           im->entries->nelts, im->valid, im->revoked, im->expired,
           io.crlnumber_file ? ", next CRL number from " : "",
           io.crlnumber_file ? io.crlnumber_file : "");
    if (o->dry_run) {
        printf("dry run, nothing stored: would add %d, revoke %d, leave %d "
               "unchanged; the next CRL would be number %" APR_INT64_T_FMT
               "\n", res.added, res.revoked, res.unchanged,
               res.crl_number_after + 1);
        return 0;
    }
    if (!res.added && !res.revoked
        && res.crl_number_after == res.crl_number_before) {
        printf("already imported: all %d certificates are stored and "
               "unchanged; nothing changed\n", res.unchanged);
        return 0;
    }
    printf("imported: %d added, %d revoked, %d unchanged; the next CRL will "
           "be number %" APR_INT64_T_FMT "\n", res.added, res.revoked,
           res.unchanged, res.crl_number_after + 1);
    return 0;
}

/* path made absolute (a file named in rollover.conf is read by httpd,
 * relative to its ServerRoot); a PKCS#11 URI as it is. */
static const char *abs_path(apr_pool_t *p, const char *path)
{
    char *out = NULL;

    if (!path || path[0] == '/' || ca_pkcs11_is_uri(path)
        || apr_filepath_merge(&out, NULL, path, APR_FILEPATH_NOTRELATIVE, p)
               != APR_SUCCESS) {
        return path;
    }
    return out;
}

/* The lines of an earlier rollover's rollover.conf (next to the CA
 * certificate that rolls over now) that name the CA generations before
 * it: CertAuthPrevious... and CertAuthCALinkCertificates, in their order
 * ("" when there is none: the first rollover). */
static const char *earlier_generations(apr_pool_t *p, const char *ca_cert,
                                       const char **link_lines,
                                       apr_array_header_t *certs)
{
    const char *dir = apr_pstrdup(p, ca_cert), *slash = strrchr(dir, '/');
    const char *out = "";
    char *data = NULL, *line, *last = NULL;
    apr_size_t len = 0;

    *link_lines = "";
    dir = slash ? apr_pstrmemdup(p, dir, (apr_size_t)(slash - dir)) : ".";
    if (ca_file_read(p, apr_pstrcat(p, dir, "/rollover.conf", NULL),
                     64 * 1024, &data, &len) != APR_SUCCESS) {
        return "";
    }
    for (line = apr_strtok(data, "\n", &last); line;
         line = apr_strtok(NULL, "\n", &last)) {
        while (*line == ' ' || *line == '\t') {
            line++;
        }
        if (!strncmp(line, "CertAuthPreviousCACertificateFile ", 34)) {
            APR_ARRAY_PUSH(certs, const char *) = apr_pstrdup(p, line + 34);
        }
        if (!strncmp(line, "CertAuthPreviousCA", 18)) {
            out = apr_pstrcat(p, out, line, "\n", NULL);
        }
        else if (!strncmp(line, "CertAuthCALinkCertificates", 26)) {
            *link_lines = apr_pstrcat(p, *link_lines, line, "\n", NULL);
        }
    }
    return out;
}

/* rollover: a new CA key and self-signed certificate (by default the old
 * CA's subject) in --dir, and the RFC 4210 link certificates: NewWithOld
 * (the new key certified by the old CA) and OldWithNew (the old key
 * certified by the new CA), valid until the old CA certificate expires.
 * The directives go to --dir/rollover.conf too, with the lines of the
 * generations before the old CA when it came from a rollover itself (its
 * directory's rollover.conf): a CA may roll over again while the
 * certificates of earlier ones live. */
static int cmd_rollover(apr_pool_t *p, const opts_t *o)
{
    ca_t *old;
    EVP_PKEY *key = NULL;
    X509_NAME *name;
    X509 *newca, *nwo, *own;
    const char *err = NULL, *cert, *keyf, *privdir, *pem, *links, *prev;
    const char *conf, *earlier, *earlier_links, *direct = "";
    apr_array_header_t *earlier_certs = apr_array_make(p, 2,
                                                       sizeof(const char *));
    int i;
    apr_int64_t old_na;
    apr_status_t rv;
    apr_pool_t *kp = NULL;
    apr_finfo_t fi;
    int created = 0, days = o->days > 0 ? o->days : 3650;

    opts_t abs;

    if (!o->ca_cert || !o->ca_key || !o->dir) {
        return usage("rollover needs --ca-cert and --ca-key (the CA now) and "
                     "--dir (where the new CA goes)");
    }
    /* the paths written into rollover.conf: absolute */
    abs = *o;
    abs.dir = abs_path(p, o->dir);
    abs.ca_key = abs_path(p, o->ca_key);
    o = &abs;
    if (ca_load(&old, p, o->ca_cert, o->ca_key, o->pass, &err)
        != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s\n", err);
        return 1;
    }
    cert = apr_pstrcat(p, o->dir, "/cacert.pem", NULL);
    links = apr_pstrcat(p, o->dir, "/links.pem", NULL);
    prev = apr_pstrcat(p, o->dir, "/previous-cacert.pem", NULL);
    privdir = apr_pstrcat(p, o->dir, "/private", NULL);
    keyf = apr_pstrcat(p, privdir, "/cakey.pem", NULL);
    if (apr_stat(&fi, cert, APR_FINFO_TYPE, p) == APR_SUCCESS
        || (!o->pkcs11 && apr_stat(&fi, keyf, APR_FINFO_TYPE, p)
                              == APR_SUCCESS)) {
        fprintf(stderr, "certauth-admin: %s already holds a CA; not "
                "overwriting it\n", o->dir);
        return 1;
    }
    if (apr_dir_make_recursive(o->dir, APR_FPROT_OS_DEFAULT, p)
        != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: cannot create %s: %s\n", o->dir,
                strerror(errno));
        return 1;
    }
    if (o->subject) {
        if (ca_name_parse(p, o->subject, &name, &err) != APR_SUCCESS) {
            fprintf(stderr, "certauth-admin: --subject: %s\n", err);
            return 2;
        }
    }
    else {
        name = X509_get_subject_name(old->cert);
    }
    /* the new key: in a token, or a file (0600) */
    if (o->pkcs11) {
        const char *pin = NULL;
        if (!ca_pkcs11_is_uri(o->pkcs11)) {
            return usage("--pkcs11 needs a PKCS#11 URI");
        }
        if (admin_pkcs11_keygen(p, o->pkcs11, o->new_pass, o->key_type,
                                &created, &err) != APR_SUCCESS) {
            fprintf(stderr, "certauth-admin: %s: %s\n", o->pkcs11, err);
            return 1;
        }
        apr_pool_create(&kp, p);
        if ((o->new_pass
             && !(pin = ca_secret_get(kp, o->new_pass, o->pkcs11, &err)))
            || ca_pkcs11_load_key(kp, o->pkcs11, pin, &key, &err)
                   != APR_SUCCESS) {
            fprintf(stderr, "certauth-admin: %s\n", err);
            apr_pool_destroy(kp);
            return 1;
        }
        if (!created) {
            fprintf(stderr, "certauth-admin: note: %s was in the token "
                    "already; using it\n", o->pkcs11);
        }
    }
    else {
        BIO *bio;
        char *data;
        long len;

        if (ca_key_generate(p, o->key_type, &key, &err) != APR_SUCCESS) {
            fprintf(stderr, "certauth-admin: %s\n", err);
            return 1;
        }
        if (mkdir(privdir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "certauth-admin: cannot create %s: %s\n",
                    privdir, strerror(errno));
            return 1;
        }
        bio = BIO_new(BIO_s_mem());
        if (!bio || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
                                              NULL)) {
            BIO_free(bio);
            fprintf(stderr, "certauth-admin: cannot encode the key\n");
            return 1;
        }
        len = BIO_get_mem_data(bio, &data);
        rv = ca_file_write_atomic(p, keyf, data, (apr_size_t)len, 0600);
        OPENSSL_cleanse(data, (size_t)len);
        BIO_free(bio);
        if (rv != APR_SUCCESS) {
            fprintf(stderr, "certauth-admin: cannot write %s\n", keyf);
            return 1;
        }
    }
    old_na = ca_asn1_time_to_epoch(X509_get0_notAfter(old->cert));
    if (ca_cert_make(p, name, key, NULL, key, 0, days, &newca, &err)
            != APR_SUCCESS
        || ca_cert_make(p, name, key, old->cert, old->key, old_na, 0, &nwo,
                        &err) != APR_SUCCESS
        || ca_cert_make(p, X509_get_subject_name(old->cert), old->key,
                        newca, key, old_na, 0, &own, &err) != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: %s\n", err);
        if (kp) {
            apr_pool_destroy(kp);
        }
        return 1;
    }
    /* a CA that came from a rollover itself: the generations before it
     * (its directory's rollover.conf) are carried over, and the new CA
     * certifies each one's key too (OldWithNew straight to the new CA:
     * OpenSSL does not go back when it builds a path through links that
     * all bear the same name), each in a file of its own,
     * NEWDIR/link-KEYID.pem, removed with that generation's lines */
    earlier = earlier_generations(p, o->ca_cert, &earlier_links,
                                  earlier_certs);
    pem = apr_pstrcat(p, ca_x509_pem(p, nwo), ca_x509_pem(p, own), NULL);
    for (i = 0; i < earlier_certs->nelts; i++) {
        const char *f = APR_ARRAY_IDX(earlier_certs, i, const char *);
        X509 *x, *l;
        BIO *bio = BIO_new_file(f, "r");
        x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (!x) {
            fprintf(stderr, "certauth-admin: cannot read %s (named by the "
                    "old CA's rollover.conf)\n", f);
            if (kp) {
                apr_pool_destroy(kp);
            }
            return 1;
        }
        ca_pool_x509(p, x);
        if (ca_cert_make(p, X509_get_subject_name(x), X509_get0_pubkey(x),
                         newca, key,
                         ca_asn1_time_to_epoch(X509_get0_notAfter(x)), 0,
                         &l, &err) != APR_SUCCESS) {
            fprintf(stderr, "certauth-admin: %s\n", err);
            if (kp) {
                apr_pool_destroy(kp);
            }
            return 1;
        }
        {
            const char *lf = apr_pstrcat(p, o->dir, "/link-",
                                         ca_cert_key_id(p, x), ".pem", NULL);
            const char *lp = ca_x509_pem(p, l);
            if (ca_file_write_atomic(p, lf, lp, strlen(lp), 0644)
                != APR_SUCCESS) {
                fprintf(stderr, "certauth-admin: cannot write %s\n", lf);
                if (kp) {
                    apr_pool_destroy(kp);
                }
                return 1;
            }
            direct = apr_pstrcat(p, direct, "# the CA of ", f,
                                 " certified by the new CA: remove with its "
                                 "lines\nCertAuthCALinkCertificates ", lf,
                                 "\n", NULL);
        }
    }
    {
        const char *lpem = pem;
        pem = ca_x509_pem(p, newca);
        if (ca_file_write_atomic(p, cert, pem, strlen(pem), 0644)
                != APR_SUCCESS
            || ca_file_write_atomic(p, prev, old->cert_pem,
                                    strlen(old->cert_pem), 0644)
                   != APR_SUCCESS
            || ca_file_write_atomic(p, links, lpem, strlen(lpem), 0644)
                   != APR_SUCCESS) {
            fprintf(stderr, "certauth-admin: cannot write the certificates "
                    "in %s\n", o->dir);
            if (kp) {
                apr_pool_destroy(kp);
            }
            return 1;
        }
    }
    if (kp) {
        apr_pool_destroy(kp);
    }
    /* the previous CA first, then the earlier ones: the Nth key line is
     * the key of the Nth certificate line; the links of earlier
     * rollovers before the new ones (the order cacert.pem gives them in,
     * which path builders try first) */
    conf = apr_psprintf(p, "CertAuthCACertificateFile %s\n"
                        "CertAuthCAKeyFile %s\n"
                        "CertAuthPreviousCACertificateFile %s\n"
                        "CertAuthPreviousCAKeyFile %s%s%s\n%s%s"
                        "CertAuthCALinkCertificates %s\n%s",
                        cert, o->pkcs11 ? o->pkcs11 : keyf, prev, o->ca_key,
                        o->pass ? " " : "", o->pass ? o->pass : "", earlier,
                        earlier_links, links, direct);
    if (ca_file_write_atomic(p, apr_pstrcat(p, o->dir, "/rollover.conf",
                                            NULL),
                             conf, strlen(conf), 0644) != APR_SUCCESS) {
        fprintf(stderr, "certauth-admin: cannot write %s/rollover.conf\n",
                o->dir);
        return 1;
    }
    printf("new CA certificate:  %s\nnew CA key:          %s\n"
           "link certificates:   %s (NewWithOld, OldWithNew)\n"
           "previous CA:         %s\n"
           "valid until:         %s (links: %s)\n\n"
           "In the virtual host (the old lines replaced; also in "
           "%s/rollover.conf):\n",
           cert, o->pkcs11 ? o->pkcs11 : keyf, links, prev,
           iso_time(p, ca_asn1_time_to_epoch(X509_get0_notAfter(newca))),
           iso_time(p, old_na), o->dir);
    {
        char *c = apr_pstrdup(p, conf), *line, *last = NULL;
        for (line = apr_strtok(c, "\n", &last); line;
             line = apr_strtok(NULL, "\n", &last)) {
            printf("    %s\n", line);
        }
    }
    printf("    SSLCACertificateFile: %s, %s%s\n", cert, prev,
           *earlier ? " and the earlier previous CAs" : "");
    return 0;
}

int main(int argc, char **argv)
{
    apr_pool_t *p;
    opts_t o;
    int rc;

    if (argc < 2) {
        return usage(NULL);
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")
        || !strcmp(argv[1], "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&p, NULL);
    if ((rc = parse_opts(p, argc, argv, &o))) {
        return rc;
    }
    ca_log_set(ca_log_tool_sink, (void *)"certauth-admin", CA_LOG_WARN);

    if (!strcmp(argv[1], "init")) {
        rc = cmd_init(p, &o);
    }
    else if (!strcmp(argv[1], "migrate")) {
        ca_store_t *st;
        rc = open_db(p, &o, &st);
        if (!rc) {
            printf("schema version %d\n", ca_store_schema_version());
        }
    }
    else if (!strcmp(argv[1], "list")) {
        rc = cmd_list(p, &o);
    }
    else if (!strcmp(argv[1], "show")) {
        rc = cmd_show(p, &o);
    }
    else if (!strcmp(argv[1], "revoke")) {
        rc = cmd_revoke(p, &o);
    }
    else if (!strcmp(argv[1], "gencrl")) {
        rc = cmd_gencrl(p, &o);
    }
    else if (!strcmp(argv[1], "import")) {
        rc = cmd_import(p, &o);
    }
    else if (!strcmp(argv[1], "rollover")) {
        rc = cmd_rollover(p, &o);
    }
    else {
        rc = usage(apr_psprintf(p, "unknown command '%s'", argv[1]));
    }
    apr_pool_destroy(p);
    return rc;
}
