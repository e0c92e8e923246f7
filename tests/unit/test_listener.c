/*
 * keyward: the listener (src/transport/listener.c) on a real libuv loop:
 * a socket path it creates (mode 0600 from the start), a listening socket
 * handed to it as a service manager hands one (socket activation), and its
 * errors as KW_ERR_* codes. Clients are plain blocking sockets; each
 * accepted connection is a frame_conn that must receive the client's frame.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "base/err.h"
#include "base/log.h"
#include "base/wire.h"
#include "check.h"
#include "transport/frame_conn.h"
#include "transport/listener.h"

#define MAX_CONNS 4

static uv_loop_t loop;

struct server {
    struct listener l;
    struct frame_conn conns[MAX_CONNS];
    int accepted;
    int accept_failed;
    int frames;
    uint32_t last_len;
    int closed;
    bool refuse; /* do not accept: the client is turned away */
};

static void on_read(struct frame_conn *fc)
{
    struct server *s = fc->data;
    struct frame f;

    while (frame_conn_frame(fc, &f) == FRAME_READY) {
        s->frames++;
        s->last_len = f.len;
        frame_conn_consume(fc, f.size);
    }
}

static void on_eof(struct frame_conn *fc)
{
    (void)fc;
}

static void on_error(struct frame_conn *fc, const struct frame_conn_error *e)
{
    (void)fc;
    (void)e;
}

static const struct frame_conn_callbacks callbacks = {
    .on_read = on_read, .on_eof = on_eof, .on_error = on_error};

static void on_conn(struct listener *l)
{
    struct server *s = l->data;
    struct frame_conn *fc;

    if (s->refuse || s->accepted >= MAX_CONNS)
        return;
    fc = &s->conns[s->accepted++];
    CHECK_EQ(frame_conn_init(l->loop, fc, &callbacks, s), 0);
    if (listener_accept(l, fc) != 0) {
        s->accept_failed++;
        return;
    }
    CHECK_EQ(frame_conn_read(fc, FRAME_READ_ON), 0);
}

static void on_closed(struct frame_conn *fc)
{
    ((struct server *)fc->data)->closed++;
}

static void server_close(struct server *s)
{
    int i;

    for (i = 0; i < s->accepted; i++)
        frame_conn_close(&s->conns[i], on_closed);
    listener_close(&s->l);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(s->closed, s->accepted);
}

static void spin(void)
{
    int i;

    for (i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

/* Connects to path and sends one frame of len bytes; returns the socket. */
static int client_send(const char *path, uint32_t len)
{
    struct sockaddr_un sun;
    uint8_t buf[FRAME_HEADER + 64];
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
        return -1;
    memset(buf, 'x', sizeof(buf));
    wire_poke_u32(buf, len);
    if (write(fd, buf, FRAME_HEADER + len) != (ssize_t)(FRAME_HEADER + len)) {
        close(fd);
        return -1;
    }
    return fd;
}

static char dir[32], path[64];

static void test_path(void)
{
    struct server s;
    struct stat st;
    mode_t old = umask(0); /* the mode must not depend on the umask */
    int c1, c2;

    memset(&s, 0, sizeof(s));
    listener_init(&s.l, &loop, on_conn, &s);
    CHECK_EQ(listener_open_path(&s.l, path), 0);
    umask(old);
    CHECK_EQ(stat(path, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0600);

    c1 = client_send(path, 5);
    c2 = client_send(path, 17);
    CHECK(c1 >= 0 && c2 >= 0);
    spin();
    CHECK_EQ(s.accepted, 2);
    CHECK_EQ(s.accept_failed, 0);
    CHECK_EQ(s.frames, 2);
    server_close(&s);
    close(c1);
    close(c2);

    /* A path that exists is refused, not taken over. */
    memset(&s, 0, sizeof(s));
    listener_init(&s.l, &loop, on_conn, &s);
    errno = 0;
    CHECK_EQ(listener_open_path(&s.l, path), KW_ERR_SYSTEM);
    CHECK_EQ(errno, EADDRINUSE);
    listener_close(&s.l);
    uv_run(&loop, UV_RUN_DEFAULT);
    unlink(path);
}

/* A listening socket made elsewhere (systemd's socket activation). */
static void test_inherited_fd(void)
{
    struct sockaddr_un sun;
    struct server s;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0), c;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    CHECK_EQ(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    CHECK_EQ(listen(fd, 8), 0);

    memset(&s, 0, sizeof(s));
    listener_init(&s.l, &loop, on_conn, &s);
    CHECK_EQ(listener_open_fd(&s.l, fd), 0);
    c = client_send(path, 33);
    CHECK(c >= 0);
    spin();
    CHECK_EQ(s.accepted, 1);
    CHECK_EQ(s.frames, 1);
    CHECK_EQ(s.last_len, 33);

    /* Turned away: closed at once, and the listener goes on serving the next client. */
    s.refuse = true;
    close(c);
    c = client_send(path, 1);
    CHECK(c >= 0);
    spin();
    CHECK_EQ(s.accepted, 1);
    {
        struct timeval tv = {5, 0};
        ssize_t n;
        char b;

        /* Closed with our frame unread: the end of stream, or a reset. */
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        n = read(c, &b, 1);
        CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
    }
    close(c);
    s.refuse = false;
    c = client_send(path, 2);
    CHECK(c >= 0);
    spin();
    CHECK_EQ(s.accepted, 2);
    CHECK_EQ(s.frames, 2);
    CHECK_EQ(s.last_len, 2);
    server_close(&s);
    close(c);
    unlink(path);
}

/* A descriptor that is no socket: a KW_ERR_* code with errno, never a libuv code. */
static void test_bad_fd(void)
{
    struct server s;

    memset(&s, 0, sizeof(s));
    listener_init(&s.l, &loop, on_conn, &s);
    errno = 0;
    CHECK_EQ(listener_open_fd(&s.l, 987), KW_ERR_SYSTEM);
    CHECK_EQ(errno, EBADF);
    listener_close(&s.l);
    uv_run(&loop, UV_RUN_DEFAULT);
}

int main(void)
{
    log_init("test_listener", LOG_LEVEL_INFO, LOG_SINK_STDERR);
    snprintf(dir, sizeof(dir), "/tmp/kw-listener-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof(path), "%s/sock", dir);
    uv_loop_init(&loop);
    test_path();
    test_inherited_fd();
    test_bad_fd();
    CHECK_EQ(uv_loop_close(&loop), 0);
    rmdir(dir);
    return check_finish("listener");
}
