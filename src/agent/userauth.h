/*
 * keyward: the SSH userauth request inside a sign request.
 *
 * When ssh authenticates with an agent key, the data it asks the agent to
 * sign is an SSH_MSG_USERAUTH_REQUEST (RFC 4252 section 7) prefixed with
 * the session id. For destination-constrained keys the agent signs nothing
 * else, and checks the session id, user and (publickey-hostbound-v00) host
 * key against the connection's bindings.
 */
#ifndef KEYWARD_USERAUTH_H
#define KEYWARD_USERAUTH_H

#include "base/wire.h"
#include "crypto/key.h"

#define USERAUTH_MAX_USER 256

struct userauth_request {
    char user[USERAUTH_MAX_USER];
    struct wire_view sid;
    struct key *hostkey; /* publickey-hostbound-v00 only; owned */
};

/*
 * Parses data as a userauth request for key. Fails unless it is exactly
 * one, for the ssh-connection service, with a signature following, for
 * this very key under an algorithm that names its kind.
 */
int userauth_parse(const uint8_t *data, size_t len, const struct key *key,
                   struct userauth_request *out);
void userauth_free(struct userauth_request *ua);

#endif
