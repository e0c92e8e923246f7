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

/*
 * A comma-separated pattern-list as in ssh_config(5)'s PATTERNS, for
 * keyward-agent -P: 1 if s matches a pattern, -1 if it matches a negated
 * one ("!pattern", which wins over any other), 0 if neither.
 */
int match_pattern_list(const char *s, const char *list);

#endif
