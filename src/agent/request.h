/*
 * keyward: decoding agent requests (RFC 9987 and OpenSSH's PROTOCOL.agent).
 *
 * Decoding turns one message body (the bytes after the frame length) into a
 * struct agent_request. Decoding is strict: a malformed field, an unknown
 * constraint or bytes left over make the whole request invalid, and the
 * dispatcher answers it with a failure. Views in the request point into
 * the message, which must outlive the request.
 */
#ifndef KEYWARD_AGENT_REQUEST_H
#define KEYWARD_AGENT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/destination.h"
#include "base/wire.h"
#include "crypto/key.h"
#include "proto/msg.h"

/* The constraint extension that attaches certificates to a token's keys (PROTOCOL.agent). */
#define ASSOCIATED_CERTS_EXTENSION "associated-certs-v00@openssh.com"
/* The constraint that names a FIDO key's provider (ssh-add -S; PROTOCOL.agent). */
#define SK_PROVIDER_EXTENSION "sk-provider@openssh.com"

struct add_constraints {
    bool has_lifetime;
    uint32_t lifetime_secs;
    bool confirm;
    struct dest_constraints dest; /* count 0: no destination restriction */
    /*
     * associated-certs-v00@openssh.com, in ADD_SMARTCARD_KEY_CONSTRAINED
     * only: certificates to graft onto the token's keys, and whether to
     * load only those. Owned; at most PROVIDER_MAX_CERTS.
     */
    bool certs_only;
    struct key **certs;
    size_t ncerts;
    struct wire_view dest_raw; /* dest's encoded body, as it came (for the key store) */
    /* sk-provider@openssh.com, in ADD_ID_CONSTRAINED only: a FIDO key's provider. */
    bool has_sk_provider;
    struct wire_view sk_provider;
};

/* Frees what the constraints own (destinations and certificates). */
void add_constraints_free(struct add_constraints *c);

struct agent_request {
    uint8_t type;
    union {
        struct {
            struct wire_view key_blob;
            struct wire_view data;
            uint32_t flags;
        } sign;
        struct {
            struct key *key;       /* owned by the request until taken */
            char *comment;         /* owned by the request until taken */
            struct wire_view priv; /* the private part exactly as it came, type string on */
            struct add_constraints constraints;
        } add;
        struct {
            struct wire_view key_blob;
        } remove;
        struct {
            struct wire_view provider;          /* the module path as the client gave it */
            struct wire_view pin;               /* ignored by REMOVE_SMARTCARD_KEY */
            struct add_constraints constraints; /* ADD_SMARTCARD_KEY_CONSTRAINED */
        } smartcard;
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

#endif
