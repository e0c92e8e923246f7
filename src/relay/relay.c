/*
 * keyward-relay: the relay core. See relay.h.
 *
 * A connection has two sides, the client and its upstream, each with a
 * buffer of bytes received from it and not yet forwarded. Only whole
 * frames are forwarded: the relay reads each u32 length, waits for the
 * rest, and writes complete frames unchanged to the other side; a partial
 * frame stays behind until it is complete. Counting frames also tells it
 * how many requests still wait for a reply, which decides how long a
 * client that has stopped sending is served.
 *
 * Lifetime: every handle and pending request holds a reference on its
 * connection; the connection is freed when the last one is released, so
 * no callback ever sees freed memory. Closing stops both sides, closes the
 * upstream at once and lets replies already queued for the client reach
 * it (bounded by a timer) before the client is closed too.
 */
#include "relay/relay.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/memzero.h"
#include "base/wire.h"
#include "platform/platform.h"
#include "proto/msg.h"
#include "transport/frame_conn.h"
#include "transport/listener.h"

/*
 * A client that stops sending (EOF) still gets the replies to requests it
 * sent before; this bounds the wait for an upstream that never answers
 * (OpenSSH's agent, for one, does not answer an empty frame).
 */
#define DRAIN_TIMEOUT_MS 10000
/* Replies queued for a client being closed: how long it has to take them. */
#define LINGER_TIMEOUT_MS 5000
/*
 * An upstream whose listen backlog is full (on Windows: whose pipe has no
 * free instance): the connect fails at once with EAGAIN where a client's
 * blocking connect would wait, so the relay waits instead (first retry
 * after 5 ms, doubling up to 200 ms) for this long before it gives up on
 * the client.
 */
#define CONNECT_RETRY_MS       10000
#define CONNECT_RETRY_FIRST_MS 5
#define CONNECT_RETRY_MAX_MS   200
#ifdef _WIN32
#define UPSTREAM_BUSY "every instance of its pipe is in use"
#else
#define UPSTREAM_BUSY "its listen backlog is full"
#endif

struct relay_side {
    struct relay_conn *conn;
    const char *name;     /* "client" or "upstream", for logs */
    struct frame_conn fc; /* the connection (stdin/stdout when stdio), and what came from it */
    bool stdio;
    bool open;      /* fc initialised: it must be closed */
    bool connected; /* may be read and written */
    /*
     * Nothing more is read from this side: its peer ended its stream, or
     * (the client) sent a frame over the limit.
     */
    bool eof;
};

struct relay_conn {
    struct relay *relay;
    struct relay_conn *prev, *next; /* in relay->conns */
    unsigned long id;
    struct relay_side client;
    struct relay_side upstream;
    uv_connect_t connect;
    uv_timer_t timer;          /* connect retries, then the drain bound, then linger */
    uint64_t connect_deadline; /* give up retrying a busy upstream at this time */
    unsigned retry_ms;         /* the next wait before retrying it */
    unsigned long outstanding; /* requests forwarded, replies not yet back */
    int handles;               /* sides not yet closed */
    int refs;                  /* handles and requests that refer to this */
    bool draining;             /* the client sent EOF; its last replies are due */
    bool upstream_shut;        /* the client's end of stream is passed on upstream */
    bool oversized;            /* client.eof: because of a frame over the limit */
    bool ends_relay;           /* the relay's one client (stdio on a side) */
    bool closing;
};

static void conn_pump(struct relay_conn *c);
static void conn_update_reading(struct relay_conn *c);
static void side_failed(struct relay_side *s, const char *what, const char *detail);
static void upstream_closed(struct relay_conn *c, bool reset);
static void conn_close(struct relay_conn *c, const char *why);
static bool side_has_frame(const struct relay_side *s);

/* ---- sides ---- */

static bool side_is_client(const struct relay_side *s)
{
    return s == &s->conn->client;
}

static struct relay_side *side_other(struct relay_side *s)
{
    return side_is_client(s) ? &s->conn->upstream : &s->conn->client;
}

/* Bytes from this side: forward what is whole. */
static void on_side_read(struct frame_conn *fc)
{
    struct relay_side *s = fc->data;

    if (!s->conn->closing)
        conn_pump(s->conn);
}

static void on_side_eof(struct frame_conn *fc)
{
    struct relay_side *s = fc->data;
    struct relay_conn *c = s->conn;

    if (c->closing)
        return;
    if (!side_is_client(s)) {
        upstream_closed(c, false);
        return;
    }
#ifdef _WIN32
    /* A named pipe has no half-close: this client is gone, replies or not. */
    if (!s->stdio) {
        conn_close(c, "client closed");
        return;
    }
#endif
    /* The client stopped sending; what it sent before is still answered. */
    s->eof = true;
    if (c->outstanding > 0 || side_has_frame(s))
        log_debug("conn %lu: client stopped sending; its last requests are still answered", c->id);
    conn_pump(c);
}

/*
 * A read or a write failed. A reset from the upstream (the agent died with
 * bytes of ours unread) means the same as its orderly close here.
 */
static void on_side_error(struct frame_conn *fc, const struct frame_conn_error *e)
{
    struct relay_side *s = fc->data;

    if (s->conn->closing)
        return;
    if (!side_is_client(s) && !e->writing && e->reset)
        upstream_closed(s->conn, true);
    else
        side_failed(s, e->writing ? "write failed" : "read failed", e->detail);
}

/* A write to this side is out: the other side may have been held back by it. */
static void on_side_sent(struct frame_conn *fc)
{
    struct relay_side *s = fc->data;

    if (!s->conn->closing)
        conn_update_reading(s->conn);
}

static const struct frame_conn_callbacks side_callbacks = {
    .on_read = on_side_read,
    .on_eof = on_side_eof,
    .on_error = on_side_error,
    .on_sent = on_side_sent,
};

static int side_init(struct relay_side *s)
{
    int r;

    if ((r = frame_conn_init(s->conn->relay->loop, &s->fc, &side_callbacks, s)) != 0)
        return r;
    /* A side is read only while writes to the other have not backed up. */
    frame_conn_throttle(&s->fc, &side_other(s)->fc);
    s->open = true;
    s->conn->handles++;
    s->conn->refs++;
    return 0;
}

/*
 * Makes this side the process's stdin and stdout (frame_conn_open_stdio();
 * on Windows through the platform layer's private pipe pair).
 */
static int side_open_stdio(struct relay_side *s)
{
    int r;

    s->stdio = true;
    if ((r = side_init(s)) != 0 || (r = frame_conn_open_stdio(&s->fc)) != 0)
        return r;
    s->connected = true;
    return 0;
}

/* The frame at the start of what came from this side is complete (and waits to go on). */
static bool side_has_frame(const struct relay_side *s)
{
    struct frame f;

    return frame_conn_frame(&s->fc, &f) == FRAME_READY;
}

/* ---- connection lifetime ---- */

/* The sides' buffers went, cleared, when they closed (frame_conn_close()). */
static void conn_free(struct relay_conn *c)
{
    struct relay *r = c->relay;
    bool ends_relay = c->ends_relay;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        r->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
    if (ends_relay)
        relay_close(r);
}

static void conn_release(struct relay_conn *c)
{
    if (--c->refs == 0)
        conn_free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    conn_release(h->data);
}

/* The timer goes last, once no side handle is left to need it. */
static void conn_close_timer_if_done(struct relay_conn *c)
{
    if (c->handles == 0 && !uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_side_closed(struct frame_conn *fc)
{
    struct relay_side *s = fc->data;
    struct relay_conn *c = s->conn;

    c->handles--;
    conn_close_timer_if_done(c);
    conn_release(c);
}

static void side_close_handles(struct relay_side *s)
{
    s->connected = false;
    if (!s->open)
        return;
    frame_conn_close(&s->fc, on_side_closed);
}

static void on_client_flushed(struct frame_conn *fc, int err)
{
    (void)err; /* flushed or not, the client is closed now */
    side_close_handles(fc->data);
}

static void on_linger_timeout(uv_timer_t *t)
{
    struct relay_conn *c = t->data;

    log_debug("conn %lu: client did not take its last replies within %d s", c->id,
              LINGER_TIMEOUT_MS / 1000);
    side_close_handles(&c->client);
}

static void conn_close(struct relay_conn *c, const char *why)
{
    struct relay_side *cl = &c->client;

    if (c->closing)
        return;
    c->closing = true;
    log_debug("conn %lu: closed (%s)", c->id, why);
    if (cl->open)
        (void)frame_conn_read(&cl->fc, FRAME_READ_OFF);
    side_close_handles(&c->upstream);
    /*
     * Replies already forwarded may still sit in the client's write queue;
     * the shutdown calls back once they are written (or cannot be).
     */
    if (cl->connected && frame_conn_shutdown(&cl->fc, on_client_flushed) == 0)
        uv_timer_start(&c->timer, on_linger_timeout, LINGER_TIMEOUT_MS, 0);
    else
        side_close_handles(cl);
    conn_close_timer_if_done(c);
}

/*
 * The side failed or ended. Losing the upstream always costs the client
 * its connection: a new upstream connection would carry none of the
 * client's session bindings, so re-binding silently is never right.
 */
static void side_failed(struct relay_side *s, const char *what, const char *detail)
{
    struct relay_conn *c = s->conn;
    char why[128];

    snprintf(why, sizeof(why), "%s %s: %s", s->name, what, detail != NULL ? detail : "?");
    if (side_is_client(s)) {
        log_debug("conn %lu: %s", c->id, why);
    } else {
        log_info("conn %lu: %s", c->id, why);
        c->relay->failed = true;
    }
    conn_close(c, why);
}

/* Why a connection whose client sends nothing more ends. */
static const char *conn_end_reason(const struct relay_conn *c)
{
    return c->oversized ? "oversized frame" : "client closed";
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct relay_conn *c = t->data;

    log_info("conn %lu: upstream sent no reply within %d s after the client stopped sending", c->id,
             DRAIN_TIMEOUT_MS / 1000);
    conn_close(c, conn_end_reason(c));
}

/*
 * After the client's EOF: close once every request it sent has been
 * answered. Until then the upstream is read as usual.
 */
static void conn_check_drained(struct relay_conn *c)
{
    if (c->closing || !c->client.eof)
        return;
    if (c->outstanding == 0 && !side_has_frame(&c->client)) {
        if (c->client.fc.len > 0)
            log_debug("conn %lu: dropping %lu bytes of an incomplete request", c->id,
                      (unsigned long)c->client.fc.len);
        conn_close(c, conn_end_reason(c));
        return;
    }
    /* The bound starts once the upstream is there (the timer is busy before). */
    if (!c->draining && c->upstream.connected) {
        c->draining = true;
        uv_timer_start(&c->timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
    }
}

/* ---- writing ---- */

/* Queues a copy of whole frames to a side. 0, or an error: the connection is closing. */
static int side_write(struct relay_side *to, const uint8_t *frames, size_t len)
{
    int r;

    if ((r = frame_conn_send_raw(&to->fc, frames, len)) == KW_ERR_ALLOC) {
        log_error("conn %lu: out of memory", to->conn->id);
        conn_close(to->conn, "out of memory");
    } else if (r != 0) {
        side_failed(to, "write failed", to->fc.why);
    }
    return r;
}

/* ---- framing ---- */

/* With -d: one line per frame naming its type, never its contents. */
static void log_frame(struct relay_conn *c, const struct relay_side *from, const struct frame *f)
{
    const uint8_t *msg = f->body;
    const char *dir = side_is_client(from) ? "request" : "reply";
    struct wire_reader r;
    struct wire_view name;
    char ext[80];

    if (f->len == 0) {
        log_debug("conn %lu: %s (empty frame)", c->id, dir);
        return;
    }
    if (side_is_client(from) && msg[0] == SSH_AGENTC_EXTENSION) {
        wire_reader_init(&r, msg + 1, f->len - 1);
        name = wire_get_string(&r);
        log_debug("conn %lu: request %s(%u) %s", c->id, proto_type_name(msg[0]), msg[0],
                  r.error != 0 ? "(no extension name)"
                               : log_sanitize(name.ptr, name.len, ext, sizeof(ext)));
        return;
    }
    log_debug("conn %lu: %s %s(%u)", c->id, dir, proto_type_name(msg[0]), msg[0]);
}

/*
 * Forwards every complete frame received from one side to the other, in
 * order and unchanged. Consecutive frames go out in one write: a client
 * that pipelines many small requests costs one write request per read,
 * not one per frame. Returns false if the connection is closing.
 */
static bool forward(struct relay_conn *c, struct relay_side *from, struct relay_side *to)
{
    size_t off = 0, frames = 0;
    enum frame_status st;
    struct frame f;

    while ((st = frame_conn_frame_at(&from->fc, off, &f)) != FRAME_NONE) {
        if (st == FRAME_OVERSIZED) {
            /* Checked before anything else: even before the upstream is there. */
            log_info("conn %lu: %s sent a frame of %lu bytes, over the %u byte limit", c->id,
                     from->name, (unsigned long)f.len, (unsigned)WIRE_MAX_MESSAGE);
            c->relay->failed = true;
            if (!side_is_client(from)) {
                conn_close(c, "oversized frame");
                return false;
            }
            /*
             * As the agent does: the whole requests before it are still
             * forwarded and answered. Nothing more is read from the client
             * or forwarded, and once the replies are back the connection
             * is closed (waiting at most DRAIN_TIMEOUT_MS). The upstream
             * is not half-closed: the agent would take that for a client
             * that has gone, and drop a pending confirmation.
             */
            frame_conn_discard(&from->fc, off);
            from->eof = true;
            c->oversized = true;
            break;
        }
        if (to->connected && log_enabled(LOG_LEVEL_DEBUG))
            log_frame(c, from, &f);
        off += f.size;
        frames++;
    }
    if (off > 0 && to->connected) { /* else they wait for the upstream */
        if (side_write(to, from->fc.buf, off) != 0)
            return false;
        frame_conn_consume(&from->fc, off); /* cleared; the buffer is freed once empty */
        if (side_is_client(from))
            c->outstanding += frames;
        else
            c->outstanding -= frames < c->outstanding ? frames : c->outstanding;
    }
    return true;
}

#ifndef _WIN32
static void on_upstream_shut(struct frame_conn *fc, int err)
{
    struct relay_side *up = fc->data;

    /* A pipe (stdout as the upstream) cannot be half-closed: wait for the replies as before. */
    if (err != 0 && !up->conn->closing)
        log_debug("conn %lu: cannot pass the client's end of stream upstream: %s", up->conn->id,
                  fc->why);
}
#endif

/*
 * The client's stream has ended and every whole request it sent is on its
 * way: shut down our sending side of the upstream, so that the agent sees
 * the end of stream as if the client were its own. It answers what it has
 * (and takes down a pending confirmation prompt: nobody may be left to see
 * it), then closes; until then its replies go on to the client.
 *
 * Not on Windows: a named pipe cannot be half-closed, and libuv's shutdown
 * of one that is still read from starts a 50 ms timer that, whenever the
 * agent is quiet that long (a signature under load), closes the pipe at
 * both ends and reports end of stream, losing the replies still to come.
 * There the replies are counted in (outstanding) and the connection closes
 * once the last one is delivered (conn_check_drained()).
 */
static void conn_pass_eof(struct relay_conn *c)
{
#ifdef _WIN32
    (void)c;
#else
    struct relay_side *up = &c->upstream;

    if (c->closing || c->upstream_shut || !c->client.eof || c->oversized || !up->connected ||
        side_has_frame(&c->client))
        return;
    c->upstream_shut = true;
    if (frame_conn_shutdown(&up->fc, on_upstream_shut) != 0)
        log_debug("conn %lu: cannot pass the client's end of stream upstream: %s", c->id,
                  up->fc.why);
#endif
}

static void conn_pump(struct relay_conn *c)
{
    if (c->closing || !forward(c, &c->client, &c->upstream) ||
        !forward(c, &c->upstream, &c->client))
        return;
    conn_update_reading(c);
    conn_pass_eof(c);
    conn_check_drained(c);
}

/* ---- reading ---- */

/*
 * The upstream went away: the client goes too. A reset (the agent died
 * with bytes of ours unread) means the same as an orderly close here.
 */
static void upstream_closed(struct relay_conn *c, bool reset)
{
    const char *how = reset ? " (connection reset)" : "";
    const char *mid = c->upstream.fc.len > 0 ? " in the middle of a reply" : "";

    c->upstream.eof = true;
    if (c->client.eof) {
        /* What passing on the client's end of stream leads to. */
        log_debug("conn %lu: upstream closed after the client's end of stream%s%s", c->id, how,
                  mid);
        conn_close(c, c->oversized ? "oversized frame" : "upstream closed");
        return;
    }
    log_info("conn %lu: upstream closed%s%s", c->id, how, mid);
    c->relay->failed = true;
    conn_close(c, "upstream closed");
}

/*
 * Reads a side only while what it sends can go somewhere: not while a
 * whole frame from it waits for the upstream to connect, nor while the
 * other side's write queue is backed up (a peer that does not read; see
 * frame_conn_throttle() in side_init()).
 */
static void side_update_reading(struct relay_side *s)
{
    bool want = !s->conn->closing && s->connected && !s->eof && !side_has_frame(s);

    if (!s->open)
        return;
    if (frame_conn_read(&s->fc, want ? FRAME_READ_ON : FRAME_READ_OFF) != 0)
        side_failed(s, "read failed", s->fc.why);
}

static void conn_update_reading(struct relay_conn *c)
{
    side_update_reading(&c->client);
    side_update_reading(&c->upstream);
}

/* ---- connections ---- */

static struct relay_conn *conn_new(struct relay *r)
{
    struct relay_conn *c;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    c->relay = r;
    c->id = ++r->next_conn_id;
    c->next = r->conns;
    if (r->conns != NULL)
        r->conns->prev = c;
    r->conns = c;
    c->client.conn = c;
    c->client.name = "client";
    c->upstream.conn = c;
    c->upstream.name = "upstream";
    uv_timer_init(r->loop, &c->timer);
    c->timer.data = c;
    c->refs = 1; /* the timer */
    return c;
}

static void conn_connect_upstream(struct relay_conn *c);

static void on_connect_retry(uv_timer_t *t)
{
    struct relay_conn *c = t->data;

    if (!c->closing)
        conn_connect_upstream(c);
}

/* The busy upstream's socket is gone; wait, then try with a new one. */
static void on_retry_side_closed(struct frame_conn *fc)
{
    struct relay_side *s = fc->data;
    struct relay_conn *c = s->conn;

    c->handles--;
    s->open = false;
    if (c->closing) {
        conn_close_timer_if_done(c);
    } else {
        uv_timer_start(&c->timer, on_connect_retry, c->retry_ms, 0);
        c->retry_ms =
            c->retry_ms * 2 < CONNECT_RETRY_MAX_MS ? c->retry_ms * 2 : CONNECT_RETRY_MAX_MS;
    }
    conn_release(c);
}

/* The upstream connection attempt is over (status: libuv's): go on, retry or give up. */
static void upstream_connect_done(struct relay_conn *c, int status)
{
    uv_loop_t *loop = c->relay->loop;

    uv_update_time(loop);
    if (c->closing) {
        /* Nothing to do: the upstream handle is closing already. */
    } else if (status == UV_EAGAIN && uv_now(loop) < c->connect_deadline) {
        /*
         * libuv keeps the failed socket in the handle and a second connect
         * on it would leave the stream unusable: close it, retry afresh
         * (on Windows: every instance of the pipe was busy).
         */
        if (c->retry_ms == CONNECT_RETRY_FIRST_MS)
            log_debug("conn %lu: upstream busy (%s); retrying", c->id, UPSTREAM_BUSY);
        frame_conn_close(&c->upstream.fc, on_retry_side_closed);
    } else if (status != 0) {
        log_info("conn %lu: cannot reach the upstream agent at %s: %s", c->id, c->relay->upstream,
                 uv_strerror(status));
        c->relay->failed = true;
        conn_close(c, "upstream unreachable");
    } else {
        log_debug("conn %lu: upstream connected", c->id);
        c->upstream.connected = true;
        conn_pump(c); /* what the client sent meanwhile */
    }
    conn_release(c);
}

#ifdef _WIN32
/*
 * Not uv_pipe_connect(), which would let the server impersonate us: the
 * platform layer connects at identification level, at once or not at all.
 */
static void conn_connect_upstream(struct relay_conn *c)
{
    int status;

    (void)side_init(&c->upstream); /* cannot fail for a pipe */
    c->refs++;                     /* released by upstream_connect_done() */
    status = platform_pipe_connect(frame_conn_pipe(&c->upstream.fc), c->relay->upstream);
    upstream_connect_done(c, status);
}
#else
static void on_upstream_connected(uv_connect_t *req, int status)
{
    upstream_connect_done(req->data, status);
}

static void conn_connect_upstream(struct relay_conn *c)
{
    (void)side_init(&c->upstream); /* cannot fail for a pipe */
    c->connect.data = c;
    c->refs++; /* released by upstream_connect_done(), which libuv always leads to */
    uv_pipe_connect(&c->connect, frame_conn_pipe(&c->upstream.fc), c->relay->upstream,
                    on_upstream_connected);
}
#endif

/* Opens the client's own upstream connection; its bytes wait until then. */
static void conn_start_upstream(struct relay_conn *c)
{
    struct relay *r = c->relay;

    if (r->upstream == NULL) {
        if (side_open_stdio(&c->upstream) != 0) {
            log_error("conn %lu: cannot use stdin/stdout as the upstream: %s", c->id,
                      c->upstream.fc.why);
            r->failed = true;
            conn_close(c, "upstream unusable");
        }
        return;
    }
    uv_update_time(r->loop);
    c->connect_deadline = uv_now(r->loop) + CONNECT_RETRY_MS;
    c->retry_ms = CONNECT_RETRY_FIRST_MS;
    conn_connect_upstream(c);
}

/* A client has connected to LISTEN: check who it is, then relay it. */
static void conn_accepted(struct relay_conn *c)
{
    struct relay *r = c->relay;
    struct peer_info peer;

    /* The agent's own policy: our uid or root (Windows: our user SID). */
    if (!platform_peer_allowed(frame_conn_pipe(&c->client.fc), &peer)) {
        log_info("conn %lu: refused connection from %s: not our user", c->id, peer.desc);
        conn_close(c, "peer refused");
        return;
    }
    if (r->single) {
        /*
         * The upstream is stdin/stdout: one connection, with the first
         * client's session bindings on it. Nobody else may share it.
         */
        if (r->claimed) {
            log_info("conn %lu: refused connection from %s: the upstream is stdin/stdout, "
                     "which carries one client only",
                     c->id, peer.desc);
            conn_close(c, "upstream in use");
            return;
        }
        r->claimed = true;
        c->ends_relay = true;
    }
    log_debug("conn %lu: accepted from %s", c->id, peer.desc);
    c->client.connected = true;
    conn_start_upstream(c);
    conn_update_reading(c);
}

/* A client is waiting on LISTEN (a socket, or a pipe instance on Windows). */
static void on_listener_conn(struct listener *l)
{
    struct relay *r = l->data;
    struct relay_conn *c;

    if (r->closing)
        return;
    if ((c = conn_new(r)) == NULL) {
        log_error("accept: out of memory");
        return;
    }
    (void)side_init(&c->client); /* cannot fail for a pipe */
    if (listener_accept(l, &c->client.fc) != 0) {
        conn_close(c, "accept failed");
        return;
    }
    conn_accepted(c);
}

/* ---- the relay ---- */

void relay_init(struct relay *r, uv_loop_t *loop, const char *upstream)
{
    memset(r, 0, sizeof(*r));
    r->loop = loop;
    r->upstream = upstream;
    /* A relay to stdin/stdout has one upstream connection to give away. */
    r->single = upstream == NULL;
    listener_init(&r->listener, loop, on_listener_conn, r);
}

static const char *handle_kind(uv_handle_type t)
{
    switch (t) {
    case UV_TTY:
#ifdef _WIN32
        return "a console";
#else
        return "a terminal";
#endif
    case UV_FILE:
        return "a file or device";
    case UV_TCP:
        return "a TCP socket";
    case UV_UDP:
        return "a UDP socket";
    default:
        return "closed or of an unknown kind";
    }
}

int relay_check_stdio(char *err, size_t errsize)
{
    uv_handle_type in = uv_guess_handle(0), out = uv_guess_handle(1);

    /*
     * Only pipes and local sockets: a terminal cannot carry binary frames,
     * and a network socket would reach the agent from elsewhere with no
     * peer check at all.
     */
    if (in != UV_NAMED_PIPE || out != UV_NAMED_PIPE) {
        snprintf(err, errsize,
                 "%s is %s; \"-\" needs a pipe or a local socket (run the relay from socat, "
                 "ssh or another program)",
                 in != UV_NAMED_PIPE ? "stdin" : "stdout",
                 handle_kind(in != UV_NAMED_PIPE ? in : out));
        return KW_ERR_BAD_FORMAT;
    }
    return 0;
}

#ifndef _WIN32
int relay_listen_fd(struct relay *r, int fd)
{
    return listener_open_fd(&r->listener, fd);
}
#else
int relay_listen_name(struct relay *r, const char *name)
{
    return listener_open_pipe(&r->listener, name);
}
#endif

int relay_serve_stdio(struct relay *r)
{
    struct relay_conn *c;
    int err;

    r->single = r->claimed = true;
    if ((c = conn_new(r)) == NULL) {
        log_error("out of memory");
        return KW_ERR_ALLOC;
    }
    c->ends_relay = true;
    /* No peer check: stdin/stdout belong to whoever started the relay. */
    if ((err = side_open_stdio(&c->client)) != 0) {
        log_error("cannot use stdin/stdout: %s",
                  c->client.fc.why ? c->client.fc.why : kw_strerror(err));
        conn_close(c, "stdin/stdout unusable");
        return err;
    }
    log_debug("conn %lu: serving stdin/stdout", c->id);
    conn_start_upstream(c);
    conn_update_reading(c);
    return 0;
}

void relay_close(struct relay *r)
{
    struct relay_conn *c;

    if (r->closing)
        return;
    r->closing = true;
    /* conn_close() frees nothing before its callbacks run: the list stays valid. */
    for (c = r->conns; c != NULL; c = c->next)
        conn_close(c, "relay shutting down");
    listener_close(&r->listener);
}
