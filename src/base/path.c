/*
 * keyward: file paths. See path.h.
 */
#include "base/path.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"

int kw_canonical_path(const char *path, char *out, size_t outsize)
{
#ifdef _WIN32
    char buf[_MAX_PATH];
    struct _stat st;

    if (_fullpath(buf, path, sizeof(buf)) == NULL)
        return KW_ERR_SYSTEM;
    if (_stat(buf, &st) != 0)
        return KW_ERR_SYSTEM;
#else
    char buf[PATH_MAX];

    if (realpath(path, buf) == NULL)
        return KW_ERR_SYSTEM;
#endif
    if (strlen(buf) >= outsize) {
        errno = ENAMETOOLONG;
        return KW_ERR_SYSTEM;
    }
    memcpy(out, buf, strlen(buf) + 1);
    return 0;
}
