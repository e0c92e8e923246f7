/*
 * keyward: shell-style pattern matching for names in destination
 * constraints and host certificates ('*' matches any run of characters,
 * '?' any single one), as OpenSSH's match_pattern().
 */
#ifndef KEYWARD_MATCH_H
#define KEYWARD_MATCH_H

#include <stdbool.h>

/* True if the whole of s matches pattern. Linear in practice, never exponential. */
bool match_glob(const char *s, const char *pattern);

#endif
