/*
 * keyward: agent_soak, the driver behind `make soak` (issue 20, item 5).
 *
 * bench/soak.sh starts keyward-agent on its own socket, loads a login key
 * and a certificate with ssh-add, starts a private sshd, and runs this
 * program against that agent for a fixed time. Here:
 *
 *   - worker threads each send a mix of requests at a steady rate: list;
 *     sign with every key type (Ed25519, ECDSA P-256/384/521, RSA-2048/4096,
 *     the certificate); sign with a key added with the confirm constraint
 *     (the agent's askpass approves); add, sign with and remove a key of
 *     their own; malformed frames (each answered FAILURE, the connection
 *     then used again); oversized frames (closed, on a connection of their
 *     own); and clients that vanish mid-request;
 *   - a lock thread locks the agent now and then, checks that list answers
 *     an empty list and that sign and add fail while locked, and unlocks;
 *     the workers pause meanwhile (a read-write lock), so that every reply
 *     has one expected value;
 *   - a forwarding thread runs a shell command (bench/soak.sh gives it:
 *     `ssh -A` to the sshd, then ssh-add -l and a second login from the
 *     "node" through the forwarded agent) now and then; it must exit 0;
 *   - the main thread samples the agent's RSS and threads (/proc/PID/status)
 *     and open fds (/proc/PID/fd) each second, with the replies of that
 *     second.
 *
 * Pass: every request got its expected reply (counted per kind; a reply
 * that is another one is "unexpected", none within the timeout or a closed
 * connection is "unanswered"), the agent still runs, and the least-squares
 * slopes of RSS, fds and threads over the samples after the warm-up are
 * under the thresholds. It writes the samples (for gnuplot) and a JSON
 * result; the exit status is 0 on pass, 1 on fail, 2 on a usage or set-up
 * error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "base/wire.h"
#include "crypto/key.h"
#include "fixture_sock.h"
#include "proto/msg.h"

#define MAX_REPLY      WIRE_MAX_MESSAGE
#define DATA_LEN       64
#define MAX_WORKERS    16
#define MAX_SAMPLES    (24 * 3600)
#define LOCK_PASSWORD  "soak-lock-passphrase"
#define OVERSIZED_LEN  (WIRE_MAX_MESSAGE + 1)
#define RECONNECT_EACH 250 /* a worker's requests per connection, for churn */

static struct {
    const char *sock;
    pid_t pid;
    double seconds;
    double warmup;
    int workers;
    double rate; /* operations per second, per worker */
    double lock_every;
    double forward_every;
    const char *forward_cmd;
    const char *data_out;
    const char *json_out;
    int timeout_ms;
    double rss_slope_max;    /* KiB per second */
    double fd_slope_max;     /* fds per second */
    double thread_slope_max; /* threads per second */
} opt = {
    .seconds = 600,
    .warmup = -1,
    .workers = 3,
    .rate = 20,
    .lock_every = 10,
    .forward_every = 5,
    .timeout_ms = 15000,
    /*
     * 4 KiB/s is 14 MiB an hour. A steady agent shows about 1 KiB/s over
     * the 45 s a 60 s run judges (the heap still settling), and well under
     * that over ten minutes; a leak of one 64-byte block per request at the
     * default ~70 replies/s is already 4.4 KiB/s.
     */
    .rss_slope_max = 4.0,
    /* One fd leaked per minute is 0.017/s; a steady agent shows 0. */
    .fd_slope_max = 0.01,
    .thread_slope_max = 0.01,
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("agent_soak: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    struct timespec ts;
    double d = t - mono_s();

    if (d <= 0)
        return;
    ts.tv_sec = (time_t)d;
    ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- what was sent, and what came back, per kind ---- */

enum kind {
    K_LIST,
    K_SIGN_ED25519,
    K_SIGN_P256,
    K_SIGN_P384,
    K_SIGN_P521,
    K_SIGN_RSA2048,
    K_SIGN_RSA4096,
    K_SIGN_CERT,
    K_SIGN_CONFIRM,
    K_ADD,
    K_SIGN_ADDED,
    K_REMOVE,
    K_MALFORMED,
    K_AFTER_MALFORMED,
    K_OVERSIZED,
    K_VANISH,
    K_LOCK,
    K_LOCKED_LIST,
    K_LOCKED_SIGN,
    K_LOCKED_ADD,
    K_UNLOCK,
    K_FORWARD,
    K_COUNT
};

static const struct {
    const char *name;
    const char *expect; /* the reply that counts as answered */
} kinds[K_COUNT] = {
    [K_LIST] = {"list", "IDENTITIES_ANSWER"},
    [K_SIGN_ED25519] = {"sign-ed25519", "SIGN_RESPONSE, verified"},
    [K_SIGN_P256] = {"sign-ecdsa-p256", "SIGN_RESPONSE, verified"},
    [K_SIGN_P384] = {"sign-ecdsa-p384", "SIGN_RESPONSE, verified"},
    [K_SIGN_P521] = {"sign-ecdsa-p521", "SIGN_RESPONSE, verified"},
    [K_SIGN_RSA2048] = {"sign-rsa-2048", "SIGN_RESPONSE, verified"},
    [K_SIGN_RSA4096] = {"sign-rsa-4096", "SIGN_RESPONSE, verified"},
    [K_SIGN_CERT] = {"sign-certificate", "SIGN_RESPONSE, verified"},
    [K_SIGN_CONFIRM] = {"sign-confirm", "SIGN_RESPONSE after the askpass approved"},
    [K_ADD] = {"add", "SUCCESS"},
    [K_SIGN_ADDED] = {"sign-added", "SIGN_RESPONSE, verified"},
    [K_REMOVE] = {"remove", "SUCCESS"},
    [K_MALFORMED] = {"malformed", "FAILURE"},
    [K_AFTER_MALFORMED] = {"list-after-malformed", "IDENTITIES_ANSWER on the same connection"},
    [K_OVERSIZED] = {"oversized", "connection closed, no reply"},
    [K_VANISH] = {"vanish", "none (the client closed mid-request)"},
    [K_LOCK] = {"lock", "SUCCESS"},
    [K_LOCKED_LIST] = {"locked-list", "IDENTITIES_ANSWER with no keys"},
    [K_LOCKED_SIGN] = {"locked-sign", "FAILURE"},
    [K_LOCKED_ADD] = {"locked-add", "FAILURE"},
    [K_UNLOCK] = {"unlock", "SUCCESS"},
    [K_FORWARD] = {"forwarded-session", "ssh -A, ssh-add -l and a login from the node: exit 0"},
};

static struct {
    atomic_ulong sent, answered, unexpected, unanswered;
} counts[K_COUNT];

/* Replies of any kind, for the requests/s curve. */
static atomic_ulong replies_total;
static atomic_bool stopping;

/* The first few unexpected outcomes, printed at the end. */
static pthread_mutex_t note_mu = PTHREAD_MUTEX_INITIALIZER;
static int notes_printed;

static void outcome_note(enum kind k, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void outcome_note(enum kind k, const char *what, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&note_mu);
    if (notes_printed++ < 20) {
        fprintf(stderr, "agent_soak: %s: %s: ", kinds[k].name, what);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    pthread_mutex_unlock(&note_mu);
}

static void sent(enum kind k)
{
    atomic_fetch_add(&counts[k].sent, 1);
}

static void answered(enum kind k)
{
    atomic_fetch_add(&counts[k].answered, 1);
    atomic_fetch_add(&replies_total, 1);
}

static void unexpected(enum kind k, int type)
{
    atomic_fetch_add(&counts[k].unexpected, 1);
    atomic_fetch_add(&replies_total, 1);
    outcome_note(k, "unexpected reply", "type %d, expected %s", type, kinds[k].expect);
}

static void unanswered(enum kind k, const char *why)
{
    atomic_fetch_add(&counts[k].unanswered, 1);
    outcome_note(k, "unanswered", "%s", why);
}

/* ---- keys and request frames ---- */

struct skey {
    enum kind kind;
    struct key *key; /* public (and private for the ones made here) */
    uint32_t flags;
};

/* The keys every worker signs with: made here, except the certificate. */
static struct skey sign_keys[] = {
    {K_SIGN_ED25519, NULL, 0},
    {K_SIGN_P256, NULL, 0},
    {K_SIGN_P384, NULL, 0},
    {K_SIGN_P521, NULL, 0},
    {K_SIGN_RSA2048, NULL, KEY_SIGN_RSA_SHA2_512},
    {K_SIGN_RSA4096, NULL, KEY_SIGN_RSA_SHA2_256},
    {K_SIGN_CERT, NULL, 0}, /* from the agent's list: bench/soak.sh added it */
};
#define NSIGN_KEYS (sizeof(sign_keys) / sizeof(sign_keys[0]))
static struct key *confirm_key;

static uint8_t sign_data[DATA_LEN];

/* body, built by w; exits on failure, as nothing can run without it. */
static void built(struct wire_writer *w)
{
    if (w->error != 0)
        die("cannot build a request (error %d)", w->error);
}

static void add_body(struct wire_writer *w, const struct key *k, const char *comment, bool confirm)
{
    wire_put_u8(w, confirm ? SSH_AGENTC_ADD_ID_CONSTRAINED : SSH_AGENTC_ADD_IDENTITY);
    if (key_private_serialize(k, w) != 0)
        die("cannot serialise a private key");
    wire_put_cstring(w, comment);
    if (confirm)
        wire_put_u8(w, SSH_AGENT_CONSTRAIN_CONFIRM);
    built(w);
}

static void sign_body(struct wire_writer *w, const struct key *k, uint32_t flags)
{
    wire_put_u8(w, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(w, k->blob, k->blob_len);
    wire_put_string(w, sign_data, sizeof(sign_data));
    wire_put_u32(w, flags);
    built(w);
}

/*
 * One request on fd: its reply's type (the body in *reply, to free, when
 * asked for), or -1 with the reason in *why.
 */
static int request(int fd, const struct wire_writer *w, uint8_t **reply, size_t *reply_len,
                   const char **why)
{
    uint8_t *body = NULL;
    size_t len = 0;
    int type;

    if (!fixture_send_frame(fd, w->buf, w->len)) {
        *why = "send failed (connection closed?)";
        return -1;
    }
    switch (fixture_recv_frame(fd, MAX_REPLY, opt.timeout_ms, &body, &len)) {
    case FIXTURE_READ_DONE:
        break;
    case FIXTURE_READ_EOF:
        *why = "the agent closed the connection";
        return -1;
    case FIXTURE_READ_TIMEOUT:
        *why = "no reply within the timeout";
        return -1;
    default:
        *why = "read error or a bad frame";
        return -1;
    }
    type = body[0];
    if (reply != NULL) {
        *reply = body;
        *reply_len = len;
    } else {
        free(body);
    }
    return type;
}

/* Sends w on *fd as kind k and checks that the reply's type is want. */
static bool expect_type(int *fd, enum kind k, const struct wire_writer *w, int want)
{
    const char *why = NULL;
    int type;

    sent(k);
    type = request(*fd, w, NULL, NULL, &why);
    if (type < 0) {
        unanswered(k, why);
        /* The connection is of no use any more: a fresh one goes on. */
        close(*fd);
        *fd = -1;
        return false;
    }
    if (type != want) {
        unexpected(k, type);
        return false;
    }
    answered(k);
    return true;
}

/* A SIGN_RESPONSE whose signature verifies with k over sign_data. */
static void expect_signature(int *fd, enum kind k, const struct key *key, uint32_t flags)
{
    struct wire_writer w;
    struct wire_reader r;
    struct wire_view sig;
    const char *why = NULL;
    uint8_t *reply = NULL;
    size_t len = 0;
    int type;

    wire_writer_init(&w);
    sign_body(&w, key, flags);
    sent(k);
    type = request(*fd, &w, &reply, &len, &why);
    wire_writer_free(&w);
    if (type < 0) {
        unanswered(k, why);
        close(*fd);
        *fd = -1;
        return;
    }
    if (type != SSH_AGENT_SIGN_RESPONSE) {
        unexpected(k, type);
        goto out;
    }
    wire_reader_init(&r, reply + 1, len - 1);
    sig = wire_get_string(&r);
    if (wire_reader_finish(&r) != 0 ||
        key_verify(key, sig.ptr, sig.len, sign_data, sizeof(sign_data)) != 0) {
        atomic_fetch_add(&counts[k].unexpected, 1);
        atomic_fetch_add(&replies_total, 1);
        outcome_note(k, "bad signature", "the signature does not verify");
        goto out;
    }
    answered(k);
out:
    free(reply);
}

/* The number of keys in an IDENTITIES_ANSWER, or -1 if it does not parse. */
static long identities_count(const uint8_t *reply, size_t len)
{
    struct wire_reader r;
    uint32_t n, i;

    wire_reader_init(&r, reply + 1, len - 1);
    n = wire_get_u32(&r);
    for (i = 0; i < n && r.error == 0; i++) {
        (void)wire_get_string(&r);
        (void)wire_get_string(&r);
    }
    return wire_reader_finish(&r) == 0 ? (long)n : -1;
}

static int connect_agent(void)
{
    return fixture_connect(opt.sock, opt.timeout_ms, opt.timeout_ms);
}

/* ---- the state lock: lock/unlock and forwarded sessions against the rest ---- */

static pthread_rwlock_t state_lock;

/* ---- workers ---- */

struct worker {
    pthread_t thread;
    int id;
    unsigned seed;
    struct key *own; /* added, signed with and removed again */
    int fd;
    unsigned ops;
};

static void op_list(struct worker *wk)
{
    struct wire_writer w;

    wire_writer_init(&w);
    wire_put_u8(&w, SSH_AGENTC_REQUEST_IDENTITIES);
    built(&w);
    (void)expect_type(&wk->fd, K_LIST, &w, SSH_AGENT_IDENTITIES_ANSWER);
    wire_writer_free(&w);
}

static void op_sign(struct worker *wk)
{
    const struct skey *s = &sign_keys[(unsigned)rand_r(&wk->seed) % NSIGN_KEYS];

    expect_signature(&wk->fd, s->kind, s->key, s->flags);
}

static void op_add_sign_remove(struct worker *wk)
{
    struct wire_writer w;
    char comment[64];

    snprintf(comment, sizeof(comment), "soak-worker-%d", wk->id);
    wire_writer_init(&w);
    add_body(&w, wk->own, comment, false);
    if (!expect_type(&wk->fd, K_ADD, &w, SSH_AGENT_SUCCESS))
        goto out;
    expect_signature(&wk->fd, K_SIGN_ADDED, wk->own, 0);
    if (wk->fd < 0)
        goto out;
    wire_writer_reset(&w);
    wire_put_u8(&w, SSH_AGENTC_REMOVE_IDENTITY);
    wire_put_string(&w, wk->own->blob, wk->own->blob_len);
    built(&w);
    (void)expect_type(&wk->fd, K_REMOVE, &w, SSH_AGENT_SUCCESS);
out:
    /* The private key went through this writer. */
    wire_writer_free(&w);
}

/* A malformed request on the worker's connection, then a list on it. */
static void op_malformed(struct worker *wk)
{
    struct wire_writer w;
    uint8_t junk[32];

    RAND_bytes(junk, sizeof(junk));
    wire_writer_init(&w);
    switch (rand_r(&wk->seed) % 4) {
    case 0: /* a message type nobody defined */
        wire_put_u8(&w, 0xf0);
        wire_put_bytes(&w, junk, sizeof(junk));
        break;
    case 1: /* a sign request whose key blob runs past the frame */
        wire_put_u8(&w, SSH_AGENTC_SIGN_REQUEST);
        wire_put_u32(&w, 4096);
        wire_put_bytes(&w, junk, sizeof(junk));
        break;
    case 2: /* a list request with bytes after it */
        wire_put_u8(&w, SSH_AGENTC_REQUEST_IDENTITIES);
        wire_put_bytes(&w, junk, sizeof(junk));
        break;
    default: /* an add whose key type is garbage */
        wire_put_u8(&w, SSH_AGENTC_ADD_IDENTITY);
        wire_put_string(&w, junk, sizeof(junk));
        wire_put_bytes(&w, junk, sizeof(junk));
        break;
    }
    built(&w);
    if (expect_type(&wk->fd, K_MALFORMED, &w, SSH_AGENT_FAILURE)) {
        /* The core rule: a failed request leaves the connection open. */
        wire_writer_reset(&w);
        wire_put_u8(&w, SSH_AGENTC_REQUEST_IDENTITIES);
        built(&w);
        (void)expect_type(&wk->fd, K_AFTER_MALFORMED, &w, SSH_AGENT_IDENTITIES_ANSWER);
    }
    wire_writer_free(&w);
}

/* A frame over the limit, on a connection of its own: the agent closes it. */
static void op_oversized(struct worker *wk)
{
    uint8_t buf[4096];
    uint8_t *body = NULL;
    size_t len = 0;
    int fd;

    sent(K_OVERSIZED);
    if ((fd = connect_agent()) < 0) {
        unanswered(K_OVERSIZED, "cannot connect");
        return;
    }
    memset(buf, 0x41, sizeof(buf));
    wire_poke_u32(buf, OVERSIZED_LEN);
    /* The agent may close before all of it is written: that is its answer. */
    (void)fixture_write_all(fd, buf, sizeof(buf));
    switch (fixture_recv_frame(fd, MAX_REPLY, opt.timeout_ms, &body, &len)) {
    case FIXTURE_READ_EOF:
        answered(K_OVERSIZED);
        break;
    case FIXTURE_READ_DONE:
        unexpected(K_OVERSIZED, body[0]);
        free(body);
        break;
    case FIXTURE_READ_TIMEOUT:
        unanswered(K_OVERSIZED, "the connection stayed open, unanswered");
        break;
    default:
        unanswered(K_OVERSIZED, "read error");
        break;
    }
    close(fd);
}

/*
 * A client that goes away mid-request, on a connection of its own: after a
 * whole RSA-4096 sign request (the agent signs for nobody), after half a
 * length field, or after part of a body. Nothing to read; the fd and thread
 * samples show whether the agent let go of it.
 */
static void op_vanish(struct worker *wk)
{
    struct wire_writer w;
    uint8_t hdr[4];
    int fd;

    sent(K_VANISH);
    if ((fd = connect_agent()) < 0) {
        unanswered(K_VANISH, "cannot connect");
        return;
    }
    wire_writer_init(&w);
    switch (rand_r(&wk->seed) % 3) {
    case 0:
        sign_body(&w, sign_keys[5].key, KEY_SIGN_RSA_SHA2_256);
        (void)fixture_send_frame(fd, w.buf, w.len);
        break;
    case 1:
        wire_poke_u32(hdr, 100);
        (void)fixture_write_all(fd, hdr, 2);
        break;
    default:
        sign_body(&w, sign_keys[0].key, 0);
        wire_poke_u32(hdr, (uint32_t)w.len);
        (void)fixture_write_all(fd, hdr, sizeof(hdr));
        (void)fixture_write_all(fd, w.buf, w.len / 2);
        break;
    }
    wire_writer_free(&w);
    close(fd);
    answered(K_VANISH);
}

static void op_confirm(struct worker *wk)
{
    expect_signature(&wk->fd, K_SIGN_CONFIRM, confirm_key, 0);
}

static void *worker_main(void *p)
{
    struct worker *wk = p;
    double next = mono_s(), period = 1.0 / opt.rate;
    unsigned r;

    wk->fd = -1;
    while (!atomic_load(&stopping)) {
        next += period;
        sleep_until(next);
        if (wk->fd < 0 || wk->ops % RECONNECT_EACH == 0) {
            if (wk->fd >= 0)
                close(wk->fd);
            if ((wk->fd = connect_agent()) < 0) {
                sent(K_LIST);
                unanswered(K_LIST, "cannot connect");
                continue;
            }
        }
        wk->ops++;
        pthread_rwlock_rdlock(&state_lock);
        /* Shares of the mix, in per cent. */
        r = (unsigned)rand_r(&wk->seed) % 100;
        if (r < 30)
            op_list(wk);
        else if (r < 70)
            op_sign(wk);
        else if (r < 72)
            op_confirm(wk);
        else if (r < 80)
            op_add_sign_remove(wk);
        else if (r < 88)
            op_malformed(wk);
        else if (r < 91)
            op_oversized(wk);
        else
            op_vanish(wk);
        pthread_rwlock_unlock(&state_lock);
    }
    if (wk->fd >= 0)
        close(wk->fd);
    return NULL;
}

/* ---- lock and unlock ---- */

static void lock_cycle(void)
{
    struct wire_writer w;
    uint8_t *reply = NULL;
    size_t len = 0;
    const char *why = NULL;
    int fd, type;
    long n;

    if ((fd = connect_agent()) < 0) {
        sent(K_LOCK);
        unanswered(K_LOCK, "cannot connect");
        return;
    }
    wire_writer_init(&w);
    wire_put_u8(&w, SSH_AGENTC_LOCK);
    wire_put_cstring(&w, LOCK_PASSWORD);
    built(&w);
    if (!expect_type(&fd, K_LOCK, &w, SSH_AGENT_SUCCESS))
        goto out;

    wire_writer_reset(&w);
    wire_put_u8(&w, SSH_AGENTC_REQUEST_IDENTITIES);
    built(&w);
    sent(K_LOCKED_LIST);
    type = request(fd, &w, &reply, &len, &why);
    if (type < 0) {
        unanswered(K_LOCKED_LIST, why);
        goto out;
    }
    n = type == SSH_AGENT_IDENTITIES_ANSWER ? identities_count(reply, len) : -1;
    if (n != 0)
        unexpected(K_LOCKED_LIST, type);
    else
        answered(K_LOCKED_LIST);

    wire_writer_reset(&w);
    sign_body(&w, sign_keys[0].key, 0);
    if (!expect_type(&fd, K_LOCKED_SIGN, &w, SSH_AGENT_FAILURE) && fd < 0)
        goto out;
    wire_writer_reset(&w);
    add_body(&w, sign_keys[0].key, "soak-while-locked", false);
    if (!expect_type(&fd, K_LOCKED_ADD, &w, SSH_AGENT_FAILURE) && fd < 0)
        goto out;
    wire_writer_reset(&w);
    wire_put_u8(&w, SSH_AGENTC_UNLOCK);
    wire_put_cstring(&w, LOCK_PASSWORD);
    built(&w);
    (void)expect_type(&fd, K_UNLOCK, &w, SSH_AGENT_SUCCESS);
out:
    free(reply);
    wire_writer_free(&w);
    if (fd >= 0)
        close(fd);
}

/* Something done now and then, alone (the lock) or beside the workers. */
struct periodic {
    double first, every;
    bool alone;
    void (*run)(void);
};

static void *periodic_main(void *p)
{
    const struct periodic *job = p;
    double next = mono_s() + job->first;

    while (!atomic_load(&stopping)) {
        sleep_until(next);
        next += job->every;
        if (atomic_load(&stopping))
            break;
        if (job->alone)
            pthread_rwlock_wrlock(&state_lock);
        else
            pthread_rwlock_rdlock(&state_lock);
        job->run();
        pthread_rwlock_unlock(&state_lock);
    }
    return NULL;
}

/* ---- forwarded sessions ---- */

static void forward_once(void)
{
    double deadline;
    pid_t child, got;
    int status = 0;

    sent(K_FORWARD);
    child = fork();
    if (child < 0) {
        unanswered(K_FORWARD, "fork failed");
        return;
    }
    if (child == 0) {
        execl("/bin/sh", "sh", "-c", opt.forward_cmd, (char *)NULL);
        _exit(127);
    }
    deadline = mono_s() + opt.timeout_ms / 1000.0 * 2;
    while ((got = waitpid(child, &status, WNOHANG)) == 0 && mono_s() < deadline)
        sleep_until(mono_s() + 0.02);
    if (got == 0) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
        unanswered(K_FORWARD, "the session did not end in time");
        return;
    }
    if (got < 0) {
        unanswered(K_FORWARD, "waitpid failed");
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        answered(K_FORWARD);
        return;
    }
    atomic_fetch_add(&counts[K_FORWARD].unexpected, 1);
    outcome_note(K_FORWARD, "failed", "exit status %d",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* ---- the agent's resources, from /proc ---- */

struct sample {
    double t;
    long rss_kb;
    long fds;
    long threads;
    double rps;
};

static struct sample *samples;
static size_t nsamples;

/* A "Name:   123 kB" field of /proc/PID/status, or -1. */
static long status_field(const char *name)
{
    char path[64], line[256];
    size_t n = strlen(name);
    long v = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)opt.pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static long open_fds(void)
{
    char path[64];
    struct dirent *e;
    long n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%ld/fd", (long)opt.pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Least-squares slope of y over t for the samples at or after from. */
static double slope(size_t from, int which)
{
    double st = 0, sy = 0, stt = 0, sty = 0, n = 0, y, d;
    size_t i;

    for (i = from; i < nsamples; i++) {
        y = which == 0   ? (double)samples[i].rss_kb
            : which == 1 ? (double)samples[i].fds
                         : (double)samples[i].threads;
        st += samples[i].t;
        sy += y;
        stt += samples[i].t * samples[i].t;
        sty += samples[i].t * y;
        n++;
    }
    d = n * stt - st * st;
    return n < 3 || d == 0 ? 0 : (n * sty - st * sy) / d;
}

/* ---- set-up ---- */

static void make_keys(void)
{
    static const struct {
        enum key_kind kind;
        unsigned bits;
    } gen[] = {
        {KEY_ED25519, 0},    {KEY_ECDSA_P256, 0}, {KEY_ECDSA_P384, 0},
        {KEY_ECDSA_P521, 0}, {KEY_RSA, 2048},     {KEY_RSA, 4096},
    };
    struct wire_writer w;
    uint8_t *reply = NULL;
    struct wire_reader r;
    const char *why = NULL;
    size_t i, len = 0;
    int fd, type;
    uint32_t n;

    RAND_bytes(sign_data, sizeof(sign_data));
    if ((fd = connect_agent()) < 0)
        die("cannot connect to %s: %s", opt.sock, strerror(errno));
    wire_writer_init(&w);
    for (i = 0; i < sizeof(gen) / sizeof(gen[0]); i++) {
        if (key_generate(gen[i].kind, gen[i].bits, &sign_keys[i].key) != 0)
            die("cannot generate the %s key", kinds[sign_keys[i].kind].name);
        wire_writer_reset(&w);
        add_body(&w, sign_keys[i].key, kinds[sign_keys[i].kind].name, false);
        if (request(fd, &w, NULL, NULL, &why) != SSH_AGENT_SUCCESS)
            die("the agent did not add the %s key", kinds[sign_keys[i].kind].name);
    }
    if (key_generate(KEY_ED25519, 0, &confirm_key) != 0)
        die("cannot generate the confirm key");
    wire_writer_reset(&w);
    add_body(&w, confirm_key, "soak-confirm", true);
    if (request(fd, &w, NULL, NULL, &why) != SSH_AGENT_SUCCESS)
        die("the agent did not add the confirm key");

    /* The certificate: the first one the agent lists. */
    wire_writer_reset(&w);
    wire_put_u8(&w, SSH_AGENTC_REQUEST_IDENTITIES);
    built(&w);
    type = request(fd, &w, &reply, &len, &why);
    if (type != SSH_AGENT_IDENTITIES_ANSWER)
        die("cannot list the agent's keys");
    wire_reader_init(&r, reply + 1, len - 1);
    n = wire_get_u32(&r);
    for (i = 0; i < n && r.error == 0; i++) {
        struct wire_view blob = wire_get_string(&r);
        struct key *k = NULL;

        (void)wire_get_string(&r);
        if (r.error == 0 && key_from_blob(blob.ptr, blob.len, &k) == 0) {
            if (k->is_cert && sign_keys[6].key == NULL)
                sign_keys[6].key = k;
            else
                key_free(k);
        }
    }
    free(reply);
    wire_writer_free(&w);
    close(fd);
    if (sign_keys[6].key == NULL)
        die("the agent holds no certificate (bench/soak.sh adds one with ssh-add)");
}

/* ---- results ---- */

static bool counts_clean(enum kind k)
{
    return atomic_load(&counts[k].unexpected) == 0 && atomic_load(&counts[k].unanswered) == 0 &&
           atomic_load(&counts[k].answered) == atomic_load(&counts[k].sent);
}

static void write_json(const char *path, double slopes[3], bool pass, bool alive, size_t from,
                       long hwm_kb, double elapsed)
{
    static const char *names[3] = {"rss_kib", "fds", "threads"};
    double max[3] = {opt.rss_slope_max, opt.fd_slope_max, opt.thread_slope_max};
    FILE *f;
    size_t i;
    int k;

    if ((f = fopen(path, "w")) == NULL)
        die("cannot write %s: %s", path, strerror(errno));
    fprintf(f, "{\n  \"pass\": %s,\n  \"agent_alive_at_end\": %s,\n", pass ? "true" : "false",
            alive ? "true" : "false");
    fprintf(f,
            "  \"seconds\": %.1f,\n  \"warmup_seconds\": %.1f,\n  \"workers\": %d,\n"
            "  \"rate_per_worker\": %.1f,\n  \"lock_every\": %.1f,\n  \"forward_every\": %.1f,\n"
            "  \"timeout_ms\": %d,\n  \"agent_vmhwm_kib\": %ld,\n",
            elapsed, opt.warmup, opt.workers, opt.rate, opt.lock_every, opt.forward_every,
            opt.timeout_ms, hwm_kb);
    fprintf(f, "  \"slopes_per_second\": {");
    for (k = 0; k < 3; k++)
        fprintf(f, "%s\n    \"%s\": {\"slope\": %.6f, \"max\": %.6f, \"flat\": %s}", k ? "," : "",
                names[k], slopes[k], max[k], slopes[k] <= max[k] ? "true" : "false");
    fprintf(f, "\n  },\n  \"samples_after_warmup\": %zu,\n  \"requests\": {", nsamples - from);
    for (k = 0; k < K_COUNT; k++)
        fprintf(f,
                "%s\n    \"%s\": {\"expected\": \"%s\", \"sent\": %lu, \"answered\": %lu, "
                "\"unexpected\": %lu, \"unanswered\": %lu}",
                k ? "," : "", kinds[k].name, kinds[k].expect, atomic_load(&counts[k].sent),
                atomic_load(&counts[k].answered), atomic_load(&counts[k].unexpected),
                atomic_load(&counts[k].unanswered));
    fprintf(f, "\n  },\n  \"samples\": [");
    for (i = 0; i < nsamples; i++)
        fprintf(f,
                "%s\n    {\"t\": %.1f, \"rss_kib\": %ld, \"fds\": %ld, \"threads\": %ld, "
                "\"replies_per_s\": %.1f}",
                i ? "," : "", samples[i].t, samples[i].rss_kb, samples[i].fds, samples[i].threads,
                samples[i].rps);
    fprintf(f, "\n  ]\n}\n");
    if (fclose(f) != 0)
        die("cannot write %s", path);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: agent_soak --socket PATH --pid PID --seconds N --data FILE --json FILE\n"
            "                  [--warmup S] [--workers N] [--rate OPS_PER_S] [--lock-every S]\n"
            "                  [--forward-every S --forward-cmd CMD] [--timeout-ms MS]\n"
            "                  [--rss-slope-max KIB_PER_S] [--fd-slope-max N] "
            "[--thread-slope-max N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"pid", required_argument, NULL, 'p'},
        {"seconds", required_argument, NULL, 'n'},
        {"warmup", required_argument, NULL, 'w'},
        {"workers", required_argument, NULL, 'W'},
        {"rate", required_argument, NULL, 'r'},
        {"lock-every", required_argument, NULL, 'l'},
        {"forward-every", required_argument, NULL, 'f'},
        {"forward-cmd", required_argument, NULL, 'c'},
        {"data", required_argument, NULL, 'd'},
        {"json", required_argument, NULL, 'j'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"rss-slope-max", required_argument, NULL, 'R'},
        {"fd-slope-max", required_argument, NULL, 'F'},
        {"thread-slope-max", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    struct worker workers[MAX_WORKERS];
    pthread_t locker, forwarder;
    struct periodic locking, forwarding;
    pthread_rwlockattr_t rwa;
    double start, next, t, slopes[3];
    unsigned long prev_replies = 0, cur;
    bool pass = true, alive;
    size_t from;
    FILE *data;
    long hwm = 0;
    int c, i, k;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            opt.sock = optarg;
            break;
        case 'p':
            opt.pid = (pid_t)atol(optarg);
            break;
        case 'n':
            opt.seconds = atof(optarg);
            break;
        case 'w':
            opt.warmup = atof(optarg);
            break;
        case 'W':
            opt.workers = atoi(optarg);
            break;
        case 'r':
            opt.rate = atof(optarg);
            break;
        case 'l':
            opt.lock_every = atof(optarg);
            break;
        case 'f':
            opt.forward_every = atof(optarg);
            break;
        case 'c':
            opt.forward_cmd = optarg;
            break;
        case 'd':
            opt.data_out = optarg;
            break;
        case 'j':
            opt.json_out = optarg;
            break;
        case 't':
            opt.timeout_ms = atoi(optarg);
            break;
        case 'R':
            opt.rss_slope_max = atof(optarg);
            break;
        case 'F':
            opt.fd_slope_max = atof(optarg);
            break;
        case 'T':
            opt.thread_slope_max = atof(optarg);
            break;
        default:
            usage();
        }
    }
    if (opt.sock == NULL || opt.pid <= 0 || opt.data_out == NULL || opt.json_out == NULL ||
        opt.seconds < 10 || opt.seconds > MAX_SAMPLES || opt.workers < 1 ||
        opt.workers > MAX_WORKERS || opt.rate <= 0 || opt.lock_every <= 0 ||
        opt.forward_every <= 0 || opt.timeout_ms <= 0)
        usage();
    /* A quarter of the run, between 10 s and a minute: the heap and caches settle. */
    if (opt.warmup < 0)
        opt.warmup = opt.seconds / 4 < 10 ? 10 : opt.seconds / 4 > 60 ? 60 : opt.seconds / 4;
    if (opt.warmup > opt.seconds - 5)
        die("the warm-up must leave samples to judge");
    if (kill(opt.pid, 0) != 0)
        die("no process %ld", (long)opt.pid);
    signal(SIGPIPE, SIG_IGN);
    if ((samples = calloc((size_t)opt.seconds + 2, sizeof(*samples))) == NULL)
        die("out of memory");
    if ((data = fopen(opt.data_out, "w")) == NULL)
        die("cannot write %s: %s", opt.data_out, strerror(errno));
    fprintf(data, "# t_s rss_kib fds threads replies_per_s\n");

    make_keys();

    pthread_rwlockattr_init(&rwa);
    /* Without it, the workers' steady read locks could keep the locker out for ever. */
    pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&state_lock, &rwa);

    for (i = 0; i < opt.workers; i++) {
        static const enum key_kind own[] = {KEY_ED25519, KEY_ECDSA_P256, KEY_RSA};
        enum key_kind kk = own[i % 3];

        memset(&workers[i], 0, sizeof(workers[i]));
        workers[i].id = i;
        workers[i].seed = (unsigned)(i * 7919 + 17);
        if (key_generate(kk, kk == KEY_RSA ? 2048 : 0, &workers[i].own) != 0)
            die("cannot generate a worker's key");
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
            die("cannot start a worker");
    }
    locking = (struct periodic){opt.lock_every / 2, opt.lock_every, true, lock_cycle};
    /* A session logs in with a key of the agent's: never while it is locked. */
    forwarding = (struct periodic){1, opt.forward_every, false, forward_once};
    if (pthread_create(&locker, NULL, periodic_main, &locking) != 0)
        die("cannot start the lock thread");
    if (opt.forward_cmd != NULL &&
        pthread_create(&forwarder, NULL, periodic_main, &forwarding) != 0)
        die("cannot start the forwarding thread");

    fprintf(stderr,
            "agent_soak: %.0f s against pid %ld, %d workers at %.0f operations/s each, lock "
            "every %.0f s, forwarded session every %.0f s%s, warm-up %.0f s\n",
            opt.seconds, (long)opt.pid, opt.workers, opt.rate, opt.lock_every, opt.forward_every,
            opt.forward_cmd ? "" : " (none: no --forward-cmd)", opt.warmup);
    start = next = mono_s();
    for (;;) {
        long fds = -1, threads = -1, v;

        /*
         * fds and threads: the least of ten looks over the second. A client
         * in flight holds an fd for a moment; one the agent leaked holds it
         * in every look, so the minimum drops the noise and keeps the leak.
         */
        for (i = 0; i < 10; i++) {
            next += 0.1;
            sleep_until(next);
            if ((v = open_fds()) >= 0 && (fds < 0 || v < fds))
                fds = v;
            if ((v = status_field("Threads")) >= 0 && (threads < 0 || v < threads))
                threads = v;
        }
        t = mono_s() - start;
        if (kill(opt.pid, 0) != 0) {
            fprintf(stderr, "agent_soak: the agent exited at %.0f s\n", t);
            break;
        }
        cur = atomic_load(&replies_total);
        samples[nsamples] = (struct sample){
            .t = t,
            .rss_kb = status_field("VmRSS"),
            .fds = fds,
            .threads = threads,
            .rps = (double)(cur - prev_replies),
        };
        prev_replies = cur;
        hwm = status_field("VmHWM");
        fprintf(data, "%.1f %ld %ld %ld %.0f\n", samples[nsamples].t, samples[nsamples].rss_kb,
                samples[nsamples].fds, samples[nsamples].threads, samples[nsamples].rps);
        fflush(data);
        if ((int)t % 30 == 0)
            fprintf(stderr, "agent_soak: %4.0f s  rss %ld KiB  fds %ld  threads %ld  %.0f/s\n", t,
                    samples[nsamples].rss_kb, samples[nsamples].fds, samples[nsamples].threads,
                    samples[nsamples].rps);
        nsamples++;
        if (t >= opt.seconds || nsamples >= (size_t)opt.seconds + 1)
            break;
    }
    atomic_store(&stopping, true);
    for (i = 0; i < opt.workers; i++)
        pthread_join(workers[i].thread, NULL);
    pthread_join(locker, NULL);
    if (opt.forward_cmd != NULL)
        pthread_join(forwarder, NULL);
    fclose(data);
    alive = kill(opt.pid, 0) == 0;

    for (from = 0; from < nsamples && samples[from].t < opt.warmup; from++)
        ;
    for (k = 0; k < 3; k++)
        if ((slopes[k] = slope(from, k)) == 0)
            slopes[k] = 0; /* not -0 in the report */

    /* The verdict, and a table of it. */
    printf("%-22s %-44s %9s %9s %6s %6s\n", "kind", "expected reply", "sent", "answered", "unexp",
           "unansw");
    for (k = 0; k < K_COUNT; k++) {
        bool ok = counts_clean((enum kind)k);

        /* A kind the mix never reached proves nothing: a soak that short fails. */
        if (atomic_load(&counts[k].sent) == 0 && (k != K_FORWARD || opt.forward_cmd != NULL))
            ok = false;
        printf("%-22s %-44s %9lu %9lu %6lu %6lu%s\n", kinds[k].name, kinds[k].expect,
               atomic_load(&counts[k].sent), atomic_load(&counts[k].answered),
               atomic_load(&counts[k].unexpected), atomic_load(&counts[k].unanswered),
               ok ? "" : "  FAIL");
        pass = pass && ok;
    }
    printf("slopes after the %.0f s warm-up (%zu samples, least squares):\n", opt.warmup,
           nsamples - from);
    printf("  rss     %+9.3f KiB/s  (max %.3f)%s\n", slopes[0], opt.rss_slope_max,
           slopes[0] <= opt.rss_slope_max ? "" : "  FAIL");
    printf("  fds     %+9.4f /s     (max %.4f)%s\n", slopes[1], opt.fd_slope_max,
           slopes[1] <= opt.fd_slope_max ? "" : "  FAIL");
    printf("  threads %+9.4f /s     (max %.4f)%s\n", slopes[2], opt.thread_slope_max,
           slopes[2] <= opt.thread_slope_max ? "" : "  FAIL");
    pass = pass && slopes[0] <= opt.rss_slope_max && slopes[1] <= opt.fd_slope_max &&
           slopes[2] <= opt.thread_slope_max;
    if (!alive)
        printf("the agent is not running any more: FAIL\n");
    if (t < opt.seconds - 1) {
        printf("the run ended early (%.0f of %.0f s): FAIL\n", t, opt.seconds);
        pass = false;
    }
    pass = pass && alive && nsamples - from >= 3;
    write_json(opt.json_out, slopes, pass, alive, from, hwm, t);
    printf("soak: %s\n", pass ? "PASS" : "FAIL");

    for (i = 0; i < opt.workers; i++)
        key_free(workers[i].own);
    for (k = 0; k < (int)NSIGN_KEYS; k++)
        key_free(sign_keys[k].key);
    key_free(confirm_key);
    free(samples);
    return pass ? 0 : 1;
}
