/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_pkcs11: a CA private key kept in a PKCS#11 token, named by an RFC 7512
 * URI ("pkcs11:token=ca;object=cakey;type=private").  The only unit of the
 * core that knows how such a key is reached: today OpenSSL's pkcs11 engine
 * (libp11, Debian's libengine-pkcs11-openssl: OpenSSL 3.0 in Debian 12
 * has no pkcs11 provider); a provider can replace this file alone.
 *
 * The URI is checked with p11-kit's RFC 7512 parser.  Its query attribute
 * module-path names the PKCS#11 module (e.g. ?module-path=/usr/lib/softhsm/
 * libsofthsm2.so); without it the engine's default module is used (p11-kit's
 * proxy, which loads the modules registered with p11-kit).  The PIN never
 * stands in the URI (pin-value is refused): it comes from the same sources
 * as a key file's pass phrase (file:, exec:, env:), read once by the
 * process that loads the CA (httpd's parent, as root) and kept in memory
 * for the children, which run as the httpd user and need no access to
 * the PIN's source.
 *
 * PKCS#11 forbids using a module's sessions across fork(), and libp11
 * 0.4.12 does not finalise the module when the engine is finished (its
 * cached keys keep the engine referenced): a process that forks (httpd's
 * parent) never loads the module itself.  It checks the key in a child
 * process of its own (ca_pkcs11_probe) and each of its children loads the
 * key after fork (CA_LOAD_KEY_LATER and ca_key_reopen in ca_ca.h). */
#ifndef CA_PKCS11_H
#define CA_PKCS11_H

#include <apr_pools.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* The string is a PKCS#11 URI (begins with "pkcs11:", any case). */
int ca_pkcs11_is_uri(const char *s);

/* Check the URI (RFC 7512 syntax, no pin-value) without loading anything;
 * CA_ECONFIG with *err. */
apr_status_t ca_pkcs11_check_uri(apr_pool_t *p, const char *uri,
                                 const char **err);

/* Load the private key the URI names, logging in with `pin` (NULL: no
 * login; callers get it with ca_secret_get from file:, exec:, env:).  The
 * key, the session and the module are released with pool p.  Errors:
 * CA_ECONFIG with *err one line (engine missing, module not loadable, no
 * such token or key, wrong PIN). */
apr_status_t ca_pkcs11_load_key(apr_pool_t *p, const char *uri,
                                const char *pin, EVP_PKEY **key,
                                const char **err);

/* In a child process (fork; the caller never loads the module): load the
 * key, check it matches `cert` (when not NULL) and make one signature.
 * CA_ECONFIG with *err the child's one-line reason. */
apr_status_t ca_pkcs11_probe(apr_pool_t *p, const char *uri, const char *pin,
                             X509 *cert, const char **err);

/* The PKCS#11 module a URI names (its module-path), or NULL: the engine's
 * default.  For tools that talk to the module directly. */
const char *ca_pkcs11_module(apr_pool_t *p, const char *uri);

#endif
