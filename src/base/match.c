/*
 * keyward: shell-style pattern matching. See match.h.
 */
#include "base/match.h"

#include <stddef.h>

bool match_glob(const char *s, const char *p)
{
    /*
     * Greedy with one backtrack point: on a mismatch, let the most recent
     * '*' swallow one more character. Patterns come from other people's
     * certificates and constraints, so no recursion that could blow up.
     */
    const char *star = NULL, *resume = NULL;

    while (*s != '\0') {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p == '?' || *p == *s) {
            p++;
            s++;
        } else if (star != NULL) {
            p = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}
