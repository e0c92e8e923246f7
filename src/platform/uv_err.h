/*
 * keyward: libuv's error codes at the boundary (see base/err.h).
 */
#ifndef KEYWARD_PLATFORM_UV_ERR_H
#define KEYWARD_PLATFORM_UV_ERR_H

/*
 * The KW_ERR_* code for a libuv error code (a negative UV_E* value):
 * KW_ERR_ALLOC for UV_ENOMEM and UV_ENOBUFS, KW_ERR_SYSTEM with errno set to
 * the matching errno value for the others (EIO when there is none), and 0
 * for 0.
 */
int kw_err_from_uv(int uverr);

#endif
