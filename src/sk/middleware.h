/*
 * keyward: FIDO signatures for keyward-sk-helper (docs/providers.md).
 *
 * A provider is a middleware library with OpenSSH's security-key interface
 * (sk_api_version, sk_sign, ...), loaded here, in the helper, never in the
 * agent; or "internal", the built-in provider over libfido2 when this
 * build has it (src/sk/fido.c). The authenticator's answer (flags, counter,
 * r and s) becomes an SSH signature blob; the agent verifies it.
 */
#ifndef KEYWARD_SK_MIDDLEWARE_H
#define KEYWARD_SK_MIDDLEWARE_H

#include <stddef.h>
#include <stdint.h>

#include "base/wire.h"

/* The interface's major version that keyward speaks (OpenSSH 9.x and 10.x: 0x000a0000). */
#define SK_API_VERSION_MAJOR      0x000a0000U
#define SK_API_VERSION_MAJOR_MASK 0xffff0000U

/* What a provider's sk_sign answers, before it becomes an SSH signature. */
struct sk_signature {
    uint8_t flags;
    uint32_t counter;
    const uint8_t *sig_r;
    size_t sig_r_len;
    const uint8_t *sig_s; /* ECDSA only */
    size_t sig_s_len;
};

/*
 * Writes the SSH signature of key type alg (HELPER_SK_ALG_*, helper_msg.h)
 * from an authenticator's answer: string algorithm, string signature
 * (Ed25519: the 64 bytes of sig_r; ECDSA: mpint r, mpint s), uint8 flags,
 * uint32 counter. KW_ERR_BAD_SIG for an answer of the wrong shape.
 */
int sk_signature_encode(uint32_t alg, const struct sk_signature *s, struct wire_writer *w);

/*
 * Signs data with the key (alg, application, key handle, flags) through
 * provider (a library path, or "internal"). 0 with the SSH signature
 * written to w, or a KW_ERR_* code with why filled in (no secrets).
 */
int sk_sign_with(const char *provider, uint32_t alg, const char *application,
                 const uint8_t *key_handle, size_t key_handle_len, uint8_t flags,
                 const uint8_t *data, size_t data_len, const char *pin, struct wire_writer *w,
                 char *why, size_t whysize);

#endif
