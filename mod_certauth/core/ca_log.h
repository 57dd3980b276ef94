/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_log: logging indirection of the core library.  The core never includes an
 * httpd header: the module routes these lines to ap_log_error, the command-line
 * tools to stderr. */
#ifndef CA_LOG_H
#define CA_LOG_H

#include <apr_pools.h>
#include <apr_errno.h>

typedef enum {
    CA_LOG_ERR = 3,
    CA_LOG_WARN = 4,
    CA_LOG_NOTICE = 5,
    CA_LOG_INFO = 6,
    CA_LOG_DEBUG = 7
} ca_log_level_t;

#define CA_LOG_MARK __FILE__, __LINE__

/* The sink: one formatted line, without trailing newline. */
typedef void ca_log_fn(void *baton, const char *file, int line,
                       ca_log_level_t level, apr_status_t rv, const char *msg);

/* Install a sink (NULL restores the default, which writes to stderr) and the
 * highest level that is passed to it (the module: httpd's LogLevel for
 * certauth, so that nothing httpd would drop is formatted). */
void ca_log_set(ca_log_fn *fn, void *baton, ca_log_level_t max_level);

/* A sink for the command-line tools: "PROGRAM: message" on stderr, where
 * the baton is the program's name (const char *); install it with
 * ca_log_set(ca_log_tool_sink, "certauth-admin", CA_LOG_WARN). */
void ca_log_tool_sink(void *baton, const char *file, int line,
                      ca_log_level_t level, apr_status_t rv, const char *msg);

/* Whether a line of this level reaches the sink.  ca_log asks it before
 * formatting; a caller whose arguments cost something to compute (the
 * OpenSSL error queue) asks it first. */
int ca_log_enabled(ca_log_level_t level);

/* printf-style; p may be NULL (a temporary pool is used). */
void ca_log(const char *file, int line, ca_log_level_t level, apr_status_t rv,
            apr_pool_t *p, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* The pending OpenSSL error queue as one line ("" when empty); clears it. */
const char *ca_log_ssl_errors(apr_pool_t *p);

#endif
