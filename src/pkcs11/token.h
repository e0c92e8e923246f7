/*
 * keyward: one PKCS#11 module, loaded in the helper process
 * (keyward-pkcs11-helper, docs/providers.md).
 *
 * p11_token_load() loads the module, initialises it, opens a session on
 * every slot with an initialised token, logs in with the PIN (none if it is
 * empty) and lists the private keys it can sign with whose public half it
 * can read, as SSH public key blobs. p11_token_sign() hashes and formats
 * as the key type needs, has the module sign, and checks the signature
 * against the key (key_verify()) before handing it out: a module that
 * answers garbage is caught here.
 *
 * Failures return a KW_ERR_* code and write a short reason to why (no
 * secrets), for the FAIL reply and the helper's log line.
 */
#ifndef KEYWARD_PKCS11_TOKEN_H
#define KEYWARD_PKCS11_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/wire.h"

struct p11_token;

/* One key the token offers. */
struct p11_key_info {
    const uint8_t *blob; /* the plain SSH public key blob */
    size_t blob_len;
    const char *label; /* CKA_LABEL (NUL-terminated, may be empty) */
};

/*
 * module: a NUL-terminated path. The PIN is read, never kept: the caller
 * clears its copy. Fails on a module that does not load, a wrong PIN, or no
 * usable key.
 */
int p11_token_load(const char *module, const uint8_t *pin, size_t pin_len, struct p11_token **out,
                   char *why, size_t whysize);

size_t p11_token_nkeys(const struct p11_token *t);
void p11_token_key(const struct p11_token *t, size_t i, struct p11_key_info *info);

/*
 * Signs data with the key whose plain blob is blob, flags as in the agent
 * protocol's sign request (RSA: SHA-256 or SHA-512, neither: SHA-1).
 * Writes the SSH signature blob (string algorithm, string signature) to sig.
 */
int p11_token_sign(struct p11_token *t, const uint8_t *blob, size_t blob_len, const uint8_t *data,
                   size_t data_len, uint32_t flags, struct wire_writer *sig, char *why,
                   size_t whysize);

/*
 * Whether a signature failed because the token, its session or its key is
 * gone (removed, replaced): the helper then has nothing left to serve.
 */
bool p11_token_gone(const struct p11_token *t);

/* Logs out, closes the sessions, finalises and unloads the module. NULL: nothing. */
void p11_token_free(struct p11_token *t);

#endif
