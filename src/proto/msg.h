/*
 * keyward: the agent protocol's message numbers and names (RFC 9987 and
 * OpenSSH's PROTOCOL.agent). No decoding here and nothing that needs
 * libcrypto: keyward-relay uses these names in its log lines.
 */
#ifndef KEYWARD_PROTO_MSG_H
#define KEYWARD_PROTO_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/wire.h"

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

/* "SIGN_REQUEST" etc., for logs. */
const char *proto_type_name(uint8_t type);

/* Whether type is one an agent sends (the replies above), not a request or unknown. */
bool proto_is_reply(uint8_t type);

/* A reply that is only its type (SSH_AGENT_SUCCESS, SSH_AGENT_FAILURE). */
void proto_put_status(struct wire_writer *w, uint8_t code);

#endif
