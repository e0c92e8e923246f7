/*
 * keyward: one framed connection (a u32 length, then that many bytes) over
 * a libuv pipe: a Unix socket, a Windows named pipe, or stdin/stdout. The
 * agent's server, keyward-relay and (later) helper processes all use it; it
 * knows frames, not what is in them.
 *
 * A libuv-style handle: the owner embeds a struct frame_conn, sets its
 * callbacks and data, and frees the memory only after the close callback.
 *
 * Receiving. Bytes are buffered; the owner pulls frames with
 * frame_conn_frame() / frame_conn_frame_at() and drops each one it has
 * handled with frame_conn_consume(), one at a time or several at once. A
 * frame longer than WIRE_MAX_MESSAGE is not cut off here: it is reported
 * to the owner as FRAME_OVERSIZED when the owner reaches it, and the owner
 * decides (the agent stops at once; the relay forwards the whole frames
 * before it first). Frames can carry private keys, so every byte that ever
 * held received data is cleared (kw_memzero) before the buffer is freed or
 * replaced, and the buffer itself is freed whenever nothing is buffered:
 * an idle connection costs no receive buffer.
 *
 * Reading is on while the owner says so (frame_conn_read()) and the write
 * queue of the connection it is throttled by (itself unless
 * frame_conn_throttle() names another) is at most FRAME_WRITE_BACKLOG:
 * a peer that does not read its replies is not read from either.
 *
 * Sending: frame_conn_send() frames a body, frame_conn_send_raw() sends
 * bytes that are whole frames already (the relay's pass-through). When
 * nothing is queued, what the peer takes at once is written during the
 * call, from the caller's memory; only what it does not take is copied
 * (one allocation) and queued, the copy cleared once written. So a send
 * may be over when the call returns: writes pending then stay 0 and
 * on_sent is not called for it.
 * frame_conn_shutdown() ends our sending side after what is queued
 * (half-close); the peer's end of stream and a failure (reset, a failed
 * write) are reported by separate callbacks.
 *
 * Functions return 0 or a KW_ERR_* code (libuv's codes are converted with
 * kw_err_from_uv()); the libuv phrase of the last failure is in
 * frame_conn.why, for logs.
 */
#ifndef KEYWARD_TRANSPORT_FRAME_CONN_H
#define KEYWARD_TRANSPORT_FRAME_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* A frame is a u32 length and then that many bytes. */
#define FRAME_HEADER 4
/* What a read asks for at least (the buffer grows in steps of doubling). */
#define FRAME_READ_CHUNK 4096
/* Stop reading while this much is queued for writing to the throttling side. */
#define FRAME_WRITE_BACKLOG (1024 * 1024)

struct frame_conn;

/* What lies at a place in the received bytes. */
enum frame_status {
    FRAME_NONE,     /* nothing, or the start of a frame whose rest is still to come */
    FRAME_READY,    /* a whole frame */
    FRAME_OVERSIZED /* a header announcing more than WIRE_MAX_MESSAGE: the framing is lost */
};

struct frame {
    const uint8_t *body; /* points into the receive buffer: valid until the next consume/read */
    uint32_t len;        /* the body's length (the announced one if oversized) */
    size_t size;         /* FRAME_HEADER + len: what frame_conn_consume() drops for it */
};

/* How the owner wants the connection read (frame_conn_read()). */
enum frame_read_mode {
    FRAME_READ_OFF,  /* read nothing more (the owner has all it will take) */
    FRAME_READ_ON,   /* read; the owner handles frames as they come */
    FRAME_READ_HOLD, /* the owner is busy: buffer at most one maximal frame, so that a peer
                        hanging up meanwhile is still noticed */
};

/* A failure reported to on_error. */
struct frame_conn_error {
    int err;            /* KW_ERR_* */
    bool writing;       /* a write failed, else a read */
    bool reset;         /* the peer reset the connection */
    const char *detail; /* libuv's phrase, for logs (same as frame_conn.why) */
};

struct frame_conn_callbacks {
    /* New bytes were buffered: pull the frames that are complete. */
    void (*on_read)(struct frame_conn *fc);
    /* The peer ended its sending side; nothing more will be read. It may still read ours. */
    void (*on_eof)(struct frame_conn *fc);
    /* Reading or writing failed: the peer is gone (reset, closed with replies unread). */
    void (*on_error)(struct frame_conn *fc, const struct frame_conn_error *e);
    /* A queued send was written out (optional): writes pending went down by one. */
    void (*on_sent)(struct frame_conn *fc);
};

typedef void (*frame_conn_close_cb)(struct frame_conn *fc);
typedef void (*frame_conn_shutdown_cb)(struct frame_conn *fc, int err);

struct frame_conn {
    void *data; /* the owner's */
    const struct frame_conn_callbacks *cb;
    /*
     * Only what every connection needs is here: ten thousand idle ones
     * cost this struct each (in their owner's), and no buffer.
     */
    uv_pipe_t pipe; /* read, and written unless out is set */
    uv_pipe_t *out; /* stdout when opened on stdin/stdout (allocated), else NULL */
    frame_conn_close_cb close_cb;
    const struct frame_conn *throttle; /* whose write backlog stops our reading */
    uint8_t *buf;                      /* received, not yet consumed; NULL when nothing is */
    size_t len;                        /* bytes in buf */
    size_t cap;
    size_t dirty;    /* bytes of buf that ever held data: what freeing it must clear */
    unsigned writes; /* queued sends not yet written out */
    int handles;     /* open libuv handles */
    enum frame_read_mode mode;
    const char *why; /* libuv's phrase for the last failure, for logs */
    bool reading;
    bool ended; /* end of stream or an error: never read again */
    bool shutting;
    bool closing;
};

/*
 * Initialises fc and its pipe (not yet connected) on loop: accept into it
 * (listener_accept()), connect it (frame_conn_pipe()) or open it on stdio.
 * Reading starts with frame_conn_read(). Returns 0 or a KW_ERR_* code.
 */
int frame_conn_init(uv_loop_t *loop, struct frame_conn *fc, const struct frame_conn_callbacks *cb,
                    void *data);

/* The pipe to accept, adopt or connect into, or ask who the peer is. */
uv_pipe_t *frame_conn_pipe(struct frame_conn *fc);

/*
 * Reads stdin and writes stdout (Windows: through platform_stdio_open()).
 * libuv leaves fds 0-2 open when the handles close, so the peer sees the
 * end of the stream when the process exits. Returns 0 or a KW_ERR_* code.
 */
int frame_conn_open_stdio(struct frame_conn *fc);

/*
 * The owner's wish for reading; reading is on only while it is not
 * throttled by a write backlog either. 0, or a KW_ERR_* code if reading
 * could not start (the owner decides; nothing is reported).
 */
int frame_conn_read(struct frame_conn *fc, enum frame_read_mode mode);

/* Re-applies the current mode: after the throttling connection wrote some of its backlog. */
int frame_conn_update_reading(struct frame_conn *fc);

/* fc stops reading while by's write queue is over FRAME_WRITE_BACKLOG (NULL: fc's own). */
void frame_conn_throttle(struct frame_conn *fc, const struct frame_conn *by);

/* Whether the write queue of fc is over FRAME_WRITE_BACKLOG. */
bool frame_conn_backlogged(const struct frame_conn *fc);

/* What starts at byte off of the received bytes; *f is filled for READY and OVERSIZED. */
enum frame_status frame_conn_frame_at(const struct frame_conn *fc, size_t off, struct frame *f);

/* The first frame buffered. */
static inline enum frame_status frame_conn_frame(const struct frame_conn *fc, struct frame *f)
{
    return frame_conn_frame_at(fc, 0, f);
}

/*
 * Drops the first n received bytes (whole frames the owner has handled),
 * clearing them; the buffer is freed, cleared, once nothing is left.
 */
void frame_conn_consume(struct frame_conn *fc, size_t n);

/*
 * Drops the received bytes from byte off on, cleared: after an oversized
 * header the framing is lost (0: everything).
 */
void frame_conn_discard(struct frame_conn *fc, size_t off);

/* Queues one frame with body msg. 0, or a KW_ERR_* code (nothing queued). */
int frame_conn_send(struct frame_conn *fc, const uint8_t *msg, size_t len);

/* Queues bytes that are whole frames already. 0, or a KW_ERR_* code. */
int frame_conn_send_raw(struct frame_conn *fc, const uint8_t *frames, size_t len);

/* Sends queued but not yet written. */
static inline unsigned frame_conn_writes_pending(const struct frame_conn *fc)
{
    return fc->writes;
}

/*
 * Ends our sending side once what is queued is written; cb (0 or a KW_ERR_*
 * code) is called either way, also when the connection closes first.
 * Returns 0, or a KW_ERR_* code and cb is not called.
 */
int frame_conn_shutdown(struct frame_conn *fc, frame_conn_shutdown_cb cb);

/*
 * Closes the connection at once (queued writes are cancelled). No on_*
 * callback comes after this (a pending shutdown's cb does, cancelled); cb
 * comes once every handle is closed, with the buffer cleared and freed:
 * then fc may be freed, or initialised anew.
 */
void frame_conn_close(struct frame_conn *fc, frame_conn_close_cb cb);

#endif
