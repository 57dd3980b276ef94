/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* admin_pkcs11: make a CA key pair in a PKCS#11 token (certauth-admin). */
#ifndef ADMIN_PKCS11_H
#define ADMIN_PKCS11_H

#include <apr_pools.h>

/* Make a key pair in the token the URI names (its object= becomes the
 * label of both keys, its id= their id, else a random one), logged in with
 * the PIN from pin_source (file:, exec:, env:): key_type "ec" (P-256,
 * default), "ec:P-384", "rsa" (3072) or "rsa:BITS".  A private key with
 * that label (and id) there already is kept (*created 0).  The private key
 * is made sensitive and not extractable.  CA_EBADINPUT / CA_ECONFIG with
 * *err one line. */
apr_status_t admin_pkcs11_keygen(apr_pool_t *p, const char *uri,
                                 const char *pin_source,
                                 const char *key_type, int *created,
                                 const char **err);

#endif
