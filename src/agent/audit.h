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
 * (agent.audit). keyward-agent -l sends them to an audit_sink (below): the
 * one piece of this file that does I/O, on a thread of its own.
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
                                          "expire", "lock", "unlock" */
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
 * The audit log's file (keyward-agent -l). The event loop never waits for
 * it: audit_sink_event() formats the line and queues it, and a thread of
 * the sink's own writes it, so a slow or stuck sink (a FIFO whose reader
 * does not read, a full disk, a hung network file system) never holds up
 * a client.
 *
 * - The queue holds at most AUDIT_QUEUE_LINES lines and AUDIT_QUEUE_BYTES
 *   bytes. An event that does not fit is dropped and counted; the first
 *   drop is logged, and so is the count once an event fits again ("audit:
 *   dropped N events: sink is not keeping up").
 * - Every line is whole or absent. If a regular file takes only part of a
 *   line (disk full, RLIMIT_FSIZE: write(2) returns short, then fails),
 *   the file is cut back to where the line started. A FIFO or character
 *   device gets the rest of a line when it can take it.
 * - The first line written after events were lost is preceded by one that
 *   says how many: {"time":...,"event":"audit-lost","dropped":N,"failed":M}
 *   (dropped: the queue was full; failed: writing failed). Write errors are
 *   logged with the error of the call that failed, once until writing
 *   works again.
 */
#define AUDIT_QUEUE_LINES 1024
#define AUDIT_QUEUE_BYTES (1024 * 1024)
/* How long closing waits for a sink to take what is still queued. */
#define AUDIT_CLOSE_WAIT_MS 2000

struct audit_sink;

/*
 * Opens path for appending, or a copy of standard error for "-". A file
 * is created mode 0600, never opened through a symbolic link, and opened
 * non-blocking, so that a FIFO no process has open for reading is refused
 * at once (instead of open(2) waiting for a reader). Regular files, FIFOs
 * and character devices are accepted; anything else is refused. Returns 0,
 * or -1 with the reason in err. Nothing is written before
 * audit_sink_start(), which starts the writer thread: call it in the
 * process that serves (after any fork).
 */
int audit_sink_open(struct audit_sink **out, const char *path, char *err, size_t errsize);
int audit_sink_start(struct audit_sink *s, char *err, size_t errsize);

/* An audit_fn: ctx is the sink. Never blocks on the sink. */
void audit_sink_event(void *ctx, const struct audit_event *ev);

/*
 * Writes what is still queued (waiting at most AUDIT_CLOSE_WAIT_MS for a
 * sink that does not take it, and then logging what was lost), stops the
 * thread and closes the file. NULL does nothing.
 */
void audit_sink_close(struct audit_sink *s);

#endif
