/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* admin_pkcs11.c: certauth-admin's key generation in a PKCS#11 token (init
 * --pkcs11 URI).  OpenSSL's pkcs11 engine signs with a key in a token but
 * makes none, so this talks PKCS#11 itself: p11-kit parses the URI, loads
 * the module (module-path, else every module registered with p11-kit) and
 * matches the token; the key pair is made with C_GenerateKeyPair, or an
 * existing private key with the URI's label/id is kept. */

#include <string.h>

#include <apr_strings.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "admin_pkcs11.h"
#include "ca_ca.h"
#include "ca_util.h"

typedef struct {
    CK_FUNCTION_LIST **mods;   /* NULL-terminated; registered modules     */
    CK_FUNCTION_LIST *one;     /* a module loaded by path                 */
    CK_FUNCTION_LIST *f;       /* the module holding the token            */
    CK_SESSION_HANDLE sess;
    int open, logged_in;
} p11_t;

static void p11_done(p11_t *c)
{
    if (c->logged_in) {
        c->f->C_Logout(c->sess);
    }
    if (c->open) {
        c->f->C_CloseSession(c->sess);
    }
    if (c->one) {
        p11_kit_module_finalize(c->one);
        p11_kit_module_release(c->one);
    }
    if (c->mods) {
        p11_kit_modules_finalize_and_release(c->mods);
    }
}

static const char *rv_text(apr_pool_t *p, CK_RV rv)
{
    return apr_psprintf(p, "%s (0x%lx)", p11_kit_strerror(rv),
                        (unsigned long)rv);
}

/* The first token of the modules that the URI matches. */
static int find_token(apr_pool_t *p, p11_t *c, P11KitUri *u,
                      CK_FUNCTION_LIST **mods, CK_SLOT_ID *slot,
                      const char **err)
{
    int m;

    for (m = 0; mods[m]; m++) {
        CK_SLOT_ID ids[64];
        CK_ULONG n = 64, i;
        CK_INFO minfo;

        if (mods[m]->C_GetInfo(&minfo) == CKR_OK
            && !p11_kit_uri_match_module_info(u, &minfo)) {
            continue;
        }
        if (mods[m]->C_GetSlotList(CK_TRUE, ids, &n) != CKR_OK) {
            continue;
        }
        for (i = 0; i < n; i++) {
            CK_TOKEN_INFO ti;
            if (mods[m]->C_GetTokenInfo(ids[i], &ti) == CKR_OK
                && p11_kit_uri_match_token_info(u, &ti)) {
                c->f = mods[m];
                *slot = ids[i];
                return 1;
            }
        }
    }
    *err = apr_psprintf(p, "no token matches the URI (softhsm2-util "
                        "--show-slots or p11tool --list-tokens shows them)");
    return 0;
}

apr_status_t admin_pkcs11_keygen(apr_pool_t *p, const char *uri,
                                 const char *pin_source,
                                 const char *key_type, int *created,
                                 const char **err)
{
    P11KitUri *u = p11_kit_uri_new();
    p11_t c;
    CK_SLOT_ID slot = 0;
    CK_RV rv;
    CK_ULONG nattrs = 0, i, found = 0;
    CK_ATTRIBUTE *attrs, *label = NULL, *id = NULL;
    CK_ATTRIBUTE find[3];
    CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY;
    CK_OBJECT_HANDLE obj, pubh, privh;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    const char *pin = NULL, *module;
    unsigned char idbuf[16], *params = NULL;
    int plen = 0, nfind = 0, ok = 0;
    CK_FUNCTION_LIST *single[2];

    memset(&c, 0, sizeof(c));
    *created = 0;
    *err = NULL;
    if (!u || p11_kit_uri_parse(uri, P11_KIT_URI_FOR_ANY, u)
                  != P11_KIT_URI_OK) {
        *err = apr_psprintf(p, "%s is not a PKCS#11 URI (RFC 7512)", uri);
        p11_kit_uri_free(u);
        return CA_EBADINPUT;
    }
    attrs = p11_kit_uri_get_attributes(u, &nattrs);
    for (i = 0; i < nattrs; i++) {
        if (attrs[i].type == CKA_LABEL) {
            label = &attrs[i];
        }
        else if (attrs[i].type == CKA_ID) {
            id = &attrs[i];
        }
    }
    if (!label) {
        *err = "the URI needs object=LABEL: the name of the key in the token";
        p11_kit_uri_free(u);
        return CA_EBADINPUT;
    }
    if (pin_source && !(pin = ca_secret_get(p, pin_source, uri, err))) {
        *err = apr_psprintf(p, "PIN: %s", *err);
        p11_kit_uri_free(u);
        return CA_EBADINPUT;
    }

    module = p11_kit_uri_get_module_path(u);
    if (module) {
        c.one = p11_kit_module_load(module, 0);
        if (!c.one) {
            *err = apr_psprintf(p, "cannot load PKCS#11 module %s: %s",
                                module, p11_kit_message());
            goto done;
        }
        if ((rv = p11_kit_module_initialize(c.one)) != CKR_OK) {
            p11_kit_module_release(c.one);
            c.one = NULL;
            *err = apr_psprintf(p, "PKCS#11 module %s: %s", module,
                                rv_text(p, rv));
            goto done;
        }
        single[0] = c.one;
        single[1] = NULL;
        if (!find_token(p, &c, u, single, &slot, err)) {
            goto done;
        }
    }
    else {
        c.mods = p11_kit_modules_load_and_initialize(0);
        if (!c.mods) {
            *err = apr_psprintf(p, "cannot load the PKCS#11 modules "
                                "registered with p11-kit: %s",
                                p11_kit_message());
            goto done;
        }
        if (!find_token(p, &c, u, c.mods, &slot, err)) {
            goto done;
        }
    }
    rv = c.f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                            NULL, &c.sess);
    if (rv != CKR_OK) {
        *err = apr_psprintf(p, "cannot open a session: %s", rv_text(p, rv));
        goto done;
    }
    c.open = 1;
    if (pin) {
        rv = c.f->C_Login(c.sess, CKU_USER, (CK_UTF8CHAR_PTR)pin,
                          (CK_ULONG)strlen(pin));
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            *err = apr_psprintf(p, "cannot log in to the token: %s%s",
                                rv_text(p, rv), rv == CKR_PIN_INCORRECT
                                    ? " (wrong PIN)" : "");
            goto done;
        }
        c.logged_in = rv == CKR_OK;
    }

    /* a private key with this label (and id) already there: keep it */
    find[nfind].type = CKA_CLASS;
    find[nfind].pValue = &priv_class;
    find[nfind++].ulValueLen = sizeof(priv_class);
    find[nfind++] = *label;
    if (id) {
        find[nfind++] = *id;
    }
    rv = c.f->C_FindObjectsInit(c.sess, find, (CK_ULONG)nfind);
    if (rv == CKR_OK) {
        rv = c.f->C_FindObjects(c.sess, &obj, 1, &found);
        c.f->C_FindObjectsFinal(c.sess);
    }
    if (rv != CKR_OK) {
        *err = apr_psprintf(p, "cannot search the token: %s", rv_text(p, rv));
        goto done;
    }
    if (found) {
        ok = 1;
        goto done;
    }

    {
        CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
        CK_ULONG bits = 3072;
        CK_BYTE exp[] = {0x01, 0x00, 0x01};
        CK_ATTRIBUTE pub[8], priv[9];
        CK_ULONG npub = 0, npriv = 0;
        CK_ATTRIBUTE idattr;
        int nid = NID_X9_62_prime256v1;

        if (!key_type || !strcmp(key_type, "ec")
            || !strcmp(key_type, "ec:P-256")) {
            nid = NID_X9_62_prime256v1;
        }
        else if (!strcmp(key_type, "ec:P-384")) {
            nid = NID_secp384r1;
        }
        else if (!strncmp(key_type, "rsa", 3)) {
            mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
            if (key_type[3] == ':') {
                bits = (CK_ULONG)apr_atoi64(key_type + 4);
            }
            if (bits < 2048 || bits > 16384) {
                *err = apr_psprintf(p, "key type %s: RSA keys of 2048 to "
                                    "16384 bits", key_type);
                goto done;
            }
        }
        else {
            *err = apr_psprintf(p, "key type %s cannot be made in a token "
                                "(ec, ec:P-384, rsa, rsa:BITS)", key_type);
            goto done;
        }
        if (!id) {
            /* an id as pkcs11-tool and p11tool make them, so that other
             * tools find the pair */
            if (RAND_bytes(idbuf, sizeof(idbuf)) != 1) {
                *err = "no randomness for the key id";
                goto done;
            }
            idattr.type = CKA_ID;
            idattr.pValue = idbuf;
            idattr.ulValueLen = sizeof(idbuf);
            id = &idattr;
        }
#define ATTR(a, n, t, v, l) do { a[n].type = (t); a[n].pValue = (v); \
        a[n].ulValueLen = (CK_ULONG)(l); n++; } while (0)
        ATTR(pub, npub, CKA_TOKEN, &yes, sizeof(yes));
        ATTR(pub, npub, CKA_VERIFY, &yes, sizeof(yes));
        ATTR(pub, npub, CKA_LABEL, label->pValue, label->ulValueLen);
        ATTR(pub, npub, CKA_ID, id->pValue, id->ulValueLen);
        if (mech.mechanism == CKM_EC_KEY_PAIR_GEN) {
            plen = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &params);
            if (plen <= 0) {
                *err = "cannot encode the curve";
                goto done;
            }
            ATTR(pub, npub, CKA_EC_PARAMS, params, plen);
        }
        else {
            ATTR(pub, npub, CKA_MODULUS_BITS, &bits, sizeof(bits));
            ATTR(pub, npub, CKA_PUBLIC_EXPONENT, exp, sizeof(exp));
        }
        ATTR(priv, npriv, CKA_TOKEN, &yes, sizeof(yes));
        ATTR(priv, npriv, CKA_PRIVATE, &yes, sizeof(yes));
        ATTR(priv, npriv, CKA_SENSITIVE, &yes, sizeof(yes));
        ATTR(priv, npriv, CKA_EXTRACTABLE, &no, sizeof(no));
        ATTR(priv, npriv, CKA_SIGN, &yes, sizeof(yes));
        ATTR(priv, npriv, CKA_LABEL, label->pValue, label->ulValueLen);
        ATTR(priv, npriv, CKA_ID, id->pValue, id->ulValueLen);
#undef ATTR
        rv = c.f->C_GenerateKeyPair(c.sess, &mech, pub, npub, priv, npriv,
                                    &pubh, &privh);
        if (rv != CKR_OK) {
            *err = apr_psprintf(p, "the token did not make the key pair: %s",
                                rv_text(p, rv));
            goto done;
        }
        *created = 1;
        ok = 1;
    }

done:
    OPENSSL_free(params);
    if (pin) {
        OPENSSL_cleanse((char *)pin, strlen(pin));
    }
    p11_done(&c);
    p11_kit_uri_free(u);
    return ok ? APR_SUCCESS : CA_ECONFIG;
}
