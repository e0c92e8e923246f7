/*
 * keyward: agent protocol messages (RFC 9987 and OpenSSH's PROTOCOL.agent).
 *
 * Decoding turns one message body (the bytes after the frame length) into a
 * struct agent_request. Decoding is strict: a malformed field, an unknown
 * constraint or bytes left over make the whole request invalid, and the
 * dispatcher answers it with a failure. Views in the request point into
 * the message, which must outlive the request.
 */
#ifndef KEYWARD_PROTO_H
#define KEYWARD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "destination.h"
#include "key.h"
#include "wire.h"

/* Replies */
#define SSH_AGENT_FAILURE            5
#define SSH_AGENT_SUCCESS            6
#define SSH_AGENT_IDENTITIES_ANSWER  12
#define SSH_AGENT_SIGN_RESPONSE      14
#define SSH_AGENT_EXTENSION_FAILURE  28
#define SSH_AGENT_EXTENSION_RESPONSE 29

/* Requests */
#define SSH_AGENTC_REQUEST_IDENTITIES            11
#define SSH_AGENTC_SIGN_REQUEST                  13
#define SSH_AGENTC_ADD_IDENTITY                  17
#define SSH_AGENTC_REMOVE_IDENTITY               18
#define SSH_AGENTC_REMOVE_ALL_IDENTITIES         19
#define SSH_AGENTC_ADD_SMARTCARD_KEY             20
#define SSH_AGENTC_REMOVE_SMARTCARD_KEY          21
#define SSH_AGENTC_LOCK                          22
#define SSH_AGENTC_UNLOCK                        23
#define SSH_AGENTC_ADD_ID_CONSTRAINED            25
#define SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED 26
#define SSH_AGENTC_EXTENSION                     27

/* Key constraints */
#define SSH_AGENT_CONSTRAIN_LIFETIME  1
#define SSH_AGENT_CONSTRAIN_CONFIRM   2
#define SSH_AGENT_CONSTRAIN_EXTENSION 255

#define EXT_QUERY        "query"
#define EXT_SESSION_BIND "session-bind@openssh.com"

struct add_constraints {
    bool has_lifetime;
    uint32_t lifetime_secs;
    bool confirm;
    struct dest_constraints dest; /* count 0: no destination restriction */
};

struct agent_request {
    uint8_t type;
    union {
        struct {
            struct wire_view key_blob;
            struct wire_view data;
            uint32_t flags;
        } sign;
        struct {
            struct key *key; /* owned by the request until taken */
            char *comment;   /* owned by the request until taken */
            struct add_constraints constraints;
        } add;
        struct {
            struct wire_view key_blob;
        } remove;
        struct {
            struct wire_view passphrase;
        } lock;
        struct {
            struct wire_view name;
            struct wire_view body; /* everything after the name */
        } ext;
    } u;
};

struct session_bind_request {
    struct key *hostkey; /* owned until taken */
    struct wire_view sid;
    struct wire_view signature;
    bool forwarding;
};

/*
 * Decodes a message. On success req->type is the message type and the
 * union member for it is filled in. Unknown types decode successfully with
 * only req->type set; the dispatcher refuses them. On error req->type is
 * still set when the message had one (0 otherwise).
 */
int proto_decode_request(const uint8_t *msg, size_t len, struct agent_request *req);
void proto_request_free(struct agent_request *req);

int proto_decode_session_bind(struct wire_view body, struct session_bind_request *sb);
void proto_session_bind_free(struct session_bind_request *sb);

/* "SIGN_REQUEST" etc., for logs. */
const char *proto_type_name(uint8_t type);

void proto_put_status(struct wire_writer *w, uint8_t code);

#endif
