/*
 * keyward-agent's default socket under ~/.ssh/agent and the clean-up of
 * stale ones there (tools/agent_socket.h). The names follow OpenSSH 10.1's
 * so that `ssh-agent -u` and `keyward-agent -u` each clean up after both.
 */
#include "agent_socket.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "base/log.h"
#include "platform/platform.h"

#define HOST_TAG_LEN  10
#define RANDOM_LEN    10
#define STALE_AFTER_S 3600 /* a socket this new may belong to an agent still starting */
#define BIND_TRIES    100

static const char *home_dir(void)
{
    const char *home = getenv("HOME");
    struct passwd *pw;

    if (home != NULL && *home != '\0')
        return home;
    if ((pw = getpwuid(getuid())) != NULL && pw->pw_dir != NULL && *pw->pw_dir != '\0')
        return pw->pw_dir;
    return NULL;
}

int agent_socket_dir(char *dir, size_t dirsize, char *err, size_t errsize)
{
    const char *home = home_dir();

    if (home == NULL) {
        snprintf(err, errsize,
                 "cannot determine the home directory ($HOME is unset and "
                 "the user has no passwd entry); use -a or -T");
        return KW_ERR_NOT_FOUND;
    }
    if ((size_t)snprintf(dir, dirsize, "%s/.ssh/agent", home) >= dirsize) {
        snprintf(err, errsize, "home directory path too long: %s", home);
        return KW_ERR_TOO_LARGE;
    }
    return 0;
}

/*
 * The host's tag: SHA-512 of the host name, each of the first 10 bytes
 * reduced modulo 62 into OpenSSH's alphabet. Not a secret and not meant to
 * be uniform, only the same tag OpenSSH computes on this host.
 */
static int host_tag(char tag[HOST_TAG_LEN + 1], char *err, size_t errsize)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char host[256];
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = sizeof(digest);

    if (gethostname(host, sizeof(host)) != 0) {
        snprintf(err, errsize, "gethostname: %s", strerror(errno));
        return KW_ERR_SYSTEM;
    }
    host[sizeof(host) - 1] = '\0';
    if (EVP_Digest(host, strlen(host), digest, &dlen, EVP_sha512(), NULL) != 1 ||
        dlen < HOST_TAG_LEN) {
        snprintf(err, errsize, "cannot hash the host name");
        return KW_ERR_INTERNAL;
    }
    for (size_t i = 0; i < HOST_TAG_LEN; i++)
        tag[i] = alphabet[digest[i] % (sizeof(alphabet) - 1)];
    tag[HOST_TAG_LEN] = '\0';
    return 0;
}

static int make_private_dir(const char *path, char *err, size_t errsize)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    snprintf(err, errsize, "cannot create %s: %s", path, strerror(errno));
    return KW_ERR_SYSTEM;
}

int agent_socket_listen_home(char *path, size_t pathsize, int *fdp, char *err, size_t errsize)
{
    char dir[4096], tag[HOST_TAG_LEN + 1], rnd[RANDOM_LEN + 1];
    size_t len;
    int r;

    if ((r = agent_socket_dir(dir, sizeof(dir), err, errsize)) != 0)
        return r;
    /* ~/.ssh first: a new account may not have one yet. */
    len = strlen(dir) - strlen("/agent");
    dir[len] = '\0';
    r = make_private_dir(dir, err, errsize);
    dir[len] = '/';
    if (r != 0 || (r = make_private_dir(dir, err, errsize)) != 0)
        return r;
    if ((r = host_tag(tag, err, errsize)) != 0)
        return r;
    for (int attempt = 0; attempt < BIND_TRIES; attempt++) {
        if (platform_random_name(rnd, RANDOM_LEN) != 0) {
            snprintf(err, errsize, "cannot name the socket: getentropy: %s", strerror(errno));
            return KW_ERR_SYSTEM;
        }
        if ((size_t)snprintf(path, pathsize, "%s/s.%s.agent.%s", dir, tag, rnd) >= pathsize) {
            snprintf(err, errsize, "socket path too long under %s", dir);
            return KW_ERR_TOO_LARGE;
        }
        r = platform_listen_unix(path, fdp, err, errsize);
        if (r != KW_ERR_SYSTEM || errno != EADDRINUSE)
            return r;
    }
    snprintf(err, errsize, "cannot bind a socket in %s: %d names taken", dir, BIND_TRIES);
    return KW_ERR_SYSTEM;
}

/*
 * Stale: connect() is refused, so nobody listens. Any other outcome (a
 * connection, or EAGAIN from a listener whose backlog is full) means an
 * agent may still be there, and the socket stays.
 */
static bool socket_is_stale(const char *path)
{
    struct sockaddr_un sun;
    bool stale;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path))
        return false;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return false;
    stale = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 && errno == ECONNREFUSED;
    close(fd);
    return stale;
}

int agent_socket_clean_stale(bool any_host, unsigned *removed, char *err, size_t errsize)
{
    char dir[4096], path[4096 + 256], prefix[2 + HOST_TAG_LEN + 2], tag[HOST_TAG_LEN + 1];
    struct dirent *de;
    struct stat st;
    time_t cutoff = time(NULL) - STALE_AFTER_S;
    DIR *d;
    int r;

    *removed = 0;
    if ((r = agent_socket_dir(dir, sizeof(dir), err, errsize)) != 0)
        return r;
    if ((r = host_tag(tag, err, errsize)) != 0)
        return r;
    snprintf(prefix, sizeof(prefix), "s.%s.", tag);
    if ((d = opendir(dir)) == NULL) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errsize, "cannot read %s: %s", dir, strerror(errno));
        return KW_ERR_SYSTEM;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_type != DT_SOCK && de->d_type != DT_UNKNOWN)
            continue;
        if (!any_host && strncmp(de->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK(st.st_mode) ||
            st.st_mtime > cutoff)
            continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
            continue;
        if (!socket_is_stale(path))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
            log_debug("removed stale agent socket %s", path);
            (*removed)++;
        } else if (errno != ENOENT) {
            log_error("cannot remove stale agent socket %s: %s", path, strerror(errno));
        }
    }
    closedir(d);
    return 0;
}
