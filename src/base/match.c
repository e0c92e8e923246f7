/*
 * keyward: shell-style pattern matching. See match.h.
 */
#include "base/match.h"

#include <stddef.h>
#include <string.h>

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

int match_pattern_list(const char *s, const char *list)
{
    char pat[1024];
    bool matched = false;
    const char *p = list, *end;

    while (*p != '\0') {
        bool negate = false;
        size_t len;

        end = strchr(p, ',');
        len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0 && *p == '!') {
            negate = true;
            p++;
            len--;
        }
        /* A pattern too long to hold matches nothing rather than a prefix of it. */
        if (len < sizeof(pat)) {
            memcpy(pat, p, len);
            pat[len] = '\0';
            if (match_glob(s, pat)) {
                if (negate)
                    return -1; /* a negated match wins over every other */
                matched = true;
            }
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return matched ? 1 : 0;
}
