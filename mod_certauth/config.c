/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* config.c: the directives of mod_certauth, their checks, and merge rules.
 *
 * Merge rules: every value has an explicit "unset" marker (NULL or -1); a
 * virtual host or inner Location inherits each unset value from its parent.
 * The Location that says `CertAuth On` is the root of the endpoints below it;
 * inner Locations keep that root. */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "mod_certauth.h"
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
    (void)s;
    return apr_pcalloc(p, sizeof(certauth_srv_conf));
}

#define MERGE_PTR(f) c->f = add->f ? add->f : base->f

void *certauth_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    certauth_srv_conf *base = basev, *add = addv;
    certauth_srv_conf *c = apr_pcalloc(p, sizeof(*c));

    MERGE_PTR(ca_cert_file);
    MERGE_PTR(ca_key_file);
    MERGE_PTR(passphrase);
    MERGE_PTR(base_url);
    MERGE_PTR(where);
    c->has_endpoints = add->has_endpoints;
    return c;
}

void *certauth_create_dir_conf(apr_pool_t *p, char *dir)
{
    certauth_dir_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)dir;
    c->enabled = -1;
    c->max_body = -1;
    c->validity_days = -1;
    return c;
}

void *certauth_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    certauth_dir_conf *base = basev, *add = addv;
    certauth_dir_conf *c = apr_pcalloc(p, sizeof(*c));

    c->enabled = add->enabled != -1 ? add->enabled : base->enabled;
    MERGE_PTR(location);
    c->max_body = add->max_body != -1 ? add->max_body : base->max_body;
    MERGE_PTR(profile_name);
    c->validity_days = add->validity_days != -1 ? add->validity_days
                                                : base->validity_days;
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
    return c;
}

apr_off_t certauth_dir_max_body(const certauth_dir_conf *dc)
{
    return dc->max_body >= 0 ? dc->max_body : CERTAUTH_DEFAULT_MAX_BODY;
}

ca_profile_t *certauth_dir_profile(apr_pool_t *p, const certauth_dir_conf *dc)
{
    ca_profile_t *prof = ca_profile_make(p, dc->profile_name ? dc->profile_name
                                                             : "default");
    if (dc->validity_days > 0) {
        prof->validity_days = dc->validity_days;
    }
    if (dc->key_usage_set) {
        prof->key_usage = dc->key_usage;
    }
    if (dc->eku) {
        prof->eku = dc->eku;
    }
    else {
        prof->eku = apr_array_make(p, 1, sizeof(const char *));
        APR_ARRAY_PUSH(prof->eku, const char *) = "clientAuth";
    }
    return prof;
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

static const char *set_ca_key(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_srv_conf *sc = certauth_srv(cmd->server);
    const char *err = srv_only(cmd);
    (void)d;
    if (err) {
        return err;
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
               "<LocationMatch>, <Directory> or <Files>)";
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

static const char *set_profile_name(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_dir_conf *dc = d;
    const char *c;
    (void)cmd;
    if (!*arg || strlen(arg) > 64) {
        return "CertAuthProfileName: 1 to 64 characters";
    }
    for (c = arg; *c; c++) {
        if (!apr_isalnum(*c) && *c != '-' && *c != '_' && *c != '.') {
            return "CertAuthProfileName: only letters, digits, '-', '_' "
                   "and '.'";
        }
    }
    dc->profile_name = arg;
    return NULL;
}

static const char *set_validity(cmd_parms *cmd, void *d, const char *arg)
{
    certauth_dir_conf *dc = d;
    char *end;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);
    (void)cmd;
    if (*end || !*arg || n < 1 || n > 36500) {
        return apr_psprintf(cmd->pool, "CertAuthValidityDays: '%s' is not a "
                            "number of days from 1 to 36500", arg);
    }
    dc->validity_days = (int)n;
    return NULL;
}

static const char *add_rdn(cmd_parms *cmd, void *d, const char *field,
                           const char *value)
{
    certauth_dir_conf *dc = d;
    certauth_rdn *rdn;
    const char *err = NULL;
    int nid = OBJ_txt2nid(field);

    if (nid == NID_undef) {
        return apr_psprintf(cmd->pool, "CertAuthSubjectRDN: unknown subject "
                            "field '%s' (e.g. CN, O, OU, C, L, ST, "
                            "emailAddress, UID, DC)", field);
    }
    if (!dc->rdns) {
        dc->rdns = apr_array_make(cmd->pool, 4, sizeof(certauth_rdn));
    }
    rdn = apr_array_push(dc->rdns);
    rdn->field = field;
    rdn->nid = nid;
    rdn->expr = ap_expr_parse_cmd(cmd, value, AP_EXPR_FLAG_STRING_RESULT,
                                  &err, NULL);
    if (err) {
        return apr_psprintf(cmd->pool, "CertAuthSubjectRDN %s: cannot parse "
                            "expression '%s': %s", field, value, err);
    }
    return NULL;
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
    if (!dc->key_usage_set) {
        dc->key_usage_set = 1;
        dc->key_usage = 0;
    }
    dc->key_usage |= bit;
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
    if (!dc->eku) {
        dc->eku = apr_array_make(cmd->pool, 3, sizeof(const char *));
    }
    APR_ARRAY_PUSH(dc->eku, const char *) = arg;
    return NULL;
}

const command_rec certauth_cmds[] = {
    AP_INIT_TAKE1("CertAuthCACertificateFile", set_ca_cert, NULL, RSRC_CONF,
                  "PEM file with the CA certificate (then any chain above it)"),
    AP_INIT_TAKE1("CertAuthCAKeyFile", set_ca_key, NULL, RSRC_CONF,
                  "PEM file with the CA private key (mode 0600)"),
    AP_INIT_TAKE1("CertAuthCAPassPhrase", set_passphrase, NULL, RSRC_CONF,
                  "pass phrase of an encrypted CA key: file:/path, "
                  "exec:/path or env:NAME"),
    AP_INIT_TAKE1("CertAuthBaseURL", set_base_url, NULL, RSRC_CONF,
                  "public URL of the CA endpoints, e.g. "
                  "https://ca.example.org/ca"),
    AP_INIT_FLAG("CertAuth", set_enabled, NULL, ACCESS_CONF,
                 "On: serve the CA endpoints below this <Location>"),
    AP_INIT_TAKE1("CertAuthMaxRequestBody", set_max_body, NULL, ACCESS_CONF,
                  "largest request body accepted, in bytes (default 65536)"),
    AP_INIT_TAKE1("CertAuthProfileName", set_profile_name, NULL, ACCESS_CONF,
                  "name of this Location's profile, stored with each "
                  "certificate (default 'default')"),
    AP_INIT_TAKE1("CertAuthValidityDays", set_validity, NULL, ACCESS_CONF,
                  "validity of issued certificates in days (default 365)"),
    AP_INIT_TAKE2("CertAuthSubjectRDN", add_rdn, NULL, ACCESS_CONF,
                  "a subject field and its value (an httpd string "
                  "expression), most significant first; repeatable"),
    AP_INIT_ITERATE("CertAuthKeyUsage", add_key_usage, NULL, ACCESS_CONF,
                    "keyUsage names of issued certificates"),
    AP_INIT_ITERATE("CertAuthExtendedKeyUsage", add_eku, NULL, ACCESS_CONF,
                    "extendedKeyUsage names or OIDs of issued certificates"),
    {NULL}
};
