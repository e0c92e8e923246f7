/*
 * keyward hostile-client tests: the client side of the tests/hostile scripts.
 *
 * Each subcommand plays one kind of misbehaving (or merely curious) client
 * against an agent's socket and prints what happened as "name=value"
 * lines for the script to judge; it exits 0 when it could do its part and
 * the agent answered what had to be answered, 1 otherwise, 2 on usage
 * errors.
 *
 *   replay SOCK CORPUS_DIR KEYS_DIR
 *       every corpus case on its own connection, then a list request on a
 *       fresh one; restores the keys (and unlocks) after cases that changed
 *       them
 *   list SOCK                       one list request; keys=N us=T
 *   slowloris SOCK N SAMPLES        N half-sent frames, timing lists before and during
 *   bigframe SOCK                   frames of 256 KiB + 1 and of exactly 256 KiB
 *   fdexhaust SOCK PID              connections until the agent runs out of fds
 *   sign SOCK PUBFILE [FLAGS [HANGUP_MS | halfclose]]
 *                                   a sign request; with HANGUP_MS, hang up
 *                                   that long after sending instead of reading;
 *                                   with halfclose, shut down our sending side
 *                                   and then read the reply
 *   add SOCK KEYFILE LIFETIME COMMENT_LEN
 *                                   add an OpenSSH key file's key with a comment
 *                                   of COMMENT_LEN x's (and a lifetime unless 0)
 *   pipeline SOCK N oversized|halfclose [TYPE | PUBFILE]
 *                                   N list requests in one write, then a frame
 *                                   over the limit, or our sending side shut
 *                                   down; counts the replies. With TYPE (a
 *                                   number), N requests of that type instead;
 *                                   with PUBFILE, a sign request for that key
 *                                   after the N lists (last= names the type
 *                                   of the last reply)
 *   memscan PID KEYFILE...          search the agent's memory for private key bytes
 *   cpu SOCK PID N GAP_US IDLE_MS   N list round trips on one connection, GAP_US
 *                                   apart (0: back to back), then IDLE_MS of
 *                                   silence; the agent's CPU time in each part
 *   attack MODE WAIT_SOCK -- CMD... start CMD as our child, then attack it:
 *                                   MODE mem (read /proc/PID/mem), ptrace
 *                                   (PTRACE_ATTACH) or gdb (exec gdb -p)
 *
 * Everything is bounded by timeouts, so a hung agent fails a test rather
 * than hanging it.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/request.h"
#include "base/wire.h"
#include "fixture_sock.h"
#include "keyfile.h"

#define FRAME_MAX WIRE_MAX_MESSAGE
/* A reply may be held back by the failed-unlock delay (at most 10 s). */
#define REPLY_TIMEOUT_MS 15000

static const char *progname = "hostile_client";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- socket I/O (tests/fixtures/fixture_sock.h) ---- */

/*
 * A connected socket, or -1 with errno set. An agent that stops reading must
 * fail the test, not hang it: sends give up after REPLY_TIMEOUT_MS.
 */
static int agent_connect(const char *path)
{
    return fixture_connect(path, REPLY_TIMEOUT_MS, 0);
}

/* Reads one reply frame into msg: 1, or 0 end of stream, -1 timeout, -2 error (fixture_read). */
static int read_frame(int fd, struct wire_writer *msg, int timeout_ms)
{
    uint8_t *body;
    size_t len;
    int r;

    wire_writer_reset(msg);
    if ((r = fixture_recv_frame(fd, FRAME_MAX, timeout_ms, &body, &len)) == FIXTURE_READ_DONE) {
        wire_put_bytes(msg, body, len);
        free(body);
    }
    return r;
}

static const char *read_result(int r)
{
    return r == 0 ? "connection closed" : r == -1 ? "timed out" : "read error";
}

/*
 * A list request on a fresh connection. Returns the number of keys, or -1
 * with why set; *blobs (if not NULL) gets the listed blobs, each as a string.
 */
static long list_keys(const char *sock, int timeout_ms, struct wire_writer *blobs, const char **why)
{
    static const uint8_t req = SSH_AGENTC_REQUEST_IDENTITIES;
    struct wire_writer msg;
    struct wire_reader r;
    uint32_t n, i;
    long result = -1;
    int fd, rr;

    *why = NULL;
    if ((fd = agent_connect(sock)) < 0) {
        *why = "cannot connect";
        return -1;
    }
    wire_writer_init(&msg);
    if (!fixture_send_frame(fd, &req, 1)) {
        *why = "cannot send";
        goto out;
    }
    if ((rr = read_frame(fd, &msg, timeout_ms)) != 1) {
        *why = read_result(rr);
        goto out;
    }
    wire_reader_init(&r, msg.buf, msg.len);
    if (wire_get_u8(&r) != SSH_AGENT_IDENTITIES_ANSWER) {
        *why = "answer is not IDENTITIES_ANSWER";
        goto out;
    }
    n = wire_get_u32(&r);
    for (i = 0; i < n && !r.error; i++) {
        struct wire_view blob = wire_get_string(&r);

        (void)wire_get_string(&r); /* comment */
        if (blobs != NULL && !r.error)
            wire_put_view(blobs, blob);
    }
    if (wire_reader_finish(&r) != 0) {
        *why = "malformed IDENTITIES_ANSWER";
        goto out;
    }
    result = n;
out:
    wire_writer_free(&msg);
    close(fd);
    return result;
}

/* ---- list ---- */

static int cmd_list(int argc, char **argv)
{
    const char *why;
    uint64_t t0;
    long n;

    if (argc != 1)
        return 2;
    t0 = now_us();
    n = list_keys(argv[0], 5000, NULL, &why);
    if (n < 0) {
        printf("list=failed (%s)\n", why);
        return 1;
    }
    printf("keys=%ld\nus=%llu\n", n, (unsigned long long)(now_us() - t0));
    return 0;
}

/* ---- replay ---- */

struct frames {
    size_t complete; /* frames the agent will answer */
    bool oversized;  /* then a frame over 256 KiB: the agent closes */
};

static struct frames count_frames(const uint8_t *data, size_t len)
{
    struct frames f = {0, false};
    size_t pos = 0;
    uint32_t n;

    while (len - pos >= 4) {
        n = wire_peek_u32(data + pos);
        if (n > FRAME_MAX) {
            f.oversized = true;
            break;
        }
        if (n > len - pos - 4)
            break; /* partial: the agent waits for the rest */
        f.complete++;
        pos += 4 + (size_t)n;
    }
    return f;
}

/* The i-th complete frame's body. */
static struct wire_view frame_at(const uint8_t *data, size_t len, size_t index)
{
    struct wire_view v = {NULL, 0};
    size_t pos = 0, i;

    for (i = 0; len - pos >= 4; i++) {
        uint32_t n = wire_peek_u32(data + pos);

        if (n > FRAME_MAX || n > len - pos - 4)
            break;
        if (i == index) {
            v.ptr = data + pos + 4;
            v.len = n;
            break;
        }
        pos += 4 + (size_t)n;
    }
    return v;
}

static bool is_bare_body(const char *name)
{
    unsigned a, b;
    int n = 0;

    return sscanf(name, "agent-%u-%u%n", &a, &b, &n) == 2 && name[n] == '\0';
}

/* What we need to put the agent back as it was after a case. */
struct restore {
    struct wire_writer *adds; /* ADD_IDENTITY requests for the corpus keys */
    size_t nadds;
    struct wire_writer expected; /* the identity blobs they make, as strings, sorted */
    size_t nexpected;
};

/* Sorted list of strings (blobs) so two lists compare regardless of order. */
static int view_cmp(const void *a, const void *b)
{
    const struct wire_view *x = a, *y = b;
    int c = memcmp(x->ptr, y->ptr, x->len < y->len ? x->len : y->len);

    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static void sort_blobs(const struct wire_writer *in, struct wire_writer *out, size_t *count)
{
    struct wire_reader r;
    struct wire_view *v = NULL;
    size_t n = 0, i;

    wire_reader_init(&r, in->buf, in->len);
    while (wire_remaining(&r) > 0) {
        struct wire_view s = wire_get_string(&r);
        struct wire_view *nv = realloc(v, (n + 1) * sizeof(*v));

        if (r.error || nv == NULL)
            die("cannot sort key blobs");
        v = nv;
        v[n++] = s;
    }
    if (n > 0)
        qsort(v, n, sizeof(*v), view_cmp);
    wire_writer_init(out);
    for (i = 0; i < n; i++)
        wire_put_view(out, v[i]);
    free(v);
    *count = n;
}

static void load_restore(const char *keys_dir, struct restore *rs)
{
    static const char *const names[] = {"id_ecdsa", "id_ed25519", "id_rsa"};
    struct wire_writer blobs;
    char path[4096], err[256];
    size_t i;

    memset(rs, 0, sizeof(*rs));
    wire_writer_init(&blobs);
    rs->adds = calloc(2 * sizeof(names) / sizeof(names[0]), sizeof(*rs->adds));
    if (rs->adds == NULL)
        die("out of memory");
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct keyfile kf;
        struct agent_request req;
        uint8_t *cert;
        size_t cert_len, j, first = rs->nadds;

        snprintf(path, sizeof(path), "%s/%s", keys_dir, names[i]);
        if (keyfile_load(path, &kf, err, sizeof(err)) != 0)
            die("%s", err);
        wire_writer_init(&rs->adds[rs->nadds]);
        if (keyfile_add_request(&kf, &rs->adds[rs->nadds++]) != 0)
            die("%s: cannot build its add request", path);
        snprintf(path, sizeof(path), "%s/%s-cert.pub", keys_dir, names[i]);
        if (pubfile_load(path, &cert, &cert_len) == 0) {
            wire_writer_init(&rs->adds[rs->nadds]);
            if (keyfile_add_cert_request(&kf, (struct wire_view){cert, cert_len},
                                         &rs->adds[rs->nadds++]) != 0)
                die("%s: cannot build its add request", path);
            free(cert);
        }
        keyfile_free(&kf);
        /* The identity each request makes, by the agent's own decoder. */
        for (j = first; j < rs->nadds; j++) {
            if (proto_decode_request(rs->adds[j].buf, rs->adds[j].len, &req) != 0)
                die("%s: the add request does not decode", names[i]);
            wire_put_string(&blobs, req.u.add.key->blob, req.u.add.key->blob_len);
            proto_request_free(&req);
        }
    }
    sort_blobs(&blobs, &rs->expected, &rs->nexpected);
    wire_writer_free(&blobs);
}

static void free_restore(struct restore *rs)
{
    size_t i;

    for (i = 0; i < rs->nadds; i++)
        wire_writer_free(&rs->adds[i]);
    free(rs->adds);
    wire_writer_free(&rs->expected);
    memset(rs, 0, sizeof(*rs));
}

/* Sends one request on its own connection and returns the reply's type (0: none). */
static uint8_t request(const char *sock, const uint8_t *body, size_t len)
{
    int fd, type;

    if ((fd = agent_connect(sock)) < 0)
        return 0;
    type = fixture_request(fd, body, len, FRAME_MAX, REPLY_TIMEOUT_MS);
    close(fd);
    return type < 0 ? 0 : (uint8_t)type;
}

/* Unlocks (if a passphrase is known), removes everything, adds the corpus keys. */
static bool restore_keys(const char *sock, const struct restore *rs, const struct wire_writer *pass)
{
    static const uint8_t remove_all = SSH_AGENTC_REMOVE_ALL_IDENTITIES;
    size_t i;

    if (pass->len > 0) {
        struct wire_writer unlock;
        uint8_t t;

        wire_writer_init(&unlock);
        wire_put_u8(&unlock, SSH_AGENTC_UNLOCK);
        wire_put_string(&unlock, pass->buf, pass->len);
        t = request(sock, unlock.buf, unlock.len);
        wire_writer_free(&unlock);
        if (t != SSH_AGENT_SUCCESS)
            return false;
    }
    if (request(sock, &remove_all, 1) != SSH_AGENT_SUCCESS)
        return false;
    for (i = 0; i < rs->nadds; i++)
        if (request(sock, rs->adds[i].buf, rs->adds[i].len) != SSH_AGENT_SUCCESS)
            return false;
    return true;
}

/* True if the agent lists exactly the corpus identities. */
static bool keys_as_loaded(const char *sock, const struct restore *rs, const char **why)
{
    struct wire_writer listed, sorted;
    size_t n;
    bool same;

    wire_writer_init(&listed);
    if (list_keys(sock, REPLY_TIMEOUT_MS, &listed, why) < 0) {
        wire_writer_free(&listed);
        return false;
    }
    sort_blobs(&listed, &sorted, &n);
    same = n == rs->nexpected && sorted.len == rs->expected.len &&
           memcmp(sorted.buf, rs->expected.buf, sorted.len) == 0;
    if (!same)
        *why = "the agent's keys differ from the corpus keys";
    wire_writer_free(&listed);
    wire_writer_free(&sorted);
    return same;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_replay(int argc, char **argv)
{
    const char *sock, *dir, *why = NULL;
    struct restore rs;
    struct wire_writer stream, msg, pass;
    DIR *d;
    struct dirent *de;
    char **names = NULL, path[4096];
    size_t nnames = 0, cap = 0, i, j;
    unsigned long frames = 0, replies = 0, closed = 0, restores = 0, failures = 0;
    uint64_t t0, slowest = 0, t;
    const char *slowest_name = "";
    bool ok;

    if (argc != 3)
        return 2;
    sock = argv[0];
    dir = argv[1];
    load_restore(argv[2], &rs);
    /* The keys the shell loaded with ssh-add are the ones we would restore. */
    if (!keys_as_loaded(sock, &rs, &why)) {
        printf("loaded=differs (%s)\n", why);
        free_restore(&rs);
        return 1;
    }
    printf("loaded=%zu identities, as ssh-add added them\n", rs.nexpected);

    if ((d = opendir(dir)) == NULL)
        die("%s: %s", dir, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "README.md") == 0)
            continue;
        if (nnames == cap) {
            cap = cap ? cap * 2 : 1024;
            if ((names = realloc(names, cap * sizeof(*names))) == NULL)
                die("out of memory");
        }
        if ((names[nnames++] = strdup(de->d_name)) == NULL)
            die("out of memory");
    }
    closedir(d);
    qsort(names, nnames, sizeof(*names), name_cmp);

    wire_writer_init(&stream);
    wire_writer_init(&msg);
    wire_writer_init(&pass);
    t0 = now_us();
    for (i = 0; i < nnames; i++) {
        uint8_t *data;
        size_t len;
        struct frames f;
        bool changed = false, fail = false;
        int fd, r = 1;

        t = now_us();
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (file_read_all(path, &data, &len) != 0)
            die("%s: %s", path, strerror(errno));
        wire_writer_reset(&stream);
        if (is_bare_body(names[i]))
            wire_put_string(&stream, data, len); /* add the length prefix */
        else
            wire_put_bytes(&stream, data, len);
        free(data);
        f = count_frames(stream.buf, stream.len);
        frames += f.complete;

        if ((fd = agent_connect(sock)) < 0) {
            printf("case %s: cannot connect: %s\n", names[i], strerror(errno));
            failures++;
            break;
        }
        (void)fixture_write_all(fd, stream.buf,
                                stream.len); /* it may close on an oversized frame */
        for (j = 0; j < f.complete; j++) {
            struct wire_view req = frame_at(stream.buf, stream.len, j);
            uint8_t rt;

            if ((r = read_frame(fd, &msg, REPLY_TIMEOUT_MS)) != 1)
                break;
            replies++;
            rt = msg.buf[0];
            if (rt != SSH_AGENT_SUCCESS || req.len == 0)
                continue;
            /* Requests that succeeded in changing what later cases see. */
            switch (req.ptr[0]) {
            case SSH_AGENTC_LOCK: {
                struct wire_reader rr;
                struct wire_view p;

                wire_reader_init(&rr, req.ptr + 1, req.len - 1);
                p = wire_get_string(&rr);
                wire_writer_reset(&pass);
                wire_put_bytes(&pass, p.ptr, p.len);
                changed = true;
                break;
            }
            case SSH_AGENTC_UNLOCK:
                wire_writer_reset(&pass);
                break;
            case SSH_AGENTC_ADD_IDENTITY:
            case SSH_AGENTC_ADD_ID_CONSTRAINED:
            case SSH_AGENTC_REMOVE_IDENTITY:
            case SSH_AGENTC_REMOVE_ALL_IDENTITIES:
                changed = true;
                break;
            }
        }
        if (j < f.complete) {
            printf("case %s: %s after %zu of %zu replies\n", names[i], read_result(r), j,
                   f.complete);
            fail = true;
        } else if (f.oversized) {
            /* The agent must close this connection, and only this one. */
            r = read_frame(fd, &msg, REPLY_TIMEOUT_MS);
            if (r != 0) {
                printf("case %s: oversized frame: %s\n", names[i],
                       r == 1 ? "answered instead of closed" : read_result(r));
                fail = true;
            }
            closed++;
        }
        close(fd);

        /* The agent still answers a new client. */
        if (list_keys(sock, REPLY_TIMEOUT_MS, NULL, &why) < 0) {
            printf("case %s: the next list request failed: %s\n", names[i], why);
            failures++;
            break;
        }
        if (changed || !keys_as_loaded(sock, &rs, &why)) {
            restores++;
            if (!restore_keys(sock, &rs, &pass) || !keys_as_loaded(sock, &rs, &why)) {
                printf("case %s: cannot restore the keys: %s\n", names[i],
                       why ? why : "a request failed");
                failures++;
                break;
            }
            wire_writer_reset(&pass);
        }
        if (fail)
            failures++;
        if (now_us() - t > slowest) {
            slowest = now_us() - t;
            slowest_name = names[i];
        }
    }
    t = now_us() - t0;
    printf("cases=%zu\nframes=%lu\nreplies=%lu\nclosed_oversized=%lu\n"
           "restores=%lu\nfailures=%lu\nseconds=%.1f\n"
           "slowest_case=%s (%.0f ms)\n",
           i, frames, replies, closed, restores, failures, (double)t / 1e6, slowest_name,
           (double)slowest / 1e3);
    ok = failures == 0 && i == nnames;
    for (i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    free_restore(&rs);
    wire_writer_free(&stream);
    wire_writer_free(&msg);
    wire_writer_free(&pass);
    return ok ? 0 : 1;
}

/* ---- slowloris ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* Times SAMPLES list requests on fresh connections; median and max in us. */
static bool time_lists(const char *sock, int samples, uint64_t *median, uint64_t *max)
{
    uint64_t *t = calloc((size_t)samples, sizeof(*t));
    const char *why;
    int i;

    if (t == NULL)
        die("out of memory");
    for (i = 0; i < samples; i++) {
        uint64_t t0 = now_us();

        if (list_keys(sock, 10000, NULL, &why) < 0) {
            printf("list=failed (%s)\n", why);
            free(t);
            return false;
        }
        t[i] = now_us() - t0;
    }
    qsort(t, (size_t)samples, sizeof(*t), cmp_u64);
    *median = t[samples / 2];
    *max = t[samples - 1];
    free(t);
    return true;
}

static int cmd_slowloris(int argc, char **argv)
{
    const char *sock;
    int n, samples, i, opened = 0, still_open = 0, *fds;
    uint64_t base_med, base_max, load_med, load_max;
    uint8_t half[4 + 50];

    if (argc != 3)
        return 2;
    sock = argv[0];
    n = atoi(argv[1]);
    samples = atoi(argv[2]);
    if (n <= 0 || samples <= 0)
        return 2;
    if (!time_lists(sock, samples, &base_med, &base_max))
        return 1;
    printf("baseline_median_us=%llu\nbaseline_max_us=%llu\n", (unsigned long long)base_med,
           (unsigned long long)base_max);

    /* Half a frame each: a 100-byte request of which 50 bytes arrive. */
    wire_poke_u32(half, 100);
    half[4] = SSH_AGENTC_REQUEST_IDENTITIES;
    memset(half + 5, 0, sizeof(half) - 5);
    if ((fds = calloc((size_t)n, sizeof(*fds))) == NULL)
        die("out of memory");
    for (i = 0; i < n; i++) {
        if ((fds[i] = agent_connect(sock)) < 0) {
            printf("connect %d: %s\n", i, strerror(errno));
            break;
        }
        opened++;
        if (!fixture_write_all(fds[i], half, sizeof(half)))
            printf("send %d: %s\n", i, strerror(errno));
    }
    printf("stalled_connections=%d\n", opened);
    if (!time_lists(sock, samples, &load_med, &load_max))
        return 1;
    printf("loaded_median_us=%llu\nloaded_max_us=%llu\n", (unsigned long long)load_med,
           (unsigned long long)load_max);

    /* None was closed or answered: the agent is waiting for the rest. */
    for (i = 0; i < opened; i++) {
        struct pollfd pfd = {fds[i], POLLIN, 0};

        if (poll(&pfd, 1, 0) == 0)
            still_open++;
    }
    printf("still_waiting=%d\n", still_open);
    /* And one of them, completed, is answered (a FAILURE: trailing bytes). */
    if (opened > 0) {
        struct wire_writer msg;
        int r;

        wire_writer_init(&msg);
        (void)fixture_write_all(fds[0], half + 4, 50);
        r = read_frame(fds[0], &msg, 10000);
        printf("completed_frame=%s\n", r == 1 ? "answered" : read_result(r));
        wire_writer_free(&msg);
    }
    for (i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    return opened == n ? 0 : 1;
}

/* ---- oversized frames ---- */

static int cmd_bigframe(int argc, char **argv)
{
    const char *sock, *why;
    int a, b, c, d, r, ok = 1;
    uint8_t hdr[4], *body;
    struct wire_writer msg;
    static const uint8_t list = SSH_AGENTC_REQUEST_IDENTITIES;

    if (argc != 1)
        return 2;
    sock = argv[0];
    wire_writer_init(&msg);
    if ((body = calloc(1, FRAME_MAX + 1)) == NULL)
        die("out of memory");
    if ((a = agent_connect(sock)) < 0 || (b = agent_connect(sock)) < 0 ||
        (c = agent_connect(sock)) < 0 || (d = agent_connect(sock)) < 0)
        die("connect: %s", strerror(errno));

    /* b: a frame of 256 KiB + 1, header and a good part of the body. */
    wire_poke_u32(hdr, FRAME_MAX + 1);
    (void)fixture_write_all(b, hdr, 4);
    (void)fixture_write_all(b, body, 4096);
    r = read_frame(b, &msg, 5000);
    printf("over_limit=%s\n", r == 0 ? "closed" : r == 1 ? "answered" : read_result(r));
    ok &= r == 0;

    /* d: a length of 4 GiB - 1, alone. */
    wire_poke_u32(hdr, 0xffffffffu);
    (void)fixture_write_all(d, hdr, 4);
    r = read_frame(d, &msg, 5000);
    printf("length_ffffffff=%s\n", r == 0 ? "closed" : r == 1 ? "answered" : read_result(r));
    ok &= r == 0;

    /* c: exactly 256 KiB, a malformed list request: answered, and c stays. */
    body[0] = SSH_AGENTC_REQUEST_IDENTITIES;
    if (!fixture_send_frame(c, body, FRAME_MAX)) {
        printf("at_limit=send failed: %s\n", strerror(errno));
        ok = 0;
    } else {
        r = read_frame(c, &msg, 10000);
        printf("at_limit=%s\n",
               r == 1 ? (msg.buf[0] == SSH_AGENT_FAILURE ? "FAILURE" : "other") : read_result(r));
        ok &= r == 1 && msg.buf[0] == SSH_AGENT_FAILURE;
        r = fixture_send_frame(c, &list, 1) ? read_frame(c, &msg, 5000) : -2;
        printf("at_limit_then_list=%s\n", r == 1 ? "answered" : read_result(r));
        ok &= r == 1;
    }

    /* a: opened before all that, still served. */
    r = fixture_send_frame(a, &list, 1) ? read_frame(a, &msg, 5000) : -2;
    printf("other_connection=%s\n", r == 1 ? "answered" : read_result(r));
    ok &= r == 1;
    /* And a new client. */
    printf("new_connection=%s\n", list_keys(sock, 5000, NULL, &why) >= 0 ? "answered" : why);
    ok &= why == NULL;

    close(a);
    close(b);
    close(c);
    close(d);
    free(body);
    wire_writer_free(&msg);
    return ok ? 0 : 1;
}

/* ---- fd exhaustion ---- */

/* utime + stime of a process, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long utime, stime;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    p = fgets(buf, sizeof(buf), f);
    fclose(f);
    /* Fields after "pid (comm) ": state is 3, utime 14, stime 15. */
    if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (long)(utime + stime);
}

/* A list request on an already open connection: 1 answered, else read_frame's code. */
static int list_on(int fd, struct wire_writer *msg, int timeout_ms)
{
    static const uint8_t list = SSH_AGENTC_REQUEST_IDENTITIES;

    if (!fixture_send_frame(fd, &list, 1))
        return 0;
    return read_frame(fd, msg, timeout_ms);
}

static int cmd_fdexhaust(int argc, char **argv)
{
    enum { MAX_CONNS = 4096, WINDOW_SECONDS = 3 };
    const char *sock;
    pid_t pid;
    int *fds, n = 0, served = 0, turned_away = 0, i, r, pending, recovered = 0;
    long t0, t1, hz = sysconf(_SC_CLK_TCK);
    struct wire_writer msg;

    if (argc != 2)
        return 2;
    sock = argv[0];
    pid = (pid_t)atol(argv[1]);
    if ((fds = calloc(MAX_CONNS, sizeof(*fds))) == NULL)
        die("out of memory");
    wire_writer_init(&msg);

    /*
     * Open connections, each proving it is served, until the agent cannot
     * take more: it then accepts and closes at once (libuv's reserve fd),
     * or leaves us in the listen queue. Three in a row turned away is "full".
     */
    while (n < MAX_CONNS && turned_away < 3) {
        if ((fds[n] = agent_connect(sock)) < 0) {
            printf("connect=%s after %d\n", strerror(errno), n);
            break;
        }
        r = list_on(fds[n], &msg, 2000);
        if (r == 1) {
            served++;
            turned_away = 0;
            n++;
        } else {
            close(fds[n]);
            turned_away++;
        }
    }
    printf("served_connections=%d\n", served);
    printf("agent_full=%s\n", turned_away >= 3 ? "yes" : "no");

    /*
     * While full, with one more client waiting in the queue, the agent must
     * sleep, not spin on EMFILE.
     */
    pending = agent_connect(sock);
    if (pending >= 0) {
        static const uint8_t list = SSH_AGENTC_REQUEST_IDENTITIES;

        (void)fixture_send_frame(pending, &list, 1);
    }
    t0 = cpu_ticks(pid);
    sleep(WINDOW_SECONDS);
    t1 = cpu_ticks(pid);
    printf("cpu_ms_while_full=%ld\nwindow_ms=%d\n", t0 < 0 || t1 < 0 ? -1 : (t1 - t0) * 1000 / hz,
           WINDOW_SECONDS * 1000);
    printf("agent_alive=%s\n", kill(pid, 0) == 0 ? "yes" : "no");
    if (pending >= 0)
        close(pending);

    /* Let ten go; new clients must be served again. */
    for (i = 0; i < 10 && n > 0; i++)
        close(fds[--n]);
    for (i = 0; i < 50 && !recovered; i++) {
        const char *why;

        if (list_keys(sock, 2000, NULL, &why) >= 0)
            recovered = 1;
        else
            usleep(100000);
    }
    printf("served_after_release=%s\n", recovered ? "yes" : "no");
    /* The connections kept all along still work too. */
    printf("old_connection_still_served=%s\n",
           n > 0 && list_on(fds[0], &msg, 5000) == 1 ? "yes" : "no");
    for (i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    wire_writer_free(&msg);
    return 0;
}

/* ---- sign ---- */

static int cmd_sign(int argc, char **argv)
{
    static const uint8_t data[] = "keyward hostile_client sign";
    struct wire_writer req, msg;
    uint8_t *blob;
    size_t blob_len;
    uint32_t flags = 0;
    long hangup_ms = -1;
    bool halfclose = false;
    int fd, r;

    if (argc < 2 || argc > 4)
        return 2;
    if (argc >= 3)
        flags = (uint32_t)strtoul(argv[2], NULL, 0);
    if (argc == 4 && strcmp(argv[3], "halfclose") == 0)
        halfclose = true;
    else if (argc == 4)
        hangup_ms = atol(argv[3]);
    if (pubfile_load(argv[1], &blob, &blob_len) != 0)
        die("%s: cannot read the public key", argv[1]);
    wire_writer_init(&req);
    wire_writer_init(&msg);
    wire_put_u8(&req, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&req, blob, blob_len);
    wire_put_string(&req, data, sizeof(data));
    wire_put_u32(&req, flags);
    free(blob);
    if ((fd = agent_connect(argv[0])) < 0)
        die("connect: %s", strerror(errno));
    if (!fixture_send_frame(fd, req.buf, req.len))
        die("send: %s", strerror(errno));
    wire_writer_free(&req);
    if (hangup_ms >= 0) {
        usleep((useconds_t)hangup_ms * 1000);
        close(fd);
        printf("disconnected=yes\n");
        return 0;
    }
    /* Done sending, still reading: what `printf ... | socat - UNIX:...` does. */
    if (halfclose)
        (void)shutdown(fd, SHUT_WR);
    r = read_frame(fd, &msg, 30000);
    close(fd);
    if (r != 1) {
        printf("sign=%s\n", read_result(r));
        wire_writer_free(&msg);
        return 1;
    }
    printf("sign=%s\n", msg.buf[0] == SSH_AGENT_SIGN_RESPONSE ? "SIGN_RESPONSE"
                        : msg.buf[0] == SSH_AGENT_FAILURE     ? "FAILURE"
                                                              : "other");
    r = msg.buf[0] == SSH_AGENT_SIGN_RESPONSE ? 0 : 1;
    wire_writer_free(&msg);
    return r;
}

/* ---- add a key from its file, with a comment of our choosing ---- */

static int cmd_add(int argc, char **argv)
{
    struct keyfile kf;
    struct wire_writer req, msg;
    char err[256], *comment;
    long lifetime, comment_len;
    int fd, r;

    if (argc != 4)
        return 2;
    lifetime = atol(argv[2]);
    comment_len = atol(argv[3]);
    if (comment_len < 0 || comment_len > FRAME_MAX || lifetime < 0)
        return 2;
    if (keyfile_load(argv[1], &kf, err, sizeof(err)) != 0)
        die("%s", err);
    if ((comment = malloc((size_t)comment_len + 1)) == NULL)
        die("out of memory");
    memset(comment, 'x', (size_t)comment_len);
    comment[comment_len] = '\0';
    wire_writer_init(&req);
    wire_writer_init(&msg);
    wire_put_u8(&req, lifetime ? SSH_AGENTC_ADD_ID_CONSTRAINED : SSH_AGENTC_ADD_IDENTITY);
    wire_put_view(&req, kf.type);
    wire_put_bytes(&req, kf.fields.ptr, kf.fields.len);
    wire_put_cstring(&req, comment);
    if (lifetime) {
        wire_put_u8(&req, SSH_AGENT_CONSTRAIN_LIFETIME);
        wire_put_u32(&req, (uint32_t)lifetime);
    }
    if ((fd = agent_connect(argv[0])) < 0)
        die("connect: %s", strerror(errno));
    r = fixture_send_frame(fd, req.buf, req.len) ? read_frame(fd, &msg, 10000) : -2;
    printf("add=%s\n", r != 1                            ? read_result(r)
                       : msg.buf[0] == SSH_AGENT_SUCCESS ? "SUCCESS"
                                                         : "FAILURE");
    close(fd);
    r = r == 1 && msg.buf[0] == SSH_AGENT_SUCCESS ? 0 : 1;
    wire_writer_free(&req);
    wire_writer_free(&msg);
    free(comment);
    keyfile_free(&kf);
    return r;
}

/* ---- many requests, then a frame over the limit ---- */

static int cmd_pipeline(int argc, char **argv)
{
    static const uint8_t data[] = "keyward hostile_client pipeline";
    uint8_t one[5] = {0, 0, 0, 1, SSH_AGENTC_REQUEST_IDENTITIES};
    struct wire_writer out, msg, sign;
    uint8_t *blob = NULL, last = 0;
    size_t blob_len = 0;
    int n, i, fd, r = 1, replies = 0;
    bool halfclose;
    char *end;
    long type;

    if (argc < 3 || argc > 4 ||
        (strcmp(argv[2], "oversized") != 0 && strcmp(argv[2], "halfclose") != 0))
        return 2;
    n = atoi(argv[1]);
    halfclose = strcmp(argv[2], "halfclose") == 0;
    if (argc == 4) {
        type = strtol(argv[3], &end, 10);
        if (*end == '\0' && type >= 0 && type <= 255)
            one[4] = (uint8_t)type;
        else if (pubfile_load(argv[3], &blob, &blob_len) != 0)
            die("%s: not a request type, and cannot read it as a public key", argv[3]);
    }
    wire_writer_init(&out);
    wire_writer_init(&msg);
    wire_writer_init(&sign);
    for (i = 0; i < n; i++)
        wire_put_bytes(&out, one, sizeof(one));
    if (blob != NULL) {
        wire_put_u8(&sign, SSH_AGENTC_SIGN_REQUEST);
        wire_put_string(&sign, blob, blob_len);
        wire_put_string(&sign, data, sizeof(data));
        wire_put_u32(&sign, 0);
        wire_put_u32(&out, (uint32_t)sign.len);
        wire_put_bytes(&out, sign.buf, sign.len);
        n++;
        free(blob);
    }
    if (!halfclose)
        wire_put_u32(&out, FRAME_MAX + 1);
    if ((fd = agent_connect(argv[0])) < 0)
        die("connect: %s", strerror(errno));
    (void)fixture_write_all(fd, out.buf, out.len);
    if (halfclose)
        (void)shutdown(fd, SHUT_WR);
    while ((r = read_frame(fd, &msg, 10000)) == 1) {
        replies++;
        last = msg.buf[0];
    }
    close(fd);
    printf("requests=%d\nreplies=%d\nthen=%s\n", n, replies, read_result(r));
    printf("last=%s\n", replies == 0                          ? "none"
                        : last == SSH_AGENT_SIGN_RESPONSE     ? "SIGN_RESPONSE"
                        : last == SSH_AGENT_IDENTITIES_ANSWER ? "IDENTITIES_ANSWER"
                        : last == SSH_AGENT_FAILURE           ? "FAILURE"
                                                              : "other");
    wire_writer_free(&out);
    wire_writer_free(&msg);
    wire_writer_free(&sign);
    return 0;
}

/* ---- memory scan ---- */

/*
 * The private key bytes, in the forms they take in memory: as given (raw
 * Ed25519 seeds, DER and SSH encodings, mpint copies) and byte-reversed,
 * which is how a BIGNUM's little-endian limbs hold an RSA or ECDSA scalar
 * on x86-64. Each form is searched by three 20-byte windows (start,
 * middle, end), so a copy partly overwritten by the allocator is still
 * found.
 */
#define WINDOW 20

struct pattern {
    const char *key;
    const char *secret;
    const char *form;
    uint8_t bytes[WINDOW];
    bool found;
    unsigned long addr;
    char region[128];
};

static struct pattern *patterns;
static size_t npatterns;

static void add_windows(const char *key, const char *secret, const char *form, const uint8_t *v,
                        size_t len)
{
    size_t offs[3], i;

    if (len < WINDOW)
        return;
    offs[0] = 0;
    offs[1] = (len - WINDOW) / 2;
    offs[2] = len - WINDOW;
    for (i = 0; i < 3; i++) {
        struct pattern *np = realloc(patterns, (npatterns + 1) * sizeof(*np));

        if (np == NULL)
            die("out of memory");
        patterns = np;
        memset(&patterns[npatterns], 0, sizeof(patterns[0]));
        patterns[npatterns].key = key;
        patterns[npatterns].secret = secret;
        patterns[npatterns].form = form;
        memcpy(patterns[npatterns].bytes, v + offs[i], WINDOW);
        npatterns++;
    }
}

/* Which two-byte prefixes some pattern starts with: one bit each. */
static uint8_t prefix_bits[65536 / 8];

/* Searches buf (which starts at address base) for every pattern not yet found. */
static void search(const uint8_t *buf, size_t len, unsigned long base, const char *region)
{
    size_t i, k;

    if (len < WINDOW)
        return;
    for (i = 0; i + WINDOW <= len; i++) {
        unsigned two = (unsigned)buf[i] << 8 | buf[i + 1];

        /* Almost every position matches no pattern's first two bytes. */
        if (!(prefix_bits[two >> 3] & (1u << (two & 7))))
            continue;
        for (k = 0; k < npatterns; k++) {
            struct pattern *p = &patterns[k];

            if (!p->found && memcmp(buf + i, p->bytes, WINDOW) == 0) {
                p->found = true;
                p->addr = base + i;
                snprintf(p->region, sizeof(p->region), "%s", region);
            }
        }
    }
}

static int cmd_memscan(int argc, char **argv)
{
    enum { CHUNK = 1 << 20, MAX_REGION = 1 << 30 };
    char path[64], line[512], err[256];
    FILE *maps;
    int mem, i;
    uint8_t *buf;
    size_t k;
    unsigned long scanned = 0, skipped = 0;
    struct keyfile *kfs;

    if (argc < 2)
        return 2;
    if ((kfs = calloc((size_t)argc, sizeof(*kfs))) == NULL)
        die("out of memory");
    for (i = 1; i < argc; i++) {
        struct keyfile *kf = &kfs[i];
        struct keyfile_secret sec[4];
        size_t n, j;

        if (keyfile_load(argv[i], kf, err, sizeof(err)) != 0)
            die("%s", err);
        n = keyfile_secrets(kf, sec, 4);
        for (j = 0; j < n; j++) {
            uint8_t *rev = malloc(sec[j].value.len);

            if (rev == NULL)
                die("out of memory");
            for (k = 0; k < sec[j].value.len; k++)
                rev[k] = sec[j].value.ptr[sec[j].value.len - 1 - k];
            add_windows(argv[i], sec[j].name, "as-is", sec[j].value.ptr, sec[j].value.len);
            add_windows(argv[i], sec[j].name, "reversed", rev, sec[j].value.len);
            free(rev);
        }
    }
    for (k = 0; k < npatterns; k++) {
        unsigned two = (unsigned)patterns[k].bytes[0] << 8 | patterns[k].bytes[1];

        prefix_bits[two >> 3] |= (uint8_t)(1u << (two & 7));
    }

    snprintf(path, sizeof(path), "/proc/%s/maps", argv[0]);
    if ((maps = fopen(path, "r")) == NULL)
        die("%s: %s", path, strerror(errno));
    snprintf(path, sizeof(path), "/proc/%s/mem", argv[0]);
    if ((mem = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        die("%s: %s", path, strerror(errno));
    if ((buf = malloc(CHUNK + WINDOW)) == NULL)
        die("out of memory");
    while (fgets(line, sizeof(line), maps) != NULL) {
        unsigned long start, end, pos;
        char perms[8] = "", name[256] = "";

        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255[^\n]", &start, &end, perms, name) < 3)
            continue;
        /*
         * Only memory the process could have written can hold what it was
         * sent or computed. Mappings of a gigabyte or more are
         * AddressSanitizer's shadow (sanitizer builds), not data.
         */
        if (perms[0] != 'r' || perms[1] != 'w' || end - start >= MAX_REGION ||
            strcmp(name, "[vvar]") == 0) {
            skipped += end - start;
            continue;
        }
        for (pos = start; pos < end; pos += CHUNK) {
            size_t want = end - pos > CHUNK ? CHUNK : end - pos;
            ssize_t got;

            /* Overlap chunks so that no match straddles a boundary unseen. */
            if (pos + want + WINDOW <= end)
                want += WINDOW;
            got = pread(mem, buf, want, (off_t)pos);
            if (got <= 0)
                break; /* unreadable (guard pages): skip the rest */
            scanned += (unsigned long)got;
            search(buf, (size_t)got, pos, name[0] ? name : "[anon]");
        }
    }
    fclose(maps);
    close(mem);
    free(buf);

    printf("scanned_bytes=%lu\nskipped_bytes=%lu\n", scanned, skipped);
    /* One line per key and secret: found in which form, where, or absent. */
    for (k = 0; k < npatterns; k += 3) {
        const struct pattern *p = &patterns[k];
        size_t w, hit = npatterns;

        /* Three windows per form; two forms per secret, listed in turn. */
        for (w = k; w < k + 3; w++)
            if (patterns[w].found && hit == npatterns)
                hit = w;
        if (hit != npatterns)
            printf("FOUND %s %s (%s) at 0x%lx in %s\n", p->key, p->secret, p->form,
                   patterns[hit].addr, patterns[hit].region);
        else
            printf("absent %s %s (%s)\n", p->key, p->secret, p->form);
    }
    for (i = 1; i < argc; i++)
        keyfile_free(&kfs[i]);
    free(kfs);
    free(patterns);
    return 0;
}

/* ---- attacks by the same uid ---- */

/* Waits until the agent answers a list request: its hardening is done by then. */
static bool wait_ready(const char *sock)
{
    const char *why;
    int i;

    for (i = 0; i < 100; i++) {
        if (list_keys(sock, 1000, NULL, &why) >= 0)
            return true;
        usleep(100000);
    }
    return false;
}

/* A readable address of the process, from its maps. */
static unsigned long readable_address(pid_t pid)
{
    char path[64], line[512], perms[8];
    unsigned long start = 0, end;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/maps", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3 && perms[0] == 'r')
            break;
        start = 0;
    }
    fclose(f);
    return start;
}

static int cmd_attack(int argc, char **argv)
{
    const char *mode, *sock;
    pid_t pid;
    int status;

    if (argc < 4 || strcmp(argv[2], "--") != 0)
        return 2;
    mode = argv[0];
    sock = argv[1];
    if ((pid = fork()) < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        /* Not our stdout: whoever reads it waits for every writer to close. */
        int null = open("/dev/null", O_RDWR);

        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
        }
        execvp(argv[3], argv + 3);
        fprintf(stderr, "%s: %s: %s\n", progname, argv[3], strerror(errno));
        _exit(127);
    }
    /* We are the target's parent: even under Yama ptrace_scope=1 we may try. */
    printf("pid=%ld\nuid=%ld\n", (long)pid, (long)getuid());
    fflush(stdout);
    if (strcmp(sock, "-") != 0) {
        if (!wait_ready(sock)) {
            printf("ready=no\n");
            kill(pid, SIGTERM);
            waitpid(pid, &status, 0);
            return 1;
        }
    } else {
        usleep(300000);
    }
    printf("ready=yes\n");
    fflush(stdout);

    if (strcmp(mode, "gdb") == 0) {
        char pidstr[32];

        /* gdb takes our pid, so it is the target's parent too. */
        snprintf(pidstr, sizeof(pidstr), "%ld", (long)pid);
        execlp("gdb", "gdb", "-nx", "-batch", "-p", pidstr, "-ex", "info inferiors", (char *)NULL);
        die("gdb: %s", strerror(errno));
    }
    if (strcmp(mode, "mem") == 0) {
        char path[64];
        uint8_t b[16];
        unsigned long addr = readable_address(pid);
        int fd;

        snprintf(path, sizeof(path), "/proc/%ld/mem", (long)pid);
        if ((fd = open(path, O_RDONLY)) < 0) {
            printf("mem=%s\n", strerror(errno));
        } else if (pread(fd, b, sizeof(b), (off_t)addr) != (ssize_t)sizeof(b)) {
            printf("mem=%s\n", strerror(errno));
            close(fd);
        } else {
            printf("mem=read\n");
            close(fd);
        }
    } else if (strcmp(mode, "ptrace") == 0) {
        if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) != 0) {
            printf("ptrace=%s\n", strerror(errno));
        } else {
            waitpid(pid, &status, 0);
            (void)ptrace(PTRACE_DETACH, pid, NULL, NULL);
            printf("ptrace=attached\n");
        }
    } else {
        kill(pid, SIGTERM);
        return 2;
    }
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    return 0;
}

/* ---- cpu ---- */

/* CPU time of every thread of process pid so far, in ns; -1 if unreadable. */
static long long process_cpu_ns(long pid)
{
    char path[64], line[128];
    struct dirent *de;
    long long total = 0, ns;
    DIR *dir;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/task", pid);
    if ((dir = opendir(path)) == NULL)
        return -1;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/task/%.20s/schedstat", pid, de->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue; /* the thread just ended */
        /* The first field: time spent on the CPU, in ns. */
        if (fgets(line, sizeof(line), f) != NULL && sscanf(line, "%lld", &ns) == 1)
            total += ns;
        fclose(f);
    }
    closedir(dir);
    return total;
}

static int cmd_cpu(int argc, char **argv)
{
    static const uint8_t list[5] = {0, 0, 0, 1, SSH_AGENTC_REQUEST_IDENTITIES};
    struct wire_writer msg;
    long pid, gap_us, idle_ms, n, i;
    long long cpu0, cpu1, cpu2;
    uint64_t t0, t1;
    int fd, rr, r = 1;

    if (argc != 5)
        return 2;
    pid = atol(argv[1]);
    n = atol(argv[2]);
    gap_us = atol(argv[3]);
    idle_ms = atol(argv[4]);
    if (pid <= 0 || n < 1 || gap_us < 0 || idle_ms < 1)
        return 2;
    if ((fd = agent_connect(argv[0])) < 0) {
        printf("cpu=failed (cannot connect)\n");
        return 1;
    }
    wire_writer_init(&msg);
    t0 = now_us();
    cpu0 = process_cpu_ns(pid);
    for (i = 0; i < n; i++) {
        if (i > 0 && gap_us > 0)
            usleep((useconds_t)gap_us);
        if (!fixture_write_all(fd, list, sizeof(list))) {
            printf("cpu=failed (cannot send)\n");
            goto out;
        }
        if ((rr = read_frame(fd, &msg, 5000)) != 1) {
            printf("cpu=failed (%s after %ld replies)\n", read_result(rr), i);
            goto out;
        }
    }
    cpu1 = process_cpu_ns(pid);
    t1 = now_us();
    usleep((useconds_t)idle_ms * 1000);
    cpu2 = process_cpu_ns(pid);
    if (cpu0 < 0 || cpu1 < 0 || cpu2 < 0) {
        printf("cpu=failed (cannot read /proc/%ld/task/*/schedstat)\n", pid);
        goto out;
    }
    printf("requests=%ld\nwall_us=%llu\nbusy_cpu_us=%lld\nidle_cpu_us=%lld\n", n,
           (unsigned long long)(t1 - t0), (cpu1 - cpu0) / 1000, (cpu2 - cpu1) / 1000);
    r = 0;
out:
    wire_writer_free(&msg);
    close(fd);
    return r;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"replay", cmd_replay},
        {"list", cmd_list},
        {"slowloris", cmd_slowloris},
        {"bigframe", cmd_bigframe},
        {"fdexhaust", cmd_fdexhaust},
        {"sign", cmd_sign},
        {"memscan", cmd_memscan},
        {"attack", cmd_attack},
        {"pipeline", cmd_pipeline},
        {"add", cmd_add},
        {"cpu", cmd_cpu},
    };
    size_t i;
    int r;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    for (i = 0; argc >= 2 && i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) == 0) {
            if ((r = cmds[i].fn(argc - 2, argv + 2)) == 2)
                fprintf(stderr, "%s: bad arguments for %s (see the top of hostile_client.c)\n",
                        progname, argv[1]);
            return r;
        }
    }
    fprintf(
        stderr,
        "usage: %s replay|list|slowloris|bigframe|fdexhaust|sign|memscan|attack|pipeline|add|cpu "
        "...\n",
        progname);
    return 2;
}
