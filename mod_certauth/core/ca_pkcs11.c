/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_pkcs11.c: a CA key in a PKCS#11 token through OpenSSL's pkcs11 engine
 * (libp11).  ENGINE_* is deprecated in OpenSSL 3.0, and this file is where
 * its use is kept: OpenSSL 3.0 of Debian 12 has no pkcs11 provider. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_strings.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <p11-kit/uri.h>

#include "ca_ca.h"
#include "ca_log.h"
#include "ca_pkcs11.h"
#include "ca_util.h"

int ca_pkcs11_is_uri(const char *s)
{
    return s && !strncasecmp(s, "pkcs11:", 7);
}

/* The URI parsed by p11-kit: NULL with *err when malformed. */
static P11KitUri *parse(apr_pool_t *p, const char *uri, const char **err)
{
    P11KitUri *u = p11_kit_uri_new();
    int rc;

    if (!u) {
        *err = "out of memory";
        return NULL;
    }
    rc = p11_kit_uri_parse(uri, P11_KIT_URI_FOR_ANY, u);
    if (rc != P11_KIT_URI_OK) {
        *err = apr_psprintf(p, "%s is not a PKCS#11 URI (RFC 7512): %s", uri,
                            p11_kit_uri_message(rc));
        p11_kit_uri_free(u);
        return NULL;
    }
    if (p11_kit_uri_get_pin_value(u)) {
        *err = apr_psprintf(p, "PKCS#11 URI: pin-value is refused (the PIN "
                            "would stand in the configuration); give it with "
                            "file:, exec: or env: as for a key pass phrase");
        p11_kit_uri_free(u);
        return NULL;
    }
    return u;
}

apr_status_t ca_pkcs11_check_uri(apr_pool_t *p, const char *uri,
                                 const char **err)
{
    P11KitUri *u = parse(p, uri, err);
    if (!u) {
        return CA_ECONFIG;
    }
    p11_kit_uri_free(u);
    return APR_SUCCESS;
}

const char *ca_pkcs11_module(apr_pool_t *p, const char *uri)
{
    const char *err, *out = NULL;
    P11KitUri *u = parse(p, uri, &err);

    if (u && p11_kit_uri_get_module_path(u)) {
        out = apr_pstrdup(p, p11_kit_uri_get_module_path(u));
    }
    p11_kit_uri_free(u);
    return out;
}

typedef struct {
    ENGINE *e;
    EVP_PKEY *key;
} p11_hold_t;

/* The key first, then the engine's functional reference (the last one
 * finishes the engine: libp11 logs out, closes its sessions and unloads
 * the module), then its structural one. */
static apr_status_t hold_cleanup(void *data)
{
    p11_hold_t *h = data;

    EVP_PKEY_free(h->key);
    h->key = NULL;
    if (h->e) {
        ENGINE_finish(h->e);
        ENGINE_free(h->e);
        h->e = NULL;
    }
    ERR_clear_error();
    return APR_SUCCESS;
}

/* The engine's message, one line, without OpenSSL's location prefixes. */
static const char *why(apr_pool_t *p)
{
    unsigned long e;
    const char *out = NULL;
    char buf[256];

    while ((e = ERR_get_error())) {
        const char *r = ERR_reason_error_string(e);
        if (!r) {
            ERR_error_string_n(e, buf, sizeof(buf));
            r = buf;
        }
        out = out ? apr_pstrcat(p, out, "; ", r, NULL) : apr_pstrdup(p, r);
    }
    return out ? out : "no reason given";
}

apr_status_t ca_pkcs11_load_key(apr_pool_t *p, const char *uri,
                                const char *pin, EVP_PKEY **key,
                                const char **err)
{
    P11KitUri *u;
    p11_hold_t *h;
    const char *module = NULL, *q, *name;
    int ok;

    *key = NULL;
    *err = NULL;
    if (!(u = parse(p, uri, err))) {
        return CA_ECONFIG;
    }
    if (p11_kit_uri_get_module_path(u)) {
        module = apr_pstrdup(p, p11_kit_uri_get_module_path(u));
    }
    p11_kit_uri_free(u);
    /* libp11 0.4.12 refuses query attributes: the engine gets the path */
    q = strchr(uri, '?');
    name = q ? apr_pstrndup(p, uri, (apr_size_t)(q - uri)) : uri;

    ERR_clear_error();
    h = apr_pcalloc(p, sizeof(*h));
    h->e = ENGINE_by_id("pkcs11");
    if (!h->e) {
        ERR_clear_error();
        *err = "OpenSSL's pkcs11 engine cannot be loaded (Debian: install "
               "libengine-pkcs11-openssl)";
        return CA_ECONFIG;
    }
    apr_pool_cleanup_register(p, h, hold_cleanup, apr_pool_cleanup_null);
    /* libp11 prints its details to stderr (httpd's error log, unformatted);
     * the reasons come through OpenSSL's error queue anyway */
    ENGINE_ctrl_cmd_string(h->e, "QUIET", NULL, 0);
    ERR_clear_error();
    if (module && !ENGINE_ctrl_cmd_string(h->e, "MODULE_PATH", module, 0)) {
        *err = apr_psprintf(p, "pkcs11 engine: module %s: %s", module,
                            why(p));
        return CA_ECONFIG;
    }
    if (pin) {
        /* libp11 keeps its own copy (to log in again when a session is
         * lost) until the engine is finished */
        ok = ENGINE_ctrl_cmd_string(h->e, "PIN", pin, 0);
        if (!ok) {
            *err = apr_psprintf(p, "pkcs11 engine: PIN: %s", why(p));
            return CA_ECONFIG;
        }
    }
    if (!ENGINE_init(h->e)) {
        *err = apr_psprintf(p, "pkcs11 engine%s%s does not start: %s",
                            module ? " with module " : "",
                            module ? module : "", why(p));
        ENGINE_free(h->e);
        h->e = NULL;
        return CA_ECONFIG;
    }
    h->key = ENGINE_load_private_key(h->e, name, NULL, NULL);
    if (!h->key) {
        const char *r = why(p);
        *err = apr_psprintf(p, "no private key loaded from the token "
                            "(%s%s)",
                            strstr(r, "PIN") || strstr(r, "login")
                                ? "wrong PIN? "
                                : strstr(r, "not found")
                                ? "no such token or key? "
                                : !pin ? "no PIN configured? " : "", r);
        return CA_ECONFIG;
    }
    *key = h->key;
    return APR_SUCCESS;
}

apr_status_t ca_pkcs11_probe(apr_pool_t *p, const char *uri, const char *pin,
                             X509 *cert, const char **err)
{
    int fds[2], status = 0, late = 0;
    char buf[1024];
    apr_size_t total;
    pid_t pid;

    *err = NULL;
    if (pipe(fds) != 0) {
        *err = apr_psprintf(p, "cannot probe the token: %s", strerror(errno));
        return CA_ECONFIG;
    }
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        *err = apr_psprintf(p, "cannot probe the token: %s", strerror(errno));
        return CA_ECONFIG;
    }
    if (pid == 0) {
        /* the child: load, compare with the certificate, sign once */
        apr_pool_t *cp;
        EVP_PKEY *key = NULL;
        const char *reason = NULL;
        EVP_MD_CTX *md = NULL;
        unsigned char sig[1024];
        size_t siglen = sizeof(sig);

        close(fds[0]);
        apr_pool_create(&cp, NULL);
        if (ca_pkcs11_load_key(cp, uri, pin, &key, &reason)
            == APR_SUCCESS) {
            if (cert && X509_check_private_key(cert, key) != 1) {
                reason = "the key does not match the CA certificate";
            }
            else if (!(md = EVP_MD_CTX_new())
                     || EVP_DigestSignInit(md, NULL, ca_sign_md(key), NULL,
                                           key) != 1
                     || EVP_DigestSign(md, sig, &siglen,
                                       (const unsigned char *)"probe", 5)
                            != 1) {
                reason = apr_psprintf(cp, "the token does not sign with "
                                      "the key (%s)", why(cp));
            }
            EVP_MD_CTX_free(md);
        }
        if (reason && write(fds[1], reason, strlen(reason)) < 0) {
            _exit(2);
        }
        _exit(reason ? 1 : 0);
    }
    close(fds[1]);
    total = ca_child_collect(fds[0], pid, buf, sizeof(buf), CA_CHILD_SECS,
                             &status, &late);
    if (late) {
        *err = apr_psprintf(p, "the token probe gave no answer within %d s "
                            "(killed): is the token or its module hanging?",
                            CA_CHILD_SECS);
        return CA_ECONFIG;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return APR_SUCCESS;
    }
    *err = total ? apr_pstrdup(p, buf)
                 : apr_psprintf(p, "the token probe died (status %d)", status);
    return CA_ECONFIG;
}
