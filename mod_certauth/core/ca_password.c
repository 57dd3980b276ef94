/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_password.c: the password rule of PKCS#12 files (see ca_password.h). */

#include <string.h>

#include "ca_password.h"

static const char *const common[] = {
    "password", "passw0rd", "123456789", "1234567890", "qwertyuiop",
    "azertyuiop", "iloveyou", "letmein", "welcome", "certificate",
    "changeit", "secret", NULL
};

const ca_password_rule_t ca_password_rule = {
    10, 1024, 2, 16, 5, 3, 6, common,
    "At least 10 characters, with at least two of: letters, digits, symbols "
    "(or 16 characters or more of any kind); at least 5 different "
    "characters; not a well-known password such as Password123, and not "
    "your login.",
    "Use at least 10 characters.",
    "Use at most 1024 characters.",
    "Use at least two of: letters, digits, symbols (or 16 characters or "
    "more).",
    "Use at least 5 different characters.",
    "This password is too easy to guess: it is a well-known one.",
    "Do not use your login in the password.",
};

/* The next code point of UTF-8 text (invalid bytes count as themselves). */
static unsigned long next_cp(const unsigned char **s)
{
    const unsigned char *p = *s;
    unsigned long c = *p++;
    int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;

    if (c >= 0x80) {
        c &= 0x3F >> more;
        while (more-- > 0 && (*p & 0xC0) == 0x80) {
            c = (c << 6) | (*p++ & 0x3F);
        }
    }
    *s = p;
    return c;
}

/* ASCII case-insensitive: does hay contain needle? */
static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle), i;

    for (; *hay; hay++) {
        for (i = 0; i < n; i++) {
            unsigned char a = (unsigned char)hay[i], b = (unsigned char)needle[i];
            if (!a) {
                return 0;
            }
            if (a >= 'A' && a <= 'Z') {
                a = (unsigned char)(a - 'A' + 'a');
            }
            if (b >= 'A' && b <= 'Z') {
                b = (unsigned char)(b - 'A' + 'a');
            }
            if (a != b) {
                break;
            }
        }
        if (i == n) {
            return 1;
        }
    }
    return 0;
}

const char *ca_password_problem(const char *password, const char *login)
{
    const ca_password_rule_t *r = &ca_password_rule;
    unsigned long seen[64];
    const unsigned char *s = (const unsigned char *)password;
    int len = 0, distinct = 0, letters = 0, digits = 0, symbols = 0, i;

    while (*s) {
        unsigned long c = next_cp(&s);
        if (len++ >= r->max_length) {
            return r->too_long;
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            letters = 1;
        }
        else if (c >= '0' && c <= '9') {
            digits = 1;
        }
        else {
            symbols = 1;
        }
        for (i = 0; i < distinct && seen[i] != c; i++) {
        }
        if (i == distinct && distinct < (int)(sizeof(seen) / sizeof(*seen))) {
            seen[distinct++] = c;
        }
    }
    if (len < r->min_length) {
        return r->too_short;
    }
    if (letters + digits + symbols < r->min_kinds && len < r->any_kinds_from) {
        return r->kinds;
    }
    if (distinct < r->min_distinct) {
        return r->distinct;
    }
    for (i = 0; r->common[i]; i++) {
        if (contains_nocase(password, r->common[i])
            && len < (int)strlen(r->common[i]) + r->common_margin) {
            return r->guessable;
        }
    }
    if (login && (int)strlen(login) >= r->min_login
        && contains_nocase(password, login)) {
        return r->login;
    }
    return NULL;
}
