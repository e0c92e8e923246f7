/*
 * keyward: what differs between Unix and Windows, below the server and the
 * programs' mains. The protocol core never includes this file.
 */
#ifndef KEYWARD_PLATFORM_H
#define KEYWARD_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

/* Who is on the other end of an accepted connection, for logs. */
struct peer_info {
    long pid;      /* -1 if unknown */
    long uid;      /* Unix uid; -1 if unknown or not Unix */
    char desc[96]; /* "pid 123 uid 1000" or "pid 123 user S-1-5-..." */
    char exe[256]; /* the client's executable, for the audit log; "" if unknown */
};

/*
 * Makes the process hard to inspect: no core dumps, no ptrace or
 * /proc/PID/mem by the same user (PR_SET_DUMPABLE 0 on Linux; on Windows
 * a process DACL and no error-reporting dialog). Returns 0
 * or an error; failure is reported but the agent may go on.
 */
int platform_harden_process(void);

/*
 * Decides whether the peer of an accepted connection may talk to the
 * agent: on Unix our own uid or root (as OpenSSH's agent); on Windows the
 * same user SID as ours, or SYSTEM. Fills *peer either way.
 */
bool platform_peer_allowed(uv_pipe_t *conn, struct peer_info *peer);

/*
 * Binary SIDs (the Windows security identifier layout: revision, count,
 * 48-bit authority, count 32-bit sub-authorities). Pure functions with no
 * Windows calls, so the decision is unit-tested on every platform.
 *
 * platform_sid_equal(): true only if both buffers hold whole, valid SIDs
 * and they are the same SID; an invalid SID equals nothing.
 * platform_sid_allowed(): the peer check on Windows: the peer's token user
 * is our own user, or LocalSystem (S-1-5-18), as root is on Unix.
 */
bool platform_sid_equal(const void *a, size_t alen, const void *b, size_t blen);
bool platform_sid_allowed(const void *peer, size_t peer_len, const void *self, size_t self_len);

#ifdef _WIN32
/* The agent's pipe when -a does not name another, as OpenSSH for Windows. */
#define PLATFORM_DEFAULT_PIPE "\\\\.\\pipe\\openssh-ssh-agent"

/*
 * Reads our own token user SID, which the peer check and the pipe's DACL
 * use. Call before anything below; without it every peer is refused.
 */
int platform_init_user(char *err, size_t errsize);

/* Our user SID as a string ("S-1-5-21-..."), for messages. */
const char *platform_user_sid(void);

/*
 * True if a server already answers on the pipe: connecting as a client
 * worked, or every instance is busy, or its DACL keeps us out. Wine does not
 * enforce FILE_FLAG_FIRST_PIPE_INSTANCE, so this is how a second server
 * (the OpenSSH "ssh-agent" service, say) is noticed there.
 */
bool platform_pipe_in_use(const char *name);

/*
 * Serves a named pipe without libuv's uv_pipe_bind()/uv_listen(), which
 * create the instances themselves and cannot give them a security
 * descriptor or PIPE_REJECT_REMOTE_CLIENTS. The acceptor creates every
 * instance with, from the start: a protected DACL granting only our user
 * and SYSTEM, PIPE_REJECT_REMOTE_CLIENTS, FILE_FLAG_OVERLAPPED, byte mode,
 * and FILE_FLAG_FIRST_PIPE_INSTANCE on the first. A thread keeps
 * `instances` of them waiting in ConnectNamedPipe() (a fresh one is
 * listening before a connected one is handed over) and passes each
 * connected instance to cb on the loop's thread.
 *
 * cb returns true if it took the handle (platform_pipe_adopt() takes it
 * whether or not it succeeds); on false the acceptor closes it.
 *
 * Returns 0 and *accp, or a KW_ERR_* code with the reason logged:
 * KW_ERR_DENIED if the name is already held by another server (Windows
 * enforces FILE_FLAG_FIRST_PIPE_INSTANCE; Wine does not, hence
 * platform_pipe_in_use()).
 */
struct platform_acceptor;
typedef bool (*platform_accept_cb)(void *arg, uv_os_fd_t pipe);

int platform_acceptor_start(uv_loop_t *loop, const char *name, int instances, platform_accept_cb cb,
                            void *arg, struct platform_acceptor **accp);

/*
 * Stops the thread and closes the instances still waiting, and any
 * connected ones cb has not been given yet. The memory goes once libuv has
 * closed the acceptor's handle, so the loop must run on afterwards.
 */
void platform_acceptor_stop(struct platform_acceptor *acc);

/*
 * Makes a connected server-end instance from the acceptor a libuv stream:
 * pipe must be uv_pipe_init()'ed and not yet open. Takes the handle either
 * way (closes it on failure). Returns 0 or KW_ERR_SYSTEM, the reason logged.
 */
int platform_pipe_adopt(uv_pipe_t *pipe, uv_os_fd_t handle);

/*
 * Connects pipe (uv_pipe_init()'ed, not yet open) to the named pipe name as
 * a client, as ssh.exe does: at identification level only, so that
 * whatever server holds the name can learn who we are but never act as us
 * (libuv's uv_pipe_connect() would let it impersonate us). Synchronous and
 * quick: it does not wait for a busy pipe. Returns 0, or a libuv error
 * code: UV_EAGAIN if every instance is busy (try again a little later),
 * UV_ENOENT if nobody serves the name, another UV_E* otherwise.
 */
int platform_pipe_connect(uv_pipe_t *pipe, const char *name);

/*
 * Makes the process's stdin and stdout two libuv streams: in (read) and out
 * (write), both uv_pipe_init()'ed and not yet open. libuv cannot take them
 * as they are when they are synchronous pipes (what a program started by
 * another gets, e.g. from WSL) under every Windows implementation, so two
 * threads copy between them and a private overlapped pipe pair that libuv
 * serves like any other (src/platform/win32_stdio.c). The end of stdin
 * becomes the end of in's stream; closing out lets the copier write what is
 * left and then stop. Returns 0 or a libuv error code. Once per process.
 */
int platform_stdio_open(uv_pipe_t *in, uv_pipe_t *out);

/*
 * After out has been closed: waits at most timeout_ms for what the relay
 * wrote to it to reach stdout, so that exiting does not cut a reply short.
 * Does nothing if platform_stdio_open() was not used.
 */
void platform_stdio_drain(unsigned timeout_ms);
#else
/*
 * Writes len characters drawn uniformly from [a-zA-Z0-9] (from getentropy)
 * and a NUL to out, which holds len + 1 bytes. KW_ERR_SYSTEM, errno set,
 * if the system gives no randomness.
 */
int platform_random_name(char *out, size_t len);

/*
 * Creates a fresh private directory (mode 0700) for keyward-agent -T's
 * socket, $TMPDIR/keyward-<10 random characters> ($TMPDIR unset: /tmp).
 * Writes its path to dir.
 */
int platform_make_socket_dir(char *dir, size_t dirsize, char *err, size_t errsize);

/* Creates, binds (mode 0600) and listens on a Unix socket; *fd on success. */
int platform_listen_unix(const char *path, int *fd, char *err, size_t errsize);
#endif

#endif
