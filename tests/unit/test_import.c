/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* Unit tests of ca_import: index.txt times, the line checks (each fault
 * named with file and line), certificates checked against their lines and
 * the CA, and the store: one transaction, a second run unchanged, a dry
 * run storing nothing, the CRL number raised. */

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "unit.h"
#include "ca_ca.h"
#include "ca_crl.h"
#include "ca_import.h"
#include "ca_store.h"
#include "ca_util.h"

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_time(apr_pool_t *p)
{
    (void)p;
    UT_CHECK(ca_import_time("20260101000000Z") == 1767225600);
    UT_CHECK(ca_import_time("260101000000Z") == 1767225600);
    UT_CHECK(ca_import_time("500101000000Z") == -631152000); /* 1950 */
    UT_CHECK(ca_import_time("2601010000Z") == -1);
    UT_CHECK(ca_import_time("261301000000Z") == -1);   /* month 13 */
    UT_CHECK(ca_import_time("26010100000XZ") == -1);
    UT_CHECK(ca_import_time("260101000000") == -1);
    UT_CHECK(ca_import_time("+60101000000Z") == -1);
    UT_CHECK(ca_import_time("") == -1);
}

/* A CA and one certificate it signed (serial 1A, CN=u1), in dir. */
typedef struct {
    const char *dir, *index, *certs;
    X509 *cacert, *cert;
    const char *not_after;   /* index.txt form */
} fixture_t;

static fixture_t *fixture(apr_pool_t *p)
{
    fixture_t *f = apr_pcalloc(p, sizeof(*f));
    ca_init_opts_t o;
    ca_t *ca;
    const char *err = NULL;
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    ASN1_INTEGER *sn = ASN1_INTEGER_new();
    BIGNUM *bn = NULL;
    FILE *fp;

    f->dir = ut_tmpdir(p);
    f->certs = apr_pstrcat(p, f->dir, "/newcerts", NULL);
    f->index = apr_pstrcat(p, f->dir, "/index.txt", NULL);
    mkdir(f->certs, 0700);
    memset(&o, 0, sizeof(o));
    o.subject = "CN=import test CA";
    ca_create(p, &o, apr_pstrcat(p, f->dir, "/cacert.pem", NULL),
              apr_pstrcat(p, f->dir, "/cakey.pem", NULL), &err);
    UT_CHECK(ca_load(&ca, p, apr_pstrcat(p, f->dir, "/cacert.pem", NULL),
                     apr_pstrcat(p, f->dir, "/cakey.pem", NULL), NULL, &err)
             == APR_SUCCESS);
    f->cacert = ca->cert;
    X509_set_version(x, 2);
    BN_hex2bn(&bn, "1A");
    BN_to_ASN1_INTEGER(bn, sn);
    BN_free(bn);
    X509_set_serialNumber(x, sn);
    ASN1_INTEGER_free(sn);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                               (const unsigned char *)"u1", -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_NAME_free(n);
    X509_set_issuer_name(x, X509_get_subject_name(ca->cert));
    ASN1_TIME_set_string(X509_getm_notBefore(x), "260101000000Z");
    ASN1_TIME_set_string(X509_getm_notAfter(x), "361231000000Z");
    X509_set_pubkey(x, ca->key);
    X509_sign(x, ca->key, ca_sign_md(ca->key));
    f->cert = ca_pool_x509(p, x);
    f->not_after = "361231000000Z";
    fp = fopen(apr_pstrcat(p, f->certs, "/1A.pem", NULL), "w");
    /* openssl ca writes the text form before the PEM */
    fputs("Certificate:\n    Data:\n        Version: 3 (0x2)\n", fp);
    PEM_write_X509(fp, x);
    fclose(fp);
    return f;
}

static ca_import_opts_t opts_of(fixture_t *f)
{
    ca_import_opts_t o;
    memset(&o, 0, sizeof(o));
    o.index_file = f->index;
    o.certs_dir = f->certs;
    o.ca_cert = f->cacert;
    return o;
}

/* index.txt with `text`: the error text (NULL: it was read). */
static const char *read_err(apr_pool_t *p, fixture_t *f, const char *text,
                            ca_import_t **im)
{
    ca_import_opts_t o = opts_of(f);
    const char *err = NULL;
    ca_import_t *dummy;

    put(f->index, text);
    if (ca_import_read(p, &o, im ? im : &dummy, &err) == APR_SUCCESS) {
        return NULL;
    }
    return err ? err : "(no message)";
}

static int has(const char *err, const char *want)
{
    if (!err || !strstr(err, want)) {
        fprintf(stderr, "    got: %s\n    want: %s\n", err ? err : "(ok)",
                want);
        return 0;
    }
    return 1;
}

static void test_lines(apr_pool_t *p)
{
    fixture_t *f = fixture(p);
    ca_import_t *im = NULL;
    ca_import_entry_t *e;
    const char *good = "V\t361231000000Z\t\t1A\tunknown\t/CN=u1\n";
    const char *err;

    UT_CHECK(read_err(p, f, good, &im) == NULL);
    UT_CHECK(im && im->entries->nelts == 1 && im->valid == 1);
    e = &APR_ARRAY_IDX(im->entries, 0, ca_import_entry_t);
    UT_CHECK(!strcmp(e->row.serial, "1A") && !strcmp(e->row.owner, "u1"));
    UT_CHECK(!strcmp(e->row.status, "valid") && e->row.reason == -1);
    UT_CHECK(strstr(e->row.cert_pem, "Certificate:") == NULL);
    /* comments skipped, a line without its newline read */
    UT_CHECK(read_err(p, f, "# x\nV\t361231000000Z\t\t1A\tunknown\t/CN=u1",
                      NULL) == NULL);
    /* revocation forms */
    UT_CHECK(read_err(p, f, "R\t361231000000Z\t260102030405Z,keyTime,"
                      "20251231000000Z\t1A\tunknown\t/CN=u1\n", &im) == NULL);
    e = &APR_ARRAY_IDX(im->entries, 0, ca_import_entry_t);
    UT_CHECK(e->row.reason == CA_REASON_KEY_COMPROMISE);
    UT_CHECK(e->row.invalidity_at == 1767139200);
    UT_CHECK(e->row.revoked_at == ca_import_time("260102030405Z"));
    UT_CHECK(read_err(p, f, "R\t361231000000Z\t260102030405Z,holdInstruction,"
                      "holdInstructionCallIssuer\t1A\tunknown\t/CN=u1\n",
                      &im) == NULL);
    e = &APR_ARRAY_IDX(im->entries, 0, ca_import_entry_t);
    UT_CHECK(e->row.reason == CA_REASON_CERTIFICATE_HOLD && e->hold);
    UT_CHECK(read_err(p, f, "R\t361231000000Z\t260102030405Z,CACOMPROMISE\t"
                      "1A\tunknown\t/CN=u1\n", &im) == NULL);
    e = &APR_ARRAY_IDX(im->entries, 0, ca_import_entry_t);
    UT_CHECK(e->row.reason == CA_REASON_CA_COMPROMISE);

    /* faults, each with file and line */
    err = read_err(p, f, "# c\n\n", NULL);
    UT_CHECK(has(err, "index.txt:2: empty line"));
    err = read_err(p, f, "V\t361231000000Z\t\t1A\tunknown\n", NULL);
    UT_CHECK(has(err, "index.txt:1: 5 tab-separated fields"));
    err = read_err(p, f, "v\t361231000000Z\t\t1A\tunknown\t/CN=u1\n", NULL);
    UT_CHECK(has(err, ":1: status 'v' is not V, R or E"));
    err = read_err(p, f, "R\t361231000000Z\t\t1A\tunknown\t/CN=u1\n", NULL);
    UT_CHECK(has(err, ":1: an R line needs a revocation date"));
    err = read_err(p, f, "R\t361231000000Z\t260102030405Z,keyTime\t1A\t"
                   "unknown\t/CN=u1\n", NULL);
    UT_CHECK(has(err, "keyTime needs a compromise time"));
    err = read_err(p, f, "R\t361231000000Z\t260102030405Z,superseded,x\t1A\t"
                   "unknown\t/CN=u1\n", NULL);
    UT_CHECK(has(err, "reason superseded takes no argument"));
    err = read_err(p, f, "R\t361231000000Z\t260102030405Z,removeFromCRL\t1A\t"
                   "unknown\t/CN=u1\n", NULL);
    UT_CHECK(has(err, "removeFromCRL belongs to delta CRLs"));
    err = read_err(p, f, "R\t361231000000Z\t260102030405Z,holdInstruction,"
                   "no such oid\t1A\tunknown\t/CN=u1\n", NULL);
    UT_CHECK(has(err, "hold instruction 'no such oid' is not an OID"));
    err = read_err(p, f, "R\t361231000000Z\t260102030405Z,,\t1A\t"
                   "unknown\t/CN=u1\n", NULL);
    UT_CHECK(has(err, ":1: revocation field has an empty part"));
    err = read_err(p, f, "R\t361231000000Z\t260102030405Z,keyTime,"
                   "20251231000000Z,x\t1A\tunknown\t/CN=u1\n", NULL);
    UT_CHECK(has(err, ":1: revocation field has more than"));
    err = read_err(p, f, "V\t361231000000Z\t\t-1A\tunknown\t/CN=u1\n", NULL);
    UT_CHECK(has(err, ":1: serial '-1A' is not a serial number"));
    err = read_err(p, f, "V\t361231000000Z\t\t1A\t\t/CN=u1\n", NULL);
    UT_CHECK(has(err, ":1: empty file name field"));
    err = read_err(p, f, apr_pstrcat(p, good, good, NULL), NULL);
    UT_CHECK(has(err, "index.txt:2: serial 1A is already on line 1"));
    /* the certificate against its line */
    err = read_err(p, f, "V\t361231000000Z\t\t1B\tunknown\t/CN=u1\n", NULL);
    UT_CHECK(has(err, "newcerts/1B.pem: cannot be read"));
    UT_CHECK(has(err, "index.txt:1)"));
    err = read_err(p, f, "V\t371231000000Z\t\t1A\tunknown\t/CN=u1\n", NULL);
    UT_CHECK(has(err, "newcerts/1A.pem: expires 361231000000Z, the line "
                 "says 371231000000Z"));
    err = read_err(p, f, "V\t361231000000Z\t\t1A\tunknown\t/CN=u2\n", NULL);
    UT_CHECK(has(err, "has subject /CN=u1, the line says /CN=u2"));
    put(apr_pstrcat(p, f->certs, "/1A.pem", NULL), "not a certificate\n");
    err = read_err(p, f, good, NULL);
    UT_CHECK(has(err, "1A.pem: holds no PEM certificate"));
}

static void test_foreign_ca(apr_pool_t *p)
{
    fixture_t *f = fixture(p), *g = fixture(p);
    ca_import_opts_t o = opts_of(f);
    ca_import_t *im;
    const char *err = NULL;

    put(f->index, "V\t361231000000Z\t\t1A\tunknown\t/CN=u1\n");
    o.ca_cert = g->cacert;   /* same subject, another key */
    UT_CHECK(ca_import_read(p, &o, &im, &err) == CA_EBADINPUT);
    UT_CHECK(has(err, "signature the CA certificate's key does not verify"));
}

static void test_apply(apr_pool_t *p)
{
    fixture_t *f = fixture(p);
    ca_import_opts_t o = opts_of(f);
    ca_import_t *im;
    ca_import_result_t res;
    ca_store_t *st;
    ca_cert_row_t *row;
    const char *err = NULL;
    const char *db = apr_pstrcat(p, f->dir, "/ca.db", NULL);
    apr_int64_t n = 0, tu, nu;
    apr_array_header_t *rows = NULL;
    int v;

    ca_audit_t audit;

    memset(&audit, 0, sizeof(audit));
    audit.at = 1;
    audit.actor = "tester";
    audit.auth = "cli";
    audit.client = "unit";
    audit.action = "import";
    audit.serial = "";
    audit.outcome = "ok";
    o.audit = &audit;
    o.crlnumber_file = apr_pstrcat(p, f->dir, "/crlnumber", NULL);
    put(o.crlnumber_file, "1F\n");
    put(f->index, "V\t361231000000Z\t\t1A\tunknown\t/CN=u1\n");
    UT_CHECK(ca_import_read(p, &o, &im, &err) == APR_SUCCESS);
    UT_CHECK(im->next_crl_number == 0x1F);
    UT_CHECK(ca_store_open(&st, p, "sqlite3", db, &err) == APR_SUCCESS);
    UT_CHECK(ca_store_migrate(st, p, &v, &err) == APR_SUCCESS);

    UT_CHECK(ca_import_apply(p, st, &o, im, 1, &res, &err) == APR_SUCCESS);
    UT_CHECK(res.added == 1 && res.crl_number_after == 0x1E);
    UT_CHECK(ca_store_cert_list(st, p, NULL, 10, 0, &rows) == APR_SUCCESS);
    UT_CHECK(rows->nelts == 0);
    ca_store_crl_head(st, p, &n, &tu, &nu);
    UT_CHECK(n == 0);

    /* a dry run records nothing */
    UT_CHECK(ca_store_audit_list(st, p, NULL, 10, 0, &rows) == APR_SUCCESS
             && rows->nelts == 0);

    UT_CHECK(ca_import_apply(p, st, &o, im, 0, &res, &err) == APR_SUCCESS);
    UT_CHECK(res.added == 1 && res.unchanged == 0);
    ca_store_crl_head(st, p, &n, &tu, &nu);
    UT_CHECK(n == 0x1E && nu == 0);
    /* the audit record, with the counts, in the same transaction */
    UT_CHECK(ca_store_audit_list(st, p, NULL, 10, 0, &rows) == APR_SUCCESS
             && rows->nelts == 1
             && has(APR_ARRAY_IDX(rows, 0, ca_audit_t *)->detail,
                    "index.txt: 1 added, 0 revoked, 0 unchanged")
             && !strcmp(APR_ARRAY_IDX(rows, 0, ca_audit_t *)->actor,
                        "tester"));
    UT_CHECK(ca_store_cert_get(st, p, "1A", &row) == APR_SUCCESS);
    UT_CHECK(!strcmp(row->owner, "u1") && !strcmp(row->status, "valid"));

    UT_CHECK(ca_import_apply(p, st, &o, im, 0, &res, &err) == APR_SUCCESS);
    UT_CHECK(res.added == 0 && res.unchanged == 1 && res.revoked == 0);
    UT_CHECK(res.crl_number_after == res.crl_number_before);
    /* nothing changed: no record */
    UT_CHECK(ca_store_audit_list(st, p, NULL, 10, 0, &rows) == APR_SUCCESS
             && rows->nelts == 1);

    /* revoked since: revoked in the store */
    put(f->index, "R\t361231000000Z\t260301000000Z,keyCompromise\t1A\t"
        "unknown\t/CN=u1\n");
    UT_CHECK(ca_import_read(p, &o, &im, &err) == APR_SUCCESS);
    UT_CHECK(ca_import_apply(p, st, &o, im, 0, &res, &err) == APR_SUCCESS);
    UT_CHECK(res.revoked == 1);
    UT_CHECK(ca_store_cert_get(st, p, "1A", &row) == APR_SUCCESS);
    UT_CHECK(!strcmp(row->status, "revoked") && row->reason == 1);
    /* and back to V: a conflict, nothing changed */
    put(f->index, "V\t361231000000Z\t\t1A\tunknown\t/CN=u1\n");
    UT_CHECK(ca_import_read(p, &o, &im, &err) == APR_SUCCESS);
    UT_CHECK(ca_import_apply(p, st, &o, im, 0, &res, &err) == CA_ECONFLICT);
    UT_CHECK(has(err, "index.txt:1: serial 1A is stored as revoked, the line "
                 "says valid"));
    UT_CHECK(ca_store_cert_get(st, p, "1A", &row) == APR_SUCCESS);
    UT_CHECK(!strcmp(row->status, "revoked"));

    /* a lower crlnumber never lowers the stored number */
    put(o.crlnumber_file, "05\n");
    put(f->index, "R\t361231000000Z\t260301000000Z,keyCompromise\t1A\t"
        "unknown\t/CN=u1\n");
    UT_CHECK(ca_import_read(p, &o, &im, &err) == APR_SUCCESS);
    UT_CHECK(ca_import_apply(p, st, &o, im, 0, &res, &err) == APR_SUCCESS);
    ca_store_crl_head(st, p, &n, &tu, &nu);
    UT_CHECK(n == 0x1E);
    put(o.crlnumber_file, "00\n");
    UT_CHECK(ca_import_read(p, &o, &im, &err) == CA_EBADINPUT);
    UT_CHECK(has(err, "crlnumber:1: '00' is not a CRL number"));
}

int main(void)
{
    UT_RUN(test_time);
    UT_RUN(test_lines);
    UT_RUN(test_foreign_ca);
    UT_RUN(test_apply);
    return ut_finish();
}
