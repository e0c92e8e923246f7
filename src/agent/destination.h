/*
 * keyward: destination constraints (restrict-destination-v00@openssh.com,
 * `ssh-add -h`), decoded and evaluated with OpenSSH's semantics.
 *
 * A constrained key carries a list of permitted hops, each "from host
 * (identified by host keys) to user@host (identified by host keys)"; a
 * missing "from" host means the user's own machine. A connection's session
 * bindings (binding.h) describe the path its requests travelled: every
 * forwarding hop, then the host being authenticated to. The key may be
 * used only if every step of that path is a permitted hop.
 *
 * Wire form, inside the constraint's string:
 *   repeated:  string constraint { string from_hop, string to_hop, string reserved }
 *   hop:       string user, string hostname, string reserved,
 *              repeated { string host key blob, bool is_ca }
 */
#ifndef KEYWARD_DESTINATION_H
#define KEYWARD_DESTINATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/binding.h"
#include "base/wire.h"
#include "crypto/key.h"

#define DEST_EXTENSION       "restrict-destination-v00@openssh.com"
#define DEST_MAX_CONSTRAINTS 1024 /* as OpenSSH */
/*
 * Host keys (and CA keys) in one restriction, over all its hops: each is
 * parsed and checked on the event loop, so this bounds what one ADD costs
 * (OpenSSH has no such limit; ssh-add -h sends a few per host).
 */
#define DEST_MAX_KEYS 128

struct dest_hop {
    char *user;     /* "to" only; NULL = any user */
    char *hostname; /* NULL = the origin ("from") */
    struct key **keys;
    bool *key_is_ca;
    size_t nkeys;
};

struct dest_constraint {
    struct dest_hop from;
    struct dest_hop to;
};

struct dest_constraints {
    struct dest_constraint *items;
    size_t count;
};

/* Decodes the constraint's string; all or nothing. */
int dest_decode(struct wire_view v, struct dest_constraints *out);
void dest_free(struct dest_constraints *dc);
/* A copy of from (its keys shared by reference), for one more identity. */
int dest_copy(const struct dest_constraints *from, struct dest_constraints *to);

/*
 * Whether a key with these constraints may be used on a connection with
 * these bindings. user is the user of the userauth request being signed,
 * or NULL when only listing. On refusal, why (size whysize) says which hop
 * and host key were refused. Unconstrained keys are always permitted.
 * now is the wall clock (seconds since the epoch) for host certificates.
 */
bool dest_permitted(const struct dest_constraints *dc, const struct binding_set *bs,
                    const char *user, uint64_t now, char *why, size_t whysize);

#endif
