/*
 * keyward: the audit log (keyward-agent -l FILE).
 *
 * One JSON object per line for every signature and every refusal, and for
 * keys added, removed or expired, lock and unlock. An entry says who asked
 * (the client process as the platform reports it), with which key, for
 * which destination when the connection is bound, and what came of it.
 * It never contains private key material or the data that was signed.
 *
 * The dispatcher builds events; where they go is the program's choice
 * (agent.audit), so the core does no file I/O.
 */
#ifndef KEYWARD_AUDIT_H
#define KEYWARD_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "key.h"

/* The client process behind a connection, as far as the platform tells. */
struct audit_client {
    long pid; /* -1 if unknown */
    long uid; /* -1 if unknown or not Unix */
    char exe[256];
};

struct audit_event {
    const char *event;   /* "sign", "refused", "add", "remove", "remove-all",
                            "expire", "lock", "unlock" */
    const char *outcome; /* "ok" or "refused" */
    const char *request; /* the request's type name, e.g. "SIGN_REQUEST" */
    unsigned long conn;  /* connection number in the -d log; 0 if none */
    const struct audit_client *client; /* NULL for events without a client */
    const struct key *key;
    const char *comment;
    bool bound;     /* the connection has session bindings */
    bool forwarded; /* ... and they start with a forwarding hop */
    const struct key *dest_hostkey; /* the most recently bound host */
    const char *dest_user;          /* from the userauth request signed */
    const char *reason;             /* why it was refused */
};

typedef void (*audit_fn)(void *ctx, const struct audit_event *ev);

/*
 * Formats ev as one line of JSON (without the newline). Returns the
 * length, or 0 if buf is too small. Strings are escaped; absent fields are
 * left out.
 */
size_t audit_format_json(const struct audit_event *ev, time_t now, char *buf, size_t size);

#endif
