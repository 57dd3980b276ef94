/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* keycert: key-cert.pem files, written safely; see keycert.h. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <apr_strings.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "ca_ca.h"
#include "ca_log.h"
#include "ca_util.h"
#include "keycert.h"

#define KC_MAX_FILE (1024 * 1024)

/* ------------------------------------------------------------------ parse */

/* Pass phrase callback: never prompts (OpenSSL's default would). */
static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    const char *pass = u;
    size_t n;
    (void)rwflag;

    if (!pass || size <= 0) {
        return -1;
    }
    n = strlen(pass);
    if (n >= (size_t)size) {
        return -1;
    }
    memcpy(buf, pass, n);
    return (int)n;
}

static EVP_PKEY *read_key_block(const char *name, const char *header,
                                const unsigned char *der, long dlen,
                                const char *pass)
{
    BIO *kb = BIO_new(BIO_s_secmem());
    EVP_PKEY *key = NULL;

    if (kb && PEM_write_bio(kb, name, header, der, dlen) > 0) {
        key = PEM_read_bio_PrivateKey_ex(kb, NULL, pass_cb, (void *)pass,
                                         NULL, NULL);
    }
    BIO_free(kb);
    return key;
}

apr_status_t kc_parse(apr_pool_t *p, const char *data, apr_size_t len,
                      const char *pass, int need_key, kc_bundle_t **out,
                      const char **err)
{
    STACK_OF(X509) *certs = ca_pool_x509_stack(p, sk_X509_new_null());
    EVP_PKEY *key = NULL;
    kc_bundle_t *b;
    BIO *in;
    int nblocks = 0, nkeys = 0, i, leaf = -1;
    apr_status_t rv = CA_EBADINPUT;

    *out = NULL;
    if (!certs || len > INT_MAX
        || !(in = BIO_new_mem_buf(data, (int)len))) {
        *err = "out of memory";
        return CA_ECRYPTO;
    }
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *der = NULL;
        long dlen = 0;
        unsigned long e;
        int stop = 0;

        ERR_set_mark();
        if (!PEM_read_bio(in, &name, &header, &der, &dlen)) {
            e = ERR_peek_last_error();
            ERR_pop_to_mark();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM
                && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                break; /* no more PEM blocks */
            }
            *err = apr_psprintf(p, "PEM block %d is corrupt (bad base64 "
                                "or a missing END line)", nblocks + 1);
            goto done;
        }
        ERR_pop_to_mark();
        nblocks++;
        if (!strcmp(name, "CERTIFICATE") || !strcmp(name, "X509 CERTIFICATE")
            || !strcmp(name, "TRUSTED CERTIFICATE")) {
            const unsigned char *q = der;
            X509 *x = strcmp(name, "TRUSTED CERTIFICATE")
                          ? d2i_X509(NULL, &q, dlen)
                          : d2i_X509_AUX(NULL, &q, dlen);
            if (!x || q != der + dlen || !sk_X509_push(certs, x)) {
                X509_free(x);
                *err = apr_psprintf(p, "certificate %d (PEM block %d) is "
                                    "corrupt", sk_X509_num(certs) + 1,
                                    nblocks);
                stop = 1;
            }
        }
        else if (strstr(name, "PRIVATE KEY")) {
            int encrypted = !strcmp(name, "ENCRYPTED PRIVATE KEY")
                            || (header && strstr(header, "ENCRYPTED"));
            if (++nkeys > 1) {
                *err = "more than one private key";
            }
            else if (!(key = read_key_block(name, header, der, dlen, pass))) {
                *err = encrypted && !pass
                           ? "the private key is encrypted (no pass phrase "
                             "given)"
                       : encrypted ? "the private key cannot be decrypted "
                                     "(wrong pass phrase?)"
                                   : "the private key is corrupt";
            }
            else {
                ca_pool_pkey(p, key);
            }
            OPENSSL_cleanse(der, (size_t)dlen);
            stop = !key || nkeys > 1;
        }
        /* other blocks (EC PARAMETERS, ...) are ignored */
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
        if (stop) {
            goto done;
        }
    }
    if (!nblocks) {
        *err = "no PEM data (neither a private key nor a certificate)";
        goto done;
    }
    if (!key && need_key) {
        *err = "no private key";
        goto done;
    }
    if (!sk_X509_num(certs)) {
        *err = "no certificate";
        goto done;
    }
    if (key) {
        for (i = 0; i < sk_X509_num(certs); i++) {
            if (kc_key_matches(sk_X509_value(certs, i), key)) {
                leaf = i;
                break;
            }
        }
        if (leaf < 0) {
            *err = sk_X509_num(certs) == 1
                       ? "the private key does not match the certificate"
                       : "the private key matches none of the certificates";
            goto done;
        }
    }
    else {
        leaf = 0;
    }
    b = apr_pcalloc(p, sizeof(*b));
    b->key = key;
    b->cert = ca_pool_x509(p, sk_X509_delete(certs, leaf));
    b->chain = certs;
    *out = b;
    rv = APR_SUCCESS;
done:
    BIO_free(in);
    ERR_clear_error();
    return rv;
}

apr_status_t kc_load(apr_pool_t *p, const char *path, const char *pass,
                     int need_key, kc_bundle_t **out, const char **err)
{
    char *data = NULL;
    apr_size_t len = 0;
    apr_status_t rv;
    char buf[120];

    *out = NULL;
    rv = ca_file_read(p, path, KC_MAX_FILE, &data, &len);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "%s: cannot read: %s", path,
                            rv == CA_EBADINPUT || rv == APR_ENOSPC
                                ? "larger than 1 MiB"
                                : apr_strerror(rv, buf, sizeof(buf)));
        return CA_EIO;
    }
    rv = kc_parse(p, data, len, pass, need_key, out, err);
    OPENSSL_cleanse(data, len);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "%s: %s", path, *err);
    }
    return rv;
}

int kc_key_matches(X509 *cert, EVP_PKEY *key)
{
    EVP_PKEY *pub = cert ? X509_get0_pubkey(cert) : NULL;
    int r = pub && key && EVP_PKEY_eq(pub, key) == 1;
    ERR_clear_error();
    return r;
}

const char *kc_key_type(apr_pool_t *p, EVP_PKEY *key)
{
    char group[64];
    size_t glen = 0;

    if (!key) {
        return NULL;
    }
    if (EVP_PKEY_is_a(key, "ED25519")) {
        return "ed25519";
    }
    if (EVP_PKEY_is_a(key, "RSA")) {
        return apr_psprintf(p, "rsa:%d", EVP_PKEY_get_bits(key));
    }
    if (EVP_PKEY_is_a(key, "EC")
        && EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                          group, sizeof(group), &glen)) {
        if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256")) {
            return "ec:P-256";
        }
        if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384")) {
            return "ec:P-384";
        }
    }
    ERR_clear_error();
    return NULL;
}

/* ------------------------------------------------------------------ PEM */

char *kc_secret_alloc(apr_pool_t *p, apr_size_t len)
{
    char *buf = apr_pcalloc(p, len);
    ca_pool_wipe(p, buf, len);
    return buf;
}

apr_status_t kc_pem(apr_pool_t *p, EVP_PKEY *key, const char *pass, X509 *cert,
                    STACK_OF(X509) *chain, char **pem, apr_size_t *len,
                    const char **err)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data = NULL;
    long n;
    int i, ok;

    *pem = NULL;
    *len = 0;
    if (!bio) {
        *err = "out of memory";
        return CA_ECRYPTO;
    }
    ok = 1;
    if (key) {
        ok = pass ? PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(),
                                                  pass, (int)strlen(pass),
                                                  NULL, NULL)
                  : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
                                             NULL);
    }
    if (ok && cert) {
        ok = PEM_write_bio_X509(bio, cert);
    }
    for (i = 0; ok && chain && i < sk_X509_num(chain); i++) {
        ok = PEM_write_bio_X509(bio, sk_X509_value(chain, i));
    }
    if (!ok) {
        *err = apr_psprintf(p, "cannot encode PEM: %s", ca_log_ssl_errors(p));
        BIO_free(bio);
        return CA_ECRYPTO;
    }
    n = BIO_get_mem_data(bio, &data);
    *pem = kc_secret_alloc(p, (apr_size_t)n + 1);
    memcpy(*pem, data, (apr_size_t)n);
    BIO_free(bio);
    *len = (apr_size_t)n;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ files */

struct kc_out_t {
    apr_pool_t *p;
    const char *path;   /* the file (symbolic links resolved)   */
    char *tmp;          /* the temporary file                   */
    const char *dir;
    int fd;
    int existed;
    struct stat old;
    int done;
    int reserved;       /* space reserved: cut to the data written */
};

static apr_status_t out_cleanup(void *d)
{
    kc_out_t *o = d;
    if (!o->done) {
        if (o->fd >= 0) {
            close(o->fd);
            o->fd = -1;
        }
        unlink(o->tmp);
        o->done = 1;
    }
    return APR_SUCCESS;
}

static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static const char *dir_of(apr_pool_t *p, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        return ".";
    }
    if (slash == path) {
        return "/";
    }
    return apr_pstrmemdup(p, path, (apr_size_t)(slash - path));
}

/* owner: whose uid/gid the new file gets; NULL: the existing file's. */
static apr_status_t out_open(apr_pool_t *p, const char *path, int mode,
                             const struct stat *owner, kc_out_t **out,
                             const char **err)
{
    kc_out_t *o = apr_pcalloc(p, sizeof(*o));
    struct stat lst, now;

    *out = NULL;
    o->p = p;
    o->fd = -1;
    o->done = 1;
    if (!path || !*path) {
        *err = "no file name";
        return CA_EBADINPUT;
    }
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
        /* replace the file the link points to, keep the link */
        char *real = realpath(path, NULL);
        if (!real) {
            *err = apr_psprintf(p, "%s: symbolic link to a missing file: %s",
                                path, strerror(errno));
            return CA_EIO;
        }
        path = apr_pstrdup(p, real);
        free(real);
    }
    o->path = path;
    if (stat(path, &o->old) == 0) {
        if (!S_ISREG(o->old.st_mode)) {
            *err = apr_psprintf(p, "%s: not a regular file", path);
            return CA_EIO;
        }
        o->existed = 1;
    }
    else if (errno != ENOENT) {
        *err = apr_psprintf(p, "%s: %s", path, strerror(errno));
        return CA_EIO;
    }
    o->dir = dir_of(p, path);
    o->tmp = apr_psprintf(p, "%s/.%s.tmpXXXXXX", o->dir, base_of(path));
    o->fd = mkostemp(o->tmp, O_CLOEXEC);
    if (o->fd < 0) {
        *err = apr_psprintf(p, "cannot create a file in %s: %s", o->dir,
                            strerror(errno));
        return CA_EIO;
    }
    o->done = 0;
    apr_pool_cleanup_register(p, o, out_cleanup, apr_pool_cleanup_null);
    if (!owner && o->existed) {
        owner = &o->old;
    }
    if (owner && fstat(o->fd, &now) == 0
        && (now.st_uid != owner->st_uid || now.st_gid != owner->st_gid)
        && fchown(o->fd, owner->st_uid, owner->st_gid) != 0) {
        *err = apr_psprintf(p, "%s: cannot give the new file the owner and "
                            "group of the old one (uid %ld, gid %ld): %s",
                            path, (long)owner->st_uid, (long)owner->st_gid,
                            strerror(errno));
        out_cleanup(o);
        return CA_EIO;
    }
    if (fchmod(o->fd, (mode_t)mode) != 0) {
        *err = apr_psprintf(p, "%s: cannot set mode %04o: %s", o->tmp, mode,
                            strerror(errno));
        out_cleanup(o);
        return CA_EIO;
    }
    *out = o;
    return APR_SUCCESS;
}

apr_status_t kc_out_open(apr_pool_t *p, const char *path, int mode,
                         kc_out_t **out, const char **err)
{
    return out_open(p, path, mode, NULL, out, err);
}

apr_status_t kc_out_reserve(kc_out_t *o, apr_size_t len, const char **err)
{
    int e;

    if (o->done || o->fd < 0) {
        *err = "internal error: file already committed or aborted";
        return CA_EIO;
    }
    e = posix_fallocate(o->fd, 0, (off_t)len);
    if (e == 0) {
        o->reserved = 1;
        return APR_SUCCESS;
    }
    if (e == EOPNOTSUPP || e == EINVAL) {
        return APR_SUCCESS;
    }
    *err = apr_psprintf(o->p, "%s: cannot reserve %lu bytes for %s: %s; the "
                        "old file is unchanged", o->path, (unsigned long)len,
                        o->tmp, strerror(e));
    out_cleanup(o);
    return CA_EIO;
}

int kc_out_existed(const kc_out_t *o, struct stat *st)
{
    if (st && o->existed) {
        *st = o->old;
    }
    return o->existed;
}

static apr_status_t fsync_dir(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    apr_status_t rv = APR_SUCCESS;

    if (dfd < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    if (fsync(dfd) != 0 && errno != EINVAL) {
        rv = APR_FROM_OS_ERROR(errno);
    }
    close(dfd);
    return rv;
}

static apr_status_t write_backup(kc_out_t *o, const char *backup,
                                 const char **err)
{
    kc_out_t *b;
    char *data = NULL;
    apr_size_t len = 0;
    apr_status_t rv;
    char buf[120];

    rv = ca_file_read(o->p, o->path, 16 * KC_MAX_FILE, &data, &len);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(o->p, "%s: cannot read it for the backup: %s",
                            o->path, apr_strerror(rv, buf, sizeof(buf)));
        return CA_EIO;
    }
    rv = out_open(o->p, backup, 0600, &o->old, &b, err);
    if (rv == APR_SUCCESS) {
        rv = kc_out_commit(b, data, len, NULL, err);
    }
    OPENSSL_cleanse(data, len);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(o->p, "backup %s: %s", backup, *err);
    }
    return rv;
}

apr_status_t kc_out_commit(kc_out_t *o, const void *data, apr_size_t len,
                           const char *backup, const char **err)
{
    const char *c = data;
    apr_size_t total = len;
    apr_status_t rv;
    const char *what = "write";
    int e = 0;

    if (o->done) {
        *err = "internal error: file already committed or aborted";
        return CA_EIO;
    }
    while (len > 0) {
        ssize_t w = write(o->fd, c, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            e = errno;
            break;
        }
        c += w;
        len -= (apr_size_t)w;
    }
    if (!e && o->reserved && ftruncate(o->fd, (off_t)total) != 0) {
        e = errno;
        what = "truncate";
    }
    if (!e && fsync(o->fd) != 0) {
        e = errno;
        what = "fsync";
    }
    if (close(o->fd) != 0 && !e) {
        e = errno;
        what = "close";
    }
    o->fd = -1;
    if (e) {
        *err = apr_psprintf(o->p, "%s: cannot %s %s: %s; the old file is "
                            "unchanged", o->path, what, o->tmp, strerror(e));
        out_cleanup(o);
        return CA_EIO;
    }
    if (backup && o->existed
        && (rv = write_backup(o, backup, err)) != APR_SUCCESS) {
        out_cleanup(o);
        return rv;
    }
    if (rename(o->tmp, o->path) != 0) {
        *err = apr_psprintf(o->p, "%s: cannot rename %s over it: %s; the old "
                            "file is unchanged", o->path, o->tmp,
                            strerror(errno));
        out_cleanup(o);
        return CA_EIO;
    }
    o->done = 1;
    if ((rv = fsync_dir(o->dir)) != APR_SUCCESS) {
        char buf[120];
        *err = apr_psprintf(o->p, "%s: written, but the directory %s cannot "
                            "be synced: %s", o->path, o->dir,
                            apr_strerror(rv, buf, sizeof(buf)));
        return CA_EIO;
    }
    return APR_SUCCESS;
}

apr_status_t kc_write_file(apr_pool_t *p, const char *path, const void *data,
                           apr_size_t len, int mode, const char *backup,
                           const char **err)
{
    kc_out_t *o;
    apr_status_t rv = kc_out_open(p, path, mode, &o, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return kc_out_commit(o, data, len, backup, err);
}

/* ------------------------------------------------------------------ lock */

typedef struct {
    int fd;
} kc_lock_t;

static apr_status_t lock_cleanup(void *d)
{
    kc_lock_t *l = d;
    if (l->fd >= 0) {
        close(l->fd);   /* releases the record lock */
        l->fd = -1;
    }
    return APR_SUCCESS;
}

apr_status_t kc_lock(apr_pool_t *p, const char *path, int wait_secs,
                     const char **err)
{
    kc_lock_t *l = apr_pcalloc(p, sizeof(*l));
    const char *dir, *lockpath;
    char *real = realpath(path, NULL);
    struct stat target, st;
    int have_target, waited = 0, ticks = 0;
    struct flock fl;

    if (real) {
        path = apr_pstrdup(p, real);
        free(real);
    }
    dir = dir_of(p, path);
    lockpath = apr_psprintf(p, "%s/.%s.lock", dir, base_of(path));
    have_target = stat(path, &target) == 0;
    l->fd = open(lockpath, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                 0600);
    if (l->fd >= 0) {
        /* a new lock file: the owner of the file it guards can lock it */
        if (have_target && fstat(l->fd, &st) == 0
            && (st.st_uid != target.st_uid || st.st_gid != target.st_gid)) {
            (void)!fchown(l->fd, target.st_uid, target.st_gid);
        }
    }
    else if (errno == EEXIST) {
        l->fd = open(lockpath, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (l->fd < 0) {
            *err = apr_psprintf(p, "%s: cannot open the lock file %s: %s",
                                path, lockpath, strerror(errno));
            return CA_EIO;
        }
    }
    else {
        *err = apr_psprintf(p, "cannot create a file in %s (the lock file "
                            "%s): %s", dir, lockpath, strerror(errno));
        return CA_EIO;
    }
    apr_pool_cleanup_register(p, l, lock_cleanup, apr_pool_cleanup_null);
    if (fstat(l->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *err = apr_psprintf(p, "%s: the lock file %s is not a regular file",
                            path, lockpath);
        lock_cleanup(l);
        return CA_EIO;
    }
    for (;;) {
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(l->fd, F_SETLK, &fl) == 0) {
            return APR_SUCCESS;
        }
        if (errno != EACCES && errno != EAGAIN && errno != EINTR) {
            *err = apr_psprintf(p, "%s: cannot lock %s: %s", path, lockpath,
                                strerror(errno));
            lock_cleanup(l);
            return CA_EIO;
        }
        if (waited >= wait_secs) {
            long holder = 0;
            memset(&fl, 0, sizeof(fl));
            fl.l_type = F_WRLCK;
            fl.l_whence = SEEK_SET;
            if (fcntl(l->fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
                holder = (long)fl.l_pid;
            }
            *err = apr_psprintf(p, "%s is being replaced by another run "
                                "(%s%s holds the lock %s); gave up after "
                                "waiting %d second%s", path,
                                holder > 0 ? "process " : "another process",
                                holder > 0 ? apr_ltoa(p, holder) : "",
                                lockpath, wait_secs,
                                wait_secs == 1 ? "" : "s");
            lock_cleanup(l);
            return APR_TIMEUP;
        }
        usleep(100 * 1000);
        if (++ticks == 10) {
            ticks = 0;
            waited++;
        }
    }
}

/* ------------------------------------------------------------------ time */

apr_status_t kc_parse_duration(const char *s, apr_int64_t *secs)
{
    apr_int64_t n = 0, unit = 86400;
    const char *c = s;

    if (!s || !*s) {
        return CA_EBADINPUT;
    }
    while (*c >= '0' && *c <= '9') {
        n = n * 10 + (*c - '0');
        if (n > 36500L * 24) {
            return CA_EBADINPUT;
        }
        c++;
    }
    if (c == s) {
        return CA_EBADINPUT;
    }
    if (*c == 'd' || *c == 'D') {
        c++;
    }
    else if (*c == 'h' || *c == 'H') {
        unit = 3600;
        c++;
    }
    if (*c) {
        return CA_EBADINPUT;
    }
    if (unit == 86400 && n > 36500) {
        return CA_EBADINPUT;
    }
    *secs = n * unit;
    return APR_SUCCESS;
}

int kc_renewal_due(apr_int64_t now, apr_int64_t nb, apr_int64_t na,
                   apr_int64_t within)
{
    apr_int64_t life = na - nb;

    if (within >= 0) {
        return na - now <= within;
    }
    if (life <= 0) {
        return 1;
    }
    return (now - nb) * 3 >= life * 2;
}

/* ------------------------------------------------------------------ PKCS#7 */

apr_status_t kc_pkcs7_certs_parse(apr_pool_t *p, const char *body,
                                  apr_size_t len, STACK_OF(X509) **certs,
                                  const char **err)
{
    unsigned char *der = NULL;
    apr_size_t dlen = 0;
    const unsigned char *q;
    STACK_OF(X509) *in, *sk;
    PKCS7 *p7;

    *certs = NULL;
    if (ca_base64_decode(p, body, len, &der, &dlen) != APR_SUCCESS
        || dlen == 0) {
        der = (unsigned char *)body; /* binary DER */
        dlen = len;
    }
    if (dlen == 0 || dlen > LONG_MAX) {
        *err = "empty PKCS#7";
        return CA_EBADINPUT;
    }
    q = der;
    p7 = d2i_PKCS7(NULL, &q, (long)dlen);
    if (!p7) {
        ERR_clear_error();
        *err = "the response is not a PKCS#7 (neither base64 nor DER)";
        return CA_EBADINPUT;
    }
    if (!PKCS7_type_is_signed(p7) || !p7->d.sign
        || !(in = p7->d.sign->cert) || sk_X509_num(in) == 0) {
        PKCS7_free(p7);
        *err = "the PKCS#7 holds no certificate";
        return CA_EBADINPUT;
    }
    sk = ca_pool_x509_stack(p, sk_X509_new_null());
    if (sk && !X509_add_certs(sk, in, X509_ADD_FLAG_UP_REF)) {
        sk = NULL; /* the pool frees what was added */
    }
    PKCS7_free(p7);
    if (!sk) {
        *err = "out of memory";
        return CA_ECRYPTO;
    }
    *certs = sk;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ CSR */

apr_status_t kc_make_csr(apr_pool_t *p, EVP_PKEY *key, const X509_NAME *subject,
                         const X509_EXTENSION *san_ext, const char *sans,
                         X509_REQ **out, const char **err)
{
    X509_REQ *req = ca_pool_x509_req(p, X509_REQ_new());
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *ext = NULL;

    *out = NULL;
    if (!req || !X509_REQ_set_version(req, 0)
        || !X509_REQ_set_subject_name(req, subject)
        || !X509_REQ_set_pubkey(req, key)) {
        *err = apr_psprintf(p, "cannot make the CSR: %s",
                            ca_log_ssl_errors(p));
        return CA_ECRYPTO;
    }
    if (san_ext) {
        ext = X509_EXTENSION_dup(san_ext);
    }
    else if (sans && *sans) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
        ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_subject_alt_name, sans);
        if (!ext) {
            *err = apr_psprintf(p, "bad subjectAltName '%s' (use DNS:name, "
                                "IP:address, email:addr, URI:uri): %s", sans,
                                ca_log_ssl_errors(p));
            return CA_EBADINPUT;
        }
    }
    if (ext) {
        exts = sk_X509_EXTENSION_new_null();
        if (!exts || !sk_X509_EXTENSION_push(exts, ext)) {
            X509_EXTENSION_free(ext);
            sk_X509_EXTENSION_free(exts);
            *err = "out of memory";
            return CA_ECRYPTO;
        }
        if (!X509_REQ_add_extensions(req, exts)) {
            sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
            *err = apr_psprintf(p, "cannot add the subjectAltName: %s",
                                ca_log_ssl_errors(p));
            return CA_ECRYPTO;
        }
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    if (X509_REQ_sign(req, key, ca_sign_md(key)) <= 0) {
        *err = apr_psprintf(p, "cannot sign the CSR: %s",
                            ca_log_ssl_errors(p));
        return CA_ECRYPTO;
    }
    *out = req;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ text */

static const char *bio_text(apr_pool_t *p, BIO *bio)
{
    char *data = NULL;
    long n = bio ? BIO_get_mem_data(bio, &data) : 0;
    const char *s = n > 0 ? apr_pstrmemdup(p, data, (apr_size_t)n) : "";
    BIO_free(bio);
    return s;
}

const char *kc_name_oneline(apr_pool_t *p, const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio) {
        X509_NAME_print_ex(bio, name, 0,
                           (XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB)
                               | ASN1_STRFLGS_UTF8_CONVERT);
    }
    return bio_text(p, bio);
}

const char *kc_time_str(apr_pool_t *p, const ASN1_TIME *t)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio) {
        ASN1_TIME_print(bio, t);
    }
    return bio_text(p, bio);
}
