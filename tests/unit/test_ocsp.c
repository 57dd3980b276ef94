/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_ocsp: requests made and responses checked with OpenSSL's
 * own OCSP client functions (OCSP_cert_to_id, OCSP_request_add1_nonce,
 * OCSP_basic_verify, OCSP_resp_find_status, OCSP_check_nonce), statuses from
 * a real SQLite store (good, revoked with reason and invalidityDate,
 * superseded in and after its grace, unknown), SHA-1 and SHA-256 CertIDs,
 * another issuer, malformed requests, the GET form's decoding, the
 * delegated responder certificate and the CA key as signers. */

#include <string.h>
#include <time.h>
#include <unistd.h>

#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "unit.h"
#include "rawdb.h"
#include "ca_ca.h"
#include "ca_crl.h"
#include "ca_issue.h"
#include "ca_ocsp.h"
#include "ca_store.h"
#include "ca_util.h"

typedef struct fixture {
    ca_t *ca;
    ca_store_t *st;
    ca_ocsp_t *oc;
    X509 *good, *revoked, *grace, *after, *never;
    apr_int64_t t0;              /* the times stored are relative to it */
    const char *db;              /* the SQLite file                       */
} fixture;

static ca_t *make_ca(apr_pool_t *p, const char *dir, const char *kt,
                     const char *subject)
{
    ca_init_opts_t o;
    const char *cert = apr_pstrcat(p, dir, "/", kt, "-ca.pem", NULL);
    const char *key = apr_pstrcat(p, dir, "/", kt, "-key.pem", NULL);
    const char *err = NULL;
    ca_t *ca = NULL;

    memset(&o, 0, sizeof(o));
    o.key_type = kt;
    o.days = 30;
    o.subject = subject;
    if (ca_create(p, &o, cert, key, &err) != APR_SUCCESS
        || ca_load(&ca, p, cert, key, NULL, &err) != APR_SUCCESS) {
        fprintf(stderr, "make_ca: %s\n", err ? err : "?");
        abort();
    }
    return ca;
}

static apr_status_t name_free(void *n)
{
    X509_NAME_free(n);
    return APR_SUCCESS;
}

static X509 *issue(apr_pool_t *p, fixture *f, const char *cn, int store)
{
    ca_issue_req_t req;
    X509_NAME *name = X509_NAME_new();
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    const char *err = NULL;
    X509 *x = NULL;
    apr_status_t rv;

    apr_pool_cleanup_register(p, name, name_free, apr_pool_cleanup_null);
    ca_pool_pkey(p, key);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    memset(&req, 0, sizeof(req));
    req.profile = ca_profile_make(p, "user");
    req.subject = name;
    req.pubkey = key;
    req.owner = cn;
    req.base_url = "https://ca.example/ca";
    req.ocsp_url = "http://ocsp.example/ca/ocsp";
    rv = store ? ca_issue(p, f->ca, f->st, &req, &x, NULL, &err)
               : ca_cert_build(p, f->ca, &req, NULL, (apr_int64_t)time(NULL),
                               &x, &err);
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "issue: %s\n", err ? err : "?");
        abort();
    }
    return x;
}

static const char *ser(apr_pool_t *p, X509 *x)
{
    return ca_serial_hex(p, X509_get0_serialNumber(x));
}

static fixture *setup(apr_pool_t *p, const char *kt)
{
    fixture *f = apr_pcalloc(p, sizeof(*f));
    const char *dir = ut_tmpdir(p), *err = NULL;
    apr_int64_t now = (apr_int64_t)time(NULL);
    int version;

    f->t0 = now;
    f->ca = make_ca(p, dir, kt, "CN=OCSP Test CA,O=Example");
    f->db = apr_pstrcat(p, dir, "/db.sqlite", NULL);
    if (ca_store_open(&f->st, p, "sqlite3", f->db, &err)
            != APR_SUCCESS
        || ca_store_migrate(f->st, p, &version, &err) != APR_SUCCESS
        || ca_ocsp_init(&f->oc, p, f->ca) != APR_SUCCESS) {
        fprintf(stderr, "setup: %s\n", err ? err : "?");
        abort();
    }
    f->good = issue(p, f, "good", 1);
    f->revoked = issue(p, f, "revoked", 1);
    f->grace = issue(p, f, "grace", 1);
    f->after = issue(p, f, "after", 1);
    f->never = issue(p, f, "never", 0);
    if (ca_store_cert_set_status(f->st, p, ser(p, f->revoked),
                                 CA_STATUS_VALID, CA_STATUS_REVOKED,
                                 now - 100, CA_REASON_KEY_COMPROMISE,
                                 now - 200, NULL, NULL) != APR_SUCCESS
        || ca_store_cert_set_status(f->st, p, ser(p, f->grace),
                                    CA_STATUS_VALID, CA_STATUS_SUPERSEDED,
                                    now + 600, CA_REASON_SUPERSEDED, 0,
                                    "AA", NULL) != APR_SUCCESS
        || ca_store_cert_set_status(f->st, p, ser(p, f->after),
                                    CA_STATUS_VALID, CA_STATUS_SUPERSEDED,
                                    now - 60, CA_REASON_SUPERSEDED, 0,
                                    "AB", NULL) != APR_SUCCESS) {
        fprintf(stderr, "setup: %s\n", ca_store_last_error(f->st));
        abort();
    }
    return f;
}

static apr_status_t req_free(void *r)
{
    OCSP_REQUEST_free(r);
    return APR_SUCCESS;
}

/* DER of a request for certs (NULL-terminated) with OpenSSL's client
 * functions; nonce_len 0: none. */
static unsigned char *make_req(apr_pool_t *p, const ca_t *issuer,
                               const EVP_MD *md, X509 **certs, int nonce_len,
                               apr_size_t *len)
{
    OCSP_REQUEST *r = OCSP_REQUEST_new();
    unsigned char *der = NULL, *out;
    int i, n;

    apr_pool_cleanup_register(p, r, req_free, apr_pool_cleanup_null);
    for (i = 0; certs[i]; i++) {
        OCSP_CERTID *id = OCSP_cert_to_id(md, certs[i], issuer->cert);
        if (!id || !OCSP_request_add0_id(r, id)) {
            abort();
        }
    }
    if (nonce_len && !OCSP_request_add1_nonce(r, NULL, nonce_len)) {
        abort();
    }
    n = i2d_OCSP_REQUEST(r, &der);
    out = apr_pmemdup(p, der, (apr_size_t)n);
    OPENSSL_free(der);
    *len = (apr_size_t)n;
    return out;
}

static apr_status_t resp_free(void *r)
{
    OCSP_RESPONSE_free(r);
    return APR_SUCCESS;
}

static apr_status_t bs_free(void *r)
{
    OCSP_BASICRESP_free(r);
    return APR_SUCCESS;
}

static apr_status_t store_free(void *r)
{
    X509_STORE_free(r);
    return APR_SUCCESS;
}

/* Parse and verify a successful response against the CA (as `openssl ocsp
 * -CAfile` does). */
static OCSP_BASICRESP *verified(apr_pool_t *p, const ca_t *ca,
                                const unsigned char *der, apr_size_t len)
{
    const unsigned char *q = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &q, (long)len);
    OCSP_BASICRESP *bs;
    X509_STORE *store = X509_STORE_new();

    apr_pool_cleanup_register(p, store, store_free, apr_pool_cleanup_null);
    X509_STORE_add_cert(store, ca->cert);
    if (!resp) {
        return NULL;
    }
    apr_pool_cleanup_register(p, resp, resp_free, apr_pool_cleanup_null);
    if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL
        || !(bs = OCSP_response_get1_basic(resp))) {
        return NULL;
    }
    apr_pool_cleanup_register(p, bs, bs_free, apr_pool_cleanup_null);
    /* the issuer as a candidate signer, as `openssl ocsp -issuer` gives */
    {
        STACK_OF(X509) *other = sk_X509_new_null();
        int ok;
        sk_X509_push(other, ca->cert);
        ok = OCSP_basic_verify(bs, other, store, 0) == 1;
        sk_X509_free(other);
        if (ok) {
            return bs;
        }
    }
    {
        fprintf(stderr, "  verify: %s\n", ERR_reason_error_string(
                                              ERR_get_error()));
        return NULL;
    }
    return bs;
}

/* The status of cert in bs (OpenSSL's lookup by CertID). */
static int find(const ca_t *ca, OCSP_BASICRESP *bs, const EVP_MD *md,
                X509 *cert, int *reason, ASN1_GENERALIZEDTIME **rev,
                ASN1_GENERALIZEDTIME **tu, ASN1_GENERALIZEDTIME **nu)
{
    OCSP_CERTID *id = OCSP_cert_to_id(md, cert, ca->cert);
    int status = -1;

    *reason = -1;
    if (!OCSP_resp_find_status(bs, id, &status, reason, rev, tu, nu)) {
        status = -1;
    }
    OCSP_CERTID_free(id);
    return status;
}

static unsigned char *answer(apr_pool_t *p, fixture *f,
                             const ca_ocsp_signer_t *signer,
                             const unsigned char *der, apr_size_t len,
                             ca_ocsp_req_t **preq, apr_size_t *out_len,
                             apr_int64_t *next)
{
    apr_int64_t now = (apr_int64_t)time(NULL);
    ca_ocsp_req_t *req = ca_ocsp_parse(p, f->oc, der, len);
    ca_ocsp_status_t *st = NULL;
    unsigned char *out = NULL;
    const char *err = NULL;

    *preq = req;
    if (req->status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        return NULL;
    }
    UT_CHECK(ca_ocsp_lookup(p, f->st, req, now, &st) == APR_SUCCESS);
    UT_CHECK_MSG(ca_ocsp_respond(p, req, st, signer, now, 3600, &out,
                                 out_len, next, &err) == APR_SUCCESS,
                 "%s", err ? err : "");
    return out;
}

static ca_ocsp_signer_t *responder(apr_pool_t *p, fixture *f)
{
    ca_ocsp_signer_t *s = NULL;
    const char *pem = NULL, *err = NULL;
    UT_CHECK_MSG(ca_ocsp_responder_issue(p, f->ca, f->st, 2, NULL, &s, &pem,
                                         &err) == APR_SUCCESS,
                 "%s", err ? err : "");
    return s;
}

/* good, revoked (reason, time), superseded in and after its grace,
 * unknown: one request of five CertIDs, SHA-1 and SHA-256 */
static void test_statuses(apr_pool_t *p, const char *kt)
{
    fixture *f = setup(p, kt);
    ca_ocsp_signer_t *signer = responder(p, f);
    const EVP_MD *mds[2] = { EVP_sha1(), EVP_sha256() };
    int m;

    if (!signer) {
        return;
    }
    for (m = 0; m < 2; m++) {
        X509 *certs[] = { f->good, f->revoked, f->grace, f->after, f->never,
                          NULL };
        apr_size_t len, olen = 0;
        unsigned char *der = make_req(p, f->ca, mds[m], certs, 16, &len);
        ca_ocsp_req_t *req;
        apr_int64_t next = 0, now = (apr_int64_t)time(NULL);
        unsigned char *out = answer(p, f, signer, der, len, &req, &olen,
                                    &next);
        OCSP_BASICRESP *bs;
        ASN1_GENERALIZEDTIME *rev, *tu, *nu;
        int reason;

        UT_CHECK(req->status == OCSP_RESPONSE_STATUS_SUCCESSFUL);
        UT_CHECK(req->count == 5 && req->nonce && !req->cacheable);
        UT_CHECK(out != NULL);
        if (!out || !(bs = verified(p, f->ca, out, olen))) {
            UT_CHECK(0);
            continue;
        }
        {
            OCSP_REQUEST *r = OCSP_REQUEST_new();
            const unsigned char *q = der;
            d2i_OCSP_REQUEST(&r, &q, (long)len);
            UT_CHECK(OCSP_check_nonce(r, bs) == 1);
            OCSP_REQUEST_free(r);
        }
        UT_CHECK(find(f->ca, bs, mds[m], f->good, &reason, &rev, &tu, &nu)
                 == V_OCSP_CERTSTATUS_GOOD);
        UT_CHECK(OCSP_check_validity(tu, nu, 60, -1) == 1);
        UT_CHECK(find(f->ca, bs, mds[m], f->revoked, &reason, &rev, &tu,
                      &nu) == V_OCSP_CERTSTATUS_REVOKED);
        UT_CHECK(reason == CA_REASON_KEY_COMPROMISE);
        UT_CHECK(rev && ca_asn1_time_to_epoch(rev) == f->t0 - 100);
        UT_CHECK(find(f->ca, bs, mds[m], f->grace, &reason, &rev, &tu, &nu)
                 == V_OCSP_CERTSTATUS_GOOD);
        /* nextUpdate not after the end of the grace */
        UT_CHECK(next == f->t0 + 600 && now < f->t0 + 600);
        UT_CHECK(find(f->ca, bs, mds[m], f->after, &reason, &rev, &tu, &nu)
                 == V_OCSP_CERTSTATUS_REVOKED);
        UT_CHECK(reason == CA_REASON_SUPERSEDED);
        UT_CHECK(find(f->ca, bs, mds[m], f->never, &reason, &rev, &tu, &nu)
                 == V_OCSP_CERTSTATUS_UNKNOWN);
        /* the CertIDs come back with the client's algorithm */
        {
            const OCSP_CERTID *cid = OCSP_SINGLERESP_get0_id(
                OCSP_resp_get0(bs, 0));
            ASN1_OBJECT *alg = NULL;
            OCSP_id_get0_info(NULL, &alg, NULL, NULL, (OCSP_CERTID *)cid);
            UT_CHECK(OBJ_obj2nid(alg) == EVP_MD_get_type(mds[m]));
        }
        /* the revoked one carries its invalidityDate */
        {
            OCSP_CERTID *id = OCSP_cert_to_id(mds[m], f->revoked,
                                              f->ca->cert);
            int idx = OCSP_resp_find(bs, id, -1);
            OCSP_SINGLERESP *one = OCSP_resp_get0(bs, idx);
            OCSP_CERTID_free(id);
            ASN1_GENERALIZEDTIME *inv = one ? OCSP_SINGLERESP_get1_ext_d2i(
                                                  one, NID_invalidity_date,
                                                  NULL, NULL)
                                            : NULL;
            UT_CHECK(inv && ca_asn1_time_to_epoch(inv) == f->t0 - 200);
            ASN1_GENERALIZEDTIME_free(inv);
        }
        /* the delegated responder: its certificate sent, byKey */
        UT_CHECK(sk_X509_num(OCSP_resp_get0_certs(bs)) == 1);
        {
            const ASN1_OCTET_STRING *kid = NULL;
            const X509_NAME *nm = NULL;
            UT_CHECK(OCSP_resp_get0_id(bs, &kid, &nm) == 1 && kid && !nm);
        }
    }
}

static void test_statuses_ec(apr_pool_t *p)
{
    test_statuses(p, "ec");
}

static void test_statuses_rsa(apr_pool_t *p)
{
    test_statuses(p, "rsa:2048");
}

static void test_responder_certificate(apr_pool_t *p)
{
    fixture *f = setup(p, "ec");
    ca_ocsp_signer_t *s = NULL, *back = NULL;
    const char *pem = NULL, *err = NULL;
    ca_cert_row_t *row = NULL;
    fixture *other;

    UT_CHECK(ca_ocsp_responder_issue(p, f->ca, f->st, 2, NULL, &s, &pem,
                                     &err) == APR_SUCCESS);
    if (!s) {
        return;
    }
    UT_CHECK(X509_get_extended_key_usage(s->cert) == XKU_OCSP_SIGN);
    UT_CHECK(X509_get_ext_by_NID(s->cert, NID_id_pkix_OCSP_noCheck, -1)
             >= 0);
    UT_CHECK(X509_get_ext_by_NID(s->cert, NID_info_access, -1) < 0);
    UT_CHECK(s->not_after - s->not_before <= 2 * 86400 + 300);
    UT_CHECK(!s->is_ca);
    /* stored like every certificate */
    UT_CHECK(ca_store_cert_get(f->st, p, s->id, &row) == APR_SUCCESS
             && !strcmp(row->owner, "ocsp-responder"));
    /* its file back */
    UT_CHECK(ca_ocsp_signer_load(p, f->ca, pem, strlen(pem), &back, &err)
             == APR_SUCCESS && back && !strcmp(back->id, s->id));
    /* not for another CA */
    other = setup(p, "ec");
    UT_CHECK(ca_ocsp_signer_load(p, other->ca, pem, strlen(pem), &back,
                                 &err) != APR_SUCCESS);
    UT_CHECK(ca_ocsp_signer_load(p, f->ca, "junk", 4, &back, &err)
             != APR_SUCCESS);
}

static void test_ca_signer(apr_pool_t *p)
{
    fixture *f = setup(p, "ec");
    ca_ocsp_signer_t *s = ca_ocsp_signer_ca(p, f->ca);
    X509 *certs[] = { f->good, NULL };
    apr_size_t len, olen = 0;
    unsigned char *der = make_req(p, f->ca, EVP_sha1(), certs, 0, &len);
    ca_ocsp_req_t *req;
    apr_int64_t next = 0;
    unsigned char *out = answer(p, f, s, der, len, &req, &olen, &next);
    OCSP_BASICRESP *bs;
    ASN1_GENERALIZEDTIME *rev, *tu, *nu;
    int reason;

    UT_CHECK(req->cacheable && req->cache_key && strlen(req->cache_key) == 64);
    UT_CHECK(out && (bs = verified(p, f->ca, out, olen)));
    if (!out || !(bs = verified(p, f->ca, out, olen))) {
        return;
    }
    UT_CHECK(sk_X509_num(OCSP_resp_get0_certs(bs)) <= 0); /* none (NULL) */
    UT_CHECK(find(f->ca, bs, EVP_sha1(), f->good, &reason, &rev, &tu, &nu)
             == V_OCSP_CERTSTATUS_GOOD);
}

static void test_refused(apr_pool_t *p)
{
    fixture *f = setup(p, "ec"), *other = setup(p, "ec");
    apr_size_t len;
    unsigned char *der, *big;
    ca_ocsp_req_t *r;
    X509 *one[] = { f->good, NULL };
    X509 *many[CA_OCSP_MAX_CERTS + 2];
    int i;

    r = ca_ocsp_parse(p, f->oc, (const unsigned char *)"junk", 4);
    UT_CHECK(r->status == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    r = ca_ocsp_parse(p, f->oc, NULL, 0);
    UT_CHECK(r->status == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    der = make_req(p, f->ca, EVP_sha1(), one, 0, &len);
    r = ca_ocsp_parse(p, f->oc, der, len - 1);
    UT_CHECK(r->status == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    big = apr_palloc(p, len + 1);
    memcpy(big, der, len);
    big[len] = 0;
    r = ca_ocsp_parse(p, f->oc, big, len + 1);
    UT_CHECK(r->status == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    r = ca_ocsp_parse(p, f->oc, der, len);
    UT_CHECK(r->status == OCSP_RESPONSE_STATUS_SUCCESSFUL && r->cacheable);
    /* another issuer's hashes */
    r = ca_ocsp_parse(p, other->oc, der, len);
    UT_CHECK(r->status == OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    /* too many CertIDs; the bound itself passes */
    for (i = 0; i < CA_OCSP_MAX_CERTS + 1; i++) {
        many[i] = f->good;
    }
    many[CA_OCSP_MAX_CERTS + 1] = NULL;
    der = make_req(p, f->ca, EVP_sha1(), many, 0, &len);
    r = ca_ocsp_parse(p, f->oc, der, len);
    UT_CHECK(r->status == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    many[CA_OCSP_MAX_CERTS] = NULL;
    der = make_req(p, f->ca, EVP_sha1(), many, 0, &len);
    r = ca_ocsp_parse(p, f->oc, der, len);
    UT_CHECK(r->status == OCSP_RESPONSE_STATUS_SUCCESSFUL
             && r->count == CA_OCSP_MAX_CERTS && !r->cacheable);
    /* nonces of 1 and 32 octets pass, 33 does not */
    der = make_req(p, f->ca, EVP_sha1(), one, 1, &len);
    UT_CHECK(ca_ocsp_parse(p, f->oc, der, len)->status
             == OCSP_RESPONSE_STATUS_SUCCESSFUL);
    der = make_req(p, f->ca, EVP_sha1(), one, 32, &len);
    UT_CHECK(ca_ocsp_parse(p, f->oc, der, len)->status
             == OCSP_RESPONSE_STATUS_SUCCESSFUL);
    der = make_req(p, f->ca, EVP_sha1(), one, 33, &len);
    UT_CHECK(ca_ocsp_parse(p, f->oc, der, len)->status
             == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    /* an error response is well-formed */
    {
        unsigned char *e = NULL;
        apr_size_t el = 0;
        const unsigned char *q;
        OCSP_RESPONSE *resp;
        UT_CHECK(ca_ocsp_error_response(p, OCSP_RESPONSE_STATUS_TRYLATER,
                                        &e, &el) == APR_SUCCESS);
        q = e;
        resp = d2i_OCSP_RESPONSE(NULL, &q, (long)el);
        UT_CHECK(resp && OCSP_response_status(resp)
                             == OCSP_RESPONSE_STATUS_TRYLATER);
        OCSP_RESPONSE_free(resp);
    }
}

static void test_decode_get(apr_pool_t *p)
{
    const unsigned char raw[] = { 0xfb, 0xff, 0xfe, 0x30, 0x01 };
    unsigned char *out = NULL;
    apr_size_t len = 0;
    /* base64 "+//+MAE=", URL-encoded, base64url without padding */
    const char *forms[] = { "+//+MAE=", "%2B%2F%2F%2BMAE%3D", "-__-MAE",
                            "+//+MAE", NULL };
    int i;

    for (i = 0; forms[i]; i++) {
        UT_CHECK_MSG(ca_ocsp_decode_get(p, forms[i], &out, &len)
                         == APR_SUCCESS
                     && len == sizeof(raw) && !memcmp(out, raw, len),
                     "%s", forms[i]);
    }
    UT_CHECK(ca_ocsp_decode_get(p, "", &out, &len) == CA_EBADINPUT);
    UT_CHECK(ca_ocsp_decode_get(p, "!!!!", &out, &len) == CA_EBADINPUT);
    UT_CHECK(ca_ocsp_decode_get(p, "AB%", &out, &len) == CA_EBADINPUT);
    UT_CHECK(ca_ocsp_decode_get(p, "AB%zz", &out, &len) == CA_EBADINPUT);
    UT_CHECK(ca_ocsp_decode_get(p, "A", &out, &len) == CA_EBADINPUT);
}

static void test_status_of(apr_pool_t *p)
{
    ca_cert_row_t row;
    ca_ocsp_status_t st;
    (void)p;

    ca_ocsp_status_of(NULL, 1000, &st);
    UT_CHECK(st.status == V_OCSP_CERTSTATUS_UNKNOWN);
    memset(&row, 0, sizeof(row));
    row.status = CA_STATUS_REVOKED;
    row.revoked_at = 900;
    row.reason = CA_REASON_UNSPECIFIED;
    ca_ocsp_status_of(&row, 1000, &st);
    /* unspecified is sent as no reason, as on the CRL */
    UT_CHECK(st.status == V_OCSP_CERTSTATUS_REVOKED && st.reason == -1
             && st.revoked_at == 900);
    row.status = CA_STATUS_SUPERSEDED;
    row.revoked_at = 1000;
    ca_ocsp_status_of(&row, 999, &st);
    UT_CHECK(st.status == V_OCSP_CERTSTATUS_GOOD && st.changes_at == 1000);
    ca_ocsp_status_of(&row, 1000, &st);
    UT_CHECK(st.status == V_OCSP_CERTSTATUS_REVOKED
             && st.reason == CA_REASON_SUPERSEDED);
    row.status = CA_STATUS_VALID;
    ca_ocsp_status_of(&row, 1000, &st);
    UT_CHECK(st.status == V_OCSP_CERTSTATUS_GOOD && st.changes_at == 0);
}

static void test_aia_ocsp_url(apr_pool_t *p)
{
    fixture *f = setup(p, "ec");
    AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(f->good, NID_info_access,
                                                  NULL, NULL);
    int i, ocsp = -1, issuers = -1;

    UT_CHECK(aia != NULL);
    for (i = 0; aia && i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
        ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
        int nid = OBJ_obj2nid(ad->method);
        const char *uri = (const char *)ASN1_STRING_get0_data(
            ad->location->d.uniformResourceIdentifier);
        if (nid == NID_ad_OCSP
            && !strcmp(uri, "http://ocsp.example/ca/ocsp")) {
            ocsp = i;
        }
        if (nid == NID_ad_ca_issuers
            && !strcmp(uri, apr_pstrcat(p, "https://ca.example/ca/cacert/",
                                        ca_cert_key_id(p, f->ca->cert),
                                        ".crt", NULL))) {
            issuers = i;
        }
    }
    UT_CHECK(ocsp >= 0 && issuers >= 0);
    AUTHORITY_INFO_ACCESS_free(aia);
}


/* The lookup takes the issuing CA from the stored row (issuer_kid), not
 * by decoding each certificate per request; a row without one is
 * decoded. */
static void test_lookup_stored_issuer(apr_pool_t *p)
{
    fixture *f = setup(p, "ec");
    raw_t *raw = raw_open(p, f->db);
    X509 *certs[2] = {f->good, NULL};
    ca_cert_row_t *row = NULL;
    ca_ocsp_status_t *st = NULL;
    ca_ocsp_req_t *req;
    apr_size_t len = 0;
    apr_int64_t now = (apr_int64_t)time(NULL);
    const unsigned char *der = make_req(p, f->ca, EVP_sha256(), certs, 0,
                                        &len);
    const char *where = apr_psprintf(p, " WHERE serial = '%s'",
                                     ser(p, f->good));

    UT_CHECK(ca_store_cert_get(f->st, p, ser(p, f->good), &row)
             == APR_SUCCESS);
    UT_CHECK(row && row->issuer_kid
             && !strcmp(row->issuer_kid, ca_cert_key_id(p, f->ca->cert)));
    req = ca_ocsp_parse(p, f->oc, der, len);
    UT_CHECK(req->status == OCSP_RESPONSE_STATUS_SUCCESSFUL);
    UT_CHECK(ca_ocsp_lookup(p, f->st, req, now, &st) == APR_SUCCESS);
    UT_CHECK(st[0].status == V_OCSP_CERTSTATUS_GOOD);
    /* another issuer stored: the row is taken at its word (unknown) */
    UT_CHECK(raw_query(raw, apr_pstrcat(p, "UPDATE certauth_certs SET "
                                        "issuer_kid = '00FF'", where,
                                        NULL)) == 1);
    UT_CHECK(ca_ocsp_lookup(p, f->st, req, now, &st) == APR_SUCCESS);
    UT_CHECK(st[0].status == V_OCSP_CERTSTATUS_UNKNOWN);
    /* none stored: the certificate is decoded */
    UT_CHECK(raw_query(raw, apr_pstrcat(p, "UPDATE certauth_certs SET "
                                        "issuer_kid = ''", where,
                                        NULL)) == 1);
    UT_CHECK(ca_ocsp_lookup(p, f->st, req, now, &st) == APR_SUCCESS);
    UT_CHECK(st[0].status == V_OCSP_CERTSTATUS_GOOD);
}

/* CertIDs of two CA generations in one request (a rollover): each is
 * answered for its own generation, signed for the first's; one CertID of
 * no generation given refuses the request as before. */
static void test_mixed_generations(apr_pool_t *p)
{
    fixture *f = setup(p, "ec"), *other = setup(p, "ec");
    const ca_ocsp_t *both[2], *one[1];
    OCSP_REQUEST *r = OCSP_REQUEST_new();
    unsigned char *der = NULL, *out = NULL;
    ca_ocsp_status_t *st = NULL;
    ca_ocsp_signer_t *signer;
    ca_ocsp_req_t *req;
    apr_int64_t now = (apr_int64_t)time(NULL), next = 0;
    apr_size_t olen = 0;
    const char *err = NULL;
    int n;

    apr_pool_cleanup_register(p, r, req_free, apr_pool_cleanup_null);
    /* f->good (f), other->good (other), f->revoked (f) */
    OCSP_request_add0_id(r, OCSP_cert_to_id(EVP_sha1(), f->good,
                                            f->ca->cert));
    OCSP_request_add0_id(r, OCSP_cert_to_id(EVP_sha1(), other->good,
                                            other->ca->cert));
    OCSP_request_add0_id(r, OCSP_cert_to_id(EVP_sha256(), f->revoked,
                                            f->ca->cert));
    {
        unsigned char *tmp = NULL;
        n = i2d_OCSP_REQUEST(r, &tmp);
        UT_CHECK(n > 0);
        der = apr_pmemdup(p, tmp, (apr_size_t)(n > 0 ? n : 0));
        OPENSSL_free(tmp);
    }
    both[0] = f->oc;
    both[1] = other->oc;
    req = ca_ocsp_parse_gens(p, both, 2, der, (apr_size_t)n);
    UT_CHECK_MSG(req->status == OCSP_RESPONSE_STATUS_SUCCESSFUL, "%s",
                 req->detail ? req->detail : "");
    UT_CHECK(req->mixed && req->gen == 0 && !req->cacheable);
    UT_CHECK(req->gens[0] == 0 && req->gens[1] == 1 && req->gens[2] == 0);
    UT_CHECK(!strcmp(req->issuer_kids[1], ca_cert_key_id(p,
                                                         other->ca->cert)));
    UT_CHECK(!strcmp(req->issuer_kid, ca_cert_key_id(p, f->ca->cert)));
    /* the lookup asks each CertID's own generation: other->good is not
     * in f's store (unknown), f->revoked is revoked */
    UT_CHECK(ca_ocsp_lookup(p, f->st, req, now, &st) == APR_SUCCESS);
    UT_CHECK(st[0].status == V_OCSP_CERTSTATUS_GOOD);
    UT_CHECK(st[1].status == V_OCSP_CERTSTATUS_UNKNOWN);
    UT_CHECK(st[2].status == V_OCSP_CERTSTATUS_REVOKED);
    /* one response, a SingleResponse for each CertID (RFC 6960
     * 4.2.2.3), signed by the first CertID's CA */
    signer = ca_ocsp_signer_ca(p, f->ca);
    UT_CHECK(ca_ocsp_respond(p, req, st, signer, now, 3600, &out, &olen,
                             &next, &err) == APR_SUCCESS);
    {
        const unsigned char *q = out;
        OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &q, (long)olen);
        OCSP_BASICRESP *bs = resp ? OCSP_response_get1_basic(resp) : NULL;
        UT_CHECK(bs && OCSP_resp_count(bs) == 3);
        STACK_OF(X509) *signers = sk_X509_new_null();
        X509_STORE *store = X509_STORE_new();
        sk_X509_push(signers, f->ca->cert);
        /* the signature (the signer trusted as given: OCSP_TRUSTOTHER) */
        UT_CHECK(bs && OCSP_basic_verify(bs, signers, store,
                                         OCSP_TRUSTOTHER) == 1);
        /* and OpenSSL's issuer rule: mixed CertIDs are not accepted for
         * the CA alone, whose root is not explicitly trusted for OCSP
         * signing (ocsp_check_ids, then X509_check_trust) */
        X509_STORE_add_cert(store, f->ca->cert);
        UT_CHECK(bs && OCSP_basic_verify(bs, signers, store, 0) != 1);
        X509_STORE_free(store);
        sk_X509_free(signers);
        OCSP_BASICRESP_free(bs);
        OCSP_RESPONSE_free(resp);
        ERR_clear_error();
    }
    /* only f's generation known: the other's CertID refuses it */
    one[0] = f->oc;
    req = ca_ocsp_parse_gens(p, one, 1, der, (apr_size_t)n);
    UT_CHECK(req->status == OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    /* the other generation first: it signs */
    both[0] = other->oc;
    both[1] = f->oc;
    req = ca_ocsp_parse_gens(p, both, 2, der, (apr_size_t)n);
    UT_CHECK(req->status == OCSP_RESPONSE_STATUS_SUCCESSFUL
             && req->gen == 1 && req->gens[1] == 0 && req->mixed);
}

int main(void)
{
    UT_RUN(test_status_of);
    UT_RUN(test_decode_get);
    UT_RUN(test_statuses_ec);
    UT_RUN(test_statuses_rsa);
    UT_RUN(test_responder_certificate);
    UT_RUN(test_ca_signer);
    UT_RUN(test_refused);
    UT_RUN(test_aia_ocsp_url);
    UT_RUN(test_mixed_generations);
    UT_RUN(test_lookup_stored_issuer);
    return ut_finish();
}
