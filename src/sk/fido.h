/*
 * keyward: the built-in FIDO provider, "internal" (docs/providers.md):
 * signatures from a USB/NFC authenticator through libfido2, in
 * keyward-sk-helper. Built when libfido2 is found (Debian's libfido2-dev);
 * without it, "internal" fails with a reason and middleware still works.
 */
#ifndef KEYWARD_SK_FIDO_H
#define KEYWARD_SK_FIDO_H

#include <stddef.h>
#include <stdint.h>

#include "base/wire.h"
#include "sk/middleware.h"

/* As sk_sign_with(), for the built-in provider. */
int sk_fido_sign(uint32_t alg, const char *application, const uint8_t *key_handle,
                 size_t key_handle_len, uint8_t flags, const uint8_t *data, size_t data_len,
                 const char *pin, struct wire_writer *w, char *why, size_t whysize);

#endif
