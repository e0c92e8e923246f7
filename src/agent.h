/*
 * keyward: the request dispatcher.
 *
 * agent_handle() is the whole protocol decision: it takes the agent's
 * state, one connection's state and one request message, and produces
 * exactly one reply message. It does no I/O and has no way to ask for the
 * connection to be closed. A request that fails is answered with a failure
 * reply; that is the rule the seed report is about (a refused session-bind
 * must not cost the client its connection).
 *
 * The transport (server.c) owns framing: it alone may close a connection,
 * and only for end of stream, an I/O error or an oversized frame.
 */
#ifndef KEYWARD_AGENT_H
#define KEYWARD_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "binding.h"
#include "keystore.h"
#include "lock.h"
#include "wire.h"

struct agent {
    struct keystore keys;
    struct agent_lock lock;
    uint32_t default_lifetime_secs; /* keyward-agent -t; 0 = none */
};

struct agent_conn {
    unsigned long id; /* for log lines */
    struct binding_set bindings;
};

struct agent_reply {
    struct wire_writer msg; /* one message body, without the frame length */
    uint32_t delay_ms;      /* hold the reply back this long (failed unlock) */
};

void agent_init(struct agent *ag, uint32_t default_lifetime_secs);
/* Removes and clears every key and the lock hash. */
void agent_cleanup(struct agent *ag);

void agent_conn_init(struct agent_conn *c, unsigned long id);
void agent_conn_cleanup(struct agent_conn *c);

void agent_reply_init(struct agent_reply *reply);
void agent_reply_free(struct agent_reply *reply);

/* now_ms is a monotonic clock in milliseconds (the caller's loop time). */
void agent_handle(struct agent *ag, struct agent_conn *c, uint64_t now_ms, const uint8_t *msg,
                  size_t len, struct agent_reply *reply);

/* Drops expired keys; returns the next expiry (monotonic ms) or 0 if none. */
uint64_t agent_expire(struct agent *ag, uint64_t now_ms);

/* The extension names answered by "query", NULL-terminated. */
extern const char *const agent_extensions[];

#endif
