/*
 * keyward: one framed connection. See frame_conn.h.
 */
#include "transport/frame_conn.h"

#include <stdlib.h>
#include <string.h>

#include "base/timing.h"
#include "base/err.h"
#include "base/memzero.h"
#include "base/wire.h"
#include "platform/platform.h"
#include "platform/uv_err.h"

struct frame_write {
    uv_write_t req;
    struct frame_conn *fc;
    size_t len;
    uint8_t data[];
};

/* Allocated: a shutdown is rare (the relay's), and every connection would carry it. */
struct frame_shutdown {
    uv_shutdown_t req;
    struct frame_conn *fc;
    frame_conn_shutdown_cb cb;
};

static uv_stream_t *fc_out(const struct frame_conn *fc)
{
    return (uv_stream_t *)(fc->out != NULL ? fc->out : &fc->pipe);
}

/* The libuv code as ours, its phrase kept for the owner's log line. */
static int fc_fail(struct frame_conn *fc, int uverr)
{
    fc->why = uv_strerror(uverr);
    return kw_err_from_uv(uverr);
}

/*
 * Frees the receive buffer once everything in it was consumed: an idle
 * connection then costs no buffer, which is most of what ten thousand open
 * connections cost. Consumed frames leave copies behind (memmove), so
 * every byte that ever held data is cleared first. The next read
 * allocates a new one.
 */
static void fc_drop_idle_buffer(struct frame_conn *fc)
{
    if (fc->buf == NULL || fc->len != 0)
        return;
    kw_memzero(fc->buf, fc->dirty);
    free(fc->buf);
    fc->buf = NULL;
    fc->cap = 0;
    fc->dirty = 0;
}

int frame_conn_init(uv_loop_t *loop, struct frame_conn *fc, const struct frame_conn_callbacks *cb,
                    void *data)
{
    int r;

    memset(fc, 0, sizeof(*fc));
    fc->data = data;
    fc->cb = cb;
    if ((r = uv_pipe_init(loop, &fc->pipe, 0)) != 0)
        return fc_fail(fc, r);
    fc->pipe.data = fc;
    fc->handles = 1;
    return 0;
}

uv_pipe_t *frame_conn_pipe(struct frame_conn *fc)
{
    return &fc->pipe;
}

int frame_conn_open_stdio(struct frame_conn *fc)
{
    uv_pipe_t *out;
    int r;

    if (fc->out != NULL)
        return KW_ERR_INTERNAL;
    if ((out = malloc(sizeof(*out))) == NULL)
        return KW_ERR_ALLOC;
    if ((r = uv_pipe_init(fc->pipe.loop, out, 0)) != 0) {
        free(out);
        return fc_fail(fc, r);
    }
    out->data = fc;
    fc->out = out;
    fc->handles++;
#ifdef _WIN32
    /* libuv cannot take every kind of stdio as it is (platform.h). */
    r = platform_stdio_open(&fc->pipe, fc->out);
#else
    if ((r = uv_pipe_open(&fc->pipe, 0)) == 0)
        r = uv_pipe_open(fc->out, 1);
#endif
    return r != 0 ? fc_fail(fc, r) : 0;
}

/* ---- receiving ---- */

enum frame_status frame_conn_frame_at(const struct frame_conn *fc, size_t off, struct frame *f)
{
    uint32_t body;

    if (off > fc->len || fc->len - off < FRAME_HEADER)
        return FRAME_NONE;
    body = wire_peek_u32(fc->buf + off);
    f->body = fc->buf + off + FRAME_HEADER;
    f->len = body;
    f->size = FRAME_HEADER + (size_t)body;
    if (body > WIRE_MAX_MESSAGE)
        return FRAME_OVERSIZED;
    return fc->len - off - FRAME_HEADER >= body ? FRAME_READY : FRAME_NONE;
}

void frame_conn_consume(struct frame_conn *fc, size_t n)
{
    if (n > fc->len)
        n = fc->len;
    if (n > 0) {
        /* Requests can carry private keys: the bytes go, and so does any copy. */
        kw_memzero(fc->buf, n);
        memmove(fc->buf, fc->buf + n, fc->len - n);
        fc->len -= n;
    }
    fc_drop_idle_buffer(fc);
}

void frame_conn_discard(struct frame_conn *fc, size_t off)
{
    if (off >= fc->len)
        return;
    kw_memzero(fc->buf + off, fc->len - off);
    fc->len = off;
    fc_drop_idle_buffer(fc);
}

/*
 * With the stage timing on (base/timing.h): when libuv last asked for a
 * buffer, which it does right before each read() on the loop thread.
 */
static uint64_t timing_alloc_at;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct frame_conn *fc = h->data;
    size_t want = fc->len + FRAME_READ_CHUNK, ncap;
    uint8_t *nbuf;

    (void)suggested;
    if (kw_timing_on)
        timing_alloc_at = kw_timing_now();
    if (want > fc->cap) {
        /*
         * Never beyond one maximal frame plus a read's worth of the next:
         * the owner takes whole frames as they come, or holds reading
         * (FRAME_READ_HOLD) at one maximal frame.
         */
        ncap = fc->cap ? fc->cap : FRAME_READ_CHUNK;
        while (ncap < want)
            ncap *= 2;
        if ((nbuf = malloc(ncap)) == NULL) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        if (fc->buf != NULL) {
            memcpy(nbuf, fc->buf, fc->len);
            /* Requests can carry private keys: leave no copy behind. */
            kw_memzero(fc->buf, fc->dirty);
            free(fc->buf);
        }
        fc->buf = nbuf;
        fc->cap = ncap;
        fc->dirty = fc->len;
    }
    *buf = uv_buf_init((char *)fc->buf + fc->len, (unsigned int)(fc->cap - fc->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct frame_conn *fc = stream->data;
    struct frame_conn_error e;

    (void)buf;
    if (kw_timing_on && nread > 0)
        kw_timing_add(KW_TIMING_READ, kw_timing_now() - timing_alloc_at);
    if (fc->closing)
        return;
    if (nread == 0) {
        fc_drop_idle_buffer(fc); /* nothing came: do not keep the one allocated for it */
        return;
    }
    if (nread < 0) {
        /* libuv has stopped reading at the end of the stream or the error. */
        fc->reading = false;
        fc->ended = true;
        fc_drop_idle_buffer(fc);
        if (nread == UV_EOF) {
            fc->cb->on_eof(fc);
            return;
        }
        e.err = fc_fail(fc, (int)nread);
        e.writing = false;
        e.reset = nread == UV_ECONNRESET;
        e.detail = fc->why;
        fc->cb->on_error(fc, &e);
        return;
    }
    fc->len += (size_t)nread;
    if (fc->len > fc->dirty)
        fc->dirty = fc->len;
    fc->cb->on_read(fc);
    /* The owner may have consumed frames or changed nothing: stop at the hold limit. */
    if (!fc->closing)
        (void)frame_conn_update_reading(fc);
}

bool frame_conn_backlogged(const struct frame_conn *fc)
{
    return uv_stream_get_write_queue_size(fc_out(fc)) > FRAME_WRITE_BACKLOG;
}

void frame_conn_throttle(struct frame_conn *fc, const struct frame_conn *by)
{
    fc->throttle = by;
}

int frame_conn_update_reading(struct frame_conn *fc)
{
    const struct frame_conn *by = fc->throttle != NULL ? fc->throttle : fc;
    bool room = fc->mode != FRAME_READ_HOLD || fc->len < FRAME_HEADER + WIRE_MAX_MESSAGE;
    bool want = !fc->closing && !fc->ended && fc->mode != FRAME_READ_OFF && room &&
                !(!by->closing && frame_conn_backlogged(by));
    int r;

    if (want && !fc->reading) {
        if ((r = uv_read_start((uv_stream_t *)&fc->pipe, on_alloc, on_read)) != 0)
            return fc_fail(fc, r);
        fc->reading = true;
    } else if (!want && fc->reading) {
        uv_read_stop((uv_stream_t *)&fc->pipe);
        fc->reading = false;
    }
    return 0;
}

int frame_conn_read(struct frame_conn *fc, enum frame_read_mode mode)
{
    fc->mode = mode;
    return frame_conn_update_reading(fc);
}

/* ---- sending ---- */

static void on_write(uv_write_t *req, int status)
{
    struct frame_write *w = (struct frame_write *)req;
    struct frame_conn *fc = w->fc;
    struct frame_conn_error e;

    /* Replies and forwarded requests can carry secrets too. */
    kw_memzero(w->data, w->len);
    free(w);
    fc->writes--;
    if (fc->closing)
        return;
    if (status != 0) {
        e.err = fc_fail(fc, status);
        e.writing = true;
        e.reset = status == UV_ECONNRESET;
        e.detail = fc->why;
        fc->cb->on_error(fc, &e);
        return;
    }
    if (fc->cb->on_sent != NULL)
        fc->cb->on_sent(fc);
}

/*
 * Writes what the peer takes at once when nothing is queued before it:
 * header and body straight from the caller's memory, no copy, no request.
 * Returns how many bytes went (0 if none could), or a libuv error code
 * for the caller to meet again on the queued path, which reports it as
 * every write failure is reported.
 */
static int fc_write_now(struct frame_conn *fc, const uint8_t *header, const uint8_t *data,
                        size_t len)
{
    uv_buf_t bufs[2];
    unsigned n = 0;
    int r;

    /*
     * Only with nothing queued (ours or libuv's), or this frame would pass
     * them; and not after a shutdown, which libuv's queue orders.
     */
    if (fc->writes != 0 || fc->shutting || uv_stream_get_write_queue_size(fc_out(fc)) != 0)
        return 0;
    if (header != NULL)
        bufs[n++] = uv_buf_init((char *)header, FRAME_HEADER);
    if (len > 0)
        bufs[n++] = uv_buf_init((char *)data, (unsigned int)len);
    r = uv_try_write(fc_out(fc), bufs, n);
    /* Nothing taken now (a full pipe; Windows' named pipes always say so): queue it all. */
    return r == UV_EAGAIN || r == UV_ENOSYS ? 0 : r;
}

/*
 * Sends header (if any) and body. What the peer takes at once is written
 * straight away (fc_write_now()): a reply to a client that reads its
 * replies never waits in a queue, and costs neither a copy nor, with
 * libuv 1.44, the epoll update that every finished queued write makes.
 * The rest is queued as one write: one allocation, one copy, cleared once
 * written, and on_sent reports it.
 */
static int fc_write(struct frame_conn *fc, bool header, const uint8_t *data, size_t len)
{
    uint8_t head[FRAME_HEADER];
    size_t total = (header ? FRAME_HEADER : 0) + len, done, from_head, from_data;
    struct frame_write *w;
    uv_buf_t buf;
    uint64_t t0;
    int r;

    if (fc->closing)
        return KW_ERR_INTERNAL;
    if (header)
        wire_poke_u32(head, (uint32_t)len);
    t0 = kw_timing_on ? kw_timing_now() : 0;
    r = fc_write_now(fc, header ? head : NULL, data, len);
    done = r > 0 ? (size_t)r : 0;
    if (done == total) {
        if (kw_timing_on)
            kw_timing_add(KW_TIMING_WRITE, kw_timing_now() - t0);
        return 0;
    }
    /* An error was not written: the queued write below meets it and reports it. */
    from_head = header && done < FRAME_HEADER ? FRAME_HEADER - done : 0;
    from_data = total - done - from_head;
    if ((w = malloc(sizeof(*w) + total - done)) == NULL)
        return KW_ERR_ALLOC;
    w->fc = fc;
    w->len = total - done;
    if (from_head > 0)
        memcpy(w->data, head + (FRAME_HEADER - from_head), from_head);
    if (from_data > 0) /* an empty body may come as NULL */
        memcpy(w->data + from_head, data + (len - from_data), from_data);
    buf = uv_buf_init((char *)w->data, (unsigned int)w->len);
    r = uv_write(&w->req, fc_out(fc), &buf, 1, on_write);
    if (kw_timing_on)
        kw_timing_add(KW_TIMING_WRITE, kw_timing_now() - t0);
    if (r != 0) {
        kw_memzero(w->data, w->len);
        free(w);
        return fc_fail(fc, r);
    }
    fc->writes++;
    return 0;
}

int frame_conn_send(struct frame_conn *fc, const uint8_t *msg, size_t len)
{
    if (len > UINT32_MAX)
        return KW_ERR_TOO_LARGE;
    return fc_write(fc, true, msg, len);
}

int frame_conn_send_raw(struct frame_conn *fc, const uint8_t *frames, size_t len)
{
    return fc_write(fc, false, frames, len);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct frame_shutdown *sd = (struct frame_shutdown *)req;
    struct frame_conn *fc = sd->fc;
    frame_conn_shutdown_cb cb = sd->cb;

    free(sd);
    fc->shutting = false;
    cb(fc, status != 0 ? fc_fail(fc, status) : 0);
}

int frame_conn_shutdown(struct frame_conn *fc, frame_conn_shutdown_cb cb)
{
    struct frame_shutdown *sd;
    int r;

    if (fc->closing || fc->shutting)
        return KW_ERR_INTERNAL;
    if ((sd = malloc(sizeof(*sd))) == NULL)
        return KW_ERR_ALLOC;
    sd->fc = fc;
    sd->cb = cb;
    if ((r = uv_shutdown(&sd->req, fc_out(fc), on_shutdown)) != 0) {
        free(sd);
        return fc_fail(fc, r);
    }
    fc->shutting = true;
    return 0;
}

/* ---- closing ---- */

static void on_handle_closed(uv_handle_t *h)
{
    struct frame_conn *fc = h->data;

    if (--fc->handles > 0)
        return;
    /* Whatever was left unconsumed: cleared as everything else. */
    if (fc->buf != NULL) {
        kw_memzero(fc->buf, fc->dirty);
        free(fc->buf);
        fc->buf = NULL;
    }
    fc->len = fc->cap = fc->dirty = 0;
    free(fc->out); /* its handle is closed too: handles is 0 */
    fc->out = NULL;
    if (fc->close_cb != NULL)
        fc->close_cb(fc);
}

void frame_conn_close(struct frame_conn *fc, frame_conn_close_cb cb)
{
    if (fc->closing)
        return;
    fc->closing = true;
    fc->reading = false;
    fc->close_cb = cb;
    uv_close((uv_handle_t *)&fc->pipe, on_handle_closed);
    if (fc->out != NULL)
        uv_close((uv_handle_t *)fc->out, on_handle_closed);
}
