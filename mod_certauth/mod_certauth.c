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

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;
static APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close;

static const char *const db_mutex_type = "certauth-db";
static apr_global_mutex_t *db_mutex;
/* SQLite writers of all children queue here rather than inside SQLite
 * (see ca_store_set_writer_lock); always taken after db_mutex, never
 * before it. */
static const char *const write_mutex_type = "certauth-write";
static apr_global_mutex_t *write_mutex;
/* Set in a child once the schema is known to be current. */
static apr_uint32_t schema_ready;

/* The core's log lines go to the error log of the main server. */
static void log_sink(void *baton, const char *file, int line,
                     ca_log_level_t level, apr_status_t rv, const char *msg)
{
    (void)baton;
    ap_log_error_(file, line, APLOG_MODULE_INDEX, (int)level, rv,
                  ap_server_conf, "%s", msg);
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
    if (ap_mutex_register(pconf, db_mutex_type, NULL, APR_LOCK_DEFAULT, 0)
        != APR_SUCCESS) {
        return !OK;
    }
    return ap_mutex_register(pconf, write_mutex_type, NULL, APR_LOCK_DEFAULT,
                             0);
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
        if (sc->link_file && !sc->prev_ca_file) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(1802)
                         "CertAuthCALinkCertificates (%s): needs "
                         "CertAuthPreviousCACertificateFile", sc->where);
            return !OK;
        }
        if (sc->prev_ca_file && !sc->ca->previous
            && ca_set_previous(sc->ca, pconf, sc->prev_ca_file,
                               sc->link_file, &err) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(1803)
                         "%s (%s): %s",
                         err && sc->link_file && strstr(err, sc->link_file)
                             ? "CertAuthCALinkCertificates"
                             : "CertAuthPreviousCACertificateFile",
                         sc->where, err);
            return !OK;
        }
        if (sc->prev_key_file && !sc->prev_ca_file) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CA_LOGNO(1804)
                         "CertAuthPreviousCAKeyFile (%s): needs "
                         "CertAuthPreviousCACertificateFile", sc->where);
            return !OK;
        }
        if (sc->prev_key_file && !sc->prev_ca
            && ca_load_ex(&sc->prev_ca, pconf, sc->prev_ca_file,
                          sc->prev_key_file, sc->prev_passphrase,
                          CA_LOAD_KEY_LATER | CA_LOAD_EXPIRED_OK, &err)
                   != APR_SUCCESS) {
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
        if (sc->has_endpoints) {
            any = 1;
        }
    }

    if (any) {
        dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
        dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
        dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
        if (!dbd_acquire || !dbd_open || !dbd_close) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s0, CA_LOGNO(0104)
                         "CertAuth: mod_dbd is not loaded; load it and set "
                         "DBDriver/DBDParams (e.g. a2enmod dbd)");
            return !OK;
        }
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
            apr_size_t i, j;
            for (i = 0, j = 0; sc->ca->sha256_fp[i] && j < 16; i++) {
                if (sc->ca->sha256_fp[i] != ':') {
                    fp[j++] = sc->ca->sha256_fp[i];
                }
            }
            fp[j] = '\0';
            sc->crl_cache = apr_psprintf(pconf, "%s/crl-%s.bin", dir, fp);
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
    apr_status_t rv;
    (void)plog;
    (void)ptemp;

    log_threshold(s);
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    rv = ap_global_mutex_create(&db_mutex, NULL, db_mutex_type, NULL, s,
                                pconf, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, CA_LOGNO(0105)
                     "cannot create the %s mutex", db_mutex_type);
        return !OK;
    }
    rv = ap_global_mutex_create(&write_mutex, NULL, write_mutex_type, NULL,
                                s, pconf, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, CA_LOGNO(0117)
                     "cannot create the %s mutex", write_mutex_type);
        return !OK;
    }
    return crl_dirs(pconf, s);
}

static void writer_lock(void *baton, int lock)
{
    apr_status_t rv;
    (void)baton;
    if (!write_mutex) {
        return;
    }
    rv = lock ? apr_global_mutex_lock(write_mutex)
              : apr_global_mutex_unlock(write_mutex);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, ap_server_conf,
                     CA_LOGNO(0115) "cannot %s the %s mutex",
                     lock ? "lock" : "unlock", write_mutex_type);
    }
}

static apr_status_t wrap(ca_store_t **st, apr_pool_t *p, ap_dbd_t *dbd)
{
    apr_status_t rv = ca_store_wrap(st, p, dbd->driver, dbd->handle,
                                    dbd->prepared, dbd->pool);
    if (*st) {
        ca_store_set_writer_lock(*st, writer_lock, NULL);
    }
    return rv;
}

#define DB_CHECKED_NOTE "certauth-db-checked"

/* The request's connection, wrapped; checked once per request (a
 * PostgreSQL connection kept in mod_dbd's pool may have been closed by a
 * database restart: it is reopened here instead of failing a request). */
static apr_status_t request_store(request_rec *r, ap_dbd_t *dbd,
                                  ca_store_t **st)
{
    apr_status_t rv = wrap(st, r->pool, dbd);

    if (rv == APR_SUCCESS && !apr_table_get(r->notes, DB_CHECKED_NOTE)) {
        rv = ca_store_check(*st, r->pool);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(1401)
                          "database connection unusable: %s",
                          ca_store_last_error(*st));
            return rv;
        }
        apr_table_setn(r->notes, DB_CHECKED_NOTE, "1");
    }
    return rv;
}

/* Bring the schema up to date over one connection, serialised between the
 * processes of this server; have_lock: the caller holds db_mutex. */
static apr_status_t migrate_with(ca_store_t *st, apr_pool_t *p, server_rec *s,
                                 int have_lock)
{
    apr_status_t rv, lrv = APR_EINIT;
    const char *err = NULL;
    int version = 0;

    if (apr_atomic_read32(&schema_ready)) {
        return APR_SUCCESS;
    }
    if (db_mutex && !have_lock) {
        lrv = apr_global_mutex_lock(db_mutex);
    }
    rv = ca_store_migrate(st, p, &version, &err);
    if (lrv == APR_SUCCESS) {
        apr_global_mutex_unlock(db_mutex);
    }
    if (rv == APR_SUCCESS) {
        apr_atomic_set32(&schema_ready, 1);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, CA_LOGNO(0106)
                     "database schema at version %d", version);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CA_LOGNO(0107)
                     "cannot create or upgrade the database schema: %s",
                     err ? err : ca_store_last_error(st));
    }
    return rv;
}

static void certauth_child_init(apr_pool_t *pchild, server_rec *s0)
{
    server_rec *s;

    if (db_mutex) {
        apr_global_mutex_child_init(&db_mutex,
                                    apr_global_mutex_lockfile(db_mutex),
                                    pchild);
    }
    if (write_mutex) {
        apr_global_mutex_child_init(&write_mutex,
                                    apr_global_mutex_lockfile(write_mutex),
                                    pchild);
    }
    certauth_crl_child_init(pchild, s0);
    certauth_ocsp_child_init(pchild, s0);
    certauth_rollover_child_init(pchild);
    for (s = s0; s; s = s->next) {
        certauth_srv_conf *sc = certauth_srv(s);
        const char *err = NULL;
        if (sc->ca && ca_key_reopen(sc->ca, pchild, &err) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(1801)
                         "CertAuthCAKeyFile (%s): %s; this process cannot "
                         "sign (503) until httpd restarts", sc->where, err);
        }
        if (sc->prev_ca
            && ca_key_reopen(sc->prev_ca, pchild, &err) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(1806)
                         "CertAuthPreviousCAKeyFile (%s): %s; this process "
                         "cannot sign the previous CA's CRL (503)",
                         sc->where, err);
        }
    }
    if (!dbd_open) {
        return;
    }
    for (s = s0; s && !apr_atomic_read32(&schema_ready); s = s->next) {
        ap_dbd_t *dbd;
        ca_store_t *st;
        apr_pool_t *p;

        if (!certauth_srv(s)->has_endpoints) {
            continue;
        }
        dbd = dbd_open(pchild, s);
        if (!dbd) {
            /* The database may come later; requests retry. */
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(0108)
                         "database not reachable at child start; the schema "
                         "is checked again on the first request");
            continue;
        }
        apr_pool_create(&p, pchild);
        if (wrap(&st, p, dbd) == APR_SUCCESS) {
            migrate_with(st, p, s, 0);
        }
        apr_pool_destroy(p);
        dbd_close(s, dbd);
    }
}

#define DB_LOCKED_NOTE "certauth-db-locked"

static int db_locked(request_rec *r)
{
    return apr_table_get(r->notes, DB_LOCKED_NOTE) != NULL;
}

int certauth_db_lock(request_rec *r)
{
    apr_status_t rv;

    if (!db_mutex) {
        return 0;
    }
    if ((rv = apr_global_mutex_lock(db_mutex)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(0116)
                      "cannot lock the %s mutex", db_mutex_type);
        return 0;
    }
    apr_table_setn(r->notes, DB_LOCKED_NOTE, "1");
    return 1;
}

void certauth_db_unlock(request_rec *r, int locked)
{
    if (locked) {
        apr_table_unset(r->notes, DB_LOCKED_NOTE);
        apr_global_mutex_unlock(db_mutex);
    }
}

ca_store_t *certauth_store(request_rec *r, int *status)
{
    ap_dbd_t *dbd = dbd_acquire ? dbd_acquire(r) : NULL;
    ca_store_t *st = NULL;

    if (!dbd) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(0110)
                      "no database connection (see mod_dbd's messages)");
        *status = certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                                 "database unavailable",
                                 "the certificate database cannot be "
                                 "reached; try again later");
        return NULL;
    }
    if (request_store(r, dbd, &st) != APR_SUCCESS
        || migrate_with(st, r->pool, r->server, db_locked(r)) != APR_SUCCESS) {
        *status = certauth_error(r, HTTP_SERVICE_UNAVAILABLE,
                                 "database unavailable",
                                 "the certificate database is not ready; "
                                 "try again later");
        return NULL;
    }
    return st;
}

ca_store_t *certauth_store_quiet(request_rec *r)
{
    ap_dbd_t *dbd = dbd_acquire ? dbd_acquire(r) : NULL;
    ca_store_t *st = NULL;

    if (!dbd || request_store(r, dbd, &st) != APR_SUCCESS
        || migrate_with(st, r->pool, r->server, db_locked(r))
               != APR_SUCCESS) {
        return NULL;
    }
    return st;
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
