/*
 * keyward: file paths.
 */
#ifndef KEYWARD_PATH_H
#define KEYWARD_PATH_H

#include <stddef.h>

/*
 * The absolute path of an existing file with every symbolic link and "."
 * and ".." resolved (realpath(3); on Windows, GetFullPathName through
 * _fullpath, which resolves no links). KW_ERR_SYSTEM with errno set if the
 * file does not exist or the result does not fit in out.
 */
int kw_canonical_path(const char *path, char *out, size_t outsize);

#endif
