/*
 * keyward on Windows: UTF-8 names as the UTF-16 the W functions take.
 * Shared by the platform layer and keyward-probe's pipe transport, so that
 * the same bytes given to the agent's -a and to the probe name one pipe.
 */
#ifndef KEYWARD_PLATFORM_WIN32_WIDE_H
#define KEYWARD_PLATFORM_WIN32_WIDE_H

#include <wchar.h>

/* s (UTF-8, as libuv reads names) as UTF-16; free() it. NULL if s is not valid UTF-8. */
wchar_t *win32_utf8_to_wide(const char *s);

#endif
