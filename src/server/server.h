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

#include "agent/agent.h"
#include "server/provider_host.h"
#include "server/job_pool.h"
#include "transport/listener.h"

struct conn; /* one client connection; private to server.c */

/*
 * Confirmation prompts (askpass processes) up at once, agent-wide. A
 * confirmation asked for beyond that waits, first come first served, for
 * one of them to end (doc/man/keyward-agent.1, "Confirmation").
 */
#define SERVER_MAX_PROMPTS 4
/*
 * How long an askpass asked to stop (SIGTERM) has before it is killed
 * (SIGKILL): the client left, or the agent is shutting down.
 */
#define SERVER_PROMPT_KILL_MS 2000

/* A first-in, first-out list of connections (server.c). */
struct conn_queue {
    struct conn *head, *tail;
    unsigned long count;
};

struct server {
    uv_loop_t *loop;
    struct agent *agent;
    struct listener listener; /* a socket, or the pipe's instances on Windows */
    uv_timer_t expiry_timer;
    unsigned long next_conn_id;
    /*
     * For handing fast signatures to the workers only when that gains
     * something (agent.offload_fast): requests handled so far, jobs out
     * (slow_jobs: those in slow_pool), the slow pool's threads at most,
     * and the cores this process may run on.
     */
    unsigned long requests;
    unsigned jobs;
    unsigned slow_jobs;
    unsigned workers;
    unsigned cores;
    /*
     * Worker threads: fast signatures (Ed25519, ECDSA) that the loop hands
     * out while it signs others inline, at most one thread per spare core;
     * and slow jobs (RSA signatures, passphrase hashes), which always go out.
     */
    struct job_pool fast_pool;
    struct job_pool slow_pool;
    /* PKCS#11 helpers (provider_host.h); set providers.helper_path to enable loading. */
    struct provider_hosts providers;
    bool fast_pool_ready; /* set up; if not, fast signatures stay inline */
    bool slow_pool_ready; /* set up; if not, slow jobs run inline */
    struct conn *conns;   /* every open connection, for shutdown */
    /*
     * Connections with requests buffered that wait for their next turn: a
     * connection handles a bounded batch of requests per turn, then the
     * loop polls for everyone else's before this idle handle resumes it.
     */
    struct conn_queue ready;
    uv_idle_t resume;
    /* Askpass processes not yet exited, and confirmations waiting for one. */
    unsigned prompts;
    struct conn_queue prompt_wait;
    bool pumping; /* inside prompts_pump() */
    bool closing;
};

void server_init(struct server *srv, uv_loop_t *loop, struct agent *agent);

#ifndef _WIN32
/*
 * Serves connections on an already listening Unix socket (made by
 * platform_listen_unix(), or passed by the service manager). Returns 0 or
 * a KW_ERR_* code; the reason is logged.
 */
int server_listen_fd(struct server *srv, int fd);
#else
/*
 * Serves a named pipe through listener_open_pipe(), whose instances only
 * our user and SYSTEM may open, and no remote client. Returns 0 or a
 * KW_ERR_* code (KW_ERR_DENIED: another server holds the pipe); the reason
 * is logged.
 */
int server_listen_name(struct server *srv, const char *name);
#endif

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
