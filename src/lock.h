/*
 * keyward: the agent lock (SSH_AGENTC_LOCK / SSH_AGENTC_UNLOCK).
 *
 * The passphrase itself is never kept: only a random salt and a scrypt
 * hash of it, compared in constant time on unlock. Wrong passphrases earn
 * a growing delay (100 ms more per failure, at most 10 s, as OpenSSH's
 * agent does); the transport applies the delay to the asking connection
 * only, so other clients are not stalled.
 *
 * scrypt is deliberately slow (tens of milliseconds), so the work is split
 * in three steps that let the agent run the middle one on a worker thread:
 * lock_prepare_*() checks the state and picks the salt, lock_derive() does
 * the hashing and touches no state, lock_commit_*() applies the result,
 * re-checking the state, which may have changed meanwhile.
 */
#ifndef KEYWARD_LOCK_H
#define KEYWARD_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOCK_SALT_LEN 16
#define LOCK_HASH_LEN 32

struct agent_lock {
    bool locked;
    uint8_t salt[LOCK_SALT_LEN];
    uint8_t hash[LOCK_HASH_LEN];
    unsigned fail_count;
};

void lock_init(struct agent_lock *l);
/* Zeroes the stored hash. */
void lock_clear(struct agent_lock *l);

/* Fails if already locked or the passphrase is empty; else picks a salt. */
int lock_prepare_engage(const struct agent_lock *l, size_t passlen, uint8_t salt[LOCK_SALT_LEN]);
/* Fails if not locked; else gives the salt the passphrase must be hashed with. */
int lock_prepare_release(const struct agent_lock *l, uint8_t salt[LOCK_SALT_LEN]);

/* scrypt(pass, salt). Pure: safe on any thread. */
int lock_derive(const uint8_t *pass, size_t len, const uint8_t salt[LOCK_SALT_LEN],
                uint8_t out[LOCK_HASH_LEN]);

/* Locks with a derived hash, unless another client locked first. */
int lock_commit_engage(struct agent_lock *l, const uint8_t salt[LOCK_SALT_LEN],
                       const uint8_t hash[LOCK_HASH_LEN]);
/*
 * Unlocks if candidate (derived with the salt from lock_prepare_release())
 * matches. On a mismatch returns KW_ERR_DENIED and sets *delay_ms to how
 * long to hold back the reply.
 */
int lock_commit_release(struct agent_lock *l, const uint8_t salt[LOCK_SALT_LEN],
                        const uint8_t candidate[LOCK_HASH_LEN], uint32_t *delay_ms);

#endif
