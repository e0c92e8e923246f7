/*
 * keyward: the agent lock. See lock.h.
 */
#include "agent/lock.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/err.h"
#include "base/memzero.h"

/*
 * scrypt cost: N = 2^14, r = 8, p = 1 takes tens of milliseconds and 16 MiB,
 * enough to make offline guessing of a hash lifted from memory expensive
 * without making lock/unlock feel slow.
 */
#define LOCK_SCRYPT_N      (1u << 14)
#define LOCK_SCRYPT_R      8
#define LOCK_SCRYPT_P      1
#define LOCK_SCRYPT_MAXMEM (64u * 1024 * 1024)

#define LOCK_DELAY_STEP_MS 100
#define LOCK_MAX_FAILS     100

void lock_init(struct agent_lock *l)
{
    memset(l, 0, sizeof(*l));
}

void lock_clear(struct agent_lock *l)
{
    kw_memzero(l, sizeof(*l));
}

int lock_derive(const uint8_t *pass, size_t len, const uint8_t salt[LOCK_SALT_LEN],
                uint8_t out[LOCK_HASH_LEN])
{
    if (EVP_PBE_scrypt((const char *)pass, len, salt, LOCK_SALT_LEN, LOCK_SCRYPT_N, LOCK_SCRYPT_R,
                       LOCK_SCRYPT_P, LOCK_SCRYPT_MAXMEM, out, LOCK_HASH_LEN) != 1) {
        kw_memzero(out, LOCK_HASH_LEN);
        return KW_ERR_INTERNAL;
    }
    return 0;
}

int lock_prepare_engage(const struct agent_lock *l, size_t passlen, uint8_t salt[LOCK_SALT_LEN])
{
    if (l->locked)
        return KW_ERR_LOCKED;
    if (passlen == 0)
        return KW_ERR_DENIED; /* OpenSSH refuses an empty lock passphrase too */
    if (RAND_bytes(salt, LOCK_SALT_LEN) != 1)
        return KW_ERR_INTERNAL;
    return 0;
}

int lock_prepare_release(const struct agent_lock *l, uint8_t salt[LOCK_SALT_LEN])
{
    if (!l->locked)
        return KW_ERR_DENIED;
    memcpy(salt, l->salt, LOCK_SALT_LEN);
    return 0;
}

int lock_commit_engage(struct agent_lock *l, const uint8_t salt[LOCK_SALT_LEN],
                       const uint8_t hash[LOCK_HASH_LEN])
{
    if (l->locked)
        return KW_ERR_LOCKED; /* another client locked while we hashed */
    memcpy(l->salt, salt, LOCK_SALT_LEN);
    memcpy(l->hash, hash, LOCK_HASH_LEN);
    l->locked = true;
    return 0;
}

int lock_attempt_begin(struct agent_lock *l, uint64_t now_ms, unsigned long *ticket,
                       uint32_t *wait_ms)
{
    uint64_t wait = 0;
    unsigned next_fails = l->fail_count < LOCK_MAX_FAILS ? l->fail_count + 1 : LOCK_MAX_FAILS;

    *ticket = 0;
    *wait_ms = 0;
    if (now_ms < l->next_attempt_ms)
        wait = l->next_attempt_ms - now_ms;
    if (l->attempt != 0 && wait < LOCK_POLL_MS)
        wait = LOCK_POLL_MS; /* another attempt is being hashed: look again soon */
    if (wait > 0) {
        *wait_ms = (uint32_t)wait;
        return KW_ERR_DENIED;
    }
    if (++l->last_ticket == 0)
        l->last_ticket = 1;
    l->attempt = *ticket = l->last_ticket;
    /* Should this attempt fail, the next may not start before its delay is over. */
    l->next_attempt_ms = now_ms + (uint64_t)LOCK_DELAY_STEP_MS * next_fails;
    return 0;
}

void lock_attempt_done(struct agent_lock *l, unsigned long ticket)
{
    if (ticket != 0 && l->attempt == ticket)
        l->attempt = 0;
}

int lock_commit_release(struct agent_lock *l, const uint8_t salt[LOCK_SALT_LEN],
                        const uint8_t candidate[LOCK_HASH_LEN], uint64_t started_ms,
                        uint32_t *delay_ms)
{
    uint64_t next;

    *delay_ms = 0;
    /* Unlocked, or unlocked and locked again, while we hashed: not ours. */
    if (!l->locked || CRYPTO_memcmp(salt, l->salt, LOCK_SALT_LEN) != 0)
        return KW_ERR_DENIED;
    if (CRYPTO_memcmp(candidate, l->hash, LOCK_HASH_LEN) == 0) {
        kw_memzero(l->salt, sizeof(l->salt));
        kw_memzero(l->hash, sizeof(l->hash));
        l->locked = false;
        l->fail_count = 0;
        l->next_attempt_ms = 0;
        return 0;
    }
    if (l->fail_count < LOCK_MAX_FAILS)
        l->fail_count++;
    *delay_ms = LOCK_DELAY_STEP_MS * l->fail_count;
    next = started_ms + *delay_ms;
    if (next > l->next_attempt_ms)
        l->next_attempt_ms = next;
    return KW_ERR_DENIED;
}
