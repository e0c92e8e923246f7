/*
 * keyward: one listener for framed connections (frame_conn.h): a Unix
 * socket path, a listening socket inherited from a service manager
 * (socket activation), or on Windows a named pipe whose instances the
 * platform layer creates with their security set (platform_acceptor_*).
 *
 * A libuv-style handle: embed a struct listener, open it one of the ways
 * below, and accept each client from the callback with listener_accept().
 * Functions return 0 or a KW_ERR_* code, the reason logged.
 */
#ifndef KEYWARD_TRANSPORT_LISTENER_H
#define KEYWARD_TRANSPORT_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

struct frame_conn;
struct platform_acceptor;

/*
 * Windows: pipe instances kept waiting for clients (libuv's default was 4).
 * A burst of short-lived clients (ssh.exe opens a connection per use) then
 * rarely finds every instance busy.
 */
#define LISTENER_PIPE_INSTANCES 16

struct listener;

/*
 * A client is waiting: call listener_accept() once, from here, or do not
 * (out of memory, shutting down) and it is turned away (closed).
 */
typedef void (*listener_cb)(struct listener *l);

struct listener {
    void *data; /* the owner's */
    uv_loop_t *loop;
    listener_cb cb;
#ifdef _WIN32
    struct platform_acceptor *acceptor;
    uv_os_fd_t pending; /* the connected instance offered to cb */
#else
    uv_pipe_t pipe;
    bool open; /* pipe initialised: it must be closed */
    /*
     * A client turned away is accepted into this handle and closed: no
     * allocation, so it works when memory is what ran out. One at a time;
     * a client turned away meanwhile waits for it (reject_waiting).
     */
    uv_pipe_t reject_pipe;
    bool rejecting;
    bool reject_waiting;
#endif
    bool taken; /* cb called listener_accept() */
    bool closing;
};

void listener_init(struct listener *l, uv_loop_t *loop, listener_cb cb, void *data);

#ifndef _WIN32
/*
 * Creates the socket at path, mode 0600 from the start (not uv_pipe_bind(),
 * which binds with the process umask), and listens on it. The caller
 * removes the path when done.
 */
int listener_open_path(struct listener *l, const char *path);

/* Listens on an already listening Unix socket (socket activation, or made by the caller). */
int listener_open_fd(struct listener *l, int fd);
#else
/*
 * Serves the named pipe name with LISTENER_PIPE_INSTANCES instances
 * (platform_acceptor_start(): our user and SYSTEM only, no remote
 * clients); platform_init_user() must have been called. KW_ERR_DENIED: the
 * pipe is held by another server.
 */
int listener_open_pipe(struct listener *l, const char *name);
#endif

/*
 * From the callback: connects the waiting client to fc, initialised
 * (frame_conn_init()) and not yet open. On failure fc still needs
 * frame_conn_close().
 */
int listener_accept(struct listener *l, struct frame_conn *fc);

/* Stops listening; the loop must run on for the handle to close. */
void listener_close(struct listener *l);

#endif
