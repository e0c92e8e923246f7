/*
 * keyward: Unix platform layer. See platform.h.
 */
/* struct ucred and SO_PEERCRED */
#define _GNU_SOURCE

#include "platform/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "base/err.h"

int platform_harden_process(void)
{
    struct rlimit rl = {0, 0};
    int saved = 0;

    /* Both are tried; errno says why the first that failed did. */
    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        saved = errno;
#ifdef __linux__
    /* Also stops same-uid ptrace attach and reads of /proc/PID/mem. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 && saved == 0)
        saved = errno;
#endif
    if (saved == 0)
        return 0;
    errno = saved;
    return KW_ERR_SYSTEM;
}

/* The client's executable from /proc, where there is one. */
static void peer_executable(struct peer_info *peer)
{
    char link[64];
    ssize_t n;

    peer->exe[0] = '\0';
    if (peer->pid <= 0)
        return;
    snprintf(link, sizeof(link), "/proc/%ld/exe", peer->pid);
    n = readlink(link, peer->exe, sizeof(peer->exe) - 1);
    peer->exe[n > 0 ? (size_t)n : 0] = '\0';
}

bool platform_peer_allowed(uv_pipe_t *conn, struct peer_info *peer)
{
    uv_os_fd_t fd;
    uid_t uid;

    peer->pid = -1;
    peer->uid = -1;
    peer->exe[0] = '\0';
    snprintf(peer->desc, sizeof(peer->desc), "unknown peer");
    if (uv_fileno((uv_handle_t *)conn, &fd) != 0)
        return false;
#if defined(SO_PEERCRED) && defined(__linux__)
    {
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
            return false;
        uid = cred.uid;
        peer->pid = cred.pid;
    }
#else
    {
        gid_t gid;

        if (getpeereid(fd, &uid, &gid) != 0)
            return false;
    }
#endif
    peer->uid = (long)uid;
    snprintf(peer->desc, sizeof(peer->desc), "pid %ld uid %ld", peer->pid, peer->uid);
    peer_executable(peer);
    /* Root may always connect, as with OpenSSH's agent. */
    return uid == getuid() || uid == 0;
}

int platform_random_name(char *out, size_t len)
{
    /*
     * 248 = 4 * 62: rejecting larger bytes keeps every character equally
     * likely. The alphabet is OpenSSH's, lower case first.
     */
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t filled = 0;

    while (filled < len) {
        unsigned char bytes[32];
        if (getentropy(bytes, sizeof(bytes)) != 0)
            return KW_ERR_SYSTEM;
        for (size_t i = 0; i < sizeof(bytes) && filled < len; i++)
            if (bytes[i] < 248)
                out[filled++] = alphabet[bytes[i] % 62];
    }
    out[len] = '\0';
    return 0;
}

int platform_make_socket_dir(char *dir, size_t dirsize, char *err, size_t errsize)
{
    const char *base = getenv("TMPDIR");

    if (base == NULL || *base == '\0')
        base = "/tmp";
    /*
     * keyward-<10 random characters>, as OpenSSH names its ssh-XXXXXXXXXX
     * directories. Not mkdtemp(): glibc's fills only the last six X's of a
     * template and would leave a literal "XXXX" in the name. The directory
     * is created 0700, so nobody else can reach the socket; a name that
     * exists already is drawn again.
     */
    enum { NAME_RANDOM = 10, TRIES = 100 };
    for (int attempt = 0; attempt < TRIES; attempt++) {
        char name[NAME_RANDOM + 1];
        if (platform_random_name(name, NAME_RANDOM) != 0) {
            snprintf(err, errsize, "cannot name a socket directory: getentropy: %s",
                     strerror(errno));
            return KW_ERR_SYSTEM;
        }
        if ((size_t)snprintf(dir, dirsize, "%s/keyward-%s", base, name) >= dirsize) {
            snprintf(err, errsize, "socket directory path too long under %s", base);
            return KW_ERR_TOO_LARGE;
        }
        if (mkdir(dir, 0700) == 0)
            return 0;
        if (errno != EEXIST) {
            snprintf(err, errsize, "cannot create socket directory under %s: %s", base,
                     strerror(errno));
            return KW_ERR_SYSTEM;
        }
    }
    snprintf(err, errsize, "cannot create socket directory under %s: %d names taken", base, TRIES);
    errno = EEXIST;
    return KW_ERR_SYSTEM;
}

int platform_listen_unix(const char *path, int *fdp, char *err, size_t errsize)
{
    struct sockaddr_un sun;
    mode_t old_umask;
    int fd, saved;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errsize, "cannot bind %s: path too long (at most %zu bytes)", path,
                 sizeof(sun.sun_path) - 1);
        return KW_ERR_TOO_LARGE;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0) {
        snprintf(err, errsize, "cannot create socket: %s", strerror(errno));
        return KW_ERR_SYSTEM;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* The socket is created 0600 in one step; no window where others may connect. */
    old_umask = umask(0177);
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        saved = errno;
        umask(old_umask);
        close(fd);
        snprintf(err, errsize, "cannot bind %s: %s", path, strerror(saved));
        errno = saved;
        return KW_ERR_SYSTEM;
    }
    umask(old_umask);
    if (listen(fd, SOMAXCONN) != 0) {
        saved = errno;
        close(fd);
        unlink(path);
        snprintf(err, errsize, "cannot listen on %s: %s", path, strerror(saved));
        errno = saved;
        return KW_ERR_SYSTEM;
    }
    *fdp = fd;
    return 0;
}
