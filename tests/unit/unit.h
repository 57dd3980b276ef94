/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* A very small C test harness for the core library's unit tests.
 *   UT_CHECK(cond)            a failed check fails the test, the test goes on
 *   UT_RUN(fn)                run one test function: void fn(apr_pool_t *p)
 *   return ut_finish();       prints "N passed, N failed" and the exit code
 * Each test function gets a fresh subpool, destroyed after it.
 * Helpers the tests share:
 *   ut_tmpdir(p)              a fresh directory, removed with everything in
 *                             it when p is destroyed
 *   ut_slurp(p, path)         a file's contents (NUL-terminated), or NULL */
#ifndef UNIT_H
#define UNIT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "ca_util.h"

static int ut_passed, ut_failed, ut_cur_failed;
static apr_pool_t *ut_root;

#define UT_CHECK(cond) do { \
    if (!(cond)) { \
        fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        ut_cur_failed = 1; \
    } } while (0)

#define UT_CHECK_MSG(cond, ...) do { \
    if (!(cond)) { \
        fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
        fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); \
        ut_cur_failed = 1; \
    } } while (0)

static void ut_init(void)
{
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&ut_root, NULL);
}

#define UT_RUN(fn) do { \
    apr_pool_t *ut_p; \
    if (!ut_root) ut_init(); \
    apr_pool_create(&ut_p, ut_root); \
    ut_cur_failed = 0; \
    fn(ut_p); \
    apr_pool_destroy(ut_p); \
    if (ut_cur_failed) { ut_failed++; fprintf(stderr, "FAIL %s\n", #fn); } \
    else { ut_passed++; fprintf(stderr, "ok   %s\n", #fn); } \
    } while (0)

static inline int ut_rm_one(const char *path, const struct stat *st,
                            int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static inline apr_status_t ut_tmpdir_cleanup(void *d)
{
    nftw(d, ut_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return APR_SUCCESS;
}

static inline const char *ut_tmpdir(apr_pool_t *p)
{
    char *d = apr_pstrdup(p, "/tmp/certauth-ut.XXXXXX");
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        abort();
    }
    apr_pool_cleanup_register(p, d, ut_tmpdir_cleanup,
                              apr_pool_cleanup_null);
    return d;
}

static inline char *ut_slurp(apr_pool_t *p, const char *path)
{
    char *data = NULL;
    apr_size_t len;
    if (ca_file_read(p, path, 1 << 20, &data, &len) != APR_SUCCESS) {
        return NULL;
    }
    return data;
}

static int ut_finish(void)
{
    printf("%d passed, %d failed\n", ut_passed, ut_failed);
    return ut_failed ? 1 : 0;
}

#endif
