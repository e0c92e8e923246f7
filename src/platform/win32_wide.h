/*
 * keyward on Windows: UTF-8 names as the UTF-16 the W functions take, and
 * back. Shared by the platform layer, the Windows mains and keyward-probe's
 * pipe transport, so that the same bytes given to the agent's -a and to
 * the probe name one pipe. Inside keyward every name is UTF-8; only the W
 * functions see UTF-16, and no A function sees a name (the ANSI code page
 * cannot hold every user's name).
 */
#ifndef KEYWARD_PLATFORM_WIN32_WIDE_H
#define KEYWARD_PLATFORM_WIN32_WIDE_H

#include <wchar.h>

/* s (UTF-8, as libuv reads names) as UTF-16; free() it. NULL if s is not valid UTF-8. */
wchar_t *win32_utf8_to_wide(const char *s);

/* w as UTF-8; free() it. NULL if out of memory or w is not valid UTF-16. */
char *win32_wide_to_utf8(const wchar_t *w);

/*
 * The process's command line as UTF-8 arguments (GetCommandLineW()), for
 * main() to use instead of its argv, which holds the ANSI code page's
 * bytes: a path such as C:\Users\<name>\... whose name that code page
 * cannot hold would arrive as '?'s. Lives as long as the process. NULL if
 * out of memory (main() then keeps its argv).
 */
char **win32_utf8_argv(int *argc);

#endif
