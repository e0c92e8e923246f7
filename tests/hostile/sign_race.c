/*
 * Concurrent signers racing a client that removes the key, against the real
 * keyward-agent over its socket:
 *
 *     hostile_sign_race AGENT [SECONDS]
 *
 * SIGNERS clients sign with one Ed25519 key over their own connections,
 * each with two requests in flight, while another client removes the key,
 * re-adds it, and now and then removes every key. Several clients signing
 * at once is what makes the agent hand even Ed25519 signatures to its
 * worker threads, so a key is regularly removed while a worker signs with
 * it (the job's reference must keep it alive).
 *
 * Passes when every reply is SIGN_RESPONSE with a signature that verifies
 * over the data of the request it answers (so replies stay in order) or
 * FAILURE, nothing else; both kinds were seen; the agent still answers a
 * list afterwards and exits with status 0 on SIGTERM (a sanitizer report,
 * a leak included, makes it exit otherwise); its log holds no sanitizer
 * report; and its debug log shows signatures continuing on a worker thread
 * (otherwise this test would not be testing the race it is for; the agent
 * hands fast signatures over only when it has a second core, so on one
 * core that check is skipped).
 * Prints "N passed, N failed".
 */
#define _GNU_SOURCE /* sched_getaffinity() */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/request.h"
#include "base/wire.h"
#include "crypto/key.h"
#include "fixture_sock.h"

#define SIGNERS   4
#define IN_FLIGHT 2
#define MAX_REPLY (256 * 1024)

static const char *agent_path;
static char dir[64], sock_path[96], log_path[96], audit_path[96];
static pid_t agent_pid = -1;
static struct key *key;
static atomic_bool stop;
static atomic_ulong signed_ok, refused, bad, removes, adds;
static int passed, failed;

static void check(bool ok, const char *what)
{
    if (ok) {
        passed++;
        printf("ok - %s\n", what);
    } else {
        failed++;
        printf("not ok - %s\n", what);
    }
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_agent(void)
{
    return fixture_connect(sock_path, 0, 0);
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

static void put_sign(struct wire_writer *w, const uint8_t *data, size_t len)
{
    wire_writer_reset(w);
    wire_put_u8(w, SSH_AGENTC_SIGN_REQUEST);
    wire_put_string(w, key->blob, key->blob_len);
    wire_put_string(w, data, len);
    wire_put_u32(w, 0);
}

/* A reply to a sign request over data: a signature that verifies, or FAILURE. */
static void judge_sign_reply(const uint8_t *reply, size_t len, const uint8_t *data, size_t dlen)
{
    struct wire_reader r;
    struct wire_view sig;

    if (len == 1 && reply[0] == SSH_AGENT_FAILURE) {
        atomic_fetch_add(&refused, 1);
        return;
    }
    if (len > 1 && reply[0] == SSH_AGENT_SIGN_RESPONSE) {
        wire_reader_init(&r, reply + 1, len - 1);
        sig = wire_get_string(&r);
        if (wire_reader_finish(&r) == 0 && key_verify(key, sig.ptr, sig.len, data, dlen) == 0) {
            atomic_fetch_add(&signed_ok, 1);
            return;
        }
    }
    if (atomic_fetch_add(&bad, 1) < 5)
        fprintf(stderr, "sign_race: unexpected reply: type %u, %zu bytes\n", reply[0], len);
}

static void *signer(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint8_t data[IN_FLIGHT][64], *reply;
    struct wire_writer req;
    unsigned long seq = 0;
    size_t dlen[IN_FLIGHT], len;
    int fd, i;

    wire_writer_init(&req);
    if ((fd = connect_agent()) < 0) {
        atomic_fetch_add(&bad, 1);
        return NULL;
    }
    while (!atomic_load(&stop)) {
        /* Two requests in flight, each over its own data, answered in order. */
        for (i = 0; i < IN_FLIGHT; i++) {
            dlen[i] =
                (size_t)snprintf((char *)data[i], sizeof(data[i]),
                                 "sign race: client %lu, request %lu", (unsigned long)id, seq++);
            put_sign(&req, data[i], dlen[i]);
            if (!send_msg(fd, &req))
                goto lost;
        }
        for (i = 0; i < IN_FLIGHT; i++) {
            if (fixture_recv_frame(fd, MAX_REPLY, FIXTURE_NO_TIMEOUT, &reply, &len) !=
                FIXTURE_READ_DONE)
                goto lost;
            judge_sign_reply(reply, len, data[i], dlen[i]);
            free(reply);
        }
    }
    goto out;
lost:
    atomic_fetch_add(&bad, 1);
    fprintf(stderr, "sign_race: client %lu: connection lost\n", (unsigned long)id);
out:
    close(fd);
    wire_writer_free(&req);
    return NULL;
}

static bool add_key(int fd)
{
    struct wire_writer req;
    bool ok;

    wire_writer_init(&req);
    wire_put_u8(&req, SSH_AGENTC_ADD_IDENTITY);
    ok = key_private_serialize(key, &req) == 0;
    wire_put_cstring(&req, "sign race");
    ok = ok && simple_request(fd, &req) == SSH_AGENT_SUCCESS;
    wire_writer_free(&req);
    return ok;
}

/* Removes the key and adds it back, and now and then removes every key. */
static void *remover(void *arg)
{
    struct wire_writer rm, rmall;
    unsigned long n = 0;
    int fd, type;

    (void)arg;
    wire_writer_init(&rm);
    wire_writer_init(&rmall);
    wire_put_u8(&rm, SSH_AGENTC_REMOVE_IDENTITY);
    wire_put_string(&rm, key->blob, key->blob_len);
    wire_put_u8(&rmall, SSH_AGENTC_REMOVE_ALL_IDENTITIES);
    if ((fd = connect_agent()) < 0) {
        atomic_fetch_add(&bad, 1);
        goto out;
    }
    while (!atomic_load(&stop)) {
        type = simple_request(fd, n++ % 8 == 7 ? &rmall : &rm);
        if (type != SSH_AGENT_SUCCESS && type != SSH_AGENT_FAILURE) {
            atomic_fetch_add(&bad, 1);
            break;
        }
        atomic_fetch_add(&removes, 1);
        /* Leave the key away for a moment: signers must be refused. */
        usleep((useconds_t)(rand() % 300));
        if (!add_key(fd)) {
            atomic_fetch_add(&bad, 1);
            break;
        }
        atomic_fetch_add(&adds, 1);
        usleep((useconds_t)(rand() % 300));
    }
    close(fd);
out:
    wire_writer_free(&rm);
    wire_writer_free(&rmall);
    return NULL;
}

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
        /* -d: foreground, a log line per request (how hand-offs are seen). */
        execl(agent_path, agent_path, "-d", "-l", audit_path, "-a", sock_path, (char *)NULL);
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

/* How many lines of the file contain needle. */
static unsigned long count_lines(const char *path, const char *needle)
{
    char line[4096];
    unsigned long n = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}

/* The cores this process may run on, as the agent counts them (libuv). */
static int cores(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return (int)sysconf(_SC_NPROCESSORS_ONLN);
    return CPU_COUNT(&set);
}

int main(int argc, char **argv)
{
    pthread_t th[SIGNERS + 1];
    struct wire_writer list;
    double seconds = argc > 2 ? atof(argv[2]) : 3.0;
    unsigned long offloaded;
    char msg[256];
    int fd, i, status;
    bool listed;

    if (argc < 2 || argc > 3 || seconds <= 0) {
        fprintf(stderr, "usage: %s AGENT [SECONDS]\n", argv[0]);
        return 2;
    }
    agent_path = argv[1];
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/kw-sign-race-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(sock_path, sizeof(sock_path), "%s/agent.sock", dir);
    snprintf(log_path, sizeof(log_path), "%s/agent.log", dir);
    snprintf(audit_path, sizeof(audit_path), "%s/audit.log", dir);
    if (key_generate(KEY_ED25519, 0, &key) != 0) {
        fprintf(stderr, "sign_race: cannot generate a key\n");
        return 1;
    }
    if (!start_agent()) {
        fprintf(stderr, "sign_race: %s did not start; its log is in %s\n", agent_path, log_path);
        return 1;
    }
    fd = connect_agent();
    check(fd >= 0 && add_key(fd), "the key is added");
    if (fd >= 0)
        close(fd);

    for (i = 0; i < SIGNERS; i++)
        pthread_create(&th[i], NULL, signer, (void *)(uintptr_t)i);
    pthread_create(&th[SIGNERS], NULL, remover, NULL);
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&stop, true);
    for (i = 0; i <= SIGNERS; i++)
        pthread_join(th[i], NULL);

    printf("# %lu signatures, %lu refusals, %lu unexpected; %lu removals, %lu adds\n",
           atomic_load(&signed_ok), atomic_load(&refused), atomic_load(&bad), atomic_load(&removes),
           atomic_load(&adds));
    check(atomic_load(&bad) == 0,
          "every reply is a signature over its own request's data, or FAILURE");
    check(atomic_load(&signed_ok) > 0, "signatures were made");
    check(atomic_load(&refused) > 0, "signatures were refused while the key was away");
    check(atomic_load(&removes) > 0 && atomic_load(&adds) > 0, "the key was removed and re-added");

    /* Still serving. */
    wire_writer_init(&list);
    wire_put_u8(&list, SSH_AGENTC_REQUEST_IDENTITIES);
    fd = connect_agent();
    listed = fd >= 0 && simple_request(fd, &list) == SSH_AGENT_IDENTITIES_ANSWER;
    check(listed, "the agent answers a list afterwards");
    if (fd >= 0)
        close(fd);
    wire_writer_free(&list);

    status = stop_agent();
    snprintf(msg, sizeof(msg), "the agent exits with status 0 on SIGTERM (got %d)", status);
    check(status == 0, msg);
    check(count_lines(log_path, "Sanitizer") == 0 && count_lines(log_path, "runtime error") == 0,
          "no sanitizer report in the agent's log");
    offloaded = count_lines(log_path, "continuing on a worker thread");
    if (cores() < 2) {
        printf("ok - # skip: one core, so the agent signs Ed25519 inline\n");
    } else {
        snprintf(msg, sizeof(msg), "Ed25519 signatures were handed to worker threads (%lu)",
                 offloaded);
        check(offloaded > 0, msg);
    }

    if (failed != 0) {
        fprintf(stderr, "sign_race: the agent's log is kept in %s\n", log_path);
    } else {
        unlink(sock_path);
        unlink(log_path);
        unlink(audit_path);
        rmdir(dir);
    }
    key_free(key);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
