/*
 * keyward-relay: the relay core. One libuv loop carries SSH agent frames
 * between clients and an upstream agent; Unix sockets and Windows named
 * pipes are both uv_pipe_t, so this file serves both.
 *
 * Each client connection gets its own upstream connection, opened when the
 * client arrives and closed with it. Session bindings
 * (session-bind@openssh.com) are per connection in the agent, so a
 * client's bindings stay its own and one client's binding can never make
 * the agent refuse another's. The relay never opens a second upstream
 * connection for a client: if its upstream goes, the client is closed too.
 *
 * Frames pass through unchanged, whole, in both directions. A frame over
 * WIRE_MAX_MESSAGE (256 KiB) ends that connection, as in the agent itself:
 * the framing can no longer be trusted. From the client, the whole
 * requests before it are still forwarded, and their replies delivered,
 * before the connection is closed; nothing after it is read or forwarded.
 * From the upstream, it closes the connection at once. The relay never
 * answers anything itself; a client whose upstream cannot be reached is
 * closed (and the reason logged).
 *
 * A client's end of stream is passed on: once its last whole request is
 * forwarded, the relay shuts down its sending side of the upstream
 * connection, so that the agent sees what it would see from the client
 * itself (it answers, drops a pending confirmation, and closes). Replies go
 * on to the client until every request is answered or the upstream
 * closes; then the client is closed. (Named pipes cannot be half-closed.
 * On Windows a client's end of stream on a pipe is the client gone, and
 * closes its connection at once; an end of stdin is not passed upstream,
 * and the connection closes once every request sent before it is
 * answered.)
 *
 * Either side may instead be the process's stdin/stdout ("-"), so that
 * socat or ssh can run the relay as a pipe. That side is one connection
 * only: the relay serves exactly one client and ends with it.
 */
#ifndef KEYWARD_RELAY_H
#define KEYWARD_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "transport/listener.h"

struct relay_conn; /* a client and its upstream; private to relay.c */

struct relay {
    uv_loop_t *loop;
    const char *upstream;     /* socket path or pipe name; NULL: stdin/stdout */
    struct listener listener; /* LISTEN: a socket, or the pipe's instances on Windows */
    struct relay_conn *conns; /* every open connection, for shutdown */
    unsigned long next_conn_id;
    bool single;  /* one client only (stdio on a side); the relay ends with it */
    bool claimed; /* single: that client has come */
    bool closing;
    /* A connection ended for a reason other than its client closing it. */
    bool failed;
};

/*
 * upstream: where every client is relayed to, a socket path or a pipe
 * name (kept by reference), or NULL for stdin/stdout.
 */
void relay_init(struct relay *r, uv_loop_t *loop, const char *upstream);

/*
 * 0 if stdin and stdout can carry the protocol (pipes or sockets), else
 * KW_ERR_BAD_FORMAT with the reason in err. Call before using "-" on
 * either side, so that a mistake is reported at start.
 */
int relay_check_stdio(char *err, size_t errsize);

#ifndef _WIN32
/*
 * Serves clients arriving on an already listening Unix socket (the front
 * end creates it, so that it can refuse an existing path and set its mode).
 * Returns 0 or a KW_ERR_* code; the reason is logged.
 */
int relay_listen_fd(struct relay *r, int fd);
#else
/*
 * Serves a named pipe. Its instances are created by the agent's acceptor
 * (platform_acceptor_start(): our user and SYSTEM only, no remote
 * clients), and platform_init_user() must have been called. Returns 0 or a
 * KW_ERR_* code, the reason logged: KW_ERR_DENIED if another server holds
 * the pipe (where Windows enforces FILE_FLAG_FIRST_PIPE_INSTANCE; check
 * platform_pipe_in_use() first).
 */
int relay_listen_name(struct relay *r, const char *name);
#endif

/*
 * Serves the process's stdin/stdout as the one client. Returns 0 or a
 * KW_ERR_* code; the reason is logged.
 */
int relay_serve_stdio(struct relay *r);

/* Closes the listener and every connection; the loop then runs dry. */
void relay_close(struct relay *r);

#endif
