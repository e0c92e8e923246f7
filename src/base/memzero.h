/*
 * keyward: clearing memory that held secrets (private keys, passphrases,
 * requests that carried them) before it is freed or reused.
 *
 * Its own file so that code without libcrypto (keyward-relay, the
 * transport) clears bytes the same way as the rest: a plain memset() before
 * free() may be removed by the compiler as a dead store; these calls may not.
 */
#ifndef KEYWARD_BASE_MEMZERO_H
#define KEYWARD_BASE_MEMZERO_H

#include <stddef.h>

void kw_memzero(void *p, size_t len);

#endif
