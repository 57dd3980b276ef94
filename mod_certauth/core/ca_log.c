/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_log.c: the core's logging indirection. */

#include <stdio.h>
#include <stdarg.h>
#include <apr_strings.h>
#include <openssl/err.h>

#include "ca_log.h"

static ca_log_fn *log_fn;
static void *log_baton;
static ca_log_level_t log_max = CA_LOG_INFO;

static const char *level_name(ca_log_level_t level)
{
    switch (level) {
    case CA_LOG_ERR: return "error";
    case CA_LOG_WARN: return "warn";
    case CA_LOG_NOTICE: return "notice";
    case CA_LOG_INFO: return "info";
    default: return "debug";
    }
}

static void stderr_sink(void *baton, const char *file, int line,
                        ca_log_level_t level, apr_status_t rv, const char *msg)
{
    (void)baton;
    (void)file;
    (void)line;
    if (rv != APR_SUCCESS) {
        char buf[256];
        fprintf(stderr, "[%s] %s (%s)\n", level_name(level), msg,
                apr_strerror(rv, buf, sizeof(buf)));
    }
    else {
        fprintf(stderr, "[%s] %s\n", level_name(level), msg);
    }
}

void ca_log_tool_sink(void *baton, const char *file, int line,
                      ca_log_level_t level, apr_status_t rv, const char *msg)
{
    (void)file;
    (void)line;
    (void)level;
    (void)rv;
    fprintf(stderr, "%s: %s\n", baton ? (const char *)baton : "certauth",
            msg);
}

void ca_log_set(ca_log_fn *fn, void *baton, ca_log_level_t max_level)
{
    log_fn = fn;
    log_baton = baton;
    log_max = max_level;
}

int ca_log_enabled(ca_log_level_t level)
{
    return level <= log_max;
}

void ca_log(const char *file, int line, ca_log_level_t level, apr_status_t rv,
            apr_pool_t *p, const char *fmt, ...)
{
    apr_pool_t *tmp = NULL;
    const char *msg;
    va_list ap;

    if (!ca_log_enabled(level)) {
        return;
    }
    if (!p) {
        if (apr_pool_create_unmanaged_ex(&tmp, NULL, NULL) != APR_SUCCESS) {
            return;
        }
        p = tmp;
    }
    va_start(ap, fmt);
    msg = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    (log_fn ? log_fn : stderr_sink)(log_baton, file, line, level, rv, msg);
    if (tmp) {
        apr_pool_destroy(tmp);
    }
}

const char *ca_log_ssl_errors(apr_pool_t *p)
{
    const char *out = "", *data = NULL;
    unsigned long e;
    int flags = 0;
    char buf[256];

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        const char *one;
        ERR_error_string_n(e, buf, sizeof(buf));
        one = (data && *data && (flags & ERR_TXT_STRING))
                  ? apr_pstrcat(p, buf, " (", data, ")", NULL)
                  : apr_pstrdup(p, buf);
        out = *out ? apr_pstrcat(p, out, "; ", one, NULL) : one;
        data = NULL;
        flags = 0;
    }
    return out;
}
