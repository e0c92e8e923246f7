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
 * (agent.audit). keyward-agent -l sends them to an audit_sink
 * (src/server/audit_sink.h), which does the I/O on a thread of its own.
 */
#ifndef KEYWARD_AUDIT_H
#define KEYWARD_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "crypto/key.h"

/* The client process behind a connection, as far as the platform tells. */
struct audit_client {
    long pid; /* -1 if unknown */
    long uid; /* -1 if unknown or not Unix */
    char exe[256];
};

struct audit_event {
    const char *event;                 /* "sign", "refused", "add", "remove", "remove-all",
                                          "expire", "lock", "unlock"; on Windows also
                                          "load" (a stored key) and "import" */
    const char *outcome;               /* "ok" or "refused" */
    const char *request;               /* the request's type name, e.g. "SIGN_REQUEST" */
    unsigned long conn;                /* connection number in the -d log; 0 if none */
    const struct audit_client *client; /* NULL for events without a client */
    const struct key *key;
    const char *comment;
    bool bound;                     /* the connection has session bindings */
    bool forwarded;                 /* ... and they start with a forwarding hop */
    const struct key *dest_hostkey; /* the most recently bound host */
    const char *dest_user;          /* from the userauth request signed */
    const char *reason;             /* why it was refused */
    const char *warning;            /* done, but not all of it (a key not stored) */
};

typedef void (*audit_fn)(void *ctx, const struct audit_event *ev);

/*
 * Every string field is cut to AUDIT_FIELD_MAX bytes before escaping, so
 * that a client cannot make an event too long to log (its executable name
 * and the user name it asks to sign for are its own choice, and a control
 * character takes six bytes in JSON). A buffer of AUDIT_LINE_MAX bytes
 * holds the longest event these bounds allow, with room for a line ending;
 * tests/hostile/audit_line_fits.c builds that event and checks it.
 */
#define AUDIT_FIELD_MAX 255
#define AUDIT_LINE_MAX  8192

/*
 * Formats ev as one line of JSON (without the newline). Returns the
 * length, or 0 if buf is too small. Strings are cut to AUDIT_FIELD_MAX
 * bytes (never inside a UTF-8 sequence) and escaped; absent fields are left
 * out.
 */
size_t audit_format_json(const struct audit_event *ev, time_t now, char *buf, size_t size);

/*
 * Formats the line that tells a reader of the log how many events were
 * lost before the next one ({"time":...,"event":"audit-lost","dropped":N,
 * "failed":M}, without the newline). Returns the length, or 0 if buf is
 * too small.
 */
size_t audit_format_lost(unsigned long dropped, unsigned long failed, time_t now, char *buf,
                         size_t size);

#endif
