/*
 * keyward: error phrases for log lines and command-line messages.
 */
#include "base/err.h"

#include <errno.h>
#include <string.h>

const char *kw_strerror(int err)
{
    switch (err) {
    case KW_OK:
        return "success";
    case KW_ERR_INTERNAL:
        return "internal error";
    case KW_ERR_ALLOC:
        return "out of memory";
    case KW_ERR_TRUNCATED:
        return "message truncated";
    case KW_ERR_TRAILING:
        return "unexpected bytes after message";
    case KW_ERR_TOO_LARGE:
        return "field too large";
    case KW_ERR_BAD_FORMAT:
        return "invalid format";
    case KW_ERR_KEY_TYPE:
        return "unsupported key type";
    case KW_ERR_BAD_KEY:
        return "invalid key";
    case KW_ERR_KEY_SIZE:
        return "key size out of range";
    case KW_ERR_BAD_SIG:
        return "signature verification failed";
    case KW_ERR_NOT_FOUND:
        return "key not found";
    case KW_ERR_CONSTRAINT:
        return "unsupported constraint";
    case KW_ERR_LOCKED:
        return "agent is locked";
    case KW_ERR_DENIED:
        return "not permitted";
    case KW_ERR_SYSTEM:
        return errno != 0 ? strerror(errno) : "system error";
    case KW_ERR_NO_SUPPORT:
        return "not supported by this build";
    }
    return "unknown error";
}
