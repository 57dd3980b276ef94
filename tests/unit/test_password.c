/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests: the PKCS#12 password rule (ca_password) and the PKCS#12
 * friendly name, file name and iterations (ca_pkcs12), issue 16. */

#include <string.h>

#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "unit.h"
#include "ca_password.h"
#include "ca_pkcs12.h"
#include "ca_util.h"

static void test_rule(apr_pool_t *p)
{
    const ca_password_rule_t *r = &ca_password_rule;
    char long_pw[1100];

    (void)p;
    UT_CHECK(ca_password_problem("Correct-Horse-7-battery", "alice") == NULL);
    UT_CHECK(ca_password_problem("short1!", NULL) == r->too_short);
    /* ten characters counted as characters, not bytes: 5 x "é" + 5 digits */
    UT_CHECK(ca_password_problem("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                 "12345", NULL) == NULL);
    UT_CHECK(ca_password_problem("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" "12345",
                                 NULL) == r->too_short);
    /* upper and lower case letters are one kind: letters */
    UT_CHECK(ca_password_problem("Abcdefghij", NULL) == r->kinds);
    UT_CHECK(ca_password_problem("abcdefghijklmnop", NULL) == NULL);
    /* 16 times the same letter: the rule names it (different characters) */
    UT_CHECK(ca_password_problem("aaaaaaaaaaaaaaaa", NULL) == r->distinct);
    UT_CHECK(strstr(r->text, "5 different characters") != NULL);
    UT_CHECK(ca_password_problem("Password123", NULL) == r->guessable);
    UT_CHECK(ca_password_problem("myPassword123-and-more", NULL) == NULL);
    UT_CHECK(ca_password_problem("xx-alice-xx-2026", "alice") == r->login);
    UT_CHECK(ca_password_problem("xx-ALICE-xx-2026", "alice") == r->login);
    UT_CHECK(ca_password_problem("xx-alice-xx-2026", NULL) == NULL);
    /* a login too short to matter */
    UT_CHECK(ca_password_problem("xx-al-xx-2026", "al") == NULL);
    memset(long_pw, 'a', sizeof(long_pw) - 1);
    long_pw[sizeof(long_pw) - 1] = '\0';
    long_pw[0] = '1';
    long_pw[1] = '2';
    long_pw[2] = '3';
    long_pw[3] = '4';
    UT_CHECK(ca_password_problem(long_pw, NULL) == r->too_long);
    long_pw[1024] = '\0';
    UT_CHECK(ca_password_problem(long_pw, NULL) == NULL);
}

static void test_names_and_iterations(apr_pool_t *p)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *ca = X509_new(), *cert = X509_new();
    X509_NAME *n;
    unsigned char *der = NULL;
    const unsigned char *q;
    apr_size_t len = 0;
    const char *err = NULL, *fn;
    PKCS12 *p12;
    BIGNUM *bn = NULL;

    UT_CHECK(key && ca && cert);
    n = X509_get_subject_name(ca);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                               (const unsigned char *)"Example", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                               (const unsigned char *)"Example Root CA", -1,
                               -1, 0);
    n = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                               (const unsigned char *)"Alice Smith/x", -1, -1,
                               0);
    X509_set_issuer_name(cert, X509_get_subject_name(ca));
    BN_hex2bn(&bn, "1A2B3C4D5E6F");
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
    BN_free(bn);
    ASN1_TIME_set_string(X509_getm_notBefore(cert), "20260101000000Z");
    ASN1_TIME_set_string(X509_getm_notAfter(cert), "20271206120000Z");
    X509_set_pubkey(cert, key);
    X509_sign(cert, key, EVP_sha256());
    X509_set_issuer_name(ca, X509_get_subject_name(ca));
    X509_set_pubkey(ca, key);
    X509_sign(ca, key, EVP_sha256());

    fn = ca_pkcs12_friendly_name(p, cert, ca);
    UT_CHECK_MSG(!strcmp(fn, "Alice Smith/x (Example Root CA, until "
                             "2027-12-06, serial 1A2B3C4D)"), "%s", fn);
    fn = ca_pkcs12_file_name(p, cert);
    UT_CHECK_MSG(!strcmp(fn, "Alice_Smith_x-1A2B3C4D.p12"), "%s", fn);

    UT_CHECK(ca_pkcs12_make(p, key, cert, ca, NULL, "Correct-Horse-7",
                            "name", 0, &der, &len, &err) == APR_SUCCESS);
    UT_CHECK_MSG(err == NULL, "%s", err);
    q = der;
    p12 = d2i_PKCS12(NULL, &q, (long)len);
    UT_CHECK(p12 != NULL);
    if (p12) {
        const ASN1_INTEGER *iter = NULL;
        STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
        STACK_OF(PKCS12_SAFEBAG) *bags;
        const X509_ALGOR *alg;
        PBE2PARAM *pbe2;
        PBKDF2PARAM *kdf;
        int i;

        PKCS12_get0_mac(NULL, NULL, NULL, &iter, p12);
        UT_CHECK(iter && ASN1_INTEGER_get(iter) == CA_PKCS12_MAC_ITERATIONS);
        /* the key bag: PBES2 with PBKDF2, 100000 iterations */
        for (i = 0; safes && i < sk_PKCS7_num(safes); i++) {
            PKCS7 *p7 = sk_PKCS7_value(safes, i);
            if (OBJ_obj2nid(p7->type) != NID_pkcs7_data) {
                continue;
            }
            bags = PKCS12_unpack_p7data(p7);
            if (bags && sk_PKCS12_SAFEBAG_num(bags) > 0) {
                const X509_SIG *sig = PKCS12_SAFEBAG_get0_pkcs8(
                    sk_PKCS12_SAFEBAG_value(bags, 0));
                X509_SIG_get0(sig, &alg, NULL);
                pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM),
                                                 alg->parameter);
                kdf = pbe2 ? ASN1_TYPE_unpack_sequence(
                                 ASN1_ITEM_rptr(PBKDF2PARAM),
                                 pbe2->keyfunc->parameter) : NULL;
                UT_CHECK(kdf && ASN1_INTEGER_get(kdf->iter)
                                    == CA_PKCS12_ITERATIONS);
                PBKDF2PARAM_free(kdf);
                PBE2PARAM_free(pbe2);
            }
            sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
        }
        sk_PKCS7_pop_free(safes, PKCS7_free);
        PKCS12_free(p12);
    }
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(key);
}

int main(void)
{
    UT_RUN(test_rule);
    UT_RUN(test_names_and_iterations);
    return ut_finish();
}
