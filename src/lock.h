/*
 * keyward: the agent lock (SSH_AGENTC_LOCK / SSH_AGENTC_UNLOCK).
 *
 * The passphrase itself is never kept: only a random salt and a scrypt
 * hash of it, compared in constant time on unlock. Wrong passphrases earn
 * a growing delay (100 ms more per failure, at most 10 s, as OpenSSH's
 * agent does); the transport applies the delay to the asking connection
 * only, so other clients are not stalled.
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

/* Locks with passphrase. Fails if already locked or the passphrase is empty. */
int lock_engage(struct agent_lock *l, const uint8_t *pass, size_t len);

/*
 * Unlocks if passphrase matches. On a mismatch returns KW_ERR_DENIED and
 * sets *delay_ms to how long to hold back the reply.
 */
int lock_release(struct agent_lock *l, const uint8_t *pass, size_t len, uint32_t *delay_ms);

#endif
