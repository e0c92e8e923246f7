/*
 * keyward: message names for log lines. See msg.h.
 */
#include "proto/msg.h"

#include <stddef.h>

/* The replies' names, NULL for any other type: the one list of reply types. */
static const char *reply_type_name(uint8_t type)
{
    switch (type) {
    case SSH_AGENT_FAILURE:
        return "FAILURE";
    case SSH_AGENT_SUCCESS:
        return "SUCCESS";
    case SSH_AGENT_IDENTITIES_ANSWER:
        return "IDENTITIES_ANSWER";
    case SSH_AGENT_SIGN_RESPONSE:
        return "SIGN_RESPONSE";
    case SSH_AGENT_EXTENSION_FAILURE:
        return "EXTENSION_FAILURE";
    case SSH_AGENT_EXTENSION_RESPONSE:
        return "EXTENSION_RESPONSE";
    }
    return NULL;
}

bool proto_is_reply(uint8_t type)
{
    return reply_type_name(type) != NULL;
}

const char *proto_type_name(uint8_t type)
{
    const char *reply = reply_type_name(type);

    if (reply != NULL)
        return reply;
    switch (type) {
    case SSH_AGENTC_REQUEST_IDENTITIES:
        return "REQUEST_IDENTITIES";
    case SSH_AGENTC_SIGN_REQUEST:
        return "SIGN_REQUEST";
    case SSH_AGENTC_ADD_IDENTITY:
        return "ADD_IDENTITY";
    case SSH_AGENTC_REMOVE_IDENTITY:
        return "REMOVE_IDENTITY";
    case SSH_AGENTC_REMOVE_ALL_IDENTITIES:
        return "REMOVE_ALL_IDENTITIES";
    case SSH_AGENTC_ADD_SMARTCARD_KEY:
        return "ADD_SMARTCARD_KEY";
    case SSH_AGENTC_REMOVE_SMARTCARD_KEY:
        return "REMOVE_SMARTCARD_KEY";
    case SSH_AGENTC_LOCK:
        return "LOCK";
    case SSH_AGENTC_UNLOCK:
        return "UNLOCK";
    case SSH_AGENTC_ADD_ID_CONSTRAINED:
        return "ADD_ID_CONSTRAINED";
    case SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED:
        return "ADD_SMARTCARD_KEY_CONSTRAINED";
    case SSH_AGENTC_EXTENSION:
        return "EXTENSION";
    }
    return "UNKNOWN";
}

void proto_put_status(struct wire_writer *w, uint8_t code)
{
    wire_put_u8(w, code);
}
