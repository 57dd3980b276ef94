/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_import: bring an `openssl ca` directory (index.txt, newcerts/,
 * crlnumber) into the store.  Everything is read and checked first
 * (ca_import_read: every line, every certificate file, every signature);
 * only a directory without a single fault is then stored, in one
 * transaction (ca_import_apply). */
#ifndef CA_IMPORT_H
#define CA_IMPORT_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>

#include "ca_store.h"

typedef struct ca_import_opts_t {
    const char *index_file;   /* index.txt                                   */
    const char *certs_dir;    /* newcerts/: SERIAL.pem for every line        */
    const char *crlnumber_file; /* NULL: none; else the next CRL number (hex,
                                 as openssl ca keeps it)                     */
    X509 *ca_cert;            /* every certificate must be signed by it      */
    const char *owner_from;   /* "cn" (default), "email", or a literal name  */
    const char *profile;      /* stored profile name; NULL: "default"        */
    const ca_audit_t *audit;  /* NULL, or the audit record ca_import_apply
                                 adds in its transaction when it changes
                                 anything (detail NULL: the counts)          */
} ca_import_opts_t;

/* One line of index.txt, checked against its certificate. */
typedef struct ca_import_entry_t {
    int line;                 /* line number in index.txt (1-based)          */
    char flag;                /* 'V', 'R' or 'E'                             */
    const char *hold;         /* hold instruction of a certificateHold, or
                                 NULL (kept in the report only: RFC 5280
                                 dropped the holdInstructionCode extension)  */
    ca_cert_row_t row;        /* what is stored                              */
} ca_import_entry_t;

typedef struct ca_import_t {
    apr_array_header_t *entries;  /* ca_import_entry_t, in file order        */
    apr_int64_t next_crl_number;  /* 0: no crlnumber file                    */
    int valid, revoked, expired;  /* lines of each kind                      */
} ca_import_t;

/* Read and check the whole directory.  On the first fault: CA_EBADINPUT
 * (or CA_EIO for a file that cannot be read) with *err "FILE:LINE: what"
 * (FILE the index or crlnumber file, or the certificate file with the
 * index line that names it). */
apr_status_t ca_import_read(apr_pool_t *p, const ca_import_opts_t *o,
                            ca_import_t **out, const char **err);

/* What a store holds already, and what ca_import_apply did or would do. */
typedef struct ca_import_result_t {
    int added;                /* new rows                                    */
    int revoked;              /* stored valid, revoked since: revoked now    */
    int unchanged;            /* stored already, the same                    */
    apr_int64_t crl_number_before; /* the stored CRL number                  */
    apr_int64_t crl_number_after;  /* the stored CRL number afterwards (the
                                      next CRL gets one more)                */
} ca_import_result_t;

/* Store the entries in one transaction: a serial not stored yet is
 * inserted; a stored one must hold the same certificate (else CA_ECONFLICT,
 * *err "INDEX:LINE: ...") and is left alone when its state is the same, or
 * revoked when it is stored valid and the line says R.  Any other
 * difference is a conflict.  The stored CRL number is raised to
 * next_crl_number - 1 (so the next CRL gets next_crl_number) when it is
 * lower, and the stored CRL marked out of date when anything changed; then
 * o->audit, when given, is added (all of it or none).  dry_run: the same
 * checks and counts, then the transaction is rolled back.  Nothing is
 * stored on any failure. */
apr_status_t ca_import_apply(apr_pool_t *p, ca_store_t *st,
                             const ca_import_opts_t *o, const ca_import_t *im,
                             int dry_run, ca_import_result_t *res,
                             const char **err);

/* An index.txt time (YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ) in seconds since
 * the epoch; -1 when malformed. */
apr_int64_t ca_import_time(const char *s);

#endif
