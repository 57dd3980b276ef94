/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* p11speed: signatures per second with a CA key, like `openssl speed`, but
 * with the key the module would use: a key file (PEM) or a PKCS#11 URI
 * loaded through the core's own ca_pkcs11_load_key (OpenSSL's pkcs11
 * engine), signed with EVP_DigestSign and the core's digest choice, by
 * THREADS threads sharing the one key as the threads of an httpd child do.
 * For tests/bench/bench.py (row p); built by it, not by the Makefile.
 *
 *   p11speed KEY|URI PINFILE|- SECONDS THREADS
 *
 * prints one line: "signs N secs S cpu_ms C" (C: the process's user +
 * system CPU time over the run). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ca_ca.h"
#include "ca_pkcs11.h"

static EVP_PKEY *key;
static double stop_at;
static volatile int failed;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3
           + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* about the size of a certificate's to-be-signed part */
static unsigned char tbs[600];

static void *signer(void *arg)
{
    long *count = arg;
    unsigned char sig[1024];

    while (now() < stop_at && !failed) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        size_t siglen = sizeof(sig);
        if (!md || EVP_DigestSignInit(md, NULL, ca_sign_md(key), NULL, key)
                       != 1
            || EVP_DigestSign(md, sig, &siglen, tbs, sizeof(tbs)) != 1) {
            ERR_print_errors_fp(stderr);
            failed = 1;
        }
        EVP_MD_CTX_free(md);
        (*count)++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    apr_pool_t *p;
    const char *err = NULL;
    char pin[256] = "";
    double secs, t0, c0;
    int n, i;
    long total = 0, *counts;
    pthread_t *th;

    if (argc != 5 || (secs = atof(argv[3])) <= 0 || (n = atoi(argv[4])) < 1
        || n > 64) {
        fprintf(stderr, "usage: %s KEY|URI PINFILE|- SECONDS THREADS\n",
                argv[0]);
        return 2;
    }
    apr_initialize();
    apr_pool_create(&p, NULL);
    if (strcmp(argv[2], "-")) {
        FILE *f = fopen(argv[2], "r");
        if (!f || !fgets(pin, sizeof(pin), f)) {
            fprintf(stderr, "%s: cannot be read\n", argv[2]);
            return 1;
        }
        fclose(f);
        pin[strcspn(pin, "\r\n")] = '\0';
    }
    if (ca_pkcs11_is_uri(argv[1])) {
        if (ca_pkcs11_load_key(p, argv[1], *pin ? pin : NULL, &key, &err)
            != APR_SUCCESS) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    else {
        FILE *f = fopen(argv[1], "r");
        key = f ? PEM_read_PrivateKey(f, NULL, NULL, *pin ? pin : NULL)
                : NULL;
        if (f) {
            fclose(f);
        }
        if (!key) {
            fprintf(stderr, "%s: no private key\n", argv[1]);
            return 1;
        }
    }
    memset(tbs, 0x5a, sizeof(tbs));
    th = calloc((size_t)n, sizeof(*th));
    counts = calloc((size_t)n, sizeof(*counts));
    if (!th || !counts) {
        return 1;
    }
    c0 = cpu_ms();
    t0 = now();
    stop_at = t0 + secs;
    for (i = 0; i < n; i++) {
        if (pthread_create(&th[i], NULL, signer, &counts[i]) != 0) {
            return 1;
        }
    }
    for (i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total += counts[i];
    }
    if (failed) {
        return 1;
    }
    printf("signs %ld secs %.3f cpu_ms %.1f\n", total, now() - t0,
           cpu_ms() - c0);
    return 0;
}
