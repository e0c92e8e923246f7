/*
 * keyward: see memzero.h.
 */
#include "base/memzero.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <string.h>
#endif

void kw_memzero(void *p, size_t len)
{
    if (p == NULL || len == 0)
        return;
#ifdef _WIN32
    SecureZeroMemory(p, len);
#else
    explicit_bzero(p, len); /* glibc 2.25 and later */
#endif
}
