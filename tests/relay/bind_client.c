/*
 * bind_client: do two clients binding at the same time see each other's
 * session bindings? The test client of tests/relay/isolation.sh.
 *
 *   bind_client SOCKET
 *
 * Opens connections A and B to SOCKET, both before either binds, then:
 *
 *   A: session-bind for authentication (is_forwarding = 0)   must succeed
 *   B: session-bind for authentication, another session      the question
 *   A: a second session-bind for authentication              must be refused
 *   A, B: REQUEST_IDENTITIES                                 must be answered
 *
 * An agent refuses any bind after an authentication bind on the same
 * connection (OpenSSH's rule). So B's bind succeeds only if B has a
 * connection of its own to the agent; A's second bind shows that A's
 * binding really was recorded, so B's success means something.
 *
 * Exit status: 0 if B's bind succeeded (B has its own agent connection),
 * 1 if it was refused (B shares A's connection), 2 for any other outcome
 * (the reason is printed).
 *
 * Talks through src/probe/transport.h, so the same client can later run
 * over a Windows named pipe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "base/err.h"
#include "base/wire.h"
#include "crypto/key.h"
#include "probe/transport.h"
#include "proto/msg.h"

#define TIMEOUT_MS 10000
#define SID_LEN    32

#define EXIT_ISOLATED 0
#define EXIT_SHARED   1
#define EXIT_ERROR    2

static const char *status_name(enum transport_status st)
{
    switch (st) {
    case TRANSPORT_OK:
        return "ok";
    case TRANSPORT_CLOSED:
        return "connection closed";
    case TRANSPORT_TIMEOUT:
        return "no reply in time";
    case TRANSPORT_OVERSIZED:
        return "oversized reply";
    }
    return "?";
}

/* Sends one request; returns the reply's type, or -1 (the reason is printed). */
static int request(struct transport *t, const char *who, const char *what,
                   const struct wire_writer *body)
{
    struct wire_writer frame, raw;
    enum transport_status st = TRANSPORT_OK;
    int type = -1;

    wire_writer_init(&frame);
    wire_writer_init(&raw);
    wire_put_u32(&frame, (uint32_t)body->len);
    wire_put_bytes(&frame, body->buf, body->len);
    if (body->error != 0 || frame.error != 0) {
        printf("%s: %s -> cannot build the request: %s\n", who, what,
               kw_strerror(body->error ? body->error : frame.error));
        goto out;
    }
    if (transport_send(t, frame.buf, frame.len, TIMEOUT_MS, &st) != 0 || st != TRANSPORT_OK) {
        printf("%s: %s -> sending failed (%s)\n", who, what, status_name(st));
        goto out;
    }
    if (transport_recv_frame(t, TIMEOUT_MS, WIRE_MAX_MESSAGE, &raw, &st) != 0 ||
        st != TRANSPORT_OK || raw.len < 5) {
        printf("%s: %s -> no reply (%s)\n", who, what,
               st == TRANSPORT_OK ? "empty frame" : status_name(st));
        goto out;
    }
    type = raw.buf[4];
    printf("%s: %s -> %d (%s)\n", who, what, type, proto_type_name((uint8_t)type));
out:
    wire_writer_free(&frame);
    wire_writer_free(&raw);
    return type;
}

/* A session-bind for authentication over a fresh random session id. */
static int session_bind(struct transport *t, const char *who, const char *what,
                        const struct key *hostkey)
{
    struct wire_writer body, sig;
    uint8_t sid[SID_LEN];
    int type = -1, err;

    wire_writer_init(&body);
    wire_writer_init(&sig);
    if (RAND_bytes(sid, sizeof(sid)) != 1) {
        printf("%s: %s -> no random session id\n", who, what);
        goto out;
    }
    /* The host key signs the session id, as sshd does in the key exchange. */
    if ((err = key_sign(hostkey, sid, sizeof(sid), 0, &sig)) != 0) {
        printf("%s: %s -> cannot sign: %s\n", who, what, kw_strerror(err));
        goto out;
    }
    wire_put_u8(&body, SSH_AGENTC_EXTENSION);
    wire_put_cstring(&body, EXT_SESSION_BIND);
    wire_put_string(&body, hostkey->blob, hostkey->blob_len);
    wire_put_string(&body, sid, sizeof(sid));
    wire_put_string(&body, sig.buf, sig.len);
    wire_put_bool(&body, false); /* is_forwarding = 0: for authentication */
    type = request(t, who, what, &body);
out:
    wire_writer_free(&body);
    wire_writer_free(&sig);
    return type;
}

static int list(struct transport *t, const char *who)
{
    struct wire_writer body;
    int type;

    wire_writer_init(&body);
    wire_put_u8(&body, SSH_AGENTC_REQUEST_IDENTITIES);
    type = request(t, who, "REQUEST_IDENTITIES", &body);
    wire_writer_free(&body);
    return type;
}

static bool is_refusal(int type)
{
    return type == SSH_AGENT_FAILURE || type == SSH_AGENT_EXTENSION_FAILURE;
}

int main(int argc, char **argv)
{
    struct transport *a = NULL, *b = NULL;
    struct key *hostkey = NULL;
    char why[256];
    int rc = EXIT_ERROR, err, a1, b1, a2, la, lb;

    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
        return EXIT_ERROR;
    }
    if ((err = transport_setup(2)) != 0 || (err = key_generate(KEY_ED25519, 0, &hostkey)) != 0) {
        fprintf(stderr, "bind_client: setup failed: %s\n", kw_strerror(err));
        goto out;
    }
    /* Both connections exist before either binds: they are open at once. */
    if (transport_connect(argv[1], TIMEOUT_MS, &a, why, sizeof(why)) != 0 ||
        transport_connect(argv[1], TIMEOUT_MS, &b, why, sizeof(why)) != 0) {
        printf("cannot connect to %s: %s\n", argv[1], why);
        goto out;
    }
    a1 = session_bind(a, "A", "session-bind (authentication)", hostkey);
    b1 = session_bind(b, "B", "session-bind (authentication)", hostkey);
    a2 = session_bind(a, "A", "second session-bind (authentication)", hostkey);
    la = list(a, "A");
    lb = list(b, "B");

    if (a1 != SSH_AGENT_SUCCESS) {
        printf("verdict: error: A's first bind was not accepted, so nothing can be learned\n");
    } else if (!is_refusal(a2)) {
        printf("verdict: error: A's second bind was not refused: the agent does not record "
               "bindings, so nothing can be learned\n");
    } else if (la != SSH_AGENT_IDENTITIES_ANSWER || lb != SSH_AGENT_IDENTITIES_ANSWER) {
        printf("verdict: error: a connection was lost\n");
    } else if (b1 == SSH_AGENT_SUCCESS) {
        printf("verdict: isolated: B's bind succeeded on its own agent connection\n");
        rc = EXIT_ISOLATED;
    } else if (is_refusal(b1)) {
        printf("verdict: shared: B's bind was refused because of A's binding\n");
        rc = EXIT_SHARED;
    } else {
        printf("verdict: error: B's bind got no usable answer\n");
    }
out:
    transport_close(a);
    transport_close(b);
    key_free(hostkey);
    return rc;
}
