/*
 * keyward: the agent's identities.
 *
 * An identity is a private key (possibly with its certificate) plus what
 * the client said about it: comment, expiry and whether each use must be
 * confirmed. Identities are found by their exact public blob, which is how
 * requests name them. Order is insertion order, which is the order
 * REQUEST_IDENTITIES reports, as in OpenSSH.
 */
#ifndef KEYWARD_KEYSTORE_H
#define KEYWARD_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/destination.h"
#include "crypto/key.h"

struct provider; /* agent/provider.h */

struct identity {
    struct key *key;
    char *comment;
    uint64_t expires_ms; /* monotonic ms; 0 = never */
    bool confirm;
    struct dest_constraints dest; /* count 0: usable anywhere */
    /*
     * key_fingerprint() of key, computed once at add time: every sign
     * request's log line names the key, and hashing its blob again each
     * time was a measurable share of a fast signature's cost.
     */
    char fp[KEY_FINGERPRINT_SIZE];
    /*
     * Where the private key is: NULL for a key the agent holds itself, or
     * the PKCS#11 module whose helper process signs with it (the provider
     * set in agent.h owns it; its identities are removed before it goes).
     */
    struct provider *provider;
    /*
     * A FIDO key's provider (key_is_sk()): "internal" (keyward-sk-helper's
     * built-in one) or a middleware's canonical path, allowed by -P. Each
     * signature runs it in a keyward-sk-helper of its own. Owned.
     */
    char *sk_provider;
};

/*
 * At most this many identities (issue 22): each costs memory, a linear
 * lookup per request and room in the list reply. Adding one more fails
 * ("too many keys"); replacing one that is there does not.
 */
#define KEYSTORE_MAX_IDENTITIES 1024

struct keystore {
    struct identity **ids;
    size_t count;
    size_t cap;
};

void keystore_init(struct keystore *ks);
/* Removes every identity, clearing private keys. */
void keystore_clear(struct keystore *ks);

/*
 * Adds an identity, taking ownership of key, comment and *dest (which is
 * emptied) on success. An identity with the same blob is replaced, as
 * OpenSSH does, so a client can re-add a key to change its constraints.
 * A new identity beyond KEYSTORE_MAX_IDENTITIES fails with KW_ERR_TOO_LARGE.
 */
int keystore_add(struct keystore *ks, struct key *key, char *comment, uint64_t expires_ms,
                 bool confirm, struct dest_constraints *dest);

struct identity *keystore_find(const struct keystore *ks, const uint8_t *blob, size_t len);
int keystore_remove(struct keystore *ks, const uint8_t *blob, size_t len);
size_t keystore_remove_all(struct keystore *ks);
/* Removes every identity whose key provider p holds; returns how many. */
size_t keystore_remove_provider(struct keystore *ks, const struct provider *p);

/*
 * Removes identities whose expiry is at or before now_ms and returns how
 * many went. *next_ms is set to the earliest remaining expiry (0 if none).
 */
size_t keystore_expire(struct keystore *ks, uint64_t now_ms, uint64_t *next_ms);

#endif
