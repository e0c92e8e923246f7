/*
 * keyward-probe: one client connection to an SSH agent.
 *
 * The checks in checks.c talk to an agent only through this interface, so
 * the same checks run over a Unix socket (transport_posix.c) or a Windows
 * named pipe (transport_win32.c). Nothing here names a socket or a
 * file descriptor; a connection is an opaque struct transport.
 *
 * The probe's questions are about what an agent does at the edges (does it
 * answer, close, or stay silent?), so every I/O call reports which of those
 * happened as an enum transport_status, and keeps the return value for the
 * tree's one error convention: 0, or a negative KW_ERR_* when the probe
 * itself could not do its part (out of memory, a system call we need
 * failed). An agent closing the connection is an observation, not an error.
 */
#ifndef KEYWARD_PROBE_TRANSPORT_H
#define KEYWARD_PROBE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "base/wire.h"

struct transport;

enum transport_status {
    TRANSPORT_OK,        /* sent everything / received one whole frame */
    TRANSPORT_CLOSED,    /* the agent closed or reset the connection */
    TRANSPORT_TIMEOUT,   /* the agent neither answered nor closed in time */
    TRANSPORT_OVERSIZED, /* a frame header announced more than the limit */
};

/*
 * Process-wide setup before the first connection: on POSIX, a write to a
 * connection the agent has closed must report "closed" rather than raise
 * SIGPIPE. nconns is how many connections the caller will hold open at
 * once; the per-process limit is raised towards it where that is possible.
 */
int transport_setup(unsigned nconns);

/* The agent address to use when none is given ($SSH_AUTH_SOCK, or the
 * Windows agent's pipe name); NULL if there is none. */
const char *transport_default_address(void);

/*
 * Connects to the agent at address, waiting at most timeout_ms. On failure
 * returns KW_ERR_SYSTEM and writes a short reason (e.g. "No such file or
 * directory") to why, which may be NULL.
 */
int transport_connect(const char *address, int timeout_ms, struct transport **out, char *why,
                      size_t whysize);

/*
 * Sends len bytes exactly as given (the caller builds the frame, so that it
 * can also build wrong ones). *st is TRANSPORT_OK, TRANSPORT_CLOSED (the
 * agent went away, possibly part way through) or TRANSPORT_TIMEOUT (it
 * stopped reading for timeout_ms).
 */
int transport_send(struct transport *t, const uint8_t *data, size_t len, int timeout_ms,
                   enum transport_status *st);

/*
 * Receives one frame within timeout_ms. raw is reset, then receives every
 * byte read for this frame, length header included, so a caller can show
 * exactly what came back even when it is incomplete. *st is:
 *   TRANSPORT_OK        raw holds a whole frame (4 + its announced length)
 *   TRANSPORT_CLOSED    the agent closed first; raw holds any partial frame
 *   TRANSPORT_TIMEOUT   nothing complete in time; raw holds any partial frame
 *   TRANSPORT_OVERSIZED the header announced more than max_len; raw holds
 *                       the header and nothing after it is read
 */
int transport_recv_frame(struct transport *t, int timeout_ms, size_t max_len,
                         struct wire_writer *raw, enum transport_status *st);

/* A monotonic clock in milliseconds, for deadlines that span many calls. */
int64_t transport_now_ms(void);

/* Closes the connection and frees t. NULL is allowed. */
void transport_close(struct transport *t);

#endif
