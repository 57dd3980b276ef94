/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_lifecycle.c (the CA's rules, written once) and of
 * ca_utf8_clean (the encoding layer's UTF-8 repair), without httpd. */

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <openssl/evp.h>

#include "unit.h"
#include "ca_crl.h"
#include "ca_csr.h"
#include "ca_ca.h"
#include "ca_lifecycle.h"
#include "ca_store.h"
#include "ca_subject.h"
#include "ca_util.h"

/* A migrated store in a fresh SQLite file. */
static ca_store_t *open_db(apr_pool_t *p)
{
    return ut_store(p, "sqlite3", ut_tmpdb(p), 1);
}

/* A valid row with 100 days left at `now`. */
static ca_cert_row_t *row_make(apr_pool_t *p, const char *serial,
                               const char *owner, apr_int64_t now)
{
    ca_cert_row_t *r = ut_cert_row(p, serial, owner, now);
    r->not_after = now + 100 * 86400;
    return r;
}

static void test_renewal(apr_pool_t *p)
{
    apr_int64_t now = 1700000000;
    ca_cert_row_t *old = row_make(p, "0A", "alice", now);
    ca_issue_req_t req;
    ca_profile_t prof;
    const char *err = NULL;

    /* 100 days left: a 30-day window is closed, a 120-day one open */
    UT_CHECK(ca_lc_renewal_opens(old->not_after, 30)
             == old->not_after - 30 * 86400);
    UT_CHECK(ca_lc_renewal_check(p, old, 30, now, &err) == CA_EPOLICY);
    UT_CHECK(err && strstr(err, "renewal opens 30 days before expiry"));
    UT_CHECK(ca_lc_renewal_check(p, old, 120, now, &err) == APR_SUCCESS);
    UT_CHECK(ca_lc_renewal_check(p, old, 30, old->not_after - 86400, &err)
             == APR_SUCCESS);
    /* expired, superseded: not renewable */
    UT_CHECK(ca_lc_renewal_check(p, old, 30, old->not_after, &err)
             == CA_ECONFLICT);
    old->status = CA_STATUS_SUPERSEDED;
    UT_CHECK(ca_lc_renewal_check(p, old, 120, now, &err) == CA_ECONFLICT);
    UT_CHECK(err && strstr(err, "superseded"));
    /* the renewal supersedes the old one and lifts the limits */
    memset(&req, 0, sizeof(req));
    memset(&prof, 0, sizeof(prof));
    prof.max_valid_per_owner = 3;
    prof.unique_subject = 1;
    ca_lc_renewal_prepare(&req, &prof, old, now, 600);
    UT_CHECK(!strcmp(req.supersede, "0A") && req.supersede_at == now + 600);
    UT_CHECK(!strcmp(req.owner, "alice"));
    UT_CHECK(prof.max_valid_per_owner == 0 && prof.unique_subject == 0);
    ca_lc_renewal_prepare(&req, &prof, old, now, -5);
    UT_CHECK(req.supersede_at == now);
}

static void test_reasons(apr_pool_t *p)
{
    const char *err = NULL;

    UT_CHECK(ca_lc_reason(p, NULL, &err) == CA_REASON_UNSPECIFIED);
    UT_CHECK(ca_lc_reason(p, "", &err) == CA_REASON_UNSPECIFIED);
    UT_CHECK(ca_lc_reason(p, "keyCompromise", &err)
             == CA_REASON_KEY_COMPROMISE);
    UT_CHECK(ca_lc_reason(p, "superseded", &err) == CA_REASON_SUPERSEDED);
    /* decided once, for HTTP and certauth-admin alike */
    err = NULL;
    UT_CHECK(ca_lc_reason(p, "cACompromise", &err) == -1);
    UT_CHECK(err && strstr(err, "end-entity"));
    UT_CHECK(ca_lc_reason(p, "aACompromise", &err) == -1);
    UT_CHECK(ca_lc_reason(p, "removeFromCRL", &err) == -1);
    err = NULL;
    UT_CHECK(ca_lc_reason(p, "bogus", &err) == -1);
    UT_CHECK(err && strstr(err, "bogus"));
}

static void test_may_revoke(apr_pool_t *p)
{
    ca_cert_row_t *row = row_make(p, "0B", "alice", 1700000000);
    ca_lc_actor_t a;
    const char *err = NULL;

    memset(&a, 0, sizeof(a));
    UT_CHECK(ca_lc_may_revoke(p, &a, row, &err) == CA_EPOLICY);
    a.login = "bob";
    UT_CHECK(ca_lc_may_revoke(p, &a, row, &err) == CA_EPOLICY);
    a.login = "alice";
    UT_CHECK(ca_lc_may_revoke(p, &a, row, &err) == APR_SUCCESS);
    a.login = NULL;
    a.cert_owner = "alice";
    UT_CHECK(ca_lc_may_revoke(p, &a, row, &err) == APR_SUCCESS);
    /* bob's login beside alice's certificate: alice's certificates */
    a.login = "bob";
    UT_CHECK(ca_lc_may_revoke(p, &a, row, &err) == APR_SUCCESS);
    a.login = "bob";
    a.cert_owner = NULL;
    a.admin = 1;
    UT_CHECK(ca_lc_may_revoke(p, &a, row, &err) == APR_SUCCESS);
    row->status = CA_STATUS_REVOKED;
    row->reason = CA_REASON_KEY_COMPROMISE;
    UT_CHECK(ca_lc_may_revoke(p, &a, row, &err) == CA_ECONFLICT);
    UT_CHECK(err && strstr(err, "keyCompromise"));
}

static void test_revoke_cascade(apr_pool_t *p)
{
    ca_store_t *st = open_db(p);
    apr_int64_t now = 1700000000;
    apr_array_header_t *cascaded = apr_array_make(p, 2, sizeof(char *));
    ca_cert_row_t *row = NULL;
    const char *err = NULL, *parent = NULL;
    const char *serials[] = {"01", "02", "03", "04", "05"};
    int i;

    if (!st) {
        return;
    }
    for (i = 0; i < 5; i++) {
        UT_CHECK(ca_store_cert_insert(st, p, row_make(p, serials[i], "bob",
                                                      now))
                 == APR_SUCCESS);
    }
    /* 01 authorised 02, 02 authorised 03; 04 is unrelated; 05 by 01 but
     * already revoked */
    UT_CHECK(ca_store_link_add(st, p, "02", "01") == APR_SUCCESS);
    UT_CHECK(ca_store_link_add(st, p, "03", "02") == APR_SUCCESS);
    UT_CHECK(ca_store_link_add(st, p, "05", "01") == APR_SUCCESS);
    UT_CHECK(ca_store_link_parent(st, p, "03", &parent) == APR_SUCCESS
             && parent && !strcmp(parent, "02"));
    UT_CHECK(ca_store_link_parent(st, p, "04", &parent) == APR_SUCCESS
             && !parent);
    UT_CHECK(ca_lc_revoke(p, st, "05", CA_REASON_SUPERSEDED, now, 0, &row,
                          NULL, &err) == APR_SUCCESS);
    /* not keyCompromise: nothing else */
    UT_CHECK(ca_lc_revoke(p, st, "02", CA_REASON_AFFILIATION_CHANGED, now,
                          0, &row, cascaded, &err) == APR_SUCCESS);
    UT_CHECK(cascaded->nelts == 0);
    UT_CHECK(ca_store_cert_get(st, p, "03", &row) == APR_SUCCESS
             && !strcmp(row->status, CA_STATUS_VALID));
    /* keyCompromise of 01: 02 (revoked already) is passed, its child 03
     * is revoked; 05 was revoked already; 04 stays */
    UT_CHECK(ca_lc_revoke(p, st, "01", CA_REASON_KEY_COMPROMISE, now, 0,
                          &row, cascaded, &err) == APR_SUCCESS);
    UT_CHECK(cascaded->nelts == 1
             && !strcmp(APR_ARRAY_IDX(cascaded, 0, const char *), "03"));
    UT_CHECK(ca_store_cert_get(st, p, "03", &row) == APR_SUCCESS
             && !strcmp(row->status, CA_STATUS_REVOKED)
             && row->reason == CA_REASON_KEY_COMPROMISE);
    UT_CHECK(ca_store_cert_get(st, p, "04", &row) == APR_SUCCESS
             && !strcmp(row->status, CA_STATUS_VALID));
    UT_CHECK(ca_lc_revoke(p, st, "01", CA_REASON_KEY_COMPROMISE, now, 0,
                          &row, cascaded, &err) == CA_ECONFLICT);
    UT_CHECK(ca_lc_revoke(p, st, "7F", CA_REASON_KEY_COMPROMISE, now, 0,
                          &row, cascaded, &err) == CA_ENOTFOUND);
}

static void test_limits(apr_pool_t *p)
{
    ca_store_t *st = open_db(p);
    apr_int64_t now = 1700000000;
    ca_profile_t prof;
    const char *err = NULL;

    if (!st) {
        return;
    }
    memset(&prof, 0, sizeof(prof));
    prof.name = "default";
    UT_CHECK(ca_lc_limits_check(p, st, &prof, "bob", NULL, now, &err)
             == APR_SUCCESS);
    prof.max_valid_per_owner = 1;
    UT_CHECK(ca_lc_limits_check(p, st, &prof, "bob", NULL, now, &err)
             == APR_SUCCESS);
    UT_CHECK(ca_store_cert_insert(st, p, row_make(p, "11", "bob", now))
             == APR_SUCCESS);
    UT_CHECK(ca_lc_limits_check(p, st, &prof, "bob", NULL, now, &err)
             == CA_ECONFLICT);
    UT_CHECK(err && strstr(err, "at most 1"));
    UT_CHECK(ca_lc_limits_check(p, st, &prof, "alice", NULL, now, &err)
             == APR_SUCCESS);
    /* unique subjects: "CN=bob" is taken (row_make), "CN=carol" free */
    prof.max_valid_per_owner = 0;
    prof.unique_subject = 1;
    UT_CHECK(ca_lc_limits_check(p, st, &prof, "alice", "CN=bob", now, &err)
             == CA_ECONFLICT);
    UT_CHECK(err && strstr(err, "unique subjects"));
    UT_CHECK(ca_lc_limits_check(p, st, &prof, "alice", "CN=carol", now,
                                &err) == APR_SUCCESS);
}

static void test_approval(apr_pool_t *p)
{
    (void)p;
    UT_CHECK(!strcmp(ca_lc_approval_next("pending", CA_LC_APPROVE),
                     "approved"));
    UT_CHECK(!strcmp(ca_lc_approval_next("pending", CA_LC_REJECT),
                     "rejected"));
    UT_CHECK(!strcmp(ca_lc_approval_next("approved", CA_LC_ISSUED),
                     "issued"));
    UT_CHECK(!ca_lc_approval_next("pending", CA_LC_ISSUED));
    UT_CHECK(!ca_lc_approval_next("approved", CA_LC_APPROVE));
    UT_CHECK(!ca_lc_approval_next("rejected", CA_LC_APPROVE));
    UT_CHECK(!ca_lc_approval_next("issued", CA_LC_REJECT));
    UT_CHECK(!ca_lc_approval_next(NULL, CA_LC_APPROVE));
}

static void test_crl_refresh(apr_pool_t *p)
{
    (void)p;
    UT_CHECK(ca_lc_crl_refresh_due(0, 0, 0, 100, 0, 60));
    /* a week's CRL: due at half its validity */
    UT_CHECK(!ca_lc_crl_refresh_due(1, 1000, 1000 + 7 * 86400, 2000, 5, 60));
    UT_CHECK(ca_lc_crl_refresh_due(1, 1000, 1000 + 7 * 86400,
                                   1000 + 7 * 43200, 5, 60));
    /* the store was checked a minute ago or more */
    UT_CHECK(ca_lc_crl_refresh_due(1, 1000, 1000 + 7 * 86400, 2000, 60, 60));
}

static EVP_PKEY *key_of(apr_pool_t *p, const char *type)
{
    EVP_PKEY *k = NULL;
    const char *err = NULL;
    UT_CHECK(ca_key_generate(p, type, &k, &err) == APR_SUCCESS);
    return k;
}

static void test_server_key_type(apr_pool_t *p)
{
    ca_key_policy_t kp;

    ca_key_policy_default(&kp);
    UT_CHECK(!strcmp(ca_lc_server_key_type(p, &kp, NULL), "ec:P-256"));
    UT_CHECK(!strcmp(ca_lc_server_key_type(p, &kp, key_of(p, "ec:P-384")),
                     "ec:P-384"));
    UT_CHECK(!strcmp(ca_lc_server_key_type(p, &kp, key_of(p, "rsa:2048")),
                     "rsa:2048"));
    UT_CHECK(!strcmp(ca_lc_server_key_type(p, &kp, key_of(p, "ed25519")),
                     "ed25519"));
    /* the profile does not allow the CSR's key: its default */
    kp.allow_rsa = 0;
    UT_CHECK(!strcmp(ca_lc_server_key_type(p, &kp, key_of(p, "rsa:2048")),
                     "ec:P-256"));
    kp.allow_rsa = 1;
    kp.allow_p256 = kp.allow_p384 = kp.allow_ed25519 = 0;
    kp.rsa_min_bits = 3072;
    UT_CHECK(!strcmp(ca_lc_server_key_type(p, &kp, key_of(p, "rsa:2048")),
                     "rsa:3072"));
    UT_CHECK(!strcmp(ca_lc_server_key_type(p, &kp, key_of(p, "ec:P-256")),
                     "rsa:3072"));
}

static void test_utf8_clean(apr_pool_t *p)
{
    const char *ok = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91 plain";

    UT_CHECK(ca_utf8_clean(p, NULL) == NULL);
    UT_CHECK(ca_utf8_clean(p, ok) == ok);        /* valid: unchanged */
    UT_CHECK(!strcmp(ca_utf8_clean(p, "a\xff\xfe" "b"), "a\\xFF\\xFEb"));
    /* overlong, surrogate, above U+10FFFF, truncated */
    UT_CHECK(!strcmp(ca_utf8_clean(p, "\xc0\xaf"), "\\xC0\\xAF"));
    UT_CHECK(!strcmp(ca_utf8_clean(p, "\xed\xa0\x80"), "\\xED\\xA0\\x80"));
    UT_CHECK(!strcmp(ca_utf8_clean(p, "\xf4\x90\x80\x80"),
                     "\\xF4\\x90\\x80\\x80"));
    UT_CHECK(!strcmp(ca_utf8_clean(p, "x\xc3"), "x\\xC3"));
    UT_CHECK(!strcmp(ca_utf8_clean(p, "\xc3\xa9\xff"), "\xc3\xa9\\xFF"));
}

/* chars= sets (ca_subject.c): '-' first or last is itself; ranges only
 * within one class, so the protogeni profile's old "a-zA-Z0-9.-_" (the
 * range . to _) is refused at start-up */
static void test_charset(apr_pool_t *p)
{
    apr_array_header_t *rules = apr_array_make(p, 1, sizeof(ca_rdn_rule_t));
    ca_rdn_rule_t *rule = apr_array_push(rules);
    X509_NAME *name = NULL;
    const char *err = NULL, *bad[] = {"a<b", "a>b", "a@b", "a[b", "a]b",
                                      "a\\b", "a^b", "a=b", "a b", NULL};
    int i;

    UT_CHECK(ca_charset_valid("a-zA-Z0-9._-"));
    UT_CHECK(ca_charset_valid("-a-z"));
    UT_CHECK(ca_charset_valid("a-zA-Z0-9.*-"));
    UT_CHECK(!ca_charset_valid("a-zA-Z0-9.-_"));
    UT_CHECK(!ca_charset_valid("z-a"));
    UT_CHECK(!ca_charset_valid("0-z"));
    UT_CHECK(!ca_charset_valid(""));
    memset(rule, 0, sizeof(*rule));
    rule->nid = NID_organizationalUnitName;
    rule->kind = CA_RDN_TEMPLATE;
    rule->charset = "a-zA-Z0-9._-";
    rule->value = "example.org.ann-marie_2";
    UT_CHECK_MSG(ca_subject_build(p, rules, NULL, NULL, &name, &err)
                 == APR_SUCCESS, "%s", err ? err : "");
    for (i = 0; bad[i]; i++) {
        rule->value = apr_pstrcat(p, "example.org.", bad[i], NULL);
        name = NULL;
        UT_CHECK_MSG(ca_subject_build(p, rules, NULL, NULL, &name, &err)
                     == CA_EPOLICY, "%s", bad[i]);
    }
}

int main(void)
{
    UT_RUN(test_charset);
    UT_RUN(test_renewal);
    UT_RUN(test_reasons);
    UT_RUN(test_may_revoke);
    UT_RUN(test_revoke_cascade);
    UT_RUN(test_limits);
    UT_RUN(test_approval);
    UT_RUN(test_crl_refresh);
    UT_RUN(test_server_key_type);
    UT_RUN(test_utf8_clean);
    return ut_finish();
}
