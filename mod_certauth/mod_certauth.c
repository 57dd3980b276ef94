/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* mod_certauth.c: the glue.  Registers the hooks, loads the CA when the
 * configuration is checked, migrates the store when a child starts, and
 * dispatches requests below a `CertAuth On` Location to the endpoints. */

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_mutex.h>
#include <apr_atomic.h>
#include <apr_global_mutex.h>
#include <apr_optional.h>
#include <apr_strings.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <unixd.h>

#include <apr_dbd.h>
#include "mod_dbd.h"
#include "mod_certauth.h"
#include "ca_log.h"
#include "ca_ocsp.h"
#include "ca_util.h"

/* The core's log lines go to the error log of the main server. */
static void log_sink(void *baton, const char *file, int line,
                     ca_log_level_t level, apr_status_t rv, const char *msg)
{
    (void)baton;
    ap_log_error_(file, line, APLOG_MODULE_INDEX, (int)level,
                  CERTAUTH_LOG_RV(rv), ap_server_conf, "%s", msg);
}

/* The core formats a line only when httpd would write it: its threshold is
 * the level for this module of the server log_sink writes to (LogLevel
 * certauth:LEVEL of the main server). */
static void log_threshold(server_rec *s)
{
    int level = ap_get_server_module_loglevel(s, APLOG_MODULE_INDEX);

    ca_log_set(log_sink, NULL,
               level >= APLOG_DEBUG ? CA_LOG_DEBUG : (ca_log_level_t)level);
}

static int certauth_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                               apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    ca_log_set(log_sink, NULL, CA_LOG_DEBUG);
    certauth_acme_pre_config();
    return certauth_db_init_hooks(pconf);
}

/* After a rollover: sc->prevs, one for each previous CA generation,
 * newest first, each with its key when CertAuthPreviousCAKeyFile gives it
 * (the Nth key line for the Nth certificate line). */
static apr_status_t certauth_load_generations(certauth_srv_conf *sc,
                                              apr_pool_t *pconf,
                                              const char **err)
{
    int i, n = ca_n_previous(sc->ca);

    sc->prevs = apr_array_make(pconf, n ? n : 1, sizeof(certauth_gen *));
    for (i = 0; i < n; i++) {
        certauth_gen *g = apr_pcalloc(pconf, sizeof(*g));
        int file = sc->ca->previous_from ? sc->ca->previous_from[i] : i;
        g->cert = ca_previous_n(sc->ca, i);
        g->kid = ca_cert_key_id(pconf, g->cert);
        g->cert_file = APR_ARRAY_IDX(sc->prev_ca_files, file, const char *);
        if (sc->prev_keys && file < sc->prev_keys->nelts) {
            const certauth_prev_key *k = &APR_ARRAY_IDX(
                sc->prev_keys, file, certauth_prev_key);
            g->key_file = k->file;
            g->passphrase = k->passphrase;
            if (ca_load_ex(&g->ca, pconf, g->cert_file, g->key_file,
                           g->passphrase,
                           CA_LOAD_KEY_LATER | CA_LOAD_EXPIRED_OK, err)
                != APR_SUCCESS) {
                return CA_ECONFIG;
            }
        }
        APR_ARRAY_PUSH(sc->prevs, certauth_gen *) = g;
    }
    return APR_SUCCESS;
}

/* Runs for `apachectl configtest` too: every configuration mistake that can
 * be seen before serving is reported here, one line naming the directive. */
static int certauth_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp, server_rec *s0)
{
    server_rec *s;
    int any = 0;
    (void)plog;
    (void)ptemp;

    for (s = s0; s; s = s->next) {
        certauth_srv_conf *sc = certauth_srv(s);
        const char *err = NULL;
        int i;
        const char *name = apr_psprintf(ptemp, "%s:%u", s->server_hostname
                                        ? s->server_hostname : "(default)",
                                        (unsigned)s->port);

        if ((err = certauth_check_profiles(ptemp, s))) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(0109) "%s",
                         err);
            return !OK;
        }
        if (!sc->has_endpoints && !sc->ca_cert_file && !sc->ca_key_file) {
            continue;
        }
        if (!sc->ca_cert_file || !sc->ca_key_file) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(0101)
                         "%s: server %s: %s is not set",
                         sc->where ? sc->where : "CertAuth", name,
                         !sc->ca_cert_file ? "CertAuthCACertificateFile"
                                           : "CertAuthCAKeyFile");
            return !OK;
        }
        if (!sc->base_url) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(0102)
                         "CertAuthBaseURL: not set for server %s (%s); it "
                         "gives the CRL and CA certificate URLs written into "
                         "issued certificates", name, sc->where);
            return !OK;
        }
        /* Each virtual host inherits the main server's CA: load it once. */
        if (s != s0 && certauth_srv(s0)->ca
            && !strcmp(sc->ca_cert_file, certauth_srv(s0)->ca_cert_file)
            && !strcmp(sc->ca_key_file, certauth_srv(s0)->ca_key_file)) {
            sc->ca = certauth_srv(s0)->ca;
        }
        /* a key in a PKCS#11 token is checked in a process of its own
         * (configtest too) and loaded by each child after fork
         * (certauth_child_init): this process never opens the module */
        else if (ca_load_ex(&sc->ca, pconf, sc->ca_cert_file,
                            sc->ca_key_file, sc->passphrase,
                            CA_LOAD_KEY_LATER, &err) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(0103)
                         "%s (%s): %s",
                         err && (strstr(err, "no pass phrase")
                                 || strstr(err, ": pass phrase"))
                             ? "CertAuthCAPassPhrase"
                         : err && strstr(err, sc->ca_key_file)
                             ? "CertAuthCAKeyFile"
                             : "CertAuthCACertificateFile",
                         sc->where, err ? err : "cannot load the CA");
            return !OK;
        }
        if (sc->acme_location && !sc->acme_profile) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(1901)
                         "CertAuthACME On (%s) needs CertAuthACMEProfile "
                         "(which profile, which names) for server %s",
                         sc->acme_location, name);
            return !OK;
        }
        if (sc->link_files && !sc->prev_ca_files) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(1802)
                         "CertAuthCALinkCertificates (%s): needs "
                         "CertAuthPreviousCACertificateFile", sc->where);
            return !OK;
        }
        if (sc->prev_ca_files && !sc->ca->previous
            && ca_set_previous_n(sc->ca, pconf,
                                 (const char *const *)sc->prev_ca_files->elts,
                                 sc->prev_ca_files->nelts,
                                 sc->link_files
                                     ? (const char *const *)
                                           sc->link_files->elts
                                     : NULL,
                                 sc->link_files ? sc->link_files->nelts : 0,
                                 &err) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(1803)
                         "%s (%s): %s",
                         err && strstr(err, " links ")
                             ? "CertAuthCALinkCertificates"
                             : "CertAuthPreviousCACertificateFile",
                         sc->where, err);
            return !OK;
        }
        if (sc->prev_keys
            && (!sc->prev_ca_files
                || sc->prev_keys->nelts > sc->prev_ca_files->nelts)) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(1804)
                         "CertAuthPreviousCAKeyFile (%s): needs "
                         "CertAuthPreviousCACertificateFile (the Nth key "
                         "line is the key of the Nth certificate line: %d "
                         "keys, %d certificates)", sc->where,
                         sc->prev_keys->nelts,
                         sc->prev_ca_files ? sc->prev_ca_files->nelts : 0);
            return !OK;
        }
        if (sc->prev_ca_files && !sc->prevs
            && certauth_load_generations(sc, pconf, &err) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(1805)
                         "CertAuthPreviousCAKeyFile (%s): %s", sc->where,
                         err);
            return !OK;
        }
        if (sc->crl_days < 0) sc->crl_days = 7;
        if (sc->crl_retention_days < 0) sc->crl_retention_days = 90;
        if (sc->crl_refresh_secs < 0) sc->crl_refresh_secs = 60;
        if (sc->supersede_grace_secs < 0) sc->supersede_grace_secs = 0;
        /* on by default like the CRL (2); 1: CertAuthOCSP On was said */
        if (sc->ocsp < 0) sc->ocsp = 2;
        if (!sc->ocsp_path) sc->ocsp_path = "ocsp";
        if (sc->ocsp_signer_ca < 0) sc->ocsp_signer_ca = 0;
        if (sc->ocsp_validity_secs < 0) sc->ocsp_validity_secs = 3600;
        if (sc->ocsp_responder_days < 0) sc->ocsp_responder_days = 2;
        if (sc->ocsp && ca_ocsp_init(&sc->ocsp_hashes, pconf, sc->ca)
                            != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(1701)
                         "CertAuthOCSP: cannot hash the CA's name and key");
            return !OK;
        }
        /* after a rollover the previous CAs' certificates are answered
         * too, each signed by its key or a responder certificate it
         * issued */
        for (i = 0; sc->ocsp && sc->prevs && i < sc->prevs->nelts; i++) {
            certauth_gen *g = APR_ARRAY_IDX(sc->prevs, i, certauth_gen *);
            if (g->ca && !g->ocsp_hashes
                && ca_ocsp_init(&g->ocsp_hashes, pconf, g->ca)
                       != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(1812)
                             "CertAuthOCSP: cannot hash the previous CA's "
                             "name and key (%s)", g->cert_file);
                return !OK;
            }
        }
        if (sc->has_endpoints) {
            any = 1;
        }
    }

    if (any) {
        return certauth_db_check_config(s0);
    }
    return OK;
}

/* The CRL cache of each CA: a file in a runtime directory that the
 * children (the httpd user) may write. */
static int crl_dirs(apr_pool_t *pconf, server_rec *s0)
{
    const char *dir = ap_runtime_dir_relative(pconf, "certauth");
    server_rec *s;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, APR_FROM_OS_ERROR(errno), s0,
                     CA_LOGNO(0112) "cannot create %s", dir);
        return !OK;
    }
    if (geteuid() == 0
        && chown(dir, ap_unixd_config.user_id, ap_unixd_config.group_id)
               != 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, APR_FROM_OS_ERROR(errno), s0,
                     CA_LOGNO(0113) "cannot give %s to the httpd user", dir);
        return !OK;
    }
    for (s = s0; s; s = s->next) {
        certauth_srv_conf *sc = certauth_srv(s);
        if (sc->ca) {
            char fp[17];
            apr_size_t j;
            int i;
            for (i = 0, j = 0; sc->ca->sha256_fp[i] && j < 16; i++) {
                if (sc->ca->sha256_fp[i] != ':') {
                    fp[j++] = sc->ca->sha256_fp[i];
                }
            }
            fp[j] = '\0';
            sc->crl_cache = apr_psprintf(pconf, "%s/crl-%s.bin", dir, fp);
            for (i = 0; sc->prevs && i < sc->prevs->nelts; i++) {
                /* each previous generation's, by its key identifier */
                certauth_gen *g = APR_ARRAY_IDX(sc->prevs, i,
                                                certauth_gen *);
                g->crl_cache = apr_psprintf(pconf, "%s/crl-%s-previous-%.16s"
                                            ".bin", dir, fp, g->kid);
                g->ocsp_responder = apr_psprintf(
                    pconf, "%s/ocsp-%s-responder-previous-%.16s.pem", dir,
                    fp, g->kid);
            }
            if (sc->ocsp == 1 && sc->has_endpoints) {
                core_dir_config *cd = ap_get_core_module_config(
                    s->lookup_defaults);
                if (!cd->allow_encoded_slashes) {
                    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                                 CA_LOGNO(1704) "CertAuthOCSP On in server "
                                 "%s without AllowEncodedSlashes NoDecode: "
                                 "httpd answers OCSP GET requests whose "
                                 "base64 holds %%2F with its own 404 page",
                                 s->server_hostname ? s->server_hostname
                                                    : "(default)");
                }
            }
            sc->ocsp_dir = apr_psprintf(pconf, "%s/ocsp-%s", dir, fp);
            sc->ocsp_responder = apr_psprintf(pconf, "%s/ocsp-%s-responder"
                                              ".pem", dir, fp);
            if (sc->ocsp && mkdir(sc->ocsp_dir, 0755) != 0
                && errno != EEXIST) {
                ap_log_error(APLOG_MARK, APLOG_EMERG,
                             APR_FROM_OS_ERROR(errno), s, CA_LOGNO(1702)
                             "cannot create %s", sc->ocsp_dir);
                return !OK;
            }
            if (sc->ocsp && geteuid() == 0
                && chown(sc->ocsp_dir, ap_unixd_config.user_id,
                         ap_unixd_config.group_id) != 0) {
                ap_log_error(APLOG_MARK, APLOG_EMERG,
                             APR_FROM_OS_ERROR(errno), s, CA_LOGNO(1703)
                             "cannot give %s to the httpd user",
                             sc->ocsp_dir);
                return !OK;
            }
        }
    }
    return OK;
}

static int certauth_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    (void)ptemp;

    log_threshold(s);
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    if (certauth_db_post_config(pconf, s) != OK
        || crl_dirs(pconf, s) != OK) {
        return !OK;
    }
    return certauth_crl_post_config(pconf, s);
}

static void certauth_child_init(apr_pool_t *pchild, server_rec *s0)
{
    server_rec *s;

    certauth_crl_child_init(pchild, s0);
    certauth_ocsp_child_init(pchild, s0);
    for (s = s0; s; s = s->next) {
        certauth_srv_conf *sc = certauth_srv(s);
        const char *err = NULL;
        int i;
        if (sc->ca && ca_key_reopen(sc->ca, pchild, &err) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(1801)
                         "CertAuthCAKeyFile (%s): %s; this process cannot "
                         "sign (503) until httpd restarts", sc->where, err);
        }
        for (i = 0; sc->prevs && i < sc->prevs->nelts; i++) {
            certauth_gen *g = APR_ARRAY_IDX(sc->prevs, i, certauth_gen *);
            if (g->ca && ca_key_reopen(g->ca, pchild, &err) != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(1806)
                             "CertAuthPreviousCAKeyFile (%s): %s; this "
                             "process cannot sign the CRL of the previous "
                             "CA %s (503)", sc->where, err, g->cert_file);
            }
        }
    }
    /* the mutexes, the connections' schema check */
    certauth_db_child_init(pchild, s0);
}

/* The path below the endpoints' Location, or NULL when r is not ours. */
static const char *endpoint_path(request_rec *r, const certauth_dir_conf *dc)
{
    apr_size_t n;

    if (!dc || dc->enabled != 1 || !dc->location || !r->uri) {
        return NULL;
    }
    n = strlen(dc->location);
    if (strncmp(r->uri, dc->location, n) || r->uri[n] != '/') {
        return NULL;
    }
    return r->uri + n + 1;
}

/* Claim the request for our handler once the site's access and
 * authentication checks have run. */
static int certauth_fixups(request_rec *r)
{
    const certauth_dir_conf *dc = certauth_dir(r);
    const char *rest = endpoint_path(r, dc);

    if (rest && !certauth_is_est(dc)) {
        rest = certauth_ocsp_rest(r, rest);
    }
    if (rest && *rest && certauth_route_of(dc, rest)) {
        r->handler = CERTAUTH_HANDLER;
    }
    return DECLINED;
}

static int certauth_handler(request_rec *r)
{
    certauth_dir_conf *dc;
    certauth_srv_conf *sc;
    const certauth_route *rt;
    const char *rest;

    if (!r->handler || strcmp(r->handler, CERTAUTH_HANDLER)) {
        return DECLINED;
    }
    dc = certauth_dir(r);
    sc = certauth_srv(r->server);
    rest = endpoint_path(r, dc);
    if (!rest) {
        return DECLINED;
    }
    /* every response of the module, this one's error too */
    apr_table_setn(r->err_headers_out, "X-Content-Type-Options", "nosniff");
    if (!sc->ca) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(0111)
                      "CertAuth On but no CA configured for this server");
        return certauth_error(r, HTTP_INTERNAL_SERVER_ERROR,
                              "not configured", "no CA for this server");
    }

    if (!certauth_is_est(dc)) {
        rest = certauth_ocsp_rest(r, rest);
    }
    if (!*rest || !(rt = certauth_route_of(dc, rest))) {
        return DECLINED;
    }
    /* the route table's rules first, then the endpoint (routes.c) */
    return certauth_dispatch(r, rt, rest);
}

static void certauth_register_hooks(apr_pool_t *p)
{
    static const char *const after_dbd[] = {"mod_dbd.c", NULL};
    (void)p;

    ap_hook_pre_config(certauth_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(certauth_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(certauth_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(certauth_child_init, after_dbd, NULL, APR_HOOK_MIDDLE);
    ap_hook_fixups(certauth_fixups, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_expr_lookup(certauth_expr_lookup, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(certauth_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(certauth_acme_log_transaction, NULL, NULL,
                            APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(certauth) = {
    STANDARD20_MODULE_STUFF,
    certauth_create_dir_conf,
    certauth_merge_dir_conf,
    certauth_create_srv_conf,
    certauth_merge_srv_conf,
    certauth_cmds,
    certauth_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_ALWAYS_MERGE
#endif
};
