/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* cmd_common.c: what the commands of certauth-stunnel share: messages and
 * exit codes, pass phrases (file, environment, terminal), checks of an
 * existing file and of what the CA issued, the lock, writing the key-cert
 * file and reloading stunnel. */

#include "certauth_stunnel.h"

/* ------------------------------------------------------------------ output */

int fail(int code, const char *msg)
{
    fprintf(stderr, PROG ": %s\n", msg);
    return code;
}

void note(const opts_t *o, const char *fmt, ...)
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


int est_exit(est_rc_t rc)
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
const char *get_secret(apr_pool_t *p, const char *file,
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
const char *get_password(apr_pool_t *p, const opts_t *o,
                         const char *prompt, int *code,
                         const char **err)
{
    return get_secret(p, o->passfile, "CERTAUTH_PASSWORD", prompt, NULL,
                      "no password: give --password-file FILE, set "
                      "CERTAUTH_PASSWORD, or run on a terminal",
                      code, err);
}

/* ------------------------------------------------------------------ helpers */

apr_status_t name_cleanup(void *d)
{
    X509_NAME_free(d);
    return APR_SUCCESS;
}

apr_status_t p12_cleanup(void *d)
{
    PKCS12_free(d);
    return APR_SUCCESS;
}

apr_int64_t now_sec(void)
{
    return (apr_int64_t)time(NULL);
}

const char *left_str(apr_pool_t *p, apr_int64_t secs)
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

int refuse_existing(apr_pool_t *p, const opts_t *o, const char *path)
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

X509_STORE *store_from(apr_pool_t *p, const char *file,
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

int verify_chain(apr_pool_t *p, X509_STORE *st, X509 *leaf,
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
int accept_issued(apr_pool_t *p, const opts_t *o, EVP_PKEY *key,
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
int do_reload(apr_pool_t *p, const opts_t *o)
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

void client_init(const opts_t *o, est_client_t *c)
{
    memset(c, 0, sizeof(*c));
    c->url = o->url;
    c->label = o->profile;
    c->ca_file = o->ca;
    c->timeout = o->timeout;
    c->verbose = o->verbose > 1;
}

int check_readable(apr_pool_t *p, const char *what, const char *path)
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
int take_lock(apr_pool_t *p, const opts_t *o, const char *path)
{
    const char *err = NULL;

    if (kc_lock(p, path, o->timeout, &err) != APR_SUCCESS) {
        return fail(CS_LOCAL, err);
    }
    return 0;
}

/* Key, certificate and chain written to path; prints one line. */
int write_keycert(apr_pool_t *p, const opts_t *o, kc_out_t *out,
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
