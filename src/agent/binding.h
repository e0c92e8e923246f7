/*
 * keyward: per-connection session bindings (session-bind@openssh.com).
 *
 * ssh tells the agent which SSH session a connection serves by sending the
 * session's host key, its session identifier and the host's signature over
 * it. The agent keeps up to BINDING_MAX of these per connection. They are
 * what destination restrictions are checked against.
 *
 * The rules are OpenSSH's:
 *   - a connection bound for user authentication (forwarding = false) may
 *     not be bound again: refused;
 *   - the same session id with the same key again: success, nothing new;
 *   - the same session id with another key: refused;
 *   - more than BINDING_MAX bindings: refused;
 *   - every attempt, successful or not, is remembered (attempted), so a
 *     connection whose binding failed is never mistaken for an unbound local
 *     one: with an attempt and no binding recorded, no destination-constrained
 *     key is usable on it (dest_permitted()). A failure after a binding was
 *     recorded leaves the recorded bindings to decide, as in OpenSSH.
 * A refusal is an answer (EXTENSION_FAILURE), never a closed connection.
 */
#ifndef KEYWARD_BINDING_H
#define KEYWARD_BINDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/key.h"

#define BINDING_MAX     16
#define BINDING_MAX_SID 128

struct binding {
    struct key *hostkey;
    uint8_t sid[BINDING_MAX_SID];
    size_t sid_len;
    bool forwarding;
};

struct binding_set {
    /*
     * BINDING_MAX slots, allocated by the first binding_record(), so that a
     * connection never bound (ssh-add, git's signing, a client without
     * session-bind, an idle one) does not carry them: they were most of a
     * connection's memory when ten thousand are open. NULL until then.
     */
    struct binding *slots;
    size_t count;
    bool attempted; /* any session-bind was received */
};

enum binding_result {
    BINDING_RECORDED = 0,
    BINDING_ALREADY = 1,
    BINDING_REFUSED = -1,
};

void binding_set_init(struct binding_set *bs);
/* Drops every binding and frees the slots; the set is then as if new. */
void binding_set_clear(struct binding_set *bs);

/*
 * Applies the rules above to an already signature-checked binding. On
 * BINDING_RECORDED the set takes ownership of hostkey; otherwise the caller
 * keeps it. *why names the reason for a refusal. *slot is the slot used or
 * matched. If the slots cannot be allocated the binding is refused; as no
 * binding can then have been recorded, the attempt alone keeps every
 * destination-constrained key from being used.
 */
enum binding_result binding_record(struct binding_set *bs, struct key *hostkey, const uint8_t *sid,
                                   size_t sid_len, bool forwarding, const char **why, size_t *slot);

/* Marks an attempt that failed before reaching binding_record. */
void binding_note_failure(struct binding_set *bs);

#endif
