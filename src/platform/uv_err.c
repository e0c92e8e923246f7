/*
 * keyward: see uv_err.h.
 *
 * Not simply errno = -uverr: that holds for system errors on Unix only. On
 * Windows libuv numbers its codes itself (UV_ECONNRESET is -4077), so each
 * code is named, and both platforms go through the same table.
 */
#include "platform/uv_err.h"

#include <errno.h>

#include <uv.h>

#include "base/err.h"

int kw_err_from_uv(int uverr)
{
    int e;

    switch (uverr) {
    case 0:
        return 0;
    case UV_ENOMEM:
    case UV_ENOBUFS:
        return KW_ERR_ALLOC;
    case UV_EACCES:
        e = EACCES;
        break;
    case UV_EPERM:
        e = EPERM;
        break;
    case UV_EADDRINUSE:
        e = EADDRINUSE;
        break;
    case UV_EADDRNOTAVAIL:
        e = EADDRNOTAVAIL;
        break;
    case UV_EAGAIN:
        e = EAGAIN;
        break;
    case UV_EBADF:
        e = EBADF;
        break;
    case UV_EBUSY:
        e = EBUSY;
        break;
    case UV_ECONNREFUSED:
        e = ECONNREFUSED;
        break;
    case UV_ECONNRESET:
        e = ECONNRESET;
        break;
    case UV_EEXIST:
        e = EEXIST;
        break;
    case UV_EINVAL:
        e = EINVAL;
        break;
    case UV_EMFILE:
        e = EMFILE;
        break;
    case UV_ENFILE:
        e = ENFILE;
        break;
    case UV_ENAMETOOLONG:
        e = ENAMETOOLONG;
        break;
    case UV_ENOENT:
        e = ENOENT;
        break;
    case UV_ENOTCONN:
        e = ENOTCONN;
        break;
    case UV_ENOTSOCK:
        e = ENOTSOCK;
        break;
    case UV_ENOTSUP:
        e = ENOTSUP;
        break;
    case UV_EPIPE:
        e = EPIPE;
        break;
    case UV_ETIMEDOUT:
        e = ETIMEDOUT;
        break;
    default:
        e = EIO;
        break;
    }
    errno = e;
    return KW_ERR_SYSTEM;
}
