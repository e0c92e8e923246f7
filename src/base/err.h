/*
 * keyward: one error convention for the whole tree.
 *
 * Functions that can fail return 0 on success or one of the negative
 * KW_ERR_* codes below. kw_strerror() turns a code into a short phrase
 * suitable for a log line ("refused: <phrase>").
 *
 * KW_ERR_SYSTEM means a system call failed, and errno holds why when the
 * function returns (OpenSSH's SSH_ERR_SYSTEM_ERROR convention): a function
 * that cleans up after the failing call restores errno before returning,
 * and kw_strerror(KW_ERR_SYSTEM) reads it.
 *
 * libuv's own codes (UV_E*) are negative ints too, and overlap these. They
 * never cross a function boundary: whoever calls libuv turns its code into
 * ours with kw_err_from_uv() (src/platform/uv_err.h), which sets errno, and
 * logs uv_strerror() at the call if the detail matters there.
 */
#ifndef KEYWARD_ERR_H
#define KEYWARD_ERR_H

enum kw_err {
    KW_OK = 0,
    KW_ERR_INTERNAL = -1,    /* a bug or an OpenSSL failure we did not expect */
    KW_ERR_ALLOC = -2,       /* out of memory */
    KW_ERR_TRUNCATED = -3,   /* input ended in the middle of a field */
    KW_ERR_TRAILING = -4,    /* bytes left over after a complete message */
    KW_ERR_TOO_LARGE = -5,   /* a field or message is over its limit */
    KW_ERR_BAD_FORMAT = -6,  /* a field is syntactically wrong */
    KW_ERR_KEY_TYPE = -7,    /* key or signature type unknown or unsupported */
    KW_ERR_BAD_KEY = -8,     /* key material invalid or inconsistent */
    KW_ERR_KEY_SIZE = -9,    /* RSA modulus too small or too large */
    KW_ERR_BAD_SIG = -10,    /* signature did not verify */
    KW_ERR_NOT_FOUND = -11,  /* no such identity */
    KW_ERR_CONSTRAINT = -12, /* unknown or malformed key constraint */
    KW_ERR_LOCKED = -13,     /* agent is locked */
    KW_ERR_DENIED = -14,     /* policy refused the operation */
    KW_ERR_SYSTEM = -15,     /* a system call failed; errno says why */
    KW_ERR_NO_SUPPORT = -16, /* known, but not in this build (e.g. libcrypto too old) */
};

const char *kw_strerror(int err);

#endif
