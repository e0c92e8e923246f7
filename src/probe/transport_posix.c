/*
 * keyward-probe: the transport over a Unix-domain stream socket.
 *
 * Every wait is a poll() against one deadline, so no call can hang longer
 * than the timeout it was given, whatever the agent does. Frames are read
 * with exact-size reads (header, then body), so bytes of a following frame
 * are never consumed early and the next transport_recv_frame() sees them.
 */
#include "probe/transport_read.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"

/* Descriptors the probe needs besides the connections (stdio, spare). */
#define FD_HEADROOM 32

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* SIGPIPE is ignored in transport_setup() instead */
#endif

struct transport {
    int fd;
};

int64_t transport_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - transport_now_ms();

    if (left <= 0)
        return 0;
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/* Errors that mean "the agent is gone" rather than "we failed". */
static int is_peer_gone(int e)
{
    return e == EPIPE || e == ECONNRESET || e == ENOTCONN || e == ESHUTDOWN;
}

int transport_setup(unsigned nconns)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)nconns + FD_HEADROOM;

    /*
     * An agent that closes while we are still writing (an oversized frame,
     * or a defective agent) must show up as EPIPE, not kill the probe.
     */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        return KW_ERR_SYSTEM;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return KW_ERR_SYSTEM;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        /* Take all we may have: the soft limit can go up to the hard one. */
        rl.rlim_cur = rl.rlim_max;
        if (rl.rlim_max == RLIM_INFINITY)
            rl.rlim_cur = need;
        /* Best effort: if it stays low, the concurrency check says so. */
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    return 0;
}

const char *transport_default_address(void)
{
    const char *s = getenv("SSH_AUTH_SOCK");

    return s != NULL && *s != '\0' ? s : NULL;
}

static void set_why(char *why, size_t whysize, const char *s)
{
    if (why != NULL && whysize > 0)
        snprintf(why, whysize, "%s", s);
}

int transport_connect(const char *address, int timeout_ms, struct transport **out, char *why,
                      size_t whysize)
{
    struct sockaddr_un sun;
    struct transport *t = NULL;
    struct timeval tv;
    int fd = -1, flags, err = KW_ERR_SYSTEM;

    *out = NULL;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(address) >= sizeof(sun.sun_path)) {
        set_why(why, whysize, "socket path too long");
        goto out;
    }
    memcpy(sun.sun_path, address, strlen(address));
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1) {
        set_why(why, whysize, strerror(errno));
        goto out;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    /*
     * A connect to a listener whose backlog is full blocks until the agent
     * accepts; on Linux the send timeout bounds that wait.
     */
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
        if (errno == EINTR)
            continue;
        set_why(why, whysize, errno == EAGAIN ? "timed out" : strerror(errno));
        goto out;
    }
    /* From here on every wait is a poll() with a deadline. */
    if ((flags = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
        set_why(why, whysize, strerror(errno));
        goto out;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        set_why(why, whysize, "out of memory");
        err = KW_ERR_ALLOC;
        goto out;
    }
    t->fd = fd;
    fd = -1;
    *out = t;
    err = 0;
out:
    if (fd != -1)
        close(fd);
    return err;
}

/* Waits for events on t until deadline; returns poll's revents, 0 on timeout. */
static int wait_for(struct transport *t, short events, int64_t deadline, int *err)
{
    struct pollfd pfd;
    int n;

    *err = 0;
    for (;;) {
        pfd.fd = t->fd;
        pfd.events = events;
        pfd.revents = 0;
        n = poll(&pfd, 1, remaining_ms(deadline));
        if (n >= 0)
            return n == 0 ? 0 : pfd.revents;
        if (errno != EINTR) {
            *err = KW_ERR_SYSTEM;
            return 0;
        }
    }
}

int transport_send(struct transport *t, const uint8_t *data, size_t len, int timeout_ms,
                   enum transport_status *st)
{
    int64_t deadline = transport_now_ms() + timeout_ms;
    size_t off = 0;
    ssize_t n;
    int err;

    *st = TRANSPORT_OK;
    while (off < len) {
        n = send(t->fd, data + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && is_peer_gone(errno)) {
            *st = TRANSPORT_CLOSED;
            return 0;
        }
        if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
            return KW_ERR_SYSTEM;
        /* The agent is not reading: wait for room, or for it to go away. */
        if (wait_for(t, POLLOUT, deadline, &err) == 0) {
            if (err != 0)
                return err;
            *st = TRANSPORT_TIMEOUT;
            return 0;
        }
    }
    return 0;
}

/* See transport_read.h. */
int transport_read_exact(struct transport *t, size_t want, int64_t deadline,
                         struct wire_writer *raw, enum transport_status *st)
{
    uint8_t buf[4096];
    size_t chunk;
    ssize_t n;
    int err;

    *st = TRANSPORT_OK;
    while (want > 0) {
        chunk = want < sizeof(buf) ? want : sizeof(buf);
        n = recv(t->fd, buf, chunk, 0);
        if (n > 0) {
            wire_put_bytes(raw, buf, (size_t)n);
            if (raw->error != 0)
                return raw->error;
            want -= (size_t)n;
            continue;
        }
        if (n == 0) {
            *st = TRANSPORT_CLOSED;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (is_peer_gone(errno)) {
            *st = TRANSPORT_CLOSED;
            return 0;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return KW_ERR_SYSTEM;
        /* POLLHUP and POLLERR also wake us; the next recv() tells which. */
        if (wait_for(t, POLLIN, deadline, &err) == 0) {
            if (err != 0)
                return err;
            *st = TRANSPORT_TIMEOUT;
            return 0;
        }
    }
    return 0;
}

void transport_close(struct transport *t)
{
    if (t == NULL)
        return;
    close(t->fd);
    free(t);
}
