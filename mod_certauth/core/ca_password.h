/* Licensed under the Apache License, Version 2.0 (see LICENSE). */
/* ca_password: the one rule for the passwords of PKCS#12 files, enforced by
 * the server for the files it makes (POST pkcs12) and published to the web
 * pages (api/certs "password_rule"), which apply it with the same words to
 * the files they make. */
#ifndef CA_PASSWORD_H
#define CA_PASSWORD_H

typedef struct {
    int min_length;        /* characters (Unicode code points)             */
    int max_length;
    int min_kinds;         /* of letters, digits, symbols (anything else)  */
    int any_kinds_from;    /* this long or longer: one kind is enough      */
    int min_distinct;      /* different characters                         */
    int min_login;         /* a login this long may not be in the password */
    int common_margin;     /* a well-known password plus fewer than this
                              many characters is too easy                  */
    const char *const *common;   /* NULL-terminated, lower case            */
    const char *text;            /* the rule, as the pages show it         */
    /* what is wrong, as both the server and the pages say it */
    const char *too_short, *too_long, *kinds, *distinct, *guessable, *login;
} ca_password_rule_t;

extern const ca_password_rule_t ca_password_rule;

/* NULL when `password` (UTF-8) follows the rule for `login` (may be NULL),
 * else the rule's message for the first thing wrong. */
const char *ca_password_problem(const char *password, const char *login);

#endif
