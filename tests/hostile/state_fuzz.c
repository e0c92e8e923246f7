/*
 * keyward: a stateful, server-level fuzz harness (issue 22).
 *
 *     hostile_state_fuzz AGENT [--relay RELAY] [--seed S] [--rounds N | --round R]
 *                        [--seconds T] [--idle-seconds T] [--debug] [--keep] [--show] [-v]
 *
 * --rounds N (default 20) and --seconds T (counted from the first round)
 * end the run, whichever comes first; --seconds alone runs until the time
 * is up. No --seed: one from the clock, printed. --show prints the plans of
 * the rounds without running them; --debug runs the agent with -d; --keep
 * keeps the work directory of a passing run (a failing one is always kept).
 *
 * The fuzz harnesses in fuzz/ drive the dispatcher (agent_handle()) and
 * never the server, so they cannot find what goes wrong between requests:
 * jobs on worker threads (RSA signatures, the lock's scrypt), confirmation
 * prompts (an askpass child process), replies held back, and clients that
 * pipeline requests and then leave while one of them is out. This program
 * starts the real keyward-agent (and, with --relay, keyward-relay in front
 * of it) and plays such clients against it, round after round, from a seed.
 *
 * Set-up: a private directory with the agent's socket, its log (stderr)
 * and an askpass script whose answer the harness sets per round through a
 * file: approve, deny, hang (never answers), slow (0.2 s, then approves),
 * mixed (each prompt in turn: approve, deny, slow, hang), or missing (the
 * SSH_ASKPASS path, a symlink, is removed, so the agent cannot start it).
 * Keys are generated with libcrypto: two Ed25519, ECDSA P-256, RSA-4096
 * (its signatures go to worker threads) and RSA-2048, and one Ed25519 key
 * that is never added.
 *
 * Each round (its own random stream from seed and round number, so any
 * round can be run alone with --round R) resets the agent over a set-up
 * connection (unlock, remove all, add the five keys with constraints drawn
 * for the round: confirm, a lifetime of 1-3 s; sometimes lock), then opens
 * 1-4 connections that each pipeline 1-12 random requests: list, sign with
 * each key and with the unknown one, add, remove, remove all, lock, unlock
 * (rarely with a wrong passphrase: failed unlocks are delayed), the query
 * and session-bind extensions (valid ones signed with a host key made
 * here, and garbage), an unknown extension, unknown types and malformed
 * bodies, sometimes then a partial frame or a frame over 256 KiB; sign
 * requests for a confirm-constrained key often come back to back, and now
 * and then one connection is a client that sends LIST and LOCK in one
 * write and resets at once. The bytes
 * go out in random splits with small sleeps, and each connection ends at a
 * random point: FIN (shutdown(SHUT_WR), then read everything), RST
 * (SO_LINGER 0, then close, replies possibly unread) or a plain close.
 *
 * Checks, each one a failure that stops the run:
 *   - the agent (and relay) stays alive (waitpid WNOHANG, all the time);
 *   - every reply answers a request already sent, in order, with a type
 *     that request may get (list 12, sign 14 or 5, add/remove/lock 6 or 5,
 *     query 29, session-bind 6 or 28, ...); every signature verifies over
 *     the data of the request it answers;
 *   - the agent never closes a connection the client has not ended (no
 *     FIN, no oversized frame);
 *   - after a FIN, every complete request is answered, except from a sign
 *     request for a confirm-constrained key on (the agent ends a pending
 *     confirmation whose client stopped sending); the connection is then
 *     closed within 20 s. When the askpass may hang, a connection that has
 *     had all replies up to such a request and is quiet for 1.5 s is closed
 *     by the harness, which leaves the prompt to the idle check below;
 *   - once the round's connections are closed, within --idle-seconds (10):
 *     the agent's open fds are back at the baseline taken after a warm-up,
 *     it has no child process (a prompt whose client left is killed), and
 *     the relay's fds are back at its baseline;
 *   - a LOCK that a connection sent after only requests that the agent
 *     answers at once (no job, no prompt, no delay) takes effect however
 *     the connection ended (a client that pipelines LOCK and leaves still
 *     locked the agent), unless an UNLOCK with the right passphrase was sent
 *     in the same round: the agent is locked within 5 s (direct runs only:
 *     a relay may drop what its client sent before its upstream connected);
 *   - at the end a plain list still works, the agent and relay exit with
 *     status 0 on SIGTERM and their logs hold no sanitizer report.
 *
 * On a failure it prints the seed, the round's plan (every connection's
 * requests with their byte ranges, the write splits and sleeps, the end),
 * what came back, the tail of the agent's log and the command that runs
 * that round again. Exit status: 0 pass, 1 a failure found, 2 usage or
 * set-up error.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/request.h"
#include "base/wire.h"
#include "crypto/key.h"
#include "fixture_sock.h"

#define FRAME_MAX WIRE_MAX_MESSAGE
#define MAX_CONNS 4
#define MAX_REQS  12
/* Frames, plus a partial one and the oversized header: at most one chunk per byte group. */
#define MAX_CHUNKS 64
#define RIGHT_PASS "keyward state fuzz lock"
#define WRONG_PASS "not the passphrase"

/* ---- small things ---- */

static const char *progname = "hostile_state_fuzz";
static bool verbose;

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void sleep_us(uint64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void setup_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* splitmix64: one stream per round, from (seed, round). */
struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint32_t rng_below(struct rng *r, uint32_t n)
{
    return n == 0 ? 0 : (uint32_t)(rng_next(r) % n);
}

/* True with probability pct percent. */
static bool rng_pct(struct rng *r, unsigned pct)
{
    return rng_below(r, 100) < pct;
}

/* ---- keys ---- */

enum { SLOT_ED_A, SLOT_ED_B, SLOT_ECDSA, SLOT_RSA4096, SLOT_RSA2048, NSLOTS, SLOT_ABSENT = NSLOTS };

static const char *const slot_names[NSLOTS + 1] = {"ed25519-a", "ed25519-b", "ecdsa256",
                                                   "rsa4096",   "rsa2048",   "absent"};
static struct key *slot_key[NSLOTS + 1];
static struct key *host_key; /* signs session-bind requests */

/* ---- requests ---- */

enum kind {
    K_LIST,
    K_LIST_BAD, /* trailing bytes */
    K_SIGN,
    K_SIGN_ABSENT,
    K_SIGN_BAD, /* truncated */
    K_ADD,
    K_ADD_BAD, /* garbage key */
    K_REMOVE,
    K_REMOVE_ALL,
    K_LOCK,
    K_LOCK_EMPTY,
    K_UNLOCK,
    K_UNLOCK_WRONG,
    K_QUERY,
    K_BIND,
    K_BIND_BAD,
    K_EXT_UNKNOWN,
    K_TYPE_UNKNOWN,
    K_EMPTY, /* a zero-length frame */
    NKINDS
};

static const struct {
    const char *name;
    unsigned weight;
    uint8_t replies[3]; /* the reply types it may get (0: unused) */
    bool instant;       /* always answered at once: no job, prompt or delay */
} kinds[NKINDS] = {
    [K_LIST] = {"LIST", 12, {SSH_AGENT_IDENTITIES_ANSWER}, true},
    [K_LIST_BAD] = {"LIST(trailing byte)", 2, {SSH_AGENT_FAILURE}, true},
    [K_SIGN] = {"SIGN", 30, {SSH_AGENT_SIGN_RESPONSE, SSH_AGENT_FAILURE}, false},
    [K_SIGN_ABSENT] = {"SIGN(absent key)", 3, {SSH_AGENT_FAILURE}, true},
    [K_SIGN_BAD] = {"SIGN(truncated)", 2, {SSH_AGENT_FAILURE}, true},
    [K_ADD] = {"ADD", 8, {SSH_AGENT_SUCCESS, SSH_AGENT_FAILURE}, true},
    [K_ADD_BAD] = {"ADD(garbage key)", 2, {SSH_AGENT_FAILURE}, true},
    [K_REMOVE] = {"REMOVE", 5, {SSH_AGENT_SUCCESS, SSH_AGENT_FAILURE}, true},
    [K_REMOVE_ALL] = {"REMOVE_ALL", 2, {SSH_AGENT_SUCCESS, SSH_AGENT_FAILURE}, true},
    [K_LOCK] = {"LOCK", 5, {SSH_AGENT_SUCCESS, SSH_AGENT_FAILURE}, false},
    [K_LOCK_EMPTY] = {"LOCK(empty passphrase)", 1, {SSH_AGENT_FAILURE}, true},
    [K_UNLOCK] = {"UNLOCK", 5, {SSH_AGENT_SUCCESS, SSH_AGENT_FAILURE}, false},
    [K_UNLOCK_WRONG] = {"UNLOCK(wrong passphrase)", 1, {SSH_AGENT_FAILURE}, false},
    /* Refused while the agent is locked (OpenSSH 10.5+), which another connection may do. */
    [K_QUERY] = {"EXT(query)", 3, {SSH_AGENT_EXTENSION_RESPONSE, SSH_AGENT_FAILURE}, true},
    [K_BIND] = {"EXT(session-bind)", 3, {SSH_AGENT_SUCCESS, SSH_AGENT_EXTENSION_FAILURE}, true},
    [K_BIND_BAD] = {"EXT(session-bind, bad signature)", 2, {SSH_AGENT_EXTENSION_FAILURE}, true},
    [K_EXT_UNKNOWN] = {"EXT(unknown)", 2, {SSH_AGENT_FAILURE}, true},
    [K_TYPE_UNKNOWN] = {"TYPE(unknown)", 2, {SSH_AGENT_FAILURE}, true},
    [K_EMPTY] = {"EMPTY FRAME", 1, {SSH_AGENT_FAILURE}, true},
};

struct req {
    enum kind kind;
    int slot;       /* K_SIGN, K_ADD, K_REMOVE */
    uint32_t flags; /* K_SIGN */
    size_t off;     /* the frame's place in the connection's stream */
    size_t len;     /* header included */
    uint8_t data[40];
    size_t data_len;
};

enum askpass_mode { AP_APPROVE, AP_DENY, AP_HANG, AP_SLOW, AP_MIXED, AP_MISSING, NMODES };
static const char *const mode_names[NMODES] = {"approve", "deny",  "hang",
                                               "slow",    "mixed", "missing"};

enum end_kind { END_FIN, END_RST, END_CLOSE };
static const char *const end_names[] = {"FIN", "RST", "close"};

struct plan_conn {
    struct req reqs[MAX_REQS];
    int nreq;
    struct wire_writer stream;
    size_t frames_end; /* bytes of complete frames */
    bool partial;      /* then part of one more frame */
    bool oversized;    /* then a frame header over the limit */
    size_t chunk[MAX_CHUNKS];
    uint32_t sleep_after_us[MAX_CHUNKS];
    int nchunks;
    uint32_t start_us;
    enum end_kind end;
    int cut; /* RST / close: after this many chunks */
    uint32_t linger_ms;
};

struct plan {
    unsigned round;
    enum askpass_mode mode;
    bool start_locked;
    bool confirm[NSLOTS];
    uint32_t lifetime[NSLOTS];
    int nconn;
    struct plan_conn conn[MAX_CONNS];
};

static bool mode_may_hang(enum askpass_mode m)
{
    return m == AP_HANG || m == AP_MIXED;
}

/* A sign request that needs a confirmation (if its key is still there). */
static bool needs_prompt(const struct plan *p, const struct req *q)
{
    return q->kind == K_SIGN && p->confirm[q->slot];
}

static void put_add(struct wire_writer *w, const struct plan *p, int slot)
{
    bool constrained = p->confirm[slot] || p->lifetime[slot] > 0;

    wire_put_u8(w, constrained ? SSH_AGENTC_ADD_ID_CONSTRAINED : SSH_AGENTC_ADD_IDENTITY);
    if (key_private_serialize(slot_key[slot], w) != 0)
        setup_fail("cannot serialise the %s key", slot_names[slot]);
    wire_put_cstring(w, slot_names[slot]);
    if (p->lifetime[slot] > 0) {
        wire_put_u8(w, SSH_AGENT_CONSTRAIN_LIFETIME);
        wire_put_u32(w, p->lifetime[slot]);
    }
    if (p->confirm[slot])
        wire_put_u8(w, SSH_AGENT_CONSTRAIN_CONFIRM);
}

static void put_lock(struct wire_writer *w, uint8_t type, const char *pass)
{
    wire_put_u8(w, type);
    wire_put_cstring(w, pass);
}

/* The body of request q (round and connection make its signed data unique). */
static void build_body(struct wire_writer *w, const struct plan *p, int ci, int qi, struct req *q,
                       struct rng *r)
{
    struct key *k;

    switch (q->kind) {
    case K_LIST:
        wire_put_u8(w, SSH_AGENTC_REQUEST_IDENTITIES);
        break;
    case K_LIST_BAD:
        wire_put_u8(w, SSH_AGENTC_REQUEST_IDENTITIES);
        wire_put_u8(w, 0);
        break;
    case K_SIGN:
    case K_SIGN_ABSENT:
    case K_SIGN_BAD:
        k = slot_key[q->kind == K_SIGN ? q->slot : q->kind == K_SIGN_ABSENT ? SLOT_ABSENT : 0];
        q->data_len = (size_t)snprintf((char *)q->data, sizeof(q->data), "round %u conn %d req %d",
                                       p->round, ci, qi);
        wire_put_u8(w, SSH_AGENTC_SIGN_REQUEST);
        wire_put_string(w, k->blob, k->blob_len);
        wire_put_string(w, q->data, q->data_len);
        if (q->kind == K_SIGN_BAD)
            break; /* no flags */
        wire_put_u32(w, q->flags);
        break;
    case K_ADD:
        put_add(w, p, q->slot);
        break;
    case K_ADD_BAD:
        wire_put_u8(w, SSH_AGENTC_ADD_IDENTITY);
        wire_put_cstring(w, "ssh-ed25519");
        wire_put_string(w, "short", 5);
        wire_put_string(w, "garbage", 7);
        wire_put_cstring(w, "bad");
        break;
    case K_REMOVE:
        wire_put_u8(w, SSH_AGENTC_REMOVE_IDENTITY);
        wire_put_string(w, slot_key[q->slot]->blob, slot_key[q->slot]->blob_len);
        break;
    case K_REMOVE_ALL:
        wire_put_u8(w, SSH_AGENTC_REMOVE_ALL_IDENTITIES);
        break;
    case K_LOCK:
        put_lock(w, SSH_AGENTC_LOCK, RIGHT_PASS);
        break;
    case K_LOCK_EMPTY:
        put_lock(w, SSH_AGENTC_LOCK, "");
        break;
    case K_UNLOCK:
        put_lock(w, SSH_AGENTC_UNLOCK, RIGHT_PASS);
        break;
    case K_UNLOCK_WRONG:
        put_lock(w, SSH_AGENTC_UNLOCK, WRONG_PASS);
        break;
    case K_QUERY:
        wire_put_u8(w, SSH_AGENTC_EXTENSION);
        wire_put_cstring(w, EXT_QUERY);
        break;
    case K_BIND:
    case K_BIND_BAD: {
        struct wire_writer sig;
        uint8_t sid[32];
        size_t i;

        for (i = 0; i < sizeof(sid); i++)
            sid[i] = (uint8_t)rng_next(r);
        wire_writer_init(&sig);
        if (key_sign(host_key, sid, sizeof(sid), 0, &sig) != 0)
            setup_fail("cannot sign a session id with the host key");
        if (q->kind == K_BIND_BAD)
            sig.buf[sig.len - 1] ^= 0x55;
        wire_put_u8(w, SSH_AGENTC_EXTENSION);
        wire_put_cstring(w, EXT_SESSION_BIND);
        wire_put_string(w, host_key->blob, host_key->blob_len);
        wire_put_string(w, sid, sizeof(sid));
        wire_put_string(w, sig.buf, sig.len);
        wire_put_bool(w, rng_pct(r, 50));
        wire_writer_free(&sig);
        break;
    }
    case K_EXT_UNKNOWN:
        wire_put_u8(w, SSH_AGENTC_EXTENSION);
        wire_put_cstring(w, "no-such-extension@keyward");
        wire_put_string(w, "x", 1);
        break;
    case K_TYPE_UNKNOWN: {
        static const uint8_t types[] = {0, 1, 9, 20, 21, 26, 99, 255};

        wire_put_u8(w, types[rng_below(r, sizeof(types))]);
        break;
    }
    case K_EMPTY:
    case NKINDS:
        break;
    }
}

static enum kind pick_kind(struct rng *r)
{
    unsigned total = 0, x, i;

    for (i = 0; i < NKINDS; i++)
        total += kinds[i].weight;
    x = rng_below(r, total);
    for (i = 0; i < NKINDS; i++) {
        if (x < kinds[i].weight)
            return (enum kind)i;
        x -= kinds[i].weight;
    }
    return K_LIST;
}

/* Slots to sign with: the confirm-heavy ones often, so prompts pile up. */
static int pick_slot(struct rng *r)
{
    static const int slots[] = {SLOT_ED_A,    SLOT_ED_B,    SLOT_ED_B,   SLOT_ECDSA,
                                SLOT_RSA4096, SLOT_RSA4096, SLOT_RSA2048};

    return slots[rng_below(r, sizeof(slots) / sizeof(slots[0]))];
}

static void make_plan(struct plan *p, uint64_t seed, unsigned round, bool relay)
{
    struct rng r = {seed * 0x100000001b3ull ^ ((uint64_t)round << 32 | round)};
    int ci, i;
    unsigned x;

    memset(p, 0, sizeof(*p));
    (void)rng_next(&r);
    p->round = round;
    x = rng_below(&r, 100);
    /* Through a relay a hanging prompt can cost a round 10 s (wait_idle()): fewer of them. */
    if (relay && x >= 45 && x < 58 && rng_pct(&r, 50))
        x = 20;
    p->mode = x < 25   ? AP_APPROVE
              : x < 45 ? AP_DENY
              : x < 58 ? AP_HANG
              : x < 72 ? AP_SLOW
              : x < 85 ? AP_MIXED
                       : AP_MISSING;
    p->start_locked = rng_pct(&r, 12);
    for (i = 0; i < NSLOTS; i++) {
        static const unsigned confirm_pct[NSLOTS] = {10, 70, 20, 15, 50};

        p->confirm[i] = rng_pct(&r, confirm_pct[i]);
        p->lifetime[i] = rng_pct(&r, 15) ? 1 + rng_below(&r, 3) : 0;
    }
    p->nconn = 1 + (int)rng_below(&r, MAX_CONNS);
    for (ci = 0; ci < p->nconn; ci++) {
        struct plan_conn *c = &p->conn[ci];
        struct wire_writer body;
        bool prompt = false;
        size_t total, pos;
        int style;

        wire_writer_init(&c->stream);
        wire_writer_init(&body);
        c->nreq = 1 + (int)rng_below(&r, MAX_REQS);
        for (i = 0; i < c->nreq; i++) {
            struct req *q = &c->reqs[i];

            q->kind = pick_kind(&r);
            q->slot = pick_slot(&r);
            q->flags = rng_pct(&r, 50)   ? KEY_SIGN_RSA_SHA2_512
                       : rng_pct(&r, 50) ? KEY_SIGN_RSA_SHA2_256
                                         : 0;
            /*
             * Prompts back to back: the second waits in the agent's buffer
             * while the first one's askpass ends (and its handle closes).
             */
            if (i > 0 && needs_prompt(p, &c->reqs[i - 1]) && rng_pct(&r, 30)) {
                q->kind = K_SIGN;
                q->slot = c->reqs[i - 1].slot;
            }
            wire_writer_reset(&body);
            build_body(&body, p, ci, i, q, &r);
            q->off = c->stream.len;
            wire_put_string(&c->stream, body.buf, body.len);
            q->len = c->stream.len - q->off;
            prompt |= needs_prompt(p, q);
        }
        wire_writer_free(&body);
        c->frames_end = c->stream.len;
        if (rng_pct(&r, 8)) {
            /* Part of a list request's frame: never completed. */
            static const uint8_t part[] = {0, 0, 0, 9, SSH_AGENTC_REQUEST_IDENTITIES, 0};

            c->partial = true;
            wire_put_bytes(&c->stream, part, 1 + rng_below(&r, sizeof(part) - 1));
        } else if (rng_pct(&r, 8)) {
            uint8_t hdr[4];

            c->oversized = true;
            wire_poke_u32(hdr, FRAME_MAX + 1 + rng_below(&r, 1000));
            wire_put_bytes(&c->stream, hdr, 4);
        }
        if (c->stream.error)
            setup_fail("out of memory building round %u", round);

        /* How the bytes go out. */
        total = c->stream.len;
        style = (int)rng_below(&r, 100);
        pos = 0;
        if (style < 35) {
            c->chunk[c->nchunks++] = total; /* one write */
        } else if (style < 60) {
            for (i = 0; i < c->nreq && c->nchunks < MAX_CHUNKS - 1; i++) {
                c->chunk[c->nchunks++] = c->reqs[i].len; /* a write per frame */
                pos += c->reqs[i].len;
            }
            if (pos < total)
                c->chunk[c->nchunks++] = total - pos;
        } else {
            size_t most = 1 + rng_below(&r, 200);

            while (pos < total) {
                size_t n = 1 + rng_below(&r, (uint32_t)most);

                if (c->nchunks == MAX_CHUNKS - 1 || n > total - pos)
                    n = total - pos;
                c->chunk[c->nchunks++] = n;
                pos += n;
            }
        }
        for (i = 0; i < c->nchunks; i++) {
            x = rng_below(&r, 100);
            c->sleep_after_us[i] = x < 70 ? 0 : x < 95 ? rng_below(&r, 2000) : rng_below(&r, 20000);
        }
        c->start_us = rng_pct(&r, 50) ? 0 : rng_below(&r, 5000);

        /* How the connection ends. */
        x = rng_below(&r, 100);
        c->end = x < 45 ? END_FIN : x < 72 ? END_RST : END_CLOSE;
        /*
         * A relay waits 10 s for the replies owed to a client that sent
         * FIN; a prompt that never answers would make every such
         * connection cost that. Through a relay those end otherwise.
         */
        if (relay && c->end == END_FIN && prompt && mode_may_hang(p->mode))
            c->end = END_RST;
        c->cut = rng_pct(&r, 50) ? c->nchunks : (int)rng_below(&r, (uint32_t)c->nchunks + 1);
        c->linger_ms = rng_pct(&r, 40) ? 0 : rng_below(&r, 30);
    }
    /*
     * Now and then one connection is a client that locks and leaves: a
     * list and a lock in one write, then a reset while the lock's hash is
     * being computed (drawn last, so the rest of the round is as it was).
     */
    if (rng_pct(&r, 10)) {
        struct plan_conn *c = &p->conn[rng_below(&r, (uint32_t)p->nconn)];
        struct wire_writer body;

        p->start_locked = false;
        wire_writer_reset(&c->stream);
        wire_writer_init(&body);
        c->nreq = 2;
        c->reqs[0].kind = K_LIST;
        c->reqs[1].kind = K_LOCK;
        for (i = 0; i < 2; i++) {
            wire_writer_reset(&body);
            build_body(&body, p, (int)(c - p->conn), i, &c->reqs[i], &r);
            c->reqs[i].off = c->stream.len;
            wire_put_string(&c->stream, body.buf, body.len);
            c->reqs[i].len = c->stream.len - c->reqs[i].off;
        }
        wire_writer_free(&body);
        c->frames_end = c->stream.len;
        c->partial = c->oversized = false;
        c->nchunks = 1;
        c->chunk[0] = c->stream.len;
        c->sleep_after_us[0] = 0;
        c->end = END_RST;
        c->cut = 1;
        c->linger_ms = rng_below(&r, 3);
    }
}

static void free_plan(struct plan *p)
{
    int i;

    for (i = 0; i < p->nconn; i++)
        wire_writer_free(&p->conn[i].stream);
}

/* ---- processes and files ---- */

/* dir is a mkdtemp() name under /tmp: short, so every path below fits. */
static char dir[64], agent_sock[96], relay_sock[96], agent_log[96], relay_log[96], askpass_link[96],
    askpass_script[96], mode_file[96];
static const char *agent_path, *relay_path;
static pid_t agent_pid = -1, relay_pid = -1;
static bool debug_log;
static int agent_fds_base, relay_fds_base;
static uint64_t seed;
static double idle_seconds = 10;

static void print_log_tail(const char *what, const char *path, int lines)
{
    char cmd[256];

    printf("# --- last %d lines of the %s log (%s) ---\n", lines, what, path);
    fflush(stdout);
    snprintf(cmd, sizeof(cmd), "tail -n %d '%s' | sed 's/^/#   | /'", lines, path);
    if (system(cmd) != 0)
        printf("#   (cannot read it)\n");
    fflush(stdout);
}

/*
 * Kills what is left of our askpass prompts anywhere (a defect may leave
 * one running, re-parented away from the agent): every process whose
 * environment names our askpass. Ours alone: the path is our work dir's.
 */
static void kill_our_prompts(void)
{
    char want[128];
    struct dirent *de;
    DIR *d;

    snprintf(want, sizeof(want), "SSH_ASKPASS=%s", askpass_link);
    if (askpass_link[0] == '\0' || (d = opendir("/proc")) == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char path[64], env[16384];
        size_t n, i;
        int fd;

        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%.20s/environ", de->d_name);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            continue;
        n = 0;
        for (;;) {
            ssize_t r = read(fd, env + n, sizeof(env) - 1 - n);

            if (r <= 0)
                break;
            n += (size_t)r;
        }
        close(fd);
        env[n] = '\0';
        for (i = 0; i < n; i += strlen(env + i) + 1) {
            if (strcmp(env + i, want) == 0 && atol(de->d_name) != (long)agent_pid &&
                atol(de->d_name) != (long)relay_pid) {
                kill((pid_t)atol(de->d_name), SIGKILL);
                break;
            }
        }
    }
    closedir(d);
}

static void kill_children(void)
{
    int st;

    if (relay_pid > 0) {
        kill(relay_pid, SIGKILL);
        waitpid(relay_pid, &st, 0);
        relay_pid = -1;
    }
    if (agent_pid > 0) {
        kill(agent_pid, SIGKILL);
        waitpid(agent_pid, &st, 0);
        agent_pid = -1;
    }
}

static void setup_fail(const char *fmt, ...)
{
    va_list ap;

    printf("not ok - set-up: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (agent_log[0])
        print_log_tail("agent", agent_log, 30);
    kill_children();
    kill_our_prompts();
    exit(2);
}

static int count_fds(pid_t pid)
{
    char path[64];
    struct dirent *de;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Child processes of pid (scanning /proc for their parent); up to max pids in out. */
static int children_of(pid_t pid, pid_t *out, int max)
{
    struct dirent *de;
    DIR *d;
    int n = 0;

    if ((d = opendir("/proc")) == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        char path[64], buf[512], *p;
        long ppid;
        FILE *f;

        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%.20s/stat", de->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        p = fgets(buf, sizeof(buf), f);
        fclose(f);
        /* "pid (comm) state ppid ...": comm may hold anything, so from the last ')'. */
        if (p == NULL || (p = strrchr(buf, ')')) == NULL || sscanf(p + 2, "%*c %ld", &ppid) != 1)
            continue;
        if (ppid == (long)pid) {
            if (n < max)
                out[n] = (pid_t)atol(de->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    size_t len = strlen(text);

    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        setup_fail("cannot write %s: %s", path, strerror(errno));
    close(fd);
}

static void set_mode(enum askpass_mode m)
{
    char text[32];

    snprintf(text, sizeof(text), "%s\n", m == AP_MISSING ? "deny" : mode_names[m]);
    write_file(mode_file, text, 0600);
    unlink(askpass_link);
    if (m != AP_MISSING && symlink(askpass_script, askpass_link) != 0)
        setup_fail("symlink %s: %s", askpass_link, strerror(errno));
}

static void write_askpass(void)
{
    char text[4096];

    /*
     * The answer comes from the mode file. hang execs sleep, so the prompt
     * is one process, the agent's child. mixed takes each mode in turn,
     * counting the prompts in askpass.count.
     */
    snprintf(text, sizeof(text),
             "#!/bin/sh\n"
             "mode=$(cat '%s/askpass.mode' 2>/dev/null)\n"
             "if [ \"$mode\" = mixed ]; then\n"
             "    echo x >>'%s/askpass.count'\n"
             "    case $(($(wc -l <'%s/askpass.count') %% 4)) in\n"
             "    0) mode=approve ;; 1) mode=deny ;; 2) mode=slow ;; *) mode=hang ;;\n"
             "    esac\n"
             "fi\n"
             "case $mode in\n"
             "approve) exit 0 ;;\n"
             "slow) sleep 0.2; exit 0 ;;\n"
             "hang) exec sleep 3600 ;;\n"
             "*) exit 1 ;;\n"
             "esac\n",
             dir, dir, dir);
    write_file(askpass_script, text, 0700);
}

static pid_t spawn(const char *log, char *const argv[])
{
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    pid_t pid;

    if (logfd < 0)
        setup_fail("cannot open %s: %s", log, strerror(errno));
    if ((pid = fork()) < 0)
        setup_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);

        dup2(null, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        setenv("SSH_ASKPASS", askpass_link, 1);
        setenv("SSH_ASKPASS_REQUIRE", "force", 1);
        setenv("DISPLAY", ":0", 1);
        execv(argv[0], argv);
        fprintf(stderr, "%s: exec %s: %s\n", progname, argv[0], strerror(errno));
        _exit(127);
    }
    close(logfd);
    return pid;
}

/* Describes how a process ended, for reports. */
static void describe_status(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, len, "status 0x%x", st);
}

/* NULL while agent and relay run; else what happened to which (static text). */
static const char *process_gone(void)
{
    static char why[256];
    char how[128];
    int st;

    if (why[0] != '\0')
        return why; /* already reported: stays so */

    if (agent_pid > 0 && waitpid(agent_pid, &st, WNOHANG) == agent_pid) {
        agent_pid = -1;
        describe_status(st, how, sizeof(how));
        snprintf(why, sizeof(why), "the agent died: %s", how);
        return why;
    }
    if (relay_pid > 0 && waitpid(relay_pid, &st, WNOHANG) == relay_pid) {
        relay_pid = -1;
        describe_status(st, how, sizeof(how));
        snprintf(why, sizeof(why), "the relay died: %s", how);
        return why;
    }
    return NULL;
}

static bool wait_socket(const char *path)
{
    uint64_t deadline = now_us() + 20 * 1000000ull;
    int fd;

    while (now_us() < deadline) {
        if (process_gone() != NULL)
            return false;
        if ((fd = fixture_connect(path, 0, 0)) >= 0) {
            close(fd);
            return true;
        }
        sleep_us(20000);
    }
    return false;
}

static void start_processes(void)
{
    char *argv[8];
    int n = 0;

    argv[n++] = (char *)agent_path;
    argv[n++] = debug_log ? "-d" : "-D";
    argv[n++] = "-a";
    argv[n++] = agent_sock;
    argv[n] = NULL;
    agent_pid = spawn(agent_log, argv);
    if (!wait_socket(agent_sock))
        setup_fail("the agent did not start");
    if (relay_path != NULL) {
        n = 0;
        argv[n++] = (char *)relay_path;
        argv[n++] = relay_sock;
        argv[n++] = agent_sock;
        argv[n] = NULL;
        relay_pid = spawn(relay_log, argv);
        if (!wait_socket(relay_sock))
            setup_fail("the relay did not start");
    }
}

/* SIGTERM; the exit status or -1 if it had to be killed. */
static int stop_process(pid_t *pid)
{
    uint64_t deadline = now_us() + 30 * 1000000ull;
    int st;

    if (*pid <= 0)
        return -2;
    kill(*pid, SIGTERM);
    while (now_us() < deadline) {
        if (waitpid(*pid, &st, WNOHANG) == *pid) {
            *pid = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        sleep_us(20000);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, &st, 0);
    *pid = -1;
    return -1;
}

static bool log_has_sanitizer_report(const char *path)
{
    char line[4096];
    bool found = false;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, "ERROR: AddressSanitizer") != NULL ||
                strstr(line, "ERROR: LeakSanitizer") != NULL ||
                strstr(line, "runtime error:") != NULL;
    fclose(f);
    return found;
}

/* ---- simple request / reply, for set-up and probes (tests/fixtures/fixture_sock.h) ---- */

/* One request on fd: the reply's type, or -1 if none came within 20 s. */
static int transact(int fd, const struct wire_writer *body)
{
    return fixture_request(fd, body->buf, body->len, FRAME_MAX, 20 * 1000);
}

/* A request on a new connection to path: the reply type, or -1. */
static int request_on(const char *path, const struct wire_writer *body)
{
    int fd = fixture_connect(path, 0, 0), type;

    if (fd < 0)
        return -1;
    type = transact(fd, body);
    close(fd);
    return type;
}

static int simple(const char *path, uint8_t type, const char *pass)
{
    struct wire_writer w;
    int t;

    wire_writer_init(&w);
    if (pass != NULL)
        put_lock(&w, type, pass);
    else
        wire_put_u8(&w, type);
    t = request_on(path, &w);
    wire_writer_free(&w);
    return t;
}

/* ---- a round ---- */

enum phase { PH_START, PH_WRITING, PH_LINGER, PH_DRAIN, PH_DONE };

struct live {
    int fd;
    enum phase phase;
    int chunk;         /* next chunk to write */
    size_t chunk_done; /* of it, already written */
    size_t written;
    uint64_t next_at; /* when to write the next chunk, close, or give up */
    uint64_t last_rx; /* last reply (or the FIN) */
    uint8_t *rbuf;
    size_t rlen, rcap;
    int replies;
    uint8_t types[MAX_REQS + 8];
    bool eof;        /* the peer closed */
    bool cut_short;  /* the harness stopped waiting (a prompt may hang) */
    const char *how; /* how it ended, for the report */
};

struct round_result {
    char failure[1024];
    struct live live[MAX_CONNS];
};

static void fail(struct round_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct round_result *res, const char *fmt, ...)
{
    va_list ap;

    char what[768];
    const char *gone = NULL;
    int i;

    if (res->failure[0])
        return; /* the first one counts */
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    /*
     * A connection that ends unexpectedly is most often the agent (or
     * relay) dying: then that is the finding, and this its first sign.
     * Its exit may be reported a moment after its sockets closed.
     */
    for (i = 0; i < 15 && (gone = process_gone()) == NULL; i++)
        sleep_us(20000);
    if (gone != NULL && strstr(what, gone) == NULL)
        snprintf(res->failure, sizeof(res->failure), "%s (first seen as: %s)", gone, what);
    else
        snprintf(res->failure, sizeof(res->failure), "%s", what);
}

/* Complete frames written so far on connection c. */
static int frames_written(const struct plan_conn *c, size_t written)
{
    int n = 0;

    while (n < c->nreq && c->reqs[n].off + c->reqs[n].len <= written)
        n++;
    return n;
}

static void req_desc(const struct req *q, char *buf, size_t len)
{
    if (q->kind == K_SIGN)
        snprintf(buf, len, "SIGN(%s%s)", slot_names[q->slot],
                 q->slot >= SLOT_RSA4096 ? (q->flags == KEY_SIGN_RSA_SHA2_512   ? ", sha512"
                                            : q->flags == KEY_SIGN_RSA_SHA2_256 ? ", sha256"
                                                                                : ", sha1")
                                         : "");
    else if (q->kind == K_ADD || q->kind == K_REMOVE)
        snprintf(buf, len, "%s(%s)", kinds[q->kind].name, slot_names[q->slot]);
    else
        snprintf(buf, len, "%s", kinds[q->kind].name);
}

/* Checks one reply (the index-th on connection ci). */
static void check_reply(struct round_result *res, const struct plan *p, int ci, struct live *l,
                        const uint8_t *msg, size_t len)
{
    const struct plan_conn *c = &p->conn[ci];
    int idx = l->replies++, sent = frames_written(c, l->written), i;
    const struct req *q;
    char d[96];
    bool ok = false;

    if (idx < (int)(sizeof(l->types)))
        l->types[idx] = msg[0];
    if (idx >= sent) {
        fail(res, "conn %d: reply %d (type %u) came, but only %d complete request(s) were sent", ci,
             idx, msg[0], sent);
        return;
    }
    q = &c->reqs[idx];
    req_desc(q, d, sizeof(d));
    for (i = 0; i < 3 && kinds[q->kind].replies[i] != 0; i++)
        ok |= kinds[q->kind].replies[i] == msg[0];
    if (!ok) {
        fail(res, "conn %d: request %d %s got a reply of type %u", ci, idx, d, msg[0]);
        return;
    }
    if (msg[0] == SSH_AGENT_SIGN_RESPONSE) {
        struct wire_reader r;
        struct wire_view sig;

        wire_reader_init(&r, msg + 1, len - 1);
        sig = wire_get_string(&r);
        if (wire_reader_finish(&r) != 0 ||
            key_verify(slot_key[q->slot], sig.ptr, sig.len, q->data, q->data_len) != 0)
            fail(res,
                 "conn %d: request %d %s: the signature does not verify over its data (a reply "
                 "to another request?)",
                 ci, idx, d);
    } else if (msg[0] == SSH_AGENT_IDENTITIES_ANSWER) {
        struct wire_reader r;
        uint32_t n, k;

        wire_reader_init(&r, msg + 1, len - 1);
        n = wire_get_u32(&r);
        for (k = 0; k < n && !r.error; k++) {
            (void)wire_get_string(&r);
            (void)wire_get_string(&r);
        }
        if (wire_reader_finish(&r) != 0 || n > NSLOTS)
            fail(res, "conn %d: request %d %s: malformed IDENTITIES_ANSWER (%u keys)", ci, idx, d,
                 n);
    } else if (len != 1 && msg[0] != SSH_AGENT_EXTENSION_RESPONSE) {
        fail(res, "conn %d: request %d %s: reply of type %u has %zu bytes", ci, idx, d, msg[0],
             len);
    }
}

/* Reads what is there; parses complete replies. */
static void conn_read(struct round_result *res, const struct plan *p, int ci, struct live *l)
{
    for (;;) {
        ssize_t n;

        if (l->rcap - l->rlen < 4096) {
            size_t ncap = l->rcap ? l->rcap * 2 : 8192;
            uint8_t *nb = realloc(l->rbuf, ncap);

            if (nb == NULL)
                setup_fail("out of memory");
            l->rbuf = nb;
            l->rcap = ncap;
        }
        n = recv(l->fd, l->rbuf + l->rlen, l->rcap - l->rlen, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            l->eof = true; /* end of stream, or reset */
            break;
        }
        l->rlen += (size_t)n;
        l->last_rx = now_us();
        for (;;) {
            uint32_t len;

            if (l->rlen < 4)
                break;
            len = wire_peek_u32(l->rbuf);
            if (len == 0 || len > FRAME_MAX) {
                fail(res, "conn %d: a reply frame of %u bytes", ci, len);
                l->rlen = 0;
                break;
            }
            if (l->rlen < 4 + (size_t)len)
                break;
            check_reply(res, p, ci, l, l->rbuf + 4, len);
            memmove(l->rbuf, l->rbuf + 4 + len, l->rlen - 4 - len);
            l->rlen -= 4 + len;
        }
    }
}

static void conn_close_now(struct live *l, bool reset, const char *how)
{
    if (l->fd >= 0) {
        if (reset) {
            struct linger lg = {1, 0};

            (void)setsockopt(l->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(l->fd);
        l->fd = -1;
    }
    l->phase = PH_DONE;
    l->how = how;
}

/* The peer closed: is that allowed here, and was everything answered? */
static void conn_eof(struct round_result *res, const struct plan *p, int ci, struct live *l)
{
    const struct plan_conn *c = &p->conn[ci];
    int sent = frames_written(c, l->written);

    if (l->rlen != 0)
        fail(res, "conn %d: the connection ended in the middle of a reply (%zu bytes)", ci,
             l->rlen);
    if (l->phase == PH_DRAIN) {
        /* After our FIN: every complete request answered, up to a prompt. */
        if (l->replies < sent && !needs_prompt(p, &c->reqs[l->replies]) &&
            !(relay_path != NULL && c->oversized)) {
            char d[96];

            req_desc(&c->reqs[l->replies], d, sizeof(d));
            fail(res,
                 "conn %d: after FIN the agent closed with %d of %d requests answered; request "
                 "%d %s got no reply",
                 ci, l->replies, sent, l->replies, d);
        }
        conn_close_now(l, false, "FIN, then closed by the peer");
        return;
    }
    if (!(c->oversized && l->written == c->stream.len))
        fail(res,
             "conn %d: the peer closed the connection before the client ended it (%zu of %zu "
             "bytes sent, %d replies)",
             ci, l->written, c->stream.len, l->replies);
    conn_close_now(l, false, "closed by the peer");
}

/* The client's end: FIN, or RST / close at the cut. */
static void conn_end(const struct plan *p, int ci, struct live *l, uint64_t now)
{
    const struct plan_conn *c = &p->conn[ci];

    if (c->end == END_FIN) {
        if (shutdown(l->fd, SHUT_WR) != 0 && errno != ENOTCONN)
            setup_fail("shutdown: %s", strerror(errno));
        l->phase = PH_DRAIN;
        l->last_rx = now;
        l->next_at = now + 20 * 1000000ull;
    } else {
        l->phase = PH_LINGER;
        l->next_at = now + (uint64_t)c->linger_ms * 1000;
    }
}

/* Writes what is due. */
static void conn_write(struct round_result *res, const struct plan *p, int ci, struct live *l,
                       uint64_t now)
{
    const struct plan_conn *c = &p->conn[ci];

    while (l->phase == PH_WRITING && now >= l->next_at) {
        size_t want, start;
        ssize_t n;

        if (c->end != END_FIN && l->chunk == c->cut) {
            conn_end(p, ci, l, now);
            return;
        }
        if (l->chunk == c->nchunks) {
            conn_end(p, ci, l, now);
            return;
        }
        start = l->written;
        want = c->chunk[l->chunk] - l->chunk_done;
        n = send(l->fd, c->stream.buf + start, want, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return; /* POLLOUT */
        if (n < 0) {
            /* The agent went away from this connection: only allowed after an oversized frame. */
            if (!c->oversized)
                fail(res, "conn %d: write failed after %zu of %zu bytes: %s", ci, l->written,
                     c->stream.len, strerror(errno));
            conn_close_now(l, false, "write failed");
            return;
        }
        l->written += (size_t)n;
        l->chunk_done += (size_t)n;
        if (l->chunk_done == c->chunk[l->chunk]) {
            l->next_at = now + c->sleep_after_us[l->chunk];
            l->chunk++;
            l->chunk_done = 0;
        }
    }
}

/* The index of the first request that waits on a prompt, or -1. */
static int first_prompt(const struct plan *p, int ci, int sent)
{
    int i;

    for (i = 0; i < sent; i++)
        if (needs_prompt(p, &p->conn[ci].reqs[i]))
            return i;
    return -1;
}

static void run_connections(const struct plan *p, struct round_result *res, uint64_t round_start)
{
    const char *target = relay_path != NULL ? relay_sock : agent_sock;
    struct pollfd pfd[MAX_CONNS];
    int ci, active;

    for (ci = 0; ci < p->nconn; ci++) {
        struct live *l = &res->live[ci];

        l->fd = -1;
        l->phase = PH_START;
        l->next_at = round_start + p->conn[ci].start_us;
    }
    for (;;) {
        uint64_t now = now_us(), next = now + 50000;
        const char *gone;
        int timeout;

        if ((gone = process_gone()) != NULL) {
            fail(res, "%s", gone);
            return;
        }
        if (now - round_start > 60 * 1000000ull) {
            fail(res, "the round did not finish within 60 s");
            return;
        }
        active = 0;
        for (ci = 0; ci < p->nconn; ci++) {
            struct live *l = &res->live[ci];
            const struct plan_conn *c = &p->conn[ci];

            if (l->phase == PH_START && now >= l->next_at) {
                if ((l->fd = fixture_connect(target, 0, 0)) < 0) {
                    fail(res, "conn %d: cannot connect: %s", ci, strerror(errno));
                    l->phase = PH_DONE;
                    continue;
                }
                l->phase = PH_WRITING;
            }
            if (l->phase == PH_WRITING)
                conn_write(res, p, ci, l, now);
            if (l->phase == PH_LINGER && now >= l->next_at) {
                conn_read(res, p, ci, l); /* what came, before it is lost */
                conn_close_now(l, c->end == END_RST,
                               c->end == END_RST ? "RST by the client" : "closed by the client");
            }
            if (l->phase == PH_DRAIN) {
                int fp = first_prompt(p, ci, frames_written(c, l->written));

                if (now >= l->next_at) {
                    fail(res, "conn %d: no end of stream within 20 s after FIN (%d of %d replies)",
                         ci, l->replies, frames_written(c, l->written));
                    conn_close_now(l, false, "FIN, no end of stream: given up");
                } else if (mode_may_hang(p->mode) && fp >= 0 && l->replies >= fp &&
                           now - l->last_rx > 1500000) {
                    /* Waiting on a prompt that may never answer: leave it to the idle check. */
                    l->cut_short = true;
                    conn_close_now(l, false, "FIN, quiet 1.5 s waiting on a prompt: closed");
                }
            }
            if (l->phase != PH_DONE && l->phase != PH_START) {
                pfd[active].fd = l->fd;
                pfd[active].events =
                    POLLIN | (l->phase == PH_WRITING && now >= l->next_at ? POLLOUT : 0);
                pfd[active].revents = 0;
                active++;
            }
            if (l->phase != PH_DONE && l->next_at < next)
                next = l->next_at;
        }
        if (active == 0) {
            bool all_done = true;

            for (ci = 0; ci < p->nconn; ci++)
                all_done &= res->live[ci].phase == PH_DONE;
            if (all_done)
                return;
        }
        now = now_us();
        timeout = next > now ? (int)((next - now + 999) / 1000) : 0;
        if (timeout > 50)
            timeout = 50;
        if (active > 0) {
            if (poll(pfd, (nfds_t)active, timeout) < 0 && errno != EINTR)
                setup_fail("poll: %s", strerror(errno));
        } else if (timeout > 0) {
            sleep_us((uint64_t)timeout * 1000);
        }
        for (ci = 0; ci < p->nconn; ci++) {
            struct live *l = &res->live[ci];

            if (l->phase == PH_WRITING || l->phase == PH_LINGER || l->phase == PH_DRAIN) {
                conn_read(res, p, ci, l);
                if (l->eof)
                    conn_eof(res, p, ci, l);
            }
        }
    }
}

/* Waits for the agent (and relay) to be idle again: fds back, no children. */
static bool wait_idle(char *why, size_t len)
{
    /*
     * Through the relay, a client's plain close looks like a FIN: the relay
     * then waits up to 10 s (its DRAIN_TIMEOUT_MS) for the replies owed,
     * which a prompt that never answers does not send, before it closes
     * the upstream connection and the agent ends the prompt.
     */
    double bound = idle_seconds + (relay_path != NULL ? 11 : 0);
    uint64_t deadline = now_us() + (uint64_t)(bound * 1e6);
    pid_t kids[8];
    int nk, fa, fr;

    for (;;) {
        const char *gone = process_gone();

        if (gone != NULL) {
            snprintf(why, len, "%s", gone);
            return false;
        }
        fa = count_fds(agent_pid);
        fr = relay_pid > 0 ? count_fds(relay_pid) : 0;
        nk = children_of(agent_pid, kids, 8);
        if (fa <= agent_fds_base && fr <= relay_fds_base && nk == 0)
            return true;
        if (now_us() > deadline)
            break;
        sleep_us(20000);
    }
    if (nk > 0) {
        char cmd[160], line[256] = "";
        FILE *f;

        snprintf(cmd, sizeof(cmd), "ps -o pid=,stat=,args= -p %ld 2>/dev/null", (long)kids[0]);
        if ((f = popen(cmd, "r")) != NULL) {
            if (fgets(line, sizeof(line), f) == NULL)
                line[0] = '\0';
            line[strcspn(line, "\n")] = '\0';
            pclose(f);
        }
        snprintf(why, len,
                 "%.0f s after the round's connections closed, the agent still has %d child "
                 "process(es) (%s) and %d fds (baseline %d)",
                 bound, nk, line, fa, agent_fds_base);
    } else if (fa > agent_fds_base) {
        snprintf(why, len,
                 "%.0f s after the round's connections closed, the agent holds %d fds (baseline "
                 "%d)",
                 bound, fa, agent_fds_base);
    } else {
        snprintf(why, len,
                 "%.0f s after the round's connections closed, the relay holds %d fds (baseline "
                 "%d)",
                 bound, fr, relay_fds_base);
    }
    return false;
}

/*
 * Did a connection send a LOCK that the agent must act on? One whose frame
 * went out whole after only requests that are answered at once.
 */
static int committed_lock(const struct plan *p, const struct round_result *res, int *conn)
{
    int ci, i;

    for (ci = 0; ci < p->nconn; ci++) {
        const struct plan_conn *c = &p->conn[ci];
        int sent = frames_written(c, res->live[ci].written);

        for (i = 0; i < sent; i++) {
            if (c->reqs[i].kind == K_LOCK) {
                *conn = ci;
                return i;
            }
            if (!kinds[c->reqs[i].kind].instant)
                break;
        }
    }
    return -1;
}

static bool unlock_sent(const struct plan *p, const struct round_result *res)
{
    int ci, i;

    for (ci = 0; ci < p->nconn; ci++)
        for (i = 0; i < frames_written(&p->conn[ci], res->live[ci].written); i++)
            if (p->conn[ci].reqs[i].kind == K_UNLOCK)
                return true;
    return false;
}

static void print_plan(const struct plan *p, const struct round_result *res)
{
    int ci, i;

    printf("#   askpass: %s; agent locked at the start: %s; keys:", mode_names[p->mode],
           p->start_locked ? "yes" : "no");
    for (i = 0; i < NSLOTS; i++) {
        printf(" %s", slot_names[i]);
        if (p->confirm[i] || p->lifetime[i]) {
            printf("[");
            if (p->confirm[i])
                printf("confirm%s", p->lifetime[i] ? "," : "");
            if (p->lifetime[i])
                printf("life=%us", p->lifetime[i]);
            printf("]");
        }
    }
    printf("\n");
    for (ci = 0; ci < p->nconn; ci++) {
        const struct plan_conn *c = &p->conn[ci];
        const struct live *l = res != NULL ? &res->live[ci] : NULL;

        printf("#   conn %d: starts at +%u us; %zu bytes;", ci, c->start_us, c->stream.len);
        if (c->end == END_FIN)
            printf(" ends with FIN after every write\n");
        else
            printf(" ends with %s after write %d of %d, %u ms later\n", end_names[c->end], c->cut,
                   c->nchunks, c->linger_ms);
        for (i = 0; i < c->nreq; i++) {
            char d[96];

            req_desc(&c->reqs[i], d, sizeof(d));
            printf("#     request %2d: bytes [%zu, %zu) %s%s\n", i, c->reqs[i].off,
                   c->reqs[i].off + c->reqs[i].len, d,
                   needs_prompt(p, &c->reqs[i]) ? " (prompts)" : "");
        }
        if (c->partial)
            printf("#     then bytes [%zu, %zu): part of a frame\n", c->frames_end, c->stream.len);
        if (c->oversized)
            printf("#     then bytes [%zu, %zu): a frame header over the 256 KiB limit\n",
                   c->frames_end, c->stream.len);
        printf("#     writes (bytes/sleep us):");
        for (i = 0; i < c->nchunks; i++)
            printf(" %zu/%u", c->chunk[i], c->sleep_after_us[i]);
        printf("\n");
        if (l != NULL) {
            printf("#     result: %zu bytes sent, %d replies (types", l->written, l->replies);
            for (i = 0; i < l->replies && i < (int)sizeof(l->types); i++)
                printf(" %u", l->types[i]);
            printf("), %s\n", l->how ? l->how : "not ended");
        }
    }
}

static void free_live(struct round_result *res, int n)
{
    int ci;

    for (ci = 0; ci < n; ci++) {
        if (res->live[ci].fd >= 0)
            close(res->live[ci].fd);
        res->live[ci].fd = -1;
        free(res->live[ci].rbuf);
        res->live[ci].rbuf = NULL;
    }
}

/* Puts the agent in the round's starting state; false (why set) if it did not comply. */
static bool round_setup(const struct plan *p, char *why, size_t len)
{
    struct wire_writer w;
    int fd, t, i;

    set_mode(p->mode);
    if ((fd = fixture_connect(agent_sock, 0, 0)) < 0) {
        snprintf(why, len, "set-up: cannot connect: %s", strerror(errno));
        return false;
    }
    wire_writer_init(&w);
    put_lock(&w, SSH_AGENTC_UNLOCK, RIGHT_PASS);
    t = transact(fd, &w); /* whether it was locked or not */
    if (t != SSH_AGENT_SUCCESS && t != SSH_AGENT_FAILURE) {
        snprintf(why, len, "set-up: UNLOCK got %d", t);
        goto fail;
    }
    wire_writer_reset(&w);
    wire_put_u8(&w, SSH_AGENTC_REMOVE_ALL_IDENTITIES);
    if ((t = transact(fd, &w)) != SSH_AGENT_SUCCESS) {
        snprintf(why, len, "set-up: REMOVE_ALL got %d", t);
        goto fail;
    }
    for (i = 0; i < NSLOTS; i++) {
        wire_writer_reset(&w);
        put_add(&w, p, i);
        if ((t = transact(fd, &w)) != SSH_AGENT_SUCCESS) {
            snprintf(why, len, "set-up: ADD %s got %d", slot_names[i], t);
            goto fail;
        }
    }
    if (p->start_locked) {
        wire_writer_reset(&w);
        put_lock(&w, SSH_AGENTC_LOCK, RIGHT_PASS);
        if ((t = transact(fd, &w)) != SSH_AGENT_SUCCESS) {
            snprintf(why, len, "set-up: LOCK got %d", t);
            goto fail;
        }
    }
    wire_writer_free(&w);
    close(fd);
    return true;
fail:
    wire_writer_free(&w);
    close(fd);
    return false;
}

/* One round; true if it passed. */
static bool run_round(unsigned round)
{
    struct plan p;
    struct round_result *res = calloc(1, sizeof(*res));
    uint64_t t0 = now_us();
    char why[512];
    int lock_conn = -1, lock_req, reqs = 0, ci;
    bool ok;

    if (res == NULL)
        setup_fail("out of memory");
    make_plan(&p, seed, round, relay_path != NULL);
    for (ci = 0; ci < p.nconn; ci++)
        reqs += p.conn[ci].nreq;
    /*
     * A LOCK job of the round before (its client gone) may still be on a
     * worker thread and lock the agent in the middle of the set-up: then
     * the set-up is tried again, a little later.
     */
    for (ci = 0; ci < 3 && !round_setup(&p, why, sizeof(why)) && process_gone() == NULL; ci++)
        sleep_us(500000);
    if (ci == 3 || process_gone() != NULL) {
        const char *gone = process_gone();

        fail(res, "%s%s%s", why, gone ? "; " : "", gone ? gone : "");
    } else {
        run_connections(&p, res, now_us());
    }
    free_live(res, p.nconn);
    if (!res->failure[0] && !wait_idle(why, sizeof(why)))
        fail(res, "%s", why);
    /* The lock a client sent must have happened. */
    lock_req = committed_lock(&p, res, &lock_conn);
    if (!res->failure[0]) {
        bool expect_locked = relay_path == NULL && lock_req >= 0 && !unlock_sent(&p, res);
        uint64_t deadline = now_us() + 5 * 1000000ull;
        int t;

        for (;;) {
            t = simple(agent_sock, SSH_AGENTC_UNLOCK, RIGHT_PASS);
            if (t == SSH_AGENT_SUCCESS || !expect_locked || now_us() > deadline)
                break;
            sleep_us(100000);
        }
        if (t != SSH_AGENT_SUCCESS && t != SSH_AGENT_FAILURE)
            fail(res, "UNLOCK after the round got %d%s", t, process_gone() ? " (agent gone)" : "");
        else if (expect_locked && t != SSH_AGENT_SUCCESS)
            fail(res,
                 "conn %d sent LOCK (request %d) after only requests answered at once, and no "
                 "UNLOCK was sent, but the agent is not locked 5 s after the round",
                 lock_conn, lock_req);
    }
    ok = res->failure[0] == '\0';
    if (ok) {
        if (verbose)
            printf("ok - round %u: askpass %s, %d connection(s), %d requests (%.0f ms)\n", round,
                   mode_names[p.mode], p.nconn, reqs, (double)(now_us() - t0) / 1e3);
    } else {
        printf("not ok - round %u: %s\n", round, res->failure);
        printf("# seed %llu, round %u; the round's plan:\n", (unsigned long long)seed, round);
        print_plan(&p, res);
    }
    fflush(stdout);
    free_plan(&p);
    free(res);
    return ok;
}

/* ---- main ---- */

static void warm_up(void)
{
    struct plan p;
    struct wire_writer w;
    int fd, t;

    /*
     * Everything the agent opens once and keeps (libuv's signal pipe for
     * child processes, its thread pool) is opened before the fd baseline.
     */
    memset(&p, 0, sizeof(p));
    p.confirm[SLOT_ED_B] = true;
    set_mode(AP_APPROVE);
    if ((fd = fixture_connect(agent_sock, 0, 0)) < 0)
        setup_fail("warm-up: cannot connect");
    wire_writer_init(&w);
    put_add(&w, &p, SLOT_ED_B);
    if ((t = transact(fd, &w)) != SSH_AGENT_SUCCESS)
        setup_fail("warm-up: add got %d", t);
    wire_writer_reset(&w);
    put_add(&w, &p, SLOT_RSA4096);
    if ((t = transact(fd, &w)) != SSH_AGENT_SUCCESS)
        setup_fail("warm-up: add got %d", t);
    wire_writer_reset(&w);
    wire_put_u8(&w, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&w, slot_key[SLOT_ED_B]->blob, slot_key[SLOT_ED_B]->blob_len);
    wire_put_string(&w, "warm", 4);
    wire_put_u32(&w, 0);
    if ((t = transact(fd, &w)) != SSH_AGENT_SIGN_RESPONSE)
        setup_fail("warm-up: a confirmed sign got %d (is the askpass run?)", t);
    wire_writer_reset(&w);
    wire_put_u8(&w, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&w, slot_key[SLOT_RSA4096]->blob, slot_key[SLOT_RSA4096]->blob_len);
    wire_put_string(&w, "warm", 4);
    wire_put_u32(&w, KEY_SIGN_RSA_SHA2_512);
    if ((t = transact(fd, &w)) != SSH_AGENT_SIGN_RESPONSE)
        setup_fail("warm-up: an RSA sign got %d", t);
    wire_writer_reset(&w);
    put_lock(&w, SSH_AGENTC_LOCK, RIGHT_PASS);
    if ((t = transact(fd, &w)) != SSH_AGENT_SUCCESS)
        setup_fail("warm-up: LOCK got %d", t);
    wire_writer_reset(&w);
    put_lock(&w, SSH_AGENTC_UNLOCK, RIGHT_PASS);
    if ((t = transact(fd, &w)) != SSH_AGENT_SUCCESS)
        setup_fail("warm-up: UNLOCK got %d", t);
    wire_writer_reset(&w);
    wire_put_u8(&w, SSH_AGENTC_REMOVE_ALL_IDENTITIES);
    if ((t = transact(fd, &w)) != SSH_AGENT_SUCCESS)
        setup_fail("warm-up: REMOVE_ALL got %d", t);
    wire_writer_free(&w);
    close(fd);
    if (relay_path != NULL &&
        simple(relay_sock, SSH_AGENTC_REQUEST_IDENTITIES, NULL) != SSH_AGENT_IDENTITIES_ANSWER)
        setup_fail("warm-up: a list through the relay failed");
    /* Closing is asynchronous: the baseline is what it settles at. */
    sleep_us(300000);
    agent_fds_base = count_fds(agent_pid);
    relay_fds_base = relay_pid > 0 ? count_fds(relay_pid) : 0;
    if (agent_fds_base < 0)
        setup_fail("cannot count the agent's fds in /proc/%ld/fd", (long)agent_pid);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s AGENT [--relay RELAY] [--seed S] [--rounds N | --round R] [--seconds T]\n"
            "          [--idle-seconds T] [--debug] [--keep] [--show] [-v]\n",
            progname);
    exit(2);
}

static void remove_dir(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "%s: cannot remove %s\n", progname, dir);
}

int main(int argc, char **argv)
{
    unsigned rounds = 20, first = 0, round, ran = 0;
    bool one_round = false, keep = false, show = false, seed_given = false, rounds_given = false,
         ok = true;
    double seconds = 0;
    uint64_t t0 = now_us();
    const char *failure = NULL;
    char reproduce[PATH_MAX * 3] = "";
    int i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2)
        usage();
    agent_path = argv[1];
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--relay") == 0 && v != NULL) {
            relay_path = v;
            i++;
        } else if (strcmp(a, "--seed") == 0 && v != NULL) {
            seed = strtoull(v, NULL, 0);
            seed_given = true;
            i++;
        } else if (strcmp(a, "--rounds") == 0 && v != NULL) {
            rounds = (unsigned)strtoul(v, NULL, 0);
            rounds_given = true;
            i++;
        } else if (strcmp(a, "--round") == 0 && v != NULL) {
            first = (unsigned)strtoul(v, NULL, 0);
            one_round = true;
            i++;
        } else if (strcmp(a, "--seconds") == 0 && v != NULL) {
            seconds = atof(v);
            i++;
        } else if (strcmp(a, "--idle-seconds") == 0 && v != NULL) {
            idle_seconds = atof(v);
            i++;
        } else if (strcmp(a, "--debug") == 0) {
            debug_log = true;
        } else if (strcmp(a, "--show") == 0) {
            show = true;
        } else if (strcmp(a, "--keep") == 0) {
            keep = true;
        } else if (strcmp(a, "-v") == 0) {
            verbose = true;
        } else {
            usage();
        }
    }
    if (!seed_given) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid()) %
               1000000000u;
    }
    if (access(agent_path, X_OK) != 0 || (relay_path != NULL && access(relay_path, X_OK) != 0))
        usage();

    {
        static const struct {
            enum key_kind kind;
            unsigned bits;
        } gen[NSLOTS + 1] = {{KEY_ED25519, 0}, {KEY_ED25519, 0}, {KEY_ECDSA_P256, 0},
                             {KEY_RSA, 4096},  {KEY_RSA, 2048},  {KEY_ED25519, 0}};

        for (i = 0; i <= NSLOTS; i++)
            if (key_generate(gen[i].kind, gen[i].bits, &slot_key[i]) != 0)
                setup_fail("cannot generate the %s key", slot_names[i]);
        if (key_generate(KEY_ED25519, 0, &host_key) != 0)
            setup_fail("cannot generate the host key");
    }
    if (show) {
        /* The plan of --round R (or of the first --rounds), without running it. */
        for (round = first; round < first + (one_round ? 1 : rounds); round++) {
            struct plan p;

            make_plan(&p, seed, round, relay_path != NULL);
            printf("# seed %llu, round %u:\n", (unsigned long long)seed, round);
            print_plan(&p, NULL);
            free_plan(&p);
        }
        return 0;
    }
    snprintf(dir, sizeof(dir), "/tmp/kw-state-XXXXXX");
    if (mkdtemp(dir) == NULL)
        setup_fail("mkdtemp: %s", strerror(errno));
    snprintf(agent_sock, sizeof(agent_sock), "%s/agent.sock", dir);
    snprintf(relay_sock, sizeof(relay_sock), "%s/relay.sock", dir);
    snprintf(agent_log, sizeof(agent_log), "%s/agent.log", dir);
    snprintf(relay_log, sizeof(relay_log), "%s/relay.log", dir);
    snprintf(askpass_link, sizeof(askpass_link), "%s/askpass", dir);
    snprintf(askpass_script, sizeof(askpass_script), "%s/askpass.sh", dir);
    snprintf(mode_file, sizeof(mode_file), "%s/askpass.mode", dir);
    write_askpass();

    printf("# %s: seed %llu, %s%s, agent %s, work dir %s\n", progname, (unsigned long long)seed,
           relay_path ? "through the relay " : "direct", relay_path ? relay_path : "", agent_path,
           dir);
    start_processes();
    warm_up();
    /* --seconds counts rounds only: key generation and start-up vary with the load. */
    t0 = now_us();
    printf("# baseline: agent pid %ld with %d fds", (long)agent_pid, agent_fds_base);
    if (relay_pid > 0)
        printf(", relay pid %ld with %d fds", (long)relay_pid, relay_fds_base);
    printf("\n");

    for (round = first;; round++) {
        if (one_round && round != first)
            break;
        /* --rounds, --seconds, or both: whichever ends first. */
        if (!one_round && (seconds <= 0 || rounds_given) && round >= first + rounds)
            break;
        if (!one_round && seconds > 0 && (double)(now_us() - t0) / 1e6 >= seconds)
            break;
        ran++;
        if (!run_round(round)) {
            ok = false;
            snprintf(reproduce, sizeof(reproduce), "%s %s%s%s --seed %llu --round %u", argv[0],
                     agent_path, relay_path ? " --relay " : "", relay_path ? relay_path : "",
                     (unsigned long long)seed, round);
            break;
        }
    }

    if (ok) {
        /* A plain list still works, directly and through the relay. */
        if (simple(agent_sock, SSH_AGENTC_REQUEST_IDENTITIES, NULL) != SSH_AGENT_IDENTITIES_ANSWER)
            failure = "a plain list failed at the end";
        else if (relay_path != NULL && simple(relay_sock, SSH_AGENTC_REQUEST_IDENTITIES, NULL) !=
                                           SSH_AGENT_IDENTITIES_ANSWER)
            failure = "a plain list through the relay failed at the end";
        if (failure != NULL) {
            ok = false;
            printf("not ok - %s\n", failure);
        }
    }
    if (agent_pid > 0 || relay_pid > 0 || ok) {
        int rs = stop_process(&relay_pid), as = stop_process(&agent_pid);

        if (ok && relay_path != NULL && rs != 0) {
            ok = false;
            printf("not ok - the relay's exit status on SIGTERM is %d, not 0\n", rs);
        }
        if (ok && as != 0) {
            ok = false;
            printf("not ok - the agent's exit status on SIGTERM is %d, not 0\n", as);
        }
    }
    kill_our_prompts(); /* the agent and relay are stopped by now */
    if (log_has_sanitizer_report(agent_log)) {
        printf("not ok - the agent's log holds a sanitizer report\n");
        if (ok)
            print_log_tail("agent", agent_log, 60);
        ok = false;
    }
    if (relay_path != NULL && log_has_sanitizer_report(relay_log)) {
        printf("not ok - the relay's log holds a sanitizer report\n");
        print_log_tail("relay", relay_log, 60);
        ok = false;
    }
    if (!ok) {
        print_log_tail("agent", agent_log, 40);
        if (relay_path != NULL)
            print_log_tail("relay", relay_log, 20);
        if (reproduce[0] != '\0' && !ok && failure == NULL)
            printf("# reproduce: %s\n", reproduce);
        printf("# FAIL seed %llu after %u round(s), %.1f s; logs kept in %s\n",
               (unsigned long long)seed, ran, (double)(now_us() - t0) / 1e6, dir);
    } else {
        printf("ok - %u round(s) from seed %llu, %.1f s%s\n", ran, (unsigned long long)seed,
               (double)(now_us() - t0) / 1e6, relay_path ? ", through the relay" : "");
        if (!keep)
            remove_dir();
    }
    for (i = 0; i <= NSLOTS; i++)
        key_free(slot_key[i]);
    key_free(host_key);
    return ok ? 0 : 1;
}
