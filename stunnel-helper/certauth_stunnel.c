/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* certauth-stunnel: key-cert.pem files for stunnel, enrolled and renewed
 * over EST (RFC 7030), written safely, with a reload of stunnel.
 *   certauth-stunnel enroll    --url URL --ca F --user NAME --cn NAME --out F
 *   certauth-stunnel renew     --url URL --ca F --in F
 *   certauth-stunnel check     --in F [--ca F] [--warn-days 30]
 *   certauth-stunnel combine   --key F --cert F --out F
 *   certauth-stunnel split-p12 --in F.p12 --out-dir DIR [--nodes]
 * See usage_text below and certauth-stunnel(1) for the exit codes. */

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

static const char usage_text[] =
    "usage: " PROG " COMMAND [options]\n"
    "\n"
    "  enroll --url URL --ca cacert.pem --user NAME [--password-file F]\n"
    "         (--cn NAME | --subject DN) [--san DNS:name,IP:addr]...\n"
    "         [--profile LABEL] [--key-type ec|ec:P-384|rsa:3072|ed25519]\n"
    "         [--chain intermediates|full|none] --out key-cert.pem\n"
    "         [--force] [--backup] [--reload CMD | --pidfile F]\n"
    "      new key (EC P-256 by default) and CSR, EST simpleenroll with the\n"
    "      login; writes the key, the certificate and the chain to --out\n"
    "  renew --url URL --ca cacert.pem --in key-cert.pem [--out F]\n"
    "        [--if-expires-within 30d|12h] [--force] [--rekey | --same-key]\n"
    "        [--key-type T] [--profile LABEL] [--chain MODE] [--backup]\n"
    "        [--reload 'systemctl reload stunnel4' | --pidfile F]\n"
    "      EST simplereenroll with the certificate itself; by default once\n"
    "      two thirds of its lifetime have passed; exit 0 when not due\n"
    "  check --in key-cert.pem [--ca cacert.pem] [--warn-days 30]\n"
    "      subject, issuer, serial, dates; key matches; chain verifies\n"
    "  combine --key key.pem --cert cert.pem [--chain-file chain.pem]\n"
    "          --out key-cert.pem [--force] [--backup] [--password-file F]\n"
    "          [--reload CMD | --pidfile F]\n"
    "      `cat key.pem cert.pem`, validated and written safely\n"
    "  split-p12 --in mycert.p12 --out-dir ~/.globus [--nodes]\n"
    "            [--password-file F] [--new-password-file F] [--force]\n"
    "            [--backup]\n"
    "      usercert.pem (0644) and userkey.pem (0600, encrypted unless\n"
    "      --nodes)\n"
    "\n"
    "Common: --timeout SECONDS (60; also the longest wait for another\n"
    "run's lock on the file), -v/--verbose (twice: libcurl's trace),\n"
    "-q/--quiet, -h/--help, --version.\n"
    "Passwords never come from the command line: --password-file (first\n"
    "line), the environment variable CERTAUTH_PASSWORD, or a prompt on the\n"
    "terminal (split-p12's new pass phrase: --new-password-file,\n"
    "CERTAUTH_NEW_PASSWORD, or the terminal).  Files are written mode 0600\n"
    "(usercert.pem 0644), keeping the previous file's owner and group,\n"
    "through a temporary file in the same directory that is fsynced and\n"
    "renamed; --backup keeps the previous file as FILE.bak.  enroll, renew\n"
    "and combine lock .FILE.lock next to the file: one run at a time.\n"
    "\n"
    "Exit codes:\n"
    "  0  done; renew: also when renewal is not due; check: valid\n"
    "  1  check: expires within --warn-days\n"
    "  2  check: invalid (unreadable, corrupt, expired, key mismatch,\n"
    "     chain does not verify)\n"
    "  3  usage: bad options, or no password source\n"
    "  4  cannot reach the CA (name, connection, TLS, timeout, HTTP 5xx,\n"
    "     not an EST answer); the old file is untouched\n"
    "  5  refused by the CA (wrong password, not allowed, certificate\n"
    "     revoked, expired or superseded: enroll again); old file untouched\n"
    "  6  local problem (file unreadable or corrupt, directory not\n"
    "     writable, disk full, existing file without --force, wrong import\n"
    "     password, another run held the lock on the file for --timeout\n"
    "     seconds); the old file is untouched\n"
    "  7  the file was replaced but the reload command or signal failed\n"
    "     (--pidfile: the process is not running or is not stunnel)\n"
    "  8  the CA holds the request for an administrator's approval\n";

/* ------------------------------------------------------------------ options */

enum {
    C_ENROLL = 1, C_RENEW = 2, C_CHECK = 4, C_COMBINE = 8, C_SPLIT = 16,
    C_ALL = 31
};

enum {
    O_URL, O_CA, O_USER, O_PASSFILE, O_NEWPASSFILE, O_CN, O_SUBJECT, O_SAN,
    O_PROFILE, O_KEYTYPE, O_CHAIN, O_OUT, O_IN, O_KEY, O_CERT, O_CHAINFILE,
    O_OUTDIR, O_FORCE, O_BACKUP, O_RELOAD, O_PIDFILE, O_WITHIN, O_REKEY,
    O_SAMEKEY, O_WARNDAYS, O_NODES, O_TIMEOUT, O_VERBOSE, O_QUIET
};

typedef struct {
    const char *name;
    int id;
    int has_arg;
    int cmds;
} optdef_t;

static const optdef_t optdefs[] = {
    {"--url", O_URL, 1, C_ENROLL | C_RENEW},
    {"--ca", O_CA, 1, C_ENROLL | C_RENEW | C_CHECK},
    {"--user", O_USER, 1, C_ENROLL},
    {"--password-file", O_PASSFILE, 1, C_ENROLL | C_COMBINE | C_SPLIT},
    {"--new-password-file", O_NEWPASSFILE, 1, C_SPLIT},
    {"--cn", O_CN, 1, C_ENROLL},
    {"--subject", O_SUBJECT, 1, C_ENROLL},
    {"--san", O_SAN, 1, C_ENROLL},
    {"--profile", O_PROFILE, 1, C_ENROLL | C_RENEW},
    {"--key-type", O_KEYTYPE, 1, C_ENROLL | C_RENEW},
    {"--chain", O_CHAIN, 1, C_ENROLL | C_RENEW},
    {"--out", O_OUT, 1, C_ENROLL | C_RENEW | C_COMBINE},
    {"--in", O_IN, 1, C_RENEW | C_CHECK | C_SPLIT},
    {"--key", O_KEY, 1, C_COMBINE},
    {"--cert", O_CERT, 1, C_COMBINE},
    {"--chain-file", O_CHAINFILE, 1, C_COMBINE},
    {"--out-dir", O_OUTDIR, 1, C_SPLIT},
    {"--force", O_FORCE, 0, C_ENROLL | C_RENEW | C_COMBINE | C_SPLIT},
    {"--backup", O_BACKUP, 0, C_ENROLL | C_RENEW | C_COMBINE | C_SPLIT},
    {"--reload", O_RELOAD, 1, C_ENROLL | C_RENEW | C_COMBINE},
    {"--pidfile", O_PIDFILE, 1, C_ENROLL | C_RENEW | C_COMBINE},
    {"--if-expires-within", O_WITHIN, 1, C_RENEW},
    {"--rekey", O_REKEY, 0, C_RENEW},
    {"--same-key", O_SAMEKEY, 0, C_RENEW},
    {"--warn-days", O_WARNDAYS, 1, C_CHECK},
    {"--nodes", O_NODES, 0, C_SPLIT},
    {"--timeout", O_TIMEOUT, 1, C_ENROLL | C_RENEW | C_COMBINE},
    {"--verbose", O_VERBOSE, 0, C_ALL},
    {"-v", O_VERBOSE, 0, C_ALL},
    {"--quiet", O_QUIET, 0, C_ALL},
    {"-q", O_QUIET, 0, C_ALL},
    {NULL, 0, 0, 0}
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

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(" PROG " --help shows the usage)\n");
    return CS_USAGE;
}

static int parse_opts(apr_pool_t *p, int argc, char **argv, opts_t *o)
{
    static const struct {
        const char *name;
        int cmd;
    } cmds[] = {{"enroll", C_ENROLL}, {"renew", C_RENEW}, {"check", C_CHECK},
                {"combine", C_COMBINE}, {"split-p12", C_SPLIT}, {NULL, 0}};
    int i, j;

    memset(o, 0, sizeof(*o));
    o->sans = apr_array_make(p, 4, sizeof(const char *));
    o->warn_days = 30;
    o->timeout = 60;
    for (j = 0; cmds[j].name; j++) {
        if (!strcmp(argv[1], cmds[j].name)) {
            o->cmd = cmds[j].cmd;
            o->cmdname = cmds[j].name;
        }
    }
    if (!o->cmd) {
        return usage("unknown command '%s'", argv[1]);
    }
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '='), *v = NULL;
        const optdef_t *d = NULL;
        apr_size_t n = eq && !strncmp(a, "--", 2) ? (apr_size_t)(eq - a)
                                                  : strlen(a);
        char *end;
        long l;

        for (j = 0; optdefs[j].name; j++) {
            if (strlen(optdefs[j].name) == n
                && !strncmp(a, optdefs[j].name, n)) {
                d = &optdefs[j];
                break;
            }
        }
        if (!d) {
            return usage("unknown option '%s'", a);
        }
        if (!(d->cmds & o->cmd)) {
            return usage(apr_psprintf(p, "%%s is not an option of %s",
                                      o->cmdname), d->name);
        }
        if (d->has_arg) {
            if (eq && a[n] == '=') {
                v = eq + 1;
            }
            else if (i + 1 < argc) {
                v = argv[++i];
            }
            else {
                return usage("%s needs a value", d->name);
            }
        }
        else if (a[n] == '=') {
            return usage("%s takes no value", d->name);
        }
        switch (d->id) {
        case O_URL: o->url = v; break;
        case O_CA: o->ca = v; break;
        case O_USER: o->user = v; break;
        case O_PASSFILE: o->passfile = v; break;
        case O_NEWPASSFILE: o->newpassfile = v; break;
        case O_CN: o->cn = v; break;
        case O_SUBJECT: o->subject = v; break;
        case O_SAN: APR_ARRAY_PUSH(o->sans, const char *) = v; break;
        case O_PROFILE: o->profile = v; break;
        case O_KEYTYPE: o->key_type = v; break;
        case O_CHAIN:
            if (strcmp(v, "none") && strcmp(v, "intermediates")
                && strcmp(v, "full")) {
                return usage("--chain must be none, intermediates or full, "
                             "not '%s'", v);
            }
            o->chain = v;
            break;
        case O_OUT: o->out = v; break;
        case O_IN: o->in = v; break;
        case O_KEY: o->key = v; break;
        case O_CERT: o->cert = v; break;
        case O_CHAINFILE: o->chain_file = v; break;
        case O_OUTDIR: o->out_dir = v; break;
        case O_FORCE: o->force = 1; break;
        case O_BACKUP: o->backup = 1; break;
        case O_RELOAD: o->reload = v; break;
        case O_PIDFILE: o->pidfile = v; break;
        case O_WITHIN:
            if (kc_parse_duration(v, &o->within) != APR_SUCCESS) {
                return usage("--if-expires-within: '%s' is not a duration "
                             "(e.g. 30d, 12h)", v);
            }
            o->within_set = 1;
            break;
        case O_REKEY: o->rekey = 1; break;
        case O_SAMEKEY: o->same_key = 1; break;
        case O_WARNDAYS:
        case O_TIMEOUT:
            l = strtol(v, &end, 10);
            if (!*v || *end || l < 0 || l > 36500
                || (d->id == O_TIMEOUT && l == 0)) {
                return usage("%s needs a positive number", d->name);
            }
            if (d->id == O_WARNDAYS) {
                o->warn_days = (int)l;
            }
            else {
                o->timeout = (int)l;
            }
            break;
        case O_NODES: o->nodes = 1; break;
        case O_VERBOSE: o->verbose++; break;
        case O_QUIET: o->quiet = 1; break;
        }
    }
    if (o->rekey && o->same_key) {
        return usage("%s", "--rekey and --same-key exclude each other");
    }
    if (o->same_key && o->key_type) {
        return usage("%s", "--key-type makes a new key: not with --same-key");
    }
    if (o->reload && o->pidfile) {
        return usage("%s", "--reload and --pidfile exclude each other");
    }
    if (o->cn && o->subject) {
        return usage("%s", "--cn and --subject exclude each other");
    }
    return 0;
}

#define REQUIRE(o, field, name)                                          \
    do {                                                                 \
        if (!(o)->field || !*(o)->field) {                               \
            return usage("%s is required", name);                        \
        }                                                                \
    } while (0)

/* ------------------------------------------------------------------ output */

static int fail(int code, const char *msg)
{
    fprintf(stderr, PROG ": %s\n", msg);
    return code;
}

static void note(const opts_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(const opts_t *o, const char *fmt, ...)
{
    va_list ap;
    if (!o->verbose) {
        return;
    }
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void log_stderr(void *baton, const char *file, int line,
                       ca_log_level_t level, apr_status_t rv, const char *msg)
{
    (void)baton;
    (void)file;
    (void)line;
    (void)rv;
    if (level <= CA_LOG_WARN) {
        fprintf(stderr, PROG ": %s\n", msg);
    }
}

static int est_exit(est_rc_t rc)
{
    switch (rc) {
    case EST_OK: return CS_OK;
    case EST_UNREACHABLE: return CS_UNREACHABLE;
    case EST_REFUSED: return CS_REFUSED;
    case EST_PENDING: return CS_PENDING;
    case EST_LOCAL: return CS_LOCAL;
    case EST_PROTOCOL: return CS_UNREACHABLE;
    }
    return CS_UNREACHABLE;
}

/* ------------------------------------------------------------------ secrets */

/* The first line of a file. */
static char *secret_from_file(apr_pool_t *p, const char *path,
                              const char **err)
{
    char *data = NULL, *out;
    apr_size_t len = 0, n = 0;
    apr_status_t rv;
    char buf[120];

    rv = ca_file_read(p, path, 65536, &data, &len);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "%s: cannot read: %s", path,
                            apr_strerror(rv, buf, sizeof(buf)));
        return NULL;
    }
    while (n < len && data[n] != '\n' && data[n] != '\r') {
        n++;
    }
    out = kc_secret_alloc(p, n + 1);
    memcpy(out, data, n);
    out[n] = '\0';
    OPENSSL_cleanse(data, len);
    if (!n) {
        *err = apr_psprintf(p, "%s: the first line is empty", path);
        return NULL;
    }
    return out;
}

static struct termios saved_tty;
static int tty_fd = -1;

static void restore_tty(int sig)
{
    if (tty_fd >= 0) {
        tcsetattr(tty_fd, TCSAFLUSH, &saved_tty);
        (void)!write(tty_fd, "\n", 1);
    }
    if (sig) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
}

/* A line typed on the terminal without echo; NULL without a terminal. */
static char *secret_from_tty(apr_pool_t *p, const char *prompt)
{
    struct termios t;
    char *out = kc_secret_alloc(p, 1024);
    apr_size_t n = 0;
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    void (*oldint)(int), (*oldterm)(int);

    if (fd < 0) {
        return NULL;
    }
    if (tcgetattr(fd, &saved_tty) != 0) {
        close(fd);
        return NULL;
    }
    t = saved_tty;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    tty_fd = fd;
    oldint = signal(SIGINT, restore_tty);
    oldterm = signal(SIGTERM, restore_tty);
    tcsetattr(fd, TCSAFLUSH, &t);
    (void)!write(fd, prompt, strlen(prompt));
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0 || ch == '\n' || ch == '\r') {
            break;
        }
        if (n + 1 < 1024) {
            out[n++] = ch;
        }
    }
    out[n] = '\0';
    restore_tty(0);
    tty_fd = -1;
    signal(SIGINT, oldint);
    signal(SIGTERM, oldterm);
    close(fd);
    return out;
}

/* A secret: the first line of file, the environment variable env_name,
 * or a line typed on the terminal after prompt (and again after `again`
 * when that is not NULL).  NULL with *code and *err when there is none
 * (*err: `none` when there is no source at all). */
static const char *get_secret(apr_pool_t *p, const char *file,
                              const char *env_name, const char *prompt,
                              const char *again, const char *none, int *code,
                              const char **err)
{
    const char *env = getenv(env_name);
    char *pw, *pw2;

    if (file) {
        if (!(pw = secret_from_file(p, file, err))) {
            *code = CS_LOCAL;
        }
        return pw;
    }
    if (env) {
        pw = kc_secret_alloc(p, strlen(env) + 1);
        strcpy(pw, env);
        return pw;
    }
    if (!(pw = secret_from_tty(p, prompt))) {
        *code = CS_USAGE;
        *err = none;
        return NULL;
    }
    if (again && (!(pw2 = secret_from_tty(p, again)) || strcmp(pw, pw2))) {
        *code = CS_USAGE;
        *err = "the pass phrases differ";
        return NULL;
    }
    return pw;
}

/* A password: --password-file, CERTAUTH_PASSWORD, or the terminal. */
static const char *get_password(apr_pool_t *p, const opts_t *o,
                                const char *prompt, int *code,
                                const char **err)
{
    return get_secret(p, o->passfile, "CERTAUTH_PASSWORD", prompt, NULL,
                      "no password: give --password-file FILE, set "
                      "CERTAUTH_PASSWORD, or run on a terminal",
                      code, err);
}

/* ------------------------------------------------------------------ helpers */

static apr_status_t name_cleanup(void *d)
{
    X509_NAME_free(d);
    return APR_SUCCESS;
}

static apr_status_t p12_cleanup(void *d)
{
    PKCS12_free(d);
    return APR_SUCCESS;
}

static apr_int64_t now_sec(void)
{
    return (apr_int64_t)time(NULL);
}

static const char *left_str(apr_pool_t *p, apr_int64_t secs)
{
    if (secs < 0) {
        return "expired";
    }
    if (secs < 2 * 86400) {
        return apr_psprintf(p, "in %" APR_INT64_T_FMT " hours", secs / 3600);
    }
    return apr_psprintf(p, "in %" APR_INT64_T_FMT " days", secs / 86400);
}

/* 0 no file; 1 a valid key-cert file (key matches, currently valid);
 * 2 a readable one whose certificate expired or is not yet valid (may be
 * replaced); 3 anything else: unreadable, corrupt, a key that does not
 * match or cannot be checked (encrypted). */
static int existing_state(apr_pool_t *p, const char *path, const char **what)
{
    struct stat st;
    kc_bundle_t *b = NULL;
    const char *err = NULL;
    apr_status_t rv;
    apr_int64_t now = now_sec();

    *what = "";
    if (stat(path, &st) != 0) {
        return 0;
    }
    rv = kc_load(p, path, NULL, 1, &b, &err);
    if (rv == APR_SUCCESS) {
        apr_int64_t nb = ca_asn1_time_to_epoch(X509_get0_notBefore(b->cert));
        apr_int64_t na = ca_asn1_time_to_epoch(X509_get0_notAfter(b->cert));
        *what = apr_psprintf(p, "%s, serial %s, expires %s",
                             kc_name_oneline(p, X509_get_subject_name(b->cert)),
                             ca_serial_hex(p, X509_get0_serialNumber(b->cert)),
                             kc_time_str(p, X509_get0_notAfter(b->cert)));
        return nb <= now && now <= na ? 1 : 2;
    }
    /* unreadable, corrupt, or a key that cannot be checked (encrypted):
     * nothing says it is dead, so it is kept unless --force */
    *what = err;
    return 3;
}

static int refuse_existing(apr_pool_t *p, const opts_t *o, const char *path)
{
    const char *what;
    int st;

    if (o->force) {
        return 0;
    }
    st = existing_state(p, path, &what);
    if (st == 1) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s already holds a valid "
                                           "certificate (%s); use renew, or "
                                           "--force to replace it", path,
                                           what));
    }
    if (st == 3) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s exists and cannot be "
                                           "read as a key-cert file (%s); "
                                           "use --force to replace it", path,
                                           what));
    }
    return 0;
}

static X509_STORE *store_from(apr_pool_t *p, const char *file,
                              STACK_OF(X509) *trusted, const char **err)
{
    X509_STORE *st = X509_STORE_new();
    int i;

    if (!st) {
        *err = "out of memory";
        return NULL;
    }
    if (file && X509_STORE_load_file(st, file) != 1) {
        *err = apr_psprintf(p, "%s: cannot load the CA certificates: %s",
                            file, ca_log_ssl_errors(p));
        X509_STORE_free(st);
        return NULL;
    }
    for (i = 0; trusted && i < sk_X509_num(trusted); i++) {
        X509_STORE_add_cert(st, sk_X509_value(trusted, i));
    }
    ERR_clear_error();
    return st;
}

static int verify_chain(apr_pool_t *p, X509_STORE *st, X509 *leaf,
                        STACK_OF(X509) *untrusted, unsigned long flags,
                        const char **why)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = 0;

    if (!ctx || !X509_STORE_CTX_init(ctx, st, leaf, untrusted)) {
        *why = "out of memory";
        X509_STORE_CTX_free(ctx);
        return 0;
    }
    if (flags) {
        X509_STORE_CTX_set_flags(ctx, flags);
    }
    ok = X509_verify_cert(ctx) == 1;
    if (!ok) {
        int e = X509_STORE_CTX_get_error(ctx);
        *why = apr_psprintf(p, "%s (depth %d)",
                            X509_verify_cert_error_string(e),
                            X509_STORE_CTX_get_error_depth(ctx));
    }
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* The issued certificate (the one for key) verified against the CA's own
 * certificates from cacerts; *chain the certificates to write after it. */
static int accept_issued(apr_pool_t *p, const opts_t *o, EVP_PKEY *key,
                         STACK_OF(X509) *answer, STACK_OF(X509) *cacerts,
                         X509 **leaf, STACK_OF(X509) **chain,
                         const char **err)
{
    STACK_OF(X509) *roots = ca_pool_x509_stack(p, sk_X509_new_null());
    STACK_OF(X509) *inter = ca_pool_x509_stack(p, sk_X509_new_null());
    const char *mode = o->chain ? o->chain : "intermediates";
    X509_STORE *st;
    const char *why = NULL;
    int i, ok;

    *leaf = NULL;
    *chain = NULL;
    for (i = 0; i < sk_X509_num(answer); i++) {
        if (kc_key_matches(sk_X509_value(answer, i), key)) {
            *leaf = sk_X509_value(answer, i);
            break;
        }
    }
    if (!*leaf) {
        *err = "the CA's answer holds no certificate for the new key";
        return CS_UNREACHABLE;
    }
    if (!roots || !inter) {
        *err = "out of memory";
        return CS_LOCAL;
    }
    for (i = 0; i < sk_X509_num(cacerts); i++) {
        X509 *x = sk_X509_value(cacerts, i);
        if (!X509_add_cert(X509_self_signed(x, 0) == 1 ? roots : inter, x,
                           X509_ADD_FLAG_UP_REF)) {
            *err = "out of memory";
            return CS_LOCAL;
        }
    }
    /* a CA that publishes no root: trust what it publishes */
    st = store_from(p, NULL, sk_X509_num(roots) ? roots : inter, err);
    if (!st) {
        return CS_LOCAL;
    }
    ok = verify_chain(p, st, *leaf, inter,
                      sk_X509_num(roots) ? 0 : X509_V_FLAG_PARTIAL_CHAIN,
                      &why);
    X509_STORE_free(st);
    if (!ok) {
        *err = apr_psprintf(p, "the issued certificate does not verify "
                            "against the CA's cacerts: %s", why);
        return CS_UNREACHABLE;
    }
    if (!strcmp(mode, "none")) {
        *chain = NULL;
    }
    else if (!strcmp(mode, "full")) {
        *chain = cacerts;
    }
    else {
        *chain = inter;
    }
    return CS_OK;
}

/* The name of process pid: /proc/PID/comm, else the last part of
 * /proc/PID/exe; NULL when neither can be read (no /proc: not Linux). */
static const char *proc_name(apr_pool_t *p, long pid, const char **exe)
{
    char path[64], buf[4096];
    const char *comm = NULL;
    ssize_t n;
    FILE *f;

    *exe = NULL;
    snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
    n = readlink(path, buf, sizeof(buf) - 1);
    if (n > 0) {
        buf[n] = '\0';
        *exe = apr_pstrdup(p, strrchr(buf, '/') ? strrchr(buf, '/') + 1
                                                : buf);
    }
    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    if ((f = fopen(path, "re"))) {
        if (fgets(buf, sizeof(buf), f)) {
            buf[strcspn(buf, "\n")] = '\0';
            comm = apr_pstrdup(p, buf);
        }
        fclose(f);
    }
    return comm ? comm : *exe;
}

static int is_stunnel_name(const char *name)
{
    return name && !strncmp(name, "stunnel", 7);
}

/* Reload stunnel: the command through /bin/sh -c, or SIGHUP to the pid
 * (only when that process runs and, where /proc tells, is stunnel). */
static int do_reload(apr_pool_t *p, const opts_t *o)
{
    if (o->reload) {
        pid_t pid;
        int status = 0;

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
            return fail(CS_RELOAD, apr_psprintf(p, "cannot run the reload "
                                                "command: %s",
                                                strerror(errno)));
        }
        if (pid == 0) {
            execl("/bin/sh", "sh", "-c", o->reload, (char *)NULL);
            _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                return fail(CS_RELOAD, "cannot wait for the reload command");
            }
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            return fail(CS_RELOAD, apr_psprintf(
                p, "the file was replaced, but the reload command '%s' "
                   "failed (%s %d)", o->reload,
                WIFEXITED(status) ? "exit status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status)));
        }
        note(o, "reloaded with '%s'", o->reload);
    }
    else if (o->pidfile) {
        char *data = NULL, *end;
        apr_size_t len = 0;
        apr_status_t rv;
        long pid;
        int pfd = -1, sent;
        char buf[120];

        rv = ca_file_read(p, o->pidfile, 64, &data, &len);
        if (rv != APR_SUCCESS) {
            return fail(CS_RELOAD, apr_psprintf(
                p, "the file was replaced, but the pid file %s cannot be "
                   "read: %s", o->pidfile,
                apr_strerror(rv, buf, sizeof(buf))));
        }
        pid = strtol(data, &end, 10);
        while (*end == '\n' || *end == '\r' || *end == ' ') {
            end++;
        }
        if (end == data || *end || pid <= 1) {
            return fail(CS_RELOAD, apr_psprintf(
                p, "the file was replaced, but %s holds no process id",
                o->pidfile));
        }
        /* a pidfd holds on to this very process: when it ends and its
         * number is reused after the checks below, the signal fails rather
         * than reach a process that was not checked */
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
        pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
#endif
        if (pfd < 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            return fail(CS_RELOAD, apr_psprintf(
                p, "the file was replaced, but process %ld (from %s) is not "
                   "running: stunnel was not reloaded", pid, o->pidfile));
        }
        if (access("/proc/self/comm", R_OK) == 0) {
            const char *exe = NULL, *name = proc_name(p, pid, &exe);
            if (!name) {
                if (pfd >= 0) {
                    close(pfd);
                }
                return fail(CS_RELOAD, apr_psprintf(
                    p, "the file was replaced, but process %ld (from %s) "
                       "is not running: stunnel was not reloaded", pid,
                    o->pidfile));
            }
            if (!is_stunnel_name(name) && !is_stunnel_name(exe)) {
                if (pfd >= 0) {
                    close(pfd);
                }
                return fail(CS_RELOAD, apr_psprintf(
                    p, "the file was replaced, but process %ld (from %s) is "
                       "'%s', not stunnel: no SIGHUP sent (a stale pid "
                       "file?)", pid, o->pidfile, exe ? exe : name));
            }
        }
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
        if (pfd >= 0) {
            sent = syscall(SYS_pidfd_send_signal, pfd, SIGHUP, NULL, 0) == 0;
            close(pfd);
        }
        else
#endif
        {
            sent = kill((pid_t)pid, SIGHUP) == 0;
        }
        if (!sent) {
            return fail(CS_RELOAD, apr_psprintf(
                p, "the file was replaced, but SIGHUP to process %ld (from "
                   "%s) failed: %s", pid, o->pidfile, strerror(errno)));
        }
        note(o, "sent SIGHUP to process %ld", pid);
    }
    return CS_OK;
}

static void client_init(const opts_t *o, est_client_t *c)
{
    memset(c, 0, sizeof(*c));
    c->url = o->url;
    c->label = o->profile;
    c->ca_file = o->ca;
    c->timeout = o->timeout;
    c->verbose = o->verbose > 1;
}

static int check_readable(apr_pool_t *p, const char *what, const char *path)
{
    if (path && access(path, R_OK) != 0) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s %s: %s", what, path,
                                           strerror(errno)));
    }
    return 0;
}

/* The lock serialising the runs that replace path (enroll --force, renew,
 * combine --force from a timer and by hand): held from reading the old file
 * to the rename and the reload, i.e. until the process ends.  A second run
 * waits up to --timeout seconds, then gives up with CS_LOCAL. */
static int take_lock(apr_pool_t *p, const opts_t *o, const char *path)
{
    const char *err = NULL;

    if (kc_lock(p, path, o->timeout, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    return 0;
}

/* Key, certificate and chain written to path; prints one line. */
static int write_keycert(apr_pool_t *p, const opts_t *o, kc_out_t *out,
                         const char *path, EVP_PKEY *key, X509 *leaf,
                         STACK_OF(X509) *chain, const char *verb)
{
    char *pem = NULL;
    apr_size_t len = 0;
    const char *err = NULL;

    if (kc_pem(p, key, NULL, leaf, chain, &pem, &len, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    if (kc_out_commit(out, pem, len,
                      o->backup ? apr_pstrcat(p, path, ".bak", NULL) : NULL,
                      &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    if (!o->quiet) {
        printf("%s %s: subject=%s serial=%s notAfter=%s\n", verb, path,
               kc_name_oneline(p, X509_get_subject_name(leaf)),
               ca_serial_hex(p, X509_get0_serialNumber(leaf)),
               kc_time_str(p, X509_get0_notAfter(leaf)));
        fflush(stdout);
    }
    return CS_OK;
}

/* ------------------------------------------------------------------ enroll */

static int cmd_enroll(apr_pool_t *p, const opts_t *o)
{
    est_client_t c;
    est_rc_t erc;
    X509_NAME *subject = NULL;
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    STACK_OF(X509) *cacerts = NULL, *answer = NULL, *chain = NULL;
    X509 *leaf = NULL;
    kc_out_t *out = NULL;
    const char *err = NULL, *pw, *sans = NULL;
    int code = 0, i;

    REQUIRE(o, url, "--url");
    REQUIRE(o, user, "--user");
    REQUIRE(o, out, "--out");
    if (!o->cn && !o->subject) {
        return usage("%s", "--cn NAME (or --subject DN) is required");
    }
    if ((code = check_readable(p, "--ca", o->ca))
        || (code = take_lock(p, o, o->out))
        || (code = refuse_existing(p, o, o->out))) {
        return code;
    }
    if (o->subject) {
        if (ca_name_parse(p, o->subject, &subject, &err) != APR_SUCCESS) {
            return usage("--subject: %s", err);
        }
    }
    else {
        subject = X509_NAME_new();
        if (!subject
            || !X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                           (const unsigned char *)o->cn, -1,
                                           -1, 0)) {
            X509_NAME_free(subject);
            ERR_clear_error();
            return usage("--cn '%s' cannot be a common name", o->cn);
        }
        apr_pool_cleanup_register(p, subject, name_cleanup,
                                  apr_pool_cleanup_null);
    }
    for (i = 0; i < o->sans->nelts; i++) {
        const char *s = APR_ARRAY_IDX(o->sans, i, const char *);
        sans = sans ? apr_pstrcat(p, sans, ",", s, NULL) : s;
    }
    if (!(pw = get_password(p, o, apr_psprintf(p, "Password for %s: ",
                                               o->user), &code, &err))) {
        return fail(code, err);
    }
    if (ca_key_generate(p, o->key_type ? o->key_type : "ec", &key, &err)
        != APR_SUCCESS) {
        return usage("--key-type: %s", err);
    }
    if (kc_make_csr(p, key, subject, NULL, sans, &req, &err)
        != APR_SUCCESS) {
        return fail(CS_USAGE, err);
    }
    /* an unwritable directory or a full disk shows now, before the CA is
     * asked */
    if (kc_out_open(p, o->out, 0600, &out, &err) != APR_SUCCESS
        || kc_out_reserve(out, KC_RESERVE, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    client_init(o, &c);
    /* cacerts is public: the password goes to simpleenroll only */
    note(o, "asking %s", est_op_url(p, &c, "cacerts"));
    if ((erc = est_cacerts(p, &c, &cacerts, &err)) != EST_OK) {
        return fail(est_exit(erc), err);
    }
    c.user = o->user;
    c.password = pw;
    note(o, "asking %s", est_op_url(p, &c, "simpleenroll"));
    if ((erc = est_enroll(p, &c, 0, req, &answer, &err)) != EST_OK) {
        return fail(est_exit(erc), err);
    }
    if ((code = accept_issued(p, o, key, answer, cacerts, &leaf, &chain,
                              &err))) {
        return fail(code, err);
    }
    if ((code = write_keycert(p, o, out, o->out, key, leaf, chain,
                              "enrolled"))) {
        return code;
    }
    return do_reload(p, o);
}

/* ------------------------------------------------------------------ renew */

static int cmd_renew(apr_pool_t *p, const opts_t *o)
{
    const char *path = o->out ? o->out : o->in;
    kc_bundle_t *b = NULL;
    est_client_t c;
    est_rc_t erc;
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    STACK_OF(X509) *cacerts = NULL, *answer = NULL, *chain = NULL;
    X509 *leaf = NULL;
    X509_EXTENSION *san = NULL;
    kc_out_t *out = NULL;
    const char *err = NULL;
    char *kp = NULL, *cp = NULL;
    apr_size_t kl = 0, cl = 0;
    apr_int64_t now = now_sec(), nb, na;
    int code, idx;

    REQUIRE(o, url, "--url");
    REQUIRE(o, in, "--in");
    if ((code = check_readable(p, "--ca", o->ca))) {
        return code;
    }
    /* no lock file next to a mistyped --in: its error first */
    if (access(o->in, F_OK) != 0
        && kc_load(p, o->in, NULL, 1, &b, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    if ((code = take_lock(p, o, path))) {
        return code;
    }
    if (kc_load(p, o->in, NULL, 1, &b, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    nb = ca_asn1_time_to_epoch(X509_get0_notBefore(b->cert));
    na = ca_asn1_time_to_epoch(X509_get0_notAfter(b->cert));
    if (!o->force
        && !kc_renewal_due(now, nb, na, o->within_set ? o->within : -1)) {
        if (!o->quiet) {
            printf("not due %s: serial=%s notAfter=%s (expires %s)\n", o->in,
                   ca_serial_hex(p, X509_get0_serialNumber(b->cert)),
                   kc_time_str(p, X509_get0_notAfter(b->cert)),
                   left_str(p, na - now));
        }
        return CS_OK;
    }
    if (now > na) {
        return fail(CS_REFUSED, apr_psprintf(
            p, "%s: the certificate expired on %s; the CA does not renew an "
               "expired certificate: enroll again", o->in,
            kc_time_str(p, X509_get0_notAfter(b->cert))));
    }
    if (o->same_key) {
        key = b->key;
    }
    else {
        const char *kt = o->key_type ? o->key_type : kc_key_type(p, b->key);
        if (ca_key_generate(p, kt ? kt : "ec", &key, &err) != APR_SUCCESS) {
            return usage("--key-type: %s", err);
        }
    }
    idx = X509_get_ext_by_NID(b->cert, NID_subject_alt_name, -1);
    if (idx >= 0) {
        san = X509_get_ext(b->cert, idx);
    }
    if (kc_make_csr(p, key, X509_get_subject_name(b->cert), san, NULL, &req,
                    &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    /* an unwritable directory or a full disk shows now, before the CA
     * issues a certificate and supersedes this one */
    if (kc_out_open(p, path, 0600, &out, &err) != APR_SUCCESS
        || kc_out_reserve(out, KC_RESERVE, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    /* the client certificate: the file's certificate and chain */
    if (kc_pem(p, NULL, NULL, b->cert, b->chain, &cp, &cl, &err)
            != APR_SUCCESS
        || kc_pem(p, b->key, NULL, NULL, NULL, &kp, &kl, &err)
               != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    client_init(o, &c);
    c.cert_pem = cp;
    c.key_pem = kp;
    note(o, "asking %s", est_op_url(p, &c, "cacerts"));
    if ((erc = est_cacerts(p, &c, &cacerts, &err)) != EST_OK) {
        return fail(est_exit(erc), err);
    }
    note(o, "asking %s for serial %s", est_op_url(p, &c, "simplereenroll"),
         ca_serial_hex(p, X509_get0_serialNumber(b->cert)));
    if ((erc = est_enroll(p, &c, 1, req, &answer, &err)) != EST_OK) {
        if (erc == EST_REFUSED && !strstr(err, "enroll again")
            && !strstr(err, "renewal opens")) {
            err = apr_pstrcat(p, err, " (a revoked, superseded or expired "
                              "certificate cannot renew: enroll again)",
                              NULL);
        }
        return fail(est_exit(erc), err);
    }
    if ((code = accept_issued(p, o, key, answer, cacerts, &leaf, &chain,
                              &err))) {
        return fail(code, err);
    }
    if (X509_NAME_cmp(X509_get_subject_name(leaf),
                      X509_get_subject_name(b->cert)) != 0) {
        return fail(CS_UNREACHABLE, apr_psprintf(
            p, "the CA issued a certificate for another subject (%s)",
            kc_name_oneline(p, X509_get_subject_name(leaf))));
    }
    if ((code = write_keycert(p, o, out, path, key, leaf, chain,
                              "renewed"))) {
        return code;
    }
    return do_reload(p, o);
}

/* ------------------------------------------------------------------ check */

static int cmd_check(apr_pool_t *p, const opts_t *o)
{
    kc_bundle_t *b = NULL;
    const char *err = NULL, *why = NULL;
    apr_int64_t now = now_sec(), nb, na;
    X509 *x;
    int status = CS_OK;

    REQUIRE(o, in, "--in");
    if (kc_load(p, o->in, NULL, 1, &b, &err) != APR_SUCCESS) {
        printf("CRITICAL: %s\n", err);
        return CS_INVALID;
    }
    x = b->cert;
    printf("subject=%s\n", kc_name_oneline(p, X509_get_subject_name(x)));
    printf("issuer=%s\n", kc_name_oneline(p, X509_get_issuer_name(x)));
    printf("serial=%s\n", ca_serial_hex(p, X509_get0_serialNumber(x)));
    printf("notBefore=%s\n", kc_time_str(p, X509_get0_notBefore(x)));
    printf("notAfter=%s\n", kc_time_str(p, X509_get0_notAfter(x)));
    printf("key=%s, matches the certificate\n",
           ca_key_describe(p, b->key));
    nb = ca_asn1_time_to_epoch(X509_get0_notBefore(x));
    na = ca_asn1_time_to_epoch(X509_get0_notAfter(x));
    if (o->ca) {
        X509_STORE *st = store_from(p, o->ca, NULL, &err);
        if (!st) {
            printf("CRITICAL: %s\n", err);
            return CS_INVALID;
        }
        if (!verify_chain(p, st, x, b->chain, 0, &why)) {
            printf("chain=does not verify with %s: %s\n", o->ca, why);
            status = CS_INVALID;
        }
        else {
            printf("chain=verified with %s (%d certificate%s in the file "
                   "after the leaf)\n", o->ca, sk_X509_num(b->chain),
                   sk_X509_num(b->chain) == 1 ? "" : "s");
        }
        X509_STORE_free(st);
    }
    else {
        printf("chain=not verified (no --ca); %d certificate%s after the "
               "leaf\n", sk_X509_num(b->chain),
               sk_X509_num(b->chain) == 1 ? "" : "s");
    }
    if (now < nb) {
        printf("CRITICAL: %s: not valid before %s\n", o->in,
               kc_time_str(p, X509_get0_notBefore(x)));
        return CS_INVALID;
    }
    if (now > na) {
        printf("CRITICAL: %s: expired on %s\n", o->in,
               kc_time_str(p, X509_get0_notAfter(x)));
        return CS_INVALID;
    }
    if (status == CS_INVALID) {
        printf("CRITICAL: %s: the chain does not verify: %s\n", o->in, why);
        return CS_INVALID;
    }
    if (na - now <= (apr_int64_t)o->warn_days * 86400) {
        printf("WARNING: %s: expires %s (%s), within %d days\n", o->in,
               left_str(p, na - now), kc_time_str(p, X509_get0_notAfter(x)),
               o->warn_days);
        return CS_EXPIRING;
    }
    printf("OK: %s: expires %s (%s)\n", o->in, left_str(p, na - now),
           kc_time_str(p, X509_get0_notAfter(x)));
    return CS_OK;
}

/* ------------------------------------------------------------------ combine */

static int cmd_combine(apr_pool_t *p, const opts_t *o)
{
    const char *files[3];
    char *data[3] = {NULL, NULL, NULL}, *all;
    apr_size_t len[3] = {0, 0, 0}, total = 0;
    kc_bundle_t *b = NULL;
    kc_out_t *out = NULL;
    const char *err = NULL, *pw;
    apr_status_t rv;
    int i, code;
    char buf[120];

    REQUIRE(o, key, "--key");
    REQUIRE(o, cert, "--cert");
    REQUIRE(o, out, "--out");
    files[0] = o->key;
    files[1] = o->cert;
    files[2] = o->chain_file;
    for (i = 0, rv = APR_SUCCESS; i < 3 && rv == APR_SUCCESS; i++) {
        if (files[i]) {
            rv = ca_file_read(p, files[i], 1024 * 1024, &data[i], &len[i]);
            total += len[i] + 1;
        }
    }
    if (rv != APR_SUCCESS) {
        OPENSSL_cleanse(data[0], len[0]); /* the key */
        return fail(CS_LOCAL, apr_psprintf(
            p, "%s: cannot read: %s", files[i - 1],
            apr_strerror(rv, buf, sizeof(buf))));
    }
    /* the files one after the other, each ending with a line break, in a
     * buffer cleansed with the pool */
    all = kc_secret_alloc(p, total + 1);
    for (i = 0, total = 0; i < 3; i++) {
        if (files[i]) {
            memcpy(all + total, data[i], len[i]);
            all[total + len[i]] = '\n';
            total += len[i] + 1;
            OPENSSL_cleanse(data[i], len[i]);
        }
    }
    rv = kc_parse(p, all, total, NULL, 1, &b, &err);
    if (rv != APR_SUCCESS && strstr(err, "encrypted")) {
        if (!(pw = get_password(p, o, apr_psprintf(p, "Pass phrase for %s: ",
                                                   o->key), &code, &err))) {
            return fail(code, err);
        }
        rv = kc_parse(p, all, total, pw, 1, &b, &err);
    }
    OPENSSL_cleanse(all, total);
    if (rv != APR_SUCCESS) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s + %s: %s", o->key, o->cert,
                                           err));
    }
    if (ca_asn1_time_to_epoch(X509_get0_notAfter(b->cert)) < now_sec()) {
        fprintf(stderr, PROG ": warning: the certificate expired on %s\n",
                kc_time_str(p, X509_get0_notAfter(b->cert)));
    }
    if ((code = take_lock(p, o, o->out))
        || (code = refuse_existing(p, o, o->out))) {
        return code;
    }
    if (kc_out_open(p, o->out, 0600, &out, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    if ((code = write_keycert(p, o, out, o->out, b->key, b->cert, b->chain,
                              "combined"))) {
        return code;
    }
    return do_reload(p, o);
}

/* ------------------------------------------------------------------ split */

static int cmd_split(apr_pool_t *p, const opts_t *o)
{
    const char *certpath, *keypath, *err = NULL, *pass = NULL, *newpass = NULL;
    char *data = NULL, *kpem = NULL, *cpem = NULL;
    apr_size_t len = 0, klen = 0, clen = 0;
    const unsigned char *q;
    PKCS12 *p12;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL;
    kc_out_t *kout = NULL, *cout = NULL;
    struct stat st;
    apr_status_t rv;
    int code;
    char buf[120];

    REQUIRE(o, in, "--in");
    REQUIRE(o, out_dir, "--out-dir");
    rv = ca_file_read(p, o->in, 16 * 1024 * 1024, &data, &len);
    if (rv != APR_SUCCESS) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s: cannot read: %s", o->in,
                                           apr_strerror(rv, buf,
                                                        sizeof(buf))));
    }
    q = (const unsigned char *)data;
    p12 = d2i_PKCS12(NULL, &q, (long)len);
    if (!p12) {
        ERR_clear_error();
        return fail(CS_LOCAL, apr_psprintf(p, "%s: not a PKCS#12 file",
                                           o->in));
    }
    apr_pool_cleanup_register(p, p12, p12_cleanup, apr_pool_cleanup_null);
    certpath = apr_pstrcat(p, o->out_dir, "/usercert.pem", NULL);
    keypath = apr_pstrcat(p, o->out_dir, "/userkey.pem", NULL);
    if (!o->force) {
        if (stat(certpath, &st) == 0 || stat(keypath, &st) == 0) {
            return fail(CS_LOCAL, apr_psprintf(
                p, "%s already holds usercert.pem or userkey.pem; use "
                   "--force (and --backup) to replace them", o->out_dir));
        }
    }
    /* the import password: none, empty, or asked for */
    if (PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, NULL, 0)
        && !PKCS12_verify_mac(p12, "", 0)) {
        if (!(pass = get_password(p, o, "Enter Import Password: ", &code,
                                  &err))) {
            return fail(code, err);
        }
        if (!PKCS12_verify_mac(p12, pass, -1)) {
            ERR_clear_error();
            return fail(CS_LOCAL, apr_psprintf(p, "%s: wrong import password "
                                               "(MAC verification failed)",
                                               o->in));
        }
    }
    ERR_clear_error();
    if (!PKCS12_parse(p12, pass, &key, &cert, &ca)) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s: cannot decrypt: %s",
                                           o->in, ca_log_ssl_errors(p)));
    }
    ca_pool_pkey(p, key);
    ca_pool_x509(p, cert);
    ca_pool_x509_stack(p, ca);
    if (!key || !cert) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s: %s", o->in,
                                           !key ? "holds no private key"
                                                : "holds no certificate for "
                                                  "its key"));
    }
    if (!kc_key_matches(cert, key)) {
        return fail(CS_LOCAL, apr_psprintf(p, "%s: the key does not match "
                                           "the certificate", o->in));
    }
    if (!o->nodes) {
        if (!(newpass = get_secret(p, o->newpassfile, "CERTAUTH_NEW_PASSWORD",
                                   "Enter PEM pass phrase: ",
                                   "Verifying - Enter PEM pass phrase: ",
                                   "no new pass phrase for userkey.pem: give "
                                   "--new-password-file FILE, set "
                                   "CERTAUTH_NEW_PASSWORD, give --nodes, or "
                                   "run on a terminal", &code, &err))) {
            return fail(code, err);
        }
        if (strlen(newpass) < 4) {
            return fail(CS_USAGE, "the new pass phrase needs at least 4 "
                                  "characters");
        }
    }
    if (kc_pem(p, key, newpass, NULL, NULL, &kpem, &klen, &err)
            != APR_SUCCESS
        || kc_pem(p, NULL, NULL, cert, NULL, &cpem, &clen, &err)
               != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    if (mkdir(o->out_dir, 0700) != 0 && errno != EEXIST) {
        return fail(CS_LOCAL, apr_psprintf(p, "cannot create %s: %s",
                                           o->out_dir, strerror(errno)));
    }
    if (kc_out_open(p, keypath, 0600, &kout, &err) != APR_SUCCESS
        || kc_out_open(p, certpath, 0644, &cout, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    if (kc_out_commit(kout, kpem, klen,
                      o->backup ? apr_pstrcat(p, keypath, ".bak", NULL)
                                : NULL, &err) != APR_SUCCESS
        || kc_out_commit(cout, cpem, clen,
                         o->backup ? apr_pstrcat(p, certpath, ".bak", NULL)
                                   : NULL, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    if (!o->quiet) {
        printf("wrote %s (0644): subject=%s\n", certpath,
               kc_name_oneline(p, X509_get_subject_name(cert)));
        printf("wrote %s (0600, %s)\n", keypath,
               o->nodes ? "not encrypted" : "encrypted with the new pass "
                                            "phrase");
        if (sk_X509_num(ca) > 0) {
            printf("not written: %d CA certificate%s from the PKCS#12\n",
                   sk_X509_num(ca), sk_X509_num(ca) == 1 ? "" : "s");
        }
    }
    return CS_OK;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    apr_pool_t *pool;
    opts_t o;
    int code;

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")
        || !strcmp(argv[1], "help")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? CS_USAGE : CS_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf(PROG " " VERSION "\n");
        return CS_OK;
    }
    {
        int i;
        for (i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                fputs(usage_text, stdout);
                return CS_OK;
            }
        }
    }
    umask(077);
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);
    ca_log_set(log_stderr, NULL, CA_LOG_WARN);
    if (!est_global_init()) {
        fprintf(stderr, PROG ": cannot initialise libcurl\n");
        return CS_LOCAL;
    }
    if ((code = parse_opts(pool, argc, argv, &o)) != 0) {
        apr_pool_destroy(pool);
        est_global_cleanup();
        return code;
    }
    switch (o.cmd) {
    case C_ENROLL: code = cmd_enroll(pool, &o); break;
    case C_RENEW: code = cmd_renew(pool, &o); break;
    case C_CHECK: code = cmd_check(pool, &o); break;
    case C_COMBINE: code = cmd_combine(pool, &o); break;
    default: code = cmd_split(pool, &o); break;
    }
    fflush(stdout);
    apr_pool_destroy(pool);
    est_global_cleanup();
    return code;
}
