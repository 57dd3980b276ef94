/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* certauth-stunnel: key-cert.pem files for stunnel, enrolled and renewed
 * over EST (RFC 7030), written safely, with a reload of stunnel.
 *   certauth-stunnel enroll    --url URL --ca F --user NAME --cn NAME --out F
 *   certauth-stunnel renew     --url URL --ca F --in F
 *   certauth-stunnel check     --in F [--ca F] [--warn-days 30]
 *   certauth-stunnel combine   --key F --cert F --out F
 *   certauth-stunnel split-p12 --in F.p12 --out-dir DIR [--nodes]
 * This file is the command-line layer: the usage, the options (parsed with
 * apr_getopt_long, each naming the commands it belongs to) and main; each
 * command is a file of its own (cmd_*.c, see certauth_stunnel.h).  See
 * usage_text below and certauth-stunnel(1) for the exit codes. */

#include "certauth_stunnel.h"

#include <apr_getopt.h>

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

/* Codes of the long options: past every character, so that only -v and -q
 * (--verbose, --quiet) have a short form. */
enum {
    O_URL = 256, O_CA, O_USER, O_PASSFILE, O_NEWPASSFILE, O_CN, O_SUBJECT,
    O_SAN, O_PROFILE, O_KEYTYPE, O_CHAIN, O_OUT, O_IN, O_KEY, O_CERT,
    O_CHAINFILE, O_OUTDIR, O_FORCE, O_BACKUP, O_RELOAD, O_PIDFILE, O_WITHIN,
    O_REKEY, O_SAMEKEY, O_WARNDAYS, O_NODES, O_TIMEOUT,
    O_VERBOSE = 'v', O_QUIET = 'q'
};

/* The options for apr_getopt_long; the description names the commands
 * an option belongs to ("*": all of them). */
static const apr_getopt_option_t options[] = {
    {"url", O_URL, 1, "enroll renew"},
    {"ca", O_CA, 1, "enroll renew check"},
    {"user", O_USER, 1, "enroll"},
    {"password-file", O_PASSFILE, 1, "enroll combine split-p12"},
    {"new-password-file", O_NEWPASSFILE, 1, "split-p12"},
    {"cn", O_CN, 1, "enroll"},
    {"subject", O_SUBJECT, 1, "enroll"},
    {"san", O_SAN, 1, "enroll"},
    {"profile", O_PROFILE, 1, "enroll renew"},
    {"key-type", O_KEYTYPE, 1, "enroll renew"},
    {"chain", O_CHAIN, 1, "enroll renew"},
    {"out", O_OUT, 1, "enroll renew combine"},
    {"in", O_IN, 1, "renew check split-p12"},
    {"key", O_KEY, 1, "combine"},
    {"cert", O_CERT, 1, "combine"},
    {"chain-file", O_CHAINFILE, 1, "combine"},
    {"out-dir", O_OUTDIR, 1, "split-p12"},
    {"force", O_FORCE, 0, "enroll renew combine split-p12"},
    {"backup", O_BACKUP, 0, "enroll renew combine split-p12"},
    {"reload", O_RELOAD, 1, "enroll renew combine"},
    {"pidfile", O_PIDFILE, 1, "enroll renew combine"},
    {"if-expires-within", O_WITHIN, 1, "renew"},
    {"rekey", O_REKEY, 0, "renew"},
    {"same-key", O_SAMEKEY, 0, "renew"},
    {"warn-days", O_WARNDAYS, 1, "check"},
    {"nodes", O_NODES, 0, "split-p12"},
    {"timeout", O_TIMEOUT, 1, "enroll renew combine"},
    {"verbose", O_VERBOSE, 0, "*"},
    {"quiet", O_QUIET, 0, "*"},
    {NULL, 0, 0, NULL}
};

static const apr_getopt_option_t *option_of(int optch)
{
    const apr_getopt_option_t *d;

    for (d = options; d->optch && d->optch != optch; d++) {
    }
    return d;
}

/* Whether cmd is one of the words of list ("*": every command). */
static int belongs(const char *list, const char *cmd)
{
    apr_size_t n = strlen(cmd);

    if (!strcmp(list, "*")) {
        return 1;
    }
    while ((list = strstr(list, cmd)) != NULL) {
        if ((list[n] == ' ' || list[n] == '\0')) {
            return 1;
        }
        list += n;
    }
    return 0;
}

/* apr_getopt's message ("COMMAND: what: option"), kept for usage(). */
static void getopt_error(void *baton, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(baton, 256, fmt, ap);
    va_end(ap);
}

/* A usage error for apr_getopt_long's failure, worded as before: the
 * option that is unknown, lacks its value or has one it does not take. */
static int getopt_usage(apr_pool_t *p, const char *msg)
{
    const char *what = strstr(msg, ": "), *opt;
    char *eq;

    what = what ? what + 2 : msg;
    opt = strstr(what, ": ");
    opt = apr_pstrdup(p, opt ? opt + 2 : "");
    apr_collapse_spaces((char *)opt, opt);
    if (!strncmp(what, "missing argument", 16)) {
        return usage("%s needs a value", opt);
    }
    if (!strncmp(what, "erroneous argument", 18)) {
        if ((eq = strchr(opt, '=')) != NULL) {
            *eq = '\0';
        }
        return usage("%s takes no value", opt);
    }
    return usage("unknown option '%s'", !strncmp(what, "invalid option "
                                                 "character", 24)
                                            ? apr_pstrcat(p, "-", opt, NULL)
                                            : opt);
}

int usage(const char *fmt, const char *arg)
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
    apr_getopt_t *os;
    apr_status_t rv;
    const char *v;
    char errbuf[256] = "";
    int j, optch;

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
    if (apr_getopt_init(&os, p, argc - 1, (const char *const *)argv + 1)
        != APR_SUCCESS) {
        return usage("%s", "cannot parse the options");
    }
    os->errfn = getopt_error;
    os->errarg = errbuf;
    while ((rv = apr_getopt_long(os, options, &optch, &v)) == APR_SUCCESS) {
        const apr_getopt_option_t *d = option_of(optch);
        char *end;
        long l;

        if (!belongs(d->description, o->cmdname)) {
            return usage(apr_psprintf(p, "%%s is not an option of %s",
                                      o->cmdname),
                         apr_pstrcat(p, "--", d->name, NULL));
        }
        switch (optch) {
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
                || (optch == O_TIMEOUT && l == 0)) {
                return usage("%s needs a positive number",
                             apr_pstrcat(p, "--", d->name, NULL));
            }
            if (optch == O_WARNDAYS) {
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
    if (rv != APR_EOF) {
        return getopt_usage(p, errbuf);
    }
    if (os->ind < os->argc) {
        /* no command takes arguments besides its options */
        return usage("unknown option '%s'", os->argv[os->ind]);
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
    ca_log_set(ca_log_tool_sink, (void *)PROG, CA_LOG_WARN);
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
