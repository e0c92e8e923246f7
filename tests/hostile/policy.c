/*
 * Issue 22, policy and limits: hostile clients against the real
 * keyward-agent over its socket.
 *
 *     hostile_policy AGENT unlock_rate|remove_restricted|key_limit|heavy_constraint
 *
 * Each part starts its own agent (-d, log in a temporary directory):
 *
 *   unlock_rate        GUESSERS connections guess the lock passphrase as
 *                      fast as the agent answers for WINDOW seconds, while
 *                      another client lists. At most MAX_GUESSES guesses may
 *                      be evaluated in the window (the agent-wide delay:
 *                      0.1 s, 0.2 s, ... between attempts, as OpenSSH), the
 *                      lists stay fast, and the right passphrase then
 *                      unlocks.
 *   remove_restricted  a connection bound (session-bind, forwarding) to a
 *                      host a destination-restricted key may not reach can
 *                      neither see nor remove the key: FAILURE, the
 *                      connection stays, the key stays.
 *   key_limit          an ECDSA key is added, then junk RSA-4096 keys until
 *                      the agent refuses one: the refusal must come (FAILURE,
 *                      connection kept, "too many keys" in the log) before
 *                      the ECDSA key stops signing; removing a key makes
 *                      room again.
 *   heavy_constraint   an ADD whose destination restriction holds as many
 *                      P-521 host keys as fit in a frame is refused, and an
 *                      ADD at the limit does not hold up another client's
 *                      lists by more than HEAVY_MAX_MS.
 *
 * Prints "ok"/"not ok" lines and the numbers measured; exits 0 only if
 * every check passed.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "agent/destination.h"
#include "agent/request.h"
#include "base/wire.h"
#include "crypto/key.h"
#include "fixture_sock.h"

#define MAX_REPLY        (256 * 1024)
#define AGENT_TIMEOUT_MS 20000
#ifndef DEST_MAX_KEYS
#define DEST_MAX_KEYS 128 /* destination.h's, for building against the code before issue 22 */
#endif

/* unlock_rate */
#define GUESSERS    8
#define WINDOW_S    3.0
#define MAX_GUESSES 12   /* the schedule allows about 8 in 3 s */
#define LIST_MAX_MS 50.0 /* p99 of the lists; generous on a shared 2-core machine */
/* key_limit */
#define JUNK_MAX 6000 /* more than fill keyward-agent's 8 MiB secure heap */
/* heavy_constraint */
#define HEAVY_MAX_MS 50.0

static const char *agent_path;
static char dir[64], sock_path[96], log_path[96];
static pid_t agent_pid = -1;
static int passed, failed;

/*
 * A check on a time measured: judged, except in the sanitizer build, where
 * every allocation unwinds its stack and times mean nothing (printed only).
 */
static void check(bool ok, const char *what);

static void check_timing(bool ok, const char *what)
{
#ifdef KEYWARD_POLICY_NO_TIMING
    printf("# %s - %s (timing not judged in the sanitizer build)\n", ok ? "ok" : "not ok", what);
#else
    check(ok, what);
#endif
}

static void check(bool ok, const char *what)
{
    if (ok) {
        passed++;
        printf("ok - %s\n", what);
    } else {
        failed++;
        printf("not ok - %s\n", what);
    }
    fflush(stdout);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the socket (tests/fixtures/fixture_sock.h) ---- */

/* A hung agent fails the test instead of hanging it: every send and read gives up after 20 s. */
static int connect_agent(void)
{
    return fixture_connect(sock_path, AGENT_TIMEOUT_MS, AGENT_TIMEOUT_MS);
}

/* req as one frame; false if it could not be built (the writer's error) or sent. */
static bool send_msg(int fd, const struct wire_writer *req)
{
    return !req->error && fixture_send_frame(fd, req->buf, req->len);
}

/* One request, one reply: its type, or -1 if none came. */
static int simple_request(int fd, const struct wire_writer *req)
{
    return req->error ? -1 : fixture_request(fd, req->buf, req->len, MAX_REPLY, FIXTURE_NO_TIMEOUT);
}

/* The number of keys a list answers, or -1. */
static long list_keys(int fd)
{
    struct wire_writer req;
    uint8_t *reply;
    size_t len;
    long n = -1;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REQUEST_IDENTITIES);
    if (send_msg(fd, &req) &&
        fixture_recv_frame(fd, MAX_REPLY, FIXTURE_NO_TIMEOUT, &reply, &len) == FIXTURE_READ_DONE) {
        if (len >= 5 && reply[0] == SSH_AGENT_IDENTITIES_ANSWER)
            n = (long)wire_peek_u32(reply + 1);
        free(reply);
    }
    wire_writer_free(&req);
    return n;
}

static void put_add(struct wire_writer *w, const struct key *k, const char *comment)
{
    wire_writer_reset(w);
    wire_put_u8(w, SSH_AGENTC_ADD_IDENTITY);
    if (key_private_serialize(k, w) != 0)
        w->error = -1;
    wire_put_cstring(w, comment);
}

static int add_key(int fd, const struct key *k, const char *comment)
{
    struct wire_writer req;
    int type;

    wire_writer_init(&req);
    put_add(&req, k, comment);
    type = simple_request(fd, &req);
    wire_writer_free(&req);
    return type;
}

static int remove_blob(int fd, const uint8_t *blob, size_t len)
{
    struct wire_writer req;
    int type;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_REMOVE_IDENTITY);
    wire_put_string(&req, blob, len);
    type = simple_request(fd, &req);
    wire_writer_free(&req);
    return type;
}

/* Whether k signs over this connection, with a signature that verifies. */
static bool signs(int fd, const struct key *k)
{
    static const uint8_t data[] = "issue 22: a key loaded before the heap filled";
    struct wire_writer req;
    struct wire_reader r;
    struct wire_view sig;
    uint8_t *reply;
    size_t len;
    bool ok = false;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(&req, k->blob, k->blob_len);
    wire_put_string(&req, data, sizeof(data));
    wire_put_u32(&req, 0);
    if (send_msg(fd, &req) &&
        fixture_recv_frame(fd, MAX_REPLY, FIXTURE_NO_TIMEOUT, &reply, &len) == FIXTURE_READ_DONE) {
        if (len > 1 && reply[0] == SSH_AGENT_SIGN_RESPONSE) {
            wire_reader_init(&r, reply + 1, len - 1);
            sig = wire_get_string(&r);
            ok = wire_reader_finish(&r) == 0 &&
                 key_verify(k, sig.ptr, sig.len, data, sizeof(data)) == 0;
        }
        free(reply);
    }
    wire_writer_free(&req);
    return ok;
}

/* ---- the agent ---- */

static bool start_agent(void)
{
    double deadline;
    int fd, logfd, status;

    if ((logfd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        return false;
    if ((agent_pid = fork()) < 0)
        return false;
    if (agent_pid == 0) {
        dup2(logfd, 2);
        dup2(open("/dev/null", O_RDWR), 0);
        dup2(0, 1);
        execl(agent_path, agent_path, "-d", "-a", sock_path, (char *)NULL);
        _exit(127);
    }
    close(logfd);
    deadline = now_s() + 20;
    while (now_s() < deadline) {
        if (waitpid(agent_pid, &status, WNOHANG) == agent_pid) {
            agent_pid = -1;
            return false;
        }
        if ((fd = connect_agent()) >= 0) {
            close(fd);
            return true;
        }
        usleep(50 * 1000);
    }
    return false;
}

/* SIGTERM, then the exit status; -1 if it had to be killed. */
static int stop_agent(void)
{
    double deadline = now_s() + 30;
    int status;

    if (agent_pid < 0)
        return -1;
    kill(agent_pid, SIGTERM);
    while (now_s() < deadline) {
        if (waitpid(agent_pid, &status, WNOHANG) == agent_pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(20 * 1000);
    }
    kill(agent_pid, SIGKILL);
    waitpid(agent_pid, &status, 0);
    return -1;
}

static unsigned long count_lines(const char *needle)
{
    char line[4096];
    unsigned long n = 0;
    FILE *f = fopen(log_path, "r");

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}

/* ---- lists timed from another client, while something else happens ---- */

#define LISTER_SAMPLES 100000

struct lister {
    pthread_t th;
    atomic_bool stop;
    double max_ms;
    unsigned long lists;
    bool lost;
    double *ms; /* every list's time, for percentiles */
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The p-th percentile of the lists' times (after lister_stop()). */
static double lister_percentile(struct lister *l, double p)
{
    unsigned long n = l->lists < LISTER_SAMPLES ? l->lists : LISTER_SAMPLES;

    if (n == 0)
        return 1e9;
    qsort(l->ms, n, sizeof(l->ms[0]), cmp_double);
    return l->ms[(unsigned long)(p / 100.0 * (double)(n - 1))];
}

static void *lister_run(void *arg)
{
    struct lister *l = arg;
    double t, ms;
    int fd = connect_agent();

    if (fd < 0) {
        l->lost = true;
        return NULL;
    }
    while (!atomic_load(&l->stop)) {
        t = now_s();
        if (list_keys(fd) < 0) {
            l->lost = true;
            break;
        }
        ms = (now_s() - t) * 1000;
        if (ms > l->max_ms)
            l->max_ms = ms;
        if (l->ms != NULL && l->lists < LISTER_SAMPLES)
            l->ms[l->lists] = ms;
        l->lists++;
        usleep(2000);
    }
    close(fd);
    return NULL;
}

static void lister_start(struct lister *l)
{
    memset(l, 0, sizeof(*l));
    l->ms = calloc(LISTER_SAMPLES, sizeof(l->ms[0]));
    pthread_create(&l->th, NULL, lister_run, l);
}

static void lister_stop(struct lister *l)
{
    atomic_store(&l->stop, true);
    pthread_join(l->th, NULL);
}

/* ---- unlock_rate ---- */

static atomic_bool guess_stop;
static atomic_ulong guess_replies;

static void *guesser(void *arg)
{
    int *fdp = arg;
    struct wire_writer req;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_UNLOCK);
    wire_put_cstring(&req, "not the passphrase");
    while (!atomic_load(&guess_stop)) {
        if (simple_request(*fdp, &req) != SSH_AGENT_FAILURE)
            break; /* the connection was shut down at the end, or a wrong answer */
        atomic_fetch_add(&guess_replies, 1);
    }
    wire_writer_free(&req);
    return NULL;
}

static void test_unlock_rate(void)
{
    pthread_t th[GUESSERS];
    int fds[GUESSERS], fd, i, type = -1;
    struct wire_writer req;
    struct lister l;
    unsigned long evaluated;
    double t0, p99;
    char msg[256];

    fd = connect_agent();
    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_LOCK);
    wire_put_cstring(&req, "right passphrase");
    check(fd >= 0 && simple_request(fd, &req) == SSH_AGENT_SUCCESS, "the agent locks");

    lister_start(&l);
    for (i = 0; i < GUESSERS; i++) {
        fds[i] = connect_agent();
        pthread_create(&th[i], NULL, guesser, &fds[i]);
    }
    t0 = now_s();
    usleep((useconds_t)(WINDOW_S * 1e6));
    evaluated = count_lines("wrong passphrase");
    lister_stop(&l);
    atomic_store(&guess_stop, true);
    for (i = 0; i < GUESSERS; i++)
        shutdown(fds[i], SHUT_RDWR);
    for (i = 0; i < GUESSERS; i++) {
        pthread_join(th[i], NULL);
        close(fds[i]);
    }
    p99 = lister_percentile(&l, 99);
    printf("# %d connections guessing for %.1f s: %lu guesses evaluated (log), %lu failures "
           "answered; %lu lists from another client, p99 %.2f ms, slowest %.2f ms\n",
           GUESSERS, WINDOW_S, evaluated, atomic_load(&guess_replies), l.lists, p99, l.max_ms);
    snprintf(msg, sizeof(msg), "at most %d guesses evaluated in %.1f s over %d connections (%lu)",
             MAX_GUESSES, WINDOW_S, GUESSERS, evaluated);
    check(evaluated >= 1 && evaluated <= MAX_GUESSES, msg);
    /*
     * p99, not the maximum: on a shared 2-core machine one list in a
     * hundred can lose its core to another process for hundreds of ms (seen
     * at a load average of 5). The unlock attempts never run on the loop:
     * scrypt is on a worker thread, and a waiting attempt costs a timer.
     */
    snprintf(msg, sizeof(msg),
             "another client's lists stay fast meanwhile: p99 %.2f ms < %.0f ms (slowest %.2f ms)",
             p99, LIST_MAX_MS, l.max_ms);
    check(!l.lost && l.lists > 10, "another client's lists are answered meanwhile");
    check_timing(p99 < LIST_MAX_MS, msg);
    free(l.ms);

    /* The right passphrase still unlocks, once its turn comes. */
    wire_writer_reset(&req);
    wire_put_u8(&req, SSH_AGENTC_UNLOCK);
    wire_put_cstring(&req, "right passphrase");
    /*
     * Guesses the guessers sent before they left are still evaluated, each
     * in its turn (as OpenSSH would): give them time.
     */
    if (fd >= 0) {
        static const struct timeval longer = {60, 0};

        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &longer, sizeof(longer));
    }
    t0 = now_s();
    if (fd >= 0)
        type = simple_request(fd, &req);
    snprintf(msg, sizeof(msg), "the right passphrase then unlocks (after %.2f s)", now_s() - t0);
    check(type == SSH_AGENT_SUCCESS, msg);
    check(fd >= 0 && list_keys(fd) == 0, "the connection still answers");
    wire_writer_free(&req);
    if (fd >= 0)
        close(fd);
}

/* ---- remove_restricted ---- */

/* A hop "user@host" with one host key, as ssh-add -h sends it; host NULL: the origin. */
static void put_hop(struct wire_writer *w, const char *host, const struct key *k)
{
    size_t mark = wire_begin_string(w);

    wire_put_cstring(w, "");
    wire_put_cstring(w, host ? host : "");
    wire_put_cstring(w, "");
    if (k != NULL) {
        wire_put_string(w, k->blob, k->blob_len);
        wire_put_bool(w, false);
    }
    wire_end_string(w, mark);
}

/* ADD_ID_CONSTRAINED for k, restricted by the constraints already in dest. */
static void put_add_restricted(struct wire_writer *w, const struct key *k,
                               const struct wire_writer *dest)
{
    wire_writer_reset(w);
    wire_put_u8(w, SSH_AGENTC_ADD_ID_CONSTRAINED);
    if (key_private_serialize(k, w) != 0)
        w->error = -1;
    wire_put_cstring(w, "restricted");
    wire_put_u8(w, SSH_AGENT_CONSTRAIN_EXTENSION);
    wire_put_cstring(w, DEST_EXTENSION);
    wire_put_string(w, dest->buf, dest->len);
}

static int session_bind(int fd, const struct key *hostkey, bool forwarding)
{
    struct wire_writer req, sig;
    uint8_t sid[32];
    int type = -1;

    wire_writer_init(&req);
    wire_writer_init(&sig);
    RAND_bytes(sid, sizeof(sid));
    if (key_sign(hostkey, sid, sizeof(sid), 0, &sig) == 0) {
        wire_put_u8(&req, SSH_AGENTC_EXTENSION);
        wire_put_cstring(&req, EXT_SESSION_BIND);
        wire_put_string(&req, hostkey->blob, hostkey->blob_len);
        wire_put_string(&req, sid, sizeof(sid));
        wire_put_string(&req, sig.buf, sig.len);
        wire_put_bool(&req, forwarding);
        type = simple_request(fd, &req);
    }
    wire_writer_free(&sig);
    wire_writer_free(&req);
    return type;
}

static void test_remove_restricted(void)
{
    struct key *user = NULL, *allowed = NULL, *other = NULL;
    struct wire_writer dest, req;
    int local, fwd;

    if (key_generate(KEY_ED25519, 0, &user) != 0 || key_generate(KEY_ED25519, 0, &allowed) != 0 ||
        key_generate(KEY_ED25519, 0, &other) != 0) {
        check(false, "keys generated");
        return;
    }
    /* origin -> host "allowed" only. */
    wire_writer_init(&dest);
    wire_writer_init(&req);
    {
        size_t mark = wire_begin_string(&dest);

        put_hop(&dest, NULL, NULL);
        put_hop(&dest, "allowed", allowed);
        wire_put_cstring(&dest, "");
        wire_end_string(&dest, mark);
    }
    put_add_restricted(&req, user, &dest);
    local = connect_agent();
    check(local >= 0 && simple_request(local, &req) == SSH_AGENT_SUCCESS,
          "a key restricted to host \"allowed\" is added");

    /* A connection forwarded to another host. */
    fwd = connect_agent();
    check(fwd >= 0 && session_bind(fwd, other, true) == SSH_AGENT_SUCCESS,
          "a connection binds, forwarding, to another host");
    check(list_keys(fwd) == 0, "that connection does not see the key");
    check(remove_blob(fwd, user->blob, user->blob_len) == SSH_AGENT_FAILURE,
          "that connection cannot remove it: FAILURE, as for a key not loaded");
    check(list_keys(fwd) == 0, "and its connection stays open");
    check(count_lines("key not visible on this connection") == 1,
          "the refusal is logged with its reason");
    check(list_keys(local) == 1, "the key is still loaded");
    check(remove_blob(local, user->blob, user->blob_len) == SSH_AGENT_SUCCESS,
          "a local connection may remove it");
    check(list_keys(local) == 0, "then it is gone");
    if (local >= 0)
        close(local);
    if (fwd >= 0)
        close(fwd);
    wire_writer_free(&dest);
    wire_writer_free(&req);
    key_free(user);
    key_free(allowed);
    key_free(other);
}

/* ---- key_limit ---- */

static void put_bn_mpint(struct wire_writer *w, const BIGNUM *bn)
{
    uint8_t buf[1024];
    int n = BN_bn2bin(bn, buf);

    wire_put_mpint_unsigned(w, buf, (size_t)n);
}

/*
 * Junk RSA-4096 keys, cheaply: one pair of primes and a different public
 * exponent for each key (so a different blob), with d = e^-1.
 */
struct junk {
    BIGNUM *p, *q, *n, *p1, *q1, *lcm, *iqmp;
    BN_CTX *ctx;
    unsigned long e;
};

static bool junk_init(struct junk *j)
{
    EVP_PKEY *pkey = EVP_RSA_gen(4096);
    BIGNUM *g = BN_new();
    bool ok;

    memset(j, 0, sizeof(*j));
    j->ctx = BN_CTX_new();
    j->p1 = BN_new();
    j->q1 = BN_new();
    j->lcm = BN_new();
    j->iqmp = BN_new();
    ok = pkey != NULL && g != NULL && j->ctx != NULL &&
         EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR1, &j->p) &&
         EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR2, &j->q) &&
         EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &j->n) &&
         BN_sub(j->p1, j->p, BN_value_one()) && BN_sub(j->q1, j->q, BN_value_one()) &&
         BN_gcd(g, j->p1, j->q1, j->ctx) && BN_mul(j->lcm, j->p1, j->q1, j->ctx) &&
         BN_div(j->lcm, NULL, j->lcm, g, j->ctx) &&
         BN_mod_inverse(j->iqmp, j->q, j->p, j->ctx) != NULL;
    j->e = 65537;
    BN_free(g);
    EVP_PKEY_free(pkey);
    return ok;
}

/* The next junk key's ADD_IDENTITY request, and its public blob. */
static bool junk_next(struct junk *j, struct wire_writer *req, struct wire_writer *blob)
{
    BIGNUM *e = BN_new(), *d = BN_new();
    bool ok = false;

    for (;;) {
        j->e += 2;
        if (!BN_set_word(e, j->e))
            goto out;
        if (BN_mod_inverse(d, e, j->lcm, j->ctx) != NULL)
            break;
    }
    wire_writer_reset(req);
    wire_put_u8(req, SSH_AGENTC_ADD_IDENTITY);
    wire_put_cstring(req, "ssh-rsa");
    put_bn_mpint(req, j->n);
    put_bn_mpint(req, e);
    put_bn_mpint(req, d);
    put_bn_mpint(req, j->iqmp);
    put_bn_mpint(req, j->p);
    put_bn_mpint(req, j->q);
    wire_put_cstring(req, "junk");
    wire_writer_reset(blob);
    wire_put_cstring(blob, "ssh-rsa");
    put_bn_mpint(blob, e);
    put_bn_mpint(blob, j->n);
    ok = req->error == 0 && blob->error == 0;
out:
    BN_clear_free(d);
    BN_free(e);
    return ok;
}

static void junk_free(struct junk *j)
{
    BN_clear_free(j->p);
    BN_clear_free(j->q);
    BN_free(j->n);
    BN_clear_free(j->p1);
    BN_clear_free(j->q1);
    BN_clear_free(j->lcm);
    BN_clear_free(j->iqmp);
    BN_CTX_free(j->ctx);
}

static void test_key_limit(void)
{
    struct key *ecdsa = NULL;
    struct wire_writer req, blob, last;
    struct junk j;
    int fd, type = -1;
    unsigned long added = 0, i;
    bool still_signs = true;
    char msg[256];

    if (key_generate(KEY_ECDSA_P256, 0, &ecdsa) != 0 || !junk_init(&j)) {
        check(false, "keys generated");
        return;
    }
    wire_writer_init(&req);
    wire_writer_init(&blob);
    wire_writer_init(&last);
    fd = connect_agent();
    check(fd >= 0 && add_key(fd, ecdsa, "loaded first") == SSH_AGENT_SUCCESS,
          "an ECDSA key is added");
    check(signs(fd, ecdsa), "it signs");
    for (i = 0; i < JUNK_MAX; i++) {
        if (!junk_next(&j, &req, &blob))
            break;
        type = simple_request(fd, &req);
        if (type != SSH_AGENT_SUCCESS)
            break;
        added++;
        wire_writer_reset(&last);
        wire_put_bytes(&last, blob.buf, blob.len);
        /* The earlier key must keep signing all along (checked now and then). */
        if (added % 256 == 0 && !signs(fd, ecdsa)) {
            printf("# the ECDSA key stopped signing after %lu junk keys\n", added);
            still_signs = false;
            break;
        }
    }
    printf("# %lu junk RSA-4096 keys added, then reply type %d\n", added, type);
    check(still_signs && signs(fd, ecdsa), "the ECDSA key loaded first still signs");
    check(type == SSH_AGENT_FAILURE, "an add is refused at the limit, with FAILURE");
    check(count_lines("too many keys") >= 1, "the refusal is logged: \"too many keys\"");
    snprintf(msg, sizeof(msg), "the connection stays and lists %lu keys", added + 1);
    check(list_keys(fd) == (long)added + 1, msg);
    /* The refused key fits once another is removed. */
    check(last.len > 0 && remove_blob(fd, last.buf, last.len) == SSH_AGENT_SUCCESS,
          "a junk key is removed");
    check(simple_request(fd, &req) == SSH_AGENT_SUCCESS, "then the refused add succeeds");
    check(signs(fd, ecdsa), "and the ECDSA key still signs");
    if (fd >= 0)
        close(fd);
    wire_writer_free(&req);
    wire_writer_free(&blob);
    wire_writer_free(&last);
    junk_free(&j);
    key_free(ecdsa);
}

/* ---- heavy_constraint ---- */

/* A restriction "origin -> host h" with nkeys copies of one host key, as one request. */
static void put_heavy_add(struct wire_writer *req, const struct key *user, const struct key *host,
                          size_t nkeys)
{
    struct wire_writer dest;
    size_t mark, hop, i;

    wire_writer_init(&dest);
    mark = wire_begin_string(&dest);
    put_hop(&dest, NULL, NULL);
    hop = wire_begin_string(&dest);
    wire_put_cstring(&dest, "");
    wire_put_cstring(&dest, "h");
    wire_put_cstring(&dest, "");
    for (i = 0; i < nkeys; i++) {
        wire_put_string(&dest, host->blob, host->blob_len);
        wire_put_bool(&dest, false);
    }
    wire_end_string(&dest, hop);
    wire_put_cstring(&dest, "");
    wire_end_string(&dest, mark);
    put_add_restricted(req, user, &dest);
    wire_writer_free(&dest);
}

/*
 * Sends req on its own connection while another client lists; the slowest
 * list. Three times, keeping the best run: a stall the request causes shows
 * in every run, another process taking the core now and then does not.
 */
static int timed_add_once(const struct wire_writer *req, double *max_ms, double *add_ms);

static int timed_add(const struct wire_writer *req, double *max_ms, double *add_ms)
{
    double m, a;
    int i, type = -1, t;

    *max_ms = *add_ms = 1e9;
    for (i = 0; i < 3; i++) {
        t = timed_add_once(req, &m, &a);
        if (i > 0 && t != type)
            return -3; /* answered differently each time */
        type = t;
        if (m < *max_ms) {
            *max_ms = m;
            *add_ms = a;
        }
    }
    return type;
}

static int timed_add_once(const struct wire_writer *req, double *max_ms, double *add_ms)
{
    struct lister l;
    double t;
    int fd = connect_agent(), type = -1;

    lister_start(&l);
    usleep(50 * 1000);
    t = now_s();
    if (fd >= 0)
        type = simple_request(fd, req);
    *add_ms = (now_s() - t) * 1000;
    usleep(20 * 1000);
    lister_stop(&l);
    *max_ms = l.max_ms;
    free(l.ms);
    if (l.lost)
        type = -4; /* the other client's connection failed */
    if (fd >= 0) {
        if (list_keys(fd) < 0)
            type = -2; /* the connection did not stay */
        close(fd);
    }
    return type;
}

static void test_heavy_constraint(void)
{
    struct key *user = NULL, *host = NULL;
    struct wire_writer req;
    size_t most;
    double max_ms, add_ms;
    int type;
    char msg[256];

    if (key_generate(KEY_ED25519, 0, &user) != 0 || key_generate(KEY_ECDSA_P521, 0, &host) != 0) {
        check(false, "keys generated");
        return;
    }
    wire_writer_init(&req);
    /* As many P-521 host keys as fit in one frame (the review's 1,469). */
    put_heavy_add(&req, user, host, 1);
    most = (WIRE_MAX_MESSAGE - req.len) / (4 + host->blob_len + 1);
    put_heavy_add(&req, user, host, most);
    type = timed_add(&req, &max_ms, &add_ms);
    printf("# ADD with %zu P-521 host keys (%zu bytes): reply %d after %.2f ms; slowest list "
           "from another client %.2f ms\n",
           most, req.len, type, add_ms, max_ms);
    snprintf(msg, sizeof(msg), "an ADD restricted by %zu host keys is refused (over %d)", most,
             DEST_MAX_KEYS);
    check(type == SSH_AGENT_FAILURE, msg);
    snprintf(msg, sizeof(msg), "another client's lists stay under %.0f ms meanwhile (%.2f ms)",
             HEAVY_MAX_MS, max_ms);
    check_timing(max_ms < HEAVY_MAX_MS, msg);

    put_heavy_add(&req, user, host, DEST_MAX_KEYS);
    type = timed_add(&req, &max_ms, &add_ms);
    printf("# ADD with %d P-521 host keys: reply %d after %.2f ms; slowest list %.2f ms\n",
           DEST_MAX_KEYS, type, add_ms, max_ms);
    check(type == SSH_AGENT_SUCCESS, "an ADD at the limit is accepted");
    snprintf(msg, sizeof(msg), "another client's lists stay under %.0f ms meanwhile (%.2f ms)",
             HEAVY_MAX_MS, max_ms);
    check_timing(max_ms < HEAVY_MAX_MS, msg);
    wire_writer_free(&req);
    key_free(user);
    key_free(host);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*run)(void);
    } parts[] = {
        {"unlock_rate", test_unlock_rate},
        {"remove_restricted", test_remove_restricted},
        {"key_limit", test_key_limit},
        {"heavy_constraint", test_heavy_constraint},
    };
    size_t i;
    int status;

    if (argc != 3) {
        fprintf(stderr, "usage: %s AGENT PART\n", argv[0]);
        return 2;
    }
    for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strcmp(argv[2], parts[i].name) == 0)
            break;
    if (i == sizeof(parts) / sizeof(parts[0])) {
        fprintf(stderr, "%s: unknown part %s\n", argv[0], argv[2]);
        return 2;
    }
    agent_path = argv[1];
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/kw-policy-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(sock_path, sizeof(sock_path), "%s/agent.sock", dir);
    snprintf(log_path, sizeof(log_path), "%s/agent.log", dir);
    if (!start_agent()) {
        fprintf(stderr, "policy: %s did not start; its log is in %s\n", agent_path, log_path);
        return 1;
    }
    parts[i].run();
    status = stop_agent();
    check(status == 0, "the agent exits cleanly on SIGTERM");
    printf("%s: %d passed, %d failed\n", argv[2], passed, failed);
    if (failed == 0) {
        unlink(log_path);
        rmdir(dir);
    } else {
        printf("# the agent's log: %s\n", log_path);
    }
    return failed == 0 ? 0 : 1;
}
