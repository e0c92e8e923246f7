/*
 * keyward: the agent lock (SSH_AGENTC_LOCK / SSH_AGENTC_UNLOCK).
 *
 * The passphrase itself is never kept: only a random salt and a scrypt
 * hash of it, compared in constant time on unlock. Wrong passphrases earn
 * a growing delay (100 ms more per failure, at most 10 s, as OpenSSH's
 * agent does). The delay holds back the failed attempt's reply and, agent
 * wide, the start of the next unlock attempt from any connection; waiting
 * attempts wait on their own connections (the transport re-offers them),
 * so other clients' requests are never stalled.
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
    /*
     * Agent-wide, not per connection: no unlock attempt starts before
     * next_attempt_ms (the loop's monotonic clock), and only one is
     * evaluated at a time (attempt: its ticket, 0 when none), so opening
     * more connections does not buy more guesses.
     */
    uint64_t next_attempt_ms;
    unsigned long attempt;
    unsigned long last_ticket;
};

/* How often a waiting unlock attempt looks again while another is hashed. */
#define LOCK_POLL_MS 20

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
 * The agent-wide turn for an unlock attempt at now_ms. Returns 0 and a
 * ticket (to pass to lock_attempt_done()) when the attempt may be
 * evaluated now; otherwise KW_ERR_DENIED and in *wait_ms how long to wait
 * before asking again.
 */
int lock_attempt_begin(struct agent_lock *l, uint64_t now_ms, unsigned long *ticket,
                       uint32_t *wait_ms);
/* Ends the attempt with this ticket (no-op for a stale one). */
void lock_attempt_done(struct agent_lock *l, unsigned long ticket);

/*
 * Unlocks if candidate (derived with the salt from lock_prepare_release())
 * matches. On a mismatch returns KW_ERR_DENIED, sets *delay_ms to how long
 * to hold back the reply, and lets no further attempt start before
 * started_ms (when this attempt began) plus that delay.
 */
int lock_commit_release(struct agent_lock *l, const uint8_t salt[LOCK_SALT_LEN],
                        const uint8_t candidate[LOCK_HASH_LEN], uint64_t started_ms,
                        uint32_t *delay_ms);

#endif
