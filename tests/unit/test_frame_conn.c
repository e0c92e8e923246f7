/*
 * keyward: the framed connection (src/transport/frame_conn.c) over a real
 * libuv loop. One end of a socketpair is the frame_conn (uv_pipe_open());
 * the test drives the other end with plain blocking system calls, so every
 * byte boundary, a half-close, a reset and a peer that does not read are
 * exactly what the test wrote.
 *
 * kw_memzero() is defined here, so that the test sees every clear the
 * module makes (the archive's own is then not linked): which bytes were
 * cleared is checked against what was received.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/err.h"
#include "base/memzero.h"
#include "base/wire.h"
#include "check.h"
#include "transport/frame_conn.h"

/* ---- kw_memzero, recorded ---- */

#define CLEARS_MAX 64

static struct {
    const void *p;
    size_t len;
} clears[CLEARS_MAX];
static int nclears;

void kw_memzero(void *p, size_t len)
{
    if (p == NULL || len == 0)
        return;
    memset(p, 0, len);
    if (nclears < CLEARS_MAX) {
        clears[nclears].p = p;
        clears[nclears].len = len;
    }
    nclears++;
}

/* ---- the owner ---- */

#define MAX_FRAMES 64

struct owner {
    struct frame_conn fc;
    bool take;  /* consume whole frames as they come */
    int frames; /* whole frames taken */
    uint32_t lens[MAX_FRAMES];
    uint8_t first[MAX_FRAMES]; /* each body's first byte (0 if empty) */
    uint8_t last[MAX_FRAMES];  /* and its last */
    int oversized;             /* FRAME_OVERSIZED seen */
    uint32_t oversized_len;
    int eofs;
    int errors;
    struct frame_conn_error error;
    int sent;
    int closed;
    const uint8_t *buf_seen; /* fc.buf at the last read */
};

static void owner_take(struct owner *o)
{
    struct frame f;
    enum frame_status st;

    while ((st = frame_conn_frame(&o->fc, &f)) != FRAME_NONE) {
        if (st == FRAME_OVERSIZED) {
            /* As the agent: the framing is lost, read nothing more. */
            o->oversized++;
            o->oversized_len = f.len;
            frame_conn_discard(&o->fc, 0);
            frame_conn_read(&o->fc, FRAME_READ_OFF);
            return;
        }
        if (o->frames < MAX_FRAMES) {
            o->lens[o->frames] = f.len;
            o->first[o->frames] = f.len ? f.body[0] : 0;
            o->last[o->frames] = f.len ? f.body[f.len - 1] : 0;
        }
        o->frames++;
        frame_conn_consume(&o->fc, f.size);
    }
}

static void on_read(struct frame_conn *fc)
{
    struct owner *o = fc->data;

    o->buf_seen = fc->buf;
    if (o->take)
        owner_take(o);
}

static void on_eof(struct frame_conn *fc)
{
    ((struct owner *)fc->data)->eofs++;
}

static void on_error(struct frame_conn *fc, const struct frame_conn_error *e)
{
    struct owner *o = fc->data;

    o->errors++;
    o->error = *e;
}

static void on_sent(struct frame_conn *fc)
{
    ((struct owner *)fc->data)->sent++;
}

static void on_closed(struct frame_conn *fc)
{
    ((struct owner *)fc->data)->closed++;
}

static const struct frame_conn_callbacks callbacks = {
    .on_read = on_read, .on_eof = on_eof, .on_error = on_error, .on_sent = on_sent};

static uv_loop_t loop;

/* o's frame_conn on one end of a fresh socketpair; returns the other end (blocking). */
static int owner_open(struct owner *o)
{
    int sv[2];

    memset(o, 0, sizeof(*o));
    o->take = true;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    CHECK_EQ(frame_conn_init(&loop, &o->fc, &callbacks, o), 0);
    CHECK_EQ(uv_pipe_open(frame_conn_pipe(&o->fc), sv[0]), 0);
    CHECK_EQ(frame_conn_read(&o->fc, FRAME_READ_ON), 0);
    /* Non-blocking: a write larger than the socket's buffer lets the loop run meanwhile. */
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    return sv[1];
}

static void owner_close(struct owner *o, int peer)
{
    frame_conn_close(&o->fc, on_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(o->closed, 1);
    CHECK(o->fc.buf == NULL);
    if (peer >= 0)
        close(peer);
}

/* Runs the loop until nothing is ready (a few rounds: reads come in chunks). */
static void spin(void)
{
    int i;

    for (i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

/* Writes everything, running the loop whenever the socket is full. */
static void write_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    ssize_t n;

    while (len > 0) {
        if ((n = write(fd, b, len)) < 0 && errno == EAGAIN) {
            uv_run(&loop, UV_RUN_NOWAIT);
            continue;
        }
        if (n <= 0)
            abort();
        b += n;
        len -= (size_t)n;
    }
}

/* A frame with a body of len bytes: first byte tag, then tag+1, ... */
static size_t make_frame(uint8_t *out, uint32_t len, uint8_t tag)
{
    uint32_t i;

    wire_poke_u32(out, len);
    for (i = 0; i < len; i++)
        out[FRAME_HEADER + i] = (uint8_t)(tag + i);
    return FRAME_HEADER + len;
}

/* ---- tests ---- */

/* A frame (and the next) split at every byte, and fed one byte per loop turn. */
static void test_split_everywhere(void)
{
    uint8_t wire[2 * (FRAME_HEADER + 300)];
    size_t n1 = make_frame(wire, 300, 7), n2 = make_frame(wire + n1, 5, 100), total = n1 + n2, k;
    struct owner o;
    int peer = owner_open(&o), want = 0, bad = 0;

    for (k = 0; k <= total; k++) {
        write_all(peer, wire, k);
        spin();
        /* Only what is whole in the first k bytes was handed over. */
        if (o.frames != want + (k >= n1) + (k >= total))
            bad++;
        write_all(peer, wire + k, total - k);
        spin();
        want += 2;
        if (o.frames != want || o.fc.buf != NULL || o.fc.len != 0)
            bad++;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(o.frames, 2 * (int)(total + 1));
    CHECK_EQ(o.lens[0], 300);
    CHECK_EQ(o.first[0], 7);
    CHECK_EQ(o.last[0], (uint8_t)(7 + 299));
    CHECK_EQ(o.lens[1], 5);
    CHECK_EQ(o.first[1], 100);

    /* One byte per loop turn: the frame comes whole, once, at its last byte. */
    o.frames = 0;
    for (k = 0; k < n1; k++) {
        write_all(peer, wire + k, 1);
        spin();
        if (o.frames != (k + 1 == n1))
            bad++;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(o.frames, 1);
    CHECK(o.fc.buf == NULL);
    CHECK_EQ(o.eofs + o.errors + o.oversized, 0);
    owner_close(&o, peer);
}

/* The largest frame passes; one byte more is reported, not delivered. */
static void test_oversize(void)
{
    size_t max = FRAME_HEADER + WIRE_MAX_MESSAGE;
    uint8_t *big = malloc(max), hdr[FRAME_HEADER + 3];
    struct owner o;
    int peer = owner_open(&o);

    make_frame(big, WIRE_MAX_MESSAGE, 1);
    write_all(peer, big, max);
    spin();
    CHECK_EQ(o.frames, 1);
    CHECK_EQ(o.lens[0], WIRE_MAX_MESSAGE);
    CHECK_EQ(o.oversized, 0);
    CHECK(o.fc.buf == NULL);
    /* The buffer never grew past one maximal frame plus a read's worth. */
    wire_poke_u32(hdr, WIRE_MAX_MESSAGE + 1);
    memcpy(hdr + FRAME_HEADER, "abc", 3);
    write_all(peer, hdr, sizeof(hdr));
    spin();
    CHECK_EQ(o.frames, 1);
    CHECK_EQ(o.oversized, 1);
    CHECK_EQ(o.oversized_len, WIRE_MAX_MESSAGE + 1);
    CHECK(o.fc.buf == NULL);
    CHECK_EQ(o.fc.len, 0);
    CHECK(!o.fc.reading);
    /* Nothing after it is read: not even the end of stream. */
    shutdown(peer, SHUT_WR);
    spin();
    CHECK_EQ(o.eofs, 0);
    free(big);
    owner_close(&o, peer);
}

/*
 * The peer ends its sending side after a request: the request is handed
 * over, then the end of stream, separately from any error; the reply can
 * still be sent; our own shutdown reaches the peer as its end of stream.
 */
static int shut_calls, shut_err = 99;

static void on_shut(struct frame_conn *fc, int err)
{
    (void)fc;
    shut_calls++;
    shut_err = err;
}

static void test_half_close(void)
{
    uint8_t wire[FRAME_HEADER + 9], reply[FRAME_HEADER + 2];
    size_t n = make_frame(wire, 9, 40);
    struct owner o;
    int peer = owner_open(&o);
    ssize_t got;

    write_all(peer, wire, n);
    shutdown(peer, SHUT_WR);
    spin();
    CHECK_EQ(o.frames, 1);
    CHECK_EQ(o.eofs, 1);
    CHECK_EQ(o.errors, 0);
    CHECK(o.fc.ended);
    CHECK(!o.fc.reading);
    CHECK(o.fc.buf == NULL);
    /* A later wish to read changes nothing: the stream has ended. */
    CHECK_EQ(frame_conn_read(&o.fc, FRAME_READ_ON), 0);
    CHECK(!o.fc.reading);

    /* The peer has room: the reply is written during the call, nothing is queued. */
    CHECK_EQ(frame_conn_send(&o.fc, (const uint8_t *)"ok", 2), 0);
    CHECK_EQ(frame_conn_writes_pending(&o.fc), 0);
    CHECK_EQ(frame_conn_shutdown(&o.fc, on_shut), 0);
    spin();
    CHECK_EQ(o.sent, 0);
    CHECK_EQ(frame_conn_writes_pending(&o.fc), 0);
    CHECK_EQ(shut_calls, 1);
    CHECK_EQ(shut_err, 0);
    got = read(peer, reply, sizeof(reply));
    CHECK_EQ(got, (ssize_t)sizeof(reply));
    CHECK_EQ(wire_peek_u32(reply), 2);
    CHECK(memcmp(reply + FRAME_HEADER, "ok", 2) == 0);
    CHECK_EQ(read(peer, reply, 1), 0); /* our end of stream */
    owner_close(&o, peer);
}

/*
 * The peer reads until it has want bytes (got already), running the loop
 * between reads so that queued writes go on; keep: into buf at got, else
 * over buf (size bytes) again and again. Returns the bytes read in all.
 */
static size_t peer_read_until(int peer, uint8_t *buf, size_t size, bool keep, size_t got,
                              size_t want)
{
    ssize_t n;

    while (got < want) {
        n = keep ? read(peer, buf + got, want - got) : read(peer, buf, size);
        if (n > 0)
            got += (size_t)n;
        else if (n < 0 && errno != EAGAIN)
            break;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    return got;
}

/*
 * A peer that does not read: once more than FRAME_WRITE_BACKLOG is queued,
 * reading stops; once the peer has read it all, reading starts again.
 */
static void test_slow_reader(void)
{
    enum { CHUNK = 64 * 1024, COUNT = 40 };
    uint8_t *body = calloc(1, CHUNK), *sink = malloc(CHUNK);
    size_t want = (size_t)COUNT * (FRAME_HEADER + CHUNK), got;
    struct owner o;
    int peer = owner_open(&o), i, queued = 0;
    unsigned before;

    for (i = 0; i < COUNT; i++) {
        before = frame_conn_writes_pending(&o.fc);
        CHECK_EQ(frame_conn_send(&o.fc, body, CHUNK), 0);
        queued += frame_conn_writes_pending(&o.fc) > before;
    }
    /* The first went (partly) at once; once one is queued, every later one is. */
    CHECK(queued > 0 && queued < COUNT);
    spin();
    CHECK(frame_conn_backlogged(&o.fc));
    CHECK_EQ(frame_conn_update_reading(&o.fc), 0);
    CHECK(!o.fc.reading);
    CHECK(o.sent < COUNT);
    /* The peer reads everything; the loop writes the rest meanwhile. */
    got = peer_read_until(peer, sink, CHUNK, false, 0, want);
    spin();
    CHECK_EQ(got, want);
    CHECK_EQ(o.sent, queued);
    CHECK_EQ(frame_conn_writes_pending(&o.fc), 0);
    CHECK(!frame_conn_backlogged(&o.fc));
    CHECK_EQ(frame_conn_update_reading(&o.fc), 0);
    CHECK(o.fc.reading);
    CHECK_EQ(o.errors, 0);
    free(body);
    free(sink);
    owner_close(&o, peer);
}

/*
 * The owner is busy (FRAME_READ_HOLD): frames stay buffered, and reading
 * stops at one maximal frame; ON again hands them over.
 */
static void test_hold(void)
{
    enum { BODY = 100 * 1024, COUNT = 12 };
    uint8_t *wire = malloc(COUNT * (FRAME_HEADER + BODY));
    size_t n = 0, off;
    struct owner o;
    int peer = owner_open(&o), i;

    for (i = 0; i < COUNT; i++)
        n += make_frame(wire + n, BODY, (uint8_t)i);
    o.take = false;
    CHECK_EQ(frame_conn_read(&o.fc, FRAME_READ_HOLD), 0);
    /* Write until reading has stopped and the socket is full. */
    for (i = 0, off = 0; off < n && i < 100000; i++) {
        ssize_t w = write(peer, wire + off, n - off);

        if (w > 0)
            off += (size_t)w;
        else if (!o.fc.reading)
            break;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    spin();
    CHECK(off < n);
    CHECK_EQ(o.frames, 0);
    CHECK(o.fc.len >= FRAME_HEADER + WIRE_MAX_MESSAGE);
    /* The buffer doubles from 4 KiB: it never needs more than 512 KiB for that. */
    CHECK(o.fc.cap <= 512 * 1024);
    CHECK(!o.fc.reading);
    o.take = true;
    owner_take(&o);
    CHECK_EQ(frame_conn_read(&o.fc, FRAME_READ_ON), 0);
    write_all(peer, wire + off, n - off);
    spin();
    CHECK_EQ(o.frames, COUNT);
    CHECK_EQ(o.first[COUNT - 1], COUNT - 1);
    CHECK(o.fc.buf == NULL);
    free(wire);
    owner_close(&o, peer);
}

/* The peer vanishes with our bytes unread: a reset, reported as an error, not an end of stream. */
static void test_peer_reset(void)
{
    struct owner o;
    int peer = owner_open(&o);

    CHECK_EQ(frame_conn_send(&o.fc, (const uint8_t *)"unread", 6), 0);
    CHECK_EQ(frame_conn_writes_pending(&o.fc), 0); /* written during the call */
    spin();
    CHECK_EQ(o.sent, 0);
    close(peer); /* with our frame still in its receive queue */
    spin();
    CHECK_EQ(o.eofs, 0);
    CHECK_EQ(o.errors, 1);
    CHECK_EQ(o.error.err, KW_ERR_SYSTEM);
    CHECK(o.error.reset);
    CHECK(!o.error.writing);
    CHECK(o.error.detail != NULL && o.error.detail == o.fc.why);
    CHECK(o.fc.ended);
    /* Writing to it now fails at once, as a KW_ERR_* code (and no signal). */
    errno = 0;
    CHECK_EQ(frame_conn_send(&o.fc, (const uint8_t *)"x", 1), KW_ERR_SYSTEM);
    CHECK(errno == EPIPE || errno == ECONNRESET);
    CHECK_EQ(frame_conn_writes_pending(&o.fc), 0);
    spin();
    CHECK_EQ(o.errors, 1);
    owner_close(&o, -1);
}

/*
 * The receive buffer goes once every frame in it is handled, and every
 * byte that ever held data is cleared first: here 14 + 24 bytes of two
 * frames and 7 of a third's start (45 in all), then its rest.
 */
static void test_idle_release(void)
{
    uint8_t wire[FRAME_HEADER * 3 + 10 + 20 + 30];
    size_t a = make_frame(wire, 10, 1), b = make_frame(wire + a, 20, 2),
           c = make_frame(wire + a + b, 30, 3);
    struct owner o;
    int peer = owner_open(&o), first;
    const uint8_t *buf;

    write_all(peer, wire, a + b + 7);
    nclears = 0;
    spin();
    CHECK_EQ(o.frames, 2);
    CHECK(o.fc.buf != NULL);
    CHECK_EQ(o.fc.len, 7);
    CHECK_EQ(o.fc.cap, FRAME_READ_CHUNK);
    CHECK_EQ(o.fc.dirty, a + b + 7);
    buf = o.fc.buf;
    /* Each frame cleared as it was handled: 14 bytes, then 24. */
    CHECK_EQ(nclears, 2);
    CHECK(clears[0].p == buf && clears[0].len == a);
    CHECK(clears[1].p == buf && clears[1].len == b);

    first = nclears;
    write_all(peer, wire + a + b + 7, c - 7);
    spin();
    CHECK_EQ(o.frames, 3);
    CHECK_EQ(o.lens[2], 30);
    CHECK_EQ(o.first[2], 3);
    CHECK(o.fc.buf == NULL);
    CHECK_EQ(o.fc.cap, 0);
    CHECK_EQ(o.fc.dirty, 0);
    /*
     * A read wants a whole chunk free, so the 4 KiB buffer was replaced
     * first: cleared as far as it ever held data (45). Then the frame
     * (34 bytes) and the new buffer's 34.
     */
    CHECK_EQ(nclears - first, 3);
    CHECK(clears[first].p == buf && clears[first].len == a + b + 7);
    CHECK(clears[first + 1].p != buf && clears[first + 1].len == c);
    CHECK(clears[first + 2].p == clears[first + 1].p && clears[first + 2].len == c);

    /* A buffer grown for a large frame: the old one is cleared as it is replaced. */
    {
        uint8_t *big = malloc(FRAME_HEADER + 10000);
        size_t n = make_frame(big, 10000, 9);

        nclears = 0;
        write_all(peer, big, 5000);
        spin();
        CHECK_EQ(o.fc.len, 5000);
        CHECK_EQ(o.fc.cap, 2 * FRAME_READ_CHUNK); /* 4096, full, then doubled for the rest */
        write_all(peer, big + 5000, n - 5000);
        spin();
        CHECK_EQ(o.frames, 4);
        CHECK_EQ(o.lens[3], 10000);
        CHECK(o.fc.buf == NULL);
        /*
         * The 4096-byte buffer as it was replaced, the 8192-byte one with
         * its 5000 bytes, then the frame and the last buffer's 10004.
         */
        CHECK_EQ(nclears, 4);
        CHECK_EQ(clears[0].len, FRAME_READ_CHUNK);
        CHECK_EQ(clears[1].len, 5000);
        CHECK_EQ(clears[2].len, n);
        CHECK_EQ(clears[3].len, n);
        CHECK(clears[2].p == clears[3].p);
        free(big);
    }
    owner_close(&o, peer);
}

/* A frame of length 0 is a frame: handed over, 4 bytes consumed. */
static void test_empty_frame(void)
{
    uint8_t wire[FRAME_HEADER];
    struct owner o;
    int peer = owner_open(&o);

    make_frame(wire, 0, 0);
    write_all(peer, wire, sizeof(wire));
    spin();
    CHECK_EQ(o.frames, 1);
    CHECK_EQ(o.lens[0], 0);
    CHECK(o.fc.buf == NULL);
    owner_close(&o, peer);
}

/* Raw sends pass bytes unchanged (the relay's whole frames). */
static void test_send_raw(void)
{
    uint8_t wire[FRAME_HEADER + 3], got[sizeof(wire)];
    size_t n = make_frame(wire, 3, 50);
    struct owner o;
    int peer = owner_open(&o);

    CHECK_EQ(frame_conn_send_raw(&o.fc, wire, n), 0);
    spin();
    CHECK_EQ(read(peer, got, sizeof(got)), (ssize_t)n);
    CHECK(memcmp(got, wire, n) == 0);
    CHECK_EQ(o.sent, 0); /* written during the call: nothing was queued */
    /* An empty body (a NULL one) is a frame of length 0. */
    CHECK_EQ(frame_conn_send(&o.fc, NULL, 0), 0);
    spin();
    CHECK_EQ(read(peer, got, sizeof(got)), FRAME_HEADER);
    CHECK_EQ(wire_peek_u32(got), 0);
    CHECK_EQ(o.sent, 0);
    owner_close(&o, peer);
}

/*
 * A peer that has no room: what the socket takes goes at once, the rest
 * of the frame is copied and queued, and a later frame queues behind it
 * (never overtakes it). Each queued copy is cleared once written and
 * reported by on_sent; the peer reads both frames whole, in order.
 */
static void test_queued_rest(void)
{
    enum { BIG = 1024 * 1024 };
    uint8_t *body = malloc(BIG), *sink = malloc(BIG + 2 * FRAME_HEADER + 1);
    size_t want = 2 * FRAME_HEADER + BIG + 1, got = 0, i;
    struct owner o;
    int peer = owner_open(&o), first;
    ssize_t n;

    for (i = 0; i < BIG; i++)
        body[i] = (uint8_t)(i * 7 + 1);
    CHECK_EQ(frame_conn_send(&o.fc, body, BIG), 0);
    CHECK_EQ(frame_conn_writes_pending(&o.fc), 1); /* the socket took part of it */
    /* Room again, before the loop has written the rest: "z" must still wait its turn. */
    while (got < 64 * 1024 && (n = read(peer, sink + got, 64 * 1024 - got)) > 0)
        got += (size_t)n;
    CHECK_EQ(frame_conn_send(&o.fc, (const uint8_t *)"z", 1), 0);
    CHECK_EQ(frame_conn_writes_pending(&o.fc), 2); /* behind the first, not before it */
    nclears = 0;                                   /* record the clears from here on */
    first = 0;
    got = peer_read_until(peer, sink, want, true, got, want);
    spin();
    CHECK_EQ(got, want);
    CHECK_EQ(wire_peek_u32(sink), BIG);
    CHECK(memcmp(sink + FRAME_HEADER, body, BIG) == 0);
    CHECK_EQ(wire_peek_u32(sink + FRAME_HEADER + BIG), 1);
    CHECK_EQ(sink[2 * FRAME_HEADER + BIG], 'z');
    CHECK_EQ(o.sent, 2);
    CHECK_EQ(frame_conn_writes_pending(&o.fc), 0);
    /* Both copies were cleared as they were freed: the rest of the big one, then "z"'s frame. */
    CHECK(nclears - first >= 2);
    CHECK(clears[first].len > 0 && clears[first].len < FRAME_HEADER + BIG);
    CHECK_EQ(clears[first + 1].len, FRAME_HEADER + 1);
    free(body);
    free(sink);
    owner_close(&o, peer);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    test_split_everywhere();
    test_oversize();
    test_queued_rest();
    test_half_close();
    test_slow_reader();
    test_hold();
    test_peer_reset();
    test_idle_release();
    test_empty_frame();
    test_send_raw();
    CHECK_EQ(uv_loop_close(&loop), 0);
    return check_finish("frame_conn");
}
