/*
 * keyward on Windows: UTF-8 to UTF-16 and back. See win32_wide.h.
 */
#include "platform/win32_wide.h"

#include <stdlib.h>

#include <windows.h>

#include <shellapi.h>

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

char *win32_wide_to_utf8(const wchar_t *w)
{
    char *s;
    int n;

    if ((n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, NULL, 0, NULL, NULL)) <= 0)
        return NULL;
    if ((s = malloc((size_t)n)) == NULL)
        return NULL;
    if (WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, s, n, NULL, NULL) != n) {
        free(s);
        return NULL;
    }
    return s;
}

char **win32_utf8_argv(int *argc)
{
    LPWSTR *wargv;
    char **argv = NULL;
    int n = 0, i;

    if ((wargv = CommandLineToArgvW(GetCommandLineW(), &n)) == NULL)
        return NULL;
    if ((argv = calloc((size_t)n + 1, sizeof(*argv))) == NULL)
        goto fail;
    for (i = 0; i < n; i++)
        if ((argv[i] = win32_wide_to_utf8(wargv[i])) == NULL)
            goto fail;
    LocalFree(wargv);
    *argc = n;
    return argv;
fail:
    for (i = 0; argv != NULL && i < n; i++)
        free(argv[i]);
    free(argv);
    LocalFree(wargv);
    return NULL;
}
