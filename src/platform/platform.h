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
};

/*
 * Makes the process hard to inspect: no core dumps, no ptrace or
 * /proc/PID/mem by the same user (PR_SET_DUMPABLE 0 on Linux). Returns 0
 * or an error; failure is reported but the agent may go on.
 */
int platform_harden_process(void);

/*
 * Decides whether the peer of an accepted connection may talk to the
 * agent: on Unix our own uid or root (as OpenSSH's agent); on Windows the
 * same user SID as ours. Fills *peer either way.
 */
bool platform_peer_allowed(uv_pipe_t *conn, struct peer_info *peer);

#ifndef _WIN32
/*
 * Creates a fresh private directory (mode 0700) for the default socket,
 * under $XDG_RUNTIME_DIR, else $TMPDIR, else /tmp. Writes its path to dir.
 */
int platform_make_socket_dir(char *dir, size_t dirsize, char *err, size_t errsize);

/* Creates, binds (mode 0600) and listens on a Unix socket; *fd on success. */
int platform_listen_unix(const char *path, int *fd, char *err, size_t errsize);
#endif

#endif
