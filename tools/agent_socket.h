/*
 * Where keyward-agent puts its socket by default on Unix, and keyward-agent
 * -u's clean-up there: OpenSSH 10.1's layout, so that the two agents share
 * one directory and one clean-up (docs/protocol.md, "The socket").
 *
 *   ~/.ssh/agent/s.<host>.agent.<random>
 *
 * <host> is 10 characters derived from SHA-512 of the host name, as OpenSSH
 * derives them, so that a home directory shared between machines (NFS)
 * keeps each machine's sockets apart; <random> is 10 random characters.
 */
#ifndef KEYWARD_TOOLS_AGENT_SOCKET_H
#define KEYWARD_TOOLS_AGENT_SOCKET_H

#include <stdbool.h>
#include <stddef.h>

/* The directory, "~/.ssh/agent" under $HOME (else the passwd entry's home). */
int agent_socket_dir(char *dir, size_t dirsize, char *err, size_t errsize);

/*
 * Creates ~/.ssh and ~/.ssh/agent (mode 0700) if missing, then binds and
 * listens on a fresh socket name there (mode 0600). Writes the path to
 * path and the listening fd to *fdp.
 */
int agent_socket_listen_home(char *path, size_t pathsize, int *fdp, char *err, size_t errsize);

/*
 * Removes stale sockets from ~/.ssh/agent: sockets last changed over an
 * hour ago whose connect() is refused (nobody listens). Only this host's
 * (name "s.<host>.") unless any_host. Counts what it removed into
 * *removed; a missing directory is not an error.
 */
int agent_socket_clean_stale(bool any_host, unsigned *removed, char *err, size_t errsize);

#endif
