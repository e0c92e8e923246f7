/*
 * keyward: time interval parsing. See convtime.h.
 */
#include "base/convtime.h"

#include <ctype.h>
#include <limits.h>
#include <stddef.h>

#include "base/err.h"

int convtime(const char *s, uint32_t *secs)
{
    uint64_t total = 0, n, mult;

    if (s == NULL || *s == '\0')
        return KW_ERR_BAD_FORMAT;
    while (*s != '\0') {
        if (!isdigit((unsigned char)*s))
            return KW_ERR_BAD_FORMAT;
        n = 0;
        while (isdigit((unsigned char)*s)) {
            n = n * 10 + (uint64_t)(*s - '0');
            if (n > INT_MAX)
                return KW_ERR_TOO_LARGE;
            s++;
        }
        switch (*s) {
        case '\0':
            mult = 1;
            break;
        case 's':
        case 'S':
            mult = 1;
            s++;
            break;
        case 'm':
        case 'M':
            mult = 60;
            s++;
            break;
        case 'h':
        case 'H':
            mult = 60 * 60;
            s++;
            break;
        case 'd':
        case 'D':
            mult = 24 * 60 * 60;
            s++;
            break;
        case 'w':
        case 'W':
            mult = 7 * 24 * 60 * 60;
            s++;
            break;
        default:
            return KW_ERR_BAD_FORMAT;
        }
        total += n * mult;
        if (total > INT_MAX) /* OpenSSH's limit */
            return KW_ERR_TOO_LARGE;
    }
    *secs = (uint32_t)total;
    return 0;
}
