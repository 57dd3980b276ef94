/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* certauth-admin: the operator's tool on the same CA files and database.
 *   certauth-admin init --dir DIR [--key-type T] [--days N] [--subject S]
 *   certauth-admin migrate --db DRIVER:PARAMS
 *   certauth-admin list --db DRIVER:PARAMS [--owner NAME] [--limit N]
 *   certauth-admin show --db DRIVER:PARAMS SERIAL
 *   certauth-admin revoke --db DRIVER:PARAMS SERIAL [--reason NAME]
 *   certauth-admin gencrl --db DRIVER:PARAMS --ca-cert F --ca-key F
 *                         [--days 7] [--out crl.pem]
 * Exit status: 0 success, 1 failure, 2 usage error. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "ca_ca.h"
#include "ca_crl.h"
#include "ca_log.h"
#include "ca_lifecycle.h"
#include "ca_store.h"
#include "ca_util.h"

static const char usage_text[] =
    "usage: certauth-admin COMMAND [options]\n"
    "  init --dir DIR [--key-type ec|ec:P-384|rsa|rsa:BITS|ed25519]\n"
    "       [--days 3650] [--subject \"CN=Example Root CA,O=Example\"]\n"
    "       create a root CA: DIR/cacert.pem and DIR/private/cakey.pem (0600)\n"
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
    "  gencrl --db DB --ca-cert cacert.pem --ca-key cakey.pem [--days 7]\n"
    "         [--retention-days 90] [--pass file:/path] [--out crl.pem]\n"
    "       make a new CRL now (stored in the database, and PEM to --out)\n";

static int usage(const char *msg)
{
    if (msg) {
        fprintf(stderr, "certauth-admin: %s\n", msg);
    }
    fputs(usage_text, stderr);
    return 2;
}

static void log_stderr(void *baton, const char *file, int line,
                       ca_log_level_t level, apr_status_t rv, const char *msg)
{
    (void)baton;
    (void)file;
    (void)line;
    (void)rv;
    if (level <= CA_LOG_WARN) {
        fprintf(stderr, "certauth-admin: %s\n", msg);
    }
}

/* Options: --name value pairs after the command; positional arguments are
 * collected in order. */
typedef struct {
    const char *dir, *key_type, *subject, *db, *owner, *reason, *ca_cert,
        *ca_key, *pass, *out;
    int days, limit, offset, retention;
    const char *pos[4];
    int npos;
} opts_t;

static int parse_opts(int argc, char **argv, opts_t *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->limit = 100;
    o->retention = 90;
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;

        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (strncmp(a, "--", 2)) {
            if (o->npos >= 4) {
                return usage("too many arguments");
            }
            o->pos[o->npos++] = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "certauth-admin: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--dir")) o->dir = v;
        else if (!strcmp(a, "--key-type")) o->key_type = v;
        else if (!strcmp(a, "--subject")) o->subject = v;
        else if (!strcmp(a, "--db")) o->db = v;
        else if (!strcmp(a, "--owner")) o->owner = v;
        else if (!strcmp(a, "--reason")) o->reason = v;
        else if (!strcmp(a, "--ca-cert")) o->ca_cert = v;
        else if (!strcmp(a, "--ca-key")) o->ca_key = v;
        else if (!strcmp(a, "--pass")) o->pass = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--days") || !strcmp(a, "--limit")
                 || !strcmp(a, "--offset") || !strcmp(a, "--retention-days")) {
            long n = strtol(v, &end, 10);
            if (*end || !*v || n < 0 || n > 100000) {
                fprintf(stderr, "certauth-admin: %s: bad number '%s'\n", a, v);
                return 2;
            }
            if (!strcmp(a, "--days")) o->days = (int)n;
            else if (!strcmp(a, "--limit")) o->limit = (int)n;
            else if (!strcmp(a, "--retention-days")) o->retention = (int)n;
            else o->offset = (int)n;
        }
        else {
            fprintf(stderr, "certauth-admin: unknown option %s\n", a);
            return usage(NULL);
        }
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

static int cmd_init(apr_pool_t *p, const opts_t *o)
{
    ca_init_opts_t io;
    const char *cert, *key, *privdir, *err = NULL;
    ca_t *ca;

    if (!o->dir) {
        return usage("init needs --dir DIR");
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

static void audit(ca_store_t *st, apr_pool_t *p, const char *action,
                  const char *serial, const char *detail)
{
    ca_audit_t a;
    const char *user = getenv("SUDO_USER") ? getenv("SUDO_USER")
                                           : getenv("USER");
    memset(&a, 0, sizeof(a));
    a.at = (apr_int64_t)apr_time_sec(apr_time_now());
    a.actor = user ? user : "-";
    a.auth = "cli";
    a.client = "certauth-admin";
    a.action = action;
    a.serial = serial;
    a.outcome = "ok";
    a.detail = detail;
    if (ca_store_audit_add(st, p, &a) != APR_SUCCESS) {
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
    if ((rc = parse_opts(argc, argv, &o))) {
        return rc;
    }
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&p, NULL);
    ca_log_set(log_stderr, NULL, CA_LOG_WARN);

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
    else {
        rc = usage(apr_psprintf(p, "unknown command '%s'", argv[1]));
    }
    apr_pool_destroy(p);
    return rc;
}
