/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_ocsp.c: the OCSP responder's decisions; encoding by OpenSSL. */

#include <string.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_ocsp.h"
#include "ca_crl.h"
#include "ca_issue.h"
#include "ca_log.h"
#include "ca_util.h"

#define N_MDS 5

struct ca_ocsp_t {
    struct {
        int nid;
        unsigned char name[EVP_MAX_MD_SIZE];
        unsigned char key[EVP_MAX_MD_SIZE];
        unsigned int len;
    } h[N_MDS];
    const char *kid;             /* the CA's key identifier (ca_cert_key_id) */
};

apr_status_t ca_ocsp_init(ca_ocsp_t **out, apr_pool_t *p, const ca_t *ca)
{
    static const int nids[N_MDS] = { NID_sha1, NID_sha224, NID_sha256,
                                     NID_sha384, NID_sha512 };
    ca_ocsp_t *oc = apr_pcalloc(p, sizeof(*oc));
    int i;

    for (i = 0; i < N_MDS; i++) {
        const EVP_MD *md = EVP_get_digestbynid(nids[i]);
        unsigned int nlen = 0, klen = 0;
        oc->h[i].nid = nids[i];
        if (!md || !X509_NAME_digest(X509_get_subject_name(ca->cert), md,
                                     oc->h[i].name, &nlen)
            || !X509_pubkey_digest(ca->cert, md, oc->h[i].key, &klen)
            || nlen != klen) {
            ERR_clear_error();
            return CA_ECRYPTO;
        }
        oc->h[i].len = nlen;
    }
    oc->kid = ca_cert_key_id(p, ca->cert);
    *out = oc;
    return APR_SUCCESS;
}

static apr_status_t free_req(void *d)
{
    OCSP_REQUEST_free(d);
    return APR_SUCCESS;
}

static ca_ocsp_req_t *refuse(ca_ocsp_req_t *r, int status, const char *detail)
{
    r->status = status;
    r->detail = detail;
    r->cacheable = 0;
    return r;
}

/* The nonce's length: the extension's value is an OCTET STRING holding
 * (RFC 6960 4.4.1) an OCTET STRING; some clients put the octets directly. */
static int nonce_len(X509_EXTENSION *ext)
{
    ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
    const unsigned char *q = v->data;
    ASN1_OCTET_STRING *in = d2i_ASN1_OCTET_STRING(NULL, &q, v->length);
    int n = v->length;

    if (in && q == v->data + v->length) {
        n = ASN1_STRING_length(in);
    }
    ASN1_OCTET_STRING_free(in);
    ERR_clear_error();
    return n;
}

ca_ocsp_req_t *ca_ocsp_parse(apr_pool_t *p, const ca_ocsp_t *oc,
                             const unsigned char *der, apr_size_t len)
{
    return ca_ocsp_parse_gens(p, oc ? &oc : NULL, oc ? 1 : 0, der, len);
}

/* The generation (index in ocs) whose hashes the CertID carries with the
 * digest at h (index in ca_ocsp_t.h), or -1. */
static int gen_of(const ca_ocsp_t *const *ocs, int n_gens, int h,
                  const ASN1_OCTET_STRING *nh, const ASN1_OCTET_STRING *kh)
{
    int g;

    for (g = 0; g < n_gens; g++) {
        const ca_ocsp_t *oc = ocs[g];
        if (ASN1_STRING_length(nh) == (int)oc->h[h].len
            && ASN1_STRING_length(kh) == (int)oc->h[h].len
            && !memcmp(ASN1_STRING_get0_data(nh), oc->h[h].name,
                       oc->h[h].len)
            && !memcmp(ASN1_STRING_get0_data(kh), oc->h[h].key,
                       oc->h[h].len)) {
            return g;
        }
    }
    return -1;
}

ca_ocsp_req_t *ca_ocsp_parse_gens(apr_pool_t *p,
                                  const ca_ocsp_t *const *ocs, int n_gens,
                                  const unsigned char *der, apr_size_t len)
{
    ca_ocsp_req_t *r = apr_pcalloc(p, sizeof(*r));
    const unsigned char *q = der;
    int i, n, any_single_ext = 0;

    r->status = OCSP_RESPONSE_STATUS_SUCCESSFUL;
    r->issuer_kid = n_gens > 0 ? ocs[0]->kid : NULL;
    if (!der || len == 0 || len > 1024 * 1024
        || !(r->req = d2i_OCSP_REQUEST(NULL, &q, (long)len))) {
        ERR_clear_error();
        return refuse(r, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                      "not an OCSP request (DER)");
    }
    apr_pool_cleanup_register(p, r->req, free_req, apr_pool_cleanup_null);
    if (q != der + len) {
        return refuse(r, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                      "data after the OCSP request");
    }
    n = OCSP_request_onereq_count(r->req);
    if (n < 1) {
        return refuse(r, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                      "no certificate in the request");
    }
    if (n > CA_OCSP_MAX_CERTS) {
        return refuse(r, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                      apr_psprintf(p, "%d certificates in one request (at "
                                   "most %d)", n, CA_OCSP_MAX_CERTS));
    }
    /* request extensions: the nonce; unknown critical ones are refused */
    for (i = 0; i < OCSP_REQUEST_get_ext_count(r->req); i++) {
        X509_EXTENSION *ext = OCSP_REQUEST_get_ext(r->req, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
        if (nid == NID_id_pkix_OCSP_Nonce) {
            int nl = nonce_len(ext);
            if (r->nonce) {
                return refuse(r, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                              "two nonces");
            }
            if (nl < 1 || nl > CA_OCSP_MAX_NONCE) {
                return refuse(r, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                              apr_psprintf(p, "nonce of %d octets (RFC 8954: "
                                           "1 to %d)", nl,
                                           CA_OCSP_MAX_NONCE));
            }
            r->nonce = 1;
        }
        else if (X509_EXTENSION_get_critical(ext)) {
            return refuse(r, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                          "unknown critical request extension");
        }
    }
    r->count = n;
    r->serials = apr_pcalloc(p, sizeof(*r->serials) * (apr_size_t)n);
    r->gens = apr_pcalloc(p, sizeof(*r->gens) * (apr_size_t)n);
    r->issuer_kids = apr_pcalloc(p, sizeof(*r->issuer_kids) * (apr_size_t)n);
    for (i = 0; i < n; i++) {
        OCSP_ONEREQ *one = OCSP_request_onereq_get0(r->req, i);
        OCSP_CERTID *cid = OCSP_onereq_get0_id(one);
        ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
        ASN1_OBJECT *alg = NULL;
        ASN1_INTEGER *serial = NULL;
        int nid, j, k;

        if (OCSP_ONEREQ_get_ext_count(one) > 0) {
            any_single_ext = 1;
            for (k = 0; k < OCSP_ONEREQ_get_ext_count(one); k++) {
                if (X509_EXTENSION_get_critical(OCSP_ONEREQ_get_ext(one, k))) {
                    return refuse(r, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                                  "unknown critical single request "
                                  "extension");
                }
            }
        }
        if (!OCSP_id_get0_info(&nh, &alg, &kh, &serial, cid)) {
            return refuse(r, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                          "incomplete CertID");
        }
        nid = OBJ_obj2nid(alg);
        for (j = 0; n_gens > 0 && j < N_MDS && ocs[0]->h[j].nid != nid;
             j++) {
        }
        if (n_gens < 1 || j == N_MDS) {
            return refuse(r, OCSP_RESPONSE_STATUS_UNAUTHORIZED,
                          "CertID hash algorithm not supported");
        }
        /* each CertID is answered for the CA generation it names */
        if ((r->gens[i] = gen_of(ocs, n_gens, j, nh, kh)) < 0) {
            return refuse(r, OCSP_RESPONSE_STATUS_UNAUTHORIZED,
                          "a certificate of another issuer");
        }
        r->issuer_kids[i] = ocs[r->gens[i]]->kid;
        if (r->gens[i] != r->gens[0]) {
            r->mixed = 1;
        }
        /* a serial this CA issues is positive and at most 20 octets */
        if (ASN1_STRING_type(serial) == V_ASN1_INTEGER
            && ASN1_STRING_length(serial) >= 1
            && ASN1_STRING_length(serial) <= 20) {
            const char *hex = ca_serial_hex(p, serial);
            if (hex && hex[0] && hex[0] != '-' && strspn(hex, "0") != strlen(hex)) {
                r->serials[i] = hex;
            }
        }
    }
    r->gen = r->gens[0];
    r->issuer_kid = r->issuer_kids[0];
    if (n == 1 && !r->nonce && !any_single_ext) {
        OCSP_CERTID *cid = OCSP_onereq_get0_id(
            OCSP_request_onereq_get0(r->req, 0));
        unsigned char *cd = NULL, md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        int cl = i2d_OCSP_CERTID(cid, &cd);
        if (cl > 0 && EVP_Digest(cd, (size_t)cl, md, &mdlen, EVP_sha256(),
                                 NULL)) {
            char *hex = apr_palloc(p, mdlen * 2 + 1);
            unsigned int b;
            for (b = 0; b < mdlen; b++) {
                apr_snprintf(hex + 2 * b, 3, "%02x", md[b]);
            }
            r->cache_key = hex;
            r->cacheable = 1;
        }
        OPENSSL_free(cd);
        ERR_clear_error();
    }
    return r;
}

apr_status_t ca_ocsp_decode_get(apr_pool_t *p, const char *in,
                                unsigned char **der, apr_size_t *len)
{
    apr_size_t n = strlen(in), i, o = 0;
    char *b = apr_palloc(p, n + 4);

    for (i = 0; i < n; i++) {
        char c = in[i];
        if (c == '%') {
            char h[3];
            char *end;
            long v;
            if (i + 2 >= n) {
                return CA_EBADINPUT;
            }
            h[0] = in[i + 1];
            h[1] = in[i + 2];
            h[2] = '\0';
            if (!apr_isxdigit(h[0]) || !apr_isxdigit(h[1])) {
                return CA_EBADINPUT;
            }
            v = strtol(h, &end, 16);
            c = (char)v;
            i += 2;
        }
        if (c == '-') {
            c = '+';
        }
        else if (c == '_') {
            c = '/';
        }
        if (!(apr_isalnum(c) || c == '+' || c == '/' || c == '=')) {
            return CA_EBADINPUT;
        }
        b[o++] = c;
    }
    /* base64url leaves the padding out */
    while (o % 4) {
        b[o++] = '=';
    }
    b[o] = '\0';
    if (o == 0) {
        return CA_EBADINPUT;
    }
    return ca_base64_decode(p, b, o, der, len);
}

void ca_ocsp_status_of(const ca_cert_row_t *row, apr_int64_t now,
                       ca_ocsp_status_t *st)
{
    memset(st, 0, sizeof(*st));
    st->reason = -1;
    if (!row) {
        st->status = V_OCSP_CERTSTATUS_UNKNOWN;
        return;
    }
    if (!strcmp(row->status, CA_STATUS_REVOKED)) {
        st->status = V_OCSP_CERTSTATUS_REVOKED;
        st->revoked_at = row->revoked_at;
        /* as on the CRL: unspecified is sent as no reason at all */
        st->reason = row->reason > 0 ? row->reason : -1;
        st->invalidity_at = row->invalidity_at;
        return;
    }
    if (!strcmp(row->status, CA_STATUS_SUPERSEDED)) {
        if (now >= row->revoked_at) {
            st->status = V_OCSP_CERTSTATUS_REVOKED;
            st->revoked_at = row->revoked_at;
            st->reason = CA_REASON_SUPERSEDED;
        }
        else {
            st->status = V_OCSP_CERTSTATUS_GOOD;
            st->changes_at = row->revoked_at;
        }
        return;
    }
    st->status = V_OCSP_CERTSTATUS_GOOD;
}

apr_status_t ca_ocsp_lookup(apr_pool_t *p, ca_store_t *store,
                            const ca_ocsp_req_t *req, apr_int64_t now,
                            ca_ocsp_status_t **st)
{
    ca_ocsp_status_t *out = apr_pcalloc(p, sizeof(*out)
                                           * (apr_size_t)(req->count + 1));
    int i;

    for (i = 0; i < req->count; i++) {
        ca_cert_row_t *row = NULL;
        if (req->serials[i]) {
            apr_status_t rv = ca_store_cert_get(store, p, req->serials[i],
                                                &row);
            if (rv == CA_ENOTFOUND) {
                row = NULL;
            }
            else if (rv != APR_SUCCESS) {
                return CA_EDB;
            }
        }
        if (row && (req->issuer_kids ? req->issuer_kids[i]
                                     : req->issuer_kid)) {
            /* a certificate of another CA generation (serials are unique
             * across them) than the CertID names: unknown.  The stored
             * issuer (ISSUER_MIGRATION) spares decoding the certificate on
             * every request; a row without one is decoded. */
            const char *kid = row->issuer_kid && *row->issuer_kid
                              ? row->issuer_kid
                              : ca_pem_issuer_key_id(p, row->cert_pem);
            if (*kid && strcmp(kid, req->issuer_kids ? req->issuer_kids[i]
                                                     : req->issuer_kid)) {
                row = NULL;
            }
        }
        ca_ocsp_status_of(row, now, &out[i]);
    }
    *st = out;
    return APR_SUCCESS;
}

static apr_status_t free_resp(void *d)
{
    OCSP_RESPONSE_free(d);
    return APR_SUCCESS;
}

static apr_status_t resp_der(apr_pool_t *p, OCSP_RESPONSE *resp,
                             unsigned char **der, apr_size_t *len)
{
    unsigned char *buf = NULL;
    int n = i2d_OCSP_RESPONSE(resp, &buf);

    if (n <= 0) {
        ERR_clear_error();
        return CA_ECRYPTO;
    }
    *der = apr_pmemdup(p, buf, (apr_size_t)n);
    *len = (apr_size_t)n;
    OPENSSL_free(buf);
    return APR_SUCCESS;
}

apr_status_t ca_ocsp_error_response(apr_pool_t *p, int status,
                                    unsigned char **der, apr_size_t *len)
{
    OCSP_RESPONSE *resp = OCSP_response_create(status, NULL);

    if (!resp) {
        ERR_clear_error();
        return CA_ECRYPTO;
    }
    apr_pool_cleanup_register(p, resp, free_resp, apr_pool_cleanup_null);
    return resp_der(p, resp, der, len);
}

ca_ocsp_signer_t *ca_ocsp_signer_ca(apr_pool_t *p, const ca_t *ca)
{
    ca_ocsp_signer_t *s = apr_pcalloc(p, sizeof(*s));
    s->cert = ca->cert;
    s->is_ca = 1;
    s->key = ca->key;
    s->not_after = ca_asn1_time_to_epoch(X509_get0_notAfter(ca->cert));
    s->id = "ca";
    return s;
}

apr_status_t ca_ocsp_respond(apr_pool_t *p, const ca_ocsp_req_t *req,
                             const ca_ocsp_status_t *st,
                             const ca_ocsp_signer_t *signer, apr_int64_t now,
                             int validity_secs, unsigned char **der,
                             apr_size_t *len, apr_int64_t *next_update,
                             const char **err)
{
    OCSP_BASICRESP *bs = NULL;
    OCSP_RESPONSE *resp = NULL;
    ASN1_TIME *tu = NULL, *nu = NULL;
    EVP_MD_CTX *ctx = NULL;
    apr_int64_t next = now + validity_secs;
    apr_status_t rv = CA_ECRYPTO;
    int i;

    *err = NULL;
    if (req->status != OCSP_RESPONSE_STATUS_SUCCESSFUL || !req->req) {
        *err = "the request cannot be answered";
        return CA_EBADINPUT;
    }
    if (signer->not_after && next > signer->not_after) {
        next = signer->not_after;
    }
    for (i = 0; i < req->count; i++) {
        if (st[i].changes_at && st[i].changes_at > now
            && next > st[i].changes_at) {
            next = st[i].changes_at;
        }
    }
    if (next <= now) {
        *err = "the responder certificate has expired";
        return CA_ECONFIG;
    }
    if (!(bs = OCSP_BASICRESP_new())
        || !(tu = ASN1_GENERALIZEDTIME_set(NULL, (time_t)now))
        || !(nu = ASN1_GENERALIZEDTIME_set(NULL, (time_t)next))) {
        *err = "out of memory";
        goto leave;
    }
    for (i = 0; i < req->count; i++) {
        OCSP_CERTID *cid = OCSP_onereq_get0_id(
            OCSP_request_onereq_get0(req->req, i));
        ASN1_TIME *rt = NULL;
        OCSP_SINGLERESP *single;

        if (st[i].status == V_OCSP_CERTSTATUS_REVOKED
            && !(rt = ASN1_GENERALIZEDTIME_set(NULL,
                                               (time_t)st[i].revoked_at))) {
            *err = "cannot encode a revocation time";
            goto leave;
        }
        single = OCSP_basic_add1_status(bs, cid, st[i].status,
                                        st[i].status
                                                == V_OCSP_CERTSTATUS_REVOKED
                                            ? st[i].reason
                                            : OCSP_REVOKED_STATUS_NOSTATUS,
                                        rt, tu, nu);
        ASN1_TIME_free(rt);
        if (!single) {
            *err = "cannot add a certificate's status";
            goto leave;
        }
        if (st[i].status == V_OCSP_CERTSTATUS_REVOKED
            && st[i].invalidity_at > 0) {
            ASN1_GENERALIZEDTIME *it = ASN1_GENERALIZEDTIME_set(
                NULL, (time_t)st[i].invalidity_at);
            int ok = it && OCSP_SINGLERESP_add1_ext_i2d(
                               single, NID_invalidity_date, it, 0, 0);
            ASN1_GENERALIZEDTIME_free(it);
            if (!ok) {
                *err = "cannot add invalidityDate";
                goto leave;
            }
        }
    }
    if (req->nonce && OCSP_copy_nonce(bs, req->req) <= 0) {
        *err = "cannot copy the nonce";
        goto leave;
    }
    if (!(ctx = EVP_MD_CTX_new())
        || EVP_DigestSignInit(ctx, NULL, ca_sign_md(signer->key), NULL,
                              signer->key) != 1
        || !OCSP_basic_sign_ctx(bs, signer->cert, ctx, NULL,
                                OCSP_RESPID_KEY
                                    | (signer->is_ca ? OCSP_NOCERTS : 0))) {
        *err = apr_psprintf(p, "signing the OCSP response failed: %s",
                            ca_log_ssl_errors(p));
        goto leave;
    }
    if (!(resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs))) {
        *err = "cannot make the OCSP response";
        goto leave;
    }
    apr_pool_cleanup_register(p, resp, free_resp, apr_pool_cleanup_null);
    if ((rv = resp_der(p, resp, der, len)) != APR_SUCCESS) {
        *err = "cannot encode the OCSP response";
        goto leave;
    }
    if (next_update) {
        *next_update = next;
    }
    rv = APR_SUCCESS;
leave:
    EVP_MD_CTX_free(ctx);
    OCSP_BASICRESP_free(bs);
    ASN1_TIME_free(tu);
    ASN1_TIME_free(nu);
    ERR_clear_error();
    return rv;
}

/* The responder's subject: the CA's RDNs with CN "OCSP Responder". */
static X509_NAME *responder_name(const ca_t *ca)
{
    const X509_NAME *cn = X509_get_subject_name(ca->cert);
    X509_NAME *n = X509_NAME_new();
    int i;

    if (!n) {
        return NULL;
    }
    for (i = 0; i < X509_NAME_entry_count(cn); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(cn, i);
        if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) == NID_commonName) {
            continue;
        }
        if (!X509_NAME_add_entry(n, e, -1, 0)) {
            X509_NAME_free(n);
            return NULL;
        }
    }
    if (!X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
                                    (const unsigned char *)"OCSP Responder",
                                    -1, -1, 0)) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

static apr_status_t free_name(void *d)
{
    X509_NAME_free(d);
    return APR_SUCCESS;
}

static ca_ocsp_signer_t *signer_of(apr_pool_t *p, X509 *x, EVP_PKEY *k)
{
    ca_ocsp_signer_t *s = apr_pcalloc(p, sizeof(*s));
    s->cert = x;
    s->key = k;
    s->not_before = ca_asn1_time_to_epoch(X509_get0_notBefore(x));
    s->not_after = ca_asn1_time_to_epoch(X509_get0_notAfter(x));
    s->id = ca_serial_hex(p, X509_get0_serialNumber(x));
    return s;
}

/* PEM of a private key (unencrypted; the caller writes it 0600). */
static const char *key_pem(apr_pool_t *p, EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *out = NULL;
    char *data;
    long n;

    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
        && (n = BIO_get_mem_data(b, &data)) > 0) {
        out = apr_pstrmemdup(p, data, (apr_size_t)n);
        OPENSSL_cleanse(data, (size_t)n);
    }
    BIO_free(b);
    return out;
}

apr_status_t ca_ocsp_responder_issue(apr_pool_t *p, const ca_t *ca,
                                     ca_store_t *store, int days,
                                     const char *key_type,
                                     ca_ocsp_signer_t **out,
                                     const char **pem, const char **err)
{
    ca_profile_t *prof = ca_profile_make(p, "ocsp-responder");
    ca_issue_req_t req;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    X509_NAME *name;
    const char *kp;
    apr_status_t rv;

    *err = NULL;
    rv = ca_key_generate(p, key_type ? key_type : "ec", &key, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (!(name = responder_name(ca))) {
        *err = "cannot make the responder's subject";
        return CA_ECRYPTO;
    }
    apr_pool_cleanup_register(p, name, free_name, apr_pool_cleanup_null);
    prof->validity_days = days;
    prof->key_usage = CA_KU_DIGITAL_SIGNATURE;
    prof->eku = apr_array_make(p, 1, sizeof(const char *));
    APR_ARRAY_PUSH(prof->eku, const char *) = "OCSPSigning";
    memset(&req, 0, sizeof(req));
    req.profile = prof;
    req.subject = name;
    req.pubkey = key;
    req.owner = "ocsp-responder";
    req.ocsp_nocheck = 1;
    rv = ca_issue(p, ca, store, &req, &x, NULL, err);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (!(kp = key_pem(p, key))) {
        *err = "cannot encode the responder key";
        return CA_ECRYPTO;
    }
    *pem = apr_pstrcat(p, kp, ca_x509_pem(p, x), NULL);
    ca_pool_wipe(p, (void *)kp, strlen(kp));
    *out = signer_of(p, x, key);
    return APR_SUCCESS;
}

apr_status_t ca_ocsp_signer_load(apr_pool_t *p, const ca_t *ca,
                                 const char *pem, apr_size_t len,
                                 ca_ocsp_signer_t **out, const char **err)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = NULL;
    X509 *x = NULL;
    apr_status_t rv = CA_EBADINPUT;

    *err = NULL;
    if (!b || !(k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL))
        || !(x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        *err = "no key and certificate";
        goto leave;
    }
    if (X509_check_private_key(x, k) != 1) {
        *err = "the key does not match the certificate";
        goto leave;
    }
    if (X509_check_issued(ca->cert, x) != X509_V_OK
        || X509_verify(x, X509_get0_pubkey(ca->cert)) != 1) {
        *err = "not issued by this CA";
        goto leave;
    }
    if (!(X509_get_extended_key_usage(x) & XKU_OCSP_SIGN)) {
        *err = "not an OCSP signing certificate";
        goto leave;
    }
    *out = signer_of(p, ca_pool_x509(p, x), ca_pool_pkey(p, k));
    x = NULL;
    k = NULL;
    rv = APR_SUCCESS;
leave:
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return rv;
}
