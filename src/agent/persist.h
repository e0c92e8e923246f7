/*
 * keyward: keys kept across restarts (keyward-agent.exe on Windows).
 *
 * The agent decides, a store remembers. A program that keeps keys sets
 * ag->persist to its store's hooks: the dispatcher calls them for every key
 * added (put), removed or expired (forget) and for remove-all (forget_all),
 * and at start the program hands each stored record back to
 * agent_restore(). Nothing here does I/O or knows where records live; on
 * Windows that is src/server/key_store_win.c (DPAPI, a folder of the
 * user's own). Unix keeps no keys across restarts, as OpenSSH does
 * (docs/security.md says why).
 *
 * A record is what it takes to add the identity again: the private part
 * exactly as it arrived in ADD_IDENTITY (key type string through the last
 * private field), the comment, and the constraints, a lifetime turned into
 * its absolute expiry. It holds the private key: whoever writes it out
 * must protect it, and clear every copy.
 */
#ifndef KEYWARD_AGENT_PERSIST_H
#define KEYWARD_AGENT_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/wire.h"
#include "crypto/key.h"

/* The record's own format number; a newer one is refused, not guessed at. */
#define PERSIST_RECORD_VERSION 1

struct persist_record {
    uint64_t expires;         /* seconds since the epoch; 0: never */
    bool confirm;             /* each use must be confirmed */
    struct wire_view priv;    /* the private part, as in ADD_IDENTITY */
    struct wire_view comment; /* the comment's bytes */
    struct wire_view dest;    /* the restrict-destination-v00 body; empty: none */
};

struct agent_persist {
    /*
     * A key was added or added again (replacing its entry). Returns 0, or
     * a KW_ERR_* code with why filled in: the key then stays in memory
     * only, and the add succeeds with a warning in the log and the audit
     * event.
     */
    int (*put)(void *ctx, const struct key *key, const struct persist_record *rec, char *why,
               size_t whysize);
    /* A key was removed or expired: its entry goes. */
    void (*forget)(void *ctx, const struct key *key);
    /* ssh-add -D: every entry goes. */
    void (*forget_all)(void *ctx);
    void *ctx;
};

/* The bytes persist_record_write() writes for rec. */
size_t persist_record_size(const struct persist_record *rec);
/*
 * Writes rec into buf, which holds persist_record_size(rec) bytes (the
 * caller chooses the memory: it will hold a private key).
 */
void persist_record_write(const struct persist_record *rec, uint8_t *buf);
/*
 * Reads a record; the views point into buf. KW_ERR_KEY_TYPE for a record
 * of a newer format, KW_ERR_TRUNCATED, KW_ERR_TRAILING or KW_ERR_BAD_FORMAT
 * for a damaged one.
 */
int persist_record_read(const uint8_t *buf, size_t len, struct persist_record *rec);

/*
 * Parses rec's private part into *out and checks it against what the
 * entry says it is: exactly one private key, the one whose public blob is
 * pub, and a comment without a NUL byte. Returns 0, or a KW_ERR_* code with
 * why filled in. Used at load and by the import of Windows' agent's keys.
 */
int persist_record_key(const struct persist_record *rec, const uint8_t *pub, size_t pub_len,
                       struct key **out, char *why, size_t whysize);

#endif
