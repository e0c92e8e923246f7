/*
 * keyward on Windows: UTF-8 to UTF-16. See win32_wide.h.
 */
#include "platform/win32_wide.h"

#include <stdlib.h>

#include <windows.h>

wchar_t *win32_utf8_to_wide(const char *s)
{
    wchar_t *w;
    int n;

    if ((n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0)) <= 0)
        return NULL;
    if ((w = calloc((size_t)n, sizeof(*w))) == NULL)
        return NULL;
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
        free(w);
        return NULL;
    }
    return w;
}
