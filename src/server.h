/*
 * keyward: the agent's transport. One libuv loop serves Unix sockets and
 * Windows named pipes (both are uv_pipe_t) with the same code.
 *
 * The server owns framing and I/O and never looks inside a request: it
 * reads length-prefixed frames, hands each body to agent_handle() and
 * writes back the reply it gets. It closes a connection only when the peer
 * closes it, on an I/O error, or when a frame is longer than
 * WIRE_MAX_MESSAGE (after which the framing can no longer be trusted).
 */
#ifndef KEYWARD_SERVER_H
#define KEYWARD_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "agent.h"
#include "sign_lane.h"

struct conn;              /* one client connection; private to server.c */
struct platform_acceptor; /* Windows: see platform/platform.h */

struct server {
    uv_loop_t *loop;
    struct agent *agent;
#ifdef _WIN32
    struct platform_acceptor *acceptor; /* creates the pipe's instances; see platform.h */
#else
    uv_pipe_t listener;
#endif
    uv_timer_t expiry_timer;
    unsigned long next_conn_id;
    unsigned long live_conns;
    /*
     * For handing fast signatures to the workers only when that gains
     * something (agent.offload_fast): requests handled so far, signatures
     * and passphrase hashes out on worker threads (pool_jobs: those in
     * libuv's pool, the slow ones), libuv's worker threads, and the cores
     * this process may run on.
     */
    unsigned long requests;
    unsigned jobs;
    unsigned pool_jobs;
    unsigned workers;
    unsigned cores;
    struct sign_lane lane; /* fast signatures handed to workers */
    bool lane_ready;       /* lane set up; if not, fast signatures stay inline */
    struct conn *conns;    /* every open connection, for shutdown */
    bool listening;
    bool closing;
};

void server_init(struct server *srv, uv_loop_t *loop, struct agent *agent);

#ifndef _WIN32
/* Serves connections on an already listening Unix socket. */
int server_listen_fd(struct server *srv, int fd);
#endif
/*
 * Serves a named pipe (Windows: through platform_acceptor_start(), whose
 * instances only our user and SYSTEM may open, and no remote client) or
 * binds a socket path. Returns 0 or a KW_ERR_* code (KW_ERR_DENIED: another
 * server holds the pipe); the reason is logged.
 */
int server_listen_name(struct server *srv, const char *name);

/*
 * Runs the loop until it has nothing left to do (after server_close() and
 * the front end closed its own handles). Use it instead of uv_run(): while
 * requests come in bursts it polls briefly between them instead of
 * sleeping (see server.c).
 */
void server_run(struct server *srv);

/* Closes the listener and every connection; the loop then runs dry. */
void server_close(struct server *srv);

/* Re-arms the key expiry timer after the key set may have changed. */
void server_schedule_expiry(struct server *srv);

#endif
