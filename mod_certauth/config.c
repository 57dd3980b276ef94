/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* config.c: the directives of mod_certauth, their checks, and merge rules.
 *
 * Merge rules: every value has an explicit "unset" marker (NULL or -1); a
 * virtual host or inner Location inherits each unset value from its parent.
 * The Location that says `CertAuth On` is the root of the endpoints below it;
 * inner Locations keep that root.  Named profiles (<CertAuthProfile name>)
 * belong to a server; a virtual host sees the main server's profiles and
 * its own, its own winning on a name clash.  The profile directives stand
 * inside <CertAuthProfile> or directly in a <Location> (its own profile). */

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mod_certauth.h"
#include "ca_pkcs11.h"
#include "ca_util.h"

certauth_srv_conf *certauth_srv(server_rec *s)
{
    return ap_get_module_config(s->module_config, &certauth_module);
}

certauth_dir_conf *certauth_dir(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &certauth_module);
}

void *certauth_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    certauth_srv_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)s;
    c->profiles = apr_hash_make(p);
    c->refs = apr_array_make(p, 2, sizeof(certauth_ref));
    c->crl_days = -1;
    c->crl_retention_days = -1;
    c->crl_refresh_secs = -1;
    c->supersede_grace_secs = -1;
    c->db_timeout = -1;
    c->db_max_waiters = -1;
    c->dbd_max = -1;
    c->dbd_persist = -1;
    c->crl_delay = -1;
    c->acme_http_port = -1;
    c->acme_tls_port = -1;
    c->acme_eab = -1;
    c->ocsp = -1;
    c->ocsp_signer_ca = -1;
    c->ocsp_validity_secs = -1;
    c->ocsp_responder_days = -1;
    return c;
}

#define MERGE_PTR(f) c->f = add->f ? add->f : base->f
#define MERGE_INT(f) c->f = add->f != -1 ? add->f : base->f

void *certauth_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    certauth_srv_conf *base = basev, *add = addv;
    certauth_srv_conf *c = apr_pcalloc(p, sizeof(*c));

    MERGE_PTR(ca_cert_file);
    MERGE_PTR(ca_key_file);
    MERGE_PTR(passphrase);
    MERGE_PTR(prev_ca_files);
    MERGE_PTR(link_files);
    MERGE_PTR(prev_keys);
    MERGE_PTR(base_url);
    MERGE_PTR(where);
    c->has_endpoints = add->has_endpoints;
    c->profiles = apr_hash_overlay(p, add->profiles, base->profiles);
    c->refs = add->refs;
    MERGE_INT(crl_days);
    MERGE_INT(crl_retention_days);
    MERGE_INT(crl_refresh_secs);
    MERGE_INT(supersede_grace_secs);
    MERGE_INT(db_timeout);
    MERGE_INT(db_max_waiters);
    MERGE_PTR(dbd_driver);
    MERGE_PTR(dbd_params);
    MERGE_INT(dbd_max);
    MERGE_INT(dbd_persist);
    MERGE_INT(crl_delay);
    MERGE_PTR(acme_profile);
    MERGE_PTR(acme_names);
    MERGE_INT(acme_http_port);
    MERGE_INT(acme_tls_port);
    MERGE_INT(acme_eab);
    MERGE_PTR(acme_location);
    MERGE_INT(ocsp);
    MERGE_PTR(ocsp_path);
    MERGE_PTR(ocsp_url);
    MERGE_INT(ocsp_signer_ca);
    MERGE_INT(ocsp_validity_secs);
    MERGE_INT(ocsp_responder_days);
    return c;
}

static void prof_init(certauth_prof_conf *pc)
{
    memset(pc, 0, sizeof(*pc));
    pc->validity_days = -1;
    pc->max_valid_per_owner = -1;
    pc->unique_subject = -1;
    pc->renewal_window_days = -1;
    pc->approval = -1;
    pc->enroll_by_cert = -1;
}

void *certauth_create_dir_conf(apr_pool_t *p, char *dir)
{
    certauth_dir_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)dir;
    c->enabled = -1;
    c->max_body = -1;
    c->acme = -1;
    prof_init(&c->prof);
    return c;
}

static void prof_merge(certauth_prof_conf *c, const certauth_prof_conf *base,
                       const certauth_prof_conf *add)
{
    MERGE_PTR(name);
    MERGE_PTR(where);
    MERGE_INT(validity_days);
    MERGE_PTR(rdns);
    if (add->key_usage_set) {
        c->key_usage_set = 1;
        c->key_usage = add->key_usage;
    }
    else {
        c->key_usage_set = base->key_usage_set;
        c->key_usage = base->key_usage;
    }
    MERGE_PTR(eku);
    MERGE_PTR(sans);
    MERGE_PTR(san_allow);
    if (add->key_types_set) {
        c->key_types_set = 1;
        c->key_policy = add->key_policy;
    }
    else {
        c->key_types_set = base->key_types_set;
        c->key_policy = base->key_policy;
    }
    MERGE_INT(max_valid_per_owner);
    MERGE_INT(unique_subject);
    MERGE_INT(renewal_window_days);
    MERGE_PTR(aia);
    MERGE_PTR(require);
    MERGE_PTR(require_text);
    MERGE_INT(approval);
    MERGE_INT(enroll_by_cert);
}

void *certauth_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    certauth_dir_conf *base = basev, *add = addv;
    certauth_dir_conf *c = apr_pcalloc(p, sizeof(*c));

    MERGE_INT(enabled);
    MERGE_PTR(location);
    c->max_body = add->max_body != -1 ? add->max_body : base->max_body;
    MERGE_PTR(default_profile);
    MERGE_PTR(admin);
    MERGE_INT(acme);
    prof_merge(&c->prof, &base->prof, &add->prof);
    return c;
}

apr_off_t certauth_dir_max_body(const certauth_dir_conf *dc)
{
    return dc->max_body >= 0 ? dc->max_body : CERTAUTH_DEFAULT_MAX_BODY;
}

/* "file:line" of the directive being read, for messages at start-up. */
static const char *where(cmd_parms *cmd)
{
    if (cmd->directive && cmd->directive->filename) {
        return apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                            cmd->directive->line_num);
    }
    return "(command line)";
}

static const char *srv_only(cmd_parms *cmd)
{
    return ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
}

static const char *set_ca_cert(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *err = srv_only(cmd);
    (void)d;
    if (err) {
        return err;
    }
    sc->ca_cert_file = ap_server_root_relative(cmd->pool, arg);
    if (!sc->ca_cert_file) {
        return apr_pstrcat(cmd->pool, "CertAuthCACertificateFile: bad path ",
                           arg, NULL);
    }
    sc->where = where(cmd);
    return NULL;
}

/* CertAuthPreviousCACertificateFile, CertAuthCALinkCertificates: each
 * may be repeated (a CA rolled over more than once). */
static const char *set_rollover_file(cmd_parms *cmd, void *d,
                                     const char *arg)
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *err = srv_only(cmd), *path;
    (void)d;
    if (err) {
        return err;
    }
    path = ap_server_root_relative(cmd->pool, arg);
    if (!path) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": bad path ", arg,
                           NULL);
    }
    if (cmd->info) {
        if (!sc->link_files) {
            sc->link_files = apr_array_make(cmd->pool, 2,
                                            sizeof(const char *));
        }
        APR_ARRAY_PUSH(sc->link_files, const char *) = path;
    }
    else {
        if (!sc->prev_ca_files) {
            sc->prev_ca_files = apr_array_make(cmd->pool, 2,
                                               sizeof(const char *));
        }
        APR_ARRAY_PUSH(sc->prev_ca_files, const char *) = path;
    }
    return NULL;
}

/* CertAuthPreviousCAKeyFile path|URI [file:|exec:|env: pass phrase]; the
 * Nth is the key of the Nth CertAuthPreviousCACertificateFile. */
static const char *set_prev_key(cmd_parms *cmd, void *d, const char *key,
                                const char *pass)
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *err = srv_only(cmd);
    certauth_prev_key k;
    (void)d;
    if (err) {
        return err;
    }
    memset(&k, 0, sizeof(k));
    if (ca_pkcs11_is_uri(key)) {
        if (ca_pkcs11_check_uri(cmd->pool, key, &err) != APR_SUCCESS) {
            return apr_pstrcat(cmd->pool, "CertAuthPreviousCAKeyFile: ", err,
                               NULL);
        }
        k.file = key;
    }
    else if (!(k.file = ap_server_root_relative(cmd->pool, key))) {
        return apr_pstrcat(cmd->pool, "CertAuthPreviousCAKeyFile: bad path ",
                           key, NULL);
    }
    if (pass) {
        if (strncmp(pass, "file:", 5) && strncmp(pass, "exec:", 5)
            && strncmp(pass, "env:", 4)) {
            return "CertAuthPreviousCAKeyFile: the pass phrase source is "
                   "file:/path, exec:/path or env:NAME";
        }
        k.passphrase = pass;
    }
    if (!sc->prev_keys) {
        sc->prev_keys = apr_array_make(cmd->pool, 2, sizeof(k));
    }
    APR_ARRAY_PUSH(sc->prev_keys, certauth_prev_key) = k;
    return NULL;
}

static const char *set_ca_key(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *err = srv_only(cmd);
    (void)d;
    if (err) {
        return err;
    }
    /* a PKCS#11 URI names a key in a token (core/ca_pkcs11.c) */
    if (ca_pkcs11_is_uri(arg)) {
        const char *why = NULL;
        if (ca_pkcs11_check_uri(cmd->pool, arg, &why) != APR_SUCCESS) {
            return apr_pstrcat(cmd->pool, "CertAuthCAKeyFile: ", why, NULL);
        }
        sc->ca_key_file = arg;
        sc->where = where(cmd);
        return NULL;
    }
    sc->ca_key_file = ap_server_root_relative(cmd->pool, arg);
    if (!sc->ca_key_file) {
        return apr_pstrcat(cmd->pool, "CertAuthCAKeyFile: bad path ", arg,
                           NULL);
    }
    sc->where = where(cmd);
    return NULL;
}

static const char *set_passphrase(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *err = srv_only(cmd);
    (void)d;
    if (err) {
        return err;
    }
    if (strncmp(arg, "file:", 5) && strncmp(arg, "exec:", 5)
        && strncmp(arg, "env:", 4)) {
        return "CertAuthCAPassPhrase: expected file:/path, exec:/path or "
               "env:NAME";
    }
    if (!strncmp(arg, "file:", 5) || !strncmp(arg, "exec:", 5)) {
        const char *path = ap_server_root_relative(cmd->pool, arg + 5);
        if (!path || !*(arg + 5)) {
            return "CertAuthCAPassPhrase: missing path";
        }
        arg = apr_pstrcat(cmd->pool, apr_pstrndup(cmd->pool, arg, 5), path,
                          NULL);
    }
    else if (!arg[4]) {
        return "CertAuthCAPassPhrase: missing environment variable name";
    }
    sc->passphrase = arg;
    return NULL;
}

static const char *set_base_url(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *err = srv_only(cmd);
    apr_uri_t uri;
    char *url;
    apr_size_t n;
    (void)d;

    if (err) {
        return err;
    }
    if (apr_uri_parse(cmd->pool, arg, &uri) != APR_SUCCESS || !uri.scheme
        || (strcasecmp(uri.scheme, "https") && strcasecmp(uri.scheme, "http"))
        || !uri.hostname || !*uri.hostname || uri.query || uri.fragment
        || strpbrk(arg, " \t\"<>\\")) {
        return apr_psprintf(cmd->pool,
                            "CertAuthBaseURL: '%s' is not an absolute http(s) "
                            "URL without query (e.g. https://ca.example.org/ca)",
                            arg);
    }
    url = apr_pstrdup(cmd->pool, arg);
    n = strlen(url);
    while (n > 0 && url[n - 1] == '/') {
        url[--n] = '\0';
    }
    sc->base_url = url;
    return NULL;
}

static const char *set_enabled(cmd_parms *cmd, void *d, int flag)
{
    certauth_dir_conf *dc = d;
    if (!cmd->path) {
        return "CertAuth: only inside a <Location> section";
    }
    if (cmd->directive && cmd->directive->parent
        && (strcasecmp(cmd->directive->parent->directive, "<Location")
            || (cmd->directive->parent->args
                && cmd->directive->parent->args[0] == '~'))) {
        return "CertAuth: only inside a <Location /path> section (not "
               "<LocationMatch>, <Directory>, <Files> or <CertAuthProfile>)";
    }
    dc->enabled = flag;
    if (flag) {
        char *loc = apr_pstrdup(cmd->pool, cmd->path);
        apr_size_t n = strlen(loc);
        while (n > 0 && loc[n - 1] == '/') {
            loc[--n] = '\0';
        }
        dc->location = loc;
        certauth_srv(cmd->server)->has_endpoints = 1;
    }
    return NULL;
}

static const char *set_max_body(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_dir_conf *dc = d;
    char *end;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);
    (void)cmd;
    if (*end || n < 1024 || n > 64 * 1024 * 1024) {
        return "CertAuthMaxRequestBody: expected a number of bytes from 1024 "
               "to 67108864";
    }
    dc->max_body = (apr_off_t)n;
    return NULL;
}

static const char *check_name(const char *arg)
{
    const char *c;
    if (!*arg || strlen(arg) > 64) {
        return "a profile name has 1 to 64 characters";
    }
    for (c = arg; *c; c++) {
        if (!apr_isalnum(*c) && *c != '-' && *c != '_' && *c != '.') {
            return "a profile name has only letters, digits, '-', '_' "
                   "and '.'";
        }
    }
    return NULL;
}

static const char *set_profile_name(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_dir_conf *dc = d;
    const char *err = check_name(arg);
    if (err) {
        return apr_pstrcat(cmd->pool, "CertAuthProfileName: ", err, NULL);
    }
    dc->prof.name = arg;
    return NULL;
}

static const char *set_default_profile(cmd_parms *cmd, void *d,
                                       const char *arg)
{
    certauth_dir_conf *dc = d;
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    certauth_ref *ref;
    const char *err = check_name(arg);

    if (err) {
        return apr_pstrcat(cmd->pool, "CertAuthDefaultProfile: ", err, NULL);
    }
    if (!cmd->path) {
        return "CertAuthDefaultProfile: only inside a <Location> section";
    }
    dc->default_profile = arg;
    ref = apr_array_push(sc->refs);
    ref->name = arg;
    ref->where = where(cmd);
    return NULL;
}

/* A number within [lo, hi]; NULL or a message. */
static const char *parse_int(cmd_parms *cmd, const char *directive,
                             const char *arg, int lo, int hi, int *out)
{
    char *end;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);
    if (!*arg || *end || n < lo || n > hi) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number from %d to "
                            "%d", directive, arg, lo, hi);
    }
    *out = (int)n;
    return NULL;
}

static const char *set_validity(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_dir_conf *dc = d;
    const char *err = parse_int(cmd, "CertAuthValidityDays", arg, 1, 36500,
                                &dc->prof.validity_days);
    return err ? apr_pstrcat(cmd->pool, err, " (days)", NULL) : NULL;
}

static const char *set_renewal_window(cmd_parms *cmd, void *d,
                                      const char *arg)
{
    certauth_dir_conf *dc = d;
    return parse_int(cmd, "CertAuthRenewalWindowDays", arg, 0, 36500,
                     &dc->prof.renewal_window_days);
}

static const char *set_max_per_owner(cmd_parms *cmd, void *d,
                                     const char *arg)
{
    certauth_dir_conf *dc = d;
    return parse_int(cmd, "CertAuthMaxValidPerOwner", arg, 0, 100000,
                     &dc->prof.max_valid_per_owner);
}

static const char *set_approval(cmd_parms *cmd, void *d, int flag)
{
    certauth_dir_conf *dc = d;
    (void)cmd;
    dc->prof.approval = flag;
    return NULL;
}

static const char *set_enroll_by_cert(cmd_parms *cmd, void *d, int flag)
{
    certauth_dir_conf *dc = d;
    (void)cmd;
    dc->prof.enroll_by_cert = flag;
    return NULL;
}

static const char *set_unique_subject(cmd_parms *cmd, void *d, int flag)
{
    certauth_dir_conf *dc = d;
    (void)cmd;
    dc->prof.unique_subject = flag;
    return NULL;
}

static int field_nid(const char *field)
{
    return OBJ_txt2nid(field);
}

/* Options after the main arguments: optional, maxlen=N, chars=SET. */
static const char *rdn_options(cmd_parms *cmd, const char *directive,
                               certauth_rdn *rdn, int argc,
                               char *const argv[], int allow_optional)
{
    int i;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (allow_optional && !strcasecmp(a, "optional")) {
            rdn->optional = 1;
        }
        else if (!strncasecmp(a, "maxlen=", 7)) {
            const char *err = parse_int(cmd, directive, a + 7, 1, 65535,
                                        &rdn->maxlen);
            if (err) {
                return err;
            }
        }
        else if (!strncasecmp(a, "chars=", 6)) {
            if (!ca_charset_valid(a + 6)) {
                return apr_psprintf(cmd->pool, "%s %s: bad character set "
                                    "'%s': ranges only within 0-9, a-z or "
                                    "A-Z; a '-' meant as itself goes first "
                                    "or last (e.g. chars=A-Za-z0-9._-)",
                                    directive, rdn->field, a + 6);
            }
            rdn->charset = a + 6;
        }
        else {
            return apr_psprintf(cmd->pool, "%s %s: unknown option '%s' "
                                "(%smaxlen=N, chars=SET)", directive,
                                rdn->field, a,
                                allow_optional ? "optional, " : "");
        }
    }
    return NULL;
}

static certauth_rdn *push_rdn(cmd_parms *cmd, certauth_dir_conf *dc,
                              const char *field)
{
    certauth_rdn *rdn;
    if (!dc->prof.rdns) {
        dc->prof.rdns = apr_array_make(cmd->pool, 4, sizeof(certauth_rdn));
    }
    rdn = apr_array_push(dc->prof.rdns);
    memset(rdn, 0, sizeof(*rdn));
    rdn->field = field;
    rdn->nid = field_nid(field);
    return rdn;
}

static const char *unknown_field(cmd_parms *cmd, const char *directive,
                                 const char *field)
{
    return apr_psprintf(cmd->pool, "%s: unknown subject field '%s' (e.g. CN, "
                        "O, OU, C, L, ST, emailAddress, UID, DC, "
                        "serialNumber)", directive, field);
}

/* CertAuthSubjectRDN FIELD EXPR [optional] [maxlen=N] [chars=SET] */
static const char *add_rdn(cmd_parms *cmd, void *d, int argc,
                           char *const argv[])
{
    certauth_dir_conf *dc = d;
    certauth_rdn *rdn;
    const char *err = NULL;

    if (argc < 2) {
        return "CertAuthSubjectRDN: needs a field and a value, e.g. "
               "CertAuthSubjectRDN CN \"%{REMOTE_USER}\"";
    }
    if (field_nid(argv[0]) == NID_undef) {
        return unknown_field(cmd, "CertAuthSubjectRDN", argv[0]);
    }
    rdn = push_rdn(cmd, dc, argv[0]);
    rdn->kind = CA_RDN_TEMPLATE;
    rdn->expr = ap_expr_parse_cmd(cmd, argv[1], AP_EXPR_FLAG_STRING_RESULT,
                                  &err, NULL);
    if (err) {
        return apr_psprintf(cmd->pool, "CertAuthSubjectRDN %s: cannot parse "
                            "expression '%s': %s", argv[0], argv[1], err);
    }
    return rdn_options(cmd, "CertAuthSubjectRDN", rdn, argc - 2, argv + 2, 1);
}

/* CertAuthSubjectCSR FIELD match|supplied|optional|forbidden [value=EXPR]
 *                    [maxlen=N] [chars=SET] */
static const char *add_rdn_csr(cmd_parms *cmd, void *d, int argc,
                               char *const argv[])
{
    certauth_dir_conf *dc = d;
    certauth_rdn *rdn;
    const char *err = NULL, *kind;
    int i, n;

    if (argc < 2) {
        return "CertAuthSubjectCSR: needs a field and match, supplied, "
               "optional or forbidden";
    }
    if (field_nid(argv[0]) == NID_undef) {
        return unknown_field(cmd, "CertAuthSubjectCSR", argv[0]);
    }
    rdn = push_rdn(cmd, dc, argv[0]);
    kind = argv[1];
    if (!strcasecmp(kind, "match")) rdn->kind = CA_RDN_MATCH;
    else if (!strcasecmp(kind, "supplied")) rdn->kind = CA_RDN_SUPPLIED;
    else if (!strcasecmp(kind, "optional")) rdn->kind = CA_RDN_OPTIONAL;
    else if (!strcasecmp(kind, "forbidden")) rdn->kind = CA_RDN_FORBIDDEN;
    else {
        return apr_psprintf(cmd->pool, "CertAuthSubjectCSR %s: '%s' is not "
                            "match, supplied, optional or forbidden",
                            argv[0], kind);
    }
    /* value=EXPR (match only), then the common options */
    n = argc - 2;
    for (i = 2; i < argc; i++) {
        if (!strncasecmp(argv[i], "value=", 6)) {
            if (rdn->kind != CA_RDN_MATCH) {
                return apr_psprintf(cmd->pool, "CertAuthSubjectCSR %s: "
                                    "value= goes only with match", argv[0]);
            }
            rdn->expr = ap_expr_parse_cmd(cmd, argv[i] + 6,
                                          AP_EXPR_FLAG_STRING_RESULT, &err,
                                          NULL);
            if (err) {
                return apr_psprintf(cmd->pool, "CertAuthSubjectCSR %s: cannot "
                                    "parse expression '%s': %s", argv[0],
                                    argv[i] + 6, err);
            }
            n--;
        }
    }
    if (rdn->kind == CA_RDN_FORBIDDEN && n > 0) {
        return apr_psprintf(cmd->pool, "CertAuthSubjectCSR %s forbidden takes "
                            "no options", argv[0]);
    }
    {
        /* the options other than value= */
        char **rest = apr_palloc(cmd->pool, sizeof(char *) * (argc + 1));
        int k = 0;
        for (i = 2; i < argc; i++) {
            if (strncasecmp(argv[i], "value=", 6)) {
                rest[k++] = argv[i];
            }
        }
        return rdn_options(cmd, "CertAuthSubjectCSR", rdn, k, rest, 0);
    }
}

/* CertAuthSAN TYPE EXPR [optional] */
static const char *add_san(cmd_parms *cmd, void *d, int argc,
                           char *const argv[])
{
    certauth_dir_conf *dc = d;
    certauth_san *san;
    const char *err = NULL;

    if (argc < 2 || argc > 3 || (argc == 3 && strcasecmp(argv[2], "optional"))
        || ca_san_type(argv[0]) < 0) {
        return "CertAuthSAN: expected TYPE VALUE [optional] with TYPE one of "
               "email, DNS, URI, IP";
    }
    if (!dc->prof.sans) {
        dc->prof.sans = apr_array_make(cmd->pool, 2, sizeof(certauth_san));
    }
    san = apr_array_push(dc->prof.sans);
    san->type = argv[0];
    san->optional = argc == 3;
    san->expr = ap_expr_parse_cmd(cmd, argv[1], AP_EXPR_FLAG_STRING_RESULT,
                                  &err, NULL);
    if (err) {
        return apr_psprintf(cmd->pool, "CertAuthSAN %s: cannot parse "
                            "expression '%s': %s", argv[0], argv[1], err);
    }
    return NULL;
}

/* CertAuthSANFromCSR TYPE PATTERN... */
static const char *add_san_allow(cmd_parms *cmd, void *d, int argc,
                                 char *const argv[])
{
    certauth_dir_conf *dc = d;
    int type, i;

    if (argc < 2 || (type = ca_san_type(argv[0])) < 0) {
        return "CertAuthSANFromCSR: expected TYPE PATTERN... with TYPE one "
               "of email, DNS, URI, IP (e.g. CertAuthSANFromCSR DNS "
               "*.example.org)";
    }
    if (!dc->prof.san_allow) {
        dc->prof.san_allow = apr_array_make(cmd->pool, 2,
                                            sizeof(ca_san_allow_t));
    }
    for (i = 1; i < argc; i++) {
        ca_san_allow_t *a = apr_array_push(dc->prof.san_allow);
        if (!*argv[i]) {
            return "CertAuthSANFromCSR: empty pattern";
        }
        a->type = type;
        a->pattern = argv[i];
    }
    return NULL;
}

/* CertAuthKeyTypes rsa:2048 ec:P-256 ec:P-384 ed25519 */
static const char *add_key_type(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_dir_conf *dc = d;
    ca_key_policy_t *kp = &dc->prof.key_policy;

    if (!dc->prof.key_types_set) {
        memset(kp, 0, sizeof(*kp));
        kp->rsa_max_bits = 8192;
        dc->prof.key_types_set = 1;
    }
    if (!strcasecmp(arg, "ec:P-256") || !strcasecmp(arg, "ec")) {
        kp->allow_p256 = 1;
    }
    else if (!strcasecmp(arg, "ec:P-384")) {
        kp->allow_p384 = 1;
    }
    else if (!strcasecmp(arg, "ed25519")) {
        kp->allow_ed25519 = 1;
    }
    else if (!strncasecmp(arg, "rsa", 3)) {
        int bits = 2048;
        if (arg[3] == ':') {
            const char *err = parse_int(cmd, "CertAuthKeyTypes", arg + 4,
                                        2048, 8192, &bits);
            if (err) {
                return apr_pstrcat(cmd->pool, err, " (RSA key bits)", NULL);
            }
        }
        else if (arg[3]) {
            goto bad;
        }
        kp->allow_rsa = 1;
        kp->rsa_min_bits = bits;
    }
    else {
        goto bad;
    }
    return NULL;
bad:
    return apr_psprintf(cmd->pool, "CertAuthKeyTypes: unknown key type '%s' "
                        "(rsa, rsa:BITS for at least BITS, ec:P-256, "
                        "ec:P-384, ed25519)", arg);
}

static const char *add_key_usage(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_dir_conf *dc = d;
    unsigned bit;
    if (ca_key_usage_parse(arg, &bit) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "CertAuthKeyUsage: unknown key usage "
                            "'%s' (digitalSignature, nonRepudiation, "
                            "keyEncipherment, dataEncipherment, keyAgreement)",
                            arg);
    }
    if (!dc->prof.key_usage_set) {
        dc->prof.key_usage_set = 1;
        dc->prof.key_usage = 0;
    }
    dc->prof.key_usage |= bit;
    return NULL;
}

static const char *add_eku(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_dir_conf *dc = d;
    if (ca_eku_check(arg) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "CertAuthExtendedKeyUsage: unknown "
                            "extended key usage '%s' (clientAuth, serverAuth, "
                            "emailProtection, codeSigning, OCSPSigning, "
                            "timeStamping or a dotted OID)", arg);
    }
    if (!dc->prof.eku) {
        dc->prof.eku = apr_array_make(cmd->pool, 3, sizeof(const char *));
    }
    APR_ARRAY_PUSH(dc->prof.eku, const char *) = arg;
    return NULL;
}

/* A dotted OID: arcs of digits separated by single dots, at least two,
 * the first 0, 1 or 2. */
static int dotted_oid(const char *s)
{
    int arcs = 0, digits = 0;
    if (s[0] < '0' || s[0] > '2' || (s[1] != '.')) {
        return 0;
    }
    for (; *s; s++) {
        if (apr_isdigit(*s)) {
            digits++;
        }
        else if (*s == '.' && digits) {
            arcs++;
            digits = 0;
        }
        else {
            return 0;
        }
    }
    return digits > 0 && arcs >= 1;
}

/* CertAuthAIA OID URL */
static const char *add_aia(cmd_parms *cmd, void *d, const char *oid,
                           const char *url)
{
    certauth_dir_conf *dc = d;
    ASN1_OBJECT *obj = dotted_oid(oid) ? OBJ_txt2obj(oid, 1) : NULL;
    apr_uri_t uri;
    ca_aia_t *a;

    if (!obj) {
        return apr_psprintf(cmd->pool, "CertAuthAIA: '%s' is not a dotted "
                            "OID (e.g. 2.25.305821105408246119474742976030998"
                            "643995)", oid);
    }
    ASN1_OBJECT_free(obj);
    if (apr_uri_parse(cmd->pool, url, &uri) != APR_SUCCESS || !uri.scheme
        || !uri.hostname || strpbrk(url, " \t\"<>")) {
        return apr_psprintf(cmd->pool, "CertAuthAIA: '%s' is not an absolute "
                            "URL", url);
    }
    if (!dc->prof.aia) {
        dc->prof.aia = apr_array_make(cmd->pool, 1, sizeof(ca_aia_t));
    }
    a = apr_array_push(dc->prof.aia);
    a->oid = oid;
    a->url = url;
    return NULL;
}

/* CertAuthRequire EXPR: who may use the profile. */
static const char *set_require(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_dir_conf *dc = d;
    const char *err = NULL;
    dc->prof.require = ap_expr_parse_cmd(cmd, arg, 0, &err, NULL);
    if (err) {
        return apr_psprintf(cmd->pool, "CertAuthRequire: cannot parse "
                            "expression '%s': %s", arg, err);
    }
    dc->prof.require_text = arg;
    return NULL;
}

/* CertAuthACMEProfile PROFILE PATTERN...: the ACME server issues with the
 * named <CertAuthProfile> for DNS names matching a pattern. */
static const char *set_acme_profile(cmd_parms *cmd, void *d, int argc,
                                    char *const argv[])
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *err = srv_only(cmd);
    certauth_ref *ref;
    int i;
    (void)d;

    if (err) {
        return err;
    }
    if (argc < 2) {
        return "CertAuthACMEProfile: give a <CertAuthProfile> name and at "
               "least one DNS name pattern (name, *.domain or *)";
    }
    if ((err = check_name(argv[0]))) {
        return apr_pstrcat(cmd->pool, "CertAuthACMEProfile: ", err, NULL);
    }
    sc->acme_profile = argv[0];
    sc->acme_names = apr_array_make(cmd->pool, argc - 1,
                                    sizeof(const char *));
    for (i = 1; i < argc; i++) {
        const char *pat = argv[i];
        const char *rest = !strncmp(pat, "*.", 2) ? pat + 2
                           : pat[0] == '.' ? pat + 1 : pat;
        if (strcmp(pat, "*") && (!*rest || strchr(rest, '*')
                                 || strchr(rest, '/') || strchr(rest, ':'))) {
            return apr_psprintf(cmd->pool, "CertAuthACMEProfile: '%s' is not "
                                "a DNS name pattern (name, *.domain or *)",
                                pat);
        }
        APR_ARRAY_PUSH(sc->acme_names, const char *)
            = apr_pstrdup(cmd->pool, pat);
    }
    ref = apr_array_push(sc->refs);
    ref->name = argv[0];
    ref->where = where(cmd);
    return NULL;
}

static const char *set_acme_port(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *err = srv_only(cmd);
    (void)d;
    if (err) {
        return err;
    }
    return parse_int(cmd, cmd->cmd->name, arg, 1, 65535,
                     !strcasecmp(cmd->cmd->name, "CertAuthACMETLSPort")
                         ? &sc->acme_tls_port : &sc->acme_http_port);
}

static const char *set_acme_eab(cmd_parms *cmd, void *d, int flag)
{
    const char *err = srv_only(cmd);
    (void)d;
    if (err) {
        return err;
    }
    certauth_srv(cmd->server)->acme_eab = flag;
    return NULL;
}

/* CertAuthACME On: this <Location> is an ACME server (directory at
 * LOCATION/directory). */
static const char *set_acme(cmd_parms *cmd, void *d, int flag)
{
    certauth_dir_conf *dc = d;
    const char *err = set_enabled(cmd, d, flag);

    if (err) {
        return apr_pstrcat(cmd->pool, "CertAuthACME", err + 8, NULL);
    }
    dc->acme = flag;
    if (flag) {
        certauth_srv(cmd->server)->acme_location = dc->location;
    }
    return NULL;
}

static const char *set_srv_int(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *name = cmd->cmd->name, *err = srv_only(cmd);
    (void)d;
    if (err) {
        return err;
    }
    if (!strcasecmp(name, "CertAuthCRLValidityDays")) {
        return parse_int(cmd, name, arg, 1, 3650, &sc->crl_days);
    }
    if (!strcasecmp(name, "CertAuthCRLRetentionDays")) {
        return parse_int(cmd, name, arg, 0, 36500, &sc->crl_retention_days);
    }
    if (!strcasecmp(name, "CertAuthCRLRefreshSeconds")) {
        return parse_int(cmd, name, arg, 1, 86400, &sc->crl_refresh_secs);
    }
    if (!strcasecmp(name, "CertAuthOCSPValiditySeconds")) {
        return parse_int(cmd, name, arg, 60, 7 * 86400,
                         &sc->ocsp_validity_secs);
    }
    if (!strcasecmp(name, "CertAuthOCSPResponderDays")) {
        return parse_int(cmd, name, arg, 1, 365, &sc->ocsp_responder_days);
    }
    return parse_int(cmd, name, arg, 0, 30 * 86400,
                     &sc->supersede_grace_secs);
}

/* CertAuthOCSP On|Off */
static const char *set_ocsp(cmd_parms *cmd, void *d, int flag)
{
    const char *err = srv_only(cmd);
    (void)d;
    if (err) {
        return err;
    }
    certauth_srv(cmd->server)->ocsp = flag;
    return NULL;
}

/* CertAuthOCSPPath SEGMENT: below the CertAuth Location. */
static const char *set_ocsp_path(cmd_parms *cmd, void *d, const char *arg)
{
    const char *err = srv_only(cmd);
    (void)d;
    if (err) {
        return err;
    }
    while (*arg == '/') {
        arg++;
    }
    if (!*arg || strspn(arg, "abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")
                     != strlen(arg)
        || arg[strlen(arg) - 1] == '/' || strstr(arg, "..")) {
        return apr_psprintf(cmd->pool, "CertAuthOCSPPath: '%s' is not a "
                            "path below the Location (e.g. ocsp)", arg);
    }
    certauth_srv(cmd->server)->ocsp_path = arg;
    return NULL;
}

/* CertAuthOCSPURL URL|none: the AIA OCSP entry of issued certificates. */
static const char *set_ocsp_url(cmd_parms *cmd, void *d, const char *arg)
{
    const char *err = srv_only(cmd);
    apr_uri_t uri;
    (void)d;
    if (err) {
        return err;
    }
    if (!strcasecmp(arg, "none")) {
        certauth_srv(cmd->server)->ocsp_url = "";
        return NULL;
    }
    if (apr_uri_parse(cmd->pool, arg, &uri) != APR_SUCCESS || !uri.scheme
        || (strcasecmp(uri.scheme, "https") && strcasecmp(uri.scheme, "http"))
        || !uri.hostname || !*uri.hostname || uri.query || uri.fragment
        || strpbrk(arg, " \t\"<>\\")) {
        return apr_psprintf(cmd->pool, "CertAuthOCSPURL: '%s' is not an "
                            "absolute http URL (e.g. "
                            "http://ca.example.org/ca/ocsp) or none", arg);
    }
    certauth_srv(cmd->server)->ocsp_url = arg;
    return NULL;
}

/* CertAuthOCSPSigner responder|ca */
static const char *set_ocsp_signer(cmd_parms *cmd, void *d, const char *arg)
{
    const char *err = srv_only(cmd);
    (void)d;
    if (err) {
        return err;
    }
    if (!strcasecmp(arg, "ca")) {
        certauth_srv(cmd->server)->ocsp_signer_ca = 1;
    }
    else if (!strcasecmp(arg, "responder")) {
        certauth_srv(cmd->server)->ocsp_signer_ca = 0;
    }
    else {
        return "CertAuthOCSPSigner: responder (a delegated responder "
               "certificate, the default) or ca (the CA key)";
    }
    return NULL;
}

/* CertAuthDBTimeout, CertAuthCRLDelay: a time (seconds, or with a unit:
 * "500ms"); CertAuthDBMaxWaiters: a count. */
static const char *set_db_limit(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *name = cmd->cmd->name, *err = srv_only(cmd);
    apr_interval_time_t t;
    (void)d;
    if (err) {
        return err;
    }
    if (!strcasecmp(name, "CertAuthDBMaxWaiters")) {
        if (cmd->server->is_virtual) {
            /* one limit for all processes and hosts (db.c) */
            return "CertAuthDBMaxWaiters: set it in the main server, not "
                   "in a <VirtualHost> (it counts for all of them)";
        }
        return parse_int(cmd, name, arg, 1, CERTAUTH_MAX_WAITERS,
                         &sc->db_max_waiters);
    }
    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS
        || t < apr_time_from_msec(100) || t > apr_time_from_sec(300)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a time from 100ms "
                            "to 300s (e.g. 3, or 500ms)", name, arg);
    }
    if (!strcasecmp(name, "CertAuthCRLDelay")) {
        sc->crl_delay = t;
    }
    else {
        sc->db_timeout = t;
    }
    return NULL;
}

/* CertAuthAdmin EXPR: who administers the CA (any serial, search, audit). */
static const char *set_admin(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_dir_conf *dc = d;
    const char *err = NULL;
    dc->admin = ap_expr_parse_cmd(cmd, arg, 0, &err, NULL);
    if (err) {
        return apr_psprintf(cmd->pool, "CertAuthAdmin: cannot parse "
                            "expression '%s': %s", arg, err);
    }
    return NULL;
}

/* Contradictions inside one profile; NULL or a message. */
static const char *prof_contradictions(apr_pool_t *p,
                                       const certauth_prof_conf *pc)
{
    int i, j;
    const ca_key_policy_t *kp = &pc->key_policy;

    for (i = 0; pc->rdns && i < pc->rdns->nelts; i++) {
        const certauth_rdn *a = &APR_ARRAY_IDX(pc->rdns, i, certauth_rdn);
        for (j = i + 1; j < pc->rdns->nelts; j++) {
            const certauth_rdn *b = &APR_ARRAY_IDX(pc->rdns, j, certauth_rdn);
            if (a->nid == b->nid
                && (a->kind == CA_RDN_FORBIDDEN || b->kind == CA_RDN_FORBIDDEN)
                && a->kind != b->kind
                && (a->kind != CA_RDN_TEMPLATE && b->kind != CA_RDN_TEMPLATE)) {
                return apr_psprintf(p, "subject field %s is both forbidden "
                                    "and taken from the CSR", a->field);
            }
            if (a->nid == b->nid && a->kind != CA_RDN_TEMPLATE
                && b->kind != CA_RDN_TEMPLATE) {
                return apr_psprintf(p, "subject field %s has two CSR rules",
                                    a->field);
            }
        }
    }
    if (pc->key_types_set) {
        if (!kp->allow_rsa && !kp->allow_p256 && !kp->allow_p384
            && !kp->allow_ed25519) {
            return "no key type allowed";
        }
        if (pc->key_usage_set
            && (pc->key_usage & (CA_KU_KEY_ENCIPHERMENT
                                 | CA_KU_DATA_ENCIPHERMENT))
            && !kp->allow_rsa) {
            return "CertAuthKeyUsage keyEncipherment/dataEncipherment needs "
                   "RSA keys, but CertAuthKeyTypes allows none";
        }
        if (pc->key_usage_set && (pc->key_usage & CA_KU_KEY_AGREEMENT)
            && !kp->allow_p256 && !kp->allow_p384) {
            return "CertAuthKeyUsage keyAgreement needs EC keys, but "
                   "CertAuthKeyTypes allows none";
        }
    }
    if (pc->renewal_window_days > 0 && pc->validity_days > 0
        && pc->renewal_window_days >= pc->validity_days) {
        return apr_psprintf(p, "CertAuthRenewalWindowDays %d is not shorter "
                            "than CertAuthValidityDays %d",
                            pc->renewal_window_days, pc->validity_days);
    }
    if (pc->max_valid_per_owner == 0) {
        return "CertAuthMaxValidPerOwner 0 would refuse every request";
    }
    return NULL;
}

/* <CertAuthProfile name> ... </CertAuthProfile> */
static const char *profile_section(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *endp = ap_strrchr_c(arg, '>');
    const char *err, *name;
    char *old_path = cmd->path;
    ap_conf_vector_t *vec;
    certauth_dir_conf *pc;
    ap_directive_t *child;
    int old_override = cmd->override;
    (void)d;

    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT))) {
        return err;
    }
    if (!endp) {
        return "<CertAuthProfile> directive missing closing '>'";
    }
    name = apr_pstrndup(cmd->pool, arg, (apr_size_t)(endp - arg));
    name = ap_getword_conf(cmd->pool, &name);
    if ((err = check_name(name))) {
        return apr_pstrcat(cmd->pool, "<CertAuthProfile ", name, ">: ", err,
                           NULL);
    }
    if (apr_hash_get(sc->profiles, name, APR_HASH_KEY_STRING)) {
        /* sc holds only this server's own profiles while parsing */
        certauth_prof_conf *old = apr_hash_get(sc->profiles, name,
                                               APR_HASH_KEY_STRING);
        return apr_psprintf(cmd->pool, "<CertAuthProfile %s>: defined twice "
                            "(first at %s)", name, old->where);
    }
    for (child = cmd->directive->first_child; child; child = child->next) {
        if (strncasecmp(child->directive, "CertAuth", 8)
            || !strcasecmp(child->directive, "CertAuth")
            || !strcasecmp(child->directive, "CertAuthDefaultProfile")
            || !strcasecmp(child->directive, "CertAuthMaxRequestBody")) {
            return apr_psprintf(cmd->pool, "<CertAuthProfile %s>: %s is not "
                                "a profile directive (%s:%d)", name,
                                child->directive, child->filename,
                                child->line_num);
        }
    }
    vec = ap_create_per_dir_config(cmd->pool);
    cmd->path = apr_pstrcat(cmd->pool, "<CertAuthProfile ", name, ">", NULL);
    cmd->override = OR_ALL | ACCESS_CONF;
    err = ap_walk_config(cmd->directive->first_child, cmd, vec);
    cmd->path = old_path;
    cmd->override = old_override;
    if (err) {
        return err;
    }
    pc = ap_get_module_config(vec, &certauth_module);
    if (!pc) {
        pc = certauth_create_dir_conf(cmd->pool, NULL);
    }
    if (pc->prof.name) {
        return apr_psprintf(cmd->pool, "<CertAuthProfile %s>: "
                            "CertAuthProfileName is for a Location's own "
                            "settings; the section names the profile", name);
    }
    pc->prof.name = name;
    pc->prof.where = where(cmd);
    if ((err = prof_contradictions(cmd->pool, &pc->prof))) {
        return apr_psprintf(cmd->pool, "<CertAuthProfile %s>: %s", name, err);
    }
    {
        certauth_prof_conf *stored = apr_palloc(cmd->pool, sizeof(*stored));
        *stored = pc->prof;
        apr_hash_set(sc->profiles, name, APR_HASH_KEY_STRING, stored);
    }
    return NULL;
}

const char *certauth_check_profiles(apr_pool_t *p, server_rec *s)
{
    certauth_srv_conf *sc = certauth_srv(s);
    int i;

    for (i = 0; sc->refs && i < sc->refs->nelts; i++) {
        const certauth_ref *ref = &APR_ARRAY_IDX(sc->refs, i, certauth_ref);
        if (!apr_hash_get(sc->profiles, ref->name, APR_HASH_KEY_STRING)) {
            return apr_psprintf(p, "CertAuthDefaultProfile (%s): no "
                                "<CertAuthProfile %s> is defined for this "
                                "server", ref->where, ref->name);
        }
    }
    return NULL;
}

#define PROF_CONF (ACCESS_CONF)

const command_rec certauth_cmds[] = {
    AP_INIT_TAKE1("CertAuthCACertificateFile", set_ca_cert, NULL, RSRC_CONF,
                  "PEM file with the CA certificate (then any chain above it)"),
    AP_INIT_TAKE1("CertAuthCAKeyFile", set_ca_key, NULL, RSRC_CONF,
                  "PEM file with the CA private key (mode 0600)"),
    AP_INIT_TAKE1("CertAuthCAPassPhrase", set_passphrase, NULL, RSRC_CONF,
                  "pass phrase of an encrypted CA key: file:/path, "
                  "exec:/path or env:NAME"),
    AP_INIT_TAKE1("CertAuthPreviousCACertificateFile", set_rollover_file,
                  NULL, RSRC_CONF,
                  "after a rollover: a previous CA certificate (its "
                  "certificates still identify their holders; published); "
                  "once for each previous CA generation"),
    AP_INIT_TAKE12("CertAuthPreviousCAKeyFile", set_prev_key, NULL,
                   RSRC_CONF,
                   "after a rollover: the previous CA's key (file or "
                   "PKCS#11 URI) and optionally its pass phrase source: it "
                   "signs the previous CA's CRL; the Nth is the key of the "
                   "Nth CertAuthPreviousCACertificateFile"),
    AP_INIT_TAKE1("CertAuthCALinkCertificates", set_rollover_file, (void *)1,
                  RSRC_CONF,
                  "after a rollover: the link certificates NewWithOld and "
                  "OldWithNew (certauth-admin rollover's links.pem); once "
                  "for each rollover"),
    AP_INIT_TAKE1("CertAuthBaseURL", set_base_url, NULL, RSRC_CONF,
                  "public URL of the CA endpoints, e.g. "
                  "https://ca.example.org/ca"),
    AP_INIT_RAW_ARGS("<CertAuthProfile", profile_section, NULL, RSRC_CONF,
                     "a named certificate profile"),
    AP_INIT_TAKE1("CertAuthCRLValidityDays", set_srv_int, NULL, RSRC_CONF,
                  "days from thisUpdate to nextUpdate of the CRL (default 7)"),
    AP_INIT_TAKE1("CertAuthCRLRetentionDays", set_srv_int, NULL, RSRC_CONF,
                  "days a revoked certificate stays on the CRL after it "
                  "expired (default 90)"),
    AP_INIT_TAKE1("CertAuthCRLRefreshSeconds", set_srv_int, NULL, RSRC_CONF,
                  "how often a front end asks the database for a newer CRL "
                  "(default 60)"),
    AP_INIT_TAKE1("CertAuthDBTimeout", set_db_limit, NULL, RSRC_CONF,
                  "longest a request waits for the database, locks and "
                  "busy time together (default 3s); then 503"),
    AP_INIT_TAKE1("CertAuthDBMaxWaiters", set_db_limit, NULL, RSRC_CONF,
                  "requests that may wait for a stalled write path at once, "
                  "in all processes (default 8); others get 503 at once"),
    /* mod_dbd's own: httpd gives a directive to every module that
     * declares it, so mod_certauth learns the size of mod_dbd's pool and
     * bounds the wait for one of its connections (db.c) */
    AP_INIT_TAKE1("DBDriver", certauth_db_dbd_param, NULL, RSRC_CONF,
                  "(mod_dbd's; read by mod_certauth too)"),
    AP_INIT_TAKE1("DBDParams", certauth_db_dbd_param, NULL, RSRC_CONF,
                  "(mod_dbd's; read by mod_certauth too)"),
    AP_INIT_TAKE1("DBDMax", certauth_db_dbd_param, NULL, RSRC_CONF,
                  "(mod_dbd's; read by mod_certauth too)"),
    AP_INIT_FLAG("DBDPersist", certauth_db_dbd_persist, NULL, RSRC_CONF,
                 "(mod_dbd's; read by mod_certauth too)"),
    AP_INIT_TAKE1("CertAuthCRLDelay", set_db_limit, NULL, RSRC_CONF,
                  "longest time from a revocation to a CRL listing it "
                  "(default 2s)"),
    AP_INIT_TAKE1("CertAuthSupersedeGraceSeconds", set_srv_int, NULL,
                  RSRC_CONF, "a renewed certificate appears on the CRL this "
                  "long after its renewal (default 0)"),
    AP_INIT_FLAG("CertAuthOCSP", set_ocsp, NULL, RSRC_CONF,
                 "Off: no OCSP responder below the CertAuth Location "
                 "(default On)"),
    AP_INIT_TAKE1("CertAuthOCSPPath", set_ocsp_path, NULL, RSRC_CONF,
                  "path of the OCSP responder below the Location (default "
                  "ocsp)"),
    AP_INIT_TAKE1("CertAuthOCSPURL", set_ocsp_url, NULL, RSRC_CONF,
                  "OCSP URL written into issued certificates' "
                  "authorityInfoAccess, or none (default)"),
    AP_INIT_TAKE1("CertAuthOCSPSigner", set_ocsp_signer, NULL, RSRC_CONF,
                  "responder (delegated certificate, default) or ca"),
    AP_INIT_TAKE1("CertAuthOCSPValiditySeconds", set_srv_int, NULL,
                  RSRC_CONF, "from thisUpdate to nextUpdate of OCSP "
                  "responses (default 3600)"),
    AP_INIT_TAKE1("CertAuthOCSPResponderDays", set_srv_int, NULL, RSRC_CONF,
                  "validity of the responder certificate, renewed at half "
                  "of it (default 2)"),
    AP_INIT_TAKE1("CertAuthAdmin", set_admin, NULL, ACCESS_CONF,
                  "an httpd expression that is true for administrators"),
    AP_INIT_TAKE_ARGV("CertAuthACMEProfile", set_acme_profile, NULL,
                      RSRC_CONF, "PROFILE PATTERN...: the ACME server issues "
                      "with this <CertAuthProfile> for DNS names matching a "
                      "pattern (name, *.domain, *)"),
    AP_INIT_TAKE1("CertAuthACMEChallengePort", set_acme_port, NULL, RSRC_CONF,
                  "the port http-01 challenges are fetched from (default 80)"),
    AP_INIT_TAKE1("CertAuthACMETLSPort", set_acme_port, NULL, RSRC_CONF,
                  "the port tls-alpn-01 challenges connect to (default 443)"),
    AP_INIT_FLAG("CertAuthACMERequireEAB", set_acme_eab, NULL, RSRC_CONF,
                 "On (default): ACME accounts need external account binding "
                 "credentials of a site user"),
    AP_INIT_FLAG("CertAuthACME", set_acme, NULL, ACCESS_CONF,
                 "On: this <Location> is an ACME (RFC 8555) server"),
    AP_INIT_FLAG("CertAuth", set_enabled, NULL, ACCESS_CONF,
                 "On: serve the CA endpoints below this <Location>"),
    AP_INIT_TAKE1("CertAuthMaxRequestBody", set_max_body, NULL, ACCESS_CONF,
                  "largest request body accepted, in bytes (default 65536)"),
    AP_INIT_TAKE1("CertAuthDefaultProfile", set_default_profile, NULL,
                  ACCESS_CONF, "the <CertAuthProfile> used when the request "
                  "names none"),
    AP_INIT_TAKE1("CertAuthProfileName", set_profile_name, NULL, PROF_CONF,
                  "name of this Location's own profile, stored with each "
                  "certificate (default 'default')"),
    AP_INIT_TAKE1("CertAuthValidityDays", set_validity, NULL, PROF_CONF,
                  "validity of issued certificates in days (default 365)"),
    AP_INIT_TAKE1("CertAuthRenewalWindowDays", set_renewal_window, NULL,
                  PROF_CONF, "renewal allowed this many days before expiry "
                  "(default 30)"),
    AP_INIT_TAKE_ARGV("CertAuthSubjectRDN", add_rdn, NULL, PROF_CONF,
                      "FIELD EXPR [optional] [maxlen=N] [chars=SET]: a "
                      "subject field made by the CA; repeatable, most "
                      "significant first"),
    AP_INIT_TAKE_ARGV("CertAuthSubjectCSR", add_rdn_csr, NULL, PROF_CONF,
                      "FIELD match|supplied|optional|forbidden [value=EXPR] "
                      "[maxlen=N] [chars=SET]: a subject field from the CSR"),
    AP_INIT_TAKE_ARGV("CertAuthSAN", add_san, NULL, PROF_CONF,
                      "TYPE EXPR [optional]: a subjectAltName made by the CA"),
    AP_INIT_TAKE_ARGV("CertAuthSANFromCSR", add_san_allow, NULL, PROF_CONF,
                      "TYPE PATTERN...: subjectAltNames taken from the CSR "
                      "when they match"),
    AP_INIT_ITERATE("CertAuthKeyTypes", add_key_type, NULL, PROF_CONF,
                    "allowed keys: rsa[:MINBITS] ec:P-256 ec:P-384 ed25519"),
    AP_INIT_ITERATE("CertAuthKeyUsage", add_key_usage, NULL, PROF_CONF,
                    "keyUsage names of issued certificates"),
    AP_INIT_ITERATE("CertAuthExtendedKeyUsage", add_eku, NULL, PROF_CONF,
                    "extendedKeyUsage names or OIDs of issued certificates"),
    AP_INIT_TAKE1("CertAuthMaxValidPerOwner", set_max_per_owner, NULL,
                  PROF_CONF, "at most this many valid certificates of the "
                  "profile per owner"),
    AP_INIT_FLAG("CertAuthApproval", set_approval, NULL, PROF_CONF,
                 "On: EST enrollments wait for an administrator's approval"),
    AP_INIT_FLAG("CertAuthEnrollWithCertificate", set_enroll_by_cert, NULL,
                 PROF_CONF, "On: a client certificate alone (no login) may "
                 "obtain a new certificate by EST simpleenroll/serverkeygen; "
                 "default Off"),
    AP_INIT_FLAG("CertAuthUniqueSubject", set_unique_subject, NULL, PROF_CONF,
                 "On: no two valid certificates with the same subject"),
    AP_INIT_TAKE2("CertAuthAIA", add_aia, NULL, PROF_CONF,
                  "OID URL: an extra authorityInfoAccess entry"),
    AP_INIT_TAKE1("CertAuthRequire", set_require, NULL, PROF_CONF,
                  "an httpd expression that must be true to use the profile"),
    {NULL}
};
