/*
 * keyward: one listener. See listener.h.
 */
#include "transport/listener.h"

#include <string.h>
#ifndef _WIN32
#include <unistd.h>
#endif

#include "base/err.h"
#include "base/log.h"
#include "platform/platform.h"
#include "platform/uv_err.h"
#include "transport/frame_conn.h"

void listener_init(struct listener *l, uv_loop_t *loop, listener_cb cb, void *data)
{
    memset(l, 0, sizeof(*l));
    l->loop = loop;
    l->cb = cb;
    l->data = data;
}

#ifdef _WIN32
/* A pipe instance the acceptor (src/platform/win32.c) saw a client connect to. */
static bool on_pipe_connected(void *arg, uv_os_fd_t pipe)
{
    struct listener *l = arg;

    if (l->closing)
        return false;
    l->pending = pipe;
    l->taken = false;
    l->cb(l);
    /* Not taken: the acceptor closes the instance. */
    return l->taken;
}

int listener_open_pipe(struct listener *l, const char *name)
{
    /*
     * Not uv_pipe_bind()/uv_listen(): libuv would create the instances
     * with the default security descriptor and without
     * PIPE_REJECT_REMOTE_CLIENTS. Several instances wait at once, so a
     * burst of short-lived clients rarely finds every instance busy.
     */
    return platform_acceptor_start(l->loop, name, LISTENER_PIPE_INSTANCES, on_pipe_connected, l,
                                   &l->acceptor);
}

int listener_accept(struct listener *l, struct frame_conn *fc)
{
    if (l->taken)
        return KW_ERR_INTERNAL;
    /* platform_pipe_adopt() takes the handle whether or not it succeeds. */
    l->taken = true;
    return platform_pipe_adopt(frame_conn_pipe(fc), l->pending);
}

void listener_close(struct listener *l)
{
    if (l->closing)
        return;
    l->closing = true;
    platform_acceptor_stop(l->acceptor);
    l->acceptor = NULL;
}
#else
static void on_connection(uv_stream_t *stream, int status);

static void on_rejected_closed(uv_handle_t *h)
{
    struct listener *l = h->data;

    l->rejecting = false;
    if (l->reject_waiting && !l->closing) {
        l->reject_waiting = false;
        on_connection((uv_stream_t *)&l->pipe, 0);
    }
}

/*
 * Takes the waiting client and closes it at once: libuv watches the
 * listening socket again only once the connection it holds is accepted,
 * so one that is turned away must still be taken off it, or the listener
 * would accept no one ever after. Nothing is allocated for it
 * (tests/oom/oom_server.c turns clients away for want of memory); while
 * the last one turned away is still closing, the next waits for it.
 */
static void listener_reject(struct listener *l)
{
    if (l->rejecting) {
        l->reject_waiting = true;
        return;
    }
    if (uv_pipe_init(l->loop, &l->reject_pipe, 0) != 0)
        return;
    l->reject_pipe.data = l;
    l->rejecting = true;
    (void)uv_accept((uv_stream_t *)&l->pipe, (uv_stream_t *)&l->reject_pipe);
    uv_close((uv_handle_t *)&l->reject_pipe, on_rejected_closed);
}

static void on_connection(uv_stream_t *stream, int status)
{
    struct listener *l = stream->data;

    if (status != 0) {
        log_error("accept: %s", uv_strerror(status));
        return;
    }
    if (l->closing)
        return;
    l->taken = false;
    l->cb(l);
    if (!l->taken && !l->closing)
        listener_reject(l);
}

int listener_open_fd(struct listener *l, int fd)
{
    int r;

    if (l->open)
        return KW_ERR_INTERNAL;
    if ((r = uv_pipe_init(l->loop, &l->pipe, 0)) != 0) {
        log_error("cannot use listening socket: %s", uv_strerror(r));
        return kw_err_from_uv(r);
    }
    l->pipe.data = l;
    l->open = true;
    if ((r = uv_pipe_open(&l->pipe, fd)) != 0) {
        log_error("cannot use listening socket: %s", uv_strerror(r));
        return kw_err_from_uv(r);
    }
    if ((r = uv_listen((uv_stream_t *)&l->pipe, SOMAXCONN, on_connection)) != 0) {
        log_error("listen: %s", uv_strerror(r));
        return kw_err_from_uv(r);
    }
    return 0;
}

int listener_open_path(struct listener *l, const char *path)
{
    char err[512];
    int fd, r;

    if ((r = platform_listen_unix(path, &fd, err, sizeof(err))) != 0) {
        log_error("%s", err);
        return r;
    }
    if ((r = listener_open_fd(l, fd)) != 0) {
        uv_os_fd_t held;

        /* Unless the handle took it (and closes it with itself). */
        if (!l->open || uv_fileno((uv_handle_t *)&l->pipe, &held) != 0)
            close(fd);
    }
    return r;
}

int listener_accept(struct listener *l, struct frame_conn *fc)
{
    int r;

    if (l->taken)
        return KW_ERR_INTERNAL;
    l->taken = true;
    if ((r = uv_accept((uv_stream_t *)&l->pipe, (uv_stream_t *)frame_conn_pipe(fc))) != 0)
        return kw_err_from_uv(r);
    return 0;
}

void listener_close(struct listener *l)
{
    if (l->closing)
        return;
    l->closing = true;
    if (l->open && !uv_is_closing((uv_handle_t *)&l->pipe))
        uv_close((uv_handle_t *)&l->pipe, NULL);
}
#endif
